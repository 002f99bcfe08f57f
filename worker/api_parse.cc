#include "worker/api_parse.h"

#include "worker/config.h"

#include <algorithm>
#include <set>

namespace gasoline::worker::api {
namespace {

[[noreturn]] void bad(const std::string& message) { throw ApiError(400, "bad_request", message); }

void only_keys(const Json& obj, const std::set<std::string>& allowed, const std::string& where) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (!allowed.count(it.key())) {
      std::string list;
      for (const auto& k : allowed) list += (list.empty() ? "" : ", ") + k;
      bad(where + ": unknown field '" + it.key() + "' (allowed: " + list + ")");
    }
  }
}

const Json* field(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string string_field(const Json& obj, const char* key, const std::string& where, bool required) {
  auto* f = field(obj, key);
  if (!f) {
    if (required) bad(where + ": missing '" + key + "'");
    return "";
  }
  if (!f->is_string()) bad(where + ": '" + key + "' must be a string");
  auto s = f->get<std::string>();
  if (required && s.empty()) bad(where + ": '" + key + "' must not be empty");
  return s;
}

std::optional<int64_t> int_field(const Json& obj, const char* key, const std::string& where, int64_t min) {
  auto* f = field(obj, key);
  if (!f) return std::nullopt;
  if (!f->is_number_integer()) bad(where + ": '" + key + "' must be an integer");
  int64_t v = f->is_number_unsigned() && f->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
                  ? INT64_MAX
                  : f->get<int64_t>();
  if (v < min) bad(where + ": '" + key + "' must be at least " + std::to_string(min));
  return v;
}

const Json& object_of(const Json& body, const char* key, const std::string& where) {
  const Json& v = body.at(key);
  if (!v.is_object()) bad(where + ": '" + key + "' must be an object (for example {\"" + key + "\": {}})");
  return v;
}

Json dispatch_spec(const Json& c, const std::string& where, const std::string& default_pool) {
  if (!c.is_object()) bad(where + " must be an object");
  only_keys(c, {"name", "input", "id", "tags", "idempotency_key", "notify_parent", "max_attempts", "run_at",
                "delay_ms", "pool"},
            where);
  Json spec{{"name", string_field(c, "name", where, true)}};
  if (auto* in = field(c, "input")) spec["input"] = *in;
  if (auto id = string_field(c, "id", where, false); !id.empty()) spec["id"] = id;
  if (auto* tags = field(c, "tags")) {
    if (!tags->is_object()) bad(where + ": 'tags' must be an object");
    spec["tags"] = *tags;
  }
  if (auto key = string_field(c, "idempotency_key", where, false); !key.empty()) spec["idempotency_key"] = key;
  if (auto* n = field(c, "notify_parent")) {
    if (!n->is_boolean()) bad(where + ": 'notify_parent' must be true or false");
    spec["notify_parent"] = n->get<bool>();
  }
  if (auto m = int_field(c, "max_attempts", where, 1)) {
    if (*m > 1'000'000) bad(where + ": 'max_attempts' is too large");
    spec["max_attempts"] = *m;
  }
  auto run_at = int_field(c, "run_at", where, 0);
  auto delay = int_field(c, "delay_ms", where, 0);
  if (run_at && delay) bad(where + ": give 'run_at' or 'delay_ms', not both");
  if (run_at) spec["run_at"] = *run_at;
  // Relative times travel as durations: the kv adds them to its leader's clock, so this pod's clock cannot skew
  // them.
  if (delay) spec["delay_ms"] = *delay;
  auto pool = string_field(c, "pool", where, false);
  if (!pool.empty()) {
    spec["pool"] = pool;
  } else if (!default_pool.empty()) {
    spec["pool"] = default_pool;
  }
  return spec;
}

Json signal_spec(const Json& s, const std::string& where) {
  if (!s.is_object()) bad(where + " must be an object");
  only_keys(s, {"workflow_id", "name", "body", "signal_id"}, where);
  Json spec{{"workflow_id", string_field(s, "workflow_id", where, true)},
            {"name", string_field(s, "name", where, true)}};
  if (auto* b = field(s, "body")) spec["body"] = *b;
  if (auto id = string_field(s, "signal_id", where, false); !id.empty()) spec["signal_id"] = id;
  return spec;
}

Json optional_state(const Json& obj, Json step) {
  if (obj.contains("state")) step["state"] = obj.at("state");
  return step;
}

}  // namespace

Json error_json(const std::string& code, const std::string& message) {
  return Json{{"error", {{"code", code}, {"message", message}}}};
}

int http_status_for_kv(const std::string& kv_code) {
  if (kv_code == "bad_request") return 400;
  if (kv_code == "not_found") return 404;
  if (kv_code == "conflict" || kv_code == "failed_precondition") return 409;
  if (kv_code == "too_large") return 413;
  if (kv_code == "permission_denied") return 403;  // the sidecar's credential does not cover this pool
  if (kv_code == "unavailable" || kv_code == "not_leader") return 503;
  return 502;  // unauthenticated, protocol, internal: the sidecar or the kv is misconfigured, not the app
}

TasksQuery parse_tasks_query(const std::map<std::string, std::string>& query, size_t concurrency) {
  TasksQuery q;
  if (auto it = query.find("max"); it != query.end()) {
    const auto& s = it->second;
    if (s.empty() || s.size() > 9 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
      bad("query 'max': '" + s + "' is not a positive integer");
    auto n = std::stoul(s);
    if (n < 1 || n > kMaxPoll) bad("query 'max': must be 1.." + std::to_string(kMaxPoll) + ", got " + s);
    q.max = n;
  }
  q.max = std::min(q.max, std::max<size_t>(concurrency, 1));
  if (auto it = query.find("wait"); it != query.end()) {
    auto d = parse_duration(it->second);
    if (!d) bad("query 'wait': '" + it->second + "' is not a duration (examples: 0s, 500ms, 30s)");
    if (*d > kMaxWait) bad("query 'wait': at most 300s, got " + it->second);
    q.wait = *d;
  }
  return q;
}

Json parse_json_body(const std::string& body) {
  if (body.empty()) throw ApiError(400, "bad_json", "the request needs a JSON body");
  try {
    return Json::parse(body);
  } catch (const Json::parse_error& e) {
    throw ApiError(400, "bad_json", std::string("the body is not valid JSON: ") + e.what());
  }
}

TaskToken make_token(uint64_t lease, const std::string& workflow_id) { return TaskToken{lease, workflow_id}; }

TaskToken parse_token(const std::string& text) {
  auto dot = text.find('.');
  std::string lease = text.substr(0, dot);
  if (dot == std::string::npos || dot + 1 >= text.size() || lease.empty() || lease.size() > 20 ||
      !std::all_of(lease.begin(), lease.end(), [](char c) { return c >= '0' && c <= '9'; }))
    bad("token '" + text + "' is not a task token (\"<lease>.<workflow id>\", as the task carried it)");
  TaskToken t;
  try {
    t.lease = std::stoull(lease);
  } catch (const std::out_of_range&) {
    bad("token '" + text + "': the lease is out of range");
  }
  if (t.lease == 0) bad("token '" + text + "': the lease must not be 0");
  t.workflow_id = text.substr(dot + 1);
  return t;
}

ParsedResult parse_result(const Json& body) {
  if (!body.is_object()) bad("a result must be a JSON object with one of complete, sleep, wait, retry, fail, continue");
  only_keys(body, {"complete", "sleep", "wait", "retry", "fail", "continue", "children", "signals",
                   "consumed_signal_seq", "workflow_id", "worker", "token"},
            "result");
  static const char* kKinds[] = {"complete", "sleep", "wait", "retry", "fail", "continue"};
  std::vector<std::string> present;
  for (const char* k : kKinds)
    if (body.contains(k)) present.emplace_back(k);
  if (present.size() != 1) {
    std::string got;
    for (const auto& p : present) got += (got.empty() ? "" : ", ") + p;
    bad("a result needs exactly one of complete, sleep, wait, retry, fail, continue" +
        (present.empty() ? std::string(" (none given)") : " (got " + got + ")"));
  }
  const std::string kind = present.front();
  const std::string where = "result." + kind;
  const Json& v = object_of(body, kind.c_str(), "result");
  ParsedResult out;
  if (kind == "complete") {
    only_keys(v, {"output"}, where);
    out.step = Json{{"kind", "complete"}, {"output", v.contains("output") ? v.at("output") : Json()}};
  } else if (kind == "sleep") {
    only_keys(v, {"until", "for_ms", "state"}, where);
    auto until = int_field(v, "until", where, 1);
    auto for_ms = int_field(v, "for_ms", where, 0);
    if (until.has_value() == for_ms.has_value()) bad(where + ": give exactly one of 'until' (unix ms) or 'for_ms'");
    out.step = optional_state(v, until ? Json{{"kind", "sleep"}, {"until", *until}}
                                       : Json{{"kind", "sleep"}, {"for_ms", *for_ms}});
  } else if (kind == "wait") {
    only_keys(v, {"signals", "until", "timeout_ms", "state"}, where);
    Json names = Json::array();
    if (auto* s = field(v, "signals")) {
      if (!s->is_array()) bad(where + ": 'signals' must be an array of signal names");
      for (const auto& n : *s) {
        if (!n.is_string() || n.get<std::string>().empty()) bad(where + ": 'signals' must hold non-empty strings");
        names.push_back(n);
      }
    }
    auto until = int_field(v, "until", where, 1);
    auto timeout = int_field(v, "timeout_ms", where, 0);
    if (until && timeout) bad(where + ": give 'until' or 'timeout_ms', not both");
    if (names.empty() && !until && !timeout)
      bad(where + ": needs 'signals', a deadline ('until'/'timeout_ms'), or both");
    Json step{{"kind", "wait"}, {"signals", names}};
    if (until) step["until"] = *until;
    if (timeout) step["timeout_ms"] = *timeout;
    out.step = optional_state(v, std::move(step));
  } else if (kind == "retry") {
    only_keys(v, {"error", "state", "backoff_base_ms", "backoff_max_ms"}, where);
    Json step{{"kind", "retry"}, {"error", string_field(v, "error", where, true)}};
    if (auto b = int_field(v, "backoff_base_ms", where, 1)) step["backoff_base_ms"] = *b;
    if (auto m = int_field(v, "backoff_max_ms", where, 1)) step["backoff_max_ms"] = *m;
    out.step = optional_state(v, std::move(step));
  } else if (kind == "fail") {
    only_keys(v, {"error"}, where);
    out.step = Json{{"kind", "fail"}, {"error", string_field(v, "error", where, true)}};
  } else {
    only_keys(v, {"state"}, where);
    out.step = optional_state(v, Json{{"kind", "continue"}});
  }

  if (auto* c = field(body, "children")) {
    if (!c->is_array()) bad("result: 'children' must be an array");
    if (c->size() > kMaxChildren) bad("result: more than " + std::to_string(kMaxChildren) + " children");
    for (size_t i = 0; i < c->size(); ++i)
      out.children.push_back(dispatch_spec((*c)[i], "result.children[" + std::to_string(i) + "]", ""));
  }
  if (auto* s = field(body, "signals")) {
    if (!s->is_array()) bad("result: 'signals' must be an array");
    if (s->size() > kMaxSignals) bad("result: more than " + std::to_string(kMaxSignals) + " signals");
    for (size_t i = 0; i < s->size(); ++i)
      out.signals.push_back(signal_spec((*s)[i], "result.signals[" + std::to_string(i) + "]"));
  }
  if (auto* seq = field(body, "consumed_signal_seq")) {
    if (!seq->is_number_unsigned() && !(seq->is_number_integer() && seq->get<int64_t>() >= 0))
      bad("result: 'consumed_signal_seq' must be a non-negative integer");
    out.consumed_signal_seq = seq->get<uint64_t>();
  }
  out.workflow_id = string_field(body, "workflow_id", "result", false);
  out.worker = string_field(body, "worker", "result", false);
  return out;
}

std::vector<BatchItem> parse_batch(const Json& body) {
  if (!body.is_object() || !body.contains("results") || !body["results"].is_array())
    bad("a batch must be {\"results\": [{\"token\": \"...\", ...result...}, ...]}");
  const auto& items = body["results"];
  if (items.empty()) bad("a batch needs at least one result");
  if (items.size() > kMaxBatch) bad("a batch holds at most " + std::to_string(kMaxBatch) + " results");
  std::vector<BatchItem> out;
  out.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    BatchItem item;
    const auto& r = items[i];
    try {
      if (!r.is_object()) bad("results[" + std::to_string(i) + "] must be an object");
      auto* t = field(r, "token");
      if (!t) bad("results[" + std::to_string(i) + "]: missing 'token'");
      if (!t->is_string()) bad("results[" + std::to_string(i) + "]: 'token' must be the task's token string");
      item.raw_token = t->get<std::string>();
      item.token = parse_token(item.raw_token);
      item.result = parse_result(r);
    } catch (const ApiError& e) {
      item.error = e;
    }
    out.push_back(std::move(item));
  }
  return out;
}

Json parse_dispatch(const Json& body, const std::string& default_pool) {
  return dispatch_spec(body, "workflow", default_pool);
}

Json parse_signal(const Json& body, const std::string& workflow_id) {
  if (!body.is_object()) bad("a signal must be a JSON object: {\"name\": ..., \"body\": ...}");
  only_keys(body, {"name", "body", "signal_id"}, "signal");
  Json args{{"workflow_id", workflow_id}, {"name", string_field(body, "name", "signal", true)}};
  if (auto* b = field(body, "body")) args["body"] = *b;
  if (auto id = string_field(body, "signal_id", "signal", false); !id.empty()) args["signal_id"] = id;
  return args;
}

Json parse_cancel(const std::string& body, const std::string& workflow_id) {
  Json args{{"workflow_id", workflow_id}};
  if (body.empty()) return args;
  Json j = parse_json_body(body);
  if (!j.is_object()) bad("a cancel body must be a JSON object: {\"reason\": ...}");
  only_keys(j, {"reason"}, "cancel");
  if (auto reason = string_field(j, "reason", "cancel", false); !reason.empty()) args["reason"] = reason;
  return args;
}

namespace {
std::string unmapped(const std::string& ip) {
  const std::string mapped = "::ffff:";
  if (ip.size() > mapped.size() && ip.compare(0, mapped.size(), mapped) == 0 && ip.find('.') != std::string::npos)
    return ip.substr(mapped.size());
  return ip;
}
}  // namespace

bool drain_caller_allowed(const std::string& remote, const std::string& node_ip,
                          const std::vector<std::string>& also_allowed) {
  const std::string ip = unmapped(remote);
  if (ip.empty()) return false;
  if (ip == "127.0.0.1" || ip == "::1") return true;
  if (!node_ip.empty() && ip == unmapped(node_ip)) return true;
  for (const auto& a : also_allowed)
    if (ip == unmapped(a)) return true;
  return false;
}

}  // namespace gasoline::worker::api
