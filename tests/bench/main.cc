// gasoline-bench: benchmarks that print one JSON object per scenario line. Alternatives run side by side in one
// invocation because this machine is noisy; compare ratios, not absolute numbers.
#include "tests/bench/bench.h"
#include "tests/bench/raft_bench.h"
#include "tests/bench/fleet_bench.h"
#include "tests/bench/operator_bench.h"
#include "tests/bench/tls_bench.h"
#include "tests/bench/gateway_bench.h"
#include "tests/bench/workloads_bench.h"

#include <CLI/CLI.hpp>

#include <csignal>
#include <iostream>

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"gasoline-bench: measure gasoline on this machine; prints JSON lines"};
  app.require_subcommand(1);

  gasoline::bench::PullOptions pull;
  bool quick = false;
  auto* pull_cmd = app.add_subcommand("pull", "K simulated workers against one kv: modulo-next vs rendezvous vs all");
  pull_cmd->add_option("--workers", pull.workers, "Simulated workers (K)")->capture_default_str();
  pull_cmd->add_option("--workflows", pull.workflows, "Workflows due at once (M)")->capture_default_str();
  pull_cmd->add_option("--paced", pull.paced_workflows, "Workflows of the wake-lag phase")->capture_default_str();
  pull_cmd->add_option("--paced-rate", pull.paced_rate, "Wake-ups per second in the wake-lag phase")
      ->capture_default_str();
  pull_cmd->add_option("--max-pull", pull.max_pull, "Tasks per pull")->capture_default_str();
  pull_cmd->add_option("--strategies", pull.strategies, "Strategies to compare")->capture_default_str();
  pull_cmd->add_flag("--quick", quick, "Small sizes: finishes within 30 s");

  gasoline::bench::SimOptions sim;
  auto* sim_cmd = app.add_subcommand("sim", "Simulated workers against a running kv, with live progress (hack/run.sh)");
  sim_cmd->add_option("--kv", sim.kv, "kv address")->capture_default_str();
  sim_cmd->add_option("--token-file", sim.token_file, "Bearer token file");
  sim_cmd->add_option("--pool", sim.pool, "Pool")->capture_default_str();
  sim_cmd->add_option("--workers", sim.workers, "Simulated workers")->capture_default_str();
  sim_cmd->add_option("--workflows", sim.workflows, "Workflows to dispatch")->capture_default_str();
  sim_cmd->add_option("--duration", sim.duration_s, "Seconds; dispatch runs over the first half")->capture_default_str();
  gasoline::bench::FleetOptions fleet;
  auto* fleet_cmd = gasoline::bench::add_fleet_command(app, fleet);
  gasoline::bench::RaftBenchOptions raft;
  bool raft_quick = false;
  auto* raft_cmd = app.add_subcommand("raft", "1 replica vs 3 (fsync on), then kill -9 failovers of the leader");
  raft_cmd->add_option("--workers", raft.workers, "Pulling/committing clients")->capture_default_str();
  raft_cmd->add_option("--dispatchers", raft.dispatchers, "Dispatching clients")->capture_default_str();
  raft_cmd->add_option("--max-pull", raft.max_pull, "Tasks per pull")->capture_default_str();
  raft_cmd->add_option("--measure", raft.measure_s, "Seconds of each throughput window")->capture_default_str();
  raft_cmd->add_option("--kills", raft.kills, "kill -9 failovers of the leader")->capture_default_str();
  raft_cmd->add_option("--election-timeout-ms", raft.election_timeout_ms, "Raft election timeout of the replicas")
      ->capture_default_str();
  raft_cmd->add_option("--heartbeat-ms", raft.heartbeat_ms, "Raft heartbeat of the replicas")->capture_default_str();
  raft_cmd->add_flag("--no-verify", [&](int64_t) { raft.verify = false; }, "Skip reading everything back");
  raft_cmd->add_flag("--quick", raft_quick, "Short windows and 3 kills");
  gasoline::bench::OperatorBenchOptions op;
  auto* op_cmd = gasoline::bench::add_operator_command(app, op);
  gasoline::bench::TlsBenchOptions tls;
  auto* tls_cmd = gasoline::bench::add_tls_command(app, tls);
  gasoline::bench::GatewayBenchOptions gateway;
  auto* gateway_cmd = gasoline::bench::add_gateway_command(app, gateway);
  gasoline::bench::WorkloadsOptions workloads;
  auto* workloads_cmd = gasoline::bench::add_workloads_command(app, workloads);
  CLI11_PARSE(app, argc, argv);

  try {
    if (*pull_cmd) {
      if (quick) {
        pull.workflows = 4000;
        pull.paced_workflows = 1500;
        pull.paced_rate = 1000;
        pull.phase_timeout_s = 20;
      }
      return gasoline::bench::run_pull(pull);
    }
    if (*sim_cmd) return gasoline::bench::run_sim(sim);
    if (*raft_cmd) {
      if (raft_quick) {
        raft.warmup_s = 1;
        raft.measure_s = 3;
        raft.kills = 3;
      }
      return gasoline::bench::run_raft(raft);
    }
    if (*fleet_cmd) return gasoline::bench::run_fleet(fleet);
    if (*op_cmd) return gasoline::bench::run_operator(op);
    if (*tls_cmd) return gasoline::bench::run_tls(tls);
    if (*gateway_cmd) return gasoline::bench::run_gateway(gateway);
    if (*workloads_cmd) return gasoline::bench::run_workloads(workloads);
  } catch (const std::exception& e) {
    std::cerr << "gasoline-bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
