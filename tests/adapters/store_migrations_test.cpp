#include "ringback/adapters/store/migrations.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <set>

namespace ringback::adapters {
namespace {

TEST(StoreMigrations, versions_count_up_from_one_in_both_dialects) {
  const auto& lite = sqlite_migrations();
  const auto& pg = pg_migrations();
  ASSERT_FALSE(lite.empty());
  ASSERT_EQ(lite.size(), pg.size());
  for (std::size_t i = 0; i < lite.size(); ++i) {
    EXPECT_EQ(lite[i].version, static_cast<int>(i) + 1);
    EXPECT_EQ(pg[i].version, lite[i].version);
    EXPECT_EQ(pg[i].description, lite[i].description);
    EXPECT_FALSE(lite[i].sql.empty());
    EXPECT_FALSE(pg[i].sql.empty());
  }
  EXPECT_EQ(latest_schema_version(), lite.back().version);
}

TEST(StoreMigrations, both_dialects_create_the_same_tables) {
  // The tables after every version: created, dropped and renamed in order
  // (version 9 rebuilds SQLite tables under a new name, then renames them).
  auto tables = [](const std::vector<migration>& ms) {
    static const std::regex statement{
      R"((CREATE|DROP|ALTER) TABLE (\w+)(?: RENAME TO (\w+))?)"};
    std::set<std::string> names;
    for (const auto& m : ms)
      for (std::sregex_iterator it{m.sql.begin(), m.sql.end(), statement}, end;
           it != end; ++it) {
        const auto& match = *it;
        if (match[1] == "CREATE")
          EXPECT_TRUE(names.insert(match[2]).second) << match[2];
        else if (match[1] == "DROP")
          EXPECT_EQ(names.erase(match[2]), 1u) << match[2];
        else if (match[3].matched) {
          EXPECT_EQ(names.erase(match[2]), 1u) << match[2];
          EXPECT_TRUE(names.insert(match[3]).second) << match[3];
        }
      }
    return names;
  };
  EXPECT_EQ(tables(sqlite_migrations()),
            (std::set<std::string>{
              "tenants", "tenant_numbers", "calls", "webhooks", "messages",
              "inbound_messages", "contacts", "runs", "run_steps",
              "workflow_versions", "contact_tags", "opt_outs", "status_reports",
              "conversations", "conversation_messages", "conversation_events",
              "owner_focus"}));
  EXPECT_EQ(tables(pg_migrations()), tables(sqlite_migrations()));
}

TEST(StoreMigrations, version_2_adds_the_workflow_run_tables) {
  // Versions that shipped are never edited: version 2 only adds.
  ASSERT_GE(sqlite_migrations().size(), 2u);
  for (const auto* ms : {&sqlite_migrations(), &pg_migrations()}) {
    const auto& v2 = (*ms)[1];
    EXPECT_EQ(v2.version, 2);
    EXPECT_EQ(v2.description,
              "workflow runs, run steps, workflow versions, contact tags");
    EXPECT_EQ(v2.sql.find("DROP "), std::string::npos);
    EXPECT_EQ(v2.sql.find("ALTER "), std::string::npos);
    for (const char* index :
         {"runs_node_status_idx ON runs (node_id, status)",
          "runs_contact_waiting_idx ON runs (tenant_id, contact, waiting_for)",
          "runs_call_idx ON runs (call_sid)",
          "runs_status_wake_idx ON runs (status, wake_at)",
          "PRIMARY KEY (run_id, seq)", "PRIMARY KEY (tenant_id, name, version)",
          "PRIMARY KEY (tenant_id, phone, tag)"})
      EXPECT_NE(v2.sql.find(index), std::string::npos) << index;
  }
}

TEST(StoreMigrations, version_3_adds_messaging_and_keeps_old_rows_valid) {
  ASSERT_GE(sqlite_migrations().size(), 3u);
  for (const auto* ms : {&sqlite_migrations(), &pg_migrations()}) {
    const auto& v3 = (*ms)[2];
    EXPECT_EQ(v3.version, 3);
    EXPECT_EQ(v3.description, "messaging: message kinds and holds, delivery "
                              "reports, opt-out ledger, gate indexes");
    EXPECT_EQ(v3.sql.find("DROP "), std::string::npos);
    for (const char* index :
         {"messages_sid_idx ON messages (message_sid)",
          "messages_recipient_idx ON messages (tenant_id, to_number, "
          "created_at)",
          "ON inbound_messages (tenant_id, from_number, received_at)",
          "calls_caller_idx ON calls (tenant_id, from_number, started_at)",
          "status_reports_sid_idx ON status_reports (message_sid)",
          "PRIMARY KEY (tenant_id, phone)"})
      EXPECT_NE(v3.sql.find(index), std::string::npos) << index;
  }
  // Six columns for messages in each dialect, each with a default, so that
  // older rows stay valid.
  for (const auto* ms : {&sqlite_migrations(), &pg_migrations()}) {
    const auto& sql = (*ms)[2].sql;
    std::vector<std::string> columns;
    for (auto pos = sql.find("ADD COLUMN "); pos != std::string::npos;
         pos = sql.find("ADD COLUMN ", pos + 1)) {
      auto line = sql.substr(pos, sql.find('\n', pos) - pos);
      EXPECT_NE(line.find("NOT NULL DEFAULT "), std::string::npos) << line;
      auto name = pos + std::string_view{"ADD COLUMN "}.size();
      columns.push_back(sql.substr(name, sql.find(' ', name) - name));
    }
    EXPECT_EQ(columns,
              (std::vector<std::string>{"kind", "urgent", "not_before",
                                        "reason", "sent_at", "status_at"}));
  }
}

TEST(StoreMigrations, version_4_adds_conversations_and_only_adds) {
  // Version 4 creates tables and indexes only: rows of version 3 stay as
  // they are (the store tests migrate a version 3 database with rows).
  ASSERT_GE(sqlite_migrations().size(), 4u);
  for (const auto* ms : {&sqlite_migrations(), &pg_migrations()}) {
    const auto& v4 = (*ms)[3];
    EXPECT_EQ(v4.version, 4);
    EXPECT_EQ(v4.description,
              "conversations: conversations, transcripts, events, owner focus");
    for (const char* word : {"DROP ", "ALTER ", "UPDATE ", "DELETE "})
      EXPECT_EQ(v4.sql.find(word), std::string::npos) << word;
    for (const char* index :
         {"UNIQUE INDEX conversations_customer_idx\n  ON conversations "
          "(tenant_id, customer)",
          "UNIQUE INDEX conversations_ref_idx ON conversations (tenant_id, "
          "ref)",
          "conversations_window_idx ON conversations (window_deadline, id)\n"
          "  WHERE outcome = 'none' AND window_deadline > 0",
          "conversations_turn_idx ON conversations (turn_at, id)\n"
          "  WHERE turn_at > 0",
          "conversations_close_idx ON conversations (close_at, id)\n"
          "  WHERE state <> 'closed' AND close_at > 0",
          "ON conversation_messages (conversation_id, id)",
          "ON conversation_events (conversation_id, id)",
          "ON conversation_events (tenant_id, occurred_at)\n"
          "  WHERE kind IN ('ai_turn', 'ai_error')"})
      EXPECT_NE(v4.sql.find(index), std::string::npos) << index;
  }
}

TEST(StoreMigrations, version_5_indexes_the_gates_automated_messages) {
  // Two partial indexes and nothing else, alike in both dialects: the
  // gate's last text-back and automated count read only rows they count.
  ASSERT_GE(sqlite_migrations().size(), 5u);
  for (const auto* ms : {&sqlite_migrations(), &pg_migrations()}) {
    const auto& v5 = (*ms)[4];
    EXPECT_EQ(v5.version, 5);
    EXPECT_EQ(v5.description,
              "gate: the automated messages to a recipient, indexed apart");
    for (const char* word :
         {"DROP ", "ALTER ", "UPDATE ", "DELETE ", "CREATE TABLE"})
      EXPECT_EQ(v5.sql.find(word), std::string::npos) << word;
    for (const char* index :
         {"messages_text_back_idx\n  ON messages (tenant_id, to_number, "
          "created_at)\n  WHERE kind = 'text_back' AND state <> 'refused'",
          "messages_automated_idx\n  ON messages (tenant_id, to_number, "
          "created_at)\n  WHERE kind IN ('text_back', 'automated') AND "
          "state <> 'refused'"})
      EXPECT_NE(v5.sql.find(index), std::string::npos) << index;
  }
  EXPECT_EQ(sqlite_migrations()[4].sql, pg_migrations()[4].sql);
}

TEST(StoreMigrations, version_6_gives_messages_a_channel_older_rows_are_texts) {
  // One column with a default, alike in both dialects: an older message
  // reads as a text.
  ASSERT_GE(sqlite_migrations().size(), 6u);
  for (const auto* ms : {&sqlite_migrations(), &pg_migrations()}) {
    const auto& v6 = (*ms)[5];
    EXPECT_EQ(v6.version, 6);
    EXPECT_EQ(v6.description,
              "outbox: a message's channel (sms, or a call that reads it)");
    EXPECT_EQ(v6.sql, "\nALTER TABLE messages ADD COLUMN channel TEXT NOT NULL "
                      "DEFAULT 'sms';\n");
  }
}

TEST(StoreMigrations, version_7_moves_indexes_to_the_live_rows) {
  // Indexes only, the same statements in both dialects; every index it
  // drops is one an earlier version created, and it creates each anew
  // (store_sqlite_test checks which indexes the updates write and which the
  // queries use).
  ASSERT_GE(sqlite_migrations().size(), 7u);
  for (const auto* ms : {&sqlite_migrations(), &pg_migrations()}) {
    const auto& v7 = (*ms)[6];
    EXPECT_EQ(v7.version, 7);
    EXPECT_EQ(v7.description,
              "indexes on live rows only: updates leave the rest alone");
    for (const char* word :
         {"ALTER ", "UPDATE ", "DELETE ", "INSERT ", "TABLE"})
      EXPECT_EQ(v7.sql.find(word), std::string::npos) << word;
    for (const char* index :
         {"runs_live_wake_idx ON runs (wake_at)\n  WHERE status IN "
          "('waiting', 'running')",
          "runs_reply_idx ON runs (tenant_id, contact)\n  WHERE waiting_for = "
          "'reply' AND status = 'waiting'",
          "messages_pending_idx ON messages (node_id, state)\n  WHERE (state "
          "= 'queued' OR state = 'sending' OR state = 'held')"})
      EXPECT_NE(v7.sql.find(index), std::string::npos) << index;
  }
  EXPECT_EQ(sqlite_migrations()[6].sql, pg_migrations()[6].sql);
  std::string earlier;
  for (std::size_t i = 0; i < 6; ++i)
    earlier += sqlite_migrations()[i].sql;
  const auto& sql = sqlite_migrations()[6].sql;
  for (std::string::size_type pos = 0;
       (pos = sql.find("DROP INDEX ", pos)) != std::string::npos;) {
    pos += 11;
    auto name = sql.substr(pos, sql.find(';', pos) - pos);
    EXPECT_TRUE(earlier.find("INDEX " + name + " ") != std::string::npos
                || earlier.find("INDEX " + name + "\n") != std::string::npos)
      << name;
  }
}

} // namespace
} // namespace ringback::adapters
