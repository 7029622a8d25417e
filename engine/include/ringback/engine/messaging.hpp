#pragma once

// The pure core of safe messaging: inbound keyword classification (STOP,
// START, HELP), the per-tenant opt-out ledger as a value, the pre-send gate and
// its guards, pacing math (GCRA, and the same algorithm as a Redis Lua script),
// forward-only delivery states with Twilio's MessageStatus mapping, and the
// carrier's permanent error codes.
//
// Standard library only. No I/O and no clock: time comes in as arguments, and
// everything the gate needs to know about the world (the ledger, counts from
// the store) comes in as facts looked up by the caller. Nothing here throws.

#include "ringback/engine/records.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ringback::engine {

// -- inbound keywords ---------------------------------------------------------

/// What an inbound message asks of the messaging layer.
enum class keyword_kind : std::uint8_t {
  none,    ///< an ordinary message
  opt_out, ///< STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT
  opt_in,  ///< START, YES, UNSTOP
  help,    ///< HELP, INFO
};

/// "none", "opt_out", "opt_in", "help".
const char* to_string(keyword_kind x);
std::optional<keyword_kind> parse_keyword_kind(std::string_view x);

/// A classified inbound message.
struct keyword_match {
  keyword_kind kind = keyword_kind::none;
  /// The keyword in its canonical upper-case spelling ("STOP"), pointing into
  /// static storage; empty for `none`.
  std::string_view keyword;
};

/// Classifies an inbound SMS body by the carriers' keyword rules (CTIA, as
/// Twilio applies them on long codes): the whole message must be one keyword.
/// Tolerated around it: any letter case, surrounding white space (ASCII and
/// Unicode spaces, zero-width characters, a byte-order mark) and trailing
/// punctuation (`. ! ? , ; :` and the ideographic full stop or an ellipsis),
/// so "Stop.", " stop ", "STOP!!" and "ｓｔｏｐ" (full-width forms, folded to
/// ASCII) are opt-outs. Anything else around the word ("please stop calling
/// me", "stop by tomorrow", "STOP ALL", "\"stop\"") makes it an ordinary
/// message, as does a keyword written with letters of another script (a
/// Cyrillic "О" in "STОP"), accents ("stóp"), keywords of other languages
/// ("ARRET") and invalid UTF-8: they are not the carrier's keywords either, so
/// the ledger stays in step with the carrier's own. Bodies longer than 256
/// bytes are never keywords. Never throws.
keyword_match classify_keyword(std::string_view body);

// -- the opt-out ledger -------------------------------------------------------

/// What last set an opt-out state.
enum class opt_out_source : std::uint8_t {
  none,    ///< never changed
  keyword, ///< an inbound keyword (STOP, START...)
  carrier, ///< the carrier refused a send (error 21610)
};

/// "none", "keyword", "carrier".
const char* to_string(opt_out_source x);
std::optional<opt_out_source> parse_opt_out_source(std::string_view x);

/// Whether one phone number has opted out of one tenant's texts, across all
/// of the tenant's numbers. A value: the store keeps one row per tenant and
/// phone; a phone without a row is not opted out.
struct opt_out_state {
  std::string tenant_id;
  std::string phone; ///< E.164
  bool opted_out = false;
  /// When `opted_out` took its current value; 0 if it never changed.
  epoch_ms since = 0;
  /// What set it: the canonical keyword ("STOP", "START") or, for the
  /// carrier, the error code ("21610"). Empty if it never changed.
  std::string keyword;
  opt_out_source source = opt_out_source::none;
  /// Time of the newest event applied or found to change nothing. Events
  /// older than this (inbound messages handled out of order by several
  /// processes) are stale and change nothing.
  epoch_ms last_event_at = 0;
};

/// The outcome of one ledger event.
struct opt_out_transition {
  opt_out_state state; ///< the new state
  /// `opted_out` flipped (an opt-out or an opt-in to act on and count).
  bool changed = false;
  /// `state` differs from the old one and must be written (also when only
  /// `last_event_at` moved on: a no-op START still orders later events).
  bool persist = false;
  /// Why, for the audit trail, e.g. "opted out by STOP".
  std::string note;
};

/// Applies an inbound keyword received at `at` to `state`: an opt-out keyword
/// opts out (a repeated STOP is a no-op that keeps the first STOP's time), an
/// opt-in keyword opts back in (a no-op unless opted out), HELP and ordinary
/// messages change nothing. An event older than `state.last_event_at` is
/// stale and changes nothing. Never throws.
opt_out_transition apply_keyword(const opt_out_state& state,
                                 const keyword_match& keyword, epoch_ms at);

/// Applies a carrier error reported for a send at `at`: error 21610 (the
/// recipient unsubscribed at the carrier, see `means_opted_out`) records an
/// opt-out; any other code changes nothing. Stale events change nothing, as
/// in `apply_keyword`. Never throws.
opt_out_transition apply_carrier_error(const opt_out_state& state,
                                       int error_code, epoch_ms at);

// -- the pre-send gate --------------------------------------------------------

/// "text_back", "automated", "relayed", "compliance", "notification".
const char* to_string(send_kind x);
std::optional<send_kind> parse_send_kind(std::string_view x);

/// A message about to be sent (or queued) for a tenant.
struct outbound_candidate {
  std::string tenant_id;
  std::string from; ///< the tenant's sending number
  std::string to;   ///< the recipient, E.164 or whatever the workflow made
  send_kind kind = send_kind::automated;
  /// Urgent messages (text-backs right after a call) are never held in quiet
  /// hours; non-urgent automated ones (follow-ups) wait for their end.
  bool urgent = true;
};

/// What the caller looked up about the recipient before asking the gate
/// (store and kv). Counts are over the windows of the `gate_settings` passed
/// along, ending at `now`, and do not include the candidate itself.
struct gate_facts {
  /// The tenant's opt-out ledger says the recipient opted out.
  bool opted_out = false;
  /// The recipient is one of this tenant's business numbers (not the
  /// owner's own phone: texts to the owner are notifications).
  bool own_number = false;
  /// The recipient is a number of another tenant of this deployment.
  bool other_tenant_number = false;
  /// When this tenant last sent a missed-call text-back to the recipient.
  std::optional<epoch_ms> last_text_back_at;
  /// Automated messages (text-backs included) sent to or queued for the
  /// recipient by this tenant in the last hour.
  std::int32_t automated_last_hour = 0;
  /// Messages exchanged with the recipient, both directions, over
  /// `gate_settings::loop_window`.
  std::int32_t exchanged_in_loop_window = 0;
  /// Calls from the recipient (the caller) over
  /// `gate_settings::caller_rate_window`, the call that triggered this
  /// message included.
  std::int32_t calls_in_rate_window = 0;
  /// Set when `now` falls in the tenant's quiet hours: the instant they end
  /// (computed from the tenant's calendar and timezone elsewhere).
  std::optional<epoch_ms> quiet_hours_end;
};

// `gate_settings` (the guards, each a tenant setting) is in records.hpp.

/// Why a message was held or refused. The names (`to_string`) are stable:
/// metrics labels and audit rows use them.
enum class gate_reason : std::uint8_t {
  none,              ///< sent
  quiet_hours,       ///< held until the tenant's quiet hours end
  invalid_recipient, ///< neither an E.164 number nor a short code
  short_code,        ///< 5 or 6 digits: a service, not a person
  own_number,        ///< one of the tenant's own numbers
  other_tenant,      ///< a number of another tenant
  opted_out,         ///< the recipient opted out of this tenant's texts
  loop_suspected,    ///< too many messages exchanged in a short time
  caller_rate,       ///< the caller calls too often
  repeat_caller,     ///< already got a text-back within the window
  automated_cap,     ///< too many automated messages this hour
};

/// "none", "quiet_hours", "invalid_recipient", "short_code", "own_number",
/// "other_tenant", "opted_out", "loop_suspected", "caller_rate",
/// "repeat_caller", "automated_cap".
const char* to_string(gate_reason x);
std::optional<gate_reason> parse_gate_reason(std::string_view x);

/// The gate's answer.
struct gate_decision {
  enum class verdict : std::uint8_t { send, hold, refuse };
  verdict what = verdict::send;
  /// For `hold`: when to ask the gate again.
  epoch_ms hold_until = 0;
  gate_reason reason = gate_reason::none;
  /// For people (audit trail, logs); empty for `send`.
  std::string message;

  bool sends() const {
    return what == verdict::send;
  }
  bool holds() const {
    return what == verdict::hold;
  }
  bool refuses() const {
    return what == verdict::refuse;
  }
};

/// Decides whether `candidate` may be sent at `now`. Checks, in this order,
/// and answers with the first that applies:
/// 1. the recipient is a short code or not an E.164 number, the tenant's own
///    number or another tenant's (every kind);
/// 2. the recipient opted out (every kind but `compliance`);
/// 3. a bot loop (every kind but `relayed` and `notification`);
/// 4. for text-backs: the caller rate, then the repeat caller;
/// 5. for text-backs and automated messages: the automated cap, then quiet
///    hours (a non-urgent one is held until `facts.quiet_hours_end` if that
///    is after `now`).
/// Never throws.
gate_decision decide(const outbound_candidate& candidate,
                     const gate_facts& facts, const gate_settings& settings,
                     epoch_ms now);

/// True for "+" and 8 to 15 digits, the first not 0 (as the workflows'
/// `is_e164`).
bool is_e164(std::string_view x);

/// True for 5 or 6 digits without "+": a (US-style) short code.
bool is_short_code(std::string_view x);

/// "24 h", "1 h 30 min", "10 min", "2 min 5 s", "45 s", "250 ms", "0 s": the
/// largest unit, and the next one unless it is 0, rounded down (1 h 0 min 5 s
/// is "1 h"). Negative durations read as 0.
std::string format_duration(std::chrono::milliseconds d);

// -- pacing -------------------------------------------------------------------

// `pace` is in records.hpp.

/// The carrier's default pace of a kind of sending number: long code 1/s,
/// toll-free 3/s, short code 100/s, each with a burst of 1 (sends spread
/// evenly at the rate, never ahead of it). A number's configured `mps`
/// overrides the rate.
pace default_pace(number_kind kind);

/// Result of one GCRA step.
struct gcra_result {
  bool allowed = false;
  /// When refused: how long until a send would be allowed (> 0). 0 when
  /// allowed.
  epoch_ms retry_after_ms = 0;
  /// The theoretical arrival time to store: advanced by one emission
  /// interval when allowed, the given one when refused.
  epoch_ms tat = 0;
};

/// The emission interval of `rate_per_s` in whole milliseconds, rounded up
/// (so pacing never exceeds the rate; 3/s paces at 334 ms), at least 1 ms
/// (rates above 1000/s pace at 1000/s) and at most 365 days. 0 for a rate
/// that is not a positive finite number.
epoch_ms emission_interval_ms(double rate_per_s);

/// The generic cell rate algorithm over a stored theoretical arrival time
/// `tat` (0 for a number never used): allows a send at `now` if at most
/// `burst` sends are "ahead" of the pace, and then moves `tat` one emission
/// interval on. Idle time refills the burst, never beyond it. A clock that
/// goes back a little only makes the next sends wait that much longer (tat is
/// never moved back), so the pace is never exceeded on the writer's clock. A
/// rate that is not a positive finite number refuses with a retry after 1 s;
/// `burst` is clamped to 1 .. 1'000'000. Never throws.
gcra_result gcra(epoch_ms tat, epoch_ms now, double rate_per_s, int burst);

/// Result of pacing a send against its number and its tenant.
struct paced_result {
  bool allowed = false;
  epoch_ms retry_after_ms = 0;
  epoch_ms number_tat = 0;
  epoch_ms tenant_tat = 0;
};

/// GCRA on both the sending number's pace and the tenant's cap (if any): the
/// send is allowed only if both allow it, and only then do both stored times
/// move on (a refusal by one does not use up the other's capacity). The
/// retry is the longer of the two. Never throws.
paced_result gcra_pair(epoch_ms number_tat, epoch_ms tenant_tat, epoch_ms now,
                       const pace& number, const std::optional<pace>& tenant);

/// The kv key of a sending number's pacing state. The tenant id is a Redis
/// hash tag (`{acme}`) so that a number's and its tenant's keys live in one
/// cluster slot and one script may touch both.
std::string pace_key_for_number(std::string_view tenant_id,
                                std::string_view number);

/// The kv key of a tenant's pacing cap (same hash tag).
std::string pace_key_for_tenant(std::string_view tenant_id);

/// The same algorithm as `gcra_pair` as a Redis Lua script (EVAL / EVALSHA).
/// KEYS[1]: the number's key; ARGV[1]: now (epoch ms), ARGV[2]: rate per
/// second, ARGV[3]: burst. Optionally KEYS[2] (the tenant's key) with
/// ARGV[4] and ARGV[5] (its rate and burst). Returns {allowed (1 or 0),
/// retry_after_ms}. Stores the new times (as integer strings) only when
/// allowed, with a time to live just past the moment they stop mattering, so
/// that a key left by a clock far in the future expires by itself.
extern const std::string gcra_lua_script;

/// `kv::pace_slots` as one Redis Lua script: up to ARGV[2] slots within
/// ARGV[3] ms, decided step by step as `pace_slots_by_asking` over
/// `gcra_pair` decides them. KEYS as `gcra_lua_script`; ARGV[1]: now,
/// ARGV[4], ARGV[5]: the number's rate and burst, ARGV[6], ARGV[7]: the
/// tenant's. Returns {granted, retry after (ms, when none), start 1, ...}.
extern const std::string gcra_slots_lua_script;

// -- delivery state -----------------------------------------------------------

/// True if a message in state `from` may move to `to`: strictly forward along
/// queued -> sending -> sent -> delivered | undelivered | failed, skipping is
/// allowed (a status callback may overtake the API's answer), and the three
/// final states never change (a late "sent" after "delivered" is ignored).
/// The outbox's own retry of a failed attempt (sending back to queued) is not
/// a delivery update and is not judged here.
bool advances(message_state from, message_state to);

/// Maps Twilio's MessageStatus (case-insensitive, surrounding spaces
/// ignored) to the engine's delivery state. Every status that means the
/// carrier holds the message (accepted, scheduled, queued, sending, sent) is
/// `sent`: the outbox must never send it again. delivered and read are
/// `delivered`; undelivered is `undelivered`; failed and canceled are
/// `failed`. Inbound statuses (receiving, received) and unknown strings are
/// nullopt: not about an outbound message.
std::optional<message_state> message_state_from_twilio(std::string_view status);

// -- carrier errors -----------------------------------------------------------

/// What the engine knows about one carrier (Twilio) error code.
struct carrier_error_info {
  int code = 0;
  /// Sending the same message to the same recipient again would fail the
  /// same way (or must not be done automatically): do not retry.
  bool permanent = false;
  /// The recipient opted out at the carrier: record it in the ledger.
  bool opted_out = false;
  /// A short description in our own words.
  const char* summary = "";
};

/// The known code, or nullptr.
const carrier_error_info* find_carrier_error(int code);

/// True for a known permanent error (21211 invalid number, 21610
/// unsubscribed, 21614 not a mobile, 21612, 21408, 30003-30008 ...). Unknown
/// codes are not permanent: the HTTP status decides (see `retry_policy`).
bool is_permanent(int error_code);

/// True for 21610: the recipient unsubscribed (texted STOP to the carrier).
bool means_opted_out(int error_code);

/// "21610 (recipient unsubscribed: ...)" or "error 12345" for unknown codes.
std::string describe_carrier_error(int code);

} // namespace ringback::engine
