#include "kv/store/txn.h"

#include "kv/store/keys.h"

namespace gasoline::store {

std::optional<std::string> MapReader::get(std::string_view key) const {
  auto it = data_.find(key);
  if (it == data_.end()) return std::nullopt;
  return it->second;
}

void MapReader::scan(std::string_view prefix, const ScanFn& fn) const {
  for (auto it = data_.lower_bound(prefix); it != data_.end(); ++it) {
    if (std::string_view(it->first).substr(0, prefix.size()) != prefix) break;
    if (!fn(it->first, it->second)) break;
  }
}

std::optional<std::string> Txn::get(std::string_view key) const {
  auto it = writes_.find(key);
  if (it != writes_.end()) return it->second;
  return base_.get(key);
}

void Txn::scan(std::string_view prefix, const ScanFn& fn) const {
  if (writes_.empty()) {
    base_.scan(prefix, fn);
    return;
  }
  // Merge the base (collected first: scans inside apply are short, bounded by one workflow or one worker) with
  // the overlay.
  std::map<std::string, std::optional<std::string>, std::less<>> merged;
  base_.scan(prefix, [&](std::string_view k, std::string_view v) {
    merged.emplace(std::string(k), std::string(v));
    return true;
  });
  auto end = keys::prefix_end(prefix);
  for (auto it = writes_.lower_bound(prefix); it != writes_.end() && it->first < end; ++it) {
    merged[it->first] = it->second;
  }
  for (const auto& [k, v] : merged) {
    if (!v) continue;
    if (!fn(k, *v)) break;
  }
}

void apply_mutations(std::map<std::string, std::string, std::less<>>& data, const Mutations& m) {
  for (const auto& [k, v] : m) {
    if (v) {
      data[k] = *v;
    } else {
      data.erase(k);
    }
  }
}

}  // namespace gasoline::store
