// TLS on the client protocol (docs/security.md, TLS) against a real gasoline-kv process on loopback, with
// certificates from a real CA made by the openssl tool: the bearer token and every workflow's data must not
// cross the network in clear, a client must not talk to a kv whose certificate it cannot verify, and a rotated
// certificate must reach new connections without a restart.
#include "kv/rpc/client.h"
#include "kv/rpc/protocol.h"
#include "tests/support/kv_process.h"
#include "tests/support/process.h"
#include "tests/support/raw_conn.h"
#include "tests/support/test_pki.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace gasoline {
namespace {

using namespace std::chrono_literals;
using rpc::Json;
using rpc::KvError;
using testing::CertFiles;
using testing::KvOptions;
using testing::KvProcess;
using testing::TempDir;
using testing::TestPki;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The error code and message of a call, or "ok".
std::string outcome(rpc::Client& client, const std::string& op = "status") {
  try {
    client.call(op, Json::object(), rpc::CallOptions{3s, false});
    return "ok";
  } catch (const KvError& e) {
    return e.code() + ": " + e.what();
  }
}

class KvTls : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>("kv-tls");
    pki_ = std::make_unique<TestPki>(dir_->path(), "kv");
    server_ = pki_->issue("server", {"DNS:localhost", "IP:127.0.0.1"});
  }

  void start_kv(std::vector<std::string> extra = {}) {
    KvOptions o;
    o.extra_args = {"--tls-cert", server_.cert, "--tls-key", server_.key};
    for (auto& a : extra) o.extra_args.push_back(std::move(a));
    kv_ = std::make_unique<KvProcess>(dir_->path() + "/kv", o);
  }

  std::unique_ptr<rpc::Client> client(rpc::tls::ClientFiles tls, const std::string& address = "") {
    rpc::ClientOptions o;
    o.endpoints = {address.empty() ? kv_->address() : address};
    o.token = kv_->token();
    o.name = "tls-test";
    o.connect_timeout = 2s;
    o.call_timeout = 5s;
    o.tls = std::move(tls);
    return std::make_unique<rpc::Client>(o);
  }

  rpc::tls::ClientFiles trusting(const std::string& ca) const {
    rpc::tls::ClientFiles f;
    f.enabled = true;
    f.ca = ca;
    return f;
  }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<TestPki> pki_;
  CertFiles server_;
  std::unique_ptr<KvProcess> kv_;
};

TEST_F(KvTls, AClientTrustingTheCaWorksByIpByNameAndWithTheCaAsText) {
  start_kv();
  EXPECT_EQ(outcome(*client(trusting(pki_->ca_cert()))), "ok");
  auto port = kv_->address().substr(kv_->address().rfind(':'));
  EXPECT_EQ(outcome(*client(trusting(pki_->ca_cert()), "localhost" + port)), "ok");
  rpc::tls::ClientFiles as_text;
  as_text.enabled = true;
  as_text.ca_pem = read_file(pki_->ca_cert());
  auto c = client(as_text);
  // A whole workflow's life over TLS: what a sidecar does.
  c->call("dispatch", Json{{"pool", "p"}, {"name", "noop"}, {"input", Json{{"secret", "s3cr3t"}}}});
  auto listed = c->call("list", Json{{"pool", "p"}});
  ASSERT_EQ(listed["workflows"].size(), 1u) << listed.dump();
}

TEST_F(KvTls, APlainClientIsToldThatTheKvWantsTls) {
  start_kv();
  auto plain = client(rpc::tls::ClientFiles{});
  auto got = outcome(*plain);
  EXPECT_NE(got.find(rpc::code::kUnauthenticated), std::string::npos) << got;
  EXPECT_NE(got.find("TLS"), std::string::npos) << got;
}

TEST_F(KvTls, DuringAMigrationPlainAndTlsClientsAreBothServed) {
  start_kv({"--tls-allow-plaintext"});
  EXPECT_EQ(outcome(*client(rpc::tls::ClientFiles{})), "ok");
  EXPECT_EQ(outcome(*client(trusting(pki_->ca_cert()))), "ok");
}

TEST_F(KvTls, AClientRefusesAKvItCannotVerify) {
  start_kv();
  TestPki other(dir_->path(), "other");
  auto got = outcome(*client(trusting(other.ca_cert())));
  EXPECT_NE(got.find("certificate verify failed"), std::string::npos) << got;
  auto wrong_name = trusting(pki_->ca_cert());
  wrong_name.server_name = "gasoline-kv.elsewhere.svc";
  got = outcome(*client(wrong_name));
  EXPECT_NE(got.find("verifying 'gasoline-kv.elsewhere.svc'"), std::string::npos) << got;
  // The system trust store does not hold a test CA.
  rpc::tls::ClientFiles system;
  system.enabled = true;
  EXPECT_NE(outcome(*client(system)).find("certificate verify failed"), std::string::npos);
  // The kv survived the failed handshakes and still serves.
  EXPECT_EQ(outcome(*client(trusting(pki_->ca_cert()))), "ok");
}

TEST_F(KvTls, MutualTlsRefusesClientsWithoutACertificateOfTheClientCa) {
  TestPki clients(dir_->path(), "clients");
  start_kv({"--tls-client-ca", clients.ca_cert()});
  EXPECT_NE(outcome(*client(trusting(pki_->ca_cert()))), "ok");

  TestPki rogue(dir_->path(), "rogue");
  auto forged = rogue.issue("forged-client", {"DNS:sidecar"});
  auto with_forged = trusting(pki_->ca_cert());
  with_forged.cert = forged.cert;
  with_forged.key = forged.key;
  EXPECT_NE(outcome(*client(with_forged)), "ok");

  auto good = clients.issue("client", {"DNS:sidecar"});
  auto with_good = trusting(pki_->ca_cert());
  with_good.cert = good.cert;
  with_good.key = good.key;
  EXPECT_EQ(outcome(*client(with_good)), "ok");
}

TEST_F(KvTls, GarbageThatLooksLikeTlsDoesNotHurtTheKv) {
  start_kv();
  for (std::string bytes : {std::string("\x16\x03\x01\x00\x05hello", 10), std::string("\x16", 1),
                            std::string(70000, '\x16')}) {
    testing::RawConn raw(kv_->address());
    raw.send(bytes);
    auto r = raw.next(4s);
    EXPECT_FALSE(r.frame) << "a TLS server answers a broken handshake with an alert or a close, never a frame";
  }
  EXPECT_EQ(outcome(*client(trusting(pki_->ca_cert()))), "ok");
}

TEST_F(KvTls, ARotatedCertificateReachesNewConnectionsWhileOpenOnesKeepWorking) {
  start_kv();
  auto before = client(trusting(pki_->ca_cert()));
  ASSERT_EQ(outcome(*before), "ok");

  // As a Secret volume rotates: new files, then the names swapped in at once.
  TestPki next(dir_->path(), "next");
  auto rotated = next.issue("rotated", {"IP:127.0.0.1"});
  std::filesystem::rename(rotated.key, server_.key);
  std::filesystem::rename(rotated.cert, server_.cert);

  bool reloaded = testing::wait_until([&] { return outcome(*client(trusting(next.ca_cert()))) == "ok"; }, 15s);
  EXPECT_TRUE(reloaded) << "the kv kept serving the old certificate";
  EXPECT_NE(outcome(*client(trusting(pki_->ca_cert()))), "ok") << "new connections still get the old certificate";
  EXPECT_EQ(outcome(*before), "ok") << "the open connection broke on rotation";
  EXPECT_NE(read_file(kv_->log_path()).find("reloaded the TLS certificate"), std::string::npos);
}

TEST_F(KvTls, AHalfWrittenRotationKeepsTheOldCertificate) {
  start_kv();
  std::ofstream(server_.cert, std::ios::trunc) << "-----BEGIN CERTIFICATE-----\nnot yet\n";
  // Wait past a reload check: the kv must log that it keeps the old certificate, and keep serving it.
  ASSERT_TRUE(testing::wait_until(
      [&] {
        auto c = client(trusting(pki_->ca_cert()));
        (void)outcome(*c);
        return read_file(kv_->log_path()).find("keeping the previous TLS certificate") != std::string::npos;
      },
      15s));
  EXPECT_EQ(outcome(*client(trusting(pki_->ca_cert()))), "ok");
}

TEST_F(KvTls, AKeyOfAnotherCertificateStopsTheKvWithTheReason) {
  auto other = pki_->issue("other", {"DNS:localhost"});
  KvOptions o;
  o.extra_args = {"--tls-cert", server_.cert, "--tls-key", other.key};
  try {
    KvProcess kv(dir_->path() + "/bad", o);
    FAIL() << "the kv started with a key that does not match its certificate";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("does not belong to the certificate"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace gasoline
