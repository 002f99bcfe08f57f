#pragma once
// The gateway's shell (docs/gateway.md): HTTP requests in, planned by gateway/routes.h, sent to the kv on a
// connection per caller credential, answered from the kv's results. It holds no credential of its own: each
// request's bearer token opens (or reuses) a kv connection whose hello carries it, so the kv authenticates and
// authorizes every caller exactly as it does on the wire protocol.
#include "common/http_server.h"
#include "gateway/metrics.h"
#include "gateway/routes.h"
#include "kv/rpc/client.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace gasoline::gateway {

struct Options {
  std::vector<std::string> kv{"127.0.0.1:7400"};
  rpc::tls::ClientFiles kv_tls;
  // Distinct credentials with a kv connection at once. A connection idle this long is closed; a new credential
  // beyond the bound takes the place of the longest idle one, or gets 429 while every one is busy.
  size_t max_clients = 64;
  std::chrono::milliseconds client_idle{5 * 60 * 1000};
  // Requests being answered at once; more get 429 at once instead of queueing without bound.
  size_t max_inflight = 1024;
  // One kv call's deadline, and how long the gateway keeps retrying while the kv is unavailable (a leader
  // election): every call it makes is idempotent, so a retry cannot start a workflow twice.
  std::chrono::milliseconds call_timeout{10000};
  std::chrono::milliseconds retry_for{5000};
};

class Gateway {
 public:
  Gateway(Options options, Metrics& metrics);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // The HTTP handler. Never blocks: the reply comes from a kv client's thread (or the retry timer's).
  void handle(http::Request req, http::Reply reply);
  // Answers new requests 503 from now on, waits up to `grace` for the requests in flight, then stops the retry
  // timer and closes every kv connection (what is still in flight is answered 503).
  void shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(0));

 private:
  struct Conn {
    std::shared_ptr<rpc::Client> client;
    int64_t last_used = 0;  // mono ms
    size_t inflight = 0;
    bool refused = false;  // the kv refused this credential: dropped at the next request
  };

  // The connection for a token, or nullptr when every slot is busy (the caller answers 429).
  std::shared_ptr<rpc::Client> acquire(const std::string& token);
  void release(const std::string& token, bool refused);
  void run_calls(const std::string& token, std::shared_ptr<rpc::Client> client, Plan plan, http::Reply reply);
  void call(std::shared_ptr<rpc::Client> client, KvCall call, int64_t retry_until,
            std::function<void(Outcome)> done);
  void after(std::chrono::milliseconds delay, std::function<void()> fn);
  void timer_loop();

  Options options_;
  Metrics& metrics_;

  std::mutex mu_;
  std::map<std::string, Conn> conns_;  // by bearer token
  size_t inflight_ = 0;
  bool stopping_ = false;
  std::condition_variable idle_cv_;  // inflight_ reached 0

  std::mutex timer_mu_;
  std::condition_variable timer_cv_;
  std::multimap<int64_t, std::function<void()>> timers_;  // by mono ms
  bool timer_stop_ = false;
  std::thread timer_thread_;
};

}  // namespace gasoline::gateway
