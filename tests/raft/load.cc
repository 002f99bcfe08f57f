#include "tests/raft/load.h"

#include <algorithm>
#include <stdexcept>

namespace gasoline::raft_test {

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

ClientSlot::ClientSlot(std::vector<std::string> endpoints, std::string token, std::string name)
    : endpoints_(std::move(endpoints)), token_(std::move(token)), name_(std::move(name)) {}

rpc::Client& ClientSlot::get() {
  if (!client_) {
    rpc::ClientOptions o;
    for (size_t i = 0; i < endpoints_.size(); ++i) o.endpoints.push_back(endpoints_[(first_ + i) % endpoints_.size()]);
    o.token = token_;
    o.name = name_;
    o.connect_timeout = std::chrono::milliseconds(1000);
    o.call_timeout = std::chrono::seconds(10);
    client_ = std::make_unique<rpc::Client>(o);
  }
  return *client_;
}

void ClientSlot::replace() {
  if (client_) client_->close();
  client_.reset();
  ++first_;
}

namespace {

bool retryable(const std::string& code) { return code == rpc::code::kUnavailable || code == rpc::code::kNotLeader; }

}  // namespace

void call_batch(ClientSlot& slot, std::vector<Call>& calls, std::chrono::milliseconds attempt_timeout,
                std::chrono::steady_clock::time_point deadline, const std::atomic<bool>* stop,
                std::chrono::milliseconds max_backoff) {
  auto backoff = std::min(std::chrono::milliseconds(10), max_backoff);
  while (true) {
    std::vector<size_t> pending;
    for (size_t i = 0; i < calls.size(); ++i)
      if (!calls[i].done) pending.push_back(i);
    if (pending.empty()) return;
    if (std::chrono::steady_clock::now() >= deadline || (stop && *stop)) {
      for (auto i : pending) {
        calls[i].done = true;
        calls[i].ok = false;
        calls[i].error_code = "timeout";
      }
      return;
    }
    // One attempt of every pending call, answered through a shared state the callbacks may outlive.
    struct Round {
      std::mutex mu;
      std::condition_variable cv;
      size_t outstanding = 0;
      std::vector<std::pair<std::exception_ptr, Json>> answers;
      std::vector<bool> answered;
    };
    auto round = std::make_shared<Round>();
    round->outstanding = pending.size();
    round->answers.resize(pending.size());
    round->answered.resize(pending.size(), false);
    auto& client = slot.get();
    int64_t sent = now_us();
    for (size_t k = 0; k < pending.size(); ++k) {
      auto& c = calls[pending[k]];
      if (c.invoke == 0) c.invoke = sent;
      c.last_attempt = sent;
      client.call_async(c.op, c.args, [round, k](std::exception_ptr e, Json result) {
        std::lock_guard lock(round->mu);
        if (round->answered[k]) return;
        round->answered[k] = true;
        round->answers[k] = {e, std::move(result)};
        if (--round->outstanding == 0) round->cv.notify_all();
      });
    }
    bool hung;
    {
      std::unique_lock lock(round->mu);
      auto until = std::min(deadline, std::chrono::steady_clock::now() + attempt_timeout);
      hung = !round->cv.wait_until(lock, until, [&] { return round->outstanding == 0; });
    }
    int64_t at = now_us();
    bool retry = false;
    {
      std::lock_guard lock(round->mu);
      for (size_t k = 0; k < pending.size(); ++k) {
        auto& c = calls[pending[k]];
        if (!round->answered[k]) {
          retry = true;
          continue;
        }
        auto& [e, result] = round->answers[k];
        if (!e) {
          c.done = c.ok = true;
          c.result = std::move(result);
          c.ack = at;
          continue;
        }
        std::string code = "unknown";
        try {
          std::rethrow_exception(e);
        } catch (const rpc::KvError& err) {
          code = err.code();
        } catch (const std::exception&) {
        }
        if (retryable(code)) {
          retry = true;
          continue;
        }
        c.done = true;
        c.ok = false;
        c.error_code = code;
        c.ack = at;
      }
      // Unanswered callbacks of this round are ignored from now on.
      std::fill(round->answered.begin(), round->answered.end(), true);
    }
    // A connection that answered nothing within the attempt timeout may hang forever (a frozen replica keeps its
    // TCP connections open): replace it so the next attempt reaches another replica.
    if (hung) slot.replace();
    if (retry) {
      std::this_thread::sleep_for(backoff);  // retry backoff, not synchronisation
      backoff = std::min(backoff * 2, max_backoff);
    }
  }
}

Load::Load(LoadOptions options, History& history) : options_(std::move(options)), history_(history) {}

Load::~Load() { stop(); }

std::string Load::worker_id(int w) const { return options_.run_id + "-worker-" + std::to_string(w); }

void Load::start() {
  // Every worker must be a member before it pulls.
  ClientSlot slot(options_.endpoints, options_.token, "load-join");
  std::vector<Call> pings;
  for (int w = 0; w < options_.workers; ++w)
    pings.push_back(Call{"ping", Json{{"pool", options_.pool}, {"worker", worker_id(w)}, {"free_slots", 64}}});
  call_batch(slot, pings, options_.attempt_timeout, std::chrono::steady_clock::now() + options_.op_deadline);
  for (const auto& p : pings)
    if (!p.ok) throw std::runtime_error("load: ping failed: " + p.error_code);
  running_ = true;
  threads_.emplace_back([this] { ping_loop(); });
  for (int d = 0; d < options_.dispatchers; ++d) threads_.emplace_back([this, d] { dispatch_loop(d); });
  for (int w = 0; w < options_.workers; ++w) threads_.emplace_back([this, w] { worker_loop(w); });
}

void Load::stop() {
  if (!running_.exchange(false)) return;
  stopping_ = true;
  wait_cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void Load::stop_dispatching() {
  dispatching_ = false;
  std::unique_lock lock(wait_mu_);
  wait_cv_.wait(lock, [&] { return dispatch_batches_ == 0 || !running_; });
}

void Load::ping_loop() {
  ClientSlot slot(options_.endpoints, options_.token, "load-ping");
  while (running_) {
    std::vector<Call> pings;
    for (int w = 0; w < options_.workers; ++w) {
      Json args{{"pool", options_.pool}, {"worker", worker_id(w)}, {"free_slots", 64}};
      if (options_.report_held) {
        std::lock_guard lock(held_mu_);
        const auto& held = held_[worker_id(w)];
        args["held"] = Json(std::vector<uint64_t>(held.begin(), held.end()));
      }
      pings.push_back(Call{"ping", std::move(args)});
    }
    // A missed ping is made up by the next one; a hung connection is replaced within the attempt timeout.
    call_batch(slot, pings, options_.attempt_timeout, std::chrono::steady_clock::now() + options_.attempt_timeout,
               &stopping_);
    std::unique_lock lock(wait_mu_);
    wait_cv_.wait_for(lock, std::chrono::milliseconds(options_.ping_interval_ms), [&] { return !running_; });
  }
}

void Load::dispatch_loop(int d) {
  ClientSlot slot(options_.endpoints, options_.token, "load-dispatch-" + std::to_string(d));
  while (running_) {
    if (!dispatching_) {
      std::unique_lock lock(wait_mu_);
      wait_cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return !running_; });
      continue;
    }
    if (acked_dispatches_ - completed_ >= options_.backlog) {
      std::unique_lock lock(wait_mu_);
      wait_cv_.wait_for(lock, std::chrono::milliseconds(5), [&] { return !running_; });
      continue;
    }
    std::vector<Call> batch;
    for (size_t k = 0; k < options_.dispatch_batch; ++k) {
      size_t n = next_workflow_++;
      if (options_.max_workflows && n >= options_.max_workflows) break;
      Json args{{"pool", options_.pool}, {"name", "step"}, {"id", options_.run_id + "-" + std::to_string(n)}};
      if (options_.input) args["input"] = options_.input(n);
      batch.push_back(Call{"dispatch", std::move(args)});
    }
    if (batch.empty()) {
      std::unique_lock lock(wait_mu_);
      wait_cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return !running_; });
      continue;
    }
    {
      std::lock_guard lock(wait_mu_);
      if (!dispatching_) continue;  // checked under the lock stop_dispatching() waits with
      ++dispatch_batches_;
    }
    call_batch(slot, batch, options_.attempt_timeout, std::chrono::steady_clock::now() + options_.op_deadline,
               &stopping_);
    for (auto& c : batch) {
      DispatchOp op{c.args["id"].get<std::string>(), c.invoke, c.ack, c.ok};
      history_.dispatch(op);
      if (c.ok) ++acked_dispatches_;
    }
    {
      std::lock_guard lock(wait_mu_);
      --dispatch_batches_;
    }
    wait_cv_.notify_all();
  }
}

void Load::worker_loop(int w) {
  std::string me = worker_id(w);
  ClientSlot slot(options_.endpoints, options_.token, "load-" + me);
  while (running_) {
    std::vector<Call> pull{Call{"pull", Json{{"pool", options_.pool}, {"worker", me}, {"max", options_.max_pull}}}};
    // A pull is not retried: a lost answer loses its leases (they stay with this live worker), which costs
    // progress, never correctness.
    call_batch(slot, pull, options_.attempt_timeout, std::chrono::steady_clock::now() + options_.attempt_timeout,
               &stopping_);
    auto& p = pull[0];
    ++pulls_;
    if (p.ok && (!p.result.contains("tasks") || p.result["tasks"].empty())) ++empty_pulls_;
    if (!p.ok || !p.result.contains("tasks") || p.result["tasks"].empty()) {
      std::unique_lock lock(wait_mu_);
      wait_cv_.wait_for(lock, std::chrono::milliseconds(p.ok ? 10 : 50), [&] { return !running_; });
      continue;
    }
    std::vector<Call> commits;
    std::vector<LeaseOp> leases;
    {
      std::lock_guard lock(held_mu_);
      for (const auto& t : p.result["tasks"]) held_[me].insert(t.value("token", uint64_t{0}));
    }
    for (const auto& t : p.result["tasks"]) {
      LeaseOp l{t.value("workflow_id", ""), me, t.value("token", uint64_t{0}), t.value("steps", uint64_t{0}),
                p.invoke, p.ack};
      history_.lease(l);
      bool last = l.steps_before + 1 >= options_.steps;
      Json step = last ? Json{{"kind", "complete"}, {"output", Json{{"by", me}, {"token", l.token}}}}
                       : Json{{"kind", "continue"}, {"state", Json{{"step", l.steps_before + 1}}}};
      commits.push_back(
          Call{"commit", Json{{"workflow_id", l.workflow_id}, {"worker", me}, {"token", l.token}, {"step", step}}});
      leases.push_back(std::move(l));
    }
    call_batch(slot, commits, options_.attempt_timeout, std::chrono::steady_clock::now() + options_.op_deadline,
               &stopping_);
    for (size_t i = 0; i < commits.size(); ++i) {
      const auto& c = commits[i];
      const auto& l = leases[i];
      CommitOp op;
      op.workflow_id = l.workflow_id;
      op.worker = me;
      op.token = l.token;
      op.steps_before = l.steps_before;
      op.complete = l.steps_before + 1 >= options_.steps;
      op.invoke = c.invoke;
      op.ack = c.ack;
      if (c.ok) {
        op.outcome = CommitOutcome::kAcked;
        op.duplicate = c.result.value("duplicate", false);
        ++acked_commits_;
        if (op.complete) ++completed_;
        std::lock_guard lock(lat_mu_);
        latencies_.emplace_back(c.ack, static_cast<double>(c.ack - c.invoke) / 1000.0);
      } else if (c.error_code == rpc::code::kConflict) {
        op.outcome = CommitOutcome::kConflict;
        ++conflicts_;
      } else {
        op.outcome = CommitOutcome::kUnknown;
        ++unknown_;
      }
      history_.commit(op);
    }
    // Answered or given up: either way this worker no longer holds these leases (an unknown commit's lease is
    // the kv's to release).
    std::lock_guard lock(held_mu_);
    for (const auto& l : leases) held_[me].erase(l.token);
  }
}

std::vector<double> Load::commit_latencies_ms(int64_t since_us) const {
  std::lock_guard lock(lat_mu_);
  std::vector<double> out;
  for (const auto& [at, ms] : latencies_)
    if (at >= since_us) out.push_back(ms);
  return out;
}

std::map<std::string, FinalWorkflow> read_final(ClientSlot& slot, const std::vector<std::string>& ids, bool stale,
                                                std::chrono::milliseconds timeout) {
  std::map<std::string, FinalWorkflow> out;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  const size_t kBatch = 256;
  for (size_t start = 0; start < ids.size(); start += kBatch) {
    std::vector<Call> gets;
    for (size_t i = start; i < std::min(ids.size(), start + kBatch); ++i) {
      Json args{{"workflow_id", ids[i]}};
      if (stale) args["stale"] = true;
      gets.push_back(Call{"get", std::move(args)});
    }
    call_batch(slot, gets, std::chrono::milliseconds(3000), deadline);
    for (auto& g : gets) {
      std::string id = g.args["workflow_id"].get<std::string>();
      if (g.ok) {
        out[id] = FinalWorkflow{true, g.result.value("steps", uint64_t{0}), g.result.value("status", "")};
      } else if (g.error_code == rpc::code::kNotFound) {
        out[id] = FinalWorkflow{};
      } else {
        throw std::runtime_error("reading workflow '" + id + "' failed: " + g.error_code);
      }
    }
  }
  return out;
}

}  // namespace gasoline::raft_test
