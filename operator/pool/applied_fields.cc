#include "operator/pool/applied_fields.h"

#include <optional>
#include <string>

#include "operator/pool/compare.h"

namespace gasoline::op::pool {
namespace {

using nlohmann::json;

// List keys the server fills in when they are left out, so a key recorded with the default still names an item
// that desired writes without it.
bool is_defaulted_key(const std::string& field, const json& value) { return field == "protocol" && value == "TCP"; }

// object[key] as a string: `absent` when the key is missing or null, nullopt when it holds another type.
std::optional<std::string> string_field(const json& object, const char* key, const char* absent) {
  if (!object.is_object()) return absent;
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return absent;
  if (!it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

bool matches_key(const json& item, const json& key) {
  if (!item.is_object()) return false;
  for (const auto& [field, value] : key.items()) {
    auto it = item.find(field);
    if (it == item.end()) {
      if (!is_defaulted_key(field, value)) return false;
    } else if (*it != value) {  // nlohmann compares numbers by value across int, unsigned and float
      return false;
    }
  }
  return true;
}

// Whether every field in the fieldsV1 set `owned` is present in `desired`.
bool covered(const json& owned, const json& desired) {
  if (!owned.is_object()) return false;
  for (const auto& [entry, sub] : owned.items()) {
    if (entry == ".") continue;  // the item or map itself, present since we got here
    const std::string prefix = entry.substr(0, 2);
    const std::string rest = entry.size() > 2 ? entry.substr(2) : std::string();
    if (prefix == "f:") {
      if (!desired.is_object()) return false;
      auto it = desired.find(rest);
      if (it == desired.end() || it->is_null() || !covered(sub, *it)) return false;
    } else if (prefix == "k:" || prefix == "v:") {
      const json key = json::parse(rest, nullptr, false);
      if (key.is_discarded() || !desired.is_array()) return false;
      const json* found = nullptr;
      for (const auto& item : desired)
        if (prefix == "k:" ? key.is_object() && matches_key(item, key) : item == key) {
          found = &item;
          break;
        }
      if (found == nullptr || !covered(sub, *found)) return false;
    } else {
      return false;  // "i:" (positional) or a format we do not know: assume something changed
    }
  }
  return true;
}

// Our last server-side apply's entry: manager `field_manager`, operation Apply, on the object itself (not a
// subresource). Fields of the wrong type (the server never writes them) make an entry not ours.
bool is_our_apply(const json& entry, std::string_view field_manager) {
  return entry.is_object() && string_field(entry, "manager", "") == field_manager &&
         string_field(entry, "operation", "") == "Apply" && string_field(entry, "subresource", "") == "";
}

const json* managed_fields(const json& live) {
  static const json::json_pointer managed("/metadata/managedFields");
  if (!live.is_object() || !live.contains(managed) || !live.at(managed).is_array()) return nullptr;
  return &live.at(managed);
}

}  // namespace

bool applied_field(const json& live, std::string_view field_manager, std::initializer_list<std::string_view> path) {
  const json* entries = managed_fields(live);
  if (!entries) return false;
  for (const auto& entry : *entries) {
    if (!is_our_apply(entry, field_manager) || !entry.contains("fieldsV1")) continue;
    const json* at = &entry.at("fieldsV1");
    for (auto field : path) {
      if (!at->is_object()) break;
      auto it = at->find("f:" + std::string(field));
      at = it == at->end() ? nullptr : &*it;
      if (!at) break;
    }
    if (at) return true;
  }
  return false;
}

bool drops_applied_field(const json& desired, const json& live, std::string_view field_manager) {
  const json* entries = managed_fields(live);
  if (!entries) return false;
  for (const auto& entry : *entries) {
    // Once the entry is ours, anything unreadable in it means the apply is sent.
    if (!is_our_apply(entry, field_manager)) continue;
    const auto api_version = string_field(entry, "apiVersion", "");
    const auto desired_api_version = string_field(desired, "apiVersion", "");
    if (!api_version || !desired_api_version || *api_version != *desired_api_version) return true;
    if (string_field(entry, "fieldsType", "FieldsV1") != "FieldsV1" || !entry.contains("fieldsV1")) return true;
    if (!covered(entry.at("fieldsV1"), desired)) return true;
  }
  return false;
}

bool needs_apply(const json& desired, const json& live, std::string_view field_manager) {
  return !semantic_subset(desired, live) || drops_applied_field(desired, live, field_manager);
}

}  // namespace gasoline::op::pool
