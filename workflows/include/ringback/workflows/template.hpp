#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ringback::workflows {

/// Values a workflow run can see, by variable name (`call.from`,
/// `tenant.name`, ...). Built by whoever fires the trigger.
using context = std::map<std::string, std::string, std::less<>>;

/// One piece of a parsed template: literal text or a variable reference.
struct template_part {
  bool is_variable = false;
  std::string text;       ///< literal text, or the variable name
  std::size_t column = 0; ///< 1-based code-point column in the template
};

/// What `text_template::render` produced.
struct rendered_text {
  std::string text;
  /// Variables the context lacked (rendered as empty text), in order.
  std::vector<std::string> missing;
  /// The output was cut at `max_bytes` (on a UTF-8 boundary).
  bool truncated = false;
};

/// A plain-text template: literal text with `{{ name.path }}` placeholders
/// (spaces inside the braces optional). Output is plain text, never escaped
/// (SMS bodies are plain text). There is no escape for a literal `{{`; a lone
/// `}}` is literal text.
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

  /// The variable parts, in order (repeats included).
  std::vector<template_part> variables() const;

  /// Substitutes variables from `ctx`. A variable missing from `ctx` renders
  /// as empty text and is listed in `missing`. The output is at most
  /// `max_bytes` long. Never throws (returns empty text if memory runs out).
  rendered_text render(const context& ctx, std::size_t max_bytes
                                           = default_max_output) const noexcept;

private:
  friend struct template_parser;
  std::string source_;
  std::vector<template_part> parts_;
};

/// The outcome of `parse_template`.
struct template_parse_result {
  text_template value;
  /// Empty on success; else e.g. "unterminated '{{' at column 12 of the
  /// template (expected '}}')".
  std::string error;

  bool ok() const {
    return error.empty();
  }
};

/// Parses a template. Errors (the first one only): longer than
/// `max_source_bytes`, an unterminated `{{`, an empty `{{ }}`, a name that is
/// not `identifier(.identifier)*`. Columns count code points, 1-based.
template_parse_result parse_template(std::string_view source);

} // namespace ringback::workflows
