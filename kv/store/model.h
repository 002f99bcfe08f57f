#pragma once
// The logical data model (docs/kv.md, "Data model"). Records are stored as MessagePack maps so that fields can be
// added without a migration: unknown fields are skipped, and missing or nil fields read as their defaults.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gasoline::store {

using Json = nlohmann::json;

// Stored on disk (worker records): never renumber or reuse a value.
enum class WorkerState : uint8_t { kActive = 0, kDraining = 1 };
std::string_view to_string(WorkerState);

struct Worker {
  std::string pool;
  std::string id;
  std::string pod;
  std::string version;
  WorkerState state = WorkerState::kActive;
  int64_t last_ping_ts = 0;
  double cpu = 0;              // fraction of the worker's CPU allowance, as last reported
  uint32_t free_slots = 0;
  std::vector<std::string> workflows;  // names it serves; empty means every name of its pool

  bool serves(std::string_view name) const;
};

// Stored on disk (workflow records and the status index keys): never renumber or reuse a value.
enum class Status : uint8_t {
  kPending = 0,   // due or scheduled, never run since dispatch/continue/reclaim
  kRunning = 1,   // leased by a worker
  kSleeping = 2,  // waiting for a timer (sleep or retry backoff)
  kWaiting = 3,   // waiting for signals, optionally with a deadline
  kComplete = 4,
  kFailed = 5,
  kCancelled = 6,
};
inline constexpr size_t kStatusCount = 7;  // one past the highest Status value
std::string_view to_string(Status);
std::optional<Status> parse_status(std::string_view);
inline bool is_terminal(Status s) { return s == Status::kComplete || s == Status::kFailed || s == Status::kCancelled; }

struct Workflow {
  std::string id;
  std::string pool;
  std::string name;
  Json tags = Json::object();
  Json input;
  Json state;
  Json output;
  std::string error;
  Status status = Status::kPending;
  uint32_t attempt = 0;       // failed attempts of the current step
  uint32_t max_attempts = 0;  // 0 = the server default
  int64_t created_ts = 0;
  int64_t updated_ts = 0;
  std::string parent_id;
  bool notify_parent = false;
  std::string idempotency_key;  // the dispatch's, so retention can delete the key with the workflow
  int64_t wake_ts = -1;                   // its one wake-index entry, -1 when it has none
  // When the run a lease holds became due (the wake time the lease took). A released or reclaimed lease puts the
  // workflow back at this time, so it keeps its place ahead of work that became due later.
  int64_t due_ts = 0;
  std::string wake_reason;                // why it is (or was last) due: dispatch, timer, signal, retry, ...
  std::vector<std::string> wait_signals;  // signal names that wake it while waiting
  std::string lease_worker;               // empty when not leased
  uint64_t lease_token = 0;
  std::string last_commit_worker;  // lets a retried commit of the same lease succeed exactly once
  uint64_t last_commit_token = 0;
  uint64_t next_signal_seq = 1;
  uint64_t consumed_signal_seq = 0;  // signals up to this seq were delivered and acknowledged by a commit
  uint64_t steps = 0;                // committed steps
};

struct Signal {
  std::string workflow_id;
  uint64_t seq = 0;
  std::string name;
  Json body;
  int64_t ts = 0;
};

// Records as the DB stores them. The codec writes and reads each field directly (no JSON DOM in between, the
// state machine's hottest path); the bytes equal encode(to_json(record)). Malformed bytes throw
// msgpack::DecodeError naming the record and the field.
std::string encode(const Workflow&);
std::string encode(const Worker&);
std::string encode(const Signal&);
Workflow decode_workflow(std::string_view bytes);
Worker decode_worker(std::string_view bytes);
Signal decode_signal(std::string_view bytes);

// The same records as JSON (replies, tools, and the reference the codec is tested against).
Json to_json(const Worker&);
Worker worker_from_json(const Json&);
Json to_json(const Workflow&);
Workflow workflow_from_json(const Json&);
Json to_json(const Signal&);
Signal signal_from_json(const Json&);

std::string encode(const Json&);  // MessagePack bytes
Json decode(std::string_view);    // throws nlohmann::json::exception on malformed bytes

// Ids, pools and names become parts of keys: 1..253 chars of [A-Za-z0-9._:/-]. Returns an error text.
std::optional<std::string> validate_name(std::string_view what, std::string_view value);

}  // namespace gasoline::store
