#pragma once

// The behaviour every store adapter must show, as a type-parameterised
// GoogleTest suite. Instantiated for memory_store and sqlite_store in
// tests/adapters/store_*_test.cpp and for pg_store in
// tests/integration/store_pg_test.cpp.
//
// An environment `Env` is a default-constructible type with
//   static constexpr std::string_view backend; // error message prefix
//   static constexpr bool shared;  // open() twice reaches one database
//   void set_up();                 // may GTEST_SKIP() or FAIL()
//   void tear_down();              // also after a skipped set_up()
//   std::unique_ptr<adapters::audited_store> open(); // not migrated
// Each test gets a database of its own (tests run in parallel processes).

#include "ringback/adapters/store/audited_store.hpp"
#include "ringback/adapters/store/migrations.hpp"
#include "ringback/engine/ports.hpp"
#include "ringback/engine/records.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace ringback::store_conformance {

/// A fresh directory, removed with everything in it at the end.
class ScratchDir {
public:
  ScratchDir() {
    auto base = std::filesystem::temp_directory_path()
                / "ringback-store-XXXXXX";
    std::string name = base.string();
    if (::mkdtemp(name.data()) == nullptr)
      throw std::runtime_error("mkdtemp failed for " + name);
    path_ = name;
  }

  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }

  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const {
    return path_;
  }

private:
  std::filesystem::path path_;
};

/// The message of the `port_error` that `f` throws ("" if none: the caller's
/// EXPECT_EQ then shows what was expected).
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const engine::port_error& e) {
    return e.what();
  }
  return {};
}

inline engine::call_record make_call(std::string sid, std::string node = "n1") {
  engine::call_record c;
  c.call_sid = std::move(sid);
  c.tenant_id = "acme";
  c.from = "+15551230001";
  c.to = "+15557650002";
  c.owner_phone = "+15550009999";
  c.started_at = 1'700'000'000'000;
  c.node_id = std::move(node);
  c.updated_at = c.started_at;
  return c;
}

inline engine::message_record make_message(std::string call_sid,
                                           std::string node = "n1") {
  engine::message_record m;
  m.tenant_id = "acme";
  m.call_sid = std::move(call_sid);
  m.purpose = "missed_call.text_back";
  m.from = "+15557650002";
  m.to = "+15551230001";
  m.body = "Sorry we missed you!";
  m.node_id = std::move(node);
  m.created_at = 1'700'000'000'500;
  m.updated_at = m.created_at;
  return m;
}

inline void expect_same(const engine::call_record& x,
                        const engine::call_record& y) {
  EXPECT_EQ(x.call_sid, y.call_sid);
  EXPECT_EQ(x.tenant_id, y.tenant_id);
  EXPECT_EQ(x.from, y.from);
  EXPECT_EQ(x.to, y.to);
  EXPECT_EQ(x.owner_phone, y.owner_phone);
  EXPECT_EQ(x.phase, y.phase);
  EXPECT_EQ(x.decided, y.decided);
  EXPECT_EQ(x.ended, y.ended);
  EXPECT_EQ(x.started_at, y.started_at);
  EXPECT_EQ(x.fallback_at, y.fallback_at);
  EXPECT_EQ(x.fallback_checks, y.fallback_checks);
  EXPECT_EQ(x.dial_status, y.dial_status);
  EXPECT_EQ(x.dial_duration, y.dial_duration);
  EXPECT_EQ(x.node_id, y.node_id);
  EXPECT_EQ(x.updated_at, y.updated_at);
}

inline void expect_same(const engine::message_record& x,
                        const engine::message_record& y) {
  EXPECT_EQ(x.id, y.id);
  EXPECT_EQ(x.tenant_id, y.tenant_id);
  EXPECT_EQ(x.call_sid, y.call_sid);
  EXPECT_EQ(x.purpose, y.purpose);
  EXPECT_EQ(x.from, y.from);
  EXPECT_EQ(x.to, y.to);
  EXPECT_EQ(x.body, y.body);
  EXPECT_EQ(x.state, y.state);
  EXPECT_EQ(x.attempts, y.attempts);
  EXPECT_EQ(x.message_sid, y.message_sid);
  EXPECT_EQ(x.error_code, y.error_code);
  EXPECT_EQ(x.error_message, y.error_message);
  EXPECT_EQ(x.node_id, y.node_id);
  EXPECT_EQ(x.created_at, y.created_at);
  EXPECT_EQ(x.updated_at, y.updated_at);
  EXPECT_EQ(x.kind, y.kind);
  EXPECT_EQ(x.urgent, y.urgent);
  EXPECT_EQ(x.not_before, y.not_before);
  EXPECT_EQ(x.reason, y.reason);
  EXPECT_EQ(x.sent_at, y.sent_at);
  EXPECT_EQ(x.status_at, y.status_at);
  EXPECT_EQ(x.channel, y.channel);
}

inline std::vector<std::string>
sids(const std::vector<engine::call_record>& xs) {
  std::vector<std::string> result;
  for (const auto& x : xs)
    result.push_back(x.call_sid);
  return result;
}

inline std::vector<std::int64_t>
ids(const std::vector<engine::message_record>& xs) {
  std::vector<std::int64_t> result;
  for (const auto& x : xs)
    result.push_back(x.id);
  return result;
}

inline engine::run_record make_run(std::string node = "n1") {
  engine::run_record r;
  r.tenant_id = "acme";
  r.workflow = "missed_call";
  r.version = "sha256:0f1e2d";
  r.trigger = "call.missed";
  r.call_sid = "CA1";
  r.contact = "+15551230001";
  r.status = engine::run_status::running;
  r.state = R"({"pc":0,"vars":{}})";
  r.node_id = std::move(node);
  r.started_at = 1'700'000'000'000;
  r.updated_at = r.started_at;
  return r;
}

/// A run waiting for `what` until `wake_at`.
inline engine::run_record make_waiting_run(std::string node, std::string what,
                                           engine::epoch_ms wake_at) {
  auto r = make_run(std::move(node));
  r.status = engine::run_status::waiting;
  r.waiting_for = std::move(what);
  r.wake_at = wake_at;
  return r;
}

/// The next version of `r` as a writer stores it: seq bumped.
inline engine::run_record bumped(engine::run_record r) {
  ++r.seq;
  return r;
}

/// Tens of KB of JSON-ish text with every kind of character a state holds:
/// multi-byte UTF-8, quotes, backslashes, placeholders, SQL, newlines.
inline std::string big_state(std::size_t min_size = 48 * 1024) {
  std::string chunk = R"({"body":"Grüße 👋 — \"quoted\" 'single' \\ )"
                      R"(Ωμέγα 日本語 ?1 $1 %s '); DROP TABLE runs; --",)"
                      "\n\t\"n\":";
  std::string result = "[";
  for (int i = 0; result.size() < min_size; ++i)
    result += chunk + std::to_string(i) + "},";
  result += "null]";
  return result;
}

/// Bytes that are not UTF-8, with a NUL: a payload from outside.
inline std::string raw_bytes() {
  static constexpr char raw[] = "ok\xff\xfe\0\x80 end";
  return std::string(raw, sizeof(raw) - 1);
}

inline void expect_same(const engine::run_record& x,
                        const engine::run_record& y) {
  EXPECT_EQ(x.id, y.id);
  EXPECT_EQ(x.tenant_id, y.tenant_id);
  EXPECT_EQ(x.workflow, y.workflow);
  EXPECT_EQ(x.version, y.version);
  EXPECT_EQ(x.trigger, y.trigger);
  EXPECT_EQ(x.call_sid, y.call_sid);
  EXPECT_EQ(x.contact, y.contact);
  EXPECT_EQ(x.status, y.status);
  EXPECT_EQ(x.waiting_for, y.waiting_for);
  EXPECT_EQ(x.wake_at, y.wake_at);
  EXPECT_EQ(x.state.size(), y.state.size());
  EXPECT_TRUE(x.state == y.state) << "state differs";
  EXPECT_EQ(x.node_id, y.node_id);
  EXPECT_EQ(x.seq, y.seq);
  EXPECT_EQ(x.error, y.error);
  EXPECT_EQ(x.started_at, y.started_at);
  EXPECT_EQ(x.updated_at, y.updated_at);
}

inline void expect_same(const engine::run_step_record& x,
                        const engine::run_step_record& y) {
  EXPECT_EQ(x.run_id, y.run_id);
  EXPECT_EQ(x.seq, y.seq);
  EXPECT_EQ(x.step_id, y.step_id);
  EXPECT_EQ(x.type, y.type);
  EXPECT_EQ(x.outcome, y.outcome);
  EXPECT_EQ(x.detail, y.detail);
  EXPECT_EQ(x.at, y.at);
  EXPECT_EQ(x.duration_us, y.duration_us);
}

inline std::vector<std::int64_t>
ids(const std::vector<engine::run_record>& xs) {
  std::vector<std::int64_t> result;
  for (const auto& x : xs)
    result.push_back(x.id);
  return result;
}

inline engine::run_step_record make_step(std::int64_t run_id, std::int32_t seq,
                                         std::string outcome = "ok") {
  engine::run_step_record s;
  s.run_id = run_id;
  s.seq = seq;
  s.step_id = "step" + std::to_string(seq);
  s.type = "send_sms";
  s.outcome = std::move(outcome);
  s.detail = "queued message to +15551230001";
  s.at = 1'700'000'000'000 + seq;
  s.duration_us = 125;
  return s;
}

inline std::vector<std::int32_t>
seqs(const std::vector<engine::run_step_record>& xs) {
  std::vector<std::int32_t> result;
  for (const auto& x : xs)
    result.push_back(x.seq);
  return result;
}

/// Runs `f(i)` on `n` threads released at the same moment; returns the
/// messages of what they threw.
inline std::vector<std::string> race(int n, const std::function<void(int)>& f) {
  std::atomic<int> ready{0};
  std::vector<std::string> errors(n);
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] {
      ++ready;
      while (ready.load() < n)
        std::this_thread::yield();
      try {
        f(i);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  for (auto& t : threads)
    t.join();
  std::vector<std::string> result;
  for (auto& e : errors)
    if (!e.empty())
      result.push_back(std::move(e));
  return result;
}

/// A delivery report as the status callback handler records it.
inline engine::status_report
make_report(std::string sid, engine::message_state state, engine::epoch_ms at,
            std::string carrier_status = "") {
  engine::status_report r;
  r.message_sid = std::move(sid);
  r.carrier_status = carrier_status.empty() ? std::string{to_string(state)}
                                            : std::move(carrier_status);
  r.state = state;
  r.at = at;
  return r;
}

inline void expect_same(const engine::opt_out_state& x,
                        const engine::opt_out_state& y) {
  EXPECT_EQ(x.tenant_id, y.tenant_id);
  EXPECT_EQ(x.phone, y.phone);
  EXPECT_EQ(x.opted_out, y.opted_out);
  EXPECT_EQ(x.since, y.since);
  EXPECT_EQ(x.keyword, y.keyword);
  EXPECT_EQ(x.source, y.source);
  EXPECT_EQ(x.last_event_at, y.last_event_at);
}

inline void expect_same(const engine::conversation_record& x,
                        const engine::conversation_record& y) {
  EXPECT_EQ(x.id, y.id);
  EXPECT_EQ(x.tenant_id, y.tenant_id);
  EXPECT_EQ(x.customer, y.customer);
  EXPECT_EQ(x.business_number, y.business_number);
  EXPECT_EQ(x.ref, y.ref);
  EXPECT_EQ(x.state, y.state);
  EXPECT_EQ(x.window_seq, y.window_seq);
  EXPECT_EQ(x.window_deadline, y.window_deadline);
  EXPECT_EQ(x.outcome, y.outcome);
  EXPECT_EQ(x.turn_at, y.turn_at);
  EXPECT_EQ(x.close_at, y.close_at);
  EXPECT_EQ(x.ai_replies, y.ai_replies);
  EXPECT_EQ(x.opened_at, y.opened_at);
  EXPECT_EQ(x.last_customer_at, y.last_customer_at);
  EXPECT_EQ(x.last_owner_at, y.last_owner_at);
  EXPECT_EQ(x.last_ai_at, y.last_ai_at);
  EXPECT_EQ(x.node_id, y.node_id);
  EXPECT_EQ(x.seq, y.seq);
  EXPECT_EQ(x.updated_at, y.updated_at);
}

inline void expect_same(const engine::conversation_message& x,
                        const engine::conversation_message& y) {
  EXPECT_EQ(x.id, y.id);
  EXPECT_EQ(x.conversation_id, y.conversation_id);
  EXPECT_EQ(x.tenant_id, y.tenant_id);
  EXPECT_EQ(x.author, y.author);
  EXPECT_EQ(x.body, y.body);
  EXPECT_EQ(x.message_id, y.message_id);
  EXPECT_EQ(x.message_sid, y.message_sid);
  EXPECT_EQ(x.at, y.at);
}

inline void expect_same(const engine::conversation_event& x,
                        const engine::conversation_event& y) {
  EXPECT_EQ(x.id, y.id);
  EXPECT_EQ(x.conversation_id, y.conversation_id);
  EXPECT_EQ(x.tenant_id, y.tenant_id);
  EXPECT_EQ(x.kind, y.kind);
  EXPECT_EQ(x.detail, y.detail);
  EXPECT_EQ(x.window_seq, y.window_seq);
  EXPECT_EQ(x.provider, y.provider);
  EXPECT_EQ(x.latency_ms, y.latency_ms);
  EXPECT_EQ(x.prompt_tokens, y.prompt_tokens);
  EXPECT_EQ(x.completion_tokens, y.completion_tokens);
  EXPECT_EQ(x.cost_usd, y.cost_usd);
  EXPECT_EQ(x.at, y.at);
}

/// The next version of `c` as a writer stores it: seq bumped.
inline engine::conversation_record bumped(engine::conversation_record c) {
  ++c.seq;
  return c;
}

inline std::vector<std::int64_t>
ids(const std::vector<engine::conversation_record>& xs) {
  std::vector<std::int64_t> result;
  for (const auto& x : xs)
    result.push_back(x.id);
  return result;
}

/// A customer's number for `i` (E.164).
inline std::string customer(int i) {
  return "+1555200" + std::to_string(1000 + i);
}

inline engine::conversation_message
make_transcript_line(std::int64_t conversation_id, std::string author,
                     std::string body, engine::epoch_ms at) {
  engine::conversation_message m;
  m.conversation_id = conversation_id;
  m.tenant_id = "acme";
  m.author = std::move(author);
  m.body = std::move(body);
  m.at = at;
  return m;
}

inline engine::conversation_event
make_event(std::int64_t conversation_id, std::string kind, engine::epoch_ms at,
           std::string tenant_id = "acme") {
  engine::conversation_event e;
  e.conversation_id = conversation_id;
  e.tenant_id = std::move(tenant_id);
  e.kind = std::move(kind);
  e.at = at;
  return e;
}

/// An "ai_turn" event with its accounting.
inline engine::conversation_event
make_ai_turn(std::int64_t conversation_id, engine::epoch_ms at,
             std::int32_t prompt_tokens, std::int32_t completion_tokens,
             double cost_usd, std::string tenant_id = "acme") {
  auto e = make_event(conversation_id, "ai_turn", at, std::move(tenant_id));
  e.provider = "openai";
  e.latency_ms = 850;
  e.prompt_tokens = prompt_tokens;
  e.completion_tokens = completion_tokens;
  e.cost_usd = cost_usd;
  return e;
}

/// Writes rows of every kind that a version 3 database holds (migration
/// tests: `s` has the schema of version 3). The message goes in through
/// `exec_sql` (raw SQL: today's insert names columns added later).
inline void
write_version_3_rows(engine::store& s,
                     const std::function<void(const std::string&)>& exec_sql) {
  ASSERT_TRUE(s.insert_call(make_call("CA1")));
  exec_sql("INSERT INTO messages (tenant_id, call_sid, purpose, from_number, "
           "to_number, body, state, attempts, message_sid, error_code, "
           "error_message, node_id, created_at, updated_at) VALUES "
           "('acme', 'CA1', 'missed_call.text_back', '+15557650002', "
           "'+15551230001', 'Sorry we missed you!', 'queued', 0, '', 0, '', "
           "'n1', 1700000000500, 1700000000500)");
  s.save_opt_out({"acme", "+15551230001", true, 1, "STOP",
                  engine::opt_out_source::keyword, 1});
  s.insert_run(make_run());
  s.touch_contact("acme", "+15551230001", 10);
}

/// After the migration to version 4: the rows of `write_version_3_rows` are
/// there, and conversations start from ref 1.
inline void expect_version_3_rows_kept(adapters::audited_store& s) {
  EXPECT_TRUE(s.find_call("CA1"));
  ASSERT_EQ(s.messages_for_call("CA1").size(), 1u);
  EXPECT_EQ(s.messages_for_call("CA1")[0].channel, engine::message_channel::sms)
    << "an older message was a text";
  EXPECT_TRUE(s.find_opt_out("acme", "+15551230001")->opted_out);
  EXPECT_EQ(s.runs_for_call("CA1").size(), 1u);
  EXPECT_EQ(s.find_contact("acme", "+15551230001")->first_seen, 10);
  auto c = s.find_or_create_conversation("acme", "+15551230001", "+15557650002",
                                         20);
  EXPECT_EQ(c.ref, 1);
  s.insert_conversation_event(make_event(c.id, "opened", 20));
  EXPECT_EQ(s.conversation_events(c.id).size(), 1u);
}

template <class Env>
class StoreConformance : public ::testing::Test {
public:
  void SetUp() override {
    env_.set_up();
  }

  void TearDown() override {
    store_.reset();
    env_.tear_down();
  }

  /// The main instance, migrated.
  adapters::audited_store& store() {
    if (!store_) {
      store_ = env_.open();
      store_->migrate();
    }
    return *store_;
  }

  /// Another instance (a second connection; the same database if shared).
  std::unique_ptr<adapters::audited_store> open() {
    return env_.open();
  }

  /// `<backend> <op>: <detail>`.
  static std::string message(std::string_view op, std::string_view detail) {
    std::string result(Env::backend);
    result.append(" ").append(op).append(": ").append(detail);
    return result;
  }

private:
  Env env_;
  std::unique_ptr<adapters::audited_store> store_;
};

TYPED_TEST_SUITE_P(StoreConformance);

// -- schema -------------------------------------------------------------------

TYPED_TEST_P(StoreConformance, migrate_applies_the_latest_schema_once) {
  auto s = this->open();
  EXPECT_EQ(s->schema_version(), 0);
  s->migrate();
  EXPECT_EQ(s->schema_version(), adapters::latest_schema_version());
  s->migrate(); // idempotent
  EXPECT_EQ(s->schema_version(), adapters::latest_schema_version());
  EXPECT_TRUE(s->insert_call(make_call("CA1")));
}

TYPED_TEST_P(StoreConformance, concurrent_migrations_all_succeed) {
  if (!TypeParam::shared)
    GTEST_SKIP() << "instances do not share a database";
  std::vector<std::unique_ptr<adapters::audited_store>> stores;
  for (int i = 0; i < 4; ++i)
    stores.push_back(this->open());
  auto errors = race(4, [&](int i) { stores[i]->migrate(); });
  EXPECT_TRUE(errors.empty()) << errors.front();
  for (auto& s : stores)
    EXPECT_EQ(s->schema_version(), adapters::latest_schema_version());
  EXPECT_TRUE(stores[0]->insert_call(make_call("CA1")));
  EXPECT_FALSE(stores[3]->insert_call(make_call("CA1")));
}

TYPED_TEST_P(StoreConformance, calls_before_migrate_throw) {
  auto s = this->open();
  EXPECT_TRUE(s->ping());
  EXPECT_THROW(s->insert_call(make_call("CA1")), engine::port_error);
  EXPECT_THROW(s->find_call("CA1"), engine::port_error);
  auto what = error_of([&] { s->pending_messages("n1"); });
  EXPECT_EQ(what.rfind(this->message("pending_messages", ""), 0), 0u) << what;
}

TYPED_TEST_P(StoreConformance, ping_is_true_when_reachable) {
  EXPECT_TRUE(this->store().ping());
  this->store().begin();
  EXPECT_TRUE(this->store().ping());
  this->store().rollback();
}

// -- calls --------------------------------------------------------------------

TYPED_TEST_P(StoreConformance, insert_call_round_trips_every_field) {
  auto& s = this->store();
  auto c = make_call("CA0123456789abcdef");
  c.phase = engine::call_phase::missed;
  c.decided = engine::decided_by::fallback;
  c.ended = true;
  c.started_at = 4'102'444'800'123; // 2100
  c.fallback_at = -1;
  c.fallback_checks = 3;
  c.dial_status = "no-answer";
  c.dial_duration = 2'147'483'647;
  c.updated_at = 4'102'444'800'999;
  ASSERT_TRUE(s.insert_call(c));
  auto found = s.find_call(c.call_sid);
  ASSERT_TRUE(found);
  expect_same(*found, c);
  EXPECT_FALSE(s.find_call("CA-unknown"));
}

TYPED_TEST_P(StoreConformance, insert_call_refuses_a_known_call_sid) {
  auto& s = this->store();
  auto c = make_call("CA1");
  ASSERT_TRUE(s.insert_call(c));
  auto other = make_call("CA1", "n2");
  other.from = "+15550000000";
  other.phase = engine::call_phase::answered;
  EXPECT_FALSE(s.insert_call(other));
  expect_same(*s.find_call("CA1"), c);
}

TYPED_TEST_P(StoreConformance, update_call_changes_the_progress_not_the_identity) {
  auto& s = this->store();
  ASSERT_TRUE(s.insert_call(make_call("CA1")));
  auto c = make_call("CA1", "n2");
  c.tenant_id = "other";
  c.from = "+15550000001";
  c.to = "+15550000002";
  c.owner_phone = "+15550000003";
  c.phase = engine::call_phase::answered;      // ignored
  c.decided = engine::decided_by::dial_result; // ignored
  c.ended = true;
  c.started_at = 11;
  c.fallback_at = 22;
  c.fallback_checks = 2;
  c.dial_status = "busy";
  c.dial_duration = 7;
  c.updated_at = 33;
  s.update_call(c);
  // The identity stays as inserted (the SQL stores' UPDATE does not name it,
  // so it leaves the caller index alone), the outcome is decide_outcome's.
  auto inserted = make_call("CA1");
  auto expected = c;
  expected.tenant_id = inserted.tenant_id;
  expected.from = inserted.from;
  expected.to = inserted.to;
  expected.owner_phone = inserted.owner_phone;
  expected.started_at = inserted.started_at;
  expected.phase = engine::call_phase::ringing;
  expected.decided = engine::decided_by::none;
  expect_same(*s.find_call("CA1"), expected);
}

TYPED_TEST_P(StoreConformance, update_call_of_an_unknown_call_throws) {
  EXPECT_EQ(error_of([&] { this->store().update_call(make_call("CA404")); }),
            this->message("update_call", "unknown CallSid 'CA404'"));
}

TYPED_TEST_P(StoreConformance,
             an_unknown_call_updated_in_a_transaction_fails_it_by_the_commit) {
  auto& s = this->store();
  s.begin();
  ASSERT_TRUE(s.insert_call(make_call("CA1")));
  auto error = error_of([&] {
    s.update_call(make_call("CA404"));
    s.commit();
  });
  EXPECT_EQ(error, this->message("update_call", "unknown CallSid 'CA404'"));
  s.rollback(); // a no-op when commit rolled back already
  EXPECT_FALSE(s.find_call("CA1"));
}

TYPED_TEST_P(StoreConformance,
             a_read_in_a_transaction_sees_the_updates_before_it) {
  auto& s = this->store();
  ASSERT_TRUE(s.insert_call(make_call("CA1")));
  s.begin();
  auto c = make_call("CA1");
  c.dial_status = "busy";
  s.update_call(c);
  c.dial_status = "no-answer";
  c.fallback_checks = 2;
  s.update_call(c);
  auto seen = s.find_call("CA1");
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->dial_status, "no-answer");
  EXPECT_EQ(seen->fallback_checks, 2);
  s.commit();
  EXPECT_EQ(s.find_call("CA1")->dial_status, "no-answer");
}

TYPED_TEST_P(StoreConformance, decide_outcome_lets_only_the_first_win) {
  auto& s = this->store();
  ASSERT_TRUE(s.insert_call(make_call("CA1")));
  auto first = make_call("CA1");
  first.phase = engine::call_phase::answered;
  first.decided = engine::decided_by::dial_result;
  first.dial_status = "completed";
  first.dial_duration = 42;
  first.ended = true;
  first.updated_at = 99;
  auto renamed = first;
  renamed.from = "+15550000001"; // the identity is insert_call's
  EXPECT_TRUE(s.decide_outcome(renamed));
  expect_same(*s.find_call("CA1"), first);
  auto second = make_call("CA1");
  second.phase = engine::call_phase::missed;
  second.decided = engine::decided_by::fallback;
  second.dial_status = "no-answer";
  EXPECT_FALSE(s.decide_outcome(second));
  expect_same(*s.find_call("CA1"), first);
  // update_call never reopens or changes the outcome either.
  auto reopen = first;
  reopen.phase = engine::call_phase::ringing;
  reopen.decided = engine::decided_by::none;
  reopen.fallback_checks = 5;
  s.update_call(reopen);
  auto stored = *s.find_call("CA1");
  EXPECT_EQ(stored.phase, engine::call_phase::answered);
  EXPECT_EQ(stored.decided, engine::decided_by::dial_result);
  EXPECT_EQ(stored.fallback_checks, 5);
}

TYPED_TEST_P(StoreConformance, decide_outcome_rejects_bad_requests) {
  auto& s = this->store();
  auto c = make_call("CA404");
  c.phase = engine::call_phase::missed;
  EXPECT_EQ(error_of([&] { s.decide_outcome(c); }),
            this->message("decide_outcome", "unknown CallSid 'CA404'"));
  ASSERT_TRUE(s.insert_call(make_call("CA1")));
  EXPECT_EQ(error_of([&] { s.decide_outcome(make_call("CA1")); }),
            this->message("decide_outcome",
                          "phase must be answered or missed (CallSid 'CA1')"));
  EXPECT_EQ(s.find_call("CA1")->phase, engine::call_phase::ringing);
}

/// Two instances (connections) decide the same calls from two threads.
template <class Fixture>
void decide_race(Fixture& self, bool in_transactions) {
  auto a = self.open();
  auto b = self.open();
  adapters::audited_store* racers[] = {a.get(), b.get()};
  constexpr int rounds = 150;
  int lost_both = 0;
  int won_both = 0;
  for (int round = 0; round < rounds; ++round) {
    auto sid = "CArace" + std::to_string(round);
    ASSERT_TRUE(self.store().insert_call(make_call(sid)));
    bool won[2] = {false, false};
    auto errors = race(2, [&](int i) {
      auto c = make_call(sid, i == 0 ? "n1" : "n2");
      c.phase = i == 0 ? engine::call_phase::answered
                       : engine::call_phase::missed;
      c.decided = i == 0 ? engine::decided_by::dial_result
                         : engine::decided_by::fallback;
      auto& s = *racers[i];
      if (in_transactions)
        s.begin();
      won[i] = s.decide_outcome(c);
      if (in_transactions)
        s.commit();
    });
    ASSERT_TRUE(errors.empty()) << errors.front();
    won_both += won[0] && won[1];
    lost_both += !won[0] && !won[1];
    auto stored = self.store().find_call(sid);
    ASSERT_TRUE(stored);
    if (won[0] != won[1]) {
      EXPECT_EQ(stored->phase, won[0] ? engine::call_phase::answered
                                      : engine::call_phase::missed);
      EXPECT_EQ(stored->node_id, won[0] ? "n1" : "n2");
    }
  }
  EXPECT_EQ(won_both, 0);
  EXPECT_EQ(lost_both, 0);
}

TYPED_TEST_P(StoreConformance, decide_outcome_race_has_one_winner) {
  if (!TypeParam::shared)
    GTEST_SKIP() << "instances do not share a database";
  decide_race(*this, false);
}

TYPED_TEST_P(StoreConformance,
             decide_outcome_race_in_transactions_has_one_winner) {
  if (!TypeParam::shared)
    GTEST_SKIP() << "instances do not share a database";
  decide_race(*this, true);
}

TYPED_TEST_P(StoreConformance,
             unfinished_calls_are_undecided_and_owned_or_overdue) {
  auto& s = this->store();
  auto add = [&](std::string sid, std::string node, engine::call_phase phase,
                 engine::epoch_ms fallback_at, engine::epoch_ms started_at,
                 bool ended = false) {
    auto c = make_call(std::move(sid), std::move(node));
    c.phase = phase;
    c.fallback_at = fallback_at;
    c.started_at = started_at;
    c.ended = ended;
    ASSERT_TRUE(s.insert_call(c));
  };
  using engine::call_phase;
  const engine::epoch_ms cutoff = 10'000;
  add("CAown", "n1", call_phase::ringing, 0, 300);             // owned
  add("CAown_ended", "n1", call_phase::ringing, 0, 100, true); // owned
  add("CAother", "n2", call_phase::ringing, 0, 50);            // no fallback
  add("CAoverdue", "n2", call_phase::ringing, cutoff - 1, 200);
  add("CAoverdue_b", "n3", call_phase::ringing, 1, 200); // tie: by sid
  add("CAat_cutoff", "n2", call_phase::ringing, cutoff, 10);
  add("CAlater", "n2", call_phase::ringing, cutoff + 5000, 10);
  add("CAanswered", "n1", call_phase::answered, 0, 10);
  add("CAmissed", "n2", call_phase::missed, 5, 10);
  EXPECT_EQ(sids(s.unfinished_calls("n1", cutoff)),
            (std::vector<std::string>{"CAown_ended", "CAoverdue", "CAoverdue_b",
                                      "CAown"}));
  EXPECT_EQ(sids(s.unfinished_calls("n9", cutoff)),
            (std::vector<std::string>{"CAoverdue", "CAoverdue_b"}));
  EXPECT_EQ(sids(s.unfinished_calls("n2", 0)),
            (std::vector<std::string>{"CAat_cutoff", "CAlater", "CAother",
                                      "CAoverdue"}));
}

// -- webhooks -----------------------------------------------------------------

TYPED_TEST_P(StoreConformance, webhooks_are_stored_raw) {
  auto& s = this->store();
  engine::webhook_record w;
  w.kind = "voice";
  w.call_sid = "CA1";
  w.path = "/twilio/voice?x=%20y";
  static constexpr char raw_body[] = "CallSid=CA1&Bad=\xff\xfe\0end";
  w.body = std::string(raw_body, sizeof(raw_body) - 1); // with the NUL
  w.signature = "c2lnbmF0dXJl+/=";
  w.received_at = 1'700'000'000'000;
  s.insert_webhook(w); // no tenant matched: tenant_id is empty
  auto dup = w;
  dup.tenant_id = "acme";
  dup.kind = "status";
  dup.duplicate = true;
  dup.body.clear();
  dup.received_at += 1;
  s.insert_webhook(dup);
  auto other = w;
  static constexpr char raw_sid[] = "CA\x80\0z";
  other.call_sid = std::string(raw_sid, sizeof(raw_sid) - 1);
  s.insert_webhook(other);
  auto xs = s.webhooks_for("CA1");
  ASSERT_EQ(xs.size(), 2u);
  EXPECT_EQ(xs[0].tenant_id, "");
  EXPECT_EQ(xs[0].kind, "voice");
  EXPECT_EQ(xs[0].call_sid, "CA1");
  EXPECT_EQ(xs[0].path, w.path);
  EXPECT_EQ(xs[0].body, w.body);
  EXPECT_EQ(xs[0].body.size(), 22u);
  EXPECT_EQ(xs[0].signature, w.signature);
  EXPECT_FALSE(xs[0].duplicate);
  EXPECT_EQ(xs[0].received_at, w.received_at);
  EXPECT_EQ(xs[1].tenant_id, "acme");
  EXPECT_EQ(xs[1].kind, "status");
  EXPECT_TRUE(xs[1].duplicate);
  EXPECT_EQ(xs[1].body, "");
  EXPECT_EQ(xs[1].received_at, w.received_at + 1);
  auto ys = s.webhooks_for(other.call_sid);
  ASSERT_EQ(ys.size(), 1u);
  EXPECT_EQ(ys[0].call_sid, other.call_sid);
  EXPECT_TRUE(s.webhooks_for("CA404").empty());
}

// -- messages -----------------------------------------------------------------

TYPED_TEST_P(StoreConformance, insert_message_returns_fresh_ids) {
  auto& s = this->store();
  auto m = make_message("CA1");
  m.id = 777; // ignored: the store assigns ids
  m.body = "Grüße 👋 — \"quoted\" 'single' \\ backslash";
  m.state = engine::message_state::sending;
  m.attempts = 2;
  m.message_sid = "SM1";
  m.error_code = 21211;
  m.error_message = "Invalid 'To' Phone Number";
  m.kind = engine::send_kind::notification;
  m.urgent = false;
  m.not_before = 4'102'444'800'123;
  m.reason = "quiet_hours";
  m.sent_at = 1'700'000'000'600;
  m.status_at = 1'700'000'000'700;
  auto a = s.insert_message(m);
  auto b = s.insert_message(m);
  auto c = s.insert_message(make_message("CA2"));
  EXPECT_GT(a, 0);
  EXPECT_GT(b, a);
  EXPECT_GT(c, b);
  auto found = s.find_message(a);
  ASSERT_TRUE(found);
  auto expected = m;
  expected.id = a;
  expect_same(*found, expected);
  EXPECT_FALSE(s.find_message(c + 1000));
}

TYPED_TEST_P(StoreConformance, update_message_changes_the_mutable_fields_only) {
  auto& s = this->store();
  auto m = make_message("CA1");
  m.kind = engine::send_kind::text_back;
  m.urgent = true;
  m.id = s.insert_message(m);
  auto u = make_message("CA-other", "n-other");
  u.id = m.id;
  u.tenant_id = "beta";                // ignored
  u.purpose = "other";                 // ignored
  u.from = "+15550000001";             // ignored
  u.to = "+15550000002";               // ignored
  u.body = "changed";                  // ignored
  u.created_at = 1;                    // ignored
  u.kind = engine::send_kind::relayed; // ignored
  u.urgent = false;                    // ignored
  u.state = engine::message_state::undelivered;
  u.attempts = 4;
  u.message_sid = "SM42";
  u.error_code = 30003;
  u.error_message = "Unreachable destination handset";
  u.not_before = 1'700'000'008'000;
  u.reason = "quiet_hours";
  u.sent_at = 1'700'000'008'500;
  u.status_at = 1'700'000'008'900;
  u.updated_at = 1'700'000'009'000;
  s.update_message(u);
  auto expected = m;
  expected.state = u.state;
  expected.attempts = u.attempts;
  expected.message_sid = u.message_sid;
  expected.error_code = u.error_code;
  expected.error_message = u.error_message;
  expected.node_id = u.node_id;
  expected.not_before = u.not_before;
  expected.reason = u.reason;
  expected.sent_at = u.sent_at;
  expected.status_at = u.status_at;
  expected.updated_at = u.updated_at;
  expect_same(*s.find_message(m.id), expected);
  // And back: empty and zero values are written too.
  auto cleared = expected;
  cleared.state = engine::message_state::queued;
  cleared.message_sid.clear();
  cleared.error_code = 0;
  cleared.error_message.clear();
  cleared.not_before = 0;
  cleared.reason.clear();
  cleared.sent_at = 0;
  cleared.status_at = 0;
  s.update_message(cleared);
  expect_same(*s.find_message(m.id), cleared);
  u.id = m.id + 1000;
  EXPECT_EQ(error_of([&] { s.update_message(u); }),
            this->message("update_message",
                          "unknown message id " + std::to_string(u.id)));
}

TYPED_TEST_P(StoreConformance,
             pending_messages_are_queued_sending_or_held_of_a_node) {
  auto& s = this->store();
  std::vector<std::int64_t> expected;
  for (auto state :
       {engine::message_state::queued, engine::message_state::sending,
        engine::message_state::sent, engine::message_state::delivered,
        engine::message_state::undelivered, engine::message_state::failed,
        engine::message_state::held, engine::message_state::refused,
        engine::message_state::queued}) {
    auto m = make_message("CA1");
    m.state = state;
    auto id = s.insert_message(m);
    if (state == engine::message_state::queued
        || state == engine::message_state::sending
        || state == engine::message_state::held)
      expected.push_back(id);
    s.insert_message(make_message("CA1", "n2"));
  }
  EXPECT_EQ(ids(s.pending_messages("n1")), expected);
  EXPECT_EQ(s.pending_messages("n2").size(), 9u);
  EXPECT_TRUE(s.pending_messages("n9").empty());
  // A message that leaves the outbox is no longer pending.
  auto m = *s.find_message(expected[1]);
  m.state = engine::message_state::sent;
  s.update_message(m);
  expected.erase(expected.begin() + 1);
  EXPECT_EQ(ids(s.pending_messages("n1")), expected);
}

TYPED_TEST_P(StoreConformance, messages_for_call_in_id_order) {
  auto& s = this->store();
  auto a = s.insert_message(make_message("CA1"));
  s.insert_message(make_message("CA2"));
  auto b = s.insert_message(make_message("CA1", "n2"));
  EXPECT_EQ(ids(s.messages_for_call("CA1")), (std::vector<std::int64_t>{a, b}));
  EXPECT_TRUE(s.messages_for_call("CA404").empty());
}

TYPED_TEST_P(StoreConformance, message_ids_are_unique_across_instances) {
  if (!TypeParam::shared)
    GTEST_SKIP() << "instances do not share a database";
  this->store();
  auto a = this->open();
  auto b = this->open();
  adapters::audited_store* writers[] = {a.get(), b.get()};
  std::vector<std::int64_t> got[2];
  auto errors = race(2, [&](int i) {
    for (int n = 0; n < 40; ++n)
      got[i].push_back(writers[i]->insert_message(make_message("CArace")));
  });
  ASSERT_TRUE(errors.empty()) << errors.front();
  std::set<std::int64_t> all(got[0].begin(), got[0].end());
  all.insert(got[1].begin(), got[1].end());
  EXPECT_EQ(all.size(), 80u);
  EXPECT_EQ(this->store().messages_for_call("CArace").size(), 80u);
}

// -- messaging: the outbox, delivery reports, the gate, the opt-out ledger ----

TYPED_TEST_P(StoreConformance, claim_message_claims_a_queued_message_once) {
  auto& s = this->store();
  auto m = make_message("CA1", "n0");
  m.attempts = 2;
  m.id = s.insert_message(m);
  auto claimed = s.claim_message(m.id, "n1", 1'700'000'001'000);
  ASSERT_TRUE(claimed);
  auto expected = m;
  expected.state = engine::message_state::sending;
  expected.node_id = "n1";
  expected.attempts = 3;
  expected.updated_at = 1'700'000'001'000;
  expect_same(*claimed, expected);
  expect_same(*s.find_message(m.id), expected);
  // Claimed already (by this or another process).
  EXPECT_FALSE(s.claim_message(m.id, "n2", 1'700'000'002'000));
  expect_same(*s.find_message(m.id), expected);
  // Only a queued message can be claimed.
  using engine::message_state;
  for (auto state : {message_state::sent, message_state::delivered,
                     message_state::undelivered, message_state::failed,
                     message_state::held, message_state::refused}) {
    auto x = make_message("CA1");
    x.state = state;
    x.id = s.insert_message(x);
    EXPECT_FALSE(s.claim_message(x.id, "n2", 1'700'000'002'000))
      << to_string(state);
    expect_same(*s.find_message(x.id), x);
  }
  EXPECT_FALSE(s.claim_message(m.id + 1000, "n1", 1)); // unknown
  // The outbox queues a failed attempt again: it can be claimed again.
  expected.state = message_state::queued;
  s.update_message(expected);
  claimed = s.claim_message(m.id, "n2", 1'700'000'003'000);
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->attempts, 4);
  EXPECT_EQ(claimed->node_id, "n2");
  EXPECT_EQ(claimed->state, message_state::sending);
}

TYPED_TEST_P(StoreConformance, claim_messages_claims_the_queued_ones_in_order) {
  auto& s = this->store();
  using engine::message_state;
  auto add = [&](message_state state) {
    auto m = make_message("CAbatch", "n0");
    m.state = state;
    m.attempts = 1;
    m.id = s.insert_message(m);
    return m;
  };
  auto a = add(message_state::queued);
  auto b = add(message_state::sent);
  auto c = add(message_state::queued);
  auto d = add(message_state::held);
  auto e = add(message_state::queued);
  EXPECT_TRUE(s.claim_messages({}, "n1", 5).empty());
  // In the order asked, not the order of ids; unknown and unclaimable ones
  // are left out and left alone.
  auto claimed = s.claim_messages({c.id, a.id, b.id, e.id + 1000, d.id}, "n1",
                                  1'700'000'001'000);
  ASSERT_EQ(ids(claimed), (std::vector<std::int64_t>{c.id, a.id}));
  for (auto m : {c, a}) {
    auto expected = m;
    expected.state = message_state::sending;
    expected.node_id = "n1";
    expected.attempts = 2;
    expected.updated_at = 1'700'000'001'000;
    expect_same(claimed[m.id == c.id ? 0 : 1], expected);
    expect_same(*s.find_message(m.id), expected);
  }
  expect_same(*s.find_message(b.id), b);
  expect_same(*s.find_message(d.id), d);
  expect_same(*s.find_message(e.id), e);
  // An id given twice counts once.
  auto f = add(message_state::queued);
  EXPECT_EQ(ids(s.claim_messages({f.id, f.id}, "n1", 9)),
            (std::vector<std::int64_t>{f.id}));
  // Claimed already: a second batch gets only what is still queued.
  claimed = s.claim_messages({a.id, c.id, e.id}, "n2", 1'700'000'002'000);
  ASSERT_EQ(ids(claimed), (std::vector<std::int64_t>{e.id}));
  EXPECT_EQ(claimed[0].node_id, "n2");
  EXPECT_EQ(s.find_message(a.id)->node_id, "n1");
}

TYPED_TEST_P(StoreConformance, claim_for_sending_reads_the_opt_out_ledger) {
  auto& s = this->store();
  using engine::send_kind;
  auto add = [&](std::string to, send_kind kind) {
    auto m = make_message("CAledger", "n0");
    m.to = std::move(to);
    m.kind = kind;
    m.id = s.insert_message(m);
    return m;
  };
  auto opted_out = add("+15551230001", send_kind::text_back);
  auto other = add("+15551230002", send_kind::notification);
  auto answer = add("+15551230001", send_kind::compliance);
  auto back_in = add("+15551230003", send_kind::automated);
  s.save_opt_out({"acme", "+15551230001", true, 1, "STOP",
                  engine::opt_out_source::keyword, 1});
  s.save_opt_out({"acme", "+15551230003", false, 2, "START",
                  engine::opt_out_source::keyword, 2});
  // Another tenant's ledger says nothing about this tenant's recipients.
  s.save_opt_out({"globex", "+15551230002", true, 1, "STOP",
                  engine::opt_out_source::keyword, 1});
  auto claimed = s.claim_for_sending(
    {other.id, opted_out.id, answer.id, back_in.id, other.id + 1000}, "n1",
    1'700'000'001'000);
  ASSERT_EQ(claimed.size(), 4u);
  const std::vector<std::pair<std::int64_t, bool>> expected{
    {other.id, false},
    {opted_out.id, true},
    {answer.id, false}, // a compliance answer goes out regardless
    {back_in.id, false}};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(claimed[i].message.id, expected[i].first) << i;
    EXPECT_EQ(claimed[i].opted_out, expected[i].second) << i;
    EXPECT_EQ(claimed[i].message.state, engine::message_state::sending) << i;
    EXPECT_EQ(claimed[i].message.node_id, "n1") << i;
  }
  EXPECT_EQ(claimed[1].message.to, "+15551230001");
  // Claimed already: nothing to send.
  EXPECT_TRUE(s.claim_for_sending({opted_out.id}, "n2", 9).empty());
}

TYPED_TEST_P(StoreConformance, claim_messages_are_undone_by_a_rollback) {
  auto& s = this->store();
  auto a = make_message("CAbatch", "n0");
  a.id = s.insert_message(a);
  auto b = make_message("CAbatch", "n0");
  b.id = s.insert_message(b);
  s.begin();
  EXPECT_EQ(s.claim_messages({a.id, b.id}, "n1", 7).size(), 2u);
  s.rollback();
  expect_same(*s.find_message(a.id), a);
  expect_same(*s.find_message(b.id), b);
  s.begin();
  EXPECT_EQ(ids(s.claim_messages({b.id, a.id}, "n2", 8)),
            (std::vector<std::int64_t>{b.id, a.id}));
  s.commit();
  EXPECT_EQ(s.find_message(a.id)->state, engine::message_state::sending);
}

TYPED_TEST_P(StoreConformance, claim_messages_race_has_one_winner_per_message) {
  if (!TypeParam::shared)
    GTEST_SKIP() << "instances do not share a database";
  this->store();
  std::vector<std::unique_ptr<adapters::audited_store>> stores;
  for (int i = 0; i < 3; ++i)
    stores.push_back(this->open());
  for (int round = 0; round < 20; ++round) {
    std::vector<std::int64_t> batch;
    for (int n = 0; n < 12; ++n)
      batch.push_back(this->store().insert_message(make_message("CArace")));
    std::vector<std::vector<std::int64_t>> won(stores.size());
    auto errors = race(static_cast<int>(stores.size()), [&](int i) {
      auto& s = *stores[i];
      // Each process asks in its own order, in one transaction.
      auto mine = batch;
      std::rotate(mine.begin(), mine.begin() + 4 * i, mine.end());
      s.begin();
      won[i] = ids(s.claim_messages(mine, "p" + std::to_string(i), 10 + round));
      s.commit();
    });
    ASSERT_TRUE(errors.empty()) << errors.front();
    std::map<std::int64_t, std::string> winner;
    for (std::size_t i = 0; i < won.size(); ++i)
      for (auto id : won[i])
        EXPECT_TRUE(winner.emplace(id, "p" + std::to_string(i)).second)
          << "message " << id << " claimed twice, round " << round;
    ASSERT_EQ(winner.size(), batch.size()) << "round " << round;
    for (auto id : batch) {
      auto stored = this->store().find_message(id);
      ASSERT_TRUE(stored);
      EXPECT_EQ(stored->node_id, winner[id]);
      EXPECT_EQ(stored->attempts, 1);
      EXPECT_EQ(stored->state, engine::message_state::sending);
    }
  }
}

TYPED_TEST_P(StoreConformance, claim_message_race_has_one_winner) {
  if (!TypeParam::shared)
    GTEST_SKIP() << "instances do not share a database";
  this->store();
  std::vector<std::unique_ptr<adapters::audited_store>> stores;
  for (int i = 0; i < 3; ++i)
    stores.push_back(this->open());
  for (int round = 0; round < 60; ++round) {
    bool in_transactions = round % 2 == 1;
    auto id = this->store().insert_message(make_message("CArace"));
    std::vector<char> won(stores.size(), 0);
    auto errors = race(static_cast<int>(stores.size()), [&](int i) {
      auto& s = *stores[i];
      if (in_transactions)
        s.begin();
      won[i] = s.claim_message(id, "p" + std::to_string(i), 10 + round) ? 1 : 0;
      if (in_transactions)
        s.commit();
    });
    ASSERT_TRUE(errors.empty()) << errors.front();
    int winners = 0;
    std::string winner;
    for (std::size_t i = 0; i < won.size(); ++i)
      if (won[i] != 0) {
        ++winners;
        winner = "p" + std::to_string(i);
      }
    ASSERT_EQ(winners, 1) << "round " << round;
    auto stored = this->store().find_message(id);
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->node_id, winner);
    EXPECT_EQ(stored->attempts, 1);
    EXPECT_EQ(stored->state, engine::message_state::sending);
  }
}

TYPED_TEST_P(StoreConformance,
             release_held_requeues_the_due_messages_of_a_node) {
  auto& s = this->store();
  using engine::message_state;
  const engine::epoch_ms now = 1'700'000'100'000;
  auto add = [&](std::string node, message_state state,
                 engine::epoch_ms not_before) {
    auto m = make_message("CA1", std::move(node));
    m.state = state;
    m.not_before = not_before;
    m.reason = state == message_state::refused ? "opted_out" : "quiet_hours";
    m.error_message = "quiet hours: not urgent, held for 2 h until they end";
    m.attempts = 1;
    m.id = s.insert_message(m);
    return m;
  };
  auto due_a = add("n1", message_state::held, now - 5'000);
  auto later = add("n1", message_state::held, now + 1);
  auto due_b = add("n1", message_state::held, now); // due at now
  auto other_node = add("n2", message_state::held, now - 1);
  auto refused = add("n1", message_state::refused, now - 1);
  auto queued = add("n1", message_state::queued, now - 1);
  auto due_c = add("n1", message_state::held, now - 1);
  // Lowest ids first, at most `limit`.
  EXPECT_EQ(s.release_held("n1", now, 2),
            (std::vector<std::int64_t>{due_a.id, due_b.id}));
  auto expected = due_a;
  expected.state = message_state::queued;
  expected.not_before = 0;
  expected.reason.clear();
  expected.error_message.clear();
  expected.updated_at = now;
  expect_same(*s.find_message(due_a.id), expected);
  EXPECT_EQ(s.find_message(due_b.id)->state, message_state::queued);
  EXPECT_EQ(s.find_message(due_c.id)->state, message_state::held);
  EXPECT_TRUE(s.release_held("n1", now, 0).empty());
  EXPECT_EQ(s.find_message(due_c.id)->state, message_state::held);
  EXPECT_EQ(s.release_held("n1", now, 10),
            (std::vector<std::int64_t>{due_c.id}));
  EXPECT_TRUE(s.release_held("n1", now, 10).empty()); // nothing else due
  expect_same(*s.find_message(later.id), later);
  expect_same(*s.find_message(refused.id), refused);
  expect_same(*s.find_message(queued.id), queued);
  expect_same(*s.find_message(other_node.id), other_node);
  EXPECT_EQ(s.release_held("n1", now + 1, 10),
            (std::vector<std::int64_t>{later.id}));
  EXPECT_EQ(s.release_held("n2", now, 10),
            (std::vector<std::int64_t>{other_node.id}));
  // Released messages are claimable.
  EXPECT_TRUE(s.claim_message(due_b.id, "n1", now + 2));
}

TYPED_TEST_P(StoreConformance, a_page_round_trips_on_the_call_channel) {
  // An owner's page is an outbox message on the call channel: written,
  // claimed, updated with its CallSid and found by it like a text; its
  // channel never changes.
  auto& s = this->store();
  auto page = make_message("CA1");
  page.channel = engine::message_channel::call;
  page.kind = engine::send_kind::notification;
  page.purpose = "ai_takeover/#4";
  page.to = "+15550009999";
  page.body = "Emergency, conversation 3: water & <sparks> \"now\"";
  page.id = s.insert_message(page);
  auto text = make_message("CA1");
  text.id = s.insert_message(text);
  expect_same(*s.find_message(page.id), page);
  EXPECT_EQ(s.find_message(text.id)->channel, engine::message_channel::sms)
    << "a text by default";
  auto pending = s.pending_messages("n1");
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].channel, engine::message_channel::call);
  EXPECT_EQ(pending[1].channel, engine::message_channel::sms);
  auto claimed = s.claim_messages({page.id, text.id}, "n2", 1'700'000'001'000);
  ASSERT_EQ(claimed.size(), 2u);
  EXPECT_EQ(claimed[0].channel, engine::message_channel::call);
  EXPECT_EQ(claimed[1].channel, engine::message_channel::sms);
  auto placed = claimed[0];
  placed.state = engine::message_state::sent;
  placed.message_sid = "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  placed.sent_at = placed.updated_at = 1'700'000'002'000;
  placed.channel = engine::message_channel::sms; // ignored: not mutable
  s.update_message(placed);
  placed.channel = engine::message_channel::call;
  expect_same(*s.find_message(page.id), placed);
  expect_same(*s.find_message_by_sid("CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
              placed);
  auto of_call = s.messages_for_call("CA1");
  ASSERT_EQ(of_call.size(), 2u);
  expect_same(of_call[0], placed);
}

TYPED_TEST_P(StoreConformance, find_message_by_sid_finds_the_carriers_id) {
  auto& s = this->store();
  auto a = make_message("CA1");
  a.message_sid = "SM1";
  a.state = engine::message_state::sent;
  a.id = s.insert_message(a);
  auto b = make_message("CA2");
  b.message_sid = "SM2";
  b.id = s.insert_message(b);
  auto c = make_message("CA3");
  c.id = s.insert_message(c); // no MessageSid yet
  expect_same(*s.find_message_by_sid("SM1"), a);
  expect_same(*s.find_message_by_sid("SM2"), b);
  EXPECT_FALSE(s.find_message_by_sid("SM404"));
  EXPECT_FALSE(s.find_message_by_sid("")); // the empty sid is nobody's
  EXPECT_FALSE(s.find_message_by_sid("sm1"));
  c.message_sid = "SM3";
  s.update_message(c);
  expect_same(*s.find_message_by_sid("SM3"), c);
}

TYPED_TEST_P(StoreConformance, record_status_moves_a_message_forward_only) {
  auto& s = this->store();
  using engine::message_state;
  auto m = make_message("CA1");
  m.state = message_state::sent;
  m.message_sid = "SM1";
  m.sent_at = 1'000;
  m.id = s.insert_message(m);
  auto r = s.record_status(make_report("SM1", message_state::delivered, 2'000));
  EXPECT_TRUE(r.known);
  EXPECT_TRUE(r.applied);
  ASSERT_TRUE(r.message);
  auto expected = m;
  expected.state = message_state::delivered;
  expected.status_at = 2'000;
  expect_same(*r.message, expected);
  expect_same(*s.find_message(m.id), expected);
  // A late "sent" never moves it back; a repeated or another final report
  // changes nothing either.
  for (auto late : {make_report("SM1", message_state::sent, 1'500, "sent"),
                    make_report("SM1", message_state::delivered, 2'500),
                    make_report("SM1", message_state::undelivered, 3'000)}) {
    r = s.record_status(late);
    EXPECT_TRUE(r.known);
    EXPECT_FALSE(r.applied);
    ASSERT_TRUE(r.message);
    expect_same(*r.message, expected);
    expect_same(*s.find_message(m.id), expected);
  }
  EXPECT_EQ(s.status_reports("SM1").size(), 4u); // all kept for audit
  // A report with an error: the error is kept.
  auto n = make_message("CA2");
  n.state = message_state::sending;
  n.message_sid = "SM2";
  n.id = s.insert_message(n);
  auto failed = make_report("SM2", message_state::undelivered, 3'000);
  failed.error_code = 30003;
  failed.error_message = "Unreachable destination handset";
  r = s.record_status(failed);
  EXPECT_TRUE(r.applied);
  auto stored = *s.find_message(n.id);
  EXPECT_EQ(stored.state, message_state::undelivered);
  EXPECT_EQ(stored.error_code, 30003);
  EXPECT_EQ(stored.error_message, "Unreachable destination handset");
  EXPECT_EQ(stored.status_at, 3'000);
  expect_same(*r.message, stored);
  // A report without an error leaves an earlier attempt's error alone.
  auto retried = make_message("CA3");
  retried.state = message_state::sending;
  retried.message_sid = "SM3";
  retried.error_code = 20429;
  retried.error_message = "Too Many Requests";
  retried.id = s.insert_message(retried);
  r = s.record_status(make_report("SM3", message_state::sent, 4'000, "queued"));
  EXPECT_TRUE(r.applied);
  stored = *s.find_message(retried.id);
  EXPECT_EQ(stored.state, message_state::sent);
  EXPECT_EQ(stored.error_code, 20429);
  EXPECT_EQ(stored.error_message, "Too Many Requests");
  EXPECT_EQ(stored.status_at, 4'000);
  // Held and refused messages have no MessageSid; the empty one is nobody's.
  r = s.record_status(make_report("", message_state::delivered, 5'000));
  EXPECT_FALSE(r.known);
  EXPECT_FALSE(r.applied);
  EXPECT_FALSE(r.message);
}

TYPED_TEST_P(StoreConformance, status_reports_are_kept_oldest_first) {
  auto& s = this->store();
  using engine::message_state;
  auto failed = make_report("SM1", message_state::failed, 3'000, "canceled");
  failed.error_code = 30008;
  failed.error_message = "Unknown error: \"quoted\" 'single' Grüße";
  s.record_status(failed);
  s.record_status(make_report("SM1", message_state::sent, 1'000, "accepted"));
  s.record_status(make_report("SM2", message_state::delivered, 2'000));
  s.record_status(make_report("SM1", message_state::sent, 1'000, "sending"));
  auto xs = s.status_reports("SM1");
  ASSERT_EQ(xs.size(), 3u);
  EXPECT_EQ(xs[0].carrier_status, "accepted");
  EXPECT_EQ(xs[1].carrier_status, "sending"); // same time: arrival order
  EXPECT_EQ(xs[2].message_sid, "SM1");
  EXPECT_EQ(xs[2].carrier_status, "canceled");
  EXPECT_EQ(xs[2].state, message_state::failed);
  EXPECT_EQ(xs[2].error_code, 30008);
  EXPECT_EQ(xs[2].error_message, failed.error_message);
  EXPECT_EQ(xs[2].at, 3'000);
  EXPECT_EQ(s.status_reports("SM2").size(), 1u);
  EXPECT_TRUE(s.status_reports("SM404").empty());
}

TYPED_TEST_P(StoreConformance,
             a_report_that_overtook_the_send_is_applied_by_update_message) {
  auto& s = this->store();
  using engine::message_state;
  auto m = make_message("CA1");
  m.state = message_state::sending;
  m.attempts = 1;
  m.id = s.insert_message(m);
  // The status callbacks arrive before the API's answer.
  auto r = s.record_status(make_report("SM9", message_state::delivered, 1'200));
  EXPECT_FALSE(r.known);
  EXPECT_FALSE(r.applied);
  EXPECT_FALSE(r.message);
  r = s.record_status(make_report("SM9", message_state::sent, 900, "queued"));
  EXPECT_FALSE(r.known);
  EXPECT_EQ(s.status_reports("SM9").size(), 2u);
  EXPECT_FALSE(s.find_message_by_sid("SM9"));
  expect_same(*s.find_message(m.id), m);
  // The API's answer gives the message that MessageSid.
  auto sent = m;
  sent.state = message_state::sent;
  sent.message_sid = "SM9";
  sent.sent_at = 1'300;
  sent.updated_at = 1'300;
  s.update_message(sent);
  auto expected = sent;
  expected.state = message_state::delivered;
  expected.status_at = 1'200;
  expect_same(*s.find_message(m.id), expected);
  // An update that knows nothing of the reports does not move it back.
  sent.updated_at = 1'400;
  s.update_message(sent);
  expected.updated_at = 1'400;
  expect_same(*s.find_message(m.id), expected);
  // The first report applies now: known.
  r = s.record_status(make_report("SM9", message_state::delivered, 1'500));
  EXPECT_TRUE(r.known);
  EXPECT_FALSE(r.applied);
  // An error reported early is applied with its code.
  auto n = make_message("CA2");
  n.state = message_state::sending;
  n.id = s.insert_message(n);
  auto undelivered = make_report("SM8", message_state::undelivered, 2'000);
  undelivered.error_code = 30007;
  undelivered.error_message = "Message filtered";
  s.record_status(undelivered);
  n.state = message_state::sent;
  n.message_sid = "SM8";
  s.update_message(n);
  auto stored = *s.find_message(n.id);
  EXPECT_EQ(stored.state, message_state::undelivered);
  EXPECT_EQ(stored.error_code, 30007);
  EXPECT_EQ(stored.error_message, "Message filtered");
  EXPECT_EQ(stored.status_at, 2'000);
  // A message given a MessageSid nobody reported on stays as written.
  auto o = make_message("CA3");
  o.id = s.insert_message(o);
  o.state = message_state::sent;
  o.message_sid = "SM7";
  s.update_message(o);
  expect_same(*s.find_message(o.id), o);
}

TYPED_TEST_P(StoreConformance, a_report_racing_the_send_answer_is_never_lost) {
  // The status callback (one process) and the API's answer (another) race;
  // whichever comes second must see the first.
  if (!TypeParam::shared)
    GTEST_SKIP() << "instances do not share a database";
  this->store();
  auto a = this->open();
  auto b = this->open();
  for (int round = 0; round < 60; ++round) {
    bool in_transactions = round % 2 == 1;
    auto m = make_message("CArace");
    m.state = engine::message_state::sending;
    m.id = this->store().insert_message(m);
    auto sid = "SMrace" + std::to_string(round);
    auto errors = race(2, [&](int i) {
      auto& s = i == 0 ? *a : *b;
      if (in_transactions)
        s.begin();
      if (i == 0) {
        auto sent = m;
        sent.state = engine::message_state::sent;
        sent.message_sid = sid;
        sent.sent_at = 5;
        s.update_message(sent);
      } else {
        s.record_status(make_report(sid, engine::message_state::delivered, 7));
      }
      if (in_transactions)
        s.commit();
    });
    ASSERT_TRUE(errors.empty()) << errors.front();
    auto stored = this->store().find_message(m.id);
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->state, engine::message_state::delivered)
      << "round " << round;
    EXPECT_EQ(stored->status_at, 7);
    EXPECT_EQ(stored->sent_at, 5);
  }
}

TYPED_TEST_P(StoreConformance, caller_rate_counts_calls_up_to_the_texted_one) {
  auto& s = this->store();
  const engine::epoch_ms now = 1'700'000'100'000;
  const std::string phone = "+15551230009";
  for (int i = 1; i <= 4; ++i) {
    auto c = make_call("CArate" + std::to_string(i));
    c.tenant_id = "acme";
    c.from = phone;
    c.started_at = now - 40'000 + i * 1'000; // all four within the minute
    ASSERT_TRUE(s.insert_call(c));
  }
  engine::gate_query q;
  q.tenant_id = "acme";
  q.phone = phone;
  q.now = now;
  q.caller_rate_window = std::chrono::minutes{1};
  EXPECT_EQ(s.gate_facts_for(q).calls_in_rate_window, 4) << "no call: all";
  // The 2nd call's text-back, decided after all four started: the calls
  // after it do not count.
  q.call_sid = "CArate2";
  EXPECT_EQ(s.gate_facts_for(q).calls_in_rate_window, 2);
  q.call_sid = "CArate4";
  EXPECT_EQ(s.gate_facts_for(q).calls_in_rate_window, 4);
  q.call_sid = "CAunknown";
  EXPECT_EQ(s.gate_facts_for(q).calls_in_rate_window, 4);
}

TYPED_TEST_P(StoreConformance, gate_facts_count_within_each_window) {
  auto& s = this->store();
  using engine::message_state;
  using engine::send_kind;
  const engine::epoch_ms now = 1'700'000'100'000;
  const engine::epoch_ms hour = 3'600'000;
  const engine::epoch_ms day = 86'400'000;
  const engine::epoch_ms loop = 600'000;
  const engine::epoch_ms rate = 60'000;
  const std::string phone = "+15551230001";
  const std::string other_phone = "+15551230002";
  engine::gate_query q;
  q.tenant_id = "acme";
  q.phone = phone;
  q.now = now;
  q.repeat_caller_window = std::chrono::milliseconds{day};
  q.loop_window = std::chrono::milliseconds{loop};
  q.caller_rate_window = std::chrono::milliseconds{rate};
  auto message = [&](send_kind kind, engine::epoch_ms created_at,
                     message_state state = message_state::sent,
                     std::string tenant = "acme", std::string to = "") {
    auto m = make_message("CA1");
    m.kind = kind;
    m.created_at = created_at;
    m.state = state;
    m.tenant_id = std::move(tenant);
    m.to = to.empty() ? phone : to;
    s.insert_message(m);
  };
  int inbound = 0;
  auto received = [&](engine::epoch_ms at, std::string tenant = "acme",
                      std::string from = "") {
    engine::inbound_message m{"SMin" + std::to_string(++inbound),
                              std::move(tenant),
                              from.empty() ? phone : from,
                              "+15557650002",
                              "hi",
                              at};
    ASSERT_TRUE(s.insert_inbound(m));
  };
  int calls = 0;
  auto called = [&](engine::epoch_ms at, std::string tenant = "acme",
                    std::string from = "") {
    auto c = make_call("CAgate" + std::to_string(++calls));
    c.started_at = at;
    c.tenant_id = std::move(tenant);
    c.from = from.empty() ? phone : from;
    ASSERT_TRUE(s.insert_call(c));
  };
  struct expected_facts {
    bool opted_out = false;
    std::optional<engine::epoch_ms> last_text_back_at;
    std::int32_t automated = 0;
    std::int32_t exchanged = 0;
    std::int32_t calls = 0;
  } e;
  auto check = [&](const char* step) {
    SCOPED_TRACE(step);
    auto f = s.gate_facts_for(q);
    EXPECT_EQ(f.opted_out, e.opted_out);
    EXPECT_EQ(f.last_text_back_at, e.last_text_back_at);
    EXPECT_EQ(f.automated_last_hour, e.automated);
    EXPECT_EQ(f.exchanged_in_loop_window, e.exchanged);
    EXPECT_EQ(f.calls_in_rate_window, e.calls);
    // Not the store's to know.
    EXPECT_FALSE(f.own_number);
    EXPECT_FALSE(f.other_tenant_number);
    EXPECT_FALSE(f.quiet_hours_end);
  };
  check("nothing stored");
  message(send_kind::text_back, now - day); // the window's start: outside
  check("text-back just outside the repeat-caller window");
  message(send_kind::text_back, now - day + 1);
  e.last_text_back_at = now - day + 1;
  check("text-back just inside the repeat-caller window");
  message(send_kind::text_back, now - 5, message_state::refused);
  message(send_kind::automated, now - 4, message_state::refused);
  check("refused messages do not count");
  message(send_kind::automated, now - hour);
  check("automated message just outside the hour");
  message(send_kind::automated, now - hour + 1);
  e.automated = 1;
  check("automated message just inside the hour");
  message(send_kind::compliance, now - loop);
  check("message just outside the loop window");
  message(send_kind::relayed, now - loop + 1);
  e.exchanged = 1;
  check("relayed message just inside the loop window: not automated");
  message(send_kind::automated, now - 1, message_state::held);
  e.automated = 2;
  e.exchanged = 2;
  check("a held message counts");
  message(send_kind::notification, now - 3, message_state::queued);
  e.exchanged = 3;
  check("a notification is exchanged, not automated");
  received(now - loop);
  received(now - 1, "beta");
  received(now - 1, "acme", other_phone);
  check("inbound messages outside the window or of others");
  received(now - loop + 1);
  e.exchanged = 4;
  check("inbound message just inside the loop window");
  called(now - rate);
  called(now, "beta");
  called(now, "acme", other_phone);
  check("calls outside the window or of others");
  called(now - rate + 1);
  called(now); // the call that triggered the message
  e.calls = 2;
  check("calls inside the caller-rate window");
  message(send_kind::text_back, now - 1, message_state::sent, "beta");
  message(send_kind::text_back, now - 1, message_state::sent, "acme",
          other_phone);
  check("messages of another tenant or to another phone");
  message(send_kind::text_back, now + 5'000); // another process's clock
  e.last_text_back_at = now + 5'000;
  e.automated = 3;
  e.exchanged = 5;
  check("a message stamped ahead of now counts");
  s.save_opt_out(
    {"beta", phone, true, 10, "STOP", engine::opt_out_source::keyword, 10});
  check("another tenant's opt-out");
  s.save_opt_out(
    {"acme", phone, true, 20, "STOP", engine::opt_out_source::keyword, 20});
  e.opted_out = true;
  check("opted out");
  s.save_opt_out(
    {"acme", phone, false, 30, "START", engine::opt_out_source::keyword, 30});
  e.opted_out = false;
  check("opted back in");
  // Shorter windows count less.
  q.repeat_caller_window = std::chrono::milliseconds{1'000};
  q.loop_window = std::chrono::milliseconds{2};
  q.caller_rate_window = std::chrono::milliseconds{0};
  e.exchanged = 2; // the held one at now - 1 and the one ahead of now
  e.calls = 0;
  check("shorter windows");
}

TYPED_TEST_P(StoreConformance, gate_facts_wait_for_a_transaction_on_them) {
  // Two processes about to text the same caller: the second asks only once
  // the first committed its text-back, and sees it.
  if (!TypeParam::shared)
    GTEST_SKIP() << "instances do not share a database";
  this->store();
  auto a = this->open();
  auto b = this->open();
  engine::gate_query q;
  q.tenant_id = "acme";
  q.phone = "+15551230001";
  q.now = 1'700'000'100'000;
  a->begin();
  EXPECT_FALSE(a->gate_facts_for(q).last_text_back_at);
  auto m = make_message("CA1");
  m.kind = engine::send_kind::text_back;
  m.to = q.phone;
  m.created_at = q.now;
  a->insert_message(m);
  std::thread committer{[&] {
    std::this_thread::sleep_for(std::chrono::milliseconds{150});
    a->commit();
  }};
  auto started = std::chrono::steady_clock::now();
  b->begin();
  auto facts = b->gate_facts_for(q);
  b->commit();
  auto waited = std::chrono::steady_clock::now() - started;
  committer.join();
  EXPECT_EQ(facts.last_text_back_at, q.now);
  EXPECT_EQ(facts.automated_last_hour, 1);
  EXPECT_GE(waited, std::chrono::milliseconds{100});
}

TYPED_TEST_P(StoreConformance, the_opt_out_ledger_round_trips) {
  auto& s = this->store();
  using engine::opt_out_source;
  const std::string alice = "+15551230001";
  const std::string bob = "+15551230002";
  EXPECT_FALSE(s.find_opt_out("acme", alice));
  engine::opt_out_state stop{"acme", alice,  true,
                             1'000,  "STOP", opt_out_source::keyword,
                             1'000};
  s.save_opt_out(stop);
  expect_same(*s.find_opt_out("acme", alice), stop);
  EXPECT_FALSE(s.find_opt_out("beta", alice)); // per tenant
  EXPECT_FALSE(s.find_opt_out("acme", bob));   // per phone
  // Replaced as a whole.
  engine::opt_out_state start{"acme", alice,   false,
                              2'000,  "START", opt_out_source::keyword,
                              2'500};
  s.save_opt_out(start);
  expect_same(*s.find_opt_out("acme", alice), start);
  // A no-op START on a phone that never opted out: only ordering moved on.
  engine::opt_out_state noop{"acme", "+15550000003",       false, 0,
                             "",     opt_out_source::none, 500};
  s.save_opt_out(noop);
  expect_same(*s.find_opt_out("acme", noop.phone), noop);
  engine::opt_out_state carrier{"acme", bob,     true,
                                3'000,  "21610", opt_out_source::carrier,
                                3'000};
  s.save_opt_out(carrier);
  expect_same(*s.find_opt_out("acme", bob), carrier);
  s.save_opt_out(
    {"beta", alice, true, 4'000, "QUIT", opt_out_source::keyword, 4'000});
  // The opted-out entries of a tenant, by phone (bytewise).
  auto list = s.opted_out("acme");
  ASSERT_EQ(list.size(), 1u);
  expect_same(list[0], carrier);
  engine::opt_out_state first{"acme",    "+15550000001",          true, 5'000,
                              "STOPALL", opt_out_source::keyword, 5'000};
  s.save_opt_out(first);
  list = s.opted_out("acme");
  ASSERT_EQ(list.size(), 2u);
  expect_same(list[0], first);
  expect_same(list[1], carrier);
  EXPECT_EQ(s.opted_out("beta").size(), 1u);
  EXPECT_TRUE(s.opted_out("nobody").empty());
}

TYPED_TEST_P(StoreConformance, messaging_calls_before_migrate_throw) {
  auto s = this->open();
  engine::gate_query q;
  q.tenant_id = "acme";
  q.phone = "+15551230001";
  auto starts = [&](std::string_view op, const std::function<void()>& f) {
    auto what = error_of(f);
    EXPECT_EQ(what.rfind(this->message(op, ""), 0), 0u) << what;
  };
  starts("claim_message", [&] { s->claim_message(1, "n1", 1); });
  starts("claim_message", [&] { s->claim_messages({1}, "n1", 1); });
  starts("release_held", [&] { s->release_held("n1", 1, 10); });
  starts("find_message_by_sid", [&] { s->find_message_by_sid("SM1"); });
  starts("record_status", [&] {
    s->record_status(make_report("SM1", engine::message_state::sent, 1));
  });
  starts("status_reports", [&] { s->status_reports("SM1"); });
  starts("gate_facts_for", [&] { s->gate_facts_for(q); });
  starts("find_opt_out", [&] { s->find_opt_out("acme", "+1555"); });
  engine::opt_out_state entry;
  entry.tenant_id = "acme";
  entry.phone = "+15551230001";
  starts("save_opt_out", [&] { s->save_opt_out(entry); });
  starts("opted_out", [&] { s->opted_out("acme"); });
}

TYPED_TEST_P(StoreConformance, messaging_writes_roll_back_together) {
  auto& s = this->store();
  auto queued = make_message("CA1");
  queued.id = s.insert_message(queued);
  auto held = make_message("CA1");
  held.state = engine::message_state::held;
  held.not_before = 10;
  held.id = s.insert_message(held);
  auto sent = make_message("CA1");
  sent.state = engine::message_state::sent;
  sent.message_sid = "SM1";
  sent.id = s.insert_message(sent);
  s.begin();
  EXPECT_TRUE(s.claim_message(queued.id, "n1", 20));
  EXPECT_EQ(s.release_held("n1", 20, 10), (std::vector<std::int64_t>{held.id}));
  EXPECT_TRUE(
    s.record_status(make_report("SM1", engine::message_state::delivered, 30))
      .applied);
  s.save_opt_out({"acme", "+15551230001", true, 40, "STOP",
                  engine::opt_out_source::keyword, 40});
  EXPECT_EQ(s.find_message(queued.id)->state, engine::message_state::sending);
  s.rollback();
  expect_same(*s.find_message(queued.id), queued);
  expect_same(*s.find_message(held.id), held);
  expect_same(*s.find_message(sent.id), sent);
  EXPECT_TRUE(s.status_reports("SM1").empty());
  EXPECT_FALSE(s.find_opt_out("acme", "+15551230001"));
}

// -- inbound messages, contacts, tenants
// ---------------------------------------

/// An inbound text as the event sink stores one: node n1, both consumers
/// pending.
inline engine::inbound_message
pending_text(std::string sid, engine::epoch_ms at, std::string node = "n1",
             std::string tenant = "acme") {
  engine::inbound_message m{std::move(sid), std::move(tenant), "+15551230001",
                            "+15557650002", "on my way?",      at};
  m.node_id = std::move(node);
  m.pending = engine::inbound_all_consumers;
  return m;
}

TYPED_TEST_P(StoreConformance, an_inbound_text_is_consumed_once_per_consumer) {
  auto& s = this->store();
  ASSERT_TRUE(s.insert_inbound(pending_text("SM1", 1'700'000'000'000)));
  auto found = s.find_inbound("SM1");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->node_id, "n1");
  EXPECT_EQ(found->pending, engine::inbound_all_consumers);
  using claim = engine::inbound_claim;
  EXPECT_EQ(s.consume_inbound("SM1", engine::inbound_conversations),
            claim::claimed);
  EXPECT_EQ(s.consume_inbound("SM1", engine::inbound_conversations),
            claim::done_before);
  EXPECT_EQ(s.find_inbound("SM1")->pending, engine::inbound_runs);
  EXPECT_EQ(s.consume_inbound("SM1", engine::inbound_runs), claim::claimed);
  EXPECT_EQ(s.consume_inbound("SM1", engine::inbound_runs), claim::done_before);
  EXPECT_EQ(s.find_inbound("SM1")->pending, 0);
  EXPECT_EQ(s.consume_inbound("SM404", engine::inbound_runs), claim::unknown);
  // A keyword's row waits for nobody.
  auto stop = pending_text("SM2", 1'700'000'000'001);
  stop.pending = 0;
  ASSERT_TRUE(s.insert_inbound(stop));
  EXPECT_EQ(s.consume_inbound("SM2", engine::inbound_conversations),
            claim::done_before);
}

TYPED_TEST_P(StoreConformance,
             a_consumed_text_is_pending_again_after_restore_or_rollback) {
  auto& s = this->store();
  ASSERT_TRUE(s.insert_inbound(pending_text("SM1", 1'700'000'000'000)));
  using claim = engine::inbound_claim;
  // A consumer whose write lost a race gives its claim back.
  s.begin();
  EXPECT_EQ(s.consume_inbound("SM1", engine::inbound_conversations),
            claim::claimed);
  s.restore_inbound("SM1", engine::inbound_conversations);
  s.commit();
  EXPECT_EQ(s.find_inbound("SM1")->pending, engine::inbound_all_consumers);
  // A transaction that fails takes its claim with it.
  s.begin();
  EXPECT_EQ(s.consume_inbound("SM1", engine::inbound_runs), claim::claimed);
  s.rollback();
  EXPECT_EQ(s.find_inbound("SM1")->pending, engine::inbound_all_consumers);
  s.restore_inbound("SM1", engine::inbound_runs); // set already: unchanged
  EXPECT_EQ(s.find_inbound("SM1")->pending, engine::inbound_all_consumers);
  s.restore_inbound("SM404", engine::inbound_runs); // no row: nothing
  EXPECT_FALSE(s.find_inbound("SM404"));
}

TYPED_TEST_P(StoreConformance,
             pending_inbound_finds_this_nodes_texts_and_orphans) {
  auto& s = this->store();
  const engine::epoch_ms t = 1'700'000'000'000;
  ASSERT_TRUE(s.insert_inbound(pending_text("SM1", t + 10)));       // mine
  ASSERT_TRUE(s.insert_inbound(pending_text("SM2", t + 20, "n2"))); // recent
  ASSERT_TRUE(s.insert_inbound(pending_text("SM3", t + 5, "n2")));  // orphan
  ASSERT_TRUE(s.insert_inbound(pending_text("SM4", t + 1)));        // too old
  ASSERT_TRUE(s.insert_inbound(pending_text("SM5", t + 12, "n1", "beta")));
  ASSERT_TRUE(s.insert_inbound(pending_text("SM6", t + 11)));
  ASSERT_EQ(s.consume_inbound("SM6", engine::inbound_conversations),
            engine::inbound_claim::claimed);
  ASSERT_EQ(s.consume_inbound("SM6", engine::inbound_runs),
            engine::inbound_claim::claimed); // done
  ASSERT_TRUE(s.insert_inbound(pending_text("SM7", t + 10)));
  ASSERT_EQ(s.consume_inbound("SM7", engine::inbound_runs),
            engine::inbound_claim::claimed); // half done
  auto sids = [](const std::vector<engine::inbound_message>& xs) {
    std::vector<std::string> out;
    for (const auto& m : xs)
      out.push_back(m.message_sid + ":" + std::to_string(m.pending));
    return out;
  };
  using list = std::vector<std::string>;
  EXPECT_EQ(sids(s.pending_inbound("acme", "n1", t + 1, t + 15, 100)),
            (list{"SM3:3", "SM1:3", "SM7:1"}));
  EXPECT_EQ(sids(s.pending_inbound("acme", "n1", t + 1, t + 15, 2)),
            (list{"SM3:3", "SM1:3"}));
  EXPECT_EQ(sids(s.pending_inbound("acme", "n2", t + 1, t + 6, 100)),
            (list{"SM3:3", "SM2:3"}));
  EXPECT_EQ(sids(s.pending_inbound("beta", "n1", 0, 0, 100)), (list{"SM5:3"}));
  EXPECT_TRUE(s.pending_inbound("acme", "n3", t + 1, t + 5, 100).empty());
}

TYPED_TEST_P(StoreConformance, two_processes_never_both_claim_a_text) {
  if (!TypeParam::shared)
    GTEST_SKIP() << "instances do not share a database";
  auto a = this->open();
  auto b = this->open();
  adapters::audited_store* racers[] = {a.get(), b.get()};
  constexpr int rounds = 100;
  int claimed_both = 0;
  int claimed_none = 0;
  for (int round = 0; round < rounds; ++round) {
    auto sid = "SMrace" + std::to_string(round);
    ASSERT_TRUE(this->store().insert_inbound(pending_text(sid, 1 + round)));
    bool claimed[2] = {false, false};
    auto errors = race(2, [&](int i) {
      auto& s = *racers[i];
      s.begin();
      claimed[i] = s.consume_inbound(sid, engine::inbound_conversations)
                   == engine::inbound_claim::claimed;
      s.commit();
    });
    ASSERT_TRUE(errors.empty()) << errors.front();
    claimed_both += claimed[0] && claimed[1];
    claimed_none += !claimed[0] && !claimed[1];
  }
  EXPECT_EQ(claimed_both, 0);
  EXPECT_EQ(claimed_none, 0);
}

TYPED_TEST_P(StoreConformance, insert_inbound_once_per_message_sid) {
  auto& s = this->store();
  engine::inbound_message m{"SM1",          "acme", "+15551230001",
                            "+15557650002", "STOP", 1'700'000'000'000};
  EXPECT_TRUE(s.insert_inbound(m));
  auto again = m;
  again.body = "changed";
  EXPECT_FALSE(s.insert_inbound(again));
  auto found = s.find_inbound("SM1");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->message_sid, "SM1");
  EXPECT_EQ(found->tenant_id, "acme");
  EXPECT_EQ(found->from, m.from);
  EXPECT_EQ(found->to, m.to);
  EXPECT_EQ(found->body, "STOP");
  EXPECT_EQ(found->received_at, m.received_at);
  EXPECT_FALSE(s.find_inbound("SM404"));
}

TYPED_TEST_P(StoreConformance, touch_contact_keeps_first_and_last_contact) {
  auto& s = this->store();
  EXPECT_FALSE(s.find_contact("acme", "+15551230001"));
  s.touch_contact("acme", "+15551230001", 1000);
  auto c = s.find_contact("acme", "+15551230001");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->tenant_id, "acme");
  EXPECT_EQ(c->phone, "+15551230001");
  EXPECT_EQ(c->first_seen, 1000);
  EXPECT_EQ(c->last_seen, 1000);
  s.touch_contact("acme", "+15551230001", 5000);
  s.touch_contact("acme", "+15551230001", 3000); // late, out of order
  c = s.find_contact("acme", "+15551230001");
  EXPECT_EQ(c->first_seen, 1000);
  EXPECT_EQ(c->last_seen, 5000);
  s.touch_contact("acme", "+15551230001", 500);
  EXPECT_EQ(s.find_contact("acme", "+15551230001")->first_seen, 500);
  s.touch_contact("other", "+15551230001", 7000); // per tenant
  EXPECT_EQ(s.find_contact("other", "+15551230001")->first_seen, 7000);
  EXPECT_EQ(s.find_contact("acme", "+15551230001")->last_seen, 5000);
}

TYPED_TEST_P(StoreConformance, upsert_tenant_replaces_its_numbers) {
  auto& s = this->store();
  using engine::number_kind;
  engine::tenant t{"acme",
                   "Acme Plumbing",
                   {{"+15557650002", number_kind::long_code, 1.0},
                    {"+18005550100", number_kind::toll_free, 3.0}},
                   "+15550009999",
                   "America/New_York"};
  s.upsert_tenant(t);
  auto found = s.find_tenant("acme");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->name, "Acme Plumbing");
  EXPECT_EQ(found->owner_phone, "+15550009999");
  EXPECT_EQ(found->timezone, "America/New_York");
  ASSERT_EQ(found->numbers.size(), 2u);
  EXPECT_EQ(found->numbers[0].number, "+15557650002");
  EXPECT_EQ(found->numbers[1].kind, number_kind::toll_free);
  EXPECT_EQ(found->numbers[1].mps, 3.0);
  // Changed fields, one number dropped, one added, one kept with a new pace.
  t.name = "Acme Plumbing & Heating";
  t.timezone = "America/Chicago";
  t.numbers = {{"+15557650002", number_kind::long_code, 0.25},
               {"12345", number_kind::short_code, 100.0}};
  s.upsert_tenant(t);
  found = s.find_tenant("acme");
  EXPECT_EQ(found->name, "Acme Plumbing & Heating");
  EXPECT_EQ(found->timezone, "America/Chicago");
  ASSERT_EQ(found->numbers.size(), 2u);
  EXPECT_EQ(found->numbers[0].number, "+15557650002");
  EXPECT_EQ(found->numbers[0].mps, 0.25);
  EXPECT_EQ(found->numbers[1].number, "12345");
  EXPECT_EQ(found->numbers[1].kind, number_kind::short_code);
  // A number given to another tenant moves there.
  s.upsert_tenant({"beta",
                   "Beta",
                   {{"12345", number_kind::short_code, 50.0}},
                   "+15550008888",
                   "UTC"});
  EXPECT_EQ(s.find_tenant("acme")->numbers.size(), 1u);
  EXPECT_EQ(s.find_tenant("beta")->numbers.at(0).mps, 50.0);
  // No numbers at all.
  t.numbers.clear();
  s.upsert_tenant(t);
  EXPECT_TRUE(s.find_tenant("acme")->numbers.empty());
  EXPECT_FALSE(s.find_tenant("nobody"));
}

// -- transactions -------------------------------------------------------------

TYPED_TEST_P(StoreConformance, commit_publishes_the_writes) {
  auto& s = this->store();
  s.begin();
  ASSERT_TRUE(s.insert_call(make_call("CA1")));
  auto id = s.insert_message(make_message("CA1"));
  s.touch_contact("acme", "+15551230001", 1);
  EXPECT_TRUE(s.find_call("CA1")); // a transaction reads its own writes
  if (TypeParam::shared) {
    auto other = this->open();
    EXPECT_FALSE(other->find_call("CA1")); // not committed yet
  }
  s.commit();
  EXPECT_TRUE(s.find_call("CA1"));
  EXPECT_TRUE(s.find_message(id));
  if (TypeParam::shared) {
    auto other = this->open();
    EXPECT_TRUE(other->find_call("CA1"));
    EXPECT_TRUE(other->find_contact("acme", "+15551230001"));
  }
}

TYPED_TEST_P(StoreConformance, rollback_discards_the_writes) {
  auto& s = this->store();
  ASSERT_TRUE(s.insert_call(make_call("CAkept")));
  s.begin();
  ASSERT_TRUE(s.insert_call(make_call("CA1")));
  auto decided = make_call("CAkept");
  decided.phase = engine::call_phase::missed;
  ASSERT_TRUE(s.decide_outcome(decided));
  auto id = s.insert_message(make_message("CA1"));
  s.insert_webhook({"acme", "voice", "CA1", "/v", "b", "s", false, 1});
  EXPECT_TRUE(s.insert_inbound({"SM1", "acme", "a", "b", "c", 1}));
  s.touch_contact("acme", "+15551230001", 1);
  s.upsert_tenant({"acme", "Acme", {}, "+1555", "UTC"});
  s.rollback();
  EXPECT_FALSE(s.find_call("CA1"));
  EXPECT_EQ(s.find_call("CAkept")->phase, engine::call_phase::ringing);
  EXPECT_FALSE(s.find_message(id));
  EXPECT_TRUE(s.webhooks_for("CA1").empty());
  EXPECT_FALSE(s.find_inbound("SM1"));
  EXPECT_FALSE(s.find_contact("acme", "+15551230001"));
  EXPECT_FALSE(s.find_tenant("acme"));
  // The store works on after a rollback.
  s.begin();
  EXPECT_TRUE(s.insert_call(make_call("CA1")));
  s.commit();
  EXPECT_TRUE(s.find_call("CA1"));
}

TYPED_TEST_P(StoreConformance, transaction_misuse_is_reported) {
  auto& s = this->store();
  EXPECT_EQ(error_of([&] { s.commit(); }),
            this->message("commit", "no transaction is open"));
  s.rollback(); // no-op
  s.begin();
  EXPECT_EQ(error_of([&] { s.begin(); }),
            this->message("begin", "a transaction is already open"));
  EXPECT_EQ(error_of([&] { s.migrate(); }),
            this->message("migrate", "cannot run inside a transaction"));
  s.rollback();
  s.begin();
  EXPECT_TRUE(s.insert_call(make_call("CA1")));
  s.commit();
  EXPECT_TRUE(s.find_call("CA1"));
}

TYPED_TEST_P(StoreConformance, an_error_aborts_the_transaction) {
  auto& s = this->store();
  s.begin();
  ASSERT_TRUE(s.insert_call(make_call("CA1")));
  // A write whose result nothing reads at once may report its error at the
  // transaction's next statement (PostgreSQL sends it with that one), still
  // naming its own operation.
  EXPECT_EQ(error_of([&] {
              s.update_call(make_call("CA404"));
              s.find_call("CA1");
            }),
            this->message("update_call", "unknown CallSid 'CA404'"));
  EXPECT_EQ(error_of([&] { s.insert_message(make_message("CA1")); }),
            this->message("insert_message",
                          "the transaction was aborted by an earlier error; "
                          "call rollback()"));
  EXPECT_EQ(error_of([&] { s.commit(); }),
            this->message("commit", "the transaction was aborted by an "
                                    "earlier error; rolled back"));
  s.rollback(); // no-op: commit already rolled back
  EXPECT_FALSE(s.find_call("CA1"));
  // Same with an explicit rollback.
  s.begin();
  ASSERT_TRUE(s.insert_call(make_call("CA1")));
  EXPECT_THROW(s.update_message(make_message("CA1")), engine::port_error);
  EXPECT_THROW(s.find_call("CA1"), engine::port_error);
  s.rollback();
  EXPECT_FALSE(s.find_call("CA1"));
  // Outside a transaction an error affects only its own call.
  EXPECT_THROW(s.update_call(make_call("CA404")), engine::port_error);
  EXPECT_TRUE(s.insert_call(make_call("CA1")));
}

TYPED_TEST_P(StoreConformance, group_commit_of_many_writes) {
  auto& s = this->store();
  constexpr int n = 250;
  s.begin();
  for (int i = 0; i < n; ++i) {
    auto sid = "CA" + std::to_string(i);
    ASSERT_TRUE(s.insert_call(make_call(sid)));
    s.insert_webhook({"acme", "voice", sid, "/v", "body", "sig", false, i});
    s.insert_message(make_message(sid));
    s.touch_contact("acme", "+1555" + std::to_string(i % 10), i);
  }
  s.commit();
  EXPECT_EQ(s.unfinished_calls("n1", 0).size(), static_cast<std::size_t>(n));
  EXPECT_EQ(s.pending_messages("n1").size(), static_cast<std::size_t>(n));
  EXPECT_EQ(s.webhooks_for("CA17").size(), 1u);
  EXPECT_EQ(s.find_contact("acme", "+15557")->last_seen, 247);
}

// -- workflow runs ------------------------------------------------------------

TYPED_TEST_P(StoreConformance, insert_run_round_trips_every_field) {
  auto& s = this->store();
  auto r = make_waiting_run("n1", "reply", 4'102'444'800'123); // 2100
  r.id = 777; // ignored: the store assigns ids
  r.state = big_state();
  r.seq = 41;
  r.error = "step 'x': \"quoted\" 'single' \\ Ωμέγα";
  r.started_at = -1;
  r.updated_at = 4'102'444'800'999;
  auto a = s.insert_run(r);
  auto b = s.insert_run(make_run());
  EXPECT_GT(a, 0);
  EXPECT_GT(b, a);
  auto found = s.find_run(a);
  ASSERT_TRUE(found);
  EXPECT_GE(found->state.size(), 48u * 1024);
  auto expected = r;
  expected.id = a;
  expect_same(*found, expected);
  EXPECT_FALSE(s.find_run(b + 1000));
  // Every status round-trips.
  for (auto status :
       {engine::run_status::running, engine::run_status::waiting,
        engine::run_status::finished, engine::run_status::failed}) {
    auto x = make_run();
    x.status = status;
    EXPECT_EQ(s.find_run(s.insert_run(x))->status, status);
  }
}

TYPED_TEST_P(StoreConformance, run_payloads_may_be_any_bytes) {
  // State, error, step detail and workflow source may carry bytes from
  // outside (an HTTP reply, an SMS): stored as given, NUL and all.
  auto& s = this->store();
  auto r = make_run();
  r.state = raw_bytes();
  r.error = raw_bytes() + "!";
  auto id = s.insert_run(r);
  auto found = s.find_run(id);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->state, raw_bytes());
  EXPECT_EQ(found->state.size(), 10u);
  EXPECT_EQ(found->error, raw_bytes() + "!");
  auto next = bumped(*found);
  next.state = raw_bytes() + raw_bytes();
  ASSERT_TRUE(s.update_run(next, 0));
  EXPECT_EQ(s.find_run(id)->state, raw_bytes() + raw_bytes());
  auto step = make_step(id, 0);
  step.detail = raw_bytes();
  s.insert_run_steps({step});
  EXPECT_EQ(s.run_steps(id).at(0).detail, raw_bytes());
  engine::workflow_version_record v{"acme",    "wf",        "v1",
                                    "wf.yaml", raw_bytes(), 1};
  s.save_workflow_version(v);
  EXPECT_EQ(s.find_workflow_version("acme", "wf", "v1")->source, raw_bytes());
}

TYPED_TEST_P(StoreConformance, update_run_writes_what_a_segment_changes_if_seq_matches) {
  auto& s = this->store();
  auto r = make_run();
  r.id = s.insert_run(r);
  auto u = make_waiting_run("n2", "timer", 1'700'000'600'000);
  u.id = r.id;
  u.tenant_id = "other";
  u.workflow = "follow_up";
  u.version = "sha256:abcdef";
  u.trigger = "sms.received";
  u.call_sid = "CA2";
  u.contact = "+15550000001";
  u.state = big_state(20'000);
  u.seq = 1;
  u.error = "none yet";
  u.started_at = 5;
  u.updated_at = 1'700'000'000'700;
  EXPECT_TRUE(s.update_run(u, 0));
  // What a segment changes is written (the contact too: a workflow may name
  // it later); the run's identity stays as inserted.
  u.tenant_id = r.tenant_id;
  u.workflow = r.workflow;
  u.version = r.version;
  u.trigger = r.trigger;
  u.call_sid = r.call_sid;
  u.started_at = r.started_at;
  expect_same(*s.find_run(r.id), u);
  // A writer that read seq 0 lost: nothing changes.
  auto stale = bumped(r);
  stale.status = engine::run_status::failed;
  EXPECT_FALSE(s.update_run(stale, 0));
  expect_same(*s.find_run(r.id), u);
  // The next writer, from seq 1; seq may jump.
  auto done = u;
  done.status = engine::run_status::finished;
  done.waiting_for.clear();
  done.wake_at = 0;
  done.seq = 7;
  EXPECT_TRUE(s.update_run(done, 1));
  expect_same(*s.find_run(r.id), done);
  EXPECT_FALSE(s.update_run(bumped(done), 1));
  EXPECT_TRUE(s.update_run(bumped(done), 7));
  EXPECT_EQ(s.find_run(r.id)->seq, 8);
}

TYPED_TEST_P(StoreConformance, update_run_rejects_bad_requests) {
  auto& s = this->store();
  auto r = make_run();
  r.id = s.insert_run(r);
  auto unknown = bumped(r);
  unknown.id = r.id + 1000;
  EXPECT_EQ(error_of([&] { s.update_run(unknown, 0); }),
            this->message("update_run",
                          "unknown run id " + std::to_string(unknown.id)));
  auto same = r; // seq not bumped: two writers could both win
  same.status = engine::run_status::finished;
  EXPECT_EQ(error_of([&] { s.update_run(same, 0); }),
            this->message("update_run",
                          "seq 0 must be greater than expected_seq 0 (run id "
                            + std::to_string(r.id) + ")"));
  same.seq = 2;
  EXPECT_EQ(error_of([&] { s.update_run(same, 5); }),
            this->message("update_run",
                          "seq 2 must be greater than expected_seq 5 (run id "
                            + std::to_string(r.id) + ")"));
  expect_same(*s.find_run(r.id), r);
}

/// Instances (connections) update the same runs from the same expected seq
/// on as many threads: exactly one wins each round.
template <class Fixture>
void update_run_race(Fixture& self, bool in_transactions) {
  constexpr int racers = 3;
  std::vector<std::unique_ptr<adapters::audited_store>> stores;
  for (int i = 0; i < racers; ++i)
    stores.push_back(self.open());
  constexpr int rounds = 100;
  for (int round = 0; round < rounds; ++round) {
    auto r = make_waiting_run("gone", "timer", 1000 + round);
    r.seq = round; // any seq
    r.id = self.store().insert_run(r);
    bool won[racers] = {};
    auto errors = race(racers, [&](int i) {
      auto mine = bumped(r);
      mine.node_id = "n" + std::to_string(i);
      mine.status = engine::run_status::running;
      mine.state = "resumed by " + mine.node_id;
      auto& s = *stores[i];
      if (in_transactions)
        s.begin();
      won[i] = s.update_run(mine, r.seq);
      if (in_transactions) {
        // The loser's transaction is not aborted: it commits what else it did.
        s.insert_run_steps({make_step(r.id, i, won[i] ? "resumed" : "lost")});
        s.commit();
      }
    });
    ASSERT_TRUE(errors.empty()) << errors.front();
    int winners = 0;
    int winner = -1;
    for (int i = 0; i < racers; ++i)
      if (won[i]) {
        ++winners;
        winner = i;
      }
    ASSERT_EQ(winners, 1) << "round " << round;
    auto stored = self.store().find_run(r.id);
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->seq, r.seq + 1);
    EXPECT_EQ(stored->node_id, "n" + std::to_string(winner));
    EXPECT_EQ(stored->state, "resumed by n" + std::to_string(winner));
    if (in_transactions) {
      EXPECT_EQ(self.store().run_steps(r.id).size(),
                static_cast<std::size_t>(racers));
    }
  }
}

TYPED_TEST_P(StoreConformance, update_run_race_has_one_winner) {
  if (!TypeParam::shared)
    GTEST_SKIP() << "instances do not share a database";
  update_run_race(*this, false);
}

TYPED_TEST_P(StoreConformance, update_run_race_in_transactions_has_one_winner) {
  if (!TypeParam::shared)
    GTEST_SKIP() << "instances do not share a database";
  update_run_race(*this, true);
}

TYPED_TEST_P(StoreConformance,
             unfinished_runs_are_active_and_owned_or_overdue) {
  auto& s = this->store();
  using engine::run_status;
  const engine::epoch_ms cutoff = 10'000;
  auto add = [&](std::string node, run_status status,
                 engine::epoch_ms wake_at) {
    auto r = make_run(std::move(node));
    r.status = status;
    r.waiting_for = status == run_status::waiting ? "timer" : "";
    r.wake_at = wake_at;
    return s.insert_run(r);
  };
  auto own_late = add("n1", run_status::waiting, cutoff + 500);
  auto own_running = add("n1", run_status::running, 0);
  add("n1", run_status::finished, 0);
  add("n1", run_status::failed, 5);
  auto overdue = add("n2", run_status::waiting, cutoff - 1);
  auto overdue_running = add("n3", run_status::running, 7);
  auto overdue_tie = add("n2", run_status::waiting, 7); // tie: by id
  add("n2", run_status::waiting, cutoff);     // at the cutoff: not yet
  add("n2", run_status::waiting, cutoff + 1); // later
  add("n2", run_status::running, 0);          // no deadline: never adopted
  add("n2", run_status::finished, 3);         // over
  add("n2", run_status::failed, 3);           // over
  auto own_early = add("n1", run_status::waiting, 1);
  auto all = std::numeric_limits<std::size_t>::max();
  EXPECT_EQ(ids(s.unfinished_runs("n1", cutoff, all)),
            (std::vector<std::int64_t>{own_running, own_early, overdue_running,
                                       overdue_tie, overdue, own_late}));
  EXPECT_EQ(ids(s.unfinished_runs("n1", cutoff, 3)),
            (std::vector<std::int64_t>{own_running, own_early,
                                       overdue_running}));
  EXPECT_TRUE(s.unfinished_runs("n1", cutoff, 0).empty());
  EXPECT_EQ(ids(s.unfinished_runs("n9", cutoff, 100)),
            (std::vector<std::int64_t>{own_early, overdue_running, overdue_tie,
                                       overdue}));
  // 0 adopts nothing; a negative cutoff neither.
  EXPECT_EQ(ids(s.unfinished_runs("n1", 0, 100)),
            (std::vector<std::int64_t>{own_running, own_early, own_late}));
  EXPECT_TRUE(s.unfinished_runs("n9", 0, 100).empty());
  EXPECT_TRUE(s.unfinished_runs("n9", -5, 100).empty());
  EXPECT_EQ(s.unfinished_runs("n2", 0, 100).size(), 5u);
  // Finishing one takes it out.
  auto r = bumped(*s.find_run(own_early));
  r.status = run_status::finished;
  ASSERT_TRUE(s.update_run(r, 0));
  EXPECT_EQ(ids(s.unfinished_runs("n1", 0, 100)),
            (std::vector<std::int64_t>{own_running, own_late}));
}

TYPED_TEST_P(StoreConformance, an_orphaned_run_is_adopted_by_one_node_only) {
  auto& s = this->store();
  auto orphan = make_waiting_run("dead", "timer", 5'000);
  orphan.id = s.insert_run(orphan);
  // Two nodes start after the owner died; both see the orphan.
  auto seen2 = s.unfinished_runs("n2", 6'000, 10);
  auto seen3 = s.unfinished_runs("n3", 6'000, 10);
  ASSERT_EQ(ids(seen2), (std::vector<std::int64_t>{orphan.id}));
  ASSERT_EQ(ids(seen3), (std::vector<std::int64_t>{orphan.id}));
  auto claim2 = bumped(seen2[0]);
  claim2.node_id = "n2";
  claim2.wake_at = 9'000;
  auto claim3 = bumped(seen3[0]);
  claim3.node_id = "n3";
  EXPECT_TRUE(s.update_run(claim2, seen2[0].seq));
  EXPECT_FALSE(s.update_run(claim3, seen3[0].seq));
  EXPECT_EQ(s.find_run(orphan.id)->node_id, "n2");
  EXPECT_EQ(ids(s.unfinished_runs("n2", 0, 10)),
            (std::vector<std::int64_t>{orphan.id}));
  EXPECT_TRUE(s.unfinished_runs("n3", 6'000, 10).empty());
}

TYPED_TEST_P(StoreConformance,
             runs_waiting_for_reply_match_tenant_and_contact) {
  auto& s = this->store();
  const std::string alice = "+15551230001";
  auto add = [&](engine::run_record r) { return s.insert_run(r); };
  auto first = add(make_waiting_run("n1", "reply", 9'000));
  add(make_waiting_run("n1", "timer", 9'000)); // waits for something else
  auto running = make_run();
  running.waiting_for = "reply"; // stale: not waiting any more
  add(running);
  auto finished = make_waiting_run("n1", "reply", 0);
  finished.status = engine::run_status::finished;
  add(finished);
  auto other_tenant = make_waiting_run("n1", "reply", 9'000);
  other_tenant.tenant_id = "beta";
  auto beta = add(other_tenant);
  auto bob = make_waiting_run("n1", "reply", 9'000);
  bob.contact = "+15551230002";
  add(bob);
  auto second
    = add(make_waiting_run("n2", "reply", 1'000)); // no deadline order
  EXPECT_EQ(ids(s.runs_waiting_for_reply("acme", alice)),
            (std::vector<std::int64_t>{first, second}));
  EXPECT_EQ(ids(s.runs_waiting_for_reply("beta", alice)),
            (std::vector<std::int64_t>{beta}));
  EXPECT_TRUE(s.runs_waiting_for_reply("acme", "+15559999999").empty());
  EXPECT_TRUE(s.runs_waiting_for_reply("nobody", alice).empty());
  // The reply arrived: the run goes on and no longer waits.
  auto resumed = bumped(*s.find_run(first));
  resumed.status = engine::run_status::running;
  resumed.waiting_for.clear();
  ASSERT_TRUE(s.update_run(resumed, 0));
  EXPECT_EQ(ids(s.runs_waiting_for_reply("acme", alice)),
            (std::vector<std::int64_t>{second}));
}

TYPED_TEST_P(StoreConformance, runs_for_call_in_id_order) {
  auto& s = this->store();
  auto a = s.insert_run(make_run());
  auto other = make_run();
  other.call_sid = "CA2";
  s.insert_run(other);
  auto done = make_run("n2");
  done.status = engine::run_status::finished;
  auto b = s.insert_run(done);
  EXPECT_EQ(ids(s.runs_for_call("CA1")), (std::vector<std::int64_t>{a, b}));
  EXPECT_EQ(s.runs_for_call("CA2").size(), 1u);
  EXPECT_TRUE(s.runs_for_call("CA404").empty());
}

TYPED_TEST_P(StoreConformance, run_steps_round_trip_in_seq_order) {
  auto& s = this->store();
  auto a = s.insert_run(make_run());
  auto b = s.insert_run(make_run());
  auto first = make_step(a, 2);
  first.step_id = "#2";
  first.type = "wait";
  first.outcome = "waiting";
  first.detail = "until 2023-11-14T22:23:20Z; \"quoted\" 'single' \\ 日本語";
  first.at = 4'102'444'800'123;
  first.duration_us = 9'000'000'000'000;
  s.insert_run_steps({first, make_step(a, 0), make_step(b, 0)});
  s.insert_run_steps(
    {make_step(a, 1, "skipped"), make_step(a, 2147483647, "failed")});
  s.insert_run_steps({}); // nothing
  auto steps = s.run_steps(a);
  EXPECT_EQ(seqs(steps), (std::vector<std::int32_t>{0, 1, 2, 2147483647}));
  ASSERT_EQ(steps.size(), 4u);
  expect_same(steps[0], make_step(a, 0));
  expect_same(steps[1], make_step(a, 1, "skipped"));
  expect_same(steps[2], first);
  EXPECT_EQ(seqs(s.run_steps(b)), (std::vector<std::int32_t>{0}));
  EXPECT_TRUE(s.run_steps(b + 1000).empty());
}

TYPED_TEST_P(StoreConformance, a_step_recorded_again_keeps_the_first_record) {
  // A run resumed after a crash may record a step it had recorded already;
  // that must not fail the batch it comes with.
  auto& s = this->store();
  auto a = s.insert_run(make_run());
  s.insert_run_steps({make_step(a, 0), make_step(a, 1)});
  auto again = make_step(a, 1, "resumed");
  again.detail = "replayed";
  s.begin();
  s.insert_run_steps({again, make_step(a, 2), again});
  auto r = bumped(*s.find_run(a));
  EXPECT_TRUE(s.update_run(r, 0));
  s.commit();
  auto steps = s.run_steps(a);
  EXPECT_EQ(seqs(steps), (std::vector<std::int32_t>{0, 1, 2}));
  ASSERT_EQ(steps.size(), 3u);
  expect_same(steps[1], make_step(a, 1));
  EXPECT_EQ(s.find_run(a)->seq, 1);
}

TYPED_TEST_P(StoreConformance, workflow_versions_are_saved_once) {
  auto& s = this->store();
  engine::workflow_version_record v{"acme",
                                    "missed_call",
                                    "sha256:0f1e2d",
                                    "workflows/missed_call.yaml",
                                    big_state(30'000),
                                    1'700'000'000'000};
  s.save_workflow_version(v);
  auto again = v;
  again.file = "elsewhere.yaml";
  again.source = "changed";
  again.loaded_at = 1;
  s.save_workflow_version(again); // changes nothing
  auto global = v;
  global.tenant_id = ""; // a global workflow of the same name and version
  global.source = "global";
  s.save_workflow_version(global);
  auto next = v;
  next.version = "sha256:99";
  next.source = "next";
  s.save_workflow_version(next);
  auto found = s.find_workflow_version("acme", "missed_call", "sha256:0f1e2d");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->tenant_id, "acme");
  EXPECT_EQ(found->name, "missed_call");
  EXPECT_EQ(found->version, "sha256:0f1e2d");
  EXPECT_EQ(found->file, "workflows/missed_call.yaml");
  EXPECT_TRUE(found->source == v.source) << "source differs";
  EXPECT_EQ(found->loaded_at, v.loaded_at);
  EXPECT_EQ(s.find_workflow_version("", "missed_call", "sha256:0f1e2d")->source,
            "global");
  EXPECT_EQ(s.find_workflow_version("acme", "missed_call", "sha256:99")->source,
            "next");
  EXPECT_FALSE(s.find_workflow_version("acme", "missed_call", "sha256:404"));
  EXPECT_FALSE(s.find_workflow_version("acme", "other", "sha256:0f1e2d"));
  EXPECT_FALSE(s.find_workflow_version("beta", "missed_call", "sha256:0f1e2d"));
}

TYPED_TEST_P(StoreConformance, contact_tags_are_kept_once_and_sorted) {
  auto& s = this->store();
  const std::string alice = "+15551230001";
  EXPECT_TRUE(s.contact_tags("acme", alice).empty());
  for (const char* tag :
       {"vip", "Lead", "ünïcode", "lead", "a b", "vip", "'q'"})
    s.tag_contact("acme", alice, tag, 2'000);
  // Bytewise order, whatever the database's collation.
  EXPECT_EQ(s.contact_tags("acme", alice),
            (std::vector<std::string>{"'q'", "Lead", "a b", "lead", "vip",
                                      "ünïcode"}));
  // Tagging created the contact.
  auto c = s.find_contact("acme", alice);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->first_seen, 2'000);
  EXPECT_EQ(c->last_seen, 2'000);
  // Tags are per tenant and per phone.
  EXPECT_TRUE(s.contact_tags("beta", alice).empty());
  EXPECT_TRUE(s.contact_tags("acme", "+15551230002").empty());
  // Tagging a known contact leaves its first and last contact alone.
  const std::string bob = "+15551230002";
  s.touch_contact("acme", bob, 1'000);
  s.tag_contact("acme", bob, "customer", 9'000);
  c = s.find_contact("acme", bob);
  EXPECT_EQ(c->first_seen, 1'000);
  EXPECT_EQ(c->last_seen, 1'000);
  EXPECT_EQ(s.contact_tags("acme", bob),
            (std::vector<std::string>{"customer"}));
  s.tag_contact("beta", bob, "other", 1);
  EXPECT_EQ(s.contact_tags("acme", bob),
            (std::vector<std::string>{"customer"}));
}

TYPED_TEST_P(StoreConformance, run_calls_before_migrate_throw) {
  auto s = this->open();
  EXPECT_THROW(s->insert_run(make_run()), engine::port_error);
  EXPECT_THROW(s->find_run(1), engine::port_error);
  EXPECT_THROW(s->run_steps(1), engine::port_error);
  EXPECT_THROW(s->tag_contact("acme", "+1555", "vip", 1), engine::port_error);
  auto what = error_of([&] { s->unfinished_runs("n1", 0, 10); });
  EXPECT_EQ(what.rfind(this->message("unfinished_runs", ""), 0), 0u) << what;
  what = error_of([&] { s->find_workflow_version("acme", "wf", "v1"); });
  EXPECT_EQ(what.rfind(this->message("find_workflow_version", ""), 0), 0u)
    << what;
}

TYPED_TEST_P(StoreConformance, run_writes_commit_and_roll_back_together) {
  auto& s = this->store();
  auto kept = make_run();
  kept.id = s.insert_run(kept);
  s.begin();
  auto id = s.insert_run(make_run());
  ASSERT_TRUE(s.update_run(bumped(kept), 0));
  s.insert_run_steps({make_step(id, 0), make_step(kept.id, 0)});
  s.save_workflow_version({"acme", "wf", "v1", "wf.yaml", "steps: []", 1});
  s.tag_contact("acme", "+15551230001", "vip", 1);
  EXPECT_TRUE(s.find_run(id)); // a transaction reads its own writes
  EXPECT_EQ(s.contact_tags("acme", "+15551230001").size(), 1u);
  s.rollback();
  EXPECT_FALSE(s.find_run(id));
  EXPECT_EQ(s.find_run(kept.id)->seq, 0);
  EXPECT_TRUE(s.run_steps(id).empty());
  EXPECT_TRUE(s.run_steps(kept.id).empty());
  EXPECT_FALSE(s.find_workflow_version("acme", "wf", "v1"));
  EXPECT_TRUE(s.contact_tags("acme", "+15551230001").empty());
  EXPECT_FALSE(s.find_contact("acme", "+15551230001"));
  // The same, committed, is seen by another instance.
  s.begin();
  id = s.insert_run(make_run());
  ASSERT_TRUE(s.update_run(bumped(kept), 0));
  s.insert_run_steps({make_step(id, 0)});
  s.save_workflow_version({"acme", "wf", "v1", "wf.yaml", "steps: []", 1});
  s.tag_contact("acme", "+15551230001", "vip", 1);
  if (TypeParam::shared) {
    auto other = this->open();
    EXPECT_FALSE(other->find_run(id)); // not committed yet
    EXPECT_EQ(other->find_run(kept.id)->seq, 0);
  }
  s.commit();
  auto other_instance = TypeParam::shared ? this->open() : nullptr;
  adapters::audited_store& reader = other_instance ? *other_instance : s;
  EXPECT_TRUE(reader.find_run(id));
  EXPECT_EQ(reader.find_run(kept.id)->seq, 1);
  EXPECT_EQ(reader.run_steps(id).size(), 1u);
  EXPECT_TRUE(reader.find_workflow_version("acme", "wf", "v1"));
  EXPECT_EQ(reader.contact_tags("acme", "+15551230001"),
            (std::vector<std::string>{"vip"}));
}

TYPED_TEST_P(StoreConformance,
             a_lost_update_run_does_not_abort_the_transaction) {
  auto& s = this->store();
  auto r = make_run();
  r.id = s.insert_run(r);
  ASSERT_TRUE(s.update_run(bumped(r), 0));
  s.begin();
  EXPECT_FALSE(s.update_run(bumped(r), 0)); // lost: a value, not an error
  auto id = s.insert_run(make_run());
  s.commit();
  EXPECT_TRUE(s.find_run(id));
  // An unknown run is an error, and aborts the transaction.
  s.begin();
  id = s.insert_run(make_run());
  auto unknown = bumped(r);
  unknown.id = id + 1000;
  EXPECT_THROW(s.update_run(unknown, 0), engine::port_error);
  EXPECT_EQ(error_of([&] { s.find_run(id); }),
            this->message("find_run",
                          "the transaction was aborted by an earlier error; "
                          "call rollback()"));
  EXPECT_THROW(s.commit(), engine::port_error);
  EXPECT_FALSE(s.find_run(id));
}

TYPED_TEST_P(StoreConformance, group_commit_of_many_runs) {
  auto& s = this->store();
  constexpr int n = 200;
  std::vector<engine::run_record> runs;
  s.begin();
  for (int i = 0; i < n; ++i) {
    auto r = make_waiting_run("n1", i % 2 == 0 ? "reply" : "timer", 1'000 + i);
    r.contact = "+1555" + std::to_string(i % 10);
    r.state = big_state(2'000);
    r.id = s.insert_run(r);
    s.insert_run_steps({make_step(r.id, 0), make_step(r.id, 1)});
    runs.push_back(r);
  }
  s.commit();
  s.begin();
  for (auto& r : runs) {
    auto next = bumped(r);
    next.status = engine::run_status::running;
    next.waiting_for.clear();
    ASSERT_TRUE(s.update_run(next, r.seq));
    s.insert_run_steps({make_step(r.id, 2, "resumed")});
  }
  s.commit();
  EXPECT_EQ(s.unfinished_runs("n1", 0, 1000).size(),
            static_cast<std::size_t>(n));
  EXPECT_TRUE(s.runs_waiting_for_reply("acme", "+15550").empty());
  EXPECT_EQ(s.run_steps(runs[17].id).size(), 3u);
  EXPECT_EQ(s.find_run(runs[17].id)->seq, 1);
}

// -- conversations ------------------------------------------------------------

TYPED_TEST_P(StoreConformance, find_or_create_conversation_creates_it_once) {
  auto& s = this->store();
  const engine::epoch_ms now = 1'700'000'000'000;
  auto c = s.find_or_create_conversation("acme", customer(1), "+15557650002",
                                         now);
  EXPECT_GT(c.id, 0);
  engine::conversation_record expected;
  expected.id = c.id;
  expected.tenant_id = "acme";
  expected.customer = customer(1);
  expected.business_number = "+15557650002";
  expected.ref = 1;
  expected.state = engine::conversation_state::closed;
  expected.opened_at = now;
  expected.updated_at = now;
  expect_same(c, expected); // every other field zero
  // Again, later, through another number: the row as stored.
  auto again = s.find_or_create_conversation("acme", customer(1),
                                             "+15557650003", now + 5'000);
  expect_same(again, expected);
  expect_same(*s.find_conversation(c.id), expected);
  expect_same(*s.find_conversation_by_ref("acme", 1), expected);
  EXPECT_FALSE(s.find_conversation(c.id + 1000));
  EXPECT_FALSE(s.find_conversation_by_ref("acme", 2));
  EXPECT_FALSE(s.find_conversation_by_ref("beta", 1));
  // An existing row is returned as the last update left it.
  auto u = bumped(c);
  u.state = engine::conversation_state::ai_active;
  u.business_number = "+15557650004";
  ASSERT_TRUE(s.update_conversation(u, 0));
  expect_same(s.find_or_create_conversation("acme", customer(1), "+15557650002",
                                            now + 9'000),
              u);
}

TYPED_TEST_P(StoreConformance, conversation_refs_count_per_tenant) {
  auto& s = this->store();
  auto a1 = s.find_or_create_conversation("acme", customer(1), "+1555765", 1);
  auto b1 = s.find_or_create_conversation("beta", customer(1), "+1555766", 2);
  auto a2 = s.find_or_create_conversation("acme", customer(2), "+1555765", 3);
  auto a3 = s.find_or_create_conversation("acme", customer(3), "+1555765", 4);
  auto b2 = s.find_or_create_conversation("beta", customer(3), "+1555766", 5);
  EXPECT_EQ(a1.ref, 1);
  EXPECT_EQ(a2.ref, 2);
  EXPECT_EQ(a3.ref, 3);
  EXPECT_EQ(b1.ref, 1);
  EXPECT_EQ(b2.ref, 2);
  // One row per tenant and customer: the same customer of two tenants has
  // two conversations.
  EXPECT_NE(a1.id, b1.id);
  EXPECT_EQ(s.find_conversation_by_ref("acme", 3)->id, a3.id);
  EXPECT_EQ(s.find_conversation_by_ref("beta", 1)->id, b1.id);
  EXPECT_EQ(s.find_conversation_by_ref("beta", 2)->customer, customer(3));
  EXPECT_FALSE(s.find_conversation_by_ref("beta", 3));
  // Asking again makes no new ref.
  s.find_or_create_conversation("acme", customer(2), "+1555765", 6);
  EXPECT_EQ(
    s.find_or_create_conversation("acme", customer(4), "+1555765", 7).ref, 4);
}

TYPED_TEST_P(
  StoreConformance,
  concurrent_creation_makes_one_row_per_customer_with_distinct_refs) {
  if (!TypeParam::shared)
    GTEST_SKIP() << "instances do not share a database";
  constexpr int racers = 4;
  this->store(); // migrated
  std::vector<std::unique_ptr<adapters::audited_store>> stores;
  for (int i = 0; i < racers; ++i)
    stores.push_back(this->open());
  for (int round = 0; round < 10; ++round) {
    auto tenant = "t" + std::to_string(round);
    // Each racer creates the shared customer's conversation and one of its
    // own, in either order.
    std::vector<engine::conversation_record> shared(racers);
    std::vector<engine::conversation_record> own(racers);
    auto errors = race(racers, [&](int i) {
      auto& s = *stores[i];
      auto create_shared = [&] {
        shared[i] = s.find_or_create_conversation(tenant, customer(0),
                                                  "+1555765", round);
      };
      if (i % 2 == 0)
        create_shared();
      own[i] = s.find_or_create_conversation(tenant, customer(1 + i),
                                             "+1555765", round);
      if (i % 2 != 0)
        create_shared();
    });
    ASSERT_TRUE(errors.empty()) << errors.front();
    std::set<std::int32_t> refs;
    for (int i = 0; i < racers; ++i) {
      EXPECT_EQ(shared[i].id, shared[0].id) << "round " << round;
      EXPECT_EQ(shared[i].ref, shared[0].ref);
      EXPECT_EQ(own[i].customer, customer(1 + i));
      refs.insert(own[i].ref);
    }
    refs.insert(shared[0].ref);
    EXPECT_EQ(refs, (std::set<std::int32_t>{1, 2, 3, 4, 5}))
      << "round " << round;
    for (int ref = 1; ref <= racers + 1; ++ref)
      EXPECT_TRUE(this->store().find_conversation_by_ref(tenant, ref));
  }
}

TYPED_TEST_P(StoreConformance,
             update_conversation_writes_its_state_if_seq_matches) {
  auto& s = this->store();
  auto c = s.find_or_create_conversation("acme", customer(1), "+1555765", 10);
  auto u = c;
  u.business_number = "+15557650009";
  u.state = engine::conversation_state::owner_window;
  u.window_seq = 3;
  u.window_deadline = 1'700'000'060'000;
  u.outcome = engine::window_outcome::none;
  u.turn_at = 1'700'000'005'000;
  u.close_at = 1'700'003'600'000;
  u.ai_replies = 2;
  u.opened_at = 11;
  u.last_customer_at = 1'700'000'000'000;
  u.last_owner_at = 1'699'999'000'000;
  u.last_ai_at = 1'699'999'500'000;
  u.node_id = "n2";
  u.seq = 1;
  u.updated_at = 1'700'000'000'001;
  auto moved = u; // the tenant, the customer and the ref are fixed
  moved.tenant_id = "other";
  moved.customer = customer(2);
  moved.ref = 7;
  EXPECT_TRUE(s.update_conversation(moved, 0));
  expect_same(*s.find_conversation(c.id), u);
  // A writer that read seq 0 lost: nothing changes.
  auto stale = bumped(c);
  stale.state = engine::conversation_state::ai_active;
  EXPECT_FALSE(s.update_conversation(stale, 0));
  expect_same(*s.find_conversation(c.id), u);
  // The next writer, from seq 1; seq may jump.
  auto won = u;
  won.state = engine::conversation_state::owner_active;
  won.outcome = engine::window_outcome::owner;
  won.window_deadline = 0;
  won.seq = 9;
  EXPECT_TRUE(s.update_conversation(won, 1));
  expect_same(*s.find_conversation(c.id), won);
  EXPECT_FALSE(s.update_conversation(bumped(won), 1));
  EXPECT_TRUE(s.update_conversation(bumped(won), 9));
  EXPECT_EQ(s.find_conversation(c.id)->seq, 10);
  // A lost update is a value, not an error: the transaction goes on.
  s.begin();
  EXPECT_FALSE(s.update_conversation(bumped(won), 9));
  s.set_owner_focus("acme", c.id, 20);
  s.commit();
  EXPECT_EQ(s.owner_focus("acme"), c.id);
}

TYPED_TEST_P(StoreConformance, update_conversation_rejects_bad_requests) {
  auto& s = this->store();
  auto c = s.find_or_create_conversation("acme", customer(1), "+1555765", 10);
  auto unknown = bumped(c);
  unknown.id = c.id + 1000;
  EXPECT_EQ(error_of([&] { s.update_conversation(unknown, 0); }),
            this->message("update_conversation",
                          "unknown conversation id "
                            + std::to_string(unknown.id)));
  auto same = c; // seq not bumped: two writers could both win
  same.state = engine::conversation_state::ai_active;
  EXPECT_EQ(error_of([&] { s.update_conversation(same, 0); }),
            this->message("update_conversation",
                          "seq 0 must be greater than expected_seq 0 "
                          "(conversation id "
                            + std::to_string(c.id) + ")"));
  same.seq = 2;
  EXPECT_EQ(error_of([&] { s.update_conversation(same, 5); }),
            this->message("update_conversation",
                          "seq 2 must be greater than expected_seq 5 "
                          "(conversation id "
                            + std::to_string(c.id) + ")"));
  expect_same(*s.find_conversation(c.id), c);
  // An error aborts the transaction.
  s.begin();
  s.set_owner_focus("acme", c.id, 1);
  EXPECT_THROW(s.update_conversation(unknown, 0), engine::port_error);
  EXPECT_EQ(error_of([&] { s.owner_focus("acme"); }),
            this->message("owner_focus",
                          "the transaction was aborted by an earlier error; "
                          "call rollback()"));
  EXPECT_THROW(s.commit(), engine::port_error);
  EXPECT_FALSE(s.owner_focus("acme"));
}

/// Instances (connections) decide the same owner-reply window from the same
/// expected seq on as many threads, the owner's reply against the timer:
/// exactly one outcome each round.
template <class Fixture>
void update_conversation_race(Fixture& self, bool in_transactions) {
  constexpr int racers = 3;
  std::vector<std::unique_ptr<adapters::audited_store>> stores;
  for (int i = 0; i < racers; ++i)
    stores.push_back(self.open());
  for (int round = 0; round < 50; ++round) {
    auto c = self.store().find_or_create_conversation("acme", customer(round),
                                                      "+1555765", round);
    auto open = bumped(c);
    open.state = engine::conversation_state::owner_window;
    open.window_seq = 1;
    open.window_deadline = 60'000;
    open.seq = 10 * round + 1; // any seq
    ASSERT_TRUE(self.store().update_conversation(open, c.seq));
    bool won[racers] = {};
    auto errors = race(racers, [&](int i) {
      auto mine = bumped(open);
      mine.outcome = i == 0 ? engine::window_outcome::owner
                            : engine::window_outcome::ai;
      mine.state = i == 0 ? engine::conversation_state::owner_active
                          : engine::conversation_state::ai_active;
      mine.node_id = "n" + std::to_string(i);
      auto& s = *stores[i];
      if (in_transactions)
        s.begin();
      won[i] = s.update_conversation(mine, open.seq);
      if (in_transactions) {
        // The loser's transaction is not aborted: it commits what else it did.
        auto e = make_event(c.id, won[i] ? "ai_won" : "lost", 1);
        e.window_seq = 1;
        s.insert_conversation_event(e);
        s.commit();
      }
    });
    ASSERT_TRUE(errors.empty()) << errors.front();
    int winners = 0;
    int winner = -1;
    for (int i = 0; i < racers; ++i)
      if (won[i]) {
        ++winners;
        winner = i;
      }
    ASSERT_EQ(winners, 1) << "round " << round;
    auto stored = self.store().find_conversation(c.id);
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->seq, open.seq + 1);
    EXPECT_EQ(stored->node_id, "n" + std::to_string(winner));
    EXPECT_EQ(stored->outcome, winner == 0 ? engine::window_outcome::owner
                                           : engine::window_outcome::ai);
    if (in_transactions) {
      EXPECT_EQ(self.store().conversation_events(c.id).size(),
                static_cast<std::size_t>(racers));
    }
  }
}

TYPED_TEST_P(StoreConformance, update_conversation_race_has_one_winner) {
  if (!TypeParam::shared)
    GTEST_SKIP() << "instances do not share a database";
  update_conversation_race(*this, false);
}

TYPED_TEST_P(StoreConformance,
             update_conversation_race_in_transactions_has_one_winner) {
  if (!TypeParam::shared)
    GTEST_SKIP() << "instances do not share a database";
  update_conversation_race(*this, true);
}

TYPED_TEST_P(StoreConformance,
             due_conversations_have_a_deadline_at_or_before_now) {
  auto& s = this->store();
  using engine::conversation_state;
  using engine::window_outcome;
  const engine::epoch_ms now = 1'000'000;
  int next_customer = 0;
  auto add = [&](conversation_state state, engine::epoch_ms window_deadline,
                 window_outcome outcome, engine::epoch_ms turn_at,
                 engine::epoch_ms close_at) {
    auto c = s.find_or_create_conversation("acme", customer(next_customer++),
                                           "+1555765", 1);
    auto u = bumped(c);
    u.state = state;
    u.window_deadline = window_deadline;
    u.outcome = outcome;
    u.turn_at = turn_at;
    u.close_at = close_at;
    EXPECT_TRUE(s.update_conversation(u, c.seq));
    return c.id;
  };
  const auto none = window_outcome::none;
  // A window with no outcome yet, due exactly now.
  auto window_now = add(conversation_state::owner_window, now, none, 0, 0);
  // Not yet.
  add(conversation_state::owner_window, now + 1, none, 0, now + 1);
  // Decided windows are not due, however late.
  add(conversation_state::owner_active, now - 50, window_outcome::owner, 0,
      now + 10);
  add(conversation_state::ai_active, now - 60, window_outcome::ai, 0, now + 10);
  // An AI turn.
  auto turn = add(conversation_state::ai_active, 0, window_outcome::ai,
                  now - 30, now + 10);
  // Idle close of an open conversation; a closed one's close_at is not due.
  auto idle = add(conversation_state::owner_active, 0, window_outcome::owner, 0,
                  now - 40);
  add(conversation_state::closed, 0, window_outcome::owner, 0, now - 45);
  // Due for two reasons: counts at its earliest (the turn).
  auto both = add(conversation_state::owner_window, now - 10, none, now - 35,
                  now + 10);
  // Due for a decided window's late deadline only: not due.
  add(conversation_state::ai_active, now - 70, window_outcome::ai, now + 5,
      now + 10);
  // Nothing set: never due.
  add(conversation_state::closed, 0, none, 0, 0);
  // A tie with `turn` on the deadline: by id.
  auto tie = add(conversation_state::owner_window, now - 30, none, 0, 0);
  auto all = std::numeric_limits<std::size_t>::max();
  EXPECT_EQ(ids(s.due_conversations("acme", now, all)),
            (std::vector<std::int64_t>{idle, both, turn, tie, window_now}));
  EXPECT_EQ(ids(s.due_conversations("acme", now, 2)),
            (std::vector<std::int64_t>{idle, both}));
  EXPECT_EQ(ids(s.due_conversations("acme", now, 4)),
            (std::vector<std::int64_t>{idle, both, turn, tie}));
  EXPECT_TRUE(s.due_conversations("acme", now, 0).empty());
  EXPECT_EQ(ids(s.due_conversations("acme", now - 36, all)),
            (std::vector<std::int64_t>{idle}));
  EXPECT_TRUE(s.due_conversations("acme", now - 41, all).empty());
  // Every field comes back.
  auto due = s.due_conversations("acme", now, 1);
  ASSERT_EQ(due.size(), 1u);
  expect_same(due[0], *s.find_conversation(idle));
  // Deciding a window takes it out.
  auto c = *s.find_conversation(window_now);
  auto decided = bumped(c);
  decided.outcome = window_outcome::ai;
  ASSERT_TRUE(s.update_conversation(decided, c.seq));
  EXPECT_EQ(ids(s.due_conversations("acme", now, all)),
            (std::vector<std::int64_t>{idle, both, turn, tie}));
  // Each tenant's own: another tenant's due conversation is not acme's,
  // and acme's are not its.
  auto other = s.find_or_create_conversation("zeta", customer(1), "+1555766", 1);
  auto late = bumped(other);
  late.state = conversation_state::owner_window;
  late.window_deadline = now - 100;
  ASSERT_TRUE(s.update_conversation(late, other.seq));
  EXPECT_EQ(ids(s.due_conversations("acme", now, all)),
            (std::vector<std::int64_t>{idle, both, turn, tie}));
  EXPECT_EQ(ids(s.due_conversations("zeta", now, all)),
            (std::vector<std::int64_t>{other.id}));
  EXPECT_TRUE(s.due_conversations("nobody", now, all).empty());
}

TYPED_TEST_P(StoreConformance,
             a_transcript_reads_its_last_messages_oldest_first) {
  auto& s = this->store();
  auto c = s.find_or_create_conversation("acme", customer(1), "+1555765", 1);
  auto other = s.find_or_create_conversation("acme", customer(2), "+1555765",
                                             1);
  std::vector<engine::conversation_message> first{
    make_transcript_line(c.id, "customer", "my water heater is leaking", 100),
    make_transcript_line(other.id, "customer", "hello?", 101),
    make_transcript_line(c.id, "customer", "can someone come today?", 102)};
  first[0].message_sid = "SM1";
  auto owner = make_transcript_line(c.id, "owner", "On my way at 3 — Zoë 👋",
                                    200);
  owner.message_id = 41;
  auto ai = make_transcript_line(c.id, "ai", raw_bytes(), 150);
  ai.message_id = 42;
  s.insert_conversation_messages(first);
  s.insert_conversation_messages({ai, owner}); // ids in order, not by time
  s.insert_conversation_messages({});
  auto all = s.conversation_messages(c.id, 100);
  ASSERT_EQ(all.size(), 4u);
  // Ids in insertion order, every field back.
  auto expected = std::vector<engine::conversation_message>{first[0], first[2],
                                                            ai, owner};
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (i > 0) {
      EXPECT_GT(all[i].id, all[i - 1].id);
    }
    expected[i].id = all[i].id;
    expect_same(all[i], expected[i]);
  }
  // The last two, oldest first.
  auto last = s.conversation_messages(c.id, 2);
  ASSERT_EQ(last.size(), 2u);
  expect_same(last[0], all[2]);
  expect_same(last[1], all[3]);
  EXPECT_EQ(s.conversation_messages(c.id, 1).at(0).author, "owner");
  EXPECT_TRUE(s.conversation_messages(c.id, 0).empty());
  EXPECT_EQ(s.conversation_messages(other.id, 100).size(), 1u);
  EXPECT_TRUE(s.conversation_messages(c.id + 1000, 100).empty());
}

TYPED_TEST_P(StoreConformance, conversation_events_round_trip_oldest_first) {
  auto& s = this->store();
  auto c = s.find_or_create_conversation("acme", customer(1), "+1555765", 1);
  auto opened = make_event(c.id, "opened", 10);
  auto window = make_event(c.id, "window_opened", 11);
  window.window_seq = 1;
  window.detail = "deadline 60000";
  auto turn = make_ai_turn(c.id, 12, 1200, 80, 0.00125);
  turn.window_seq = 1;
  turn.detail = R"({"intent":"emergency"})";
  auto error = make_event(c.id, "ai_error", 13);
  error.provider = "openai";
  error.latency_ms = 30'000;
  error.detail = raw_bytes(); // an error body from outside
  for (const auto& e : {opened, window, turn, error})
    s.insert_conversation_event(e);
  s.insert_conversation_event(make_event(c.id + 1, "opened", 9));
  auto events = s.conversation_events(c.id);
  ASSERT_EQ(events.size(), 4u);
  std::vector<engine::conversation_event> expected{opened, window, turn, error};
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_GT(events[i].id, 0);
    if (i > 0) {
      EXPECT_GT(events[i].id, events[i - 1].id);
    }
    expected[i].id = events[i].id;
    expect_same(events[i], expected[i]);
  }
  EXPECT_TRUE(s.conversation_events(c.id + 1000).empty());
}

TYPED_TEST_P(StoreConformance, owner_focus_is_set_and_replaced_per_tenant) {
  auto& s = this->store();
  EXPECT_FALSE(s.owner_focus("acme"));
  s.set_owner_focus("acme", 7, 100);
  s.set_owner_focus("beta", 9, 100);
  EXPECT_EQ(s.owner_focus("acme"), 7);
  // The last call wins (whatever its time).
  s.set_owner_focus("acme", 8, 50);
  EXPECT_EQ(s.owner_focus("acme"), 8);
  EXPECT_EQ(s.owner_focus("beta"), 9);
  EXPECT_FALSE(s.owner_focus("gamma"));
}

TYPED_TEST_P(StoreConformance, ai_usage_sums_ai_turns_and_counts_errors_since) {
  auto& s = this->store();
  const engine::epoch_ms since = 1'000'000;
  EXPECT_EQ(s.ai_usage_since("acme", since).turns, 0);
  EXPECT_EQ(s.ai_usage_since("acme", since).cost_usd, 0);
  // Before `since`: not counted; at it: counted. Costs are exact binary
  // fractions, so that any order of summing gives the same.
  s.insert_conversation_event(make_ai_turn(1, since - 1, 1000, 1000, 8));
  s.insert_conversation_event(make_ai_turn(1, since, 100, 10, 0.25));
  s.insert_conversation_event(make_ai_turn(2, since + 500, 200, 20, 0.5));
  s.insert_conversation_event(make_ai_turn(2, since + 900, 0, 0, 0)); // offline
  // An error counts as an error only, not as a turn: what it reports of
  // tokens or cost is not added (the fallback's turn is an ai_turn event).
  auto error = make_ai_turn(1, since + 600, 5000, 5000, 4);
  error.kind = "ai_error";
  s.insert_conversation_event(error);
  s.insert_conversation_event(make_event(1, "ai_error", since + 700));
  auto early_error = make_event(1, "ai_error", since - 1);
  s.insert_conversation_event(early_error);
  // Other kinds and other tenants are not counted.
  auto relayed = make_ai_turn(1, since + 800, 7, 7, 1);
  relayed.kind = "relayed";
  s.insert_conversation_event(relayed);
  s.insert_conversation_event(make_ai_turn(3, since + 100, 9, 9, 2, "beta"));
  auto u = s.ai_usage_since("acme", since);
  EXPECT_EQ(u.turns, 3);
  EXPECT_EQ(u.errors, 2);
  EXPECT_EQ(u.prompt_tokens, 300);
  EXPECT_EQ(u.completion_tokens, 30);
  EXPECT_EQ(u.cost_usd, 0.75);
  auto later = s.ai_usage_since("acme", since + 1);
  EXPECT_EQ(later.turns, 2);
  EXPECT_EQ(later.prompt_tokens, 200);
  EXPECT_EQ(later.cost_usd, 0.5);
  auto everything = s.ai_usage_since("acme", 0);
  EXPECT_EQ(everything.turns, 4);
  EXPECT_EQ(everything.errors, 3);
  EXPECT_EQ(everything.prompt_tokens, 1300);
  EXPECT_EQ(everything.cost_usd, 8.75);
  EXPECT_EQ(s.ai_usage_since("beta", 0).turns, 1);
  EXPECT_EQ(s.ai_usage_since("beta", 0).cost_usd, 2);
  auto nothing = s.ai_usage_since("acme", since + 1'000);
  EXPECT_EQ(nothing.turns, 0);
  EXPECT_EQ(nothing.errors, 0);
  EXPECT_EQ(nothing.prompt_tokens, 0);
  EXPECT_EQ(nothing.completion_tokens, 0);
  EXPECT_EQ(nothing.cost_usd, 0);
}

TYPED_TEST_P(StoreConformance, conversation_calls_before_migrate_throw) {
  auto s = this->open();
  EXPECT_THROW(s->find_or_create_conversation("acme", customer(1), "+1", 1),
               engine::port_error);
  EXPECT_THROW(s->find_conversation(1), engine::port_error);
  EXPECT_THROW(s->insert_conversation_event(make_event(1, "opened", 1)),
               engine::port_error);
  EXPECT_THROW(s->set_owner_focus("acme", 1, 1), engine::port_error);
  auto what = error_of([&] { s->due_conversations("acme", 1, 10); });
  EXPECT_EQ(what.rfind(this->message("due_conversations", ""), 0), 0u) << what;
  what = error_of([&] { s->ai_usage_since("acme", 0); });
  EXPECT_EQ(what.rfind(this->message("ai_usage_since", ""), 0), 0u) << what;
}

TYPED_TEST_P(StoreConformance,
             conversation_writes_commit_and_roll_back_together) {
  auto& s = this->store();
  auto kept = s.find_or_create_conversation("acme", customer(1), "+1555765", 1);
  auto write_all = [&] {
    auto c = s.find_or_create_conversation("acme", customer(2), "+1555765", 2);
    EXPECT_TRUE(s.update_conversation(bumped(kept), kept.seq));
    s.insert_conversation_messages(
      {make_transcript_line(c.id, "customer", "hi", 3),
       make_transcript_line(kept.id, "customer", "hello", 3)});
    s.insert_conversation_event(make_ai_turn(c.id, 4, 10, 1, 0.5));
    s.set_owner_focus("acme", c.id, 4);
    return c;
  };
  s.begin();
  auto c = write_all();
  EXPECT_TRUE(s.find_conversation(c.id)); // a transaction reads its own writes
  EXPECT_EQ(s.conversation_messages(c.id, 10).size(), 1u);
  s.rollback();
  EXPECT_FALSE(s.find_conversation(c.id));
  EXPECT_FALSE(s.find_conversation_by_ref("acme", 2));
  EXPECT_EQ(s.find_conversation(kept.id)->seq, 0);
  EXPECT_TRUE(s.conversation_messages(kept.id, 10).empty());
  EXPECT_TRUE(s.conversation_events(c.id).empty());
  EXPECT_EQ(s.ai_usage_since("acme", 0).turns, 0);
  EXPECT_FALSE(s.owner_focus("acme"));
  // The same, committed, is seen by another instance.
  s.begin();
  c = write_all();
  EXPECT_EQ(c.ref, 2); // the rolled back ref is free again
  if (TypeParam::shared) {
    auto other = this->open();
    EXPECT_FALSE(other->find_conversation(c.id)); // not committed yet
    EXPECT_EQ(other->find_conversation(kept.id)->seq, 0);
  }
  s.commit();
  auto other_instance = TypeParam::shared ? this->open() : nullptr;
  adapters::audited_store& reader = other_instance ? *other_instance : s;
  EXPECT_EQ(reader.find_conversation_by_ref("acme", 2)->id, c.id);
  EXPECT_EQ(reader.find_conversation(kept.id)->seq, 1);
  EXPECT_EQ(reader.conversation_messages(kept.id, 10).size(), 1u);
  EXPECT_EQ(reader.conversation_events(c.id).size(), 1u);
  EXPECT_EQ(reader.ai_usage_since("acme", 0).turns, 1);
  EXPECT_EQ(reader.owner_focus("acme"), c.id);
}

REGISTER_TYPED_TEST_SUITE_P(
  StoreConformance, migrate_applies_the_latest_schema_once,
  concurrent_migrations_all_succeed, calls_before_migrate_throw,
  ping_is_true_when_reachable, insert_call_round_trips_every_field,
  insert_call_refuses_a_known_call_sid,
  update_call_changes_the_progress_not_the_identity,
  update_call_of_an_unknown_call_throws,
  an_unknown_call_updated_in_a_transaction_fails_it_by_the_commit,
  a_read_in_a_transaction_sees_the_updates_before_it,
  decide_outcome_lets_only_the_first_win, decide_outcome_rejects_bad_requests,
  decide_outcome_race_has_one_winner,
  decide_outcome_race_in_transactions_has_one_winner,
  unfinished_calls_are_undecided_and_owned_or_overdue, webhooks_are_stored_raw,
  insert_message_returns_fresh_ids,
  update_message_changes_the_mutable_fields_only,
  pending_messages_are_queued_sending_or_held_of_a_node,
  messages_for_call_in_id_order, message_ids_are_unique_across_instances,
  claim_message_claims_a_queued_message_once, claim_message_race_has_one_winner,
  claim_messages_claims_the_queued_ones_in_order,
  claim_for_sending_reads_the_opt_out_ledger,
  claim_messages_are_undone_by_a_rollback,
  claim_messages_race_has_one_winner_per_message,
  release_held_requeues_the_due_messages_of_a_node,
  a_page_round_trips_on_the_call_channel,
  find_message_by_sid_finds_the_carriers_id,
  record_status_moves_a_message_forward_only,
  status_reports_are_kept_oldest_first,
  a_report_that_overtook_the_send_is_applied_by_update_message,
  a_report_racing_the_send_answer_is_never_lost,
  gate_facts_count_within_each_window,
  caller_rate_counts_calls_up_to_the_texted_one,
  gate_facts_wait_for_a_transaction_on_them, the_opt_out_ledger_round_trips,
  messaging_calls_before_migrate_throw, messaging_writes_roll_back_together,
  insert_inbound_once_per_message_sid,
  an_inbound_text_is_consumed_once_per_consumer,
  a_consumed_text_is_pending_again_after_restore_or_rollback,
  pending_inbound_finds_this_nodes_texts_and_orphans,
  two_processes_never_both_claim_a_text,
  touch_contact_keeps_first_and_last_contact,
  upsert_tenant_replaces_its_numbers, commit_publishes_the_writes,
  rollback_discards_the_writes, transaction_misuse_is_reported,
  an_error_aborts_the_transaction, group_commit_of_many_writes,
  insert_run_round_trips_every_field, run_payloads_may_be_any_bytes,
  update_run_writes_what_a_segment_changes_if_seq_matches,
  update_run_rejects_bad_requests, update_run_race_has_one_winner,
  update_run_race_in_transactions_has_one_winner,
  unfinished_runs_are_active_and_owned_or_overdue,
  an_orphaned_run_is_adopted_by_one_node_only,
  runs_waiting_for_reply_match_tenant_and_contact, runs_for_call_in_id_order,
  run_steps_round_trip_in_seq_order,
  a_step_recorded_again_keeps_the_first_record,
  workflow_versions_are_saved_once, contact_tags_are_kept_once_and_sorted,
  run_calls_before_migrate_throw, run_writes_commit_and_roll_back_together,
  a_lost_update_run_does_not_abort_the_transaction, group_commit_of_many_runs,
  find_or_create_conversation_creates_it_once,
  conversation_refs_count_per_tenant,
  concurrent_creation_makes_one_row_per_customer_with_distinct_refs,
  update_conversation_writes_its_state_if_seq_matches,
  update_conversation_rejects_bad_requests,
  update_conversation_race_has_one_winner,
  update_conversation_race_in_transactions_has_one_winner,
  due_conversations_have_a_deadline_at_or_before_now,
  a_transcript_reads_its_last_messages_oldest_first,
  conversation_events_round_trip_oldest_first,
  owner_focus_is_set_and_replaced_per_tenant,
  ai_usage_sums_ai_turns_and_counts_errors_since,
  conversation_calls_before_migrate_throw,
  conversation_writes_commit_and_roll_back_together);

} // namespace ringback::store_conformance
