#pragma once
// N real gasoline-kv replicas (1, 3 or 5) on loopback, replicated with libraft: one shared token, one shared Raft
// secret (a different one), one data dir per replica, ports chosen up front (the --peer list names every replica's Raft and client address). Replicas can
// be killed, frozen, restarted on the same data, wiped, and a replica can be added with --join.
#include "kv/rpc/client.h"
#include "tests/support/process.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace gasoline::testing {

struct KvClusterOptions {
  int replicas = 3;
  unsigned election_timeout_ms = 600;
  unsigned heartbeat_ms = 60;
  unsigned snapshot_threshold = 0;  // 0 = the kv's default
  unsigned snapshot_trailing = 0;   // 0 = the kv's default
  std::string strategy = "rendezvous";
  int64_t ping_interval_ms = 100;
  int64_t lost_after_ms = 1500;
  int64_t backup_grace_ms = 200;
  bool fsync = true;  // replicated, libraft fsyncs its log regardless; single replica: RocksDB fsync
  std::string log_level = "info";
  bool metrics = false;  // each replica serves /metrics on a loopback port of its own (metrics_address)
  std::vector<std::string> extra_args;
  std::vector<std::vector<std::string>> replica_args;  // more arguments for replica i (by index), when given
};

class KvCluster {
 public:
  // Starts every replica in `dir` (dir/replica-<id>/...) and returns once each one listens. It does not wait for
  // a leader: see leader_index().
  KvCluster(const std::string& dir, KvClusterOptions options = {});
  ~KvCluster();
  KvCluster(const KvCluster&) = delete;
  KvCluster& operator=(const KvCluster&) = delete;

  size_t size() const { return replicas_.size(); }
  const std::string& token() const { return token_; }
  // The file every replica's --raft-secret-file names.
  std::string raft_secret_file() const { return dir_ + "/raft-secret"; }
  // The --peer flags of the original replicas, as each of them is started with.
  std::vector<std::string> peer_flags() const;
  uint64_t raft_id(size_t i) const { return replicas_.at(i).id; }
  const std::string& client_address(size_t i) const { return replicas_.at(i).client_address; }
  const std::string& raft_address(size_t i) const { return replicas_.at(i).raft_address; }
  // host:port of replica i's /metrics (empty unless KvClusterOptions::metrics).
  const std::string& metrics_address(size_t i) const { return replicas_.at(i).metrics_address; }
  std::string data_dir(size_t i) const;
  std::string log_path(size_t i) const;
  std::string log_text(size_t i) const;
  bool log_contains(size_t i, const std::string& needle) const;
  size_t log_count(size_t i, const std::string& needle) const;  // occurrences in replica i's log file
  std::vector<std::string> endpoints() const;  // every replica's client address

  // The process of replica i is alive (not killed, maybe frozen).
  bool running(size_t i);
  bool frozen(size_t i) const { return replicas_.at(i).frozen; }
  pid_t pid(size_t i) const;

  // `status` of replica i (answered locally by any replica), or nullopt if it does not answer within `timeout`.
  std::optional<rpc::Json> status(size_t i, std::chrono::milliseconds timeout = std::chrono::milliseconds(500));
  // The replica every live, unfrozen replica agrees is the leader (it says "leader", the others name it), or -1
  // after `timeout`.
  int leader_index(std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // Raft state of replica i ("leader", "follower", ...) and its term, from status(); empty / 0 if it doesn't answer.
  std::pair<std::string, uint64_t> raft_state(size_t i);
  // applied_index of replica i's state machine (0 if it doesn't answer).
  uint64_t applied_index(size_t i);

  void kill9(size_t i);
  void sigstop(size_t i);
  void sigcont(size_t i);
  void terminate(size_t i);  // SIGTERM and wait
  // Starts replica i again on the same data dir and ports (kills it first if it still runs).
  void restart(size_t i);
  // Kills replica i, deletes its data dir (RocksDB and Raft log) and starts it empty.
  void wipe(size_t i);
  // Starts a new replica (next id, fresh ports) with --join and every current peer plus itself; it is not a
  // member until someone runs cluster.add. Returns its index.
  size_t start_joining_replica();

  // A client of the whole cluster (every endpoint; follows not_leader redirects).
  std::unique_ptr<rpc::Client> client(const std::string& name = "test",
                                      std::chrono::milliseconds call_timeout = std::chrono::seconds(10)) const;
  // A client of replica i only.
  std::unique_ptr<rpc::Client> client_of(size_t i, const std::string& name = "test",
                                         std::chrono::milliseconds call_timeout = std::chrono::seconds(10)) const;

 private:
  struct Replica {
    uint64_t id = 0;
    std::string raft_address;
    std::string client_address;
    std::string metrics_address;
    bool join = false;
    bool frozen = false;
    std::unique_ptr<Process> process;
    std::unique_ptr<rpc::Client> status_client;
  };

  void start(size_t i);
  std::vector<std::string> argv(size_t i) const;
  std::string replica_dir(size_t i) const;

  std::string dir_;
  KvClusterOptions options_;
  std::string token_;
  std::vector<Replica> replicas_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bound with port 0, then released).
int free_loopback_port();

}  // namespace gasoline::testing
