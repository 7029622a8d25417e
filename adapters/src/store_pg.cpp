#include "ringback/adapters/store/detail.hpp"
#include "ringback/adapters/store/pg_store.hpp"
#include "ringback/adapters/store/sql_common.hpp"

#include <libpq-fe.h>
#include <pqxx/pqxx>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
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
constexpr const char* advisory_lock_sql
  = "SELECT pg_advisory_xact_lock($1::bigint)";

/// The libpq connection under a pqxx transaction (pqxx 6 hands it to
/// subclasses of `largeobject` only).
struct raw_connection_of : pqxx::largeobject {
  static PGconn* get(const pqxx::dbtransaction& t) {
    return raw_connection(t);
  }
};

struct result_free {
  void operator()(PGresult* r) const {
    PQclear(r);
  }
};
using result_ptr = std::unique_ptr<PGresult, result_free>;

/// A row of a libpq result in text format, read like `row`.
class raw_row {
public:
  raw_row(const PGresult* r, int i) : r_(r), i_(i) {
    // nop
  }

  std::string text(int c) const {
    return {PQgetvalue(r_, i_, c),
            static_cast<std::size_t>(PQgetlength(r_, i_, c))};
  }

  std::string bytes(int c) const {
    std::size_t n = 0;
    auto* p = PQunescapeBytea(
      reinterpret_cast<const unsigned char*>(PQgetvalue(r_, i_, c)), &n);
    if (p == nullptr)
      throw std::bad_alloc{};
    std::string result{reinterpret_cast<const char*>(p), n};
    PQfreemem(p);
    return result;
  }

  std::int64_t int64(int c) const {
    return number<std::int64_t>(c);
  }

  std::int32_t int32(int c) const {
    return number<std::int32_t>(c);
  }

  bool boolean(int c) const {
    std::string_view x = PQgetvalue(r_, i_, c);
    if (x == "t" || x == "true" || x == "1")
      return true;
    if (x == "f" || x == "false" || x == "0")
      return false;
    throw_bad(c, "a boolean");
  }

  double real(int c) const {
    return number<double>(c);
  }

  bool null(int c) const {
    return PQgetisnull(r_, i_, c) != 0;
  }

private:
  template <class T>
  T number(int c) const {
    std::string_view x{PQgetvalue(r_, i_, c),
                       static_cast<std::size_t>(PQgetlength(r_, i_, c))};
    T value{};
    auto [end, ec] = std::from_chars(x.data(), x.data() + x.size(), value);
    if (x.empty() || ec != std::errc{} || end != x.data() + x.size())
      throw_bad(c, "a number");
    return value;
  }

  [[noreturn]] void throw_bad(int c, std::string_view what) const {
    throw std::domain_error{"column " + std::to_string(c) + " ('"
                            + PQgetvalue(r_, i_, c) + "') is not "
                            + std::string{what}};
  }

  const PGresult* r_;
  int i_;
};

/// A transaction's statements over libpq's pipeline mode: a write whose
/// result only a check reads waits, and goes to the server with the next
/// statement whose result is needed (or at the commit), in one round trip
/// for all of them. An advisory lock and the statement after it cost one
/// round trip, not two; so do a call's update and the read after it. The
/// order on the server is the order of the calls, so what a statement reads
/// is what the writes before it left. Statements are prepared by this
/// class, under names of its own, on first use on each connection.
class statement_pipe {
public:
  /// The advisory lock, numbered after the `sql_id`s.
  static constexpr std::size_t lock = store_detail::sql_count;

  /// Writes waiting at most: then they go without waiting for more.
  static constexpr std::size_t max_waiting = 256;

  /// Uses `c` for the transaction that begins; forgets what was prepared when
  /// it is not the connection (or the server process) of the last one.
  void attach(PGconn* c) {
    int pid = PQbackendPID(c);
    if (c != prepared_on_ || pid != backend_pid_) {
      prepared_.fill(false);
      ids_.clear();
    }
    conn_ = c;
    prepared_on_ = c;
    backend_pid_ = pid;
    lost_ = false;
    waiting_.clear();
  }

  /// Forgets the writes waiting (the transaction ends without them).
  void detach() {
    waiting_.clear();
    conn_ = nullptr;
  }

  /// Ids taken ahead are used for at most this long after they were taken:
  /// an id tells roughly when its row was written, as a sequence's does.
  static constexpr std::chrono::milliseconds ids_keep{1000};

  /// A new id of `table` (its sequence's next), for an insert that waits.
  /// Taken in blocks, one round trip each: 4 ids, twice as many after a
  /// block used up (up to 64), half as many after one left unused for
  /// `ids_keep` (whose rest is dropped: gaps, as any sequence's).
  std::int64_t next_id(const char* table) {
    auto& block = ids_[table];
    auto now = std::chrono::steady_clock::now();
    if (block.used < block.ids.size() && now - block.taken > ids_keep) {
      block.ids.clear();
      block.used = 0;
      block.next_size = std::max<std::size_t>(4, block.next_size / 2);
    }
    if (block.used == block.ids.size()) {
      auto stmt = static_cast<std::size_t>(sql_id::next_ids);
      std::vector<std::string> params{table, std::to_string(block.next_size)};
      auto r = exchange(&stmt, &params);
      block.ids.clear();
      block.used = 0;
      for (int i = 0, n = PQntuples(r.get()); i < n; ++i)
        block.ids.push_back(raw_row{r.get(), i}.int64(0));
      if (block.ids.empty())
        throw std::runtime_error{std::string{"no ids for "} + table};
      block.taken = now;
      block.next_size = std::min<std::size_t>(64, block.next_size * 2);
    }
    return block.ids[block.used++];
  }

  /// The last exchange broke off midway: the connection is unusable.
  bool lost() const {
    return lost_;
  }

  /// Round trips to the server so far.
  std::uint64_t round_trips() const {
    return round_trips_;
  }

  /// Queues statement `stmt` with `params`; `check(rows affected)` runs when
  /// its result arrives and may throw. `op` names it in errors.
  void defer(std::size_t stmt, std::vector<std::string> params,
             std::string_view op, std::function<void(std::int64_t)> check) {
    waiting_.push_back(
      {stmt, {}, std::move(params), std::string{op}, std::move(check)});
    if (waiting_.size() >= max_waiting)
      flush();
  }

  /// Queues `sql`, a statement not prepared (the audit rows' multi-row
  /// inserts, whose text depends on the number of rows).
  void defer_sql(std::string sql, std::vector<std::string> params,
                 std::string_view op) {
    waiting_.push_back(
      {0, std::move(sql), std::move(params), std::string{op}, {}});
    if (waiting_.size() >= max_waiting)
      flush();
  }

  /// Sends the writes waiting, then `stmt`, and returns its result.
  result_ptr run(std::size_t stmt, const std::vector<std::string>& params) {
    return exchange(&stmt, &params);
  }

  /// Sends the writes waiting, if any.
  void flush() {
    if (!waiting_.empty())
      exchange(nullptr, nullptr);
  }

  /// Rows a result reports changed (0 for a query's).
  static std::int64_t affected(const PGresult* r) {
    std::string_view x = PQcmdTuples(const_cast<PGresult*>(r));
    std::int64_t n = 0;
    std::from_chars(x.data(), x.data() + x.size(), n);
    return n;
  }

private:
  struct waiting {
    std::size_t stmt;
    std::string sql; ///< when not empty: sent as is, `stmt` unused
    std::vector<std::string> params;
    std::string op;
    std::function<void(std::int64_t)> check;
  };

  /// The pipe's name of a prepared statement ("p_" and the driver's).
  static const char* name(std::size_t stmt) {
    static const auto names = [] {
      std::vector<std::string> xs;
      for (std::size_t i = 0; i < store_detail::sql_count; ++i)
        xs.push_back(
          "p_" + std::string{store_detail::sql_name(static_cast<sql_id>(i))});
      xs.emplace_back("p_advisory_xact_lock");
      return xs;
    }();
    return names[stmt].c_str();
  }

  static const char* sql(std::size_t stmt) {
    return stmt == lock
             ? advisory_lock_sql
             : store_detail::sql_text(static_cast<sql_id>(stmt),
                                      store_detail::sql_dialect::postgresql)
                 .c_str();
  }

  [[noreturn]] void broken(const std::string& why) {
    throw pqxx::broken_connection{why.empty() ? std::string{"no answer"} : why};
  }

  /// The parameters as libpq takes them (text, null-terminated).
  static std::vector<const char*>
  values_of(const std::vector<std::string>& params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params)
      values.push_back(p.c_str());
    return values;
  }

  void send(std::size_t stmt, const std::vector<std::string>& params) {
    if (!prepared_[stmt] && !sending_prepare_[stmt]) {
      if (PQsendPrepare(conn_, name(stmt), sql(stmt), 0, nullptr) != 1)
        broken(PQerrorMessage(conn_));
      sending_prepare_[stmt] = true;
      order_.push_back({stmt, true});
    }
    auto values = values_of(params);
    if (PQsendQueryPrepared(conn_, name(stmt), static_cast<int>(values.size()),
                            values.data(), nullptr, nullptr, 0)
        != 1)
      broken(PQerrorMessage(conn_));
    order_.push_back({stmt, false});
  }

  void send_sql(const std::string& text,
                const std::vector<std::string>& params) {
    auto values = values_of(params);
    if (PQsendQueryParams(conn_, text.c_str(), static_cast<int>(values.size()),
                          nullptr, values.data(), nullptr, nullptr, 0)
        != 1)
      broken(PQerrorMessage(conn_));
    order_.push_back({0, false});
  }

  /// Reads one statement's result (and the end of its results).
  result_ptr next_result() {
    result_ptr r{PQgetResult(conn_)};
    if (!r)
      broken(PQerrorMessage(conn_));
    if (PQresultStatus(r.get()) == PGRES_FATAL_ERROR && first_error_.empty())
      first_error_ = PQresultErrorMessage(r.get());
    // Each statement's results end with a null (one result each here; a
    // broken connection may give more errors, but not without end).
    for (int more = 0;; ++more) {
      result_ptr extra{PQgetResult(conn_)};
      if (!extra)
        break;
      if (more == 8)
        broken(PQerrorMessage(conn_));
    }
    return r;
  }

  /// One round trip: the writes waiting, then `stmt` if given. Every result
  /// is read before an error of the server's is thrown, so the connection is
  /// left idle and out of pipeline mode; if the connection broke off
  /// instead, `lost()` tells the owner to drop it.
  result_ptr exchange(const std::size_t* stmt,
                      const std::vector<std::string>* params) {
    if (conn_ == nullptr)
      throw std::logic_error{"statement_pipe: no transaction"};
    auto batch = std::move(waiting_);
    waiting_.clear();
    order_.clear();
    first_error_.clear();
    sending_prepare_.fill(false);
    if (PQenterPipelineMode(conn_) != 1)
      broken(PQerrorMessage(conn_));
    std::vector<result_ptr> results;
    try {
      for (const auto& w : batch) {
        if (w.sql.empty())
          send(w.stmt, w.params);
        else
          send_sql(w.sql, w.params);
      }
      if (stmt != nullptr)
        send(*stmt, *params);
      if (PQpipelineSync(conn_) != 1)
        broken(PQerrorMessage(conn_));
      ++round_trips_;
      for (const auto& [s, is_prepare] : order_) {
        auto r = next_result();
        if (is_prepare) {
          if (PQresultStatus(r.get()) == PGRES_COMMAND_OK)
            prepared_[s] = true;
          continue;
        }
        results.push_back(std::move(r));
      }
      result_ptr sync{PQgetResult(conn_)};
      if (!sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC)
        broken(PQerrorMessage(conn_));
    } catch (...) {
      // Results may be left unread: the owner drops the connection.
      lost_ = true;
      conn_ = nullptr;
      throw;
    }
    if (PQexitPipelineMode(conn_) != 1) {
      lost_ = true;
      broken(PQerrorMessage(conn_));
    }
    // The writes' results, in order: the first error. The statements after
    // an error were not run (PGRES_PIPELINE_ABORTED, no message of their
    // own): they report the error that aborted them.
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto* r = results[i].get();
      if (!ok(r))
        fail(pg_backend, batch[i].op, one_line(first_error_));
      if (batch[i].check)
        batch[i].check(affected(r));
    }
    if (stmt == nullptr)
      return nullptr;
    auto last = std::move(results.back());
    if (!ok(last.get()))
      throw std::runtime_error{first_error_};
    return last;
  }

  static bool ok(const PGresult* r) {
    auto status = PQresultStatus(r);
    return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
  }

  PGconn* conn_ = nullptr;
  /// The connection (and server process) `prepared_` is about.
  PGconn* prepared_on_ = nullptr;
  int backend_pid_ = 0;
  std::array<bool, store_detail::sql_count + 1> prepared_{};
  std::array<bool, store_detail::sql_count + 1> sending_prepare_{};
  /// What was sent in the exchange in progress: statement, and whether it
  /// was its Parse.
  std::vector<std::pair<std::size_t, bool>> order_;
  std::vector<waiting> waiting_;
  /// Ids taken ahead (`next_id`), by table; on this connection only.
  struct id_block {
    std::vector<std::int64_t> ids;
    std::size_t used = 0;
    std::size_t next_size = 4;
    std::chrono::steady_clock::time_point taken;
  };
  std::map<std::string, id_block, std::less<>> ids_;
  /// The server's first error message in the exchange in progress.
  std::string first_error_;
  bool lost_ = false;
  std::uint64_t round_trips_ = 0;
};

/// Runs the prepared statements in one pqxx transaction (or nontransaction);
/// in the store's open transaction, through its `statement_pipe`.
class driver {
public:
  /// `transactional`: `tx` is a transaction (locks last until its end), not
  /// autocommit. `pipe`: the open transaction's, or null. `op` names the
  /// operation in the errors of writes sent later.
  /// `trips`: counts the statements sent one by one in the open transaction
  /// (null elsewhere).
  driver(pqxx::transaction_base& tx, bool transactional,
         statement_pipe* pipe = nullptr, std::string_view op = {},
         std::uint64_t* trips = nullptr)
    : tx_(tx),
      transactional_(transactional),
      pipe_(pipe),
      op_(op),
      trips_(trips) {
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
    if (pipe_ != nullptr)
      return statement_pipe::affected(
        pipe_->run(static_cast<std::size_t>(id), params_of(bind)).get());
    return static_cast<std::int64_t>(run(id, bind).affected_rows());
  }

  /// In the open transaction the write waits for the next statement or the
  /// commit (`statement_pipe`); `check` runs when its result arrives.
  template <class Bind, class Check>
  void execute_later(sql_id id, Bind&& bind, Check&& check) {
    if (pipe_ == nullptr) {
      check(execute(id, bind));
      return;
    }
    pipe_->defer(static_cast<std::size_t>(id), params_of(bind), op_,
                 std::forward<Check>(check));
  }

  template <class Bind, class OnRow>
  void query(sql_id id, Bind&& bind, OnRow&& on_row) {
    if (pipe_ != nullptr) {
      auto result = pipe_->run(static_cast<std::size_t>(id), params_of(bind));
      for (int i = 0, n = PQntuples(result.get()); i < n; ++i)
        on_row(raw_row{result.get(), i});
      return;
    }
    auto result = run(id, bind);
    for (const auto& r : result)
      on_row(row{r});
  }

  /// `pg_advisory_xact_lock(key)`: waits for the transactions holding it,
  /// then holds it until this transaction ends. In autocommit mode there is
  /// nothing to hold it for: a no-op. In the open transaction it goes with
  /// the statement after it, which waits for it on the server.
  void serialize(std::int64_t key) {
    if (pipe_ != nullptr)
      pipe_->defer(statement_pipe::lock, {std::to_string(key)}, op_, {});
    else if (transactional_) {
      count_trip();
      tx_.exec_prepared(advisory_lock_statement, key);
    }
  }

  /// In the open transaction: takes the new row's id ahead (`statement_pipe::
  /// next_id`) and queues the insert (`with_id` binds the id last) like
  /// `execute_later`'s writes; elsewhere nullopt (the caller inserts with
  /// RETURNING).
  template <class Bind>
  std::optional<std::int64_t>
  insert_later(sql_id with_id, const char* table, Bind&& bind) {
    if (pipe_ == nullptr)
      return std::nullopt;
    auto id = pipe_->next_id(table);
    auto params = params_of(bind);
    params.push_back(std::to_string(id));
    pipe_->defer(static_cast<std::size_t>(with_id), std::move(params), op_, {});
    return id;
  }

  /// Counts a statement sent one by one in the open transaction.
  void count_trip() {
    if (trips_ != nullptr)
      ++*trips_;
  }

private:
  template <class Bind>
  static std::vector<std::string> params_of(Bind& bind) {
    std::vector<std::string> params;
    binder b{params};
    bind(b);
    return params;
  }

  template <class Bind>
  pqxx::result run(sql_id id, Bind& bind) {
    count_trip();
    return tx_.exec_prepared(store_detail::sql_name(id),
                             pqxx::prepare::make_dynamic_params(
                               params_of(bind)));
  }

  pqxx::transaction_base& tx_;
  bool transactional_;
  statement_pipe* pipe_;
  std::string_view op_;
  std::uint64_t* trips_;
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

/// Calls `f(n, first, last)` for each statement that writes `rows` to table
/// `t`: `n` rows, their parameters in [first, last), as many rows per
/// statement as the parameter limit allows. Returns the number of statements.
template <class F>
std::size_t for_each_statement(audit_table t, const audit_rows& rows, F&& f) {
  const auto& shape = audit_shape(t);
  const auto per = shape.max_rows();
  const auto columns = shape.columns();
  std::size_t statements = 0;
  for (std::size_t first = 0; first < rows.count; first += per, ++statements) {
    auto n = std::min(per, rows.count - first);
    auto begin = rows.params.begin()
                 + static_cast<std::ptrdiff_t>(first * columns);
    f(n, begin, begin + static_cast<std::ptrdiff_t>(n * columns));
  }
  return statements;
}

/// Writes `rows` to table `t` (`for_each_statement`); returns the number of
/// statements. A single row goes through the prepared one-row statement (no
/// parse and plan on the server).
std::size_t write_rows(pqxx::transaction_base& tx, audit_table t,
                       const audit_rows& rows) {
  return for_each_statement(t, rows, [&](std::size_t n, auto first, auto last) {
    auto params = pqxx::prepare::make_dynamic_params(first, last);
    if (n == 1)
      tx.exec_prepared(store_detail::sql_name(audit_inserts[t].id), params);
    else
      tx.exec_params(audit_shape(t).sql(n), params);
  });
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
  /// The open transaction's statements (see `statement_pipe`).
  statement_pipe pipe;
  /// Statements sent one by one in transactions (`pg_store_options::pipeline`
  /// false).
  std::uint64_t one_by_one_trips = 0;
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
      conn->prepare(advisory_lock_statement, advisory_lock_sql);
    }
    return *conn;
  }

  /// Forgets the connection (the transaction first: it refers to it). The
  /// pqxx destructors do not throw; they roll back what is still open.
  void drop() noexcept {
    pipe.detach();
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

  /// Queues `rows` of table `t` in the open transaction's pipe: with the
  /// writes waiting, they go to the server with the next statement or the
  /// commit (like `write_rows`: the prepared one-row statement for one row,
  /// else as many rows per statement as the parameter limit allows).
  void defer_rows(audit_table t, const audit_rows& rows) {
    const auto op = audit_inserts[t].op;
    for_each_statement(t, rows, [&](std::size_t n, auto first, auto last) {
      std::vector<std::string> params{first, last};
      if (n == 1)
        pipe.defer(static_cast<std::size_t>(audit_inserts[t].id),
                   std::move(params), op, {});
      else
        pipe.defer_sql(audit_shape(t).sql(n), std::move(params), op);
    });
  }

  /// Queues the audit rows the open transaction collected (`defer_rows`);
  /// the next statement or the commit sends them. A failure aborts the
  /// transaction and names the operation that added the rows.
  void flush_pending() {
    if (!tx)
      return;
    for (std::size_t i = 0; i < pending.size(); ++i) {
      if (pending[i].count == 0)
        continue;
      auto t = static_cast<audit_table>(i);
      auto rows = std::move(pending[i]);
      pending[i] = audit_rows{};
      guarded(audit_inserts[i].op, [&](driver& dr) {
        if (options.pipeline)
          defer_rows(t, rows);
        else
          one_by_one_trips += write_rows(dr.tx(), t, rows);
      });
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
        driver d{*tx, true, options.pipeline ? &pipe : nullptr, op,
                 &one_by_one_trips};
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
    if (pipe.lost()) {
      // Results were left unread on it: the connection cannot go on.
      drop();
      tx_failed = false;
      return;
    }
    try {
      tx->abort();
    } catch (...) {
      // a broken connection cannot abort; the server does it
    }
    tx.reset();
    pipe.detach();
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

std::uint64_t pg_store::statement_round_trips() const {
  return impl_->pipe.round_trips() + impl_->one_by_one_trips;
}

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
    d.pipe.attach(raw_connection_of::get(*d.tx));
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
    d.guarded("commit", [&](driver&) { d.pipe.flush(); });
  } catch (const engine::port_error&) {
    d.abort_transaction();
    throw;
  }
  try {
    d.tx->commit();
    d.tx.reset();
    d.pipe.detach();
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

engine::inbound_claim
pg_store::consume_inbound(std::string_view message_sid,
                          engine::inbound_consumer consumer) {
  return impl_->guarded("consume_inbound", [&](driver& dr) {
    return sql_ops::consume_inbound(dr, message_sid, consumer);
  });
}

void pg_store::restore_inbound(std::string_view message_sid,
                               engine::inbound_consumer consumer) {
  impl_->guarded("restore_inbound", [&](driver& dr) {
    sql_ops::restore_inbound(dr, message_sid, consumer);
  });
}

std::vector<engine::inbound_message>
pg_store::pending_inbound(std::string_view tenant_id, std::string_view node_id,
                          engine::epoch_ms since,
                          engine::epoch_ms orphaned_before, std::size_t limit) {
  return impl_->guarded("pending_inbound", [&](driver& dr) {
    return sql_ops::pending_inbound(dr, tenant_id, node_id, since,
                                    orphaned_before, limit);
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
