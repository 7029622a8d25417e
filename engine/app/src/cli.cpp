#include "ringback/app/cli.hpp"

#include "ringback/app/service.hpp"
#include "ringback/app/runs_report.hpp"
#include "ringback/app/workflow_tests.hpp"
#include "ringback/engine/log.hpp"
#include "ringback/workflows/loader.hpp"
#include "ringback/workflows/reference.hpp"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace ringback::app {

namespace {

constexpr const char* usage = R"(usage:
  ringback serve --config FILE [--log-level debug|info|warn|error]
      Run the service.
  ringback workflows check PATH...
      Validate workflow files or folders (each folder's *.yaml but
      *.test.yaml, as one catalog; a folder's tenants/<id>/ folders too);
      print every problem on stderr as
      file:line:col: error: message. Exit 1 if any, 0 when clean.
  ringback workflows test [--filter TEXT] [--verbose] PATH...
      Run workflow tests: PATH is a *.test.yaml file or a folder (every
      *.test.yaml below it, tenants/<id>/ folders included). Prints
      PASS/FAIL per test and a summary. Exit 0 when all pass, 1 otherwise.
  ringback workflows reference
      Print the reference of every trigger, step, field, operator and
      filter (the generated part of docs/workflows.md) as Markdown.
  ringback runs --config FILE (--call SID | --run ID)
      Show the workflow runs of a call (or one run) from the store: each
      step with its outcome and why, and the messages the call caused.
  ringback --help
)";

int workflows_check(const std::vector<std::string>& paths) {
  if (paths.empty()) {
    std::cerr << "ringback workflows check: no PATH given\n" << usage;
    return 2;
  }
  std::size_t problems = 0;
  std::size_t files = 0;
  auto check = [&](const std::string& path) {
    auto cat = workflows::load_path(path);
    files += cat.workflows().size();
    for (const auto& d : cat.diagnostics())
      std::cerr << workflows::to_string(d) << "\n";
    problems += cat.diagnostics().size();
  };
  for (const auto& path : paths) {
    check(path);
    // A folder's tenant overrides (tenants/<id>/) are catalogs of their own.
    std::error_code ec;
    auto tenants = std::filesystem::path(path) / "tenants";
    if (!std::filesystem::is_directory(tenants, ec))
      continue;
    std::vector<std::string> dirs;
    for (const auto& e : std::filesystem::directory_iterator(tenants, ec))
      if (e.is_directory(ec))
        dirs.push_back(e.path().string());
    std::sort(dirs.begin(), dirs.end());
    for (const auto& d : dirs)
      check(d);
  }
  if (problems > 0) {
    std::cerr << problems << " problem(s) found\n";
    return 1;
  }
  std::cout << "ok: " << files << " workflow(s) checked\n";
  return 0;
}

int workflows_test(const std::vector<std::string>& args) {
  workflow_test_options options;
  std::vector<std::string> paths;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--filter") {
      if (i + 1 == args.size()) {
        std::cerr << "ringback workflows test: --filter needs a TEXT\n"
                  << usage;
        return 2;
      }
      options.filter = args[++i];
    } else if (args[i] == "--verbose" || args[i] == "-v") {
      options.verbose = true;
    } else if (args[i].size() > 1 && args[i][0] == '-') {
      std::cerr << "ringback workflows test: unknown option '" << args[i]
                << "'\n"
                << usage;
      return 2;
    } else {
      paths.push_back(args[i]);
    }
  }
  if (paths.empty()) {
    std::cerr << "ringback workflows test: no PATH given\n" << usage;
    return 2;
  }
  auto found = find_workflow_test_files(paths);
  if (!found.errors.empty()) {
    for (const auto& e : found.errors)
      std::cerr << "ringback workflows test: " << e << "\n";
    return 2;
  }
  if (found.files.empty()) {
    std::cerr << "ringback workflows test: no *.test.yaml files in "
              << workflows::join(paths) << "\n";
    return 1;
  }
  return run_workflow_tests(found.files, options, std::cout);
}

} // namespace

int run_cli(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << usage;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "serve") {
    std::string config;
    for (std::size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--config" && i + 1 < args.size()) {
        config = args[++i];
      } else if (args[i] == "--log-level" && i + 1 < args.size()) {
        engine::log_level level;
        if (!engine::parse_log_level(args[++i], level)) {
          std::cerr << "ringback serve: unknown log level '" << args[i]
                    << "' (expected debug, info, warn or error)\n";
          return 2;
        }
        engine::set_log_level(level);
      } else {
        std::cerr << "ringback serve: unexpected argument '" << args[i] << "'\n"
                  << usage;
        return 2;
      }
    }
    if (config.empty()) {
      std::cerr << "ringback serve: --config FILE is required\n" << usage;
      return 2;
    }
    return serve_main(config);
  }
  if (args[0] == "workflows" && args.size() >= 2 && args[1] == "check")
    return workflows_check({args.begin() + 2, args.end()});
  if (args[0] == "workflows" && args.size() >= 2 && args[1] == "test")
    return workflows_test({args.begin() + 2, args.end()});
  if (args[0] == "workflows" && args.size() == 2 && args[1] == "reference") {
    std::cout << workflows::reference_markdown(workflows::default_language());
    return 0;
  }
  if (args[0] == "runs")
    return runs_main({args.begin() + 1, args.end()});
  if (args[0] == "workflows") {
    std::cerr << "ringback workflows: expected 'check', 'test' or 'reference'"
              << (args.size() >= 2 ? ", got '" + args[1] + "'" : std::string())
              << "\n"
              << usage;
    return 2;
  }
  std::cerr << "ringback: unknown command '" << args[0] << "'\n" << usage;
  return 2;
}

} // namespace ringback::app
