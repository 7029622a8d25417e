#include "ringback/engine/log.hpp"

#include "ringback/engine/executors.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string>
#include <thread>

namespace ringback::engine {

namespace {

std::atomic<int> min_level{static_cast<int>(log_level::info)};

constexpr std::size_t flush_bytes = 32 * 1024;

std::string_view level_name(log_level level) {
  switch (level) {
    case log_level::debug:
      return "DEBUG";
    case log_level::info:
      return "INFO";
    case log_level::warn:
      return "WARN";
    case log_level::error:
      return "ERROR";
  }
  return "?";
}

/// Writes all of `data` to fd 2 (retrying short writes and EINTR); errors
/// are ignored (nowhere left to report them).
void write_all(const char* data, std::size_t size) {
  while (size > 0) {
    auto n = ::write(STDERR_FILENO, data, size);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of `now` into `out` (24 characters); the
/// part up to the seconds is formatted once per second per thread.
void stamp(std::chrono::system_clock::time_point now, std::string& out) {
  using namespace std::chrono;
  thread_local std::time_t cached_secs = -1;
  thread_local char cached[24];
  const auto since = now.time_since_epoch();
  const auto secs = duration_cast<seconds>(since).count();
  const auto ms = static_cast<int>(duration_cast<milliseconds>(since).count()
                                   - secs * 1000);
  if (secs != cached_secs) {
    std::time_t t = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::snprintf(cached, sizeof(cached), "%04d-%02d-%02dT%02d:%02d:%02d.",
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                  tm.tm_min, tm.tm_sec);
    cached_secs = t;
  }
  out.append(cached, 20);
  const char digits[4] = {static_cast<char>('0' + ms / 100),
                          static_cast<char>('0' + ms / 10 % 10),
                          static_cast<char>('0' + ms % 10), 'Z'};
  out.append(digits, 4);
}

/// The lines waiting for a buffered write, and the thread that writes them.
class log_buffer {
public:
  void configure(std::chrono::milliseconds delay) {
    if (delay.count() <= 0) {
      stop();
      return;
    }
    std::lock_guard<std::mutex> guard{mtx_};
    delay_ = delay;
    if (!thread_.joinable()) {
      stopping_ = false;
      thread_ = std::thread{[this] {
        name_this_thread("rb.log");
        loop();
      }};
    }
    static const bool at_exit = [] {
      // Normal exit writes what is pending; the thread is left running
      // (this object is never destroyed, so it may still log meanwhile).
      std::atexit([] { flush_log(); });
      return true;
    }();
    (void) at_exit;
    enabled_.store(true, std::memory_order_release);
  }

  bool enabled() const noexcept {
    return enabled_.load(std::memory_order_acquire);
  }

  /// Queues (info) or writes with what is pending (warn, error) `line`.
  void add(const std::string& line, bool urgent) {
    std::unique_lock<std::mutex> guard{mtx_};
    if (!enabled()) { // switched off meanwhile
      write_all(line.data(), line.size());
      return;
    }
    const bool was_empty = pending_.empty();
    pending_ += line;
    if (urgent || pending_.size() >= flush_bytes) {
      write_all(pending_.data(), pending_.size());
      pending_.clear();
      return;
    }
    if (was_empty) {
      guard.unlock();
      cv_.notify_one();
    }
  }

  void flush() {
    std::lock_guard<std::mutex> guard{mtx_};
    write_all(pending_.data(), pending_.size());
    pending_.clear();
  }

  void stop() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      enabled_.store(false, std::memory_order_release);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable())
      thread_.join();
    flush();
  }

private:
  void loop() {
    std::unique_lock<std::mutex> guard{mtx_};
    while (!stopping_) {
      cv_.wait(guard, [this] { return stopping_ || !pending_.empty(); });
      if (stopping_)
        break;
      // Let more lines gather, then write them with one call.
      cv_.wait_for(guard, delay_, [this] { return stopping_; });
      write_all(pending_.data(), pending_.size());
      pending_.clear();
    }
  }

  std::mutex mtx_;
  std::condition_variable cv_;
  std::string pending_;
  std::chrono::milliseconds delay_{0};
  std::atomic<bool> enabled_{false};
  bool stopping_ = false;
  std::thread thread_;
};

log_buffer& buffer() {
  static auto* b = new log_buffer; // never destroyed: lines may come at exit
  return *b;
}

} // namespace

void set_log_level(log_level level) {
  min_level = static_cast<int>(level);
}

bool parse_log_level(std::string_view text, log_level& out) {
  static constexpr std::string_view names[] = {"debug", "info", "warn", "error"};
  for (int i = 0; i < 4; ++i)
    if (text == names[i]) {
      out = static_cast<log_level>(i);
      return true;
    }
  return false;
}

void set_log_buffering(std::chrono::milliseconds max_delay) {
  buffer().configure(max_delay);
}

void flush_log() {
  buffer().flush();
}

void log(log_level level, std::string_view component, std::string_view message) {
  if (static_cast<int>(level) < min_level.load(std::memory_order_relaxed))
    return;
  thread_local std::string line;
  line.clear();
  stamp(std::chrono::system_clock::now(), line);
  line += ' ';
  line += level_name(level);
  line += ' ';
  line += component;
  line += ": ";
  line += message;
  line += '\n';
  auto& b = buffer();
  if (b.enabled()) {
    b.add(line, level >= log_level::warn);
    return;
  }
  // One write per line: the kernel keeps a line whole.
  write_all(line.data(), line.size());
}

} // namespace ringback::engine
