#pragma once
// What one pull leases (docs/design.md, "The pull algorithm"): which due entries the caller takes, which it leaves
// to a live primary, and which it sheds. Pure, like the rest of kv/assign: no I/O, no clock, no locks. The leader
// snapshots the members, the primaries' last pulls and the due entries, and passes `now`, so every branch of the
// decision can be tested with fixed inputs.
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kv/assign/ranking.h"
#include "kv/assign/strategy.h"

namespace gasoline::assign {

// A pool member as assignment sees it. The strings are views into the caller's worker list, which must outlive
// every use (a pull copies the list once and plans over views instead of copying it again).
struct Member {
  std::string_view id;
  bool active = true;  // neither draining nor leaving
  int64_t last_ping_ts = 0;
  std::span<const std::string> workflows;  // names it serves; empty means every name of its pool

  bool serves(std::string_view name) const;
};

// The ids of the members a workflow called `name` may land on, sorted: active, pinged within `active_window_ms` of
// `now`, and serving `name` (an empty name asks for the members of the pool as a whole).
std::vector<std::string> live_ids(std::span<const Member> members, std::string_view name, int64_t now,
                                  int64_t active_window_ms);

// What the leader last saw of a worker's pulls. A backup trusts a primary seen within the grace to take its share.
struct PullSeen {
  int64_t ts = 0;
  uint32_t ratio = 1000;
};
using PullsSeen = std::unordered_map<std::string, PullSeen>;  // by worker id

struct PullConfig {
  Strategy strategy = Strategy::kRendezvous;
  int64_t backup_grace_ms = 1000;
  int64_t active_window_ms = 1500;
};

struct PullRequest {
  std::string_view worker;
  size_t max = 1;
  uint32_t ratio = 1000;  // per-mille, from pull_ratio(curve, cpu) (kv/assign/shedding.h)
};

struct PlannedLease {
  std::string workflow_id;
  int64_t wake_ts = 0;
  bool operator==(const PlannedLease&) const = default;
};

struct PullPlan {
  std::vector<PlannedLease> leases;  // in scan order (earliest first), at most `max`
  size_t shed = 0;                   // entries the caller would have taken but shed
  bool more = false;                 // an entry would have been taken after the batch was full: pull again
};

// The key shedding hashes for an entry: the wake ts, rotated every second (epoch = now / 1000) so that under
// sustained load the same workflows are not the ones skipped on every pull, and mixed with a constant of its own
// for the backup, so what a busy primary sheds is not shed again by an equally busy backup.
int64_t shed_key(int64_t wake_ts, int64_t now, bool backup);

// Plans one pull over the due entries it is offered, earliest first. Offering is a visit rather than a list so the
// store can stop its scan as soon as the batch is full.
class PullPlanner {
 public:
  // `members` and `seen` must outlive the planner. A caller missing from `members` plans nothing.
  PullPlanner(PullConfig config, PullRequest request, std::span<const Member> members, const PullsSeen& seen,
              int64_t now);

  // False when the caller gets nothing whatever is due: not a member, draining or leaving, or asking for 0 tasks.
  bool pulling() const { return self_ != nullptr; }
  // One due entry (ts <= now). Returns false when the scan should stop: the batch is full, or the caller is not
  // pulling.
  bool offer(int64_t ts, const std::string& workflow_id, const std::string& name);
  PullPlan take() { return std::move(plan_); }

 private:
  // A live primary takes the entry itself unless its last pull ratio sheds it.
  bool primary_handles(const std::string& primary, const std::string& workflow_id, int64_t ts) const;
  const Ranking& ranking_for(const std::string& name);

  PullConfig config_;
  PullRequest request_;
  std::span<const Member> members_;
  const PullsSeen& seen_;
  int64_t now_;
  const Member* self_ = nullptr;
  std::map<std::string, Ranking, std::less<>> rankings_;  // by workflow name, built on first sight
  PullPlan plan_;
};

}  // namespace gasoline::assign
