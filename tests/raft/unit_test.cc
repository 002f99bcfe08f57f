// Pure unit tests of the raft layer's codecs and of the history checker (which must be able to fail).
#include "kv/raft/entry_framing.h"
#include "kv/raft/handshake.h"
#include "kv/raft/peers.h"
#include "kv/raft/snapshot.h"
#include "tests/raft/history.h"

#include <gtest/gtest.h>

#include <cstring>

namespace gasoline {
namespace {

// --- 8-byte framing ------------------------------------------------------------------------------------------

TEST(RaftFraming, EveryPayloadSizeRoundTripsToAMultipleOfEight) {
  for (size_t n = 0; n <= 70; ++n) {
    std::string payload(n, '\0');
    for (size_t i = 0; i < n; ++i) payload[i] = static_cast<char>((i * 37 + n) & 0xff);
    auto framed = raft::frame_entry(payload);
    EXPECT_EQ(framed.size() % 8, 0u) << n;
    EXPECT_GE(framed.size(), n + 4);
    EXPECT_LT(framed.size(), n + 4 + 8);
    std::string_view out;
    ASSERT_TRUE(raft::unframe_entry(framed.data(), framed.size(), out)) << n;
    EXPECT_EQ(std::string(out), payload) << n;
  }
}

TEST(RaftFraming, MalformedFramesAreRejected) {
  std::string_view out;
  auto framed = raft::frame_entry("hello, raft");  // 4 + 11 = 15 → 16
  ASSERT_EQ(framed.size(), 16u);
  EXPECT_FALSE(raft::unframe_entry(framed.data(), 0, out));
  EXPECT_FALSE(raft::unframe_entry(framed.data(), 3, out));
  EXPECT_FALSE(raft::unframe_entry(framed.data(), 15, out)) << "unaligned length accepted";
  EXPECT_FALSE(raft::unframe_entry(framed.data(), 12, out));
  EXPECT_FALSE(raft::unframe_entry(framed.data(), 8, out)) << "declared length beyond the buffer accepted";
  std::string lying = framed;
  lying[0] = 13;  // 4 + 13 = 17 > 16
  EXPECT_FALSE(raft::unframe_entry(lying.data(), lying.size(), out));
  std::string huge = framed;
  std::memset(huge.data(), 0xff, 4);
  EXPECT_FALSE(raft::unframe_entry(huge.data(), huge.size(), out));
  // The longest payload that fits is accepted (padding may hold up to 3 more bytes of payload).
  std::string full = framed;
  full[0] = 12;
  ASSERT_TRUE(raft::unframe_entry(full.data(), full.size(), out));
  EXPECT_EQ(out.size(), 12u);
}

// The framing is on disk in every replica's log: these bytes must never change (kv/raft/entry_framing.h).
TEST(RaftFraming, GoldenBytes) {
  using namespace std::string_literals;
  struct Case {
    std::string payload;
    std::string framed;
  };
  const Case cases[] = {
      {""s, "\0\0\0\0\0\0\0\0"s},
      {"a"s, "\x01\0\0\0a\0\0\0"s},
      {"abcd"s, "\x04\0\0\0abcd"s},
      {"abcde"s, "\x05\0\0\0abcde\0\0\0\0\0\0\0"s},
      {"0123456789ab"s, "\x0c\0\0\0" "0123456789ab"s},
      {std::string(301, 'x'), "\x2d\x01\0\0"s + std::string(301, 'x') + std::string(7, '\0')},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(raft::frame_entry(c.payload), c.framed) << c.payload.size();
    std::string_view out;
    ASSERT_TRUE(raft::unframe_entry(c.framed.data(), c.framed.size(), out)) << c.payload.size();
    EXPECT_EQ(out, c.payload);
  }
}

// --- transport handshake (kv/raft/handshake.h) -------------------------------------------------------------------

TEST(RaftSnapshotFormat, TheMagicCarriesAVersion) {
  EXPECT_EQ(raft::snapshot_version("GASNAP01\0\0\0\0\0\0\0\0", 16), 1);
  EXPECT_EQ(raft::snapshot_version("GASNAP02", 8), 2) << "a newer snapshot is recognised as such";
  EXPECT_EQ(raft::snapshot_version("GASNAP17xxxx", 12), 17);
  EXPECT_FALSE(raft::snapshot_version("GASNAPxy", 8));
  EXPECT_FALSE(raft::snapshot_version("OTHER001", 8));
  EXPECT_FALSE(raft::snapshot_version("GASNAP0", 7));
  EXPECT_EQ(raft::kSnapshotVersion, 1);
}

namespace hs = raft::handshake;

hs::Hello hello_of(uint64_t id, const std::string& address) {
  hs::Hello h;
  h.id = id;
  h.address = address;
  for (size_t i = 0; i < h.nonce.size(); ++i) h.nonce[i] = static_cast<unsigned char>(i * 7 + id);
  return h;
}

TEST(RaftHandshake, HelloRoundTripsAndPadsTheAddressToEightBytes) {
  for (const std::string& address : std::vector<std::string>{"", "a", "127.0.0.1:7401/127.0.0.1:7400",
                              "gasoline-kv-0.gasoline-kv.default.svc.cluster.local:7401/x:7400",
                              std::string(1023, 'h')}) {
    auto hello = hello_of(42, address);
    auto bytes = hs::encode_hello(hello);
    EXPECT_EQ((bytes.size() - hs::kNonceSize) % 8, 0u);
    EXPECT_EQ(hs::hello_size(bytes.data(), bytes.size()), bytes.size()) << address.size();
    std::string error;
    auto decoded = hs::decode_hello(bytes.data(), bytes.size(), error);
    ASSERT_TRUE(decoded) << address.size() << ": " << error;
    EXPECT_EQ(decoded->id, 42u);
    EXPECT_EQ(decoded->address, address);
    EXPECT_EQ(decoded->nonce, hello.nonce);
  }
}

TEST(RaftHandshake, MalformedHellosAreRejectedWithAReason) {
  auto good = hs::encode_hello(hello_of(7, "10.0.0.1:7401/10.0.0.1:7400"));
  std::string error;
  // Too short to know the size yet.
  EXPECT_EQ(hs::hello_size(good.data(), 23), 0u);
  // Truncated, or longer than the header says.
  EXPECT_FALSE(hs::decode_hello(good.data(), good.size() - 8, error));
  EXPECT_FALSE(hs::decode_hello(good.data(), 24, error));
  EXPECT_FALSE(hs::decode_hello((good + "x").data(), good.size() + 1, error));
  // The version-1 handshake (id and address only, no proof) that any process could send is no longer spoken.
  auto bad = good;
  bad[0] = 1;
  EXPECT_EQ(hs::hello_size(bad.data(), bad.size()), SIZE_MAX);
  EXPECT_FALSE(hs::decode_hello(bad.data(), bad.size(), error));
  EXPECT_NE(error.find("version 1"), std::string::npos) << error;
  // Address length zero, unaligned, or over 1 KiB.
  for (uint64_t len : {uint64_t{0}, uint64_t{13}, uint64_t{1032}, ~uint64_t{0} - 7}) {
    bad = good;
    for (int i = 0; i < 8; ++i) bad[16 + i] = static_cast<char>((len >> (8 * i)) & 0xff);
    EXPECT_EQ(hs::hello_size(bad.data(), bad.size()), SIZE_MAX) << len;
    EXPECT_FALSE(hs::decode_hello(bad.data(), bad.size(), error)) << len;
  }
  // No NUL terminator inside the declared address.
  bad = good;
  std::memset(bad.data() + 24, 'x', bad.size() - 24 - hs::kNonceSize);
  EXPECT_FALSE(hs::decode_hello(bad.data(), bad.size(), error));
  // Id 0 is libraft's "no server".
  auto zero = hs::encode_hello(hello_of(0, "a:1"));
  EXPECT_FALSE(hs::decode_hello(zero.data(), zero.size(), error));
}

TEST(RaftHandshake, ProofsBindSecretRoleIdentityAndBothNonces) {
  const std::string secret = "a-raft-secret-of-some-length";
  auto hello = hello_of(2, "127.0.0.1:7402/127.0.0.1:7400");
  hs::Nonce listener_nonce{};
  listener_nonce[0] = 1;
  auto dialler = hs::prove(secret, hs::Role::kDialler, hello, listener_nonce);
  auto as_bytes = [](const hs::Proof& p) { return std::string(reinterpret_cast<const char*>(p.data()), p.size()); };
  EXPECT_TRUE(hs::proof_matches(dialler, as_bytes(hs::prove(secret, hs::Role::kDialler, hello, listener_nonce))));
  // Every input changes the proof.
  EXPECT_FALSE(hs::proof_matches(dialler, as_bytes(hs::prove(secret, hs::Role::kListener, hello, listener_nonce))));
  EXPECT_FALSE(hs::proof_matches(dialler, as_bytes(hs::prove(secret + "x", hs::Role::kDialler, hello, listener_nonce))));
  auto other = hello;
  other.id = 3;
  EXPECT_FALSE(hs::proof_matches(dialler, as_bytes(hs::prove(secret, hs::Role::kDialler, other, listener_nonce))));
  other = hello;
  other.address = "127.0.0.1:9999/127.0.0.1:7400";
  EXPECT_FALSE(hs::proof_matches(dialler, as_bytes(hs::prove(secret, hs::Role::kDialler, other, listener_nonce))));
  other = hello;
  other.nonce[5] ^= 1;
  EXPECT_FALSE(hs::proof_matches(dialler, as_bytes(hs::prove(secret, hs::Role::kDialler, other, listener_nonce))));
  auto other_nonce = listener_nonce;
  other_nonce[31] ^= 1;
  EXPECT_FALSE(hs::proof_matches(dialler, as_bytes(hs::prove(secret, hs::Role::kDialler, hello, other_nonce))));
  // Only exactly kProofSize bytes can match.
  EXPECT_FALSE(hs::proof_matches(dialler, as_bytes(dialler).substr(0, 31)));
  EXPECT_FALSE(hs::proof_matches(dialler, as_bytes(dialler) + "x"));
  // Nonces are fresh.
  EXPECT_NE(hs::random_nonce(), hs::random_nonce());
}

TEST(RaftPeers, ParsesTheFlagAndRejectsBadSpecs) {
  auto p = raft::parse_peer("3=gasoline-kv-2.gasoline-kv.ns.svc:7401,gasoline-kv-2.gasoline-kv.ns.svc:7400");
  EXPECT_EQ(p.id, 3u);
  EXPECT_EQ(p.raft_address, "gasoline-kv-2.gasoline-kv.ns.svc:7401");
  EXPECT_EQ(p.client_address, "gasoline-kv-2.gasoline-kv.ns.svc:7400");
  EXPECT_EQ(raft::config_address(p), p.raft_address + "/" + p.client_address);
  for (const char* bad : {"", "1", "1=a:1", "x=a:1,b:2", "0=a:1,b:2", "1=a,b:2", "1=a:1,b"})
    EXPECT_THROW(raft::parse_peer(bad), std::invalid_argument) << bad;
}

TEST(RaftPeers, Table) {
  struct Case {
    const char* spec;
    raft::Peer want;        // when `error` is empty
    const char* error = "";  // part of the message otherwise
  };
  const Case cases[] = {
      {"1=a:1,b:2", {1, "a:1", "b:2"}},
      {"12=10.0.0.1:7401,10.0.0.1:7400", {12, "10.0.0.1:7401", "10.0.0.1:7400"}},
      {"3=[::1]:7401,[::1]:7400", {3, "[::1]:7401", "[::1]:7400"}},
      {"5=kv-4.kv.ns.svc.cluster.local:7401,kv-4.kv.ns.svc.cluster.local:7400",
       {5, "kv-4.kv.ns.svc.cluster.local:7401", "kv-4.kv.ns.svc.cluster.local:7400"}},
      {"", {}, "must be ID=RAFT_HOST:PORT,CLIENT_HOST:PORT"},
      {"1=a:1", {}, "must be ID=RAFT_HOST:PORT,CLIENT_HOST:PORT"},
      {"a:1,1=b:2", {}, "must be ID=RAFT_HOST:PORT,CLIENT_HOST:PORT"},
      {"x=a:1,b:2", {}, "non-numeric id"},
      {"=a:1,b:2", {}, "non-numeric id"},
      {"0=a:1,b:2", {}, "start at 1"},
      {"1=a,b:2", {}, "both addresses must be host:port"},
      {"1=a:1,b", {}, "both addresses must be host:port"},
  };
  for (const auto& c : cases) {
    if (*c.error == '\0') {
      auto p = raft::parse_peer(c.spec);
      EXPECT_EQ(p.id, c.want.id) << c.spec;
      EXPECT_EQ(p.raft_address, c.want.raft_address) << c.spec;
      EXPECT_EQ(p.client_address, c.want.client_address) << c.spec;
      EXPECT_EQ(raft::config_address(p), c.want.raft_address + "/" + c.want.client_address) << c.spec;
      continue;
    }
    try {
      raft::parse_peer(c.spec);
      ADD_FAILURE() << "accepted: " << c.spec;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(c.error), std::string::npos) << c.spec << ": " << e.what();
    }
  }
}

TEST(RaftIdFromPodName, OrdinalPlusOne) {
  EXPECT_EQ(raft::raft_id_from_pod_name("gasoline-kv-0"), 1u);
  EXPECT_EQ(raft::raft_id_from_pod_name("my-release-kv-12"), 13u);
  for (const char* bad : {"gasoline-kv", "kv-", "kv-x1", "", "kv-1234567890"})
    EXPECT_THROW(raft::raft_id_from_pod_name(bad), std::invalid_argument) << bad;
}

// --- the history checker ---------------------------------------------------------------------------------------

using raft_test::CommitOp;
using raft_test::CommitOutcome;
using raft_test::DispatchOp;
using raft_test::FinalWorkflow;
using raft_test::LeaseOp;

CommitOp acked_commit(const std::string& wf, const std::string& worker, uint64_t token, uint64_t step, int64_t invoke,
                      int64_t ack, bool complete = false) {
  CommitOp c;
  c.workflow_id = wf;
  c.worker = worker;
  c.token = token;
  c.steps_before = step;
  c.complete = complete;
  c.invoke = invoke;
  c.ack = ack;
  c.outcome = CommitOutcome::kAcked;
  return c;
}

// A correct two-step history of one workflow, with a reclaimed lease whose late commit was rejected.
struct Good {
  std::vector<DispatchOp> d{{"w", 0, 10, true}, {"never-acked", 0, 0, false}};
  std::vector<LeaseOp> l{{"w", "a", 100 << 12, 0, 20, 30},   // a: step 0
                         {"w", "b", 200 << 12, 0, 40, 50},   // a was reclaimed; b: step 0 again
                         {"w", "c", 300 << 12, 1, 70, 80}};  // c: step 1
  std::vector<CommitOp> c{acked_commit("w", "b", 200 << 12, 0, 55, 60),
                          acked_commit("w", "c", 300 << 12, 1, 85, 90, true)};
  std::map<std::string, FinalWorkflow> final_state{{"w", {true, 2, "complete"}}};
  Good() {
    CommitOp late = acked_commit("w", "a", 100 << 12, 0, 52, 58);
    late.outcome = CommitOutcome::kConflict;
    c.push_back(late);
    CommitOp lost = acked_commit("w", "c", 300 << 12, 1, 84, 0);
    lost.outcome = CommitOutcome::kUnknown;
    c.push_back(lost);
  }
};

TEST(HistoryChecker, AcceptsACorrectHistory) {
  Good g;
  auto r = raft_test::check(g.d, g.l, g.c, g.final_state);
  EXPECT_TRUE(r.ok()) << r.summary();
  EXPECT_EQ(r.acked_dispatches, 1u);
  EXPECT_EQ(r.acked_commits, 2u);
}

TEST(HistoryChecker, FailsALostDispatch) {
  Good g;
  g.d.push_back({"gone", 1, 2, true});
  auto r = raft_test::check(g.d, g.l, g.c, g.final_state);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.lost_acknowledged_writes, 1u) << r.summary();
}

TEST(HistoryChecker, FailsALostCommit) {
  Good g;
  g.final_state["w"] = {true, 1, "pending"};  // the acknowledged second step (and the completion) vanished
  auto r = raft_test::check(g.d, g.l, g.c, g.final_state);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.lost_acknowledged_writes, 2u) << r.summary();
}

TEST(HistoryChecker, FailsALostCompletion) {
  Good g;
  g.final_state["w"] = {true, 2, "running"};
  auto r = raft_test::check(g.d, g.l, g.c, g.final_state);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.lost_acknowledged_writes, 1u) << r.summary();
}

TEST(HistoryChecker, FailsADoubleCommit) {
  Good g;
  g.c[2].outcome = CommitOutcome::kAcked;  // a's late commit of step 0 was acknowledged too
  auto r = raft_test::check(g.d, g.l, g.c, g.final_state);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.double_commits, 1u) << r.summary();
}

TEST(HistoryChecker, FailsOverlappingLeases) {
  // Two leases of one workflow (different steps, so no double commit) both granted before either commit was
  // sent, and both commits acknowledged: two live leases at once.
  std::vector<DispatchOp> d{{"w", 0, 10, true}};
  std::vector<LeaseOp> l{{"w", "a", 100 << 12, 0, 20, 30}, {"w", "b", 101 << 12, 1, 21, 31}};
  std::vector<CommitOp> c{acked_commit("w", "a", 100 << 12, 0, 40, 50), acked_commit("w", "b", 101 << 12, 1, 41, 51)};
  std::map<std::string, FinalWorkflow> final_state{{"w", {true, 2, "pending"}}};
  auto r = raft_test::check(d, l, c, final_state);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.lease_violations, 1u) << r.summary();
  EXPECT_EQ(r.double_commits, 0u);
  EXPECT_EQ(r.lost_acknowledged_writes, 0u);
}

TEST(HistoryChecker, FailsALeaseGrantedTwice) {
  Good g;
  g.l.push_back({"w", "z", 300 << 12, 1, 71, 81});  // c's token handed to z as well
  auto r = raft_test::check(g.d, g.l, g.c, g.final_state);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.lease_violations, 1u) << r.summary();
}

TEST(HistoryChecker, FailsAGrantOnStaleState) {
  Good g;
  // A pull sent after step 0's commit was acknowledged got a lease on step 0: it read a state without that step.
  g.l.push_back({"w", "z", 250 << 12, 0, 65, 66});
  auto r = raft_test::check(g.d, g.l, g.c, g.final_state);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.lease_violations, 1u) << r.summary();
}

TEST(HistoryChecker, RecorderIsThreadSafeAndCountsAckedWrites) {
  raft_test::History h;
  h.dispatch({"x", 1, 2, true});
  h.dispatch({"y", 1, 0, false});
  h.lease({"x", "a", 1, 0, 3, 4});
  h.commit(acked_commit("x", "a", 1, 0, 5, 6, true));
  EXPECT_EQ(h.acked_writes(), 2u);
  EXPECT_EQ(h.workflow_ids(), (std::vector<std::string>{"x", "y"}));
  auto r = raft_test::check(h, {{"x", {true, 1, "complete"}}});
  EXPECT_TRUE(r.ok()) << r.summary();
}

}  // namespace
}  // namespace gasoline
