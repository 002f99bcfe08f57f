#pragma once
// The fixture of the process-level worker tests (fleet_test.cc, drain_test.cc): a real gasoline-kv (KvProcess), real
// gasoline-worker sidecars and real gasoline-example-app processes on loopback, ports chosen by the OS. Where a test
// needs an app that holds tasks on purpose, the test itself is that app (worker/sdk). Synchronisation is by
// conditions with deadlines (wait_until); nothing asserts on speed.
#include "common/clock.h"
#include "kv/rpc/client.h"
#include "tests/support/kv_process.h"
#include "tests/support/process.h"
#include "tests/support/prometheus_text.h"
#include "worker/sdk/client.h"

#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace gasoline::fleet {

using namespace std::chrono_literals;
using rpc::Json;
using testing::KvOptions;
using testing::KvProcess;
using testing::Process;
using testing::TempDir;
using testing::wait_until;
namespace fs = std::filesystem;

inline std::string tail(const std::string& path, size_t bytes = 3000) {
  std::ifstream in(path);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

inline bool file_contains(const std::string& path, const std::string& a, const std::string& b) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (line.find(a) != std::string::npos && line.find(b) != std::string::npos) return true;
  return false;
}

// The port of the admin listener from the sidecar's "app API listening" log line, or 0 before it is written.
inline int logged_admin_port(const std::string& log) {
  std::ifstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("app API listening") == std::string::npos) continue;
    auto j = rpc::Json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;
    std::string admin = j.value("admin", "");
    auto colon = admin.rfind(':');
    if (colon != std::string::npos) return std::stoi(admin.substr(colon + 1));
  }
  return 0;
}

using testing::metric;  // the value of one series in /metrics text, or -1 when absent

struct Node {
  std::string name;
  std::string log;
  std::string app_log;
  std::unique_ptr<Process> sidecar;
  std::unique_ptr<Process> app;
  int port = 0;
  int admin_port = 0;  // with --admin-listen 127.0.0.1:0
  std::string id;
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  std::string admin_address() const { return "127.0.0.1:" + std::to_string(admin_port); }
};

class WorkerFleet : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = std::make_unique<TempDir>("gasoline-worker-test"); }

  void TearDown() override {
    if (HasFailure()) {
      if (kv_) std::cerr << "--- kv log ---\n" << tail(kv_->log_path()) << "\n";
      for (auto& n : nodes_) {
        std::cerr << "--- " << n->name << " sidecar log ---\n" << tail(n->log) << "\n";
        if (!n->app_log.empty()) std::cerr << "--- " << n->name << " app log ---\n" << tail(n->app_log, 1500) << "\n";
      }
    }
    for (auto& n : nodes_) {
      if (n->app) n->app->kill9();
      if (n->sidecar) n->sidecar->kill9();
    }
    nodes_.clear();
    client_.reset();
    kv_.reset();
  }

  KvProcess& start_kv(KvOptions o = {}) {
    o.fsync = false;  // speed on a shared machine; durability is the kv tests' business
    kv_ = std::make_unique<KvProcess>(dir_->path() + "/kv", o);
    return *kv_;
  }

  rpc::Client& kv() {
    if (!client_ && kv_tls_.enabled) {
      rpc::ClientOptions o;
      o.endpoints = {kv_->address()};
      o.token = kv_->token();
      o.name = "worker-test";
      o.tls = kv_tls_;
      client_ = std::make_unique<rpc::Client>(o);
    }
    if (!client_) client_ = kv_->client("worker-test");
    return *client_;
  }

  Node& start_sidecar(const std::string& name, bool with_app, std::vector<std::string> extra = {}) {
    auto node = std::make_unique<Node>();
    node->name = name;
    node->log = dir_->path() + "/" + name + ".log";
    std::string port_file = dir_->path() + "/" + name + ".port";
    std::vector<std::string> argv{testing::binary_path("gasoline-worker" + binary_suffix_),
                                  "--kv", kv_->address(),
                                  "--token-file", sidecar_token_file_.empty() ? dir_->path() + "/kv/token"
                                                                              : sidecar_token_file_,
                                  "--pool", pool_,
                                  "--api-port", "0",
                                  "--port-file", port_file,
                                  "--ping-interval", "100ms",
                                  "--fallback-tick", "200ms",
                                  // This host's cgroup is the whole busy machine; shedding would only add noise.
                                  "--cgroup-root", dir_->path() + "/no-cgroup",
                                  "--drain-timeout", "20s"};
    for (auto& a : extra) argv.push_back(a);
    argv.insert(argv.begin(), wrapper_.begin(), wrapper_.end());
    node->sidecar = std::make_unique<Process>(argv, node->log);
    bool up = wait_until([&] { return fs::exists(port_file) || !node->sidecar->running(); }, 20s);
    if (!up || !fs::exists(port_file)) throw std::runtime_error(name + " did not start:\n" + tail(node->log));
    std::ifstream(port_file) >> node->port;
    if (std::find(extra.begin(), extra.end(), "--admin-listen") != extra.end()) {
      // The admin listener's port (0 = chosen at start) is only in the log line that follows the port file.
      bool found = wait_until([&] { return (node->admin_port = logged_admin_port(node->log)) > 0; }, 20s);
      if (!found) throw std::runtime_error(name + " logged no admin address:\n" + tail(node->log));
    }
    sdk::Client c(node->address());
    node->id = c.request("GET", "/healthz").body.value("worker", "");
    if (with_app) start_app(*node);
    nodes_.push_back(std::move(node));
    return *nodes_.back();
  }

  void start_app(Node& n) {
    n.app_log = dir_->path() + "/" + n.name + "-app.log";
    std::vector<std::string> argv = wrapper_;
    argv.push_back(testing::binary_path("gasoline-example-app" + binary_suffix_));
    for (const std::string& a : std::vector<std::string>{"--api", n.address(), "--threads", "2", "--batch", "16",
                                                          "--wait-ms", "1000", "--retry-backoff-ms", "20"})
      argv.push_back(a);
    n.app = std::make_unique<Process>(argv, n.app_log);
  }

  bool ready(Node& n) { return sdk::Client(n.address(), 5s).ready(); }

  std::string dispatch(const std::string& name, const Json& input = Json::object(), const std::string& id = "") {
    Json args{{"pool", pool_}, {"name", name}, {"input", input}};
    if (!id.empty()) args["id"] = id;
    return kv().call("dispatch", args, rpc::CallOptions{10s, true})["id"].get<std::string>();
  }

  Json get(const std::string& id) {
    return kv().call("get", Json{{"workflow_id", id}}, rpc::CallOptions{10s, true});
  }

  // The records of the workflows that are not terminal yet, for failure messages.
  std::string pending(const std::vector<std::string>& ids) {
    std::string out;
    for (const auto& id : ids) {
      auto w = get(id);
      auto s = w.value("status", "");
      if (s != "complete" && s != "failed" && s != "cancelled") out += "\n  " + w.dump();
    }
    return out;
  }

  bool all_terminal(const std::vector<std::string>& ids) {
    for (const auto& id : ids) {
      auto s = get(id).value("status", "");
      if (s != "complete" && s != "failed" && s != "cancelled") return false;
    }
    return true;
  }

  Json worker_record(const std::string& id) {
    auto r = kv().call("workers", Json{{"pool", pool_}}, rpc::CallOptions{10s, true});
    for (const auto& p : r["pools"])
      for (const auto& w : p["workers"])
        if (w.value("id", "") == id) return w;
    return nullptr;
  }

  // Polls a sidecar as its app until it has handed out `n` tasks.
  std::vector<Json> hold(Node& node, size_t n, std::chrono::milliseconds timeout = 20s) {
    sdk::Client c(node.address());
    std::vector<Json> held;
    wait_until(
        [&] {
          for (auto& t : c.poll(n - held.size(), 200ms)) held.push_back(std::move(t));
          return held.size() >= n;
        },
        timeout);
    return held;
  }

  std::unique_ptr<TempDir> dir_;
  std::string pool_ = "test";
  std::string sidecar_token_file_;  // empty = the kv's admin token
  // Prepended to the sidecar's and the app's command lines (e.g. faketime, to skew their clock).
  std::vector<std::string> wrapper_;
  // Appended to the sidecar's and the app's binary names: "-glibc-malloc" under libfaketime (worker/CMakeLists.txt).
  std::string binary_suffix_;
  std::unique_ptr<KvProcess> kv_;
  rpc::tls::ClientFiles kv_tls_;  // how the test's own client reaches a kv that serves TLS
  std::unique_ptr<rpc::Client> client_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

}  // namespace gasoline::fleet
