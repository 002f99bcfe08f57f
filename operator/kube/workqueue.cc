#include "operator/kube/workqueue.h"

#include <algorithm>
#include <cmath>

namespace gasoline::kube {

WorkQueue::WorkQueue(RateLimits limits) : limits_(limits), tokens_(limits.burst), refilled_(Clock::now()) {}

void WorkQueue::add_locked(const std::string& key) {
  if (shut_down_ || dirty_.count(key)) return;
  dirty_.insert(key);
  if (processing_.count(key)) return;  // done() queues it again
  queue_.push_back(key);
  cv_.notify_one();
}

void WorkQueue::delay_locked(const std::string& key, Clock::time_point at) {
  if (auto it = delayed_at_.find(key); it != delayed_at_.end()) {
    if (it->second <= at) return;  // already due earlier
    auto [first, last] = delayed_.equal_range(it->second);
    for (auto d = first; d != last; ++d)
      if (d->second == key) {
        delayed_.erase(d);
        break;
      }
  }
  delayed_at_[key] = at;
  delayed_.emplace(at, key);
  cv_.notify_all();
}

void WorkQueue::add(const std::string& key) {
  std::lock_guard lock(mu_);
  add_locked(key);
}

void WorkQueue::add_after(const std::string& key, std::chrono::milliseconds delay) {
  std::lock_guard lock(mu_);
  if (shut_down_) return;
  if (delay <= std::chrono::milliseconds(0)) return add_locked(key);
  delay_locked(key, Clock::now() + delay);
}

// The overall bucket: every rate-limited add takes a token; without one it waits for the next refill.
WorkQueue::Clock::duration WorkQueue::bucket_delay_locked(Clock::time_point now) {
  double elapsed = std::chrono::duration<double>(now - refilled_).count();
  tokens_ = std::min(limits_.burst, tokens_ + elapsed * limits_.qps);
  refilled_ = now;
  tokens_ -= 1;
  if (tokens_ >= 0) return Clock::duration::zero();
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(-tokens_ / limits_.qps));
}

void WorkQueue::add_rate_limited(const std::string& key) {
  std::lock_guard lock(mu_);
  if (shut_down_) return;
  int n = failures_[key]++;
  double backoff_ms = std::min(static_cast<double>(limits_.cap.count()),
                               static_cast<double>(limits_.base.count()) * std::pow(2.0, std::min(n, 40)));
  auto now = Clock::now();
  auto delay = std::max<Clock::duration>(std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double, std::milli>(backoff_ms)),
                                         bucket_delay_locked(now));
  delay_locked(key, now + delay);
}

void WorkQueue::forget(const std::string& key) {
  std::lock_guard lock(mu_);
  failures_.erase(key);
}

int WorkQueue::failures(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

std::optional<std::string> WorkQueue::get() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (shut_down_) return std::nullopt;
    auto now = Clock::now();
    while (!delayed_.empty() && delayed_.begin()->first <= now) {
      std::string key = delayed_.begin()->second;
      delayed_.erase(delayed_.begin());
      delayed_at_.erase(key);
      add_locked(key);
    }
    if (!queue_.empty()) {
      std::string key = std::move(queue_.front());
      queue_.pop_front();
      dirty_.erase(key);
      processing_.insert(key);
      return key;
    }
    if (delayed_.empty())
      cv_.wait(lock);
    else
      cv_.wait_until(lock, delayed_.begin()->first);
  }
}

void WorkQueue::done(const std::string& key) {
  std::lock_guard lock(mu_);
  processing_.erase(key);
  if (dirty_.count(key) && !shut_down_) {
    queue_.push_back(key);
    cv_.notify_one();
  }
}

void WorkQueue::shut_down() {
  std::lock_guard lock(mu_);
  shut_down_ = true;
  cv_.notify_all();
}

size_t WorkQueue::depth() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

}  // namespace gasoline::kube
