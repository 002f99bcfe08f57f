// The pure core of the kv's TokenReview authentication (kv/auth/token_review.h): what a review's answer grants,
// the JWT expiry that bounds the cache, and the cache itself. The HTTP shell is tested against the real API server
// of hack/cluster.sh (tests/operator/cluster/token_review_test.sh).
#include "kv/auth/token_review.h"

#include <gtest/gtest.h>

namespace gasoline::kv::auth {
namespace {

using nlohmann::json;

json answer(bool authenticated, const std::string& username, json audiences = json::array({"gasoline-kv"})) {
  json status{{"authenticated", authenticated},
              {"user", {{"username", username}, {"groups", {"system:serviceaccounts"}}}}};
  if (!audiences.is_null()) status["audiences"] = audiences;
  return json{{"kind", "TokenReview"}, {"status", status}};
}

TEST(TokenReview, ServiceAccountsBecomeWorkerAndClientOfTheirNamespace) {
  auto r = identity_from_review(answer(true, "system:serviceaccount:shop:default"), kAudience);
  ASSERT_TRUE(r.identity) << r.error;
  EXPECT_TRUE(r.identity->worker);
  EXPECT_TRUE(r.identity->client);
  EXPECT_FALSE(r.identity->admin);
  EXPECT_EQ(r.identity->ns, "shop");
  EXPECT_EQ(r.identity->subject, "system:serviceaccount:shop:default");
  // An API server that does not echo audiences is taken at its word (it was asked for ours).
  EXPECT_TRUE(identity_from_review(answer(true, "system:serviceaccount:a:b", nullptr), kAudience).identity);
}

TEST(TokenReview, EverythingElseIsRefusedWithAReason) {
  struct Case {
    json review;
    std::string error;  // a part of the message
  };
  json not_authenticated = answer(false, "");
  not_authenticated["status"]["error"] = "token has expired";
  const std::vector<Case> cases = {
      {not_authenticated, "did not authenticate the token: token has expired"},
      {json::object(), "did not authenticate"},
      {json{{"status", "yes"}}, "did not authenticate"},
      {answer(true, "system:serviceaccount:shop:default", json::array({"other"})),
       "not meant for audience gasoline-kv"},
      {answer(true, "system:serviceaccount:shop:default", json::array()), "not meant for audience"},
      {answer(true, "alice"), "'alice' is not a service account"},
      {answer(true, "system:node:n1"), "is not a service account"},
      {answer(true, "system:serviceaccount:shop"), "is not a service account"},
      {answer(true, "system:serviceaccount::x"), "is not a service account"},
      {answer(true, "system:serviceaccount:a:b:c"), "is not a service account"},
  };
  for (const auto& c : cases) {
    auto r = identity_from_review(c.review, kAudience);
    EXPECT_FALSE(r.identity) << c.review.dump();
    EXPECT_NE(r.error.find(c.error), std::string::npos) << r.error;
  }
}

TEST(TokenReview, RequestAsksForTheAudience) {
  auto r = review_request("tok", kAudience);
  EXPECT_EQ(r["apiVersion"], "authentication.k8s.io/v1");
  EXPECT_EQ(r["kind"], "TokenReview");
  EXPECT_EQ(r["spec"]["token"], "tok");
  EXPECT_EQ(r["spec"]["audiences"], json::array({"gasoline-kv"}));
}

TEST(TokenReview, JwtExpiry) {
  // {"alg":"RS256"} . {"aud":["gasoline-kv"],"exp":1700003600,"sub":"system:serviceaccount:a:b"} . signature
  const std::string jwt =
      "eyJhbGciOiJSUzI1NiJ9."
      "eyJhdWQiOlsiZ2Fzb2xpbmUta3YiXSwiZXhwIjoxNzAwMDAzNjAwLCJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YTpiIn0.sig";
  EXPECT_EQ(jwt_expiry(jwt), 1700003600);
  EXPECT_FALSE(jwt_expiry("not-a-jwt"));
  EXPECT_FALSE(jwt_expiry("a.b"));
  EXPECT_FALSE(jwt_expiry("a.!!!.c"));
  EXPECT_FALSE(jwt_expiry("a.eyJzdWIiOiJ4In0.c"));  // {"sub":"x"}: no exp
}

TEST(TokenReview, CacheTimeIsAMinuteAtMostAndNeverPastExpiry) {
  const int64_t now = 1700000000000;
  EXPECT_EQ(cache_ms(now, std::nullopt, 60000), 60000);
  EXPECT_EQ(cache_ms(now, 1700003600, 60000), 60000);
  EXPECT_EQ(cache_ms(now, 1700000010, 60000), 10000);
  EXPECT_EQ(cache_ms(now, 1699999999, 60000), 0);
}

TEST(TokenReview, CacheExpiresAndEvictsOldestFirst) {
  ReviewCache cache(2);
  ReviewResult ok{rpc::authz::Identity{}, ""};
  cache.put("a", ok, 100);
  cache.put("b", ReviewResult{std::nullopt, "refused"}, 200);
  ASSERT_TRUE(cache.find("a", 99));
  EXPECT_FALSE(cache.find("a", 100)) << "expired at its deadline";
  EXPECT_EQ(cache.find("b", 150)->error, "refused");
  cache.put("c", ok, 300);
  cache.put("d", ok, 300);  // evicts b, the oldest
  EXPECT_FALSE(cache.find("b", 150));
  EXPECT_TRUE(cache.find("c", 150));
  EXPECT_TRUE(cache.find("d", 150));
  EXPECT_EQ(cache.size(), 2u);
}

}  // namespace
}  // namespace gasoline::kv::auth
