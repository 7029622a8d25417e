#pragma once

#include "ringback/workflows/diagnostic.hpp"

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

/// Shared YAML plumbing for the workflow loader and the config loader: a
/// guarded parse (size, tabs, depth, node count, duplicate keys) and strict
/// key checks, all reported as `diagnostic`s. yaml-cpp 0.7 quirks handled
/// here: its `Mark` is 0-based, it accepts duplicate keys silently, a missing
/// key has no mark, a null value's mark points past it, `&a [*a]` builds a
/// cycle and its depth guard says only "bad file".
namespace ringback::workflows {

/// How a diagnostic spells the place of a node.
enum class path_style : std::uint8_t {
  pointer, ///< `/steps/0/send_sms` (JSON pointer, `~0` `~1` escapes)
  dotted,  ///< `tenants[0].numbers[1]`
};

std::string child_path(path_style style, std::string_view parent,
                       std::string_view key);

std::string child_path(path_style style, std::string_view parent,
                       std::size_t index);

/// Bounds for untrusted YAML.
struct yaml_limits {
  std::size_t max_bytes = std::size_t{1024} * 1024;
  std::size_t max_depth = 64;
  std::size_t max_nodes = 100000;
};

/// Collects diagnostics for one file.
class reporter {
public:
  reporter(std::string file, std::vector<diagnostic>& out);

  const std::string& file() const {
    return file_;
  }

  /// Reports at a yaml-cpp mark (0-based; a null mark drops the position).
  void error(const YAML::Mark& where, std::string path, std::string message);

  /// Reports at a 1-based line and column (0 = unknown).
  void error_at(int line, int column, std::string path, std::string message);

  std::size_t count() const {
    return out_.size();
  }

private:
  std::string file_;
  std::vector<diagnostic>& out_;
};

/// The outcome of `parse_yaml`.
struct yaml_document {
  /// The first document; Null when the text holds none (empty, comments).
  YAML::Node root;
  /// False after a syntax error, tab indentation or an exceeded limit: then
  /// `root` must not be used. Duplicate keys leave it true (they are
  /// reported, and the first occurrence wins for later checks).
  bool usable = false;
};

/// Parses `text` and reports, through `out`: a file over `max_bytes`, tab
/// characters in leading whitespace (one diagnostic a line; yaml-cpp's own
/// message for them is cryptic), yaml-cpp syntax errors at their mark, more
/// than one document, nesting deeper than `max_depth`, more than `max_nodes`
/// nodes (aliases count each time they are reached), non-scalar keys and
/// duplicate keys at any depth. Never throws.
yaml_document parse_yaml(std::string_view text, reporter& out, path_style style,
                         const yaml_limits& limits = {});

/// "a map", "a list", "a scalar", "an empty value".
std::string kind_name(const YAML::Node& x);

/// Where to point at `value`: its own mark, or `fallback` (usually the key)
/// for a null value (whose mark yaml-cpp puts past it) or a missing node.
YAML::Mark mark_of(const YAML::Node& value, const YAML::Mark& fallback);

/// Allowed and required keys of a map.
struct key_rules {
  std::vector<std::string> allowed;
  std::vector<std::string> required;
};

/// Reports keys of `map` not in `rules.allowed` ("unknown key 'x' (did you
/// mean 'y'?)", or the allowed list when nothing is close) at the key, and
/// each missing required key at `where` (yaml-cpp has no mark for a missing
/// node: point at the map, or at its key when the map is null). Duplicate and
/// non-scalar keys are `parse_yaml`'s to report and are skipped here.
void check_keys(const YAML::Node& map, const YAML::Mark& where,
                const std::string& path, const key_rules& rules, reporter& out);

/// The scalar text of a map key ("" for a non-scalar key).
std::string key_text(const YAML::Node& key);

/// Iterates a map once per distinct scalar key, in document order, skipping
/// repeated keys (first occurrence wins, as with `node[key]`). `fn(key,
/// value)`.
template <class F>
void for_each_entry(const YAML::Node& map, F&& fn) {
  std::set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (!it->first.IsScalar() || !seen.insert(it->first.Scalar()).second) {
      continue;
    }
    fn(it->first, it->second);
  }
}

/// Number of UTF-8 code points in `x` (counts lead bytes; stray continuation
/// bytes count zero).
std::size_t code_points(std::string_view x);

/// Cuts `x` to at most `max_bytes` without splitting a UTF-8 sequence.
/// Returns true if it cut.
bool truncate_utf8(std::string& x, std::size_t max_bytes);

/// Cuts `x` to at most `max_code_points`. Returns true if it cut.
bool truncate_code_points(std::string& x, std::size_t max_code_points);

} // namespace ringback::workflows
