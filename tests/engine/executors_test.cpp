#include "ringback/engine/executors.hpp"

#include "mock_store.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>

namespace {

using namespace ringback;
using ::testing::_;
using ::testing::Invoke;
using ::testing::NiceMock;

/// A store whose `begin` blocks until released, so jobs pile up behind the
/// first transaction exactly like under load.
struct gated_store {
  std::promise<void> gate;
  std::shared_future<void> opened{gate.get_future().share()};
  std::atomic<int> begins{0};
  std::atomic<int> commits{0};
  std::atomic<int> rollbacks{0};

  std::unique_ptr<NiceMock<testkit::mock_store>> make() {
    auto db = std::make_unique<NiceMock<testkit::mock_store>>();
    ON_CALL(*db, begin()).WillByDefault(Invoke([this] {
      if (begins++ == 0)
        opened.wait();
    }));
    ON_CALL(*db, commit()).WillByDefault(Invoke([this] { ++commits; }));
    ON_CALL(*db, rollback()).WillByDefault(Invoke([this] { ++rollbacks; }));
    return db;
  }
};

TEST(StoreExecutor, JobsQueuedDuringACommitShareOneTransaction) {
  gated_store g;
  engine::store_executor ex{g.make(), 512};
  std::atomic<int> done{0};
  for (int i = 0; i < 100; ++i)
    ex.post([](engine::store&) {}, [&](const std::string& e) {
      EXPECT_EQ(e, "");
      ++done;
    });
  g.gate.set_value();
  ex.stop();
  EXPECT_EQ(done, 100);
  // The first job runs alone (it opened the gate); the other 99 are batched.
  EXPECT_LE(g.commits.load(), 3);
  EXPECT_EQ(static_cast<int>(ex.commits()), g.commits.load());
}

TEST(StoreExecutor, AFailingJobFailsAloneAndTheOthersCommit) {
  gated_store g;
  engine::store_executor ex{g.make(), 512};
  std::vector<std::string> results(10);
  for (int i = 0; i < 10; ++i)
    ex.post(
      [i](engine::store&) {
        if (i == 4)
          throw engine::port_error{"insert_call: constraint failed"};
      },
      [&results, i](const std::string& e) { results[i] = e; });
  g.gate.set_value();
  ex.stop();
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(results[i], i == 4 ? "insert_call: constraint failed" : "") << i;
  EXPECT_GE(g.rollbacks.load(), 2); // the batch, then the job alone
}

TEST(StoreExecutor, CompletionsRunInSubmissionOrder) {
  gated_store g;
  engine::store_executor ex{g.make(), 4};
  std::vector<int> order;
  for (int i = 0; i < 20; ++i)
    ex.post([](engine::store&) {}, [&order, i](const std::string&) {
      order.push_back(i);
    });
  g.gate.set_value();
  ex.stop();
  ASSERT_EQ(order.size(), 20u);
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(order[i], i);
}

TEST(StoreExecutor, PostAfterStopFailsInsteadOfHanging) {
  gated_store g;
  g.gate.set_value();
  engine::store_executor ex{g.make()};
  ex.stop();
  std::string error;
  ex.post([](engine::store&) {}, [&](const std::string& e) { error = e; });
  EXPECT_EQ(error, "store stopped");
}

TEST(WorkerPool, EachThreadOwnsItsPortAndRunsEveryJob) {
  struct port {
    int uses = 0;
  };
  std::atomic<int> made{0};
  std::atomic<int> ran{0};
  {
    engine::worker_pool<port> pool{3, [&] {
                                     ++made;
                                     return std::make_unique<port>();
                                   }};
    for (int i = 0; i < 1000; ++i)
      pool.post([&](port& p) {
        ++p.uses;
        ++ran;
      });
  }
  EXPECT_EQ(made, 3);
  EXPECT_EQ(ran, 1000);
}

TEST(InlineStoreQueue, RollsBackAndReportsAFailure) {
  NiceMock<testkit::mock_store> db;
  EXPECT_CALL(db, begin());
  EXPECT_CALL(db, rollback());
  EXPECT_CALL(db, commit()).Times(0);
  engine::inline_store_queue q{db};
  std::string error;
  q.post([](engine::store&) { throw engine::port_error{"boom"}; },
         [&](const std::string& e) { error = e; });
  EXPECT_EQ(error, "boom");
}

} // namespace
