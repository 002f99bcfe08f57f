#include "kv/assign/orphans.h"

namespace gasoline::assign {

std::vector<Lease> OrphanTracker::observe(const std::string& pool, const std::string& worker,
                                          const std::vector<Lease>& granted,
                                          const std::unordered_set<uint64_t>& reported, int64_t now) {
  auto key = std::make_pair(pool, worker);
  auto it = missing_.find(key);
  std::unordered_map<std::string, Missing> before;
  if (it != missing_.end()) before.swap(it->second);
  std::unordered_map<std::string, Missing> after;
  std::vector<Lease> orphaned;
  for (const auto& lease : granted) {
    if (reported.count(lease.token)) continue;
    auto seen = before.find(lease.workflow_id);
    // Only the same grant counts: a new token for the workflow is a new lease with a grace of its own.
    Missing m = seen != before.end() && seen->second.token == lease.token ? seen->second : Missing{lease.token, now};
    if (now - m.since >= grace_ms_) {
      orphaned.push_back(lease);
      m.since = now;
    }
    after.emplace(lease.workflow_id, m);
  }
  if (after.empty()) {
    if (it != missing_.end()) missing_.erase(it);
  } else if (it != missing_.end()) {
    it->second.swap(after);
  } else {
    missing_.emplace(std::move(key), std::move(after));
  }
  return orphaned;
}

void OrphanTracker::forget(const std::string& pool, const std::string& worker) {
  missing_.erase(std::make_pair(pool, worker));
}

size_t OrphanTracker::tracked() const {
  size_t n = 0;
  for (const auto& [key, leases] : missing_) n += leases.size();
  return n;
}

}  // namespace gasoline::assign
