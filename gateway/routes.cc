#include "gateway/routes.h"
#include "kv/rpc/protocol.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>
#include <set>
#include <stdexcept>

namespace gasoline::gateway {
namespace {

// A 400 naming the field; thrown inside plan() only and turned into its answer there.
struct BadRequest : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

http::Response json_reply(int status, const Json& body) { return http::json_response(status, dump(body)); }

// A route that answers at once, without a kv call.
Plan answered(Route route, http::Response reply) {
  Plan p;
  p.route = route;
  p.reply = std::move(reply);
  return p;
}

Plan method_not_allowed(Route route, const std::string& allowed) {
  auto r = http::error_response(405, "method_not_allowed", "use " + allowed);
  r.headers.emplace_back("Allow", allowed);
  return answered(route, std::move(r));
}

Json parse_object(const std::string& body, bool empty_is_object) {
  if (body.empty() && empty_is_object) return Json::object();
  auto j = Json::parse(body, nullptr, false);
  if (j.is_discarded()) throw BadRequest("the body is not valid JSON");
  if (!j.is_object()) throw BadRequest("the body must be a JSON object");
  return j;
}

void only_fields(const Json& obj, std::initializer_list<const char*> allowed, const std::string& where) {
  for (const auto& [key, _] : obj.items()) {
    if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; })) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      throw BadRequest(where + "unknown field '" + key + "' (known: " + list + ")");
    }
  }
}

std::string string_field(const Json& obj, const char* key, bool required, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) throw BadRequest(where + "'" + key + "' is required");
    return "";
  }
  if (!it->is_string()) throw BadRequest(where + "'" + key + "' must be a string");
  if (required && it->get<std::string>().empty()) throw BadRequest(where + "'" + key + "' must not be empty");
  return it->get<std::string>();
}

void integer_field(const Json& obj, const char* key, int64_t max, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return;
  if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > max)
    throw BadRequest(where + "'" + key + "' must be an integer from 0 to " + std::to_string(max));
}

// The kv's dispatch arguments for one body; a fresh id when the client named none, so retries stay single.
Json dispatch_args(const Json& body, const NewId& new_id, const std::string& where) {
  if (!body.is_object()) throw BadRequest(where + "a workflow must be a JSON object");
  only_fields(body, {"pool", "name", "input", "id", "idempotency_key", "tags", "run_at", "delay_ms", "max_attempts"},
              where);
  Json args = Json::object();
  args["pool"] = string_field(body, "pool", true, where);
  args["name"] = string_field(body, "name", true, where);
  if (body.contains("input")) args["input"] = body["input"];
  auto id = string_field(body, "id", false, where);
  args["id"] = id.empty() ? new_id("wf_") : id;
  if (auto key = string_field(body, "idempotency_key", false, where); !key.empty()) args["idempotency_key"] = key;
  if (body.contains("tags") && !body["tags"].is_null()) {
    if (!body["tags"].is_object()) throw BadRequest(where + "'tags' must be an object");
    args["tags"] = body["tags"];
  }
  integer_field(body, "run_at", std::numeric_limits<int64_t>::max(), where);
  integer_field(body, "delay_ms", std::numeric_limits<int64_t>::max(), where);
  integer_field(body, "max_attempts", std::numeric_limits<uint32_t>::max(), where);
  for (const char* k : {"run_at", "delay_ms", "max_attempts"})
    if (body.contains(k) && !body[k].is_null()) args[k] = body[k];
  if (args.value("run_at", int64_t{0}) > 0 && args.value("delay_ms", int64_t{0}) > 0)
    throw BadRequest(where + "give 'run_at' or 'delay_ms', not both");
  return args;
}

size_t page_size(const std::map<std::string, std::string>& query) {
  auto it = query.find("limit");
  if (it == query.end()) return kDefaultPage;
  const auto& s = it->second;
  if (s.empty() || s.size() > 6 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    throw BadRequest("query 'limit': '" + s + "' is not a positive integer");
  auto n = std::stoul(s);
  if (n < 1 || n > kMaxPage) throw BadRequest("query 'limit': must be 1.." + std::to_string(kMaxPage) + ", got " + s);
  return n;
}

const std::set<std::string>& statuses() {
  static const std::set<std::string> s{"pending", "running", "sleeping", "waiting", "complete", "failed", "cancelled"};
  return s;
}

// nullopt: no route under /v1/workflows matches.
std::optional<Plan> plan_workflows(const http::Request& req, const NewId& new_id) {
  const auto& p = req.path;  // {"v1", "workflows", ...}
  Plan out;
  if (p.size() == 2) {
    out.route = Route::kDispatch;
    if (req.method != "POST") return method_not_allowed(out.route, "POST");
    out.calls.push_back({rpc::op::kDispatch, dispatch_args(parse_object(req.body, false), new_id, "")});
    return out;
  }
  if (p.size() == 3 && p[2] == "batch") {
    out.route = Route::kDispatchBatch;
    if (req.method != "POST") return method_not_allowed(out.route, "POST");
    auto body = parse_object(req.body, false);
    only_fields(body, {"workflows"}, "");
    auto it = body.find("workflows");
    if (it == body.end() || !it->is_array()) throw BadRequest("'workflows' must be a list of workflows to dispatch");
    if (it->empty() || it->size() > kMaxBatch)
      throw BadRequest("'workflows' must hold 1.." + std::to_string(kMaxBatch) + " workflows, got " +
                       std::to_string(it->size()));
    // Every item is checked before any is dispatched: a batch with a typo starts nothing.
    for (size_t i = 0; i < it->size(); ++i)
      out.calls.push_back({rpc::op::kDispatch, dispatch_args((*it)[i], new_id, "workflows[" + std::to_string(i) + "]: ")});
    return out;
  }
  const std::string& id = p[2];
  if (id.empty()) throw BadRequest("the workflow id in the path is empty");
  if (p.size() == 3) {
    out.route = Route::kGet;
    if (req.method != "GET") return method_not_allowed(out.route, "GET");
    out.calls.push_back({rpc::op::kGet, Json{{rpc::arg::kWorkflowId, id}}});
    return out;
  }
  if (p.size() == 4 && p[3] == "signals") {
    out.route = Route::kSignal;
    if (req.method != "POST") return method_not_allowed(out.route, "POST");
    auto body = parse_object(req.body, false);
    only_fields(body, {"name", "body", "signal_id"}, "");
    Json args{{rpc::arg::kWorkflowId, id}, {"name", string_field(body, "name", true, "")}};
    args["body"] = body.contains("body") ? body["body"] : Json();
    auto sid = string_field(body, "signal_id", false, "");
    args["signal_id"] = sid.empty() ? new_id("sig_") : sid;
    out.calls.push_back({rpc::op::kSignal, std::move(args)});
    return out;
  }
  if (p.size() == 4 && p[3] == "cancel") {
    out.route = Route::kCancel;
    if (req.method != "POST") return method_not_allowed(out.route, "POST");
    auto body = parse_object(req.body, true);
    only_fields(body, {"reason"}, "");
    Json args{{rpc::arg::kWorkflowId, id}};
    if (auto reason = string_field(body, "reason", false, ""); !reason.empty()) args["reason"] = reason;
    out.calls.push_back({rpc::op::kCancel, std::move(args)});
    return out;
  }
  return std::nullopt;
}

Plan plan_list(const http::Request& req) {
  Plan out;
  out.route = Route::kList;
  if (req.method != "GET") return method_not_allowed(out.route, "GET");
  const std::string& pool = req.path[2];
  if (pool.empty()) throw BadRequest("the pool in the path is empty");
  for (const auto& [key, _] : req.query)
    if (key != "status" && key != "limit" && key != "after")
      throw BadRequest("unknown query parameter '" + key + "' (known: status, limit, after)");
  Json args{{"pool", pool}};
  if (auto it = req.query.find("status"); it != req.query.end() && !it->second.empty()) {
    if (!statuses().count(it->second))
      throw BadRequest("query 'status': '" + it->second +
                       "' is not one of pending, running, sleeping, waiting, complete, failed, cancelled");
    args["status"] = it->second;
  }
  out.list_limit = page_size(req.query);
  args["limit"] = out.list_limit;
  if (auto it = req.query.find("after"); it != req.query.end() && !it->second.empty()) args["after"] = it->second;
  out.calls.push_back({rpc::op::kList, std::move(args)});
  return out;
}

http::Response error_reply(const Outcome& o) {
  auto r = http::error_response(status_for_kv(o.code), o.code, o.message);
  if (r.status == 503) r.headers.emplace_back("Retry-After", "1");
  return r;
}

// Whether a dispatch found its workflow existing. A result that is not an object is the kv's mistake, answered as
// created rather than thrown on a client's I/O thread.
bool existing(const Json& result) { return result.is_object() && result.value("existing", false); }

// One outcome as an item of a batch answer: {status, body}.
Json batch_item(const Outcome& o) {
  if (o.ok) return Json{{"status", existing(o.result) ? 200 : 201}, {"body", o.result}};
  return Json{{"status", status_for_kv(o.code)}, {"body", Json{{"error", {{"code", o.code}, {"message", o.message}}}}}};
}

}  // namespace

const char* route_name(Route r) {
  switch (r) {
    case Route::kDispatch: return "dispatch";
    case Route::kDispatchBatch: return "dispatch_batch";
    case Route::kGet: return "get";
    case Route::kList: return "list";
    case Route::kSignal: return "signal";
    case Route::kCancel: return "cancel";
    case Route::kHealthz: return "healthz";
    case Route::kReadyz: return "readyz";
    case Route::kMetrics: return "metrics";
    case Route::kOther: break;
  }
  return "other";
}

int status_for_kv(const std::string& code) {
  if (code == "bad_request") return 400;
  if (code == "unauthenticated") return 401;  // the caller's token
  if (code == "permission_denied") return 403;
  if (code == "not_found") return 404;
  if (code == "conflict" || code == "failed_precondition") return 409;
  if (code == "too_large") return 413;
  if (code == "unavailable" || code == "not_leader") return 503;
  if (code == "internal") return 500;
  return 502;  // protocol and anything unknown: the kv answered in a way the gateway does not understand
}

std::optional<std::string> bearer_token(const http::Request& req) {
  auto it = req.headers.find("authorization");
  if (it == req.headers.end()) return std::nullopt;
  const std::string& v = it->second;
  constexpr std::string_view kScheme = "bearer ";
  if (v.size() <= kScheme.size()) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(v[i])) != kScheme[i]) return std::nullopt;
  auto token = v.substr(kScheme.size());
  token.erase(0, token.find_first_not_of(' '));
  while (!token.empty() && token.back() == ' ') token.pop_back();
  if (token.empty()) return std::nullopt;
  return token;
}

Plan plan(const http::Request& req, const NewId& new_id) {
  const auto& p = req.path;
  try {
    if (p.size() == 1 && p[0] == "healthz") return Plan{Route::kHealthz, std::nullopt, {}, 0};
    if (p.size() == 1 && p[0] == "readyz") return Plan{Route::kReadyz, std::nullopt, {}, 0};
    if (p.size() == 1 && p[0] == "metrics") return Plan{Route::kMetrics, std::nullopt, {}, 0};
    if (p.size() >= 2 && p[0] == "v1" && p[1] == "workflows")
      if (auto planned = plan_workflows(req, new_id)) return *planned;
    if (p.size() == 4 && p[0] == "v1" && p[1] == "pools" && p[3] == "workflows") return plan_list(req);
  } catch (const BadRequest& e) {
    return answered(Route::kOther, http::error_response(400, "bad_request", e.what()));
  }
  std::string path;
  for (const auto& seg : p) path += "/" + seg;
  return answered(Route::kOther, http::error_response(404, "not_found",
                                                      "no such route: " + req.method + " " +
                                                          (path.empty() ? "/" : path) +
                                                          " (see docs/openapi/gateway.yaml)"));
}

http::Response respond(const Plan& plan, const std::vector<Outcome>& outcomes) {
  if (outcomes.size() != plan.calls.size() || outcomes.empty())
    return http::error_response(500, "internal", "the gateway lost track of a call's outcome");
  if (plan.route == Route::kDispatchBatch) {
    Json results = Json::array();
    for (const auto& o : outcomes) results.push_back(batch_item(o));
    return json_reply(200, Json{{"results", std::move(results)}});
  }
  const auto& o = outcomes.front();
  if (!o.ok) return error_reply(o);
  switch (plan.route) {
    case Route::kDispatch: return json_reply(existing(o.result) ? 200 : 201, o.result);
    case Route::kList: {
      if (!o.result.is_object() || !o.result.contains("workflows") || !o.result["workflows"].is_array())
        return http::error_response(502, "protocol", "the kv's list result has no list of workflows");
      Json body{{"workflows", o.result["workflows"]}};
      // A full page may have a next one; its cursor is the last id (the kv continues after it).
      const auto& w = body["workflows"];
      if (plan.list_limit > 0 && w.size() >= plan.list_limit && w.back().is_object() && w.back().contains("id"))
        body["next"] = w.back()["id"];
      return json_reply(200, body);
    }
    default: return json_reply(200, o.result);
  }
}

}  // namespace gasoline::gateway
