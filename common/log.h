#pragma once
// Structured JSON logs, one object per line on stderr:
//   {"ts":"2026-11-28T15:00:00.123Z","level":"info","component":"kv","msg":"...","k":"v"}
// Fields are a JSON object so values keep their types; spdlog does the I/O.
#include <nlohmann/json.hpp>
#include <string_view>

namespace gasoline::log {

enum class Level { kDebug, kInfo, kWarn, kError };

// Names the process in every line ("kv", "worker", "operator", ...) and sets the minimum level.
void init(std::string_view component, Level min_level = Level::kInfo);
std::optional<Level> parse_level(std::string_view);

void write(Level level, std::string_view msg, const nlohmann::json& fields = nlohmann::json::object());
inline void debug(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { write(Level::kDebug, m, f); }
inline void info(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { write(Level::kInfo, m, f); }
inline void warn(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { write(Level::kWarn, m, f); }
inline void error(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { write(Level::kError, m, f); }

}  // namespace gasoline::log
