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
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+' && plus == plus_decoding::space) {
      out.push_back(' ');
    } else if (c != '%') {
      out.push_back(c);
    } else {
      const int hi = i + 1 < in.size() ? hex_value(in[i + 1]) : -1;
      const int lo = i + 2 < in.size() ? hex_value(in[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return i;
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    }
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
