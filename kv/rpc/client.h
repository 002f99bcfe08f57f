#pragma once
// The kv client library, linked by gasctl, the sidecar, the operator and the benchmarks. One connection, pipelined
// requests, an I/O thread of its own. It follows "not leader" redirects and reconnects on demand; whether a call
// may be retried is the caller's decision (CallOptions::retry), because only idempotent calls are safe to repeat.
#include "kv/rpc/frame.h"
#include "kv/rpc/protocol.h"
#include "kv/rpc/tls.h"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace gasoline::rpc {

struct ClientOptions {
  std::vector<std::string> endpoints;  // "host:port"; tried in turn
  std::string token;
  std::string name = "gasoline-client";
  size_t max_frame = kDefaultMaxFrame;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds call_timeout{30000};
  tls::ClientFiles tls;  // tls.enabled: every connection is TLS, verified against tls.ca (docs/security.md, TLS)
};

struct CallOptions {
  std::chrono::milliseconds timeout{0};  // 0 = ClientOptions::call_timeout
  // Retry on "unavailable" with backoff until the timeout. Only for idempotent calls. ("not_leader" is always
  // followed: the request was not executed.)
  bool retry = false;
};

using Callback = std::function<void(std::exception_ptr error, Json result)>;

class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Blocks until the response. Throws KvError (server errors keep their code; transport failures are
  // "unavailable").
  Json call(const std::string& op, Json args = Json::object(), CallOptions options = {});
  // Non-blocking; the callback runs on the client's I/O thread and must not block. Without an answer within
  // `timeout` (0 = ClientOptions::call_timeout) the callback gets "unavailable" (the outcome is unknown), and a
  // connection that stayed silent all that time is dropped so the next call can reach another replica.
  void call_async(const std::string& op, Json args, Callback cb, std::chrono::milliseconds timeout = {});

  // Server pushes on this connection (bumps). Runs on the I/O thread.
  void set_bump_handler(std::function<void(const Json&)> handler);
  // Runs on the I/O thread after every successful (re)connect.
  void set_connect_handler(std::function<void()> handler);
  // Calls made first on every new connection, before the calls queued while it was down: a worker pings as its
  // id here, because a scoped credential may commit, release or subscribe only as an id its connection pinged as
  // (docs/security.md). `make` runs on the I/O thread and must not block; the callbacks run there too.
  struct ConnectCall {
    std::string op;
    Json args;
    Callback cb;
  };
  void set_connect_calls(std::function<std::vector<ConnectCall>()> make);

  // The token of the next hello (a rotated ServiceAccount token); the current connection keeps its identity.
  void set_token(std::string token);

  bool connected() const;
  std::string endpoint() const;  // the endpoint in use (or to be tried next)
  void close();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace gasoline::rpc
