#pragma once
// Kubernetes-native kv credentials (docs/security.md, "Roles"): a sidecar presents its pod's projected
// ServiceAccount token (audience gasoline-kv) as its bearer token, and the kv asks the API server who it is with a
// TokenReview. `system:serviceaccount:<ns>:<name>` becomes worker and client of namespace <ns>: whoever can run a
// pod in a namespace may run that namespace's pools, and nothing else. So no kv token Secret has to be copied
// into tenant namespaces.
//
// Pure core (the review's answer to an identity, the JWT expiry, the cache) and a thin shell (TokenReviewer: the
// HTTP call on a small thread pool of its own, so a slow API server never blocks the kv's I/O threads).
#include "kv/rpc/authz.h"
#include "operator/kube/config.h"

#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace gasoline::kube {
class Http;
}

namespace gasoline::kv::auth {

inline constexpr const char* kAudience = "gasoline-kv";

// The namespace of a service account username ("system:serviceaccount:<ns>:<name>"); nullopt for users, nodes
// and anything malformed.
std::optional<std::string> service_account_namespace(std::string_view username);

struct ReviewResult {
  std::optional<rpc::authz::Identity> identity;
  std::string error;  // why not, for the refused hello (never the token)
};

// The identity a TokenReview response (the object the API server returns) grants for `audience`.
ReviewResult identity_from_review(const nlohmann::json& review, std::string_view audience);

// The TokenReview object to POST for a token and audience.
nlohmann::json review_request(const std::string& token, std::string_view audience);

// The `exp` claim (unix seconds) of a JWT, read without verifying the signature: the API server verified the
// token; the kv only needs to know when to stop trusting its cached answer. nullopt when it is not a JWT.
std::optional<int64_t> jwt_expiry(std::string_view token);

// How long a positive review may be reused from `now_ms`: at most `max_ms`, and never past the token's expiry.
int64_t cache_ms(int64_t now_ms, std::optional<int64_t> exp_seconds, int64_t max_ms);

// Reviews by token digest (never the token), each until its own deadline; bounded, oldest first out.
class ReviewCache {
 public:
  explicit ReviewCache(size_t max_entries = 10000) : max_(max_entries) {}
  // The cached result while it is fresh: an identity, or a refusal (identity empty, error set).
  std::optional<ReviewResult> find(const std::string& digest, int64_t now_ms);
  void put(const std::string& digest, ReviewResult result, int64_t until_ms);
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    ReviewResult result;
    int64_t until_ms;
    std::list<std::string>::iterator order;
  };
  size_t max_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> order_;  // insertion order, for eviction
};

struct ReviewerOptions {
  kube::Config config;  // the API server and the kv's own credential (in-cluster: its ServiceAccount)
  std::string audience = kAudience;
  int64_t cache_max_ms = 60000;     // positive answers, capped by the token's expiry
  int64_t refusal_cache_ms = 5000;  // a refused token is not sent to the API server again this soon
  std::chrono::milliseconds timeout{2500};
  size_t threads = 2;
  // Counts reviews for /metrics: "authenticated", "refused", "error" or "cached".
  std::function<void(const std::string& result)> on_review;
};

class TokenReviewer {
 public:
  explicit TokenReviewer(ReviewerOptions options);
  ~TokenReviewer();
  TokenReviewer(const TokenReviewer&) = delete;
  TokenReviewer& operator=(const TokenReviewer&) = delete;

  // An rpc::authz::Authenticator: answers from the cache at once, or after a TokenReview on the reviewer's own
  // threads. An API server that cannot be reached refuses the hello (the client retries), never crashes.
  void authenticate(const std::string& token, rpc::authz::AuthDone done);

 private:
  ReviewResult review(const std::string& token);
  void count(const std::string& result) const;

  ReviewerOptions options_;
  std::unique_ptr<kube::Http> http_;
  std::mutex mu_;
  ReviewCache cache_;
  boost::asio::thread_pool pool_;
};

}  // namespace gasoline::kv::auth
