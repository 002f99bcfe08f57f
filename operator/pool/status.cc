#include "operator/pool/status.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "operator/pool/render.h"

namespace gasoline::op::pool {
namespace {

using nlohmann::json;

// metav1.Condition caps the message; a long error (a whole API response) must not make the status apply fail.
constexpr size_t kMaxMessage = 32768;

struct Condition {
  std::string type;
  bool status;
  std::string reason;
  std::string message;
};

constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
// apps/v1 replica counts are int32 and never negative; clamping to that keeps the arithmetic on them defined.
constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();

// Reads an integer at a JSON pointer, tolerating anything the server or a test hands us: a value that is not a
// number is the fallback, a number outside [min, max] (a huge float, a uint64 above int64's range) is clamped.
int64_t integer_at(const json& object, const char* pointer, int64_t fallback, int64_t min = kInt64Min,
                   int64_t max = kInt64Max) {
  const json::json_pointer ptr(pointer);
  if (!object.is_object() || !object.contains(ptr)) return fallback;
  const auto& v = object.at(ptr);
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    return u > static_cast<uint64_t>(max) ? max : std::max(static_cast<int64_t>(u), min);
  }
  if (v.is_number_integer()) return std::clamp(v.get<int64_t>(), min, max);
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isnan(d)) return fallback;
    // Compared as doubles before the cast, which is undefined for values out of range (INT64_MAX rounds to 2^63).
    if (d <= static_cast<double>(min)) return min;
    if (d >= static_cast<double>(max)) return max;
    return static_cast<int64_t>(d);
  }
  return fallback;
}

// object[key] if it is a string, else "" (absent, or a value of another type the server would not have written).
std::string text_of(const json& object, const char* key) {
  if (!object.is_object()) return {};
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string string_at(const json& object, const char* pointer) {
  const json::json_pointer ptr(pointer);
  if (!object.is_object() || !object.contains(ptr) || !object.at(ptr).is_string()) return {};
  return object.at(ptr).get<std::string>();
}

// Cuts at a UTF-8 character boundary so the result is still valid JSON text.
std::string truncated(std::string text) {
  if (text.size() <= kMaxMessage) return text;
  size_t cut = kMaxMessage - 3;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  text.resize(cut);
  return text + "...";
}

std::string ratio(int64_t part, int64_t whole) { return std::to_string(part) + "/" + std::to_string(whole); }

struct DeploymentView {
  int64_t desired, replicas, ready, updated, available, generation, observed_generation;
  const json* progress_deadline_exceeded = nullptr;  // its Progressing condition, when that says so
};

DeploymentView view_of(const json& d) {
  DeploymentView v{
      integer_at(d, "/spec/replicas", 1, 0, kInt32Max),
      integer_at(d, "/status/replicas", 0, 0, kInt32Max),
      integer_at(d, "/status/readyReplicas", 0, 0, kInt32Max),
      integer_at(d, "/status/updatedReplicas", 0, 0, kInt32Max),
      integer_at(d, "/status/availableReplicas", 0, 0, kInt32Max),
      integer_at(d, "/metadata/generation", 0),
      integer_at(d, "/status/observedGeneration", 0),
  };
  const json::json_pointer conditions("/status/conditions");
  if (d.is_object() && d.contains(conditions) && d.at(conditions).is_array())
    for (const auto& c : d.at(conditions))
      if (text_of(c, "type") == "Progressing" && text_of(c, "status") == "False" &&
          text_of(c, "reason") == "ProgressDeadlineExceeded")
        v.progress_deadline_exceeded = &c;
  return v;
}

Condition ready(const std::optional<DeploymentView>& d, const std::string& deployment_name) {
  if (!d) return {"Ready", false, "DeploymentMissing", "Deployment " + deployment_name + " does not exist"};
  if (d->desired == 0) return {"Ready", false, "ScaledToZero", "0 replicas desired"};
  if (d->ready >= d->desired)
    return {"Ready", true, "AllReplicasReady", ratio(d->ready, d->desired) + " replicas ready"};
  return {"Ready", false, "ReplicasNotReady", ratio(d->ready, d->desired) + " replicas ready"};
}

Condition progressing(const std::optional<DeploymentView>& d, bool paused) {
  if (paused) return {"Progressing", false, "Paused", "spec.paused is true: the operator does not update the children"};
  if (!d) return {"Progressing", true, "RollingOut", "the Deployment is being created"};
  if (d->observed_generation < d->generation)
    return {"Progressing", true, "RollingOut",
            "the Deployment controller has not yet seen generation " + std::to_string(d->generation)};
  if (d->updated < d->desired)
    return {"Progressing", true, "RollingOut", ratio(d->updated, d->desired) + " replicas updated"};
  // Updated pods are all there, but old ones still run (they drain before they go).
  if (d->replicas > d->updated)
    return {"Progressing", true, "RollingOut",
            "old replicas pending termination: " + std::to_string(d->replicas - d->updated)};
  return {"Progressing", false, "UpToDate", "all " + std::to_string(d->desired) + " desired replicas are updated"};
}

Condition degraded(const std::optional<DeploymentView>& d, const std::optional<std::string>& error) {
  if (error) return {"Degraded", true, "ReconcileFailed", truncated(*error)};
  if (d && d->progress_deadline_exceeded) {
    const auto& c = *d->progress_deadline_exceeded;
    const std::string detail = text_of(c, "message");
    return {"Degraded", true, "DeploymentFailed",
            truncated("the Deployment exceeded its progress deadline" + (detail.empty() ? "" : ": " + detail))};
  }
  return {"Degraded", false, "AsExpected", "no failures observed"};
}

const json* old_condition(const json& pool, const std::string& type) {
  const json::json_pointer ptr("/status/conditions");
  if (!pool.is_object() || !pool.contains(ptr) || !pool.at(ptr).is_array()) return nullptr;
  for (const auto& c : pool.at(ptr))
    if (text_of(c, "type") == type) return &c;
  return nullptr;
}

json condition_json(const Condition& c, const json& pool, int64_t generation, const std::string& now) {
  const std::string status = c.status ? "True" : "False";
  std::string since = now;
  if (const json* old = old_condition(pool, c.type); old && text_of(*old, "status") == status) {
    const std::string kept = text_of(*old, "lastTransitionTime");
    if (!kept.empty()) since = kept;
  }
  return {{"type", c.type},
          {"status", status},
          {"reason", c.reason},
          {"message", c.message},
          {"lastTransitionTime", since},
          {"observedGeneration", generation}};
}

// The scale subresource hands this to whoever scales the pool, so it must select what the Deployment selects:
// the live selector when there is one, else the one we would render.
std::optional<std::string> selector_of(const json& pool, const json* deployment) {
  const json::json_pointer ptr("/spec/selector/matchLabels");
  if (deployment && deployment->is_object() && deployment->contains(ptr) && deployment->at(ptr).is_object()) {
    Labels labels;
    for (const auto& [key, value] : deployment->at(ptr).items())
      if (value.is_string()) labels[key] = value.get<std::string>();
    if (!labels.empty()) return to_selector_string(labels);
  }
  try {
    return selector_string(pool);
  } catch (const SpecError&) {
    const std::string old = string_at(pool, "/status/selector");
    if (!old.empty()) return old;
    return std::nullopt;
  }
}

}  // namespace

json compute_status(const json& pool, const Observed& observed, const std::string& now) {
  const int64_t generation = integer_at(pool, "/metadata/generation", 0);
  const bool paused = observed.paused || (pool.is_object() && pool.contains(json::json_pointer("/spec/paused")) &&
                                          pool.at(json::json_pointer("/spec/paused")) == true);
  std::optional<DeploymentView> d;
  if (observed.deployment) d = view_of(*observed.deployment);
  const std::string deployment_name = string_at(pool, "/metadata/namespace") + "/" + string_at(pool, "/metadata/name");

  json status = {
      {"observedGeneration", generation},
      {"replicas", d ? d->replicas : 0},
      {"readyReplicas", d ? d->ready : 0},
      {"updatedReplicas", d ? d->updated : 0},
      {"availableReplicas", d ? d->available : 0},
  };
  if (observed.active_workers) status["activeWorkers"] = *observed.active_workers;
  if (auto selector = selector_of(pool, observed.deployment)) status["selector"] = *selector;
  const std::vector<Condition> conditions = {ready(d, deployment_name), progressing(d, paused),
                                             degraded(d, observed.reconcile_error)};
  status["conditions"] = json::array();
  for (const auto& c : conditions) status["conditions"].push_back(condition_json(c, pool, generation, now));
  return status;
}

}  // namespace gasoline::op::pool
