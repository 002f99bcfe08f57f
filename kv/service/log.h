#pragma once
// Where commands go to be ordered, made durable and applied. LocalLog is the single-replica implementation; the
// Raft adapter (kv/raft) implements the same interface for 3 or 5 replicas.
#include "kv/store/apply.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <string>

namespace gasoline::kv {

using Done = std::function<void(const store::Result&)>;
// Runs on the log's thread after each entry is applied: its timestamp, how many client commands it carried, and
// the wake-ups it created (known only where the entry was computed: the leader).
using AppliedFn = std::function<void(int64_t ts, size_t commands, const std::vector<store::Wake>& wakes)>;

class Log {
 public:
  virtual ~Log() = default;
  // Thread-safe. `done` runs exactly once, on the log's thread (or where the log was told to run completions),
  // after the command applied (or failed to be proposed: then its code says why). Keep it short.
  virtual void propose(store::Command command, Done done) = 0;
  // Completes once every command committed before it has been applied here: a linearizable read point.
  virtual void barrier(Done done) = 0;
  virtual bool is_leader() const = 0;
  // host:port of the current leader, empty when unknown.
  virtual std::string leader_address() const = 0;
};

// Membership administration of a replicated log (gasctl cluster ...). Absent for a single replica.
class ClusterAdmin {
 public:
  virtual ~ClusterAdmin() = default;
  virtual nlohmann::json cluster_status() const = 0;
  virtual void add_member(uint64_t id, const std::string& raft_address, const std::string& client_address,
                          Done done) = 0;
  virtual void remove_member(uint64_t id, Done done) = 0;
  virtual void transfer_leadership(uint64_t id, Done done) = 0;
};

}  // namespace gasoline::kv
