#pragma once

#include "ringback/workflows/diagnostic.hpp"
#include "ringback/workflows/language.hpp"
#include "ringback/workflows/model.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringback::workflows {

/// One file's workflow, or everything wrong with it.
struct load_result {
  std::optional<workflow> value; ///< set iff `diagnostics` is empty
  std::vector<diagnostic> diagnostics;

  bool ok() const {
    return value.has_value();
  }
};

/// Loads and validates one workflow from text, reporting every problem at
/// once under `display_name` (usually the file's path). Never throws.
load_result load_string(std::string_view text, const std::string& display_name,
                        const language& lang = default_language());

/// Reads `path` and calls `load_string` with `path` as the display name.
load_result load_file(const std::string& path,
                      const language& lang = default_language());

/// The workflows of a directory.
class catalog {
public:
  /// All loaded workflows, sorted by file name.
  const std::vector<workflow>& workflows() const {
    return workflows_;
  }

  /// Problems of every file (a file with problems contributes no workflow).
  const std::vector<diagnostic>& diagnostics() const {
    return diagnostics_;
  }

  bool ok() const {
    return diagnostics_.empty();
  }

  /// The workflows fired by `trigger`, in file order. Pointers stay valid
  /// as long as the catalog lives and is not modified.
  std::vector<const workflow*> for_trigger(std::string_view trigger) const;

  /// Adds a loaded workflow; returns false (and reports a diagnostic) if a
  /// workflow of the same name is already there.
  bool add(workflow wf);

  void add_diagnostics(std::vector<diagnostic> xs);

private:
  std::vector<workflow> workflows_;
  std::vector<diagnostic> diagnostics_;
};

/// Loads every `*.yaml` file of `dir` except `*.test.yaml` (not recursive),
/// in file name order, with `dir/name` as display names. Workflow names must
/// be unique across the directory. An unreadable directory is a diagnostic.
catalog load_directory(const std::string& dir,
                       const language& lang = default_language());

} // namespace ringback::workflows
