#pragma once
// The backends of common/http_server.h, and what they share. make_server() picks one; nothing else includes this.
#include "common/http_server.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace gasoline::http {

// Boost.Beast on one Asio thread: the default.
std::unique_ptr<Server> make_beast_server(ServerOptions options, Handler handler);
// cpprestsdk (its own thread pool): GASOLINE_HTTP_BACKEND=cpprest, kept while the Beast backend is new.
std::unique_ptr<Server> make_cpprest_server(ServerOptions options, Handler handler);

// "/v1/tasks/a%2Fb" → {"v1", "tasks", "a/b"}: empty segments dropped, each percent-decoded.
std::vector<std::string> split_path(const std::string& raw);
// "max=2&wait=1s" → {max: "2", wait: "1s"}, percent-decoded; a repeated key keeps the last value.
std::map<std::string, std::string> split_query(const std::string& raw);
// Runs the handler; a handler that throws gets its request answered 500 (and logged) instead of taking the
// server's thread with it.
void invoke_handler(const Handler& handler, Request r, const Reply& reply);
// The 411 and 413 both backends answer before the handler runs (a chunked body; a body above max_body).
Response length_required();
Response body_too_large(size_t length, size_t max_body);

}  // namespace gasoline::http
