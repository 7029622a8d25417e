#include "ringback/adapters/kv/kv_factory.hpp"

#include "ringback/adapters/kv/memory_kv.hpp"
#include "ringback/adapters/kv/redis_kv.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>

namespace ringback::adapters {
namespace {

using namespace std::chrono_literals;

std::string factory_error(std::string_view url) {
  try {
    kv_factory f{url};
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(accepted)";
}

std::string parse_error(std::string_view url) {
  std::string error;
  if (parse_redis_url(url, &error))
    return "(accepted)";
  return error;
}

TEST(kv_factory, memory_instances_of_one_factory_share_a_state) {
  kv_factory f{"memory"};
  EXPECT_TRUE(f.is_memory());
  EXPECT_EQ(f.display_url(), "memory");
  auto a = f.make_kv();
  auto b = f.make_kv();
  ASSERT_NE(dynamic_cast<memory_kv*>(a.get()), nullptr);
  EXPECT_TRUE(a->set_if_absent("k", "1", 1min));
  EXPECT_FALSE(b->set_if_absent("k", "1", 1min));
  // A copy shares too; another factory does not.
  auto copy = f;
  EXPECT_FALSE(copy.make_kv()->set_if_absent("k", "1", 1min));
  EXPECT_TRUE(kv_factory{"memory"}.make_kv()->set_if_absent("k", "1", 1min));
  EXPECT_EQ(f.memory_state(), copy.memory_state());
}

TEST(kv_factory, redis_urls_make_redis_kv_without_connecting) {
  kv_factory f{"redis://:s3cret@127.0.0.1:1/2"};
  EXPECT_FALSE(f.is_memory());
  EXPECT_EQ(f.memory_state(), nullptr);
  EXPECT_EQ(f.display_url(), "redis://:***@127.0.0.1:1/2");
  auto kv = f.make_kv();
  auto* redis = dynamic_cast<redis_kv*>(kv.get());
  ASSERT_NE(redis, nullptr);
  EXPECT_FALSE(redis->connected());
  EXPECT_EQ(redis->url().password, "s3cret");
  EXPECT_EQ(redis->url().db, 2);
}

TEST(kv_factory, rejects_other_schemes_with_a_precise_message) {
  EXPECT_EQ(factory_error("memcached://localhost"),
            "unsupported kv URL 'memcached://localhost': expected memory or "
            "redis://host:port/db");
  EXPECT_EQ(factory_error(""),
            "unsupported kv URL '': expected memory or redis://host:port/db");
  EXPECT_EQ(factory_error("Memory"),
            "unsupported kv URL 'Memory': expected memory or "
            "redis://host:port/db");
  EXPECT_EQ(factory_error("rediss://h:6380/0"),
            "unsupported kv URL 'rediss://h:6380/0': expected memory or "
            "redis://host:port/db");
}

TEST(kv_factory, rejects_malformed_redis_urls_and_masks_passwords) {
  EXPECT_EQ(factory_error("redis://h:x/0"),
            "invalid kv URL 'redis://h:x/0': bad port 'x'");
  EXPECT_EQ(factory_error("redis://:hunter2@h:99999/0"),
            "invalid kv URL 'redis://:***@h:99999/0': bad port '99999'");
  EXPECT_EQ(factory_error("redis://u:hunter2@h:1/db"),
            "invalid kv URL 'redis://u:***@h:1/db': bad db 'db'");
  EXPECT_EQ(factory_error("redis://"),
            "invalid kv URL 'redis://': missing host");
}

TEST(redis_url, parses_every_part) {
  auto u = parse_redis_url("redis://:p%40ss@cache.internal:6380/3");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "cache.internal");
  EXPECT_EQ(u->port, 6380);
  EXPECT_EQ(u->username, "");
  EXPECT_EQ(u->password, "p@ss");
  EXPECT_EQ(u->db, 3);
  EXPECT_EQ(u->display(), "redis://:***@cache.internal:6380/3");

  u = parse_redis_url("redis://alice:pw@10.0.0.1:1/0");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->username, "alice");
  EXPECT_EQ(u->password, "pw");
  EXPECT_EQ(u->display(), "redis://alice:***@10.0.0.1:1/0");
}

TEST(redis_url, has_defaults_for_port_and_db) {
  auto u = parse_redis_url("redis://localhost");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "localhost");
  EXPECT_EQ(u->port, 6379);
  EXPECT_EQ(u->db, 0);
  EXPECT_TRUE(u->password.empty());
  EXPECT_EQ(u->display(), "redis://localhost:6379/0");
  u = parse_redis_url("redis://localhost/");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->db, 0);
}

TEST(redis_url, takes_ipv6_hosts_in_brackets) {
  auto u = parse_redis_url("redis://[::1]:7000/1");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 7000);
  EXPECT_EQ(u->display(), "redis://[::1]:7000/1");
  u = parse_redis_url("redis://[::1]");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->port, 6379);
}

TEST(redis_url, explains_what_is_wrong) {
  EXPECT_EQ(parse_error("http://h"), "expected redis://");
  EXPECT_EQ(parse_error("rediss://h"), "TLS (rediss://) is not supported");
  EXPECT_EQ(parse_error("redis://:6379/0"), "missing host");
  EXPECT_EQ(parse_error("redis://h:/0"), "bad port ''");
  EXPECT_EQ(parse_error("redis://h:0/0"), "bad port '0'");
  EXPECT_EQ(parse_error("redis://h:-1/0"), "bad port '-1'");
  EXPECT_EQ(parse_error("redis://h:6379/-1"), "bad db '-1'");
  EXPECT_EQ(parse_error("redis://h:6379/0/1"), "bad db '0/1'");
  EXPECT_EQ(parse_error("redis://h:6379/0?timeout=1"),
            "unexpected query or fragment '?timeout=1'");
  EXPECT_EQ(parse_error("redis://[::1:6379/0"),
            "missing ']' after the IPv6 host");
  EXPECT_EQ(parse_error("redis://[::1]x/0"), "unexpected 'x' after the host");
  EXPECT_EQ(parse_error("redis://alice@h/0"), "a user name needs a password");
  EXPECT_EQ(parse_error("redis://:p%4@h/0"),
            "bad percent-encoding in the password");
  EXPECT_EQ(parse_error("redis://:p%zz@h/0"),
            "bad percent-encoding in the password");
}

} // namespace
} // namespace ringback::adapters
