#include "ringback/adapters/twilio/responses.hpp"

#include <ctime>

#include <boost/json.hpp>

#include <charconv>
#include <cstdint>
#include <limits>

namespace ringback::adapters::twilio {

namespace json = boost::json;

namespace {

bool is_success(int status) {
  return status >= 200 && status < 300;
}

std::optional<json::object> parse_object(std::string_view body) {
  json::error_code ec;
  auto value = json::parse(body, ec);
  if (ec || !value.is_object()) {
    return std::nullopt;
  }
  return std::move(value.as_object());
}

const json::string* string_field(const json::object& obj,
                                 std::string_view key) {
  const auto* value = obj.if_contains(key);
  return value != nullptr ? value->if_string() : nullptr;
}

engine::carrier_status malformed(int http_status, const std::string& what) {
  engine::carrier_status status;
  status.http_status = http_status;
  status.error_message = "malformed Twilio response: " + what;
  return status;
}

std::optional<std::int32_t> parse_int32(std::string_view text) {
  std::int32_t out = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, out);
  if (ec != std::errc{} || ptr != end || text.empty()) {
    return std::nullopt;
  }
  return out;
}

/// Twilio sends `duration` as a string of seconds, or null while the call
/// has not ended. Accepts a JSON integer too.
std::optional<std::int32_t> read_duration(const json::value* value) {
  if (value == nullptr || value->is_null()) {
    return 0;
  }
  if (const auto* text = value->if_string()) {
    return parse_int32(*text);
  }
  if (const auto* number = value->if_int64();
      number != nullptr && *number >= 0
      && *number <= std::numeric_limits<std::int32_t>::max()) {
    return static_cast<std::int32_t>(*number);
  }
  return std::nullopt;
}

/// Reads a Call resource; returns what is wrong with it, empty if nothing.
std::string read_call(const json::object& obj, engine::call_leg& out) {
  const auto* sid = string_field(obj, "sid");
  if (sid == nullptr || sid->empty()) {
    return "missing \"sid\"";
  }
  const auto* status = string_field(obj, "status");
  if (status == nullptr) {
    return "missing \"status\"";
  }
  const auto duration = read_duration(obj.if_contains("duration"));
  if (!duration) {
    return "bad \"duration\"";
  }
  out.sid = std::string{*sid};
  out.status = std::string{*status};
  out.duration = *duration;
  return {};
}

} // namespace

std::optional<std::chrono::milliseconds>
parse_retry_after(std::string_view value) {
  const auto first = value.find_first_not_of(" \t");
  if (first == std::string_view::npos) {
    return std::nullopt;
  }
  value = value.substr(first, value.find_last_not_of(" \t") - first + 1);
  std::uint32_t seconds = 0;
  const auto* end = value.data() + value.size();
  const auto [ptr, ec] = std::from_chars(value.data(), end, seconds);
  if (ec != std::errc{} || ptr != end) {
    return std::nullopt;
  }
  return std::chrono::seconds{seconds};
}

engine::carrier_status parse_status(const rest_answer& answer) {
  engine::carrier_status status;
  status.http_status = answer.status;
  status.retry_after = parse_retry_after(answer.retry_after);
  if (is_success(answer.status)) {
    status.ok = true;
    return status;
  }
  if (const auto obj = parse_object(answer.body)) {
    if (const auto* code = obj->if_contains("code")) {
      json::error_code ec;
      const auto value = code->to_number<std::int32_t>(ec);
      if (!ec) {
        status.error_code = value;
      }
    }
    if (const auto* message = string_field(*obj, "message")) {
      status.error_message = std::string{*message};
    }
  }
  if (status.error_message.empty()) {
    status.error_message = "HTTP " + std::to_string(answer.status)
                           + " from Twilio";
  }
  return status;
}

engine::sms_receipt parse_message_answer(const rest_answer& answer) {
  engine::sms_receipt receipt;
  receipt.status = parse_status(answer);
  if (!receipt.status.ok) {
    return receipt;
  }
  const auto obj = parse_object(answer.body);
  if (!obj) {
    receipt.status = malformed(answer.status, "not a JSON object");
    return receipt;
  }
  const auto* sid = string_field(*obj, "sid");
  const auto* state = string_field(*obj, "status");
  if (sid == nullptr || sid->empty()) {
    receipt.status = malformed(answer.status, "missing \"sid\"");
    return receipt;
  }
  if (state == nullptr) {
    receipt.status = malformed(answer.status, "missing \"status\"");
    return receipt;
  }
  receipt.message_sid = std::string{*sid};
  receipt.carrier_state = std::string{*state};
  return receipt;
}

call_answer parse_call_answer(const rest_answer& answer) {
  call_answer result;
  result.status = parse_status(answer);
  if (!result.status.ok) {
    return result;
  }
  const auto obj = parse_object(answer.body);
  if (!obj) {
    result.status = malformed(answer.status, "not a JSON object");
    return result;
  }
  if (auto error = read_call(*obj, result.call); !error.empty()) {
    result.status = malformed(answer.status, error);
  }
  return result;
}

call_page parse_call_page(const rest_answer& answer) {
  call_page page;
  page.status = parse_status(answer);
  if (!page.status.ok) {
    return page;
  }
  const auto obj = parse_object(answer.body);
  if (!obj) {
    page.status = malformed(answer.status, "not a JSON object");
    return page;
  }
  const auto* calls_value = obj->if_contains("calls");
  const auto* calls = calls_value != nullptr ? calls_value->if_array()
                                             : nullptr;
  if (calls == nullptr) {
    page.status = malformed(answer.status, "missing \"calls\"");
    return page;
  }
  for (std::size_t i = 0; i < calls->size(); ++i) {
    const auto* call = (*calls)[i].if_object();
    auto& leg = page.calls.emplace_back();
    auto error = call == nullptr ? std::string{"not an object"}
                                 : read_call(*call, leg);
    if (!error.empty()) {
      page.calls.clear();
      page.status = malformed(answer.status,
                              "calls[" + std::to_string(i) + "]: " + error);
      return page;
    }
  }
  if (const auto* next = string_field(*obj, "next_page_uri")) {
    page.next_page_uri = std::string{*next};
  }
  return page;
}

std::optional<engine::epoch_ms> parse_rfc2822(std::string_view text) {
  std::tm tm{};
  std::string copy{text};
  const char* end = strptime(copy.c_str(), "%a, %d %b %Y %H:%M:%S %z", &tm);
  if (end == nullptr || *end != '\0') {
    return std::nullopt;
  }
  const long offset = tm.tm_gmtoff; // strptime stores %z here
  const auto secs = timegm(&tm);
  if (secs == static_cast<std::time_t>(-1)) {
    return std::nullopt;
  }
  return (static_cast<engine::epoch_ms>(secs) - offset) * 1000;
}

message_page parse_message_page(const rest_answer& answer) {
  message_page page;
  page.status = parse_status(answer);
  if (!page.status.ok) {
    return page;
  }
  const auto obj = parse_object(answer.body);
  if (!obj) {
    page.status = malformed(answer.status, "not a JSON object");
    return page;
  }
  const auto* list_value = obj->if_contains("messages");
  const auto* list = list_value != nullptr ? list_value->if_array() : nullptr;
  if (list == nullptr) {
    page.status = malformed(answer.status, "missing \"messages\"");
    return page;
  }
  for (const auto& item : *list) {
    const auto* m = item.if_object();
    if (m == nullptr) {
      continue;
    }
    listed_message out;
    auto text = [&](const char* name, std::string& into) {
      if (const auto* v = string_field(*m, name)) {
        into = std::string{*v};
      }
    };
    text("sid", out.sid);
    text("from", out.from);
    text("to", out.to);
    text("body", out.body);
    std::string created;
    text("date_created", created);
    out.date_created = parse_rfc2822(created).value_or(0);
    if (!out.sid.empty()) {
      page.messages.push_back(std::move(out));
    }
  }
  if (const auto* next = string_field(*obj, "next_page_uri")) {
    page.next_page_uri = std::string{*next};
  }
  return page;
}

} // namespace ringback::adapters::twilio
