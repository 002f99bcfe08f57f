#include "operator/pool/pod_template.h"

#include "operator/pool/sidecar.h"

namespace gasoline::op::pool {
namespace {

using nlohmann::json;

bool has_env(const json& container, std::string_view name) {
  auto it = container.find("env");
  if (it == container.end() || !it->is_array()) return false;
  for (const auto& var : *it) {
    // A name of another type is the API server's to reject, not a reason for render to throw.
    if (!var.is_object()) continue;
    auto var_name = var.find("name");
    if (var_name != var.end() && var_name->is_string() && var_name->get_ref<const std::string&>() == name) return true;
  }
  return false;
}

bool has_pre_stop(const json& container) {
  auto it = container.find("lifecycle");
  return it != container.end() && it->is_object() && it->contains("preStop") && !(*it)["preStop"].is_null();
}

// The kubelet resolves a named port in a hook against the hook's own container, and gasoline-admin is declared on
// the sidecar, so the app container's hook needs the number.
json drain_hook(const Spec& s) {
  return {{"httpGet", {{"path", "/drain"}, {"port", s.sidecar.admin_port}}}};
}

json with_app_additions(json container, const Spec& s) {
  if (!has_env(container, "GASOLINE_API_URL")) {
    if (!container.contains("env") || container["env"].is_null()) container["env"] = json::array();
    container["env"].push_back({{"name", "GASOLINE_API_URL"}, {"value", api_url(s)}});
  }
  if (container.at("name") == s.app_container && !has_pre_stop(container))
    container["lifecycle"]["preStop"] = drain_hook(s);
  return container;
}

json labels_json(const Labels& labels) {
  json out = json::object();
  for (const auto& [key, value] : labels) out[key] = value;
  return out;
}

}  // namespace

Labels pod_labels(const Spec& s) {
  Labels labels = standard_labels(s.name);
  for (const auto& [key, value] : s.template_labels) labels[key] = value;
  for (const auto& [key, value] : selector_labels(s.name, s.selector_labels)) labels[key] = value;
  return labels;
}

json pod_template(const Spec& s) {
  json pod = s.template_spec;

  json init = json::array({sidecar_container(s)});
  if (pod.contains("initContainers") && pod["initContainers"].is_array())
    for (const auto& c : pod["initContainers"]) init.push_back(c);
  pod["initContainers"] = std::move(init);

  json containers = json::array();
  for (const auto& c : pod.at("containers")) containers.push_back(with_app_additions(c, s));
  pod["containers"] = std::move(containers);

  if (!pod.contains("volumes") || !pod["volumes"].is_array()) pod["volumes"] = json::array();
  pod["volumes"].push_back(token_volume(s));

  pod["terminationGracePeriodSeconds"] = s.drain.termination_grace_period_seconds;
  // The sidecar measures the app's CPU (the signal the HPA scales on) from the app's processes, which it sees only
  // in a shared PID namespace. A template that turns it off explicitly keeps that choice: shedding then reads 0
  // and the sidecar says why.
  if (!pod.contains("shareProcessNamespace")) pod["shareProcessNamespace"] = true;

  // Neither the sidecar nor, by default, the app talks to the API server: a mounted ServiceAccount token would only
  // hand whoever compromises the pod the namespace's default identity. A template that needs it says so.
  if (!pod.contains("automountServiceAccountToken")) pod["automountServiceAccountToken"] = false;
  // The kv token is mode 0440 (token_volume): root-owned, readable by the fsGroup, which every container of the
  // pod has as a supplementary group. Without a template fsGroup the sidecar's group is used.
  if (!pod.contains("securityContext") || !pod["securityContext"].is_object()) pod["securityContext"] = json::object();
  auto& pod_security = pod["securityContext"];
  if (!pod_security.contains("fsGroup")) {
    pod_security["fsGroup"] = kSidecarGroup;
    // Only chown a volume whose root does not already have the group: a large volume is not walked on every start.
    if (!pod_security.contains("fsGroupChangePolicy")) pod_security["fsGroupChangePolicy"] = "OnRootMismatch";
  }

  json metadata = {{"labels", labels_json(pod_labels(s))}};
  // An empty map would be dropped by the server and then look like a difference on every reconcile.
  if (!s.template_annotations.empty()) metadata["annotations"] = labels_json(s.template_annotations);
  return {{"metadata", std::move(metadata)}, {"spec", std::move(pod)}};
}

}  // namespace gasoline::op::pool
