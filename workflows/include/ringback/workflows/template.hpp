#pragma once

#include "ringback/workflows/expr.hpp"
#include "ringback/workflows/value.hpp"

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ringback::workflows {

/// One piece of a parsed template: literal text or a `{{ expression }}`.
struct template_part {
  /// True for an expression part (the name is historical).
  bool is_variable = false;
  /// Literal text, or the expression's source (trimmed, without the braces).
  std::string text;
  std::size_t column = 0; ///< 1-based code-point column in the template
  /// The parsed expression of an expression part (empty for literal text).
  expression expr;
};

/// What `text_template::render` produced.
struct rendered_text {
  std::string text;
  /// Variables the context lacked (read as null), in order; a variable is
  /// listed once per part that reads it.
  std::vector<std::string> missing;
  /// Parts whose evaluation failed (they render as empty text), e.g.
  /// "cannot compare number with string at column 4 of the template".
  std::vector<std::string> errors;
  /// The output was cut at `max_bytes` (on a UTF-8 boundary).
  bool truncated = false;
};

/// A plain-text template: literal text with `{{ expression }}` parts, e.g.
/// `Hi {{ call.from | phone }}`, `{{ tenant.name | default("us") }}` (the
/// expression language of expr.hpp; spaces inside the braces optional).
/// Output is plain text, never escaped (SMS bodies are plain text); a value
/// renders as `value::to_text` (null as empty text). There is no escape for a
/// literal `{{`; a lone `}}` is literal text; a `}}` inside a string literal
/// of an expression does not close it.
class text_template {
public:
  /// Longest template source accepted, in bytes.
  static constexpr std::size_t max_source_bytes = 4096;

  /// Default cap of `render`'s output, in bytes.
  static constexpr std::size_t default_max_output = 8192;

  text_template() = default;

  const std::string& source() const {
    return source_;
  }

  const std::vector<template_part>& parts() const {
    return parts_;
  }

  /// Every variable the expression parts read, in source order (repeats
  /// included), with columns counted in the template's source.
  std::vector<variable_ref> variables() const;

  /// True when the whole source is one `{{ expr }}` (no text around it):
  /// `evaluate_value` then keeps the expression's kind (`"{{ 1 + 2 }}"` is
  /// the number 3).
  bool is_single_expression() const;

  /// True when no part reads a variable (the output never changes).
  bool is_constant() const;

  /// Renders against `ctx`. A variable missing from `ctx` reads as null and
  /// is listed in `missing`; a part whose evaluation fails renders as empty
  /// text and its error is listed in `errors`. The output is at most
  /// `max_bytes` long. Never throws (returns empty text if memory runs out).
  rendered_text render(const context& ctx, std::size_t max_bytes
                                           = default_max_output) const noexcept;

  /// The value of a single-expression template (see
  /// `is_single_expression`), else the rendered text (at most
  /// `limits.max_text_bytes`) as a string. On error (the first failing
  /// part's, with its column) the result is null. Never throws.
  eval_result evaluate_value(const context& ctx,
                             const eval_limits& limits = {}) const noexcept;

private:
  friend struct template_parser;
  rendered_text render_with(const context& ctx, std::size_t max_bytes,
                            const eval_limits& limits) const;

  std::string source_;
  std::vector<template_part> parts_;
};

/// The outcome of `parse_template`.
struct template_parse_result {
  text_template value;
  /// Empty on success; else e.g. "unterminated '{{' at column 12 of the
  /// template (expected '}}')", "unknown filter 'lowr' (did you mean
  /// 'lower'?) at column 15 of the template".
  std::string error;

  bool ok() const {
    return error.empty();
  }
};

/// Parses a template. Errors (the first one only): longer than
/// `max_source_bytes`, an unterminated `{{`, an empty `{{ }}`, any error of
/// an expression part (see `parse_expression`), each naming its column in
/// the template. Columns count code points, 1-based. Never throws.
template_parse_result parse_template(std::string_view source);

} // namespace ringback::workflows
