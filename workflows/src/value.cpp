#include "ringback/workflows/value.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <ostream>

namespace ringback::workflows {

bool value::truthy() const {
  switch (kind_) {
    case kind::null:
      return false;
    case kind::boolean:
      return bool_;
    case kind::number:
      return number_ != 0 && !std::isnan(number_);
    case kind::string:
      return !string_.empty();
  }
  return false;
}

std::string value::to_text() const {
  switch (kind_) {
    case kind::null:
      return {};
    case kind::boolean:
      return bool_ ? "true" : "false";
    case kind::number: {
      if (std::isnan(number_))
        return "NaN";
      if (std::isinf(number_))
        return number_ > 0 ? "Infinity" : "-Infinity";
      if (number_ == 0)
        return "0"; // not "-0"
      std::array<char, 32> buf{};
      auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(),
                                     number_);
      return ec == std::errc{} ? std::string(buf.data(), end) : std::string{};
    }
    case kind::string:
      return string_;
  }
  return {};
}

bool operator==(const value& a, const value& b) {
  if (a.kind_ != b.kind_)
    return false;
  switch (a.kind_) {
    case value::kind::null:
      return true;
    case value::kind::boolean:
      return a.bool_ == b.bool_;
    case value::kind::number:
      return a.number_ == b.number_;
    case value::kind::string:
      return a.string_ == b.string_;
  }
  return false;
}

const char* to_string(value::kind x) {
  switch (x) {
    case value::kind::null:
      return "null";
    case value::kind::boolean:
      return "boolean";
    case value::kind::number:
      return "number";
    case value::kind::string:
      return "string";
  }
  return "?";
}

std::ostream& operator<<(std::ostream& out, const value& x) {
  switch (x.type()) {
    case value::kind::null:
      return out << "null";
    case value::kind::string:
      return out << '"' << x.as_string() << '"';
    default:
      return out << x.to_text();
  }
}

} // namespace ringback::workflows
