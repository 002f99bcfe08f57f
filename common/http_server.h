#pragma once
// Our own small HTTP server interface. The sidecar's app API and admin endpoints and the gateway are written
// against it. Two backends: Boost.Beast on one Asio thread (http_server_beast.cc, the default) and cpprestsdk
// (http_server_cpprest.cc; upstream is archived), chosen by make_server().
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace gasoline::http {

struct Request {
  std::string method;                         // "GET", "POST", ...
  std::vector<std::string> path;              // percent-decoded segments: "/v1/tasks" → {"v1", "tasks"}
  std::map<std::string, std::string> query;   // percent-decoded; a repeated key keeps the last value
  std::map<std::string, std::string> headers; // names in lower case
  std::string body;
  std::string remote_address;                 // the peer's IP as the server saw it ("" if unknown)
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Must be called exactly once, from any thread, possibly long after the handler returned (long polls).
using Reply = std::function<void(Response)>;
// Runs on one of the server's threads and must not block: reply now or keep `reply` for later.
using Handler = std::function<void(Request, Reply)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;                 // 0 = a free port chosen at start; port() tells which
  size_t max_body = 1 << 20;    // larger bodies get 413 before the handler runs
  int timeout_s = 120;          // per read/write on a connection; must exceed the longest long poll
};

class Server {
 public:
  virtual ~Server() = default;
  // Throws std::runtime_error naming the address when it cannot listen.
  virtual void start() = 0;
  virtual int port() const = 0;
  // Stops accepting and closes; requests still unanswered must have been replied to before.
  virtual void stop() = 0;
};

// Boost.Beast on one Asio thread, or cpprestsdk with GASOLINE_HTTP_BACKEND=cpprest (the backend before Beast,
// kept to compare and to fall back on while Beast is new; docs/benchmarks.md "HTTP backends").
std::unique_ptr<Server> make_server(ServerOptions options, Handler handler);

// Helpers for handlers.
std::string percent_decode(const std::string& s);
Response json_response(int status, const std::string& body);
// {"error": {"code": ..., "message": ...}}: the shape of every error the sidecar and the gateway return.
Response error_response(int status, const std::string& code, const std::string& message);

}  // namespace gasoline::http
