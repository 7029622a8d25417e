#pragma once

#include <cstdint>

namespace ringback::adapters::sqlite_wal_buffer {

/// The name of a SQLite VFS that passes everything through to the default
/// VFS except the writes to a WAL file, which it gathers in memory and hands
/// to the OS in one `pwrite` per transaction instead of two per page.
///
/// SQLite writes each WAL frame as two writes, its 24-byte header and then
/// the page, at offsets that are not page aligned: a transaction of n pages
/// costs 2n system calls and about 3n page-cache updates in the kernel. This
/// VFS keeps consecutive writes in a buffer and writes it out
///  - within the write of a commit frame's page (the frame whose header
///    carries the database size), so that the transaction is in the file
///    before SQLite publishes it in the WAL index (other connections read the
///    WAL only up to the frame the index names) and a failed write fails the
///    commit, exactly as the direct write would;
///  - before a read, a sync, a truncation, a size query, a file control or
///    the close of the WAL file, and before a write anywhere but at the end
///    of the buffer (a frame rewritten in place, the header of a restarted
///    WAL), so that the file is never behind what SQLite believes it wrote;
///  - when the buffer is full.
/// A crash loses only what a crash in the middle of the unbuffered writes
/// loses: a transaction that was not committed yet. Registered once per
/// process (thread-safe), not as the default VFS.
const char* vfs_name();

/// Process-wide counters (for tests and benchmarks).
struct counters {
  std::uint64_t wal_writes = 0;  ///< WAL writes SQLite asked for
  std::uint64_t file_writes = 0; ///< WAL writes handed to the underlying VFS
};

counters read_counters();

} // namespace ringback::adapters::sqlite_wal_buffer
