#pragma once
// A raft_uv_transport that resolves host names on every connect and admits only peers that prove they hold the
// cluster's Raft secret. libraft 0.15's TCP transport only parses IPv4 literals, but StatefulSet peers are DNS
// names (gasoline-kv-0.gasoline-kv.NS.svc:7401) whose IPs change when a pod is rescheduled. Its handshake sent
// only a claimed id and address, so anything that reached the port became a peer; ours is a mutual
// challenge-response (kv/raft/handshake.h), and libraft sees a connection only once it has succeeded.
#include "kv/raft/libraft_uv.h"

#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace gasoline::raft {

struct TransportOptions {
  // Where listen() binds ("0.0.0.0:7401"), or empty to bind to the server's own address.
  std::string bind_address;
  // The shared Raft secret (at least handshake::kMinSecretSize bytes).
  std::string secret;
  // A handshake not finished within this is abandoned, so a silent peer holds nothing for long.
  std::chrono::milliseconds handshake_timeout{5000};
  // Incoming connections still in their handshake at most; a new one evicts the oldest.
  size_t max_pending_handshakes = 64;
  // Called (on the loop thread) for every refused handshake with a short, bounded reason: malformed, bad_proof,
  // timeout, closed, overload (incoming) or listener_proof (a listener we dialled could not prove the secret).
  std::function<void(const std::string& reason)> on_refused;
  // When set, every connection continues over TLS after the secret handshake (kv/raft/tls_pump.h): mutual, each
  // side's certificate from this context's CA, and the dialler checks that the listener's names the host dialled.
  std::shared_ptr<boost::asio::ssl::context> tls;
  std::function<void(const std::string& reason)> on_tls_failed;  // from a pump thread
};

// Initialises `t` (its impl and callbacks). Release with transport_close() after raft_uv_close().
int transport_init(raft_uv_transport* t, uv_loop_t* loop, TransportOptions options);
void transport_close(raft_uv_transport* t);

}  // namespace gasoline::raft
