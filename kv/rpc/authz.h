#pragma once
// Who a kv connection is and what it may do (docs/security.md, "Roles"). The hello authenticates a connection
// to an Identity; every request is then checked here against the pool it touches and, for worker ops, whether
// this connection registered the worker id it names. Pure: the service looks the pool up, this decides.
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace gasoline::rpc::authz {

struct Identity {
  bool admin = false;   // every op on every pool, cluster.* included
  bool worker = false;  // ping, pull, commit, release, subscribe, drain, undrain, leave on the pools of `ns`
  bool client = false;  // dispatch, get, list, signal, cancel on the pools of `ns`
  // Read only: get and list on the pools of `ns`; with `ns` "*" on every pool, plus status, workers and
  // cluster.status (what `gasctl status`, `watch` and `cluster status` need). Never a lease token.
  bool viewer = false;
  std::string ns;       // the namespace the worker, client and viewer roles are scoped to
  std::string subject;  // who it is, for logs: "admin token", "credentials line 3", "system:serviceaccount:a:sa"
  bool from_credentials_file = false;  // a --credentials-file line: revoked when a reload drops or changes it

  // The same roles on the same namespace (subjects aside).
  bool same_roles(const Identity& other) const {
    return admin == other.admin && worker == other.worker && client == other.client && viewer == other.viewer &&
           ns == other.ns;
  }

  // "admin", "worker of namespace a", "worker+client of namespace a"
  std::string describe() const;
};

Identity admin(std::string subject);

// The outcome of authenticating a hello's token: an identity, or the reason it was refused.
using AuthDone = std::function<void(std::optional<Identity> identity, std::string error)>;
// Calls `done` exactly once, from any thread, possibly later (a TokenReview is an HTTP round trip).
using Authenticator = std::function<void(const std::string& token, AuthDone done)>;

// What the service knows about the worker id a request names.
enum class WorkerCheck {
  kNone,          // the op names no worker id
  kRegistered,    // this connection pinged as that worker id of that pool
  kUnregistered,  // it never did
};

struct Decision {
  bool allowed = true;
  std::string reason;   // a short label for gasoline_kv_requests_denied_total: role, namespace, worker
  std::string message;  // "permission denied: ...", sent to the caller
};

inline constexpr std::string_view kEveryNamespace = "*";

// The namespace a pool belongs to: the part of `<namespace>.<name>` before the first dot (Kubernetes namespaces
// have no dots). Empty for a pool without a dot, which only an admin may touch.
std::string_view namespace_of(std::string_view pool);

// The op as a metric label: one of the kv's ops, or "other" (a caller must not grow the label set at will).
std::string_view metric_op(std::string_view op);

// `pool` is the pool the op touches (the pool argument, or the pool of the workflow it names); empty for ops
// that name no pool (subscribe, status, cluster.*). A ping registers its worker id, so it needs no registration.
Decision authorize(const Identity& who, std::string_view op, std::string_view pool,
                   WorkerCheck worker = WorkerCheck::kNone, std::string_view worker_id = {});

}  // namespace gasoline::rpc::authz
