#include "ringback/engine/retry_policy.hpp"

#include <gtest/gtest.h>

namespace {

using namespace ringback::engine;
using namespace std::chrono_literals;

carrier_status status(int http, std::optional<std::chrono::milliseconds> after = {}) {
  carrier_status s;
  s.http_status = http;
  s.ok = http >= 200 && http < 300;
  s.retry_after = after;
  return s;
}

TEST(RetryPolicy, SuccessAndPermanentErrorsAreNotRetried) {
  retry_policy p;
  EXPECT_FALSE(p.next_delay(1, status(201), 0.5));
  EXPECT_FALSE(p.next_delay(1, status(400), 0.5));
  EXPECT_FALSE(p.next_delay(1, status(404), 0.5));
}

TEST(RetryPolicy, TransientErrorsBackOffExponentiallyWithinTheWindow) {
  retry_policy p;
  p.base = 1000ms;
  p.cap = 60s;
  for (int http : {0, 429, 500, 503}) {
    EXPECT_EQ(p.next_delay(1, status(http), 0.0), 500ms) << http;
    EXPECT_EQ(p.next_delay(1, status(http), 0.999), 999ms) << http;
    EXPECT_EQ(p.next_delay(3, status(http), 0.0), 2000ms) << http;
  }
  // The window stops growing at the cap.
  EXPECT_EQ(p.next_delay(7, status(500), 1.0), 60s);
}

TEST(RetryPolicy, RetryAfterIsAMinimum) {
  retry_policy p;
  EXPECT_EQ(p.next_delay(1, status(429, 5000ms), 0.0), 5000ms);
  EXPECT_EQ(p.next_delay(1, status(429, 10ms), 0.0), 500ms);
}

TEST(RetryPolicy, AttemptsAreBounded) {
  retry_policy p;
  p.max_attempts = 3;
  EXPECT_TRUE(p.next_delay(2, status(500), 0.1));
  EXPECT_FALSE(p.next_delay(3, status(500), 0.1));
}

} // namespace
