#pragma once
// gasctl dispatch --count / --from-file: many dispatches, pipelined, with a bounded window, an optional rate, progress
// and a summary. Every dispatch carries an id chosen here, so one whose answer was lost is sent again safely (the
// kv answers `existing` the second time).
#include "kv/rpc/client.h"

#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace gasoline::cli {

struct BulkOptions {
  size_t window = 256;   // dispatches in flight at most
  double rate = 0;       // per second; 0 = as fast as the kv answers
  int attempts = 12;     // per dispatch, for answers that leave the outcome unknown (unavailable, not_leader), with
                         // a backoff of 50 ms doubling to 1 s between them: about 8 s to ride out leader changes
  std::ostream* progress = nullptr;  // a line per second while it runs (a terminal), or nothing
};

struct BulkResult {
  size_t created = 0;
  size_t existing = 0;                // the kv already had the id (a retry, or a second run)
  std::vector<std::string> failures;  // "id: code: message", in no particular order
  double seconds = 0;
};

// Sends `count` dispatches whose arguments `make(i)` returns (each with an "id"), and waits for every answer.
BulkResult dispatch_many(rpc::Client& client, size_t count, const std::function<rpc::Json(size_t)>& make,
                         const BulkOptions& options);

}  // namespace gasoline::cli
