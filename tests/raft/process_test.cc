// Process tests: real gasoline-kv replicas on loopback (KvCluster), a dispatch → pull → commit load that records
// a client history (tests/raft/load.h), and faults: kill -9, SIGSTOP/SIGCONT, full restart, wiped data, a new
// member. Every test ends with the history checker (tests/raft/history.h) on the final state read back through
// the leader (and, where it matters, from each replica).
#include "tests/raft/process_fixture.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <thread>

namespace gasoline {
namespace {

// Samples every replica's (state, term) in the background and records any term in which two replicas said
// "leader": a split brain.
class LeaderMonitor {
 public:
  explicit LeaderMonitor(KvCluster& cluster) {
    for (size_t i = 0; i < cluster.size(); ++i) {
      rpc::ClientOptions o;
      o.endpoints = {cluster.client_address(i)};
      o.token = cluster.token();
      o.name = "leader-monitor";
      o.connect_timeout = 300ms;
      endpoints_.push_back(o);
    }
    thread_ = std::thread([this] { run(); });
  }
  ~LeaderMonitor() { stop(); }
  void stop() {
    if (stop_.exchange(true)) return;
    thread_.join();
  }
  std::vector<std::string> split_brains() const {
    std::lock_guard lock(mu_);
    return split_;
  }
  size_t samples() const { return samples_; }

 private:
  void run() {
    std::vector<std::unique_ptr<rpc::Client>> clients(endpoints_.size());
    while (!stop_) {
      for (size_t i = 0; i < clients.size() && !stop_; ++i) {
        if (!clients[i]) clients[i] = std::make_unique<rpc::Client>(endpoints_[i]);
        try {
          auto s = clients[i]->call("status", Json::object(), rpc::CallOptions{200ms, false});
          ++samples_;
          if (!s["raft"].is_object() || s["raft"].value("state", "") != "leader") continue;
          uint64_t term = s["raft"].value("term", uint64_t{0});
          uint64_t id = s["raft"].value("id", uint64_t{0});
          std::lock_guard lock(mu_);
          auto [it, fresh] = leader_of_term_.emplace(term, id);
          if (!fresh && it->second != id)
            split_.push_back("term " + std::to_string(term) + ": replicas " + std::to_string(it->second) + " and " +
                             std::to_string(id) + " both led");
        } catch (const std::exception&) {
          clients[i].reset();  // a dead or frozen replica; reconnect next time
        }
      }
      std::this_thread::sleep_for(10ms);  // sampling period of a background monitor, not synchronisation
    }
  }

  std::vector<rpc::ClientOptions> endpoints_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> samples_{0};
  mutable std::mutex mu_;
  std::map<uint64_t, uint64_t> leader_of_term_;
  std::vector<std::string> split_;
  std::thread thread_;
};

TEST_F(RaftProcess, KillNineOfTheLeaderLosesNoAcknowledgedWrite) {
  KvCluster c(dir_->path());
  LogsOnFailure logs{c};
  LeaderMonitor monitor(c);
  ASSERT_GE(c.leader_index(), 0);
  History h;
  Load load(load_options(c, "kill"), h);
  load.start();
  ASSERT_TRUE(wait_until([&] { return load.acked_commits() >= 30; }, 30s)) << "the load never got going";
  for (int round = 0; round < 2; ++round) {
    int l = c.leader_index();
    ASSERT_GE(l, 0);
    c.kill9(static_cast<size_t>(l));
    ASSERT_TRUE(wait_writes(load, 60)) << "writes did not resume after kill -9 of replica " << c.raft_id(l);
    int next = c.leader_index();
    ASSERT_GE(next, 0);
    EXPECT_NE(next, l);
    c.restart(static_cast<size_t>(l));
  }
  ASSERT_TRUE(wait_writes(load, 30));
  load.stop();
  monitor.stop();
  auto r = check_through_leader(c, h);
  report(load, r);
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_GT(r.acked_commits, 50u) << r.summary();
  EXPECT_GT(load.completed(), 0u);
  EXPECT_TRUE(monitor.split_brains().empty()) << ::testing::PrintToString(monitor.split_brains());
}

TEST_F(RaftProcess, FrozenLeaderStepsDownWithoutSplitBrain) {
  KvCluster c(dir_->path());
  LogsOnFailure logs{c};
  LeaderMonitor monitor(c);
  int old = c.leader_index();
  ASSERT_GE(old, 0);
  History h;
  Load load(load_options(c, "stop"), h);
  load.start();
  ASSERT_TRUE(wait_until([&] { return load.acked_commits() >= 30; }, 30s));
  old = c.leader_index();
  ASSERT_GE(old, 0);
  uint64_t old_term = c.raft_state(static_cast<size_t>(old)).second;
  c.sigstop(static_cast<size_t>(old));
  // The others elect a leader of a later term (leader_index() skips the frozen replica)...
  int next = -1;
  uint64_t new_term = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        next = c.leader_index(2s);
        if (next < 0 || next == old) return false;
        new_term = c.raft_state(static_cast<size_t>(next)).second;
        return new_term > old_term;
      },
      30s))
      << "no new leader while the old one was frozen";
  // ...and writes resume while the old leader is still frozen.
  ASSERT_TRUE(wait_writes(load, 60)) << "writes did not resume while the old leader was frozen";
  c.sigcont(static_cast<size_t>(old));
  // The old leader learns the later term and steps down.
  ASSERT_TRUE(wait_until(
      [&] {
        auto [state, term] = c.raft_state(static_cast<size_t>(old));
        return state == "follower" && term >= new_term;
      },
      30s))
      << "the old leader did not step down after SIGCONT";
  ASSERT_TRUE(wait_writes(load, 60));
  load.stop();
  monitor.stop();
  auto r = check_through_leader(c, h);
  report(load, r);
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_GT(r.acked_commits, 50u);
  EXPECT_GT(monitor.samples(), 10u);
  EXPECT_TRUE(monitor.split_brains().empty()) << ::testing::PrintToString(monitor.split_brains());
  // The old leader ends with exactly the cluster's state.
  ASSERT_TRUE(caught_up(c, static_cast<size_t>(old)));
  auto on_old = check_on_replica(c, static_cast<size_t>(old), h);
  EXPECT_TRUE(on_old.ok()) << "on the old leader: " << on_old.summary();
}

TEST_F(RaftProcess, EveryReplicaRestartedFromDiskKeepsEveryAcknowledgedWrite) {
  KvCluster c(dir_->path());
  LogsOnFailure logs{c};
  ASSERT_GE(c.leader_index(), 0);
  History h;
  Load load(load_options(c, "restart"), h);
  load.start();
  ASSERT_TRUE(wait_until([&] { return load.acked_commits() >= 150; }, 60s));
  // Crash everything at once, load still running: some writes end unacknowledged, none acknowledged is lost.
  for (size_t i = 0; i < c.size(); ++i) c.kill9(i);
  load.stop();
  for (size_t i = 0; i < c.size(); ++i) c.restart(i);
  ASSERT_GE(c.leader_index(), 0);
  auto r = check_through_leader(c, h);
  report(load, r);
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_GE(r.acked_commits, 150u);
  for (size_t i = 0; i < c.size(); ++i) {
    ASSERT_TRUE(caught_up(c, i)) << "replica " << c.raft_id(i);
    auto ri = check_on_replica(c, i, h);
    EXPECT_TRUE(ri.ok()) << "replica " << c.raft_id(i) << ": " << ri.summary();
  }
}

// Replicas write RocksDB without its WAL (the Raft log is the WAL), so a kill -9 loses every replica's memtable at
// once. After several snapshots, what comes back must be rebuilt from the snapshot libraft loads at startup plus
// the log entries after it; nothing acknowledged may be missing on any replica.
TEST_F(RaftProcess, EveryReplicaKilledAfterSnapshotsRebuildsFromSnapshotAndLog) {
  KvCluster c(dir_->path(), frequent_snapshots());
  LogsOnFailure logs{c};
  ASSERT_GE(c.leader_index(), 0);
  History h;
  Load load(load_options(c, "nowal"), h);
  load.start();
  ASSERT_TRUE(wait_leader_applied(c, 400));
  for (size_t i = 0; i < c.size(); ++i) c.kill9(i);
  load.stop();
  for (size_t i = 0; i < c.size(); ++i) c.restart(i);
  ASSERT_GE(c.leader_index(30s), 0);
  auto r = check_through_leader(c, h);
  report(load, r);
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_GT(r.acked_commits, 50u) << r.summary();
  bool restored = false;
  for (size_t i = 0; i < c.size(); ++i) {
    ASSERT_TRUE(caught_up(c, i)) << "replica " << c.raft_id(i);
    auto ri = check_on_replica(c, i, h);
    EXPECT_TRUE(ri.ok()) << "replica " << c.raft_id(i) << ": " << ri.summary();
    restored = restored || c.log_contains(i, "raft snapshot installed");
  }
  // The point of the test: the memtables were lost and a snapshot was the way back (RocksDB flushes only at
  // 64 MiB, so no replica had flushed this state).
  EXPECT_TRUE(restored) << "no replica installed a snapshot on restart";
}

TEST_F(RaftProcess, WipedReplicaCatchesUpFromASnapshot) {
  KvCluster c(dir_->path(), frequent_snapshots());
  LogsOnFailure logs{c};
  int l = c.leader_index();
  ASSERT_GE(l, 0);
  History h;
  Load load(load_options(c, "wipe"), h);
  load.start();
  // Several snapshots' worth of entries, so the leader's log no longer reaches back to the start.
  ASSERT_TRUE(wait_leader_applied(c, 400));
  l = c.leader_index();
  ASSERT_GE(l, 0);
  size_t victim = (static_cast<size_t>(l) + 1) % c.size();
  auto t0 = std::chrono::steady_clock::now();
  auto since = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  c.wipe(victim);
  std::cout << "  wiped replica " << c.raft_id(victim) << " restarted after " << since() << " s\n";
  ASSERT_TRUE(wait_writes(load, 100));
  load.stop();
  std::cout << "  load stopped after " << since() << " s\n";
  // Usually well under a second; sometimes libraft 0.15's install_snapshot_timeout (30 s): the leader remembers
  // the wiped replica's old match index, so the ack of the installed (older) snapshot doesn't end its snapshot
  // state (see the report).
  ASSERT_TRUE(caught_up(c, victim, 90s)) << "the wiped replica did not catch up";
  std::cout << "  caught up after " << since() << " s\n";

  EXPECT_TRUE(c.log_contains(victim, "raft snapshot installed")) << "it caught up without installing a snapshot";
  auto r = check_through_leader(c, h);
  report(load, r);
  EXPECT_TRUE(r.ok()) << r.summary();
  auto rv = check_on_replica(c, victim, h);
  EXPECT_TRUE(rv.ok()) << "on the wiped replica: " << rv.summary();
  // And it is a full voter again: with it, the cluster survives losing the leader.
  l = c.leader_index();
  ASSERT_GE(l, 0);
  if (static_cast<size_t>(l) != victim) {
    size_t other = 3 - static_cast<size_t>(l) - victim;  // the third replica
    c.kill9(other);
    auto client = c.client("after-wipe");
    EXPECT_NO_THROW(client->call("dispatch", Json{{"pool", "raft"}, {"name", "step"}, {"id", "after-wipe"}},
                                 rpc::CallOptions{20s, true}));
  }
}

// Regression test for libraft 0.15's restart pitfall: entries whose length is not a multiple of 8 are written
// padded but loaded unpadded, and a replica can then never load its log again. Commands of every size mod 8 go
// through the log; then every replica is killed, one loses its RocksDB (not its Raft log) and must rebuild the
// state by replaying its own log, and everything comes back byte for byte.
TEST_F(RaftProcess, ReplicasReloadALogOfOddSizedEntries) {
  KvCluster c(dir_->path());
  LogsOnFailure logs{c};
  ASSERT_GE(c.leader_index(), 0);
  auto client = c.client("odd");
  const size_t kWorkflows = 240;
  auto input = [](size_t n) { return std::string(n % 97 + (n % 8), static_cast<char>('a' + n % 26)); };
  for (size_t n = 0; n < kWorkflows; ++n)
    client->call("dispatch",
                 Json{{"pool", "odd"}, {"name", "n"}, {"id", "odd-" + std::to_string(n)}, {"input", input(n)}},
                 rpc::CallOptions{20s, true});
  client->close();
  for (size_t i = 0; i < c.size(); ++i) c.kill9(i);
  std::filesystem::remove_all(c.data_dir(0) + "/state");  // keep replica 1's Raft log, drop its state
  for (size_t i = 0; i < c.size(); ++i) c.restart(i);      // throws (with the log) if a replica can't load its log
  ASSERT_GE(c.leader_index(), 0);
  for (size_t i = 0; i < c.size(); ++i) {
    EXPECT_FALSE(c.log_contains(i, "short read")) << c.log_text(i);
    ASSERT_TRUE(caught_up(c, i)) << "replica " << c.raft_id(i);
    auto replica = c.client_of(i, "odd-check");
    for (size_t n = 0; n < kWorkflows; n += 7) {
      auto w = replica->call("get", Json{{"workflow_id", "odd-" + std::to_string(n)}, {"stale", true}});
      EXPECT_EQ(w["input"], input(n)) << "replica " << c.raft_id(i) << " workflow " << n;
    }
  }
}

TEST_F(RaftProcess, AddedMemberCatchesUpAndVotesThenTheDeadOneIsRemoved) {
  KvCluster c(dir_->path());
  LogsOnFailure logs{c};
  ASSERT_GE(c.leader_index(), 0);
  History h;
  Load load(load_options(c, "member"), h);
  load.start();
  ASSERT_TRUE(wait_until([&] { return load.acked_commits() >= 30; }, 30s));
  size_t added = c.start_joining_replica();
  auto admin = c.client("admin", 60s);
  auto res = admin->call("cluster.add", Json{{"id", c.raft_id(added)},
                                             {"raft_address", c.raft_address(added)},
                                             {"client_address", c.client_address(added)}});
  auto is_voter = [&](const Json& members, uint64_t id) {
    for (const auto& m : members)
      if (m.value("id", uint64_t{0}) == id) return m.value("role", "") == "voter";
    return false;
  };
  EXPECT_TRUE(is_voter(res.value("members", Json::array()), c.raft_id(added))) << res.dump();
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = c.status(added);
        return s && is_voter((*s)["raft"].value("members", Json::array()), c.raft_id(added));
      },
      30s))
      << "the new member never learned it is a voter";
  ASSERT_TRUE(caught_up(c, added));
  // Four voters: losing the leader leaves three, a quorum.
  int l = c.leader_index();
  ASSERT_GE(l, 0);
  c.kill9(static_cast<size_t>(l));
  ASSERT_TRUE(wait_writes(load, 60)) << "writes did not resume with 3 of 4 voters";
  // Remove the dead member: three voters again. (The answer of cluster.remove may still list it: see
  // ClusterChangeAnswersWithTheNewConfiguration.)
  admin->call("cluster.remove", Json{{"id", c.raft_id(l)}});
  ASSERT_TRUE(wait_until(
      [&] {
        int leader = c.leader_index(2s);
        if (leader < 0) return false;
        auto s = c.status(static_cast<size_t>(leader));
        return s && (*s)["raft"].value("members", Json::array()).size() == 3;
      },
      30s))
      << "the dead member was not removed";
  ASSERT_TRUE(wait_writes(load, 30));
  load.stop();
  auto r = check_through_leader(c, h);
  report(load, r);
  EXPECT_TRUE(r.ok()) << r.summary();
  ASSERT_TRUE(caught_up(c, added));
  auto on_added = check_on_replica(c, added, h);
  EXPECT_TRUE(on_added.ok()) << "on the added member: " << on_added.summary();
}

// Regression: cluster.add and cluster.remove used to answer with the configuration RaftLog published on its last
// 5 ms tick, which predated the change that had just committed.
TEST_F(RaftProcess, ClusterChangeAnswersWithTheNewConfiguration) {
  KvCluster c(dir_->path());
  LogsOnFailure logs{c};
  ASSERT_GE(c.leader_index(), 0);
  size_t added = c.start_joining_replica();
  auto admin = c.client("admin", 60s);
  auto members_of = [](const Json& res) {
    std::map<uint64_t, std::string> out;
    for (const auto& m : res.value("members", Json::array())) out[m.value("id", uint64_t{0})] = m.value("role", "");
    return out;
  };
  auto res = admin->call("cluster.add", Json{{"id", c.raft_id(added)},
                                             {"raft_address", c.raft_address(added)},
                                             {"client_address", c.client_address(added)}});
  EXPECT_EQ(members_of(res)[c.raft_id(added)], "voter") << res.dump();
  res = admin->call("cluster.remove", Json{{"id", c.raft_id(added)}});
  EXPECT_EQ(members_of(res).count(c.raft_id(added)), 0u) << res.dump();
}

// Regression: rpc::Client used to keep a connection that stopped answering, so every retry went to the same
// frozen replica although the client knew every endpoint and a new leader served.
TEST_F(RaftProcess, ClientLeavesAFrozenLeader) {
  KvCluster c(dir_->path());
  LogsOnFailure logs{c};
  int l = c.leader_index();
  ASSERT_GE(l, 0);
  // A client whose first endpoint is the leader, connected to it.
  std::vector<std::string> eps{c.client_address(static_cast<size_t>(l))};
  for (size_t i = 0; i < c.size(); ++i)
    if (static_cast<int>(i) != l) eps.push_back(c.client_address(i));
  rpc::ClientOptions o;
  o.endpoints = eps;
  o.token = c.token();
  o.call_timeout = 3s;
  rpc::Client client(o);
  client.call("dispatch", Json{{"pool", "raft"}, {"name", "n"}, {"id", "before"}}, rpc::CallOptions{10s, true});
  c.sigstop(static_cast<size_t>(l));
  ASSERT_TRUE(wait_until([&] { int n = c.leader_index(2s); return n >= 0 && n != l; }, 30s));
  // An idempotent call with retries and 15 s to spare, while a leader serves.
  bool ok = false;
  for (int attempt = 0; attempt < 5 && !ok; ++attempt) {
    try {
      client.call("dispatch", Json{{"pool", "raft"}, {"name", "n"}, {"id", "after"}}, rpc::CallOptions{3s, true});
      ok = true;
    } catch (const rpc::KvError&) {
    }
  }
  c.sigcont(static_cast<size_t>(l));
  EXPECT_TRUE(ok) << "five 3 s calls with retry all went to the frozen replica";
}

}  // namespace
}  // namespace gasoline
