#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ringback::engine {

/// Wall-clock milliseconds since the Unix epoch. Everything that is stored or
/// compared across processes uses this unit.
using epoch_ms = std::int64_t;

/// Kind of a sending number; decides its default pace (messaging issue).
enum class number_kind : std::uint8_t { long_code, toll_free, short_code };

const char* to_string(number_kind x);
std::optional<number_kind> parse_number_kind(std::string_view x);

/// A business number of a tenant.
struct business_number {
  std::string number; // E.164
  number_kind kind = number_kind::long_code;
  double mps = 1.0; // messages per second
};

/// One tenant as configured.
struct tenant {
  std::string id;
  std::string name;
  std::vector<business_number> numbers;
  std::string owner_phone; // E.164
  std::string timezone;    // IANA name
};

/// Life of a call: ringing the owner, then exactly one outcome.
enum class call_phase : std::uint8_t { ringing, answered, missed };

const char* to_string(call_phase x);
std::optional<call_phase> parse_call_phase(std::string_view x);

/// What decided a call's outcome.
enum class decided_by : std::uint8_t { none, dial_result, fallback, status };

const char* to_string(decided_by x);
std::optional<decided_by> parse_decided_by(std::string_view x);

/// The stored state of one inbound call (one CallSid of the parent call).
struct call_record {
  std::string call_sid;
  std::string tenant_id;
  std::string from;        // the caller
  std::string to;          // the business number that was called
  std::string owner_phone; // the number that was dialled
  call_phase phase = call_phase::ringing;
  decided_by decided = decided_by::none;
  bool ended = false;         // the parent call has completed
  epoch_ms started_at = 0;    // when the incoming webhook arrived
  epoch_ms fallback_at = 0;   // when to ask the carrier; 0 = no check pending
  std::int32_t fallback_checks = 0;
  std::string dial_status;    // last DialCallStatus seen
  std::int32_t dial_duration = 0;
  std::string node_id;        // the process that owns the call's timers
  epoch_ms updated_at = 0;

  bool decided_outcome() const {
    return phase != call_phase::ringing;
  }
};

/// A webhook as received, kept raw for audit and replay.
struct webhook_record {
  std::string tenant_id; // empty when no tenant matched
  std::string kind;      // voice, dial-result, status, sms, ...
  std::string call_sid;  // or MessageSid for messages
  std::string path;      // request target as received
  std::string body;      // raw body
  std::string signature; // X-Twilio-Signature
  bool duplicate = false;
  epoch_ms received_at = 0;
};

/// Delivery state of an outbound message (the outbox).
enum class message_state : std::uint8_t {
  queued,
  sending,
  sent,
  delivered,
  undelivered,
  failed,
};

const char* to_string(message_state x);
std::optional<message_state> parse_message_state(std::string_view x);

/// An outbound SMS. Written before it is sent.
struct message_record {
  std::int64_t id = 0; // assigned by the store
  std::string tenant_id;
  std::string call_sid;  // the call that caused it, if any
  std::string purpose;   // workflow/step, e.g. "missed_call_text_back/text_back"
  std::string from;
  std::string to;
  std::string body;
  message_state state = message_state::queued;
  std::int32_t attempts = 0;
  std::string message_sid; // the carrier's id once accepted
  std::int32_t error_code = 0;
  std::string error_message;
  std::string node_id; // the process that sends it
  epoch_ms created_at = 0;
  epoch_ms updated_at = 0;
};

/// An inbound SMS (logged; conversations come later).
struct inbound_message {
  std::string message_sid;
  std::string tenant_id;
  std::string from;
  std::string to;
  std::string body;
  epoch_ms received_at = 0;
};

} // namespace ringback::engine
