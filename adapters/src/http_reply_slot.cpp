#include "ringback/adapters/http/reply_slot.hpp"

#include <utility>

namespace ringback::adapters {

bool reply_slot::reply(http_response response) {
  if (!claim()) {
    return false;
  }
  deliver(std::move(response));
  return true;
}

void reply_slot::set_deadline(std::chrono::milliseconds after,
                              http_response fallback) {
  if (answered()) {
    return;
  }
  arm_deadline(after, std::move(fallback));
}

std::optional<http_response> recording_reply_slot::response() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return response_;
}

std::optional<http_response>
recording_reply_slot::wait(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> guard{mutex_};
  answered_cv_.wait_for(guard, timeout,
                        [this] { return response_.has_value(); });
  return response_;
}

std::optional<std::chrono::milliseconds>
recording_reply_slot::deadline() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return deadline_;
}

bool recording_reply_slot::expire_deadline() {
  std::optional<http_response> fallback;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    fallback = fallback_;
  }
  return fallback ? reply(std::move(*fallback)) : false;
}

void recording_reply_slot::deliver(http_response response) {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    response_ = std::move(response);
  }
  answered_cv_.notify_all();
}

void recording_reply_slot::arm_deadline(std::chrono::milliseconds after,
                                        http_response fallback) {
  std::lock_guard<std::mutex> guard{mutex_};
  deadline_ = after;
  fallback_ = std::move(fallback);
}

} // namespace ringback::adapters
