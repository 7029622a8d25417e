#include "ringback/adapters/store/memory_store.hpp"

#include <gtest/gtest.h>

#include "store_conformance.hpp"

#include <chrono>
#include <thread>

namespace ringback::store_conformance {
namespace {

using namespace std::chrono_literals;
using adapters::memory_store;

struct memory_env {
  static constexpr std::string_view backend = "memory";
  static constexpr bool shared = true;

  void set_up() {
    db_ = memory_store{}.database();
  }

  void tear_down() {
    db_.reset();
  }

  std::unique_ptr<adapters::audited_store> open() {
    return std::make_unique<memory_store>(db_);
  }

  std::shared_ptr<adapters::memory_database> db_;
};

INSTANTIATE_TYPED_TEST_SUITE_P(Memory, StoreConformance, memory_env);

class MemoryStore : public ::testing::Test {
protected:
  void SetUp() override {
    a_.migrate();
  }

  memory_store a_;
  memory_store b_{a_.database()};
};

TEST_F(MemoryStore, instances_share_one_database) {
  EXPECT_EQ(b_.schema_version(), adapters::latest_schema_version());
  ASSERT_TRUE(a_.insert_call(make_call("CA1")));
  EXPECT_TRUE(b_.find_call("CA1"));
  memory_store separate;
  EXPECT_EQ(separate.schema_version(), 0);
}

TEST_F(MemoryStore, fail_at_fails_the_nth_call_of_any_instance) {
  a_.fail_at(3);
  EXPECT_TRUE(a_.insert_call(make_call("CA1")));
  EXPECT_TRUE(a_.ping()); // does not count
  EXPECT_TRUE(b_.find_call("CA1"));
  EXPECT_EQ(error_of([&] { b_.insert_call(make_call("CA2")); }),
            "memory insert_call: injected failure");
  EXPECT_FALSE(a_.find_call("CA2"));
  EXPECT_TRUE(b_.insert_call(make_call("CA2"))); // once only
}

TEST_F(MemoryStore, an_injected_failure_aborts_the_transaction) {
  a_.begin();
  ASSERT_TRUE(a_.insert_call(make_call("CA1")));
  a_.fail_at(1);
  EXPECT_EQ(error_of([&] { a_.insert_message(make_message("CA1")); }),
            "memory insert_message: injected failure");
  EXPECT_THROW(a_.commit(), engine::port_error);
  EXPECT_FALSE(a_.find_call("CA1"));
}

TEST_F(MemoryStore, fail_at_commit_discards_the_transaction) {
  a_.begin();
  ASSERT_TRUE(a_.insert_call(make_call("CA1")));
  a_.fail_at(1);
  EXPECT_EQ(error_of([&] { a_.commit(); }), "memory commit: injected failure");
  EXPECT_FALSE(a_.find_call("CA1"));
  EXPECT_TRUE(b_.insert_call(make_call("CA2"))); // the lock is free
}

TEST_F(MemoryStore, an_unreachable_database_fails_every_call) {
  a_.set_reachable(false);
  EXPECT_FALSE(a_.ping());
  EXPECT_FALSE(b_.ping());
  EXPECT_EQ(error_of([&] { b_.insert_call(make_call("CA1")); }),
            "memory insert_call: database unreachable");
  EXPECT_EQ(error_of([&] { a_.begin(); }),
            "memory begin: database unreachable");
  a_.rollback(); // never throws
  a_.set_reachable(true);
  EXPECT_TRUE(a_.ping());
  EXPECT_TRUE(a_.insert_call(make_call("CA1")));
}

TEST_F(MemoryStore, writes_wait_for_a_transaction_then_time_out) {
  b_.busy_timeout(50ms);
  a_.begin();
  ASSERT_TRUE(a_.insert_call(make_call("CA1")));
  EXPECT_EQ(error_of([&] { b_.insert_call(make_call("CA2")); }),
            "memory insert_call: database is locked");
  EXPECT_EQ(error_of([&] { b_.begin(); }), "memory begin: database is locked");
  EXPECT_FALSE(b_.find_call("CA1")); // reads do not wait
  a_.commit();
  EXPECT_TRUE(b_.insert_call(make_call("CA2")));
  EXPECT_TRUE(b_.find_call("CA1"));
}

TEST_F(MemoryStore, a_waiting_write_goes_ahead_after_the_commit) {
  a_.begin();
  std::thread committer{[&] {
    std::this_thread::sleep_for(30ms);
    a_.commit();
  }};
  EXPECT_TRUE(b_.insert_call(make_call("CA1"))); // waits up to 5 s
  committer.join();
  EXPECT_TRUE(a_.find_call("CA1"));
}

TEST_F(MemoryStore, closing_an_instance_rolls_its_transaction_back) {
  {
    memory_store c{a_.database()};
    c.begin();
    ASSERT_TRUE(c.insert_call(make_call("CA1")));
  }
  EXPECT_FALSE(a_.find_call("CA1"));
  EXPECT_TRUE(b_.insert_call(make_call("CA1")));
}

} // namespace
} // namespace ringback::store_conformance
