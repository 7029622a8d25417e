#include "ringback/engine/messaging.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace ringback::engine;
using namespace std::chrono_literals;
using verdict = gate_decision::verdict;

constexpr epoch_ms t0 = 1'700'000'000'000;
constexpr epoch_ms minute = 60'000;
constexpr epoch_ms hour = 60 * minute;

// -- keywords -----------------------------------------------------------------

TEST(Keywords, EveryCarrierKeywordInAnyCase) {
  struct row {
    const char* word;
    keyword_kind kind;
  };
  const std::vector<row> rows{
    {"STOP", keyword_kind::opt_out},        {"STOPALL", keyword_kind::opt_out},
    {"UNSUBSCRIBE", keyword_kind::opt_out}, {"CANCEL", keyword_kind::opt_out},
    {"END", keyword_kind::opt_out},         {"QUIT", keyword_kind::opt_out},
    {"REVOKE", keyword_kind::opt_out},      {"OPTOUT", keyword_kind::opt_out},
    {"START", keyword_kind::opt_in},        {"YES", keyword_kind::opt_in},
    {"UNSTOP", keyword_kind::opt_in},       {"HELP", keyword_kind::help},
    {"INFO", keyword_kind::help},
  };
  for (const auto& r : rows) {
    std::string upper = r.word;
    std::string lower = upper;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](char c) { return static_cast<char>(c - 'A' + 'a'); });
    std::string mixed = lower;
    mixed[0] = upper[0];
    for (const auto& body : {upper, lower, mixed}) {
      auto m = classify_keyword(body);
      EXPECT_EQ(m.kind, r.kind) << body;
      EXPECT_EQ(m.keyword, r.word) << body;
    }
  }
}

TEST(Keywords, SurroundingSpaceAndTrailingPunctuationAreTolerated) {
  for (const char* body : {" stop ", "Stop.", "STOP!!", "stop ?", "\tstop\r\n",
                           "stop...", "  Stop !  ", "stop,", "stop;", "stop:",
                           "\xC2\xA0stop\xC2\xA0", // no-break spaces
                           "\xE2\x80\x8Bstop",     // zero-width space
                           "\xEF\xBB\xBFSTOP",     // byte-order mark
                           "stop\xE2\x80\xA6",     // ellipsis
                           "stop\xE3\x80\x82",     // ideographic full stop
                           "\xE3\x80\x80stop"}) {  // ideographic space
    auto m = classify_keyword(body);
    EXPECT_EQ(m.kind, keyword_kind::opt_out) << body;
    EXPECT_EQ(m.keyword, "STOP") << body;
  }
  EXPECT_EQ(classify_keyword(" unsubscribe! ").keyword, "UNSUBSCRIBE");
  EXPECT_EQ(classify_keyword("Yes!").kind, keyword_kind::opt_in);
  EXPECT_EQ(classify_keyword("help?").kind, keyword_kind::help);
}

TEST(Keywords, FullWidthFormsFoldToAscii) {
  EXPECT_EQ(classify_keyword("ｓｔｏｐ").kind, keyword_kind::opt_out);
  EXPECT_EQ(classify_keyword("ＳＴＯＰ！").kind, keyword_kind::opt_out);
  EXPECT_EQ(classify_keyword("ＳＴＡＲＴ").kind, keyword_kind::opt_in);
  EXPECT_EQ(classify_keyword("ＳＴＯＰ").keyword, "STOP");
}

TEST(Keywords, TheWholeMessageMustBeTheKeyword) {
  for (const char* body :
       {"please stop calling me", "stop by tomorrow", "STOP ALL", "\"stop\"",
        "s t o p", "STOPP", "stop stop", "-stop", "(stop)", "stop-", "ST0P",
        "stop 🛑", "yes please", "help me", "I want to unsubscribe",
        "Can you start at 9?", "the end", "stop\nstop"}) {
    auto m = classify_keyword(body);
    EXPECT_EQ(m.kind, keyword_kind::none) << body;
    EXPECT_TRUE(m.keyword.empty()) << body;
  }
}

TEST(Keywords, OtherScriptsAccentsAndOtherLanguagesAreNotKeywords) {
  EXPECT_EQ(classify_keyword("ST\xD0\x9EP").kind,
            keyword_kind::none); // Cyrillic O
  EXPECT_EQ(classify_keyword("st\xC3\xB3p").kind, keyword_kind::none); // ó
  EXPECT_EQ(classify_keyword("ARRET").kind, keyword_kind::none);
  EXPECT_EQ(classify_keyword("ALTO").kind, keyword_kind::none);
}

TEST(Keywords, EmptyBlankAndInvalidInputIsNotAKeyword) {
  for (const std::string& body :
       {std::string{}, std::string{"   "}, std::string{"..."}, std::string{"!"},
        std::string{"\xFFstop"}, std::string{"stop\xC3"},
        std::string{"\xC0\xB3stop"},         // overlong
        std::string{"\xED\xA0\x80stop"},     // surrogate
        std::string{"\xF4\x90\x80\x80stop"}, // above U+10FFFF
        std::string{"st\0op", 5}, std::string{"stop\0", 5}}) {
    EXPECT_EQ(classify_keyword(body).kind, keyword_kind::none);
  }
}

TEST(Keywords, LongBodiesAreNeverKeywords) {
  auto padded = "stop" + std::string(252, ' ');
  EXPECT_EQ(classify_keyword(padded).kind, keyword_kind::opt_out);
  padded += ' ';
  EXPECT_EQ(classify_keyword(padded).kind, keyword_kind::none);
  EXPECT_EQ(classify_keyword(std::string(100'000, 'a')).kind,
            keyword_kind::none);
}

TEST(Keywords, NamesRoundTrip) {
  for (auto k : {keyword_kind::none, keyword_kind::opt_out,
                 keyword_kind::opt_in, keyword_kind::help}) {
    EXPECT_EQ(parse_keyword_kind(to_string(k)), k);
  }
  EXPECT_STREQ(to_string(keyword_kind::opt_out), "opt_out");
  EXPECT_FALSE(parse_keyword_kind("stop"));
  for (auto s : {opt_out_source::none, opt_out_source::keyword,
                 opt_out_source::carrier}) {
    EXPECT_EQ(parse_opt_out_source(to_string(s)), s);
  }
  EXPECT_STREQ(to_string(opt_out_source::carrier), "carrier");
  EXPECT_FALSE(parse_opt_out_source("Carrier"));
}

// -- ledger -------------------------------------------------------------------

opt_out_state fresh_ledger() {
  opt_out_state s;
  s.tenant_id = "acme";
  s.phone = "+15550100";
  return s;
}

TEST(Ledger, StopThenStart) {
  auto stop = apply_keyword(fresh_ledger(), classify_keyword("Stop."), t0);
  EXPECT_TRUE(stop.changed);
  EXPECT_TRUE(stop.persist);
  EXPECT_EQ(stop.note, "opted out by STOP");
  EXPECT_TRUE(stop.state.opted_out);
  EXPECT_EQ(stop.state.since, t0);
  EXPECT_EQ(stop.state.keyword, "STOP");
  EXPECT_EQ(stop.state.source, opt_out_source::keyword);
  EXPECT_EQ(stop.state.tenant_id, "acme");
  EXPECT_EQ(stop.state.phone, "+15550100");

  auto start = apply_keyword(stop.state, classify_keyword("start"),
                             t0 + 60'000);
  EXPECT_TRUE(start.changed);
  EXPECT_EQ(start.note, "opted back in by START");
  EXPECT_FALSE(start.state.opted_out);
  EXPECT_EQ(start.state.since, t0 + 60'000);
  EXPECT_EQ(start.state.keyword, "START");
  EXPECT_EQ(start.state.last_event_at, t0 + 60'000);
}

TEST(Ledger, RepeatedStopIsANoOpThatKeepsTheFirst) {
  auto first = apply_keyword(fresh_ledger(), classify_keyword("STOP"), t0);
  auto again = apply_keyword(first.state, classify_keyword("quit"), t0 + 5'000);
  EXPECT_FALSE(again.changed);
  EXPECT_TRUE(again.persist); // last_event_at moved on
  EXPECT_EQ(again.note, "already opted out by STOP");
  EXPECT_TRUE(again.state.opted_out);
  EXPECT_EQ(again.state.since, t0);
  EXPECT_EQ(again.state.keyword, "STOP");
  EXPECT_EQ(again.state.last_event_at, t0 + 5'000);
  // The same event replayed (a carrier retry of the webhook) changes nothing.
  auto replay = apply_keyword(again.state, classify_keyword("quit"),
                              t0 + 5'000);
  EXPECT_FALSE(replay.changed);
  EXPECT_FALSE(replay.persist);
}

TEST(Ledger, StartWithoutStopAndHelpChangeNothing) {
  auto start = apply_keyword(fresh_ledger(), classify_keyword("YES"), t0);
  EXPECT_FALSE(start.changed);
  EXPECT_EQ(start.note, "not opted out: YES changes nothing");
  EXPECT_FALSE(start.state.opted_out);
  EXPECT_EQ(start.state.since, 0);

  auto help = apply_keyword(fresh_ledger(), classify_keyword("help"), t0);
  EXPECT_FALSE(help.changed);
  EXPECT_FALSE(help.persist);
  EXPECT_EQ(help.note, "HELP changes nothing");

  auto none = apply_keyword(fresh_ledger(), classify_keyword("hi there"), t0);
  EXPECT_FALSE(none.changed);
  EXPECT_FALSE(none.persist);
  EXPECT_EQ(none.note, "not a keyword");
  EXPECT_EQ(none.state.last_event_at, 0);
}

TEST(Ledger, EventsHandledOutOfOrderKeepTheNewestIntent) {
  // START sent at t0+10 s is handled before the STOP sent at t0.
  auto start = apply_keyword(fresh_ledger(), classify_keyword("START"),
                             t0 + 10'000);
  EXPECT_TRUE(start.persist);
  auto stop = apply_keyword(start.state, classify_keyword("STOP"), t0);
  EXPECT_FALSE(stop.changed);
  EXPECT_FALSE(stop.persist);
  EXPECT_FALSE(stop.state.opted_out);
  EXPECT_EQ(stop.note, "stale STOP ignored: older than the last event");
  // Two events in the same millisecond: the later handled wins.
  auto same = apply_keyword(start.state, classify_keyword("STOP"), t0 + 10'000);
  EXPECT_TRUE(same.changed);
  EXPECT_TRUE(same.state.opted_out);
}

TEST(Ledger, CarrierError21610RecordsAnOptOut) {
  auto r = apply_carrier_error(fresh_ledger(), 21610, t0);
  EXPECT_TRUE(r.changed);
  EXPECT_TRUE(r.persist);
  EXPECT_EQ(r.note, "opted out by carrier error 21610");
  EXPECT_TRUE(r.state.opted_out);
  EXPECT_EQ(r.state.source, opt_out_source::carrier);
  EXPECT_EQ(r.state.keyword, "21610");
  EXPECT_EQ(r.state.since, t0);

  auto stop = apply_keyword(r.state, classify_keyword("stop"), t0 + 1);
  EXPECT_FALSE(stop.changed);
  EXPECT_EQ(stop.note, "already opted out by carrier error 21610");

  auto again = apply_carrier_error(stop.state, 21610, t0 + 2);
  EXPECT_FALSE(again.changed);
  EXPECT_EQ(again.note, "already opted out by carrier error 21610");

  auto start = apply_keyword(again.state, classify_keyword("UNSTOP"), t0 + 3);
  EXPECT_TRUE(start.changed);
  EXPECT_FALSE(start.state.opted_out);
  EXPECT_EQ(start.state.source, opt_out_source::keyword);
}

TEST(Ledger, OtherCarrierErrorsAndStaleOnesChangeNothing) {
  auto other = apply_carrier_error(fresh_ledger(), 30003, t0);
  EXPECT_FALSE(other.changed);
  EXPECT_FALSE(other.persist);
  EXPECT_EQ(other.note, "carrier error 30003 changes nothing");

  auto start = apply_keyword(fresh_ledger(), classify_keyword("START"), t0);
  auto stale = apply_carrier_error(start.state, 21610, t0 - 1);
  EXPECT_FALSE(stale.changed);
  EXPECT_FALSE(stale.state.opted_out);
  EXPECT_EQ(stale.note,
            "stale carrier error 21610 ignored: older than the last event");
}

// -- the gate -----------------------------------------------------------------

outbound_candidate text_back(std::string to = "+15550100") {
  outbound_candidate c;
  c.tenant_id = "acme";
  c.from = "+15005550001";
  c.to = std::move(to);
  c.kind = send_kind::text_back;
  c.urgent = true;
  return c;
}

outbound_candidate of_kind(send_kind kind, bool urgent = true) {
  auto c = text_back();
  c.kind = kind;
  c.urgent = urgent;
  return c;
}

TEST(Gate, DefaultsAreTheDocumentedOnes) {
  gate_settings s;
  EXPECT_EQ(s.repeat_caller_window, 24h);
  EXPECT_EQ(s.automated_per_hour, 10);
  EXPECT_EQ(s.loop_limit, 15);
  EXPECT_EQ(s.loop_window, 10min);
  EXPECT_EQ(s.caller_rate_limit, 5);
  EXPECT_EQ(s.caller_rate_window, 1min);
}

TEST(Gate, AFirstTextBackIsSent) {
  auto d = decide(text_back(), {}, {}, t0);
  EXPECT_TRUE(d.sends());
  EXPECT_EQ(d.what, verdict::send);
  EXPECT_EQ(d.reason, gate_reason::none);
  EXPECT_TRUE(d.message.empty());
  EXPECT_EQ(d.hold_until, 0);
}

TEST(Gate, ShortCodesAreRefused) {
  for (const char* to : {"12345", "123456"}) {
    auto d = decide(text_back(to), {}, {}, t0);
    EXPECT_TRUE(d.refuses()) << to;
    EXPECT_EQ(d.reason, gate_reason::short_code);
  }
  EXPECT_EQ(decide(text_back("12345"), {}, {}, t0).message,
            "recipient 12345 is a short code, not a customer's phone");
  // Relayed and compliance messages too: nobody reads a short code's texts.
  EXPECT_EQ(decide(of_kind(send_kind::relayed), {}, {}, t0).reason,
            gate_reason::none);
  auto relayed = of_kind(send_kind::relayed);
  relayed.to = "88888";
  EXPECT_EQ(decide(relayed, {}, {}, t0).reason, gate_reason::short_code);
}

TEST(Gate, RecipientsThatAreNotPhoneNumbersAreRefused) {
  for (const char* to : {"", "1234", "1234567", "5551230000", "+0155501000",
                         "+1555", "+1555010012345678", "+1 555 0100", "abc"}) {
    auto d = decide(text_back(to), {}, {}, t0);
    EXPECT_EQ(d.reason, gate_reason::invalid_recipient) << to;
    EXPECT_TRUE(d.refuses());
  }
  EXPECT_EQ(decide(text_back("abc"), {}, {}, t0).message,
            "recipient \"abc\" is not a phone number in E.164 form");
  EXPECT_EQ(decide(text_back("a\"b\\c\n\xFF"), {}, {}, t0).message,
            "recipient \"a\\\"b\\\\c\\x0A\\xFF\" is not a phone number in "
            "E.164 form");
  EXPECT_EQ(decide(text_back(std::string(40, '7')), {}, {}, t0).message,
            "recipient \"" + std::string(32, '7')
              + "...\" is not a phone number in E.164 form");
}

TEST(Gate, OwnAndOtherTenantsNumbersAreRefused) {
  gate_facts f;
  f.own_number = true;
  auto d = decide(text_back(), f, {}, t0);
  EXPECT_EQ(d.reason, gate_reason::own_number);
  EXPECT_EQ(d.message, "recipient is one of this tenant's own numbers");
  f = {};
  f.other_tenant_number = true;
  d = decide(of_kind(send_kind::relayed), f, {}, t0);
  EXPECT_EQ(d.reason, gate_reason::other_tenant);
  EXPECT_EQ(d.message, "recipient is a number of another tenant");
  EXPECT_EQ(decide(of_kind(send_kind::compliance), f, {}, t0).reason,
            gate_reason::other_tenant);
}

TEST(Gate, OptedOutRecipientsGetOnlyTheComplianceAnswer) {
  gate_facts f;
  f.opted_out = true;
  for (auto kind :
       {send_kind::text_back, send_kind::automated, send_kind::relayed}) {
    auto d = decide(of_kind(kind), f, {}, t0);
    EXPECT_EQ(d.reason, gate_reason::opted_out) << to_string(kind);
    EXPECT_EQ(d.message, "recipient opted out of this tenant's texts (texting "
                         "START opts back in)");
  }
  EXPECT_TRUE(decide(of_kind(send_kind::compliance), f, {}, t0).sends());
}

TEST(Gate, ABotLoopIsStoppedBelowTheCarriersThreshold) {
  gate_facts f;
  f.exchanged_in_loop_window = 14;
  EXPECT_TRUE(decide(of_kind(send_kind::automated), f, {}, t0).sends());
  f.exchanged_in_loop_window = 15;
  auto d = decide(of_kind(send_kind::automated), f, {}, t0);
  EXPECT_EQ(d.reason, gate_reason::loop_suspected);
  EXPECT_EQ(d.message,
            "15 messages exchanged with the recipient in the last 10 min "
            "(limit 15): looks like two automated senders answering each "
            "other");
  EXPECT_EQ(decide(of_kind(send_kind::compliance), f, {}, t0).reason,
            gate_reason::loop_suspected);
  EXPECT_EQ(decide(text_back(), f, {}, t0).reason, gate_reason::loop_suspected);
  // A person typing is not a bot.
  f.exchanged_in_loop_window = 100;
  EXPECT_TRUE(decide(of_kind(send_kind::relayed), f, {}, t0).sends());
  gate_settings off;
  off.loop_limit = 0;
  EXPECT_TRUE(decide(of_kind(send_kind::automated), f, off, t0).sends());
  off = {};
  off.loop_window = 0ms;
  EXPECT_TRUE(decide(of_kind(send_kind::automated), f, off, t0).sends());
}

TEST(Gate, CallerRateLimitsTextBacks) {
  gate_facts f;
  f.calls_in_rate_window = 5;
  EXPECT_TRUE(decide(text_back(), f, {}, t0).sends());
  f.calls_in_rate_window = 50;
  auto d = decide(text_back(), f, {}, t0);
  EXPECT_EQ(d.reason, gate_reason::caller_rate);
  EXPECT_EQ(d.message,
            "the caller called 50 times in the last 1 min (limit 5)");
  // Only text-backs answer calls.
  EXPECT_TRUE(decide(of_kind(send_kind::automated), f, {}, t0).sends());
  gate_settings s;
  s.caller_rate_limit = 60;
  s.caller_rate_window = 90s;
  EXPECT_TRUE(decide(text_back(), f, s, t0).sends());
  f.calls_in_rate_window = 61;
  EXPECT_EQ(decide(text_back(), f, s, t0).message,
            "the caller called 61 times in the last 1 min 30 s (limit 60)");
  s.caller_rate_limit = 0;
  EXPECT_TRUE(decide(text_back(), f, s, t0).sends());
}

TEST(Gate, OneTextBackPerCallerPerWindow) {
  gate_facts f;
  f.last_text_back_at = t0 - (3 * 3'600'000 + 12 * 60'000 + 5'000);
  auto d = decide(text_back(), f, {}, t0);
  EXPECT_EQ(d.reason, gate_reason::repeat_caller);
  EXPECT_EQ(d.message, "the caller already got a missed-call text-back 3 h "
                       "12 min ago (at most one per 24 h)");
  f.last_text_back_at = t0 - 86'400'000 + 1;
  EXPECT_EQ(decide(text_back(), f, {}, t0).reason, gate_reason::repeat_caller);
  f.last_text_back_at = t0 - 86'400'000;
  EXPECT_TRUE(decide(text_back(), f, {}, t0).sends());
  // Another process's clock a little ahead: counts as just now.
  f.last_text_back_at = t0 + 300;
  EXPECT_EQ(decide(text_back(), f, {}, t0).message,
            "the caller already got a missed-call text-back just now (at most "
            "one per 24 h)");
  // Other messages are not text-backs; a window of 0 turns the guard off.
  EXPECT_TRUE(decide(of_kind(send_kind::automated), f, {}, t0).sends());
  gate_settings s;
  s.repeat_caller_window = 0ms;
  EXPECT_TRUE(decide(text_back(), f, s, t0).sends());
  s.repeat_caller_window = 2h;
  f.last_text_back_at = t0 - 7'200'000 + 1;
  EXPECT_EQ(decide(text_back(), f, s, t0).message,
            "the caller already got a missed-call text-back 1 h 59 min ago (at "
            "most one per 2 h)");
}

TEST(Gate, AutomatedMessagesAreCappedPerHour) {
  gate_facts f;
  f.automated_last_hour = 9;
  EXPECT_TRUE(decide(of_kind(send_kind::automated), f, {}, t0).sends());
  f.automated_last_hour = 10;
  auto d = decide(of_kind(send_kind::automated), f, {}, t0);
  EXPECT_EQ(d.reason, gate_reason::automated_cap);
  EXPECT_EQ(d.message,
            "10 automated messages to the recipient in the last hour (limit "
            "10)");
  EXPECT_EQ(decide(text_back(), f, {}, t0).reason, gate_reason::automated_cap);
  EXPECT_TRUE(decide(of_kind(send_kind::relayed), f, {}, t0).sends());
  EXPECT_TRUE(decide(of_kind(send_kind::compliance), f, {}, t0).sends());
  gate_settings s;
  s.automated_per_hour = 0;
  EXPECT_TRUE(decide(of_kind(send_kind::automated), f, s, t0).sends());
}

TEST(Gate, QuietHoursHoldOnlyNonUrgentAutomatedMessages) {
  gate_facts f;
  f.quiet_hours_end = t0 + 9 * hour + 30 * minute;
  auto d = decide(of_kind(send_kind::automated, false), f, {}, t0);
  EXPECT_TRUE(d.holds());
  EXPECT_EQ(d.what, verdict::hold);
  EXPECT_EQ(d.reason, gate_reason::quiet_hours);
  EXPECT_EQ(d.hold_until, t0 + 9 * hour + 30 * minute);
  EXPECT_EQ(d.message, "quiet hours: not urgent, held for 9 h 30 min until "
                       "they end");
  // A text-back right after a call is urgent.
  EXPECT_TRUE(decide(text_back(), f, {}, t0).sends());
  EXPECT_TRUE(decide(of_kind(send_kind::automated, true), f, {}, t0).sends());
  EXPECT_TRUE(decide(of_kind(send_kind::text_back, false), f, {}, t0).holds());
  EXPECT_TRUE(decide(of_kind(send_kind::relayed, false), f, {}, t0).sends());
  EXPECT_TRUE(decide(of_kind(send_kind::compliance, false), f, {}, t0).sends());
  // The end already passed (the fact was computed a moment ago): send.
  f.quiet_hours_end = t0;
  EXPECT_TRUE(decide(of_kind(send_kind::automated, false), f, {}, t0).sends());
}

TEST(Gate, TheFirstGuardThatAppliesAnswers) {
  gate_facts f;
  f.opted_out = true;
  f.exchanged_in_loop_window = 99;
  f.calls_in_rate_window = 99;
  f.last_text_back_at = t0;
  f.automated_last_hour = 99;
  f.quiet_hours_end = t0 + 1'000;
  auto nonurgent = of_kind(send_kind::text_back, false);
  EXPECT_EQ(decide(text_back("123456"), f, {}, t0).reason,
            gate_reason::short_code);
  f.own_number = true;
  EXPECT_EQ(decide(nonurgent, f, {}, t0).reason, gate_reason::own_number);
  f.own_number = false;
  EXPECT_EQ(decide(nonurgent, f, {}, t0).reason, gate_reason::opted_out);
  f.opted_out = false;
  EXPECT_EQ(decide(nonurgent, f, {}, t0).reason, gate_reason::loop_suspected);
  f.exchanged_in_loop_window = 0;
  EXPECT_EQ(decide(nonurgent, f, {}, t0).reason, gate_reason::caller_rate);
  f.calls_in_rate_window = 1;
  EXPECT_EQ(decide(nonurgent, f, {}, t0).reason, gate_reason::repeat_caller);
  f.last_text_back_at.reset();
  EXPECT_EQ(decide(nonurgent, f, {}, t0).reason, gate_reason::automated_cap);
  f.automated_last_hour = 0;
  EXPECT_EQ(decide(nonurgent, f, {}, t0).reason, gate_reason::quiet_hours);
  f.quiet_hours_end.reset();
  EXPECT_TRUE(decide(nonurgent, f, {}, t0).sends());
}

TEST(Gate, ReasonCodesAreStable) {
  const std::vector<std::pair<gate_reason, const char*>> names{
    {gate_reason::none, "none"},
    {gate_reason::quiet_hours, "quiet_hours"},
    {gate_reason::invalid_recipient, "invalid_recipient"},
    {gate_reason::short_code, "short_code"},
    {gate_reason::own_number, "own_number"},
    {gate_reason::other_tenant, "other_tenant"},
    {gate_reason::opted_out, "opted_out"},
    {gate_reason::loop_suspected, "loop_suspected"},
    {gate_reason::caller_rate, "caller_rate"},
    {gate_reason::repeat_caller, "repeat_caller"},
    {gate_reason::automated_cap, "automated_cap"},
  };
  for (auto [reason, name] : names) {
    EXPECT_STREQ(to_string(reason), name);
    EXPECT_EQ(parse_gate_reason(name), reason);
  }
  EXPECT_FALSE(parse_gate_reason("repeat-caller"));
  for (auto k : {send_kind::text_back, send_kind::automated, send_kind::relayed,
                 send_kind::compliance}) {
    EXPECT_EQ(parse_send_kind(to_string(k)), k);
  }
  EXPECT_STREQ(to_string(send_kind::text_back), "text_back");
  EXPECT_FALSE(parse_send_kind(""));
}

TEST(Gate, PhoneNumberShapes) {
  EXPECT_TRUE(is_e164("+15550100"));
  EXPECT_TRUE(is_e164("+441234567890"));
  EXPECT_TRUE(is_e164("+123456789012345"));
  EXPECT_FALSE(is_e164("+1234567890123456"));
  EXPECT_FALSE(is_e164("+1555010"));
  EXPECT_FALSE(is_e164("+05550100"));
  EXPECT_FALSE(is_e164("15550100"));
  EXPECT_FALSE(is_e164("+1555010a"));
  EXPECT_TRUE(is_short_code("12345"));
  EXPECT_TRUE(is_short_code("123456"));
  EXPECT_FALSE(is_short_code("1234"));
  EXPECT_FALSE(is_short_code("1234567"));
  EXPECT_FALSE(is_short_code("+12345"));
  EXPECT_FALSE(is_short_code("1234a"));
}

TEST(Gate, DurationsReadLikeAPersonWouldSayThem) {
  EXPECT_EQ(format_duration(24h), "24 h");
  EXPECT_EQ(format_duration(90min), "1 h 30 min");
  EXPECT_EQ(format_duration(1h + 5s), "1 h");
  EXPECT_EQ(format_duration(10min), "10 min");
  EXPECT_EQ(format_duration(125s), "2 min 5 s");
  EXPECT_EQ(format_duration(45s), "45 s");
  EXPECT_EQ(format_duration(1250ms), "1 s 250 ms");
  EXPECT_EQ(format_duration(250ms), "250 ms");
  EXPECT_EQ(format_duration(0ms), "0 s");
  EXPECT_EQ(format_duration(-5s), "0 s");
  EXPECT_EQ(format_duration(std::chrono::hours{24 * 400}), "9600 h");
}

// -- pacing -------------------------------------------------------------------

TEST(Pacing, DefaultsByKindOfNumber) {
  EXPECT_EQ(default_pace(number_kind::long_code).rate_per_s, 1.0);
  EXPECT_EQ(default_pace(number_kind::toll_free).rate_per_s, 3.0);
  EXPECT_EQ(default_pace(number_kind::short_code).rate_per_s, 100.0);
  for (auto k : {number_kind::long_code, number_kind::toll_free,
                 number_kind::short_code}) {
    EXPECT_EQ(default_pace(k).burst, 1);
  }
}

TEST(Pacing, EmissionIntervalRoundsUpSoThePaceIsNeverExceeded) {
  EXPECT_EQ(emission_interval_ms(1), 1000);
  EXPECT_EQ(emission_interval_ms(3), 334);
  EXPECT_EQ(emission_interval_ms(7), 143);
  EXPECT_EQ(emission_interval_ms(100), 10);
  EXPECT_EQ(emission_interval_ms(0.5), 2000);
  EXPECT_EQ(emission_interval_ms(0.1), 10000);
  EXPECT_EQ(emission_interval_ms(0.3), 3334);
  EXPECT_EQ(emission_interval_ms(1000), 1);
  EXPECT_EQ(emission_interval_ms(5000), 1);
  EXPECT_EQ(emission_interval_ms(1e-300), 365LL * 24 * 3'600'000);
  EXPECT_EQ(emission_interval_ms(0), 0);
  EXPECT_EQ(emission_interval_ms(-1), 0);
  EXPECT_EQ(emission_interval_ms(std::nan("")), 0);
  EXPECT_EQ(emission_interval_ms(std::numeric_limits<double>::infinity()), 0);
}

TEST(Pacing, AFreshNumberSendsAtOnce) {
  auto r = gcra(0, t0, 1.0, 1);
  EXPECT_TRUE(r.allowed);
  EXPECT_EQ(r.retry_after_ms, 0);
  EXPECT_EQ(r.tat, t0 + 1000);
}

TEST(Pacing, SteadyRateOneLongCode) {
  auto r = gcra(0, t0, 1.0, 1);
  auto refused = gcra(r.tat, t0 + 999, 1.0, 1);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_ms, 1);
  EXPECT_EQ(refused.tat, r.tat); // a refusal stores nothing new
  auto next = gcra(r.tat, t0 + 1000, 1.0, 1);
  EXPECT_TRUE(next.allowed);
  EXPECT_EQ(next.tat, t0 + 2000);
}

// Drains `n` messages queued at once through one pace, sending whenever
// allowed and otherwise waiting exactly the retry; returns the send times.
std::vector<epoch_ms> drain(int n, epoch_ms start, double rate, int burst) {
  std::vector<epoch_ms> sent;
  epoch_ms tat = 0;
  epoch_ms now = start;
  int guard = 0;
  while (static_cast<int>(sent.size()) < n && ++guard < 100'000) {
    auto r = gcra(tat, now, rate, burst);
    if (r.allowed) {
      tat = r.tat;
      sent.push_back(now);
    } else {
      EXPECT_GT(r.retry_after_ms, 0);
      now += r.retry_after_ms;
    }
  }
  return sent;
}

TEST(Pacing, ABurstOfMissedCallsDrainsAtTheNumbersRate) {
  auto times = drain(100, t0, 1.0, 1);
  ASSERT_EQ(times.size(), 100u);
  for (std::size_t i = 0; i < times.size(); ++i) {
    EXPECT_EQ(times[i], t0 + static_cast<epoch_ms>(i) * 1000) << i;
  }
  auto tf = drain(30, t0, 3.0, 1);
  EXPECT_EQ(tf.back() - tf.front(), 29 * 334);
  auto sc = drain(1000, t0, 100.0, 1);
  EXPECT_EQ(sc.back() - sc.front(), 999 * 10);
}

TEST(Pacing, BurstsAndIdlePeriods) {
  // A burst of 3 at 1/s: three at once, then one per second.
  auto times = drain(6, t0, 1.0, 3);
  EXPECT_EQ(times, (std::vector<epoch_ms>{t0, t0, t0, t0 + 1000, t0 + 2000,
                                          t0 + 3000}));
  // After a long idle period the burst is full again, and no fuller.
  epoch_ms tat = t0 + 3000;
  epoch_ms later = t0 + 3'600'000;
  int allowed = 0;
  for (int i = 0; i < 10; ++i) {
    auto r = gcra(tat, later, 1.0, 3);
    if (r.allowed) {
      tat = r.tat;
      ++allowed;
    }
  }
  EXPECT_EQ(allowed, 3);
  // Half an interval of idleness refills nothing of a burst of 1...
  auto r = gcra(t0 + 1000, t0 + 500, 1.0, 1);
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.retry_after_ms, 500);
  // ... and part of a burst of 3 after a partial refill.
  tat = t0 + 3000; // three sent at t0
  r = gcra(tat, t0 + 1500, 1.0, 3);
  EXPECT_TRUE(r.allowed);
  r = gcra(r.tat, t0 + 1500, 1.0, 3);
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.retry_after_ms, 500);
}

TEST(Pacing, NeverMoreThanTheBurstPlusTheRateInAnyWindow) {
  // GCRA's bound: in any interval of length L, at most burst + floor(L / T)
  // sends. Checked on random arrival times (fixed seed: deterministic).
  std::mt19937_64 rng{42};
  for (auto [rate, burst] : {std::pair{1.0, 1}, std::pair{3.0, 1},
                             std::pair{1.0, 5}, std::pair{100.0, 10}}) {
    auto t = emission_interval_ms(rate);
    std::uniform_int_distribution<epoch_ms> gap{0, 3 * t};
    std::vector<epoch_ms> sent;
    epoch_ms tat = 0;
    epoch_ms now = t0;
    for (int i = 0; i < 5'000; ++i) {
      now += gap(rng);
      auto r = gcra(tat, now, rate, burst);
      if (r.allowed) {
        tat = r.tat;
        sent.push_back(now);
      }
    }
    ASSERT_GT(sent.size(), 100u);
    for (std::size_t i = 0; i < sent.size(); ++i) {
      for (std::size_t j = i; j < sent.size() && j < i + 200; ++j) {
        auto span = sent[j] - sent[i];
        auto count = static_cast<epoch_ms>(j - i + 1);
        ASSERT_LE(count, burst + span / t)
          << "rate " << rate << " burst " << burst << " from " << i;
      }
    }
  }
}

TEST(Pacing, AClockGoingBackALittleOnlyDelays) {
  auto first = gcra(0, t0, 1.0, 1);
  ASSERT_TRUE(first.allowed);
  // Another process, or an NTP step, 50 ms behind.
  auto behind = gcra(first.tat, t0 - 50, 1.0, 1);
  EXPECT_FALSE(behind.allowed);
  EXPECT_EQ(behind.retry_after_ms, 1050);
  EXPECT_EQ(behind.tat, first.tat);
  // On its clock the next send is at the same instant as on the writer's.
  EXPECT_TRUE(gcra(first.tat, t0 + 1000, 1.0, 1).allowed);
  // A burst written by a clock 200 ms ahead is never exceeded by a clock
  // behind it: the stored time is never moved back.
  epoch_ms tat = 0;
  int allowed = 0;
  for (int i = 0; i < 5; ++i) {
    auto r = gcra(tat, t0 + 200, 1.0, 3);
    if (r.allowed) {
      tat = r.tat;
      ++allowed;
    }
  }
  for (int i = 0; i < 5; ++i) {
    auto r = gcra(tat, t0, 1.0, 3);
    if (r.allowed) {
      tat = r.tat;
      ++allowed;
    }
  }
  EXPECT_EQ(allowed, 3);
}

TEST(Pacing, RateChangesTakeEffectWithoutForgettingRecentSends) {
  // Raised from 1/s to 3/s: the debt of the last send at 1/s is honoured,
  // then the new pace applies.
  auto r = gcra(0, t0, 1.0, 1);
  auto early = gcra(r.tat, t0 + 500, 3.0, 1);
  EXPECT_FALSE(early.allowed);
  EXPECT_EQ(early.retry_after_ms, 500);
  auto at = gcra(r.tat, t0 + 1000, 3.0, 1);
  EXPECT_TRUE(at.allowed);
  EXPECT_EQ(at.tat, t0 + 1334);
  EXPECT_TRUE(gcra(at.tat, t0 + 1334, 3.0, 1).allowed);
  // Lowered from 3/s to 1/s: the next send waits a full new interval after
  // the last one's slot.
  r = gcra(0, t0, 3.0, 1);
  r = gcra(r.tat, t0 + 334, 3.0, 1);
  ASSERT_TRUE(r.allowed);
  EXPECT_EQ(r.tat, t0 + 668);
  auto slow = gcra(r.tat, t0 + 668, 1.0, 1);
  EXPECT_TRUE(slow.allowed);
  EXPECT_EQ(slow.tat, t0 + 1668);
  EXPECT_FALSE(gcra(slow.tat, t0 + 1667, 1.0, 1).allowed);
}

TEST(Pacing, BadRatesAndBurstsNeverThrowNorOverflow) {
  for (double rate :
       {0.0, -1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    auto r = gcra(t0, t0, rate, 1);
    EXPECT_FALSE(r.allowed);
    EXPECT_EQ(r.retry_after_ms, 1000);
    EXPECT_EQ(r.tat, t0);
  }
  // A burst below 1 is 1; a huge one is capped.
  auto r = gcra(0, t0, 1.0, 0);
  EXPECT_TRUE(r.allowed);
  EXPECT_FALSE(gcra(r.tat, t0, 1.0, -7).allowed);
  EXPECT_TRUE(
    gcra(t0 + 999'000'000, t0, 1.0, std::numeric_limits<int>::max()).allowed);
  EXPECT_FALSE(
    gcra(t0 + 1'000'000'000, t0, 1.0, std::numeric_limits<int>::max()).allowed);
  // A stored time from a wildly wrong clock saturates instead of wrapping.
  auto far = gcra(std::numeric_limits<epoch_ms>::max() - 5, t0, 0.0001, 1);
  EXPECT_FALSE(far.allowed);
  EXPECT_GT(far.retry_after_ms, 0);
  auto past = gcra(std::numeric_limits<epoch_ms>::min(), t0, 1.0, 1);
  EXPECT_TRUE(past.allowed);
  EXPECT_EQ(past.tat, t0 + 1000);
}

TEST(Pacing, ATenantCapAppliesAcrossItsNumbers) {
  // Two long codes at 1/s each under a tenant cap of 1/s: together they
  // send no faster than the cap, and a refusal by the cap does not use up
  // a number's own pace.
  pace number{1.0, 1};
  pace cap{1.0, 1};
  epoch_ms a = 0;
  epoch_ms b = 0;
  epoch_ms tenant = 0;
  auto first = gcra_pair(a, tenant, t0, number, cap);
  ASSERT_TRUE(first.allowed);
  EXPECT_EQ(first.number_tat, t0 + 1000);
  tenant = first.tenant_tat;
  EXPECT_EQ(tenant, t0 + 1000);
  auto other = gcra_pair(b, tenant, t0 + 10, number, cap);
  EXPECT_FALSE(other.allowed);
  EXPECT_EQ(other.retry_after_ms, 990);
  EXPECT_EQ(other.number_tat, b);
  EXPECT_EQ(other.tenant_tat, tenant);
  auto later = gcra_pair(b, tenant, t0 + 1000, number, cap);
  EXPECT_TRUE(later.allowed);
  EXPECT_EQ(later.number_tat, t0 + 2000);
  EXPECT_EQ(later.tenant_tat, t0 + 2000);
  // The number refuses while the tenant would allow: the longer wait wins,
  // nothing moves.
  auto busy = gcra_pair(t0 + 5000, 0, t0, number, pace{100.0, 1});
  EXPECT_FALSE(busy.allowed);
  EXPECT_EQ(busy.retry_after_ms, 5000);
  EXPECT_EQ(busy.tenant_tat, 0);
  // Without a cap it is the number's pace alone.
  auto alone = gcra_pair(0, 77, t0, number, std::nullopt);
  EXPECT_TRUE(alone.allowed);
  EXPECT_EQ(alone.number_tat, t0 + 1000);
  EXPECT_EQ(alone.tenant_tat, 77);
}

TEST(Pacing, OneTenantNeverSlowsAnother) {
  EXPECT_NE(pace_key_for_number("acme", "+15005550001"),
            pace_key_for_number("bolt", "+15005550001"));
  EXPECT_EQ(pace_key_for_number("acme", "+15005550001"),
            "ringback:pace:{acme}:number:+15005550001");
  EXPECT_EQ(pace_key_for_tenant("acme"), "ringback:pace:{acme}:tenant");
}

TEST(Pacing, TheLuaScriptHasTheDocumentedInterface) {
  std::string lua = gcra_lua_script;
  for (const char* part :
       {"KEYS[1]", "KEYS[2]", "ARGV[1]", "ARGV[2]", "ARGV[3]", "ARGV[4]",
        "ARGV[5]", "return {1, 0}", "return {0, math.max(wait1, wait2)}",
        "math.ceil(1000 / rate - 1e-6)", "31536000000", "1000000", "'PX'"}) {
    EXPECT_NE(lua.find(part), std::string::npos) << part;
  }
  EXPECT_NE(lua.find("redis.error_reply"), std::string::npos);
}

// -- delivery states ----------------------------------------------------------

TEST(Delivery, StatesOnlyMoveForward) {
  using ms = message_state;
  const std::array<ms, 6> all{ms::queued,    ms::sending,     ms::sent,
                              ms::delivered, ms::undelivered, ms::failed};
  // expected[from][to]
  const std::array<std::array<bool, 6>, 6> expected{{
    {false, true, true, true, true, true},      // queued
    {false, false, true, true, true, true},     // sending
    {false, false, false, true, true, true},    // sent
    {false, false, false, false, false, false}, // delivered
    {false, false, false, false, false, false}, // undelivered
    {false, false, false, false, false, false}, // failed
  }};
  for (int f = 0; f < 6; ++f) {
    for (int t = 0; t < 6; ++t) {
      EXPECT_EQ(advances(all[f], all[t]), expected[f][t])
        << to_string(all[f]) << " -> " << to_string(all[t]);
    }
  }
}

TEST(Delivery, LateAndOutOfOrderCallbacksNeverMoveBack) {
  auto state = message_state::sending;
  for (const char* status :
       {"queued", "delivered", "sent", "sending", "undelivered", "failed"}) {
    auto next = message_state_from_twilio(status);
    ASSERT_TRUE(next) << status;
    if (advances(state, *next)) {
      state = *next;
    }
  }
  EXPECT_EQ(state, message_state::delivered);
}

TEST(Delivery, TwilioStatusesMapToEngineStates) {
  const std::vector<std::pair<const char*, message_state>> rows{
    {"accepted", message_state::sent},
    {"scheduled", message_state::sent},
    {"queued", message_state::sent},
    {"sending", message_state::sent},
    {"sent", message_state::sent},
    {"delivered", message_state::delivered},
    {"read", message_state::delivered},
    {"undelivered", message_state::undelivered},
    {"failed", message_state::failed},
    {"canceled", message_state::failed},
  };
  for (auto [status, state] : rows) {
    EXPECT_EQ(message_state_from_twilio(status), state) << status;
  }
  EXPECT_EQ(message_state_from_twilio(" Delivered\r\n"),
            message_state::delivered);
  EXPECT_EQ(message_state_from_twilio("FAILED"), message_state::failed);
  for (const char* other : {"receiving", "received", "", "  ", "deliver",
                            "delivered!", "cancelled", "partially_delivered"}) {
    EXPECT_FALSE(message_state_from_twilio(other)) << other;
  }
  EXPECT_FALSE(message_state_from_twilio(std::string(10'000, 'a')));
}

// -- carrier errors -----------------------------------------------------------

TEST(CarrierErrors, PermanentErrorsAreNotRetried) {
  for (int code : {20003, 21211, 21212, 21266, 21408, 21602, 21606, 21608,
                   21610, 21612, 21614, 21617, 21635, 30002, 30003, 30004,
                   30005, 30006, 30007, 30008, 30010, 30024, 30032, 30034}) {
    EXPECT_TRUE(is_permanent(code)) << code;
  }
  for (int code : {20429, 21611, 30001, 30022, 30023, 30500}) {
    EXPECT_FALSE(is_permanent(code)) << code;
  }
  for (int code : {0, -1, 1, 12345, 21210, 30009, 99999}) {
    EXPECT_FALSE(is_permanent(code)) << code;
  }
}

TEST(CarrierErrors, Only21610MeansOptedOut) {
  EXPECT_TRUE(means_opted_out(21610));
  for (int code : {0, 21211, 21614, 30004, 30007}) {
    EXPECT_FALSE(means_opted_out(code)) << code;
  }
}

TEST(CarrierErrors, EveryKnownCodeIsFoundAndDescribed) {
  for (int code :
       {20003, 20429, 21211, 21212, 21266, 21408, 21602, 21606, 21608, 21610,
        21611, 21612, 21614, 21617, 21635, 30001, 30002, 30003, 30004, 30005,
        30006, 30007, 30008, 30010, 30022, 30023, 30024, 30032, 30034, 30500}) {
    auto* e = find_carrier_error(code);
    ASSERT_NE(e, nullptr) << code;
    EXPECT_EQ(e->code, code);
    EXPECT_GT(std::string_view{e->summary}.size(), 10u) << code;
  }
  EXPECT_EQ(find_carrier_error(30009), nullptr);
  EXPECT_EQ(describe_carrier_error(21610),
            "21610 (recipient unsubscribed: they texted STOP to this sender "
            "and must text START to receive texts again)");
  EXPECT_EQ(describe_carrier_error(21211),
            "21211 (the 'To' number is not a valid phone number)");
  EXPECT_EQ(describe_carrier_error(12345), "error 12345");
}

} // namespace
