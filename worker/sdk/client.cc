#include "worker/sdk/client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace gasoline::sdk {
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct Client::Conn {
  asio::io_context io;
  beast::tcp_stream stream{io};
  beast::flat_buffer buffer;
  bool open = false;

  // Runs one asynchronous operation to completion with a deadline; beast's tcp_stream cancels it on expiry.
  template <typename Start>
  void run(std::chrono::milliseconds timeout, Start start, const std::string& what) {
    boost::system::error_code result = asio::error::would_block;
    stream.expires_after(timeout);
    start([&result](boost::system::error_code ec, auto&&...) { result = ec; });
    io.restart();
    io.run();
    if (result) {
      close();
      throw TransportError(what + ": " + result.message());
    }
  }

  void close() {
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
    buffer.clear();
    open = false;
  }
};

Client::Client(std::string address, std::chrono::milliseconds timeout)
    : timeout_(timeout), conn_(std::make_unique<Conn>()) {
  if (address.rfind("http://", 0) == 0) address = address.substr(7);
  while (!address.empty() && address.back() == '/') address.pop_back();
  auto colon = address.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("sidecar address '" + address + "' needs host:port");
  host_ = address.substr(0, colon);
  port_ = address.substr(colon + 1);
}

Client::~Client() {
  if (conn_ && conn_->open) conn_->close();
}

Response Client::request(const std::string& method, const std::string& target, const std::string& body,
                         const std::string& content_type, std::optional<std::chrono::milliseconds> timeout) {
  auto limit = timeout.value_or(timeout_);
  std::string where = method + " http://" + host_ + ":" + port_ + target;
  for (int attempt = 0;; ++attempt) {
    bool reused = conn_->open;
    try {
      if (!conn_->open) {
        tcp::resolver resolver(conn_->io);
        auto endpoints = resolver.resolve(host_, port_);
        conn_->run(
            limit, [&](auto handler) { conn_->stream.async_connect(endpoints, handler); }, "connecting for " + where);
        conn_->stream.socket().set_option(tcp::no_delay(true));
        conn_->open = true;
      }
      bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
      req.set(bhttp::field::host, host_ + ":" + port_);
      req.set(bhttp::field::connection, "keep-alive");
      if (!bearer_.empty()) req.set(bhttp::field::authorization, "Bearer " + bearer_);
      if (!body.empty() || method == "POST") {
        req.set(bhttp::field::content_type, content_type);
        req.body() = body;
      }
      req.prepare_payload();
      conn_->run(limit, [&](auto handler) { bhttp::async_write(conn_->stream, req, handler); }, "sending " + where);
      bhttp::response_parser<bhttp::string_body> parser;
      parser.body_limit(256 * 1024 * 1024);
      conn_->run(limit, [&](auto handler) { bhttp::async_read(conn_->stream, conn_->buffer, parser, handler); },
                 "reading the answer to " + where);
      auto res = parser.release();
      Response out;
      out.status = static_cast<int>(res.result_int());
      out.raw = std::move(res.body());
      out.body = Json::parse(out.raw, nullptr, false);
      if (out.body.is_discarded()) out.body = nullptr;
      if (!res.keep_alive()) conn_->close();
      return out;
    } catch (const TransportError&) {
      // A keep-alive connection the server closed while idle fails on first use: one retry on a new connection.
      if (!reused || attempt > 0) throw;
    } catch (const boost::system::system_error& e) {
      conn_->close();
      if (!reused || attempt > 0) throw TransportError(where + ": " + e.what());
    }
  }
}

Json Client::expect(const Response& r, std::initializer_list<int> ok, const std::string& what) {
  for (int s : ok)
    if (r.status == s) return r.body;
  std::string code = "http_" + std::to_string(r.status), message = r.raw;
  if (r.body.is_object() && r.body.contains("error") && r.body["error"].is_object()) {
    code = r.body["error"].value("code", code);
    message = r.body["error"].value("message", message);
  }
  throw ApiError(r.status, code, what + ": " + std::to_string(r.status) + " " + code + ": " + message);
}

std::vector<Json> Client::poll(size_t max, std::chrono::milliseconds wait) {
  auto r = request("GET", "/v1/tasks?max=" + std::to_string(max) + "&wait=" + std::to_string(wait.count()) + "ms", "",
                   "application/json", wait + std::chrono::seconds(10));
  auto body = expect(r, {200}, "polling for tasks");
  draining_ = body.value("draining", false);
  std::vector<Json> tasks;
  for (auto& t : body["tasks"]) tasks.push_back(std::move(t));
  return tasks;
}

namespace {
Json with_echo(const Json& task, Json result) {
  result["workflow_id"] = task.value("workflow_id", "");
  result["worker"] = task.value("worker", "");
  return result;
}

std::string encode_segment(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}
}  // namespace

Posted Client::post_result(const Json& task, Json result) {
  auto token = task.at("token").get<std::string>();
  auto r = request("POST", "/v1/tasks/" + encode_segment(token) + "/result", with_echo(task, std::move(result)).dump());
  if (r.status == 409) return Posted::kLeaseLost;
  if (r.status == 202) return Posted::kBuffered;
  expect(r, {200}, "posting the result of token " + token);
  return Posted::kCommitted;
}

std::vector<Posted> Client::post_results(const std::vector<std::pair<Json, Json>>& results) {
  Json items = Json::array();
  for (const auto& [task, result] : results) {
    Json item = with_echo(task, result);
    item["token"] = task.at("token");
    items.push_back(std::move(item));
  }
  auto r = request("POST", "/v1/tasks/results", Json{{"results", items}}.dump());
  auto body = expect(r, {200}, "posting " + std::to_string(results.size()) + " results");
  std::vector<Posted> out;
  for (const auto& item : body["results"]) {
    int status = item.value("status", 0);
    if (status == 409) {
      out.push_back(Posted::kLeaseLost);
    } else if (status == 202) {
      out.push_back(Posted::kBuffered);
    } else if (status == 200) {
      out.push_back(Posted::kCommitted);
    } else {
      const auto& e = item["body"].contains("error") ? item["body"]["error"] : Json::object();
      throw ApiError(status, e.value("code", "http_" + std::to_string(status)),
                     "result of token " + item.value("token", std::string()) + ": " +
                         e.value("message", item["body"].dump()));
    }
  }
  return out;
}

std::string Client::dispatch(const std::string& name, const Json& input, const DispatchOptions& o) {
  Json body{{"name", name}, {"input", input}};
  if (!o.id.empty()) body["id"] = o.id;
  if (!o.idempotency_key.empty()) body["idempotency_key"] = o.idempotency_key;
  if (!o.tags.empty()) body["tags"] = o.tags;
  if (o.delay_ms > 0) body["delay_ms"] = o.delay_ms;
  if (o.max_attempts > 0) body["max_attempts"] = o.max_attempts;
  auto r = request("POST", "/v1/workflows", body.dump());
  return expect(r, {200, 201}, "dispatching '" + name + "'").value("id", "");
}

Json Client::get(const std::string& id) {
  return expect(request("GET", "/v1/workflows/" + encode_segment(id)), {200}, "reading workflow '" + id + "'");
}

Json Client::signal(const std::string& id, const std::string& name, const Json& body, const std::string& signal_id) {
  Json b{{"name", name}, {"body", body}};
  if (!signal_id.empty()) b["signal_id"] = signal_id;
  return expect(request("POST", "/v1/workflows/" + encode_segment(id) + "/signals", b.dump()), {200},
                "signalling '" + name + "' to '" + id + "'");
}

Json Client::cancel(const std::string& id, const std::string& reason) {
  Json b = Json::object();
  if (!reason.empty()) b["reason"] = reason;
  return expect(request("POST", "/v1/workflows/" + encode_segment(id) + "/cancel", b.dump()), {200},
                "cancelling '" + id + "'");
}

bool Client::ready() {
  try {
    return request("GET", "/readyz").status == 200;
  } catch (const TransportError&) {
    return false;  // not reachable is not ready; the caller asked a yes/no question
  }
}

namespace step {
namespace {
Json with_state(Json body, const Json& state) {
  if (!state.is_null()) body["state"] = state;
  return body;
}
}  // namespace

Json complete(const Json& output) { return Json{{"complete", {{"output", output}}}}; }
Json sleep_for(int64_t ms, const Json& state) { return Json{{"sleep", with_state(Json{{"for_ms", ms}}, state)}}; }
Json sleep_until(int64_t unix_ms, const Json& state) {
  return Json{{"sleep", with_state(Json{{"until", unix_ms}}, state)}};
}
Json wait(const std::vector<std::string>& signals, std::optional<int64_t> timeout_ms, const Json& state) {
  Json w{{"signals", signals}};
  if (timeout_ms) w["timeout_ms"] = *timeout_ms;
  return Json{{"wait", with_state(std::move(w), state)}};
}
Json retry(const std::string& error, const Json& state, int64_t backoff_base_ms) {
  Json r{{"error", error}};
  if (backoff_base_ms > 0) r["backoff_base_ms"] = backoff_base_ms;
  return Json{{"retry", with_state(std::move(r), state)}};
}
Json fail(const std::string& error) { return Json{{"fail", {{"error", error}}}}; }
Json next(const Json& state) { return Json{{"continue", with_state(Json::object(), state)}}; }

Json child(const std::string& name, const Json& input, bool notify_parent, const std::string& id) {
  Json c{{"name", name}, {"input", input}, {"notify_parent", notify_parent}};
  if (!id.empty()) c["id"] = id;
  return c;
}
Json& add_child(Json& result, Json c) {
  result["children"].push_back(std::move(c));
  return result;
}
Json& add_signal(Json& result, const std::string& workflow_id, const std::string& name, const Json& body) {
  result["signals"].push_back(Json{{"workflow_id", workflow_id}, {"name", name}, {"body", body}});
  return result;
}
}  // namespace step

std::vector<Json> signals_named(const Json& task, const std::string& name) {
  std::vector<Json> out;
  if (!task.contains("signals")) return out;
  for (const auto& s : task["signals"])
    if (s.value("name", "") == name) out.push_back(s);
  return out;
}

}  // namespace gasoline::sdk
