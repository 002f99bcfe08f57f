#pragma once
// The client TLS flags, spelled the same in every binary that dials the kv (gasoline-worker, gasctl, the
// operator), each with its environment variable.
#include "kv/rpc/tls.h"

#include <CLI/CLI.hpp>

namespace gasoline::rpc::tls {

inline void add_client_flags(CLI::App& app, ClientFiles& files) {
  app.add_flag("--kv-tls", files.enabled,
               "Connect to the kv over TLS (implied by --kv-tls-ca and --kv-tls-ca-pem; without either, the "
               "server certificate is checked against the system's trust store)")
      ->envname("GASOLINE_KV_TLS");
  app.add_option("--kv-tls-ca", files.ca, "PEM file of the CA that signed the kv's certificate")
      ->envname("GASOLINE_KV_TLS_CA");
  app.add_option("--kv-tls-ca-pem", files.ca_pem, "The same CA as PEM text")->envname("GASOLINE_KV_TLS_CA_PEM");
  app.add_option("--kv-tls-cert", files.cert, "Client certificate (PEM), for a kv that requires one")
      ->envname("GASOLINE_KV_TLS_CERT");
  app.add_option("--kv-tls-key", files.key, "Key of --kv-tls-cert (PEM)")->envname("GASOLINE_KV_TLS_KEY");
  app.add_option("--kv-tls-server-name", files.server_name,
                 "Name the kv's certificate must carry, when it differs from the host dialled (an IP, a tunnel)")
      ->envname("GASOLINE_KV_TLS_SERVER_NAME");
}

// Call after parsing: a CA or a server name means TLS even without --kv-tls.
inline void settle(ClientFiles& files) {
  if (!files.ca.empty() || !files.ca_pem.empty() || !files.server_name.empty() || !files.cert.empty())
    files.enabled = true;
}

}  // namespace gasoline::rpc::tls
