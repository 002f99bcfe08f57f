// `gasoline-bench raft`: throughput and commit latency of one replica (LocalLog, RocksDB fsync) against three
// (libraft, which fsyncs its log) under the same dispatch → pull → commit load of one-step workflows, in the same
// run; then the failover time of the three-replica cluster over repeated kill -9 of the leader, with the load
// running. Every phase records the client history and, with --verify (default), reads every workflow back and
// runs the history checker: lost_acknowledged_writes counts acknowledged dispatches and commits that are gone.
//
// The load is tests/raft/load.h rather than testing::SimWorker: a SimWorker talks to one endpoint and never
// retries a commit, so it cannot follow a failover, and it doesn't time commits.
#include "tests/bench/raft_bench.h"

#include "tests/bench/measure.h"

#include "tests/raft/history.h"
#include "tests/raft/load.h"
#include "tests/support/kv_cluster.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>
#include <iostream>
#include <mutex>
#include <thread>

namespace gasoline::bench {
namespace {

using raft_test::Json;
using namespace std::chrono_literals;


double cluster_cpu_seconds(testing::KvCluster& c) {
  double total = 0;
  for (size_t i = 0; i < c.size(); ++i) total += cpu_seconds(c.pid(i));
  return total;
}

testing::KvClusterOptions cluster_options(const RaftBenchOptions& o, int replicas) {
  testing::KvClusterOptions c;
  c.replicas = replicas;
  c.election_timeout_ms = o.election_timeout_ms;
  c.heartbeat_ms = o.heartbeat_ms;
  c.ping_interval_ms = 500;
  c.lost_after_ms = 5000;
  c.backup_grace_ms = 200;
  c.fsync = true;
  c.log_level = std::getenv("GASOLINE_BENCH_KEEP_LOGS") ? "info" : "warn";
  return c;
}

raft_test::LoadOptions load_options(const RaftBenchOptions& o, testing::KvCluster& c, const std::string& run) {
  raft_test::LoadOptions l;
  l.endpoints = c.endpoints();
  l.token = c.token();
  l.pool = "bench";
  l.run_id = run;
  l.workers = o.workers;
  l.dispatchers = o.dispatchers;
  l.max_pull = o.max_pull;
  l.dispatch_batch = o.dispatch_batch;
  l.backlog = o.backlog;
  l.steps = 1;  // one-step workflows: dispatch → pull → commit(complete)
  l.ping_interval_ms = 500;
  l.attempt_timeout = 2000ms;
  l.op_deadline = 30s;
  return l;
}

// Reads every workflow of the history back through the leader and checks it; -1 when not verified.
int64_t lost_writes(const RaftBenchOptions& o, testing::KvCluster& c, const raft_test::History& h, size_t& checked) {
  if (!o.verify) return -1;
  raft_test::ClientSlot slot(c.endpoints(), c.token(), "bench-verify");
  auto ids = h.workflow_ids();
  checked = ids.size();
  auto final_state = raft_test::read_final(slot, ids, /*stale=*/false, std::chrono::seconds(300));
  auto r = raft_test::check(h, final_state);
  if (!r.ok()) std::cerr << r.summary() << "\n";
  return static_cast<int64_t>(r.lost_acknowledged_writes + r.double_commits + r.lease_violations);
}

Json throughput(const RaftBenchOptions& o, int replicas) {
  testing::TempDir dir("gasoline-bench-raft");
  testing::KvCluster c(dir.path(), cluster_options(o, replicas));
  if (c.leader_index(30s) < 0) throw std::runtime_error("no leader among " + std::to_string(replicas) + " replicas");
  raft_test::History h;
  raft_test::Load load(load_options(o, c, "tp" + std::to_string(replicas)), h);
  load.start();
  std::this_thread::sleep_for(std::chrono::seconds(o.warmup_s));  // benchmark warm-up, not synchronisation
  uint64_t c0 = load.acked_commits(), pulls0 = load.pulls(), empty0 = load.empty_pulls();
  int64_t t0 = raft_test::now_us();
  double kv_cpu0 = cluster_cpu_seconds(c), self_cpu0 = cpu_seconds(0);
  uint64_t applied0 = c.applied_index(static_cast<size_t>(c.leader_index()));
  std::this_thread::sleep_for(std::chrono::seconds(o.measure_s));  // the measurement window
  uint64_t c1 = load.acked_commits(), pulls1 = load.pulls(), empty1 = load.empty_pulls();
  int64_t t1 = raft_test::now_us();
  double kv_cpu1 = cluster_cpu_seconds(c), self_cpu1 = cpu_seconds(0);
  uint64_t applied1 = c.applied_index(static_cast<size_t>(c.leader_index()));
  load.stop();
  auto lat = load.commit_latencies_ms(t0);
  double seconds = static_cast<double>(t1 - t0) / 1e6;
  size_t checked = 0;
  int64_t lost = lost_writes(o, c, h, checked);
  return Json{{"scenario", "throughput"},
              {"replicas", replicas},
              {"fsync", replicas == 1 ? "rocksdb" : "raft log"},
              {"clients", o.workers + o.dispatchers},
              {"window_s", round_to(seconds, 2)},
              {"steps_per_s", std::round(static_cast<double>(c1 - c0) / seconds)},
              {"commit_p50_ms", round_to(percentile(lat, 0.50), 2)},
              {"commit_p99_ms", round_to(percentile(lat, 0.99), 2)},
              {"failover_p99_s", nullptr},
              {"lost_acknowledged_writes", lost < 0 ? Json(nullptr) : Json(lost)},
              {"workflows_verified", checked},
              {"commits_unknown", load.unknown()},
              // Where the time goes: CPU cores busy in the kv processes and in this (client) process during the
              // window, and log entries per second (each one fsynced; commands per entry = group commit).
              {"kv_cpu_cores", round_to((kv_cpu1 - kv_cpu0) / seconds, 2)},
              {"client_cpu_cores", round_to((self_cpu1 - self_cpu0) / seconds, 2)},
              {"entries_per_s", std::round(static_cast<double>(applied1 - applied0) / seconds)},
              // Pulls per second and the share that found nothing due (the worker then waits 10 ms).
              {"pulls_per_s", std::round(static_cast<double>(pulls1 - pulls0) / seconds)},
              {"empty_pull_share", round_to(pulls1 > pulls0 ? static_cast<double>(empty1 - empty0) /
                                                                   static_cast<double>(pulls1 - pulls0)
                                                             : 0.0, 3)}};
}

Json failover(const RaftBenchOptions& o) {
  testing::TempDir dir("gasoline-bench-raft");
  testing::KvCluster c(dir.path(), cluster_options(o, 3));
  if (c.leader_index(30s) < 0) throw std::runtime_error("no leader among 3 replicas");
  raft_test::History h;
  auto lo = load_options(o, c, "fo");
  lo.workers = std::max(1, o.workers / 2);  // a steady load, well below capacity
  lo.dispatchers = 1;
  lo.dispatch_batch = 8;
  raft_test::Load load(lo, h);
  load.start();

  // The probe: one write at a time (dispatch, explicit id, retried idempotently), as fast as it gets answers.
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> acks;  // (send of the answered attempt, answer), in order
  std::atomic<bool> stop{false};
  std::thread probe([&] {
    raft_test::ClientSlot slot(c.endpoints(), c.token(), "bench-probe");
    for (size_t n = 0; !stop; ++n) {
      std::vector<raft_test::Call> call{
          raft_test::Call{"dispatch", Json{{"pool", "probe"}, {"name", "probe"}, {"id", "probe-" + std::to_string(n)}}}};
      raft_test::call_batch(slot, call, 500ms, std::chrono::steady_clock::now() + 60s, &stop, 10ms);
      h.dispatch(raft_test::DispatchOp{call[0].args["id"].get<std::string>(), call[0].invoke, call[0].ack, call[0].ok});
      if (call[0].ok) {
        std::lock_guard lock(mu);
        acks.emplace_back(call[0].last_attempt, call[0].ack);
      }
    }
  });
  // The first write sent after `t` that succeeded. (An answer to a write sent before the kill can still arrive
  // after it: the dead leader had committed it and its reply was in flight. That is no proof of recovery.)
  auto first_ack_after = [&](int64_t t) -> int64_t {
    std::lock_guard lock(mu);
    for (const auto& [sent, ack] : acks)
      if (sent > t) return ack;
    return -1;
  };

  std::vector<double> times;
  std::vector<int64_t> kill_times;  // wall clock, to match the replicas' logs
  uint64_t steps_before = load.acked_commits();
  int64_t start = raft_test::now_us();
  std::string error;
  for (int k = 0; k < o.kills && error.empty(); ++k) {
    int l = c.leader_index(30s);
    if (l < 0) {
      error = "no leader before kill " + std::to_string(k + 1);
      break;
    }
    // Every replica is up to date before the kill, so the two survivors can elect either of them.
    uint64_t target = c.applied_index(static_cast<size_t>(l));
    for (size_t i = 0; i < c.size(); ++i)
      if (!testing::wait_until([&] { return c.applied_index(i) >= target; }, 60s))
        error = "replica " + std::to_string(c.raft_id(i)) + " did not catch up";
    if (!error.empty()) break;
    int64_t t_kill = raft_test::now_us();
    kill_times.push_back(std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch()).count());
    c.kill9(static_cast<size_t>(l));
    int64_t t_ok = -1;
    if (!testing::wait_until([&] { return (t_ok = first_ack_after(t_kill)) >= 0; }, 60s)) {
      error = "no write succeeded within 60 s of kill " + std::to_string(k + 1);
      break;
    }
    times.push_back(static_cast<double>(t_ok - t_kill) / 1e6);
    c.restart(static_cast<size_t>(l));
  }
  int64_t end = raft_test::now_us();
  uint64_t steps_after = load.acked_commits();
  stop = true;
  probe.join();
  load.stop();
  if (!error.empty()) std::cerr << "failover: " << error << "\n";
  if (const char* keep = std::getenv("GASOLINE_BENCH_KEEP_LOGS")) {
    std::cerr << "failover: kill times (us):";
    for (size_t i = 0; i < kill_times.size(); ++i) std::cerr << " " << kill_times[i];
    std::cerr << "\n";
    for (size_t i = 0; i < c.size(); ++i)
      std::filesystem::copy_file(c.log_path(i), std::string(keep) + "/failover-replica-" + std::to_string(c.raft_id(i)) + ".log",
                                 std::filesystem::copy_options::overwrite_existing);
  }
  size_t checked = 0;
  int64_t lost = lost_writes(o, c, h, checked);
  double seconds = static_cast<double>(end - start) / 1e6;
  return Json{{"scenario", "failover"},
              {"replicas", 3},
              {"election_timeout_ms", o.election_timeout_ms},
              {"kills", times.size()},
              {"steps_per_s", std::round(static_cast<double>(steps_after - steps_before) / std::max(seconds, 1e-3))},
              {"commit_p99_ms", round_to(percentile(load.commit_latencies_ms(start), 0.99), 2)},
              {"failover_p50_s", round_to(percentile(times, 0.50), 3)},
              {"failover_p99_s", round_to(percentile(times, 0.99), 3)},
              {"failover_max_s", round_to(times.empty() ? 0 : *std::max_element(times.begin(), times.end()), 3)},
              {"failover_s", times},
              {"lost_acknowledged_writes", lost < 0 ? Json(nullptr) : Json(lost)},
              {"workflows_verified", checked},
              {"error", error.empty() ? Json(nullptr) : Json(error)}};
}

}  // namespace

int run_raft(const RaftBenchOptions& o) {
  auto one = throughput(o, 1);
  std::cout << one.dump() << std::endl;
  auto three = throughput(o, 3);
  double ratio = one["steps_per_s"].get<double>() > 0
                     ? three["steps_per_s"].get<double>() / one["steps_per_s"].get<double>()
                     : 0;
  three["throughput_vs_1_replica"] = round_to(ratio, 3);
  std::cout << three.dump() << std::endl;
  auto fo = failover(o);
  std::cout << fo.dump() << std::endl;
  auto lost = [](const Json& j) { return j["lost_acknowledged_writes"].is_number() ? j["lost_acknowledged_writes"].get<int64_t>() : 0; };
  Json summary{{"scenario", "summary"},
               {"replicas", 3},
               {"steps_per_s", three["steps_per_s"]},
               {"commit_p99_ms", three["commit_p99_ms"]},
               {"failover_p99_s", fo["failover_p99_s"]},
               {"lost_acknowledged_writes", lost(one) + lost(three) + lost(fo)},
               {"throughput_vs_1_replica", round_to(ratio, 3)},
               {"target_throughput_ratio_met", ratio >= 0.6},
               {"target_failover_p99_met", fo["kills"].get<size_t>() == static_cast<size_t>(o.kills) &&
                                               fo["failover_p99_s"].get<double>() <= 2.0},
               {"target_no_lost_writes_met", o.verify && lost(one) + lost(three) + lost(fo) == 0}};
  std::cout << summary.dump() << std::endl;
  return 0;
}

}  // namespace gasoline::bench
