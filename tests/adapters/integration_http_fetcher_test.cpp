#include "ringback/adapters/integration/http_fetcher.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <gtest/gtest.h>

#include "fake_http_fetcher.hpp"
#include "http_test_server.hpp"
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

using namespace ringback;
using namespace std::chrono_literals;
using adapters::integration::beast_http_fetcher;
using adapters::integration::http_fetcher_options;
using adapters::integration::is_host_allowed;
using adapters::integration::make_http_fetcher_factory;
using adapters::integration::parse_retry_after;
using adapters::integration::parse_url;
using engine::outbound_http_request;
using engine::outbound_http_response;
using test::HttpTestServer;
using test::scripted_reply;

namespace {

http_fetcher_options fast_options() {
  http_fetcher_options opts;
  opts.backoff_base = 10ms;
  opts.backoff_cap = 40ms;
  opts.seed = 42;
  return opts;
}

/// A reply with one extra header.
scripted_reply with_header(scripted_reply reply, std::string name,
                           std::string value) {
  reply.headers.emplace_back(std::move(name), std::move(value));
  return reply;
}

/// A port on 127.0.0.1 where nothing listens.
std::uint16_t closed_port() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acceptor{
    ioc, {boost::asio::ip::make_address("127.0.0.1"), 0}};
  return acceptor.local_endpoint().port();
}

class HttpFetcher : public testing::Test {
protected:
  outbound_http_request request(std::string method, const std::string& path) {
    outbound_http_request req;
    req.method = std::move(method);
    req.url = server_.url(path);
    req.timeout = 2000ms;
    req.allowed_hosts = {"127.0.0.1"};
    return req;
  }

  std::string peer() const {
    return "127.0.0.1:" + std::to_string(server_.port());
  }

  HttpTestServer server_;
  beast_http_fetcher fetcher_{fast_options()};
};

} // namespace

// -- what is sent, what comes back --------------------------------------------

TEST_F(HttpFetcher, GetReturnsTheJsonResponse) {
  server_.push(scripted_reply::json(200, R"({"name":"Ada"})"));
  const auto res = fetcher_.fetch(request("GET", "/lookup?phone=%2B15550001"));
  EXPECT_TRUE(res.ok()) << res.error;
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, R"({"name":"Ada"})");
  EXPECT_EQ(res.content_type, "application/json");
  EXPECT_FALSE(res.truncated);
  EXPECT_EQ(res.error, "");
  EXPECT_EQ(res.error_kind, "");
  EXPECT_EQ(res.attempts, 1);
  EXPECT_GE(res.elapsed_ms, 0);
  const auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].target, "/lookup?phone=%2B15550001");
  EXPECT_EQ(reqs[0].header("Host"), peer());
  EXPECT_EQ(reqs[0].header("User-Agent"), "ringback/0.1");
  EXPECT_EQ(reqs[0].header("Accept"), "application/json");
  EXPECT_EQ(reqs[0].body, "");
}

TEST_F(HttpFetcher, PostSendsTheHeadersAndBodyAsGiven) {
  server_.push(scripted_reply::json(201, R"({"id":7})"));
  auto req = request("POST", "/leads");
  req.headers = {{"Content-Type", "application/json"},
                 {"X-Api-Key", "k3y"},
                 {"Authorization", "Bearer t0k"}};
  req.body = R"({"from":"+15550001","text":"call me"})";
  const auto res = fetcher_.fetch(req);
  EXPECT_TRUE(res.ok()) << res.error;
  EXPECT_EQ(res.status, 201);
  const auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, "/leads");
  EXPECT_EQ(reqs[0].body, req.body);
  EXPECT_EQ(reqs[0].header("Content-Type"), "application/json");
  EXPECT_EQ(reqs[0].header("Content-Length"), std::to_string(req.body.size()));
  EXPECT_EQ(reqs[0].header("X-Api-Key"), "k3y");
  EXPECT_EQ(reqs[0].header("Authorization"), "Bearer t0k");
}

TEST_F(HttpFetcher, PutPatchAndDeleteAreSent) {
  for (int i = 0; i < 3; ++i) {
    server_.push(scripted_reply::json(204, ""));
  }
  auto put = request("PUT", "/items/1");
  put.body = "{}";
  auto patch = request("patch", "/items/1"); // any case
  patch.body = R"({"a":1})";
  EXPECT_EQ(fetcher_.fetch(put).status, 204);
  EXPECT_EQ(fetcher_.fetch(patch).status, 204);
  EXPECT_EQ(fetcher_.fetch(request("Delete", "/items/1")).status, 204);
  const auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].method, "PUT");
  EXPECT_EQ(reqs[0].body, "{}");
  EXPECT_EQ(reqs[1].method, "PATCH");
  EXPECT_EQ(reqs[1].body, R"({"a":1})");
  EXPECT_EQ(reqs[2].method, "DELETE");
  EXPECT_EQ(reqs[2].target, "/items/1");
}

TEST_F(HttpFetcher, WorkflowHeadersReplaceDefaultsAndMayRepeat) {
  server_.push(scripted_reply::json(200, "{}"));
  auto req = request("GET", "/");
  req.headers = {{"user-agent", "crm-sync/2"},
                 {"Accept", "text/plain"},
                 {"X-Tag", "a"},
                 {"X-Tag", "b"}};
  EXPECT_TRUE(fetcher_.fetch(req).ok());
  const auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].count("User-Agent"), 1u);
  EXPECT_EQ(reqs[0].header("User-Agent"), "crm-sync/2");
  EXPECT_EQ(reqs[0].count("Accept"), 1u);
  EXPECT_EQ(reqs[0].header("Accept"), "text/plain");
  EXPECT_EQ(reqs[0].count("X-Tag"), 2u);
}

TEST_F(HttpFetcher, FragmentIsNotSentAndAnEmptyPathIsSlash) {
  server_.push(scripted_reply::json(200, "{}"));
  server_.push(scripted_reply::json(200, "{}"));
  auto req = request("GET", "");
  req.url = server_.url("?q=1#top");
  EXPECT_TRUE(fetcher_.fetch(req).ok());
  req.url = server_.url("");
  EXPECT_TRUE(fetcher_.fetch(req).ok());
  const auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].target, "/?q=1");
  EXPECT_EQ(reqs[1].target, "/");
}

TEST_F(HttpFetcher, ErrorStatusesAreResponsesNotErrors) {
  server_.push(scripted_reply::json(404, R"({"error":"no such lead"})"));
  const auto res = fetcher_.fetch(request("GET", "/leads/9"));
  EXPECT_FALSE(res.ok());
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(res.body, R"({"error":"no such lead"})");
  EXPECT_EQ(res.error, "");
  EXPECT_EQ(res.error_kind, "");
}

TEST_F(HttpFetcher, RedirectsAreNotFollowed) {
  server_.push(
    with_header(scripted_reply::json(302, ""), "Location", "/elsewhere"));
  const auto res = fetcher_.fetch(request("GET", "/old"));
  EXPECT_FALSE(res.ok());
  EXPECT_EQ(res.status, 302);
  EXPECT_EQ(res.error, "");
  EXPECT_EQ(server_.requests().size(), 1u);
}

TEST_F(HttpFetcher, KeepsTheConnectionAliveBetweenRequests) {
  server_.push(scripted_reply::json(200, "{}"));
  server_.push(scripted_reply::json(200, "{}"));
  EXPECT_TRUE(fetcher_.fetch(request("GET", "/a")).ok());
  EXPECT_TRUE(fetcher_.fetch(request("POST", "/b")).ok());
  EXPECT_EQ(server_.connections(), 1u);
  EXPECT_EQ(fetcher_.connections_opened(), 1u);
}

TEST_F(HttpFetcher, KeepsOneConnectionPerHostUpToTheLimit) {
  HttpTestServer other;
  auto to_other = request("GET", "/");
  to_other.url = other.url("/");
  for (int i = 0; i < 2; ++i) {
    server_.push(scripted_reply::json(200, "{}"));
    other.push(scripted_reply::json(200, "{}"));
  }
  EXPECT_TRUE(fetcher_.fetch(request("GET", "/")).ok());
  EXPECT_TRUE(fetcher_.fetch(to_other).ok());
  EXPECT_TRUE(fetcher_.fetch(request("GET", "/")).ok());
  EXPECT_TRUE(fetcher_.fetch(to_other).ok());
  EXPECT_EQ(server_.connections(), 1u);
  EXPECT_EQ(other.connections(), 1u);

  auto opts = fast_options();
  opts.max_kept_hosts = 1;
  beast_http_fetcher forgetful{opts};
  server_.push(scripted_reply::json(200, "{}"));
  other.push(scripted_reply::json(200, "{}"));
  server_.push(scripted_reply::json(200, "{}"));
  EXPECT_TRUE(forgetful.fetch(request("GET", "/")).ok());
  EXPECT_TRUE(forgetful.fetch(to_other).ok());
  EXPECT_TRUE(forgetful.fetch(request("GET", "/")).ok());
  EXPECT_EQ(server_.connections(), 3u); // 1 above, 2 here
  EXPECT_EQ(forgetful.connections_opened(), 3u);
}

// -- retries ------------------------------------------------------------------

TEST_F(HttpFetcher, RetriesAGetAfterA500AndCountsAttempts) {
  server_.push(scripted_reply::json(500, R"({"error":"oops"})"));
  server_.push(scripted_reply::json(200, R"({"ok":true})"));
  auto req = request("GET", "/flaky");
  req.max_attempts = 3;
  const auto res = fetcher_.fetch(req);
  EXPECT_TRUE(res.ok()) << res.error;
  EXPECT_EQ(res.body, R"({"ok":true})");
  EXPECT_EQ(res.attempts, 2);
  EXPECT_EQ(server_.requests().size(), 2u);
}

TEST_F(HttpFetcher, DoesNotRetryAPostAfterA500) {
  server_.push(scripted_reply::json(500, R"({"error":"oops"})"));
  auto req = request("POST", "/leads");
  req.max_attempts = 3;
  const auto res = fetcher_.fetch(req);
  EXPECT_EQ(res.status, 500);
  EXPECT_EQ(res.error, "");
  EXPECT_EQ(res.attempts, 1);
  EXPECT_EQ(server_.requests().size(), 1u);
}

TEST_F(HttpFetcher, RetriesAPostAfterA503) {
  server_.push(scripted_reply::json(503, ""));
  server_.push(scripted_reply::json(201, "{}"));
  auto req = request("POST", "/leads");
  req.max_attempts = 2;
  const auto res = fetcher_.fetch(req);
  EXPECT_EQ(res.status, 201);
  EXPECT_EQ(res.attempts, 2);
}

TEST_F(HttpFetcher, AnIdempotencyKeyMakesAPostRetryableAfterA502) {
  server_.push(scripted_reply::json(502, ""));
  server_.push(scripted_reply::json(502, ""));
  server_.push(scripted_reply::json(201, "{}"));
  auto req = request("POST", "/leads");
  req.max_attempts = 3;
  EXPECT_EQ(fetcher_.fetch(req).attempts, 1); // no key: may have been acted on
  req.headers = {{"idempotency-key", "run-1-step-2"}};
  const auto res = fetcher_.fetch(req);
  EXPECT_EQ(res.status, 201);
  EXPECT_EQ(res.attempts, 2);
}

TEST_F(HttpFetcher, HonoursRetryAfterOn429) {
  server_.push(with_header(scripted_reply::json(429, ""), "Retry-After", "1"));
  server_.push(scripted_reply::json(200, "{}"));
  auto req = request("POST", "/leads");
  req.max_attempts = 2;
  const auto res = fetcher_.fetch(req);
  EXPECT_TRUE(res.ok()) << res.error;
  EXPECT_EQ(res.attempts, 2);
  EXPECT_GE(res.elapsed_ms, 1000);
  EXPECT_LT(res.elapsed_ms, 8000);
}

TEST_F(HttpFetcher, ARetryAfterBeyondTheCapEndsTheRetries) {
  server_.push(
    with_header(scripted_reply::json(429, "slow down"), "Retry-After", "3600"));
  auto req = request("GET", "/");
  req.max_attempts = 3;
  const auto res = fetcher_.fetch(req);
  EXPECT_EQ(res.status, 429);
  EXPECT_EQ(res.body, "slow down");
  EXPECT_EQ(res.attempts, 1);
  EXPECT_LT(res.elapsed_ms, 3000);
}

TEST_F(HttpFetcher, GivesTheLastResponseWhenAttemptsAreUsedUp) {
  for (int i = 0; i < 3; ++i) {
    server_.push(
      scripted_reply::json(503, R"({"try":)" + std::to_string(i) + "}"));
  }
  auto req = request("GET", "/");
  req.max_attempts = 3;
  const auto res = fetcher_.fetch(req);
  EXPECT_EQ(res.status, 503);
  EXPECT_EQ(res.body, R"({"try":2})");
  EXPECT_EQ(res.error, "");
  EXPECT_EQ(res.attempts, 3);
}

TEST_F(HttpFetcher, ClientErrorsAreNotRetried) {
  server_.push(scripted_reply::json(400, ""));
  server_.push(scripted_reply::json(200, ""));
  auto req = request("GET", "/");
  req.max_attempts = 3;
  EXPECT_EQ(fetcher_.fetch(req).attempts, 1);
  EXPECT_EQ(server_.requests().size(), 1u);
}

TEST_F(HttpFetcher, AttemptsAreClamped) {
  for (int i = 0; i < 5; ++i) {
    server_.push(scripted_reply::json(503, ""));
  }
  auto req = request("GET", "/");
  req.max_attempts = 0;
  EXPECT_EQ(fetcher_.fetch(req).attempts, 1);
  auto opts = fast_options();
  opts.max_attempts = 2;
  beast_http_fetcher capped{opts};
  req.max_attempts = 1000;
  EXPECT_EQ(capped.fetch(req).attempts, 2);
}

// -- failures -----------------------------------------------------------------

TEST_F(HttpFetcher, TimesOutWhenTheServerNeverAnswers) {
  server_.push(scripted_reply::of(scripted_reply::action::hang));
  auto req = request("GET", "/slow");
  req.timeout = 300ms;
  const auto res = fetcher_.fetch(req);
  EXPECT_FALSE(res.ok());
  EXPECT_EQ(res.status, 0);
  EXPECT_EQ(res.error_kind, "timeout");
  EXPECT_EQ(res.error, "GET /slow: timed out after 300 ms");
  EXPECT_EQ(res.attempts, 1);
  EXPECT_GE(res.elapsed_ms, 290);
  EXPECT_LT(res.elapsed_ms, 5000);
}

TEST_F(HttpFetcher, RetriesAGetThatTimedOut) {
  server_.push(scripted_reply::of(scripted_reply::action::hang));
  server_.push(scripted_reply::json(200, "{}"));
  auto req = request("GET", "/slow");
  req.timeout = 300ms;
  req.max_attempts = 2;
  const auto res = fetcher_.fetch(req);
  EXPECT_TRUE(res.ok()) << res.error;
  EXPECT_EQ(res.attempts, 2);
  EXPECT_EQ(server_.connections(), 2u);
}

TEST_F(HttpFetcher, NeverResendsAPostThatTimedOutAfterBeingWritten) {
  server_.push(scripted_reply::of(scripted_reply::action::hang));
  server_.push(scripted_reply::json(200, "{}"));
  auto req = request("POST", "/leads");
  req.body = "{}";
  req.timeout = 300ms;
  req.max_attempts = 3;
  const auto res = fetcher_.fetch(req);
  EXPECT_EQ(res.error_kind, "timeout");
  EXPECT_EQ(res.error, "POST /leads: timed out after 300 ms");
  EXPECT_EQ(res.attempts, 1);
  EXPECT_EQ(server_.requests().size(), 1u);
}

TEST_F(HttpFetcher, NeverResendsAPostWhoseConnectionWasClosed) {
  server_.push(
    scripted_reply::of(scripted_reply::action::close_without_response));
  auto req = request("POST", "/leads");
  req.max_attempts = 3;
  const auto res = fetcher_.fetch(req);
  EXPECT_EQ(res.error_kind, "closed");
  EXPECT_EQ(res.error, "POST /leads: connection closed by " + peer()
                         + " before the response");
  EXPECT_EQ(res.attempts, 1);
}

TEST_F(HttpFetcher, AResponseCutShortIsAClosedConnection) {
  const std::string cut_short
    = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial";
  server_.push(scripted_reply::raw_bytes(cut_short));
  auto req = request("GET", "/x");
  const auto res = fetcher_.fetch(req);
  EXPECT_EQ(res.status, 0);
  EXPECT_EQ(res.body, "");
  EXPECT_EQ(res.error_kind, "closed");
  EXPECT_EQ(res.error,
            "GET /x: connection closed by " + peer() + " before the response");
  EXPECT_EQ(res.attempts, 1);
  // A GET may be sent again.
  server_.push(scripted_reply::raw_bytes(cut_short));
  server_.push(scripted_reply::json(200, R"({"whole":true})"));
  req.max_attempts = 2;
  const auto again = fetcher_.fetch(req);
  EXPECT_TRUE(again.ok()) << again.error;
  EXPECT_EQ(again.attempts, 2);
  EXPECT_EQ(again.body, R"({"whole":true})");
}

TEST_F(HttpFetcher, AMalformedResponseIsAProtocolError) {
  server_.push(scripted_reply::raw_bytes("SMTP READY\r\n\r\n"));
  auto req = request("GET", "/x");
  req.max_attempts = 3;
  const auto res = fetcher_.fetch(req);
  EXPECT_EQ(res.error_kind, "protocol");
  EXPECT_EQ(res.error, "GET /x: bad version");
  EXPECT_EQ(res.attempts, 1);
}

TEST_F(HttpFetcher, TruncatesBodiesOver64KiBAndDropsTheConnection) {
  std::string big(100 * 1024, 'x');
  for (std::size_t i = 0; i < big.size(); i += 1000) {
    big[i] = 'y';
  }
  server_.push(scripted_reply::json(200, big));
  server_.push(scripted_reply::json(200, "{}"));
  const auto res = fetcher_.fetch(request("GET", "/big"));
  EXPECT_TRUE(res.ok()) << res.error;
  EXPECT_TRUE(res.truncated);
  ASSERT_EQ(res.body.size(), 64u * 1024);
  EXPECT_EQ(res.body, big.substr(0, 64 * 1024));
  const auto next = fetcher_.fetch(request("GET", "/small"));
  EXPECT_TRUE(next.ok()) << next.error;
  EXPECT_FALSE(next.truncated);
  EXPECT_EQ(server_.connections(), 2u);
}

TEST_F(HttpFetcher, ABodyOfExactly64KiBIsWhole) {
  const std::string body(64 * 1024, 'z');
  server_.push(scripted_reply::json(200, body));
  const auto res = fetcher_.fetch(request("GET", "/"));
  EXPECT_FALSE(res.truncated);
  EXPECT_EQ(res.body, body);
}

TEST_F(HttpFetcher, TruncatesChunkedBodiesToo) {
  std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                        "Content-Type: text/plain\r\n\r\n";
  for (int i = 0; i < 20; ++i) {
    chunked += "1000\r\n" + std::string(0x1000, 'c') + "\r\n"; // 4 KiB each
  }
  chunked += "0\r\n\r\n";
  server_.push(scripted_reply::raw_bytes(chunked));
  const auto res = fetcher_.fetch(request("GET", "/"));
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.content_type, "text/plain");
  EXPECT_TRUE(res.truncated);
  EXPECT_EQ(res.body, std::string(64 * 1024, 'c'));
}

TEST(HttpFetcherNoServer, ConnectionRefusedIsRetriedAndReported) {
  const auto port = std::to_string(closed_port());
  beast_http_fetcher fetcher{fast_options()};
  outbound_http_request req;
  req.method = "POST"; // nothing was sent, so even a POST is retried
  req.url = "http://127.0.0.1:" + port + "/leads";
  req.allowed_hosts = {"127.0.0.1"};
  req.max_attempts = 2;
  const auto res = fetcher.fetch(req);
  EXPECT_EQ(res.status, 0);
  EXPECT_EQ(res.error_kind, "connect");
  EXPECT_EQ(res.error, "connect to 127.0.0.1:" + port
                         + " failed: Connection refused (after 2 attempts)");
  EXPECT_EQ(res.attempts, 2);
}

TEST(HttpFetcherNoServer, AServerThatNeverAcceptsTimesOut) {
  // The kernel completes the TCP handshake for a listening socket, but
  // nobody reads: the request is written and never answered.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor silent{
    ioc, {boost::asio::ip::make_address("127.0.0.1"), 0}};
  const auto port = std::to_string(silent.local_endpoint().port());
  beast_http_fetcher fetcher{fast_options()};
  outbound_http_request req;
  req.url = "http://127.0.0.1:" + port + "/x";
  req.allowed_hosts = {"127.0.0.1"};
  req.timeout = 300ms;
  auto res = fetcher.fetch(req);
  EXPECT_EQ(res.error_kind, "timeout");
  EXPECT_EQ(res.error, "GET /x: timed out after 300 ms");
  req.url = "https://127.0.0.1:" + port + "/x";
  res = fetcher.fetch(req);
  EXPECT_EQ(res.error_kind, "timeout");
  EXPECT_EQ(res.error, "TLS handshake with 127.0.0.1:" + port
                         + " failed: timed out after 300 ms");
}

TEST(HttpFetcherNoServer, AnUnresolvableHostIsAConnectError) {
  beast_http_fetcher fetcher{fast_options()};
  outbound_http_request req;
  req.url = "http://no-such-host.invalid/x";
  req.allowed_hosts = {"*.invalid"};
  req.timeout = 3000ms;
  const auto res = fetcher.fetch(req);
  // "connect" with the resolver's reason, or "timeout" where DNS hangs.
  EXPECT_TRUE(res.error_kind == "connect" || res.error_kind == "timeout")
    << res.error_kind;
  EXPECT_EQ(res.error.rfind("cannot resolve no-such-host.invalid: ", 0), 0u)
    << res.error;
}

// -- refused before sending ---------------------------------------------------

TEST_F(HttpFetcher, AHostNotAllowedIsNeverContacted) {
  auto req = request("GET", "/");
  req.allowed_hosts = {"api.example.com", "*.0.0.1", "localhost"};
  const auto res = fetcher_.fetch(req);
  EXPECT_FALSE(res.ok());
  EXPECT_EQ(res.status, 0);
  EXPECT_EQ(res.error_kind, "not_allowed");
  EXPECT_EQ(res.error,
            "host '127.0.0.1' is not in the tenant's http_allow list");
  EXPECT_EQ(res.attempts, 0);
  req.allowed_hosts.clear();
  EXPECT_EQ(fetcher_.fetch(req).error_kind, "not_allowed");
  EXPECT_EQ(server_.connections(), 0u);
  EXPECT_EQ(fetcher_.connections_opened(), 0u);
}

TEST_F(HttpFetcher, HeaderInjectionIsRefusedAndNothingIsSent) {
  const std::vector<std::pair<std::pair<std::string, std::string>, std::string>>
    cases = {
      {{"X-Evil", "a\r\nX-Injected: 1"},
       "header 'X-Evil' has a control character (such as CR or LF) in its "
       "value"},
      {{"X-Evil", std::string{"a\0b", 3}},
       "header 'X-Evil' has a control character (such as CR or LF) in its "
       "value"},
      {{"X-Evil\r\nX-Injected", "1"},
       "header name 'X-Evil\\x0d\\x0aX-Injected' has a character not allowed "
       "in a header name"},
      {{"X Evil", "1"},
       "header name 'X Evil' has a character not allowed in a header name"},
      {{"", "1"}, "header name must not be empty"},
      {{"Host", "evil.example"},
       "header 'Host' is set by ringback and must not be given"},
      {{"content-length", "0"},
       "header 'content-length' is set by ringback and must not be given"},
      {{"Transfer-Encoding", "chunked"},
       "header 'Transfer-Encoding' is set by ringback and must not be given"},
      {{"Connection", "close"},
       "header 'Connection' is set by ringback and must not be given"},
      {{std::string(300, 'n'), "1"},
       "header name '" + std::string(100, 'n')
         + "...' is longer than 256 bytes"},
      {{"X-Big", std::string(9000, 'v')},
       "header 'X-Big' has a value longer than 8192 bytes"},
    };
  for (const auto& [header, message] : cases) {
    auto req = request("POST", "/");
    req.headers = {{"X-Fine", "ok\tok"}, header};
    const auto res = fetcher_.fetch(req);
    EXPECT_EQ(res.error_kind, "bad_request") << message;
    EXPECT_EQ(res.error, message);
    EXPECT_EQ(res.attempts, 0);
  }
  EXPECT_EQ(server_.connections(), 0u);
}

TEST_F(HttpFetcher, BadMethodsAndTimeoutsAreRefused) {
  auto req = request("TRACE", "/");
  auto res = fetcher_.fetch(req);
  EXPECT_EQ(res.error_kind, "bad_request");
  EXPECT_EQ(res.error,
            "method 'TRACE' is not one of GET, POST, PUT, PATCH, DELETE");
  req.method = "GET\r\nX: y";
  EXPECT_EQ(fetcher_.fetch(req).error,
            "method 'GET\\x0d\\x0aX: y' is not one of GET, POST, PUT, PATCH, "
            "DELETE");
  req = request("GET", "/");
  req.timeout = 0ms;
  res = fetcher_.fetch(req);
  EXPECT_EQ(res.error_kind, "bad_request");
  EXPECT_EQ(res.error, "timeout must be positive, got 0 ms");
  EXPECT_EQ(server_.connections(), 0u);
}

TEST_F(HttpFetcher, BadUrlsAreRefusedAndNothingIsSent) {
  auto req = request("GET", "/");
  req.url = "ftp://127.0.0.1/x";
  const auto res = fetcher_.fetch(req);
  EXPECT_EQ(res.error_kind, "bad_url");
  EXPECT_EQ(res.error, "URL 'ftp://127.0.0.1/x' must start with http:// or "
                       "https://");
  EXPECT_EQ(res.attempts, 0);
  req.url = server_.url("/a b");
  EXPECT_EQ(fetcher_.fetch(req).error_kind, "bad_url");
  req.url = server_.url("/a\r\nX-Injected: 1");
  EXPECT_EQ(fetcher_.fetch(req).error_kind, "bad_url");
  EXPECT_EQ(server_.connections(), 0u);
}

// -- TLS ----------------------------------------------------------------------

namespace {

/// A TLS server with a fresh certificate, and that certificate in a CA file.
class HttpFetcherTls : public testing::Test {
protected:
  void start(const char* subject_alt_names) {
    const auto cert = test::make_test_certificate(subject_alt_names);
    server_tls_.use_certificate(boost::asio::buffer(cert.cert_pem),
                                boost::asio::ssl::context::pem);
    server_tls_.use_private_key(boost::asio::buffer(cert.key_pem),
                                boost::asio::ssl::context::pem);
    ca_file_ = std::filesystem::temp_directory_path()
               / ("ringback-http-ca-" + std::to_string(::getpid()) + ".pem");
    std::ofstream{ca_file_} << cert.cert_pem;
    server_.emplace(&server_tls_);
  }

  void TearDown() override {
    server_.reset();
    std::error_code ec;
    std::filesystem::remove(ca_file_, ec);
  }

  http_fetcher_options trusting() const {
    auto opts = fast_options();
    opts.ca_file = ca_file_.string();
    return opts;
  }

  outbound_http_request request(const std::string& host) const {
    outbound_http_request req;
    req.url = "https://" + host + ":" + std::to_string(server_->port()) + "/x";
    req.allowed_hosts = {host};
    return req;
  }

  boost::asio::ssl::context server_tls_{boost::asio::ssl::context::tls_server};
  std::filesystem::path ca_file_;
  std::optional<HttpTestServer> server_;
};

} // namespace

TEST_F(HttpFetcherTls, VerifiesTheCertificateAndSendsSni) {
  start("DNS:localhost,IP:127.0.0.1");
  server_->push(scripted_reply::json(200, R"({"secure":true})"));
  server_->push(scripted_reply::json(200, "{}"));
  server_->push(scripted_reply::json(200, "{}"));
  beast_http_fetcher fetcher{trusting()};
  const auto res = fetcher.fetch(request("localhost"));
  EXPECT_TRUE(res.ok()) << res.error;
  EXPECT_EQ(res.body, R"({"secure":true})");
  EXPECT_TRUE(fetcher.fetch(request("localhost")).ok());
  EXPECT_TRUE(fetcher.fetch(request("127.0.0.1")).ok());
  const auto reqs = server_->requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].sni, "localhost");
  EXPECT_EQ(reqs[1].connection, 1u); // kept alive over TLS
  EXPECT_EQ(reqs[2].sni, "");        // no SNI for an IP address
  EXPECT_EQ(reqs[0].header("Host"),
            "localhost:" + std::to_string(server_->port()));
}

TEST_F(HttpFetcherTls, RefusesAnUntrustedCertificate) {
  start("DNS:localhost");
  beast_http_fetcher fetcher{fast_options()}; // the system CAs only
  auto req = request("localhost");
  req.max_attempts = 3;
  const auto res = fetcher.fetch(req);
  EXPECT_EQ(res.status, 0);
  EXPECT_EQ(res.error_kind, "tls");
  EXPECT_EQ(res.error,
            "TLS handshake with localhost:" + std::to_string(server_->port())
              + " failed: certificate verify failed (SSL routines)");
  EXPECT_EQ(res.attempts, 1); // not retried
  EXPECT_TRUE(server_->requests().empty());
}

TEST_F(HttpFetcherTls, RefusesACertificateForAnotherHost) {
  start("DNS:crm.example.com");
  beast_http_fetcher fetcher{trusting()};
  const auto res = fetcher.fetch(request("localhost"));
  EXPECT_EQ(res.error_kind, "tls");
  EXPECT_TRUE(server_->requests().empty());
}

// -- factory ------------------------------------------------------------------

TEST(HttpFetcherFactory, MakesIndependentFetchers) {
  auto made = make_http_fetcher_factory(fast_options());
  ASSERT_TRUE(made) << made.error;
  auto a = made.factory();
  auto b = made.factory();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a.get(), b.get());
  HttpTestServer server;
  server.push(scripted_reply::json(200, "{}"));
  outbound_http_request req;
  req.url = server.url("/");
  req.allowed_hosts = {"127.0.0.1"};
  EXPECT_TRUE(a->fetch(req).ok());
}

TEST(HttpFetcherFactory, FailsOnAnUnreadableCaFile) {
  auto opts = fast_options();
  opts.ca_file = "/nonexistent/ringback-ca.pem";
  const auto made = make_http_fetcher_factory(opts);
  EXPECT_FALSE(made);
  EXPECT_EQ(
    made.error.rfind("cannot load CA file '/nonexistent/ringback-ca.pem'"
                     ": ",
                     0),
    0u)
    << made.error;
}

// -- URL parsing --------------------------------------------------------------

TEST(HttpUrl, Parses) {
  auto p = parse_url("HTTPS://API.Example.com:8443/a/b?x=1&y=%20#frag");
  ASSERT_TRUE(p.target) << p.error;
  EXPECT_TRUE(p.target->tls);
  EXPECT_EQ(p.target->host, "api.example.com");
  EXPECT_EQ(p.target->port, 8443);
  EXPECT_EQ(p.target->target, "/a/b?x=1&y=%20");
  p = parse_url("http://crm.example.com");
  ASSERT_TRUE(p.target) << p.error;
  EXPECT_FALSE(p.target->tls);
  EXPECT_EQ(p.target->port, 80);
  EXPECT_EQ(p.target->target, "/");
  p = parse_url("https://crm.example.com?q=1");
  ASSERT_TRUE(p.target) << p.error;
  EXPECT_EQ(p.target->port, 443);
  EXPECT_EQ(p.target->target, "/?q=1");
  p = parse_url("http://[::1]:8080/v1");
  ASSERT_TRUE(p.target) << p.error;
  EXPECT_EQ(p.target->host, "::1");
  EXPECT_EQ(p.target->target, "/v1");
  p = parse_url("http://crm.example.com./x");
  ASSERT_TRUE(p.target) << p.error;
  EXPECT_EQ(p.target->host, "crm.example.com");
  p = parse_url("http://a.example/p@q");
  ASSERT_TRUE(p.target) << p.error;
  EXPECT_EQ(p.target->target, "/p@q");
}

TEST(HttpUrl, ErrorMessages) {
  auto error = [](std::string_view url) { return parse_url(url).error; };
  EXPECT_EQ(error(""), "URL '' must start with http:// or https://");
  EXPECT_EQ(error("crm.example.com/x"),
            "URL 'crm.example.com/x' must start with http:// or https://");
  EXPECT_EQ(error("file:///etc/passwd"),
            "URL 'file:///etc/passwd' must start with http:// or https://");
  EXPECT_EQ(error("http://user:pw@crm.example.com/"),
            "URL 'http://user:pw@crm.example.com/' must not contain user info");
  EXPECT_EQ(error("http:///x"), "URL 'http:///x' has no host");
  EXPECT_EQ(error("http://:80/x"), "URL 'http://:80/x' has no host");
  EXPECT_EQ(error("http://a.example:0/"),
            "URL 'http://a.example:0/' has a bad port");
  EXPECT_EQ(error("http://a.example:99999/"),
            "URL 'http://a.example:99999/' has a bad port");
  EXPECT_EQ(error("http://a.example:/"),
            "URL 'http://a.example:/' has a bad port");
  EXPECT_EQ(error("http://a.example:8o/"),
            "URL 'http://a.example:8o/' has a bad port");
  EXPECT_EQ(error("http://[::1/"),
            "URL 'http://[::1/' has an unterminated IPv6 address");
  EXPECT_EQ(error("http://[::1]x/"), "URL 'http://[::1]x/' has a bad port");
  EXPECT_EQ(error("http://[fe80::1%25eth0]/"),
            "URL 'http://[fe80::1%25eth0]/' has a bad IPv6 address");
  EXPECT_EQ(error("http://[127.0.0.1]/"),
            "URL 'http://[127.0.0.1]/' has a bad IPv6 address");
  EXPECT_EQ(error("http://a..example/"),
            "URL 'http://a..example/' has a bad host name");
  EXPECT_EQ(error("http://%61.example/"),
            "URL 'http://%61.example/' has a bad host name");
  EXPECT_EQ(error("http://a\\b.example/"),
            "URL 'http://a\\x5cb.example/' has a bad host name");
  EXPECT_EQ(error("http://a.example/x y"),
            "URL 'http://a.example/x y' has a space, control or non-ASCII "
            "character (percent-encode it)");
  EXPECT_EQ(error("http://a.example/x\r\nHost: evil"),
            "URL 'http://a.example/x\\x0d\\x0aHost: evil' has a space, control "
            "or non-ASCII character (percent-encode it)");
  EXPECT_EQ(error("http://a.example/caf\xc3\xa9"),
            "URL 'http://a.example/caf\\xc3\\xa9' has a space, control or "
            "non-ASCII character (percent-encode it)");
  const auto long_url = "http://a.example/" + std::string(9000, 'x');
  EXPECT_EQ(error(long_url), "URL '" + long_url.substr(0, 200)
                               + "...' is longer than 8192 bytes");
}

TEST(HttpUrl, NeverCrashesOnRandomInput) {
  const std::string alphabet = "hHtTpPsS:/[]@?#.%-_019aAzZ \r\n\t\\\x80\xff";
  std::mt19937 rng{7};
  std::uniform_int_distribution<std::size_t> pick{0, alphabet.size() - 1};
  std::uniform_int_distribution<int> length{0, 40};
  const std::string prefixes[] = {"", "http://", "https://", "http://["};
  for (int i = 0; i < 20000; ++i) {
    std::string url = prefixes[i % 4];
    for (int n = length(rng); n > 0; --n) {
      url += alphabet[pick(rng)];
    }
    const auto p = parse_url(url);
    if (p.target) {
      EXPECT_FALSE(p.target->host.empty()) << url;
      EXPECT_EQ(p.target->target.front(), '/') << url;
      EXPECT_NE(p.target->port, 0) << url;
    } else {
      EXPECT_FALSE(p.error.empty()) << url;
    }
  }
}

// -- allow-list ---------------------------------------------------------------

TEST(HttpAllowList, MatchesExactNamesWildcardsAndAddresses) {
  const std::vector<std::string> allowed = {
    "API.Example.com", "*.crm.example", "127.0.0.1", "[::1]", "trailing.dot.",
  };
  EXPECT_TRUE(is_host_allowed("api.example.com", allowed));
  EXPECT_TRUE(is_host_allowed("API.EXAMPLE.COM", allowed));
  EXPECT_FALSE(is_host_allowed("example.com", allowed));
  EXPECT_FALSE(is_host_allowed("x.api.example.com", allowed));
  EXPECT_FALSE(is_host_allowed("api.example.com.evil", allowed));
  EXPECT_TRUE(is_host_allowed("eu.crm.example", allowed));
  EXPECT_TRUE(is_host_allowed("a.b.crm.example", allowed));
  EXPECT_FALSE(is_host_allowed("crm.example", allowed)); // not the bare suffix
  EXPECT_FALSE(is_host_allowed("evilcrm.example", allowed));
  EXPECT_TRUE(is_host_allowed("127.0.0.1", allowed));
  EXPECT_FALSE(is_host_allowed("127.0.0.2", allowed));
  EXPECT_TRUE(is_host_allowed("::1", allowed));
  EXPECT_TRUE(is_host_allowed("0:0::1", allowed));
  EXPECT_FALSE(is_host_allowed("::2", allowed));
  EXPECT_TRUE(is_host_allowed("trailing.dot", allowed));
  EXPECT_FALSE(is_host_allowed("localhost", allowed));
  EXPECT_FALSE(is_host_allowed("", allowed));
}

TEST(HttpAllowList, WildcardsNeverMatchAddressesAndJunkMatchesNothing) {
  EXPECT_FALSE(is_host_allowed("10.0.0.1", {"*.0.0.1", "*.1"}));
  EXPECT_FALSE(is_host_allowed("a.example", {"*", "*.", "", "."}));
  EXPECT_FALSE(is_host_allowed("a.example", {}));
  EXPECT_FALSE(is_host_allowed("127.0.0.1", {"localhost"}));
  EXPECT_FALSE(is_host_allowed("localhost", {"127.0.0.1"}));
}

// -- Retry-After --------------------------------------------------------------

TEST(HttpRetryAfter, ParsesSecondsAndDates) {
  // Sun, 06 Nov 1994 08:49:37 GMT
  const auto now
    = std::chrono::system_clock::time_point{std::chrono::seconds{784111777}};
  EXPECT_EQ(parse_retry_after("1", now), 1000ms);
  EXPECT_EQ(parse_retry_after(" 120 ", now), 120000ms);
  EXPECT_EQ(parse_retry_after("0", now), 0ms);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now), 10000ms);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), 0ms);
  EXPECT_EQ(parse_retry_after("Mon, 07 Nov 1994 08:49:37 GMT", now),
            std::chrono::milliseconds{86400 * 1000});
  EXPECT_EQ(parse_retry_after("99999999999999999999999", now),
            std::chrono::milliseconds{1'000'000'000LL * 1000});
  EXPECT_EQ(parse_retry_after("", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("-1", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("1.5", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("soon", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("Sun, 06 Foo 1994 08:49:37 GMT", now),
            std::nullopt);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 UTC", now),
            std::nullopt);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 25:49:37 GMT", now),
            std::nullopt);
}

// -- the fake -----------------------------------------------------------------

TEST(FakeHttpFetcher, RecordsRequestsAndAnswersAsScripted) {
  testkit::fake_http_fetcher fake;
  fake.push(testkit::fake_http_fetcher::failure(
    "timeout", "GET /x: timed out after 5000 ms"));
  engine::http_fetcher& port = fake;
  outbound_http_request req;
  req.url = "https://crm.example/x";
  const auto first = port.fetch(req);
  EXPECT_FALSE(first.ok());
  EXPECT_EQ(first.error_kind, "timeout");
  EXPECT_EQ(first.attempts, 1);
  const auto second = port.fetch(req);
  EXPECT_TRUE(second.ok());
  EXPECT_EQ(second.body, "{}");
  ASSERT_EQ(fake.requests().size(), 2u);
  EXPECT_EQ(fake.requests()[1].url, "https://crm.example/x");
}
