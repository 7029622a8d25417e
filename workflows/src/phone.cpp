#include "ringback/workflows/phone.hpp"

namespace ringback::workflows {

std::optional<std::string> normalize_e164(std::string_view x) {
  if (x.size() > 64) {
    return std::nullopt;
  }
  std::string out;
  for (char c : x) {
    if (c != ' ' && c != '-' && c != '.' && c != '(' && c != ')') {
      out += c;
    }
  }
  if (!is_e164(out)) {
    return std::nullopt;
  }
  return out;
}

} // namespace ringback::workflows
