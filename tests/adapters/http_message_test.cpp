#include "ringback/adapters/http/http_message.hpp"

#include "ringback/adapters/http/reply_slot.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

namespace ringback::adapters {
namespace {

using namespace std::chrono_literals;

TEST(http_request, splits_the_target_into_path_and_query) {
  http_request r;
  r.set_target("/webhooks/twilio/voice?tenant=acme&x=%20");
  EXPECT_EQ(r.target, "/webhooks/twilio/voice?tenant=acme&x=%20");
  EXPECT_EQ(r.path, "/webhooks/twilio/voice");
  EXPECT_EQ(r.query, "tenant=acme&x=%20");
  r.set_target("/plain");
  EXPECT_EQ(r.path, "/plain");
  EXPECT_EQ(r.query, "");
  r.set_target("/a?b?c");
  EXPECT_EQ(r.path, "/a");
  EXPECT_EQ(r.query, "b?c");
  r.set_target("/empty?");
  EXPECT_EQ(r.path, "/empty");
  EXPECT_EQ(r.query, "");
}

TEST(http_request, finds_headers_case_insensitively_first_one_wins) {
  http_request r;
  r.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
               {"X-Twilio-Signature", "abc="},
               {"x-twilio-signature", "second"}};
  EXPECT_EQ(r.header("content-type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(r.header("X-TWILIO-SIGNATURE"), "abc=");
  EXPECT_EQ(r.header("missing"), std::nullopt);
  EXPECT_EQ(r.header("Content-Typ"), std::nullopt);
}

TEST(http_response, text_is_plain_text_with_the_given_status) {
  auto r = http_response::text(404, "not found\n");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(r.body, "not found\n");
  r.headers.push_back({"Retry-After", "5"});
  EXPECT_EQ(r.header("retry-after"), "5");
}

TEST(iequals, compares_ascii_letters_without_case) {
  EXPECT_TRUE(iequals("Content-Length", "content-LENGTH"));
  EXPECT_FALSE(iequals("abc", "abd"));
  EXPECT_FALSE(iequals("abc", "abcd"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("\xc3\xa9", "\xc3\x89")); // no Unicode folding
}

TEST(recording_reply_slot, the_first_reply_wins) {
  auto slot = std::make_shared<recording_reply_slot>();
  EXPECT_FALSE(slot->answered());
  EXPECT_TRUE(slot->reply(http_response::text(200, "first")));
  EXPECT_TRUE(slot->answered());
  EXPECT_FALSE(slot->reply(http_response::text(500, "second")));
  ASSERT_TRUE(slot->response());
  EXPECT_EQ(slot->response()->body, "first");
}

TEST(recording_reply_slot,
     a_deadline_answers_with_its_fallback_unless_answered) {
  auto slot = std::make_shared<recording_reply_slot>();
  EXPECT_FALSE(slot->expire_deadline()); // no deadline yet
  slot->set_deadline(100ms, http_response::text(200, "fallback-1"));
  slot->set_deadline(250ms, http_response::text(200, "fallback-2"));
  EXPECT_EQ(slot->deadline(), 250ms);
  EXPECT_TRUE(slot->expire_deadline());
  EXPECT_EQ(slot->response()->body, "fallback-2");
  EXPECT_FALSE(slot->reply(http_response::text(200, "late")));
  EXPECT_EQ(slot->response()->body, "fallback-2");

  auto answered = std::make_shared<recording_reply_slot>();
  answered->reply(http_response::text(200, "on time"));
  answered->set_deadline(1ms, http_response::text(200, "fallback"));
  EXPECT_EQ(answered->deadline(), std::nullopt); // ignored once answered
  EXPECT_FALSE(answered->expire_deadline());
}

TEST(recording_reply_slot, exactly_one_of_many_racing_replies_wins) {
  auto slot = std::make_shared<recording_reply_slot>();
  std::atomic<int> winners{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      if (slot->reply(http_response::text(200, std::to_string(i))))
        ++winners;
    });
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(winners.load(), 1);
  ASSERT_TRUE(slot->wait(10s));
}

TEST(recording_reply_slot, wait_returns_the_reply_given_by_another_thread) {
  auto slot = std::make_shared<recording_reply_slot>();
  std::thread t{[slot] {
    std::this_thread::sleep_for(20ms);
    slot->reply(http_response::text(202, "later"));
  }};
  auto r = slot->wait(10s);
  t.join();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 202);
}

} // namespace
} // namespace ringback::adapters
