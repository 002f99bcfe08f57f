#include "kv/rpc/authz.h"

#include "kv/rpc/protocol.h"

#include <array>
#include <algorithm>

namespace gasoline::rpc::authz {
namespace {

constexpr std::array<std::string_view, 8> kWorkerOps{op::kPing,      op::kPull,  op::kCommit,  op::kRelease,
                                                    op::kSubscribe, op::kDrain, op::kUndrain, op::kLeave};
constexpr std::array<std::string_view, 5> kClientOps{op::kDispatch, op::kGet, op::kList, op::kSignal, op::kCancel};

constexpr std::array<std::string_view, 7> kAdminOps{op::kStatus,        op::kWorkers,       op::kPoolConfigure,
                                                   op::kClusterStatus, op::kClusterAdd,    op::kClusterRemove,
                                                   op::kClusterTransfer};

constexpr std::array<std::string_view, 2> kViewerOps{op::kGet, op::kList};
constexpr std::array<std::string_view, 3> kEveryNamespaceViewerOps{op::kStatus, op::kWorkers, op::kClusterStatus};

template <size_t N>
bool among(const std::array<std::string_view, N>& ops, std::string_view op) {
  return std::find(ops.begin(), ops.end(), op) != ops.end();
}

Decision deny(const Identity& who, std::string_view op, std::string_view pool, std::string reason,
              const std::string& why) {
  std::string m = "permission denied: " + who.describe() + " may not " + std::string(op);
  if (!pool.empty()) m += " on pool " + std::string(pool);
  m += why;
  return Decision{false, std::move(reason), std::move(m)};
}

}  // namespace

std::string Identity::describe() const {
  if (admin) return "admin";
  if (viewer) return ns == kEveryNamespace ? "role viewer of every namespace" : "role viewer of namespace " + ns;
  std::string roles = worker && client ? "worker+client" : worker ? "worker" : client ? "client" : "no role";
  return "role " + roles + " of namespace " + (ns.empty() ? "(none)" : ns);
}

Identity admin(std::string subject) {
  Identity id;
  id.admin = true;
  id.subject = std::move(subject);
  return id;
}

std::string_view namespace_of(std::string_view pool) {
  auto dot = pool.find('.');
  return dot == std::string_view::npos ? std::string_view{} : pool.substr(0, dot);
}

std::string_view metric_op(std::string_view op) {
  if (among(kWorkerOps, op) || among(kClientOps, op) || among(kAdminOps, op)) return op;
  return "other";
}

Decision authorize(const Identity& who, std::string_view op, std::string_view pool, WorkerCheck worker,
                   std::string_view worker_id) {
  if (who.admin) return {};
  if (who.viewer) {
    bool everywhere = who.ns == kEveryNamespace;
    if (among(kViewerOps, op) && (everywhere || (!who.ns.empty() && namespace_of(pool) == who.ns))) return {};
    if (everywhere && among(kEveryNamespaceViewerOps, op)) return {};
    if (among(kViewerOps, op)) return deny(who, op, pool, "namespace", " (outside namespace " + who.ns + ")");
    return deny(who, op, pool, "role",
                everywhere ? " (a viewer reads: get, list, status, workers, cluster.status)"
                           : " (a viewer of one namespace reads its pools: get, list)");
  }
  bool worker_op = among(kWorkerOps, op);
  bool client_op = among(kClientOps, op);
  if (!worker_op && !client_op) return deny(who, op, pool, "role", " (admin only)");
  if ((worker_op && !who.worker) || (client_op && !who.client))
    return deny(who, op, pool, "role", worker_op ? " (a worker op)" : " (a client op)");
  // subscribe names no pool: the worker id it names must be registered, which was checked against its pool.
  if (op != op::kSubscribe && (who.ns.empty() || namespace_of(pool) != who.ns))
    return deny(who, op, pool, "namespace", " (outside namespace " + who.ns + ")");
  if (worker == WorkerCheck::kUnregistered && op != op::kPing)
    return deny(who, op, pool, "worker",
                " as worker '" + std::string(worker_id) + "': this connection never pinged as it (ping first)");
  return {};
}

}  // namespace gasoline::rpc::authz
