#include "ringback/adapters/twilio/form.hpp"
#include "ringback/adapters/twilio/responses.hpp"
#include "ringback/adapters/twilio/rest_client.hpp"
#include "ringback/adapters/twilio/signature.hpp"
#include "ringback/adapters/twilio/twiml.hpp"

#include <boost/json.hpp>

#include <cstdio>
#include <ctime>
#include <exception>
#include <string>
#include <vector>

namespace ringback::adapters::twilio {

namespace {

constexpr std::string_view form_content_type
  = "application/x-www-form-urlencoded";

engine::carrier_status failure(int http_status, std::string message) {
  engine::carrier_status status;
  status.http_status = http_status;
  status.error_message = std::move(message);
  return status;
}

rest_answer answer_of(const http_response& response) {
  return {response.status, response.retry_after, response.body};
}

/// "YYYY-MM-DD", the UTC day of `at` (Twilio's date filters).
std::string utc_date(engine::epoch_ms at) {
  auto secs = static_cast<std::time_t>(at / 1000 - (at % 1000 < 0 ? 1 : 0));
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char out[48]; // room for any int, to keep -Wformat-truncation quiet
  std::snprintf(out, sizeof out, "%04d-%02d-%02d", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday);
  return out;
}

/// A call as listed by `GET .../Calls.json?To=...&From=...`.
struct listed_call {
  std::string sid;
  std::string from;
  std::string to;
  /// "outbound-api" for a call placed through the API (a page);
  /// "outbound-dial" for a leg a <Dial> made; empty if not given.
  std::string direction;
  engine::epoch_ms date_created = 0; // 0 when missing or unparsable
};

struct listed_call_page {
  engine::carrier_status status;
  std::vector<listed_call> calls;
  std::string next_page_uri;
};

/// One page of the call listing, read as `parse_message_page` reads
/// messages: an entry without a sid is skipped; a 2xx that is not a call
/// list is not ok ("malformed Twilio response: ...").
listed_call_page parse_listed_call_page(const rest_answer& answer) {
  namespace json = boost::json;
  listed_call_page page;
  page.status = parse_status(answer);
  if (!page.status.ok) {
    return page;
  }
  auto malformed = [&](const char* what) {
    page.status = failure(answer.status,
                          std::string{"malformed Twilio response: "} + what);
    return page;
  };
  json::error_code ec;
  auto value = json::parse(answer.body, ec);
  const auto* obj = ec ? nullptr : value.if_object();
  if (obj == nullptr) {
    return malformed("not a JSON object");
  }
  const auto* list_value = obj->if_contains("calls");
  const auto* list = list_value != nullptr ? list_value->if_array() : nullptr;
  if (list == nullptr) {
    return malformed("missing \"calls\"");
  }
  auto text = [](const json::object& o, std::string_view name) {
    const auto* v = o.if_contains(name);
    const auto* str = v != nullptr ? v->if_string() : nullptr;
    return str != nullptr ? std::string{*str} : std::string{};
  };
  for (const auto& item : *list) {
    const auto* c = item.if_object();
    if (c == nullptr) {
      continue;
    }
    listed_call out;
    out.sid = text(*c, "sid");
    out.from = text(*c, "from");
    out.to = text(*c, "to");
    out.direction = text(*c, "direction");
    out.date_created = parse_rfc2822(text(*c, "date_created")).value_or(0);
    if (!out.sid.empty()) {
      page.calls.push_back(std::move(out));
    }
  }
  page.next_page_uri = text(*obj, "next_page_uri");
  return page;
}

} // namespace

make_result<twilio_rest_client>
twilio_rest_client::make(const rest_client_options& config) {
  auto fail = [](std::string what) {
    return make_result<twilio_rest_client>{nullptr,
                                           "twilio: " + std::move(what)};
  };
  auto parsed = parse_endpoint(config.api_url);
  if (!parsed.endpoint) {
    return fail(std::move(parsed.error));
  }
  if (config.account_sid.empty()) {
    return fail("account_sid is empty");
  }
  if (config.auth_token.empty()) {
    return fail("auth_token is empty");
  }
  if (config.connect_timeout.count() <= 0) {
    return fail("connect_timeout must be positive");
  }
  if (config.request_timeout.count() <= 0) {
    return fail("request_timeout must be positive");
  }
  http_client_options options;
  options.endpoint = std::move(*parsed.endpoint);
  options.connect_timeout = config.connect_timeout;
  options.request_timeout = config.request_timeout;
  options.authorization
    = "Basic " + base64_encode(config.account_sid + ":" + config.auth_token);
  options.user_agent = config.user_agent;
  options.ca_file = config.ca_file;
  auto base_path = options.endpoint.base_path;
  auto http = http_client::make(std::move(options));
  if (!http) {
    return fail(std::move(http.error));
  }
  auto account_path = base_path + "/2010-04-01/Accounts/"
                      + encode_component(config.account_sid);
  return {std::unique_ptr<twilio_rest_client>{new twilio_rest_client{
            std::move(http.value), std::move(account_path),
            std::move(base_path)}},
          {}};
}

twilio_rest_client::twilio_rest_client(std::unique_ptr<http_client> http,
                                       std::string account_path,
                                       std::string base_path)
  : http_(std::move(http)),
    account_path_(std::move(account_path)),
    base_path_(std::move(base_path)) {
  // Nothing to do.
}

twilio_rest_client::~twilio_rest_client() = default;

engine::sms_receipt
twilio_rest_client::send_sms(const engine::sms_request& req) {
  try {
    return send_sms_impl(req);
  } catch (const std::exception& e) {
    engine::sms_receipt receipt;
    receipt.status = failure(0, std::string{"unexpected error: "} + e.what());
    return receipt;
  }
}

engine::call_report twilio_rest_client::fetch_call(std::string_view call_sid) {
  try {
    return fetch_call_impl(call_sid);
  } catch (const std::exception& e) {
    engine::call_report report;
    report.status = failure(0, std::string{"unexpected error: "} + e.what());
    return report;
  }
}

engine::call_receipt
twilio_rest_client::place_call(const engine::call_request& req) {
  try {
    return place_call_impl(req);
  } catch (const std::exception& e) {
    engine::call_receipt receipt;
    receipt.status = failure(0, std::string{"unexpected error: "} + e.what());
    return receipt;
  }
}

engine::call_lookup
twilio_rest_client::find_call(const engine::call_request& req,
                              engine::epoch_ms created_after) {
  try {
    return find_call_impl(req, created_after);
  } catch (const std::exception& e) {
    engine::call_lookup lookup;
    lookup.status = failure(0, std::string{"unexpected error: "} + e.what());
    return lookup;
  }
}

std::size_t twilio_rest_client::connections_opened() const {
  return http_->connections_opened();
}

engine::sms_receipt
twilio_rest_client::send_sms_impl(const engine::sms_request& req) {
  form_fields fields{{"To", req.to}, {"From", req.from}, {"Body", req.body}};
  if (!req.status_callback.empty()) {
    fields.emplace_back("StatusCallback", req.status_callback);
  }
  auto result = send(http_method::post, account_path_ + "/Messages.json",
                     encode_form(fields));
  if (!result.response) {
    engine::sms_receipt receipt;
    receipt.status = failure(0, std::move(result.error));
    receipt.status.outcome_unknown = result.maybe_received;
    return receipt;
  }
  auto receipt = parse_message_answer(answer_of(*result.response));
  // A 5xx (Twilio's or a gateway's) does not say the message was not
  // created: only a lookup can tell. 4xx, 429 included, mean it was not.
  receipt.status.outcome_unknown = receipt.status.http_status >= 500;
  return receipt;
}

engine::sms_lookup twilio_rest_client::find_sms(const engine::sms_request& req,
                                                engine::epoch_ms created_after) {
  try {
    return find_sms_impl(req, created_after);
  } catch (const std::exception& e) {
    engine::sms_lookup lookup;
    lookup.status = failure(0, std::string{"unexpected error: "} + e.what());
    return lookup;
  }
}

engine::sms_lookup
twilio_rest_client::find_sms_impl(const engine::sms_request& req,
                                  engine::epoch_ms created_after) {
  // Newest first. A queued message has no date_sent yet, so filter on To and
  // From only and compare the creation time here; allow for clock skew.
  constexpr engine::epoch_ms skew = 60'000;
  engine::sms_lookup lookup;
  auto target = account_path_ + "/Messages.json?To=" + encode_component(req.to)
                + "&From=" + encode_component(req.from)
                + "&PageSize=" + std::to_string(message_page_size);
  for (int page = 0; page < max_message_pages; ++page) {
    auto result = send(http_method::get, std::move(target));
    if (!result.response) {
      lookup.status = failure(0, std::move(result.error));
      return lookup;
    }
    auto listed = parse_message_page(answer_of(*result.response));
    lookup.status = std::move(listed.status);
    if (!lookup.status.ok) {
      return lookup;
    }
    for (const auto& m : listed.messages) {
      if (m.date_created != 0 && m.date_created < created_after - skew) {
        return lookup; // older than the message we look for: not there
      }
      if (m.to == req.to && m.from == req.from && m.body == req.body) {
        lookup.message_sid = m.sid;
        return lookup;
      }
    }
    if (listed.next_page_uri.empty() || listed.next_page_uri.front() != '/') {
      return lookup;
    }
    target = base_path_ + listed.next_page_uri;
  }
  return lookup;
}

engine::call_receipt
twilio_rest_client::place_call_impl(const engine::call_request& req) {
  engine::call_receipt receipt;
  twiml_response twiml;
  twiml.say(req.say).pause(std::chrono::seconds{1}).say(req.say);
  form_fields fields{{"To", req.to},
                     {"From", req.from},
                     {"Twiml", twiml.str()}};
  auto result = send(http_method::post, account_path_ + "/Calls.json",
                     encode_form(fields));
  if (!result.response) {
    receipt.status = failure(0, std::move(result.error));
    receipt.status.outcome_unknown = result.maybe_received;
    return receipt;
  }
  auto call = parse_call_answer(answer_of(*result.response));
  receipt.status = std::move(call.status);
  receipt.call_sid = std::move(call.call.sid);
  // As for a message: a 5xx does not say the call was not created.
  receipt.status.outcome_unknown = receipt.status.http_status >= 500;
  return receipt;
}

engine::call_lookup
twilio_rest_client::find_call_impl(const engine::call_request& req,
                                   engine::epoch_ms created_after) {
  // Newest first. A Call keeps no text, so a call is taken for ours by its
  // From, To, direction and creation time; of several, the earliest (a
  // later one is a later page). The day filter only keeps the listing
  // short.
  const engine::epoch_ms since = created_after - call_lookup_skew_ms;
  engine::call_lookup lookup;
  auto target = account_path_ + "/Calls.json?To=" + encode_component(req.to)
                + "&From=" + encode_component(req.from)
                + "&StartTime%3E=" + utc_date(since)
                + "&PageSize=" + std::to_string(call_page_size);
  for (int page = 0; page < max_call_pages; ++page) {
    auto result = send(http_method::get, std::move(target));
    if (!result.response) {
      lookup.status = failure(0, std::move(result.error));
      lookup.call_sid.clear();
      return lookup;
    }
    auto listed = parse_listed_call_page(answer_of(*result.response));
    lookup.status = std::move(listed.status);
    if (!lookup.status.ok) {
      lookup.call_sid.clear();
      return lookup;
    }
    for (const auto& c : listed.calls) {
      if (c.date_created != 0 && c.date_created < since) {
        return lookup; // older than the call we look for: no more to see
      }
      // A <Dial> to the owner with the business number as caller ID makes
      // legs with the same From and To: only calls placed through the API
      // are pages.
      const bool placed = c.direction.empty() || c.direction == "outbound-api";
      if (placed && c.to == req.to && c.from == req.from) {
        lookup.call_sid = c.sid;
      }
    }
    if (listed.next_page_uri.empty() || listed.next_page_uri.front() != '/') {
      return lookup;
    }
    target = base_path_ + listed.next_page_uri;
  }
  return lookup;
}

engine::call_report
twilio_rest_client::fetch_call_impl(std::string_view call_sid) {
  engine::call_report report;
  const auto sid = encode_component(call_sid);
  auto parent = send(http_method::get,
                     account_path_ + "/Calls/" + sid + ".json");
  if (!parent.response) {
    report.status = failure(0, std::move(parent.error));
    return report;
  }
  auto call = parse_call_answer(answer_of(*parent.response));
  report.status = std::move(call.status);
  if (!report.status.ok) {
    return report;
  }
  report.parent = std::move(call.call);
  auto target = account_path_ + "/Calls.json?ParentCallSid=" + sid
                + "&PageSize=" + std::to_string(child_page_size);
  for (int page = 0;; ++page) {
    if (page == max_child_pages) {
      report.status = failure(report.status.http_status,
                              "more than " + std::to_string(max_child_pages)
                                + " pages of child calls");
      return report;
    }
    auto result = send(http_method::get, std::move(target));
    if (!result.response) {
      report.status = failure(0, std::move(result.error));
      return report;
    }
    auto children = parse_call_page(answer_of(*result.response));
    report.status = std::move(children.status);
    if (!report.status.ok) {
      return report;
    }
    for (auto& leg : children.calls) {
      report.children.push_back(std::move(leg));
    }
    if (children.next_page_uri.empty()) {
      return report;
    }
    if (children.next_page_uri.front() != '/') {
      report.status
        = failure(report.status.http_status,
                  "malformed Twilio response: \"next_page_uri\" is not a path");
      return report;
    }
    target = base_path_ + children.next_page_uri;
  }
}

http_result twilio_rest_client::send(http_method method, std::string target,
                                     std::string form_body) {
  http_request request;
  request.method = method;
  request.target = std::move(target);
  if (method == http_method::post) {
    request.content_type = form_content_type;
  }
  request.body = std::move(form_body);
  return http_->send(request);
}

} // namespace ringback::adapters::twilio
