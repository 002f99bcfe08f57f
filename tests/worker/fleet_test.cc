// Process-level tests of the sidecar (ctest label `worker`): a real gasoline-kv (KvProcess), real gasoline-worker
// sidecars and real gasoline-example-app processes on loopback, ports chosen by the OS. Where a test needs an app
// that holds tasks on purpose, the test itself is that app (worker/sdk). Synchronisation is by conditions with
// deadlines (wait_until); nothing asserts on speed. Exactly-once commits are checked through each workflow's
// `steps` count in the kv: a step committed twice would show up as an extra step. The fixture is in fleet.h.
#include "tests/worker/fleet.h"

namespace gasoline {
namespace {

using namespace fleet;

// --- every workflow kind -------------------------------------------------------------------------------------

TEST_F(WorkerFleet, EveryWorkflowOfEveryKindCompletes) {
  start_kv();
  for (int i = 0; i < 3; ++i) start_sidecar("w" + std::to_string(i), true);
  std::vector<std::string> noops, sleeps, orders, unpaid;
  for (int i = 0; i < 30; ++i) noops.push_back(dispatch("noop", {{"i", i}}));
  for (int i = 0; i < 10; ++i) sleeps.push_back(dispatch("sleep", {{"ms", 50 + 20 * i}, {"times", 2}}));
  for (int i = 0; i < 10; ++i) orders.push_back(dispatch("order", {{"sku", i}, {"payment_timeout_ms", 60000}}));
  for (int i = 0; i < 3; ++i) unpaid.push_back(dispatch("order", {{"sku", 100 + i}, {"payment_timeout_ms", 300}}));

  // Pay each order once it waits for the payment (the signal goes through a sidecar's app API).
  sdk::Client api(nodes_[0]->address());
  std::set<std::string> paid;
  ASSERT_TRUE(wait_until(
      [&] {
        for (const auto& id : orders) {
          if (paid.count(id)) continue;
          auto w = get(id);
          if (w["state"].is_object() && w["state"].value("stage", "") == "awaiting_payment") {
            api.signal(id, "payment", {{"amount", 42}, {"order", id}});
            paid.insert(id);
          }
        }
        return paid.size() == orders.size();
      },
      60s));

  std::vector<std::string> all;
  for (auto* v : {&noops, &sleeps, &orders, &unpaid}) all.insert(all.end(), v->begin(), v->end());
  ASSERT_TRUE(wait_until([&] { return all_terminal(all); }, 90s)) << pending(all);

  for (const auto& id : noops) {
    auto w = get(id);
    EXPECT_EQ(w["status"], "complete") << id;
    EXPECT_EQ(w["steps"], 1) << id;
  }
  for (const auto& id : sleeps) {
    auto w = get(id);
    EXPECT_EQ(w["status"], "complete") << id;
    EXPECT_EQ(w["steps"], 3) << "sleep, sleep, complete: " << id;
  }
  for (const auto& id : orders) {
    auto w = get(id);
    ASSERT_EQ(w["status"], "complete") << w.dump();
    // reserve→sleep, wait(payment), continue, retry, retry, wait(child), complete: each committed once.
    EXPECT_EQ(w["steps"], 7) << w.dump();
    EXPECT_EQ(w["output"]["steps"], 7) << w.dump();
    EXPECT_EQ(w["output"]["payment"]["order"], id);
    EXPECT_EQ(w["output"]["charge_attempts"], 3);
    EXPECT_EQ(w["output"]["shipment"]["tracking"], "TRK-" + id + ".ship");
    auto ship = get(id + ".ship");
    EXPECT_EQ(ship["status"], "complete");
    EXPECT_EQ(ship["parent_id"], id);
    EXPECT_EQ(ship["steps"], 1);
  }
  for (const auto& id : unpaid) {
    auto w = get(id);
    EXPECT_EQ(w["status"], "failed") << w.dump();
    EXPECT_NE(w["error"].get<std::string>().find("payment not received"), std::string::npos) << w.dump();
    EXPECT_EQ(w["steps"], 3) << "sleep, wait, fail: " << w.dump();
  }
}

TEST_F(WorkerFleet, SignalsWakeWaitingWorkflows) {
  start_kv();
  start_sidecar("w0", true);
  start_sidecar("w1", true);
  sdk::Client api(nodes_[1]->address());
  // A long deadline: if these complete, the signal woke them, not the timer.
  std::vector<std::string> waiting, early;
  for (int i = 0; i < 8; ++i) waiting.push_back(dispatch("order", {{"payment_timeout_ms", 600000}}));
  ASSERT_TRUE(wait_until(
      [&] {
        return std::all_of(waiting.begin(), waiting.end(), [&](const std::string& id) {
          auto w = get(id);
          return w["status"] == "waiting" && w["state"].value("stage", "") == "awaiting_payment";
        });
      },
      60s));
  // A signal that arrives before the workflow waits is kept and wakes it as soon as it does wait.
  for (int i = 0; i < 4; ++i) {
    early.push_back(dispatch("order", {{"payment_timeout_ms", 600000}}));
    api.signal(early.back(), "payment", {{"amount", i}});
  }
  for (const auto& id : waiting) api.signal(id, "payment", {{"amount", 1}}, "pay-" + id);
  for (const auto& id : waiting) {
    auto again = api.signal(id, "payment", {{"amount", 1}}, "pay-" + id);  // a retried signal is delivered once
    EXPECT_TRUE(again.value("duplicate", false)) << again.dump();
  }
  std::vector<std::string> all = waiting;
  all.insert(all.end(), early.begin(), early.end());
  ASSERT_TRUE(wait_until([&] { return all_terminal(all); }, 60s)) << pending(all);
  for (const auto& id : waiting) {
    auto w = get(id);
    EXPECT_EQ(w["status"], "complete") << w.dump();
    EXPECT_EQ(w["steps"], 7) << w.dump();
  }
  for (const auto& id : early) {
    auto w = get(id);
    EXPECT_EQ(w["status"], "complete") << w.dump();
    // An early payment skips the wait (6 steps) unless it arrived after the order started waiting (7); either
    // way the kv's count equals the steps the workflow itself ran.
    EXPECT_EQ(w["steps"], w["output"]["steps"]) << w.dump();
  }
}

TEST_F(WorkerFleet, TimersFireOnTime) {
  start_kv();
  start_sidecar("w0", true);
  start_sidecar("w1", true);
  std::vector<std::string> ids;
  for (int i = 0; i < 24; ++i) ids.push_back(dispatch("sleep", {{"ms", 100 + 40 * i}, {"times", 1}}));
  ASSERT_TRUE(wait_until([&] { return all_terminal(ids); }, 60s)) << pending(ids);
  std::vector<int64_t> lags;
  for (const auto& id : ids) {
    auto w = get(id);
    ASSERT_EQ(w["status"], "complete") << w.dump();
    EXPECT_EQ(w["steps"], 2);
    int64_t until = w["output"]["until"], ran_at = w["output"]["ran_at"];
    EXPECT_GE(ran_at, until) << "a timer fired early: " << w.dump();
    lags.push_back(ran_at - until);
  }
  std::sort(lags.begin(), lags.end());
  std::cout << "timer lag (wake-up to the app running the step, HTTP included) over " << lags.size()
            << " timers: p50=" << lags[lags.size() / 2] << " ms, p90=" << lags[lags.size() * 9 / 10]
            << " ms, max=" << lags.back() << " ms\n";
}

// --- failures ------------------------------------------------------------------------------------------------

TEST_F(WorkerFleet, KillNineWithTasksInFlightMovesWorkAndFencesLateResults) {
  KvOptions o;
  // The kernel closes a killed sidecar's connection, and the kv reclaims on that (assign/lost.h): the work moves
  // within the deadline below although a silent worker would be lost only after 30 s.
  o.lost_after_ms = 30000;
  o.extra_args = {"--lost-after-disconnect-ms", "500"};
  start_kv(o);
  // The victim has no app: the test polls it and holds its tasks, as an app in the middle of a step would.
  Node& victim = start_sidecar("victim", false);
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(dispatch("noop", {{"i", i}}));
  auto held = hold(victim, ids.size());
  ASSERT_EQ(held.size(), ids.size());
  for (const auto& id : ids) ASSERT_EQ(get(id)["lease_worker"], victim.id);

  Node& b = start_sidecar("b", true);
  start_sidecar("c", true);
  victim.sidecar->kill9();
  ASSERT_TRUE(wait_until([&] { return all_terminal(ids); }, 30s))
      << "the victim's workflows did not move on" << pending(ids);
  for (const auto& id : ids) {
    auto w = get(id);
    EXPECT_EQ(w["status"], "complete");
    EXPECT_EQ(w["steps"], 1);
    EXPECT_NE(w["output"].value("worker", ""), victim.id) << "completed elsewhere";
  }
  EXPECT_TRUE(file_contains(kv_->log_path(), "worker lost", victim.id));
  EXPECT_TRUE(file_contains(kv_->log_path(), "worker lost", "\"why\":\"disconnected\""));

  // The late results: posted to a live sidecar (the victim is gone), they are fenced by the kv and refused.
  sdk::Client api(b.address());
  for (const auto& t : held)
    EXPECT_EQ(api.post_result(t, sdk::step::complete({{"late", true}})), sdk::Posted::kLeaseLost) << t.dump();
  // Without the workflow id and worker the sidecar cannot even ask the kv: still 409, never a commit.
  auto raw = api.request("POST", "/v1/tasks/" + held[0]["token"].get<std::string>() + "/result",
                         R"({"complete": {}})");
  EXPECT_EQ(raw.status, 409) << raw.raw;
  EXPECT_EQ(raw.body["error"]["code"], "lease_lost");
  for (const auto& id : ids) {
    auto w = get(id);
    EXPECT_EQ(w["steps"], 1) << "a late result was committed: " << w.dump();
    EXPECT_FALSE(w["output"].contains("late"));
  }
}

TEST_F(WorkerFleet, SigtermDrainFinishesInFlightTasksWithoutAReclaimWait) {
  KvOptions o;
  o.lost_after_ms = 1000;  // margin on a loaded machine; the test proves no reclaim happens at all
  start_kv(o);
  Node& drained = start_sidecar("drained", false);
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(dispatch("noop", {{"i", i}}));
  auto held = hold(drained, ids.size());
  ASSERT_EQ(held.size(), ids.size());
  start_sidecar("b", true);
  start_sidecar("c", true);

  drained.sidecar->signal(SIGTERM);
  ASSERT_TRUE(wait_until([&] { return worker_record(drained.id).value("state", "") == "draining"; }, 10s));
  EXPECT_FALSE(ready(drained)) << "a draining sidecar is not ready";

  // The rest moves on at once: new work completes elsewhere while the drained sidecar still holds its tasks.
  std::vector<std::string> fresh;
  for (int i = 0; i < 10; ++i) fresh.push_back(dispatch("noop", {{"fresh", i}}));
  ASSERT_TRUE(wait_until([&] { return all_terminal(fresh); }, 30s)) << pending(fresh);
  ASSERT_TRUE(drained.sidecar->running());
  for (const auto& id : fresh) EXPECT_NE(get(id)["output"].value("worker", ""), drained.id);

  // Keep pinging: well past lost_after the drained worker is still a member and still holds its leases. "Nothing
  // was reclaimed" is a property of a stretch of time, so this waits out three lost_after windows on purpose; it
  // synchronises nothing.
  auto t0 = mono_ms();
  wait_until([&] { return mono_ms() - t0 > 3 * o.lost_after_ms; }, 10s);
  auto rec = worker_record(drained.id);
  ASSERT_FALSE(rec.is_null()) << "the draining worker was removed";
  EXPECT_EQ(rec["state"], "draining");
  EXPECT_LT(rec["last_ping_age_ms"].get<int64_t>(), o.lost_after_ms);
  for (const auto& id : ids) EXPECT_EQ(get(id)["lease_worker"], drained.id);

  // In-flight tasks finish: their results are accepted during the drain.
  sdk::Client api(drained.address());
  for (const auto& t : held)
    EXPECT_EQ(api.post_result(t, sdk::step::complete({{"by", "test"}})), sdk::Posted::kCommitted);
  EXPECT_EQ(drained.sidecar->wait(20s), 0) << "drain → leave → exit 0";
  EXPECT_TRUE(worker_record(drained.id).is_null()) << "left the pool";
  for (const auto& id : ids) {
    auto w = get(id);
    EXPECT_EQ(w["status"], "complete");
    EXPECT_EQ(w["steps"], 1);
    EXPECT_EQ(w["output"]["by"], "test");
  }
  EXPECT_FALSE(file_contains(kv_->log_path(), "worker lost", drained.id)) << "nothing was reclaimed";
}

TEST_F(WorkerFleet, DrainTimeoutAndSecondSignalLeaveAndHandOver) {
  start_kv();
  Node& slow = start_sidecar("slow", false, {"--drain-timeout", "300ms"});
  std::vector<std::string> a;
  for (int i = 0; i < 3; ++i) a.push_back(dispatch("noop", {{"a", i}}));
  auto held_a = hold(slow, a.size());
  ASSERT_EQ(held_a.size(), a.size());
  Node& stubborn = start_sidecar("stubborn", false, {"--drain-timeout", "10m"});
  // The first sidecar is still a member: take the next tasks from the second by draining the first.
  slow.sidecar->signal(SIGTERM);
  EXPECT_EQ(slow.sidecar->wait(30s), 0) << "the drain timeout passed: leave and exit 0";
  std::vector<std::string> b;
  for (int i = 0; i < 3; ++i) b.push_back(dispatch("noop", {{"b", i}}));
  auto held_b = hold(stubborn, b.size());
  ASSERT_EQ(held_b.size(), b.size());
  stubborn.sidecar->signal(SIGTERM);
  ASSERT_TRUE(wait_until([&] { return worker_record(stubborn.id).value("state", "") == "draining"; }, 10s));
  stubborn.sidecar->signal(SIGTERM);  // a second signal: leave now, not after ten minutes
  EXPECT_EQ(stubborn.sidecar->wait(30s), 0);

  // Leave handed everything over: a new sidecar with an app completes it, and the old results are refused.
  Node& fresh = start_sidecar("fresh", true);
  std::vector<std::string> all = a;
  all.insert(all.end(), b.begin(), b.end());
  ASSERT_TRUE(wait_until([&] { return all_terminal(all); }, 30s)) << pending(all);
  sdk::Client api(fresh.address());
  for (const auto* held : {&held_a, &held_b})
    for (const auto& t : *held) EXPECT_EQ(api.post_result(t, sdk::step::complete()), sdk::Posted::kLeaseLost);
  for (const auto& id : all) {
    auto w = get(id);
    EXPECT_EQ(w["status"], "complete");
    EXPECT_EQ(w["steps"], 1);
    EXPECT_EQ(w["output"]["worker"], fresh.id);
  }
  EXPECT_FALSE(file_contains(kv_->log_path(), "worker lost", slow.id)) << "leave, not a reclaim";
  EXPECT_FALSE(file_contains(kv_->log_path(), "worker lost", stubborn.id)) << "leave, not a reclaim";
}

TEST_F(WorkerFleet, ScaleFourToEightToTwoUnderLoadWithoutDuplicateCommits) {
  // The test proves scale-in is a drain, never a loss, so a ping delayed past lost_after must not count: starting
  // four sidecars at once under ThreadSanitizer (hack/tsan.sh) held pings of the running ones back for 420-870 ms.
  KvOptions o;
  o.lost_after_ms = 2000;
  start_kv(o);
  for (int i = 0; i < 4; ++i) start_sidecar("w" + std::to_string(i), true);
  const int total = 480;
  std::vector<std::pair<std::string, int>> expected;  // id → steps
  std::atomic<int> sent{0};
  std::mutex mu;
  std::thread dispatcher([&] {
    auto c = kv_->client("dispatcher");
    for (int i = 0; i < total; ++i) {
      bool sleeper = i % 3 == 0;
      auto id = c->call("dispatch",
                        sleeper ? Json{{"pool", pool_}, {"name", "sleep"}, {"input", {{"ms", 30}, {"times", 3}}}}
                                : Json{{"pool", pool_}, {"name", "noop"}, {"input", {{"i", i}}}},
                        rpc::CallOptions{10s, true})["id"]
                    .get<std::string>();
      {
        std::lock_guard lock(mu);
        expected.emplace_back(id, sleeper ? 4 : 1);
      }
      ++sent;
      std::this_thread::sleep_for(10ms);  // pacing of the load generator, not synchronisation
    }
  });
  ASSERT_TRUE(wait_until([&] { return sent >= total / 3; }, 60s));
  for (int i = 4; i < 8; ++i) start_sidecar("w" + std::to_string(i), true);
  std::cout << "scaled 4 → 8 after " << sent << " dispatches\n";
  ASSERT_TRUE(wait_until([&] { return sent >= 2 * total / 3; }, 60s));
  // Scale in to 2: SIGTERM six sidecars (drain, finish, leave), concurrently.
  for (int i = 0; i < 6; ++i) nodes_[i]->sidecar->signal(SIGTERM);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(nodes_[i]->sidecar->wait(60s), 0) << nodes_[i]->name;
    nodes_[i]->app->signal(SIGTERM);
  }
  std::cout << "scaled 8 → 2 after " << sent << " dispatches\n";
  dispatcher.join();
  std::vector<std::string> ids;
  for (const auto& [id, steps] : expected) ids.push_back(id);
  ASSERT_TRUE(wait_until([&] { return all_terminal(ids); }, 120s)) << pending(ids);
  int mismatched = 0;
  std::map<std::string, int> by_worker;
  for (const auto& [id, steps] : expected) {
    auto w = get(id);
    EXPECT_EQ(w["status"], "complete") << w.dump();
    if (w["steps"] != steps) {
      ++mismatched;
      ADD_FAILURE() << "expected " << steps << " committed steps (a duplicate commit shows as more): " << w.dump();
    }
    if (w["output"].contains("worker")) ++by_worker[w["output"]["worker"].get<std::string>()];
  }
  EXPECT_EQ(mismatched, 0);
  std::cout << "noop workflows completed per worker:";
  for (const auto& [w, n] : by_worker) std::cout << " " << w << "=" << n;
  std::cout << "\n";
  for (int i = 0; i < 6; ++i)
    EXPECT_FALSE(file_contains(kv_->log_path(), "worker lost", nodes_[i]->id)) << "scale-in is a drain, not a loss";
}

TEST_F(WorkerFleet, SidecarStartedWhileTheKvIsDownWaitsAndRecovers) {
  start_kv();
  std::string address = kv_->address();
  kv_->stop();
  Node& n = start_sidecar("early", true);
  sdk::Client api(n.address());
  auto health = api.request("GET", "/healthz");
  EXPECT_EQ(health.status, 200) << "alive without a kv";
  EXPECT_FALSE(health.body.value("connected", true));
  auto readyz = api.request("GET", "/readyz");
  EXPECT_EQ(readyz.status, 503);
  EXPECT_FALSE(readyz.body.value("ready", true));
  // Several failed pings later it is still up and still unready.
  ASSERT_TRUE(wait_until(
      [&] {
        return metric(api.request("GET", "/metrics").raw, "gasoline_worker_pings_total{result=\"unavailable\"}") >= 5;
      },
      20s));
  ASSERT_TRUE(n.sidecar->running());
  EXPECT_FALSE(ready(n));

  kv_->restart();
  ASSERT_EQ(kv_->address(), address) << "the kv came back on another port; the sidecar cannot find it";
  ASSERT_TRUE(wait_until([&] { return ready(n); }, 30s)) << "the sidecar did not recover";
  auto id = api.dispatch("noop", {{"after", "recovery"}});
  ASSERT_TRUE(wait_until([&] { return all_terminal({id}); }, 30s));
  EXPECT_EQ(get(id)["status"], "complete");
}

TEST_F(WorkerFleet, KvLossBuffersResultsAndCommitsThemOnReturn) {
  start_kv();
  Node& n = start_sidecar("w", false);
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(dispatch("noop", {{"i", i}}));
  auto held = hold(n, ids.size());
  ASSERT_EQ(held.size(), ids.size());

  kv_->process().kill9();
  sdk::Client api(n.address());
  ASSERT_TRUE(wait_until([&] { return !ready(n); }, 10s));
  // Running tasks keep running; their results are kept and retried while the kv is away.
  for (const auto& t : held)
    EXPECT_EQ(api.post_result(t, sdk::step::complete({{"buffered", true}})), sdk::Posted::kBuffered);
  auto metrics = api.request("GET", "/metrics").raw;
  EXPECT_EQ(metric(metrics, "gasoline_worker_buffered_results"), 4) << metrics;
  EXPECT_TRUE(n.sidecar->running());

  kv_->restart();
  ASSERT_TRUE(wait_until([&] { return all_terminal(ids); }, 30s)) << pending(ids);
  for (const auto& id : ids) {
    auto w = get(id);
    EXPECT_EQ(w["status"], "complete");
    EXPECT_EQ(w["steps"], 1);
    EXPECT_EQ(w["output"]["buffered"], true);
  }
  ASSERT_TRUE(wait_until([&] { return ready(n); }, 30s));
}

// A sidecar with a scoped credential (worker and client of namespace a, docs/security.md "Roles") instead of the
// admin token: it pings, pulls, commits and dispatches for its own pool, and after the kv comes back its buffered
// results commit on the new connection, which pinged as the worker before sending them.
TEST_F(WorkerFleet, ScopedCredentialSidecarWorksAndRecoversFromKvLoss) {
  pool_ = "a.p";
  const std::string token = "sidecar-a-0123456789abcdef";
  std::ofstream(dir_->path() + "/credentials") << "worker a " << token << "\nclient a " << token << "\n";
  sidecar_token_file_ = dir_->path() + "/sidecar-token";
  std::ofstream(sidecar_token_file_) << token << "\n";
  KvOptions o;
  o.extra_args = {"--credentials-file", dir_->path() + "/credentials"};
  start_kv(o);
  Node& n = start_sidecar("w", false);
  sdk::Client api(n.address());
  ASSERT_TRUE(wait_until([&] { return ready(n); }, 20s)) << "the kv did not accept the scoped credential";

  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(dispatch("noop", {{"i", i}}));
  ids.push_back(api.dispatch("noop", {{"through", "the sidecar"}}));  // the client role
  auto held = hold(n, ids.size());
  ASSERT_EQ(held.size(), ids.size());

  kv_->process().kill9();
  ASSERT_TRUE(wait_until([&] { return !ready(n); }, 10s));
  for (const auto& t : held)
    EXPECT_EQ(api.post_result(t, sdk::step::complete({{"buffered", true}})), sdk::Posted::kBuffered);

  kv_->restart();
  ASSERT_TRUE(wait_until([&] { return all_terminal(ids); }, 30s)) << pending(ids);
  for (const auto& id : ids) {
    auto w = get(id);
    EXPECT_EQ(w["status"], "complete") << w.dump();
    EXPECT_EQ(w["steps"], 1) << w.dump();
  }
  ASSERT_TRUE(wait_until([&] { return ready(n); }, 30s));
  // The app reads its own workflows through the sidecar; nothing was refused along the way.
  EXPECT_EQ(api.get(ids.back()).value("status", ""), "complete");
  EXPECT_FALSE(file_contains(n.log, "permission", "denied")) << tail(n.log);
}

// --- the app API's contract ----------------------------------------------------------------------------------

TEST_F(WorkerFleet, AppApiRejectsBadInputClearly) {
  start_kv();
  Node& n = start_sidecar("w", false, {"--max-body", "4096", "--concurrency", "4"});
  sdk::Client api(n.address());
  struct Case {
    std::string method, target, body;
    int status;
    std::string code;
  };
  std::vector<Case> cases{
      {"GET", "/v1/tasks?max=0", "", 400, "bad_request"},
      {"GET", "/v1/tasks?wait=forever", "", 400, "bad_request"},
      {"POST", "/v1/tasks", "", 405, "method_not_allowed"},
      {"POST", "/v1/tasks/12.wf_x/result", "{not json", 400, "bad_json"},
      {"POST", "/v1/tasks/12.wf_x/result", R"({"complete": {}, "fail": {"error": "x"}})", 400, "bad_request"},
      {"POST", "/v1/tasks/abc/result", R"({"complete": {}})", 400, "bad_request"},
      {"POST", "/v1/tasks/12/result", R"({"complete": {}})", 400, "bad_request"},
      {"POST", "/v1/tasks/12.wf_x/result", R"({"complete": {}})", 409, "lease_lost"},
      {"POST", "/v1/tasks/results", R"({"results": 3})", 400, "bad_request"},
      {"POST", "/v1/workflows", R"({"input": 1})", 400, "bad_request"},
      {"POST", "/v1/workflows", R"({"name": "bad name with spaces"})", 400, "bad_request"},
      {"GET", "/v1/workflows/wf_missing", "", 404, "not_found"},
      {"POST", "/v1/workflows/wf_missing/signals", R"({"name": "x"})", 404, "not_found"},
      {"POST", "/v1/workflows/wf_missing/signals", R"({"nom": "x"})", 400, "bad_request"},
      {"POST", "/v1/workflows/wf_missing/cancel", "", 404, "not_found"},
      {"GET", "/v2/anything", "", 404, "not_found"},
      {"POST", "/v1/workflows", std::string(5000, ' '), 413, "too_large"},
  };
  for (const auto& c : cases) {
    auto r = api.request(c.method, c.target, c.body);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.target << " → " << r.raw;
    ASSERT_TRUE(r.body.is_object() && r.body.contains("error")) << c.target << " → " << r.raw;
    EXPECT_EQ(r.body["error"]["code"], c.code) << r.raw;
    EXPECT_FALSE(r.body["error"].value("message", "").empty());
  }

  // Batch results: each item is answered on its own.
  auto id = api.dispatch("noop");
  auto tasks = hold(n, 1);
  ASSERT_EQ(tasks.size(), 1u);
  Json batch{{"results",
              {{{"token", tasks[0]["token"]}, {"complete", {{"output", "ok"}}}},
               {{"token", "77.wf_x"}, {"complete", Json::object()}},
               {{"token", "78.wf_x"}, {"sleep", Json::object()}}}}};
  auto r = api.request("POST", "/v1/tasks/results", batch.dump());
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["results"][0]["status"], 200) << r.raw;
  EXPECT_EQ(r.body["results"][1]["status"], 409) << r.raw;
  EXPECT_EQ(r.body["results"][2]["status"], 400) << r.raw;
  // The same result again (a retry after a lost answer) is answered as a duplicate, never committed twice.
  auto again = api.request("POST", "/v1/tasks/" + tasks[0]["token"].get<std::string>() + "/result",
                           R"({"complete": {"output": "again"}})");
  EXPECT_EQ(again.status, 200) << again.raw;
  EXPECT_TRUE(again.body.value("duplicate", false)) << again.raw;
  auto w = api.get(id);
  EXPECT_EQ(w["status"], "complete");
  EXPECT_EQ(w["output"], "ok");
  EXPECT_EQ(w["steps"], 1);

  // Cancel through the API; a poll for more than the concurrency is clamped, not refused.
  auto c = api.dispatch("noop", nullptr, sdk::DispatchOptions{"wf_to_cancel", "", Json::object(), 60'000, 0});
  EXPECT_EQ(api.cancel(c, "test")["status"], "cancelled");
  EXPECT_EQ(api.request("GET", "/v1/tasks?max=1000&wait=0s").status, 200);
  EXPECT_EQ(api.request("GET", "/metrics").status, 200);
}

}  // namespace
}  // namespace gasoline
