#pragma once
// The children of a GasolineWorkerPool (docs/pool-spec.md, "Children"), as complete server-side apply bodies.
//
// Pure: the same pool gives byte-identical JSON, the input is never modified, and nothing here talks to the
// cluster. Fields the server or other controllers own are left out on purpose: the Deployment's replicas while
// the HPA owns them, status, and any hash annotation (the Deployment's own template hash does that job).
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

#include "operator/pool/spec.h"

namespace gasoline::op::pool {

struct Children {
  nlohmann::json deployment, service;
  std::optional<nlohmann::json> hpa;  // absent: the operator deletes an HPA it owns
  std::optional<nlohmann::json> pdb;  // absent: likewise
  std::optional<nlohmann::json> network_policy;  // absent: likewise
};

// Throws SpecError (from parse_spec) for an invalid pool.
Children render(const nlohmann::json& pool, const Defaults&);
Children render(const Spec&);

// Turning autoscaling on hands the Deployment's replicas to the HPA. Server-side apply deletes a field its manager
// set before and now leaves out, and a Deployment without replicas runs one pod, so while our last apply (in
// `live`'s managedFields) still owns spec.replicas the rendered Deployment keeps the live value. The HPA's first
// scale takes the field over (an update owns what it changes) and from then on it stays out.
void keep_replicas_until_the_hpa_owns_them(nlohmann::json& deployment, const nlohmann::json& live,
                                           std::string_view field_manager);

// The pods' selector as "k=v,k=v" sorted by key, for status.selector. Reads only metadata.name and
// spec.selectorLabels, so a pool with an otherwise invalid spec still gets one. Throws SpecError if those are bad.
std::string selector_string(const nlohmann::json& pool);

// The owner reference every child carries, so deleting the pool lets the garbage collector delete them.
nlohmann::json owner_reference(const Spec&);

}  // namespace gasoline::op::pool
