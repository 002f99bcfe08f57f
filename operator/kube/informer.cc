#include "operator/kube/informer.h"

#include "common/clock.h"
#include "common/log.h"

#include <random>

namespace gasoline::kube {
namespace {

// The watch's server-side timeout is random in [5, 10) minutes, as client-go's, so a fleet of informers does not
// reconnect in lockstep.
int watch_timeout_seconds() {
  static thread_local std::mt19937 rng{std::random_device{}()};
  return std::uniform_int_distribution<int>(300, 599)(rng);
}

// Cached objects keep only the operator's own managedFields entries: the controller reads those (to see which fields
// its last apply set) and the other managers' entries are often most of an object's size.
Json trimmed(Json object) {
  if (!object.contains("metadata") || !object["metadata"].is_object()) return object;
  auto& meta = object["metadata"];
  if (!meta.contains("managedFields") || !meta["managedFields"].is_array()) return object;
  Json ours = Json::array();
  for (auto& entry : meta["managedFields"])
    if (entry.is_object() && entry.value("manager", "") == kFieldManager) ours.push_back(std::move(entry));
  if (ours.empty())
    meta.erase("managedFields");
  else
    meta["managedFields"] = std::move(ours);
  return object;
}

struct Expired : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace

std::string object_key(const Json& object) {
  const auto& meta = object.at("metadata");
  std::string ns = meta.value("namespace", "");
  std::string name = meta.value("name", "");
  return ns.empty() ? name : ns + "/" + name;
}

Informer::Informer(Client& client, InformerOptions options, Handler handler)
    : client_(client), options_(std::move(options)), handler_(std::move(handler)) {}

Informer::~Informer() { stop(); }

void Informer::start() {
  std::lock_guard lock(mu_);
  if (stopping_ || thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
  resync_thread_ = std::thread([this] { resync_loop(); });
}

void Informer::request_stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
}

void Informer::stop() {
  request_stop();
  // start() creates the threads under mu_ and only while not stopping, so after request_stop() they either exist
  // already or never will. A watch blocked in a read ends through Http::cancel_streams() (the owner calls it).
  if (thread_.joinable()) thread_.join();
  if (resync_thread_.joinable()) resync_thread_.join();
}

bool Informer::sleep_for(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [&] { return stopping_.load(); });
}

bool Informer::wait_synced(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return synced_.load() || stopping_.load(); }) && synced_;
}

std::optional<Json> Informer::get(const std::string& ns, const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = cache_.find(ns.empty() ? name : ns + "/" + name);
  if (it == cache_.end()) return std::nullopt;
  return Json::parse(it->second);
}

std::vector<Json> Informer::objects() const {
  std::lock_guard lock(mu_);
  std::vector<Json> out;
  out.reserve(cache_.size());
  for (const auto& [_, o] : cache_) out.push_back(Json::parse(o));
  return out;
}

size_t Informer::size() const {
  std::lock_guard lock(mu_);
  return cache_.size();
}

InformerStats Informer::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void Informer::store(const Json& object, bool deleted) {
  std::string key = object_key(object);
  {
    std::lock_guard lock(mu_);
    if (deleted)
      cache_.erase(key);
    else
      cache_[key] = object.dump();
    ++stats_.events;
  }
  handler_(object);
}

void Informer::relist() {
  std::string query_base = "limit=" + std::to_string(options_.page_size);
  if (!options_.label_selector.empty()) query_base += "&labelSelector=" + url_encode(options_.label_selector);
  std::map<std::string, std::string> fresh;
  std::string cont, version;
  do {
    std::string query = query_base + (cont.empty() ? "" : "&continue=" + url_encode(cont));
    Json page;
    try {
      page = client_.list(options_.resource, options_.ns, query);
    } catch (const ApiError& e) {
      if (e.gone()) throw Expired(e.what());  // the continue token expired: start over
      throw;
    }
    for (auto& item : page["items"]) {
      // LIST items carry no apiVersion/kind; watch events do. Fill them in so both look the same.
      item["apiVersion"] = options_.resource.api_version();
      item["kind"] = options_.resource.kind;
      std::string key = object_key(item);  // before the move: `a = b` evaluates b first
      fresh[key] = trimmed(std::move(item)).dump();
    }
    const auto& meta = page["metadata"];
    cont = meta.value("continue", "");
    version = meta.value("resourceVersion", "");
  } while (!cont.empty());

  std::vector<std::string> changed, removed;  // serialized, parsed one at a time for the handler
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, o] : fresh) {
      auto it = cache_.find(key);
      if (it == cache_.end() || it->second != o) changed.push_back(o);
    }
    for (const auto& [key, o] : cache_)
      if (!fresh.count(key)) removed.push_back(o);
    cache_ = std::move(fresh);
    resource_version_ = version;
    ++stats_.lists;
  }
  if (!synced_) {
    std::lock_guard lock(mu_);
    synced_ = true;
    cv_.notify_all();
  }
  for (const auto& o : changed) handler_(Json::parse(o));
  for (const auto& o : removed) handler_(Json::parse(o));
}

void Informer::watch() {
  std::string query = "watch=1&allowWatchBookmarks=true&timeoutSeconds=" + std::to_string(watch_timeout_seconds());
  {
    std::lock_guard lock(mu_);
    query += "&resourceVersion=" + url_encode(resource_version_);
    ++stats_.watches;
  }
  if (!options_.label_selector.empty()) query += "&labelSelector=" + url_encode(options_.label_selector);
  bool expired = false;
  std::string error;
  auto r = client_.http().stream(
      options_.resource.path(options_.ns) + "?" + query,
      [&](std::string_view line) {
        if (stopping_) return false;
        auto event = Json::parse(line, nullptr, false);
        if (!event.is_object() || !event["type"].is_string() || !event["object"].is_object()) {
          log::warn("ignoring a malformed watch event", {{"resource", options_.resource.plural}});
          return true;
        }
        const std::string type = event["type"];
        auto& object = event["object"];
        if (type == "ERROR") {
          // A Status object: 410 Gone means our resourceVersion is too old; anything else ends this watch.
          if (object.value("code", 0) == 410)
            expired = true;
          else
            error = object.dump();
          return false;
        }
        std::string version = object["metadata"].value("resourceVersion", "");
        if (type != "BOOKMARK") store(trimmed(std::move(object)), type == "DELETED");
        std::lock_guard lock(mu_);
        if (!version.empty()) resource_version_ = version;
        return true;
      },
      // A bookmark or an event should come well within the watch's own timeout; silence past it is a dead link.
      std::chrono::seconds(630));
  if (r.status == 410 || expired) throw Expired("watch: resource version too old");
  // Any other ERROR event ends the watch as a failure, so it is retried with backoff and not in a tight loop.
  if (!error.empty()) throw std::runtime_error("watch " + options_.resource.plural + ": " + error);
  if (r.status != 200 && r.status != 0) throw api_error("watch " + options_.resource.plural, r);
}

void Informer::run() {
  auto backoff = std::chrono::milliseconds(200);
  bool need_list = true;
  while (!stopping_) {
    try {
      if (need_list) {
        relist();
        need_list = false;
      }
      uint64_t events_before = stats().events;
      int64_t started = mono_ms();
      watch();
      // Progress (events, or a watch that lasted) resets the backoff; a watch the server ends at once is retried
      // after a short pause, not in a tight loop.
      if (stats().events != events_before || mono_ms() - started >= 1000) {
        backoff = std::chrono::milliseconds(200);
      } else {
        if (!sleep_for(backoff)) break;
        backoff = std::min(backoff * 2, options_.max_backoff);
      }
    } catch (const Expired& e) {
      {
        std::lock_guard lock(mu_);
        ++stats_.expired;
      }
      log::info("resource version expired; relisting", {{"resource", options_.resource.plural}});
      // An expired continue token during a relist means the LIST outlived it: pause before starting over.
      if (need_list && !sleep_for(backoff)) break;
      if (need_list) backoff = std::min(backoff * 2, options_.max_backoff);
      need_list = true;
    } catch (const std::exception& e) {
      if (stopping_) break;
      {
        std::lock_guard lock(mu_);
        ++stats_.errors;
      }
      log::warn("list/watch failed; backing off",
                {{"resource", options_.resource.plural}, {"error", e.what()}, {"backoff_ms", backoff.count()}});
      if (!sleep_for(backoff)) break;
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }
}

void Informer::resync_loop() {
  while (sleep_for(options_.resync)) {
    if (!synced_) continue;
    for (const auto& o : objects()) {
      try {
        handler_(o);
      } catch (const std::exception& e) {
        log::error("resync handler failed", {{"resource", options_.resource.plural}, {"error", e.what()}});
      }
    }
  }
}

}  // namespace gasoline::kube
