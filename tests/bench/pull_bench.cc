// `gasoline-bench pull`: K simulated workers against one gasoline-kv (fsync on), the three strategies side by side.
#include "tests/bench/bench.h"
#include "tests/support/kv_process.h"
#include "tests/support/sim_worker.h"

#include "common/clock.h"

#include <algorithm>
#include <iostream>
#include <map>
#include <set>

namespace gasoline::bench {
using testing::Json;

namespace {

// Dispatches `n` workflows due at run_at(i), pipelined over one connection.
void dispatch_all(rpc::Client& client, const std::string& pool, size_t n, const std::function<int64_t(size_t)>& run_at) {
  std::atomic<size_t> done{0};
  std::atomic<size_t> failed{0};
  const size_t window = 512;
  for (size_t i = 0; i < n; ++i) {
    while (i - done.load() >= window) std::this_thread::yield();
    client.call_async("dispatch", Json{{"pool", pool}, {"name", "noop"}, {"run_at", run_at(i)}},
                      [&](std::exception_ptr e, Json) {
                        if (e) ++failed;
                        ++done;
                      });
  }
  testing::wait_until([&] { return done.load() == n; }, std::chrono::seconds(120));
  if (failed) throw std::runtime_error(std::to_string(failed.load()) + " dispatches failed");
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t idx = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[idx];
}

}  // namespace

int run_pull(const PullOptions& o) {
  for (const auto& strategy : o.strategies) {
    testing::TempDir dir("gasoline-bench-pull");
    testing::KvOptions kvo;
    kvo.strategy = strategy;
    kvo.ping_interval_ms = 500;
    kvo.lost_after_ms = 2000;
    kvo.backup_grace_ms = 1000;
    kvo.fsync = true;
    testing::KvProcess kv(dir.path(), kvo);
    auto client = kv.client("bench");

    std::vector<std::unique_ptr<testing::SimWorker>> workers;
    for (int i = 0; i < o.workers; ++i) {
      testing::SimWorkerOptions wo;
      wo.address = kv.address();
      wo.token = kv.token();
      wo.pool = "bench";
      wo.id = "worker-" + std::to_string(i);
      wo.ping_interval_ms = 500;
      wo.max_pull = o.max_pull;
      workers.push_back(std::make_unique<testing::SimWorker>(wo));
      workers.back()->start();
    }

    // Phase 1, throughput: M workflows all due at the same instant T.
    int64_t t_due = wall_ms() + 600000;  // far enough that nothing runs while dispatching
    size_t m = o.workflows;
    int64_t dispatch_start = mono_ms();
    // Time a probe (in a pool nobody serves) to schedule T just after the real dispatch will have finished.
    dispatch_all(*client, "bench-probe", std::min<size_t>(m, 200), [&](size_t) { return t_due; });
    double per_dispatch_ms = static_cast<double>(mono_ms() - dispatch_start) / std::min<double>(m, 200);
    t_due = wall_ms() + static_cast<int64_t>(per_dispatch_ms * static_cast<double>(m)) + 500;
    dispatch_all(*client, "bench", m, [&](size_t) { return t_due; });
    if (wall_ms() > t_due) std::cerr << "warning: dispatch took longer than planned; throughput start is late\n";
    auto total = [&] {
      uint64_t c = 0;
      for (auto& w : workers) c += w->committed();
      return c;
    };
    bool finished = testing::wait_until([&] { return total() >= m; }, std::chrono::seconds(o.phase_timeout_s));
    int64_t t_end = wall_ms();
    double seconds = std::max(0.001, static_cast<double>(t_end - std::max(t_due, int64_t{0})) / 1000.0);
    uint64_t steps_bulk = total();

    // Phase 2, wake lag: workflows due at a steady rate below capacity, each woken by the kv's timer.
    size_t paced = o.paced_workflows;
    int64_t t0 = wall_ms() + static_cast<int64_t>(per_dispatch_ms * static_cast<double>(paced)) + 500;
    dispatch_all(*client, "bench", paced,
                 [&](size_t i) { return t0 + static_cast<int64_t>(static_cast<double>(i) * 1000.0 / o.paced_rate); });
    testing::wait_until([&] { return total() >= m + paced; }, std::chrono::seconds(o.phase_timeout_s));

    // Collect the history of both phases.
    std::map<std::string, int> ok_commits;
    std::vector<double> lags;
    std::vector<uint64_t> per_worker;
    uint64_t lease_conflicts = 0;
    for (auto& w : workers) w->stop();
    for (auto& w : workers) {
      per_worker.push_back(w->committed());
      lease_conflicts += w->lease_conflicts();
      for (const auto& r : w->history()) {
        if (r.ok) ++ok_commits[r.workflow_id];
        if (r.ok && r.wake_ts >= t0) lags.push_back(static_cast<double>(r.pulled_at - r.wake_ts));
      }
    }
    uint64_t duplicates = 0;
    for (const auto& [id, n] : ok_commits) duplicates += n > 1 ? n - 1 : 0;
    uint64_t steps = total();
    double mean = static_cast<double>(steps) / static_cast<double>(per_worker.size());
    double max_share = static_cast<double>(*std::max_element(per_worker.begin(), per_worker.end()));

    Json line{{"scenario", "pull"},
              {"strategy", strategy},
              {"workers", o.workers},
              {"workflows", m},
              {"finished", finished},
              {"steps_per_s", std::round(static_cast<double>(steps_bulk) / seconds)},
              {"conflicts_per_step", static_cast<double>(lease_conflicts) / std::max<double>(1, static_cast<double>(steps))},
              {"max_over_mean_share", mean > 0 ? max_share / mean : 0},
              {"paced_rate_per_s", o.paced_rate},
              {"wake_lag_p50_ms", percentile(lags, 0.50)},
              {"wake_lag_p99_ms", percentile(lags, 0.99)},
              {"duplicates", duplicates},
              {"fsync", true}};
    std::cout << line.dump() << std::endl;
  }
  return 0;
}

}  // namespace gasoline::bench
