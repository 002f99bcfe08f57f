#pragma once
// `gasoline-bench fleet`: real sidecars, each with the example app, against one kv (docs/benchmarks.md, "Fleet").
#include <cstdint>

namespace CLI {
class App;
}
#include <string>
#include <vector>

namespace gasoline::bench {

struct FleetOptions {
  int workers = 4;
  size_t workflows = 4000;      // throughput: noop workflows due at once
  size_t paced = 1000;          // wake lag: noop workflows dispatched at a steady rate
  double paced_rate = 200;      // per second
  size_t timers = 200;          // timer lag: sleep workflows with staggered wake-ups
  size_t hold = 16;             // takeover: tasks the killed sidecar holds
  size_t backlog = 20000;       // takeover with a backlog: workflows due between the kill and the reclaim
  size_t loops = 200;           // scale: long-running sleep loops whose assignment is watched
  std::vector<std::string> strategies{"rendezvous", "modulo-next"};  // compared in the scale scenario
  int app_threads = 2;
  size_t batch = 32;
  uint32_t concurrency = 64;
  bool fsync = true;
  bool real_cgroup = false;     // default: no cgroup, so this shared machine's load does not trigger shedding
  int64_t ping_interval_ms = 500;   // the kv's and the sidecar's defaults
  int64_t lost_after_ms = 2000;
  int64_t backup_grace_ms = 1000;
  int phase_timeout_s = 300;
  bool quick = false;           // small sizes: about a minute

  // --demo (hack/run.sh): a live fleet against a kv that is already running, with progress every second, a
  // kill -9 of one sidecar a third of the way in (and a replacement), and a summary.
  bool demo = false;
  std::string kv;               // comma-separated client addresses
  std::string token_file;
  std::string pool = "demo";
  int64_t duration_s = 30;      // dispatch runs over the first half
  std::string run_dir;          // logs, and a `pids` file listing every process started (for the caller's trap)
  int64_t step_delay_ms = 20;   // simulated work per task in the demo's apps, so a killed sidecar holds some
};

// Registers the `fleet` subcommand and its flags on `app`; the options are filled in when it parses.
CLI::App* add_fleet_command(CLI::App& app, FleetOptions& options);
int run_fleet(FleetOptions options);

}  // namespace gasoline::bench
