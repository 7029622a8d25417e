#include "ringback/actors/tenant_actor.hpp"

#include "ringback/actors/call_actor.hpp"
#include "ringback/actors/messages.hpp"
#include "ringback/actors/outbox_actor.hpp"
#include "ringback/adapters/kv/memory_kv.hpp"
#include "ringback/adapters/store/memory_store.hpp"
#include "ringback/workflows/diagnostic.hpp"
#include "ringback/workflows/loader.hpp"

#include "actor_node.hpp"
#include "actor_test.hpp"
#include "fakes.hpp"
#include "mock_store.hpp"

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <gtest/gtest.h>

#include <memory>

namespace {

using namespace ringback;
using namespace std::chrono_literals;
using engine::inbound_event;
using kind = inbound_event::kind;

/// One ringback "process": its own queues, kv view, services and actors,
/// over a store and kv state that several nodes may share.
struct node {
  node(caf::actor_system& sys, std::string id,
       std::shared_ptr<adapters::memory_database> database,
       std::shared_ptr<adapters::memory_kv_state> kv_state,
       testkit::manual_clock& clock)
    : db(std::move(database)), kv(std::move(kv_state)), store_q(spy),
      kv_q(unpaced), carrier_q(carrier) {
    spy.delegate_to(db);
    db.migrate();
    auto s = testkit::node_services(store_q, kv_q, carrier_q, clock,
                                    std::move(id));
    testkit::use_test_timing(*s);
    auto wf = workflows::load_string(R"(name: missed_call
trigger: call.missed
steps:
  - id: text_back
    send_sms:
      to: "{{ call.from }}"
      body: "Sorry we missed you - {{ tenant.name }}"
  - id: tell_owner
    notify_owner: "Missed call from {{ call.from }}"
)",
                                     "missed_call.yaml");
    EXPECT_TRUE(wf.ok()) << workflows::to_string(wf.diagnostics);
    workflows::catalog cat;
    cat.add(wf.value);
    s->workflows = std::make_shared<actors::catalog_source>(std::move(cat));
    svc = s;
    auto t = std::make_shared<engine::tenant>();
    t->id = "acme";
    t->name = "Acme Plumbing";
    t->owner_phone = "+15005550002";
    // These tests are about calls: texts are not paced (`unpaced_kv`) and
    // the guards are off (pacing and the guards have their own
    // tests in outbox_test.cpp).
    t->numbers.push_back({"+15005550001", engine::number_kind::long_code, 1.0});
    t->guards.repeat_caller_window = std::chrono::milliseconds{0};
    t->guards.automated_per_hour = 0;
    t->guards.loop_limit = 0;
    t->guards.caller_rate_limit = 0;
    s->numbers = std::make_shared<const actors::tenant_directory>(
      std::vector<engine::tenant>{*t});
    outbox = sys.spawn(actors::outbox_actor, svc);
    tenant = sys.spawn(actors::tenant_actor, t, svc, outbox);
  }

  adapters::memory_store db;
  /// The store as the actors see it: `db`, with calls counted where a test
  /// expects them.
  ::testing::NiceMock<testkit::mock_store> spy;
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
};

class CallFlow : public testkit::actor_test {
protected:
  CallFlow()
    : database_(adapters::memory_store{}.database()),
      kv_state_(std::make_shared<adapters::memory_kv_state>()),
      a_(sys_, "node-a", database_, kv_state_, clock_) {
    sched_.run();
  }

  ~CallFlow() override {
    for (auto* n : {&a_}) {
      caf::anon_send_exit(n->tenant, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(n->outbox, caf::exit_reason::user_shutdown);
    }
    sched_.run();
  }

  std::shared_ptr<testkit::recorded_reply> deliver(node& n, inbound_event ev) {
    auto reply = std::make_shared<testkit::recorded_reply>();
    caf::anon_send(n.tenant, actors::event_atom_v, std::move(ev),
                   std::shared_ptr<engine::voice_reply>{reply});
    sched_.run();
    return reply;
  }

  std::shared_ptr<testkit::recorded_reply> incoming(node& n, const std::string& sid) {
    return deliver(n, testkit::call_event(kind::call_incoming, sid));
  }

  void dial_result(node& n, const std::string& sid, const std::string& status,
                   std::int32_t duration = 0) {
    deliver(n, testkit::call_event(kind::dial_result, sid, status, duration));
  }

  /// Moves the wall clock and CAF's virtual clock together, a second at a
  /// time, so that timers armed by timers fire within the same advance.
  void advance(std::chrono::milliseconds d) {
    while (d.count() > 0) {
      auto step = std::min<std::chrono::milliseconds>(d, 1s);
      clock_.advance(step);
      sched_.advance_time(step);
      sched_.run();
      d -= step;
    }
  }

  actors::tenant_state& tenant_of(node& n) {
    auto* ptr = caf::actor_cast<caf::abstract_actor*>(n.tenant);
    return dynamic_cast<caf::stateful_actor<actors::tenant_state>&>(*ptr).state;
  }

  std::vector<engine::message_record> messages(const std::string& sid) {
    return a_.db.messages_for_call(sid);
  }

  testkit::manual_clock clock_;
  std::shared_ptr<adapters::memory_database> database_;
  std::shared_ptr<adapters::memory_kv_state> kv_state_;
  node a_;
};

TEST_F(CallFlow, IncomingCallIsStoredAndAnsweredWithADialToTheOwner) {
  auto reply = incoming(a_, "CA1");
  ASSERT_EQ(reply->answers.size(), 1u);
  ASSERT_EQ(reply->answers.front().verbs.size(), 1u);
  const auto& a = reply->answers.front().verbs.front();
  EXPECT_EQ(a.what, engine::voice_verb::kind::dial);
  EXPECT_EQ(a.numbers, std::vector<std::string>{"+15005550002"});
  EXPECT_EQ(a.timeout, 20s);
  EXPECT_EQ(a.action_url,
            "https://ringback.example.com/webhooks/twilio/voice/dial-result");
  auto stored = a_.db.find_call("CA1");
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->phase, engine::call_phase::ringing);
  EXPECT_EQ(stored->fallback_at, clock_.now() + 30'000);
  EXPECT_EQ(tenant_of(a_).calls.size(), 1u);
  EXPECT_EQ(tenant_of(a_).timers.size(), 1u);
}

TEST_F(CallFlow, NoAnswerTextsTheCallerAndTheOwnerOnceAndReleasesTheActor) {
  incoming(a_, "CA1");
  auto running_with_call = sys_.registry().running();
  dial_result(a_, "CA1", "no-answer");
  ASSERT_EQ(a_.carrier.sent.size(), 2u);
  EXPECT_EQ(a_.carrier.sent[0].to, "+15550100");
  EXPECT_EQ(a_.carrier.sent[0].from, "+15005550001");
  EXPECT_EQ(a_.carrier.sent[1].to, "+15005550002");
  auto stored = messages("CA1");
  ASSERT_EQ(stored.size(), 2u);
  for (const auto& m : stored) {
    EXPECT_EQ(m.state, engine::message_state::sent);
    EXPECT_EQ(m.attempts, 1);
  }
  EXPECT_EQ(a_.db.find_call("CA1")->phase, engine::call_phase::missed);
  EXPECT_EQ(a_.db.find_call("CA1")->decided, engine::decided_by::dial_result);
  // Released: no actor, no timer left behind for this call.
  EXPECT_TRUE(tenant_of(a_).calls.empty());
  EXPECT_EQ(tenant_of(a_).timers.size(), 0u);
  EXPECT_EQ(sys_.registry().running(), running_with_call - 1);
  // Late and repeated callbacks reload the call and change nothing.
  dial_result(a_, "CA1", "no-answer");
  deliver(a_, testkit::call_event(kind::call_status, "CA1", "completed"));
  advance(60s);
  EXPECT_EQ(a_.carrier.attempts.size(), 2u);
  EXPECT_TRUE(a_.db.find_call("CA1")->ended);
  EXPECT_TRUE(tenant_of(a_).calls.empty());
}

TEST_F(CallFlow, AnsweredCallSendsNothing) {
  incoming(a_, "CA1");
  dial_result(a_, "CA1", "completed", 30);
  advance(60s);
  EXPECT_TRUE(a_.carrier.attempts.empty());
  EXPECT_EQ(a_.db.find_call("CA1")->phase, engine::call_phase::answered);
  EXPECT_TRUE(a_.carrier.queries.empty());
}

TEST_F(CallFlow, LostCallbackIsCaughtByTheFallbackTimer) {
  a_.carrier.set_call("CA1", "completed", "no-answer");
  incoming(a_, "CA1");
  advance(29s);
  EXPECT_TRUE(a_.carrier.queries.empty()) << "not before ring timeout + grace";
  advance(1s);
  EXPECT_EQ(a_.carrier.queries, std::vector<std::string>{"CA1"});
  EXPECT_EQ(a_.carrier.sent.size(), 2u);
  EXPECT_EQ(a_.db.find_call("CA1")->decided, engine::decided_by::fallback);
}

TEST_F(CallFlow, FallbackRechecksACallStillInProgress) {
  a_.carrier.set_call("CA1", "in-progress", "ringing");
  incoming(a_, "CA1");
  advance(30s);
  EXPECT_EQ(a_.carrier.queries.size(), 1u);
  EXPECT_TRUE(a_.carrier.sent.empty());
  a_.carrier.set_call("CA1", "in-progress", "completed", 12);
  advance(15s);
  EXPECT_EQ(a_.carrier.queries.size(), 2u);
  EXPECT_TRUE(a_.carrier.sent.empty());
  EXPECT_EQ(a_.db.find_call("CA1")->phase, engine::call_phase::answered);
}

TEST_F(CallFlow, ACrashedCallActorIsRestoredFromTheStore) {
  incoming(a_, "CA1");
  auto call = tenant_of(a_).calls.at("CA1");
  caf::anon_send_exit(call, caf::exit_reason::kill);
  sched_.run();
  EXPECT_EQ(tenant_of(a_).restored, 1u);
  ASSERT_EQ(tenant_of(a_).calls.count("CA1"), 1u);
  EXPECT_NE(tenant_of(a_).calls.at("CA1"), call);
  dial_result(a_, "CA1", "busy");
  EXPECT_EQ(a_.carrier.sent.size(), 2u);
  // Other calls of the tenant were not disturbed.
  incoming(a_, "CA2");
  dial_result(a_, "CA2", "no-answer");
  EXPECT_EQ(a_.carrier.sent.size(), 4u);
}

TEST_F(CallFlow, UnfinishedCallsAreResumedAfterARestart) {
  auto rec = engine::call_fsm::begin("CA9", "acme", "+15550100", "+15005550001",
                                     "+15005550002", "node-a", clock_.now(),
                                     a_.svc->timing);
  ASSERT_TRUE(a_.db.insert_call(rec));
  a_.carrier.set_call("CA9", "completed", "no-answer");
  caf::anon_send(a_.tenant, actors::recover_atom_v);
  sched_.run();
  EXPECT_EQ(tenant_of(a_).calls.size(), 1u);
  advance(30s);
  EXPECT_EQ(a_.carrier.sent.size(), 2u);
}

TEST_F(CallFlow, TransientSendFailuresAreRetriedPermanentOnesAreNot) {
  a_.carrier.scripted_sends.push_back(testkit::fake_carrier::failure(500));
  a_.carrier.scripted_sends.push_back(testkit::fake_carrier::failure(400, 21211));
  incoming(a_, "CA1");
  dial_result(a_, "CA1", "no-answer");
  // First message: 500 then retried; second: 21211, never retried.
  EXPECT_EQ(a_.carrier.attempts.size(), 2u);
  EXPECT_TRUE(a_.carrier.sent.empty());
  advance(2s);
  EXPECT_EQ(a_.carrier.attempts.size(), 3u);
  ASSERT_EQ(a_.carrier.sent.size(), 1u);
  advance(120s);
  EXPECT_EQ(a_.carrier.attempts.size(), 3u);
  auto stored = messages("CA1");
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].state, engine::message_state::sent);
  EXPECT_EQ(stored[0].attempts, 2);
  EXPECT_EQ(stored[1].state, engine::message_state::failed);
  EXPECT_EQ(stored[1].error_code, 21211);
}

TEST_F(CallFlow, ALostAnswerIsLookedUpNotSentAgain) {
  a_.carrier.scripted_sends.push_back(testkit::fake_carrier::lost_answer());
  incoming(a_, "CA1");
  dial_result(a_, "CA1", "no-answer");
  advance(120s);
  // Two POSTs in all: the lost one reached the carrier and was found there.
  EXPECT_EQ(a_.carrier.attempts.size(), 2u);
  EXPECT_EQ(a_.carrier.lookups, 1);
  EXPECT_EQ(a_.carrier.accepted.size(), 2u);
  auto stored = messages("CA1");
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].state, engine::message_state::sent);
  EXPECT_EQ(stored[0].message_sid, "SM-found-0");
  EXPECT_EQ(stored[0].attempts, 1);
}

TEST_F(CallFlow, ALostRequestIsSentAgainOnceTheCarrierSaysItNeverArrived) {
  a_.carrier.accept_silently = false;
  a_.carrier.lookup_fails = 1; // and the first lookup fails too
  a_.carrier.scripted_sends.push_back(testkit::fake_carrier::lost_answer());
  incoming(a_, "CA1");
  dial_result(a_, "CA1", "no-answer");
  EXPECT_EQ(a_.carrier.lookups, 1);
  advance(120s);
  EXPECT_EQ(a_.carrier.lookups, 2);
  EXPECT_EQ(a_.carrier.attempts.size(), 3u);
  EXPECT_EQ(a_.carrier.sent.size(), 2u);
  auto stored = messages("CA1");
  EXPECT_EQ(stored[0].state, engine::message_state::sent);
  EXPECT_EQ(stored[0].attempts, 2);
}

TEST_F(CallFlow, SendsInterruptedByACrashAreCheckedBeforeResending) {
  engine::message_record delivered;
  delivered.tenant_id = "acme";
  delivered.from = "+15005550001";
  delivered.to = "+15550100";
  delivered.body = "reached the carrier before the crash";
  delivered.state = engine::message_state::sending;
  delivered.attempts = 1;
  delivered.node_id = "node-a";
  auto never = delivered;
  never.body = "never left the process";
  auto queued = delivered;
  queued.body = "queued before the crash";
  queued.state = engine::message_state::queued;
  queued.attempts = 0;
  for (auto* m : {&delivered, &never, &queued})
    m->id = a_.db.insert_message(*m);
  a_.carrier.accepted.push_back({delivered.from, delivered.to, delivered.body, {}});
  caf::anon_send(a_.outbox, actors::recover_atom_v);
  sched_.run();
  advance(120s);
  EXPECT_EQ(a_.carrier.lookups, 2);
  ASSERT_EQ(a_.carrier.sent.size(), 2u);
  EXPECT_EQ(a_.carrier.sent[0].body, "queued before the crash");
  EXPECT_EQ(a_.carrier.sent[1].body, "never left the process");
  for (auto id : {delivered.id, never.id, queued.id})
    EXPECT_EQ(a_.db.find_message(id)->state, engine::message_state::sent) << id;
}

TEST_F(CallFlow, TwoNodesSharingStoreAndKvSendOneText) {
  node b{sys_, "node-b", database_, kv_state_, clock_};
  sched_.run();
  incoming(a_, "CA1");
  // The callback reaches the other node, and a carrier retry reaches this one.
  dial_result(b, "CA1", "no-answer");
  dial_result(a_, "CA1", "no-answer");
  advance(60s);
  EXPECT_EQ(a_.carrier.sent.size() + b.carrier.sent.size(), 2u);
  EXPECT_EQ(messages("CA1").size(), 2u);
  caf::anon_send_exit(b.tenant, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(b.outbox, caf::exit_reason::user_shutdown);
  sched_.run();
}

TEST_F(CallFlow, ADialResultIsWrittenTogetherWithTheOutcomeItDecides) {
  using ::testing::_;
  incoming(a_, "CA1");
  incoming(a_, "CA2");
  // One write per dial result: the decision carries the call's update.
  EXPECT_CALL(a_.spy, update_call(_)).Times(0);
  EXPECT_CALL(a_.spy, decide_outcome(_)).Times(2);
  dial_result(a_, "CA1", "no-answer");
  dial_result(a_, "CA2", "completed", 42);
  ::testing::Mock::VerifyAndClearExpectations(&a_.spy);
  auto missed = a_.db.find_call("CA1");
  EXPECT_EQ(missed->phase, engine::call_phase::missed);
  EXPECT_EQ(missed->dial_status, "no-answer");
  auto answered = a_.db.find_call("CA2");
  EXPECT_EQ(answered->phase, engine::call_phase::answered);
  EXPECT_EQ(answered->dial_status, "completed");
  EXPECT_EQ(answered->dial_duration, 42);
}

TEST_F(CallFlow, ADialResultForACallDecidedElsewhereIsStillWritten) {
  using ::testing::_;
  node b{sys_, "node-b", database_, kv_state_, clock_};
  sched_.run();
  incoming(a_, "CA1");
  dial_result(b, "CA1", "no-answer");
  // The carrier's retry reaches the call's own actor, which loses the claim
  // in the kv: no decision, but its update is written all the same.
  EXPECT_CALL(a_.spy, decide_outcome(_)).Times(0);
  EXPECT_CALL(a_.spy, update_call(_)).Times(1);
  dial_result(a_, "CA1", "no-answer");
  ::testing::Mock::VerifyAndClearExpectations(&a_.spy);
  auto stored = a_.db.find_call("CA1");
  EXPECT_EQ(stored->phase, engine::call_phase::missed);
  EXPECT_EQ(stored->decided, engine::decided_by::dial_result);
  EXPECT_EQ(stored->dial_status, "no-answer");
  advance(60s);
  EXPECT_EQ(a_.carrier.sent.size() + b.carrier.sent.size(), 2u);
  EXPECT_TRUE(tenant_of(a_).calls.empty());
  caf::anon_send_exit(b.tenant, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(b.outbox, caf::exit_reason::user_shutdown);
  sched_.run();
}

TEST_F(CallFlow, ATextBackDoesNotWaitBehindTheStoresBacklog) {
  incoming(a_, "CA1");
  // The store falls behind: other calls' bookkeeping is queued when the
  // dial result comes.
  a_.store_q.close();
  bool backlog_ran = false;
  a_.store_q.post([&](engine::store&) { backlog_ran = true; });
  dial_result(a_, "CA1", "no-answer");
  // The claim, the run it starts, the texts' claims in the outbox: each goes
  // ahead of the backlog.
  ASSERT_TRUE(a_.store_q.drain_ahead([&] { sched_.run(); }));
  ASSERT_EQ(a_.carrier.sent.size(), 2u) << "the text-back and the owner's";
  EXPECT_EQ(a_.carrier.sent.front().to, "+15550100"); // the caller
  EXPECT_FALSE(backlog_ran);
  EXPECT_EQ(a_.db.find_call("CA1")->phase, engine::call_phase::missed);
  // Everything of the call acknowledged: its later bookkeeping (the end of
  // the call) queues like anyone's.
  // (The call's actor has left: it is reloaded with an urgent read.)
  deliver(a_, testkit::call_event(kind::call_status, "CA1", "completed"));
  ASSERT_TRUE(a_.store_q.drain_ahead([&] { sched_.run(); }));
  EXPECT_FALSE(a_.db.find_call("CA1")->ended);
  a_.store_q.open();
  sched_.run();
  EXPECT_TRUE(backlog_ran);
  EXPECT_TRUE(a_.db.find_call("CA1")->ended);
  EXPECT_EQ(a_.carrier.sent.size(), 2u);
  EXPECT_TRUE(tenant_of(a_).calls.empty());
}

TEST_F(CallFlow, TheTextBackGoesOutAfterOneStoreRoundTrip) {
  // The decision's transaction writes the texts claimed for sending
  // (`claim_in_writing`): once it commits, the outbox hands them to the
  // carrier without a claim of its own.
  incoming(a_, "CA1");
  a_.store_q.close();
  dial_result(a_, "CA1", "no-answer");
  ASSERT_GT(a_.store_q.held_ahead(), 0u);
  a_.store_q.open_ahead(); // the decision, with its runs and their texts
  sched_.run();
  ASSERT_EQ(a_.carrier.sent.size(), 2u) << "the text-back and the owner's";
  EXPECT_EQ(a_.carrier.sent.front().to, "+15550100");
  a_.store_q.open();
  sched_.run();
  for (const auto& m : messages("CA1")) {
    EXPECT_EQ(m.state, engine::message_state::sent);
    EXPECT_EQ(m.attempts, 1);
  }
}

TEST_F(CallFlow, AClaimStaysBehindTheCallsOwnQueuedWrite) {
  a_.carrier.set_call("CA1", "completed", "no-answer");
  incoming(a_, "CA1");
  a_.store_q.close();
  // A status the state machine does not know: the call's update is queued,
  // and the carrier's answer decides the call while it still is.
  dial_result(a_, "CA1", "mystery");
  ASSERT_EQ(a_.carrier.queries, std::vector<std::string>{"CA1"});
  ASSERT_TRUE(a_.store_q.drain_ahead([&] { sched_.run(); }));
  // Ahead of that update the decision could be overwritten by it: it waits.
  EXPECT_TRUE(a_.carrier.sent.empty());
  EXPECT_EQ(a_.db.find_call("CA1")->phase, engine::call_phase::ringing);
  a_.store_q.open();
  sched_.run();
  EXPECT_EQ(a_.carrier.sent.size(), 2u);
  auto stored = a_.db.find_call("CA1");
  EXPECT_EQ(stored->phase, engine::call_phase::missed);
  EXPECT_EQ(stored->decided, engine::decided_by::fallback);
  EXPECT_EQ(stored->dial_status, "mystery");
}

TEST_F(CallFlow, ManyCallsLeaveNoActorsOrTimersBehind) {
  auto baseline = sys_.registry().running();
  for (int i = 0; i < 200; ++i)
    incoming(a_, "CA" + std::to_string(i));
  EXPECT_EQ(sys_.registry().running(), baseline + 200);
  for (int i = 0; i < 200; ++i)
    dial_result(a_, "CA" + std::to_string(i), i % 2 ? "no-answer" : "completed");
  EXPECT_EQ(sys_.registry().running(), baseline);
  EXPECT_EQ(tenant_of(a_).timers.size(), 0u);
  EXPECT_EQ(a_.carrier.sent.size(), 200u);
}

} // namespace
