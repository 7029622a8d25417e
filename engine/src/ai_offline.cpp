// The offline responder: a keyword classifier and templated replies written
// from the tenant's profile. No network, no model; also the fallback of the
// chat-completions adapter.
//
// How a text is read:
// - It is cut into lower-case ASCII words; apostrophes inside a word vanish
//   ("don't", "don’t" -> "dont"), anything else separates words. Clauses
//   end at . , ! ? ; : ( ) and line breaks, and after "but", "and",
//   "though", "although".
// - A phrase matches a run of words. Each phrase word also matches its simple
//   inflections: +s, +es, +ed, +ing, e-dropping (price -> pricing, priced),
//   consonant doubling (drip -> dripping) and y -> ies/ied (emergency ->
//   emergencies); a word written "=word" matches only itself.
// - An emergency phrase does not count right after a negation in the same
//   clause ("no", "not", "isn't", "don't", "nothing", "non"... within the
//   three words before it): "no emergency, just a quote" is a quote, "not
//   urgent" is not an emergency, but "no heat" and "not sure, but water
//   everywhere" are. Nor does "emergency" / "urgent" followed by a price word
//   ("what's your emergency rate?" is a quote).
// - Priority (ai.hpp): emergency, opt_out, booking, quote, hours_location,
//   other. A message that is exactly a carrier keyword (STOP, END, QUIT,
//   CANCEL, UNSUBSCRIBE...) is an opt-out; "stop" alone inside a sentence is
//   not ("stop by tomorrow?" is a booking).

#include "ringback/engine/ai.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ringback::engine {

// -- names --------------------------------------------------------------------

namespace {

constexpr std::array<const char*, 3> speaker_names{"customer", "owner", "ai"};

constexpr std::array<const char*, 6> intent_names{"emergency", "booking",
                                                  "quote",     "hours_location",
                                                  "opt_out",   "other"};

} // namespace

const char* to_string(ai_turn::speaker x) {
  auto i = static_cast<std::size_t>(x);
  return i < speaker_names.size() ? speaker_names[i] : "customer";
}

const char* to_string(intent x) {
  auto i = static_cast<std::size_t>(x);
  return i < intent_names.size() ? intent_names[i] : "other";
}

std::optional<intent> parse_intent(std::string_view x) {
  for (std::size_t i = 0; i < intent_names.size(); ++i) {
    if (x == intent_names[i]) {
      return static_cast<intent>(i);
    }
  }
  return std::nullopt;
}

// -- reading a text -----------------------------------------------------------

namespace {

/// What an emergency phrase warns about (decides the safety line).
enum class hazard : std::uint8_t { none, gas, fire };

/// Which question an hours_location phrase asks.
enum class asks : std::uint8_t { none, hours, area };

struct phrase_list {
  intent what;
  hazard danger;
  asks question;
  std::vector<std::string_view> phrases;
};

/// The curated lists. Kept in one place so that the tests' table and this
/// list are read side by side.
const std::vector<phrase_list>& phrase_lists() {
  // clang-format off
  static const std::vector<phrase_list> lists{
    {intent::emergency,
     hazard::gas,
     asks::none,
     {"gas smell", "smell gas", "smell of gas", "smell like gas",
      "smelling like gas", "gas leak", "leaking gas", "carbon monoxide",
      "=co alarm", "=co detector"}},
    {intent::emergency,
     hazard::fire,
     asks::none,
     {"spark", "=smoking", "smoke coming", "smoke from", "smell smoke",
      "burning smell", "smell burning", "smell like burning", "=fire",
      "on =fire", "electrical fire"}},
    {intent::emergency,
     hazard::none,
     asks::none,
     {"emergency", "urgent", "urgently", "=asap", "as soon as possible",
      "no heat", "no heating", "heat is out", "heat went out", "heat is off",
      "heat stopped working", "furnace is out", "furnace went out",
      "furnace stopped working", "flood", "burst", "water everywhere",
      "water is everywhere", "water all over", "water pouring",
      "pouring water", "water gushing", "gushing", "through the ceiling",
      "ceiling is leaking", "ceiling leak", "major leak", "big leak",
      "huge leak", "bad leak", "massive leak", "leaking everywhere",
      "frozen pipe", "pipe froze", "pipes froze", "sewage", "sewer backup",
      "sewer back", "sewer is backing", "=overflowing", "=overflowed"}},
    {intent::opt_out,
     hazard::none,
     asks::none,
     {"dont text", "do not text", "dont message", "do not message",
      "dont contact", "do not contact", "stop texting", "stop messaging",
      "stop sending", "stop contacting", "no more texts", "no more messages",
      "leave me alone", "unsubscribe", "remove me", "remove my number",
      "take me off", "take my number off", "wrong number", "opt out",
      "=optout", "please stop", "stop please"}},
    {intent::booking,
     hazard::none,
     asks::none,
     {"appointment", "=appt", "schedule", "reschedule", "book", "come out",
      "come over", "come by", "come today", "come tomorrow", "come look",
      "come take a look", "come and look", "come fix", "come and fix",
      "come see", "come check", "can you come", "could you come",
      "someone come", "somebody come", "someone to come", "someone out",
      "someone over", "someone to look", "someone to fix", "when can you",
      "when could you", "when can someone", "are you coming", "available",
      "availability", "send someone", "send somebody", "send a tech",
      "send a technician", "stop by", "swing by", "drop by", "need someone",
      "need somebody", "get someone", "=visit", "fit me in", "fit us in",
      "can you fix", "could you fix", "tech out"}},
    {intent::quote,
     hazard::none,
     asks::none,
     {"how much", "price", "cost", "quote", "estimate", "ballpark", "=rate",
      "=rates", "you charge", "charge for", "=charges", "service charge",
      "=fee", "=fees", "=$", "expensive", "affordable", "=cheap", "=bid"}},
    {intent::hours_location,
     hazard::none,
     asks::hours,
     {"hours", "=open", "=opens", "=opening", "=close", "=closes", "=closed",
      "=closing", "what time", "weekend", "saturday", "sunday", "holiday"}},
    {intent::hours_location,
     hazard::none,
     asks::area,
     {"where are you", "where r u", "where is your", "wheres your", "located",
      "location", "address", "service area", "your area", "my area",
      "what area", "which area", "do you serve", "do you service",
      "do you cover", "do you come to", "do you go to", "do you work in",
      "do you travel", "how far", "come out to", "close to", "near me",
      "nearby"}},
  };
  // clang-format on
  return lists;
}

/// A phrase, split into words once.
struct pattern {
  intent what;
  hazard danger;
  asks question;
  std::vector<std::string> words; // "=word": exact
};

const std::vector<pattern>& patterns() {
  static const std::vector<pattern> all = [] {
    std::vector<pattern> out;
    for (const auto& list : phrase_lists()) {
      for (auto phrase : list.phrases) {
        pattern p{list.what, list.danger, list.question, {}};
        std::size_t i = 0;
        while (i < phrase.size()) {
          auto j = phrase.find(' ', i);
          if (j == std::string_view::npos) {
            j = phrase.size();
          }
          if (j > i) {
            p.words.emplace_back(phrase.substr(i, j - i));
          }
          i = j + 1;
        }
        out.push_back(std::move(p));
      }
    }
    return out;
  }();
  return all;
}

struct token {
  std::string word;
  std::size_t clause = 0;
};

bool is_clause_word(std::string_view w) {
  return w == "but" || w == "and" || w == "though" || w == "although";
}

/// Long texts are read up to this many words (a batch of SMS is far less).
constexpr std::size_t max_tokens = 4000;

std::vector<token> tokenize(std::string_view text) {
  std::vector<token> out;
  std::string word;
  std::size_t clause = 0;
  auto flush = [&] {
    if (word.empty()) {
      return;
    }
    const bool breaks = is_clause_word(word);
    out.push_back({std::move(word), clause});
    word.clear();
    if (breaks) {
      ++clause;
    }
  };
  for (std::size_t i = 0; i < text.size() && out.size() < max_tokens; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      word.push_back(static_cast<char>(c));
    } else if (c >= 'A' && c <= 'Z') {
      word.push_back(static_cast<char>(c - 'A' + 'a'));
    } else if (c == '\'' && !word.empty()) {
      // "don't" -> "dont"
    } else if (c == 0xE2 && i + 2 < text.size()
               && static_cast<unsigned char>(text[i + 1]) == 0x80
               && (static_cast<unsigned char>(text[i + 2]) == 0x98
                   || static_cast<unsigned char>(text[i + 2]) == 0x99)) {
      // U+2018 / U+2019, the apostrophes phones type: like '\''.
      i += 2;
    } else if (c == '$') {
      flush();
      out.push_back({"$", clause});
    } else {
      flush();
      switch (c) {
        case '.':
        case ',':
        case '!':
        case '?':
        case ';':
        case ':':
        case '(':
        case ')':
        case '\n':
        case '\r':
          ++clause;
          break;
        default:
          break;
      }
    }
  }
  if (out.size() < max_tokens) {
    flush();
  }
  return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size()
         && s.substr(s.size() - suffix.size()) == suffix;
}

bool is_vowel(char c) {
  return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
}

/// Whether `tok` is `pat` or one of its simple inflections.
bool word_matches(std::string_view pat, std::string_view tok) {
  if (!pat.empty() && pat.front() == '=') {
    return tok == pat.substr(1);
  }
  if (tok == pat) {
    return true;
  }
  if (tok.size() <= pat.size()) {
    return false;
  }
  if (tok.substr(0, pat.size()) == pat) {
    auto rest = tok.substr(pat.size());
    if (rest == "s" || rest == "es" || rest == "ed" || rest == "ing") {
      return true;
    }
    // drip -> dripping, stop -> stopped
    const char last = pat.back();
    if (pat.size() >= 3 && !is_vowel(last) && last != 'w' && last != 'x'
        && last != 'y' && rest.size() >= 3 && rest[0] == last
        && (rest.substr(1) == "ing" || rest.substr(1) == "ed")) {
      return true;
    }
    if (last == 'e' && rest == "d") {
      return true; // price -> priced
    }
  }
  if (pat.size() >= 3 && pat.back() == 'e') {
    // price -> pricing
    auto stem = pat.substr(0, pat.size() - 1);
    if (tok.size() == stem.size() + 3 && tok.substr(0, stem.size()) == stem
        && ends_with(tok, "ing")) {
      return true;
    }
  }
  if (pat.size() >= 3 && pat.back() == 'y' && !is_vowel(pat[pat.size() - 2])) {
    // emergency -> emergencies
    auto stem = pat.substr(0, pat.size() - 1);
    if (tok.size() == stem.size() + 3 && tok.substr(0, stem.size()) == stem
        && (ends_with(tok, "ies") || ends_with(tok, "ied"))) {
      return true;
    }
  }
  return false;
}

bool is_negation(std::string_view w) {
  static constexpr std::array<std::string_view, 14> words{
    "no",     "not",   "isnt", "arent",   "wasnt", "werent",  "dont",
    "doesnt", "didnt", "non",  "nothing", "never", "without", "nope"};
  return std::find(words.begin(), words.end(), w) != words.end();
}

bool is_price_word(std::string_view w) {
  static constexpr std::array<std::string_view, 13> words{
    "rate", "rates", "fee",    "fees",    "price",     "prices", "pricing",
    "cost", "costs", "charge", "charges", "surcharge", "callout"};
  return std::find(words.begin(), words.end(), w) != words.end();
}

/// Whether the emergency phrase at tokens [i, i + n) is negated or is about
/// a price.
bool discounted(const std::vector<token>& toks, std::size_t i, std::size_t n,
                const pattern& p) {
  for (std::size_t back = 1; back <= 3 && back <= i; ++back) {
    const auto& t = toks[i - back];
    if (t.clause != toks[i].clause) {
      break;
    }
    if (is_negation(t.word)) {
      return true;
    }
  }
  const auto& first = p.words.front();
  if (p.words.size() == 1 && (first == "emergency" || first == "urgent")
      && i + n < toks.size() && is_price_word(toks[i + n].word)) {
    return true;
  }
  return false;
}

/// Everything read from a text.
struct reading {
  std::array<bool, 6> found{}; // indexed by intent
  hazard danger = hazard::none;
  bool asks_hours = false;
  bool asks_area = false;

  bool has(intent x) const {
    return found[static_cast<std::size_t>(x)];
  }

  intent primary() const {
    for (auto x : {intent::emergency, intent::opt_out, intent::booking,
                   intent::quote, intent::hours_location}) {
      if (has(x)) {
        return x;
      }
    }
    return intent::other;
  }
};

bool is_carrier_keyword(std::string_view w) {
  static constexpr std::array<std::string_view, 8> words{
    "stop", "stopall", "unsubscribe", "cancel",
    "end",  "quit",    "revoke",      "optout"};
  return std::find(words.begin(), words.end(), w) != words.end();
}

reading read_text(std::string_view text) {
  reading out;
  const auto toks = tokenize(text);
  if (toks.size() == 1 && is_carrier_keyword(toks.front().word)) {
    out.found[static_cast<std::size_t>(intent::opt_out)] = true;
  }
  for (const auto& p : patterns()) {
    const auto n = p.words.size();
    for (std::size_t i = 0; i + n <= toks.size(); ++i) {
      bool hit = true;
      for (std::size_t k = 0; k < n && hit; ++k) {
        hit = word_matches(p.words[k], toks[i + k].word);
      }
      if (!hit) {
        continue;
      }
      if (p.what == intent::emergency && discounted(toks, i, n, p)) {
        continue;
      }
      out.found[static_cast<std::size_t>(p.what)] = true;
      if (p.danger != hazard::none && out.danger == hazard::none) {
        out.danger = p.danger;
      }
      out.asks_hours = out.asks_hours || p.question == asks::hours;
      out.asks_area = out.asks_area || p.question == asks::area;
      break; // one hit of a phrase is enough
    }
  }
  return out;
}

// -- writing a reply ----------------------------------------------------------

/// A profile field on one line: white space runs collapsed, ends trimmed.
std::string one_line(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v'
        || c == '\f') {
      space = !out.empty();
      continue;
    }
    if (space) {
      out.push_back(' ');
      space = false;
    }
    out.push_back(c);
  }
  return out;
}

/// `s` ending in sentence punctuation.
std::string sentence(std::string s) {
  if (!s.empty() && s.back() != '.' && s.back() != '!' && s.back() != '?') {
    s.push_back('.');
  }
  return s;
}

/// +13035550100 -> (303) 555-0100; anything else as given.
std::string pretty_phone(const std::string& e164) {
  if (e164.size() == 12 && e164[0] == '+' && e164[1] == '1'
      && std::all_of(e164.begin() + 2, e164.end(),
                     [](char c) { return c >= '0' && c <= '9'; })) {
    return "(" + e164.substr(2, 3) + ") " + e164.substr(5, 3) + "-"
           + e164.substr(8);
  }
  return e164;
}

/// "a", "a and b", "a, b and c" (at most five).
std::string join_services(const std::vector<std::string>& services) {
  std::vector<std::string> items;
  for (const auto& s : services) {
    auto x = one_line(s);
    if (!x.empty() && items.size() < 5) {
      items.push_back(std::move(x));
    }
  }
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) {
      out += i + 1 == items.size() ? " and " : ", ";
    }
    out += items[i];
  }
  return out;
}

struct writer {
  std::string name;
  std::string hours;
  std::string area;
  std::string link;
  std::string phone;
  std::string services;
  std::vector<std::string> parts;

  explicit writer(const business_profile& p)
    : name(one_line(p.name)),
      hours(one_line(p.hours)),
      area(one_line(p.service_area)),
      link(one_line(p.booking_link)),
      phone(pretty_phone(one_line(p.phone))),
      services(join_services(p.services)) {
    // Nothing to do.
  }

  void say(std::string s) {
    parts.push_back(std::move(s));
  }

  void greet() {
    say(name.empty() ? "Thanks for your message!"
                     : "Thanks for texting " + name + "!");
  }

  void emergency(hazard danger) {
    if (danger == hazard::gas) {
      say("If you smell gas, get everyone outside now and call 911 or your "
          "gas company from there.");
    } else if (danger == hazard::fire) {
      say("If you see sparks, smoke or fire, get everyone out and call 911.");
    }
    say("We're paging the owner right now so they can get back to you as "
        "fast as possible.");
    if (!phone.empty()) {
      say("You can also call us at " + phone + ".");
    }
  }

  void booking() {
    if (!link.empty()) {
      say("You can book a time at " + link + " and we'll confirm it with you.");
    } else {
      say("We'll get back to you as soon as we can to find a time that "
          "works.");
    }
  }

  void price_note() {
    say("We can't give prices by text, but we'll go over the cost with you "
        "before any work starts.");
  }

  void quote() {
    say("Prices depend on the job, so we can't give an exact quote by text.");
    say("We'll get back to you to go over what you need and confirm the "
        "cost.");
    if (!link.empty()) {
      say("You can also book a visit at " + link
          + " if you'd like someone to take a look.");
    }
  }

  /// The facts asked for; `primary`: also say when one is unknown.
  void hours_location(bool asked_hours, bool asked_area, bool primary) {
    if (!asked_hours && !asked_area) {
      asked_hours = asked_area = true;
    }
    bool missing = false;
    if (asked_hours) {
      if (!hours.empty()) {
        say(sentence("Our hours are " + hours));
      } else {
        missing = true;
      }
    }
    if (asked_area) {
      if (!area.empty()) {
        say(sentence("We serve " + area));
      } else {
        missing = true;
      }
    }
    if (missing && primary) {
      if (asked_hours && asked_area && hours.empty() && area.empty()) {
        say("We'll get back to you with our hours and service area as soon "
            "as we can.");
      } else if (asked_hours && hours.empty()) {
        say("We'll get back to you with our hours as soon as we can.");
      } else {
        say("We'll check that we cover your area and get back to you as soon "
            "as we can.");
      }
    }
  }

  void opt_out() {
    say("Sorry to bother you! Reply STOP and you won't get any more texts "
        "from "
        + (name.empty() ? std::string{"us"} : name) + ".");
  }

  void other() {
    if (!services.empty()) {
      say(sentence("We handle " + services));
    }
    say("We'll get back to you as soon as we can.");
    if (!link.empty()) {
      say("You can also book a time at " + link
          + " if you need someone to come out.");
    }
  }

  std::string text() const {
    std::string out;
    for (const auto& p : parts) {
      if (!out.empty()) {
        out.push_back(' ');
      }
      out += p;
    }
    return out;
  }
};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v'
         || c == '\f';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && is_space(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

bool is_continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

} // namespace

intent classify_intent(std::string_view text) {
  return read_text(text).primary();
}

ai_reply offline_reply(const ai_request& req) {
  // The customer messages since the last owner or AI message, read together;
  // a greeting only when nobody has answered yet.
  std::size_t first_pending = req.transcript.size();
  while (first_pending > 0
         && req.transcript[first_pending - 1].who
              == ai_turn::speaker::customer) {
    --first_pending;
  }
  std::string pending;
  for (auto i = first_pending; i < req.transcript.size(); ++i) {
    if (!pending.empty()) {
      pending.push_back('\n');
    }
    pending += req.transcript[i].text;
  }
  const bool answered_before = first_pending > 0;
  const auto r = read_text(pending);
  const auto about = r.primary();
  writer w{req.profile};
  switch (about) {
    case intent::emergency:
      w.emergency(r.danger);
      break;
    case intent::opt_out:
      w.opt_out();
      break;
    case intent::booking:
      if (!answered_before) {
        w.greet();
      }
      w.booking();
      if (r.has(intent::quote)) {
        w.price_note();
      }
      if (r.has(intent::hours_location)) {
        w.hours_location(r.asks_hours, r.asks_area, false);
      }
      break;
    case intent::quote:
      if (!answered_before) {
        w.greet();
      }
      w.quote();
      if (r.has(intent::hours_location)) {
        w.hours_location(r.asks_hours, r.asks_area, false);
      }
      break;
    case intent::hours_location:
      if (!answered_before) {
        w.greet();
      }
      w.hours_location(r.asks_hours, r.asks_area, true);
      break;
    case intent::other:
      if (!answered_before) {
        w.greet();
      }
      w.other();
      break;
  }
  ai_reply out;
  out.text = cap_reply(w.text(), req.max_chars);
  out.about = about;
  out.provider = "offline";
  return out;
}

std::string cap_reply(std::string_view text, std::size_t max_chars) {
  text = trim(text);
  if (text.size() <= max_chars) {
    return std::string{text};
  }
  // The last sentence end whose punctuation fits: ". ", "! ", "? ".
  for (std::size_t p = max_chars; p > 0; --p) {
    const char c = text[p - 1];
    if ((c == '.' || c == '!' || c == '?') && p < text.size()
        && is_space(text[p])) {
      return std::string{trim(text.substr(0, p))};
    }
  }
  // Else the last space within the limit.
  for (std::size_t p = max_chars; p > 0; --p) {
    if (is_space(text[p])) {
      auto cut = trim(text.substr(0, p));
      // A clause cut mid-way should not end on a dangling separator.
      while (!cut.empty()
             && (cut.back() == ',' || cut.back() == ';' || cut.back() == ':'
                 || cut.back() == '-' || cut.back() == '(')) {
        cut.remove_suffix(1);
        cut = trim(cut);
      }
      if (!cut.empty()) {
        return std::string{cut};
      }
    }
  }
  // One long word: cut at a UTF-8 character boundary (at most three bytes
  // back; invalid input is cut where it is).
  std::size_t cut = max_chars;
  for (int k = 0; k < 3 && cut > 0 && is_continuation(text[cut]); ++k) {
    --cut;
  }
  if (is_continuation(text[cut])) {
    cut = max_chars;
  }
  return std::string{trim(text.substr(0, cut))};
}

} // namespace ringback::engine
