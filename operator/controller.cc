#include "operator/controller.h"

#include "common/clock.h"
#include "common/log.h"
#include "operator/kube/election.h"
#include "operator/pool/applied_fields.h"
#include "operator/pool/render.h"
#include "operator/pool/status.h"

namespace gasoline::op {
namespace {

using kube::Json;
namespace res = kube::resources;

constexpr const char* kManagedSelector = "app.kubernetes.io/managed-by=gasoline-operator";

std::pair<std::string, std::string> split_key(const std::string& key) {
  auto slash = key.find('/');
  return {key.substr(0, slash), key.substr(slash + 1)};
}

// The pool that controls a child, from its controller ownerReference.
std::optional<std::string> owner_key(const Json& child) {
  const auto& meta = child["metadata"];
  for (const auto& ref : meta.value("ownerReferences", Json::array()))
    if (ref.value("kind", "") == "GasolineWorkerPool" && ref.value("controller", false))
      return meta.value("namespace", "") + "/" + ref.value("name", "");
  return std::nullopt;
}

bool owned_by(const Json& child, const Json& pool) {
  for (const auto& ref : child["metadata"].value("ownerReferences", Json::array()))
    if (ref.value("uid", "") == pool["metadata"].value("uid", "")) return true;
  return false;
}

}  // namespace

Controller::Controller(kube::Client& client, ControllerOptions options, Metrics& metrics)
    : client_(client),
      options_(std::move(options)),
      metrics_(metrics),
      kv_(options_.kv_token, options_.kv_tls, options_.kv_poll, [this](const std::string& address, const std::string& pool) {
        // A count changed: requeue the pools it concerns ("" = all pools on that kv).
        if (address == options_.defaults.kv_address) metrics_.set_kv_reachable(kv_.reachable(address));
        if (!pools_) return;
        try {
          for (const auto& p : pools_->objects()) {
            if (kv_address(p) != address) continue;
            if (pool.empty()) {
              queue_.add(kube::object_key(p));
              continue;
            }
            try {
              if (pool::kv_pool_name(p) == pool) queue_.add(kube::object_key(p));
            } catch (const pool::SpecError&) {
              // An invalid pool has no kv name to match; its Degraded condition already says why.
            }
          }
        } catch (const std::exception& e) {
          log::error("could not requeue pools after a kv change", {{"kv", address}, {"error", e.what()}});
        }
      }) {
  auto opts = [&](const kube::Resource& r, std::string selector) {
    return kube::InformerOptions{r, options_.watch_namespace, std::move(selector), options_.resync};
  };
  pools_ = std::make_unique<kube::Informer>(client_, opts(res::kPools, ""), [this](const Json& p) {
    if (auto address = kv_address(p); !address.empty()) kv_.watch(address);
    queue_.add(kube::object_key(p));
  });
  auto child = [&](const kube::Resource& r) {
    return Child{&r, std::make_unique<kube::Informer>(client_, opts(r, kManagedSelector),
                                                      [this](const Json& c) { enqueue_owner(c); })};
  };
  deployments_ = child(res::kDeployments);
  services_ = child(res::kServices);
  hpas_ = child(res::kHpas);
  pdbs_ = child(res::kPdbs);
  network_policies_ = child(res::kNetworkPolicies);
}

Controller::~Controller() { stop(); }

void Controller::enqueue_owner(const Json& child) {
  if (auto key = owner_key(child)) queue_.add(*key);
}

bool Controller::synced() const {
  return started_ && pools_->synced() && deployments_.informer->synced() && services_.informer->synced() &&
         hpas_.informer->synced() && pdbs_.informer->synced() && network_policies_.informer->synced();
}

void Controller::start(std::chrono::milliseconds timeout) {
  {
    // Threads are started under the lifecycle lock, so a stop() either comes before (and nothing starts) or after
    // (and finds them to join).
    std::lock_guard lock(lifecycle_mu_);
    if (stopped_) throw std::runtime_error("stopped before it started");
    kv_.watch(options_.defaults.kv_address);
    kv_.start();
    for (auto* i : {pools_.get(), deployments_.informer.get(), services_.informer.get(), hpas_.informer.get(),
                    pdbs_.informer.get(), network_policies_.informer.get()})
      i->start();
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (auto* i : {pools_.get(), deployments_.informer.get(), services_.informer.get(), hpas_.informer.get(),
                  pdbs_.informer.get(), network_policies_.informer.get()}) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (!i->wait_synced(std::max(left, std::chrono::milliseconds(0))))
      throw std::runtime_error("the " + i->options().resource.plural + " cache did not sync in time (RBAC? CRD "
                               "installed?)");
  }
  std::lock_guard lock(lifecycle_mu_);
  if (stopped_) throw std::runtime_error("stopped while the caches were syncing");
  started_ = true;
  log::info("caches synced", {{"pools", pools_->size()}});
  for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { worker(); });
}

void Controller::stop() {
  {
    std::lock_guard lock(lifecycle_mu_);
    stopped_ = true;
  }
  queue_.shut_down();
  {
    std::lock_guard lock(lifecycle_mu_);
    for (auto& t : workers_)
      if (t.joinable()) t.join();
    workers_.clear();
  }
  // Every informer first learns it is stopping, then the watches are cut, then they are joined: an informer whose
  // watch ended must not reconnect while it waits for its turn to be joined.
  std::vector<kube::Informer*> informers{pools_.get(), deployments_.informer.get(), services_.informer.get(),
                                         hpas_.informer.get(), pdbs_.informer.get(),
                                         network_policies_.informer.get()};
  for (auto* i : informers) i->request_stop();
  client_.http().cancel_streams();
  for (auto* i : informers) i->stop();
  kv_.stop();
}

void Controller::worker() {
  while (auto key = queue_.get()) {
    metrics_.set_queue_depth(static_cast<double>(queue_.depth()));
    metrics_.set_pools(static_cast<double>(pools_->size()));
    auto [ns, name] = split_key(*key);
    int64_t start = mono_ms();
    try {
      auto result = reconcile(ns, name);
      queue_.forget(*key);
      metrics_.reconcile(result, (mono_ms() - start) / 1000.0);
    } catch (const std::exception& e) {
      metrics_.reconcile("error", (mono_ms() - start) / 1000.0);
      log::warn("reconcile failed; retrying with backoff",
                {{"pool", *key}, {"error", e.what()}, {"failures", queue_.failures(*key) + 1}});
      queue_.add_rate_limited(*key);
    }
    queue_.done(*key);
  }
}

std::string Controller::kv_address(const Json& pool) const {
  try {
    return pool::kv_address(pool, options_.defaults);
  } catch (const pool::SpecError&) {
    // An address outside the allowlist is never dialled (the kv client would send the operator's token in its
    // hello); reconcile reports it in the pool's Degraded condition.
    return "";
  }
}

void Controller::event(const Json& pool, const std::string& type, const std::string& reason,
                       const std::string& note) {
  const auto& meta = pool["metadata"];
  Json e = {{"apiVersion", "events.k8s.io/v1"},
            {"kind", "Event"},
            {"metadata", {{"generateName", meta.value("name", "") + "-"}, {"namespace", meta.value("namespace", "")}}},
            {"eventTime", kube::micro_time_now()},
            {"reportingController", "gasoline.dev/gasoline-operator"},
            {"reportingInstance", options_.identity},
            {"action", "Reconcile"},
            {"reason", reason},
            {"type", type},
            {"note", note.substr(0, 1024)},
            {"regarding",
             {{"apiVersion", "gasoline.dev/v1alpha1"},
              {"kind", "GasolineWorkerPool"},
              {"name", meta.value("name", "")},
              {"namespace", meta.value("namespace", "")},
              {"uid", meta.value("uid", "")},
              {"resourceVersion", meta.value("resourceVersion", "")}}}};
  try {
    client_.create(res::kEvents, meta.value("namespace", ""), e);
    metrics_.write("Event", "event");
  } catch (const std::exception& ex) {
    // An Event is best effort: never fail a reconcile over it.
    log::warn("could not record an event", {{"reason", reason}, {"error", ex.what()}});
  }
}

Json Controller::sync_child(const Json& pool, Child& child, const Json& desired, Changes& changes) {
  const auto& meta = desired["metadata"];
  std::string ns = meta.value("namespace", ""), name = meta.value("name", "");
  std::string key = child.resource->plural + "/" + ns + "/" + name;
  auto live = child.informer->get(ns, name);
  std::string live_rv = live ? (*live)["metadata"].value("resourceVersion", "") : "";
  std::string dump = desired.dump();
  {
    std::lock_guard lock(applied_mu_);
    if (auto it = applied_.find(key); it != applied_.end()) {
      if (it->second.before_rv == live_rv) {
        if (it->second.desired == dump) return Json::parse(it->second.after);  // the cache lags our own write
      } else {
        applied_.erase(it);  // the cache moved on
      }
    }
  }
  if (live && !pool::needs_apply(desired, *live, kube::kFieldManager)) return *live;
  auto after = client_.apply(*child.resource, desired);
  metrics_.write(child.resource->kind, "apply");
  std::string after_rv = after["metadata"].value("resourceVersion", "");
  {
    std::lock_guard lock(applied_mu_);
    applied_[key] = PendingApply{dump, live_rv, after.dump()};
  }
  if (after_rv != live_rv) {  // an apply that changed nothing is not news
    log::info(live ? "updated" : "created", {{"pool", pool["metadata"].value("namespace", "") + "/" +
                                                            pool["metadata"].value("name", "")},
                                             {"kind", child.resource->kind},
                                             {"name", name}});
    (live ? changes.updated : changes.created).push_back(child.resource->kind + " " + name);
  }
  return after;
}

void Controller::delete_child(const Json& pool, Child& child, const std::string& name, Changes& changes) {
  std::string ns = pool["metadata"].value("namespace", "");
  auto live = child.informer->get(ns, name);
  if (!live || !owned_by(*live, pool)) return;  // never delete what this pool does not own
  bool deleted = client_.remove(*child.resource, ns, name);
  metrics_.write(child.resource->kind, "delete");
  if (!deleted) return;  // already gone: the cache lags, nothing to report
  log::info("deleted", {{"pool", ns + "/" + pool["metadata"].value("name", "")}, {"kind", child.resource->kind},
                        {"name", name}});
  changes.deleted.push_back(child.resource->kind + " " + name);
}

void Controller::report(const Json& pool, const Changes& changes) {
  if (changes.empty()) return;
  auto join = [](const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
    return out;
  };
  std::string note;
  for (const auto& [verb, items] : {std::pair{"created ", &changes.created}, std::pair{"updated ", &changes.updated},
                                    std::pair{"deleted ", &changes.deleted}})
    if (!items->empty()) note += (note.empty() ? "" : "; ") + std::string(verb) + join(*items);
  note[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(note[0])));
  std::string reason = changes.updated.empty() && changes.deleted.empty() ? "Created" : "Applied";
  event(pool, "Normal", reason, note);
}

void Controller::forget_applied(const std::string& ns, const std::string& name) {
  std::lock_guard lock(applied_mu_);
  for (const auto* child : {&deployments_, &services_, &hpas_, &pdbs_, &network_policies_})
    applied_.erase(child->resource->plural + "/" + ns + "/" + name);
}

std::string Controller::reconcile(const std::string& ns, const std::string& name) {
  auto pool = pools_->get(ns, name);
  if (!pool || (*pool)["metadata"].contains("deletionTimestamp")) {
    // Deleted: its children go with the garbage collector (owner references).
    forget_applied(ns, name);
    return "ok";
  }
  pool::Observed observed;
  std::optional<Json> deployment = deployments_.informer->get(ns, name);
  try {
    auto spec = pool::parse_spec(*pool, options_.defaults);
    observed.paused = spec.paused;
    auto children = pool::render(spec);
    if (deployment && spec.autoscaling.enabled)
      pool::keep_replicas_until_the_hpa_owns_them(children.deployment, *deployment, kube::kFieldManager);
    if (!observed.paused) {
      Changes changes;
      deployment = sync_child(*pool, deployments_, children.deployment, changes);
      sync_child(*pool, services_, children.service, changes);
      if (children.hpa)
        sync_child(*pool, hpas_, *children.hpa, changes);
      else
        delete_child(*pool, hpas_, name, changes);
      if (children.pdb)
        sync_child(*pool, pdbs_, *children.pdb, changes);
      else
        delete_child(*pool, pdbs_, name, changes);
      if (children.network_policy)
        sync_child(*pool, network_policies_, *children.network_policy, changes);
      else
        delete_child(*pool, network_policies_, name, changes);
      report(*pool, changes);
    }
  } catch (const pool::SpecError& e) {
    // The user must fix the pool; retrying will not help. Status and an Event say what is wrong.
    observed.reconcile_error = e.what();
  }
  if (deployment && owned_by(*deployment, *pool)) observed.deployment = &*deployment;
  if (!observed.reconcile_error) observed.active_workers = kv_.active(kv_address(*pool), pool::kv_pool_name(*pool));

  const std::string result = observed.reconcile_error ? "invalid" : "ok";
  Json status = pool::compute_status(*pool, observed, kube::time_now());
  Json old_status = (*pool).value("status", Json::object());
  if (status == old_status) return result;
  if (observed.reconcile_error) {
    // Once per distinct problem, not on every resync.
    bool already = false;
    for (const auto& c : old_status.value("conditions", Json::array()))
      if (c.value("type", "") == "Degraded" && c.value("message", "") == *observed.reconcile_error) already = true;
    if (!already) event(*pool, "Warning", "InvalidSpec", *observed.reconcile_error);
  }
  Json patch = {{"apiVersion", "gasoline.dev/v1alpha1"},
                {"kind", "GasolineWorkerPool"},
                {"metadata", {{"name", name}, {"namespace", ns}}},
                {"status", status}};
  client_.apply(res::kPools, patch, "status");
  metrics_.write("GasolineWorkerPool", "status");
  return result;
}

}  // namespace gasoline::op
