#pragma once
// The kv service on the leader: turns RPC requests into commands, runs the pull algorithm (docs/design.md),
// batches pings, reclaims lost workers' leases, and pushes bumps to the primary (then the backup) of every
// workflow that becomes due, from a timer over the wake index.
#include "kv/assign/orphans.h"
#include "kv/assign/pull_plan.h"
#include "kv/assign/shedding.h"
#include "kv/assign/strategy.h"
#include "kv/rpc/server.h"
#include "kv/service/log.h"
#include "kv/service/metrics.h"
#include "kv/service/timer_queue.h"
#include "kv/store/state_machine.h"

#include <boost/asio.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_map>

namespace gasoline::kv {

struct ServiceConfig {
  assign::Strategy strategy = assign::Strategy::kRendezvous;
  int64_t ping_interval_ms = 500;   // a worker is active while its last ping is within 3 intervals
  int64_t lost_after_ms = 2000;     // leases of a worker silent this long are reclaimed
  // ... or silent this long once its connection closed: 0 = off, -1 = max(2 pings, lost_after / 2) (1 s by default)
  int64_t lost_after_disconnect_ms = -1;
  int64_t backup_grace_ms = 1000;   // how overdue an entry must be before the backup takes it
  int64_t orphan_grace_ms = 2000;   // a lease its live worker has not reported this long is released
  int64_t retention_ms = 7LL * 24 * 3600 * 1000;  // finished workflows are deleted this long after they finished
                                                  // (a pool may set its own; 0 = keep forever)
  int64_t retention_sweep_ms = 5000;  // how often the leader looks for expired workflows
  size_t purge_batch = 256;           // workflows deleted per log entry
  size_t scan_cap = 4096;           // wake entries one pull looks at
  size_t max_pull = 256;            // tasks one pull returns at most
  int64_t ping_flush_ms = 20;       // pings received within this window share one log entry
  assign::ShedCurve shed;           // used when a pull does not send its own curve
  int64_t active_window_ms() const { return 3 * ping_interval_ms; }
  int64_t disconnect_grace_ms() const {
    if (lost_after_disconnect_ms >= 0) return lost_after_disconnect_ms;
    int64_t g = std::max(2 * ping_interval_ms, lost_after_ms / 2);
    return g < lost_after_ms ? g : 0;
  }
};

class Service {
 public:
  Service(store::StateMachine& sm, boost::asio::io_context& io, ServiceConfig config, Metrics& metrics);
  ~Service();

  // The log is created after the service because its apply callback calls back into the service.
  void attach(Log* log, ClusterAdmin* admin = nullptr) {
    log_ = log;
    admin_ = admin;
  }
  // The log tells the service when this replica gains or loses leadership (from the log's thread).
  void on_leadership(bool leader);
  void start();
  void stop();

  void handle(rpc::Request request, rpc::Responder responder);
  // Called by the log after every applied entry (on the log's thread).
  void on_applied(int64_t ts, size_t commands, const std::vector<store::Wake>& wakes);
  void on_session_closed(rpc::Session& session);

  const ServiceConfig& config() const { return config_; }

 private:
  struct BadRequest : std::runtime_error {
    using std::runtime_error::runtime_error;
  };

  // The caller's role against what the request touches (kv/rpc/authz.h). Answers permission_denied (or
  // not_found for a workflow it cannot see) and returns false when the request must not run. Ops whose pool is
  // known only after a read (get) check in their handler.
  bool authorize_request(const rpc::Request& req, const rpc::Responder& r);
  bool permitted(const rpc::Request& req, const rpc::Responder& r, const std::string& pool,
                 const std::string& worker = "");
  // Counts and answers a denial; true when `d` allows.
  bool allowed_or_deny(const rpc::Request& req, const rpc::Responder& r, const rpc::authz::Decision& d);
  // Whether the caller may see the lease token of a workflow: admins, and the connection that pinged as the
  // lease's worker. Anyone else holding it could commit or release another worker's lease.
  bool may_see_lease(const rpc::Request& req, const store::Workflow& w) const;

  void ping(const rpc::Json& args, rpc::Responder r);
  void subscribe(const rpc::Request& req, rpc::Responder r);
  void drain_or_leave(const std::string& op, const rpc::Json& args, rpc::Responder r);
  void dispatch(const rpc::Json& args, rpc::Responder r);
  void signal(const rpc::Json& args, rpc::Responder r);
  void cancel(const rpc::Json& args, rpc::Responder r);
  void get(const rpc::Request& req, rpc::Responder r);
  void list(const rpc::Request& req, rpc::Responder r);
  void workers(const rpc::Json& args, rpc::Responder r);
  void status(const rpc::Json& args, rpc::Responder r);
  void pull(const rpc::Json& args, rpc::Responder r);
  void commit(const rpc::Json& args, rpc::Responder r);
  void release(const rpc::Json& args, rpc::Responder r);

  void cluster(const std::string& op, const rpc::Json& args, rpc::Responder r);
  // Runs a read: linearizable through a log barrier on the leader, or local when the caller passes stale=true.
  void read(const rpc::Json& args, rpc::Responder r, std::function<void()> fn);
  void reply_error(const rpc::Responder& r, const store::Result& res) const;
  void schedule_stored_wakes();
  // Proposes and answers with the command's result (or the mapped error).
  void propose_and_reply(store::Command c, rpc::Responder r);
  int64_t now() const;
  std::vector<std::string> active_ids(const std::vector<store::Worker>& all, std::string_view name, int64_t now) const;

  void flush_pings();
  // Compares the tokens a ping says the worker holds with the leases the state gives it, and releases those
  // missing for the orphan grace (kv/assign/orphans.h).
  void reconcile_leases(const std::string& pool, const std::string& worker, const rpc::Json& held);
  void reclaim_tick();
  // Deletes finished workflows past their pool's retention, in small batches through the log, and refreshes the
  // per-pool workflow gauges now and then.
  void retention_tick();
  void report_due(int64_t t);  // the due gauges of every pool (leader, retention timer)
  struct DueSummary {
    size_t count = 0;         // capped at kDueCountCap
    int64_t oldest_ts = 0;    // the earliest due entry's wake time; 0 when nothing is due
  };
  static constexpr size_t kDueCountCap = 100000;
  DueSummary due_summary(const std::string& pool, int64_t t) const;
  int64_t retention_of(const std::string& pool) const;
  void configure_pool(const rpc::Json& args, rpc::Responder r);
  void bump(const store::Wake& w, bool backup);
  void send_bumps();

  store::StateMachine& sm_;
  boost::asio::io_context& io_;
  ServiceConfig config_;
  Metrics& metrics_;
  Log* log_ = nullptr;
  ClusterAdmin* admin_ = nullptr;
  std::atomic<int64_t> started_ms_{0};  // set on the log thread at leadership, read by the reclaim timer

  std::mutex ping_mu_;
  std::map<std::pair<std::string, std::string>, store::Ping> pending_pings_;
  std::vector<rpc::Responder> ping_waiters_;
  bool ping_flush_scheduled_ = false;
  boost::asio::steady_timer ping_timer_;

  std::mutex orphans_mu_;
  assign::OrphanTracker orphans_;

  boost::asio::steady_timer retention_timer_;
  std::mutex purge_mu_;
  std::set<std::string> purging_;  // pools with a purge in flight
  uint64_t retention_ticks_ = 0;

  boost::asio::steady_timer reclaim_timer_;
  std::mutex reclaim_mu_;
  std::set<std::string> reclaiming_;

  std::mutex hub_mu_;
  std::unordered_map<std::string, std::weak_ptr<rpc::Session>> streams_;  // worker id → bump stream
  std::unordered_map<std::string, int64_t> disconnected_;  // worker id → when its stream closed, until it subscribes

  // Bump batching state, touched only on the timer thread.
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> batch_members_;  // (pool, name) → ids
  std::map<std::string, std::map<std::string, size_t>> batch_bumps_;                       // worker → pool → n
  std::unique_ptr<TimerQueue> timers_;  // created and destroyed on the thread that calls start() and stop()
  // timers_.get() once start() made it: the applier thread (on_applied, on_leadership) may run before start(),
  // replaying the log, so it reads the queue through this pointer and skips scheduling until it is set.
  std::atomic<TimerQueue*> timer_queue_{nullptr};
  TimerQueue* timers() const { return timer_queue_.load(std::memory_order_acquire); }

  // What the leader last saw of each worker's pulls: a backup leaves an overdue entry to a primary that is
  // alive (pulled within the grace) and not shedding it, so a backlog doesn't turn into lease conflicts.
  std::mutex pull_seen_mu_;
  assign::PullsSeen pull_seen_;

  std::mutex share_mu_;
  std::unordered_map<std::string, uint64_t> granted_by_worker_;
  // Per pool, since this replica started: what the status op reports so `gasctl watch` can show rates without
  // the Prometheus endpoint (guarded by share_mu_).
  struct PoolTotals {
    uint64_t granted = 0;
    uint64_t shed = 0;
  };
  std::unordered_map<std::string, PoolTotals> totals_by_pool_;
  std::set<std::string> due_reported_;  // pools the due gauges were set for (retention timer only)
  std::atomic<bool> stopped_{false};
};

}  // namespace gasoline::kv
