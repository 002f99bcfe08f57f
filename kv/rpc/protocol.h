#pragma once
// Protocol constants and the error vocabulary shared by server and client.
#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

namespace gasoline::rpc {

using Json = nlohmann::json;

inline constexpr int kProtocolVersion = 1;

// Error codes carried in responses and error frames.
namespace code {
inline constexpr const char* kUnauthenticated = "unauthenticated";
inline constexpr const char* kProtocol = "protocol";            // malformed frame or body, wrong version
inline constexpr const char* kTooLarge = "too_large";
inline constexpr const char* kBadRequest = "bad_request";       // well-formed frame, invalid arguments
inline constexpr const char* kNotFound = "not_found";
inline constexpr const char* kConflict = "conflict";            // lease lost, id in use
inline constexpr const char* kFailedPrecondition = "failed_precondition";
inline constexpr const char* kNotLeader = "not_leader";         // carries "leader": "host:port" when known
inline constexpr const char* kUnavailable = "unavailable";      // connection lost, shutting down, timeout
inline constexpr const char* kInternal = "internal";
}  // namespace code

// An error returned by the kv (or by the client library for connection failures).
class KvError : public std::runtime_error {
 public:
  KvError(std::string code, const std::string& message, Json details = Json::object())
      : std::runtime_error(code + ": " + message), code_(std::move(code)), details_(std::move(details)) {}
  const std::string& code() const { return code_; }
  const Json& details() const { return details_; }

 private:
  std::string code_;
  Json details_;
};

inline Json error_body(const std::string& code, const std::string& message, Json extra = Json::object()) {
  Json e{{"code", code}, {"message", message}};
  for (auto it = extra.begin(); it != extra.end(); ++it) e[it.key()] = it.value();
  return Json{{"ok", false}, {"error", std::move(e)}};
}

}  // namespace gasoline::rpc
