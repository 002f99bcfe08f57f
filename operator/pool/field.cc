#include "operator/pool/field.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

#include "operator/pool/spec_error.h"

namespace gasoline::op::pool {
namespace {

constexpr size_t kDescribeLimit = 40;

std::string range_text(int64_t min, int64_t max) {
  if (max == std::numeric_limits<int64_t>::max() || max == std::numeric_limits<int32_t>::max())
    return "must be >= " + std::to_string(min);
  return "must be between " + std::to_string(min) + " and " + std::to_string(max);
}

}  // namespace

std::string number_text(double v) {
  if (std::trunc(v) == v && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : nlohmann::json(v).dump();
}

std::string describe(const nlohmann::json& value) {
  std::string kind;
  switch (value.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::object: return "an object";
    case nlohmann::json::value_t::array: return "an array";
    case nlohmann::json::value_t::string: kind = "string "; break;
    case nlohmann::json::value_t::boolean: kind = "boolean "; break;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: kind = "integer "; break;
    case nlohmann::json::value_t::number_float: kind = "number "; break;
    default: return "an unsupported value";
  }
  // Replace rather than throw on invalid UTF-8: the message is about the value, it must not fail on it.
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // Cut at a character boundary: the message ends up in the pool's status and an Event, which must be valid UTF-8.
  if (text.size() > kDescribeLimit) {
    size_t cut = kDescribeLimit;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text = text.substr(0, cut) + "...";
  }
  return kind + text;
}

Field::Field(const nlohmann::json* value, std::string path) : value_(value), path_(std::move(path)) {}

Field Field::operator[](std::string_view key) const {
  std::string child_path = path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  // Map keys such as label names contain dots and slashes; quote them so the path stays readable.
  const bool plain = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
  if (!plain) child_path = path_ + "[\"" + std::string(key) + "\"]";
  if (!present()) return Field(nullptr, std::move(child_path));
  const auto& obj = object();
  auto it = obj.find(key);
  return Field(it == obj.end() ? nullptr : &*it, std::move(child_path));
}

Field Field::item(size_t index) const {
  std::string child_path = path_ + "[" + std::to_string(index) + "]";
  if (!present()) return Field(nullptr, std::move(child_path));
  const auto& arr = array();
  return Field(index < arr.size() ? &arr[index] : nullptr, std::move(child_path));
}

void Field::fail(const std::string& problem) const { throw SpecError(path_ + ": " + problem); }

const nlohmann::json& Field::raw() const {
  if (!present()) fail("required");
  return *value_;
}

const nlohmann::json& Field::object() const {
  if (!present()) fail("required");
  if (!value_->is_object()) fail("must be an object, got " + describe(*value_));
  return *value_;
}

const nlohmann::json& Field::array() const {
  if (!present()) fail("required");
  if (!value_->is_array()) fail("must be an array, got " + describe(*value_));
  return *value_;
}

std::string Field::string() const {
  if (!present()) fail("required");
  if (!value_->is_string()) fail("must be a string, got " + describe(*value_));
  return value_->get<std::string>();
}

bool Field::boolean() const {
  if (!present()) fail("required");
  if (!value_->is_boolean()) fail("must be a boolean, got " + describe(*value_));
  return value_->get<bool>();
}

int64_t Field::integer(int64_t min, int64_t max) const {
  if (!present()) fail("required");
  int64_t v = 0;
  if (value_->is_number_unsigned()) {
    const auto u = value_->get<uint64_t>();
    if (u > static_cast<uint64_t>(max)) fail(range_text(min, max) + ", got " + value_->dump());
    v = static_cast<int64_t>(u);
  } else if (value_->is_number_integer()) {
    v = value_->get<int64_t>();
  } else if (value_->is_number_float()) {
    // The API server stores integer fields as integers, but a hand-written 3.0 means 3.
    const double d = value_->get<double>();
    if (!std::isfinite(d) || std::trunc(d) != d) fail("must be an integer, got " + describe(*value_));
    // max + 1.0, not max: INT64_MAX rounds up to 2^63 as a double, which is out of int64_t's range, and the cast
    // below must only see values in range.
    if (d < static_cast<double>(min) || d >= static_cast<double>(max) + 1.0)
      fail(range_text(min, max) + ", got " + number_text(d));
    v = static_cast<int64_t>(d);
  } else {
    fail("must be an integer, got " + describe(*value_));
  }
  if (v < min || v > max) fail(range_text(min, max) + ", got " + std::to_string(v));
  return v;
}

double Field::number(double min, double max) const {
  if (!present()) fail("required");
  if (!value_->is_number()) fail("must be a number, got " + describe(*value_));
  const double v = value_->get<double>();
  if (!(v >= min && v <= max))
    fail("must be between " + number_text(min) + " and " + number_text(max) + ", got " + number_text(v));
  return v;
}

std::map<std::string, std::string> Field::string_map() const {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : object().items()) out.emplace(key, (*this)[key].string());
  return out;
}

std::string Field::string_or(std::string fallback) const { return present() ? string() : std::move(fallback); }
bool Field::boolean_or(bool fallback) const { return present() ? boolean() : fallback; }
int64_t Field::integer_or(int64_t fallback, int64_t min, int64_t max) const {
  return present() ? integer(min, max) : fallback;
}
double Field::number_or(double fallback, double min, double max) const {
  return present() ? number(min, max) : fallback;
}

}  // namespace gasoline::op::pool
