#pragma once

#include "ringback/workflows/expr.hpp"
#include "ringback/workflows/template.hpp"
#include "ringback/workflows/value.hpp"

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
struct program;

/// The kinds of value a step field can hold.
enum class field_kind : std::uint8_t {
  text,      ///< a template: `"Hi {{ call.from }}"`
  condition, ///< an expression: `business_hours and call.from != ""`
  duration,  ///< `20s`, `10m`, `2h`, `1d`, or a number of seconds
  integer,   ///< a whole number within the field's bounds
  boolean,   ///< true / false
  choice,    ///< one word out of the field's `choices`
  text_list, ///< a list of templates (a single scalar is a list of one)
  text_map,  ///< a map of names to templates (e.g. HTTP headers)
  json,      ///< any YAML tree, sent as JSON; its strings are templates
};

const char* to_string(field_kind x);

/// A YAML tree kept as a JSON template: strings are templates rendered at
/// run time, everything else is sent as written.
struct json_template {
  enum class kind : std::uint8_t {
    null,
    boolean,
    number,
    string,
    array,
    object
  };
  kind what = kind::null;
  bool flag = false;
  double number = 0;
  text_template text;
  std::vector<json_template> items;                           // array
  std::vector<std::pair<std::string, json_template>> members; // object
};

/// A validated field of a step.
struct field_value {
  field_kind kind = field_kind::text;
  text_template text;              ///< text, choice (as a constant template)
  expression expr;                 ///< condition
  std::int64_t number = 0;         ///< integer; duration in milliseconds
  bool flag = false;               ///< boolean
  std::vector<text_template> list; ///< text_list
  std::vector<std::pair<std::string, text_template>> map; ///< text_map
  json_template json;                                     ///< json
  int line = 0; ///< 1-based position of the value; 0 for a default
  int column = 0;
  bool defaulted = false; ///< filled in from the field's default
};

struct step;

/// A named list of steps nested in a step: `then`, `else`, one `cases`
/// entry, `default`, `on_reply`, `on_timeout`, `on_transcription`, `steps`.
struct branch {
  std::string name;  ///< the key, e.g. "then"; "case" for a `cases` entry
  std::string label; ///< a `cases` entry's key
  int line = 0;
  int column = 0;
  std::vector<step> steps;
};

/// One validated step.
struct step {
  std::string id;          ///< as written; may be empty
  std::string type;        ///< e.g. "send_sms"
  std::string path;        ///< JSON pointer of the step, e.g. `/steps/2/then/0`
  std::size_t ordinal = 0; ///< position in document order, unique per file
  int line = 0;            ///< 1-based position of the step
  int column = 0;
  std::map<std::string, field_value, std::less<>> fields;
  std::vector<branch> branches;
  /// The registry entry that validated it; runs it. Never null in a loaded
  /// workflow.
  std::shared_ptr<const step_spec> spec;

  /// `id`, or `#<ordinal>` when none was written ('#' is not allowed in ids).
  std::string display_id() const;

  /// Null if absent.
  const field_value* field(std::string_view name) const;

  /// Null if absent (the first of that name).
  const branch* find_branch(std::string_view name) const;
};

/// One validated workflow file. Immutable once loaded and shared by
/// `std::shared_ptr<const workflow>`: its compiled `program` points into its
/// own steps, so it is neither copied nor moved.
struct workflow {
  workflow() = default;
  workflow(const workflow&) = delete;
  workflow& operator=(const workflow&) = delete;

  std::string name;
  std::string description;
  std::string trigger;
  std::string schedule; ///< cron source, for `trigger: schedule`
  std::string file;     ///< the display name it was loaded under
  std::string source;   ///< the file's text
  std::string version;  ///< content hash of `source` (16 hex digits)
  int name_line = 0;    ///< 1-based position of the `name` value
  int name_column = 0;
  std::vector<step> steps;
  std::size_t step_count = 0; ///< all steps, nested ones included
  std::shared_ptr<const program> code;
};

using workflow_ptr = std::shared_ptr<const workflow>;

/// FNV-1a 64 of `text` as 16 lowercase hex digits: a workflow's version.
std::string content_hash(std::string_view text);

} // namespace ringback::workflows
