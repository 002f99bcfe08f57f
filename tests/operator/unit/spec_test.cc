// parse_spec and kv_pool_name: every default of docs/pool-spec.md, and one clear, field-named error per CRD rule (type,
// range, pattern, CEL) plus the extra checks parse_spec makes so that a bad pool fails before it becomes a bad
// Deployment.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "operator/pool/spec.h"
#include "tests/operator/unit/fixtures.h"

namespace gasoline::op::pool {
namespace {

using nlohmann::json;
using testing::minimal_pool;
using testing::minimal_pool_with;
using testing::test_defaults;

TEST(PoolParseSpec, AppliesEverySpecDefault) {
  const Spec s = parse_spec(minimal_pool(), test_defaults());
  EXPECT_EQ(s.name, "orders");
  EXPECT_EQ(s.namespace_name, "shop");
  EXPECT_EQ(s.uid, "uid-1");
  EXPECT_EQ(s.generation, 4);
  EXPECT_EQ(s.workflows, std::vector<std::string>{"checkout"});
  EXPECT_EQ(s.replicas, 1);
  EXPECT_TRUE(s.template_labels.empty());
  EXPECT_TRUE(s.template_annotations.empty());
  EXPECT_EQ(s.app_container, "app");
  EXPECT_TRUE(s.selector_labels.empty());
  EXPECT_EQ(s.sidecar.image, "registry.example/gasoline/gasoline-worker:0.1.0");
  EXPECT_EQ(s.sidecar.image_pull_policy, "IfNotPresent");
  EXPECT_EQ(s.sidecar.resources, json::parse(R"({"requests": {"cpu": "50m", "memory": "64Mi"},
                                                 "limits": {"memory": "128Mi"}})"));
  EXPECT_EQ(s.sidecar.concurrency, 32);
  EXPECT_EQ(s.sidecar.ping_interval, "500ms");
  EXPECT_EQ(s.sidecar.api_port, 7480);
  EXPECT_EQ(s.sidecar.admin_port, 7481);
  EXPECT_EQ(s.sidecar.shed_start_percent, 50);
  EXPECT_EQ(s.sidecar.shed_end_percent, 80);
  EXPECT_EQ(s.sidecar.shed_min_ratio_permille, 100);
  EXPECT_EQ(s.kv.address, "gasoline-kv.gasoline-system.svc:7400");
  EXPECT_EQ(s.kv.pool, "shop.orders");
  EXPECT_EQ(s.kv.token_secret_name, "gasoline-kv-token");
  EXPECT_EQ(s.kv.token_secret_key, "token");
  EXPECT_TRUE(s.autoscaling.enabled);
  EXPECT_EQ(s.autoscaling.min_replicas, 1);
  EXPECT_EQ(s.autoscaling.max_replicas, 10);
  EXPECT_EQ(s.autoscaling.target_cpu_utilization_percentage, 70);
  EXPECT_EQ(s.autoscaling.behavior, json::parse(R"({
      "scaleDown": {"stabilizationWindowSeconds": 300, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
      "scaleUp": {"stabilizationWindowSeconds": 0}})"));
  EXPECT_TRUE(s.disruption.enabled);
  EXPECT_EQ(s.disruption.max_unavailable, json(1));
  EXPECT_EQ(s.drain.timeout_seconds, 30);
  EXPECT_EQ(s.drain.termination_grace_period_seconds, 45);
  EXPECT_FALSE(s.paused);
}

TEST(PoolParseSpec, KeepsExplicitValues) {
  const Spec s = parse_spec(minimal_pool_with(R"({"spec": {
      "workflows": ["a", "b"], "replicas": 0, "appContainer": "app", "paused": true,
      "selectorLabels": {"example.com/shard": "eu-1"},
      "sidecar": {"image": "own:1", "imagePullPolicy": "Never", "resources": {}, "concurrency": 4096,
                  "pingInterval": "2m", "apiPort": 1, "adminPort": 65535,
                  "shedding": {"startPercent": 0, "endPercent": 100, "minRatioPermille": 0}},
      "kv": {"address": "kv:1", "pool": "shop.p", "tokenSecretRef": {"name": "s", "key": "k"}},
      "autoscaling": {"enabled": false, "minReplicas": 3, "maxReplicas": 3, "targetCPUUtilizationPercentage": 1000,
                      "behavior": {}},
      "disruption": {"enabled": false, "maxUnavailable": "100%"},
      "drain": {"timeoutSeconds": 3600, "terminationGracePeriodSeconds": 3605}}})"),
                            test_defaults());
  EXPECT_EQ(s.workflows, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(s.replicas, 0);
  EXPECT_TRUE(s.paused);
  EXPECT_EQ(s.selector_labels, (Labels{{"example.com/shard", "eu-1"}}));
  EXPECT_EQ(s.sidecar.image, "own:1");
  EXPECT_EQ(s.sidecar.image_pull_policy, "Never");
  EXPECT_EQ(s.sidecar.resources, json::object());
  EXPECT_EQ(s.sidecar.concurrency, 4096);
  EXPECT_EQ(s.sidecar.ping_interval, "2m");
  EXPECT_EQ(s.sidecar.api_port, 1);
  EXPECT_EQ(s.sidecar.admin_port, 65535);
  EXPECT_EQ(s.sidecar.shed_start_percent, 0);
  EXPECT_EQ(s.sidecar.shed_end_percent, 100);
  EXPECT_EQ(s.sidecar.shed_min_ratio_permille, 0);
  EXPECT_EQ(s.kv.address, "kv:1");
  EXPECT_EQ(s.kv.pool, "shop.p");
  EXPECT_EQ(s.kv.token_secret_name, "s");
  EXPECT_EQ(s.kv.token_secret_key, "k");
  EXPECT_FALSE(s.autoscaling.enabled);
  EXPECT_EQ(s.autoscaling.min_replicas, 3);
  EXPECT_EQ(s.autoscaling.max_replicas, 3);
  EXPECT_EQ(s.autoscaling.target_cpu_utilization_percentage, 1000);
  EXPECT_EQ(s.autoscaling.behavior, json::object());
  EXPECT_FALSE(s.disruption.enabled);
  EXPECT_EQ(s.disruption.max_unavailable, json("100%"));
  EXPECT_EQ(s.drain.timeout_seconds, 3600);
  EXPECT_EQ(s.drain.termination_grace_period_seconds, 3605);
}

TEST(PoolParseSpec, NullMeansAbsent) {
  // The API server prunes nulls of non-nullable fields; a hand-written null must get the default too.
  const Spec s = parse_spec(minimal_pool_with(R"({"spec": {"replicas": null}})"), test_defaults());
  EXPECT_EQ(s.replicas, 1);
  json pool = minimal_pool();
  pool["spec"]["sidecar"] = {{"concurrency", nullptr}};
  EXPECT_EQ(parse_spec(pool, test_defaults()).sidecar.concurrency, 32);
}

TEST(PoolParseSpec, IntegralFloatsCountAsIntegers) {
  EXPECT_EQ(parse_spec(minimal_pool_with(R"({"spec": {"replicas": 3.0}})"), test_defaults()).replicas, 3);
}

TEST(PoolParseSpec, GracePeriodSources) {
  const struct {
    const char* name;
    const char* patch;
    int margin;
    int64_t want;
  } cases[] = {
      {"default is timeout plus margin", R"({})", 15, 45},
      {"margin follows the operator flag", R"({"spec": {"drain": {"timeoutSeconds": 100}}})", 20, 120},
      {"a margin below 5 s is raised to 5 s", R"({})", 1, 35},
      {"drain.terminationGracePeriodSeconds wins", R"({"spec": {"drain": {"terminationGracePeriodSeconds": 40},
          "template": {"spec": {"terminationGracePeriodSeconds": 90}}}})", 15, 40},
      {"the template's own value is kept", R"({"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 90}}}})",
       15, 90},
      {"exactly timeout + 5 is enough", R"({"spec": {"drain": {"terminationGracePeriodSeconds": 35}}})", 15, 35},
  };
  for (const auto& c : cases) {
    Defaults d = test_defaults();
    d.drain_margin_seconds = c.margin;
    EXPECT_EQ(parse_spec(minimal_pool_with(c.patch), d).drain.termination_grace_period_seconds, c.want) << c.name;
  }
}

std::string error_of(const json& pool, const Defaults& defaults) {
  try {
    parse_spec(pool, defaults);
  } catch (const SpecError& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(PoolParseSpec, Errors) {
  const std::string long_name(64, 'a');
  const std::string long_workflow(129, 'w');
  json too_many_workflows = json::array();
  for (int i = 0; i < 257; ++i) too_many_workflows.push_back("wf-" + std::to_string(i));
  json too_many_labels = json::object();
  for (int i = 0; i < 17; ++i) too_many_labels["l" + std::to_string(i)] = "v";

  const struct {
    const char* name;
    json patch;
    std::string want;
  } cases[] = {
      // metadata
      {"name missing", {{"metadata", {{"name", nullptr}}}}, "metadata.name: required"},
      {"name not a string", {{"metadata", {{"name", 7}}}}, "metadata.name: must be a string, got integer 7"},
      {"name upper case", {{"metadata", {{"name", "Orders"}}}},
       "metadata.name: \"Orders\" must be a DNS-1035 label (at most 63 lowercase alphanumerics or '-', starting with "
       "a letter and ending with an alphanumeric): it names the Service and is the value of the "
       "app.kubernetes.io/instance label"},
      {"name too long for a label", {{"metadata", {{"name", long_name}}}},
       "metadata.name: \"" + long_name +
           "\" must be a DNS-1035 label (at most 63 lowercase alphanumerics or '-', starting with a letter and ending "
           "with an alphanumeric): it names the Service and is the value of the app.kubernetes.io/instance label"},
      {"namespace missing", {{"metadata", {{"namespace", nullptr}}}}, "metadata.namespace: required"},
      {"uid empty", {{"metadata", {{"uid", ""}}}}, "metadata.uid: must not be empty"},
      {"generation negative", {{"metadata", {{"generation", -1}}}}, "metadata.generation: must be >= 0, got -1"},
      {"metadata not an object", {{"metadata", "x"}}, "metadata: must be an object, got string \"x\""},
      // spec
      {"spec missing", {{"spec", nullptr}}, "spec: required"},
      {"spec not an object", {{"spec", json::array()}}, "spec: must be an object, got an array"},
      {"workflows missing", {{"spec", {{"workflows", nullptr}}}}, "spec.workflows: required"},
      {"workflows empty", {{"spec", {{"workflows", json::array()}}}},
       "spec.workflows: must list at least one workflow"},
      {"workflows a string", {{"spec", {{"workflows", "checkout"}}}},
       "spec.workflows: must be an array, got string \"checkout\""},
      {"workflow not a string", {{"spec", {{"workflows", {3}}}}}, "spec.workflows[0]: must be a string, got integer 3"},
      {"workflow empty", {{"spec", {{"workflows", {"a", ""}}}}}, "spec.workflows[1]: must not be empty"},
      {"workflow too long", {{"spec", {{"workflows", {long_workflow}}}}},
       "spec.workflows[0]: must be at most 128 characters, got 129"},
      {"workflow with a comma", {{"spec", {{"workflows", {"a,b"}}}}},
       "spec.workflows[0]: must not contain ',': the sidecar gets the names as a comma-separated list "
       "(GASOLINE_WORKFLOWS)"},
      {"too many workflows", {{"spec", {{"workflows", too_many_workflows}}}},
       "spec.workflows: must list at most 256 workflows, got 257"},
      {"replicas negative", {{"spec", {{"replicas", -1}}}}, "spec.replicas: must be >= 0, got -1"},
      {"replicas a string", {{"spec", {{"replicas", "3"}}}}, "spec.replicas: must be an integer, got string \"3\""},
      {"replicas fractional", {{"spec", {{"replicas", 2.5}}}}, "spec.replicas: must be an integer, got number 2.5"},
      {"replicas beyond int32", {{"spec", {{"replicas", 2147483648LL}}}},
       "spec.replicas: must be >= 0, got 2147483648"},
      {"paused a string", {{"spec", {{"paused", "true"}}}}, "spec.paused: must be a boolean, got string \"true\""},
      // template
      {"template missing", {{"spec", {{"template", nullptr}}}}, "spec.template: required"},
      {"template.spec missing", {{"spec", {{"template", {{"spec", nullptr}}}}}}, "spec.template.spec: required"},
      {"containers missing", {{"spec", {{"template", {{"spec", {{"containers", nullptr}}}}}}}},
       "spec.template.spec.containers: required"},
      {"containers empty", {{"spec", {{"template", {{"spec", {{"containers", json::array()}}}}}}}},
       "spec.template.spec.containers: must list at least one container"},
      {"container without image", {{"spec", {{"template", {{"spec", {{"containers", {{{"name", "app"}}}}}}}}}}},
       "spec.template.spec.containers[0].image: required"},
      {"container without name", {{"spec", {{"template", {{"spec", {{"containers", {{{"image", "i"}}}}}}}}}}},
       "spec.template.spec.containers[0].name: required"},
      {"container named like the sidecar",
       {{"spec", {{"template", {{"spec", {{"containers", {{{"name", "gasoline-worker"}, {"image", "i"}}}}}}}}}}},
       "spec.template.spec.containers[0].name: \"gasoline-worker\" is reserved for the sidecar container the "
       "operator adds"},
      {"two containers with one name",
       {{"spec",
         {{"template",
           {{"spec", {{"containers", {{{"name", "app"}, {"image", "i"}}, {{"name", "app"}, {"image", "j"}}}}}}}}}}},
       "spec.template.spec.containers[1].name: \"app\" names two containers"},
      {"container env not a list",
       {{"spec",
         {{"template", {{"spec", {{"containers", {{{"name", "app"}, {"image", "i"}, {"env", {{"A", "1"}}}}}}}}}}}}},
       "spec.template.spec.containers[0].env: must be an array, got an object"},
      {"init container named like the sidecar",
       {{"spec", {{"template", {{"spec", {{"initContainers", {{{"name", "gasoline-worker"}, {"image", "i"}}}}}}}}}}},
       "spec.template.spec.initContainers[0].name: \"gasoline-worker\" is reserved for the sidecar container the "
       "operator adds"},
      {"volume named like the token volume",
       {{"spec", {{"template", {{"spec", {{"volumes", {{{"name", "gasoline-kv-token"}, {"emptyDir", json::object()}}}}}}}}}}},
       "spec.template.spec.volumes[0].name: \"gasoline-kv-token\" is reserved for the kv token volume the operator "
       "adds"},
      {"template label not a string", {{"spec", {{"template", {{"metadata", {{"labels", {{"team", 1}}}}}}}}}},
       "spec.template.metadata.labels.team: must be a string, got integer 1"},
      {"template annotations a list", {{"spec", {{"template", {{"metadata", {{"annotations", {"a"}}}}}}}}},
       "spec.template.metadata.annotations: must be an object, got an array"},
      {"appContainer unknown", {{"spec", {{"appContainer", "web"}}}},
       "spec.appContainer: \"web\" is not a container of spec.template.spec.containers (app)"},
      // selectorLabels
      {"selector label sets the name label", {{"spec", {{"selectorLabels", {{"app.kubernetes.io/name", "x"}}}}}},
       "spec.selectorLabels[\"app.kubernetes.io/name\"]: the operator sets this selector label itself (to select the "
       "pool's pods)"},
      {"selector label sets the instance label",
       {{"spec", {{"selectorLabels", {{"app.kubernetes.io/instance", "x"}}}}}},
       "spec.selectorLabels[\"app.kubernetes.io/instance\"]: the operator sets this selector label itself (to select "
       "the pool's pods)"},
      {"selector label key invalid", {{"spec", {{"selectorLabels", {{"Bad_Prefix/x", "v"}}}}}},
       "spec.selectorLabels[\"Bad_Prefix/x\"]: the prefix of label key \"Bad_Prefix/x\" must be a DNS subdomain "
       "(lowercase alphanumerics, '-' and '.', at most 253 characters)"},
      {"selector label name invalid", {{"spec", {{"selectorLabels", {{"-x", "v"}}}}}},
       "spec.selectorLabels[\"-x\"]: label key \"-x\" must be at most 63 alphanumerics, '-', '_' or '.' (after an "
       "optional prefix/), starting and ending with an alphanumeric"},
      {"selector label value invalid", {{"spec", {{"selectorLabels", {{"shard", "eu 1"}}}}}},
       "spec.selectorLabels.shard: label value \"eu 1\" must be at most 63 alphanumerics, '-', '_' or '.', starting "
       "and ending with an alphanumeric"},
      {"selector label value not a string", {{"spec", {{"selectorLabels", {{"shard", 1}}}}}},
       "spec.selectorLabels.shard: must be a string, got integer 1"},
      {"too many selector labels", {{"spec", {{"selectorLabels", too_many_labels}}}},
       "spec.selectorLabels: must have at most 16 labels, got 17"},
      // sidecar
      {"sidecar not an object", {{"spec", {{"sidecar", "x"}}}}, "spec.sidecar: must be an object, got string \"x\""},
      {"pull policy unknown", {{"spec", {{"sidecar", {{"imagePullPolicy", "Sometimes"}}}}}},
       "spec.sidecar.imagePullPolicy: must be Always, IfNotPresent or Never, got \"Sometimes\""},
      {"sidecar resources a string", {{"spec", {{"sidecar", {{"resources", "small"}}}}}},
       "spec.sidecar.resources: must be an object, got string \"small\""},
      {"concurrency zero", {{"spec", {{"sidecar", {{"concurrency", 0}}}}}},
       "spec.sidecar.concurrency: must be between 1 and 4096, got 0"},
      {"concurrency too high", {{"spec", {{"sidecar", {{"concurrency", 4097}}}}}},
       "spec.sidecar.concurrency: must be between 1 and 4096, got 4097"},
      {"ping interval in hours", {{"spec", {{"sidecar", {{"pingInterval", "1h"}}}}}},
       "spec.sidecar.pingInterval: must be a whole number of ms, s or m such as 500ms or 2s, got \"1h\""},
      {"ping interval without unit", {{"spec", {{"sidecar", {{"pingInterval", "500"}}}}}},
       "spec.sidecar.pingInterval: must be a whole number of ms, s or m such as 500ms or 2s, got \"500\""},
      {"api port zero", {{"spec", {{"sidecar", {{"apiPort", 0}}}}}},
       "spec.sidecar.apiPort: must be between 1 and 65535, got 0"},
      {"admin port too high", {{"spec", {{"sidecar", {{"adminPort", 70000}}}}}},
       "spec.sidecar.adminPort: must be between 1 and 65535, got 70000"},
      {"ports collide", {{"spec", {{"sidecar", {{"apiPort", 9000}, {"adminPort", 9000}}}}}},
       "spec.sidecar.adminPort: must differ from apiPort (both are 9000): the sidecar listens on both in the pod's "
       "network namespace"},
      {"shedding start not below end", {{"spec", {{"sidecar", {{"shedding", {{"startPercent", 80}}}}}}}},
       "spec.sidecar.shedding.startPercent: must be < endPercent (80 >= 80)"},
      {"shedding start above end", {{"spec", {{"sidecar", {{"shedding", {{"startPercent", 90.5}}}}}}}},
       "spec.sidecar.shedding.startPercent: must be < endPercent (90.5 >= 80)"},
      {"shedding end above 100", {{"spec", {{"sidecar", {{"shedding", {{"endPercent", 101}}}}}}}},
       "spec.sidecar.shedding.endPercent: must be between 0 and 100, got 101"},
      {"shedding start a string", {{"spec", {{"sidecar", {{"shedding", {{"startPercent", "50"}}}}}}}},
       "spec.sidecar.shedding.startPercent: must be a number, got string \"50\""},
      {"min ratio above 1000", {{"spec", {{"sidecar", {{"shedding", {{"minRatioPermille", 1001}}}}}}}},
       "spec.sidecar.shedding.minRatioPermille: must be between 0 and 1000, got 1001"},
      // kv
      {"kv pool empty", {{"spec", {{"kv", {{"pool", ""}}}}}}, "spec.kv.pool: must not be empty"},
      {"token secret name empty", {{"spec", {{"kv", {{"tokenSecretRef", {{"name", ""}}}}}}}},
       "spec.kv.tokenSecretRef.name: must not be empty"},
      {"token secret key a number", {{"spec", {{"kv", {{"tokenSecretRef", {{"key", 1}}}}}}}},
       "spec.kv.tokenSecretRef.key: must be a string, got integer 1"},
      // autoscaling
      {"min above max", {{"spec", {{"autoscaling", {{"minReplicas", 3}, {"maxReplicas", 2}}}}}},
       "spec.autoscaling.minReplicas: must be <= maxReplicas (3 > 2)"},
      {"min above max while disabled",
       {{"spec", {{"autoscaling", {{"enabled", false}, {"minReplicas", 11}}}}}},
       "spec.autoscaling.minReplicas: must be <= maxReplicas (11 > 10)"},
      {"min zero", {{"spec", {{"autoscaling", {{"minReplicas", 0}}}}}},
       "spec.autoscaling.minReplicas: must be >= 1, got 0"},
      {"target zero", {{"spec", {{"autoscaling", {{"targetCPUUtilizationPercentage", 0}}}}}},
       "spec.autoscaling.targetCPUUtilizationPercentage: must be between 1 and 1000, got 0"},
      {"enabled a string", {{"spec", {{"autoscaling", {{"enabled", "yes"}}}}}},
       "spec.autoscaling.enabled: must be a boolean, got string \"yes\""},
      {"behavior a list", {{"spec", {{"autoscaling", {{"behavior", json::array()}}}}}},
       "spec.autoscaling.behavior: must be an object, got an array"},
      // disruption
      {"maxUnavailable a digit string", {{"spec", {{"disruption", {{"maxUnavailable", "1"}}}}}},
       "spec.disruption.maxUnavailable: must be an integer or a percentage from \"0%\" to \"100%\", got string "
       "\"1\""},
      {"maxUnavailable above 100%", {{"spec", {{"disruption", {{"maxUnavailable", "150%"}}}}}},
       "spec.disruption.maxUnavailable: must be an integer or a percentage from \"0%\" to \"100%\", got string "
       "\"150%\""},
      {"maxUnavailable negative", {{"spec", {{"disruption", {{"maxUnavailable", -1}}}}}},
       "spec.disruption.maxUnavailable: must be >= 1, got -1"},
      // A budget that allows no eviction blocks every node drain.
      {"maxUnavailable zero", {{"spec", {{"disruption", {{"maxUnavailable", 0}}}}}},
       "spec.disruption.maxUnavailable: must be >= 1, got 0"},
      {"maxUnavailable 0%", {{"spec", {{"disruption", {{"maxUnavailable", "0%"}}}}}},
       "spec.disruption.maxUnavailable: must allow at least one pod to be evicted, got string \"0%\": a budget of 0 "
       "blocks every node drain"},
      // Creating a pool is creating pods: nothing that reaches into the node.
      {"hostNetwork", {{"spec", {{"template", {{"spec", {{"hostNetwork", true}}}}}}}},
       "spec.template.spec.hostNetwork: is not allowed: a pool's pods must not reach into the node (host namespaces, "
       "host paths and privileged containers are refused)"},
      {"hostPID", {{"spec", {{"template", {{"spec", {{"hostPID", true}}}}}}}},
       "spec.template.spec.hostPID: is not allowed: a pool's pods must not reach into the node (host namespaces, "
       "host paths and privileged containers are refused)"},
      {"hostIPC", {{"spec", {{"template", {{"spec", {{"hostIPC", true}}}}}}}},
       "spec.template.spec.hostIPC: is not allowed: a pool's pods must not reach into the node (host namespaces, "
       "host paths and privileged containers are refused)"},
      {"hostPath volume",
       {{"spec", {{"template", {{"spec", {{"volumes", {{{"name", "root"}, {"hostPath", {{"path", "/"}}}}}}}}}}}}},
       "spec.template.spec.volumes[0].hostPath: is not allowed: a pool's pods must not reach into the node (host "
       "namespaces, host paths and privileged containers are refused)"},
      {"privileged container",
       {{"spec", {{"template", {{"spec", {{"containers", {{{"name", "app"}, {"image", "app:1"},
                                                          {"securityContext", {{"privileged", true}}}}}}}}}}}}},
       "spec.template.spec.containers[0].securityContext.privileged: is not allowed: a pool's pods must not reach "
       "into the node (host namespaces, host paths and privileged containers are refused)"},
      {"privileged init container",
       {{"spec", {{"template", {{"spec", {{"initContainers", {{{"name", "init"}, {"image", "i:1"},
                                                              {"securityContext", {{"privileged", true}}}}}}}}}}}}},
       "spec.template.spec.initContainers[0].securityContext.privileged: is not allowed: a pool's pods must not "
       "reach into the node (host namespaces, host paths and privileged containers are refused)"},
      {"maxUnavailable a boolean", {{"spec", {{"disruption", {{"maxUnavailable", true}}}}}},
       "spec.disruption.maxUnavailable: must be an integer, got boolean true"},
      // drain
      {"drain timeout zero", {{"spec", {{"drain", {{"timeoutSeconds", 0}}}}}},
       "spec.drain.timeoutSeconds: must be between 1 and 3600, got 0"},
      {"drain timeout above an hour", {{"spec", {{"drain", {{"timeoutSeconds", 3601}}}}}},
       "spec.drain.timeoutSeconds: must be between 1 and 3600, got 3601"},
      {"grace period too short", {{"spec", {{"drain", {{"terminationGracePeriodSeconds", 20}}}}}},
       "spec.drain.terminationGracePeriodSeconds: the drain timeout must fit inside the grace period with 5 s to "
       "spare (drain.timeoutSeconds 30 + 5 > 20)"},
      {"grace period 1 s short", {{"spec", {{"drain", {{"timeoutSeconds", 60}, {"terminationGracePeriodSeconds", 64}}}}}},
       "spec.drain.terminationGracePeriodSeconds: the drain timeout must fit inside the grace period with 5 s to "
       "spare (drain.timeoutSeconds 60 + 5 > 64)"},
      {"template grace period too short",
       {{"spec", {{"template", {{"spec", {{"terminationGracePeriodSeconds", 10}}}}}}}},
       "spec.template.spec.terminationGracePeriodSeconds: the drain timeout must fit inside the grace period with 5 s "
       "to spare (drain.timeoutSeconds 30 + 5 > 10)"},
      // networkPolicy
      {"network policy enabled not a boolean", {{"spec", {{"networkPolicy", {{"enabled", "yes"}}}}}},
       "spec.networkPolicy.enabled: must be a boolean, got string \"yes\""},
      {"admin peers not a list", {{"spec", {{"networkPolicy", {{"adminFrom", {{"podSelector", json::object()}}}}}}}},
       "spec.networkPolicy.adminFrom: must be an array, got an object"},
      {"admin peer not an object", {{"spec", {{"networkPolicy", {{"adminFrom", {"monitoring"}}}}}}},
       "spec.networkPolicy.adminFrom[0]: must be an object, got string \"monitoring\""},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(error_of(testing::patched(minimal_pool(), c.patch), test_defaults()), c.want) << c.name;
  }
}

TEST(PoolParseSpec, ErrorsFromMissingOperatorDefaults) {
  Defaults no_image = test_defaults();
  no_image.sidecar_image.clear();
  EXPECT_EQ(error_of(minimal_pool(), no_image),
            "spec.sidecar.image: required: the pool does not set it and the operator has no --sidecar-image");
  EXPECT_EQ(parse_spec(minimal_pool_with(R"({"spec": {"sidecar": {"image": "own:1"}}})"), no_image).sidecar.image,
            "own:1");

  Defaults no_kv = test_defaults();
  no_kv.kv_address.clear();
  EXPECT_EQ(error_of(minimal_pool(), no_kv),
            "spec.kv.address: required: the pool does not set it and the operator has no --kv-address");
  EXPECT_EQ(error_of(json("pool"), test_defaults()), "the GasolineWorkerPool must be a JSON object, got string \"pool\"");
}

TEST(PoolKvPoolName, ExplicitOrNamespaceDotName) {
  EXPECT_EQ(kv_pool_name(minimal_pool()), "shop.orders");
  EXPECT_EQ(kv_pool_name(minimal_pool_with(R"({"spec": {"kv": {"pool": "shop.orders-prod"}}})")), "shop.orders-prod");
  // Only the fields it needs: an otherwise invalid spec still has a kv pool name.
  EXPECT_EQ(kv_pool_name(minimal_pool_with(R"({"spec": {"workflows": null, "replicas": -5}})")), "shop.orders");
  EXPECT_THROW(kv_pool_name(minimal_pool_with(R"({"spec": {"kv": {"pool": ""}}})")), SpecError);
  EXPECT_THROW(kv_pool_name(minimal_pool_with(R"({"metadata": {"namespace": null}})")), SpecError);
  EXPECT_THROW(kv_pool_name(json::array()), SpecError);
}

// A tenant who may create pools in namespace shop must not make its pods pull another namespace's work.
TEST(PoolKvPoolName, StaysWithinThePoolsNamespace) {
  for (const char* outside : {"nsB.poolB", "shop", "shop.", "shopping.orders", "orders", ".shop.orders"}) {
    auto pool = testing::patched(minimal_pool(), json{{"spec", {{"kv", {{"pool", outside}}}}}});
    EXPECT_THROW(kv_pool_name(pool), SpecError) << outside;
    EXPECT_EQ(error_of(pool, test_defaults()),
              "spec.kv.pool: must start with \"shop.\" and name a pool after it: kv pools are \"<namespace>.<name>\" "
              "and a pool may only use names of its own namespace, got \"" + std::string(outside) + "\"")
        << outside;
  }
  EXPECT_EQ(parse_spec(minimal_pool_with(R"({"spec": {"kv": {"pool": "shop.orders.eu"}}})"), test_defaults()).kv.pool,
            "shop.orders.eu");
}

// The operator dials a pool's kv with its own token: only --kv-address and --allowed-kv-address qualify.
TEST(PoolKvAddress, OnlyAllowedAddressesAreDialled) {
  const Defaults d = test_defaults();
  EXPECT_EQ(kv_address(minimal_pool(), d), "gasoline-kv.gasoline-system.svc:7400");
  EXPECT_EQ(kv_address(minimal_pool_with(R"({"spec": {"kv": {"address": "kv:1"}}})"), d), "kv:1");
  EXPECT_EQ(kv_address(minimal_pool_with(R"({"spec": {"kv": {"address": "kv-2.kv.gasoline:7400, kv-0.kv.gasoline:7400"}}})"), d),
            "kv-2.kv.gasoline:7400, kv-0.kv.gasoline:7400");
  const std::string refused =
      " is not a kv this operator may connect to (allowed: gasoline-kv.gasoline-system.svc:7400, kv-0.kv.gasoline:7400, "
      "kv-1.kv.gasoline:7400, kv-2.kv.gasoline:7400, kv:1; the operator's --kv-address and --allowed-kv-address): it "
      "would send its kv token there";
  for (const char* address : {"attacker.example:7400", "kv:1,attacker.example:7400", "kv:2", "gasoline-kv:7400"}) {
    auto pool = testing::patched(minimal_pool(), json{{"spec", {{"kv", {{"address", address}}}}}});
    EXPECT_THROW(kv_address(pool, d), SpecError) << address;
    std::string error = error_of(pool, d);
    EXPECT_EQ(error.rfind("spec.kv.address: \"", 0), 0u) << error;
    EXPECT_NE(error.find(refused), std::string::npos) << error;
  }
  EXPECT_EQ(error_of(minimal_pool_with(R"({"spec": {"kv": {"address": " , "}}})"), d),
            "spec.kv.address: must name at least one host:port");
  // Without an allowlist only the operator's own kv is allowed.
  Defaults strict = d;
  strict.allowed_kv_addresses.clear();
  EXPECT_THROW(kv_address(minimal_pool_with(R"({"spec": {"kv": {"address": "kv:1"}}})"), strict), SpecError);
}

TEST(PoolReplicaCeiling, AutoscalingMaxOrFixedReplicas) {
  EXPECT_EQ(replica_ceiling(parse_spec(minimal_pool(), test_defaults())), 10);
  EXPECT_EQ(replica_ceiling(parse_spec(minimal_pool_with(R"({"spec": {"autoscaling": {"enabled": false},
      "replicas": 3}})"), test_defaults())), 3);
}

TEST(PoolParseSpec, DoesNotModifyItsInput) {
  const json pool = minimal_pool_with(R"({"spec": {"sidecar": {"concurrency": null}}})");
  const json before = pool;
  parse_spec(pool, test_defaults());
  EXPECT_EQ(pool, before);
}

// Found by fuzz_pool: 2^63 as a float passed the range check of an int64 field (INT64_MAX rounds up to it as a
// double) and was then cast to int64_t, which is undefined behaviour.
TEST(PoolParseSpec, FloatJustAboveInt64IsOutOfRange) {
  for (const char* patch : {R"({"metadata": {"generation": 9223372036854775808.0}})",
                            R"({"metadata": {"generation": 1e300}})",
                            R"({"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 9.3e18}}}})"}) {
    SCOPED_TRACE(patch);
    EXPECT_THROW(parse_spec(minimal_pool_with(patch), test_defaults()), SpecError);
  }
  // The largest double below 2^63 is still in range.
  EXPECT_EQ(parse_spec(minimal_pool_with(R"({"metadata": {"generation": 9223372036854774784.0}})"), test_defaults())
                .generation,
            int64_t{9223372036854774784});
}

// Found by fuzz_pool: the value in a SpecError's message was cut at 40 bytes, possibly inside a UTF-8 character;
// the message goes into the Degraded condition, whose status apply then failed to serialise (json type_error 316).
TEST(PoolParseSpec, ErrorMessagesStayValidUtf8) {
  const json pool = minimal_pool_with(R"({"spec": {"replicas": "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"}})");
  try {
    parse_spec(pool, test_defaults());
    FAIL() << "no SpecError";
  } catch (const SpecError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("spec.replicas: must be an integer, got string \"\u00e9"), std::string::npos) << message;
    EXPECT_NO_THROW((void)json(message).dump());
  }
}

}  // namespace
}  // namespace gasoline::op::pool
