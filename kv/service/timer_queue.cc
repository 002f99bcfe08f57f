#include "kv/service/timer_queue.h"

#include "common/clock.h"

#include <chrono>

namespace gasoline::kv {

TimerQueue::TimerQueue(BatchBegin begin, BatchEnd end)
    : begin_(std::move(begin)), end_(std::move(end)), thread_([this] { run(); }) {}

TimerQueue::~TimerQueue() { stop(); }

void TimerQueue::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void TimerQueue::schedule(int64_t at, Job job) {
  bool earliest;
  {
    std::lock_guard lock(mu_);
    earliest = jobs_.empty() || at < jobs_.begin()->first;
    jobs_.emplace(at, std::move(job));
  }
  if (earliest) cv_.notify_one();
}

void TimerQueue::clear() {
  std::lock_guard lock(mu_);
  jobs_.clear();
}

size_t TimerQueue::size() const {
  std::lock_guard lock(mu_);
  return jobs_.size();
}

void TimerQueue::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (jobs_.empty()) {
      cv_.wait(lock);
      continue;
    }
    int64_t now = wall_ms();
    int64_t next = jobs_.begin()->first;
    if (next > now) {
      cv_.wait_for(lock, std::chrono::milliseconds(next - now));
      continue;
    }
    std::vector<Job> due;
    for (auto it = jobs_.begin(); it != jobs_.end() && it->first <= now;) {
      due.push_back(std::move(it->second));
      it = jobs_.erase(it);
    }
    lock.unlock();
    if (begin_) begin_();
    for (auto& job : due) job();
    if (end_) end_();
    lock.lock();
  }
}

}  // namespace gasoline::kv
