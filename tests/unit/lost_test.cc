// When a worker is lost (kv/assign/lost.h), table-driven: the worker's last ping, when its stream closed, and the
// verdict the leader must reach at `now`.
#include "kv/assign/lost.h"

#include <gtest/gtest.h>

namespace gasoline::assign {
namespace {

struct Case {
  const char* name;
  int64_t now;
  int64_t leader_since;
  int64_t last_ping;
  std::optional<int64_t> disconnected_at;
  LostPolicy policy;
  std::optional<LostVerdict> want;
};

const LostPolicy kDefault{2000, 1000, 1000};
const LostVerdict kSilent{LostReason::kSilent, 2000};
const LostVerdict kDisconnected{LostReason::kDisconnected, 1000};

class LostTable : public ::testing::TestWithParam<Case> {};

TEST_P(LostTable, Verdict) {
  const auto& c = GetParam();
  EXPECT_EQ(lost_verdict(c.now, c.leader_since, c.last_ping, c.disconnected_at, c.policy), c.want) << c.name;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, LostTable,
    ::testing::Values(
        Case{"pinging, connected", 10'000, 0, 9'900, std::nullopt, kDefault, std::nullopt},
        Case{"silent exactly lost_after is not yet lost", 10'000, 0, 8'000, std::nullopt, kDefault, std::nullopt},
        Case{"silent past lost_after", 10'000, 0, 7'999, std::nullopt, kDefault, kSilent},
        Case{"silent past lost_after and disconnected: the longer bound decides the check", 10'000, 0, 7'000, 8'000,
             kDefault, kSilent},
        Case{"disconnected, grace not over", 10'000, 0, 9'400, 9'500, kDefault, std::nullopt},
        Case{"disconnected for the grace, silent for it too", 10'000, 0, 8'900, 9'000, kDefault, kDisconnected},
        Case{"disconnected for the grace but pinged since (reconnected elsewhere)", 10'000, 0, 9'800, 9'000, kDefault,
             std::nullopt},
        Case{"disconnected 1.5 s ago, silent just past the grace", 10'000, 0, 8'999, 8'500, kDefault, kDisconnected},
        Case{"a disconnect older than lost_after is no evidence any more", 10'000, 0, 8'999, 7'999, kDefault,
             std::nullopt},
        Case{"silent exactly the grace is not yet lost", 10'000, 0, 9'000, 8'000, kDefault, std::nullopt},
        Case{"the disconnect path off (0)", 10'000, 0, 8'500, 8'000, LostPolicy{2000, 0, 1000}, std::nullopt},
        Case{"a grace not below lost_after adds nothing", 10'000, 0, 8'500, 7'000, LostPolicy{2000, 2000, 1000},
             std::nullopt},
        Case{"a new leader waits lost_after before silence counts", 10'000, 8'500, 7'000, std::nullopt, kDefault,
             std::nullopt},
        Case{"... and then it counts", 10'500, 8'500, 7'000, std::nullopt, kDefault, kSilent},
        Case{"a new leader acts on a disconnect it saw itself", 10'000, 9'500, 8'900, 9'000, kDefault, kDisconnected},
        Case{"its pings had stalled before the close (it dropped a timed-out connection itself)", 10'000, 0, 8'600,
             9'700, kDefault, std::nullopt},
        Case{"... the same close right after a ping is evidence", 10'900, 0, 9'650, 9'700, kDefault, kDisconnected},
        Case{"a negative grace is off", 10'000, 0, 8'500, 7'000, LostPolicy{2000, -5, 1000}, std::nullopt}),
    [](const ::testing::TestParamInfo<Case>& i) { return "case_" + std::to_string(i.index); });

TEST(LostReasonName, NamesBothReasons) {
  EXPECT_STREQ(to_string(LostReason::kSilent), "silent");
  EXPECT_STREQ(to_string(LostReason::kDisconnected), "disconnected");
}

}  // namespace
}  // namespace gasoline::assign
