// semantic_subset and the quantity arithmetic behind it: one table row per rule documented in compare.h, each
// modelled on something the API server does to the objects we apply.
#include <gtest/gtest.h>

#include "operator/pool/compare.h"
#include "operator/pool/quantity.h"

namespace gasoline::op::pool {
namespace {

using nlohmann::json;

TEST(PoolQuantity, EqualByValue) {
  const struct {
    const char* a;
    const char* b;
    bool same;
  } cases[] = {
      {"0.5", "500m", true},       // the server's canonical form of a fraction
      {".5", "500m", true},        {"1", "1000m", true},
      {"1Gi", "1024Mi", true},     {"1Gi", "1073741824", true},
      {"1Ki", "1024", true},       {"1k", "1000", true},
      {"1e3", "1k", true},         {"1E3", "1000", true},
      {"1.5Gi", "1536Mi", true},   {"0.1", "100m", true},
      {"100u", "0.1m", true},      {"1n", "0.001u", true},
      {"+1", "1", true},           {"0", "-0", true},
      {"0", "0Gi", true},          {"128Mi", "134217728", true},
      {"1M", "1e6", true},         {"5.", "5", true},
      {"1E", "1e18", true},        {"12e-1", "1.2", true},
      {"1G", "1Gi", false},        // decimal and binary giga differ
      {"1", "1.0000000000000001", false},
      {"1", "-1", false},          {"500m", "0.51", false},
      {"1Mi", "1M", false},
  };
  for (const auto& c : cases) EXPECT_EQ(same_quantity(c.a, c.b), c.same) << c.a << " vs " << c.b;
}

TEST(PoolQuantity, RejectsWhatIsNotAQuantity) {
  for (const char* text : {"", "abc", "1Gb", "1.2.3", "Gi", "-", ".", "1e", "1e+", "1ee3", "1 Gi", "1Kii", "0x10",
                           "1e99999999999"}) {
    EXPECT_FALSE(parse_quantity(text).has_value()) << text;
  }
  EXPECT_FALSE(same_quantity("abc", "abc"));  // not quantities: the caller falls back to string equality
}

TEST(PoolQuantity, ExactForm) {
  const auto q = parse_quantity("1.5Gi");
  ASSERT_TRUE(q.has_value());
  // 1.5 * 2^30 = 3 * 2^29
  EXPECT_EQ(q->odd_part, "3");
  EXPECT_EQ(q->twos, 29);
  EXPECT_EQ(q->fives, 0);
  EXPECT_FALSE(q->negative);
}

TEST(PoolSemanticSubset, Rules) {
  const struct {
    const char* name;
    const char* desired;
    const char* live;
    bool subset;
  } cases[] = {
      // objects
      {"equal objects", R"({"a": 1})", R"({"a": 1})", true},
      {"server-added keys are fine", R"({"a": 1})", R"({"a": 1, "resourceVersion": "7", "status": {}})", true},
      {"nested server defaults", R"({"httpGet": {"path": "/readyz", "port": "gasoline-admin"}})",
       R"({"httpGet": {"path": "/readyz", "port": "gasoline-admin", "scheme": "HTTP"}, "timeoutSeconds": 1})", true},
      {"missing key", R"({"a": 1, "b": 2})", R"({"a": 1})", false},
      {"different value", R"({"a": 1})", R"({"a": 2})", false},
      {"object vs scalar", R"({"a": {"b": 1}})", R"({"a": 1})", false},
      // values the server drops because Go's omitempty does
      {"null matches absent", R"({"a": null})", R"({})", true},
      {"null does not match a value", R"({"a": null})", R"({"a": 1})", false},
      {"empty string matches absent (env value \"\")", R"({"name": "X", "value": ""})", R"({"name": "X"})", true},
      {"empty array matches absent", R"({"args": []})", R"({})", true},
      {"empty map matches absent", R"({"metadata": {"annotations": {}}})", R"({"metadata": {}})", true},
      {"empty resource list matches absent", R"({"resources": {"limits": {}}})", R"({"resources": {}})", true},
      {"empty pointer struct must be there", R"({"name": "cache", "emptyDir": {}})",
       R"({"name": "cache", "configMap": {"name": "c"}})", false},
      {"empty pointer struct present", R"({"emptyDir": {}})", R"({"emptyDir": {}})", true},
      {"false is not absent", R"({"automountServiceAccountToken": false})", R"({})", false},
      {"zero is not absent", R"({"terminationGracePeriodSeconds": 0})", R"({})", false},
      // arrays
      {"equal arrays", R"([1, 2])", R"([1, 2])", true},
      {"element-wise subset", R"([{"name": "a"}])", R"([{"name": "a", "protocol": "TCP"}])", true},
      {"longer live array", R"([1])", R"([1, 2])", false},
      {"shorter live array", R"([1, 2])", R"([1])", false},
      {"order matters", R"([1, 2])", R"([2, 1])", false},
      {"array vs object", R"([])", R"({})", false},
      // numbers
      {"integer equals float of the same value", R"({"a": 1})", R"({"a": 1.0})", true},
      {"float equals integer of the same value", R"({"a": 2.0})", R"({"a": 2})", true},
      {"negative integers", R"({"a": -3})", R"({"a": -3})", true},
      {"signed vs unsigned", R"({"a": -1})", R"({"a": 18446744073709551615})", false},
      {"different floats", R"({"a": 0.5})", R"({"a": 0.25})", false},
      // int-or-string and strings
      {"port number vs port string", R"({"port": 8080})", R"({"port": "8080"})", false},
      {"maxUnavailable 1 vs \"1\"", R"({"maxUnavailable": 1})", R"({"maxUnavailable": "1"})", false},
      {"maxUnavailable percent", R"({"maxUnavailable": "25%"})", R"({"maxUnavailable": "25%"})", true},
      {"string vs bool", R"({"a": "true"})", R"({"a": true})", false},
      {"quantity-looking strings elsewhere are plain strings", R"({"env": [{"name": "M", "value": "1Gi"}]})",
       R"({"env": [{"name": "M", "value": "1024Mi"}]})", false},
      // quantities
      {"canonical cpu", R"({"resources": {"requests": {"cpu": "0.5"}}})",
       R"({"resources": {"requests": {"cpu": "500m"}}})", true},
      {"binary memory", R"({"resources": {"limits": {"memory": "1Gi"}}})",
       R"({"resources": {"limits": {"memory": "1024Mi"}}})", true},
      {"numeric cpu", R"({"resources": {"requests": {"cpu": 1}}})", R"({"resources": {"requests": {"cpu": "1"}}})",
       true},
      {"numeric fractional cpu", R"({"resources": {"requests": {"cpu": 0.25}}})",
       R"({"resources": {"requests": {"cpu": "250m"}}})", true},
      {"different quantity", R"({"resources": {"requests": {"cpu": "0.5"}}})",
       R"({"resources": {"requests": {"cpu": "600m"}}})", false},
      {"decimal vs binary giga", R"({"resources": {"limits": {"memory": "1G"}}})",
       R"({"resources": {"limits": {"memory": "1Gi"}}})", false},
      {"pod overhead", R"({"overhead": {"cpu": "0.1"}})", R"({"overhead": {"cpu": "100m"}})", true},
      {"emptyDir sizeLimit", R"({"emptyDir": {"sizeLimit": "1Gi"}})", R"({"emptyDir": {"sizeLimit": "1024Mi"}})",
       true},
      {"missing quantity", R"({"resources": {"requests": {"cpu": "1"}}})", R"({"resources": {"requests": {}}})",
       false},
      {"not a quantity falls back to equality", R"({"resources": {"requests": {"cpu": "lots"}}})",
       R"({"resources": {"requests": {"cpu": "lots"}}})", true},
      // scalars at the root
      {"equal strings", R"("a")", R"("a")", true},
      {"null vs null", R"(null)", R"(null)", true},
      {"null vs value", R"(null)", R"(1)", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(semantic_subset(json::parse(c.desired), json::parse(c.live)), c.subset) << c.name;
  }
}

TEST(PoolSemanticSubset, DoesNotModifyItsInputs) {
  const json desired = json::parse(R"({"a": {"b": [1, {"c": null}]}, "labels": {}})");
  const json live = json::parse(R"({"a": {"b": [1.0, {}]}})");
  const json desired_before = desired, live_before = live;
  EXPECT_TRUE(semantic_subset(desired, live));
  EXPECT_EQ(desired, desired_before);
  EXPECT_EQ(live, live_before);
}

}  // namespace
}  // namespace gasoline::op::pool
