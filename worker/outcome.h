#pragma once
// What the app gets back from the sidecar: an HTTP status and a JSON body, handed to a callback because answers
// may come later (long polls, commits in flight, the drain). Shared by the Sidecar, its task table and the
// pass-through calls, none of which knows more about HTTP than status numbers.
#include "worker/api_parse.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace gasoline::worker {

using Json = nlohmann::json;

struct Outcome {
  int status = 200;
  Json body = Json::object();
  std::vector<std::pair<std::string, std::string>> headers;
};
using Done = std::function<void(Outcome)>;

// An error answer; a 503 says when to try again.
inline Outcome error_outcome(int status, const std::string& code, const std::string& message) {
  Outcome o{status, api::error_json(code, message), {}};
  if (status == 503) o.headers.emplace_back("Retry-After", "1");
  return o;
}

inline Outcome shutting_down() { return error_outcome(503, "shutting_down", "the sidecar is shutting down"); }

}  // namespace gasoline::worker
