#pragma once

#include "ringback/adapters/store/audited_store.hpp"
#include "ringback/adapters/store/migrations.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ringback::adapters {

struct pg_store_options {
  /// `postgresql://user:pass@host:port/db` (or `postgres://`, or a libpq
  /// `key=value` string).
  std::string url;
  /// Tables live in this schema (created by `migrate()`) instead of the
  /// default search path; tests give each fixture its own. Letters, digits
  /// and `_` only.
  std::string schema;
  /// Shown in `pg_stat_activity`.
  std::string application_name = "ringback";
  /// Gives up connecting after this long (libpq `connect_timeout`).
  std::chrono::seconds connect_timeout{5};
  /// A statement waiting this long for a row lock fails (`lock_timeout`).
  std::chrono::milliseconds lock_timeout{5000};
  /// Sends a transaction's statements through libpq's pipeline mode (see
  /// `pg_store`); false sends each on its own and waits for its answer.
  bool pipeline = true;
  /// What `migrate()` applies (tests replace it).
  std::vector<migration> migrations = pg_migrations();
};

/// `engine::store` on PostgreSQL through libpqxx: one connection per
/// instance, prepared statements, use one instance per thread. Connects
/// lazily (construction never touches the network); after the connection
/// breaks, the failing call throws `port_error` and the next call (typically
/// `begin()`) reconnects. Outside a transaction, calls run in autocommit
/// mode. `migrate()` runs under `pg_advisory_xact_lock(pg_migration_lock_key)`.
///
/// In a transaction the statements go through libpq's pipeline mode: a write
/// whose result nothing reads at once (`update_call`, the advisory locks, the
/// audit rows) waits and goes to the server with the next statement, or at
/// the commit, in the same round trip; its error is thrown there, naming its
/// operation (`pg_store_options::pipeline` false sends each on its own). A
/// message's and a run's inserts take their ids ahead from the sequences (in
/// blocks kept at most a second) and wait too.
class pg_store final : public audited_store {
public:
  /// Throws `port_error` only for invalid options (e.g. a bad schema name).
  explicit pg_store(pg_store_options options);
  explicit pg_store(std::string url);
  ~pg_store() override;

  pg_store(const pg_store&) = delete;
  pg_store& operator=(const pg_store&) = delete;

  void migrate() override;
  int schema_version() override;
  void begin() override;
  void commit() override;
  void rollback() override;
  bool ping() override;
  void upsert_tenant(const engine::tenant& t) override;
  bool insert_call(const engine::call_record& c) override;
  void update_call(const engine::call_record& c) override;
  bool decide_outcome(const engine::call_record& c) override;
  std::optional<engine::call_record>
  find_call(std::string_view call_sid) override;
  std::vector<engine::call_record>
  unfinished_calls(std::string_view node_id,
                   engine::epoch_ms orphaned_before) override;
  void insert_webhook(const engine::webhook_record& w) override;
  std::int64_t insert_message(const engine::message_record& m) override;
  void update_message(const engine::message_record& m) override;
  std::optional<engine::message_record> find_message(std::int64_t id) override;
  std::vector<engine::message_record>
  pending_messages(std::string_view node_id) override;
  std::optional<engine::message_record>
  claim_message(std::int64_t id, std::string_view node_id,
                engine::epoch_ms now) override;
  /// Reads the opt-out ledger with each claim (one statement a message).
  std::vector<claimed_message>
  claim_for_sending(const std::vector<std::int64_t>& ids,
                    std::string_view node_id, engine::epoch_ms now) override;
  std::vector<std::int64_t> release_held(std::string_view node_id,
                                         engine::epoch_ms now,
                                         std::size_t limit) override;
  std::optional<engine::message_record>
  find_message_by_sid(std::string_view message_sid) override;
  engine::status_report_result
  record_status(const engine::status_report& r) override;
  std::vector<engine::status_report>
  status_reports(std::string_view message_sid) override;
  engine::gate_facts gate_facts_for(const engine::gate_query& q) override;
  std::optional<engine::opt_out_state>
  find_opt_out(std::string_view tenant_id, std::string_view phone) override;
  void save_opt_out(const engine::opt_out_state& s) override;
  std::vector<engine::opt_out_state>
  opted_out(std::string_view tenant_id) override;
  bool insert_inbound(const engine::inbound_message& m) override;
  engine::inbound_claim
  consume_inbound(std::string_view message_sid,
                  engine::inbound_consumer consumer) override;
  void restore_inbound(std::string_view message_sid,
                       engine::inbound_consumer consumer) override;
  std::vector<engine::inbound_message>
  pending_inbound(std::string_view tenant_id, std::string_view node_id,
                  engine::epoch_ms since, engine::epoch_ms orphaned_before,
                  std::size_t limit) override;
  void touch_contact(std::string_view tenant_id, std::string_view phone,
                     engine::epoch_ms at) override;
  std::vector<engine::message_record>
  messages_for_call(std::string_view call_sid) override;
  std::int64_t insert_run(const engine::run_record& r) override;
  bool update_run(const engine::run_record& r,
                  std::int64_t expected_seq) override;
  std::optional<engine::run_record> find_run(std::int64_t id) override;
  std::vector<engine::run_record>
  unfinished_runs(std::string_view node_id, engine::epoch_ms orphaned_before,
                  std::size_t limit) override;
  std::vector<engine::run_record>
  runs_waiting_for_reply(std::string_view tenant_id,
                         std::string_view contact) override;
  std::vector<engine::run_record>
  runs_for_call(std::string_view call_sid) override;
  void
  insert_run_steps(const std::vector<engine::run_step_record>& steps) override;
  std::vector<engine::run_step_record> run_steps(std::int64_t run_id) override;
  void save_workflow_version(const engine::workflow_version_record& v) override;
  std::optional<engine::workflow_version_record>
  find_workflow_version(std::string_view tenant_id, std::string_view name,
                        std::string_view version) override;
  void tag_contact(std::string_view tenant_id, std::string_view phone,
                   std::string_view tag, engine::epoch_ms at) override;
  std::vector<std::string> contact_tags(std::string_view tenant_id,
                                        std::string_view phone) override;
  engine::conversation_record
  find_or_create_conversation(std::string_view tenant_id,
                              std::string_view customer,
                              std::string_view business_number,
                              engine::epoch_ms now) override;
  std::optional<engine::conversation_record>
  find_conversation(std::int64_t id) override;
  std::optional<engine::conversation_record>
  find_conversation_by_ref(std::string_view tenant_id,
                           std::int32_t ref) override;
  bool update_conversation(const engine::conversation_record& c,
                           std::int64_t expected_seq) override;
  std::vector<engine::conversation_record>
  due_conversations(std::string_view tenant_id, engine::epoch_ms now,
                    std::size_t limit) override;
  void insert_conversation_messages(
    const std::vector<engine::conversation_message>& ms) override;
  std::vector<engine::conversation_message>
  conversation_messages(std::int64_t conversation_id,
                        std::size_t limit) override;
  void insert_conversation_event(const engine::conversation_event& e) override;
  std::vector<engine::conversation_event>
  conversation_events(std::int64_t conversation_id) override;
  void set_owner_focus(std::string_view tenant_id, std::int64_t conversation_id,
                       engine::epoch_ms at) override;
  std::optional<std::int64_t> owner_focus(std::string_view tenant_id) override;
  engine::ai_usage ai_usage_since(std::string_view tenant_id,
                                  engine::epoch_ms since) override;

  std::optional<engine::tenant> find_tenant(std::string_view id) override;
  std::vector<engine::webhook_record>
  webhooks_for(std::string_view call_sid) override;
  std::optional<engine::inbound_message>
  find_inbound(std::string_view message_sid) override;
  std::optional<contact_record> find_contact(std::string_view tenant_id,
                                             std::string_view phone) override;

  /// The libpq connection string this store uses (the URL plus its options).
  const std::string& connection_string() const;

  /// Round trips of the statements run in transactions so far (in pipeline
  /// mode each may carry several statements; BEGIN and COMMIT are not
  /// counted).
  std::uint64_t statement_round_trips() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace ringback::adapters
