#include "operator/kube/client.h"

namespace gasoline::kube {

namespace resources {
const Resource kPools{"gasoline.dev", "v1alpha1", "gasolineworkerpools", "GasolineWorkerPool"};
const Resource kDeployments{"apps", "v1", "deployments", "Deployment"};
const Resource kServices{"", "v1", "services", "Service"};
const Resource kHpas{"autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"};
const Resource kPdbs{"policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget"};
const Resource kNetworkPolicies{"networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"};
const Resource kLeases{"coordination.k8s.io", "v1", "leases", "Lease"};
const Resource kEvents{"events.k8s.io", "v1", "events", "Event"};
const Resource kNamespaces{"", "v1", "namespaces", "Namespace", false};
}  // namespace resources

std::string Resource::path(const std::string& ns, const std::string& name, const std::string& sub) const {
  std::string p = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  if (namespaced && !ns.empty()) p += "/namespaces/" + ns;
  p += "/" + plural;
  if (!name.empty()) p += "/" + name;
  if (!sub.empty()) p += "/" + sub;
  return p;
}

ApiError::ApiError(int status, std::string reason, const std::string& message)
    : std::runtime_error(message), status_(status), reason_(std::move(reason)) {}

ApiError api_error(const std::string& what, const HttpResponse& r) {
  std::string reason = "HTTP" + std::to_string(r.status), message;
  auto status = Json::parse(r.body, nullptr, false);
  if (status.is_object()) {
    if (status["reason"].is_string()) reason = status["reason"];
    if (status["message"].is_string()) message = status["message"];
  }
  if (message.empty()) message = r.body.substr(0, 512);
  return ApiError(r.status, reason, what + ": " + std::to_string(r.status) + " " + reason + ": " + message);
}

std::string url_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

Json Client::send(std::string_view method, const std::string& what, const std::string& target,
                  const std::string& body, std::string_view content_type) {
  auto r = http_.request(method, target, body, content_type, timeout_);
  if (r.status < 200 || r.status >= 300) throw api_error(what, r);
  auto out = Json::parse(r.body, nullptr, false);
  if (out.is_discarded()) throw std::runtime_error(what + ": the API server answered with invalid JSON");
  return out;
}

Json Client::get(const Resource& r, const std::string& ns, const std::string& name) {
  return send("GET", "get " + r.plural + " " + ns + "/" + name, r.path(ns, name));
}

std::optional<Json> Client::find(const Resource& r, const std::string& ns, const std::string& name) {
  try {
    return get(r, ns, name);
  } catch (const ApiError& e) {
    if (e.not_found()) return std::nullopt;
    throw;
  }
}

Json Client::list(const Resource& r, const std::string& ns, const std::string& query) {
  return send("GET", "list " + r.plural, r.path(ns) + (query.empty() ? "" : "?" + query));
}

Json Client::apply(const Resource& r, const Json& object, const std::string& subresource) {
  const auto& meta = object.at("metadata");
  std::string ns = meta.value("namespace", "");
  std::string name = meta.at("name");
  std::string target = r.path(ns, name, subresource) + "?fieldManager=" + kFieldManager + "&force=true";
  // JSON is YAML: the apply-patch+yaml content type accepts a JSON body.
  return send("PATCH", "apply " + r.plural + (subresource.empty() ? "" : "/" + subresource) + " " + ns + "/" + name,
              target, object.dump(), "application/apply-patch+yaml");
}

Json Client::create(const Resource& r, const std::string& ns, const Json& object) {
  return send("POST", "create " + r.plural + " in " + ns, r.path(ns), object.dump());
}

Json Client::replace(const Resource& r, const Json& object) {
  const auto& meta = object.at("metadata");
  std::string ns = meta.value("namespace", "");
  std::string name = meta.at("name");
  return send("PUT", "update " + r.plural + " " + ns + "/" + name, r.path(ns, name), object.dump());
}

bool Client::remove(const Resource& r, const std::string& ns, const std::string& name) {
  auto res = http_.request("DELETE", r.path(ns, name), R"({"propagationPolicy":"Background"})", "application/json",
                           timeout_);
  if (res.status == 404) return false;
  if (res.status >= 200 && res.status < 300) return true;
  throw api_error("delete " + r.plural + " " + ns + "/" + name, res);
}

}  // namespace gasoline::kube
