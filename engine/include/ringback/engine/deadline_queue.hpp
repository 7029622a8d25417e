#pragma once

#include "ringback/engine/records.hpp"

#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace ringback::engine {

/// Timers keyed by name, one per key, fired in deadline order (keys armed
/// for the same deadline in the order they were armed). Lets one long-lived
/// actor (the tenant) hold the timers of many short-lived or passivated ones,
/// so that a finished call is not kept alive by a pending timer. Each key is
/// stored once: the time index points at the key held by the key index
/// (whose elements never move). Not thread-safe.
class deadline_queue {
public:
  /// Arms (or re-arms) the timer of `key` at `at`. Re-arming keeps the key's
  /// storage and moves its deadline (to the back of the keys due at `at`).
  void arm(const std::string& key, epoch_ms at);

  /// Cancels the timer of `key`, if any.
  void cancel(const std::string& key);

  /// Removes and returns the keys whose deadline is <= now, earliest first.
  std::vector<std::string> pop_due(epoch_ms now);

  /// The earliest deadline, if any.
  std::optional<epoch_ms> next() const;

  /// The deadline of `key`, if armed.
  std::optional<epoch_ms> deadline(const std::string& key) const;

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
  /// Deadline -> the key, as a pointer into `by_key_` (references to the
  /// elements of an unordered_map stay valid until they are erased).
  using time_index = std::multimap<epoch_ms, const std::string*>;
  time_index by_time_;
  std::unordered_map<std::string, time_index::iterator> by_key_;
};

} // namespace ringback::engine
