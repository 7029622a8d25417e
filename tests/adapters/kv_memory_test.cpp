#include "ringback/adapters/kv/memory_kv.hpp"

#include <gtest/gtest.h>

#include "kv_conformance_test.hpp"

#include <atomic>
#include <chrono>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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

engine::pace_request pace_at(std::string number_key, engine::epoch_ms now,
                             engine::pace number = {1.0, 1},
                             std::string tenant_key = {},
                             std::optional<engine::pace> cap = std::nullopt) {
  engine::pace_request r;
  r.number_key = std::move(number_key);
  r.number = number;
  r.tenant_key = std::move(tenant_key);
  r.tenant = cap;
  r.now = now;
  return r;
}

constexpr engine::epoch_ms t0 = 1'700'000'000'000;

TEST_F(memory_kv_test, pace_stores_decimal_times_with_the_scripts_ttl) {
  auto a = kv_.pace(pace_at("n", t0, {1.0, 1}, "t", engine::pace{0.5, 1}));
  EXPECT_TRUE(a.allowed);
  EXPECT_EQ(state_->get("n"), std::to_string(t0 + 1000));
  EXPECT_EQ(state_->get("t"), std::to_string(t0 + 2000));
  // tat - now + 1 s, on the state's own clock.
  EXPECT_EQ(state_->ttl("n"), 2000ms);
  EXPECT_EQ(state_->ttl("t"), 3000ms);
  // A burst stores the time furthest ahead.
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(kv_.pace(pace_at("b", t0, {2.0, 3})).allowed);
  EXPECT_EQ(state_->get("b"), std::to_string(t0 + 1500));
  EXPECT_EQ(state_->ttl("b"), 2500ms);
}

TEST_F(memory_kv_test, a_refused_pace_writes_nothing) {
  ASSERT_TRUE(kv_.pace(pace_at("n", t0)).allowed);
  clock_.advance(500ms);
  EXPECT_FALSE(
    kv_.pace(pace_at("n", t0 + 1, {1.0, 1}, "t", engine::pace{1.0, 1}))
      .allowed);
  EXPECT_EQ(state_->get("n"), std::to_string(t0 + 1000));
  EXPECT_EQ(state_->ttl("n"), 1500ms); // not refreshed
  EXPECT_EQ(state_->get("t"), std::nullopt);
}

TEST_F(memory_kv_test, pace_keys_expire_and_take_their_state_along) {
  ASSERT_TRUE(kv_.pace(pace_at("n", t0)).allowed);
  clock_.advance(1999ms);
  ASSERT_TRUE(state_->get("n").has_value());
  clock_.advance(1ms);
  EXPECT_EQ(state_->get("n"), std::nullopt);
  // Expired means never used: even a `now` the stored time would have
  // refused is allowed (the key outlives the time it mattered by 1 s, so
  // this only happens to a clock that went back further than that).
  EXPECT_TRUE(kv_.pace(pace_at("n", t0)).allowed);
}

TEST_F(memory_kv_test, a_stored_value_that_is_no_time_counts_as_never_used) {
  ASSERT_TRUE(kv_.set_if_absent("n", "not a number", 1h));
  EXPECT_TRUE(kv_.pace(pace_at("n", t0)).allowed);
  EXPECT_EQ(state_->get("n"), std::to_string(t0 + 1000));
  EXPECT_EQ(state_->ttl("n"), 2000ms);
  EXPECT_FALSE(kv_.pace(pace_at("n", t0)).allowed);
}

TEST_F(memory_kv_test, pace_survives_extreme_times) {
  constexpr auto lowest = std::numeric_limits<engine::epoch_ms>::min();
  constexpr auto highest = std::numeric_limits<engine::epoch_ms>::max();
  auto low = kv_.pace(pace_at("low", lowest));
  EXPECT_FALSE(low.allowed);
  EXPECT_GT(low.retry_after_ms, 0);
  EXPECT_TRUE(kv_.pace(pace_at("high", highest)).allowed);
  EXPECT_TRUE(state_->ttl("high").has_value());
  // The slowest rate (one a year) with the largest burst: a TTL of
  // centuries, and then more than the steady clock can count, which
  // saturates instead of overflowing.
  engine::pace slowest{1e-12, 1'000'000};
  for (int i = 0; i < 100; ++i)
    ASSERT_TRUE(kv_.pace(pace_at("slow", t0, slowest)).allowed);
  auto ttl = state_->ttl("slow");
  ASSERT_TRUE(ttl.has_value());
  EXPECT_EQ(*ttl, 100 * 365 * 24h + 1000ms);
  for (int i = 0; i < 300; ++i)
    ASSERT_TRUE(kv_.pace(pace_at("slow", t0, slowest)).allowed);
  EXPECT_EQ(state_->get("slow"),
            std::to_string(t0 + 400 * 365LL * 24 * 3'600'000));
  ttl = state_->ttl("slow");
  ASSERT_TRUE(ttl.has_value());
  EXPECT_GT(*ttl, 250 * 365 * 24h);
}

TEST_F(memory_kv_test, pace_errors_name_the_operation) {
  try {
    kv_.pace(pace_at("", t0));
    FAIL() << "expected a port_error";
  } catch (const engine::port_error& e) {
    EXPECT_STREQ(e.what(), "memory kv pace: number_key is empty");
  }
  try {
    kv_.pace(pace_at("n", t0, {1.0, 1}, "", engine::pace{1.0, 1}));
    FAIL() << "expected a port_error";
  } catch (const engine::port_error& e) {
    EXPECT_STREQ(e.what(), "memory kv pace: a tenant cap needs a tenant_key");
  }
  EXPECT_EQ(state_->size(), 0u);
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

TEST_F(memory_kv_test, many_similar_keys_stay_distinct) {
  // Keys are kept as 128-bit hashes: webhook dedup keys that differ in one
  // character, and the empty key, must never be taken for one another.
  std::vector<std::string> keys{""};
  for (int i = 0; i < 200000; ++i)
    keys.push_back("ringback:wh:CA" + std::to_string(1000000 + i)
                   + ":dial_result:no-answer");
  keys.push_back("ringback:wh:CA1000000:dial_result:no-answeR");
  keys.push_back(std::string(1, '\0'));
  keys.push_back(std::string(2, '\0'));
  for (const auto& k : keys)
    ASSERT_TRUE(kv_.set_if_absent(k, "n", 1h)) << k;
  for (const auto& k : keys)
    ASSERT_FALSE(kv_.set_if_absent(k, "n", 1h)) << k;
  EXPECT_EQ(state_->size(), keys.size());
}

TEST_F(memory_kv_test, states_hash_keys_their_own_way_with_the_same_results) {
  auto other = std::make_shared<memory_kv_state>(clock_.function());
  memory_kv b{other};
  EXPECT_TRUE(kv_.claim("call", "a", 100ms));
  EXPECT_TRUE(b.claim("call", "b", 100ms));
  EXPECT_FALSE(b.claim("call", "a", 100ms));
  EXPECT_EQ(other->get("call"), "b");
  EXPECT_EQ(state_->get("call"), "a");
  EXPECT_EQ(other->get("nope"), std::nullopt);
}

} // namespace
} // namespace ringback::adapters
