#pragma once

#include "ringback/engine/ports.hpp"

#include <chrono>
#include <cstdint>
#include <optional>

namespace ringback::engine {

/// Exponential backoff with full jitter for carrier requests.
struct retry_policy {
  std::chrono::milliseconds base{1'000};
  std::chrono::milliseconds cap{60'000};
  std::int32_t max_attempts = 8;

  /// Delay before the next attempt after `attempts` failed ones ended with
  /// `status`, or nullopt when the request must not be tried again (success,
  /// a permanent error, or attempts used up). `jitter` in [0, 1) picks the
  /// point in the backoff window; a `Retry-After` is honoured as a minimum.
  std::optional<std::chrono::milliseconds>
  next_delay(std::int32_t attempts, const carrier_status& status,
             double jitter) const;
};

} // namespace ringback::engine
