// Forward-only delivery states, Twilio's MessageStatus, carrier error codes.

#include "ringback/engine/messaging.hpp"

#include <algorithm>
#include <array>

namespace ringback::engine {

namespace {

int rank(message_state x) {
  switch (x) {
    case message_state::queued:
      return 0;
    case message_state::sending:
      return 1;
    case message_state::sent:
      return 2;
    case message_state::delivered:
    case message_state::undelivered:
    case message_state::failed:
    case message_state::refused:
      return 3;
    case message_state::held:
      return -1; // never moved by a delivery report
  }
  return 3;
}

struct status_entry {
  std::string_view twilio;
  message_state state;
};

constexpr std::array<status_entry, 10> twilio_statuses{{
  {"accepted", message_state::sent},
  {"scheduled", message_state::sent},
  {"queued", message_state::sent},
  {"sending", message_state::sent},
  {"sent", message_state::sent},
  {"delivered", message_state::delivered},
  {"read", message_state::delivered},
  {"undelivered", message_state::undelivered},
  {"failed", message_state::failed},
  {"canceled", message_state::failed},
}};

// Sorted by code (find_carrier_error searches it). Descriptions in our own
// words, from Twilio's error dictionary.
constexpr std::array<carrier_error_info, 30> carrier_errors{{
  {20003, true, false,
   "authentication failed: the account SID or auth token is wrong"},
  {20429, false, false, "too many concurrent requests to the API"},
  {21211, true, false, "the 'To' number is not a valid phone number"},
  {21212, true, false, "the 'From' number is not a valid phone number"},
  {21266, true, false, "'To' and 'From' are the same number"},
  {21408, true, false,
   "the account may not send SMS to the region of the 'To' number (geographic "
   "permissions)"},
  {21602, true, false, "the message has no body"},
  {21606, true, false,
   "the 'From' number cannot send SMS (not an SMS-capable number of this "
   "account)"},
  {21608, true, false,
   "trial account: the 'To' number is not a verified recipient"},
  {21610, true, true,
   "recipient unsubscribed: they texted STOP to this sender and must text "
   "START to receive texts again"},
  {21611, false, false,
   "the 'From' number has too many messages queued at the carrier"},
  {21612, true, false,
   "the 'To' number cannot be reached from this 'From' number (unsupported "
   "sender, network or destination)"},
  {21614, true, false,
   "the 'To' number is not a mobile number and cannot receive SMS"},
  {21617, true, false, "the message body is too long (over 1600 characters)"},
  {21635, true, false, "the 'To' number is a landline"},
  {30001, false, false, "the carrier's message queue overflowed; try later"},
  {30002, true, false, "the account is suspended"},
  {30003, true, false,
   "unreachable handset (off, out of coverage or cannot take SMS); not sent "
   "again automatically"},
  {30004, true, false, "blocked by the recipient or their carrier"},
  {30005, true, false,
   "unknown destination: the number does not exist or is no longer in "
   "service"},
  {30006, true, false, "landline, or a carrier this sender cannot reach"},
  {30007, true, false, "filtered by the carrier as spam or against its rules"},
  {30008, true, false,
   "unknown delivery error; not sent again automatically (it might be "
   "delivered twice)"},
  {30010, true, false, "the message price exceeds the maximum price set"},
  {30022, false, false,
   "US A2P 10DLC throughput of the brand or campaign exceeded"},
  {30023, false, false, "US A2P 10DLC daily message cap reached"},
  {30024, true, false, "sender ID not provisioned with the carrier"},
  {30032, true, false, "toll-free number not verified for messaging"},
  {30034, true, false,
   "US A2P 10DLC: the sending number is not registered to a campaign"},
  {30500, false, false, "internal error at the carrier; try again"},
}};

} // namespace

bool advances(message_state from, message_state to) {
  return rank(from) < 3 && rank(to) > rank(from);
}

std::optional<message_state>
message_state_from_twilio(std::string_view status) {
  auto blank = [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
  };
  while (!status.empty() && blank(status.front())) {
    status.remove_prefix(1);
  }
  while (!status.empty() && blank(status.back())) {
    status.remove_suffix(1);
  }
  if (status.size() > 16) {
    return std::nullopt;
  }
  std::string lower;
  for (char c : status) {
    lower += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  for (const auto& s : twilio_statuses) {
    if (s.twilio == lower) {
      return s.state;
    }
  }
  return std::nullopt;
}

const carrier_error_info* find_carrier_error(int code) {
  auto it = std::lower_bound(carrier_errors.begin(), carrier_errors.end(), code,
                             [](const carrier_error_info& e, int c) {
                               return e.code < c;
                             });
  if (it == carrier_errors.end() || it->code != code) {
    return nullptr;
  }
  return &*it;
}

bool is_permanent(int error_code) {
  auto* e = find_carrier_error(error_code);
  return e != nullptr && e->permanent;
}

bool means_opted_out(int error_code) {
  auto* e = find_carrier_error(error_code);
  return e != nullptr && e->opted_out;
}

std::string describe_carrier_error(int code) {
  auto text = std::to_string(code);
  if (auto* e = find_carrier_error(code)) {
    return text + " (" + e->summary + ")";
  }
  return "error " + text;
}

} // namespace ringback::engine
