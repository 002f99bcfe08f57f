#pragma once
// What gasctl shows, as pure functions of the kv's answers (tested without a kv): the table layout, the per-pool
// status table and one frame of `gasctl watch`. The shell (gasctl.cc) does the calls, the clock and the terminal.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace gasoline::cli {

using Json = nlohmann::json;
using Rows = std::vector<std::vector<std::string>>;

// Columns padded to their widest cell, two spaces apart; the last column is not padded.
std::string format_table(const Rows& rows);

// "12ms", "4s", "7m", "5h", "7d"; "-" for a negative age (unknown).
std::string format_age(int64_t ms);

// `gasctl status`: one row per pool with its workers, due entries, oldest due age and the count of each workflow
// status (the status op's `counts`, asked with counts: true; "-" where the answer has none).
Rows status_rows(const Json& status);

// One look at a pool: the `workers` answer (for that pool) and the `status` answer (with counts), taken at `at_s`
// seconds on a steady clock.
struct PoolSample {
  double at_s = 0;
  Json status;
  Json workers;
};

// One frame of `gasctl watch POOL`: the pool's throughput (leases granted per second) and shed rate since `prev`
// (nullptr on the first frame: rates show "-"), due and running counts, the wake lag still outstanding (the
// oldest due entry's age), and one line per worker with its rank, CPU, free slots, share since the kv's leader
// started, expected share and leases per second. Plain text, no terminal control codes.
std::string render_watch(const std::string& pool, const std::string& kv, const PoolSample* prev,
                         const PoolSample& cur);

}  // namespace gasoline::cli
