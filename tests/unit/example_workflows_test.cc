// The example app's workflows are pure functions of (task, now): each case is one task and the step result it
// must give. Only the workflows the real-pod tests rely on for load (burn) and history checks are covered here.
#include "worker/examples/workflows.h"

#include <gtest/gtest.h>

namespace gasoline::example {
namespace {

Json task(const std::string& name, Json input, Json state = nullptr) {
  Json t{{"name", name}, {"workflow_id", "w1"}, {"worker", "pod-a"}, {"input", std::move(input)}};
  if (!state.is_null()) t["state"] = std::move(state);
  return t;
}

TEST(ExampleWorkflows, CpuMsOfBurnIsItsInputClampedAndZeroElsewhere) {
  struct Case {
    Json task;
    int64_t want;
  } cases[] = {
      {task("burn", Json::object()), 50},
      {task("burn", {{"cpu_ms", 200}}), 200},
      {task("burn", {{"cpu_ms", -5}}), 0},
      {task("burn", {{"cpu_ms", 1'000'000}}), 10'000},
      {task("burn", {{"cpu_ms", "lots"}}), 50},
      {task("noop", {{"cpu_ms", 200}}), 0},
      {task("sleep", {{"cpu_ms", 200}}), 0},
  };
  for (const auto& c : cases) EXPECT_EQ(cpu_ms_of(c.task), c.want) << c.task.dump();
}

TEST(ExampleWorkflows, WorkMsOfAnyWorkflowIsItsInputClamped) {
  EXPECT_EQ(work_ms_of(task("sleep", {{"work_ms", 300}})), 300);
  EXPECT_EQ(work_ms_of(task("noop", Json::object())), 0);
  EXPECT_EQ(work_ms_of(task("burn", {{"work_ms", -1}})), 0);
  EXPECT_EQ(work_ms_of(task("order", {{"work_ms", 3'600'000}})), 60'000);
}

TEST(ExampleWorkflows, BurnContinuesUntilItsStepsThenCompletesWithItsWorkers) {
  Json t = task("burn", {{"steps", 3}});
  for (int step = 1; step <= 3; ++step) {
    Json r = run_step(t, 1000 + step);
    if (step < 3) {
      ASSERT_TRUE(r.contains("continue")) << r.dump();
      t["state"] = r["continue"]["state"];
      continue;
    }
    ASSERT_TRUE(r.contains("complete")) << r.dump();
    const Json& out = r["complete"]["output"];
    EXPECT_EQ(out["steps"], 3);
    ASSERT_EQ(out["by"].size(), 3u);
    EXPECT_EQ(out["by"][0][0], "pod-a");
  }
}

TEST(ExampleWorkflows, BurnOfOneStepCompletesAtOnce) {
  Json r = run_step(task("burn", Json::object()), 5);
  ASSERT_TRUE(r.contains("complete")) << r.dump();
  EXPECT_EQ(r["complete"]["output"]["steps"], 1);
}

}  // namespace
}  // namespace gasoline::example
