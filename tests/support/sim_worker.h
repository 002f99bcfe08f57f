#pragma once
// A simulated worker: the sidecar's protocol (ping, bump stream, pull, commit) in threads of one process, with a
// pluggable step function. Benchmarks, kv tests and hack/run.sh (before the real sidecar) drive the kv with it.
#include "kv/rpc/client.h"

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace gasoline::testing {

using Json = nlohmann::json;

struct CommitRecord {
  std::string workflow_id;
  std::string worker;
  uint64_t token = 0;
  uint64_t steps_before = 0;  // the workflow's committed steps when it was pulled: (id, steps_before) names a step
  int64_t wake_ts = 0;
  int64_t pulled_at = 0;
  bool ok = false;  // the commit was acknowledged
  std::string error_code;
};

struct SimWorkerOptions {
  std::string address;
  std::string token;
  std::string pool = "default";
  std::string id;
  std::vector<std::string> workflows;  // names served; empty = all
  int64_t ping_interval_ms = 100;
  int64_t fallback_tick_ms = 250;  // pulls this often even without bumps
  size_t max_pull = 64;
  double cpu = 0.0;
  // Returns the step result (the "step" object of a commit) for a task; default: complete with no output.
  std::function<Json(const Json& task)> run;
  bool record = true;  // keep a CommitRecord per task
};

class SimWorker {
 public:
  explicit SimWorker(SimWorkerOptions options);
  ~SimWorker();

  void start();
  // Graceful: drain, finish, leave.
  void stop();
  // Like kill -9: stop everything at once without telling the kv (leases stay until reclaimed).
  void crash();

  const std::string& id() const { return options_.id; }
  void set_cpu(double cpu) { cpu_ = cpu; }
  uint64_t committed() const { return committed_; }
  uint64_t pulled() const { return pulled_; }
  uint64_t conflicts() const { return conflicts_; }  // commits answered "conflict" (lease lost)
  uint64_t lease_conflicts() const { return lease_conflicts_; }  // lease CAS lost during pulls
  std::vector<CommitRecord> history() const;

 private:
  void ping_loop();
  void pull_loop();
  void commit(const Json& task, CommitRecord record);

  SimWorkerOptions options_;
  std::unique_ptr<rpc::Client> client_;
  std::atomic<bool> running_{false};
  std::atomic<double> cpu_{0};
  std::thread ping_thread_;
  std::thread pull_thread_;
  std::mutex bump_mu_;
  std::condition_variable bump_cv_;
  bool bumped_ = false;
  std::atomic<uint64_t> committed_{0}, pulled_{0}, conflicts_{0}, lease_conflicts_{0}, inflight_{0};
  mutable std::mutex history_mu_;
  std::vector<CommitRecord> history_;
};

}  // namespace gasoline::testing
