#pragma once

// Twilio's REST API as the REST client's tests script it: the shared
// scripted, recording test server (tests/support/http_test_server.hpp) with
// Twilio's content type and the request fields those tests check.
// Header-only: only *_test.cpp files are compiled into the test executable.

#include "http_test_server.hpp"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ringback::test {

/// A request as the mock received it.
struct recorded_request {
  std::string method;
  std::string target;
  std::string host;
  std::string authorization;
  std::string content_type;
  std::string user_agent;
  std::string body;
  std::string sni;            // TLS server name sent by the client, if any
  std::size_t connection = 0; // 1-based number of the connection it came on
};

/// What the mock does with the next request.
struct mock_reply {
  using action = scripted_reply::action;

  action what = action::respond;
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  static mock_reply json(int status, std::string body) {
    return {action::respond, status, std::move(body), {}};
  }
};

class TwilioMockServer {
public:
  /// Listens on 127.0.0.1, any free port; with `tls`, speaks TLS.
  explicit TwilioMockServer(boost::asio::ssl::context* tls = nullptr)
    : server_(tls) {
    // Nothing to do.
  }

  std::uint16_t port() const {
    return server_.port();
  }

  /// `http://127.0.0.1:PORT` (or https).
  std::string url() const {
    return server_.url("");
  }

  /// Queues the reply to a future request (replies are used in order; with
  /// none left the mock answers 500 "no scripted reply").
  void push(mock_reply reply) {
    scripted_reply out;
    out.what = reply.what;
    out.status = reply.status;
    out.body = std::move(reply.body);
    out.headers = std::move(reply.headers);
    out.content_type = "application/json; charset=utf-8";
    server_.push(std::move(out));
  }

  std::vector<recorded_request> requests() const {
    std::vector<recorded_request> out;
    for (const auto& r : server_.requests()) {
      recorded_request rec;
      rec.method = r.method;
      rec.target = r.target;
      rec.host = r.header("Host");
      rec.authorization = r.header("Authorization");
      rec.content_type = r.header("Content-Type");
      rec.user_agent = r.header("User-Agent");
      rec.body = r.body;
      rec.sni = r.sni;
      rec.connection = r.connection;
      out.push_back(std::move(rec));
    }
    return out;
  }

  std::size_t connections() const {
    return server_.connections();
  }

  /// Waits until the server has closed `n` connections (or 5 s passed).
  bool wait_closed(std::size_t n) {
    return server_.wait_closed(n);
  }

private:
  HttpTestServer server_;
};

} // namespace ringback::test
