#pragma once
// The sidecar's core (DESIGN.md §5): membership (pings with CPU and free slots, the bump stream), the puller
// (asks the kv for at most as many tasks as there are free slots and waiting app polls), the leased tasks
// handed to the app, their results committed under the fenced lease (retried while the kv is away), and the
// drain. The HTTP layer (worker/api.h) calls in; nothing here knows about HTTP beyond status numbers.
//
// Threads: the kv client's I/O thread (callbacks, never blocked), a membership thread, a puller thread and a
// housekeeping thread (poll deadlines, result retries, task timeouts). One mutex guards the shared state;
// replies to the app are always made after it is released.
#include "kv/rpc/client.h"
#include "worker/api_parse.h"
#include "worker/config.h"
#include "worker/cpu.h"
#include "worker/metrics.h"

#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace gasoline::worker {

using Json = nlohmann::json;

// What the app gets back: an HTTP status and a JSON body.
struct Outcome {
  int status = 200;
  Json body = Json::object();
  std::vector<std::pair<std::string, std::string>> headers;
};
using Done = std::function<void(Outcome)>;

class Sidecar {
 public:
  Sidecar(Config config, Metrics& metrics, CpuReader cpu);
  ~Sidecar();
  Sidecar(const Sidecar&) = delete;
  Sidecar& operator=(const Sidecar&) = delete;

  // Starts the threads. Never fails because of the kv: an unreachable kv only keeps the sidecar unready.
  void start();
  // SIGTERM: stop pulling, give back tasks the app never received, call drain, wait for running tasks (pinging all
  // the while) until they finish, the drain timeout passes or force() is called, then leave. Blocks.
  void drain_and_leave();
  // A second signal: stop waiting for running tasks.
  void force();
  // Answers every waiting poll, stops the threads and closes the kv connection.
  void shutdown();

  // App API. `done` runs exactly once, on any thread.
  void poll(size_t max, std::chrono::milliseconds wait, Done done);
  void submit(const api::TaskToken& token, api::ParsedResult result, Done done);
  // dispatch, get, signal, cancel: passed to the kv, retried while it is unreachable for a few seconds (each of
  // them is idempotent: the sidecar names the workflow or the signal when the app did not).
  void kv_request(const std::string& op, Json args, Done done);

  bool ready() const;
  // Liveness and readiness details (the /healthz body; "ready" and "reason" feed /readyz).
  Json health() const;
  const Config& config() const { return config_; }
  const std::string& id() const { return config_.id; }

 private:
  struct Held {
    std::string key;     // the task token the app sees: "<lease>.<workflow id>"
    uint64_t lease = 0;  // the kv's fencing token
    std::string workflow_id;
    Json task;
    uint64_t max_signal_seq = 0;
    int64_t wake_ts = 0;
    int64_t pulled_mono = 0;
    int64_t delivered_mono = 0;  // 0 while queued (leased but not handed to the app)
    std::optional<Json> commit;  // the commit args once a result arrived (or a release was decided)
    bool release = false;        // the commit gives the lease back instead of recording the app's step
    bool inflight = false;
    int64_t sent_mono = 0;
    int64_t buffered_since = 0;  // 0 unless a commit attempt failed for a transient reason
    int64_t next_try = 0;
    std::vector<Done> waiters;
  };
  struct Poll {
    uint64_t id = 0;
    size_t max = 1;
    int64_t deadline = 0;  // mono ms
    Done done;
  };
  struct PendingCall {
    uint64_t id = 0;
    std::string op;
    Json args;
    int64_t deadline = 0;
    int64_t next_try = 0;
    bool inflight = false;
    Done done;
  };
  using After = std::vector<std::function<void()>>;

  void membership_loop();
  void puller_loop();
  void housekeeping_loop();
  bool ping_once();
  void pull_once(size_t want);

  void deliver_locked(After& after);
  Json take_tasks_locked(size_t max);
  void send_commit(const std::string& key);
  void on_commit_reply(const std::string& key, std::exception_ptr error, const Json& result);
  void release_locked(Held& h, const std::string& why);
  void send_call(uint64_t id);
  Outcome success_outcome(const PendingCall& call, const Json& result);
  void update_gauges_locked();
  size_t demand_locked() const;
  bool can_pull_locked() const;
  std::string unready_reason_locked() const;
  void wake_puller();

  Config config_;
  Metrics& metrics_;
  CpuReader cpu_;
  std::unique_ptr<rpc::Client> client_;

  mutable std::mutex mu_;
  std::condition_variable pull_cv_;
  std::condition_variable house_cv_;
  std::condition_variable member_cv_;
  std::condition_variable drained_cv_;
  bool stopping_ = false;         // threads exit
  bool stop_membership_ = false;  // set just before leave
  bool draining_ = false;
  bool forced_ = false;
  bool left_ = false;
  bool joined_ = false;           // a ping succeeded at least once (the kv knows us)
  bool pull_now_ = false;
  bool ping_now_ = false;
  bool redrain_ = false;          // a ping failed while draining: say drain again once the kv is back
  int64_t last_ping_ok_ = 0;      // mono ms
  double cpu_value_ = 0;
  uint64_t next_poll_id_ = 1;
  uint64_t next_call_id_ = 1;
  std::map<std::string, Held> held_;  // by task token
  std::deque<std::string> queue_;
  std::list<Poll> polls_;
  std::map<uint64_t, PendingCall> calls_;
  // Outcomes of recent commits, so an app that re-posts a result after a lost response gets the same answer.
  std::unordered_map<std::string, Json> recent_;
  std::deque<std::string> recent_order_;

  std::thread membership_thread_;
  std::thread puller_thread_;
  std::thread house_thread_;
};

}  // namespace gasoline::worker
