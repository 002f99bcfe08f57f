// Unit tests for kv/assign: pinned hashes, ranking, strategies and load shedding.
// Invariants 5-10, 16 and 17 of docs/design.md ("Invariants"). Every statistical
// check runs on fixed inputs, so results are deterministic: a failure means the behaviour changed.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "kv/assign/hash.h"
#include "kv/assign/ranking.h"
#include "kv/assign/shedding.h"
#include "kv/assign/strategy.h"

namespace gasoline::assign {
namespace {

constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kBaseTs = 1'700'000'000'000;  // a plausible wall-clock ms timestamp
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Non-ASCII ids are written as UTF-8 literals; the golden values were computed over these exact bytes.
constexpr std::string_view kJaWorkflow = "ワークフロー";
constexpr std::string_view kDeWorker = "wörker-ß";
constexpr std::string_view kUnicodeWf = "ünïcode-✓";
static_assert(kJaWorkflow.size() == 18 && kDeWorker.size() == 10 && kUnicodeWf.size() == 13,
              "source must be compiled as UTF-8");

const Strategy kHashed[] = {Strategy::kModuloNext, Strategy::kRendezvous};

std::vector<std::string> workers(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "kv-worker-%02d", i);
    out.emplace_back(buf);
  }
  return out;
}

std::string wf(int i) { return "wf-" + std::to_string(i); }

// Standard deviation of an observed fraction over `trials` Bernoulli(p) draws.
double sigma(double p, int trials) { return std::sqrt(p * (1.0 - p) / trials); }

std::string name_of(const std::vector<std::string>& members, int idx) {
  return idx < 0 ? std::string("<none>") : members[static_cast<size_t>(idx)];
}

void report(const std::string& key, double value) {
  std::ostringstream s;
  s << value;
  ::testing::Test::RecordProperty(key, s.str());
  std::cout << "[ measure  ] " << key << " = " << value << "\n";
}

// ---------------------------------------------------------------------------------------------------
// Hashes: golden vectors. They were derived once from the byte layouts documented in hash.h with an
// independent XXH64 implementation; any change of hash function, seed or byte order fails here.

TEST(Hash, TsGolden) {
  const struct {
    int64_t ts;
    uint64_t want;
  } cases[] = {
      {0, 0x561cb0ae897e2438ULL},       {1, 0xee2c86bf58ae3944ULL},
      {-1, 0x205d37f24a40075aULL},      {kBaseTs, 0x678989f582f47cecULL},
      {kI64Max, 0x58fb86d1f4d8d4cdULL}, {kI64Min, 0xed3ddafde44b5ef3ULL},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.ts);
    EXPECT_EQ(hash_ts(c.ts), c.want);
  }
}

TEST(Hash, RendezvousGolden) {
  const std::string long_id(300, 'x');
  const struct {
    std::string_view workflow, worker;
    uint64_t want;
  } cases[] = {
      {"", "", 0x9655f1e8dd50d431ULL},
      {"wf-1", "worker-a", 0x5175718e93a760c8ULL},
      {"ab", "c", 0x323ce4a7d1bd8b61ULL},
      {"a", "bc", 0x14314a332e662078ULL},
      {kJaWorkflow, kDeWorker, 0x3500ac9ef5872d9bULL},
      {long_id, "kv-worker-0", 0x7977813c0e5f9e55ULL},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.workflow.substr(0, 12)) + " / " + std::string(c.worker));
    EXPECT_EQ(rendezvous_score(c.workflow, c.worker), c.want);
  }
}

// The length prefix is what keeps concatenation-equal pairs apart.
TEST(Hash, RendezvousLengthPrefixSeparatesPairs) {
  EXPECT_NE(rendezvous_score("ab", "c"), rendezvous_score("a", "bc"));
  EXPECT_NE(rendezvous_score("", "abc"), rendezvous_score("abc", ""));
}

// Spells out the byte layout a second way (one-shot XXH64 over an explicit buffer), so the documented
// layout and the implementation cannot drift apart even for inputs that have no golden value.
TEST(Hash, LayoutMatchesOneShotXXH64) {
  auto le = [](uint64_t v, int bytes) {
    std::string out;
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return out;
  };
  const std::vector<std::pair<std::string, std::string>> ids = {
      {"", ""}, {"wf-1", "kv-worker-00"}, {std::string(kUnicodeWf), std::string(kDeWorker)}, {std::string(70, 'q'), "w"}};
  for (const auto& [w, k] : ids) {
    const std::string buf = le(w.size(), 4) + w + k;
    EXPECT_EQ(rendezvous_score(w, k), XXH64(buf.data(), buf.size(), kAssignSeed));
    for (int64_t ts : {int64_t{0}, int64_t{-7}, kBaseTs, kI64Max}) {
      const std::string sbuf = w + le(static_cast<uint64_t>(ts), 8);
      EXPECT_EQ(shed_point(w, ts), XXH64(sbuf.data(), sbuf.size(), kShedSeed) % 1000);
      const std::string tbuf = le(static_cast<uint64_t>(ts), 8);
      EXPECT_EQ(hash_ts(ts), XXH64(tbuf.data(), tbuf.size(), kAssignSeed));
    }
  }
}

TEST(Hash, ShedPointGolden) {
  const std::string long_id(300, 'x');
  const struct {
    std::string_view workflow;
    int64_t ts;
    uint32_t want;
  } cases[] = {
      {"", 0, 567},          {"wf-1", kBaseTs, 358},       {"wf-1", -1, 724},
      {kUnicodeWf, kI64Max, 237}, {"", kI64Min, 834}, {long_id, 42, 756},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.workflow.substr(0, 12)) + " @ " + std::to_string(c.ts));
    EXPECT_EQ(shed_point(c.workflow, c.ts), c.want);
  }
}

TEST(Hash, ShedPointInRange) {
  for (int i = 0; i < 5000; ++i) EXPECT_LT(shed_point(wf(i), kBaseTs + i), 1000u);
}

// ---------------------------------------------------------------------------------------------------
// Ranking

TEST(Ranking, SortsDedupsAndPlacesSelf) {
  const struct {
    const char* name;
    std::vector<std::string> ids;
    std::string self;
    std::vector<std::string> want;
    int want_self;
  } cases[] = {
      {"sorted", {"b", "a", "c"}, "b", {"a", "b", "c"}, 1},
      {"duplicates", {"b", "a", "b", "a", "b"}, "a", {"a", "b"}, 0},
      {"self missing, middle", {"c", "a"}, "b", {"a", "b", "c"}, 1},
      {"self missing, first", {"c", "b"}, "a", {"a", "b", "c"}, 0},
      {"self missing, last", {"a", "b"}, "z", {"a", "b", "z"}, 2},
      {"N=0 with self", {}, "me", {"me"}, 0},
      {"N=0 without self", {}, "", {}, -1},
      {"observer (no self)", {"b", "a"}, "", {"a", "b"}, -1},
      {"empty ids dropped", {"", "a", ""}, "a", {"a"}, 0},
      // Byte order, not locale: 'A' < 'a' < 'z' < 0xC3 (first byte of "é").
      {"byte order", {"z", "é", "a", "A"}, "é", {"A", "a", "z", "é"}, 3},
      {"prefix sorts first", {"ab", "a", "abc"}, "ab", {"a", "ab", "abc"}, 1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const Ranking r = make_ranking(c.ids, c.self);
    EXPECT_EQ(r.members, c.want);
    EXPECT_EQ(r.self, c.want_self);
    if (!c.self.empty()) {
      ASSERT_GE(r.self, 0);
      EXPECT_EQ(r.members[static_cast<size_t>(r.self)], c.self);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Strategy names

TEST(Strategy, NamesRoundTrip) {
  for (Strategy s : {Strategy::kModuloNext, Strategy::kRendezvous, Strategy::kAll}) {
    EXPECT_EQ(parse_strategy(to_string(s)), s);
  }
  EXPECT_EQ(to_string(Strategy::kModuloNext), "modulo-next");
  EXPECT_EQ(to_string(Strategy::kRendezvous), "rendezvous");
  EXPECT_EQ(to_string(Strategy::kAll), "all");
  for (std::string_view bad : {"", "Rendezvous", "modulo_next", "modulo", "all ", "hrw"}) {
    EXPECT_EQ(parse_strategy(bad), std::nullopt) << bad;
  }
}

// ---------------------------------------------------------------------------------------------------
// pick(): golden candidates on a fixed member list, for both hashed strategies.

TEST(Strategy, PickGolden) {
  const std::vector<std::string> members = workers(5);  // kv-worker-00 .. kv-worker-04, already sorted
  const std::string long_id(64, 'x');
  const struct {
    std::string_view workflow;
    int64_t ts;
    Candidates modulo, rendezvous;
  } cases[] = {
      {"wf-0001", kBaseTs, {1, 0}, {1, 4}},
      {"wf-0002", kBaseTs, {1, 0}, {4, 3}},  // same ts as above: same modulo pair, different HRW pair
      {"wf-0003", kBaseTs + 1, {3, 2}, {3, 2}},
      {"order/42", kBaseTs + 500, {4, 3}, {2, 4}},
      {kUnicodeWf, 0, {4, 3}, {1, 2}},
      {"", -1, {2, 1}, {4, 1}},
      {"billing-7f3a", kI64Max, {4, 3}, {2, 3}},
      {long_id, kBaseTs + 123456, {0, 4}, {0, 2}},  // bucket 0: the backup wraps to the last member
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.workflow.substr(0, 12)) + " @ " + std::to_string(c.ts));
    const Candidates m = pick(Strategy::kModuloNext, members, c.workflow, c.ts);
    EXPECT_EQ(m.primary, c.modulo.primary);
    EXPECT_EQ(m.backup, c.modulo.backup);
    const Candidates r = pick(Strategy::kRendezvous, members, c.workflow, c.ts);
    EXPECT_EQ(r.primary, c.rendezvous.primary);
    EXPECT_EQ(r.backup, c.rendezvous.backup);
    const Candidates a = pick(Strategy::kAll, members, c.workflow, c.ts);
    EXPECT_EQ(a.primary, 0);
    EXPECT_EQ(a.backup, -1);
  }
}

TEST(Strategy, PickSmallN) {
  const std::vector<std::string> none;
  const std::vector<std::string> one = {"solo"};
  const std::vector<std::string> two = {"a", "b"};
  for (Strategy s : {Strategy::kModuloNext, Strategy::kRendezvous, Strategy::kAll}) {
    SCOPED_TRACE(std::string(to_string(s)));
    for (int i = 0; i < 200; ++i) {
      const Candidates c0 = pick(s, none, wf(i), kBaseTs + i);
      EXPECT_EQ(c0.primary, -1);
      EXPECT_EQ(c0.backup, -1);
      const Candidates c1 = pick(s, one, wf(i), kBaseTs + i);
      EXPECT_EQ(c1.primary, 0);
      EXPECT_EQ(c1.backup, -1);
      if (s == Strategy::kAll) continue;
      const Candidates c2 = pick(s, two, wf(i), kBaseTs + i);
      EXPECT_EQ(std::set<int>({c2.primary, c2.backup}), std::set<int>({0, 1}));
    }
  }
}

// Invariant 5: candidates depend on the member set only, not on the order the ids were scanned in,
// and repeated evaluation agrees.
TEST(Strategy, PickIsIndependentOfInputOrder) {
  const std::vector<std::string> base = workers(7);
  std::mt19937 rng(12345);
  for (Strategy s : kHashed) {
    SCOPED_TRACE(std::string(to_string(s)));
    for (int round = 0; round < 10; ++round) {
      std::vector<std::string> shuffled = base;
      std::shuffle(shuffled.begin(), shuffled.end(), rng);
      shuffled.push_back(shuffled.front());  // a duplicate from a racy scan
      const Ranking r = make_ranking(shuffled, "");
      ASSERT_EQ(r.members, base);
      for (int i = 0; i < 300; ++i) {
        const Candidates want = pick(s, base, wf(i), kBaseTs + i);
        const Candidates got = pick(s, r.members, wf(i), kBaseTs + i);
        EXPECT_EQ(got.primary, want.primary);
        EXPECT_EQ(got.backup, want.backup);
        const Candidates again = pick(s, r.members, wf(i), kBaseTs + i);
        EXPECT_EQ(again.primary, got.primary);
        EXPECT_EQ(again.backup, got.backup);
      }
    }
  }
  // Rendezvous ranks by (score, id) alone, so even an unsorted span names the same workers.
  std::vector<std::string> reversed(base.rbegin(), base.rend());
  for (int i = 0; i < 300; ++i) {
    const Candidates a = pick(Strategy::kRendezvous, base, wf(i), 0);
    const Candidates b = pick(Strategy::kRendezvous, reversed, wf(i), 0);
    EXPECT_EQ(name_of(base, a.primary), name_of(reversed, b.primary));
    EXPECT_EQ(name_of(base, a.backup), name_of(reversed, b.backup));
  }
}

// ---------------------------------------------------------------------------------------------------
// Invariant 6: coverage with consistent views and no shedding.

TEST(Strategy, CoverageExactlyMinN2Candidates) {
  for (int n : {1, 2, 3, 5, 16}) {
    const std::vector<std::string> members = workers(n);
    std::vector<Ranking> views;
    for (const auto& m : members) views.push_back(make_ranking(members, m));
    for (Strategy s : kHashed) {
      SCOPED_TRACE("N=" + std::to_string(n) + " " + std::string(to_string(s)));
      for (int i = 0; i < 2000; ++i) {
        const std::string id = wf(i);
        const int64_t ts = kBaseTs + i;
        const Candidates c = pick(s, members, id, ts);
        std::set<int> distinct;
        if (c.primary >= 0) distinct.insert(c.primary);
        if (c.backup >= 0) distinct.insert(c.backup);
        ASSERT_EQ(distinct.size(), static_cast<size_t>(std::min(n, 2))) << id;

        int primaries = 0, backups = 0;
        for (const Ranking& v : views) {
          const Role role = role_of(s, v, id, ts);
          if (role == Role::kPrimary) {
            ++primaries;
            EXPECT_EQ(v.self, c.primary);
          } else if (role == Role::kBackup) {
            ++backups;
            EXPECT_EQ(v.self, c.backup);
          }
        }
        ASSERT_EQ(primaries, 1) << id;
        ASSERT_EQ(backups, n >= 2 ? 1 : 0) << id;
      }
    }
    // kAll: everyone is a primary, nobody a backup.
    for (const Ranking& v : views) EXPECT_EQ(role_of(Strategy::kAll, v, "wf-x", kBaseTs), Role::kPrimary);
  }
}

// ---------------------------------------------------------------------------------------------------
// Invariant 7: balance, and the original's same-timestamp hotspot.

struct Shares {
  std::vector<int> primary, candidate;
};

Shares count_shares(Strategy s, const std::vector<std::string>& members, int workflows, bool same_ts) {
  Shares out{std::vector<int>(members.size()), std::vector<int>(members.size())};
  for (int i = 0; i < workflows; ++i) {
    const Candidates c = pick(s, members, wf(i), same_ts ? kBaseTs : kBaseTs + i);
    ++out.primary[static_cast<size_t>(c.primary)];
    ++out.candidate[static_cast<size_t>(c.primary)];
    if (c.backup >= 0) ++out.candidate[static_cast<size_t>(c.backup)];
  }
  return out;
}

TEST(Strategy, BalanceWithinThreeSigma) {
  constexpr int kWorkflows = 20000;
  const struct {
    Strategy strategy;
    bool same_ts;
  } cases[] = {
      {Strategy::kRendezvous, false},
      {Strategy::kRendezvous, true},  // a bulk dispatch in one millisecond still spreads
      {Strategy::kModuloNext, false},  // fine as long as the timestamps differ
  };
  for (int n : {3, 5, 16}) {
    const std::vector<std::string> members = workers(n);
    for (const auto& c : cases) {
      SCOPED_TRACE("N=" + std::to_string(n) + " " + std::string(to_string(c.strategy)) +
                   (c.same_ts ? " same ts" : " distinct ts"));
      const Shares sh = count_shares(c.strategy, members, kWorkflows, c.same_ts);
      const double p1 = 1.0 / n, p2 = 2.0 / n;
      for (int w = 0; w < n; ++w) {
        const double primary = static_cast<double>(sh.primary[static_cast<size_t>(w)]) / kWorkflows;
        const double candidate = static_cast<double>(sh.candidate[static_cast<size_t>(w)]) / kWorkflows;
        EXPECT_NEAR(primary, p1, 3 * sigma(p1, kWorkflows)) << members[static_cast<size_t>(w)];
        EXPECT_NEAR(candidate, p2, 3 * sigma(p2, kWorkflows)) << members[static_cast<size_t>(w)];
      }
    }
  }
}

TEST(Strategy, ModuloNextSameTimestampHotspot) {
  constexpr int kWorkflows = 10000;
  const std::vector<std::string> members = workers(5);
  const Shares sh = count_shares(Strategy::kModuloNext, members, kWorkflows, /*same_ts=*/true);
  // Every workflow woken in the same millisecond lands on one primary (the original's hotspot, docs/design.md)...
  EXPECT_EQ(*std::max_element(sh.primary.begin(), sh.primary.end()), kWorkflows);
  EXPECT_EQ(std::count(sh.primary.begin(), sh.primary.end(), 0), 4);
  // ...while rendezvous gives nobody more than its share plus 3 sigma.
  const Shares rv = count_shares(Strategy::kRendezvous, members, kWorkflows, /*same_ts=*/true);
  const double limit = (0.2 + 3 * sigma(0.2, kWorkflows)) * kWorkflows;
  EXPECT_LE(*std::max_element(rv.primary.begin(), rv.primary.end()), limit);
  report("hotspot_modulo_max_share",
         static_cast<double>(*std::max_element(sh.primary.begin(), sh.primary.end())) / kWorkflows);
  report("hotspot_rendezvous_max_share",
         static_cast<double>(*std::max_element(rv.primary.begin(), rv.primary.end())) / kWorkflows);
}

// ---------------------------------------------------------------------------------------------------
// Invariant 8: fault tolerance. Each live worker evaluates role_of on its own view; with the grace
// elapsed, every workflow must be taken by at least one live worker.

struct Caller {
  std::string id;
  std::vector<std::string> view;  // what this caller believes the members are (self may be missing)
};

int live_takers(Strategy s, const std::vector<Caller>& live, const std::string& id, int64_t ts) {
  constexpr int64_t kGrace = 2000;
  int takers = 0;
  for (const Caller& c : live) {
    const Role role = role_of(s, make_ranking(c.view, c.id), id, ts);
    if (should_take(role, /*overdue_ms=*/kGrace, kGrace)) ++takers;
  }
  return takers;
}

void expect_all_covered(Strategy s, const std::vector<Caller>& live, const std::string& scenario) {
  SCOPED_TRACE(scenario);
  for (int i = 0; i < 400; ++i) {
    ASSERT_GE(live_takers(s, live, wf(i), kBaseTs + 7 * i), 1) << wf(i);
  }
}

TEST(Strategy, FaultToleranceSingleDivergence) {
  // Phantom names that sort first, in the middle and last, so modulo-next index shifts are exercised.
  const std::vector<std::string> phantoms = {"aaa-phantom", "kv-worker-00x", "zzz-phantom"};
  for (int n : {1, 2, 3, 5}) {
    const std::vector<std::string> real = workers(n);
    for (Strategy s : kHashed) {
      const std::string tag = "N=" + std::to_string(n) + " " + std::string(to_string(s));
      auto consistent = [&] {
        std::vector<Caller> out;
        for (const auto& m : real) out.push_back({m, real});
        return out;
      };
      // One caller does not see one (live) member.
      for (size_t c = 0; c < real.size(); ++c) {
        for (size_t m = 0; m < real.size(); ++m) {
          auto live = consistent();
          std::erase(live[c].view, real[m]);  // if m == c the caller re-inserts itself
          expect_all_covered(s, live, tag + " caller " + real[c] + " misses " + real[m]);
        }
      }
      // One caller sees a phantom.
      for (size_t c = 0; c < real.size(); ++c) {
        for (const auto& p : phantoms) {
          auto live = consistent();
          live[c].view.push_back(p);
          expect_all_covered(s, live, tag + " caller " + real[c] + " sees phantom " + p);
        }
      }
      // A member died and every survivor still sees it (the common failure, until it is declared lost).
      for (size_t d = 0; d < real.size() && n >= 2; ++d) {
        std::vector<Caller> live;
        for (size_t m = 0; m < real.size(); ++m)
          if (m != d) live.push_back({real[m], real});
        expect_all_covered(s, live, tag + " dead " + real[d] + " still listed");
      }
      // A phantom in everyone's view (a dead worker whose id is not in `real`).
      for (const auto& p : phantoms) {
        auto live = consistent();
        for (auto& c : live) c.view.push_back(p);
        expect_all_covered(s, live, tag + " phantom " + p + " everywhere");
      }
      // A joiner sees itself; nobody else sees it yet.
      {
        auto live = consistent();
        live.push_back({"kv-worker-new", real});
        expect_all_covered(s, live, tag + " unseen joiner");
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Invariant 9: N = 0 and a caller missing from the list never crash, and the caller still gets work.

TEST(Strategy, EmptyOrMissingSelfStillPulls) {
  for (Strategy s : {Strategy::kModuloNext, Strategy::kRendezvous, Strategy::kAll}) {
    SCOPED_TRACE(std::string(to_string(s)));
    const Ranking alone = make_ranking({}, "solo");
    for (int i = 0; i < 200; ++i) EXPECT_EQ(role_of(s, alone, wf(i), kBaseTs + i), Role::kPrimary);

    // Not yet in the list the leader scanned: it inserts itself and wins its share.
    const Ranking late = make_ranking(workers(4), "kv-worker-02x");
    int primaries = 0;
    for (int i = 0; i < 2000; ++i) primaries += role_of(s, late, wf(i), kBaseTs + i) == Role::kPrimary;
    EXPECT_GT(primaries, s == Strategy::kAll ? 1999 : 200);

    // Hand-built rankings without a valid self: defined answer, no crash.
    EXPECT_EQ(role_of(s, Ranking{}, "wf", 0), Role::kNone);
    EXPECT_EQ(role_of(s, Ranking{{"a", "b"}, -1}, "wf", 0), Role::kNone);
    EXPECT_EQ(role_of(s, Ranking{{"a", "b"}, 2}, "wf", 0), Role::kNone);
    EXPECT_EQ(role_of(s, Ranking{{}, 0}, "wf", 0), Role::kNone);
  }
}

// ---------------------------------------------------------------------------------------------------
// Invariant 10: churn when a member joins (N -> N+1).

TEST(Strategy, ChurnOnJoin) {
  constexpr int kWorkflows = 20000;
  for (int n : {4, 8, 16}) {
    const std::vector<std::string> before = workers(n);
    // Sorts into the middle, so modulo-next also shifts the indices of every later member.
    const std::string joiner = "kv-worker-01-new";
    const Ranking after = make_ranking([&] { auto v = before; v.push_back(joiner); return v; }(), "");
    for (Strategy s : kHashed) {
      SCOPED_TRACE("N=" + std::to_string(n) + " " + std::string(to_string(s)));
      int primary_moved = 0, set_changed = 0, moved_elsewhere = 0;
      for (int i = 0; i < kWorkflows; ++i) {
        const int64_t ts = kBaseTs + i;
        const Candidates a = pick(s, before, wf(i), ts);
        const Candidates b = pick(s, after.members, wf(i), ts);
        const std::string pa = name_of(before, a.primary), pb = name_of(after.members, b.primary);
        if (pa != pb) {
          ++primary_moved;
          if (pb != joiner) ++moved_elsewhere;
        }
        const std::set<std::string> sa = {pa, name_of(before, a.backup)};
        const std::set<std::string> sb = {pb, name_of(after.members, b.backup)};
        set_changed += sa != sb;
      }
      const double moved = static_cast<double>(primary_moved) / kWorkflows;
      const double changed = static_cast<double>(set_changed) / kWorkflows;
      const std::string key = std::string(s == Strategy::kRendezvous ? "rendezvous" : "modulo") + "_n" +
                              std::to_string(n) + "_to_" + std::to_string(n + 1);
      report("churn_primary_" + key, moved);
      report("churn_candidates_" + key, changed);
      if (s == Strategy::kRendezvous) {
        const double p = 1.0 / (n + 1);
        EXPECT_LE(moved, p + 3 * sigma(p, kWorkflows) + 0.005);
        EXPECT_LE(changed, 2 * p + 3 * sigma(2 * p, kWorkflows) + 0.005);
        // HRW moves a workflow only to the member that joined; nothing reshuffles among the old ones.
        EXPECT_EQ(moved_elsewhere, 0);
      } else {
        EXPECT_GE(moved, static_cast<double>(n) / (n + 1) - 0.05);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// should_take

TEST(Strategy, ShouldTake) {
  const struct {
    Role role;
    int64_t overdue, grace;
    bool want;
  } cases[] = {
      {Role::kPrimary, 0, 0, true},         {Role::kPrimary, 0, 5000, true},
      {Role::kPrimary, -100, 5000, true},   {Role::kPrimary, kI64Max, 5000, true},
      {Role::kBackup, 0, 0, true},          {Role::kBackup, 10, 0, true},  // grace 0: the original rule
      {Role::kBackup, 1999, 2000, false},   {Role::kBackup, 2000, 2000, true},
      {Role::kBackup, 2001, 2000, true},    {Role::kBackup, -1, 2000, false},
      {Role::kBackup, kI64Min, 2000, false}, {Role::kBackup, kI64Max, kI64Max, true},
      {Role::kNone, 0, 0, false},           {Role::kNone, kI64Max, 0, false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(should_take(c.role, c.overdue, c.grace), c.want)
        << "role " << static_cast<int>(c.role) << " overdue " << c.overdue << " grace " << c.grace;
  }
}

// ---------------------------------------------------------------------------------------------------
// Shedding (invariants 16, 17)

TEST(Shedding, PullRatioTable) {
  const ShedCurve def;
  const ShedCurve custom{.start_knee = 0.7, .end_knee = 0.9, .min_ratio = 50};
  const ShedCurve full_range{.start_knee = 0.0, .end_knee = 1.0, .min_ratio = 0};
  const struct {
    const char* name;
    ShedCurve curve;
    double cpu;
    uint32_t want;
  } cases[] = {
      {"idle", def, 0.0, 1000},
      {"at start knee", def, 0.5, 1000},
      {"just above start", def, 0.5003, 999},  // 999.1 rounds down
      {"midpoint", def, 0.65, 550},
      {"two thirds", def, 0.7, 400},
      {"at end knee", def, 0.8, 100},
      {"full quota", def, 1.0, 100},
      {"over quota", def, 2.0, 100},
      {"negative", def, -1.0, 1000},
      {"NaN counts as 0", def, kNaN, 1000},
      {"+inf is overloaded", def, kInf, 100},
      {"-inf counts as 0", def, -kInf, 1000},
      {"custom below", custom, 0.69, 1000},
      {"custom midpoint", custom, 0.8, 525},
      {"custom end", custom, 0.9, 50},
      {"custom beyond", custom, 0.95, 50},
      {"full range quarter", full_range, 0.25, 750},
      {"full range end", full_range, 1.0, 0},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(pull_ratio(c.curve, c.cpu), c.want) << c.name;
  }
}

TEST(Shedding, MonotoneAndBoundedOverSweep) {
  const ShedCurve curves[] = {
      {},
      {.start_knee = 0.7, .end_knee = 0.9, .min_ratio = 50},
      {.start_knee = 0.0, .end_knee = 1.0, .min_ratio = 0},
      {.start_knee = 0.3, .end_knee = 0.31, .min_ratio = 999},
      {.start_knee = 0.5, .end_knee = 0.6, .min_ratio = 1000},  // never sheds
  };
  for (const ShedCurve& c : curves) {
    SCOPED_TRACE(std::to_string(c.start_knee) + ".." + std::to_string(c.end_knee) + " min " +
                 std::to_string(c.min_ratio));
    ASSERT_EQ(validate(c), std::nullopt);
    uint32_t prev = 1000;
    for (int i = 0; i <= 30000; ++i) {
      const double cpu = -1.0 + i * 1e-4;  // [-1, 2]
      const uint32_t r = pull_ratio(c, cpu);
      ASSERT_LE(r, prev) << "cpu " << cpu;
      ASSERT_GE(r, c.min_ratio) << "cpu " << cpu;
      ASSERT_LE(r, 1000u) << "cpu " << cpu;
      if (cpu <= c.start_knee) {
        ASSERT_EQ(r, 1000u) << "cpu " << cpu;
      }
      if (cpu >= c.end_knee) {
        ASSERT_EQ(r, c.min_ratio) << "cpu " << cpu;
      }
      prev = r;
    }
  }
}

TEST(Shedding, Validate) {
  const struct {
    const char* name;
    ShedCurve curve;
    bool ok;
  } cases[] = {
      {"default", {}, true},
      {"custom", {.start_knee = 0.7, .end_knee = 0.9, .min_ratio = 50}, true},
      {"whole range", {.start_knee = 0.0, .end_knee = 1.0, .min_ratio = 0}, true},
      {"min 1000 (never sheds)", {.start_knee = 0.5, .end_knee = 0.8, .min_ratio = 1000}, true},
      {"start == end", {.start_knee = 0.6, .end_knee = 0.6, .min_ratio = 100}, false},
      {"start > end", {.start_knee = 0.9, .end_knee = 0.7, .min_ratio = 100}, false},
      {"start < 0", {.start_knee = -0.1, .end_knee = 0.8, .min_ratio = 100}, false},
      {"end > 1", {.start_knee = 0.5, .end_knee = 1.5, .min_ratio = 100}, false},
      {"start NaN", {.start_knee = kNaN, .end_knee = 0.8, .min_ratio = 100}, false},
      {"end NaN", {.start_knee = 0.5, .end_knee = kNaN, .min_ratio = 100}, false},
      {"end inf", {.start_knee = 0.5, .end_knee = kInf, .min_ratio = 100}, false},
      {"start -inf", {.start_knee = -kInf, .end_knee = 0.8, .min_ratio = 100}, false},
      {"min_ratio 1001", {.start_knee = 0.5, .end_knee = 0.8, .min_ratio = 1001}, false},
      {"percent, not fraction", {.start_knee = 50, .end_knee = 80, .min_ratio = 100}, false},
  };
  for (const auto& c : cases) {
    const auto err = validate(c.curve);
    EXPECT_EQ(!err.has_value(), c.ok) << c.name << ": " << err.value_or("accepted");
    if (err) {
      EXPECT_FALSE(err->empty()) << c.name;
    }
  }
}

// Rejected curves must still give a defined, bounded answer (no division by zero, no UB cast).
TEST(Shedding, PullRatioIsTotalOnInvalidCurves) {
  const ShedCurve bad[] = {
      {.start_knee = 0.6, .end_knee = 0.6, .min_ratio = 100},
      {.start_knee = 0.9, .end_knee = 0.7, .min_ratio = 100},
      {.start_knee = kNaN, .end_knee = kNaN, .min_ratio = 100},
      {.start_knee = kNaN, .end_knee = 0.8, .min_ratio = 100},
      {.start_knee = -kInf, .end_knee = kInf, .min_ratio = 100},
      {.start_knee = 0.5, .end_knee = 0.8, .min_ratio = 5000},
      {.start_knee = 0.5, .end_knee = 0.8, .min_ratio = std::numeric_limits<uint32_t>::max()},
  };
  for (const ShedCurve& c : bad) {
    for (double cpu : {-kInf, -1.0, 0.0, 0.5, 0.6, 0.65, 0.7, 0.8, 1.0, 1e308, kInf, kNaN}) {
      EXPECT_LE(pull_ratio(c, cpu), 1000u);
    }
  }
  // A step at the shared knee rather than a division by zero.
  const ShedCurve step{.start_knee = 0.6, .end_knee = 0.6, .min_ratio = 100};
  EXPECT_EQ(pull_ratio(step, 0.6), 1000u);
  EXPECT_EQ(pull_ratio(step, 0.61), 100u);
  // An out-of-range floor is clamped: the ratio can never exceed 1000.
  EXPECT_EQ(pull_ratio({.start_knee = 0.5, .end_knee = 0.8, .min_ratio = 5000}, 1.0), 1000u);
}

double kept_fraction(uint32_t ratio, int workflows, bool same_ts) {
  int kept = 0;
  for (int i = 0; i < workflows; ++i) kept += keep(ratio, wf(i), same_ts ? kBaseTs : kBaseTs + 13 * i);
  return static_cast<double>(kept) / workflows;
}

TEST(Shedding, KeptFractionFollowsRatio) {
  constexpr int kWorkflows = 20000;
  const ShedCurve def;
  // Below the start knee nothing is shed, whatever the shed points are.
  for (double cpu : {kNaN, -kInf, 0.0, 0.3, 0.5}) {
    const uint32_t r = pull_ratio(def, cpu);
    EXPECT_EQ(kept_fraction(r, kWorkflows, false), 1.0) << "cpu " << cpu;
  }
  EXPECT_EQ(kept_fraction(0, kWorkflows, false), 0.0);
  for (const ShedCurve& c : {def, ShedCurve{.start_knee = 0.7, .end_knee = 0.9, .min_ratio = 50}}) {
    for (double cpu : {c.end_knee, 1.0, kInf, (c.start_knee + c.end_knee) / 2}) {
      const uint32_t r = pull_ratio(c, cpu);
      const double p = r / 1000.0;
      for (bool same_ts : {false, true}) {
        // With one shared wake ts the original kept all or nothing; the id in the hash spreads it.
        EXPECT_NEAR(kept_fraction(r, kWorkflows, same_ts), p, 3 * sigma(p, kWorkflows))
            << "cpu " << cpu << " ratio " << r << (same_ts ? " same ts" : "");
      }
    }
  }
}

// The shed set rotates with the wake ts, so sustained load does not starve the same workflows every
// cycle (the original's p depended on ts alone): being kept at two wake times is ~independent.
TEST(Shedding, ShedSetRotatesAcrossWakeCycles) {
  constexpr int kWorkflows = 20000;
  constexpr uint32_t kRatio = 500;
  int both = 0;
  for (int i = 0; i < kWorkflows; ++i) both += keep(kRatio, wf(i), kBaseTs) && keep(kRatio, wf(i), kBaseTs + 4000);
  const double p = 0.25;
  EXPECT_NEAR(static_cast<double>(both) / kWorkflows, p, 3 * sigma(p, kWorkflows));
}

// A worker's primary set is not correlated with the shed set, so a busy primary sheds its own share
// evenly instead of all or none of it.
TEST(Shedding, IndependentOfAssignment) {
  constexpr int kWorkflows = 20000;
  const std::vector<std::string> members = workers(5);
  for (Strategy s : kHashed) {
    for (uint32_t ratio : {100u, 550u}) {
      SCOPED_TRACE(std::string(to_string(s)) + " ratio " + std::to_string(ratio));
      std::vector<int> owned(members.size()), kept(members.size());
      for (int i = 0; i < kWorkflows; ++i) {
        const int64_t ts = kBaseTs + i;
        const auto w = static_cast<size_t>(pick(s, members, wf(i), ts).primary);
        ++owned[w];
        kept[w] += keep(ratio, wf(i), ts);
      }
      const double p = ratio / 1000.0;
      for (size_t w = 0; w < members.size(); ++w) {
        ASSERT_GT(owned[w], 0);
        EXPECT_NEAR(static_cast<double>(kept[w]) / owned[w], p, 3 * sigma(p, owned[w])) << members[w];
      }
    }
  }
}

}  // namespace
}  // namespace gasoline::assign
