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

namespace ringback::adapters {

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
  };
  return list;
}

int latest_schema_version() {
  return sqlite_migrations().back().version;
}

} // namespace ringback::adapters
