#include "operator/pool/render.h"

#include "operator/pool/applied_fields.h"

#include "operator/pool/field.h"
#include "operator/pool/pod_template.h"
#include "operator/pool/sidecar.h"

namespace gasoline::op::pool {
namespace {

using nlohmann::json;

json labels_json(const Labels& labels) {
  json out = json::object();
  for (const auto& [key, value] : labels) out[key] = value;
  return out;
}

json metadata(const Spec& s) {
  return {{"name", s.name},
          {"namespace", s.namespace_name},
          {"labels", labels_json(standard_labels(s.name))},
          {"ownerReferences", json::array({owner_reference(s)})}};
}

json match_labels(const Spec& s) { return {{"matchLabels", labels_json(selector_labels(s.name, s.selector_labels))}}; }

json deployment(const Spec& s) {
  json spec = {
      {"selector", match_labels(s)},
      // Never below the desired count during a rollout: a new pod must be ready (its sidecar connected to the kv)
      // before an old one starts draining.
      {"strategy", {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxSurge", "25%"}, {"maxUnavailable", 0}}}}},
      {"template", pod_template(s)},
  };
  // Under autoscaling the HPA owns replicas; applying them would fight it on every reconcile.
  if (!s.autoscaling.enabled) spec["replicas"] = s.replicas;
  return {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"metadata", metadata(s)}, {"spec", std::move(spec)}};
}

json service(const Spec& s) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", metadata(s)},
          {"spec",
           {{"type", "ClusterIP"},
            {"selector", labels_json(selector_labels(s.name, s.selector_labels))},
            // The target is the number: resolving a named target port on a native sidecar depends on the version
            // of the endpoint controller, the number does not.
            {"ports", json::array({{{"name", kAdminPortName},
                                    {"port", s.sidecar.admin_port},
                                    {"targetPort", s.sidecar.admin_port},
                                    {"protocol", "TCP"}}})}}}};
}

json hpa(const Spec& s) {
  const auto& a = s.autoscaling;
  // ContainerResource on the app container only: the sidecar's CPU must not dilute or inflate the signal.
  json metric = {{"type", "ContainerResource"},
                 {"containerResource",
                  {{"name", "cpu"},
                   {"container", s.app_container},
                   {"target", {{"type", "Utilization"}, {"averageUtilization", a.target_cpu_utilization_percentage}}}}}};
  json spec = {{"scaleTargetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", s.name}}},
               {"minReplicas", a.min_replicas},
               {"maxReplicas", a.max_replicas},
               {"metrics", json::array({std::move(metric)})}};
  // behavior: {} asks for the HPA controller's own defaults, which it fills in when the field is absent.
  if (!a.behavior.empty()) spec["behavior"] = a.behavior;
  return {{"apiVersion", "autoscaling/v2"},
          {"kind", "HorizontalPodAutoscaler"},
          {"metadata", metadata(s)},
          {"spec", std::move(spec)}};
}

json pdb(const Spec& s) {
  return {{"apiVersion", "policy/v1"},
          {"kind", "PodDisruptionBudget"},
          {"metadata", metadata(s)},
          {"spec",
           {{"maxUnavailable", s.disruption.max_unavailable},
            {"selector", match_labels(s)},
            // A crash-looping pod must not block node drains: it is not serving anyway.
            {"unhealthyPodEvictionPolicy", "AlwaysAllow"}}}};
}

json network_policy(const Spec& s) {
  const int admin = s.sidecar.admin_port;
  // Every port but the admin port, from anywhere: a policy that selects the pods isolates them, and the app's own
  // ports (declared or not) must keep answering as they did before the policy.
  json others = json::array();
  auto range = [&](const char* protocol, int first, int last) {
    if (first <= last) others.push_back({{"protocol", protocol}, {"port", first}, {"endPort", last}});
  };
  range("TCP", 1, admin - 1);
  range("TCP", admin + 1, 65535);
  range("UDP", 1, 65535);
  range("SCTP", 1, 65535);
  json ingress = json::array({{{"ports", std::move(others)}}});
  // An ingress rule without "from" admits everyone: with no peers, the admin port gets no rule at all (the kubelet
  // on the node still reaches it; NetworkPolicies do not apply to the node's own traffic).
  if (!s.network_policy.admin_from.empty())
    ingress.push_back({{"from", s.network_policy.admin_from},
                       {"ports", json::array({{{"protocol", "TCP"}, {"port", admin}}})}});
  return {{"apiVersion", "networking.k8s.io/v1"},
          {"kind", "NetworkPolicy"},
          {"metadata", metadata(s)},
          {"spec", {{"podSelector", match_labels(s)}, {"policyTypes", json::array({"Ingress"})},
                    {"ingress", std::move(ingress)}}}};
}

}  // namespace

void keep_replicas_until_the_hpa_owns_them(json& deployment, const json& live, std::string_view field_manager) {
  if (!deployment.is_object() || !deployment["spec"].is_object() || deployment["spec"].contains("replicas")) return;
  const json::json_pointer replicas("/spec/replicas");
  if (!live.is_object() || !live.contains(replicas) || !live.at(replicas).is_number_integer()) return;
  if (applied_field(live, field_manager, {"spec", "replicas"})) deployment["spec"]["replicas"] = live.at(replicas);
}

json owner_reference(const Spec& s) {
  return {{"apiVersion", "gasoline.dev/v1alpha1"},
          {"kind", "GasolineWorkerPool"},
          {"name", s.name},
          {"uid", s.uid},
          {"controller", true},
          {"blockOwnerDeletion", true}};
}

Children render(const Spec& s) {
  Children children{deployment(s), service(s), std::nullopt, std::nullopt, std::nullopt};
  if (s.autoscaling.enabled) children.hpa = hpa(s);
  // With one pod, any PDB either blocks every node drain (maxUnavailable 0) or protects nothing.
  if (s.disruption.enabled && replica_ceiling(s) >= 2) children.pdb = pdb(s);
  if (s.network_policy.enabled) children.network_policy = network_policy(s);
  return children;
}

Children render(const json& pool, const Defaults& defaults) { return render(parse_spec(pool, defaults)); }

std::string selector_string(const json& pool) {
  if (!pool.is_object()) throw SpecError("the GasolineWorkerPool must be a JSON object, got " + describe(pool));
  const Field root(&pool, "");
  const Field name = root["metadata"]["name"];
  const Field extra = root["spec"]["selectorLabels"];
  return to_selector_string(selector_labels(name.string(), extra.present() ? extra.string_map() : Labels{}));
}

}  // namespace gasoline::op::pool
