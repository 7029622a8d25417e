// The pre-send gate and its guards.

#include "ringback/engine/messaging.hpp"

#include <algorithm>
#include <array>
#include <cstdio>

namespace ringback::engine {

namespace {

bool all_digits(std::string_view x) {
  return std::all_of(x.begin(), x.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

/// The recipient as written, for a message about it: printable ASCII kept,
/// other bytes as \xNN, at most 32 bytes.
std::string quoted(std::string_view x) {
  constexpr std::size_t max = 32;
  std::string out = "\"";
  for (std::size_t i = 0; i < x.size() && i < max; ++i) {
    auto c = static_cast<unsigned char>(x[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else {
      std::array<char, 5> buf{};
      std::snprintf(buf.data(), buf.size(), "\\x%02X", c);
      out += buf.data();
    }
  }
  if (x.size() > max) {
    out += "...";
  }
  out += '"';
  return out;
}

gate_decision refuse(gate_reason reason, std::string message) {
  gate_decision d;
  d.what = gate_decision::verdict::refuse;
  d.reason = reason;
  d.message = std::move(message);
  return d;
}

bool on(std::chrono::milliseconds window) {
  return window.count() > 0;
}

} // namespace

bool is_e164(std::string_view x) {
  return x.size() >= 9 && x.size() <= 16 && x[0] == '+' && x[1] != '0'
         && all_digits(x.substr(1));
}

bool is_short_code(std::string_view x) {
  return (x.size() == 5 || x.size() == 6) && all_digits(x);
}

std::string format_duration(std::chrono::milliseconds d) {
  struct unit {
    std::int64_t size;
    const char* name;
  };
  constexpr std::array<unit, 4> units{
    {{3'600'000, "h"}, {60'000, "min"}, {1'000, "s"}, {1, "ms"}}};
  auto ms = std::max<std::int64_t>(0, d.count());
  if (ms == 0) {
    return "0 s";
  }
  std::string out;
  for (std::size_t i = 0; i < units.size(); ++i) {
    auto n = ms / units[i].size;
    if (n == 0) {
      continue;
    }
    out = std::to_string(n) + ' ' + units[i].name;
    if (i + 1 < units.size()) {
      auto rest = (ms % units[i].size) / units[i + 1].size;
      if (rest > 0) {
        out += ' ' + std::to_string(rest) + ' ' + units[i + 1].name;
      }
    }
    break;
  }
  return out;
}

gate_decision decide(const outbound_candidate& candidate,
                     const gate_facts& facts, const gate_settings& settings,
                     epoch_ms now) {
  using std::chrono::milliseconds;
  const auto& to = candidate.to;
  // 1. Only a customer's phone: never a service, a malformed value, or a
  //    number of this deployment (two ringbacks texting each other is the
  //    fastest loop there is).
  if (is_short_code(to)) {
    return refuse(gate_reason::short_code,
                  "recipient " + to
                    + " is a short code, not a customer's phone");
  }
  if (!is_e164(to)) {
    return refuse(gate_reason::invalid_recipient,
                  "recipient " + quoted(to)
                    + " is not a phone number in E.164 form");
  }
  if (facts.own_number) {
    return refuse(gate_reason::own_number,
                  "recipient is one of this tenant's own numbers");
  }
  if (facts.other_tenant_number) {
    return refuse(gate_reason::other_tenant,
                  "recipient is a number of another tenant");
  }
  // 2. Opt-outs; the answer to the STOP itself may still go out.
  if (facts.opted_out && candidate.kind != send_kind::compliance) {
    return refuse(gate_reason::opted_out,
                  "recipient opted out of this tenant's texts (texting START "
                  "opts back in)");
  }
  // 3. Bot loops: people (relayed replies, the owner) are not bots.
  if (candidate.kind != send_kind::relayed
      && candidate.kind != send_kind::notification && settings.loop_limit > 0
      && on(settings.loop_window)
      && facts.exchanged_in_loop_window >= settings.loop_limit) {
    return refuse(gate_reason::loop_suspected,
                  std::to_string(facts.exchanged_in_loop_window)
                    + " messages exchanged with the recipient in the last "
                    + format_duration(settings.loop_window) + " (limit "
                    + std::to_string(settings.loop_limit)
                    + "): looks like two automated senders answering each "
                      "other");
  }
  bool text_back = candidate.kind == send_kind::text_back;
  if (!text_back && candidate.kind != send_kind::automated) {
    return {};
  }
  // 4. Callers.
  if (text_back && settings.caller_rate_limit > 0
      && on(settings.caller_rate_window)
      && facts.calls_in_rate_window > settings.caller_rate_limit) {
    return refuse(
      gate_reason::caller_rate,
      "the caller called " + std::to_string(facts.calls_in_rate_window)
        + " times in the last " + format_duration(settings.caller_rate_window)
        + " (limit " + std::to_string(settings.caller_rate_limit) + ")");
  }
  if (text_back && on(settings.repeat_caller_window)
      && facts.last_text_back_at) {
    // A time ahead of `now` (another process's clock) counts as just now.
    auto age = std::max<epoch_ms>(0, now - *facts.last_text_back_at);
    if (age < settings.repeat_caller_window.count()) {
      return refuse(gate_reason::repeat_caller,
                    "the caller already got a missed-call text-back "
                      + (age < 1'000
                           ? std::string{"just now"}
                           : format_duration(milliseconds{age}) + " ago")
                      + " (at most one per "
                      + format_duration(settings.repeat_caller_window) + ")");
    }
  }
  // 5. Automation.
  if (settings.automated_per_hour > 0
      && facts.automated_last_hour >= settings.automated_per_hour) {
    return refuse(gate_reason::automated_cap,
                  std::to_string(facts.automated_last_hour)
                    + " automated messages to the recipient in the last hour "
                      "(limit "
                    + std::to_string(settings.automated_per_hour) + ")");
  }
  if (!candidate.urgent && facts.quiet_hours_end
      && *facts.quiet_hours_end > now) {
    gate_decision d;
    d.what = gate_decision::verdict::hold;
    d.hold_until = *facts.quiet_hours_end;
    d.reason = gate_reason::quiet_hours;
    d.message = "quiet hours: not urgent, held for "
                + format_duration(milliseconds{*facts.quiet_hours_end - now})
                + " until they end";
    return d;
  }
  return {};
}

} // namespace ringback::engine
