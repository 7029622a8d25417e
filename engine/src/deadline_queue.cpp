#include "ringback/engine/deadline_queue.hpp"

namespace ringback::engine {

void deadline_queue::arm(const std::string& key, epoch_ms at) {
  cancel(key);
  by_key_.emplace(key, by_time_.emplace(at, key));
}

void deadline_queue::cancel(const std::string& key) {
  if (auto i = by_key_.find(key); i != by_key_.end()) {
    by_time_.erase(i->second);
    by_key_.erase(i);
  }
}

std::vector<std::string> deadline_queue::pop_due(epoch_ms now) {
  std::vector<std::string> due;
  auto i = by_time_.begin();
  while (i != by_time_.end() && i->first <= now) {
    by_key_.erase(i->second);
    due.push_back(std::move(i->second));
    i = by_time_.erase(i);
  }
  return due;
}

std::optional<epoch_ms> deadline_queue::next() const {
  if (by_time_.empty())
    return std::nullopt;
  return by_time_.begin()->first;
}

} // namespace ringback::engine
