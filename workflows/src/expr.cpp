// The expression handle, the filter table and the reference documentation.
// Parsing is in expr_parse.cpp, evaluation in expr_eval.cpp.
#include "ringback/workflows/expr.hpp"

#include "ringback/workflows/yaml_source.hpp"

#include "expr_tree.hpp"

#include <cmath>

namespace ringback::workflows {

namespace detail {

const std::vector<filter_spec>& filter_table() {
  static const std::vector<filter_spec> xs{
    {"lower", filter_id::lower, 0, nullptr, "x | lower",
     "The text in lower case (ASCII letters only; other characters are kept)."},
    {"upper", filter_id::upper, 0, nullptr, "x | upper",
     "The text in upper case (ASCII letters only; other characters are kept)."},
    {"trim", filter_id::trim, 0, nullptr, "x | trim",
     "The text without leading and trailing whitespace."},
    {"default", filter_id::default_, 1, "x", "x | default(y)",
     "y when x is null (e.g. a missing variable) or empty text, else x."},
    {"phone", filter_id::phone, 0, nullptr, "x | phone",
     "A phone number for people: +15005550100 reads (500) 555-0100; other "
     "countries stay E.164; text that is not a number is kept as is."},
    {"e164", filter_id::e164, 0, nullptr, "x | e164",
     "The number in E.164 form (\"+1 (500) 555-0100\" -> +15005550100), or "
     "null if it is not one."},
    {"truncate", filter_id::truncate, 1, "n", "x | truncate(n)",
     "At most n characters (code points) of the text; never splits one."},
    {"length", filter_id::length, 0, nullptr, "x | length",
     "The number of characters (code points) of the text; 0 for null."},
    {"number", filter_id::number, 0, nullptr, "x | number",
     "The text read as a number (\" 42 \" -> 42, \"2.5e3\" -> 2500), or null "
     "if it is not one."},
  };
  return xs;
}

std::string describe(const value& x) {
  if (!x.is_string()) {
    return x.is_null() ? "null" : x.to_text();
  }
  std::string s(x.as_string(), 0, 4 * 32 + 4);
  bool cut = truncate_code_points(s, 32) || s.size() < x.as_string().size();
  return "'" + s + (cut ? "...'" : "'");
}

std::string check_truncate_arg(const value& x) {
  if (x.is_number() && std::isfinite(x.as_number()) && x.as_number() >= 0
      && std::floor(x.as_number()) == x.as_number()) {
    return {};
  }
  return "truncate(n) needs a whole number n >= 0, got " + describe(x);
}

} // namespace detail

const std::string& expression::source() const {
  static const std::string empty;
  return tree_ ? tree_->source : empty;
}

std::vector<variable_ref> expression::variables() const {
  return tree_ ? tree_->variables : std::vector<variable_ref>{};
}

bool expression::is_constant() const {
  return !tree_ || tree_->variables.empty();
}

const std::vector<std::string>& filter_names() {
  static const std::vector<std::string> xs = [] {
    std::vector<std::string> out;
    for (const auto& f : detail::filter_table()) {
      out.emplace_back(f.name);
    }
    return out;
  }();
  return xs;
}

const std::vector<syntax_doc>& filter_docs() {
  static const std::vector<syntax_doc> xs = [] {
    std::vector<syntax_doc> out;
    for (const auto& f : detail::filter_table()) {
      out.push_back({f.name, f.usage, f.doc});
    }
    return out;
  }();
  return xs;
}

const std::vector<syntax_doc>& operator_docs() {
  static const std::vector<syntax_doc> xs{
    {"or", "a or b",
     "True if either side is truthy; b is not evaluated when a is. Lowest "
     "precedence."},
    {"and", "a and b",
     "True if both sides are truthy; b is not evaluated when a is not."},
    {"not", "not a",
     "True if a is not truthy (null, false, 0 and empty text are not)."},
    {"==", "a == b",
     "Same kind and same content; a number never equals a text."},
    {"!=", "a != b", "The opposite of ==."},
    {"<", "a < b",
     "Compares two numbers or two texts (byte order); anything else is an "
     "error. Also <=, >, >=."},
    {"contains", "a contains b",
     "True if text a contains text b (case-sensitive; null reads as empty "
     "text)."},
    {"matches", "a matches \"regex\"",
     "True if the RE2 regular expression (a string literal) matches part of "
     "text a; (?i) ignores case, ^ and $ anchor."},
    {"in", "a in [x, y], a in b",
     "True if a equals an item of the list, or text a occurs in text b. "
     "`not in` negates."},
    {"+", "a + b", "Adds two numbers or joins two texts. Also - (numbers)."},
    {"*", "a * b",
     "Multiplies two numbers. Also / (division by zero is an "
     "error)."},
    {"-", "-a", "Negates a number."},
    {"|", "a | filter, a | filter(arg)",
     "Applies a filter to a; binds tighter than every other operator."},
    {"( )", "(a)", "Grouping."},
  };
  return xs;
}

} // namespace ringback::workflows
