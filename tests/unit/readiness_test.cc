// /readyz of a kv replica (kv/service/readiness.h): each case is a replica state and whether the kubelet should count
// the replica as Ready.
#include "kv/service/readiness.h"

#include <gtest/gtest.h>

namespace gasoline::kv {
namespace {

using Json = nlohmann::json;

Json raft(const std::string& state, uint64_t leader, uint64_t commit, uint64_t applied) {
  return Json{{"state", state}, {"leader_id", leader}, {"commit_index", commit}, {"raft_applied_index", applied}};
}

TEST(Readiness, TableOfReplicaStates) {
  struct Case {
    const char* what;
    Json state;
    bool ready;
    const char* reason_has;
  } cases[] = {
      {"a single replica without raft", Json(), true, ""},
      {"raft not started", Json::object(), false, "not running"},
      {"raft unavailable", raft("unavailable", 0, 0, 0), false, "not running"},
      {"a follower without a leader", raft("follower", 0, 10, 10), false, "no known leader"},
      {"a candidate", raft("candidate", 0, 10, 10), false, "no known leader"},
      {"the leader", raft("leader", 2, 10, 10), true, ""},
      {"a follower in step", raft("follower", 1, 500, 500), true, ""},
      {"a follower a batch behind", raft("follower", 1, 1500, 1000), true, ""},
      {"a follower exactly at the bound", raft("follower", 1, 2000, 1000), true, ""},
      {"a follower replaying after a restart", raft("follower", 1, 50'000, 1200), false, "catching up: applied 1200 of 50000"},
      {"applied ahead of the commit it knows (restart)", raft("follower", 1, 3, 900), true, ""},
  };
  for (const auto& c : cases) {
    auto why = not_ready_reason(c.state);
    EXPECT_EQ(why.empty(), c.ready) << c.what << ": " << why;
    EXPECT_NE(why.find(c.reason_has), std::string::npos) << c.what << ": " << why;
  }
}

TEST(Readiness, TheLagBoundIsAParameter) {
  EXPECT_TRUE(not_ready_reason(raft("follower", 1, 110, 100), 10).empty());
  EXPECT_FALSE(not_ready_reason(raft("follower", 1, 111, 100), 10).empty());
}

}  // namespace
}  // namespace gasoline::kv
