#pragma once
// The fixture of the raft process tests: real gasoline-kv replicas on loopback (KvCluster), the failover-proof load
// (tests/raft/load.h) and the history checker run against the final state read back through the leader or one
// replica.
#include "tests/raft/history.h"
#include "tests/raft/load.h"
#include "tests/support/kv_cluster.h"
#include "tests/support/logs_on_failure.h"

#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>

namespace gasoline {

using namespace std::chrono_literals;
using raft_test::History;
using raft_test::Load;
using raft_test::LoadOptions;
using testing::KvCluster;
using testing::KvClusterOptions;
using testing::LogsOnFailure;
using testing::wait_until;
using Json = nlohmann::json;

class RaftProcess : public ::testing::Test {
 protected:
  std::unique_ptr<testing::TempDir> dir_ = std::make_unique<testing::TempDir>("gasoline-raft-test");

  LoadOptions load_options(KvCluster& c, const std::string& run) {
    LoadOptions o;
    o.endpoints = c.endpoints();
    o.token = c.token();
    o.run_id = run;
    o.workers = 3;
    o.dispatchers = 1;
    o.steps = 3;
    o.backlog = 64;
    return o;
  }

  // Reads the final state of every workflow of the history through the leader and runs the checker.
  raft_test::CheckResult check_through_leader(KvCluster& c, const History& h) {
    raft_test::ClientSlot slot(c.endpoints(), c.token(), "final-read");
    auto final_state = raft_test::read_final(slot, h.workflow_ids(), /*stale=*/false);
    return raft_test::check(h, final_state);
  }

  // The same check against one replica's own state (stale reads), once it applied everything the leader has.
  raft_test::CheckResult check_on_replica(KvCluster& c, size_t i, const History& h) {
    raft_test::ClientSlot slot({c.client_address(i)}, c.token(), "final-read-replica");
    auto final_state = raft_test::read_final(slot, h.workflow_ids(), /*stale=*/true);
    return raft_test::check(h, final_state);
  }

  // Waits until replica i applied at least what the leader has applied now.
  bool caught_up(KvCluster& c, size_t i, std::chrono::milliseconds timeout = 60s) {
    int l = c.leader_index();
    if (l < 0) return false;
    // A barrier makes the leader commit (and so apply) everything of earlier terms first.
    auto client = c.client("barrier");
    client->call("list", Json{{"pool", "raft"}, {"limit", 1}}, rpc::CallOptions{10s, true});
    uint64_t target = c.applied_index(static_cast<size_t>(l));
    return target > 0 && wait_until([&] { return c.applied_index(i) >= target; }, timeout);
  }

  static void report(const Load& load, const raft_test::CheckResult& r) {
    std::cout << "  " << r.summary() << "\n  load: " << load.acked_dispatches() << " dispatches, "
              << load.acked_commits() << " commits acked, " << load.completed() << " workflows completed, "
              << load.conflicts() << " commits rejected (lease lost), " << load.unknown() << " unknown\n";
  }

  // A snapshot every 64 entries (16 kept behind it), so a few hundred entries make several.
  static KvClusterOptions frequent_snapshots() {
    KvClusterOptions o;
    o.snapshot_threshold = 64;
    o.snapshot_trailing = 16;
    return o;
  }

  // Until the leader has applied `index` (with snapshots every 64 entries: several snapshots' worth).
  static bool wait_leader_applied(KvCluster& c, uint64_t index, std::chrono::milliseconds timeout = 60s) {
    return wait_until(
        [&] {
          int leader = c.leader_index();
          return leader >= 0 && c.applied_index(static_cast<size_t>(leader)) >= index;
        },
        timeout);
  }

  static bool wait_writes(Load& load, uint64_t more, std::chrono::milliseconds timeout = 30s) {
    uint64_t target = load.acked_writes() + more;
    return wait_until([&] { return load.acked_writes() >= target; }, timeout);
  }
};


}  // namespace gasoline
