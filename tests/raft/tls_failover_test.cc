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

}  // namespace
}  // namespace gasoline
