// Misconfiguration is loud and shutdown is prompt (ctest label `worker`): a sidecar whose token the kv refuses says
// so on every attempt, is unready with the reason, and exits non-zero after a bound so Kubernetes shows
// CrashLoopBackOff; a SIGTERM with the kv down ends a sidecar that holds nothing within 2 s (Kubernetes' default
// grace is 30 s) and one that holds tasks within its drain timeout. Real gasoline-kv and gasoline-worker processes;
// the fixture is in fleet.h.
#include "tests/worker/fleet.h"

#include <csignal>

namespace gasoline {
namespace {

using namespace fleet;
using Clock = std::chrono::steady_clock;

class WorkerMisconfig : public WorkerFleet {
 protected:
  std::string wrong_token_file() {
    std::string path = dir_->path() + "/wrong-token";
    std::ofstream(path) << "not-the-kv-token\n";
    return path;
  }
};

size_t lines_with(const std::string& log, const std::string& needle) {
  std::ifstream in(log);
  std::string line;
  size_t n = 0;
  while (std::getline(in, line))
    if (line.find(needle) != std::string::npos) ++n;
  return n;
}

TEST_F(WorkerMisconfig, RefusedTokenIsReportedOnEveryAttemptAndEndsTheProcess) {
  start_kv();
  Node& n = start_sidecar("refused", false,
                          {"--token-file", wrong_token_file(), "--unauthenticated-exit-after", "3s"});
  const std::string refused = "the kv refused this sidecar's token";
  // Unready, with the reason where users look.
  std::string reason;
  ASSERT_TRUE(wait_until(
      [&] {
        try {
          auto r = sdk::Client(n.address(), 2s).request("GET", "/readyz");
          reason = r.body.value("reason", "");
          return r.status == 503 && reason.rfind("unauthenticated", 0) == 0;
        } catch (const std::exception&) {
          return false;  // it may have exited already; the checks below say so
        }
      },
      10s))
      << "last /readyz reason: '" << reason << "'";
  // Said on every attempt, not once.
  ASSERT_TRUE(wait_until([&] { return lines_with(n.log, refused) >= 3; }, 10s)) << tail(n.log);
  // And the process gives up with a non-zero exit.
  int code = n.sidecar->wait(20s);
  EXPECT_EQ(code, 2) << tail(n.log);
  EXPECT_GE(lines_with(n.log, "gasoline-worker gives up"), 1u) << tail(n.log);
}

TEST_F(WorkerMisconfig, SigtermWithTheKvDownEndsASidecarThatHoldsNothingWithinTwoSeconds) {
  start_kv();
  Node& n = start_sidecar("idle", false);
  ASSERT_TRUE(wait_until([&] { return ready(n); }, 10s));
  kv_->process().kill9();
  ASSERT_TRUE(wait_until([&] { return !ready(n); }, 10s)) << "the sidecar did not notice the kv went away";
  auto t0 = Clock::now();
  n.sidecar->signal(SIGTERM);
  int code = n.sidecar->wait(2s);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  EXPECT_EQ(code, 0) << "not exited within 2 s of SIGTERM\n" << tail(n.log);
  std::printf("[ sigterm ] kv down, nothing held: exited %lld ms after SIGTERM\n",
              static_cast<long long>(took.count()));
}

TEST_F(WorkerMisconfig, SigtermWithTheKvDownEndsASidecarThatHoldsTasksWithinItsDrainTimeout) {
  start_kv();
  Node& n = start_sidecar("holding", false, {"--drain-timeout", "3s"});
  dispatch("noop");
  ASSERT_EQ(hold(n, 1).size(), 1u);
  kv_->process().kill9();
  ASSERT_TRUE(wait_until([&] { return !ready(n); }, 10s));
  auto t0 = Clock::now();
  n.sidecar->signal(SIGTERM);
  // The drain waits for the app's task until --drain-timeout; leave, with the kv unreachable, gets one second.
  int code = n.sidecar->wait(3s + 3s);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  EXPECT_EQ(code, 0) << tail(n.log);
  std::printf("[ sigterm ] kv down, one task held, drain timeout 3 s: exited %lld ms after SIGTERM\n",
              static_cast<long long>(took.count()));
}

}  // namespace
}  // namespace gasoline
