#include "kv/service/local_log.h"

#include "common/clock.h"
#include "common/log.h"

namespace gasoline::kv {

LocalLog::LocalLog(store::StateMachine& sm, std::string address, AppliedFn on_applied, Committed on_committed)
    : sm_(sm),
      address_(std::move(address)),
      on_applied_(std::move(on_applied)),
      on_committed_(std::move(on_committed)),
      thread_([this] { run(); }) {}

LocalLog::~LocalLog() { stop(); }

void LocalLog::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LocalLog::propose(store::Command command, Done done) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      queue_.emplace_back(std::move(command), std::move(done));
      cv_.notify_one();
      return;
    }
  }
  done(store::Result{store::Code::kFailedPrecondition, "the kv is shutting down", {}});
}

// A single replica applies in order on one thread, so everything acknowledged is already applied and readable.
void LocalLog::barrier(Done done) { done(store::Result{}); }

void LocalLog::run() {
  while (true) {
    std::deque<std::pair<store::Command, Done>> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) break;
      size_t n = std::min(queue_.size(), store::kMaxCommandsPerEntry);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    store::Entry entry;
    entry.ts = std::max(wall_ms(), sm_.last_ts());
    entry.commands.reserve(batch.size());
    for (auto& [cmd, done] : batch) entry.commands.push_back(std::move(cmd));
    try {
      auto applied = sm_.apply(entry, sm_.applied_index() + 1);
      if (on_committed_) on_committed_(batch.size());
      for (size_t i = 0; i < batch.size(); ++i) batch[i].second(applied->results[i]);
      if (on_applied_) on_applied_(entry.ts, entry.commands.size(), applied->wakes);
    } catch (const std::exception& e) {
      log::error("applying an entry failed", {{"error", e.what()}, {"commands", batch.size()}});
      for (auto& [cmd, done] : batch)
        done(store::Result{store::Code::kFailedPrecondition, std::string("storage error: ") + e.what(), {}});
    }
  }
  std::deque<std::pair<store::Command, Done>> rest;
  {
    std::lock_guard lock(mu_);
    rest.swap(queue_);
  }
  for (auto& [cmd, done] : rest) done(store::Result{store::Code::kFailedPrecondition, "the kv is shutting down", {}});
}

}  // namespace gasoline::kv
