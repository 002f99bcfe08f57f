#include "kv/raft/tls_pump.h"

#include "common/openssl_error.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>

namespace gasoline::raft {
namespace {

namespace ssl = boost::asio::ssl;

// Bytes buffered in each direction before the pump stops reading that side: enough for Raft's batches, bounded so
// a stalled peer cannot make the pump grow without end.
constexpr size_t kMaxBuffered = 4u << 20;

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

class Pump {
 public:
  Pump(int tcp, int plain, TlsPumpOptions o) : tcp_(tcp), plain_(plain), options_(std::move(o)) {}
  ~Pump() {
    if (ssl_) SSL_free(ssl_);
    ::close(tcp_);
    ::close(plain_);
  }

  void run() {
    std::string why = handshake();
    if (why.empty()) why = copy();
    if (!why.empty() && options_.on_failed) options_.on_failed(why);
  }

 private:
  // Waits until `fd` is ready for `events` or the deadline passes.
  bool wait(int fd, short events, std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    return ::poll(&p, 1, static_cast<int>(left.count())) > 0;
  }

  std::string handshake() {
    ssl_ = SSL_new(options_.context->native_handle());
    if (!ssl_) return "SSL_new: " + openssl_error("out of memory");
    SSL_set_fd(ssl_, tcp_);
    SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (options_.dialler) {
      SSL_set_connect_state(ssl_);
      // The listener must be the peer we dialled, not merely some holder of a certificate from the CA.
      if (!options_.verify_host.empty()) {
        // An IP literal must be among the certificate's IP addresses; a name among its DNS names.
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
        if (X509_VERIFY_PARAM_set1_ip_asc(param, options_.verify_host.c_str()) != 1) {
          ERR_clear_error();
          SSL_set_tlsext_host_name(ssl_, options_.verify_host.c_str());
          SSL_set1_host(ssl_, options_.verify_host.c_str());
        }
      }
    } else {
      SSL_set_accept_state(ssl_);
    }
    set_nonblocking(tcp_);
    set_nonblocking(plain_);
    auto deadline = std::chrono::steady_clock::now() + options_.handshake_timeout;
    while (true) {
      int r = SSL_do_handshake(ssl_);
      if (r == 1) return "";
      int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ && wait(tcp_, POLLIN, deadline)) continue;
      if (e == SSL_ERROR_WANT_WRITE && wait(tcp_, POLLOUT, deadline)) continue;
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return "TLS handshake timed out";
      long verify = SSL_get_verify_result(ssl_);
      return "TLS handshake failed: " + openssl_error("the connection closed") +
             (verify != X509_V_OK ? std::string(" (") + X509_verify_cert_error_string(verify) + ")" : "");
    }
  }

  // Copies both ways until one side closes. Returns "" for an orderly close, else the reason.
  std::string copy() {
    std::string to_plain, to_tls;
    bool tls_eof = false, plain_eof = false;
    bool tls_wants_write = false;  // the last TLS operation needs the socket writable
    char buf[16384];
    while (true) {
      tls_wants_write = false;
      // TLS → buffer: everything OpenSSL can decrypt now, including what it holds already (SSL_pending).
      while (!tls_eof && to_plain.size() < kMaxBuffered) {
        int n = SSL_read(ssl_, buf, sizeof buf);
        if (n > 0) {
          to_plain.append(buf, static_cast<size_t>(n));
          continue;
        }
        int e = SSL_get_error(ssl_, n);
        if (e == SSL_ERROR_WANT_READ) break;
        if (e == SSL_ERROR_WANT_WRITE) {
          tls_wants_write = true;
          break;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
          tls_eof = true;
          break;
        }
        if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
          tls_eof = true;  // the peer closed without close_notify: Raft's framing notices a cut message
          break;
        }
        return "TLS read: " + openssl_error(std::strerror(errno));
      }
      // Buffer → libraft.
      while (!to_plain.empty()) {
        ssize_t w = ::write(plain_, to_plain.data(), to_plain.size());
        if (w > 0) {
          to_plain.erase(0, static_cast<size_t>(w));
          continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) break;
        return "";  // libraft closed its end: the connection is over
      }
      // libraft → buffer.
      while (!plain_eof && to_tls.size() < kMaxBuffered) {
        ssize_t r = ::read(plain_, buf, sizeof buf);
        if (r > 0) {
          to_tls.append(buf, static_cast<size_t>(r));
          continue;
        }
        if (r == 0) plain_eof = true;
        else if (errno != EAGAIN && errno != EINTR) plain_eof = true;
        break;
      }
      // Buffer → TLS.
      while (!to_tls.empty()) {
        int n = SSL_write(ssl_, to_tls.data(), static_cast<int>(std::min<size_t>(to_tls.size(), 1u << 20)));
        if (n > 0) {
          to_tls.erase(0, static_cast<size_t>(n));
          continue;
        }
        int e = SSL_get_error(ssl_, n);
        if (e == SSL_ERROR_WANT_WRITE) {
          tls_wants_write = true;
          break;
        }
        if (e == SSL_ERROR_WANT_READ) break;
        return "TLS write: " + openssl_error(std::strerror(errno));
      }
      if ((tls_eof && to_plain.empty()) || (plain_eof && to_tls.empty())) {
        SSL_shutdown(ssl_);  // best effort: one close_notify, no wait for the peer's
        return "";
      }
      pollfd p[2] = {{tcp_, 0, 0}, {plain_, 0, 0}};
      if (!tls_eof && to_plain.size() < kMaxBuffered) p[0].events |= POLLIN;
      if (tls_wants_write) p[0].events |= POLLOUT;
      if (!plain_eof && to_tls.size() < kMaxBuffered) p[1].events |= POLLIN;
      if (!to_plain.empty()) p[1].events |= POLLOUT;
      if (::poll(p, 2, -1) < 0 && errno != EINTR) return std::string("poll: ") + std::strerror(errno);
      if ((p[0].revents & (POLLERR | POLLNVAL)) && !(p[0].revents & POLLIN)) return "the peer's connection failed";
    }
  }

  int tcp_;
  int plain_;
  TlsPumpOptions options_;
  SSL* ssl_ = nullptr;
};

std::mutex pumps_mu;
std::condition_variable pumps_cv;
size_t pumps_running = 0;

}  // namespace

void start_tls_pump(int tcp_fd, int plain_fd, TlsPumpOptions options) {
  {
    std::lock_guard lock(pumps_mu);
    ++pumps_running;
  }
  std::thread([tcp_fd, plain_fd, options = std::move(options)]() mutable {
    Pump(tcp_fd, plain_fd, std::move(options)).run();
    std::lock_guard lock(pumps_mu);
    --pumps_running;
    pumps_cv.notify_all();
  }).detach();
}

size_t wait_for_tls_pumps(std::chrono::milliseconds timeout) {
  std::unique_lock lock(pumps_mu);
  pumps_cv.wait_for(lock, timeout, [] { return pumps_running == 0; });
  return pumps_running;
}

std::shared_ptr<ssl::context> raft_tls_context(const std::string& cert, const std::string& key,
                                               const std::string& ca) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  auto load = [](const std::string& what, const std::string& file, auto&& fn) {
    boost::system::error_code ec;
    fn(ec);
    if (ec) throw std::runtime_error("raft TLS " + what + " '" + file + "': " + ec.message());
  };
  load("certificate", cert, [&](auto& ec) { ctx->use_certificate_chain_file(cert, ec); });
  load("key", key, [&](auto& ec) { ctx->use_private_key_file(key, ssl::context::pem, ec); });
  load("CA", ca, [&](auto& ec) { ctx->load_verify_file(ca, ec); });
  ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  return ctx;
}

}  // namespace gasoline::raft
