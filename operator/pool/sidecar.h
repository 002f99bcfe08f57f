#pragma once
// The gasoline-worker sidecar container and the kv token volume it reads, as the pod template carries them.
#include <nlohmann/json.hpp>

#include <string_view>

#include "operator/pool/spec.h"

namespace gasoline::op::pool {

inline constexpr std::string_view kAdminPortName = "gasoline-admin";
inline constexpr std::string_view kTokenMountPath = "/var/run/gasoline/kv";
inline constexpr std::string_view kTokenFile = "/var/run/gasoline/kv/token";
// The pod's fsGroup when the template sets none (65532, "nonroot" of distroless images and the chart's pods): the
// group that may read the kv token file.
inline constexpr int64_t kSidecarGroup = 65532;

// A native sidecar (an init container with restartPolicy Always, Kubernetes >= 1.29): it starts before the app
// containers, its startup probe gates them, and it is stopped only after they exited, so the app's preStop /drain
// can still reach it.
nlohmann::json sidecar_container(const Spec&);

// The sidecar's --undrain-after: beyond both the grace period (the sidecar's SIGTERM comes within it when the pod is
// deleted) and the drain timeout (the sidecar refuses a bound that could undo a drain still waiting for tasks).
inline constexpr int64_t kUndrainMarginSeconds = 30;
int64_t undrain_after_seconds(const DrainSpec&);

nlohmann::json token_volume(const Spec&);

// GASOLINE_API_URL for the app containers: where the sidecar's app API listens inside the pod.
std::string api_url(const Spec&);

}  // namespace gasoline::op::pool
