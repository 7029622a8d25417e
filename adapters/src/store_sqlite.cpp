#include "ringback/adapters/store/detail.hpp"
#include "ringback/adapters/store/sql_common.hpp"
#include "ringback/adapters/store/sqlite_store.hpp"
#include "ringback/adapters/store/sqlite_wal_buffer.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <utility>

namespace ringback::adapters {

namespace {

/// WAL pages past which `upkeep()` checkpoints (see `impl::open`).
constexpr int wal_checkpoint_pages = 1000;
/// WAL pages past which a commit checkpoints itself: for users that never
/// call `upkeep()` (tools, tests), and a bound if upkeep keeps failing.
constexpr int wal_commit_checkpoint_pages = 4000;

using store_detail::fail;
using store_detail::sql_id;
namespace sql_ops = store_detail::sql_ops;

constexpr std::string_view sqlite_backend = "sqlite";

/// A failed SQLite call; the operation boundary turns it into `port_error`.
struct sqlite_failure {
  std::string message;
};

/// Binds parameters 1, 2, ... of a statement in order.
class binder {
public:
  binder(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {
    // nop
  }

  /// Binds the bytes where they are, without SQLite's copy
  /// (`SQLITE_STATIC`): they must stay put until the statement is reset,
  /// which every bind here meets, since it reads a record or an argument
  /// that the caller holds across `execute` or `query` (the statement's
  /// `statement_use`). A temporary string would be gone by the step: that
  /// overload is deleted, so such a bind does not compile.
  binder& text(std::string_view x) {
    // A null data pointer would bind SQL NULL.
    return check(sqlite3_bind_text(stmt_, ++index_, x.empty() ? "" : x.data(),
                                   static_cast<int>(x.size()), SQLITE_STATIC));
  }
  binder& text(const std::string& x) {
    return text(std::string_view{x});
  }
  binder& text(const char* x) {
    return text(std::string_view{x});
  }
  binder& text(std::string&&) = delete;

  // SQLite keeps text bytes as given (no UTF-8 check), so raw bytes are
  // bound as text: ad-hoc queries like `WHERE call_sid = 'CA..'` still match.
  binder& bytes(std::string_view x) {
    return text(x);
  }
  binder& bytes(const std::string& x) {
    return text(std::string_view{x});
  }
  binder& bytes(std::string&&) = delete;

  binder& int64(std::int64_t x) {
    return check(sqlite3_bind_int64(stmt_, ++index_, x));
  }

  binder& int32(std::int32_t x) {
    return check(sqlite3_bind_int(stmt_, ++index_, x));
  }

  binder& boolean(bool x) {
    return check(sqlite3_bind_int(stmt_, ++index_, x ? 1 : 0));
  }

  binder& real(double x) {
    return check(sqlite3_bind_double(stmt_, ++index_, x));
  }

private:
  binder& check(int rc) {
    if (rc != SQLITE_OK)
      throw sqlite_failure{sqlite3_errmsg(db_)};
    return *this;
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int index_ = 0;
};

/// Reads the columns of the current result row.
class row {
public:
  explicit row(sqlite3_stmt* stmt) : stmt_(stmt) {
    // nop
  }

  std::string text(int i) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
    return p ? std::string(p, sqlite3_column_bytes(stmt_, i)) : std::string{};
  }

  std::string bytes(int i) const {
    auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, i));
    return p ? std::string(p, sqlite3_column_bytes(stmt_, i)) : std::string{};
  }

  std::int64_t int64(int i) const {
    return sqlite3_column_int64(stmt_, i);
  }

  std::int32_t int32(int i) const {
    return sqlite3_column_int(stmt_, i);
  }

  bool boolean(int i) const {
    return sqlite3_column_int(stmt_, i) != 0;
  }

  double real(int i) const {
    return sqlite3_column_double(stmt_, i);
  }

  bool null(int i) const {
    return sqlite3_column_type(stmt_, i) == SQLITE_NULL;
  }

private:
  sqlite3_stmt* stmt_;
};

/// Resets a cached statement when an operation is done with it, so that it
/// holds no read snapshot and points into no bound string.
class statement_use {
public:
  explicit statement_use(sqlite3_stmt* stmt) : stmt_(stmt) {
    // nop
  }

  ~statement_use() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  statement_use(const statement_use&) = delete;
  statement_use& operator=(const statement_use&) = delete;

private:
  sqlite3_stmt* stmt_;
};

bool is_identifier(std::string_view x) {
  return !x.empty() && std::all_of(x.begin(), x.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_';
  });
}

} // namespace

struct sqlite_store::impl {
  sqlite_store_options options;
  sqlite3* db = nullptr;
  std::array<sqlite3_stmt*, store_detail::sql_count> cache{};
  sqlite3_stmt* begin_stmt = nullptr;
  sqlite3_stmt* commit_stmt = nullptr;
  sqlite3_stmt* rollback_stmt = nullptr;
  bool in_tx = false;
  bool tx_failed = false;

  explicit impl(sqlite_store_options opts) : options(std::move(opts)) {
    open();
  }

  ~impl() {
    close();
  }

  void close() noexcept {
    for (auto*& stmt : cache) {
      sqlite3_finalize(stmt);
      stmt = nullptr;
    }
    for (auto** stmt : {&begin_stmt, &commit_stmt, &rollback_stmt}) {
      sqlite3_finalize(*stmt);
      *stmt = nullptr;
    }
    // Closing rolls back an open transaction.
    sqlite3_close_v2(db);
    db = nullptr;
  }

  void open() {
    const auto& path = options.path;
    if (path != ":memory:") {
      auto dir = std::filesystem::path(path).parent_path();
      std::error_code ec;
      if (!dir.empty() && !std::filesystem::is_directory(dir, ec))
        fail(sqlite_backend, "open",
             "cannot open '" + path + "': directory '" + dir.string()
               + "' does not exist");
    }
    auto flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                 | SQLITE_OPEN_NOMUTEX;
    // A file database writes its WAL through the buffering VFS (one write
    // per transaction, not two per page: sqlite_wal_buffer.hpp).
    const char* vfs
      = path == ":memory:" ? nullptr : sqlite_wal_buffer::vfs_name();
    if (auto rc = sqlite3_open_v2(path.c_str(), &db, flags, vfs);
        rc != SQLITE_OK) {
      std::string why = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
      sqlite3_close_v2(db);
      db = nullptr;
      fail(sqlite_backend, "open", "cannot open '" + path + "': " + why);
    }
    sqlite3_extended_result_codes(db, 1);
    try {
      sqlite3_busy_timeout(db, static_cast<int>(options.busy_timeout.count()));
      // WAL: readers never block the writer nor each other; NORMAL: commit
      // without fsync (a power loss may drop the last transactions, never
      // corrupt the file).
      if (path != ":memory:") {
        auto mode = pragma_value("journal_mode=WAL");
        if (mode != "wal")
          throw sqlite_failure{"journal_mode is '" + mode + "', not 'wal'"};
        // Checkpoints every 1,000 pages, SQLite's default interval, but not
        // in the commit that crosses it (SQLite's automatic checkpoint, which
        // would delay the answers to that commit's jobs): `upkeep()` runs it
        // once they have them. This hook replaces the automatic one. Longer
        // intervals saved checkpoint work but stalled the store for tens of
        // ms at a time (voice webhook p99 58 ms at 500 calls/s with 10,000
        // pages against 13 ms with 1,000: docs/benchmarks.md, "knee").
        sqlite3_wal_hook(db, &impl::on_wal_commit, this);
      }
      exec("PRAGMA synchronous=NORMAL");
      exec("PRAGMA foreign_keys=ON");
      // A 16 MiB page cache, not SQLite's 2 MiB: at load the indexes of the
      // busy tables outgrow 2 MiB and every miss is a pread (10 % of the
      // process's CPU at 750 calls/s). It fills only as far as it is used.
      exec("PRAGMA cache_size=-16384");
      begin_stmt = prepare("BEGIN IMMEDIATE");
      commit_stmt = prepare("COMMIT");
      rollback_stmt = prepare("ROLLBACK");
    } catch (const sqlite_failure& e) {
      close(); // the destructor does not run for a failed constructor
      fail(sqlite_backend, "open", "cannot open '" + path + "': " + e.message);
    }
  }

  sqlite3_stmt* prepare(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db, sql.c_str(), static_cast<int>(sql.size() + 1),
                           SQLITE_PREPARE_PERSISTENT, &stmt, nullptr)
        != SQLITE_OK)
      throw sqlite_failure{sqlite3_errmsg(db)};
    return stmt;
  }

  void exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db);
      sqlite3_free(err);
      throw sqlite_failure{std::move(msg)};
    }
  }

  /// Runs a cached statement to completion (no result rows expected).
  void run(sqlite3_stmt* stmt) {
    statement_use use{stmt};
    step(stmt);
  }

  bool step(sqlite3_stmt* stmt) {
    switch (sqlite3_step(stmt)) {
      case SQLITE_ROW:
        return true;
      case SQLITE_DONE:
        return false;
      default:
        throw sqlite_failure{sqlite3_errmsg(db)};
    }
  }

  /// First column of the first row of `sql` as text (empty: no row).
  std::string scalar(const std::string& sql) {
    auto* stmt = prepare(sql);
    std::string result;
    try {
      statement_use use{stmt};
      if (step(stmt))
        result = row{stmt}.text(0);
    } catch (...) {
      sqlite3_finalize(stmt);
      throw;
    }
    sqlite3_finalize(stmt);
    return result;
  }

  std::string pragma_value(const std::string& name) {
    return scalar("PRAGMA " + name);
  }

  sqlite3_stmt* cached(sql_id id) {
    auto& stmt = cache[static_cast<std::size_t>(id)];
    // Prepared on first use: before migrate() the tables do not exist yet.
    if (!stmt)
      stmt = prepare(
        store_detail::sql_text(id, store_detail::sql_dialect::sqlite));
    return stmt;
  }

  // -- the driver of sql_ops --------------------------------------------------

  static constexpr store_detail::sql_dialect dialect
    = store_detail::sql_dialect::sqlite;

  std::string_view backend() const {
    return sqlite_backend;
  }

  /// The rowid of the last row this connection inserted.
  std::int64_t last_insert_id() const {
    return sqlite3_last_insert_rowid(db);
  }

  template <class Bind>
  std::int64_t execute(sql_id id, Bind&& bind) {
    auto* stmt = cached(id);
    statement_use use{stmt};
    binder b{db, stmt};
    bind(b);
    while (step(stmt)) {
      // drain
    }
    return sqlite3_changes64(db);
  }

  /// A write whose result only `check` reads: run at once here.
  template <class Bind, class Check>
  void execute_later(sql_id id, Bind&& bind, Check&& check) {
    check(execute(id, std::forward<Bind>(bind)));
  }

  template <class Bind, class OnRow>
  void query(sql_id id, Bind&& bind, OnRow&& on_row) {
    auto* stmt = cached(id);
    statement_use use{stmt};
    binder b{db, stmt};
    bind(b);
    while (step(stmt))
      on_row(row{stmt});
  }

  /// Nothing to lock: a transaction holds SQLite's one write lock from
  /// `begin()` on (BEGIN IMMEDIATE), so transactions are serial already.
  void serialize(std::int64_t) {
    // nop
  }

  // -- checkpoints ------------------------------------------------------------

  /// Pages in the WAL after the last commit (SQLite's count: it falls when
  /// a writer starts the WAL over after a complete checkpoint).
  int wal_pages = 0;

  /// SQLite's WAL hook, called after each commit.
  static int on_wal_commit(void* self, sqlite3* conn, const char* schema,
                           int pages) {
    static_cast<impl*>(self)->wal_pages = pages;
    if (pages >= wal_commit_checkpoint_pages)
      sqlite3_wal_checkpoint_v2(conn, schema, SQLITE_CHECKPOINT_PASSIVE,
                                nullptr, nullptr);
    return SQLITE_OK;
  }

  /// A PASSIVE checkpoint (what SQLite's automatic one runs) if the WAL
  /// has grown past the interval.
  void checkpoint_if_due() {
    if (in_tx || wal_pages < wal_checkpoint_pages)
      return;
    auto rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                        nullptr, nullptr);
    if ((rc & 0xff) == SQLITE_BUSY)
      return; // another connection is checkpointing: after a later batch
    if (rc != SQLITE_OK)
      throw sqlite_failure{sqlite3_errmsg(db)};
    // Copied (or, with a reader in the way, as far as it could): the next
    // commit's count says where the WAL is.
    wal_pages = 0;
  }

  // -- operation boundary -----------------------------------------------------

  /// Runs `f` as operation `op`: refuses to work in an aborted transaction,
  /// turns SQLite failures into `port_error` and aborts the open transaction
  /// on any error.
  template <class F>
  auto guarded(std::string_view op, F&& f) -> decltype(f()) {
    if (in_tx && tx_failed)
      fail(sqlite_backend, op, store_detail::aborted_detail);
    try {
      return f();
    } catch (const sqlite_failure& e) {
      tx_failed = in_tx;
      fail(sqlite_backend, op, e.message);
    } catch (const engine::port_error&) {
      tx_failed = in_tx;
      throw;
    }
  }

  /// Runs `f` in the open transaction, or else in one of its own.
  template <class F>
  void atomically(F&& f) {
    if (in_tx) {
      f();
      return;
    }
    run(begin_stmt);
    try {
      f();
      run(commit_stmt);
    } catch (...) {
      abort_transaction();
      throw;
    }
  }

  void abort_transaction() noexcept {
    // SQLite may already have rolled back (e.g. after SQLITE_FULL).
    if (!sqlite3_get_autocommit(db)) {
      statement_use use{rollback_stmt};
      sqlite3_step(rollback_stmt);
    }
  }

  int max_version() {
    if (scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
               "name = 'schema_migrations'")
          .empty())
      return 0;
    return std::stoi(
      scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
  }
};

sqlite_store::sqlite_store(sqlite_store_options options)
  : impl_(std::make_unique<impl>(std::move(options))) {
  // nop
}

sqlite_store::sqlite_store(std::string path)
  : sqlite_store([&] {
      sqlite_store_options options;
      options.path = std::move(path);
      return options;
    }()) {
  // nop
}

sqlite_store::~sqlite_store() = default;

void sqlite_store::migrate() {
  auto& d = *impl_;
  if (d.in_tx)
    fail(sqlite_backend, "migrate", "cannot run inside a transaction");
  d.guarded("migrate", [&] {
    // BEGIN IMMEDIATE: concurrent migrators queue on the write lock (up to
    // the busy timeout) and then see what the first one applied.
    d.run(d.begin_stmt);
    try {
      d.exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
             "version INTEGER NOT NULL PRIMARY KEY, "
             "applied_at INTEGER NOT NULL)");
      auto current = d.max_version();
      auto* record = d.prepare(
        "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)");
      try {
        int previous = 0;
        for (const auto& m : d.options.migrations) {
          if (m.version <= previous)
            throw sqlite_failure{"migration versions must increase (version "
                                 + std::to_string(m.version) + ")"};
          previous = m.version;
          if (m.version <= current)
            continue;
          try {
            d.exec(m.sql.c_str());
          } catch (const sqlite_failure& e) {
            throw sqlite_failure{"version " + std::to_string(m.version) + " ("
                                 + m.description + "): " + e.message};
          }
          statement_use use{record};
          binder{d.db, record}.int32(m.version).int64(store_detail::now_ms());
          d.step(record);
        }
      } catch (...) {
        sqlite3_finalize(record);
        throw;
      }
      sqlite3_finalize(record);
      d.run(d.commit_stmt);
    } catch (...) {
      d.abort_transaction();
      throw;
    }
  });
}

int sqlite_store::schema_version() {
  return impl_->guarded("schema_version", [&] { return impl_->max_version(); });
}

void sqlite_store::begin() {
  auto& d = *impl_;
  if (d.in_tx)
    fail(sqlite_backend, "begin", "a transaction is already open");
  d.guarded("begin", [&] { d.run(d.begin_stmt); });
  d.in_tx = true;
  d.tx_failed = false;
}

void sqlite_store::commit() {
  auto& d = *impl_;
  if (!d.in_tx)
    fail(sqlite_backend, "commit", "no transaction is open");
  if (d.tx_failed) {
    rollback();
    fail(sqlite_backend, "commit", store_detail::commit_aborted_detail);
  }
  try {
    d.run(d.commit_stmt);
  } catch (const sqlite_failure& e) {
    // A failed COMMIT may leave the transaction open: close it either way.
    rollback();
    fail(sqlite_backend, "commit", e.message);
  }
  d.in_tx = false;
}

void sqlite_store::upkeep() {
  auto& d = *impl_;
  d.guarded("checkpoint", [&] { d.checkpoint_if_due(); });
}

void sqlite_store::rollback() {
  auto& d = *impl_;
  if (!d.in_tx)
    return;
  d.abort_transaction();
  d.in_tx = false;
  d.tx_failed = false;
}

bool sqlite_store::ping() {
  try {
    impl_->exec("SELECT 1");
    return true;
  } catch (const sqlite_failure&) {
    return false;
  }
}

void sqlite_store::upsert_tenant(const engine::tenant& t) {
  auto& d = *impl_;
  d.guarded("upsert_tenant", [&] {
    d.atomically([&] { sql_ops::upsert_tenant(d, t, store_detail::now_ms()); });
  });
}

bool sqlite_store::insert_call(const engine::call_record& c) {
  return impl_->guarded("insert_call",
                        [&] { return sql_ops::insert_call(*impl_, c); });
}

void sqlite_store::update_call(const engine::call_record& c) {
  impl_->guarded("update_call", [&] { sql_ops::update_call(*impl_, c); });
}

bool sqlite_store::decide_outcome(const engine::call_record& c) {
  return impl_->guarded("decide_outcome",
                        [&] { return sql_ops::decide_outcome(*impl_, c); });
}

std::optional<engine::call_record>
sqlite_store::find_call(std::string_view call_sid) {
  return impl_->guarded("find_call",
                        [&] { return sql_ops::find_call(*impl_, call_sid); });
}

std::vector<engine::call_record>
sqlite_store::unfinished_calls(std::string_view node_id,
                               engine::epoch_ms orphaned_before) {
  return impl_->guarded("unfinished_calls", [&] {
    return sql_ops::unfinished_calls(*impl_, node_id, orphaned_before);
  });
}

void sqlite_store::insert_webhook(const engine::webhook_record& w) {
  impl_->guarded("insert_webhook", [&] { sql_ops::insert_webhook(*impl_, w); });
}

std::int64_t sqlite_store::insert_message(const engine::message_record& m) {
  return impl_->guarded("insert_message",
                        [&] { return sql_ops::insert_message(*impl_, m); });
}

void sqlite_store::update_message(const engine::message_record& m) {
  auto& d = *impl_;
  d.guarded("update_message", [&] {
    // With a MessageSid it may apply recorded reports too: one transaction.
    if (m.message_sid.empty())
      sql_ops::update_message(d, m);
    else
      d.atomically([&] { sql_ops::update_message(d, m); });
  });
}

std::optional<engine::message_record>
sqlite_store::find_message(std::int64_t id) {
  return impl_->guarded("find_message",
                        [&] { return sql_ops::find_message(*impl_, id); });
}

std::vector<engine::message_record>
sqlite_store::pending_messages(std::string_view node_id) {
  return impl_->guarded("pending_messages", [&] {
    return sql_ops::messages_where(*impl_, sql_id::pending_messages, node_id,
                                   "pending_messages");
  });
}

std::optional<engine::message_record>
sqlite_store::claim_message(std::int64_t id, std::string_view node_id,
                            engine::epoch_ms now) {
  return impl_->guarded("claim_message", [&] {
    return sql_ops::claim_message(*impl_, id, node_id, now);
  });
}

std::vector<std::int64_t> sqlite_store::release_held(std::string_view node_id,
                                                     engine::epoch_ms now,
                                                     std::size_t limit) {
  return impl_->guarded("release_held", [&] {
    return sql_ops::release_held(*impl_, node_id, now, limit);
  });
}

std::optional<engine::message_record>
sqlite_store::find_message_by_sid(std::string_view message_sid) {
  return impl_->guarded("find_message_by_sid", [&] {
    return sql_ops::find_message_by_sid(*impl_, message_sid);
  });
}

engine::status_report_result
sqlite_store::record_status(const engine::status_report& r) {
  auto& d = *impl_;
  return d.guarded("record_status", [&] {
    engine::status_report_result result;
    d.atomically([&] { result = sql_ops::record_status(d, r); });
    return result;
  });
}

std::vector<engine::status_report>
sqlite_store::status_reports(std::string_view message_sid) {
  return impl_->guarded("status_reports", [&] {
    return sql_ops::status_reports(*impl_, message_sid);
  });
}

engine::gate_facts sqlite_store::gate_facts_for(const engine::gate_query& q) {
  return impl_->guarded("gate_facts_for",
                        [&] { return sql_ops::gate_facts_for(*impl_, q); });
}

std::optional<engine::opt_out_state>
sqlite_store::find_opt_out(std::string_view tenant_id, std::string_view phone) {
  return impl_->guarded("find_opt_out", [&] {
    return sql_ops::find_opt_out(*impl_, tenant_id, phone);
  });
}

void sqlite_store::save_opt_out(const engine::opt_out_state& s) {
  impl_->guarded("save_opt_out", [&] { sql_ops::save_opt_out(*impl_, s); });
}

std::vector<engine::opt_out_state>
sqlite_store::opted_out(std::string_view tenant_id) {
  return impl_->guarded("opted_out",
                        [&] { return sql_ops::opted_out(*impl_, tenant_id); });
}

bool sqlite_store::insert_inbound(const engine::inbound_message& m) {
  return impl_->guarded("insert_inbound",
                        [&] { return sql_ops::insert_inbound(*impl_, m); });
}

engine::inbound_claim
sqlite_store::consume_inbound(std::string_view message_sid,
                              engine::inbound_consumer consumer) {
  return impl_->guarded("consume_inbound", [&] {
    return sql_ops::consume_inbound(*impl_, message_sid, consumer);
  });
}

void sqlite_store::restore_inbound(std::string_view message_sid,
                                   engine::inbound_consumer consumer) {
  impl_->guarded("restore_inbound", [&] {
    sql_ops::restore_inbound(*impl_, message_sid, consumer);
  });
}

std::vector<engine::inbound_message>
sqlite_store::pending_inbound(std::string_view tenant_id,
                              std::string_view node_id, engine::epoch_ms since,
                              engine::epoch_ms orphaned_before,
                              std::size_t limit) {
  return impl_->guarded("pending_inbound", [&] {
    return sql_ops::pending_inbound(*impl_, tenant_id, node_id, since,
                                    orphaned_before, limit);
  });
}

void sqlite_store::touch_contact(std::string_view tenant_id,
                                 std::string_view phone, engine::epoch_ms at) {
  impl_->guarded("touch_contact",
                 [&] { sql_ops::touch_contact(*impl_, tenant_id, phone, at); });
}

std::vector<engine::message_record>
sqlite_store::messages_for_call(std::string_view call_sid) {
  return impl_->guarded("messages_for_call", [&] {
    return sql_ops::messages_where(*impl_, sql_id::messages_for_call, call_sid,
                                   "messages_for_call");
  });
}

std::int64_t sqlite_store::insert_run(const engine::run_record& r) {
  return impl_->guarded("insert_run",
                        [&] { return sql_ops::insert_run(*impl_, r); });
}

bool sqlite_store::update_run(const engine::run_record& r,
                              std::int64_t expected_seq) {
  return impl_->guarded("update_run", [&] {
    return sql_ops::update_run(*impl_, r, expected_seq);
  });
}

std::optional<engine::run_record> sqlite_store::find_run(std::int64_t id) {
  return impl_->guarded("find_run",
                        [&] { return sql_ops::find_run(*impl_, id); });
}

std::vector<engine::run_record>
sqlite_store::unfinished_runs(std::string_view node_id,
                              engine::epoch_ms orphaned_before,
                              std::size_t limit) {
  return impl_->guarded("unfinished_runs", [&] {
    return sql_ops::unfinished_runs(*impl_, node_id, orphaned_before, limit);
  });
}

std::vector<engine::run_record>
sqlite_store::runs_waiting_for_reply(std::string_view tenant_id,
                                     std::string_view contact) {
  return impl_->guarded("runs_waiting_for_reply", [&] {
    return sql_ops::runs_waiting_for_reply(*impl_, tenant_id, contact);
  });
}

std::vector<engine::run_record>
sqlite_store::runs_for_call(std::string_view call_sid) {
  return impl_->guarded("runs_for_call", [&] {
    return sql_ops::runs_for_call(*impl_, call_sid);
  });
}

void sqlite_store::insert_run_steps(
  const std::vector<engine::run_step_record>& steps) {
  auto& d = *impl_;
  d.guarded("insert_run_steps", [&] {
    if (steps.empty())
      return; // no transaction (and no write lock) for nothing
    d.atomically([&] { sql_ops::insert_run_steps(d, steps); });
  });
}

std::vector<engine::run_step_record>
sqlite_store::run_steps(std::int64_t run_id) {
  return impl_->guarded("run_steps",
                        [&] { return sql_ops::run_steps(*impl_, run_id); });
}

void sqlite_store::save_workflow_version(
  const engine::workflow_version_record& v) {
  impl_->guarded("save_workflow_version",
                 [&] { sql_ops::save_workflow_version(*impl_, v); });
}

std::optional<engine::workflow_version_record>
sqlite_store::find_workflow_version(std::string_view tenant_id,
                                    std::string_view name,
                                    std::string_view version) {
  return impl_->guarded("find_workflow_version", [&] {
    return sql_ops::find_workflow_version(*impl_, tenant_id, name, version);
  });
}

void sqlite_store::tag_contact(std::string_view tenant_id,
                               std::string_view phone, std::string_view tag,
                               engine::epoch_ms at) {
  auto& d = *impl_;
  d.guarded("tag_contact", [&] {
    d.atomically([&] { sql_ops::tag_contact(d, tenant_id, phone, tag, at); });
  });
}

std::vector<std::string> sqlite_store::contact_tags(std::string_view tenant_id,
                                                    std::string_view phone) {
  return impl_->guarded("contact_tags", [&] {
    return sql_ops::contact_tags(*impl_, tenant_id, phone);
  });
}

engine::conversation_record
sqlite_store::find_or_create_conversation(std::string_view tenant_id,
                                          std::string_view customer,
                                          std::string_view business_number,
                                          engine::epoch_ms now) {
  constexpr std::string_view op = "find_or_create_conversation";
  auto& d = *impl_;
  return d.guarded(op, [&] {
    // Known conversations are read without the write lock.
    if (auto c = sql_ops::find_conversation_by_customer(d, tenant_id, customer,
                                                        op))
      return std::move(*c);
    engine::conversation_record c;
    d.atomically([&] {
      c = sql_ops::create_conversation(d, tenant_id, customer, business_number,
                                       now);
    });
    return c;
  });
}

std::optional<engine::conversation_record>
sqlite_store::find_conversation(std::int64_t id) {
  return impl_->guarded("find_conversation",
                        [&] { return sql_ops::find_conversation(*impl_, id); });
}

std::optional<engine::conversation_record>
sqlite_store::find_conversation_by_ref(std::string_view tenant_id,
                                       std::int32_t ref) {
  return impl_->guarded("find_conversation_by_ref", [&] {
    return sql_ops::find_conversation_by_ref(*impl_, tenant_id, ref);
  });
}

bool sqlite_store::update_conversation(const engine::conversation_record& c,
                                       std::int64_t expected_seq) {
  return impl_->guarded("update_conversation", [&] {
    return sql_ops::update_conversation(*impl_, c, expected_seq);
  });
}

std::vector<engine::conversation_record>
sqlite_store::due_conversations(std::string_view tenant_id,
                                engine::epoch_ms now, std::size_t limit) {
  return impl_->guarded("due_conversations", [&] {
    return sql_ops::due_conversations(*impl_, tenant_id, now, limit);
  });
}

void sqlite_store::insert_conversation_messages(
  const std::vector<engine::conversation_message>& ms) {
  auto& d = *impl_;
  d.guarded("insert_conversation_messages", [&] {
    if (ms.empty())
      return; // no transaction (and no write lock) for nothing
    d.atomically([&] { sql_ops::insert_conversation_messages(d, ms); });
  });
}

std::vector<engine::conversation_message>
sqlite_store::conversation_messages(std::int64_t conversation_id,
                                    std::size_t limit) {
  return impl_->guarded("conversation_messages", [&] {
    return sql_ops::conversation_messages(*impl_, conversation_id, limit);
  });
}

void sqlite_store::insert_conversation_event(
  const engine::conversation_event& e) {
  impl_->guarded("insert_conversation_event",
                 [&] { sql_ops::insert_conversation_event(*impl_, e); });
}

std::vector<engine::conversation_event>
sqlite_store::conversation_events(std::int64_t conversation_id) {
  return impl_->guarded("conversation_events", [&] {
    return sql_ops::conversation_events(*impl_, conversation_id);
  });
}

void sqlite_store::set_owner_focus(std::string_view tenant_id,
                                   std::int64_t conversation_id,
                                   engine::epoch_ms at) {
  impl_->guarded("set_owner_focus", [&] {
    sql_ops::set_owner_focus(*impl_, tenant_id, conversation_id, at);
  });
}

std::optional<std::int64_t>
sqlite_store::owner_focus(std::string_view tenant_id) {
  return impl_->guarded("owner_focus", [&] {
    return sql_ops::owner_focus(*impl_, tenant_id);
  });
}

engine::ai_usage sqlite_store::ai_usage_since(std::string_view tenant_id,
                                              engine::epoch_ms since) {
  return impl_->guarded("ai_usage_since", [&] {
    return sql_ops::ai_usage_since(*impl_, tenant_id, since);
  });
}

std::optional<engine::tenant> sqlite_store::find_tenant(std::string_view id) {
  return impl_->guarded("find_tenant",
                        [&] { return sql_ops::find_tenant(*impl_, id); });
}

std::vector<engine::webhook_record>
sqlite_store::webhooks_for(std::string_view call_sid) {
  return impl_->guarded("webhooks_for", [&] {
    return sql_ops::webhooks_for(*impl_, call_sid);
  });
}

std::optional<engine::inbound_message>
sqlite_store::find_inbound(std::string_view message_sid) {
  return impl_->guarded("find_inbound", [&] {
    return sql_ops::find_inbound(*impl_, message_sid);
  });
}

std::optional<contact_record>
sqlite_store::find_contact(std::string_view tenant_id, std::string_view phone) {
  return impl_->guarded("find_contact", [&] {
    return sql_ops::find_contact(*impl_, tenant_id, phone);
  });
}

std::string sqlite_store::pragma(std::string_view name) {
  if (!is_identifier(name))
    fail(sqlite_backend, "pragma",
         "not a pragma name: '" + std::string(name) + "'");
  return impl_->guarded("pragma",
                        [&] { return impl_->pragma_value(std::string(name)); });
}

} // namespace ringback::adapters
