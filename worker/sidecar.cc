#include "worker/sidecar.h"

#include "common/clock.h"
#include "common/log.h"
#include "common/token_file.h"
#include "kv/rpc/protocol.h"
#include "worker/kv_failure.h"

#include <algorithm>

namespace gasoline::worker {
namespace {

using namespace std::chrono_literals;

TaskLimits limits_of(const Config& c) {
  TaskLimits l;
  l.task_timeout_ms = c.task_timeout.count();
  l.buffer_ttl_ms = c.result_buffer_ttl.count();
  return l;
}

Outcome buffered_outcome(const std::string& token) {
  return Outcome{202, Json{{"buffered", true}, {"token", token}}, {}};
}

}  // namespace

void Sidecar::run(After& after) {
  for (auto& f : after) f();
  after.clear();
}

Sidecar::Sidecar(Config config, Metrics& metrics, CpuReader cpu)
    : config_(std::move(config)), metrics_(metrics), cpu_(std::move(cpu)), tasks_(config_.id, limits_of(config_)) {
  rpc::ClientOptions o;
  o.endpoints = config_.kv;
  o.token = config_.token;
  o.tls = config_.kv_tls;
  token_ = config_.token;
  o.name = "gasoline-worker/" + config_.id;
  o.connect_timeout = std::chrono::milliseconds(std::clamp<int64_t>(config_.ping_interval.count() * 2, 500, 2000));
  o.call_timeout = 10s;
  client_ = std::make_unique<rpc::Client>(o);
  pass_ = std::make_unique<PassThrough>(*client_, metrics_);
}

Sidecar::~Sidecar() { shutdown(); }

void Sidecar::start() {
  std::string id = config_.id;
  // Every new connection first pings as this worker, which a scoped credential needs before the connection may
  // commit, release or subscribe as it (docs/security.md), then subscribes: bumps arrive on the connection that
  // subscribed. Both go before the calls that waited for the connection.
  client_->set_connect_calls([this, id] {
    std::vector<rpc::Client::ConnectCall> calls;
    {
      // After the leave a ping would make this worker a member again.
      std::lock_guard lock(mu_);
      if (stopping_ || stop_membership_) return calls;
    }
    calls.push_back({"ping", ping_args(), [](std::exception_ptr e, Json) {
                       // The membership loop pings again and reports (a refused token included).
                       if (e) log::debug("ping on connect failed", {{"error", failure_of(e).message}});
                     }});
    calls.push_back({rpc::op::kSubscribe, Json{{rpc::arg::kWorker, id}}, [this](std::exception_ptr e, Json) {
                       if (e) {
                         auto f = failure_of(e);
                         log::warn("subscribing to bumps failed; the fallback tick covers it", {{"error", f.message}});
                         return;
                       }
                       wake_puller();  // bumps may have been missed while disconnected
                     }});
    return calls;
  });
  client_->set_bump_handler([this](const Json&) {
    metrics_.bump();
    wake_puller();
  });
  log::info("gasoline-worker starting",
            {{"worker", config_.id}, {"pool", config_.pool}, {"pod", config_.pod}, {"pod_uid", config_.pod_uid},
             {"kv", config_.kv}, {"concurrency", config_.concurrency}, {"cpu_source", to_string(cpu_.source())},
             {"cpu_usage_file", cpu_.usage_path()}, {"cpu_limit_cores", cpu_.limit_cores()}});
  if (cpu_.source() == CpuSource::kNone)
    log::warn("no cgroup CPU accounting found; reporting CPU 0 (no load shedding)", {{"root", config_.cgroup_root}});
  membership_thread_ = std::thread([this] { membership_loop(); });
  puller_thread_ = std::thread([this] { puller_loop(); });
  house_thread_ = std::thread([this] { housekeeping_loop(); });
}

// --- membership ----------------------------------------------------------------------------------------------

bool Sidecar::ping_once() {
  if (auto v = cpu_.sample(mono_ms() * 1000)) {
    std::lock_guard lock(mu_);
    cpu_value_ = *v;
  }
  if (const auto* app = cpu_.app(); app && !app->shared_namespace() && !warned_no_shared_pids_) {
    warned_no_shared_pids_ = true;
    log::warn("--cpu-source app sees no other container's processes: the pod needs shareProcessNamespace: true "
              "(load shedding reads 0 until it does)",
              {{"proc_root", config_.proc_root}});
  }
  Json args = ping_args();
  metrics_.set_cpu(cpu_value_);
  auto timeout = std::chrono::milliseconds(std::max<int64_t>(1000, config_.ping_interval.count() * 2));
  try {
    auto reply = client_->call(rpc::op::kPing, args, rpc::CallOptions{timeout, false});
    metrics_.ping("ok");
    bool first = false;
    {
      std::lock_guard lock(mu_);
      first = !joined_;
      joined_ = true;
      last_ping_ok_ = mono_ms();
      if (auth_failed_since_) log::info("the kv accepts the token again", {{"kv", client_->endpoint()}});
      auth_failed_since_ = 0;
      auth_error_.clear();
    }
    if (first) {
      log::info("joined the pool", {{"worker", config_.id},
                                    {"pool", config_.pool},
                                    {"kv", client_->endpoint()},
                                    {"kv_ping_interval_ms", reply.value("ping_interval_ms", int64_t{0})},
                                    {"kv_lost_after_ms", reply.value("lost_after_ms", int64_t{0})}});
      if (reply.value("ping_interval_ms", config_.ping_interval.count()) != config_.ping_interval.count())
        log::warn("the kv expects another ping interval; the worker may look inactive between pings",
                  {{"ours_ms", config_.ping_interval.count()}, {"kv_ms", reply.value("ping_interval_ms", 0)}});
      wake_puller();
    }
    return true;
  } catch (const rpc::KvError& e) {
    metrics_.ping(e.code());
    throw;
  }
}

Json Sidecar::ping_args() {
  std::lock_guard lock(mu_);
  // Every lease this sidecar knows of, committing or buffered ones included: the kv releases the leases it
  // granted us that are missing here for a grace (their pull's answer was lost), so nothing stays leased to a
  // live worker that will never run it.
  Json held = tasks_.leases();
  return Json{{"pool", config_.pool},
              {"held", std::move(held)},
              {"worker", config_.id},
              {"pod", config_.pod},
              {"version", config_.version},
              {"workflows", config_.workflows},
              {"cpu", cpu_value_},
              {"free_slots", free_slots_locked()}};
}

size_t Sidecar::free_slots_locked() const {
  return config_.concurrency - std::min<size_t>(tasks_.size(), config_.concurrency);
}

void Sidecar::refresh_token(bool force) {
  constexpr int64_t kTokenRereadMs = 10000;  // the kubelet refreshes a projected token at 80 % of its hour
  if (config_.token_file.empty()) return;
  int64_t now = mono_ms();
  if (!force && token_read_mono_ && now - token_read_mono_ < kTokenRereadMs) return;
  token_read_mono_ = now;
  try {
    auto token = read_token_file(config_.token_file);
    if (token == token_) return;
    token_ = token;
    client_->set_token(std::move(token));
    log::info("the kv token file changed; new connections present the new token",
              {{"token_file", config_.token_file}});
  } catch (const std::exception& e) {
    // Mid-rotation or briefly missing: keep the token we have.
    log::warn("cannot re-read the kv token file; keeping the current token", {{"error", e.what()}});
  }
}

void Sidecar::membership_loop() {
  int failures = 0;
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopping_ || stop_membership_) break;
    }
    refresh_token(false);
    try {
      ping_once();
      if (failures > 0)
        log::info("kv reachable again", {{"kv", client_->endpoint()}, {"failed_pings", failures}});
      failures = 0;
      bool redrain;
      {
        std::lock_guard lock(mu_);
        redrain = redrain_;
      }
      if (redrain) {
        // While the kv was away it may have reclaimed and forgotten this worker, and the ping that just succeeded
        // made it a fresh active member: out of the ranking again.
        client_->call(rpc::op::kDrain, Json{{rpc::arg::kPool, config_.pool}, {rpc::arg::kWorker, config_.id}}, rpc::CallOptions{2s, true});
        std::lock_guard lock(mu_);
        redrain_ = false;
      }
      undrain_if_due();
    } catch (const rpc::KvError& e) {
      if (e.code() == rpc::code::kUnauthenticated) {
        refresh_token(true);  // a token rotated since the last read is the likeliest fix
        if (refused_token(e.what())) return;
      } else {
        ping_failed(e.what(), failures);
      }
      ++failures;
    } catch (const std::exception& e) {
      ping_failed(e.what(), failures);
      ++failures;
    }
    metrics_.set_connected(client_->connected());
    metrics_.set_ready(ready());
    std::unique_lock lock(mu_);
    member_cv_.wait_for(lock, config_.ping_interval, [&] { return stopping_ || stop_membership_ || ping_now_; });
    ping_now_ = false;
  }
}

void Sidecar::ping_failed(const std::string& error, int failures) {
  {
    std::lock_guard lock(mu_);
    if (draining_) redrain_ = true;
  }
  // Never fatal (the kv away, or a reply of an unexpected shape): running tasks keep running and results wait in
  // the buffer; /readyz says unready.
  if (failures == 0 || failures % 20 == 0)
    log::warn("ping failed; retrying", {{"kv", client_->endpoint()}, {"error", error}, {"failures", failures + 1}});
}

bool Sidecar::refused_token(const std::string& error) {
  int64_t now = mono_ms();
  int64_t since;
  {
    std::lock_guard lock(mu_);
    if (draining_) redrain_ = true;
    if (!auth_failed_since_) auth_failed_since_ = now;
    auth_error_ = error;
    since = auth_failed_since_;
  }
  // A wrong or missing token never fixes itself by waiting: say so on every attempt (pings are seconds apart at
  // most, so this is not a flood) and give up after a bound, so the pod shows CrashLoopBackOff with the reason.
  auto exit_after = config_.unauthenticated_exit_after.count();
  log::error("the kv refused this sidecar's token: check --token-file (the kv's token Secret)",
             {{"kv", client_->endpoint()},
              {"error", error},
              {"token_file", config_.token_file},
              {"refused_for_ms", now - since},
              {"exit_after_ms", exit_after}});
  if (exit_after > 0 && now - since >= exit_after && on_fatal_) {
    on_fatal_("the kv refused the token for " + std::to_string((now - since) / 1000) + " s: " + error);
    return true;
  }
  return false;
}

bool Sidecar::ready() const {
  std::lock_guard lock(mu_);
  return unready_reason_locked().empty();
}

std::string Sidecar::unready_reason_locked() const {
  if (left_) return "left the pool";
  if (draining_) return "draining";
  if (auth_failed_since_) return "unauthenticated: the kv refused the token (" + auth_error_ + ")";
  if (!client_->connected()) return "not connected to the kv";
  if (!joined_) return "no ping acknowledged yet";
  if (mono_ms() - last_ping_ok_ > 3 * config_.ping_interval.count()) return "last acknowledged ping is too old";
  return "";
}

Json Sidecar::health() const {
  std::lock_guard lock(mu_);
  auto reason = unready_reason_locked();
  return Json{{"status", "ok"},
              {"worker", config_.id},
              {"pool", config_.pool},
              {"pod", config_.pod},
              {"kv", client_->endpoint()},
              {"connected", client_->connected()},
              {"ready", reason.empty()},
              {"reason", reason},
              {"draining", draining_},
              {"drained", drain_finished_ && drain_result_.value("drained", false)},
              {"leased", tasks_.size()},
              {"queued", tasks_.queued()},
              {"free_slots", free_slots_locked()},
              {"waiting_polls", polls_.size()},
              {"cpu", cpu_value_},
              {"cpu_source", to_string(cpu_.source())}};
}

// --- pulling -------------------------------------------------------------------------------------------------

void Sidecar::wake_puller() {
  {
    std::lock_guard lock(mu_);
    pull_now_ = true;
  }
  pull_cv_.notify_one();
}

size_t Sidecar::demand_locked() const {
  size_t want = 0;
  for (const auto& p : polls_) want += p.max;
  return want > tasks_.queued() ? want - tasks_.queued() : 0;
}

bool Sidecar::can_pull_locked() const { return !stopping_ && !draining_ && joined_ && client_->connected(); }

void Sidecar::puller_loop() {
  auto backoff = 50ms;
  while (true) {
    size_t want = 0;
    {
      std::unique_lock lock(mu_);
      pull_cv_.wait_for(lock, config_.fallback_tick, [&] { return stopping_ || pull_now_; });
      if (stopping_) return;
      pull_now_ = false;
      if (!can_pull_locked()) continue;
      size_t free = free_slots_locked();
      // Only what the app is waiting for and what the slots allow: leased work never sits where nobody runs it.
      want = std::min(demand_locked(), free);
    }
    if (want == 0) continue;
    try {
      pull_once(want);
      backoff = 50ms;
    } catch (const rpc::KvError& e) {
      metrics_.pull("error");
      if (e.code() == rpc::code::kFailedPrecondition) {
        // The kv forgot us (reclaimed after a long silence, or its state was reset): ping now to rejoin.
        log::warn("the kv does not know this worker; pinging to rejoin", {{"error", e.what()}});
        std::lock_guard lock(mu_);
        joined_ = false;
        ping_now_ = true;
        member_cv_.notify_one();
      } else if (backoff >= 400ms) {
        log::warn("pull failed; backing off", {{"error", e.what()}, {"backoff_ms", backoff.count()}});
      }
      std::unique_lock lock(mu_);
      pull_cv_.wait_for(lock, backoff, [&] { return stopping_; });
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
      pull_now_ = true;  // try again after the backoff, not only on the next tick
    } catch (const std::exception& e) {
      // A reply of an unexpected shape: log it and keep pulling, never crash on what the kv sent.
      metrics_.pull("error");
      log::error("pull reply could not be used", {{"error", e.what()}});
      std::unique_lock lock(mu_);
      pull_cv_.wait_for(lock, backoff, [&] { return stopping_; });
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
    }
  }
}

void Sidecar::pull_once(size_t want) {
  double cpu;
  {
    std::lock_guard lock(mu_);
    cpu = cpu_value_;
  }
  Json args{{"pool", config_.pool},
            {"worker", config_.id},
            {"max", want},
            {"cpu", cpu},
            {"shed",
             {{"start", config_.shed.start_percent / 100.0},
              {"end", config_.shed.end_percent / 100.0},
              {"min_ratio", config_.shed.min_ratio}}}};
  auto reply = client_->call(rpc::op::kPull, args, rpc::CallOptions{10s, false});
  const auto& tasks = reply["tasks"];
  metrics_.pull(tasks.empty() ? "empty" : "tasks");
  if (auto shed = reply.value("shed", uint64_t{0})) metrics_.shed(static_cast<double>(shed));
  if (reply.contains("rejected"))
    log::warn("the kv rejected the pull", {{"reason", reply["rejected"]}});
  After after;
  std::vector<KvSend> give_back;
  {
    std::lock_guard lock(mu_);
    int64_t now = mono_ms();
    for (const auto& t : tasks) {
      auto granted = tasks_.grant(t, draining_, now);
      if (granted.kind == TaskTable::Granted::Kind::kRejected)
        log::error("the kv granted a task that is malformed or already held; ignoring it",
                   {{"token", granted.key}, {"workflow", granted.workflow_id}});
      if (granted.send) give_back.push_back(std::move(*granted.send));
    }
    metrics_.pulled(static_cast<double>(tasks.size()));
    deliver_locked(after);
    if (reply.value("more", false) || (tasks.size() == want && demand_locked() > 0)) pull_now_ = true;
    update_gauges_locked();
  }
  run(after);
  log_give_backs(give_back);
  send(give_back);
}

Json Sidecar::take_tasks_locked(size_t max) {
  Json out = tasks_.take(max, mono_ms());
  int64_t wall = wall_ms();
  for (const auto& t : out)
    metrics_.wake_lag(static_cast<double>(std::max<int64_t>(0, wall - t.value("wake_ts", int64_t{0}))) / 1000.0);
  return out;
}

void Sidecar::deliver_locked(After& after) {
  while (!polls_.empty() && tasks_.queued() > 0) {
    auto p = std::move(polls_.front());
    polls_.pop_front();
    Json tasks = take_tasks_locked(p.max);
    if (tasks.empty()) {
      polls_.push_front(std::move(p));
      break;
    }
    after.push_back([done = std::move(p.done), tasks = std::move(tasks), d = draining_]() mutable {
      done(Outcome{200, Json{{"tasks", std::move(tasks)}, {"draining", d}}, {}});
    });
  }
}

void Sidecar::poll(size_t max, std::chrono::milliseconds wait, Done done) {
  std::unique_lock lock(mu_);
  if (stopping_ || left_) {
    lock.unlock();
    done(shutting_down());
    return;
  }
  Json tasks = take_tasks_locked(max);
  // While draining nothing new comes (the queue was given back): answer at once rather than hold the app.
  if (!tasks.empty() || wait.count() == 0 || draining_) {
    bool d = draining_;
    update_gauges_locked();
    lock.unlock();
    done(Outcome{200, Json{{"tasks", std::move(tasks)}, {"draining", d}}, {}});
    return;
  }
  polls_.push_back(Poll{next_poll_id_++, max, mono_ms() + wait.count(), std::move(done)});
  pull_now_ = true;
  update_gauges_locked();
  lock.unlock();
  pull_cv_.notify_one();
  house_cv_.notify_one();
}

// --- results -------------------------------------------------------------------------------------------------

void Sidecar::submit(const api::TaskToken& t, api::ParsedResult r, Done done) {
  const std::string token = t.text();
  std::unique_lock lock(mu_);
  if (stopping_) {
    lock.unlock();
    done(shutting_down());
    return;
  }
  auto s = tasks_.submit(token, r, std::move(done), mono_ms());
  using Kind = TaskTable::Submitted::Kind;
  if (s.kind == Kind::kJoined) return;  // the same result posted again while its commit is in flight
  if (s.kind == Kind::kSend) {
    if (s.held_ms) metrics_.task_duration(static_cast<double>(*s.held_ms) / 1000.0);
    lock.unlock();
    send({*s.send});
    return;
  }
  lock.unlock();
  switch (s.kind) {
    case Kind::kDuplicate:
      metrics_.result("duplicate");
      s.done(Outcome{200, std::move(s.body), {}});
      return;
    case Kind::kNotHeld:
      if (!r.worker.empty()) {
        // A result for a lease this process never held (the sidecar restarted, or the app posted to a peer): the
        // kv's fence decides. It commits if the lease is still valid, and answers conflict (409) otherwise.
        Json args{{"workflow_id", t.workflow_id},
                  {"worker", r.worker},
                  {"token", t.lease},
                  {"step", r.step},
                  {"consumed_signal_seq", r.consumed_signal_seq.value_or(0)}};
        if (!r.children.empty()) args["children"] = r.children;
        if (!r.signals.empty()) args["signals"] = r.signals;
        kv_request(rpc::op::kCommit, std::move(args), std::move(s.done));
        return;
      }
      metrics_.result("conflict");
      s.done(error_outcome(409, "lease_lost",
                           "token " + token +
                               " is not held by this sidecar (lease reclaimed or released, or the sidecar "
                               "restarted); drop the task"));
      return;
    case Kind::kWrongWorkflow:
      s.done(error_outcome(400, "bad_request", "token " + token + " belongs to workflow '" + s.workflow_id +
                                                   "', not '" + r.workflow_id + "'"));
      return;
    case Kind::kReleasing:
      metrics_.result("conflict");
      s.done(error_outcome(409, "lease_lost",
                           "the lease of token " + token +
                               " is being given back (task timeout or drain); drop the task"));
      return;
    case Kind::kBuffered:
      s.done(buffered_outcome(token));
      return;
    case Kind::kJoined:
    case Kind::kSend:
      return;  // handled above, under the lock
  }
}

void Sidecar::send(const std::vector<KvSend>& sends) {
  for (const auto& s : sends) {
    client_->call_async(s.op, s.args, [this, token = s.key](std::exception_ptr e, Json result) {
      try {
        on_commit_reply(token, e, result);
      } catch (const std::exception& ex) {
        // On the kv client's I/O thread: an exception here would end it. The result stays held; the housekeeping
        // thread sends it again.
        log::error("commit reply could not be used", {{"token", token}, {"error", ex.what()}});
        std::lock_guard lock(mu_);
        tasks_.reply_unusable(token, mono_ms());
      }
    });
  }
}

void Sidecar::log_give_backs(const std::vector<KvSend>& sends) const {
  for (const auto& s : sends)
    if (s.op == rpc::op::kRelease)
      log::info("giving a lease back",
                {{"workflow", s.args.value("workflow_id", "")}, {"token", s.key}, {"why", s.args.value("reason", "")}});
}

void Sidecar::on_commit_reply(const std::string& token, std::exception_ptr error, const Json& result) {
  KvAnswer answer = KvAnswer::kOk;
  KvFailure f;
  if (error) {
    f = failure_of(error);
    answer = f.code == rpc::code::kConflict || f.code == rpc::code::kNotFound ? KvAnswer::kLeaseLost
             : transient(f.code)                                              ? KvAnswer::kTransient
                                                                              : KvAnswer::kRefused;
  }
  std::unique_lock lock(mu_);
  auto r = tasks_.reply(token, answer, result, mono_ms());
  using Kind = TaskTable::Replied::Kind;
  Outcome outcome;
  switch (r.kind) {
    case Kind::kStale:
      return;  // resolved by another attempt
    case Kind::kCommitted:
    case Kind::kReleased:
      metrics_.result(r.release ? "released" : r.body.value("duplicate", false) ? "duplicate" : "ok");
      if (r.buffered_ms)
        log::info("buffered result committed",
                  {{"workflow", r.workflow_id}, {"token", token}, {"buffered_ms", *r.buffered_ms}});
      outcome = Outcome{200, r.body, {}};
      pull_now_ = true;  // a slot is free
      break;
    case Kind::kLeaseLost:
      metrics_.result("conflict");
      if (!r.release)
        log::warn("result rejected: lease lost", {{"workflow", r.workflow_id}, {"token", token}, {"error", f.message}});
      outcome = error_outcome(409, "lease_lost", f.message + "; drop the task");
      pull_now_ = true;
      break;
    case Kind::kRefused:
      // The kv refused the step itself (say a child with an invalid name): the lease is still ours, so the app
      // may send a corrected result.
      metrics_.result("invalid");
      outcome = error_outcome(api::http_status_for_kv(f.code), f.code == rpc::code::kBadRequest ? "bad_request" : f.code,
                              f.message);
      break;
    case Kind::kBuffered:
      // The kv is unreachable or changing leaders: keep the result and retry; the app need not wait.
      if (r.first_buffered && !r.release) metrics_.result("buffered");
      outcome = Outcome{202, Json{{"buffered", true}, {"token", token}, {"reason", f.message}}, {}};
      break;
  }
  update_gauges_locked();
  lock.unlock();
  pull_cv_.notify_one();
  drained_cv_.notify_all();
  for (auto& w : r.waiters) w(outcome);
}

void Sidecar::kv_request(const std::string& op, Json args, Done done) {
  pass_->request(op, std::move(args), std::move(done));
}

// --- housekeeping --------------------------------------------------------------------------------------------

void Sidecar::update_gauges_locked() {
  metrics_.set_leased(static_cast<double>(tasks_.size()));
  metrics_.set_queued(static_cast<double>(tasks_.queued()));
  metrics_.set_free_slots(static_cast<double>(free_slots_locked()));
  metrics_.set_waiting_polls(static_cast<double>(polls_.size()));
  metrics_.set_buffered(static_cast<double>(tasks_.buffered()));
  metrics_.set_draining(draining_);
}

void Sidecar::housekeeping_loop() {
  while (true) {
    After after;
    std::vector<KvSend> released, resend;
    {
      std::unique_lock lock(mu_);
      int64_t next = mono_ms() + 100;
      for (const auto& p : polls_) next = std::min(next, p.deadline);
      house_cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(1, next - mono_ms())),
                         [&] { return stopping_; });
      if (stopping_) return;
      int64_t now = mono_ms();
      // Long polls whose wait ran out get an empty answer.
      for (auto it = polls_.begin(); it != polls_.end();) {
        if (it->deadline <= now) {
          after.push_back([done = std::move(it->done), d = draining_] {
            done(Outcome{200, Json{{"tasks", Json::array()}, {"draining", d}}, {}});
          });
          it = polls_.erase(it);
        } else {
          ++it;
        }
      }
      auto due = tasks_.due(now);
      released = std::move(due.released);
      resend = std::move(due.resent);
      for (auto& [token, waiters] : due.stuck)
        for (auto& w : waiters) after.push_back([w = std::move(w), t = token] { w(buffered_outcome(t)); });
      for (auto& d : due.dropped) {
        metrics_.result("dropped");
        log::error("dropping a buffered result: the kv stayed unreachable past --result-buffer-ttl",
                   {{"workflow", d.workflow_id}, {"token", d.key}, {"buffered_ms", d.buffered_ms}});
        // Only a commit whose answer could not be read still has waiters here; they hear what the others heard.
        for (auto& w : d.waiters) after.push_back([w = std::move(w), t = d.key] { w(buffered_outcome(t)); });
      }
      update_gauges_locked();
    }
    run(after);
    log_give_backs(released);
    send(released);
    send(resend);
    pass_->tick();
    drained_cv_.notify_all();
  }
}

void Sidecar::shutdown() {
  After after;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& p : polls_)
      after.push_back([done = std::move(p.done)] { done(shutting_down()); });
    polls_.clear();
    for (auto& w : tasks_.take_waiters()) after.push_back([w = std::move(w)] { w(shutting_down()); });
  }
  run(after);
  pass_->shutdown();
  pull_cv_.notify_all();
  house_cv_.notify_all();
  member_cv_.notify_all();
  drained_cv_.notify_all();
  if (puller_thread_.joinable()) puller_thread_.join();
  if (house_thread_.joinable()) house_thread_.join();
  if (membership_thread_.joinable()) membership_thread_.join();
  if (drain_thread_.joinable()) drain_thread_.join();  // it ends at once on stopping_ and answers its callers
  drain_done_cv_.notify_all();
  client_->close();
}

}  // namespace gasoline::worker
