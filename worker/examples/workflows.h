#pragma once
// The example application's workflows, as pure functions of (task, now): each returns the step result for one
// task. The app's main loop polls the sidecar and posts these results; tests read the outputs they leave.
//
//   order: reserve → (sleep) → wait for a `payment` signal up to a deadline → (continue) → a flaky charge retried
//          with backoff → dispatch a child `ship` (notify_parent) and wait for it → complete. A missed deadline
//          fails the order. Every step kind is used: complete, sleep, wait, retry, fail, continue.
//   ship:  completes with a tracking number.
//   noop:  completes at once (benchmarks); the output carries the wake lag.
//   sleep: sleeps input.ms, input.times times (default 100 ms, once), then completes with the wake-up lag; its
//          state records which worker ran each step.
//   burn:  spends input.cpu_ms of CPU (default 50) in each of input.steps steps (default 1), continuing at once
//          between them, then completes with the workers that ran it: load for CPU autoscaling and shedding.
//          run_step stays pure: the app's loop burns cpu_ms_of(task) before it asks run_step for the result.
#include <nlohmann/json.hpp>

#include <cstdint>

namespace gasoline::example {

using Json = nlohmann::json;

struct Defaults {
  int64_t payment_timeout_ms = 30'000;
  int64_t reserve_hold_ms = 20;
  int flaky_failures = 2;  // the charge step fails this many times before it succeeds
  int64_t retry_backoff_ms = 50;
};

Json run_step(const Json& task, int64_t now_ms, const Defaults& defaults = {});

// The CPU time (ms) the app must spend on this task before its step result is posted (burn's input.cpu_ms,
// clamped to [0, 10 s] so a typo cannot wedge a worker thread; 0 for every other workflow).
int64_t cpu_ms_of(const Json& task);

// The wall time (ms) the app waits on this task before posting its result, as if the step called a slow service:
// input.work_ms of any workflow, clamped to [0, 60 s]. Fault tests use it so that workers hold leases when they die.
int64_t work_ms_of(const Json& task);

}  // namespace gasoline::example
