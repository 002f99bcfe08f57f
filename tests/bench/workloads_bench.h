#pragma once
// `gasoline-bench workloads`: the four workloads of the peers comparison (hack/bench.sh peers,
// docs/benchmarks-peers.md) on Gasoline: 2 sidecars with the example app against 1 or 3 kv replicas.
#include <cstdint>
#include <string>

namespace CLI {
class App;
}

namespace gasoline::bench {

struct WorkloadsOptions {
  int replicas = 1;
  std::string cases = "ABCD";
  bool quick = false;
  int workers = 2;
  int64_t lost_after_disconnect_ms = -1;  // the kv's flag; -1 = its default
};

CLI::App* add_workloads_command(CLI::App& app, WorkloadsOptions& options);
int run_workloads(const WorkloadsOptions& options);

}  // namespace gasoline::bench
