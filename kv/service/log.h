#pragma once
// Where commands go to be ordered, made durable and applied. LocalLog is the single-replica implementation; the
// Raft adapter (kv/raft) implements the same interface for 3 or 5 replicas.
#include "kv/store/apply.h"

#include <functional>
#include <string>

namespace gasoline::kv {

using Done = std::function<void(const store::Result&)>;

class Log {
 public:
  virtual ~Log() = default;
  // Thread-safe. `done` runs exactly once, on the log's thread, after the command applied (or failed to be
  // proposed: then its code is kFailedPrecondition with a message saying why). Keep it short.
  virtual void propose(store::Command command, Done done) = 0;
  virtual bool is_leader() const = 0;
  // host:port of the current leader, empty when unknown.
  virtual std::string leader_address() const = 0;
};

}  // namespace gasoline::kv
