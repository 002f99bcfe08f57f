#pragma once
// A dispatch → pull → commit load against a replicated kv that survives failover and records a History:
// dispatchers send dispatches with explicit ids, workers pull leases and commit every step with the lease's
// token. Every write is retried on "unavailable" / "not_leader" with the same id or token, so retries are
// idempotent; an attempt that gets no answer within `attempt_timeout` replaces the connection (rpc::Client keeps a
// connection to a frozen replica forever, see the report of tests/raft).
#include "kv/rpc/client.h"
#include "tests/raft/history.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace gasoline::raft_test {

using Json = nlohmann::json;

int64_t now_us();  // steady clock, the unit of History times

struct LoadOptions {
  std::vector<std::string> endpoints;
  std::string token;
  std::string pool = "raft";
  std::string run_id = "run";  // workflow ids are <run_id>-<n>
  int dispatchers = 1;
  int workers = 3;
  size_t dispatch_batch = 8;  // dispatches in flight per dispatcher
  size_t backlog = 256;       // dispatchers pause while this many dispatched workflows are not complete
  size_t max_workflows = 0;   // stop dispatching after this many (0 = no limit)
  uint32_t steps = 3;         // steps per workflow: "continue" until the last, which is "complete"
  size_t max_pull = 16;
  int64_t ping_interval_ms = 100;
  std::chrono::milliseconds attempt_timeout{2500};
  std::chrono::milliseconds op_deadline{30000};  // a write still unanswered after this is recorded as unknown
  // Input of workflow n (default: null).
  std::function<Json(size_t n)> input;
  // Pings say which lease tokens each worker holds (as gasoline-worker does), so the kv releases the leases whose
  // pull answer was lost. Off: the behaviour of a client that never reports them.
  bool report_held = true;
};

// A client that can be replaced when a connection hangs. The replacement starts with the next endpoint, so it
// doesn't go straight back to the replica that hung.
class ClientSlot {
 public:
  ClientSlot(std::vector<std::string> endpoints, std::string token, std::string name);
  rpc::Client& get();
  void replace();

 private:
  size_t first_ = 0;
  std::vector<std::string> endpoints_;
  std::string token_;
  std::string name_;
  std::unique_ptr<rpc::Client> client_;
};

// One write of a batch and its outcome.
struct Call {
  std::string op;
  Json args;
  // Filled by call_batch:
  bool done = false;
  bool ok = false;
  std::string error_code;  // final error ("" when ok; "timeout" when the deadline passed unanswered)
  Json result;
  int64_t invoke = 0;        // first attempt
  int64_t last_attempt = 0;  // the attempt that got the final answer
  int64_t ack = 0;
};

// Sends every call (pipelined), retrying "unavailable" and "not_leader" answers and unanswered attempts with the
// same arguments until each has a definite answer or `deadline` passes. `stop` (optional) ends retries early.
void call_batch(ClientSlot& slot, std::vector<Call>& calls, std::chrono::milliseconds attempt_timeout,
                std::chrono::steady_clock::time_point deadline, const std::atomic<bool>* stop = nullptr,
                std::chrono::milliseconds max_backoff = std::chrono::milliseconds(200));

class Load {
 public:
  Load(LoadOptions options, History& history);
  ~Load();
  void start();
  // Stops dispatching and pulling and waits for the threads; writes still in flight end as "unknown".
  void stop();
  // Stops dispatching only, and returns once no dispatch is in flight (so no workflow appears after it returns):
  // the workers go on pulling and committing what is left.
  void stop_dispatching();

  uint64_t acked_dispatches() const { return acked_dispatches_; }
  uint64_t acked_commits() const { return acked_commits_; }
  uint64_t pulls() const { return pulls_; }
  uint64_t empty_pulls() const { return empty_pulls_; }  // answered with no task (the worker then waits 10 ms)
  uint64_t acked_writes() const { return acked_dispatches_ + acked_commits_; }
  uint64_t completed() const { return completed_; }
  uint64_t conflicts() const { return conflicts_; }
  uint64_t unknown() const { return unknown_; }
  // Latencies (first attempt → acknowledgement) of acknowledged commits, in ms, since `since_us` (now_us()).
  std::vector<double> commit_latencies_ms(int64_t since_us = 0) const;

 private:
  void ping_loop();
  void dispatch_loop(int d);
  void worker_loop(int w);
  std::string worker_id(int w) const;

  LoadOptions options_;
  History& history_;
  std::atomic<bool> running_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> dispatching_{true};
  std::atomic<int> dispatch_batches_{0};  // dispatch batches in flight
  // Lease tokens each worker holds: pulled and not yet answered by a commit.
  std::mutex held_mu_;
  std::map<std::string, std::set<uint64_t>> held_;
  std::atomic<size_t> next_workflow_{0};
  std::atomic<uint64_t> acked_dispatches_{0}, acked_commits_{0}, completed_{0}, conflicts_{0}, unknown_{0};
  std::atomic<uint64_t> pulls_{0}, empty_pulls_{0};
  std::vector<std::thread> threads_;
  std::mutex wait_mu_;
  std::condition_variable wait_cv_;
  mutable std::mutex lat_mu_;
  std::vector<std::pair<int64_t, double>> latencies_;  // (ack time, ms)
};

// The final state of `ids`, read through the leader (linearizable) with `slot`, or from one replica with
// stale=true. Throws if some read has no answer by the deadline.
std::map<std::string, FinalWorkflow> read_final(ClientSlot& slot, const std::vector<std::string>& ids, bool stale,
                                                std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace gasoline::raft_test
