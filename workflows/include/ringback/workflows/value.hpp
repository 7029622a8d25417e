#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <string>
#include <string_view>
#include <utility>

namespace ringback::workflows {

/// A value a workflow run computes with: the variables of its context, the
/// results of expressions and of steps. Deliberately small: null, boolean,
/// number (a double; integers print without a fraction) and text.
class value {
public:
  enum class kind : std::uint8_t { null, boolean, number, string };

  value() = default;
  value(std::nullptr_t) {
    // nop
  }
  value(bool x) : kind_(kind::boolean), bool_(x) {
    // nop
  }
  value(double x) : kind_(kind::number), number_(x) {
    // nop
  }
  value(int x) : kind_(kind::number), number_(x) {
    // nop
  }
  value(std::int64_t x) : kind_(kind::number), number_(static_cast<double>(x)) {
    // nop
  }
  value(std::string x) : kind_(kind::string), string_(std::move(x)) {
    // nop
  }
  value(std::string_view x) : kind_(kind::string), string_(x) {
    // nop
  }
  value(const char* x) : kind_(kind::string), string_(x) {
    // nop
  }

  kind type() const {
    return kind_;
  }
  bool is_null() const {
    return kind_ == kind::null;
  }
  bool is_bool() const {
    return kind_ == kind::boolean;
  }
  bool is_number() const {
    return kind_ == kind::number;
  }
  bool is_string() const {
    return kind_ == kind::string;
  }

  /// Preconditions: the matching `is_...()`.
  bool as_bool() const {
    return bool_;
  }
  double as_number() const {
    return number_;
  }
  const std::string& as_string() const {
    return string_;
  }

  /// null, false, 0, NaN and "" are false; everything else is true.
  bool truthy() const;

  /// How the value reads in a template: "" for null, "true"/"false",
  /// numbers in the shortest form that reads back the same (3, 2.5, 1e+21),
  /// text as is.
  std::string to_text() const;

  /// Same kind and same content (numbers compare as doubles).
  friend bool operator==(const value& a, const value& b);
  friend bool operator!=(const value& a, const value& b) {
    return !(a == b);
  }

private:
  kind kind_ = kind::null;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
};

/// "null", "boolean", "number", "string".
const char* to_string(value::kind x);

/// For logs and test failures: `null`, `true`, `3`, `"text"` (text quoted
/// as is, not escaped).
std::ostream& operator<<(std::ostream& out, const value& x);

/// Values a workflow run can see, by variable name (`call.from`,
/// `tenant.name`, `steps.lookup.status`, ...): one flat map of dotted names,
/// built by whoever fires the trigger and grown by the run's steps.
using context = std::map<std::string, value, std::less<>>;

} // namespace ringback::workflows
