#pragma once

// Internal: what the SQL store adapters (`sqlite_store`, `pg_store`) share:
// the statements, how records are bound and decoded, and the operations
// themselves. Each adapter supplies a *driver* that runs statements:
//
//   std::string_view backend() const;                    // "sqlite", ...
//   std::int64_t execute(sql_id, Bind bind);             // rows affected
//   void query(sql_id, Bind bind, OnRow on_row);         // on_row per row
//
// `bind(binder&)` binds the parameters in order through `text`, `bytes`,
// `int64`, `int32`, `boolean` and `real`; `on_row(const row&)` reads columns
// by index through the same names. Connections, transactions and turning
// backend errors into `port_error` stay with each adapter.

#include "ringback/adapters/store/audited_store.hpp"
#include "ringback/adapters/store/detail.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
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
  insert_inbound,
  find_inbound,
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
};

inline constexpr std::size_t sql_count
  = static_cast<std::size_t>(sql_id::contact_tags) + 1;

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

/// The same without phase and decided (13).
template <class Binder>
void bind_call_update(Binder& b, const engine::call_record& c) {
  b.text(c.call_sid)
    .text(c.tenant_id)
    .text(c.from)
    .text(c.to)
    .text(c.owner_phone)
    .boolean(c.ended)
    .int64(c.started_at)
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

/// tenant_id .. updated_at, without id (14).
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
    .int64(m.updated_at);
}

/// id, state, attempts, message_sid, error_code, error_message, updated_at.
template <class Binder>
void bind_message_update(Binder& b, const engine::message_record& m) {
  b.int64(m.id)
    .text(to_string(m.state))
    .int32(m.attempts)
    .text(m.message_sid)
    .int32(m.error_code)
    .text(m.error_message)
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
  return m;
}

template <class Binder>
void bind_inbound(Binder& b, const engine::inbound_message& m) {
  b.text(m.message_sid)
    .text(m.tenant_id)
    .text(m.from)
    .text(m.to)
    .text(m.body)
    .int64(m.received_at);
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
  if (d.execute(sql_id::update_call, [&](auto& b) { bind_call_update(b, c); })
      == 0)
    fail(d.backend(), "update_call", "unknown CallSid '" + c.call_sid + "'");
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
  if (d.execute(sql_id::decide_outcome, [&](auto& b) { bind_call(b, c); }) == 1)
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

template <class Driver>
std::int64_t insert_message(Driver& d, const engine::message_record& m) {
  std::int64_t id = 0;
  d.query(
    sql_id::insert_message, [&](auto& b) { bind_message(b, m); },
    [&](const auto& r) { id = r.int64(0); });
  if (id == 0)
    fail(d.backend(), "insert_message", "no id returned");
  return id;
}

template <class Driver>
void update_message(Driver& d, const engine::message_record& m) {
  if (d.execute(sql_id::update_message,
                [&](auto& b) { bind_message_update(b, m); })
      == 0)
    fail(d.backend(), "update_message",
         "unknown message id " + std::to_string(m.id));
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
  std::int64_t id = 0;
  d.query(
    sql_id::insert_run, [&](auto& b) { bind_run(b, r); },
    [&](const auto& row) { id = row.int64(0); });
  if (id == 0)
    fail(d.backend(), "insert_run", "no id returned");
  return id;
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
                  bind_run(b, r);
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

/// `limit` as a SQL LIMIT (which is signed; negative means none in SQLite).
inline std::int64_t sql_limit(std::size_t limit) {
  constexpr auto max
    = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(std::min(limit, max));
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

} // namespace sql_ops

} // namespace ringback::adapters::store_detail
