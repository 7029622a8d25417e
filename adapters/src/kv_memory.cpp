#include "ringback/adapters/kv/memory_kv.hpp"

#include <algorithm>
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

} // namespace

memory_kv_state::memory_kv_state(clock_function now) : now_(std::move(now)) {
  if (!now_) {
    now_ = &std::chrono::steady_clock::now;
  }
}

memory_kv_state::entry* memory_kv_state::live_entry(const std::string& key,
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

void memory_kv_state::insert(std::string key, std::string_view value,
                             time_point expires_at, time_point now) {
  entries_.insert_or_assign(std::move(key),
                            entry{std::string{value}, expires_at});
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

bool memory_kv_state::set_if_absent(std::string_view key,
                                    std::string_view value,
                                    std::chrono::milliseconds ttl) {
  check_ttl("set_if_absent", ttl);
  std::string k{key};
  std::lock_guard<std::mutex> guard{mutex_};
  auto now = now_();
  if (live_entry(k, now) != nullptr) {
    return false;
  }
  insert(std::move(k), value, now + ttl, now);
  return true;
}

bool memory_kv_state::claim(std::string_view key, std::string_view owner,
                            std::chrono::milliseconds ttl) {
  check_ttl("claim", ttl);
  std::string k{key};
  std::lock_guard<std::mutex> guard{mutex_};
  auto now = now_();
  if (auto* e = live_entry(k, now)) {
    if (e->value != owner) {
      return false;
    }
    e->expires_at = now + ttl;
    return true;
  }
  insert(std::move(k), owner, now + ttl, now);
  return true;
}

std::optional<std::string> memory_kv_state::get(std::string_view key) const {
  std::lock_guard<std::mutex> guard{mutex_};
  auto i = entries_.find(std::string{key});
  if (i == entries_.end() || i->second.expires_at <= now_()) {
    return std::nullopt;
  }
  return i->second.value;
}

std::optional<std::chrono::milliseconds>
memory_kv_state::ttl(std::string_view key) const {
  std::lock_guard<std::mutex> guard{mutex_};
  auto i = entries_.find(std::string{key});
  auto now = now_();
  if (i == entries_.end() || i->second.expires_at <= now) {
    return std::nullopt;
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(
    i->second.expires_at - now);
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

bool memory_kv::ping() {
  return true;
}

} // namespace ringback::adapters
