#include "ringback/engine/ai.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace {

using namespace ringback::engine;
using speaker = ai_turn::speaker;

// -- names --------------------------------------------------------------------

TEST(AiNames, IntentsRoundTrip) {
  for (auto x : {intent::emergency, intent::booking, intent::quote,
                 intent::hours_location, intent::opt_out, intent::other}) {
    auto parsed = parse_intent(to_string(x));
    ASSERT_TRUE(parsed.has_value()) << to_string(x);
    EXPECT_EQ(*parsed, x);
  }
  EXPECT_STREQ(to_string(intent::hours_location), "hours_location");
  EXPECT_STREQ(to_string(intent::opt_out), "opt_out");
  EXPECT_FALSE(parse_intent("Emergency").has_value());
  EXPECT_FALSE(parse_intent("").has_value());
  EXPECT_FALSE(parse_intent("hours").has_value());
}

TEST(AiNames, Speakers) {
  EXPECT_STREQ(to_string(speaker::customer), "customer");
  EXPECT_STREQ(to_string(speaker::owner), "owner");
  EXPECT_STREQ(to_string(speaker::ai), "ai");
}

// -- the classifier -----------------------------------------------------------

struct row {
  const char* text;
  intent expected;
};

// Texts as customers write them: caps, typos, no punctuation, curly
// apostrophes, several needs in one message.
const std::vector<row> table{
  // emergencies
  {"My basement is flooding!!", intent::emergency},
  {"water everywhere in the kitchen please help", intent::emergency},
  {"We have NO HEAT and it's 10 degrees out", intent::emergency},
  {"I smell gas in the kitchen", intent::emergency},
  {"theres a strong gas smell near the water heater", intent::emergency},
  {"Smells like gas by the furnace, what do I do", intent::emergency},
  {"burst pipe under the sink", intent::emergency},
  {"A pipe burst in the garage, water pouring out", intent::emergency},
  {"outlet in the bathroom is sparking", intent::emergency},
  {"sewage coming up through the floor drain", intent::emergency},
  {"This is an emergency, call me back", intent::emergency},
  {"need someone ASAP", intent::emergency},
  {"Can you come asap? how much would it be", intent::emergency},
  {"Heat went out last night, 2 little kids at home", intent::emergency},
  {"our toilet is overflowing and wont stop", intent::emergency},
  {"CO alarm keeps going off", intent::emergency},
  {"Not sure if this is an emergency but the ceiling is leaking",
   intent::emergency},
  {"It's not urgent, but there is water everywhere", intent::emergency},
  {"frozen pipes in the crawl space", intent::emergency},
  // negated emergencies and emergency prices are not emergencies
  {"No emergency, just a quote for a new water heater", intent::quote},
  {"not urgent - whenever you have time for an estimate", intent::quote},
  {"It isn\xE2\x80\x99t an emergency, can you come next week?",
   intent::booking},
  {"what's your emergency rate on weekends?", intent::quote},
  {"Nothing urgent, just wondering what your hours are",
   intent::hours_location},
  // opt-out in words
  {"please don't text me again", intent::opt_out},
  {"Don\xE2\x80\x99t text this number", intent::opt_out},
  {"stop texting me", intent::opt_out},
  {"leave me alone", intent::opt_out},
  {"unsubscribe", intent::opt_out},
  {"Remove me from your list", intent::opt_out},
  {"wrong number sorry", intent::opt_out},
  {"STOP", intent::opt_out},
  {"Stop please", intent::opt_out},
  // booking
  {"stop by tomorrow?", intent::booking},
  {"my water heater is leaking, can someone come today?", intent::booking},
  {"Can I book an appointment for Thursday", intent::booking},
  {"when can you come out and look at my furnace", intent::booking},
  {"Are you available this week to fix a running toilet?", intent::booking},
  {"can you send someone to look at the dishwasher", intent::booking},
  {"I need to reschedule my appointment", intent::booking},
  {"how much to come out and look at it?", intent::booking},
  {"Could you swing by Saturday morning", intent::booking},
  // quote
  {"How much for a new water heater installed?", intent::quote},
  {"whats the price to snake a drain", intent::quote},
  {"Do you give free estimates?", intent::quote},
  {"Can I get a quote for repiping a 2 bedroom house", intent::quote},
  {"roughly what does it cost to replace a garbage disposal", intent::quote},
  {"is it over $200?", intent::quote},
  // hours and location
  {"What are your hours?", intent::hours_location},
  {"are you open on sundays", intent::hours_location},
  {"What time do you close today", intent::hours_location},
  {"Do you serve Aurora?", intent::hours_location},
  {"where are you located", intent::hours_location},
  {"do you come to Castle Rock", intent::hours_location},
  {"Is Boulder in your service area?", intent::hours_location},
  // other
  {"Thanks!", intent::other},
  {"ok", intent::other},
  {"Do you do tankless water heaters?", intent::other},
  {"Is this Acme Plumbing?", intent::other},
  {"Call me back when you get a chance", intent::other},
  {"I stopped the leak with a towel for now", intent::other},
  {"", intent::other},
};

TEST(ClassifyIntent, RealLookingTexts) {
  ASSERT_GE(table.size(), 40u);
  for (const auto& r : table) {
    EXPECT_EQ(classify_intent(r.text), r.expected)
      << "text: '" << r.text << "' read as "
      << to_string(classify_intent(r.text)) << ", want "
      << to_string(r.expected);
  }
}

TEST(ClassifyIntent, EmergencyWinsOverEverything) {
  EXPECT_EQ(classify_intent("stop texting me and send someone, water "
                            "everywhere"),
            intent::emergency);
  EXPECT_EQ(classify_intent("how much? pipe burst"), intent::emergency);
  EXPECT_EQ(classify_intent("are you open? I smell gas"), intent::emergency);
}

TEST(ClassifyIntent, OptOutBeatsBookingAndBookingBeatsQuoteAndHours) {
  EXPECT_EQ(classify_intent("don't text me, I'll book online"),
            intent::opt_out);
  EXPECT_EQ(classify_intent("what's the cost, and can you come tomorrow"),
            intent::booking);
  EXPECT_EQ(classify_intent("how much, and are you open Saturday"),
            intent::quote);
}

TEST(ClassifyIntent, WordBoundariesNotSubstrings) {
  // "book" inside "facebook", "open" inside "reopened", "fire" inside
  // "fired", "rate" inside "rated", "spark" inside "sparkling".
  EXPECT_EQ(classify_intent("found you on facebook"), intent::other);
  EXPECT_EQ(classify_intent("the store reopened"), intent::other);
  EXPECT_EQ(classify_intent("I fired my last plumber"), intent::other);
  EXPECT_EQ(classify_intent("you're highly rated"), intent::other);
  EXPECT_EQ(classify_intent("sparkling clean job last time"), intent::other);
  EXPECT_EQ(classify_intent("floodlight install"), intent::other);
}

TEST(ClassifyIntent, PluralsAndIngForms) {
  EXPECT_EQ(classify_intent("FLOODED basement"), intent::emergency);
  EXPECT_EQ(classify_intent("pipes bursting"), intent::emergency);
  EXPECT_EQ(classify_intent("wires sparked"), intent::emergency);
  EXPECT_EQ(classify_intent("smelling gas"), intent::emergency);
  EXPECT_EQ(classify_intent("do you handle emergencies"), intent::emergency);
  EXPECT_EQ(classify_intent("scheduling a visit"), intent::booking);
  EXPECT_EQ(classify_intent("booked online already"), intent::booking);
  EXPECT_EQ(classify_intent("pricing?"), intent::quote);
  EXPECT_EQ(classify_intent("quotes for two jobs"), intent::quote);
  EXPECT_EQ(classify_intent("what are the costs"), intent::quote);
  EXPECT_EQ(classify_intent("open weekends?"), intent::hours_location);
}

TEST(ClassifyIntent, CaseAndPunctuationAreIgnored) {
  EXPECT_EQ(classify_intent("HOW MUCH"), intent::quote);
  EXPECT_EQ(classify_intent("how...much???"), intent::quote);
  EXPECT_EQ(classify_intent("  Gas-smell!!  "), intent::emergency);
  EXPECT_EQ(classify_intent("don't\ttext"), intent::opt_out);
  EXPECT_EQ(classify_intent("dont text"), intent::opt_out);
  EXPECT_EQ(classify_intent("DO NOT TEXT"), intent::opt_out);
}

TEST(ClassifyIntent, NegationStaysInItsClause) {
  EXPECT_EQ(classify_intent("not an emergency"), intent::other);
  EXPECT_EQ(classify_intent("it is not really an emergency"), intent::other);
  EXPECT_EQ(classify_intent("there's no gas smell anymore"), intent::other);
  // Too far back, or in another clause: still an emergency.
  EXPECT_EQ(classify_intent("no idea why, but the basement is flooding"),
            intent::emergency);
  EXPECT_EQ(classify_intent("not sure what happened. burst pipe"),
            intent::emergency);
  EXPECT_EQ(classify_intent("I don't know what to do and I smell gas"),
            intent::emergency);
}

TEST(ClassifyIntent, CarrierKeywordsOnlyAsTheWholeMessage) {
  for (const char* x :
       {"stop", "Stop.", "END", "quit", "Cancel", "UNSUBSCRIBE", "stopall"}) {
    EXPECT_EQ(classify_intent(x), intent::opt_out) << x;
  }
  EXPECT_EQ(classify_intent("cancel my appointment"), intent::booking);
  EXPECT_EQ(classify_intent("at the end of the day"), intent::other);
  EXPECT_EQ(classify_intent("the leak won't stop"), intent::other);
}

TEST(ClassifyIntent, NeverCrashesOnJunk) {
  std::mt19937 rng{7};
  std::uniform_int_distribution<int> byte{0, 255};
  for (int n = 0; n < 2000; ++n) {
    std::string s(static_cast<std::size_t>(n % 97), '\0');
    for (auto& c : s) {
      c = static_cast<char>(byte(rng));
    }
    auto x = classify_intent(s);
    EXPECT_TRUE(parse_intent(to_string(x)).has_value());
  }
  // Very long input is read without trouble.
  std::string long_text;
  for (int i = 0; i < 20000; ++i) {
    long_text += "blah ";
  }
  EXPECT_EQ(classify_intent(long_text), intent::other);
  EXPECT_EQ(classify_intent(long_text + " flooding"), intent::other)
    << "words past the reading limit are not read";
  EXPECT_EQ(classify_intent("flooding " + long_text), intent::emergency);
}

// -- offline replies ----------------------------------------------------------

business_profile full_profile() {
  business_profile p;
  p.name = "Acme Plumbing";
  p.services = {"water heaters", "drain cleaning", "repiping"};
  p.hours = "Mon-Fri 8am-5pm, emergencies 24/7";
  p.service_area = "the Denver metro area";
  p.booking_link = "https://acme.example/book";
  p.phone = "+13035550100";
  p.notes = "we don't do gas lines";
  return p;
}

ai_request request(business_profile profile,
                   std::vector<std::string> customer_texts) {
  ai_request req;
  req.tenant_id = "acme";
  req.profile = std::move(profile);
  epoch_ms at = 1'700'000'000'000;
  for (auto& t : customer_texts) {
    req.transcript.push_back({speaker::customer, std::move(t), at});
    at += 1000;
  }
  return req;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

/// What every reply must be: offline, within the cap, no price or arrival
/// promise, no dangling white space, ends a sentence.
void expect_well_formed(const ai_reply& r, const ai_request& req) {
  SCOPED_TRACE(r.text);
  EXPECT_EQ(r.provider, "offline");
  EXPECT_TRUE(r.model.empty());
  EXPECT_EQ(r.prompt_tokens, 0);
  EXPECT_EQ(r.completion_tokens, 0);
  EXPECT_EQ(r.cost_usd, 0);
  EXPECT_EQ(r.attempts, 0);
  EXPECT_TRUE(r.error.empty());
  ASSERT_FALSE(r.text.empty());
  EXPECT_LE(r.text.size(), req.max_chars);
  EXPECT_NE(r.text.front(), ' ');
  EXPECT_TRUE(r.text.back() == '.' || r.text.back() == '!'
              || r.text.back() == '?');
  EXPECT_FALSE(contains(r.text, "$"));
  EXPECT_FALSE(contains(r.text, "minutes"));
  EXPECT_FALSE(contains(r.text, "within"));
  EXPECT_FALSE(contains(r.text, "on the way"));
  EXPECT_FALSE(contains(r.text, "  "));
  EXPECT_FALSE(contains(r.text, " ."));
  EXPECT_FALSE(contains(r.text, ".."));
}

TEST(OfflineReply, EmergencyPagesTheOwnerAndGivesTheNumber) {
  auto req = request(full_profile(), {"basement is flooding!!"});
  auto r = offline_reply(req);
  expect_well_formed(r, req);
  EXPECT_EQ(r.about, intent::emergency);
  EXPECT_EQ(r.text, "We're paging the owner right now so they can get back "
                    "to you as fast as possible. You can also call us at "
                    "(303) 555-0100.");
}

TEST(OfflineReply, GasAndFireGetASafetyLineFirst) {
  auto req = request(full_profile(), {"I smell gas in the basement"});
  auto r = offline_reply(req);
  expect_well_formed(r, req);
  EXPECT_EQ(r.text.rfind("If you smell gas, get everyone outside now and call "
                         "911 or your gas company from there.",
                         0),
            0u);
  EXPECT_TRUE(contains(r.text, "paging the owner"));
  req = request(full_profile(), {"the panel is sparking"});
  r = offline_reply(req);
  expect_well_formed(r, req);
  EXPECT_EQ(r.text.rfind("If you see sparks, smoke or fire, get everyone out "
                         "and call 911.",
                         0),
            0u);
  req = request(full_profile(), {"burst pipe"});
  r = offline_reply(req);
  EXPECT_FALSE(contains(r.text, "911"));
}

TEST(OfflineReply, EmergencyWithoutAPhoneStillPages) {
  auto p = full_profile();
  p.phone.clear();
  auto req = request(p, {"NO HEAT"});
  auto r = offline_reply(req);
  expect_well_formed(r, req);
  EXPECT_EQ(r.text, "We're paging the owner right now so they can get back "
                    "to you as fast as possible.");
  p.phone = "+442071838750"; // not NANP: as given
  r = offline_reply(request(p, {"NO HEAT"}));
  EXPECT_TRUE(contains(r.text, "call us at +442071838750."));
}

TEST(OfflineReply, BookingGivesTheLink) {
  auto req = request(full_profile(), {"can someone come out tomorrow?"});
  auto r = offline_reply(req);
  expect_well_formed(r, req);
  EXPECT_EQ(r.about, intent::booking);
  EXPECT_EQ(r.text, "Thanks for texting Acme Plumbing! You can book a time at "
                    "https://acme.example/book and we'll confirm it with "
                    "you.");
}

TEST(OfflineReply, BookingWithoutALinkPromisesACallBackNotATime) {
  business_profile empty;
  auto req = request(empty, {"can you come look at my sink"});
  auto r = offline_reply(req);
  expect_well_formed(r, req);
  EXPECT_EQ(r.text, "Thanks for your message! We'll get back to you as soon "
                    "as we can to find a time that works.");
}

TEST(OfflineReply, BookingAndPriceTogether) {
  auto req = request(full_profile(), {"how much to come out and look?"});
  auto r = offline_reply(req);
  expect_well_formed(r, req);
  EXPECT_EQ(r.about, intent::booking);
  EXPECT_TRUE(contains(r.text, "https://acme.example/book"));
  EXPECT_TRUE(contains(r.text, "We can't give prices by text"));
}

TEST(OfflineReply, QuoteIsHonestAndNamesNoPrice) {
  auto req = request(full_profile(), {"how much for a new water heater?"});
  auto r = offline_reply(req);
  expect_well_formed(r, req);
  EXPECT_EQ(r.about, intent::quote);
  EXPECT_EQ(r.text,
            "Thanks for texting Acme Plumbing! Prices depend on the job, so "
            "we can't give an exact quote by text. We'll get back to you to "
            "go over what you need and confirm the cost. You can also book a "
            "visit at https://acme.example/book if you'd like someone to "
            "take a look.");
  business_profile empty;
  req = request(empty, {"price?"});
  r = offline_reply(req);
  expect_well_formed(r, req);
  EXPECT_EQ(r.text, "Thanks for your message! Prices depend on the job, so we "
                    "can't give an exact quote by text. We'll get back to you "
                    "to go over what you need and confirm the cost.");
}

TEST(OfflineReply, HoursAndAreaFromTheProfile) {
  auto req = request(full_profile(), {"what are your hours?"});
  auto r = offline_reply(req);
  expect_well_formed(r, req);
  EXPECT_EQ(r.about, intent::hours_location);
  EXPECT_EQ(r.text, "Thanks for texting Acme Plumbing! Our hours are Mon-Fri "
                    "8am-5pm, emergencies 24/7.");
  req = request(full_profile(), {"do you serve Aurora?"});
  r = offline_reply(req);
  expect_well_formed(r, req);
  EXPECT_EQ(r.text, "Thanks for texting Acme Plumbing! We serve the Denver "
                    "metro area.");
  req = request(full_profile(), {"where are you and when are you open"});
  r = offline_reply(req);
  EXPECT_TRUE(contains(r.text, "Our hours are Mon-Fri 8am-5pm"));
  EXPECT_TRUE(contains(r.text, "We serve the Denver metro area."));
}

TEST(OfflineReply, HoursAndAreaReadWellWhenUnknown) {
  business_profile empty;
  auto req = request(empty, {"what are your hours?"});
  auto r = offline_reply(req);
  expect_well_formed(r, req);
  EXPECT_EQ(r.text, "Thanks for your message! We'll get back to you with our "
                    "hours as soon as we can.");
  req = request(empty, {"do you serve Aurora?"});
  r = offline_reply(req);
  expect_well_formed(r, req);
  EXPECT_EQ(r.text, "Thanks for your message! We'll check that we cover your "
                    "area and get back to you as soon as we can.");
  req = request(empty, {"where are you located and what are your hours"});
  r = offline_reply(req);
  expect_well_formed(r, req);
  EXPECT_EQ(r.text, "Thanks for your message! We'll get back to you with our "
                    "hours and service area as soon as we can.");
  // One known, one not.
  auto p = full_profile();
  p.service_area.clear();
  req = request(p, {"open saturday? do you come to Golden?"});
  r = offline_reply(req);
  expect_well_formed(r, req);
  EXPECT_TRUE(contains(r.text, "Our hours are Mon-Fri"));
  EXPECT_TRUE(contains(r.text, "We'll check that we cover your area"));
}

TEST(OfflineReply, FieldsEndingInAPeriodAreNotDoubled) {
  auto p = full_profile();
  p.hours = "  Mon-Fri 8-5.\n";
  auto req = request(p, {"hours?"});
  auto r = offline_reply(req);
  expect_well_formed(r, req);
  EXPECT_TRUE(contains(r.text, "Our hours are Mon-Fri 8-5."));
}

TEST(OfflineReply, OptOutSaysHowToStop) {
  auto req = request(full_profile(), {"please stop texting me"});
  auto r = offline_reply(req);
  expect_well_formed(r, req);
  EXPECT_EQ(r.about, intent::opt_out);
  EXPECT_EQ(r.text, "Sorry to bother you! Reply STOP and you won't get any "
                    "more texts from Acme Plumbing.");
  business_profile empty;
  r = offline_reply(request(empty, {"leave me alone"}));
  EXPECT_EQ(r.text, "Sorry to bother you! Reply STOP and you won't get any "
                    "more texts from us.");
}

TEST(OfflineReply, OtherMentionsServicesAndTheLink) {
  auto req = request(full_profile(), {"do you do tankless?"});
  auto r = offline_reply(req);
  expect_well_formed(r, req);
  EXPECT_EQ(r.about, intent::other);
  EXPECT_EQ(r.text, "Thanks for texting Acme Plumbing! We handle water "
                    "heaters, drain cleaning and repiping. We'll get back "
                    "to you as soon as we can. You can also book a time at "
                    "https://acme.example/book if you "
                    "need someone to come out.");
  business_profile empty;
  req = request(empty, {"hello?"});
  r = offline_reply(req);
  expect_well_formed(r, req);
  EXPECT_EQ(r.text, "Thanks for your message! We'll get back to you as soon "
                    "as we can.");
}

TEST(OfflineReply, ServicesListIsCappedAndSkipsBlanks) {
  business_profile p;
  p.services = {"a", "", "b", "c", "d", "e", "f"};
  auto r = offline_reply(request(p, {"hi"}));
  EXPECT_TRUE(contains(r.text, "We handle a, b, c, d and e."));
  p.services = {"boilers"};
  r = offline_reply(request(p, {"hi"}));
  EXPECT_TRUE(contains(r.text, "We handle boilers."));
}

TEST(OfflineReply, ReadsAllPendingCustomerMessagesTogether) {
  // Earlier messages were answered; only the last two are pending: the
  // emergency in the first of them still counts.
  auto req = request(full_profile(), {"how much for a drain?"});
  req.transcript.push_back({speaker::ai, "Prices depend on the job.", 0});
  req.transcript.push_back({speaker::customer, "ok also the basement", 0});
  req.transcript.push_back({speaker::customer, "is flooding now", 0});
  auto r = offline_reply(req);
  EXPECT_EQ(r.about, intent::emergency);
  // An answered emergency is not read again.
  req = request(full_profile(), {"basement flooding"});
  req.transcript.push_back({speaker::owner, "on it", 0});
  req.transcript.push_back({speaker::customer, "what are your hours", 0});
  r = offline_reply(req);
  EXPECT_EQ(r.about, intent::hours_location);
  // No greeting once somebody answered.
  EXPECT_EQ(r.text, "Our hours are Mon-Fri 8am-5pm, emergencies 24/7.");
}

TEST(OfflineReply, EmptyTranscriptStillAnswers) {
  ai_request req;
  auto r = offline_reply(req);
  expect_well_formed(r, req);
  EXPECT_EQ(r.about, intent::other);
  req.profile = full_profile();
  req.transcript.push_back({speaker::owner, "hi", 0});
  r = offline_reply(req);
  expect_well_formed(r, req);
}

TEST(OfflineReply, EveryReplyFitsTheCap) {
  auto p = full_profile();
  p.services = {std::string(200, 'x'), "drains"};
  for (std::size_t cap : {40u, 80u, 120u, 160u, 320u, 1600u}) {
    for (const auto& row : table) {
      auto req = request(p, {row.text});
      req.max_chars = cap;
      auto r = offline_reply(req);
      EXPECT_LE(r.text.size(), cap) << row.text;
      EXPECT_FALSE(r.text.empty()) << row.text;
    }
  }
}

TEST(OfflineReply, ACapCutsAtASentenceEnd) {
  auto req = request(full_profile(), {"how much for a new water heater?"});
  req.max_chars = 120;
  auto r = offline_reply(req);
  EXPECT_EQ(r.text, "Thanks for texting Acme Plumbing! Prices depend on the "
                    "job, so we can't give an exact quote by text.");
}

TEST(OfflineReply, ProfileFieldsAreFlattened) {
  auto p = full_profile();
  p.name = "Acme\nPlumbing ";
  p.booking_link = " https://acme.example/book\n";
  auto r = offline_reply(request(p, {"book me in"}));
  EXPECT_EQ(r.text, "Thanks for texting Acme Plumbing! You can book a time at "
                    "https://acme.example/book and we'll confirm it with "
                    "you.");
}

// -- cap_reply ----------------------------------------------------------------

TEST(CapReply, WithinTheLimitIsUnchangedButTrimmed) {
  EXPECT_EQ(cap_reply("Hello there.", 12), "Hello there.");
  EXPECT_EQ(cap_reply("Hello there.", 100), "Hello there.");
  EXPECT_EQ(cap_reply("  Hello there. \n", 12), "Hello there.");
  EXPECT_EQ(cap_reply("", 10), "");
  EXPECT_EQ(cap_reply("   ", 10), "");
}

TEST(CapReply, ExactLength) {
  const std::string s = "0123456789";
  EXPECT_EQ(cap_reply(s, 10), s);
  EXPECT_EQ(cap_reply(s, 9), "012345678");
  // A sentence that ends exactly at the limit is kept whole.
  EXPECT_EQ(cap_reply("One two. Three", 8), "One two.");
  EXPECT_EQ(cap_reply("One two! Three", 8), "One two!");
  EXPECT_EQ(cap_reply("One two? Three", 8), "One two?");
  // A space right at the limit: the words before it fit exactly.
  EXPECT_EQ(cap_reply("abc def ghi", 7), "abc def");
}

TEST(CapReply, PrefersTheLastSentenceEnd) {
  EXPECT_EQ(cap_reply("First one. Second one. Third one is long.", 30),
            "First one. Second one.");
  EXPECT_EQ(cap_reply("Hi! How are you doing today my friend", 20), "Hi!");
  // "." not followed by white space is no sentence end (a URL, 24.7).
  EXPECT_EQ(cap_reply("See acme.example/book for more times", 20), "See");
  EXPECT_EQ(cap_reply("Done.\nNext line goes on and on", 12), "Done.");
}

TEST(CapReply, ElseTheLastSpaceWithoutDanglingPunctuation) {
  EXPECT_EQ(cap_reply("one two three four five", 12), "one two");
  EXPECT_EQ(cap_reply("one two three four five", 13), "one two three");
  EXPECT_EQ(cap_reply("water heaters, drains and more", 16), "water heaters");
  EXPECT_EQ(cap_reply("a - b c d e f", 4), "a");
}

TEST(CapReply, NoSpacesCutsOnACharacterBoundary) {
  EXPECT_EQ(cap_reply(std::string(50, 'x'), 20), std::string(20, 'x'));
  // "é" is two bytes: cutting at 3 would split the second one.
  const std::string e2 = "\xC3\xA9\xC3\xA9\xC3\xA9"; // ééé
  EXPECT_EQ(cap_reply(e2, 3), "\xC3\xA9");
  EXPECT_EQ(cap_reply(e2, 4), "\xC3\xA9\xC3\xA9");
  // A four-byte emoji is never split.
  const std::string emoji = "\xF0\x9F\x94\xA7\xF0\x9F\x94\xA7"; // 🔧🔧
  for (std::size_t n = 4; n < 8; ++n) {
    EXPECT_EQ(cap_reply(emoji, n), "\xF0\x9F\x94\xA7") << n;
  }
  EXPECT_EQ(cap_reply(emoji, 3), "");
  EXPECT_EQ(cap_reply("abc", 0), "");
}

TEST(CapReply, Utf8AroundSpacesAndSentences) {
  // Multi-byte text with spaces: the cut is at a space, so never mid-char.
  const std::string s = "Caf\xC3\xA9 ouvert \xC3\xA0 8h. Merci beaucoup";
  EXPECT_EQ(cap_reply(s, 19), "Caf\xC3\xA9 ouvert \xC3\xA0 8h.");
  EXPECT_EQ(cap_reply(s, 18), "Caf\xC3\xA9 ouvert \xC3\xA0");
  EXPECT_EQ(cap_reply(s, 12), "Caf\xC3\xA9 ouvert");
}

TEST(CapReply, InvalidUtf8NeverCrashes) {
  const std::string junk(40, '\x80'); // continuation bytes only
  auto out = cap_reply(junk, 10);
  EXPECT_EQ(out.size(), 10u);
  std::mt19937 rng{11};
  std::uniform_int_distribution<int> byte{0, 255};
  for (int n = 0; n < 2000; ++n) {
    std::string s(static_cast<std::size_t>(n % 64), '\0');
    for (auto& c : s) {
      c = static_cast<char>(byte(rng));
    }
    const auto cap = static_cast<std::size_t>(n % 20);
    EXPECT_LE(cap_reply(s, cap).size(), cap);
  }
}

} // namespace
