#include "kv/rpc/credentials.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <stdexcept>
#include <vector>

namespace gasoline::rpc {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    size_t start = i;
    while (i < line.size() && !is_space(line[i])) ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

// A Kubernetes namespace name (an RFC 1123 label): what the pools' `<namespace>.` prefix can be.
bool valid_namespace(std::string_view ns) {
  if (ns.empty() || ns.size() > 63 || ns.front() == '-' || ns.back() == '-') return false;
  for (char c : ns)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  return true;
}

bool printable_token(std::string_view token) {
  for (unsigned char c : token)
    if (c <= 0x20 || c >= 0x7f) return false;
  return true;
}

}  // namespace

std::string token_digest(std::string_view token) {
  std::string out(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(),
         reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

void Credentials::add(std::string_view token, const authz::Identity& identity) {
  auto [it, inserted] = by_digest_.try_emplace(token_digest(token), identity);
  if (inserted) return;
  auto& known = it->second;
  if (known.admin || identity.admin || known.viewer || identity.viewer || known.ns != identity.ns)
    throw std::invalid_argument("the token is already given to " + known.describe() + " (" + known.subject +
                                "); a token may only combine the worker and client roles of one namespace");
  known.worker = known.worker || identity.worker;
  known.client = known.client || identity.client;
  known.subject += ", " + identity.subject;
}

std::optional<authz::Identity> Credentials::find(std::string_view token) const {
  auto it = by_digest_.find(token_digest(token));
  if (it == by_digest_.end()) return std::nullopt;
  return it->second;
}

Credentials parse_credentials(std::string_view text) {
  Credentials out;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    auto fail = [&](const std::string& why) {
      throw std::invalid_argument("line " + std::to_string(line_no) + ": " + why);
    };
    auto f = fields(line);
    if (f.empty() || f[0].front() == '#') {
      if (end == text.size()) break;
      continue;
    }
    if (f.size() != 3)
      fail("expected 'ROLE SCOPE TOKEN' (3 fields), got " + std::to_string(f.size()) +
           (f.size() == 2 ? " (is the token missing?)" : ""));
    auto role = f[0];
    auto scope = f[1];
    auto token = f[2];
    authz::Identity id;
    id.subject = "credentials line " + std::to_string(line_no);
    id.from_credentials_file = true;
    if (role == "admin") {
      if (scope != "*")
        fail("an admin credential's scope must be '*' (it may do everything), got '" + std::string(scope) + "'");
      id.admin = true;
    } else if (role == "worker" || role == "client") {
      if (!valid_namespace(scope))
        fail("scope '" + std::string(scope) +
             "' is not a namespace name (lowercase letters, digits and '-', at most 63)");
      id.ns = std::string(scope);
      (role == "worker" ? id.worker : id.client) = true;
    } else if (role == "viewer") {
      if (scope != authz::kEveryNamespace && !valid_namespace(scope))
        fail("a viewer's scope must be '*' (every pool) or a namespace name, got '" + std::string(scope) + "'");
      id.viewer = true;
      id.ns = std::string(scope);
    } else {
      fail("unknown role '" + std::string(role) + "' (admin, worker, client or viewer)");
    }
    if (token.size() < kMinTokenBytes)
      fail("the token is " + std::to_string(token.size()) + " bytes; at least " + std::to_string(kMinTokenBytes) +
           " are required");
    if (!printable_token(token)) fail("the token has characters outside printable ASCII");
    try {
      out.add(token, id);
    } catch (const std::invalid_argument& e) {
      fail(e.what());
    }
    if (end == text.size()) break;
  }
  return out;
}

namespace {

authz::Authenticator authenticator(std::string admin_token, std::function<std::shared_ptr<const Credentials>()> credentials,
                                   authz::Authenticator other) {
  auto admin_digest = admin_token.empty() ? std::string() : token_digest(admin_token);
  return [admin_digest, credentials = std::move(credentials), other = std::move(other)](const std::string& token,
                                                                                        authz::AuthDone done) {
    if (token.empty()) return done(std::nullopt, "the hello carries no bearer token");
    auto digest = token_digest(token);
    if (!admin_digest.empty() && CRYPTO_memcmp(digest.data(), admin_digest.data(), digest.size()) == 0)
      return done(authz::admin("admin token"), "");
    if (auto id = credentials()->find(token)) return done(std::move(id), "");
    if (other) return other(token, std::move(done));
    done(std::nullopt, "invalid bearer token");
  };
}

}  // namespace

authz::Authenticator make_authenticator(std::string admin_token, Credentials credentials, authz::Authenticator other) {
  auto fixed = std::make_shared<const Credentials>(std::move(credentials));
  return authenticator(std::move(admin_token), [fixed] { return fixed; }, std::move(other));
}

authz::Authenticator make_authenticator(std::string admin_token,
                                        std::function<std::shared_ptr<const Credentials>()> credentials,
                                        authz::Authenticator other) {
  return authenticator(std::move(admin_token), std::move(credentials), std::move(other));
}

}  // namespace gasoline::rpc
