// Passivation of ringing calls (issue 6: memory per live call): a quiescent
// call actor is let go, its tenant keeps the timer, and the call's next
// event or timer reloads it from the store. Exactly one outcome (one text)
// whatever reaches a passivated call, on one node or two.
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

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace {

using namespace ringback;
using namespace std::chrono_literals;
using engine::inbound_event;
using kind = inbound_event::kind;
using vk = engine::voice_verb::kind;
using reply_ptr = std::shared_ptr<testkit::recorded_reply>;

constexpr const char* answer_yaml = R"yaml(name: answer
trigger: call.incoming
steps:
  - say: "Thanks for calling {{ tenant.name }}."
  - id: forward
    dial: "{{ tenant.owner_phone }}"
  - if: dial.answered
    then:
      - stop: "the owner took the call"
  - say: "Sorry we missed you."
  - hangup:
)yaml";

constexpr const char* text_back_yaml = R"yaml(name: text_back
trigger: call.missed
steps:
  - id: sorry
    send_sms:
      to: "{{ call.from }}"
      body: "Sorry we missed you - {{ tenant.name }}"
)yaml";

workflows::workflow_ptr load(const char* yaml, const char* file) {
  auto wf = workflows::load_string(yaml, file);
  EXPECT_TRUE(wf.ok()) << workflows::to_string(wf.diagnostics);
  return wf.value;
}

/// One ringback "process" over a store and kv state that several may share.
struct node {
  node(caf::actor_system& sys, std::string id,
       std::shared_ptr<adapters::memory_database> database,
       std::shared_ptr<adapters::memory_kv_state> kv_state,
       testkit::manual_clock& clock,
       std::optional<std::chrono::milliseconds> passivate_after)
    : db(std::move(database)),
      kv(std::move(kv_state)),
      store_q(db),
      kv_q(unpaced),
      carrier_q(carrier) {
    db.migrate();
    auto s = testkit::node_services(store_q, kv_q, carrier_q, clock,
                                    std::move(id));
    testkit::use_test_timing(*s);
    s->passivate_after = passivate_after;
    workflows::catalog cat;
    EXPECT_TRUE(cat.add(load(answer_yaml, "answer.yaml")));
    EXPECT_TRUE(cat.add(load(text_back_yaml, "text_back.yaml")));
    s->workflows = std::make_shared<actors::catalog_source>(std::move(cat));
    auto t = std::make_shared<engine::tenant>();
    t->id = "acme";
    t->name = "Acme Plumbing";
    t->owner_phone = "+15005550002";
    t->timezone = "UTC";
    // About calls: texts are not paced and the guards are off.
    t->numbers.push_back({"+15005550001", engine::number_kind::long_code, 1.0});
    t->guards.repeat_caller_window = std::chrono::milliseconds{0};
    t->guards.automated_per_hour = 0;
    t->guards.loop_limit = 0;
    t->guards.caller_rate_limit = 0;
    s->numbers = std::make_shared<const actors::tenant_directory>(
      std::vector<engine::tenant>{*t});
    svc = s;
    outbox = sys.spawn(actors::outbox_actor, svc);
    tenant = sys.spawn(actors::tenant_actor, t, svc, outbox);
  }

  adapters::memory_store db;
  adapters::memory_kv kv;
  testkit::unpaced_kv unpaced{kv};
  testkit::gated_store_queue store_q;
  engine::inline_queue<engine::kv> kv_q;
  testkit::fake_carrier carrier;
  engine::inline_queue<engine::carrier> carrier_q;
  actors::services_ptr svc;
  caf::actor outbox;
  caf::actor tenant;
};

class Passivation : public testkit::actor_test {
protected:
  Passivation()
    : database_(adapters::memory_store{}.database()),
      kv_state_(std::make_shared<adapters::memory_kv_state>()) {
    // nop
  }

  ~Passivation() override {
    for (auto& n : nodes_) {
      caf::anon_send_exit(n->tenant, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(n->outbox, caf::exit_reason::user_shutdown);
    }
    sched_.run();
  }

  node& start(const std::string& id,
              std::optional<std::chrono::milliseconds> after) {
    nodes_.push_back(std::make_unique<node>(sys_, id, database_, kv_state_,
                                            clock_, after));
    sched_.run();
    return *nodes_.back();
  }

  /// Sends an event to the tenant without running anything.
  reply_ptr post(node& n, inbound_event ev) {
    auto reply = std::make_shared<testkit::recorded_reply>();
    caf::anon_send(n.tenant, actors::event_atom_v, std::move(ev),
                   std::shared_ptr<engine::voice_reply>{reply});
    return reply;
  }

  reply_ptr deliver(node& n, inbound_event ev) {
    auto reply = post(n, std::move(ev));
    sched_.run();
    return reply;
  }

  reply_ptr incoming(node& n, const std::string& sid) {
    return deliver(n, testkit::call_event(kind::call_incoming, sid));
  }

  reply_ptr dial_result(node& n, const std::string& sid,
                        const std::string& status) {
    return deliver(n, testkit::call_event(kind::dial_result, sid, status));
  }

  reply_ptr status(node& n, const std::string& sid, const std::string& s) {
    return deliver(n, testkit::call_event(kind::call_status, sid, s));
  }

  /// Moves the wall clock and CAF's clock together, a second at a time.
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

  /// What the tenant reports on `stats_atom`.
  actors::tenant_stats stats(node& n) {
    actors::tenant_stats got;
    auto tenant = n.tenant;
    sys_.spawn([&got, tenant](caf::event_based_actor* self) {
      self->request(tenant, caf::infinite, actors::stats_atom_v)
        .then([&got](const actors::tenant_stats& s) { got = s; });
    });
    sched_.run();
    return got;
  }

  /// Texts to the caller, over every node's carrier.
  std::size_t texts() {
    std::size_t n = 0;
    for (auto& nd : nodes_)
      for (const auto& m : nd->carrier.sent)
        n += m.to == "+15550100" ? 1 : 0;
    return n;
  }

  static std::vector<vk> kinds(const reply_ptr& r) {
    std::vector<vk> out;
    if (!r->answers.empty())
      for (const auto& v : r->answers.front().verbs)
        out.push_back(v.what);
    return out;
  }

  testkit::manual_clock clock_;
  std::shared_ptr<adapters::memory_database> database_;
  std::shared_ptr<adapters::memory_kv_state> kv_state_;
  std::vector<std::unique_ptr<node>> nodes_;
};

TEST_F(Passivation, AQuiescentCallIsLetGoAfterTheIdleTimeAndKeepsItsTimer) {
  auto& a = start("node-a", 10s);
  auto baseline = sys_.registry().running();
  auto r = incoming(a, "CA1");
  EXPECT_EQ(kinds(r), (std::vector<vk>{vk::say, vk::dial}));
  EXPECT_EQ(sys_.registry().running(), baseline + 1);
  advance(5s);
  // Something forwarded to the call restarts its idle time.
  status(a, "CA1", "ringing");
  advance(9s);
  EXPECT_EQ(tenant_of(a).calls.size(), 1u) << "idle for 9 s only";
  EXPECT_EQ(tenant_of(a).passivated, 0u);
  advance(1s);
  EXPECT_TRUE(tenant_of(a).calls.empty());
  EXPECT_EQ(sys_.registry().running(), baseline) << "the actor is gone";
  EXPECT_TRUE(tenant_of(a).idle.size() == 0u);
  ASSERT_TRUE(tenant_of(a).timers.contains("CA1"));
  EXPECT_EQ(tenant_of(a).timers.deadline("CA1"),
            a.db.find_call("CA1")->fallback_at);
  auto s = stats(a);
  EXPECT_EQ(s.live_calls, 0u);
  EXPECT_EQ(s.timers, 1u);
  EXPECT_EQ(s.passivated, 1u);
  EXPECT_EQ(s.loading, 0u);
}

TEST_F(Passivation, OffKeepsRingingCallsInMemory) {
  auto& a = start("node-a", std::nullopt);
  a.carrier.set_call("CA1", "in-progress", "ringing");
  incoming(a, "CA1");
  advance(60s); // two carrier checks, still ringing
  EXPECT_EQ(a.carrier.queries.size(), 3u);
  EXPECT_EQ(tenant_of(a).calls.size(), 1u);
  EXPECT_EQ(stats(a).passivated, 0u);
}

TEST_F(Passivation, DialResultAfterPassivationTextsOnce) {
  auto& a = start("node-a", 0s);
  incoming(a, "CA1");
  ASSERT_TRUE(tenant_of(a).calls.empty()) << "0s: let go at once";
  EXPECT_EQ(tenant_of(a).timers.size(), 1u);
  auto r = dial_result(a, "CA1", "no-answer");
  // The run was reloaded from the store and resumed: it answers the webhook.
  EXPECT_EQ(kinds(r), (std::vector<vk>{vk::say, vk::hangup}));
  EXPECT_EQ(texts(), 1u);
  auto rec = a.db.find_call("CA1");
  EXPECT_EQ(rec->phase, engine::call_phase::missed);
  EXPECT_EQ(rec->decided, engine::decided_by::dial_result);
  EXPECT_TRUE(tenant_of(a).calls.empty());
  EXPECT_EQ(tenant_of(a).timers.size(), 0u);
  // A carrier retry of the dial result and the timer change nothing.
  dial_result(a, "CA1", "no-answer");
  advance(60s);
  EXPECT_EQ(texts(), 1u);
  EXPECT_TRUE(a.carrier.queries.empty());
  EXPECT_EQ(stats(a).passivated, 1u);
}

TEST_F(Passivation, AnsweredAfterPassivationTextsNothing) {
  auto& a = start("node-a", 0s);
  incoming(a, "CA1");
  auto r = dial_result(a, "CA1", "completed");
  EXPECT_EQ(kinds(r), std::vector<vk>{}) << "the run stops: hang up";
  advance(60s);
  EXPECT_EQ(texts(), 0u);
  EXPECT_EQ(a.db.find_call("CA1")->phase, engine::call_phase::answered);
}

TEST_F(Passivation, LostDialCallbackIsCaughtByTheTimerOfAPassivatedCall) {
  auto& a = start("node-a", 0s);
  a.carrier.set_call("CA1", "completed", "no-answer");
  incoming(a, "CA1");
  ASSERT_TRUE(tenant_of(a).calls.empty());
  advance(29s);
  EXPECT_TRUE(a.carrier.queries.empty()) << "not before ring timeout + grace";
  advance(1s); // the deadline: reloaded, and the past deadline fires at once
  EXPECT_EQ(a.carrier.queries, std::vector<std::string>{"CA1"});
  EXPECT_EQ(texts(), 1u);
  EXPECT_EQ(a.db.find_call("CA1")->decided, engine::decided_by::fallback);
  EXPECT_TRUE(tenant_of(a).calls.empty());
  EXPECT_EQ(tenant_of(a).timers.size(), 0u);
  advance(60s);
  EXPECT_EQ(texts(), 1u);
}

TEST_F(Passivation, ACallStillRingingIsPassivatedAgainBetweenChecks) {
  auto& a = start("node-a", 0s);
  a.carrier.set_call("CA1", "in-progress", "ringing");
  incoming(a, "CA1");
  advance(30s);
  EXPECT_EQ(a.carrier.queries.size(), 1u);
  EXPECT_TRUE(tenant_of(a).calls.empty()) << "let go again after the check";
  EXPECT_EQ(stats(a).passivated, 2u);
  EXPECT_EQ(tenant_of(a).timers.deadline("CA1"), clock_.now() + 15'000);
  a.carrier.set_call("CA1", "completed", "no-answer");
  advance(15s);
  EXPECT_EQ(a.carrier.queries.size(), 2u);
  EXPECT_EQ(texts(), 1u);
  EXPECT_EQ(a.db.find_call("CA1")->fallback_checks, 2);
}

TEST_F(Passivation, CallerHangsUpWhilePassivated) {
  auto& a = start("node-a", 0s);
  a.carrier.set_call("CA1", "completed", "no-answer");
  incoming(a, "CA1");
  ASSERT_TRUE(tenant_of(a).calls.empty());
  advance(5s);
  status(a, "CA1", "completed");
  // Reloaded, the call ended with no dial result: the carrier is asked now.
  EXPECT_EQ(a.carrier.queries, std::vector<std::string>{"CA1"});
  EXPECT_EQ(texts(), 1u);
  auto rec = a.db.find_call("CA1");
  EXPECT_TRUE(rec->ended);
  EXPECT_EQ(rec->phase, engine::call_phase::missed);
  advance(60s);
  EXPECT_EQ(texts(), 1u);
  EXPECT_TRUE(tenant_of(a).calls.empty());
  EXPECT_EQ(tenant_of(a).timers.size(), 0u);
}

TEST_F(Passivation, CarrierRetryOfTheIncomingWebhookGetsTheSameAnswer) {
  auto& a = start("node-a", 0s);
  auto r1 = incoming(a, "CA1");
  ASSERT_TRUE(tenant_of(a).calls.empty());
  auto r2 = incoming(a, "CA1");
  ASSERT_EQ(r1->answers.size(), 1u);
  ASSERT_EQ(r2->answers.size(), 1u);
  const auto& v1 = r1->answers.front().verbs;
  const auto& v2 = r2->answers.front().verbs;
  ASSERT_EQ(v2.size(), 2u);
  ASSERT_EQ(v1.size(), 2u);
  EXPECT_EQ(v2[0].text, v1[0].text);
  EXPECT_EQ(v2[1].what, vk::dial);
  EXPECT_EQ(v2[1].numbers, v1[1].numbers);
  EXPECT_EQ(v2[1].action_url, v1[1].action_url);
  EXPECT_EQ(v2[1].timeout, v1[1].timeout);
  EXPECT_EQ(a.db.runs_for_call("CA1").size(), 1u) << "one run per call";
  EXPECT_TRUE(tenant_of(a).calls.empty()) << "let go again";
  EXPECT_EQ(stats(a).passivated, 2u);
  // The run still waits for the dial result, and gets it.
  auto r3 = dial_result(a, "CA1", "busy");
  EXPECT_EQ(kinds(r3), (std::vector<vk>{vk::say, vk::hangup}));
  EXPECT_EQ(texts(), 1u);
}

TEST_F(Passivation, AnEventRacingTheRequestKeepsTheActor) {
  auto& a = start("node-a", 0s);
  post(a, testkit::call_event(kind::call_incoming, "CA1"));
  // Run the tenant until it has spawned the call actor and forwarded the
  // incoming webhook, but before the actor has handled it.
  while (tenant_of(a).calls.count("CA1") == 0)
    ASSERT_TRUE(sched_.try_run_once());
  // The dial result reaches the tenant before the actor's request (which
  // the actor sends after the incoming webhook, having handled 1 message).
  auto r = post(a, testkit::call_event(kind::dial_result, "CA1", "no-answer"));
  sched_.run();
  // Released only as finished, after it handled the dial result: the
  // request that the dial result overtook was ignored.
  EXPECT_EQ(stats(a).passivated, 0u);
  EXPECT_EQ(kinds(r), (std::vector<vk>{vk::say, vk::hangup}));
  EXPECT_EQ(texts(), 1u);
  EXPECT_EQ(a.db.find_call("CA1")->decided, engine::decided_by::dial_result);
  EXPECT_TRUE(tenant_of(a).calls.empty());
}

TEST_F(Passivation, AStaleRequestIsIgnoredAndTheActorAsksAgain) {
  auto& a = start("node-a", 0s);
  post(a, testkit::call_event(kind::call_incoming, "CA1"));
  while (tenant_of(a).calls.count("CA1") == 0)
    ASSERT_TRUE(sched_.try_run_once());
  // An event that does not end the call races the request: not released
  // with it in the mailbox; released once it has been handled.
  post(a, testkit::call_event(kind::call_status, "CA1", "ringing"));
  sched_.run();
  EXPECT_TRUE(tenant_of(a).calls.empty());
  EXPECT_EQ(stats(a).passivated, 1u) << "once, after both events";
  EXPECT_EQ(a.db.find_call("CA1")->phase, engine::call_phase::ringing);
  auto r = dial_result(a, "CA1", "no-answer");
  EXPECT_EQ(kinds(r), (std::vector<vk>{vk::say, vk::hangup}));
  EXPECT_EQ(texts(), 1u);
}

TEST_F(Passivation, AnUnacknowledgedWriteHoldsTheActor) {
  auto& a = start("node-a", 0s);
  post(a, testkit::call_event(kind::call_incoming, "CA1"));
  while (tenant_of(a).calls.count("CA1") == 0)
    ASSERT_TRUE(sched_.try_run_once());
  a.store_q.close(); // the run's first segment is written but not committed
  sched_.run();
  EXPECT_GT(a.store_q.held(), 0u);
  EXPECT_EQ(tenant_of(a).calls.size(), 1u) << "its run is not stored yet";
  a.store_q.open();
  sched_.run();
  EXPECT_TRUE(tenant_of(a).calls.empty());
  auto r = dial_result(a, "CA1", "no-answer");
  EXPECT_EQ(kinds(r), (std::vector<vk>{vk::say, vk::hangup}));
  EXPECT_EQ(texts(), 1u);
}

TEST_F(Passivation, TwoNodesSendOneTextForAPassivatedCall) {
  auto& a = start("node-a", 0s);
  auto& b = start("node-b", 0s);
  incoming(a, "CA1");
  ASSERT_TRUE(tenant_of(a).calls.empty());
  // The dial result reaches the other node, and a retry of it this one.
  auto rb = dial_result(b, "CA1", "no-answer");
  auto ra = dial_result(a, "CA1", "no-answer");
  EXPECT_EQ(kinds(rb), (std::vector<vk>{vk::say, vk::hangup}));
  EXPECT_EQ(texts(), 1u);
  // Node A still held the call's timer: it fires, reloads a decided call,
  // and changes nothing.
  advance(60s);
  EXPECT_EQ(texts(), 1u);
  EXPECT_TRUE(a.carrier.queries.empty());
  EXPECT_TRUE(b.carrier.queries.empty());
  EXPECT_TRUE(tenant_of(a).calls.empty());
  EXPECT_TRUE(tenant_of(b).calls.empty());
  EXPECT_EQ(tenant_of(a).timers.size(), 0u);
  EXPECT_EQ(tenant_of(b).timers.size(), 0u);
}

TEST_F(Passivation, ManyPassivatedCallsEachTextOnce) {
  auto& a = start("node-a", 0s);
  auto baseline = sys_.registry().running();
  for (int i = 0; i < 100; ++i)
    incoming(a, "CA" + std::to_string(i));
  EXPECT_EQ(sys_.registry().running(), baseline);
  EXPECT_EQ(tenant_of(a).timers.size(), 100u);
  for (int i = 0; i < 100; i += 2)
    dial_result(a, "CA" + std::to_string(i), "no-answer");
  // The other half lost their callbacks: the timers catch them.
  for (int i = 1; i < 100; i += 2)
    a.carrier.set_call("CA" + std::to_string(i), "completed", "no-answer");
  advance(31s);
  EXPECT_EQ(texts(), 100u);
  EXPECT_EQ(a.carrier.queries.size(), 50u);
  EXPECT_EQ(sys_.registry().running(), baseline);
  EXPECT_EQ(tenant_of(a).timers.size(), 0u);
  EXPECT_EQ(stats(a).passivated, 100u);
}

} // namespace
