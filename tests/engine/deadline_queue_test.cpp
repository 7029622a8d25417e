#include "ringback/engine/deadline_queue.hpp"

#include <gtest/gtest.h>

namespace {

using ringback::engine::deadline_queue;

TEST(DeadlineQueue, PopsDueKeysInDeadlineOrder) {
  deadline_queue q;
  q.arm("b", 20);
  q.arm("a", 10);
  q.arm("c", 30);
  EXPECT_EQ(q.next(), 10);
  EXPECT_EQ(q.pop_due(25), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.next(), 30);
  EXPECT_TRUE(q.pop_due(29).empty());
}

TEST(DeadlineQueue, ReArmingMovesTheSingleTimerOfAKey) {
  deadline_queue q;
  q.arm("a", 10);
  q.arm("a", 50);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_TRUE(q.pop_due(40).empty());
  EXPECT_EQ(q.pop_due(50), (std::vector<std::string>{"a"}));
  EXPECT_FALSE(q.next());
}

TEST(DeadlineQueue, CancelForgetsTheKey) {
  deadline_queue q;
  q.arm("a", 10);
  q.cancel("a");
  q.cancel("missing");
  EXPECT_EQ(q.size(), 0u);
  EXPECT_TRUE(q.pop_due(100).empty());
}

TEST(DeadlineQueue, ReArmCancelAndPopKeepDeadlineThenArmingOrder) {
  deadline_queue q;
  q.arm("a", 10);
  q.arm("b", 10);
  q.arm("c", 10);
  q.arm("d", 5);
  q.arm("a", 10); // re-armed: now behind b and c
  q.arm("d", 20); // moved later
  q.cancel("b");
  q.arm("e", 10);
  EXPECT_EQ(q.size(), 4u);
  EXPECT_EQ(q.next(), 10);
  EXPECT_EQ(q.deadline("d"), 20);
  EXPECT_EQ(q.deadline("b"), std::nullopt);
  EXPECT_TRUE(q.contains("a"));
  EXPECT_FALSE(q.contains("b"));
  EXPECT_EQ(q.pop_due(10), (std::vector<std::string>{"c", "a", "e"}));
  EXPECT_FALSE(q.contains("a"));
  EXPECT_EQ(q.keys(), (std::vector<std::string>{"d"}));
  // A popped key can be armed again, and cancelled keys do not come back.
  q.arm("a", 15);
  EXPECT_EQ(q.pop_due(100), (std::vector<std::string>{"a", "d"}));
  EXPECT_EQ(q.size(), 0u);
  EXPECT_FALSE(q.next());
}

TEST(DeadlineQueue, ManyKeysSurviveRehashing) {
  // The time index points into the key index: growing it must not move keys.
  deadline_queue q;
  for (int i = 0; i < 1000; ++i)
    q.arm("CA" + std::to_string(i), 1000 - i);
  for (int i = 0; i < 1000; i += 2)
    q.cancel("CA" + std::to_string(i));
  auto due = q.pop_due(1000);
  ASSERT_EQ(due.size(), 500u);
  EXPECT_EQ(due.front(), "CA999");
  EXPECT_EQ(due.back(), "CA1");
  EXPECT_EQ(q.size(), 0u);
}

} // namespace
