#include "kv/rpc/server.h"

#include "common/log.h"

namespace gasoline::rpc {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// Compares tokens in time independent of where they differ (the length is not secret).
bool same_token(const std::string& expected, const std::string& got) {
  if (expected.size() != got.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < expected.size(); ++i) diff |= static_cast<unsigned char>(expected[i] ^ got[i]);
  return diff == 0;
}
}  // namespace

void Responder::ok(Json result) const { session_->send(FrameType::kResponse, id_, Json{{"ok", true}, {"result", std::move(result)}}); }

void Responder::error(const std::string& code, const std::string& message, Json extra) const {
  session_->send(FrameType::kResponse, id_, error_body(code, message, std::move(extra)));
}

Session::Session(Stream stream, const ServerOptions& options, Handler& handler,
                 std::shared_ptr<std::atomic<size_t>> unauthenticated)
    : stream_(std::move(stream)),
      strand_(asio::make_strand(stream_.socket().get_executor())),
      hello_timer_(stream_.socket().get_executor()),
      options_(options),
      handler_(handler),
      decoder_(std::min(options.max_frame, options.max_hello_frame)),
      unauthenticated_(std::move(unauthenticated)) {
  if (unauthenticated_) ++*unauthenticated_;
  boost::system::error_code ec;
  auto ep = stream_.socket().remote_endpoint(ec);
  peer_ = ec ? "unknown" : ep.address().to_string() + ":" + std::to_string(ep.port());
  stream_.socket().set_option(tcp::no_delay(true), ec);
}

Session::~Session() { leave_unauthenticated(); }

void Session::leave_unauthenticated() {
  if (unauthenticated_) {
    --*unauthenticated_;
    unauthenticated_.reset();
  }
}

void Session::start() {
  auto self = shared_from_this();
  if (unauthenticated_ && *unauthenticated_ > options_.max_unauthenticated) {
    // A flood of connections that never authenticate must not starve the ones that do: refuse the newcomer.
    fail(code::kUnavailable, "too many connections waiting for their hello (" +
                                 std::to_string(options_.max_unauthenticated) + "); try again later");
    return;
  }
  hello_timer_.expires_after(std::chrono::milliseconds(options_.hello_timeout_ms));
  hello_timer_.async_wait(asio::bind_executor(strand_, [self](boost::system::error_code ec) {
    if (ec || self->authenticated_) return;
    self->fail(code::kUnauthenticated, self->authenticating_
                                           ? "the hello's token could not be verified within the timeout"
                                           : "no hello frame within the timeout");
  }));
  asio::dispatch(strand_, [self] {
    if (self->stream_.tls())
      self->start_tls();
    else
      self->read();
  });
}

void Session::start_tls() {
  auto self = shared_from_this();
  stream_.socket().async_receive(
      asio::buffer(read_buf_.data(), 1), tcp::socket::message_peek,
      asio::bind_executor(strand_, [self](boost::system::error_code ec, size_t n) {
        if (ec || n == 0 || self->closed_) {
          self->close();
          return;
        }
        constexpr char kTlsHandshakeRecord = 0x16;
        if (self->read_buf_[0] != kTlsHandshakeRecord) {
          // Not TLS: most likely our own client without --kv-tls. Answer in its framing, unencrypted, since
          // nothing secret is in the message, so the operator of that client reads the cause rather than a reset.
          self->stream_ = Stream(std::move(self->stream_.socket()));
          if (self->options_.tls_allow_plaintext) {
            self->read();
            return;
          }
          self->fail(code::kUnauthenticated, "this kv accepts TLS connections only: configure the client for TLS "
                                             "(--kv-tls-ca or --kv-tls)");
          return;
        }
        self->stream_.tls()->async_handshake(
            asio::ssl::stream_base::server, asio::bind_executor(self->strand_, [self](boost::system::error_code ec) {
              if (ec) {
                if (self->closed_) return;
                log::warn("TLS handshake failed", {{"peer", self->peer_}, {"reason", ec.message()}});
                self->error_counted("tls_handshake");
                self->close();
                return;
              }
              self->handshake_done_ = true;
              self->read();
            }));
      }));
}

void Session::read() {
  auto self = shared_from_this();
  stream_.async_read_some(asio::buffer(read_buf_),
                          asio::bind_executor(strand_, [self](boost::system::error_code ec, size_t n) {
                            if (ec) {
                              self->close();
                              return;
                            }
                            self->decoder_.feed(self->read_buf_.data(), n);
                            self->process_frames();
                          }));
}

void Session::process_frames() {
  Frame f;
  while (!closed_ && !authenticating_) {
    auto st = decoder_.next(f);
    if (st == FrameDecoder::Status::kNeedMore) break;
    if (st == FrameDecoder::Status::kError) {
      bool too_large = decoder_.error().find("exceeds") != std::string::npos;
      fail(too_large ? code::kTooLarge : code::kProtocol, decoder_.error());
      return;
    }
    on_frame(f);
  }
  // While the hello is being authenticated, frames pipelined behind it wait in the socket; hello_done resumes.
  if (!closed_ && !close_after_write_ && !authenticating_) read();
}

void Session::on_hello(const Frame& f) {
  Json hello;
  try {
    hello = decode_body(f.body);
  } catch (const std::exception& e) {
    fail(code::kProtocol, std::string("hello body is not MessagePack: ") + e.what());
    return;
  }
  if (!hello.is_object() || !hello.contains("version") || !hello["version"].is_number_integer()) {
    fail(code::kProtocol, "hello must be a map with an integer 'version'");
    return;
  }
  if (hello["version"].get<int64_t>() != kProtocolVersion) {
    fail(code::kProtocol, "protocol version " + hello["version"].dump() + " is not supported; this server speaks " +
                              std::to_string(kProtocolVersion));
    return;
  }
  std::string token = hello.contains("token") && hello["token"].is_string() ? hello["token"].get<std::string>() : "";
  client_name_ = hello.contains("client") && hello["client"].is_string() ? hello["client"].get<std::string>() : "";
  if (!options_.authenticate) {
    if (!options_.token.empty() && !same_token(options_.token, token)) {
      fail(code::kUnauthenticated, "invalid bearer token");
      return;
    }
    hello_done(f.id, authz::admin(options_.token.empty() ? "unauthenticated (no token configured)" : "admin token"),
               "");
    return;
  }
  authenticating_ = true;
  auto self = shared_from_this();
  if (options_.credentials_revision) credentials_revision_ = options_.credentials_revision();
  options_.authenticate(token, [self, id = f.id, token](std::optional<authz::Identity> identity, std::string error) {
    if (identity && identity->from_credentials_file) self->hello_token_ = token;
    // Always posted, even when the authenticator answers at once: the read loop that called on_hello must
    // unwind first, or two reads would be outstanding on the socket.
    asio::post(self->strand_, [self, id, identity = std::move(identity), error = std::move(error)]() mutable {
      self->authenticating_ = false;
      if (self->closed_ || self->close_after_write_) return;  // the hello timed out meanwhile
      self->hello_done(id, std::move(identity), error);
      self->process_frames();
    });
  });
}

void Session::hello_done(uint64_t hello_id, std::optional<authz::Identity> identity, const std::string& error) {
  if (!identity) {
    fail(code::kUnauthenticated, error.empty() ? "invalid bearer token" : error);
    return;
  }
  identity_ = std::move(*identity);
  authenticated_ = true;
  leave_unauthenticated();
  decoder_.set_max_frame(options_.max_frame);
  hello_timer_.cancel();
  send(FrameType::kWelcome, hello_id, Json{{"version", kProtocolVersion}, {"server", options_.server_name}});
}

bool Session::register_worker(const std::string& pool, const std::string& worker) {
  std::lock_guard lock(workers_mu_);
  if (workers_.count({pool, worker})) return true;
  if (workers_.size() >= kMaxWorkers) return false;
  workers_.emplace(pool, worker);
  return true;
}

bool Session::registered(const std::string& pool, const std::string& worker) const {
  std::lock_guard lock(workers_mu_);
  return workers_.count({pool, worker}) > 0;
}

bool Session::registered_any_pool(const std::string& worker) const {
  std::lock_guard lock(workers_mu_);
  for (const auto& [pool, id] : workers_)
    if (id == worker) return true;
  return false;
}

void Session::on_frame(Frame& f) {
  if (!authenticated_) {
    if (f.type != FrameType::kHello) {
      fail(code::kUnauthenticated, "the first frame must be a hello");
      return;
    }
    on_hello(f);
    return;
  }
  if (f.type != FrameType::kRequest) {
    fail(code::kProtocol, "unexpected frame type " + std::to_string(static_cast<int>(f.type)) + " from a client");
    return;
  }
  if (!still_credentialed()) return;
  Request req{shared_from_this(), f.id, "", Json()};
  Responder responder(req.session, f.id);
  try {
    Json body = decode_body(f.body);
    if (!body.is_object() || !body.contains("op") || !body["op"].is_string()) {
      error_counted(code::kBadRequest);
      responder.error(code::kBadRequest, "request must be a map with a string 'op'");
      return;
    }
    req.op = body["op"].get<std::string>();
    req.args = body.contains("args") ? body["args"] : Json::object();
    if (!req.args.is_object()) {
      error_counted(code::kBadRequest);
      responder.error(code::kBadRequest, "'args' must be a map");
      return;
    }
  } catch (const std::exception& e) {
    // The framing is intact, so only this request fails; the connection stays usable.
    error_counted(code::kProtocol);
    responder.error(code::kProtocol, std::string("request body is not valid MessagePack: ") + e.what());
    return;
  }
  handler_(std::move(req), responder);
}

bool Session::still_credentialed() {
  if (!identity_.from_credentials_file || !options_.credentials_revision || !options_.recheck) return true;
  auto revision = options_.credentials_revision();
  if (revision == credentials_revision_) return true;
  auto now = options_.recheck(hello_token_);
  if (now && now->same_roles(identity_)) {
    credentials_revision_ = revision;
    return true;
  }
  fail(code::kUnauthenticated, now ? "this connection's credential now has other roles (" + now->describe() +
                                         ", was " + identity_.describe() + "): reconnect to use them"
                                   : "this connection's credential was revoked (" + identity_.subject +
                                         " is gone from the credentials file)");
  return false;
}

void Session::error_counted(const std::string& c) {
  if (options_.on_error) options_.on_error(c);
}

void Session::send(FrameType type, uint64_t id, const Json& body) {
  if (closed_) return;
  if (type == FrameType::kResponse && body.contains("ok") && !body["ok"].get<bool>())
    error_counted(body["error"].value("code", "unknown"));
  std::string frame = encode_frame(type, id, encode_body(body));
  std::lock_guard lock(write_mu_);
  pending_ += frame;
  if (!writing_) write_locked();
}

void Session::write_locked() {
  if (pending_.empty()) {
    writing_ = false;
    if (close_after_write_) asio::post(strand_, [self = shared_from_this()] { self->close(); });
    return;
  }
  writing_ = true;
  inflight_.swap(pending_);
  pending_.clear();
  auto self = shared_from_this();
  auto start = [self] {
    self->stream_.async_write(asio::buffer(self->inflight_),
                              asio::bind_executor(self->strand_, [self](boost::system::error_code ec, size_t) {
                                std::lock_guard lock(self->write_mu_);
                                self->inflight_.clear();
                                if (ec) {
                                  self->writing_ = false;
                                  asio::post(self->strand_, [self] { self->close(); });
                                  return;
                                }
                                self->write_locked();
                              }));
  };
  // A TLS stream's reads and writes share one engine, so every operation on it starts on the strand; a plain
  // socket takes the write from whichever thread answered, saving a hop per response.
  if (stream_.tls())
    asio::post(strand_, std::move(start));
  else
    start();
}

void Session::fail(const std::string& c, const std::string& message) {
  if (closed_) return;
  log::warn("closing connection", {{"peer", peer_}, {"code", c}, {"reason", message}});
  error_counted(c);
  if (stream_.tls() && !handshake_done_) {
    close();  // no frame can be sent before the TLS handshake completes
    return;
  }
  std::string frame = encode_frame(FrameType::kError, 0, encode_body(Json{{"code", c}, {"message", message}}));
  std::lock_guard lock(write_mu_);
  close_after_write_ = true;
  pending_ += frame;
  if (!writing_) write_locked();
}

void Session::close() {
  if (closed_.exchange(true)) return;
  asio::post(strand_, [self = shared_from_this()] {
    self->hello_timer_.cancel();
    self->leave_unauthenticated();
    self->stream_.close();
    if (self->options_.on_close) self->options_.on_close(*self);
  });
}

Server::Server(asio::io_context& io, const tcp::endpoint& endpoint, ServerOptions options, Handler handler)
    : io_(io), acceptor_(io), options_(std::move(options)), handler_(std::move(handler)) {
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
}

void Server::start() { accept(); }

void Server::stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

uint16_t Server::port() const { return acceptor_.local_endpoint().port(); }

void Server::accept() {
  acceptor_.async_accept(asio::make_strand(io_), [this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      Stream stream = options_.tls ? Stream(std::move(socket), options_.tls->current()) : Stream(std::move(socket));
      std::make_shared<Session>(std::move(stream), options_, handler_, unauthenticated_)->start();
    }
    accept();
  });
}

tcp::endpoint parse_endpoint(asio::io_context& io, const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 >= address.size())
    throw std::invalid_argument("address '" + address + "' must be host:port");
  std::string host = address.substr(0, colon);
  std::string port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  tcp::resolver resolver(io);
  boost::system::error_code ec;
  auto results = resolver.resolve(host, port, ec);
  if (ec || results.empty())
    throw std::invalid_argument("cannot resolve '" + address + "': " + (ec ? ec.message() : "no addresses"));
  return results.begin()->endpoint();
}

}  // namespace gasoline::rpc
