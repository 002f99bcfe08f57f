#pragma once
// libraft's status codes as the answers the kv's callers get (kv/service/log.h): which ones a client may retry
// elsewhere (not the leader) or later (unavailable).
#include "kv/store/command.h"

#include <string>

namespace gasoline::raft {

store::Result failure(store::Code code, std::string message);
// 0 is success; `what` names the operation in the message.
store::Result from_raft_status(int status, const char* what);

}  // namespace gasoline::raft
