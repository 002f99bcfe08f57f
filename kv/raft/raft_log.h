#pragma once
// The replicated log: libraft 0.15 on a libuv loop thread of its own, with RocksDB (store::StateMachine) as the
// FSM. This is the thin shell around the loop-free RaftCore (kv/raft/raft_core.h), which proposes, applies and
// snapshots: requests from the Asio threads are handed over through a queue and uv_async_send, and everything
// raft_* runs on the loop thread (libraft takes no locks). Every pitfall of libraft 0.15 is handled in kv/raft
// (docs/design.md, "libraft 0.15 pitfalls"):
//   - commands are framed [u32 len][payload][zero pad] to a multiple of 8 bytes (kv/raft/entry_framing.h);
//   - peers are DNS names, resolved on every connect by our own transport (kv/raft/transport.h);
//   - snapshots are async (fsm v3), serialised from a RocksDB snapshot iterator, with a size cap;
//   - apply never fails (business failures are results) and skips indexes already applied (replay);
//   - the leader computes each entry's effects when it proposes (store::Speculation) and the log carries those
//     effects (store/effects.h), so followers write mutations instead of re-running every command;
//   - SIGPIPE is ignored by the binary.
#include "kv/raft/libraft_uv.h"
#include "kv/raft/peers.h"
#include "kv/raft/raft_core.h"
#include "kv/service/log.h"
#include "kv/store/state_machine.h"

#include <boost/asio/ssl/context.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace gasoline::raft {

struct RaftOptions {
  raft_id id = 0;
  std::vector<Peer> peers;   // the static bootstrap configuration, this replica included
  std::string dir;           // libraft's log and snapshots
  std::string bind_address;  // where the Raft transport listens; default: this peer's raft address
  // Every replica's shared Raft secret: peers prove they hold it before any Raft message (kv/raft/handshake.h).
  std::string secret;
  std::chrono::milliseconds handshake_timeout{5000};
  std::function<void(const std::string& reason)> on_handshake_refused;  // a metric; called on the loop thread
  // TLS between peers after the secret handshake (kv/raft/tls_pump.h); null: plaintext.
  std::shared_ptr<boost::asio::ssl::context> tls;
  std::function<void(const std::string& reason)> on_tls_failed;  // called from a pump thread
  // Metrics hooks, called on the loop thread. on_commit_latency: the leader's time from raft_apply of one entry to
  // its commit (quorum written). on_raft_state: after every state publication (every few ms), with whether the
  // leader this replica knows differs from the one it knew before (a leader change, counted once per replica).
  std::function<void(double seconds)> on_commit_latency;
  std::function<void(uint64_t term, bool has_leader, bool is_leader, bool leader_changed)> on_raft_state;
  // 500/50 ms: failover p99 0.97 s vs 3.7 s at libraft's 1000/100 (docs/benchmarks.md, Raft).
  unsigned election_timeout_ms = 500;
  unsigned heartbeat_timeout_ms = 50;
  unsigned snapshot_threshold = 16384;  // entries between snapshots
  unsigned snapshot_trailing = 4096;    // entries kept behind a snapshot for slow followers
  size_t snapshot_cap_bytes = 256u << 20;
  bool pre_vote = true;
  // A replica added later (gasctl cluster add) must not bootstrap: its own idea of the configuration at index 1
  // would differ from the cluster's with the same index and term. It starts empty and waits for the leader.
  bool join = false;
};

class RaftLog : public kv::Log, public kv::ClusterAdmin {
 public:
  using LeaderChange = std::function<void(bool is_leader)>;
  using Committed = std::function<void(size_t commands)>;

  RaftLog(store::StateMachine& sm, RaftOptions options, kv::AppliedFn on_applied, LeaderChange on_leader_change,
          Committed on_committed = {});
  ~RaftLog() override;

  // Starts the loop thread, bootstraps on first start and joins the cluster. Throws with libraft's message.
  void start();
  void stop();

  // Where the `done` callbacks of committed proposals run (by default on the loop thread, as kv::Log allows). The
  // kv hands them to its RPC threads: encoding and sending replies on the loop thread would delay the Raft I/O it
  // drives (the leader's own log write completes only when the loop gets to it). Set before start().
  void set_completion_executor(std::function<void(std::function<void()>)> executor) {
    core_.set_completion_executor(std::move(executor));
  }

  void propose(store::Command command, kv::Done done) override;
  void barrier(kv::Done done) override;
  bool is_leader() const override { return leader_; }
  std::string leader_address() const override;

  // Membership: add joins as a spare, catches up, then becomes a voter. One change at a time (libraft).
  void add_member(uint64_t id, const std::string& raft_address, const std::string& client_address,
                  kv::Done done) override;
  void remove_member(uint64_t id, kv::Done done) override;
  void transfer_leadership(uint64_t id, kv::Done done) override;
  nlohmann::json cluster_status() const override;

 private:
  using Pending = RaftCore::Pending;

  void run();
  void on_async();
  void publish_state();
  // Runs fn(done) on the loop thread; while stopping, answers done with `unavailable` instead, so every caller of
  // the Log interface gets its answer exactly once (kv/service/log.h).
  void post(kv::Done done, std::function<void(kv::Done)> fn);

  store::StateMachine& sm_;
  RaftOptions options_;
  LeaderChange on_leader_change_;
  Committed on_committed_;

  uv_loop_t loop_{};
  uv_async_t async_{};
  uv_timer_t tick_{};
  raft_uv_transport transport_{};
  raft_io io_{};
  raft_fsm fsm_{};
  struct raft raft_ {};
  RaftCore core_;  // after raft_, which it drives
  std::thread thread_;
  std::string self_address_;

  std::mutex mu_;
  std::deque<Pending> queue_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  bool started_ = false;

  std::atomic<bool> leader_{false};
  mutable std::mutex state_mu_;
  raft_id leader_id_ = 0;
  std::string leader_client_address_;
  nlohmann::json state_ = nlohmann::json::object();
};

}  // namespace gasoline::raft
