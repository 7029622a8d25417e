#include "ringback/engine/deadline_queue.hpp"

namespace ringback::engine {

void deadline_queue::arm(const std::string& key, epoch_ms at) {
  auto [i, added] = by_key_.try_emplace(key, by_time_.end());
  if (!added)
    by_time_.erase(i->second);
  i->second = by_time_.emplace(at, &i->first);
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
    // Take the key out of its node instead of copying it.
    auto node = by_key_.extract(*i->second);
    due.push_back(std::move(node.key()));
    i = by_time_.erase(i);
  }
  return due;
}

std::optional<epoch_ms> deadline_queue::next() const {
  if (by_time_.empty())
    return std::nullopt;
  return by_time_.begin()->first;
}

std::optional<epoch_ms> deadline_queue::deadline(const std::string& key) const {
  if (auto i = by_key_.find(key); i != by_key_.end())
    return i->second->first;
  return std::nullopt;
}

} // namespace ringback::engine
