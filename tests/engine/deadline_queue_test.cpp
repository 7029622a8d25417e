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

} // namespace
