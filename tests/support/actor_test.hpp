#pragma once

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <gtest/gtest.h>

namespace ringback::testkit {

/// A GoogleTest fixture with a CAF actor system on the deterministic test
/// coordinator: nothing runs until the test calls `sched_.run()`, and time
/// moves only with `sched_.advance_time(...)`.
class actor_test : public ::testing::Test {
protected:
  static caf::actor_system_config& configure(caf::actor_system_config& cfg) {
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    return cfg;
  }

  actor_test()
    : sys_(configure(cfg_)),
      sched_(dynamic_cast<caf::scheduler::test_coordinator&>(sys_.scheduler())) {
    // nop
  }

  caf::actor_system_config cfg_;
  caf::actor_system sys_;
  caf::scheduler::test_coordinator& sched_;
};

} // namespace ringback::testkit
