#include "kv/store/command.h"

#include "kv/store/json_field.h"

#include <stdexcept>

namespace gasoline::store {
namespace {

template <typename T>
T opt(const Json& j, const char* key, T fallback) {
  return json_field<T>(j, key, std::move(fallback));
}

Json opt_json(const Json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() ? Json() : *it;
}

constexpr std::string_view kStepNames[] = {"complete", "sleep", "wait", "retry", "fail", "continue"};

template <class... Ts>
struct overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
overloaded(Ts...) -> overloaded<Ts...>;  // clang 14 (the fuzz build) needs the guide

Json ping_json(const Ping& p) {
  return Json{{"pool", p.pool}, {"worker", p.worker_id}, {"pod", p.pod},          {"version", p.version},
              {"workflows", p.workflows}, {"cpu", p.cpu}, {"free_slots", p.free_slots}};
}

Ping ping_from(const Json& j) {
  Ping p;
  p.pool = opt<std::string>(j, "pool", "");
  p.worker_id = opt<std::string>(j, "worker", "");
  p.pod = opt<std::string>(j, "pod", "");
  p.version = opt<std::string>(j, "version", "");
  p.workflows = opt<std::vector<std::string>>(j, "workflows", {});
  p.cpu = opt<double>(j, "cpu", 0.0);
  p.free_slots = opt<uint32_t>(j, "free_slots", 0);
  return p;
}

}  // namespace

std::string_view to_string(StepKind k) { return kStepNames[static_cast<size_t>(k)]; }

std::optional<StepKind> parse_step_kind(std::string_view s) {
  for (size_t i = 0; i < std::size(kStepNames); ++i) {
    if (kStepNames[i] == s) return static_cast<StepKind>(i);
  }
  return std::nullopt;
}

std::string_view to_string(Code c) {
  switch (c) {
    case Code::kOk: return "ok";
    case Code::kInvalid: return "invalid";
    case Code::kNotFound: return "not_found";
    case Code::kConflict: return "conflict";
    case Code::kFailedPrecondition: return "failed_precondition";
    case Code::kNotLeader: return "not_leader";
    case Code::kUnavailable: return "unavailable";
  }
  return "unknown";
}

std::string_view command_name(const Command& c) {
  return std::visit(overloaded{[](const PingBatch&) { return std::string_view("ping"); },
                               [](const Drain&) { return std::string_view("drain"); },
                               [](const Leave&) { return std::string_view("leave"); },
                               [](const Undrain&) { return std::string_view("undrain"); },
                               [](const Dispatch&) { return std::string_view("dispatch"); },
                               [](const SendSignal&) { return std::string_view("signal"); },
                               [](const Cancel&) { return std::string_view("cancel"); },
                               [](const Purge&) { return std::string_view("purge"); },
                               [](const ConfigurePool&) { return std::string_view("pool"); },
                               [](const LeaseBatch&) { return std::string_view("lease"); },
                               [](const CommitStep&) { return std::string_view("commit"); },
                               [](const Release&) { return std::string_view("release"); },
                               [](const Reclaim&) { return std::string_view("reclaim"); }},
                    c);
}

Json to_json(const DispatchSpec& d) {
  Json j{{"id", d.id},
              {"pool", d.pool},
              {"name", d.name},
              {"tags", d.tags},
              {"input", d.input},
              {"idempotency_key", d.idempotency_key},
              {"parent_id", d.parent_id},
              {"notify_parent", d.notify_parent},
              {"max_attempts", d.max_attempts},
              {"run_at", d.run_at}};
  if (d.delay_ms) j["delay_ms"] = d.delay_ms;  // absent when 0: older entries' bytes stay the same
  return j;
}

DispatchSpec dispatch_from_json(const Json& j) {
  DispatchSpec d;
  d.id = opt<std::string>(j, "id", "");
  d.pool = opt<std::string>(j, "pool", "");
  d.name = opt<std::string>(j, "name", "");
  d.tags = opt_json(j, "tags");
  if (d.tags.is_null()) d.tags = Json::object();
  d.input = opt_json(j, "input");
  d.idempotency_key = opt<std::string>(j, "idempotency_key", "");
  d.parent_id = opt<std::string>(j, "parent_id", "");
  d.notify_parent = opt<bool>(j, "notify_parent", false);
  d.max_attempts = opt<uint32_t>(j, "max_attempts", 0);
  d.run_at = opt<int64_t>(j, "run_at", 0);
  d.delay_ms = opt<int64_t>(j, "delay_ms", 0);
  return d;
}

Json to_json(const SignalSpec& s) {
  return Json{{"workflow_id", s.workflow_id}, {"name", s.name}, {"body", s.body}, {"signal_id", s.signal_id}};
}

SignalSpec signal_spec_from_json(const Json& j) {
  SignalSpec s;
  s.workflow_id = opt<std::string>(j, "workflow_id", "");
  s.name = opt<std::string>(j, "name", "");
  s.body = opt_json(j, "body");
  s.signal_id = opt<std::string>(j, "signal_id", "");
  return s;
}

Json to_json(const StepResult& s) {
  Json j{{"kind", to_string(s.kind)}};
  switch (s.kind) {
    case StepKind::kComplete: j["output"] = s.output; break;
    case StepKind::kSleep:
      // "until" stays present for an absolute sleep (the bytes older entries have).
      if (s.until || !s.for_ms) j["until"] = s.until;
      if (s.for_ms) j["for_ms"] = s.for_ms;
      break;
    case StepKind::kWait:
      j["signals"] = s.signals;
      if (s.until) j["until"] = s.until;
      if (s.timeout_ms) j["timeout_ms"] = s.timeout_ms;
      break;
    case StepKind::kRetry:
      j["error"] = s.error;
      if (s.backoff_base_ms) j["backoff_base_ms"] = s.backoff_base_ms;
      if (s.backoff_max_ms) j["backoff_max_ms"] = s.backoff_max_ms;
      break;
    case StepKind::kFail: j["error"] = s.error; break;
    case StepKind::kContinue: break;
  }
  if (s.state) j["state"] = *s.state;
  return j;
}

StepResult step_from_json(const Json& j) {
  if (!j.is_object()) throw std::invalid_argument("step must be an object");
  StepResult s;
  auto kind_name = opt<std::string>(j, "kind", "");
  auto kind = parse_step_kind(kind_name);
  if (!kind) throw std::invalid_argument("unknown step kind '" + kind_name + "'");
  s.kind = *kind;
  s.output = opt_json(j, "output");
  if (j.contains("state")) s.state = j.at("state");
  s.until = opt<int64_t>(j, "until", 0);
  s.for_ms = opt<int64_t>(j, "for_ms", 0);
  s.timeout_ms = opt<int64_t>(j, "timeout_ms", 0);
  s.signals = opt<std::vector<std::string>>(j, "signals", {});
  s.error = opt<std::string>(j, "error", "");
  s.backoff_base_ms = opt<int64_t>(j, "backoff_base_ms", 0);
  s.backoff_max_ms = opt<int64_t>(j, "backoff_max_ms", 0);
  return s;
}

Json to_json(const Command& c) {
  return std::visit(
      overloaded{
          [](const PingBatch& b) {
            Json arr = Json::array();
            for (const auto& p : b.pings) arr.push_back(ping_json(p));
            return Json{{"t", "ping"}, {"pings", std::move(arr)}};
          },
          [](const Drain& d) { return Json{{"t", "drain"}, {"pool", d.pool}, {"worker", d.worker_id}}; },
          [](const Leave& d) { return Json{{"t", "leave"}, {"pool", d.pool}, {"worker", d.worker_id}}; },
          [](const Undrain& d) { return Json{{"t", "undrain"}, {"pool", d.pool}, {"worker", d.worker_id}}; },
          [](const Dispatch& d) { return Json{{"t", "dispatch"}, {"spec", to_json(d.spec)}}; },
          [](const SendSignal& s) { return Json{{"t", "signal"}, {"spec", to_json(s.spec)}}; },
          [](const Cancel& c) { return Json{{"t", "cancel"}, {"id", c.workflow_id}, {"reason", c.reason}}; },
          [](const LeaseBatch& b) {
            Json items = Json::array();
            for (const auto& i : b.items) items.push_back(Json::array({i.workflow_id, i.wake_ts}));
            return Json{{"t", "lease"}, {"pool", b.pool}, {"worker", b.worker_id}, {"items", std::move(items)}};
          },
          [](const CommitStep& c) {
            Json children = Json::array();
            for (const auto& d : c.children) children.push_back(to_json(d));
            Json signals = Json::array();
            for (const auto& s : c.signals) signals.push_back(to_json(s));
            return Json{{"t", "commit"},          {"id", c.workflow_id},
                        {"worker", c.worker_id},  {"token", c.token},
                        {"step", to_json(c.step)}, {"consumed", c.consumed_signal_seq},
                        {"children", children},   {"signals", signals}};
          },
          [](const Release& r) {
            return Json{{"t", "release"}, {"id", r.workflow_id}, {"worker", r.worker_id}, {"token", r.token},
                        {"reason", r.reason}};
          },
          [](const Reclaim& r) {
            return Json{{"t", "reclaim"}, {"pool", r.pool}, {"worker", r.worker_id}, {"lost_after", r.lost_after_ms}};
          },
          [](const Purge& p) { return Json{{"t", "purge"}, {"pool", p.pool}, {"retention", p.retention_ms}, {"ids", p.ids}}; },
          [](const ConfigurePool& p) { return Json{{"t", "pool"}, {"pool", p.pool}, {"retention", p.retention_ms}}; }},
      c);
}

Command command_from_json(const Json& j) {
  if (!j.is_object()) throw std::invalid_argument("command must be a map");
  auto t = opt<std::string>(j, "t", "");
  if (t == "ping") {
    PingBatch b;
    for (const auto& p : j.at("pings")) b.pings.push_back(ping_from(p));
    return b;
  }
  if (t == "drain") return Drain{opt<std::string>(j, "pool", ""), opt<std::string>(j, "worker", "")};
  if (t == "leave") return Leave{opt<std::string>(j, "pool", ""), opt<std::string>(j, "worker", "")};
  if (t == "dispatch") return Dispatch{dispatch_from_json(j.at("spec"))};
  if (t == "signal") return SendSignal{signal_spec_from_json(j.at("spec"))};
  if (t == "cancel") return Cancel{opt<std::string>(j, "id", ""), opt<std::string>(j, "reason", "")};
  if (t == "lease") {
    LeaseBatch b{opt<std::string>(j, "pool", ""), opt<std::string>(j, "worker", ""), {}};
    for (const auto& i : j.at("items")) b.items.push_back(LeaseItem{json_as<std::string>(i.at(0), "items"), json_as<int64_t>(i.at(1), "items")});
    return b;
  }
  if (t == "commit") {
    CommitStep c;
    c.workflow_id = opt<std::string>(j, "id", "");
    c.worker_id = opt<std::string>(j, "worker", "");
    c.token = opt<uint64_t>(j, "token", 0);
    c.step = step_from_json(j.at("step"));
    c.consumed_signal_seq = opt<uint64_t>(j, "consumed", 0);
    if (j.contains("children"))
      for (const auto& d : j.at("children")) c.children.push_back(dispatch_from_json(d));
    if (j.contains("signals"))
      for (const auto& s : j.at("signals")) c.signals.push_back(signal_spec_from_json(s));
    return c;
  }
  if (t == "release")
    return Release{opt<std::string>(j, "id", ""), opt<std::string>(j, "worker", ""), opt<uint64_t>(j, "token", 0),
                   opt<std::string>(j, "reason", "")};
  if (t == "reclaim")
    return Reclaim{opt<std::string>(j, "pool", ""), opt<std::string>(j, "worker", ""),
                   opt<int64_t>(j, "lost_after", 0)};
  if (t == "purge")
    return Purge{opt<std::string>(j, "pool", ""), opt<int64_t>(j, "retention", 0),
                 opt<std::vector<std::string>>(j, "ids", {})};
  if (t == "pool") return ConfigurePool{opt<std::string>(j, "pool", ""), opt<int64_t>(j, "retention", -1)};
  throw std::invalid_argument("unknown command type '" + t + "'");
}

}  // namespace gasoline::store
