#pragma once
// `gasoline-bench gateway`: what dispatching through gasoline-gateway costs against the kv's wire protocol, side by
// side in one run on one kv.
#include <CLI/CLI.hpp>

#include <cstddef>

namespace gasoline::bench {

struct GatewayBenchOptions {
  int rounds = 3;              // alternating rounds of every mode (the machine is noisy: compare medians)
  size_t dispatches = 20000;   // per round and mode
  int wire_clients = 4;        // wire: connections, each with `window` dispatches in flight
  size_t window = 64;
  int http_connections = 16;   // gateway: keep-alive HTTP connections, one request in flight on each
  size_t batch = 100;          // gateway batch: workflows per POST /v1/workflows/batch
};
CLI::App* add_gateway_command(CLI::App& app, GatewayBenchOptions& options);
int run_gateway(const GatewayBenchOptions& options);

}  // namespace gasoline::bench
