#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// TwiML, the XML a voice webhook answers with, and the XML escaping it
/// needs (caller data is hostile). Pure functions and a value type: safe
/// from any thread.
namespace ringback::adapters::twilio {

/// Escapes `text` for XML 1.0 character data: `& < > " '` become entities;
/// characters XML 1.0 forbids (control characters but tab, newline and
/// carriage return; U+FFFE, U+FFFF) are dropped; invalid UTF-8 bytes become
/// U+FFFD. A carriage return becomes `&#13;` so parsers keep it.
std::string escape_xml_text(std::string_view text);

/// Like `escape_xml_text`, for a value between double quotes; tab, newline
/// and carriage return also become character references, because a parser
/// would turn them into spaces otherwise.
std::string escape_xml_attribute(std::string_view text);

/// `<Dial>`: rings `numbers` at once; the first to answer is connected.
struct dial_verb {
  std::chrono::seconds timeout{20};
  /// Where Twilio posts the outcome; empty: no `action` (nor `method`).
  std::string action;
  std::string method = "POST";
  /// The number shown to the callee; none: the caller's.
  std::optional<std::string> caller_id;
  /// E.164 numbers, one `<Number>` each.
  std::vector<std::string> numbers;
};

/// `<Say>` with its optional attributes.
struct say_verb {
  std::string text;
  std::string voice;    ///< empty: Twilio's default
  std::string language; ///< empty: Twilio's default
  std::int32_t loop = 1;
};

/// `<Record>`: records the caller (a voicemail) until silence, `#` or
/// `max_length`.
struct record_verb {
  std::string action; ///< where Twilio posts RecordingUrl; empty: none
  std::string method = "POST";
  std::chrono::seconds max_length{120};
  std::chrono::seconds timeout{5}; ///< silence that ends the recording
  bool play_beep = true;
  std::string finish_on_key = "#";
  /// Where Twilio posts the transcription; empty: no transcription.
  std::string transcribe_callback;
};

/// What `<Reject>` signals to the caller.
enum class reject_reason : std::uint8_t { rejected, busy };

/// The TwiML attribute value: "rejected" or "busy".
const char* to_string(reject_reason x);

/// Builds a `<Response>` verb by verb, in call order. Every text and
/// attribute value is escaped.
///
/// twiml_response{}.dial(d).str() gives
/// `<?xml version="1.0" encoding="UTF-8"?><Response><Dial timeout="20"
/// action="..." method="POST"><Number>+15005550002</Number></Dial></Response>`
/// (attributes always in the order timeout, action, method, callerId).
class twiml_response {
public:
  twiml_response& dial(const dial_verb& verb);

  /// `<Say>text</Say>`, spoken with Twilio's default voice.
  twiml_response& say(std::string_view text);

  twiml_response& say(const say_verb& verb);

  /// `<Play loop="n">url</Play>`.
  twiml_response& play(std::string_view url, std::int32_t loop = 1);

  /// `<Pause length="n"/>`.
  twiml_response& pause(std::chrono::seconds length);

  twiml_response& record(const record_verb& verb);

  twiml_response& hangup();

  twiml_response& reject(reject_reason reason = reject_reason::rejected);

  /// The whole document, XML declaration first.
  std::string str() const;

private:
  std::string verbs_;
};

} // namespace ringback::adapters::twilio
