#pragma once

#include "ringback/engine/ports.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace ringback::adapters {

/// The data behind one or more `memory_kv` handles: a map of keys to values
/// with a deadline each. Thread-safe (one mutex). Share one instance between
/// several `memory_kv` to emulate one Redis seen by several workers or
/// processes.
///
/// Expiry is lazy: an expired key is treated as absent when it is touched,
/// and a sweep that costs O(1) amortised per write drops the ones nobody
/// touches again, so memory stays bounded by the live keys.
///
/// Keys are not kept, only a 128-bit hash of each (two 64-bit MurmurHash2
/// with seeds drawn at random per state), next to the value and the
/// deadline: a dedup key that outlives its call by 24 h costs one 64-byte
/// map node (~90 B with the allocator's header and the bucket), not a copy
/// of the key's text. Two distinct keys collide (the second would be taken
/// for the first) with probability about n^2 / 2^129 for n live keys: below
/// 10^-20 for a billion keys. The seeds are not known outside the process,
/// so keys cannot be crafted to collide.
class memory_kv_state {
public:
  using time_point = std::chrono::steady_clock::time_point;

  /// Where the state reads the time; `steady_clock::now` unless a test
  /// injects a fake. Must be thread-safe.
  using clock_function = std::function<time_point()>;

  explicit memory_kv_state(clock_function now
                           = &std::chrono::steady_clock::now);

  /// See `engine::kv::set_if_absent`. Throws `engine::port_error` if `ttl`
  /// is not positive.
  bool set_if_absent(std::string_view key, std::string_view value,
                     std::chrono::milliseconds ttl);

  /// See `engine::kv::claim`: sets `key` to `owner` if absent, or refreshes
  /// its TTL if it holds `owner` already. Throws `engine::port_error` if
  /// `ttl` is not positive.
  bool claim(std::string_view key, std::string_view owner,
             std::chrono::milliseconds ttl);

  /// See `engine::kv::pace`: `engine::gcra_pair` over the stored theoretical
  /// arrival times, under the mutex. Only an allowed send writes: each time
  /// as decimal epoch milliseconds, living `tat - now + 1 s` (as
  /// `engine::gcra_lua_script` does; `now` is the request's). A stored value
  /// that is not an integer counts as 0, as in the script. Throws
  /// `engine::port_error` if `r.number_key` is empty (`memory kv pace:
  /// number_key is empty`) or `r.tenant` is set with an empty
  /// `r.tenant_key` (`memory kv pace: a tenant cap needs a tenant_key`); a
  /// `tenant_key` without `tenant` is no cap.
  engine::pace_answer pace(const engine::pace_request& r);

  /// The live value of `key`, if any (tests and diagnostics).
  std::optional<std::string> get(std::string_view key) const;

  /// Remaining time to live of `key`, if it is live (tests and diagnostics).
  std::optional<std::chrono::milliseconds> ttl(std::string_view key) const;

  /// Number of stored keys, expired ones not yet swept included.
  std::size_t size() const;

private:
  /// A key as stored: its 128-bit hash.
  struct key_hash {
    std::uint64_t lo = 0;
    std::uint64_t hi = 0;

    friend bool operator==(const key_hash& a, const key_hash& b) noexcept {
      return a.lo == b.lo && a.hi == b.hi;
    }
  };

  struct key_hasher {
    std::size_t operator()(const key_hash& k) const noexcept {
      return static_cast<std::size_t>(k.lo);
    }
  };

  struct entry {
    std::string value;
    time_point expires_at;
  };

  using map_type = std::unordered_map<key_hash, entry, key_hasher>;

  key_hash hash(std::string_view key) const noexcept;

  /// The live entry of `key` or nullptr; erases it if expired. Needs mutex_.
  entry* live_entry(const key_hash& key, time_point now);

  /// The live entry of `key` or nullptr, erasing nothing. Needs mutex_.
  const entry* find_live(const key_hash& key, time_point now) const;

  /// Stores a new entry and sweeps expired ones now and then. Needs mutex_.
  void insert(const key_hash& key, std::string_view value,
              time_point expires_at, time_point now);

  /// Sets `key` to `value` until `expires_at`, whether or not it exists.
  /// Needs mutex_.
  void put(const key_hash& key, std::string_view value, time_point expires_at,
           time_point now);

  std::uint64_t seed_lo_;
  std::uint64_t seed_hi_;
  clock_function now_;
  mutable std::mutex mutex_;
  map_type entries_;
  std::size_t inserts_since_sweep_ = 0;
  std::size_t sweep_threshold_ = 1024;
};

/// `engine::kv` in process memory: dedup, claims and pacing for a single
/// process (and the fake used by tests). Handles are cheap; every handle
/// built on the same `memory_kv_state` sees the same keys. Thread-safe.
class memory_kv final : public engine::kv {
public:
  /// A handle on a private, fresh state.
  memory_kv();

  /// A handle on `state` (null: a fresh private state).
  explicit memory_kv(std::shared_ptr<memory_kv_state> state);

  bool set_if_absent(std::string_view key, std::string_view value,
                     std::chrono::milliseconds ttl) override;

  bool claim(std::string_view key, std::string_view owner,
             std::chrono::milliseconds ttl) override;

  /// See `memory_kv_state::pace`.
  engine::pace_answer pace(const engine::pace_request& r) override;

  /// Always true.
  bool ping() override;

  const std::shared_ptr<memory_kv_state>& state() const noexcept {
    return state_;
  }

private:
  std::shared_ptr<memory_kv_state> state_;
};

} // namespace ringback::adapters
