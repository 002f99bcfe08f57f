#include "tests/support/kv_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>

namespace gasoline::testing {
namespace fs = std::filesystem;
using rpc::Json;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string tail(const std::string& path, size_t bytes = 3000) {
  auto s = read_all(path);
  return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

bool port_is_free(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

int free_loopback_port() {
  // Below the kernel's ephemeral range (32768+), so neither OS-assigned listeners of other tests nor the source
  // ports of outgoing connections take it between this probe and a restart of the replica that owns it.
  static std::mutex mu;
  static std::set<int> handed_out;
  static std::mt19937 rng(static_cast<unsigned>(::getpid()) * 2654435761u ^
                          static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::lock_guard lock(mu);
  std::uniform_int_distribution<int> dist(20000, 32000);
  for (int attempt = 0; attempt < 2000; ++attempt) {
    int port = dist(rng);
    if (handed_out.count(port)) continue;
    if (!port_is_free(port)) continue;
    handed_out.insert(port);
    return port;
  }
  throw std::runtime_error("no free loopback port found");
}

KvCluster::KvCluster(const std::string& dir, KvClusterOptions options) : dir_(dir), options_(std::move(options)) {
  if (options_.replicas < 1) throw std::invalid_argument("a cluster needs at least one replica");
  fs::create_directories(dir_);
  token_ = "raft-test-token-" + std::to_string(::getpid());
  std::ofstream(dir_ + "/token") << token_ << "\n";
  std::ofstream(raft_secret_file()) << "raft-test-secret-" << ::getpid() << "-not-the-token\n";
  for (int i = 0; i < options_.replicas; ++i) {
    Replica r;
    r.id = static_cast<uint64_t>(i + 1);
    r.raft_address = "127.0.0.1:" + std::to_string(free_loopback_port());
    r.client_address = "127.0.0.1:" + std::to_string(free_loopback_port());
    if (options_.metrics) r.metrics_address = "127.0.0.1:" + std::to_string(free_loopback_port());
    replicas_.push_back(std::move(r));
  }
  for (size_t i = 0; i < replicas_.size(); ++i) start(i);
}

KvCluster::~KvCluster() {
  for (auto& r : replicas_) {
    if (r.status_client) r.status_client->close();
    if (r.process) {
      if (r.frozen) r.process->signal(SIGCONT);
      r.process->kill9();
    }
  }
}

std::string KvCluster::replica_dir(size_t i) const { return dir_ + "/replica-" + std::to_string(replicas_.at(i).id); }
std::string KvCluster::data_dir(size_t i) const { return replica_dir(i) + "/data"; }
std::string KvCluster::log_path(size_t i) const { return replica_dir(i) + "/kv.log"; }
std::string KvCluster::log_text(size_t i) const { return read_all(log_path(i)); }
bool KvCluster::log_contains(size_t i, const std::string& needle) const {
  return log_text(i).find(needle) != std::string::npos;
}

size_t KvCluster::log_count(size_t i, const std::string& needle) const {
  auto text = log_text(i);
  size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

std::vector<std::string> KvCluster::endpoints() const {
  std::vector<std::string> out;
  for (const auto& r : replicas_) out.push_back(r.client_address);
  return out;
}

std::vector<std::string> KvCluster::peer_flags() const {
  std::vector<std::string> out;
  for (const auto& p : replicas_) {
    if (p.join) continue;
    out.push_back("--peer");
    out.push_back(std::to_string(p.id) + "=" + p.raft_address + "," + p.client_address);
  }
  return out;
}

std::vector<std::string> KvCluster::argv(size_t i) const {
  const auto& self = replicas_.at(i);
  std::vector<std::string> a{binary_path("gasoline-kv"),
                             "--data-dir", data_dir(i),
                             "--token-file", dir_ + "/token",
                             "--listen", self.client_address,
                             "--metrics-listen", self.metrics_address,
                             "--port-file", replica_dir(i) + "/port",
                             "--strategy", options_.strategy,
                             "--ping-interval-ms", std::to_string(options_.ping_interval_ms),
                             "--lost-after-ms", std::to_string(options_.lost_after_ms),
                             "--backup-grace-ms", std::to_string(options_.backup_grace_ms),
                             "--log-level", options_.log_level};
  if (!options_.fsync) a.push_back("--no-fsync");
  if (replicas_.size() > 1 || self.join || options_.replicas > 1) {
    a.insert(a.end(), {"--raft-id", std::to_string(self.id), "--raft-secret-file", raft_secret_file(),
                       "--election-timeout-ms",
                       std::to_string(options_.election_timeout_ms), "--heartbeat-ms",
                       std::to_string(options_.heartbeat_ms)});
    if (options_.snapshot_threshold)
      a.insert(a.end(), {"--snapshot-threshold", std::to_string(options_.snapshot_threshold)});
    if (options_.snapshot_trailing)
      a.insert(a.end(), {"--snapshot-trailing", std::to_string(options_.snapshot_trailing)});
    // The static bootstrap configuration is the original replicas; a joining replica names them plus itself.
    for (size_t j = 0; j < replicas_.size(); ++j) {
      const auto& p = replicas_[j];
      if (p.join && j != i) continue;
      a.push_back("--peer");
      a.push_back(std::to_string(p.id) + "=" + p.raft_address + "," + p.client_address);
    }
    if (self.join) a.push_back("--join");
  }
  for (const auto& e : options_.extra_args) a.push_back(e);
  if (i < options_.replica_args.size())
    for (const auto& e : options_.replica_args[i]) a.push_back(e);
  return a;
}

void KvCluster::start(size_t i) {
  auto& r = replicas_.at(i);
  fs::create_directories(replica_dir(i));
  std::string port_file = replica_dir(i) + "/port";
  fs::remove(port_file);
  std::ofstream(log_path(i), std::ios::app) << "=== test harness: starting replica " << r.id << " ===\n";
  r.frozen = false;
  r.process = std::make_unique<Process>(argv(i), log_path(i));
  bool up = wait_until([&] { return fs::exists(port_file) || !r.process->running(); }, std::chrono::seconds(30));
  if (!up || !fs::exists(port_file))
    throw std::runtime_error("replica " + std::to_string(r.id) + " did not start; log:\n" + tail(log_path(i)));
}

bool KvCluster::running(size_t i) { return replicas_.at(i).process && replicas_.at(i).process->running(); }

pid_t KvCluster::pid(size_t i) const { return replicas_.at(i).process ? replicas_.at(i).process->pid() : -1; }

std::optional<Json> KvCluster::status(size_t i, std::chrono::milliseconds timeout) {
  auto& r = replicas_.at(i);
  if (!running(i) || r.frozen) return std::nullopt;
  if (!r.status_client) {
    rpc::ClientOptions o;
    o.endpoints = {r.client_address};
    o.token = token_;
    o.name = "kv-cluster-status";
    o.connect_timeout = std::chrono::milliseconds(500);
    r.status_client = std::make_unique<rpc::Client>(o);
  }
  try {
    return r.status_client->call("status", Json::object(), rpc::CallOptions{timeout, false});
  } catch (const std::exception&) {
    // A connection that hangs (a replica that was frozen) is replaced, so the next call starts afresh.
    r.status_client->close();
    r.status_client.reset();
    return std::nullopt;
  }
}

std::pair<std::string, uint64_t> KvCluster::raft_state(size_t i) {
  auto s = status(i);
  if (!s || !s->contains("raft") || !(*s)["raft"].is_object()) return {"", 0};
  const auto& r = (*s)["raft"];
  return {r.value("state", ""), r.value("term", uint64_t{0})};
}

uint64_t KvCluster::applied_index(size_t i) {
  auto s = status(i);
  return s ? s->value("applied_index", uint64_t{0}) : 0;
}

int KvCluster::leader_index(std::chrono::milliseconds timeout) {
  if (replicas_.size() == 1) {
    return wait_until([&] { return status(0).has_value(); }, timeout) ? 0 : -1;
  }
  int found = -1;
  wait_until(
      [&] {
        std::vector<std::optional<Json>> st(replicas_.size());
        for (size_t i = 0; i < replicas_.size(); ++i) st[i] = status(i, std::chrono::milliseconds(300));
        int leader = -1;
        uint64_t term = 0;
        for (size_t i = 0; i < st.size(); ++i) {
          if (!st[i] || !(*st[i])["raft"].is_object()) continue;
          const auto& r = (*st[i])["raft"];
          if (r.value("state", "") == "leader" && r.value("term", uint64_t{0}) >= term) {
            leader = static_cast<int>(i);
            term = r.value("term", uint64_t{0});
          }
        }
        if (leader < 0) return false;
        uint64_t leader_id = replicas_[static_cast<size_t>(leader)].id;
        for (size_t i = 0; i < st.size(); ++i) {
          if (!st[i] || static_cast<int>(i) == leader || !(*st[i])["raft"].is_object()) continue;
          const auto& r = (*st[i])["raft"];
          bool member = false;
          for (const auto& m : r.value("members", Json::array()))
            if (m.value("id", uint64_t{0}) == replicas_[i].id) member = true;
          if (!member) continue;  // a joining replica knows nothing yet
          if (r.value("leader_id", uint64_t{0}) != leader_id || r.value("term", uint64_t{0}) != term) return false;
        }
        found = leader;
        return true;
      },
      timeout);
  return found;
}

void KvCluster::kill9(size_t i) {
  auto& r = replicas_.at(i);
  if (!r.process) return;
  r.process->kill9();  // SIGKILL works on a stopped process too
  r.frozen = false;
  if (r.status_client) r.status_client->close();
  r.status_client.reset();
}

void KvCluster::sigstop(size_t i) {
  auto& r = replicas_.at(i);
  r.process->freeze();
  r.frozen = true;
}

void KvCluster::sigcont(size_t i) {
  auto& r = replicas_.at(i);
  r.process->signal(SIGCONT);
  r.frozen = false;
}

void KvCluster::terminate(size_t i) {
  auto& r = replicas_.at(i);
  if (!r.process) return;
  if (r.frozen) sigcont(i);
  r.process->signal(SIGTERM);
  if (r.process->wait(std::chrono::seconds(15)) < 0) r.process->kill9();
  if (r.status_client) r.status_client->close();
  r.status_client.reset();
}

void KvCluster::restart(size_t i) {
  if (running(i)) kill9(i);
  start(i);
}

void KvCluster::wipe(size_t i) {
  kill9(i);
  fs::remove_all(data_dir(i));
  start(i);
}

size_t KvCluster::start_joining_replica() {
  Replica r;
  r.id = replicas_.back().id + 1;
  r.raft_address = "127.0.0.1:" + std::to_string(free_loopback_port());
  r.client_address = "127.0.0.1:" + std::to_string(free_loopback_port());
  if (options_.metrics) r.metrics_address = "127.0.0.1:" + std::to_string(free_loopback_port());
  r.join = true;
  replicas_.push_back(std::move(r));
  start(replicas_.size() - 1);
  return replicas_.size() - 1;
}

std::unique_ptr<rpc::Client> KvCluster::client(const std::string& name, std::chrono::milliseconds call_timeout) const {
  rpc::ClientOptions o;
  o.endpoints = endpoints();
  o.token = token_;
  o.name = name;
  o.connect_timeout = std::chrono::milliseconds(1000);
  o.call_timeout = call_timeout;
  return std::make_unique<rpc::Client>(o);
}

std::unique_ptr<rpc::Client> KvCluster::client_of(size_t i, const std::string& name,
                                                  std::chrono::milliseconds call_timeout) const {
  rpc::ClientOptions o;
  o.endpoints = {replicas_.at(i).client_address};
  o.token = token_;
  o.name = name;
  o.connect_timeout = std::chrono::milliseconds(1000);
  o.call_timeout = call_timeout;
  return std::make_unique<rpc::Client>(o);
}

}  // namespace gasoline::testing
