// Workflow runs hosted by the actors (tenant, call, runs, outbox), driven
// deterministically: CAF's test coordinator, a manual clock moved together
// with CAF's virtual time, inline queues, an in-memory store shared by
// "nodes" (processes), a fake carrier and a fake HTTP fetcher.
#include "ringback/actors/runs_actor.hpp"

#include "ringback/actors/call_actor.hpp"
#include "ringback/actors/event_sink.hpp"
#include "ringback/actors/messages.hpp"
#include "ringback/actors/outbox_actor.hpp"
#include "ringback/actors/tenant_actor.hpp"
#include "ringback/adapters/kv/memory_kv.hpp"
#include "ringback/adapters/store/memory_store.hpp"
#include "ringback/workflows/diagnostic.hpp"
#include "ringback/workflows/loader.hpp"

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <gtest/gtest.h>

#include "fake_http_fetcher.hpp"
#include "actor_node.hpp"
#include "actor_test.hpp"
#include "fakes.hpp"
#include "mock_store.hpp"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace ringback;
using namespace std::chrono_literals;
using engine::inbound_event;
using engine::run_status;
using kind = inbound_event::kind;
using vk = engine::voice_verb::kind;

constexpr const char* caller = "+15550100";
constexpr const char* business = "+15005550001";
constexpr const char* owner = "+15005550002";
constexpr const char* base_url = "https://ringback.example.com";

/// Answers the call, rings the owner with the host's ring timeout, takes a
/// transcribed voicemail when nobody answers, then says goodbye.
constexpr const char* answer_yaml = R"yaml(name: answer
trigger: call.incoming
steps:
  - say: "Thanks for calling {{ tenant.name }}."
  - id: forward
    dial: "{{ tenant.owner_phone }}"
  - if: dial.answered
    then:
      - stop: "the owner took the call"
  - id: voicemail
    record_voicemail:
      max_length: 1m
      transcribe: true
    on_transcription:
      - id: transcript
        notify_owner: "Voicemail from {{ call.from }} ({{ voicemail.duration }}s, {{ voicemail.transcription_status }}): {{ voicemail.transcription }}"
  - say: "Thanks, we got your message ({{ voicemail.duration }}s). Goodbye."
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

constexpr const char* later_yaml = R"yaml(name: later
trigger: call.missed
steps:
  - wait: 10m
  - id: follow_up
    send_sms:
      to: "{{ call.from }}"
      body: "Still need help? {{ tenant.name }} is here."
)yaml";

constexpr const char* ask_yaml = R"yaml(name: ask
trigger: call.missed
steps:
  - id: question
    send_sms:
      to: "{{ call.from }}"
      body: "Sorry we missed you. What do you need?"
  - id: wait
    wait_for_reply:
      timeout: 1h
    on_reply:
      - id: forward
        notify_owner: "{{ reply.from }} wrote: {{ reply.body }}"
    on_timeout:
      - id: nudge
        notify_owner: "No reply from {{ call.from }}"
)yaml";

constexpr const char* ask_then_wait_yaml = R"yaml(name: ask_then_wait
trigger: call.missed
steps:
  - wait_for_reply:
      timeout: 1h
    on_reply:
      - wait: 2h
      - id: follow_up
        notify_owner: "Follow up with {{ reply.from }}: {{ reply.body }}"
    on_timeout:
      - id: nudge
        notify_owner: "No reply from {{ call.from }}"
)yaml";

constexpr const char* inbox_yaml = R"yaml(name: inbox
trigger: sms.received
steps:
  - id: note
    log: "text from {{ sms.from }}: {{ sms.body }}"
)yaml";

constexpr const char* crm_yaml = R"yaml(name: crm
trigger: call.missed
steps:
  - id: lookup
    http:
      url: "https://crm.example.com/v1/lookup"
      json:
        phone: "{{ call.from }}"
        source: missed_call
      retries: 2
  - if: steps.lookup.ok
    then:
      - id: greet
        send_sms:
          to: "{{ call.from }}"
          body: "Hi {{ steps.lookup.json.customer.name }}, sorry we missed you ({{ steps.lookup.status }})."
    else:
      - id: crm_down
        notify_owner: "CRM lookup failed ({{ steps.lookup.error }}); missed call from {{ call.from }}"
)yaml";

constexpr const char* completed_yaml = R"yaml(name: wrap_up
trigger: call.completed
steps:
  - id: thanks
    send_sms:
      to: "{{ call.from }}"
      body: "Thanks for calling (answered: {{ call.answered }}, {{ call.duration }}s)"
)yaml";

constexpr const char* hourly_yaml = R"yaml(name: hourly
trigger: schedule
schedule: "0 * * * *"
steps:
  - id: report
    notify_owner: "Hourly check at {{ schedule.fired_at }}"
)yaml";

/// answer_yaml with another goodbye: another version of the same workflow.
constexpr const char* answer_v2_yaml = R"yaml(name: answer
trigger: call.incoming
steps:
  - say: "Welcome to {{ tenant.name }}."
  - id: forward
    dial: "{{ tenant.owner_phone }}"
  - if: dial.answered
    then:
      - stop: "the owner took the call"
  - id: voicemail
    record_voicemail:
      transcribe: true
    on_transcription:
      - id: transcript
        notify_owner: "v2 transcript: {{ voicemail.transcription }}"
  - say: "Goodbye from version 2."
  - hangup:
)yaml";

/// Looks the caller up before answering: the answer waits for the response.
constexpr const char* lookup_first_yaml = R"yaml(name: lookup_first
trigger: call.incoming
steps:
  - id: vip
    http:
      url: "https://crm.example.com/vip?from={{ call.from }}"
  - if: steps.vip.json.vip
    then:
      - say: "Hello {{ steps.vip.json.name }}, connecting you now."
    else:
      - say: "Thanks for calling."
  - dial: "{{ tenant.owner_phone }}"
)yaml";

constexpr const char* answered_yaml = R"yaml(name: after_talk
trigger: call.answered
steps:
  - id: thanks
    send_sms:
      to: "{{ call.from }}"
      body: "Thanks for talking to us ({{ call.duration }}s, answered: {{ call.answered }})"
)yaml";

constexpr const char* sms_http_yaml = R"yaml(name: sms_to_crm
trigger: sms.received
steps:
  - id: push
    http:
      method: PUT
      url: "https://in.hooks.example.com/sms"
      body: "{{ sms.from }}={{ sms.body }}"
      headers:
        Content-Type: text/plain
  - id: ack
    send_sms:
      to: "{{ sms.from }}"
      body: "Got it ({{ steps.push.status }}: {{ steps.push.json.ticket }})"
)yaml";

constexpr const char* spin_yaml = R"yaml(name: spin
trigger: call.missed
steps:
  - repeat:
      times: 100
    steps:
      - repeat:
          times: 100
        steps:
          - log: "pass {{ loop.index }}"
  - id: never
    notify_owner: "never reached"
)yaml";

std::vector<workflows::workflow_ptr>
load_all(const std::vector<std::string>& yamls) {
  std::vector<workflows::workflow_ptr> out;
  for (std::size_t i = 0; i < yamls.size(); ++i) {
    auto file = "wf" + std::to_string(i) + ".yaml";
    auto wf = workflows::load_string(yamls[i], file);
    EXPECT_TRUE(wf.ok()) << workflows::to_string(wf.diagnostics);
    if (wf.ok())
      out.push_back(wf.value);
  }
  return out;
}

/// A process clock `offset` ahead of the test's clock (clocks of two
/// machines never agree to the millisecond).
class skewed_clock final : public engine::clock {
public:
  skewed_clock(const engine::clock& base, std::chrono::milliseconds offset)
    : base_(base), offset_(offset) {
    // nop
  }

  engine::epoch_ms now() const override {
    return base_.now() + offset_.count();
  }

private:
  const engine::clock& base_;
  std::chrono::milliseconds offset_;
};

/// Runs jobs at once while `run_inline` is set; otherwise holds them (a
/// request in flight that never completes).
template <class Port>
class held_queue final : public engine::job_queue<Port> {
public:
  explicit held_queue(Port& port) : port_(port) {
    // nop
  }

  void post(typename engine::job_queue<Port>::job j) override {
    if (run_inline)
      j(port_);
    else
      held_.push_back(std::move(j));
  }

  std::size_t held() const {
    return held_.size();
  }

  bool run_inline = true;

private:
  Port& port_;
  std::vector<typename engine::job_queue<Port>::job> held_;
};

/// One ringback "process": its own queues, kv view, carrier, HTTP client,
/// services and actors, over a store and kv state that nodes share.
struct node {
  node(caf::actor_system& sys, std::string id,
       std::shared_ptr<adapters::memory_database> database,
       std::shared_ptr<adapters::memory_kv_state> kv_state,
       const engine::clock& clock,
       const std::vector<workflows::workflow_ptr>& wfs,
       std::shared_ptr<const engine::tenant> t, workflows::run_limits limits)
    : db(std::move(database)),
      kv(std::move(kv_state)),
      store_q(db),
      kv_q(unpaced),
      carrier_q(carrier),
      http_q(http) {
    db.migrate();
    auto s = testkit::node_services(store_q, kv_q, carrier_q, clock,
                                    std::move(id));
    s->http = &http_q;
    s->public_url = base_url;
    testkit::use_test_timing(*s);
    s->run_limits = limits;
    s->started_at = clock.now();
    workflows::catalog cat;
    for (const auto& wf : wfs)
      EXPECT_TRUE(cat.add(wf)) << workflows::to_string(cat.diagnostics());
    s->workflows = std::make_shared<actors::catalog_source>(std::move(cat));
    s->numbers = std::make_shared<const actors::tenant_directory>(
      std::vector<engine::tenant>{*t});
    svc = s;
    outbox = sys.spawn(actors::outbox_actor, svc);
    tenant = sys.spawn(actors::tenant_actor, t, svc, outbox);
    sink = std::make_unique<actors::actor_event_sink>(
      svc, std::unordered_map<std::string, caf::actor>{{t->id, tenant}},
      outbox);
  }

  adapters::memory_store db;
  adapters::memory_kv kv;
  testkit::unpaced_kv unpaced{kv};
  testkit::gated_store_queue store_q;
  engine::inline_queue<engine::kv> kv_q;
  testkit::fake_carrier carrier;
  engine::inline_queue<engine::carrier> carrier_q;
  testkit::fake_http_fetcher http;
  held_queue<engine::http_fetcher> http_q;
  actors::services_ptr svc;
  caf::actor outbox;
  caf::actor tenant;
  std::unique_ptr<actors::actor_event_sink> sink;
  bool alive = true;
};

using reply_ptr = std::shared_ptr<testkit::recorded_reply>;

class WorkflowRuns : public testkit::actor_test {
protected:
  WorkflowRuns()
    : database_(adapters::memory_store{}.database()),
      kv_state_(std::make_shared<adapters::memory_kv_state>()),
      db_(database_) {
    db_.migrate();
    auto t = std::make_shared<engine::tenant>();
    t->id = "acme";
    t->name = "Acme Plumbing";
    t->owner_phone = owner;
    t->timezone = "UTC";
    // These tests are about runs: texts are not paced (`unpaced_kv`) and
    // the guards are off (pacing and the guards have their own
    // tests in outbox_test.cpp).
    t->numbers.push_back({business, engine::number_kind::long_code, 1.0});
    t->guards.repeat_caller_window = std::chrono::milliseconds{0};
    t->guards.automated_per_hour = 0;
    t->guards.loop_limit = 0;
    t->guards.caller_rate_limit = 0;
    t->http_allow = {"crm.example.com", "*.hooks.example.com"};
    tenant_ = t;
  }

  ~WorkflowRuns() override {
    for (auto& n : nodes_)
      if (n->alive)
        stop(*n, caf::exit_reason::user_shutdown);
    sched_.run();
  }

  /// Starts a node running `yamls` (loaded once per test: every node sees
  /// the same workflow versions).
  node& start(const std::string& id, workflows::run_limits limits = {},
              std::chrono::milliseconds skew = 0ms) {
    const engine::clock* clock = &clock_;
    if (skew.count() != 0) {
      clocks_.push_back(std::make_unique<skewed_clock>(clock_, skew));
      clock = clocks_.back().get();
    }
    nodes_.push_back(std::make_unique<node>(
      sys_, id, database_, kv_state_, *clock, workflows_, tenant_, limits));
    sched_.run();
    return *nodes_.back();
  }

  void use(const std::vector<std::string>& yamls) {
    workflows_ = load_all(yamls);
    ASSERT_EQ(workflows_.size(), yamls.size());
  }

  /// Drops a node's actors (a kill -9: nothing is flushed, timers are lost).
  void stop(node& n, caf::exit_reason why = caf::exit_reason::kill) {
    for (auto& [sid, call] : tenant_of(n).calls)
      caf::anon_send_exit(call, why);
    caf::anon_send_exit(n.tenant, why); // its runs actor is linked
    caf::anon_send_exit(n.outbox, why);
    n.alive = false;
    sched_.run();
  }

  reply_ptr deliver(node& n, inbound_event ev) {
    auto reply = std::make_shared<testkit::recorded_reply>();
    caf::anon_send(n.tenant, actors::event_atom_v, std::move(ev),
                   std::shared_ptr<engine::voice_reply>{reply});
    sched_.run();
    return reply;
  }

  /// Through the ingress port (kv dedup of callbacks, SMS stored once).
  reply_ptr ingress(node& n, inbound_event ev) {
    auto reply = std::make_shared<testkit::recorded_reply>();
    n.sink->deliver(tenant_->id, std::move(ev), reply);
    sched_.run();
    return reply;
  }

  reply_ptr incoming(node& n, const std::string& sid) {
    return deliver(n, testkit::call_event(kind::call_incoming, sid));
  }

  reply_ptr dial_result(node& n, const std::string& sid,
                        const std::string& status, std::int32_t duration = 0) {
    return deliver(n, testkit::call_event(kind::dial_result, sid, status,
                                          duration));
  }

  static inbound_event recording_event(const std::string& sid,
                                       std::int32_t duration) {
    auto ev = testkit::call_event(kind::recording, sid, "completed", duration);
    ev.url = "https://api.twilio.com/recordings/RE" + sid;
    return ev;
  }

  reply_ptr recording(node& n, const std::string& sid, std::int32_t duration) {
    return deliver(n, recording_event(sid, duration));
  }

  void status(node& n, const std::string& sid, const std::string& st,
              std::int32_t duration = 0) {
    deliver(n, testkit::call_event(kind::call_status, sid, st, duration));
  }

  static inbound_event sms_event(const std::string& sid,
                                 const std::string& from,
                                 const std::string& body) {
    inbound_event ev;
    ev.what = kind::sms;
    ev.sid = sid;
    ev.from = from;
    ev.to = business;
    ev.body = body;
    ev.raw.kind = engine::to_string(kind::sms);
    ev.raw.call_sid = sid;
    return ev;
  }

  void sms(node& n, const std::string& sid, const std::string& from,
           const std::string& body) {
    deliver(n, sms_event(sid, from, body));
  }
  /// A caller's text through `n`'s ingress with its store closed, then
  /// only its row's job run: stored and answered, its consumers' store jobs
  /// held (a crash now loses them).
  reply_ptr text_stored_only(node& n, const std::string& sid,
                             const std::string& body) {
    n.store_q.close();
    auto ev = sms_event(sid, caller, body);
    ev.raw.received_at = clock_.now();
    auto answered = ingress(n, ev);
    n.store_q.open_ahead();
    sched_.run();
    return answered;
  }

  void transcription(node& n, const std::string& call_sid,
                     const std::string& step, const std::string& text,
                     const std::string& st = "completed") {
    inbound_event ev;
    ev.what = kind::transcription;
    ev.sid = call_sid;
    ev.from = caller;
    ev.to = business;
    ev.status = st;
    ev.body = text;
    ev.step = step;
    ev.raw.kind = engine::to_string(kind::transcription);
    ev.raw.call_sid = call_sid;
    deliver(n, std::move(ev));
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

  actors::runs_state& runs_of(node& n) {
    auto* ptr = caf::actor_cast<caf::abstract_actor*>(tenant_of(n).runs);
    return dynamic_cast<caf::stateful_actor<actors::runs_state>&>(*ptr).state;
  }

  /// The runs of `call_sid` ("" for runs without a call) of one workflow.
  std::vector<engine::run_record> runs(const std::string& call_sid,
                                       const std::string& workflow) {
    std::vector<engine::run_record> out;
    for (auto& r : db_.runs_for_call(call_sid))
      if (r.workflow == workflow)
        out.push_back(std::move(r));
    return out;
  }

  /// The one run of `workflow` for `call_sid`; fails the test otherwise.
  engine::run_record the_run(const std::string& call_sid,
                             const std::string& workflow) {
    auto found = runs(call_sid, workflow);
    EXPECT_EQ(found.size(), 1u) << workflow << " runs for '" << call_sid << "'";
    return found.empty() ? engine::run_record{} : found.front();
  }

  /// "step_id type outcome" of every recorded step of a run.
  std::vector<std::string> steps_of(std::int64_t run_id) {
    std::vector<std::string> out;
    for (const auto& s : db_.run_steps(run_id))
      out.push_back(s.step_id + " " + s.type + " " + s.outcome);
    return out;
  }

  /// Every text the fake carriers of all nodes accepted, as "to: body",
  /// but the conversation layer's relays of customer texts to the owner
  /// ("[#1 +1555...] ..."; conversations_test.cpp covers those).
  std::vector<std::string> texts() {
    std::vector<std::string> out;
    for (const auto& n : nodes_)
      for (const auto& m : n->carrier.sent)
        if (!(m.to == owner && m.body.rfind("[#", 0) == 0))
          out.push_back(m.to + ": " + m.body);
    return out;
  }

  std::vector<std::string> purposes(const std::string& call_sid) {
    std::vector<std::string> out;
    for (const auto& m : db_.messages_for_call(call_sid))
      out.push_back(m.purpose);
    return out;
  }

  testkit::manual_clock clock_;
  std::shared_ptr<adapters::memory_database> database_;
  std::shared_ptr<adapters::memory_kv_state> kv_state_;
  adapters::memory_store db_; // what the test reads
  std::shared_ptr<const engine::tenant> tenant_;
  std::vector<workflows::workflow_ptr> workflows_;
  std::vector<std::unique_ptr<skewed_clock>> clocks_;
  std::vector<std::unique_ptr<node>> nodes_;
};

// -- 1, 2: a call answered by a call.incoming workflow ------------------------

TEST_F(WorkflowRuns, IncomingWorkflowAnswersEveryWebhookOfTheCall) {
  use({answer_yaml, text_back_yaml});
  auto& a = start("node-a");
  const auto started = clock_.now();
  auto first = incoming(a, "CA1");
  ASSERT_EQ(first->answers.size(), 1u);
  const auto& v1 = first->answers.front().verbs;
  ASSERT_EQ(v1.size(), 2u);
  EXPECT_EQ(v1[0].what, vk::say);
  EXPECT_EQ(v1[0].text, "Thanks for calling Acme Plumbing.");
  EXPECT_EQ(v1[1].what, vk::dial);
  EXPECT_EQ(v1[1].numbers, std::vector<std::string>{owner});
  EXPECT_EQ(v1[1].timeout, 20s) << "the host's ring timeout";
  EXPECT_EQ(v1[1].action_url,
            std::string(base_url) + "/webhooks/twilio/voice/dial-result");
  auto run = the_run("CA1", "answer");
  EXPECT_EQ(run.status, run_status::waiting);
  EXPECT_EQ(run.waiting_for, "dial");
  EXPECT_EQ(run.trigger, "call.incoming");
  EXPECT_EQ(run.contact, caller);
  EXPECT_EQ(run.started_at, started);
  EXPECT_TRUE(
    db_.find_workflow_version("acme", "answer", run.version).has_value());

  advance(5s);
  auto second = dial_result(a, "CA1", "no-answer");
  ASSERT_EQ(second->answers.size(), 1u);
  const auto& v2 = second->answers.front().verbs;
  ASSERT_EQ(v2.size(), 1u);
  EXPECT_EQ(v2[0].what, vk::record);
  EXPECT_EQ(v2[0].max_length, 60s);
  EXPECT_EQ(v2[0].action_url,
            std::string(base_url) + "/webhooks/twilio/voice/recording");
  EXPECT_EQ(v2[0].transcribe_callback,
            std::string(base_url)
              + "/webhooks/twilio/voice/transcription?step=4");
  // The call is decided missed and call.missed's text goes out.
  EXPECT_EQ(db_.find_call("CA1")->phase, engine::call_phase::missed);
  EXPECT_EQ(texts(),
            std::vector<std::string>{
              std::string(caller) + ": Sorry we missed you - Acme Plumbing"});
  run = the_run("CA1", "answer");
  EXPECT_EQ(run.status, run_status::waiting);
  EXPECT_EQ(run.waiting_for, "recording");
  EXPECT_EQ(run.started_at, started) << "a resume keeps the run's start";

  advance(30s);
  auto third = recording(a, "CA1", 17);
  ASSERT_EQ(third->answers.size(), 1u);
  const auto& v3 = third->answers.front().verbs;
  ASSERT_EQ(v3.size(), 2u);
  EXPECT_EQ(v3[0].what, vk::say);
  EXPECT_EQ(v3[0].text, "Thanks, we got your message (17s). Goodbye.");
  EXPECT_EQ(v3[1].what, vk::hangup);
  run = the_run("CA1", "answer");
  EXPECT_EQ(run.status, run_status::finished);
  EXPECT_EQ(run.started_at, started);
  EXPECT_EQ(steps_of(run.id),
            (std::vector<std::string>{"#0 say ok", "forward dial waiting",
                                      "forward dial resumed", "#2 if ok",
                                      "voicemail record_voicemail waiting",
                                      "voicemail record_voicemail resumed",
                                      "#6 say ok", "#7 hangup ok"}));

  // Decided once: late and repeated callbacks change nothing.
  status(a, "CA1", "completed", 60);
  advance(120s);
  EXPECT_EQ(texts().size(), 1u);
  EXPECT_EQ(purposes("CA1"), std::vector<std::string>{"text_back/sorry"});
  EXPECT_EQ(runs("CA1", "text_back").size(), 1u);
  EXPECT_EQ(db_.find_call("CA1")->decided, engine::decided_by::dial_result);
}

TEST_F(WorkflowRuns, AnsweredDialEndsTheRunAndStartsNoMissedRun) {
  use({answer_yaml, text_back_yaml});
  auto& a = start("node-a");
  incoming(a, "CA1");
  auto r = dial_result(a, "CA1", "completed", 42);
  ASSERT_EQ(r->answers.size(), 1u);
  EXPECT_TRUE(r->answers.front().verbs.empty()) << "no voice: hang up";
  auto run = the_run("CA1", "answer");
  EXPECT_EQ(run.status, run_status::finished);
  EXPECT_EQ(db_.find_call("CA1")->phase, engine::call_phase::answered);
  advance(120s);
  EXPECT_TRUE(texts().empty());
  EXPECT_TRUE(runs("CA1", "text_back").empty());
  EXPECT_TRUE(tenant_of(a).calls.empty());
}

TEST_F(WorkflowRuns, CarrierRetryOfTheIncomingWebhookGetsTheSameAnswer) {
  use({answer_yaml, text_back_yaml});
  auto& a = start("node-a");
  // The retry arrives while the call is still being created...
  auto r1 = std::make_shared<testkit::recorded_reply>();
  auto r2 = std::make_shared<testkit::recorded_reply>();
  caf::anon_send(a.tenant, actors::event_atom_v,
                 testkit::call_event(kind::call_incoming, "CA1"),
                 std::shared_ptr<engine::voice_reply>{r1});
  caf::anon_send(a.tenant, actors::event_atom_v,
                 testkit::call_event(kind::call_incoming, "CA1"),
                 std::shared_ptr<engine::voice_reply>{r2});
  sched_.run();
  // ... and once it is live.
  auto r3 = incoming(a, "CA1");
  for (const auto& r : {r1, r2, r3}) {
    ASSERT_EQ(r->answers.size(), 1u);
    ASSERT_EQ(r->answers.front().verbs.size(), 2u);
    EXPECT_EQ(r->answers.front().verbs[1].what, vk::dial);
    EXPECT_EQ(r->answers.front().verbs[1].action_url,
              r1->answers.front().verbs[1].action_url);
  }
  EXPECT_EQ(runs("CA1", "answer").size(), 1u) << "one run per call";
  EXPECT_EQ(steps_of(the_run("CA1", "answer").id),
            (std::vector<std::string>{"#0 say ok", "forward dial waiting"}));
}

TEST_F(WorkflowRuns, RetryOfTheIncomingWebhookOnAnotherNodeGetsTheSameAnswer) {
  use({answer_yaml, text_back_yaml});
  auto& a = start("node-a");
  auto& b = start("node-b");
  auto r1 = incoming(a, "CA1");
  auto r2 = incoming(b, "CA1");
  ASSERT_EQ(r1->answers.size(), 1u);
  ASSERT_EQ(r2->answers.size(), 1u);
  ASSERT_EQ(r2->answers.front().verbs.size(), 2u);
  EXPECT_EQ(r2->answers.front().verbs[1].what, vk::dial);
  EXPECT_EQ(runs("CA1", "answer").size(), 1u) << "one run per call";
  EXPECT_EQ(r2->answers.front().verbs[0].text,
            r1->answers.front().verbs[0].text);
  b.carrier.set_call("CA1", "completed", "no-answer");
  dial_result(a, "CA1", "no-answer");
  recording(a, "CA1", 3);
  status(a, "CA1", "completed", 30);
  EXPECT_EQ(the_run("CA1", "answer").status, run_status::finished);
  EXPECT_TRUE(tenant_of(a).calls.empty());
  advance(2min);
  EXPECT_TRUE(tenant_of(b).calls.empty()) << "node B holds nothing either";
  EXPECT_EQ(texts().size(), 1u);
}

TEST_F(WorkflowRuns, DuplicateDialResultDoesNotResumeTheRunTwice) {
  use({answer_yaml, text_back_yaml});
  auto& a = start("node-a");
  incoming(a, "CA1");
  auto first
    = ingress(a, testkit::call_event(kind::dial_result, "CA1", "no-answer"));
  ASSERT_EQ(first->answers.size(), 1u);
  auto run = the_run("CA1", "answer");
  ASSERT_EQ(run.waiting_for, "recording");
  const auto seq = run.seq;
  const auto steps = steps_of(run.id).size();
  // A carrier retry through the ingress is dropped by the kv dedup...
  auto retry
    = ingress(a, testkit::call_event(kind::dial_result, "CA1", "no-answer"));
  EXPECT_TRUE(retry->answers.empty());
  // ... and one that gets past it (kv down) does not resume the run either.
  dial_result(a, "CA1", "no-answer");
  run = the_run("CA1", "answer");
  EXPECT_EQ(run.seq, seq);
  EXPECT_EQ(run.waiting_for, "recording");
  EXPECT_EQ(steps_of(run.id).size(), steps);
  // The recording still resumes it, once.
  auto rec = recording(a, "CA1", 9);
  ASSERT_EQ(rec->answers.size(), 1u);
  EXPECT_EQ(rec->answers.front().verbs.size(), 2u);
  EXPECT_EQ(the_run("CA1", "answer").status, run_status::finished);
  advance(60s);
  EXPECT_EQ(texts().size(), 1u);
  EXPECT_EQ(runs("CA1", "text_back").size(), 1u);
}

TEST_F(WorkflowRuns, RecordingAfterTheCallEndedResumesTheStoredRun) {
  use({answer_yaml, text_back_yaml});
  auto& a = start("node-a");
  incoming(a, "CA1");
  dial_result(a, "CA1", "busy");
  // The caller hangs up while recording: the call actor has nothing left to
  // do in memory and is released; the run waits in the store.
  status(a, "CA1", "completed", 40);
  EXPECT_TRUE(tenant_of(a).calls.empty());
  EXPECT_EQ(the_run("CA1", "answer").waiting_for, "recording");
  auto rec = recording(a, "CA1", 12);
  ASSERT_EQ(rec->answers.size(), 1u);
  ASSERT_EQ(rec->answers.front().verbs.size(), 2u);
  EXPECT_EQ(rec->answers.front().verbs[0].text,
            "Thanks, we got your message (12s). Goodbye.");
  EXPECT_EQ(the_run("CA1", "answer").status, run_status::finished);
  EXPECT_TRUE(tenant_of(a).calls.empty());
}

TEST_F(WorkflowRuns, ACallsJobsQueueAgainOnceItsClaimIsSettled) {
  use({answer_yaml, text_back_yaml});
  auto& a = start("node-a");
  incoming(a, "CA1");
  // The claim and the text-back went ahead of the store's queue and are
  // acknowledged; the actor stays for the recording.
  dial_result(a, "CA1", "busy");
  ASSERT_EQ(texts().size(), 1u);
  ASSERT_FALSE(tenant_of(a).calls.empty());
  a.store_q.close();
  // The call's end is bookkeeping: it queues like anyone's.
  status(a, "CA1", "completed", 40);
  EXPECT_EQ(a.store_q.held_ahead(), 0u);
  EXPECT_EQ(a.store_q.held(), 1u);
  a.store_q.open();
  sched_.run();
  EXPECT_TRUE(db_.find_call("CA1")->ended);
}

TEST_F(WorkflowRuns, AClaimGoesAheadOfTheRunSegmentsQueuedBeforeIt) {
  use({answer_yaml, text_back_yaml});
  auto& a = start("node-a");
  // The store is behind from the start: the call's insert goes first
  // (urgent), the incoming run's first segment queues.
  a.store_q.close();
  bool backlog_ran = false;
  a.store_q.post([&](engine::store&) { backlog_ran = true; });
  incoming(a, "CA1");
  ASSERT_TRUE(a.store_q.drain_ahead([&] { sched_.run(); }));
  ASSERT_TRUE(db_.find_call("CA1"));
  EXPECT_TRUE(runs("CA1", "answer").empty()) << "its segment still queued";
  // The dial result's claim writes the call's row and new rows only: it
  // goes ahead of that segment, and the text-back with it.
  dial_result(a, "CA1", "busy");
  ASSERT_TRUE(a.store_q.drain_ahead([&] { sched_.run(); }));
  EXPECT_EQ(texts().size(), 1u);
  EXPECT_EQ(db_.find_call("CA1")->phase, engine::call_phase::missed);
  EXPECT_FALSE(backlog_ran);
  EXPECT_TRUE(runs("CA1", "answer").empty());
  // The run's segments keep their order behind it.
  a.store_q.open();
  sched_.run();
  EXPECT_TRUE(backlog_ran);
  auto run = the_run("CA1", "answer");
  EXPECT_EQ(run.status, run_status::waiting);
  EXPECT_EQ(run.waiting_for, "recording");
  EXPECT_EQ(texts().size(), 1u);
}

TEST_F(WorkflowRuns, RecordingReachingAnotherNodeResumesTheStoredRun) {
  use({answer_yaml, text_back_yaml});
  auto& a = start("node-a");
  auto& b = start("node-b");
  incoming(a, "CA1");
  dial_result(a, "CA1", "no-answer");
  auto rec = recording(b, "CA1", 8);
  ASSERT_EQ(rec->answers.size(), 1u);
  ASSERT_EQ(rec->answers.front().verbs.size(), 2u);
  EXPECT_EQ(rec->answers.front().verbs[0].text,
            "Thanks, we got your message (8s). Goodbye.");
  EXPECT_EQ(the_run("CA1", "answer").status, run_status::finished);
  EXPECT_EQ(texts().size(), 1u);
}

TEST_F(WorkflowRuns, CallbacksAlternatingBetweenNodesFollowTheStoredRun) {
  use({answer_yaml, text_back_yaml});
  auto& a = start("node-a");
  auto& b = start("node-b");
  incoming(a, "CA1");
  auto dialled = dial_result(b, "CA1", "no-answer");
  ASSERT_EQ(dialled->answers.size(), 1u);
  ASSERT_EQ(dialled->answers.front().verbs.size(), 1u);
  EXPECT_EQ(dialled->answers.front().verbs[0].what, vk::record);
  // The recording comes back to node A, whose memory still has the run
  // waiting for the dial: the store knows better.
  auto rec = recording(a, "CA1", 8);
  ASSERT_EQ(rec->answers.size(), 1u);
  ASSERT_EQ(rec->answers.front().verbs.size(), 2u);
  EXPECT_EQ(rec->answers.front().verbs[0].text,
            "Thanks, we got your message (8s). Goodbye.");
  EXPECT_EQ(the_run("CA1", "answer").status, run_status::finished);
  status(b, "CA1", "completed", 30);
  // Node A learns how the call ended from the carrier at its fallback.
  a.carrier.set_call("CA1", "completed", "no-answer");
  advance(2min);
  EXPECT_TRUE(tenant_of(a).calls.empty());
  EXPECT_TRUE(tenant_of(b).calls.empty());
  EXPECT_EQ(texts().size(), 1u);
}

TEST_F(WorkflowRuns, NodeThatOnlyAnsweredTheCallLetsItGo) {
  use({answer_yaml, text_back_yaml});
  auto& a = start("node-a");
  auto& b = start("node-b");
  a.carrier.set_call("CA1", "completed", "no-answer");
  incoming(a, "CA1");
  dial_result(b, "CA1", "no-answer");
  recording(b, "CA1", 8);
  status(b, "CA1", "completed", 30);
  EXPECT_EQ(the_run("CA1", "answer").status, run_status::finished);
  EXPECT_TRUE(tenant_of(b).calls.empty());
  advance(2min);
  EXPECT_TRUE(tenant_of(a).calls.empty()) << "node A's copy waits for nothing";
  EXPECT_EQ(texts().size(), 1u);
}

TEST_F(WorkflowRuns, ARunFinishesOnTheVersionItStartedWith) {
  use({answer_yaml, text_back_yaml});
  auto& a = start("node-a");
  incoming(a, "CA1");
  dial_result(a, "CA1", "no-answer");
  const auto version = the_run("CA1", "answer").version;
  // Node B runs an edited answer workflow; the call's run is on the old one.
  use({answer_v2_yaml, text_back_yaml});
  ASSERT_NE(workflows_.front()->version, version);
  auto& b = start("node-b");
  auto rec = recording(b, "CA1", 8);
  ASSERT_EQ(rec->answers.size(), 1u);
  ASSERT_EQ(rec->answers.front().verbs.size(), 2u);
  EXPECT_EQ(rec->answers.front().verbs[0].text,
            "Thanks, we got your message (8s). Goodbye.");
  auto run = the_run("CA1", "answer");
  EXPECT_EQ(run.status, run_status::finished);
  EXPECT_EQ(run.version, version);
  // Its transcription runs the old version's branch too.
  transcription(b, "CA1", "4", "call me");
  ASSERT_EQ(texts().size(), 2u);
  EXPECT_EQ(texts().back(), std::string(owner) + ": Voicemail from " + caller
                              + " (8s, completed): call me");
}

TEST_F(WorkflowRuns, IncomingAnswerWaitsForTheHttpResponse) {
  use({lookup_first_yaml});
  auto& a = start("node-a");
  a.http.push(
    testkit::fake_http_fetcher::json(200, R"({"vip": true, "name": "Ann"})"));
  auto r = incoming(a, "CA1");
  ASSERT_EQ(a.http.requests().size(), 1u);
  EXPECT_EQ(a.http.requests()[0].method, "GET");
  EXPECT_EQ(a.http.requests()[0].url,
            "https://crm.example.com/vip?from=+15550100");
  ASSERT_EQ(r->answers.size(), 1u);
  const auto& v = r->answers.front().verbs;
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].text, "Hello Ann, connecting you now.");
  EXPECT_EQ(v[1].what, vk::dial);
  EXPECT_EQ(v[1].action_url,
            std::string(base_url) + "/webhooks/twilio/voice/dial-result");
  auto run = the_run("CA1", "lookup_first");
  EXPECT_EQ(run.waiting_for, "dial");
  EXPECT_EQ(steps_of(run.id),
            (std::vector<std::string>{"vip http waiting", "vip http resumed",
                                      "#1 if ok", "#2 say ok",
                                      "#4 dial waiting"}));
  // A retry of the webhook gets the same answer.
  auto retry = incoming(a, "CA1");
  ASSERT_EQ(retry->answers.size(), 1u);
  EXPECT_EQ(retry->answers.front().verbs.size(), 2u);
  EXPECT_EQ(a.http.requests().size(), 1u);
  auto done = dial_result(a, "CA1", "completed", 12);
  ASSERT_EQ(done->answers.size(), 1u);
  EXPECT_TRUE(done->answers.front().verbs.empty());
  EXPECT_EQ(the_run("CA1", "lookup_first").status, run_status::finished);
  EXPECT_TRUE(tenant_of(a).calls.empty());
}

TEST_F(WorkflowRuns, CallAnsweredStartsWithTheDialDuration) {
  use({answered_yaml, text_back_yaml});
  auto& a = start("node-a");
  incoming(a, "CA1");
  dial_result(a, "CA1", "completed", 42);
  EXPECT_EQ(texts(), std::vector<std::string>{
                       std::string(caller)
                       + ": Thanks for talking to us (42s, answered: true)"});
  EXPECT_TRUE(runs("CA1", "text_back").empty());
  EXPECT_EQ(the_run("CA1", "after_talk").trigger, "call.answered");
}

// -- 3, 4: durable timers --------------------------------------------------

TEST_F(WorkflowRuns, WaitSendsNothingBeforeItsDeadlineAndOneTextAfter) {
  use({later_yaml});
  auto& a = start("node-a");
  incoming(a, "CA1");
  const auto decided_at = clock_.now();
  dial_result(a, "CA1", "no-answer");
  auto run = the_run("CA1", "later");
  EXPECT_EQ(run.status, run_status::waiting);
  EXPECT_EQ(run.waiting_for, "timer");
  EXPECT_EQ(run.wake_at, decided_at + 600'000);
  EXPECT_EQ(run.node_id, "node-a");
  EXPECT_EQ(steps_of(run.id), std::vector<std::string>{"#0 wait waiting"});
  EXPECT_EQ(runs_of(a).timers.size(), 1u);
  advance(599s);
  EXPECT_TRUE(texts().empty());
  EXPECT_EQ(db_.find_run(run.id)->status, run_status::waiting);
  advance(1s);
  EXPECT_EQ(texts(), std::vector<std::string>{
                       std::string(caller)
                       + ": Still need help? Acme Plumbing is here."});
  run = the_run("CA1", "later");
  EXPECT_EQ(run.status, run_status::finished);
  EXPECT_EQ(run.wake_at, 0);
  EXPECT_EQ(steps_of(run.id),
            (std::vector<std::string>{"#0 wait waiting", "#0 wait resumed",
                                      "follow_up send_sms ok"}));
  EXPECT_EQ(purposes("CA1"), std::vector<std::string>{"later/follow_up"});
  EXPECT_EQ(runs_of(a).timers.size(), 0u);
  EXPECT_EQ(runs_of(a).stats.resumed, 1u);
  advance(1h);
  EXPECT_EQ(texts().size(), 1u);
}

TEST_F(WorkflowRuns, ARestartedNodeReArmsTheWaitAndSendsOnceAtTheDeadline) {
  use({later_yaml});
  auto& a = start("node-a");
  incoming(a, "CA1");
  dial_result(a, "CA1", "no-answer");
  const auto wake_at = the_run("CA1", "later").wake_at;
  advance(4min);
  stop(a); // killed mid-wait
  advance(1min);
  auto& again = start("node-a"); // the same process, restarted
  caf::anon_send(again.tenant, actors::recover_atom_v);
  sched_.run();
  EXPECT_EQ(runs_of(again).timers.size(), 1u);
  advance(std::chrono::milliseconds{wake_at - clock_.now() - 1000});
  EXPECT_TRUE(texts().empty());
  advance(1s);
  EXPECT_EQ(clock_.now(), wake_at);
  EXPECT_EQ(again.carrier.sent.size(), 1u);
  EXPECT_TRUE(a.carrier.sent.empty());
  EXPECT_EQ(the_run("CA1", "later").status, run_status::finished);
  advance(1h);
  EXPECT_EQ(texts().size(), 1u);
}

TEST_F(WorkflowRuns, AnotherNodeAdoptsAnOrphanedWaitOnce) {
  use({later_yaml});
  auto& a = start("node-a");
  incoming(a, "CA1");
  dial_result(a, "CA1", "no-answer");
  const auto wake_at = the_run("CA1", "later").wake_at;
  advance(1min);
  stop(a);
  // Node B starts while the wait is not overdue: not its run (yet).
  auto& b = start("node-b");
  caf::anon_send(b.tenant, actors::recover_atom_v);
  sched_.run();
  EXPECT_EQ(runs_of(b).timers.size(), 0u);
  // Node C starts once the deadline is overdue by adopt_after (2 min).
  advance(std::chrono::milliseconds{wake_at - clock_.now()} + 2min + 1s);
  EXPECT_TRUE(texts().empty());
  auto& c = start("node-c");
  caf::anon_send(c.tenant, actors::recover_atom_v);
  sched_.run();
  advance(1s);
  EXPECT_EQ(c.carrier.sent.size(), 1u);
  auto run = the_run("CA1", "later");
  EXPECT_EQ(run.status, run_status::finished);
  EXPECT_EQ(run.node_id, "node-c");
  advance(1h);
  EXPECT_EQ(texts().size(), 1u);
}

TEST_F(WorkflowRuns, TwoNodesRacingToResumeOneRunSendOnce) {
  use({later_yaml});
  auto& a = start("node-a");
  auto& b = start("node-b");
  incoming(a, "CA1");
  dial_result(a, "CA1", "no-answer");
  // Both processes hold the run's timer (e.g. B adopted it while A was only
  // slow).
  caf::anon_send(tenant_of(b).runs, actors::adopt_atom_v,
                 the_run("CA1", "later"));
  sched_.run();
  EXPECT_EQ(runs_of(a).timers.size(), 1u);
  EXPECT_EQ(runs_of(b).timers.size(), 1u);
  // Both load the run before either has written its resume.
  advance(10min - 1s);
  a.store_q.close();
  b.store_q.close();
  advance(1s);
  EXPECT_EQ(a.store_q.held(), 1u);
  EXPECT_EQ(b.store_q.held(), 1u);
  a.store_q.open();
  b.store_q.open();
  sched_.run();
  EXPECT_EQ(texts().size(), 1u);
  EXPECT_EQ(runs_of(a).stats.lost + runs_of(b).stats.lost, 1u);
  EXPECT_EQ(runs_of(a).stats.resumed + runs_of(b).stats.resumed, 2u);
  auto run = the_run("CA1", "later");
  EXPECT_EQ(run.status, run_status::finished);
  EXPECT_EQ(steps_of(run.id).size(), 3u) << "the loser wrote no steps";
  EXPECT_EQ(db_.messages_for_call("CA1").size(), 1u);
}

// -- 5: replies --------------------------------------------------------------

TEST_F(WorkflowRuns, ReplyFromTheCustomerTakesOnReply) {
  use({ask_yaml, inbox_yaml});
  auto& a = start("node-a");
  incoming(a, "CA1");
  dial_result(a, "CA1", "no-answer");
  EXPECT_EQ(texts().size(), 1u);
  auto run = the_run("CA1", "ask");
  EXPECT_EQ(run.waiting_for, "reply");
  EXPECT_EQ(run.contact, caller);
  advance(10min);
  sms(a, "SM1", caller, "My sink is leaking");
  EXPECT_EQ(texts().back(),
            std::string(owner) + ": " + caller + " wrote: My sink is leaking");
  run = the_run("CA1", "ask");
  EXPECT_EQ(run.status, run_status::finished);
  EXPECT_EQ(steps_of(run.id),
            (std::vector<std::string>{
              "question send_sms ok", "wait wait_for_reply waiting",
              "wait wait_for_reply resumed", "forward notify_owner ok"}));
  EXPECT_EQ(runs("", "inbox").size(), 1u) << "sms.received runs too";
  EXPECT_EQ(runs_of(a).timers.size(), 0u) << "the timeout is disarmed";
  advance(2h);
  EXPECT_EQ(texts().size(), 2u) << "no timeout after the reply";
}

TEST_F(WorkflowRuns, NoReplyInTimeTakesOnTimeout) {
  use({ask_yaml, inbox_yaml});
  auto& a = start("node-a");
  incoming(a, "CA1");
  dial_result(a, "CA1", "no-answer");
  advance(59min + 59s);
  EXPECT_EQ(texts().size(), 1u);
  advance(1s);
  ASSERT_EQ(texts().size(), 2u);
  EXPECT_EQ(texts().back(), std::string(owner) + ": No reply from " + caller);
  auto run = the_run("CA1", "ask");
  EXPECT_EQ(run.status, run_status::finished);
  EXPECT_EQ(steps_of(run.id).back(), "nudge notify_owner ok");
  // A late reply resumes nothing, but is still a received text.
  sms(a, "SM1", caller, "sorry, was out");
  EXPECT_EQ(texts().size(), 2u);
  EXPECT_EQ(runs("", "inbox").size(), 1u);
}

TEST_F(WorkflowRuns, TextFromSomeoneElseDoesNotResumeTheRun) {
  use({ask_yaml, inbox_yaml});
  auto& a = start("node-a");
  incoming(a, "CA1");
  dial_result(a, "CA1", "no-answer");
  sms(a, "SM1", "+15550199", "wrong number?");
  EXPECT_EQ(texts().size(), 1u);
  EXPECT_EQ(the_run("CA1", "ask").waiting_for, "reply");
  sms(a, "SM2", caller, "Need a plumber");
  EXPECT_EQ(texts().back(),
            std::string(owner) + ": " + caller + " wrote: Need a plumber");
  auto inbox = runs("", "inbox");
  ASSERT_EQ(inbox.size(), 2u) << "sms.received starts for every text";
  EXPECT_EQ(inbox[0].contact, "+15550199");
  EXPECT_EQ(inbox[1].contact, caller);
  EXPECT_EQ(inbox[0].status, run_status::finished);
}

TEST_F(WorkflowRuns, OneTextResumesEveryRunWaitingForItsSender) {
  use({ask_yaml});
  auto& a = start("node-a");
  incoming(a, "CA1");
  dial_result(a, "CA1", "no-answer");
  advance(5min);
  incoming(a, "CA2"); // the same caller again
  dial_result(a, "CA2", "busy");
  EXPECT_EQ(texts().size(), 2u);
  sms(a, "SM1", caller, "hello?");
  EXPECT_EQ(texts().size(), 4u);
  EXPECT_EQ(the_run("CA1", "ask").status, run_status::finished);
  EXPECT_EQ(the_run("CA2", "ask").status, run_status::finished);
  EXPECT_EQ(runs_of(a).timers.size(), 0u);
}

TEST_F(WorkflowRuns, AReplyReachingAnotherNodeResumesTheRunOnce) {
  use({ask_yaml});
  auto& a = start("node-a");
  auto& b = start("node-b");
  incoming(a, "CA1");
  dial_result(a, "CA1", "no-answer");
  EXPECT_EQ(runs_of(a).timers.size(), 1u);
  sms(b, "SM1", caller, "call me back");
  // Node B carried the run on (besides relaying the text to the owner).
  ASSERT_EQ(b.carrier.sent.size(), 2u);
  EXPECT_EQ(b.carrier.sent[0].body,
            std::string(caller) + " wrote: call me back");
  EXPECT_EQ(b.carrier.sent[1].body, "[#1 +15550100] call me back");
  // Node A's timeout finds the run finished and does nothing.
  advance(2h);
  EXPECT_EQ(texts().size(), 2u);
  EXPECT_EQ(the_run("CA1", "ask").status, run_status::finished);
  EXPECT_EQ(runs_of(a).timers.size(), 0u);
}

// -- inbound texts across a crash
// ----------------------------------------------

/// Relays of customer texts to the owner ("[#1 ...] ..."), on every node.
std::size_t relays(const std::vector<std::unique_ptr<node>>& nodes) {
  std::size_t n = 0;
  for (const auto& x : nodes)
    for (const auto& m : x->carrier.sent)
      n += m.to == owner && m.body.rfind("[#", 0) == 0 ? 1 : 0;
  return n;
}

TEST_F(WorkflowRuns, ATextStoredBeforeACrashIsHandledOnceAfterTheRestart) {
  // kill -9 after the text's row committed (its webhook answered 200) and
  // before the runs and the conversation stored their parts: the restarted
  // process hands the text on; one more restart finds nothing left.
  use({ask_yaml, inbox_yaml});
  auto& a = start("node-a");
  incoming(a, "CA1");
  dial_result(a, "CA1", "no-answer");
  ASSERT_EQ(the_run("CA1", "ask").waiting_for, "reply");
  auto answered = text_stored_only(a, "SM1", "My sink is leaking");
  EXPECT_EQ(answered->answers.size(), 1u) << "answered once stored";
  stop(a); // and the process dies before anything else does
  auto stored = db_.find_inbound("SM1");
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->node_id, "node-a");
  EXPECT_EQ(stored->pending, engine::inbound_all_consumers);
  EXPECT_EQ(texts().size(), 1u);
  EXPECT_EQ(relays(nodes_), 0u);

  advance(1s);
  auto& again = start("node-a");
  caf::anon_send(again.tenant, actors::recover_atom_v);
  sched_.run();
  EXPECT_EQ(tenant_of(again).texts_handed_on, 1u);
  EXPECT_EQ(texts().back(),
            std::string(owner) + ": " + caller + " wrote: My sink is leaking");
  EXPECT_EQ(the_run("CA1", "ask").status, run_status::finished);
  EXPECT_EQ(runs("", "inbox").size(), 1u);
  EXPECT_EQ(relays(nodes_), 1u);
  EXPECT_EQ(db_.find_inbound("SM1")->pending, 0);

  stop(again);
  advance(1s);
  auto& third = start("node-a");
  caf::anon_send(third.tenant, actors::recover_atom_v);
  sched_.run();
  EXPECT_EQ(tenant_of(third).texts_handed_on, 0u);
  EXPECT_EQ(texts().size(), 2u);
  EXPECT_EQ(runs("", "inbox").size(), 1u);
  EXPECT_EQ(relays(nodes_), 1u);
}

TEST_F(WorkflowRuns, ACrashBetweenTheTwoPartsOfATextRedoesOnlyTheMissingOne) {
  // The conversation (ahead of the store's queue) stored its part, the runs
  // had not: the restart resumes and starts the runs, and relays nothing
  // again.
  use({ask_yaml, inbox_yaml});
  auto& a = start("node-a");
  incoming(a, "CA1");
  dial_result(a, "CA1", "no-answer");
  a.store_q.close();
  auto ev = sms_event("SM1", caller, "call me back");
  ev.raw.received_at = clock_.now();
  ingress(a, ev);
  ASSERT_TRUE(a.store_q.drain_ahead([&] { sched_.run(); }));
  EXPECT_EQ(relays(nodes_), 1u);
  stop(a);
  EXPECT_EQ(db_.find_inbound("SM1")->pending, engine::inbound_runs);
  EXPECT_EQ(the_run("CA1", "ask").waiting_for, "reply");
  EXPECT_TRUE(runs("", "inbox").empty());

  advance(1s);
  auto& again = start("node-a");
  caf::anon_send(again.tenant, actors::recover_atom_v);
  sched_.run();
  EXPECT_EQ(the_run("CA1", "ask").status, run_status::finished);
  EXPECT_EQ(runs("", "inbox").size(), 1u);
  EXPECT_EQ(texts().back(),
            std::string(owner) + ": " + caller + " wrote: call me back");
  EXPECT_EQ(relays(nodes_), 1u);
  EXPECT_EQ(db_.find_inbound("SM1")->pending, 0);
  // Handed on once more (as by a process that found it pending meanwhile):
  // the store says its runs are written; nothing starts or resumes twice.
  const auto resumed = runs_of(again).stats.resumed;
  sms(again, "SM1", caller, "call me back");
  EXPECT_EQ(runs("", "inbox").size(), 1u);
  EXPECT_EQ(runs_of(again).stats.resumed, resumed);
  EXPECT_EQ(texts().size(), 2u);
  EXPECT_EQ(relays(nodes_), 1u);
}

TEST_F(WorkflowRuns, AnotherNodeTakesOnTheTextsOfANodeThatNeverCameBack) {
  use({inbox_yaml});
  auto& a = start("node-a");
  text_stored_only(a, "SM1", "anyone?");
  stop(a);
  // Too early: node-a may be about to come back and hand it on itself.
  auto& b = start("node-b");
  caf::anon_send(b.tenant, actors::recover_atom_v);
  sched_.run();
  EXPECT_TRUE(runs("", "inbox").empty());
  EXPECT_EQ(relays(nodes_), 0u);
  advance(
    std::chrono::duration_cast<std::chrono::milliseconds>(b.svc->adopt_after)
    + 1s);
  auto& c = start("node-c");
  caf::anon_send(c.tenant, actors::recover_atom_v);
  sched_.run();
  EXPECT_EQ(runs("", "inbox").size(), 1u);
  EXPECT_EQ(relays(nodes_), 1u);
  EXPECT_EQ(c.carrier.sent.size(), 1u);
  // node-b restarting later finds it done.
  caf::anon_send(b.tenant, actors::recover_atom_v);
  sched_.run();
  EXPECT_EQ(runs("", "inbox").size(), 1u);
  EXPECT_EQ(relays(nodes_), 1u);
}

TEST_F(WorkflowRuns, AStartHandsOnOnlyTheTextsOfEarlierProcesses) {
  // A text this process received since it started is in its consumers'
  // hands (here: their store jobs held) when its tenant reads what is
  // pending: it is not handed on a second time.
  use({inbox_yaml});
  auto& a = start("node-a");
  advance(1s);
  text_stored_only(a, "SM1", "anyone?");
  ASSERT_EQ(db_.find_inbound("SM1")->pending, engine::inbound_all_consumers);
  caf::anon_send(a.tenant, actors::recover_atom_v);
  sched_.run();
  a.store_q.open();
  sched_.run();
  EXPECT_EQ(tenant_of(a).texts_handed_on, 0u);
  EXPECT_EQ(runs("", "inbox").size(), 1u);
  EXPECT_EQ(relays(nodes_), 1u);
  EXPECT_EQ(db_.find_inbound("SM1")->pending, 0);
}

TEST_F(WorkflowRuns, AHandledTextLeavesNothingPending) {
  // Both parts stored in the normal course, with and without runs to write.
  use({ask_yaml});
  auto& a = start("node-a");
  auto ev = sms_event("SM1", caller, "hello");
  ev.raw.received_at = clock_.now();
  ingress(a, ev);
  EXPECT_EQ(db_.find_inbound("SM1")->pending, 0) << "nothing to resume";
  incoming(a, "CA1");
  dial_result(a, "CA1", "no-answer");
  ev = sms_event("SM2", caller, "hello again");
  ev.raw.received_at = clock_.now();
  ingress(a, ev);
  EXPECT_EQ(the_run("CA1", "ask").status, run_status::finished);
  EXPECT_EQ(db_.find_inbound("SM2")->pending, 0) << "a run resumed";
  auto stop_ev = sms_event("SM3", caller, "STOP");
  stop_ev.raw.received_at = clock_.now();
  ingress(a, stop_ev);
  EXPECT_EQ(db_.find_inbound("SM3")->pending, 0) << "a keyword";
}

TEST_F(WorkflowRuns, AStaleTimeoutElsewhereDoesNotCutALaterWaitShort) {
  use({ask_then_wait_yaml});
  auto& a = start("node-a");
  auto& b = start("node-b");
  incoming(a, "CA1");
  dial_result(a, "CA1", "no-answer");
  advance(10min);
  sms(b, "SM1", caller, "tomorrow is fine"); // node B now holds a 2 h wait
  auto run = the_run("CA1", "ask_then_wait");
  EXPECT_EQ(run.waiting_for, "timer");
  EXPECT_EQ(runs_of(b).timers.size(), 1u);
  // Node A's reply timeout fires at 1 h: the run waits for something else.
  advance(2h - 1s);
  EXPECT_TRUE(texts().empty());
  EXPECT_EQ(the_run("CA1", "ask_then_wait").waiting_for, "timer");
  advance(1s);
  EXPECT_EQ(texts(),
            std::vector<std::string>{std::string(owner) + ": Follow up with "
                                     + caller + ": tomorrow is fine"});
  advance(2h);
  EXPECT_EQ(texts().size(), 1u);
}

TEST_F(WorkflowRuns, ACarrierRetryOfAnSmsIsHandledOnce) {
  use({ask_yaml, inbox_yaml});
  auto& a = start("node-a");
  incoming(a, "CA1");
  dial_result(a, "CA1", "no-answer");
  ingress(a, sms_event("SM1", caller, "hello"));
  ingress(a, sms_event("SM1", caller, "hello"));
  EXPECT_EQ(texts().size(), 2u);
  EXPECT_EQ(runs("", "inbox").size(), 1u);
}

// -- 6: http -----------------------------------------------------------------

TEST_F(WorkflowRuns, HttpStepSendsTheRequestAndTheNextStepReadsTheJson) {
  use({crm_yaml});
  auto& a = start("node-a");
  a.http.push(testkit::fake_http_fetcher::json(
    200, R"({"customer": {"name": "Ann", "tier": 2}})"));
  incoming(a, "CA1");
  dial_result(a, "CA1", "no-answer");
  auto reqs = a.http.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].url, "https://crm.example.com/v1/lookup");
  EXPECT_EQ(reqs[0].body, R"({"phone":"+15550100","source":"missed_call"})");
  EXPECT_EQ(reqs[0].max_attempts, 3);
  EXPECT_EQ(reqs[0].timeout, 5s);
  EXPECT_EQ(reqs[0].allowed_hosts,
            (std::vector<std::string>{"crm.example.com",
                                      "*.hooks.example.com"}));
  EXPECT_NE(std::find(reqs[0].headers.begin(), reqs[0].headers.end(),
                      std::make_pair(std::string("Content-Type"),
                                     std::string("application/json"))),
            reqs[0].headers.end());
  EXPECT_EQ(texts(),
            std::vector<std::string>{std::string(caller)
                                     + ": Hi Ann, sorry we missed you (200)."});
  auto run = the_run("CA1", "crm");
  EXPECT_EQ(run.status, run_status::finished);
  EXPECT_EQ(steps_of(run.id),
            (std::vector<std::string>{"lookup http waiting",
                                      "lookup http resumed", "#1 if ok",
                                      "greet send_sms ok"}));
  EXPECT_EQ(runs_of(a).http_pending.size(), 0u);
}

TEST_F(WorkflowRuns, HttpFailureTakesTheRunOnWithOkFalse) {
  use({crm_yaml});
  auto& a = start("node-a");
  a.http.push(testkit::fake_http_fetcher::failure(
    "connect", "cannot resolve crm.example.com"));
  incoming(a, "CA1");
  dial_result(a, "CA1", "no-answer");
  EXPECT_EQ(a.http.requests().size(), 1u);
  EXPECT_EQ(texts(),
            std::vector<std::string>{
              std::string(owner)
              + ": CRM lookup failed (cannot resolve crm.example.com); missed "
                "call from "
              + caller});
  auto run = the_run("CA1", "crm");
  EXPECT_EQ(run.status, run_status::finished);
  EXPECT_EQ(steps_of(run.id).back(), "crm_down notify_owner ok");
}

TEST_F(WorkflowRuns, HttpStepOfAnSmsReceivedRun) {
  use({sms_http_yaml});
  auto& a = start("node-a");
  a.http.push(testkit::fake_http_fetcher::json(201, R"({"ticket": "T-7"})"));
  sms(a, "SM1", caller, "leak");
  auto reqs = a.http.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "PUT");
  EXPECT_EQ(reqs[0].url, "https://in.hooks.example.com/sms");
  EXPECT_EQ(reqs[0].body, "+15550100=leak");
  EXPECT_EQ(reqs[0].headers, (std::vector<std::pair<std::string, std::string>>{
                               {"Content-Type", "text/plain"}}));
  EXPECT_EQ(texts(), std::vector<std::string>{std::string(caller)
                                              + ": Got it (201: T-7)"});
  EXPECT_EQ(the_run("", "sms_to_crm").status, run_status::finished);
}

TEST_F(WorkflowRuns, AnHttpWaitInterruptedByARestartGoesOnAsAFailure) {
  use({crm_yaml});
  auto& a = start("node-a");
  a.http_q.run_inline = false; // the request is in flight...
  incoming(a, "CA1");
  dial_result(a, "CA1", "no-answer");
  EXPECT_EQ(a.http_q.held(), 1u);
  EXPECT_EQ(runs_of(a).http_pending.size(), 1u);
  EXPECT_EQ(the_run("CA1", "crm").waiting_for, "http");
  stop(a); // ... when the process dies
  auto& again = start("node-a");
  caf::anon_send(again.tenant, actors::recover_atom_v);
  sched_.run();
  EXPECT_TRUE(again.http.requests().empty()) << "not sent twice";
  EXPECT_EQ(texts(), std::vector<std::string>{
                       std::string(owner)
                       + ": CRM lookup failed (the process restarted while "
                         "waiting; not retried); missed call from "
                       + caller});
  EXPECT_EQ(the_run("CA1", "crm").status, run_status::finished);
}

// -- 7: transcription
// ----------------------------------------------------------

TEST_F(WorkflowRuns, TranscriptionRunsTheOnTranscriptionBranch) {
  use({answer_yaml, text_back_yaml});
  auto& a = start("node-a");
  incoming(a, "CA1");
  dial_result(a, "CA1", "no-answer");
  recording(a, "CA1", 17);
  status(a, "CA1", "completed", 60);
  EXPECT_EQ(texts().size(), 1u);
  advance(1min);
  transcription(a, "CA1", "4", "Hi, the kitchen sink is leaking.");
  ASSERT_EQ(texts().size(), 2u);
  EXPECT_EQ(texts().back(), std::string(owner) + ": Voicemail from " + caller
                              + " (17s, completed): Hi, the kitchen sink is "
                                "leaking.");
  auto all = runs("CA1", "answer");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].trigger, "call.incoming");
  EXPECT_EQ(all[1].status, run_status::finished);
  EXPECT_EQ(steps_of(all[1].id),
            std::vector<std::string>{"transcript notify_owner ok"});
  EXPECT_EQ(purposes("CA1"),
            (std::vector<std::string>{"text_back/sorry", "answer/transcript"}));
  // A transcription for a step without an on_transcription branch, or for a
  // call without an incoming run, runs nothing.
  transcription(a, "CA1", "6", "nope");
  transcription(a, "CA404", "4", "nope");
  transcription(a, "CA1", "four", "nope");
  EXPECT_EQ(texts().size(), 2u);
  EXPECT_EQ(runs("CA1", "answer").size(), 2u);
}

// -- 8: call.completed -------------------------------------------------------

TEST_F(WorkflowRuns, CallCompletedStartsOnceWhenTheCallEnds) {
  use({completed_yaml});
  auto& a = start("node-a");
  incoming(a, "CA1");
  dial_result(a, "CA1", "completed", 30);
  EXPECT_TRUE(runs("CA1", "wrap_up").empty());
  status(a, "CA1", "in-progress");
  EXPECT_TRUE(runs("CA1", "wrap_up").empty());
  status(a, "CA1", "completed", 45);
  EXPECT_EQ(texts(), std::vector<std::string>{
                       std::string(caller)
                       + ": Thanks for calling (answered: true, 45s)"});
  status(a, "CA1", "completed", 45); // a retry past the kv
  ingress(a, testkit::call_event(kind::call_status, "CA1", "completed", 45));
  advance(60s);
  EXPECT_EQ(runs("CA1", "wrap_up").size(), 1u);
  EXPECT_EQ(texts().size(), 1u);
}

// -- schedules
// ------------------------------------------------------------------

TEST_F(WorkflowRuns, ScheduleFiresOncePerTenantAcrossNodesWithSkewedClocks) {
  use({hourly_yaml});
  // The test clock starts at 2023-11-14T22:13:20Z; node B's clock is 300 ms
  // ahead, so the two fire at different instants of their own clocks.
  auto& a = start("node-a");
  auto& b = start("node-b", {}, 300ms);
  EXPECT_EQ(runs_of(a).timers.size(), 1u);
  EXPECT_EQ(runs_of(b).timers.size(), 1u);
  advance(46min + 39s);
  EXPECT_TRUE(texts().empty());
  advance(1s);
  EXPECT_EQ(texts(),
            std::vector<std::string>{
              std::string(owner) + ": Hourly check at 2023-11-14T23:00:00"});
  advance(1h);
  EXPECT_EQ(texts().size(), 2u);
  EXPECT_EQ(texts().back(),
            std::string(owner) + ": Hourly check at 2023-11-15T00:00:00");
  auto all = runs("", "hourly");
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].trigger, "schedule");
  EXPECT_EQ(runs_of(a).stats.started + runs_of(b).stats.started, 2u);
}

// -- 9: limits ---------------------------------------------------------------

TEST_F(WorkflowRuns, ARunThatLoopsOnIsStoppedByMaxStepsAndRecordedFailed) {
  use({spin_yaml});
  workflows::run_limits limits;
  limits.max_steps = 50;
  auto& a = start("node-a", limits);
  incoming(a, "CA1");
  dial_result(a, "CA1", "no-answer");
  auto run = the_run("CA1", "spin");
  EXPECT_EQ(run.status, run_status::failed);
  EXPECT_EQ(run.error,
            "the run executed 50 steps, the limit: a loop that never ends?");
  auto steps = db_.run_steps(run.id);
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(steps.back().type, "error");
  EXPECT_EQ(steps.back().outcome, "failed");
  EXPECT_EQ(steps.back().detail, run.error);
  EXPECT_TRUE(texts().empty());
  EXPECT_TRUE(tenant_of(a).calls.empty());
}

// -- 10: memory --------------------------------------------------------------

TEST_F(WorkflowRuns, FinishedCallsAndRunsLeaveNoActorsOrTimersBehind) {
  use({answer_yaml, later_yaml, completed_yaml, crm_yaml});
  auto& a = start("node-a");
  const auto baseline = sys_.registry().running();
  for (int i = 0; i < 20; ++i) {
    auto sid = "CA" + std::to_string(i);
    incoming(a, sid);
    if (i % 2 == 0) {
      dial_result(a, sid, "completed", 30);
    } else {
      dial_result(a, sid, "no-answer");
      recording(a, sid, 5);
    }
    status(a, sid, "completed", 60);
  }
  EXPECT_TRUE(tenant_of(a).calls.empty());
  EXPECT_EQ(tenant_of(a).timers.size(), 0u);
  EXPECT_EQ(sys_.registry().running(), baseline);
  advance(10min);
  EXPECT_EQ(runs_of(a).timers.size(), 0u);
  EXPECT_EQ(runs_of(a).http_pending.size(), 0u);
  EXPECT_EQ(sys_.registry().running(), baseline);
  for (int i = 0; i < 20; ++i)
    for (const auto& r : db_.runs_for_call("CA" + std::to_string(i)))
      EXPECT_EQ(r.status, run_status::finished) << r.workflow << " " << i;
  // 10 missed: crm greets + later follows up; 20 completed: wrap_up.
  EXPECT_EQ(texts().size(), 40u);
}

/// A kv pool that counts what is posted to it and runs nothing.
class counting_kv_queue final : public engine::job_queue<engine::kv> {
public:
  void post(job) override {
    ++posts;
  }

  int posts = 0;
};

TEST_F(WorkflowRuns, AnInlineKvDedupsCallbacksWithoutThePool) {
  use({answer_yaml, text_back_yaml});
  auto& a = start("node-a");
  counting_kv_queue pool;
  auto s = std::make_shared<actors::services>(*a.svc);
  s->kv = &pool;
  actors::actor_event_sink sink{
    s, std::unordered_map<std::string, caf::actor>{{tenant_->id, a.tenant}},
    a.outbox};
  sink.set_inline_kv(&a.kv);
  incoming(a, "CA1");
  auto dial = [&] {
    auto reply = std::make_shared<testkit::recorded_reply>();
    sink.deliver(tenant_->id,
                 testkit::call_event(kind::dial_result, "CA1", "no-answer"),
                 reply);
    sched_.run();
    return reply;
  };
  auto first = dial();
  ASSERT_EQ(first->answers.size(), 1u);
  EXPECT_TRUE(dial()->answers.empty()) << "a carrier retry is dropped";
  EXPECT_EQ(pool.posts, 0) << "the dedup ran on the calling thread";
  // Same key as the pool's path: a retry through the pool-based sink (another
  // handle on the same kv) is dropped too.
  EXPECT_TRUE(
    ingress(a, testkit::call_event(kind::dial_result, "CA1", "no-answer"))
      ->answers.empty());
  EXPECT_EQ(the_run("CA1", "answer").waiting_for, "recording");
}

/// A workflow with just the fields its version record takes.
workflows::workflow_ptr versioned(std::string name, std::string version) {
  auto wf = std::make_shared<workflows::workflow>();
  wf->name = std::move(name);
  wf->version = std::move(version);
  wf->file = "answer.yaml";
  wf->source = "steps: []";
  return wf;
}

TEST(SaveVersionOnce, OncePerStoreExecutorAndOnlyOnceCommitted) {
  ::testing::NiceMock<testkit::mock_store> db;
  std::vector<engine::workflow_version_record> saved;
  ON_CALL(db, save_workflow_version(::testing::_))
    .WillByDefault([&saved](const engine::workflow_version_record& v) {
      saved.push_back(v);
    });
  auto v = versioned("answer", "0123456789abcdef");
  // Outside a store executor's job: always written, the record whole.
  EXPECT_TRUE(actors::save_version_once(db, "acme", *v, 1));
  EXPECT_TRUE(actors::save_version_once(db, "acme", *v, 2));
  ASSERT_EQ(saved.size(), 2u);
  EXPECT_EQ(saved[0].tenant_id, "acme");
  EXPECT_EQ(saved[0].name, "answer");
  EXPECT_EQ(saved[0].version, "0123456789abcdef");
  EXPECT_EQ(saved[0].file, "answer.yaml");
  EXPECT_EQ(saved[0].source, "steps: []");
  EXPECT_EQ(saved[0].loaded_at, 1);
  EXPECT_EQ(saved[1].loaded_at, 2);
  engine::inline_store_queue q{db};
  std::vector<bool> wrote;
  auto save = [&](const std::string& tenant, const workflows::workflow_ptr& x) {
    q.post([&wrote, tenant, x](engine::store& st) {
      wrote.push_back(actors::save_version_once(st, tenant, *x, 3));
    });
  };
  auto v2 = versioned("answer", "fedcba9876543210");
  save("acme", v);
  save("acme", v);
  save("acme", v2);
  save("bobs", v);
  save("acme", v2);
  EXPECT_EQ(wrote, (std::vector<bool>{true, false, true, true, false}));
  EXPECT_EQ(saved.size(), 5u);
  // A rolled-back transaction is not remembered: the next job writes again.
  engine::inline_store_queue q2{db};
  std::string error;
  q2.post(
    [&](engine::store& st) {
      EXPECT_TRUE(actors::save_version_once(st, "acme", *v, 4));
      throw engine::port_error{"insert_run: disk I/O error"};
    },
    [&error](const std::string& e) { error = e; });
  EXPECT_EQ(error, "insert_run: disk I/O error");
  bool again = false;
  q2.post([&](engine::store& st) {
    again = actors::save_version_once(st, "acme", *v, 5);
  });
  EXPECT_TRUE(again) << "another executor (process) saves it for itself";
  q2.post([&](engine::store& st) {
    again = actors::save_version_once(st, "acme", *v, 6);
  });
  EXPECT_FALSE(again);
  EXPECT_EQ(saved.size(), 7u);
}

} // namespace
