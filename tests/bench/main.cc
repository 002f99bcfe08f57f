// gasoline-bench: benchmarks that print one JSON object per scenario line. Alternatives run side by side in one
// invocation because this machine is noisy; compare ratios, not absolute numbers.
#include "tests/bench/bench.h"

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
  } catch (const std::exception& e) {
    std::cerr << "gasoline-bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
