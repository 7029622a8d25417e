#pragma once

// The AI port: answers a customer's conversation on the owner's behalf when
// the owner stays silent. Two adapters: an OpenAI-compatible chat-completions
// client (hosted or local servers: llama.cpp, vLLM, Ollama) and the built-in
// offline responder below, which needs no network and is the fallback of the
// other: the customer is never left without an answer.

#include "ringback/engine/records.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringback::engine {

// `business_profile` is in records.hpp (a tenant setting).

/// One message of a conversation, as the AI sees it.
struct ai_turn {
  enum class speaker : std::uint8_t { customer, owner, ai };
  speaker who = speaker::customer;
  std::string text;
  epoch_ms at = 0;
};

/// "customer", "owner", "ai".
const char* to_string(ai_turn::speaker x);

/// What a customer's message is about.
enum class intent : std::uint8_t {
  emergency,      ///< water everywhere, no heat, gas smell, sparks...
  booking,        ///< wants someone to come / an appointment
  quote,          ///< price, cost, estimate
  hours_location, ///< opening hours, where, which area is served
  opt_out,        ///< wants no more texts (in words, not a STOP keyword)
  other,
};

/// "emergency", "booking", "quote", "hours_location", "opt_out", "other".
const char* to_string(intent x);
std::optional<intent> parse_intent(std::string_view x);

/// One AI turn to produce.
struct ai_request {
  std::string tenant_id;
  business_profile profile;
  /// The conversation so far, oldest first; the last customer messages (one
  /// or several, batched) are what to answer.
  std::vector<ai_turn> transcript;
  /// Replies longer than this are cut at a sentence or word boundary.
  std::size_t max_chars = 320;
};

/// What came of an `ai_request`. Never empty-handed: `text` is always set
/// (the offline responder answers when the AI cannot).
struct ai_reply {
  std::string text;
  /// What the customer's last messages were taken to be about (the offline
  /// classifier's reading; also set when the model answered).
  intent about = intent::other;
  /// "openai" or "offline": who wrote `text`.
  std::string provider;
  std::string model; ///< empty for offline
  std::int32_t prompt_tokens = 0;
  std::int32_t completion_tokens = 0;
  /// Estimated cost in US dollars of the tokens the model reported (0 when
  /// it was never asked; kept when it answered but its answer was unusable
  /// and the offline responder wrote `text`: those tokens were paid for).
  double cost_usd = 0;
  std::int64_t latency_ms = 0;
  /// Attempts made at the model (0 for offline).
  std::int32_t attempts = 0;
  /// Why the model did not answer (then `provider` is "offline"); empty if it
  /// did or was never asked.
  std::string error;
};

/// Produces AI turns.
///
/// Blocking: runs on a worker thread of its own (one instance per worker,
/// used from one thread at a time). Never throws but `std::bad_alloc`.
class ai_responder {
public:
  virtual ~ai_responder() = default;

  virtual ai_reply respond(const ai_request& req) = 0;
};

// -- the offline responder (pure) ---------------------------------------------

/// Classifies a customer's text by keywords and phrases (English; case and
/// punctuation ignored): emergency words win over everything, then opt-out
/// phrases, booking, quote, hours/location; anything else is `other`.
/// Never throws.
intent classify_intent(std::string_view text);

/// A templated answer from the profile for the customer messages at the end
/// of `req.transcript` (all of them since the last owner or AI message, read
/// together): emergencies are told the owner is being paged (and the number
/// to call), bookings get the booking link (or a promise of a call back),
/// quotes an honest "depends, someone will confirm", hours and area from the
/// profile, opt-out phrases how to stop (reply STOP). Within
/// `req.max_chars`. Never throws.
ai_reply offline_reply(const ai_request& req);

/// Cuts `text` to at most `max_chars` bytes at the last sentence end (". ",
/// "! ", "? ") or, failing that, the last space, without splitting a UTF-8
/// sequence; adds nothing. Text within the limit is returned unchanged
/// (surrounding white space trimmed).
std::string cap_reply(std::string_view text, std::size_t max_chars);

} // namespace ringback::engine
