#include "ringback/adapters/detail/percent.hpp"

namespace ringback::adapters::detail {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

} // namespace

std::optional<std::size_t>
percent_decode_into(std::string_view in, std::string& out, plus_decoding plus) {
  out.reserve(out.size() + in.size());
  const bool plus_is_space = plus == plus_decoding::space;
  std::size_t i = 0;
  while (i < in.size()) {
    // The run of bytes that stay as they are, appended at once.
    auto j = i;
    while (j < in.size() && in[j] != '%' && (in[j] != '+' || !plus_is_space))
      ++j;
    out.append(in.data() + i, j - i);
    if (j == in.size())
      break;
    if (in[j] == '+') {
      out.push_back(' ');
      i = j + 1;
      continue;
    }
    const int hi = j + 1 < in.size() ? hex_value(in[j + 1]) : -1;
    const int lo = j + 2 < in.size() ? hex_value(in[j + 2]) : -1;
    if (hi < 0 || lo < 0) {
      return j;
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i = j + 3;
  }
  return std::nullopt;
}

std::optional<std::string> percent_decode(std::string_view in,
                                          plus_decoding plus) {
  std::string out;
  if (percent_decode_into(in, out, plus)) {
    return std::nullopt;
  }
  return out;
}

} // namespace ringback::adapters::detail
