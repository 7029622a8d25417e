#include "ringback/adapters/webhooks/twilio_webhooks.hpp"

#include "ringback/adapters/twilio/form.hpp"
#include "ringback/adapters/twilio/signature.hpp"

#include "fakes.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace {

using namespace ringback;
using adapters::http_request;
using adapters::recording_reply_slot;
using engine::inbound_event;
namespace tw = adapters::twilio;

constexpr const char* token = "s3cr3t-token";
constexpr const char* base = "https://ringback.example.com";

struct recording_sink final : engine::event_sink {
  struct delivery {
    std::string tenant_id;
    inbound_event ev;
    std::shared_ptr<engine::voice_reply> reply;
  };

  void deliver(const std::string& tenant_id, inbound_event ev,
               std::shared_ptr<engine::voice_reply> reply) override {
    delivered.push_back({tenant_id, std::move(ev), std::move(reply)});
  }

  void record_unrouted(engine::webhook_record raw) override {
    unrouted.push_back(std::move(raw));
  }

  std::vector<delivery> delivered;
  std::vector<engine::webhook_record> unrouted;
};

class TwilioWebhooks : public ::testing::Test {
protected:
  TwilioWebhooks() {
    engine::tenant t;
    t.id = "acme";
    t.name = "Acme Plumbing";
    t.owner_phone = "+15005550002";
    t.numbers.push_back({"+15005550001", engine::number_kind::long_code, 1.0});
    adapters::twilio_webhooks::options o;
    o.public_url = base;
    o.auth_token = token;
    o.ring_timeout = std::chrono::seconds{20};
    hooks_ = std::make_unique<adapters::twilio_webhooks>(
      o, std::vector<engine::tenant>{t}, sink_, clock_);
  }

  /// A request signed like Twilio signs it (unless `signature` is given).
  http_request post(const std::string& target, const tw::form_fields& form,
                    std::optional<std::string> signature = std::nullopt) {
    http_request req;
    req.method = "POST";
    req.set_target(target);
    req.body = tw::encode_form(form);
    req.headers.push_back({"Content-Type", "application/x-www-form-urlencoded"});
    req.headers.push_back(
      {"X-Twilio-Signature",
       signature.value_or(tw::sign(token, std::string{base} + target, form))});
    return req;
  }

  std::shared_ptr<recording_reply_slot> handle(const http_request& req) {
    auto slot = std::make_shared<recording_reply_slot>();
    hooks_->handle(req, slot);
    return slot;
  }

  static tw::form_fields incoming(const std::string& to = "+15005550001") {
    return {{"AccountSid", "AC00000000000000000000000000000000"},
            {"CallSid", "CA1"},
            {"From", "+15550100"},
            {"To", to},
            {"CallStatus", "ringing"},
            {"Direction", "inbound"}};
  }

  recording_sink sink_;
  testkit::manual_clock clock_;
  std::unique_ptr<adapters::twilio_webhooks> hooks_;
};

constexpr const char* dial_twiml
  = "<Response><Dial timeout=\"20\" "
    "action=\"https://ringback.example.com/webhooks/twilio/voice/dial-result\" "
    "method=\"POST\"><Number>+15005550002</Number></Dial></Response>";

TEST_F(TwilioWebhooks, IncomingCallGoesToTheTenantWithASafeDefaultArmed) {
  auto slot = handle(post("/webhooks/twilio/voice", incoming()));
  ASSERT_EQ(sink_.delivered.size(), 1u);
  const auto& d = sink_.delivered.front();
  EXPECT_EQ(d.tenant_id, "acme");
  EXPECT_EQ(d.ev.what, inbound_event::kind::call_incoming);
  EXPECT_EQ(d.ev.sid, "CA1");
  EXPECT_EQ(d.ev.from, "+15550100");
  EXPECT_EQ(d.ev.raw.tenant_id, "acme");
  EXPECT_EQ(d.ev.raw.path, "/webhooks/twilio/voice");
  EXPECT_EQ(d.ev.raw.received_at, clock_.now());
  ASSERT_TRUE(d.reply);
  EXPECT_FALSE(slot->response()) << "the actor answers, not the handler";
  ASSERT_TRUE(slot->deadline());
  // If the actor is late, the fallback is the same Dial to the owner.
  ASSERT_TRUE(slot->expire_deadline());
  auto r = slot->response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->content_type.find("text/xml"), std::string::npos);
  EXPECT_NE(r->body.find(dial_twiml), std::string::npos) << r->body;
}

TEST_F(TwilioWebhooks, TheActorsAnswerIsRenderedAsTwiml) {
  auto slot = handle(post("/webhooks/twilio/voice", incoming()));
  auto a = engine::voice_answer::dial({"+15005550002"}, std::chrono::seconds{20},
                                     std::string{base} + "/webhooks/twilio/voice/dial-result");
  sink_.delivered.front().reply->answer(a);
  ASSERT_TRUE(slot->response());
  EXPECT_NE(slot->response()->body.find(dial_twiml), std::string::npos);
  EXPECT_FALSE(slot->expire_deadline()) << "first answer wins";
}

TEST_F(TwilioWebhooks, MissingOrWrongSignatureIs403AndChangesNothing) {
  auto req = post("/webhooks/twilio/voice", incoming());
  req.headers.pop_back();
  auto missing = handle(req)->response();
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 403);
  EXPECT_EQ(missing->body, "missing X-Twilio-Signature\n");
  auto wrong = handle(post("/webhooks/twilio/voice", incoming(),
                           std::string{"RSOYDt4T1cUTdK1PDd93/VVr8B8="}))
                 ->response();
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 403);
  EXPECT_EQ(wrong->body, "invalid X-Twilio-Signature\n");
  // Signed over another URL (a replay against another path) fails too.
  auto form = incoming();
  auto replay = post("/webhooks/twilio/voice/status", form,
                     tw::sign(token, std::string{base} + "/webhooks/twilio/voice", form));
  EXPECT_EQ(handle(replay)->response()->status, 403);
  EXPECT_TRUE(sink_.delivered.empty());
  EXPECT_TRUE(sink_.unrouted.empty());
}

TEST_F(TwilioWebhooks, TamperedBodyFailsTheSignature) {
  auto req = post("/webhooks/twilio/voice/dial-result",
                  {{"CallSid", "CA1"}, {"To", "+15005550001"},
                   {"DialCallStatus", "completed"}});
  req.body = tw::encode_form({{"CallSid", "CA1"}, {"To", "+15005550001"},
                              {"DialCallStatus", "no-answer"}});
  EXPECT_EQ(handle(req)->response()->status, 403);
  EXPECT_TRUE(sink_.delivered.empty());
}

TEST_F(TwilioWebhooks, QueryStringIsPartOfTheSignedUrl) {
  auto slot = handle(post("/webhooks/twilio/voice/status?attempt=2",
                          {{"CallSid", "CA1"}, {"To", "+15005550001"},
                           {"CallStatus", "completed"}}));
  EXPECT_EQ(slot->response()->status, 200);
  ASSERT_EQ(sink_.delivered.size(), 1u);
  EXPECT_EQ(sink_.delivered[0].ev.raw.path, "/webhooks/twilio/voice/status?attempt=2");
}

TEST_F(TwilioWebhooks, DialResultIsDeliveredForTheRunToAnswer) {
  auto slot = handle(post("/webhooks/twilio/voice/dial-result",
                          {{"CallSid", "CA1"}, {"From", "+15550100"},
                           {"To", "+15005550001"}, {"DialCallStatus", "no-answer"},
                           {"DialCallDuration", "0"}}));
  ASSERT_EQ(sink_.delivered.size(), 1u);
  EXPECT_EQ(sink_.delivered[0].ev.what, inbound_event::kind::dial_result);
  EXPECT_EQ(sink_.delivered[0].ev.status, "no-answer");
  ASSERT_TRUE(sink_.delivered[0].reply);
  EXPECT_FALSE(slot->response()) << "the workflow run answers";
  engine::voice_verb say;
  say.what = engine::voice_verb::kind::say;
  say.text = "Please leave a message <after> the beep";
  sink_.delivered[0].reply->answer(engine::voice_answer{{say}});
  ASSERT_TRUE(slot->response());
  EXPECT_NE(slot->response()->body.find(
              "<Say>Please leave a message &lt;after&gt; the beep</Say>"),
            std::string::npos)
    << slot->response()->body;
}

TEST_F(TwilioWebhooks, DialResultHangsUpWhenNobodyAnswersInTime) {
  auto slot = handle(post("/webhooks/twilio/voice/dial-result",
                          {{"CallSid", "CA1"}, {"From", "+15550100"},
                           {"To", "+15005550001"}, {"DialCallStatus", "busy"}}));
  ASSERT_FALSE(slot->response());
  EXPECT_TRUE(slot->expire_deadline());
  ASSERT_TRUE(slot->response());
  EXPECT_NE(slot->response()->body.find("<Response><Hangup/></Response>"),
            std::string::npos)
    << slot->response()->body;
}

TEST_F(TwilioWebhooks, RecordingAndTranscriptionCarryTheirFields) {
  auto rec = handle(post("/webhooks/twilio/voice/recording",
                         {{"CallSid", "CA1"}, {"From", "+15550100"},
                          {"To", "+15005550001"},
                          {"RecordingUrl", "https://api.twilio.com/rec/RE1"},
                          {"RecordingDuration", "14"}}));
  ASSERT_EQ(sink_.delivered.size(), 1u);
  EXPECT_EQ(sink_.delivered[0].ev.what, inbound_event::kind::recording);
  EXPECT_EQ(sink_.delivered[0].ev.url, "https://api.twilio.com/rec/RE1");
  EXPECT_EQ(sink_.delivered[0].ev.duration, 14);
  EXPECT_TRUE(sink_.delivered[0].reply);
  auto tr = handle(post("/webhooks/twilio/voice/transcription?step=4",
                        {{"CallSid", "CA1"}, {"From", "+15550100"},
                         {"To", "+15005550001"},
                         {"TranscriptionText", "my basement is flooding"},
                         {"TranscriptionStatus", "completed"}}));
  ASSERT_TRUE(tr->response());
  EXPECT_EQ(tr->response()->status, 200);
  ASSERT_EQ(sink_.delivered.size(), 2u);
  EXPECT_EQ(sink_.delivered[1].ev.what, inbound_event::kind::transcription);
  EXPECT_EQ(sink_.delivered[1].ev.body, "my basement is flooding");
  EXPECT_EQ(sink_.delivered[1].ev.status, "completed");
  EXPECT_EQ(sink_.delivered[1].ev.step, "4");
  EXPECT_FALSE(sink_.delivered[1].reply);
}

TEST_F(TwilioWebhooks, StatusCallbackCarriesStatusAndDuration) {
  handle(post("/webhooks/twilio/voice/status",
              {{"CallSid", "CA1"}, {"To", "+15005550001"},
               {"CallStatus", "completed"}, {"CallDuration", "15"}}));
  ASSERT_EQ(sink_.delivered.size(), 1u);
  EXPECT_EQ(sink_.delivered[0].ev.status, "completed");
  EXPECT_EQ(sink_.delivered[0].ev.duration, 15);
}

TEST_F(TwilioWebhooks, InboundSmsIsDeliveredWithItsBody) {
  auto slot = handle(
    post("/webhooks/twilio/sms", {{"MessageSid", "SM1"},
                                  {"From", "+15550100"},
                                  {"To", "+15005550001"},
                                  {"Body", "is anyone there? <3 & co"}}));
  ASSERT_EQ(sink_.delivered.size(), 1u);
  EXPECT_EQ(sink_.delivered[0].ev.sid, "SM1");
  EXPECT_EQ(sink_.delivered[0].ev.body, "is anyone there? <3 & co");
  // Answered once the sink has stored it, with empty TwiML (no auto-reply).
  EXPECT_FALSE(slot->response()) << "not before the message is stored";
  ASSERT_TRUE(sink_.delivered[0].reply);
  sink_.delivered[0].reply->answer(engine::voice_answer{});
  auto r = slot->response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->content_type.find("text/xml"), std::string::npos);
  EXPECT_NE(r->body.find("<Response"), std::string::npos) << r->body;
  EXPECT_EQ(r->body.find("<Message"), std::string::npos) << r->body;
}

TEST_F(TwilioWebhooks, InboundSmsNotStoredInTimeGets503) {
  auto slot = handle(post("/webhooks/twilio/sms", {{"MessageSid", "SM2"},
                                                   {"From", "+15550100"},
                                                   {"To", "+15005550001"},
                                                   {"Body", "hello"}}));
  ASSERT_TRUE(slot->deadline());
  ASSERT_TRUE(slot->expire_deadline());
  ASSERT_TRUE(slot->response());
  EXPECT_EQ(slot->response()->status, 503)
    << "never a 200 for a text not stored";
  sink_.delivered.at(0).reply->answer(engine::voice_answer{});
  EXPECT_EQ(slot->response()->status, 503) << "the first answer wins";
}

TEST_F(TwilioWebhooks, DeliveryReportIsRoutedByTheSendingNumber) {
  // As Twilio posts a message's status callback (ErrorCode only on failure).
  auto slot = handle(post("/webhooks/twilio/sms/status",
                          {{"AccountSid", "AC00000000000000000000000000000000"},
                           {"ApiVersion", "2010-04-01"},
                           {"ErrorCode", "30003"},
                           {"From", "+15005550001"},
                           {"MessageSid", "SM9"},
                           {"MessageStatus", "undelivered"},
                           {"SmsSid", "SM9"},
                           {"SmsStatus", "undelivered"},
                           {"To", "+15550100"}}));
  auto r = slot->response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204);
  EXPECT_TRUE(r->body.empty());
  ASSERT_EQ(sink_.delivered.size(), 1u);
  const auto& d = sink_.delivered[0];
  EXPECT_EQ(d.tenant_id, "acme");
  EXPECT_EQ(d.ev.what, inbound_event::kind::sms_status);
  EXPECT_EQ(d.ev.sid, "SM9");
  EXPECT_EQ(d.ev.status, "undelivered");
  EXPECT_EQ(d.ev.error_code, 30003);
  EXPECT_EQ(d.ev.raw.kind, "sms-status");
  EXPECT_FALSE(d.reply);
  // The older SmsStatus alone is understood too.
  handle(post("/webhooks/twilio/sms/status", {{"From", "+15005550001"},
                                               {"MessageSid", "SM10"},
                                               {"SmsStatus", "delivered"},
                                               {"To", "+15550100"}}));
  ASSERT_EQ(sink_.delivered.size(), 2u);
  EXPECT_EQ(sink_.delivered[1].ev.status, "delivered");
  EXPECT_EQ(sink_.delivered[1].ev.error_code, 0);
}

TEST_F(TwilioWebhooks, DeliveryReportsAreCheckedAndAnUnknownSenderIsOnlyRecorded) {
  tw::form_fields form{{"From", "+19995550000"},
                       {"MessageSid", "SM11"},
                       {"MessageStatus", "delivered"},
                       {"To", "+15550100"}};
  auto forged = handle(post("/webhooks/twilio/sms/status", form, "bad"))->response();
  EXPECT_EQ(forged->status, 403);
  auto r = handle(post("/webhooks/twilio/sms/status", form))->response();
  EXPECT_EQ(r->status, 204);
  EXPECT_TRUE(sink_.delivered.empty());
  ASSERT_EQ(sink_.unrouted.size(), 1u);
  EXPECT_EQ(sink_.unrouted[0].kind, "sms-status");
  auto no_from = handle(post("/webhooks/twilio/sms/status",
                             {{"MessageSid", "SM12"}, {"MessageStatus", "sent"}}))
                   ->response();
  EXPECT_EQ(no_from->status, 400);
  EXPECT_EQ(no_from->body, "missing form field 'From'\n");
}

TEST_F(TwilioWebhooks, UnknownNumberGetsAPoliteRejectNeverA5xx) {
  auto slot = handle(post("/webhooks/twilio/voice", incoming("+19995550000")));
  auto r = slot->response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("<Reject"), std::string::npos) << r->body;
  EXPECT_TRUE(sink_.delivered.empty());
  ASSERT_EQ(sink_.unrouted.size(), 1u);
  EXPECT_EQ(sink_.unrouted[0].kind, "voice");
  EXPECT_EQ(sink_.unrouted[0].tenant_id, "");
}

TEST_F(TwilioWebhooks, BadRequestsGetClear4xx) {
  auto get = post("/webhooks/twilio/voice", incoming());
  get.method = "GET";
  auto r = handle(get)->response();
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->header("Allow"), "POST");
  // Signed, but without the CallSid.
  auto r2 = handle(post("/webhooks/twilio/voice", {{"To", "+15005550001"}}))->response();
  EXPECT_EQ(r2->status, 400);
  EXPECT_EQ(r2->body, "missing form field 'CallSid'\n");
  auto r3 = handle(post("/webhooks/twilio/voice", {{"CallSid", "CA1"}}))->response();
  EXPECT_EQ(r3->status, 400);
  EXPECT_EQ(r3->body, "missing form field 'To'\n");
  // A broken percent escape.
  auto bad = post("/webhooks/twilio/voice", incoming());
  bad.body = "CallSid=CA1&To=%ZZ";
  auto r4 = handle(bad)->response();
  EXPECT_EQ(r4->status, 400);
  EXPECT_EQ(r4->body.rfind("malformed form body: ", 0), 0u) << r4->body;
  EXPECT_TRUE(sink_.delivered.empty());
}

TEST_F(TwilioWebhooks, JsonBodyVariantIsCheckedThenRefused) {
  std::string body = R"({"CallSid": "CA1"})";
  auto target = std::string{"/webhooks/twilio/voice?bodySHA256="} + tw::sha256_hex(body);
  http_request req;
  req.method = "POST";
  req.set_target(target);
  req.body = body;
  req.headers.push_back({"X-Twilio-Signature", tw::sign(token, std::string{base} + target)});
  auto ok_sig = handle(req)->response();
  EXPECT_EQ(ok_sig->status, 415);
  req.body += " ";
  EXPECT_EQ(handle(req)->response()->status, 403);
  EXPECT_TRUE(sink_.delivered.empty());
}

TEST_F(TwilioWebhooks, OwnsOnlyItsPaths) {
  EXPECT_TRUE(adapters::twilio_webhooks::owns("/webhooks/twilio/voice"));
  EXPECT_TRUE(adapters::twilio_webhooks::owns("/webhooks/twilio/voice/dial-result"));
  EXPECT_TRUE(adapters::twilio_webhooks::owns("/webhooks/twilio/voice/status"));
  EXPECT_TRUE(adapters::twilio_webhooks::owns("/webhooks/twilio/sms"));
  EXPECT_TRUE(adapters::twilio_webhooks::owns("/webhooks/twilio/sms/status"));
  EXPECT_FALSE(adapters::twilio_webhooks::owns("/webhooks/twilio/voicemail"));
  EXPECT_FALSE(adapters::twilio_webhooks::owns("/healthz"));
}

TEST(RenderTwiml, EscapesWhatCallersControl) {
  auto a = engine::voice_answer::dial({"\"><Hangup/>&"}, std::chrono::seconds{20},
                                     "https://x/y?a=1&b=2");
  auto xml = adapters::render_twiml(a);
  EXPECT_EQ(xml.find("<Hangup/>"), std::string::npos) << xml;
  EXPECT_NE(xml.find("a=1&amp;b=2"), std::string::npos) << xml;
  EXPECT_NE(xml.find("&quot;&gt;&lt;Hangup/&gt;&amp;"), std::string::npos) << xml;
}

} // namespace
