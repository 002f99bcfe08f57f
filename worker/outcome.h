#pragma once
// What the app gets back from the sidecar: an HTTP status and a JSON body, handed to a callback because answers
// may come later (long polls, commits in flight, the drain). Shared by the Sidecar, its task table and the
// pass-through calls, none of which knows more about HTTP than status numbers.
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

}  // namespace gasoline::worker
