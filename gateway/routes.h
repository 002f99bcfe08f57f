#pragma once
// The gateway's routes (docs/gateway.md, docs/openapi/gateway.yaml): HTTP/JSON in, kv ops out, kv results back to
// HTTP. Pure: no I/O, no clock, no randomness of its own (ids come from the caller), so every route and every
// error mapping is table-tested (tests/unit/gateway_routes_test.cc); gateway.cc only moves bytes.
#include "common/http_server.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace gasoline::gateway {

using Json = nlohmann::json;

// The most workflows one batch dispatch may carry: the batch is answered as a whole, so its size bounds how long
// one request holds a slot.
inline constexpr size_t kMaxBatch = 1000;
// The largest page a list may ask for (the kv's own cap).
inline constexpr size_t kMaxPage = 10000;
inline constexpr size_t kDefaultPage = 100;

enum class Route { kDispatch, kDispatchBatch, kGet, kList, kSignal, kCancel, kHealthz, kReadyz, kMetrics, kOther };
const char* route_name(Route r);

// One kv call. `idempotent`: repeating it after an unknown outcome has the effect of once (every call the gateway
// makes is, because it names dispatches and signals the client left unnamed), so the gateway may retry it while
// the kv elects a leader.
struct KvCall {
  std::string op;
  Json args;
};

// What to do with a request: answer it now (`reply`), or make `calls` and build the answer with respond().
struct Plan {
  Route route = Route::kOther;
  std::optional<http::Response> reply;
  std::vector<KvCall> calls;
  size_t list_limit = 0;  // kList: the page size asked for, to tell whether there is a next page
};

// Fresh ids for dispatches and signals the client did not name ("wf_", "sig_" prefixes).
using NewId = std::function<std::string(const char* prefix)>;

// The route and its kv calls, or a 4xx answer naming what is wrong. Never throws. Probes (/healthz, /readyz,
// /metrics) come back with only `route` set: the shell answers them.
Plan plan(const http::Request& req, const NewId& new_id);

// One kv call's outcome: its result, or the kv's error code and message.
struct Outcome {
  bool ok = false;
  Json result;
  std::string code;
  std::string message;
};

// The HTTP answer to a planned request once every call has its outcome (outcomes[i] answers plan.calls[i]).
http::Response respond(const Plan& plan, const std::vector<Outcome>& outcomes);

// The HTTP status of a kv error code: the caller's fault (4xx), the kv's state (503, worth a retry), or a fault of
// the gateway or the kv (500, 502).
int status_for_kv(const std::string& code);

// The bearer token of an Authorization header value ("Bearer <token>"), or nullopt.
std::optional<std::string> bearer_token(const http::Request& req);

}  // namespace gasoline::gateway
