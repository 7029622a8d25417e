#include "ringback/engine/executors.hpp"

#include "ringback/engine/log.hpp"

#include <pthread.h>

#include <atomic>
#include <string>
#include <utility>

namespace ringback::engine {

void name_this_thread(const std::string& name) noexcept {
  // Linux takes at most 15 bytes and a terminating zero.
  char buf[16] = {};
  name.copy(buf, sizeof buf - 1);
  pthread_setname_np(pthread_self(), buf);
}

namespace {

thread_local store_transaction* current_transaction = nullptr;

/// Makes `txn` the current transaction of this thread for its lifetime.
class transaction_scope {
public:
  explicit transaction_scope(store_transaction& txn) noexcept
    : previous_(current_transaction) {
    current_transaction = &txn;
  }

  ~transaction_scope() {
    current_transaction = previous_;
  }

  transaction_scope(const transaction_scope&) = delete;
  transaction_scope& operator=(const transaction_scope&) = delete;

private:
  store_transaction* previous_;
};

} // namespace

store_transaction* current_store_transaction() noexcept {
  return current_transaction;
}

std::uint64_t next_store_executor_id() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

store_executor::store_executor(std::unique_ptr<store> db, std::size_t max_batch,
                               std::chrono::microseconds linger,
                               std::size_t linger_batch)
  : db_(std::move(db)),
    max_batch_(max_batch == 0 ? 1 : max_batch),
    linger_(linger),
    linger_batch_(linger_batch == 0 ? 1 : linger_batch),
    id_(next_store_executor_id()) {
  thread_ = std::thread{[this] {
    name_this_thread("rb.store");
    loop();
  }};
}

store_executor::~store_executor() {
  stop();
}

void store_executor::post(work w, done d) {
  enqueue(queue_, std::move(w), std::move(d));
}

void store_executor::post_ahead(work w, done d) {
  enqueue(ahead_, std::move(w), std::move(d));
}

void store_executor::enqueue(std::deque<job>& lane, work w, done d) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!stopping_) {
      lane.push_back(job{std::move(w), std::move(d)});
      // Only a sleeping thread needs a wake-up: a busy one looks at the
      // queue after its batch, a lingering one when enough jobs are in.
      if (idle_ || (lingering_ && queued() == linger_batch_))
        cv_.notify_one();
      return;
    }
  }
  if (d)
    d("store stopped");
}

void store_executor::post_urgent(work w, done d) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!stopping_) {
      urgent_.push_back(job{std::move(w), std::move(d)});
      if (idle_ || lingering_)
        cv_.notify_one();
      return;
    }
  }
  if (d)
    d("store stopped");
}

void store_executor::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopping_)
      return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

std::size_t store_executor::commits() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return commits_;
}

std::size_t store_executor::jobs() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return jobs_;
}

store_activity store_executor::activity() const {
  std::lock_guard<std::mutex> guard{mtx_};
  store_activity a;
  a.urgent = urgent_.size();
  a.ahead = ahead_.size();
  a.queued = queue_.size();
  a.jobs = jobs_;
  a.transactions = commits_;
  return a;
}

void store_executor::loop() {
  std::vector<job> batch;
  std::unique_lock<std::mutex> guard{mtx_};
  for (;;) {
    if (queued() == 0 && urgent_.empty() && !stopping_) {
      idle_ = true;
      cv_.wait(guard, [this] {
        return stopping_ || queued() != 0 || !urgent_.empty();
      });
      idle_ = false;
      // Woken from idle: give the load a moment to queue up a batch (unless
      // someone waits on an urgent read).
      if (linger_.count() > 0 && !stopping_ && urgent_.empty()
          && queued() < linger_batch_) {
        lingering_ = true;
        cv_.wait_for(guard, linger_, [this] {
          return stopping_ || !urgent_.empty() || queued() >= linger_batch_;
        });
        lingering_ = false;
      }
    }
    if (queued() == 0 && urgent_.empty())
      return; // stopping, and every job ran
    // Urgent jobs make a transaction of their own: their completions (a
    // caller waiting for the answer to an incoming call) come after a small
    // commit, not after hundreds of queued writes. Urgent and queued batches
    // alternate while both wait, so a stream of urgent jobs never starves
    // the queue (an urgent job waits for at most one queued batch). A
    // queued batch starts with the jobs posted ahead: while fewer than a
    // batch of them wait, one waits for at most the batch running when it
    // came and the urgent one after it, whatever the backlog behind. A
    // batch that left the waiting queue out makes the next one keep an
    // eighth of it for the queue (`queue_share`), so a flood of them does
    // not starve the queue.
    const bool urgent_turn = !urgent_.empty()
                             && (!last_urgent_ || queued() == 0);
    auto take = [&](std::deque<job>& from, std::size_t up_to) {
      while (!from.empty() && batch.size() < up_to) {
        batch.push_back(std::move(from.front()));
        from.pop_front();
      }
    };
    if (urgent_turn) {
      take(urgent_, max_batch_);
    } else {
      const std::size_t keep
        = queue_passed_over_ ? std::min(queue_.size(), queue_share()) : 0;
      take(ahead_, max_batch_ - keep);
      const auto from_ahead = batch.size();
      take(queue_, max_batch_);
      queue_passed_over_ = batch.size() == from_ahead && !queue_.empty();
    }
    last_urgent_ = urgent_turn;
    guard.unlock();
    run_batch(batch);
    batch.clear();
    guard.lock();
  }
}

void store_executor::run_batch(std::vector<job>& batch) {
  std::vector<std::string> errors(batch.size());
  bool batch_ok = true;
  store_transaction txn{id_};
  try {
    transaction_scope scope{txn};
    db_->begin();
    for (auto& j : batch)
      j.w(*db_);
    db_->commit();
  } catch (const std::exception&) {
    batch_ok = false;
    try {
      db_->rollback();
    } catch (const std::exception&) {
      // The connection is gone; each job below reconnects or fails alone.
    }
  }
  txn.finish(batch_ok);
  if (batch_ok) {
    std::lock_guard<std::mutex> guard{mtx_};
    ++commits_;
  } else {
    for (std::size_t i = 0; i < batch.size(); ++i)
      errors[i] = run_alone(batch[i]);
  }
  {
    std::lock_guard<std::mutex> guard{mtx_};
    jobs_ += batch.size();
  }
  for (std::size_t i = 0; i < batch.size(); ++i)
    if (batch[i].d)
      batch[i].d(errors[i]);
  // After the answers: a checkpoint delays the next batch, not this one's.
  try {
    db_->upkeep();
  } catch (const std::exception& e) {
    log_warn("store", std::string{"upkeep failed: "} + e.what());
  }
}

std::string store_executor::run_alone(job& j) {
  store_transaction txn{id_};
  try {
    {
      transaction_scope scope{txn};
      db_->begin();
      j.w(*db_);
      db_->commit();
    }
    txn.finish(true);
    std::lock_guard<std::mutex> guard{mtx_};
    ++commits_;
    return {};
  } catch (const std::exception& e) {
    txn.finish(false);
    try {
      db_->rollback();
    } catch (const std::exception&) {
      // nop: reported below
    }
    std::string msg = e.what();
    return msg.empty() ? std::string{"store error"} : msg;
  }
}

void inline_store_queue::post(work w, done d) {
  std::string error;
  store_transaction txn{id_};
  try {
    {
      transaction_scope scope{txn};
      db_.begin();
      w(db_);
      db_.commit();
    }
    txn.finish(true);
  } catch (const std::exception& e) {
    txn.finish(false);
    error = e.what();
    try {
      db_.rollback();
    } catch (const std::exception&) {
      // nop: reported below
    }
  }
  if (d)
    d(error);
}

} // namespace ringback::engine
