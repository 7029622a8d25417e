#include "ringback/adapters/store/migrations.hpp"

// The store schema, once per dialect. Append new versions; never edit one
// that has shipped. Conventions: timestamps are BIGINT epoch milliseconds,
// enums are stored as their text names (records.hpp), every column is NOT
// NULL (empty text, 0 for "none"). The raw webhook fields a client controls
// (call_sid, path, body, signature) may be any bytes: a request that is not
// valid UTF-8 must still be stored, and must not fail the batch it is
// committed with. SQLite keeps them as TEXT (it stores text bytes unchecked);
// PostgreSQL as BYTEA (its TEXT refuses invalid UTF-8 and NUL): query them
// there with e.g. `WHERE call_sid = 'CA..'::bytea`, `convert_from(body,
// 'UTF8')`.
//
// Version 2 (durable workflow runs) applies the same rule to free-form
// payloads that may carry bytes from outside (a run's state and error, a
// step's detail, a workflow file's source): BYTEA in PostgreSQL, so one odd
// byte never fails the batch it is committed with. Read them there with
// `convert_from(state, 'UTF8')::jsonb`. Run steps and workflow versions have
// no foreign key to their run, like messages and webhooks to their call: an
// audit row never fails a batch.
//
// Version 3 (safe messaging) adds to messages what the pre-send gate and the
// delivery reports need, with defaults that keep older rows valid: an older
// message reads as an urgent `automated` one, never held (`not_before` 0, no
// `reason`), whose acceptance and last report times are unknown (0). It adds
// the opt-out ledger (one row per tenant and phone), the delivery reports as
// received (kept for audit, also those for a MessageSid no message has yet),
// and the indexes of the gate's lookups: messages to a recipient, inbound
// messages and calls from a number, each led by the tenant and ending with
// the time its window is on. A status report has no foreign key to its
// message: it may arrive first.
//
// Version 4 (conversations) adds one row per tenant and customer, with its
// short per-tenant reference unique too (`find_or_create_conversation`
// computes the next under a lock; the index is the backstop); one partial
// index per kind of deadline `due_conversations` looks for (an open
// owner-reply window, an AI turn, an idle close), each holding only the
// rows that have one; the transcript and the audit events, read per
// conversation in id order, the AI's events also per tenant and time for
// the usage sums; and the conversation each tenant's owner last heard
// from. A transcript's body and an event's detail may carry bytes from
// outside (a customer's text, an AI server's error): BYTEA in PostgreSQL,
// as version 2's payloads. Transcript rows and events have no foreign key
// to their conversation: audit rows never fail a batch.
//
// Version 5 (gate indexes) gives the gate's last text-back and automated
// count their own partial indexes: with only messages_recipient_idx, both
// walked every message to the recipient in their window and dropped those
// of other kinds, so the gate of an owner notification (kind
// `notification`: never in either) read every notification the owner got
// in the last 24 hours (one hour at 10 missed calls a second: 36,000 rows,
// 150 ms). Now each reads only rows it counts: the automated count is
// bounded by the gate's own cap, the last text-back is one index probe.
// (The loop-window count still reads every message to the recipient in its
// window.) Two indexes, not one: SQLite uses a partial index only when the
// query repeats its WHERE terms.
//
// Version 6 (durable pages) gives each message its channel: `sms`, or
// `call` for an owner's page (a call that reads the body), which the outbox
// now sends like a text. Older rows were all texts (the default). The same
// statement in both dialects; PostgreSQL adds a column with a constant
// default without rewriting the table.
//
// Version 7 (write amplification) keeps the hot writes away from indexes
// that do not need them: the updates of calls, runs and conversations no
// longer name the columns that never change (store_sql.cpp; SQLite rewrites
// every index on a named column, PostgreSQL cannot update such a row in
// place); what stays indexed on a changing column covers the live rows only
// (ringing calls, waiting or running runs, runs waiting for a reply, messages
// not yet sent), so a finished row leaves those indexes for good. Calls by
// ended and phase, and calls and runs by node, go: the recovery at start
// reads the live rows through their partial index on the deadline. The
// gate's indexes follow the kind only (a message's state changes three or
// four times; the gate reads a recipient's few rows to skip the refused
// ones). The deadline indexes of conversations are led by the tenant: each
// tenant's actor scans its own (every tenant read everyone's, up to 10,000
// rows each, every 30 s).
//
// Version 10 (inbound texts survive a crash) gives each inbound text the
// process that stored it and the consumers still to store their part of it
// (`pending`, bits of engine::inbound_consumer: the conversations, the
// runs). Each consumer clears its bit in the transaction that stores its
// part; on start a tenant hands the texts still pending to their consumers
// again. The partial index holds the pending rows only: a text leaves it
// once both parts are stored. Older rows were handled before the upgrade
// (0: nothing pending). The same statements in both dialects.

namespace ringback::adapters {

// Version 7, the same statements in both dialects. (messages_pending_idx
// spells out its three states: SQLite evaluates an IN list of more than two
// values through a temporary table, built at every write of a message.)
constexpr const char* migration_7_name
  = "indexes on live rows only: updates leave the rest alone";
constexpr const char* migration_7_sql = R"sql(
DROP INDEX calls_ended_phase_idx;
DROP INDEX calls_node_idx;
DROP INDEX runs_node_status_idx;
DROP INDEX runs_status_wake_idx;
DROP INDEX runs_contact_waiting_idx;
CREATE INDEX runs_live_wake_idx ON runs (wake_at)
  WHERE status IN ('waiting', 'running');
CREATE INDEX runs_reply_idx ON runs (tenant_id, contact)
  WHERE waiting_for = 'reply' AND status = 'waiting';
DROP INDEX messages_node_state_idx;
CREATE INDEX messages_pending_idx ON messages (node_id, state)
  WHERE (state = 'queued' OR state = 'sending' OR state = 'held');
DROP INDEX messages_text_back_idx;
DROP INDEX messages_automated_idx;
CREATE INDEX messages_text_back_idx
  ON messages (tenant_id, to_number, created_at) WHERE kind = 'text_back';
CREATE INDEX messages_automated_idx
  ON messages (tenant_id, to_number, created_at)
  WHERE kind IN ('text_back', 'automated');
DROP INDEX conversations_window_idx;
DROP INDEX conversations_turn_idx;
DROP INDEX conversations_close_idx;
CREATE INDEX conversations_window_idx
  ON conversations (tenant_id, window_deadline, id)
  WHERE outcome = 'none' AND window_deadline > 0;
CREATE INDEX conversations_turn_idx ON conversations (tenant_id, turn_at, id)
  WHERE turn_at > 0;
CREATE INDEX conversations_close_idx ON conversations (tenant_id, close_at, id)
  WHERE state <> 'closed' AND close_at > 0;
)sql";

// Version 8: a conversation's ref is unique per tenant through a partial
// index on the rows that have one, which is every row (ref is NOT NULL):
// only a query that states `ref IS NOT NULL` can use it (PostgreSQL also
// takes `ref = $2` for it). The full index on (tenant_id, ref) also matched
// the lookup by customer's `tenant_id = $1`, and PostgreSQL, planning the
// prepared lookup on a new database's empty table, could not tell the two
// indexes apart and read every conversation of the tenant for one customer
// (0.8 ms at 5,000); the next ref's MAX read them all as well. The same
// index in SQLite keeps the schemas alike.
constexpr const char* migration_8_name
  = "conversation refs: the lookup by customer keeps its index";
constexpr const char* migration_8_sql = R"sql(
DROP INDEX conversations_ref_idx;
CREATE UNIQUE INDEX conversations_ref_idx ON conversations (tenant_id, ref)
  WHERE ref IS NOT NULL;
)sql";

// Version 9 (fewer pages per commit, SQLite): every page a transaction
// changes is written to the WAL once per commit and copied into the
// database by the next checkpoint, and the WAL frame's checksum alone costs
// about as much CPU as the insert that dirtied it. `AUTOINCREMENT` rewrote
// its table's row in `sqlite_sequence` at every insert into seven tables: a
// page in nearly every commit (1.5 of 37 WAL frames per call at 1,000
// calls/s) and a read and an update per insert. The ids stay what they were:
// the next is the largest plus one, these tables never delete a row, and a
// rolled-back insert gave its id back under AUTOINCREMENT too. Run steps are
// kept in their key's b-tree (`WITHOUT ROWID`): one b-tree written per step
// instead of the table and its key index (about as many pages: a key b-tree
// splits its last page in halves where a rowid table starts a new one, but
// one insert instead of two). SQLite cannot alter either property, so each
// table is rebuilt: copied into a new one, dropped, renamed and its indexes
// made again with version 8's definitions. PostgreSQL has neither cost (an
// identity column keeps no side table; its primary keys are indexes anyway):
// nothing changes there.
// Version 10, the same statements in both dialects.
constexpr const char* migration_10_name
  = "inbound texts: the consumers still to store their part";
constexpr const char* migration_10_sql = R"sql(
ALTER TABLE inbound_messages ADD COLUMN node_id TEXT NOT NULL DEFAULT '';
ALTER TABLE inbound_messages ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
CREATE INDEX inbound_messages_pending_idx ON inbound_messages (received_at)
  WHERE pending <> 0;
)sql";

constexpr const char* migration_9_name
  = "fewer pages per commit: no AUTOINCREMENT, run steps in their key";
constexpr const char* migration_9_sqlite_sql = R"sql(
CREATE TABLE webhooks_v9 (
  id          INTEGER PRIMARY KEY,
  tenant_id   TEXT    NOT NULL,
  kind        TEXT    NOT NULL,
  call_sid    TEXT    NOT NULL,
  path        TEXT    NOT NULL,
  body        TEXT    NOT NULL,
  signature   TEXT    NOT NULL,
  duplicate   INTEGER NOT NULL,
  received_at INTEGER NOT NULL
);
INSERT INTO webhooks_v9 SELECT * FROM webhooks;
DROP TABLE webhooks;
ALTER TABLE webhooks_v9 RENAME TO webhooks;
CREATE INDEX webhooks_call_idx ON webhooks (call_sid);

CREATE TABLE messages_v9 (
  id            INTEGER PRIMARY KEY,
  tenant_id     TEXT    NOT NULL,
  call_sid      TEXT    NOT NULL,
  purpose       TEXT    NOT NULL,
  from_number   TEXT    NOT NULL,
  to_number     TEXT    NOT NULL,
  body          TEXT    NOT NULL,
  state         TEXT    NOT NULL,
  attempts      INTEGER NOT NULL,
  message_sid   TEXT    NOT NULL,
  error_code    INTEGER NOT NULL,
  error_message TEXT    NOT NULL,
  node_id       TEXT    NOT NULL,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL,
  kind          TEXT    NOT NULL DEFAULT 'automated',
  urgent        INTEGER NOT NULL DEFAULT 1,
  not_before    INTEGER NOT NULL DEFAULT 0,
  reason        TEXT    NOT NULL DEFAULT '',
  sent_at       INTEGER NOT NULL DEFAULT 0,
  status_at     INTEGER NOT NULL DEFAULT 0,
  channel       TEXT    NOT NULL DEFAULT 'sms'
);
INSERT INTO messages_v9 SELECT * FROM messages;
DROP TABLE messages;
ALTER TABLE messages_v9 RENAME TO messages;
CREATE INDEX messages_call_idx ON messages (call_sid);
CREATE INDEX messages_pending_idx ON messages (node_id, state)
  WHERE (state = 'queued' OR state = 'sending' OR state = 'held');
CREATE INDEX messages_sid_idx ON messages (message_sid)
  WHERE message_sid <> '';
CREATE INDEX messages_recipient_idx
  ON messages (tenant_id, to_number, created_at);
CREATE INDEX messages_text_back_idx
  ON messages (tenant_id, to_number, created_at) WHERE kind = 'text_back';
CREATE INDEX messages_automated_idx
  ON messages (tenant_id, to_number, created_at)
  WHERE kind IN ('text_back', 'automated');

CREATE TABLE runs_v9 (
  id            INTEGER PRIMARY KEY,
  tenant_id     TEXT    NOT NULL,
  workflow      TEXT    NOT NULL,
  version       TEXT    NOT NULL,
  trigger_event TEXT    NOT NULL,
  call_sid      TEXT    NOT NULL,
  contact       TEXT    NOT NULL,
  status        TEXT    NOT NULL,
  waiting_for   TEXT    NOT NULL,
  wake_at       INTEGER NOT NULL,
  state         TEXT    NOT NULL,
  node_id       TEXT    NOT NULL,
  seq           INTEGER NOT NULL,
  error         TEXT    NOT NULL,
  started_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
);
INSERT INTO runs_v9 SELECT * FROM runs;
DROP TABLE runs;
ALTER TABLE runs_v9 RENAME TO runs;
CREATE INDEX runs_call_idx ON runs (call_sid);
CREATE INDEX runs_live_wake_idx ON runs (wake_at)
  WHERE status IN ('waiting', 'running');
CREATE INDEX runs_reply_idx ON runs (tenant_id, contact)
  WHERE waiting_for = 'reply' AND status = 'waiting';

CREATE TABLE run_steps_v9 (
  run_id      INTEGER NOT NULL,
  seq         INTEGER NOT NULL,
  step_id     TEXT    NOT NULL,
  type        TEXT    NOT NULL,
  outcome     TEXT    NOT NULL,
  detail      TEXT    NOT NULL,
  executed_at INTEGER NOT NULL,
  duration_us INTEGER NOT NULL,
  PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
INSERT INTO run_steps_v9 SELECT * FROM run_steps;
DROP TABLE run_steps;
ALTER TABLE run_steps_v9 RENAME TO run_steps;

CREATE TABLE status_reports_v9 (
  id             INTEGER PRIMARY KEY,
  message_sid    TEXT    NOT NULL,
  carrier_status TEXT    NOT NULL,
  state          TEXT    NOT NULL,
  error_code     INTEGER NOT NULL,
  error_message  TEXT    NOT NULL,
  received_at    INTEGER NOT NULL
);
INSERT INTO status_reports_v9 SELECT * FROM status_reports;
DROP TABLE status_reports;
ALTER TABLE status_reports_v9 RENAME TO status_reports;
CREATE INDEX status_reports_sid_idx ON status_reports (message_sid);

CREATE TABLE conversations_v9 (
  id               INTEGER PRIMARY KEY,
  tenant_id        TEXT    NOT NULL,
  customer         TEXT    NOT NULL,
  business_number  TEXT    NOT NULL,
  ref              INTEGER NOT NULL,
  state            TEXT    NOT NULL,
  window_seq       INTEGER NOT NULL,
  window_deadline  INTEGER NOT NULL,
  outcome          TEXT    NOT NULL,
  turn_at          INTEGER NOT NULL,
  close_at         INTEGER NOT NULL,
  ai_replies       INTEGER NOT NULL,
  opened_at        INTEGER NOT NULL,
  last_customer_at INTEGER NOT NULL,
  last_owner_at    INTEGER NOT NULL,
  last_ai_at       INTEGER NOT NULL,
  node_id          TEXT    NOT NULL,
  seq              INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
);
INSERT INTO conversations_v9 SELECT * FROM conversations;
DROP TABLE conversations;
ALTER TABLE conversations_v9 RENAME TO conversations;
CREATE UNIQUE INDEX conversations_customer_idx
  ON conversations (tenant_id, customer);
CREATE UNIQUE INDEX conversations_ref_idx ON conversations (tenant_id, ref)
  WHERE ref IS NOT NULL;
CREATE INDEX conversations_window_idx
  ON conversations (tenant_id, window_deadline, id)
  WHERE outcome = 'none' AND window_deadline > 0;
CREATE INDEX conversations_turn_idx ON conversations (tenant_id, turn_at, id)
  WHERE turn_at > 0;
CREATE INDEX conversations_close_idx ON conversations (tenant_id, close_at, id)
  WHERE state <> 'closed' AND close_at > 0;

CREATE TABLE conversation_messages_v9 (
  id              INTEGER PRIMARY KEY,
  conversation_id INTEGER NOT NULL,
  tenant_id       TEXT    NOT NULL,
  author          TEXT    NOT NULL,
  body            TEXT    NOT NULL,
  message_id      INTEGER NOT NULL,
  message_sid     TEXT    NOT NULL,
  created_at      INTEGER NOT NULL
);
INSERT INTO conversation_messages_v9 SELECT * FROM conversation_messages;
DROP TABLE conversation_messages;
ALTER TABLE conversation_messages_v9 RENAME TO conversation_messages;
CREATE INDEX conversation_messages_conversation_idx
  ON conversation_messages (conversation_id, id);

CREATE TABLE conversation_events_v9 (
  id                INTEGER PRIMARY KEY,
  conversation_id   INTEGER NOT NULL,
  tenant_id         TEXT    NOT NULL,
  kind              TEXT    NOT NULL,
  detail            TEXT    NOT NULL,
  window_seq        INTEGER NOT NULL,
  provider          TEXT    NOT NULL,
  latency_ms        INTEGER NOT NULL,
  prompt_tokens     INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  cost_usd          REAL    NOT NULL,
  occurred_at       INTEGER NOT NULL
);
INSERT INTO conversation_events_v9 SELECT * FROM conversation_events;
DROP TABLE conversation_events;
ALTER TABLE conversation_events_v9 RENAME TO conversation_events;
CREATE INDEX conversation_events_conversation_idx
  ON conversation_events (conversation_id, id);
CREATE INDEX conversation_events_ai_idx
  ON conversation_events (tenant_id, occurred_at)
  WHERE kind IN ('ai_turn', 'ai_error');
)sql";

constexpr const char* migration_9_pg_sql = "SELECT 1";

const std::vector<migration>& sqlite_migrations() {
  static const std::vector<migration> list{
    {1, "tenants, calls, webhooks, messages, inbound messages, contacts",
     R"sql(
CREATE TABLE tenants (
  id          TEXT    NOT NULL PRIMARY KEY,
  name        TEXT    NOT NULL,
  owner_phone TEXT    NOT NULL,
  timezone    TEXT    NOT NULL,
  updated_at  INTEGER NOT NULL
);
CREATE TABLE tenant_numbers (
  number    TEXT NOT NULL PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  kind      TEXT NOT NULL,
  mps       REAL NOT NULL
);
CREATE INDEX tenant_numbers_tenant_idx ON tenant_numbers (tenant_id);
CREATE TABLE calls (
  call_sid        TEXT    NOT NULL PRIMARY KEY,
  tenant_id       TEXT    NOT NULL,
  from_number     TEXT    NOT NULL,
  to_number       TEXT    NOT NULL,
  owner_phone     TEXT    NOT NULL,
  phase           TEXT    NOT NULL,
  decided         TEXT    NOT NULL,
  ended           INTEGER NOT NULL,
  started_at      INTEGER NOT NULL,
  fallback_at     INTEGER NOT NULL,
  fallback_checks INTEGER NOT NULL,
  dial_status     TEXT    NOT NULL,
  dial_duration   INTEGER NOT NULL,
  node_id         TEXT    NOT NULL,
  updated_at      INTEGER NOT NULL
);
CREATE INDEX calls_ended_phase_idx ON calls (ended, phase);
CREATE INDEX calls_node_idx ON calls (node_id);
CREATE INDEX calls_ringing_fallback_idx ON calls (fallback_at)
  WHERE phase = 'ringing';
CREATE TABLE webhooks (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id   TEXT    NOT NULL,
  kind        TEXT    NOT NULL,
  call_sid    TEXT    NOT NULL,
  path        TEXT    NOT NULL,
  body        TEXT    NOT NULL,
  signature   TEXT    NOT NULL,
  duplicate   INTEGER NOT NULL,
  received_at INTEGER NOT NULL
);
CREATE INDEX webhooks_call_idx ON webhooks (call_sid);
CREATE TABLE messages (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id     TEXT    NOT NULL,
  call_sid      TEXT    NOT NULL,
  purpose       TEXT    NOT NULL,
  from_number   TEXT    NOT NULL,
  to_number     TEXT    NOT NULL,
  body          TEXT    NOT NULL,
  state         TEXT    NOT NULL,
  attempts      INTEGER NOT NULL,
  message_sid   TEXT    NOT NULL,
  error_code    INTEGER NOT NULL,
  error_message TEXT    NOT NULL,
  node_id       TEXT    NOT NULL,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
);
CREATE INDEX messages_node_state_idx ON messages (node_id, state);
CREATE INDEX messages_call_idx ON messages (call_sid);
CREATE TABLE inbound_messages (
  message_sid TEXT    NOT NULL PRIMARY KEY,
  tenant_id   TEXT    NOT NULL,
  from_number TEXT    NOT NULL,
  to_number   TEXT    NOT NULL,
  body        TEXT    NOT NULL,
  received_at INTEGER NOT NULL
);
CREATE TABLE contacts (
  tenant_id  TEXT    NOT NULL,
  phone      TEXT    NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen  INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, phone)
);
)sql"},
    {2, "workflow runs, run steps, workflow versions, contact tags",
     R"sql(
CREATE TABLE runs (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id     TEXT    NOT NULL,
  workflow      TEXT    NOT NULL,
  version       TEXT    NOT NULL,
  trigger_event TEXT    NOT NULL,
  call_sid      TEXT    NOT NULL,
  contact       TEXT    NOT NULL,
  status        TEXT    NOT NULL,
  waiting_for   TEXT    NOT NULL,
  wake_at       INTEGER NOT NULL,
  state         TEXT    NOT NULL,
  node_id       TEXT    NOT NULL,
  seq           INTEGER NOT NULL,
  error         TEXT    NOT NULL,
  started_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
);
CREATE INDEX runs_node_status_idx ON runs (node_id, status);
CREATE INDEX runs_contact_waiting_idx ON runs (tenant_id, contact, waiting_for);
CREATE INDEX runs_call_idx ON runs (call_sid);
CREATE INDEX runs_status_wake_idx ON runs (status, wake_at);
CREATE TABLE run_steps (
  run_id      INTEGER NOT NULL,
  seq         INTEGER NOT NULL,
  step_id     TEXT    NOT NULL,
  type        TEXT    NOT NULL,
  outcome     TEXT    NOT NULL,
  detail      TEXT    NOT NULL,
  executed_at INTEGER NOT NULL,
  duration_us INTEGER NOT NULL,
  PRIMARY KEY (run_id, seq)
);
CREATE TABLE workflow_versions (
  tenant_id TEXT    NOT NULL,
  name      TEXT    NOT NULL,
  version   TEXT    NOT NULL,
  file      TEXT    NOT NULL,
  source    TEXT    NOT NULL,
  loaded_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, name, version)
);
CREATE TABLE contact_tags (
  tenant_id TEXT    NOT NULL,
  phone     TEXT    NOT NULL,
  tag       TEXT    NOT NULL,
  tagged_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, phone, tag),
  FOREIGN KEY (tenant_id, phone) REFERENCES contacts (tenant_id, phone)
    ON DELETE CASCADE
);
)sql"},
    {3,
     "messaging: message kinds and holds, delivery reports, opt-out "
     "ledger, gate indexes",
     R"sql(
ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'automated';
ALTER TABLE messages ADD COLUMN urgent INTEGER NOT NULL DEFAULT 1;
ALTER TABLE messages ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN sent_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN status_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX messages_sid_idx ON messages (message_sid)
  WHERE message_sid <> '';
CREATE INDEX messages_recipient_idx ON messages (tenant_id, to_number, created_at);
CREATE INDEX inbound_messages_sender_idx
  ON inbound_messages (tenant_id, from_number, received_at);
CREATE INDEX calls_caller_idx ON calls (tenant_id, from_number, started_at);
CREATE TABLE opt_outs (
  tenant_id     TEXT    NOT NULL,
  phone         TEXT    NOT NULL,
  opted_out     INTEGER NOT NULL,
  since         INTEGER NOT NULL,
  keyword       TEXT    NOT NULL,
  source        TEXT    NOT NULL,
  last_event_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, phone)
);
CREATE TABLE status_reports (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  message_sid    TEXT    NOT NULL,
  carrier_status TEXT    NOT NULL,
  state          TEXT    NOT NULL,
  error_code     INTEGER NOT NULL,
  error_message  TEXT    NOT NULL,
  received_at    INTEGER NOT NULL
);
CREATE INDEX status_reports_sid_idx ON status_reports (message_sid);
)sql"},
    {4, "conversations: conversations, transcripts, events, owner focus",
     R"sql(
CREATE TABLE conversations (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id        TEXT    NOT NULL,
  customer         TEXT    NOT NULL,
  business_number  TEXT    NOT NULL,
  ref              INTEGER NOT NULL,
  state            TEXT    NOT NULL,
  window_seq       INTEGER NOT NULL,
  window_deadline  INTEGER NOT NULL,
  outcome          TEXT    NOT NULL,
  turn_at          INTEGER NOT NULL,
  close_at         INTEGER NOT NULL,
  ai_replies       INTEGER NOT NULL,
  opened_at        INTEGER NOT NULL,
  last_customer_at INTEGER NOT NULL,
  last_owner_at    INTEGER NOT NULL,
  last_ai_at       INTEGER NOT NULL,
  node_id          TEXT    NOT NULL,
  seq              INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
);
CREATE UNIQUE INDEX conversations_customer_idx
  ON conversations (tenant_id, customer);
CREATE UNIQUE INDEX conversations_ref_idx ON conversations (tenant_id, ref);
CREATE INDEX conversations_window_idx ON conversations (window_deadline, id)
  WHERE outcome = 'none' AND window_deadline > 0;
CREATE INDEX conversations_turn_idx ON conversations (turn_at, id)
  WHERE turn_at > 0;
CREATE INDEX conversations_close_idx ON conversations (close_at, id)
  WHERE state <> 'closed' AND close_at > 0;
CREATE TABLE conversation_messages (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  conversation_id INTEGER NOT NULL,
  tenant_id       TEXT    NOT NULL,
  author          TEXT    NOT NULL,
  body            TEXT    NOT NULL,
  message_id      INTEGER NOT NULL,
  message_sid     TEXT    NOT NULL,
  created_at      INTEGER NOT NULL
);
CREATE INDEX conversation_messages_conversation_idx
  ON conversation_messages (conversation_id, id);
CREATE TABLE conversation_events (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  conversation_id   INTEGER NOT NULL,
  tenant_id         TEXT    NOT NULL,
  kind              TEXT    NOT NULL,
  detail            TEXT    NOT NULL,
  window_seq        INTEGER NOT NULL,
  provider          TEXT    NOT NULL,
  latency_ms        INTEGER NOT NULL,
  prompt_tokens     INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  cost_usd          REAL    NOT NULL,
  occurred_at       INTEGER NOT NULL
);
CREATE INDEX conversation_events_conversation_idx
  ON conversation_events (conversation_id, id);
CREATE INDEX conversation_events_ai_idx
  ON conversation_events (tenant_id, occurred_at)
  WHERE kind IN ('ai_turn', 'ai_error');
CREATE TABLE owner_focus (
  tenant_id       TEXT    NOT NULL PRIMARY KEY,
  conversation_id INTEGER NOT NULL,
  focused_at      INTEGER NOT NULL
);
)sql"},
    {5, "gate: the automated messages to a recipient, indexed apart",
     R"sql(
CREATE INDEX messages_text_back_idx
  ON messages (tenant_id, to_number, created_at)
  WHERE kind = 'text_back' AND state <> 'refused';
CREATE INDEX messages_automated_idx
  ON messages (tenant_id, to_number, created_at)
  WHERE kind IN ('text_back', 'automated') AND state <> 'refused';
)sql"},
    {6, "outbox: a message's channel (sms, or a call that reads it)",
     R"sql(
ALTER TABLE messages ADD COLUMN channel TEXT NOT NULL DEFAULT 'sms';
)sql"},
    {7, migration_7_name, migration_7_sql},
    {8, migration_8_name, migration_8_sql},
    {9, migration_9_name, migration_9_sqlite_sql},
    {10, migration_10_name, migration_10_sql},
  };
  return list;
}

const std::vector<migration>& pg_migrations() {
  static const std::vector<migration> list{
    {1, "tenants, calls, webhooks, messages, inbound messages, contacts",
     R"sql(
CREATE TABLE tenants (
  id          TEXT   NOT NULL PRIMARY KEY,
  name        TEXT   NOT NULL,
  owner_phone TEXT   NOT NULL,
  timezone    TEXT   NOT NULL,
  updated_at  BIGINT NOT NULL
);
CREATE TABLE tenant_numbers (
  number    TEXT             NOT NULL PRIMARY KEY,
  tenant_id TEXT             NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  kind      TEXT             NOT NULL,
  mps       DOUBLE PRECISION NOT NULL
);
CREATE INDEX tenant_numbers_tenant_idx ON tenant_numbers (tenant_id);
CREATE TABLE calls (
  call_sid        TEXT    NOT NULL PRIMARY KEY,
  tenant_id       TEXT    NOT NULL,
  from_number     TEXT    NOT NULL,
  to_number       TEXT    NOT NULL,
  owner_phone     TEXT    NOT NULL,
  phase           TEXT    NOT NULL,
  decided         TEXT    NOT NULL,
  ended           BOOLEAN NOT NULL,
  started_at      BIGINT  NOT NULL,
  fallback_at     BIGINT  NOT NULL,
  fallback_checks INTEGER NOT NULL,
  dial_status     TEXT    NOT NULL,
  dial_duration   INTEGER NOT NULL,
  node_id         TEXT    NOT NULL,
  updated_at      BIGINT  NOT NULL
);
CREATE INDEX calls_ended_phase_idx ON calls (ended, phase);
CREATE INDEX calls_node_idx ON calls (node_id);
CREATE INDEX calls_ringing_fallback_idx ON calls (fallback_at)
  WHERE phase = 'ringing';
CREATE TABLE webhooks (
  id          BIGINT  GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  tenant_id   TEXT    NOT NULL,
  kind        TEXT    NOT NULL,
  call_sid    BYTEA   NOT NULL,
  path        BYTEA   NOT NULL,
  body        BYTEA   NOT NULL,
  signature   BYTEA   NOT NULL,
  duplicate   BOOLEAN NOT NULL,
  received_at BIGINT  NOT NULL
);
CREATE INDEX webhooks_call_idx ON webhooks (call_sid);
CREATE TABLE messages (
  id            BIGINT  GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  tenant_id     TEXT    NOT NULL,
  call_sid      TEXT    NOT NULL,
  purpose       TEXT    NOT NULL,
  from_number   TEXT    NOT NULL,
  to_number     TEXT    NOT NULL,
  body          TEXT    NOT NULL,
  state         TEXT    NOT NULL,
  attempts      INTEGER NOT NULL,
  message_sid   TEXT    NOT NULL,
  error_code    INTEGER NOT NULL,
  error_message TEXT    NOT NULL,
  node_id       TEXT    NOT NULL,
  created_at    BIGINT  NOT NULL,
  updated_at    BIGINT  NOT NULL
);
CREATE INDEX messages_node_state_idx ON messages (node_id, state);
CREATE INDEX messages_call_idx ON messages (call_sid);
CREATE TABLE inbound_messages (
  message_sid TEXT   NOT NULL PRIMARY KEY,
  tenant_id   TEXT   NOT NULL,
  from_number TEXT   NOT NULL,
  to_number   TEXT   NOT NULL,
  body        TEXT   NOT NULL,
  received_at BIGINT NOT NULL
);
CREATE TABLE contacts (
  tenant_id  TEXT   NOT NULL,
  phone      TEXT   NOT NULL,
  first_seen BIGINT NOT NULL,
  last_seen  BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, phone)
);
)sql"},
    {2, "workflow runs, run steps, workflow versions, contact tags",
     R"sql(
CREATE TABLE runs (
  id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  tenant_id     TEXT   NOT NULL,
  workflow      TEXT   NOT NULL,
  version       TEXT   NOT NULL,
  trigger_event TEXT   NOT NULL,
  call_sid      TEXT   NOT NULL,
  contact       TEXT   NOT NULL,
  status        TEXT   NOT NULL,
  waiting_for   TEXT   NOT NULL,
  wake_at       BIGINT NOT NULL,
  state         BYTEA  NOT NULL,
  node_id       TEXT   NOT NULL,
  seq           BIGINT NOT NULL,
  error         BYTEA  NOT NULL,
  started_at    BIGINT NOT NULL,
  updated_at    BIGINT NOT NULL
);
CREATE INDEX runs_node_status_idx ON runs (node_id, status);
CREATE INDEX runs_contact_waiting_idx ON runs (tenant_id, contact, waiting_for);
CREATE INDEX runs_call_idx ON runs (call_sid);
CREATE INDEX runs_status_wake_idx ON runs (status, wake_at);
CREATE TABLE run_steps (
  run_id      BIGINT  NOT NULL,
  seq         INTEGER NOT NULL,
  step_id     TEXT    NOT NULL,
  type        TEXT    NOT NULL,
  outcome     TEXT    NOT NULL,
  detail      BYTEA   NOT NULL,
  executed_at BIGINT  NOT NULL,
  duration_us BIGINT  NOT NULL,
  PRIMARY KEY (run_id, seq)
);
CREATE TABLE workflow_versions (
  tenant_id TEXT   NOT NULL,
  name      TEXT   NOT NULL,
  version   TEXT   NOT NULL,
  file      TEXT   NOT NULL,
  source    BYTEA  NOT NULL,
  loaded_at BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, name, version)
);
CREATE TABLE contact_tags (
  tenant_id TEXT   NOT NULL,
  phone     TEXT   NOT NULL,
  tag       TEXT   NOT NULL,
  tagged_at BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, phone, tag),
  FOREIGN KEY (tenant_id, phone) REFERENCES contacts (tenant_id, phone)
    ON DELETE CASCADE
);
)sql"},
    {3,
     "messaging: message kinds and holds, delivery reports, opt-out "
     "ledger, gate indexes",
     R"sql(
ALTER TABLE messages
  ADD COLUMN kind       TEXT    NOT NULL DEFAULT 'automated',
  ADD COLUMN urgent     BOOLEAN NOT NULL DEFAULT true,
  ADD COLUMN not_before BIGINT  NOT NULL DEFAULT 0,
  ADD COLUMN reason     TEXT    NOT NULL DEFAULT '',
  ADD COLUMN sent_at    BIGINT  NOT NULL DEFAULT 0,
  ADD COLUMN status_at  BIGINT  NOT NULL DEFAULT 0;
CREATE INDEX messages_sid_idx ON messages (message_sid)
  WHERE message_sid <> '';
CREATE INDEX messages_recipient_idx ON messages (tenant_id, to_number, created_at);
CREATE INDEX inbound_messages_sender_idx
  ON inbound_messages (tenant_id, from_number, received_at);
CREATE INDEX calls_caller_idx ON calls (tenant_id, from_number, started_at);
CREATE TABLE opt_outs (
  tenant_id     TEXT    NOT NULL,
  phone         TEXT    NOT NULL,
  opted_out     BOOLEAN NOT NULL,
  since         BIGINT  NOT NULL,
  keyword       TEXT    NOT NULL,
  source        TEXT    NOT NULL,
  last_event_at BIGINT  NOT NULL,
  PRIMARY KEY (tenant_id, phone)
);
CREATE TABLE status_reports (
  id             BIGINT  GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  message_sid    TEXT    NOT NULL,
  carrier_status TEXT    NOT NULL,
  state          TEXT    NOT NULL,
  error_code     INTEGER NOT NULL,
  error_message  TEXT    NOT NULL,
  received_at    BIGINT  NOT NULL
);
CREATE INDEX status_reports_sid_idx ON status_reports (message_sid);
)sql"},
    {4, "conversations: conversations, transcripts, events, owner focus",
     R"sql(
CREATE TABLE conversations (
  id               BIGINT  GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  tenant_id        TEXT    NOT NULL,
  customer         TEXT    NOT NULL,
  business_number  TEXT    NOT NULL,
  ref              INTEGER NOT NULL,
  state            TEXT    NOT NULL,
  window_seq       INTEGER NOT NULL,
  window_deadline  BIGINT  NOT NULL,
  outcome          TEXT    NOT NULL,
  turn_at          BIGINT  NOT NULL,
  close_at         BIGINT  NOT NULL,
  ai_replies       INTEGER NOT NULL,
  opened_at        BIGINT  NOT NULL,
  last_customer_at BIGINT  NOT NULL,
  last_owner_at    BIGINT  NOT NULL,
  last_ai_at       BIGINT  NOT NULL,
  node_id          TEXT    NOT NULL,
  seq              BIGINT  NOT NULL,
  updated_at       BIGINT  NOT NULL
);
CREATE UNIQUE INDEX conversations_customer_idx
  ON conversations (tenant_id, customer);
CREATE UNIQUE INDEX conversations_ref_idx ON conversations (tenant_id, ref);
CREATE INDEX conversations_window_idx ON conversations (window_deadline, id)
  WHERE outcome = 'none' AND window_deadline > 0;
CREATE INDEX conversations_turn_idx ON conversations (turn_at, id)
  WHERE turn_at > 0;
CREATE INDEX conversations_close_idx ON conversations (close_at, id)
  WHERE state <> 'closed' AND close_at > 0;
CREATE TABLE conversation_messages (
  id              BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  conversation_id BIGINT NOT NULL,
  tenant_id       TEXT   NOT NULL,
  author          TEXT   NOT NULL,
  body            BYTEA  NOT NULL,
  message_id      BIGINT NOT NULL,
  message_sid     TEXT   NOT NULL,
  created_at      BIGINT NOT NULL
);
CREATE INDEX conversation_messages_conversation_idx
  ON conversation_messages (conversation_id, id);
CREATE TABLE conversation_events (
  id                BIGINT           GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  conversation_id   BIGINT           NOT NULL,
  tenant_id         TEXT             NOT NULL,
  kind              TEXT             NOT NULL,
  detail            BYTEA            NOT NULL,
  window_seq        INTEGER          NOT NULL,
  provider          TEXT             NOT NULL,
  latency_ms        BIGINT           NOT NULL,
  prompt_tokens     INTEGER          NOT NULL,
  completion_tokens INTEGER          NOT NULL,
  cost_usd          DOUBLE PRECISION NOT NULL,
  occurred_at       BIGINT           NOT NULL
);
CREATE INDEX conversation_events_conversation_idx
  ON conversation_events (conversation_id, id);
CREATE INDEX conversation_events_ai_idx
  ON conversation_events (tenant_id, occurred_at)
  WHERE kind IN ('ai_turn', 'ai_error');
CREATE TABLE owner_focus (
  tenant_id       TEXT   NOT NULL PRIMARY KEY,
  conversation_id BIGINT NOT NULL,
  focused_at      BIGINT NOT NULL
);
)sql"},
    {5, "gate: the automated messages to a recipient, indexed apart",
     R"sql(
CREATE INDEX messages_text_back_idx
  ON messages (tenant_id, to_number, created_at)
  WHERE kind = 'text_back' AND state <> 'refused';
CREATE INDEX messages_automated_idx
  ON messages (tenant_id, to_number, created_at)
  WHERE kind IN ('text_back', 'automated') AND state <> 'refused';
)sql"},
    {6, "outbox: a message's channel (sms, or a call that reads it)",
     R"sql(
ALTER TABLE messages ADD COLUMN channel TEXT NOT NULL DEFAULT 'sms';
)sql"},
    {7, migration_7_name, migration_7_sql},
    {8, migration_8_name, migration_8_sql},
    {9, migration_9_name, migration_9_pg_sql},
    {10, migration_10_name, migration_10_sql},
  };
  return list;
}

int latest_schema_version() {
  return sqlite_migrations().back().version;
}

} // namespace ringback::adapters
