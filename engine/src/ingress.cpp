#include "ringback/engine/ingress.hpp"

namespace ringback::engine {

const char* to_string(inbound_event::kind x) {
  switch (x) {
    case inbound_event::kind::call_incoming:
      return "voice";
    case inbound_event::kind::dial_result:
      return "dial-result";
    case inbound_event::kind::call_status:
      return "status";
    case inbound_event::kind::sms:
      return "sms";
  }
  return "unknown";
}

} // namespace ringback::engine
