#include "ringback/workflows/phone.hpp"

namespace ringback::workflows {

bool is_e164(std::string_view x) {
  if (x.size() < 9 || x.size() > 16 || x[0] != '+' || x[1] == '0') {
    return false;
  }
  for (std::size_t i = 1; i < x.size(); ++i) {
    if (x[i] < '0' || x[i] > '9') {
      return false;
    }
  }
  return true;
}

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
