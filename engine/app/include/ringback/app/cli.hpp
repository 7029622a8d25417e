#pragma once

namespace ringback::app {

/// Entry point of the `ringback` executable: `serve`, `workflows check`,
/// `workflows test` (see workflow_tests.hpp).
int run_cli(int argc, char** argv);

} // namespace ringback::app
