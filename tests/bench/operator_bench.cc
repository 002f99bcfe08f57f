// gasoline-bench operator: N pools created at once against a real API server (hack/cluster.sh up --minimal), one
// real gasoline-operator process per scenario. Measures the time until every pool is reconciled (its Deployment
// exists and status.observedGeneration caught up), the operator's requests per pool (its own counter) and its peak
// RSS. Scenarios differ only in --workers and run one after the other in the same invocation.
#include "tests/bench/operator_bench.h"

#include "common/clock.h"
#include "operator/kube/client.h"
#include "tests/support/process.h"

#include <yaml-cpp/yaml.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <thread>

#include <unistd.h>

namespace gasoline::bench {
namespace {

using kube::Json;
namespace res = kube::resources;

// YAML to JSON for the CRD file (the API server takes JSON; yaml-cpp parses).
Json to_json(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      Json o = Json::object();
      for (const auto& kv : n) o[kv.first.as<std::string>()] = to_json(kv.second);
      return o;
    }
    case YAML::NodeType::Sequence: {
      Json a = Json::array();
      for (const auto& item : n) a.push_back(to_json(item));
      return a;
    }
    case YAML::NodeType::Scalar: {
      if (n.Tag() == "!") return n.as<std::string>();  // quoted: always a string
      const std::string s = n.Scalar();
      if (s == "true") return true;
      if (s == "false") return false;
      if (s == "null" || s == "~") return nullptr;
      static const std::regex integer("^-?[0-9]+$"), real("^-?[0-9]+\\.[0-9]+$");
      if (std::regex_match(s, integer)) return std::stoll(s);
      if (std::regex_match(s, real)) return std::stod(s);
      return s;
    }
    default:
      return nullptr;
  }
}

double metric_sum(const std::string& text, const std::string& name) {
  double sum = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(name, 0) == 0 && (line.size() == name.size() || line[name.size()] == '{' || line[name.size()] == ' '))
      sum += std::stod(line.substr(line.rfind(' ') + 1));
  return sum;
}

std::string http_get_local(int port, const std::string& path) {
  // curl is on every machine hack/deps.sh set up; the bench is not a product binary.
  std::string cmd = "curl -s --max-time 2 http://127.0.0.1:" + std::to_string(port) + path;
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    pclose(p);
  }
  return out;
}

double peak_rss_mib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return -1;
}

Json pool_object(const std::string& ns, int i) {
  return {{"apiVersion", "gasoline.dev/v1alpha1"},
          {"kind", "GasolineWorkerPool"},
          {"metadata", {{"name", "pool-" + std::to_string(i)}, {"namespace", ns}}},
          {"spec",
           {{"workflows", {"order", "ship"}},
            {"template",
             {{"spec",
               {{"containers",
                 {{{"name", "app"},
                   {"image", "registry.invalid/app:1"},
                   {"resources", {{"requests", {{"cpu", "100m"}, {"memory", "64Mi"}}}}}}}}}}}},
            {"autoscaling", {{"minReplicas", 2}, {"maxReplicas", 6}}}}}};
}

struct Outcome {
  double reconcile_all_s = -1;
  double requests = 0, writes = 0, rss_mib = -1;
  bool complete = false;
};

Outcome run_scenario(kube::Client& client, const OperatorBenchOptions& o, int workers, const std::string& kubeconfig,
                     const std::string& log_dir) {
  std::string ns = "bench-op-" + std::to_string(getpid()) + "-" + std::to_string(workers);
  client.create(res::kNamespaces, "", Json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
  const int port = 18300 + workers;
  testing::Process op({testing::binary_path("gasoline-operator"), "--kubeconfig", kubeconfig, "--namespace", ns,
                       "--workers", std::to_string(workers), "--metrics-listen", "127.0.0.1:" + std::to_string(port),
                       "--probe-listen", "127.0.0.1:" + std::to_string(port + 100), "--kv-address", "127.0.0.1:1",
                       "--identity", "bench", "--log-level", "warn"},
                      log_dir + "/operator-" + std::to_string(workers) + ".log");
  if (!testing::wait_until([&] { return http_get_local(port + 100, "/readyz") == "ok\n"; },
                           std::chrono::seconds(60)))
    throw std::runtime_error("the operator did not become ready (log in " + log_dir + ")");

  std::cerr << "operator bench: workers=" << workers << ": creating " << o.pools << " pools in " << ns << "\n";
  int64_t t0 = mono_ms();
  std::atomic<int> next{0};
  std::vector<std::thread> creators;
  for (int t = 0; t < o.create_threads; ++t)
    creators.emplace_back([&] {
      for (int i; (i = next++) < o.pools;) client.create(res::kPools, ns, pool_object(ns, i));
    });
  for (auto& t : creators) t.join();

  Outcome out;
  int64_t last_report = 0;
  while (mono_ms() - t0 < o.timeout_s * 1000LL) {
    auto pools = client.list(res::kPools, ns);
    int done = 0;
    for (const auto& p : pools["items"]) {
      const auto& st = p.value("status", Json::object());
      if (st.value("observedGeneration", 0) == p["metadata"].value("generation", -1)) ++done;
    }
    // Listing is not free for the API server the operator shares: Deployments only once every status is in.
    int deployments = done == o.pools ? static_cast<int>(client.list(res::kDeployments, ns)["items"].size()) : -1;
    if (deployments == o.pools) {
      out.reconcile_all_s = (mono_ms() - t0) / 1000.0;
      out.complete = true;
      break;
    }
    if (mono_ms() - last_report >= 5000) {
      std::cerr << "  " << done << "/" << o.pools << " pools reconciled after "
                << (mono_ms() - t0) / 1000 << " s\n";
      last_report = mono_ms();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  auto metrics = http_get_local(port, "/metrics");
  out.requests = metric_sum(metrics, "gasoline_operator_api_requests_total");
  out.writes = metric_sum(metrics, "gasoline_operator_writes_total");
  out.rss_mib = peak_rss_mib(op.pid());
  op.signal(SIGTERM);
  op.wait(std::chrono::seconds(40));
  client.remove(res::kNamespaces, "", ns);
  return out;
}

}  // namespace

CLI::App* add_operator_command(CLI::App& app, OperatorBenchOptions& o) {
  auto* cmd = app.add_subcommand("operator",
                                 "N pools created at once against a running API server (hack/cluster.sh up "
                                 "--minimal): reconcile time, API requests per pool, operator peak RSS");
  cmd->add_option("--pools", o.pools, "Pools created at once")->capture_default_str();
  cmd->add_option("--workers", o.workers, "Operator reconcile workers; one scenario per value")->capture_default_str();
  cmd->add_option("--kubeconfig", o.kubeconfig, "kubeconfig (default: $KUBECONFIG)");
  cmd->add_option("--crd", o.crd, "The CRD file to install (default: the repository's crds/)");
  cmd->add_option("--timeout", o.timeout_s, "Seconds per scenario")->capture_default_str();
  cmd->add_flag("--quick", [&o](int64_t) { o.pools = 100; }, "100 pools instead of 500");
  return cmd;
}

int run_operator(const OperatorBenchOptions& options) {
  OperatorBenchOptions o = options;
  if (o.kubeconfig.empty()) {
    const char* env = std::getenv("KUBECONFIG");
    if (!env || !*env)
      throw std::runtime_error("no kubeconfig: start a cluster (hack/cluster.sh up --minimal; eval \"$(hack/cluster.sh "
                               "env)\") or pass --kubeconfig");
    o.kubeconfig = env;
  }
  if (o.crd.empty()) o.crd = std::string(GASOLINE_SOURCE_DIR) + "/crds/gasoline.dev_gasolineworkerpools.yaml";
  kube::Http http(kube::load_kubeconfig(o.kubeconfig));
  kube::Client client(http);
  client.apply(kube::Resource{"apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
                              false},
               to_json(YAML::LoadFile(o.crd)));
  testing::wait_until(
      [&] {
        try {
          client.list(res::kPools, "default", "limit=1");
          return true;
        } catch (const std::exception&) {
          return false;
        }
      },
      std::chrono::seconds(60));
  testing::TempDir logs("gasoline-bench-operator");
  int status = 0;
  for (int workers : o.workers) {
    auto r = run_scenario(client, o, workers, o.kubeconfig, logs.path());
    Json line = {{"scenario", "operator"},
                 {"pools", o.pools},
                 {"workers", workers},
                 {"complete", r.complete},
                 {"reconcile_all_s", r.reconcile_all_s},
                 {"pools_per_s", r.complete ? o.pools / r.reconcile_all_s : 0},
                 {"api_requests_per_pool", r.requests / o.pools},
                 {"writes_per_pool", r.writes / o.pools},
                 {"rss_mib", r.rss_mib}};
    std::cout << line.dump() << std::endl;
    if (!r.complete) status = 1;
  }
  return status;
}

}  // namespace gasoline::bench
