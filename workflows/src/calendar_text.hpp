#pragma once

// Text helpers shared by the calendar parsers (calendar.cpp, calendar_cron.cpp).

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <string>
#include <string_view>

namespace ringback::workflows::calendar_text {

inline bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

inline bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

inline std::string lower(std::string_view x) {
  std::string out(x);
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// 1-based column of byte `pos` in `text`, counted in UTF-8 code points.
inline std::size_t column_of(std::string_view text, std::size_t pos) {
  pos = std::min(pos, text.size());
  std::size_t n = 0;
  for (std::size_t i = 0; i < pos; ++i)
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80)
      ++n;
  return n + 1;
}

/// Quotes a piece of untrusted text for a message, cut to `max` bytes
/// without leaving half a UTF-8 sequence.
inline std::string quoted(std::string_view x, std::size_t max) {
  std::string s(x.substr(0, max));
  while (s.size() < x.size() && !s.empty()
         && (static_cast<unsigned char>(s.back()) & 0xC0) == 0x80)
    s.pop_back();
  if (s.size() < x.size() && !s.empty()
      && (static_cast<unsigned char>(s.back()) & 0x80) != 0)
    s.pop_back();
  return "'" + s + (s.size() < x.size() ? "...'" : "'");
}

} // namespace ringback::workflows::calendar_text
