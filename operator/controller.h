#pragma once
// The GasolineWorkerPool controller: informers on pools and on the children the operator owns, a work queue of
// pool keys, and a level-triggered reconcile: read the pool and the cached children, render what should exist
// (operator/pool, pure), write only what differs, delete children that should no longer exist, then write the
// status if it changed. Events only ever say "look at this pool again"; what to do is decided from the world.
#include "operator/kube/client.h"
#include "operator/kube/informer.h"
#include "operator/kube/workqueue.h"
#include "operator/kv_status.h"
#include "operator/metrics.h"
#include "operator/pool/spec.h"

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace gasoline::op {

struct ControllerOptions {
  std::string watch_namespace;  // "" = every namespace
  pool::Defaults defaults;
  int workers = 2;
  std::chrono::milliseconds resync{std::chrono::minutes(10)};
  std::string kv_token;
  rpc::tls::ClientFiles kv_tls;
  std::chrono::milliseconds kv_poll{std::chrono::seconds(10)};
  std::string identity;  // reportingInstance of Events
};

class Controller {
 public:
  Controller(kube::Client& client, ControllerOptions options, Metrics& metrics);
  ~Controller();
  // Starts the informers and the kv poller, waits for the caches, then starts the workers.
  // Throws when the caches cannot sync within `timeout`.
  void start(std::chrono::milliseconds timeout);
  // Lets reconciles in progress finish, then stops everything.
  void stop();
  bool synced() const;

 private:
  struct Child {
    const kube::Resource* resource;
    std::unique_ptr<kube::Informer> informer;
  };

  void enqueue_owner(const kube::Json& child);
  void worker();
  // Throws on API errors (the key is retried with backoff). Returns "ok" or "invalid" (the spec cannot be rendered).
  std::string reconcile(const std::string& ns, const std::string& name);
  // What one reconcile changed, reported as one Event (not one per child: Events are writes too).
  struct Changes {
    std::vector<std::string> created, updated, deleted;
    bool empty() const { return created.empty() && updated.empty() && deleted.empty(); }
  };
  // Makes `desired` exist as rendered. Returns the live object afterwards.
  kube::Json sync_child(const kube::Json& pool, Child& child, const kube::Json& desired, Changes& changes);
  void delete_child(const kube::Json& pool, Child& child, const std::string& name, Changes& changes);
  void report(const kube::Json& pool, const Changes& changes);
  void event(const kube::Json& pool, const std::string& type, const std::string& reason, const std::string& note);
  std::string kv_address(const kube::Json& pool) const;

  kube::Client& client_;
  ControllerOptions options_;
  Metrics& metrics_;
  kube::WorkQueue queue_;
  std::unique_ptr<kube::Informer> pools_;
  Child deployments_, services_, hpas_, pdbs_, network_policies_;
  KvStatus kv_;
  std::mutex lifecycle_mu_;  // start() may still be creating workers when stop() comes
  std::vector<std::thread> workers_;
  std::atomic<bool> started_{false}, stopped_{false};

  // Our writes the informer has not shown yet: while the cache still holds the version it held before our apply
  // (or nothing, for a create), the same desired object is not applied again and the apply's answer stands in for
  // the cache. Any newer version, ours or anyone's, drops the entry and is judged by needs_apply again.
  struct PendingApply {
    std::string desired;    // dump of what we applied
    std::string before_rv;  // the cache's resourceVersion before the apply ("" = not in the cache)
    std::string after;      // dump of the server's answer
  };
  std::mutex applied_mu_;
  std::map<std::string, PendingApply> applied_;  // "plural/ns/name"
  void forget_applied(const std::string& ns, const std::string& name);
};

}  // namespace gasoline::op
