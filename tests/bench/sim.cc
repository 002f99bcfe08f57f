// `gasoline-bench sim`: simulated workers against a running kv, with live progress. hack/run.sh uses it until the
// real sidecar fleet replaces it.
#include "tests/bench/bench.h"
#include "tests/support/process.h"
#include "tests/support/sim_worker.h"

#include "common/clock.h"
#include "common/token_file.h"

#include <csignal>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <set>

namespace gasoline::bench {
using testing::Json;

namespace {

std::atomic<bool> g_interrupted{false};

// Three demo workflow kinds so the run shows timers and retries, not just no-ops.
Json demo_step(const Json& task) {
  const std::string name = task.value("name", "");
  const Json state = task.contains("state") && task["state"].is_object() ? task["state"] : Json::object();
  if (name == "sleepy" && !state.value("slept", false))
    return Json{{"kind", "sleep"}, {"until", wall_ms() + 300}, {"state", {{"slept", true}}}};
  if (name == "flaky" && task.value("attempt", 0) < 1)
    return Json{{"kind", "retry"}, {"error", "simulated transient failure"}, {"backoff_base_ms", 200}};
  return Json{{"kind", "complete"}, {"output", {{"by", "sim"}}}};
}

std::unique_ptr<testing::SimWorker> make_worker(const SimOptions& o, const std::string& token, int n) {
  testing::SimWorkerOptions wo;
  wo.address = o.kv;
  wo.token = token;
  wo.pool = o.pool;
  wo.id = "sim-" + std::to_string(n);
  wo.ping_interval_ms = 500;
  wo.max_pull = 32;
  wo.run = demo_step;
  auto w = std::make_unique<testing::SimWorker>(wo);
  w->start();
  return w;
}

}  // namespace

int run_sim(const SimOptions& o) {
  std::signal(SIGINT, [](int) { g_interrupted = true; });
  std::signal(SIGTERM, [](int) { g_interrupted = true; });
  std::string token;
  if (!o.token_file.empty()) token = read_token_file(o.token_file);
  rpc::ClientOptions co;
  co.endpoints = {o.kv};
  co.token = token;
  co.name = "gasoline-sim";
  rpc::Client client(co);

  std::vector<std::unique_ptr<testing::SimWorker>> workers;
  std::vector<std::unique_ptr<testing::SimWorker>> crashed;
  for (int i = 0; i < o.workers; ++i) workers.push_back(make_worker(o, token, i));
  std::cout << "started " << o.workers << " simulated workers in pool '" << o.pool << "' against " << o.kv << "\n";

  const char* kinds[] = {"noop", "sleepy", "flaky"};
  std::set<std::string> dispatched;
  int64_t start = mono_ms();
  int64_t dispatch_until = start + o.duration_s * 1000 / 2;
  int64_t crash_at = start + o.duration_s * 1000 / 3;
  int64_t crash_time = 0;
  double takeover_s = -1;
  std::string crashed_id;
  int next_worker = o.workers;
  size_t sent = 0;

  auto complete_count = [&] {
    return client.call("list", Json{{"pool", o.pool}, {"status", "complete"}, {"limit", 100000}})["workflows"].size();
  };

  int64_t next_report = start + 1000;
  while (!g_interrupted) {
    int64_t t = mono_ms();
    // Dispatch at a steady rate over the first half of the run.
    size_t due = t >= dispatch_until ? o.workflows
                                     : static_cast<size_t>(static_cast<double>(o.workflows) *
                                                           static_cast<double>(t - start) /
                                                           static_cast<double>(dispatch_until - start));
    for (; sent < std::min(due, o.workflows); ++sent) {
      auto r = client.call("dispatch", Json{{"pool", o.pool}, {"name", kinds[sent % 3]}, {"input", {{"n", sent}}}});
      dispatched.insert(r["id"].get<std::string>());
    }
    if (!crash_time && t >= crash_at && !workers.empty()) {
      auto& victim = workers.front();
      crashed_id = victim->id();
      size_t held = 0;
      // Named, so the range-for does not walk a member of a destroyed temporary.
      const auto running = client.call("list", Json{{"pool", o.pool}, {"status", "running"}, {"limit", 100000}});
      for (const auto& w : running["workflows"]) held += w.value("lease_worker", "") == crashed_id;
      std::cout << ">>> " << crashed_id << " holds " << held << " running workflow(s)\n";
      victim->crash();
      crashed.push_back(std::move(victim));
      workers.erase(workers.begin());
      crash_time = mono_ms();
      std::cout << ">>> crashed worker " << crashed_id << " (no drain, no leave); starting a replacement\n";
      workers.push_back(make_worker(o, token, next_worker++));
    }
    if (crash_time && takeover_s < 0) {
      auto running = client.call("list", Json{{"pool", o.pool}, {"status", "running"}, {"limit", 100000}});
      bool held = false;
      for (const auto& w : running["workflows"]) held |= w.value("lease_worker", "") == crashed_id;
      if (!held) {
        takeover_s = static_cast<double>(mono_ms() - crash_time) / 1000.0;
        std::cout << ">>> every workflow of " << crashed_id << " moved on after " << std::fixed << std::setprecision(2)
                  << takeover_s << " s\n";
      }
    }
    if (t >= next_report) {
      next_report += 1000;
      size_t done = complete_count();
      auto ws = client.call("workers", Json{{"pool", o.pool}});
      std::cout << "[" << std::setw(3) << (t - start) / 1000 << "s] complete " << done << "/" << sent << "  shares:";
      for (const auto& p : ws["pools"])
        for (const auto& w : p["workers"])
          std::cout << " " << w.value("id", "") << "=" << std::fixed << std::setprecision(0)
                    << w.value("share", 0.0) * 100 << "%";
      std::cout << std::endl;
      if (sent >= o.workflows && done >= o.workflows) break;
      if (t - start > o.duration_s * 1000 * 3) {
        std::cout << "giving up: the run took 3x its duration\n";
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // pacing of the dispatch loop, not a test wait
  }

  for (auto& w : workers) w->stop();
  std::map<std::pair<std::string, uint64_t>, int> commits;
  std::map<std::string, uint64_t> share;
  std::vector<double> lags;
  for (auto* list : {&workers, &crashed}) {
    for (auto& w : *list) {
      share[w->id()] = w->committed();
      for (const auto& r : w->history()) {
        if (!r.ok) continue;
        ++commits[{r.workflow_id, r.steps_before}];
        lags.push_back(static_cast<double>(r.pulled_at - r.wake_ts));
      }
    }
  }
  uint64_t duplicates = 0;
  for (const auto& [k, n] : commits) duplicates += n > 1 ? n - 1 : 0;
  std::sort(lags.begin(), lags.end());
  size_t done = complete_count();
  std::cout << "\nsummary\n  workflows completed: " << done << "/" << sent << "\n  duplicate commits:   " << duplicates
            << "\n  takeover time:       " << (takeover_s < 0 ? std::string("n/a") : std::to_string(takeover_s) + " s")
            << "\n  wake lag p99:        " << (lags.empty() ? 0 : lags[lags.size() * 99 / 100]) << " ms"
            << "\n  share per worker:\n";
  uint64_t total = 0;
  for (const auto& [id, n] : share) total += n;
  for (const auto& [id, n] : share)
    std::cout << "    " << id << "  " << n << " steps (" << std::fixed << std::setprecision(1)
              << (total ? 100.0 * static_cast<double>(n) / static_cast<double>(total) : 0) << "%)\n";
  return duplicates == 0 && done == sent ? 0 : 1;
}

}  // namespace gasoline::bench
