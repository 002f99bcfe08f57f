#pragma once
// TLS for the client protocol (sidecars, the operator and gasctl to the kv; docs/security.md, TLS). Certificates
// are PEM files as Kubernetes mounts a TLS Secret (tls.crt, tls.key, ca.crt). The server reads them again when
// they change, so a rotated Secret reaches new connections without a restart; open connections keep the
// certificate they started with.
#include <boost/asio/ssl.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace gasoline::rpc::tls {
namespace ssl = boost::asio::ssl;

struct ServerFiles {
  std::string cert;       // PEM chain, leaf first
  std::string key;        // PEM private key
  std::string client_ca;  // when set, every client must present a certificate this CA signed (mutual TLS)
  bool enabled() const { return !cert.empty() || !key.empty(); }
};

// Builds a server context (TLS 1.2 or later) from the files. Throws std::runtime_error naming the file and
// OpenSSL's reason.
std::shared_ptr<ssl::context> server_context(const ServerFiles& files);

// The server's context, reloaded when one of its files changes (checked at most every `check_every`, when a
// connection arrives). A reload that fails, such as a rotation caught half-written, keeps the previous context
// and is retried at the next check.
class ReloadingContext {
 public:
  // Throws like server_context: a server must not start without a certificate it can serve.
  explicit ReloadingContext(ServerFiles files, std::chrono::milliseconds check_every = std::chrono::seconds(1));
  std::shared_ptr<ssl::context> current();
  uint64_t reloads() const;

 private:
  using Stamp = std::optional<std::filesystem::file_time_type>;
  std::array<Stamp, 3> stamps() const;

  const ServerFiles files_;
  const std::chrono::milliseconds check_every_;
  mutable std::mutex mu_;
  std::shared_ptr<ssl::context> context_;
  std::array<Stamp, 3> loaded_;
  std::chrono::steady_clock::time_point next_check_;
  uint64_t reloads_ = 0;
};

struct ClientFiles {
  bool enabled = false;
  std::string ca;           // a file of the CA the server's certificate must chain to
  std::string ca_pem;       // or that CA's PEM text itself (the operator passes it to sidecars in the pod spec)
                            // with neither: the system's trust store
  std::string cert;         // a client certificate, for a server that requires one (both or neither)
  std::string key;
  std::string server_name;  // the name the certificate must carry; empty: the host of the address dialled
};

// Throws std::runtime_error naming the file and OpenSSL's reason.
std::shared_ptr<ssl::context> client_context(const ClientFiles& files);

// OpenSSL's reason for the last failure on this thread, or `fallback`.
std::string last_error(const std::string& fallback);

}  // namespace gasoline::rpc::tls
