// The cpprestsdk backend of common/http_server.h.
#include "common/http_server_backends.h"

#include "common/log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cpprest/http_listener.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cctype>
#include <stdexcept>

namespace gasoline::http {
namespace web_http = web::http;
using web_http::experimental::listener::http_listener;
using web_http::experimental::listener::http_listener_config;

namespace {

// cpprestsdk cannot listen on port 0 and report the port, so a free one is found first by binding a socket to
// port 0 and closing it. Another process could take it in between; start() then probes again.
int probe_free_port(const std::string& host) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("probing a free port: socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);
  if (port <= 0) throw std::runtime_error("probing a free port on " + host + " failed");
  return port;
}

void send(const web_http::http_request& req, const Response& r) {
  web_http::http_response resp(static_cast<web_http::status_code>(r.status));
  for (const auto& [k, v] : r.headers) resp.headers().add(k, v);
  resp.set_body(r.body, r.content_type);
  req.reply(resp).then([](pplx::task<void> t) {
    try {
      t.get();
    } catch (const std::exception& e) {
      // The client went away before the answer (a long poll's app restarted); nothing is lost, the task stays
      // leased and is handed to the next poll or given back by the task timeout.
      log::debug("http reply not delivered", {{"error", e.what()}});
    }
  });
}

class CpprestServer : public Server {
 public:
  CpprestServer(ServerOptions options, Handler handler) : options_(std::move(options)), handler_(std::move(handler)) {}
  ~CpprestServer() override { stop(); }

  void start() override {
    std::string last_error;
    for (int attempt = 0; attempt < 8; ++attempt) {
      int port = options_.port ? options_.port : probe_free_port(options_.host);
      std::string url = "http://" + options_.host + ":" + std::to_string(port);
      http_listener_config config;
      config.set_timeout(utility::seconds(options_.timeout_s));
      auto listener = std::make_unique<http_listener>(url, config);
      listener->support([this](const web_http::http_request& req) { dispatch(req); });
      try {
        listener->open().wait();
        listener_ = std::move(listener);
        port_ = port;
        return;
      } catch (const std::exception& e) {
        last_error = e.what();
        if (options_.port) break;  // a fixed port that is taken will not become free by retrying
      }
    }
    throw std::runtime_error("cannot listen on " + options_.host + ":" + std::to_string(options_.port) + ": " +
                             last_error);
  }

  int port() const override { return port_; }

  void stop() override {
    if (!listener_) return;
    try {
      listener_->close().wait();
    } catch (const std::exception& e) {
      log::warn("closing the http listener failed", {{"port", port_}, {"error", e.what()}});
    }
    listener_.reset();
  }

 private:
  void dispatch(const web_http::http_request& req) {
    auto replied = std::make_shared<std::atomic<bool>>(false);
    Reply reply = [req, replied](Response r) {
      if (replied->exchange(true)) return;  // a second reply is a bug upstream of here; the first one stands
      send(req, r);
    };
    const auto& headers = req.headers();
    if (headers.has("Transfer-Encoding")) {
      reply(length_required());
      return;
    }
    size_t length = headers.content_length();
    if (length > options_.max_body) {
      reply(body_too_large(length, options_.max_body));
      return;
    }
    Request r;
    r.method = req.method();
    r.remote_address = req.remote_address();
    auto uri = req.relative_uri();
    r.path = split_path(uri.path());
    r.query = split_query(uri.query());
    for (const auto& [name, value] : headers) {
      std::string lower = name;
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[lower] = value;
    }
    if (length == 0) {
      invoke(std::move(r), reply);
      return;
    }
    web_http::http_request body_source = req;  // extract_string is not const
    body_source.extract_string(true).then([this, r = std::move(r), reply](pplx::task<std::string> t) mutable {
      try {
        r.body = t.get();
      } catch (const std::exception& e) {
        reply(error_response(400, "bad_request", std::string("reading the request body failed: ") + e.what()));
        log::debug("reading an http request body failed", {{"error", e.what()}});
        return;
      }
      invoke(std::move(r), reply);
    });
  }

  void invoke(Request r, const Reply& reply) { invoke_handler(handler_, std::move(r), reply); }

  ServerOptions options_;
  Handler handler_;
  std::unique_ptr<http_listener> listener_;
  int port_ = 0;
};

}  // namespace

std::unique_ptr<Server> make_cpprest_server(ServerOptions options, Handler handler) {
  return std::make_unique<CpprestServer>(std::move(options), std::move(handler));
}

}  // namespace gasoline::http
