#include "ringback/adapters/store/detail.hpp"
#include "ringback/adapters/store/memory_store.hpp"
#include "ringback/adapters/store/migrations.hpp"
#include "ringback/adapters/store/sql_common.hpp"

#include <algorithm>
#include <condition_variable>
#include <limits>
#include <map>
#include <mutex>
#include <tuple>
#include <utility>

namespace ringback::adapters {

namespace {

using store_detail::fail;

constexpr std::string_view memory_backend = "memory";

// Gives an update the identity `stored` was inserted with, as the SQL
// stores' UPDATEs do (they do not name these columns).
void keep_identity(engine::call_record& c, const engine::call_record& stored) {
  c.tenant_id = stored.tenant_id;
  c.from = stored.from;
  c.to = stored.to;
  c.owner_phone = stored.owner_phone;
  c.started_at = stored.started_at;
}

void keep_identity(engine::run_record& r, const engine::run_record& stored) {
  r.tenant_id = stored.tenant_id;
  r.workflow = stored.workflow;
  r.version = stored.version;
  r.trigger = stored.trigger;
  r.call_sid = stored.call_sid;
  r.started_at = stored.started_at;
}

void keep_identity(engine::conversation_record& c,
                   const engine::conversation_record& stored) {
  c.tenant_id = stored.tenant_id;
  c.customer = stored.customer;
  c.ref = stored.ref;
}

struct tenant_row {
  std::string name;
  std::string owner_phone;
  std::string timezone;
  engine::epoch_ms updated_at = 0;
};

struct number_row {
  std::string tenant_id;
  engine::number_kind kind = engine::number_kind::long_code;
  double mps = 0;
};

/// The tables of one database (what a transaction copies and installs).
struct tables {
  int version = 0; // schema_migrations; 0 = no tables
  std::map<std::string, tenant_row, std::less<>> tenants;
  std::map<std::string, number_row, std::less<>> numbers;
  std::map<std::string, engine::call_record, std::less<>> calls;
  std::vector<engine::webhook_record> webhooks; // in id order
  std::map<std::int64_t, engine::message_record> messages;
  std::int64_t next_message_id = 1;
  std::map<std::string, engine::inbound_message, std::less<>> inbound;
  std::map<std::pair<std::string, std::string>, contact_record> contacts;
  std::map<std::int64_t, engine::run_record> runs;
  std::int64_t next_run_id = 1;
  std::map<std::pair<std::int64_t, std::int32_t>, engine::run_step_record>
    run_steps;
  std::map<std::tuple<std::string, std::string, std::string>,
           engine::workflow_version_record>
    workflow_versions;
  /// (tenant_id, phone, tag) -> tagged_at; in tag order per contact.
  std::map<std::tuple<std::string, std::string, std::string>, engine::epoch_ms>
    contact_tags;
  std::map<std::pair<std::string, std::string>, engine::opt_out_state> opt_outs;
  std::vector<engine::status_report> status_reports; // in arrival order
  std::map<std::int64_t, engine::conversation_record> conversations;
  std::int64_t next_conversation_id = 1;
  std::map<std::int64_t, engine::conversation_message> conversation_messages;
  std::int64_t next_conversation_message_id = 1;
  std::map<std::int64_t, engine::conversation_event> conversation_events;
  std::int64_t next_conversation_event_id = 1;
  /// tenant_id -> the conversation its owner last heard from.
  std::map<std::string, std::int64_t, std::less<>> owner_focus;
};

/// The reports of a MessageSid, oldest first (as the SQL stores order them).
std::vector<engine::status_report> reports_for(const tables& db,
                                               std::string_view message_sid) {
  std::vector<engine::status_report> result;
  for (const auto& r : db.status_reports)
    if (r.message_sid == message_sid)
      result.push_back(r);
  std::stable_sort(result.begin(), result.end(),
                   [](const auto& x, const auto& y) { return x.at < y.at; });
  return result;
}

/// The message with that MessageSid (the lowest id if several), or null.
template <class Tables>
auto message_by_sid(Tables& db, std::string_view message_sid)
  -> decltype(&db.messages.begin()->second) {
  if (message_sid.empty())
    return nullptr;
  for (auto& [id, m] : db.messages)
    if (m.message_sid == message_sid)
      return &m;
  return nullptr;
}

/// The conversation of a tenant with a customer, or null.
const engine::conversation_record* conversation_of(const tables& db,
                                                   std::string_view tenant_id,
                                                   std::string_view customer) {
  for (const auto& [id, c] : db.conversations)
    if (c.tenant_id == tenant_id && c.customer == customer)
      return &c;
  return nullptr;
}

/// When a conversation is due at or before `now`: the earliest of its
/// deadlines that are (see `store::due_conversations`), if any.
std::optional<engine::epoch_ms> due_at(const engine::conversation_record& c,
                                       engine::epoch_ms now) {
  std::optional<engine::epoch_ms> result;
  auto consider = [&](engine::epoch_ms at, bool applies) {
    if (applies && at > 0 && at <= now && (!result || at < *result))
      result = at;
  };
  consider(c.window_deadline, c.outcome == engine::window_outcome::none);
  consider(c.turn_at, true);
  consider(c.close_at, c.state != engine::conversation_state::closed);
  return result;
}

/// The runs of `db` that `keep` accepts, in id order.
template <class Predicate>
std::vector<engine::run_record> runs_where(const tables& db, Predicate keep) {
  std::vector<engine::run_record> result;
  for (const auto& [id, r] : db.runs)
    if (keep(r))
      result.push_back(r);
  return result;
}

} // namespace

struct memory_database {
  std::mutex mutex;
  std::condition_variable released;
  const void* writer = nullptr; // the instance holding the write lock
  tables committed;
  std::size_t fail_countdown = 0;
  bool reachable = true;
};

struct memory_store::impl {
  std::shared_ptr<memory_database> db;
  std::chrono::milliseconds busy_timeout{5000};
  std::optional<tables> tx; // the working copy of an open transaction
  bool tx_failed = false;

  explicit impl(std::shared_ptr<memory_database> database)
    : db(std::move(database)) {
    // nop
  }

  ~impl() {
    std::lock_guard<std::mutex> guard{db->mutex};
    release();
  }

  /// Checks shared by every call but ping() and rollback(); runs locked.
  void enter(std::string_view op) {
    if (tx && tx_failed)
      fail(memory_backend, op, store_detail::aborted_detail);
    if (!db->reachable) {
      tx_failed = tx.has_value();
      fail(memory_backend, op, "database unreachable");
    }
    if (db->fail_countdown > 0 && --db->fail_countdown == 0) {
      tx_failed = tx.has_value();
      fail(memory_backend, op, "injected failure");
    }
  }

  /// Waits (locked) until no other instance holds the write lock.
  void acquire(std::unique_lock<std::mutex>& lock, std::string_view op) {
    if (!db->released.wait_for(lock, busy_timeout, [this] {
          return db->writer == nullptr || db->writer == this;
        }))
      fail(memory_backend, op, "database is locked");
  }

  void release() {
    if (db->writer == this) {
      db->writer = nullptr;
      db->released.notify_all();
    }
    tx.reset();
    tx_failed = false;
  }

  void check_schema(const tables& t, std::string_view op) {
    if (t.version == 0)
      fail(memory_backend, op, "no such table (migrate() has not run)");
  }

  /// Runs `f(const tables&)` on what this instance sees.
  template <class F>
  auto read(std::string_view op, F&& f) {
    std::unique_lock<std::mutex> lock{db->mutex};
    enter(op);
    const tables& t = tx ? *tx : db->committed;
    try {
      check_schema(t, op);
      return f(t);
    } catch (const engine::port_error&) {
      tx_failed = tx.has_value();
      throw;
    }
  }

  /// Runs `f(tables&)` in the open transaction, or else atomically on the
  /// committed tables once no other instance holds the write lock. `f`
  /// validates before it changes anything.
  template <class F>
  auto write(std::string_view op, F&& f) {
    std::unique_lock<std::mutex> lock{db->mutex};
    enter(op);
    try {
      if (!tx)
        acquire(lock, op);
      tables& t = tx ? *tx : db->committed;
      check_schema(t, op);
      return f(t);
    } catch (const engine::port_error&) {
      tx_failed = tx.has_value();
      throw;
    }
  }
};

memory_store::memory_store()
  : memory_store(std::make_shared<memory_database>()) {
  // nop
}

memory_store::memory_store(std::shared_ptr<memory_database> db)
  : impl_(std::make_unique<impl>(std::move(db))) {
  // nop
}

memory_store::~memory_store() = default;

std::shared_ptr<memory_database> memory_store::database() const {
  return impl_->db;
}

void memory_store::busy_timeout(std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> guard{impl_->db->mutex};
  impl_->busy_timeout = timeout;
}

void memory_store::fail_at(std::size_t nth) {
  std::lock_guard<std::mutex> guard{impl_->db->mutex};
  impl_->db->fail_countdown = nth;
}

void memory_store::set_reachable(bool reachable) {
  std::lock_guard<std::mutex> guard{impl_->db->mutex};
  impl_->db->reachable = reachable;
}

void memory_store::migrate() {
  auto& d = *impl_;
  std::unique_lock<std::mutex> lock{d.db->mutex};
  if (d.tx)
    fail(memory_backend, "migrate", "cannot run inside a transaction");
  d.enter("migrate");
  d.acquire(lock, "migrate");
  d.db->committed.version = std::max(d.db->committed.version,
                                     latest_schema_version());
}

int memory_store::schema_version() {
  auto& d = *impl_;
  std::unique_lock<std::mutex> lock{d.db->mutex};
  d.enter("schema_version");
  return d.tx ? d.tx->version : d.db->committed.version;
}

void memory_store::begin() {
  auto& d = *impl_;
  std::unique_lock<std::mutex> lock{d.db->mutex};
  if (d.tx)
    fail(memory_backend, "begin", "a transaction is already open");
  d.enter("begin");
  d.acquire(lock, "begin");
  d.db->writer = &d;
  d.tx = d.db->committed;
  d.tx_failed = false;
}

void memory_store::commit() {
  auto& d = *impl_;
  std::unique_lock<std::mutex> lock{d.db->mutex};
  if (!d.tx)
    fail(memory_backend, "commit", "no transaction is open");
  if (d.tx_failed) {
    d.release();
    fail(memory_backend, "commit", store_detail::commit_aborted_detail);
  }
  try {
    d.enter("commit");
  } catch (const engine::port_error&) {
    d.release();
    throw;
  }
  d.db->committed = std::move(*d.tx);
  d.release();
}

void memory_store::rollback() {
  std::lock_guard<std::mutex> guard{impl_->db->mutex};
  impl_->release();
}

bool memory_store::ping() {
  std::lock_guard<std::mutex> guard{impl_->db->mutex};
  return impl_->db->reachable;
}

void memory_store::upsert_tenant(const engine::tenant& t) {
  impl_->write("upsert_tenant", [&](tables& db) {
    db.tenants[t.id] = tenant_row{t.name, t.owner_phone, t.timezone,
                                  store_detail::now_ms()};
    for (auto i = db.numbers.begin(); i != db.numbers.end();)
      i = i->second.tenant_id == t.id ? db.numbers.erase(i) : std::next(i);
    for (const auto& n : t.numbers)
      db.numbers[n.number] = number_row{t.id, n.kind, n.mps};
  });
}

bool memory_store::insert_call(const engine::call_record& c) {
  return impl_->write("insert_call", [&](tables& db) {
    return db.calls.emplace(c.call_sid, c).second;
  });
}

void memory_store::update_call(const engine::call_record& c) {
  impl_->write("update_call", [&](tables& db) {
    auto i = db.calls.find(c.call_sid);
    if (i == db.calls.end())
      fail(memory_backend, "update_call",
           "unknown CallSid '" + c.call_sid + "'");
    auto next = c;
    keep_identity(next, i->second);
    next.phase = i->second.phase;
    next.decided = i->second.decided;
    i->second = std::move(next);
  });
}

bool memory_store::decide_outcome(const engine::call_record& c) {
  return impl_->write("decide_outcome", [&](tables& db) {
    if (c.phase == engine::call_phase::ringing)
      fail(memory_backend, "decide_outcome",
           "phase must be answered or missed (CallSid '" + c.call_sid + "')");
    auto i = db.calls.find(c.call_sid);
    if (i == db.calls.end())
      fail(memory_backend, "decide_outcome",
           "unknown CallSid '" + c.call_sid + "'");
    if (i->second.phase != engine::call_phase::ringing)
      return false;
    auto next = c;
    keep_identity(next, i->second);
    i->second = std::move(next);
    return true;
  });
}

std::optional<engine::call_record>
memory_store::find_call(std::string_view call_sid) {
  return impl_->read("find_call", [&](const tables& db) {
    std::optional<engine::call_record> result;
    if (auto i = db.calls.find(call_sid); i != db.calls.end())
      result = i->second;
    return result;
  });
}

std::vector<engine::call_record>
memory_store::unfinished_calls(std::string_view node_id,
                               engine::epoch_ms orphaned_before) {
  return impl_->read("unfinished_calls", [&](const tables& db) {
    std::vector<engine::call_record> result;
    for (const auto& [sid, c] : db.calls)
      if (c.phase == engine::call_phase::ringing
          && (c.node_id == node_id
              || (c.fallback_at > 0 && c.fallback_at < orphaned_before)))
        result.push_back(c);
    std::sort(result.begin(), result.end(), [](const auto& x, const auto& y) {
      return std::tie(x.started_at, x.call_sid)
             < std::tie(y.started_at, y.call_sid);
    });
    return result;
  });
}

void memory_store::insert_webhook(const engine::webhook_record& w) {
  impl_->write("insert_webhook", [&](tables& db) { db.webhooks.push_back(w); });
}

std::int64_t memory_store::insert_message(const engine::message_record& m) {
  return impl_->write("insert_message", [&](tables& db) {
    auto id = db.next_message_id++;
    auto& stored = db.messages[id] = m;
    stored.id = id;
    return id;
  });
}

void memory_store::update_message(const engine::message_record& m) {
  impl_->write("update_message", [&](tables& db) {
    auto i = db.messages.find(m.id);
    if (i == db.messages.end())
      fail(memory_backend, "update_message",
           "unknown message id " + std::to_string(m.id));
    auto& x = i->second;
    x.state = m.state;
    x.attempts = m.attempts;
    x.message_sid = m.message_sid;
    x.error_code = m.error_code;
    x.error_message = m.error_message;
    x.node_id = m.node_id;
    x.not_before = m.not_before;
    x.reason = m.reason;
    x.sent_at = m.sent_at;
    x.status_at = m.status_at;
    x.updated_at = m.updated_at;
    if (!x.message_sid.empty())
      store_detail::replay_reports(x, reports_for(db, x.message_sid));
  });
}

std::optional<engine::message_record>
memory_store::find_message(std::int64_t id) {
  return impl_->read("find_message", [&](const tables& db) {
    std::optional<engine::message_record> result;
    if (auto i = db.messages.find(id); i != db.messages.end())
      result = i->second;
    return result;
  });
}

std::vector<engine::message_record>
memory_store::pending_messages(std::string_view node_id) {
  return impl_->read("pending_messages", [&](const tables& db) {
    std::vector<engine::message_record> result;
    for (const auto& [id, m] : db.messages)
      if (m.node_id == node_id
          && (m.state == engine::message_state::queued
              || m.state == engine::message_state::sending
              || m.state == engine::message_state::held))
        result.push_back(m);
    return result;
  });
}

std::optional<engine::message_record>
memory_store::claim_message(std::int64_t id, std::string_view node_id,
                            engine::epoch_ms now) {
  return impl_->write("claim_message", [&](tables& db) {
    std::optional<engine::message_record> result;
    auto i = db.messages.find(id);
    if (i == db.messages.end()
        || i->second.state != engine::message_state::queued)
      return result;
    auto& m = i->second;
    m.state = engine::message_state::sending;
    m.node_id = std::string(node_id);
    m.attempts += 1;
    m.updated_at = now;
    result = m;
    return result;
  });
}

std::vector<std::int64_t> memory_store::release_held(std::string_view node_id,
                                                     engine::epoch_ms now,
                                                     std::size_t limit) {
  return impl_->write("release_held", [&](tables& db) {
    std::vector<std::int64_t> result;
    for (auto& [id, m] : db.messages) {
      if (result.size() >= limit)
        break;
      if (m.node_id != node_id || m.state != engine::message_state::held
          || m.not_before > now)
        continue;
      m.state = engine::message_state::queued;
      m.not_before = 0;
      m.reason.clear();
      m.error_message.clear();
      m.updated_at = now;
      result.push_back(id);
    }
    return result;
  });
}

std::optional<engine::message_record>
memory_store::find_message_by_sid(std::string_view message_sid) {
  return impl_->read("find_message_by_sid", [&](const tables& db) {
    std::optional<engine::message_record> result;
    if (const auto* m = message_by_sid(db, message_sid))
      result = *m;
    return result;
  });
}

engine::status_report_result
memory_store::record_status(const engine::status_report& r) {
  return impl_->write("record_status", [&](tables& db) {
    db.status_reports.push_back(r);
    engine::status_report_result result;
    auto* m = message_by_sid(db, r.message_sid);
    if (m == nullptr)
      return result;
    result.known = true;
    result.applied = store_detail::apply_report(*m, r);
    result.message = *m;
    return result;
  });
}

std::vector<engine::status_report>
memory_store::status_reports(std::string_view message_sid) {
  return impl_->read("status_reports", [&](const tables& db) {
    return reports_for(db, message_sid);
  });
}

engine::gate_facts memory_store::gate_facts_for(const engine::gate_query& q) {
  // Serial like SQLite: a transaction holds the one write lock.
  return impl_->read("gate_facts_for", [&](const tables& db) {
    using engine::message_state;
    using engine::send_kind;
    using store_detail::window_start;
    engine::gate_facts f;
    auto entry = db.opt_outs.find(std::make_pair(q.tenant_id, q.phone));
    f.opted_out = entry != db.opt_outs.end() && entry->second.opted_out;
    auto repeat_from = window_start(q.now, q.repeat_caller_window);
    auto hour_from = window_start(q.now, store_detail::automated_window);
    auto loop_from = window_start(q.now, q.loop_window);
    auto calls_from = window_start(q.now, q.caller_rate_window);
    for (const auto& [id, m] : db.messages) {
      if (m.tenant_id != q.tenant_id || m.to != q.phone
          || m.state == message_state::refused)
        continue;
      bool automated = m.kind == send_kind::text_back
                       || m.kind == send_kind::automated;
      if (m.kind == send_kind::text_back && m.created_at > repeat_from
          && (!f.last_text_back_at || m.created_at > *f.last_text_back_at))
        f.last_text_back_at = m.created_at;
      if (automated && m.created_at > hour_from)
        ++f.automated_last_hour;
      if (m.created_at > loop_from)
        ++f.exchanged_in_loop_window;
    }
    for (const auto& [sid, m] : db.inbound)
      if (m.tenant_id == q.tenant_id && m.from == q.phone
          && m.received_at > loop_from)
        ++f.exchanged_in_loop_window;
    auto calls_to = std::numeric_limits<engine::epoch_ms>::max();
    if (auto call = db.calls.find(q.call_sid); call != db.calls.end())
      calls_to = call->second.started_at;
    for (const auto& [sid, c] : db.calls)
      if (c.tenant_id == q.tenant_id && c.from == q.phone
          && c.started_at > calls_from && c.started_at <= calls_to)
        ++f.calls_in_rate_window;
    return f;
  });
}

std::optional<engine::opt_out_state>
memory_store::find_opt_out(std::string_view tenant_id, std::string_view phone) {
  return impl_->read("find_opt_out", [&](const tables& db) {
    std::optional<engine::opt_out_state> result;
    auto i = db.opt_outs.find(
      std::make_pair(std::string(tenant_id), std::string(phone)));
    if (i != db.opt_outs.end())
      result = i->second;
    return result;
  });
}

void memory_store::save_opt_out(const engine::opt_out_state& s) {
  impl_->write("save_opt_out", [&](tables& db) {
    db.opt_outs[std::make_pair(s.tenant_id, s.phone)] = s;
  });
}

std::vector<engine::opt_out_state>
memory_store::opted_out(std::string_view tenant_id) {
  return impl_->read("opted_out", [&](const tables& db) {
    std::vector<engine::opt_out_state> result;
    for (const auto& [key, s] : db.opt_outs)
      if (key.first == tenant_id && s.opted_out)
        result.push_back(s);
    return result;
  });
}

bool memory_store::insert_inbound(const engine::inbound_message& m) {
  return impl_->write("insert_inbound", [&](tables& db) {
    return db.inbound.emplace(m.message_sid, m).second;
  });
}

engine::inbound_claim
memory_store::consume_inbound(std::string_view message_sid,
                              engine::inbound_consumer consumer) {
  return impl_->write("consume_inbound", [&](tables& db) {
    auto i = db.inbound.find(message_sid);
    if (i == db.inbound.end())
      return engine::inbound_claim::unknown;
    if ((i->second.pending & consumer) == 0)
      return engine::inbound_claim::done_before;
    i->second.pending
      = static_cast<std::uint8_t>(i->second.pending & ~consumer);
    return engine::inbound_claim::claimed;
  });
}

void memory_store::restore_inbound(std::string_view message_sid,
                                   engine::inbound_consumer consumer) {
  impl_->write("restore_inbound", [&](tables& db) {
    if (auto i = db.inbound.find(message_sid); i != db.inbound.end())
      i->second.pending
        = static_cast<std::uint8_t>(i->second.pending | consumer);
  });
}

std::vector<engine::inbound_message>
memory_store::pending_inbound(std::string_view tenant_id,
                              std::string_view node_id, engine::epoch_ms since,
                              engine::epoch_ms orphaned_before,
                              std::size_t limit) {
  return impl_->read("pending_inbound", [&](const tables& db) {
    std::vector<engine::inbound_message> result;
    for (const auto& [sid, m] : db.inbound)
      if (m.pending != 0 && m.tenant_id == tenant_id && m.received_at > since
          && (m.node_id == node_id || m.received_at < orphaned_before))
        result.push_back(m);
    // The map is in MessageSid order: stable keeps it among equal times.
    std::stable_sort(result.begin(), result.end(),
                     [](const auto& x, const auto& y) {
                       return x.received_at < y.received_at;
                     });
    if (result.size() > limit)
      result.resize(limit);
    return result;
  });
}

void memory_store::touch_contact(std::string_view tenant_id,
                                 std::string_view phone, engine::epoch_ms at) {
  impl_->write("touch_contact", [&](tables& db) {
    auto key = std::make_pair(std::string(tenant_id), std::string(phone));
    auto [i, added]
      = db.contacts.emplace(key, contact_record{key.first, key.second, at, at});
    if (!added) {
      i->second.first_seen = std::min(i->second.first_seen, at);
      i->second.last_seen = std::max(i->second.last_seen, at);
    }
  });
}

std::vector<engine::message_record>
memory_store::messages_for_call(std::string_view call_sid) {
  return impl_->read("messages_for_call", [&](const tables& db) {
    std::vector<engine::message_record> result;
    for (const auto& [id, m] : db.messages)
      if (m.call_sid == call_sid)
        result.push_back(m);
    return result;
  });
}

std::int64_t memory_store::insert_run(const engine::run_record& r) {
  return impl_->write("insert_run", [&](tables& db) {
    auto id = db.next_run_id++;
    auto& stored = db.runs[id] = r;
    stored.id = id;
    return id;
  });
}

bool memory_store::update_run(const engine::run_record& r,
                              std::int64_t expected_seq) {
  return impl_->write("update_run", [&](tables& db) {
    store_detail::check_run_update(memory_backend, r, expected_seq);
    auto i = db.runs.find(r.id);
    if (i == db.runs.end())
      fail(memory_backend, "update_run",
           "unknown run id " + std::to_string(r.id));
    if (i->second.seq != expected_seq)
      return false;
    auto next = r;
    keep_identity(next, i->second);
    i->second = std::move(next);
    return true;
  });
}

std::optional<engine::run_record> memory_store::find_run(std::int64_t id) {
  return impl_->read("find_run", [&](const tables& db) {
    std::optional<engine::run_record> result;
    if (auto i = db.runs.find(id); i != db.runs.end())
      result = i->second;
    return result;
  });
}

std::vector<engine::run_record>
memory_store::unfinished_runs(std::string_view node_id,
                              engine::epoch_ms orphaned_before,
                              std::size_t limit) {
  return impl_->read("unfinished_runs", [&](const tables& db) {
    auto result = runs_where(db, [&](const engine::run_record& r) {
      return (r.status == engine::run_status::waiting
              || r.status == engine::run_status::running)
             && (r.node_id == node_id
                 || (r.wake_at > 0 && r.wake_at < orphaned_before));
    });
    // Stable: ties on wake_at stay in id order.
    std::stable_sort(result.begin(), result.end(),
                     [](const auto& x, const auto& y) {
                       return x.wake_at < y.wake_at;
                     });
    if (result.size() > limit)
      result.resize(limit);
    return result;
  });
}

std::vector<engine::run_record>
memory_store::runs_waiting_for_reply(std::string_view tenant_id,
                                     std::string_view contact) {
  return impl_->read("runs_waiting_for_reply", [&](const tables& db) {
    return runs_where(db, [&](const engine::run_record& r) {
      return r.tenant_id == tenant_id && r.contact == contact
             && r.status == engine::run_status::waiting
             && r.waiting_for == "reply";
    });
  });
}

std::vector<engine::run_record>
memory_store::runs_for_call(std::string_view call_sid) {
  return impl_->read("runs_for_call", [&](const tables& db) {
    return runs_where(db, [&](const engine::run_record& r) {
      return r.call_sid == call_sid;
    });
  });
}

void memory_store::insert_run_steps(
  const std::vector<engine::run_step_record>& steps) {
  impl_->write("insert_run_steps", [&](tables& db) {
    for (const auto& x : steps)
      db.run_steps.emplace(std::make_pair(x.run_id, x.seq), x);
  });
}

std::vector<engine::run_step_record>
memory_store::run_steps(std::int64_t run_id) {
  return impl_->read("run_steps", [&](const tables& db) {
    std::vector<engine::run_step_record> result;
    auto i = db.run_steps.lower_bound(
      {run_id, std::numeric_limits<std::int32_t>::min()});
    for (; i != db.run_steps.end() && i->first.first == run_id; ++i)
      result.push_back(i->second);
    return result;
  });
}

void memory_store::save_workflow_version(
  const engine::workflow_version_record& v) {
  impl_->write("save_workflow_version", [&](tables& db) {
    db.workflow_versions.emplace(
      std::make_tuple(v.tenant_id, v.name, v.version), v);
  });
}

std::optional<engine::workflow_version_record>
memory_store::find_workflow_version(std::string_view tenant_id,
                                    std::string_view name,
                                    std::string_view version) {
  return impl_->read("find_workflow_version", [&](const tables& db) {
    std::optional<engine::workflow_version_record> result;
    auto i = db.workflow_versions.find(std::make_tuple(
      std::string(tenant_id), std::string(name), std::string(version)));
    if (i != db.workflow_versions.end())
      result = i->second;
    return result;
  });
}

void memory_store::tag_contact(std::string_view tenant_id,
                               std::string_view phone, std::string_view tag,
                               engine::epoch_ms at) {
  impl_->write("tag_contact", [&](tables& db) {
    auto key = std::make_pair(std::string(tenant_id), std::string(phone));
    db.contacts.emplace(key, contact_record{key.first, key.second, at, at});
    db.contact_tags.emplace(
      std::make_tuple(key.first, key.second, std::string(tag)), at);
  });
}

std::vector<std::string> memory_store::contact_tags(std::string_view tenant_id,
                                                    std::string_view phone) {
  return impl_->read("contact_tags", [&](const tables& db) {
    std::vector<std::string> result;
    auto i = db.contact_tags.lower_bound(std::make_tuple(
      std::string(tenant_id), std::string(phone), std::string{}));
    for (; i != db.contact_tags.end() && std::get<0>(i->first) == tenant_id
           && std::get<1>(i->first) == phone;
         ++i)
      result.push_back(std::get<2>(i->first));
    return result;
  });
}

engine::conversation_record
memory_store::find_or_create_conversation(std::string_view tenant_id,
                                          std::string_view customer,
                                          std::string_view business_number,
                                          engine::epoch_ms now) {
  constexpr std::string_view op = "find_or_create_conversation";
  // Known conversations are read without the write lock, as in the SQL
  // stores.
  auto found = impl_->read(op, [&](const tables& db) {
    std::optional<engine::conversation_record> result;
    if (const auto* c = conversation_of(db, tenant_id, customer))
      result = *c;
    return result;
  });
  if (found)
    return std::move(*found);
  return impl_->write(op, [&](tables& db) {
    if (const auto* c = conversation_of(db, tenant_id, customer))
      return *c; // created meanwhile
    std::int32_t ref = 0;
    for (const auto& [id, c] : db.conversations)
      if (c.tenant_id == tenant_id)
        ref = std::max(ref, c.ref);
    engine::conversation_record c;
    c.id = db.next_conversation_id++;
    c.tenant_id = std::string(tenant_id);
    c.customer = std::string(customer);
    c.business_number = std::string(business_number);
    c.ref = ref + 1;
    c.state = engine::conversation_state::closed;
    c.opened_at = now;
    c.updated_at = now;
    db.conversations[c.id] = c;
    return c;
  });
}

std::optional<engine::conversation_record>
memory_store::find_conversation(std::int64_t id) {
  return impl_->read("find_conversation", [&](const tables& db) {
    std::optional<engine::conversation_record> result;
    if (auto i = db.conversations.find(id); i != db.conversations.end())
      result = i->second;
    return result;
  });
}

std::optional<engine::conversation_record>
memory_store::find_conversation_by_ref(std::string_view tenant_id,
                                       std::int32_t ref) {
  return impl_->read("find_conversation_by_ref", [&](const tables& db) {
    std::optional<engine::conversation_record> result;
    for (const auto& [id, c] : db.conversations)
      if (c.tenant_id == tenant_id && c.ref == ref)
        result = c;
    return result;
  });
}

bool memory_store::update_conversation(const engine::conversation_record& c,
                                       std::int64_t expected_seq) {
  return impl_->write("update_conversation", [&](tables& db) {
    store_detail::check_conversation_update(memory_backend, c, expected_seq);
    auto i = db.conversations.find(c.id);
    if (i == db.conversations.end())
      fail(memory_backend, "update_conversation",
           "unknown conversation id " + std::to_string(c.id));
    if (i->second.seq != expected_seq)
      return false;
    auto next = c;
    keep_identity(next, i->second);
    i->second = std::move(next);
    return true;
  });
}

std::vector<engine::conversation_record>
memory_store::due_conversations(std::string_view tenant_id,
                                engine::epoch_ms now, std::size_t limit) {
  return impl_->read("due_conversations", [&](const tables& db) {
    // (due, id) pairs: sorted, the earliest deadline first, ties by id.
    std::vector<std::pair<engine::epoch_ms, std::int64_t>> due;
    for (const auto& [id, c] : db.conversations)
      if (auto at = due_at(c, now); at && c.tenant_id == tenant_id)
        due.emplace_back(*at, id);
    std::sort(due.begin(), due.end());
    if (due.size() > limit)
      due.resize(limit);
    std::vector<engine::conversation_record> result;
    result.reserve(due.size());
    for (const auto& [at, id] : due)
      result.push_back(db.conversations.at(id));
    return result;
  });
}

void memory_store::insert_conversation_messages(
  const std::vector<engine::conversation_message>& ms) {
  impl_->write("insert_conversation_messages", [&](tables& db) {
    for (const auto& m : ms) {
      auto id = db.next_conversation_message_id++;
      auto& stored = db.conversation_messages[id] = m;
      stored.id = id;
    }
  });
}

std::vector<engine::conversation_message>
memory_store::conversation_messages(std::int64_t conversation_id,
                                    std::size_t limit) {
  return impl_->read("conversation_messages", [&](const tables& db) {
    std::vector<engine::conversation_message> result;
    // Newest first up to the limit, then reversed.
    for (auto i = db.conversation_messages.rbegin();
         i != db.conversation_messages.rend() && result.size() < limit; ++i)
      if (i->second.conversation_id == conversation_id)
        result.push_back(i->second);
    std::reverse(result.begin(), result.end());
    return result;
  });
}

void memory_store::insert_conversation_event(
  const engine::conversation_event& e) {
  impl_->write("insert_conversation_event", [&](tables& db) {
    auto id = db.next_conversation_event_id++;
    auto& stored = db.conversation_events[id] = e;
    stored.id = id;
  });
}

std::vector<engine::conversation_event>
memory_store::conversation_events(std::int64_t conversation_id) {
  return impl_->read("conversation_events", [&](const tables& db) {
    std::vector<engine::conversation_event> result;
    for (const auto& [id, e] : db.conversation_events)
      if (e.conversation_id == conversation_id)
        result.push_back(e);
    return result;
  });
}

void memory_store::set_owner_focus(std::string_view tenant_id,
                                   std::int64_t conversation_id,
                                   engine::epoch_ms) {
  impl_->write("set_owner_focus", [&](tables& db) {
    db.owner_focus[std::string(tenant_id)] = conversation_id;
  });
}

std::optional<std::int64_t>
memory_store::owner_focus(std::string_view tenant_id) {
  return impl_->read("owner_focus", [&](const tables& db) {
    std::optional<std::int64_t> result;
    if (auto i = db.owner_focus.find(tenant_id); i != db.owner_focus.end())
      result = i->second;
    return result;
  });
}

engine::ai_usage memory_store::ai_usage_since(std::string_view tenant_id,
                                              engine::epoch_ms since) {
  return impl_->read("ai_usage_since", [&](const tables& db) {
    engine::ai_usage u;
    for (const auto& [id, e] : db.conversation_events) {
      if (e.tenant_id != tenant_id || e.at < since)
        continue;
      if (e.kind == "ai_turn") {
        ++u.turns;
        u.prompt_tokens += e.prompt_tokens;
        u.completion_tokens += e.completion_tokens;
        u.cost_usd += e.cost_usd;
      } else if (e.kind == "ai_error") {
        ++u.errors;
      }
    }
    return u;
  });
}

std::optional<engine::tenant> memory_store::find_tenant(std::string_view id) {
  return impl_->read("find_tenant", [&](const tables& db) {
    std::optional<engine::tenant> result;
    auto i = db.tenants.find(id);
    if (i == db.tenants.end())
      return result;
    result = engine::tenant{std::string(id),
                            i->second.name,
                            {},
                            i->second.owner_phone,
                            i->second.timezone};
    for (const auto& [number, n] : db.numbers)
      if (n.tenant_id == id)
        result->numbers.push_back(
          engine::business_number{number, n.kind, n.mps});
    return result;
  });
}

std::vector<engine::webhook_record>
memory_store::webhooks_for(std::string_view call_sid) {
  return impl_->read("webhooks_for", [&](const tables& db) {
    std::vector<engine::webhook_record> result;
    for (const auto& w : db.webhooks)
      if (w.call_sid == call_sid)
        result.push_back(w);
    return result;
  });
}

std::optional<engine::inbound_message>
memory_store::find_inbound(std::string_view message_sid) {
  return impl_->read("find_inbound", [&](const tables& db) {
    std::optional<engine::inbound_message> result;
    if (auto i = db.inbound.find(message_sid); i != db.inbound.end())
      result = i->second;
    return result;
  });
}

std::optional<contact_record>
memory_store::find_contact(std::string_view tenant_id, std::string_view phone) {
  return impl_->read("find_contact", [&](const tables& db) {
    std::optional<contact_record> result;
    auto i = db.contacts.find(
      std::make_pair(std::string(tenant_id), std::string(phone)));
    if (i != db.contacts.end())
      result = i->second;
    return result;
  });
}

} // namespace ringback::adapters
