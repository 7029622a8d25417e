#pragma once

#include "ringback/workflows/template.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ringback::workflows {

struct step_spec;

/// The kinds of value a step field can hold. Grows with the language
/// (durations, numbers, nested step lists, expressions).
enum class field_kind : std::uint8_t {
  text, ///< a `text_template`
};

const char* to_string(field_kind x);

/// A validated field of a step.
struct field_value {
  field_kind kind = field_kind::text;
  text_template text; ///< kind == text
  int line = 0;       ///< 1-based position of the value; 0 for a default
  int column = 0;
  bool defaulted = false; ///< filled in from the field's default
};

/// One validated step. Every field of its spec that has a value (given or
/// defaulted) is in `fields`.
struct step {
  std::string id;        ///< as written; may be empty
  std::size_t index = 0; ///< position in the workflow's steps
  std::string type;      ///< e.g. "send_sms"
  int line = 0;          ///< 1-based position of the step
  int column = 0;
  std::map<std::string, field_value, std::less<>> fields;
  /// The registry entry that validated it; runs it. Never null in a loaded
  /// workflow.
  std::shared_ptr<const step_spec> spec;

  /// `id`, or `#<index>` when none was written ('#' is not allowed in ids).
  std::string display_id() const;

  /// Null if absent.
  const field_value* field(std::string_view name) const;
};

/// One validated workflow file.
struct workflow {
  std::string name;
  std::string description;
  std::string trigger;
  std::string file;  ///< the display name it was loaded under
  int name_line = 0; ///< 1-based position of the `name` value
  int name_column = 0;
  std::vector<step> steps;
};

} // namespace ringback::workflows
