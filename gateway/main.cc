// gasoline-gateway: HTTP/JSON for services that are not workers (docs/gateway.md): dispatch (one or a batch), get,
// list with a cursor, signal and cancel, each request authenticated by the kv with the caller's own bearer token.
#include "common/http_server.h"
#include "common/log.h"
#include "common/port_file.h"
#include "common/signals.h"
#include "gateway/gateway.h"
#include "kv/rpc/tls_flags.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>

using namespace gasoline;

int main(int argc, char** argv) {
  sigset_t signals = block_termination_signals();

  CLI::App app{
      "gasoline-gateway: the kv's HTTP/JSON API for services that are not workers. Dispatch one workflow or a "
      "batch, read one, list a pool's with a cursor, signal and cancel, with the caller's bearer token (the kv "
      "checks it and its role, as on the wire protocol). The API is docs/openapi/gateway.yaml. Every flag can also "
      "be set through the environment variable shown next to it.\n\n"
      "Example:\n"
      "  gasoline-gateway --kv kv-0.kv:7400,kv-1.kv:7400 --listen 0.0.0.0:7490\n"
      "  curl -H \"Authorization: Bearer $TOKEN\" -d '{\"pool\":\"shop.orders\",\"name\":\"checkout\"}' "
      "localhost:7490/v1/workflows"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  std::string listen = "0.0.0.0:7490", port_file, log_level = "info";
  gateway::Options options;
  size_t max_body = 8 * 1024 * 1024;
  int64_t call_timeout_ms = options.call_timeout.count(), retry_for_ms = options.retry_for.count();
  app.add_option("--listen", listen, "host:port of the HTTP API (port 0: chosen at start, see --port-file)")
      ->envname("GASOLINE_GATEWAY_LISTEN")
      ->capture_default_str();
  app.add_option("--port-file", port_file, "Write the port here once listening (tests, scripts)");
  app.add_option("--kv", options.kv, "kv replicas, comma-separated host:port; 'not leader' redirects are followed")
      ->envname("GASOLINE_KV")
      ->delimiter(',')
      ->capture_default_str();
  rpc::tls::add_client_flags(app, options.kv_tls);
  app.add_option("--max-clients", options.max_clients,
                 "kv connections at once, one per distinct caller credential; beyond it the longest idle one closes")
      ->envname("GASOLINE_GATEWAY_MAX_CLIENTS")
      ->capture_default_str();
  app.add_option("--max-inflight", options.max_inflight, "Requests answered at once; more get 429")
      ->envname("GASOLINE_GATEWAY_MAX_INFLIGHT")
      ->capture_default_str();
  app.add_option("--max-body", max_body, "Largest request body in bytes (larger: 413)")
      ->envname("GASOLINE_GATEWAY_MAX_BODY")
      ->capture_default_str();
  app.add_option("--call-timeout-ms", call_timeout_ms, "One kv call's deadline")->capture_default_str();
  app.add_option("--retry-for-ms", retry_for_ms,
                 "How long a call is retried while the kv is unavailable (a leader election); then 503")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->envname("GASOLINE_LOG_LEVEL")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  log::init("gateway", log::parse_level(log_level).value_or(log::Level::kInfo));
  http::ServerOptions server_options;
  try {
    rpc::tls::settle(options.kv_tls);
    if (options.kv.empty()) throw std::invalid_argument("--kv: at least one host:port is needed");
    if (options.max_clients < 1 || options.max_inflight < 1)
      throw std::invalid_argument("--max-clients and --max-inflight must be at least 1");
    if (call_timeout_ms < 100 || retry_for_ms < 0)
      throw std::invalid_argument("--call-timeout-ms must be at least 100 and --retry-for-ms not negative");
    if (max_body < 1024) throw std::invalid_argument("--max-body: at least 1024 bytes");
    options.call_timeout = std::chrono::milliseconds(call_timeout_ms);
    options.retry_for = std::chrono::milliseconds(retry_for_ms);
    if (options.kv_tls.enabled) rpc::tls::client_context(options.kv_tls);  // a CA that does not load stops here
    auto colon = listen.rfind(':');
    if (colon == std::string::npos) throw std::invalid_argument("--listen: expected host:port, got '" + listen + "'");
    server_options.host = listen.substr(0, colon);
    server_options.port = std::stoi(listen.substr(colon + 1));
    server_options.max_body = max_body;
    server_options.timeout_s = static_cast<int>((call_timeout_ms + retry_for_ms) / 1000 + 30);
  } catch (const std::exception& e) {
    std::cerr << "gasoline-gateway: " << e.what() << "\n";
    return 2;
  }

  gateway::Metrics metrics;
  gateway::Gateway gw(options, metrics);
  auto server = http::make_server(server_options,
                                  [&gw](http::Request r, http::Reply reply) { gw.handle(std::move(r), std::move(reply)); });
  try {
    server->start();
    if (!port_file.empty()) write_port_file(port_file, server->port());
  } catch (const std::exception& e) {
    log::error("cannot serve the HTTP API", {{"listen", listen}, {"error", e.what()}});
    return 1;
  }
  log::info("gateway listening", {{"address", server_options.host + ":" + std::to_string(server->port())},
                                  {"kv", options.kv},
                                  {"kv_tls", options.kv_tls.enabled}});
  int sig = 0;
  while (sigwait(&signals, &sig) != 0) {
  }
  log::info("signal received: answering what is in flight, then stopping", {{"signal", sig}});
  gw.shutdown(options.call_timeout);
  server->stop();
  log::info("gasoline-gateway stopped", {});
  // cpprestsdk's static thread pool must not race static destructors.
  std::fflush(nullptr);
  std::_Exit(0);
}
