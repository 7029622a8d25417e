#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ringback::workflows {

enum class severity : std::uint8_t { error, warning };

const char* to_string(severity x);

/// One problem found while loading a workflow (or a config file), printed the
/// way compilers do: `file:line:col: error: path: message`.
///
/// `line` and `column` are 1-based; 0 means "unknown" and drops the position.
/// `path` names the node: a JSON-pointer-like `/steps/0/send_sms` for
/// workflows, a dotted `tenants[0].owner_phone` for the config; an empty path
/// (the document root) is left out of the printed form.
struct diagnostic {
  std::string file;
  int line = 0;
  int column = 0;
  std::string path;
  std::string message;
  severity level = severity::error;
};

std::string to_string(const diagnostic& x);

/// Orders diagnostics by line and column (those without a position first),
/// keeping the order of equal positions: file order, as compilers print.
void sort_by_position(std::vector<diagnostic>& xs);

/// Prints one diagnostic a line.
std::string to_string(const std::vector<diagnostic>& xs);

/// Returns the candidate closest to `word` (case-insensitive optimal string
/// alignment distance, at most about a third of the word's length), or an
/// empty string. Ties go to the earlier candidate.
std::string nearest(std::string_view word,
                    const std::vector<std::string>& candidates);

/// " (did you mean 'x'?)" or "".
std::string did_you_mean(std::string_view word,
                         const std::vector<std::string>& candidates);

/// "a, b, c".
std::string join(const std::vector<std::string>& xs,
                 std::string_view separator = ", ");

} // namespace ringback::workflows
