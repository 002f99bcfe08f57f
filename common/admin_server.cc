#include "common/admin_server.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <memory>
#include <thread>

namespace gasoline {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
}  // namespace

struct AdminServer::Impl {
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  AdminHandler handler;
  std::thread thread;

  // One request per connection, read and answered asynchronously under a 5 s deadline: a client that connects and
  // says nothing (a half-open peer, a scanner) costs one timer, never the thread that answers the kubelet.
  struct Session : std::enable_shared_from_this<Session> {
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::string_body> parser;
    bhttp::response<bhttp::string_body> res;
    Impl* impl;

    Session(tcp::socket socket, Impl* i) : stream(std::move(socket)), impl(i) { parser.body_limit(4096); }

    void start() {
      stream.expires_after(std::chrono::seconds(5));
      bhttp::async_read(stream, buffer, parser,
                        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
      if (ec) return;  // timeout, reset, malformed: just close
      const auto& req = parser.get();
      AdminReply reply;
      if (req.method() != bhttp::verb::get) {
        reply = {405, "only GET is served here\n"};
      } else {
        std::string path(req.target());
        reply = impl->handler(path.substr(0, path.find('?')));
      }
      res = bhttp::response<bhttp::string_body>{static_cast<bhttp::status>(reply.status), req.version()};
      res.set(bhttp::field::content_type, reply.content_type);
      res.body() = std::move(reply.body);
      res.keep_alive(false);
      res.prepare_payload();
      stream.expires_after(std::chrono::seconds(5));
      bhttp::async_write(stream, res, [self = shared_from_this()](beast::error_code, size_t) {
        beast::error_code ignored;
        self->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      });
    }
  };

  void accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;  // closed
      std::make_shared<Session>(std::move(socket), this)->start();
      accept();
    });
  }
};

AdminServer::AdminServer(const std::string& listen, AdminHandler handler) : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("listen address '" + listen + "' must be host:port");
  std::string host = listen.substr(0, colon);
  if (host.empty()) host = "0.0.0.0";
  try {
    tcp::endpoint ep(asio::ip::make_address(host), static_cast<unsigned short>(std::stoi(listen.substr(colon + 1))));
    impl_->acceptor.open(ep.protocol());
    impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
    impl_->acceptor.bind(ep);
    impl_->acceptor.listen();
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot listen on " + listen + ": " + e.what());
  }
  impl_->accept();
  impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

AdminServer::~AdminServer() { stop(); }

int AdminServer::port() const { return impl_->acceptor.local_endpoint().port(); }

void AdminServer::stop() {
  if (!impl_->thread.joinable()) return;
  asio::post(impl_->ioc, [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
  });
  impl_->ioc.stop();
  impl_->thread.join();
}

}  // namespace gasoline
