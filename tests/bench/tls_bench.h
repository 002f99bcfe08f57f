#pragma once
// `gasoline-bench tls`: what TLS on the client port costs, plain and TLS kv side by side in one run.
#include <CLI/CLI.hpp>

namespace gasoline::bench {

struct TlsBenchOptions {
  int rounds = 3;           // alternating plain / TLS rounds (the machine is noisy: compare medians)
  int clients = 4;          // connections dispatching at once
  size_t window = 64;       // dispatches in flight per connection
  size_t dispatches = 20000;  // per round and mode
  int connects = 200;       // new connections (TCP, TLS handshake, hello, one status) per round and mode
};
CLI::App* add_tls_command(CLI::App& app, TlsBenchOptions& options);
int run_tls(const TlsBenchOptions& options);

}  // namespace gasoline::bench
