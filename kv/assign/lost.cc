#include "kv/assign/lost.h"

namespace gasoline::assign {

std::optional<LostVerdict> lost_verdict(int64_t now, int64_t leader_since, int64_t last_ping_ts,
                                        std::optional<int64_t> disconnected_at, const LostPolicy& policy) {
  int64_t silent = now - last_ping_ts;
  bool term_old_enough = now - leader_since >= policy.lost_after_ms;
  if (silent > policy.lost_after_ms && term_old_enough) return LostVerdict{LostReason::kSilent, policy.lost_after_ms};
  int64_t grace = policy.lost_after_disconnect_ms;
  if (grace <= 0 || grace >= policy.lost_after_ms || !disconnected_at) return std::nullopt;
  if (*disconnected_at - last_ping_ts > policy.max_ping_age_at_disconnect_ms) return std::nullopt;
  int64_t since = now - *disconnected_at;
  // After lost_after the stream's end says nothing the silence does not: the general bound decides.
  if (since >= grace && since <= policy.lost_after_ms && silent > grace)
    return LostVerdict{LostReason::kDisconnected, grace};
  return std::nullopt;
}

const char* to_string(LostReason reason) { return reason == LostReason::kSilent ? "silent" : "disconnected"; }

}  // namespace gasoline::assign
