// Sidecars reaching a kv that serves TLS (docs/security.md, TLS): real gasoline-kv, gasoline-worker and example app
// processes on loopback, certificates from a real CA made by the openssl tool. The operator hands sidecars the CA
// as PEM text (GASOLINE_KV_TLS_CA_PEM, the same option as --kv-tls-ca-pem), so that form is the one tested here.
#include "tests/support/test_pki.h"
#include "tests/worker/fleet.h"

namespace gasoline::fleet {
namespace {

class WorkerTls : public WorkerFleet {
 protected:
  void start_tls_kv() {
    pki_ = std::make_unique<testing::TestPki>(dir_->path(), "kv");
    auto server = pki_->issue("server", {"IP:127.0.0.1"});
    KvOptions o;
    o.extra_args = {"--tls-cert", server.cert, "--tls-key", server.key};
    start_kv(o);
    kv_tls_.enabled = true;
    kv_tls_.ca = pki_->ca_cert();
  }

  std::string ca_pem() const {
    std::ifstream in(pki_->ca_cert());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  std::unique_ptr<testing::TestPki> pki_;
};

TEST_F(WorkerTls, SidecarsGivenTheCaAsTextCompleteWorkflows) {
  start_tls_kv();
  start_sidecar("a", true, {"--kv-tls-ca-pem", ca_pem()});
  start_sidecar("b", true, {"--kv-tls-ca-pem", ca_pem()});
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) ids.push_back(dispatch(i % 2 ? "noop" : "sleep", Json{{"ms", 20}}));
  EXPECT_TRUE(wait_until([&] { return all_terminal(ids); }, 30s)) << pending(ids);
  for (const auto& id : ids) EXPECT_EQ(get(id).value("status", ""), "complete") << get(id).dump();
}

TEST_F(WorkerTls, ASidecarWithoutTlsSaysWhyTheKvRefusesIt) {
  start_tls_kv();
  Node& n = start_sidecar("plain", false, {"--unauthenticated-exit-after", "2s"});
  EXPECT_TRUE(wait_until([&] { return file_contains(n.log, "accepts TLS connections only", "kv-tls"); }, 10s))
      << tail(n.log);
  EXPECT_EQ(n.sidecar->wait(20s), 2) << "a sidecar that cannot reach the kv over TLS must end, not idle:\n"
                                     << tail(n.log);
}

TEST_F(WorkerTls, ASidecarTrustingAnotherCaStaysUnreadyAndLogsTheVerifyFailure) {
  start_tls_kv();
  testing::TestPki other(dir_->path(), "other");
  Node& n = start_sidecar("mistrust", false, {"--kv-tls-ca", other.ca_cert()});
  EXPECT_TRUE(wait_until([&] { return file_contains(n.log, "TLS handshake", "certificate verify failed"); }, 10s))
      << tail(n.log);
  EXPECT_FALSE(ready(n));
}

}  // namespace
}  // namespace gasoline::fleet
