// Unit tests for kv/assign/pull_plan.h: what one pull leases, which entries a backup leaves to a live primary, and
// what a loaded worker sheds. Expectations are properties checked across several planners over the same entries
// (every entry taken exactly once, a backup takes exactly what its primary shed, ...), so they fail when a rule
// changes, not only when a number does. Covers the planner's part of invariants 2, 3 and 12 of docs/design.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "kv/assign/pull_plan.h"
#include "kv/assign/ranking.h"
#include "kv/assign/strategy.h"

namespace gasoline::assign {
namespace {

constexpr int64_t kNow = 1'700'000'000'500;  // mid-epoch, so now +/- 499 ms stays in the same shed epoch
constexpr int64_t kGrace = 1000;
constexpr int64_t kWindow = 1500;
constexpr uint32_t kKeepAll = 1000;
const Strategy kHashed[] = {Strategy::kModuloNext, Strategy::kRendezvous};

struct Entry {
  int64_t ts = 0;
  std::string id;
  std::string name = "job";
};

struct Worker {
  std::string id;
  std::vector<std::string> workflows;  // empty: serves every name
  bool active = true;
  int64_t last_ping_ts = kNow;
};

// Owns the workers the planner's member views point into.
class Pool {
 public:
  explicit Pool(std::vector<Worker> workers) : workers_(std::move(workers)) {
    for (const auto& w : workers_) members_.push_back(Member{w.id, w.active, w.last_ping_ts, w.workflows});
  }
  Pool(const Pool&) = delete;  // the members would point into the original
  Pool& operator=(const Pool&) = delete;
  std::span<const Member> members() const { return members_; }

 private:
  std::vector<Worker> workers_;
  std::vector<Member> members_;
};

struct Pull {
  Strategy strategy = Strategy::kRendezvous;
  std::string worker;
  size_t max = 1000;
  uint32_t ratio = kKeepAll;
  PullsSeen seen;
  int64_t now = kNow;
};

struct Outcome {
  PullPlan plan;
  size_t offered = 0;  // entries the scan visited before the planner stopped it
  bool pulling = false;
};

// Feeds the entries the way StateMachine::for_each_due does: in order, until the planner says stop.
Outcome run(const Pool& pool, const Pull& p, const std::vector<Entry>& due) {
  PullPlanner planner(PullConfig{p.strategy, kGrace, kWindow}, PullRequest{p.worker, p.max, p.ratio}, pool.members(),
                      p.seen, p.now);
  Outcome out;
  out.pulling = planner.pulling();
  for (const auto& e : due) {
    ++out.offered;
    if (!planner.offer(e.ts, e.id, e.name)) break;
  }
  out.plan = planner.take();
  return out;
}

std::set<std::string> ids(const PullPlan& plan) {
  std::set<std::string> out;
  for (const auto& l : plan.leases) out.insert(l.workflow_id);
  return out;
}

std::set<std::string> ids(const std::vector<Entry>& entries) {
  std::set<std::string> out;
  for (const auto& e : entries) out.insert(e.id);
  return out;
}

std::set<std::string> minus(const std::set<std::string>& a, const std::set<std::string>& b) {
  std::set<std::string> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::inserter(out, out.end()));
  return out;
}

std::set<std::string> both(const std::set<std::string>& a, const std::set<std::string>& b) {
  std::set<std::string> out;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::inserter(out, out.end()));
  return out;
}

// `n` entries `overdue_ms` past due, one millisecond apart.
std::vector<Entry> due_entries(int n, int64_t overdue_ms, const std::string& name = "job") {
  std::vector<Entry> out;
  for (int i = 0; i < n; ++i) out.push_back(Entry{kNow - overdue_ms - i, "wf-" + name + "-" + std::to_string(i), name});
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.ts < b.ts; });
  return out;
}

// The entries whose primary is `primary` and backup `backup` in the two-member pool {primary, backup}.
std::vector<Entry> backed_up_by(Strategy s, const std::string& primary, const std::string& backup,
                                const std::vector<Entry>& entries) {
  const Ranking view = make_ranking({primary, backup}, backup);
  std::vector<Entry> out;
  for (const auto& e : entries)
    if (role_of(s, view, e.id, e.ts) == Role::kBackup) out.push_back(e);
  return out;
}

const Pool kPair({Worker{"a"}, Worker{"b"}});

// --- primary and backup --------------------------------------------------------------------------------------

TEST(PullPlan, BackupDefersToLivePrimary) {
  for (Strategy s : kHashed) {
    SCOPED_TRACE(std::string(to_string(s)));
    const auto entries = backed_up_by(s, "a", "b", due_entries(200, 2 * kGrace));
    ASSERT_GT(entries.size(), 50u);
    // Last seen exactly a grace ago is still live.
    for (int64_t seen_ago : {int64_t{0}, kGrace}) {
      Pull backup{.strategy = s, .worker = "b", .seen = {{"a", PullSeen{kNow - seen_ago, kKeepAll}}}};
      auto got = run(kPair, backup, entries);
      EXPECT_TRUE(got.plan.leases.empty()) << "primary seen " << seen_ago << " ms ago";
      EXPECT_EQ(got.plan.shed, 0u);
      EXPECT_FALSE(got.plan.more);
    }
    // ...and the primary itself takes all of them.
    auto primary = run(kPair, Pull{.strategy = s, .worker = "a"}, entries);
    EXPECT_EQ(ids(primary.plan), ids(entries));
  }
}

TEST(PullPlan, BackupTakesOverFromSilentPrimaryAfterGrace) {
  for (Strategy s : kHashed) {
    SCOPED_TRACE(std::string(to_string(s)));
    const auto overdue = backed_up_by(s, "a", "b", due_entries(200, kGrace));
    ASSERT_GT(overdue.size(), 50u);
    const std::vector<PullsSeen> silent = {{}, {{"a", PullSeen{kNow - kGrace - 1, kKeepAll}}}};
    for (const auto& seen : silent) {
      auto got = run(kPair, Pull{.strategy = s, .worker = "b", .seen = seen}, overdue);
      EXPECT_EQ(ids(got.plan), ids(overdue)) << (seen.empty() ? "primary never seen" : "primary silent");
    }
    // Not yet a grace overdue (overdue 800..999 ms): the backup waits even for a silent primary.
    const auto fresh = backed_up_by(s, "a", "b", due_entries(200, kGrace - 200));
    ASSERT_FALSE(fresh.empty());
    EXPECT_TRUE(run(kPair, Pull{.strategy = s, .worker = "b"}, fresh).plan.leases.empty());
  }
}

// What a live primary sheds at its last ratio, the backup takes; what it keeps, the backup leaves: together they
// take every entry exactly once.
TEST(PullPlan, BackupTakesExactlyWhatThePrimaryShed) {
  for (Strategy s : kHashed) {
    for (uint32_t primary_ratio : {0u, 300u, 700u, kKeepAll}) {
      SCOPED_TRACE(std::string(to_string(s)) + " primary ratio " + std::to_string(primary_ratio));
      const auto entries = backed_up_by(s, "a", "b", due_entries(300, 2 * kGrace));
      auto primary = run(kPair, Pull{.strategy = s, .worker = "a", .ratio = primary_ratio}, entries);
      auto backup = run(kPair,
                        Pull{.strategy = s, .worker = "b", .seen = {{"a", PullSeen{kNow - 10, primary_ratio}}}},
                        entries);
      EXPECT_EQ(primary.plan.shed, backup.plan.leases.size());
      EXPECT_TRUE(both(ids(primary.plan), ids(backup.plan)).empty());
      EXPECT_EQ(ids(primary.plan).size() + ids(backup.plan).size(), entries.size());
      if (primary_ratio == 0) {
        EXPECT_EQ(ids(backup.plan), ids(entries));
      }
      if (primary_ratio == kKeepAll) {
        EXPECT_TRUE(backup.plan.leases.empty());
      }
    }
  }
}

// An equally busy backup must not shed exactly what its primary shed (the backup mixes its own constant into the
// key): of the entries the primary shed, the backup takes some and sheds the rest.
TEST(PullPlan, PrimaryAndBackupShedIndependently) {
  constexpr uint32_t kHalf = 500;
  for (Strategy s : kHashed) {
    SCOPED_TRACE(std::string(to_string(s)));
    const auto entries = backed_up_by(s, "a", "b", due_entries(400, 2 * kGrace));
    auto primary = run(kPair, Pull{.strategy = s, .worker = "a", .ratio = kHalf}, entries);
    auto backup = run(kPair,
                      Pull{.strategy = s, .worker = "b", .ratio = kHalf, .seen = {{"a", PullSeen{kNow, kHalf}}}},
                      entries);
    const auto shed_by_primary = minus(ids(entries), ids(primary.plan));
    ASSERT_EQ(shed_by_primary.size(), primary.plan.shed);
    EXPECT_TRUE(minus(ids(backup.plan), shed_by_primary).empty()) << "the backup took what the primary keeps";
    EXPECT_EQ(backup.plan.leases.size() + backup.plan.shed, shed_by_primary.size());
    // Each ~half of what is offered to it; an identical key would make the backup take nothing.
    EXPECT_GT(backup.plan.leases.size(), shed_by_primary.size() / 4);
    EXPECT_GT(backup.plan.shed, shed_by_primary.size() / 4);
  }
}

// --- shedding ------------------------------------------------------------------------------------------------

TEST(PullPlan, RatioBoundsShedNothingOrEverything) {
  const Pool solo({Worker{"a"}});
  const auto entries = due_entries(300, 0);
  auto keep_all = run(solo, Pull{.worker = "a", .ratio = kKeepAll}, entries);
  EXPECT_EQ(ids(keep_all.plan), ids(entries));
  EXPECT_EQ(keep_all.plan.shed, 0u);
  auto shed_all = run(solo, Pull{.worker = "a", .ratio = 0}, entries);
  EXPECT_TRUE(shed_all.plan.leases.empty());
  EXPECT_EQ(shed_all.plan.shed, entries.size());
  EXPECT_FALSE(shed_all.plan.more);
}

// The shed set depends on now / 1000: fixed within a second, different from one second to the next.
TEST(PullPlan, ShedSetRotatesPerEpoch) {
  constexpr uint32_t kHalf = 500;
  const Pool solo({Worker{"a"}});
  const auto entries = due_entries(300, 5000);
  auto shed_at = [&](int64_t now) {
    auto got = run(solo, Pull{.worker = "a", .ratio = kHalf, .now = now}, entries);
    EXPECT_EQ(got.plan.shed + got.plan.leases.size(), entries.size());
    return minus(ids(entries), ids(got.plan));
  };
  const auto first = shed_at(kNow);
  EXPECT_GT(first.size(), entries.size() / 4);
  EXPECT_LT(first.size(), 3 * entries.size() / 4);
  EXPECT_EQ(shed_at(kNow - 500), first) << "same epoch (first millisecond)";
  EXPECT_EQ(shed_at(kNow + 499), first) << "same epoch (last millisecond)";
  std::set<std::set<std::string>> sets{first};
  std::set<std::string> ever_kept = minus(ids(entries), first);
  for (int epoch = 1; epoch <= 8; ++epoch) {
    const auto shed = shed_at(kNow + 1000 * epoch);
    EXPECT_NE(shed, first) << "epoch +" << epoch;
    sets.insert(shed);
    ever_kept.merge(minus(ids(entries), shed));
  }
  EXPECT_EQ(sets.size(), 9u);
  // Over nine epochs at half ratio nothing is starved (each entry shed nine times has odds 2^-9, ~0.6 of 300).
  EXPECT_GE(ever_kept.size(), entries.size() - 3);
}

TEST(PullPlan, ShedKeyRotatesPerEpochAndSeparatesBackup) {
  EXPECT_EQ(shed_key(kNow - 1, 999, false), kNow - 1) << "epoch 0 leaves the primary's key as the wake ts";
  EXPECT_EQ(shed_key(kNow, kNow, false), shed_key(kNow, kNow + 499, false));
  EXPECT_NE(shed_key(kNow, kNow, false), shed_key(kNow, kNow + 500, false));
  EXPECT_NE(shed_key(kNow, kNow, false), shed_key(kNow, kNow, true));
  EXPECT_EQ(shed_key(kNow, kNow, false) ^ shed_key(kNow, kNow, true), 0x5bd1e995);
}

// --- batch size --------------------------------------------------------------------------------------------

TEST(PullPlan, MoreOnlyWhenATakeableEntryFindsTheBatchFull) {
  const Pool solo({Worker{"a", {"job"}}});
  const auto jobs = due_entries(10, 0);
  struct Case {
    size_t max;
    size_t leases;
    bool more;
    size_t offered;
  };
  for (const Case& c : {Case{3, 3, true, 4}, Case{9, 9, true, 10}, Case{10, 10, false, 10}, Case{11, 10, false, 10}}) {
    SCOPED_TRACE("max " + std::to_string(c.max));
    auto got = run(solo, Pull{.worker = "a", .max = c.max}, jobs);
    ASSERT_EQ(got.plan.leases.size(), c.leases);
    EXPECT_EQ(got.plan.more, c.more);
    EXPECT_EQ(got.offered, c.offered) << "the scan stops at the first entry that does not fit";
    for (size_t i = 0; i < c.leases; ++i)
      EXPECT_EQ(got.plan.leases[i], (PlannedLease{jobs[i].id, jobs[i].ts})) << "earliest first";
  }
  // Entries after a full batch that the caller would not take anyway (a name it does not serve) are no reason to
  // pull again.
  auto mixed = due_entries(3, 100);
  for (auto& e : due_entries(5, 0, "other")) mixed.push_back(e);
  auto got = run(solo, Pull{.worker = "a", .max = 3}, mixed);
  EXPECT_EQ(got.plan.leases.size(), 3u);
  EXPECT_FALSE(got.plan.more);
  EXPECT_EQ(got.offered, mixed.size());
}

// --- members -------------------------------------------------------------------------------------------------

// Rankings are per workflow name: over the workers that serve the name, every entry has exactly one primary, and
// nobody takes a name it does not serve.
TEST(PullPlan, EachNameRankedOverTheWorkersThatServeIt) {
  const Pool pool({Worker{"a", {"x"}}, Worker{"b", {"y"}}, Worker{"c"}, Worker{"d", {"x", "y"}}});
  const std::map<std::string, std::set<std::string>> servers = {
      {"x", {"a", "c", "d"}}, {"y", {"b", "c", "d"}}, {"z", {"c"}}};
  std::vector<Entry> entries;
  for (const auto& name : {"x", "y", "z"})
    for (auto& e : due_entries(150, 0, name)) entries.push_back(e);  // within the grace: primaries only
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.ts < b.ts; });
  for (Strategy s : kHashed) {
    SCOPED_TRACE(std::string(to_string(s)));
    std::map<std::string, std::string> taken_by;
    std::map<std::string, size_t> per_worker;
    for (const auto& w : {"a", "b", "c", "d"}) {
      for (const auto& l : run(pool, Pull{.strategy = s, .worker = w}, entries).plan.leases) {
        EXPECT_TRUE(taken_by.emplace(l.workflow_id, w).second) << l.workflow_id << " taken twice";
        ++per_worker[w];
      }
    }
    for (const auto& e : entries) {
      auto it = taken_by.find(e.id);
      ASSERT_NE(it, taken_by.end()) << e.id << " taken by nobody";
      EXPECT_TRUE(servers.at(e.name).count(it->second)) << e.id << " went to " << it->second;
    }
    // Nobody is starved: each serves a share of the names it serves.
    for (const auto& w : {"a", "b", "c", "d"}) EXPECT_GT(per_worker[w], 20u) << w;
  }
}

// Draining or silent members leave the ranking, so the live ones become primary for everything.
TEST(PullPlan, OnlyLiveMembersAreRanked) {
  const Pool pool({Worker{"a"}, Worker{"b", {}, /*active=*/false}, Worker{"c", {}, true, kNow - kWindow - 1},
                   Worker{"d", {}, true, kNow - kWindow}});
  const auto entries = due_entries(200, 0);
  for (Strategy s : kHashed) {
    SCOPED_TRACE(std::string(to_string(s)));
    auto a = run(pool, Pull{.strategy = s, .worker = "a"}, entries);
    auto d = run(pool, Pull{.strategy = s, .worker = "d"}, entries);
    EXPECT_TRUE(both(ids(a.plan), ids(d.plan)).empty());
    EXPECT_EQ(ids(a.plan).size() + ids(d.plan).size(), entries.size()) << "b and c must not be primaries";
    EXPECT_FALSE(a.plan.leases.empty());
    EXPECT_FALSE(d.plan.leases.empty());
  }
  // A caller whose own ping is not visible yet still counts itself in: silent c, pulling, takes a share.
  auto c = run(pool, Pull{.worker = "c"}, entries);
  EXPECT_TRUE(c.pulling);
  EXPECT_FALSE(c.plan.leases.empty());
}

TEST(PullPlan, AllStrategyMakesEveryMemberPrimary) {
  const auto entries = due_entries(50, 0);
  for (const auto& w : {"a", "b"}) {
    EXPECT_EQ(ids(run(kPair, Pull{.strategy = Strategy::kAll, .worker = w}, entries).plan), ids(entries)) << w;
  }
}

TEST(PullPlan, CallersThatMayNotPullGetNothing) {
  const Pool pool({Worker{"a"}, Worker{"draining", {}, /*active=*/false}});
  const auto entries = due_entries(20, 2 * kGrace);
  const Pull cases[] = {Pull{.worker = "draining"}, Pull{.worker = "a", .max = 0}, Pull{.worker = "stranger"}};
  for (const auto& p : cases) {
    SCOPED_TRACE(p.worker + " max " + std::to_string(p.max));
    auto got = run(pool, p, entries);
    EXPECT_FALSE(got.pulling);
    EXPECT_TRUE(got.plan.leases.empty());
    EXPECT_EQ(got.plan.shed, 0u);
    EXPECT_FALSE(got.plan.more);
    EXPECT_EQ(got.offered, 1u) << "the scan stops at once";
  }
  // The same pool and entries do give work to a caller that may pull.
  EXPECT_EQ(run(pool, Pull{.worker = "a"}, entries).plan.leases.size(), entries.size());
}

}  // namespace
}  // namespace gasoline::assign
