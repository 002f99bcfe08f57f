// Timers run on the kv's clock, whatever the pod's clock says (ctest label `worker`). A sidecar and app whose wall
// clock is 30 s ahead used to turn a 2 s sleep into 32 s, and one 30 s behind fired timers at once, because relative
// durations (sleep for_ms, wait timeout_ms, child delay_ms) became absolute times with the pod's clock. They now
// travel as durations and the kv adds them to the leader's timestamp at apply. The skew is real: the sidecar and the
// example app run under libfaketime (Debian's faketime), which shifts their clock_gettime and time.
#include "tests/worker/fleet.h"

#include <filesystem>

namespace gasoline {
namespace {

using namespace fleet;
using Clock = std::chrono::steady_clock;

class WorkerClockSkew : public WorkerFleet, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    WorkerFleet::SetUp();
    const std::string lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
    if (!std::filesystem::exists(lib)) GTEST_SKIP() << "libfaketime is not installed (faketime, hack/deps.sh)";
    // The library preloaded through env, which execs: the process keeps its pid, so the fixture stops the real
    // sidecar and app (the faketime launcher forks and would leave them running). Only the wall clock is skewed, as
    // on a node whose time is off: shifting CLOCK_MONOTONIC too would make every condition-variable wait last 30 s
    // longer (or spin).
    wrapper_ = {"/usr/bin/env", "LD_PRELOAD=" + lib, "FAKETIME=" + GetParam(), "FAKETIME_DONT_FAKE_MONOTONIC=1"};
    // The shipped binaries link jemalloc, whose start-up and libfaketime's call each other and hang.
    binary_suffix_ = "-glibc-malloc";
  }

  // Waits for the workflow to end and returns how long that took from `t0`.
  std::chrono::milliseconds until_terminal(const std::string& id, Clock::time_point t0) {
    EXPECT_TRUE(wait_until([&] { return all_terminal({id}); }, 20s)) << pending({id});
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  }
};

TEST_P(WorkerClockSkew, SleepsAndDeadlinesLastWhatTheyAskForWhateverThePodsClockSays) {
  start_kv();
  start_sidecar("skewed", true);

  // sleep 2 s (for_ms): never early, and nowhere near the 30 s of skew.
  auto t0 = Clock::now();
  auto sleeper = dispatch("sleep", {{"ms", 2000}});
  auto slept = until_terminal(sleeper, t0);
  EXPECT_EQ(get(sleeper)["status"], "complete") << get(sleeper).dump();
  EXPECT_GE(slept, 2000ms) << "the timer fired early";
  EXPECT_LT(slept, 12000ms) << "the pod's clock stretched the timer";

  // A wait with a 2 s deadline (timeout_ms) and no payment: fails at the kv's deadline, not the pod's.
  t0 = Clock::now();
  auto order = dispatch("order", {{"payment_timeout_ms", 2000}});
  auto waited = until_terminal(order, t0);
  auto w = get(order);
  EXPECT_EQ(w["status"], "failed") << w.dump();
  EXPECT_NE(w.value("error", "").find("payment not received"), std::string::npos) << w.dump();
  EXPECT_GE(waited, 2000ms) << "the deadline fired early";
  EXPECT_LT(waited, 12000ms) << "the pod's clock stretched the deadline";
  std::printf("[ clock skew %s ] sleep 2 s took %lld ms; wait deadline 2 s took %lld ms\n", GetParam().c_str(),
              static_cast<long long>(slept.count()), static_cast<long long>(waited.count()));
}

INSTANTIATE_TEST_SUITE_P(Skews, WorkerClockSkew, ::testing::Values("+30s", "-30s"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param[0] == '+' ? std::string("Ahead30s") : std::string("Behind30s");
                         });

}  // namespace
}  // namespace gasoline
