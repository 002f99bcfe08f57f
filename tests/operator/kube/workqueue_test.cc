// The work queue's contract (client-go semantics): de-duplication, one worker per key, re-queue after done, and
// rate-limited retries. Real threads, no sleeps: every wait is on the queue itself with a deadline.
#include "operator/kube/workqueue.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

using gasoline::kube::RateLimits;
using gasoline::kube::WorkQueue;
using namespace std::chrono_literals;

namespace {

std::optional<std::string> get_within(WorkQueue& q, std::chrono::milliseconds timeout) {
  auto f = std::async(std::launch::async, [&] { return q.get(); });
  if (f.wait_for(timeout) != std::future_status::ready) {
    q.shut_down();  // unblocks the getter; the test fails on the nullopt
    return f.get();
  }
  return f.get();
}

}  // namespace

TEST(WorkQueue, AddsOfAWaitingKeyCollapse) {
  WorkQueue q;
  q.add("a");
  q.add("b");
  q.add("a");
  q.add("a");
  EXPECT_EQ(q.depth(), 2u);
  EXPECT_EQ(q.get(), "a");
  EXPECT_EQ(q.get(), "b");
  EXPECT_EQ(q.depth(), 0u);
}

TEST(WorkQueue, AKeyBeingProcessedIsNotHandedOutAgainUntilDone) {
  WorkQueue q;
  q.add("a");
  auto key = q.get();
  ASSERT_EQ(key, "a");
  q.add("a");               // changed while a worker holds it
  EXPECT_EQ(q.depth(), 0u);  // not runnable yet
  q.add("b");
  EXPECT_EQ(q.get(), "b");  // others are
  q.done("b");
  q.done("a");  // now "a" runs again, once
  EXPECT_EQ(q.depth(), 1u);
  EXPECT_EQ(q.get(), "a");
  q.done("a");
  EXPECT_EQ(q.depth(), 0u);
}

TEST(WorkQueue, ConcurrentWorkersNeverHoldTheSameKey) {
  WorkQueue q;
  std::mutex mu;
  std::set<std::string> held;
  std::atomic<int> processed{0}, overlaps{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w)
    workers.emplace_back([&] {
      while (auto k = q.get()) {
        {
          std::lock_guard lock(mu);
          if (!held.insert(*k).second) ++overlaps;
        }
        std::this_thread::yield();
        {
          std::lock_guard lock(mu);
          held.erase(*k);
        }
        ++processed;
        q.done(*k);
      }
    });
  for (int i = 0; i < 20000; ++i) q.add("key-" + std::to_string(i % 7));
  // Drain: once nothing is queued and nothing is held, shut down.
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::lock_guard lock(mu);
    if (q.depth() == 0 && held.empty()) break;
  }
  q.shut_down();
  for (auto& t : workers) t.join();
  EXPECT_EQ(overlaps, 0);
  EXPECT_GT(processed, 0);
  EXPECT_LE(processed, 20000);  // collapsed adds: never more runs than adds
}

TEST(WorkQueue, RateLimitedRetriesBackOffExponentiallyUntilForgotten) {
  RateLimits limits;
  limits.base = 20ms;
  WorkQueue q(limits);
  q.add_rate_limited("a");  // 20 ms
  q.add_rate_limited("a");  // 40 ms
  q.add_rate_limited("a");  // 80 ms
  EXPECT_EQ(q.failures("a"), 3);
  EXPECT_EQ(q.depth(), 0u) << "a failed key waits for its backoff";
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(get_within(q, 5s), "a");
  EXPECT_GE(std::chrono::steady_clock::now() - start, 15ms);
  q.done("a");
  q.forget("a");
  EXPECT_EQ(q.failures("a"), 0);
}

TEST(WorkQueue, TheOverallBucketLimitsABurstOfFailures) {
  RateLimits limits;
  limits.base = 1ms;
  limits.qps = 50;
  limits.burst = 5;
  WorkQueue q(limits);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 15; ++i) q.add_rate_limited("k" + std::to_string(i));
  for (int i = 0; i < 15; ++i) {
    auto k = get_within(q, 5s);
    ASSERT_TRUE(k);
    q.done(*k);
  }
  // 5 from the burst, then 10 more at 50/s: at least ~200 ms, however fast the per-key backoff is.
  EXPECT_GE(std::chrono::steady_clock::now() - start, 180ms);
}

TEST(WorkQueue, ADelayedKeyWaitsOnceAtItsEarliestTime) {
  RateLimits limits;
  limits.base = 10ms;
  WorkQueue q(limits);
  q.add_after("a", 60s);
  q.add_after("a", 20ms);  // earlier: replaces the 60 s entry
  q.add_after("a", 30s);   // later: ignored
  // Backoffs of 10, 20, 40, 80, 160 ms: the first is earlier and replaces the 20 ms entry, the rest are later.
  for (int i = 0; i < 5; ++i) q.add_rate_limited("a");
  EXPECT_EQ(get_within(q, 5s), "a");
  q.done("a");
  // Had any later entry of "a" been kept, it would come back within 160 ms, before "b".
  q.add_after("b", 400ms);
  EXPECT_EQ(get_within(q, 5s), "b");
}

TEST(WorkQueue, AddAfterAndShutDown) {
  WorkQueue q;
  q.add_after("later", 30ms);
  EXPECT_EQ(q.depth(), 0u);
  EXPECT_EQ(get_within(q, 5s), "later");
  q.done("later");
  std::thread t([&] { EXPECT_EQ(q.get(), std::nullopt); });
  q.shut_down();
  t.join();
  q.add("ignored");
  EXPECT_EQ(q.get(), std::nullopt);
}
