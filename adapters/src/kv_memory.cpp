#include "ringback/adapters/kv/memory_kv.hpp"
#include "ringback/engine/messaging.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <random>
#include <utility>

namespace ringback::adapters {

namespace {

/// Sweep after this many inserts at least, and after as many inserts as
/// there were keys left by the last sweep: each sweep, O(keys), is paid for
/// by as many inserts, so it costs O(1) amortised per insert.
constexpr std::size_t min_inserts_between_sweeps = 1024;

void check_ttl(const char* what, std::chrono::milliseconds ttl) {
  if (ttl.count() <= 0) {
    throw engine::port_error(std::string{"memory kv "} + what
                             + ": ttl must be positive, got "
                             + std::to_string(ttl.count()) + " ms");
  }
}

/// A stored time as the script reads it (`tonumber(GET) or 0`), for the
/// integers both write; anything else counts as never used.
engine::epoch_ms parse_tat(const std::string& x) {
  engine::epoch_ms out = 0;
  auto [end, ec] = std::from_chars(x.data(), x.data() + x.size(), out);
  if (ec != std::errc{} || end != x.data() + x.size()) {
    return 0;
  }
  return out;
}

/// The script's time to live of a stored time: just past the moment it stops
/// mattering. Saturating: the request's `now` is untrusted.
engine::epoch_ms pace_ttl_ms(engine::epoch_ms tat, engine::epoch_ms now) {
  engine::epoch_ms out = 0;
  if (__builtin_sub_overflow(tat, now, &out)
      || __builtin_add_overflow(out, engine::epoch_ms{1000}, &out)) {
    return tat > now ? std::numeric_limits<engine::epoch_ms>::max() : 1;
  }
  return out;
}

/// `now + ms`, saturated at the end of the clock (a TTL can be as long as
/// burst x the longest interval, more than a steady clock can add).
memory_kv_state::time_point later(memory_kv_state::time_point now,
                                  engine::epoch_ms ms) {
  using tp = memory_kv_state::time_point;
  auto room
    = std::chrono::duration_cast<std::chrono::milliseconds>(tp::max() - now);
  if (ms >= room.count()) {
    return tp::max();
  }
  return now + std::chrono::milliseconds{std::max<engine::epoch_ms>(ms, 1)};
}

/// MurmurHash64A (Austin Appleby, public domain) of `key` with `seed`.
std::uint64_t murmur64(std::string_view key, std::uint64_t seed) noexcept {
  constexpr std::uint64_t m = 0xc6a4a7935bd1e995ULL;
  constexpr int r = 47;
  const auto len = key.size();
  std::uint64_t h = seed ^ (len * m);
  const char* p = key.data();
  const char* end = p + (len / 8) * 8;
  for (; p != end; p += 8) {
    std::uint64_t k = 0;
    std::memcpy(&k, p, 8);
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
  }
  const auto tail = len & 7;
  if (tail != 0) {
    std::uint64_t k = 0;
    std::memcpy(&k, p, tail); // little-endian: as the reference's switch
    h ^= k;
    h *= m;
  }
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return h;
}

std::uint64_t random_seed() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

} // namespace

memory_kv_state::memory_kv_state(clock_function now)
  : seed_lo_(random_seed()), seed_hi_(random_seed()), now_(std::move(now)) {
  if (!now_) {
    now_ = &std::chrono::steady_clock::now;
  }
}

memory_kv_state::key_hash
memory_kv_state::hash(std::string_view key) const noexcept {
  return key_hash{murmur64(key, seed_lo_), murmur64(key, seed_hi_)};
}

const memory_kv_state::entry* memory_kv_state::find_live(const key_hash& key,
                                                         time_point now) const {
  auto i = entries_.find(key);
  if (i == entries_.end() || i->second.expires_at <= now) {
    return nullptr;
  }
  return &i->second;
}

memory_kv_state::entry* memory_kv_state::live_entry(const key_hash& key,
                                                    time_point now) {
  auto i = entries_.find(key);
  if (i == entries_.end()) {
    return nullptr;
  }
  if (i->second.expires_at <= now) {
    entries_.erase(i);
    return nullptr;
  }
  return &i->second;
}

void memory_kv_state::insert(const key_hash& key, std::string_view value,
                             time_point expires_at, time_point now) {
  entries_.insert_or_assign(key, entry{std::string{value}, expires_at});
  if (++inserts_since_sweep_ < sweep_threshold_) {
    return;
  }
  inserts_since_sweep_ = 0;
  for (auto i = entries_.begin(); i != entries_.end();) {
    if (i->second.expires_at <= now) {
      i = entries_.erase(i);
    } else {
      ++i;
    }
  }
  sweep_threshold_ = std::max(min_inserts_between_sweeps, entries_.size());
}

void memory_kv_state::put(const key_hash& key, std::string_view value,
                          time_point expires_at, time_point now) {
  if (auto* e = live_entry(key, now)) {
    e->value.assign(value.data(), value.size());
    e->expires_at = expires_at;
    return;
  }
  insert(key, value, expires_at, now);
}

bool memory_kv_state::set_if_absent(std::string_view key,
                                    std::string_view value,
                                    std::chrono::milliseconds ttl) {
  check_ttl("set_if_absent", ttl);
  const auto k = hash(key);
  std::lock_guard<std::mutex> guard{mutex_};
  auto now = now_();
  if (live_entry(k, now) != nullptr) {
    return false;
  }
  insert(k, value, now + ttl, now);
  return true;
}

bool memory_kv_state::claim(std::string_view key, std::string_view owner,
                            std::chrono::milliseconds ttl) {
  check_ttl("claim", ttl);
  const auto k = hash(key);
  std::lock_guard<std::mutex> guard{mutex_};
  auto now = now_();
  if (auto* e = live_entry(k, now)) {
    if (e->value != owner) {
      return false;
    }
    e->expires_at = now + ttl;
    return true;
  }
  insert(k, owner, now + ttl, now);
  return true;
}

engine::pace_answer memory_kv_state::pace(const engine::pace_request& r) {
  if (r.number_key.empty()) {
    throw engine::port_error("memory kv pace: number_key is empty");
  }
  if (r.tenant && r.tenant_key.empty()) {
    throw engine::port_error("memory kv pace: a tenant cap needs a tenant_key");
  }
  const auto number_key = hash(r.number_key);
  const auto tenant_key = hash(r.tenant_key);
  std::lock_guard<std::mutex> guard{mutex_};
  auto now = now_();
  auto stored = [&](const key_hash& key) -> engine::epoch_ms {
    auto* e = live_entry(key, now);
    return e != nullptr ? parse_tat(e->value) : 0;
  };
  auto number_tat = stored(number_key);
  engine::epoch_ms tenant_tat = 0;
  if (r.tenant) {
    tenant_tat = stored(tenant_key);
  }
  auto result = engine::gcra_pair(number_tat, tenant_tat, r.now, r.number,
                                  r.tenant);
  if (!result.allowed) {
    return {false, result.retry_after_ms};
  }
  put(number_key, std::to_string(result.number_tat),
      later(now, pace_ttl_ms(result.number_tat, r.now)), now);
  if (r.tenant) {
    put(tenant_key, std::to_string(result.tenant_tat),
        later(now, pace_ttl_ms(result.tenant_tat, r.now)), now);
  }
  return {true, 0};
}

std::optional<std::string> memory_kv_state::get(std::string_view key) const {
  const auto k = hash(key);
  std::lock_guard<std::mutex> guard{mutex_};
  auto* e = find_live(k, now_());
  if (e == nullptr) {
    return std::nullopt;
  }
  return e->value;
}

std::optional<std::chrono::milliseconds>
memory_kv_state::ttl(std::string_view key) const {
  const auto k = hash(key);
  std::lock_guard<std::mutex> guard{mutex_};
  auto now = now_();
  auto* e = find_live(k, now);
  if (e == nullptr) {
    return std::nullopt;
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(e->expires_at
                                                               - now);
}

std::size_t memory_kv_state::size() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return entries_.size();
}

memory_kv::memory_kv() : state_(std::make_shared<memory_kv_state>()) {
  // nop
}

memory_kv::memory_kv(std::shared_ptr<memory_kv_state> state)
  : state_(std::move(state)) {
  if (!state_) {
    state_ = std::make_shared<memory_kv_state>();
  }
}

bool memory_kv::set_if_absent(std::string_view key, std::string_view value,
                              std::chrono::milliseconds ttl) {
  return state_->set_if_absent(key, value, ttl);
}

bool memory_kv::claim(std::string_view key, std::string_view owner,
                      std::chrono::milliseconds ttl) {
  return state_->claim(key, owner, ttl);
}

engine::pace_answer memory_kv::pace(const engine::pace_request& r) {
  return state_->pace(r);
}

bool memory_kv::ping() {
  return true;
}

} // namespace ringback::adapters
