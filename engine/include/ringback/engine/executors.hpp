#pragma once

#include "ringback/engine/metrics.hpp"
#include "ringback/engine/ports.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ringback::engine {

/// Names the calling thread as `top -H`, `perf` and /proc show it (Linux
/// keeps 15 bytes of it). Best effort: a failure changes nothing else.
void name_this_thread(const std::string& name) noexcept;

/// Where hosts (actors) post store work. Run inside a transaction; a job's
/// `work` may throw `port_error`; `done` gets an empty string or the error.
class store_queue {
public:
  using work = std::function<void(store&)>;
  using done = std::function<void(const std::string& error)>;

  virtual ~store_queue() = default;

  /// Thread-safe; never blocks on I/O.
  virtual void post(work w, done d = nullptr) = 0;

  /// Like `post`, but ahead of the jobs queued and not yet running (in the
  /// order urgent jobs were posted), so that a short read the caller is
  /// waiting on does not wait behind a backlog of writes. Only for jobs that
  /// need no write still queued: a new call's insert, or a read of what the
  /// poster knows to be committed (a call whose actor let go only once every
  /// write of it was acknowledged). The default queues it like `post`.
  virtual void post_urgent(work w, done d = nullptr) {
    post(std::move(w), std::move(d));
  }

  /// Like `post`, but ahead of the jobs queued with `post` (in the order
  /// jobs were posted ahead), behind the urgent ones: for writes someone is
  /// waiting for that are not a webhook's answer (a text-back on its way),
  /// so that they do not wait behind a backlog of bookkeeping. Jobs posted
  /// ahead run in their own order; a job posted ahead may overtake any job
  /// queued with `post`, so a poster switches the jobs on some rows from
  /// one lane to the other only while none of its jobs on those rows is
  /// unacknowledged (see `call_state::row_ahead`), or posts them all in one
  /// lane (the outbox). The default queues it like `post`.
  virtual void post_ahead(work w, done d = nullptr) {
    post(std::move(w), std::move(d));
  }
};

/// What a store job may ask of the transaction it runs in. Exists on the
/// store thread while `store_executor` or `inline_store_queue` runs a job
/// (see `current_store_transaction`).
class store_transaction {
public:
  explicit store_transaction(std::uint64_t executor_id) noexcept
    : executor_id_(executor_id) {
    // nop
  }

  /// The executor's process-unique id (never 0, never reused by another
  /// executor): a key for "already written to this store" memos.
  std::uint64_t executor_id() const noexcept {
    return executor_id_;
  }

  /// Runs `f` on the store thread once this transaction has committed,
  /// before the jobs' completions; dropped if it rolls back (a job re-run
  /// alone registers again). `f` must not throw.
  void after_commit(std::function<void()> f) {
    hooks_.push_back(std::move(f));
  }

  /// For the executors: runs (committed) or drops (rolled back) the hooks.
  void finish(bool committed) {
    auto hooks = std::move(hooks_);
    hooks_.clear();
    if (committed)
      for (auto& h : hooks)
        h();
  }

private:
  std::uint64_t executor_id_;
  std::vector<std::function<void()>> hooks_;
};

/// The transaction the calling store job runs in, or null when not called
/// from a job of `store_executor` / `inline_store_queue`.
store_transaction* current_store_transaction() noexcept;

/// A new process-unique executor id (for `store_transaction`).
std::uint64_t next_store_executor_id() noexcept;

/// Where hosts post work for a blocking port (kv, carrier). Jobs must not
/// throw.
template <class Port>
class job_queue {
public:
  using job = std::function<void(Port&)>;

  virtual ~job_queue() = default;

  /// Thread-safe; never blocks on I/O.
  virtual void post(job j) = 0;
};

/// Runs store jobs on one thread of its own, with group commit: the jobs that
/// queued up while the previous transaction committed run together in one
/// transaction, so durability costs one commit per batch, not per write.
///
/// A job that throws `port_error` fails alone: the batch is rolled back and
/// its jobs re-run one transaction each. Completions run on the store thread
/// after the commit, in the batch's order; they must be quick (send a
/// message, set a flag).
///
/// Three lanes: urgent jobs (a webhook's answer waits for them) make
/// transactions of their own, alternating with the queued batches while
/// both wait; a queued batch takes the jobs posted ahead first, then the
/// others, each lane in its posting order, up to `max_batch` jobs.
///
/// When the thread wakes from idle it lingers up to `linger` (or until
/// `linger_batch` jobs queued) before it begins, so that a light load still
/// commits several jobs at once: fewer commits, WAL frames and checkpoint
/// work per job for at most `linger` more latency. Posters wake the thread
/// only when it is idle, not once per job.
class store_executor final : public store_queue {
public:
  static constexpr std::chrono::microseconds default_linger{2000};
  static constexpr std::size_t default_linger_batch = 64;

  explicit store_executor(std::unique_ptr<store> db,
                          std::size_t max_batch = 512,
                          std::chrono::microseconds linger = default_linger,
                          std::size_t linger_batch = default_linger_batch);
  ~store_executor();

  store_executor(const store_executor&) = delete;
  store_executor& operator=(const store_executor&) = delete;

  /// Thread-safe. Jobs posted after `stop()` fail with "store stopped".
  void post(work w, done d = nullptr) override;

  /// Thread-safe. Into the next batch, ahead of the other queued jobs; an
  /// urgent job also cuts the group-commit linger short.
  void post_urgent(work w, done d = nullptr) override;

  /// Thread-safe. At the front of the next queued (not urgent) batch, after
  /// the jobs posted ahead before it. After a batch of them only, the next
  /// keeps an eighth of it for the other queued jobs (`queue_share`), so a
  /// flood of them does not starve those.
  void post_ahead(work w, done d = nullptr) override;

  /// Runs every queued job, then joins the thread.
  void stop();

  /// Number of transactions committed so far (for metrics and tests).
  std::size_t commits() const;

  /// Number of jobs run so far, retried ones counted once (for tests and
  /// benchmarks: jobs / commits is the mean batch).
  std::size_t jobs() const;

  /// The jobs waiting in each lane now, and `jobs()` and `commits()`: what
  /// the metrics show of the store (`metrics::store_activity`).
  store_activity activity() const;

private:
  struct job {
    work w;
    done d;
  };

  /// Queues a job in `lane` (`queue_` or `ahead_`), or fails it once
  /// stopping.
  void enqueue(std::deque<job>& lane, work w, done d);
  void loop();
  /// Jobs waiting in the queued lanes (`ahead_` and `queue_`); under `mtx_`.
  std::size_t queued() const {
    return ahead_.size() + queue_.size();
  }
  /// Room a queued batch keeps for `queue_` behind the jobs posted ahead
  /// when the last one had none of `queue_`'s (`queue_passed_over_`).
  std::size_t queue_share() const {
    return max_batch_ < 2 ? 0 : std::max<std::size_t>(1, max_batch_ / 8);
  }
  void run_batch(std::vector<job>& batch);
  std::string run_alone(job& j);

  std::unique_ptr<store> db_;
  std::size_t max_batch_;
  std::chrono::microseconds linger_;
  std::size_t linger_batch_;
  std::uint64_t id_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<job> queue_;
  std::deque<job> ahead_;    ///< `post_ahead`'s jobs, the front of `queue_`
  std::deque<job> urgent_;   ///< `post_urgent`'s jobs, run before `queue_`'s
  bool last_urgent_ = false; ///< the last batch was urgent: the queue's turn
  bool queue_passed_over_ = false; ///< the last queued batch was all ahead's
  bool stopping_ = false;
  bool idle_ = false;      ///< the thread sleeps until a post wakes it
  bool lingering_ = false; ///< the thread waits for `linger_batch_` jobs
  std::size_t commits_ = 0;
  std::size_t jobs_ = 0;
  std::thread thread_;
};

/// A fixed set of threads, each owning one instance of a blocking port
/// (a Redis connection, an HTTP client), running jobs in FIFO order.
template <class Port>
class worker_pool final : public job_queue<Port> {
public:
  using job = typename job_queue<Port>::job;
  using factory = std::function<std::unique_ptr<Port>()>;

  /// `name`: the threads' name (see `name_this_thread`).
  worker_pool(std::size_t threads, const factory& make,
              std::string name = "rb.pool") {
    for (std::size_t i = 0; i < threads; ++i)
      ports_.push_back(make());
    for (std::size_t i = 0; i < threads; ++i)
      threads_.emplace_back([this, i, name] {
        name_this_thread(name);
        loop(*ports_[i]);
      });
  }

  ~worker_pool() {
    stop();
  }

  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;

  /// Thread-safe. A job must not throw. Jobs posted after `stop()` are dropped.
  void post(job j) override {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (stopping_)
        return;
      queue_.push_back(std::move(j));
    }
    cv_.notify_one();
  }

  /// Runs the queued jobs, then joins the threads.
  void stop() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (stopping_)
        return;
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_)
      t.join();
  }

private:
  void loop(Port& port) {
    for (;;) {
      job j;
      {
        std::unique_lock<std::mutex> guard{mtx_};
        cv_.wait(guard, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty())
          return;
        j = std::move(queue_.front());
        queue_.pop_front();
      }
      j(port);
    }
  }

  std::vector<std::unique_ptr<Port>> ports_;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<job> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

/// Runs the urgent jobs on an executor of their own (its own connection to
/// a store that takes concurrent transactions: PostgreSQL), the others on
/// the main one: an incoming call's insert then waits for its own round
/// trips, not for the queued batch in progress (on PostgreSQL, one round
/// trip per statement: tens of ms for a batch of 128 jobs). What an urgent
/// job reads was committed before it was posted (see `post_urgent`), so the
/// other connection sees it; what it writes (a new call) no queued job
/// writes before its answer.
class split_store_queue final : public store_queue {
public:
  split_store_queue(store_queue& main, store_queue& urgent)
    : main_(main), urgent_(urgent) {
    // nop
  }

  void post(work w, done d = nullptr) override {
    main_.post(std::move(w), std::move(d));
  }

  void post_ahead(work w, done d = nullptr) override {
    main_.post_ahead(std::move(w), std::move(d));
  }

  /// Queued on the urgent executor, where nothing else waits (so its own
  /// linger may gather a few into one transaction).
  void post_urgent(work w, done d = nullptr) override {
    urgent_.post(std::move(w), std::move(d));
  }

private:
  store_queue& main_;
  store_queue& urgent_;
};

/// Runs each store job at once on the caller's thread, in its own
/// transaction. For deterministic tests and single-threaded tools.
class inline_store_queue final : public store_queue {
public:
  explicit inline_store_queue(store& db)
    : db_(db), id_(next_store_executor_id()) {
    // nop
  }

  void post(work w, done d = nullptr) override;

private:
  store& db_;
  std::uint64_t id_;
};

/// Runs each job at once on the caller's thread: for deterministic tests,
/// and for a port that is thread-safe and never blocks on I/O (the
/// in-memory kv takes a mutex), where a pool thread would only add two
/// thread switches per job. The port must outlive every poster.
template <class Port>
class inline_queue final : public job_queue<Port> {
public:
  explicit inline_queue(Port& port) : port_(port) {
    // nop
  }

  void post(typename job_queue<Port>::job j) override {
    j(port_);
  }

private:
  Port& port_;
};

} // namespace ringback::engine
