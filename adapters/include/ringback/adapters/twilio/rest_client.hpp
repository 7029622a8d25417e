#pragma once

#include "ringback/adapters/twilio/http_client.hpp"
#include "ringback/engine/ports.hpp"

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace ringback::adapters::twilio {

/// Settings of a `twilio_rest_client` (all read at `make`).
struct rest_client_options {
  /// Base URL of the API: `https://api.twilio.com`, or a local mock such as
  /// `http://127.0.0.1:8089` (an optional base path is kept as a prefix).
  std::string api_url = "https://api.twilio.com";
  std::string account_sid;
  std::string auth_token;
  /// Resolving, connecting and the TLS handshake together.
  std::chrono::milliseconds connect_timeout{5000};
  /// Writing one request and reading its answer.
  std::chrono::milliseconds request_timeout{10000};
  /// PEM file of trusted CAs for https; empty: the system's default paths.
  std::string ca_file;
  std::string user_agent = "ringback/0.1";
};

/// `engine::carrier` over Twilio's REST API 2010-04-01 (HTTP Basic auth with
/// the account SID and auth token).
///
/// Blocking, and NOT thread-safe: an instance keeps one keep-alive
/// connection and must be used from one thread at a time. The carrier
/// executor gives each of its worker threads an instance of its own.
/// The `engine::carrier` methods never throw: every failure is a
/// `carrier_status` (`http_status` 0 when no answer came: resolve or connect
/// error, timeout, connection lost). A POST is never sent twice.
class twilio_rest_client final : public engine::carrier {
public:
  /// Checks the config and sets up TLS. The error is meant for a fatal
  /// start-up diagnostic, e.g. "twilio: account_sid is empty".
  static make_result<twilio_rest_client>
  make(const rest_client_options& config);

  ~twilio_rest_client() override;

  /// POST /2010-04-01/Accounts/{AccountSid}/Messages.json with To, From,
  /// Body and (if not empty) StatusCallback. Ok with the Message SID and its
  /// status on 2xx; otherwise Twilio's error code and message, and
  /// `retry_after` from a Retry-After header given in seconds. A 5xx, or no
  /// answer after the request was written, sets `outcome_unknown`.
  engine::sms_receipt send_sms(const engine::sms_request& req) override;

  /// GET .../Messages.json?To=...&From=... (newest first, at most
  /// `max_message_pages` pages), looking for the same body created at or
  /// after `created_after` (less a minute of clock skew).
  engine::sms_lookup find_sms(const engine::sms_request& req,
                              engine::epoch_ms created_after) override;

  /// GET .../Calls/{CallSid}.json, then the child legs with
  /// GET .../Calls.json?ParentCallSid={CallSid} (following `next_page_uri`,
  /// at most `max_child_pages` pages). Ok only if every request succeeded;
  /// the status is then the last answer's.
  engine::call_report fetch_call(std::string_view call_sid) override;

  /// `POST .../Calls.json` with `From`, `To` and `Twiml` (`<Say>` the text
  /// twice): Twilio reads it without fetching a URL. Ok with the Call SID on
  /// 2xx. A 5xx, or no answer after the request was written, sets
  /// `outcome_unknown`.
  engine::call_receipt place_call(const engine::call_request& req) override;

  /// GET .../Calls.json?To=...&From=...&StartTime>=YYYY-MM-DD (the UTC day
  /// of `created_after` less `call_lookup_skew_ms`; newest first, at most
  /// `max_call_pages` pages), looking for a call placed through the API
  /// (`direction` "outbound-api": not a <Dial> leg) with that From and To
  /// whose `date_created` is at or after `created_after` less
  /// `call_lookup_skew_ms`; of several, the earliest. (A call still queued
  /// may have no start time yet, and Twilio may then leave it out of a
  /// StartTime filter: the page is then placed again, never lost.)
  engine::call_lookup find_call(const engine::call_request& req,
                                engine::epoch_ms created_after) override;

  /// Connections opened so far: stays 1 while keep-alive works.
  std::size_t connections_opened() const;

  /// Page size asked for the child legs, and the most pages followed.
  static constexpr int child_page_size = 50;
  static constexpr int max_child_pages = 10;

  /// Page size and page limit of the message lookup.
  static constexpr int message_page_size = 50;
  static constexpr int max_message_pages = 3;

  /// Page size and page limit of the call lookup.
  static constexpr int call_page_size = 50;
  static constexpr int max_call_pages = 3;

  /// How much earlier than `created_after` a call found by `find_call` may
  /// have been created: Twilio's timestamps are whole seconds, and a second
  /// for clock skew. Kept small: a call has no text to tell one page from
  /// another, so a wider window could take an earlier page to the same
  /// owner for this one (and not place it).
  static constexpr engine::epoch_ms call_lookup_skew_ms = 2'000;

private:
  twilio_rest_client(std::unique_ptr<http_client> http,
                     std::string account_path, std::string base_path);

  engine::sms_receipt send_sms_impl(const engine::sms_request& req);

  engine::call_report fetch_call_impl(std::string_view call_sid);

  engine::sms_lookup find_sms_impl(const engine::sms_request& req,
                                   engine::epoch_ms created_after);

  engine::call_receipt place_call_impl(const engine::call_request& req);

  engine::call_lookup find_call_impl(const engine::call_request& req,
                                     engine::epoch_ms created_after);

  /// Sends a request; a POST carries `form_body` as a form.
  http_result send(http_method method, std::string target,
                   std::string form_body = {});

  std::unique_ptr<http_client> http_;
  /// base path + "/2010-04-01/Accounts/{AccountSid}"
  std::string account_path_;
  std::string base_path_;
};

} // namespace ringback::adapters::twilio
