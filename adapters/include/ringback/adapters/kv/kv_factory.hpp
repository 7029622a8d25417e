#pragma once

#include "ringback/adapters/kv/memory_kv.hpp"
#include "ringback/adapters/kv/redis_kv.hpp"
#include "ringback/engine/ports.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace ringback::adapters {

/// Makes `engine::kv` instances for one configured kv URL:
///
/// - `memory`: every instance made by the same factory (or its copies)
///   shares one `memory_kv_state`, so the kv executor's worker threads see
///   each other's keys just as they would through one Redis. Two factories
///   made from `memory` share nothing.
/// - `redis://[[user]:password@]host[:port][/db]`: every instance is its own
///   `redis_kv` connection (one per worker thread), connected lazily.
///
/// Build one at start-up in the composition root and hand it to the kv
/// executor, which calls `make_kv()` once per worker thread. Copyable;
/// `make_kv()` is thread-safe.
class kv_factory {
public:
  /// Validates `url`. Throws `std::invalid_argument` with a message fit for
  /// a fatal start-up error:
  /// `unsupported kv URL 'x': expected memory or redis://host:port/db`, or
  /// `invalid kv URL 'redis://h:x/0': bad port 'x'` (password masked).
  explicit kv_factory(std::string_view url, redis_kv_options options = {});

  /// A new kv handle; see the class comment for what instances share.
  std::unique_ptr<engine::kv> make_kv() const;

  bool is_memory() const noexcept {
    return memory_ != nullptr;
  }

  /// The URL for logs, password masked.
  const std::string& display_url() const noexcept {
    return display_url_;
  }

  /// The state shared by the memory instances (null for Redis).
  const std::shared_ptr<memory_kv_state>& memory_state() const noexcept {
    return memory_;
  }

private:
  std::shared_ptr<memory_kv_state> memory_;
  std::optional<redis_url> redis_;
  redis_kv_options options_;
  std::string display_url_;
};

} // namespace ringback::adapters
