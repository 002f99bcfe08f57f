#pragma once
// The sidecar's leased tasks and their lifecycle (docs/design.md, "A task's lifecycle"). No threads, no clock and
// no I/O: every method that depends on time takes `now` (mono ms), and what must go to the kv or back to the app
// is returned, so the Sidecar makes the calls and answers once its lock is released, and every transition is
// tested without processes (tests/worker/task_table_test.cc). Not thread-safe: the Sidecar's mutex guards it.
//
//   queued ──take──▶ delivered ──submit──▶ committing ──ok / duplicate──▶ gone (slot freed)
//     │                 │                    │   ▲
//     │ TTL, drain      │ --task-timeout     │   │ re-sent every 500 ms
//     ▼                 ▼                    ▼   │
//   releasing ◀─────────┘                  buffered ──lease lost, or --result-buffer-ttl──▶ gone
//     │  ▲
//     ▼  │ re-sent every 500 ms
//   release_buffered ──ok / lease lost / --result-buffer-ttl──▶ gone        (releasing: ok / lease lost ──▶ gone)
#include "worker/api_parse.h"
#include "worker/outcome.h"

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace gasoline::worker {

enum class TaskState {
  kQueued,           // leased, not handed to the app yet
  kDelivered,        // the app holds it, no result yet
  kCommitting,       // the app's result is on its way to the kv
  kBuffered,         // that commit failed for a transient reason or got no answer: re-sent until it lands
  kReleasing,        // the lease is on its way back to the kv (`release`); a result gets 409
  kReleaseBuffered,  // that release failed for a transient reason or got no answer: re-sent like a result
};
std::string_view to_string(TaskState state);

struct TaskLimits {
  int64_t queued_ttl_ms = 30'000;     // a leased task no poll took this long is given back
  int64_t task_timeout_ms = 600'000;  // --task-timeout: the app held it this long without a result
  int64_t commit_stuck_ms = 15'000;   // a commit without any answer this long is buffered and re-sent
  int64_t buffer_ttl_ms = 300'000;    // --result-buffer-ttl: a buffered result is dropped after this
  int64_t first_retry_ms = 200;       // after a transient failure
  int64_t retry_ms = 500;             // between re-sends
  size_t recent_outcomes = 8192;      // answers of committed results kept for re-posts
};

// A call for the kv: the app's step (`commit`) or the lease given back (`release`, args carry the "reason").
struct KvSend {
  std::string key;  // the task token
  std::string op;
  Json args;
};

// The kv's answer to a commit or a release, as the Sidecar classified it.
enum class KvAnswer {
  kOk,
  kLeaseLost,  // conflict or not found: the lease is gone
  kRefused,    // the kv refused the step itself (bad request): the lease is still ours
  kTransient,  // unavailable, not leader, no connection
};

class TaskTable {
 public:
  // `worker` is this sidecar's id: the commits and releases are made as it, and tasks handed out carry it.
  TaskTable(std::string worker, TaskLimits limits);

  struct Granted {
    enum class Kind {
      kQueued,     // waits for a poll
      kGivenBack,  // granted while draining: nobody will poll for it, so `send` releases it at once
      kRejected,   // malformed (no lease, no workflow) or already held: ignored
    } kind;
    std::string key;
    std::string workflow_id;
    std::optional<KvSend> send;
  };
  // A task from the kv's pull answer.
  Granted grant(const Json& task, bool draining, int64_t now);

  // Up to `max` queued tasks for a poll, in the order they were granted; they become delivered.
  Json take(size_t max, int64_t now);

  // The drain's start: every queued task is given back (delivered ones stay with the app).
  std::vector<KvSend> drain(int64_t now);

  struct Submitted {
    enum class Kind {
      kDuplicate,      // committed before (a re-post after a lost response): `body` is the answer it got
      kNotHeld,        // a token this table does not hold (never did, or resolved and forgotten)
      kWrongWorkflow,  // the result names another workflow than the token's, `workflow_id`
      kReleasing,      // the lease is being given back (task timeout or drain): 409
      kBuffered,       // its commit is buffered: 202 at once, the sidecar keeps re-sending it
      kJoined,         // the same result posted again while its commit is in flight: answered with it
      kSend,           // a new commit: `send` it
    } kind;
    Json body;
    std::string workflow_id;
    std::optional<int64_t> held_ms;  // kSend of a delivered task: how long the app took
    std::optional<KvSend> send;
    Done done;  // handed back to be answered now; empty for kJoined and kSend (the table keeps it)
  };
  Submitted submit(const std::string& key, const api::ParsedResult& result, Done done, int64_t now);

  struct Replied {
    enum class Kind {
      kStale,      // nothing of this token waits for an answer: another attempt resolved it
      kCommitted,  // gone, slot freed; `body` answers the app now and any re-post later
      kReleased,   // gone, slot freed
      kLeaseLost,  // gone, slot freed
      kRefused,    // back to the app, who may post a corrected result
      kBuffered,   // kept and re-sent; `first_buffered` when this started its buffering
    } kind;
    bool release = false;  // the answer was to a release
    bool first_buffered = false;
    std::optional<int64_t> buffered_ms;  // kCommitted, kReleased of a result that had been buffered
    std::string workflow_id;
    Json body;
    std::vector<Done> waiters;  // to answer with the outcome
  };
  Replied reply(const std::string& key, KvAnswer answer, const Json& result, int64_t now);
  // An answer that could not be read: the commit is re-sent, and whoever waits for it keeps waiting.
  void reply_unusable(const std::string& key, int64_t now);

  struct Dropped {
    std::string key;
    std::string workflow_id;
    int64_t buffered_ms = 0;
    std::vector<Done> waiters;
  };
  struct Due {
    std::vector<KvSend> released;  // leases given back: queued past the TTL, delivered past --task-timeout
    std::vector<KvSend> resent;    // buffered commits and releases due for another attempt
    std::vector<std::pair<std::string, std::vector<Done>>> stuck;  // commits without an answer: 202 buffered
    std::vector<Dropped> dropped;  // buffered past --result-buffer-ttl: gone
  };
  // The housekeeping questions: what passed its TTL or --task-timeout, which commits are stuck, which buffered
  // results to re-send or drop.
  Due due(int64_t now);

  // Every waiter, for the answers at shutdown.
  std::vector<Done> take_waiters();

  size_t size() const { return tasks_.size(); }
  bool empty() const { return tasks_.empty(); }
  size_t queued() const { return queue_.size(); }
  // Without a result yet (queued or delivered): the drain summary's "running".
  size_t running() const;
  // Commits with a buffered past, re-sends in flight included: the buffered gauge.
  size_t buffered() const;
  std::vector<uint64_t> leases() const;
  std::optional<TaskState> state(const std::string& key) const;

 private:
  struct Task {
    std::string key;     // the task token the app sees: "<lease>.<workflow id>"
    uint64_t lease = 0;  // the kv's fencing token
    std::string workflow_id;
    Json task;
    uint64_t max_signal_seq = 0;
    TaskState state = TaskState::kQueued;
    int64_t pulled_mono = 0;
    std::optional<int64_t> delivered_mono;  // when a poll took it
    Json call;                   // the commit or release args, from committing or releasing on
    int64_t sent_mono = 0;
    int64_t buffered_since = 0;  // 0 until a commit attempt failed for a transient reason
    int64_t next_try = 0;
    std::vector<Done> waiters;
  };

  KvSend release(Task& t, const std::string& why, int64_t now);
  KvSend send(Task& t, int64_t now);
  void buffer(Task& t, int64_t now, int64_t next_try);
  void unqueue(const std::string& key);
  void remember(const std::string& key, const Json& body);

  std::string worker_;
  TaskLimits limits_;
  std::map<std::string, Task> tasks_;  // by task token
  std::deque<std::string> queue_;      // queued tokens, in the order they were granted
  // Answers of recent commits, so an app that re-posts a result after a lost response gets the same answer.
  std::unordered_map<std::string, Json> recent_;
  std::deque<std::string> recent_order_;
};

}  // namespace gasoline::worker
