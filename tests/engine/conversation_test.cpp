#include "ringback/engine/conversation.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

namespace {

using namespace ringback::engine;
using namespace std::chrono_literals;
using cs = conversation_state;

constexpr epoch_ms t0 = 1'700'000'000'000;

conversation_record fresh() {
  conversation_record c;
  c.id = 7;
  c.tenant_id = "acme";
  c.customer = "+13035551000";
  c.business_number = "+15005550001";
  c.ref = 12;
  c.state = cs::closed;
  c.opened_at = t0;
  c.updated_at = t0;
  return c;
}

bool has(const conversation_effects& fx, const std::string& event) {
  return std::find(fx.events.begin(), fx.events.end(), event) != fx.events.end();
}

TEST(Conversation, AFirstCustomerMessageOpensItAndStartsTheWindow) {
  conversation_settings s;
  auto st = on_customer_message(fresh(), s, t0 + 10);
  ASSERT_TRUE(st.changed);
  EXPECT_EQ(st.next.state, cs::owner_window);
  EXPECT_EQ(st.next.window_seq, 1);
  EXPECT_EQ(st.next.window_deadline, t0 + 10 + 60'000);
  EXPECT_EQ(st.next.outcome, window_outcome::none);
  EXPECT_EQ(st.next.seq, 1);
  EXPECT_EQ(st.next.close_at, t0 + 10 + 24 * 3'600'000);
  EXPECT_TRUE(st.fx.relay_to_owner);
  EXPECT_FALSE(st.fx.ai_turn);
  EXPECT_EQ(st.fx.events, (std::vector<std::string>{"opened", "window_opened"}));
  EXPECT_EQ(next_deadline(st.next), t0 + 10 + 60'000);
}

TEST(Conversation, MoreMessagesKeepTheWindowOfTheFirstUnansweredOne) {
  conversation_settings s;
  auto a = on_customer_message(fresh(), s, t0).next;
  auto b = on_customer_message(a, s, t0 + 30'000);
  EXPECT_EQ(b.next.window_seq, 1);
  EXPECT_EQ(b.next.window_deadline, t0 + 60'000);
  EXPECT_TRUE(b.fx.relay_to_owner);
  EXPECT_TRUE(b.fx.events.empty());
}

TEST(Conversation, TheOwnerAnsweringFirstWinsTheWindow) {
  conversation_settings s;
  auto a = on_customer_message(fresh(), s, t0).next;
  auto o = on_owner_message(a, s, t0 + 59'999);
  EXPECT_EQ(o.next.outcome, window_outcome::owner);
  EXPECT_EQ(o.next.state, cs::owner_active);
  EXPECT_EQ(o.next.window_deadline, 0);
  EXPECT_TRUE(o.fx.send_owner_text);
  EXPECT_TRUE(has(o.fx, "owner_won"));
  // The timer that fires later finds nothing to do.
  auto late = on_due(o.next, s, t0 + 60'000);
  EXPECT_FALSE(late.changed);
  EXPECT_FALSE(late.fx.ai_turn);
}

TEST(Conversation, TheTimerFirstHandsTheConversationToTheAI) {
  conversation_settings s;
  auto a = on_customer_message(fresh(), s, t0).next;
  EXPECT_FALSE(on_due(a, s, t0 + 59'999).changed) << "not before the deadline";
  auto d = on_due(a, s, t0 + 60'000);
  ASSERT_TRUE(d.changed);
  EXPECT_EQ(d.next.outcome, window_outcome::ai);
  EXPECT_EQ(d.next.state, cs::ai_active);
  EXPECT_TRUE(d.fx.ai_turn);
  EXPECT_TRUE(d.fx.takeover);
  EXPECT_EQ(d.next.ai_replies, 1);
  EXPECT_TRUE(has(d.fx, "ai_won"));
  // The owner's reply that lands after it takes the conversation back; the
  // window's outcome stays the AI's.
  auto o = on_owner_message(d.next, s, t0 + 60'001);
  EXPECT_EQ(o.next.outcome, window_outcome::ai);
  EXPECT_EQ(o.next.state, cs::owner_active);
  EXPECT_TRUE(o.fx.send_owner_text);
  EXPECT_TRUE(has(o.fx, "taken_back"));
  EXPECT_FALSE(has(o.fx, "owner_won"));
}

/// Two processes apply their events to the record they read; the store's
/// conditional write (on seq) lets one win; the loser reloads and applies
/// its event again to what is stored.
struct shared_store {
  conversation_record row;

  bool write(const conversation_record& next, std::int64_t expected) {
    if (row.seq != expected)
      return false;
    row = next;
    return true;
  }
};

using event_fn = std::function<conversation_step(const conversation_record&)>;

/// Applies `ev` as a process would: read (possibly stale) `seen`, write, and
/// on a lost write reload and retry. Returns the effects carried out.
conversation_effects apply(shared_store& db, conversation_record seen,
                           const event_fn& ev) {
  for (int i = 0; i < 5; ++i) {
    auto st = ev(seen);
    if (!st.changed)
      return {};
    if (db.write(st.next, seen.seq))
      return st.fx;
    seen = db.row; // lost the race: reload
  }
  ADD_FAILURE() << "no progress";
  return {};
}

TEST(Conversation, EveryInterleavingOfOwnerAndTimerHasExactlyOneOutcome) {
  conversation_settings s;
  const epoch_ms deadline = t0 + 60'000;
  for (epoch_ms owner_at : {deadline - 1, deadline, deadline + 1}) {
    for (bool owner_first : {true, false}) {
      for (bool stale_reads : {true, false}) {
        shared_store db;
        db.row = on_customer_message(fresh(), s, t0).next;
        auto base = db.row;
        event_fn owner = [&](const conversation_record& c) {
          return on_owner_message(c, s, owner_at);
        };
        event_fn timer = [&](const conversation_record& c) {
          return on_due(c, s, deadline);
        };
        // Both processes read `base` before either writes (stale reads), or
        // the second reads after the first wrote.
        conversation_effects first;
        conversation_effects second;
        if (owner_first) {
          first = apply(db, base, owner);
          second = apply(db, stale_reads ? base : db.row, timer);
        } else {
          first = apply(db, base, timer);
          second = apply(db, stale_reads ? base : db.row, owner);
        }
        auto ai_turns = int{first.ai_turn} + int{second.ai_turn};
        auto owner_wins = int{has(first, "owner_won")} + int{has(second, "owner_won")};
        auto ai_wins = int{has(first, "ai_won")} + int{has(second, "ai_won")};
        SCOPED_TRACE(std::string{owner_first ? "owner first" : "timer first"}
                     + (stale_reads ? ", stale reads" : ""));
        EXPECT_EQ(owner_wins + ai_wins, 1) << "exactly one outcome per window";
        EXPECT_EQ(ai_turns, ai_wins) << "the AI speaks only if it won";
        EXPECT_NE(db.row.outcome, window_outcome::none);
        EXPECT_EQ(db.row.state, cs::owner_active)
          << "whoever won, the owner's reply leaves the owner in charge";
        if (owner_first)
          EXPECT_EQ(db.row.outcome, window_outcome::owner);
        else
          EXPECT_EQ(db.row.outcome, window_outcome::ai);
        // The owner's words are sent exactly once either way.
        EXPECT_EQ(int{first.send_owner_text} + int{second.send_owner_text}, 1);
      }
    }
  }
}

TEST(Conversation, TwoProcessesFiringTheSameTimerStartOneAITurn) {
  conversation_settings s;
  shared_store db;
  db.row = on_customer_message(fresh(), s, t0).next;
  auto base = db.row;
  event_fn timer = [&](const conversation_record& c) {
    return on_due(c, s, t0 + 60'000);
  };
  auto a = apply(db, base, timer);
  auto b = apply(db, base, timer);
  EXPECT_EQ(int{a.ai_turn} + int{b.ai_turn}, 1);
  EXPECT_EQ(db.row.ai_replies, 1);
}

TEST(Conversation, ACustomerMessageRacingTheTimerIsNotLost) {
  conversation_settings s;
  shared_store db;
  db.row = on_customer_message(fresh(), s, t0).next;
  auto base = db.row;
  apply(db, base, [&](const conversation_record& c) {
    return on_due(c, s, t0 + 60'000);
  });
  auto fx = apply(db, base, [&](const conversation_record& c) {
    return on_customer_message(c, s, t0 + 60'000);
  });
  EXPECT_TRUE(fx.relay_to_owner);
  // Applied to the AI's conversation: it becomes the AI's next turn.
  EXPECT_EQ(db.row.state, cs::ai_active);
  EXPECT_EQ(db.row.turn_at, t0 + 60'000 + 5'000);
  EXPECT_EQ(db.row.last_customer_at, t0 + 60'000);
}

TEST(Conversation, TextsInQuickSuccessionMakeOneAITurn) {
  conversation_settings s;
  auto c = on_due(on_customer_message(fresh(), s, t0).next, s, t0 + 60'000).next;
  ASSERT_EQ(c.state, cs::ai_active);
  c = on_customer_message(c, s, t0 + 70'000).next;
  EXPECT_EQ(c.turn_at, t0 + 75'000);
  c = on_customer_message(c, s, t0 + 72'000).next;
  c = on_customer_message(c, s, t0 + 74'000).next;
  EXPECT_EQ(c.turn_at, t0 + 75'000) << "the first text of a batch sets its time";
  EXPECT_FALSE(on_due(c, s, t0 + 74'999).changed);
  auto d = on_due(c, s, t0 + 75'000);
  EXPECT_TRUE(d.fx.ai_turn);
  EXPECT_FALSE(d.fx.takeover);
  EXPECT_EQ(d.next.turn_at, 0);
  EXPECT_EQ(d.next.ai_replies, 2);
}

TEST(Conversation, TheOwnerTakesBackAndAPendingTurnIsDropped) {
  conversation_settings s;
  auto c = on_due(on_customer_message(fresh(), s, t0).next, s, t0 + 60'000).next;
  c = on_customer_message(c, s, t0 + 61'000).next;
  ASSERT_NE(c.turn_at, 0);
  auto o = on_owner_message(c, s, t0 + 62'000);
  EXPECT_EQ(o.next.state, cs::owner_active);
  EXPECT_EQ(o.next.turn_at, 0);
  EXPECT_FALSE(on_due(o.next, s, t0 + 70'000).fx.ai_turn);
  // The next customer message opens a new window for the owner.
  auto n = on_customer_message(o.next, s, t0 + 80'000);
  EXPECT_EQ(n.next.state, cs::owner_window);
  EXPECT_EQ(n.next.window_seq, 2);
  EXPECT_TRUE(has(n.fx, "window_opened"));
}

TEST(Conversation, TheAIStopsAfterItsRepliesAreUsedUp) {
  conversation_settings s;
  s.max_ai_replies = 2;
  auto c = on_due(on_customer_message(fresh(), s, t0).next, s, t0 + 60'000).next;
  c = on_customer_message(c, s, t0 + 61'000).next;
  auto d = on_due(c, s, t0 + 66'000);
  EXPECT_TRUE(d.fx.ai_turn);
  EXPECT_EQ(d.next.ai_replies, 2);
  auto e = on_customer_message(d.next, s, t0 + 70'000);
  EXPECT_TRUE(has(e.fx, "ai_cap_reached"));
  EXPECT_EQ(e.next.state, cs::owner_window);
  auto f = on_due(e.next, s, t0 + 130'000);
  EXPECT_FALSE(f.fx.ai_turn) << "the window lapses, the owner keeps it";
  EXPECT_EQ(f.next.state, cs::owner_active);
}

TEST(Conversation, IdleConversationsCloseWithASummaryAndReopen) {
  conversation_settings s;
  s.idle_close = 1h;
  auto c = on_customer_message(fresh(), s, t0).next;
  c = on_owner_message(c, s, t0 + 10'000).next;
  EXPECT_EQ(c.close_at, t0 + 10'000 + 3'600'000);
  EXPECT_FALSE(on_due(c, s, t0 + 3'600'000).changed);
  auto d = on_due(c, s, t0 + 3'610'000);
  EXPECT_EQ(d.next.state, cs::closed);
  EXPECT_TRUE(d.fx.summary_to_owner);
  EXPECT_TRUE(has(d.fx, "closed"));
  EXPECT_EQ(next_deadline(d.next), 0);
  auto r = on_customer_message(d.next, s, t0 + 7'200'000);
  EXPECT_TRUE(has(r.fx, "reopened"));
  EXPECT_EQ(r.next.state, cs::owner_window);
  EXPECT_EQ(r.next.window_seq, 2);
  EXPECT_EQ(r.next.ai_replies, 0);
  EXPECT_EQ(r.next.opened_at, t0 + 7'200'000);
}

TEST(Conversation, ATextBackOpensItForTheOwnerWithoutAWindow) {
  conversation_settings s;
  auto st = on_text_back(fresh(), s, t0);
  EXPECT_EQ(st.next.state, cs::owner_active);
  EXPECT_EQ(st.next.window_deadline, 0);
  EXPECT_TRUE(has(st.fx, "opened"));
  EXPECT_EQ(next_deadline(st.next), st.next.close_at);
  auto reply = on_customer_message(st.next, s, t0 + 5'000);
  EXPECT_EQ(reply.next.state, cs::owner_window);
  EXPECT_EQ(reply.next.window_deadline, t0 + 65'000);
}

TEST(Conversation, OwnerRepliesAreReadWithOrWithoutAReference) {
  auto a = parse_owner_reply("#12 on my way");
  ASSERT_TRUE(a.ref);
  EXPECT_EQ(*a.ref, 12);
  EXPECT_EQ(a.text, "on my way");
  auto b = parse_owner_reply("  #7: be there at 3 ");
  EXPECT_EQ(b.ref.value_or(0), 7);
  EXPECT_EQ(b.text, "be there at 3");
  EXPECT_EQ(parse_owner_reply("# 3, ok").ref.value_or(0), 3);
  auto c = parse_owner_reply("on my way, 20 min");
  EXPECT_FALSE(c.ref);
  EXPECT_EQ(c.text, "on my way, 20 min");
  auto d = parse_owner_reply("#1 fan");
  EXPECT_EQ(d.ref.value_or(0), 1);
  auto e = parse_owner_reply("#1fan is broken");
  EXPECT_FALSE(e.ref) << "a # not followed by a number and a break is text";
  EXPECT_EQ(e.text, "#1fan is broken");
  auto f = parse_owner_reply("#12");
  EXPECT_EQ(f.ref.value_or(0), 12);
  EXPECT_TRUE(f.text.empty());
  EXPECT_FALSE(parse_owner_reply("#9999999999 x").ref) << "too long to be a ref";
}

TEST(Conversation, TheOwnerSeesWhoWroteAndWhichConversation) {
  EXPECT_EQ(display_phone("+13035551000"), "+1 303-555-1000");
  EXPECT_EQ(display_phone("+447911123456"), "+447911123456");
  EXPECT_EQ(format_relay(12, "+13035551000", " my water heater is leaking "),
            "[#12 +1 303-555-1000] my water heater is leaking");
  auto long_one = format_relay(3, "+13035551000", std::string(700, 'a') + " end",
                               100);
  EXPECT_LE(long_one.size(), 100u);
  EXPECT_EQ(long_one.substr(long_one.size() - 3), "...");
}

TEST(Conversation, TheSummaryCountsWhoSpoke) {
  auto c = fresh();
  c.opened_at = t0;
  std::vector<conversation_message> ms;
  auto add = [&](const char* who, const char* body, epoch_ms at) {
    conversation_message m;
    m.author = who;
    m.body = body;
    m.at = at;
    ms.push_back(m);
  };
  add("customer", "old conversation", t0 - 1);
  add("customer", "leak!", t0 + 1);
  add("ai", "we are on it", t0 + 2);
  add("owner", "coming", t0 + 3);
  add("customer", "thanks!", t0 + 4);
  EXPECT_EQ(format_summary(c, ms, t0 + 3'600'000),
            "[#12 +1 303-555-1000] closed after 1 h: 2 from the customer, 1 "
            "from you, 1 from the AI. Last: \"thanks!\"");
}

} // namespace
