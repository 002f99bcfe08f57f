#include "kv/store/speculation.h"

#include "kv/store/keys.h"

#include <stdexcept>

namespace gasoline::store {

bool Speculation::ready(uint64_t term, uint64_t last_applied, uint64_t last_index) {
  if (term != term_) {
    clear();
    term_ = term;
    // Everything in the log now came from earlier terms (or is a barrier or configuration entry of this one).
    // Only this prefix matters: entries appended later (read barriers) must not keep a busy leader waiting.
    inherited_end_ = last_index;
  }
  if (!ready_ && layers_.empty() && last_applied >= inherited_end_) ready_ = true;
  return ready_;
}

Applied Speculation::compute(const Entry& entry, uint64_t index, const Config& config) const {
  return apply_entry(view_, entry, index, config);
}

void Speculation::push(uint64_t index, Mutations mutations) {
  if (!layers_.empty() && index <= layers_.back().first)
    throw std::logic_error("speculation: layer " + std::to_string(index) + " is not after " +
                           std::to_string(layers_.back().first));
  layers_.emplace_back(index, std::move(mutations));
}

void Speculation::applied(uint64_t index) {
  while (!layers_.empty() && layers_.front().first <= index) layers_.pop_front();
}

void Speculation::clear() {
  layers_.clear();
  ready_ = false;
}

std::optional<std::string> Speculation::View::get(std::string_view key) const {
  for (auto layer = s_.layers_.rbegin(); layer != s_.layers_.rend(); ++layer) {
    auto it = layer->second.find(key);
    if (it != layer->second.end()) return it->second;
  }
  return s_.committed_.get(key);
}

void Speculation::View::scan(std::string_view prefix, const ScanFn& fn) const {
  if (s_.layers_.empty()) {
    s_.committed_.scan(prefix, fn);
    return;
  }
  // As Txn::scan: collect the committed keys (scans inside apply are short), then let each layer override them
  // oldest first.
  Mutations merged;
  s_.committed_.scan(prefix, [&](std::string_view k, std::string_view v) {
    merged.emplace(std::string(k), std::string(v));
    return true;
  });
  auto end = keys::prefix_end(prefix);
  for (const auto& [index, layer] : s_.layers_)
    for (auto it = layer.lower_bound(prefix); it != layer.end() && it->first < end; ++it) merged[it->first] = it->second;
  for (const auto& [k, v] : merged) {
    if (!v) continue;
    if (!fn(k, *v)) break;
  }
}

}  // namespace gasoline::store
