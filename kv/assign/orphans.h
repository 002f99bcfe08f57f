#pragma once
// Lease reconciliation (pure: no I/O, no clock; the caller passes `now`).
//
// A lease can be committed while its answer never reaches the worker: the leader dies between the commit and the
// reply, a single replica dies between fsync and reply, or the pull times out at the client and commits later.
// The worker is alive and pinging, so reclaim (which handles silent workers) never frees it, and the worker cannot
// commit or release a token it never learned. Pings therefore carry the tokens the worker holds, and the leader
// compares them with the leases its state gives that worker. A lease absent from every report for `grace_ms` is
// orphaned and gets released. The grace covers the answer that is merely late: a pull's answer in flight while
// the ping was built shows up in the next report.
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace gasoline::assign {

struct Lease {
  std::string workflow_id;
  uint64_t token = 0;
  bool operator==(const Lease&) const = default;
};

class OrphanTracker {
 public:
  explicit OrphanTracker(int64_t grace_ms) : grace_ms_(grace_ms) {}

  // One report of worker (pool, worker): `granted` is what the state says it holds, `reported` the tokens it
  // says it holds. Returns the leases missing from every report of the last `grace_ms`. A returned lease starts a
  // new grace, so it is returned again only if it is still there (the release was lost) a grace later.
  std::vector<Lease> observe(const std::string& pool, const std::string& worker, const std::vector<Lease>& granted,
                             const std::unordered_set<uint64_t>& reported, int64_t now);
  // The worker left or was reclaimed: its leases are gone from the state.
  void forget(const std::string& pool, const std::string& worker);
  // Leadership changed: what a previous term observed says nothing about the new leader's reports.
  void clear() { missing_.clear(); }
  // Leases currently missing from reports (a gauge for tests and metrics).
  size_t tracked() const;
  int64_t grace_ms() const { return grace_ms_; }

 private:
  struct Missing {
    uint64_t token = 0;
    int64_t since = 0;
  };
  int64_t grace_ms_;
  std::map<std::pair<std::string, std::string>, std::unordered_map<std::string, Missing>> missing_;
};

}  // namespace gasoline::assign
