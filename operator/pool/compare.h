#pragma once
// "Does the live object already hold everything we would apply?" The reconciler skips the server-side apply when
// it does, which is what makes an unchanged pool cost zero writes. The answer must be "no" whenever an apply could
// change something; a wrong "no" only costs a no-op write, so every rule below errs that way.
//
// semantic_subset(desired, live):
//  - objects: every key of desired is in live with a subset value; keys only in live are fine (server defaults,
//    status, metadata the server owns, fields other managers set);
//  - a desired key may be missing from live when its desired value is what Go's `omitempty` drops:
//    null, "", [], or {} under a key whose Go type is a map (labels, annotations, nodeSelector, matchLabels,
//    selector, requests, limits, overhead). An empty pointer struct such as `emptyDir: {}` is not dropped by the
//    server, so it still has to be there; false and 0 are not treated as absent because pointer fields keep them
//    and absence can mean a different default (automountServiceAccountToken, enableServiceLinks);
//  - arrays: same length and element-wise subset (the order is ours, and the server keeps it);
//  - numbers: equal by value, whatever their JSON representation (1 == 1.0 == 1u);
//  - quantities: values of the maps under `requests`, `limits` and `overhead`, and `sizeLimit`, are compared as
//    Kubernetes quantities by exact value ("0.5" == "500m", "1Gi" == "1024Mi", 1 == "1"), since the server
//    canonicalises them;
//  - anything else: equal JSON. A string is never equal to a number outside quantities: int-or-string fields
//    (ports, maxUnavailable) keep the type they were written with, so 8080 != "8080" and 1 != "1".
#include <nlohmann/json.hpp>

namespace gasoline::op::pool {

bool semantic_subset(const nlohmann::json& desired, const nlohmann::json& live);

}  // namespace gasoline::op::pool
