#include "kv/raft/raft_result.h"

#include "kv/raft/libraft.h"

namespace gasoline::raft {

store::Result failure(store::Code code, std::string message) { return store::Result{code, std::move(message), {}}; }

store::Result from_raft_status(int status, const char* what) {
  if (status == 0) return store::Result{};
  if (status == RAFT_NOTLEADER) return failure(store::Code::kNotLeader, std::string(what) + ": not the leader");
  if (status == RAFT_LEADERSHIPLOST)
    return failure(store::Code::kUnavailable,
                   std::string(what) + ": leadership lost before the commit was confirmed; retry idempotently");
  return failure(store::Code::kUnavailable, std::string(what) + ": " + raft_strerror(status));
}

}  // namespace gasoline::raft
