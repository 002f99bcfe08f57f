#pragma once
// Commands of the kv state machine (docs/kv.md, "Commands"). A log entry carries the leader's timestamp and a group of
// commands; applying it is a deterministic function of (state, entry, index).
#include "kv/store/model.h"

#include <variant>

namespace gasoline::store {

struct Ping {
  std::string pool;
  std::string worker_id;
  std::string pod;
  std::string version;
  std::vector<std::string> workflows;
  double cpu = 0;
  uint32_t free_slots = 0;
};
// The leader coalesces the pings it receives into one command per tick.
struct PingBatch {
  std::vector<Ping> pings;
};
struct Drain {
  std::string pool;
  std::string worker_id;
};
struct Leave {
  std::string pool;
  std::string worker_id;
};
// Back into the ranking after a drain that no shutdown followed (the sidecar's --undrain-after): the drain of a
// pod that is not going away must not take a worker out of service for good.
struct Undrain {
  std::string pool;
  std::string worker_id;
};

struct DispatchSpec {
  std::string id;  // chosen by the client or the proposer, so a retried dispatch is recognised
  std::string pool;
  std::string name;
  Json tags = Json::object();
  Json input;
  std::string idempotency_key;  // optional: a second dispatch with the same key returns the first workflow
  std::string parent_id;
  bool notify_parent = false;  // deliver a "child.completed" signal to the parent when this one ends
  uint32_t max_attempts = 0;   // 0 = server default
  int64_t run_at = 0;          // unix ms; 0 = now
  // Or relative: due this long after the entry's (leader's) time, never the sender's clock. Exclusive with run_at.
  int64_t delay_ms = 0;
};
struct Dispatch {
  DispatchSpec spec;
};

struct SignalSpec {
  std::string workflow_id;
  std::string name;
  Json body;
  std::string signal_id;  // optional: a retried signal with the same id is delivered once
};
struct SendSignal {
  SignalSpec spec;
};

struct Cancel {
  std::string workflow_id;
  std::string reason;
};

struct LeaseItem {
  std::string workflow_id;
  int64_t wake_ts = 0;  // the wake entry the proposer saw; the lease is a compare-and-set on it
};
struct LeaseBatch {
  std::string pool;
  std::string worker_id;
  std::vector<LeaseItem> items;
};

enum class StepKind : uint8_t { kComplete, kSleep, kWait, kRetry, kFail, kContinue };
std::string_view to_string(StepKind);
std::optional<StepKind> parse_step_kind(std::string_view);

struct StepResult {
  StepKind kind = StepKind::kComplete;
  Json output;                       // complete
  std::optional<Json> state;         // sleep, wait, continue, retry (optional there)
  int64_t until = 0;                 // sleep, wait (optional deadline; 0 = none): unix ms
  // Relative forms, turned into absolute times with the entry's (leader's) timestamp at apply, so a worker whose
  // clock is off cannot stretch or skip a timer. Exclusive with `until`.
  int64_t for_ms = 0;      // sleep
  int64_t timeout_ms = 0;  // wait
  std::vector<std::string> signals;  // wait
  std::string error;                 // retry, fail
  int64_t backoff_base_ms = 0;       // retry; 0 = server default
  int64_t backoff_max_ms = 0;        // retry; 0 = server default
};

struct CommitStep {
  std::string workflow_id;
  std::string worker_id;
  uint64_t token = 0;
  StepResult step;
  uint64_t consumed_signal_seq = 0;  // the highest signal seq the task saw; those signals are consumed
  std::vector<DispatchSpec> children;
  std::vector<SignalSpec> signals;
};

// Hands one lease back without recording a step (a drain, a task the app never took): the workflow keeps its state
// and is due again at once. Fenced by the token like a commit; a stale token is a conflict.
struct Release {
  std::string workflow_id;
  std::string worker_id;
  uint64_t token = 0;
  std::string reason;
};

// Releases the leases of a worker whose last ping is older than lost_after_ms, re-checked at apply time.
struct Reclaim {
  std::string pool;
  std::string worker_id;
  int64_t lost_after_ms = 0;
};

// Deletes finished workflows (complete, failed, cancelled) of a pool whose retention passed, re-checked at apply
// time, with everything that refers to them: status and finished indexes, signals, signal ids, idempotency key.
struct Purge {
  std::string pool;
  int64_t retention_ms = 0;
  std::vector<std::string> ids;
};

// A pool's settings. retention_ms: how long finished workflows are kept; < 0 = the kv's default, 0 = forever.
struct ConfigurePool {
  std::string pool;
  int64_t retention_ms = -1;
};

using Command = std::variant<PingBatch, Drain, Leave, Dispatch, SendSignal, Cancel, LeaseBatch, CommitStep, Release,
                             Reclaim, Purge, ConfigurePool, Undrain>;
std::string_view command_name(const Command&);

struct Entry {
  int64_t ts = 0;
  std::vector<Command> commands;
};

Json to_json(const Command&);
Command command_from_json(const Json&);  // throws std::invalid_argument / nlohmann exceptions on bad input
// The Raft log's entries (entry_codec.cc): MessagePack written and read field by field, the same bytes as
// encode({"ts", "cmds": [to_json(command)...]}). decode_entry throws msgpack::DecodeError on bad bytes.
std::string encode_entry(const Entry&);
Entry decode_entry(std::string_view bytes);

Json to_json(const DispatchSpec&);
DispatchSpec dispatch_from_json(const Json&);
Json to_json(const SignalSpec&);
SignalSpec signal_spec_from_json(const Json&);
Json to_json(const StepResult&);
StepResult step_from_json(const Json&);

// Outcome of one command. A failed compare-and-set is a result (kConflict), never an apply error. The last two
// never come from apply: the log uses them when a command could not be applied here (kNotLeader) or its outcome
// is unknown because leadership was lost before the commit was confirmed (kUnavailable; retry idempotently).
enum class Code : uint8_t { kOk, kInvalid, kNotFound, kConflict, kFailedPrecondition, kNotLeader, kUnavailable };
std::string_view to_string(Code);

struct Result {
  Code code = Code::kOk;
  std::string message;
  Json body = Json::object();
  bool ok() const { return code == Code::kOk; }
};

}  // namespace gasoline::store
