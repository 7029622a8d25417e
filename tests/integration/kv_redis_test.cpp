#include "ringback/adapters/kv/memory_kv.hpp"
#include "ringback/adapters/kv/redis_kv.hpp"
#include "ringback/engine/messaging.hpp"

#include <gtest/gtest.h>

#include "../adapters/kv_conformance_test.hpp"
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

// redis_kv against a real Redis, given as RINGBACK_TEST_REDIS
// (e.g. redis://127.0.0.1:56379/0). Without it the tests are skipped, or fail
// if RINGBACK_REQUIRE_SERVICES=1.

namespace ringback::adapters {
namespace {

using namespace std::chrono_literals;

std::optional<std::string> test_redis_url() {
  const char* url = std::getenv("RINGBACK_TEST_REDIS");
  if (url == nullptr || *url == '\0')
    return std::nullopt;
  return std::string{url};
}

bool services_required() {
  const char* x = std::getenv("RINGBACK_REQUIRE_SERVICES");
  return x != nullptr && std::string{x} == "1";
}

struct redis_backend {
  static std::optional<kv_factory> factory(std::string& why) {
    auto url = test_redis_url();
    if (!url) {
      why = "RINGBACK_TEST_REDIS is not set";
      return std::nullopt;
    }
    return kv_factory{*url};
  }

  static bool required() {
    return services_required();
  }
};

} // namespace
} // namespace ringback::adapters

namespace ringback::kv_conformance {
INSTANTIATE_TYPED_TEST_SUITE_P(redis, kv_conformance,
                               ::testing::Types<adapters::redis_backend>);
} // namespace ringback::kv_conformance

namespace ringback::adapters {
namespace {

/// A plain hiredis connection for looking behind redis_kv's back.
class admin {
public:
  explicit admin(const redis_url& url) {
    ctx_ = redisConnect(url.host.c_str(), url.port);
    if (ctx_ == nullptr || ctx_->err != 0)
      throw std::runtime_error("admin connect failed");
    if (!url.password.empty())
      run({"AUTH", url.password});
  }

  ~admin() {
    redisFree(ctx_);
  }

  admin(const admin&) = delete;
  admin& operator=(const admin&) = delete;

  /// Runs a command; returns its string, status or integer reply as text
  /// (nil as "(nil)", errors as "ERR: ...").
  std::string run(const std::vector<std::string>& argv) {
    std::vector<const char*> args;
    std::vector<std::size_t> lens;
    for (const auto& x : argv) {
      args.push_back(x.data());
      lens.push_back(x.size());
    }
    auto* r = static_cast<redisReply*>(redisCommandArgv(
      ctx_, static_cast<int>(args.size()), args.data(), lens.data()));
    if (r == nullptr)
      throw std::runtime_error("admin command failed");
    std::string out;
    switch (r->type) {
      case REDIS_REPLY_STRING:
      case REDIS_REPLY_STATUS:
        out.assign(r->str, r->len);
        break;
      case REDIS_REPLY_ERROR:
        out = "ERR: " + std::string{r->str, r->len};
        break;
      case REDIS_REPLY_INTEGER:
        out = std::to_string(r->integer);
        break;
      case REDIS_REPLY_NIL:
        out = "(nil)";
        break;
      default:
        out = "(other)";
    }
    freeReplyObject(r);
    return out;
  }

  /// The id of the client called `name`, if connected.
  std::optional<std::string> client_id(const std::string& name) {
    std::istringstream lines{run({"CLIENT", "LIST"})};
    std::string line;
    while (std::getline(lines, line)) {
      if (line.find(" name=" + name + " ") == std::string::npos)
        continue;
      auto start = line.find("id=") + 3;
      return line.substr(start, line.find(' ', start) - start);
    }
    return std::nullopt;
  }

private:
  redisContext* ctx_ = nullptr;
};

class redis_kv_integration : public ::testing::Test {
protected:
  void SetUp() override {
    auto url = test_redis_url();
    if (!url) {
      if (services_required())
        FAIL() << "RINGBACK_TEST_REDIS is not set";
      GTEST_SKIP() << "RINGBACK_TEST_REDIS is not set";
    }
    std::string error;
    auto parsed = parse_redis_url(*url, &error);
    ASSERT_TRUE(parsed) << error;
    url_ = *parsed;
    prefix_ = kv_conformance::unique_prefix();
    // A name no parallel test shares, to find our connection in CLIENT LIST.
    name_ = "rbtest-" + std::to_string(::getpid()) + "-"
            + std::to_string(std::random_device{}());
    admin_ = std::make_unique<admin>(url_);
    admin_->run({"SELECT", std::to_string(url_.db)});
  }

  redis_kv_options options() const {
    redis_kv_options opts;
    opts.client_name = name_;
    return opts;
  }

  redis_url url_;
  std::string prefix_;
  std::string name_;
  std::unique_ptr<admin> admin_;
};

TEST_F(redis_kv_integration, reconnects_after_its_connection_was_killed) {
  redis_kv kv{url_, options()};
  ASSERT_TRUE(kv.ping());
  auto first = admin_->client_id(name_);
  ASSERT_TRUE(first) << "redis_kv is not in CLIENT LIST as " << name_;
  EXPECT_EQ(admin_->run({"CLIENT", "KILL", "ID", *first}), "1");
  ASSERT_TRUE(kv_conformance::eventually(
    [&] { return !admin_->client_id(name_).has_value(); }));
  // The next call notices the dead connection and opens another one.
  EXPECT_TRUE(kv.set_if_absent(prefix_ + "after-kill", "1", 60s));
  auto second = admin_->client_id(name_);
  ASSERT_TRUE(second);
  EXPECT_NE(*second, *first);
  EXPECT_EQ(admin_->run({"GET", prefix_ + "after-kill"}), "1");
  // Killed again: claim reconnects just the same.
  EXPECT_EQ(admin_->run({"CLIENT", "KILL", "ID", *second}), "1");
  ASSERT_TRUE(kv_conformance::eventually(
    [&] { return !admin_->client_id(name_).has_value(); }));
  EXPECT_TRUE(kv.claim(prefix_ + "claim", "node-a", 60s));
  EXPECT_TRUE(admin_->client_id(name_).has_value());
}

TEST_F(redis_kv_integration, set_if_absent_sets_the_value_with_a_ttl) {
  redis_kv kv{url_, options()};
  ASSERT_TRUE(kv.set_if_absent(prefix_ + "k", "v1", 60s));
  EXPECT_EQ(admin_->run({"GET", prefix_ + "k"}), "v1");
  auto pttl = std::stoll(admin_->run({"PTTL", prefix_ + "k"}));
  EXPECT_GT(pttl, 0);
  EXPECT_LE(pttl, 60000);
}

TEST_F(redis_kv_integration, claim_by_its_owner_sets_the_ttl_again) {
  redis_kv kv{url_, options()};
  ASSERT_TRUE(kv.claim(prefix_ + "call", "node-a", 30s));
  EXPECT_EQ(admin_->run({"GET", prefix_ + "call"}), "node-a");
  EXPECT_LE(std::stoll(admin_->run({"PTTL", prefix_ + "call"})), 30000);
  ASSERT_TRUE(kv.claim(prefix_ + "call", "node-a", 60s));
  EXPECT_GT(std::stoll(admin_->run({"PTTL", prefix_ + "call"})), 30000);
  // A losing claim leaves value and TTL alone.
  ASSERT_FALSE(kv.claim(prefix_ + "call", "node-b", 1s));
  EXPECT_EQ(admin_->run({"GET", prefix_ + "call"}), "node-a");
  EXPECT_GT(std::stoll(admin_->run({"PTTL", prefix_ + "call"})), 30000);
}

TEST_F(redis_kv_integration, claim_works_after_the_script_cache_was_flushed) {
  redis_kv kv{url_, options()};
  ASSERT_TRUE(kv.claim(prefix_ + "a", "node-a", 60s));
  // Other tests' claims meanwhile simply fall back to EVAL once.
  EXPECT_EQ(admin_->run({"SCRIPT", "FLUSH"}), "OK");
  EXPECT_TRUE(kv.claim(prefix_ + "b", "node-a", 60s));
  EXPECT_FALSE(kv.claim(prefix_ + "b", "node-b", 60s));
}

TEST_F(redis_kv_integration, selects_the_db_of_the_url) {
  auto url = url_;
  url.db = url_.db == 1 ? 2 : 1;
  redis_kv kv{url, options()};
  ASSERT_TRUE(kv.set_if_absent(prefix_ + "db", "1", 60s));
  EXPECT_EQ(admin_->run({"EXISTS", prefix_ + "db"}), "0");
  admin_->run({"SELECT", std::to_string(url.db)});
  EXPECT_EQ(admin_->run({"EXISTS", prefix_ + "db"}), "1");
}

TEST_F(redis_kv_integration, a_db_out_of_range_is_a_port_error_naming_select) {
  auto url = url_;
  url.db = 99999;
  redis_kv kv{url, options()};
  try {
    kv.ping();
    FAIL() << "expected a port_error";
  } catch (const engine::port_error& e) {
    EXPECT_STREQ(e.what(), "redis SELECT: ERR DB index is out of range");
  }
}

TEST_F(redis_kv_integration, a_wrong_password_is_a_port_error_naming_auth) {
  if (!url_.password.empty())
    GTEST_SKIP() << "the test server has a password";
  auto url = url_;
  url.password = "hunter2";
  redis_kv kv{url, options()};
  try {
    kv.set_if_absent(prefix_ + "k", "v", 1s);
    FAIL() << "expected a port_error";
  } catch (const engine::port_error& e) {
    std::string what = e.what();
    EXPECT_EQ(what.rfind("redis AUTH: ", 0), 0u) << what;
    EXPECT_EQ(what.find("hunter2"), std::string::npos) << what;
  }
}

// -- pace
// -----------------------------------------------------------------------

engine::epoch_ms wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

engine::pace_request pace_at(std::string number_key, engine::pace number,
                             engine::epoch_ms now, std::string tenant_key = {},
                             std::optional<engine::pace> cap = std::nullopt) {
  engine::pace_request r;
  r.number_key = std::move(number_key);
  r.number = number;
  r.tenant_key = std::move(tenant_key);
  r.tenant = cap;
  r.now = now;
  return r;
}

/// Hammers `request(i)` from one thread per kv (each its own connection, as
/// separate processes would) for `duration`, on the wall clock; returns the
/// `now` of every allowed send, sorted.
template <class Request>
std::vector<engine::epoch_ms>
hammer(std::vector<std::unique_ptr<redis_kv>>& kvs,
       std::chrono::milliseconds duration, Request request) {
  std::mutex mutex;
  std::vector<engine::epoch_ms> allowed;
  std::atomic<int> errors{0};
  std::vector<std::thread> pool;
  auto until = std::chrono::steady_clock::now() + duration;
  for (std::size_t i = 0; i < kvs.size(); ++i) {
    pool.emplace_back([&, i] {
      while (std::chrono::steady_clock::now() < until) {
        auto now = wall_ms();
        try {
          if (kvs[i]->pace(request(i, now)).allowed) {
            std::lock_guard<std::mutex> guard{mutex};
            allowed.push_back(now);
          }
        } catch (const engine::port_error&) {
          ++errors;
        }
        std::this_thread::sleep_for(1ms);
      }
    });
  }
  for (auto& t : pool)
    t.join();
  EXPECT_EQ(errors.load(), 0);
  std::sort(allowed.begin(), allowed.end());
  return allowed;
}

/// The most sends whose `now` falls in one window `[k * w, (k + 1) * w)`,
/// and the most in any window of `w` ms starting at a send.
std::pair<int, int> most_per_window(const std::vector<engine::epoch_ms>& at,
                                    engine::epoch_ms w) {
  std::map<engine::epoch_ms, int> fixed;
  int most_fixed = 0;
  for (auto x : at)
    most_fixed = std::max(most_fixed, ++fixed[x / w]);
  int most_sliding = 0;
  for (std::size_t i = 0; i < at.size(); ++i) {
    auto end = std::lower_bound(at.begin() + static_cast<std::ptrdiff_t>(i),
                                at.end(), at[i] + w);
    most_sliding = std::max(
      most_sliding,
      static_cast<int>(end - (at.begin() + static_cast<std::ptrdiff_t>(i))));
  }
  return {most_fixed, most_sliding};
}

TEST_F(redis_kv_integration, two_processes_never_exceed_a_numbers_pace) {
  std::vector<std::unique_ptr<redis_kv>> kvs;
  for (int i = 0; i < 2; ++i) {
    kvs.push_back(std::make_unique<redis_kv>(url_, options()));
    ASSERT_TRUE(kvs.back()->ping());
  }
  auto key = prefix_ + "number";
  engine::pace five{5.0, 1};
  auto allowed = hammer(kvs, 3s, [&](std::size_t, engine::epoch_ms now) {
    return pace_at(key, five, now);
  });
  auto [fixed, sliding] = most_per_window(allowed, 1000);
  EXPECT_LE(fixed, 5);
  EXPECT_LE(sliding, 5);
  for (std::size_t i = 1; i < allowed.size(); ++i)
    EXPECT_GE(allowed[i] - allowed[i - 1], 200) << i;
  // Not vacuous: about 15 in 3 s (a slow machine may lose a few).
  EXPECT_GE(allowed.size(), 10u);
  EXPECT_LE(allowed.size(), 16u);
}

TEST_F(redis_kv_integration, two_processes_never_exceed_a_tenants_cap) {
  std::vector<std::unique_ptr<redis_kv>> kvs;
  for (int i = 0; i < 2; ++i) {
    kvs.push_back(std::make_unique<redis_kv>(url_, options()));
    ASSERT_TRUE(kvs.back()->ping());
  }
  // Each number may send 10/s, but the tenant only 4/s with a burst of 2.
  auto tenant = prefix_ + "tenant";
  engine::pace cap{4.0, 2};
  auto allowed = hammer(kvs, 3s, [&](std::size_t i, engine::epoch_ms now) {
    return pace_at(prefix_ + "number-" + std::to_string(i), {10.0, 1}, now,
                   tenant, cap);
  });
  // GCRA: at most burst + (window / interval) in any window.
  auto [fixed, sliding] = most_per_window(allowed, 1000);
  EXPECT_LE(fixed, 2 + 4);
  EXPECT_LE(sliding, 2 + 4);
  // Over the whole run: the burst plus the rate.
  ASSERT_FALSE(allowed.empty());
  auto span = allowed.back() - allowed.front();
  EXPECT_LE(static_cast<engine::epoch_ms>(allowed.size()), 2 + span / 250 + 1);
  EXPECT_GE(allowed.size(), 8u);
}

TEST_F(redis_kv_integration, pace_keys_hold_the_time_with_the_scripts_ttl) {
  redis_kv kv{url_, options()};
  auto number = prefix_ + "number";
  auto tenant = prefix_ + "tenant";
  constexpr engine::epoch_ms t0 = 1'700'000'000'000;
  ASSERT_TRUE(
    kv.pace(pace_at(number, {1.0, 1}, t0, tenant, engine::pace{0.5, 1}))
      .allowed);
  EXPECT_EQ(admin_->run({"GET", number}), std::to_string(t0 + 1000));
  EXPECT_EQ(admin_->run({"GET", tenant}), std::to_string(t0 + 2000));
  auto number_ttl = std::stoll(admin_->run({"PTTL", number}));
  auto tenant_ttl = std::stoll(admin_->run({"PTTL", tenant}));
  EXPECT_GT(number_ttl, 0);
  EXPECT_LE(number_ttl, 2000); // tat - now + 1 s
  EXPECT_GT(tenant_ttl, 2000);
  EXPECT_LE(tenant_ttl, 3000);
  // A refusal writes nothing, TTLs included.
  ASSERT_FALSE(kv.pace(pace_at(number, {1.0, 1}, t0 + 1)).allowed);
  EXPECT_EQ(admin_->run({"GET", number}), std::to_string(t0 + 1000));
  EXPECT_LE(std::stoll(admin_->run({"PTTL", number})), number_ttl);
  // The key goes away by itself, and with it the state.
  ASSERT_TRUE(kv_conformance::eventually([&] {
    return admin_->run({"EXISTS", number}) == "0";
  }));
  EXPECT_TRUE(kv.pace(pace_at(number, {1.0, 1}, t0 + 1)).allowed);
}

TEST_F(redis_kv_integration, pace_works_after_the_script_cache_was_flushed) {
  redis_kv kv{url_, options()};
  auto number = prefix_ + "number";
  constexpr engine::epoch_ms t0 = 1'700'000'000'000;
  ASSERT_TRUE(kv.pace(pace_at(number, {1.0, 1}, t0)).allowed);
  EXPECT_EQ(admin_->run({"SCRIPT", "FLUSH"}), "OK");
  auto again = kv.pace(pace_at(number, {1.0, 1}, t0 + 1));
  EXPECT_FALSE(again.allowed);
  EXPECT_EQ(again.retry_after_ms, 999);
  EXPECT_TRUE(kv.pace(pace_at(number, {1.0, 1}, t0 + 1000)).allowed);
}

TEST_F(redis_kv_integration, pace_answers_exactly_like_the_memory_kv) {
  // The Lua script against `gcra_pair` (through memory_kv), step by step:
  // odd rates, bursts, bad rates, caps, clocks that jump back and forth.
  // Very slow paces (one send in 1000 s or a year) lock their key for long,
  // so they get keys of their own.
  redis_kv redis{url_, options()};
  memory_kv memory;
  std::mt19937_64 rng{20240611};
  const std::vector<double> rates{1.0, 3.0,  100.0, 0.5,  1.0 / 7.0, 0.3, 2.5,
                                  0.0, -1.0, 33.3,  5000, 1.0 / 3.0, 10.0};
  const std::vector<double> slow_rates{1e-3, 1e-12};
  const std::vector<std::int32_t> bursts{1, 1, 2, 3, 10, 0, -4, 1'000'000};
  auto pick = [&](const auto& xs) {
    return xs[static_cast<std::size_t>(rng() % xs.size())];
  };
  auto one_in = [&](unsigned n) { return rng() % n == 0; };
  engine::epoch_ms now = 1'700'000'000'000;
  int allowed = 0;
  for (int step = 0; step < 1000; ++step) {
    now += static_cast<engine::epoch_ms>(rng() % 1500) - 200;
    engine::pace number{pick(rates), pick(bursts)};
    auto n = "number-" + std::to_string(rng() % 4);
    if (one_in(10)) {
      number.rate_per_s = pick(slow_rates);
      n = "number-slow";
    }
    std::optional<engine::pace> cap;
    std::string t;
    if (one_in(2)) {
      cap = engine::pace{pick(rates), pick(bursts)};
      t = "tenant-" + std::to_string(rng() % 2);
      if (one_in(10)) {
        cap->rate_per_s = pick(slow_rates);
        t = "tenant-slow";
      }
    }
    auto m = memory.pace(pace_at(n, number, now, t, cap));
    auto x = redis.pace(pace_at(prefix_ + n, number, now,
                                cap ? prefix_ + t : std::string{}, cap));
    ASSERT_EQ(x.allowed, m.allowed) << "step " << step;
    ASSERT_EQ(x.retry_after_ms, m.retry_after_ms) << "step " << step;
    allowed += x.allowed ? 1 : 0;
  }
  // Both outcomes were exercised, many times.
  EXPECT_GT(allowed, 200);
  EXPECT_LT(allowed, 800);
}

} // namespace
} // namespace ringback::adapters
