#pragma once
// A minimal HTTP/1.1 server for the probes (/healthz, /readyz) and /metrics of the operator and the kv: GET only,
// one request per connection, answered on one thread. Kubelets and Prometheus are its only clients, so simplicity
// wins over throughput here.
#include <functional>
#include <memory>
#include <string>

namespace gasoline {

struct AdminReply {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain; charset=utf-8";
};

// Gets the path without the query; returns 404 for paths it does not serve.
using AdminHandler = std::function<AdminReply(const std::string& path)>;

class AdminServer {
 public:
  // `listen` is host:port (port 0 = any). Throws std::runtime_error naming the address when it cannot bind.
  AdminServer(const std::string& listen, AdminHandler handler);
  ~AdminServer();
  int port() const;
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gasoline
