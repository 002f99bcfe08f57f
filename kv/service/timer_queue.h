#pragma once
// A thread that runs jobs at wall-clock times. The leader's timer over the wake index: a workflow that sleeps
// until T gets its bump at T, not at the next polling tick.
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace gasoline::kv {

class TimerQueue {
 public:
  using Job = std::function<void()>;
  // Runs a batch of due jobs; the service uses it to coalesce bumps per worker.
  using BatchBegin = std::function<void()>;
  using BatchEnd = std::function<void()>;

  TimerQueue(BatchBegin begin, BatchEnd end);
  ~TimerQueue();
  void schedule(int64_t at_wall_ms, Job job);
  void stop();
  void clear();  // drops every scheduled job (this replica stopped leading)
  size_t size() const;

 private:
  void run();

  BatchBegin begin_;
  BatchEnd end_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<int64_t, Job> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace gasoline::kv
