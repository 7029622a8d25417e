#pragma once

#include "ringback/workflows/model.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

/// A workflow compiled to a flat list of instructions, so that a run's
/// position is one number (`run_state::pc`) that survives a restart.
namespace ringback::workflows {

struct language;
struct trigger_spec;

/// One instruction.
struct op {
  enum class kind : std::uint8_t {
    exec,       ///< run step `s`; steps with outcome branches jump per outcome
    branch_if,  ///< if `s`'s condition is false, jump to `target`
    jump,       ///< jump to `target`
    switch_on,  ///< jump to the case whose label equals `s`'s subject
    loop_begin, ///< counter `slot` = 0
    loop_next,  ///< counter `slot` += 1; again (to `target`) unless done
    halt,       ///< the run ends
  };
  kind what = kind::halt;
  const step* s = nullptr;
  std::size_t target = 0;
  std::size_t slot = 0;
  /// switch_on: (label, target); exec: (branch name, target).
  std::vector<std::pair<std::string, std::size_t>> targets;
  std::size_t default_target = 0; ///< switch_on without a match
};

struct program {
  std::vector<op> ops;
  std::size_t loop_slots = 0;
  /// Extra entry points, e.g. ("transcription:4", pc).
  std::vector<std::pair<std::string, std::size_t>> entries;
};

/// A problem the compiler found (unreachable steps, a voice path without an
/// answer, ...), at a step's position.
struct compile_problem {
  int line = 0;
  int column = 0;
  std::string path;
  std::string message;
};

/// Compiles `wf` and checks its control flow. `trigger` may be null (an
/// unknown trigger skips the trigger-specific checks).
std::shared_ptr<const program> compile(const workflow& wf,
                                       const trigger_spec* trigger,
                                       std::vector<compile_problem>& problems);

/// A readable listing, one instruction a line (for tests and debugging).
std::string disassemble(const program& p);

} // namespace ringback::workflows
