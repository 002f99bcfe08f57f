// The drain and its undoing (worker/README.md, "Drain"), part of the Sidecar: drain(), leave(), undrain_if_due()
// and the drain thread. Membership, pulling and results are in sidecar.cc.
#include "worker/sidecar.h"

#include "common/clock.h"
#include "common/log.h"
#include "kv/rpc/protocol.h"

#include <algorithm>

namespace gasoline::worker {

using namespace std::chrono_literals;

bool Sidecar::start_drain_locked(After& after, std::vector<KvSend>& released) {
  if (draining_ || stopping_) return false;
  draining_ = true;
  drain_started_mono_ = mono_ms();
  drain_asked_mono_ = drain_started_mono_;
  // Tasks the app never received move on at once instead of waiting for the drain.
  released = tasks_.drain(drain_started_mono_);
  // Nothing new will come: waiting polls are answered now, so an app told to stop is not held in a long poll.
  for (auto& p : polls_)
    after.push_back([done = std::move(p.done)] {
      done(Outcome{200, Json{{"tasks", Json::array()}, {"draining", true}}, {}});
    });
  polls_.clear();
  update_gauges_locked();
  log::info("draining", {{"worker", config_.id}, {"leased", tasks_.size()}, {"given_back", released.size()},
                         {"drain_timeout_ms", config_.drain_timeout.count()}});
  auto deadline = std::chrono::steady_clock::now() + config_.drain_timeout;
  drain_thread_ = std::thread([this, deadline] { run_drain(deadline); });
  return true;
}

void Sidecar::drain_started(After& after, const std::vector<KvSend>& released) {
  metrics_.set_ready(false);
  pull_cv_.notify_one();
  run(after);
  log_give_backs(released);
  send(released);
}

Json Sidecar::drain_summary_locked(bool finished) const {
  size_t running = tasks_.running();
  size_t buffered = tasks_.size() - running;
  int64_t waited = mono_ms() - drain_started_mono_;
  return Json{{"drained", tasks_.empty()},
              {"running", running},    // handed to the app, no result yet
              {"buffered", buffered},  // a result (or a give-back) whose commit the kv has not confirmed yet
              {"waited_ms", waited},
              {"timed_out", finished && !tasks_.empty() && !forced_ && !stopping_},
              {"forced", forced_},
              {"drain_timeout_ms", config_.drain_timeout.count()},
              {"worker", config_.id}};
}

// On the drain thread: the only place that finishes the drain and answers drain_waiters_.
void Sidecar::run_drain(std::chrono::steady_clock::time_point deadline) {
  auto stop = [&] { return forced_ || stopping_; };
  // Out of the ranking at once; pings go on (draining workers stay draining), so nothing is reclaimed.
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    try {
      // Short attempts, so a second signal is noticed between them.
      client_->call(rpc::op::kDrain, Json{{rpc::arg::kPool, config_.pool}, {rpc::arg::kWorker, config_.id}},
                    rpc::CallOptions{std::clamp(left, std::chrono::milliseconds(500), std::chrono::milliseconds(2000)),
                                     true});
      break;
    } catch (const rpc::KvError& e) {
      std::unique_lock lock(mu_);
      if (e.code() == rpc::code::kNotFound) {
        // The kv does not know us (never joined, or reclaimed): the next acknowledged ping makes this worker a
        // member again, and the membership thread then says drain.
        redrain_ = true;
        break;
      }
      // Holding nothing, there is nothing to protect by waiting for the kv: the drain only keeps new work away
      // from a worker that is about to leave, and a kv that is down assigns nothing anyway.
      if (stop() || std::chrono::steady_clock::now() >= deadline || tasks_.empty()) {
        redrain_ = true;  // the membership thread says it once the kv answers pings again
        log::error("drain call failed; the membership thread retries it once the kv is back", {{"error", e.what()}});
        break;
      }
      log::warn("drain call failed; retrying", {{"error", e.what()}});
      // A refused connection fails at once: do not spin.
      drained_cv_.wait_for(lock, std::chrono::milliseconds(200), stop);
      if (stop()) break;
    } catch (const std::exception& e) {
      // Not the kv's refusal (a reply of an unexpected shape): never end the drain thread over it.
      std::lock_guard lock(mu_);
      redrain_ = true;
      log::error("drain call failed; the membership thread retries it", {{"error", e.what()}});
      break;
    }
  }

  std::vector<Done> waiters;
  Json summary;
  {
    std::unique_lock lock(mu_);
    drained_cv_.wait_until(lock, deadline, [&] { return tasks_.empty() || stop(); });
    summary = drain_summary_locked(true);
    drain_result_ = summary;
    drain_finished_ = true;
    waiters.swap(drain_waiters_);
    log::info(tasks_.empty() ? "drained: every task the app held is resolved"
                            : "drain ended with tasks still held; leave gives them back",
              {{"worker", config_.id}, {"running", summary["running"]}, {"buffered", summary["buffered"]},
               {"waited_ms", summary["waited_ms"]}, {"forced", forced_}, {"waiting_callers", waiters.size()}});
  }
  drain_done_cv_.notify_all();
  for (auto& w : waiters) w(Outcome{200, summary, {}});
}

void Sidecar::drain(Done done) {
  After after;
  std::vector<KvSend> released;
  bool started;
  {
    std::unique_lock lock(mu_);
    drain_asked_mono_ = mono_ms();
    if (drain_finished_) {
      Json summary = drain_result_;
      lock.unlock();
      done(Outcome{200, std::move(summary), {}});
      return;
    }
    if (!draining_ && stopping_) {
      lock.unlock();
      done(shutting_down());
      return;
    }
    started = start_drain_locked(after, released);
    drain_waiters_.push_back(std::move(done));
  }
  if (started) drain_started(after, released);
}

Json Sidecar::drain() {
  After after;
  std::vector<KvSend> released;
  bool started;
  {
    std::lock_guard lock(mu_);
    started = start_drain_locked(after, released);
  }
  if (started) drain_started(after, released);
  std::unique_lock lock(mu_);
  // Not draining here only when shutdown() came first: nothing to wait for.
  drain_done_cv_.wait(lock, [&] { return drain_finished_ || !draining_; });
  return drain_finished_ ? drain_result_ : drain_summary_locked(false);
}

bool Sidecar::drain_finished() const {
  std::lock_guard lock(mu_);
  return drain_finished_;
}

void Sidecar::leave() {
  {
    std::lock_guard lock(mu_);
    if (left_ || stop_membership_) return;
    stop_membership_ = true;
  }
  member_cv_.notify_all();
  if (membership_thread_.joinable()) membership_thread_.join();

  // Leave releases whatever is still held with an immediate wake-up, so peers take it without a reclaim wait.
  // Holding nothing it only tidies the worker table (reclaim would too), so a kv that is away gets a second.
  bool holding;
  {
    std::lock_guard lock(mu_);
    holding = !tasks_.empty();
  }
  if (!holding && !client_->connected()) {
    log::info("leaving without telling the kv: it is unreachable and this worker holds nothing",
              {{"worker", config_.id}});
    std::lock_guard lock(mu_);
    left_ = true;
    return;
  }
  try {
    auto r = client_->call(rpc::op::kLeave, Json{{rpc::arg::kPool, config_.pool}, {rpc::arg::kWorker, config_.id}},
                           rpc::CallOptions{holding && client_->connected() ? 5s : 1s, true});
    log::info("left the pool", {{"worker", config_.id}, {"released", r.value("released", Json::array()).size()}});
  } catch (const rpc::KvError& e) {
    log::error("leave failed; the kv reclaims this worker's leases once it has exited (lost_after_disconnect)", {{"error", e.what()}});
  }
  std::lock_guard lock(mu_);
  left_ = true;
}

void Sidecar::undrain_if_due() {
  int64_t now = mono_ms();
  int64_t drained_for, asked;
  {
    std::lock_guard lock(mu_);
    if (config_.undrain_after.count() == 0 || !drain_finished_ || terminating_ || stopping_ || stop_membership_ ||
        now < undrain_next_try_)
      return;
    asked = drain_asked_mono_;
    drained_for = now - drain_started_mono_;
    if (now - asked < config_.undrain_after.count()) return;
  }
  try {
    client_->call(rpc::op::kUndrain, Json{{rpc::arg::kPool, config_.pool}, {rpc::arg::kWorker, config_.id}}, rpc::CallOptions{2s, true});
  } catch (const rpc::KvError& e) {
    // Not found: the kv forgot this worker (reclaimed while away), and the ping that just succeeded made it an
    // active member again, which is what undrain is for.
    if (e.code() != rpc::code::kNotFound) {
      std::lock_guard lock(mu_);
      undrain_next_try_ = now + 1000;
      log::warn("undrain failed; retrying", {{"worker", config_.id}, {"error", e.what()}});
      return;
    }
  }
  std::thread finished_drain;
  {
    std::lock_guard lock(mu_);
    // A SIGTERM, or another drain request, that came while the kv answered wins: the kv is told to drain again
    // (the membership thread says it), and the worker stays drained here.
    if (terminating_ || stopping_ || drain_asked_mono_ != asked) {
      redrain_ = true;
      return;
    }
    draining_ = false;
    drain_finished_ = false;
    drain_result_ = Json();
    forced_ = false;
    redrain_ = false;
    finished_drain = std::move(drain_thread_);
    update_gauges_locked();
  }
  if (finished_drain.joinable()) finished_drain.join();  // it finished: drain_finished_ was set as its last step
  metrics_.undrained();
  metrics_.set_ready(ready());
  log::warn("undrained: no SIGTERM followed the drain; back in the pool's ranking and pulling again",
            {{"worker", config_.id}, {"drained_for_ms", drained_for},
             {"undrain_after_ms", config_.undrain_after.count()}});
  wake_puller();
}

void Sidecar::drain_and_leave() {
  {
    std::lock_guard lock(mu_);
    terminating_ = true;
  }
  drain();
  leave();
}

void Sidecar::force() {
  {
    std::lock_guard lock(mu_);
    forced_ = true;
  }
  drained_cv_.notify_all();
}

}  // namespace gasoline::worker
