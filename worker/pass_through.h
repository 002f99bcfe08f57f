#pragma once
// The app's dispatch, get, signal and cancel, and commits of leases this sidecar never held, passed to the kv and
// retried while it is unreachable, for up to 10 s (then 503). Retrying is safe because each of them is
// idempotent: the sidecar names the workflow or the signal when the app did not, and the kv's fence decides a
// commit. Its own mutex, apart from the Sidecar's: these calls share nothing with the leased tasks.
#include "kv/rpc/client.h"
#include "worker/metrics.h"
#include "worker/outcome.h"

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace gasoline::worker {

class PassThrough {
 public:
  PassThrough(rpc::Client& client, Metrics& metrics) : client_(client), metrics_(metrics) {}

  // `done` runs exactly once, on any thread.
  void request(const std::string& op, Json args, Done done);
  // From the Sidecar's housekeeping thread: sends again what failed for a transient reason and answers 503 what
  // passed its deadline.
  void tick();
  // Answers every pending call with 503 shutting_down, and every later one at once.
  void shutdown();

 private:
  struct PendingCall {
    std::string op;
    Json args;
    int64_t deadline = 0;  // mono ms
    int64_t next_try = 0;  // 0 until an attempt failed
    bool inflight = false;
    Done done;
  };

  void send(uint64_t id);
  Outcome success_outcome(const PendingCall& call, const Json& result);

  rpc::Client& client_;
  Metrics& metrics_;
  std::mutex mu_;
  bool stopping_ = false;
  uint64_t next_id_ = 1;
  std::map<uint64_t, PendingCall> calls_;
};

}  // namespace gasoline::worker
