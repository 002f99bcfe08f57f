// Unit tests for kv/store's pure core: apply_entry over an in-memory MapReader (docs/kv.md,
// the invariants of docs/design.md). Every test carries the state from entry to entry with
// apply_mutations, with increasing Raft indexes and leader timestamps; nothing here touches a clock or a disk.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "kv/store/apply.h"
#include "kv/store/keys.h"

namespace gasoline::store {
namespace {

using State = std::map<std::string, std::string, std::less<>>;

constexpr char kPool[] = "pool-a";
constexpr char kOtherPool[] = "pool-b";
constexpr int64_t kT0 = 1'700'000'000'000;  // a plausible leader timestamp (unix ms)
constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();

// --- command builders ------------------------------------------------------------------------------------

DispatchSpec spec(std::string id, std::string name = "job", std::string pool = kPool) {
  DispatchSpec s;
  s.id = std::move(id);
  s.pool = std::move(pool);
  s.name = std::move(name);
  s.input = Json{{"n", 1}};
  return s;
}
Command dispatch(DispatchSpec s) { return Dispatch{std::move(s)}; }
Command dispatch(std::string id, std::string name = "job", std::string pool = kPool) {
  return Dispatch{spec(std::move(id), std::move(name), std::move(pool))};
}

Ping ping_of(std::string worker, std::string pool = kPool) {
  Ping p;
  p.pool = std::move(pool);
  p.worker_id = std::move(worker);
  p.pod = p.worker_id + "-pod";
  p.version = "v1";
  p.cpu = 0.25;
  p.free_slots = 8;
  return p;
}
Command ping(std::string worker, std::string pool = kPool) { return PingBatch{{ping_of(std::move(worker), std::move(pool))}}; }
Command drain(std::string worker, std::string pool = kPool) { return Drain{std::move(pool), std::move(worker)}; }
Command undrain(std::string worker, std::string pool = kPool) { return Undrain{std::move(pool), std::move(worker)}; }
Command leave(std::string worker, std::string pool = kPool) { return Leave{std::move(pool), std::move(worker)}; }
Command lease_cmd(std::string worker, std::vector<LeaseItem> items, std::string pool = kPool) {
  return LeaseBatch{std::move(pool), std::move(worker), std::move(items)};
}
Command commit(std::string id, std::string worker, uint64_t token, StepResult step, uint64_t consumed = 0) {
  CommitStep c;
  c.workflow_id = std::move(id);
  c.worker_id = std::move(worker);
  c.token = token;
  c.step = std::move(step);
  c.consumed_signal_seq = consumed;
  return c;
}
Command signal(std::string id, std::string name, Json body = Json::object(), std::string signal_id = "") {
  return SendSignal{SignalSpec{std::move(id), std::move(name), std::move(body), std::move(signal_id)}};
}
Command cancel(std::string id, std::string reason = "") { return Cancel{std::move(id), std::move(reason)}; }
Command reclaim(std::string worker, int64_t lost_after_ms, std::string pool = kPool) {
  return Reclaim{std::move(pool), std::move(worker), lost_after_ms};
}

StepResult complete_step(Json output = Json("done")) {
  StepResult s;
  s.kind = StepKind::kComplete;
  s.output = std::move(output);
  return s;
}
StepResult fail_step(std::string error) {
  StepResult s;
  s.kind = StepKind::kFail;
  s.error = std::move(error);
  return s;
}
// A sleep for `ms` or a wait (for "go") with a deadline `ms` after the commit entry's time.
StepResult relative_step(StepKind kind, int64_t ms) {
  StepResult s;
  s.kind = kind;
  if (kind == StepKind::kSleep) {
    s.for_ms = ms;
  } else {
    s.signals = {"go"};
    s.timeout_ms = ms;
  }
  return s;
}

StepResult sleep_step(int64_t until) {
  StepResult s;
  s.kind = StepKind::kSleep;
  s.until = until;
  return s;
}
StepResult wait_step(std::vector<std::string> signals, int64_t until = 0) {
  StepResult s;
  s.kind = StepKind::kWait;
  s.signals = std::move(signals);
  s.until = until;
  return s;
}
StepResult retry_step(std::string error, int64_t base_ms = 0, int64_t max_ms = 0) {
  StepResult s;
  s.kind = StepKind::kRetry;
  s.error = std::move(error);
  s.backoff_base_ms = base_ms;
  s.backoff_max_ms = max_ms;
  return s;
}
StepResult continue_step(Json state) {
  StepResult s;
  s.kind = StepKind::kContinue;
  s.state = std::move(state);
  return s;
}

// --- the in-memory state ---------------------------------------------------------------------------------

struct WakeEntry {
  std::string pool;
  int64_t ts = 0;
  std::string id;
  std::string name;
};

std::vector<WakeEntry> all_wakes(const State& data) {
  std::vector<WakeEntry> out;
  for (auto it = data.lower_bound(std::string(1, keys::kWake)); it != data.end() && it->first[0] == keys::kWake;
       ++it) {
    keys::WakeKey wk;
    if (!keys::parse_wake(it->first, wk)) {
      ADD_FAILURE() << "unparsable wake key";
      continue;
    }
    out.push_back(WakeEntry{std::string(wk.pool), wk.ts, std::string(wk.workflow_id), it->second});
  }
  return out;
}

// A replica of the state that applies entries one after the other, as the StateMachine does.
class Kv {
 public:
  explicit Kv(Config config = {}) : config(config) {}

  Config config;
  State data;
  uint64_t index = 0;
  int64_t ts = kT0;

  Applied apply(std::vector<Command> commands, int64_t advance_ms = 10) {
    ts += advance_ms;
    ++index;
    MapReader reader(data);
    Applied out = apply_entry(reader, Entry{ts, std::move(commands)}, index, config);
    apply_mutations(data, out.mutations);
    return out;
  }
  Result run(Command c, int64_t advance_ms = 10) {
    auto out = apply({std::move(c)}, advance_ms);
    EXPECT_EQ(out.results.size(), 1u);
    return out.results.at(0);
  }

  std::optional<Workflow> find(const std::string& id) const {
    auto it = data.find(keys::workflow(id));
    if (it == data.end()) return std::nullopt;
    return workflow_from_json(decode(it->second));
  }
  Workflow wf(const std::string& id) const {
    auto w = find(id);
    if (!w) {
      ADD_FAILURE() << "workflow " << id << " does not exist";
      return Workflow{};
    }
    return *w;
  }
  std::optional<Worker> worker(const std::string& id, const std::string& pool = kPool) const {
    auto it = data.find(keys::worker(pool, id));
    if (it == data.end()) return std::nullopt;
    return worker_from_json(decode(it->second));
  }
  std::vector<WakeEntry> wakes_of(const std::string& id) const {
    std::vector<WakeEntry> out;
    for (auto& e : all_wakes(data))
      if (e.id == id) out.push_back(e);
    return out;
  }
  bool owns(const std::string& worker, const std::string& id) const { return data.count(keys::owner(worker, id)) > 0; }
  std::vector<Signal> signals(const std::string& id) const {
    std::vector<Signal> out;
    auto prefix = keys::signal_prefix(id);
    for (auto it = data.lower_bound(prefix); it != data.end() && it->first.compare(0, prefix.size(), prefix) == 0;
         ++it)
      out.push_back(signal_from_json(decode(it->second)));
    return out;
  }
  bool in_status_index(const Workflow& w) const {
    return data.count(keys::by_status(w.pool, static_cast<uint8_t>(w.status), w.id)) > 0;
  }

  // Leases one workflow at its current wake entry; returns the token (0 when not granted).
  uint64_t lease(const std::string& worker, const std::string& id, const std::string& pool = kPool) {
    auto w = wf(id);
    auto r = run(lease_cmd(worker, {{id, w.wake_ts}}, pool));
    EXPECT_TRUE(r.ok()) << r.message;
    if (!r.body.contains("granted") || r.body["granted"].size() != 1) return 0;
    return r.body["granted"][0]["token"].get<uint64_t>();
  }
  // Dispatches `id`, joins `worker`, leases it; returns the token.
  uint64_t start(const std::string& id, const std::string& worker = "w1") {
    EXPECT_TRUE(run(dispatch(id)).ok());
    EXPECT_TRUE(run(ping(worker)).ok());
    return lease(worker, id);
  }
};

// The workflow has exactly one wake entry, at `at`, in its pool, and its record agrees.
::testing::AssertionResult wakes_once_at(const Kv& kv, const std::string& id, int64_t at) {
  auto w = kv.find(id);
  if (!w) return ::testing::AssertionFailure() << id << " does not exist";
  auto es = kv.wakes_of(id);
  if (es.size() != 1) return ::testing::AssertionFailure() << id << " has " << es.size() << " wake entries";
  if (es[0].ts != at) return ::testing::AssertionFailure() << id << " wakes at " << es[0].ts << ", want " << at;
  if (es[0].pool != w->pool || es[0].name != w->name)
    return ::testing::AssertionFailure() << id << " wake entry in pool " << es[0].pool << " named " << es[0].name;
  if (w->wake_ts != at) return ::testing::AssertionFailure() << id << " record says wake_ts " << w->wake_ts;
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult no_wake(const Kv& kv, const std::string& id) {
  auto w = kv.find(id);
  if (!w) return ::testing::AssertionFailure() << id << " does not exist";
  auto es = kv.wakes_of(id);
  if (!es.empty()) return ::testing::AssertionFailure() << id << " has " << es.size() << " wake entries";
  if (w->wake_ts != -1) return ::testing::AssertionFailure() << id << " record says wake_ts " << w->wake_ts;
  return ::testing::AssertionSuccess();
}

bool has_wake_event(const Applied& a, const std::string& id, int64_t ts, const std::string& reason) {
  return std::any_of(a.wakes.begin(), a.wakes.end(),
                     [&](const Wake& w) { return w.workflow_id == id && w.ts == ts && w.reason == reason; });
}

// Decoded records, reused while their bytes are unchanged (the random tests check the whole state after every entry).
class DecodeCache {
 public:
  const Workflow& workflow(const std::string& key, const std::string& raw) {
    return get(workflows_, key, raw, [](const Json& j) { return workflow_from_json(j); });
  }
  const Signal& signal(const std::string& key, const std::string& raw) {
    return get(signals_, key, raw, [](const Json& j) { return signal_from_json(j); });
  }

 private:
  template <typename T, typename F>
  static const T& get(std::map<std::string, std::pair<std::string, T>>& m, const std::string& key,
                      const std::string& raw, F from) {
    auto it = m.find(key);
    if (it == m.end() || it->second.first != raw) it = m.insert_or_assign(key, std::pair{raw, from(decode(raw))}).first;
    return it->second.second;
  }
  std::map<std::string, std::pair<std::string, Workflow>> workflows_;
  std::map<std::string, std::pair<std::string, Signal>> signals_;
};

// --- the invariants of the whole state -------------------------------------------------------------------

// No wake-up is lost, at most one lease per workflow, owner index ⟺ lease fields, indexes agree with records.
::testing::AssertionResult invariants(const State& data, DecodeCache* shared_cache = nullptr) {
  DecodeCache local;
  DecodeCache& cache = shared_cache ? *shared_cache : local;
  std::map<std::string, const Workflow*> wfs;
  std::map<std::string, std::vector<WakeEntry>> wakes;
  std::map<std::string, std::set<std::string>> owners;  // workflow → holders in the owner index
  std::map<std::string, std::vector<std::pair<std::string, uint8_t>>> by_status;
  std::map<std::string, std::vector<const Signal*>> signals;
  std::map<std::string, std::vector<std::pair<std::string, int64_t>>> finished;  // workflow → (pool, ts)
  for (const auto& [k, v] : data) {
    if (k.empty()) return ::testing::AssertionFailure() << "empty key";
    switch (k[0]) {
      case keys::kWorkflow: {
        const auto& w = cache.workflow(k, v);
        if (w.id != k.substr(1)) return ::testing::AssertionFailure() << "record " << w.id << " under key " << k;
        wfs[w.id] = &w;
        break;
      }
      case keys::kWake: {
        keys::WakeKey wk;
        if (!keys::parse_wake(k, wk)) return ::testing::AssertionFailure() << "bad wake key";
        wakes[std::string(wk.workflow_id)].push_back(WakeEntry{std::string(wk.pool), wk.ts, std::string(wk.workflow_id), v});
        break;
      }
      case keys::kOwner: {
        auto sep = k.find('\0');
        if (sep == std::string::npos) return ::testing::AssertionFailure() << "bad owner key";
        owners[k.substr(sep + 1)].insert(k.substr(1, sep - 1));
        break;
      }
      case keys::kByStatus: {
        auto sep = k.find('\0');
        if (sep == std::string::npos || k.size() < sep + 3) return ::testing::AssertionFailure() << "bad status key";
        by_status[k.substr(sep + 2)].emplace_back(k.substr(1, sep - 1), static_cast<uint8_t>(k[sep + 1]));
        break;
      }
      case keys::kSignal: {
        const auto& s = cache.signal(k, v);
        signals[s.workflow_id].push_back(&s);
        break;
      }
      case keys::kEnded: {
        auto sep = k.find('\0');
        if (sep == std::string::npos || k.size() < sep + 9) return ::testing::AssertionFailure() << "bad finished key";
        finished[k.substr(sep + 9)].emplace_back(k.substr(1, sep - 1), keys::get_ts(std::string_view(k).substr(sep + 1)));
        break;
      }
      default: break;
    }
  }
  for (const auto& [id, wp] : wfs) {
    const Workflow& w = *wp;
    const auto& ws = wakes[id];
    const auto& os = owners[id];
    const auto& st = by_status[id];
    if (st.size() != 1 || st[0].first != w.pool || st[0].second != static_cast<uint8_t>(w.status))
      return ::testing::AssertionFailure() << id << ": status index has " << st.size() << " entries, status "
                                           << to_string(w.status);
    // Finished ⟺ exactly one finished-index entry, in its pool, at the time it finished (retention reads it).
    const auto& fs = finished[id];
    if (is_terminal(w.status) ? (fs.size() != 1 || fs[0].first != w.pool || fs[0].second != w.updated_ts)
                              : !fs.empty())
      return ::testing::AssertionFailure() << id << " (" << to_string(w.status) << ", updated " << w.updated_ts
                                           << ") has " << fs.size() << " finished-index entries";
    bool leased = !w.lease_worker.empty();
    if (leased != (w.lease_token != 0))
      return ::testing::AssertionFailure() << id << ": lease worker '" << w.lease_worker << "' token " << w.lease_token;
    if (leased ? (os.size() != 1 || *os.begin() != w.lease_worker) : !os.empty())
      return ::testing::AssertionFailure() << id << ": owner index has " << os.size() << " entries, lease '"
                                           << w.lease_worker << "'";
    if (leased != (w.status == Status::kRunning))
      return ::testing::AssertionFailure() << id << " is " << to_string(w.status) << ", leased=" << leased;
    for (const Signal* s : signals[id]) {
      if (s->seq <= w.consumed_signal_seq || s->seq >= w.next_signal_seq)
        return ::testing::AssertionFailure() << id << ": signal seq " << s->seq << " outside (" << w.consumed_signal_seq
                                             << ", " << w.next_signal_seq << ")";
    }
    bool needs_wake = !is_terminal(w.status) && w.status != Status::kRunning &&
                      !(w.status == Status::kWaiting && w.wake_ts < 0);
    if (needs_wake) {
      if (ws.size() != 1 || ws[0].ts != w.wake_ts || ws[0].pool != w.pool || ws[0].name != w.name)
        return ::testing::AssertionFailure() << id << " (" << to_string(w.status) << ") has " << ws.size()
                                             << " wake entries, record wake_ts " << w.wake_ts;
    } else {
      if (!ws.empty() || w.wake_ts != -1)
        return ::testing::AssertionFailure() << id << " (" << to_string(w.status) << ") has " << ws.size()
                                             << " wake entries, record wake_ts " << w.wake_ts;
    }
    if (w.status == Status::kWaiting) {
      // A pending signal it waits for means it is due already (invariant 24): never left pending while the
      // workflow waits without a wake, or with one only at a later deadline.
      for (const Signal* s : signals[id]) {
        if (std::find(w.wait_signals.begin(), w.wait_signals.end(), s->name) != w.wait_signals.end() &&
            (w.wake_ts < 0 || w.wake_ts > w.updated_ts))
          return ::testing::AssertionFailure() << id << " waits with wake_ts " << w.wake_ts << " (updated "
                                               << w.updated_ts << ") although signal " << s->seq << " (" << s->name
                                               << ") is pending";
      }
    }
  }
  for (const auto& [id, ws] : wakes)
    if (!ws.empty() && !wfs.count(id)) return ::testing::AssertionFailure() << "wake entry of missing " << id;
  for (const auto& [id, os] : owners)
    if (!os.empty() && !wfs.count(id)) return ::testing::AssertionFailure() << "owner entry of missing " << id;
  for (const auto& [id, st] : by_status)
    if (!st.empty() && !wfs.count(id)) return ::testing::AssertionFailure() << "status entry of missing " << id;
  for (const auto& [id, ss] : signals)
    if (!ss.empty() && !wfs.count(id)) return ::testing::AssertionFailure() << "signal of missing " << id;
  for (const auto& [id, fs] : finished)
    if (!fs.empty() && !wfs.count(id)) return ::testing::AssertionFailure() << "finished entry of missing " << id;
  return ::testing::AssertionSuccess();
}

// =========================================================================================================
// Dispatch

TEST(StoreDispatch, CreatesPendingWorkflowWithOneWakeEntry) {
  Kv kv;
  auto a = kv.apply({dispatch("wf-1")});
  ASSERT_EQ(a.results.size(), 1u);
  ASSERT_TRUE(a.results[0].ok()) << a.results[0].message;
  EXPECT_EQ(a.results[0].body, (Json{{"id", "wf-1"}, {"existing", false}}));
  auto w = kv.wf("wf-1");
  EXPECT_EQ(w.status, Status::kPending);
  EXPECT_EQ(w.pool, kPool);
  EXPECT_EQ(w.name, "job");
  EXPECT_EQ(w.input, (Json{{"n", 1}}));
  EXPECT_EQ(w.created_ts, kv.ts);
  EXPECT_EQ(w.updated_ts, kv.ts);
  EXPECT_EQ(w.wake_reason, "dispatch");
  EXPECT_TRUE(w.lease_worker.empty());
  EXPECT_TRUE(wakes_once_at(kv, "wf-1", kv.ts));
  EXPECT_TRUE(kv.in_status_index(w));
  ASSERT_EQ(a.wakes.size(), 1u);
  EXPECT_EQ(a.wakes[0].pool, kPool);
  EXPECT_EQ(a.wakes[0].workflow_id, "wf-1");
  EXPECT_EQ(a.wakes[0].name, "job");
  EXPECT_EQ(a.wakes[0].ts, kv.ts);
  EXPECT_EQ(a.wakes[0].reason, "dispatch");
  EXPECT_TRUE(invariants(kv.data));
}

TEST(StoreDispatch, WakesAtTheLaterOfRunAtAndEntryTime) {
  const struct {
    const char* name;
    int64_t run_at_offset;  // relative to the entry's ts; 0 = run_at unset
    bool unset;
    int64_t want_offset;
  } cases[] = {
      {"unset", 0, true, 0},
      {"future", 5000, false, 5000},
      {"past", -5000, false, 0},
      {"now", 0, false, 0},
      {"delay_ms: after the entry's (leader's) time", 7000, true, 7000},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Kv kv;
    auto s = spec("wf-1");
    int64_t at = kv.ts + 10;  // the entry's ts
    s.run_at = c.unset ? 0 : at + c.run_at_offset;
    if (c.unset) s.delay_ms = c.run_at_offset;
    auto a = kv.apply({dispatch(s)});
    ASSERT_EQ(kv.ts, at);
    ASSERT_TRUE(a.results[0].ok());
    EXPECT_TRUE(wakes_once_at(kv, "wf-1", at + c.want_offset));
    EXPECT_TRUE(has_wake_event(a, "wf-1", at + c.want_offset, "dispatch"));
  }
}

TEST(StoreDispatch, IdempotentByExplicitId) {
  Kv kv;
  ASSERT_TRUE(kv.run(dispatch("wf-1")).ok());
  auto before = kv.data;

  auto same = kv.apply({dispatch("wf-1")});
  ASSERT_TRUE(same.results[0].ok());
  EXPECT_EQ(same.results[0].body, (Json{{"id", "wf-1"}, {"existing", true}}));
  EXPECT_TRUE(same.mutations.empty());
  EXPECT_TRUE(same.wakes.empty());

  for (auto other : {spec("wf-1", "other-name"), spec("wf-1", "job", kOtherPool)}) {
    auto diff = kv.apply({dispatch(other)});
    EXPECT_EQ(diff.results[0].code, Code::kConflict);
    EXPECT_TRUE(diff.mutations.empty());
    EXPECT_TRUE(diff.wakes.empty());
  }
  EXPECT_EQ(kv.data, before);
}

TEST(StoreDispatch, IdempotentByKey) {
  Kv kv;
  auto first = spec("wf-1");
  first.idempotency_key = "order-42";
  ASSERT_TRUE(kv.run(dispatch(first)).ok());

  auto second = spec("wf-2");
  second.idempotency_key = "order-42";
  auto a = kv.apply({dispatch(second)});
  ASSERT_TRUE(a.results[0].ok());
  EXPECT_EQ(a.results[0].body, (Json{{"id", "wf-1"}, {"existing", true}}));
  EXPECT_TRUE(a.mutations.empty());
  EXPECT_FALSE(kv.find("wf-2"));

  // The key is per pool.
  auto elsewhere = spec("wf-3", "job", kOtherPool);
  elsewhere.idempotency_key = "order-42";
  auto r = kv.run(dispatch(elsewhere));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.body, (Json{{"id", "wf-3"}, {"existing", false}}));
  EXPECT_TRUE(invariants(kv.data));
}

TEST(StoreDispatch, SecondDispatchInTheSameEntrySeesTheFirst) {
  Kv kv;
  auto k1 = spec("wf-1");
  k1.idempotency_key = "k";
  auto k2 = spec("wf-2");
  k2.idempotency_key = "k";
  auto a = kv.apply({dispatch("wf-0"), dispatch("wf-0"), dispatch(k1), dispatch(k2)});
  ASSERT_EQ(a.results.size(), 4u);
  EXPECT_EQ(a.results[0].body["existing"], false);
  EXPECT_EQ(a.results[1].body["existing"], true);
  EXPECT_EQ(a.results[2].body["existing"], false);
  EXPECT_EQ(a.results[3].body, (Json{{"id", "wf-1"}, {"existing", true}}));
  EXPECT_EQ(all_wakes(kv.data).size(), 2u);
  EXPECT_FALSE(kv.find("wf-2"));
  EXPECT_TRUE(invariants(kv.data));
}

TEST(StoreDispatch, InvalidIsRejectedWithoutMutations) {
  std::string too_long(254, 'a');
  const struct {
    const char* name;
    DispatchSpec spec;
  } cases[] = {
      {"empty id", spec("")},
      {"space in id", spec("a b")},
      {"NUL in id", spec(std::string("a\0b", 3))},
      {"id too long", spec(too_long)},
      {"empty pool", spec("wf", "job", "")},
      {"bad pool", spec("wf", "job", "pool a")},
      {"NUL in pool", spec("wf", "job", std::string("p\0q", 3))},
      {"empty name", spec("wf", "")},
      {"bad name", spec("wf", "j\xc3\xb6""b")},
      {"tags not a map", [] {
         auto s = spec("wf");
         s.tags = Json::array({1, 2});
         return s;
       }()},
      {"negative delay_ms", [] {
         auto s = spec("wf");
         s.delay_ms = -1;
         return s;
       }()},
      {"run_at and delay_ms", [] {
         auto s = spec("wf");
         s.delay_ms = 10;
         s.run_at = 5;
         return s;
       }()},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Kv kv;
    auto a = kv.apply({dispatch(c.spec)});
    ASSERT_EQ(a.results.size(), 1u);
    EXPECT_EQ(a.results[0].code, Code::kInvalid);
    EXPECT_FALSE(a.results[0].message.empty());
    EXPECT_TRUE(a.mutations.empty());
    EXPECT_TRUE(a.wakes.empty());
  }
  // The longest valid name is accepted.
  Kv kv;
  EXPECT_TRUE(kv.run(dispatch(std::string(253, 'a'))).ok());
}

// =========================================================================================================
// Ping, drain, leave

TEST(StoreMembership, PingWritesTheWorkerWithLeaderTime) {
  Kv kv;
  auto a = kv.apply({PingBatch{{ping_of("w1"), ping_of("w2"), ping_of("bad worker"), ping_of("w3", "")}}});
  ASSERT_TRUE(a.results[0].ok());
  EXPECT_EQ(a.results[0].body["accepted"], 2);
  auto w = kv.worker("w1");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->pool, kPool);
  EXPECT_EQ(w->id, "w1");
  EXPECT_EQ(w->pod, "w1-pod");
  EXPECT_EQ(w->version, "v1");
  EXPECT_EQ(w->state, WorkerState::kActive);
  EXPECT_EQ(w->last_ping_ts, kv.ts);
  EXPECT_DOUBLE_EQ(w->cpu, 0.25);
  EXPECT_EQ(w->free_slots, 8u);
  EXPECT_TRUE(kv.worker("w2"));
  EXPECT_FALSE(kv.worker("bad worker"));
  EXPECT_FALSE(kv.worker("w3", ""));

  auto p = ping_of("w1");
  p.workflows = {"job"};
  p.cpu = 0.9;
  kv.apply({PingBatch{{p}}}, 777);
  w = kv.worker("w1");
  EXPECT_EQ(w->last_ping_ts, kv.ts);
  EXPECT_DOUBLE_EQ(w->cpu, 0.9);
  EXPECT_EQ(w->workflows, std::vector<std::string>{"job"});
  EXPECT_TRUE(w->serves("job"));
  EXPECT_FALSE(w->serves("other"));
}

TEST(StoreMembership, DrainKeepsLeasesAndStopsNewOnes) {
  Kv kv;
  uint64_t token = kv.start("wf-1", "w1");
  ASSERT_NE(token, 0u);
  ASSERT_TRUE(kv.run(dispatch("wf-2")).ok());

  auto d = kv.apply({drain("w1")});
  ASSERT_TRUE(d.results[0].ok());
  EXPECT_TRUE(d.wakes.empty());
  auto w = kv.worker("w1");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->state, WorkerState::kDraining);
  EXPECT_EQ(w->last_ping_ts, kv.ts);
  EXPECT_EQ(kv.wf("wf-1").lease_worker, "w1");
  EXPECT_EQ(kv.wf("wf-1").lease_token, token);
  EXPECT_TRUE(kv.owns("w1", "wf-1"));

  // Pinging while draining keeps it draining, and its leases are not reclaimed.
  ASSERT_TRUE(kv.run(ping("w1"), 1000).ok());
  EXPECT_EQ(kv.worker("w1")->state, WorkerState::kDraining);
  auto r = kv.run(reclaim("w1", 2000), 1500);
  EXPECT_EQ(r.body["alive"], true);
  EXPECT_EQ(kv.wf("wf-1").lease_worker, "w1");

  // No new lease for a draining worker...
  auto l = kv.apply({lease_cmd("w1", {{"wf-2", kv.wf("wf-2").wake_ts}})});
  ASSERT_TRUE(l.results[0].ok());
  EXPECT_TRUE(l.results[0].body.contains("rejected"));
  EXPECT_TRUE(l.results[0].body["granted"].empty());
  EXPECT_TRUE(l.mutations.empty());
  // ...but its running task can still commit.
  EXPECT_TRUE(kv.run(commit("wf-1", "w1", token, complete_step())).ok());
  EXPECT_EQ(kv.wf("wf-1").status, Status::kComplete);

  EXPECT_EQ(kv.run(drain("nobody")).code, Code::kNotFound);
  EXPECT_TRUE(invariants(kv.data));
}

TEST(StoreMembership, UndrainPutsADrainedWorkerBackIntoTheRankingWithItsLeases) {
  Kv kv;
  uint64_t token = kv.start("wf-1", "w1");
  ASSERT_NE(token, 0u);
  ASSERT_TRUE(kv.run(dispatch("wf-2")).ok());
  ASSERT_TRUE(kv.run(drain("w1")).ok());
  ASSERT_EQ(kv.worker("w1")->state, WorkerState::kDraining);

  auto u = kv.run(undrain("w1"), 500);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u.body["was_draining"], true);
  auto w = kv.worker("w1");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->state, WorkerState::kActive);
  EXPECT_EQ(w->last_ping_ts, kv.ts);
  EXPECT_EQ(kv.wf("wf-1").lease_token, token) << "the lease it held through the drain is kept";
  // New leases again.
  auto l = kv.apply({lease_cmd("w1", {{"wf-2", kv.wf("wf-2").wake_ts}})});
  ASSERT_TRUE(l.results[0].ok());
  EXPECT_EQ(l.results[0].body["granted"].size(), 1u) << l.results[0].body.dump();

  // Undoing a drain that is not there is harmless (a retried call), and an unknown worker is not found.
  auto again = kv.run(undrain("w1"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.body["was_draining"], false);
  EXPECT_EQ(kv.run(undrain("nobody")).code, Code::kNotFound);
  EXPECT_TRUE(invariants(kv.data));
}

TEST(StoreMembership, LeaveReleasesEveryLeaseWithAnImmediateWakeAtItsOriginalDueTime) {
  Kv kv;
  kv.run(ping("w1"));
  kv.run(ping("w2"));
  for (auto id : {"wf-1", "wf-2", "wf-3", "wf-4"}) ASSERT_TRUE(kv.run(dispatch(id)).ok());
  std::map<std::string, int64_t> due;
  for (auto id : {"wf-1", "wf-2"}) due[id] = kv.wf(id).wake_ts;
  std::map<std::string, uint64_t> tokens;
  for (auto id : {"wf-1", "wf-2", "wf-3"}) tokens[id] = kv.lease("w1", id);
  uint64_t other = kv.lease("w2", "wf-4");
  // wf-3 is committed (sleeping): not held any more, so not released.
  ASSERT_TRUE(kv.run(commit("wf-3", "w1", tokens["wf-3"], sleep_step(kv.ts + 60000))).ok());
  int64_t sleep_until = kv.wf("wf-3").wake_ts;

  auto a = kv.apply({leave("w1")});
  int64_t left_at = kv.ts;
  ASSERT_TRUE(a.results[0].ok());
  auto released = a.results[0].body["released"].get<std::vector<std::string>>();
  std::sort(released.begin(), released.end());
  EXPECT_EQ(released, (std::vector<std::string>{"wf-1", "wf-2"}));
  for (auto id : {"wf-1", "wf-2"}) {
    SCOPED_TRACE(id);
    auto w = kv.wf(id);
    EXPECT_EQ(w.status, Status::kPending);
    EXPECT_TRUE(w.lease_worker.empty());
    EXPECT_EQ(w.lease_token, 0u);
    EXPECT_EQ(w.wake_reason, "handover");
    EXPECT_FALSE(kv.owns("w1", id));
    // Due again at once, and ahead of anything that became due after it: at the time it first became due.
    EXPECT_LT(due[id], left_at);
    EXPECT_TRUE(wakes_once_at(kv, id, due[id]));
    EXPECT_TRUE(has_wake_event(a, id, due[id], "handover"));
    // The old holder's commit is fenced off.
    EXPECT_EQ(kv.run(commit(id, "w1", tokens[id], complete_step())).code, Code::kConflict);
  }
  EXPECT_EQ(a.wakes.size(), 2u);
  EXPECT_FALSE(kv.worker("w1"));
  EXPECT_TRUE(wakes_once_at(kv, "wf-3", sleep_until));
  EXPECT_EQ(kv.wf("wf-4").lease_worker, "w2");
  EXPECT_EQ(kv.wf("wf-4").lease_token, other);
  EXPECT_TRUE(invariants(kv.data));

  // Leaving twice is harmless.
  auto again = kv.apply({leave("w1")});
  ASSERT_TRUE(again.results[0].ok());
  EXPECT_TRUE(again.results[0].body["released"].empty());
  EXPECT_TRUE(again.wakes.empty());
}

TEST(StoreMembership, LeaveAndReclaimOnlyTouchTheirPool) {
  // Worker ids are unique per pool only (a worker is (pool, id)); the same id in another pool keeps its leases.
  Kv kv;
  kv.apply({PingBatch{{ping_of("w", kPool), ping_of("w", kOtherPool)}}});
  kv.run(dispatch("wf-a", "job", kPool));
  kv.run(dispatch("wf-b", "job", kOtherPool));
  uint64_t ta = kv.lease("w", "wf-a", kPool);
  uint64_t tb = kv.lease("w", "wf-b", kOtherPool);
  ASSERT_NE(ta, 0u);
  ASSERT_NE(tb, 0u);

  auto a = kv.apply({leave("w", kPool)});
  EXPECT_EQ(a.results[0].body["released"], Json::array({"wf-a"}));
  EXPECT_FALSE(kv.worker("w", kPool));
  ASSERT_TRUE(kv.worker("w", kOtherPool));
  EXPECT_EQ(kv.wf("wf-b").lease_worker, "w");
  EXPECT_TRUE(kv.owns("w", "wf-b"));

  // "w" is gone from pool-a: a reclaim there must not release its pool-b lease.
  auto r = kv.apply({reclaim("w", 1000, kPool)}, 5000);
  EXPECT_EQ(r.results[0].body["released"], Json::array());
  EXPECT_EQ(kv.wf("wf-b").lease_token, tb);
  EXPECT_TRUE(kv.run(commit("wf-b", "w", tb, complete_step())).ok());
  EXPECT_TRUE(invariants(kv.data));
}

// =========================================================================================================
// Lease batch

TEST(StoreLease, GrantTakesTheWakeEntryAndRecordsTheHolder) {
  Kv kv;
  kv.run(ping("w1"));
  kv.run(dispatch("wf-1"));
  int64_t wake = kv.wf("wf-1").wake_ts;
  auto a = kv.apply({lease_cmd("w1", {{"wf-1", wake}})});
  ASSERT_TRUE(a.results[0].ok());
  const auto& body = a.results[0].body;
  ASSERT_EQ(body["granted"].size(), 1u);
  EXPECT_EQ(body["conflicts"], 0);
  const auto& task = body["granted"][0];
  EXPECT_EQ(task["id"], "wf-1");
  EXPECT_EQ(task["token"], lease_token(kv.index, 0));
  EXPECT_EQ(task["wake_ts"], wake);
  EXPECT_EQ(task["wake_reason"], "dispatch");
  auto w = kv.wf("wf-1");
  EXPECT_EQ(w.status, Status::kRunning);
  EXPECT_EQ(w.lease_worker, "w1");
  EXPECT_EQ(w.lease_token, lease_token(kv.index, 0));
  EXPECT_TRUE(kv.owns("w1", "wf-1"));
  EXPECT_TRUE(no_wake(kv, "wf-1"));
  EXPECT_TRUE(kv.in_status_index(w));
  EXPECT_TRUE(a.wakes.empty());
  EXPECT_TRUE(invariants(kv.data));
}

TEST(StoreLease, CompareAndSetRefusesEverythingButTheCurrentDueEntry) {
  struct Case {
    const char* name;
    // Prepares the state; returns the entry whose last command is checked.
    std::function<std::vector<Command>(Kv&)> build;
    size_t want_granted;
    size_t want_conflicts;
  };
  auto item = [](Kv& kv, const std::string& id) { return LeaseItem{id, kv.wf(id).wake_ts}; };
  const Case cases[] = {
      {"same worker, later entry",
       [&](Kv& kv) {
         auto it = item(kv, "wf-1");
         kv.lease("w1", "wf-1");
         return std::vector<Command>{lease_cmd("w1", {it})};
       },
       0, 1},
      {"other worker, later entry",
       [&](Kv& kv) {
         auto it = item(kv, "wf-1");
         kv.lease("w1", "wf-1");
         return std::vector<Command>{lease_cmd("w2", {it})};
       },
       0, 1},
      {"other worker, same entry",
       [&](Kv& kv) {
         auto it = item(kv, "wf-1");
         return std::vector<Command>{lease_cmd("w1", {it}), lease_cmd("w2", {it})};
       },
       0, 1},
      {"same worker, same entry",
       [&](Kv& kv) {
         auto it = item(kv, "wf-1");
         return std::vector<Command>{lease_cmd("w1", {it}), lease_cmd("w1", {it})};
       },
       0, 1},
      {"twice in one batch",
       [&](Kv& kv) {
         auto it = item(kv, "wf-1");
         return std::vector<Command>{lease_cmd("w1", {it, it})};
       },
       1, 1},
      {"stale wake_ts (older)",
       [&](Kv& kv) {
         auto it = item(kv, "wf-1");
         --it.wake_ts;
         return std::vector<Command>{lease_cmd("w1", {it})};
       },
       0, 1},
      {"stale wake_ts after a reschedule",
       [&](Kv& kv) {
         auto it = item(kv, "wf-1");
         auto token = kv.lease("w1", "wf-1");
         kv.run(commit("wf-1", "w1", token, sleep_step(kv.ts + 100)));
         kv.run(ping("w1"), 1000);  // the new entry is due now
         return std::vector<Command>{lease_cmd("w1", {it})};
       },
       0, 1},
      {"not yet due",
       [&](Kv& kv) {
         auto s = spec("wf-later");
         s.run_at = kv.ts + 60000;
         kv.run(dispatch(s));
         return std::vector<Command>{lease_cmd("w1", {item(kv, "wf-later")})};
       },
       0, 1},
      {"unknown workflow", [&](Kv&) { return std::vector<Command>{lease_cmd("w1", {{"nope", 0}})}; }, 0, 1},
      {"terminal",
       [&](Kv& kv) {
         auto it = item(kv, "wf-1");
         kv.run(cancel("wf-1"));
         return std::vector<Command>{lease_cmd("w1", {it})};
       },
       0, 1},
      {"waiting without a wake entry",
       [&](Kv& kv) {
         auto token = kv.lease("w1", "wf-1");
         kv.run(commit("wf-1", "w1", token, wait_step({"go"})));
         return std::vector<Command>{lease_cmd("w1", {{"wf-1", -1}})};
       },
       0, 1},
      {"workflow of another pool",
       [&](Kv& kv) {
         kv.run(dispatch("wf-b", "job", kOtherPool));
         return std::vector<Command>{lease_cmd("w1", {item(kv, "wf-b")})};
       },
       0, 1},
      {"one good one bad",
       [&](Kv& kv) {
         kv.run(dispatch("wf-2"));
         auto bad = item(kv, "wf-1");
         ++bad.wake_ts;
         return std::vector<Command>{lease_cmd("w1", {bad, item(kv, "wf-2")})};
       },
       1, 1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Kv kv;
    kv.apply({PingBatch{{ping_of("w1"), ping_of("w2")}}});
    kv.run(dispatch("wf-1"));
    auto cmds = c.build(kv);
    auto a = kv.apply(cmds);
    const auto& r = a.results.back();
    ASSERT_TRUE(r.ok()) << r.message;
    EXPECT_FALSE(r.body.contains("rejected"));
    EXPECT_EQ(r.body["granted"].size(), c.want_granted);
    EXPECT_EQ(r.body["conflicts"], c.want_conflicts);
    EXPECT_TRUE(invariants(kv.data));
  }
}

TEST(StoreLease, NonMemberAndDrainingWorkerAreRejected) {
  for (const char* who : {"stranger", "drainer", "other-pool"}) {
    SCOPED_TRACE(who);
    Kv kv;
    kv.run(ping("drainer"));
    kv.run(drain("drainer"));
    kv.run(ping("other-pool", kOtherPool));
    kv.run(dispatch("wf-1"));
    auto a = kv.apply({lease_cmd(who, {{"wf-1", kv.wf("wf-1").wake_ts}})});
    ASSERT_TRUE(a.results[0].ok());
    EXPECT_TRUE(a.results[0].body["rejected"].is_string());
    EXPECT_TRUE(a.results[0].body["granted"].empty());
    EXPECT_TRUE(a.mutations.empty());
    EXPECT_EQ(kv.wf("wf-1").status, Status::kPending);
  }
}

TEST(StoreLease, TokensAreDistinctWithinAnEntryAndIncreaseAcrossEntries) {
  Kv kv;
  kv.apply({PingBatch{{ping_of("w1"), ping_of("w2")}}});
  for (int i = 0; i < 6; ++i) kv.run(dispatch("wf-" + std::to_string(i)));
  auto item = [&](int i) { return LeaseItem{"wf-" + std::to_string(i), kv.wf("wf-" + std::to_string(i)).wake_ts}; };

  // Two LeaseBatch commands in one entry (same worker): different tokens.
  auto a = kv.apply({ping("w1"), lease_cmd("w1", {item(0)}), lease_cmd("w1", {item(1), item(2)}), lease_cmd("w2", {item(3)})});
  ASSERT_EQ(a.results.size(), 4u);
  uint64_t t0 = a.results[1].body["granted"][0]["token"];
  uint64_t t1 = a.results[2].body["granted"][0]["token"];
  uint64_t t1b = a.results[2].body["granted"][1]["token"];
  uint64_t t2 = a.results[3].body["granted"][0]["token"];
  EXPECT_EQ(t0, lease_token(kv.index, 1));
  EXPECT_EQ(t1, lease_token(kv.index, 2));
  EXPECT_EQ(t1, t1b);  // one batch, one token; fencing is per (workflow, worker, token)
  EXPECT_EQ(t2, lease_token(kv.index, 3));
  EXPECT_EQ((std::set<uint64_t>{t0, t1, t2}).size(), 3u);
  EXPECT_NE(t0, 0u);

  // A later entry: every token is larger than every earlier one.
  uint64_t later = kv.lease("w1", "wf-4");
  EXPECT_GT(later, std::max({t0, t1, t2}));
  uint64_t even_later = kv.lease("w2", "wf-5");
  EXPECT_GT(even_later, later);

  // The token function itself: distinct positions, monotone in the index.
  std::set<uint64_t> seen;
  for (uint64_t index : {1ull, 2ull, 1000ull}) {
    for (size_t pos = 0; pos < kMaxCommandsPerEntry; ++pos) EXPECT_TRUE(seen.insert(lease_token(index, pos)).second);
    EXPECT_LT(lease_token(index, kMaxCommandsPerEntry - 1), lease_token(index + 1, 0));
  }
}

TEST(StoreLease, EntryWithTooManyCommandsRefusesTheExcess) {
  Kv kv;
  std::vector<Command> cmds(kMaxCommandsPerEntry + 2, ping("w1"));
  auto a = kv.apply(cmds);
  ASSERT_EQ(a.results.size(), cmds.size());
  EXPECT_TRUE(a.results[kMaxCommandsPerEntry - 1].ok());
  EXPECT_EQ(a.results[kMaxCommandsPerEntry].code, Code::kInvalid);
  EXPECT_EQ(a.results[kMaxCommandsPerEntry + 1].code, Code::kInvalid);
}

// =========================================================================================================
// Fencing

TEST(StoreFencing, CommitWithAStaleTokenOrAnotherWorkerConflicts) {
  Kv kv;
  kv.run(ping("w2"));
  uint64_t token = kv.start("wf-1", "w1");
  ASSERT_NE(token, 0u);
  const struct {
    const char* name;
    std::string worker;
    uint64_t token;
  } cases[] = {
      {"older token", "w1", token - 1},
      {"newer token", "w1", token + 1},
      {"zero token", "w1", 0},
      {"other worker, right token", "w2", token},
      {"other worker, zero token", "w2", 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto a = kv.apply({commit("wf-1", c.worker, c.token, complete_step())});
    EXPECT_EQ(a.results[0].code, Code::kConflict);
    EXPECT_NE(a.results[0].message.find("lease lost"), std::string::npos) << a.results[0].message;
    EXPECT_TRUE(a.mutations.empty());
    EXPECT_TRUE(a.wakes.empty());
  }
  EXPECT_EQ(kv.run(commit("nope", "w1", token, complete_step())).code, Code::kNotFound);
  // The holder still holds it.
  EXPECT_EQ(kv.wf("wf-1").lease_worker, "w1");
  EXPECT_TRUE(kv.run(commit("wf-1", "w1", token, complete_step())).ok());

  // A workflow that was never leased: token 0 with an empty worker must not match the empty lease.
  kv.run(dispatch("wf-2"));
  auto a = kv.apply({commit("wf-2", "", 0, complete_step())});
  EXPECT_EQ(a.results[0].code, Code::kConflict);
  EXPECT_TRUE(a.mutations.empty());
}

TEST(StoreFencing, ReleaseHandsTheLeaseBackWithoutAStep) {
  Kv kv;
  uint64_t token = kv.start("wf-1", "w1");
  ASSERT_TRUE(kv.run(commit("wf-1", "w1", token, continue_step(Json{{"i", 1}}))).ok());
  uint64_t token2 = kv.lease("w1", "wf-1");
  auto before = kv.wf("wf-1");
  ASSERT_EQ(before.steps, 1u);

  // Fenced like a commit.
  for (auto [worker, t] : {std::pair<std::string, uint64_t>{"w1", token}, {"w2", token2}, {"w1", 0}})
    EXPECT_EQ(kv.run(Release{"wf-1", worker, t, "draining"}).code, Code::kConflict);
  EXPECT_EQ(kv.run(Release{"nope", "w1", token2, "draining"}).code, Code::kNotFound);

  auto a = kv.apply({Release{"wf-1", "w1", token2, "draining"}});
  ASSERT_TRUE(a.results[0].ok()) << a.results[0].message;
  EXPECT_EQ(a.results[0].body["status"], "pending");
  auto after = kv.wf("wf-1");
  EXPECT_EQ(after.steps, 1u) << "a release is not a step";
  EXPECT_EQ(after.state, before.state);
  EXPECT_TRUE(after.lease_worker.empty());
  EXPECT_EQ(after.lease_token, 0u);
  EXPECT_EQ(after.wake_reason, "draining");
  ASSERT_EQ(a.wakes.size(), 1u) << "due again at once, for the next worker";
  EXPECT_EQ(a.wakes[0].workflow_id, "wf-1");
  // A retried release after it applied: the lease is gone, so it is a conflict and changes nothing.
  auto retry = kv.apply({Release{"wf-1", "w1", token2, "draining"}});
  EXPECT_EQ(retry.results[0].code, Code::kConflict);
  EXPECT_TRUE(retry.mutations.empty());
  // And the old holder's commit is refused.
  EXPECT_EQ(kv.run(commit("wf-1", "w1", token2, complete_step())).code, Code::kConflict);
}

TEST(StoreFencing, RetriedCommitIsAppliedOnce) {
  Kv kv;
  uint64_t token = kv.start("wf-1", "w1");
  auto first = kv.apply({commit("wf-1", "w1", token, continue_step(Json{{"i", 1}}))});
  ASSERT_TRUE(first.results[0].ok());
  EXPECT_EQ(first.results[0].body["duplicate"], false);
  EXPECT_EQ(kv.wf("wf-1").steps, 1u);
  auto after_first = kv.data;

  auto retry = kv.apply({commit("wf-1", "w1", token, continue_step(Json{{"i", 1}}))});
  ASSERT_TRUE(retry.results[0].ok()) << retry.results[0].message;
  EXPECT_EQ(retry.results[0].body["duplicate"], true);
  EXPECT_EQ(retry.results[0].body["status"], "pending");
  EXPECT_TRUE(retry.mutations.empty());
  EXPECT_TRUE(retry.wakes.empty());
  EXPECT_EQ(kv.data, after_first);
  EXPECT_EQ(kv.wf("wf-1").steps, 1u);

  // Retried twice in one entry as well; still once.
  auto twice = kv.apply({commit("wf-1", "w1", token, complete_step()), commit("wf-1", "w1", token, complete_step())});
  EXPECT_EQ(twice.results[0].body["duplicate"], true);
  EXPECT_EQ(twice.results[1].body["duplicate"], true);
  EXPECT_EQ(kv.wf("wf-1").steps, 1u);
  EXPECT_EQ(kv.wf("wf-1").status, Status::kPending);

  // Same token from another worker is not a duplicate; it is a lost lease.
  EXPECT_EQ(kv.run(commit("wf-1", "w2", token, complete_step())).code, Code::kConflict);

  // Once the workflow is leased again, a retry of the old commit is still recognised...
  uint64_t token2 = kv.lease("w1", "wf-1");
  ASSERT_GT(token2, token);
  EXPECT_EQ(kv.run(commit("wf-1", "w1", token, complete_step())).body["duplicate"], true);
  EXPECT_EQ(kv.wf("wf-1").lease_token, token2);
  // ...and the new lease commits normally, exactly once more.
  auto second = kv.run(commit("wf-1", "w1", token2, complete_step(Json(7))));
  EXPECT_EQ(second.body["duplicate"], false);
  EXPECT_EQ(kv.wf("wf-1").steps, 2u);
  EXPECT_EQ(kv.wf("wf-1").output, Json(7));
  EXPECT_TRUE(invariants(kv.data));
}

TEST(StoreFencing, InvalidStepIsRejectedAndTheLeaseKept) {
  StepResult empty_wait_name = wait_step({"go", ""});
  const struct {
    const char* name;
    StepResult step;
  } cases[] = {
      {"sleep without until", sleep_step(0)},
      {"sleep with until and for_ms", [] {
         auto st = relative_step(StepKind::kSleep, 100);
         st.until = 1;
         return st;
       }()},
      {"sleep for a negative duration", relative_step(StepKind::kSleep, -5)},
      {"wait with until and timeout_ms", [] {
         auto st = relative_step(StepKind::kWait, 100);
         st.until = 1;
         return st;
       }()},
      {"wait without signals or until", wait_step({})},
      {"wait with an empty name", empty_wait_name},
      {"fail without error", fail_step("")},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Kv kv;
    uint64_t token = kv.start("wf-1");
    auto a = kv.apply({commit("wf-1", "w1", token, c.step)});
    EXPECT_EQ(a.results[0].code, Code::kInvalid);
    EXPECT_TRUE(a.mutations.empty());
    EXPECT_EQ(kv.wf("wf-1").lease_token, token);
    EXPECT_TRUE(kv.run(commit("wf-1", "w1", token, complete_step())).ok());
  }
}

// =========================================================================================================
// Step kinds

TEST(StoreSteps, EveryKindSetsStatusAndWake) {
  struct Case {
    const char* name;
    std::function<StepResult(int64_t ts)> step;  // ts = the commit entry's timestamp
    Status want_status;
    std::optional<int64_t> want_wake_offset;  // relative to the commit's ts; nullopt = no wake entry
    const char* want_reason;
  };
  const Case cases[] = {
      {"complete", [](int64_t) { return complete_step(Json{{"r", 42}}); }, Status::kComplete, std::nullopt, ""},
      {"fail", [](int64_t) { return fail_step("boom"); }, Status::kFailed, std::nullopt, ""},
      {"sleep", [](int64_t ts) { return sleep_step(ts + 30000); }, Status::kSleeping, 30000, "timer"},
      {"sleep into the past", [](int64_t ts) { return sleep_step(ts - 30000); }, Status::kSleeping, 0, "timer"},
      {"wait without deadline", [](int64_t) { return wait_step({"go"}); }, Status::kWaiting, std::nullopt, ""},
      {"wait with deadline", [](int64_t ts) { return wait_step({"go"}, ts + 5000); }, Status::kWaiting, 5000,
       "deadline"},
      {"wait for a deadline only", [](int64_t ts) { return wait_step({}, ts + 5000); }, Status::kWaiting, 5000,
       "deadline"},
      {"continue", [](int64_t) { return continue_step(Json{{"page", 2}}); }, Status::kPending, 0, "continue"},
      // Durations start at the commit entry's (the leader's) time: the sender's clock plays no part.
      {"sleep for a duration", [](int64_t) { return relative_step(StepKind::kSleep, 30000); }, Status::kSleeping,
       30000, "timer"},
      {"wait with a relative deadline", [](int64_t) { return relative_step(StepKind::kWait, 5000); },
       Status::kWaiting, 5000, "deadline"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Kv kv;
    uint64_t token = kv.start("wf-1");
    int64_t at = kv.ts + 10;
    auto a = kv.apply({commit("wf-1", "w1", token, c.step(at))});
    ASSERT_TRUE(a.results[0].ok()) << a.results[0].message;
    EXPECT_EQ(a.results[0].body["status"], to_string(c.want_status));
    auto w = kv.wf("wf-1");
    EXPECT_EQ(w.status, c.want_status);
    EXPECT_TRUE(w.lease_worker.empty());
    EXPECT_EQ(w.lease_token, 0u);
    EXPECT_FALSE(kv.owns("w1", "wf-1"));
    EXPECT_EQ(w.steps, 1u);
    EXPECT_EQ(w.updated_ts, at);
    EXPECT_TRUE(kv.in_status_index(w));
    if (c.want_wake_offset) {
      EXPECT_TRUE(wakes_once_at(kv, "wf-1", at + *c.want_wake_offset));
      EXPECT_EQ(w.wake_reason, c.want_reason);
      EXPECT_TRUE(has_wake_event(a, "wf-1", at + *c.want_wake_offset, c.want_reason));
    } else {
      EXPECT_TRUE(no_wake(kv, "wf-1"));
      EXPECT_TRUE(a.wakes.empty());
    }
    if (c.want_status == Status::kComplete) { EXPECT_EQ(w.output, (Json{{"r", 42}})); }
    if (c.want_status == Status::kFailed) { EXPECT_EQ(w.error, "boom"); }
    if (std::string(c.name) == "continue") { EXPECT_EQ(w.state, (Json{{"page", 2}})); }
    EXPECT_TRUE(invariants(kv.data));
    // A terminal workflow can't be leased again; every other one can once due.
    kv.run(ping("w1"), 60000);
    if (is_terminal(w.status) || w.wake_ts < 0) {
      EXPECT_EQ(kv.run(lease_cmd("w1", {{"wf-1", w.wake_ts}})).body["granted"].size(), 0u);
    } else {
      EXPECT_NE(kv.lease("w1", "wf-1"), 0u);
    }
  }
}

TEST(StoreSteps, StateIsKeptUnlessTheStepReplacesIt) {
  Kv kv;
  uint64_t token = kv.start("wf-1");
  kv.run(commit("wf-1", "w1", token, continue_step(Json{{"page", 1}})));
  token = kv.lease("w1", "wf-1");
  StepResult sleep = sleep_step(kv.ts + 10);  // no state: keeps the saved one
  kv.run(commit("wf-1", "w1", token, sleep));
  EXPECT_EQ(kv.wf("wf-1").state, (Json{{"page", 1}}));
  kv.run(ping("w1"), 100);
  token = kv.lease("w1", "wf-1");
  sleep.state = Json{{"page", 3}};
  kv.run(commit("wf-1", "w1", token, sleep));
  EXPECT_EQ(kv.wf("wf-1").state, (Json{{"page", 3}}));
}

TEST(StoreSteps, WaitAndSignals) {
  // No wake without a deadline; a non-matching signal doesn't wake it; a matching one wakes it now.
  {
    Kv kv;
    uint64_t token = kv.start("wf-1");
    kv.run(commit("wf-1", "w1", token, wait_step({"go", "also"})));
    EXPECT_TRUE(no_wake(kv, "wf-1"));
    EXPECT_EQ(kv.wf("wf-1").wait_signals, (std::vector<std::string>{"go", "also"}));

    auto other = kv.apply({signal("wf-1", "unrelated")});
    ASSERT_TRUE(other.results[0].ok());
    EXPECT_EQ(other.results[0].body["seq"], 1);
    EXPECT_TRUE(other.wakes.empty());
    EXPECT_TRUE(no_wake(kv, "wf-1"));
    EXPECT_EQ(kv.wf("wf-1").status, Status::kWaiting);

    auto go = kv.apply({signal("wf-1", "also", Json{{"x", 1}})});
    ASSERT_TRUE(go.results[0].ok());
    EXPECT_EQ(go.results[0].body["seq"], 2);
    EXPECT_TRUE(wakes_once_at(kv, "wf-1", kv.ts));
    EXPECT_TRUE(has_wake_event(go, "wf-1", kv.ts, "signal"));
    EXPECT_EQ(kv.wf("wf-1").wake_reason, "signal");

    // A second matching signal doesn't move the (already due) wake entry.
    int64_t woke_at = kv.ts;
    auto again = kv.apply({signal("wf-1", "go")});
    EXPECT_TRUE(again.wakes.empty());
    EXPECT_TRUE(wakes_once_at(kv, "wf-1", woke_at));
    auto sigs = kv.signals("wf-1");
    ASSERT_EQ(sigs.size(), 3u);
    EXPECT_EQ(sigs[1].name, "also");
    EXPECT_EQ(sigs[1].body, (Json{{"x", 1}}));
    EXPECT_EQ(sigs[1].ts, woke_at);
    EXPECT_TRUE(invariants(kv.data));
  }
  // A deadline: wake at the deadline, moved earlier by a matching signal.
  {
    Kv kv;
    uint64_t token = kv.start("wf-1");
    int64_t deadline = kv.ts + 100000;
    kv.run(commit("wf-1", "w1", token, wait_step({"go"}, deadline)));
    EXPECT_TRUE(wakes_once_at(kv, "wf-1", deadline));
    kv.run(signal("wf-1", "nope"));
    EXPECT_TRUE(wakes_once_at(kv, "wf-1", deadline));
    kv.run(signal("wf-1", "go"));
    EXPECT_TRUE(wakes_once_at(kv, "wf-1", kv.ts));
    EXPECT_TRUE(invariants(kv.data));
  }
  // A matching signal already pending when the task commits the wait: immediate wake.
  {
    Kv kv;
    uint64_t token = kv.start("wf-1");
    kv.run(signal("wf-1", "go"));  // arrives while running: stays pending, no wake
    EXPECT_TRUE(no_wake(kv, "wf-1"));
    EXPECT_EQ(kv.wf("wf-1").status, Status::kRunning);
    auto a = kv.apply({commit("wf-1", "w1", token, wait_step({"go"}, kv.ts + 100000))});
    EXPECT_TRUE(wakes_once_at(kv, "wf-1", kv.ts));
    EXPECT_EQ(kv.wf("wf-1").wake_reason, "signal");
    EXPECT_TRUE(has_wake_event(a, "wf-1", kv.ts, "signal"));
    EXPECT_TRUE(invariants(kv.data));
  }
  // A pending signal the commit consumed doesn't count.
  {
    Kv kv;
    uint64_t token = kv.start("wf-1");
    kv.run(signal("wf-1", "go"));
    kv.run(commit("wf-1", "w1", token, wait_step({"go"}), /*consumed=*/1));
    EXPECT_TRUE(no_wake(kv, "wf-1"));
    EXPECT_TRUE(kv.signals("wf-1").empty());
    EXPECT_TRUE(invariants(kv.data));
  }
}

TEST(StoreSteps, ConsumedSignalsAreDeletedLaterOnesStay) {
  Kv kv;
  uint64_t token = kv.start("wf-1");
  for (int i = 1; i <= 5; ++i) ASSERT_EQ(kv.run(signal("wf-1", "s" + std::to_string(i))).body["seq"], i);
  kv.run(commit("wf-1", "w1", token, continue_step(Json(nullptr)), /*consumed=*/3));
  auto w = kv.wf("wf-1");
  EXPECT_EQ(w.consumed_signal_seq, 3u);
  auto sigs = kv.signals("wf-1");
  ASSERT_EQ(sigs.size(), 2u);
  EXPECT_EQ(sigs[0].seq, 4u);
  EXPECT_EQ(sigs[1].seq, 5u);

  // Consuming beyond what exists is capped; consuming less than before never resurrects anything.
  token = kv.lease("w1", "wf-1");
  kv.run(commit("wf-1", "w1", token, continue_step(Json(nullptr)), /*consumed=*/2));
  EXPECT_EQ(kv.wf("wf-1").consumed_signal_seq, 3u);
  EXPECT_EQ(kv.signals("wf-1").size(), 2u);
  token = kv.lease("w1", "wf-1");
  kv.run(commit("wf-1", "w1", token, continue_step(Json(nullptr)), /*consumed=*/99));
  EXPECT_EQ(kv.wf("wf-1").consumed_signal_seq, 5u);
  EXPECT_TRUE(kv.signals("wf-1").empty());
  EXPECT_EQ(kv.run(signal("wf-1", "s6")).body["seq"], 6);
  EXPECT_TRUE(invariants(kv.data));
}

TEST(StoreSteps, SendSignalErrorsAndDeduplication) {
  Kv kv;
  kv.run(dispatch("wf-1"));
  auto a = kv.apply({signal("wf-1", "go", Json(1), "sig-1")});
  ASSERT_TRUE(a.results[0].ok());
  EXPECT_EQ(a.results[0].body, (Json{{"seq", 1}, {"duplicate", false}}));
  auto dup = kv.apply({signal("wf-1", "go", Json(1), "sig-1")});
  EXPECT_EQ(dup.results[0].body, (Json{{"seq", 1}, {"duplicate", true}}));
  EXPECT_TRUE(dup.mutations.empty());
  EXPECT_EQ(kv.signals("wf-1").size(), 1u);

  const struct {
    const char* name;
    Command cmd;
    Code want;
  } cases[] = {
      {"unknown workflow", signal("nope", "go"), Code::kNotFound},
      {"invalid workflow id", signal("a b", "go"), Code::kInvalid},
      {"empty name", signal("wf-1", ""), Code::kInvalid},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = kv.apply({c.cmd});
    EXPECT_EQ(r.results[0].code, c.want);
    EXPECT_TRUE(r.mutations.empty());
  }
  kv.run(cancel("wf-1"));
  auto late = kv.apply({signal("wf-1", "go")});
  EXPECT_EQ(late.results[0].code, Code::kFailedPrecondition);
  EXPECT_TRUE(late.mutations.empty());
}

TEST(StoreSteps, RetryBacksOffThenFails) {
  Config config;
  config.default_max_attempts = 4;
  config.retry_base_ms = 1000;
  config.retry_max_ms = 3000;
  Kv kv(config);
  uint64_t token = kv.start("wf-1");
  for (uint32_t attempt = 1; attempt < 4; ++attempt) {
    SCOPED_TRACE(attempt);
    int64_t at = kv.ts + 10;
    auto a = kv.apply({commit("wf-1", "w1", token, retry_step("flaky"))});
    ASSERT_TRUE(a.results[0].ok());
    auto w = kv.wf("wf-1");
    EXPECT_EQ(w.status, Status::kSleeping);
    EXPECT_EQ(w.attempt, attempt);
    EXPECT_EQ(w.error, "flaky");
    EXPECT_EQ(w.wake_reason, "retry");
    int64_t low = std::min<int64_t>(1000LL << (attempt - 1), 3000);
    EXPECT_GE(w.wake_ts - at, low);
    EXPECT_LT(w.wake_ts - at, low + 500);
    EXPECT_EQ(w.wake_ts - at, retry_backoff_ms(1000, 3000, attempt - 1, "wf-1", kv.index));
    EXPECT_TRUE(wakes_once_at(kv, "wf-1", w.wake_ts));
    EXPECT_TRUE(has_wake_event(a, "wf-1", w.wake_ts, "retry"));
    kv.run(ping("w1"), w.wake_ts - kv.ts);
    token = kv.lease("w1", "wf-1");
    ASSERT_NE(token, 0u);
  }
  auto last = kv.apply({commit("wf-1", "w1", token, retry_step("flaky"))});
  ASSERT_TRUE(last.results[0].ok());
  EXPECT_EQ(last.results[0].body["status"], "failed");
  auto w = kv.wf("wf-1");
  EXPECT_EQ(w.status, Status::kFailed);
  EXPECT_EQ(w.attempt, 4u);
  EXPECT_NE(w.error.find("max attempts (4)"), std::string::npos) << w.error;
  EXPECT_NE(w.error.find("flaky"), std::string::npos);
  EXPECT_TRUE(no_wake(kv, "wf-1"));
  EXPECT_TRUE(last.wakes.empty());
  EXPECT_TRUE(invariants(kv.data));
}

TEST(StoreSteps, RetryHonoursPerWorkflowMaxAndPerStepBackoff) {
  Kv kv;
  auto s = spec("wf-1");
  s.max_attempts = 2;
  kv.run(dispatch(s));
  kv.run(ping("w1"));
  uint64_t token = kv.lease("w1", "wf-1");
  int64_t at = kv.ts + 10;
  kv.run(commit("wf-1", "w1", token, retry_step("e", 40, 50)));
  auto w = kv.wf("wf-1");
  EXPECT_GE(w.wake_ts - at, 40);
  EXPECT_LT(w.wake_ts - at, 60);
  // A successful step resets the attempt counter.
  kv.run(ping("w1"), 100);
  token = kv.lease("w1", "wf-1");
  kv.run(commit("wf-1", "w1", token, continue_step(Json(nullptr))));
  EXPECT_EQ(kv.wf("wf-1").attempt, 0u);
  token = kv.lease("w1", "wf-1");
  kv.run(commit("wf-1", "w1", token, retry_step("e")));
  EXPECT_EQ(kv.wf("wf-1").status, Status::kSleeping);
  kv.run(ping("w1"), 10 * 60 * 1000);
  token = kv.lease("w1", "wf-1");
  kv.run(commit("wf-1", "w1", token, retry_step("e")));
  EXPECT_EQ(kv.wf("wf-1").status, Status::kFailed);
  EXPECT_TRUE(no_wake(kv, "wf-1"));
}

// Saturating min(base · 2^attempt, max).
int64_t expected_delay(int64_t base, int64_t max, uint32_t attempt) {
  base = std::max<int64_t>(base, 1);
  max = std::max(max, base);
  __int128 d = base;
  for (uint32_t i = 0; i < attempt && d < max; ++i) d *= 2;
  return static_cast<int64_t>(std::min<__int128>(d, max));
}

TEST(StoreSteps, RetryBackoffBounds) {
  const int64_t bases[] = {1, 2, 3, 7, 100, 1000, 5000};
  const int64_t maxes[] = {1, 1000, 60000, 300000, int64_t{1} << 40};
  std::map<int64_t, std::set<int64_t>> jitters;  // base → jitters seen
  for (int64_t base : bases) {
    for (int64_t max : maxes) {
      for (uint32_t attempt = 0; attempt < 70; ++attempt) {
        for (int id = 0; id < 12; ++id) {
          std::string wf = "wf-" + std::to_string(id);
          uint64_t index = 1000 + static_cast<uint64_t>(id) * 7 + attempt;
          int64_t got = retry_backoff_ms(base, max, attempt, wf, index);
          int64_t low = expected_delay(base, max, attempt);
          int64_t span = std::max<int64_t>(1, base / 2);
          ASSERT_GE(got, low) << "base " << base << " max " << max << " attempt " << attempt;
          ASSERT_LT(got, low + span) << "base " << base << " max " << max << " attempt " << attempt;
          ASSERT_EQ(got, retry_backoff_ms(base, max, attempt, wf, index));  // deterministic
          jitters[base].insert(got - low);
        }
      }
    }
  }
  // The jitter actually varies (it is not a constant offset).
  EXPECT_GT(jitters[1000].size(), 100u);
  EXPECT_GT(jitters[100].size(), 30u);
  EXPECT_EQ(jitters[1], std::set<int64_t>{0});

  // Degenerate and extreme inputs stay non-negative and never overflow.
  EXPECT_EQ(retry_backoff_ms(0, 0, 0, "wf", 1), 1);
  EXPECT_EQ(retry_backoff_ms(-5, -5, 3, "wf", 1), 1);
  for (uint32_t attempt : {0u, 1u, 62u, 63u, 64u, 1000u, std::numeric_limits<uint32_t>::max()}) {
    for (int64_t base : {int64_t{1}, int64_t{1000}, kI64Max / 2, kI64Max}) {
      SCOPED_TRACE(testing::Message() << "attempt " << attempt << " base " << base);
      int64_t got = retry_backoff_ms(base, kI64Max, attempt, "wf", 1);
      EXPECT_GE(got, expected_delay(base, kI64Max, attempt));
      EXPECT_GT(got, 0);
    }
  }
}

TEST(StoreSteps, RetryWithAHugeBackoffStillHasOneFutureWake) {
  Kv kv;
  uint64_t token = kv.start("wf-1");
  int64_t at = kv.ts + 10;
  auto a = kv.apply({commit("wf-1", "w1", token, retry_step("e", kI64Max - 5, kI64Max))});
  ASSERT_TRUE(a.results[0].ok());
  auto w = kv.wf("wf-1");
  EXPECT_EQ(w.status, Status::kSleeping);
  EXPECT_GT(w.wake_ts, at);
  EXPECT_TRUE(wakes_once_at(kv, "wf-1", w.wake_ts));
  EXPECT_TRUE(invariants(kv.data));
}

// =========================================================================================================
// Children and parents

TEST(StoreChildren, DispatchedAtomicallyWithTheCommit) {
  Kv kv;
  uint64_t token = kv.start("parent");
  CommitStep c;
  c.workflow_id = "parent";
  c.worker_id = "w1";
  c.token = token;
  c.step = wait_step({std::string(kChildCompletedSignal)});
  auto child1 = spec("child-1", "sub");
  child1.pool = "";  // defaults to the parent's pool
  child1.notify_parent = true;
  auto child2 = spec("child-2", "sub", kOtherPool);
  child2.run_at = kv.ts + 50000;
  c.children = {child1, child2};

  // A stale commit creates nothing.
  CommitStep stale = c;
  stale.token = token + 1;
  auto refused = kv.apply({stale});
  EXPECT_EQ(refused.results[0].code, Code::kConflict);
  EXPECT_TRUE(refused.mutations.empty());
  EXPECT_FALSE(kv.find("child-1"));

  int64_t at = kv.ts + 10;
  auto a = kv.apply({c});
  ASSERT_TRUE(a.results[0].ok()) << a.results[0].message;
  EXPECT_EQ(a.results[0].body["children"], (Json::array({"child-1", "child-2"})));
  auto k1 = kv.wf("child-1");
  EXPECT_EQ(k1.pool, kPool);
  EXPECT_EQ(k1.parent_id, "parent");
  EXPECT_TRUE(k1.notify_parent);
  EXPECT_EQ(k1.status, Status::kPending);
  EXPECT_TRUE(wakes_once_at(kv, "child-1", at));
  auto k2 = kv.wf("child-2");
  EXPECT_EQ(k2.pool, kOtherPool);
  EXPECT_EQ(k2.parent_id, "parent");
  EXPECT_FALSE(k2.notify_parent);
  EXPECT_TRUE(wakes_once_at(kv, "child-2", child2.run_at));
  EXPECT_GT(child2.run_at, at);
  EXPECT_EQ(kv.wf("parent").status, Status::kWaiting);
  EXPECT_TRUE(invariants(kv.data));
}

TEST(StoreChildren, AnInvalidChildRejectsTheWholeCommit) {
  auto bad_pool = spec("child", "sub", "bad pool");
  auto bad_tags = spec("child");
  bad_tags.tags = Json("not a map");
  const struct {
    const char* name;
    DispatchSpec child;
  } cases[] = {
      {"bad id", spec("bad id", "sub")},
      {"bad name", spec("child", "bad name")},
      {"bad pool", bad_pool},
      {"tags not a map", bad_tags},
      {"id taken by another workflow", spec("other", "sub")},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Kv kv;
    kv.run(dispatch("other", "different-name"));
    uint64_t token = kv.start("parent");
    CommitStep commit_cmd;
    commit_cmd.workflow_id = "parent";
    commit_cmd.worker_id = "w1";
    commit_cmd.token = token;
    commit_cmd.step = wait_step({std::string(kChildCompletedSignal)});
    commit_cmd.children = {spec("good-child", "sub"), c.child};
    auto a = kv.apply({commit_cmd});
    EXPECT_EQ(a.results[0].code, Code::kInvalid) << a.results[0].body.dump();
    EXPECT_TRUE(a.mutations.empty());
    EXPECT_TRUE(a.wakes.empty());
    EXPECT_FALSE(kv.find("good-child"));
    EXPECT_EQ(kv.wf("parent").lease_token, token);
  }
}

TEST(StoreChildren, ParentIsNotifiedWhenAChildEnds) {
  struct Case {
    const char* name;
    std::function<void(Kv&, uint64_t child_token)> end_child;
    const char* want_status;
  };
  const Case cases[] = {
      {"completes", [](Kv& kv, uint64_t t) { kv.run(commit("child", "w2", t, complete_step(Json("out")))); },
       "complete"},
      {"fails", [](Kv& kv, uint64_t t) { kv.run(commit("child", "w2", t, fail_step("bad"))); }, "failed"},
      {"retries out",
       [](Kv& kv, uint64_t t) {
         auto s = retry_step("bad");
         kv.config.default_max_attempts = 1;
         kv.run(commit("child", "w2", t, s));
       },
       "failed"},
      {"is cancelled", [](Kv& kv, uint64_t) { kv.run(cancel("child", "stop")); }, "cancelled"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Kv kv;
    kv.run(ping("w2"));
    uint64_t token = kv.start("parent", "w1");
    CommitStep cm;
    cm.workflow_id = "parent";
    cm.worker_id = "w1";
    cm.token = token;
    cm.step = wait_step({std::string(kChildCompletedSignal)});
    auto child = spec("child", "sub");
    child.notify_parent = true;
    cm.children = {child};
    ASSERT_TRUE(kv.run(cm).ok());
    EXPECT_TRUE(no_wake(kv, "parent"));
    uint64_t child_token = kv.lease("w2", "child");
    ASSERT_NE(child_token, 0u);

    c.end_child(kv, child_token);
    auto sigs = kv.signals("parent");
    ASSERT_EQ(sigs.size(), 1u);
    EXPECT_EQ(sigs[0].name, kChildCompletedSignal);
    EXPECT_EQ(sigs[0].body["id"], "child");
    EXPECT_EQ(sigs[0].body["name"], "sub");
    EXPECT_EQ(sigs[0].body["status"], c.want_status);
    if (std::string(c.want_status) == "complete") { EXPECT_EQ(sigs[0].body["output"], "out"); }
    // The waiting parent is due now.
    EXPECT_EQ(kv.wf("parent").wake_reason, "signal");
    EXPECT_TRUE(wakes_once_at(kv, "parent", kv.ts));
    EXPECT_TRUE(invariants(kv.data));
  }
}

TEST(StoreChildren, NoNotificationUnlessAskedAndNoneToAnEndedParent) {
  Kv kv;
  kv.run(ping("w2"));
  uint64_t token = kv.start("parent", "w1");
  CommitStep cm;
  cm.workflow_id = "parent";
  cm.worker_id = "w1";
  cm.token = token;
  cm.step = complete_step();  // the parent ends in the same commit
  auto quiet = spec("quiet", "sub");
  auto loud = spec("loud", "sub");
  loud.notify_parent = true;
  cm.children = {quiet, loud};
  ASSERT_TRUE(kv.run(cm).ok());
  uint64_t tq = kv.lease("w2", "quiet");
  uint64_t tl = kv.lease("w2", "loud");
  auto a = kv.apply({commit("quiet", "w2", tq, complete_step()), commit("loud", "w2", tl, complete_step())});
  EXPECT_TRUE(a.results[0].ok());
  EXPECT_TRUE(a.results[1].ok());
  EXPECT_TRUE(kv.signals("parent").empty());
  EXPECT_EQ(kv.wf("parent").status, Status::kComplete);
  EXPECT_TRUE(invariants(kv.data));
}

TEST(StoreSignals, CommitDeliversSignalsToOtherWorkflows) {
  Kv kv;
  kv.run(dispatch("target"));
  uint64_t tt = kv.lease("w1", "target");
  ASSERT_EQ(tt, 0u);  // w1 has not joined yet: rejected
  uint64_t token = kv.start("sender");
  tt = kv.lease("w1", "target");
  kv.run(commit("target", "w1", tt, wait_step({"ping"})));
  kv.run(dispatch("done"));
  kv.run(cancel("done"));

  CommitStep cm = std::get<CommitStep>(commit("sender", "w1", token, complete_step()));
  cm.signals = {SignalSpec{"target", "ping", Json{{"from", "sender"}}, "s-1"},
                SignalSpec{"missing", "ping", Json(), ""},
                SignalSpec{"done", "ping", Json(), ""}};
  auto a = kv.apply({cm});
  ASSERT_TRUE(a.results[0].ok());
  const auto& undelivered = a.results[0].body["undelivered"];
  ASSERT_EQ(undelivered.size(), 2u);
  EXPECT_EQ(undelivered[0]["workflow_id"], "missing");
  EXPECT_EQ(undelivered[1]["workflow_id"], "done");
  auto sigs = kv.signals("target");
  ASSERT_EQ(sigs.size(), 1u);
  EXPECT_EQ(sigs[0].body, (Json{{"from", "sender"}}));
  EXPECT_TRUE(wakes_once_at(kv, "target", kv.ts));
  EXPECT_TRUE(has_wake_event(a, "target", kv.ts, "signal"));
  EXPECT_TRUE(invariants(kv.data));
}

// =========================================================================================================
// Cancel

TEST(StoreCancel, TerminalWithoutWakeOrLeaseAndIdempotent) {
  for (const char* from : {"pending", "running", "sleeping", "waiting"}) {
    SCOPED_TRACE(from);
    Kv kv;
    uint64_t token = kv.start("wf-1");
    std::string f = from;
    if (f == "pending") kv.run(commit("wf-1", "w1", token, continue_step(Json(nullptr))));
    if (f == "sleeping") kv.run(commit("wf-1", "w1", token, sleep_step(kv.ts + 100000)));
    if (f == "waiting") kv.run(commit("wf-1", "w1", token, wait_step({"go"}, kv.ts + 100000)));
    ASSERT_EQ(to_string(kv.wf("wf-1").status), f);

    auto a = kv.apply({cancel("wf-1", "operator said so")});
    ASSERT_TRUE(a.results[0].ok());
    EXPECT_EQ(a.results[0].body, (Json{{"already", false}, {"status", "cancelled"}}));
    EXPECT_TRUE(a.wakes.empty());
    auto w = kv.wf("wf-1");
    EXPECT_EQ(w.status, Status::kCancelled);
    EXPECT_EQ(w.error, "operator said so");
    EXPECT_TRUE(w.lease_worker.empty());
    EXPECT_EQ(w.lease_token, 0u);
    EXPECT_FALSE(kv.owns("w1", "wf-1"));
    EXPECT_TRUE(no_wake(kv, "wf-1"));
    EXPECT_TRUE(kv.in_status_index(w));
    EXPECT_TRUE(invariants(kv.data));

    // The old holder's commit is fenced off.
    auto late = kv.apply({commit("wf-1", "w1", token, complete_step())});
    if (f == "running") {
      EXPECT_EQ(late.results[0].code, Code::kConflict);
      EXPECT_TRUE(late.mutations.empty());
    }
    EXPECT_EQ(kv.wf("wf-1").status, Status::kCancelled);

    auto again = kv.apply({cancel("wf-1")});
    ASSERT_TRUE(again.results[0].ok());
    EXPECT_EQ(again.results[0].body, (Json{{"already", true}, {"status", "cancelled"}}));
    EXPECT_TRUE(again.mutations.empty());
  }
  Kv kv;
  EXPECT_EQ(kv.run(cancel("nope")).code, Code::kNotFound);
  // Cancelling a completed workflow leaves it complete.
  uint64_t token = kv.start("wf-2");
  kv.run(commit("wf-2", "w1", token, complete_step()));
  auto r = kv.run(cancel("wf-2"));
  EXPECT_EQ(r.body, (Json{{"already", true}, {"status", "complete"}}));
  EXPECT_EQ(kv.wf("wf-2").status, Status::kComplete);
}

// =========================================================================================================
// Reclaim

TEST(StoreReclaim, LostWorkerLosesItsLeasesAliveWorkerKeepsThem) {
  Kv kv;
  kv.apply({PingBatch{{ping_of("lost"), ping_of("alive")}}});
  for (auto id : {"wf-1", "wf-2", "wf-3"}) kv.run(dispatch(id));
  std::map<std::string, int64_t> due;
  for (auto id : {"wf-1", "wf-2"}) due[id] = kv.wf(id).wake_ts;
  uint64_t t1 = kv.lease("lost", "wf-1");
  uint64_t t2 = kv.lease("lost", "wf-2");
  uint64_t t3 = kv.lease("alive", "wf-3");
  int64_t lost_ping = kv.worker("lost")->last_ping_ts;

  // "alive" keeps pinging; "lost" doesn't.
  kv.run(ping("alive"), 1000);
  kv.run(ping("alive"), 1000);

  // Exactly at the bound the worker still counts as alive (inclusive).
  int64_t lost_after = 5000;
  kv.ts = lost_ping + lost_after - 10;
  auto at_bound = kv.apply({reclaim("lost", lost_after)});  // entry ts == lost_ping + lost_after
  EXPECT_EQ(at_bound.results[0].body["alive"], true);
  EXPECT_TRUE(at_bound.mutations.empty());

  auto a = kv.apply({reclaim("lost", lost_after), reclaim("alive", lost_after)}, 1);
  ASSERT_TRUE(a.results[0].ok());
  EXPECT_EQ(a.results[0].body["alive"], false);
  auto released = a.results[0].body["released"].get<std::vector<std::string>>();
  std::sort(released.begin(), released.end());
  EXPECT_EQ(released, (std::vector<std::string>{"wf-1", "wf-2"}));
  EXPECT_EQ(a.results[1].body["alive"], true);
  EXPECT_TRUE(a.results[1].body["released"].empty());
  for (auto id : {"wf-1", "wf-2"}) {
    SCOPED_TRACE(id);
    auto w = kv.wf(id);
    EXPECT_EQ(w.status, Status::kPending);
    EXPECT_EQ(w.wake_reason, "reclaim");
    EXPECT_TRUE(w.lease_worker.empty());
    EXPECT_FALSE(kv.owns("lost", id));
    EXPECT_LT(due[id], kv.ts);
    EXPECT_TRUE(wakes_once_at(kv, id, due[id])) << "a reclaimed workflow keeps its place in the queue";
    EXPECT_TRUE(has_wake_event(a, id, due[id], "reclaim"));
  }
  EXPECT_EQ(a.wakes.size(), 2u);
  EXPECT_FALSE(kv.worker("lost"));  // GC'd
  ASSERT_TRUE(kv.worker("alive"));
  EXPECT_EQ(kv.wf("wf-3").lease_worker, "alive");
  EXPECT_EQ(kv.wf("wf-3").lease_token, t3);
  EXPECT_TRUE(invariants(kv.data));

  // A worker wrongly declared lost only loses its commits.
  EXPECT_EQ(kv.run(commit("wf-1", "lost", t1, complete_step())).code, Code::kConflict);
  EXPECT_EQ(kv.run(commit("wf-2", "lost", t2, complete_step())).code, Code::kConflict);
  EXPECT_TRUE(kv.run(commit("wf-3", "alive", t3, complete_step())).ok());
  // A new holder picks the workflow up.
  EXPECT_NE(kv.lease("alive", "wf-1"), 0u);

  // Reclaiming a worker that is gone already does nothing harmful.
  auto gone = kv.apply({reclaim("lost", lost_after)});
  EXPECT_EQ(gone.results[0].body["alive"], false);
  EXPECT_TRUE(gone.results[0].body["released"].empty());
  EXPECT_TRUE(gone.wakes.empty());
  EXPECT_TRUE(invariants(kv.data));
}

// =========================================================================================================
// Properties over random command sequences

struct Gen {
  std::mt19937_64 rng;
  explicit Gen(uint64_t seed) : rng(seed) {}
  uint64_t below(uint64_t n) { return n == 0 ? 0 : rng() % n; }
  bool chance(int percent) { return below(100) < static_cast<uint64_t>(percent); }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }
};

const std::vector<std::pair<std::string, std::string>> kRandomWorkers = {
    {"w0", "p0"}, {"w1", "p0"}, {"w2", "p0"}, {"w3", "p1"}};
const std::vector<std::string> kRandomPools = {"p0", "p1"};
const std::vector<std::string> kSignalNames = {"go", "stop", std::string(kChildCompletedSignal)};

// The random workload: ids come from a window of 16 that slides slowly, so workflows keep being created while
// the recent ones collide often (idempotency, conflicts, signals and cancels to live workflows).
struct Workload {
  Gen g;
  uint64_t window = 0;
  explicit Workload(uint64_t seed) : g(seed) {}

  std::string wf() { return "wf-" + std::to_string(window + g.below(16)); }

  DispatchSpec spec(const Kv& kv, std::string id) {
    DispatchSpec s;
    s.id = std::move(id);
    s.pool = g.chance(80) ? "p0" : "p1";
    s.name = g.chance(50) ? "a" : "b";
    s.input = Json(static_cast<int64_t>(g.below(100)));
    if (g.chance(15)) s.idempotency_key = "key-" + std::to_string(g.below(6));
    if (g.chance(20)) s.run_at = kv.ts + static_cast<int64_t>(g.below(3000));
    if (g.chance(15)) {
      s.parent_id = wf();
      s.notify_parent = g.chance(70);
    }
    if (g.chance(10)) s.max_attempts = static_cast<uint32_t>(1 + g.below(3));
    return s;
  }

  std::vector<Command> entry(const Kv& kv, DecodeCache& cache) {
    if (g.chance(6)) ++window;
    std::vector<Workflow> leased;
    std::vector<std::string> live;  // not terminal: the interesting targets of signals and cancels
    for (const auto& [k, v] : kv.data) {
      if (k[0] != keys::kWorkflow) continue;
      const auto& w = cache.workflow(k, v);
      if (!w.lease_worker.empty()) leased.push_back(w);
      if (!is_terminal(w.status)) live.push_back(w.id);
    }
    auto target = [&] { return !live.empty() && g.chance(60) ? g.pick(live) : wf(); };
    auto wakes = all_wakes(kv.data);
    std::vector<Command> cmds;
    size_t n = 1 + g.below(4);
    for (size_t i = 0; i < n; ++i) {
      uint64_t r = g.below(100);
      const auto& [worker, wpool] = kRandomWorkers[g.below(kRandomWorkers.size())];
      if (r < 12) {
        PingBatch b;
        for (const auto& [id, pool] : kRandomWorkers)
          if (g.chance(60)) b.pings.push_back(ping_of(id, pool));
        cmds.push_back(b);
      } else if (r < 27) {
        cmds.push_back(dispatch(spec(kv, wf())));
      } else if (r < 35) {
        cmds.push_back(
            signal(target(), g.pick(kSignalNames), Json(1), g.chance(30) ? "sig-" + std::to_string(g.below(4)) : ""));
      } else if (r < 39) {
        cmds.push_back(cancel(target()));
      } else if (r < 62) {
        std::string pool = g.chance(95) ? wpool : g.pick(kRandomPools);
        std::vector<WakeEntry> due;
        for (const auto& e : wakes)
          if (e.pool == pool && e.ts <= kv.ts) due.push_back(e);
        std::vector<LeaseItem> items;
        size_t m = 1 + g.below(3);
        for (size_t j = 0; j < m; ++j) {
          if (!due.empty() && g.chance(80)) {
            const auto& e = g.pick(due);
            items.push_back(LeaseItem{e.id, e.ts + (g.chance(10) ? 1 : 0)});
          } else if (!wakes.empty() && g.chance(50)) {
            const auto& e = g.pick(wakes);  // maybe not due, maybe another pool
            items.push_back(LeaseItem{e.id, e.ts});
          } else {
            items.push_back(LeaseItem{wf(), kv.ts - static_cast<int64_t>(g.below(1000))});
          }
        }
        cmds.push_back(lease_cmd(worker, std::move(items), pool));
      } else if (r < 90) {
        CommitStep c;
        if (!leased.empty() && g.chance(90)) {
          const auto& w = g.pick(leased);
          c.workflow_id = w.id;
          c.worker_id = w.lease_worker;
          c.token = w.lease_token;
          if (g.chance(8)) c.token = w.last_commit_token;  // a stale or retried token
          if (g.chance(5)) c.worker_id = worker;
          c.consumed_signal_seq = g.below(w.next_signal_seq + 1);
        } else {
          c.workflow_id = wf();
          c.worker_id = worker;
          c.token = g.below(1000);
        }
        int64_t ts = kv.ts;
        switch (g.below(7)) {
          case 0: c.step = complete_step(Json(1)); break;
          case 1: c.step = fail_step("e"); break;
          case 2: c.step = sleep_step(ts + static_cast<int64_t>(g.below(3000))); break;
          case 3: {
            std::vector<std::string> names;
            for (const auto& s : kSignalNames)
              if (g.chance(40)) names.push_back(s);
            c.step =
                wait_step(names, names.empty() || g.chance(40) ? ts + static_cast<int64_t>(1 + g.below(3000)) : 0);
            break;
          }
          case 4: c.step = retry_step("e", static_cast<int64_t>(1 + g.below(200)), 1000); break;
          case 5: c.step = continue_step(Json(static_cast<int64_t>(g.below(10)))); break;
          default: c.step = g.chance(50) ? sleep_step(0) : fail_step(""); break;  // invalid
        }
        if (g.chance(15)) {
          auto child = spec(kv, g.chance(70) ? "child-" + std::to_string(window + g.below(40)) : wf());
          child.notify_parent = g.chance(70);
          if (g.chance(50)) child.pool.clear();
          c.children.push_back(child);
        }
        if (g.chance(15)) c.signals.push_back(SignalSpec{target(), g.pick(kSignalNames), Json(2), ""});
        cmds.push_back(std::move(c));
      } else if (r < 92) {
        cmds.push_back(drain(worker, wpool));
      } else if (r < 95) {
        cmds.push_back(leave(worker, wpool));
      } else {
        cmds.push_back(reclaim(worker, static_cast<int64_t>(g.below(3000)), wpool));
      }
    }
    return cmds;
  }
};

struct Holder {
  std::string worker;
  uint64_t token = 0;
  bool operator==(const Holder&) const = default;
};

TEST(StoreProperties, RandomSequencesKeepEveryInvariant) {
  Workload gen(20240607);
  auto& g = gen.g;
  DecodeCache cache;
  Kv kv;
  kv.config.default_max_attempts = 3;
  std::map<std::string, Holder> live;  // a reference model of the leases, from the results alone
  std::map<std::string, size_t> seen;  // coverage counters, so the test can't pass vacuously
  constexpr int kEntries = 2500;
  for (int e = 0; e < kEntries; ++e) {
    auto cmds = gen.entry(kv, cache);
    auto a = kv.apply(cmds, static_cast<int64_t>(g.below(400)));
    ASSERT_EQ(a.results.size(), cmds.size());
    for (size_t i = 0; i < cmds.size(); ++i) {
      const auto& r = a.results[i];
      const auto& c = cmds[i];
      seen[std::string(command_name(c)) + ":" + std::string(to_string(r.code))]++;
      if (auto* l = std::get_if<LeaseBatch>(&c); l && r.ok() && r.body.contains("granted")) {
        for (const auto& t : r.body["granted"]) {
          std::string id = t["id"];
          ASSERT_FALSE(live.count(id)) << "entry " << e << ": " << id << " granted to " << l->worker_id
                                       << " while held by " << live[id].worker;
          live[id] = Holder{l->worker_id, t["token"].get<uint64_t>()};
          seen["granted"]++;
        }
      } else if (auto* cm = std::get_if<CommitStep>(&c)) {
        auto it = live.find(cm->workflow_id);
        bool holder = it != live.end() && it->second == Holder{cm->worker_id, cm->token};
        if (r.ok() && !r.body.value("duplicate", false)) {
          ASSERT_TRUE(holder) << "entry " << e << ": commit of " << cm->workflow_id << " by a non-holder accepted";
          live.erase(it);
          seen["committed"]++;
        } else if (r.code == Code::kConflict) {
          ASSERT_FALSE(holder) << "entry " << e << ": the holder of " << cm->workflow_id << " was refused";
        } else if (r.ok()) {
          seen["duplicate"]++;
        }
      } else if (auto* cn = std::get_if<Cancel>(&c); cn && r.ok() && r.body["already"] == false) {
        live.erase(cn->workflow_id);
      } else if ((std::holds_alternative<Leave>(c) || std::holds_alternative<Reclaim>(c)) && r.ok()) {
        std::string who = std::holds_alternative<Leave>(c) ? std::get<Leave>(c).worker_id : std::get<Reclaim>(c).worker_id;
        for (const auto& id : r.body["released"]) {
          auto it = live.find(id.get<std::string>());
          ASSERT_TRUE(it != live.end() && it->second.worker == who) << "released a lease it didn't hold";
          live.erase(it);
          seen["released"]++;
        }
      }
    }
    ASSERT_TRUE(invariants(kv.data, &cache)) << "after entry " << e << " (index " << kv.index << ")";
    // The model and the state agree on every lease.
    std::map<std::string, Holder> in_state;
    for (const auto& [k, v] : kv.data) {
      if (k[0] != keys::kWorkflow) continue;
      const auto& w = cache.workflow(k, v);
      if (!w.lease_worker.empty()) in_state[w.id] = Holder{w.lease_worker, w.lease_token};
    }
    ASSERT_EQ(in_state, live) << "after entry " << e;
    // Every wake reported by this entry that is still current is in the wake index.
    for (const auto& wk : a.wakes) {
      auto w = kv.find(wk.workflow_id);
      ASSERT_TRUE(w);
      if (w->wake_ts == wk.ts) { ASSERT_TRUE(kv.data.count(keys::wake(wk.pool, wk.ts, wk.workflow_id))); }
    }
  }
  // Coverage: every kind of outcome happened often enough to mean something.
  for (const char* key : {"granted", "committed", "released", "duplicate", "lease:ok", "commit:conflict",
                          "commit:invalid", "dispatch:ok", "dispatch:conflict", "signal:ok", "signal:not_found",
                          "signal:failed_precondition", "cancel:ok", "reclaim:ok", "leave:ok", "drain:ok"}) {
    EXPECT_GE(seen[key], 5u) << key;
  }
  size_t terminal = 0, waiting = 0, sleeping = 0, children = 0;
  for (const auto& [k, v] : kv.data) {
    if (k[0] != keys::kWorkflow) continue;
    auto w = workflow_from_json(decode(v));
    terminal += is_terminal(w.status);
    waiting += w.status == Status::kWaiting;
    sleeping += w.status == Status::kSleeping;
    children += !w.parent_id.empty();
  }
  EXPECT_GT(terminal, 0u);
  EXPECT_GT(children, 0u);
  for (const auto& [k, v] : seen) std::cout << "[ coverage ] " << k << " = " << v << "\n";
  std::cout << "[ coverage ] workflows: terminal " << terminal << " waiting " << waiting << " sleeping " << sleeping << " children " << children << "\n";
  EXPECT_GT(seen["granted"], 150u);
  EXPECT_GT(seen["committed"], 150u);
}

TEST(StoreProperties, ApplyIsDeterministic) {
  Workload gen(7);
  auto& g = gen.g;
  DecodeCache cache;
  Kv a;
  Kv b;
  for (int e = 0; e < 800; ++e) {
    auto cmds = gen.entry(a, cache);
    int64_t advance = static_cast<int64_t>(g.below(400));
    // The same entry applied twice to the same state...
    MapReader reader(a.data);
    Applied again = apply_entry(reader, Entry{a.ts + advance, cmds}, a.index + 1, a.config);
    // ...and to a second replica.
    auto ra = a.apply(cmds, advance);
    auto rb = b.apply(cmds, advance);
    for (const Applied* other : {&again, &rb}) {
      ASSERT_EQ(ra.mutations, other->mutations) << "entry " << e;
      ASSERT_EQ(ra.results.size(), other->results.size());
      for (size_t i = 0; i < ra.results.size(); ++i) {
        ASSERT_EQ(ra.results[i].code, other->results[i].code);
        ASSERT_EQ(ra.results[i].message, other->results[i].message);
        ASSERT_EQ(ra.results[i].body, other->results[i].body);
      }
      ASSERT_EQ(ra.wakes.size(), other->wakes.size());
      for (size_t i = 0; i < ra.wakes.size(); ++i) {
        ASSERT_EQ(ra.wakes[i].pool, other->wakes[i].pool);
        ASSERT_EQ(ra.wakes[i].workflow_id, other->wakes[i].workflow_id);
        ASSERT_EQ(ra.wakes[i].name, other->wakes[i].name);
        ASSERT_EQ(ra.wakes[i].ts, other->wakes[i].ts);
        ASSERT_EQ(ra.wakes[i].reason, other->wakes[i].reason);
      }
    }
  }
  EXPECT_EQ(a.data, b.data);
  EXPECT_GT(a.data.size(), 50u);
}

TEST(StoreTxn, OverlayScanMergesWritesAndDeletes) {
  State base{{"a1", "1"}, {"a2", "2"}, {"a3", "3"}, {"b1", "x"}};
  MapReader reader(base);
  Txn txn(reader);
  txn.del("a2");
  txn.put("a25", "n");
  txn.put("a3", "3'");
  txn.put("c", "y");
  std::vector<std::pair<std::string, std::string>> seen;
  txn.scan("a", [&](std::string_view k, std::string_view v) {
    seen.emplace_back(k, v);
    return true;
  });
  EXPECT_EQ(seen, (std::vector<std::pair<std::string, std::string>>{{"a1", "1"}, {"a25", "n"}, {"a3", "3'"}}));
  EXPECT_FALSE(txn.get("a2").has_value());
  EXPECT_EQ(txn.get("a1").value_or(""), "1");
  seen.clear();
  txn.scan("a", [&](std::string_view k, std::string_view v) {
    seen.emplace_back(k, v);
    return false;  // stop after the first
  });
  EXPECT_EQ(seen.size(), 1u);
  State copy = base;
  apply_mutations(copy, txn.mutations());
  EXPECT_EQ(copy, (State{{"a1", "1"}, {"a25", "n"}, {"a3", "3'"}, {"b1", "x"}, {"c", "y"}}));
}

}  // namespace
}  // namespace gasoline::store

namespace gasoline::store {
namespace {

// Numbers in request arguments are range-checked before they reach an integer field: a float, a negative or an
// oversized value is a clear error, never a float-to-integer conversion (undefined behaviour the fuzzer once hit).
TEST(ArgumentParsing, OutOfRangeAndNonIntegerNumbersAreRefused) {
  const Json bad[] = {
      Json{{"max_attempts", 1e30}}, Json{{"max_attempts", -1}},  Json{{"max_attempts", 1ULL << 40}},
      Json{{"run_at", 1.5}},        Json{{"run_at", "soon"}},   Json{{"notify_parent", 1}},
  };
  for (const auto& args : bad) {
    SCOPED_TRACE(args.dump());
    EXPECT_THROW(dispatch_from_json(args), std::invalid_argument);
  }
  EXPECT_THROW(step_from_json(Json{{"kind", "sleep"}, {"until", 1e300}}), std::invalid_argument);
  EXPECT_EQ(dispatch_from_json(Json{{"max_attempts", 7}, {"run_at", -5}}).max_attempts, 7u);
}

}  // namespace
}  // namespace gasoline::store

namespace gasoline::store {
namespace {

// =========================================================================================================
// Retention

bool has_key(const Kv& kv, const std::string& key) { return kv.data.count(key) > 0; }

TEST(StoreRetention, PurgeDeletesFinishedWorkflowsPastTheirRetentionWithEverythingThatRefersToThem) {
  Kv kv;
  kv.run(ping("w1"));
  auto done = spec("wf-done");
  done.idempotency_key = "k-done";
  ASSERT_TRUE(kv.run(dispatch(done)).ok());
  ASSERT_TRUE(kv.run(signal("wf-done", "poke", Json{{"n", 1}}, "sig-1")).ok());  // pending when it completes
  for (auto id : {"wf-failed", "wf-cancelled", "wf-pending", "wf-running"}) ASSERT_TRUE(kv.run(dispatch(id)).ok());
  ASSERT_TRUE(kv.run(commit("wf-done", "w1", kv.lease("w1", "wf-done"), complete_step())).ok());
  ASSERT_TRUE(kv.run(commit("wf-failed", "w1", kv.lease("w1", "wf-failed"), fail_step("boom"))).ok());
  ASSERT_TRUE(kv.run(cancel("wf-cancelled")).ok());
  ASSERT_NE(kv.lease("w1", "wf-running"), 0u);
  ASSERT_TRUE(invariants(kv.data));  // including: every finished workflow is in the finished index, once
  const int64_t retention = 60000;
  std::vector<std::string> all{"wf-done", "wf-failed", "wf-cancelled", "wf-pending", "wf-running", "wf-unknown"};
  int64_t last_finished = kv.wf("wf-cancelled").updated_ts;

  // One millisecond before the last one's retention ends: only the others go.
  kv.ts = last_finished + retention - 1 - 10;
  auto early = kv.run(Purge{kPool, retention, all});
  ASSERT_TRUE(early.ok()) << early.message;
  EXPECT_EQ(early.body["purged"], (Json{"wf-done", "wf-failed"}));
  EXPECT_TRUE(kv.find("wf-cancelled"));
  // At its retention: the last finished one goes; live workflows never do, whatever the retention.
  auto at = kv.run(Purge{kPool, retention, all}, 1);
  EXPECT_EQ(at.body["purged"], (Json{"wf-cancelled"}));
  EXPECT_TRUE(kv.run(Purge{kPool, 1, all}).body["purged"].empty());
  for (auto id : {"wf-pending", "wf-running"}) EXPECT_TRUE(kv.find(id)) << id;
  // Nothing of the purged ones is left: record, status and finished indexes, signals, signal ids, idempotency.
  for (auto id : {"wf-done", "wf-failed", "wf-cancelled"}) {
    SCOPED_TRACE(id);
    EXPECT_FALSE(kv.find(id));
    EXPECT_TRUE(kv.signals(id).empty());
  }
  EXPECT_FALSE(has_key(kv, keys::signal_id("wf-done", "sig-1")));
  EXPECT_FALSE(has_key(kv, keys::idempotency(kPool, "k-done")));
  EXPECT_TRUE(invariants(kv.data));
  // The key is free again: a new dispatch with it is a new workflow.
  auto again = spec("wf-again");
  again.idempotency_key = "k-done";
  EXPECT_EQ(kv.run(dispatch(again)).body["existing"], false);
}

TEST(StoreRetention, PurgeOnlyTouchesItsPoolAndRefusesNonsense) {
  Kv kv;
  ASSERT_TRUE(kv.run(dispatch("wf-1")).ok());
  ASSERT_TRUE(kv.run(cancel("wf-1")).ok());
  kv.ts += 10000;
  EXPECT_TRUE(kv.run(Purge{"other-pool", 1, {"wf-1"}}).body["purged"].empty());
  EXPECT_TRUE(kv.find("wf-1"));
  EXPECT_EQ(kv.run(Purge{kPool, 0, {"wf-1"}}).code, Code::kInvalid) << "retention 0 means keep forever";
  EXPECT_EQ(kv.run(Purge{"bad pool", 1, {"wf-1"}}).code, Code::kInvalid);
  EXPECT_EQ(kv.run(Purge{kPool, 1, {"wf-1"}}).body["purged"], Json{"wf-1"});
}

TEST(StoreRetention, PoolSettingsAreStoredAndCleared) {
  Kv kv;
  EXPECT_TRUE(kv.run(ConfigurePool{kPool, 3600000}).ok());
  ASSERT_TRUE(has_key(kv, keys::pool_config(kPool)));
  EXPECT_EQ(decode(kv.data.at(keys::pool_config(kPool)))["retention_ms"], 3600000);
  EXPECT_TRUE(kv.run(ConfigurePool{kPool, 0}).ok());  // keep forever
  EXPECT_EQ(decode(kv.data.at(keys::pool_config(kPool)))["retention_ms"], 0);
  EXPECT_TRUE(kv.run(ConfigurePool{kPool, -1}).ok());  // back to the kv's default
  EXPECT_FALSE(has_key(kv, keys::pool_config(kPool)));
  EXPECT_EQ(kv.run(ConfigurePool{"", 5}).code, Code::kInvalid);
}

}  // namespace
}  // namespace gasoline::store
