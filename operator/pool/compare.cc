#include "operator/pool/compare.h"

#include <cmath>
#include <string_view>

#include "operator/pool/quantity.h"

namespace gasoline::op::pool {
namespace {

using nlohmann::json;

// Where a value sits, which is all the comparison needs to know about its Go type.
struct Place {
  std::string_view key;         // the object key holding the value; empty for array items and the root
  std::string_view parent_key;  // the key holding the object that holds it
};

bool is_map_key(std::string_view key) {
  return key == "labels" || key == "annotations" || key == "nodeSelector" || key == "matchLabels" ||
         key == "selector" || key == "requests" || key == "limits" || key == "overhead";
}

bool is_quantity(const Place& at) {
  return at.parent_key == "requests" || at.parent_key == "limits" || at.parent_key == "overhead" ||
         at.key == "sizeLimit";
}

bool dropped_when_empty(const json& value, std::string_view key) {
  if (value.is_null()) return true;
  if (value.is_string()) return value.get_ref<const json::string_t&>().empty();
  if (value.is_array()) return value.empty();
  if (value.is_object()) return value.empty() && is_map_key(key);
  return false;
}

std::string quantity_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

bool same_number(const json& a, const json& b) {
  if (a.is_number_float() || b.is_number_float()) return a.get<double>() == b.get<double>();
  const bool a_negative = a.is_number_integer() && !a.is_number_unsigned() && a.get<int64_t>() < 0;
  const bool b_negative = b.is_number_integer() && !b.is_number_unsigned() && b.get<int64_t>() < 0;
  if (a_negative != b_negative) return false;
  return a_negative ? a.get<int64_t>() == b.get<int64_t>() : a.get<uint64_t>() == b.get<uint64_t>();
}

bool subset(const json& desired, const json& live, const Place& at) {
  if (desired.is_object()) {
    if (!live.is_object()) return false;
    for (const auto& [key, value] : desired.items()) {
      auto it = live.find(key);
      if (it == live.end()) {
        if (!dropped_when_empty(value, key)) return false;
        continue;
      }
      if (!subset(value, *it, Place{key, at.key})) return false;
    }
    return true;
  }
  if (desired.is_array()) {
    if (!live.is_array() || live.size() != desired.size()) return false;
    for (size_t i = 0; i < desired.size(); ++i)
      if (!subset(desired[i], live[i], Place{{}, at.key})) return false;
    return true;
  }
  if (is_quantity(at) && (desired.is_string() || desired.is_number()) && (live.is_string() || live.is_number())) {
    if (desired == live) return true;
    return same_quantity(quantity_text(desired), quantity_text(live));
  }
  if (desired.is_number() && live.is_number()) return same_number(desired, live);
  if (desired.is_null()) return live.is_null();
  return desired == live;
}

}  // namespace

bool semantic_subset(const json& desired, const json& live) { return subset(desired, live, Place{}); }

}  // namespace gasoline::op::pool
