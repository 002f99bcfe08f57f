#pragma once
// HTTPS to the API server: pooled keep-alive connections for requests, a dedicated connection per watch that
// streams the body line by line. Boost.Beast over OpenSSL, not cpprestsdk: upstream archived cpprestsdk, so new HTTP
// code uses Beast (docs/design.md, "Dependencies"), and a watch needs chunked streaming reads with long timeouts,
// which Beast does well.
// Synchronous calls with per-operation deadlines: each connection owns a small io_context that the caller's
// thread runs, so no I/O thread is shared and a slow watch never delays a write.
#include "operator/kube/config.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace gasoline::kube {

struct HttpResponse {
  int status = 0;
  std::string body;
  std::string content_type;
};

// No HTTP answer at all: connect, TLS, timeout or protocol failure. Always retryable.
class TransportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// The server closed the connection before answering (an idle keep-alive connection it dropped): the request was not
// processed and may be sent again on a fresh connection.
class ClosedError : public TransportError {
 public:
  using TransportError::TransportError;
};

// Called after every request and every watch that got an HTTP answer (status) or failed (status 0).
using RequestObserver = std::function<void(std::string_view method, int status)>;

class Http {
 public:
  explicit Http(Config config);
  ~Http();
  Http(const Http&) = delete;
  Http& operator=(const Http&) = delete;

  // `target` is the path and query ("/api/v1/namespaces/x/pods?limit=10"). Throws TransportError.
  HttpResponse request(std::string_view method, const std::string& target, const std::string& body = {},
                       std::string_view content_type = "application/json",
                       std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // A streamed GET: `on_line` gets each non-empty line of the body. Returns the status and, when it is not 200,
  // the (small) error body. Returns normally when the server ends the stream, when on_line returns false, or after
  // cancel_streams(). No byte for `idle_timeout` is a TransportError (a silently dead connection).
  HttpResponse stream(const std::string& target, const std::function<bool(std::string_view)>& on_line,
                      std::chrono::milliseconds idle_timeout);

  // Ends every stream in progress (shutdown): their stream() calls return promptly.
  void cancel_streams();

  void set_observer(RequestObserver observer);
  const Config& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gasoline::kube
