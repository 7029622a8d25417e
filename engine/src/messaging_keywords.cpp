// Inbound keywords and the opt-out ledger.

#include "ringback/engine/messaging.hpp"

#include <array>
#include <string>
#include <utility>

namespace ringback::engine {

namespace {

struct keyword_entry {
  std::string_view word;
  keyword_kind kind;
};

constexpr std::array<keyword_entry, 13> keywords{{
  {"STOP", keyword_kind::opt_out},
  {"STOPALL", keyword_kind::opt_out},
  {"UNSUBSCRIBE", keyword_kind::opt_out},
  {"CANCEL", keyword_kind::opt_out},
  {"END", keyword_kind::opt_out},
  {"QUIT", keyword_kind::opt_out},
  {"REVOKE", keyword_kind::opt_out},
  {"OPTOUT", keyword_kind::opt_out},
  {"START", keyword_kind::opt_in},
  {"YES", keyword_kind::opt_in},
  {"UNSTOP", keyword_kind::opt_in},
  {"HELP", keyword_kind::help},
  {"INFO", keyword_kind::help},
}};

constexpr std::size_t max_keyword_body = 256;
constexpr std::size_t longest_keyword = 11; // UNSUBSCRIBE

/// Decodes strict UTF-8 (no overlong forms, no surrogates, nothing above
/// U+10FFFF) into `out`. False on invalid input.
bool decode_utf8(std::string_view s, std::u32string& out) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto b0 = static_cast<unsigned char>(s[i]);
    char32_t cp = 0;
    std::size_t len = 0;
    char32_t min = 0;
    if (b0 < 0x80) {
      cp = b0;
      len = 1;
    } else if ((b0 & 0xE0) == 0xC0) {
      cp = b0 & 0x1F;
      len = 2;
      min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
      cp = b0 & 0x0F;
      len = 3;
      min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
      cp = b0 & 0x07;
      len = 4;
      min = 0x10000;
    } else {
      return false;
    }
    if (i + len > s.size()) {
      return false;
    }
    for (std::size_t k = 1; k < len; ++k) {
      auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) {
        return false;
      }
      cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    out.push_back(cp);
    i += len;
  }
  return true;
}

/// Full-width forms (typed with East Asian input methods) to ASCII.
char32_t fold_width(char32_t cp) {
  if (cp >= 0xFF01 && cp <= 0xFF5E) {
    return cp - 0xFEE0;
  }
  if (cp == 0x3000) { // ideographic space
    return U' ';
  }
  return cp;
}

/// White space, and the invisible characters phones and copy-paste leave
/// around words (zero-width spaces and joiners, word joiner, BOM).
bool is_blank(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0
         || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200D) || cp == 0x2028
         || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x2060
         || cp == 0xFEFF;
}

bool is_trailing_punct(char32_t cp) {
  switch (cp) {
    case U'.':
    case U'!':
    case U'?':
    case U',':
    case U';':
    case U':':
    case 0x2026: // horizontal ellipsis
    case 0x3002: // ideographic full stop
    case 0xFF61: // half-width ideographic full stop
      return true;
    default:
      return false;
  }
}

std::string cause(const opt_out_state& s) {
  if (s.source == opt_out_source::carrier) {
    return "carrier error " + s.keyword;
  }
  return s.keyword;
}

} // namespace

keyword_match classify_keyword(std::string_view body) {
  if (body.empty() || body.size() > max_keyword_body) {
    return {};
  }
  std::u32string text;
  text.reserve(body.size());
  if (!decode_utf8(body, text)) {
    return {};
  }
  for (auto& cp : text) {
    cp = fold_width(cp);
  }
  std::size_t first = 0;
  while (first < text.size() && is_blank(text[first])) {
    ++first;
  }
  std::size_t last = text.size();
  while (last > first
         && (is_blank(text[last - 1]) || is_trailing_punct(text[last - 1]))) {
    --last;
  }
  if (last == first || last - first > longest_keyword) {
    return {};
  }
  std::string word;
  for (auto i = first; i < last; ++i) {
    auto cp = text[i];
    if (cp >= U'a' && cp <= U'z') {
      cp -= U'a' - U'A';
    }
    if (cp < U'A' || cp > U'Z') {
      return {};
    }
    word += static_cast<char>(cp);
  }
  for (const auto& k : keywords) {
    if (k.word == word) {
      return {k.kind, k.word};
    }
  }
  return {};
}

namespace {

/// Moves `state` to `out` for an event at `at`: `what` is the keyword or the
/// carrier's error code, as stored.
opt_out_transition apply_event(const opt_out_state& state, bool out,
                               std::string what, opt_out_source source,
                               epoch_ms at) {
  opt_out_transition r{state, false, false, {}};
  auto label = source == opt_out_source::carrier ? "carrier error " + what
                                                 : what;
  if (at < state.last_event_at) {
    r.note = "stale " + label + " ignored: older than the last event";
    return r;
  }
  r.state.last_event_at = at;
  if (state.opted_out == out) {
    r.note = out ? "already opted out by " + cause(state)
                 : "not opted out: " + label + " changes nothing";
  } else {
    r.state.opted_out = out;
    r.state.since = at;
    r.state.keyword = std::move(what);
    r.state.source = source;
    r.changed = true;
    r.note = (out ? "opted out by " : "opted back in by ") + label;
  }
  r.persist = r.state.last_event_at != state.last_event_at || r.changed;
  return r;
}

} // namespace

opt_out_transition apply_keyword(const opt_out_state& state,
                                 const keyword_match& keyword, epoch_ms at) {
  std::string word{keyword.keyword};
  switch (keyword.kind) {
    case keyword_kind::none:
      return {state, false, false, "not a keyword"};
    case keyword_kind::help:
      return {state, false, false, word + " changes nothing"};
    case keyword_kind::opt_out:
    case keyword_kind::opt_in:
      break;
  }
  return apply_event(state, keyword.kind == keyword_kind::opt_out,
                     std::move(word), opt_out_source::keyword, at);
}

opt_out_transition apply_carrier_error(const opt_out_state& state,
                                       int error_code, epoch_ms at) {
  auto code = std::to_string(error_code);
  if (!means_opted_out(error_code)) {
    return {state, false, false, "carrier error " + code + " changes nothing"};
  }
  return apply_event(state, true, std::move(code), opt_out_source::carrier, at);
}

} // namespace ringback::engine
