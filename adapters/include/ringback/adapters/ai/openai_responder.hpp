#pragma once

#include "ringback/engine/ai.hpp"
#include "ringback/engine/http_port.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <string>

/// The AI port over an OpenAI-compatible chat-completions API: hosted
/// (api.openai.com and look-alikes) or local (llama.cpp, vLLM, Ollama).
namespace ringback::adapters::ai {

/// Settings of an `openai_responder`, checked by `make_openai_responder`.
struct openai_settings {
  /// The API's base, without `/chat/completions`: `https://api.openai.com/v1`
  /// or `http://127.0.0.1:8080/v1`. A trailing '/' is ignored; no query or
  /// fragment.
  std::string base_url;
  std::string model;
  /// Sent as `Authorization: Bearer <key>`; may be empty for local servers.
  /// Never logged, never part of an error message.
  std::string api_key;
  /// Budget of one attempt (connect, send, wait for the whole answer).
  std::chrono::milliseconds timeout{10000};
  /// Attempts in all, 1 to 10: a 429, 5xx, timeout or connection failure is
  /// tried again (with the fetcher's backoff and Retry-After).
  int max_attempts = 2;
  /// Prices, for `ai_reply::cost_usd`.
  double usd_per_1k_prompt = 0;
  double usd_per_1k_completion = 0;
  /// Sent as `max_tokens`, 1 or more.
  int max_tokens = 200;
  /// Sent as `temperature`, 0 to 2.
  double temperature = 0.3;
};

class openai_responder;
struct openai_responder_result;

/// Checks the settings; the error is meant for a fatal start-up diagnostic,
/// e.g. "openai: model is empty", "openai: URL 'ftp://x' must start with
/// http:// or https://". `fetcher` must outlive the responder.
openai_responder_result make_openai_responder(openai_settings settings,
                                              engine::http_fetcher& fetcher);

/// `engine::ai_responder` over `POST {base_url}/chat/completions`.
///
/// The request: `model`, `messages` (a system prompt from the profile and
/// the rules, see `system_prompt`, then the last `max_turns` turns of the
/// transcript: customer -> "user", AI -> "assistant", owner -> "assistant"
/// prefixed "(owner) "; consecutive turns of one role merged into one
/// message, one per line, and assistant turns before the customer's first
/// added to the system prompt, so that the messages alternate strictly as
/// some local models' chat templates demand), `max_tokens`, `temperature`;
/// headers
/// `Content-Type: application/json`, `Authorization: Bearer <key>` when a
/// key is set and a fresh `Idempotency-Key` (a chat completion changes
/// nothing on the server, so the fetcher may resend it after a 500, 502,
/// 504 or a timeout as well as after a 429 or 503). Only the base URL's host
/// is allowed.
///
/// The reply: `choices[0].message.content` through `engine::cap_reply`,
/// `usage.prompt_tokens` / `completion_tokens` (0 when absent) priced with
/// the settings, `about` = the offline classifier's reading of the pending
/// customer messages, `attempts` and `latency_ms` (wall time of `respond`).
///
/// Any failure (no connection, timeout, non-2xx, malformed JSON, no content)
/// answers with `engine::offline_reply` instead, `provider` "offline" and
/// `error` one line:
/// - "chat completions: timed out after 10000 ms"
/// - "chat completions: HTTP 500: <first 200 bytes of the body, on one line>"
/// - "chat completions: malformed JSON in the response"
/// - "chat completions: no content in the response"
/// - "chat completions: <the fetcher's error>" (e.g. cannot connect)
/// Tokens the server reported are kept (and priced) even then: they were
/// paid for. A transcript without customer text (among the last
/// `max_turns`) is answered offline without asking the model (no `error`).
///
/// Blocking (about attempts x timeout at most, plus the fetcher's backoff);
/// one instance per worker thread, used with that worker's fetcher, which
/// must outlive it. Never throws but `std::bad_alloc`.
class openai_responder final : public engine::ai_responder {
public:
  /// Turns of the transcript sent at most (the most recent ones).
  static constexpr std::size_t max_turns = 40;

  engine::ai_reply respond(const engine::ai_request& req) override;

  /// `{base_url}/chat/completions`.
  const std::string& url() const {
    return url_;
  }

private:
  friend openai_responder_result
  make_openai_responder(openai_settings settings,
                        engine::http_fetcher& fetcher);

  openai_responder(openai_settings settings, std::string url, std::string host,
                   engine::http_fetcher& fetcher);

  std::string idempotency_key();

  openai_settings settings_;
  std::string url_;
  std::string host_;
  engine::http_fetcher& fetcher_;
  std::mt19937_64 rng_;
};

/// What `make_openai_responder` made.
struct openai_responder_result {
  std::unique_ptr<openai_responder> value; // null on error
  std::string error;

  explicit operator bool() const {
    return value != nullptr;
  }
};

// -- exposed for tests --------------------------------------------------------

/// The system message: who the assistant speaks for, the rules (short SMS
/// replies within `req.max_chars`, no prices, no arrival times, the booking
/// link for bookings, "the owner is being paged" for emergencies, STOP for
/// opt-outs) and the profile's non-empty fields.
std::string system_prompt(const engine::ai_request& req);

/// The JSON body of the chat-completions request.
std::string chat_completions_body(const openai_settings& settings,
                                  const engine::ai_request& req);

} // namespace ringback::adapters::ai
