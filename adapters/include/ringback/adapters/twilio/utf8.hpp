#pragma once

#include <cstddef>
#include <string_view>

/// Minimal UTF-8 decoding for the Twilio helpers (signature ordering, XML
/// escaping). Pure functions, safe from any thread.
namespace ringback::adapters::twilio {

/// One decoded code point and the number of bytes it took.
struct utf8_char {
  char32_t code_point = 0;
  std::size_t length = 0; // 0: the bytes at `pos` are not valid UTF-8
};

/// Decodes the code point that starts at `text[pos]` (precondition:
/// `pos < text.size()`). Rejects overlong forms, surrogates (U+D800..DFFF),
/// values above U+10FFFF and truncated sequences with `length == 0`.
utf8_char decode_utf8(std::string_view text, std::size_t pos);

/// U+FFFD, what invalid bytes decode to.
inline constexpr char32_t replacement_character = 0xFFFD;

} // namespace ringback::adapters::twilio
