#include "tests/support/sim_worker.h"

#include "common/clock.h"

namespace gasoline::testing {

SimWorker::SimWorker(SimWorkerOptions options) : options_(std::move(options)) {
  cpu_ = options_.cpu;
  if (!options_.run) options_.run = [](const Json&) { return Json{{"kind", "complete"}, {"output", nullptr}}; };
}

SimWorker::~SimWorker() { crash(); }

void SimWorker::start() {
  rpc::ClientOptions o;
  o.endpoints = {options_.address};
  o.token = options_.token;
  o.name = "sim-worker/" + options_.id;
  o.call_timeout = std::chrono::seconds(10);
  client_ = std::make_unique<rpc::Client>(o);
  client_->set_bump_handler([this](const Json&) {
    {
      std::lock_guard lock(bump_mu_);
      bumped_ = true;
    }
    // The ping loop waits on the same condition variable: notify_one could wake it instead of the puller, which
    // would then sleep until the fallback tick (a 250 ms wake-lag tail in the benchmarks).
    bump_cv_.notify_all();
  });
  std::string id = options_.id;
  rpc::Client* c = client_.get();
  client_->set_connect_handler([c, id] {
    c->call_async("subscribe", Json{{"worker", id}}, [](std::exception_ptr, Json) {});
  });
  // Join before pulling: the kv refuses pulls from non-members.
  client_->call("ping", Json{{"pool", options_.pool}, {"worker", options_.id}, {"workflows", options_.workflows},
                             {"cpu", cpu_.load()}, {"free_slots", options_.max_pull}},
                rpc::CallOptions{std::chrono::seconds(10), true});
  running_ = true;
  ping_thread_ = std::thread([this] { ping_loop(); });
  pull_thread_ = std::thread([this] { pull_loop(); });
}

void SimWorker::ping_loop() {
  while (running_) {
    try {
      client_->call("ping", Json{{"pool", options_.pool},
                                 {"worker", options_.id},
                                 {"pod", options_.id},
                                 {"workflows", options_.workflows},
                                 {"cpu", cpu_.load()},
                                 {"free_slots", options_.max_pull}});
    } catch (const std::exception&) {
      // The next ping retries; a kv restart is survivable.
    }
    std::unique_lock lock(bump_mu_);
    bump_cv_.wait_for(lock, std::chrono::milliseconds(options_.ping_interval_ms), [&] { return !running_; });
  }
}

void SimWorker::pull_loop() {
  while (running_) {
    bool more = false;
    try {
      auto reply = client_->call("pull", Json{{"pool", options_.pool},
                                              {"worker", options_.id},
                                              {"max", options_.max_pull},
                                              {"cpu", cpu_.load()}});
      int64_t pulled_at = wall_ms();
      more = reply.value("more", false);
      lease_conflicts_ += reply.value("conflicts", uint64_t{0});
      for (const auto& task : reply["tasks"]) {
        ++pulled_;
        CommitRecord rec;
        rec.workflow_id = task.value("workflow_id", "");
        rec.worker = options_.id;
        rec.token = task.value("token", uint64_t{0});
        rec.steps_before = task.value("steps", uint64_t{0});
        rec.wake_ts = task.value("wake_ts", int64_t{0});
        rec.pulled_at = pulled_at;
        commit(task, std::move(rec));
      }
    } catch (const std::exception&) {
      more = false;
    }
    if (!running_) break;
    if (!more) {
      std::unique_lock lock(bump_mu_);
      bump_cv_.wait_for(lock, std::chrono::milliseconds(options_.fallback_tick_ms),
                        [&] { return bumped_ || !running_; });
      bumped_ = false;
    }
  }
}

void SimWorker::commit(const Json& task, CommitRecord rec) {
  Json step = options_.run(task);
  uint64_t consumed = 0;
  for (const auto& s : task["signals"]) consumed = std::max(consumed, s.value("seq", uint64_t{0}));
  Json args{{"workflow_id", rec.workflow_id}, {"worker", options_.id}, {"token", rec.token},
            {"step", step},                   {"consumed_signal_seq", consumed}};
  if (task.contains("children_to_dispatch")) args["children"] = task["children_to_dispatch"];
  ++inflight_;
  client_->call_async("commit", args, [this, rec = std::move(rec)](std::exception_ptr e, Json) mutable {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const rpc::KvError& err) {
        rec.error_code = err.code();
        if (err.code() == rpc::code::kConflict) ++conflicts_;
      } catch (const std::exception&) {
        rec.error_code = "unknown";
      }
    } else {
      rec.ok = true;
      ++committed_;
    }
    if (options_.record) {
      std::lock_guard lock(history_mu_);
      history_.push_back(std::move(rec));
    }
    --inflight_;
  });
}

void SimWorker::stop() {
  if (!running_) return;
  try {
    client_->call("drain", Json{{"pool", options_.pool}, {"worker", options_.id}});
  } catch (const std::exception&) {
  }
  running_ = false;
  bump_cv_.notify_all();
  if (pull_thread_.joinable()) pull_thread_.join();
  if (ping_thread_.joinable()) ping_thread_.join();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (inflight_ > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  try {
    client_->call("leave", Json{{"pool", options_.pool}, {"worker", options_.id}});
  } catch (const std::exception&) {
  }
  client_->close();
}

void SimWorker::crash() {
  running_ = false;
  bump_cv_.notify_all();
  if (pull_thread_.joinable()) pull_thread_.join();
  if (ping_thread_.joinable()) ping_thread_.join();
  if (client_) client_->close();
}

std::vector<CommitRecord> SimWorker::history() const {
  std::lock_guard lock(history_mu_);
  return history_;
}

}  // namespace gasoline::testing
