#pragma once
#include <string>
#include <vector>

namespace gasoline::bench {

struct PullOptions {
  int workers = 8;
  size_t workflows = 20000;       // phase 1: all due at once (throughput)
  size_t paced_workflows = 5000;  // phase 2: due at a steady rate (wake lag)
  double paced_rate = 2000;       // per second
  size_t max_pull = 64;
  int phase_timeout_s = 120;
  std::vector<std::string> strategies{"modulo-next", "rendezvous", "all"};
};
int run_pull(const PullOptions& options);

struct SimOptions {
  std::string kv = "127.0.0.1:7400";
  std::string token_file;
  std::string pool = "demo";
  int workers = 4;
  size_t workflows = 600;
  int64_t duration_s = 20;
};
int run_sim(const SimOptions& options);

}  // namespace gasoline::bench
