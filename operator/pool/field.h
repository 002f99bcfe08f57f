#pragma once
// Typed reads of one JSON field that know their own path, so every type or range error names the field
// ("spec.sidecar.concurrency: must be between 1 and 4096, got 0") without the caller spelling the path twice.
// A null counts as absent: the API server prunes nulls of non-nullable fields before defaulting, so a null in a
// hand-written pool must mean the same as leaving the field out.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace gasoline::op::pool {

class Field {
 public:
  // `value` may be null (the field is absent); it must outlive the Field.
  Field(const nlohmann::json* value, std::string path);

  // A missing or null key of a present object is an absent Field; reading a key of a non-object fails.
  Field operator[](std::string_view key) const;
  Field item(size_t index) const;

  bool present() const { return value_ != nullptr && !value_->is_null(); }
  const std::string& path() const { return path_; }

  [[noreturn]] void fail(const std::string& problem) const;

  // The value itself; fails if absent.
  const nlohmann::json& raw() const;

  // Each accessor fails unless the field is present and of that type (or in that range).
  const nlohmann::json& object() const;
  const nlohmann::json& array() const;
  std::string string() const;
  bool boolean() const;
  int64_t integer(int64_t min, int64_t max) const;  // integral numbers only; 3.0 counts, 3.5 does not
  double number(double min, double max) const;
  std::map<std::string, std::string> string_map() const;

  // The same with a default for an absent field.
  std::string string_or(std::string fallback) const;
  bool boolean_or(bool fallback) const;
  int64_t integer_or(int64_t fallback, int64_t min, int64_t max) const;
  double number_or(double fallback, double min, double max) const;

 private:
  const nlohmann::json* value_;
  std::string path_;
};

// "string \"abc\"", "integer 3", "object": what a value is, for error messages. Long values are cut.
std::string describe(const nlohmann::json& value);

// 50 rather than 50.0, else the shortest text that reads back as the same double (92.5): stable bytes for the
// rendered env and readable numbers in messages.
std::string number_text(double value);

}  // namespace gasoline::op::pool
