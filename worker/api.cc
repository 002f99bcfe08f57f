#include "worker/api.h"

#include "common/clock.h"
#include "common/log.h"
#include "kv/rpc/protocol.h"

#include <memory>

namespace gasoline::worker {
namespace {

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

http::Response to_response(const Outcome& o) {
  http::Response r;
  r.status = o.status;
  r.body = dump(o.body);
  r.headers = o.headers;
  return r;
}

http::Response error(int status, const std::string& code, const std::string& message) {
  return http::error_response(status, code, message);
}

// Wraps a reply so every answer is counted by route and status class.
http::Reply counted(Metrics& m, std::string route, http::Reply reply) {
  return [&m, route = std::move(route), reply = std::move(reply)](http::Response r) {
    m.http(route, r.status);
    reply(std::move(r));
  };
}

Done as_done(http::Reply reply) {
  return [reply = std::move(reply)](Outcome o) { reply(to_response(o)); };
}

http::Response method_not_allowed(const std::string& allowed) {
  auto r = error(405, "method_not_allowed", "use " + allowed);
  r.headers.emplace_back("Allow", allowed);
  return r;
}

}  // namespace

bool Api::probes(const http::Request& req, const http::Reply& raw) {
  const auto& p = req.path;
  if (p.size() != 1) return false;
  if (p[0] == "healthz") {
    auto reply = counted(metrics_, "healthz", raw);
    reply(to_response(Outcome{200, sidecar_.health(), {}}));
    return true;
  }
  if (p[0] == "readyz") {
    auto reply = counted(metrics_, "readyz", raw);
    Json h = sidecar_.health();
    bool ready = h.value("ready", false);
    reply(to_response(Outcome{ready ? 200 : 503,
                              Json{{"ready", ready}, {"reason", h.value("reason", "")}, {"worker", h["worker"]}},
                              {}}));
    return true;
  }
  if (p[0] == "metrics") {
    auto reply = counted(metrics_, "metrics", raw);
    http::Response r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = metrics_.text();
    reply(std::move(r));
    return true;
  }
  return false;
}

void Api::handle_admin(http::Request req, http::Reply reply) {
  if (req.method != "GET") {
    reply(method_not_allowed("GET"));
    return;
  }
  if (probes(req, reply)) return;
  if (req.path.size() == 1 && req.path[0] == "drain") {
    // The app container's preStop hook (kubelet httpGet hooks can only GET): answered when the drain finished or
    // its timeout passed, always 200 then, so the hook never fails the pod's termination. The admin listener is
    // on the pod's IP, so without this check any pod in the cluster could take every worker out of service.
    const auto& config = sidecar_.config();
    if (!api::drain_caller_allowed(req.remote_address, config.node_ip, config.drain_allowed_from)) {
      log::warn("GET /drain refused: not from loopback or the node", {{"remote", req.remote_address}});
      counted(metrics_, "drain", std::move(reply))(error(
          403, "forbidden",
          "GET /drain is accepted only from the pod's loopback and its node (the kubelet's preStop hook; "
          "--node-ip, --drain-allowed-from), not from " +
              (req.remote_address.empty() ? std::string("an unknown address") : req.remote_address)));
      return;
    }
    sidecar_.drain(as_done(counted(metrics_, "drain", std::move(reply))));
    return;
  }
  reply(error(404, "not_found", "the admin listener serves /healthz, /readyz, /metrics and /drain"));
}

void Api::handle(http::Request req, http::Reply raw) {
  const auto& p = req.path;
  const auto& m = req.method;
  if (m == "GET" && probes(req, raw)) return;
  std::string route = "other";
  if (p.size() >= 2 && p[0] == "v1" && p[1] == "tasks")
    route = p.size() == 2 ? "tasks" : p.size() == 3 ? "results" : "result";
  if (p.size() >= 2 && p[0] == "v1" && p[1] == "workflows")
    route = p.size() == 2 ? "dispatch" : p.size() == 3 ? "workflow" : p.size() == 4 ? p[3] : "other";
  if (p.size() == 2 && p[0] == "v1" && p[1] == "drain") route = "drain";
  auto reply = counted(metrics_, route, std::move(raw));
  try {
    if (p.empty() || p[0] != "v1" || p.size() < 2) {
      reply(error(404, "not_found", "no such route; see worker/README.md (GET /v1/tasks, POST /v1/workflows, ...)"));
      return;
    }
    if (p[1] == "drain" && p.size() == 2) {
      // The same drain as GET /drain on the admin listener, for an app that drains its own sidecar.
      if (m != "POST") return reply(method_not_allowed("POST"));
      sidecar_.drain(as_done(reply));
      return;
    }
    if (p[1] == "tasks") {
      if (p.size() == 2) {
        if (m != "GET") return reply(method_not_allowed("GET"));
        auto q = api::parse_tasks_query(req.query, sidecar_.config().concurrency);
        sidecar_.poll(q.max, q.wait, as_done(reply));
        return;
      }
      if (p.size() == 3 && p[2] == "results") {
        if (m != "POST") return reply(method_not_allowed("POST"));
        auto items = api::parse_batch(api::parse_json_body(req.body));
        // Each item is answered on its own; the batch replies when the last one is in.
        struct Batch {
          std::mutex mu;
          Json results;
          size_t left;
          http::Reply reply;
        };
        auto batch = std::make_shared<Batch>();
        batch->results = Json::array();
        for (size_t i = 0; i < items.size(); ++i) batch->results.push_back(nullptr);
        batch->left = items.size();
        batch->reply = reply;
        auto finish = [batch](size_t i, const std::string& token, const Outcome& o) {
          bool last;
          {
            std::lock_guard lock(batch->mu);
            batch->results[i] = Json{{"token", token}, {"status", o.status}, {"body", o.body}};
            last = --batch->left == 0;
          }
          if (last) batch->reply(to_response(Outcome{200, Json{{"results", batch->results}}, {}}));
        };
        for (size_t i = 0; i < items.size(); ++i) {
          auto& item = items[i];
          if (item.error) {
            finish(i, item.raw_token,
                   Outcome{item.error->status, api::error_json(item.error->code, item.error->what()), {}});
            continue;
          }
          sidecar_.submit(item.token, std::move(*item.result),
                          [finish, i, token = item.token.text()](Outcome o) { finish(i, token, o); });
        }
        return;
      }
      if (p.size() == 4 && p[3] == "result") {
        if (m != "POST") return reply(method_not_allowed("POST"));
        auto token = api::parse_token(p[2]);
        auto result = api::parse_result(api::parse_json_body(req.body));
        sidecar_.submit(token, std::move(result), as_done(reply));
        return;
      }
    }
    if (p[1] == "workflows") {
      if (p.size() == 2) {
        if (m != "POST") return reply(method_not_allowed("POST"));
        auto args = api::parse_dispatch(api::parse_json_body(req.body), sidecar_.config().pool);
        sidecar_.kv_request(rpc::op::kDispatch, std::move(args), as_done(reply));
        return;
      }
      const std::string& id = p[2];
      if (id.empty()) return reply(error(400, "bad_request", "empty workflow id"));
      if (p.size() == 3) {
        if (m != "GET") return reply(method_not_allowed("GET"));
        sidecar_.kv_request(rpc::op::kGet, Json{{rpc::arg::kWorkflowId, id}}, as_done(reply));
        return;
      }
      if (p.size() == 4 && p[3] == "signals") {
        if (m != "POST") return reply(method_not_allowed("POST"));
        sidecar_.kv_request(rpc::op::kSignal, api::parse_signal(api::parse_json_body(req.body), id), as_done(reply));
        return;
      }
      if (p.size() == 4 && p[3] == "cancel") {
        if (m != "POST") return reply(method_not_allowed("POST"));
        sidecar_.kv_request(rpc::op::kCancel, api::parse_cancel(req.body, id), as_done(reply));
        return;
      }
    }
    reply(error(404, "not_found", "no such route; see worker/README.md"));
  } catch (const api::ApiError& e) {
    reply(error(e.status, e.code, e.what()));
  } catch (const Json::exception& e) {
    reply(error(400, "bad_request", std::string("invalid JSON value: ") + e.what()));
  }
}

}  // namespace gasoline::worker
