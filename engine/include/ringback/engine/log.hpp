#pragma once

#include <string_view>

namespace ringback::engine {

enum class log_level : unsigned char { debug, info, warn, error };

/// Writes one line `2026-11-21T05:40:00.123Z INFO component: message` to
/// stderr. Thread-safe; a line is written whole.
void log(log_level level, std::string_view component, std::string_view message);

/// Lines below this level are dropped (default: info).
void set_log_level(log_level level);

/// Parses debug|info|warn|error.
bool parse_log_level(std::string_view text, log_level& out);

inline void log_info(std::string_view component, std::string_view message) {
  log(log_level::info, component, message);
}

inline void log_warn(std::string_view component, std::string_view message) {
  log(log_level::warn, component, message);
}

inline void log_error(std::string_view component, std::string_view message) {
  log(log_level::error, component, message);
}

} // namespace ringback::engine
