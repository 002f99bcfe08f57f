#include "tests/raft/history.h"

#include <algorithm>
#include <set>
#include <sstream>

namespace gasoline::raft_test {

void History::dispatch(DispatchOp op) {
  std::lock_guard lock(mu_);
  dispatches_.push_back(std::move(op));
}
void History::lease(LeaseOp op) {
  std::lock_guard lock(mu_);
  leases_.push_back(std::move(op));
}
void History::commit(CommitOp op) {
  std::lock_guard lock(mu_);
  commits_.push_back(std::move(op));
}
std::vector<DispatchOp> History::dispatches() const {
  std::lock_guard lock(mu_);
  return dispatches_;
}
std::vector<LeaseOp> History::leases() const {
  std::lock_guard lock(mu_);
  return leases_;
}
std::vector<CommitOp> History::commits() const {
  std::lock_guard lock(mu_);
  return commits_;
}
std::vector<std::string> History::workflow_ids() const {
  std::lock_guard lock(mu_);
  std::set<std::string> ids;
  for (const auto& d : dispatches_) ids.insert(d.workflow_id);
  for (const auto& l : leases_) ids.insert(l.workflow_id);
  for (const auto& c : commits_) ids.insert(c.workflow_id);
  return {ids.begin(), ids.end()};
}
size_t History::acked_writes() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& d : dispatches_) n += d.acked;
  for (const auto& c : commits_) n += c.outcome == CommitOutcome::kAcked;
  return n;
}

std::string CheckResult::summary() const {
  std::ostringstream out;
  out << (ok() ? "history OK" : "history VIOLATED") << ": " << acked_dispatches << " acked dispatches, " << leases
      << " leases, " << acked_commits << " acked commits; lost_acknowledged_writes=" << lost_acknowledged_writes
      << " lease_violations=" << lease_violations << " double_commits=" << double_commits;
  for (const auto& v : violations) out << "\n  - " << v;
  return out.str();
}

namespace {

void note(CheckResult& r, const std::string& text) {
  if (r.violations.size() < 50) r.violations.push_back(text);
}

}  // namespace

CheckResult check(const std::vector<DispatchOp>& dispatches, const std::vector<LeaseOp>& leases,
                  const std::vector<CommitOp>& commits, const std::map<std::string, FinalWorkflow>& final_state) {
  CheckResult r;
  r.leases = leases.size();
  auto final_of = [&](const std::string& id) -> FinalWorkflow {
    auto it = final_state.find(id);
    return it == final_state.end() ? FinalWorkflow{} : it->second;
  };

  // (a) every acknowledged dispatch exists.
  for (const auto& d : dispatches) {
    if (!d.acked) continue;
    ++r.acked_dispatches;
    if (!final_of(d.workflow_id).exists) {
      ++r.lost_acknowledged_writes;
      note(r, "lost dispatch: '" + d.workflow_id + "' was acknowledged but does not exist");
    }
  }

  // Acknowledged commits by workflow.
  std::map<std::string, std::vector<const CommitOp*>> acked;
  for (const auto& c : commits) {
    if (c.outcome != CommitOutcome::kAcked) continue;
    ++r.acked_commits;
    acked[c.workflow_id].push_back(&c);
  }

  for (const auto& [id, cs] : acked) {
    auto f = final_of(id);
    // (a) every acknowledged commit is reflected.
    for (const auto* c : cs) {
      if (!f.exists || f.steps <= c->steps_before) {
        ++r.lost_acknowledged_writes;
        note(r, "lost commit: '" + id + "' step " + std::to_string(c->steps_before) + " (token " +
                    std::to_string(c->token) + ") was acknowledged but the workflow has " +
                    (f.exists ? std::to_string(f.steps) + " steps" : std::string("vanished")));
      }
      if (c->complete && f.exists && f.status != "complete") {
        ++r.lost_acknowledged_writes;
        note(r, "lost completion: '" + id + "' completed with token " + std::to_string(c->token) +
                    " (acknowledged) but its status is '" + f.status + "'");
      }
    }
    // (c) one acknowledged commit per step.
    std::map<uint64_t, std::set<uint64_t>> tokens_by_step;
    for (const auto* c : cs) tokens_by_step[c->steps_before].insert(c->token);
    for (const auto& [step, tokens] : tokens_by_step) {
      if (tokens.size() < 2) continue;
      r.double_commits += tokens.size() - 1;
      std::string list;
      for (auto t : tokens) list += (list.empty() ? "" : ", ") + std::to_string(t);
      note(r, "double commit: '" + id + "' step " + std::to_string(step) + " was acknowledged for tokens " + list);
    }
  }

  // (b) leases.
  std::map<std::string, std::vector<const LeaseOp*>> leases_by_wf;
  for (const auto& l : leases) leases_by_wf[l.workflow_id].push_back(&l);
  for (auto& [id, ls] : leases_by_wf) {
    // One (workflow, token) is one grant: never to two workers.
    std::map<uint64_t, std::set<std::string>> holders;
    for (const auto* l : ls) holders[l->token].insert(l->worker);
    for (const auto& [token, ws] : holders) {
      if (ws.size() < 2) continue;
      ++r.lease_violations;
      note(r, "lease granted twice: '" + id + "' token " + std::to_string(token) + " went to " +
                  std::to_string(ws.size()) + " workers");
    }
    // Leases whose commit was acknowledged, by token.
    std::map<uint64_t, const CommitOp*> committed;
    auto it = acked.find(id);
    if (it != acked.end())
      for (const auto* c : it->second) committed[c->token] = c;
    std::map<uint64_t, const LeaseOp*> grant_of;
    for (const auto* l : ls) grant_of.emplace(l->token, l);
    for (auto a = committed.begin(); a != committed.end(); ++a) {
      for (auto b = std::next(a); b != committed.end(); ++b) {
        // Tokens grow with the log index of the grant, so `a` was granted first and must have been committed
        // (it was: acknowledged) before `b` was granted. The commit of `a` reached the log after it was sent and
        // `b`'s grant before its pull was answered, so "a's commit sent only after b's grant was seen" is
        // impossible in a correct system.
        auto gb = grant_of.find(b->first);
        if (gb == grant_of.end()) continue;
        if (a->second->invoke >= gb->second->pull_ack) {
          ++r.lease_violations;
          note(r, "overlapping leases: '" + id + "' token " + std::to_string(a->first) +
                      " committed (acknowledged) although token " + std::to_string(b->first) +
                      " had been granted before that commit was sent");
        }
      }
    }
    // A grant must see every step acknowledged before its pull was sent.
    for (const auto* l : ls) {
      if (it == acked.end()) break;
      for (const auto* c : it->second) {
        if (c->token == l->token) continue;
        if (c->ack < l->pull_invoke && l->steps_before <= c->steps_before) {
          ++r.lease_violations;
          note(r, "stale grant: '" + id + "' token " + std::to_string(l->token) + " was granted at step " +
                      std::to_string(l->steps_before) + " after step " + std::to_string(c->steps_before) +
                      " had been acknowledged (token " + std::to_string(c->token) + ")");
          break;
        }
      }
    }
  }
  return r;
}

}  // namespace gasoline::raft_test
