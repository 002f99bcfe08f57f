#pragma once
// A small C++ client of the sidecar's app API (worker/README.md). One keep-alive HTTP connection per Client; a
// Client is not thread-safe, so give each application thread its own. Step builders in `step::` produce the
// result JSON the sidecar expects.
#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace gasoline::sdk {

using Json = nlohmann::json;

// The sidecar could not be reached or the connection broke (it restarts, or it is gone).
class TransportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The sidecar answered with an error status.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string code, const std::string& message)
      : std::runtime_error(message), status_(status), code_(std::move(code)) {}
  int status() const { return status_; }
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string code_;
};

struct Response {
  int status = 0;
  Json body;        // parsed JSON (null when the body is not JSON)
  std::string raw;  // the body as received
};

enum class Posted {
  kCommitted,  // the step is committed (200), also when it had been committed before (a retried post)
  kBuffered,   // the kv is unreachable; the sidecar keeps the result and retries it (202)
  kLeaseLost,  // the lease was lost (409): drop the task, another worker runs the step
};

struct DispatchOptions {
  std::string id;               // empty: the sidecar names it
  std::string idempotency_key;  // a second dispatch with the key returns the first workflow
  Json tags = Json::object();
  int64_t delay_ms = 0;
  uint32_t max_attempts = 0;
};

class Client {
 public:
  // address: "127.0.0.1:7480" or "http://127.0.0.1:7480".
  explicit Client(std::string address, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Any request. Throws TransportError when there is no answer; any HTTP status is returned.
  Response request(const std::string& method, const std::string& target, const std::string& body = "",
                   const std::string& content_type = "application/json",
                   std::optional<std::chrono::milliseconds> timeout = std::nullopt);

  // GET /v1/tasks: up to `max` tasks, waiting up to `wait` for the first. Empty while idle; empty at once while
  // the sidecar drains (see draining()).
  std::vector<Json> poll(size_t max, std::chrono::milliseconds wait);
  // Whether the last poll said the sidecar is draining: no task will come, and polls no longer wait, so pause
  // before polling again (the pod is about to be stopped).
  bool draining() const { return draining_; }
  // POST /v1/tasks/{token}/result. The task's workflow id and worker are sent along, so a result posted to a
  // restarted or different sidecar is still fenced by the kv (committed if the lease is valid, 409 if not).
  // Throws ApiError for an invalid result (4xx other than 409) and when the sidecar cannot take it (503).
  Posted post_result(const Json& task, Json result);
  // POST /v1/tasks/results: one request for many results; one Posted per (task, result), in order. Items the
  // sidecar rejects as invalid throw ApiError.
  std::vector<Posted> post_results(const std::vector<std::pair<Json, Json>>& results);

  // POST /v1/workflows: returns the workflow id.
  std::string dispatch(const std::string& name, const Json& input = nullptr, const DispatchOptions& options = {});
  // GET /v1/workflows/{id}. Throws ApiError (404) when it does not exist.
  Json get(const std::string& id);
  // POST /v1/workflows/{id}/signals. Returns {"seq", "duplicate"}.
  Json signal(const std::string& id, const std::string& name, const Json& body = nullptr,
              const std::string& signal_id = "");
  // POST /v1/workflows/{id}/cancel.
  Json cancel(const std::string& id, const std::string& reason = "");
  // GET /readyz.
  bool ready();

  // Sent as "Authorization: Bearer <token>" with every request from now on (gasoline-gateway wants one; the
  // sidecar's app API does not). Empty: none.
  void set_bearer_token(std::string token) { bearer_ = std::move(token); }

 private:
  struct Conn;
  Json expect(const Response& r, std::initializer_list<int> ok, const std::string& what);

  std::string host_;
  std::string port_;
  std::chrono::milliseconds timeout_;
  bool draining_ = false;
  std::string bearer_;
  std::unique_ptr<Conn> conn_;
};

// Step results (exactly one kind each); add children or signals with the helpers below.
namespace step {
Json complete(const Json& output = nullptr);
Json sleep_for(int64_t ms, const Json& state = nullptr);
Json sleep_until(int64_t unix_ms, const Json& state = nullptr);
// Waits for any of `signals`; a timeout (ms) wakes it without one.
Json wait(const std::vector<std::string>& signals, std::optional<int64_t> timeout_ms = std::nullopt,
          const Json& state = nullptr);
Json retry(const std::string& error, const Json& state = nullptr, int64_t backoff_base_ms = 0);
Json fail(const std::string& error);
Json next(const Json& state = nullptr);  // "continue": run again at once with the new state

// A child workflow; notify_parent delivers a "child.completed" signal to this workflow when it ends.
Json child(const std::string& name, const Json& input = nullptr, bool notify_parent = true, const std::string& id = "");
Json& add_child(Json& result, Json child);
Json& add_signal(Json& result, const std::string& workflow_id, const std::string& name, const Json& body = nullptr);
}  // namespace step

// The task's signals with this name, in delivery order.
std::vector<Json> signals_named(const Json& task, const std::string& name);
// The name of the signal a child's completion is delivered as.
inline constexpr const char* kChildCompleted = "child.completed";

}  // namespace gasoline::sdk
