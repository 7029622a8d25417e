#pragma once

#include "ringback/adapters/http/http_message.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>

namespace ringback::adapters {

/// The one answer a request is owed. Handed to the handler as a
/// `std::shared_ptr<reply_slot>`; whoever holds it may answer, from any
/// thread (an io thread, a CAF scheduler thread, ...).
///
/// Single-shot and thread-safe: the first `reply` wins, later ones (and a
/// deadline expiring after it) do nothing and return false.
///
/// In the server, a slot keeps its connection alive until it is answered.
/// A slot destroyed unanswered answers for itself: with the fallback of its
/// deadline if one is set (an actor that died without answering is treated
/// as a late one), else `500`.
class reply_slot {
public:
  virtual ~reply_slot() = default;

  reply_slot(const reply_slot&) = delete;
  reply_slot& operator=(const reply_slot&) = delete;

  /// Answers the request. True if this call answered it; false if it had
  /// been answered already. If the client has gone, the answer is dropped
  /// (still true: the slot is spent).
  bool reply(http_response response);

  /// If nobody replies within `after` (counted from this call), the server
  /// sends `fallback` in the handler's place. A later call replaces the
  /// deadline and fallback of an earlier one. No-op once answered.
  void set_deadline(std::chrono::milliseconds after, http_response fallback);

  /// Whether the request has been answered (or is being answered).
  bool answered() const noexcept {
    return answered_.load();
  }

protected:
  reply_slot() = default;

  /// Marks the slot answered. True for the one caller that did it.
  bool claim() noexcept {
    return !answered_.exchange(true);
  }

  /// Sends `response`; called exactly once, by the winner of `claim()`, on
  /// the thread that replied.
  virtual void deliver(http_response response) = 0;

  /// Arranges for `reply(fallback)` to be called once `after` has passed;
  /// called from `set_deadline` on the caller's thread.
  virtual void
  arm_deadline(std::chrono::milliseconds after, http_response fallback)
    = 0;

private:
  std::atomic<bool> answered_{false};
};

/// A `reply_slot` that records what it is told, for testing handlers
/// without a server. Time does not pass by itself: `expire_deadline()`
/// plays the deadline.
class recording_reply_slot final : public reply_slot {
public:
  /// The answer, once there is one.
  std::optional<http_response> response() const;

  /// Waits up to `timeout` for an answer.
  std::optional<http_response> wait(std::chrono::milliseconds timeout) const;

  /// The last deadline set, if any.
  std::optional<std::chrono::milliseconds> deadline() const;

  /// Plays the deadline: replies with the fallback if one was set. Returns
  /// what that `reply` returned (false without a deadline).
  bool expire_deadline();

protected:
  void deliver(http_response response) override;
  void arm_deadline(std::chrono::milliseconds after,
                    http_response fallback) override;

private:
  mutable std::mutex mutex_;
  mutable std::condition_variable answered_cv_;
  std::optional<http_response> response_;
  std::optional<std::chrono::milliseconds> deadline_;
  std::optional<http_response> fallback_;
};

} // namespace ringback::adapters
