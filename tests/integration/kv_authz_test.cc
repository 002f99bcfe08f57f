// Scoped credentials (docs/security.md, "Roles") against a real gasoline-kv process on loopback: the experiment of
// issue 18 as a test. Before roles, any token holder could read another pool's lease token and commit its
// workflow, list, cancel and signal any pool, drain, leave or subscribe as any worker id and change the Raft
// membership. Each of those is tried here with the credentials of another namespace (or another connection of
// the same namespace) and must be refused with permission_denied, counted in gasoline_kv_requests_denied_total,
// while the connection stays usable and the admin token still does everything.
#include "kv/rpc/client.h"
#include "kv/rpc/protocol.h"
#include "tests/support/kv_process.h"
#include "tests/support/process.h"
#include "tests/support/prometheus_text.h"
#include "tests/support/raw_conn.h"

#include <boost/asio.hpp>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <iostream>

namespace gasoline {
namespace {

using namespace std::chrono_literals;
using rpc::Json;
using rpc::KvError;
using testing::KvOptions;
using testing::KvProcess;
using testing::TempDir;
using testing::metric;

const std::string kWorkerA = "worker-a-0123456789abcdef";  // worker and client of namespace a (a sidecar)
const std::string kWorkerB = "worker-b-0123456789abcdef";  // worker and client of namespace b
const std::string kClientB = "client-b-0123456789abcdef";  // client of namespace b only
const std::string kClientA = "client-a-0123456789abcdef";  // client of namespace a only
const std::string kViewer = "viewer-all-0123456789abcdef";  // viewer of every namespace (a gasctl user)
const std::string kViewerA = "viewer-a-0123456789abcdef";   // viewer of namespace a

// A free loopback port for the kv's /metrics (the Exposer cannot report one it chose itself).
int free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

std::string http_get(int port, const std::string& path) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket s(io);
  s.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  boost::asio::write(s, boost::asio::buffer(req));
  std::string out;
  boost::system::error_code ec;
  std::array<char, 8192> buf{};
  while (size_t n = s.read_some(boost::asio::buffer(buf), ec)) out.append(buf.data(), n);
  return out;
}

class KvAuthz : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>("kv-authz");
    std::ofstream(dir_->path() + "/credentials") << "# role scope token\n"
                                                 << "worker a " << kWorkerA << "\n"
                                                 << "client a " << kWorkerA << "\n"
                                                 << "client a " << kClientA << "\n"
                                                 << "worker b " << kWorkerB << "\n"
                                                 << "client b " << kWorkerB << "\n"
                                                 << "client b " << kClientB << "\n"
                                                 << "viewer * " << kViewer << "\n"
                                                 << "viewer a " << kViewerA << "\n";
    metrics_port_ = free_port();
    KvOptions o;
    o.fsync = false;
    o.ping_interval_ms = 500;  // nothing here waits for reclaims; keep the workers alive between pings
    o.lost_after_ms = 60000;
    o.metrics_listen = "127.0.0.1:" + std::to_string(metrics_port_);
    o.extra_args = {"--credentials-file", dir_->path() + "/credentials"};
    kv_ = std::make_unique<KvProcess>(dir_->path() + "/kv", o);
    admin_ = kv_->client("admin");
  }
  void TearDown() override {
    if (HasFailure() && kv_) {
      std::ifstream in(kv_->log_path());
      std::cerr << "--- kv log ---\n" << in.rdbuf() << "\n";
    }
  }

  std::unique_ptr<rpc::Client> connect(const std::string& token, const std::string& name) {
    rpc::ClientOptions o;
    o.endpoints = {kv_->address()};
    o.token = token;
    o.name = name;
    o.call_timeout = 20s;
    return std::make_unique<rpc::Client>(o);
  }

  // The error code of a call ("ok" when it succeeds); a denial must also say why.
  static std::string code_of(rpc::Client& c, const std::string& op, const Json& args) {
    try {
      c.call(op, args);
      return "ok";
    } catch (const KvError& e) {
      if (e.code() == rpc::code::kPermissionDenied) {
        EXPECT_EQ(std::string(e.what()).find("permission_denied: permission denied: "), 0u) << e.what();
      }
      return e.code();
    }
  }

  std::string metrics() { return http_get(metrics_port_, "/metrics"); }

  std::unique_ptr<TempDir> dir_;
  int metrics_port_ = 0;
  std::unique_ptr<KvProcess> kv_;
  std::unique_ptr<rpc::Client> admin_;
};

const Json kComplete = Json{{"kind", "complete"}, {"output", "done"}};

TEST_F(KvAuthz, AnotherNamespacesCredentialsCannotReachPoolA) {
  admin_->call("dispatch", Json{{"pool", "a.p"}, {"id", "wf-a"}, {"name", "job"}, {"input", Json::object()}});
  admin_->call("dispatch", Json{{"pool", "a.p"}, {"id", "wf-a2"}, {"name", "job"}, {"input", Json::object()}});
  admin_->call("dispatch", Json{{"pool", "b.p"}, {"id", "wf-b"}, {"name", "job"}, {"input", Json::object()}});

  // The sidecar of pool a.p holds wf-a's lease.
  auto a = connect(kWorkerA, "sidecar-a");
  a->call("ping", Json{{"pool", "a.p"}, {"worker", "wa-1"}});
  auto tasks = a->call("pull", Json{{"pool", "a.p"}, {"worker", "wa-1"}, {"max", 1}})["tasks"];
  ASSERT_EQ(tasks.size(), 1u);
  const Json task = tasks[0];
  const uint64_t token = task["token"].get<uint64_t>();
  const std::string held = task["workflow_id"];
  const std::string other = held == "wf-a" ? "wf-a2" : "wf-a";

  // Pool b.p's sidecar credentials, on a connection that pinged as its own worker.
  auto b = connect(kWorkerB, "sidecar-b");
  b->call("ping", Json{{"pool", "b.p"}, {"worker", "wb-1"}});

  // Cannot learn the lease token, nor anything else of pool a.p.
  EXPECT_EQ(code_of(*b, "get", Json{{"workflow_id", held}}), "permission_denied");
  EXPECT_EQ(code_of(*b, "get", Json{{"workflow_id", held}, {"stale", true}}), "permission_denied");
  EXPECT_EQ(code_of(*b, "list", Json{{"pool", "a.p"}}), "permission_denied");
  // Cannot commit or release a.p's workflow, neither as a.p's worker nor as its own.
  Json commit{{"workflow_id", held}, {"worker", "wa-1"}, {"token", token}, {"step", kComplete}};
  EXPECT_EQ(code_of(*b, "commit", commit), "permission_denied");
  Json commit_as_b = commit;
  commit_as_b["worker"] = "wb-1";
  EXPECT_EQ(code_of(*b, "commit", commit_as_b), "permission_denied");
  EXPECT_EQ(code_of(*b, "release", Json{{"workflow_id", held}, {"worker", "wa-1"}, {"token", token}}),
            "permission_denied");
  // Cannot dispatch into, cancel or signal a.p's workflows.
  EXPECT_EQ(code_of(*b, "dispatch", Json{{"pool", "a.p"}, {"name", "job"}, {"input", 1}}), "permission_denied");
  EXPECT_EQ(code_of(*b, "cancel", Json{{"workflow_id", other}}), "permission_denied");
  EXPECT_EQ(code_of(*b, "signal", Json{{"workflow_id", other}, {"name", "go"}, {"body", 1}}), "permission_denied");
  // Cannot join, drain, leave or pull in a.p, nor subscribe to a.p's worker's bumps.
  EXPECT_EQ(code_of(*b, "ping", Json{{"pool", "a.p"}, {"worker", "wb-1"}}), "permission_denied");
  EXPECT_EQ(code_of(*b, "pull", Json{{"pool", "a.p"}, {"worker", "wa-1"}}), "permission_denied");
  EXPECT_EQ(code_of(*b, "drain", Json{{"pool", "a.p"}, {"worker", "wa-1"}}), "permission_denied");
  EXPECT_EQ(code_of(*b, "leave", Json{{"pool", "a.p"}, {"worker", "wa-1"}}), "permission_denied");
  EXPECT_EQ(code_of(*b, "subscribe", Json{{"worker", "wa-1"}}), "permission_denied");
  // A commit's children and signals stay in the caller's namespace too. (Pulled while wb-1 is b.p's only worker.)
  auto b_tasks = b->call("pull", Json{{"pool", "b.p"}, {"worker", "wb-1"}, {"max", 1}})["tasks"];
  ASSERT_EQ(b_tasks.size(), 1u);
  Json spawn{{"workflow_id", "wf-b"},
             {"worker", "wb-1"},
             {"token", b_tasks[0]["token"]},
             {"step", kComplete},
             {"children", Json::array({Json{{"pool", "a.p"}, {"id", "planted"}, {"name", "job"}, {"input", 1}}})}};
  EXPECT_EQ(code_of(*b, "commit", spawn), "permission_denied");
  spawn.erase("children");
  spawn["signals"] = Json::array({Json{{"workflow_id", other}, {"name", "go"}, {"body", 1}}});
  EXPECT_EQ(code_of(*b, "commit", spawn), "permission_denied");
  // Pinging as a.p's worker id in its own pool does not make that id's bump stream its own.
  EXPECT_EQ(code_of(*b, "ping", Json{{"pool", "b.p"}, {"worker", "wa-1"}}), "ok");
  EXPECT_EQ(code_of(*b, "subscribe", Json{{"worker", "wa-1"}}), "permission_denied");
  // Cannot change the membership or read the whole cluster's state.
  for (const auto& op : {"cluster.add", "cluster.remove", "cluster.transfer", "cluster.status", "status", "workers",
                         "pool.configure"})
    EXPECT_EQ(code_of(*b, op, Json{{"id", 2}, {"raft_address", "127.0.0.1:1"}, {"client_address", "127.0.0.1:2"},
                                   {"pool", "b.p"}, {"retention_ms", 0}}),
              "permission_denied")
        << op;

  // Pool b's client-only credential may read b but not a, and may not act as a worker.
  auto cb = connect(kClientB, "client-b");
  EXPECT_EQ(code_of(*cb, "get", Json{{"workflow_id", "wf-b"}}), "ok");
  EXPECT_EQ(code_of(*cb, "list", Json{{"pool", "b.p"}}), "ok");
  EXPECT_EQ(code_of(*cb, "get", Json{{"workflow_id", held}}), "permission_denied");
  EXPECT_EQ(code_of(*cb, "ping", Json{{"pool", "b.p"}, {"worker", "cb-1"}}), "permission_denied");

  // After all those denials both connections still work: nothing was closed.
  EXPECT_EQ(code_of(*b, "ping", Json{{"pool", "b.p"}, {"worker", "wb-1"}}), "ok");
  EXPECT_EQ(code_of(*b, "get", Json{{"workflow_id", "wf-b"}}), "ok");

  // Nothing of a.p changed: the lease is still wa-1's, and it commits.
  auto w = admin_->call("get", Json{{"workflow_id", held}});
  EXPECT_EQ(w["status"], "running") << w.dump();
  EXPECT_EQ(w["lease_token"], token);
  EXPECT_EQ(code_of(*admin_, "get", Json{{"workflow_id", "planted"}}), "not_found");
  EXPECT_EQ(a->call("commit", commit)["status"], "complete");
  EXPECT_EQ(admin_->call("get", Json{{"workflow_id", other}})["status"], "pending");

  // Each denial was counted by op and reason.
  auto text = metrics();
  EXPECT_GE(metric(text, R"(gasoline_kv_requests_denied_total{op="commit",reason="namespace"})"), 3) << text;
  EXPECT_GE(metric(text, R"(gasoline_kv_requests_denied_total{op="get",reason="namespace"})"), 3) << text;
  EXPECT_GE(metric(text, R"(gasoline_kv_requests_denied_total{op="cluster.add",reason="role"})"), 1) << text;
  EXPECT_GE(metric(text, R"(gasoline_kv_requests_denied_total{op="subscribe",reason="worker"})"), 1) << text;
  EXPECT_GE(metric(text, R"(gasoline_kv_requests_denied_total{op="ping",reason="role"})"), 1) << text;
}

TEST_F(KvAuthz, LeaseTokensAndWorkerIdsBelongToTheConnectionThatPinged) {
  admin_->call("dispatch", Json{{"pool", "a.p"}, {"id", "wf-1"}, {"name", "job"}, {"input", Json::object()}});
  auto a = connect(kWorkerA, "sidecar-a");
  a->call("ping", Json{{"pool", "a.p"}, {"worker", "wa-1"}});
  auto tasks = a->call("pull", Json{{"pool", "a.p"}, {"worker", "wa-1"}, {"max", 1}})["tasks"];
  ASSERT_EQ(tasks.size(), 1u);
  const uint64_t token = tasks[0]["token"].get<uint64_t>();

  // The holder sees its own lease token; the admin sees every one.
  EXPECT_EQ(a->call("get", Json{{"workflow_id", "wf-1"}})["lease_token"], token);
  EXPECT_EQ(admin_->call("get", Json{{"workflow_id", "wf-1"}})["lease_token"], token);
  // Another connection of the same namespace, with the same credential or a client one, sees the lease but not
  // its token, in get and in list.
  auto a2 = connect(kWorkerA, "sidecar-a-2");
  auto ca = connect(kClientA, "client-a");
  for (auto* c : {a2.get(), ca.get()}) {
    auto w = c->call("get", Json{{"workflow_id", "wf-1"}});
    EXPECT_EQ(w["status"], "running") << w.dump();
    EXPECT_EQ(w["lease_worker"], "wa-1") << w.dump();
    EXPECT_FALSE(w.contains("lease_token")) << w.dump();
    auto listed = c->call("list", Json{{"pool", "a.p"}})["workflows"];
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_FALSE(listed[0].contains("lease_token")) << listed.dump();
  }
  EXPECT_EQ(a->call("list", Json{{"pool", "a.p"}})["workflows"][0]["lease_token"], token);

  // The other connection may not act as wa-1 before pinging as it.
  Json commit{{"workflow_id", "wf-1"}, {"worker", "wa-1"}, {"token", token}, {"step", kComplete}};
  for (const auto& [op, args] : std::vector<std::pair<std::string, Json>>{
           {"commit", commit},
           {"release", Json{{"workflow_id", "wf-1"}, {"worker", "wa-1"}, {"token", token}}},
           {"pull", Json{{"pool", "a.p"}, {"worker", "wa-1"}}},
           {"drain", Json{{"pool", "a.p"}, {"worker", "wa-1"}}},
           {"undrain", Json{{"pool", "a.p"}, {"worker", "wa-1"}}},
           {"leave", Json{{"pool", "a.p"}, {"worker", "wa-1"}}},
           {"subscribe", Json{{"worker", "wa-1"}}}}) {
    try {
      a2->call(op, args);
      ADD_FAILURE() << op << " as another connection's worker id was allowed";
    } catch (const KvError& e) {
      EXPECT_EQ(e.code(), rpc::code::kPermissionDenied) << op << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("never pinged as it"), std::string::npos) << e.what();
    }
  }
  // The holder's own connection may, with a child in its own pool, named or (by default) the parent's.
  EXPECT_EQ(a->call("subscribe", Json{{"worker", "wa-1"}})["worker"], "wa-1");
  Json with_children = commit;
  with_children["children"] = Json::array();
  with_children["children"].push_back(Json{{"id", "child-default-pool"}, {"name", "job"}, {"input", 1}});
  with_children["children"].push_back(Json{{"pool", "a.other"}, {"id", "child-named"}, {"name", "job"}, {"input", 1}});
  EXPECT_EQ(a->call("commit", with_children)["status"], "complete");
  EXPECT_EQ(admin_->call("get", Json{{"workflow_id", "child-default-pool"}})["pool"], "a.p");
  EXPECT_EQ(admin_->call("get", Json{{"workflow_id", "child-named"}})["pool"], "a.other");
  a->call("drain", Json{{"pool", "a.p"}, {"worker", "wa-1"}});
  EXPECT_EQ(a->call("undrain", Json{{"pool", "a.p"}, {"worker", "wa-1"}})["was_draining"], true);
  a->call("leave", Json{{"pool", "a.p"}, {"worker", "wa-1"}});

  // The admin (operator, gasctl) still does everything, cluster ops included (this kv runs one replica, so they
  // are refused for that reason, not for the caller's role).
  try {
    admin_->call("cluster.add", Json{{"id", 2}, {"raft_address", "127.0.0.1:1"}, {"client_address", "127.0.0.1:2"}});
    ADD_FAILURE() << "cluster.add on a single replica succeeded";
  } catch (const KvError& e) {
    EXPECT_EQ(e.code(), rpc::code::kFailedPrecondition) << e.what();
  }
  EXPECT_EQ(admin_->call("status")["role"], "leader");
  admin_->call("workers", Json::object());
  admin_->call("ping", Json{{"pool", "b.p"}, {"worker", "wa-1"}});
  admin_->call("leave", Json{{"pool", "b.p"}, {"worker", "wa-1"}});
}

// A read-only credential for people running gasctl: they can look at every pool, change nothing, and never see a
// lease token (with it they could commit someone else's step).
TEST_F(KvAuthz, ViewersReadButChangeNothingAndSeeNoLeaseToken) {
  admin_->call("dispatch", Json{{"pool", "a.p"}, {"id", "wf-v"}, {"name", "job"}, {"input", Json::object()}});
  admin_->call("dispatch", Json{{"pool", "b.p"}, {"id", "wf-vb"}, {"name", "job"}, {"input", Json::object()}});
  auto a = connect(kWorkerA, "sidecar-a");
  a->call("ping", Json{{"pool", "a.p"}, {"worker", "wa-v"}});
  ASSERT_EQ(a->call("pull", Json{{"pool", "a.p"}, {"worker", "wa-v"}, {"max", 1}})["tasks"].size(), 1u);

  auto v = connect(kViewer, "gasctl-viewer");
  auto got = v->call("get", Json{{"workflow_id", "wf-v"}});
  EXPECT_EQ(got.value("status", ""), "running") << got.dump();
  EXPECT_FALSE(got.contains("lease_token")) << got.dump();
  auto listed = v->call("list", Json{{"pool", "a.p"}});
  ASSERT_EQ(listed["workflows"].size(), 1u);
  EXPECT_FALSE(listed["workflows"][0].contains("lease_token")) << listed.dump();
  EXPECT_EQ(code_of(*v, "list", Json{{"pool", "b.p"}}), "ok");
  EXPECT_EQ(code_of(*v, "status", Json::object()), "ok");
  EXPECT_EQ(code_of(*v, "workers", Json{{"pool", "a.p"}}), "ok");
  for (auto [op, args] : std::vector<std::pair<std::string, Json>>{
           {"dispatch", Json{{"pool", "a.p"}, {"name", "job"}, {"input", Json::object()}}},
           {"cancel", Json{{"workflow_id", "wf-v"}}},
           {"signal", Json{{"workflow_id", "wf-v"}, {"name", "s"}, {"body", Json::object()}}},
           {"ping", Json{{"pool", "a.p"}, {"worker", "wv"}}},
           {"pool.configure", Json{{"pool", "a.p"}}},
           {"cluster.transfer", Json{{"id", 0}}}})
    EXPECT_EQ(code_of(*v, op, args), "permission_denied") << op;

  auto va = connect(kViewerA, "gasctl-viewer-a");
  EXPECT_EQ(code_of(*va, "list", Json{{"pool", "a.p"}}), "ok");
  EXPECT_EQ(code_of(*va, "get", Json{{"workflow_id", "wf-vb"}}), "permission_denied");
  EXPECT_EQ(code_of(*va, "status", Json::object()), "permission_denied");
  EXPECT_EQ(admin_->call("get", Json{{"workflow_id", "wf-v"}}).value("status", ""), "running")
      << "a viewer's refused cancel changed the workflow";
}

// --credentials-file is reread when it changes: a new line works without a restart, a removed or changed line
// ends the connections it opened (at their next request), and a file that does not parse keeps the old ones.
TEST_F(KvAuthz, EditingTheCredentialsFileAddsAndRevokesWithoutARestart) {
  const std::string path = dir_->path() + "/credentials";
  auto rewrite = [&](const std::string& text) {
    std::ofstream(path + ".new") << text;
    std::filesystem::rename(path + ".new", path);  // as a Secret volume swaps its files
  };
  auto b = connect(kClientB, "client-b");
  ASSERT_EQ(code_of(*b, "list", Json{{"pool", "b.p"}}), "ok");
  auto a = connect(kClientA, "client-a");
  ASSERT_EQ(code_of(*a, "list", Json{{"pool", "a.p"}}), "ok");

  const std::string kNew = "client-new-0123456789abcdef";
  // client b's line is gone, a's is now a viewer of a (other roles), and a new client of c appears.
  rewrite("viewer a " + kClientA + "\nclient c " + kNew + "\n");
  auto fresh = connect(kNew, "client-new");
  EXPECT_TRUE(testing::wait_until([&] { return code_of(*fresh, "list", Json{{"pool", "c.p"}}) == "ok"; }, 10s))
      << "the new credential was not accepted without a restart";
  std::string revoked;
  EXPECT_TRUE(testing::wait_until(
      [&] {
        try {
          b->call("list", Json{{"pool", "b.p"}}, rpc::CallOptions{2s, false});
          return false;
        } catch (const KvError& e) {
          revoked = e.what();
          return e.code() == rpc::code::kUnauthenticated;
        }
      },
      10s))
      << revoked;
  EXPECT_NE(revoked.find("revoked"), std::string::npos) << revoked;
  try {
    a->call("dispatch", Json{{"pool", "a.p"}, {"name", "job"}, {"input", Json::object()}}, rpc::CallOptions{2s, false});
    ADD_FAILURE() << "a connection kept the client role its credential lost";
  } catch (const KvError& e) {
    EXPECT_EQ(e.code(), rpc::code::kUnauthenticated) << e.what();
    EXPECT_NE(std::string(e.what()).find("other roles"), std::string::npos) << e.what();
  }
  // Reconnected, the old token of b is refused and a's has its new role.
  EXPECT_EQ(code_of(*connect(kClientB, "client-b-again"), "list", Json{{"pool", "b.p"}}), rpc::code::kUnauthenticated);
  auto a2 = connect(kClientA, "client-a-again");
  EXPECT_EQ(code_of(*a2, "list", Json{{"pool", "a.p"}}), "ok");
  EXPECT_EQ(code_of(*a2, "dispatch", Json{{"pool", "a.p"}, {"name", "job"}, {"input", Json::object()}}),
            "permission_denied");

  // A broken edit keeps the credentials that work.
  rewrite("client c\n");
  ASSERT_TRUE(testing::wait_until(
      [&] {
        std::ifstream in(kv_->log_path());
        std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        (void)code_of(*connect(kNew, "probe"), "list", Json{{"pool", "c.p"}});
        return log.find("keeping the previous credentials") != std::string::npos;
      },
      10s));
  EXPECT_EQ(code_of(*connect(kNew, "client-new-again"), "list", Json{{"pool", "c.p"}}), "ok");
  EXPECT_EQ(code_of(*fresh, "list", Json{{"pool", "c.p"}}), "ok");
}

TEST_F(KvAuthz, UnknownTokensAreRefusedAtTheHello) {
  auto c = connect("not-a-credential-0123456789", "stranger");
  try {
    c->call("status");
    ADD_FAILURE() << "an unknown token was accepted";
  } catch (const KvError& e) {
    EXPECT_EQ(e.code(), rpc::code::kUnauthenticated) << e.what();
  }
  // The admin token of --token-file keeps working next to the credentials file.
  EXPECT_EQ(admin_->call("status")["role"], "leader");
}

// Requests pipelined right behind the hello, in the same write, wait until the credential is checked and are
// then all answered, each under the connection's role (the server reads nothing more while it authenticates).
TEST_F(KvAuthz, RequestsPipelinedBehindTheHelloWaitForTheCredential) {
  admin_->call("dispatch", Json{{"pool", "b.p"}, {"id", "wf-b"}, {"name", "job"}, {"input", Json::object()}});
  admin_->call("dispatch", Json{{"pool", "a.p"}, {"id", "wf-a"}, {"name", "job"}, {"input", Json::object()}});
  testing::RawConn c(kv_->address());
  std::string bytes = rpc::encode_frame(
      rpc::FrameType::kHello, 0, testing::RawConn::pack(Json{{"version", rpc::kProtocolVersion}, {"token", kClientB}}));
  constexpr uint64_t kRequests = 40;
  for (uint64_t id = 1; id <= kRequests; ++id)
    bytes += testing::RawConn::request(id, "get", Json{{"workflow_id", id % 2 ? "wf-b" : "wf-a"}});
  c.send(bytes);
  auto welcome = c.next();
  ASSERT_TRUE(welcome.frame) << (welcome.closed ? "closed" : "no welcome in time");
  ASSERT_EQ(welcome.frame->type, rpc::FrameType::kWelcome);
  std::map<uint64_t, Json> answers;  // responses may come in any order
  while (answers.size() < kRequests) {
    auto r = c.next();
    ASSERT_TRUE(r.frame) << (r.closed ? "closed" : "no response in time") << " after " << answers.size();
    ASSERT_EQ(r.frame->type, rpc::FrameType::kResponse);
    answers[r.frame->id] = Json::from_msgpack(r.frame->body);
  }
  for (uint64_t id = 1; id <= kRequests; ++id) {
    const Json& r = answers[id];
    if (id % 2) {
      EXPECT_TRUE(r.value("ok", false)) << r.dump();
    } else {
      EXPECT_EQ(r["error"]["code"], "permission_denied") << r.dump();
    }
  }
}

TEST(KvCredentialsFile, ABadFileStopsTheKvNamingTheLine) {
  TempDir dir("kv-bad-credentials");
  std::ofstream(dir.path() + "/credentials") << "worker a " << kWorkerA << "\nclient B " << kClientB << "\n";
  std::ofstream(dir.path() + "/token") << "admin-token-0123456789\n";
  std::string log = dir.path() + "/kv.log";
  testing::Process p({testing::binary_path("gasoline-kv"), "--data-dir", dir.path() + "/db", "--token-file",
                      dir.path() + "/token", "--credentials-file", dir.path() + "/credentials", "--listen",
                      "127.0.0.1:0", "--metrics-listen", ""},
                     log);
  EXPECT_NE(p.wait(20s), 0);
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("--credentials-file " + dir.path() + "/credentials: line 2: scope 'B' is not a namespace name"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find(kClientB), std::string::npos) << "the error quotes a token: " << text;
}

}  // namespace
}  // namespace gasoline
