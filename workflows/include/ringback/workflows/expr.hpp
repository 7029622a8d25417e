#pragma once

#include "ringback/workflows/value.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

/// The expression language of workflows: conditions (`if: business_hours and
/// not (sms.body | lower contains "stop")`) and the `{{ ... }}` parts of
/// templates.
///
/// Literals
///   "text" or 'text' (escapes \" \' \\ \n \t), numbers (12, 2.5, -3; no
///   exponents), true, false, null. A list literal `["a", "b", x]` may only
///   stand right of `in` / `not in`; its items are any expressions.
///
/// Variables
///   Dotted paths: `call.from`, `steps.lookup.json.items.0.name`. The first
///   segment is an identifier (`[A-Za-z_][A-Za-z0-9_]*`), later ones are
///   `[A-Za-z0-9_]+`. The whole dotted name is looked up in the flat
///   `context`; a name the context lacks reads as null and is listed in
///   `eval_result::missing`. `and`, `or`, `not`, `contains`, `matches`, `in`,
///   `true`, `false`, `null` are keywords, not variables.
///
/// Operators, lowest precedence first
///   a or b                short-circuit; the result is a boolean (truthiness:
///   a and b               null, false, 0, NaN and "" are false)
///   not a                 boolean negation
///   == != < <= > >=       `==`/`!=` compare kind and content (a number never
///                         equals a string); `< <= > >=` need two numbers or
///                         two strings (byte order), else an evaluation error
///   a contains b          text contains text, case-sensitive
///   a matches "re"        RE2 partial match; the right operand must be a
///                         string literal (compiled once, at parse time); use
///                         `(?i)` for a case-insensitive match
///   a in [..], a in b     membership in a list literal (by `==`, items
///                         evaluated until one matches), or text in text;
///                         `a not in b` negates
///   a + b, a - b          numbers; `+` also joins two texts
///   a * b, a / b          numbers (division by zero is an evaluation error)
///   -a                    negation of a number
///   a | filter(args)      applies a filter (see `filter_docs()`)
///   (a)                   grouping
///   Comparisons, `contains`, `matches` and `in` do not chain: `a == b == c`
///   is a parse error (use `and` or parentheses). For `contains`, `matches`
///   and the text form of `in`, null reads as "". Type errors (`1 < "a"`,
///   `1 + "a"`, `3 contains "3"`) are evaluation errors, never coercions.
///   Overflow is no error: it yields Infinity.
///
/// Filters
///   lower, upper          ASCII case mapping (other characters unchanged)
///   trim                  drops leading and trailing whitespace
///   truncate(n)           at most n code points (UTF-8 safe); n must be a
///                         whole number >= 0
///     (these four turn a number or boolean into its text first; null stays
///     null)
///   default(x)            x when the input is null or "" (x is evaluated only
///                         then), else the input
///   phone                 +15005550100 -> (500) 555-0100 for +1 numbers;
///                         other E.164 numbers as E.164; any other value as is
///   e164                  text normalized to E.164 (`phone.hpp`), else null
///   length                code points of the text (null: 0; numbers and
///                         booleans: of their text)
///   number                text parsed as a number (sign, digits, fraction,
///                         exponent; surrounding whitespace ignored), a number
///                         as is, anything else null
///   An unknown filter or a wrong number of arguments is a parse error.
///
/// Safety: an expression sees only the context. Sources are at most 4096
/// bytes, nest at most 32 levels, have at most 512 nodes and 8 `matches`
/// (else a parse error); evaluation counts one step per node against
/// `eval_limits::max_steps`; every text read or made is cut to
/// `eval_limits::max_text_bytes` (on a UTF-8 boundary); regular expressions
/// run in RE2 (linear time, 256 KiB of memory each). Invalid UTF-8 is carried
/// as bytes, never a crash.
namespace ringback::workflows {

/// A variable an expression reads.
struct variable_ref {
  std::string name;
  /// 1-based code-point column in the source given to the parse function
  /// (the template's for a template part, the condition's for a condition).
  std::size_t column = 0;

  friend bool operator==(const variable_ref& a, const variable_ref& b) {
    return a.name == b.name && a.column == b.column;
  }
};

/// Bounds for one evaluation.
struct eval_limits {
  /// Nodes evaluated before the evaluation fails.
  std::size_t max_steps = 10'000;
  /// Every text read or computed is cut to this many bytes.
  std::size_t max_text_bytes = 8192;
};

/// What `expression::evaluate` computed.
struct eval_result {
  /// null on error.
  value result;
  /// Empty on success, e.g. "cannot compare number with string".
  std::string error;
  /// Variables the context lacked (they evaluated to null), each once, in
  /// the order they were read.
  std::vector<std::string> missing;

  bool ok() const {
    return error.empty();
  }
};

namespace detail {
struct expr_tree;
} // namespace detail

/// A parsed expression. Immutable and cheap to copy (the tree is shared);
/// safe to evaluate from many threads at once.
class expression {
public:
  /// Largest source accepted, in bytes.
  static constexpr std::size_t max_source_bytes = 4096;
  /// Deepest nesting of parentheses, lists, filter arguments, `not` and `-`.
  static constexpr std::size_t max_depth = 32;
  /// Most nodes (literals, variables, operators, filters) in one expression.
  static constexpr std::size_t max_nodes = 512;
  /// Most `matches` in one expression.
  static constexpr std::size_t max_regexes = 8;
  /// RE2's memory budget for each regular expression, in bytes.
  static constexpr std::int64_t max_regex_memory = std::int64_t{256} * 1024;

  /// An empty expression: evaluates to null without error.
  expression() = default;

  /// The expression's text (trimmed; without the `{{ }}` of a condition or a
  /// template part).
  const std::string& source() const;

  /// Every variable read, in source order (repeats included).
  std::vector<variable_ref> variables() const;

  /// Evaluates against `ctx`. Never throws: running out of memory, steps or
  /// a type error yields `error`.
  eval_result evaluate(const context& ctx,
                       const eval_limits& limits = {}) const noexcept;

  /// Evaluates and appends the text form of the result (`value::to_text`)
  /// to `out`, the missing variables to `missing`; returns the error (empty
  /// on success, when nothing is appended). Saves a copy of the result for
  /// templates. Never throws.
  std::string append_text(const context& ctx, const eval_limits& limits,
                          std::string& out,
                          std::vector<std::string>& missing) const noexcept;

  /// True for a default-constructed expression.
  bool empty() const {
    return tree_ == nullptr;
  }

  /// True when it reads no variable (its value never changes).
  bool is_constant() const;

private:
  friend struct expr_parser;
  std::shared_ptr<const detail::expr_tree> tree_;
};

/// The outcome of `parse_expression` and `parse_condition`.
struct expr_parse_result {
  expression value;
  /// Empty on success; else the first problem, e.g. "unknown filter 'lowr'
  /// (did you mean 'lower'?)".
  std::string error;
  /// 1-based code-point column of the problem in the source.
  std::size_t column = 0;

  bool ok() const {
    return error.empty();
  }
};

/// Parses a whole expression. Never throws.
expr_parse_result parse_expression(std::string_view source);

/// A condition as written in YAML: a bare expression, or one whole
/// `{{ expr }}`. Columns (of errors and variables) count in `source`. Never
/// throws.
expr_parse_result parse_condition(std::string_view source);

/// Parses `source[begin, end)` as an expression, with columns counted from
/// the start of `source` (template parts use it). Never throws.
expr_parse_result parse_expression_in(std::string_view source,
                                      std::size_t begin, std::size_t end);

/// One entry of the reference documentation.
struct syntax_doc {
  std::string name;  ///< "truncate", "contains"
  std::string usage; ///< "x | truncate(n)", "a contains b"
  std::string doc;   ///< one line
};

/// Every filter, in a stable order.
const std::vector<syntax_doc>& filter_docs();

/// Every operator, lowest precedence first.
const std::vector<syntax_doc>& operator_docs();

/// The filter names (for did-you-mean).
const std::vector<std::string>& filter_names();

} // namespace ringback::workflows
