#pragma once
// The GasolineWorkerPool spec (docs/pool-spec.md) as typed values with every default applied.
//
// The CRD's structural schema applies the same defaults and CEL rules on the API server; parse_spec applies and
// checks them again because render also runs on hand-written JSON (tests) and on pools stored under an older CRD.
// It checks a little more than the CRD where the children would otherwise be broken at run time instead of
// rejected: a pool name that cannot name a Service, workflow names with the separator ',' in them, a sidecar
// whose two ports collide, reserved container and volume names.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "operator/pool/labels.h"
#include "operator/pool/spec_error.h"

namespace gasoline::op::pool {

// The operator's flags, used where the pool leaves a field out.
struct Defaults {
  std::string sidecar_image;  // --sidecar-image
  std::string kv_address;     // --kv-address
  int drain_margin_seconds = 15;  // terminationGracePeriodSeconds = drain.timeoutSeconds + this, unless set
  // --allowed-kv-address: the kv addresses (host:port) a pool's spec.kv.address may name, besides those of
  // kv_address. The operator dials a pool's kv with its own token, so it must never dial one a tenant chose.
  std::vector<std::string> allowed_kv_addresses;
  // --sidecar-kv-credential: what sidecars authenticate to the kv with. "secret": the kv token Secret, which must
  // be copied into every pool namespace. "service-account": the pod's own projected ServiceAccount token (audience
  // gasoline-kv), which a kv with --kube-token-review maps to worker and client of the pool's namespace only
  // (docs/security.md, "Roles"). A pool that names spec.kv.tokenSecretRef always gets that Secret.
  std::string sidecar_kv_credential = "secret";
  // --kv-tls*: sidecars dial the kv over TLS too, trusting this CA (PEM text, public; rendered into the pod spec so
  // that no per-namespace copy is needed). Empty with kv_tls: the system's trust store.
  bool kv_tls = false;
  std::string kv_tls_ca_pem;
  // --pool-network-policy and --pool-admin-from: each pool gets a NetworkPolicy that admits its sidecars' admin
  // port from these NetworkPolicy peers only (the node's kubelet is let through by the CNI), unless the pool says
  // otherwise in spec.networkPolicy.
  bool pool_network_policy = true;
  nlohmann::json pool_admin_from = nlohmann::json::array();
};

struct SidecarSpec {
  std::string image;
  std::string image_pull_policy = "IfNotPresent";
  nlohmann::json resources;  // core/v1 ResourceRequirements, passed through
  int concurrency = 32;
  std::string ping_interval = "500ms";
  int api_port = 7480;
  int admin_port = 7481;
  double shed_start_percent = 50;
  double shed_end_percent = 80;
  int shed_min_ratio_permille = 100;
};

struct KvSpec {
  std::string address;
  std::string pool;  // the pool's name in the kv
  std::string token_secret_name = "gasoline-kv-token";
  std::string token_secret_key = "token";
  bool service_account_token = false;  // a projected ServiceAccount token instead of the Secret (Defaults)
  bool tls = false;                    // Defaults::kv_tls
  std::string tls_ca_pem;              // Defaults::kv_tls_ca_pem
};

struct AutoscalingSpec {
  bool enabled = true;
  int32_t min_replicas = 1;
  int32_t max_replicas = 10;
  int target_cpu_utilization_percentage = 70;
  nlohmann::json behavior;  // autoscaling/v2 HorizontalPodAutoscalerBehavior, passed through
};

struct DisruptionSpec {
  bool enabled = true;
  nlohmann::json max_unavailable = 1;  // an integer >= 0 or a percentage string such as "25%"
};

// The pool's NetworkPolicy fences the sidecar's admin port only: /metrics and /readyz for monitoring and the
// kubelet, and /drain, which the sidecar itself answers only for its node and loopback. Every other port stays open,
// so the app's own traffic is not the operator's business.
struct NetworkPolicySpec {
  bool enabled = true;
  nlohmann::json admin_from = nlohmann::json::array();  // NetworkPolicyPeer objects; empty: none beyond the node
};

struct DrainSpec {
  int timeout_seconds = 30;
  // Always set: drain.terminationGracePeriodSeconds, else the template's own, else timeout + the margin.
  int64_t termination_grace_period_seconds = 45;
};

struct Spec {
  // From metadata: children are named after the pool, live in its namespace and are owned by it.
  std::string name;
  std::string namespace_name;
  std::string uid;
  int64_t generation = 0;

  std::vector<std::string> workflows;
  int32_t replicas = 1;
  Labels template_labels;
  Labels template_annotations;
  nlohmann::json template_spec;  // the app's core/v1 PodSpec as given; containers checked for name and image
  std::string app_container;
  Labels selector_labels;  // the extra ones only (spec.selectorLabels)
  SidecarSpec sidecar;
  KvSpec kv;
  AutoscalingSpec autoscaling;
  DisruptionSpec disruption;
  DrainSpec drain;
  NetworkPolicySpec network_policy;
  bool paused = false;
};

// Names the sidecar adds to the pod; a template that uses them is rejected rather than silently overwritten.
inline constexpr std::string_view kSidecarName = "gasoline-worker";
inline constexpr std::string_view kTokenVolumeName = "gasoline-kv-token";
// The audience of the projected ServiceAccount token and its lifetime (the kubelet rotates it at 80 %; the sidecar
// re-reads the file for every new connection).
inline constexpr std::string_view kKvAudience = "gasoline-kv";
inline constexpr int kServiceAccountTokenSeconds = 3600;

// `pool` is the whole GasolineWorkerPool object (metadata and spec). Throws SpecError naming the first bad field.
Spec parse_spec(const nlohmann::json& pool, const Defaults&);

// spec.kv.pool, or "<namespace>.<name>". Reads only those fields, so it also works for a pool whose spec is
// otherwise invalid (the operator still reports its active workers). Throws SpecError if they are missing, or if
// spec.kv.pool lies outside the pool's namespace (it must start with "<namespace>."): pool A's pods must not
// pull pool B's work because A's author said so.
std::string kv_pool_name(const nlohmann::json& pool);

// The kv address the operator may dial for this pool: spec.kv.address if every host:port of it is allowed (in
// --kv-address or --allowed-kv-address), else the default --kv-address. Reads only that field. Throws SpecError
// naming the field for an address outside the allowlist, so the caller neither connects nor sends its token.
std::string kv_address(const nlohmann::json& pool, const Defaults&);

// The largest number of replicas the pool can run with: maxReplicas under autoscaling, else replicas. A PDB is
// only useful (and only harmless to node drains) from 2 up.
int32_t replica_ceiling(const Spec&);

}  // namespace gasoline::op::pool
