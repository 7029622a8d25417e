#include "ringback/adapters/twilio/rest_client.hpp"

#include "ringback/adapters/twilio/form.hpp"
#include "ringback/adapters/twilio/responses.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <gtest/gtest.h>

#include "twilio_mock_server.hpp"
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

using namespace ringback;
using namespace std::chrono_literals;
using adapters::twilio::rest_client_options;
using adapters::twilio::twilio_rest_client;
using test::mock_reply;
using test::TwilioMockServer;
namespace tw = adapters::twilio;

namespace {

constexpr auto account_sid = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
constexpr auto auth_token = "s3cr3t";
const std::string account_path = std::string{"/2010-04-01/Accounts/"}
                                 + account_sid;

// The "create" example of POST Messages.json in Twilio's OpenAPI spec.
constexpr auto message_created
  = R"({"account_sid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "api_version": "2010-04-01", "body": "Sorry we missed you!", "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
  "date_sent": null, "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000", "direction": "outbound-api",
  "error_code": null, "error_message": null, "from": "+15005550006", "num_media": "0",
  "num_segments": "1", "price": null, "price_unit": "USD", "messaging_service_sid": null,
  "sid": "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "status": "queued",
  "subresource_uris": {"media": "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages/SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Media.json"},
  "to": "+15005550002", "uri": "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages/SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.json"})";

constexpr auto error_21211 = R"({"code": 21211,
  "message": "The 'To' number +1555 is not a valid phone number.",
  "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400})";

std::string call_json(const std::string& sid, const std::string& status,
                      const char* duration) {
  return R"({"account_sid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "direction": "inbound", "sid": ")"
         + sid + R"(", "status": ")" + status + R"(", "duration": )" + duration
         + R"(, "from": "+15005550001", "to": "+15005550006", "parent_call_sid": null})";
}

std::string page_json(const std::string& calls,
                      const std::string& next_page_uri = "null") {
  return R"({"calls": [)" + calls
         + R"(], "end": 0, "first_page_uri": "/x", "next_page_uri": )"
         + next_page_uri
         + R"(, "page": 0, "page_size": 50, "previous_page_uri": null, "start": 0, "uri": "/x"})";
}

engine::sms_request missed_call_text() {
  engine::sms_request req;
  req.from = "+15005550006";
  req.to = "+15005550002";
  req.body = "Sorry we missed you!";
  return req;
}

rest_client_options config_for(const std::string& url) {
  rest_client_options cfg;
  cfg.api_url = url;
  cfg.account_sid = account_sid;
  cfg.auth_token = auth_token;
  cfg.connect_timeout = 1000ms;
  cfg.request_timeout = 1000ms;
  return cfg;
}

std::unique_ptr<twilio_rest_client>
make_client(const rest_client_options& cfg) {
  auto made = twilio_rest_client::make(cfg);
  EXPECT_TRUE(made) << made.error;
  return std::move(made.value);
}

class TwilioRestClient : public testing::Test {
protected:
  std::unique_ptr<twilio_rest_client>
  client(std::chrono::milliseconds timeout = 1000ms) {
    auto cfg = config_for(mock_.url());
    cfg.request_timeout = timeout;
    return make_client(cfg);
  }

  std::string peer() const {
    return "127.0.0.1:" + std::to_string(mock_.port());
  }

  TwilioMockServer mock_;
};

} // namespace

// -- send_sms -----------------------------------------------------------------

TEST_F(TwilioRestClient, SendSmsPostsTheFormWithBasicAuth) {
  mock_.push(mock_reply::json(201, message_created));
  const auto receipt = client()->send_sms(missed_call_text());
  EXPECT_TRUE(receipt.status.ok) << receipt.status.error_message;
  EXPECT_EQ(receipt.status.http_status, 201);
  EXPECT_EQ(receipt.message_sid, "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  EXPECT_EQ(receipt.carrier_state, "queued");
  const auto reqs = mock_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, account_path + "/Messages.json");
  EXPECT_EQ(reqs[0].host, peer());
  // base64("ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:s3cr3t")
  EXPECT_EQ(reqs[0].authorization,
            "Basic QUNhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYTpzM2NyM3Q=");
  EXPECT_EQ(reqs[0].content_type, "application/x-www-form-urlencoded");
  EXPECT_EQ(reqs[0].user_agent, "ringback/0.1");
  EXPECT_EQ(
    reqs[0].body,
    "To=%2B15005550002&From=%2B15005550006&Body=Sorry%20we%20missed%20you%21");
}

TEST_F(TwilioRestClient, SendSmsAddsTheStatusCallbackWhenGiven) {
  mock_.push(mock_reply::json(201, message_created));
  auto req = missed_call_text();
  req.status_callback = "https://x/webhooks/twilio/sms/status?m=1";
  EXPECT_TRUE(client()->send_sms(req).status.ok);
  EXPECT_EQ(
    mock_.requests().at(0).body,
    "To=%2B15005550002&From=%2B15005550006&Body=Sorry%20we%20missed%20you%21"
    "&StatusCallback=https%3A%2F%2Fx%2Fwebhooks%2Ftwilio%2Fsms%2Fstatus%3Fm%"
    "3D1");
}

TEST_F(TwilioRestClient, SendSmsRejectedWithTwilioErrorCode) {
  mock_.push(mock_reply::json(400, error_21211));
  const auto receipt = client()->send_sms(missed_call_text());
  EXPECT_FALSE(receipt.status.ok);
  EXPECT_FALSE(receipt.status.retryable());
  EXPECT_EQ(receipt.status.http_status, 400);
  EXPECT_EQ(receipt.status.error_code, 21211);
  EXPECT_EQ(receipt.status.error_message,
            "The 'To' number +1555 is not a valid phone number.");
  EXPECT_EQ(receipt.message_sid, "");
}

TEST_F(TwilioRestClient, SendSmsThrottledWithRetryAfter) {
  auto reply = mock_reply::json(
    429,
    R"({"code": 20429, "message": "Too Many Requests", "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429})");
  reply.headers = {{"Retry-After", "2"}};
  mock_.push(reply);
  const auto receipt = client()->send_sms(missed_call_text());
  EXPECT_TRUE(receipt.status.retryable());
  EXPECT_EQ(receipt.status.http_status, 429);
  EXPECT_EQ(receipt.status.error_code, 20429);
  EXPECT_EQ(receipt.status.error_message, "Too Many Requests");
  EXPECT_EQ(receipt.status.retry_after, std::chrono::milliseconds{2s});
  EXPECT_FALSE(receipt.status.outcome_unknown) << "a 429 was refused, not created";
}

TEST_F(TwilioRestClient, SendSmsServerError) {
  mock_.push({mock_reply::action::respond, 500, "<html>oops</html>", {}});
  const auto receipt = client()->send_sms(missed_call_text());
  EXPECT_TRUE(receipt.status.retryable());
  EXPECT_EQ(receipt.status.http_status, 500);
  EXPECT_EQ(receipt.status.error_message, "HTTP 500 from Twilio");
  EXPECT_EQ(receipt.status.retry_after, std::nullopt);
  EXPECT_TRUE(receipt.status.outcome_unknown) << "a 5xx may come after the message was created";
}

TEST_F(TwilioRestClient, ServerThatNeverAnswersTimesOut) {
  mock_.push({mock_reply::action::hang, 0, "", {}});
  auto c = client(200ms);
  const auto start = std::chrono::steady_clock::now();
  const auto receipt = c->send_sms(missed_call_text());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_FALSE(receipt.status.ok);
  EXPECT_TRUE(receipt.status.retryable());
  EXPECT_EQ(receipt.status.http_status, 0);
  EXPECT_EQ(receipt.status.error_message,
            "POST " + account_path + "/Messages.json: timed out after 200 ms");
  EXPECT_TRUE(receipt.status.outcome_unknown) << "it was written: Twilio may have it";
  EXPECT_GE(elapsed, 200ms);
  EXPECT_LT(elapsed, 2s);
  // The timed-out connection is dropped; the next request uses a new one.
  mock_.push(mock_reply::json(201, message_created));
  EXPECT_TRUE(c->send_sms(missed_call_text()).status.ok);
  EXPECT_EQ(c->connections_opened(), 2u);
}

TEST(TwilioRestClientNoServer, ConnectionRefused) {
  std::uint16_t port = 0;
  {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor acceptor{
      ioc, {boost::asio::ip::make_address("127.0.0.1"), 0}};
    port = acceptor.local_endpoint().port();
  }
  const auto peer = "127.0.0.1:" + std::to_string(port);
  auto c = make_client(config_for("http://" + peer));
  const auto receipt = c->send_sms(missed_call_text());
  EXPECT_EQ(receipt.status.http_status, 0);
  EXPECT_TRUE(receipt.status.retryable());
  EXPECT_EQ(receipt.status.error_message,
            "connect to " + peer + " failed: Connection refused");
  const auto report = c->fetch_call("CA1");
  EXPECT_FALSE(report.status.ok);
  EXPECT_EQ(report.status.error_message,
            "connect to " + peer + " failed: Connection refused");
}

TEST(TwilioRestClientNoServer, UnresolvableHost) {
  auto c = make_client(config_for("http://nonexistent.invalid"));
  const auto receipt = c->send_sms(missed_call_text());
  EXPECT_EQ(receipt.status.http_status, 0);
  EXPECT_EQ(receipt.status.error_message.rfind(
              "cannot resolve nonexistent.invalid: ", 0),
            0u)
    << receipt.status.error_message;
}

TEST(TwilioRestClientNoServer, ConnectTimeout) {
  // A listener with a full accept queue drops further SYNs: connect hangs.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acceptor{ioc};
  const boost::asio::ip::tcp::endpoint any{
    boost::asio::ip::make_address("127.0.0.1"), 0};
  acceptor.open(any.protocol());
  acceptor.bind(any);
  acceptor.listen(0);
  const auto endpoint = acceptor.local_endpoint();
  // async_connect starts a non-blocking connect at once; `ioc` never runs.
  std::vector<boost::asio::ip::tcp::socket> fillers;
  for (int i = 0; i < 4; ++i) {
    fillers.emplace_back(ioc).async_connect(endpoint,
                                            [](boost::system::error_code) {});
  }
  auto cfg = config_for("http://127.0.0.1:" + std::to_string(endpoint.port()));
  cfg.connect_timeout = 200ms;
  auto c = make_client(cfg);
  const auto start = std::chrono::steady_clock::now();
  const auto receipt = c->send_sms(missed_call_text());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(receipt.status.http_status, 0);
  EXPECT_EQ(receipt.status.error_message,
            "connect to 127.0.0.1:" + std::to_string(endpoint.port())
              + " timed out after 200 ms");
}

// -- keep-alive ---------------------------------------------------------------

TEST_F(TwilioRestClient, KeepsOneConnectionAlive) {
  mock_.push(mock_reply::json(201, message_created));
  mock_.push(mock_reply::json(201, message_created));
  mock_.push(mock_reply::json(400, error_21211));
  auto c = client();
  EXPECT_TRUE(c->send_sms(missed_call_text()).status.ok);
  EXPECT_TRUE(c->send_sms(missed_call_text()).status.ok);
  EXPECT_EQ(c->send_sms(missed_call_text()).status.error_code, 21211);
  EXPECT_EQ(mock_.connections(), 1u);
  EXPECT_EQ(c->connections_opened(), 1u);
  for (const auto& r : mock_.requests()) {
    EXPECT_EQ(r.connection, 1u);
  }
}

TEST_F(TwilioRestClient, ReconnectsAfterTheServerClosedTheConnection) {
  mock_.push({mock_reply::action::respond_and_close, 201, message_created, {}});
  mock_.push(mock_reply::json(201, message_created));
  auto c = client();
  EXPECT_TRUE(c->send_sms(missed_call_text()).status.ok);
  ASSERT_TRUE(mock_.wait_closed(1));
  const auto second = c->send_sms(missed_call_text());
  EXPECT_TRUE(second.status.ok) << second.status.error_message;
  const auto reqs = mock_.requests();
  ASSERT_EQ(reqs.size(), 2u); // the POST went out once on each connection
  EXPECT_EQ(reqs[0].connection, 1u);
  EXPECT_EQ(reqs[1].connection, 2u);
  EXPECT_EQ(c->connections_opened(), 2u);
}

TEST_F(TwilioRestClient, RetriesAGetOnceWhenTheKeptConnectionDiesUnderIt) {
  // The server reads the second GET and closes without answering, as a
  // server timing out an idle connection at that very moment would.
  mock_.push(mock_reply::json(200, call_json("CA1", "completed", R"("9")")));
  mock_.push({mock_reply::action::close_without_response, 0, "", {}});
  mock_.push(
    mock_reply::json(200, page_json(call_json("CA2", "no-answer", "null"))));
  auto c = client();
  const auto report = c->fetch_call("CA1");
  EXPECT_TRUE(report.status.ok) << report.status.error_message;
  ASSERT_EQ(report.children.size(), 1u);
  const auto reqs = mock_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[1].target, reqs[2].target);
  EXPECT_EQ(reqs[1].connection, 1u);
  EXPECT_EQ(reqs[2].connection, 2u);
}

TEST_F(TwilioRestClient, NeverResendsAPostTheServerMayHaveReceived) {
  mock_.push(mock_reply::json(201, message_created));
  mock_.push({mock_reply::action::close_without_response, 0, "", {}});
  mock_.push(mock_reply::json(201, message_created));
  auto c = client();
  EXPECT_TRUE(c->send_sms(missed_call_text()).status.ok);
  const auto lost = c->send_sms(missed_call_text());
  EXPECT_FALSE(lost.status.ok);
  EXPECT_EQ(lost.status.http_status, 0);
  EXPECT_EQ(lost.status.error_message,
            "POST " + account_path + "/Messages.json: connection closed by "
              + peer() + " before the response");
  EXPECT_EQ(mock_.requests().size(), 2u); // not sent again
  EXPECT_TRUE(lost.status.outcome_unknown);
  EXPECT_TRUE(c->send_sms(missed_call_text()).status.ok);
  EXPECT_EQ(mock_.requests().size(), 3u);
  EXPECT_EQ(mock_.requests().back().connection, 2u);
}

TEST_F(TwilioRestClient, GetIsRetriedOnlyOnce) {
  mock_.push(mock_reply::json(200, call_json("CA1", "completed", R"("9")")));
  mock_.push({mock_reply::action::close_without_response, 0, "", {}});
  mock_.push({mock_reply::action::close_without_response, 0, "", {}});
  auto c = client();
  const auto report = c->fetch_call("CA1");
  EXPECT_FALSE(report.status.ok);
  EXPECT_EQ(report.status.http_status, 0);
  EXPECT_EQ(
    report.status.error_message,
    "GET " + account_path
      + "/Calls.json?ParentCallSid=CA1&PageSize=50: connection closed by "
      + peer() + " before the response");
  EXPECT_EQ(mock_.requests().size(), 3u);
}

TEST(TwilioRestClientNoServer, ARefusedConnectionIsAKnownOutcome) {
  // Nothing was written, so nothing can have been received.
  auto c = make_client(config_for("http://127.0.0.1:1"));
  const auto receipt = c->send_sms(missed_call_text());
  EXPECT_EQ(receipt.status.http_status, 0);
  EXPECT_FALSE(receipt.status.outcome_unknown);
}

// -- find_sms -----------------------------------------------------------------

namespace {

std::string listed(const std::string& sid, const std::string& body,
                   const std::string& created) {
  return R"({"sid":")" + sid + R"(","from":"+15005550006","to":"+15005550002",)"
         + R"("body":")" + body + R"(","status":"queued","date_sent":null,)"
         + R"("date_created":")" + created + R"("})";
}

} // namespace

TEST_F(TwilioRestClient, FindSmsMatchesBodyAndCreationTime) {
  // 2026-11-21 06:00:00 UTC
  const engine::epoch_ms sent_at = 1'795'240'800'000;
  mock_.push(mock_reply::json(
    200, R"({"messages":[)"
           + listed("SMnew", "Something else", "Sat, 21 Nov 2026 06:00:05 +0000")
           + "," + listed("SMmine", "Sorry we missed you!", "Sat, 21 Nov 2026 06:00:01 +0000")
           + R"(],"next_page_uri":null})"));
  const auto found = client()->find_sms(missed_call_text(), sent_at);
  EXPECT_TRUE(found.status.ok) << found.status.error_message;
  EXPECT_EQ(found.message_sid, "SMmine");
  const auto reqs = mock_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].target, account_path
                              + "/Messages.json?To=%2B15005550002&From=%2B15005550006"
                                "&PageSize=50");
}

TEST_F(TwilioRestClient, FindSmsIgnoresTheSameBodySentLongBefore) {
  const engine::epoch_ms sent_at = 1'795'240'800'000;
  // Same text, a day earlier (a caller who called yesterday too).
  mock_.push(mock_reply::json(
    200, R"({"messages":[)"
           + listed("SMold", "Sorry we missed you!", "Fri, 20 Nov 2026 06:00:00 +0000")
           + R"(]})"));
  const auto found = client()->find_sms(missed_call_text(), sent_at);
  EXPECT_TRUE(found.status.ok);
  EXPECT_EQ(found.message_sid, "");
}

TEST_F(TwilioRestClient, FindSmsReportsAFailedLookup) {
  mock_.push(mock_reply::json(503, R"({"code":20503,"message":"down","status":503})"));
  const auto found = client()->find_sms(missed_call_text(), 0);
  EXPECT_FALSE(found.status.ok);
  EXPECT_EQ(found.status.http_status, 503);
  EXPECT_EQ(found.message_sid, "");
}

TEST(TwilioRfc2822, ParsesTwilioTimestamps) {
  EXPECT_EQ(ringback::adapters::twilio::parse_rfc2822("Tue, 31 Aug 2010 20:36:44 +0000"), 1'283'287'004'000);
  EXPECT_EQ(ringback::adapters::twilio::parse_rfc2822("Tue, 31 Aug 2010 22:36:44 +0200"), 1'283'287'004'000);
  EXPECT_EQ(ringback::adapters::twilio::parse_rfc2822("yesterday"), std::nullopt);
  EXPECT_EQ(ringback::adapters::twilio::parse_rfc2822(""), std::nullopt);
}

// -- fetch_call ---------------------------------------------------------------

TEST_F(TwilioRestClient, FetchCallReadsTheParentAndItsChildLegs) {
  mock_.push(mock_reply::json(200, call_json("CA1", "completed", R"("42")")));
  mock_.push(mock_reply::json(
    200, page_json(call_json("CA2", "no-answer", "null") + ","
                   + call_json("CA3", "completed", R"("30")"))));
  const auto report = client()->fetch_call("CA1");
  ASSERT_TRUE(report.status.ok) << report.status.error_message;
  EXPECT_EQ(report.status.http_status, 200);
  EXPECT_EQ(report.parent.sid, "CA1");
  EXPECT_EQ(report.parent.status, "completed");
  EXPECT_EQ(report.parent.duration, 42);
  ASSERT_EQ(report.children.size(), 2u);
  EXPECT_EQ(report.children[0].sid, "CA2");
  EXPECT_EQ(report.children[0].status, "no-answer");
  EXPECT_EQ(report.children[0].duration, 0);
  EXPECT_EQ(report.children[1].sid, "CA3");
  EXPECT_EQ(report.children[1].duration, 30);
  const auto reqs = mock_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].target, account_path + "/Calls/CA1.json");
  EXPECT_EQ(reqs[0].body, "");
  EXPECT_EQ(reqs[0].content_type, "");
  EXPECT_EQ(reqs[1].method, "GET");
  EXPECT_EQ(reqs[1].target,
            account_path + "/Calls.json?ParentCallSid=CA1&PageSize=50");
  EXPECT_EQ(reqs[1].authorization, reqs[0].authorization);
}

TEST_F(TwilioRestClient, FetchCallPercentEncodesTheSid) {
  mock_.push(mock_reply::json(
    404, R"({"code":20404,"message":"Not found","status":404})"));
  const auto report = client()->fetch_call("CA/../x y");
  EXPECT_FALSE(report.status.ok);
  EXPECT_EQ(report.status.http_status, 404);
  EXPECT_EQ(report.status.error_code, 20404);
  ASSERT_EQ(mock_.requests().size(), 1u); // no child request after a failure
  EXPECT_EQ(mock_.requests()[0].target,
            account_path + "/Calls/CA%2F..%2Fx%20y.json");
}

TEST_F(TwilioRestClient, FetchCallFailsWhenTheChildLegsFail) {
  mock_.push(mock_reply::json(200, call_json("CA1", "in-progress", "null")));
  mock_.push({mock_reply::action::respond, 503, "", {{"Retry-After", "1"}}});
  const auto report = client()->fetch_call("CA1");
  EXPECT_FALSE(report.status.ok);
  EXPECT_TRUE(report.status.retryable());
  EXPECT_EQ(report.status.http_status, 503);
  EXPECT_EQ(report.status.error_message, "HTTP 503 from Twilio");
  EXPECT_EQ(report.status.retry_after, std::chrono::milliseconds{1s});
}

TEST_F(TwilioRestClient, FetchCallMalformedParent) {
  mock_.push(mock_reply::json(200, R"({"sid": "CA1"})"));
  const auto report = client()->fetch_call("CA1");
  EXPECT_FALSE(report.status.ok);
  EXPECT_EQ(report.status.error_message,
            "malformed Twilio response: missing \"status\"");
}

TEST(TwilioRestClientPaging, FollowsNextPageUnderTheBasePath) {
  TwilioMockServer mock;
  const auto next
    = "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Calls.json?"
      "ParentCallSid=CA1&PageSize=50&Page=1&PageToken=PACA2";
  mock.push(mock_reply::json(200, call_json("CA1", "completed", R"("5")")));
  mock.push(mock_reply::json(200, page_json(call_json("CA2", "busy", R"("0")"),
                                            std::string{"\""} + next + "\"")));
  mock.push(
    mock_reply::json(200, page_json(call_json("CA3", "completed", R"("3")"))));
  auto c = make_client(config_for(mock.url() + "/mock/"));
  const auto report = c->fetch_call("CA1");
  ASSERT_TRUE(report.status.ok) << report.status.error_message;
  ASSERT_EQ(report.children.size(), 2u);
  EXPECT_EQ(report.children[0].sid, "CA2");
  EXPECT_EQ(report.children[1].sid, "CA3");
  const auto reqs = mock.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].target, "/mock" + account_path + "/Calls/CA1.json");
  EXPECT_EQ(reqs[1].target, "/mock" + account_path
                              + "/Calls.json?ParentCallSid=CA1&PageSize=50");
  EXPECT_EQ(reqs[2].target, "/mock" + std::string{next});
}

TEST(TwilioRestClientPaging, StopsAfterTheMaximumNumberOfPages) {
  TwilioMockServer mock;
  mock.push(mock_reply::json(200, call_json("CA1", "completed", R"("5")")));
  for (int i = 0; i < twilio_rest_client::max_child_pages; ++i) {
    mock.push(mock_reply::json(200, page_json(call_json("CA2", "busy", "null"),
                                              R"("/next")")));
  }
  const auto report = make_client(config_for(mock.url()))->fetch_call("CA1");
  EXPECT_FALSE(report.status.ok);
  EXPECT_EQ(report.status.error_message, "more than 10 pages of child calls");
  EXPECT_EQ(mock.requests().size(), 11u);
}

TEST(TwilioRestClientPaging, RejectsANextPageThatIsNotAPath) {
  TwilioMockServer mock;
  mock.push(mock_reply::json(200, call_json("CA1", "completed", R"("5")")));
  mock.push(
    mock_reply::json(200, page_json("", R"("https://evil.example/x")")));
  const auto report = make_client(config_for(mock.url()))->fetch_call("CA1");
  EXPECT_FALSE(report.status.ok);
  EXPECT_EQ(report.status.error_message,
            "malformed Twilio response: \"next_page_uri\" is not a path");
  EXPECT_EQ(mock.requests().size(), 2u);
}

// -- configuration ------------------------------------------------------------

TEST(TwilioRestClientConfig, InvalidConfigsAreRejectedWithAMessage) {
  auto error_for = [](auto change) {
    auto cfg = config_for("https://api.twilio.com");
    change(cfg);
    auto made = twilio_rest_client::make(cfg);
    EXPECT_EQ(made.value, nullptr);
    return made.error;
  };
  EXPECT_EQ(error_for([](auto& c) { c.api_url = "ftp://api.twilio.com"; }),
            "twilio: api_url 'ftp://api.twilio.com' must start with http:// or "
            "https://");
  EXPECT_EQ(error_for([](auto& c) { c.account_sid.clear(); }),
            "twilio: account_sid is empty");
  EXPECT_EQ(error_for([](auto& c) { c.auth_token.clear(); }),
            "twilio: auth_token is empty");
  EXPECT_EQ(error_for([](auto& c) { c.connect_timeout = 0ms; }),
            "twilio: connect_timeout must be positive");
  EXPECT_EQ(error_for([](auto& c) { c.request_timeout = -1ms; }),
            "twilio: request_timeout must be positive");
  EXPECT_EQ(error_for([](auto& c) {
              c.ca_file = "/nonexistent/ca.pem";
            }).rfind("twilio: cannot load CA file '/nonexistent/ca.pem': ", 0),
            0u);
}

TEST(TwilioRestClientConfig, ValidConfigsMake) {
  EXPECT_TRUE(twilio_rest_client::make(config_for("https://api.twilio.com")));
  EXPECT_TRUE(
    twilio_rest_client::make(config_for("http://127.0.0.1:8089/prefix")));
}

TEST(TwilioEndpoint, Parses) {
  using adapters::twilio::parse_endpoint;
  auto ep = parse_endpoint("https://api.twilio.com").endpoint;
  ASSERT_TRUE(ep);
  EXPECT_TRUE(ep->tls);
  EXPECT_EQ(ep->host, "api.twilio.com");
  EXPECT_EQ(ep->port, 443);
  EXPECT_EQ(ep->base_path, "");
  EXPECT_EQ(ep->host_header(), "api.twilio.com");
  ep = parse_endpoint("HTTP://127.0.0.1:8089/mock/twilio/").endpoint;
  ASSERT_TRUE(ep);
  EXPECT_FALSE(ep->tls);
  EXPECT_EQ(ep->host, "127.0.0.1");
  EXPECT_EQ(ep->port, 8089);
  EXPECT_EQ(ep->base_path, "/mock/twilio");
  EXPECT_EQ(ep->host_header(), "127.0.0.1:8089");
  ep = parse_endpoint("http://[::1]:80/").endpoint;
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->host, "::1");
  EXPECT_EQ(ep->port, 80);
  EXPECT_EQ(ep->base_path, "");
  EXPECT_EQ(ep->host_header(), "[::1]");
  ep = parse_endpoint("https://[::1]:8443").endpoint;
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->host_header(), "[::1]:8443");
}

TEST(TwilioEndpoint, ErrorMessages) {
  auto error = [](const char* url) {
    return adapters::twilio::parse_endpoint(url).error;
  };
  EXPECT_EQ(error("api.twilio.com"),
            "api_url 'api.twilio.com' must start with http:// or https://");
  EXPECT_EQ(error("https://"), "api_url 'https://' has no host");
  EXPECT_EQ(error("https://:443/x"), "api_url 'https://:443/x' has no host");
  EXPECT_EQ(error("https://a:0"), "api_url 'https://a:0' has a bad port");
  EXPECT_EQ(error("https://a:65536"),
            "api_url 'https://a:65536' has a bad port");
  EXPECT_EQ(error("https://a:"), "api_url 'https://a:' has a bad port");
  EXPECT_EQ(error("https://a:8x"), "api_url 'https://a:8x' has a bad port");
  EXPECT_EQ(error("https://[::1]x"), "api_url 'https://[::1]x' has a bad port");
  EXPECT_EQ(error("https://[::1"),
            "api_url 'https://[::1' has an unterminated IPv6 address");
  EXPECT_EQ(error("https://u:p@a"),
            "api_url 'https://u:p@a' must not contain user info");
  EXPECT_EQ(error("https://a/x?y=1"),
            "api_url 'https://a/x?y=1' must not contain a query or fragment");
  EXPECT_EQ(error("https://a#f"),
            "api_url 'https://a#f' must not contain a query or fragment");
}

// -- TLS ----------------------------------------------------------------------

namespace {

/// A self-signed certificate (its own CA) and its key, as PEM.
struct test_certificate {
  std::string cert_pem;
  std::string key_pem;
};

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const auto size = BIO_get_mem_data(bio, &data);
  return {data, static_cast<std::size_t>(size)};
}

void add_extension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  ASSERT_NE(ext, nullptr);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

test_certificate make_certificate(const char* subject_alt_names) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(
    name, "CN", MBSTRING_ASC,
    reinterpret_cast<const unsigned char*>("ringback test"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  add_extension(cert, NID_basic_constraints, "critical,CA:TRUE");
  add_extension(cert, NID_key_usage, "critical,digitalSignature,keyCertSign");
  add_extension(cert, NID_subject_alt_name, subject_alt_names);
  X509_sign(cert, key, EVP_sha256());
  test_certificate out;
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  out.cert_pem = bio_text(bio);
  BIO_free(bio);
  bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  out.key_pem = bio_text(bio);
  BIO_free(bio);
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

/// A TLS mock with a fresh certificate, and that certificate in a CA file.
class TwilioRestClientTls : public testing::Test {
protected:
  void start(const char* subject_alt_names) {
    const auto cert = make_certificate(subject_alt_names);
    server_tls_.use_certificate(boost::asio::buffer(cert.cert_pem),
                                boost::asio::ssl::context::pem);
    server_tls_.use_private_key(boost::asio::buffer(cert.key_pem),
                                boost::asio::ssl::context::pem);
    ca_file_ = std::filesystem::temp_directory_path()
               / ("ringback-twilio-ca-" + std::to_string(::getpid()) + ".pem");
    std::ofstream{ca_file_} << cert.cert_pem;
    mock_.emplace(&server_tls_);
  }

  void TearDown() override {
    mock_.reset();
    std::error_code ec;
    std::filesystem::remove(ca_file_, ec);
  }

  rest_client_options config(const std::string& host) {
    auto cfg
      = config_for("https://" + host + ":" + std::to_string(mock_->port()));
    cfg.ca_file = ca_file_.string();
    return cfg;
  }

  boost::asio::ssl::context server_tls_{boost::asio::ssl::context::tls_server};
  std::filesystem::path ca_file_;
  std::optional<TwilioMockServer> mock_;
};

} // namespace

TEST_F(TwilioRestClientTls, TalksTlsToAnIpAddressWithoutSni) {
  start("IP:127.0.0.1");
  mock_->push(mock_reply::json(201, message_created));
  mock_->push(mock_reply::json(201, message_created));
  auto c = make_client(config("127.0.0.1"));
  const auto first = c->send_sms(missed_call_text());
  EXPECT_TRUE(first.status.ok) << first.status.error_message;
  EXPECT_TRUE(c->send_sms(missed_call_text()).status.ok);
  EXPECT_EQ(c->connections_opened(), 1u); // keep-alive over TLS too
  const auto reqs = mock_->requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].sni, "");
  EXPECT_EQ(
    reqs[0].body,
    "To=%2B15005550002&From=%2B15005550006&Body=Sorry%20we%20missed%20you%21");
}

TEST_F(TwilioRestClientTls, SendsSniAndVerifiesTheHostName) {
  start("DNS:localhost");
  mock_->push(mock_reply::json(201, message_created));
  const auto receipt
    = make_client(config("localhost"))->send_sms(missed_call_text());
  EXPECT_TRUE(receipt.status.ok) << receipt.status.error_message;
  ASSERT_EQ(mock_->requests().size(), 1u);
  EXPECT_EQ(mock_->requests()[0].sni, "localhost");
  EXPECT_EQ(mock_->requests()[0].host,
            "localhost:" + std::to_string(mock_->port()));
}

TEST_F(TwilioRestClientTls, RejectsACertificateForAnotherHost) {
  start("DNS:other.example");
  const auto receipt
    = make_client(config("127.0.0.1"))->send_sms(missed_call_text());
  EXPECT_FALSE(receipt.status.ok);
  EXPECT_EQ(receipt.status.http_status, 0);
  EXPECT_EQ(receipt.status.error_message,
            "TLS handshake with 127.0.0.1:" + std::to_string(mock_->port())
              + " failed: certificate verify failed (SSL routines)");
  EXPECT_TRUE(mock_->requests().empty());
}

TEST_F(TwilioRestClientTls, RejectsAnUntrustedCertificate) {
  start("IP:127.0.0.1");
  auto cfg = config("127.0.0.1");
  cfg.ca_file.clear(); // the system's CAs do not know the test certificate
  const auto receipt = make_client(cfg)->send_sms(missed_call_text());
  EXPECT_EQ(receipt.status.http_status, 0);
  EXPECT_EQ(receipt.status.error_message,
            "TLS handshake with 127.0.0.1:" + std::to_string(mock_->port())
              + " failed: certificate verify failed (SSL routines)");
}

namespace {

TEST_F(TwilioRestClient, PlaceCallPostsTwimlThatReadsTheMessageTwice) {
  mock_.push(mock_reply::json(201, call_json("CA9", "queued", "null")));
  engine::call_request req{"+15005550006", "+15005550002",
                           "Emergency: water & <sparks> at #12"};
  auto r = client()->place_call(req);
  EXPECT_TRUE(r.status.ok) << r.status.error_message;
  EXPECT_EQ(r.call_sid, "CA9");
  auto reqs = mock_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, account_path + "/Calls.json");
  auto form = tw::decode_form(reqs[0].body);
  ASSERT_TRUE(form.ok());
  EXPECT_EQ(tw::find_field(form.fields, "To").value_or(""), "+15005550002");
  EXPECT_EQ(tw::find_field(form.fields, "From").value_or(""), "+15005550006");
  auto twiml = std::string{tw::find_field(form.fields, "Twiml").value_or("")};
  EXPECT_NE(twiml.find("<Say>Emergency: water &amp; &lt;sparks&gt; at #12</Say>"
                       "<Pause length=\"1\"/>"
                       "<Say>Emergency: water &amp; &lt;sparks&gt; at #12</Say>"),
            std::string::npos)
    << twiml;
}

TEST_F(TwilioRestClient, PlaceCallReportsTheCarriersRefusal) {
  mock_.push(mock_reply::json(
    400, R"({"code": 21215, "message": "Geo permission", "status": 400})"));
  auto r = client()->place_call({"+15005550006", "+15005550002", "page"});
  EXPECT_FALSE(r.status.ok);
  EXPECT_EQ(r.status.http_status, 400);
  EXPECT_EQ(r.status.error_code, 21215);
  EXPECT_TRUE(r.call_sid.empty());
}

} // namespace

// -- place_call: outcomes, find_call
// -------------------------------------------

namespace {

const engine::call_request page_request{"+15005550006", "+15005550002",
                                        "Emergency: water in the kitchen"};

/// A Call resource as `GET .../Calls.json` lists it (the spec's fields that
/// `find_call` reads, and a few it does not).
std::string listed_call(const std::string& sid, const std::string& created,
                        const std::string& direction = "outbound-api",
                        const std::string& to = "+15005550002") {
  return R"({"sid":")" + sid + R"(","from":"+15005550006","to":")" + to
         + R"(","direction":")" + direction
         + R"(","status":"queued","start_time":null,"duration":null,)"
         + R"("date_created":")" + created + R"("})";
}

std::string call_list(const std::string& calls,
                      const std::string& next_page_uri = "null") {
  return R"({"calls":[)" + calls + R"(],"next_page_uri":)" + next_page_uri
         + R"(,"page":0,"page_size":50,"start":0,"end":0})";
}

// 2026-11-21 06:00:00 UTC
constexpr engine::epoch_ms page_created = 1'795'240'800'000;

const std::string call_lookup_target
  = account_path
    + "/Calls.json?To=%2B15005550002&From=%2B15005550006"
      "&StartTime%3E=2026-11-21&PageSize=50";

} // namespace

TEST_F(TwilioRestClient, PlaceCallServerErrorHasAnUnknownOutcome) {
  // As for a message: a 5xx does not say the call was not placed.
  mock_.push(
    mock_reply::json(503, R"({"code":20503,"message":"down","status":503})"));
  const auto r = client()->place_call(page_request);
  EXPECT_FALSE(r.status.ok);
  EXPECT_EQ(r.status.http_status, 503);
  EXPECT_TRUE(r.status.retryable());
  EXPECT_TRUE(r.status.outcome_unknown);
  EXPECT_TRUE(r.call_sid.empty());
}

TEST_F(TwilioRestClient, PlaceCallRefusedHasAKnownOutcome) {
  mock_.push(mock_reply::json(
    400, R"({"code": 21215, "message": "Geo permission", "status": 400})"));
  const auto r = client()->place_call(page_request);
  EXPECT_FALSE(r.status.retryable());
  EXPECT_FALSE(r.status.outcome_unknown);
  EXPECT_EQ(r.status.error_message, "Geo permission");
}

TEST_F(TwilioRestClient, PlaceCallWithALostAnswerIsNotSentAgain) {
  mock_.push({mock_reply::action::close_without_response, 0, "", {}});
  auto c = client();
  const auto r = c->place_call(page_request);
  EXPECT_FALSE(r.status.ok);
  EXPECT_EQ(r.status.http_status, 0);
  EXPECT_TRUE(r.status.outcome_unknown);
  EXPECT_EQ(r.status.error_message, "POST " + account_path
                                      + "/Calls.json: connection closed by "
                                      + peer() + " before the response");
  EXPECT_EQ(mock_.requests().size(), 1u);
}

TEST_F(TwilioRestClient, FindCallTakesTheEarliestPageFromThatNumberToTheOwner) {
  mock_.push(mock_reply::json(
    200,
    call_list(listed_call("CAlater", "Sat, 21 Nov 2026 06:00:30 +0000") + ","
              + listed_call("CAdial", "Sat, 21 Nov 2026 06:00:10 +0000",
                            "outbound-dial")
              + ","
              + listed_call("CAelse", "Sat, 21 Nov 2026 06:00:05 +0000",
                            "outbound-api", "+15005550009")
              + "," + listed_call("CAmine", "Sat, 21 Nov 2026 06:00:01 +0000")
              + ","
              + listed_call("CAbefore", "Sat, 21 Nov 2026 05:59:40 +0000"))));
  const auto found = client()->find_call(page_request, page_created);
  EXPECT_TRUE(found.status.ok) << found.status.error_message;
  EXPECT_EQ(found.status.http_status, 200);
  EXPECT_EQ(found.call_sid, "CAmine")
    << "not a later page, not a <Dial> leg, not a call to someone else, "
       "not an earlier page";
  const auto reqs = mock_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].target, call_lookup_target);
  EXPECT_EQ(reqs[0].body, "");
}

TEST_F(TwilioRestClient, FindCallAllowsTwoSecondsOfSkewAndNoMore) {
  // Created at 06:00:00.900 here: Twilio's whole second 05:59:59 is ours
  // (skew and rounding), 05:59:58 is not.
  mock_.push(mock_reply::json(
    200,
    call_list(listed_call("CAskewed", "Sat, 21 Nov 2026 05:59:59 +0000"))));
  mock_.push(mock_reply::json(
    200,
    call_list(listed_call("CAearlier", "Sat, 21 Nov 2026 05:59:58 +0000"))));
  auto c = client();
  EXPECT_EQ(c->find_call(page_request, page_created + 900).call_sid,
            "CAskewed");
  const auto none = c->find_call(page_request, page_created + 900);
  EXPECT_TRUE(none.status.ok);
  EXPECT_EQ(none.call_sid, "");
}

TEST_F(TwilioRestClient, FindCallAsksForTheDayOfTheSkewedTimeInUtc) {
  // 2026-11-21 00:00:01 UTC less the skew is the day before.
  mock_.push(mock_reply::json(200, call_list("")));
  const auto found = client()->find_call(page_request, 1'795'219'201'000);
  EXPECT_TRUE(found.status.ok);
  EXPECT_EQ(found.call_sid, "");
  EXPECT_EQ(mock_.requests().at(0).target,
            account_path
              + "/Calls.json?To=%2B15005550002&From=%2B15005550006"
                "&StartTime%3E=2026-11-20&PageSize=50");
}

TEST_F(TwilioRestClient, FindCallReportsAFailedLookup) {
  mock_.push(
    mock_reply::json(503, R"({"code":20503,"message":"down","status":503})"));
  const auto found = client()->find_call(page_request, page_created);
  EXPECT_FALSE(found.status.ok);
  EXPECT_TRUE(found.status.retryable());
  EXPECT_EQ(found.status.http_status, 503);
  EXPECT_EQ(found.status.error_message, "down");
  EXPECT_EQ(found.call_sid, "");
}

TEST_F(TwilioRestClient, FindCallRejectsAnAnswerThatIsNoCallList) {
  mock_.push(mock_reply::json(200, R"({"messages":[]})"));
  mock_.push(mock_reply::json(200, "[1,2]"));
  auto c = client();
  const auto a = c->find_call(page_request, page_created);
  EXPECT_FALSE(a.status.ok);
  EXPECT_EQ(a.status.error_message,
            "malformed Twilio response: missing \"calls\"");
  const auto b = c->find_call(page_request, page_created);
  EXPECT_FALSE(b.status.ok);
  EXPECT_EQ(b.status.error_message,
            "malformed Twilio response: not a JSON object");
}

TEST(TwilioRestClientPaging, FindCallFollowsNextPageUnderTheBasePath) {
  TwilioMockServer mock;
  const std::string next
    = account_path
      + "/Calls.json?To=%2B15005550002&From=%2B15005550006&PageSize=50&Page=1"
        "&PageToken=PACA2";
  mock.push(mock_reply::json(
    200, call_list(listed_call("CAlater", "Sat, 21 Nov 2026 06:00:30 +0000"),
                   "\"" + next + "\"")));
  mock.push(mock_reply::json(
    200, call_list(listed_call("CAmine", "Sat, 21 Nov 2026 06:00:02 +0000"))));
  auto c = make_client(config_for(mock.url() + "/mock/"));
  const auto found = c->find_call(page_request, page_created);
  ASSERT_TRUE(found.status.ok) << found.status.error_message;
  EXPECT_EQ(found.call_sid, "CAmine");
  const auto reqs = mock.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].target, "/mock" + call_lookup_target);
  EXPECT_EQ(reqs[1].target, "/mock" + next);
}

TEST(TwilioRestClientPaging, FindCallReadsAtMostItsPageLimit) {
  TwilioMockServer mock;
  for (int i = 0; i < twilio_rest_client::max_call_pages + 1; ++i)
    mock.push(mock_reply::json(
      200, call_list(listed_call("CA" + std::to_string(i),
                                 "Sat, 21 Nov 2026 06:00:40 +0000"),
                     R"("/next")")));
  const auto found = make_client(config_for(mock.url()))
                       ->find_call(page_request, page_created);
  EXPECT_TRUE(found.status.ok);
  EXPECT_EQ(found.call_sid, "CA2") << "the earliest of the pages read";
  EXPECT_EQ(mock.requests().size(), 3u);
}
