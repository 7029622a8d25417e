#include "ringback/engine/ingress.hpp"

namespace ringback::engine {

voice_answer voice_answer::dial(std::vector<std::string> numbers,
                                std::chrono::seconds timeout,
                                std::string action_url, std::string caller_id) {
  voice_verb v;
  v.what = voice_verb::kind::dial;
  v.numbers = std::move(numbers);
  v.timeout = timeout;
  v.action_url = std::move(action_url);
  v.caller_id = std::move(caller_id);
  return voice_answer{{std::move(v)}};
}

voice_answer voice_answer::hangup() {
  voice_verb v;
  v.what = voice_verb::kind::hangup;
  return voice_answer{{std::move(v)}};
}

voice_answer voice_answer::reject() {
  voice_verb v;
  v.what = voice_verb::kind::reject;
  return voice_answer{{std::move(v)}};
}

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
    case inbound_event::kind::recording:
      return "recording";
    case inbound_event::kind::transcription:
      return "transcription";
    case inbound_event::kind::sms_status:
      return "sms-status";
  }
  return "unknown";
}

} // namespace ringback::engine
