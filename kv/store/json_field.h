#pragma once
// Reading typed fields out of untrusted JSON/MessagePack maps. nlohmann's get<int>() of 1e30 or of -1 into an
// unsigned field is undefined behaviour, so numbers are checked against the target type first.
#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace gasoline::store {

// Converts one JSON value to T, or throws std::invalid_argument naming `key`.
template <typename T>
T json_as(const nlohmann::json& v, const char* key) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) throw std::invalid_argument(std::string("'") + key + "' must be a boolean");
    return v.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (v.is_number_unsigned()) {
      auto u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<T>::max()))
        throw std::invalid_argument(std::string("'") + key + "' is out of range");
      return static_cast<T>(u);
    }
    if (v.is_number_integer()) {
      auto i = v.get<int64_t>();
      if constexpr (std::is_unsigned_v<T>) {
        if (i < 0) throw std::invalid_argument(std::string("'") + key + "' must not be negative");
        if (static_cast<uint64_t>(i) > static_cast<uint64_t>(std::numeric_limits<T>::max()))
          throw std::invalid_argument(std::string("'") + key + "' is out of range");
      } else {
        if (i < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
            i > static_cast<int64_t>(std::numeric_limits<T>::max()))
          throw std::invalid_argument(std::string("'") + key + "' is out of range");
      }
      return static_cast<T>(i);
    }
    throw std::invalid_argument(std::string("'") + key + "' must be an integer");
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) throw std::invalid_argument(std::string("'") + key + "' must be a number");
    return v.get<T>();
  } else {
    return v.get<T>();  // strings and containers: nlohmann throws type_error on a mismatch
  }
}

// The field `key` of map `j`, or `fallback` when it is absent or null.
template <typename T>
T json_field(const nlohmann::json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  return json_as<T>(*it, key);
}

}  // namespace gasoline::store
