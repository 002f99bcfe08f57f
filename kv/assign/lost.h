#pragma once
// When the leader reclaims a worker's leases (pure: no I/O, no clock; the caller passes `now`).
//
// A worker that stops pinging is lost after `lost_after_ms`. That bound has to cover a slow ping on a loaded node,
// so it is seconds. A worker whose process died (kill -9, an OOM kill, a crash) is known sooner: the kernel closes
// its connection, so its bump stream ends. Such a worker is lost once it has also been silent for
// `lost_after_disconnect_ms`, at least two ping intervals: a worker that is alive reconnects and pings
// within it (reconnecting to any replica refreshes its ping), and the reclaim re-checks the silence when it is
// applied. A node that vanishes without closing its connections is still found by `lost_after_ms`.
//
// Reclaiming a live worker by mistake is never unsafe (its late commits are fenced by the lease token); it only
// makes the work run again. That is why a bound shorter than lost_after is acceptable on this evidence.
#include <cstdint>
#include <optional>

namespace gasoline::assign {

struct LostPolicy {
  int64_t lost_after_ms = 2000;            // silent this long: lost
  int64_t lost_after_disconnect_ms = 1000;  // silent this long with its stream closed: lost (0 = off)
  // A disconnect is evidence only if the worker was pinging normally when it closed: a sidecar also drops its
  // connection itself when a ping times out (a slow kv), and such workers must not all be reclaimed at once.
  int64_t max_ping_age_at_disconnect_ms = 1000;
};

enum class LostReason { kSilent, kDisconnected };

struct LostVerdict {
  LostReason reason;
  // The silence the reclaim command re-checks when it is applied: a ping applied in between keeps the worker.
  int64_t silent_ms;
  bool operator==(const LostVerdict&) const = default;
};

// `leader_since`: when this replica became leader. A new leader gives every worker one full lost_after to find it
// and ping before silence counts; a disconnect it saw itself counts at once.
// `disconnected_at`: when this leader saw the worker's bump stream close, if it has not subscribed again since. A
// disconnect older than lost_after is no longer evidence (the worker may have reconnected to another replica).
std::optional<LostVerdict> lost_verdict(int64_t now, int64_t leader_since, int64_t last_ping_ts,
                                        std::optional<int64_t> disconnected_at, const LostPolicy& policy);

const char* to_string(LostReason reason);

}  // namespace gasoline::assign
