// The stable names of the messaging enums (metrics labels, audit rows, store
// columns).

#include "ringback/engine/messaging.hpp"

#include <array>

namespace ringback::engine {

namespace {

constexpr std::array<const char*, 4> keyword_kind_names{"none", "opt_out",
                                                        "opt_in", "help"};
constexpr std::array<const char*, 3> opt_out_source_names{"none", "keyword",
                                                          "carrier"};
constexpr std::array<const char*, 5> send_kind_names{
  "text_back", "automated", "relayed", "compliance", "notification"};
constexpr std::array<const char*, 11> gate_reason_names{
  "none",        "quiet_hours",   "invalid_recipient", "short_code",
  "own_number",  "other_tenant",  "opted_out",         "loop_suspected",
  "caller_rate", "repeat_caller", "automated_cap"};

template <class Enum, std::size_t N>
const char* name_of(Enum x, const std::array<const char*, N>& names) {
  return names[static_cast<std::size_t>(x)];
}

template <class Enum, std::size_t N>
std::optional<Enum>
parse_name(std::string_view x, const std::array<const char*, N>& names) {
  for (std::size_t i = 0; i < N; ++i) {
    if (x == names[i]) {
      return static_cast<Enum>(i);
    }
  }
  return std::nullopt;
}

} // namespace

const char* to_string(keyword_kind x) {
  return name_of(x, keyword_kind_names);
}

std::optional<keyword_kind> parse_keyword_kind(std::string_view x) {
  return parse_name<keyword_kind>(x, keyword_kind_names);
}

const char* to_string(opt_out_source x) {
  return name_of(x, opt_out_source_names);
}

std::optional<opt_out_source> parse_opt_out_source(std::string_view x) {
  return parse_name<opt_out_source>(x, opt_out_source_names);
}

const char* to_string(send_kind x) {
  return name_of(x, send_kind_names);
}

std::optional<send_kind> parse_send_kind(std::string_view x) {
  return parse_name<send_kind>(x, send_kind_names);
}

const char* to_string(gate_reason x) {
  return name_of(x, gate_reason_names);
}

std::optional<gate_reason> parse_gate_reason(std::string_view x) {
  return parse_name<gate_reason>(x, gate_reason_names);
}

} // namespace ringback::engine
