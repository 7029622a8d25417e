#include "ringback/adapters/store/sqlite_wal_buffer.hpp"

#include <sqlite3.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <mutex>

namespace ringback::adapters::sqlite_wal_buffer {

namespace {

constexpr const char* name = "ringback-walbuf";

/// 30 frames of 4 KiB pages; a larger transaction goes out in several
/// writes. Under 128 KiB: the unix VFS masks a write's length to 17 bits
/// (SQLite never writes more than a page at once), so a longer write would
/// be cut short and fail with SQLITE_FULL.
constexpr int capacity = 124 * 1024;
static_assert(capacity < 0x1ffff);

/// A WAL frame's header; its bytes 4-7 (big-endian) hold the database size
/// in pages after the commit for a commit frame, 0 for any other frame.
constexpr int frame_header_size = 24;

std::atomic<std::uint64_t> wal_write_count{0};
std::atomic<std::uint64_t> file_write_count{0};

sqlite3_vfs* base = nullptr;
sqlite3_vfs vfs{};

/// What SQLite allocates for each open file (`szOsFile`): this header, then
/// the underlying VFS's own file object at `real`.
struct file {
  sqlite3_file head; // first: SQLite sees a `sqlite3_file`
  sqlite3_file* real;
  // WAL files only.
  unsigned char* buf;
  int len;              ///< bytes in `buf`
  sqlite3_int64 offset; ///< the file offset of `buf[0]`
  bool commit_frame;    ///< the last write was a commit frame's header
};

constexpr std::size_t real_offset
  = (sizeof(file) + alignof(std::max_align_t) - 1)
    / alignof(std::max_align_t) * alignof(std::max_align_t);

file* of(sqlite3_file* f) {
  return reinterpret_cast<file*>(f);
}

sqlite3_file* real(sqlite3_file* f) {
  return of(f)->real;
}

const sqlite3_io_methods& real_methods(sqlite3_file* f) {
  return *real(f)->pMethods;
}

int write_through(file* f, const void* data, int amount, sqlite3_int64 at) {
  file_write_count.fetch_add(1, std::memory_order_relaxed);
  return f->real->pMethods->xWrite(f->real, data, amount, at);
}

/// Hands the buffer to the file. On failure the buffered bytes are dropped:
/// they belong to the transaction that the error now fails.
int flush(file* f) {
  if (f->len == 0)
    return SQLITE_OK;
  const int n = f->len;
  f->len = 0;
  f->commit_frame = false;
  return write_through(f, f->buf, n, f->offset);
}

// -- every file: pass-through ------------------------------------------------

int x_close(sqlite3_file* f) {
  auto* self = of(f);
  const int flushed = self->buf ? flush(self) : SQLITE_OK;
  const int rc = real_methods(f).xClose(real(f));
  sqlite3_free(self->buf);
  self->buf = nullptr;
  return flushed != SQLITE_OK ? flushed : rc;
}

int x_read(sqlite3_file* f, void* out, int amount, sqlite3_int64 at) {
  return real_methods(f).xRead(real(f), out, amount, at);
}

int x_write(sqlite3_file* f, const void* data, int amount, sqlite3_int64 at) {
  return real_methods(f).xWrite(real(f), data, amount, at);
}

int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  return real_methods(f).xTruncate(real(f), size);
}

int x_sync(sqlite3_file* f, int flags) {
  return real_methods(f).xSync(real(f), flags);
}

int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
  return real_methods(f).xFileSize(real(f), size);
}

int x_lock(sqlite3_file* f, int level) {
  return real_methods(f).xLock(real(f), level);
}

int x_unlock(sqlite3_file* f, int level) {
  return real_methods(f).xUnlock(real(f), level);
}

int x_check_reserved_lock(sqlite3_file* f, int* out) {
  return real_methods(f).xCheckReservedLock(real(f), out);
}

int x_file_control(sqlite3_file* f, int op, void* arg) {
  return real_methods(f).xFileControl(real(f), op, arg);
}

int x_sector_size(sqlite3_file* f) {
  return real_methods(f).xSectorSize(real(f));
}

int x_device_characteristics(sqlite3_file* f) {
  return real_methods(f).xDeviceCharacteristics(real(f));
}

int x_shm_map(sqlite3_file* f, int region, int size, int extend,
              void volatile** out) {
  return real_methods(f).xShmMap(real(f), region, size, extend, out);
}

int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return real_methods(f).xShmLock(real(f), offset, n, flags);
}

void x_shm_barrier(sqlite3_file* f) {
  real_methods(f).xShmBarrier(real(f));
}

int x_shm_unmap(sqlite3_file* f, int delete_flag) {
  return real_methods(f).xShmUnmap(real(f), delete_flag);
}

int x_fetch(sqlite3_file* f, sqlite3_int64 at, int amount, void** out) {
  return real_methods(f).xFetch(real(f), at, amount, out);
}

int x_unfetch(sqlite3_file* f, sqlite3_int64 at, void* p) {
  return real_methods(f).xUnfetch(real(f), at, p);
}

// -- WAL files: the buffer ---------------------------------------------------

int wal_read(sqlite3_file* f, void* out, int amount, sqlite3_int64 at) {
  auto* self = of(f);
  // Only a read of buffered bytes needs them in the file first.
  if (self->len > 0 && at < self->offset + self->len
      && at + amount > self->offset)
    if (int rc = flush(self); rc != SQLITE_OK)
      return rc;
  return x_read(f, out, amount, at);
}

int wal_write(sqlite3_file* f, const void* data, int amount,
              sqlite3_int64 at) {
  auto* self = of(f);
  wal_write_count.fetch_add(1, std::memory_order_relaxed);
  if (self->len > 0 && at != self->offset + self->len)
    if (int rc = flush(self); rc != SQLITE_OK)
      return rc;
  if (amount > capacity) { // no SQLite write is this long; kept in order
    if (int rc = flush(self); rc != SQLITE_OK)
      return rc;
    return write_through(self, data, amount, at);
  }
  if (self->len + amount > capacity)
    if (int rc = flush(self); rc != SQLITE_OK)
      return rc;
  if (self->len == 0)
    self->offset = at;
  std::memcpy(self->buf + self->len, data, static_cast<std::size_t>(amount));
  self->len += amount;
  if (amount == frame_header_size) {
    const auto* h = static_cast<const unsigned char*>(data);
    self->commit_frame = (h[4] | h[5] | h[6] | h[7]) != 0;
    return SQLITE_OK;
  }
  if (self->commit_frame)
    return flush(self); // the commit frame's page: the transaction is whole
  return SQLITE_OK;
}

int wal_truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (int rc = flush(of(f)); rc != SQLITE_OK)
    return rc;
  return x_truncate(f, size);
}

int wal_sync(sqlite3_file* f, int flags) {
  if (int rc = flush(of(f)); rc != SQLITE_OK)
    return rc;
  return x_sync(f, flags);
}

int wal_file_size(sqlite3_file* f, sqlite3_int64* size) {
  if (int rc = flush(of(f)); rc != SQLITE_OK)
    return rc;
  return x_file_size(f, size);
}

int wal_file_control(sqlite3_file* f, int op, void* arg) {
  if (int rc = flush(of(f)); rc != SQLITE_OK)
    return rc;
  return x_file_control(f, op, arg);
}

int wal_fetch(sqlite3_file* f, sqlite3_int64 at, int amount, void** out) {
  if (int rc = flush(of(f)); rc != SQLITE_OK)
    return rc;
  return x_fetch(f, at, amount, out);
}

/// Method tables by the underlying file's `iVersion` (1-3): a file claims
/// no method its underlying file lacks.
std::array<sqlite3_io_methods, 4> pass_methods{};
std::array<sqlite3_io_methods, 4> wal_methods{};

void fill_methods() {
  for (int v = 1; v <= 3; ++v) {
    sqlite3_io_methods m{};
    m.iVersion = v;
    m.xClose = x_close;
    m.xRead = x_read;
    m.xWrite = x_write;
    m.xTruncate = x_truncate;
    m.xSync = x_sync;
    m.xFileSize = x_file_size;
    m.xLock = x_lock;
    m.xUnlock = x_unlock;
    m.xCheckReservedLock = x_check_reserved_lock;
    m.xFileControl = x_file_control;
    m.xSectorSize = x_sector_size;
    m.xDeviceCharacteristics = x_device_characteristics;
    if (v >= 2) {
      m.xShmMap = x_shm_map;
      m.xShmLock = x_shm_lock;
      m.xShmBarrier = x_shm_barrier;
      m.xShmUnmap = x_shm_unmap;
    }
    if (v >= 3) {
      m.xFetch = x_fetch;
      m.xUnfetch = x_unfetch;
    }
    pass_methods[v] = m;
    m.xRead = wal_read;
    m.xWrite = wal_write;
    m.xTruncate = wal_truncate;
    m.xSync = wal_sync;
    m.xFileSize = wal_file_size;
    m.xFileControl = wal_file_control;
    if (v >= 3)
      m.xFetch = wal_fetch;
    wal_methods[v] = m;
  }
}

// -- the VFS -----------------------------------------------------------------

int v_open(sqlite3_vfs*, sqlite3_filename path, sqlite3_file* f, int flags,
           int* out_flags) {
  auto* self = of(f);
  self->head.pMethods = nullptr;
  self->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f)
                                               + real_offset);
  self->real->pMethods = nullptr;
  self->buf = nullptr;
  self->len = 0;
  self->offset = 0;
  self->commit_frame = false;
  const int rc = base->xOpen(base, path, self->real, flags, out_flags);
  const auto* m = self->real->pMethods;
  if (!m)
    return rc == SQLITE_OK ? SQLITE_CANTOPEN : rc;
  // Set even if the open failed: SQLite then closes what the VFS opened.
  const int v = m->iVersion < 1 ? 1 : (m->iVersion > 3 ? 3 : m->iVersion);
  self->head.pMethods = &pass_methods[v];
  if (rc != SQLITE_OK || !(flags & SQLITE_OPEN_WAL))
    return rc;
  self->buf = static_cast<unsigned char*>(sqlite3_malloc(capacity));
  if (self->buf) // else unbuffered: slower, still correct
    self->head.pMethods = &wal_methods[v];
  return SQLITE_OK;
}

int v_delete(sqlite3_vfs*, const char* path, int sync_dir) {
  return base->xDelete(base, path, sync_dir);
}

int v_access(sqlite3_vfs*, const char* path, int flags, int* out) {
  return base->xAccess(base, path, flags, out);
}

int v_full_pathname(sqlite3_vfs*, const char* path, int n, char* out) {
  return base->xFullPathname(base, path, n, out);
}

void* v_dl_open(sqlite3_vfs*, const char* path) {
  return base->xDlOpen(base, path);
}

void v_dl_error(sqlite3_vfs*, int n, char* out) {
  base->xDlError(base, n, out);
}

void (*v_dl_sym(sqlite3_vfs*, void* h, const char* sym))(void) {
  return base->xDlSym(base, h, sym);
}

void v_dl_close(sqlite3_vfs*, void* h) {
  base->xDlClose(base, h);
}

int v_randomness(sqlite3_vfs*, int n, char* out) {
  return base->xRandomness(base, n, out);
}

int v_sleep(sqlite3_vfs*, int micros) {
  return base->xSleep(base, micros);
}

int v_current_time(sqlite3_vfs*, double* out) {
  return base->xCurrentTime(base, out);
}

int v_get_last_error(sqlite3_vfs*, int n, char* out) {
  return base->xGetLastError ? base->xGetLastError(base, n, out) : 0;
}

int v_current_time_int64(sqlite3_vfs*, sqlite3_int64* out) {
  return base->xCurrentTimeInt64(base, out);
}

int v_set_system_call(sqlite3_vfs*, const char* call,
                      sqlite3_syscall_ptr p) {
  return base->xSetSystemCall(base, call, p);
}

sqlite3_syscall_ptr v_get_system_call(sqlite3_vfs*, const char* call) {
  return base->xGetSystemCall(base, call);
}

const char* v_next_system_call(sqlite3_vfs*, const char* call) {
  return base->xNextSystemCall(base, call);
}

void register_vfs() {
  base = sqlite3_vfs_find(nullptr);
  fill_methods();
  vfs.iVersion = base->iVersion < 3 ? base->iVersion : 3;
  vfs.szOsFile = static_cast<int>(real_offset) + base->szOsFile;
  vfs.mxPathname = base->mxPathname;
  vfs.zName = name;
  vfs.xOpen = v_open;
  vfs.xDelete = v_delete;
  vfs.xAccess = v_access;
  vfs.xFullPathname = v_full_pathname;
  vfs.xDlOpen = v_dl_open;
  vfs.xDlError = v_dl_error;
  vfs.xDlSym = v_dl_sym;
  vfs.xDlClose = v_dl_close;
  vfs.xRandomness = v_randomness;
  vfs.xSleep = v_sleep;
  vfs.xCurrentTime = v_current_time;
  vfs.xGetLastError = v_get_last_error;
  if (vfs.iVersion >= 2 && base->xCurrentTimeInt64)
    vfs.xCurrentTimeInt64 = v_current_time_int64;
  if (vfs.iVersion >= 3 && base->xSetSystemCall) {
    vfs.xSetSystemCall = v_set_system_call;
    vfs.xGetSystemCall = v_get_system_call;
    vfs.xNextSystemCall = v_next_system_call;
  }
  sqlite3_vfs_register(&vfs, 0);
}

} // namespace

const char* vfs_name() {
  static std::once_flag once;
  std::call_once(once, register_vfs);
  return name;
}

counters read_counters() {
  counters c;
  c.wal_writes = wal_write_count.load(std::memory_order_relaxed);
  c.file_writes = file_write_count.load(std::memory_order_relaxed);
  return c;
}

} // namespace ringback::adapters::sqlite_wal_buffer
