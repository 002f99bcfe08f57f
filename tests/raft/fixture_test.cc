// Deterministic tests on libraft's in-memory cluster fixture (raft/fixture.h), running the shipped raft core
// (kv/raft/raft_core.h, the code gasoline-kv's RaftLog drives from its libuv loop) over a real store::StateMachine
// (RocksDB in a temp dir) on every fixture server: the leader computes each entry's effects when it proposes (at
// raft_last_index + 1, after a barrier when its term is new), frames them and answers the proposals when they
// commit; every replica applies at raft_last_applied + 1; async snapshots and restores. The test only wraps the
// core's FSM to see what each replica applied, and its hooks to see what was proposed and answered. The fixture's
// time is simulated (the core's clocks read it) and its scheduling is deterministic, so every run of a seed is the
// same run.
//
// Each test checks a linearizable lease history: every applied entry is matched to the proposal that produced it
// (same bytes at the index it was computed for), and the proposals' commands and results, in log order, are
// replayed through a model of leases (at most one live lease per workflow; a commit is accepted only with the
// live (worker, token); a stale token is rejected); an acknowledged proposal must be what every replica applied
// at its index, answered with the results computed for it; and at the end every replica's RocksDB holds identical
// contents.
#include "kv/raft/entry_framing.h"
#include "kv/raft/libraft.h"
#include "kv/raft/raft_core.h"
#include "kv/store/state_machine.h"
#include "tests/support/process.h"

extern "C" {
#include <raft/fixture.h>
}

#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <iostream>
#include <map>
#include <random>
#include <set>

namespace gasoline {
namespace {

using store::Json;

constexpr int64_t kBaseTs = 1'700'000'000'000;

struct Harness;

// An entry a node proposed (RaftCore's on_proposed), and what became of it.
struct Pending {
  unsigned node = 0;
  std::vector<store::Command> commands;
  std::string payload;                  // the effects, as proposed
  std::vector<store::Result> results;   // what the leader computed
  raft_index index = 0;                 // where they were computed for
  bool fired = false;                   // libraft answered (RaftCore's on_proposal_done)
  int status = -1;                      // 0: committed
  std::vector<store::Result> answers;   // what the proposals' done callbacks got
};

// One call of Harness::propose: which entry its commands went into, or that they were refused before that.
struct Call {
  Pending* pending = nullptr;
  bool answered = false;
};

struct Node {
  Harness* h = nullptr;
  unsigned i = 0;
  std::unique_ptr<testing::TempDir> dir;
  std::unique_ptr<store::StateMachine> sm;
  std::unique_ptr<raft::RaftCore> core;  // after sm: it holds a pinned RocksDB snapshot while one is serialised
  raft_fsm shipped{};                    // the core's own FSM
  raft_fsm fsm{};                        // what the fixture calls: the shipped FSM, observed
  std::map<raft_index, std::string> payloads;  // every entry this node applied
  int restores = 0;
};

// An applied entry explained: the commands of the proposal it came from and the results computed for them.
struct AppliedEntry {
  std::vector<store::Command> commands;
  std::vector<store::Result> results;
};

std::string describe(const store::Result& r) {
  return std::string(store::to_string(r.code)) + " " + r.message + " " + r.body.dump();
}

struct Harness {
  raft_fixture f{};
  std::vector<std::unique_ptr<Node>> nodes;
  std::deque<std::unique_ptr<Pending>> pending;
  std::vector<std::string> errors;  // FSM-level failures (must stay empty)
  Call* proposing_ = nullptr;       // the call of propose() under way
  Pending* answering_ = nullptr;    // the entry whose done callbacks are running

  explicit Harness(unsigned n, unsigned snapshot_threshold = 0, unsigned snapshot_trailing = 0) {
    if (raft_fixture_initialize(&f) != 0) throw std::runtime_error("raft_fixture_initialize");
    for (unsigned i = 0; i < n; ++i) {
      auto node = std::make_unique<Node>();
      node->h = this;
      node->i = i;
      node->dir = std::make_unique<testing::TempDir>("gasoline-raft-fixture");
      node->sm = store::StateMachine::open(store::Options{node->dir->path() + "/state", false, store::Config{}});
      node->core = std::make_unique<raft::RaftCore>(f.servers[i].raft, *node->sm, core_options(i));
      node->core->bind(node->shipped);
      // Version 3 (async snapshots, as RaftLog) needs io->version >= 2 at raft_init, and the fixture's in-memory io
      // leaves its version unset although it implements async_work: init as version 2, then upgrade both.
      node->fsm.version = 2;
      node->fsm.data = node.get();
      node->fsm.apply = fsm_apply;
      node->fsm.snapshot = fsm_snapshot;
      node->fsm.snapshot_async = fsm_snapshot_async;
      node->fsm.snapshot_finalize = fsm_snapshot_finalize;
      node->fsm.restore = fsm_restore;
      if (raft_fixture_grow(&f, &node->fsm) != 0) throw std::runtime_error("raft_fixture_grow");
      f.servers[i].io.version = 2;
      node->fsm.version = 3;
      if (snapshot_threshold) {
        raft_set_snapshot_threshold(raft_fixture_get(&f, i), snapshot_threshold);
        raft_set_snapshot_trailing(raft_fixture_get(&f, i), snapshot_trailing);
      }
      nodes.push_back(std::move(node));
    }
    raft_configuration conf;
    raft_configuration_init(&conf);
    if (raft_fixture_configuration(&f, n, &conf) != 0 || raft_fixture_bootstrap(&f, &conf) != 0)
      throw std::runtime_error("raft fixture bootstrap");
    raft_configuration_close(&conf);
    if (raft_fixture_start(&f) != 0) throw std::runtime_error("raft_fixture_start");
  }

  ~Harness() { raft_fixture_close(&f); }

  raft::CoreOptions core_options(unsigned i) {
    raft::CoreOptions o;
    o.wall_ms = [this] { return ts(); };
    o.steady_now = [this] {
      return std::chrono::steady_clock::time_point(std::chrono::milliseconds(raft_fixture_time(&f)));
    };
    o.on_proposed = [this, i](const raft::Proposed& proposed) {
      auto p = std::make_unique<Pending>();
      p->node = i;
      p->commands = proposed.entry.commands;
      p->payload = std::string(proposed.payload);
      p->results = proposed.results;
      p->index = proposed.index;
      if (proposing_ && !proposing_->pending) proposing_->pending = p.get();
      pending.push_back(std::move(p));
    };
    o.on_proposal_done = [this, i](raft_index index, int status, size_t commands, double) {
      answering_ = nullptr;
      for (auto it = pending.rbegin(); it != pending.rend(); ++it)
        if ((*it)->node == i && (*it)->index == index && !(*it)->fired) {
          answering_ = it->get();
          break;
        }
      if (!answering_ || answering_->commands.size() != commands) {
        errors.push_back("node " + std::to_string(i) + ": libraft answered for " + std::to_string(index) +
                         ", which no proposal of this node awaits");
        answering_ = nullptr;
        return;
      }
      answering_->fired = true;
      answering_->status = status;
    };
    o.on_fatal = [this, i](int exit_code, raft_index index, const std::string& reason) {
      errors.push_back("node " + std::to_string(i) + ": would exit " + std::to_string(exit_code) + " at index " +
                       std::to_string(index) + ": " + reason);
    };
    return o;
  }

  unsigned n() const { return static_cast<unsigned>(nodes.size()); }
  struct raft* node_raft(unsigned i) { return raft_fixture_get(&f, i); }
  int64_t ts() { return kBaseTs + static_cast<int64_t>(raft_fixture_time(&f)); }

  // The stable leader the fixture sees, or -1.
  int leader() {
    unsigned l = raft_fixture_leader_index(&f);
    return l < n() ? static_cast<int>(l) : -1;
  }

  // Steps until the fixture sees a stable leader (after one step, so a leader that was just killed or cut off
  // no longer counts).
  bool elect_any(unsigned max_ms = 10000) {
    raft_fixture_step(&f);
    return raft_fixture_step_until_has_leader(&f, max_ms);
  }

  // A partition of node i: every message to or from it is dropped. (The fixture only recognises a stable leader
  // when the unreachable servers are "saturated", not "disconnected".)
  void isolate(unsigned i) {
    for (unsigned j = 0; j < n(); ++j)
      if (j != i) {
        raft_fixture_saturate(&f, i, j);
        raft_fixture_saturate(&f, j, i);
      }
  }
  // Lets a healed network settle (a rejoining replica with a higher term deposes the leader once), then waits
  // for a stable leader.
  bool settle(unsigned max_ms = 10000) {
    raft_fixture_step_until_elapsed(&f, 3000);
    return elect_any(max_ms);
  }
  void heal(unsigned i) {
    for (unsigned j = 0; j < n(); ++j)
      if (j != i) {
        raft_fixture_desaturate(&f, i, j);
        raft_fixture_desaturate(&f, j, i);
      }
  }

  // The done callback of every command proposed: the entry being answered collects what its proposals got.
  void answer(Call& call, const store::Result& r) {
    call.answered = true;
    if (!answering_) return;
    answering_->answers.push_back(r);
    if (answering_->answers.size() == answering_->commands.size()) answering_ = nullptr;
  }

  // Proposes the commands as one entry through node i's core, as RaftLog hands it a batch. A new leader's core
  // holds the batch until a barrier of its term commits, so this steps until the entry is proposed or refused.
  // Returns nullptr if node i did not propose it (not the leader, or it could not catch up).
  Pending* propose(unsigned i, std::vector<store::Command> commands, unsigned max_ms = 10000) {
    auto call = std::make_shared<Call>();
    std::deque<raft::RaftCore::Pending> batch;
    for (auto& c : commands)
      batch.push_back({std::move(c), [this, call](const store::Result& r) { answer(*call, r); }});
    proposing_ = call.get();
    nodes[i]->core->submit(batch);
    if (!call->pending && !call->answered)
      raft_fixture_step_until(
          &f,
          [](raft_fixture*, void* arg) {
            auto* c = static_cast<Call*>(arg);
            return c->pending != nullptr || c->answered;
          },
          call.get(), max_ms);
    proposing_ = nullptr;
    return call->pending;
  }

  bool wait(Pending* p, unsigned max_ms = 10000) {
    return raft_fixture_step_until(
        &f, [](raft_fixture*, void* arg) { return static_cast<Pending*>(arg)->fired; }, p, max_ms);
  }

  // Proposes on the current leader and waits: the acknowledged results, or nullopt if not acknowledged.
  std::optional<std::vector<store::Result>> run(std::vector<store::Command> commands, unsigned max_ms = 10000) {
    if (leader() < 0) elect_any(max_ms);
    int l = leader();
    if (l < 0) return std::nullopt;
    auto* p = propose(static_cast<unsigned>(l), std::move(commands));
    if (!p || !wait(p, max_ms) || p->status != 0) return std::nullopt;
    return acked_results(*p);
  }

  // What the client got for an acknowledged entry.
  std::vector<store::Result> acked_results(const Pending& p) { return p.answers; }

  // Node i's applied entries, each matched to the proposal it came from (the same bytes computed for that index).
  std::map<raft_index, AppliedEntry> history(unsigned i) {
    std::map<std::pair<raft_index, std::string_view>, const Pending*> by_entry;
    for (const auto& p : pending) by_entry[{p->index, p->payload}] = p.get();
    std::map<raft_index, AppliedEntry> out;
    for (const auto& [index, payload] : nodes[i]->payloads) {
      auto it = by_entry.find({index, payload});
      if (it == by_entry.end()) {
        errors.push_back("node " + std::to_string(i) + " applied an entry at " + std::to_string(index) +
                         " that no proposal computed for that index");
        continue;
      }
      out[index] = AppliedEntry{it->second->commands, it->second->results};
    }
    return out;
  }

  std::optional<store::Result> run1(store::Command c) {
    auto r = run({std::move(c)});
    if (!r || r->size() != 1) return std::nullopt;
    return (*r)[0];
  }

  // Heals every fault and steps until every replica applied everything the leader has.
  bool converge(unsigned max_ms = 30000) {
    for (unsigned i = 0; i < n(); ++i) {
      if (!raft_fixture_alive(&f, i)) raft_fixture_revive(&f, i);
      for (unsigned j = 0; j < n(); ++j) {
        if (i == j) continue;
        raft_fixture_desaturate(&f, i, j);
        raft_fixture_reconnect(&f, i, j);
      }
    }
    // A replica that was cut off comes back with a higher term and deposes the leader once; let that settle.
    // An entry of the current term commits everything before it.
    bool committed = false;
    for (int attempt = 0; attempt < 5 && !committed; ++attempt) {
      settle();
      committed = run({store::PingBatch{}}, max_ms).has_value();
    }
    if (!committed) return false;
    raft_index last = raft_last_index(node_raft(static_cast<unsigned>(leader())));
    return raft_fixture_step_until_applied(&f, n(), last, max_ms);
  }

  std::map<std::string, std::string> dump(unsigned i) {
    std::map<std::string, std::string> out;
    auto failed = nodes[i]->sm->scan([&](std::string_view k, std::string_view v) {
      out.emplace(std::string(k), std::string(v));
      return true;
    });
    if (failed) throw std::runtime_error("scanning node " + std::to_string(i) + ": " + *failed);
    return out;
  }

  // --- the fixture's FSM: the core's, plus a record of what each replica applied and installed ---------------

  static int fsm_apply(raft_fsm* fsm, const raft_buffer* buf, void** result) {
    auto* n = static_cast<Node*>(fsm->data);
    raft_index index = raft_last_applied(n->h->node_raft(n->i)) + 1;
    std::string_view payload;
    std::string copy = raft::unframe_entry(buf->base, buf->len, payload) ? std::string(payload) : std::string();
    uint64_t before = n->sm->applied_index();
    int rv = n->shipped.apply(&n->shipped, buf, result);
    if (n->sm->applied_index() == index) {
      n->payloads[index] = std::move(copy);
    } else if (before >= index) {
      n->h->errors.push_back("node " + std::to_string(n->i) + ": index " + std::to_string(index) +
                             " applied twice (skipped as a replay)");
    }  // else the core refused the entry and said why through on_fatal
    return rv;
  }

  static int fsm_snapshot(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) {
    auto* n = static_cast<Node*>(fsm->data);
    return n->shipped.snapshot(&n->shipped, bufs, n_bufs);
  }

  static int fsm_snapshot_async(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) {
    auto* n = static_cast<Node*>(fsm->data);
    return n->shipped.snapshot_async(&n->shipped, bufs, n_bufs);
  }

  static int fsm_snapshot_finalize(raft_fsm* fsm, raft_buffer* bufs[], unsigned* n_bufs) {
    auto* n = static_cast<Node*>(fsm->data);
    return n->shipped.snapshot_finalize(&n->shipped, bufs, n_bufs);
  }

  static int fsm_restore(raft_fsm* fsm, raft_buffer* buf) {
    auto* n = static_cast<Node*>(fsm->data);
    uint64_t before = n->sm->applied_index();
    int rv = n->shipped.restore(&n->shipped, buf);
    if (n->sm->applied_index() > before) ++n->restores;
    return rv;
  }
};

// --- the lease-history model ---------------------------------------------------------------------------------

struct ModelWorkflow {
  std::string holder;
  uint64_t token = 0;
  uint64_t steps = 0;
  bool terminal = false;
  std::string last_worker;
  uint64_t last_token = 0;
};

// Replays every applied command in log order through a model of leases and returns the violations. `applied` maps
// an index to the commands and results of the entry one replica applied there.
std::vector<std::string> check_lease_history(const std::map<raft_index, AppliedEntry>& applied,
                                             std::map<std::string, ModelWorkflow>& model) {
  std::vector<std::string> v;
  for (const auto& [index, entry] : applied) {
    const auto& rs = entry.results;
    if (rs.size() != entry.commands.size()) {
      v.push_back("index " + std::to_string(index) + ": result count differs from command count");
      continue;
    }
    for (size_t c = 0; c < entry.commands.size(); ++c) {
      const auto& r = rs[c];
      std::string where = "index " + std::to_string(index) + " command " + std::to_string(c) + ": ";
      if (auto* d = std::get_if<store::Dispatch>(&entry.commands[c])) {
        if (r.ok()) model.try_emplace(d->spec.id);
      } else if (auto* l = std::get_if<store::LeaseBatch>(&entry.commands[c])) {
        if (!r.ok()) continue;
        for (const auto& g : r.body.value("granted", Json::array())) {
          auto id = g.value("id", "");
          auto& w = model[id];
          uint64_t token = g.value("token", uint64_t{0});
          if (!w.holder.empty())
            v.push_back(where + "second live lease on '" + id + "' for '" + l->worker_id + "' while '" + w.holder +
                        "' holds token " + std::to_string(w.token));
          if (w.terminal) v.push_back(where + "lease granted on ended workflow '" + id + "'");
          if (token != store::lease_token(index, c)) v.push_back(where + "token is not (index, position)");
          w.holder = l->worker_id;
          w.token = token;
        }
      } else if (auto* cm = std::get_if<store::CommitStep>(&entry.commands[c])) {
        auto& w = model[cm->workflow_id];
        bool live = !w.holder.empty() && w.holder == cm->worker_id && w.token == cm->token;
        if (r.ok() && r.body.value("duplicate", false)) {
          if (w.last_worker != cm->worker_id || w.last_token != cm->token)
            v.push_back(where + "duplicate acknowledged for a commit that never applied on '" + cm->workflow_id + "'");
        } else if (r.ok()) {
          if (!live)
            v.push_back(where + "commit of '" + cm->workflow_id + "' accepted with stale token " +
                        std::to_string(cm->token) + " (live: '" + w.holder + "' " + std::to_string(w.token) + ")");
          ++w.steps;
          w.holder.clear();
          w.token = 0;
          w.last_worker = cm->worker_id;
          w.last_token = cm->token;
          w.terminal = cm->step.kind == store::StepKind::kComplete || cm->step.kind == store::StepKind::kFail;
        } else if (r.code == store::Code::kConflict) {
          if (live) v.push_back(where + "commit of '" + cm->workflow_id + "' rejected with the live token");
        }
      } else if (auto* rc = std::get_if<store::Reclaim>(&entry.commands[c])) {
        if (!r.ok() || r.body.value("alive", true)) continue;
        std::set<std::string> released;
        for (const auto& id : r.body.value("released", Json::array())) released.insert(id.get<std::string>());
        for (auto& [id, w] : model) {
          if (w.holder == rc->worker_id && !released.count(id))
            v.push_back(where + "reclaim of '" + rc->worker_id + "' kept its lease on '" + id + "'");
          if (released.count(id)) {
            if (w.holder != rc->worker_id) v.push_back(where + "reclaim released '" + id + "' it did not hold");
            w.holder.clear();
            w.token = 0;
          }
        }
      }
    }
  }
  return v;
}

// Every check that ends a fixture test.
void expect_consistent(Harness& h) {
  // State machine safety: every replica applied the same entry at every common index.
  for (unsigned i = 1; i < h.n(); ++i) {
    for (const auto& [index, payload] : h.nodes[i]->payloads) {
      auto it = h.nodes[0]->payloads.find(index);
      if (it == h.nodes[0]->payloads.end()) continue;
      EXPECT_EQ(it->second, payload) << "node " << i << " applied another entry at " << index;
    }
  }
  // Every acknowledged proposal is what the replicas applied at its index (so its results are the ones that count).
  for (const auto& p : h.pending) {
    if (!p->fired || p->status != 0) continue;
    ASSERT_EQ(p->answers.size(), p->results.size()) << "index " << p->index << ": answers missing";
    for (size_t k = 0; k < p->answers.size(); ++k)
      EXPECT_EQ(describe(p->answers[k]), describe(p->results[k])) << "index " << p->index << " command " << k;
    for (const auto& node : h.nodes) {
      auto it = node->payloads.find(p->index);
      if (it == node->payloads.end()) continue;
      EXPECT_EQ(it->second, p->payload) << "index " << p->index << " acknowledged for another entry";
    }
  }
  // The linearizable lease history, on the replica that applied the longest history from index 1.
  unsigned best = 0;
  for (unsigned i = 0; i < h.n(); ++i)
    if (h.nodes[i]->restores == 0 && h.nodes[i]->payloads.size() > h.nodes[best]->payloads.size()) best = i;
  std::map<std::string, ModelWorkflow> model;
  auto violations = check_lease_history(h.history(best), model);
  EXPECT_TRUE(violations.empty()) << ::testing::PrintToString(violations);
  // The model agrees with the state.
  for (const auto& [id, w] : model) {
    auto wf = h.nodes[best]->sm->workflow(id);
    ASSERT_TRUE(wf) << id;
    EXPECT_EQ(wf->steps, w.steps) << id;
    EXPECT_EQ(wf->lease_worker, w.holder) << id;
    EXPECT_EQ(wf->lease_token, w.token) << id;
  }
  // FSM-level failures, and applied entries no proposal explains (history() adds those).
  EXPECT_TRUE(h.errors.empty()) << ::testing::PrintToString(h.errors);
  // Convergence: identical RocksDB contents everywhere.
  auto reference = h.dump(0);
  EXPECT_GT(reference.size(), 2u);
  for (unsigned i = 1; i < h.n(); ++i) EXPECT_TRUE(h.dump(i) == reference) << "node " << i << " diverged";
}

store::Command ping(std::vector<std::string> workers) {
  store::PingBatch b;
  for (auto& w : workers) b.pings.push_back(store::Ping{"p", w, w, "v1", {}, 0.0, 8});
  return b;
}
store::Command dispatch(const std::string& id) {
  store::DispatchSpec s;
  s.id = id;
  s.pool = "p";
  s.name = "wf";
  return store::Dispatch{s};
}
store::Command commit(const std::string& id, const std::string& worker, uint64_t token, bool complete) {
  store::CommitStep c;
  c.workflow_id = id;
  c.worker_id = worker;
  c.token = token;
  c.step.kind = complete ? store::StepKind::kComplete : store::StepKind::kContinue;
  return c;
}

// Leases `ids` for `worker` at their current wake entries on the leader; returns id → token of the grants.
std::map<std::string, uint64_t> lease(Harness& h, const std::string& worker, const std::vector<std::string>& ids) {
  int l = h.leader();
  if (l < 0) return {};
  store::LeaseBatch b{"p", worker, {}};
  for (const auto& id : ids) {
    auto w = h.nodes[static_cast<unsigned>(l)]->sm->workflow(id);
    if (w && w->wake_ts >= 0) b.items.push_back(store::LeaseItem{id, w->wake_ts});
  }
  auto r = h.run1(b);
  std::map<std::string, uint64_t> out;
  if (!r || !r->ok()) return out;
  for (const auto& g : r->body.value("granted", Json::array())) out[g.value("id", "")] = g.value("token", uint64_t{0});
  return out;
}

// --- tests -----------------------------------------------------------------------------------------------------

// The lease model must be able to fail: a forged applied history with a second live lease and a commit accepted
// with a stale token.
TEST(RaftFixture, LeaseModelRejectsABadHistory) {
  std::map<raft_index, AppliedEntry> applied;
  auto add = [&](raft_index index, store::Command c, store::Result r) {
    applied[index] = AppliedEntry{{std::move(c)}, {std::move(r)}};
  };
  auto granted = [](raft_index index) {
    return store::Result{store::Code::kOk, "",
                         Json{{"granted", Json::array({Json{{"id", "w"}, {"token", store::lease_token(index, 0)}}})},
                              {"conflicts", 0}}};
  };
  add(1, dispatch("w"), store::Result{store::Code::kOk, "", Json{{"id", "w"}, {"existing", false}}});
  add(2, store::LeaseBatch{"p", "a", {{"w", kBaseTs}}}, granted(2));
  add(3, store::LeaseBatch{"p", "b", {{"w", kBaseTs}}}, granted(3));  // second live lease
  add(4, commit("w", "a", store::lease_token(2, 0), false),           // stale token accepted
      store::Result{store::Code::kOk, "", Json{{"duplicate", false}}});
  std::map<std::string, ModelWorkflow> model;
  auto v = check_lease_history(applied, model);
  ASSERT_EQ(v.size(), 2u) << ::testing::PrintToString(v);
  EXPECT_NE(v[0].find("second live lease"), std::string::npos) << v[0];
  EXPECT_NE(v[1].find("stale token"), std::string::npos) << v[1];
}

// Group commit: RaftLog hands the core every command queued since the last round, and they share one entry. Each
// caller must get its own command's result, in order, whatever else shared the entry.
TEST(RaftFixture, EachCommandOfAGroupCommittedEntryGetsItsOwnResult) {
  Harness h(3);
  raft_fixture_elect(&h.f, 0);
  ASSERT_EQ(h.leader(), 0);
  auto r = h.run({ping({"a", "b"}), dispatch("g1"), dispatch("g2"), dispatch("g3")});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 4u);
  EXPECT_TRUE((*r)[0].ok()) << describe((*r)[0]);
  for (size_t k = 1; k < 4; ++k) {
    ASSERT_TRUE((*r)[k].ok()) << describe((*r)[k]);
    EXPECT_EQ((*r)[k].body.value("id", ""), "g" + std::to_string(k)) << describe((*r)[k]);
  }
  auto a = lease(h, "a", {"g1", "g2", "g3"});
  ASSERT_EQ(a.size(), 3u);
  // One entry: a's commit of g1, b's commit of g2 with a token it never held, a's commit of g3.
  r = h.run({commit("g1", "a", a["g1"], true), commit("g2", "b", a["g2"], true), commit("g3", "a", a["g3"], false)});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 3u);
  EXPECT_TRUE((*r)[0].ok()) << describe((*r)[0]);
  EXPECT_EQ((*r)[1].code, store::Code::kConflict) << describe((*r)[1]);
  EXPECT_TRUE((*r)[2].ok()) << describe((*r)[2]);
  ASSERT_TRUE(h.converge());
  expect_consistent(h);
}

TEST(RaftFixture, PartitionedLeaderCannotCommitAndItsLeasesAreFencedAfterFailover) {
  Harness h(3);
  raft_fixture_elect(&h.f, 0);
  ASSERT_EQ(h.leader(), 0);
  ASSERT_TRUE(h.run1(ping({"a", "b"})));
  for (auto id : {"w1", "w2", "w3"}) ASSERT_TRUE(h.run1(dispatch(id)));
  auto a = lease(h, "a", {"w1", "w2", "w3"});
  ASSERT_EQ(a.size(), 3u);
  // a completes w3 normally.
  auto r = h.run1(commit("w3", "a", a["w3"], true));
  ASSERT_TRUE(r && r->ok()) << (r ? describe(*r) : "no answer");

  // Partition the leader from both followers (messages both ways are dropped); a's commit of w1 reaches only the
  // old leader.
  h.isolate(0);
  auto* stranded = h.propose(0, {commit("w1", "a", a["w1"], true)});
  ASSERT_NE(stranded, nullptr);
  ASSERT_TRUE(raft_fixture_step_until_state_is(&h.f, 0, RAFT_FOLLOWER, 10000)) << "the old leader never stepped down";
  EXPECT_TRUE(stranded->fired);
  EXPECT_NE(stranded->status, 0) << "a write on a partitioned leader was acknowledged";
  ASSERT_TRUE(h.elect_any());
  ASSERT_NE(h.leader(), 0);

  // The new leader's time moves past a's lost_after (a stopped pinging; b keeps pinging): reclaim a.
  raft_fixture_step_until_elapsed(&h.f, 500);
  ASSERT_TRUE(h.run1(ping({"b"})));
  r = h.run1(store::Reclaim{"p", "a", 400});
  ASSERT_TRUE(r && r->ok()) << (r ? describe(*r) : "no answer");
  EXPECT_FALSE(r->body.value("alive", true));
  EXPECT_EQ(r->body["released"].size(), 2u);
  auto b = lease(h, "b", {"w1", "w2"});
  ASSERT_EQ(b.size(), 2u);
  EXPECT_GT(b["w1"], a["w1"]) << "tokens must grow across leaders";

  // Heal: the old leader's stranded entry is discarded, never applied anywhere.
  h.heal(0);
  ASSERT_TRUE(h.settle());
  // a retries its commit (same token) through the new leader: the stale token is rejected.
  r = h.run1(commit("w1", "a", a["w1"], true));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, store::Code::kConflict) << describe(*r);
  // b's commits are the ones that count, exactly once; b's retry is a duplicate.
  r = h.run1(commit("w1", "b", b["w1"], true));
  ASSERT_TRUE(r && r->ok()) << (r ? describe(*r) : "no answer");
  r = h.run1(commit("w1", "b", b["w1"], true));
  ASSERT_TRUE(r && r->ok());
  EXPECT_TRUE(r->body.value("duplicate", false));
  ASSERT_TRUE(h.converge());
  for (unsigned i = 0; i < h.n(); ++i) {
    auto w1 = h.nodes[i]->sm->workflow("w1");
    ASSERT_TRUE(w1);
    EXPECT_EQ(w1->steps, 1u) << "node " << i;
    EXPECT_EQ(w1->last_commit_worker, "b") << "node " << i;
  }
  expect_consistent(h);
}

TEST(RaftFixture, CrashedFollowerAndCrashedLeaderCatchUpThroughSnapshots) {
  Harness h(3, /*snapshot_threshold=*/16, /*snapshot_trailing=*/4);
  raft_fixture_elect(&h.f, 0);
  ASSERT_TRUE(h.run1(ping({"a", "b"})));
  raft_fixture_kill(&h.f, 2);
  int n = 0;
  auto round = [&](const std::string& worker) {
    std::string id = "x" + std::to_string(n++);
    if (!h.run1(dispatch(id))) return false;
    auto g = lease(h, worker, {id});
    if (g.size() != 1) return false;
    auto r = h.run1(commit(id, worker, g[id], true));
    return r && r->ok();
  };
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(round("a")) << i;
  // The crashed follower comes back after the leader compacted its log: it must install a snapshot.
  raft_fixture_revive(&h.f, 2);
  ASSERT_TRUE(raft_fixture_step_until_applied(&h.f, 2, raft_last_index(h.node_raft(0)), 20000));
  EXPECT_GE(h.nodes[2]->restores, 1) << "the follower caught up without a snapshot; the test lost its point";
  // Now crash the leader: a new one is elected, keeps serving, and the old one catches up when it comes back.
  raft_fixture_kill(&h.f, 0);
  ASSERT_TRUE(h.elect_any());
  ASSERT_NE(h.leader(), 0);
  ASSERT_TRUE(h.run1(ping({"a", "b"})));
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(round("b")) << i;
  raft_fixture_revive(&h.f, 0);
  ASSERT_TRUE(h.converge());
  EXPECT_GE(h.nodes[0]->restores, 1);
  for (int i = 0; i < n; ++i) {
    auto w = h.nodes[0]->sm->workflow("x" + std::to_string(i));
    ASSERT_TRUE(w) << i;
    EXPECT_EQ(w->status, store::Status::kComplete);
  }
  expect_consistent(h);
}

// Seeded random faults: dropped messages (saturated links), partitions, crashed and revived replicas, while
// workers ping, lease, commit (with their current tokens and with stale ones) and are reclaimed.
class RaftFixtureRandom : public ::testing::TestWithParam<unsigned> {};

TEST_P(RaftFixtureRandom, LeaseHistoryStaysLinearizable) {
  const unsigned seed = GetParam();
  const unsigned n = seed % 2 ? 5 : 3;
  // No snapshots here: the fixture's in-memory io of libraft 0.15 assumes its persisted entries start at index 1,
  // so a follower that installed a snapshot and then truncates its log reads past its entry array (valgrind:
  // invalid read in ioMethodTruncate's memcpy, then a crash in raft_fixture_close). Snapshots are covered by
  // CrashedFollowerAndCrashedLeaderCatchUpThroughSnapshots, whose schedule never truncates after an install.
  Harness h(n);
  std::mt19937 rng(seed);
  auto pick = [&](unsigned k) { return static_cast<unsigned>(rng() % k); };
  ASSERT_TRUE(h.elect_any());
  const std::vector<std::string> workers{"a", "b", "c"};
  ASSERT_TRUE(h.run1(ping(workers)));

  std::map<std::string, std::pair<std::string, uint64_t>> held;  // client view: wf → (worker, token)
  std::vector<std::tuple<std::string, std::string, uint64_t>> old_tokens;
  std::vector<Pending*> inflight;
  int next_wf = 0;
  size_t acked = 0;

  auto target = [&]() -> int {
    int l = h.leader();
    if (l >= 0) return l;
    for (unsigned i = 0; i < n; ++i)
      if (raft_fixture_alive(&h.f, i) && raft_state(h.node_raft(i)) == RAFT_LEADER) return static_cast<int>(i);
    return -1;
  };
  auto alive = [&] {
    unsigned k = 0;
    for (unsigned i = 0; i < n; ++i) k += raft_fixture_alive(&h.f, i);
    return k;
  };

  for (int iter = 0; iter < 400; ++iter) {
    unsigned action = pick(100);
    int t = target();
    if (action < 30 && t >= 0) {
      auto worker = workers[pick(3)];
      store::LeaseBatch b{"p", worker, {}};
      for (const auto& e : h.nodes[static_cast<unsigned>(t)]->sm->due("p", h.ts(), 3))
        b.items.push_back(store::LeaseItem{e.workflow_id, e.ts});
      if (!b.items.empty())
        if (auto* p = h.propose(static_cast<unsigned>(t), {b})) inflight.push_back(p);
    } else if (action < 55 && t >= 0 && (!held.empty() || !old_tokens.empty())) {
      std::string id, worker;
      uint64_t token;
      if (!old_tokens.empty() && (held.empty() || pick(4) == 0)) {
        std::tie(id, worker, token) = old_tokens[pick(static_cast<unsigned>(old_tokens.size()))];
      } else {
        auto it = std::next(held.begin(), pick(static_cast<unsigned>(held.size())));
        id = it->first;
        std::tie(worker, token) = it->second;
      }
      if (auto* p = h.propose(static_cast<unsigned>(t), {commit(id, worker, token, pick(3) == 0)}))
        inflight.push_back(p);
    } else if (action < 65 && t >= 0) {
      if (auto* p = h.propose(static_cast<unsigned>(t), {dispatch("r" + std::to_string(next_wf++))}))
        inflight.push_back(p);
    } else if (action < 75 && t >= 0) {
      std::vector<std::string> some;
      for (const auto& w : workers)
        if (pick(2)) some.push_back(w);
      if (auto* p = h.propose(static_cast<unsigned>(t), {ping(some)})) inflight.push_back(p);
    } else if (action < 79 && t >= 0) {
      if (auto* p = h.propose(static_cast<unsigned>(t), {store::Reclaim{"p", workers[pick(3)], 300}}))
        inflight.push_back(p);
    } else if (action < 86) {
      unsigned i = pick(n), j = pick(n);
      if (i != j) {
        if (raft_fixture_saturated(&h.f, i, j)) {
          raft_fixture_desaturate(&h.f, i, j);
        } else {
          raft_fixture_saturate(&h.f, i, j);
        }
      }
    } else if (action < 92) {
      unsigned i = pick(n);
      if (raft_fixture_alive(&h.f, i)) {
        if (alive() > n / 2 + 1) raft_fixture_kill(&h.f, i);
      } else {
        raft_fixture_revive(&h.f, i);
      }
    } else if (action < 95) {
      // Partition the leader away for a while.
      if (t >= 0) h.isolate(static_cast<unsigned>(t));
    } else {
      // Heal every dropped link.
      for (unsigned i = 0; i < n; ++i) h.heal(i);
    }
    raft_fixture_step_n(&h.f, 1 + pick(40));
    // The client learns its acknowledged outcomes.
    for (auto it = inflight.begin(); it != inflight.end();) {
      auto* p = *it;
      if (!p->fired) {
        ++it;
        continue;
      }
      if (p->status == 0) {
        ++acked;
        auto rs = h.acked_results(*p);
        if (rs.size() == 1) {
          if (auto* b = std::get_if<store::LeaseBatch>(&p->commands[0])) {
            for (const auto& g : rs[0].body.value("granted", Json::array()))
              held[g.value("id", "")] = {b->worker_id, g.value("token", uint64_t{0})};
          } else if (auto* c = std::get_if<store::CommitStep>(&p->commands[0])) {
            auto hit = held.find(c->workflow_id);
            if (hit != held.end() && hit->second == std::make_pair(c->worker_id, c->token)) {
              held.erase(hit);
              old_tokens.emplace_back(c->workflow_id, c->worker_id, c->token);
            }
          }
        }
      }
      it = inflight.erase(it);
    }
  }
  // Whatever the network did, it heals; then every replica holds the same state.
  ASSERT_TRUE(h.converge(60000));
  expect_consistent(h);
  // The run exercised what it claims to: leader changes, grants, accepted commits, rejected stale tokens.
  size_t grants = 0, commits_ok = 0, stale_rejected = 0;
  unsigned l = static_cast<unsigned>(h.leader());
  for (const auto& [index, entry] : h.history(l)) {
    const auto& rs = entry.results;
    for (size_t c = 0; c < rs.size(); ++c) {
      if (std::holds_alternative<store::LeaseBatch>(entry.commands[c]))
        grants += rs[c].body.value("granted", Json::array()).size();
      if (std::holds_alternative<store::CommitStep>(entry.commands[c])) {
        commits_ok += rs[c].ok() && !rs[c].body.value("duplicate", false);
        stale_rejected += rs[c].code == store::Code::kConflict;
      }
    }
  }
  raft_term term = h.node_raft(l)->current_term;
  std::cout << "seed " << seed << ": " << n << " replicas, term " << term << ", " << acked << " acknowledged, "
            << grants << " grants, " << commits_ok << " commits, " << stale_rejected << " stale tokens rejected\n";
  EXPECT_GT(acked, 50u) << "too little was acknowledged for the run to mean anything";
  EXPECT_GE(term, 3u) << "no leader change happened";
  EXPECT_GT(grants, 10u);
  EXPECT_GT(commits_ok, 5u);
  EXPECT_GT(stale_rejected, 0u);
}

INSTANTIATE_TEST_SUITE_P(Seeds, RaftFixtureRandom, ::testing::Values(1u, 2u, 3u, 4u, 5u, 6u));

}  // namespace
}  // namespace gasoline
