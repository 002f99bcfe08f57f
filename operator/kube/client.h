#pragma once
// Typed-enough REST on top of Http: resource paths, JSON bodies, the API's Status errors, server-side apply.
#include "operator/kube/http.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace gasoline::kube {

using Json = nlohmann::json;

// One kind of object the operator touches. `namespaced` kinds need a namespace except for cluster-wide LIST/WATCH.
struct Resource {
  std::string group;  // "" = the core group
  std::string version;
  std::string plural;
  std::string kind;
  bool namespaced = true;

  std::string api_version() const { return group.empty() ? version : group + "/" + version; }
  // "/apis/apps/v1/namespaces/ns/deployments/name/status"; empty ns = all namespaces (lists, watches).
  std::string path(const std::string& ns = "", const std::string& name = "", const std::string& sub = "") const;
};

namespace resources {
extern const Resource kPools;
extern const Resource kDeployments;
extern const Resource kServices;
extern const Resource kHpas;
extern const Resource kPdbs;
extern const Resource kNetworkPolicies;
extern const Resource kLeases;
extern const Resource kEvents;
extern const Resource kNamespaces;
}  // namespace resources

// The API server answered with an error: its Status `reason` and `message` are kept ("NotFound", "Conflict",
// "Invalid", "Expired", ...).
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string reason, const std::string& message);
  int status() const { return status_; }
  const std::string& reason() const { return reason_; }
  bool not_found() const { return status_ == 404; }
  bool conflict() const { return status_ == 409; }
  bool gone() const { return status_ == 410; }

 private:
  int status_;
  std::string reason_;
};

// Builds an ApiError from a non-2xx response, naming what was attempted.
ApiError api_error(const std::string& what, const HttpResponse& r);

inline constexpr const char* kFieldManager = "gasoline-operator";

class Client {
 public:
  // `timeout` bounds every request of this client (the leader elector uses a short one).
  explicit Client(Http& http, std::chrono::milliseconds timeout = std::chrono::seconds(30))
      : http_(http), timeout_(timeout) {}

  Json get(const Resource& r, const std::string& ns, const std::string& name);
  std::optional<Json> find(const Resource& r, const std::string& ns, const std::string& name);  // nullopt on 404
  // One page of a LIST. `query` is appended as is ("labelSelector=...&limit=500&continue=...").
  Json list(const Resource& r, const std::string& ns, const std::string& query = "");
  // Server-side apply as the operator's field manager, forcing ownership of the fields we set (the operator is
  // the only writer of its children). `subresource` "status" applies the status. Returns the object after.
  Json apply(const Resource& r, const Json& object, const std::string& subresource = "");
  Json create(const Resource& r, const std::string& ns, const Json& object);
  // PUT with the object's resourceVersion: optimistic concurrency (leases). Conflict → ApiError 409.
  Json replace(const Resource& r, const Json& object);
  // Deletes with background propagation. Returns false when the object was already gone (404), which is no error.
  bool remove(const Resource& r, const std::string& ns, const std::string& name);

  Http& http() { return http_; }

 private:
  Json send(std::string_view method, const std::string& what, const std::string& target, const std::string& body = {},
            std::string_view content_type = "application/json");
  Http& http_;
  std::chrono::milliseconds timeout_;
};

std::string url_encode(std::string_view s);

}  // namespace gasoline::kube
