// The sidecar's task lifecycle (worker/task_table.h) without processes: each case drives the table with the kv's
// answers and explicit `now` values (mono ms), so timeouts are crossed by arithmetic, never by sleeping.
#include "worker/task_table.h"

#include <gtest/gtest.h>

namespace gasoline::worker {
namespace {

using Kind = TaskTable::Submitted::Kind;
using Replied = TaskTable::Replied::Kind;

TaskLimits limits() {
  TaskLimits l;
  l.queued_ttl_ms = 30'000;
  l.task_timeout_ms = 600'000;
  l.commit_stuck_ms = 15'000;
  l.buffer_ttl_ms = 5'000;
  return l;
}

Json granted(uint64_t lease, const std::string& workflow) {
  return Json{{"token", lease}, {"workflow_id", workflow}, {"wake_ts", 1}, {"signals", Json::array({{{"seq", 3}}})}};
}

api::ParsedResult complete() {
  api::ParsedResult r;
  r.step = Json{{"kind", "complete"}, {"output", {{"ok", true}}}};
  return r;
}

// Answers given to the app, in order.
struct Answers {
  std::vector<Outcome> got;
  Done done() {
    return [this](Outcome o) { got.push_back(std::move(o)); };
  }
};

void answer(std::vector<Done>& waiters, const Outcome& o) {
  for (auto& w : waiters) w(o);
}

// A task granted at `now` and handed to a poll at `now`: delivered, its token returned.
std::string delivered(TaskTable& table, uint64_t lease, const std::string& workflow, int64_t now) {
  EXPECT_EQ(table.grant(granted(lease, workflow), false, now).kind, TaskTable::Granted::Kind::kQueued);
  auto tasks = table.take(1, now);
  EXPECT_EQ(tasks.size(), 1u);
  return tasks.empty() ? "" : tasks[0].value("token", "");
}

TEST(TaskTable, GrantedTasksQueueAndAreHandedOutWithTheirTokenAndWorker) {
  TaskTable table("w1", limits());
  EXPECT_EQ(table.grant(granted(7, "wf_a"), false, 0).kind, TaskTable::Granted::Kind::kQueued);
  EXPECT_EQ(table.grant(granted(7, "wf_a"), false, 0).kind, TaskTable::Granted::Kind::kRejected);  // held already
  EXPECT_EQ(table.grant(granted(0, "wf_b"), false, 0).kind, TaskTable::Granted::Kind::kRejected);  // no lease
  EXPECT_EQ(table.grant(granted(8, ""), false, 0).kind, TaskTable::Granted::Kind::kRejected);      // no workflow
  EXPECT_EQ(table.queued(), 1u);
  auto tasks = table.take(5, 10);
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0]["token"], "7.wf_a");
  EXPECT_EQ(tasks[0]["worker"], "w1");
  EXPECT_EQ(table.state("7.wf_a"), TaskState::kDelivered);
  EXPECT_EQ(table.queued(), 0u);
  EXPECT_EQ(table.leases(), std::vector<uint64_t>{7});
}

TEST(TaskTable, AResultRepostedAfterALostResponseIsAnsweredAsDuplicateAndCommittedOnce) {
  TaskTable table("w1", limits());
  auto token = delivered(table, 7, "wf_a", 0);
  Answers app;
  auto s = table.submit(token, complete(), app.done(), 2'000);
  ASSERT_EQ(s.kind, Kind::kSend);
  EXPECT_EQ(s.held_ms, 2'000);
  EXPECT_EQ(s.send->op, "commit");
  EXPECT_EQ(s.send->args["worker"], "w1");
  EXPECT_EQ(s.send->args["token"], 7);
  EXPECT_EQ(s.send->args["consumed_signal_seq"], 3);  // the highest seq the task carried
  EXPECT_EQ(table.state(token), TaskState::kCommitting);

  // The app's connection broke and it posts again while the commit is in flight: it waits for the same commit.
  EXPECT_EQ(table.submit(token, complete(), app.done(), 2'100).kind, Kind::kJoined);

  auto r = table.reply(token, KvAnswer::kOk, Json{{"status", "completed"}, {"duplicate", false}}, 2'200);
  ASSERT_EQ(r.kind, Replied::kCommitted);
  EXPECT_FALSE(r.buffered_ms);
  ASSERT_EQ(r.waiters.size(), 2u);
  answer(r.waiters, Outcome{200, r.body, {}});
  EXPECT_EQ(app.got.size(), 2u);
  EXPECT_FALSE(table.state(token));
  EXPECT_TRUE(table.empty());

  // After the answer was lost: the same answer again, marked duplicate, and nothing to send.
  Answers again;
  auto d = table.submit(token, complete(), again.done(), 3'000);
  ASSERT_EQ(d.kind, Kind::kDuplicate);
  EXPECT_EQ(d.body["duplicate"], true);
  EXPECT_EQ(d.body["status"], "completed");
  EXPECT_EQ(d.body["token"], token);
  EXPECT_FALSE(d.send);
  EXPECT_TRUE(d.done);  // answered by the caller at once

  // A late answer to an attempt already resolved touches nothing.
  EXPECT_EQ(table.reply(token, KvAnswer::kOk, Json{{"status", "completed"}}, 3'100).kind, Replied::kStale);
}

TEST(TaskTable, ATransientFailureBuffersTheResultWhichIsCommittedOnRetry) {
  TaskTable table("w1", limits());
  auto token = delivered(table, 7, "wf_a", 0);
  Answers app;
  ASSERT_EQ(table.submit(token, complete(), app.done(), 1'000).kind, Kind::kSend);

  auto r = table.reply(token, KvAnswer::kTransient, Json(), 1'000);
  ASSERT_EQ(r.kind, Replied::kBuffered);
  EXPECT_TRUE(r.first_buffered);
  EXPECT_EQ(r.waiters.size(), 1u);  // answered 202 at once: the app moves on
  EXPECT_EQ(table.state(token), TaskState::kBuffered);
  EXPECT_EQ(table.buffered(), 1u);
  EXPECT_EQ(table.submit(token, complete(), app.done(), 1'050).kind, Kind::kBuffered);

  EXPECT_TRUE(table.due(1'199).resent.empty());  // the first retry comes 200 ms after the failure
  auto due = table.due(1'200);
  ASSERT_EQ(due.resent.size(), 1u);
  EXPECT_EQ(due.resent[0].op, "commit");
  EXPECT_EQ(due.resent[0].key, token);
  EXPECT_EQ(table.state(token), TaskState::kCommitting);
  EXPECT_TRUE(table.due(1'300).resent.empty());  // in flight: not sent twice

  // Still away: buffered again, without counting a second buffering; the next try 200 ms later.
  auto again = table.reply(token, KvAnswer::kTransient, Json(), 1'400);
  EXPECT_EQ(again.kind, Replied::kBuffered);
  EXPECT_FALSE(again.first_buffered);
  EXPECT_EQ(table.due(1'600).resent.size(), 1u);

  auto ok = table.reply(token, KvAnswer::kOk, Json{{"status", "completed"}, {"duplicate", true}}, 1'700);
  ASSERT_EQ(ok.kind, Replied::kCommitted);
  EXPECT_EQ(ok.buffered_ms, 700);  // since the first failure
  EXPECT_EQ(ok.body["duplicate"], true);
  EXPECT_TRUE(table.empty());
  EXPECT_EQ(table.buffered(), 0u);
}

TEST(TaskTable, ACommitWithoutAnswerIsBufferedLetsTheAppGoAndIsResent) {
  TaskTable table("w1", limits());
  auto token = delivered(table, 7, "wf_a", 0);
  Answers app;
  ASSERT_EQ(table.submit(token, complete(), app.done(), 1'000).kind, Kind::kSend);
  EXPECT_TRUE(table.due(16'000).stuck.empty());
  auto due = table.due(16'001);
  ASSERT_EQ(due.stuck.size(), 1u);
  EXPECT_EQ(due.stuck[0].first, token);
  EXPECT_EQ(due.stuck[0].second.size(), 1u);
  EXPECT_TRUE(due.resent.empty());
  EXPECT_EQ(table.state(token), TaskState::kBuffered);
  EXPECT_EQ(table.due(16'002).resent.size(), 1u);  // the next round sends it again
  // The first attempt's answer arriving late still resolves the task.
  EXPECT_EQ(table.reply(token, KvAnswer::kOk, Json{{"status", "completed"}}, 16'100).kind, Replied::kCommitted);
  EXPECT_TRUE(table.empty());
}

TEST(TaskTable, ABufferedResultIsDroppedAtItsTtl) {
  TaskTable table("w1", limits());
  auto token = delivered(table, 7, "wf_a", 0);
  Answers app;
  ASSERT_EQ(table.submit(token, complete(), app.done(), 1'000).kind, Kind::kSend);
  ASSERT_EQ(table.reply(token, KvAnswer::kTransient, Json(), 1'000).kind, Replied::kBuffered);
  ASSERT_EQ(table.due(5'000).resent.size(), 1u);
  ASSERT_EQ(table.reply(token, KvAnswer::kTransient, Json(), 5'900).kind, Replied::kBuffered);

  EXPECT_TRUE(table.due(6'000).dropped.empty());  // exactly --result-buffer-ttl: still kept
  EXPECT_EQ(table.state(token), TaskState::kBuffered);
  auto due = table.due(6'001);
  ASSERT_EQ(due.dropped.size(), 1u);
  EXPECT_EQ(due.dropped[0].key, token);
  EXPECT_EQ(due.dropped[0].workflow_id, "wf_a");
  EXPECT_EQ(due.dropped[0].buffered_ms, 5'001);
  EXPECT_TRUE(due.resent.empty());
  EXPECT_TRUE(table.empty());
  // Dropped, not committed: a re-post is not a duplicate.
  EXPECT_EQ(table.submit(token, complete(), app.done(), 6'100).kind, Kind::kNotHeld);
}

TEST(TaskTable, AQueuedTaskNoPollTookIsReleasedAtItsTtl) {
  TaskTable table("w1", limits());
  ASSERT_EQ(table.grant(granted(7, "wf_a"), false, 1'000).kind, TaskTable::Granted::Kind::kQueued);
  EXPECT_TRUE(table.due(31'000).released.empty());
  auto due = table.due(31'001);
  ASSERT_EQ(due.released.size(), 1u);
  EXPECT_EQ(due.released[0].op, "release");
  EXPECT_EQ(due.released[0].args["reason"], "no app poll took it");
  EXPECT_EQ(due.released[0].args["token"], 7);
  EXPECT_EQ(table.state("7.wf_a"), TaskState::kReleasing);
  EXPECT_EQ(table.queued(), 0u);
  EXPECT_TRUE(table.take(1, 31'002).empty());
  EXPECT_EQ(table.leases(), std::vector<uint64_t>{7});  // still reported until the kv confirms

  auto r = table.reply("7.wf_a", KvAnswer::kOk, Json{{"status", "pending"}}, 31'100);
  EXPECT_EQ(r.kind, Replied::kReleased);
  EXPECT_TRUE(r.release);
  EXPECT_TRUE(table.empty());
  Answers app;
  EXPECT_EQ(table.submit("7.wf_a", complete(), app.done(), 31'200).kind, Kind::kNotHeld);  // not a duplicate
}

TEST(TaskTable, ADeliveredTaskIsReleasedAtTheTaskTimeoutAndItsLateResultGets409) {
  TaskTable table("w1", limits());
  auto token = delivered(table, 7, "wf_a", 10);
  EXPECT_TRUE(table.due(600'010).released.empty());
  auto due = table.due(600'011);
  ASSERT_EQ(due.released.size(), 1u);
  EXPECT_EQ(due.released[0].args["reason"], "the app sent no result within --task-timeout");
  EXPECT_EQ(table.state(token), TaskState::kReleasing);

  Answers app;
  auto s = table.submit(token, complete(), app.done(), 600'012);
  EXPECT_EQ(s.kind, Kind::kReleasing);
  EXPECT_TRUE(s.done);
  EXPECT_FALSE(s.send);

  // A release the kv cannot take now is re-sent like a buffered result; one it refuses is too.
  EXPECT_EQ(table.reply(token, KvAnswer::kRefused, Json(), 600'100).kind, Replied::kBuffered);
  EXPECT_EQ(table.state(token), TaskState::kReleaseBuffered);
  EXPECT_EQ(table.submit(token, complete(), app.done(), 600'150).kind, Kind::kReleasing);
  auto again = table.due(600'300);
  ASSERT_EQ(again.resent.size(), 1u);
  EXPECT_EQ(again.resent[0].op, "release");
  EXPECT_EQ(table.reply(token, KvAnswer::kLeaseLost, Json(), 600'400).kind, Replied::kLeaseLost);
  EXPECT_TRUE(table.empty());
}

TEST(TaskTable, AResultForATokenNeverHeldChangesNothing) {
  TaskTable table("w1", limits());
  auto token = delivered(table, 7, "wf_a", 0);
  Answers app;
  auto s = table.submit("9.wf_other", complete(), app.done(), 100);
  EXPECT_EQ(s.kind, Kind::kNotHeld);
  EXPECT_TRUE(s.done);
  EXPECT_FALSE(s.send);
  EXPECT_EQ(table.reply("9.wf_other", KvAnswer::kOk, Json(), 100).kind, Replied::kStale);
  // An answer for a task that has no commit on its way is stale as well.
  EXPECT_EQ(table.reply(token, KvAnswer::kOk, Json(), 100).kind, Replied::kStale);
  EXPECT_EQ(table.state(token), TaskState::kDelivered);
  EXPECT_EQ(table.size(), 1u);
}

TEST(TaskTable, AResultNamingAnotherWorkflowIsRefusedAndTheLeaseStaysTheApps) {
  TaskTable table("w1", limits());
  auto token = delivered(table, 7, "wf_a", 0);
  Answers app;
  auto r = complete();
  r.workflow_id = "wf_b";
  auto s = table.submit(token, r, app.done(), 100);
  EXPECT_EQ(s.kind, Kind::kWrongWorkflow);
  EXPECT_EQ(s.workflow_id, "wf_a");
  EXPECT_EQ(table.state(token), TaskState::kDelivered);
}

TEST(TaskTable, AStepTheKvRefusesGoesBackToTheAppForACorrectedResult) {
  TaskTable table("w1", limits());
  auto token = delivered(table, 7, "wf_a", 0);
  Answers app;
  ASSERT_EQ(table.submit(token, complete(), app.done(), 100).kind, Kind::kSend);
  auto r = table.reply(token, KvAnswer::kRefused, Json(), 200);
  EXPECT_EQ(r.kind, Replied::kRefused);
  EXPECT_EQ(r.waiters.size(), 1u);
  EXPECT_EQ(table.state(token), TaskState::kDelivered);
  EXPECT_EQ(table.submit(token, complete(), app.done(), 300).kind, Kind::kSend);
}

TEST(TaskTable, ADrainGivesBackQueuedTasksOnly) {
  TaskTable table("w1", limits());
  auto held = delivered(table, 7, "wf_a", 0);
  auto committing = delivered(table, 8, "wf_b", 0);
  Answers app;
  ASSERT_EQ(table.submit(committing, complete(), app.done(), 50).kind, Kind::kSend);
  ASSERT_EQ(table.grant(granted(9, "wf_c"), false, 60).kind, TaskTable::Granted::Kind::kQueued);

  auto released = table.drain(100);
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0].key, "9.wf_c");
  EXPECT_EQ(released[0].op, "release");
  EXPECT_EQ(released[0].args["reason"], "draining");
  EXPECT_EQ(table.state(held), TaskState::kDelivered);
  EXPECT_EQ(table.state(committing), TaskState::kCommitting);
  EXPECT_EQ(table.state("9.wf_c"), TaskState::kReleasing);
  EXPECT_EQ(table.queued(), 0u);
  EXPECT_EQ(table.running(), 1u);  // the drain summary's "running": held by the app without a result

  // Granted by a pull in flight when the drain started: given back at once.
  auto late = table.grant(granted(10, "wf_e"), true, 200);
  EXPECT_EQ(late.kind, TaskTable::Granted::Kind::kGivenBack);
  ASSERT_TRUE(late.send);
  EXPECT_EQ(late.send->args["reason"], "granted after the drain started");
  EXPECT_EQ(table.queued(), 0u);
}

TEST(TaskTable, ShutdownTakesEveryWaiter) {
  TaskTable table("w1", limits());
  auto token = delivered(table, 7, "wf_a", 0);
  Answers app;
  ASSERT_EQ(table.submit(token, complete(), app.done(), 100).kind, Kind::kSend);
  ASSERT_EQ(table.submit(token, complete(), app.done(), 100).kind, Kind::kJoined);
  EXPECT_EQ(table.take_waiters().size(), 2u);
  EXPECT_TRUE(table.take_waiters().empty());
}

}  // namespace
}  // namespace gasoline::worker
