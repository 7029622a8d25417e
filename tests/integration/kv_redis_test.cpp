#include "ringback/adapters/kv/redis_kv.hpp"

#include <gtest/gtest.h>

#include "../adapters/kv_conformance_test.hpp"
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
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

} // namespace
} // namespace ringback::adapters
