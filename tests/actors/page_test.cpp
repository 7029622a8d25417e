// An owner's page (`call_owner`) is an outbox message on the call channel:
// written in its run segment's transaction, then placed by the outbox with
// the outbox's guarantees (gate, claim, retries, a lookup before placing
// again after an unknown outcome, recovery after a crash). CAF's test
// coordinator, a manual clock moved with CAF's virtual time, an in-memory
// store shared by "processes", and one fake carrier they all reach (as they
// would reach Twilio).
#include "ringback/actors/outbox_actor.hpp"

#include "ringback/actors/messages.hpp"
#include "ringback/actors/tenant_actor.hpp"
#include "ringback/adapters/kv/memory_kv.hpp"
#include "ringback/adapters/store/memory_store.hpp"
#include "ringback/workflows/diagnostic.hpp"
#include "ringback/workflows/loader.hpp"

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <gtest/gtest.h>

#include "actor_node.hpp"
#include "actor_test.hpp"
#include "fakes.hpp"
#include "recording_metrics.hpp"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace ringback;
using namespace std::chrono_literals;
using engine::message_channel;
using engine::message_record;
using engine::message_state;
using kind = engine::inbound_event::kind;

constexpr const char* caller = "+15550100";
constexpr const char* business = "+15005550001";
constexpr const char* owner = "+15005550002";

/// A missed call texts the owner, then pages them.
constexpr const char* missed_yaml = R"yaml(name: page
trigger: call.missed
steps:
  - id: text
    notify_owner: "Missed call from {{ call.from }}"
  - id: ring
    call_owner: "Missed call from {{ call.from }}. Please call them back."
)yaml";

constexpr const char* say
  = "Missed call from +15550100. Please call them back.";

/// The page of a run resumed by the runs actor (after a wait).
constexpr const char* later_yaml = R"yaml(name: later
trigger: call.missed
steps:
  - wait: 10m
  - id: ring
    call_owner: "Still no call back to {{ call.from }}"
)yaml";

/// The page of a call.incoming run (stored by the call actor).
constexpr const char* incoming_yaml = R"yaml(name: vip
trigger: call.incoming
steps:
  - id: ring
    call_owner: "A call from {{ call.from }} is coming in"
  - dial: "{{ tenant.owner_phone }}"
)yaml";

/// Holds the carrier jobs while `hold` is set (requests in flight); `release`
/// runs them.
class carrier_queue final : public engine::job_queue<engine::carrier> {
public:
  explicit carrier_queue(engine::carrier& c) : carrier_(c) {
    // nop
  }

  void post(job j) override {
    if (hold)
      held_.push_back(std::move(j));
    else
      j(carrier_);
  }

  void release() {
    auto jobs = std::move(held_);
    held_.clear();
    for (auto& j : jobs)
      j(carrier_);
  }

  std::size_t held() const {
    return held_.size();
  }

  bool hold = false;

private:
  engine::carrier& carrier_;
  std::vector<job> held_;
};

/// One ringback "process" over the shared store, kv state and carrier.
struct node {
  node(caf::actor_system& sys, std::string id,
       std::shared_ptr<adapters::memory_database> database,
       std::shared_ptr<adapters::memory_kv_state> kv_state,
       const engine::clock& clock, testkit::fake_carrier& shared_carrier,
       const std::vector<workflows::workflow_ptr>& wfs,
       std::shared_ptr<const engine::tenant> t)
    : db(std::move(database)),
      kv(std::move(kv_state)),
      store_q(db),
      kv_q(unpaced),
      carrier_q(shared_carrier) {
    db.migrate();
    auto s = testkit::node_services(store_q, kv_q, carrier_q, clock,
                                    std::move(id));
    testkit::use_test_timing(*s);
    s->metrics = metrics;
    workflows::catalog cat;
    for (const auto& wf : wfs)
      EXPECT_TRUE(cat.add(wf)) << workflows::to_string(cat.diagnostics());
    s->workflows = std::make_shared<actors::catalog_source>(std::move(cat));
    s->numbers = std::make_shared<const actors::tenant_directory>(
      std::vector<engine::tenant>{*t});
    svc = s;
    outbox = sys.spawn(actors::outbox_actor, svc);
    tenant = sys.spawn(actors::tenant_actor, t, svc, outbox);
  }

  adapters::memory_store db;
  adapters::memory_kv kv;
  testkit::unpaced_kv unpaced{kv};
  engine::inline_store_queue store_q;
  engine::inline_queue<engine::kv> kv_q;
  carrier_queue carrier_q;
  std::shared_ptr<testkit::recording_metrics> metrics
    = std::make_shared<testkit::recording_metrics>();
  actors::services_ptr svc;
  caf::actor outbox;
  caf::actor tenant;
  bool alive = true;
};

class Pages : public testkit::actor_test {
protected:
  Pages()
    : database_(adapters::memory_store{}.database()),
      kv_state_(std::make_shared<adapters::memory_kv_state>()),
      db_(database_) {
    db_.migrate();
    auto t = std::make_shared<engine::tenant>();
    t->id = "acme";
    t->name = "Acme Plumbing";
    t->owner_phone = owner;
    t->timezone = "UTC";
    t->numbers.push_back({business, engine::number_kind::long_code, 1.0});
    tenant_ = t;
    use({missed_yaml});
  }

  ~Pages() override {
    for (auto& n : nodes_)
      if (n->alive)
        stop(*n, caf::exit_reason::user_shutdown);
    sched_.run();
  }

  void use(const std::vector<std::string>& yamls) {
    workflows_.clear();
    for (const auto& y : yamls) {
      auto wf = workflows::load_string(y, "wf.yaml");
      ASSERT_TRUE(wf.ok()) << workflows::to_string(wf.diagnostics);
      workflows_.push_back(wf.value);
    }
  }

  node& start(const std::string& id) {
    nodes_.push_back(std::make_unique<node>(
      sys_, id, database_, kv_state_, clock_, carrier_, workflows_, tenant_));
    sched_.run();
    return *nodes_.back();
  }

  /// A restarted process resumes its outbox (as the service does at start).
  node& restart(const std::string& id) {
    auto& n = start(id);
    caf::anon_send(n.outbox, actors::recover_atom_v);
    caf::anon_send(n.tenant, actors::recover_atom_v);
    sched_.run();
    return n;
  }

  /// A kill -9: the actors go, nothing is flushed.
  void stop(node& n, caf::exit_reason why = caf::exit_reason::kill) {
    caf::anon_send_exit(n.tenant, why);
    caf::anon_send_exit(n.outbox, why);
    n.alive = false;
    sched_.run();
  }

  void deliver(node& n, engine::inbound_event ev) {
    auto reply = std::make_shared<testkit::recorded_reply>();
    caf::anon_send(n.tenant, actors::event_atom_v, std::move(ev),
                   std::shared_ptr<engine::voice_reply>{reply});
    sched_.run();
  }

  /// A call that rings the owner in vain: call.missed.
  void missed_call(node& n, const std::string& sid = "CA1") {
    deliver(n, testkit::call_event(kind::call_incoming, sid));
    deliver(n, testkit::call_event(kind::dial_result, sid, "no-answer"));
  }

  void advance(std::chrono::milliseconds d) {
    while (d.count() > 0) {
      auto step = std::min<std::chrono::milliseconds>(d, 1s);
      clock_.advance(step);
      sched_.advance_time(step);
      sched_.run();
      d -= step;
    }
  }

  /// The messages of a call on one channel, by id.
  std::vector<message_record> stored(message_channel channel,
                                     const std::string& sid = "CA1") {
    std::vector<message_record> out;
    for (auto& m : db_.messages_for_call(sid))
      if (m.channel == channel)
        out.push_back(std::move(m));
    return out;
  }

  /// The one page of a call; fails the test otherwise.
  message_record the_page(const std::string& sid = "CA1") {
    auto pages = stored(message_channel::call, sid);
    EXPECT_EQ(pages.size(), 1u) << "pages of " << sid;
    return pages.empty() ? message_record{} : pages.front();
  }

  testkit::manual_clock clock_;
  std::shared_ptr<adapters::memory_database> database_;
  std::shared_ptr<adapters::memory_kv_state> kv_state_;
  adapters::memory_store db_; // what the test reads
  testkit::fake_carrier carrier_;
  std::shared_ptr<const engine::tenant> tenant_;
  std::vector<workflows::workflow_ptr> workflows_;
  std::vector<std::unique_ptr<node>> nodes_;
};

TEST_F(Pages, APageStepPlacesOneCallThroughTheOutbox) {
  auto& a = start("node-a");
  const auto at = clock_.now();
  missed_call(a);
  ASSERT_EQ(carrier_.call_attempts.size(), 1u);
  EXPECT_EQ(carrier_.call_attempts[0].from, business);
  EXPECT_EQ(carrier_.call_attempts[0].to, owner);
  EXPECT_EQ(carrier_.call_attempts[0].say, say);
  // The page is a stored message on the call channel, sent with its CallSid.
  auto page = the_page();
  EXPECT_EQ(page.state, message_state::sent);
  EXPECT_EQ(page.message_sid, "CApage1");
  EXPECT_EQ(page.kind, engine::send_kind::notification);
  EXPECT_EQ(page.purpose, "page/ring");
  EXPECT_EQ(page.from, business);
  EXPECT_EQ(page.to, owner);
  EXPECT_EQ(page.body, say);
  EXPECT_EQ(page.attempts, 1);
  EXPECT_EQ(page.node_id, "node-a");
  EXPECT_EQ(page.created_at, at);
  EXPECT_EQ(page.sent_at, at);
  // The text to the owner went as a text, first; the page as no text.
  auto texts = stored(message_channel::sms);
  ASSERT_EQ(texts.size(), 1u);
  EXPECT_LT(texts[0].id, page.id) << "the step order";
  ASSERT_EQ(carrier_.attempts.size(), 1u);
  EXPECT_EQ(carrier_.attempts[0].body, "Missed call from +15550100");
  EXPECT_EQ((*a.metrics)["queued acme +15005550001"], 1) << "texts only";
  EXPECT_EQ((*a.metrics)["sent acme +15005550001"], 1) << "texts only";
  EXPECT_EQ((*a.metrics)["waited acme +15005550001"], 1) << "texts only";
  // No status callback, no conversation: nothing more comes of it.
  advance(1h);
  EXPECT_EQ(carrier_.call_attempts.size(), 1u);
  EXPECT_EQ(carrier_.call_lookups, 0);
  EXPECT_TRUE(
    db_
      .conversation_messages(
        db_.find_or_create_conversation("acme", owner, business, clock_.now())
          .id,
        10)
      .empty());
}

TEST_F(Pages, AResumedRunsPageGoesThroughTheOutboxToo) {
  use({later_yaml});
  auto& a = start("node-a");
  missed_call(a);
  advance(10min - 1s);
  EXPECT_TRUE(carrier_.call_attempts.empty());
  advance(1s);
  ASSERT_EQ(carrier_.call_attempts.size(), 1u);
  EXPECT_EQ(carrier_.call_attempts[0].say, "Still no call back to +15550100");
  auto page = the_page();
  EXPECT_EQ(page.purpose, "later/ring");
  EXPECT_EQ(page.state, message_state::sent);
  EXPECT_EQ(page.message_sid, "CApage1");
}

TEST_F(Pages, AnIncomingRunsPageGoesThroughTheOutboxToo) {
  use({incoming_yaml});
  auto& a = start("node-a");
  deliver(a, testkit::call_event(kind::call_incoming, "CA1"));
  ASSERT_EQ(carrier_.call_attempts.size(), 1u);
  EXPECT_EQ(carrier_.call_attempts[0].say,
            "A call from +15550100 is coming in");
  auto page = the_page();
  EXPECT_EQ(page.purpose, "vip/ring");
  EXPECT_EQ(page.state, message_state::sent);
  advance(1h);
  EXPECT_EQ(carrier_.call_attempts.size(), 1u);
}

TEST_F(Pages, APageCommittedJustBeforeACrashIsPlacedOnceAfterTheRestart) {
  auto& a = start("node-a");
  // The process dies after the segment's commit, before its outbox sends:
  // here, the outbox is gone before it hears of the page.
  caf::anon_send_exit(a.outbox, caf::exit_reason::kill);
  sched_.run();
  missed_call(a);
  EXPECT_TRUE(carrier_.call_attempts.empty());
  EXPECT_EQ(the_page().state, message_state::queued) << "durable";
  stop(a);
  auto& again = restart("node-a");
  ASSERT_EQ(carrier_.call_attempts.size(), 1u);
  EXPECT_EQ(carrier_.call_attempts[0].to, owner);
  EXPECT_EQ(carrier_.call_attempts[0].say, say);
  auto page = the_page();
  EXPECT_EQ(page.state, message_state::sent);
  EXPECT_EQ(page.message_sid, "CApage1");
  EXPECT_EQ(carrier_.call_lookups, 0) << "queued: it never left";
  // Another restart finds nothing left to do.
  advance(1h);
  stop(again);
  restart("node-a");
  advance(1h);
  EXPECT_EQ(carrier_.call_attempts.size(), 1u);
  EXPECT_EQ(carrier_.pages.size(), 1u);
}

TEST_F(Pages, APagePlacedJustBeforeACrashIsLookedUpNotPlacedAgain) {
  auto& a = start("node-a");
  a.carrier_q.hold = true;
  missed_call(a);
  ASSERT_EQ(a.carrier_q.held(), 2u) << "the text and the page, in flight";
  EXPECT_EQ(the_page().state, message_state::sending);
  stop(a);
  a.carrier_q.release(); // Twilio got both; the answers went nowhere
  ASSERT_EQ(carrier_.pages.size(), 1u);
  const auto created = the_page().created_at;
  advance(5s);
  restart("node-a");
  EXPECT_EQ(carrier_.call_lookups, 1);
  ASSERT_EQ(carrier_.call_lookup_times.size(), 1u);
  EXPECT_EQ(carrier_.call_lookup_times[0], created);
  EXPECT_EQ(carrier_.call_attempts.size(), 1u) << "not placed again";
  auto page = the_page();
  EXPECT_EQ(page.state, message_state::sent);
  EXPECT_EQ(page.message_sid, "CApage1");
  EXPECT_EQ(page.attempts, 1);
  advance(1h);
  EXPECT_EQ(carrier_.call_attempts.size(), 1u);
  EXPECT_EQ(carrier_.attempts.size(), 1u) << "nor the text sent again";
}

TEST_F(Pages, APageCutOffBeforeItLeftIsPlacedOnceAfterTheLookup) {
  auto& a = start("node-a");
  a.carrier_q.hold = true;
  missed_call(a);
  EXPECT_EQ(the_page().state, message_state::sending);
  stop(a); // the request never left
  restart("node-a");
  EXPECT_EQ(carrier_.call_lookups, 1) << "looked up first";
  EXPECT_TRUE(carrier_.call_attempts.empty()) << "then placed after a delay";
  advance(1min);
  ASSERT_EQ(carrier_.call_attempts.size(), 1u);
  EXPECT_EQ(carrier_.pages.size(), 1u);
  auto page = the_page();
  EXPECT_EQ(page.state, message_state::sent);
  EXPECT_EQ(page.attempts, 2);
  advance(1h);
  EXPECT_EQ(carrier_.call_attempts.size(), 1u);
}

TEST_F(Pages, ALostAnswerIsLookedUpAndAFoundPageIsNotPlacedAgain) {
  auto& a = start("node-a");
  carrier_.scripted_calls.push_back(testkit::fake_carrier::lost_call_answer());
  missed_call(a);
  EXPECT_EQ(carrier_.call_lookups, 1);
  EXPECT_EQ(carrier_.call_attempts.size(), 1u);
  auto page = the_page();
  EXPECT_EQ(page.state, message_state::sent);
  EXPECT_EQ(page.message_sid, "CAlost1") << "the CallSid the lookup found";
  advance(1h);
  EXPECT_EQ(carrier_.call_attempts.size(), 1u);
  EXPECT_EQ(carrier_.pages.size(), 1u);
}

TEST_F(Pages, ALostAnswerIsLookedUpAndAPageNotFoundIsPlacedOnceMore) {
  auto& a = start("node-a");
  carrier_.accept_silently = false; // the POST never reached Twilio
  carrier_.scripted_calls.push_back(testkit::fake_carrier::lost_call_answer());
  missed_call(a);
  EXPECT_EQ(carrier_.call_lookups, 1);
  EXPECT_EQ(carrier_.call_attempts.size(), 1u) << "not before its retry delay";
  EXPECT_EQ(the_page().state, message_state::queued);
  advance(1min);
  ASSERT_EQ(carrier_.call_attempts.size(), 2u);
  EXPECT_EQ(carrier_.pages.size(), 1u);
  auto page = the_page();
  EXPECT_EQ(page.state, message_state::sent);
  EXPECT_EQ(page.message_sid, "CApage2");
  EXPECT_EQ(page.attempts, 2);
  advance(1h);
  EXPECT_EQ(carrier_.call_attempts.size(), 2u);
  EXPECT_EQ(carrier_.call_lookups, 1);
}

TEST_F(Pages, AFailedLookupIsAskedAgainNeverPlacedBlindly) {
  auto& a = start("node-a");
  carrier_.scripted_calls.push_back(testkit::fake_carrier::call_failure(503));
  carrier_.call_lookup_fails = 2;
  missed_call(a);
  EXPECT_EQ(carrier_.call_lookups, 1);
  advance(1min);
  EXPECT_EQ(carrier_.call_lookups, 3) << "until the carrier answers";
  // The 503 had created the call (`accept_silently`): found, not placed.
  EXPECT_EQ(carrier_.call_attempts.size(), 1u);
  EXPECT_EQ(the_page().state, message_state::sent);
}

TEST_F(Pages, RetryableErrorsArePlacedAgainWithTheTextsPolicy) {
  auto& a = start("node-a");
  auto throttled = testkit::fake_carrier::call_failure(429, 20429);
  throttled.status.retry_after = 30s;
  carrier_.scripted_calls.push_back(throttled);
  missed_call(a);
  EXPECT_EQ(carrier_.call_lookups, 0) << "a 429 is a known outcome";
  advance(29s);
  EXPECT_EQ(carrier_.call_attempts.size(), 1u) << "Retry-After is honoured";
  advance(2s);
  ASSERT_EQ(carrier_.call_attempts.size(), 2u);
  EXPECT_EQ(the_page().state, message_state::sent);
  EXPECT_EQ((*a.metrics)["retried acme +15005550001 429"], 0) << "texts only";
}

TEST_F(Pages, APermanentErrorFailsThePageWithoutARetry) {
  auto& a = start("node-a");
  // 21610 (unsubscribed) as well: it is the carrier's word on texts, so a
  // call never records an opt-out of the owner.
  carrier_.scripted_calls.push_back(
    testkit::fake_carrier::call_failure(400, 21610));
  missed_call(a);
  auto page = the_page();
  EXPECT_EQ(page.state, message_state::failed);
  EXPECT_EQ(page.error_code, 21610);
  EXPECT_EQ(page.error_message, "scripted call failure");
  EXPECT_EQ(page.attempts, 1);
  advance(1h);
  EXPECT_EQ(carrier_.call_attempts.size(), 1u);
  EXPECT_EQ(carrier_.call_lookups, 0);
  EXPECT_FALSE(db_.find_opt_out("acme", owner).has_value());
  EXPECT_EQ((*a.metrics)["failed acme +15005550001 21610"], 0) << "texts only";
}

TEST_F(Pages, AnOptedOutOwnerIsNotPaged) {
  engine::opt_out_state s;
  s.tenant_id = "acme";
  s.phone = owner;
  s.opted_out = true;
  s.since = clock_.now();
  s.keyword = "STOP";
  s.last_event_at = clock_.now();
  db_.save_opt_out(s);
  auto& a = start("node-a");
  missed_call(a);
  auto page = the_page();
  EXPECT_EQ(page.state, message_state::refused);
  EXPECT_EQ(page.reason, "opted_out");
  EXPECT_EQ(page.error_message,
            "recipient opted out of this tenant's texts (texting START opts "
            "back in)");
  advance(1h);
  EXPECT_TRUE(carrier_.call_attempts.empty());
  EXPECT_EQ((*a.metrics)["refused acme opted_out"], 1) << "the text only";
}

TEST_F(Pages, AnOwnerWhoOptsOutAfterThePageWasQueuedIsNotPaged) {
  auto& a = start("node-a");
  caf::anon_send_exit(a.outbox, caf::exit_reason::kill);
  sched_.run();
  missed_call(a);
  ASSERT_EQ(the_page().state, message_state::queued);
  engine::opt_out_state s;
  s.tenant_id = "acme";
  s.phone = owner;
  s.opted_out = true;
  s.since = s.last_event_at = clock_.now();
  s.keyword = "STOP";
  db_.save_opt_out(s);
  stop(a);
  restart("node-a");
  EXPECT_TRUE(carrier_.call_attempts.empty());
  EXPECT_EQ(the_page().state, message_state::refused);
}

} // namespace
