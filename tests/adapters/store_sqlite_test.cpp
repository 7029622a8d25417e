#include "ringback/adapters/store/sql_common.hpp"
#include "ringback/adapters/store/sqlite_store.hpp"

#include <gtest/gtest.h>

#include "store_conformance.hpp"
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

namespace ringback::store_conformance {
namespace {

using namespace std::chrono_literals;
using adapters::sqlite_store;
using adapters::sqlite_store_options;

/// Instances on one database file in a scratch directory.
struct sqlite_file_env {
  static constexpr std::string_view backend = "sqlite";
  static constexpr bool shared = true;

  void set_up() {
    dir_ = std::make_unique<ScratchDir>();
  }

  void tear_down() {
    dir_.reset();
  }

  std::unique_ptr<adapters::audited_store> open() {
    return std::make_unique<sqlite_store>((dir_->path() / "store.db").string());
  }

  std::unique_ptr<ScratchDir> dir_;
};

/// ":memory:": every instance is a database of its own.
struct sqlite_memory_env {
  static constexpr std::string_view backend = "sqlite";
  static constexpr bool shared = false;

  void set_up() {
    // nop
  }

  void tear_down() {
    // nop
  }

  std::unique_ptr<adapters::audited_store> open() {
    return std::make_unique<sqlite_store>(":memory:");
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(SqliteFile, StoreConformance, sqlite_file_env);
INSTANTIATE_TYPED_TEST_SUITE_P(SqliteMemory, StoreConformance,
                               sqlite_memory_env);

class SqliteStore : public ::testing::Test {
protected:
  std::string path() const {
    return (dir_.path() / "store.db").string();
  }

  std::unique_ptr<sqlite_store>
  open(std::chrono::milliseconds busy_timeout = 5000ms) {
    sqlite_store_options options;
    options.path = path();
    options.busy_timeout = busy_timeout;
    auto s = std::make_unique<sqlite_store>(std::move(options));
    s->migrate();
    return s;
  }

  /// Runs SQL on a raw connection to the file, as an operator or another
  /// program would.
  void exec_raw(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path().c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    auto rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    std::string why = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << why;
  }

  /// The first column of the first row of `sql` on a raw connection ("NULL"
  /// for SQL's null, "<error>" when there is no row or the query fails).
  std::string query_raw(const std::string& sql) {
    sqlite3* db = nullptr;
    sqlite3_open(path().c_str(), &db);
    sqlite3_stmt* stmt = nullptr;
    std::string result = "<error>";
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK
        && sqlite3_step(stmt) == SQLITE_ROW) {
      const auto* text = sqlite3_column_text(stmt, 0);
      result = text ? reinterpret_cast<const char*>(text) : "NULL";
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return result;
  }

  /// The lines of `EXPLAIN QUERY PLAN sql` on a raw connection.
  std::string query_plan(const std::string& sql) {
    sqlite3* db = nullptr;
    sqlite3_open(path().c_str(), &db);
    sqlite3_stmt* stmt = nullptr;
    std::string result;
    if (sqlite3_prepare_v2(db, ("EXPLAIN QUERY PLAN " + sql).c_str(), -1, &stmt,
                           nullptr)
        == SQLITE_OK)
      while (sqlite3_step(stmt) == SQLITE_ROW)
        result += std::string(
                    reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3)))
                  + "\n";
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return result;
  }

  ScratchDir dir_;
};

TEST_F(SqliteStore, a_missing_directory_is_a_clear_error) {
  auto bad = (dir_.path() / "no" / "such" / "dir" / "x.db").string();
  EXPECT_EQ(error_of([&] { sqlite_store s{bad}; }),
            "sqlite open: cannot open '" + bad + "': directory '"
              + (dir_.path() / "no" / "such" / "dir").string()
              + "' does not exist");
}

TEST_F(SqliteStore, an_unwritable_file_is_a_clear_error) {
  // A directory where the database file should be.
  auto bad = (dir_.path() / "db").string();
  std::filesystem::create_directory(bad);
  auto what = error_of([&] { sqlite_store s{bad}; });
  EXPECT_EQ(what.rfind("sqlite open: cannot open '" + bad + "': ", 0), 0u)
    << what;
}

TEST_F(SqliteStore, connections_use_wal_normal_sync_and_a_busy_timeout) {
  auto s = open(1234ms);
  EXPECT_EQ(s->pragma("journal_mode"), "wal");
  EXPECT_EQ(s->pragma("synchronous"), "1"); // NORMAL
  EXPECT_EQ(s->pragma("busy_timeout"), "1234");
  EXPECT_EQ(s->pragma("foreign_keys"), "1");
  EXPECT_EQ(error_of([&] { s->pragma("journal_mode; DROP TABLE calls"); }),
            "sqlite pragma: not a pragma name: 'journal_mode; DROP TABLE "
            "calls'");
}

TEST_F(SqliteStore, the_wal_checkpoint_waits_for_upkeep) {
  auto s = open();
  // About a page a row; the database file changes only when a checkpoint
  // copies pages from the WAL into it.
  auto write_pages = [&](int pages) {
    s->begin();
    for (int i = 0; i < pages; ++i) {
      engine::webhook_record w;
      w.kind = "voice";
      w.call_sid = "CA" + std::to_string(i);
      w.path = "/webhooks/twilio/voice";
      w.body = std::string(3000, 'x');
      w.received_at = i;
      s->insert_webhook(w);
    }
    s->commit();
  };
  auto db_size = [&] { return std::filesystem::file_size(path()); };
  const auto migrated = db_size();
  write_pages(1200);
  EXPECT_EQ(db_size(), migrated) << "the commit checkpointed";
  s->upkeep();
  const auto checkpointed = db_size();
  EXPECT_GT(checkpointed, migrated + 1000u * 3000u);
  s->upkeep(); // nothing new to copy
  EXPECT_EQ(db_size(), checkpointed);
  // Upkeep never asked for: past 4,000 pages the commit checkpoints.
  write_pages(4500);
  EXPECT_GT(db_size(), checkpointed + 4000u * 3000u);
}

TEST_F(SqliteStore, the_schema_has_its_tables_and_indexes) {
  auto s = open();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path().c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "SELECT name FROM sqlite_master WHERE type IN "
                               "('table', 'index') AND name NOT LIKE "
                               "'sqlite_%' ORDER BY name",
                               -1, &stmt, nullptr),
            SQLITE_OK);
  std::vector<std::string> names;
  while (sqlite3_step(stmt) == SQLITE_ROW)
    names.emplace_back(
      reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  const std::vector<std::string> expected{
    "calls",
    "calls_caller_idx",
    "calls_ringing_fallback_idx",
    "contact_tags",
    "contacts",
    "conversation_events",
    "conversation_events_ai_idx",
    "conversation_events_conversation_idx",
    "conversation_messages",
    "conversation_messages_conversation_idx",
    "conversations",
    "conversations_close_idx",
    "conversations_customer_idx",
    "conversations_ref_idx",
    "conversations_turn_idx",
    "conversations_window_idx",
    "inbound_messages",
    "inbound_messages_pending_idx",
    "inbound_messages_sender_idx",
    "messages",
    "messages_automated_idx",
    "messages_call_idx",
    "messages_pending_idx",
    "messages_recipient_idx",
    "messages_sid_idx",
    "messages_text_back_idx",
    "opt_outs",
    "owner_focus",
    "run_steps",
    "runs",
    "runs_call_idx",
    "runs_live_wake_idx",
    "runs_reply_idx",
    "schema_migrations",
    "status_reports",
    "status_reports_sid_idx",
    "tenant_numbers",
    "tenant_numbers_tenant_idx",
    "tenants",
    "webhooks",
    "webhooks_call_idx",
    "workflow_versions"};
  EXPECT_EQ(names, expected);
}

TEST_F(SqliteStore, data_survives_reopening) {
  {
    auto s = open();
    ASSERT_TRUE(s->insert_call(make_call("CA1")));
    s->begin();
    s->insert_message(make_message("CA1"));
    s->commit();
  }
  auto s = open();
  EXPECT_TRUE(s->find_call("CA1"));
  EXPECT_EQ(s->messages_for_call("CA1").size(), 1u);
}

TEST_F(SqliteStore, a_write_fails_after_the_busy_timeout) {
  auto a = open();
  auto b = open(50ms);
  a->begin();
  ASSERT_TRUE(a->insert_call(make_call("CA1")));
  EXPECT_EQ(error_of([&] { b->insert_call(make_call("CA2")); }),
            "sqlite insert_call: database is locked");
  EXPECT_EQ(error_of([&] { b->begin(); }), "sqlite begin: database is locked");
  EXPECT_EQ(error_of([&] { b->migrate(); }),
            "sqlite migrate: database is locked");
  EXPECT_FALSE(b->find_call("CA1")); // readers do not wait (WAL)
  a->commit();
  EXPECT_TRUE(b->insert_call(make_call("CA2")));
  EXPECT_TRUE(b->find_call("CA1"));
}

TEST_F(SqliteStore, a_waiting_write_goes_ahead_after_the_commit) {
  auto a = open();
  auto b = open();
  a->begin();
  std::thread committer{[&] {
    std::this_thread::sleep_for(50ms);
    a->commit();
  }};
  EXPECT_TRUE(b->insert_call(make_call("CA1")));
  committer.join();
}

TEST_F(SqliteStore, closing_with_an_open_transaction_rolls_back) {
  auto a = open();
  a->begin();
  ASSERT_TRUE(a->insert_call(make_call("CA1")));
  a.reset();
  auto b = open(50ms);
  EXPECT_FALSE(b->find_call("CA1"));
  EXPECT_TRUE(b->insert_call(make_call("CA1")));
}

TEST_F(SqliteStore, a_constraint_violation_names_the_operation) {
  auto s = open();
  exec_raw("CREATE TRIGGER no_boom BEFORE INSERT ON calls "
           "WHEN NEW.tenant_id = 'boom' "
           "BEGIN SELECT RAISE(ABORT, 'boom rejected'); END");
  auto c = make_call("CA1");
  c.tenant_id = "boom";
  EXPECT_EQ(error_of([&] { s->insert_call(c); }),
            "sqlite insert_call: boom rejected");
  EXPECT_TRUE(s->insert_call(make_call("CA1")));
}

TEST_F(SqliteStore, an_unknown_enum_name_in_a_row_is_an_error) {
  auto s = open();
  ASSERT_TRUE(s->insert_call(make_call("CA1")));
  s->insert_message(make_message("CA1"));
  exec_raw("UPDATE calls SET phase = 'bogus'; UPDATE messages SET state = "
           "'lost'; INSERT INTO tenants VALUES ('t', 'T', '+1', 'UTC', 0); "
           "INSERT INTO tenant_numbers VALUES ('+2', 't', 'pager', 1.0)");
  EXPECT_EQ(error_of([&] { s->find_call("CA1"); }),
            "sqlite find_call: unknown phase 'bogus' in the database");
  EXPECT_EQ(error_of([&] { s->messages_for_call("CA1"); }),
            "sqlite messages_for_call: unknown state 'lost' in the database");
  EXPECT_EQ(error_of([&] { s->find_tenant("t"); }),
            "sqlite find_tenant: unknown kind 'pager' in the database");
}

TEST_F(SqliteStore, an_unknown_run_status_in_a_row_is_an_error) {
  auto s = open();
  auto id = s->insert_run(make_run());
  exec_raw("UPDATE runs SET status = 'paused'");
  EXPECT_EQ(error_of([&] { s->find_run(id); }),
            "sqlite find_run: unknown status 'paused' in the database");
  EXPECT_TRUE(s->unfinished_runs("n1", 0, 10).empty()); // not active
  EXPECT_EQ(error_of([&] { s->runs_for_call("CA1"); }),
            "sqlite runs_for_call: unknown status 'paused' in the database");
}

TEST_F(SqliteStore, a_database_of_version_1_is_migrated_to_the_latest) {
  // A file written by the release before durable runs: its data stays.
  {
    sqlite_store_options options;
    options.path = path();
    options.migrations = {adapters::sqlite_migrations().at(0)};
    sqlite_store old{std::move(options)};
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
  EXPECT_EQ(s->contact_tags("acme", "+15551230001"),
            (std::vector<std::string>{"vip"}));
  EXPECT_GT(s->insert_run(make_run()), 0);
  EXPECT_EQ(query_raw("SELECT group_concat(version) FROM schema_migrations"),
            "1,2,3,4,5,6,7,8,9,10");
}

TEST_F(SqliteStore, a_database_of_version_2_keeps_its_messages_readable) {
  // Messages written by the release before safe messaging (without the
  // columns of version 3) read back as urgent automated ones.
  {
    sqlite_store_options options;
    options.path = path();
    options.migrations = {adapters::sqlite_migrations().at(0),
                          adapters::sqlite_migrations().at(1)};
    sqlite_store old{std::move(options)};
    old.migrate();
    EXPECT_EQ(old.schema_version(), 2);
  }
  exec_raw("INSERT INTO messages (tenant_id, call_sid, purpose, from_number, "
           "to_number, body, state, attempts, message_sid, error_code, "
           "error_message, node_id, created_at, updated_at) VALUES "
           "('acme', 'CA1', 'missed_call.text_back', '+15557650002', "
           "'+15551230001', 'Sorry we missed you!', 'sent', 1, 'SM1', 0, '', "
           "'n1', 1700000000500, 1700000000600), "
           "('acme', 'CA2', 'missed_call.text_back', '+15557650002', "
           "'+15551230001', 'Sorry we missed you!', 'queued', 0, '', 0, '', "
           "'n1', 1700000000700, 1700000000700)");
  auto s = open();
  EXPECT_EQ(s->schema_version(), adapters::latest_schema_version());
  auto old = s->find_message_by_sid("SM1");
  ASSERT_TRUE(old);
  EXPECT_EQ(old->call_sid, "CA1");
  EXPECT_EQ(old->state, engine::message_state::sent);
  EXPECT_EQ(old->kind, engine::send_kind::automated);
  EXPECT_TRUE(old->urgent);
  EXPECT_EQ(old->not_before, 0);
  EXPECT_EQ(old->reason, "");
  EXPECT_EQ(old->sent_at, 0);
  EXPECT_EQ(old->status_at, 0);
  EXPECT_EQ(old->updated_at, 1'700'000'000'600);
  // The outbox and the delivery reports work on them.
  EXPECT_EQ(ids(s->pending_messages("n1")),
            (std::vector<std::int64_t>{old->id + 1}));
  EXPECT_TRUE(s->claim_message(old->id + 1, "n1", 1'700'000'001'000));
  auto r = s->record_status(
    make_report("SM1", engine::message_state::delivered, 1'700'000'002'000));
  EXPECT_TRUE(r.applied);
  EXPECT_EQ(s->find_message(old->id)->state, engine::message_state::delivered);
  engine::gate_query q;
  q.tenant_id = "acme";
  q.phone = "+15551230001";
  q.now = 1'700'000'003'000;
  EXPECT_EQ(s->gate_facts_for(q).automated_last_hour, 2);
}

TEST_F(SqliteStore, the_gate_queries_use_their_indexes) {
  auto s = open();
  auto gate = query_plan(adapters::store_detail::sql_text(
    adapters::store_detail::sql_id::gate_facts,
    adapters::store_detail::sql_dialect::sqlite));
  EXPECT_NE(gate.find("messages_recipient_idx"), std::string::npos) << gate;
  EXPECT_NE(gate.find("inbound_messages_sender_idx"), std::string::npos)
    << gate;
  EXPECT_NE(gate.find("calls_caller_idx"), std::string::npos) << gate;
  EXPECT_NE(gate.find("sqlite_autoindex_opt_outs_1"), std::string::npos)
    << gate;
  auto by_sid = query_plan(
    "SELECT id FROM messages WHERE message_sid = 'SM1' AND "
    "message_sid <> ''");
  EXPECT_NE(by_sid.find("messages_sid_idx"), std::string::npos) << by_sid;
  auto reports = query_plan("SELECT id FROM status_reports WHERE message_sid = "
                            "'SM1'");
  EXPECT_NE(reports.find("status_reports_sid_idx"), std::string::npos)
    << reports;
}

TEST_F(SqliteStore, the_recovery_and_outbox_queries_use_the_live_indexes) {
  auto s = open();
  using adapters::store_detail::sql_id;
  auto plan = [&](sql_id id) {
    return query_plan(adapters::store_detail::sql_text(
      id, adapters::store_detail::sql_dialect::sqlite));
  };
  // Each partial index is used by the query it is for: one that stated its
  // condition differently would scan the table instead.
  for (auto [id, indexes] :
       {std::pair{sql_id::unfinished_calls,
                  std::vector<std::string>{"calls_ringing_fallback_idx"}},
        std::pair{sql_id::unfinished_runs,
                  std::vector<std::string>{"runs_live_wake_idx"}},
        std::pair{sql_id::runs_waiting_for_reply,
                  std::vector<std::string>{"runs_reply_idx"}},
        std::pair{sql_id::pending_messages,
                  std::vector<std::string>{"messages_pending_idx"}},
        std::pair{sql_id::release_held,
                  std::vector<std::string>{"messages_pending_idx"}}}) {
    auto p = plan(id);
    for (const auto& index : indexes)
      EXPECT_NE(p.find(index), std::string::npos) << index << "\n" << p;
    // A partial index's scan reads the live rows only; no table scan.
    for (const char* table : {"SCAN calls\n", "SCAN runs\n", "SCAN messages\n"})
      EXPECT_EQ(("\n" + p).find(std::string("\n") + table), std::string::npos)
        << table << p;
  }
  auto gate = plan(sql_id::gate_facts);
  EXPECT_NE(gate.find("messages_text_back_idx"), std::string::npos) << gate;
  EXPECT_NE(gate.find("messages_automated_idx"), std::string::npos) << gate;
}

/// The indexes the program of `sql` deletes from or inserts into (EXPLAIN:
/// the root page an IdxDelete/IdxInsert's cursor was opened on, named from
/// sqlite_schema).
std::vector<std::string> indexes_written(const std::string& path,
                                         const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  std::map<int, std::string> by_root;
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db,
                     "SELECT rootpage, name FROM sqlite_schema WHERE type = "
                     "'index'",
                     -1, &stmt, nullptr);
  while (sqlite3_step(stmt) == SQLITE_ROW)
    by_root[sqlite3_column_int(stmt, 0)]
      = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1));
  sqlite3_finalize(stmt);
  std::map<int, int> root_of_cursor;
  std::set<std::string> written;
  sqlite3_prepare_v2(db, ("EXPLAIN " + sql).c_str(), -1, &stmt, nullptr);
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    std::string op = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1));
    int p1 = sqlite3_column_int(stmt, 2);
    int p2 = sqlite3_column_int(stmt, 3);
    if (op == "OpenWrite")
      root_of_cursor[p1] = p2;
    else if ((op == "IdxDelete" || op == "IdxInsert")
             && by_root.count(root_of_cursor[p1]))
      written.insert(by_root[root_of_cursor[p1]]);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return {written.begin(), written.end()};
}

TEST_F(SqliteStore, updates_write_only_the_indexes_on_what_they_change) {
  // SQLite rewrites the entry of every index on a column an UPDATE names,
  // changed or not, and every such entry is a page for the WAL: the hot
  // updates name only what changes, and what they change is indexed for the
  // live rows only (docs/benchmarks.md, "write amplification").
  auto s = open();
  using adapters::store_detail::sql_id;
  auto written = [&](sql_id id) {
    return indexes_written(path(),
                           adapters::store_detail::sql_text(
                             id, adapters::store_detail::sql_dialect::sqlite));
  };
  using names = std::vector<std::string>;
  EXPECT_EQ(written(sql_id::update_call),
            (names{"calls_ringing_fallback_idx"}));
  EXPECT_EQ(written(sql_id::decide_outcome),
            (names{"calls_ringing_fallback_idx"}));
  EXPECT_EQ(written(sql_id::update_run),
            (names{"runs_live_wake_idx", "runs_reply_idx"}));
  EXPECT_EQ(written(sql_id::update_conversation),
            (names{"conversations_close_idx", "conversations_turn_idx",
                   "conversations_window_idx"}));
  // A message's state changes: only the outbox's index of unsent messages
  // and, once, the carrier's id follow it.
  EXPECT_EQ(written(sql_id::update_message),
            (names{"messages_pending_idx", "messages_sid_idx"}));
  EXPECT_EQ(written(sql_id::claim_message), (names{"messages_pending_idx"}));
  EXPECT_EQ(written(sql_id::apply_status), (names{"messages_pending_idx"}));
}

TEST_F(SqliteStore, the_per_call_writes_build_no_temporary_table) {
  // A RETURNING clause (or anything else that needs one) makes SQLite open
  // an ephemeral table for every execution: allocations the size of a page
  // cache, freed again at once (20 % of the store thread's time at 1,500
  // calls/s was the inserts' and the claims' RETURNING).
  auto s = open();
  using adapters::store_detail::sql_id;
  for (auto id :
       {sql_id::insert_call, sql_id::update_call, sql_id::decide_outcome,
        sql_id::find_call, sql_id::insert_webhook, sql_id::insert_message,
        sql_id::update_message, sql_id::find_message, sql_id::claim_message,
        sql_id::apply_status, sql_id::insert_run, sql_id::update_run,
        sql_id::insert_run_step, sql_id::update_conversation,
        sql_id::create_conversation, sql_id::insert_inbound,
        sql_id::touch_contact}) {
    const auto& sql = adapters::store_detail::sql_text(
      id, adapters::store_detail::sql_dialect::sqlite);
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path().c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, ("EXPLAIN " + sql).c_str(), -1, &stmt,
                                 nullptr),
              SQLITE_OK)
      << sql;
    std::string ephemeral;
    while (sqlite3_step(stmt) == SQLITE_ROW)
      if (std::string_view{reinterpret_cast<const char*>(
            sqlite3_column_text(stmt, 1))}
          == "OpenEphemeral")
        ephemeral = "OpenEphemeral";
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    EXPECT_EQ(ephemeral, "") << sql;
  }
}

TEST_F(SqliteStore, a_database_of_version_3_keeps_its_rows) {
  // A file written by the release before conversations: its data stays and
  // conversations start from ref 1.
  {
    sqlite_store_options options;
    options.path = path();
    options.migrations = {adapters::sqlite_migrations().at(0),
                          adapters::sqlite_migrations().at(1),
                          adapters::sqlite_migrations().at(2)};
    sqlite_store old{std::move(options)};
    old.migrate();
    EXPECT_EQ(old.schema_version(), 3);
    write_version_3_rows(old, [&](const std::string& sql) { exec_raw(sql); });
  }
  auto s = open();
  EXPECT_EQ(s->schema_version(), 10);
  EXPECT_EQ(query_raw("SELECT group_concat(version) FROM schema_migrations"),
            "1,2,3,4,5,6,7,8,9,10");
  expect_version_3_rows_kept(*s);
}

TEST_F(SqliteStore, version_9_keeps_every_row_id_and_index_in_fewer_b_trees) {
  // Version 9 rebuilds seven tables without AUTOINCREMENT and run_steps in
  // its key's b-tree: the rows, their ids, the columns and the indexes of a
  // version 8 database stay; new ids follow the largest; no insert writes
  // sqlite_sequence any more; run_steps is one b-tree.
  const std::vector<std::string> tables{"webhooks",
                                        "messages",
                                        "runs",
                                        "run_steps",
                                        "status_reports",
                                        "conversations",
                                        "conversation_messages",
                                        "conversation_events"};
  auto columns = [&](const std::string& t) {
    return query_raw("SELECT group_concat(name || ':' || type || ':' || "
                     "\"notnull\" || ':' || ifnull(dflt_value, '') || ':' || "
                     "pk, ',') FROM pragma_table_info('"
                     + t + "')");
  };
  // Each index's definition, its whitespace collapsed.
  auto indexes = [&] {
    std::string all;
    for (const auto& t : tables)
      all += t + ": "
             + query_raw("SELECT group_concat(name || ' ' || sql, '; ') FROM "
                         "(SELECT name, sql FROM sqlite_master WHERE type = "
                         "'index' AND sql IS NOT NULL AND tbl_name = '"
                         + t + "' ORDER BY name)")
             + "\n";
    std::string collapsed;
    for (char ch : all) {
      bool space = ch == ' ' || ch == '\n';
      if (!space || (!collapsed.empty() && collapsed.back() != ' '))
        collapsed += space ? ' ' : ch;
    }
    return collapsed;
  };
  std::map<std::string, std::string> columns_before;
  std::string indexes_before;
  std::int64_t last_message = 0;
  std::int64_t last_run = 0;
  std::int64_t conversation = 0;
  {
    sqlite_store_options options;
    options.path = path();
    options.migrations.assign(adapters::sqlite_migrations().begin(),
                              adapters::sqlite_migrations().begin() + 8);
    sqlite_store old{std::move(options)};
    old.migrate();
    ASSERT_EQ(old.schema_version(), 8);
    ASSERT_TRUE(old.insert_call(make_call("CA1")));
    old.insert_webhook({"acme", "voice", "CA1", "/v", "b1", "s1", false, 1});
    old.insert_webhook({"acme", "status", "CA1", "/s", "b2", "s2", true, 2});
    old.insert_message(make_message("CA1"));
    auto sent = make_message("CA1");
    sent.message_sid = "SM1";
    last_message = old.insert_message(sent);
    old.record_status(make_report("SM1", engine::message_state::delivered, 3));
    last_run = old.insert_run(make_run());
    old.insert_run_steps(
      {make_step(last_run, 1), make_step(last_run, 2), make_step(last_run, 3)});
    auto c = old.find_or_create_conversation("acme", "+15551230001",
                                             "+15557650002", 20);
    conversation = c.id;
    old.insert_conversation_messages(
      {make_transcript_line(c.id, "customer", "hi", 21)});
    old.insert_conversation_event(make_event(c.id, "opened", 20));
    for (const auto& t : tables)
      columns_before[t] = columns(t);
    indexes_before = indexes();
  }
  EXPECT_NE(query_raw("SELECT count(*) FROM sqlite_sequence"), "0")
    << "version 8 counts its ids in sqlite_sequence";

  auto s = open();
  EXPECT_EQ(s->schema_version(), 10);
  for (const auto& t : tables)
    EXPECT_EQ(columns(t), columns_before[t]) << t;
  EXPECT_EQ(indexes(), indexes_before);
  EXPECT_EQ(query_raw("SELECT count(*) FROM sqlite_master WHERE sql LIKE "
                      "'%AUTOINCREMENT%'"),
            "0");
  EXPECT_EQ(query_raw("SELECT count(*) FROM sqlite_master WHERE tbl_name = "
                      "'run_steps' AND rootpage > 0"),
            "1")
    << "run_steps and its key are one b-tree";

  // Every row is there, with its id.
  auto hooks = s->webhooks_for("CA1");
  ASSERT_EQ(hooks.size(), 2u);
  EXPECT_EQ(hooks[1].body, "b2");
  EXPECT_TRUE(hooks[1].duplicate);
  auto messages = s->messages_for_call("CA1");
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[1].id, last_message);
  EXPECT_EQ(s->status_reports("SM1").size(), 1u);
  ASSERT_EQ(s->runs_for_call("CA1").size(), 1u);
  EXPECT_EQ(s->runs_for_call("CA1")[0].id, last_run);
  EXPECT_EQ(s->run_steps(last_run).size(), 3u);
  EXPECT_EQ(s->find_conversation(conversation)->customer, "+15551230001");
  EXPECT_EQ(s->conversation_messages(conversation, 10).size(), 1u);
  EXPECT_EQ(s->conversation_events(conversation).size(), 1u);

  // New ids follow the largest; nothing is counted in sqlite_sequence.
  EXPECT_EQ(s->insert_message(make_message("CA1")), last_message + 1);
  EXPECT_EQ(s->insert_run(make_run()), last_run + 1);
  s->insert_webhook({"acme", "voice", "CA2", "/v", "b3", "s3", false, 4});
  s->insert_run_steps({make_step(last_run + 1, 1)});
  s->insert_run_steps({make_step(last_run + 1, 1, "again")});
  ASSERT_EQ(s->run_steps(last_run + 1).size(), 1u);
  EXPECT_EQ(s->run_steps(last_run + 1)[0].outcome, "ok")
    << "a step recorded again keeps the first record";
  auto other = s->find_or_create_conversation("acme", "+15551230009",
                                              "+15557650002", 30);
  EXPECT_EQ(other.id, conversation + 1);
  EXPECT_EQ(other.ref, 2);
  EXPECT_EQ(query_raw("SELECT count(*) FROM sqlite_sequence"), "0");
}

TEST_F(SqliteStore, the_conversation_queries_use_their_indexes) {
  auto s = open();
  auto plan = [&](adapters::store_detail::sql_id id) {
    return query_plan(adapters::store_detail::sql_text(
      id, adapters::store_detail::sql_dialect::sqlite));
  };
  using adapters::store_detail::sql_id;
  auto due = plan(sql_id::due_conversations);
  for (const char* index :
       {"conversations_window_idx", "conversations_turn_idx",
        "conversations_close_idx"})
    EXPECT_NE(due.find(index), std::string::npos) << index << "\n" << due;
  // Each kind of deadline is searched within the tenant: a tenant's scan
  // reads its own rows only.
  std::size_t within_tenant = 0;
  for (auto at = due.find("(tenant_id=? AND "); at != std::string::npos;
       at = due.find("(tenant_id=? AND ", at + 1))
    ++within_tenant;
  EXPECT_EQ(within_tenant, 3u) << due;
  for (auto [id, index] :
       {std::pair{sql_id::find_conversation_by_customer,
                  "conversations_customer_idx"},
        std::pair{sql_id::find_conversation_by_ref, "conversations_ref_idx"},
        std::pair{sql_id::create_conversation, "conversations_ref_idx"},
        std::pair{sql_id::conversation_messages,
                  "conversation_messages_conversation_idx"},
        std::pair{sql_id::conversation_events,
                  "conversation_events_conversation_idx"},
        std::pair{sql_id::ai_usage_since, "conversation_events_ai_idx"}}) {
    auto p = plan(id);
    EXPECT_NE(p.find(index), std::string::npos) << index << "\n" << p;
  }
}

TEST_F(SqliteStore, an_unknown_conversation_state_in_a_row_is_an_error) {
  auto s = open();
  auto c = s->find_or_create_conversation("acme", "+15551230001",
                                          "+15557650002", 1);
  exec_raw("UPDATE conversations SET state = 'paused'");
  EXPECT_EQ(error_of([&] { s->find_conversation(c.id); }),
            "sqlite find_conversation: unknown state 'paused' in the database");
  EXPECT_EQ(error_of([&] {
              s->find_or_create_conversation("acme", "+15551230001", "+1", 2);
            }),
            "sqlite find_or_create_conversation: unknown state 'paused' in "
            "the database");
  exec_raw("UPDATE conversations SET state = 'closed', outcome = 'draw', "
           "turn_at = 1");
  EXPECT_EQ(error_of([&] { s->due_conversations("acme", 5, 10); }),
            "sqlite due_conversations: unknown outcome 'draw' in the "
            "database");
}

TEST_F(SqliteStore, a_transcript_is_readable_as_text) {
  auto s = open();
  auto c = s->find_or_create_conversation("acme", "+15551230001",
                                          "+15557650002", 1);
  s->insert_conversation_messages(
    {make_transcript_line(c.id, "customer", "Zoë's sink", 2)});
  EXPECT_EQ(query_raw("SELECT body FROM conversation_messages"), "Zoë's sink");
  EXPECT_EQ(query_raw("SELECT typeof(body) FROM conversation_messages"),
            "text");
}

TEST_F(SqliteStore, an_unknown_kind_or_source_in_a_row_is_an_error) {
  auto s = open();
  s->insert_message(make_message("CA1"));
  s->save_opt_out({"acme", "+15551230001", true, 1, "STOP",
                   engine::opt_out_source::keyword, 1});
  s->record_status(make_report("SM1", engine::message_state::sent, 1));
  exec_raw("UPDATE messages SET kind = 'spam'; UPDATE opt_outs SET source = "
           "'rumour'; UPDATE status_reports SET state = 'lost'");
  EXPECT_EQ(error_of([&] { s->messages_for_call("CA1"); }),
            "sqlite messages_for_call: unknown kind 'spam' in the database");
  EXPECT_EQ(error_of([&] { s->find_opt_out("acme", "+15551230001"); }),
            "sqlite find_opt_out: unknown source 'rumour' in the database");
  EXPECT_EQ(error_of([&] { s->status_reports("SM1"); }),
            "sqlite status_reports: unknown state 'lost' in the database");
}

TEST_F(SqliteStore, deleting_a_contact_deletes_its_tags) {
  auto s = open();
  s->tag_contact("acme", "+15551230001", "vip", 1);
  s->tag_contact("acme", "+15551230002", "vip", 1);
  // SQLite enforces foreign keys per connection, when asked to.
  exec_raw("PRAGMA foreign_keys = ON; "
           "DELETE FROM contacts WHERE phone = '+15551230001'");
  EXPECT_TRUE(s->contact_tags("acme", "+15551230001").empty());
  EXPECT_EQ(s->contact_tags("acme", "+15551230002").size(), 1u);
}

TEST_F(SqliteStore, run_state_is_readable_as_text_and_json) {
  // Ad-hoc queries work on the stored state as written.
  auto s = open();
  auto r = make_run();
  r.state = R"({"pc":3,"vars":{"name":"Zoë"}})";
  s->insert_run(r);
  EXPECT_EQ(query_raw("SELECT json_extract(state, '$.vars.name') FROM runs"),
            "Zoë");
  EXPECT_EQ(query_raw("SELECT typeof(state) FROM runs"), "text");
}

TEST_F(SqliteStore, migrate_applies_only_missing_versions_in_order) {
  auto with = [&](std::vector<adapters::migration> ms) {
    sqlite_store_options options;
    options.path = path();
    options.migrations = std::move(ms);
    return std::make_unique<sqlite_store>(std::move(options));
  };
  adapters::migration v1{1, "one", "CREATE TABLE one (x INTEGER)"};
  adapters::migration v2{2, "two",
                         "CREATE TABLE two (x INTEGER);"
                         "INSERT INTO one VALUES (2)"};
  adapters::migration v3{3, "broken", "CREATE TABLE three (x); BOGUS"};
  with({v1})->migrate();
  auto s = with({v1, v2});
  EXPECT_EQ(s->schema_version(), 1);
  s->migrate();
  EXPECT_EQ(s->schema_version(), 2);
  s->migrate();
  EXPECT_EQ(s->schema_version(), 2);
  auto t = with({v1, v2, v3});
  EXPECT_EQ(error_of([&] { t->migrate(); }),
            "sqlite migrate: version 3 (broken): near \"BOGUS\": syntax "
            "error");
  EXPECT_EQ(t->schema_version(), 2);
  // Nothing of version 3 stayed; version 2 ran once.
  EXPECT_EQ(query_raw("SELECT count(*) FROM sqlite_master WHERE name = "
                      "'three'"),
            "0");
  EXPECT_EQ(query_raw("SELECT count(*) FROM one"), "1");
  EXPECT_EQ(query_raw("SELECT group_concat(version) FROM schema_migrations"),
            "1,2");
  EXPECT_EQ(error_of([&] {
              with({v2, v1})->migrate();
            }),
            "sqlite migrate: migration versions must increase (version 1)");
}

TEST_F(SqliteStore, statements_are_reused_across_many_calls) {
  // Group commit: thousands of writes in one transaction on cached
  // statements; a smoke test that nothing is re-opened per call.
  auto s = open();
  auto started = std::chrono::steady_clock::now();
  s->begin();
  for (int i = 0; i < 5000; ++i) {
    auto sid = "CA" + std::to_string(i);
    ASSERT_TRUE(s->insert_call(make_call(sid)));
    s->insert_message(make_message(sid));
  }
  s->commit();
  auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(s->pending_messages("n1").size(), 5000u);
  EXPECT_LT(elapsed, 20s); // generous: a Debug build on a loaded machine
}

} // namespace
} // namespace ringback::store_conformance
