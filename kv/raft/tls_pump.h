#pragma once
// TLS between Raft peers (docs/security.md, TLS). libraft reads and writes its streams itself through libuv, so
// the transport cannot hand it a TLS stream; after the secret handshake it hands libraft one end of a local socket
// pair instead, and a pump thread moves bytes between the other end and a TLS connection over the peer's TCP
// socket. Either side closing (or the TLS handshake failing) closes both, and libraft reconnects as it would
// after any lost connection.
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace gasoline::raft {

struct TlsPumpOptions {
  std::shared_ptr<boost::asio::ssl::context> context;  // a certificate, its key and the CA peers must chain to
  bool dialler = false;         // the side that connected: it verifies the listener's name too
  std::string verify_host;      // the dialled host, which the listener's certificate must name
  std::chrono::milliseconds handshake_timeout{5000};
  std::function<void(const std::string& reason)> on_failed;  // from the pump's thread
};

// Takes ownership of both descriptors (the peer's TCP socket and the local end the pump serves) and returns at
// once; a detached thread does the TLS handshake and the copying.
void start_tls_pump(int tcp_fd, int plain_fd, TlsPumpOptions options);

// Waits until every pump has ended or `timeout` passed; returns how many still run. Pumps end once libraft has
// closed its ends, so a transport that is closing waits here rather than leave threads calling into freed state.
size_t wait_for_tls_pumps(std::chrono::milliseconds timeout);

// A context for Raft peers: this replica's certificate and key, presented to every peer, and `ca`, which every
// peer's certificate must chain to (both directions: mutual TLS). Throws std::runtime_error naming the file.
std::shared_ptr<boost::asio::ssl::context> raft_tls_context(const std::string& cert, const std::string& key,
                                                            const std::string& ca);

}  // namespace gasoline::raft
