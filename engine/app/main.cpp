#include "ringback/app/cli.hpp"

int main(int argc, char** argv) {
  return ringback::app::run_cli(argc, argv);
}
