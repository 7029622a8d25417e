#pragma once

#include "ringback/engine/ports.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// Reading the answers of Twilio's REST API 2010-04-01 into the engine's
/// carrier values. Pure functions (no I/O), safe from any thread; the REST
/// client feeds them what it received.
namespace ringback::adapters::twilio {

/// The parts of an HTTP answer the parsers look at.
struct rest_answer {
  int status = 0;               // HTTP status code
  std::string_view retry_after; // the Retry-After header, empty if absent
  std::string_view body;        // JSON as Twilio sends it
};

/// Reads a `Retry-After` given in seconds ("120"). The HTTP-date form and
/// anything else give `nullopt`.
std::optional<std::chrono::milliseconds>
parse_retry_after(std::string_view value);

/// The status of any answer: ok for 2xx; otherwise `error_code` and
/// `error_message` from Twilio's error JSON (`{"code":21211,"message":...}`)
/// or, if the body is not that, the message "HTTP <status> from Twilio".
/// `retry_after` is set whenever the header holds seconds.
engine::carrier_status parse_status(const rest_answer& answer);

/// The answer to `POST .../Messages.json` (201 + a Message resource).
/// A 2xx whose body lacks a string `sid` or `status` is not ok (message
/// "malformed Twilio response: ..."), so the caller never resends it.
engine::sms_receipt parse_message_answer(const rest_answer& answer);

/// The answer to `GET .../Calls/{Sid}.json`.
struct call_answer {
  engine::carrier_status status;
  engine::call_leg call;
};

call_answer parse_call_answer(const rest_answer& answer);

/// One page of `GET .../Calls.json?ParentCallSid=...`.
struct call_page {
  engine::carrier_status status;
  std::vector<engine::call_leg> calls;
  /// Root-relative URI of the next page, empty on the last one.
  std::string next_page_uri;
};

call_page parse_call_page(const rest_answer& answer);

/// A message as listed by `GET .../Messages.json`.
struct listed_message {
  std::string sid;
  std::string from;
  std::string to;
  std::string body;
  engine::epoch_ms date_created = 0; // 0 when missing or unparsable
};

/// One page of `GET .../Messages.json?To=...&From=...`.
struct message_page {
  engine::carrier_status status;
  std::vector<listed_message> messages;
  std::string next_page_uri;
};

message_page parse_message_page(const rest_answer& answer);

/// Parses Twilio's RFC 2822 timestamps ("Tue, 31 Aug 2010 20:36:44 +0000")
/// into epoch milliseconds; nullopt if malformed.
std::optional<engine::epoch_ms> parse_rfc2822(std::string_view text);

} // namespace ringback::adapters::twilio
