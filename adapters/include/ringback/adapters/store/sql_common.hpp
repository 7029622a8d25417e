#pragma once

// Internal: what the SQL store adapters (`sqlite_store`, `pg_store`) share:
// the statements, how records are bound and decoded, and the operations
// themselves. Each adapter supplies a *driver* that runs statements:
//
//   static constexpr sql_dialect dialect;
//   std::string_view backend() const;                    // "sqlite", ...
//   std::int64_t last_insert_id() const;                 // SQLite only
//   std::int64_t execute(sql_id, Bind bind);             // rows affected
//   void execute_later(sql_id, Bind bind, Check check);  // a write whose
//       // result only check(rows affected) reads (it may throw); in a
//       // transaction it may run with the next statement or at the commit
//   void query(sql_id, Bind bind, OnRow on_row);         // on_row per row
//   void serialize(std::int64_t key);  // a transaction lock on `key` (a
//                                      // no-op where writers are serial)
//   std::optional<std::int64_t> insert_later(sql_id with_id,
//                                            const char* table, Bind bind);
//       // PostgreSQL: an insert (`with_id` binds the id last) whose id is
//       // taken ahead and returned at once, the insert waiting like
//       // execute_later's writes; nullopt where it cannot (then the insert
//       // runs with RETURNING)
//
// `bind(binder&)` binds the parameters in order through `text`, `bytes`,
// `int64`, `int32`, `boolean` and `real`; `on_row(const row&)` reads columns
// by index through the same names, and `null(i)` tells a NULL column.
// Connections, transactions and turning backend errors into `port_error`
// stay with each adapter.

#include "ringback/adapters/store/audited_store.hpp"
#include "ringback/adapters/store/detail.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringback::adapters::store_detail {

/// Every statement the SQL adapters prepare. The SQL text (one source with
/// `?N` placeholders, `$N` for PostgreSQL) is in store_sql.cpp; the comments
/// there give each statement's parameters and columns.
enum class sql_id : std::size_t {
  upsert_tenant,
  delete_tenant_numbers,
  upsert_tenant_number,
  find_tenant,
  find_tenant_numbers,
  insert_call,
  update_call,
  decide_outcome,
  call_exists,
  find_call,
  unfinished_calls,
  insert_webhook,
  webhooks_for,
  insert_message,
  update_message,
  find_message,
  pending_messages,
  messages_for_call,
  claim_message,
  release_held,
  find_message_by_sid,
  apply_status,
  insert_status_report,
  status_reports,
  gate_facts,
  find_opt_out,
  save_opt_out,
  opted_out,
  insert_inbound,
  find_inbound,
  consume_inbound,
  restore_inbound,
  pending_inbound,
  touch_contact,
  find_contact,
  insert_run,
  update_run,
  run_exists,
  find_run,
  unfinished_runs,
  runs_waiting_for_reply,
  runs_for_call,
  insert_run_step,
  run_steps,
  save_workflow_version,
  find_workflow_version,
  add_contact,
  tag_contact,
  contact_tags,
  find_conversation,
  find_conversation_by_customer,
  find_conversation_by_ref,
  create_conversation,
  update_conversation,
  conversation_exists,
  due_conversations,
  insert_conversation_message,
  conversation_messages,
  insert_conversation_event,
  conversation_events,
  set_owner_focus,
  owner_focus,
  ai_usage_since,
  insert_message_with_id,
  insert_run_with_id,
  next_ids,
};

inline constexpr std::size_t sql_count
  = static_cast<std::size_t>(sql_id::next_ids) + 1;

enum class sql_dialect : std::uint8_t { sqlite, postgresql };

/// The text of a statement in a dialect.
const std::string& sql_text(sql_id id, sql_dialect dialect);

/// A stable name for a statement (PostgreSQL prepared statement names).
const char* sql_name(sql_id id);

// -- binding and decoding -----------------------------------------------------

/// call_sid .. updated_at in the column order of the calls table (15).
template <class Binder>
void bind_call(Binder& b, const engine::call_record& c) {
  b.text(c.call_sid)
    .text(c.tenant_id)
    .text(c.from)
    .text(c.to)
    .text(c.owner_phone)
    .text(to_string(c.phase))
    .text(to_string(c.decided))
    .boolean(c.ended)
    .int64(c.started_at)
    .int64(c.fallback_at)
    .int32(c.fallback_checks)
    .text(c.dial_status)
    .int32(c.dial_duration)
    .text(c.node_id)
    .int64(c.updated_at);
}

/// call_sid, then what changes while a call lives (8). Its identity (tenant,
/// numbers, owner phone, start) is written once, by `insert_call`: an
/// UPDATE that names a column rewrites every index on it even when the value
/// is the same (SQLite), so naming only these leaves the caller index alone.
template <class Binder>
void bind_call_update(Binder& b, const engine::call_record& c) {
  b.text(c.call_sid)
    .boolean(c.ended)
    .int64(c.fallback_at)
    .int32(c.fallback_checks)
    .text(c.dial_status)
    .int32(c.dial_duration)
    .text(c.node_id)
    .int64(c.updated_at);
}

template <class Row>
engine::call_record
read_call(const Row& r, std::string_view backend, std::string_view op) {
  engine::call_record c;
  c.call_sid = r.text(0);
  c.tenant_id = r.text(1);
  c.from = r.text(2);
  c.to = r.text(3);
  c.owner_phone = r.text(4);
  auto phase = r.text(5);
  c.phase = parse_column(engine::parse_call_phase(phase), backend, op, "phase",
                         phase);
  auto decided = r.text(6);
  c.decided = parse_column(engine::parse_decided_by(decided), backend, op,
                           "decided", decided);
  c.ended = r.boolean(7);
  c.started_at = r.int64(8);
  c.fallback_at = r.int64(9);
  c.fallback_checks = r.int32(10);
  c.dial_status = r.text(11);
  c.dial_duration = r.int32(12);
  c.node_id = r.text(13);
  c.updated_at = r.int64(14);
  return c;
}

template <class Binder>
void bind_webhook(Binder& b, const engine::webhook_record& w) {
  b.text(w.tenant_id)
    .text(w.kind)
    .bytes(w.call_sid)
    .bytes(w.path)
    .bytes(w.body)
    .bytes(w.signature)
    .boolean(w.duplicate)
    .int64(w.received_at);
}

template <class Row>
engine::webhook_record read_webhook(const Row& r) {
  engine::webhook_record w;
  w.tenant_id = r.text(0);
  w.kind = r.text(1);
  w.call_sid = r.bytes(2);
  w.path = r.bytes(3);
  w.body = r.bytes(4);
  w.signature = r.bytes(5);
  w.duplicate = r.boolean(6);
  w.received_at = r.int64(7);
  return w;
}

/// tenant_id .. channel in the column order of the messages table, without
/// id (21).
template <class Binder>
void bind_message(Binder& b, const engine::message_record& m) {
  b.text(m.tenant_id)
    .text(m.call_sid)
    .text(m.purpose)
    .text(m.from)
    .text(m.to)
    .text(m.body)
    .text(to_string(m.state))
    .int32(m.attempts)
    .text(m.message_sid)
    .int32(m.error_code)
    .text(m.error_message)
    .text(m.node_id)
    .int64(m.created_at)
    .int64(m.updated_at)
    .text(to_string(m.kind))
    .boolean(m.urgent)
    .int64(m.not_before)
    .text(m.reason)
    .int64(m.sent_at)
    .int64(m.status_at)
    .text(to_string(m.channel));
}

/// id, then the mutable fields: state, attempts, message_sid, error_code,
/// error_message, node_id, not_before, reason, sent_at, status_at,
/// updated_at (12).
template <class Binder>
void bind_message_update(Binder& b, const engine::message_record& m) {
  b.int64(m.id)
    .text(to_string(m.state))
    .int32(m.attempts)
    .text(m.message_sid)
    .int32(m.error_code)
    .text(m.error_message)
    .text(m.node_id)
    .int64(m.not_before)
    .text(m.reason)
    .int64(m.sent_at)
    .int64(m.status_at)
    .int64(m.updated_at);
}

/// id, then the columns of `bind_message`.
template <class Row>
engine::message_record
read_message(const Row& r, std::string_view backend, std::string_view op) {
  engine::message_record m;
  m.id = r.int64(0);
  m.tenant_id = r.text(1);
  m.call_sid = r.text(2);
  m.purpose = r.text(3);
  m.from = r.text(4);
  m.to = r.text(5);
  m.body = r.text(6);
  auto state = r.text(7);
  m.state = parse_column(engine::parse_message_state(state), backend, op,
                         "state", state);
  m.attempts = r.int32(8);
  m.message_sid = r.text(9);
  m.error_code = r.int32(10);
  m.error_message = r.text(11);
  m.node_id = r.text(12);
  m.created_at = r.int64(13);
  m.updated_at = r.int64(14);
  auto kind = r.text(15);
  m.kind = parse_column(engine::parse_send_kind(kind), backend, op, "kind",
                        kind);
  m.urgent = r.boolean(16);
  m.not_before = r.int64(17);
  m.reason = r.text(18);
  m.sent_at = r.int64(19);
  m.status_at = r.int64(20);
  auto channel = r.text(21);
  m.channel = parse_column(engine::parse_message_channel(channel), backend, op,
                           "channel", channel);
  return m;
}

/// message_sid, carrier_status, state, error_code, error_message, at (6).
template <class Binder>
void bind_status_report(Binder& b, const engine::status_report& r) {
  b.text(r.message_sid)
    .text(r.carrier_status)
    .text(to_string(r.state))
    .int32(r.error_code)
    .text(r.error_message)
    .int64(r.at);
}

/// The columns of `bind_status_report`.
template <class Row>
engine::status_report read_status_report(const Row& r, std::string_view backend,
                                         std::string_view op) {
  engine::status_report x;
  x.message_sid = r.text(0);
  x.carrier_status = r.text(1);
  auto state = r.text(2);
  x.state = parse_column(engine::parse_message_state(state), backend, op,
                         "state", state);
  x.error_code = r.int32(3);
  x.error_message = r.text(4);
  x.at = r.int64(5);
  return x;
}

/// tenant_id, phone, opted_out, since, keyword, source, last_event_at (7).
template <class Binder>
void bind_opt_out(Binder& b, const engine::opt_out_state& s) {
  b.text(s.tenant_id)
    .text(s.phone)
    .boolean(s.opted_out)
    .int64(s.since)
    .text(s.keyword)
    .text(to_string(s.source))
    .int64(s.last_event_at);
}

/// The columns of `bind_opt_out`.
template <class Row>
engine::opt_out_state
read_opt_out(const Row& r, std::string_view backend, std::string_view op) {
  engine::opt_out_state s;
  s.tenant_id = r.text(0);
  s.phone = r.text(1);
  s.opted_out = r.boolean(2);
  s.since = r.int64(3);
  s.keyword = r.text(4);
  auto source = r.text(5);
  s.source = parse_column(engine::parse_opt_out_source(source), backend, op,
                          "source", source);
  s.last_event_at = r.int64(6);
  return s;
}

/// The key of a transaction-scoped advisory lock (PostgreSQL) on the pair
/// `a`, `b`: 64-bit FNV-1a of `a`, a NUL byte and `b`. Stable across
/// processes, builds and server versions (unlike a server-side hash of a
/// given release), so every process locks the same key for the same pair.
inline std::int64_t lock_key(std::string_view a, std::string_view b) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&](unsigned char ch) {
    h ^= ch;
    h *= 0x100000001b3ULL;
  };
  for (unsigned char ch : a)
    mix(ch);
  mix(0);
  for (unsigned char ch : b)
    mix(ch);
  std::int64_t key = 0;
  static_assert(sizeof key == sizeof h);
  std::memcpy(&key, &h, sizeof key);
  return key;
}

/// The first half of the lock on a MessageSid (`record_status` and
/// `update_message` take it, so that a report and the message getting its
/// MessageSid never miss each other). The gate's locks have the tenant id
/// there, which never starts with a control character.
inline constexpr std::string_view status_lock_space = "\x01"
                                                      "status";

template <class Binder>
void bind_inbound(Binder& b, const engine::inbound_message& m) {
  b.text(m.message_sid)
    .text(m.tenant_id)
    .text(m.from)
    .text(m.to)
    .text(m.body)
    .int64(m.received_at)
    .text(m.node_id)
    .int64(m.pending);
}

template <class Row>
engine::inbound_message read_inbound(const Row& r) {
  engine::inbound_message m;
  m.message_sid = r.text(0);
  m.tenant_id = r.text(1);
  m.from = r.text(2);
  m.to = r.text(3);
  m.body = r.text(4);
  m.received_at = r.int64(5);
  m.node_id = r.text(6);
  m.pending = static_cast<std::uint8_t>(r.int64(7));
  return m;
}

/// tenant_id .. updated_at of a run, without id (15).
template <class Binder>
void bind_run(Binder& b, const engine::run_record& r) {
  b.text(r.tenant_id)
    .text(r.workflow)
    .text(r.version)
    .text(r.trigger)
    .text(r.call_sid)
    .text(r.contact)
    .text(to_string(r.status))
    .text(r.waiting_for)
    .int64(r.wake_at)
    .bytes(r.state)
    .text(r.node_id)
    .int64(r.seq)
    .bytes(r.error)
    .int64(r.started_at)
    .int64(r.updated_at);
}

/// What a segment changes in a stored run (9), after its id; the run's
/// tenant, workflow, version, trigger, call and start are `insert_run`'s
/// (see `bind_call_update`).
template <class Binder>
void bind_run_update(Binder& b, const engine::run_record& r) {
  b.text(r.contact)
    .text(to_string(r.status))
    .text(r.waiting_for)
    .int64(r.wake_at)
    .bytes(r.state)
    .text(r.node_id)
    .int64(r.seq)
    .bytes(r.error)
    .int64(r.updated_at);
}

/// id, then the columns of `bind_run`.
template <class Row>
engine::run_record
read_run(const Row& r, std::string_view backend, std::string_view op) {
  engine::run_record x;
  x.id = r.int64(0);
  x.tenant_id = r.text(1);
  x.workflow = r.text(2);
  x.version = r.text(3);
  x.trigger = r.text(4);
  x.call_sid = r.text(5);
  x.contact = r.text(6);
  auto status = r.text(7);
  x.status = parse_column(engine::parse_run_status(status), backend, op,
                          "status", status);
  x.waiting_for = r.text(8);
  x.wake_at = r.int64(9);
  x.state = r.bytes(10);
  x.node_id = r.text(11);
  x.seq = r.int64(12);
  x.error = r.bytes(13);
  x.started_at = r.int64(14);
  x.updated_at = r.int64(15);
  return x;
}

template <class Binder>
void bind_run_step(Binder& b, const engine::run_step_record& s) {
  b.int64(s.run_id)
    .int32(s.seq)
    .text(s.step_id)
    .text(s.type)
    .text(s.outcome)
    .bytes(s.detail)
    .int64(s.at)
    .int64(s.duration_us);
}

template <class Row>
engine::run_step_record read_run_step(const Row& r) {
  engine::run_step_record s;
  s.run_id = r.int64(0);
  s.seq = r.int32(1);
  s.step_id = r.text(2);
  s.type = r.text(3);
  s.outcome = r.text(4);
  s.detail = r.bytes(5);
  s.at = r.int64(6);
  s.duration_us = r.int64(7);
  return s;
}

template <class Binder>
void bind_workflow_version(Binder& b,
                           const engine::workflow_version_record& v) {
  b.text(v.tenant_id)
    .text(v.name)
    .text(v.version)
    .text(v.file)
    .bytes(v.source)
    .int64(v.loaded_at);
}

template <class Row>
engine::workflow_version_record read_workflow_version(const Row& r) {
  engine::workflow_version_record v;
  v.tenant_id = r.text(0);
  v.name = r.text(1);
  v.version = r.text(2);
  v.file = r.text(3);
  v.source = r.bytes(4);
  v.loaded_at = r.int64(5);
  return v;
}

/// What a transition changes in a stored conversation (15), after its id;
/// the tenant, the customer and the ref are fixed at creation (see
/// `bind_call_update`).
template <class Binder>
void bind_conversation_update(Binder& b,
                              const engine::conversation_record& c) {
  b.text(c.business_number)
    .text(to_string(c.state))
    .int32(c.window_seq)
    .int64(c.window_deadline)
    .text(to_string(c.outcome))
    .int64(c.turn_at)
    .int64(c.close_at)
    .int32(c.ai_replies)
    .int64(c.opened_at)
    .int64(c.last_customer_at)
    .int64(c.last_owner_at)
    .int64(c.last_ai_at)
    .text(c.node_id)
    .int64(c.seq)
    .int64(c.updated_at);
}

/// id, then tenant_id .. updated_at in the column order of the table.
template <class Row>
engine::conversation_record
read_conversation(const Row& r, std::string_view backend, std::string_view op) {
  engine::conversation_record c;
  c.id = r.int64(0);
  c.tenant_id = r.text(1);
  c.customer = r.text(2);
  c.business_number = r.text(3);
  c.ref = r.int32(4);
  auto state = r.text(5);
  c.state = parse_column(engine::parse_conversation_state(state), backend, op,
                         "state", state);
  c.window_seq = r.int32(6);
  c.window_deadline = r.int64(7);
  auto outcome = r.text(8);
  c.outcome = parse_column(engine::parse_window_outcome(outcome), backend, op,
                           "outcome", outcome);
  c.turn_at = r.int64(9);
  c.close_at = r.int64(10);
  c.ai_replies = r.int32(11);
  c.opened_at = r.int64(12);
  c.last_customer_at = r.int64(13);
  c.last_owner_at = r.int64(14);
  c.last_ai_at = r.int64(15);
  c.node_id = r.text(16);
  c.seq = r.int64(17);
  c.updated_at = r.int64(18);
  return c;
}

/// conversation_id, tenant_id, author, body (bytes), message_id,
/// message_sid, at (7).
template <class Binder>
void bind_conversation_message(Binder& b,
                               const engine::conversation_message& m) {
  b.int64(m.conversation_id)
    .text(m.tenant_id)
    .text(m.author)
    .bytes(m.body)
    .int64(m.message_id)
    .text(m.message_sid)
    .int64(m.at);
}

/// id, then the columns of `bind_conversation_message`.
template <class Row>
engine::conversation_message read_conversation_message(const Row& r) {
  engine::conversation_message m;
  m.id = r.int64(0);
  m.conversation_id = r.int64(1);
  m.tenant_id = r.text(2);
  m.author = r.text(3);
  m.body = r.bytes(4);
  m.message_id = r.int64(5);
  m.message_sid = r.text(6);
  m.at = r.int64(7);
  return m;
}

/// conversation_id, tenant_id, kind, detail (bytes), window_seq, provider,
/// latency_ms, prompt_tokens, completion_tokens, cost_usd, at (11).
template <class Binder>
void bind_conversation_event(Binder& b, const engine::conversation_event& e) {
  b.int64(e.conversation_id)
    .text(e.tenant_id)
    .text(e.kind)
    .bytes(e.detail)
    .int32(e.window_seq)
    .text(e.provider)
    .int64(e.latency_ms)
    .int32(e.prompt_tokens)
    .int32(e.completion_tokens)
    .real(e.cost_usd)
    .int64(e.at);
}

/// id, then the columns of `bind_conversation_event`.
template <class Row>
engine::conversation_event read_conversation_event(const Row& r) {
  engine::conversation_event e;
  e.id = r.int64(0);
  e.conversation_id = r.int64(1);
  e.tenant_id = r.text(2);
  e.kind = r.text(3);
  e.detail = r.bytes(4);
  e.window_seq = r.int32(5);
  e.provider = r.text(6);
  e.latency_ms = r.int64(7);
  e.prompt_tokens = r.int32(8);
  e.completion_tokens = r.int32(9);
  e.cost_usd = r.real(10);
  e.at = r.int64(11);
  return e;
}

// -- delivery reports and the gate (shared with memory_store) ---------------

/// Applies delivery report `r` to `m` if it moves it forward
/// (`engine::advances`): state, status_at and a non-zero error. Returns
/// whether it did.
inline bool apply_report(engine::message_record& m,
                         const engine::status_report& r) {
  if (!engine::advances(m.state, r.state))
    return false;
  m.state = r.state;
  m.status_at = r.at;
  if (r.error_code != 0) {
    m.error_code = r.error_code;
    m.error_message = r.error_message;
  }
  return true;
}

/// Applies the reports of `m`'s MessageSid, oldest first, each that moves it
/// forward from where the earlier ones left it (so the newest report that
/// still advances wins, and nothing moves back). Returns whether any did.
inline bool replay_reports(engine::message_record& m,
                           const std::vector<engine::status_report>& reports) {
  bool applied = false;
  for (const auto& r : reports)
    applied = apply_report(m, r) || applied;
  return applied;
}

/// `now - window`, saturated (a window never overflows the subtraction).
inline engine::epoch_ms window_start(engine::epoch_ms now,
                                     std::chrono::milliseconds window) {
  constexpr auto lowest = std::numeric_limits<engine::epoch_ms>::min();
  auto w = window.count();
  if (w > 0 && now < lowest + w)
    return lowest;
  if (w < 0 && now > std::numeric_limits<engine::epoch_ms>::max() + w)
    return std::numeric_limits<engine::epoch_ms>::max();
  return now - w;
}

/// The automated cap counts over the last hour, whatever the settings.
inline constexpr std::chrono::milliseconds automated_window{3'600'000};

/// How often a conditional write of a delivery state is retried after
/// another writer changed the message in between.
inline constexpr int status_write_attempts = 8;

/// The precondition of `update_run`: the caller bumped `seq` (otherwise two
/// writers expecting the same seq could both win). memory_store checks it
/// too, so that every store reports it alike.
inline void check_run_update(std::string_view backend,
                             const engine::run_record& r,
                             std::int64_t expected_seq) {
  if (r.seq <= expected_seq)
    fail(backend, "update_run",
         "seq " + std::to_string(r.seq) + " must be greater than expected_seq "
           + std::to_string(expected_seq) + " (run id " + std::to_string(r.id)
           + ")");
}

/// The precondition of `update_conversation`, as `check_run_update`'s.
inline void check_conversation_update(std::string_view backend,
                                      const engine::conversation_record& c,
                                      std::int64_t expected_seq) {
  if (c.seq <= expected_seq)
    fail(backend, "update_conversation",
         "seq " + std::to_string(c.seq) + " must be greater than expected_seq "
           + std::to_string(expected_seq) + " (conversation id "
           + std::to_string(c.id) + ")");
}

/// The first half of the lock a tenant's conversation creation takes (the
/// next `ref` is computed under it). Tenant ids never start with a control
/// character, so it never meets the gate's locks.
inline constexpr std::string_view conversation_lock_space = "\x01"
                                                            "conversation";

// -- the operations -----------------------------------------------------------
// Atomicity of multi-statement operations (upsert_tenant, insert_run_steps,
// tag_contact) is the caller's.

namespace sql_ops {

template <class Driver>
void upsert_tenant(Driver& d, const engine::tenant& t, engine::epoch_ms now) {
  d.execute(sql_id::upsert_tenant, [&](auto& b) {
    b.text(t.id).text(t.name).text(t.owner_phone).text(t.timezone).int64(now);
  });
  d.execute(sql_id::delete_tenant_numbers, [&](auto& b) { b.text(t.id); });
  for (const auto& n : t.numbers)
    d.execute(sql_id::upsert_tenant_number, [&](auto& b) {
      b.text(n.number).text(t.id).text(to_string(n.kind)).real(n.mps);
    });
}

template <class Driver>
std::optional<engine::tenant> find_tenant(Driver& d, std::string_view id) {
  std::optional<engine::tenant> t;
  d.query(
    sql_id::find_tenant, [&](auto& b) { b.text(id); },
    [&](const auto& r) {
      t.emplace();
      t->id = r.text(0);
      t->name = r.text(1);
      t->owner_phone = r.text(2);
      t->timezone = r.text(3);
    });
  if (!t)
    return t;
  d.query(
    sql_id::find_tenant_numbers, [&](auto& b) { b.text(id); },
    [&](const auto& r) {
      engine::business_number n;
      n.number = r.text(0);
      auto kind = r.text(1);
      n.kind = parse_column(engine::parse_number_kind(kind), d.backend(),
                            "find_tenant", "kind", kind);
      n.mps = r.real(2);
      t->numbers.push_back(std::move(n));
    });
  return t;
}

template <class Driver>
bool insert_call(Driver& d, const engine::call_record& c) {
  return d.execute(sql_id::insert_call, [&](auto& b) { bind_call(b, c); }) == 1;
}

template <class Driver>
void update_call(Driver& d, const engine::call_record& c) {
  d.execute_later(
    sql_id::update_call, [&](auto& b) { bind_call_update(b, c); },
    [backend = d.backend(), sid = c.call_sid](std::int64_t changed) {
      if (changed == 0)
        fail(backend, "update_call", "unknown CallSid '" + sid + "'");
    });
}

template <class Driver>
bool call_exists(Driver& d, std::string_view call_sid) {
  bool found = false;
  d.query(
    sql_id::call_exists, [&](auto& b) { b.text(call_sid); },
    [&](const auto&) { found = true; });
  return found;
}

template <class Driver>
bool decide_outcome(Driver& d, const engine::call_record& c) {
  if (c.phase == engine::call_phase::ringing)
    fail(d.backend(), "decide_outcome",
         "phase must be answered or missed (CallSid '" + c.call_sid + "')");
  // One conditional update: under concurrency exactly one decider matches
  // `phase = 'ringing'`; the others see the decided row and match nothing.
  // The expected phase is a parameter, not a literal: see the statement.
  if (d.execute(sql_id::decide_outcome,
                [&](auto& b) {
                  bind_call_update(b, c);
                  b.text(to_string(c.phase)).text(to_string(c.decided));
                  b.text(to_string(engine::call_phase::ringing));
                })
      == 1)
    return true;
  if (!call_exists(d, c.call_sid))
    fail(d.backend(), "decide_outcome", "unknown CallSid '" + c.call_sid + "'");
  return false;
}

template <class Driver>
std::optional<engine::call_record>
find_call(Driver& d, std::string_view call_sid) {
  std::optional<engine::call_record> c;
  d.query(
    sql_id::find_call, [&](auto& b) { b.text(call_sid); },
    [&](const auto& r) { c = read_call(r, d.backend(), "find_call"); });
  return c;
}

template <class Driver>
std::vector<engine::call_record>
unfinished_calls(Driver& d, std::string_view node_id,
                 engine::epoch_ms orphaned_before) {
  std::vector<engine::call_record> xs;
  d.query(
    sql_id::unfinished_calls,
    [&](auto& b) { b.text(node_id).int64(orphaned_before); },
    [&](const auto& r) {
      xs.push_back(read_call(r, d.backend(), "unfinished_calls"));
    });
  return xs;
}

template <class Driver>
void insert_webhook(Driver& d, const engine::webhook_record& w) {
  d.execute(sql_id::insert_webhook, [&](auto& b) { bind_webhook(b, w); });
}

template <class Driver>
std::vector<engine::webhook_record>
webhooks_for(Driver& d, std::string_view call_sid) {
  std::vector<engine::webhook_record> xs;
  d.query(
    sql_id::webhooks_for, [&](auto& b) { b.bytes(call_sid); },
    [&](const auto& r) { xs.push_back(read_webhook(r)); });
  return xs;
}

/// Runs insert statement `id` and returns the new row's id: PostgreSQL's
/// RETURNING, SQLite's last insert rowid (a RETURNING clause makes SQLite
/// build a temporary table for every execution).
template <class Driver, class Bind>
std::int64_t insert_row(Driver& d, sql_id id, Bind&& bind, std::string_view op) {
  std::int64_t row_id = 0;
  if constexpr (Driver::dialect == sql_dialect::sqlite) {
    if (d.execute(id, bind) == 1)
      row_id = d.last_insert_id();
  } else {
    d.query(id, bind, [&](const auto& r) { row_id = r.int64(0); });
  }
  if (row_id == 0)
    fail(d.backend(), op, "no id returned");
  return row_id;
}

/// `insert_row`, where the driver can take the id ahead (PostgreSQL in a
/// transaction: `Driver::insert_later` with `with_id`, into `table`).
template <class Driver, class Bind>
std::int64_t insert_row_ahead(Driver& d, sql_id id, sql_id with_id,
                              const char* table, Bind&& bind,
                              std::string_view op) {
  if constexpr (Driver::dialect == sql_dialect::postgresql) {
    if (auto row_id = d.insert_later(with_id, table, bind))
      return *row_id;
  }
  return insert_row(d, id, bind, op);
}

template <class Driver>
std::int64_t insert_message(Driver& d, const engine::message_record& m) {
  return insert_row_ahead(
    d, sql_id::insert_message, sql_id::insert_message_with_id, "messages",
    [&](auto& b) { bind_message(b, m); }, "insert_message");
}

template <class Driver>
std::optional<engine::message_record> find_message(Driver& d, std::int64_t id) {
  std::optional<engine::message_record> m;
  d.query(
    sql_id::find_message, [&](auto& b) { b.int64(id); },
    [&](const auto& r) { m = read_message(r, d.backend(), "find_message"); });
  return m;
}

template <class Driver>
std::vector<engine::message_record> messages_where(Driver& d, sql_id id,
                                                   std::string_view key,
                                                   std::string_view op) {
  std::vector<engine::message_record> xs;
  d.query(
    id, [&](auto& b) { b.text(key); },
    [&](const auto& r) { xs.push_back(read_message(r, d.backend(), op)); });
  return xs;
}

/// `limit` as a SQL LIMIT (which is signed; negative means none in SQLite).
inline std::int64_t sql_limit(std::size_t limit) {
  constexpr auto max
    = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(std::min(limit, max));
}

/// The column of PostgreSQL's claim that follows `read_message`'s: whether
/// the recipient is opted out.
constexpr int claim_opted_out_column = 22;

/// PostgreSQL: `opted_out`, if given, is set to the opt-out ledger's word on
/// the claimed message's recipient, which the claim reads (SQLite's store
/// reads the ledger with a statement of its own: see
/// `store::claim_for_sending`).
template <class Driver>
std::optional<engine::message_record>
claim_message(Driver& d, std::int64_t id, std::string_view node_id,
              engine::epoch_ms now, bool* opted_out = nullptr) {
  // One conditional update: of claimers, exactly one matches `queued` (a
  // parameter, not a literal: see the statement).
  auto bind = [&](auto& b) {
    b.int64(id).text(node_id).int64(now).text(
      to_string(engine::message_state::queued));
  };
  if constexpr (Driver::dialect == sql_dialect::sqlite) {
    (void)opted_out;
    // The claimer reads the row it claimed in its transaction (see
    // insert_row on RETURNING).
    if (d.execute(sql_id::claim_message, bind) == 0)
      return std::nullopt;
    return find_message(d, id);
  } else {
    std::optional<engine::message_record> m;
    d.query(sql_id::claim_message, bind, [&](const auto& r) {
      m = read_message(r, d.backend(), "claim_message");
      if (opted_out)
        *opted_out = r.int64(claim_opted_out_column) > 0;
    });
    return m;
  }
}

template <class Driver>
std::vector<std::int64_t> release_held(Driver& d, std::string_view node_id,
                                       engine::epoch_ms now,
                                       std::size_t limit) {
  std::vector<std::int64_t> ids;
  if (limit == 0)
    return ids;
  d.query(
    sql_id::release_held,
    [&](auto& b) { b.text(node_id).int64(now).int64(sql_limit(limit)); },
    [&](const auto& r) { ids.push_back(r.int64(0)); });
  // RETURNING has no order.
  std::sort(ids.begin(), ids.end());
  return ids;
}

template <class Driver>
std::optional<engine::message_record>
find_message_by_sid(Driver& d, std::string_view message_sid,
                    std::string_view op = "find_message_by_sid") {
  std::optional<engine::message_record> m;
  d.query(
    sql_id::find_message_by_sid, [&](auto& b) { b.text(message_sid); },
    [&](const auto& r) { m = read_message(r, d.backend(), op); });
  return m;
}

template <class Driver>
std::vector<engine::status_report>
status_reports(Driver& d, std::string_view message_sid,
               std::string_view op = "status_reports") {
  std::vector<engine::status_report> xs;
  d.query(
    sql_id::status_reports, [&](auto& b) { b.text(message_sid); },
    [&](const auto& r) {
      xs.push_back(read_status_report(r, d.backend(), op));
    });
  return xs;
}

/// Writes the delivery fields of `next` if the stored message still has the
/// state and MessageSid of `seen` (so a concurrent writer is never
/// overwritten with an older view). Returns whether it wrote.
template <class Driver>
bool write_status(Driver& d, const engine::message_record& seen,
                  const engine::message_record& next) {
  return d.execute(sql_id::apply_status, [&](auto& b) {
    b.int64(seen.id)
      .text(to_string(next.state))
      .int64(next.status_at)
      .int32(next.error_code)
      .text(next.error_message)
      .text(to_string(seen.state))
      .text(seen.message_sid);
  }) == 1;
}

/// Applies the recorded reports of `m`'s MessageSid to the stored message
/// `m.id` (forward only; re-read and retried if another writer got there
/// in between).
template <class Driver>
void apply_recorded_reports(Driver& d, const engine::message_record& m,
                            std::string_view op) {
  auto reports = status_reports(d, m.message_sid, op);
  if (reports.empty())
    return;
  for (int attempt = 0; attempt < status_write_attempts; ++attempt) {
    auto seen = find_message(d, m.id);
    if (!seen || seen->message_sid != m.message_sid)
      return; // changed meanwhile: whoever set the MessageSid applies them
    auto next = *seen;
    if (!replay_reports(next, reports) || write_status(d, *seen, next))
      return;
  }
  fail(d.backend(), op,
       "message id " + std::to_string(m.id)
         + " kept changing; its delivery reports were not applied");
}

template <class Driver>
void update_message(Driver& d, const engine::message_record& m) {
  // Serialized with record_status on the same MessageSid: one of the two
  // sees the other's write (see record_status).
  if (!m.message_sid.empty())
    d.serialize(lock_key(status_lock_space, m.message_sid));
  auto bind = [&](auto& b) { bind_message_update(b, m); };
  bool updated = false;
  bool reports = !m.message_sid.empty();
  if constexpr (Driver::dialect == sql_dialect::sqlite) {
    updated = d.execute(sql_id::update_message, bind) != 0;
  } else {
    // The update counts the reports waiting for its MessageSid (in the same
    // round trip, after the lock: its snapshot sees every report recorded
    // before).
    d.query(sql_id::update_message, bind, [&](const auto& r) {
      updated = true;
      reports = r.int64(0) > 0;
    });
  }
  if (!updated)
    fail(d.backend(), "update_message",
         "unknown message id " + std::to_string(m.id));
  if (reports)
    apply_recorded_reports(d, m, "update_message");
}

template <class Driver>
engine::status_report_result
record_status(Driver& d, const engine::status_report& r) {
  // The lock on the MessageSid orders this with an update_message giving a
  // message that MessageSid: either the message is found below, or that
  // update_message finds the report. (Serial writers need no lock.)
  d.serialize(lock_key(status_lock_space, r.message_sid));
  d.execute(sql_id::insert_status_report,
            [&](auto& b) { bind_status_report(b, r); });
  engine::status_report_result result;
  auto seen = find_message_by_sid(d, r.message_sid, "record_status");
  for (int attempt = 0; seen && attempt < status_write_attempts; ++attempt) {
    result.known = true;
    auto next = *seen;
    if (!apply_report(next, r)) {
      result.message = std::move(seen);
      return result;
    }
    if (write_status(d, *seen, next)) {
      result.applied = true;
      result.message = std::move(next);
      return result;
    }
    // Another writer changed it in between: judge the report again.
    seen = find_message(d, seen->id);
    if (seen && seen->message_sid != r.message_sid)
      seen = find_message_by_sid(d, r.message_sid, "record_status");
  }
  if (seen)
    fail(d.backend(), "record_status",
         "message id " + std::to_string(seen->id)
           + " kept changing; the report was not applied");
  result.known = false; // the message lost that MessageSid meanwhile
  return result;
}

template <class Driver>
engine::gate_facts gate_facts_for(Driver& d, const engine::gate_query& q) {
  // Until the end of the transaction, other gates asking about this tenant
  // and phone wait here, and then see what this one wrote.
  d.serialize(lock_key(q.tenant_id, q.phone));
  engine::gate_facts f;
  d.query(
    sql_id::gate_facts,
    [&](auto& b) {
      b.text(q.tenant_id)
        .text(q.phone)
        .int64(window_start(q.now, q.repeat_caller_window))
        .int64(window_start(q.now, automated_window))
        .int64(window_start(q.now, q.loop_window))
        .int64(window_start(q.now, q.caller_rate_window))
        .text(q.call_sid)
        .int64(std::numeric_limits<std::int64_t>::max());
    },
    [&](const auto& r) {
      auto count = [&](int i) {
        return static_cast<std::int32_t>(std::min<std::int64_t>(
          r.int64(i), std::numeric_limits<std::int32_t>::max()));
      };
      f.opted_out = r.int64(0) > 0;
      if (!r.null(1))
        f.last_text_back_at = r.int64(1);
      f.automated_last_hour = count(2);
      f.exchanged_in_loop_window = count(3);
      f.calls_in_rate_window = count(4);
    });
  return f;
}

template <class Driver>
std::optional<engine::opt_out_state>
find_opt_out(Driver& d, std::string_view tenant_id, std::string_view phone) {
  std::optional<engine::opt_out_state> s;
  d.query(
    sql_id::find_opt_out, [&](auto& b) { b.text(tenant_id).text(phone); },
    [&](const auto& r) { s = read_opt_out(r, d.backend(), "find_opt_out"); });
  return s;
}

template <class Driver>
void save_opt_out(Driver& d, const engine::opt_out_state& s) {
  d.execute(sql_id::save_opt_out, [&](auto& b) { bind_opt_out(b, s); });
}

template <class Driver>
std::vector<engine::opt_out_state>
opted_out(Driver& d, std::string_view tenant_id) {
  std::vector<engine::opt_out_state> xs;
  d.query(
    sql_id::opted_out, [&](auto& b) { b.text(tenant_id); },
    [&](const auto& r) {
      xs.push_back(read_opt_out(r, d.backend(), "opted_out"));
    });
  // Bytewise, whatever the database's collation (as contact_tags).
  std::sort(xs.begin(), xs.end(),
            [](const auto& x, const auto& y) { return x.phone < y.phone; });
  return xs;
}

template <class Driver>
bool insert_inbound(Driver& d, const engine::inbound_message& m) {
  return d.execute(sql_id::insert_inbound, [&](auto& b) { bind_inbound(b, m); })
         == 1;
}

template <class Driver>
std::optional<engine::inbound_message>
find_inbound(Driver& d, std::string_view sid) {
  std::optional<engine::inbound_message> m;
  d.query(
    sql_id::find_inbound, [&](auto& b) { b.text(sid); },
    [&](const auto& r) { m = read_inbound(r); });
  return m;
}

template <class Driver>
engine::inbound_claim consume_inbound(Driver& d, std::string_view sid,
                                      engine::inbound_consumer consumer) {
  auto bit = static_cast<std::int64_t>(consumer);
  if (d.execute(sql_id::consume_inbound,
                [&](auto& b) { b.text(sid).int64(bit); })
      == 1)
    return engine::inbound_claim::claimed;
  return find_inbound(d, sid) ? engine::inbound_claim::done_before
                              : engine::inbound_claim::unknown;
}

template <class Driver>
void restore_inbound(Driver& d, std::string_view sid,
                     engine::inbound_consumer consumer) {
  auto bit = static_cast<std::int64_t>(consumer);
  d.execute(sql_id::restore_inbound, [&](auto& b) { b.text(sid).int64(bit); });
}

template <class Driver>
std::vector<engine::inbound_message>
pending_inbound(Driver& d, std::string_view tenant_id, std::string_view node_id,
                engine::epoch_ms since, engine::epoch_ms orphaned_before,
                std::size_t limit) {
  std::vector<engine::inbound_message> xs;
  d.query(
    sql_id::pending_inbound,
    [&](auto& b) {
      b.text(tenant_id)
        .text(node_id)
        .int64(since)
        .int64(orphaned_before)
        .int64(sql_limit(limit));
    },
    [&](const auto& r) { xs.push_back(read_inbound(r)); });
  return xs;
}

template <class Driver>
void touch_contact(Driver& d, std::string_view tenant_id,
                   std::string_view phone, engine::epoch_ms at) {
  d.execute(sql_id::touch_contact,
            [&](auto& b) { b.text(tenant_id).text(phone).int64(at); });
}

template <class Driver>
std::optional<contact_record>
find_contact(Driver& d, std::string_view tenant_id, std::string_view phone) {
  std::optional<contact_record> c;
  d.query(
    sql_id::find_contact, [&](auto& b) { b.text(tenant_id).text(phone); },
    [&](const auto& r) {
      c = contact_record{r.text(0), r.text(1), r.int64(2), r.int64(3)};
    });
  return c;
}

template <class Driver>
std::int64_t insert_run(Driver& d, const engine::run_record& r) {
  return insert_row_ahead(
    d, sql_id::insert_run, sql_id::insert_run_with_id, "runs",
    [&](auto& b) { bind_run(b, r); }, "insert_run");
}

template <class Driver>
bool run_exists(Driver& d, std::int64_t id) {
  bool found = false;
  d.query(
    sql_id::run_exists, [&](auto& b) { b.int64(id); },
    [&](const auto&) { found = true; });
  return found;
}

template <class Driver>
bool update_run(Driver& d, const engine::run_record& r,
                std::int64_t expected_seq) {
  check_run_update(d.backend(), r, expected_seq);
  // One conditional update, like decide_outcome: of writers that all expect
  // the same seq, exactly one matches; the others see the bumped row.
  if (d.execute(sql_id::update_run,
                [&](auto& b) {
                  b.int64(r.id);
                  bind_run_update(b, r);
                  b.int64(expected_seq);
                })
      == 1)
    return true;
  if (!run_exists(d, r.id))
    fail(d.backend(), "update_run", "unknown run id " + std::to_string(r.id));
  return false;
}

template <class Driver>
std::optional<engine::run_record> find_run(Driver& d, std::int64_t id) {
  std::optional<engine::run_record> r;
  d.query(
    sql_id::find_run, [&](auto& b) { b.int64(id); },
    [&](const auto& row) { r = read_run(row, d.backend(), "find_run"); });
  return r;
}

/// Runs of a statement (`op` names the operation in errors).
template <class Driver, class Bind>
std::vector<engine::run_record>
runs_where(Driver& d, sql_id id, Bind&& bind, std::string_view op) {
  std::vector<engine::run_record> xs;
  d.query(id, bind, [&](const auto& row) {
    xs.push_back(read_run(row, d.backend(), op));
  });
  return xs;
}

template <class Driver>
std::vector<engine::run_record>
unfinished_runs(Driver& d, std::string_view node_id,
                engine::epoch_ms orphaned_before, std::size_t limit) {
  return runs_where(
    d, sql_id::unfinished_runs,
    [&](auto& b) {
      b.text(node_id).int64(orphaned_before).int64(sql_limit(limit));
    },
    "unfinished_runs");
}

template <class Driver>
std::vector<engine::run_record>
runs_waiting_for_reply(Driver& d, std::string_view tenant_id,
                       std::string_view contact) {
  return runs_where(
    d, sql_id::runs_waiting_for_reply,
    [&](auto& b) { b.text(tenant_id).text(contact); },
    "runs_waiting_for_reply");
}

template <class Driver>
std::vector<engine::run_record>
runs_for_call(Driver& d, std::string_view call_sid) {
  return runs_where(
    d, sql_id::runs_for_call, [&](auto& b) { b.text(call_sid); },
    "runs_for_call");
}

template <class Driver>
void insert_run_steps(Driver& d,
                      const std::vector<engine::run_step_record>& steps) {
  for (const auto& s : steps)
    d.execute(sql_id::insert_run_step, [&](auto& b) { bind_run_step(b, s); });
}

template <class Driver>
std::vector<engine::run_step_record> run_steps(Driver& d, std::int64_t run_id) {
  std::vector<engine::run_step_record> xs;
  d.query(
    sql_id::run_steps, [&](auto& b) { b.int64(run_id); },
    [&](const auto& row) { xs.push_back(read_run_step(row)); });
  return xs;
}

template <class Driver>
void save_workflow_version(Driver& d,
                           const engine::workflow_version_record& v) {
  d.execute(sql_id::save_workflow_version,
            [&](auto& b) { bind_workflow_version(b, v); });
}

template <class Driver>
std::optional<engine::workflow_version_record>
find_workflow_version(Driver& d, std::string_view tenant_id,
                      std::string_view name, std::string_view version) {
  std::optional<engine::workflow_version_record> v;
  d.query(
    sql_id::find_workflow_version,
    [&](auto& b) { b.text(tenant_id).text(name).text(version); },
    [&](const auto& row) { v = read_workflow_version(row); });
  return v;
}

template <class Driver>
void tag_contact(Driver& d, std::string_view tenant_id, std::string_view phone,
                 std::string_view tag, engine::epoch_ms at) {
  d.execute(sql_id::add_contact,
            [&](auto& b) { b.text(tenant_id).text(phone).int64(at); });
  d.execute(sql_id::tag_contact, [&](auto& b) {
    b.text(tenant_id).text(phone).text(tag).int64(at);
  });
}

template <class Driver>
std::vector<std::string>
contact_tags(Driver& d, std::string_view tenant_id, std::string_view phone) {
  std::vector<std::string> tags;
  d.query(
    sql_id::contact_tags, [&](auto& b) { b.text(tenant_id).text(phone); },
    [&](const auto& row) { tags.push_back(row.text(0)); });
  // Sorted here, bytewise: a PostgreSQL ORDER BY would follow the database's
  // collation, which differs from server to server.
  std::sort(tags.begin(), tags.end());
  return tags;
}

// -- conversations ------------------------------------------------------------

template <class Driver>
std::optional<engine::conversation_record>
find_conversation(Driver& d, std::int64_t id,
                  std::string_view op = "find_conversation") {
  std::optional<engine::conversation_record> c;
  d.query(
    sql_id::find_conversation, [&](auto& b) { b.int64(id); },
    [&](const auto& r) { c = read_conversation(r, d.backend(), op); });
  return c;
}

template <class Driver>
std::optional<engine::conversation_record>
find_conversation_by_customer(Driver& d, std::string_view tenant_id,
                              std::string_view customer, std::string_view op) {
  std::optional<engine::conversation_record> c;
  d.query(
    sql_id::find_conversation_by_customer,
    [&](auto& b) { b.text(tenant_id).text(customer); },
    [&](const auto& r) { c = read_conversation(r, d.backend(), op); });
  return c;
}

template <class Driver>
std::optional<engine::conversation_record>
find_conversation_by_ref(Driver& d, std::string_view tenant_id,
                         std::int32_t ref) {
  std::optional<engine::conversation_record> c;
  d.query(
    sql_id::find_conversation_by_ref,
    [&](auto& b) { b.text(tenant_id).int32(ref); },
    [&](const auto& r) {
      c = read_conversation(r, d.backend(), "find_conversation_by_ref");
    });
  return c;
}

/// The slow path of `find_or_create_conversation`, to run in a transaction
/// (the lock lasts until its end): creates the row unless it exists, and
/// reads it. The caller looked it up without a lock first.
template <class Driver>
engine::conversation_record
create_conversation(Driver& d, std::string_view tenant_id,
                    std::string_view customer, std::string_view business_number,
                    engine::epoch_ms now) {
  constexpr std::string_view op = "find_or_create_conversation";
  // Creators of one tenant's conversations take turns (PostgreSQL: an
  // advisory lock until the end of the transaction; SQLite: its one
  // writer), so that each computes the next ref after the previous one
  // committed. The unique (tenant_id, ref) index is the backstop; the
  // conflict on (tenant_id, customer) leaves a row another creator made.
  d.serialize(lock_key(conversation_lock_space, tenant_id));
  auto bind = [&](auto& b) {
    b.text(tenant_id).text(customer).text(business_number).int64(now);
  };
  std::optional<engine::conversation_record> c;
  if constexpr (Driver::dialect == sql_dialect::sqlite) {
    d.execute(sql_id::create_conversation, bind);
  } else {
    // The insert returns the row it made: the read below is for a customer
    // who had one.
    d.query(sql_id::create_conversation, bind, [&](const auto& r) {
      c = read_conversation(r, d.backend(), op);
    });
  }
  if (!c)
    c = find_conversation_by_customer(d, tenant_id, customer, op);
  if (!c)
    fail(d.backend(), op, "the conversation was not found after its insert");
  return std::move(*c);
}

template <class Driver>
bool conversation_exists(Driver& d, std::int64_t id) {
  bool found = false;
  d.query(
    sql_id::conversation_exists, [&](auto& b) { b.int64(id); },
    [&](const auto&) { found = true; });
  return found;
}

template <class Driver>
bool update_conversation(Driver& d, const engine::conversation_record& c,
                         std::int64_t expected_seq) {
  check_conversation_update(d.backend(), c, expected_seq);
  // One conditional update, like update_run: of writers that all expect the
  // same seq, exactly one matches; the others see the bumped row.
  if (d.execute(sql_id::update_conversation,
                [&](auto& b) {
                  b.int64(c.id);
                  bind_conversation_update(b, c);
                  b.int64(expected_seq);
                })
      == 1)
    return true;
  if (!conversation_exists(d, c.id))
    fail(d.backend(), "update_conversation",
         "unknown conversation id " + std::to_string(c.id));
  return false;
}

template <class Driver>
std::vector<engine::conversation_record>
due_conversations(Driver& d, std::string_view tenant_id, engine::epoch_ms now,
                  std::size_t limit) {
  std::vector<engine::conversation_record> xs;
  if (limit == 0)
    return xs;
  d.query(
    sql_id::due_conversations,
    [&](auto& b) { b.int64(now).int64(sql_limit(limit)).text(tenant_id); },
    [&](const auto& r) {
      xs.push_back(read_conversation(r, d.backend(), "due_conversations"));
    });
  return xs;
}

template <class Driver>
void insert_conversation_messages(
  Driver& d, const std::vector<engine::conversation_message>& ms) {
  for (const auto& m : ms)
    d.execute(sql_id::insert_conversation_message,
              [&](auto& b) { bind_conversation_message(b, m); });
}

template <class Driver>
std::vector<engine::conversation_message>
conversation_messages(Driver& d, std::int64_t conversation_id,
                      std::size_t limit) {
  std::vector<engine::conversation_message> xs;
  if (limit == 0)
    return xs;
  d.query(
    sql_id::conversation_messages,
    [&](auto& b) { b.int64(conversation_id).int64(sql_limit(limit)); },
    [&](const auto& r) { xs.push_back(read_conversation_message(r)); });
  return xs;
}

template <class Driver>
void insert_conversation_event(Driver& d, const engine::conversation_event& e) {
  d.execute(sql_id::insert_conversation_event,
            [&](auto& b) { bind_conversation_event(b, e); });
}

template <class Driver>
std::vector<engine::conversation_event>
conversation_events(Driver& d, std::int64_t conversation_id) {
  std::vector<engine::conversation_event> xs;
  d.query(
    sql_id::conversation_events, [&](auto& b) { b.int64(conversation_id); },
    [&](const auto& r) { xs.push_back(read_conversation_event(r)); });
  return xs;
}

template <class Driver>
void set_owner_focus(Driver& d, std::string_view tenant_id,
                     std::int64_t conversation_id, engine::epoch_ms at) {
  d.execute(sql_id::set_owner_focus, [&](auto& b) {
    b.text(tenant_id).int64(conversation_id).int64(at);
  });
}

template <class Driver>
std::optional<std::int64_t> owner_focus(Driver& d, std::string_view tenant_id) {
  std::optional<std::int64_t> id;
  d.query(
    sql_id::owner_focus, [&](auto& b) { b.text(tenant_id); },
    [&](const auto& r) { id = r.int64(0); });
  return id;
}

template <class Driver>
engine::ai_usage
ai_usage_since(Driver& d, std::string_view tenant_id, engine::epoch_ms since) {
  engine::ai_usage u;
  d.query(
    sql_id::ai_usage_since, [&](auto& b) { b.text(tenant_id).int64(since); },
    [&](const auto& r) {
      u.turns = r.int64(0);
      u.errors = r.int64(1);
      u.prompt_tokens = r.int64(2);
      u.completion_tokens = r.int64(3);
      u.cost_usd = r.real(4);
    });
  return u;
}

} // namespace sql_ops

} // namespace ringback::adapters::store_detail
