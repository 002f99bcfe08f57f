#include "kv/service/readiness.h"

namespace gasoline::kv {

std::string not_ready_reason(const nlohmann::json& raft, uint64_t max_apply_lag) {
  if (raft.is_null()) return "";
  if (!raft.is_object()) return "no replication state yet";
  const std::string state = raft.value("state", "");
  if (state.empty() || state == "unavailable") return "raft is not running yet";
  if (raft.value("leader_id", uint64_t{0}) == 0)
    return "no known leader (an election is under way, or this replica is cut off from the quorum)";
  const auto commit = raft.value("commit_index", uint64_t{0});
  const auto applied = raft.value("raft_applied_index", uint64_t{0});
  if (commit > applied && commit - applied > max_apply_lag)
    return "catching up: applied " + std::to_string(applied) + " of " + std::to_string(commit) + " committed entries";
  return "";
}

}  // namespace gasoline::kv
