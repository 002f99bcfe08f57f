#pragma once
// The pool's status (docs/pool-spec.md "status", docs/operator.md "Status"), computed from what the operator
// observed.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace gasoline::op::pool {

struct Observed {
  const nlohmann::json* deployment = nullptr;  // the live Deployment, or null when it does not exist
  std::optional<int> active_workers;           // from the kv; nullopt when the kv could not be asked
  std::optional<std::string> reconcile_error;  // the last reconcile's failure, if it failed
  bool paused = false;  // the reconciler did not write the children; spec.paused == true counts as well
};

// The whole status object, ready for a server-side apply on /status: observedGeneration, the Deployment's replica
// counts (0 when absent), activeWorkers (left out when unknown, so the apply removes a stale value), selector, and
// the conditions Ready, Progressing and Degraded in that order. Each condition carries the pool's generation; its
// lastTransitionTime is the old one from pool.status.conditions when its status did not change, else now.
// Never throws: a pool too broken to render still gets a status saying why.
nlohmann::json compute_status(const nlohmann::json& pool, const Observed&, const std::string& now_rfc3339);

}  // namespace gasoline::op::pool
