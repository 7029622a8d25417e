#pragma once

#include "ringback/adapters/http/http_message.hpp"
#include "ringback/adapters/http/reply_slot.hpp"
#include "ringback/engine/ingress.hpp"
#include "ringback/engine/ports.hpp"
#include "ringback/engine/records.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace ringback::adapters {

/// Renders a carrier-neutral voice answer as TwiML.
std::string render_twiml(const engine::voice_answer& a);

/// Twilio's webhooks, turned into engine events:
/// - `POST /webhooks/twilio/voice`: an incoming call, answered with TwiML by
///   the call's actor, or with the safe default (a Dial to the owner) when the
///   actor is later than `answer_deadline`;
/// - `POST /webhooks/twilio/voice/dial-result`: the Dial action callback;
/// - `POST /webhooks/twilio/voice/status`: call status callbacks;
/// - `POST /webhooks/twilio/sms`: inbound messages;
/// - `POST /webhooks/twilio/sms/status`: delivery reports of outbound
///   messages (status callbacks), routed by `From` (the business number that
///   sent), answered 204.
/// Every request must carry a valid `X-Twilio-Signature` computed over
/// `public_url` + the request target (403 otherwise, and nothing changes).
/// Calls are routed to a tenant by the `To` number; an unknown number gets a
/// polite `<Reject/>`, never a 5xx. Runs on HTTP threads; never blocks.
class twilio_webhooks {
public:
  struct options {
    std::string public_url; // no trailing slash
    std::string auth_token;
    std::chrono::milliseconds answer_deadline{2'000};
    std::chrono::seconds ring_timeout{20};
  };

  twilio_webhooks(options opts, const std::vector<engine::tenant>& tenants,
                  engine::event_sink& sink, const engine::clock& clock);

  /// True if `path` is one of the webhook paths handled here.
  static bool owns(std::string_view path);

  /// Handles a request whose path `owns`; always replies through `slot`.
  void handle(const http_request& req, std::shared_ptr<reply_slot> slot);

  /// The answer sent when the call's actor is late.
  std::string default_answer(const engine::tenant& t) const;

private:
  /// A business number's tenant and the late answers sent on its calls,
  /// rendered once (every incoming call and Dial callback arms one).
  struct route {
    engine::tenant tenant;
    std::string default_answer;
  };

  options opts_;
  std::unordered_map<std::string, route> by_number_;
  std::string hangup_; // the late answer to a Dial callback or a recording
  engine::event_sink& sink_;
  const engine::clock& clock_;
};

} // namespace ringback::adapters
