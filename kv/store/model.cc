#include "kv/store/model.h"

#include "kv/store/json_field.h"

#include <algorithm>

namespace gasoline::store {

std::string_view to_string(WorkerState s) { return s == WorkerState::kDraining ? "draining" : "active"; }

bool Worker::serves(std::string_view name) const {
  return workflows.empty() || std::find(workflows.begin(), workflows.end(), name) != workflows.end();
}

namespace {
constexpr std::string_view kStatusNames[] = {"pending", "running", "sleeping", "waiting",
                                             "complete", "failed", "cancelled"};

template <typename T>
T get_or(const Json& j, const char* key, T fallback) {
  return json_field<T>(j, key, std::move(fallback));
}

Json get_json(const Json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() ? Json() : *it;
}
}  // namespace

std::string_view to_string(Status s) { return kStatusNames[static_cast<size_t>(s)]; }

std::optional<Status> parse_status(std::string_view s) {
  for (size_t i = 0; i < std::size(kStatusNames); ++i) {
    if (kStatusNames[i] == s) return static_cast<Status>(i);
  }
  return std::nullopt;
}

Json to_json(const Worker& w) {
  return Json{{"pool", w.pool},         {"id", w.id},
              {"pod", w.pod},           {"version", w.version},
              {"state", static_cast<int>(w.state)}, {"last_ping_ts", w.last_ping_ts},
              {"cpu", w.cpu},           {"free_slots", w.free_slots},
              {"workflows", w.workflows}};
}

Worker worker_from_json(const Json& j) {
  Worker w;
  w.pool = get_or<std::string>(j, "pool", "");
  w.id = get_or<std::string>(j, "id", "");
  w.pod = get_or<std::string>(j, "pod", "");
  w.version = get_or<std::string>(j, "version", "");
  w.state = static_cast<WorkerState>(get_or<int>(j, "state", 0));
  w.last_ping_ts = get_or<int64_t>(j, "last_ping_ts", 0);
  w.cpu = get_or<double>(j, "cpu", 0.0);
  w.free_slots = get_or<uint32_t>(j, "free_slots", 0);
  w.workflows = get_or<std::vector<std::string>>(j, "workflows", {});
  return w;
}

Json to_json(const Workflow& w) {
  Json j{{"id", w.id},
         {"pool", w.pool},
         {"name", w.name},
         {"tags", w.tags},
         {"input", w.input},
         {"state", w.state},
         {"output", w.output},
         {"error", w.error},
         {"status", static_cast<int>(w.status)},
         {"attempt", w.attempt},
         {"max_attempts", w.max_attempts},
         {"created_ts", w.created_ts},
         {"updated_ts", w.updated_ts},
         {"parent_id", w.parent_id},
         {"notify_parent", w.notify_parent},
         {"idempotency_key", w.idempotency_key},
         {"wake_ts", w.wake_ts},
         {"due_ts", w.due_ts},
         {"wake_reason", w.wake_reason},
         {"wait_signals", w.wait_signals},
         {"lease_worker", w.lease_worker},
         {"lease_token", w.lease_token},
         {"last_commit_worker", w.last_commit_worker},
         {"last_commit_token", w.last_commit_token},
         {"next_signal_seq", w.next_signal_seq},
         {"consumed_signal_seq", w.consumed_signal_seq},
         {"steps", w.steps}};
  return j;
}

Workflow workflow_from_json(const Json& j) {
  Workflow w;
  w.id = get_or<std::string>(j, "id", "");
  w.pool = get_or<std::string>(j, "pool", "");
  w.name = get_or<std::string>(j, "name", "");
  w.tags = get_json(j, "tags");
  if (w.tags.is_null()) w.tags = Json::object();
  w.input = get_json(j, "input");
  w.state = get_json(j, "state");
  w.output = get_json(j, "output");
  w.error = get_or<std::string>(j, "error", "");
  w.status = static_cast<Status>(get_or<int>(j, "status", 0));
  w.attempt = get_or<uint32_t>(j, "attempt", 0);
  w.max_attempts = get_or<uint32_t>(j, "max_attempts", 0);
  w.created_ts = get_or<int64_t>(j, "created_ts", 0);
  w.updated_ts = get_or<int64_t>(j, "updated_ts", 0);
  w.parent_id = get_or<std::string>(j, "parent_id", "");
  w.notify_parent = get_or<bool>(j, "notify_parent", false);
  w.idempotency_key = get_or<std::string>(j, "idempotency_key", "");
  w.wake_ts = get_or<int64_t>(j, "wake_ts", -1);
  w.due_ts = get_or<int64_t>(j, "due_ts", 0);
  w.wake_reason = get_or<std::string>(j, "wake_reason", "");
  w.wait_signals = get_or<std::vector<std::string>>(j, "wait_signals", {});
  w.lease_worker = get_or<std::string>(j, "lease_worker", "");
  w.lease_token = get_or<uint64_t>(j, "lease_token", 0);
  w.last_commit_worker = get_or<std::string>(j, "last_commit_worker", "");
  w.last_commit_token = get_or<uint64_t>(j, "last_commit_token", 0);
  w.next_signal_seq = get_or<uint64_t>(j, "next_signal_seq", 1);
  w.consumed_signal_seq = get_or<uint64_t>(j, "consumed_signal_seq", 0);
  w.steps = get_or<uint64_t>(j, "steps", 0);
  return w;
}

Json to_json(const Signal& s) {
  return Json{{"workflow_id", s.workflow_id}, {"seq", s.seq}, {"name", s.name}, {"body", s.body}, {"ts", s.ts}};
}

Signal signal_from_json(const Json& j) {
  Signal s;
  s.workflow_id = get_or<std::string>(j, "workflow_id", "");
  s.seq = get_or<uint64_t>(j, "seq", 0);
  s.name = get_or<std::string>(j, "name", "");
  s.body = get_json(j, "body");
  s.ts = get_or<int64_t>(j, "ts", 0);
  return s;
}

std::string encode(const Json& j) {
  std::string out;
  Json::to_msgpack(j, out);
  return out;
}

Json decode(std::string_view bytes) { return Json::from_msgpack(bytes.begin(), bytes.end()); }

std::optional<std::string> validate_name(std::string_view what, std::string_view value) {
  if (value.empty()) return std::string(what) + " must not be empty";
  if (value.size() > 253) return std::string(what) + " is longer than 253 characters";
  for (char c : value) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == ':' || c == '/';
    if (!ok) return std::string(what) + " '" + std::string(value) + "' has a character outside [A-Za-z0-9._:/-]";
  }
  return std::nullopt;
}

}  // namespace gasoline::store
