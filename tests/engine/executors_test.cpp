#include "ringback/engine/executors.hpp"

#include <gtest/gtest.h>

#include "mock_store.hpp"
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <thread>

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

TEST(StoreExecutor, ActivityCountsTheJobsWaitingInEachLane) {
  gated_store g;
  engine::store_executor ex{g.make(), 512};
  ex.post([](engine::store&) {});
  // The first batch has begun (and waits at the gate): what comes now waits.
  for (int i = 0; i < 5000 && g.begins.load() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  ASSERT_EQ(g.begins.load(), 1);
  ex.post([](engine::store&) {});
  ex.post([](engine::store&) {});
  ex.post_ahead([](engine::store&) {});
  ex.post_ahead([](engine::store&) {});
  ex.post_ahead([](engine::store&) {});
  ex.post_urgent([](engine::store&) {});
  auto waiting = ex.activity();
  EXPECT_EQ(waiting.urgent, 1U);
  EXPECT_EQ(waiting.ahead, 3U);
  EXPECT_EQ(waiting.queued, 2U);
  EXPECT_EQ(waiting.jobs, 0U);
  EXPECT_EQ(waiting.transactions, 0U);
  g.gate.set_value();
  ex.stop();
  auto done = ex.activity();
  EXPECT_EQ(done.urgent + done.ahead + done.queued, 0U);
  EXPECT_EQ(done.jobs, 7U);
  EXPECT_EQ(done.transactions, ex.commits());
  EXPECT_GE(done.transactions, 2U); // the first job, then the others
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

TEST(StoreExecutor, UpkeepWaitsForTheBatchsAnswers) {
  auto db = std::make_unique<NiceMock<testkit::mock_store>>();
  std::vector<std::string> events; // written on the store thread only
  ON_CALL(*db, commit()).WillByDefault(Invoke([&] {
    events.push_back("commit");
  }));
  ON_CALL(*db, upkeep()).WillByDefault(Invoke([&] {
    events.push_back("upkeep");
  }));
  engine::store_executor ex{std::move(db), 8, std::chrono::microseconds{0}};
  ex.post([](engine::store&) {},
          [&](const std::string&) { events.push_back("answer"); });
  ex.stop();
  EXPECT_EQ(events,
            (std::vector<std::string>{"commit", "answer", "upkeep"}));
}

TEST(StoreExecutor, AFailedUpkeepFailsNoJob) {
  auto db = std::make_unique<NiceMock<testkit::mock_store>>();
  std::atomic<int> upkeeps{0};
  ON_CALL(*db, upkeep()).WillByDefault(Invoke([&] {
    ++upkeeps;
    throw engine::port_error{"sqlite checkpoint: disk I/O error"};
  }));
  engine::store_executor ex{std::move(db), 8, std::chrono::microseconds{0}};
  std::vector<std::string> results;
  for (int i = 0; i < 3; ++i) {
    std::promise<void> done;
    ex.post([](engine::store&) {}, [&](const std::string& e) {
      results.push_back(e);
      done.set_value();
    });
    done.get_future().wait();
  }
  ex.stop();
  EXPECT_EQ(results, (std::vector<std::string>{"", "", ""}));
  EXPECT_GE(upkeeps.load(), 2); // the last answer may come before its upkeep
}

/// Records the order jobs ran in (on the store thread only).
struct run_order {
  std::vector<int> ran;

  engine::store_queue::work job(int i) {
    return [this, i](engine::store&) { ran.push_back(i); };
  }

  /// Posts job 0 and waits until its transaction is open (and blocks on
  /// `g`'s gate), so that what is posted next queues up behind it.
  void hold_store(engine::store_executor& ex, gated_store& g) {
    ex.post(job(0));
    while (g.begins.load() == 0)
      std::this_thread::yield();
  }
};

TEST(StoreExecutor, UrgentJobsRunAheadOfTheQueuedOnes) {
  gated_store g;
  engine::store_executor ex{g.make(), 4, std::chrono::microseconds{0}};
  run_order o;
  // Job 0's transaction is open (begin blocks on the gate): 1-8 queue up
  // behind it, then two urgent reads.
  o.hold_store(ex, g);
  for (int i = 1; i <= 8; ++i)
    ex.post(o.job(i));
  ex.post_urgent(o.job(100));
  ex.post_urgent(o.job(101));
  g.gate.set_value();
  ex.stop();
  EXPECT_EQ(o.ran, (std::vector<int>{0, 100, 101, 1, 2, 3, 4, 5, 6, 7, 8}));
}

TEST(StoreExecutor, UrgentJobsDoNotStarveTheQueue) {
  gated_store g;
  engine::store_executor ex{g.make(), 2, std::chrono::microseconds{0}};
  run_order o;
  o.hold_store(ex, g);
  for (int i = 1; i <= 4; ++i)
    ex.post(o.job(i));
  for (int i = 100; i < 106; ++i)
    ex.post_urgent(o.job(i));
  g.gate.set_value();
  ex.stop();
  // Batches of 2: urgent, queued, urgent, queued, then what is left.
  EXPECT_EQ(o.ran,
            (std::vector<int>{0, 100, 101, 1, 2, 102, 103, 3, 4, 104, 105}));
}

TEST(StoreExecutor, JobsPostedAheadLeadTheNextQueuedBatch) {
  gated_store g;
  engine::store_executor ex{g.make(), 4, std::chrono::microseconds{0}};
  run_order o;
  // Behind job 0's open transaction: a backlog of 8, then two jobs posted
  // ahead of it, then an urgent read.
  o.hold_store(ex, g);
  for (int i = 1; i <= 8; ++i)
    ex.post(o.job(i));
  ex.post_ahead(o.job(50));
  ex.post_ahead(o.job(51));
  ex.post_urgent(o.job(100));
  g.gate.set_value();
  ex.stop();
  // The urgent read alone, then a queued batch of 4 led by the jobs posted
  // ahead (in their order), then the backlog in its order.
  EXPECT_EQ(o.ran, (std::vector<int>{0, 100, 50, 51, 1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(g.commits.load(), 5); // [0] [100] [50 51 1 2] [3-6] [7 8]
}

TEST(StoreExecutor, AFloodOfJobsPostedAheadDoesNotStarveTheQueue) {
  gated_store g;
  engine::store_executor ex{g.make(), 16, std::chrono::microseconds{0}};
  run_order o;
  // Behind job 0's open transaction: 3 queued, then 40 posted ahead.
  o.hold_store(ex, g);
  for (int i = 1; i <= 3; ++i)
    ex.post(o.job(i));
  for (int i = 50; i < 90; ++i)
    ex.post_ahead(o.job(i));
  g.gate.set_value();
  ex.stop();
  // Batches of 16: a whole one posted ahead; the next keeps 2 for the
  // queue; then the queue's last job has room behind the rest.
  std::vector<int> want{0};
  for (int i = 50; i < 80; ++i)
    want.push_back(i);
  want.insert(want.end(), {1, 2});
  for (int i = 80; i < 90; ++i)
    want.push_back(i);
  want.push_back(3);
  EXPECT_EQ(o.ran, want);
  EXPECT_EQ(g.commits.load(), 4); // [0] [50-65] [66-79 1 2] [80-89 3]
}

TEST(SplitStoreQueue, UrgentJobsRunOnTheirOwnExecutorBesideABusyMain) {
  gated_store main_store;
  gated_store urgent_store;
  urgent_store.gate.set_value();
  engine::store_executor main{main_store.make(), 8};
  engine::store_executor urgent{urgent_store.make(), 8,
                                std::chrono::microseconds{0}};
  engine::split_store_queue lanes{main, urgent};
  run_order o;
  // The main executor's transaction is open and stays so (its begin waits
  // on the gate): a batch in progress. Queued and ahead jobs wait for it.
  lanes.post(o.job(0));
  while (main_store.begins.load() == 0)
    std::this_thread::yield();
  std::atomic<bool> queued_done{false};
  lanes.post([](engine::store&) {}, [&](const std::string&) {
    queued_done = true;
  });
  lanes.post_ahead([](engine::store&) {});
  std::promise<std::string> answered;
  lanes.post_urgent([](engine::store&) {},
                    [&](const std::string& e) { answered.set_value(e); });
  // The urgent job's answer comes while the main batch is still open.
  auto f = answered.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds{10}), std::future_status::ready);
  EXPECT_EQ(f.get(), "");
  EXPECT_EQ(urgent_store.commits.load(), 1);
  EXPECT_EQ(main_store.commits.load(), 0);
  EXPECT_FALSE(queued_done.load());
  main_store.gate.set_value();
  main.stop();
  urgent.stop();
  EXPECT_TRUE(queued_done.load());
  EXPECT_EQ(main.jobs(), 3u);
  EXPECT_EQ(urgent.jobs(), 1u);
}

TEST(StoreExecutor, AJobPostedAheadWakesAnIdleStore) {
  gated_store g;
  g.gate.set_value();
  engine::store_executor ex{g.make()};
  std::promise<std::string> done;
  ex.post_ahead([](engine::store&) {},
                [&](const std::string& e) { done.set_value(e); });
  auto answer = done.get_future();
  ASSERT_EQ(answer.wait_for(std::chrono::seconds{30}),
            std::future_status::ready);
  EXPECT_EQ(answer.get(), "");
  ex.stop();
  std::string error;
  ex.post_ahead([](engine::store&) {},
                [&](const std::string& e) { error = e; });
  EXPECT_EQ(error, "store stopped");
}

TEST(StoreExecutor, AnUrgentJobAfterStopFails) {
  gated_store g;
  g.gate.set_value();
  engine::store_executor ex{g.make()};
  ex.stop();
  std::string error;
  ex.post_urgent([](engine::store&) {},
                 [&](const std::string& e) { error = e; });
  EXPECT_EQ(error, "store stopped");
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

TEST(StoreExecutor, AfterCommitHooksRunOncePerCommittedJobBeforeCompletions) {
  gated_store g;
  engine::store_executor ex{g.make(), 512};
  std::vector<std::string> events; // store thread only
  for (int i = 0; i < 6; ++i)
    ex.post(
      [i, &events](engine::store&) {
        auto* txn = engine::current_store_transaction();
        ASSERT_NE(txn, nullptr);
        txn->after_commit(
          [i, &events] { events.push_back("hook " + std::to_string(i)); });
        if (i == 3)
          throw engine::port_error{"insert_call: constraint failed"};
      },
      [i, &events](const std::string& e) {
        events.push_back("done " + std::to_string(i)
                         + (e.empty() ? "" : " " + e));
      });
  g.gate.set_value();
  ex.stop();
  // Each committed job's hook ran exactly once (hooks of a rolled-back batch
  // are dropped; its jobs re-run alone register again), the failed job's
  // never, and a job's hook before any completion of its transaction.
  for (int i = 0; i < 6; ++i) {
    auto hook = std::find(events.begin(), events.end(),
                          "hook " + std::to_string(i));
    auto done
      = std::find_if(events.begin(), events.end(), [i](const std::string& e) {
          return e.rfind("done " + std::to_string(i), 0) == 0;
        });
    ASSERT_NE(done, events.end()) << i;
    if (i == 3) {
      EXPECT_EQ(hook, events.end());
      EXPECT_EQ(*done, "done 3 insert_call: constraint failed");
    } else {
      ASSERT_NE(hook, events.end()) << i;
      EXPECT_EQ(std::count(events.begin(), events.end(), *hook), 1) << i;
      EXPECT_LT(hook - events.begin(), done - events.begin()) << i;
    }
  }
  EXPECT_EQ(engine::current_store_transaction(), nullptr);
}

TEST(StoreExecutor, EachExecutorHasItsOwnId) {
  NiceMock<testkit::mock_store> db;
  engine::inline_store_queue a{db};
  engine::inline_store_queue b{db};
  std::uint64_t id_a = 0;
  std::uint64_t id_b = 0;
  a.post([&](engine::store&) {
    id_a = engine::current_store_transaction()->executor_id();
  });
  b.post([&](engine::store&) {
    id_b = engine::current_store_transaction()->executor_id();
  });
  EXPECT_NE(id_a, 0u);
  EXPECT_NE(id_b, 0u);
  EXPECT_NE(id_a, id_b);
  std::uint64_t again = 0;
  a.post([&](engine::store&) {
    again = engine::current_store_transaction()->executor_id();
  });
  EXPECT_EQ(again, id_a);
  EXPECT_EQ(engine::current_store_transaction(), nullptr);
}

TEST(StoreExecutor, AWakeUpLingersSoThatALightLoadCommitsOnce) {
  gated_store g;
  g.gate.set_value();
  // A linger far longer than the test: only a full batch may end it.
  engine::store_executor ex{g.make(), 512, std::chrono::seconds{30}, 10};
  // Let the thread reach its idle wait first (a thread that finds jobs
  // already queued when it starts runs them at once).
  std::this_thread::sleep_for(std::chrono::milliseconds{200});
  std::promise<void> all_done;
  std::atomic<int> done{0};
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i)
    ex.post([](engine::store&) {},
            [&](const std::string& e) {
              EXPECT_EQ(e, "");
              if (++done == 10)
                all_done.set_value();
            });
  ASSERT_EQ(all_done.get_future().wait_for(std::chrono::seconds{20}),
            std::future_status::ready);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds{20});
  EXPECT_EQ(ex.commits(), 1u) << "ten jobs, one transaction";
  EXPECT_EQ(ex.jobs(), 10u);
  ex.stop();
}

TEST(StoreExecutor, StopEndsALingerAndRunsWhatIsQueued) {
  gated_store g;
  g.gate.set_value();
  engine::store_executor ex{g.make(), 512, std::chrono::seconds{30}, 64};
  std::atomic<int> done{0};
  ex.post([](engine::store&) {}, [&](const std::string&) { ++done; });
  ex.post([](engine::store&) {}, [&](const std::string&) { ++done; });
  const auto start = std::chrono::steady_clock::now();
  ex.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds{20});
  EXPECT_EQ(done, 2);
  EXPECT_EQ(ex.commits(), 1u);
}

TEST(StoreExecutor, WithoutLingerAJobRunsAtOnce) {
  gated_store g;
  g.gate.set_value();
  engine::store_executor ex{g.make(), 512, std::chrono::microseconds{0}, 64};
  std::promise<void> ran;
  ex.post([](engine::store&) {}, [&](const std::string&) { ran.set_value(); });
  EXPECT_EQ(ran.get_future().wait_for(std::chrono::seconds{20}),
            std::future_status::ready);
  ex.stop();
}

} // namespace

namespace {

std::string this_thread_name() {
  char buf[32] = {};
  pthread_getname_np(pthread_self(), buf, sizeof buf);
  return buf;
}

} // namespace

TEST(ThreadNames, ThePoolsAndTheStoreThreadCarryTheirNames) {
  // What `top -H`, `perf` and benchmarks/ab-fixed-rate group threads by.
  engine::worker_pool<int> pool{2, [] { return std::make_unique<int>(0); },
                                "rb.carrier"};
  std::promise<std::string> pooled;
  pool.post([&](int&) { pooled.set_value(this_thread_name()); });
  EXPECT_EQ(pooled.get_future().get(), "rb.carrier");

  engine::store_executor store{
    std::make_unique<NiceMock<testkit::mock_store>>()};
  std::promise<std::string> stored;
  store.post([&](engine::store&) { stored.set_value(this_thread_name()); });
  EXPECT_EQ(stored.get_future().get(), "rb.store");
}

TEST(ThreadNames, ANameTooLongForLinuxIsCutNotLost) {
  std::promise<std::string> seen;
  std::thread t{[&] {
    engine::name_this_thread("rb.a-name-much-longer-than-fifteen");
    seen.set_value(this_thread_name());
  }};
  t.join();
  EXPECT_EQ(seen.get_future().get(), "rb.a-name-much-");
}
