// Parsing of the app API's requests (worker/api_parse.h): durations, the long-poll query, step results of every
// kind with their errors, batches, dispatch, signals and cancel. Table-driven where the shape repeats.
#include "worker/api_parse.h"
#include "worker/config.h"

#include <gtest/gtest.h>

namespace gasoline::worker::api {
namespace {

using namespace std::chrono_literals;


// The error a call throws, as "status code: message"; "ok" when it does not throw.
template <typename F>
std::string error_of(F f) {
  try {
    f();
    return "ok";
  } catch (const ApiError& e) {
    return std::to_string(e.status) + " " + e.code + ": " + e.what();
  }
}

TEST(ParseDuration, Table) {
  struct Case {
    std::string text;
    std::optional<int64_t> ms;
  };
  std::vector<Case> cases{{"30s", 30000}, {"500ms", 500}, {"2m", 120000}, {"1h", 3600000}, {"1.5s", 1500},
                          {"0s", 0},      {"0", 0},       {"45", 45000},  {"", {}},        {"-1s", {}},
                          {"s", {}},      {"10x", {}},    {"1..2s", {}},  {".5s", {}},     {"5.s", {}},
                          {"99999999999h", {}}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    auto d = parse_duration(c.text);
    ASSERT_EQ(d.has_value(), c.ms.has_value());
    if (d) {
      EXPECT_EQ(d->count(), *c.ms);
    }
  }
}

TEST(ParseTasksQuery, DefaultsClampAndErrors) {
  auto q = parse_tasks_query({}, 32);
  EXPECT_EQ(q.max, 1u);
  EXPECT_EQ(q.wait, 30s);
  q = parse_tasks_query({{"max", "10"}, {"wait", "250ms"}}, 32);
  EXPECT_EQ(q.max, 10u);
  EXPECT_EQ(q.wait, 250ms);
  q = parse_tasks_query({{"max", "500"}}, 8);
  EXPECT_EQ(q.max, 8u) << "max is clamped to the concurrency";
  q = parse_tasks_query({{"wait", "0s"}, {"unrelated", "x"}}, 8);
  EXPECT_EQ(q.wait, 0ms);

  struct Case {
    std::map<std::string, std::string> query;
    std::string contains;
  };
  std::vector<Case> bad{{{{"max", "0"}}, "must be 1..1000"},
                        {{{"max", "1001"}}, "must be 1..1000"},
                        {{{"max", "-3"}}, "not a positive integer"},
                        {{{"max", "ten"}}, "not a positive integer"},
                        {{{"max", ""}}, "not a positive integer"},
                        {{{"wait", "forever"}}, "not a duration"},
                        {{{"wait", "301s"}}, "at most 300s"}};
  for (const auto& c : bad) {
    auto e = error_of([&] { parse_tasks_query(c.query, 32); });
    EXPECT_NE(e.find("400 bad_request"), std::string::npos) << e;
    EXPECT_NE(e.find(c.contains), std::string::npos) << e;
  }
}

TEST(ParseBody, JsonAndTokens) {
  EXPECT_NE(error_of([] { parse_json_body(""); }).find("400 bad_json"), std::string::npos);
  EXPECT_NE(error_of([] { parse_json_body("{\"a\": "); }).find("not valid JSON"), std::string::npos);
  EXPECT_EQ(parse_json_body("{\"a\": 1}")["a"], 1);
  auto t = parse_token("4096.wf_abc");
  EXPECT_EQ(t.lease, 4096u);
  EXPECT_EQ(t.workflow_id, "wf_abc");
  EXPECT_EQ(t.text(), "4096.wf_abc");
  t = parse_token("18446744073709551615.a.b/c:d");
  EXPECT_EQ(t.lease, UINT64_MAX);
  EXPECT_EQ(t.workflow_id, "a.b/c:d") << "the first dot splits; ids may hold dots";
  EXPECT_EQ(make_token(7, "x.y").text(), "7.x.y");
  for (std::string bad : {"0.wf", "", "12", "12.", ".wf", "-1.wf", "12a.wf", "1e3.wf", "18446744073709551616.wf",
                          "123456789012345678901.wf"})
    EXPECT_NE(error_of([&] { parse_token(bad); }).find("400"), std::string::npos) << bad;
}

TEST(ParseResult, EveryKind) {
  struct Case {
    std::string body;
    nlohmann::json step;
  };
  std::vector<Case> cases{
      {R"({"complete": {"output": {"x": 1}}})", {{"kind", "complete"}, {"output", {{"x", 1}}}}},
      {R"({"complete": {}})", {{"kind", "complete"}, {"output", nullptr}}},
      {R"({"sleep": {"until": 1700000005000, "state": {"s": 1}}})",
       {{"kind", "sleep"}, {"until", 1700000005000}, {"state", {{"s", 1}}}}},
      {R"({"sleep": {"for_ms": 250}})", {{"kind", "sleep"}, {"for_ms", 250}}},
      {R"({"wait": {"signals": ["payment"], "timeout_ms": 1000, "state": 7}})",
       {{"kind", "wait"}, {"signals", {"payment"}}, {"timeout_ms", 1000}, {"state", 7}}},
      {R"({"wait": {"signals": ["a", "b"]}})", {{"kind", "wait"}, {"signals", {"a", "b"}}}},
      {R"({"wait": {"until": 1700000009000}})",
       {{"kind", "wait"}, {"signals", nlohmann::json::array()}, {"until", 1700000009000}}},
      {R"({"retry": {"error": "boom", "backoff_base_ms": 50, "backoff_max_ms": 400, "state": {"k": 2}}})",
       {{"kind", "retry"}, {"error", "boom"}, {"backoff_base_ms", 50}, {"backoff_max_ms", 400}, {"state", {{"k", 2}}}}},
      {R"({"retry": {"error": "boom"}})", {{"kind", "retry"}, {"error", "boom"}}},
      {R"({"fail": {"error": "no"}})", {{"kind", "fail"}, {"error", "no"}}},
      {R"({"continue": {"state": {"stage": 2}}})", {{"kind", "continue"}, {"state", {{"stage", 2}}}}},
      {R"({"continue": {}})", {{"kind", "continue"}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    auto r = parse_result(nlohmann::json::parse(c.body));
    EXPECT_EQ(r.step, c.step);
    EXPECT_TRUE(r.children.empty());
    EXPECT_TRUE(r.signals.empty());
    EXPECT_FALSE(r.consumed_signal_seq);
  }
}

TEST(ParseResult, ChildrenSignalsAndEcho) {
  auto r = parse_result(nlohmann::json::parse(R"({
      "wait": {"signals": ["child.completed"]},
      "children": [{"name": "ship", "input": {"o": 1}, "notify_parent": true, "id": "o1.ship"},
                   {"name": "audit", "delay_ms": 500, "tags": {"t": "x"}, "idempotency_key": "k1", "max_attempts": 3}],
      "signals": [{"workflow_id": "wf_other", "name": "poke", "body": [1], "signal_id": "s1"}],
      "consumed_signal_seq": 4, "workflow_id": "wf_1", "worker": "pod-a-123"})"));
  ASSERT_EQ(r.children.size(), 2u);
  EXPECT_EQ(r.children[0],
            (nlohmann::json{{"name", "ship"}, {"input", {{"o", 1}}}, {"notify_parent", true}, {"id", "o1.ship"}}));
  EXPECT_EQ(r.children[1]["delay_ms"], 500) << "durations travel as durations";
  EXPECT_FALSE(r.children[1].contains("run_at"));
  EXPECT_EQ(r.children[1]["tags"], (nlohmann::json{{"t", "x"}}));
  EXPECT_EQ(r.children[1]["idempotency_key"], "k1");
  EXPECT_EQ(r.children[1]["max_attempts"], 3);
  EXPECT_FALSE(r.children[1].contains("pool")) << "children default to the parent's pool in the kv";
  ASSERT_EQ(r.signals.size(), 1u);
  EXPECT_EQ(r.signals[0],
            (nlohmann::json{{"workflow_id", "wf_other"}, {"name", "poke"}, {"body", {1}}, {"signal_id", "s1"}}));
  EXPECT_EQ(r.consumed_signal_seq, 4u);
  EXPECT_EQ(r.workflow_id, "wf_1");
  EXPECT_EQ(r.worker, "pod-a-123");
}

TEST(ParseResult, ClearErrors) {
  struct Case {
    std::string body;
    std::string contains;
  };
  std::vector<Case> cases{
      {R"([])", "must be a JSON object"},
      {R"({})", "exactly one of complete, sleep, wait, retry, fail, continue (none given)"},
      {R"({"complete": {}, "fail": {"error": "x"}})", "(got complete, fail)"},
      {R"({"complet": {}})", "unknown field 'complet'"},
      {R"({"complete": 1})", "'complete' must be an object"},
      {R"({"complete": {"outptu": 1}})", "result.complete: unknown field 'outptu'"},
      {R"({"sleep": {}})", "exactly one of 'until' (unix ms) or 'for_ms'"},
      {R"({"sleep": {"until": 5, "for_ms": 5}})", "exactly one of 'until'"},
      {R"({"sleep": {"for_ms": -5}})", "'for_ms' must be at least 0"},
      {R"({"sleep": {"until": "soon"}})", "'until' must be an integer"},
      {R"({"wait": {}})", "needs 'signals', a deadline"},
      {R"({"wait": {"signals": "payment"}})", "'signals' must be an array"},
      {R"({"wait": {"signals": [""]}})", "non-empty strings"},
      {R"({"wait": {"signals": ["a"], "until": 5, "timeout_ms": 5}})", "not both"},
      {R"({"retry": {}})", "result.retry: missing 'error'"},
      {R"({"retry": {"error": ""}})", "'error' must not be empty"},
      {R"({"retry": {"error": "x", "backoff_base_ms": 0}})", "'backoff_base_ms' must be at least 1"},
      {R"({"fail": {"error": 3}})", "'error' must be a string"},
      {R"({"fail": {"error": "x", "state": {}}})", "unknown field 'state'"},
      {R"({"continue": {"state": 1, "until": 3}})", "unknown field 'until'"},
      {R"({"complete": {}, "children": {}})", "'children' must be an array"},
      {R"({"complete": {}, "children": [{"input": 1}]})", "result.children[0]: missing 'name'"},
      {R"({"complete": {}, "children": [{"name": "a", "notify_parent": "yes"}]})",
       "'notify_parent' must be true or false"},
      {R"({"complete": {}, "children": [{"name": "a", "run_at": 1, "delay_ms": 1}]})", "not both"},
      {R"({"complete": {}, "children": [{"name": "a", "tags": [1]}]})", "'tags' must be an object"},
      {R"({"complete": {}, "signals": [{"name": "x"}]})", "result.signals[0]: missing 'workflow_id'"},
      {R"({"complete": {}, "signals": [{"workflow_id": "w", "name": "x", "extra": 1}]})", "unknown field 'extra'"},
      {R"({"complete": {}, "consumed_signal_seq": -1})", "non-negative integer"},
      {R"({"complete": {}, "workflow_id": 7})", "'workflow_id' must be a string"},
  };
  for (const auto& c : cases) {
    auto e = error_of([&] { parse_result(nlohmann::json::parse(c.body)); });
    EXPECT_EQ(e.rfind("400 bad_request", 0), 0u) << c.body << " → " << e;
    EXPECT_NE(e.find(c.contains), std::string::npos) << c.body << " → " << e;
  }
}

TEST(ParseBatch, ItemsFailIndividually) {
  auto items = parse_batch(nlohmann::json::parse(R"({"results": [
      {"token": "12.wf_a", "complete": {}},
      {"token": "13.wf_b", "sleep": {"for_ms": 10}},
      {"complete": {}},
      {"token": "14.wf_c", "bogus": {}},
      {"token": 15, "complete": {}}]})"));
  ASSERT_EQ(items.size(), 5u);
  EXPECT_EQ(items[0].token.lease, 12u);
  EXPECT_EQ(items[0].token.workflow_id, "wf_a");
  ASSERT_TRUE(items[0].result);
  EXPECT_EQ(items[0].result->step["kind"], "complete");
  EXPECT_EQ(items[1].token.text(), "13.wf_b");
  EXPECT_EQ(items[1].result->step["for_ms"], 10);
  ASSERT_TRUE(items[2].error);
  EXPECT_NE(std::string(items[2].error->what()).find("missing 'token'"), std::string::npos);
  ASSERT_TRUE(items[3].error);
  EXPECT_EQ(items[3].raw_token, "14.wf_c");
  EXPECT_NE(std::string(items[3].error->what()).find("unknown field 'bogus'"), std::string::npos);
  ASSERT_TRUE(items[4].error);

  for (std::string bad : {R"([])", R"({"results": {}})", R"({"results": []})", R"({"result": []})"})
    EXPECT_NE(error_of([&] { parse_batch(nlohmann::json::parse(bad)); }).find("400"), std::string::npos) << bad;
  nlohmann::json big{{"results", nlohmann::json::array()}};
  for (size_t i = 0; i <= kMaxBatch; ++i)
    big["results"].push_back({{"token", std::to_string(i + 1) + ".wf"}, {"complete", nlohmann::json::object()}});
  EXPECT_NE(error_of([&] { parse_batch(big); }).find("at most 1000"), std::string::npos);
}

TEST(ParseDispatch, FieldsDefaultsAndErrors) {
  auto a = parse_dispatch(nlohmann::json::parse(R"({"name": "order", "input": {"sku": "x"}, "delay_ms": 100})"),
                          "shop");
  EXPECT_EQ(a,
            (nlohmann::json{{"name", "order"}, {"input", {{"sku", "x"}}}, {"delay_ms", 100}, {"pool", "shop"}}));
  auto b = parse_dispatch(
      nlohmann::json::parse(R"({"name": "n", "pool": "other", "id": "wf_x", "idempotency_key": "k"})"), "shop");
  EXPECT_EQ(b["pool"], "other");
  EXPECT_EQ(b["id"], "wf_x");
  EXPECT_EQ(b["idempotency_key"], "k");
  for (std::string bad : {R"("order")", R"({})", R"({"name": ""})", R"({"name": 1})", R"({"name": "a", "colour": 1})",
                          R"({"name": "a", "max_attempts": 0})", R"({"name": "a", "run_at": -1})"})
    EXPECT_NE(error_of([&] { parse_dispatch(nlohmann::json::parse(bad), "shop"); }).find("400"),
              std::string::npos)
        << bad;
}

TEST(ParseSignalAndCancel, Shapes) {
  EXPECT_EQ(parse_signal(nlohmann::json::parse(R"({"name": "payment", "body": {"amount": 3}})"), "wf_1"),
            (nlohmann::json{{"workflow_id", "wf_1"}, {"name", "payment"}, {"body", {{"amount", 3}}}}));
  EXPECT_EQ(parse_signal(nlohmann::json::parse(R"({"name": "p", "signal_id": "s-1"})"), "wf_1")["signal_id"], "s-1");
  for (std::string bad : {R"({})", R"({"name": ""})", R"({"name": "p", "to": "x"})", R"([1])"})
    EXPECT_NE(error_of([&] { parse_signal(nlohmann::json::parse(bad), "wf"); }).find("400"), std::string::npos) << bad;
  EXPECT_EQ(parse_cancel("", "wf_1"), (nlohmann::json{{"workflow_id", "wf_1"}}));
  EXPECT_EQ(parse_cancel(R"({"reason": "customer"})", "wf_1")["reason"], "customer");
  EXPECT_NE(error_of([] { parse_cancel("{", "wf"); }).find("400 bad_json"), std::string::npos);
  EXPECT_NE(error_of([] { parse_cancel(R"({"why": 1})", "wf"); }).find("unknown field 'why'"), std::string::npos);
}

TEST(KvErrors, MapToHttp) {
  EXPECT_EQ(http_status_for_kv("bad_request"), 400);
  EXPECT_EQ(http_status_for_kv("not_found"), 404);
  EXPECT_EQ(http_status_for_kv("conflict"), 409);
  EXPECT_EQ(http_status_for_kv("failed_precondition"), 409);
  EXPECT_EQ(http_status_for_kv("too_large"), 413);
  EXPECT_EQ(http_status_for_kv("unavailable"), 503);
  EXPECT_EQ(http_status_for_kv("not_leader"), 503);
  EXPECT_EQ(http_status_for_kv("unauthenticated"), 502);
  EXPECT_EQ(http_status_for_kv("internal"), 502);
}

TEST(WorkerId, FromThePodOrTheHost) {
  auto a = make_worker_id(
      {{"POD_NAME", "shop-7d9f-abcde"}, {"POD_UID", "1b4e28ba-2fa1-11d2-883f-0016d3cca427"}}, "h", "n1");
  EXPECT_EQ(a, "shop-7d9f-abcde-1b4e28ba-n1");
  EXPECT_EQ(make_worker_id({}, "my host/x", "n2"), "my-host-x-n2");
  EXPECT_EQ(make_worker_id({{"POD_NAME", ""}}, "", "n3"), "worker-n3");
  EXPECT_NE(random_nonce(), random_nonce()) << "an id is never reused across restarts";
  std::string long_name(400, 'a');
  EXPECT_LE(make_worker_id({{"POD_NAME", long_name}}, "h", random_nonce()).size(), 253u);
}

}  // namespace
}  // namespace gasoline::worker::api

namespace gasoline::worker::api {
namespace {

// Only the kubelet's preStop hook may drain: from the node (status.hostIP) or the pod's own loopback.
TEST(DrainCallerAllowed, LoopbackTheNodeAndListedAddressesOnly) {
  const std::string node = "10.0.0.5";
  const std::vector<std::string> none;
  for (const char* ok : {"127.0.0.1", "::1", "::ffff:127.0.0.1", "10.0.0.5", "::ffff:10.0.0.5"})
    EXPECT_TRUE(drain_caller_allowed(ok, node, none)) << ok;
  for (const char* refused : {"10.0.0.6", "10.244.1.7", "127.0.0.2", "", "::ffff:10.0.0.6", "10.0.0.55", "0.0.0.0"})
    EXPECT_FALSE(drain_caller_allowed(refused, node, none)) << refused;
  // Without a node IP only loopback is allowed; listed addresses (a CNI bridge) are allowed too.
  EXPECT_FALSE(drain_caller_allowed("10.0.0.5", "", none));
  EXPECT_TRUE(drain_caller_allowed("10.244.0.1", node, {"10.244.0.1"}));
  EXPECT_TRUE(drain_caller_allowed("::ffff:10.244.0.1", "", {"10.244.0.1"}));
}

}  // namespace
}  // namespace gasoline::worker::api
