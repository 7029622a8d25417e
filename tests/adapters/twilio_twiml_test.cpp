#include "ringback/adapters/twilio/twiml.hpp"
#include "ringback/adapters/twilio/utf8.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace ringback::adapters::twilio;
using namespace std::chrono_literals;

namespace {

const std::string declaration = R"(<?xml version="1.0" encoding="UTF-8"?>)";

dial_verb product_dial() {
  dial_verb d;
  d.action = "https://x/webhooks/twilio/voice/dial-result";
  d.numbers = {"+15005550002"};
  return d;
}

} // namespace

TEST(TwilioTwiml, ProductDefaultAnswerIsExact) {
  EXPECT_EQ(
    twiml_response{}.dial(product_dial()).str(),
    declaration
      + R"(<Response><Dial timeout="20" action="https://x/webhooks/twilio/voice/dial-result" method="POST"><Number>+15005550002</Number></Dial></Response>)");
}

TEST(TwilioTwiml, DialWithCallerIdAndSeveralNumbers) {
  auto d = product_dial();
  d.timeout = 30s;
  d.method = "GET";
  d.caller_id = "+15005550006";
  d.numbers.emplace_back("+15005550003");
  EXPECT_EQ(
    twiml_response{}.dial(d).str(),
    declaration
      + R"(<Response><Dial timeout="30" action="https://x/webhooks/twilio/voice/dial-result" method="GET" callerId="+15005550006"><Number>+15005550002</Number><Number>+15005550003</Number></Dial></Response>)");
}

TEST(TwilioTwiml, DialWithoutActionHasNoMethod) {
  dial_verb d;
  d.numbers = {"+15005550002"};
  EXPECT_EQ(
    twiml_response{}.dial(d).str(),
    declaration
      + R"(<Response><Dial timeout="20"><Number>+15005550002</Number></Dial></Response>)");
}

TEST(TwilioTwiml, SayHangupReject) {
  EXPECT_EQ(
    twiml_response{}.say("Sorry, we missed you.").hangup().str(),
    declaration
      + "<Response><Say>Sorry, we missed you.</Say><Hangup/></Response>");
  EXPECT_EQ(twiml_response{}.reject().str(),
            declaration
              + R"(<Response><Reject reason="rejected"/></Response>)");
  EXPECT_EQ(twiml_response{}.reject(reject_reason::busy).str(),
            declaration + R"(<Response><Reject reason="busy"/></Response>)");
  EXPECT_EQ(twiml_response{}.str(), declaration + "<Response/>");
}

TEST(TwilioTwiml, RejectReasonNames) {
  EXPECT_STREQ(to_string(reject_reason::rejected), "rejected");
  EXPECT_STREQ(to_string(reject_reason::busy), "busy");
}

TEST(TwilioTwiml, HostileCallerDataCannotInjectVerbs) {
  const std::string hostile = R"("><Hangup/>)";
  auto d = product_dial();
  d.caller_id = hostile;
  d.numbers = {hostile};
  const auto xml
    = twiml_response{}.dial(d).say(hostile + " & <Redirect>").str();
  EXPECT_EQ(xml.find("<Hangup/>"), std::string::npos);
  EXPECT_EQ(xml.find("<Redirect>"), std::string::npos);
  EXPECT_NE(xml.find(R"(callerId="&quot;&gt;&lt;Hangup/&gt;")"),
            std::string::npos);
  EXPECT_NE(xml.find("<Number>&quot;&gt;&lt;Hangup/&gt;</Number>"),
            std::string::npos);
  EXPECT_NE(xml.find(
              "<Say>&quot;&gt;&lt;Hangup/&gt; &amp; &lt;Redirect&gt;</Say>"),
            std::string::npos);
}

TEST(TwilioTwiml, ActionUrlWithQueryIsEscaped) {
  auto d = product_dial();
  d.action = "https://x/dial-result?tenant=a&call=b";
  EXPECT_NE(twiml_response{}.dial(d).str().find(
              R"(action="https://x/dial-result?tenant=a&amp;call=b")"),
            std::string::npos);
}

TEST(TwilioTwiml, EscapesTheFiveSpecialCharacters) {
  EXPECT_EQ(escape_xml_text(R"(a&b<c>d"e'f)"),
            "a&amp;b&lt;c&gt;d&quot;e&apos;f");
  EXPECT_EQ(escape_xml_attribute(R"(a&b<c>d"e'f)"),
            "a&amp;b&lt;c&gt;d&quot;e&apos;f");
  EXPECT_EQ(escape_xml_text("&amp;"), "&amp;amp;");
}

TEST(TwilioTwiml, DropsCharactersXmlForbids) {
  EXPECT_EQ(escape_xml_text(std::string("a\0b\x01\x08\x0B\x0C\x1F"
                                        "c\x7F",
                                        10)),
            "abc\x7F");
  EXPECT_EQ(escape_xml_text("x\xEF\xBF\xBEy\xEF\xBF\xBFz"),
            "xyz"); // U+FFFE, U+FFFF
}

TEST(TwilioTwiml, KeepsWhitespaceSafely) {
  EXPECT_EQ(escape_xml_text("a\tb\nc\rd"), "a\tb\nc&#13;d");
  EXPECT_EQ(escape_xml_attribute("a\tb\nc\rd"), "a&#9;b&#10;c&#13;d");
}

TEST(TwilioTwiml, KeepsValidUtf8AndReplacesInvalidBytes) {
  const std::string valid = "h\xC3\xA9llo \xF0\x9F\x91\x8D \xE2\x82\xAC";
  EXPECT_EQ(escape_xml_text(valid), valid);
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(escape_xml_text("a\xFF"
                            "b"),
            "a" + fffd + "b");
  EXPECT_EQ(escape_xml_text("a\xC3"), "a" + fffd);     // truncated
  EXPECT_EQ(escape_xml_text("\xC0\xAF"), fffd + fffd); // overlong '/'
  EXPECT_EQ(escape_xml_text("\xED\xA0\x80"), fffd + fffd + fffd); // surrogate
}

TEST(TwilioUtf8, DecodesAndRejects) {
  EXPECT_EQ(decode_utf8("A", 0).code_point, U'A');
  EXPECT_EQ(decode_utf8("\xC3\xA9", 0).code_point, U'\u00E9');
  EXPECT_EQ(decode_utf8("\xC3\xA9", 0).length, 2u);
  EXPECT_EQ(decode_utf8("\xE2\x82\xAC", 0).code_point, U'\u20AC');
  EXPECT_EQ(decode_utf8("\xF0\x9F\x91\x8D", 0).code_point, U'\U0001F44D');
  EXPECT_EQ(decode_utf8("\xF0\x9F\x91\x8D", 0).length, 4u);
  EXPECT_EQ(decode_utf8("\xF4\x90\x80\x80", 0).length, 0u); // above U+10FFFF
  EXPECT_EQ(decode_utf8("\xE0\x80\x80", 0).length, 0u);     // overlong
  EXPECT_EQ(decode_utf8("\xE2\x82", 0).length, 0u);         // truncated
  EXPECT_EQ(decode_utf8("\x80", 0).length, 0u);             // lone continuation
  EXPECT_EQ(decode_utf8("\xE2(\xAC", 0).length, 0u);        // bad continuation
}
