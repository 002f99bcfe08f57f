#include "kv/rpc/tls.h"

#include "common/log.h"
#include "common/openssl_error.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdexcept>

namespace gasoline::rpc::tls {
namespace {

// A context that refuses the protocol versions with known breaks; TLS 1.3 is negotiated when both sides have it.
std::shared_ptr<ssl::context> base_context(ssl::context::method method) {
  auto ctx = std::make_shared<ssl::context>(method);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  return ctx;
}

// Runs one OpenSSL-backed load step, turning its failure into an error that says which file and why.
template <class Fn>
void load(const std::string& what, const std::string& file, Fn&& fn) {
  boost::system::error_code ec;
  fn(ec);
  if (ec) throw std::runtime_error("TLS " + what + " '" + file + "': " + ec.message());
}

}  // namespace

std::string last_error(const std::string& fallback) { return openssl_error(fallback); }

std::shared_ptr<ssl::context> server_context(const ServerFiles& files) {
  if (files.cert.empty() || files.key.empty())
    throw std::runtime_error("TLS needs both a certificate and a key file (got cert '" + files.cert + "', key '" +
                             files.key + "')");
  auto ctx = base_context(ssl::context::tls_server);
  load("certificate", files.cert, [&](auto& ec) { ctx->use_certificate_chain_file(files.cert, ec); });
  boost::system::error_code ec;
  ctx->use_private_key_file(files.key, ssl::context::pem, ec);  // also checks that the key is the certificate's
  if (ec)
    throw std::runtime_error("TLS key '" + files.key + "' does not load or does not belong to the certificate '" +
                             files.cert + "': " + ec.message());
  if (!files.client_ca.empty()) {
    load("client CA", files.client_ca, [&](auto& ec) { ctx->load_verify_file(files.client_ca, ec); });
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  }
  return ctx;
}

ReloadingContext::ReloadingContext(ServerFiles files, std::chrono::milliseconds check_every)
    : files_(std::move(files)), check_every_(check_every) {
  loaded_ = stamps();
  context_ = server_context(files_);
  next_check_ = std::chrono::steady_clock::now() + check_every_;
}

std::array<ReloadingContext::Stamp, 3> ReloadingContext::stamps() const {
  std::array<Stamp, 3> out;
  const std::string* paths[] = {&files_.cert, &files_.key, &files_.client_ca};
  for (size_t i = 0; i < out.size(); ++i) {
    if (paths[i]->empty()) continue;
    std::error_code ec;
    // Follows symlinks: a Kubernetes Secret volume rotates by swapping the `..data` link the files point through.
    auto t = std::filesystem::last_write_time(*paths[i], ec);
    if (!ec) out[i] = t;
  }
  return out;
}

std::shared_ptr<ssl::context> ReloadingContext::current() {
  std::lock_guard lock(mu_);
  auto now = std::chrono::steady_clock::now();
  if (now < next_check_) return context_;
  next_check_ = now + check_every_;
  auto seen = stamps();
  if (seen == loaded_) return context_;
  try {
    context_ = server_context(files_);
    loaded_ = seen;
    ++reloads_;
    log::info("reloaded the TLS certificate", {{"cert", files_.cert}, {"reloads", reloads_}});
  } catch (const std::exception& e) {
    log::warn("keeping the previous TLS certificate: the new files do not load (retrying)", {{"error", e.what()}});
  }
  return context_;
}

uint64_t ReloadingContext::reloads() const {
  std::lock_guard lock(mu_);
  return reloads_;
}

std::shared_ptr<ssl::context> client_context(const ClientFiles& files) {
  auto ctx = base_context(ssl::context::tls_client);
  ctx->set_verify_mode(ssl::verify_peer);
  if (!files.ca.empty())
    load("CA", files.ca, [&](auto& ec) { ctx->load_verify_file(files.ca, ec); });
  if (!files.ca_pem.empty())
    load("CA", "(PEM text, --kv-tls-ca-pem)",
         [&](auto& ec) { ctx->add_certificate_authority(boost::asio::buffer(files.ca_pem), ec); });
  if (files.ca.empty() && files.ca_pem.empty())
    load("trust store", "(system default)", [&](auto& ec) { ctx->set_default_verify_paths(ec); });
  if (files.cert.empty() != files.key.empty())
    throw std::runtime_error("a TLS client certificate needs both --kv-tls-cert and --kv-tls-key");
  if (!files.cert.empty()) {
    load("client certificate", files.cert, [&](auto& ec) { ctx->use_certificate_chain_file(files.cert, ec); });
    load("client key", files.key, [&](auto& ec) { ctx->use_private_key_file(files.key, ssl::context::pem, ec); });
  }
  return ctx;
}

}  // namespace gasoline::rpc::tls
