// The gateway's routes (gateway/routes.h), without processes: what each request becomes on the kv, what each kv
// outcome becomes in HTTP, and the clear 4xx every malformed request gets before anything reaches the kv.
#include "gateway/routes.h"

#include <gtest/gtest.h>

namespace gasoline::gateway {
namespace {

http::Request request(std::string method, std::vector<std::string> path, std::string body = "",
                      std::map<std::string, std::string> query = {}) {
  http::Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.body = std::move(body);
  r.query = std::move(query);
  return r;
}

// Ids the test can predict: "wf_1", "sig_2", ...
NewId counter_ids() {
  auto n = std::make_shared<int>(0);
  return [n](const char* prefix) { return std::string(prefix) + std::to_string(++*n); };
}

Json error_of(const http::Response& r) { return Json::parse(r.body)["error"]; }

TEST(GatewayRoutes, RequestsBecomeKvCalls) {
  const struct {
    const char* name;
    http::Request req;
    Route route;
    std::vector<KvCall> calls;
  } cases[] = {
      {"dispatch, the gateway names it", request("POST", {"v1", "workflows"}, R"({"pool":"a.p","name":"job"})"),
       Route::kDispatch, {{"dispatch", Json{{"pool", "a.p"}, {"name", "job"}, {"id", "wf_1"}}}}},
      {"dispatch with everything",
       request("POST", {"v1", "workflows"},
               R"({"pool":"a.p","name":"job","input":{"n":1},"id":"mine","idempotency_key":"k","tags":{"t":"1"},
                   "delay_ms":500,"max_attempts":3})"),
       Route::kDispatch,
       {{"dispatch", Json{{"pool", "a.p"}, {"name", "job"}, {"input", {{"n", 1}}}, {"id", "mine"},
                          {"idempotency_key", "k"}, {"tags", {{"t", "1"}}}, {"delay_ms", 500}, {"max_attempts", 3}}}}},
      {"batch: one call each, named in order",
       request("POST", {"v1", "workflows", "batch"},
               R"({"workflows":[{"pool":"a.p","name":"x"},{"pool":"a.p","name":"y","id":"y1"},{"pool":"a.q","name":"z"}]})"),
       Route::kDispatchBatch,
       {{"dispatch", Json{{"pool", "a.p"}, {"name", "x"}, {"id", "wf_1"}}},
        {"dispatch", Json{{"pool", "a.p"}, {"name", "y"}, {"id", "y1"}}},
        {"dispatch", Json{{"pool", "a.q"}, {"name", "z"}, {"id", "wf_2"}}}}},
      {"get", request("GET", {"v1", "workflows", "wf 1/x"}), Route::kGet,
       {{"get", Json{{"workflow_id", "wf 1/x"}}}}},
      {"list, default page", request("GET", {"v1", "pools", "a.p", "workflows"}), Route::kList,
       {{"list", Json{{"pool", "a.p"}, {"limit", 100}}}}},
      {"list, a page after a cursor",
       request("GET", {"v1", "pools", "a.p", "workflows"}, "",
               {{"status", "complete"}, {"limit", "2"}, {"after", "wf_9"}}),
       Route::kList, {{"list", Json{{"pool", "a.p"}, {"status", "complete"}, {"limit", 2}, {"after", "wf_9"}}}}},
      {"signal, the gateway names it", request("POST", {"v1", "workflows", "w", "signals"}, R"({"name":"go"})"),
       Route::kSignal, {{"signal", Json{{"workflow_id", "w"}, {"name", "go"}, {"body", nullptr}, {"signal_id", "sig_1"}}}}},
      {"signal with body and id",
       request("POST", {"v1", "workflows", "w", "signals"}, R"({"name":"go","body":[1],"signal_id":"s"})"),
       Route::kSignal, {{"signal", Json{{"workflow_id", "w"}, {"name", "go"}, {"body", {1}}, {"signal_id", "s"}}}}},
      {"cancel without a body", request("POST", {"v1", "workflows", "w", "cancel"}), Route::kCancel,
       {{"cancel", Json{{"workflow_id", "w"}}}}},
      {"cancel with a reason", request("POST", {"v1", "workflows", "w", "cancel"}, R"({"reason":"dup"})"),
       Route::kCancel, {{"cancel", Json{{"workflow_id", "w"}, {"reason", "dup"}}}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Plan p = plan(c.req, counter_ids());
    ASSERT_FALSE(p.reply) << p.reply->body;
    EXPECT_EQ(p.route, c.route);
    ASSERT_EQ(p.calls.size(), c.calls.size());
    for (size_t i = 0; i < c.calls.size(); ++i) {
      EXPECT_EQ(p.calls[i].op, c.calls[i].op);
      EXPECT_EQ(p.calls[i].args, c.calls[i].args) << p.calls[i].args.dump();
    }
  }
}

TEST(GatewayRoutes, MalformedRequestsGetAClearAnswerAndNoKvCall) {
  std::string too_many = R"({"workflows":[)";
  for (size_t i = 0; i <= kMaxBatch; ++i) too_many += std::string(i ? "," : "") + R"({"pool":"a.p","name":"x"})";
  too_many += "]}";
  const struct {
    const char* name;
    http::Request req;
    int status;
    std::string code;
    std::string message;  // a part of it
  } cases[] = {
      {"not JSON", request("POST", {"v1", "workflows"}, "{"), 400, "bad_request", "not valid JSON"},
      {"not an object", request("POST", {"v1", "workflows"}, "[1]"), 400, "bad_request", "must be a JSON object"},
      {"no pool", request("POST", {"v1", "workflows"}, R"({"name":"job"})"), 400, "bad_request", "'pool' is required"},
      {"empty name", request("POST", {"v1", "workflows"}, R"({"pool":"a.p","name":""})"), 400, "bad_request",
       "'name' must not be empty"},
      {"a typo", request("POST", {"v1", "workflows"}, R"({"pool":"a.p","name":"j","inptu":1})"), 400, "bad_request",
       "unknown field 'inptu'"},
      {"tags not a map", request("POST", {"v1", "workflows"}, R"({"pool":"a.p","name":"j","tags":[1]})"), 400,
       "bad_request", "'tags' must be an object"},
      {"negative delay", request("POST", {"v1", "workflows"}, R"({"pool":"a.p","name":"j","delay_ms":-1})"), 400,
       "bad_request", "'delay_ms' must be an integer from 0"},
      {"run_at and delay", request("POST", {"v1", "workflows"}, R"({"pool":"a.p","name":"j","run_at":5,"delay_ms":5})"),
       400, "bad_request", "not both"},
      {"batch item bad", request("POST", {"v1", "workflows", "batch"},
                                 R"({"workflows":[{"pool":"a.p","name":"x"},{"pool":"a.p"}]})"),
       400, "bad_request", "workflows[1]: 'name' is required"},
      {"batch empty", request("POST", {"v1", "workflows", "batch"}, R"({"workflows":[]})"), 400, "bad_request",
       "1..1000 workflows, got 0"},
      {"batch too big", request("POST", {"v1", "workflows", "batch"}, too_many), 400, "bad_request",
       "1..1000 workflows, got 1001"},
      {"list limit 0", request("GET", {"v1", "pools", "a.p", "workflows"}, "", {{"limit", "0"}}), 400, "bad_request",
       "must be 1..10000"},
      {"list limit junk", request("GET", {"v1", "pools", "a.p", "workflows"}, "", {{"limit", "ten"}}), 400,
       "bad_request", "not a positive integer"},
      {"list status unknown", request("GET", {"v1", "pools", "a.p", "workflows"}, "", {{"status", "done"}}), 400,
       "bad_request", "'done' is not one of"},
      {"list query unknown", request("GET", {"v1", "pools", "a.p", "workflows"}, "", {{"cursor", "x"}}), 400,
       "bad_request", "unknown query parameter 'cursor'"},
      {"signal without name", request("POST", {"v1", "workflows", "w", "signals"}, "{}"), 400, "bad_request",
       "'name' is required"},
      {"wrong method", request("DELETE", {"v1", "workflows", "w"}), 405, "method_not_allowed", "use GET"},
      {"unknown route", request("GET", {"v2", "things"}), 404, "not_found", "no such route: GET /v2/things"},
      {"unknown under workflows", request("GET", {"v1", "workflows", "w", "steps"}), 404, "not_found",
       "no such route"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Plan p = plan(c.req, counter_ids());
    ASSERT_TRUE(p.reply);
    EXPECT_TRUE(p.calls.empty());
    EXPECT_EQ(p.reply->status, c.status) << p.reply->body;
    auto e = error_of(*p.reply);
    EXPECT_EQ(e["code"], c.code);
    EXPECT_NE(e["message"].get<std::string>().find(c.message), std::string::npos) << e["message"];
  }
  Plan wrong = plan(request("PUT", {"v1", "workflows"}), counter_ids());
  ASSERT_TRUE(wrong.reply);
  EXPECT_EQ(wrong.reply->headers, (std::vector<std::pair<std::string, std::string>>{{"Allow", "POST"}}));
}

TEST(GatewayRoutes, KvOutcomesBecomeHttpAnswers) {
  auto one = [](const char* method, std::vector<std::string> path, const char* body = "") {
    return plan(request(method, std::move(path), body), counter_ids());
  };
  Plan dispatch = one("POST", {"v1", "workflows"}, R"({"pool":"a.p","name":"j"})");
  EXPECT_EQ(respond(dispatch, {{true, Json{{"id", "wf_1"}, {"existing", false}}, "", ""}}).status, 201);
  EXPECT_EQ(respond(dispatch, {{true, Json{{"id", "wf_1"}, {"existing", true}}, "", ""}}).status, 200);

  const struct {
    std::string code;
    int status;
  } errors[] = {{"bad_request", 400},       {"unauthenticated", 401}, {"permission_denied", 403},
                {"not_found", 404},         {"conflict", 409},        {"failed_precondition", 409},
                {"too_large", 413},         {"unavailable", 503},     {"not_leader", 503},
                {"internal", 500},          {"protocol", 502},        {"something new", 502}};
  for (const auto& e : errors) {
    SCOPED_TRACE(e.code);
    auto r = respond(dispatch, {{false, {}, e.code, "why"}});
    EXPECT_EQ(r.status, e.status);
    EXPECT_EQ(error_of(r), (Json{{"code", e.code}, {"message", "why"}}));
    bool retry_after = false;
    for (const auto& [k, v] : r.headers) retry_after |= k == "Retry-After";
    EXPECT_EQ(retry_after, e.status == 503) << "a 503 tells the caller when to come back";
  }

  // A batch answers 200 with one {status, body} per workflow, in order, failures included.
  Plan batch = one("POST", {"v1", "workflows", "batch"},
                   R"({"workflows":[{"pool":"a.p","name":"x"},{"pool":"a.p","name":"y"},{"pool":"b.p","name":"z"}]})");
  auto b = respond(batch, {{true, Json{{"id", "wf_1"}, {"existing", false}}, "", ""},
                           {true, Json{{"id", "wf_2"}, {"existing", true}}, "", ""},
                           {false, {}, "permission_denied", "not your pool"}});
  EXPECT_EQ(b.status, 200);
  auto results = Json::parse(b.body)["results"];
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0]["status"], 201);
  EXPECT_EQ(results[1]["status"], 200);
  EXPECT_EQ(results[2], (Json{{"status", 403}, {"body", {{"error", {{"code", "permission_denied"},
                                                                     {"message", "not your pool"}}}}}}));

  // A full page carries the cursor of the next one; a short page ends the listing.
  Plan list = plan(request("GET", {"v1", "pools", "a.p", "workflows"}, "", {{"limit", "2"}}), counter_ids());
  Json two = Json::array({Json{{"id", "a"}}, Json{{"id", "b"}}});
  auto full = Json::parse(respond(list, {{true, Json{{"workflows", two}}, "", ""}}).body);
  EXPECT_EQ(full["next"], "b");
  auto last = Json::parse(respond(list, {{true, Json{{"workflows", Json::array({two[0]})}}, "", ""}}).body);
  EXPECT_FALSE(last.contains("next"));
  EXPECT_EQ(last["workflows"].size(), 1u);

  // Outcomes that do not match the plan are the gateway's bug, said as such, never a crash; results of a shape
  // the gateway does not know (a kv of another version) neither.
  EXPECT_EQ(respond(dispatch, {}).status, 500);
  EXPECT_EQ(respond(dispatch, {{true, Json::array({1}), "", ""}}).status, 201);
  EXPECT_EQ(respond(list, {{true, Json(nullptr), "", ""}}).status, 502);
  EXPECT_EQ(respond(list, {{true, Json{{"workflows", Json::array({7})}}, "", ""}}).status, 200);
  EXPECT_EQ(respond(batch, {{true, Json("odd"), "", ""}, {true, Json(), "", ""}, {false, {}, "internal", "x"}}).status,
            200);
}

TEST(GatewayRoutes, BearerToken) {
  auto with = [](std::string value) {
    http::Request r;
    r.headers["authorization"] = std::move(value);
    return bearer_token(r);
  };
  EXPECT_EQ(with("Bearer abc"), "abc");
  EXPECT_EQ(with("bearer  abc "), "abc");
  EXPECT_EQ(with("Basic abc"), std::nullopt);
  EXPECT_EQ(with("Bearer "), std::nullopt);
  EXPECT_EQ(with("Bearer"), std::nullopt);
  EXPECT_EQ(bearer_token(http::Request{}), std::nullopt);
}

}  // namespace
}  // namespace gasoline::gateway
