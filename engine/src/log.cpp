#include "ringback/engine/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace ringback::engine {

namespace {

std::atomic<int> min_level{static_cast<int>(log_level::info)};

const char* level_name(log_level level) {
  switch (level) {
    case log_level::debug:
      return "DEBUG";
    case log_level::info:
      return "INFO";
    case log_level::warn:
      return "WARN";
    case log_level::error:
      return "ERROR";
  }
  return "?";
}

} // namespace

void set_log_level(log_level level) {
  min_level = static_cast<int>(level);
}

bool parse_log_level(std::string_view text, log_level& out) {
  static constexpr std::string_view names[] = {"debug", "info", "warn", "error"};
  for (int i = 0; i < 4; ++i)
    if (text == names[i]) {
      out = static_cast<log_level>(i);
      return true;
    }
  return false;
}

void log(log_level level, std::string_view component, std::string_view message) {
  if (static_cast<int>(level) < min_level.load(std::memory_order_relaxed))
    return;
  using namespace std::chrono;
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  std::string line;
  line.reserve(48 + component.size() + message.size());
  line += stamp;
  line += ' ';
  line += level_name(level);
  line += ' ';
  line += component;
  line += ": ";
  line += message;
  line += '\n';
  // One fwrite per line: stdio locks the stream, so lines never interleave.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

} // namespace ringback::engine
