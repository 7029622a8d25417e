#pragma once

#include "ringback/engine/ports.hpp"

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace ringback::app {

/// `ringback runs --config FILE (--call SID | --run ID)`: answers "why did
/// this caller get that text?" from the store: every run of the call (or the
/// one run), its workflow and version, trigger, status, each step with its
/// outcome and detail, and the messages the call caused with their states.
int runs_main(const std::vector<std::string>& args);

/// Prints the runs of a call and its messages (used by `runs_main`).
void print_call_runs(engine::store& db, const std::string& call_sid,
                     std::ostream& out);

/// Prints one run; false if there is none of that id.
bool print_run(engine::store& db, std::int64_t run_id, std::ostream& out);

} // namespace ringback::app
