#pragma once
// Static credentials: bearer tokens with a role and a scope, for clients outside Kubernetes and for loopback
// tests (`gasoline-kv --credentials-file`). One credential a line:
//
//   # ROLE  SCOPE      TOKEN
//   admin   *          <token>      every op, cluster.* included
//   worker  shop       <token>      the worker ops on the pools of namespace shop (shop.<name>)
//   client  shop       <token>      the client ops on the pools of namespace shop
//   viewer  *          <token>      read only: get and list on every pool, status, workers, cluster.status
//   viewer  shop       <token>      read only: get and list on the pools of namespace shop
//
// A token may appear on a worker and a client line of the same namespace (a sidecar that also dispatches);
// anything else repeating a token is an error. Tokens are looked up by their SHA-256, so the lookup time says
// nothing about how much of a guessed token was right.
#include "kv/rpc/authz.h"

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace gasoline::rpc {

// The raw SHA-256 of a token (32 bytes): the key of credential tables and caches, never the token itself.
std::string token_digest(std::string_view token);

class Credentials {
 public:
  // Throws std::invalid_argument when the token is already known with another scope or as admin.
  void add(std::string_view token, const authz::Identity& identity);
  std::optional<authz::Identity> find(std::string_view token) const;
  size_t size() const { return by_digest_.size(); }

 private:
  std::map<std::string, authz::Identity> by_digest_;
};

inline constexpr size_t kMinTokenBytes = 16;

// Parses a credentials file's text. Throws std::invalid_argument naming the line ("line 3: ...") and never
// quoting a token.
Credentials parse_credentials(std::string_view text);

// Authenticates a hello: the admin token (--token-file, compared in constant time) and the static credentials
// answer at once; any other token goes to `other` (a TokenReview) when set, and is refused otherwise.
authz::Authenticator make_authenticator(std::string admin_token, Credentials credentials,
                                        authz::Authenticator other = nullptr);
// The same with credentials asked for at every hello (kv/rpc/credentials_file.h rereads them on change).
authz::Authenticator make_authenticator(std::string admin_token,
                                        std::function<std::shared_ptr<const Credentials>()> credentials,
                                        authz::Authenticator other = nullptr);

}  // namespace gasoline::rpc
