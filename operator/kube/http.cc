#include "operator/kube/http.h"

#include "common/clock.h"
#include "common/token_file.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <vector>

namespace gasoline::kube {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

constexpr size_t kMaxResponseBody = 256u << 20;  // a LIST of many objects; the informer pages above this anyway
constexpr int kMaxIdleConnections = 8;

struct Endpoint {
  std::string host;  // without brackets
  std::string port;
};

Endpoint parse_server(const std::string& server) {
  const std::string scheme = "https://";
  if (server.rfind(scheme, 0) != 0)
    throw std::runtime_error("API server '" + server + "': only https:// is supported");
  std::string rest = server.substr(scheme.size());
  rest = rest.substr(0, rest.find('/'));
  Endpoint e;
  if (!rest.empty() && rest[0] == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos) throw std::runtime_error("API server '" + server + "': bad IPv6 address");
    e.host = rest.substr(1, close - 1);
    e.port = close + 1 < rest.size() && rest[close + 1] == ':' ? rest.substr(close + 2) : "443";
  } else {
    auto colon = rest.rfind(':');
    e.host = rest.substr(0, colon);
    e.port = colon == std::string::npos ? "443" : rest.substr(colon + 1);
  }
  if (e.host.empty() || e.port.empty()) throw std::runtime_error("API server '" + server + "': no host or port");
  return e;
}

// One TLS connection and the io_context its operations run on (on the calling thread).
struct Conn {
  asio::io_context ioc;
  beast::ssl_stream<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  bool used = false;  // served a request before: a failure may just be the server closing an idle connection

  explicit Conn(ssl::context& ctx) : stream(ioc, ctx) {}

  // Runs one async operation to completion on this thread, under a deadline.
  template <class Start>
  void run(std::chrono::milliseconds timeout, const std::string& what, Start start) {
    beast::get_lowest_layer(stream).expires_after(timeout);
    beast::error_code result;
    bool done = false;
    start([&](beast::error_code ec, auto&&...) {
      result = ec;
      done = true;
    });
    ioc.restart();
    ioc.run();
    if (!done) throw TransportError(what + ": interrupted");
    if (result == bhttp::error::end_of_stream || result == asio::error::eof ||
        result == asio::error::connection_reset || result == asio::error::broken_pipe ||
        result == ssl::error::stream_truncated)
      throw ClosedError(what + ": " + result.message());
    if (result) throw TransportError(what + ": " + result.message());
  }
};

}  // namespace

struct Http::Impl {
  Config config;
  Endpoint endpoint;
  ssl::context ctx{ssl::context::tls_client};
  std::mutex mu;
  std::vector<std::unique_ptr<Conn>> idle;
  std::set<Conn*> streaming;
  bool cancelled = false;
  RequestObserver observer;
  std::string cached_token;
  int64_t token_read_ms = -1;

  explicit Impl(Config c) : config(std::move(c)), endpoint(parse_server(config.server)) {
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                    ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    try {
      if (config.insecure_skip_verify) {
        ctx.set_verify_mode(ssl::verify_none);
      } else {
        ctx.set_verify_mode(ssl::verify_peer);
        if (config.ca_pem.empty())
          ctx.set_default_verify_paths();
        else
          ctx.add_certificate_authority(asio::buffer(config.ca_pem));
      }
      if (!config.client_cert_pem.empty()) {
        ctx.use_certificate_chain(asio::buffer(config.client_cert_pem));
        ctx.use_private_key(asio::buffer(config.client_key_pem), ssl::context::pem);
      }
    } catch (const boost::system::system_error& e) {
      throw std::runtime_error(config.source + ": bad certificate or key: " + e.what());
    }
  }

  // The token file is re-read every minute, as client-go does: bound service-account tokens rotate.
  std::string token() {
    if (config.token_file.empty()) return config.token;
    std::lock_guard lock(mu);
    int64_t now = mono_ms();
    if (token_read_ms < 0 || now - token_read_ms >= 60'000) {
      try {
        cached_token = read_token_file(config.token_file);
        token_read_ms = now;
      } catch (const std::runtime_error& e) {
        // Mid-rotation the file can be briefly missing: keep the token we have, and fail only without one.
        if (cached_token.empty()) throw TransportError(e.what());
      }
    }
    return cached_token;
  }

  std::unique_ptr<Conn> connect(std::chrono::milliseconds timeout) {
    auto c = std::make_unique<Conn>(ctx);
    tcp::resolver resolver(c->ioc);
    beast::error_code ec;
    auto results = resolver.resolve(endpoint.host, endpoint.port, ec);
    if (ec) throw TransportError("resolve " + endpoint.host + ": " + ec.message());
    c->run(timeout, "connect to " + endpoint.host + ":" + endpoint.port, [&](auto handler) {
      beast::get_lowest_layer(c->stream).async_connect(
          results, [handler](beast::error_code e, const tcp::endpoint&) mutable { handler(e); });
    });
    beast::get_lowest_layer(c->stream).socket().set_option(tcp::no_delay(true));
    if (!SSL_set_tlsext_host_name(c->stream.native_handle(), endpoint.host.c_str()))
      throw TransportError("TLS: cannot set SNI");
    if (!config.insecure_skip_verify) c->stream.set_verify_callback(ssl::host_name_verification(endpoint.host));
    c->run(timeout, "TLS handshake with " + endpoint.host + ":" + endpoint.port,
           [&](auto handler) { c->stream.async_handshake(ssl::stream_base::client, handler); });
    return c;
  }

  std::unique_ptr<Conn> take(std::chrono::milliseconds timeout) {
    {
      std::lock_guard lock(mu);
      if (!idle.empty()) {
        auto c = std::move(idle.back());
        idle.pop_back();
        return c;
      }
    }
    return connect(timeout);
  }

  void give_back(std::unique_ptr<Conn> c) {
    std::lock_guard lock(mu);
    if (static_cast<int>(idle.size()) < kMaxIdleConnections) idle.push_back(std::move(c));
  }

  bhttp::request<bhttp::string_body> make_request(std::string_view method, const std::string& target,
                                                  const std::string& body, std::string_view content_type) {
    bhttp::request<bhttp::string_body> req;
    req.method_string(beast::string_view(method.data(), method.size()));
    req.target(target);
    req.version(11);
    req.set(bhttp::field::host, endpoint.host);
    req.set(bhttp::field::user_agent, "gasoline-operator/0.1.0");
    req.set(bhttp::field::accept, "application/json");
    if (auto t = token(); !t.empty()) req.set(bhttp::field::authorization, "Bearer " + t);
    if (!body.empty()) {
      req.set(bhttp::field::content_type, beast::string_view(content_type.data(), content_type.size()));
      req.body() = body;
    }
    req.keep_alive(true);
    req.prepare_payload();
    return req;
  }

  void observe(std::string_view method, int status) {
    RequestObserver o;
    {
      std::lock_guard lock(mu);
      o = observer;
    }
    if (o) o(method, status);
  }
};

Http::Http(Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Http::~Http() = default;

const Config& Http::config() const { return impl_->config; }

void Http::set_observer(RequestObserver observer) {
  std::lock_guard lock(impl_->mu);
  impl_->observer = std::move(observer);
}

HttpResponse Http::request(std::string_view method, const std::string& target, const std::string& body,
                           std::string_view content_type, std::chrono::milliseconds timeout) {
  auto req = impl_->make_request(method, target, body, content_type);
  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    try {
      // A retry never takes another pooled connection: it may be just as stale.
      auto conn = attempt == 0 ? impl_->take(timeout) : impl_->connect(timeout);
      reused = conn->used;
      conn->run(timeout, "write", [&](auto handler) { bhttp::async_write(conn->stream, req, handler); });
      bhttp::response_parser<bhttp::string_body> parser;
      parser.body_limit(kMaxResponseBody);
      conn->run(timeout, "read", [&](auto handler) { bhttp::async_read(conn->stream, conn->buffer, parser, handler); });
      bool reusable = parser.get().keep_alive() && !parser.need_eof();
      auto res = parser.release();
      HttpResponse out{static_cast<int>(res.result_int()), std::move(res.body()),
                       std::string(res[bhttp::field::content_type])};
      conn->used = true;
      if (reusable) impl_->give_back(std::move(conn));
      impl_->observe(method, out.status);
      return out;
    } catch (const ClosedError& e) {
      // Only a pooled connection the server had closed while idle is retried, once: the request never reached it.
      // A timeout is not retried: the request may have been processed.
      if (reused && attempt == 0) continue;
      impl_->observe(method, 0);
      throw TransportError(std::string(method) + " " + target + ": " + e.what());
    } catch (const TransportError& e) {
      impl_->observe(method, 0);
      throw TransportError(std::string(method) + " " + target + ": " + e.what());
    }
  }
}

HttpResponse Http::stream(const std::string& target, const std::function<bool(std::string_view)>& on_line,
                          std::chrono::milliseconds idle_timeout) {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->cancelled) return HttpResponse{};  // shutting down: no new connection
  }
  auto req = impl_->make_request("GET", target, "", "");
  auto conn = impl_->connect(std::chrono::seconds(10));
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->cancelled) return HttpResponse{};
    impl_->streaming.insert(conn.get());
  }
  struct Unregister {
    Impl* impl;
    Conn* c;
    ~Unregister() {
      std::lock_guard lock(impl->mu);
      impl->streaming.erase(c);
    }
  } unregister{impl_.get(), conn.get()};

  HttpResponse out;
  try {
    conn->run(idle_timeout, "write", [&](auto handler) { bhttp::async_write(conn->stream, req, handler); });
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.body_limit(boost::none);
    conn->run(idle_timeout, "read header",
              [&](auto handler) { bhttp::async_read_header(conn->stream, conn->buffer, parser, handler); });
    out.status = static_cast<int>(parser.get().result_int());
    out.content_type = std::string(parser.get()[bhttp::field::content_type]);
    std::string pending;
    std::vector<char> chunk(64 * 1024);
    bool keep_going = true;
    while (keep_going && !parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      beast::error_code ec;
      bool done = false;
      beast::get_lowest_layer(conn->stream).expires_after(idle_timeout);
      bhttp::async_read_some(conn->stream, conn->buffer, parser, [&](beast::error_code e, size_t) {
        ec = e;
        done = true;
      });
      conn->ioc.restart();
      conn->ioc.run();
      if (ec == bhttp::error::need_buffer) ec = {};
      {
        std::lock_guard lock(impl_->mu);
        if (impl_->cancelled) break;
      }
      if (!done) throw TransportError("stream interrupted");
      if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == ssl::error::stream_truncated) break;
      if (ec) throw TransportError(ec.message());
      size_t got = chunk.size() - parser.get().body().size;
      if (out.status != 200) {
        out.body.append(chunk.data(), got);
        if (out.body.size() > (1u << 20)) break;
        continue;
      }
      pending.append(chunk.data(), got);
      size_t start = 0;
      for (size_t nl; keep_going && (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
        std::string_view line(pending.data() + start, nl - start);
        if (!line.empty()) keep_going = on_line(line);
      }
      pending.erase(0, start);
      if (pending.size() > kMaxResponseBody) throw TransportError("a watch event exceeds 256 MiB");
    }
  } catch (const TransportError& e) {
    impl_->observe("WATCH", 0);
    throw TransportError("watch " + target + ": " + e.what());
  }
  impl_->observe("WATCH", out.status);
  return out;
}

void Http::cancel_streams() {
  std::lock_guard lock(impl_->mu);
  impl_->cancelled = true;
  for (Conn* c : impl_->streaming)
    asio::post(c->ioc, [c] {
      beast::error_code ignored;
      beast::get_lowest_layer(c->stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
      beast::get_lowest_layer(c->stream).cancel();
    });
}

}  // namespace gasoline::kube
