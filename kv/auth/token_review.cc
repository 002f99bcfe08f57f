#include "kv/auth/token_review.h"

#include "common/clock.h"
#include "common/log.h"
#include "kv/rpc/credentials.h"
#include "operator/kube/client.h"
#include "operator/kube/config.h"
#include "operator/kube/http.h"

#include <boost/asio/post.hpp>

#include <algorithm>

namespace gasoline::kv::auth {
namespace {

using nlohmann::json;

// RFC 4648 base64url (a JWT's segments, unpadded) through the kube library's standard base64 decoder.
std::optional<std::string> base64url_decode(std::string_view in) {
  std::string standard(in);
  for (char& c : standard) {
    if (c == '+' || c == '/') return std::nullopt;  // not in the url alphabet
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  try {
    return kube::base64_decode(standard, "a JWT segment");
  } catch (const std::runtime_error&) {
    return std::nullopt;
  }
}

}  // namespace

std::optional<std::string> service_account_namespace(std::string_view username) {
  constexpr std::string_view kPrefix = "system:serviceaccount:";
  if (username.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  auto rest = username.substr(kPrefix.size());
  auto colon = rest.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= rest.size()) return std::nullopt;
  if (rest.find(':', colon + 1) != std::string_view::npos) return std::nullopt;
  return std::string(rest.substr(0, colon));
}

json review_request(const std::string& token, std::string_view audience) {
  return json{{"apiVersion", "authentication.k8s.io/v1"},
              {"kind", "TokenReview"},
              {"spec", {{"token", token}, {"audiences", json::array({std::string(audience)})}}}};
}

ReviewResult identity_from_review(const json& review, std::string_view audience) {
  const json status = review.is_object() && review.contains("status") && review["status"].is_object()
                          ? review["status"]
                          : json::object();
  if (!status.value("authenticated", false)) {
    std::string why = status.contains("error") && status["error"].is_string() ? status["error"].get<std::string>()
                                                                                : "";
    return {std::nullopt, "the API server did not authenticate the token" + (why.empty() ? "" : ": " + why)};
  }
  // The API server checked the token against the audiences we asked for; if it says which ones it matched,
  // ours must be among them (an API server that ignores audiences would return none).
  if (status.contains("audiences") && status["audiences"].is_array()) {
    const auto& a = status["audiences"];
    bool ours = std::any_of(a.begin(), a.end(), [&](const json& x) { return x.is_string() && x == audience; });
    if (!ours) return {std::nullopt, "the token is not meant for audience " + std::string(audience)};
  }
  std::string username;
  if (status.contains("user") && status["user"].is_object() && status["user"].contains("username") &&
      status["user"]["username"].is_string())
    username = status["user"]["username"].get<std::string>();
  auto ns = service_account_namespace(username);
  if (!ns)
    return {std::nullopt, "'" + username +
                              "' is not a service account: only service accounts get a role from a TokenReview "
                              "(others use --credentials-file)"};
  rpc::authz::Identity id;
  id.worker = true;
  id.client = true;
  id.ns = *ns;
  id.subject = username;
  return {std::move(id), ""};
}

std::optional<int64_t> jwt_expiry(std::string_view token) {
  auto first = token.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  auto second = token.find('.', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  auto payload = base64url_decode(token.substr(first + 1, second - first - 1));
  if (!payload) return std::nullopt;
  auto claims = json::parse(*payload, nullptr, false);
  if (claims.is_discarded() || !claims.is_object() || !claims.contains("exp") || !claims["exp"].is_number())
    return std::nullopt;
  return claims["exp"].get<int64_t>();
}

int64_t cache_ms(int64_t now_ms, std::optional<int64_t> exp_seconds, int64_t max_ms) {
  int64_t ms = max_ms;
  if (exp_seconds) ms = std::min(ms, *exp_seconds * 1000 - now_ms);
  return std::max<int64_t>(0, ms);
}

std::optional<ReviewResult> ReviewCache::find(const std::string& digest, int64_t now_ms) {
  auto it = entries_.find(digest);
  if (it == entries_.end()) return std::nullopt;
  if (it->second.until_ms <= now_ms) {
    order_.erase(it->second.order);
    entries_.erase(it);
    return std::nullopt;
  }
  return it->second.result;
}

void ReviewCache::put(const std::string& digest, ReviewResult result, int64_t until_ms) {
  if (max_ == 0) return;
  if (auto it = entries_.find(digest); it != entries_.end()) {
    order_.erase(it->second.order);
    entries_.erase(it);
  }
  while (entries_.size() >= max_) {
    entries_.erase(order_.front());
    order_.pop_front();
  }
  order_.push_back(digest);
  entries_.emplace(digest, Entry{std::move(result), until_ms, std::prev(order_.end())});
}

TokenReviewer::TokenReviewer(ReviewerOptions options)
    : options_(std::move(options)),
      http_(std::make_unique<kube::Http>(options_.config)),
      pool_(std::max<size_t>(1, options_.threads)) {}

TokenReviewer::~TokenReviewer() {
  pool_.stop();
  pool_.join();
}

void TokenReviewer::count(const std::string& result) const {
  if (options_.on_review) options_.on_review(result);
}

void TokenReviewer::authenticate(const std::string& token, rpc::authz::AuthDone done) {
  auto digest = rpc::token_digest(token);
  {
    std::lock_guard lock(mu_);
    if (auto hit = cache_.find(digest, wall_ms())) {
      count("cached");
      return done(std::move(hit->identity), std::move(hit->error));
    }
  }
  boost::asio::post(pool_, [this, token, done = std::move(done)] {
    auto result = review(token);
    done(std::move(result.identity), std::move(result.error));
  });
}

ReviewResult TokenReviewer::review(const std::string& token) {
  kube::HttpResponse r;
  try {
    r = http_->request("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                       review_request(token, options_.audience).dump(), "application/json", options_.timeout);
  } catch (const std::exception& e) {
    count("error");
    log::warn("token review failed: the API server is unreachable", {{"server", options_.config.server},
                                                                     {"error", e.what()}});
    return {std::nullopt, std::string("cannot verify the token: the API server is unreachable (") + e.what() + ")"};
  }
  if (r.status != 201 && r.status != 200) {
    count("error");
    auto err = kube::api_error("create a TokenReview", r);
    log::warn("token review failed", {{"status", r.status}, {"error", err.what()}});
    // 403 is the kv's own ServiceAccount lacking `create tokenreviews` (the chart's ClusterRole).
    return {std::nullopt, std::string("cannot verify the token: ") + err.what()};
  }
  auto body = nlohmann::json::parse(r.body, nullptr, false);
  auto result = identity_from_review(body, options_.audience);
  int64_t now = wall_ms();
  auto digest = rpc::token_digest(token);
  std::lock_guard lock(mu_);
  if (result.identity) {
    count("authenticated");
    int64_t ms = cache_ms(now, jwt_expiry(token), options_.cache_max_ms);
    if (ms > 0) cache_.put(digest, result, now + ms);
  } else {
    count("refused");
    cache_.put(digest, result, now + options_.refusal_cache_ms);
  }
  return result;
}

}  // namespace gasoline::kv::auth
