#include "ringback/engine/records.hpp"

#include "ringback/engine/ports.hpp"

#include <array>
#include <chrono>

namespace ringback::engine {

namespace {

template <class Enum, std::size_t N>
std::optional<Enum> parse_enum(std::string_view x,
                               const std::array<const char*, N>& names) {
  for (std::size_t i = 0; i < N; ++i)
    if (x == names[i])
      return static_cast<Enum>(i);
  return std::nullopt;
}

constexpr std::array<const char*, 3> number_kind_names{"long_code", "toll_free",
                                                       "short_code"};
constexpr std::array<const char*, 3> call_phase_names{"ringing", "answered",
                                                      "missed"};
constexpr std::array<const char*, 4> decided_by_names{"none", "dial_result",
                                                      "fallback", "status"};
constexpr std::array<const char*, 8> message_state_names{
  "queued", "sending",     "sent",   "delivered",
  "undelivered", "failed", "held", "refused"};
constexpr std::array<const char*, 2> message_channel_names{"sms", "call"};
constexpr std::array<const char*, 4> run_status_names{"running", "waiting",
                                                      "finished", "failed"};
constexpr std::array<const char*, 4> conversation_state_names{
  "owner_window", "owner_active", "ai_active", "closed"};
constexpr std::array<const char*, 3> window_outcome_names{"none", "owner",
                                                          "ai"};

} // namespace

const char* to_string(number_kind x) {
  return number_kind_names[static_cast<std::size_t>(x)];
}

std::optional<number_kind> parse_number_kind(std::string_view x) {
  return parse_enum<number_kind>(x, number_kind_names);
}

const char* to_string(call_phase x) {
  return call_phase_names[static_cast<std::size_t>(x)];
}

std::optional<call_phase> parse_call_phase(std::string_view x) {
  return parse_enum<call_phase>(x, call_phase_names);
}

const char* to_string(decided_by x) {
  return decided_by_names[static_cast<std::size_t>(x)];
}

std::optional<decided_by> parse_decided_by(std::string_view x) {
  return parse_enum<decided_by>(x, decided_by_names);
}

const char* to_string(message_state x) {
  return message_state_names[static_cast<std::size_t>(x)];
}

std::optional<message_state> parse_message_state(std::string_view x) {
  return parse_enum<message_state>(x, message_state_names);
}

const char* to_string(message_channel x) {
  return message_channel_names[static_cast<std::size_t>(x)];
}

std::optional<message_channel> parse_message_channel(std::string_view x) {
  return parse_enum<message_channel>(x, message_channel_names);
}

const char* to_string(run_status x) {
  return run_status_names[static_cast<std::size_t>(x)];
}

std::optional<run_status> parse_run_status(std::string_view x) {
  return parse_enum<run_status>(x, run_status_names);
}

const char* to_string(conversation_state x) {
  return conversation_state_names[static_cast<std::size_t>(x)];
}

std::optional<conversation_state> parse_conversation_state(std::string_view x) {
  return parse_enum<conversation_state>(x, conversation_state_names);
}

const char* to_string(window_outcome x) {
  return window_outcome_names[static_cast<std::size_t>(x)];
}

std::optional<window_outcome> parse_window_outcome(std::string_view x) {
  return parse_enum<window_outcome>(x, window_outcome_names);
}

epoch_ms system_clock::now() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

} // namespace ringback::engine
