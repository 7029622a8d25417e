#pragma once

#include <chrono>
#include <string_view>

namespace ringback::engine {

enum class log_level : unsigned char { debug, info, warn, error };

/// Writes one line `2026-11-21T05:40:00.123Z INFO component: message` to
/// stderr (file descriptor 2). Thread-safe; a line is written whole, and
/// lines keep their order. Unbuffered by default: each line is one write
/// when it is logged. See `set_log_buffering`.
void log(log_level level, std::string_view component, std::string_view message);

/// Lines below this level are dropped (default: info).
void set_log_level(log_level level);

/// Parses debug|info|warn|error.
bool parse_log_level(std::string_view text, log_level& out);

/// From now on, debug and info lines are gathered and written together (one
/// write for many lines) at most `max_delay` after the first of them, or
/// sooner when 32 KiB are pending; a warn or error line writes what is
/// pending and itself at once. A background thread does the timed writes.
/// The pending lines are written by `flush_log`, by a later call here, and
/// at normal exit; a process killed with SIGKILL loses at most `max_delay`
/// of info lines. Zero: back to one write per line. For the server, where a
/// busy process logs thousands of lines a second.
void set_log_buffering(std::chrono::milliseconds max_delay);

/// Writes the pending lines now (no-op when unbuffered).
void flush_log();

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
