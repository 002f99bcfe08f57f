// gasoline-kv: the state service, one replica alone or 3 or 5 replicated by Raft (--raft-id and --peer).
#include "common/admin_server.h"
#include "common/log.h"
#include "common/port_file.h"
#include "common/token_file.h"
#include "kv/assign/shedding.h"
#include "kv/auth/token_review.h"
#include "kv/assign/strategy.h"
#include "kv/raft/peers.h"
#include "kv/raft/raft_log.h"
#include "kv/raft/tls_pump.h"
#include "kv/rpc/credentials_file.h"
#include "kv/rpc/server.h"
#include "kv/service/local_log.h"
#include "kv/service/readiness.h"
#include "kv/service/service.h"
#include "kv/store/state_machine.h"
#include "operator/kube/config.h"

#include <CLI/CLI.hpp>
#include <boost/asio/steady_timer.hpp>
#include <prometheus/text_serializer.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

using namespace gasoline;

namespace {
}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a peer closing its socket must not kill the process
  CLI::App app{"gasoline-kv: the Gasoline state service. It stores worker pings, workflows, wake-ups, signals and "
               "fenced leases in RocksDB, and assigns due workflows to workers (smart pulling)."};
  std::string listen = "127.0.0.1:7400";
  std::string data_dir;
  std::string token_file;
  std::string credentials_file;
  bool kube_token_review = false;
  std::string kubeconfig;
  std::string kube_audience = kv::auth::kAudience;
  int64_t kube_review_cache_ms = 60000;
  bool allow_unauthenticated = false;
  rpc::tls::ServerFiles tls_files;
  bool tls_allow_plaintext = false;
  std::string metrics_listen = "127.0.0.1:9400";
  std::string strategy_name = "rendezvous";
  kv::ServiceConfig config;
  double shed_start = 50, shed_end = 80;
  uint32_t shed_min = 100;
  bool no_fsync = false;
  int io_threads = 2;
  std::string log_level = "info";
  std::string port_file;
  size_t max_frame = rpc::kDefaultMaxFrame;
  rpc::ServerOptions defaults;
  int64_t hello_timeout_ms = defaults.hello_timeout_ms;
  size_t max_unauthenticated = defaults.max_unauthenticated;
  store::Config store_config;
  uint64_t raft_id = 0;
  std::vector<std::string> peer_specs;
  std::string raft_bind;
  std::string raft_secret_file;
  std::string raft_tls_cert, raft_tls_key, raft_tls_ca;
  unsigned raft_handshake_timeout_ms = 5000;
  raft::RaftOptions raft_options;

  app.add_option("--listen", listen, "Address for clients and workers (host:port)")->capture_default_str();
  app.add_option("--data-dir", data_dir, "Directory of this replica's RocksDB")->required();
  app.add_option("--token-file", token_file,
                 "File holding the admin bearer token (every op on every pool: the operator, gasctl)");
  app.add_option("--credentials-file", credentials_file,
                 "File of scoped bearer tokens, one 'ROLE SCOPE TOKEN' a line: 'admin * T', 'worker NAMESPACE T', "
                 "'client NAMESPACE T', 'viewer * T', 'viewer NAMESPACE T' (docs/security.md, Roles). Reread when it "
                 "changes: open connections whose line is gone or changed are closed");
  app.add_flag("--kube-token-review", kube_token_review,
               "Accept projected ServiceAccount tokens (audience --kube-audience), verified with a TokenReview: "
               "system:serviceaccount:NS:* becomes worker and client of namespace NS. The kv's ServiceAccount needs "
               "`create tokenreviews`");
  app.add_option("--kubeconfig", kubeconfig,
                 "API server for --kube-token-review (default: $KUBECONFIG, then the pod's service account)");
  app.add_option("--kube-audience", kube_audience, "The audience the ServiceAccount tokens must be issued for")
      ->capture_default_str();
  app.add_option("--kube-review-cache-ms", kube_review_cache_ms,
                 "How long a TokenReview's positive answer is reused (never past the token's expiry)")
      ->capture_default_str();
  app.add_option("--tls-cert", tls_files.cert,
                 "Serve clients over TLS with this certificate chain (PEM, leaf first); reread when it changes, so a "
                 "rotated Secret applies to new connections")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", tls_files.key, "The key of --tls-cert (PEM)")->check(CLI::ExistingFile);
  app.add_option("--tls-client-ca", tls_files.client_ca,
                 "Require every client to present a certificate signed by this CA (mutual TLS; needs --tls-cert)")
      ->check(CLI::ExistingFile);
  app.add_flag("--tls-allow-plaintext", tls_allow_plaintext,
               "With --tls-cert, also serve clients that do not speak TLS: only while moving clients to TLS");
  app.add_flag("--allow-unauthenticated", allow_unauthenticated,
               "Accept clients without a token (development only; --token-file is required otherwise)");
  app.add_option("--metrics-listen", metrics_listen, "Address of /metrics and the probes /healthz and /readyz ('' disables them)")
      ->capture_default_str();
  app.add_option("--strategy", strategy_name, "Assignment strategy: rendezvous, modulo-next or all")
      ->capture_default_str();
  app.add_option("--ping-interval-ms", config.ping_interval_ms, "Expected worker ping interval; active window = 3x")
      ->capture_default_str();
  app.add_option("--lost-after-ms", config.lost_after_ms, "Reclaim the leases of a worker silent this long")
      ->capture_default_str();
  app.add_option("--lost-after-disconnect-ms", config.lost_after_disconnect_ms,
                 "Reclaim sooner, after this much silence, the leases of a worker whose connection closed (its "
                 "process died); at least 2 ping intervals, less than --lost-after-ms; 0 = off; default "
                 "max(2 ping intervals, half of --lost-after-ms)");
  app.add_option("--orphan-grace-ms", config.orphan_grace_ms,
                 "Release a lease its live worker has not reported holding for this long (a lost pull answer)")
      ->capture_default_str();
  app.add_option("--retention-ms", config.retention_ms,
                 "Delete finished workflows this long after they finished (a pool may set its own with gasctl "
                 "pool retention; 0 = keep forever)")
      ->capture_default_str();
  app.add_option("--retention-sweep-ms", config.retention_sweep_ms, "How often the leader deletes expired workflows")
      ->capture_default_str();
  app.add_option("--backup-grace-ms", config.backup_grace_ms, "How overdue work must be before the backup takes it")
      ->capture_default_str();
  app.add_option("--scan-cap", config.scan_cap, "Wake entries one pull scans at most")->capture_default_str();
  app.add_option("--max-pull", config.max_pull, "Tasks one pull returns at most")->capture_default_str();
  app.add_option("--shed-start", shed_start, "CPU % where load shedding starts (default curve)")->capture_default_str();
  app.add_option("--shed-end", shed_end, "CPU % where shedding reaches its floor")->capture_default_str();
  app.add_option("--shed-min-ratio", shed_min, "Per-mille of work still pulled at or above the end knee")
      ->capture_default_str();
  app.add_option("--max-attempts", store_config.default_max_attempts, "Default attempts before a retried step fails")
      ->capture_default_str();
  app.add_option("--retry-base-ms", store_config.retry_base_ms, "Default retry backoff base")->capture_default_str();
  app.add_option("--retry-max-ms", store_config.retry_max_ms, "Default retry backoff cap")->capture_default_str();
  app.add_flag("--no-fsync", no_fsync, "Do not fsync applied entries (benchmarks of the CPU path only)");
  app.add_option("--io-threads", io_threads, "RPC I/O threads")->capture_default_str();
  app.add_option("--max-frame", max_frame, "Largest accepted frame in bytes")->capture_default_str();
  app.add_option("--hello-timeout-ms", hello_timeout_ms,
                 "Close a connection that has not authenticated (sent its hello) within this time")
      ->capture_default_str();
  app.add_option("--max-unauthenticated", max_unauthenticated,
                 "Connections waiting for their hello at most; newer ones are refused until some authenticate")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "debug, info, warn or error")->capture_default_str();
  app.add_option("--raft-id", raft_id, "This replica's Raft id (StatefulSet ordinal + 1); needs --peer");
  bool raft_id_from_pod_name = false;
  app.add_flag("--raft-id-from-pod-name", raft_id_from_pod_name,
               "Take the Raft id from $POD_NAME (or the host name): the StatefulSet ordinal + 1")
      ->excludes("--raft-id");
  app.add_option("--peer", peer_specs,
                 "A replica of the cluster, this one included: ID=RAFT_HOST:PORT,CLIENT_HOST:PORT (repeat; host "
                 "names are resolved on every connect). Without --peer the kv runs a single replica.");
  app.add_flag("--join", raft_options.join,
               "This replica is being added to a running cluster (gasctl cluster add): don't bootstrap, wait for "
               "the leader. --peer must still name this replica");
  app.add_option("--raft-secret-file", raft_secret_file,
                 "File holding the secret every replica proves it holds before exchanging Raft messages (not the "
                 "client token; at least 16 bytes). Required with --peer");
  app.add_option("--raft-tls-cert", raft_tls_cert,
                 "Encrypt Raft traffic with TLS after the secret handshake: this replica's certificate (PEM), which "
                 "must name its Raft host; needs --raft-tls-key and --raft-tls-ca, on every replica at once")
      ->check(CLI::ExistingFile);
  app.add_option("--raft-tls-key", raft_tls_key, "The key of --raft-tls-cert (PEM)")->check(CLI::ExistingFile);
  app.add_option("--raft-tls-ca", raft_tls_ca, "The CA every replica's --raft-tls-cert must chain to (PEM)")
      ->check(CLI::ExistingFile);
  app.add_option("--raft-handshake-timeout-ms", raft_handshake_timeout_ms,
                 "A Raft peer's handshake not finished within this is dropped")
      ->capture_default_str();
  app.add_option("--raft-bind", raft_bind, "Where the Raft transport listens (default: this peer's Raft address)");
  app.add_option("--election-timeout-ms", raft_options.election_timeout_ms, "Raft election timeout")
      ->capture_default_str();
  app.add_option("--heartbeat-ms", raft_options.heartbeat_timeout_ms, "Raft heartbeat interval")->capture_default_str();
  app.add_option("--snapshot-threshold", raft_options.snapshot_threshold, "Raft entries between snapshots")
      ->capture_default_str();
  app.add_option("--snapshot-trailing", raft_options.snapshot_trailing, "Raft entries kept behind a snapshot")
      ->capture_default_str();
  app.add_option("--port-file", port_file, "Write the bound client port here once listening (for tests)");
  CLI11_PARSE(app, argc, argv);

  auto level = log::parse_level(log_level);
  log::init("kv", level.value_or(log::Level::kInfo));
  try {
    auto strategy = assign::parse_strategy(strategy_name);
    if (!strategy) throw std::invalid_argument("unknown --strategy '" + strategy_name + "'");
    config.strategy = *strategy;
    config.shed = assign::ShedCurve{shed_start / 100.0, shed_end / 100.0, shed_min};
    if (auto e = assign::validate(config.shed)) throw std::invalid_argument("shedding curve: " + *e);
    if (config.ping_interval_ms <= 0 || config.lost_after_ms <= 0)
      throw std::invalid_argument("--ping-interval-ms and --lost-after-ms must be positive");
    if (config.lost_after_disconnect_ms < -1 ||
        (config.lost_after_disconnect_ms > 0 && (config.lost_after_disconnect_ms < 2 * config.ping_interval_ms ||
                                                 config.lost_after_disconnect_ms >= config.lost_after_ms)))
      throw std::invalid_argument(
          "--lost-after-disconnect-ms must be -1 (the default), 0 (off), or at least two ping intervals (" +
          std::to_string(2 * config.ping_interval_ms) + " ms) and less than --lost-after-ms (" +
          std::to_string(config.lost_after_ms) + " ms): a live worker that reconnects must have time to ping");
    if (config.retention_ms < 0 || config.retention_sweep_ms <= 0)
      throw std::invalid_argument("--retention-ms must not be negative and --retention-sweep-ms must be positive");
    if (config.orphan_grace_ms < 2 * config.ping_interval_ms)
      throw std::invalid_argument("--orphan-grace-ms must be at least two ping intervals (" +
                                  std::to_string(2 * config.ping_interval_ms) +
                                  " ms): a lease is orphaned only after two reports without it");
    if (config.lost_after_ms < config.active_window_ms())
      log::warn("--lost-after-ms is shorter than the active window (3 pings); workers may be reclaimed while "
                "still ranked");
    std::string token;
    if (!token_file.empty()) {
      token = read_token_file(token_file);
    } else if (credentials_file.empty() && !kube_token_review && !allow_unauthenticated) {
      throw std::invalid_argument(
          "--token-file (or --credentials-file) is required (or --allow-unauthenticated for development)");
    }
    std::shared_ptr<rpc::CredentialsFile> credentials;
    if (!credentials_file.empty()) credentials = std::make_shared<rpc::CredentialsFile>(credentials_file);

    std::filesystem::create_directories(data_dir);
    bool replicated = !peer_specs.empty();
    for (const auto& spec : peer_specs) raft_options.peers.push_back(raft::parse_peer(spec));
    if (raft_id_from_pod_name) {
      const char* pod = std::getenv("POD_NAME");
      raft_id = raft::raft_id_from_pod_name(pod && *pod ? pod : boost::asio::ip::host_name());
      log::info("raft id from the pod name", {{"raft_id", raft_id}});
    }
    if (replicated && raft_id == 0) throw std::invalid_argument("--peer needs --raft-id");
    // Loaded before anything starts, so a bad certificate stops the replica with the file and the reason.
    std::shared_ptr<rpc::tls::ReloadingContext> tls_context;
    if (tls_files.enabled()) {
      tls_context = std::make_shared<rpc::tls::ReloadingContext>(tls_files);
      log::info("serving clients over TLS", {{"cert", tls_files.cert}, {"mutual", !tls_files.client_ca.empty()}});
    } else if (!tls_files.client_ca.empty() || tls_allow_plaintext) {
      throw std::invalid_argument("--tls-client-ca and --tls-allow-plaintext need --tls-cert and --tls-key");
    }
    if (tls_allow_plaintext)
      log::warn("also serving plaintext clients (--tls-allow-plaintext): their tokens and data cross the network in "
                "clear; turn it off once every client uses TLS");
    if (replicated) {
      // Without a secret any process that reaches the Raft port could join as a replica and read or rewrite the
      // whole state, so there is no unauthenticated mode.
      if (raft_secret_file.empty())
        throw std::invalid_argument("--peer needs --raft-secret-file: replicas authenticate each other with a shared "
                                    "raft secret (generate one with `head -c 32 /dev/urandom | base64`)");
      raft_options.secret = read_token_file(raft_secret_file);
      if (raft_options.secret == token)
        throw std::invalid_argument("the raft secret (--raft-secret-file) must differ from the client token: "
                                    "whoever holds a client token must not be able to join the cluster");
      raft_options.handshake_timeout = std::chrono::milliseconds(raft_handshake_timeout_ms);
      if (!raft_tls_cert.empty() || !raft_tls_key.empty() || !raft_tls_ca.empty()) {
        if (raft_tls_cert.empty() || raft_tls_key.empty() || raft_tls_ca.empty())
          throw std::invalid_argument("Raft TLS needs --raft-tls-cert, --raft-tls-key and --raft-tls-ca together");
        raft_options.tls = raft::raft_tls_context(raft_tls_cert, raft_tls_key, raft_tls_ca);
        log::info("raft traffic over TLS", {{"cert", raft_tls_cert}, {"ca", raft_tls_ca}});
      }
    }
    // Replicated, the Raft log is the write-ahead log (fsynced by libraft), so RocksDB needs neither fsync nor a
    // WAL of its own: after a crash, whatever RocksDB lost is replayed from the log or reinstalled from a snapshot.
    auto sm = store::StateMachine::open(
        store::Options{data_dir + "/state", !no_fsync && !replicated, store_config, /*wal=*/!replicated});
    log::info("state loaded", {{"data_dir", data_dir}, {"applied_index", sm->applied_index()}});
    log::info("worker timings", {{"ping_interval_ms", config.ping_interval_ms},
                                 {"lost_after_ms", config.lost_after_ms},
                                 {"lost_after_disconnect_ms", config.disconnect_grace_ms()}});

    boost::asio::io_context io;
    kv::Metrics metrics;
    // Series without labels exist from the start, so /metrics is never empty (scrapers and probes see a live kv).
    metrics.applied_index(static_cast<double>(sm->applied_index()));
    metrics.bumps(0);
    raft_options.on_handshake_refused = [&metrics](const std::string& reason) {
      metrics.raft_handshake_refused(reason);
    };
    raft_options.on_tls_failed = [&metrics](const std::string& reason) {
      log::warn("raft TLS connection failed", {{"reason", reason}});
      metrics.raft_handshake_refused("tls");
    };
    raft_options.on_commit_latency = [&metrics](double seconds) { metrics.raft_commit_latency(seconds); };
    raft_options.on_raft_state = [&metrics](uint64_t term, bool has_leader, bool is_leader, bool changed) {
      metrics.raft_state(term, has_leader, is_leader, changed);
    };
    kv::Service service(*sm, io, config, metrics);
    auto on_applied = [&](int64_t ts, size_t commands, const std::vector<store::Wake>& wakes) {
      service.on_applied(ts, commands, wakes);
    };
    std::unique_ptr<kv::LocalLog> local;
    std::unique_ptr<raft::RaftLog> replicated_log;
    if (replicated) {
      raft_options.id = raft_id;
      raft_options.dir = data_dir + "/raft";
      raft_options.bind_address = raft_bind;
      replicated_log = std::make_unique<raft::RaftLog>(
          *sm, raft_options, on_applied, [&](bool leader) { service.on_leadership(leader); });
      replicated_log->set_completion_executor([&io](std::function<void()> fn) { boost::asio::post(io, std::move(fn)); });
      service.attach(replicated_log.get(), replicated_log.get());
      replicated_log->start();
    } else {
      local = std::make_unique<kv::LocalLog>(*sm, listen, on_applied);
      service.attach(local.get());
      // Without Raft this replica is the whole cluster: it leads, so "kv without a leader" alerts never fire.
      metrics.raft_state(0, true, true, true);
    }

    rpc::ServerOptions server_options;
    server_options.token = token;
    std::unique_ptr<kv::auth::TokenReviewer> reviewer;
    if (kube_token_review) {
      kv::auth::ReviewerOptions ro;
      ro.config = kube::load_config(kubeconfig);
      ro.audience = kube_audience;
      ro.cache_max_ms = kube_review_cache_ms;
      ro.on_review = [&metrics](const std::string& result) { metrics.token_review(result); };
      log::info("verifying ServiceAccount tokens with TokenReviews",
                {{"api_server", ro.config.server}, {"config", ro.config.source}, {"audience", kube_audience}});
      reviewer = std::make_unique<kv::auth::TokenReviewer>(std::move(ro));
    }
    if (credentials || reviewer) {
      rpc::authz::Authenticator review;
      if (reviewer)
        review = [r = reviewer.get()](const std::string& t, rpc::authz::AuthDone done) {
          r->authenticate(t, std::move(done));
        };
      auto none = std::make_shared<const rpc::Credentials>();
      server_options.authenticate = rpc::make_authenticator(
          token, [credentials, none] { return credentials ? credentials->current() : none; }, std::move(review));
    }
    if (credentials) {
      server_options.credentials_revision = [credentials] { return credentials->revision(); };
      server_options.recheck = [credentials](const std::string& t) { return credentials->current()->find(t); };
    }
    server_options.tls = tls_context;
    server_options.tls_allow_plaintext = tls_allow_plaintext;
    server_options.max_frame = max_frame;
    server_options.hello_timeout_ms = hello_timeout_ms;
    server_options.max_unauthenticated = max_unauthenticated;
    server_options.on_error = [&](const std::string& code) { metrics.rpc_error(code); };
    server_options.on_close = [&](rpc::Session& s) { service.on_session_closed(s); };
    rpc::Server server(io, rpc::parse_endpoint(io, listen), server_options,
                       [&](rpc::Request req, rpc::Responder r) { service.handle(std::move(req), r); });

    // /metrics, and the kubelet's probes: /healthz (the process serves) and /readyz (it can take client traffic:
    // kv/service/readiness.h).
    std::unique_ptr<AdminServer> admin;
    if (!metrics_listen.empty()) {
      const kv::ClusterAdmin* raft_state = replicated_log.get();
      try {
        admin = std::make_unique<AdminServer>(metrics_listen, [&metrics, raft_state](const std::string& path) {
          if (path == "/metrics") {
            std::ostringstream out;
            prometheus::TextSerializer().Serialize(out, metrics.registry()->Collect());
            return AdminReply{200, out.str(), "text/plain; version=0.0.4"};
          }
          if (path == "/healthz") return AdminReply{200, "ok\n"};
          if (path == "/readyz") {
            auto why = kv::not_ready_reason(raft_state ? raft_state->cluster_status() : nlohmann::json());
            return why.empty() ? AdminReply{200, "ok\n"} : AdminReply{503, why + "\n"};
          }
          return AdminReply{404, "served here: /metrics, /healthz, /readyz\n"};
        });
      } catch (const std::exception& e) {
        throw std::runtime_error("--metrics-listen " + metrics_listen +
                                 ": cannot serve metrics there (is the port taken or the address not local?): " +
                                 e.what());
      }
    }

    server.start();
    service.start();
    if (!port_file.empty()) {
      write_port_file(port_file, server.port());
    }
    log::info("gasoline-kv listening", {{"listen", listen},
                                        {"port", server.port()},
                                        {"metrics", metrics_listen},
                                        {"strategy", strategy_name},
                                        {"replicas", replicated ? raft_options.peers.size() : 1},
                                        {"fsync", !no_fsync},
                                        {"auth", !server_options.authenticate && token.empty() ? "disabled"
                                                 : reviewer ? "token, credentials and TokenReview"
                                                 : server_options.authenticate ? "token and credentials"
                                                                               : "token"}});

    std::once_flag stopped;
    auto stop_serving = [&] {
      std::call_once(stopped, [&] {
        server.stop();
        service.stop();
        io.stop();
      });
    };
    // A leader that stops hands its leadership over first (the most up-to-date voter takes it at once), so a
    // rolling update or a deleted pod costs clients a redirect instead of an election timeout with no leader.
    boost::asio::steady_timer handoff_deadline(io);
    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code, int sig) {
      log::info("shutting down", {{"signal", sig}});
      if (!replicated_log || !replicated_log->is_leader()) return stop_serving();
      const auto started = std::chrono::steady_clock::now();
      replicated_log->transfer_leadership(0, [&, started](const store::Result& r) {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
        if (r.ok())
          log::info("handed the leadership over before stopping", {{"ms", ms.count()}});
        else
          log::warn("could not hand the leadership over; the others elect a leader", {{"error", r.message}});
        boost::asio::post(io, stop_serving);
      });
      handoff_deadline.expires_after(std::chrono::seconds(2));
      handoff_deadline.async_wait([&](boost::system::error_code ec) {
        if (ec) return;
        log::warn("the leadership handoff took over 2 s; stopping anyway");
        stop_serving();
      });
    });
    std::vector<std::thread> threads;
    for (int i = 1; i < io_threads; ++i) threads.emplace_back([&] { io.run(); });
    io.run();
    for (auto& t : threads) t.join();
    if (replicated_log) replicated_log->stop();
    if (local) local->stop();
    log::info("stopped", {{"applied_index", sm->applied_index()}});
    return 0;
  } catch (const std::exception& e) {
    log::error("gasoline-kv failed", {{"error", e.what()}});
    return 1;
  }
}
