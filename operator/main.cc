// gasoline-operator: reconciles GasolineWorkerPools into a Deployment (app + gasoline-worker as a native sidecar),
// a Service, an HPA on the app container's CPU, a PDB and a NetworkPolicy, and reports each pool's status (docs/operator.md).
#include "common/log.h"
#include "common/signals.h"
#include "common/token_file.h"
#include "kv/rpc/tls_flags.h"
#include "common/admin_server.h"
#include "operator/controller.h"
#include "operator/kube/election.h"

#include <CLI/CLI.hpp>

#include <atomic>
#include <csignal>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <pthread.h>
#include <unistd.h>

using namespace gasoline;

namespace {

std::string default_identity() {
  if (const char* pod = std::getenv("POD_NAME"); pod && *pod) return pod;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return std::string(host) + "-" + std::to_string(getpid());
}

// A JSON list of NetworkPolicyPeer objects; the API server checks their fields when the policy is applied.
nlohmann::json parse_peers(const std::string& flag, const std::string& text) {
  auto peers = nlohmann::json::parse(text, nullptr, false);
  if (peers.is_discarded() || !peers.is_array())
    throw std::invalid_argument(flag + ": need a JSON list of NetworkPolicy peers, e.g. "
                                "[{\"namespaceSelector\":{\"matchLabels\":{\"kubernetes.io/metadata.name\":\"monitoring\"}}}], "
                                "got " + text);
  for (const auto& p : peers)
    if (!p.is_object() || p.empty())
      throw std::invalid_argument(flag + ": every peer must be a non-empty object (podSelector, namespaceSelector "
                                  "or ipBlock), got " + p.dump());
  return peers;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "gasoline-operator: watches GasolineWorkerPools (gwp) and reconciles each into a Deployment (the app plus the "
      "gasoline-worker sidecar), a Service, an HPA on the app container's CPU and a PodDisruptionBudget, and keeps "
      "the pool's status (replicas, readiness, active workers from the kv, conditions)."};
  std::string kubeconfig, context, watch_namespace, identity = default_identity();
  bool leader_elect = false;
  std::string election_ns, election_name = "gasoline-operator";
  std::string metrics_listen = "0.0.0.0:8080", probe_listen = "0.0.0.0:8081";
  std::string kv_token_file, log_level = "info";
  op::ControllerOptions options;
  int resync_s = 600, kv_poll_s = 10, sync_timeout_s = 120, shutdown_timeout_s = 30;
  options.defaults.sidecar_image = "ghcr.io/gasoline-dev/gasoline:0.1.0";

  app.add_option("--kubeconfig", kubeconfig, "kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)");
  app.add_option("--context", context, "kubeconfig context (default: current-context)");
  app.add_option("--namespace", watch_namespace, "Watch pools in this namespace only (default: all namespaces)");
  app.add_flag("--leader-elect", leader_elect, "Run only while holding the leader Lease (15 s / 10 s / 2 s)");
  app.add_option("--leader-election-namespace", election_ns,
                 "Namespace of the Lease (default: the kubeconfig's or the pod's namespace)");
  app.add_option("--leader-election-id", election_name, "Name of the Lease")->capture_default_str();
  app.add_option("--identity", identity, "This replica's identity in the Lease and in Events (default: $POD_NAME)");
  app.add_option("--metrics-listen", metrics_listen, "host:port of /metrics ('' = off)")->capture_default_str();
  app.add_option("--probe-listen", probe_listen, "host:port of /healthz and /readyz ('' = off)")->capture_default_str();
  app.add_option("--sidecar-image", options.defaults.sidecar_image, "gasoline-worker image for pools that set none")
      ->capture_default_str();
  app.add_option("--kv-address", options.defaults.kv_address,
                 "kv address (host:port, comma-separated) for pools that set none, e.g. gasoline-kv.gasoline.svc:7400");
  app.add_option("--allowed-kv-address", options.defaults.allowed_kv_addresses,
                 "Another kv address (host:port) a pool's spec.kv.address may name (repeat or comma-separate). Only "
                 "--kv-address is allowed otherwise: the operator connects to a pool's kv with its own token")
      ->delimiter(',');
  app.add_option("--sidecar-kv-credential", options.defaults.sidecar_kv_credential,
                 "What sidecars present to the kv: 'secret' (the kv token Secret, copied into each pool namespace) "
                 "or 'service-account' (the pod's projected ServiceAccount token, audience gasoline-kv; needs a kv "
                 "with --kube-token-review)")
      ->check(CLI::IsMember({"secret", "service-account"}))
      ->capture_default_str();
  std::string pool_admin_from = "[]";
  app.add_option("--pool-network-policy", options.defaults.pool_network_policy,
                 "Give every pool a NetworkPolicy that fences its sidecars' admin port (a pool's "
                 "spec.networkPolicy.enabled overrides it)")
      ->capture_default_str();
  app.add_option("--pool-admin-from", pool_admin_from,
                 "JSON list of NetworkPolicy peers allowed to the sidecars' admin port (/metrics, /readyz) for pools "
                 "that set no spec.networkPolicy.adminFrom, e.g. your Prometheus' namespace; [] = the node only")
      ->capture_default_str();
  app.add_option("--kv-token-file", kv_token_file, "Bearer token for reading active workers from the kv");
  rpc::tls::add_client_flags(app, options.kv_tls);
  app.add_option("--workers", options.workers, "Pools reconciled in parallel")->capture_default_str();
  app.add_option("--resync-seconds", resync_s, "Re-check every pool this often even without changes")
      ->capture_default_str();
  app.add_option("--kv-poll-seconds", kv_poll_s, "How often active workers are read from the kv")
      ->capture_default_str();
  app.add_option("--sync-timeout-seconds", sync_timeout_s, "Give up when the caches do not fill in this time")
      ->capture_default_str();
  app.add_option("--shutdown-timeout-seconds", shutdown_timeout_s, "Graceful shutdown limit")->capture_default_str();
  app.add_option("--log-level", log_level, "debug, info, warn or error")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  log::init("operator", log::parse_level(log_level).value_or(log::Level::kInfo));
  // SIGTERM/SIGINT are taken by this thread with sigwait; every thread started later inherits the mask.
  sigset_t signals = block_termination_signals();

  try {
    if (options.workers < 1) throw std::invalid_argument("--workers must be at least 1");
    options.defaults.pool_admin_from = parse_peers("--pool-admin-from", pool_admin_from);
    options.resync = std::chrono::seconds(resync_s);
    options.kv_poll = std::chrono::seconds(kv_poll_s);
    options.identity = identity;
    options.watch_namespace = watch_namespace;
    if (!kv_token_file.empty()) options.kv_token = read_token_file(kv_token_file);
    rpc::tls::settle(options.kv_tls);
    if (!options.kv_tls.server_name.empty() || !options.kv_tls.cert.empty())
      throw std::invalid_argument("--kv-tls-server-name and --kv-tls-cert are not passed on to sidecars: give the "
                                  "kv a certificate for the name in --kv-address, and no client certificates");
    options.defaults.kv_tls = options.kv_tls.enabled;
    options.defaults.kv_tls_ca_pem =
        options.kv_tls.ca.empty() ? options.kv_tls.ca_pem : read_token_file(options.kv_tls.ca) + "\n";
    if (options.kv_tls.enabled) rpc::tls::client_context(options.kv_tls);  // a CA that does not load stops here
    auto config = kube::load_config(kubeconfig, context);
    if (election_ns.empty()) election_ns = config.ns;
    log::info("starting", {{"kubernetes", config.server},
                           {"config", config.source},
                           {"namespace", watch_namespace.empty() ? "(all)" : watch_namespace},
                           {"identity", identity},
                           {"leader_elect", leader_elect}});

    op::Metrics metrics;
    kube::Http http(config);
    http.set_observer([&](std::string_view method, int status) { metrics.api_request(method, status); });
    kube::Client client(http);
    op::Controller controller(client, options, metrics);
    // Lease requests get a short timeout: a renewal stuck on a dead connection must fail well inside the 10 s renew
    // deadline, so that leadership is given up before the 15 s lease can pass to another replica.
    kube::Client election_client(http, std::chrono::milliseconds(1500));
    kube::LeaderElector elector(election_client, kube::ElectionOptions{election_ns, election_name, identity});

    std::unique_ptr<AdminServer> metrics_server, probe_server;
    if (!metrics_listen.empty())
      metrics_server = std::make_unique<AdminServer>(metrics_listen, [&](const std::string& path) {
        if (path != "/metrics") return AdminReply{404, "only /metrics is served here\n"};
        return AdminReply{200, metrics.text(), "text/plain; version=0.0.4"};
      });
    if (!probe_listen.empty())
      probe_server = std::make_unique<AdminServer>(probe_listen, [&](const std::string& path) {
        if (path == "/healthz") return AdminReply{200, "ok\n"};
        if (path == "/readyz") {
          // A leader is ready once its caches synced; a standby is ready while it can reach the API server (its
          // last campaign read the lease), so a standby cut off from the API server is not counted as a spare.
          if (elector.leading() || !leader_elect)
            return controller.synced() ? AdminReply{200, "ok\n"} : AdminReply{503, "caches not synced\n"};
          return elector.api_reachable() ? AdminReply{200, "ok: standby\n"}
                                         : AdminReply{503, "standby cannot reach the API server\n"};
        }
        return AdminReply{404, "serving /healthz and /readyz\n"};
      });

    std::atomic<bool> lost{false}, shutting_down{false};
    std::thread starter;
    // Starting the controller (cache sync) runs beside the elector, which must keep renewing meanwhile.
    auto lead = [&] {
      metrics.set_leader(true);
      starter = std::thread([&] {
        try {
          controller.start(std::chrono::seconds(sync_timeout_s));
        } catch (const std::exception& e) {
          if (shutting_down) return;  // stop() interrupted a cache sync
          log::error("operator failed", {{"error", e.what()}});
          lost = true;
          kill(getpid(), SIGTERM);
        }
      });
    };
    std::thread runner([&] {
      if (!leader_elect) {
        lead();
        return;
      }
      if (!elector.run(lead)) {
        // Another replica may lead already: stop acting at once, without a graceful drain (as controller-runtime).
        log::error("lost the leader lease; exiting at once");
        std::_Exit(1);
      }
    });

    int sig = 0;
    sigwait(&signals, &sig);
    log::info("shutting down", {{"signal", sig}, {"lost_leadership", lost.load()}});
    // Past the shutdown limit, exit anyway (a reconcile stuck on an unreachable API server must not keep the pod).
    std::thread watchdog([shutdown_timeout_s] {
      std::this_thread::sleep_for(std::chrono::seconds(shutdown_timeout_s));
      log::error("graceful shutdown took too long; exiting");
      std::_Exit(1);
    });
    watchdog.detach();
    shutting_down = true;
    controller.stop();  // finishes reconciles in flight (still renewing the lease) and ends a cache sync
    elector.stop();
    runner.join();
    if (starter.joinable()) starter.join();
    if (!lost) elector.release();
    metrics.set_leader(false);
    log::info("stopped");
    return lost ? 1 : 0;
  } catch (const std::exception& e) {
    log::error("cannot start", {{"error", e.what()}});
    std::cerr << "gasoline-operator: " << e.what() << "\n";
    return 1;
  }
}
