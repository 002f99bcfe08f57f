// RaftLog's contract with its callers (kv/service/log.h): every `done` runs exactly once. A call that reaches a log
// which is stopping or stopped is answered `unavailable`, never dropped (a dropped barrier would leave a read
// waiting forever, a dropped membership change an admin's gasctl). One real replica on loopback.
#include "kv/raft/raft_log.h"
#include "tests/support/kv_cluster.h"
#include "tests/support/process.h"

#include <gtest/gtest.h>

#include <future>

namespace gasoline {
namespace {

using namespace std::chrono_literals;

TEST(RaftLogContract, CallsAfterStopAreAnsweredUnavailable) {
  testing::TempDir dir("raft-log-contract");
  store::Options so;
  so.path = dir.path() + "/db";
  auto sm = store::StateMachine::open(so);
  raft::RaftOptions o;
  o.id = 1;
  std::string raft_address = "127.0.0.1:" + std::to_string(testing::free_loopback_port());
  o.peers = {raft::Peer{1, raft_address, "127.0.0.1:1"}};
  o.dir = dir.path() + "/raft";
  o.secret = "raft-log-contract-test-secret";  // start() refuses a log without a Raft secret
  raft::RaftLog log(*sm, o, [](int64_t, size_t, const std::vector<store::Wake>&) {}, [](bool) {});
  log.start();
  log.stop();

  std::vector<std::pair<std::string, std::future<store::Result>>> calls;
  auto call = [&](const std::string& name, const std::function<void(kv::Done)>& fn) {
    auto p = std::make_shared<std::promise<store::Result>>();
    calls.emplace_back(name, p->get_future());
    fn([p](const store::Result& r) { p->set_value(r); });
  };
  call("barrier", [&](kv::Done d) { log.barrier(std::move(d)); });
  call("propose", [&](kv::Done d) { log.propose(store::Drain{"pool", "w"}, std::move(d)); });
  call("add_member", [&](kv::Done d) { log.add_member(2, "127.0.0.1:2", "127.0.0.1:3", std::move(d)); });
  call("remove_member", [&](kv::Done d) { log.remove_member(2, std::move(d)); });
  call("transfer_leadership", [&](kv::Done d) { log.transfer_leadership(2, std::move(d)); });
  for (auto& [name, f] : calls) {
    ASSERT_EQ(f.wait_for(5s), std::future_status::ready) << name << " was never answered";
    auto r = f.get();
    EXPECT_EQ(r.code, store::Code::kUnavailable) << name << ": " << r.message;
  }
}

}  // namespace
}  // namespace gasoline
