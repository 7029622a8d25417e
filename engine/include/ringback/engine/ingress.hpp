#pragma once

#include "ringback/engine/records.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ringback::engine {

/// One instruction for a live call, independent of its markup (the Twilio
/// adapter renders it as a TwiML verb).
struct voice_verb {
  enum class kind : std::uint8_t { say, play, pause, dial, record, hangup, reject };
  kind what = kind::hangup;
  std::string text;     // say: the words; play: the audio URL
  std::string voice;    // say: e.g. "Polly.Joanna"; empty: the carrier's default
  std::string language; // say: e.g. "en-US"; empty: the carrier's default
  std::int32_t loop = 1; // say, play
  std::chrono::seconds length{1}; // pause
  std::vector<std::string> numbers;  // dial: the numbers to ring
  std::chrono::seconds timeout{20};  // dial: ring timeout; record: silence
  std::string caller_id;             // dial: optional caller ID
  std::string action_url;            // dial, record: where the result goes
  std::chrono::seconds max_length{120}; // record
  bool play_beep = true;                // record
  std::string transcribe_callback;      // record: empty = no transcription
  std::string reason;                   // reject: "rejected" or "busy"
};

/// What the carrier should do with a live call: verbs in order. Empty means
/// "nothing more" (the carrier hangs up).
struct voice_answer {
  std::vector<voice_verb> verbs;

  /// Rings `numbers` for `timeout`, reporting to `action_url`.
  static voice_answer dial(std::vector<std::string> numbers,
                           std::chrono::seconds timeout, std::string action_url,
                           std::string caller_id = {});
  static voice_answer hangup();
  static voice_answer reject();
};

/// Where the answer to a voice webhook goes (and an inbound SMS's empty one,
/// given once the message is stored). Implemented by the HTTP side;
/// thread-safe; the first answer wins (a late one is dropped, because the
/// HTTP side already answered with its safe default).
class voice_reply {
public:
  virtual ~voice_reply() = default;
  virtual void answer(const voice_answer& a) = 0;
};

/// A carrier webhook after its signature was checked and its body parsed.
struct inbound_event {
  enum class kind : std::uint8_t {
    call_incoming,
    dial_result,
    call_status,
    sms,
    recording,     // a `record_voicemail` finished (needs a voice answer)
    transcription, // its transcription arrived
    sms_status,    // a delivery report of an outbound message (status callback)
  };
  kind what = kind::call_incoming;
  std::string sid;      // CallSid, or MessageSid for sms and sms_status
  std::string from;
  std::string to;
  std::string status;   // DialCallStatus, CallStatus or MessageStatus
  std::int32_t duration = 0;
  std::string body;     // sms text; transcription text
  std::string url;      // recording: RecordingUrl
  std::string run;      // recording, transcription: the run that asked (query)
  std::string step;     // recording, transcription: its step ordinal (query)
  std::int32_t error_code = 0; // sms_status: ErrorCode (0 = none)
  webhook_record raw;   // for the audit log
};

/// The inbound port: carrier adapters hand parsed events to the core through
/// it. Implemented by the actor layer. Thread-safe; never blocks.
class event_sink {
public:
  virtual ~event_sink() = default;

  /// Delivers an event for a known tenant. `reply` is set for the voice
  /// webhooks that need an answer (call_incoming, dial_result, recording),
  /// and for an inbound SMS, whose webhook is answered (an empty answer)
  /// once the message is stored; null otherwise.
  virtual void deliver(const std::string& tenant_id, inbound_event ev,
                       std::shared_ptr<voice_reply> reply)
    = 0;

  /// Records a webhook that matched no tenant (audit only).
  virtual void record_unrouted(webhook_record raw) = 0;
};

/// Name of the webhook kind in the audit log.
const char* to_string(inbound_event::kind x);

} // namespace ringback::engine
