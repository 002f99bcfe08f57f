// compute_status: every condition reason of docs/operator.md, lastTransitionTime kept or moved, observedGeneration, the
// replica counts, activeWorkers and selector.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "operator/pool/status.h"
#include "tests/operator/unit/fixtures.h"

namespace gasoline::op::pool {
namespace {

using nlohmann::json;
using testing::minimal_pool;
using testing::minimal_pool_with;

constexpr const char* kNow = "2025-06-01T12:00:00Z";
constexpr const char* kEarlier = "2025-05-01T08:30:00Z";

// A live Deployment with the given counts; generation 5 observed unless told otherwise.
json deployment(int desired, int replicas, int ready, int updated, int available, int generation = 5,
                int observed_generation = 5) {
  return {{"metadata", {{"name", "orders"}, {"namespace", "shop"}, {"generation", generation}}},
          {"spec",
           {{"replicas", desired},
            {"selector",
             {{"matchLabels",
               {{"app.kubernetes.io/instance", "orders"}, {"app.kubernetes.io/name", "gasoline-worker"}}}}}}},
          {"status",
           {{"observedGeneration", observed_generation},
            {"replicas", replicas},
            {"readyReplicas", ready},
            {"updatedReplicas", updated},
            {"availableReplicas", available}}}};
}

json with_deadline_exceeded(json d) {
  d["status"]["conditions"] = json::parse(R"([
      {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
      {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
       "message": "ReplicaSet \"orders-7c9\" has timed out progressing."}])");
  return d;
}

const json* condition(const json& status, const std::string& type) {
  for (const auto& c : status.at("conditions"))
    if (c.at("type") == type) return &c;
  return nullptr;
}

struct Expect {
  const char* status;
  const char* reason;
  const char* message;
};

TEST(PoolComputeStatus, ConditionReasons) {
  const std::string long_error(40000, 'x');
  const struct {
    const char* name;
    std::optional<json> deployment;
    std::optional<std::string> error;
    bool paused;
    Expect ready, progressing, degraded;
  } cases[] = {
      {"no Deployment yet", std::nullopt, std::nullopt, false,
       {"False", "DeploymentMissing", "Deployment shop/orders does not exist"},
       {"True", "RollingOut", "the Deployment is being created"},
       {"False", "AsExpected", "no failures observed"}},
      {"all ready and rolled out", deployment(3, 3, 3, 3, 3), std::nullopt, false,
       {"True", "AllReplicasReady", "3/3 replicas ready"},
       {"False", "UpToDate", "all 3 desired replicas are updated"},
       {"False", "AsExpected", "no failures observed"}},
      {"scaling down: more ready than desired", deployment(2, 3, 3, 3, 3), std::nullopt, false,
       {"True", "AllReplicasReady", "3/2 replicas ready"},
       {"False", "UpToDate", "all 2 desired replicas are updated"},
       {"False", "AsExpected", "no failures observed"}},
      {"rolling out: all updated, an old pod still running", deployment(3, 4, 3, 3, 3), std::nullopt, false,
       {"True", "AllReplicasReady", "3/3 replicas ready"},
       {"True", "RollingOut", "old replicas pending termination: 1"},
       {"False", "AsExpected", "no failures observed"}},
      {"not all ready", deployment(3, 3, 2, 3, 2), std::nullopt, false,
       {"False", "ReplicasNotReady", "2/3 replicas ready"},
       {"False", "UpToDate", "all 3 desired replicas are updated"},
       {"False", "AsExpected", "no failures observed"}},
      {"scaled to zero", deployment(0, 0, 0, 0, 0), std::nullopt, false,
       {"False", "ScaledToZero", "0 replicas desired"},
       {"False", "UpToDate", "all 0 desired replicas are updated"},
       {"False", "AsExpected", "no failures observed"}},
      {"rolling out: updated below desired", deployment(3, 4, 3, 1, 3), std::nullopt, false,
       {"True", "AllReplicasReady", "3/3 replicas ready"},
       {"True", "RollingOut", "1/3 replicas updated"},
       {"False", "AsExpected", "no failures observed"}},
      {"rolling out: generation not observed", deployment(3, 3, 3, 3, 3, 6, 5), std::nullopt, false,
       {"True", "AllReplicasReady", "3/3 replicas ready"},
       {"True", "RollingOut", "the Deployment controller has not yet seen generation 6"},
       {"False", "AsExpected", "no failures observed"}},
      {"paused wins over rolling out", deployment(3, 4, 3, 1, 3), std::nullopt, true,
       {"True", "AllReplicasReady", "3/3 replicas ready"},
       {"False", "Paused", "spec.paused is true: the operator does not update the children"},
       {"False", "AsExpected", "no failures observed"}},
      {"reconcile failed", deployment(3, 3, 3, 3, 3), "spec.autoscaling.minReplicas: must be <= maxReplicas (3 > 2)",
       false,
       {"True", "AllReplicasReady", "3/3 replicas ready"},
       {"False", "UpToDate", "all 3 desired replicas are updated"},
       {"True", "ReconcileFailed", "spec.autoscaling.minReplicas: must be <= maxReplicas (3 > 2)"}},
      {"progress deadline exceeded", with_deadline_exceeded(deployment(3, 4, 2, 1, 2)), std::nullopt, false,
       {"False", "ReplicasNotReady", "2/3 replicas ready"},
       {"True", "RollingOut", "1/3 replicas updated"},
       {"True", "DeploymentFailed",
        "the Deployment exceeded its progress deadline: ReplicaSet \"orders-7c9\" has timed out progressing."}},
      {"reconcile failure reported before the deadline", with_deadline_exceeded(deployment(3, 4, 2, 1, 2)),
       "applying Deployment shop/orders: 422 Unprocessable Entity", false,
       {"False", "ReplicasNotReady", "2/3 replicas ready"},
       {"True", "RollingOut", "1/3 replicas updated"},
       {"True", "ReconcileFailed", "applying Deployment shop/orders: 422 Unprocessable Entity"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Observed observed;
    if (c.deployment) observed.deployment = &*c.deployment;
    observed.reconcile_error = c.error;
    observed.paused = c.paused;
    const json status = compute_status(minimal_pool(), observed, kNow);
    ASSERT_EQ(status.at("conditions").size(), 3u);
    const char* types[] = {"Ready", "Progressing", "Degraded"};
    const Expect* want[] = {&c.ready, &c.progressing, &c.degraded};
    for (int i = 0; i < 3; ++i) {
      const json& got = status.at("conditions").at(i);
      EXPECT_EQ(got.at("type"), types[i]);
      EXPECT_EQ(got.at("status"), want[i]->status) << types[i];
      EXPECT_EQ(got.at("reason"), want[i]->reason) << types[i];
      EXPECT_EQ(got.at("message"), want[i]->message) << types[i];
      EXPECT_EQ(got.at("observedGeneration"), 4);
      EXPECT_EQ(got.at("lastTransitionTime"), kNow);  // no old conditions
    }
  }
}

TEST(PoolComputeStatus, PausedAlsoReadFromTheSpec) {
  const json status = compute_status(minimal_pool_with(R"({"spec": {"paused": true}})"), Observed{}, kNow);
  EXPECT_EQ(condition(status, "Progressing")->at("reason"), "Paused");
}

TEST(PoolComputeStatus, LongErrorsAreCutToTheConditionLimit) {
  Observed observed;
  observed.reconcile_error = std::string(40000, 'x');
  const std::string message = condition(compute_status(minimal_pool(), observed, kNow), "Degraded")->at("message");
  EXPECT_EQ(message.size(), 32768u);
  EXPECT_EQ(message.substr(message.size() - 3), "...");
}

TEST(PoolComputeStatus, LastTransitionTime) {
  const json ready_deployment = deployment(2, 2, 2, 2, 2);
  const json not_ready_deployment = deployment(2, 2, 1, 2, 1);
  const struct {
    const char* name;
    const char* old_conditions;  // pool.status.conditions
    const json* deployment;
    const char* want_ready_since;
  } cases[] = {
      {"no old status", "null", &ready_deployment, kNow},
      {"same status: kept", R"([{"type": "Ready", "status": "True", "lastTransitionTime": "2025-05-01T08:30:00Z"}])",
       &ready_deployment, kEarlier},
      {"same status, other reason and message: still kept",
       R"([{"type": "Ready", "status": "False", "reason": "DeploymentMissing", "message": "gone",
            "lastTransitionTime": "2025-05-01T08:30:00Z"}])",
       &not_ready_deployment, kEarlier},
      {"status changed: now", R"([{"type": "Ready", "status": "False", "lastTransitionTime": "2025-05-01T08:30:00Z"}])",
       &ready_deployment, kNow},
      {"old condition without a time: now", R"([{"type": "Ready", "status": "True"}])", &ready_deployment, kNow},
      {"only other types: now",
       R"([{"type": "Degraded", "status": "True", "lastTransitionTime": "2025-05-01T08:30:00Z"}])", &ready_deployment,
       kNow},
      {"garbage old status is ignored", R"("not a list")", &ready_deployment, kNow},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    json pool = minimal_pool();
    pool["status"]["conditions"] = json::parse(c.old_conditions);
    Observed observed;
    observed.deployment = c.deployment;
    const json status = compute_status(pool, observed, kNow);
    EXPECT_EQ(condition(status, "Ready")->at("lastTransitionTime"), c.want_ready_since);
  }
}

TEST(PoolComputeStatus, TopLevelFields) {
  json pool = minimal_pool_with(R"({"metadata": {"generation": 9}})");
  const json d = deployment(3, 4, 2, 1, 2);
  Observed observed;
  observed.deployment = &d;
  observed.active_workers = 7;
  const json status = compute_status(pool, observed, kNow);
  EXPECT_EQ(status.at("observedGeneration"), 9);
  EXPECT_EQ(status.at("replicas"), 4);
  EXPECT_EQ(status.at("readyReplicas"), 2);
  EXPECT_EQ(status.at("updatedReplicas"), 1);
  EXPECT_EQ(status.at("availableReplicas"), 2);
  EXPECT_EQ(status.at("activeWorkers"), 7);
  EXPECT_EQ(status.at("selector"), "app.kubernetes.io/instance=orders,app.kubernetes.io/name=gasoline-worker");
  for (const auto& c : status.at("conditions")) EXPECT_EQ(c.at("observedGeneration"), 9);
}

TEST(PoolComputeStatus, MissingCountsAreZeroAndUnknownWorkersAreLeftOut) {
  // The Deployment controller omits zero counts; a brand-new Deployment has no status at all.
  const json bare = {{"metadata", {{"generation", 1}}}, {"spec", {{"replicas", 2}}}};
  Observed observed;
  observed.deployment = &bare;
  const json status = compute_status(minimal_pool(), observed, kNow);
  for (const char* field : {"replicas", "readyReplicas", "updatedReplicas", "availableReplicas"})
    EXPECT_EQ(status.at(field), 0) << field;
  EXPECT_FALSE(status.contains("activeWorkers"));
  EXPECT_EQ(condition(status, "Progressing")->at("message"), "the Deployment controller has not yet seen generation 1");

  const json no_deployment = compute_status(minimal_pool(), Observed{}, kNow);
  EXPECT_EQ(no_deployment.at("replicas"), 0);
  EXPECT_FALSE(no_deployment.contains("activeWorkers"));
}

TEST(PoolComputeStatus, ActiveWorkersZeroIsReported) {
  Observed observed;
  observed.active_workers = 0;
  EXPECT_EQ(compute_status(minimal_pool(), observed, kNow).at("activeWorkers"), 0);
}

TEST(PoolComputeStatus, Selector) {
  const json live_selector = json::parse(R"({"spec": {"replicas": 1, "selector": {"matchLabels":
      {"app.kubernetes.io/name": "gasoline-worker", "app.kubernetes.io/instance": "orders", "legacy": "yes"}}}})");
  const struct {
    const char* name;
    json pool;
    const json* deployment;
    std::optional<std::string> want;
  } cases[] = {
      {"rendered when there is no Deployment", minimal_pool_with(R"({"spec": {"selectorLabels": {"zone": "a"}}})"),
       nullptr, "app.kubernetes.io/instance=orders,app.kubernetes.io/name=gasoline-worker,zone=a"},
      {"the live Deployment's selector wins (it is what the pods carry)", minimal_pool(), &live_selector,
       "app.kubernetes.io/instance=orders,app.kubernetes.io/name=gasoline-worker,legacy=yes"},
      {"bad selectorLabels keep the old selector",
       minimal_pool_with(R"({"spec": {"selectorLabels": {"zone": 1}}, "status": {"selector": "old=1"}})"), nullptr,
       "old=1"},
      {"bad selectorLabels and no old selector: left out", minimal_pool_with(R"({"spec": {"selectorLabels": 3}})"),
       nullptr, std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Observed observed;
    observed.deployment = c.deployment;
    const json status = compute_status(c.pool, observed, kNow);
    if (c.want) {
      EXPECT_EQ(status.value("selector", "<absent>"), *c.want);
    } else {
      EXPECT_FALSE(status.contains("selector"));
    }
  }
}

TEST(PoolComputeStatus, NeverThrowsOnABrokenPool) {
  for (const char* pool : {R"(null)", R"([])", R"({"metadata": 1, "spec": "x", "status": 2})", R"({})"}) {
    SCOPED_TRACE(pool);
    Observed observed;
    observed.reconcile_error = "broken";
    json status;
    EXPECT_NO_THROW(status = compute_status(json::parse(pool), observed, kNow));
    EXPECT_EQ(condition(status, "Degraded")->at("reason"), "ReconcileFailed");
    EXPECT_EQ(status.at("observedGeneration"), 0);
  }
}

TEST(PoolComputeStatus, DeterministicAndDoesNotModifyItsInputs) {
  json pool = minimal_pool();
  pool["status"]["conditions"] =
      json::parse(R"([{"type": "Ready", "status": "True", "lastTransitionTime": "2025-05-01T08:30:00Z"}])");
  const json d = with_deadline_exceeded(deployment(3, 3, 3, 3, 3));
  const json pool_before = pool, d_before = d;
  Observed observed;
  observed.deployment = &d;
  observed.active_workers = 3;
  const std::string first = compute_status(pool, observed, kNow).dump();
  EXPECT_EQ(compute_status(pool, observed, kNow).dump(), first);
  EXPECT_EQ(pool, pool_before);
  EXPECT_EQ(d, d_before);
}

// Found by fuzz_pool: conditions whose fields are not strings (in the live Deployment or in the pool's old status)
// made compute_status throw json's type_error, although it must never throw.
TEST(PoolComputeStatus, NeverThrowsOnConditionsOfTheWrongType) {
  json d = deployment(1, 1, 1, 1, 1);
  d["status"]["conditions"] = json::parse(R"([{"type": 1}, {"type": "Progressing", "status": false, "reason": 2},
      {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": 3}])");
  json pool = minimal_pool();
  pool["status"]["conditions"] = json::parse(R"([{"type": "Ready", "status": 1, "lastTransitionTime": 2},
      {"type": "Degraded", "status": "False", "lastTransitionTime": 7}, {"type": null}])");
  Observed observed;
  observed.deployment = &d;
  json status;
  ASSERT_NO_THROW(status = compute_status(pool, observed, kNow));
  EXPECT_EQ(condition(status, "Degraded")->at("reason"), "DeploymentFailed");
  EXPECT_EQ(condition(status, "Degraded")->at("message"), "the Deployment exceeded its progress deadline");
  EXPECT_EQ(condition(status, "Ready")->at("lastTransitionTime"), kNow);
}

// Found by fuzz_pool: a huge float count or generation was cast to int64_t out of range, and replicas - updated
// could overflow; both are undefined behaviour. Counts are clamped to apps/v1's range (int32, >= 0).
TEST(PoolComputeStatus, OutOfRangeNumbersAreClamped) {
  json d = deployment(1, 1, 1, 1, 1);
  d["spec"]["replicas"] = -5;
  d["status"]["replicas"] = 9223372036854775807LL;
  d["status"]["updatedReplicas"] = -1;
  d["status"]["readyReplicas"] = 1e300;
  d["status"]["availableReplicas"] = 18446744073709551615ULL;
  d["metadata"]["generation"] = -1e300;
  json pool = minimal_pool();
  pool["metadata"]["generation"] = 1e300;
  Observed observed;
  observed.deployment = &d;
  json status;
  ASSERT_NO_THROW(status = compute_status(pool, observed, kNow));
  EXPECT_EQ(status.at("observedGeneration"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(status.at("replicas"), 2147483647);
  EXPECT_EQ(status.at("updatedReplicas"), 0);
  EXPECT_EQ(status.at("readyReplicas"), 2147483647);
  EXPECT_EQ(status.at("availableReplicas"), 2147483647);
  EXPECT_EQ(condition(status, "Ready")->at("reason"), "ScaledToZero");
  EXPECT_EQ(condition(status, "Progressing")->at("message"), "old replicas pending termination: 2147483647");
}

}  // namespace
}  // namespace gasoline::op::pool
