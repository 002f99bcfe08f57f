#include "kv/service/service.h"

#include "common/clock.h"
#include "common/log.h"
#include "common/random_id.h"
#include "kv/assign/lost.h"
#include "kv/assign/pull_plan.h"
#include "kv/rpc/protocol.h"
#include "kv/store/json_field.h"

#include <random>
#include <unordered_set>

namespace gasoline::kv {
namespace asio = boost::asio;
using rpc::Json;
namespace authz = rpc::authz;

namespace {

std::string rpc_code(store::Code c) {
  switch (c) {
    case store::Code::kOk: return "ok";
    case store::Code::kInvalid: return rpc::code::kBadRequest;
    case store::Code::kNotFound: return rpc::code::kNotFound;
    case store::Code::kConflict: return rpc::code::kConflict;
    case store::Code::kFailedPrecondition: return rpc::code::kFailedPrecondition;
    case store::Code::kNotLeader: return rpc::code::kNotLeader;
    case store::Code::kUnavailable: return rpc::code::kUnavailable;
  }
  return rpc::code::kInternal;
}

std::string str_arg(const Json& args, const char* key, bool required = true) {
  auto it = args.find(key);
  if (it == args.end() || it->is_null()) {
    if (required) throw std::invalid_argument(std::string("missing '") + key + "'");
    return "";
  }
  if (!it->is_string()) throw std::invalid_argument(std::string("'") + key + "' must be a string");
  return it->get<std::string>();
}

template <typename T>
T num_arg(const Json& args, const char* key, T fallback) {
  return store::json_field<T>(args, key, fallback);
}

// Views into `all`, which must outlive them.
std::vector<assign::Member> members_of(const std::vector<store::Worker>& all) {
  std::vector<assign::Member> out;
  out.reserve(all.size());
  for (const auto& w : all)
    out.push_back(assign::Member{w.id, w.state == store::WorkerState::kActive, w.last_ping_ts, w.workflows});
  return out;
}

Json workflow_json(const store::Workflow& w) {
  Json j = store::to_json(w);
  j["status"] = store::to_string(w.status);
  j.erase("last_commit_worker");
  j.erase("last_commit_token");
  return j;
}

}  // namespace

Service::Service(store::StateMachine& sm, asio::io_context& io, ServiceConfig config, Metrics& metrics)
    : sm_(sm),
      io_(io),
      config_(config),
      metrics_(metrics),
      ping_timer_(io),
      orphans_(config.orphan_grace_ms),
      retention_timer_(io),
      reclaim_timer_(io) {}

Service::~Service() { stop(); }

void Service::start() {
  started_ms_ = wall_ms();
  timers_ = std::make_unique<TimerQueue>(
      [this] {
        batch_members_.clear();
        batch_bumps_.clear();
      },
      [this] { send_bumps(); });
  timer_queue_.store(timers_.get(), std::memory_order_release);
  if (log_ && log_->is_leader()) schedule_stored_wakes();
  reclaim_tick();
  retention_tick();
}

void Service::stop() {
  if (stopped_.exchange(true)) return;
  if (timers_) timers_->stop();
  boost::system::error_code ec;
  ping_timer_.cancel();
  reclaim_timer_.cancel();
  retention_timer_.cancel();
}

int64_t Service::now() const { return std::max(wall_ms(), sm_.last_ts()); }

void Service::handle(rpc::Request req, rpc::Responder r) {
  const auto& op = req.op;
  const auto& args = req.args;
  try {
    if (!authorize_request(req, r)) return;
    if (op == rpc::op::kStatus) return status(args, r);
    if (op.rfind(rpc::op::kClusterPrefix, 0) == 0) return cluster(op, args, r);
    if (op == rpc::op::kGet) return read(args, r, [this, req, r] { get(req, r); });
    if (op == rpc::op::kList) return read(args, r, [this, req, r] { list(req, r); });
    if (op == rpc::op::kWorkers) return read(args, r, [this, args, r] { workers(args, r); });
    if (!log_ || !log_->is_leader()) {
      r.error(rpc::code::kNotLeader, "this replica is not the leader", Json{{"leader", log_ ? log_->leader_address() : ""}});
      return;
    }
    if (op == rpc::op::kPing) return ping(args, r);
    if (op == rpc::op::kPoolConfigure) return configure_pool(args, r);
    if (op == rpc::op::kSubscribe) return subscribe(req, r);
    if (op == rpc::op::kDrain || op == rpc::op::kUndrain || op == rpc::op::kLeave) return drain_or_leave(op, args, r);
    if (op == rpc::op::kDispatch) return dispatch(args, r);
    if (op == rpc::op::kSignal) return signal(args, r);
    if (op == rpc::op::kCancel) return cancel(args, r);
    if (op == rpc::op::kPull) return pull(args, r);
    if (op == rpc::op::kCommit) return commit(args, r);
    if (op == rpc::op::kRelease) return release(args, r);
    r.error(rpc::code::kBadRequest, "unknown op '" + op + "'");
  } catch (const std::invalid_argument& e) {
    r.error(rpc::code::kBadRequest, std::string(op) + ": " + e.what());
  } catch (const nlohmann::json::exception& e) {
    r.error(rpc::code::kBadRequest, std::string(op) + ": " + e.what());
  } catch (const std::exception& e) {
    log::error("request failed", {{"op", op}, {"error", e.what()}});
    r.error(rpc::code::kInternal, std::string(op) + ": " + e.what());
  }
}

// --- authorization -----------------------------------------------------------------------------------------

bool Service::permitted(const rpc::Request& req, const rpc::Responder& r, const std::string& pool,
                        const std::string& worker) {
  const auto& op = req.op;
  const auto& who = req.session->identity();
  auto check = authz::WorkerCheck::kNone;
  if (!worker.empty()) {
    bool known = op == rpc::op::kSubscribe ? req.session->registered_any_pool(worker) : req.session->registered(pool, worker);
    check = known ? authz::WorkerCheck::kRegistered : authz::WorkerCheck::kUnregistered;
  }
  return allowed_or_deny(req, r, authz::authorize(who, op, pool, check, worker));
}

bool Service::allowed_or_deny(const rpc::Request& req, const rpc::Responder& r, const authz::Decision& d) {
  if (d.allowed) return true;
  const auto& who = req.session->identity();
  metrics_.denied(std::string(authz::metric_op(req.op)), d.reason);
  log::debug("request denied", {{"op", req.op}, {"subject", who.subject}, {"peer", req.session->peer()},
                                {"reason", d.message}});
  r.error(rpc::code::kPermissionDenied, d.message);
  return false;
}

bool Service::authorize_request(const rpc::Request& req, const rpc::Responder& r) {
  if (!req.session || req.session->identity().admin) return true;  // in-process callers and admins
  const auto& op = req.op;
  const auto& args = req.args;
  if (op == rpc::op::kPing) {
    auto pool = str_arg(args, rpc::arg::kPool);
    auto worker = str_arg(args, rpc::arg::kWorker);
    if (!permitted(req, r, pool)) return false;
    // The first ping a connection sends as a worker id makes that id its own: commit, release, drain, leave and
    // subscribe as it are then allowed on this connection only.
    if (req.session->register_worker(pool, worker)) return true;
    return allowed_or_deny(req, r,
                           authz::Decision{false, "worker",
                                           "permission denied: this connection already pings as " +
                                               std::to_string(rpc::Session::kMaxWorkers) +
                                               " worker ids; open another connection for more"});
  }
  if (op == rpc::op::kPull || op == rpc::op::kDrain || op == rpc::op::kUndrain || op == rpc::op::kLeave)
    return permitted(req, r, str_arg(args, rpc::arg::kPool), str_arg(args, rpc::arg::kWorker));
  if (op == rpc::op::kSubscribe) {
    auto worker = str_arg(args, rpc::arg::kWorker);
    if (!permitted(req, r, "", worker)) return false;
    // Bump streams are keyed by worker id alone: an id that is a member of another namespace's pool belongs to
    // someone else, whose bumps this connection must not take over.
    const auto ns = req.session->identity().ns;
    for (const auto& w : sm_.workers(""))
      if (w.id == worker && authz::namespace_of(w.pool) != ns)
        return allowed_or_deny(req, r,
                               authz::Decision{false, "namespace",
                                               "permission denied: worker id '" + worker +
                                                   "' is a member of pool " + w.pool + ", outside namespace " + ns});
    return true;
  }
  if (op == rpc::op::kList || op == rpc::op::kDispatch) return permitted(req, r, str_arg(args, rpc::arg::kPool));
  if (op == rpc::op::kCommit || op == rpc::op::kRelease || op == rpc::op::kSignal || op == rpc::op::kCancel) {
    auto id = str_arg(args, rpc::arg::kWorkflowId);
    auto w = sm_.workflow(id);
    if (!w) {
      // Before the command runs, so a role never learns more by proposing it than by reading.
      r.error(rpc::code::kNotFound, "workflow '" + id + "' not found");
      return false;
    }
    bool as_worker = op == rpc::op::kCommit || op == rpc::op::kRelease;
    if (!permitted(req, r, w->pool, as_worker ? str_arg(args, rpc::arg::kWorker) : "")) return false;
    if (op != rpc::op::kCommit) return true;
    // A commit's children and signals reach other workflows: they must stay in the caller's namespace too. A
    // child without a pool is dispatched into its parent's (kv/store/apply.cc).
    if (auto it = args.find(rpc::arg::kChildren); it != args.end() && it->is_array())
      for (const auto& d : *it) {
        if (!d.is_object()) continue;
        auto pool = d.value("pool", std::string());
        if (!permitted(req, r, pool.empty() ? w->pool : pool)) return false;
      }
    if (auto it = args.find(rpc::arg::kSignals); it != args.end() && it->is_array())
      for (const auto& sg : *it) {
        if (!sg.is_object()) continue;
        auto target = sm_.workflow(sg.value("workflow_id", std::string()));
        if (target && !permitted(req, r, target->pool)) return false;
      }
    return true;
  }
  if (op == rpc::op::kGet) return true;  // its pool is known after the read: get() checks
  return permitted(req, r, "");  // admin ops, unknown ops
}

bool Service::may_see_lease(const rpc::Request& req, const store::Workflow& w) const {
  if (!req.session || req.session->identity().admin) return true;
  return !w.lease_worker.empty() && req.session->registered(w.pool, w.lease_worker);
}

void Service::reply_error(const rpc::Responder& r, const store::Result& res) const {
  Json extra = Json::object();
  if (res.code == store::Code::kNotLeader) extra["leader"] = log_ ? log_->leader_address() : "";
  r.error(rpc_code(res.code), res.message, extra);
}

void Service::propose_and_reply(store::Command c, rpc::Responder r) {
  std::string type(store::command_name(c));
  log_->propose(std::move(c), [this, r, type](const store::Result& res) {
    metrics_.command(type, std::string(store::to_string(res.code)));
    if (res.ok()) {
      r.ok(res.body);
    } else {
      reply_error(r, res);
    }
  });
}

void Service::read(const Json& args, rpc::Responder r, std::function<void()> fn) {
  if (args.value("stale", false)) {
    fn();
    return;
  }
  if (!log_->is_leader()) {
    r.error(rpc::code::kNotLeader, "this replica is not the leader (pass stale=true to read it anyway)",
            Json{{"leader", log_->leader_address()}});
    return;
  }
  // Linearizable: everything committed before the read is applied here first.
  log_->barrier([this, r, fn = std::move(fn)](const store::Result& res) {
    if (!res.ok()) {
      reply_error(r, res);
      return;
    }
    asio::post(io_, [r, fn] {
      try {
        fn();
      } catch (const std::invalid_argument& e) {
        r.error(rpc::code::kBadRequest, e.what());
      } catch (const nlohmann::json::exception& e) {
        r.error(rpc::code::kBadRequest, e.what());
      } catch (const std::exception& e) {
        r.error(rpc::code::kInternal, e.what());
      }
    });
  });
}

void Service::on_leadership(bool leader) {
  if (stopped_) return;
  {
    std::lock_guard lock(orphans_mu_);
    orphans_.clear();
  }
  {
    std::lock_guard lock(hub_mu_);
    disconnected_.clear();  // what another term saw close is no evidence for this one
  }
  if (leader) {
    // A new leader gives every worker a full lost_after to find it before reclaiming anything, and takes over
    // the timers of every stored wake entry.
    started_ms_ = wall_ms();
    schedule_stored_wakes();
  } else {
    if (auto* timers = this->timers()) timers->clear();
    metrics_.forget_leader_gauges();
  }
}

void Service::schedule_stored_wakes() {
  auto* timers = this->timers();
  if (!timers) return;
  int64_t t = now();
  for (const auto& pool : sm_.pools()) {
    for (const auto& e : sm_.due(pool, t, SIZE_MAX)) {
      store::Wake w{pool, e.workflow_id, e.name, e.ts, "restart"};
      timers->schedule(t, [this, w] { bump(w, false); });
    }
  }
  for (const auto& [pool, e] : sm_.future_wakes(t)) {
    store::Wake w{pool, e.workflow_id, e.name, e.ts, "timer"};
    timers->schedule(e.ts, [this, w] { bump(w, false); });
  }
}

void Service::cluster(const std::string& op, const Json& args, rpc::Responder r) {
  if (!admin_) {
    r.error(rpc::code::kFailedPrecondition, "this kv runs a single replica (start it with --peer to replicate)");
    return;
  }
  auto done = [this, r](const store::Result& res) {
    if (res.ok()) {
      r.ok(admin_->cluster_status());
    } else {
      reply_error(r, res);
    }
  };
  if (op == rpc::op::kClusterStatus) {
    r.ok(admin_->cluster_status());
  } else if (op == rpc::op::kClusterAdd) {
    admin_->add_member(num_arg<uint64_t>(args, "id", 0), str_arg(args, "raft_address"), str_arg(args, "client_address"),
                       done);
  } else if (op == rpc::op::kClusterRemove) {
    admin_->remove_member(num_arg<uint64_t>(args, "id", 0), done);
  } else if (op == rpc::op::kClusterTransfer) {
    admin_->transfer_leadership(num_arg<uint64_t>(args, "id", 0), done);
  } else {
    r.error(rpc::code::kBadRequest, "unknown op '" + op + "'");
  }
}

// --- membership ------------------------------------------------------------------------------------------

void Service::ping(const Json& args, rpc::Responder r) {
  store::Ping p;
  p.pool = str_arg(args, rpc::arg::kPool);
  p.worker_id = str_arg(args, rpc::arg::kWorker);
  if (auto e = store::validate_name("pool", p.pool)) throw std::invalid_argument(*e);
  if (auto e = store::validate_name("worker id", p.worker_id)) throw std::invalid_argument(*e);
  p.pod = str_arg(args, "pod", false);
  p.version = str_arg(args, "version", false);
  if (args.contains("workflows")) p.workflows = args.at("workflows").get<std::vector<std::string>>();
  p.cpu = num_arg<double>(args, "cpu", 0.0);
  p.free_slots = num_arg<uint32_t>(args, "free_slots", 0);
  // Workers that report what they hold (every gasoline-worker does) get their orphaned leases released.
  if (auto held = args.find("held"); held != args.end()) reconcile_leases(p.pool, p.worker_id, *held);
  bool schedule = false;
  {
    std::lock_guard lock(ping_mu_);
    pending_pings_[{p.pool, p.worker_id}] = std::move(p);
    ping_waiters_.push_back(r);
    if (!ping_flush_scheduled_) ping_flush_scheduled_ = schedule = true;
  }
  if (schedule) {
    asio::post(io_, [this] {
      ping_timer_.expires_after(std::chrono::milliseconds(config_.ping_flush_ms));
      ping_timer_.async_wait([this](boost::system::error_code ec) {
        if (!ec) flush_pings();
      });
    });
  }
}

void Service::reconcile_leases(const std::string& pool, const std::string& worker, const Json& held) {
  if (!held.is_array()) throw std::invalid_argument("'held' must be an array of lease tokens");
  std::unordered_set<uint64_t> reported;
  reported.reserve(held.size());
  for (const auto& t : held) {
    if (!t.is_number_unsigned()) throw std::invalid_argument("'held' must be an array of lease tokens");
    reported.insert(t.get<uint64_t>());
  }
  std::vector<assign::Lease> granted;
  for (auto& l : sm_.leases_of(pool, worker)) granted.push_back(assign::Lease{std::move(l.workflow_id), l.token});
  std::vector<assign::Lease> orphaned;
  {
    std::lock_guard lock(orphans_mu_);
    orphaned = orphans_.observe(pool, worker, granted, reported, mono_ms());
  }
  for (const auto& lease : orphaned) {
    store::Release release{lease.workflow_id, worker, lease.token, "orphaned"};
    log_->propose(std::move(release), [this, pool, worker, lease](const store::Result& res) {
      metrics_.command("release", std::string(store::to_string(res.code)));
      // A conflict means the worker committed or released it meanwhile: nothing was orphaned after all.
      if (!res.ok()) return;
      metrics_.orphans_released(pool);
      log::warn("lease released: its worker is alive but does not hold it (the answer to its pull was lost)",
                {{"pool", pool},
                 {"worker", worker},
                 {"workflow", lease.workflow_id},
                 {"token", lease.token},
                 {"grace_ms", config_.orphan_grace_ms}});
    });
  }
}

void Service::flush_pings() {
  store::PingBatch batch;
  std::vector<rpc::Responder> waiters;
  {
    std::lock_guard lock(ping_mu_);
    for (auto& [key, p] : pending_pings_) batch.pings.push_back(std::move(p));
    pending_pings_.clear();
    waiters.swap(ping_waiters_);
    ping_flush_scheduled_ = false;
  }
  if (batch.pings.empty()) return;
  Json reply{{"ping_interval_ms", config_.ping_interval_ms}, {"lost_after_ms", config_.lost_after_ms}};
  log_->propose(std::move(batch), [this, waiters = std::move(waiters), reply](const store::Result& res) {
    metrics_.command("ping", std::string(store::to_string(res.code)));
    for (const auto& w : waiters) {
      if (res.ok()) {
        w.ok(reply);
      } else {
        reply_error(w, res);
      }
    }
  });
}

void Service::subscribe(const rpc::Request& req, rpc::Responder r) {
  auto worker = str_arg(req.args, "worker");
  if (auto e = store::validate_name("worker id", worker)) throw std::invalid_argument(*e);
  {
    std::lock_guard lock(hub_mu_);
    streams_[worker] = req.session;
    disconnected_.erase(worker);
  }
  r.ok(Json{{"worker", worker}});
}

void Service::on_session_closed(rpc::Session& session) {
  std::lock_guard lock(hub_mu_);
  for (auto it = streams_.begin(); it != streams_.end();) {
    auto s = it->second.lock();
    if (!s || s.get() == &session) {
      // The kernel closes a dead process's connections: evidence for the leader that the worker may be gone
      // (assign/lost.h).
      if (s && log_ && log_->is_leader()) disconnected_[it->first] = now();
      it = streams_.erase(it);
    } else {
      ++it;
    }
  }
}

void Service::drain_or_leave(const std::string& op, const Json& args, rpc::Responder r) {
  auto pool = str_arg(args, rpc::arg::kPool);
  auto worker = str_arg(args, rpc::arg::kWorker);
  if (op == rpc::op::kDrain) {
    propose_and_reply(store::Drain{pool, worker}, r);
  } else if (op == rpc::op::kUndrain) {
    propose_and_reply(store::Undrain{pool, worker}, r);
  } else {
    {
      std::lock_guard lock(orphans_mu_);
      orphans_.forget(pool, worker);
    }
    propose_and_reply(store::Leave{pool, worker}, r);
  }
}

void Service::reclaim_tick() {
  if (stopped_) return;
  int64_t t = now();
  // The silence of a worker is counted from this leader's term on; see assign/lost.h.
  const assign::LostPolicy policy{config_.lost_after_ms, config_.disconnect_grace_ms(), 2 * config_.ping_interval_ms};
  std::unordered_map<std::string, int64_t> disconnected;
  {
    std::lock_guard lock(hub_mu_);
    std::erase_if(disconnected_, [&](const auto& d) { return t - d.second > config_.lost_after_ms; });
    disconnected = disconnected_;
  }
  std::map<std::string, size_t> active_by_pool;
  for (const auto& w : sm_.workers("")) {
    if (w.state == store::WorkerState::kActive && w.last_ping_ts >= t - config_.active_window_ms())
      ++active_by_pool[w.pool];
    else
      active_by_pool.try_emplace(w.pool, 0);
    auto d = disconnected.find(w.id);
    auto verdict = assign::lost_verdict(t, started_ms_, w.last_ping_ts,
                                        d == disconnected.end() ? std::nullopt : std::optional<int64_t>(d->second),
                                        policy);
    if (!verdict) continue;
    if (verdict->reason == assign::LostReason::kDisconnected) {
      // A reconnected worker's ping may wait for the next ping entry: the reclaim must not overtake it.
      std::lock_guard lock(ping_mu_);
      if (pending_pings_.count({w.pool, w.id})) continue;
    }
    {
      std::lock_guard lock(reclaim_mu_);
      if (!reclaiming_.insert(w.id).second) continue;
    }
    if (verdict->reason == assign::LostReason::kDisconnected) {
      // One attempt per disconnect: if the worker turns out alive (it pings through another connection), the
      // general bound watches it from here. A newer disconnect recorded meanwhile stays.
      std::lock_guard lock(hub_mu_);
      if (auto it = disconnected_.find(w.id); it != disconnected_.end() && it->second == d->second)
        disconnected_.erase(it);
    }
    const char* why = assign::to_string(verdict->reason);
    log_->propose(store::Reclaim{w.pool, w.id, verdict->silent_ms}, [this, w, why](const store::Result& res) {
      {
        std::lock_guard lock(reclaim_mu_);
        reclaiming_.erase(w.id);
      }
      metrics_.command("reclaim", std::string(store::to_string(res.code)));
      if (!res.ok() || res.body.value("alive", false)) return;
      {
        std::lock_guard lock(orphans_mu_);
        orphans_.forget(w.pool, w.id);
      }
      auto n = res.body["released"].size();
      metrics_.reclaimed(w.pool, static_cast<double>(n));
      log::warn("worker lost: leases reclaimed",
                {{"pool", w.pool}, {"worker", w.id}, {"pod", w.pod}, {"released", n}, {"why", why},
                 {"silent_ms", wall_ms() - w.last_ping_ts}});
    });
  }
  for (const auto& [pool, n] : active_by_pool) {
    metrics_.pool_seen(pool);
    metrics_.active_workers(pool, static_cast<double>(n));
  }
  reclaim_timer_.expires_after(std::chrono::milliseconds(std::max<int64_t>(50, config_.ping_interval_ms / 2)));
  reclaim_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) reclaim_tick();
  });
}

// --- retention -------------------------------------------------------------------------------------------

int64_t Service::retention_of(const std::string& pool) const {
  auto own = sm_.pool_retention(pool);
  return own ? *own : config_.retention_ms;
}

void Service::configure_pool(const Json& args, rpc::Responder r) {
  auto pool = str_arg(args, rpc::arg::kPool);
  if (auto e = store::validate_name("pool", pool)) throw std::invalid_argument(*e);
  auto it = args.find("retention_ms");
  if (it == args.end() || !it->is_number_integer())
    throw std::invalid_argument("'retention_ms' must be an integer (ms; 0 = keep forever, -1 = the kv's default)");
  propose_and_reply(store::ConfigurePool{pool, std::max<int64_t>(-1, it->get<int64_t>())}, r);
}

void Service::retention_tick() {
  if (stopped_) return;
  if (log_ && log_->is_leader()) {
    int64_t t = now();
    try {
      for (const auto& pool : sm_.finished_pools()) {
        int64_t retention = retention_of(pool);
        if (retention <= 0) continue;
        {
          std::lock_guard lock(purge_mu_);
          if (purging_.count(pool)) continue;  // one batch in flight per pool keeps the log's entries small
        }
        auto ids = sm_.finished_before(pool, t - retention, config_.purge_batch);
        if (ids.empty()) continue;
        {
          std::lock_guard lock(purge_mu_);
          purging_.insert(pool);
        }
        log_->propose(store::Purge{pool, retention, std::move(ids)}, [this, pool](const store::Result& res) {
          {
            std::lock_guard lock(purge_mu_);
            purging_.erase(pool);
          }
          metrics_.command("purge", std::string(store::to_string(res.code)));
          if (res.ok()) metrics_.purged(pool, static_cast<double>(res.body["purged"].size()));
        });
      }
      report_due(t);
      // Counting reads every index key of a pool: now and then, not every sweep.
      if (retention_ticks_++ % 6 == 0) {
        std::set<std::string> pools;
        for (const auto& p : sm_.pools()) pools.insert(p);
        for (const auto& p : sm_.finished_pools()) pools.insert(p);
        for (const auto& p : pools) {
          auto c = sm_.counts(p);
          metrics_.workflows(p, static_cast<double>(c.all - std::min(c.all, c.finished)),
                             static_cast<double>(c.finished));
          for (size_t st = 0; st < store::kStatusCount; ++st)
            metrics_.workflows_by_status(p, std::string(store::to_string(static_cast<store::Status>(st))),
                                         static_cast<double>(c.by_status[st]));
        }
      }
    } catch (const std::exception& e) {
      log::error("retention sweep failed; trying again at the next sweep", {{"error", e.what()}});
    }
  }
  retention_timer_.expires_after(std::chrono::milliseconds(config_.retention_sweep_ms));
  retention_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) retention_tick();
  });
}

Service::DueSummary Service::due_summary(const std::string& pool, int64_t t) const {
  DueSummary d;
  sm_.for_each_due(pool, t, kDueCountCap, [&](int64_t ts, const std::string&, const std::string&) {
    if (d.count++ == 0) d.oldest_ts = ts;  // earliest first
    return true;
  });
  return d;
}

void Service::report_due(int64_t t) {
  std::set<std::string> now_reported;
  for (const auto& p : sm_.pools()) {
    auto d = due_summary(p, t);
    metrics_.due(p, static_cast<double>(d.count), d.count ? static_cast<double>(t - d.oldest_ts) / 1000.0 : 0.0);
    now_reported.insert(p);
  }
  // A pool that lost its last worker and wake entry is no longer listed: its gauges go to 0, not stay stale.
  for (const auto& p : due_reported_)
    if (!now_reported.count(p)) metrics_.due(p, 0, 0);
  due_reported_ = std::move(now_reported);
}

// --- workflows -------------------------------------------------------------------------------------------

void Service::dispatch(const Json& args, rpc::Responder r) {
  auto spec = store::dispatch_from_json(args);
  if (spec.id.empty()) spec.id = random_id("wf_");
  spec.parent_id.clear();  // children are dispatched by a parent's commit, never from outside
  spec.notify_parent = false;
  propose_and_reply(store::Dispatch{std::move(spec)}, r);
}

void Service::signal(const Json& args, rpc::Responder r) {
  auto spec = store::signal_spec_from_json(args);
  propose_and_reply(store::SendSignal{std::move(spec)}, r);
}

void Service::cancel(const Json& args, rpc::Responder r) {
  propose_and_reply(store::Cancel{str_arg(args, rpc::arg::kWorkflowId), str_arg(args, "reason", false)}, r);
}

void Service::get(const rpc::Request& req, rpc::Responder r) {
  auto id = str_arg(req.args, "workflow_id");
  auto w = sm_.workflow(id);
  if (!w) {
    r.error(rpc::code::kNotFound, "workflow '" + id + "' not found");
    return;
  }
  if (req.session && !permitted(req, r, w->pool)) return;
  Json j = workflow_json(*w);
  if (!may_see_lease(req, *w)) j.erase("lease_token");
  Json sigs = Json::array();
  for (const auto& s : sm_.signals(id, w->consumed_signal_seq, 100))
    sigs.push_back(Json{{"seq", s.seq}, {"name", s.name}, {"body", s.body}, {"ts", s.ts}});
  j["pending_signals"] = std::move(sigs);
  r.ok(j);
}

void Service::list(const rpc::Request& req, rpc::Responder r) {
  const auto& args = req.args;
  auto pool = str_arg(args, rpc::arg::kPool);
  std::optional<store::Status> status;
  auto s = str_arg(args, "status", false);
  if (!s.empty()) {
    status = store::parse_status(s);
    if (!status) throw std::invalid_argument("unknown status '" + s + "'");
  }
  auto limit = std::min<size_t>(num_arg<size_t>(args, "limit", 100), 10000);
  Json out = Json::array();
  for (const auto& w : sm_.list(pool, status, limit, str_arg(args, "after", false))) {
    out.push_back(workflow_json(w));
    if (!may_see_lease(req, w)) out.back().erase("lease_token");
  }
  r.ok(Json{{"workflows", std::move(out)}});
}

std::vector<std::string> Service::active_ids(const std::vector<store::Worker>& all, std::string_view name,
                                             int64_t t) const {
  return assign::live_ids(members_of(all), name, t, config_.active_window_ms());
}

void Service::workers(const Json& args, rpc::Responder r) {
  auto pool = str_arg(args, "pool", false);
  int64_t t = now();
  auto all = sm_.workers(pool);
  std::map<std::string, std::vector<store::Worker>> by_pool;
  for (auto& w : all) by_pool[w.pool].push_back(std::move(w));
  std::unordered_map<std::string, uint64_t> granted;
  uint64_t total = 0;
  {
    std::lock_guard lock(share_mu_);
    granted = granted_by_worker_;
  }
  Json pools = Json::array();
  for (auto& [p, ws] : by_pool) {
    auto ranking = active_ids(ws, "", t);
    uint64_t pool_total = 0;
    for (const auto& w : ws) pool_total += granted.count(w.id) ? granted[w.id] : 0;
    total += pool_total;
    Json list = Json::array();
    std::sort(ws.begin(), ws.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    for (const auto& w : ws) {
      auto it = std::find(ranking.begin(), ranking.end(), w.id);
      int rank = it == ranking.end() ? -1 : static_cast<int>(it - ranking.begin());
      uint64_t g = granted.count(w.id) ? granted[w.id] : 0;
      list.push_back(Json{{"id", w.id},
                          {"pod", w.pod},
                          {"version", w.version},
                          {"state", store::to_string(w.state)},
                          {"rank", rank},
                          {"active", rank >= 0},
                          {"last_ping_age_ms", t - w.last_ping_ts},
                          {"cpu", w.cpu},
                          {"free_slots", w.free_slots},
                          {"workflows", w.workflows},
                          {"expected_share", rank >= 0 ? 1.0 / static_cast<double>(ranking.size()) : 0.0},
                          {"leases_granted", g},
                          {"share", pool_total ? static_cast<double>(g) / static_cast<double>(pool_total) : 0.0}});
    }
    pools.push_back(Json{{"pool", p}, {"active", ranking.size()}, {"workers", std::move(list)}});
  }
  r.ok(Json{{"strategy", assign::to_string(config_.strategy)}, {"pools", std::move(pools)}});
}

void Service::status(const Json& args, rpc::Responder r) {
  const bool with_counts = args.is_object() && args.value("counts", false);
  Json pools = Json::array();
  int64_t t = now();
  std::set<std::string> names;
  for (const auto& p : sm_.pools()) names.insert(p);
  for (const auto& p : sm_.finished_pools()) names.insert(p);
  for (const auto& p : names) {
    auto ws = sm_.workers(p);
    auto own = sm_.pool_retention(p);
    auto due = due_summary(p, t);
    PoolTotals totals;
    {
      std::lock_guard lock(share_mu_);
      if (auto it = totals_by_pool_.find(p); it != totals_by_pool_.end()) totals = it->second;
    }
    pools.push_back(Json{{"pool", p},
                         {"active_workers", active_ids(ws, "", t).size()},
                         {"workers", ws.size()},
                         {"wake_entries", sm_.wake_count(p)},
                         {"due", due.count},
                         {"oldest_due_age_ms", due.count ? t - due.oldest_ts : 0},
                         {"leases_granted", totals.granted},
                         {"shed", totals.shed},
                         {"retention_ms", own ? *own : config_.retention_ms},
                         {"retention_source", own ? "pool" : "kv default"}});
    // Counting reads every status index key of the pool: only when asked (gasctl status/watch), never for the
    // operator's frequent status reads.
    if (with_counts) {
      auto c = sm_.counts(p);
      Json counts = Json::object();
      for (size_t st = 0; st < store::kStatusCount; ++st)
        counts[std::string(store::to_string(static_cast<store::Status>(st)))] = c.by_status[st];
      pools.back()["counts"] = std::move(counts);
    }
  }
  r.ok(Json{{"role", log_ && log_->is_leader() ? "leader" : "follower"},
            {"leader", log_ ? log_->leader_address() : ""},
            {"applied_index", sm_.applied_index()},
            {"last_ts", sm_.last_ts()},
            {"strategy", assign::to_string(config_.strategy)},
            {"raft", admin_ ? admin_->cluster_status() : Json(nullptr)},
            {"pools", std::move(pools)}});
}

// --- pull and commit -------------------------------------------------------------------------------------

void Service::pull(const Json& args, rpc::Responder r) {
  auto pool = str_arg(args, rpc::arg::kPool);
  auto worker = str_arg(args, rpc::arg::kWorker);
  size_t max = std::min(num_arg<size_t>(args, "max", 1), config_.max_pull);
  double cpu = num_arg<double>(args, "cpu", 0.0);
  assign::ShedCurve curve = config_.shed;
  if (args.contains("shed") && args["shed"].is_object()) {
    const auto& s = args["shed"];
    curve.start_knee = store::json_field<double>(s, "start", curve.start_knee);
    curve.end_knee = store::json_field<double>(s, "end", curve.end_knee);
    curve.min_ratio = store::json_field<uint32_t>(s, "min_ratio", curve.min_ratio);
    if (auto e = assign::validate(curve)) throw std::invalid_argument("shed curve: " + *e);
  }
  metrics_.pull(pool);
  int64_t t = now();
  auto all = sm_.workers(pool);
  if (std::none_of(all.begin(), all.end(), [&](const auto& w) { return w.id == worker; })) {
    r.error(rpc::code::kFailedPrecondition,
            "worker '" + worker + "' is not a member of pool '" + pool + "': ping before pulling");
    return;
  }
  const auto members = members_of(all);
  const uint32_t ratio = assign::pull_ratio(curve, cpu);
  // Only the pool's members can be primaries of its entries; the caller's own record never matters to its plan
  // (it is never the primary of an entry it backs up), so it is recorded after the copy.
  assign::PullsSeen seen;
  {
    std::lock_guard lock(pull_seen_mu_);
    for (const auto& w : all)
      if (auto it = pull_seen_.find(w.id); it != pull_seen_.end()) seen.insert(*it);
  }
  assign::PullPlanner planner({config_.strategy, config_.backup_grace_ms, config_.active_window_ms()},
                              {worker, max, ratio}, members, seen, t);
  if (!planner.pulling()) {
    r.ok(Json{{"tasks", Json::array()}, {"shed", 0}, {"more", false}});
    return;
  }
  {
    std::lock_guard lock(pull_seen_mu_);
    pull_seen_[worker] = assign::PullSeen{t, ratio};
  }
  sm_.for_each_due(pool, t, config_.scan_cap, [&](int64_t ts, const std::string& id, const std::string& name) {
    return planner.offer(ts, id, name);
  });
  auto plan = planner.take();
  const size_t shed = plan.shed;
  const bool more = plan.more;
  store::LeaseBatch batch{pool, worker, {}};
  batch.items.reserve(plan.leases.size());
  for (auto& l : plan.leases) batch.items.push_back(store::LeaseItem{std::move(l.workflow_id), l.wake_ts});
  if (shed) {
    metrics_.shed(pool, static_cast<double>(shed));
    std::lock_guard lock(share_mu_);
    totals_by_pool_[pool].shed += shed;
  }
  if (batch.items.empty()) {
    r.ok(Json{{"tasks", Json::array()}, {"shed", shed}, {"more", false}});
    return;
  }
  log_->propose(std::move(batch), [this, r, pool, worker, shed, more](const store::Result& res) {
    metrics_.command("lease", std::string(store::to_string(res.code)));
    if (!res.ok()) {
      reply_error(r, res);
      return;
    }
    // Reading the records and signals happens off the log thread.
    asio::post(io_, [this, r, pool, worker, shed, more, body = res.body] {
      int64_t granted_at = wall_ms();
      Json tasks = Json::array();
      for (const auto& g : body["granted"]) {
        auto id = g["id"].get<std::string>();
        auto wake_ts = g["wake_ts"].get<int64_t>();
        metrics_.wake_lag(pool, std::max<int64_t>(0, granted_at - wake_ts) / 1000.0);
        Json sigs = Json::array();
        // Most tasks have no pending signal; skip the iterator then.
        if (g.value("signals_pending", false))
          for (const auto& sg : sm_.signals(id, g.value("consumed_signal_seq", uint64_t{0}), 1000))
            sigs.push_back(Json{{"seq", sg.seq}, {"name", sg.name}, {"body", sg.body}, {"ts", sg.ts}});
        Json task = g;
        task.erase("id");
        task.erase("signals_pending");
        task.erase("consumed_signal_seq");
        task["workflow_id"] = id;
        task["signals"] = std::move(sigs);
        tasks.push_back(std::move(task));
      }
      size_t conflicts = body.value("conflicts", 0);
      metrics_.leases_granted(pool, static_cast<double>(tasks.size()));
      if (conflicts) metrics_.lease_conflicts(pool, static_cast<double>(conflicts));
      {
        std::lock_guard lock(share_mu_);
        granted_by_worker_[worker] += tasks.size();
        totals_by_pool_[pool].granted += tasks.size();
      }
      Json reply{{"tasks", std::move(tasks)}, {"shed", shed}, {"conflicts", conflicts}, {"more", more}};
      if (body.contains("rejected")) reply["rejected"] = body["rejected"];
      r.ok(std::move(reply));
    });
  });
}

void Service::commit(const Json& args, rpc::Responder r) {
  store::CommitStep c;
  c.workflow_id = str_arg(args, rpc::arg::kWorkflowId);
  c.worker_id = str_arg(args, rpc::arg::kWorker);
  c.token = num_arg<uint64_t>(args, "token", 0);
  if (!args.contains("step")) throw std::invalid_argument("missing 'step'");
  c.step = store::step_from_json(args["step"]);
  c.consumed_signal_seq = num_arg<uint64_t>(args, "consumed_signal_seq", 0);
  if (args.contains("children")) {
    for (const auto& d : args["children"]) {
      auto spec = store::dispatch_from_json(d);
      if (spec.id.empty()) spec.id = random_id("wf_");
      c.children.push_back(std::move(spec));
    }
  }
  if (args.contains("signals"))
    for (const auto& s : args["signals"]) c.signals.push_back(store::signal_spec_from_json(s));
  propose_and_reply(std::move(c), r);
}

void Service::release(const Json& args, rpc::Responder r) {
  store::Release c;
  c.workflow_id = str_arg(args, rpc::arg::kWorkflowId);
  c.worker_id = str_arg(args, rpc::arg::kWorker);
  c.token = num_arg<uint64_t>(args, "token", 0);
  c.reason = args.value("reason", "released");
  propose_and_reply(std::move(c), r);
}

// --- bumps -----------------------------------------------------------------------------------------------

void Service::on_applied(int64_t ts, size_t commands, const std::vector<store::Wake>& wakes) {
  metrics_.applied_index(static_cast<double>(sm_.applied_index()));
  metrics_.committed(commands);
  auto* timers = this->timers();
  if (!timers) return;
  for (const auto& w : wakes) {
    timers->schedule(std::max(w.ts, ts), [this, w] { bump(w, false); });
  }
}

void Service::bump(const store::Wake& w, bool backup) {
  if (!sm_.has_wake(w.pool, w.ts, w.workflow_id)) return;  // leased, moved or cancelled meanwhile
  auto key = std::make_pair(w.pool, w.name);
  auto it = batch_members_.find(key);
  if (it == batch_members_.end()) it = batch_members_.emplace(key, active_ids(sm_.workers(w.pool), w.name, now())).first;
  const auto& members = it->second;
  if (members.empty()) return;
  if (config_.strategy == assign::Strategy::kAll) {
    if (!backup)
      for (const auto& m : members) ++batch_bumps_[m][w.pool];
    return;
  }
  auto c = assign::pick(config_.strategy, members, w.workflow_id, w.ts);
  if (!backup) {
    if (c.primary >= 0) ++batch_bumps_[members[c.primary]][w.pool];
    if (c.backup >= 0) timers()->schedule(w.ts + config_.backup_grace_ms, [this, w] { bump(w, true); });
  } else if (c.backup >= 0) {
    ++batch_bumps_[members[c.backup]][w.pool];
  }
}

void Service::send_bumps() {
  if (batch_bumps_.empty()) return;
  size_t sent = 0;
  std::lock_guard lock(hub_mu_);
  for (const auto& [worker, pools] : batch_bumps_) {
    auto it = streams_.find(worker);
    if (it == streams_.end()) continue;
    auto session = it->second.lock();
    if (!session || session->closed()) continue;
    for (const auto& [pool, n] : pools) {
      session->send(rpc::FrameType::kBump, 0, Json{{"pool", pool}, {"due", n}});
      ++sent;
    }
  }
  if (sent) metrics_.bumps(static_cast<double>(sent));
}

}  // namespace gasoline::kv
