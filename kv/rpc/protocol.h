#pragma once
// Protocol constants and the error vocabulary shared by server and client.
#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <string_view>

namespace gasoline::rpc {

using Json = nlohmann::json;

inline constexpr int kProtocolVersion = 1;

// Error codes carried in responses and error frames.
namespace code {
inline constexpr const char* kUnauthenticated = "unauthenticated";
// Authenticated, but the credential's role does not allow this op on this pool (docs/security.md, "Roles").
// The connection stays usable.
inline constexpr const char* kPermissionDenied = "permission_denied";
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

// The ops of the wire protocol (docs/protocol.md has each one's arguments, results and errors). Server, clients
// and the authorization table name them through these, so a renamed or mistyped op fails to compile instead of
// answering "unknown op" at run time.
namespace op {
// A worker's: membership, work and its results.
inline constexpr const char* kPing = "ping";
inline constexpr const char* kPull = "pull";
inline constexpr const char* kCommit = "commit";
inline constexpr const char* kRelease = "release";
inline constexpr const char* kSubscribe = "subscribe";
inline constexpr const char* kDrain = "drain";
inline constexpr const char* kUndrain = "undrain";
inline constexpr const char* kLeave = "leave";
// A client's: start workflows, read them, reach into them.
inline constexpr const char* kDispatch = "dispatch";
inline constexpr const char* kGet = "get";
inline constexpr const char* kList = "list";
inline constexpr const char* kSignal = "signal";
inline constexpr const char* kCancel = "cancel";
// An operator's.
inline constexpr const char* kStatus = "status";
inline constexpr const char* kWorkers = "workers";
inline constexpr const char* kPoolConfigure = "pool.configure";
inline constexpr const char* kClusterPrefix = "cluster.";
inline constexpr const char* kClusterStatus = "cluster.status";
inline constexpr const char* kClusterAdd = "cluster.add";
inline constexpr const char* kClusterRemove = "cluster.remove";
inline constexpr const char* kClusterTransfer = "cluster.transfer";
}  // namespace op

// The argument keys that name what an op acts on, shared by every op that takes them. The keys of a workflow's
// definition and of a step's result are those of their codecs (kv/store/command.cc).
namespace arg {
inline constexpr const char* kPool = "pool";
inline constexpr const char* kWorker = "worker";
inline constexpr const char* kWorkflowId = "workflow_id";
inline constexpr const char* kChildren = "children";
inline constexpr const char* kSignals = "signals";
}  // namespace arg

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

// The deepest nesting of maps and arrays a frame body may have. nlohmann's MessagePack reader recurses once per
// level, so without a bound one small frame of nested one-element arrays (0x91 0x91 ...) overflows the stack of an
// I/O thread and kills the process. Inputs, states and outputs of workflows are far shallower than this.
inline constexpr size_t kMaxBodyDepth = 256;

namespace detail {
// The DOM builder of Json::from_msgpack, stopping the parse once it would go deeper than the limit.
class DepthLimitedSax : public nlohmann::detail::json_sax_dom_parser<Json> {
 public:
  DepthLimitedSax(Json& root, size_t max_depth) : json_sax_dom_parser(root, true), max_depth_(max_depth) {}
  bool start_object(std::size_t n) { return enter() && json_sax_dom_parser::start_object(n); }
  bool start_array(std::size_t n) { return enter() && json_sax_dom_parser::start_array(n); }
  bool end_object() {
    --depth_;
    return json_sax_dom_parser::end_object();
  }
  bool end_array() {
    --depth_;
    return json_sax_dom_parser::end_array();
  }
  bool too_deep() const { return too_deep_; }

 private:
  bool enter() {
    if (++depth_ <= max_depth_) return true;
    too_deep_ = true;
    return false;
  }
  size_t max_depth_;
  size_t depth_ = 0;
  bool too_deep_ = false;
};
}  // namespace detail

// Json::from_msgpack with a nesting limit: the one parser of untrusted frame bodies. Throws nlohmann's
// parse_error / out_of_range on malformed bytes and std::invalid_argument on too deep nesting.
inline Json decode_body(std::string_view bytes, size_t max_depth = kMaxBodyDepth) {
  Json out;
  detail::DepthLimitedSax sax(out, max_depth);
  bool ok = Json::sax_parse(bytes.begin(), bytes.end(), &sax, Json::input_format_t::msgpack, true);
  if (sax.too_deep())
    throw std::invalid_argument("MessagePack nested deeper than " + std::to_string(max_depth) + " levels");
  if (!ok) throw std::invalid_argument("malformed MessagePack");
  return out;
}

// The MessagePack bytes of a frame body.
inline std::string encode_body(const Json& j) {
  std::string out;
  Json::to_msgpack(j, out);
  return out;
}

inline Json error_body(const std::string& code, const std::string& message, Json extra = Json::object()) {
  Json e{{"code", code}, {"message", message}};
  for (auto it = extra.begin(); it != extra.end(); ++it) e[it.key()] = it.value();
  return Json{{"ok", false}, {"error", std::move(e)}};
}

}  // namespace gasoline::rpc
