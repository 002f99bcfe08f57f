// The lease reconciliation of kv/assign/orphans.h, table-driven: each case is a sequence of reports (time, what
// the state grants, what the worker reports) and the leases each report must release.
#include "kv/assign/orphans.h"

#include <gtest/gtest.h>

namespace gasoline::assign {
namespace {

struct Report {
  int64_t now;
  std::vector<Lease> granted;
  std::unordered_set<uint64_t> reported;
  std::vector<Lease> released;  // expected
};

struct Case {
  const char* name;
  int64_t grace;
  std::vector<Report> reports;
};

const Lease a1{"a", 1}, a2{"a", 2}, b3{"b", 3}, c4{"c", 4};

class OrphanTable : public ::testing::TestWithParam<Case> {};

TEST_P(OrphanTable, ReleasesExactlyWhatEveryReportMissedForTheGrace) {
  const auto& c = GetParam();
  OrphanTracker t(c.grace);
  for (size_t i = 0; i < c.reports.size(); ++i) {
    const auto& r = c.reports[i];
    auto got = t.observe("pool", "w", r.granted, r.reported, r.now);
    std::sort(got.begin(), got.end(), [](const Lease& x, const Lease& y) { return x.token < y.token; });
    EXPECT_EQ(got, r.released) << c.name << ", report " << i << " at " << r.now;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, OrphanTable,
    ::testing::Values(
        Case{"a reported lease is never released", 1000,
             {{0, {a1}, {1}, {}}, {1000, {a1}, {1}, {}}, {5000, {a1}, {1}, {}}}},
        Case{"a lease missing from every report for the grace is released once", 1000,
             {{0, {a1}, {}, {}}, {999, {a1}, {}, {}}, {1000, {a1}, {}, {a1}}, {1500, {a1}, {}, {}}}},
        Case{"the grace starts at the first report that misses the lease, not at an earlier report", 1000,
             {{0, {}, {}, {}}, {5000, {a1}, {}, {}}, {5999, {a1}, {}, {}}, {6000, {a1}, {}, {a1}}}},
        Case{"a late answer that shows up in a report clears the lease", 1000,
             {{0, {a1}, {}, {}}, {500, {a1}, {1}, {}}, {1000, {a1}, {}, {}}, {1999, {a1}, {}, {}},
              {2000, {a1}, {}, {a1}}}},
        Case{"a new token for the same workflow is a new lease with its own grace", 1000,
             {{0, {a1}, {}, {}}, {800, {a2}, {}, {}}, {1200, {a2}, {}, {}}, {1800, {a2}, {}, {a2}}}},
        Case{"a lease that left the state (committed, released) is forgotten", 1000,
             {{0, {a1}, {}, {}}, {600, {}, {}, {}}, {900, {a1}, {}, {}}, {1500, {a1}, {}, {}},
              {1900, {a1}, {}, {a1}}}},
        Case{"a release that did not take is retried one grace later", 1000,
             {{0, {a1}, {}, {}}, {1000, {a1}, {}, {a1}}, {1500, {a1}, {}, {}}, {2000, {a1}, {}, {a1}}}},
        Case{"only the unreported leases of a worker are released", 1000,
             {{0, {a1, b3, c4}, {3}, {}}, {1000, {a1, b3, c4}, {3}, {a1, c4}}}},
        Case{"tokens reported that the state does not grant are ignored", 1000,
             {{0, {b3}, {1, 2, 3}, {}}, {2000, {b3}, {1, 2, 3}, {}}}}),
    [](const ::testing::TestParamInfo<Case>& info) { return "case" + std::to_string(info.index); });

TEST(OrphanTracker, WorkersArePoolScopedAndForgettable) {
  OrphanTracker t(1000);
  EXPECT_TRUE(t.observe("p1", "w", {a1}, {}, 0).empty());
  EXPECT_TRUE(t.observe("p2", "w", {b3}, {}, 500).empty());
  EXPECT_EQ(t.tracked(), 2u);
  // p2's worker w is another worker: its sighting does not age p1's.
  EXPECT_EQ(t.observe("p1", "w", {a1}, {}, 1000), std::vector<Lease>{a1});
  EXPECT_TRUE(t.observe("p2", "w", {b3}, {}, 1000).empty());
  t.forget("p2", "w");
  EXPECT_EQ(t.tracked(), 1u);
  EXPECT_TRUE(t.observe("p2", "w", {b3}, {}, 1400).empty()) << "a forgotten worker starts a new grace";
  t.clear();
  EXPECT_EQ(t.tracked(), 0u);
  EXPECT_TRUE(t.observe("p1", "w", {a1}, {}, 5000).empty()) << "a new leader starts a new grace";
  // Reporting everything empties the tracker: no memory is kept for workers that hold what they were granted.
  t.observe("p1", "w", {a1}, {1}, 5100);
  t.observe("p2", "w", {b3}, {3}, 5100);
  EXPECT_EQ(t.tracked(), 0u);
}

}  // namespace
}  // namespace gasoline::assign
