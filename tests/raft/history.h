#pragma once
// A client-side history of the dispatch → pull (lease) → commit protocol, and a checker of what a replicated kv
// must guarantee whatever happens to its replicas:
//   (a) no acknowledged write is lost: every acked dispatch exists at the end, every acked commit is reflected
//       (final steps > its steps_before; a workflow whose "complete" commit was acked is complete);
//   (b) at most one live lease per workflow: two leases of one workflow whose commits were both acknowledged
//       cannot have been live at the same time (the one granted first, i.e. the lower token, must have committed
//       before the other was granted: its commit cannot have been sent only after the other grant was seen);
//       one (workflow, token) is never granted to two workers; a lease is never granted on state that misses a
//       step whose commit was acknowledged before the pull was even sent (a stale grant);
//   (c) exactly one commit per step: no two acknowledged commits with different tokens for the same
//       (workflow, steps_before).
// Pure: no I/O, no clock. Times are whatever monotonic unit the recorder uses (microseconds by convention).
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace gasoline::raft_test {

struct DispatchOp {
  std::string workflow_id;
  int64_t invoke = 0;  // first attempt sent
  int64_t ack = 0;     // acknowledged (meaningful when acked)
  bool acked = false;
};

struct LeaseOp {
  std::string workflow_id;
  std::string worker;
  uint64_t token = 0;
  uint64_t steps_before = 0;  // the workflow's committed steps in the granted task
  int64_t pull_invoke = 0;
  int64_t pull_ack = 0;
};

enum class CommitOutcome { kAcked, kConflict, kUnknown };

struct CommitOp {
  std::string workflow_id;
  std::string worker;
  uint64_t token = 0;
  uint64_t steps_before = 0;
  bool complete = false;  // the step completes the workflow
  int64_t invoke = 0;     // first attempt sent
  int64_t ack = 0;        // final answer received
  CommitOutcome outcome = CommitOutcome::kUnknown;
  bool duplicate = false;  // acked as the retry of a commit that had applied already
};

struct FinalWorkflow {
  bool exists = false;
  uint64_t steps = 0;
  std::string status;
};

// Thread-safe recorder.
class History {
 public:
  void dispatch(DispatchOp op);
  void lease(LeaseOp op);
  void commit(CommitOp op);

  std::vector<DispatchOp> dispatches() const;
  std::vector<LeaseOp> leases() const;
  std::vector<CommitOp> commits() const;
  // Ids of every workflow the history mentions (the final state to read).
  std::vector<std::string> workflow_ids() const;
  size_t acked_writes() const;  // acked dispatches + acked commits

 private:
  mutable std::mutex mu_;
  std::vector<DispatchOp> dispatches_;
  std::vector<LeaseOp> leases_;
  std::vector<CommitOp> commits_;
};

struct CheckResult {
  size_t lost_acknowledged_writes = 0;  // (a)
  size_t lease_violations = 0;          // (b)
  size_t double_commits = 0;            // (c)
  size_t acked_dispatches = 0;
  size_t acked_commits = 0;
  size_t leases = 0;
  std::vector<std::string> violations;  // human-readable, at most ~50 kept
  bool ok() const { return lost_acknowledged_writes == 0 && lease_violations == 0 && double_commits == 0; }
  std::string summary() const;
};

CheckResult check(const std::vector<DispatchOp>& dispatches, const std::vector<LeaseOp>& leases,
                  const std::vector<CommitOp>& commits, const std::map<std::string, FinalWorkflow>& final_state);
inline CheckResult check(const History& h, const std::map<std::string, FinalWorkflow>& final_state) {
  return check(h.dispatches(), h.leases(), h.commits(), final_state);
}

}  // namespace gasoline::raft_test
