#pragma once
// Active workers per pool, read from the kv(s) in the background. Reconciles must never wait on the kv, and the
// operator must never fail because the kv is away (a fresh install, a network policy): a pool whose kv did not
// answer simply has no activeWorkers in its status.
#include "kv/rpc/client.h"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

namespace gasoline::op {

class KvStatus {
 public:
  // `on_change(address, pool)` runs on the poller's thread when a pool's count changed or became (un)known.
  using OnChange = std::function<void(const std::string& address, const std::string& pool)>;

  KvStatus(std::string token, rpc::tls::ClientFiles tls, std::chrono::milliseconds interval, OnChange on_change);
  ~KvStatus();
  void start();
  void stop();

  // Asks for `address` to be polled from now on.
  void watch(const std::string& address);
  // nullopt: that kv did not answer the last poll (or was never polled).
  std::optional<int> active(const std::string& address, const std::string& pool) const;
  bool reachable(const std::string& address) const;

 private:
  void run();
  void poll(const std::string& address);

  std::string token_;
  rpc::tls::ClientFiles tls_;
  std::chrono::milliseconds interval_;
  OnChange on_change_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::set<std::string> addresses_;
  std::map<std::string, std::unique_ptr<rpc::Client>> clients_;
  std::map<std::string, std::optional<std::map<std::string, int>>> counts_;  // address → pool → active
  std::thread thread_;
};

}  // namespace gasoline::op
