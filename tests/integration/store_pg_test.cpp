#include "ringback/adapters/store/pg_store.hpp"
#include "ringback/adapters/store/sql_common.hpp"

#include <gtest/gtest.h>

#include "store_conformance.hpp"
#include <pqxx/pqxx>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <set>
#include <thread>
#include <tuple>
#include <utility>

// pg_store against a real PostgreSQL, given by the test script as
// RINGBACK_TEST_PG (e.g. postgresql://ringback@127.0.0.1:55432/store_dev).
// Without it the tests are skipped, or fail if RINGBACK_REQUIRE_SERVICES=1.
// Each test works in a schema of its own (created by migrate(), dropped at
// the end), because test processes run in parallel against one server.

namespace ringback::store_conformance {
namespace {

using namespace std::chrono_literals;
using adapters::pg_store;
using adapters::pg_store_options;

/// The server URL; with none, skips the current test, or fails it if
/// services are required (`url` stays empty).
void require_server(std::string& url) {
  // Read on the main thread before a test starts any other.
  const char* env
    = std::getenv("RINGBACK_TEST_PG"); // NOLINT(concurrency-mt-unsafe)
  if (env != nullptr && *env != '\0') {
    url = env;
    return;
  }
  const char* require
    = std::getenv("RINGBACK_REQUIRE_SERVICES"); // NOLINT(concurrency-mt-unsafe)
  if (require != nullptr && std::string_view{require} == "1")
    FAIL() << "RINGBACK_TEST_PG is not set but RINGBACK_REQUIRE_SERVICES=1 "
              "requires PostgreSQL";
  GTEST_SKIP() << "RINGBACK_TEST_PG is not set (e.g. postgresql://"
                  "ringback@127.0.0.1:55432/store_dev): PostgreSQL tests "
                  "skipped";
}

/// A schema name no other test (process) uses.
std::string unique_schema() {
  static std::atomic<unsigned> counter{0};
  std::random_device rd;
  return "rbt_" + std::to_string(::getpid()) + "_" + std::to_string(counter++)
         + "_" + std::to_string(rd() % 1000000);
}

/// Runs SQL on a connection of its own, as an operator would.
pqxx::result admin_exec(const std::string& url, const std::string& sql) {
  pqxx::connection c{url};
  pqxx::nontransaction n{c};
  return n.exec(sql);
}

/// The schema of one test.
class PgSchema {
public:
  bool set_up() {
    require_server(url_);
    if (url_.empty())
      return false;
    name_ = unique_schema();
    return true;
  }

  void tear_down() {
    if (name_.empty())
      return;
    try {
      admin_exec(url_, "DROP SCHEMA IF EXISTS " + name_ + " CASCADE");
    } catch (const std::exception& e) {
      ADD_FAILURE() << "dropping schema " << name_ << ": " << e.what();
    }
    name_.clear();
  }

  pg_store_options options() const {
    pg_store_options o;
    o.url = url_;
    o.schema = name_;
    o.application_name = name_; // to find its connections
    return o;
  }

  /// Runs SQL in the schema.
  pqxx::result exec(const std::string& sql) const {
    return admin_exec(url_, "SET search_path TO " + name_ + "; " + sql);
  }

  /// Ends the server side of the stores' connections.
  int terminate_connections() const {
    auto r = admin_exec(url_, "SELECT count(pg_terminate_backend(pid)) FROM "
                              "pg_stat_activity WHERE application_name = '"
                                + name_ + "'");
    return r[0][0].as<int>();
  }

  const std::string& name() const {
    return name_;
  }

private:
  std::string url_;
  std::string name_;
};

struct pg_env {
  static constexpr std::string_view backend = "postgresql";
  static constexpr bool shared = true;

  void set_up() {
    schema_.set_up();
  }

  void tear_down() {
    schema_.tear_down();
  }

  std::unique_ptr<adapters::audited_store> open() {
    return std::make_unique<pg_store>(schema_.options());
  }

  PgSchema schema_;
};

INSTANTIATE_TYPED_TEST_SUITE_P(Postgresql, StoreConformance, pg_env);

/// The same store sending each statement of a transaction on its own.
struct pg_env_one_by_one : pg_env {
  std::unique_ptr<adapters::audited_store> open() {
    auto o = schema_.options();
    o.pipeline = false;
    return std::make_unique<pg_store>(std::move(o));
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(PostgresqlOneByOne, StoreConformance,
                               pg_env_one_by_one);

class PgStore : public ::testing::Test {
protected:
  void SetUp() override {
    schema_.set_up();
  }

  void TearDown() override {
    schema_.tear_down();
  }

  std::unique_ptr<pg_store> open(std::chrono::milliseconds lock_timeout = 5s) {
    auto o = schema_.options();
    o.lock_timeout = lock_timeout;
    auto s = std::make_unique<pg_store>(std::move(o));
    s->migrate();
    return s;
  }

  PgSchema schema_;
};

bool starts_with(const std::string& x, const std::string& prefix) {
  return x.rfind(prefix, 0) == 0;
}

TEST_F(PgStore, the_schema_has_its_tables_and_indexes) {
  auto s = open();
  auto r = schema_.exec(
    "SELECT string_agg(name, ',' ORDER BY name) FROM ("
    "SELECT tablename AS name FROM pg_tables WHERE schemaname = '"
    + schema_.name()
    + "' UNION ALL SELECT indexname FROM pg_indexes WHERE schemaname = '"
    + schema_.name() + "' AND indexname NOT LIKE '%_pkey') AS x");
  EXPECT_EQ(r[0][0].as<std::string>(),
            "calls,calls_caller_idx,calls_ringing_fallback_idx,"
            "contact_tags,contacts,"
            "conversation_events,conversation_events_ai_idx,"
            "conversation_events_conversation_idx,conversation_messages,"
            "conversation_messages_conversation_idx,conversations,"
            "conversations_close_idx,conversations_customer_idx,"
            "conversations_ref_idx,conversations_turn_idx,"
            "conversations_window_idx,"
            "inbound_messages,inbound_messages_pending_idx,"
            "inbound_messages_sender_idx,messages,"
            "messages_automated_idx,messages_call_idx,messages_pending_idx,"
            "messages_recipient_idx,messages_sid_idx,messages_text_back_idx,"
            "opt_outs,owner_focus,"
            "run_steps,runs,"
            "runs_call_idx,runs_live_wake_idx,"
            "runs_reply_idx,schema_migrations,status_reports,"
            "status_reports_sid_idx,tenant_numbers,tenant_numbers_tenant_idx,"
            "tenants,webhooks,webhooks_call_idx,workflow_versions");
  // Nothing leaked into the default schema of the shared database.
  auto leaked = schema_.exec("SELECT to_regclass('public.calls') IS NULL");
  EXPECT_TRUE(leaked[0][0].as<bool>());
}

TEST_F(PgStore, schemas_keep_tests_apart) {
  auto s = open();
  PgSchema other;
  ASSERT_TRUE(other.set_up());
  pg_store t{other.options()};
  t.migrate();
  EXPECT_TRUE(s->insert_call(make_call("CA1")));
  EXPECT_TRUE(t.insert_call(make_call("CA1")));
  EXPECT_FALSE(t.insert_call(make_call("CA1")));
  other.tear_down();
}

TEST_F(PgStore, a_dropped_connection_is_replaced_on_the_next_call) {
  auto s = open();
  ASSERT_TRUE(s->insert_call(make_call("CA1")));
  ASSERT_EQ(schema_.terminate_connections(), 1);
  auto what = error_of([&] { s->find_call("CA1"); });
  EXPECT_TRUE(starts_with(what, "postgresql find_call: ")) << what;
  EXPECT_TRUE(s->find_call("CA1")); // reconnected
  EXPECT_TRUE(s->ping());
}

TEST_F(PgStore, begin_reconnects_after_the_connection_died_idle) {
  auto s = open();
  ASSERT_TRUE(s->insert_call(make_call("CA1")));
  ASSERT_EQ(schema_.terminate_connections(), 1);
  s->begin(); // nothing was done yet: safe to reconnect at once
  EXPECT_TRUE(s->insert_call(make_call("CA2")));
  s->commit();
  EXPECT_TRUE(s->find_call("CA2"));
}

TEST_F(PgStore, ping_reconnects_too) {
  auto s = open();
  ASSERT_TRUE(s->ping());
  ASSERT_EQ(schema_.terminate_connections(), 1);
  EXPECT_TRUE(s->ping());
  EXPECT_TRUE(s->insert_call(make_call("CA1")));
}

TEST_F(PgStore, losing_the_connection_in_a_transaction_loses_it) {
  auto s = open();
  s->begin();
  ASSERT_TRUE(s->insert_call(make_call("CA1")));
  ASSERT_EQ(schema_.terminate_connections(), 1);
  auto what = error_of([&] { s->insert_call(make_call("CA2")); });
  EXPECT_TRUE(starts_with(what, "postgresql insert_call: ")) << what;
  EXPECT_FALSE(s->ping()); // in the broken transaction
  EXPECT_EQ(error_of([&] { s->commit(); }),
            "postgresql commit: the transaction was aborted by an earlier "
            "error; rolled back");
  s->begin();
  EXPECT_FALSE(s->find_call("CA1"));
  EXPECT_TRUE(s->insert_call(make_call("CA1")));
  s->commit();
  EXPECT_TRUE(s->find_call("CA1"));
}

TEST_F(PgStore, a_blocked_statement_fails_after_the_lock_timeout) {
  auto a = open();
  auto b = open(200ms);
  ASSERT_TRUE(a->insert_call(make_call("CA1")));
  a->begin();
  a->update_call(make_call("CA1")); // waits for the next statement
  ASSERT_TRUE(a->find_call("CA1")); // sent with it: holds the row lock
  auto decided = make_call("CA1");
  decided.phase = engine::call_phase::missed;
  auto what = error_of([&] { b->decide_outcome(decided); });
  EXPECT_TRUE(starts_with(what, "postgresql decide_outcome: canceling "
                                "statement due to lock timeout"))
    << what;
  a->rollback();
  EXPECT_TRUE(b->decide_outcome(decided));
}

TEST_F(PgStore, a_waiting_decider_sees_the_first_outcome) {
  auto a = open();
  auto b = open();
  ASSERT_TRUE(a->insert_call(make_call("CA1")));
  auto answered = make_call("CA1");
  answered.phase = engine::call_phase::answered;
  auto missed = make_call("CA1");
  missed.phase = engine::call_phase::missed;
  a->begin();
  ASSERT_TRUE(a->decide_outcome(answered));
  std::thread committer{[&] {
    std::this_thread::sleep_for(100ms);
    a->commit();
  }};
  EXPECT_FALSE(b->decide_outcome(missed)); // waits for a, then re-checks
  committer.join();
  EXPECT_EQ(b->find_call("CA1")->phase, engine::call_phase::answered);
}

TEST_F(PgStore, writes_whose_results_wait_go_with_the_next_statement) {
  auto s = open();
  for (auto sid : {"CA1", "CA2", "CA3"})
    ASSERT_TRUE(s->insert_call(make_call(sid)));
  s->begin();
  auto before = s->statement_round_trips();
  for (auto sid : {"CA1", "CA2", "CA3"}) {
    auto c = make_call(sid);
    c.dial_status = "busy";
    s->update_call(c);
  }
  EXPECT_EQ(s->statement_round_trips(), before); // nothing sent yet
  auto seen = s->find_call("CA2");
  EXPECT_EQ(s->statement_round_trips(), before + 1); // four statements
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->dial_status, "busy");
  auto last = make_call("CA3");
  last.dial_status = "no-answer";
  s->update_call(last);
  s->insert_webhook({"acme", "voice", "CA3", "/v", "body", "sig", false, 1});
  s->insert_webhook({"acme", "status", "CA3", "/s", "body", "sig", false, 2});
  s->commit(); // sends them first, together
  EXPECT_EQ(s->statement_round_trips(), before + 2);
  EXPECT_EQ(s->webhooks_for("CA3").size(), 2U);
  EXPECT_EQ(s->find_call("CA1")->dial_status, "busy");
  EXPECT_EQ(s->find_call("CA3")->dial_status, "no-answer");
}

TEST_F(PgStore, an_advisory_lock_goes_with_the_statement_after_it) {
  auto s = open();
  auto m = make_message("CA1");
  m.id = s->insert_message(m);
  m.message_sid = "SM1";
  m.state = engine::message_state::sent;
  s->begin();
  auto before = s->statement_round_trips();
  s->update_message(m); // the lock on SM1, then the update
  EXPECT_EQ(s->statement_round_trips(), before + 1);
  s->commit();
  EXPECT_EQ(s->find_message(m.id)->message_sid, "SM1");
  // The lock is held until the end of the transaction, as before.
  auto other = open(200ms);
  s->begin();
  s->update_message(m);
  auto r = make_report("SM1", engine::message_state::delivered,
                       m.updated_at + 1);
  other->begin(); // the lock is taken in transactions only
  auto what = error_of([&] { other->record_status(r); });
  EXPECT_TRUE(starts_with(what, "postgresql record_status: canceling "
                                "statement due to lock timeout"))
    << what;
  other->rollback();
  s->commit();
  EXPECT_TRUE(other->record_status(r).applied);
}

TEST_F(PgStore, a_failing_write_that_waited_fails_the_statement_it_went_with) {
  auto s = open();
  ASSERT_TRUE(s->insert_call(make_call("CA1")));
  schema_.exec("ALTER TABLE calls ADD CONSTRAINT no_boom "
               "CHECK (dial_status <> 'boom')");
  s->begin();
  auto c = make_call("CA1");
  c.dial_status = "boom";
  s->update_call(c); // waits: no error yet
  auto what = error_of([&] { s->find_call("CA1"); });
  EXPECT_TRUE(starts_with(what, "postgresql update_call: ")) << what;
  EXPECT_NE(what.find("violates check constraint \"no_boom\""),
            std::string::npos)
    << what;
  EXPECT_EQ(error_of([&] { s->commit(); }),
            "postgresql commit: the transaction was aborted by an earlier "
            "error; rolled back");
  s->begin();
  c.dial_status = "busy";
  s->update_call(c);
  s->commit();
  EXPECT_EQ(s->find_call("CA1")->dial_status, "busy");
}

TEST_F(PgStore, inserts_in_a_transaction_take_their_ids_ahead) {
  auto s = open();
  auto outside = s->insert_message(make_message("CA0")); // RETURNING id
  ASSERT_GT(outside, 0);
  s->begin();
  auto before = s->statement_round_trips();
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 3; ++i)
    ids.push_back(s->insert_message(make_message("CA1")));
  // One round trip took a block of ids; the inserts wait.
  EXPECT_EQ(s->statement_round_trips(), before + 1);
  EXPECT_GT(ids[0], outside);
  EXPECT_LT(ids[0], ids[1]);
  EXPECT_LT(ids[1], ids[2]);
  auto r = make_run();
  auto run = s->insert_run(r);
  EXPECT_EQ(s->statement_round_trips(), before + 2); // the runs' block
  auto seen = s->find_message(ids[1]);               // the inserts go first
  EXPECT_EQ(s->statement_round_trips(), before + 3);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->call_sid, "CA1");
  s->commit();
  EXPECT_EQ(s->messages_for_call("CA1").size(), 3U);
  ASSERT_TRUE(s->find_run(run));
  EXPECT_EQ(s->find_run(run)->workflow, r.workflow);
  // The next transaction goes on with the block's rest (taken within the
  // last second): no round trip for it, and ids keep growing.
  s->begin();
  auto trips = s->statement_round_trips();
  auto later = s->insert_message(make_message("CA2"));
  EXPECT_EQ(s->statement_round_trips(), trips);
  s->commit();
  EXPECT_GT(later, ids[2]);
  EXPECT_TRUE(s->find_message(later));
}

TEST_F(PgStore, a_failing_insert_that_waited_names_its_operation) {
  auto s = open();
  schema_.exec("ALTER TABLE messages ADD CONSTRAINT no_boom "
               "CHECK (body <> 'boom')");
  s->begin();
  auto m = make_message("CA1");
  m.body = "boom";
  auto id = s->insert_message(m); // waits: no error yet
  EXPECT_GT(id, 0);
  auto what = error_of([&] { s->find_message(id); });
  EXPECT_TRUE(starts_with(what, "postgresql insert_message: ")) << what;
  EXPECT_NE(what.find("violates check constraint \"no_boom\""),
            std::string::npos)
    << what;
  s->rollback();
  EXPECT_FALSE(s->find_message(id));
}

TEST_F(PgStore, statements_are_prepared_again_on_a_new_connection) {
  auto s = open();
  ASSERT_TRUE(s->insert_call(make_call("CA1")));
  s->begin();
  ASSERT_TRUE(s->find_call("CA1")); // prepared on this connection
  s->commit();
  ASSERT_EQ(schema_.terminate_connections(), 1);
  s->begin(); // reconnects
  auto c = make_call("CA1");
  c.dial_status = "busy";
  s->update_call(c);
  auto seen = s->find_call("CA1");
  s->commit();
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->dial_status, "busy");
}

TEST_F(PgStore, a_constraint_violation_names_the_operation) {
  auto s = open();
  schema_.exec("ALTER TABLE calls ADD CONSTRAINT no_boom "
               "CHECK (tenant_id <> 'boom')");
  auto c = make_call("CA1");
  c.tenant_id = "boom";
  auto what = error_of([&] { s->insert_call(c); });
  EXPECT_TRUE(starts_with(what, "postgresql insert_call: ")) << what;
  EXPECT_NE(what.find("violates check constraint \"no_boom\""),
            std::string::npos)
    << what;
  EXPECT_TRUE(s->insert_call(make_call("CA1")));
}

TEST_F(PgStore, text_that_is_not_utf8_is_refused_cleanly) {
  auto s = open();
  auto c = make_call("CA1");
  c.from = "\xff\xfe";
  auto what = error_of([&] { s->insert_call(c); });
  EXPECT_TRUE(starts_with(what, "postgresql insert_call: ")) << what;
  EXPECT_TRUE(s->insert_call(make_call("CA1")));
}

TEST_F(PgStore, an_unknown_enum_name_in_a_row_is_an_error) {
  auto s = open();
  ASSERT_TRUE(s->insert_call(make_call("CA1")));
  schema_.exec("UPDATE calls SET phase = 'bogus'");
  EXPECT_EQ(error_of([&] { s->find_call("CA1"); }),
            "postgresql find_call: unknown phase 'bogus' in the database");
}

TEST_F(PgStore, migrate_applies_only_missing_versions_in_order) {
  auto with = [&](std::vector<adapters::migration> ms) {
    auto o = schema_.options();
    o.migrations = std::move(ms);
    return std::make_unique<pg_store>(std::move(o));
  };
  adapters::migration v1{1, "one", "CREATE TABLE one (x INTEGER)"};
  adapters::migration v2{2, "two",
                         "CREATE TABLE two (x INTEGER);"
                         "INSERT INTO one VALUES (2)"};
  adapters::migration v3{3, "broken", "CREATE TABLE three (x INTEGER); BOGUS"};
  with({v1})->migrate();
  auto s = with({v1, v2});
  EXPECT_EQ(s->schema_version(), 1);
  s->migrate();
  s->migrate();
  EXPECT_EQ(s->schema_version(), 2);
  auto t = with({v1, v2, v3});
  EXPECT_EQ(error_of([&] { t->migrate(); }),
            "postgresql migrate: version 3 (broken): syntax error at or near "
            "\"BOGUS\" LINE 1: CREATE TABLE three (x INTEGER); BOGUS ^");
  EXPECT_EQ(t->schema_version(), 2);
  EXPECT_TRUE(
    schema_.exec("SELECT to_regclass('three') IS NULL")[0][0].as<bool>());
  EXPECT_EQ(schema_.exec("SELECT count(*) FROM one")[0][0].as<int>(), 1);
}

TEST_F(PgStore, many_processes_migrating_one_schema_take_turns) {
  // Separate connections, as separate processes would have.
  std::vector<std::unique_ptr<pg_store>> stores;
  stores.reserve(6);
  for (int i = 0; i < 6; ++i)
    stores.push_back(std::make_unique<pg_store>(schema_.options()));
  auto errors = race(6, [&](int i) { stores[i]->migrate(); });
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(
    schema_.exec("SELECT count(*) FROM schema_migrations")[0][0].as<int>(),
    adapters::latest_schema_version());
}

// -- workflow runs ------------------------------------------------------------

/// Connections race to update one run from the same expected seq, each on
/// its own thread (as separate processes would): exactly one wins a round.
void race_update_run(const std::vector<std::unique_ptr<pg_store>>& stores,
                     pg_store& setup, bool in_transactions) {
  const int n = static_cast<int>(stores.size());
  for (int round = 0; round < 60; ++round) {
    auto r = make_waiting_run("gone", "timer", 1'000);
    r.seq = 10 * round;
    r.id = setup.insert_run(r);
    std::vector<char> won(n, 0);
    auto errors = race(n, [&](int i) {
      auto mine = bumped(r);
      mine.node_id = "p" + std::to_string(i);
      auto& s = *stores[i];
      if (in_transactions)
        s.begin();
      won[i] = s.update_run(mine, r.seq) ? 1 : 0;
      if (in_transactions)
        s.commit();
    });
    ASSERT_TRUE(errors.empty()) << errors.front();
    int winners = 0;
    std::string winner;
    for (int i = 0; i < n; ++i)
      if (won[i] != 0) {
        ++winners;
        winner = "p" + std::to_string(i);
      }
    ASSERT_EQ(winners, 1) << "round " << round;
    auto stored = setup.find_run(r.id);
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->node_id, winner);
    EXPECT_EQ(stored->seq, r.seq + 1);
  }
}

TEST_F(PgStore, racing_connections_update_a_run_exactly_once) {
  auto setup = open();
  std::vector<std::unique_ptr<pg_store>> stores;
  for (int i = 0; i < 4; ++i)
    stores.push_back(open());
  race_update_run(stores, *setup, false);
  race_update_run(stores, *setup, true);
}

TEST_F(PgStore, a_waiting_run_updater_sees_the_first_writer) {
  auto a = open();
  auto b = open();
  auto r = make_waiting_run("gone", "timer", 1'000);
  r.id = a->insert_run(r);
  auto mine = bumped(r);
  mine.node_id = "a";
  auto theirs = bumped(r);
  theirs.node_id = "b";
  a->begin();
  ASSERT_TRUE(a->update_run(mine, 0)); // holds the row lock
  std::thread committer{[&] {
    std::this_thread::sleep_for(100ms);
    a->commit();
  }};
  auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(b->update_run(theirs, 0)); // waits for a, then re-checks seq
  EXPECT_GE(std::chrono::steady_clock::now() - started, 50ms);
  committer.join();
  EXPECT_EQ(b->find_run(r.id)->node_id, "a");
  // Had the first writer rolled back, the waiting one would have won.
  auto next = bumped(*b->find_run(r.id));
  next.node_id = "a2";
  a->begin();
  ASSERT_TRUE(a->update_run(next, 1));
  std::thread roller{[&] {
    std::this_thread::sleep_for(100ms);
    a->rollback();
  }};
  auto other = bumped(*b->find_run(r.id));
  other.node_id = "b2";
  EXPECT_TRUE(b->update_run(other, 1));
  roller.join();
  EXPECT_EQ(a->find_run(r.id)->node_id, "b2");
}

TEST_F(PgStore, run_payloads_are_bytea_and_readable_as_json) {
  auto s = open();
  auto r = make_run();
  r.state = R"({"pc":3,"vars":{"name":"Zoë \"Z\" O'Neil"}})";
  r.error = "none";
  auto id = s->insert_run(r);
  auto got = schema_.exec("SELECT convert_from(state, 'UTF8')::jsonb "
                          "#>> '{vars,name}', convert_from(error, 'UTF8') "
                          "FROM runs WHERE id = "
                          + std::to_string(id));
  EXPECT_EQ(got[0][0].as<std::string>(), "Zoë \"Z\" O'Neil");
  EXPECT_EQ(got[0][1].as<std::string>(), "none");
  auto types = schema_.exec(
    "SELECT string_agg(table_name || '.' || column_name, ',' ORDER BY "
    "table_name, column_name) FROM information_schema.columns WHERE "
    "table_schema = '"
    + schema_.name() + "' AND data_type = 'bytea'");
  EXPECT_EQ(types[0][0].as<std::string>(),
            "conversation_events.detail,conversation_messages.body,"
            "run_steps.detail,runs.error,runs.state,webhooks.body,"
            "webhooks.call_sid,webhooks.path,webhooks.signature,"
            "workflow_versions.source");
}

TEST_F(PgStore, an_unknown_run_status_in_a_row_is_an_error) {
  auto s = open();
  auto id = s->insert_run(make_run());
  schema_.exec("UPDATE runs SET status = 'paused'");
  EXPECT_EQ(error_of([&] { s->find_run(id); }),
            "postgresql find_run: unknown status 'paused' in the database");
}

TEST_F(PgStore, text_fields_of_a_run_that_are_not_utf8_are_refused_cleanly) {
  auto s = open();
  auto r = make_run();
  r.contact = "\xff\xfe";
  auto what = error_of([&] { s->insert_run(r); });
  EXPECT_TRUE(starts_with(what, "postgresql insert_run: ")) << what;
  EXPECT_GT(s->insert_run(make_run()), 0);
}

TEST_F(PgStore, a_version_1_schema_is_migrated_to_the_latest) {
  {
    auto o = schema_.options();
    o.migrations = {adapters::pg_migrations().at(0)};
    pg_store old{std::move(o)};
    old.migrate();
    EXPECT_EQ(old.schema_version(), 1);
    ASSERT_TRUE(old.insert_call(make_call("CA1")));
    old.touch_contact("acme", "+15551230001", 10);
  }
  auto s = open();
  EXPECT_EQ(s->schema_version(), adapters::latest_schema_version());
  EXPECT_TRUE(s->find_call("CA1"));
  s->tag_contact("acme", "+15551230001", "vip", 20);
  EXPECT_EQ(s->find_contact("acme", "+15551230001")->first_seen, 10);
  EXPECT_GT(s->insert_run(make_run()), 0);
}

// -- messaging ----------------------------------------------------------------

TEST_F(PgStore, a_version_2_schema_keeps_its_messages_readable) {
  // Messages written by the release before safe messaging read back as
  // urgent automated ones.
  {
    auto o = schema_.options();
    o.migrations = {adapters::pg_migrations().at(0),
                    adapters::pg_migrations().at(1)};
    pg_store old{std::move(o)};
    old.migrate();
    EXPECT_EQ(old.schema_version(), 2);
  }
  schema_.exec(
    "INSERT INTO messages (tenant_id, call_sid, purpose, from_number, "
    "to_number, body, state, attempts, message_sid, error_code, "
    "error_message, node_id, created_at, updated_at) VALUES "
    "('acme', 'CA1', 'missed_call.text_back', '+15557650002', "
    "'+15551230001', 'Sorry we missed you!', 'sent', 1, 'SM1', 0, '', 'n1', "
    "1700000000500, 1700000000600), "
    "('acme', 'CA2', 'missed_call.text_back', '+15557650002', "
    "'+15551230001', 'Sorry we missed you!', 'queued', 0, '', 0, '', 'n1', "
    "1700000000700, 1700000000700)");
  auto s = open();
  EXPECT_EQ(s->schema_version(), adapters::latest_schema_version());
  auto old = s->find_message_by_sid("SM1");
  ASSERT_TRUE(old);
  EXPECT_EQ(old->call_sid, "CA1");
  EXPECT_EQ(old->kind, engine::send_kind::automated);
  EXPECT_TRUE(old->urgent);
  EXPECT_EQ(old->not_before, 0);
  EXPECT_EQ(old->reason, "");
  EXPECT_EQ(old->sent_at, 0);
  EXPECT_EQ(old->status_at, 0);
  auto pending = s->pending_messages("n1");
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].call_sid, "CA2");
  EXPECT_TRUE(s->claim_message(pending[0].id, "n1", 1'700'000'001'000));
  EXPECT_TRUE(
    s->record_status(
       make_report("SM1", engine::message_state::delivered, 1'700'000'002'000))
      .applied);
  engine::gate_query q;
  q.tenant_id = "acme";
  q.phone = "+15551230001";
  q.now = 1'700'000'003'000;
  EXPECT_EQ(s->gate_facts_for(q).automated_last_hour, 2);
}

TEST_F(PgStore, a_waiting_claimer_sees_the_first_claim) {
  auto a = open();
  auto b = open();
  auto id = a->insert_message(make_message("CA1"));
  a->begin();
  ASSERT_TRUE(a->claim_message(id, "a", 10)); // holds the row lock
  std::thread committer{[&] {
    std::this_thread::sleep_for(100ms);
    a->commit();
  }};
  auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(b->claim_message(id, "b", 11)); // waits, then re-checks
  EXPECT_GE(std::chrono::steady_clock::now() - started, 50ms);
  committer.join();
  EXPECT_EQ(b->find_message(id)->node_id, "a");
  // Had the first claimer rolled back, the waiting one would have won.
  auto next = a->insert_message(make_message("CA2"));
  a->begin();
  ASSERT_TRUE(a->claim_message(next, "a", 20));
  std::thread roller{[&] {
    std::this_thread::sleep_for(100ms);
    a->rollback();
  }};
  auto claimed = b->claim_message(next, "b", 21);
  roller.join();
  ASSERT_TRUE(claimed);
  EXPECT_EQ(claimed->node_id, "b");
  EXPECT_EQ(claimed->attempts, 1);
}

/// `a` opens a transaction and asks the gate about `first`; `b` then asks
/// about `second` in a transaction of its own. Returns how long `b` waited
/// (`a` commits after `hold`, having stored a text-back to `first`) and the
/// facts `b` got.
std::pair<std::chrono::milliseconds, engine::gate_facts>
gate_while_another_asks(pg_store& a, pg_store& b,
                        const engine::gate_query& first,
                        const engine::gate_query& second,
                        std::chrono::milliseconds hold) {
  a.begin();
  a.gate_facts_for(first);
  auto m = make_message("CA1");
  m.kind = engine::send_kind::text_back;
  m.tenant_id = first.tenant_id;
  m.to = first.phone;
  m.created_at = first.now;
  a.insert_message(m);
  std::thread committer{[&] {
    std::this_thread::sleep_for(hold);
    a.commit();
  }};
  auto started = std::chrono::steady_clock::now();
  b.begin();
  auto facts = b.gate_facts_for(second);
  b.commit();
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - started);
  committer.join();
  return {waited, facts};
}

TEST_F(PgStore, gate_facts_serialize_per_tenant_and_phone_only) {
  auto a = open();
  auto b = open();
  engine::gate_query q;
  q.tenant_id = "acme";
  q.phone = "+15551230001";
  q.now = 1'700'000'100'000;
  // The same tenant and phone: b waits for a's commit and sees its text-back.
  auto [waited, facts] = gate_while_another_asks(*a, *b, q, q, 300ms);
  EXPECT_GE(waited, 200ms);
  EXPECT_EQ(facts.last_text_back_at, q.now);
  // Another phone, or another tenant: no waiting.
  auto other_phone = q;
  other_phone.phone = "+15551230002";
  std::tie(waited, facts) = gate_while_another_asks(*a, *b, q, other_phone,
                                                    1500ms);
  EXPECT_LT(waited, 1000ms);
  EXPECT_FALSE(facts.last_text_back_at);
  auto other_tenant = q;
  other_tenant.tenant_id = "beta";
  std::tie(waited, facts) = gate_while_another_asks(*a, *b, q, other_tenant,
                                                    1500ms);
  EXPECT_LT(waited, 1000ms);
  EXPECT_FALSE(facts.last_text_back_at);
}

TEST_F(PgStore, two_processes_send_one_first_text_back) {
  // Each process: lock via the gate, decide, write; exactly one text-back
  // per round, however the two interleave.
  auto a = open();
  auto b = open();
  pg_store* racers[] = {a.get(), b.get()};
  for (int round = 0; round < 40; ++round) {
    engine::gate_query q;
    q.tenant_id = "acme";
    q.phone = "+1555123" + std::to_string(1000 + round);
    q.now = 1'700'000'100'000;
    std::vector<char> sent(2, 0);
    auto errors = race(2, [&](int i) {
      auto& s = *racers[i];
      s.begin();
      auto facts = s.gate_facts_for(q);
      if (!facts.last_text_back_at) {
        auto m = make_message("CA" + std::to_string(round));
        m.kind = engine::send_kind::text_back;
        m.to = q.phone;
        m.created_at = q.now;
        s.insert_message(m);
        sent[i] = 1;
      }
      s.commit();
    });
    ASSERT_TRUE(errors.empty()) << errors.front();
    EXPECT_EQ(sent[0] + sent[1], 1) << "round " << round;
  }
}

TEST_F(PgStore, the_gate_query_uses_its_indexes) {
  auto s = open();
  auto sql = adapters::store_detail::sql_text(
    adapters::store_detail::sql_id::gate_facts,
    adapters::store_detail::sql_dialect::postgresql);
  // Generic plans need the parameters' types; tiny tables favour sequential
  // scans, so those are turned off to see which indexes can serve.
  auto r = schema_.exec(
    "SET enable_seqscan = off; PREPARE g (text, text, bigint, bigint, "
    "bigint, bigint, text, bigint) AS "
    + sql
    + "; SET plan_cache_mode = force_generic_plan; EXPLAIN EXECUTE g ('acme', "
      "'+15551230001', 0, 0, 0, 0, 'CA1', 9223372036854775807)");
  std::string plan;
  for (const auto& row : r)
    plan += row[0].as<std::string>() + "\n";
  for (const char* index :
       {"messages_text_back_idx", "messages_automated_idx",
        "messages_recipient_idx", "inbound_messages_sender_idx",
        "calls_caller_idx", "calls_pkey", "opt_outs_pkey"})
    EXPECT_NE(plan.find(index), std::string::npos) << index << "\n" << plan;
}

TEST_F(PgStore, the_gate_of_an_owner_notification_reads_no_other_kinds) {
  // Version 5: the last text-back and the automated count of a recipient
  // with many notifications (an owner) read none of them.
  auto s = open();
  schema_.exec(
    "INSERT INTO messages (tenant_id, call_sid, purpose, from_number, "
    "to_number, body, state, attempts, message_sid, error_code, "
    "error_message, node_id, created_at, updated_at, kind, urgent, "
    "not_before, reason, sent_at, status_at) SELECT 'acme', 'CA' || g, "
    "'notify', '+15550001000', '+15559990000', 'missed call', 'delivered', "
    "1, 'SM' || g, 0, '', 'n1', 1000 + g, 1000 + g, 'notification', true, "
    "0, '', 0, 0 FROM generate_series(1, 5000) AS g; ANALYZE messages");
  auto explain = [&](const std::string& select) {
    std::string plan;
    for (const auto& row : schema_.exec("EXPLAIN (ANALYZE, COSTS OFF, "
                                        "TIMING OFF, SUMMARY OFF) "
                                        + select))
      plan += row[0].as<std::string>() + "\n";
    return plan;
  };
  auto last_text_back = explain(
    "SELECT MAX(created_at) FROM messages WHERE tenant_id = 'acme' AND "
    "to_number = '+15559990000' AND kind = 'text_back' AND "
    "state <> 'refused' AND created_at > 0");
  EXPECT_NE(last_text_back.find("messages_text_back_idx"), std::string::npos)
    << last_text_back;
  EXPECT_EQ(last_text_back.find("Rows Removed"), std::string::npos)
    << last_text_back;
  auto automated = explain(
    "SELECT COUNT(*) FROM messages WHERE tenant_id = 'acme' AND "
    "to_number = '+15559990000' AND kind IN ('text_back', 'automated') AND "
    "state <> 'refused' AND created_at > 0");
  EXPECT_NE(automated.find("messages_automated_idx"), std::string::npos)
    << automated;
  EXPECT_EQ(automated.find("Rows Removed"), std::string::npos) << automated;
  engine::gate_query q;
  q.tenant_id = "acme";
  q.phone = "+15559990000";
  q.now = 6000;
  auto facts = s->gate_facts_for(q);
  EXPECT_FALSE(facts.last_text_back_at);
  EXPECT_EQ(facts.automated_last_hour, 0);
  EXPECT_EQ(facts.exchanged_in_loop_window, 5000);
}

// -- audit rows and workflow versions: fewer round trips -------------------

TEST_F(PgStore, audit_rows_of_a_transaction_are_written_at_its_end) {
  auto s = open();
  auto count = [&](const char* table) {
    return schema_.exec(std::string{"SELECT count(*) FROM "} + table)[0][0]
      .as<int>();
  };
  s->begin();
  ASSERT_TRUE(s->insert_call(make_call("CA1")));
  auto run = s->insert_run(make_run());
  s->insert_webhook({"acme", "voice", "CA1", "/v", "b1", "s", false, 1});
  s->insert_run_steps({make_step(run, 0), make_step(run, 1)});
  s->insert_webhook({"acme", "status", "CA1", "/s", "b2", "s", false, 2});
  s->insert_run_steps({make_step(run, 1, "again"), make_step(run, 2)});
  s->insert_conversation_messages({make_transcript_line(7, "customer", "hi", 1),
                                   make_transcript_line(7, "owner", "yo", 2)});
  s->insert_conversation_event(make_event(7, "opened", 1));
  // A read of an audit table in the transaction sends the rows first.
  auto hooks = s->webhooks_for("CA1");
  ASSERT_EQ(hooks.size(), 2u);
  EXPECT_EQ(hooks[0].body, "b1");
  EXPECT_EQ(hooks[1].body, "b2");
  s->insert_webhook({"acme", "dial", "CA1", "/d", "b3", "s", false, 3});
  s->commit();
  EXPECT_EQ(count("webhooks"), 3);
  EXPECT_EQ(s->webhooks_for("CA1").back().body, "b3");
  auto steps = s->run_steps(run);
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[1].outcome, "ok"); // a step recorded again keeps the first
  EXPECT_EQ(s->conversation_messages(7, 10).size(), 2u);
  EXPECT_EQ(s->conversation_events(7).size(), 1u);
}

TEST_F(PgStore, audit_rows_of_a_rolled_back_transaction_are_dropped) {
  auto s = open();
  s->begin();
  s->insert_webhook({"acme", "voice", "CA1", "/v", "b", "s", false, 1});
  s->insert_run_steps({make_step(1, 0)});
  s->rollback();
  s->begin();
  s->insert_webhook({"acme", "voice", "CA1", "/v", "kept", "s", false, 2});
  s->commit();
  auto hooks = s->webhooks_for("CA1");
  ASSERT_EQ(hooks.size(), 1u);
  EXPECT_EQ(hooks[0].body, "kept");
  EXPECT_TRUE(s->run_steps(1).empty());
}

TEST_F(PgStore, a_failing_audit_row_fails_the_commit_and_names_its_operation) {
  auto s = open();
  schema_.exec("ALTER TABLE webhooks ADD CONSTRAINT no_boom "
               "CHECK (tenant_id <> 'boom')");
  s->begin();
  ASSERT_TRUE(s->insert_call(make_call("CA1")));
  s->insert_webhook({"boom", "voice", "CA1", "/v", "b", "s", false, 1});
  auto what = error_of([&] { s->commit(); });
  EXPECT_TRUE(starts_with(what, "postgresql insert_webhook: ")) << what;
  EXPECT_NE(what.find("violates check constraint \"no_boom\""),
            std::string::npos)
    << what;
  // The whole transaction was rolled back; the store works on.
  EXPECT_FALSE(s->find_call("CA1"));
  s->begin();
  ASSERT_TRUE(s->insert_call(make_call("CA1")));
  s->insert_webhook({"acme", "voice", "CA1", "/v", "b", "s", false, 1});
  s->commit();
  EXPECT_TRUE(s->find_call("CA1"));
  EXPECT_EQ(s->webhooks_for("CA1").size(), 1u);
}

TEST_F(PgStore, many_audit_rows_take_several_statements) {
  // 8 columns a row: 1,000 rows a statement; 2,500 rows take three, inside
  // a transaction and outside one (then in a transaction of its own).
  auto s = open();
  std::vector<engine::run_step_record> steps;
  for (int i = 0; i < 2500; ++i)
    steps.push_back(make_step(1, i));
  s->insert_run_steps(steps);
  EXPECT_EQ(s->run_steps(1).size(), 2500u);
  for (auto& step : steps)
    step.run_id = 2;
  s->begin();
  s->insert_run_steps(steps);
  s->commit();
  auto stored = s->run_steps(2);
  ASSERT_EQ(stored.size(), 2500u);
  EXPECT_EQ(stored.back().step_id, "step2499");
}

TEST_F(PgStore, a_workflow_version_is_saved_again_after_a_rollback) {
  // Versions known to be stored are not sent again; one saved in a
  // transaction that rolled back is not known.
  auto s = open();
  engine::workflow_version_record v{"acme",    "wf",        "v1",
                                    "wf.yaml", "steps: []", 1};
  s->begin();
  s->save_workflow_version(v);
  s->rollback();
  EXPECT_FALSE(s->find_workflow_version("acme", "wf", "v1"));
  s->begin();
  s->save_workflow_version(v);
  s->commit();
  EXPECT_TRUE(s->find_workflow_version("acme", "wf", "v1"));
  // Known now: saving it again sends nothing (a row deleted behind the
  // store's back is not written again by this instance).
  schema_.exec("DELETE FROM workflow_versions");
  s->save_workflow_version(v);
  EXPECT_FALSE(s->find_workflow_version("acme", "wf", "v1"));
  // Another instance does not know it.
  auto t = open();
  t->save_workflow_version(v);
  EXPECT_TRUE(s->find_workflow_version("acme", "wf", "v1"));
}

TEST_F(PgStore, an_unknown_kind_or_source_in_a_row_is_an_error) {
  auto s = open();
  s->insert_message(make_message("CA1"));
  s->save_opt_out({"acme", "+15551230001", true, 1, "STOP",
                   engine::opt_out_source::keyword, 1});
  schema_.exec("UPDATE messages SET kind = 'spam'; UPDATE opt_outs SET "
               "source = 'rumour'");
  EXPECT_EQ(error_of([&] { s->messages_for_call("CA1"); }),
            "postgresql messages_for_call: unknown kind 'spam' in the "
            "database");
  EXPECT_EQ(error_of([&] { s->opted_out("acme"); }),
            "postgresql opted_out: unknown source 'rumour' in the database");
}

// -- conversations ------------------------------------------------------------

TEST_F(PgStore, a_version_3_schema_keeps_its_rows) {
  // A database of the release before conversations: its data stays and
  // conversations start from ref 1.
  {
    auto o = schema_.options();
    o.migrations = {adapters::pg_migrations().at(0),
                    adapters::pg_migrations().at(1),
                    adapters::pg_migrations().at(2)};
    pg_store old{std::move(o)};
    old.migrate();
    EXPECT_EQ(old.schema_version(), 3);
    write_version_3_rows(old,
                         [&](const std::string& sql) { schema_.exec(sql); });
  }
  auto s = open();
  EXPECT_EQ(s->schema_version(), 10);
  EXPECT_EQ(schema_
              .exec("SELECT string_agg(version::text, ',' ORDER BY "
                    "version) FROM schema_migrations")[0][0]
              .as<std::string>(),
            "1,2,3,4,5,6,7,8,9,10");
  expect_version_3_rows_kept(*s);
}

/// Connections race to decide one owner-reply window from the same expected
/// seq, each in a transaction of its own on its own thread (as separate
/// processes would): the owner's reply on one, the timer on the other.
/// Exactly one wins a round, and its outcome is the one stored.
TEST_F(PgStore, racing_transactions_decide_a_window_exactly_once) {
  auto setup = open();
  auto a = open();
  auto b = open();
  pg_store* racers[] = {a.get(), b.get()};
  for (int round = 0; round < 60; ++round) {
    auto c = setup->find_or_create_conversation("acme", customer(round),
                                                "+15557650002", round);
    auto window = bumped(c);
    window.state = engine::conversation_state::owner_window;
    window.window_seq = 1;
    window.window_deadline = 60'000;
    ASSERT_TRUE(setup->update_conversation(window, c.seq));
    std::vector<char> won(2, 0);
    auto errors = race(2, [&](int i) {
      auto& s = *racers[i];
      auto mine = bumped(window);
      mine.outcome = i == 0 ? engine::window_outcome::owner
                            : engine::window_outcome::ai;
      mine.state = i == 0 ? engine::conversation_state::owner_active
                          : engine::conversation_state::ai_active;
      mine.window_deadline = 0;
      mine.node_id = i == 0 ? "owner-reply" : "timer";
      s.begin();
      won[i] = s.update_conversation(mine, window.seq) ? 1 : 0;
      auto e = make_event(
        c.id, won[i] != 0 ? (i == 0 ? "owner_won" : "ai_won") : "lost", round);
      e.window_seq = 1;
      s.insert_conversation_event(e);
      s.commit();
    });
    ASSERT_TRUE(errors.empty()) << errors.front();
    ASSERT_EQ(won[0] + won[1], 1) << "round " << round;
    auto stored = setup->find_conversation(c.id);
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->seq, window.seq + 1);
    EXPECT_EQ(stored->outcome, won[0] != 0 ? engine::window_outcome::owner
                                           : engine::window_outcome::ai);
    EXPECT_EQ(stored->node_id, won[0] != 0 ? "owner-reply" : "timer");
    std::multiset<std::string> kinds;
    for (const auto& e : setup->conversation_events(c.id))
      kinds.insert(e.kind);
    EXPECT_EQ(kinds.count("lost"), 1u);
    EXPECT_EQ(kinds.count("owner_won") + kinds.count("ai_won"), 1u);
  }
}

TEST_F(PgStore, a_waiting_conversation_updater_sees_the_first_writer) {
  auto a = open();
  auto b = open();
  auto c = a->find_or_create_conversation("acme", customer(1), "+15557650002",
                                          1);
  auto mine = bumped(c);
  mine.outcome = engine::window_outcome::owner;
  auto theirs = bumped(c);
  theirs.outcome = engine::window_outcome::ai;
  a->begin();
  ASSERT_TRUE(a->update_conversation(mine, 0)); // holds the row lock
  std::thread committer{[&] {
    std::this_thread::sleep_for(100ms);
    a->commit();
  }};
  auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(b->update_conversation(theirs, 0)); // waits, then re-checks
  EXPECT_GE(std::chrono::steady_clock::now() - started, 50ms);
  committer.join();
  EXPECT_EQ(b->find_conversation(c.id)->outcome, engine::window_outcome::owner);
  // Had the first writer rolled back, the waiting one would have won.
  auto next = bumped(*b->find_conversation(c.id));
  next.node_id = "a";
  a->begin();
  ASSERT_TRUE(a->update_conversation(next, 1));
  std::thread roller{[&] {
    std::this_thread::sleep_for(100ms);
    a->rollback();
  }};
  auto other = bumped(*b->find_conversation(c.id));
  other.node_id = "b";
  EXPECT_TRUE(b->update_conversation(other, 1));
  roller.join();
  EXPECT_EQ(a->find_conversation(c.id)->node_id, "b");
}

/// How long `b` waits to create `customer` of `tenant` while `a` holds an
/// open transaction that created a conversation of acme (and then commits or
/// rolls back after `hold`), and what it gets.
std::pair<std::chrono::milliseconds, engine::conversation_record>
create_while_another_creates(pg_store& a, pg_store& b, const std::string& mine,
                             const std::string& tenant,
                             const std::string& theirs,
                             std::chrono::milliseconds hold, bool commit) {
  a.begin();
  a.find_or_create_conversation("acme", mine, "+15557650002", 1);
  std::thread ender{[&] {
    std::this_thread::sleep_for(hold);
    if (commit)
      a.commit();
    else
      a.rollback();
  }};
  auto started = std::chrono::steady_clock::now();
  auto c = b.find_or_create_conversation(tenant, theirs, "+15557650002", 2);
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - started);
  ender.join();
  return {waited, c};
}

TEST_F(PgStore, conversation_creation_takes_turns_per_tenant) {
  auto a = open();
  auto b = open();
  // The same tenant: b waits for a's commit and takes the next ref.
  auto [waited, c] = create_while_another_creates(*a, *b, customer(1), "acme",
                                                  customer(2), 300ms, true);
  EXPECT_GE(waited, 200ms);
  EXPECT_EQ(c.ref, 2);
  // The same customer: b gets a's row.
  std::tie(waited, c) = create_while_another_creates(*a, *b, customer(3),
                                                     "acme", customer(3), 300ms,
                                                     true);
  EXPECT_GE(waited, 200ms);
  EXPECT_EQ(c.ref, 3);
  EXPECT_EQ(c.id, a->find_conversation_by_ref("acme", 3)->id);
  // A rolled back creation leaves its ref to the next.
  std::tie(waited, c) = create_while_another_creates(*a, *b, customer(4),
                                                     "acme", customer(5), 300ms,
                                                     false);
  EXPECT_GE(waited, 200ms);
  EXPECT_EQ(c.ref, 4);
  EXPECT_EQ(c.customer, customer(5));
  EXPECT_FALSE(a->find_conversation_by_ref("acme", 5));
  // Another tenant, or a known conversation: no waiting.
  std::tie(waited, c) = create_while_another_creates(*a, *b, customer(6),
                                                     "beta", customer(1),
                                                     1500ms, true);
  EXPECT_LT(waited, 1000ms);
  EXPECT_EQ(c.ref, 1);
  std::tie(waited, c) = create_while_another_creates(*a, *b, customer(7),
                                                     "acme", customer(2),
                                                     1500ms, true);
  EXPECT_LT(waited, 1000ms);
  EXPECT_EQ(c.ref, 2);
}

TEST_F(PgStore, lookups_by_key_keep_their_keys_as_tables_grow) {
  auto s = open();
  // Autovacuum kept out of the way (before the plans are made: changing a
  // table's options makes its plans again).
  schema_.exec("ALTER TABLE calls SET (autovacuum_enabled = false); "
               "ALTER TABLE messages SET (autovacuum_enabled = false); "
               "ALTER TABLE conversations SET (autovacuum_enabled = false)");
  // A session that prepares the hot lookups while the tables are empty, as
  // the store's connections do on a new database, and keeps the plans
  // (generic ones, as a prepared statement settles on after a few
  // executions).
  pqxx::connection session{schema_.options().url};
  pqxx::nontransaction in{session};
  in.exec("SET search_path TO " + schema_.name()
          + "; SET plan_cache_mode = force_generic_plan");
  using adapters::store_detail::sql_id;
  struct lookup {
    sql_id id;
    const char* types;
    const char* args;
    const char* index; ///< the key it must use
  };
  const lookup lookups[] = {
    {sql_id::decide_outcome,
     "text, boolean, bigint, integer, text, integer, text, bigint, text, "
     "text, text",
     "'CA7', true, 0, 0, 'no-answer', 0, 'n1', 9, 'missed', 'dial_result', "
     "'ringing'",
     "calls_pkey"},
    {sql_id::claim_message, "bigint, text, bigint, text",
     "7, 'n1', 9, 'queued'", "messages_pkey"},
    {sql_id::find_conversation_by_customer, "text, text", "'acme', '+15557'",
     "Index Scan using conversations_customer_idx"},
    {sql_id::find_conversation_by_ref, "text, integer", "'acme', 7",
     "Index Scan using conversations_ref_idx"},
    // the next ref: the last one, read backwards
    {sql_id::create_conversation, "text, text, text, bigint",
     "'acme', '+15550000', '+1555765', 9",
     "Index Only Scan Backward using conversations_ref_idx"},
  };
  auto plan = [&](const lookup& l) {
    const auto name = "q" + std::to_string(static_cast<int>(l.id));
    std::string result;
    for (const auto& row :
         in.exec("EXPLAIN EXECUTE " + name + " (" + l.args + ")"))
      result += row[0].as<std::string>() + "\n";
    return result;
  };
  for (const auto& l : lookups) {
    in.exec("PREPARE q" + std::to_string(static_cast<int>(l.id)) + " ("
            + l.types + ") AS "
            + adapters::store_detail::sql_text(
              l.id, adapters::store_detail::sql_dialect::postgresql));
    plan(l); // made for empty tables
  }
  // The tables grow without statistics, as in a new database's first minute.
  schema_.exec(
    "INSERT INTO calls (call_sid, tenant_id, from_number, to_number, "
    "owner_phone, phase, decided, ended, started_at, fallback_at, "
    "fallback_checks, dial_status, dial_duration, node_id, updated_at) "
    "SELECT 'CA' || g, 'acme', '+1555' || g, '+15557650000', '+15551110000', "
    "CASE WHEN g % 10 = 0 THEN 'ended' ELSE 'ringing' END, 'none', false, g, "
    "g + 30000, 0, '', 0, 'n1', g FROM generate_series(1, 5000) AS g; "
    "INSERT INTO messages (tenant_id, call_sid, purpose, from_number, "
    "to_number, body, state, attempts, message_sid, error_code, "
    "error_message, node_id, created_at, updated_at, kind, urgent, "
    "not_before, reason, sent_at, status_at) SELECT 'acme', 'CA' || g, "
    "'text_back', '+15557650000', '+1555' || g, 'sorry we missed you', "
    "'queued', 0, '', 0, '', 'n1', g, g, 'text_back', true, 0, '', 0, 0 "
    "FROM generate_series(1, 5000) AS g; "
    "INSERT INTO conversations (tenant_id, customer, business_number, ref, "
    "state, window_seq, window_deadline, outcome, turn_at, close_at, "
    "ai_replies, opened_at, last_customer_at, last_owner_at, last_ai_at, "
    "node_id, seq, updated_at) SELECT 'acme', '+1555' || g, '+1555765', g, "
    "'owner_active', 1, 0, 'owner', 0, 0, 0, 1, 1, 1, 0, 'n1', 1, 1 FROM "
    "generate_series(1, 5000) AS g");
  // Each lookup still reads one row through its key, not a partial index of
  // the live rows (every ringing call, every unsent message) nor the
  // tenant's every conversation.
  for (const auto& l : lookups) {
    auto p = plan(l);
    EXPECT_NE(p.find(l.index), std::string::npos) << l.index << "\n" << p;
  }
  // And they still do what they did.
  s->begin();
  auto c = s->find_call("CA7");
  ASSERT_TRUE(c);
  c->phase = engine::call_phase::missed;
  c->decided = engine::decided_by::dial_result;
  EXPECT_TRUE(s->decide_outcome(*c));
  EXPECT_FALSE(s->decide_outcome(*c)) << "decided once";
  EXPECT_TRUE(s->claim_message(7, "n1", 9));
  EXPECT_FALSE(s->claim_message(7, "n2", 9)) << "claimed once";
  EXPECT_EQ(s->find_or_create_conversation("acme", "+15557", "+1555765", 9)
              .ref,
            7)
    << "the existing one";
  EXPECT_EQ(s->find_or_create_conversation("acme", "+15559999", "+1555765", 9)
              .ref,
            5001)
    << "a new one";
  s->commit();
}

TEST_F(PgStore, the_conversation_queries_use_their_indexes) {
  auto s = open();
  // Generic plans need the parameters' types; tiny tables favour sequential
  // scans, so those are turned off to see which indexes can serve.
  auto plan = [&](adapters::store_detail::sql_id id, const std::string& types,
                  const std::string& args) {
    auto sql = adapters::store_detail::sql_text(
      id, adapters::store_detail::sql_dialect::postgresql);
    auto r = schema_.exec("SET enable_seqscan = off; PREPARE q (" + types
                          + ") AS " + sql
                          + "; SET plan_cache_mode = force_generic_plan; "
                            "EXPLAIN EXECUTE q ("
                          + args + ")");
    std::string result;
    for (const auto& row : r)
      result += row[0].as<std::string>() + "\n";
    return result;
  };
  // Statistics of a tenant with many customers (without them, the two
  // unique indexes look alike for a lookup by customer).
  schema_.exec(
    "INSERT INTO conversations (tenant_id, customer, business_number, ref, "
    "state, window_seq, window_deadline, outcome, turn_at, close_at, "
    "ai_replies, opened_at, last_customer_at, last_owner_at, last_ai_at, "
    "node_id, seq, updated_at) SELECT 'acme', '+1555' || g, '+1555765', g, "
    "'owner_active', 1, 0, 'owner', 0, 0, 0, 1, 1, 1, 0, 'n1', 1, 1 FROM "
    "generate_series(1, 2000) AS g; ANALYZE conversations");
  using adapters::store_detail::sql_id;
  auto due = plan(sql_id::due_conversations, "bigint, bigint, text",
                  "5, 10, 'acme'");
  for (const char* index :
       {"conversations_window_idx", "conversations_turn_idx",
        "conversations_close_idx"})
    EXPECT_NE(due.find(index), std::string::npos) << index << "\n" << due;
  auto usage = plan(sql_id::ai_usage_since, "text, bigint", "'acme', 0");
  EXPECT_NE(usage.find("conversation_events_ai_idx"), std::string::npos)
    << usage;
  auto transcript = plan(sql_id::conversation_messages, "bigint, bigint",
                         "1, 20");
  EXPECT_NE(transcript.find("conversation_messages_conversation_idx"),
            std::string::npos)
    << transcript;
  auto events = plan(sql_id::conversation_events, "bigint", "1");
  EXPECT_NE(events.find("conversation_events_conversation_idx"),
            std::string::npos)
    << events;
  auto by_ref = plan(sql_id::find_conversation_by_ref, "text, integer",
                     "'acme', 1");
  EXPECT_NE(by_ref.find("conversations_ref_idx"), std::string::npos) << by_ref;
  auto by_customer = plan(sql_id::find_conversation_by_customer, "text, text",
                          "'acme', '+1555'");
  EXPECT_NE(by_customer.find("conversations_customer_idx"), std::string::npos)
    << by_customer;
}

TEST_F(PgStore, transcripts_and_events_are_bytea_and_readable_as_text) {
  auto s = open();
  auto c = s->find_or_create_conversation("acme", "+15551230001",
                                          "+15557650002", 1);
  s->insert_conversation_messages(
    {make_transcript_line(c.id, "customer", "Zoë's sink", 2),
     make_transcript_line(c.id, "ai", raw_bytes(), 3)});
  auto e = make_event(c.id, "ai_error", 4);
  e.detail = "HTTP 500: \xff";
  s->insert_conversation_event(e);
  EXPECT_EQ(schema_
              .exec("SELECT convert_from(body, 'UTF8') FROM "
                    "conversation_messages ORDER BY id LIMIT 1")[0][0]
              .as<std::string>(),
            "Zoë's sink");
  EXPECT_EQ(s->conversation_messages(c.id, 10).at(1).body, raw_bytes());
  EXPECT_EQ(s->conversation_events(c.id).at(0).detail, "HTTP 500: \xff");
}

TEST_F(PgStore, an_unknown_conversation_state_in_a_row_is_an_error) {
  auto s = open();
  auto c = s->find_or_create_conversation("acme", "+15551230001",
                                          "+15557650002", 1);
  schema_.exec("UPDATE conversations SET state = 'paused'");
  EXPECT_EQ(error_of([&] { s->find_conversation(c.id); }),
            "postgresql find_conversation: unknown state 'paused' in the "
            "database");
  schema_.exec("UPDATE conversations SET state = 'closed', outcome = 'draw', "
               "turn_at = 1");
  EXPECT_EQ(error_of([&] { s->due_conversations("acme", 5, 10); }),
            "postgresql due_conversations: unknown outcome 'draw' in the "
            "database");
}

} // namespace
} // namespace ringback::store_conformance
