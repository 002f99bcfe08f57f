#pragma once
// A connection of the client protocol, plain TCP or TLS over it, so the server's sessions and the client read
// and write frames the same way either way.
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <memory>
#include <optional>
#include <utility>

namespace gasoline::rpc {

class Stream {
 public:
  using tcp = boost::asio::ip::tcp;
  using TlsStream = boost::asio::ssl::stream<tcp::socket>;

  explicit Stream(tcp::socket socket) : plain_(std::move(socket)) {}
  // Keeps `context` alive for the stream's life: a reloaded certificate must not free the one in use.
  Stream(tcp::socket socket, std::shared_ptr<boost::asio::ssl::context> context)
      : context_(std::move(context)), tls_(std::make_unique<TlsStream>(std::move(socket), *context_)) {}

  tcp::socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }
  TlsStream* tls() { return tls_.get(); }

  template <class Buffers, class Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    if (tls_)
      tls_->async_read_some(buffers, std::forward<Handler>(handler));
    else
      plain_->async_read_some(buffers, std::forward<Handler>(handler));
  }

  template <class Buffers, class Handler>
  void async_write(const Buffers& buffers, Handler&& handler) {
    if (tls_)
      boost::asio::async_write(*tls_, buffers, std::forward<Handler>(handler));
    else
      boost::asio::async_write(*plain_, buffers, std::forward<Handler>(handler));
  }

  // Closes the TCP connection without a TLS close_notify: every frame already carries its own length, so a
  // truncation cannot pass for a complete message, and waiting for the peer's notify could hang a close.
  void close() {
    boost::system::error_code ec;
    socket().shutdown(tcp::socket::shutdown_both, ec);
    socket().close(ec);
  }

 private:
  std::optional<tcp::socket> plain_;
  std::shared_ptr<boost::asio::ssl::context> context_;  // declared before tls_, so it outlives it
  std::unique_ptr<TlsStream> tls_;
};

}  // namespace gasoline::rpc
