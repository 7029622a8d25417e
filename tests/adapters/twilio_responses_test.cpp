#include "ringback/adapters/twilio/responses.hpp"

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

using namespace ringback::adapters::twilio;
using namespace std::chrono_literals;

namespace {

// The "create" example of POST Messages.json in Twilio's OpenAPI spec.
constexpr std::string_view message_created = R"({
  "account_sid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "api_version": "2010-04-01",
  "body": "Hello! \ud83d\udc4d", "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
  "date_sent": "Thu, 24 Aug 2023 05:01:45 +0000",
  "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000", "direction": "outbound-api",
  "error_code": null, "error_message": null, "from": "+14155552345", "num_media": "0",
  "num_segments": "1", "price": null, "price_unit": null,
  "messaging_service_sid": "MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "sid": "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "status": "queued",
  "subresource_uris": {"media": "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages/SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Media.json"},
  "to": "+14155552345",
  "uri": "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages/SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.json"
})";

// Twilio's error body, e.g. for an invalid To number.
constexpr std::string_view error_21211 = R"({"code": 21211,
  "message": "The 'To' number +1555 is not a valid phone number.",
  "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400})";

// Trimmed "fetch" example of GET Calls/{Sid}.json.
constexpr std::string_view call_fetched = R"({
  "account_sid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "answered_by": "machine_start",
  "direction": "outbound-api", "duration": "4", "from": "+13051416799",
  "parent_call_sid": "CAdeadbeefdeadbeefdeadbeefdeadbeef", "price": "-0.200",
  "sid": "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "start_time": "Fri, 18 Oct 2019 17:02:00 +0000",
  "status": "completed", "to": "+13051913581", "queue_time": "1000"})";

constexpr std::string_view calls_page = R"({
  "calls": [
    {"sid": "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "status": "completed", "duration": "4",
     "parent_call_sid": "CAdeadbeefdeadbeefdeadbeefdeadbeef"},
    {"sid": "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa0", "status": "no-answer", "duration": null,
     "parent_call_sid": "CAdeadbeefdeadbeefdeadbeefdeadbeef"}],
  "end": 1, "first_page_uri": "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Calls.json?PageSize=2&Page=0",
  "next_page_uri": "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Calls.json?PageSize=2&Page=1&PageToken=PACAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa0",
  "page": 0, "page_size": 2, "previous_page_uri": null, "start": 0,
  "uri": "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Calls.json?PageSize=2&Page=0"})";

rest_answer answer(int status, std::string_view body,
                   std::string_view retry_after = {}) {
  return {status, retry_after, body};
}

} // namespace

TEST(TwilioResponses, RetryAfterInSeconds) {
  EXPECT_EQ(parse_retry_after("120"), std::chrono::milliseconds{120s});
  EXPECT_EQ(parse_retry_after(" 5 "), std::chrono::milliseconds{5s});
  EXPECT_EQ(parse_retry_after("0"), std::chrono::milliseconds{0});
  EXPECT_EQ(parse_retry_after(""), std::nullopt);
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), std::nullopt);
  EXPECT_EQ(parse_retry_after("-1"), std::nullopt);
  EXPECT_EQ(parse_retry_after("1.5"), std::nullopt);
  EXPECT_EQ(parse_retry_after("99999999999"), std::nullopt);
}

TEST(TwilioResponses, StatusOfSuccess) {
  const auto s = parse_status(answer(201, "{}"));
  EXPECT_TRUE(s.ok);
  EXPECT_EQ(s.http_status, 201);
  EXPECT_EQ(s.error_code, 0);
  EXPECT_EQ(s.error_message, "");
}

TEST(TwilioResponses, StatusOfTwilioError) {
  const auto s = parse_status(answer(400, error_21211));
  EXPECT_FALSE(s.ok);
  EXPECT_FALSE(s.retryable());
  EXPECT_EQ(s.http_status, 400);
  EXPECT_EQ(s.error_code, 21211);
  EXPECT_EQ(s.error_message,
            "The 'To' number +1555 is not a valid phone number.");
}

TEST(TwilioResponses, StatusOfTooManyRequests) {
  const auto s = parse_status(answer(
    429, R"({"code":20429,"message":"Too Many Requests","status":429})", "3"));
  EXPECT_TRUE(s.retryable());
  EXPECT_EQ(s.error_code, 20429);
  EXPECT_EQ(s.error_message, "Too Many Requests");
  EXPECT_EQ(s.retry_after, std::chrono::milliseconds{3s});
}

TEST(TwilioResponses, StatusOfNonJsonError) {
  const auto s = parse_status(answer(502, "<html>Bad Gateway</html>"));
  EXPECT_TRUE(s.retryable());
  EXPECT_EQ(s.error_code, 0);
  EXPECT_EQ(s.error_message, "HTTP 502 from Twilio");
  EXPECT_EQ(parse_status(answer(500, R"({"code":null})")).error_message,
            "HTTP 500 from Twilio");
  EXPECT_EQ(parse_status(answer(301, "")).error_message,
            "HTTP 301 from Twilio");
}

TEST(TwilioResponses, MessageCreated) {
  const auto r = parse_message_answer(answer(201, message_created));
  EXPECT_TRUE(r.status.ok);
  EXPECT_EQ(r.status.http_status, 201);
  EXPECT_EQ(r.message_sid, "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  EXPECT_EQ(r.carrier_state, "queued");
}

TEST(TwilioResponses, MessageRejected) {
  const auto r = parse_message_answer(answer(400, error_21211));
  EXPECT_FALSE(r.status.ok);
  EXPECT_EQ(r.status.error_code, 21211);
  EXPECT_EQ(r.message_sid, "");
}

TEST(TwilioResponses, MalformedMessageAnswersAreNotOkAndNotRetryable) {
  struct row {
    std::string_view body;
    std::string message;
  };
  for (const auto& [body, message] :
       {row{"not json", "malformed Twilio response: not a JSON object"},
        row{"[1]", "malformed Twilio response: not a JSON object"},
        row{R"({"status":"queued"})",
            "malformed Twilio response: missing \"sid\""},
        row{R"({"sid":"","status":"queued"})",
            "malformed Twilio response: missing \"sid\""},
        row{R"({"sid":7,"status":"queued"})",
            "malformed Twilio response: missing \"sid\""},
        row{R"({"sid":"SM1"})",
            "malformed Twilio response: missing \"status\""}}) {
    const auto r = parse_message_answer(answer(201, body));
    EXPECT_FALSE(r.status.ok) << body;
    EXPECT_FALSE(r.status.retryable()) << body; // it may have been sent
    EXPECT_EQ(r.status.http_status, 201);
    EXPECT_EQ(r.status.error_message, message) << body;
  }
}

TEST(TwilioResponses, CallFetched) {
  const auto r = parse_call_answer(answer(200, call_fetched));
  EXPECT_TRUE(r.status.ok);
  EXPECT_EQ(r.call.sid, "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  EXPECT_EQ(r.call.status, "completed");
  EXPECT_EQ(r.call.duration, 4);
}

TEST(TwilioResponses, CallDurationForms) {
  auto duration = [](std::string_view value) {
    const auto body = R"({"sid":"CA1","status":"in-progress","duration":)"
                      + std::string{value} + "}";
    const auto r = parse_call_answer(answer(200, body));
    return r.status.ok ? std::to_string(r.call.duration)
                       : r.status.error_message;
  };
  EXPECT_EQ(duration("null"), "0");
  EXPECT_EQ(duration(R"("15")"), "15");
  EXPECT_EQ(duration("15"), "15");
  EXPECT_EQ(duration(R"("abc")"),
            "malformed Twilio response: bad \"duration\"");
  EXPECT_EQ(duration(R"("")"), "malformed Twilio response: bad \"duration\"");
  EXPECT_EQ(duration("-3"), "malformed Twilio response: bad \"duration\"");
  EXPECT_EQ(duration("1.5"), "malformed Twilio response: bad \"duration\"");
  EXPECT_EQ(parse_call_answer(answer(200, R"({"sid":"CA1","status":"queued"})"))
              .call.duration,
            0);
}

TEST(TwilioResponses, CallNotFound) {
  const auto r = parse_call_answer(answer(404, R"({"code": 20404,
    "message": "The requested resource /2010-04-01/Accounts/AC1/Calls/CA1.json was not found",
    "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404})"));
  EXPECT_FALSE(r.status.ok);
  EXPECT_EQ(r.status.error_code, 20404);
  EXPECT_EQ(r.status.error_message,
            "The requested resource /2010-04-01/Accounts/AC1/Calls/CA1.json "
            "was not found");
}

TEST(TwilioResponses, MalformedCall) {
  EXPECT_EQ(parse_call_answer(answer(200, "")).status.error_message,
            "malformed Twilio response: not a JSON object");
  EXPECT_EQ(parse_call_answer(answer(200, R"({"status":"queued"})"))
              .status.error_message,
            "malformed Twilio response: missing \"sid\"");
  EXPECT_EQ(parse_call_answer(answer(200, R"({"sid":"CA1","status":null})"))
              .status.error_message,
            "malformed Twilio response: missing \"status\"");
}

TEST(TwilioResponses, CallPage) {
  const auto p = parse_call_page(answer(200, calls_page));
  ASSERT_TRUE(p.status.ok);
  ASSERT_EQ(p.calls.size(), 2u);
  EXPECT_EQ(p.calls[0].sid, "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  EXPECT_EQ(p.calls[0].status, "completed");
  EXPECT_EQ(p.calls[0].duration, 4);
  EXPECT_EQ(p.calls[1].status, "no-answer");
  EXPECT_EQ(p.calls[1].duration, 0);
  EXPECT_EQ(p.next_page_uri,
            "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/"
            "Calls.json?PageSize=2&Page=1&PageToken="
            "PACAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa0");
}

TEST(TwilioResponses, EmptyLastCallPage) {
  const auto p
    = parse_call_page(answer(200, R"({"calls": [], "next_page_uri": null})"));
  EXPECT_TRUE(p.status.ok);
  EXPECT_TRUE(p.calls.empty());
  EXPECT_EQ(p.next_page_uri, "");
}

TEST(TwilioResponses, MalformedCallPage) {
  EXPECT_EQ(parse_call_page(answer(200, "{}")).status.error_message,
            "malformed Twilio response: missing \"calls\"");
  EXPECT_EQ(
    parse_call_page(answer(200, R"({"calls":{}})")).status.error_message,
    "malformed Twilio response: missing \"calls\"");
  EXPECT_EQ(
    parse_call_page(answer(200, R"({"calls":[1]})")).status.error_message,
    "malformed Twilio response: calls[0]: not an object");
  const auto p = parse_call_page(
    answer(200, R"({"calls":[{"sid":"CA1","status":"busy"},{"sid":"CA2"}]})"));
  EXPECT_FALSE(p.status.ok);
  EXPECT_TRUE(p.calls.empty());
  EXPECT_EQ(p.status.error_message,
            "malformed Twilio response: calls[1]: missing \"status\"");
}

// Every response example Twilio's own OpenAPI spec gives for the three
// operations parses (the spec lives beside the repository, in shared/).
TEST(TwilioResponses, EveryExampleOfTheOpenApiSpecParses) {
  const std::string path = std::string{RINGBACK_SOURCE_DIR}
                           + "/../shared/oracles/twilio/twilio_api_v2010.json";
  std::ifstream in{path};
  if (!in) {
    GTEST_SKIP() << "no Twilio spec at " << path;
  }
  std::stringstream text;
  text << in.rdbuf();
  const auto spec = boost::json::parse(text.str());
  auto examples = [&](const char* path, const char* method, const char* code) {
    return spec.at("paths")
      .at(path)
      .at(method)
      .at("responses")
      .at(code)
      .at("content")
      .at("application/json")
      .at("examples")
      .as_object();
  };
  int seen = 0;
  for (const auto& [name, ex] : examples(
         "/2010-04-01/Accounts/{AccountSid}/Messages.json", "post", "201")) {
    const auto body = boost::json::serialize(ex.at("value"));
    const auto r = parse_message_answer(answer(201, body));
    EXPECT_TRUE(r.status.ok) << name << ": " << r.status.error_message;
    EXPECT_EQ(r.message_sid, ex.at("value").at("sid").as_string()) << name;
    ++seen;
  }
  for (const auto& [name, ex] : examples(
         "/2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json", "get", "200")) {
    const auto r
      = parse_call_answer(answer(200, boost::json::serialize(ex.at("value"))));
    EXPECT_TRUE(r.status.ok) << name << ": " << r.status.error_message;
    ++seen;
  }
  for (const auto& [name, ex] :
       examples("/2010-04-01/Accounts/{AccountSid}/Calls.json", "get", "200")) {
    const auto r
      = parse_call_page(answer(200, boost::json::serialize(ex.at("value"))));
    EXPECT_TRUE(r.status.ok) << name << ": " << r.status.error_message;
    EXPECT_EQ(r.calls.size(), ex.at("value").at("calls").as_array().size())
      << name;
    ++seen;
  }
  EXPECT_GE(seen, 3);
}
