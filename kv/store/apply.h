#pragma once
// The pure core of the state machine: (state, entry, index) → (results, mutations, wake-ups). No I/O and no clock:
// time is the leader's timestamp carried by the entry, so every replica computes the same thing.
#include "kv/store/command.h"
#include "kv/store/txn.h"

namespace gasoline::store {

struct Config {
  uint32_t default_max_attempts = 20;
  int64_t retry_base_ms = 1000;
  int64_t retry_max_ms = 5 * 60 * 1000;
};

// A workflow got a wake-up at `ts`: the leader bumps its primary then (now, or from its timer).
struct Wake {
  std::string pool;
  std::string workflow_id;
  std::string name;
  int64_t ts = 0;
  std::string reason;
};

struct Applied {
  std::vector<Result> results;  // one per command, in order
  Mutations mutations;
  std::vector<Wake> wakes;
};

// At most this many commands share one entry: the low bits of a lease token hold the position.
inline constexpr size_t kMaxCommandsPerEntry = 4096;

// The fencing token of a lease: the index of the entry that granted it, with the command's position in the
// group-committed entry in the low 12 bits, so two grants in one entry never share a token.
uint64_t lease_token(uint64_t index, size_t position);

// Retry backoff: min(base · 2^attempt, max) + jitter, with jitter in [0, max(1, base/2)) derived from a hash of
// (workflow, attempt, index) so every replica computes the same value.
int64_t retry_backoff_ms(int64_t base_ms, int64_t max_ms, uint32_t attempt, std::string_view workflow_id,
                         uint64_t index);

// The signal a parent receives when a child it asked to be notified about ends.
inline constexpr std::string_view kChildCompletedSignal = "child.completed";

Applied apply_entry(const Reader& state, const Entry& entry, uint64_t index, const Config& config);

}  // namespace gasoline::store
