// Raft peers prove membership (kv/raft/handshake.h): real replicas on loopback, and processes that reach their Raft
// ports without the Raft secret: a raw client forging handshakes, and a rogue gasoline-kv started like a replica.
// Before the handshake had a proof, a forged handshake claiming id 2 followed by a RequestVote pushed every
// replica into the forger's term, and a rogue replica held the whole state within seconds.
#include "kv/raft/handshake.h"
#include "tests/support/kv_cluster.h"
#include "tests/support/logs_on_failure.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace gasoline {
namespace {

using namespace std::chrono_literals;
using testing::KvCluster;
using testing::KvClusterOptions;
using testing::LogsOnFailure;
using testing::Process;
using testing::wait_until;
using Json = nlohmann::json;
namespace hs = raft::handshake;
using Clock = std::chrono::steady_clock;

void put64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// The version-1 handshake every replica used to accept: a claimed id and address, nothing else.
std::string unauthenticated_handshake(uint64_t id, const std::string& address) {
  size_t padded = (address.size() + 1 + 7) / 8 * 8;
  std::string out;
  put64(out, 1);
  put64(out, id);
  put64(out, padded);
  out += address;
  out.append(padded - address.size(), '\0');
  return out;
}

// libraft 0.15's wire encoding of a RequestVote (uv_encoding.c): type 3, header length, then term, candidate id,
// last log index, last log term and flags (bit 0: disrupt the current leader).
std::string request_vote(uint64_t term, uint64_t candidate) {
  std::string out;
  put64(out, 3);
  put64(out, 40);
  put64(out, term);
  put64(out, candidate);
  put64(out, uint64_t{1} << 40);
  put64(out, term - 1);
  put64(out, 1);
  return out;
}

// A blocking loopback TCP connection with deadlines on reads.
class RawPeer {
 public:
  explicit RawPeer(const std::string& address) {
    auto colon = address.rfind(':');
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
    ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      throw std::runtime_error("cannot connect to " + address);
  }
  ~RawPeer() { ::close(fd_); }
  RawPeer(const RawPeer&) = delete;
  RawPeer& operator=(const RawPeer&) = delete;

  void send(const std::string& bytes) {
    // A refused peer may already have closed: a failed send is part of what is being tested, not an error here.
    (void)::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }
  // Reads exactly n bytes, or fewer if the connection closes or the deadline passes.
  std::string read(size_t n, std::chrono::milliseconds timeout) {
    std::string out;
    auto deadline = Clock::now() + timeout;
    while (out.size() < n && wait_readable(deadline)) {
      char buf[256];
      ssize_t k = ::recv(fd_, buf, std::min(sizeof buf, n - out.size()), 0);
      if (k <= 0) break;
      out.append(buf, static_cast<size_t>(k));
    }
    return out;
  }
  // Whether the other side closed the connection within `timeout` (any bytes it sends are discarded).
  bool closed_by_peer(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (wait_readable(deadline)) {
      char buf[256];
      ssize_t k = ::recv(fd_, buf, sizeof buf, 0);
      if (k <= 0) return true;
    }
    return false;
  }

 private:
  bool wait_readable(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(left)) > 0;
  }
  int fd_ = -1;
};

std::string http_get(const std::string& address, const std::string& path) {
  RawPeer c(address);
  c.send("GET " + path + " HTTP/1.0\r\nHost: kv\r\n\r\n");
  return c.read(1 << 20, 5s);
}

// The value of a Prometheus sample line that starts with `series`, or -1.
double sample(const std::string& exposition, const std::string& series) {
  size_t at = exposition.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(exposition.substr(at + series.size() + 2));
}

uint64_t max_term(KvCluster& c) {
  uint64_t term = 0;
  for (size_t i = 0; i < c.size(); ++i) term = std::max(term, c.raft_state(i).second);
  return term;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class RaftPeerAuth : public ::testing::Test {
 protected:
  std::unique_ptr<testing::TempDir> dir_ = std::make_unique<testing::TempDir>("gasoline-raft-auth-test");

  static void dispatch(KvCluster& c, const std::string& id, const std::string& input) {
    c.client("dispatch")->call("dispatch", Json{{"pool", "auth"}, {"name", "step"}, {"id", id}, {"input", input}},
                               rpc::CallOptions{20s, true});
  }
  static std::string input_of(KvCluster& c, const std::string& id) {
    auto w = c.client("read")->call("get", Json{{"workflow_id", id}}, rpc::CallOptions{20s, true});
    return w.value("input", "");
  }
};

// A process that only reaches the Raft port, claiming to be replica 2, is refused before libraft sees a byte:
// with the old unauthenticated handshake, with a new hello but a made-up proof, and by saying nothing at all.
// Each is closed within the handshake deadline, counted by reason, and no replica moves to the forged term.
TEST_F(RaftPeerAuth, ForgedSilentAndGarbageHandshakesAreRefusedBeforeLibraft) {
  KvClusterOptions options;
  options.metrics = true;
  options.extra_args = {"--raft-handshake-timeout-ms", "1500"};
  KvCluster c(dir_->path(), options);
  LogsOnFailure logs{c};
  ASSERT_GE(c.leader_index(), 0);
  dispatch(c, "before-forgery", "kept");
  uint64_t forged_term = max_term(c) + 1000;
  std::string claimed_address = c.raft_address(1) + "/" + c.client_address(1);

  for (size_t i = 0; i < c.size(); ++i) {
    SCOPED_TRACE("replica " + std::to_string(c.raft_id(i)));
    {
      RawPeer forger(c.raft_address(i));
      forger.send(unauthenticated_handshake(2, claimed_address) + request_vote(forged_term, 2));
      EXPECT_TRUE(forger.closed_by_peer(10s)) << "the version-1 handshake was kept open";
    }
    {
      RawPeer forger(c.raft_address(i));
      hs::Hello hello{2, claimed_address, hs::random_nonce()};
      forger.send(hs::encode_hello(hello));
      auto challenge = forger.read(hs::kChallengeSize, 10s);
      EXPECT_EQ(challenge.size(), hs::kChallengeSize) << "no challenge for a well-formed hello";
      forger.send(std::string(hs::kProofSize, '\x42') + request_vote(forged_term, 2));
      EXPECT_TRUE(forger.closed_by_peer(10s)) << "a made-up proof was accepted";
    }
    {
      RawPeer silent(c.raft_address(i));
      auto started = Clock::now();
      EXPECT_TRUE(silent.closed_by_peer(10s)) << "a silent peer was kept past the handshake deadline";
      EXPECT_GE(Clock::now() - started, 1000ms) << "closed before the deadline";
    }
    {
      RawPeer garbage(c.raft_address(i));
      garbage.send(std::string(64, '\xff'));
      EXPECT_TRUE(garbage.closed_by_peer(10s)) << "garbage was kept open";
    }
    auto metrics = http_get(c.metrics_address(i), "/metrics");
    EXPECT_GE(sample(metrics, "gasoline_kv_raft_handshakes_refused_total{reason=\"malformed\"}"), 2) << metrics;
    EXPECT_GE(sample(metrics, "gasoline_kv_raft_handshakes_refused_total{reason=\"bad_proof\"}"), 1) << metrics;
    EXPECT_GE(sample(metrics, "gasoline_kv_raft_handshakes_refused_total{reason=\"timeout\"}"), 1) << metrics;
    auto log = c.log_text(i);
    EXPECT_NE(log.find("raft handshake refused"), std::string::npos);
    EXPECT_NE(log.find("127.0.0.1"), std::string::npos) << "the refusal does not name the remote address";
  }
  // The RequestVotes never reached libraft: no replica is in the forged term, and the cluster still serves.
  int l = c.leader_index();
  ASSERT_GE(l, 0);
  EXPECT_LT(max_term(c), forged_term);
  EXPECT_EQ(input_of(c, "before-forgery"), "kept");
  dispatch(c, "after-forgery", "served");
  EXPECT_EQ(input_of(c, "after-forgery"), "served");
}

// A rogue gasoline-kv started as replica 3 (same --peer list, same addresses, empty data dir) while the real
// replica 3 is down. Without a secret it refuses to start; with a wrong one it runs but learns nothing: the real
// replicas refuse to send it anything and refuse what it sends, so its state stays empty and the cluster's
// configuration, term and data are unchanged. The real replica 3 then rejoins with the secret.
TEST_F(RaftPeerAuth, RogueReplicaWithoutTheSecretLearnsNothing) {
  KvCluster c(dir_->path());
  LogsOnFailure logs{c, {dir_->path() + "/rogue.log"}};
  int l = c.leader_index();
  ASSERT_GE(l, 0);
  dispatch(c, "confidential", "card 4111-1111-1111-1111");
  size_t victim = static_cast<size_t>(l) == 2 ? 1 : 2;  // a follower
  c.terminate(victim);
  ASSERT_GE(c.leader_index(), 0);
  uint64_t term_before = max_term(c);

  std::string rogue_dir = dir_->path() + "/rogue";
  std::string rogue_log = dir_->path() + "/rogue.log";
  std::vector<std::string> argv{testing::binary_path("gasoline-kv"),
                                "--data-dir", rogue_dir + "/data",
                                "--token-file", dir_->path() + "/token",
                                "--listen", c.client_address(victim),
                                "--metrics-listen", "",
                                "--port-file", rogue_dir + "/port",
                                "--raft-id", std::to_string(c.raft_id(victim)),
                                "--election-timeout-ms", "600",
                                "--heartbeat-ms", "60"};
  for (const auto& f : c.peer_flags()) argv.push_back(f);

  {
    Process no_secret(argv, rogue_log);
    EXPECT_EQ(no_secret.wait(15s), 1) << "started without --raft-secret-file";
    EXPECT_NE(read_file(rogue_log).find("--peer needs --raft-secret-file"), std::string::npos);
  }

  std::ofstream(dir_->path() + "/wrong-secret") << "a-guessed-raft-secret-that-is-wrong\n";
  argv.insert(argv.end(), {"--raft-secret-file", dir_->path() + "/wrong-secret"});
  Process rogue(argv, rogue_log);
  ASSERT_TRUE(wait_until([&] { return std::filesystem::exists(rogue_dir + "/port") || !rogue.running(); }, 30s));
  ASSERT_TRUE(rogue.running()) << read_file(rogue_log);
  int leader_now = c.leader_index();
  ASSERT_GE(leader_now, 0);
  rpc::ClientOptions o;
  o.endpoints = {c.client_address(victim)};
  o.token = c.token();
  o.name = "rogue-probe";
  o.connect_timeout = 1s;
  rpc::Client probe(o);
  // The old hole showed the state on the rogue within 3 s; give it longer to be sure nothing trickles in.
  bool learned = wait_until(
      [&] {
        try {
          auto s = probe.call("status", Json::object(), rpc::CallOptions{2s, false});
          return s.value("applied_index", uint64_t{0}) > 0;
        } catch (const std::exception&) {
          return false;
        }
      },
      5s);
  EXPECT_FALSE(learned) << "the rogue applied entries of the cluster's log";
  std::string leaked;
  try {
    leaked = probe.call("get", Json{{"workflow_id", "confidential"}, {"stale", true}}, rpc::CallOptions{2s, false})
                 .value("input", "");
  } catch (const std::exception&) {
    // not_found (or no leader): nothing to read.
  }
  EXPECT_EQ(leaked, "") << "the rogue holds a workflow's input";
  // Not for lack of trying: the leader dialled the rogue and found it cannot prove the secret, and the rogue's
  // own connections (its elections) were refused.
  EXPECT_TRUE(wait_until([&] { return c.log_contains(static_cast<size_t>(leader_now), "listener_proof"); }, 20s))
      << "the leader never dialled the rogue";
  EXPECT_TRUE(wait_until([&] { return read_file(rogue_log).find("raft handshake refused") != std::string::npos; }, 20s))
      << "the rogue never had a handshake refused";

  probe.close();
  rogue.kill9();
  bool any_snapshot = false;
  if (std::filesystem::exists(rogue_dir + "/data/raft"))
    for (const auto& f : std::filesystem::directory_iterator(rogue_dir + "/data/raft"))
      if (f.path().filename().string().rfind("snapshot-", 0) == 0) any_snapshot = true;
  EXPECT_FALSE(any_snapshot) << "the rogue received a snapshot";

  // The cluster did not notice: same term, same members, same data, still serving.
  int leader = c.leader_index();
  ASSERT_GE(leader, 0);
  EXPECT_EQ(max_term(c), term_before);
  auto s = c.status(static_cast<size_t>(leader));
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)["raft"].value("members", Json::array()).size(), 3u) << s->dump();
  EXPECT_EQ(input_of(c, "confidential"), "card 4111-1111-1111-1111");
  dispatch(c, "after-rogue", "served");

  // The real replica, with the secret, comes back and catches up.
  c.restart(victim);
  EXPECT_TRUE(wait_until(
      [&] {
        try {
          auto w = c.client_of(victim, "caught-up")
                       ->call("get", Json{{"workflow_id", "after-rogue"}, {"stale", true}}, rpc::CallOptions{2s, false});
          return w.value("input", "") == "served";
        } catch (const std::exception&) {
          return false;
        }
      },
      30s))
      << "the real replica did not catch up";
}

// Membership changes between replicas that hold the secret: a joining replica is added (its handshakes with
// every member succeed in both directions), leadership is transferred to it, and the old leader is removed.
TEST_F(RaftPeerAuth, MembershipChangesAndTransferWorkForReplicasWithTheSecret) {
  KvCluster c(dir_->path());
  LogsOnFailure logs{c};
  int l = c.leader_index();
  ASSERT_GE(l, 0);
  dispatch(c, "before-changes", "x");
  size_t added = c.start_joining_replica();
  auto admin = c.client("admin", 60s);
  admin->call("cluster.add", Json{{"id", c.raft_id(added)},
                                  {"raft_address", c.raft_address(added)},
                                  {"client_address", c.client_address(added)}});
  admin->call("cluster.transfer", Json{{"id", c.raft_id(added)}});
  ASSERT_TRUE(wait_until([&] { return c.leader_index(2s) == static_cast<int>(added); }, 30s))
      << "leadership did not move to the added replica";
  admin->call("cluster.remove", Json{{"id", c.raft_id(static_cast<size_t>(l))}});
  ASSERT_TRUE(wait_until(
      [&] {
        auto s = c.status(added);
        return s && (*s)["raft"].value("members", Json::array()).size() == 3;
      },
      30s))
      << "the old leader was not removed";
  EXPECT_EQ(input_of(c, "before-changes"), "x");
  dispatch(c, "after-changes", "y");
  EXPECT_EQ(input_of(c, "after-changes"), "y");
  for (size_t i = 0; i < c.size(); ++i) {
    EXPECT_FALSE(c.log_contains(i, "\"bad_proof\"")) << "replica " << c.raft_id(i) << " refused a real replica";
    EXPECT_FALSE(c.log_contains(i, "\"listener_proof\"")) << "replica " << c.raft_id(i) << " refused a real replica";
  }
}

}  // namespace
}  // namespace gasoline
