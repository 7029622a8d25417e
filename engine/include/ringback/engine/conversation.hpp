#pragma once

// The pure core of conversations: the owner-reply window and its race, AI
// takeover and take-back, batching of customer texts into AI turns, idle
// closing; and the texts the owner sees (`[#12 +1 303-555-1000] ...`) and
// writes (`#12 on my way`).
//
// Standard library only; no I/O, no clock. Every transition takes the stored
// record and returns the next one (seq bumped) and what to do. The host
// writes it with `store::update_conversation(next, c.seq)`: if another
// process wrote first, it reloads the record and applies the event again to
// what is stored now, so each window has exactly one outcome whichever
// process sees the owner's reply or the deadline first. Nothing here throws.

#include "ringback/engine/records.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringback::engine {

// `conversation_settings` is in records.hpp (a tenant setting).

/// What a transition asks the host to do (besides storing `next`).
struct conversation_effects {
  /// Forward the customer's message to the owner (`format_relay`).
  bool relay_to_owner = false;
  /// Send the owner's words to the customer.
  bool send_owner_text = false;
  /// Run an AI turn (the tenant's `conversation.owner_timeout` workflows).
  bool ai_turn = false;
  /// The turn is the takeover of a window (else a later batched turn).
  bool takeover = false;
  /// Send the owner the closing summary (`format_summary`).
  bool summary_to_owner = false;
  /// Audit events, in order ("opened", "reopened", "window_opened",
  /// "owner_won", "ai_won", "taken_back", "ai_cap_reached", "closed").
  std::vector<std::string> events;
};

/// The result of one transition.
struct conversation_step {
  conversation_record next;
  conversation_effects fx;
  /// False when the event changes nothing (a deadline that is not due, a
  /// window already decided): nothing to store or do.
  bool changed = false;
};

/// A customer texted the business (`at` = when it arrived). Opens or reopens
/// the conversation; relays the text to the owner; an unanswered message
/// opens the owner-reply window unless one is open (`owner_window`); while
/// the AI holds the conversation it schedules a batched AI turn instead
/// (`turn_at`, at most `max_ai_replies`, then the conversation goes back to
/// the owner with "ai_cap_reached"). Pushes `close_at` on.
conversation_step on_customer_message(const conversation_record& c,
                                      const conversation_settings& s,
                                      epoch_ms at);

/// The owner texted this conversation. In an open window the owner wins it
/// (exactly once: a window already won by the AI is not changed, the owner
/// takes the conversation back instead); from `ai_active` the owner takes
/// it back (the AI stops, a pending turn is dropped); a closed conversation
/// is reopened as `owner_active`. The owner's words are always sent.
conversation_step on_owner_message(const conversation_record& c,
                                   const conversation_settings& s, epoch_ms at);

/// A deadline may be due at `now`: the window (no outcome yet: the AI wins
/// it and takes over), a batched turn (`turn_at`, while `ai_active`), or the
/// idle close. Not due: `changed` false.
conversation_step on_due(const conversation_record& c,
                         const conversation_settings& s, epoch_ms now);

/// A missed call's text-back went to the customer: opens the conversation if
/// it is closed (as `owner_active`, no window: the customer has not written
/// yet) and pushes `close_at` on.
conversation_step on_text_back(const conversation_record& c,
                               const conversation_settings& s, epoch_ms at);

/// The earliest deadline of `c` (window, turn, close), 0 for none.
epoch_ms next_deadline(const conversation_record& c);

// -- the owner's texts ----------------------------------------------------------

/// An owner's text to the business number, read.
struct owner_reply {
  /// The conversation it names (`#12 ...`), if any; else the one the owner
  /// last heard from.
  std::optional<std::int32_t> ref;
  /// The words for the customer (without the `#12` prefix, trimmed).
  std::string text;
};

/// Reads "#12 on my way", "#12: on my way", "# 12, on my way" (ref 12) or
/// "on my way" (no ref). A `#` not followed by digits is part of the text.
/// Never throws.
owner_reply parse_owner_reply(std::string_view body);

/// "+1 303-555-1000" for a North American E.164 number, the number as given
/// otherwise.
std::string display_phone(std::string_view e164);

/// What the owner sees of a customer's text: "[#12 +1 303-555-1000] my
/// water heater is leaking", cut to `max_chars` bytes (at a word boundary,
/// with "...").
std::string format_relay(std::int32_t ref, std::string_view customer,
                         std::string_view body, std::size_t max_chars = 640);

/// The one-line summary the owner gets when a conversation closes:
/// "[#12 +1 303-555-1000] closed after 1 h: 4 from the customer, 1 from you,
/// 2 from the AI. Last: \"thanks!\"" (cut to `max_chars`).
std::string format_summary(const conversation_record& c,
                           const std::vector<conversation_message>& transcript,
                           epoch_ms now, std::size_t max_chars = 320);

} // namespace ringback::engine
