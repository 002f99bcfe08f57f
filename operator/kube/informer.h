#pragma once
// A cache of one kind of object kept current by LIST then WATCH (client-go's reflector): the watch resumes from the
// last resourceVersion seen, bookmarks advance it without events, 410 Gone (or an expired continue token) means
// the cache is too old and forces a relist, and errors back off exponentially. Every object is also handed to the
// handler again each `resync`, so a level-triggered controller re-checks the world even if nothing was said.
#include "operator/kube/client.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace gasoline::kube {

struct InformerOptions {
  Resource resource;
  std::string ns;              // "" = all namespaces
  std::string label_selector;  // "" = everything
  std::chrono::milliseconds resync{std::chrono::minutes(10)};
  std::chrono::milliseconds max_backoff{std::chrono::seconds(30)};
  int page_size = 500;
};

struct InformerStats {
  uint64_t lists = 0;          // full relists (the first included)
  uint64_t watches = 0;        // watch requests started
  uint64_t expired = 0;        // 410s that forced a relist
  uint64_t errors = 0;         // failed lists or watches (backed off)
  uint64_t events = 0;         // ADDED/MODIFIED/DELETED applied to the cache
};

class Informer {
 public:
  // Called with the object after every change (for DELETED, the last state) and for every object on resync.
  // Runs on the informer's thread; must not block for long (enqueue a key).
  using Handler = std::function<void(const Json& object)>;

  Informer(Client& client, InformerOptions options, Handler handler);
  ~Informer();
  void start();  // does nothing once stopping
  // Tells the threads to finish without waiting for them (a watch blocked in a read ends through
  // Http::cancel_streams()); stop() then joins them.
  void request_stop();
  void stop();

  bool synced() const { return synced_; }
  // Blocks until the first LIST is in the cache or the deadline passes.
  bool wait_synced(std::chrono::milliseconds timeout);
  std::optional<Json> get(const std::string& ns, const std::string& name) const;
  std::vector<Json> objects() const;
  size_t size() const;
  InformerStats stats() const;
  const InformerOptions& options() const { return options_; }

 private:
  void run();
  void relist();
  // Returns normally when the watch ended (time out, server closed) and must be resumed from resource_version_.
  void watch();
  void resync_loop();
  void store(const Json& object, bool deleted);
  bool sleep_for(std::chrono::milliseconds d);  // false once stopped

  Client& client_;
  InformerOptions options_;
  Handler handler_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Objects are kept serialized: a parsed nlohmann::json costs about ten times its text, and a cache of thousands of
  // Deployments would otherwise dominate the operator's memory. Reads parse on demand.
  std::map<std::string, std::string> cache_;
  std::string resource_version_;
  std::atomic<bool> synced_{false};
  std::atomic<bool> stopping_{false};
  InformerStats stats_;
  std::thread thread_, resync_thread_;
};

// "namespace/name" (or "name" for cluster-scoped objects).
std::string object_key(const Json& object);

}  // namespace gasoline::kube
