// TLS clients of a replicated kv (docs/security.md, TLS): real gasoline-kv replicas on loopback sharing one
// certificate from a CA made by the openssl tool. A client that reaches a follower is redirected to the leader and
// must reconnect over TLS; when the leader dies its clients fail over. Each of those drops a TLS connection while
// operations on it are pending, which is where a client could free a stream under an operation still running.
#include "tests/support/kv_cluster.h"
#include "tests/support/test_pki.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>

namespace gasoline {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using testing::KvCluster;
using testing::KvClusterOptions;

class RaftTls : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<testing::TempDir>("raft-tls");
    pki_ = std::make_unique<testing::TestPki>(dir_->path(), "kv");
    auto cert = pki_->issue("replicas", {"IP:127.0.0.1"});
    KvClusterOptions o;
    // The harness's own clients (leader_index, status) speak plaintext; the test's clients use TLS.
    o.extra_args = {"--tls-cert", cert.cert, "--tls-key", cert.key, "--tls-allow-plaintext"};
    cluster_ = std::make_unique<KvCluster>(dir_->path() + "/cluster", o);
  }

  std::unique_ptr<rpc::Client> client_of(std::vector<std::string> endpoints) {
    rpc::ClientOptions o;
    o.endpoints = std::move(endpoints);
    o.token = cluster_->token();
    o.name = "tls-failover";
    o.connect_timeout = 1s;
    o.call_timeout = 10s;
    o.tls.enabled = true;
    o.tls.ca = pki_->ca_cert();
    return std::make_unique<rpc::Client>(o);
  }

  std::unique_ptr<testing::TempDir> dir_;
  std::unique_ptr<testing::TestPki> pki_;
  std::unique_ptr<KvCluster> cluster_;
};

TEST_F(RaftTls, AFollowersClientIsRedirectedAndTheLeadersClientsFailOver) {
  int leader = cluster_->leader_index();
  ASSERT_GE(leader, 0);
  size_t follower = (static_cast<size_t>(leader) + 1) % cluster_->size();
  // Writes sent to a follower: each client is redirected to the leader and reconnects over TLS.
  std::set<std::string> acknowledged;
  for (int round = 0; round < 20; ++round) {
    auto c = client_of({cluster_->client_address(follower)});
    auto id = "redirected-" + std::to_string(round);
    c->call("dispatch", Json{{"pool", "p"}, {"id", id}, {"name", "noop"}, {"input", Json::object()}},
            rpc::CallOptions{10s, true});
    acknowledged.insert(id);
  }
  // Pipelined writes to a follower: the redirect drops the connection with writes still pending on it.
  for (int round = 0; round < 5; ++round) {
    auto c = client_of({cluster_->client_address(follower)});
    std::atomic<int> answered{0};
    for (int i = 0; i < 300; ++i)
      c->call_async("dispatch",
                    Json{{"pool", "p"}, {"id", "piped-" + std::to_string(round) + "-" + std::to_string(i)},
                         {"name", "noop"}, {"input", Json{{"pad", std::string(2000, 'x')}}}},
                    [&](std::exception_ptr, Json) { ++answered; });
    ASSERT_TRUE(testing::wait_until([&] { return answered == 300; }, 20s)) << answered;
  }
  // A client of the whole cluster writing while the leader is killed fails over to the new leader.
  auto c = client_of(cluster_->endpoints());
  for (int i = 0; i < 400; ++i) {
    if (i == 100) cluster_->kill9(static_cast<size_t>(leader));
    auto id = "failover-" + std::to_string(i);
    c->call("dispatch", Json{{"pool", "p"}, {"id", id}, {"name", "noop"}, {"input", Json::object()}},
            rpc::CallOptions{20s, true});
    acknowledged.insert(id);
  }
  auto listed = c->call("list", Json{{"pool", "p"}, {"limit", 1000}}, rpc::CallOptions{10s, true});
  std::set<std::string> stored;
  for (const auto& w : listed["workflows"]) stored.insert(w.value("id", ""));
  for (const auto& id : acknowledged) EXPECT_TRUE(stored.count(id)) << "acknowledged " << id << " is lost";
}

// TLS between the replicas themselves (--raft-tls-*): a cluster whose Raft traffic is encrypted elects a leader,
// replicates, survives a leader kill with every acknowledged write kept, and a replica whose certificate comes from
// another CA (though it holds the Raft secret) is kept out: it never learns the log.
class RaftPeerTls : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<testing::TempDir>("raft-peer-tls");
    pki_ = std::make_unique<testing::TestPki>(dir_->path(), "peers");
  }
  std::vector<std::string> tls_args(const testing::TestPki& pki, const std::string& stem) {
    auto cert = pki.issue(stem, {"IP:127.0.0.1"});
    return {"--raft-tls-cert", cert.cert, "--raft-tls-key", cert.key, "--raft-tls-ca", pki_->ca_cert()};
  }
  std::unique_ptr<testing::TempDir> dir_;
  std::unique_ptr<testing::TestPki> pki_;
};

TEST_F(RaftPeerTls, EncryptedReplicasElectReplicateAndFailOver) {
  KvClusterOptions o;
  for (int i = 0; i < 3; ++i) o.replica_args.push_back(tls_args(*pki_, "replica-" + std::to_string(i)));
  KvCluster cluster(dir_->path() + "/cluster", o);
  int leader = cluster.leader_index();
  ASSERT_GE(leader, 0);
  for (size_t i = 0; i < cluster.size(); ++i)
    EXPECT_TRUE(cluster.log_contains(i, "raft traffic over TLS")) << "replica " << i << " runs Raft in clear";
  auto c = cluster.client("peer-tls", 20s);
  std::set<std::string> acknowledged;
  for (int i = 0; i < 300; ++i) {
    if (i == 100) cluster.kill9(static_cast<size_t>(leader));
    auto id = "peer-tls-" + std::to_string(i);
    c->call("dispatch", Json{{"pool", "p"}, {"id", id}, {"name", "noop"}, {"input", Json{{"i", i}}}},
            rpc::CallOptions{20s, true});
    acknowledged.insert(id);
  }
  cluster.restart(static_cast<size_t>(leader));
  auto listed = c->call("list", Json{{"pool", "p"}, {"limit", 1000}}, rpc::CallOptions{10s, true});
  std::set<std::string> stored;
  for (const auto& w : listed["workflows"]) stored.insert(w.value("id", ""));
  for (const auto& id : acknowledged) EXPECT_TRUE(stored.count(id)) << "acknowledged " << id << " is lost";
  // The restarted replica catches up over TLS.
  auto target = cluster.applied_index(static_cast<size_t>((leader + 1) % 3));
  EXPECT_TRUE(testing::wait_until([&] { return cluster.applied_index(static_cast<size_t>(leader)) >= target; }, 20s))
      << "the restarted replica did not catch up over TLS";
}

TEST_F(RaftPeerTls, AReplicaWithACertificateOfAnotherCaLearnsNothing) {
  testing::TestPki rogue(dir_->path(), "rogue");
  KvClusterOptions o;
  o.replica_args.push_back(tls_args(*pki_, "replica-0"));
  o.replica_args.push_back(tls_args(*pki_, "replica-1"));
  auto forged = rogue.issue("replica-2", {"IP:127.0.0.1"});
  // The right CA to check others with and the Raft secret, but its own certificate is not from that CA.
  o.replica_args.push_back({"--raft-tls-cert", forged.cert, "--raft-tls-key", forged.key, "--raft-tls-ca",
                            pki_->ca_cert()});
  KvCluster cluster(dir_->path() + "/cluster", o);
  // The two good replicas form the quorum and take writes.
  auto c = cluster.client("peer-tls", 20s);
  for (int i = 0; i < 20; ++i)
    c->call("dispatch", Json{{"pool", "p"}, {"id", "w" + std::to_string(i)}, {"name", "noop"}},
               rpc::CallOptions{20s, true});
  // The replicas with good certificates agree on a leader; the third never hears of it (leader_index() would wait
  // for all three to agree).
  int leader = -1;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        for (int i : {0, 1})
          if (cluster.raft_state(static_cast<size_t>(i)).first == "leader") leader = i;
        return leader >= 0;
      },
      15s));
  EXPECT_GE(cluster.applied_index(static_cast<size_t>(leader)), 20u);
  EXPECT_EQ(cluster.applied_index(2), 0u) << "the replica with a forged certificate learned the log";
  EXPECT_TRUE(testing::wait_until(
      [&] { return cluster.log_contains(static_cast<size_t>(leader), "raft TLS connection failed"); }, 10s))
      << cluster.log_text(static_cast<size_t>(leader)).substr(0, 4000);
}

}  // namespace
}  // namespace gasoline
