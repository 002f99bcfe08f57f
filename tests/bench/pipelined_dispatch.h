#pragma once
// The wire protocol's best case for dispatching, shared by the benchmarks that compare something against it (tls,
// gateway): every client keeps `window` dispatches in flight until `total` are acknowledged.
#include "kv/rpc/client.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace gasoline::bench {

// `connect()` opens one client; `clients` of them dispatch noop workflows `<prefix>-<n>` into `pool`. Returns the
// seconds from the first dispatch to the last acknowledgement (connections are opened before the clock starts).
// Throws naming `what` when a dispatch fails or the whole takes over 300 s.
inline double pipelined_dispatch(const std::function<std::unique_ptr<rpc::Client>()>& connect, int clients_n,
                                 size_t window, size_t total, const std::string& pool, const std::string& prefix,
                                 const std::string& what) {
  using namespace std::chrono_literals;
  // Declared before the clients, so the clients (whose I/O threads run the callbacks) are closed first, on the
  // error paths too.
  std::mutex mu;
  std::condition_variable cv;
  size_t sent = 0, done = 0, failed = 0;
  std::function<void(size_t)> send_one;
  std::vector<std::unique_ptr<rpc::Client>> clients;
  send_one = [&](size_t c) {
    size_t n;
    {
      std::lock_guard lock(mu);
      if (sent == total) return;
      n = sent++;
    }
    clients[c]->call_async("dispatch",
                           nlohmann::json{{"pool", pool}, {"id", prefix + "-" + std::to_string(n)}, {"name", "noop"},
                                          {"input", nlohmann::json{{"n", n}}}},
                           [&, c](std::exception_ptr e, nlohmann::json) {
                             {
                               std::lock_guard lock(mu);
                               ++done;
                               if (e) ++failed;
                             }
                             cv.notify_all();
                             send_one(c);
                           });
  };
  for (int i = 0; i < clients_n; ++i) {
    clients.push_back(connect());
    clients.back()->call("status");  // connected before the clock starts
  }
  auto start = std::chrono::steady_clock::now();
  for (int c = 0; c < clients_n; ++c)
    for (size_t w = 0; w < window; ++w) send_one(static_cast<size_t>(c));
  {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, 300s, [&] { return done == total; }))
      throw std::runtime_error(what + ": dispatches did not finish within 300 s");
    if (failed) throw std::runtime_error(what + ": " + std::to_string(failed) + " dispatches failed");
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  clients.clear();  // joins the I/O threads: no callback runs once the counters go
  return secs;
}

}  // namespace gasoline::bench
