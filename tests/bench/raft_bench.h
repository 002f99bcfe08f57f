#pragma once
// `gasoline-bench raft`: one replica against three in the same run (loopback, fsync on), then kill -9 failovers.
#include <string>

namespace gasoline::bench {

struct RaftBenchOptions {
  int workers = 8;            // pulling/committing clients
  int dispatchers = 2;        // dispatching clients
  size_t max_pull = 32;       // tasks per pull
  size_t dispatch_batch = 32; // dispatches in flight per dispatcher
  size_t backlog = 2048;      // dispatched but not yet completed workflows
  int warmup_s = 3;
  int measure_s = 10;
  int kills = 10;
  unsigned election_timeout_ms = 500;   // the kv's default
  unsigned heartbeat_ms = 50;           // the kv's default
  bool verify = true;                   // read every workflow back and run the history checker
};
int run_raft(const RaftBenchOptions& options);

}  // namespace gasoline::bench
