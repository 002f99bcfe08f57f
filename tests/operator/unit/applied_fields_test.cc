// drops_applied_field and needs_apply: a field the user removed from the pool must still cause a write, although
// desired is then a subset of live. The managedFields entries below have the shape the API server writes.
#include <gtest/gtest.h>

#include "operator/pool/applied_fields.h"
#include "operator/pool/compare.h"
#include "operator/pool/render.h"
#include "tests/operator/unit/fixtures.h"

namespace gasoline::op::pool {
namespace {

using nlohmann::json;
using testing::minimal_pool_with;
using testing::test_defaults;

constexpr const char* kManager = "gasoline-operator";

json with_managed_fields(json live, const json& entries) {
  live["metadata"]["managedFields"] = entries;
  return live;
}

json apply_entry(const char* fields_v1, const char* api_version = "v1") {
  return {{"manager", kManager},
          {"operation", "Apply"},
          {"apiVersion", api_version},
          {"time", "2025-01-01T00:00:00Z"},
          {"fieldsType", "FieldsV1"},
          {"fieldsV1", json::parse(fields_v1)}};
}

TEST(PoolAppliedFields, Table) {
  const json desired = json::parse(R"({"apiVersion": "v1", "kind": "Thing",
      "metadata": {"name": "t", "labels": {"a": "1"}},
      "spec": {"containers": [{"name": "app", "env": [{"name": "A", "value": "1"}],
                               "ports": [{"containerPort": 80}]}],
               "drop": ["ALL"]}})");
  json other_manager = apply_entry(R"({"f:spec": {"f:nodeSelector": {}}})");
  other_manager["manager"] = "kubectl";
  json update_entry = apply_entry(R"({"f:spec": {"f:nodeSelector": {}}})");
  update_entry["operation"] = "Update";
  json status_entry = apply_entry(R"({"f:status": {"f:replicas": {}}})");
  status_entry["subresource"] = "status";

  const struct {
    const char* name;
    json managed_fields;  // null: live has none
    bool drops;
  } cases[] = {
      {"no managedFields: we never applied", nullptr, false},
      {"our last apply had exactly these fields",
       json::array({apply_entry(R"({"f:metadata": {"f:labels": {"f:a": {}}},
           "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:name": {},
               "f:env": {"k:{\"name\":\"A\"}": {".": {}, "f:name": {}, "f:value": {}}},
               "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}},
             "f:drop": {"v:\"ALL\"": {}}}})")}),
       false},
      {"an env var the user removed", json::array({apply_entry(R"({"f:spec": {"f:containers": {
           "k:{\"name\":\"app\"}": {"f:env": {"k:{\"name\":\"OLD\"}": {".": {}, "f:name": {}}}}}}})")}),
       true},
      {"a label the user removed", json::array({apply_entry(R"({"f:metadata": {"f:labels": {"f:b": {}}}})")}), true},
      {"a whole field the user removed", json::array({apply_entry(R"({"f:spec": {"f:nodeSelector": {}}})")}), true},
      {"a container the user removed", json::array({apply_entry(R"({"f:spec": {"f:containers": {
           "k:{\"name\":\"sidecar\"}": {".": {}}}}})")}),
       true},
      {"a set member the user removed", json::array({apply_entry(R"({"f:spec": {"f:drop": {"v:\"NET_RAW\"": {}}}})")}),
       true},
      {"a port recorded with a protocol other than the default",
       json::array({apply_entry(R"({"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {
           "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"UDP\"}": {}}}}}})")}),
       true},
      {"another manager's fields do not count", json::array({other_manager}), false},
      {"an Update by our manager does not count", json::array({update_entry}), false},
      {"a status apply does not count", json::array({status_entry}), false},
      {"an apply under another apiVersion cannot be read: apply",
       json::array({apply_entry(R"({"f:metadata": {}})", "v2")}), true},
      {"an unparsable key: apply", json::array({apply_entry(R"({"f:spec": {"f:containers": {"k:{bad": {}}}})")}),
       true},
      {"a positional entry: apply", json::array({apply_entry(R"({"f:spec": {"f:containers": {"i:0": {}}}})")}),
       true},
  };
  for (const auto& c : cases) {
    const json live = c.managed_fields.is_null() ? desired : with_managed_fields(desired, c.managed_fields);
    EXPECT_EQ(drops_applied_field(desired, live, kManager), c.drops) << c.name;
    EXPECT_EQ(needs_apply(desired, live, kManager), c.drops) << c.name;  // live == desired otherwise
  }
}

TEST(PoolAppliedFields, RemovedEnvVarOfARenderedDeploymentIsNoticed) {
  const json before = minimal_pool_with(R"({"spec": {"template": {"spec": {"containers": [
      {"name": "app", "image": "i", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]}}}})");
  const json after = minimal_pool_with(R"({"spec": {"template": {"spec": {"containers": [
      {"name": "app", "image": "i", "env": [{"name": "A", "value": "1"}]}]}}}})");
  const json applied = render(before, test_defaults()).deployment;
  const json desired = render(after, test_defaults()).deployment;
  // What the server recorded for the first apply (only the part that matters here).
  const json live = with_managed_fields(applied, json::array({apply_entry(R"({"f:spec": {"f:template": {"f:spec": {
      "f:containers": {"k:{\"name\":\"app\"}": {"f:env": {
          "k:{\"name\":\"A\"}": {".": {}, "f:name": {}, "f:value": {}},
          "k:{\"name\":\"B\"}": {".": {}, "f:name": {}, "f:value": {}},
          "k:{\"name\":\"GASOLINE_API_URL\"}": {".": {}, "f:name": {}, "f:value": {}}}}}}}}})", "apps/v1")}));
  // The env array got shorter, so this one semantic_subset already sees; the managed fields agree.
  EXPECT_TRUE(needs_apply(desired, live, kManager));
  EXPECT_TRUE(drops_applied_field(desired, live, kManager));
  EXPECT_FALSE(needs_apply(applied, live, kManager));
}

TEST(PoolAppliedFields, RemovedNodeSelectorIsNoticedOnlyThroughManagedFields) {
  const json before = minimal_pool_with(R"({"spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd"}}}}})");
  const json applied = render(before, test_defaults()).deployment;
  const json desired = render(testing::minimal_pool(), test_defaults()).deployment;
  const json live = with_managed_fields(applied, json::array({apply_entry(R"({"f:spec": {"f:template": {"f:spec": {
      "f:nodeSelector": {"f:disk": {}}}}}})", "apps/v1")}));
  EXPECT_TRUE(semantic_subset(desired, live));  // the removal is invisible to it
  EXPECT_TRUE(needs_apply(desired, live, kManager));
  EXPECT_FALSE(needs_apply(applied, live, kManager));
}

// Found by fuzz_pool: managedFields entries (or a desired apiVersion) of the wrong type made needs_apply throw
// json's type_error. An entry whose identity fields are not strings is not ours; once it is ours, an unreadable
// field means the apply is sent.
TEST(PoolAppliedFields, FieldsOfTheWrongTypeDoNotThrow) {
  const json desired = json::parse(R"({"apiVersion": "v1", "kind": "ConfigMap"})");
  const auto live_with = [&](const char* entries) {
    json live = desired;
    live["metadata"]["managedFields"] = json::parse(entries);
    return live;
  };
  EXPECT_FALSE(needs_apply(desired, live_with(R"([{"manager": 7, "operation": "Apply"}, {"manager": null}])"), kManager));
  EXPECT_FALSE(needs_apply(desired, live_with(R"([{"manager": "gasoline-operator", "operation": ["Apply"]}])"), kManager));
  EXPECT_FALSE(needs_apply(
      desired, live_with(R"([{"manager": "gasoline-operator", "operation": "Apply", "subresource": 1}])"), kManager));
  EXPECT_TRUE(needs_apply(desired,
                          live_with(R"([{"manager": "gasoline-operator", "operation": "Apply", "apiVersion": 1,
                                         "fieldsV1": {}}])"),
                          kManager));
  EXPECT_TRUE(needs_apply(desired,
                          live_with(R"([{"manager": "gasoline-operator", "operation": "Apply", "apiVersion": "v1",
                                         "fieldsType": 2, "fieldsV1": {}}])"),
                          kManager));
  json odd = desired;
  odd["apiVersion"] = 1;
  json live = live_with(R"([{"manager": "gasoline-operator", "operation": "Apply", "apiVersion": "v1", "fieldsV1": {}}])");
  live["apiVersion"] = 1;
  EXPECT_TRUE(needs_apply(odd, live, kManager));
  EXPECT_NO_THROW((void)drops_applied_field(json::array(), live, kManager));
}

// Autoscaling turned on: the rendered Deployment leaves replicas out, and applying that would delete the field our
// earlier apply set (one pod). Until another manager (the HPA, through /scale) owns it, the live value is kept.
TEST(PoolAppliedFields, ReplicasAreKeptUntilTheHpaOwnsThem) {
  const json rendered = json::parse(R"({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {}}})");
  json live = json::parse(R"({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 3}})");
  json ours = apply_entry(R"({"f:spec": {"f:replicas": {}, "f:template": {}}})", "apps/v1");
  json ours_without_replicas = apply_entry(R"({"f:spec": {"f:template": {}}})", "apps/v1");
  json hpa_scale = {{"manager", "kube-controller-manager"}, {"operation", "Update"}, {"apiVersion", "apps/v1"},
                    {"subresource", "scale"}, {"fieldsType", "FieldsV1"},
                    {"fieldsV1", {{"f:spec", {{"f:replicas", json::object()}}}}}};
  struct Case {
    const char* name;
    json live;
    json want_replicas;  // null: left out
  };
  const Case cases[] = {
      {"our last apply set replicas: keep the live value", with_managed_fields(live, json::array({ours})), 3},
      {"the HPA took replicas over: leave them out",
       with_managed_fields(live, json::array({ours_without_replicas, hpa_scale})), nullptr},
      {"no managedFields (we never applied)", live, nullptr},
      {"another manager's apply set them", with_managed_fields(live, json::array({[&] {
                                              json e = ours;
                                              e["manager"] = "kubectl";
                                              return e;
                                            }()})),
       nullptr},
      {"live replicas missing", with_managed_fields(json::parse(R"({"spec": {}})"), json::array({ours})), nullptr},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    json d = rendered;
    keep_replicas_until_the_hpa_owns_them(d, c.live, kManager);
    if (c.want_replicas.is_null()) {
      EXPECT_FALSE(d["spec"].contains("replicas"));
    } else {
      EXPECT_EQ(d["spec"]["replicas"], c.want_replicas);
    }
    EXPECT_EQ(d["spec"]["template"], json::object());  // nothing else touched
  }
  // A Deployment that sets replicas itself (autoscaling off) is left as rendered.
  json fixed = json::parse(R"({"spec": {"replicas": 5}})");
  keep_replicas_until_the_hpa_owns_them(fixed, with_managed_fields(live, json::array({ours})), kManager);
  EXPECT_EQ(fixed["spec"]["replicas"], 5);
}

}  // namespace
}  // namespace gasoline::op::pool
