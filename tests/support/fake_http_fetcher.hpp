#pragma once

#include "ringback/engine/http_port.hpp"

#include <deque>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace ringback::testkit {

/// An in-memory `engine::http_fetcher`: records every request and answers
/// with the scripted responses in order, then with 200 `{}` (JSON).
/// Thread-safe, so a test may read it while a worker thread fetches.
class fake_http_fetcher final : public engine::http_fetcher {
public:
  engine::outbound_http_response
  fetch(const engine::outbound_http_request& req) override {
    std::lock_guard<std::mutex> guard{mtx_};
    requests_.push_back(req);
    if (responses_.empty()) {
      return json(200, "{}");
    }
    auto res = std::move(responses_.front());
    responses_.pop_front();
    return res;
  }

  /// Queues the answer to a future request.
  void push(engine::outbound_http_response res) {
    std::lock_guard<std::mutex> guard{mtx_};
    responses_.push_back(std::move(res));
  }

  std::vector<engine::outbound_http_request> requests() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return requests_;
  }

  /// A response with a JSON body, after one attempt.
  static engine::outbound_http_response json(int status, std::string body) {
    engine::outbound_http_response res;
    res.status = status;
    res.body = std::move(body);
    res.content_type = "application/json";
    res.attempts = 1;
    return res;
  }

  /// No response: `kind` as the real fetcher reports it ("timeout",
  /// "not_allowed", ...), with `error` as its message.
  static engine::outbound_http_response failure(std::string kind,
                                                std::string error) {
    engine::outbound_http_response res;
    res.error_kind = std::move(kind);
    res.error = std::move(error);
    res.attempts = res.error_kind == "not_allowed"
                       || res.error_kind == "bad_url"
                       || res.error_kind == "bad_request"
                     ? 0
                     : 1;
    return res;
  }

private:
  mutable std::mutex mtx_;
  std::vector<engine::outbound_http_request> requests_;
  std::deque<engine::outbound_http_response> responses_;
};

} // namespace ringback::testkit
