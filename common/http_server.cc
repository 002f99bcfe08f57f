// The parts of common/http_server.h that do not depend on a backend.
#include "common/http_server.h"

#include "common/http_server_backends.h"
#include "common/log.h"

#include <nlohmann/json.hpp>

#include <cctype>
#include <cstdlib>

namespace gasoline::http {

std::unique_ptr<Server> make_server(ServerOptions options, Handler handler) {
  const char* backend = std::getenv("GASOLINE_HTTP_BACKEND");
  if (backend && std::string(backend) == "cpprest") return make_cpprest_server(std::move(options), std::move(handler));
  return make_beast_server(std::move(options), std::move(handler));
}

void invoke_handler(const Handler& handler, Request r, const Reply& reply) {
  try {
    handler(std::move(r), reply);
  } catch (const std::exception& e) {
    log::error("http handler failed", {{"error", e.what()}});
    reply(error_response(500, "internal", std::string("handler failed: ") + e.what()));
  } catch (...) {
    log::error("http handler failed with a non-standard exception", {});
    reply(error_response(500, "internal", "handler failed"));
  }
}

Response length_required() {
  return error_response(411, "length_required", "send a Content-Length; chunked request bodies are not accepted");
}

Response body_too_large(size_t length, size_t max_body) {
  return error_response(413, "too_large",
                        "request body of " + std::to_string(length) + " bytes exceeds the limit of " +
                            std::to_string(max_body) + " bytes");
}

std::string percent_decode(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else if (s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

Response json_response(int status, const std::string& body) {
  Response r;
  r.status = status;
  r.body = body;
  return r;
}

Response error_response(int status, const std::string& code, const std::string& message) {
  return json_response(status, nlohmann::json{{"error", {{"code", code}, {"message", message}}}}.dump(
                                  -1, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::vector<std::string> split_path(const std::string& raw) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= raw.size()) {
    size_t j = raw.find('/', i);
    if (j == std::string::npos) j = raw.size();
    if (j > i) out.push_back(percent_decode(raw.substr(i, j - i)));
    i = j + 1;
  }
  return out;
}

std::map<std::string, std::string> split_query(const std::string& raw) {
  std::map<std::string, std::string> out;
  size_t i = 0;
  while (i < raw.size()) {
    size_t j = raw.find('&', i);
    if (j == std::string::npos) j = raw.size();
    std::string part = raw.substr(i, j - i);
    if (!part.empty()) {
      auto eq = part.find('=');
      if (eq == std::string::npos) {
        out[percent_decode(part)] = "";
      } else {
        out[percent_decode(part.substr(0, eq))] = percent_decode(part.substr(eq + 1));
      }
    }
    i = j + 1;
  }
  return out;
}

}  // namespace gasoline::http
