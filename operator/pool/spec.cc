#include "operator/pool/spec.h"

#include <algorithm>
#include <limits>
#include <set>

#include "operator/pool/field.h"

namespace gasoline::op::pool {
namespace {

constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr size_t kMaxWorkflows = 256;
constexpr size_t kMaxWorkflowName = 128;
constexpr size_t kMaxSelectorLabels = 16;
constexpr int kMaxPort = 65535;
constexpr int64_t kMaxGracePeriod = 86400;
// The sidecar needs time after its drain to leave the kv and exit before the kubelet's SIGKILL.
constexpr int64_t kDrainSpareSeconds = 5;

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::string non_empty_string(const Field& f) {
  std::string s = f.string();
  if (s.empty()) f.fail("must not be empty");
  return s;
}

std::string non_empty_string_or(const Field& f, std::string fallback) {
  return f.present() ? non_empty_string(f) : std::move(fallback);
}

// ^[0-9]+(ms|s|m)$, the CRD's pattern for pingInterval; the worker parses the same forms.
bool is_short_duration(const std::string& s) {
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
  if (digits == 0) return false;
  const std::string unit = s.substr(digits);
  return unit == "ms" || unit == "s" || unit == "m";
}

// ^(100|[1-9]?[0-9])%$, the CRD's pattern for a string maxUnavailable; policy/v1 accepts no other string.
bool is_percentage(const std::string& s) {
  if (s.size() < 2 || s.size() > 4 || s.back() != '%') return false;
  const std::string digits = s.substr(0, s.size() - 1);
  for (char c : digits)
    if (c < '0' || c > '9') return false;
  if (digits.size() > 1 && digits.front() == '0') return false;
  return std::stoi(digits) <= 100;
}

nlohmann::json default_sidecar_resources() {
  return {{"requests", {{"cpu", "50m"}, {"memory", "64Mi"}}}, {"limits", {{"memory", "128Mi"}}}};
}

nlohmann::json default_behavior() {
  return {{"scaleDown",
           {{"stabilizationWindowSeconds", 300},
            {"policies", nlohmann::json::array({{{"type", "Pods"}, {"value", 1}, {"periodSeconds", 60}}})}}},
          {"scaleUp", {{"stabilizationWindowSeconds", 0}}}};
}

void check_grace_period(const Field& f, int64_t grace, int timeout) {
  if (timeout + kDrainSpareSeconds > grace)
    f.fail("the drain timeout must fit inside the grace period with 5 s to spare (drain.timeoutSeconds " +
           std::to_string(timeout) + " + 5 > " + std::to_string(grace) + ")");
}

void parse_metadata(const Field& meta, Spec& s) {
  meta.object();
  s.name = meta["name"].string();
  if (auto problem = dns1035_label_problem(s.name); !problem.empty()) meta["name"].fail(problem);
  s.namespace_name = non_empty_string(meta["namespace"]);
  s.uid = non_empty_string(meta["uid"]);
  s.generation = meta["generation"].integer_or(0, 0, kInt64Max);
}

void parse_workflows(const Field& f, Spec& s) {
  const auto& names = f.array();
  if (names.empty()) f.fail("must list at least one workflow");
  if (names.size() > kMaxWorkflows)
    f.fail("must list at most " + std::to_string(kMaxWorkflows) + " workflows, got " + std::to_string(names.size()));
  for (size_t i = 0; i < names.size(); ++i) {
    const Field item = f.item(i);
    std::string name = non_empty_string(item);
    if (name.size() > kMaxWorkflowName)
      item.fail("must be at most 128 characters, got " + std::to_string(name.size()));
    if (name.find(',') != std::string::npos)
      item.fail("must not contain ',': the sidecar gets the names as a comma-separated list (GASOLINE_WORKFLOWS)");
    s.workflows.push_back(std::move(name));
  }
}

// Checks only what render relies on; the rest of the PodSpec is the API server's to validate.
// Creating a pool is creating pods in its namespace with the operator's rights: what would give those pods the
// node (its network, processes, IPC, files, or a privileged container) is refused, as the CRD's rules do.
constexpr const char* kNodeAccessRefused =
    "is not allowed: a pool's pods must not reach into the node (host namespaces, host paths and privileged "
    "containers are refused)";

void refuse_privileged(const Field& containers) {
  if (!containers.present()) return;
  for (size_t i = 0; i < containers.array().size(); ++i) {
    const Field privileged = containers.item(i)["securityContext"]["privileged"];
    if (privileged.present() && privileged.boolean_or(false)) privileged.fail(kNodeAccessRefused);
  }
}

void refuse_node_access(const Field& pod) {
  for (const char* host : {"hostNetwork", "hostPID", "hostIPC"})
    if (pod[host].present() && pod[host].boolean_or(false)) pod[host].fail(kNodeAccessRefused);
  refuse_privileged(pod["containers"]);
  refuse_privileged(pod["initContainers"]);
}

void parse_template(const Field& tmpl, Spec& s) {
  tmpl.object();
  const Field meta = tmpl["metadata"];
  if (meta.present()) {
    meta.object();
    if (meta["labels"].present()) s.template_labels = meta["labels"].string_map();
    if (meta["annotations"].present()) s.template_annotations = meta["annotations"].string_map();
  }
  const Field pod = tmpl["spec"];
  s.template_spec = pod.object();

  const Field containers = pod["containers"];
  if (containers.array().empty()) containers.fail("must list at least one container");
  std::set<std::string> seen;
  for (size_t i = 0; i < containers.array().size(); ++i) {
    const Field c = containers.item(i);
    c.object();
    const std::string name = non_empty_string(c["name"]);
    non_empty_string(c["image"]);
    if (name == kSidecarName)
      c["name"].fail("\"gasoline-worker\" is reserved for the sidecar container the operator adds");
    if (!seen.insert(name).second) c["name"].fail(in_quotes(name) + " names two containers");
    if (c["env"].present()) c["env"].array();
    if (c["lifecycle"].present()) c["lifecycle"].object();
  }
  if (pod["initContainers"].present()) {
    const Field inits = pod["initContainers"];
    for (size_t i = 0; i < inits.array().size(); ++i) {
      const Field c = inits.item(i);
      c.object();
      if (c["name"].present() && c["name"].string() == kSidecarName)
        c["name"].fail("\"gasoline-worker\" is reserved for the sidecar container the operator adds");
    }
  }
  if (pod["volumes"].present()) {
    const Field volumes = pod["volumes"];
    for (size_t i = 0; i < volumes.array().size(); ++i) {
      const Field v = volumes.item(i);
      v.object();
      if (v["name"].present() && v["name"].string() == kTokenVolumeName)
        v["name"].fail("\"gasoline-kv-token\" is reserved for the kv token volume the operator adds");
      if (v["hostPath"].present()) v["hostPath"].fail(kNodeAccessRefused);
    }
  }
  refuse_node_access(pod);
}

void parse_app_container(const Field& f, const Field& containers, Spec& s) {
  std::vector<std::string> names;
  for (const auto& c : containers.array()) names.push_back(c.at("name").get<std::string>());
  s.app_container = non_empty_string_or(f, names.front());
  for (const auto& name : names)
    if (name == s.app_container) return;
  f.fail(in_quotes(s.app_container) + " is not a container of spec.template.spec.containers (" + join(names) + ")");
}

void parse_selector_labels(const Field& f, Spec& s) {
  if (!f.present()) return;
  s.selector_labels = f.string_map();
  if (s.selector_labels.size() > kMaxSelectorLabels)
    f.fail("must have at most 16 labels, got " + std::to_string(s.selector_labels.size()));
  for (const auto& [key, value] : s.selector_labels) {
    if (key == kNameLabel || key == kInstanceLabel)
      f[key].fail("the operator sets this selector label itself (to select the pool's pods)");
    if (auto problem = label_key_problem(key); !problem.empty()) f[key].fail(problem);
    if (auto problem = label_value_problem(value); !problem.empty()) f[key].fail(problem);
  }
}

void parse_sidecar(const Field& f, const Defaults& defaults, Spec& s) {
  auto& sc = s.sidecar;
  sc.image = f["image"].string_or(defaults.sidecar_image);
  if (sc.image.empty()) f["image"].fail("required: the pool does not set it and the operator has no --sidecar-image");
  sc.image_pull_policy = f["imagePullPolicy"].string_or(sc.image_pull_policy);
  if (sc.image_pull_policy != "Always" && sc.image_pull_policy != "IfNotPresent" && sc.image_pull_policy != "Never")
    f["imagePullPolicy"].fail("must be Always, IfNotPresent or Never, got " + in_quotes(sc.image_pull_policy));
  sc.resources = f["resources"].present() ? f["resources"].object() : default_sidecar_resources();
  sc.concurrency = static_cast<int>(f["concurrency"].integer_or(sc.concurrency, 1, 4096));
  sc.ping_interval = f["pingInterval"].string_or(sc.ping_interval);
  if (!is_short_duration(sc.ping_interval))
    f["pingInterval"].fail("must be a whole number of ms, s or m such as 500ms or 2s, got " +
                           in_quotes(sc.ping_interval));
  sc.api_port = static_cast<int>(f["apiPort"].integer_or(sc.api_port, 1, kMaxPort));
  sc.admin_port = static_cast<int>(f["adminPort"].integer_or(sc.admin_port, 1, kMaxPort));
  if (sc.api_port == sc.admin_port)
    f["adminPort"].fail("must differ from apiPort (both are " + std::to_string(sc.api_port) +
                        "): the sidecar listens on both in the pod's network namespace");

  const Field shed = f["shedding"];
  sc.shed_start_percent = shed["startPercent"].number_or(sc.shed_start_percent, 0, 100);
  sc.shed_end_percent = shed["endPercent"].number_or(sc.shed_end_percent, 0, 100);
  if (!(sc.shed_start_percent < sc.shed_end_percent))
    shed["startPercent"].fail("must be < endPercent (" + number_text(sc.shed_start_percent) +
                              " >= " + number_text(sc.shed_end_percent) + ")");
  sc.shed_min_ratio_permille = static_cast<int>(shed["minRatioPermille"].integer_or(sc.shed_min_ratio_permille, 0, 1000));
}

std::vector<std::string> split_addresses(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    std::string item = list.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
    start = comma + 1;
  }
  return out;
}

void check_kv_address_allowed(const Field& f, const std::string& address, const Defaults& defaults) {
  auto allowed = split_addresses(defaults.kv_address);
  for (const auto& a : defaults.allowed_kv_addresses)
    for (const auto& item : split_addresses(a)) allowed.push_back(item);
  auto requested = split_addresses(address);
  if (requested.empty()) f.fail("must name at least one host:port");
  for (const auto& item : requested)
    if (std::find(allowed.begin(), allowed.end(), item) == allowed.end())
      f.fail(in_quotes(item) + " is not a kv this operator may connect to (allowed: " +
             (allowed.empty() ? std::string("none") : join(allowed)) +
             "; the operator's --kv-address and --allowed-kv-address): it would send its kv token there");
}

void check_kv_pool_namespace(const Field& f, const std::string& kv_pool, const std::string& namespace_name) {
  const std::string prefix = namespace_name + ".";
  if (kv_pool.size() <= prefix.size() || kv_pool.compare(0, prefix.size(), prefix) != 0)
    f.fail("must start with " + in_quotes(prefix) + " and name a pool after it: kv pools are \"<namespace>.<name>\" and a "
           "pool may only use names of its own namespace, got " + in_quotes(kv_pool));
}

void parse_kv(const Field& f, const Defaults& defaults, Spec& s) {
  s.kv.address = f["address"].string_or(defaults.kv_address);
  if (s.kv.address.empty()) f["address"].fail("required: the pool does not set it and the operator has no --kv-address");
  if (f["address"].present()) check_kv_address_allowed(f["address"], s.kv.address, defaults);
  s.kv.pool = non_empty_string_or(f["pool"], s.namespace_name + "." + s.name);
  if (f["pool"].present()) check_kv_pool_namespace(f["pool"], s.kv.pool, s.namespace_name);
  const Field secret = f["tokenSecretRef"];
  s.kv.service_account_token = defaults.sidecar_kv_credential == "service-account" && !secret.present();
  s.kv.tls = defaults.kv_tls;
  s.kv.tls_ca_pem = defaults.kv_tls_ca_pem;
  s.kv.token_secret_name = non_empty_string_or(secret["name"], s.kv.token_secret_name);
  s.kv.token_secret_key = non_empty_string_or(secret["key"], s.kv.token_secret_key);
}

void parse_autoscaling(const Field& f, Spec& s) {
  auto& a = s.autoscaling;
  a.enabled = f["enabled"].boolean_or(a.enabled);
  a.min_replicas = static_cast<int32_t>(f["minReplicas"].integer_or(a.min_replicas, 1, kInt32Max));
  a.max_replicas = static_cast<int32_t>(f["maxReplicas"].integer_or(a.max_replicas, 1, kInt32Max));
  // Checked even while disabled, like the CRD's rule, so enabling it later cannot fail on an old mistake.
  if (a.min_replicas > a.max_replicas)
    f["minReplicas"].fail("must be <= maxReplicas (" + std::to_string(a.min_replicas) + " > " +
                          std::to_string(a.max_replicas) + ")");
  a.target_cpu_utilization_percentage =
      static_cast<int>(f["targetCPUUtilizationPercentage"].integer_or(a.target_cpu_utilization_percentage, 1, 1000));
  a.behavior = f["behavior"].present() ? f["behavior"].object() : default_behavior();
}

void parse_disruption(const Field& f, Spec& s) {
  s.disruption.enabled = f["enabled"].boolean_or(s.disruption.enabled);
  const Field max_unavailable = f["maxUnavailable"];
  if (!max_unavailable.present()) return;
  const auto& v = max_unavailable.raw();
  if (v.is_string()) {
    // "1" is a valid int-or-string to the CRD's type but not to policy/v1, which takes strings only as percentages.
    if (!is_percentage(v.get<std::string>()))
      max_unavailable.fail("must be an integer or a percentage from \"0%\" to \"100%\", got " + describe(v));
    // A percentage rounds up, so only "0%" (in any spelling) allows no eviction at all.
    if (v.get<std::string>().find_first_not_of("0%") == std::string::npos)
      max_unavailable.fail("must allow at least one pod to be evicted, got " + describe(v) +
                           ": a budget of 0 blocks every node drain");
    s.disruption.max_unavailable = v;
  } else {
    // 0 would let a tenant block every node drain (an eviction never becomes allowed).
    s.disruption.max_unavailable = max_unavailable.integer(1, kInt32Max);
  }
}

void parse_drain(const Field& f, const Field& pod, const Defaults& defaults, Spec& s) {
  s.drain.timeout_seconds = static_cast<int>(f["timeoutSeconds"].integer_or(s.drain.timeout_seconds, 1, 3600));
  const Field own = f["terminationGracePeriodSeconds"];
  const Field from_template = pod["terminationGracePeriodSeconds"];
  if (own.present()) {
    s.drain.termination_grace_period_seconds = own.integer(0, kMaxGracePeriod);
    check_grace_period(own, s.drain.termination_grace_period_seconds, s.drain.timeout_seconds);
  } else if (from_template.present()) {
    s.drain.termination_grace_period_seconds = from_template.integer(0, kInt64Max);
    check_grace_period(from_template, s.drain.termination_grace_period_seconds, s.drain.timeout_seconds);
  } else {
    // A margin below the 5 s the CEL rule demands would make the default itself invalid.
    s.drain.termination_grace_period_seconds =
        s.drain.timeout_seconds + std::max<int64_t>(defaults.drain_margin_seconds, kDrainSpareSeconds);
  }
}

void parse_network_policy(const Field& f, const Defaults& defaults, Spec& s) {
  s.network_policy.enabled = f["enabled"].boolean_or(defaults.pool_network_policy);
  const Field from = f["adminFrom"];
  if (!from.present()) {
    s.network_policy.admin_from = defaults.pool_admin_from;
    return;
  }
  const auto& peers = from.array();
  for (size_t i = 0; i < peers.size(); ++i) from.item(i).object();
  s.network_policy.admin_from = peers;
}

}  // namespace

Spec parse_spec(const nlohmann::json& pool, const Defaults& defaults) {
  if (!pool.is_object()) throw SpecError("the GasolineWorkerPool must be a JSON object, got " + describe(pool));
  const Field root(&pool, "");
  Spec s;
  parse_metadata(root["metadata"], s);
  const Field spec = root["spec"];
  spec.object();
  parse_workflows(spec["workflows"], s);
  s.replicas = static_cast<int32_t>(spec["replicas"].integer_or(s.replicas, 0, kInt32Max));
  parse_template(spec["template"], s);
  parse_app_container(spec["appContainer"], spec["template"]["spec"]["containers"], s);
  parse_selector_labels(spec["selectorLabels"], s);
  parse_sidecar(spec["sidecar"], defaults, s);
  parse_kv(spec["kv"], defaults, s);
  parse_autoscaling(spec["autoscaling"], s);
  parse_disruption(spec["disruption"], s);
  parse_drain(spec["drain"], spec["template"]["spec"], defaults, s);
  parse_network_policy(spec["networkPolicy"], defaults, s);
  s.paused = spec["paused"].boolean_or(false);
  return s;
}

std::string kv_pool_name(const nlohmann::json& pool) {
  if (!pool.is_object()) throw SpecError("the GasolineWorkerPool must be a JSON object, got " + describe(pool));
  const Field root(&pool, "");
  const Field own = root["spec"]["kv"]["pool"];
  const std::string namespace_name = non_empty_string(root["metadata"]["namespace"]);
  if (own.present()) {
    std::string name = non_empty_string(own);
    check_kv_pool_namespace(own, name, namespace_name);
    return name;
  }
  return namespace_name + "." + non_empty_string(root["metadata"]["name"]);
}

std::string kv_address(const nlohmann::json& pool, const Defaults& defaults) {
  if (!pool.is_object()) throw SpecError("the GasolineWorkerPool must be a JSON object, got " + describe(pool));
  const Field root(&pool, "");
  const Field own = root["spec"]["kv"]["address"];
  if (!own.present()) return defaults.kv_address;
  std::string address = own.string();
  check_kv_address_allowed(own, address, defaults);
  return address;
}

int32_t replica_ceiling(const Spec& s) { return s.autoscaling.enabled ? s.autoscaling.max_replicas : s.replicas; }

}  // namespace gasoline::op::pool
