#pragma once
// The Deployment's pod template: the user's template with the sidecar, the kv token volume, the drain hook, the
// app API address and the pool's labels added. Whatever the user's template already sets is kept, except the
// selector labels, which must match or the Deployment would not own its own pods.
#include <nlohmann/json.hpp>

#include "operator/pool/spec.h"

namespace gasoline::op::pool {

nlohmann::json pod_template(const Spec&);

// The labels the pods carry: the standard ones, overridden by the template's own, overridden by the selector.
Labels pod_labels(const Spec&);

}  // namespace gasoline::op::pool
