#pragma once

namespace ringback::app {

/// Entry point of the `ringback` executable: `serve`, `workflows check`.
int run_cli(int argc, char** argv);

} // namespace ringback::app
