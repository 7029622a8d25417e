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
