#include "operator/pool/sidecar.h"

#include "operator/pool/field.h"

#include <algorithm>

namespace gasoline::op::pool {
namespace {

using nlohmann::json;

json env(std::string_view name, const std::string& value) { return {{"name", name}, {"value", value}}; }

json field_env(std::string_view name, std::string_view field_path) {
  return {{"name", name}, {"valueFrom", {{"fieldRef", {{"fieldPath", field_path}}}}}};
}

std::string join_workflows(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ",") + name;
  return out;
}

json http_get(std::string_view path) { return {{"path", path}, {"port", kAdminPortName}}; }

// The kv's TLS settings, when the operator's own connection uses TLS: the CA travels in the pod spec (it is
// public), so pool namespaces need no copy of the kv's Secret.
void add_tls_env(json& env_list, const KvSpec& kv) {
  if (!kv.tls) return;
  env_list.push_back(env("GASOLINE_KV_TLS", "true"));
  if (!kv.tls_ca_pem.empty()) env_list.push_back(env("GASOLINE_KV_TLS_CA_PEM", kv.tls_ca_pem));
}

}  // namespace

int64_t undrain_after_seconds(const DrainSpec& d) {
  return std::max<int64_t>(d.termination_grace_period_seconds, d.timeout_seconds) + kUndrainMarginSeconds;
}

json sidecar_container(const Spec& s) {
  const auto& sc = s.sidecar;
  json container = {
      {"name", kSidecarName},
      {"image", sc.image},
      {"imagePullPolicy", sc.image_pull_policy},
      {"restartPolicy", "Always"},
      {"env", json::array({
                  field_env("POD_NAME", "metadata.name"),
                  field_env("POD_UID", "metadata.uid"),
                  field_env("POD_NAMESPACE", "metadata.namespace"),
                  // GET /drain on the admin port is accepted only from the node (the kubelet's preStop hook) and
                  // loopback: any pod could take the worker out of service otherwise.
                  field_env("GASOLINE_NODE_IP", "status.hostIP"),
                  env("GASOLINE_POOL", s.kv.pool),
                  env("GASOLINE_KV", s.kv.address),
                  env("GASOLINE_TOKEN_FILE", std::string(kTokenFile)),
                  env("GASOLINE_WORKFLOWS", join_workflows(s.workflows)),
                  env("GASOLINE_CONCURRENCY", std::to_string(sc.concurrency)),
                  env("GASOLINE_PING_INTERVAL", sc.ping_interval),
                  env("GASOLINE_API_PORT", std::to_string(sc.api_port)),
                  env("GASOLINE_ADMIN_LISTEN", "0.0.0.0:" + std::to_string(sc.admin_port)),
                  env("GASOLINE_SHED_START", number_text(sc.shed_start_percent)),
                  env("GASOLINE_SHED_END", number_text(sc.shed_end_percent)),
                  env("GASOLINE_SHED_MIN_RATIO", std::to_string(sc.shed_min_ratio_permille)),
                  env("GASOLINE_DRAIN_TIMEOUT", std::to_string(s.drain.timeout_seconds) + "s"),
                  // A pod being deleted sends this container SIGTERM within its grace period; a drain that outlives
                  // it came from a stray or stuck hook (or an app that restarted) and is undone.
                  env("GASOLINE_UNDRAIN_AFTER", std::to_string(undrain_after_seconds(s.drain)) + "s"),
                  // Shedding reacts to the app container's CPU against its request, as the HPA does.
                  env("GASOLINE_CPU_SOURCE", "app"),
                  {{"name", "GASOLINE_APP_CPU_REQUEST_MILLI"},
                   {"valueFrom",
                    {{"resourceFieldRef",
                      {{"containerName", s.app_container}, {"resource", "requests.cpu"}, {"divisor", "1m"}}}}}},
              })},
      {"ports", json::array({{{"name", kAdminPortName}, {"containerPort", sc.admin_port}, {"protocol", "TCP"}}})},
      // The app containers start only once this succeeds, so probe often: a slow first probe delays every pod.
      {"startupProbe", {{"httpGet", http_get("/healthz")}, {"periodSeconds", 1}, {"failureThreshold", 120}}},
      {"readinessProbe", {{"httpGet", http_get("/readyz")}, {"periodSeconds", 5}}},
      {"resources", sc.resources},
      {"securityContext",
       {{"runAsNonRoot", true},
        {"readOnlyRootFilesystem", true},
        {"allowPrivilegeEscalation", false},
        {"capabilities", {{"drop", json::array({"ALL"})}}},
        {"seccompProfile", {{"type", "RuntimeDefault"}}}}},
      {"volumeMounts",
       json::array({{{"name", kTokenVolumeName}, {"mountPath", kTokenMountPath}, {"readOnly", true}}})},
  };
  add_tls_env(container["env"], s.kv);
  return container;
}

json token_volume(const Spec& s) {
  // Root-owned and readable by the pod's fsGroup only (pod_template sets one when the template does not): a
  // process in the pod running under another uid and without that group cannot read the kv token.
  constexpr int kReadOnlyForOwnerAndGroup = 0440;
  if (s.kv.service_account_token)
    // The pod's own identity, for the kv only (audience) and short-lived: the kv learns the pod's namespace from
    // a TokenReview, so no kv token Secret is copied into the namespace, and a leaked token expires within the
    // hour. Projected volumes are mounted even with automountServiceAccountToken: false.
    return {{"name", kTokenVolumeName},
            {"projected",
             {{"defaultMode", kReadOnlyForOwnerAndGroup},
              {"sources", json::array({{{"serviceAccountToken",
                                         {{"audience", kKvAudience},
                                          {"expirationSeconds", kServiceAccountTokenSeconds},
                                          {"path", "token"}}}}})}}}};
  return {{"name", kTokenVolumeName},
          {"secret",
           {{"secretName", s.kv.token_secret_name},
            {"defaultMode", kReadOnlyForOwnerAndGroup},
            {"items", json::array({{{"key", s.kv.token_secret_key}, {"path", "token"}}})}}}};
}

std::string api_url(const Spec& s) { return "http://127.0.0.1:" + std::to_string(s.sidecar.api_port); }

}  // namespace gasoline::op::pool
