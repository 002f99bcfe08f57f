#pragma once
// Who pulls a due workflow. Every caller evaluates this on its own view of the members, with no
// coordination, so the functions are pure and deterministic: same members + same workflow = same answer.
//
// Each workflow has up to two candidates. The primary takes it at once; the backup takes it only after
// a grace period, so a healthy primary is not contended, yet work still moves when the primary is dead,
// missing from a view, or shedding load.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "kv/assign/ranking.h"

namespace gasoline::assign {

enum class Strategy {
  // The original: the bucket is chosen by the wake ts alone. Kept for comparison and rollback; it
  // moves ~N/(N+1) of workflows on every join/leave and puts same-millisecond wake-ups on one worker.
  kModuloNext,
  // Default: highest-random-weight hashing over (workflow id, worker id). A join/leave moves only the
  // workflows the changed member wins or loses (~1/N), and same-ts bursts spread evenly.
  kRendezvous,
  // Every member pulls everything (tiny pools, debugging). Contention is left to the lease CAS.
  kAll,
};

std::string_view to_string(Strategy);  // "modulo-next", "rendezvous", "all"
std::optional<Strategy> parse_strategy(std::string_view);  // exact names above; nullopt otherwise

// Indices into a sorted member list. backup == -1 when N == 1; both -1 when N == 0.
// For kAll, primary is the first member and backup -1: kAll is only meaningful through role_of.
struct Candidates {
  int primary = -1;
  int backup = -1;
};

// modulo-next (faithful to the original): bucket = hash_ts(earliest_wake_ts) % N, primary = bucket,
//   backup = the bucket's predecessor. (The original let worker i pull buckets i and i+1, which is the
//   same pair seen from the other side.)
// rendezvous: primary = highest rendezvous_score, backup = second highest; equal scores go to the
//   smaller id so the order is total and every caller agrees.
// `sorted_members` must be sorted and unique (a Ranking's members); modulo-next depends on the order.
Candidates pick(Strategy, std::span<const std::string> sorted_members, std::string_view workflow_id,
                int64_t earliest_wake_ts);

enum class Role { kNone, kPrimary, kBackup };

// The caller's role for one workflow. kAll makes every member a primary. A ranking without a valid
// self (empty list, self == -1 or out of range) yields kNone rather than crashing.
Role role_of(Strategy, const Ranking&, std::string_view workflow_id, int64_t earliest_wake_ts);

// overdue_ms = now - wake_ts. A primary takes at once; a backup waits until the entry is
// `backup_grace_ms` overdue, i.e. until the primary has evidently not taken it. kNone never takes.
// Grace 0 is the original rule (both candidates take every due entry).
bool should_take(Role, int64_t overdue_ms, int64_t backup_grace_ms);

}  // namespace gasoline::assign
