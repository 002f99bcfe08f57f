// `gasoline-bench tls`: two real gasoline-kv processes on loopback, one plain and one serving TLS (a certificate
// from a CA the openssl tool makes), measured in alternating rounds: pipelined dispatch throughput with the CPU
// both sides spend per dispatch, and the cost of a new connection (TCP, TLS handshake, hello, one request), which is
// what a sidecar pays on every reconnect. Prints one JSON line per round and mode and a summary of medians and
// TLS/plain ratios.
#include "tests/bench/tls_bench.h"

#include "tests/bench/measure.h"
#include "tests/bench/pipelined_dispatch.h"
#include "tests/support/kv_process.h"
#include "tests/support/test_pki.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>
#include <map>

namespace gasoline::bench {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Mode {
  std::string name;
  std::unique_ptr<testing::KvProcess> kv;
  rpc::tls::ClientFiles tls;
};

std::unique_ptr<rpc::Client> connect(const Mode& m, const std::string& name) {
  rpc::ClientOptions o;
  o.endpoints = {m.kv->address()};
  o.token = m.kv->token();
  o.name = name;
  o.call_timeout = 30s;
  o.tls = m.tls;
  return std::make_unique<rpc::Client>(o);
}

double dispatch_round(const Mode& m, const TlsBenchOptions& o, const std::string& prefix) {
  return pipelined_dispatch([&] { return connect(m, "tls-bench"); }, o.clients, o.window, o.dispatches, "bench.tls",
                            prefix, m.name);
}

// Opens `n` connections one after another, each doing one request; returns the milliseconds per connection.
double connect_round(const Mode& m, int n) {
  auto start = Clock::now();
  for (int i = 0; i < n; ++i) connect(m, "tls-bench-connect")->call("status");
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count() / n;
}

}  // namespace

CLI::App* add_tls_command(CLI::App& app, TlsBenchOptions& o) {
  auto* cmd = app.add_subcommand("tls", "The kv's client port plain vs TLS: dispatch throughput, CPU, new connections");
  cmd->add_option("--rounds", o.rounds, "Alternating plain/TLS rounds")->capture_default_str();
  cmd->add_option("--clients", o.clients, "Connections dispatching at once")->capture_default_str();
  cmd->add_option("--window", o.window, "Dispatches in flight per connection")->capture_default_str();
  cmd->add_option("--dispatches", o.dispatches, "Dispatches per round and mode")->capture_default_str();
  cmd->add_option("--connects", o.connects, "New connections per round and mode")->capture_default_str();
  cmd->add_flag(
      "--quick", [&o](int64_t) { o.rounds = 2, o.dispatches = 5000, o.connects = 50; }, "Small sizes (seconds)");
  return cmd;
}

int run_tls(const TlsBenchOptions& o) {
  testing::TempDir dir("gasoline-bench-tls");
  testing::TestPki pki(dir.path(), "bench");
  auto cert = pki.issue("kv", {"IP:127.0.0.1"});
  std::vector<Mode> modes(2);
  modes[0].name = "plain";
  modes[0].kv = std::make_unique<testing::KvProcess>(dir.path() + "/plain");
  modes[1].name = "tls";
  testing::KvOptions tls_kv;
  tls_kv.extra_args = {"--tls-cert", cert.cert, "--tls-key", cert.key};
  modes[1].kv = std::make_unique<testing::KvProcess>(dir.path() + "/tls", tls_kv);
  modes[1].tls.enabled = true;
  modes[1].tls.ca = pki.ca_cert();

  std::map<std::string, std::vector<double>> rate, kv_us, client_us, connect_ms;
  for (int round = 0; round < o.rounds; ++round) {
    for (auto& m : modes) {
      std::cerr << "bench: tls round " << round + 1 << "/" << o.rounds << " " << m.name << "\n";
      double kv0 = cpu_seconds(m.kv->process().pid()), self0 = cpu_seconds(0);
      double secs = dispatch_round(m, o, m.name + "-r" + std::to_string(round));
      double kv_cpu = cpu_seconds(m.kv->process().pid()) - kv0, self_cpu = cpu_seconds(0) - self0;
      double per_connect = connect_round(m, o.connects);
      double n = static_cast<double>(o.dispatches);
      rate[m.name].push_back(n / secs);
      kv_us[m.name].push_back(kv_cpu / n * 1e6);
      client_us[m.name].push_back(self_cpu / n * 1e6);
      connect_ms[m.name].push_back(per_connect);
      std::cout << Json{{"bench", "tls"},
                        {"mode", m.name},
                        {"round", round + 1},
                        {"dispatches", o.dispatches},
                        {"clients", o.clients},
                        {"window", o.window},
                        {"dispatch_per_s", round_to(n / secs, 0)},
                        {"kv_cpu_us_per_dispatch", round_to(kv_cpu / n * 1e6, 1)},
                        {"client_cpu_us_per_dispatch", round_to(self_cpu / n * 1e6, 1)},
                        {"new_connection_ms", round_to(per_connect, 3)}}
                       .dump()
                << std::endl;
    }
  }
  auto median = [](const std::vector<double>& v) { return percentile(v, 0.5); };
  auto ratio = [&](std::map<std::string, std::vector<double>>& m) {
    return round_to(median(m["tls"]) / median(m["plain"]), 3);
  };
  std::cout << Json{{"bench", "tls"},
                    {"summary", true},
                    {"rounds", o.rounds},
                    {"dispatch_per_s_plain", round_to(median(rate["plain"]), 0)},
                    {"dispatch_per_s_tls", round_to(median(rate["tls"]), 0)},
                    {"throughput_ratio_tls_over_plain", ratio(rate)},
                    {"kv_cpu_ratio_tls_over_plain", ratio(kv_us)},
                    {"client_cpu_ratio_tls_over_plain", ratio(client_us)},
                    {"new_connection_ms_plain", round_to(median(connect_ms["plain"]), 3)},
                    {"new_connection_ms_tls", round_to(median(connect_ms["tls"]), 3)}}
                   .dump()
            << std::endl;
  return 0;
}

}  // namespace gasoline::bench
