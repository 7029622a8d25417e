#include "ringback/adapters/kv/memory_kv.hpp"

#include <gtest/gtest.h>

#include "kv_conformance_test.hpp"

#include <atomic>
#include <chrono>
#include <memory>

namespace ringback::adapters {
namespace {

using namespace std::chrono_literals;

struct memory_backend {
  static std::optional<kv_factory> factory(std::string&) {
    return kv_factory{"memory"};
  }

  static bool required() {
    return true;
  }
};

} // namespace
} // namespace ringback::adapters

namespace ringback::kv_conformance {
INSTANTIATE_TYPED_TEST_SUITE_P(memory, kv_conformance,
                               ::testing::Types<adapters::memory_backend>);
} // namespace ringback::kv_conformance

namespace ringback::adapters {
namespace {

/// A steady clock moved by hand, shared with the state under test.
struct manual_steady_clock {
  std::shared_ptr<std::atomic<std::chrono::steady_clock::time_point>> now
    = std::make_shared<std::atomic<std::chrono::steady_clock::time_point>>(
      std::chrono::steady_clock::time_point{} + 1h);

  memory_kv_state::clock_function function() const {
    return [p = now] { return p->load(); };
  }

  void advance(std::chrono::milliseconds d) const {
    now->store(now->load() + d);
  }
};

class memory_kv_test : public ::testing::Test {
protected:
  manual_steady_clock clock_;
  std::shared_ptr<memory_kv_state> state_
    = std::make_shared<memory_kv_state>(clock_.function());
  memory_kv kv_{state_};
};

TEST_F(memory_kv_test, a_key_lives_exactly_its_ttl) {
  EXPECT_TRUE(kv_.set_if_absent("k", "v", 100ms));
  clock_.advance(99ms);
  EXPECT_FALSE(kv_.set_if_absent("k", "v", 100ms));
  EXPECT_EQ(state_->get("k"), "v");
  EXPECT_EQ(state_->ttl("k"), 1ms);
  clock_.advance(1ms);
  EXPECT_EQ(state_->get("k"), std::nullopt);
  EXPECT_EQ(state_->ttl("k"), std::nullopt);
  EXPECT_TRUE(kv_.set_if_absent("k", "w", 100ms));
  EXPECT_EQ(state_->get("k"), "w");
}

TEST_F(memory_kv_test, a_claim_by_its_owner_restarts_the_ttl) {
  EXPECT_TRUE(kv_.claim("call", "a", 100ms));
  clock_.advance(80ms);
  EXPECT_TRUE(kv_.claim("call", "a", 100ms));
  EXPECT_EQ(state_->ttl("call"), 100ms);
  clock_.advance(80ms); // 160 ms after the first claim
  EXPECT_FALSE(kv_.claim("call", "b", 100ms));
  clock_.advance(20ms);
  EXPECT_TRUE(kv_.claim("call", "b", 100ms));
  EXPECT_EQ(state_->get("call"), "b");
}

TEST_F(memory_kv_test, a_claim_by_another_owner_leaves_the_ttl_alone) {
  EXPECT_TRUE(kv_.claim("call", "a", 100ms));
  clock_.advance(50ms);
  EXPECT_FALSE(kv_.claim("call", "b", 10s));
  EXPECT_EQ(state_->ttl("call"), 50ms);
  EXPECT_EQ(state_->get("call"), "a");
}

TEST_F(memory_kv_test, expired_keys_nobody_touches_again_are_swept) {
  for (int i = 0; i < 5000; ++i)
    ASSERT_TRUE(kv_.set_if_absent("old-" + std::to_string(i), "1", 1ms));
  clock_.advance(1s);
  for (int i = 0; i < 5000; ++i)
    ASSERT_TRUE(kv_.set_if_absent("new-" + std::to_string(i), "1", 1h));
  // The sweep runs at least every max(1024, size) inserts, so the expired
  // keys are gone by now and memory is bounded by the live ones.
  EXPECT_LE(state_->size(), 5000u + 1024u);
  EXPECT_LT(state_->size(), 10000u);
}

TEST_F(memory_kv_test, handles_on_one_state_share_keys) {
  memory_kv other{state_};
  EXPECT_TRUE(kv_.set_if_absent("k", "v", 1s));
  EXPECT_FALSE(other.set_if_absent("k", "v", 1s));
  EXPECT_TRUE(memory_kv{}.set_if_absent("k", "v", 1s)); // a private state
  EXPECT_EQ(other.state(), state_);
}

TEST_F(memory_kv_test, a_null_state_means_a_private_one) {
  memory_kv kv{nullptr};
  ASSERT_NE(kv.state(), nullptr);
  EXPECT_TRUE(kv.set_if_absent("k", "v", 1s));
  EXPECT_FALSE(kv.set_if_absent("k", "v", 1s));
}

TEST_F(memory_kv_test, ping_is_true) {
  EXPECT_TRUE(kv_.ping());
}

TEST_F(memory_kv_test, ttl_errors_name_the_operation) {
  try {
    kv_.claim("k", "a", 0ms);
    FAIL() << "expected a port_error";
  } catch (const engine::port_error& e) {
    EXPECT_STREQ(e.what(), "memory kv claim: ttl must be positive, got 0 ms");
  }
  try {
    kv_.set_if_absent("k", "a", -1ms);
    FAIL() << "expected a port_error";
  } catch (const engine::port_error& e) {
    EXPECT_STREQ(e.what(),
                 "memory kv set_if_absent: ttl must be positive, got -1 ms");
  }
}

} // namespace
} // namespace ringback::adapters
