#pragma once
// Shared inputs of the operator/pool unit tests: the operator flags they run with and a small valid pool that
// table cases modify with a JSON merge patch (RFC 7386: an object merges, null deletes, anything else replaces).
#include <nlohmann/json.hpp>

#include "operator/pool/spec.h"

namespace gasoline::op::pool::testing {

// The golden pools that name their own kv (kv-<i>.kv.gasoline, kv:1) are allowed to, as an operator started
// with --allowed-kv-address for them would allow.
inline Defaults test_defaults() {
  return Defaults{"registry.example/gasoline/gasoline-worker:0.1.0",
                  "gasoline-kv.gasoline-system.svc:7400",
                  15,
                  {"kv-0.kv.gasoline:7400,kv-1.kv.gasoline:7400,kv-2.kv.gasoline:7400", "kv:1"}};
}

inline nlohmann::json minimal_pool() {
  return nlohmann::json::parse(R"({
    "apiVersion": "gasoline.dev/v1alpha1",
    "kind": "GasolineWorkerPool",
    "metadata": {"name": "orders", "namespace": "shop", "uid": "uid-1", "generation": 4},
    "spec": {
      "workflows": ["checkout"],
      "template": {"spec": {"containers": [{"name": "app", "image": "registry.example/shop/orders:1"}]}}
    }
  })");
}

inline nlohmann::json patched(nlohmann::json pool, const nlohmann::json& patch) {
  pool.merge_patch(patch);
  return pool;
}

inline nlohmann::json minimal_pool_with(const char* patch) { return patched(minimal_pool(), nlohmann::json::parse(patch)); }

}  // namespace gasoline::op::pool::testing
