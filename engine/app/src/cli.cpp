#include "ringback/app/cli.hpp"

#include "ringback/app/service.hpp"
#include "ringback/engine/log.hpp"
#include "ringback/workflows/loader.hpp"

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
      Validate workflow files or folders; print every problem as
      file:line:col: error: message. Exit 1 if any, 0 when clean.
  ringback --help
)";

int workflows_check(const std::vector<std::string>& paths) {
  if (paths.empty()) {
    std::cerr << "ringback workflows check: no PATH given\n" << usage;
    return 2;
  }
  std::size_t problems = 0;
  std::size_t files = 0;
  for (const auto& path : paths) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      auto cat = workflows::load_directory(path);
      files += cat.workflows().size();
      for (const auto& d : cat.diagnostics())
        std::cerr << workflows::to_string(d) << "\n";
      problems += cat.diagnostics().size();
    } else {
      auto r = workflows::load_file(path);
      ++files;
      for (const auto& d : r.diagnostics)
        std::cerr << workflows::to_string(d) << "\n";
      problems += r.diagnostics.size();
    }
  }
  if (problems > 0) {
    std::cerr << problems << " problem(s) found\n";
    return 1;
  }
  std::cout << "ok: " << files << " workflow(s) checked\n";
  return 0;
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
  std::cerr << "ringback: unknown command '" << args[0] << "'\n" << usage;
  return 2;
}

} // namespace ringback::app
