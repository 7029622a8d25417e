// Conversations on CAF's test coordinator: the owner relay, #ref replies, the
// 60-second window and its race across processes, AI turns through the
// tenant's conversation.owner_timeout workflow (offline responder), batching,
// closing and passivation.

#include "ringback/actors/conversations_actor.hpp"

#include "ringback/actors/event_sink.hpp"
#include "ringback/actors/messages.hpp"
#include "ringback/actors/outbox_actor.hpp"
#include "ringback/actors/tenant_actor.hpp"
#include "ringback/adapters/kv/memory_kv.hpp"
#include "ringback/adapters/store/memory_store.hpp"
#include "ringback/workflows/diagnostic.hpp"
#include "ringback/workflows/loader.hpp"

#include "actor_node.hpp"
#include "actor_test.hpp"
#include "fakes.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

namespace {

using namespace ringback;
using namespace std::chrono_literals;
using engine::conversation_state;
using engine::inbound_event;

constexpr const char* business = "+15005550001";
constexpr const char* owner = "+15005550002";
constexpr const char* ann = "+13035551000";
constexpr const char* bob = "+13035552000";

constexpr const char* ai_takeover = R"(name: ai_takeover
trigger: conversation.owner_timeout
steps:
  - id: answer
    ai_reply: {}
  - if: "steps.answer.intent == 'emergency' and conversation.takeover"
    then:
      - notify_owner: "EMERGENCY #{{ conversation.id }}: {{ conversation.last_message }}"
      - if: tenant.page_by_call
        then:
          - call_owner: "Emergency, conversation {{ conversation.id }}: {{ conversation.last_message }}"
)";

std::shared_ptr<const engine::tenant> make_tenant() {
  auto t = std::make_shared<engine::tenant>();
  t->id = "acme";
  t->name = "Acme Plumbing";
  t->owner_phone = owner;
  t->timezone = "UTC";
  t->numbers.push_back({business, engine::number_kind::long_code, 1.0});
  t->profile.booking_link = "https://acme.example/book";
  t->profile.hours = "Mon-Fri 8am-5pm";
  // Texts are not paced here (`unpaced_kv`); the loop and cap guards would
  // otherwise count the relays of a long test conversation.
  t->guards.loop_limit = 0;
  t->guards.automated_per_hour = 0;
  t->conversations.page_by_call = true;
  return t;
}

struct node {
  node(caf::actor_system& sys, std::string id,
       std::shared_ptr<adapters::memory_database> database,
       std::shared_ptr<adapters::memory_kv_state> kv_state,
       testkit::manual_clock& clock,
       std::shared_ptr<const engine::tenant> tenant)
    : db(std::move(database)), kv(std::move(kv_state)), store_q(db),
      kv_q(unpaced), carrier_q(carrier) {
    db.migrate();
    auto s = testkit::node_services(store_q, kv_q, carrier_q, clock,
                                    std::move(id));
    s->started_at = clock.now();
    auto wf = workflows::load_string(ai_takeover, "ai_takeover.yaml");
    EXPECT_TRUE(wf.ok()) << workflows::to_string(wf.diagnostics);
    workflows::catalog cat;
    cat.add(wf.value);
    s->workflows = std::make_shared<actors::catalog_source>(std::move(cat));
    s->numbers = std::make_shared<const actors::tenant_directory>(
      std::vector<engine::tenant>{*tenant});
    svc = s;
    outbox = sys.spawn(actors::outbox_actor, svc);
    this->tenant = sys.spawn(actors::tenant_actor, tenant, svc, outbox);
    sink = std::make_unique<actors::actor_event_sink>(
      svc, std::unordered_map<std::string, caf::actor>{{tenant->id, this->tenant}},
      outbox);
  }

  adapters::memory_store db;
  adapters::memory_kv kv;
  testkit::unpaced_kv unpaced{kv};
  /// Inline unless a test closes it (a backed-up store).
  testkit::gated_store_queue store_q;
  engine::inline_queue<engine::kv> kv_q;
  testkit::fake_carrier carrier;
  engine::inline_queue<engine::carrier> carrier_q;
  actors::services_ptr svc;
  caf::actor outbox;
  caf::actor tenant;
  std::unique_ptr<actors::actor_event_sink> sink;
};

class Conversations : public testkit::actor_test {
protected:
  Conversations()
    : database_(adapters::memory_store{}.database()),
      kv_state_(std::make_shared<adapters::memory_kv_state>()),
      db_(database_), tenant_(make_tenant()) {
    db_.migrate();
    a_ = start("node-a");
  }

  ~Conversations() override {
    for (auto& n : nodes_) {
      caf::anon_send_exit(n->tenant, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(n->outbox, caf::exit_reason::user_shutdown);
    }
    sched_.run();
  }

  node* start(const std::string& id) {
    nodes_.push_back(std::make_unique<node>(sys_, id, database_, kv_state_,
                                            clock_, tenant_));
    caf::anon_send(nodes_.back()->tenant, actors::recover_atom_v);
    sched_.run();
    return nodes_.back().get();
  }

  void sms(node& n, const std::string& from, const std::string& body) {
    inbound_event ev;
    ev.what = inbound_event::kind::sms;
    ev.sid = "SM" + std::to_string(++sids_);
    ev.from = from;
    ev.to = business;
    ev.body = body;
    ev.raw.kind = "sms";
    ev.raw.tenant_id = "acme";
    ev.raw.received_at = clock_.now();
    n.sink->deliver("acme", std::move(ev), nullptr);
    sched_.run();
  }

  void advance(std::chrono::milliseconds d) {
    while (d.count() > 0) {
      auto step = std::min<std::chrono::milliseconds>(d, 500ms);
      clock_.advance(step);
      sched_.advance_time(step);
      sched_.run();
      d -= step;
    }
  }

  /// Texts every node's carrier accepted, as "to: body".
  std::vector<std::string> texts() {
    std::vector<std::string> out;
    for (const auto& n : nodes_)
      for (const auto& m : n->carrier.sent)
        out.push_back(m.to + ": " + m.body);
    return out;
  }

  std::vector<std::string> texts_to(const std::string& to) {
    std::vector<std::string> out;
    for (const auto& n : nodes_)
      for (const auto& m : n->carrier.sent)
        if (m.to == to)
          out.push_back(m.body);
    return out;
  }

  engine::conversation_record conversation(const std::string& customer) {
    return db_.find_or_create_conversation("acme", customer, business,
                                           clock_.now());
  }

  std::vector<std::string> events(const std::string& customer) {
    std::vector<std::string> out;
    for (const auto& e : db_.conversation_events(conversation(customer).id))
      out.push_back(e.kind);
    return out;
  }

  std::vector<std::string> transcript(const std::string& customer) {
    std::vector<std::string> out;
    for (const auto& m : db_.conversation_messages(conversation(customer).id, 100))
      out.push_back(m.author + ": " + m.body);
    return out;
  }

  actors::conversations_state& conversations_of(node& n) {
    auto* t = caf::actor_cast<caf::abstract_actor*>(n.tenant);
    auto& ts = dynamic_cast<caf::stateful_actor<actors::tenant_state>&>(*t).state;
    auto* c = caf::actor_cast<caf::abstract_actor*>(ts.conversations);
    return dynamic_cast<caf::stateful_actor<actors::conversations_state>&>(*c)
      .state;
  }

  testkit::manual_clock clock_;
  std::shared_ptr<adapters::memory_database> database_;
  std::shared_ptr<adapters::memory_kv_state> kv_state_;
  adapters::memory_store db_;
  std::shared_ptr<const engine::tenant> tenant_;
  std::vector<std::unique_ptr<node>> nodes_;
  node* a_ = nullptr;
  int sids_ = 0;
};

TEST_F(Conversations, ACustomerMessageIsRelayedToTheOwnerWithItsReference) {
  sms(*a_, ann, "my water heater is leaking");
  EXPECT_EQ(texts(), std::vector<std::string>{
                       "+15005550002: [#1 +1 303-555-1000] my water heater is leaking"});
  auto c = conversation(ann);
  EXPECT_EQ(c.ref, 1);
  EXPECT_EQ(c.state, conversation_state::owner_window);
  EXPECT_EQ(transcript(ann),
            std::vector<std::string>{"customer: my water heater is leaking"});
  EXPECT_EQ(events(ann), (std::vector<std::string>{"opened", "window_opened"}));
}

TEST_F(Conversations, RelaysDoNotWaitBehindTheStoresBacklog) {
  a_->store_q.close();
  bool backlog_ran = false;
  a_->store_q.post([&](engine::store&) { backlog_ran = true; });
  sms(*a_, ann, "my water heater is leaking");
  ASSERT_TRUE(a_->store_q.drain_ahead([&] { sched_.run(); }));
  EXPECT_EQ(texts(), std::vector<std::string>{
                       "+15005550002: [#1 +1 303-555-1000] my water heater is leaking"});
  // The owner's answer goes back the same way.
  sms(*a_, owner, "on my way");
  ASSERT_TRUE(a_->store_q.drain_ahead([&] { sched_.run(); }));
  EXPECT_EQ(texts_to(ann), std::vector<std::string>{"on my way"});
  EXPECT_FALSE(backlog_ran);
  a_->store_q.open();
  sched_.run();
  EXPECT_TRUE(backlog_ran);
  EXPECT_EQ(conversation(ann).state, conversation_state::owner_active);
}

TEST_F(Conversations, ARelayGoesOutAfterTheTransactionThatWritesIt) {
  // The conversation's transaction claims the relay it writes
  // (`claim_in_writing`): the outbox needs no store job of its own, so the
  // relay reaches the carrier in the round of store jobs that writes it,
  // the third after the customer's text came (a fourth when the outbox
  // claimed it itself).
  a_->store_q.close();
  sms(*a_, ann, "my water heater is leaking");
  int rounds = 0;
  while (texts().empty() && a_->store_q.held_ahead() > 0 && rounds < 10) {
    a_->store_q.open_ahead();
    sched_.run();
    ++rounds;
  }
  ASSERT_EQ(texts().size(), 1u);
  EXPECT_EQ(rounds, 3);
  a_->store_q.open();
  sched_.run();
  auto relay = db_.find_message_by_sid("SM1");
  ASSERT_TRUE(relay);
  EXPECT_EQ(relay->state, engine::message_state::sent);
  EXPECT_EQ(relay->attempts, 1);
}

TEST_F(Conversations, TheOwnersPlainReplyReachesTheCustomerAndWinsTheWindow) {
  sms(*a_, ann, "can someone come today?");
  advance(30s);
  sms(*a_, owner, "Yes, I can be there at 3");
  EXPECT_EQ(texts_to(ann), std::vector<std::string>{"Yes, I can be there at 3"});
  EXPECT_EQ(conversation(ann).state, conversation_state::owner_active);
  EXPECT_EQ(conversation(ann).outcome, engine::window_outcome::owner);
  advance(60s);
  EXPECT_EQ(texts_to(ann).size(), 1u) << "no AI after the owner answered";
  auto ev = events(ann);
  EXPECT_NE(std::find(ev.begin(), ev.end(), "owner_won"), ev.end());
  EXPECT_EQ(std::count(ev.begin(), ev.end(), "ai_won"), 0);
  EXPECT_EQ(transcript(ann),
            (std::vector<std::string>{"customer: can someone come today?",
                                      "owner: Yes, I can be there at 3"}));
}

TEST_F(Conversations, SixtySecondsOfSilenceLetTheAIAnswerOnce) {
  sms(*a_, ann, "can you book me in for tomorrow?");
  advance(59s);
  EXPECT_TRUE(texts_to(ann).empty());
  advance(2s);
  auto replies = texts_to(ann);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_NE(replies[0].find("https://acme.example/book"), std::string::npos)
    << replies[0];
  auto c = conversation(ann);
  EXPECT_EQ(c.state, conversation_state::ai_active);
  EXPECT_EQ(c.outcome, engine::window_outcome::ai);
  auto ev = events(ann);
  EXPECT_EQ(std::count(ev.begin(), ev.end(), "ai_won"), 1);
  EXPECT_EQ(std::count(ev.begin(), ev.end(), "ai_turn"), 1);
  auto t = transcript(ann);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[1].rfind("ai: ", 0), 0u);
  // The owner takes over again at any time; the AI stops.
  sms(*a_, owner, "I'll call you in 5 min");
  EXPECT_EQ(conversation(ann).state, conversation_state::owner_active);
  ev = events(ann);
  EXPECT_EQ(std::count(ev.begin(), ev.end(), "taken_back"), 1);
}

TEST_F(Conversations, TextsInQuickSuccessionMakeOneAITurn) {
  sms(*a_, ann, "hello?");
  advance(61s);
  ASSERT_EQ(texts_to(ann).size(), 1u);
  sms(*a_, ann, "how much");
  advance(1s);
  sms(*a_, ann, "for a new water heater");
  advance(1s);
  sms(*a_, ann, "installed?");
  advance(5s);
  EXPECT_EQ(texts_to(ann).size(), 2u) << "three texts, one answer";
  auto ev = events(ann);
  EXPECT_EQ(std::count(ev.begin(), ev.end(), "ai_turn"), 2);
}

TEST_F(Conversations, TwoCustomersAtOnceNeverHearEachOther) {
  sms(*a_, ann, "leak in the kitchen");
  sms(*a_, bob, "need a quote for a drain");
  // The owner's plain reply goes to the last customer they heard from...
  sms(*a_, owner, "sending a quote tonight");
  EXPECT_EQ(texts_to(bob), std::vector<std::string>{"sending a quote tonight"});
  EXPECT_TRUE(texts_to(ann).empty());
  // ...and #ref picks one.
  sms(*a_, owner, "#1 on my way");
  EXPECT_EQ(texts_to(ann), std::vector<std::string>{"on my way"});
  EXPECT_EQ(texts_to(bob).size(), 1u);
  EXPECT_EQ(conversation(ann).ref, 1);
  EXPECT_EQ(conversation(bob).ref, 2);
}

TEST_F(Conversations, AnUnknownReferenceIsExplainedToTheOwner) {
  sms(*a_, ann, "hi");
  sms(*a_, owner, "#9 hello");
  auto to_owner = texts_to(owner);
  ASSERT_EQ(to_owner.size(), 2u);
  EXPECT_EQ(to_owner[1],
            "No conversation #9. Start your text with the number shown in "
            "brackets, e.g. #12 on my way.");
  EXPECT_TRUE(texts_to(ann).empty());
}

TEST_F(Conversations, TheOwnersAnswerStoredBeforeACrashReachesTheCustomerOnce) {
  sms(*a_, ann, "can someone come today?");
  EXPECT_EQ(db_.find_inbound("SM1")->pending, 0) << "both parts stored";
  a_->store_q.close();
  sms(*a_, owner, "on my way");
  a_->store_q.open_ahead(); // the owner's text commits, then kill -9
  caf::anon_send_exit(a_->tenant, caf::exit_reason::kill);
  caf::anon_send_exit(a_->outbox, caf::exit_reason::kill);
  sched_.run();
  EXPECT_EQ(db_.find_inbound("SM2")->pending, engine::inbound_all_consumers);
  EXPECT_TRUE(texts_to(ann).empty());
  advance(1s);
  auto* again = start("node-a"); // recovers
  EXPECT_EQ(texts_to(ann), std::vector<std::string>{"on my way"});
  EXPECT_EQ(transcript(ann),
            (std::vector<std::string>{"customer: can someone come today?",
                                      "owner: on my way"}));
  EXPECT_EQ(db_.find_inbound("SM2")->pending, 0);
  caf::anon_send(again->tenant, actors::recover_atom_v);
  sched_.run();
  EXPECT_EQ(texts_to(ann).size(), 1u);
}

TEST_F(Conversations, ATextHandedOnAgainIsNotHandledTwice) {
  // What a restart or a second process does with a text it finds pending
  // while its part is being stored meanwhile: the store has the last word.
  sms(*a_, ann, "hi");
  sms(*a_, owner, "#9 hello"); // explained to the owner
  ASSERT_EQ(texts_to(owner).size(), 2u);
  auto again = [&](const std::string& sid, const std::string& from,
                   const std::string& body) {
    inbound_event ev;
    ev.what = inbound_event::kind::sms;
    ev.sid = sid;
    ev.from = from;
    ev.to = business;
    ev.body = body;
    ev.raw.tenant_id = "acme";
    caf::anon_send(a_->tenant, actors::event_atom_v, ev,
                   std::shared_ptr<engine::voice_reply>{});
    sched_.run();
  };
  again("SM1", ann, "hi");
  again("SM2", owner, "#9 hello");
  EXPECT_EQ(texts_to(owner).size(), 2u);
  EXPECT_EQ(transcript(ann), std::vector<std::string>{"customer: hi"});
  // A text whose part was not stored is handled (no row at all: a test's
  // or an older process's event).
  again("SM3", ann, "still there?");
  EXPECT_EQ(texts_to(owner).size(), 3u);
}

TEST_F(Conversations, OwnerAndTimerRacingOnTwoProcessesHaveOneOutcome) {
  auto* b = start("node-b");
  sms(*a_, ann, "anyone there?");
  // B's deadline and A's owner reply land at the same instant: B fires its
  // timer (loaded from the store by its scan) while A takes the owner's text.
  advance(59'500ms);
  caf::anon_send(b->tenant, actors::recover_atom_v); // B scans the store
  clock_.advance(500ms);
  sched_.advance_time(500ms);
  sms(*a_, owner, "here!");
  sched_.run();
  advance(10s);
  auto c = conversation(ann);
  auto ev = events(ann);
  auto owner_won = std::count(ev.begin(), ev.end(), "owner_won");
  auto ai_won = std::count(ev.begin(), ev.end(), "ai_won");
  EXPECT_EQ(owner_won + ai_won, 1) << "exactly one outcome for the window";
  EXPECT_EQ(std::count(ev.begin(), ev.end(), "ai_turn"), ai_won);
  EXPECT_EQ(c.state, conversation_state::owner_active);
  // The customer got the owner's words once, and an AI answer only if the AI
  // won.
  auto to_ann = texts_to(ann);
  EXPECT_EQ(std::count(to_ann.begin(), to_ann.end(), "here!"), 1);
  EXPECT_EQ(static_cast<long>(to_ann.size()), 1 + ai_won);
}

TEST_F(Conversations, IdleConversationsPassivateAndComeBack) {
  auto baseline = sys_.registry().running();
  for (int i = 0; i < 50; ++i)
    sms(*a_, "+1303555" + std::to_string(3000 + i), "hello");
  EXPECT_EQ(conversations_of(*a_).live.size(), 50u);
  EXPECT_EQ(sys_.registry().running(), baseline + 50);
  // The owner answers them all (no AI), then nothing happens for a while.
  for (int i = 0; i < 50; ++i)
    sms(*a_, owner, "#" + std::to_string(i + 1) + " thanks");
  advance(25s);
  EXPECT_EQ(conversations_of(*a_).live.size(), 0u);
  EXPECT_EQ(conversations_of(*a_).timers.size(), 0u)
    << "far deadlines (idle close) are left to the store scan";
  EXPECT_EQ(sys_.registry().running(), baseline) << "their actors are gone";
  // The next message brings one back from the store.
  sms(*a_, "+13035553007", "one more thing");
  EXPECT_EQ(conversations_of(*a_).live.size(), 1u);
  EXPECT_EQ(conversation("+13035553007").state, conversation_state::owner_window);
  EXPECT_EQ(conversation("+13035553007").window_seq, 2);
}

TEST_F(Conversations, AQuietConversationClosesWithASummaryForTheOwner) {
  sms(*a_, ann, "leak!");
  sms(*a_, owner, "coming");
  advance(25s); // passivated
  clock_.advance(24h);
  sched_.advance_time(24h);
  sched_.run();
  advance(31s); // the scan finds the due close
  EXPECT_EQ(conversation(ann).state, conversation_state::closed);
  auto to_owner = texts_to(owner);
  ASSERT_FALSE(to_owner.empty());
  EXPECT_EQ(to_owner.back().rfind("[#1 +1 303-555-1000] closed after 24 h", 0), 0u)
    << to_owner.back();
  // A new message reopens it with a new window.
  sms(*a_, ann, "it's leaking again");
  EXPECT_EQ(conversation(ann).state, conversation_state::owner_window);
  auto ev = events(ann);
  EXPECT_NE(std::find(ev.begin(), ev.end(), "reopened"), ev.end());
}

TEST_F(Conversations, AnEmergencyTheAITakesOverPagesTheOwnerByTextAndCall) {
  sms(*a_, ann, "water is pouring through the ceiling");
  advance(61s);
  auto to_ann = texts_to(ann);
  ASSERT_EQ(to_ann.size(), 1u);
  EXPECT_NE(to_ann[0].find("paging the owner"), std::string::npos) << to_ann[0];
  auto to_owner = texts_to(owner);
  ASSERT_EQ(to_owner.size(), 2u);
  EXPECT_EQ(to_owner[1], "EMERGENCY #1: water is pouring through the ceiling");
  std::vector<engine::call_request> pages;
  for (const auto& n : nodes_)
    pages.insert(pages.end(), n->carrier.pages.begin(), n->carrier.pages.end());
  ASSERT_EQ(pages.size(), 1u);
  EXPECT_EQ(pages[0].to, owner);
  EXPECT_EQ(pages[0].from, business);
  EXPECT_EQ(pages[0].say,
            "Emergency, conversation 1: water is pouring through the ceiling");
}

TEST_F(Conversations, TheTenantsCapBoundsTheAIsReplies) {
  // Only a process with the capped settings runs (node A would also fire
  // the window from its store scan).
  caf::anon_send_exit(a_->tenant, caf::exit_reason::user_shutdown);
  sched_.run();
  auto t = std::make_shared<engine::tenant>(*make_tenant());
  t->conversations.max_reply_chars = 40;
  tenant_ = t;
  auto* b = start("node-b");
  sms(*b, ann, "can you book me in for tomorrow?");
  advance(61s);
  auto replies = texts_to(ann);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_LE(replies[0].size(), 40u) << replies[0];
  EXPECT_FALSE(replies[0].empty());
}

TEST_F(Conversations, StopWinsOverTheAI) {
  sms(*a_, ann, "how much for a drain cleaning?");
  sms(*a_, ann, "STOP");
  advance(61s);
  EXPECT_TRUE(texts_to(ann).empty()) << "the AI's answer is refused by the gate";
}

} // namespace
