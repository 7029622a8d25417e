#include "ringback/adapters/store/sql_common.hpp"

#include <array>

// The statements of the SQL store adapters, written once with `?N`
// placeholders (SQLite); PostgreSQL gets `$N`. Parameter and column orders
// are the ones of the bind_* / read_* functions in sql_common.hpp.

namespace ringback::adapters::store_detail {

namespace {

#define RINGBACK_CALL_COLUMNS                                                  \
  "call_sid, tenant_id, from_number, to_number, owner_phone, phase, decided, " \
  "ended, started_at, fallback_at, fallback_checks, dial_status, "             \
  "dial_duration, node_id, updated_at"

#define RINGBACK_MESSAGE_COLUMNS                                               \
  "tenant_id, call_sid, purpose, from_number, to_number, body, state, "        \
  "attempts, message_sid, error_code, error_message, node_id, created_at, "    \
  "updated_at, kind, urgent, not_before, reason, sent_at, status_at, "         \
  "channel"

#define RINGBACK_STATUS_REPORT_COLUMNS                                         \
  "message_sid, carrier_status, state, error_code, error_message, "            \
  "received_at"

#define RINGBACK_OPT_OUT_COLUMNS                                               \
  "tenant_id, phone, opted_out, since, keyword, source, last_event_at"

#define RINGBACK_WEBHOOK_COLUMNS                                               \
  "tenant_id, kind, call_sid, path, body, signature, duplicate, received_at"

#define RINGBACK_INBOUND_COLUMNS                                               \
  "message_sid, tenant_id, from_number, to_number, body, received_at, "        \
  "node_id, pending"

#define RINGBACK_RUN_COLUMNS                                                   \
  "tenant_id, workflow, version, trigger_event, call_sid, contact, status, "   \
  "waiting_for, wake_at, state, node_id, seq, error, started_at, updated_at"

#define RINGBACK_RUN_STEP_COLUMNS                                              \
  "run_id, seq, step_id, type, outcome, detail, executed_at, duration_us"

#define RINGBACK_WORKFLOW_VERSION_COLUMNS                                      \
  "tenant_id, name, version, file, source, loaded_at"

#define RINGBACK_CONVERSATION_COLUMNS                                          \
  "tenant_id, customer, business_number, ref, state, window_seq, "             \
  "window_deadline, outcome, turn_at, close_at, ai_replies, opened_at, "       \
  "last_customer_at, last_owner_at, last_ai_at, node_id, seq, updated_at"

#define RINGBACK_CONVERSATION_MESSAGE_COLUMNS                                  \
  "conversation_id, tenant_id, author, body, message_id, message_sid, "        \
  "created_at"

#define RINGBACK_CONVERSATION_EVENT_COLUMNS                                    \
  "conversation_id, tenant_id, kind, detail, window_seq, provider, "           \
  "latency_ms, prompt_tokens, completion_tokens, cost_usd, occurred_at"

// The statements whose SQLite text leaves out PostgreSQL's RETURNING (and
// their variants with the id given: `*_with_id`).
#define RINGBACK_MESSAGE_VALUES                                                \
  "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "    \
  "?17, ?18, ?19, ?20, ?21"

#define RINGBACK_INSERT_MESSAGE                                                \
  "INSERT INTO messages (" RINGBACK_MESSAGE_COLUMNS ") VALUES ("               \
  RINGBACK_MESSAGE_VALUES ")"

#define RINGBACK_CREATE_CONVERSATION                                           \
  "INSERT INTO conversations (" RINGBACK_CONVERSATION_COLUMNS ") VALUES "      \
  "(?1, ?2, ?3, COALESCE((SELECT ref FROM conversations WHERE tenant_id = ?1 " \
  "AND ref IS NOT NULL ORDER BY ref DESC LIMIT 1), 0) + 1, 'closed', 0, 0, "   \
  "'none', 0, 0, 0, ?4, 0, 0, 0, '', 0, ?4) "                                  \
  "ON CONFLICT (tenant_id, customer) DO NOTHING"

#define RINGBACK_UPDATE_MESSAGE                                                \
  "UPDATE messages SET state = ?2, attempts = ?3, message_sid = ?4, "          \
  "error_code = ?5, error_message = ?6, node_id = ?7, not_before = ?8, "       \
  "reason = ?9, sent_at = ?10, status_at = ?11, updated_at = ?12 "             \
  "WHERE id = ?1"

#define RINGBACK_CLAIM_MESSAGE                                                 \
  "UPDATE messages SET state = 'sending', node_id = ?2, "                      \
  "attempts = attempts + 1, updated_at = ?3 WHERE id = ?1 AND "                \
  "state = ?4"

#define RINGBACK_RUN_VALUES                                                    \
  "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15"

#define RINGBACK_INSERT_RUN                                                    \
  "INSERT INTO runs (" RINGBACK_RUN_COLUMNS ") VALUES (" RINGBACK_RUN_VALUES ")"

struct statement {
  sql_id id;
  const char* name;
  const char* text;
  /// SQLite's text where it differs: RETURNING makes SQLite build a
  /// temporary table for every execution, so its inserts read the new id
  /// with `sqlite3_last_insert_rowid` instead (`sql_ops::insert_row`).
  const char* sqlite_text = nullptr;
};

// In sql_id order (checked below).
constexpr std::array<statement, sql_count> statements{{
  // id, name, owner_phone, timezone, updated_at
  {sql_id::upsert_tenant, "rb_upsert_tenant",
   "INSERT INTO tenants (id, name, owner_phone, timezone, updated_at) "
   "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO UPDATE SET "
   "name = excluded.name, owner_phone = excluded.owner_phone, "
   "timezone = excluded.timezone, updated_at = excluded.updated_at"},
  // tenant_id
  {sql_id::delete_tenant_numbers, "rb_delete_tenant_numbers",
   "DELETE FROM tenant_numbers WHERE tenant_id = ?1"},
  // number, tenant_id, kind, mps (a number moves to the last tenant naming it)
  {sql_id::upsert_tenant_number, "rb_upsert_tenant_number",
   "INSERT INTO tenant_numbers (number, tenant_id, kind, mps) "
   "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (number) DO UPDATE SET "
   "tenant_id = excluded.tenant_id, kind = excluded.kind, mps = excluded.mps"},
  // id -> id, name, owner_phone, timezone
  {sql_id::find_tenant, "rb_find_tenant",
   "SELECT id, name, owner_phone, timezone FROM tenants WHERE id = ?1"},
  // tenant_id -> number, kind, mps
  {sql_id::find_tenant_numbers, "rb_find_tenant_numbers",
   "SELECT number, kind, mps FROM tenant_numbers WHERE tenant_id = ?1 "
   "ORDER BY number"},
  // bind_call
  {sql_id::insert_call, "rb_insert_call",
   "INSERT INTO calls (" RINGBACK_CALL_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, "
   "?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) "
   "ON CONFLICT (call_sid) DO NOTHING"},
  // bind_call_update (the call's progress; see there)
  {sql_id::update_call, "rb_update_call",
   "UPDATE calls SET ended = ?2, fallback_at = ?3, fallback_checks = ?4, "
   "dial_status = ?5, dial_duration = ?6, node_id = ?7, updated_at = ?8 "
   "WHERE call_sid = ?1"},
  // bind_call_update, phase, decided, 'ringing'; the condition on phase
  // makes the first decider the only one. Point lookups by key state no
  // literal that a partial index's condition implies: PostgreSQL settles on
  // a prepared statement's plan after a few executions, on a new database
  // while the tables are empty, when every index looks alike; with the
  // literal it could settle on calls_ringing_fallback_idx and scan every
  // ringing call for the one it updates (likewise the claim below and
  // messages_pending_idx).
  // PgStore.lookups_by_key_keep_their_keys_as_tables_grow
  {sql_id::decide_outcome, "rb_decide_outcome",
   "UPDATE calls SET ended = ?2, fallback_at = ?3, fallback_checks = ?4, "
   "dial_status = ?5, dial_duration = ?6, node_id = ?7, updated_at = ?8, "
   "phase = ?9, decided = ?10 WHERE call_sid = ?1 AND phase = ?11"},
  // call_sid -> 1
  {sql_id::call_exists, "rb_call_exists",
   "SELECT 1 FROM calls WHERE call_sid = ?1"},
  // call_sid -> read_call
  {sql_id::find_call, "rb_find_call",
   "SELECT " RINGBACK_CALL_COLUMNS " FROM calls WHERE call_sid = ?1"},
  // node_id, orphaned_before -> read_call
  {sql_id::unfinished_calls, "rb_unfinished_calls",
   "SELECT " RINGBACK_CALL_COLUMNS " FROM calls WHERE phase = 'ringing' AND "
   "(node_id = ?1 OR (fallback_at > 0 AND fallback_at < ?2)) "
   "ORDER BY started_at, call_sid"},
  // bind_webhook
  {sql_id::insert_webhook, "rb_insert_webhook",
   "INSERT INTO webhooks (" RINGBACK_WEBHOOK_COLUMNS
   ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"},
  // call_sid (bytes) -> read_webhook
  {sql_id::webhooks_for, "rb_webhooks_for",
   "SELECT " RINGBACK_WEBHOOK_COLUMNS " FROM webhooks WHERE call_sid = ?1 "
   "ORDER BY id"},
  // bind_message -> id (SQLite: the last insert rowid)
  {sql_id::insert_message, "rb_insert_message",
   RINGBACK_INSERT_MESSAGE " RETURNING id", RINGBACK_INSERT_MESSAGE},
  // bind_message_update -> the number of delivery reports recorded for its
  // MessageSid (PostgreSQL: one round trip where the update and the look
  // for reports that overtook it took two; SQLite: nothing, the look is a
  // statement of its own)
  {sql_id::update_message, "rb_update_message",
   RINGBACK_UPDATE_MESSAGE " RETURNING (SELECT COUNT(*) FROM status_reports "
                           "WHERE message_sid = ?4 AND ?4 <> '')",
   RINGBACK_UPDATE_MESSAGE},
  // id -> read_message
  {sql_id::find_message, "rb_find_message",
   "SELECT id, " RINGBACK_MESSAGE_COLUMNS " FROM messages WHERE id = ?1"},
  // node_id -> read_message
  {sql_id::pending_messages, "rb_pending_messages",
   "SELECT id, " RINGBACK_MESSAGE_COLUMNS " FROM messages WHERE node_id = ?1 "
   "AND (state = 'queued' OR state = 'sending' OR state = 'held') "
   "ORDER BY id"},
  // call_sid -> read_message
  {sql_id::messages_for_call, "rb_messages_for_call",
   "SELECT id, " RINGBACK_MESSAGE_COLUMNS " FROM messages WHERE call_sid = ?1 "
   "ORDER BY id"},
  // id, node_id, now, 'queued' -> read_message (SQLite: claimed or not,
  // then find_message); the condition on state makes the first claimer the
  // only one (a parameter: see decide_outcome)
  // (PostgreSQL: and after the message's columns, whether the opt-out
  // ledger has its recipient opted out: 0 or 1)
  {sql_id::claim_message, "rb_claim_message",
   RINGBACK_CLAIM_MESSAGE
   " RETURNING id, " RINGBACK_MESSAGE_COLUMNS
   ", (SELECT COUNT(*) FROM opt_outs WHERE opt_outs.tenant_id = "
   "messages.tenant_id AND opt_outs.phone = messages.to_number AND "
   "opt_outs.opted_out)",
   RINGBACK_CLAIM_MESSAGE},
  // node_id, now, limit -> id (in no order); the outer condition on state
  // leaves a message that changed meanwhile as it is. (The OR term repeats
  // messages_pending_idx's condition: SQLite uses a partial index only for a
  // query that states its condition as written.)
  {sql_id::release_held, "rb_release_held",
   "UPDATE messages SET state = 'queued', not_before = 0, reason = '', "
   "error_message = '', updated_at = ?2 WHERE id IN (SELECT id FROM "
   "messages WHERE node_id = ?1 AND (state = 'queued' OR state = 'sending' "
   "OR state = 'held') AND state = 'held' AND not_before <= ?2 ORDER BY id "
   "LIMIT ?3) AND "
   "state = 'held' RETURNING id"},
  // message_sid -> read_message (the empty MessageSid is nobody's)
  {sql_id::find_message_by_sid, "rb_find_message_by_sid",
   "SELECT id, " RINGBACK_MESSAGE_COLUMNS " FROM messages WHERE "
   "message_sid = ?1 AND message_sid <> '' ORDER BY id LIMIT 1"},
  // id, state, status_at, error_code, error_message, expected state,
  // expected message_sid: a write conditional on what the writer read
  {sql_id::apply_status, "rb_apply_status",
   "UPDATE messages SET state = ?2, status_at = ?3, error_code = ?4, "
   "error_message = ?5 WHERE id = ?1 AND state = ?6 AND message_sid = ?7"},
  // bind_status_report
  {sql_id::insert_status_report, "rb_insert_status_report",
   "INSERT INTO status_reports (" RINGBACK_STATUS_REPORT_COLUMNS
   ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)"},
  // message_sid -> read_status_report
  {sql_id::status_reports, "rb_status_reports",
   "SELECT " RINGBACK_STATUS_REPORT_COLUMNS " FROM status_reports WHERE "
   "message_sid = ?1 ORDER BY received_at, id"},
  // tenant_id, phone, and the starts of the windows (exclusive): repeat
  // caller, automated (1 h), loop, caller rate -> opted out (0 or 1), last
  // text-back (NULL: none), automated, exchanged, calls. One round trip;
  // each count runs on an index led by (tenant_id, phone).
  {sql_id::gate_facts, "rb_gate_facts",
   "SELECT (SELECT COUNT(*) FROM opt_outs WHERE tenant_id = ?1 AND "
   "phone = ?2 AND opted_out), "
   "(SELECT MAX(created_at) FROM messages WHERE tenant_id = ?1 AND "
   "to_number = ?2 AND kind = 'text_back' AND state <> 'refused' AND "
   "created_at > ?3), "
   "(SELECT COUNT(*) FROM messages WHERE tenant_id = ?1 AND to_number = ?2 "
   "AND kind IN ('text_back', 'automated') AND state <> 'refused' AND "
   "created_at > ?4), "
   "(SELECT COUNT(*) FROM messages WHERE tenant_id = ?1 AND to_number = ?2 "
   "AND state <> 'refused' AND created_at > ?5) + (SELECT COUNT(*) FROM "
   "inbound_messages WHERE tenant_id = ?1 AND from_number = ?2 AND "
   "received_at > ?5), "
   "(SELECT COUNT(*) FROM calls WHERE tenant_id = ?1 AND from_number = ?2 "
   "AND started_at > ?6 AND started_at <= COALESCE((SELECT started_at FROM "
   "calls WHERE call_sid = ?7), ?8))"},
  // tenant_id, phone -> read_opt_out
  {sql_id::find_opt_out, "rb_find_opt_out",
   "SELECT " RINGBACK_OPT_OUT_COLUMNS " FROM opt_outs WHERE tenant_id = ?1 "
   "AND phone = ?2"},
  // bind_opt_out (replaces the entry)
  {sql_id::save_opt_out, "rb_save_opt_out",
   "INSERT INTO opt_outs (" RINGBACK_OPT_OUT_COLUMNS ") VALUES (?1, ?2, ?3, "
   "?4, ?5, ?6, ?7) ON CONFLICT (tenant_id, phone) DO UPDATE SET "
   "opted_out = excluded.opted_out, since = excluded.since, "
   "keyword = excluded.keyword, source = excluded.source, "
   "last_event_at = excluded.last_event_at"},
  // tenant_id -> read_opt_out (sorted by sql_ops::opted_out)
  {sql_id::opted_out, "rb_opted_out",
   "SELECT " RINGBACK_OPT_OUT_COLUMNS " FROM opt_outs WHERE tenant_id = ?1 "
   "AND opted_out"},
  // bind_inbound
  {sql_id::insert_inbound, "rb_insert_inbound",
   "INSERT INTO inbound_messages (" RINGBACK_INBOUND_COLUMNS
   ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (message_sid) DO "
   "NOTHING"},
  // message_sid -> read_inbound
  {sql_id::find_inbound, "rb_find_inbound",
   "SELECT " RINGBACK_INBOUND_COLUMNS
   " FROM inbound_messages WHERE message_sid = ?1"},
  // message_sid, consumer bit (one row: claimed; none: read find_inbound)
  {sql_id::consume_inbound, "rb_consume_inbound",
   "UPDATE inbound_messages SET pending = pending - ?2 WHERE message_sid = ?1 "
   "AND (pending & ?2) <> 0"},
  // message_sid, consumer bit
  {sql_id::restore_inbound, "rb_restore_inbound",
   "UPDATE inbound_messages SET pending = pending | ?2 WHERE message_sid = ?1"},
  // tenant_id, node_id, since, orphaned_before, limit -> read_inbound (the
  // partial index holds the pending rows only)
  {sql_id::pending_inbound, "rb_pending_inbound",
   "SELECT " RINGBACK_INBOUND_COLUMNS
   " FROM inbound_messages WHERE pending <> 0 AND received_at > ?3 AND "
   "tenant_id = ?1 AND (node_id = ?2 OR received_at < ?4) ORDER BY "
   "received_at, message_sid LIMIT ?5"},
  // tenant_id, phone, at (out-of-order touches keep the extremes)
  {sql_id::touch_contact, "rb_touch_contact",
   "INSERT INTO contacts (tenant_id, phone, first_seen, last_seen) "
   "VALUES (?1, ?2, ?3, ?3) ON CONFLICT (tenant_id, phone) DO UPDATE SET "
   "first_seen = CASE WHEN excluded.first_seen < contacts.first_seen "
   "THEN excluded.first_seen ELSE contacts.first_seen END, "
   "last_seen = CASE WHEN excluded.last_seen > contacts.last_seen "
   "THEN excluded.last_seen ELSE contacts.last_seen END"},
  // tenant_id, phone -> tenant_id, phone, first_seen, last_seen
  {sql_id::find_contact, "rb_find_contact",
   "SELECT tenant_id, phone, first_seen, last_seen FROM contacts "
   "WHERE tenant_id = ?1 AND phone = ?2"},
  // bind_run -> id (SQLite: the last insert rowid)
  {sql_id::insert_run, "rb_insert_run", RINGBACK_INSERT_RUN " RETURNING id",
   RINGBACK_INSERT_RUN},
  // id, bind_run_update, expected seq; the condition on seq makes the first
  // writer the only one
  {sql_id::update_run, "rb_update_run",
   "UPDATE runs SET contact = ?2, status = ?3, waiting_for = ?4, "
   "wake_at = ?5, state = ?6, node_id = ?7, seq = ?8, error = ?9, "
   "updated_at = ?10 WHERE id = ?1 AND seq = ?11"},
  // id -> 1
  {sql_id::run_exists, "rb_run_exists", "SELECT 1 FROM runs WHERE id = ?1"},
  // id -> read_run
  {sql_id::find_run, "rb_find_run",
   "SELECT id, " RINGBACK_RUN_COLUMNS " FROM runs WHERE id = ?1"},
  // node_id, orphaned_before, limit -> read_run (wake_at < orphaned_before
  // implies orphaned_before > 0: 0 adopts nothing)
  {sql_id::unfinished_runs, "rb_unfinished_runs",
   "SELECT id, " RINGBACK_RUN_COLUMNS " FROM runs WHERE status IN "
   "('waiting', 'running') AND (node_id = ?1 OR (wake_at > 0 AND "
   "wake_at < ?2)) ORDER BY wake_at, id LIMIT ?3"},
  // tenant_id, contact -> read_run
  {sql_id::runs_waiting_for_reply, "rb_runs_waiting_for_reply",
   "SELECT id, " RINGBACK_RUN_COLUMNS " FROM runs WHERE tenant_id = ?1 AND "
   "contact = ?2 AND waiting_for = 'reply' AND status = 'waiting' "
   "ORDER BY id"},
  // call_sid -> read_run
  {sql_id::runs_for_call, "rb_runs_for_call",
   "SELECT id, " RINGBACK_RUN_COLUMNS " FROM runs WHERE call_sid = ?1 "
   "ORDER BY id"},
  // bind_run_step (a step recorded again keeps the first record)
  {sql_id::insert_run_step, "rb_insert_run_step",
   "INSERT INTO run_steps (" RINGBACK_RUN_STEP_COLUMNS ") VALUES (?1, ?2, ?3, "
   "?4, ?5, ?6, ?7, ?8) ON CONFLICT (run_id, seq) DO NOTHING"},
  // run_id -> read_run_step
  {sql_id::run_steps, "rb_run_steps",
   "SELECT " RINGBACK_RUN_STEP_COLUMNS " FROM run_steps WHERE run_id = ?1 "
   "ORDER BY seq"},
  // bind_workflow_version (once per tenant, name and version)
  {sql_id::save_workflow_version, "rb_save_workflow_version",
   "INSERT INTO workflow_versions (" RINGBACK_WORKFLOW_VERSION_COLUMNS
   ") VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
   "ON CONFLICT (tenant_id, name, version) DO NOTHING"},
  // tenant_id, name, version -> read_workflow_version
  {sql_id::find_workflow_version, "rb_find_workflow_version",
   "SELECT " RINGBACK_WORKFLOW_VERSION_COLUMNS " FROM workflow_versions "
   "WHERE tenant_id = ?1 AND name = ?2 AND version = ?3"},
  // tenant_id, phone, at (a known contact stays as it is)
  {sql_id::add_contact, "rb_add_contact",
   "INSERT INTO contacts (tenant_id, phone, first_seen, last_seen) "
   "VALUES (?1, ?2, ?3, ?3) ON CONFLICT (tenant_id, phone) DO NOTHING"},
  // tenant_id, phone, tag, at (a known tag keeps its first time)
  {sql_id::tag_contact, "rb_tag_contact",
   "INSERT INTO contact_tags (tenant_id, phone, tag, tagged_at) "
   "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tenant_id, phone, tag) DO NOTHING"},
  // tenant_id, phone -> tag (sorted by sql_ops::contact_tags)
  {sql_id::contact_tags, "rb_contact_tags",
   "SELECT tag FROM contact_tags WHERE tenant_id = ?1 AND phone = ?2"},
  // id -> read_conversation
  {sql_id::find_conversation, "rb_find_conversation",
   "SELECT id, " RINGBACK_CONVERSATION_COLUMNS " FROM conversations "
   "WHERE id = ?1"},
  // tenant_id, customer -> read_conversation
  {sql_id::find_conversation_by_customer, "rb_find_conversation_by_customer",
   "SELECT id, " RINGBACK_CONVERSATION_COLUMNS " FROM conversations "
   "WHERE tenant_id = ?1 AND customer = ?2"},
  // tenant_id, ref -> read_conversation (`ref IS NOT NULL` lets SQLite use
  // the ref index: see migration 8)
  {sql_id::find_conversation_by_ref, "rb_find_conversation_by_ref",
   "SELECT id, " RINGBACK_CONVERSATION_COLUMNS " FROM conversations "
   "WHERE tenant_id = ?1 AND ref = ?2 AND ref IS NOT NULL"},
  // tenant_id, customer, business_number, now: a closed conversation with
  // the tenant's next ref, unless the customer has one (PostgreSQL:
  // -> read_conversation of the new row, none if the customer had one).
  // The ref is the last one plus one, read backwards on the ref index
  // (which a query must tell `ref IS NOT NULL` to use: see migration 8) by
  // a scalar subquery, not `INSERT ... SELECT` from the same table, which
  // SQLite runs through a temporary table.
  {sql_id::create_conversation, "rb_create_conversation",
   RINGBACK_CREATE_CONVERSATION " RETURNING id, " RINGBACK_CONVERSATION_COLUMNS,
   RINGBACK_CREATE_CONVERSATION},
  // id, bind_conversation_update, expected seq; the condition on seq makes
  // the first writer the only one
  {sql_id::update_conversation, "rb_update_conversation",
   "UPDATE conversations SET business_number = ?2, state = ?3, "
   "window_seq = ?4, window_deadline = ?5, outcome = ?6, turn_at = ?7, "
   "close_at = ?8, ai_replies = ?9, opened_at = ?10, last_customer_at = ?11, "
   "last_owner_at = ?12, last_ai_at = ?13, node_id = ?14, seq = ?15, "
   "updated_at = ?16 WHERE id = ?1 AND seq = ?17"},
  // id -> 1
  {sql_id::conversation_exists, "rb_conversation_exists",
   "SELECT 1 FROM conversations WHERE id = ?1"},
  // now, limit -> read_conversation. Each kind of deadline is read from its
  // own partial index, at most `limit` of each (enough: a conversation
  // among the first `limit` by its earliest due deadline is among the
  // first `limit` of that deadline's kind); a conversation due for several
  // counts at its earliest.
  {sql_id::due_conversations, "rb_due_conversations",
   "SELECT c.id, " RINGBACK_CONVERSATION_COLUMNS " FROM conversations AS c "
   "JOIN (SELECT id, MIN(due) AS due FROM ("
   "SELECT id, due FROM (SELECT id, window_deadline AS due FROM "
   "conversations WHERE outcome = 'none' AND window_deadline > 0 AND "
   "tenant_id = ?3 AND window_deadline <= ?1 "
   "ORDER BY window_deadline, id LIMIT ?2) AS w "
   "UNION ALL SELECT id, due FROM (SELECT id, turn_at AS due FROM "
   "conversations WHERE turn_at > 0 AND tenant_id = ?3 AND turn_at <= ?1 "
   "ORDER BY turn_at, id LIMIT ?2) AS t "
   "UNION ALL SELECT id, due FROM (SELECT id, close_at AS due FROM "
   "conversations WHERE state <> 'closed' AND close_at > 0 AND "
   "tenant_id = ?3 AND close_at <= ?1 ORDER BY close_at, id LIMIT ?2) AS k"
   ") AS d GROUP BY id) AS x ON x.id = c.id ORDER BY x.due, c.id LIMIT ?2"},
  // bind_conversation_message
  {sql_id::insert_conversation_message, "rb_insert_conversation_message",
   "INSERT INTO conversation_messages (" RINGBACK_CONVERSATION_MESSAGE_COLUMNS
   ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
  // conversation_id, limit -> read_conversation_message: the last `limit`,
  // oldest first
  {sql_id::conversation_messages, "rb_conversation_messages",
   "SELECT id, " RINGBACK_CONVERSATION_MESSAGE_COLUMNS
   " FROM (SELECT id, " RINGBACK_CONVERSATION_MESSAGE_COLUMNS
   " FROM conversation_messages WHERE "
   "conversation_id = ?1 ORDER BY id DESC LIMIT ?2) AS m ORDER BY id"},
  // bind_conversation_event
  {sql_id::insert_conversation_event, "rb_insert_conversation_event",
   "INSERT INTO conversation_events (" RINGBACK_CONVERSATION_EVENT_COLUMNS
   ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"},
  // conversation_id -> read_conversation_event
  {sql_id::conversation_events, "rb_conversation_events",
   "SELECT id, " RINGBACK_CONVERSATION_EVENT_COLUMNS " FROM "
   "conversation_events WHERE conversation_id = ?1 ORDER BY id"},
  // tenant_id, conversation_id, at (replaces the focus)
  {sql_id::set_owner_focus, "rb_set_owner_focus",
   "INSERT INTO owner_focus (tenant_id, conversation_id, focused_at) "
   "VALUES (?1, ?2, ?3) ON CONFLICT (tenant_id) DO UPDATE SET "
   "conversation_id = excluded.conversation_id, "
   "focused_at = excluded.focused_at"},
  // tenant_id -> conversation_id
  {sql_id::owner_focus, "rb_owner_focus",
   "SELECT conversation_id FROM owner_focus WHERE tenant_id = ?1"},
  // tenant_id, since -> turns, errors, prompt tokens, completion tokens,
  // cost: tokens and cost count for AI turns only, an error is no turn
  {sql_id::ai_usage_since, "rb_ai_usage_since",
   "SELECT COALESCE(SUM(CASE WHEN kind = 'ai_turn' THEN 1 ELSE 0 END), 0), "
   "COALESCE(SUM(CASE WHEN kind = 'ai_error' THEN 1 ELSE 0 END), 0), "
   "COALESCE(SUM(CASE WHEN kind = 'ai_turn' THEN prompt_tokens ELSE 0 END), "
   "0), COALESCE(SUM(CASE WHEN kind = 'ai_turn' THEN completion_tokens "
   "ELSE 0 END), 0), COALESCE(SUM(CASE WHEN kind = 'ai_turn' THEN cost_usd "
   "ELSE 0 END), 0) FROM conversation_events WHERE tenant_id = ?1 AND "
   "kind IN ('ai_turn', 'ai_error') AND occurred_at >= ?2"},
  // bind_message, then the id (one taken ahead with next_ids: PostgreSQL's
  // inserts that wait in the transaction's pipeline, see store_pg.cpp)
  {sql_id::insert_message_with_id, "rb_insert_message_with_id",
   "INSERT INTO messages (" RINGBACK_MESSAGE_COLUMNS
   ", id) VALUES (" RINGBACK_MESSAGE_VALUES ", ?22)"},
  // bind_run, then the id (as above)
  {sql_id::insert_run_with_id, "rb_insert_run_with_id",
   "INSERT INTO runs (" RINGBACK_RUN_COLUMNS
   ", id) VALUES (" RINGBACK_RUN_VALUES ", ?16)"},
  // table, count -> that many new ids of the table's id column (PostgreSQL
  // only: SQLite hands out its ids as it inserts, in the same process)
  {sql_id::next_ids, "rb_next_ids",
   "SELECT nextval(pg_get_serial_sequence(?1, 'id')) FROM "
   "generate_series(1, ?2)",
   "SELECT NULL WHERE ?1 IS NULL AND ?2 IS NULL AND 0"},
}};

#undef RINGBACK_CALL_COLUMNS
#undef RINGBACK_MESSAGE_COLUMNS
#undef RINGBACK_STATUS_REPORT_COLUMNS
#undef RINGBACK_OPT_OUT_COLUMNS
#undef RINGBACK_WEBHOOK_COLUMNS
#undef RINGBACK_INBOUND_COLUMNS
#undef RINGBACK_RUN_COLUMNS
#undef RINGBACK_RUN_STEP_COLUMNS
#undef RINGBACK_WORKFLOW_VERSION_COLUMNS
#undef RINGBACK_CONVERSATION_COLUMNS
#undef RINGBACK_CONVERSATION_MESSAGE_COLUMNS
#undef RINGBACK_CONVERSATION_EVENT_COLUMNS
#undef RINGBACK_INSERT_MESSAGE
#undef RINGBACK_MESSAGE_VALUES
#undef RINGBACK_RUN_VALUES
#undef RINGBACK_CREATE_CONVERSATION
#undef RINGBACK_UPDATE_MESSAGE
#undef RINGBACK_CLAIM_MESSAGE
#undef RINGBACK_INSERT_RUN

constexpr bool in_order() {
  for (std::size_t i = 0; i < statements.size(); ++i)
    if (static_cast<std::size_t>(statements[i].id) != i)
      return false;
  return true;
}

static_assert(in_order(), "statements must be listed in sql_id order");

std::string to_postgresql(const char* text) {
  std::string result = text;
  for (auto& ch : result)
    if (ch == '?')
      ch = '$';
  return result;
}

} // namespace

const std::string& sql_text(sql_id id, sql_dialect dialect) {
  static const auto texts = [] {
    std::array<std::array<std::string, sql_count>, 2> xs;
    for (std::size_t i = 0; i < sql_count; ++i) {
      xs[0][i] = statements[i].sqlite_text ? statements[i].sqlite_text
                                           : statements[i].text;
      xs[1][i] = to_postgresql(statements[i].text);
    }
    return xs;
  }();
  return texts[static_cast<std::size_t>(dialect)][static_cast<std::size_t>(id)];
}

const char* sql_name(sql_id id) {
  return statements[static_cast<std::size_t>(id)].name;
}

} // namespace ringback::adapters::store_detail
