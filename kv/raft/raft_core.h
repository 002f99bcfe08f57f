#pragma once
// The loop-free half of the replicated log, as etcd's RawNode is to its Node: everything gasoline-kv does to and
// for one `struct raft` that needs no event loop, no thread and no clock of its own.
//   - proposals: a batch of commands becomes one effects entry, computed over store::Speculation at the index
//     libraft will append it at (after a barrier of its own term when the leader is new), framed, and answered
//     with the computed results once it commits;
//   - libraft's FSM (version 3): apply at raft_last_applied + 1 (effects entries, and command entries of older
//     logs), async snapshots from a RocksDB snapshot, restore.
// RaftLog (kv/raft/raft_log.h) drives it from its libuv loop thread; tests/raft/fixture_test.cc drives the same
// code on libraft's deterministic in-memory fixture. Every call must come from the thread that drives `raft`
// (libraft takes no locks), except the async snapshot, which libraft runs on a worker while the state is pinned.
#include "kv/raft/libraft.h"
#include "kv/service/log.h"
#include "kv/store/speculation.h"
#include "kv/store/state_machine.h"

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gasoline::raft {

// gasoline-kv's exit status when a committed entry or a snapshot cannot be read (a newer format, or corruption): the
// replica stops rather than diverge from the others.
inline constexpr int kExitUnreadableEntry = 65;
// ... and when its state can no longer follow the log (storage failed while applying): a restart replays.
inline constexpr int kExitStorageFailure = 70;

// An entry this replica proposed, as libraft appended it.
struct Proposed {
  raft_index index = 0;
  const store::Entry& entry;
  std::string_view payload;  // the effects entry, unframed
  const std::vector<store::Result>& results;
};

struct CoreOptions {
  size_t snapshot_cap_bytes = 256u << 20;
  // The clocks are given, not read, so the fixture test runs the core on its simulated time. wall_ms stamps
  // entries (never below the last applied or proposed stamp); steady_now times commits. Both are required.
  std::function<int64_t()> wall_ms;
  std::function<std::chrono::steady_clock::time_point()> steady_now;
  kv::AppliedFn on_applied;  // after an entry is applied here (not on the replay of one already stored)
  // libraft's answer for an entry this replica proposed: status 0 once it committed (`seconds` after it was
  // proposed), else libraft's error. Called before the proposals' `done`s.
  std::function<void(raft_index index, int status, size_t commands, double seconds)> on_proposal_done;
  // Lets the fixture test match every applied entry to the proposal that computed it; gasoline-kv leaves it unset.
  std::function<void(const Proposed&)> on_proposed;
  // The replica must stop (an entry or snapshot it cannot read, storage that failed), after the reason is logged.
  // Unset: std::_Exit(exit_code), which gasoline-kv relies on. The fixture test records the failure instead; the
  // core then leaves the entry unapplied and carries on, so the test can report it.
  std::function<void(int exit_code, raft_index index, const std::string& reason)> on_fatal;
};

class RaftCore {
 public:
  struct Pending {
    store::Command command;
    kv::Done done;
  };

  // `raft` may be uninitialised yet (raft_init needs the FSM first); it must outlive the core.
  RaftCore(struct raft& raft, store::StateMachine& sm, CoreOptions options);
  RaftCore(const RaftCore&) = delete;
  RaftCore& operator=(const RaftCore&) = delete;

  // Makes `fsm` this core's FSM (version 3) for raft_init.
  void bind(raft_fsm& fsm);
  // Where the `done`s of committed proposals run (by default inline, on the thread that drives raft).
  void set_completion_executor(std::function<void(std::function<void()>)> executor) {
    completions_ = std::move(executor);
  }

  // Proposes `batch` (taken whole) as entries of up to store::kMaxCommandsPerEntry commands. Each `done` runs
  // exactly once: with its computed result once the entry commits, else with why not (not the leader, lost
  // leadership, libraft's error). A new leader holds the batch until it has applied what it inherited.
  void submit(std::deque<Pending>& batch);
  // A raft_barrier answered through `done` (`what` names it in errors).
  void barrier(const char* what, kv::Done done);
  // Stopping: answers every proposal still held for a catch-up with `result`.
  void fail_held(const store::Result& result);
  // libraft closed: no callback of a proposal will come any more.
  void closed() { proposals_.clear(); }

 private:
  void catch_up();  // a barrier of this term, so a new leader applies what it inherited before speculating
  void propose_entry(std::deque<Pending>& batch);
  int apply(const raft_buffer* buf);
  int apply_effects(std::string_view payload, raft_index index);
  int apply_commands(std::string_view payload, raft_index index);
  int snapshot(raft_buffer* bufs[], unsigned* n);
  int snapshot_async(raft_buffer* bufs[], unsigned* n);
  int snapshot_finalize(raft_buffer* bufs[], unsigned* n);
  int restore(raft_buffer* buf);
  void stop_on_unreadable_entry(raft_index index, const std::string& reason);
  void exit_on_storage_failure(raft_index index, const std::exception& e);
  void fatal(int exit_code, raft_index index, const std::string& reason);

  struct raft& raft_;
  store::StateMachine& sm_;
  CoreOptions options_;
  std::function<void(std::function<void()>)> completions_;

  // What the leader computed for each entry it proposed, by index, until the entry's apply callback.
  struct Proposal {
    std::vector<store::Result> results;
    std::vector<store::Wake> wakes;
  };
  std::map<raft_index, Proposal> proposals_;
  store::Speculation speculation_;
  std::string effects_scratch_;  // decompressed effects of the entry being applied
  std::deque<Pending> waiting_;  // proposals held while a new leader catches up
  bool catching_up_ = false;
  int64_t last_proposed_ts_ = 0;
  std::unique_ptr<store::PinnedState> pinned_;  // the state an async snapshot is serialising
};

}  // namespace gasoline::raft
