#include "ringback/engine/executors.hpp"

#include <utility>

namespace ringback::engine {

store_executor::store_executor(std::unique_ptr<store> db, std::size_t max_batch)
  : db_(std::move(db)), max_batch_(max_batch) {
  thread_ = std::thread{[this] { loop(); }};
}

store_executor::~store_executor() {
  stop();
}

void store_executor::post(work w, done d) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!stopping_) {
      queue_.push_back(job{std::move(w), std::move(d)});
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

void store_executor::loop() {
  std::vector<job> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> guard{mtx_};
      cv_.wait(guard, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty())
        return;
      while (!queue_.empty() && batch.size() < max_batch_) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    run_batch(batch);
    batch.clear();
  }
}

void store_executor::run_batch(std::vector<job>& batch) {
  std::vector<std::string> errors(batch.size());
  bool batch_ok = true;
  try {
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
  if (batch_ok) {
    std::lock_guard<std::mutex> guard{mtx_};
    ++commits_;
  } else {
    for (std::size_t i = 0; i < batch.size(); ++i)
      errors[i] = run_alone(batch[i]);
  }
  for (std::size_t i = 0; i < batch.size(); ++i)
    if (batch[i].d)
      batch[i].d(errors[i]);
}

std::string store_executor::run_alone(job& j) {
  try {
    db_->begin();
    j.w(*db_);
    db_->commit();
    std::lock_guard<std::mutex> guard{mtx_};
    ++commits_;
    return {};
  } catch (const std::exception& e) {
    try {
      db_->rollback();
    } catch (const std::exception&) {
      // nop: reported below
    }
    std::string msg = e.what();
    return msg.empty() ? std::string{"store error"} : msg;
  }
}

} // namespace ringback::engine

namespace ringback::engine {

void inline_store_queue::post(work w, done d) {
  std::string error;
  try {
    db_.begin();
    w(db_);
    db_.commit();
  } catch (const std::exception& e) {
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
