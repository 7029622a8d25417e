// The outbox, the pre-send gate and the inbound messaging path on CAF's test
// coordinator: virtual time, an in-memory store and kv shared by "processes",
// and a scripted carrier.

#include "ringback/actors/event_sink.hpp"
#include "ringback/actors/messages.hpp"
#include "ringback/actors/outbox_actor.hpp"
#include "ringback/actors/runs.hpp"
#include "ringback/adapters/kv/memory_kv.hpp"
#include "ringback/adapters/store/memory_store.hpp"
#include "ringback/engine/messaging.hpp"

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <gtest/gtest.h>

#include "actor_node.hpp"
#include "actor_test.hpp"
#include "fakes.hpp"
#include "recording_metrics.hpp"

#include <memory>
#include <set>

namespace {

using namespace ringback;
using namespace std::chrono_literals;
using engine::message_record;
using engine::message_state;
using engine::send_kind;

constexpr const char* acme_number = "+15005550001";
constexpr const char* acme_second = "+15005550003";
constexpr const char* acme_owner = "+15005550002";
constexpr const char* bolt_number = "+15005550101";

std::vector<engine::tenant> tenants() {
  engine::tenant acme;
  acme.id = "acme";
  acme.name = "Acme Plumbing";
  acme.owner_phone = acme_owner;
  acme.timezone = "UTC";
  acme.numbers.push_back({acme_number, engine::number_kind::long_code, 1.0});
  acme.numbers.push_back({acme_second, engine::number_kind::long_code, 1.0});
  engine::tenant bolt;
  bolt.id = "bolt";
  bolt.name = "Bolt Electric";
  bolt.owner_phone = "+15005550102";
  bolt.timezone = "UTC";
  bolt.numbers.push_back({bolt_number, engine::number_kind::long_code, 1.0});
  return {acme, bolt};
}

/// One ringback "process": its queues, services and outbox over a store and
/// kv that several processes may share.
struct node {
  node(caf::actor_system& sys, std::string id,
       std::shared_ptr<adapters::memory_database> database,
       std::shared_ptr<adapters::memory_kv_state> kv_state,
       testkit::manual_clock& clock, std::vector<engine::tenant> ts)
    : db(std::move(database)),
      kv(std::move(kv_state)),
      store_q(db),
      kv_q(kv),
      carrier_q(carrier) {
    db.migrate();
    auto s = testkit::node_services(store_q, kv_q, carrier_q, clock,
                                    std::move(id));
    s->numbers = std::make_shared<const actors::tenant_directory>(ts);
    s->metrics = metrics;
    s->retry.base = 1s;
    s->retry.cap = 60s;
    s->retry.max_attempts = 4;
    svc = s;
    outbox = sys.spawn(actors::outbox_actor, svc);
  }

  adapters::memory_store db;
  adapters::memory_kv kv;
  /// Inline unless a test closes it (a backed-up store).
  testkit::gated_store_queue store_q;
  engine::inline_queue<engine::kv> kv_q;
  testkit::fake_carrier carrier;
  engine::inline_queue<engine::carrier> carrier_q;
  std::shared_ptr<testkit::recording_metrics> metrics
    = std::make_shared<testkit::recording_metrics>();
  actors::services_ptr svc;
  caf::actor outbox;
};

class Outbox : public testkit::actor_test {
protected:
  Outbox()
    : database_(adapters::memory_store{}.database()),
      kv_state_(std::make_shared<adapters::memory_kv_state>()) {
    a_ = make_node("node-a");
    sched_.run();
  }

  ~Outbox() override {
    for (auto& n : nodes_)
      caf::anon_send_exit(n->outbox, caf::exit_reason::user_shutdown);
    sched_.run();
  }

  node* make_node(std::string id, std::vector<engine::tenant> ts = tenants()) {
    nodes_.push_back(std::make_unique<node>(sys_, std::move(id), database_,
                                            kv_state_, clock_, std::move(ts)));
    return nodes_.back().get();
  }

  /// A message as a workflow would write it, through the gate.
  message_record
  message(std::string to, std::string body, std::string from = acme_number,
          std::string tenant = "acme", send_kind kind = send_kind::automated) {
    message_record m;
    m.tenant_id = std::move(tenant);
    m.purpose = "test/step";
    m.from = std::move(from);
    m.to = std::move(to);
    m.body = std::move(body);
    m.kind = kind;
    m.node_id = a_->svc->node_id;
    m.created_at = m.updated_at = clock_.now();
    return m;
  }

  /// Stores `ms` through the gate (as `write_segment` does) and hands them to
  /// `n`'s outbox. Returns the stored records.
  std::vector<message_record> submit(node& n, std::vector<message_record> ms) {
    std::vector<std::int64_t> ids;
    for (auto& m : ms) {
      m.node_id = n.svc->node_id;
      auto info = n.svc->numbers->find(m.tenant_id);
      n.db.begin();
      actors::gate_message(n.db, m, *info, n.svc->numbers.get(), clock_.now());
      m.id = n.db.insert_message(m);
      n.db.commit();
      ids.push_back(m.id);
    }
    caf::anon_send(n.outbox, actors::send_atom_v, ids);
    sched_.run();
    return ms;
  }

  /// Stores `ms` as `write_segment` does (the gate, then `claim_in_writing`)
  /// and hands them to `n`'s outbox as written.
  std::vector<message_record>
  write_as_a_workflow(node& n, std::vector<message_record> ms) {
    for (auto& m : ms) {
      m.node_id = n.svc->node_id;
      auto info = n.svc->numbers->find(m.tenant_id);
      n.db.begin();
      actors::gate_message(n.db, m, *info, n.svc->numbers.get(), clock_.now());
      actors::claim_in_writing(m, clock_.now());
      m.id = n.db.insert_message(m);
      n.db.commit();
    }
    caf::anon_send(n.outbox, actors::send_atom_v, ms);
    sched_.run();
    return ms;
  }

  /// Moves the wall clock and CAF's virtual clock together in small steps.
  void advance(std::chrono::milliseconds d,
               std::chrono::milliseconds step = 100ms) {
    while (d.count() > 0) {
      auto s = std::min(d, step);
      clock_.advance(s);
      sched_.advance_time(s);
      sched_.run();
      d -= s;
    }
  }

  message_state state_of(std::int64_t id) {
    return a_->db.find_message(id)->state;
  }

  testkit::manual_clock clock_;
  std::shared_ptr<adapters::memory_database> database_;
  std::shared_ptr<adapters::memory_kv_state> kv_state_;
  std::vector<std::unique_ptr<node>> nodes_;
  node* a_ = nullptr;
};

TEST_F(Outbox, SendsWithAStatusCallbackAndRecordsTheCarriersId) {
  auto ms = submit(*a_, {message("+15550100", "hello")});
  ASSERT_EQ(a_->carrier.sent.size(), 1u);
  EXPECT_EQ(a_->carrier.sent[0].status_callback,
            "https://ringback.example.com/webhooks/twilio/sms/status");
  auto stored = a_->db.find_message(ms[0].id);
  EXPECT_EQ(stored->state, message_state::sent);
  EXPECT_EQ(stored->message_sid, "SM1");
  EXPECT_EQ(stored->attempts, 1);
  EXPECT_EQ(stored->sent_at, clock_.now());
  EXPECT_EQ((*a_->metrics)["queued acme +15005550001"], 1);
  EXPECT_EQ((*a_->metrics)["sent acme +15005550001"], 1);
  EXPECT_EQ((*a_->metrics)["waited acme +15005550001"], 1);
}

TEST_F(Outbox, ABurstOnALongCodeDrainsAtOneASecondInOrder) {
  std::vector<message_record> burst;
  for (int i = 0; i < 10; ++i)
    burst.push_back(
      message("+1555010" + std::to_string(i), "n" + std::to_string(i)));
  auto ms = submit(*a_, burst);
  EXPECT_EQ(a_->carrier.sent.size(), 1u) << "the first goes at once";
  EXPECT_EQ((*a_->metrics)["depth acme +15005550001"], 9);
  for (std::size_t want = 2; want <= 10; ++want) {
    advance(900ms);
    EXPECT_EQ(a_->carrier.sent.size(), want - 1) << "not before its second";
    advance(100ms);
    EXPECT_EQ(a_->carrier.sent.size(), want);
  }
  for (std::size_t i = 0; i < 10; ++i)
    EXPECT_EQ(a_->carrier.sent[i].body, "n" + std::to_string(i));
  EXPECT_EQ((*a_->metrics)["depth acme +15005550001"], 0);
}

TEST_F(Outbox, OneTenantsBacklogNeverSlowsAnotherTenantsNumber) {
  std::vector<message_record> burst;
  for (int i = 0; i < 20; ++i)
    burst.push_back(
      message("+1555020" + std::to_string(i % 10) + std::to_string(i), "acme"));
  submit(*a_, burst);
  submit(*a_, {message("+15550300", "bolt", bolt_number, "bolt")});
  ASSERT_EQ(a_->carrier.sent.size(), 2u);
  EXPECT_EQ(a_->carrier.sent[1].body, "bolt");
}

TEST_F(Outbox, TheTenantCapSpansItsNumbers) {
  auto ts = tenants();
  ts[0].numbers[0].mps = 10;
  ts[0].numbers[1].mps = 10;
  ts[0].max_rate = engine::pace{2.0, 1};
  auto* b = make_node("node-b", ts);
  std::vector<message_record> ms;
  for (int i = 0; i < 5; ++i) {
    ms.push_back(message("+1555040" + std::to_string(i), "a"));
    ms.push_back(message("+1555041" + std::to_string(i), "b", acme_second));
  }
  submit(*b, ms);
  advance(2s);
  // 2 per second over both numbers: the first at once, then one every 500 ms.
  EXPECT_EQ(b->carrier.sent.size(), 5u);
  advance(3s);
  EXPECT_EQ(b->carrier.sent.size(), 10u);
}

TEST_F(Outbox, TwoProcessesSharingTheKvShareTheNumbersPace) {
  auto* b = make_node("node-b");
  std::vector<message_record> first;
  std::vector<message_record> second;
  for (int i = 0; i < 5; ++i) {
    first.push_back(message("+1555050" + std::to_string(i), "a"));
    second.push_back(message("+1555051" + std::to_string(i), "b"));
  }
  submit(*a_, first);
  submit(*b, second);
  EXPECT_EQ(a_->carrier.sent.size() + b->carrier.sent.size(), 1u);
  advance(4s);
  EXPECT_EQ(a_->carrier.sent.size() + b->carrier.sent.size(), 5u);
  advance(5s);
  EXPECT_EQ(a_->carrier.sent.size() + b->carrier.sent.size(), 10u);
}

TEST_F(Outbox, EachMessageIsSentByExactlyOneProcess) {
  auto* b = make_node("node-b");
  auto ms = submit(*a_, {message("+15550600", "once")});
  ASSERT_EQ(a_->carrier.attempts.size(), 1u);
  a_->carrier.attempts.clear();
  // A second process told about the same message (as after an adoption)
  // finds it no longer queued.
  caf::anon_send(b->outbox, actors::send_atom_v,
                 std::vector<std::int64_t>{ms[0].id});
  sched_.run();
  advance(2s);
  EXPECT_TRUE(b->carrier.attempts.empty());
  // And two processes racing for a queued one: one claim wins.
  auto m = message("+15550601", "race");
  m.node_id = "node-a";
  m.id = a_->db.insert_message(m);
  caf::anon_send(a_->outbox, actors::send_atom_v,
                 std::vector<std::int64_t>{m.id});
  caf::anon_send(b->outbox, actors::send_atom_v,
                 std::vector<std::int64_t>{m.id});
  sched_.run();
  advance(3s);
  EXPECT_EQ(a_->carrier.attempts.size() + b->carrier.attempts.size(), 1u);
  EXPECT_EQ(state_of(m.id), message_state::sent);
}

TEST_F(Outbox, A429IsRetriedNoSoonerThanItsRetryAfter) {
  auto r = testkit::fake_carrier::failure(429, 20429);
  r.status.retry_after = 5s;
  a_->carrier.scripted_sends.push_back(r);
  auto ms = submit(*a_, {message("+15550700", "later")});
  EXPECT_EQ(state_of(ms[0].id), message_state::queued);
  EXPECT_EQ((*a_->metrics)["retried acme +15005550001 429"], 1);
  advance(4900ms);
  EXPECT_EQ(a_->carrier.attempts.size(), 1u);
  advance(200ms);
  EXPECT_EQ(a_->carrier.attempts.size(), 2u);
  EXPECT_EQ(state_of(ms[0].id), message_state::sent);
  EXPECT_EQ(a_->db.find_message(ms[0].id)->attempts, 2);
}

TEST_F(Outbox, ServerErrorsAreRetriedABoundedNumberOfTimesThenFailed) {
  // As the REST client reports a 5xx: the carrier may have acted on it, so
  // each is looked up first (and not found: the carrier kept nothing).
  a_->carrier.accept_silently = false;
  for (int i = 0; i < 4; ++i) {
    auto r = testkit::fake_carrier::failure(503, 20500);
    r.status.outcome_unknown = true;
    a_->carrier.scripted_sends.push_back(r);
  }
  auto ms = submit(*a_, {message("+15550800", "doomed")});
  advance(120s, 1s);
  EXPECT_EQ(a_->carrier.attempts.size(), 4u);
  EXPECT_EQ(a_->carrier.lookups, 4);
  auto m = a_->db.find_message(ms[0].id);
  EXPECT_EQ(m->state, message_state::failed);
  EXPECT_EQ(m->error_code, 20500);
  EXPECT_EQ(m->attempts, 4);
  EXPECT_EQ((*a_->metrics)["retried acme +15005550001 5xx"], 3);
  EXPECT_EQ((*a_->metrics)["failed acme +15005550001 20500"], 1);
}

TEST_F(Outbox, ARetryAfterOnAServerErrorIsHonouredAfterTheLookup) {
  a_->carrier.accept_silently = false;
  auto r = testkit::fake_carrier::failure(503, 20500);
  r.status.outcome_unknown = true;
  r.status.retry_after = 8s;
  a_->carrier.scripted_sends.push_back(r);
  auto ms = submit(*a_, {message("+15550801", "later")});
  advance(7900ms);
  EXPECT_EQ(a_->carrier.attempts.size(), 1u);
  advance(200ms);
  EXPECT_EQ(a_->carrier.attempts.size(), 2u);
  EXPECT_EQ(state_of(ms[0].id), message_state::sent);
}

TEST_F(Outbox, Error21610IsNotRetriedAndOptsTheRecipientOut) {
  a_->carrier.scripted_sends.push_back(
    testkit::fake_carrier::failure(400, 21610));
  auto ms = submit(*a_, {message("+15550900", "hi")});
  advance(60s, 1s);
  EXPECT_EQ(a_->carrier.attempts.size(), 1u);
  auto m = a_->db.find_message(ms[0].id);
  EXPECT_EQ(m->state, message_state::failed);
  EXPECT_EQ(m->error_code, 21610);
  auto ledger = a_->db.find_opt_out("acme", "+15550900");
  ASSERT_TRUE(ledger);
  EXPECT_TRUE(ledger->opted_out);
  EXPECT_EQ(ledger->source, engine::opt_out_source::carrier);
  EXPECT_EQ((*a_->metrics)["opt_out acme carrier"], 1);
  // The next message to them is refused at the gate, with its reason.
  auto next = submit(*a_, {message("+15550900", "again")});
  EXPECT_EQ(state_of(next[0].id), message_state::refused);
  EXPECT_EQ(a_->db.find_message(next[0].id)->reason, "opted_out");
  EXPECT_EQ((*a_->metrics)["refused acme opted_out"], 1);
  EXPECT_EQ(a_->carrier.attempts.size(), 1u);
}

TEST_F(Outbox, InvalidNumbersAreNotRetried) {
  a_->carrier.scripted_sends.push_back(
    testkit::fake_carrier::failure(400, 21211));
  auto ms = submit(*a_, {message("+15550901", "hi")});
  advance(60s, 1s);
  EXPECT_EQ(a_->carrier.attempts.size(), 1u);
  EXPECT_EQ(state_of(ms[0].id), message_state::failed);
  EXPECT_FALSE(a_->db.find_opt_out("acme", "+15550901"));
}

TEST_F(Outbox, AnOptOutAfterQueueingStopsTheSend) {
  std::vector<message_record> burst;
  burst.push_back(message("+15551000", "first"));
  burst.push_back(message("+15551001", "second"));
  auto ms = submit(*a_, burst);
  ASSERT_EQ(a_->carrier.sent.size(), 1u);
  engine::opt_out_state s;
  s.tenant_id = "acme";
  s.phone = "+15551001";
  s.opted_out = true;
  s.since = clock_.now();
  s.keyword = "STOP";
  s.source = engine::opt_out_source::keyword;
  s.last_event_at = clock_.now();
  a_->db.save_opt_out(s);
  advance(2s);
  EXPECT_EQ(a_->carrier.sent.size(), 1u);
  EXPECT_EQ(state_of(ms[1].id), message_state::refused);
  EXPECT_EQ((*a_->metrics)["refused acme opted_out"], 1);
}

TEST_F(Outbox, ATextClaimedWhereItWasWrittenNeedsNoStoreToGoOut) {
  // The store is backed up: no job of the outbox's runs. A text the gate
  // queued waits for its claim; one claimed in its writing transaction goes.
  a_->store_q.close();
  auto queued = submit(*a_, {message("+15551100", "queued")});
  EXPECT_TRUE(a_->carrier.sent.empty());
  auto written
    = write_as_a_workflow(*a_, {message("+15551101", "written", acme_second)});
  ASSERT_EQ(written[0].state, message_state::sending);
  EXPECT_EQ(written[0].attempts, 1);
  ASSERT_EQ(a_->carrier.sent.size(), 1u);
  EXPECT_EQ(a_->carrier.sent[0].body, "written");
  a_->store_q.open();
  sched_.run();
  advance(1s);
  ASSERT_EQ(a_->carrier.sent.size(), 2u);
  EXPECT_EQ(a_->carrier.sent[1].body, "queued");
  for (const auto& m : {queued[0], written[0]}) {
    auto stored = a_->db.find_message(m.id);
    EXPECT_EQ(stored->state, message_state::sent) << m.body;
    EXPECT_EQ(stored->attempts, 1) << m.body;
  }
  advance(1h);
  EXPECT_EQ(a_->carrier.sent.size(), 2u) << "each once";
}

TEST_F(Outbox,
       ATextClaimedWhereItWasWrittenButHeldByItsPaceAsksTheLedgerAgain) {
  // A long code sends one a second: the second and third texts wait past the
  // grace, and the third's recipient opts out meanwhile.
  auto ms = write_as_a_workflow(*a_, {message("+15551200", "first"),
                                      message("+15551201", "second"),
                                      message("+15551202", "third")});
  ASSERT_EQ(a_->carrier.sent.size(), 1u);
  engine::opt_out_state s;
  s.tenant_id = "acme";
  s.phone = "+15551202";
  s.opted_out = true;
  s.since = s.last_event_at = clock_.now();
  s.keyword = "STOP";
  s.source = engine::opt_out_source::keyword;
  a_->db.save_opt_out(s);
  advance(3s);
  ASSERT_EQ(a_->carrier.sent.size(), 2u);
  EXPECT_EQ(a_->carrier.sent[1].body, "second");
  EXPECT_EQ(state_of(ms[1].id), message_state::sent);
  EXPECT_EQ(state_of(ms[2].id), message_state::refused);
  EXPECT_EQ((*a_->metrics)["refused acme opted_out"], 1);
}

TEST_F(Outbox, ATextClaimedWhereItWasWrittenIsNotTakenByAnotherProcess) {
  // Handed to another process's outbox by mistake (its id, or its record):
  // the claim is its writer's, so the other one leaves it alone.
  auto* b = make_node("node-b");
  sched_.run();
  auto ms = write_as_a_workflow(*a_, {message("+15551300", "mine")});
  ASSERT_EQ(a_->carrier.sent.size(), 1u);
  caf::anon_send(b->outbox, actors::send_atom_v, ms);
  caf::anon_send(b->outbox, actors::send_atom_v,
                 std::vector<std::int64_t>{ms[0].id});
  sched_.run();
  advance(2s);
  EXPECT_TRUE(b->carrier.sent.empty());
  EXPECT_EQ(a_->carrier.sent.size(), 1u);
}

TEST_F(Outbox, NonUrgentMessagesWaitForTheEndOfQuietHours) {
  auto ts = tenants();
  ts[0].quiet_hours = "21:00-08:00";
  auto* b = make_node("node-b", ts);
  // 2023-11-14 22:13:20 UTC: inside the quiet hours.
  auto quiet = message("+15551100", "review please");
  quiet.urgent = false;
  auto urgent = message("+15551101", "sorry we missed you");
  auto ms = submit(*b, {quiet, urgent});
  EXPECT_EQ(b->db.find_message(ms[0].id)->state, message_state::held);
  EXPECT_EQ(b->db.find_message(ms[0].id)->reason, "quiet_hours");
  ASSERT_EQ(b->carrier.sent.size(), 1u);
  EXPECT_EQ(b->carrier.sent[0].body, "sorry we missed you");
  EXPECT_EQ((*b->metrics)["held acme quiet_hours"], 1);
  auto until = b->db.find_message(ms[0].id)->not_before;
  // 08:00 UTC the next morning.
  EXPECT_EQ(until, 1'700'035'200'000 - 0);
  advance(std::chrono::milliseconds{until - clock_.now() - 1'000}, 60s);
  EXPECT_EQ(b->carrier.sent.size(), 1u);
  advance(2s, 1s);
  ASSERT_EQ(b->carrier.sent.size(), 2u);
  EXPECT_EQ(b->carrier.sent[1].body, "review please");
}

TEST_F(Outbox, HeldAndQueuedMessagesAreResumedAfterARestart) {
  auto ts = tenants();
  ts[0].quiet_hours = "21:00-08:00";
  auto* b = make_node("node-b", ts);
  auto quiet = message("+15551200", "held");
  quiet.urgent = false;
  std::vector<message_record> ms{quiet};
  for (int i = 0; i < 3; ++i)
    ms.push_back(
      message("+1555121" + std::to_string(i), "q" + std::to_string(i)));
  // Stored, but the process dies before its outbox hears of them.
  for (auto& m : ms) {
    m.node_id = "node-b";
    auto info = b->svc->numbers->find("acme");
    b->db.begin();
    actors::gate_message(b->db, m, *info, b->svc->numbers.get(), clock_.now());
    m.id = b->db.insert_message(m);
    b->db.commit();
  }
  caf::anon_send(b->outbox, actors::recover_atom_v);
  sched_.run();
  advance(3s);
  EXPECT_EQ(b->carrier.sent.size(), 3u);
  advance(12h, 60s);
  ASSERT_EQ(b->carrier.sent.size(), 4u);
  EXPECT_EQ(b->carrier.sent[3].body, "held");
}

TEST_F(Outbox, AnInterruptedSendIsLookedUpNotRepeated) {
  auto m = message("+15551300", "maybe");
  m.state = message_state::sending;
  m.attempts = 1;
  m.id = a_->db.insert_message(m);
  a_->carrier.accepted.push_back({m.from, m.to, m.body, {}});
  caf::anon_send(a_->outbox, actors::recover_atom_v);
  sched_.run();
  EXPECT_TRUE(a_->carrier.attempts.empty());
  EXPECT_EQ(state_of(m.id), message_state::sent);
}

TEST_F(Outbox, WithoutTheKvTheNumberIsStillPaced) {
  // A kv that always fails: the outbox paces in its own process.
  struct broken_kv final : engine::kv {
    bool set_if_absent(std::string_view, std::string_view,
                       std::chrono::milliseconds) override {
      throw engine::port_error("kv down");
    }
    bool claim(std::string_view, std::string_view,
               std::chrono::milliseconds) override {
      throw engine::port_error("kv down");
    }
    bool ping() override {
      return false;
    }
    engine::pace_answer pace(const engine::pace_request&) override {
      throw engine::port_error("kv down");
    }
  } down;
  engine::inline_queue<engine::kv> down_q{down};
  auto s = std::make_shared<actors::services>(*a_->svc);
  s->kv = &down_q;
  auto outbox = sys_.spawn(actors::outbox_actor, actors::services_ptr{s});
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 3; ++i) {
    auto m = message("+1555140" + std::to_string(i), "p");
    m.id = a_->db.insert_message(m);
    ids.push_back(m.id);
  }
  caf::anon_send(outbox, actors::send_atom_v, ids);
  sched_.run();
  EXPECT_EQ(a_->carrier.sent.size(), 1u);
  advance(1s);
  EXPECT_EQ(a_->carrier.sent.size(), 2u);
  advance(1s);
  EXPECT_EQ(a_->carrier.sent.size(), 3u);
  caf::anon_send_exit(outbox, caf::exit_reason::user_shutdown);
  sched_.run();
}

// -- throughput: slots, batch claims, sends in flight -------------------------

constexpr const char* fast_number = "+15005550201";

/// The tenants, and "fast" whose number may send 1000 messages a second.
std::vector<engine::tenant> tenants_with_fast() {
  auto ts = tenants();
  engine::tenant fast;
  fast.id = "fast";
  fast.name = "Fast Couriers";
  fast.owner_phone = "+15005550202";
  fast.timezone = "UTC";
  fast.numbers.push_back({fast_number, engine::number_kind::long_code, 1000.0});
  ts.push_back(fast);
  return ts;
}

/// A carrier queue that keeps the sends until the test lets them run, and
/// notes when each was handed over.
class held_carrier_queue final : public engine::job_queue<engine::carrier> {
public:
  held_carrier_queue(engine::carrier& c, const engine::clock& clock)
    : carrier_(c), clock_(clock) {
    // nop
  }

  void post(job j) override {
    jobs_.push_back(std::move(j));
    handed_at.push_back(clock_.now());
  }

  std::size_t pending() const {
    return jobs_.size();
  }

  /// Runs the held sends (their answers go to the outbox's mailbox).
  void release() {
    auto jobs = std::move(jobs_);
    jobs_.clear();
    for (auto& j : jobs)
      j(carrier_);
  }

  std::vector<engine::epoch_ms> handed_at;

private:
  engine::carrier& carrier_;
  const engine::clock& clock_;
  std::vector<job> jobs_;
};

class OutboxThroughput : public Outbox {
protected:
  OutboxThroughput() {
    f_ = make_node("node-f", tenants_with_fast());
    sched_.run();
  }

  std::vector<message_record> burst(int n, const std::string& tag) {
    std::vector<message_record> ms;
    for (int i = 0; i < n; ++i)
      ms.push_back(message("+1555" + std::to_string(1'000'000 + i),
                           tag + std::to_string(i), fast_number, "fast"));
    return ms;
  }

  node* f_ = nullptr;
};

TEST_F(OutboxThroughput, ALaneHasSeveralSendsInFlightAsItsPaceAllows) {
  held_carrier_queue held{f_->carrier, clock_};
  auto s = std::make_shared<actors::services>(*f_->svc);
  s->carrier = &held;
  auto outbox = sys_.spawn(actors::outbox_actor, actors::services_ptr{s});
  auto ms = burst(10, "m");
  std::vector<std::int64_t> ids;
  for (auto& m : ms) {
    m.node_id = "node-f";
    m.id = f_->db.insert_message(m);
    ids.push_back(m.id);
  }
  const auto t0 = clock_.now();
  caf::anon_send(outbox, actors::send_atom_v, ids);
  sched_.run();
  // 1 ms apart: the first goes at once, no answer needed for the next ones.
  EXPECT_EQ(held.pending(), 1u);
  advance(20ms, 1ms);
  ASSERT_EQ(held.pending(), 10u) << "all in flight, none answered yet";
  for (auto id : ids)
    EXPECT_EQ(state_of(id), message_state::sending);
  // Never before its slot: the i-th no sooner than i ms after the first.
  for (std::size_t i = 0; i < held.handed_at.size(); ++i)
    EXPECT_GE(held.handed_at[i], t0 + static_cast<engine::epoch_ms>(i)) << i;
  held.release();
  sched_.run();
  ASSERT_EQ(f_->carrier.sent.size(), 10u);
  for (std::size_t i = 0; i < 10; ++i)
    EXPECT_EQ(f_->carrier.sent[i].body, "m" + std::to_string(i)) << "in order";
  for (auto id : ids) {
    EXPECT_EQ(state_of(id), message_state::sent);
    EXPECT_EQ(f_->db.find_message(id)->attempts, 1);
  }
  caf::anon_send_exit(outbox, caf::exit_reason::user_shutdown);
  sched_.run();
}

TEST_F(OutboxThroughput, ALaneHasAtMostItsLimitOfSendsUnderWay) {
  held_carrier_queue held{f_->carrier, clock_};
  auto s = std::make_shared<actors::services>(*f_->svc);
  s->carrier = &held;
  auto outbox = sys_.spawn(actors::outbox_actor, actors::services_ptr{s});
  std::vector<std::int64_t> ids;
  for (auto& m : burst(100, "l")) {
    m.node_id = "node-f";
    ids.push_back(f_->db.insert_message(m));
  }
  caf::anon_send(outbox, actors::send_atom_v, ids);
  sched_.run();
  advance(300ms, 5ms);
  ASSERT_EQ(held.pending(), actors::outbox_max_sending) << "waits for answers";
  std::size_t handed = held.pending();
  while (handed < 100) {
    held.release(); // answers free the lane: the next ones start
    sched_.run();
    advance(50ms, 5ms);
    EXPECT_LE(held.pending(), actors::outbox_max_sending);
    ASSERT_GT(held.pending(), 0u) << "stalled after " << handed;
    handed += held.pending();
  }
  EXPECT_EQ(handed, 100u);
  held.release();
  sched_.run();
  ASSERT_EQ(f_->carrier.sent.size(), 100u);
  for (std::size_t i = 0; i < 100; ++i)
    EXPECT_EQ(f_->carrier.sent[i].body, "l" + std::to_string(i));
  caf::anon_send_exit(outbox, caf::exit_reason::user_shutdown);
  sched_.run();
}

TEST_F(OutboxThroughput, SendsStartInTheLanesOrderAcrossManySlots) {
  // More messages than one question's slots (64): they still start in
  // order, no sooner than their pace allows.
  submit(*f_, burst(150, "o"));
  advance(60ms, 1ms);
  auto early = f_->carrier.sent.size();
  EXPECT_GT(early, 20u);
  EXPECT_LE(early, 61u) << "1 ms apart";
  advance(500ms, 5ms);
  ASSERT_EQ(f_->carrier.sent.size(), 150u);
  for (std::size_t i = 0; i < 150; ++i)
    EXPECT_EQ(f_->carrier.sent[i].body, "o" + std::to_string(i));
  EXPECT_EQ((*f_->metrics)["sent fast +15005550201"], 150);
  EXPECT_EQ((*f_->metrics)["depth fast +15005550201"], 0);
}

TEST_F(OutboxThroughput, TwoOutboxesClaimingBatchesNeverSendAMessageTwice) {
  auto* g = make_node("node-g", tenants_with_fast());
  auto ms = burst(40, "x");
  std::vector<std::int64_t> ids;
  for (auto& m : ms) {
    m.node_id = "node-f";
    m.id = f_->db.insert_message(m);
    ids.push_back(m.id);
  }
  // Both processes are told about the middle 20 (as after an adoption): both
  // pace through the shared kv and claim batches that overlap.
  caf::anon_send(f_->outbox, actors::send_atom_v,
                 std::vector<std::int64_t>(ids.begin(), ids.begin() + 30));
  caf::anon_send(g->outbox, actors::send_atom_v,
                 std::vector<std::int64_t>(ids.begin() + 10, ids.end()));
  sched_.run();
  advance(300ms, 1ms);
  EXPECT_EQ(f_->carrier.attempts.size() + g->carrier.attempts.size(), 40u);
  std::set<std::string> bodies;
  for (const auto* n : {f_, g})
    for (const auto& r : n->carrier.attempts)
      EXPECT_TRUE(bodies.insert(r.body).second) << r.body << " sent twice";
  EXPECT_EQ(bodies.size(), 40u);
  EXPECT_GE(f_->carrier.attempts.size(), 10u);
  EXPECT_GE(g->carrier.attempts.size(), 10u);
  for (auto id : ids) {
    EXPECT_EQ(state_of(id), message_state::sent);
    EXPECT_EQ(f_->db.find_message(id)->attempts, 1);
  }
}

TEST_F(OutboxThroughput, AStoreFailureInTheMiddleOfABatchClaimsNothing) {
  auto ms = submit(*f_, burst(6, "b"));
  ASSERT_EQ(f_->carrier.sent.size(), 1u);
  // The next five are due together (one claim); the store fails on the
  // second claim of that batch (its calls: begin, claim, claim).
  f_->db.fail_at(3);
  advance(5ms, 1ms);
  EXPECT_EQ(f_->carrier.sent.size(), 1u);
  for (std::size_t i = 1; i < ms.size(); ++i) {
    EXPECT_EQ(state_of(ms[i].id), message_state::queued) << "rolled back";
    EXPECT_EQ(f_->db.find_message(ms[i].id)->attempts, 0);
  }
  // Tried again after the retry policy's base delay, still in order.
  advance(1100ms, 5ms);
  ASSERT_EQ(f_->carrier.sent.size(), 6u);
  for (std::size_t i = 0; i < ms.size(); ++i) {
    EXPECT_EQ(f_->carrier.sent[i].body, "b" + std::to_string(i));
    EXPECT_EQ(state_of(ms[i].id), message_state::sent);
    EXPECT_EQ(f_->db.find_message(ms[i].id)->attempts, 1);
  }
}

TEST_F(OutboxThroughput, ACarrierErrorInTheMiddleOfABatchFailsThatMessageOnly) {
  // The third send is refused for good (invalid number); the others go.
  f_->carrier.scripted_sends.push_back({});
  f_->carrier.scripted_sends.back().status.ok = true;
  f_->carrier.scripted_sends.back().message_sid = "SMok1";
  f_->carrier.scripted_sends.push_back(f_->carrier.scripted_sends.back());
  f_->carrier.scripted_sends.back().message_sid = "SMok2";
  f_->carrier.scripted_sends.push_back(
    testkit::fake_carrier::failure(400, 21211));
  auto ms = submit(*f_, burst(5, "c"));
  advance(20ms, 1ms);
  EXPECT_EQ(f_->carrier.attempts.size(), 5u);
  EXPECT_EQ(f_->carrier.sent.size(), 4u);
  for (std::size_t i = 0; i < ms.size(); ++i)
    EXPECT_EQ(state_of(ms[i].id),
              i == 2 ? message_state::failed : message_state::sent)
      << i;
  EXPECT_EQ(f_->db.find_message(ms[2].id)->error_code, 21211);
  EXPECT_EQ(f_->db.find_message(ms[2].id)->attempts, 1);
}

TEST_F(OutboxThroughput, AnOptOutAfterQueueingStopsThatMessageOfTheBatchOnly) {
  auto ms = burst(4, "p");
  ms[2].to = "+15559990000";
  // Queued first, then the recipient opts out before the batch is claimed.
  std::vector<std::int64_t> ids;
  for (auto& m : ms) {
    m.node_id = "node-f";
    m.id = f_->db.insert_message(m);
    ids.push_back(m.id);
  }
  engine::opt_out_state o;
  o.tenant_id = "fast";
  o.phone = "+15559990000";
  o.opted_out = true;
  o.since = clock_.now();
  o.keyword = "STOP";
  o.source = engine::opt_out_source::keyword;
  o.last_event_at = clock_.now();
  f_->db.save_opt_out(o);
  caf::anon_send(f_->outbox, actors::send_atom_v, ids);
  sched_.run();
  advance(20ms, 1ms);
  EXPECT_EQ(f_->carrier.attempts.size(), 3u);
  EXPECT_EQ(state_of(ids[2]), message_state::refused);
  for (auto i : {0, 1, 3})
    EXPECT_EQ(state_of(ids[i]), message_state::sent) << i;
  EXPECT_EQ((*f_->metrics)["refused fast opted_out"], 1);
}

// -- the gate, as write_segment applies it ------------------------------------

class Gate : public Outbox {
protected:
  message_record gated(message_record m) {
    auto info = a_->svc->numbers->find(m.tenant_id);
    a_->db.begin();
    actors::gate_message(a_->db, m, *info, a_->svc->numbers.get(),
                         clock_.now());
    m.id = a_->db.insert_message(m);
    a_->db.commit();
    return m;
  }
};

TEST_F(Gate, RefusesOwnAndOtherTenantsNumbersAndShortCodes) {
  EXPECT_EQ(gated(message(acme_second, "x")).reason, "own_number");
  EXPECT_EQ(gated(message(bolt_number, "x")).reason, "other_tenant");
  EXPECT_EQ(gated(message("87654", "x")).reason, "short_code");
  EXPECT_EQ(gated(message("hello", "x")).reason, "invalid_recipient");
  auto ok = gated(message("+15551500", "x"));
  EXPECT_EQ(ok.state, message_state::queued);
  EXPECT_TRUE(ok.reason.empty());
}

TEST_F(Gate, OneTextBackPerCallerPerWindow) {
  auto first = gated(
    message("+15551600", "sorry", acme_number, "acme", send_kind::text_back));
  EXPECT_EQ(first.state, message_state::queued);
  clock_.advance(1h);
  auto second = gated(
    message("+15551600", "sorry", acme_number, "acme", send_kind::text_back));
  EXPECT_EQ(second.state, message_state::refused);
  EXPECT_EQ(second.reason, "repeat_caller");
  EXPECT_NE(second.error_message.find("1 h ago"), std::string::npos)
    << second.error_message;
  // The owner is still told about every call.
  auto owner = gated(message(acme_owner, "missed call", acme_number, "acme",
                             send_kind::notification));
  EXPECT_EQ(owner.state, message_state::queued);
  clock_.advance(23h);
  EXPECT_EQ(gated(message("+15551600", "sorry", acme_number, "acme",
                          send_kind::text_back))
              .state,
            message_state::queued);
}

TEST_F(Gate, CapsAutomatedMessagesPerRecipientPerHour) {
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(gated(message("+15551700", "m")).state, message_state::queued);
  auto capped = gated(message("+15551700", "m"));
  EXPECT_EQ(capped.reason, "automated_cap");
  // A person's words are never capped.
  EXPECT_EQ(gated(message("+15551700", "from the owner", acme_number, "acme",
                          send_kind::relayed))
              .state,
            message_state::queued);
}

TEST_F(Gate, StopsTwoBotsAnsweringEachOther) {
  for (int i = 0; i < 15; ++i) {
    engine::inbound_message in{"SMloop" + std::to_string(i),
                               "acme",
                               "+15551800",
                               acme_number,
                               "auto reply",
                               clock_.now()};
    a_->db.insert_inbound(in);
  }
  auto m = gated(message("+15551800", "auto answer"));
  EXPECT_EQ(m.reason, "loop_suspected");
}

TEST_F(Gate, ASTOPdCallerGetsNoTextBack) {
  engine::opt_out_state s;
  s.tenant_id = "acme";
  s.phone = "+15551900";
  s.opted_out = true;
  s.keyword = "STOP";
  s.source = engine::opt_out_source::keyword;
  a_->db.save_opt_out(s);
  auto m = gated(
    message("+15551900", "sorry", acme_number, "acme", send_kind::text_back));
  EXPECT_EQ(m.state, message_state::refused);
  EXPECT_EQ(m.reason, "opted_out");
  // The opt-out holds across all the tenant's numbers, not other tenants'.
  EXPECT_EQ(gated(message("+15551900", "x", acme_second)).reason, "opted_out");
  EXPECT_EQ(gated(message("+15551900", "x", bolt_number, "bolt")).state,
            message_state::queued);
}

TEST_F(Gate, PeopleAndComplianceAnswersAskOnlyTheOptOutLedger) {
  // A busy owner: far past every cap and window of automated messages.
  for (int i = 0; i < 40; ++i)
    EXPECT_EQ(gated(message(acme_owner, "missed call", acme_number, "acme",
                            send_kind::notification))
                .state,
              message_state::queued)
      << i;
  for (int i = 0; i < 15; ++i)
    EXPECT_EQ(gated(message("+15552000", "from the owner", acme_number,
                            "acme", send_kind::relayed))
                .state,
              message_state::queued)
      << i;
  // Opted out: a notification and a relayed reply are refused, the answer
  // to the STOP itself still goes.
  for (const auto* phone : {acme_owner, "+15552000"}) {
    engine::opt_out_state s;
    s.tenant_id = "acme";
    s.phone = phone;
    s.opted_out = true;
    s.keyword = "STOP";
    s.source = engine::opt_out_source::keyword;
    a_->db.save_opt_out(s);
  }
  auto note = gated(message(acme_owner, "missed call", acme_number, "acme",
                            send_kind::notification));
  EXPECT_EQ(note.state, message_state::refused);
  EXPECT_EQ(note.reason, "opted_out");
  auto relayed = gated(message("+15552000", "from the owner", acme_number,
                               "acme", send_kind::relayed));
  EXPECT_EQ(relayed.reason, "opted_out");
  EXPECT_EQ(gated(message("+15552000", "You are unsubscribed.", acme_number,
                          "acme", send_kind::compliance))
              .state,
            message_state::queued);
  // Still only a customer's phone.
  EXPECT_EQ(gated(message(acme_second, "x", acme_number, "acme",
                          send_kind::notification))
              .reason,
            "own_number");
}

// -- inbound: STOP, START, HELP and delivery reports
// ---------------------------

class Inbound : public Outbox {
protected:
  Inbound() {
    tenant_ = sys_.spawn([this](caf::event_based_actor*) -> caf::behavior {
      return {
        [this](actors::event_atom, engine::inbound_event& ev,
               std::shared_ptr<engine::voice_reply>&) {
          to_tenant_.push_back(ev.body);
        },
      };
    });
    sink_ = std::make_unique<actors::actor_event_sink>(
      a_->svc,
      std::unordered_map<std::string, caf::actor>{{"acme", tenant_},
                                                  {"bolt", tenant_}},
      a_->outbox);
  }

  ~Inbound() override {
    caf::anon_send_exit(tenant_, caf::exit_reason::user_shutdown);
  }

  void sms(const std::string& sid, const std::string& from,
           const std::string& body, const std::string& to = acme_number,
           const std::string& tenant = "acme",
           std::shared_ptr<engine::voice_reply> reply = nullptr) {
    engine::inbound_event ev;
    ev.what = engine::inbound_event::kind::sms;
    ev.sid = sid;
    ev.from = from;
    ev.to = to;
    ev.body = body;
    ev.raw.kind = "sms";
    ev.raw.tenant_id = tenant;
    ev.raw.received_at = clock_.now();
    sink_->deliver(tenant, std::move(ev), std::move(reply));
    sched_.run();
  }

  void status(const std::string& sid, const std::string& st, int code = 0) {
    engine::inbound_event ev;
    ev.what = engine::inbound_event::kind::sms_status;
    ev.sid = sid;
    ev.from = acme_number;
    ev.to = "+15550100";
    ev.status = st;
    ev.error_code = code;
    ev.raw.kind = "sms-status";
    ev.raw.tenant_id = "acme";
    ev.raw.received_at = clock_.now();
    sink_->deliver("acme", std::move(ev), nullptr);
    sched_.run();
  }

  caf::actor tenant_;
  std::unique_ptr<actors::actor_event_sink> sink_;
  std::vector<std::string> to_tenant_;
};

TEST_F(Inbound, StopOptsOutAcrossTheTenantAndStartsNoWorkflow) {
  sms("SM1", "+15552000", "  Stop. ");
  EXPECT_TRUE(to_tenant_.empty());
  auto s = a_->db.find_opt_out("acme", "+15552000");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->opted_out);
  EXPECT_EQ(s->keyword, "STOP");
  EXPECT_EQ((*a_->metrics)["opt_out acme keyword"], 1);
  EXPECT_EQ((*a_->metrics)["inbound acme opt_out"], 1);
  EXPECT_TRUE(a_->carrier.attempts.empty()) << "no stop_reply configured";
  // A carrier retry of the same message is handled once.
  sms("SM1", "+15552000", "  Stop. ");
  EXPECT_EQ((*a_->metrics)["inbound acme opt_out"], 1);
  // START opts back in; ordinary messages go to the tenant.
  clock_.advance(1s);
  sms("SM2", "+15552000", "start");
  EXPECT_FALSE(a_->db.find_opt_out("acme", "+15552000")->opted_out);
  EXPECT_EQ((*a_->metrics)["opt_in acme keyword"], 1);
  sms("SM3", "+15552000", "please stop by tomorrow");
  EXPECT_EQ(to_tenant_, std::vector<std::string>{"please stop by tomorrow"});
}

TEST_F(Inbound, ATextIsAnsweredOnlyOnceItIsStored) {
  // The webhook's 200 stands for a stored message: the sink answers it
  // after the row's transaction, not when the text comes in.
  a_->store_q.close();
  auto reply = std::make_shared<testkit::recorded_reply>();
  sms("SM40", "+15552400", "is anyone there?", acme_number, "acme", reply);
  EXPECT_TRUE(reply->answers.empty()) << "not stored yet";
  EXPECT_TRUE(to_tenant_.empty());
  ASSERT_TRUE(a_->store_q.drain_ahead([&] { sched_.run(); }));
  ASSERT_EQ(reply->answers.size(), 1u);
  EXPECT_TRUE(reply->answers[0].verbs.empty()) << "an empty answer";
  EXPECT_EQ(to_tenant_, std::vector<std::string>{"is anyone there?"});
  // Stored with this process's name and both consumers still to store
  // their parts (the conversations, the runs: a restart hands it on).
  auto row = a_->db.find_inbound("SM40");
  ASSERT_TRUE(row);
  EXPECT_EQ(row->node_id, a_->svc->node_id);
  EXPECT_EQ(row->pending, engine::inbound_all_consumers);
  // A carrier retry is answered too (its row is there), and not handed on.
  auto again = std::make_shared<testkit::recorded_reply>();
  sms("SM40", "+15552400", "is anyone there?", acme_number, "acme", again);
  ASSERT_TRUE(a_->store_q.drain_ahead([&] { sched_.run(); }));
  EXPECT_EQ(again->answers.size(), 1u);
  EXPECT_EQ(to_tenant_.size(), 1u);
  // So is a keyword, once the ledger has it.
  auto stop = std::make_shared<testkit::recorded_reply>();
  sms("SM41", "+15552400", "STOP", acme_number, "acme", stop);
  EXPECT_TRUE(stop->answers.empty());
  ASSERT_TRUE(a_->store_q.drain_ahead([&] { sched_.run(); }));
  EXPECT_EQ(stop->answers.size(), 1u);
  EXPECT_TRUE(a_->db.find_opt_out("acme", "+15552400")->opted_out);
  EXPECT_EQ(a_->db.find_inbound("SM41")->pending, 0) << "handled in its row's "
                                                        "transaction";
  a_->store_q.open();
  sched_.run();
}

TEST_F(Inbound, AStopThatCameWhileTheStoreIsBehindStopsTheNextClaim) {
  a_->store_q.close();
  bool backlog_ran = false;
  a_->store_q.post([&](engine::store&) { backlog_ran = true; });
  sms("SM30", "+15552300", "STOP");
  // Queued through the gate before the STOP is in the ledger.
  auto m = submit(*a_, {message("+15552300", "Your quote is ready")});
  // The outbox's claim goes ahead of the backlog; so does the STOP, which
  // came before it.
  ASSERT_TRUE(a_->store_q.drain_ahead([&] { sched_.run(); }));
  EXPECT_FALSE(backlog_ran);
  EXPECT_TRUE(a_->carrier.attempts.empty());
  EXPECT_EQ(state_of(m.front().id), message_state::refused);
  a_->store_q.open();
  sched_.run();
  EXPECT_TRUE(backlog_ran);
  EXPECT_TRUE(a_->carrier.attempts.empty());
}

TEST_F(Inbound, HelpGetsTheTenantsHelpTextFromTheNumberTexted) {
  sms("SM10", "+15552100", "help", acme_second);
  ASSERT_EQ(a_->carrier.sent.size(), 1u);
  EXPECT_EQ(a_->carrier.sent[0].from, acme_second);
  EXPECT_EQ(a_->carrier.sent[0].to, "+15552100");
  EXPECT_EQ(a_->carrier.sent[0].body,
            "Acme Plumbing: reply STOP to stop these texts, START to get them "
            "again. Questions? Call +15005550001.");
  EXPECT_TRUE(to_tenant_.empty());
  EXPECT_EQ((*a_->metrics)["inbound acme help"], 1);
}

TEST_F(Inbound, AnOptedOutSenderStillGetsHelp) {
  sms("SM20", "+15552200", "STOP");
  sms("SM21", "+15552200", "INFO");
  ASSERT_EQ(a_->carrier.sent.size(), 1u);
}

TEST_F(Inbound, DeliveryReportsMoveMessagesForwardOnly) {
  auto ms = submit(*a_, {message("+15550100", "hello")});
  auto sid = a_->db.find_message(ms[0].id)->message_sid;
  status(sid, "sent");
  status(sid, "delivered");
  EXPECT_EQ(state_of(ms[0].id), message_state::delivered);
  status(sid, "sent"); // late
  EXPECT_EQ(state_of(ms[0].id), message_state::delivered);
  EXPECT_EQ((*a_->metrics)["status applied"], 1);
  EXPECT_EQ((*a_->metrics)["status stale"], 2);
  EXPECT_EQ((*a_->metrics)["delivered acme +15005550001"], 1);
  status("SMnobody", "delivered");
  EXPECT_EQ((*a_->metrics)["status unknown"], 1);
}

TEST_F(Inbound, UndeliveredKeepsTheCarriersErrorCode) {
  auto ms = submit(*a_, {message("+15550101", "hello")});
  auto sid = a_->db.find_message(ms[0].id)->message_sid;
  status(sid, "undelivered", 30003);
  auto m = a_->db.find_message(ms[0].id);
  EXPECT_EQ(m->state, message_state::undelivered);
  EXPECT_EQ(m->error_code, 30003);
  EXPECT_EQ((*a_->metrics)["undelivered acme +15005550001 30003"], 1);
}

} // namespace
