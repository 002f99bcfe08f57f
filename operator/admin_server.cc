#include "operator/admin_server.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <thread>

namespace gasoline::op {
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

  void accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;  // closed
      serve(std::move(socket));
      accept();
    });
  }

  // Short and synchronous: probes are tiny, and a slow client only delays other probes by the socket timeout.
  void serve(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    stream.expires_after(std::chrono::seconds(5));
    beast::flat_buffer buffer;
    bhttp::request<bhttp::string_body> req;
    beast::error_code ec;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(4096);
    // The stream's expiry only applies to async operations; use a plain blocking read with a socket timeout.
    struct timeval tv{5, 0};
    setsockopt(stream.socket().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(stream.socket().native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    bhttp::read(stream.socket(), buffer, parser, ec);
    if (ec) return;
    req = parser.release();
    AdminReply reply;
    if (req.method() != bhttp::verb::get) {
      reply = {405, "only GET is served here\n"};
    } else {
      std::string path(req.target());
      path = path.substr(0, path.find('?'));
      reply = handler(path);
    }
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(reply.status), req.version()};
    res.set(bhttp::field::content_type, reply.content_type);
    res.body() = std::move(reply.body);
    res.keep_alive(false);
    res.prepare_payload();
    bhttp::write(stream.socket(), res, ec);
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
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

}  // namespace gasoline::op
