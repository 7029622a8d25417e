#include "ringback/adapters/store/detail.hpp"
#include "ringback/adapters/store/pg_store.hpp"
#include "ringback/adapters/store/sql_common.hpp"

#include <pqxx/pqxx>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <set>
#include <type_traits>
#include <utility>

namespace ringback::adapters {

namespace {

using store_detail::fail;
using store_detail::sql_id;
namespace sql_ops = store_detail::sql_ops;

constexpr std::string_view pg_backend = "postgresql";

/// Connecting failed; the operation boundary turns it into `port_error`.
struct connect_failure {
  std::string message;
};

/// One line of a libpq / server message: "ERROR:  x\nLINE 1: y\n   ^" becomes
/// "x LINE 1: y ^" (whitespace runs collapse, the severity goes).
std::string one_line(std::string_view text) {
  for (std::string_view prefix : {"ERROR:", "FATAL:"})
    if (text.substr(0, prefix.size()) == prefix)
      text.remove_prefix(prefix.size());
  std::string result;
  bool space = false;
  for (char ch : text) {
    if (std::isspace(static_cast<unsigned char>(ch))) {
      space = true;
      continue;
    }
    if (space && !result.empty())
      result += ' ';
    space = false;
    result += ch;
  }
  return result;
}

/// Collects parameters as text (bytes as bytea hex input).
class binder {
public:
  explicit binder(std::vector<std::string>& params) : params_(params) {
    // nop
  }

  binder& text(std::string_view x) {
    params_.emplace_back(x);
    return *this;
  }

  binder& bytes(std::string_view x) {
    static constexpr std::string_view digits = "0123456789abcdef";
    std::string hex;
    hex.reserve(2 + 2 * x.size());
    hex += "\\x";
    for (unsigned char ch : x) {
      hex += digits[ch >> 4];
      hex += digits[ch & 0x0f];
    }
    params_.push_back(std::move(hex));
    return *this;
  }

  binder& int64(std::int64_t x) {
    params_.push_back(std::to_string(x));
    return *this;
  }

  binder& int32(std::int32_t x) {
    params_.push_back(std::to_string(x));
    return *this;
  }

  binder& boolean(bool x) {
    params_.emplace_back(x ? "true" : "false");
    return *this;
  }

  binder& real(double x) {
    std::array<char, 32> buf{};
    std::snprintf(buf.data(), buf.size(), "%.17g", x); // round-trips exactly
    params_.emplace_back(buf.data());
    return *this;
  }

private:
  std::vector<std::string>& params_;
};

class row {
public:
  explicit row(const pqxx::row& r) : r_(r) {
    // nop
  }

  std::string text(int i) const {
    const auto& f = r_[i];
    return {f.c_str(), f.size()};
  }

  std::string bytes(int i) const {
    return pqxx::binarystring(r_[i]).str();
  }

  std::int64_t int64(int i) const {
    return r_[i].as<std::int64_t>();
  }

  std::int32_t int32(int i) const {
    return r_[i].as<std::int32_t>();
  }

  bool boolean(int i) const {
    return r_[i].as<bool>();
  }

  double real(int i) const {
    return r_[i].as<double>();
  }

  bool null(int i) const {
    return r_[i].is_null();
  }

private:
  const pqxx::row& r_;
};

/// The prepared statement that takes a transaction-scoped advisory lock.
constexpr const char* advisory_lock_statement = "rb_advisory_xact_lock";

/// Runs the prepared statements in one pqxx transaction (or nontransaction).
class driver {
public:
  /// `transactional`: `tx` is a transaction (locks last until its end), not
  /// autocommit.
  driver(pqxx::transaction_base& tx, bool transactional)
    : tx_(tx), transactional_(transactional) {
    // nop
  }

  static constexpr store_detail::sql_dialect dialect
    = store_detail::sql_dialect::postgresql;

  std::string_view backend() const {
    return pg_backend;
  }

  pqxx::transaction_base& tx() {
    return tx_;
  }

  template <class Bind>
  std::int64_t execute(sql_id id, Bind&& bind) {
    return static_cast<std::int64_t>(run(id, bind).affected_rows());
  }

  template <class Bind, class OnRow>
  void query(sql_id id, Bind&& bind, OnRow&& on_row) {
    auto result = run(id, bind);
    for (const auto& r : result)
      on_row(row{r});
  }

  /// `pg_advisory_xact_lock(key)`: waits for the transactions holding it,
  /// then holds it until this transaction ends. In autocommit mode there is
  /// nothing to hold it for: a no-op.
  void serialize(std::int64_t key) {
    if (transactional_)
      tx_.exec_prepared(advisory_lock_statement, key);
  }

private:
  template <class Bind>
  pqxx::result run(sql_id id, Bind& bind) {
    std::vector<std::string> params;
    binder b{params};
    bind(b);
    return tx_.exec_prepared(store_detail::sql_name(id),
                             pqxx::prepare::make_dynamic_params(params));
  }

  pqxx::transaction_base& tx_;
  bool transactional_;
};

/// The audit tables whose rows a transaction collects and sends at its end
/// as one multi-row INSERT per table (see `pg_store::impl::add_rows`): rows
/// nothing reads back in the transaction that writes them, with no foreign
/// key and no row-level trigger. By their order in `audit_inserts`.
enum audit_table : std::size_t {
  webhook_rows,
  run_step_rows,
  conversation_message_rows,
  conversation_event_rows,
};

struct audit_insert {
  sql_id id; ///< the one-row statement
  std::string_view op;
};

constexpr std::array<audit_insert, 4> audit_inserts{{
  {sql_id::insert_webhook, "insert_webhook"},
  {sql_id::insert_run_step, "insert_run_steps"},
  {sql_id::insert_conversation_message, "insert_conversation_messages"},
  {sql_id::insert_conversation_event, "insert_conversation_event"},
}};

/// A one-row `INSERT INTO t (...) VALUES ($1, ..., $n) [tail]` of
/// store_sql.cpp turned into the same INSERT of any number of rows, so that
/// the columns and the conflict clause have one source.
class multi_row_insert {
public:
  explicit multi_row_insert(sql_id id) {
    const auto& text
      = store_detail::sql_text(id, store_detail::sql_dialect::postgresql);
    constexpr std::string_view values = " VALUES (";
    auto open = text.find(values);
    auto close = open == std::string::npos
                   ? std::string::npos
                   : text.find(')', open + values.size());
    if (close == std::string::npos)
      fail(pg_backend, "prepare",
           "not a one-row INSERT: " + std::string{store_detail::sql_name(id)});
    head_ = text.substr(0, open + values.size() - 1);
    tail_ = text.substr(close + 1);
    columns_ = static_cast<std::size_t>(
      std::count(text.begin() + static_cast<std::ptrdiff_t>(open),
                 text.begin() + static_cast<std::ptrdiff_t>(close), '$'));
  }

  std::size_t columns() const {
    return columns_;
  }

  /// Rows per statement: at most 1,000, and within the protocol's 65,535
  /// parameters.
  std::size_t max_rows() const {
    return std::max<std::size_t>(1,
                                 std::min<std::size_t>(1000, 65535 / columns_));
  }

  std::string sql(std::size_t rows) const {
    std::string result = head_;
    result.reserve(head_.size() + tail_.size() + rows * columns_ * 6);
    std::size_t n = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      result += r == 0 ? "(" : ", (";
      for (std::size_t c = 0; c < columns_; ++c) {
        if (c > 0)
          result += ", ";
        result += '$';
        result += std::to_string(++n);
      }
      result += ')';
    }
    result += tail_;
    return result;
  }

private:
  std::string head_; ///< up to and with "VALUES "
  std::string tail_; ///< after the row, e.g. " ON CONFLICT ... DO NOTHING"
  std::size_t columns_ = 0;
};

const multi_row_insert& audit_shape(audit_table t) {
  static const auto shapes = [] {
    std::vector<multi_row_insert> xs;
    for (const auto& a : audit_inserts)
      xs.emplace_back(a.id);
    return xs;
  }();
  return shapes[t];
}

/// Rows of one audit table, their parameters in row order.
struct audit_rows {
  std::vector<std::string> params;
  std::size_t count = 0;
};

/// Writes `rows` to table `t` with as few statements as the parameter limit
/// allows (one up to `max_rows`). A single row goes through the prepared
/// one-row statement (no parse and plan on the server).
void write_rows(pqxx::transaction_base& tx, audit_table t,
                const audit_rows& rows) {
  const auto& shape = audit_shape(t);
  const auto per = shape.max_rows();
  const auto columns = shape.columns();
  for (std::size_t first = 0; first < rows.count; first += per) {
    auto n = std::min(per, rows.count - first);
    auto begin = rows.params.begin()
                 + static_cast<std::ptrdiff_t>(first * columns);
    auto params = pqxx::prepare::make_dynamic_params(
      begin, begin + static_cast<std::ptrdiff_t>(n * columns));
    if (n == 1)
      tx.exec_prepared(store_detail::sql_name(audit_inserts[t].id), params);
    else
      tx.exec_params(shape.sql(n), params);
  }
}

/// The key of a workflow version in `pg_store::impl::saved_versions`.
std::string version_key(const engine::workflow_version_record& v) {
  std::string key = v.tenant_id;
  key += '\0';
  key += v.name;
  key += '\0';
  key += v.version;
  return key;
}

bool is_schema_name(std::string_view x) {
  return !x.empty() && x.size() < 64
         && std::all_of(x.begin(), x.end(), [](char ch) {
              return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_';
            });
}

std::string percent_encode(std::string_view x) {
  static constexpr std::string_view digits = "0123456789ABCDEF";
  std::string result;
  for (unsigned char ch : x) {
    if (std::isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      result += static_cast<char>(ch);
    } else {
      result += '%';
      result += digits[ch >> 4];
      result += digits[ch & 0x0f];
    }
  }
  return result;
}

std::string quote_conninfo_value(std::string_view x) {
  std::string result = "'";
  for (char ch : x) {
    if (ch == '\'' || ch == '\\')
      result += '\\';
    result += ch;
  }
  result += '\'';
  return result;
}

/// The URL plus connect_timeout, application_name and server options
/// (lock_timeout, quiet notices, the schema as search_path) as libpq
/// parameters; the session settings thereby survive any reconnection.
std::string make_conninfo(const pg_store_options& o) {
  if (!o.schema.empty() && !is_schema_name(o.schema))
    fail(pg_backend, "open",
         "invalid schema name '" + o.schema
           + "' (letters, digits and _ only, at most 63)");
  std::string server_options = "-c lock_timeout="
                               + std::to_string(o.lock_timeout.count())
                               + " -c client_min_messages=warning";
  if (!o.schema.empty())
    server_options += " -c search_path=" + o.schema;
  std::vector<std::pair<std::string, std::string>> params{
    {"connect_timeout", std::to_string(o.connect_timeout.count())},
    {"application_name", o.application_name},
    {"options", server_options},
  };
  auto starts_with = [&](std::string_view prefix) {
    return o.url.compare(0, prefix.size(), prefix) == 0;
  };
  bool uri = starts_with("postgresql://") || starts_with("postgres://");
  std::string result = o.url;
  for (const auto& [key, value] : params) {
    if (o.url.find(key + "=") != std::string::npos) {
      if (key == "options")
        fail(pg_backend, "open",
             "the URL must not set 'options' (pg_store sets lock_timeout, "
             "client_min_messages and search_path there)");
      continue; // the URL's own setting wins
    }
    if (uri) {
      result += result.find('?') == std::string::npos ? '?' : '&';
      result += key + "=" + percent_encode(value);
    } else {
      result += " " + key + "=" + quote_conninfo_value(value);
    }
  }
  return result;
}

} // namespace

struct pg_store::impl {
  pg_store_options options;
  std::string conninfo;
  std::unique_ptr<pqxx::connection> conn;
  std::unique_ptr<pqxx::work> tx;
  bool tx_failed = false;
  /// Audit rows of the open transaction not sent yet, by `audit_table`.
  std::array<audit_rows, audit_inserts.size()> pending;
  /// Workflow versions known to be committed (`version_key`): saving one
  /// again changes nothing (ON CONFLICT DO NOTHING, and nothing deletes
  /// them), so it costs no round trip. Those saved in the open transaction
  /// join at its commit.
  std::set<std::string> saved_versions;
  std::vector<std::string> versions_in_tx;

  explicit impl(pg_store_options opts)
    : options(std::move(opts)), conninfo(make_conninfo(options)) {
    // nop
  }

  ~impl() {
    drop();
  }

  /// The open connection, connecting first if there is none.
  pqxx::connection& connection() {
    if (conn && !conn->is_open())
      drop();
    if (!conn) {
      try {
        conn = std::make_unique<pqxx::connection>(conninfo);
      } catch (const std::exception& e) {
        throw connect_failure{one_line(e.what())};
      }
      // Registered here, prepared by the server on first use.
      for (std::size_t i = 0; i < store_detail::sql_count; ++i) {
        auto id = static_cast<sql_id>(i);
        conn->prepare(
          store_detail::sql_name(id),
          store_detail::sql_text(id, store_detail::sql_dialect::postgresql));
      }
      conn->prepare(advisory_lock_statement,
                    "SELECT pg_advisory_xact_lock($1::bigint)");
    }
    return *conn;
  }

  /// Forgets the connection (the transaction first: it refers to it). The
  /// pqxx destructors do not throw; they roll back what is still open.
  void drop() noexcept {
    tx.reset();
    forget_transaction();
    conn.reset();
  }

  /// Forgets what the transaction that ended without a commit collected.
  void forget_transaction() noexcept {
    for (auto& p : pending)
      p = audit_rows{};
    versions_in_tx.clear();
  }

  /// Adds `count` rows to audit table `t` (`bind` binds them in row order).
  /// In a transaction they wait for its end, or for a read of an audit
  /// table, and then go to the server as one statement per table
  /// (`flush_pending`): a batch of jobs writes its webhooks, run steps,
  /// transcript lines and events in four round trips instead of one per
  /// row. Outside a transaction they go at once, as one statement.
  template <class Bind>
  void add_rows(audit_table t, std::size_t count, Bind&& bind) {
    auto op = audit_inserts[t].op;
    if (tx && tx_failed)
      fail(pg_backend, op, store_detail::aborted_detail);
    if (count == 0)
      return;
    if (tx) {
      binder b{pending[t].params};
      bind(b);
      pending[t].count += count;
      return;
    }
    audit_rows rows;
    binder b{rows.params};
    bind(b);
    rows.count = count;
    // More rows than one statement takes need a transaction of their own.
    guarded(
      op, [&](driver& dr) { write_rows(dr.tx(), t, rows); },
      count > audit_shape(t).max_rows());
  }

  /// Sends the audit rows the open transaction collected. A failure aborts
  /// the transaction and names the operation that added the rows.
  void flush_pending() {
    if (!tx)
      return;
    for (std::size_t i = 0; i < pending.size(); ++i) {
      if (pending[i].count == 0)
        continue;
      auto t = static_cast<audit_table>(i);
      auto rows = std::move(pending[i]);
      pending[i] = audit_rows{};
      guarded(audit_inserts[i].op,
              [&](driver& dr) { write_rows(dr.tx(), t, rows); });
    }
  }

  /// Runs `f(driver&)` as operation `op`: in the open transaction, else in
  /// autocommit mode (`own_tx`: in a transaction of its own). Refuses to
  /// work in an aborted transaction, turns pqxx errors into `port_error` and
  /// aborts the open transaction on any error.
  template <class F>
  auto guarded(std::string_view op, F&& f, bool own_tx = false)
    -> decltype(f(std::declval<driver&>())) {
    using result_type = decltype(f(std::declval<driver&>()));
    if (tx && tx_failed)
      fail(pg_backend, op, store_detail::aborted_detail);
    try {
      if (tx) {
        driver d{*tx, true};
        return f(d);
      }
      auto& c = connection();
      if (own_tx) {
        pqxx::work w{c};
        driver d{w, true};
        if constexpr (std::is_void_v<result_type>) {
          f(d);
          w.commit();
        } else {
          auto result = f(d);
          w.commit();
          return result;
        }
      } else {
        pqxx::nontransaction n{c};
        driver d{n, false};
        return f(d);
      }
    } catch (const engine::port_error&) {
      after_error();
      throw;
    } catch (const connect_failure& e) {
      fail(pg_backend, op, "cannot connect: " + e.message);
    } catch (const pqxx::broken_connection& e) {
      after_error();
      fail(pg_backend, op, "connection lost: " + one_line(e.what()));
    } catch (const std::exception& e) {
      after_error();
      fail(pg_backend, op, one_line(e.what()));
    }
  }

  void after_error() {
    if (tx)
      tx_failed = true;
    else if (conn && !conn->is_open())
      drop(); // reconnect on the next call
  }

  /// Tries `f(connection)`; if it fails on a connection that was already
  /// open, which may have died since, tries once more on a fresh one. Only
  /// for steps that are safe to repeat (nothing done yet).
  template <class F>
  void with_reconnect(F&& f) {
    bool fresh = !conn || !conn->is_open();
    try {
      f(connection());
    } catch (const connect_failure&) {
      throw;
    } catch (const std::exception&) {
      if (fresh)
        throw;
      drop();
      f(connection());
    }
  }

  void abort_transaction() noexcept {
    if (!tx)
      return;
    try {
      tx->abort();
    } catch (...) {
      // a broken connection cannot abort; the server does it
    }
    tx.reset();
    tx_failed = false;
    forget_transaction();
    if (conn && !conn->is_open())
      drop();
  }
};

pg_store::pg_store(pg_store_options options)
  : impl_(std::make_unique<impl>(std::move(options))) {
  // nop
}

pg_store::pg_store(std::string url)
  : pg_store([&] {
      pg_store_options options;
      options.url = std::move(url);
      return options;
    }()) {
  // nop
}

pg_store::~pg_store() = default;

const std::string& pg_store::connection_string() const {
  return impl_->conninfo;
}

void pg_store::migrate() {
  auto& d = *impl_;
  if (d.tx)
    fail(pg_backend, "migrate", "cannot run inside a transaction");
  d.guarded(
    "migrate",
    [&](driver& dr) {
      auto& tx = dr.tx();
      // Concurrent migrators queue here; the lock ends with the transaction.
      tx.exec("SELECT pg_advisory_xact_lock("
              + std::to_string(pg_migration_lock_key) + ")");
      if (!d.options.schema.empty())
        tx.exec("CREATE SCHEMA IF NOT EXISTS "
                + tx.quote_name(d.options.schema));
      tx.exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
              "version INTEGER NOT NULL PRIMARY KEY, "
              "applied_at BIGINT NOT NULL)");
      auto current
        = tx.exec(
              "SELECT COALESCE(MAX(version), 0) FROM schema_migrations")[0][0]
            .as<int>();
      int previous = 0;
      for (const auto& m : d.options.migrations) {
        if (m.version <= previous)
          fail(pg_backend, "migrate",
               "migration versions must increase (version "
                 + std::to_string(m.version) + ")");
        previous = m.version;
        if (m.version <= current)
          continue;
        try {
          tx.exec(m.sql);
        } catch (const pqxx::sql_error& e) {
          fail(pg_backend, "migrate",
               "version " + std::to_string(m.version) + " (" + m.description
                 + "): " + one_line(e.what()));
        }
        tx.exec_params("INSERT INTO schema_migrations (version, applied_at) "
                       "VALUES ($1, $2)",
                       m.version, store_detail::now_ms());
      }
    },
    true);
}

int pg_store::schema_version() {
  return impl_->guarded("schema_version", [&](driver& dr) {
    auto& tx = dr.tx();
    if (tx.exec("SELECT to_regclass('schema_migrations') IS NULL")[0][0]
          .as<bool>())
      return 0;
    return tx
      .exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")[0][0]
      .as<int>();
  });
}

void pg_store::begin() {
  auto& d = *impl_;
  if (d.tx)
    fail(pg_backend, "begin", "a transaction is already open");
  try {
    // A connection that broke while idle is only noticed now; nothing has
    // happened in the transaction yet, so reconnecting is safe.
    d.with_reconnect(
      [&](pqxx::connection& c) { d.tx = std::make_unique<pqxx::work>(c); });
    d.tx_failed = false;
  } catch (const connect_failure& e) {
    fail(pg_backend, "begin", "cannot connect: " + e.message);
  } catch (const std::exception& e) {
    d.drop();
    fail(pg_backend, "begin", one_line(e.what()));
  }
}

void pg_store::commit() {
  auto& d = *impl_;
  if (!d.tx)
    fail(pg_backend, "commit", "no transaction is open");
  if (d.tx_failed) {
    d.abort_transaction();
    fail(pg_backend, "commit", store_detail::commit_aborted_detail);
  }
  try {
    d.flush_pending();
  } catch (const engine::port_error&) {
    d.abort_transaction();
    throw;
  }
  try {
    d.tx->commit();
    d.tx.reset();
    for (auto& key : d.versions_in_tx)
      d.saved_versions.insert(std::move(key));
    d.versions_in_tx.clear();
  } catch (const pqxx::in_doubt_error& e) {
    d.abort_transaction();
    fail(pg_backend, "commit",
         "outcome unknown, the connection broke while committing: "
           + one_line(e.what()));
  } catch (const std::exception& e) {
    d.abort_transaction();
    fail(pg_backend, "commit", one_line(e.what()));
  }
}

void pg_store::rollback() {
  impl_->abort_transaction();
}

bool pg_store::ping() {
  auto& d = *impl_;
  if (d.tx)
    return d.conn && d.conn->is_open() && !d.tx_failed;
  try {
    d.with_reconnect([](pqxx::connection& c) {
      pqxx::nontransaction n{c};
      n.exec("SELECT 1");
    });
    return true;
  } catch (...) {
    d.drop();
    return false;
  }
}

void pg_store::upsert_tenant(const engine::tenant& t) {
  impl_->guarded(
    "upsert_tenant",
    [&](driver& dr) { sql_ops::upsert_tenant(dr, t, store_detail::now_ms()); },
    true);
}

bool pg_store::insert_call(const engine::call_record& c) {
  return impl_->guarded("insert_call", [&](driver& dr) {
    return sql_ops::insert_call(dr, c);
  });
}

void pg_store::update_call(const engine::call_record& c) {
  impl_->guarded("update_call",
                 [&](driver& dr) { sql_ops::update_call(dr, c); });
}

bool pg_store::decide_outcome(const engine::call_record& c) {
  return impl_->guarded("decide_outcome", [&](driver& dr) {
    return sql_ops::decide_outcome(dr, c);
  });
}

std::optional<engine::call_record>
pg_store::find_call(std::string_view call_sid) {
  return impl_->guarded("find_call", [&](driver& dr) {
    return sql_ops::find_call(dr, call_sid);
  });
}

std::vector<engine::call_record>
pg_store::unfinished_calls(std::string_view node_id,
                           engine::epoch_ms orphaned_before) {
  return impl_->guarded("unfinished_calls", [&](driver& dr) {
    return sql_ops::unfinished_calls(dr, node_id, orphaned_before);
  });
}

void pg_store::insert_webhook(const engine::webhook_record& w) {
  impl_->add_rows(webhook_rows, 1,
                  [&](binder& b) { store_detail::bind_webhook(b, w); });
}

std::int64_t pg_store::insert_message(const engine::message_record& m) {
  return impl_->guarded("insert_message", [&](driver& dr) {
    return sql_ops::insert_message(dr, m);
  });
}

void pg_store::update_message(const engine::message_record& m) {
  // With a MessageSid it locks it and may apply recorded reports: one
  // transaction of its own outside an open one.
  impl_->guarded(
    "update_message", [&](driver& dr) { sql_ops::update_message(dr, m); },
    !m.message_sid.empty());
}

std::optional<engine::message_record> pg_store::find_message(std::int64_t id) {
  return impl_->guarded("find_message", [&](driver& dr) {
    return sql_ops::find_message(dr, id);
  });
}

std::vector<engine::message_record>
pg_store::pending_messages(std::string_view node_id) {
  return impl_->guarded("pending_messages", [&](driver& dr) {
    return sql_ops::messages_where(dr, sql_id::pending_messages, node_id,
                                   "pending_messages");
  });
}

std::optional<engine::message_record>
pg_store::claim_message(std::int64_t id, std::string_view node_id,
                        engine::epoch_ms now) {
  return impl_->guarded("claim_message", [&](driver& dr) {
    return sql_ops::claim_message(dr, id, node_id, now);
  });
}

std::vector<engine::store::claimed_message>
pg_store::claim_for_sending(const std::vector<std::int64_t>& ids,
                            std::string_view node_id, engine::epoch_ms now) {
  return impl_->guarded("claim_for_sending", [&](driver& dr) {
    return engine::claim_in_order(
      ids,
      [&](std::int64_t id) -> std::optional<claimed_message> {
        bool opted_out = false;
        auto m = sql_ops::claim_message(dr, id, node_id, now, &opted_out);
        if (!m)
          return std::nullopt;
        // A compliance answer goes out whatever the ledger says.
        if (m->kind == engine::send_kind::compliance)
          opted_out = false;
        return claimed_message{std::move(*m), opted_out};
      },
      [](const claimed_message& c) { return c.message.id; });
  });
}

std::vector<std::int64_t> pg_store::release_held(std::string_view node_id,
                                                 engine::epoch_ms now,
                                                 std::size_t limit) {
  return impl_->guarded("release_held", [&](driver& dr) {
    return sql_ops::release_held(dr, node_id, now, limit);
  });
}

std::optional<engine::message_record>
pg_store::find_message_by_sid(std::string_view message_sid) {
  return impl_->guarded("find_message_by_sid", [&](driver& dr) {
    return sql_ops::find_message_by_sid(dr, message_sid);
  });
}

engine::status_report_result
pg_store::record_status(const engine::status_report& r) {
  return impl_->guarded(
    "record_status", [&](driver& dr) { return sql_ops::record_status(dr, r); },
    true);
}

std::vector<engine::status_report>
pg_store::status_reports(std::string_view message_sid) {
  return impl_->guarded("status_reports", [&](driver& dr) {
    return sql_ops::status_reports(dr, message_sid);
  });
}

engine::gate_facts pg_store::gate_facts_for(const engine::gate_query& q) {
  return impl_->guarded("gate_facts_for", [&](driver& dr) {
    return sql_ops::gate_facts_for(dr, q);
  });
}

std::optional<engine::opt_out_state>
pg_store::find_opt_out(std::string_view tenant_id, std::string_view phone) {
  return impl_->guarded("find_opt_out", [&](driver& dr) {
    return sql_ops::find_opt_out(dr, tenant_id, phone);
  });
}

void pg_store::save_opt_out(const engine::opt_out_state& s) {
  impl_->guarded("save_opt_out",
                 [&](driver& dr) { sql_ops::save_opt_out(dr, s); });
}

std::vector<engine::opt_out_state>
pg_store::opted_out(std::string_view tenant_id) {
  return impl_->guarded("opted_out", [&](driver& dr) {
    return sql_ops::opted_out(dr, tenant_id);
  });
}

bool pg_store::insert_inbound(const engine::inbound_message& m) {
  return impl_->guarded("insert_inbound", [&](driver& dr) {
    return sql_ops::insert_inbound(dr, m);
  });
}

void pg_store::touch_contact(std::string_view tenant_id, std::string_view phone,
                             engine::epoch_ms at) {
  impl_->guarded("touch_contact", [&](driver& dr) {
    sql_ops::touch_contact(dr, tenant_id, phone, at);
  });
}

std::vector<engine::message_record>
pg_store::messages_for_call(std::string_view call_sid) {
  return impl_->guarded("messages_for_call", [&](driver& dr) {
    return sql_ops::messages_where(dr, sql_id::messages_for_call, call_sid,
                                   "messages_for_call");
  });
}

std::int64_t pg_store::insert_run(const engine::run_record& r) {
  return impl_->guarded("insert_run",
                        [&](driver& dr) { return sql_ops::insert_run(dr, r); });
}

bool pg_store::update_run(const engine::run_record& r,
                          std::int64_t expected_seq) {
  return impl_->guarded("update_run", [&](driver& dr) {
    return sql_ops::update_run(dr, r, expected_seq);
  });
}

std::optional<engine::run_record> pg_store::find_run(std::int64_t id) {
  return impl_->guarded("find_run",
                        [&](driver& dr) { return sql_ops::find_run(dr, id); });
}

std::vector<engine::run_record>
pg_store::unfinished_runs(std::string_view node_id,
                          engine::epoch_ms orphaned_before, std::size_t limit) {
  return impl_->guarded("unfinished_runs", [&](driver& dr) {
    return sql_ops::unfinished_runs(dr, node_id, orphaned_before, limit);
  });
}

std::vector<engine::run_record>
pg_store::runs_waiting_for_reply(std::string_view tenant_id,
                                 std::string_view contact) {
  return impl_->guarded("runs_waiting_for_reply", [&](driver& dr) {
    return sql_ops::runs_waiting_for_reply(dr, tenant_id, contact);
  });
}

std::vector<engine::run_record>
pg_store::runs_for_call(std::string_view call_sid) {
  return impl_->guarded("runs_for_call", [&](driver& dr) {
    return sql_ops::runs_for_call(dr, call_sid);
  });
}

void pg_store::insert_run_steps(
  const std::vector<engine::run_step_record>& steps) {
  impl_->add_rows(run_step_rows, steps.size(), [&](binder& b) {
    for (const auto& step : steps)
      store_detail::bind_run_step(b, step);
  });
}

std::vector<engine::run_step_record> pg_store::run_steps(std::int64_t run_id) {
  impl_->flush_pending();
  return impl_->guarded("run_steps", [&](driver& dr) {
    return sql_ops::run_steps(dr, run_id);
  });
}

void pg_store::save_workflow_version(const engine::workflow_version_record& v) {
  auto& d = *impl_;
  auto key = version_key(v);
  // Every run saves its workflow's version: after the first, a no-op.
  if (!(d.tx && d.tx_failed) && d.saved_versions.count(key) > 0)
    return;
  d.guarded("save_workflow_version",
            [&](driver& dr) { sql_ops::save_workflow_version(dr, v); });
  if (d.tx)
    d.versions_in_tx.push_back(std::move(key));
  else
    d.saved_versions.insert(std::move(key));
}

std::optional<engine::workflow_version_record> pg_store::find_workflow_version(
  std::string_view tenant_id, std::string_view name, std::string_view version) {
  return impl_->guarded("find_workflow_version", [&](driver& dr) {
    return sql_ops::find_workflow_version(dr, tenant_id, name, version);
  });
}

void pg_store::tag_contact(std::string_view tenant_id, std::string_view phone,
                           std::string_view tag, engine::epoch_ms at) {
  impl_->guarded(
    "tag_contact",
    [&](driver& dr) { sql_ops::tag_contact(dr, tenant_id, phone, tag, at); },
    true);
}

std::vector<std::string> pg_store::contact_tags(std::string_view tenant_id,
                                                std::string_view phone) {
  return impl_->guarded("contact_tags", [&](driver& dr) {
    return sql_ops::contact_tags(dr, tenant_id, phone);
  });
}

engine::conversation_record
pg_store::find_or_create_conversation(std::string_view tenant_id,
                                      std::string_view customer,
                                      std::string_view business_number,
                                      engine::epoch_ms now) {
  constexpr std::string_view op = "find_or_create_conversation";
  auto& d = *impl_;
  // Known conversations are read without a transaction or a lock.
  auto found = d.guarded(op, [&](driver& dr) {
    return sql_ops::find_conversation_by_customer(dr, tenant_id, customer, op);
  });
  if (found)
    return std::move(*found);
  // The lock on the tenant lasts until the end of the transaction: one of
  // its own outside an open one.
  return d.guarded(
    op,
    [&](driver& dr) {
      return sql_ops::create_conversation(dr, tenant_id, customer,
                                          business_number, now);
    },
    true);
}

std::optional<engine::conversation_record>
pg_store::find_conversation(std::int64_t id) {
  return impl_->guarded("find_conversation", [&](driver& dr) {
    return sql_ops::find_conversation(dr, id);
  });
}

std::optional<engine::conversation_record>
pg_store::find_conversation_by_ref(std::string_view tenant_id,
                                   std::int32_t ref) {
  return impl_->guarded("find_conversation_by_ref", [&](driver& dr) {
    return sql_ops::find_conversation_by_ref(dr, tenant_id, ref);
  });
}

bool pg_store::update_conversation(const engine::conversation_record& c,
                                   std::int64_t expected_seq) {
  return impl_->guarded("update_conversation", [&](driver& dr) {
    return sql_ops::update_conversation(dr, c, expected_seq);
  });
}

std::vector<engine::conversation_record>
pg_store::due_conversations(std::string_view tenant_id, engine::epoch_ms now,
                            std::size_t limit) {
  return impl_->guarded("due_conversations", [&](driver& dr) {
    return sql_ops::due_conversations(dr, tenant_id, now, limit);
  });
}

void pg_store::insert_conversation_messages(
  const std::vector<engine::conversation_message>& ms) {
  impl_->add_rows(conversation_message_rows, ms.size(), [&](binder& b) {
    for (const auto& m : ms)
      store_detail::bind_conversation_message(b, m);
  });
}

std::vector<engine::conversation_message>
pg_store::conversation_messages(std::int64_t conversation_id,
                                std::size_t limit) {
  impl_->flush_pending();
  return impl_->guarded("conversation_messages", [&](driver& dr) {
    return sql_ops::conversation_messages(dr, conversation_id, limit);
  });
}

void pg_store::insert_conversation_event(const engine::conversation_event& e) {
  impl_->add_rows(conversation_event_rows, 1, [&](binder& b) {
    store_detail::bind_conversation_event(b, e);
  });
}

std::vector<engine::conversation_event>
pg_store::conversation_events(std::int64_t conversation_id) {
  impl_->flush_pending();
  return impl_->guarded("conversation_events", [&](driver& dr) {
    return sql_ops::conversation_events(dr, conversation_id);
  });
}

void pg_store::set_owner_focus(std::string_view tenant_id,
                               std::int64_t conversation_id,
                               engine::epoch_ms at) {
  impl_->guarded("set_owner_focus", [&](driver& dr) {
    sql_ops::set_owner_focus(dr, tenant_id, conversation_id, at);
  });
}

std::optional<std::int64_t> pg_store::owner_focus(std::string_view tenant_id) {
  return impl_->guarded("owner_focus", [&](driver& dr) {
    return sql_ops::owner_focus(dr, tenant_id);
  });
}

engine::ai_usage pg_store::ai_usage_since(std::string_view tenant_id,
                                          engine::epoch_ms since) {
  impl_->flush_pending();
  return impl_->guarded("ai_usage_since", [&](driver& dr) {
    return sql_ops::ai_usage_since(dr, tenant_id, since);
  });
}

std::optional<engine::tenant> pg_store::find_tenant(std::string_view id) {
  return impl_->guarded("find_tenant", [&](driver& dr) {
    return sql_ops::find_tenant(dr, id);
  });
}

std::vector<engine::webhook_record>
pg_store::webhooks_for(std::string_view call_sid) {
  impl_->flush_pending();
  return impl_->guarded("webhooks_for", [&](driver& dr) {
    return sql_ops::webhooks_for(dr, call_sid);
  });
}

std::optional<engine::inbound_message>
pg_store::find_inbound(std::string_view message_sid) {
  return impl_->guarded("find_inbound", [&](driver& dr) {
    return sql_ops::find_inbound(dr, message_sid);
  });
}

std::optional<contact_record> pg_store::find_contact(std::string_view tenant_id,
                                                     std::string_view phone) {
  return impl_->guarded("find_contact", [&](driver& dr) {
    return sql_ops::find_contact(dr, tenant_id, phone);
  });
}

} // namespace ringback::adapters
