// render: golden files for whole pools, and table tests for the rules a golden file would only show by example
// (which children exist, the labels and owner of each, determinism, no mutation, no write for an unchanged pool).
//
// Golden files: golden/<case>.pool.json is the input, golden/<case>.children.json the expected output, written as
// {"deployment": ..., "service": ..., "hpa": ..., "pdb": ..., "networkPolicy": ...} (the optional ones left out when
// not rendered) with two-space
// indentation and a final newline. After an intended change to render, rewrite them with
//   GASOLINE_UPDATE_GOLDEN=1 ctest --test-dir <build> -L operator -R PoolRenderGolden
// and read the diff line by line before committing: each file must be what a Kubernetes expert would apply.
#include <gtest/gtest.h>

#include <map>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "operator/pool/compare.h"
#include "operator/pool/render.h"
#include "tests/operator/unit/fixtures.h"

namespace gasoline::op::pool {
namespace {

using nlohmann::json;
using testing::minimal_pool;
using testing::minimal_pool_with;
using testing::test_defaults;

const char* const kGoldenCases[] = {
    "minimal",          // only the required fields: every default, HPA 1..10, PDB (10 >= 2)
    "everything",       // every field set, two app containers, a user init container, volumes, annotations
    "fixed-one",        // autoscaling off with 1 replica: replicas rendered, no HPA, no PDB
    "fixed-three",      // autoscaling off with 3 replicas: replicas rendered, a PDB, no HPA
    "user-prestop",     // the app's own preStop and GASOLINE_API_URL are kept; its grace period too
    "selector-labels",  // extra selector labels, and template labels that try to override the selector
};

std::string golden_path(const std::string& name) { return std::string(GASOLINE_OPERATOR_GOLDEN_DIR) + "/" + name; }

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

json read_json(const std::string& path) {
  const std::string text = read_text(path);
  if (text.empty()) throw std::runtime_error("cannot read " + path);
  return json::parse(text);
}

json children_json(const Children& c) {
  json out = {{"deployment", c.deployment}, {"service", c.service}};
  if (c.hpa) out["hpa"] = *c.hpa;
  if (c.pdb) out["pdb"] = *c.pdb;
  if (c.network_policy) out["networkPolicy"] = *c.network_policy;
  return out;
}

bool updating_golden() {
  const char* v = std::getenv("GASOLINE_UPDATE_GOLDEN");
  return v != nullptr && std::string(v) == "1";
}

TEST(PoolRenderGolden, MatchesExpectedChildren) {
  for (const std::string name : kGoldenCases) {
    SCOPED_TRACE(name);
    const json pool = read_json(golden_path(name + ".pool.json"));
    const std::string got = children_json(render(pool, test_defaults())).dump(2) + "\n";
    const std::string expected_path = golden_path(name + ".children.json");
    if (updating_golden()) {
      std::ofstream(expected_path, std::ios::binary) << got;
      continue;
    }
    const std::string want = read_text(expected_path);
    ASSERT_FALSE(want.empty()) << expected_path << " is missing; run with GASOLINE_UPDATE_GOLDEN=1 and review it";
    EXPECT_EQ(got, want) << "render changed for " << name << "; if intended, rerun with GASOLINE_UPDATE_GOLDEN=1 "
                         << "and review the diff of " << expected_path;
  }
}

TEST(PoolRender, WhichChildrenExist) {
  const struct {
    const char* name;
    const char* patch;
    bool hpa, pdb;
    std::optional<int> deployment_replicas;  // nullopt: left out for the HPA
  } cases[] = {
      {"defaults: HPA 1..10, so a PDB", R"({})", true, true, std::nullopt},
      {"autoscaling max 1: no PDB", R"({"spec": {"autoscaling": {"maxReplicas": 1}}})", true, false, std::nullopt},
      {"autoscaling max 2: PDB", R"({"spec": {"autoscaling": {"maxReplicas": 2}}})", true, true, std::nullopt},
      {"autoscaling on ignores replicas", R"({"spec": {"replicas": 5, "autoscaling": {"maxReplicas": 1}}})", true,
       false, std::nullopt},
      {"fixed 0", R"({"spec": {"replicas": 0, "autoscaling": {"enabled": false}}})", false, false, 0},
      {"fixed 1", R"({"spec": {"replicas": 1, "autoscaling": {"enabled": false}}})", false, false, 1},
      {"fixed 2", R"({"spec": {"replicas": 2, "autoscaling": {"enabled": false}}})", false, true, 2},
      {"fixed 2, disruption off", R"({"spec": {"replicas": 2, "autoscaling": {"enabled": false},
          "disruption": {"enabled": false}}})", false, false, 2},
      {"autoscaling, disruption off", R"({"spec": {"disruption": {"enabled": false}}})", true, false, std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const Children children = render(minimal_pool_with(c.patch), test_defaults());
    EXPECT_EQ(children.hpa.has_value(), c.hpa);
    EXPECT_EQ(children.pdb.has_value(), c.pdb);
    const auto& spec = children.deployment.at("spec");
    if (c.deployment_replicas) {
      ASSERT_TRUE(spec.contains("replicas"));
      EXPECT_EQ(spec.at("replicas"), *c.deployment_replicas);
    } else {
      EXPECT_FALSE(spec.contains("replicas"));
    }
  }
}

TEST(PoolRender, EveryChildHasItsIdentityLabelsAndOwner) {
  const json want_owner = json::parse(R"({"apiVersion": "gasoline.dev/v1alpha1", "kind": "GasolineWorkerPool",
      "name": "orders", "uid": "uid-1", "controller": true, "blockOwnerDeletion": true})");
  const json want_labels = json::parse(R"({"app.kubernetes.io/name": "gasoline-worker",
      "app.kubernetes.io/instance": "orders", "app.kubernetes.io/component": "worker",
      "app.kubernetes.io/part-of": "gasoline", "app.kubernetes.io/managed-by": "gasoline-operator",
      "gasoline.dev/pool": "orders"})");
  const Children c = render(minimal_pool(), test_defaults());
  const struct {
    const json* child;
    const char* api_version;
    const char* kind;
  } children[] = {{&c.deployment, "apps/v1", "Deployment"},
                  {&c.service, "v1", "Service"},
                  {&*c.hpa, "autoscaling/v2", "HorizontalPodAutoscaler"},
                  {&*c.pdb, "policy/v1", "PodDisruptionBudget"},
                  {&*c.network_policy, "networking.k8s.io/v1", "NetworkPolicy"}};
  for (const auto& child : children) {
    SCOPED_TRACE(child.kind);
    const json& o = *child.child;
    EXPECT_EQ(o.at("apiVersion"), child.api_version);
    EXPECT_EQ(o.at("kind"), child.kind);
    EXPECT_EQ(o.at("metadata").at("name"), "orders");
    EXPECT_EQ(o.at("metadata").at("namespace"), "shop");
    EXPECT_EQ(o.at("metadata").at("labels"), want_labels);
    EXPECT_EQ(o.at("metadata").at("ownerReferences"), json::array({want_owner}));
    EXPECT_FALSE(o.contains("status"));
  }
}

TEST(PoolRender, PodTemplateRules) {
  const Children c = render(read_json(golden_path("everything.pool.json")), test_defaults());
  const json& pod = c.deployment.at("/spec/template/spec"_json_pointer);
  const json& sidecar = pod.at("initContainers").at(0);
  EXPECT_EQ(sidecar.at("name"), "gasoline-worker");
  EXPECT_EQ(sidecar.at("restartPolicy"), "Always");
  EXPECT_EQ(pod.at("initContainers").at(1).at("name"), "migrate");  // the user's init container runs after it
  EXPECT_EQ(pod.at("terminationGracePeriodSeconds"), 150);
  EXPECT_EQ(pod.at("volumes").back().at("name"), "gasoline-kv-token");
  for (const auto& container : pod.at("containers")) {
    SCOPED_TRACE(container.at("name").get<std::string>());
    EXPECT_EQ(container.at("env").back(), json::parse(R"({"name": "GASOLINE_API_URL", "value": "http://127.0.0.1:9000"})"));
    // Only the appContainer gets the drain hook; its postStart is kept next to it.
    const bool is_app = container.at("name") == "billing";
    EXPECT_EQ(container.contains("/lifecycle/preStop"_json_pointer), is_app);
  }
  const json& app = pod.at("containers").at(1);
  EXPECT_EQ(app.at("/lifecycle/preStop/httpGet"_json_pointer),
            json::parse(R"({"path": "/drain", "port": 9001})"));
  EXPECT_TRUE(app.contains("/lifecycle/postStart"_json_pointer));
}

TEST(PoolRender, SelectorStringIsSortedAndIncludesSelectorLabels) {
  const struct {
    const char* name;
    const char* patch;
    const char* want;
  } cases[] = {
      {"default", R"({})", "app.kubernetes.io/instance=orders,app.kubernetes.io/name=gasoline-worker"},
      {"extra labels sort among ours", R"({"spec": {"selectorLabels": {"zone": "a", "example.com/shard": "1"}}})",
       "app.kubernetes.io/instance=orders,app.kubernetes.io/name=gasoline-worker,example.com/shard=1,zone=a"},
      {"only name and selectorLabels are read", R"({"spec": {"workflows": null}})",
       "app.kubernetes.io/instance=orders,app.kubernetes.io/name=gasoline-worker"},
  };
  for (const auto& c : cases) EXPECT_EQ(selector_string(minimal_pool_with(c.patch)), c.want) << c.name;
  EXPECT_THROW(selector_string(minimal_pool_with(R"({"spec": {"selectorLabels": {"zone": 1}}})")), SpecError);
  EXPECT_THROW(selector_string(minimal_pool_with(R"({"metadata": {"name": null}})")), SpecError);
}

TEST(PoolRender, SelectorMatchesThePodLabels) {
  for (const std::string name : kGoldenCases) {
    SCOPED_TRACE(name);
    const Children c = render(read_json(golden_path(name + ".pool.json")), test_defaults());
    const json& pod_labels = c.deployment.at("/spec/template/metadata/labels"_json_pointer);
    const json& selector = c.deployment.at("/spec/selector/matchLabels"_json_pointer);
    EXPECT_TRUE(semantic_subset(selector, pod_labels)) << selector.dump() << " vs " << pod_labels.dump();
    EXPECT_EQ(c.service.at("/spec/selector"_json_pointer), selector);
    if (c.pdb) {
      EXPECT_EQ(c.pdb->at("/spec/selector/matchLabels"_json_pointer), selector);
    }
    if (c.network_policy) {
      EXPECT_EQ(c.network_policy->at("/spec/podSelector/matchLabels"_json_pointer), selector);
    }
  }
}

TEST(PoolRender, IsDeterministicAndDoesNotModifyItsInput) {
  for (const std::string name : kGoldenCases) {
    SCOPED_TRACE(name);
    const json pool = read_json(golden_path(name + ".pool.json"));
    const json before = pool;
    const std::string first = children_json(render(pool, test_defaults())).dump();
    EXPECT_EQ(pool, before);
    EXPECT_EQ(children_json(render(pool, test_defaults())).dump(), first);
    // The same pool parsed again (fresh allocations, same content) renders the same bytes.
    EXPECT_EQ(children_json(render(json::parse(before.dump()), test_defaults())).dump(), first);
  }
}

TEST(PoolRender, PausedRendersTheSameChildren) {
  // Whether to write them is the reconciler's decision; what they would be does not change.
  EXPECT_EQ(children_json(render(minimal_pool_with(R"({"spec": {"paused": true}})"), test_defaults())),
            children_json(render(minimal_pool(), test_defaults())));
}

TEST(PoolRender, InvalidPoolThrowsSpecError) {
  EXPECT_THROW(render(minimal_pool_with(R"({"spec": {"autoscaling": {"minReplicas": 3, "maxReplicas": 2}}})"),
                      test_defaults()),
               SpecError);
}

// What the API server returns for an applied Deployment: our fields plus defaults, quantities in canonical form,
// server-owned metadata, status. Hand-made after `kubectl get -o json` of such a Deployment.
json as_stored_by_the_server(json d) {
  d["metadata"]["uid"] = "d-uid";
  d["metadata"]["resourceVersion"] = "4242";
  d["metadata"]["generation"] = 3;
  d["metadata"]["creationTimestamp"] = "2025-01-01T00:00:00Z";
  d["metadata"]["managedFields"] = json::array({{{"manager", "gasoline-operator"}, {"operation", "Apply"}}});
  d["metadata"]["annotations"] = {{"deployment.kubernetes.io/revision", "3"}};
  auto& spec = d["spec"];
  spec["replicas"] = 2;  // set by the HPA
  spec["revisionHistoryLimit"] = 10;
  spec["progressDeadlineSeconds"] = 600;
  auto& tmpl = spec["template"];
  tmpl["metadata"]["creationTimestamp"] = nullptr;
  auto& pod = tmpl["spec"];
  pod["restartPolicy"] = "Always";
  pod["dnsPolicy"] = "ClusterFirst";
  pod["schedulerName"] = "default-scheduler";
  if (!pod.contains("securityContext")) pod["securityContext"] = json::object();  // the server's default
  for (const char* list : {"initContainers", "containers"}) {
    for (auto& c : pod[list]) {
      c["terminationMessagePath"] = "/dev/termination-log";
      c["terminationMessagePolicy"] = "File";
      if (!c.contains("imagePullPolicy")) c["imagePullPolicy"] = "IfNotPresent";
      if (!c.contains("resources")) c["resources"] = json::object();
      for (const char* probe : {"startupProbe", "readinessProbe"}) {
        if (!c.contains(probe)) continue;
        c[probe]["httpGet"]["scheme"] = "HTTP";
        c[probe]["timeoutSeconds"] = 1;
        c[probe]["successThreshold"] = 1;
        if (!c[probe].contains("failureThreshold")) c[probe]["failureThreshold"] = 3;
      }
      if (c.contains("/lifecycle/preStop/httpGet"_json_pointer)) c["lifecycle"]["preStop"]["httpGet"]["scheme"] = "HTTP";
      if (c.contains("env"))
        for (auto& var : c["env"])
          if (var.contains("/valueFrom/fieldRef"_json_pointer)) var["valueFrom"]["fieldRef"]["apiVersion"] = "v1";
    }
  }
  pod["volumes"].back()["secret"]["defaultMode"] = 288;  // 0440, as JSON has no octal
  // Canonical quantities: "0.5" -> "500m", 1 -> "1".
  pod["containers"][1]["resources"]["requests"]["cpu"] = "500m";
  d["status"] = {{"observedGeneration", 3}, {"replicas", 2}, {"readyReplicas", 2}};
  return d;
}

// Hardening every pool's pods gets unless its template says otherwise: no ServiceAccount token, the kv token
// readable by the pod's fsGroup only.
TEST(PoolRender, PodsGetNoServiceAccountTokenAndAGroupReadableKvToken) {
  const json pod = render(minimal_pool(), test_defaults()).deployment["spec"]["template"]["spec"];
  EXPECT_EQ(pod["automountServiceAccountToken"], false);
  EXPECT_EQ(pod["securityContext"]["fsGroup"], 65532);
  EXPECT_EQ(pod["securityContext"]["fsGroupChangePolicy"], "OnRootMismatch");
  EXPECT_EQ(pod["volumes"].back()["secret"]["defaultMode"], 0440);

  // The template's own choices stand.
  const json own = render(minimal_pool_with(R"({"spec": {"template": {"spec": {
      "automountServiceAccountToken": true, "securityContext": {"fsGroup": 1000, "runAsUser": 1000}}}}})"),
                          test_defaults())
                       .deployment["spec"]["template"]["spec"];
  EXPECT_EQ(own["automountServiceAccountToken"], true);
  EXPECT_EQ(own["securityContext"], json({{"fsGroup", 1000}, {"runAsUser", 1000}}));
  EXPECT_EQ(own["volumes"].back()["secret"]["defaultMode"], 0440);
}

// --sidecar-kv-credential service-account: the kv token is the pod's own projected ServiceAccount token for the
// kv's audience (docs/security.md, "Roles"), at the same path; a pool that names a token Secret keeps it.
TEST(PoolRender, ServiceAccountKvCredentialIsAProjectedTokenForTheKv) {
  Defaults d = test_defaults();
  d.sidecar_kv_credential = "service-account";
  const json pod = render(minimal_pool(), d).deployment["spec"]["template"]["spec"];
  const json volume = pod["volumes"].back();
  EXPECT_EQ(volume, json::parse(R"({"name": "gasoline-kv-token", "projected": {"defaultMode": 288, "sources": [
      {"serviceAccountToken": {"audience": "gasoline-kv", "expirationSeconds": 3600, "path": "token"}}]}})"));
  EXPECT_EQ(pod["automountServiceAccountToken"], false) << "the API token stays unmounted; only the kv's audience";
  const json& sidecar = pod["initContainers"][0];
  EXPECT_EQ(sidecar["volumeMounts"][0]["name"], "gasoline-kv-token");
  bool token_file = false;
  for (const auto& e : sidecar["env"])
    if (e["name"] == "GASOLINE_TOKEN_FILE") token_file = e["value"] == "/var/run/gasoline/kv/token";
  EXPECT_TRUE(token_file) << sidecar["env"].dump();

  const json secret = render(minimal_pool_with(R"({"spec": {"kv": {"tokenSecretRef": {"name": "own-token"}}}})"), d)
                          .deployment["spec"]["template"]["spec"]["volumes"]
                          .back();
  EXPECT_EQ(secret["secret"]["secretName"], "own-token");
  EXPECT_FALSE(secret.contains("projected"));
  // The default stays the Secret: an operator upgraded before its kv accepts ServiceAccount tokens breaks nothing.
  EXPECT_TRUE(render(minimal_pool(), test_defaults()).deployment["spec"]["template"]["spec"]["volumes"].back().contains(
      "secret"));
}

// --kv-tls-ca: sidecars dial the kv over TLS and trust the CA the operator trusts, given as PEM text in the pod spec
// (public), so no Secret has to be copied into pool namespaces. Without it nothing TLS is rendered.
TEST(PoolRender, KvTlsPassesTheCaToSidecarsAsText) {
  auto env_of = [](const Defaults& d) {
    std::map<std::string, std::string> out;
    const json sidecar = render(minimal_pool(), d).deployment["spec"]["template"]["spec"]["initContainers"][0];
    for (const auto& e : sidecar["env"])
      if (e.contains("value")) out[e["name"].get<std::string>()] = e["value"].get<std::string>();
    return out;
  };
  auto plain = env_of(test_defaults());
  EXPECT_EQ(plain.count("GASOLINE_KV_TLS"), 0u);
  EXPECT_EQ(plain.count("GASOLINE_KV_TLS_CA_PEM"), 0u);

  Defaults d = test_defaults();
  d.kv_tls = true;
  d.kv_tls_ca_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  auto tls = env_of(d);
  EXPECT_EQ(tls["GASOLINE_KV_TLS"], "true");
  EXPECT_EQ(tls["GASOLINE_KV_TLS_CA_PEM"], d.kv_tls_ca_pem);

  d.kv_tls_ca_pem.clear();  // --kv-tls alone: the system's trust store, in the sidecar image too
  auto system = env_of(d);
  EXPECT_EQ(system["GASOLINE_KV_TLS"], "true");
  EXPECT_EQ(system.count("GASOLINE_KV_TLS_CA_PEM"), 0u);
}

TEST(PoolRender, UnchangedPoolNeedsNoWrite) {
  const json pool = read_json(golden_path("everything.pool.json"));
  const Children desired = render(pool, test_defaults());
  const json live = as_stored_by_the_server(desired.deployment);
  EXPECT_TRUE(semantic_subset(desired.deployment, live));

  // Any change a user makes to the pool must show up as a difference.
  const struct {
    const char* name;
    const char* patch;
  } changes[] = {
      {"concurrency", R"({"spec": {"sidecar": {"concurrency": 65}}})"},
      {"app cpu request", R"({"spec": {"template": {"spec": {"containers": [
          {"name": "metrics-exporter", "image": "registry.example/finance/exporter:1.2.0",
           "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}}},
          {"name": "billing", "image": "registry.example/finance/billing:3.0.1", "args": ["--worker"],
           "env": [{"name": "LOG_LEVEL", "value": "debug"}],
           "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
           "resources": {"requests": {"cpu": "0.6", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
           "lifecycle": {"postStart": {"exec": {"command": ["/bin/billing", "warm-up"]}}}}]}}}})"},
      {"autoscaling off", R"({"spec": {"autoscaling": {"enabled": false}, "replicas": 3}})"},
      {"grace period", R"({"spec": {"drain": {"terminationGracePeriodSeconds": 151}}})"},
      {"workflows", R"({"spec": {"workflows": ["invoice", "refund"]}})"},
      {"annotation", R"({"spec": {"template": {"metadata": {"annotations": {"prometheus.io/port": "9002"}}}}})"},
  };
  for (const auto& change : changes) {
    const Children changed = render(testing::patched(pool, json::parse(change.patch)), test_defaults());
    EXPECT_FALSE(semantic_subset(changed.deployment, live)) << change.name;
  }
}

// The policy fences the admin port and nothing else: every other port, of every protocol, stays open to all, so
// an app that serves traffic of its own keeps working once its pods are selected.
TEST(PoolRender, NetworkPolicyFencesTheSidecarAdminPortOnly) {
  const json monitoring = json::parse(R"([{"namespaceSelector": {"matchLabels":
      {"kubernetes.io/metadata.name": "monitoring"}}}])");
  auto ranges = [](std::initializer_list<std::tuple<const char*, int, int>> rs) {
    json out = json::array();
    for (const auto& [p, first, last] : rs) out.push_back({{"protocol", p}, {"port", first}, {"endPort", last}});
    return out;
  };
  const json admin_rule = {{"from", monitoring}, {"ports", json::parse(R"([{"protocol": "TCP", "port": 7481}])")}};
  const struct {
    const char* name;
    json spec;
    Defaults defaults;
    std::optional<json> ingress;  // nullopt: no policy
  } cases[] = {
      {"defaults: only the node reaches the admin port", json::object(), test_defaults(),
       json::array({{{"ports", ranges({{"TCP", 1, 7480}, {"TCP", 7482, 65535}, {"UDP", 1, 65535},
                                       {"SCTP", 1, 65535}})}}})},
      {"operator's peers", json::object(),
       [&] {
         auto d = test_defaults();
         d.pool_admin_from = monitoring;
         return d;
       }(),
       json::array({{{"ports", ranges({{"TCP", 1, 7480}, {"TCP", 7482, 65535}, {"UDP", 1, 65535},
                                       {"SCTP", 1, 65535}})}},
                    admin_rule})},
      {"the pool's peers win", {{"networkPolicy", {{"adminFrom", monitoring}}}},
       [&] {
         auto d = test_defaults();
         d.pool_admin_from = json::parse(R"([{"podSelector": {}}])");
         return d;
       }(),
       json::array({{{"ports", ranges({{"TCP", 1, 7480}, {"TCP", 7482, 65535}, {"UDP", 1, 65535},
                                       {"SCTP", 1, 65535}})}},
                    admin_rule})},
      {"admin port 65535: one TCP range below it",
       {{"sidecar", {{"adminPort", 65535}, {"apiPort", 7480}}}}, test_defaults(),
       json::array({{{"ports", ranges({{"TCP", 1, 65534}, {"UDP", 1, 65535}, {"SCTP", 1, 65535}})}}})},
      {"off in the pool", {{"networkPolicy", {{"enabled", false}}}}, test_defaults(), std::nullopt},
      {"off in the operator", json::object(),
       [] {
         auto d = test_defaults();
         d.pool_network_policy = false;
         return d;
       }(),
       std::nullopt},
      {"on in the pool although off in the operator", {{"networkPolicy", {{"enabled", true}}}},
       [] {
         auto d = test_defaults();
         d.pool_network_policy = false;
         return d;
       }(),
       json::array({{{"ports", ranges({{"TCP", 1, 7480}, {"TCP", 7482, 65535}, {"UDP", 1, 65535},
                                       {"SCTP", 1, 65535}})}}})},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const Children children = render(testing::patched(minimal_pool(), {{"spec", c.spec}}), c.defaults);
    ASSERT_EQ(children.network_policy.has_value(), c.ingress.has_value());
    if (!c.ingress) continue;
    const json& p = *children.network_policy;
    EXPECT_EQ(p.at("/spec/policyTypes"_json_pointer), json::array({"Ingress"}));
    EXPECT_EQ(p.at("/spec/ingress"_json_pointer), *c.ingress) << p.dump(2);
    EXPECT_FALSE(p.at("spec").contains("egress"));
  }
}

TEST(PoolRender, EveryChildIsASubsetOfItself) {
  for (const std::string name : kGoldenCases) {
    SCOPED_TRACE(name);
    const Children c = render(read_json(golden_path(name + ".pool.json")), test_defaults());
    EXPECT_TRUE(semantic_subset(c.deployment, c.deployment));
    EXPECT_TRUE(semantic_subset(c.service, c.service));
    if (c.hpa) {
      EXPECT_TRUE(semantic_subset(*c.hpa, *c.hpa));
    }
    if (c.pdb) {
      EXPECT_TRUE(semantic_subset(*c.pdb, *c.pdb));
    }
    if (c.network_policy) {
      EXPECT_TRUE(semantic_subset(*c.network_policy, *c.network_policy));
    }
  }
}

// Found by fuzz_pool: an env var whose name is not a string made render throw json's type_error instead of leaving
// the var to the API server's validation.
TEST(PoolRender, EnvVarWithANonStringNameDoesNotThrow) {
  const json pool = minimal_pool_with(
      R"({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "i", "env": [{"name": 1}, 2]}]}}}})");
  Children c;
  ASSERT_NO_THROW(c = render(pool, test_defaults()));
  const json& env = c.deployment["spec"]["template"]["spec"]["containers"][0]["env"];
  ASSERT_EQ(env.size(), 3u);
  EXPECT_EQ(env[2]["name"], "GASOLINE_API_URL");
}

}  // namespace
}  // namespace gasoline::op::pool
