#pragma once
// Pure parsing and validation of the app API's requests (worker/README.md documents the JSON). Everything here
// is a function of its inputs and throws ApiError with the HTTP status, a stable code and a message that says
// what is wrong and where, so the app gets a clear 4xx instead of a kv error or a crash.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace gasoline::worker::api {

using Json = nlohmann::json;

struct ApiError : std::runtime_error {
  ApiError(int status, std::string code, const std::string& message)
      : std::runtime_error(message), status(status), code(std::move(code)) {}
  int status;
  std::string code;
};

// {"error": {"code": ..., "message": ...}}
Json error_json(const std::string& code, const std::string& message);
// The HTTP status for a kv error code (kv/rpc/protocol.h).
int http_status_for_kv(const std::string& kv_code);

// Whether GET /drain on the admin listener may come from `remote` (the peer's IP as the server saw it). Only the
// kubelet's preStop hook should drain a worker: an httpGet hook comes from the node (`node_ip`, status.hostIP
// through the downward API) and an exec hook from the pod's own loopback (127.0.0.1 or ::1; other 127/8
// addresses are not what an in-pod client uses and are refused like any pod's). `also_allowed` are further
// addresses (some CNIs give host-to-pod traffic the bridge's address). IPv4-mapped IPv6 compares as IPv4.
bool drain_caller_allowed(const std::string& remote, const std::string& node_ip,
                          const std::vector<std::string>& also_allowed);

inline constexpr size_t kMaxPoll = 1000;
inline constexpr std::chrono::milliseconds kMaxWait{300'000};
inline constexpr size_t kMaxBatch = 1000;
inline constexpr size_t kMaxChildren = 1000;
inline constexpr size_t kMaxSignals = 1000;

struct TasksQuery {
  size_t max = 1;                        // clamped to the sidecar's concurrency
  std::chrono::milliseconds wait{30'000};
};
// GET /v1/tasks?max=N&wait=30s. max: 1..1000 (default 1); wait: a duration up to 300s (default 30s).
TasksQuery parse_tasks_query(const std::map<std::string, std::string>& query, size_t concurrency);

// The body as JSON (400 "bad_json" otherwise).
Json parse_json_body(const std::string& body);
// A task token names one leased step: "<lease>.<workflow id>". The kv's lease token alone is not enough, because
// every task of one pull shares it (the fence is the pair (worker, lease) per workflow); carrying the workflow id
// also lets any sidecar commit a result whose lease it never held, so the kv's fence can answer 409.
struct TaskToken {
  uint64_t lease = 0;
  std::string workflow_id;
  std::string text() const { return std::to_string(lease) + "." + workflow_id; }
};
TaskToken make_token(uint64_t lease, const std::string& workflow_id);
// Parses "<positive decimal>.<workflow id>" (400 otherwise).
TaskToken parse_token(const std::string& text);

struct ParsedResult {
  Json step;                                   // the kv's StepResult: {"kind": ..., ...}
  std::optional<uint64_t> consumed_signal_seq; // default: the highest signal seq the task carried
  Json children = Json::array();               // the kv's DispatchSpec objects
  Json signals = Json::array();                // the kv's SignalSpec objects
  std::string workflow_id;                     // echo of the task, optional
  std::string worker;                          // echo of the task, optional
};
// One step result (exactly one of complete/sleep/wait/retry/fail/continue, plus children and signals).
// Relative times (sleep.for_ms, wait.timeout_ms, delay_ms) stay durations: the kv makes them absolute with its
// leader's clock, so a skewed pod clock cannot stretch or skip a timer.
ParsedResult parse_result(const Json& body);

struct BatchItem {
  TaskToken token;
  std::string raw_token;  // as sent, for the answer of an item whose token is invalid
  std::optional<ParsedResult> result;
  std::optional<ApiError> error;  // this item is invalid; the others still count
};
// POST /v1/tasks/results: {"results": [{"token": "...", ...one result...}, ...]}.
std::vector<BatchItem> parse_batch(const Json& body);

// POST /v1/workflows → the kv's dispatch args (id may be empty: the sidecar picks one so retries are safe).
Json parse_dispatch(const Json& body, const std::string& default_pool);
// POST /v1/workflows/{id}/signals → the kv's signal args.
Json parse_signal(const Json& body, const std::string& workflow_id);
// POST /v1/workflows/{id}/cancel → the kv's cancel args (the body may be empty).
Json parse_cancel(const std::string& body, const std::string& workflow_id);

}  // namespace gasoline::worker::api
