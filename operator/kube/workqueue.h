#pragma once
// A work queue of object keys with client-go's semantics: a key waiting is queued once however often it is
// added (dirty set), a key is never handed to two workers at once (processing set; an add while processing
// re-queues it after done()), and failures re-queue with a rate limit: the slower of a per-key exponential
// backoff (5 ms doubling to 1000 s) and an overall token bucket (10/s, burst 100).
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace gasoline::kube {

struct RateLimits {
  std::chrono::milliseconds base{5};
  std::chrono::milliseconds cap{1000 * 1000};
  double qps = 10;
  double burst = 100;
};

class WorkQueue {
 public:
  using Clock = std::chrono::steady_clock;
  explicit WorkQueue(RateLimits limits = {});

  void add(const std::string& key);
  void add_after(const std::string& key, std::chrono::milliseconds delay);
  // A failed key: again after its backoff (which doubles with every failure until forget()).
  void add_rate_limited(const std::string& key);
  // The key succeeded: its backoff starts over.
  void forget(const std::string& key);
  int failures(const std::string& key) const;

  // Blocks for the next key; nullopt once shut down. Every key returned must be passed to done().
  std::optional<std::string> get();
  void done(const std::string& key);
  // Wakes every get(); keys still queued are dropped.
  void shut_down();

  size_t depth() const;  // keys waiting now (not delayed, not processing)

 private:
  void add_locked(const std::string& key);
  void delay_locked(const std::string& key, Clock::time_point at);
  Clock::duration bucket_delay_locked(Clock::time_point now);

  RateLimits limits_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::set<std::string> dirty_, processing_;
  // Waiting keys, each once at its earliest time (as client-go's AddAfter): time-ordered, plus the reverse index.
  std::multimap<Clock::time_point, std::string> delayed_;
  std::map<std::string, Clock::time_point> delayed_at_;
  std::map<std::string, int> failures_;
  double tokens_;
  Clock::time_point refilled_;
  bool shut_down_ = false;
};

}  // namespace gasoline::kube
