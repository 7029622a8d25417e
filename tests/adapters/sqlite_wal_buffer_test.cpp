#include "ringback/adapters/store/sqlite_wal_buffer.hpp"

#include <gtest/gtest.h>

#include "store_conformance.hpp"
#include <sqlite3.h>

#include <csignal>
#include <cstdint>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace {

namespace wal_buffer = ringback::adapters::sqlite_wal_buffer;
using ringback::store_conformance::ScratchDir;

/// A raw connection, through the buffering VFS (`buffered`) or SQLite's
/// default one, in WAL mode as the store opens it.
class connection {
public:
  connection(const std::string& path, bool buffered) {
    const int rc = sqlite3_open_v2(
      path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
      buffered ? wal_buffer::vfs_name() : nullptr);
    if (rc != SQLITE_OK)
      throw std::runtime_error("open: " + std::string{sqlite3_errstr(rc)});
    sqlite3_busy_timeout(db_, 5000);
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=NORMAL");
  }

  ~connection() {
    sqlite3_close_v2(db_);
  }

  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      throw std::runtime_error(sql + ": " + msg);
    }
  }

  /// The first column of the first row, as text ("" for none).
  std::string scalar(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK)
      throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    std::string out;
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW && sqlite3_column_text(stmt, 0))
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
      throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    return out;
  }

  /// Inserts `rows` rows of 3,000 `fill`s each (about a page each), row
  /// ids from `first`, in the open transaction.
  void add_rows(int first, int rows, char fill = 'a') {
    for (int i = first; i < first + rows; ++i)
      exec("INSERT INTO t (id, body) VALUES (" + std::to_string(i)
           + ", printf('%.3000c', '" + fill + "'))");
  }

  /// `add_rows` in a transaction of their own.
  void insert(int first, int rows) {
    exec("BEGIN IMMEDIATE");
    add_rows(first, rows);
    exec("COMMIT");
  }

private:
  sqlite3* db_ = nullptr;
};

const char* schema = "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, "
                     "body TEXT NOT NULL)";

TEST(SqliteWalBuffer, a_transaction_reaches_the_wal_in_one_write) {
  ScratchDir dir;
  connection db{(dir.path() / "a.db").string(), true};
  db.exec("PRAGMA wal_autocheckpoint=0");
  db.exec(schema);
  db.insert(1, 1); // the WAL's header and first frames
  const auto before = wal_buffer::read_counters();
  db.insert(2, 20);
  const auto after = wal_buffer::read_counters();
  // SQLite writes every frame as a header and a page: 40 writes at least.
  EXPECT_GE(after.wal_writes - before.wal_writes, 40u);
  EXPECT_EQ(after.file_writes - before.file_writes, 1u)
    << "the whole transaction (about 90 KB) in one write";
  EXPECT_EQ(db.scalar("SELECT count(*) FROM t"), "21");
}

TEST(SqliteWalBuffer, a_transaction_larger_than_the_buffer_takes_a_few_writes) {
  ScratchDir dir;
  connection db{(dir.path() / "a.db").string(), true};
  db.exec("PRAGMA wal_autocheckpoint=0");
  db.exec(schema);
  const auto before = wal_buffer::read_counters();
  db.insert(1, 400); // about 1.7 MB of frames, a 124 KiB buffer
  const auto after = wal_buffer::read_counters();
  EXPECT_GE(after.file_writes - before.file_writes, 13u);
  EXPECT_LE(after.file_writes - before.file_writes, 20u);
  connection other{(dir.path() / "a.db").string(), false};
  EXPECT_EQ(other.scalar("SELECT count(*) FROM t"), "400");
  EXPECT_EQ(other.scalar("PRAGMA integrity_check"), "ok");
}

TEST(SqliteWalBuffer, another_connection_sees_every_commit) {
  ScratchDir dir;
  const auto path = (dir.path() / "a.db").string();
  connection writer{path, true};
  writer.exec(schema);
  connection reader{path, false};
  connection checkpointer{path, true};
  int rows = 0;
  for (int round = 1; round <= 120; ++round) {
    const int n = 1 + (round * 7) % 23; // 1 to 23 pages
    writer.insert(rows + 1, n);
    rows += n;
    ASSERT_EQ(reader.scalar("SELECT count(*) FROM t"), std::to_string(rows))
      << "round " << round;
    ASSERT_EQ(reader.scalar("SELECT max(id) FROM t"), std::to_string(rows));
    if (round % 10 == 0) // the WAL copied back and started over
      checkpointer.exec("PRAGMA wal_checkpoint(RESTART)");
  }
  EXPECT_EQ(reader.scalar("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(reader.scalar("SELECT sum(length(body)) FROM t"),
            std::to_string(rows * 3000));
}

TEST(SqliteWalBuffer, a_transaction_that_spills_commits_or_rolls_back_whole) {
  ScratchDir dir;
  const auto path = (dir.path() / "a.db").string();
  connection writer{path, true};
  writer.exec(schema);
  // A page cache of 10 pages: a transaction of 200 pages writes frames to the
  // WAL before its commit and reads some of them back.
  writer.exec("PRAGMA cache_size=10");
  writer.exec("CREATE INDEX t_body ON t (substr(body, 1, 10), id)");
  writer.insert(1, 200);
  writer.exec("BEGIN IMMEDIATE");
  writer.add_rows(1000, 200, 'b');
  writer.exec("UPDATE t SET body = printf('%.2000c', 'c') WHERE id <= 100");
  writer.exec("ROLLBACK");
  writer.exec("BEGIN IMMEDIATE");
  writer.add_rows(201, 50);
  // Read back inside the transaction: the pages come from the spilled
  // frames, which must be in the file by then.
  EXPECT_EQ(writer.scalar("SELECT sum(length(body)) FROM t"),
            std::to_string(250 * 3000));
  writer.exec("UPDATE t SET body = printf('%.2500c', 'd') WHERE id % 2 = 0");
  EXPECT_EQ(writer.scalar("SELECT sum(length(body)) FROM t"),
            std::to_string(125 * 3000 + 125 * 2500));
  writer.exec("COMMIT");
  connection reader{path, false};
  EXPECT_EQ(reader.scalar("SELECT count(*) FROM t"), "250");
  EXPECT_EQ(reader.scalar("SELECT count(*) FROM t WHERE body LIKE 'b%' OR "
                          "body LIKE 'c%'"),
            "0");
  EXPECT_EQ(reader.scalar("SELECT count(*) FROM t WHERE length(body) = 2500"),
            "125");
  EXPECT_EQ(reader.scalar("PRAGMA integrity_check"), "ok");
  writer.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  EXPECT_EQ(reader.scalar("PRAGMA integrity_check"), "ok");
}

TEST(SqliteWalBuffer, a_killed_writer_loses_no_acknowledged_commit) {
  ScratchDir dir;
  const auto path = (dir.path() / "a.db").string();
  {
    connection setup{path, true};
    setup.exec(schema);
  }
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The writer: commits of 1 to 40 pages, each acknowledged on the pipe
    // once COMMIT returned, until killed.
    ::close(fds[0]);
    try {
      connection db{path, true};
      db.exec("PRAGMA wal_autocheckpoint=100");
      std::int32_t rows = 0;
      for (int round = 1;; ++round) {
        const int n = 1 + (round * 13) % 40;
        db.insert(rows + 1, n);
        rows += n;
        if (::write(fds[1], &rows, sizeof rows) != sizeof rows)
          ::_exit(3);
      }
    } catch (...) {
      ::_exit(2);
    }
  }
  ::close(fds[1]);
  std::int32_t acknowledged = 0;
  std::int32_t got = 0;
  int reads = 0;
  while (::read(fds[0], &got, sizeof got) == sizeof got) {
    acknowledged = got;
    if (++reads == 400)
      ::kill(child, SIGKILL); // mid-transaction, as likely as not
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped by itself: " << status;
  ASSERT_GE(reads, 400);

  connection db{path, false};
  EXPECT_EQ(db.scalar("PRAGMA integrity_check"), "ok");
  const int rows = std::stoi(db.scalar("SELECT count(*) FROM t"));
  // Every acknowledged commit is there; at most the one in flight besides.
  EXPECT_GE(rows, acknowledged);
  EXPECT_LE(rows, acknowledged + 40);
  EXPECT_EQ(db.scalar("SELECT max(id) FROM t"), std::to_string(rows))
    << "whole transactions only";
}

} // namespace
