#pragma once

#include "ringback/workflows/diagnostic.hpp"

#include <cstddef>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

/// `ringback workflows test`: runs the `*.test.yaml` files kept beside
/// workflows. Each test drives a simulated host (incoming calls, dial
/// results, recordings, transcriptions, inbound texts, timers, schedules and
/// HTTP responses, hosted the way the actors host them) on a virtual clock,
/// with the real loader and interpreter, and
/// checks the effects the runs ask for (TwiML answers, texts, HTTP requests,
/// logs, tags, run states). No network, no real clock, no threads: a test
/// runs in microseconds and always the same way.
///
/// The file format is documented in docs/workflows.md ("Testing workflows").
namespace ringback::app {

/// What to run and how much to print.
struct workflow_test_options {
  /// Run only the tests whose name contains this text ("" = all).
  std::string filter;
  /// Print the trace of passing tests too.
  bool verbose = false;
};

/// The outcome of one test of a test file.
struct workflow_test_result {
  std::string name;
  int line = 0; ///< 1-based line of the test's `name`
  bool passed = false;
  /// Why it failed, several lines: the position of the failing step
  /// (`file:line:col: ...`), then what was expected and what happened.
  std::string failure;
  /// What happened, one line per event, run step and effect, up to the end
  /// of the test or the failing step.
  std::vector<std::string> trace;
};

/// The outcome of one test file.
struct workflow_test_file_result {
  std::string file;
  /// Problems that keep the whole file from running: a malformed test file
  /// (`file:line:col: error: /tests/0/steps/1: unknown key ...`). `tests` is
  /// then empty. Problems of the workflows under test are not here: each
  /// test fails with them.
  std::vector<workflows::diagnostic> diagnostics;
  std::vector<workflow_test_result> tests;
  std::size_t filtered_out = 0; ///< tests skipped by `options.filter`

  /// No diagnostics and every test passed.
  bool ok() const;
};

/// Runs the tests of a test file's text. `display_name` names the file in
/// messages; `dir` is the folder its `workflows` paths are relative to (and,
/// without a `workflows` key, the folder whose workflows are tested). Never
/// throws (bad_alloc aside).
workflow_test_file_result
run_workflow_test_string(std::string_view text, const std::string& display_name,
                         const std::string& dir,
                         const workflow_test_options& options = {});

/// Reads `path` and runs it (`display_name` = `path`, `dir` = its folder).
workflow_test_file_result
run_workflow_test_file(const std::string& path,
                       const workflow_test_options& options = {});

/// Test files named by the command line.
struct workflow_test_discovery {
  /// In the order given; a folder's files sorted, recursively (its
  /// `tenants/<id>/` folders included).
  std::vector<std::string> files;
  /// "no such file or folder: x", "not a test file (*.test.yaml): x".
  std::vector<std::string> errors;
};

/// Each path is a `*.test.yaml` file or a folder (every `*.test.yaml` below
/// it). Never throws.
workflow_test_discovery
find_workflow_test_files(const std::vector<std::string>& paths);

/// Runs `files` and prints a test runner's report to `out`: one
/// `PASS file: name` / `FAIL file: name` line per test (a failure followed by
/// its expected vs actual and the trace), `ERROR file` for a file that
/// cannot run, and a summary line with counts and the time taken. Returns 0
/// when every test passed, 1 otherwise (a file with errors, a failing test,
/// or no test at all).
int run_workflow_tests(const std::vector<std::string>& files,
                       const workflow_test_options& options, std::ostream& out);

} // namespace ringback::app
