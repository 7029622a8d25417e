#pragma once

#include "ringback/engine/records.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ringback::engine {

/// What the carrier should do with a live call, independent of its markup
/// (the Twilio adapter renders it as TwiML).
struct voice_answer {
  enum class kind : std::uint8_t { dial, hangup, reject, empty };
  kind what = kind::empty;
  std::vector<std::string> numbers;  // dial: the numbers to ring
  std::chrono::seconds timeout{20};  // dial: ring timeout
  std::string action_url;            // dial: where the carrier reports the result
  std::string caller_id;             // dial: optional caller ID
};

/// Where the answer to a voice webhook goes. Implemented by the HTTP side;
/// thread-safe; the first answer wins (a late one is dropped, because the
/// HTTP side already answered with its safe default).
class voice_reply {
public:
  virtual ~voice_reply() = default;
  virtual void answer(const voice_answer& a) = 0;
};

/// A carrier webhook after its signature was checked and its body parsed.
struct inbound_event {
  enum class kind : std::uint8_t { call_incoming, dial_result, call_status, sms };
  kind what = kind::call_incoming;
  std::string sid;      // CallSid, or MessageSid for sms
  std::string from;
  std::string to;
  std::string status;   // DialCallStatus or CallStatus
  std::int32_t duration = 0;
  std::string body;     // sms text
  webhook_record raw;   // for the audit log
};

/// The inbound port: carrier adapters hand parsed events to the core through
/// it. Implemented by the actor layer. Thread-safe; never blocks.
class event_sink {
public:
  virtual ~event_sink() = default;

  /// Delivers an event for a known tenant. `reply` is set for the voice
  /// webhooks that need an answer (call_incoming), null otherwise.
  virtual void deliver(const std::string& tenant_id, inbound_event ev,
                       std::shared_ptr<voice_reply> reply)
    = 0;

  /// Records a webhook that matched no tenant (audit only).
  virtual void record_unrouted(webhook_record raw) = 0;
};

/// Name of the webhook kind in the audit log.
const char* to_string(inbound_event::kind x);

} // namespace ringback::engine
