// libFuzzer target: load_string (YAML workflows). See README.md.
#include "fuzz_checks.hpp"

#include <cstdio>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto error = ringback::fuzz::check_workflow(input);
  if (!error.empty()) {
    std::fprintf(stderr, "invariant violated: %s\n", error.c_str());
    std::abort();
  }
  return 0;
}
