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
// binaries run in parallel against one Redis. Every TTL is at most a minute
// (pacing keys: their interval x burst, plus a second), so nothing is left
// behind for long.

#include "ringback/adapters/kv/kv_factory.hpp"
#include "ringback/engine/ports.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <memory>
#include <mutex>
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

// -- pace
// -----------------------------------------------------------------------

/// Some instant (epoch ms); the tests pass time in, so they do not depend on
/// how fast they run.
constexpr engine::epoch_ms t0 = 1'700'000'000'000;

/// A pacing request for one number of one tenant, with a cap if `cap`.
inline engine::pace_request
pace_req(const std::string& number_key, engine::pace number,
         engine::epoch_ms now, const std::string& tenant_key = {},
         std::optional<engine::pace> cap = std::nullopt) {
  engine::pace_request r;
  r.number_key = number_key;
  r.number = number;
  r.tenant_key = tenant_key;
  r.tenant = cap;
  r.now = now;
  return r;
}

constexpr engine::pace one_per_s{1.0, 1};

TYPED_TEST_P(kv_conformance, pace_spaces_sends_by_the_interval) {
  auto kv = this->make();
  auto k = this->key("number");
  EXPECT_TRUE(kv->pace(pace_req(k, one_per_s, t0)).allowed);
  auto second = kv->pace(pace_req(k, one_per_s, t0 + 1));
  EXPECT_FALSE(second.allowed);
  EXPECT_GT(second.retry_after_ms, 0);
  EXPECT_LE(second.retry_after_ms, 1000);
  EXPECT_EQ(second.retry_after_ms, 999);
  auto later = kv->pace(pace_req(k, one_per_s, t0 + 600));
  EXPECT_FALSE(later.allowed);
  EXPECT_EQ(later.retry_after_ms, 400);
  // Refusals moved nothing: allowed again one interval after the first.
  auto third = kv->pace(pace_req(k, one_per_s, t0 + 1000));
  EXPECT_TRUE(third.allowed);
  EXPECT_EQ(third.retry_after_ms, 0);
  EXPECT_FALSE(kv->pace(pace_req(k, one_per_s, t0 + 1999)).allowed);
  EXPECT_TRUE(kv->pace(pace_req(k, one_per_s, t0 + 2000)).allowed);
}

TYPED_TEST_P(kv_conformance, pace_allows_a_burst_then_the_rate) {
  auto kv = this->make();
  auto k = this->key("number");
  engine::pace p{2.0, 3}; // 500 ms apart, 3 at once
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(kv->pace(pace_req(k, p, t0)).allowed) << i;
  auto fourth = kv->pace(pace_req(k, p, t0));
  EXPECT_FALSE(fourth.allowed);
  EXPECT_EQ(fourth.retry_after_ms, 500);
  EXPECT_TRUE(kv->pace(pace_req(k, p, t0 + 500)).allowed);
  EXPECT_FALSE(kv->pace(pace_req(k, p, t0 + 500)).allowed);
  // Idle time refills the burst, but never beyond it.
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(kv->pace(pace_req(k, p, t0 + 60'000)).allowed) << i;
  EXPECT_FALSE(kv->pace(pace_req(k, p, t0 + 60'000)).allowed);
}

TYPED_TEST_P(kv_conformance, pace_rounds_the_interval_up_and_reads_fractions) {
  auto kv = this->make();
  auto k = this->key("toll-free");
  engine::pace three{3.0, 1}; // 334 ms, never faster than 3/s
  EXPECT_TRUE(kv->pace(pace_req(k, three, t0)).allowed);
  auto early = kv->pace(pace_req(k, three, t0 + 333));
  EXPECT_FALSE(early.allowed);
  EXPECT_EQ(early.retry_after_ms, 1);
  EXPECT_TRUE(kv->pace(pace_req(k, three, t0 + 334)).allowed);
  auto slow = this->key("slow");
  engine::pace every_8s{0.125, 1};
  EXPECT_TRUE(kv->pace(pace_req(slow, every_8s, t0)).allowed);
  EXPECT_EQ(kv->pace(pace_req(slow, every_8s, t0)).retry_after_ms, 8000);
  auto odd = this->key("odd");
  engine::pace seventh{1.0 / 7.0, 1}; // 7000 ms, not 7001
  EXPECT_TRUE(kv->pace(pace_req(odd, seventh, t0)).allowed);
  EXPECT_EQ(kv->pace(pace_req(odd, seventh, t0)).retry_after_ms, 7000);
}

TYPED_TEST_P(kv_conformance, pace_refuses_a_rate_that_is_not_positive) {
  auto kv = this->make();
  for (double rate : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN(),
                      std::numeric_limits<double>::infinity()}) {
    auto k = this->key("bad-rate");
    auto a = kv->pace(pace_req(k, {rate, 1}, t0));
    EXPECT_FALSE(a.allowed) << rate;
    EXPECT_EQ(a.retry_after_ms, 1000) << rate;
    // A bad cap refuses too, and uses up nothing of the number.
    auto b = kv->pace(
      pace_req(k, one_per_s, t0, this->key("bad-cap"), engine::pace{rate, 1}));
    EXPECT_FALSE(b.allowed) << rate;
    EXPECT_EQ(b.retry_after_ms, 1000) << rate;
  }
  EXPECT_TRUE(kv->pace(pace_req(this->key("bad-rate"), one_per_s, t0)).allowed);
}

TYPED_TEST_P(kv_conformance, pace_never_moves_back_with_the_clock) {
  auto kv = this->make();
  auto k = this->key("number");
  EXPECT_TRUE(kv->pace(pace_req(k, one_per_s, t0)).allowed);
  // Another process with a clock 5 s behind must wait for the pace too.
  auto behind = kv->pace(pace_req(k, one_per_s, t0 - 5000));
  EXPECT_FALSE(behind.allowed);
  EXPECT_EQ(behind.retry_after_ms, 6000);
}

TYPED_TEST_P(kv_conformance, pace_cap_refusal_leaves_the_number_untouched) {
  auto kv = this->make();
  auto a = this->key("number-a");
  auto b = this->key("number-b");
  auto tenant = this->key("tenant");
  engine::pace cap{1.0, 1};
  EXPECT_TRUE(kv->pace(pace_req(a, one_per_s, t0, tenant, cap)).allowed);
  // B's own pace allows it, the tenant's cap does not.
  auto refused = kv->pace(pace_req(b, one_per_s, t0 + 10, tenant, cap));
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_ms, 990);
  // Had the refusal used up B's slot, B alone would be refused now.
  EXPECT_TRUE(kv->pace(pace_req(b, one_per_s, t0 + 20)).allowed);
  EXPECT_FALSE(kv->pace(pace_req(b, one_per_s, t0 + 30)).allowed);
}

TYPED_TEST_P(kv_conformance, pace_number_refusal_leaves_the_cap_untouched) {
  auto kv = this->make();
  auto a = this->key("number-a");
  auto b = this->key("number-b");
  auto c = this->key("number-c");
  auto tenant = this->key("tenant");
  engine::pace cap{1.0, 2}; // two at once across the tenant's numbers
  EXPECT_TRUE(kv->pace(pace_req(a, one_per_s, t0, tenant, cap)).allowed);
  // A's pace refuses; the cap's second slot must still be free.
  EXPECT_FALSE(kv->pace(pace_req(a, one_per_s, t0 + 1, tenant, cap)).allowed);
  EXPECT_TRUE(kv->pace(pace_req(b, one_per_s, t0 + 2, tenant, cap)).allowed);
  // Now the cap is used up.
  auto third = kv->pace(pace_req(c, one_per_s, t0 + 3, tenant, cap));
  EXPECT_FALSE(third.allowed);
  EXPECT_EQ(third.retry_after_ms, 997);
}

TYPED_TEST_P(kv_conformance, pace_retry_is_the_longer_of_the_two) {
  auto kv = this->make();
  auto k = this->key("number");
  auto tenant = this->key("tenant");
  engine::pace cap{0.5, 1}; // 2 s
  EXPECT_TRUE(kv->pace(pace_req(k, one_per_s, t0, tenant, cap)).allowed);
  EXPECT_EQ(
    kv->pace(pace_req(k, one_per_s, t0 + 1, tenant, cap)).retry_after_ms, 1999);
  engine::pace slow_number{0.25, 1}; // 4 s
  auto k2 = this->key("slow-number");
  auto t2 = this->key("tenant-2");
  EXPECT_TRUE(kv->pace(pace_req(k2, slow_number, t0, t2, cap)).allowed);
  EXPECT_EQ(kv->pace(pace_req(k2, slow_number, t0 + 1, t2, cap)).retry_after_ms,
            3999);
}

TYPED_TEST_P(kv_conformance, pace_numbers_are_independent) {
  auto kv = this->make();
  auto a = this->key("number-a");
  auto b = this->key("number-b");
  EXPECT_TRUE(kv->pace(pace_req(a, one_per_s, t0)).allowed);
  EXPECT_TRUE(kv->pace(pace_req(b, one_per_s, t0)).allowed);
  EXPECT_FALSE(kv->pace(pace_req(a, one_per_s, t0 + 1)).allowed);
  EXPECT_FALSE(kv->pace(pace_req(b, one_per_s, t0 + 1)).allowed);
  EXPECT_TRUE(kv->pace(pace_req(a, one_per_s, t0 + 1000)).allowed);
}

TYPED_TEST_P(kv_conformance, pace_tenants_are_independent) {
  auto kv = this->make();
  engine::pace cap{1.0, 1};
  auto acme = this->key("tenant-acme");
  auto bolt = this->key("tenant-bolt");
  EXPECT_TRUE(
    kv->pace(pace_req(this->key("acme-1"), one_per_s, t0, acme, cap)).allowed);
  EXPECT_TRUE(
    kv->pace(pace_req(this->key("bolt-1"), one_per_s, t0, bolt, cap)).allowed);
  // Each tenant's cap is used up by its own send only.
  EXPECT_FALSE(
    kv->pace(pace_req(this->key("acme-2"), one_per_s, t0, acme, cap)).allowed);
  EXPECT_FALSE(
    kv->pace(pace_req(this->key("bolt-2"), one_per_s, t0, bolt, cap)).allowed);
  EXPECT_TRUE(
    kv->pace(pace_req(this->key("acme-2"), one_per_s, t0 + 1000, acme, cap))
      .allowed);
}

TYPED_TEST_P(kv_conformance, pace_is_shared_by_instances_of_one_factory) {
  auto a = this->make();
  auto b = this->make();
  auto k = this->key("number");
  EXPECT_TRUE(a->pace(pace_req(k, one_per_s, t0)).allowed);
  EXPECT_FALSE(b->pace(pace_req(k, one_per_s, t0 + 1)).allowed);
  EXPECT_TRUE(b->pace(pace_req(k, one_per_s, t0 + 1000)).allowed);
  EXPECT_FALSE(a->pace(pace_req(k, one_per_s, t0 + 1001)).allowed);
}

TYPED_TEST_P(kv_conformance, racing_paces_allow_exactly_the_burst) {
  constexpr int threads = 16;
  for (int burst : {1, 3}) {
    auto k = this->key("race-" + std::to_string(burst));
    auto winners = this->race(threads, [&](engine::kv& kv, int) {
      return kv.pace(pace_req(k, {1.0, burst}, t0)).allowed;
    });
    EXPECT_EQ(winners, burst);
  }
}

TYPED_TEST_P(kv_conformance, pace_rejects_malformed_requests) {
  auto kv = this->make();
  auto message_of = [&](const engine::pace_request& r) -> std::string {
    try {
      kv->pace(r);
    } catch (const engine::port_error& e) {
      return e.what();
    }
    return "(no error)";
  };
  auto empty_key = message_of(pace_req("", one_per_s, t0));
  EXPECT_NE(empty_key.find(": number_key is empty"), std::string::npos)
    << empty_key;
  auto no_tenant_key = message_of(
    pace_req(this->key("n"), one_per_s, t0, "", engine::pace{1.0, 1}));
  EXPECT_NE(no_tenant_key.find(": a tenant cap needs a tenant_key"),
            std::string::npos)
    << no_tenant_key;
  // Nothing was used up; a tenant key without a cap is no cap.
  auto t = this->key("tenant");
  EXPECT_TRUE(kv->pace(pace_req(this->key("n"), one_per_s, t0, t)).allowed);
  EXPECT_TRUE(kv->pace(pace_req(this->key("m"), one_per_s, t0, t)).allowed);
}

// -- pace_slots
// -----------------------------------------------------------------------

TYPED_TEST_P(kv_conformance, pace_slots_grants_consecutive_slots) {
  auto kv = this->make();
  auto k = this->key("number");
  engine::pace fast{1000.0, 1}; // 1 ms apart
  auto a = kv->pace_slots(pace_req(k, fast, t0), 10, 200);
  std::vector<engine::epoch_ms> want;
  for (int i = 0; i < 10; ++i)
    want.push_back(t0 + i);
  EXPECT_EQ(a.starts, want);
  EXPECT_EQ(a.retry_after_ms, 0);
  // The slots are taken: the next ones follow, and a single send waits.
  auto b = kv->pace_slots(pace_req(k, fast, t0), 3, 200);
  EXPECT_EQ(b.starts, (std::vector<engine::epoch_ms>{t0 + 10, t0 + 11, t0 + 12}));
  auto one = kv->pace(pace_req(k, fast, t0 + 12));
  EXPECT_FALSE(one.allowed);
  EXPECT_EQ(one.retry_after_ms, 1);
  EXPECT_TRUE(kv->pace(pace_req(k, fast, t0 + 13)).allowed);
  // A burst goes at once, then the rate.
  auto bk = this->key("burst");
  auto c = kv->pace_slots(pace_req(bk, {2.0, 3}, t0), 5, 600);
  EXPECT_EQ(c.starts,
            (std::vector<engine::epoch_ms>{t0, t0, t0, t0 + 500}));
  EXPECT_TRUE(kv->pace_slots(pace_req(bk, {2.0, 3}, t0), 0, 600).starts.empty());
}

TYPED_TEST_P(kv_conformance, pace_slots_stop_at_the_horizon_and_say_when) {
  auto kv = this->make();
  auto k = this->key("number");
  auto a = kv->pace_slots(pace_req(k, one_per_s, t0), 3, 200);
  EXPECT_EQ(a.starts, (std::vector<engine::epoch_ms>{t0}));
  auto b = kv->pace_slots(pace_req(k, one_per_s, t0 + 100), 3, 200);
  EXPECT_TRUE(b.starts.empty());
  EXPECT_EQ(b.retry_after_ms, 900);
  // A slot within the horizon is granted ahead of its time.
  auto c = kv->pace_slots(pace_req(k, one_per_s, t0 + 850), 3, 200);
  EXPECT_EQ(c.starts, (std::vector<engine::epoch_ms>{t0 + 1000}));
  // A rate that is not positive grants nothing, ever.
  auto d = kv->pace_slots(pace_req(this->key("bad"), {0.0, 1}, t0), 3, 200);
  EXPECT_TRUE(d.starts.empty());
  EXPECT_GT(d.retry_after_ms, 0);
}

TYPED_TEST_P(kv_conformance, pace_slots_decide_like_paces_one_by_one) {
  // The same questions, asked as slots on one key and through the default
  // (one `pace` per slot and refusal) on another, get the same answers,
  // with and without a tenant cap.
  auto kv = this->make();
  struct question {
    engine::epoch_ms at;
    std::size_t count;
    engine::epoch_ms horizon;
  };
  const std::vector<question> qs{{t0, 5, 200},        {t0, 5, 200},
                                 {t0 + 150, 20, 200}, {t0 + 151, 1, 0},
                                 {t0 + 900, 64, 250}, {t0 + 905, 64, 0},
                                 {t0 + 5000, 3, 1000}};
  for (bool capped : {false, true}) {
    std::string tag = capped ? "capped" : "free";
    auto ka = this->key("a-" + tag);
    auto kb = this->key("b-" + tag);
    auto ta = capped ? this->key("ta") : std::string{};
    auto tb = capped ? this->key("tb") : std::string{};
    std::optional<engine::pace> cap;
    if (capped)
      cap = engine::pace{40.0, 2};
    engine::pace number{100.0, 3};
    for (const auto& q : qs) {
      auto a = kv->pace_slots(pace_req(ka, number, q.at, ta, cap), q.count,
                              q.horizon);
      auto b = kv->engine::kv::pace_slots(pace_req(kb, number, q.at, tb, cap),
                                          q.count, q.horizon);
      EXPECT_EQ(a.starts, b.starts) << tag << " at +" << q.at - t0;
      EXPECT_EQ(a.retry_after_ms, b.retry_after_ms) << tag << " at +" << q.at - t0;
    }
  }
}

TYPED_TEST_P(kv_conformance, racing_pace_slots_never_share_a_slot) {
  constexpr int threads = 8;
  auto k = this->key("race");
  std::mutex mtx;
  std::vector<engine::epoch_ms> all;
  this->race(threads, [&](engine::kv& kv, int) {
    auto a = kv.pace_slots(pace_req(k, {1000.0, 1}, t0), 10, 1000);
    std::lock_guard<std::mutex> guard{mtx};
    all.insert(all.end(), a.starts.begin(), a.starts.end());
    return !a.starts.empty();
  });
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), 80u);
  for (std::size_t i = 0; i < all.size(); ++i)
    EXPECT_EQ(all[i], t0 + static_cast<engine::epoch_ms>(i));
}

TYPED_TEST_P(kv_conformance, pace_slots_reject_malformed_requests) {
  auto kv = this->make();
  auto message_of = [&](const engine::pace_request& r) -> std::string {
    try {
      kv->pace_slots(r, 3, 100);
    } catch (const engine::port_error& e) {
      return e.what();
    }
    return "(no error)";
  };
  auto empty_key = message_of(pace_req("", one_per_s, t0));
  EXPECT_NE(empty_key.find(": number_key is empty"), std::string::npos)
    << empty_key;
  auto no_tenant_key = message_of(
    pace_req(this->key("n"), one_per_s, t0, "", engine::pace{1.0, 1}));
  EXPECT_NE(no_tenant_key.find(": a tenant cap needs a tenant_key"),
            std::string::npos)
    << no_tenant_key;
}

REGISTER_TYPED_TEST_SUITE_P(
  kv_conformance, ping_answers, set_if_absent_is_true_only_the_first_time,
  instances_of_one_factory_share_keys, set_if_absent_key_expires_after_its_ttl,
  claim_by_the_same_owner_twice_is_true, claim_by_another_owner_is_false,
  after_expiry_another_owner_wins_the_claim,
  claim_by_its_owner_refreshes_the_ttl, keys_values_and_owners_are_binary_safe,
  a_ttl_that_is_not_positive_is_a_port_error,
  racing_claims_have_exactly_one_winner,
  racing_set_if_absent_has_exactly_one_winner,
  pace_spaces_sends_by_the_interval, pace_allows_a_burst_then_the_rate,
  pace_rounds_the_interval_up_and_reads_fractions,
  pace_refuses_a_rate_that_is_not_positive,
  pace_never_moves_back_with_the_clock,
  pace_cap_refusal_leaves_the_number_untouched,
  pace_number_refusal_leaves_the_cap_untouched,
  pace_retry_is_the_longer_of_the_two, pace_numbers_are_independent,
  pace_tenants_are_independent, pace_is_shared_by_instances_of_one_factory,
  racing_paces_allow_exactly_the_burst, pace_rejects_malformed_requests,
  pace_slots_grants_consecutive_slots,
  pace_slots_stop_at_the_horizon_and_say_when,
  pace_slots_decide_like_paces_one_by_one, racing_pace_slots_never_share_a_slot,
  pace_slots_reject_malformed_requests);

} // namespace ringback::kv_conformance
