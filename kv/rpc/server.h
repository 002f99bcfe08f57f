#pragma once
// The kv's RPC server: Boost.Asio, one Session per connection, pipelined requests answered in any order. The
// handler gets each request with a Responder and may answer later from any thread (a pull waits for its lease
// batch to commit without holding an I/O thread).
#include "kv/rpc/authz.h"
#include "kv/rpc/frame.h"
#include "kv/rpc/protocol.h"
#include "kv/rpc/stream.h"
#include "kv/rpc/tls.h"

#include <boost/asio.hpp>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

namespace gasoline::rpc {

class Session;

class Responder {
 public:
  Responder(std::shared_ptr<Session> session, uint64_t id) : session_(std::move(session)), id_(id) {}
  void ok(Json result = Json::object()) const;
  void error(const std::string& code, const std::string& message, Json extra = Json::object()) const;

 private:
  std::shared_ptr<Session> session_;
  uint64_t id_;
};

struct Request {
  std::shared_ptr<Session> session;
  uint64_t id = 0;
  std::string op;
  Json args;
};

using Handler = std::function<void(Request, Responder)>;

struct ServerOptions {
  // Without an authenticator: the bearer token every hello must carry, which makes the connection admin; empty
  // disables authentication (tests, dev: every connection is admin).
  std::string token;
  authz::Authenticator authenticate;  // when set, decides every hello instead of `token`
  size_t max_frame = kDefaultMaxFrame;
  // Until its hello is accepted a connection costs little: small frames only, a short deadline, and a bounded
  // number of such connections (the oldest stay; new ones are refused with `unavailable`).
  size_t max_hello_frame = 64 * 1024;
  int64_t hello_timeout_ms = 3000;
  size_t max_unauthenticated = 128;
  std::string server_name = "gasoline-kv";
  // When set, every connection starts with a TLS handshake (bounded by hello_timeout_ms); a client that speaks
  // plain frames instead gets an error frame saying so.
  std::shared_ptr<tls::ReloadingContext> tls;
  // With tls: still serve clients that speak plain frames (a migration to TLS, while clients roll).
  bool tls_allow_plaintext = false;
  // Credentials that can change under open connections (--credentials-file reloads). A connection whose identity
  // came from that file re-checks its token at its next request once `credentials_revision` moved, and is closed
  // when the token is gone or its roles changed: a revoked credential must not live on in open connections.
  std::function<uint64_t()> credentials_revision;
  std::function<std::optional<authz::Identity>(const std::string& token)> recheck;
  std::function<void(const std::string& code)> on_error;  // counts errors for /metrics
  std::function<void(Session&)> on_close;                 // lets the service drop bump subscriptions
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  // `unauthenticated` (optional) counts the server's sessions that have not sent an accepted hello yet.
  Session(Stream stream, const ServerOptions& options, Handler& handler,
          std::shared_ptr<std::atomic<size_t>> unauthenticated = nullptr);
  ~Session();
  void start();
  // Thread-safe. Frames are written in the order pushed.
  void send(FrameType type, uint64_t id, const Json& body);
  // Sends an error frame, then closes the connection. Thread-safe.
  void fail(const std::string& code, const std::string& message);
  void close();
  bool closed() const { return closed_; }
  const std::string& peer() const { return peer_; }
  const std::string& client_name() const { return client_name_; }
  // Who the hello authenticated; fixed before the first request reaches the handler.
  const authz::Identity& identity() const { return identity_; }

  // The worker ids this connection pinged as, per pool: a worker credential may only act as those (docs/security.md).
  // Returns false once the connection holds kMaxWorkers, so one connection cannot grow the set without bound.
  bool register_worker(const std::string& pool, const std::string& worker);
  bool registered(const std::string& pool, const std::string& worker) const;
  bool registered_any_pool(const std::string& worker) const;
  static constexpr size_t kMaxWorkers = 64;

 private:
  void read();
  // TLS: looks at the first byte, so a client speaking plain frames learns why it is refused, then handshakes.
  void start_tls();
  void on_frame(Frame& f);
  void on_hello(const Frame& f);
  void hello_done(uint64_t hello_id, std::optional<authz::Identity> identity, const std::string& error);
  // Handles the frames decoded so far, then reads on (unless the connection closes or waits for its hello).
  void process_frames();
  void write_locked();
  void error_counted(const std::string& code);
  // False (and the connection failing) when the credentials file no longer gives this connection its role.
  bool still_credentialed();
  void leave_unauthenticated();

  Stream stream_;
  boost::asio::strand<boost::asio::any_io_executor> strand_;
  boost::asio::steady_timer hello_timer_;
  const ServerOptions& options_;
  Handler& handler_;
  FrameDecoder decoder_;
  std::array<char, 64 * 1024> read_buf_{};
  std::string peer_;
  std::string client_name_;
  bool authenticated_ = false;
  bool authenticating_ = false;  // the hello waits for the authenticator: read nothing more until it answers
  authz::Identity identity_;
  std::string hello_token_;           // kept only for an identity from the credentials file (recheck)
  uint64_t credentials_revision_ = 0;  // of the credentials the identity was checked against
  mutable std::mutex workers_mu_;
  std::set<std::pair<std::string, std::string>> workers_;  // (pool, worker id) this connection pinged as
  std::shared_ptr<std::atomic<size_t>> unauthenticated_;  // released (decremented) once: hello accepted or gone
  std::atomic<bool> closed_{false};
  std::atomic<bool> handshake_done_{false};  // TLS only: frames may be written from then on

  std::mutex write_mu_;
  std::string pending_;   // frames waiting for the current write to finish
  std::string inflight_;  // bytes being written
  bool writing_ = false;
  bool close_after_write_ = false;
};

class Server {
 public:
  Server(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& endpoint, ServerOptions options,
         Handler handler);
  void start();
  void stop();
  uint16_t port() const;

 private:
  void accept();

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  ServerOptions options_;
  Handler handler_;
  std::shared_ptr<std::atomic<size_t>> unauthenticated_ = std::make_shared<std::atomic<size_t>>(0);
};

// Parses "host:port" (IPv4, [IPv6] or a name resolved once). Throws std::invalid_argument with the reason.
boost::asio::ip::tcp::endpoint parse_endpoint(boost::asio::io_context& io, const std::string& address);

}  // namespace gasoline::rpc
