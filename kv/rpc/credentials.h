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

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
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

// A --credentials-file, read again when it changes (checked at most every `check_every`, when asked), so a token
// can be added or revoked without restarting the kv. A file that no longer parses (an edit caught half-written,
// a typo) keeps the previous credentials and is logged, so a bad edit cannot lock every client out.
class CredentialsFile {
 public:
  // Throws std::invalid_argument "--credentials-file PATH: line N: ..." when the file cannot be read or parsed.
  explicit CredentialsFile(std::string path, std::chrono::milliseconds check_every = std::chrono::seconds(1));
  std::shared_ptr<const Credentials> current();
  // Bumps on every reload that took effect; cheap between checks (one clock read).
  uint64_t revision();

 private:
  std::shared_ptr<const Credentials> load() const;  // throws like the constructor
  std::optional<std::filesystem::file_time_type> stamp() const;

  const std::string path_;
  const std::chrono::milliseconds check_every_;
  std::atomic<int64_t> next_check_ns_{0};  // steady clock; before it, current() skips the file system
  std::atomic<uint64_t> revision_{0};
  std::mutex mu_;
  std::shared_ptr<const Credentials> credentials_;
  std::optional<std::filesystem::file_time_type> loaded_stamp_;
};

// Authenticates a hello: the admin token (--token-file, compared in constant time) and the static credentials
// answer at once; any other token goes to `other` (a TokenReview) when set, and is refused otherwise.
authz::Authenticator make_authenticator(std::string admin_token, Credentials credentials,
                                        authz::Authenticator other = nullptr);
// The same with credentials that may be reloaded (`file` may be null: the admin token and `other` only).
authz::Authenticator make_authenticator(std::string admin_token, std::shared_ptr<CredentialsFile> file,
                                        authz::Authenticator other = nullptr);

}  // namespace gasoline::rpc
