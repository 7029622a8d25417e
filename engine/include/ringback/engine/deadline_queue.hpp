#pragma once

#include "ringback/engine/records.hpp"

#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace ringback::engine {

/// Timers keyed by name, one per key, fired in deadline order. Lets one
/// long-lived actor (the tenant) hold the timers of many short-lived ones, so
/// that a finished call is not kept alive by a pending timer. Not thread-safe.
class deadline_queue {
public:
  /// Arms (or re-arms) the timer of `key` at `at`.
  void arm(const std::string& key, epoch_ms at);

  /// Cancels the timer of `key`, if any.
  void cancel(const std::string& key);

  /// Removes and returns the keys whose deadline is <= now, earliest first.
  std::vector<std::string> pop_due(epoch_ms now);

  /// The earliest deadline, if any.
  std::optional<epoch_ms> next() const;

  std::size_t size() const {
    return by_key_.size();
  }

  bool contains(const std::string& key) const {
    return by_key_.count(key) > 0;
  }

  /// Every armed key, in no particular order.
  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    out.reserve(by_key_.size());
    for (const auto& kv : by_key_)
      out.push_back(kv.first);
    return out;
  }

private:
  std::multimap<epoch_ms, std::string> by_time_;
  std::unordered_map<std::string, std::multimap<epoch_ms, std::string>::iterator>
    by_key_;
};

} // namespace ringback::engine
