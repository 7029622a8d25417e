#pragma once

// The behaviour every `engine::kv` adapter must show, as a typed GoogleTest
// suite. Instantiated for memory_kv in tests/adapters/kv_memory_test.cpp
// (unit) and for redis_kv in tests/integration/kv_redis_test.cpp.
//
// A backend is a type with
//   static std::optional<adapters::kv_factory> factory(std::string& why);
//   static bool required();
// `factory` returns nullopt (with the reason) when the backend is not
// available; the test is then skipped, or failed if `required()`.
//
// Keys carry a prefix unique to the process and the test, because the test
// binaries run in parallel against one Redis. Every TTL is at most a minute,
// so nothing is left behind for long.

#include "ringback/adapters/kv/kv_factory.hpp"
#include "ringback/engine/ports.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace ringback::kv_conformance {

using namespace std::chrono_literals;

/// Polls `pred` every 10 ms until it holds or `limit` passes. The limit is a
/// safety net against hanging, far above the time the predicate needs.
template <class Predicate>
bool eventually(Predicate pred, std::chrono::milliseconds limit = 10s) {
  auto give_up = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < give_up) {
    if (pred())
      return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

/// A prefix no other test process or test shares.
inline std::string unique_prefix() {
  static std::atomic<unsigned> counter{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::random_device rd;
  std::string out = "rbtest:";
  if (info != nullptr) {
    out += info->test_suite_name();
    out += '.';
    out += info->name();
  }
  out += ':' + std::to_string(::getpid()) + ':' + std::to_string(rd()) + ':'
         + std::to_string(counter++) + ':';
  return out;
}

template <class Backend>
class kv_conformance : public ::testing::Test {
protected:
  void SetUp() override {
    std::string why;
    factory_ = Backend::factory(why);
    if (!factory_) {
      if (Backend::required())
        FAIL() << why;
      else
        GTEST_SKIP() << why;
    }
    prefix_ = unique_prefix();
  }

  std::unique_ptr<engine::kv> make() {
    return factory_->make_kv();
  }

  std::string key(std::string_view name) const {
    return prefix_ + std::string{name};
  }

  /// Runs `threads` threads, each with its own kv instance, that meet at a
  /// barrier and then call `fn(kv, i)` at once. Returns how many returned
  /// true.
  template <class F>
  int race(int threads, F fn) {
    std::vector<std::unique_ptr<engine::kv>> kvs;
    for (int i = 0; i < threads; ++i) {
      kvs.push_back(make());
      EXPECT_TRUE(kvs.back()->ping()); // connected before the race starts
    }
    std::atomic<int> ready{0};
    std::atomic<int> winners{0};
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i) {
      pool.emplace_back([&, i] {
        ++ready;
        while (ready.load() < threads)
          std::this_thread::yield();
        if (fn(*kvs[static_cast<std::size_t>(i)], i))
          ++winners;
      });
    }
    for (auto& t : pool)
      t.join();
    return winners.load();
  }

  std::optional<adapters::kv_factory> factory_;
  std::string prefix_;
};

TYPED_TEST_SUITE_P(kv_conformance);

TYPED_TEST_P(kv_conformance, ping_answers) {
  auto kv = this->make();
  EXPECT_TRUE(kv->ping());
}

TYPED_TEST_P(kv_conformance, set_if_absent_is_true_only_the_first_time) {
  auto kv = this->make();
  auto k = this->key("dedup");
  EXPECT_TRUE(kv->set_if_absent(k, "1", 60s));
  EXPECT_FALSE(kv->set_if_absent(k, "1", 60s));
  EXPECT_FALSE(kv->set_if_absent(k, "other value", 60s));
  EXPECT_TRUE(kv->set_if_absent(this->key("another"), "1", 60s));
}

TYPED_TEST_P(kv_conformance, instances_of_one_factory_share_keys) {
  auto a = this->make();
  auto b = this->make();
  auto k = this->key("shared");
  EXPECT_TRUE(a->set_if_absent(k, "1", 60s));
  EXPECT_FALSE(b->set_if_absent(k, "1", 60s));
  EXPECT_TRUE(b->claim(this->key("claimed"), "b", 60s));
  EXPECT_FALSE(a->claim(this->key("claimed"), "a", 60s));
}

TYPED_TEST_P(kv_conformance, set_if_absent_key_expires_after_its_ttl) {
  auto kv = this->make();
  auto k = this->key("short");
  ASSERT_TRUE(kv->set_if_absent(k, "1", 50ms));
  EXPECT_TRUE(eventually([&] { return kv->set_if_absent(k, "2", 60s); }));
  // Set again, with a long TTL this time: it stays.
  EXPECT_FALSE(kv->set_if_absent(k, "3", 60s));
}

TYPED_TEST_P(kv_conformance, claim_by_the_same_owner_twice_is_true) {
  auto kv = this->make();
  auto k = this->key("call");
  EXPECT_TRUE(kv->claim(k, "node-a", 60s));
  EXPECT_TRUE(kv->claim(k, "node-a", 60s));
  // Another instance (a restarted process) with the same owner, too.
  EXPECT_TRUE(this->make()->claim(k, "node-a", 60s));
}

TYPED_TEST_P(kv_conformance, claim_by_another_owner_is_false) {
  auto kv = this->make();
  auto k = this->key("call");
  EXPECT_TRUE(kv->claim(k, "node-a", 60s));
  EXPECT_FALSE(kv->claim(k, "node-b", 60s));
  EXPECT_FALSE(this->make()->claim(k, "node-b", 60s));
  EXPECT_TRUE(kv->claim(k, "node-a", 60s));
}

TYPED_TEST_P(kv_conformance, after_expiry_another_owner_wins_the_claim) {
  auto kv = this->make();
  auto k = this->key("call");
  ASSERT_TRUE(kv->claim(k, "node-a", 50ms));
  EXPECT_TRUE(eventually([&] { return kv->claim(k, "node-b", 60s); }));
  EXPECT_FALSE(kv->claim(k, "node-a", 60s));
}

TYPED_TEST_P(kv_conformance, claim_by_its_owner_refreshes_the_ttl) {
  auto kv = this->make();
  auto k = this->key("call");
  auto sentinel = this->key("sentinel");
  ASSERT_TRUE(kv->claim(k, "node-a", 100ms));
  // Set after the claim with the same TTL, so it expires no earlier.
  ASSERT_TRUE(kv->set_if_absent(sentinel, "1", 100ms));
  ASSERT_TRUE(kv->claim(k, "node-a", 60s));
  ASSERT_TRUE(
    eventually([&] { return kv->set_if_absent(sentinel, "1", 60s); }));
  // The first TTL has run out, but the refresh holds the claim.
  EXPECT_FALSE(kv->claim(k, "node-b", 60s));
}

TYPED_TEST_P(kv_conformance, keys_values_and_owners_are_binary_safe) {
  auto kv = this->make();
  auto k = this->key(std::string{"with space\0nul\r\n\xc3\xa9", 18});
  std::string owner{"own\0er", 6};
  EXPECT_TRUE(kv->claim(k, owner, 60s));
  EXPECT_TRUE(kv->claim(k, owner, 60s));
  EXPECT_FALSE(kv->claim(k, std::string{"own"}, 60s));
  EXPECT_TRUE(kv->set_if_absent(this->key(std::string{"\0", 1}), owner, 60s));
  EXPECT_FALSE(kv->set_if_absent(this->key(std::string{"\0", 1}), "", 60s));
}

TYPED_TEST_P(kv_conformance, a_ttl_that_is_not_positive_is_a_port_error) {
  auto kv = this->make();
  for (auto ttl : {0ms, -5ms}) {
    try {
      kv->set_if_absent(this->key("k"), "1", ttl);
      ADD_FAILURE() << "set_if_absent accepted " << ttl.count() << " ms";
    } catch (const engine::port_error& e) {
      EXPECT_NE(std::string{e.what()}.find("ttl must be positive, got "
                                           + std::to_string(ttl.count())
                                           + " ms"),
                std::string::npos)
        << e.what();
    }
    EXPECT_THROW(kv->claim(this->key("k"), "a", ttl), engine::port_error);
  }
  // Nothing was set.
  EXPECT_TRUE(kv->set_if_absent(this->key("k"), "1", 60s));
}

TYPED_TEST_P(kv_conformance, racing_claims_have_exactly_one_winner) {
  constexpr int threads = 16;
  for (int round = 0; round < 5; ++round) {
    auto k = this->key("race-" + std::to_string(round));
    auto winners = this->race(threads, [&](engine::kv& kv, int i) {
      return kv.claim(k, "node-" + std::to_string(i), 60s);
    });
    EXPECT_EQ(winners, 1) << "round " << round;
  }
}

TYPED_TEST_P(kv_conformance, racing_set_if_absent_has_exactly_one_winner) {
  constexpr int threads = 16;
  for (int round = 0; round < 5; ++round) {
    auto k = this->key("race-" + std::to_string(round));
    auto winners = this->race(threads, [&](engine::kv& kv, int) {
      return kv.set_if_absent(k, "1", 60s);
    });
    EXPECT_EQ(winners, 1) << "round " << round;
  }
}

REGISTER_TYPED_TEST_SUITE_P(
  kv_conformance, ping_answers, set_if_absent_is_true_only_the_first_time,
  instances_of_one_factory_share_keys, set_if_absent_key_expires_after_its_ttl,
  claim_by_the_same_owner_twice_is_true, claim_by_another_owner_is_false,
  after_expiry_another_owner_wins_the_claim,
  claim_by_its_owner_refreshes_the_ttl, keys_values_and_owners_are_binary_safe,
  a_ttl_that_is_not_positive_is_a_port_error,
  racing_claims_have_exactly_one_winner,
  racing_set_if_absent_has_exactly_one_winner);

} // namespace ringback::kv_conformance
