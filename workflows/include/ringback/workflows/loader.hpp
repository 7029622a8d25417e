#pragma once

#include "ringback/workflows/diagnostic.hpp"
#include "ringback/workflows/language.hpp"
#include "ringback/workflows/model.hpp"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringback::workflows {

/// One file's workflow, or everything wrong with it.
struct load_result {
  workflow_ptr value; ///< set iff `diagnostics` is empty
  std::vector<diagnostic> diagnostics;

  bool ok() const {
    return value != nullptr;
  }
};

/// Loads, validates and compiles one workflow from text, reporting every
/// problem at once under `display_name` (usually the file's path). Never
/// throws.
load_result load_string(std::string_view text, const std::string& display_name,
                        const language& lang = default_language());

/// Reads `path` and calls `load_string` with `path` as the display name.
load_result load_file(const std::string& path,
                      const language& lang = default_language());

/// The workflows of one directory (one version of them).
class catalog {
public:
  /// All loaded workflows, sorted by file name.
  const std::vector<workflow_ptr>& workflows() const {
    return workflows_;
  }

  /// Problems of every file (a file with problems contributes no workflow).
  const std::vector<diagnostic>& diagnostics() const {
    return diagnostics_;
  }

  bool ok() const {
    return diagnostics_.empty();
  }

  /// The workflows fired by `trigger`, in file order.
  std::vector<workflow_ptr> for_trigger(std::string_view trigger) const;

  /// Null if absent.
  workflow_ptr find(std::string_view name) const;

  /// Adds a loaded workflow; returns false (and reports a diagnostic) if a
  /// workflow of the same name is already there, or if it is a second
  /// `call.incoming` workflow (a call gets one answer).
  bool add(workflow_ptr wf);

  void add_diagnostics(std::vector<diagnostic> xs);

private:
  std::vector<workflow_ptr> workflows_;
  std::vector<diagnostic> diagnostics_;
};

/// Loads every `*.yaml` file of `dir` except `*.test.yaml` (not recursive),
/// in file name order, with `dir/name` as display names. Workflow names must
/// be unique across the directory. An unreadable directory is a diagnostic.
catalog load_directory(const std::string& dir,
                       const language& lang = default_language());

/// Loads `path`: a directory (as `load_directory`) or a single file.
catalog load_path(const std::string& path,
                  const language& lang = default_language());

} // namespace ringback::workflows
