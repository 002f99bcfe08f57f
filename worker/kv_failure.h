#pragma once
// A kv call's failure as the sidecar acts on it: the kv's error code (kv/rpc/protocol.h) and message, and whether
// waiting and trying again can fix it.
#include "kv/rpc/client.h"

#include <exception>
#include <string>

namespace gasoline::worker {

struct KvFailure {
  std::string code;
  std::string message;
};

// Anything but the kv's own refusal (a reply of an unexpected shape, a broken connection) counts as internal.
inline KvFailure failure_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const rpc::KvError& err) {
    return {err.code(), err.what()};
  } catch (const std::exception& err) {
    return {rpc::code::kInternal, err.what()};
  }
}

// The kv away or changing leaders: the same call can succeed later.
inline bool transient(const std::string& code) {
  return code == rpc::code::kUnavailable || code == rpc::code::kNotLeader || code == rpc::code::kInternal;
}

}  // namespace gasoline::worker
