#pragma once
// The wire protocol's best case for dispatching, shared by the benchmarks: every client keeps `window` dispatches in
// flight until all are acknowledged.
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

// Dispatches every `args` object, each client keeping `window` calls in flight; no new call starts after a failure.
// Returns the seconds from the first dispatch to the last acknowledgement. Throws naming `what` when a dispatch
// fails or the whole takes over 300 s. A resend is idempotent when the args carry their ids.
inline double dispatch_pipelined(const std::vector<rpc::Client*>& clients, const std::vector<nlohmann::json>& args,
                                 size_t window, const std::string& what) {
  using namespace std::chrono_literals;
  std::mutex mu;
  std::condition_variable cv;
  size_t next = 0, done = 0, failed = 0;
  std::string first_error;
  std::function<void(rpc::Client*)> send = [&](rpc::Client* client) {
    size_t i;
    {
      std::lock_guard lock(mu);
      if (next == args.size() || failed) return;
      i = next++;
    }
    client->call_async("dispatch", args[i], [&, client](std::exception_ptr e, nlohmann::json) {
      if (e) {
        std::lock_guard lock(mu);
        ++failed;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          if (first_error.empty()) first_error = ex.what();
        }
      }
      send(client);
      // Counted last and notified under the lock: once the waiter sees every call done, no callback touches this
      // frame's locals again.
      std::lock_guard lock(mu);
      ++done;
      cv.notify_all();
    });
  };
  auto start = std::chrono::steady_clock::now();
  for (auto* client : clients)
    for (size_t w = 0; w < window; ++w) send(client);
  std::unique_lock lock(mu);
  if (!cv.wait_for(lock, 300s, [&] { return done == next && (next == args.size() || failed); }))
    throw std::runtime_error(what + ": dispatches did not finish within 300 s");
  if (failed)
    throw std::runtime_error(what + ": " + std::to_string(failed) + " dispatches failed, the first: " + first_error);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// `connect()` opens one client; `clients_n` of them dispatch `total` noop workflows `<prefix>-<n>` into `pool`.
// Returns the seconds from the first dispatch to the last acknowledgement (connections are opened before the clock
// starts).
inline double pipelined_dispatch(const std::function<std::unique_ptr<rpc::Client>()>& connect, int clients_n,
                                 size_t window, size_t total, const std::string& pool, const std::string& prefix,
                                 const std::string& what) {
  std::vector<nlohmann::json> args;
  args.reserve(total);
  for (size_t n = 0; n < total; ++n)
    args.push_back(nlohmann::json{
        {"pool", pool}, {"id", prefix + "-" + std::to_string(n)}, {"name", "noop"}, {"input", nlohmann::json{{"n", n}}}});
  std::vector<std::unique_ptr<rpc::Client>> owned;
  std::vector<rpc::Client*> clients;
  for (int i = 0; i < clients_n; ++i) {
    owned.push_back(connect());
    owned.back()->call("status");  // connected before the clock starts
    clients.push_back(owned.back().get());
  }
  // dispatch_pipelined returns once every callback has counted itself done; closing the clients then joins their
  // I/O threads.
  return dispatch_pipelined(clients, args, window, what);
}

}  // namespace gasoline::bench
