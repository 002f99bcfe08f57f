// What gasctl shows, from canned kv answers (kv/cli/view.h): the status table with the per-status counts, and
// the frames of `gasctl watch` with rates computed between two samples.
#include <gtest/gtest.h>

#include <string>

#include "kv/cli/view.h"

namespace gasoline::cli {
namespace {

Json status_answer(uint64_t granted, uint64_t shed, Json counts = nullptr) {
  Json pool{{"pool", "shop"},         {"active_workers", 2},  {"workers", 3},        {"wake_entries", 9},
            {"due", 4},               {"oldest_due_age_ms", 1500}, {"leases_granted", granted}, {"shed", shed},
            {"retention_ms", 0},      {"retention_source", "pool"}};
  if (!counts.is_null()) pool["counts"] = counts;
  return Json{{"role", "leader"},
              {"leader", "127.0.0.1:7400"},
              {"applied_index", 42},
              {"raft", {{"term", 3}}},
              {"pools", Json::array({pool})}};
}

Json workers_answer(uint64_t w1_leases) {
  return Json{{"strategy", "rendezvous"},
              {"pools",
               Json::array({Json{{"pool", "shop"},
                                 {"active", 2},
                                 {"workers", Json::array({Json{{"id", "w-1"},
                                                               {"pod", "shop-0"},
                                                               {"state", "active"},
                                                               {"rank", 0},
                                                               {"cpu", 0.42},
                                                               {"free_slots", 5},
                                                               {"share", 0.6},
                                                               {"expected_share", 0.5},
                                                               {"leases_granted", w1_leases},
                                                               {"last_ping_age_ms", 80}}})}}})}};
}

const Json kCounts{{"pending", 1}, {"running", 5}, {"sleeping", 2}, {"waiting", 0},
                   {"complete", 90}, {"failed", 1}, {"cancelled", 0}};

TEST(GasctlView, TableColumnsArePaddedToTheWidestCell) {
  EXPECT_EQ(format_table({{"A", "BB", "C"}, {"long", "x", "y"}}), "A     BB  C\nlong  x   y\n");
}

TEST(GasctlView, AgesInTheLargestUnitThatKeepsTwoDigits) {
  EXPECT_EQ(format_age(-1), "-");
  EXPECT_EQ(format_age(9999), "9999ms");
  EXPECT_EQ(format_age(59000), "59s");
  EXPECT_EQ(format_age(3600000), "60m");
  EXPECT_EQ(format_age(36000000), "10h");
  EXPECT_EQ(format_age(604800000), "7d");
}

TEST(GasctlView, StatusRowsCountEachStatusPerPool) {
  auto rows = status_rows(status_answer(0, 0, kCounts));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"POOL", "WORKERS", "ACTIVE", "DUE", "OLDEST DUE", "PENDING", "RUNNING",
                                               "SLEEPING", "WAITING", "COMPLETE", "FAILED", "CANCELLED",
                                               "RETENTION"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"shop", "3", "2", "4", "1500ms", "1", "5", "2", "0", "90", "1", "0",
                                               "forever (pool)"}));
  // A kv that answered without counts (an older version): dashes, not zeros.
  EXPECT_EQ(status_rows(status_answer(0, 0))[1][6], "-");
}

TEST(GasctlView, FirstWatchFrameHasNoRatesTheNextHasThem) {
  PoolSample first{100.0, status_answer(1000, 10, kCounts), workers_answer(600)};
  auto frame = render_watch("shop", "127.0.0.1:7400", nullptr, first);
  EXPECT_NE(frame.find("gasctl watch shop   kv 127.0.0.1:7400 (leader, term 3, applied 42)"), std::string::npos)
      << frame;
  EXPECT_NE(frame.find("throughput - leased   shed -   due 4   running 5   wake lag (oldest due) 1500ms"),
            std::string::npos)
      << frame;
  EXPECT_NE(frame.find("pending 1  running 5  sleeping 2"), std::string::npos) << frame;
  EXPECT_NE(frame.find("3 in the pool, 2 active"), std::string::npos) << frame;
  EXPECT_NE(frame.find("0     w-1     shop-0  active  42%  5     60.0%  50.0%     -         80ms"), std::string::npos)
      << frame;

  PoolSample second{102.0, status_answer(1300, 30, kCounts), workers_answer(800)};
  frame = render_watch("shop", "127.0.0.1:7400", &first, second);
  EXPECT_NE(frame.find("throughput 150.0/s leased   shed 10.0/s"), std::string::npos) << frame;
  EXPECT_NE(frame.find("100.0/s"), std::string::npos) << frame;  // w-1: 200 leases in 2 s
  EXPECT_EQ(frame.find('\x1b'), std::string::npos) << "plain text only";
}

TEST(GasctlView, CountersThatWentBackShowNoRate) {
  // A new leader's counters start over: no negative rate.
  PoolSample before{10.0, status_answer(5000, 50), workers_answer(10)};
  PoolSample after{11.0, status_answer(20, 0), workers_answer(2)};
  auto frame = render_watch("shop", "kv", &before, after);
  EXPECT_NE(frame.find("throughput - leased   shed -"), std::string::npos) << frame;
}

TEST(GasctlView, UnknownPoolSaysSo) {
  PoolSample s{1.0, status_answer(0, 0), Json{{"pools", Json::array()}}};
  auto frame = render_watch("nope", "kv", nullptr, s);
  EXPECT_NE(frame.find("pool nope: not known to the kv"), std::string::npos) << frame;
}

}  // namespace
}  // namespace gasoline::cli
