// Integration tests for kv/store's StateMachine on a real RocksDB in temp dirs: persistence of the applied index,
// idempotent replay after a restart, the in-memory mirrors rebuilt on open, and the log entry codec.
// The expected state always comes from the pure apply_entry over a MapReader: the shell must add nothing to it
// but the meta keys.
#include <gtest/gtest.h>

#include <array>
#include <deque>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "kv/store/effects.h"
#include "kv/store/keys.h"
#include "kv/store/speculation.h"
#include "kv/store/state_machine.h"
#include "tests/support/process.h"

namespace gasoline::store {
namespace {

using State = std::map<std::string, std::string, std::less<>>;
using testing::TempDir;

constexpr int64_t kT0 = 1'700'000'000'000;
constexpr int64_t kForever = std::numeric_limits<int64_t>::max();

// --- builders --------------------------------------------------------------------------------------------

Ping ping_of(const std::string& worker, const std::string& pool) {
  Ping p;
  p.pool = pool;
  p.worker_id = worker;
  p.pod = worker + "-pod";
  p.version = "v1";
  p.workflows = {"a", "b"};
  p.cpu = 0.5;
  p.free_slots = 4;
  return p;
}

StepResult step_of(StepKind kind, int64_t ts, uint64_t r) {
  StepResult s;
  s.kind = kind;
  switch (kind) {
    case StepKind::kComplete: s.output = Json{{"r", r}}; break;
    case StepKind::kFail: s.error = "boom"; break;
    case StepKind::kSleep:
      // Absolute and relative (made absolute with the entry's time at apply) sleeps.
      if (r % 3 == 0) {
        s.for_ms = 1 + static_cast<int64_t>(r % 5000);
      } else {
        s.until = ts + static_cast<int64_t>(r % 5000);
      }
      break;
    case StepKind::kWait:
      s.signals = {"go"};
      if (r % 4 == 1) s.until = ts + 1 + static_cast<int64_t>(r % 5000);
      if (r % 4 == 3) s.timeout_ms = 1 + static_cast<int64_t>(r % 5000);
      break;
    case StepKind::kRetry:
      s.error = "again";
      s.backoff_base_ms = 50;
      s.backoff_max_ms = 400;
      break;
    case StepKind::kContinue: s.state = Json{{"i", r}}; break;
  }
  return s;
}

// Every entry the workload produced, with its index.
struct Log {
  std::vector<std::pair<uint64_t, Entry>> entries;
};

// A deterministic workload built against the pure state, so leases and commits carry real wake timestamps and
// tokens. `state` ends as the pure state after every entry.
Log make_workload(uint64_t seed, int n_entries, State& state, std::vector<Applied>* applied = nullptr) {
  std::mt19937_64 rng(seed);
  auto below = [&](uint64_t n) { return rng() % n; };
  const std::vector<std::pair<std::string, std::string>> workers = {
      {"w0", "p0"}, {"w1", "p0"}, {"w2", "p1"}, {"w3", "p1"}};
  Config config;
  Log log;
  int64_t ts = kT0;
  int next_id = 0;
  for (int e = 0; e < n_entries; ++e) {
    ts += static_cast<int64_t>(below(300));
    uint64_t index = static_cast<uint64_t>(e) + 1;
    std::vector<Workflow> leased;
    std::vector<std::string> live;
    std::vector<keys::WakeKey> due;
    std::vector<std::string> wake_keys;
    for (const auto& [k, v] : state) {
      if (k[0] == keys::kWorkflow) {
        auto w = workflow_from_json(decode(v));
        if (!w.lease_worker.empty()) leased.push_back(w);
        if (!is_terminal(w.status)) live.push_back(w.id);
      } else if (k[0] == keys::kWake) {
        wake_keys.push_back(k);
      }
    }
    for (const auto& k : wake_keys) {
      keys::WakeKey wk;
      if (keys::parse_wake(k, wk) && wk.ts <= ts) due.push_back(wk);
    }
    Entry entry;
    entry.ts = ts;
    size_t n = 1 + below(3);
    for (size_t i = 0; i < n; ++i) {
      const auto& [worker, pool] = workers[below(workers.size())];
      uint64_t r = below(100);
      if (r < 15) {
        PingBatch b;
        for (const auto& [id, p] : workers)
          if (below(3)) b.pings.push_back(ping_of(id, p));
        entry.commands.push_back(b);
      } else if (r < 35) {
        DispatchSpec s;
        uint64_t id = below(4) == 0 && next_id > 0 ? below(static_cast<uint64_t>(next_id)) : static_cast<uint64_t>(next_id++);
        s.id = "wf-" + std::to_string(id);
        s.pool = below(3) ? "p0" : "p1";
        s.name = below(2) ? "a" : "b";
        s.input = Json{{"n", e}};
        s.tags = Json{{"team", "x"}};
        if (below(5) == 0) s.run_at = ts + static_cast<int64_t>(below(4000));
        if (below(8) == 0) s.idempotency_key = "k" + std::to_string(below(5));
        entry.commands.push_back(Dispatch{s});
      } else if (r < 45 && !live.empty()) {
        entry.commands.push_back(SendSignal{SignalSpec{live[below(live.size())], below(2) ? "go" : "other",
                                                       Json{{"e", e}}, below(3) ? "" : "sig" + std::to_string(e)}});
      } else if (r < 48 && !live.empty()) {
        entry.commands.push_back(Cancel{live[below(live.size())], "test"});
      } else if (r < 70) {
        LeaseBatch b{pool, worker, {}};
        for (const auto& wk : due)
          if (wk.pool == pool && b.items.size() < 3 && below(2)) b.items.push_back({std::string(wk.workflow_id), wk.ts});
        entry.commands.push_back(b);
      } else if (r < 92 && !leased.empty()) {
        const auto& w = leased[below(leased.size())];
        CommitStep c;
        c.workflow_id = w.id;
        c.worker_id = w.lease_worker;
        c.token = below(10) ? w.lease_token : w.lease_token + 1;
        c.step = step_of(static_cast<StepKind>(below(6)), ts, rng());
        c.consumed_signal_seq = below(w.next_signal_seq + 1);
        if (below(6) == 0) {
          DispatchSpec child;
          child.id = "wf-" + std::to_string(next_id++);
          child.name = "a";
          child.notify_parent = true;
          c.children.push_back(child);
        }
        if (below(6) == 0 && !live.empty()) c.signals.push_back(SignalSpec{live[below(live.size())], "go", Json(1), ""});
        entry.commands.push_back(c);
      } else if (r < 95) {
        entry.commands.push_back(Drain{pool, worker});
      } else if (r < 97) {
        entry.commands.push_back(Leave{pool, worker});
      } else {
        entry.commands.push_back(Reclaim{pool, worker, 1000});
      }
    }
    MapReader reader(state);
    Applied out = apply_entry(reader, entry, index, config);
    apply_mutations(state, out.mutations);
    if (applied) applied->push_back(std::move(out));
    log.entries.emplace_back(index, std::move(entry));
  }
  return log;
}

// --- observing a StateMachine ----------------------------------------------------------------------------

State dump(StateMachine& sm) {
  State out;
  auto failed = sm.scan([&](std::string_view k, std::string_view v) {
    out.emplace(std::string(k), std::string(v));
    return true;
  });
  EXPECT_FALSE(failed) << *failed;
  return out;
}

// The data part of a dump: everything but the meta keys the shell adds.
State data_of(const State& all) {
  State out;
  for (const auto& [k, v] : all)
    if (k[0] != keys::kMeta) out.emplace(k, v);
  return out;
}

using DueTuple = std::tuple<std::string, int64_t, std::string, std::string>;  // pool, ts, id, name

// Everything the mirrors answer, in a comparable form.
struct Mirrors {
  std::vector<DueTuple> due;
  std::vector<DueTuple> future;
  std::vector<std::string> workers;  // encoded records
  std::vector<std::string> pools;
  std::map<std::string, size_t> wake_counts;
  bool operator==(const Mirrors&) const = default;
};

Mirrors mirrors_of(const StateMachine& sm, int64_t now) {
  Mirrors m;
  m.pools = sm.pools();
  for (const auto& pool : m.pools) {
    for (const auto& d : sm.due(pool, kForever, 1'000'000)) m.due.emplace_back(pool, d.ts, d.workflow_id, d.name);
    m.wake_counts[pool] = sm.wake_count(pool);
  }
  for (const auto& [pool, d] : sm.future_wakes(now)) m.future.emplace_back(pool, d.ts, d.workflow_id, d.name);
  std::sort(m.future.begin(), m.future.end());
  for (const auto& w : sm.workers("")) m.workers.push_back(encode(to_json(w)));
  std::sort(m.workers.begin(), m.workers.end());
  return m;
}

// What the mirrors must say, computed from the DB's keys alone.
Mirrors expected_mirrors(const State& state, int64_t now) {
  Mirrors m;
  std::set<std::string> pools;
  for (const auto& [k, v] : state) {
    if (k[0] == keys::kWake) {
      keys::WakeKey wk;
      EXPECT_TRUE(keys::parse_wake(k, wk));
      DueTuple t{std::string(wk.pool), wk.ts, std::string(wk.workflow_id), v};
      m.due.push_back(t);
      if (wk.ts > now) m.future.push_back(t);
      pools.insert(std::string(wk.pool));
      ++m.wake_counts[std::string(wk.pool)];
    } else if (k[0] == keys::kWorker) {
      auto w = worker_from_json(decode(v));
      pools.insert(w.pool);
      m.workers.push_back(encode(to_json(w)));
    }
  }
  m.pools.assign(pools.begin(), pools.end());
  for (const auto& p : m.pools) m.wake_counts.emplace(p, 0);
  // due() is per pool in (ts, id) order; pools() is sorted, and the state's keys are ordered by pool then ts/id.
  std::sort(m.due.begin(), m.due.end());
  std::sort(m.future.begin(), m.future.end());
  std::sort(m.workers.begin(), m.workers.end());
  return m;
}

std::unique_ptr<StateMachine> open_sm(const std::string& path, bool sync = false) {
  Options o;
  o.path = path;
  o.sync = sync;
  return StateMachine::open(o);
}

void expect_same_applied(const Applied& a, const Applied& b, uint64_t index) {
  ASSERT_EQ(a.mutations, b.mutations) << "index " << index;
  ASSERT_EQ(a.results.size(), b.results.size()) << "index " << index;
  for (size_t i = 0; i < a.results.size(); ++i) {
    EXPECT_EQ(a.results[i].code, b.results[i].code) << "index " << index;
    EXPECT_EQ(a.results[i].body, b.results[i].body) << "index " << index;
  }
  ASSERT_EQ(a.wakes.size(), b.wakes.size()) << "index " << index;
}

// =========================================================================================================

TEST(StateMachine, FreshDbIsEmpty) {
  TempDir dir("sm-fresh");
  auto sm = open_sm(dir.path() + "/db");
  EXPECT_EQ(sm->applied_index(), 0u);
  EXPECT_EQ(sm->last_ts(), 0);
  EXPECT_TRUE(sm->workers("").empty());
  EXPECT_TRUE(sm->pools().empty());
  EXPECT_TRUE(sm->due("p0", kForever, 10).empty());
  EXPECT_TRUE(sm->future_wakes(0).empty());
  EXPECT_FALSE(sm->workflow("wf-0"));
  EXPECT_TRUE(dump(*sm).empty());
}

TEST(StateMachine, OpenFailureThrowsNamingThePath) {
  TempDir dir("sm-badpath");
  std::string file = dir.path() + "/not-a-dir";
  std::ofstream(file) << "x";
  try {
    open_sm(file + "/db");
    FAIL() << "open succeeded under a regular file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
  }
}

TEST(StateMachine, MatchesThePureStateAndSurvivesAReopen) {
  State pure;
  std::vector<Applied> want;
  auto log = make_workload(11, 300, pure, &want);
  TempDir dir("sm-reopen");
  std::string path = dir.path() + "/db";
  State before;
  Mirrors mirrors_before;
  int64_t last_ts = log.entries.back().second.ts;
  {
    auto sm = open_sm(path);
    for (size_t i = 0; i < log.entries.size(); ++i) {
      const auto& [index, entry] = log.entries[i];
      auto got = sm->apply(entry, index);
      ASSERT_TRUE(got) << "index " << index;
      expect_same_applied(*got, want[i], index);
      ASSERT_EQ(sm->applied_index(), index);
    }
    before = dump(*sm);
    EXPECT_EQ(data_of(before), pure);
    EXPECT_EQ(sm->applied_index(), 300u);
    EXPECT_EQ(sm->last_ts(), last_ts);
    mirrors_before = mirrors_of(*sm, last_ts);
    EXPECT_EQ(mirrors_before, expected_mirrors(pure, last_ts));
    // The workload is not trivial.
    EXPECT_GT(mirrors_before.due.size(), 3u);
    EXPECT_GT(mirrors_before.workers.size(), 0u);
    // future_wakes() at earlier times (a leader that takes over sets its timer from them).
    for (int64_t now : {kT0 - 1, (kT0 + last_ts) / 2, last_ts - 1000}) {
      SCOPED_TRACE(now);
      auto m = mirrors_of(*sm, now);
      EXPECT_EQ(m, expected_mirrors(pure, now));
      if (now < kT0) { EXPECT_EQ(m.future, m.due); }
    }
  }
  auto sm = open_sm(path);
  EXPECT_EQ(sm->applied_index(), 300u);
  EXPECT_EQ(sm->last_ts(), last_ts);
  EXPECT_EQ(dump(*sm), before);
  EXPECT_EQ(mirrors_of(*sm, last_ts), mirrors_before);
  for (const auto& [k, v] : pure) {
    if (k[0] != keys::kWorkflow) continue;
    auto w = sm->workflow(k.substr(1));
    ASSERT_TRUE(w);
    EXPECT_EQ(encode(to_json(*w)), v);
  }
  for (const auto& [pool, ts, id, name] : mirrors_before.due) EXPECT_TRUE(sm->has_wake(pool, ts, id));
  EXPECT_FALSE(sm->has_wake("p0", 1, "wf-0"));
}

// counts() reads the status index once: per status (the key's status byte), in total and finished; they agree
// with the workflow records themselves.
TEST(StateMachine, CountsEachPoolsWorkflowsByStatus) {
  State pure;
  auto log = make_workload(13, 300, pure);
  TempDir dir("sm-counts");
  auto sm = open_sm(dir.path() + "/db");
  for (const auto& [index, entry] : log.entries) ASSERT_TRUE(sm->apply(entry, index)) << "index " << index;
  std::map<std::string, std::array<size_t, kStatusCount>> want;
  for (const auto& [k, v] : pure) {
    if (k[0] != keys::kWorkflow) continue;
    auto w = sm->workflow(k.substr(1));
    ASSERT_TRUE(w);
    ++want[w->pool][static_cast<size_t>(w->status)];
  }
  ASSERT_FALSE(want.empty());
  std::set<size_t> statuses_seen;
  for (const auto& [pool, by] : want) {
    SCOPED_TRACE(pool);
    auto c = sm->counts(pool);
    EXPECT_EQ(c.by_status, by);
    size_t all = 0, finished = 0;
    for (size_t s = 0; s < kStatusCount; ++s) {
      all += by[s];
      if (is_terminal(static_cast<Status>(s))) finished += by[s];
      if (by[s]) statuses_seen.insert(s);
    }
    EXPECT_EQ(c.all, all);
    EXPECT_EQ(c.finished, finished);
  }
  // The workload is not trivial: live and finished statuses both occur.
  EXPECT_GE(statuses_seen.size(), 3u);
  auto none = sm->counts("no-such-pool");
  EXPECT_EQ(none.all, 0u);
  EXPECT_EQ(none.by_status, (std::array<size_t, kStatusCount>{}));
}

// Replication by effects: a leader computes each entry over its speculative view (the committed state plus the
// entries it proposed that are not applied yet) and every replica writes only the effects. Whatever the lag
// between proposing and applying, the results are the pure ones and the state and mirrors end as the pure state.
TEST(StateMachine, EffectsComputedAheadOfTheCommittedStateGiveThePureState) {
  State pure;
  std::vector<Applied> want;
  auto log = make_workload(23, 300, pure, &want);
  int64_t last_ts = log.entries.back().second.ts;
  for (size_t lag : {size_t{0}, size_t{1}, size_t{4}, size_t{64}}) {
    SCOPED_TRACE("lag " + std::to_string(lag));
    TempDir dir("sm-effects");
    auto sm = open_sm(dir.path() + "/db");
    Speculation spec(sm->committed());
    ASSERT_TRUE(spec.ready(1, 0, 0));
    std::deque<std::pair<uint64_t, std::string>> in_flight;  // proposed, not applied
    auto apply_oldest = [&] {
      auto [index, payload] = std::move(in_flight.front());
      in_flight.pop_front();
      ASSERT_TRUE(is_effects(payload));
      std::string scratch;
      ASSERT_TRUE(sm->apply_effects(decode_effects(payload, scratch), index));
      spec.applied(index);
      EXPECT_EQ(spec.layers(), in_flight.size());
    };
    for (size_t i = 0; i < log.entries.size(); ++i) {
      const auto& [index, entry] = log.entries[i];
      auto got = spec.compute(entry, index, Config{});
      expect_same_applied(got, want[i], index);
      in_flight.emplace_back(index, encode_effects(index, entry.ts, entry.commands.size(), got.mutations));
      spec.push(index, std::move(got.mutations));
      while (in_flight.size() > lag) apply_oldest();
    }
    while (!in_flight.empty()) apply_oldest();
    EXPECT_EQ(data_of(dump(*sm)), pure);
    EXPECT_EQ(sm->applied_index(), 300u);
    EXPECT_EQ(sm->last_ts(), last_ts);
    EXPECT_EQ(mirrors_of(*sm, last_ts), expected_mirrors(pure, last_ts));
    // A replay is skipped; effects computed for another index are refused instead of diverging.
    auto again = encode_effects(300, last_ts, 1, Mutations{{keys::workflow("x"), std::nullopt}});
    std::string scratch;
    EXPECT_FALSE(sm->apply_effects(decode_effects(again, scratch), 300));
    auto elsewhere = encode_effects(302, last_ts, 1, Mutations{{keys::workflow("x"), std::nullopt}});
    EXPECT_THROW(sm->apply_effects(decode_effects(elsewhere, scratch), 301), std::runtime_error);
    EXPECT_EQ(sm->applied_index(), 300u);
  }
}

TEST(StateMachine, ReplayOfAppliedIndexesIsSkipped) {
  State pure;
  auto log = make_workload(22, 150, pure);
  TempDir dir("sm-replay");
  std::string path = dir.path() + "/db";
  auto sm = open_sm(path);
  for (const auto& [index, entry] : log.entries) ASSERT_TRUE(sm->apply(entry, index));
  auto before = dump(*sm);
  auto mirrors = mirrors_of(*sm, sm->last_ts());
  // Raft replays the whole log (e.g. after a restart from an older snapshot): every entry is skipped.
  for (const auto& [index, entry] : log.entries) EXPECT_FALSE(sm->apply(entry, index)) << "index " << index;
  // Even a different entry at an applied index changes nothing.
  Entry other{kT0 * 2, {Dispatch{DispatchSpec{"intruder", "p0", "a"}}}};
  EXPECT_FALSE(sm->apply(other, 1));
  EXPECT_FALSE(sm->apply(other, 150));
  EXPECT_EQ(sm->applied_index(), 150u);
  EXPECT_EQ(dump(*sm), before);
  EXPECT_EQ(mirrors_of(*sm, sm->last_ts()), mirrors);

  sm.reset();
  sm = open_sm(path);
  for (const auto& [index, entry] : log.entries) EXPECT_FALSE(sm->apply(entry, index));
  EXPECT_EQ(dump(*sm), before);
  EXPECT_EQ(mirrors_of(*sm, sm->last_ts()), mirrors);

  // The next index is applied.
  auto next = sm->apply(other, 151);
  ASSERT_TRUE(next);
  ASSERT_TRUE(next->results[0].ok()) << next->results[0].message;
  EXPECT_EQ(sm->applied_index(), 151u);
  EXPECT_TRUE(sm->workflow("intruder"));
  EXPECT_TRUE(sm->has_wake("p0", kT0 * 2, "intruder"));
}

TEST(StateMachine, RestartMidSequenceGivesTheSameFinalState) {
  State pure;
  auto log = make_workload(33, 200, pure);
  TempDir dir("sm-restart");
  State uninterrupted;
  Mirrors uninterrupted_mirrors;
  std::vector<Applied> uninterrupted_applied;
  {
    auto sm = open_sm(dir.path() + "/straight");
    for (const auto& [index, entry] : log.entries) uninterrupted_applied.push_back(*sm->apply(entry, index));
    uninterrupted = dump(*sm);
    uninterrupted_mirrors = mirrors_of(*sm, sm->last_ts());
  }
  EXPECT_EQ(data_of(uninterrupted), pure);
  for (size_t cut : {size_t{1}, size_t{77}, size_t{199}}) {
    SCOPED_TRACE(cut);
    std::string path = dir.path() + "/cut-" + std::to_string(cut);
    {
      auto sm = open_sm(path);
      for (size_t i = 0; i < cut; ++i) ASSERT_TRUE(sm->apply(log.entries[i].second, log.entries[i].first));
    }  // the process stops here
    auto sm = open_sm(path);
    ASSERT_EQ(sm->applied_index(), cut);
    // The log is replayed from the start; only the entries after the cut are applied, with the same outcome.
    for (size_t i = 0; i < log.entries.size(); ++i) {
      auto got = sm->apply(log.entries[i].second, log.entries[i].first);
      ASSERT_EQ(got.has_value(), i >= cut) << "entry " << i;
      if (got) expect_same_applied(*got, uninterrupted_applied[i], log.entries[i].first);
    }
    EXPECT_EQ(dump(*sm), uninterrupted);
    EXPECT_EQ(mirrors_of(*sm, sm->last_ts()), uninterrupted_mirrors);
  }
}

TEST(StateMachine, LastTsNeverGoesBack) {
  TempDir dir("sm-ts");
  std::string path = dir.path() + "/db";
  {
    auto sm = open_sm(path, /*sync=*/true);
    ASSERT_TRUE(sm->apply(Entry{kT0 + 1000, {PingBatch{{ping_of("w0", "p0")}}}}, 1));
    EXPECT_EQ(sm->last_ts(), kT0 + 1000);
    ASSERT_TRUE(sm->apply(Entry{kT0 + 500, {PingBatch{{ping_of("w1", "p0")}}}}, 2));
    EXPECT_EQ(sm->last_ts(), kT0 + 1000);
    EXPECT_EQ(sm->applied_index(), 2u);
  }
  auto sm = open_sm(path);
  EXPECT_EQ(sm->last_ts(), kT0 + 1000);
  EXPECT_EQ(sm->applied_index(), 2u);
  EXPECT_EQ(sm->workers("p0").size(), 2u);
  EXPECT_TRUE(sm->workers("p1").empty());
}

TEST(StateMachine, ListPagesThroughEveryWorkflowOnce) {
  TempDir dir("sm-list");
  auto sm = open_sm(dir.path() + "/db");
  uint64_t index = 0;
  int64_t ts = kT0;
  std::vector<Command> cmds;
  for (int i = 0; i < 23; ++i) cmds.push_back(Dispatch{DispatchSpec{"wf-" + std::to_string(100 + i), "p0", "a"}});
  cmds.push_back(Dispatch{DispatchSpec{"elsewhere", "p1", "a"}});
  cmds.push_back(PingBatch{{ping_of("w0", "p0")}});
  ASSERT_TRUE(sm->apply(Entry{ts, cmds}, ++index));
  // Lease 5 and complete 3 of them, so the pool has three statuses.
  LeaseBatch lease{"p0", "w0", {}};
  for (int i = 0; i < 5; ++i) lease.items.push_back({"wf-" + std::to_string(110 + i), ts});
  auto granted = sm->apply(Entry{ts += 10, {lease}}, ++index);
  ASSERT_TRUE(granted);
  ASSERT_EQ(granted->results[0].body["granted"].size(), 5u);
  uint64_t token = granted->results[0].body["granted"][0]["token"];
  std::vector<Command> commits;
  for (int i = 0; i < 3; ++i) {
    CommitStep c;
    c.workflow_id = "wf-" + std::to_string(110 + i);
    c.worker_id = "w0";
    c.token = token;
    c.step.kind = StepKind::kComplete;
    commits.push_back(c);
  }
  ASSERT_TRUE(sm->apply(Entry{ts += 10, commits}, ++index));

  EXPECT_EQ(sm->list("p0", Status::kPending, 100).size(), 18u);
  EXPECT_EQ(sm->list("p0", Status::kRunning, 100).size(), 2u);
  EXPECT_EQ(sm->list("p0", Status::kComplete, 100).size(), 3u);
  EXPECT_EQ(sm->list("p1", std::nullopt, 100).size(), 1u);
  EXPECT_TRUE(sm->list("p0", std::nullopt, 0).empty());

  for (std::optional<Status> filter : {std::optional<Status>(), std::optional<Status>(Status::kPending)}) {
    SCOPED_TRACE(filter ? "pending" : "any status");
    auto all = sm->list("p0", filter, 1000);
    std::vector<std::string> paged;
    std::string after;
    for (int page = 0; page < 100; ++page) {
      auto got = sm->list("p0", filter, 4, after);
      ASSERT_LE(got.size(), 4u);
      if (got.empty()) break;
      for (const auto& w : got) paged.push_back(w.id);
      after = got.back().id;
    }
    std::vector<std::string> want;
    for (const auto& w : all) want.push_back(w.id);
    EXPECT_EQ(paged, want);
    EXPECT_EQ(want.size(), filter ? 18u : 23u);
    // Ordered by status, then id.
    for (size_t i = 1; i < all.size(); ++i) {
      auto a = std::make_pair(static_cast<int>(all[i - 1].status), all[i - 1].id);
      auto b = std::make_pair(static_cast<int>(all[i].status), all[i].id);
      EXPECT_LT(a, b);
    }
  }
}

TEST(StateMachine, SignalsAfterASeq) {
  TempDir dir("sm-signals");
  auto sm = open_sm(dir.path() + "/db");
  std::vector<Command> cmds{Dispatch{DispatchSpec{"wf-1", "p0", "a"}}};
  for (int i = 0; i < 5; ++i) cmds.push_back(SendSignal{SignalSpec{"wf-1", "s" + std::to_string(i), Json(i), ""}});
  ASSERT_TRUE(sm->apply(Entry{kT0, cmds}, 1));
  auto all = sm->signals("wf-1", 0, 100);
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[0].seq, 1u);
  EXPECT_EQ(all[4].name, "s4");
  EXPECT_EQ(all[4].body, Json(4));
  EXPECT_EQ(all[4].ts, kT0);
  auto later = sm->signals("wf-1", 3, 100);
  ASSERT_EQ(later.size(), 2u);
  EXPECT_EQ(later[0].seq, 4u);
  EXPECT_EQ(sm->signals("wf-1", 0, 2).size(), 2u);
  EXPECT_TRUE(sm->signals("wf-1", 0, 0).empty());
  EXPECT_TRUE(sm->signals("nope", 0, 10).empty());
}

TEST(StateMachine, ReplaceAllInstallsAnotherReplicasState) {
  State pure;
  auto log = make_workload(44, 120, pure);
  TempDir dir("sm-install");
  auto source = open_sm(dir.path() + "/source");
  for (const auto& [index, entry] : log.entries) ASSERT_TRUE(source->apply(entry, index));
  auto snapshot = dump(*source);

  // The target has its own, different history that the snapshot replaces entirely.
  State other;
  auto other_log = make_workload(45, 30, other);
  auto target = open_sm(dir.path() + "/target");
  for (const auto& [index, entry] : other_log.entries) ASSERT_TRUE(target->apply(entry, index));
  target->replace_all(std::vector<std::pair<std::string, std::string>>(snapshot.begin(), snapshot.end()));
  EXPECT_EQ(dump(*target), snapshot);
  EXPECT_EQ(target->applied_index(), source->applied_index());
  EXPECT_EQ(target->last_ts(), source->last_ts());
  EXPECT_EQ(mirrors_of(*target, target->last_ts()), mirrors_of(*source, source->last_ts()));
  // And it continues exactly like the source.
  Entry next{source->last_ts() + 5, {Dispatch{DispatchSpec{"after-install", "p0", "a"}}}};
  auto a = source->apply(next, 121);
  auto b = target->apply(next, 121);
  ASSERT_TRUE(a && b);
  expect_same_applied(*a, *b, 121);
  EXPECT_EQ(dump(*target), dump(*source));
}

// =========================================================================================================
// The log entry codec

DispatchSpec full_spec(const std::string& id) {
  DispatchSpec d;
  d.id = id;
  d.pool = "p0";
  d.name = "a";
  d.tags = Json{{"team", "x"}, {"n", 3}};
  d.input = Json{{"list", {1, 2.5, "three", nullptr, true}}, {"nested", {{"k", "v"}}}};
  d.idempotency_key = "idem";
  d.parent_id = "parent";
  d.notify_parent = true;
  d.max_attempts = 7;
  d.run_at = kT0 + 99;
  return d;
}

void expect_eq(const DispatchSpec& a, const DispatchSpec& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.pool, b.pool);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.tags, b.tags);
  EXPECT_EQ(a.input, b.input);
  EXPECT_EQ(a.idempotency_key, b.idempotency_key);
  EXPECT_EQ(a.parent_id, b.parent_id);
  EXPECT_EQ(a.notify_parent, b.notify_parent);
  EXPECT_EQ(a.max_attempts, b.max_attempts);
  EXPECT_EQ(a.run_at, b.run_at);
  EXPECT_EQ(a.delay_ms, b.delay_ms);
}

void expect_eq(const SignalSpec& a, const SignalSpec& b) {
  EXPECT_EQ(a.workflow_id, b.workflow_id);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.body, b.body);
  EXPECT_EQ(a.signal_id, b.signal_id);
}

void expect_eq(const StepResult& a, const StepResult& b) {
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.output, b.output);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.until, b.until);
  EXPECT_EQ(a.for_ms, b.for_ms);
  EXPECT_EQ(a.timeout_ms, b.timeout_ms);
  EXPECT_EQ(a.signals, b.signals);
  EXPECT_EQ(a.error, b.error);
  EXPECT_EQ(a.backoff_base_ms, b.backoff_base_ms);
  EXPECT_EQ(a.backoff_max_ms, b.backoff_max_ms);
}

void expect_eq(const Command& a, const Command& b) {
  ASSERT_EQ(a.index(), b.index()) << command_name(a) << " decoded as " << command_name(b);
  SCOPED_TRACE(command_name(a));
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        const auto& y = std::get<T>(b);
        if constexpr (std::is_same_v<T, PingBatch>) {
          ASSERT_EQ(x.pings.size(), y.pings.size());
          for (size_t i = 0; i < x.pings.size(); ++i) {
            EXPECT_EQ(x.pings[i].pool, y.pings[i].pool);
            EXPECT_EQ(x.pings[i].worker_id, y.pings[i].worker_id);
            EXPECT_EQ(x.pings[i].pod, y.pings[i].pod);
            EXPECT_EQ(x.pings[i].version, y.pings[i].version);
            EXPECT_EQ(x.pings[i].workflows, y.pings[i].workflows);
            EXPECT_EQ(x.pings[i].cpu, y.pings[i].cpu);
            EXPECT_EQ(x.pings[i].free_slots, y.pings[i].free_slots);
          }
        } else if constexpr (std::is_same_v<T, Drain> || std::is_same_v<T, Undrain> || std::is_same_v<T, Leave>) {
          EXPECT_EQ(x.pool, y.pool);
          EXPECT_EQ(x.worker_id, y.worker_id);
        } else if constexpr (std::is_same_v<T, Dispatch>) {
          expect_eq(x.spec, y.spec);
        } else if constexpr (std::is_same_v<T, SendSignal>) {
          expect_eq(x.spec, y.spec);
        } else if constexpr (std::is_same_v<T, Cancel>) {
          EXPECT_EQ(x.workflow_id, y.workflow_id);
          EXPECT_EQ(x.reason, y.reason);
        } else if constexpr (std::is_same_v<T, LeaseBatch>) {
          EXPECT_EQ(x.pool, y.pool);
          EXPECT_EQ(x.worker_id, y.worker_id);
          ASSERT_EQ(x.items.size(), y.items.size());
          for (size_t i = 0; i < x.items.size(); ++i) {
            EXPECT_EQ(x.items[i].workflow_id, y.items[i].workflow_id);
            EXPECT_EQ(x.items[i].wake_ts, y.items[i].wake_ts);
          }
        } else if constexpr (std::is_same_v<T, CommitStep>) {
          EXPECT_EQ(x.workflow_id, y.workflow_id);
          EXPECT_EQ(x.worker_id, y.worker_id);
          EXPECT_EQ(x.token, y.token);
          expect_eq(x.step, y.step);
          EXPECT_EQ(x.consumed_signal_seq, y.consumed_signal_seq);
          ASSERT_EQ(x.children.size(), y.children.size());
          for (size_t i = 0; i < x.children.size(); ++i) expect_eq(x.children[i], y.children[i]);
          ASSERT_EQ(x.signals.size(), y.signals.size());
          for (size_t i = 0; i < x.signals.size(); ++i) expect_eq(x.signals[i], y.signals[i]);
        } else if constexpr (std::is_same_v<T, Release>) {
          EXPECT_EQ(x.workflow_id, y.workflow_id);
          EXPECT_EQ(x.worker_id, y.worker_id);
          EXPECT_EQ(x.token, y.token);
          EXPECT_EQ(x.reason, y.reason);
        } else if constexpr (std::is_same_v<T, Reclaim>) {
          EXPECT_EQ(x.pool, y.pool);
          EXPECT_EQ(x.worker_id, y.worker_id);
          EXPECT_EQ(x.lost_after_ms, y.lost_after_ms);
        } else if constexpr (std::is_same_v<T, Purge>) {
          EXPECT_EQ(x.pool, y.pool);
          EXPECT_EQ(x.retention_ms, y.retention_ms);
          EXPECT_EQ(x.ids, y.ids);
        } else if constexpr (std::is_same_v<T, ConfigurePool>) {
          EXPECT_EQ(x.pool, y.pool);
          EXPECT_EQ(x.retention_ms, y.retention_ms);
        }
      },
      a);
}

// One command of every type with every field set (a step of every kind, each with the fields it carries).
std::vector<Command> every_command() {
  std::vector<Command> out;
  out.push_back(PingBatch{{ping_of("w0", "p0"), ping_of("w1", "p1")}});
  out.push_back(PingBatch{});
  out.push_back(Drain{"p0", "w0"});
  out.push_back(Undrain{"p0", "w0"});
  out.push_back(Leave{"p1", "w1"});
  out.push_back(Dispatch{full_spec("wf-1")});
  out.push_back(SendSignal{SignalSpec{"wf-1", "go", Json{{"why", "test"}}, "sig-1"}});
  out.push_back(Cancel{"wf-1", "no longer needed"});
  out.push_back(LeaseBatch{"p0", "w0", {{"wf-1", kT0}, {"wf-2", -1}, {"wf-3", kForever}}});
  out.push_back(Reclaim{"p0", "w9", 2000});
  out.push_back(Release{"wf-1", "w0", (uint64_t{1} << 52) | 7, "draining"});
  out.push_back(Purge{"p0", 604800000, {"wf-1", "wf-2"}});
  out.push_back(Purge{"p1", 1, {}});
  out.push_back(ConfigurePool{"p0", 3600000});
  out.push_back(ConfigurePool{"p1", -1});
  for (auto kind : {StepKind::kComplete, StepKind::kFail, StepKind::kSleep, StepKind::kWait, StepKind::kRetry,
                    StepKind::kContinue}) {
    CommitStep c;
    c.workflow_id = "wf-1";
    c.worker_id = "w0";
    c.token = (uint64_t{1} << 52) + 4095;
    c.consumed_signal_seq = 17;
    c.step.kind = kind;
    switch (kind) {
      case StepKind::kComplete: c.step.output = Json{{"done", true}}; break;
      case StepKind::kFail: c.step.error = "bad input"; break;
      case StepKind::kSleep: c.step.until = kT0 + 60000; break;
      case StepKind::kWait:
        c.step.signals = {"go", "stop"};
        c.step.until = kT0 + 5;
        break;
      case StepKind::kRetry:
        c.step.error = "flaky";
        c.step.backoff_base_ms = 250;
        c.step.backoff_max_ms = 8000;
        break;
      case StepKind::kContinue: break;
    }
    c.step.state = Json{{"cursor", static_cast<int>(kind)}};
    c.children = {full_spec("child-1"), full_spec("child-2")};
    c.signals = {SignalSpec{"wf-9", "ping", Json::array({1, 2}), "s"}};
    out.push_back(c);
  }
  CommitStep relative_sleep;  // durations instead of absolute times
  relative_sleep.workflow_id = "wf-3";
  relative_sleep.worker_id = "w1";
  relative_sleep.token = 9;
  relative_sleep.step.kind = StepKind::kSleep;
  relative_sleep.step.for_ms = 2000;
  out.push_back(relative_sleep);
  CommitStep relative_wait = relative_sleep;
  relative_wait.step = StepResult{};
  relative_wait.step.kind = StepKind::kWait;
  relative_wait.step.signals = {"go"};
  relative_wait.step.timeout_ms = 1500;
  auto delayed = full_spec("child-delayed");
  delayed.run_at = 0;
  delayed.delay_ms = 750;
  relative_wait.children = {delayed};
  out.push_back(relative_wait);
  out.push_back(Dispatch{delayed});
  CommitStep bare;  // optional fields absent
  bare.workflow_id = "wf-2";
  bare.worker_id = "w1";
  bare.token = 1;
  bare.step.kind = StepKind::kWait;
  bare.step.signals = {"x"};
  out.push_back(bare);
  return out;
}

TEST(EntryCodec, RoundTripsEveryCommandType) {
  Entry e{kT0 + 123, every_command()};
  std::set<std::string_view> names;
  for (const auto& c : e.commands) names.insert(command_name(c));
  ASSERT_EQ(names.size(), std::variant_size_v<Command>) << "a command type is missing from the test";

  auto bytes = encode_entry(e);
  Entry d = decode_entry(bytes);
  EXPECT_EQ(d.ts, e.ts);
  ASSERT_EQ(d.commands.size(), e.commands.size());
  for (size_t i = 0; i < e.commands.size(); ++i) {
    SCOPED_TRACE(i);
    expect_eq(e.commands[i], d.commands[i]);
  }
  EXPECT_EQ(encode_entry(d), bytes);

  // Each command alone, and negative/extreme timestamps.
  for (const auto& c : e.commands) {
    for (int64_t ts : {int64_t{0}, int64_t{-1}, kForever, std::numeric_limits<int64_t>::min()}) {
      Entry one{ts, {c}};
      Entry back = decode_entry(encode_entry(one));
      EXPECT_EQ(back.ts, ts);
      ASSERT_EQ(back.commands.size(), 1u);
      expect_eq(c, back.commands[0]);
    }
  }
  Entry empty = decode_entry(encode_entry(Entry{5, {}}));
  EXPECT_EQ(empty.ts, 5);
  EXPECT_TRUE(empty.commands.empty());
}

// The codec writes field by field; its reference is the JSON form of each command (to_json), which is also
// how the log was encoded before, so old logs replay unchanged.
Json json_entry(const Entry& e) {
  Json cmds = Json::array();
  for (const auto& c : e.commands) cmds.push_back(to_json(c));
  return Json{{"ts", e.ts}, {"cmds", std::move(cmds)}};
}

TEST(EntryCodec, BytesEqualTheJsonEncodingAndJsonBytesDecode) {
  Entry all{kT0 + 123, every_command()};
  EXPECT_EQ(encode_entry(all), encode(json_entry(all)));
  for (const auto& c : all.commands) {
    SCOPED_TRACE(to_json(c).dump());
    Entry one{kT0, {c}};
    EXPECT_EQ(encode_entry(one), encode(json_entry(one)));
    Entry back = decode_entry(encode(json_entry(one)));
    ASSERT_EQ(back.commands.size(), 1u);
    expect_eq(c, back.commands[0]);
  }
  // Fields in any order, unknown fields ignored, nil fields absent: a command map written by hand.
  Json lease = Json{{"zz", Json{{"future", 1}}}, {"pool", "p0"}, {"worker", nullptr}, {"t", "lease"},
                    {"items", Json::array({Json::array({"wf-1", 5, "extra"})})}};
  Entry e = decode_entry(encode(Json{{"cmds", Json::array({lease})}, {"ts", 9}}));
  ASSERT_EQ(e.commands.size(), 1u);
  const auto& b = std::get<LeaseBatch>(e.commands[0]);
  EXPECT_EQ(b.pool, "p0");
  EXPECT_EQ(b.worker_id, "");
  ASSERT_EQ(b.items.size(), 1u);
  EXPECT_EQ(b.items[0].workflow_id, "wf-1");
  EXPECT_EQ(b.items[0].wake_ts, 5);
  // A state that is present but nil still sets the state (to null); an absent one leaves it.
  Json commit = to_json(Command{std::get<CommitStep>(every_command().back())});
  commit["step"]["state"] = nullptr;
  Entry with_null = decode_entry(encode(Json{{"cmds", Json::array({commit})}, {"ts", 1}}));
  const auto& step = std::get<CommitStep>(with_null.commands[0]).step;
  ASSERT_TRUE(step.state.has_value());
  EXPECT_TRUE(step.state->is_null());
}

TEST(EntryCodec, DecodedEntryAppliesLikeTheOriginal) {
  State pure;
  auto log = make_workload(55, 120, pure);
  State a, b;
  Config config;
  for (const auto& [index, entry] : log.entries) {
    Entry copy = decode_entry(encode_entry(entry));
    MapReader ra(a), rb(b);
    auto x = apply_entry(ra, entry, index, config);
    auto y = apply_entry(rb, copy, index, config);
    expect_same_applied(x, y, index);
    apply_mutations(a, x.mutations);
    apply_mutations(b, y.mutations);
  }
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, pure);
}

TEST(EntryCodec, GarbageThrowsInsteadOfCrashing) {
  auto good = encode_entry(Entry{kT0, every_command()});
  size_t threw = 0, total = 0;
  auto attempt = [&](const std::string& bytes) {
    ++total;
    try {
      decode_entry(bytes);
    } catch (const std::exception&) {
      ++threw;
    }
  };
  // Every strict prefix of a valid entry, and the entry with trailing bytes.
  for (size_t n = 0; n < good.size(); ++n) attempt(good.substr(0, n));
  attempt(good + '\x00');
  attempt(good + good);
  // Random bytes.
  std::mt19937_64 rng(99);
  for (int i = 0; i < 2000; ++i) {
    std::string s(1 + rng() % 64, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    attempt(s);
  }
  // Random corruptions of one or a few bytes of a valid entry: must throw or decode, never crash.
  size_t decoded_corrupt = 0;
  for (int i = 0; i < 1000; ++i) {
    std::string s = good;
    for (int k = 0; k < 1 + static_cast<int>(rng() % 3); ++k) s[rng() % s.size()] = static_cast<char>(rng());
    try {
      decode_entry(s);
      ++decoded_corrupt;
    } catch (const std::exception&) {
    }
  }
  EXPECT_LT(decoded_corrupt, 1000u);
  // Valid MessagePack of the wrong shape.
  const Json shapes[] = {
      Json::array({1, 2}),
      Json("entry"),
      Json{{"ts", 1}},
      Json{{"cmds", Json::array()}},
      Json{{"ts", "soon"}, {"cmds", Json::array()}},
      Json{{"ts", 1}, {"cmds", Json::array({1})}},
      Json{{"ts", 1}, {"cmds", Json::array({Json{{"t", "teleport"}}})}},
      Json{{"ts", 1}, {"cmds", Json::array({Json{{"x", 1}}})}},
      Json{{"ts", 1}, {"cmds", Json::array({Json{{"t", "ping"}}})}},
      Json{{"ts", 1}, {"cmds", Json::array({Json{{"t", "lease"}, {"items", Json::array({Json::array({1, 2})})}}})}},
      Json{{"ts", 1}, {"cmds", Json::array({Json{{"t", "lease"}, {"items", Json::array({Json::array({"a"})})}}})}},
      Json{{"ts", 1}, {"cmds", Json::array({Json{{"t", "commit"}, {"step", Json{{"kind", "dance"}}}}})}},
      Json{{"ts", 1}, {"cmds", Json::array({Json{{"t", "commit"}, {"step", "complete"}}})}},
      Json{{"ts", 1}, {"cmds", Json::array({Json{{"t", "commit"}}})}},
      Json{{"ts", 1}, {"cmds", Json::array({Json{{"t", "dispatch"}, {"spec", Json{{"id", 5}}}}})}},
      Json{{"ts", 1}, {"cmds", Json::array({Json{{"t", "signal"}}})}},
      Json{{"ts", 1}, {"cmds", Json::array({Json{{"t", "drain"}, {"pool", Json::array()}}})}},
      Json{{"ts", 1}, {"cmds", Json::array({Json{{"t", "reclaim"}, {"lost_after", "long"}}})}},
  };
  size_t shape_threw = 0;
  for (const auto& j : shapes) {
    SCOPED_TRACE(j.dump());
    try {
      decode_entry(encode(j));
      ADD_FAILURE() << "decoded";
    } catch (const std::exception&) {
      ++shape_threw;
    }
  }
  EXPECT_EQ(shape_threw, std::size(shapes));
  EXPECT_EQ(threw, total);
}

}  // namespace
}  // namespace gasoline::store
