#pragma once
// When a replica should take client traffic and count as Ready for its StatefulSet: the kubelet's readiness probe
// asks /readyz. A listening port alone is not enough: a replica that lost its leader, or one that restarted and is
// still replaying the log, would be counted as available, and a rolling update would stop the next replica while
// this one cannot yet help form a quorum. Pure: the state comes from RaftLog::cluster_status().
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace gasoline::kv {

// Applied entries may trail the commit index by this much and the replica still serves: under load the apply
// thread is always a batch or two behind, and that is not "catching up".
inline constexpr uint64_t kReadyApplyLag = 1000;

// Empty when the replica is ready; otherwise why not, for the probe's body and the events the kubelet records.
// `raft` is the replica's cluster_status() (fields state, leader_id, commit_index, raft_applied_index), or null for
// a single replica without Raft, which is always ready once it serves.
std::string not_ready_reason(const nlohmann::json& raft, uint64_t max_apply_lag = kReadyApplyLag);

}  // namespace gasoline::kv
