// gasoline-example-app: an application container that talks only to its sidecar (worker/sdk). Threads long-poll
// for tasks, run the workflow step (worker/examples/workflows.h) and post the results in one batch per poll.
#include "common/clock.h"
#include "common/log.h"
#include "common/signals.h"
#include "worker/examples/workflows.h"
#include "worker/sdk/client.h"

#include <CLI/CLI.hpp>

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include <time.h>

using namespace gasoline;
using Json = nlohmann::json;

namespace {

std::atomic<bool> g_stop{false};
std::atomic<uint64_t> g_steps{0}, g_lost{0}, g_buffered{0}, g_dropped{0};

struct Options {
  std::string api = "127.0.0.1:7480";
  int threads = 4;
  size_t batch = 16;
  int64_t wait_ms = 2000;
  int64_t step_delay_ms = 0;
  example::Defaults defaults;
};

// Posts a batch, retrying while the sidecar is unreachable (it may be restarting): the results carry the
// workflow id and worker, so a new sidecar still lets the kv's fence decide. Gives up after a few seconds.
void post(sdk::Client& client, const std::vector<std::pair<Json, Json>>& results) {
  auto deadline = mono_ms() + 5000;
  int64_t backoff = 50;
  while (true) {
    try {
      auto posted = client.post_results(results);
      for (auto p : posted) {
        if (p == sdk::Posted::kCommitted) ++g_steps;
        if (p == sdk::Posted::kBuffered) ++g_buffered;
        if (p == sdk::Posted::kLeaseLost) ++g_lost;
      }
      return;
    } catch (const sdk::TransportError& e) {
      if (mono_ms() >= deadline || g_stop) {
        g_dropped += results.size();
        log::warn("dropping results: the sidecar stayed unreachable",
                  {{"results", results.size()}, {"error", e.what()}});
        return;
      }
    } catch (const sdk::ApiError& e) {
      if (e.status() != 503 || mono_ms() >= deadline) {
        g_dropped += results.size();
        log::error("the sidecar refused results",
                   {{"results", results.size()}, {"status", e.status()}, {"error", e.what()}});
        return;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff));  // backoff before re-posting to a sidecar
    backoff = std::min<int64_t>(backoff * 2, 1000);
  }
}

int64_t thread_cpu_us() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1'000'000 + ts.tv_nsec / 1000;
}

// Spends ms of this thread's CPU time (not wall time: a throttled container takes longer, as real work would).
void burn_cpu(int64_t ms) {
  const int64_t until = thread_cpu_us() + ms * 1000;
  volatile uint64_t x = 0;
  while (thread_cpu_us() < until)
    for (int i = 0; i < 10'000; ++i) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
}

void work(const Options& o, int n) {
  sdk::Client client(o.api, std::chrono::seconds(30));
  int64_t backoff = 50;
  bool reported = false;
  while (!g_stop) {
    std::vector<Json> tasks;
    try {
      tasks = client.poll(o.batch, std::chrono::milliseconds(o.wait_ms));
      backoff = 50;
      if (reported) log::info("sidecar reachable again", {{"thread", n}});
      reported = false;
    } catch (const std::exception& e) {
      // The sidecar is starting, restarting or gone: keep trying, quietly after the first report.
      if (!reported) log::warn("polling the sidecar failed; retrying", {{"thread", n}, {"error", e.what()}});
      reported = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff));  // backoff between polls of a missing sidecar
      backoff = std::min<int64_t>(backoff * 2, 1000);
      continue;
    }
    if (tasks.empty()) {
      // A draining sidecar answers polls at once and has nothing to give: pause instead of spinning, and keep
      // noticing the stop signal that follows the drain.
      if (client.draining()) {
        auto until = mono_ms() + std::clamp<int64_t>(o.wait_ms, 50, 1000);
        while (!g_stop && mono_ms() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      continue;
    }
    std::vector<std::pair<Json, Json>> results;
    results.reserve(tasks.size());
    for (auto& t : tasks) {
      // Simulated work, so a sidecar holds tasks for a while (the demo's kill -9 has something to take over).
      if (o.step_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(o.step_delay_ms));
      burn_cpu(example::cpu_ms_of(t));
      if (auto ms = example::work_ms_of(t); ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      results.emplace_back(t, example::run_step(t, wall_ms(), o.defaults));
    }
    post(client, results);
  }
}

}  // namespace

int main(int argc, char** argv) {
  sigset_t signals = block_termination_signals();

  Options o;
  CLI::App app{"gasoline-example-app: the example application. It runs the order, ship, noop, sleep and burn workflows "
               "through its sidecar's app API."};
  app.add_option("--api", o.api, "The sidecar's app API (host:port)")->envname("GASOLINE_API")->capture_default_str();
  app.add_option("--threads", o.threads, "Polling threads")->capture_default_str();
  app.add_option("--batch", o.batch, "Tasks per poll")->capture_default_str();
  app.add_option("--wait-ms", o.wait_ms, "Long-poll wait")->capture_default_str();
  app.add_option("--step-delay-ms", o.step_delay_ms, "Simulated work per task")->capture_default_str();
  app.add_option("--payment-timeout-ms", o.defaults.payment_timeout_ms, "order: default payment deadline")
      ->capture_default_str();
  app.add_option("--flaky-failures", o.defaults.flaky_failures, "order: failures of the charge step before success")
      ->capture_default_str();
  app.add_option("--retry-backoff-ms", o.defaults.retry_backoff_ms, "order: retry backoff base")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  log::init("example-app");
  if (o.threads < 1 || o.batch < 1) {
    log::error("--threads and --batch must be at least 1");
    return 2;
  }

  std::vector<std::thread> threads;
  for (int i = 0; i < o.threads; ++i) threads.emplace_back([&o, i] { work(o, i); });
  log::info("example app running", {{"api", o.api}, {"threads", o.threads}, {"batch", o.batch}});
  int sig = 0;
  sigwait(&signals, &sig);
  g_stop = true;
  for (auto& t : threads) t.join();
  log::info("example app stopped", {{"signal", sig},
                                    {"steps", g_steps.load()},
                                    {"lease_lost", g_lost.load()},
                                    {"buffered", g_buffered.load()},
                                    {"dropped", g_dropped.load()}});
  std::fflush(nullptr);
  return 0;
}
