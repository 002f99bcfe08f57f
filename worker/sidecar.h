#pragma once
// The sidecar's core (docs/design.md, "The sidecar"): membership (pings with CPU and free slots, the bump stream),
// the puller (asks the kv for at most as many tasks as there are free slots and waiting app polls), the leased tasks
// handed to the app, their results committed under the fenced lease (retried while the kv is away), and the
// drain. The HTTP layer (worker/api.h) calls in; nothing here knows about HTTP beyond status numbers.
//
// Where it lives: sidecar.cc (membership, pulling, results, housekeeping), drain.cc (drain, undrain, leave),
// task_table.h (the leased tasks' states and every decision about them, without I/O) and pass_through.h
// (dispatch, get, signal and cancel, with their own lock).
//
// Threads: the kv client's I/O thread (callbacks, never blocked), a membership thread, a puller thread and a
// housekeeping thread (poll deadlines, result retries, task timeouts), and from the drain's start a drain thread (the
// kv's `drain` call and the wait for the app's tasks; HTTP callers of drain() are answered from it, so no server
// thread is blocked for the drain). One mutex guards the shared state;
// replies to the app are always made after it is released.
#include "kv/rpc/client.h"
#include "worker/api_parse.h"
#include "worker/config.h"
#include "worker/cpu.h"
#include "worker/metrics.h"
#include "worker/outcome.h"
#include "worker/pass_through.h"
#include "worker/task_table.h"

#include <condition_variable>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <thread>

namespace gasoline::worker {

class Sidecar {
 public:
  Sidecar(Config config, Metrics& metrics, CpuReader cpu);
  ~Sidecar();
  Sidecar(const Sidecar&) = delete;
  Sidecar& operator=(const Sidecar&) = delete;

  // Starts the threads. Never fails because of the kv: an unreachable kv only keeps the sidecar unready.
  void start();
  // The drain (worker/README.md, "Drain"): stop pulling, answer waiting polls, give back tasks the app never
  // received, tell the kv `drain` (out of the ranking: new work goes to the others), keep pinging, and wait until
  // every task the app holds is resolved, `--drain-timeout` passes or force() is called. The first call starts it;
  // every later call joins the same drain (one deadline, counted from the start) or, once it finished, gets its
  // summary at once: {"drained", "running", "buffered", "waited_ms", "timed_out", ...}. Pings go on after the drain
  // until leave(), so the kv keeps the worker as draining and reclaims nothing. A drain that no SIGTERM
  // (drain_and_leave) followed within --undrain-after is undone: the kv's `undrain`, then pulling and /readyz 200
  // again, and a later drain starts afresh.
  //
  // Asynchronous, for HTTP handlers (GET /drain, POST /v1/drain): `done` runs exactly once, on the drain thread
  // or at once when the drain already finished; 200 with the summary, or 503 when the sidecar is shutting down
  // without having drained.
  void drain(Done done);
  // Blocking, for the signal path: starts or joins the drain and returns its summary once it finished.
  Json drain();
  bool drain_finished() const;
  // Stops pinging and calls `leave` (the kv releases whatever is still held with an immediate wake-up).
  void leave();
  // SIGTERM without a prior /drain: drain(), then leave(). After a finished drain it only leaves.
  void drain_and_leave();
  // A second signal: stop waiting for running tasks (and for the kv's answer to `drain`).
  void force();
  // Answers every waiting poll, stops the threads and closes the kv connection.
  void shutdown();

  // App API. `done` runs exactly once, on any thread.
  void poll(size_t max, std::chrono::milliseconds wait, Done done);
  void submit(const api::TaskToken& token, api::ParsedResult result, Done done);
  // dispatch, get, signal, cancel: passed to the kv, retried while it is unreachable for a few seconds (each of
  // them is idempotent: the sidecar names the workflow or the signal when the app did not).
  void kv_request(const std::string& op, Json args, Done done);

  // Called once (from the membership thread) when the sidecar cannot go on: the kv refused the token for
  // --unauthenticated-exit-after. The process should exit non-zero with the message.
  void on_fatal(std::function<void(const std::string& message)> fn) { on_fatal_ = std::move(fn); }

  bool ready() const;
  // Liveness and readiness details (the /healthz body; "ready" and "reason" feed /readyz).
  Json health() const;
  const Config& config() const { return config_; }
  const std::string& id() const { return config_.id; }

 private:
  struct Poll {
    uint64_t id = 0;
    size_t max = 1;
    int64_t deadline = 0;  // mono ms
    Done done;
  };
  using After = std::vector<std::function<void()>>;
  // Runs the answers and calls collected under the lock, once it is released.
  static void run(After& after);

  void membership_loop();
  void puller_loop();
  void housekeeping_loop();
  bool ping_once();
  // The arguments of a ping: this worker's membership and the leases it holds. Takes mu_.
  rpc::Json ping_args();
  // Re-reads --token-file now and then (or now, when `force`): a projected ServiceAccount token is rotated by the
  // kubelet, and the next connection must present the current one. Membership thread only.
  void refresh_token(bool force);
  void ping_failed(const std::string& error, int failures);
  // The kv refused the token. Returns true when the sidecar gave up (on_fatal_ was called).
  bool refused_token(const std::string& error);
  void pull_once(size_t want);

  // Starts the drain unless it started already (returns false then). Polls to answer go to `after`, leases to
  // give back to `released`; the caller runs and sends them once the lock is released.
  bool start_drain_locked(After& after, std::vector<KvSend>& released);
  void drain_started(After& after, const std::vector<KvSend>& released);
  void run_drain(std::chrono::steady_clock::time_point deadline);
  Json drain_summary_locked(bool finished) const;
  // Membership thread: undoes a finished drain that no SIGTERM followed within --undrain-after.
  void undrain_if_due();

  void deliver_locked(After& after);
  Json take_tasks_locked(size_t max);
  // Commits and releases the task table decided on; called without the lock.
  void send(const std::vector<KvSend>& sends);
  void on_commit_reply(const std::string& key, std::exception_ptr error, const Json& result);
  void log_give_backs(const std::vector<KvSend>& sends) const;
  size_t free_slots_locked() const;
  void update_gauges_locked();
  size_t demand_locked() const;
  bool can_pull_locked() const;
  std::string unready_reason_locked() const;
  void wake_puller();

  Config config_;
  Metrics& metrics_;
  CpuReader cpu_;
  std::unique_ptr<rpc::Client> client_;
  std::unique_ptr<PassThrough> pass_;  // dispatch, get, signal, cancel

  mutable std::mutex mu_;
  std::condition_variable pull_cv_;
  std::condition_variable house_cv_;
  std::condition_variable member_cv_;
  std::condition_variable drained_cv_;
  bool stopping_ = false;         // threads exit
  bool stop_membership_ = false;  // set just before leave
  bool draining_ = false;         // the drain started (it ends when the worker leaves or is undrained)
  bool terminating_ = false;      // SIGTERM: drain_and_leave() was called, so the drain is never undone
  int64_t undrain_next_try_ = 0;  // mono ms; membership thread only
  // The last drain request (mono ms): --undrain-after counts from it, so a hook that drains again renews the drain,
  // and a request that comes while the kv is asked to undrain cancels the undoing.
  int64_t drain_asked_mono_ = 0;
  bool drain_finished_ = false;   // ... and finished: drain_result_ holds its summary
  bool forced_ = false;
  bool left_ = false;
  bool joined_ = false;           // a ping succeeded at least once (the kv knows us)
  bool pull_now_ = false;
  bool ping_now_ = false;
  bool redrain_ = false;          // a ping or the drain call failed while draining: say drain again once the kv is back
  int64_t drain_started_mono_ = 0;
  Json drain_result_;
  std::vector<Done> drain_waiters_;  // answered when the drain finishes
  std::condition_variable drain_done_cv_;
  int64_t last_ping_ok_ = 0;      // mono ms
  int64_t auth_failed_since_ = 0; // mono ms of the first refused ping since the last accepted one; 0 = none
  std::string auth_error_;        // the kv's message for the refusal
  std::function<void(const std::string&)> on_fatal_;
  bool warned_no_shared_pids_ = false;  // membership thread only
  int64_t token_read_mono_ = 0;  // membership thread only
  std::string token_;            // the token new connections present; membership thread only after start
  double cpu_value_ = 0;
  uint64_t next_poll_id_ = 1;
  TaskTable tasks_;  // the leased tasks and their states
  std::list<Poll> polls_;

  std::thread membership_thread_;
  std::thread puller_thread_;
  std::thread house_thread_;
  std::thread drain_thread_;  // started by the first drain call; runs run_drain
};

}  // namespace gasoline::worker
