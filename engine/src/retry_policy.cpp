#include "ringback/engine/retry_policy.hpp"

#include <algorithm>

namespace ringback::engine {

std::optional<std::chrono::milliseconds>
retry_policy::next_delay(std::int32_t attempts, const carrier_status& status,
                         double jitter) const {
  using std::chrono::milliseconds;
  if (status.ok || !status.retryable() || attempts >= max_attempts)
    return std::nullopt;
  // Window doubles per attempt: base, 2 base, 4 base ... capped.
  auto shift = std::clamp(attempts - 1, 0, 30);
  auto window = std::min<std::int64_t>(cap.count(), base.count() << shift);
  jitter = std::clamp(jitter, 0.0, 1.0);
  // Half fixed, half jittered: never hammer, never wait for nothing.
  auto delay = milliseconds{window / 2
                            + static_cast<std::int64_t>(jitter * (window / 2))};
  if (status.retry_after)
    delay = std::max(delay, *status.retry_after);
  return std::min(delay, std::max(cap, status.retry_after.value_or(cap)));
}

} // namespace ringback::engine
