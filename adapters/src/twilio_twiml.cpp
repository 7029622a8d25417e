#include "ringback/adapters/twilio/twiml.hpp"
#include "ringback/adapters/twilio/utf8.hpp"

namespace ringback::adapters::twilio {

namespace {

enum class xml_context : std::uint8_t { text, attribute };

/// Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] |
/// [#x10000-#x10FFFF] (surrogates never come out of `decode_utf8`).
bool allowed_in_xml(char32_t cp) {
  if (cp < 0x20) {
    return cp == 0x09 || cp == 0x0A || cp == 0x0D;
  }
  return cp != 0xFFFE && cp != 0xFFFF;
}

const char* entity_for(char32_t cp, xml_context ctx) {
  switch (cp) {
    case '&':
      return "&amp;";
    case '<':
      return "&lt;";
    case '>':
      return "&gt;";
    case '"':
      return "&quot;";
    case '\'':
      return "&apos;";
    case '\r':
      return "&#13;";
    case '\t':
      return ctx == xml_context::attribute ? "&#9;" : nullptr;
    case '\n':
      return ctx == xml_context::attribute ? "&#10;" : nullptr;
    default:
      return nullptr;
  }
}

std::string escape(std::string_view text, xml_context ctx) {
  constexpr std::string_view replacement = "\xEF\xBF\xBD"; // U+FFFD in UTF-8
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (std::size_t pos = 0; pos < text.size();) {
    const auto ch = decode_utf8(text, pos);
    if (ch.length == 0) {
      out += replacement;
      ++pos;
      continue;
    }
    if (const auto* entity = entity_for(ch.code_point, ctx)) {
      out += entity;
    } else if (allowed_in_xml(ch.code_point)) {
      out.append(text, pos, ch.length);
    }
    pos += ch.length;
  }
  return out;
}

void append_attribute(std::string& out, std::string_view name,
                      std::string_view value) {
  out.push_back(' ');
  out += name;
  out += "=\"";
  out += escape_xml_attribute(value);
  out.push_back('"');
}

} // namespace

std::string escape_xml_text(std::string_view text) {
  return escape(text, xml_context::text);
}

std::string escape_xml_attribute(std::string_view text) {
  return escape(text, xml_context::attribute);
}

const char* to_string(reject_reason x) {
  switch (x) {
    case reject_reason::rejected:
      return "rejected";
    case reject_reason::busy:
      return "busy";
  }
  return "rejected";
}

twiml_response& twiml_response::dial(const dial_verb& verb) {
  verbs_ += "<Dial";
  append_attribute(verbs_, "timeout", std::to_string(verb.timeout.count()));
  if (!verb.action.empty()) {
    append_attribute(verbs_, "action", verb.action);
    append_attribute(verbs_, "method", verb.method);
  }
  if (verb.caller_id) {
    append_attribute(verbs_, "callerId", *verb.caller_id);
  }
  verbs_ += '>';
  for (const auto& number : verb.numbers) {
    verbs_ += "<Number>";
    verbs_ += escape_xml_text(number);
    verbs_ += "</Number>";
  }
  verbs_ += "</Dial>";
  return *this;
}

twiml_response& twiml_response::say(std::string_view text) {
  verbs_ += "<Say>";
  verbs_ += escape_xml_text(text);
  verbs_ += "</Say>";
  return *this;
}

twiml_response& twiml_response::say(const say_verb& verb) {
  verbs_ += "<Say";
  if (!verb.voice.empty())
    append_attribute(verbs_, "voice", verb.voice);
  if (!verb.language.empty())
    append_attribute(verbs_, "language", verb.language);
  if (verb.loop != 1)
    append_attribute(verbs_, "loop", std::to_string(verb.loop));
  verbs_ += '>';
  verbs_ += escape_xml_text(verb.text);
  verbs_ += "</Say>";
  return *this;
}

twiml_response& twiml_response::play(std::string_view url, std::int32_t loop) {
  verbs_ += "<Play";
  if (loop != 1)
    append_attribute(verbs_, "loop", std::to_string(loop));
  verbs_ += '>';
  verbs_ += escape_xml_text(url);
  verbs_ += "</Play>";
  return *this;
}

twiml_response& twiml_response::pause(std::chrono::seconds length) {
  verbs_ += "<Pause";
  append_attribute(verbs_, "length", std::to_string(length.count()));
  verbs_ += "/>";
  return *this;
}

twiml_response& twiml_response::record(const record_verb& verb) {
  verbs_ += "<Record";
  if (!verb.action.empty()) {
    append_attribute(verbs_, "action", verb.action);
    append_attribute(verbs_, "method", verb.method);
  }
  append_attribute(verbs_, "maxLength", std::to_string(verb.max_length.count()));
  append_attribute(verbs_, "timeout", std::to_string(verb.timeout.count()));
  append_attribute(verbs_, "playBeep", verb.play_beep ? "true" : "false");
  if (!verb.finish_on_key.empty())
    append_attribute(verbs_, "finishOnKey", verb.finish_on_key);
  if (!verb.transcribe_callback.empty()) {
    append_attribute(verbs_, "transcribe", "true");
    append_attribute(verbs_, "transcribeCallback", verb.transcribe_callback);
  }
  verbs_ += "/>";
  return *this;
}

twiml_response& twiml_response::hangup() {
  verbs_ += "<Hangup/>";
  return *this;
}

twiml_response& twiml_response::reject(reject_reason reason) {
  verbs_ += "<Reject";
  append_attribute(verbs_, "reason", to_string(reason));
  verbs_ += "/>";
  return *this;
}

std::string twiml_response::str() const {
  std::string out = R"(<?xml version="1.0" encoding="UTF-8"?>)";
  if (verbs_.empty()) {
    out += "<Response/>";
  } else {
    out += "<Response>";
    out += verbs_;
    out += "</Response>";
  }
  return out;
}

} // namespace ringback::adapters::twilio
