// `gasoline-bench gateway`: one real gasoline-kv (fsync on) and one real gasoline-gateway on loopback; in
// alternating rounds the same number of workflows is dispatched three ways: over the kv's wire protocol (pipelined,
// as gasctl and the sidecar do), through the gateway one workflow per HTTP request (keep-alive connections), and
// through the gateway's batch route. Prints one JSON line per round and mode (dispatches per second, CPU per
// dispatch of the kv, the gateway and the client) and a summary of medians with each mode's ratio to the wire.
#include "tests/bench/gateway_bench.h"

#include "tests/bench/measure.h"
#include "tests/bench/pipelined_dispatch.h"
#include "tests/support/kv_process.h"
#include "tests/support/process.h"
#include "worker/sdk/client.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

namespace gasoline::bench {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// gateway_cpprest: the single route on a second gateway with the cpprestsdk HTTP backend (GASOLINE_HTTP_BACKEND),
// to compare the two backends of common/http_server.h in the same run.
const char* const kModes[] = {"wire", "gateway", "gateway_cpprest", "gateway_batch"};

// A gateway on a free port of loopback, with the HTTP backend named (empty: the default).
struct GatewayProcess {
  std::unique_ptr<testing::Process> process;
  std::string address;
};
GatewayProcess start_gateway(const std::string& dir, const std::string& name, const std::string& kv,
                             const std::string& backend) {
  const std::string port_file = dir + "/" + name + ".port";
  std::vector<std::string> argv{"/usr/bin/env", "GASOLINE_HTTP_BACKEND=" + backend,
                                testing::binary_path("gasoline-gateway"), "--kv", kv, "--listen", "127.0.0.1:0",
                                "--port-file", port_file, "--log-level", "warn"};
  GatewayProcess g;
  g.process = std::make_unique<testing::Process>(argv, dir + "/" + name + ".log");
  std::string port;
  if (!testing::wait_until([&] { return bool(std::ifstream(port_file) >> port); }, 20s))
    throw std::runtime_error(name + " did not start: see " + dir + "/" + name + ".log");
  g.address = "127.0.0.1:" + port;
  return g;
}

// Through the gateway: each connection sends one request at a time, `per_request` workflows in it (1: the single
// route; more: the batch route).
void gateway_round(const std::string& address, const std::string& token, const GatewayBenchOptions& o,
                   const std::string& prefix, size_t per_request) {
  std::atomic<size_t> next{0};
  std::atomic<size_t> failed{0};
  std::string first_error;
  std::mutex error_mu;
  std::vector<std::thread> threads;
  for (int t = 0; t < o.http_connections; ++t) {
    threads.emplace_back([&] {
      sdk::Client c(address, 60s);
      c.set_bearer_token(token);
      while (true) {
        size_t from = next.fetch_add(per_request);
        if (from >= o.dispatches) return;
        size_t to = std::min(o.dispatches, from + per_request);
        auto one = [&](size_t n) {
          return Json{{"pool", "bench.gateway"}, {"name", "noop"}, {"id", prefix + "-" + std::to_string(n)},
                      {"input", Json{{"n", n}}}};
        };
        sdk::Response r;
        if (per_request == 1) {
          r = c.request("POST", "/v1/workflows", one(from).dump());
          if (r.status == 201 || r.status == 200) continue;
        } else {
          Json items = Json::array();
          for (size_t n = from; n < to; ++n) items.push_back(one(n));
          r = c.request("POST", "/v1/workflows/batch", Json{{"workflows", std::move(items)}}.dump());
          size_t bad = 0;
          if (r.status == 200)
            for (const auto& item : r.body["results"]) bad += item.value("status", 0) >= 300;
          else
            bad = to - from;
          if (bad == 0) continue;
          failed += bad;
          std::lock_guard lock(error_mu);
          if (first_error.empty()) first_error = r.raw.substr(0, 300);
          continue;
        }
        ++failed;
        std::lock_guard lock(error_mu);
        if (first_error.empty()) first_error = std::to_string(r.status) + " " + r.raw.substr(0, 300);
      }
    });
  }
  for (auto& t : threads) t.join();
  if (failed) throw std::runtime_error("gateway: " + std::to_string(failed.load()) + " dispatches failed: " + first_error);
}

}  // namespace

CLI::App* add_gateway_command(CLI::App& app, GatewayBenchOptions& o) {
  auto* cmd = app.add_subcommand("gateway", "Dispatch over the wire protocol vs through gasoline-gateway (single and "
                                            "batch), side by side on one kv");
  cmd->add_option("--rounds", o.rounds, "Alternating rounds of every mode")->capture_default_str();
  cmd->add_option("--dispatches", o.dispatches, "Dispatches per round and mode")->capture_default_str();
  cmd->add_option("--wire-clients", o.wire_clients, "Wire connections")->capture_default_str();
  cmd->add_option("--window", o.window, "Wire dispatches in flight per connection")->capture_default_str();
  cmd->add_option("--http-connections", o.http_connections, "Keep-alive HTTP connections to the gateway")
      ->capture_default_str();
  cmd->add_option("--batch", o.batch, "Workflows per batch request")->capture_default_str();
  cmd->add_flag("--quick", [&o](int64_t) { o.rounds = 2, o.dispatches = 4000; }, "Small sizes (seconds)");
  return cmd;
}

int run_gateway(const GatewayBenchOptions& o) {
  testing::TempDir dir("gasoline-bench-gateway");
  testing::KvProcess kv(dir.path() + "/kv");
  auto beast = start_gateway(dir.path(), "gateway", kv.address(), "beast");
  auto cpprest = start_gateway(dir.path(), "gateway-cpprest", kv.address(), "cpprest");

  std::map<std::string, std::vector<double>> rate, kv_us, gw_us, client_us;
  for (int round = 0; round < o.rounds; ++round) {
    for (const std::string mode : kModes) {
      std::cerr << "bench: gateway round " << round + 1 << "/" << o.rounds << " " << mode << "\n";
      const std::string prefix = mode + "-r" + std::to_string(round);
      auto& gateway = mode == "gateway_cpprest" ? *cpprest.process : *beast.process;
      double kv0 = cpu_seconds(kv.process().pid()), gw0 = cpu_seconds(gateway.pid()), self0 = cpu_seconds(0);
      auto start = Clock::now();
      if (mode == "wire")
        pipelined_dispatch([&] { return kv.client("gateway-bench"); }, o.wire_clients, o.window, o.dispatches,
                           "bench.gateway", prefix, "wire");
      else
        gateway_round(mode == "gateway_cpprest" ? cpprest.address : beast.address, kv.token(), o, prefix,
                      mode == "gateway_batch" ? o.batch : 1);
      double secs = std::chrono::duration<double>(Clock::now() - start).count();
      double n = static_cast<double>(o.dispatches);
      double kv_cpu = cpu_seconds(kv.process().pid()) - kv0, gw_cpu = cpu_seconds(gateway.pid()) - gw0,
             self_cpu = cpu_seconds(0) - self0;
      rate[mode].push_back(n / secs);
      kv_us[mode].push_back(kv_cpu / n * 1e6);
      gw_us[mode].push_back(gw_cpu / n * 1e6);
      client_us[mode].push_back(self_cpu / n * 1e6);
      std::cout << Json{{"bench", "gateway"},
                        {"mode", mode},
                        {"round", round + 1},
                        {"dispatches", o.dispatches},
                        {"dispatch_per_s", round_to(n / secs, 0)},
                        {"kv_cpu_us_per_dispatch", round_to(kv_cpu / n * 1e6, 1)},
                        {"gateway_cpu_us_per_dispatch", round_to(gw_cpu / n * 1e6, 1)},
                        {"client_cpu_us_per_dispatch", round_to(self_cpu / n * 1e6, 1)}}
                       .dump()
                << std::endl;
    }
  }
  auto median = [](const std::vector<double>& v) { return percentile(v, 0.5); };
  Json summary{{"bench", "gateway"}, {"summary", true}, {"rounds", o.rounds}, {"http_connections", o.http_connections},
               {"batch", o.batch}};
  for (const std::string mode : kModes) {
    summary["dispatch_per_s_" + mode] = round_to(median(rate[mode]), 0);
    summary["cpu_us_per_dispatch_" + mode] =
        round_to(median(kv_us[mode]) + median(gw_us[mode]) + median(client_us[mode]), 1);
    if (mode != "wire")
      summary["throughput_ratio_" + mode + "_over_wire"] = round_to(median(rate[mode]) / median(rate["wire"]), 3);
  }
  std::cout << summary.dump() << std::endl;
  return 0;
}

}  // namespace gasoline::bench
