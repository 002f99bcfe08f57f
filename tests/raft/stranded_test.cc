// Liveness under faults: no acknowledged workflow is stranded. A pull's lease can commit while its answer is lost
// (the leader dies between the commit and the reply; one replica dies between fsync and reply; the client stops
// waiting and the kv commits later). The worker is alive and pinging, so reclaim never frees the lease; the kv
// must release it once the worker's pings show it does not hold it (kv/assign/orphans.h). Each test runs the
// failover-proof load, injects the fault several times, stops dispatching, and then requires every workflow to
// complete within lost_after + 5 s, with the full history check (nothing lost, one live lease, one commit per step).
#include "tests/raft/process_fixture.h"

#include <cstdio>
#include <functional>
#include <optional>

namespace gasoline {
namespace {

class Stranded : public RaftProcess {
 protected:
  static constexpr uint32_t kSteps = 3;

  LoadOptions stranded_load(KvCluster& c, const std::string& run) {
    LoadOptions o = load_options(c, run);
    o.steps = kSteps;
    // A short attempt timeout makes lost pull answers (the fault under test) frequent.
    o.attempt_timeout = 1500ms;
    return o;
  }

  // Workflows of the pool not complete yet. Read as "all" first, then "complete": complete only grows and no
  // workflow is added once dispatching stopped, so complete >= all means every workflow was complete at the
  // second read (two per-status reads could miss a workflow that moves from running to pending between them).
  static size_t unfinished(rpc::Client& client) {
    auto count = [&](std::optional<std::string> status) {
      Json args{{"pool", "raft"}, {"limit", 10000}};
      if (status) args["status"] = *status;
      return client.call("list", args, rpc::CallOptions{5s, true}).at("workflows").size();
    };
    size_t all = count(std::nullopt);
    size_t complete = count("complete");
    return complete >= all ? 0 : all - complete;
  }

  // Stops dispatching, then waits (with the workers still running) until nothing is unfinished, and checks the
  // whole history: every acknowledged dispatch complete with all its steps, exactly once.
  void expect_every_workflow_completes(KvCluster& c, Load& load, const History& h, std::chrono::milliseconds bound) {
    load.stop_dispatching();
    auto t0 = std::chrono::steady_clock::now();
    auto client = c.client("stranded-check", 5s);
    size_t left = 0;
    bool done = wait_until(
        [&] {
          try {
            left = unfinished(*client);
          } catch (const std::exception&) {
            return false;  // a leader election in progress: ask again
          }
          return left == 0;
        },
        bound);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    load.stop();
    EXPECT_TRUE(done) << left << " workflows still unfinished " << bound.count()
                      << " ms after dispatching stopped (stranded leases?)";
    auto r = check_through_leader(c, h);
    report(load, r);
    EXPECT_TRUE(r.ok()) << r.summary();
    raft_test::ClientSlot slot(c.endpoints(), c.token(), "stranded-final");
    std::vector<std::string> acked;
    for (const auto& d : h.dispatches())
      if (d.acked) acked.push_back(d.workflow_id);
    auto final_state = raft_test::read_final(slot, acked, /*stale=*/false);
    size_t incomplete = 0;
    for (const auto& id : acked) {
      const auto& f = final_state[id];
      if (f.status != "complete" || f.steps != kSteps) {
        if (++incomplete <= 10) ADD_FAILURE() << id << ": " << f.status << " after " << f.steps << " steps";
      }
    }
    EXPECT_EQ(incomplete, 0u) << "of " << acked.size() << " acknowledged workflows";
    size_t released = 0;
    for (size_t i = 0; i < c.size(); ++i) released += c.log_count(i, "lease released: its worker is alive");
    std::printf("[ stranded ] %zu acknowledged workflows, all complete %lld ms after dispatching stopped; "
                "%zu orphaned leases released\n",
                acked.size(), static_cast<long long>(took.count()), released);
  }

  static std::chrono::milliseconds bound(const KvClusterOptions& o) {
    return std::chrono::milliseconds(o.lost_after_ms) + 5s;
  }

  // A fresh cluster under the load; `fault` runs `rounds` times (each ends with writes flowing again); then every
  // workflow must complete within lost_after + 5 s.
  void run_with_faults(const KvClusterOptions& opts, const std::string& run, int rounds,
                       const std::function<void(KvCluster&, Load&, int round)>& fault,
                       const std::function<void(LoadOptions&)>& adjust = {}) {
    KvCluster c(dir_->path(), opts);
    LogsOnFailure logs{c};
    ASSERT_GE(c.leader_index(), 0);
    History h;
    auto o = stranded_load(c, run);
    if (adjust) adjust(o);
    Load load(o, h);
    load.start();
    ASSERT_TRUE(wait_until([&] { return load.acked_commits() >= 30; }, 30s)) << "the load never got going";
    for (int round = 0; round < rounds; ++round) {
      fault(c, load, round);
      if (HasFatalFailure()) return;
    }
    expect_every_workflow_completes(c, load, h, bound(opts));
  }
};

TEST_F(Stranded, LeaderKilledFiveTimesUnderPullsStrandsNoWorkflow) {
  run_with_faults(KvClusterOptions{}, "orphan-kill", 5, [&](KvCluster& c, Load& load, int) {
    int l = c.leader_index();
    ASSERT_GE(l, 0);
    c.kill9(static_cast<size_t>(l));
    ASSERT_TRUE(wait_writes(load, 60)) << "writes did not resume after kill -9 of replica " << c.raft_id(l);
    c.restart(static_cast<size_t>(l));
  });
}

TEST_F(Stranded, SingleReplicaKilledFiveTimesUnderPullsStrandsNoWorkflow) {
  KvClusterOptions opts;
  opts.replicas = 1;
  run_with_faults(opts, "orphan-single", 5, [&](KvCluster& c, Load& load, int round) {
    c.kill9(0);
    c.restart(0);
    ASSERT_GE(c.leader_index(), 0);
    ASSERT_TRUE(wait_writes(load, 60)) << "writes did not resume after restart " << round + 1;
  });
}

// The pull's client gives up (its attempt timeout) while the kv is frozen; the kv commits the lease once it runs
// again and answers a connection nobody reads any more.
TEST_F(Stranded, PullsThatTimeOutAtTheClientAndCommitLaterStrandNoWorkflow) {
  KvClusterOptions opts;
  opts.replicas = 1;
  std::chrono::milliseconds attempt_timeout{};
  auto more_pullers = [&](LoadOptions& o) {
    o.workers = 6;  // more pulls in flight when the replica freezes (a commit in flight is retried, a pull is not)
    attempt_timeout = o.attempt_timeout;
  };
  run_with_faults(
      opts, "orphan-timeout", 4,
      [&](KvCluster& c, Load& load, int round) {
        c.sigstop(0);
        // The fault itself: frozen for longer than the clients' attempt timeout, so their pulls give up.
        std::this_thread::sleep_for(attempt_timeout + 500ms);
        c.sigcont(0);
        ASSERT_TRUE(wait_writes(load, 60)) << "writes did not resume after SIGCONT " << round + 1;
      },
      more_pullers);
}

}  // namespace
}  // namespace gasoline
