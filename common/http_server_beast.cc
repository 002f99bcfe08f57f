// The Boost.Beast backend of common/http_server.h: one Asio thread runs every connection. A request is parsed,
// handed to the handler on that thread, and its reply, from whatever thread gives it, is posted back to be written.
// No pool of worker threads: on a two-core pod every hand-off between threads costs more than the HTTP work itself
// (docs/benchmarks.md, "HTTP backends").
#include "common/http_server_backends.h"

#include "common/log.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <cctype>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

namespace gasoline::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

class BeastServer;

// One connection: read a request's head, then its body, hand it to the handler, write its reply, read the next
// (keep-alive). One request at a time: a pipelined second request waits in the buffer until the first is answered.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, BeastServer* server);
  void start() { read(); }
  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }
  // At stop(): a connection waiting for its next request goes now; one whose request the handler holds is
  // closed after its answer is written.
  void close_if_idle() {
    if (idle_) close();
  }

 private:
  void read();
  void on_header(beast::error_code ec);
  void read_body();
  void on_read(beast::error_code ec);
  void refuse(Response r);
  void answer(Response r);
  void write(Response r, bool keep_alive);
  void discard();
  void end();

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::empty_body> continue_;
  bhttp::response<bhttp::string_body> res_;
  BeastServer* server_;
  std::string remote_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool idle_ = false;                 // waiting for the next request (no handler holds one of ours)
  bool discard_after_write_ = false;  // a refused body is still arriving: read it away, then close
  std::unique_ptr<std::array<char, 65536>> sink_;  // only after a refusal
};

class BeastServer : public Server {
 public:
  BeastServer(ServerOptions options, Handler handler) : options_(std::move(options)), handler_(std::move(handler)) {}
  ~BeastServer() override { stop(); }

  void start() override {
    beast::error_code ec;
    auto address = asio::ip::make_address(options_.host, ec);
    if (ec) throw std::runtime_error("cannot listen on " + options_.host + ": not an IP address (" + ec.message() + ")");
    tcp::endpoint endpoint(address, static_cast<unsigned short>(options_.port));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      throw std::runtime_error("cannot listen on " + options_.host + ":" + std::to_string(options_.port) + ": " +
                               ec.message());
    port_ = acceptor_.local_endpoint().port();
    accept();
    thread_ = std::thread([this] {
      ioc_.run();
      finished_.set_value();
    });
  }

  int port() const override { return port_; }

  // Replies already given are written (the sidecar answers its long polls just before, the gateway its calls in
  // flight): the context runs until every connection has ended, for up to two seconds.
  void stop() override {
    if (!thread_.joinable()) return;
    asio::post(ioc_, [this] {
      stopping_ = true;
      beast::error_code ignored;
      acceptor_.close(ignored);
      accept_retry_.cancel();
      std::lock_guard lock(mu_);
      for (const auto& weak : sessions_)
        if (auto s = weak.lock()) s->close_if_idle();
    });
    work_.reset();
    if (finished_.get_future().wait_for(std::chrono::seconds(2)) != std::future_status::ready) {
      log::warn("http connections still open 2 s after stop; closing them", {{"port", port_}});
      ioc_.stop();
    }
    thread_.join();
  }

  const ServerOptions& options() const { return options_; }
  asio::io_context& io() { return ioc_; }
  bool stopping() const { return stopping_; }

  void invoke(Request r, const Reply& reply) { invoke_handler(handler_, std::move(r), reply); }

  void forget(const std::shared_ptr<Session>& s) {
    std::lock_guard lock(mu_);
    sessions_.erase(s);
  }

 private:
  void accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == asio::error::operation_aborted || stopping_) return;
        // Out of file descriptors, say: try again a little later rather than spin on the only HTTP thread.
        log::warn("http accept failed; retrying in 100 ms", {{"port", port_}, {"error", ec.message()}});
        accept_retry_.expires_after(std::chrono::milliseconds(100));
        accept_retry_.async_wait([this](beast::error_code e) {
          if (!e && !stopping_) accept();
        });
        return;
      }
      socket.set_option(tcp::no_delay(true), ec);
      auto s = std::make_shared<Session>(std::move(socket), this);
      {
        std::lock_guard lock(mu_);
        sessions_.insert(s);
      }
      s->start();
      accept();
    });
  }

  ServerOptions options_;
  Handler handler_;
  asio::io_context ioc_{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{asio::make_work_guard(ioc_)};
  tcp::acceptor acceptor_{ioc_};
  asio::steady_timer accept_retry_{ioc_};
  std::thread thread_;
  std::promise<void> finished_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::set<std::weak_ptr<Session>, std::owner_less<std::weak_ptr<Session>>> sessions_;
};

Session::Session(tcp::socket socket, BeastServer* server) : stream_(std::move(socket)), server_(server) {
  beast::error_code ec;
  auto remote = stream_.socket().remote_endpoint(ec);
  if (!ec) {
    auto address = remote.address();
    // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d; callers compare with IPv4 text.
    if (address.is_v6() && address.to_v6().is_v4_mapped())
      address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    remote_ = address.to_string();
  }
}

void Session::read() {
  parser_.emplace();
  parser_->body_limit(server_->options().max_body);
  idle_ = true;
  // A peer that sends nothing for this long (a half-open connection, an idle keep-alive) is closed.
  stream_.expires_after(std::chrono::seconds(server_->options().timeout_s));
  bhttp::async_read_header(stream_, buffer_, *parser_,
                           [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
}

void Session::on_header(beast::error_code ec) {
  idle_ = false;
  if (ec == bhttp::error::body_limit) {
    // Content-Length above the limit: refused from the head, before the body is read.
    return refuse(body_too_large(parser_->content_length().value_or(0), server_->options().max_body));
  }
  if (ec) return end();  // closed by the peer, timed out, or not HTTP: nothing to answer
  auto& req = parser_->get();
  version_ = req.version();
  keep_alive_ = req.keep_alive();
  if (req.chunked()) return refuse(length_required());
  if (beast::iequals(req[bhttp::field::expect], "100-continue")) {
    // The client waits for this before it sends the body (curl does for larger bodies).
    continue_ = bhttp::response<bhttp::empty_body>{bhttp::status::continue_, version_};
    bhttp::async_write(stream_, continue_, [self = shared_from_this()](beast::error_code e, size_t) {
      if (e) return self->end();
      self->read_body();
    });
    return;
  }
  read_body();
}

void Session::read_body() {
  if (parser_->is_done()) return on_read({});
  bhttp::async_read(stream_, buffer_, *parser_,
                    [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
}

void Session::on_read(beast::error_code ec) {
  if (ec == bhttp::error::body_limit)
    return refuse(body_too_large(parser_->content_length().value_or(0), server_->options().max_body));
  if (ec) return end();
  stream_.expires_never();  // a long poll may hold the request for minutes; the handler answers it
  auto& req = parser_->get();
  Request r;
  r.method = std::string(req.method_string());
  std::string target(req.target());
  auto q = target.find('?');
  r.path = split_path(target.substr(0, q));
  if (q != std::string::npos) r.query = split_query(target.substr(q + 1));
  for (const auto& field : req) {
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = std::string(field.value());
  }
  r.body = std::move(req.body());
  r.remote_address = remote_;
  auto replied = std::make_shared<std::atomic<bool>>(false);
  Reply reply = [self = shared_from_this(), replied](Response res) {
    if (replied->exchange(true)) return;  // a second reply is a bug upstream of here; the first one stands
    asio::post(self->server_->io(), [self, res = std::move(res)]() mutable { self->answer(std::move(res)); });
  };
  server_->invoke(std::move(r), reply);
}

// A request answered before its body is read: the client is still sending it and reads the answer only after, so
// closing at once would reset the connection under it (a broken pipe instead of the answer). Read the rest away.
void Session::refuse(Response r) {
  keep_alive_ = false;
  discard_after_write_ = true;
  write(std::move(r), false);
}

void Session::answer(Response r) { write(std::move(r), keep_alive_ && !server_->stopping()); }

void Session::write(Response r, bool keep_alive) {
  try {
    res_ = bhttp::response<bhttp::string_body>{static_cast<bhttp::status>(r.status), version_};
    res_.set(bhttp::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) res_.insert(name, value);
    res_.body() = std::move(r.body);
    res_.keep_alive(keep_alive);
    res_.prepare_payload();  // throws for a body on a status that cannot carry one (204, 304)
  } catch (const std::exception& e) {
    log::error("http reply could not be built", {{"status", r.status}, {"error", e.what()}});
    return end();
  }
  stream_.expires_after(std::chrono::seconds(server_->options().timeout_s));
  bhttp::async_write(stream_, res_, [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
    if (!ec && self->discard_after_write_) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      self->discard();
      return;
    }
    if (ec || !keep_alive || self->server_->stopping()) {
      // The client went away before the answer (a long poll's app restarted): nothing is lost, the task stays
      // leased and is handed to the next poll or given back by the task timeout.
      if (ec) log::debug("http reply not delivered", {{"error", ec.message()}});
      return self->end();
    }
    self->read();
  });
}

void Session::discard() {
  if (!sink_) sink_ = std::make_unique<std::array<char, 65536>>();
  stream_.async_read_some(asio::buffer(*sink_), [self = shared_from_this()](beast::error_code ec, size_t) {
    if (ec) return self->end();  // the client closed (it read the answer), or the deadline of write() passed
    self->discard();
  });
}

void Session::end() {
  close();
  server_->forget(shared_from_this());
}

}  // namespace

std::unique_ptr<Server> make_beast_server(ServerOptions options, Handler handler) {
  return std::make_unique<BeastServer>(std::move(options), std::move(handler));
}

}  // namespace gasoline::http
