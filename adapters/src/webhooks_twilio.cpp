#include "ringback/adapters/webhooks/twilio_webhooks.hpp"

#include "ringback/adapters/twilio/form.hpp"
#include "ringback/adapters/twilio/signature.hpp"
#include "ringback/adapters/twilio/twiml.hpp"
#include "ringback/engine/log.hpp"

#include <charconv>
#include <utility>

namespace ringback::adapters {

namespace {

using engine::inbound_event;
namespace tw = twilio;

constexpr std::string_view prefix = "/webhooks/twilio/";

http_response xml(std::string body) {
  http_response r;
  r.status = 200;
  r.content_type = "text/xml; charset=utf-8";
  r.body = std::move(body);
  return r;
}

http_response empty_twiml() {
  return xml(tw::twiml_response{}.str());
}

/// Answers the voice webhook from whichever thread the actor runs on.
class slot_voice_reply final : public engine::voice_reply {
public:
  explicit slot_voice_reply(std::shared_ptr<reply_slot> slot)
    : slot_(std::move(slot)) {
    // nop
  }

  void answer(const engine::voice_answer& a) override {
    slot_->reply(xml(render_twiml(a)));
  }

private:
  std::shared_ptr<reply_slot> slot_;
};

std::optional<inbound_event::kind> kind_of(std::string_view path) {
  if (path.substr(0, prefix.size()) != prefix)
    return std::nullopt;
  auto rest = path.substr(prefix.size());
  if (rest == "voice")
    return inbound_event::kind::call_incoming;
  if (rest == "voice/dial-result")
    return inbound_event::kind::dial_result;
  if (rest == "voice/status")
    return inbound_event::kind::call_status;
  if (rest == "sms")
    return inbound_event::kind::sms;
  return std::nullopt;
}

std::int32_t to_int(std::string_view text) {
  std::int32_t out = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && ptr == text.data() + text.size() && out >= 0 ? out
                                                                           : 0;
}

std::string field(const tw::form_fields& form, std::string_view name) {
  auto v = tw::find_field(form, name);
  return v ? std::string{*v} : std::string{};
}

} // namespace

std::string render_twiml(const engine::voice_answer& a) {
  tw::twiml_response r;
  switch (a.what) {
    case engine::voice_answer::kind::dial: {
      tw::dial_verb d;
      d.timeout = a.timeout;
      d.action = a.action_url;
      if (!a.caller_id.empty())
        d.caller_id = a.caller_id;
      d.numbers = a.numbers;
      r.dial(d);
      break;
    }
    case engine::voice_answer::kind::hangup:
      r.hangup();
      break;
    case engine::voice_answer::kind::reject:
      r.reject();
      break;
    case engine::voice_answer::kind::empty:
      break;
  }
  return r.str();
}

twilio_webhooks::twilio_webhooks(options opts,
                                 const std::vector<engine::tenant>& tenants,
                                 engine::event_sink& sink,
                                 const engine::clock& clock)
  : opts_(std::move(opts)), sink_(sink), clock_(clock) {
  for (const auto& t : tenants)
    for (const auto& n : t.numbers)
      by_number_.emplace(n.number, t);
}

bool twilio_webhooks::owns(std::string_view path) {
  return kind_of(path).has_value();
}

std::string twilio_webhooks::default_answer(const engine::tenant& t) const {
  engine::voice_answer a;
  a.what = engine::voice_answer::kind::dial;
  a.numbers = {t.owner_phone};
  a.timeout = opts_.ring_timeout;
  a.action_url = opts_.public_url + "/webhooks/twilio/voice/dial-result";
  return render_twiml(a);
}

void twilio_webhooks::handle(const http_request& req,
                             std::shared_ptr<reply_slot> slot) {
  auto what = kind_of(req.path);
  if (!what) {
    slot->reply(http_response::text(404, "not found\n"));
    return;
  }
  if (req.method != "POST") {
    auto r = http_response::text(405, "method not allowed: use POST\n");
    r.headers.push_back({"Allow", "POST"});
    slot->reply(std::move(r));
    return;
  }
  auto signature = req.header("X-Twilio-Signature");
  if (!signature || signature->empty()) {
    engine::log_warn("webhooks", req.path + " from " + req.remote_address
                                   + ": missing X-Twilio-Signature");
    slot->reply(http_response::text(403, "missing X-Twilio-Signature\n"));
    return;
  }
  auto url = opts_.public_url + req.target;
  auto form = tw::decode_form(req.body);
  if (req.query.find("bodySHA256=") != std::string::npos) {
    // Twilio's JSON-body variant: signed over the URL, body pinned by hash.
    if (!tw::validate_json(opts_.auth_token, url, req.body, *signature)) {
      slot->reply(http_response::text(403, "invalid X-Twilio-Signature\n"));
      return;
    }
    slot->reply(http_response::text(
      415, "JSON bodies are not accepted here: send form-encoded parameters\n"));
    return;
  }
  if (!form.ok()) {
    slot->reply(http_response::text(
      400, "malformed form body: " + tw::to_string(*form.error) + "\n"));
    return;
  }
  if (!tw::validate(opts_.auth_token, url, form.fields, *signature)) {
    engine::log_warn("webhooks", req.path + " from " + req.remote_address
                                   + ": invalid X-Twilio-Signature");
    slot->reply(http_response::text(403, "invalid X-Twilio-Signature\n"));
    return;
  }
  inbound_event ev;
  ev.what = *what;
  const bool sms = *what == inbound_event::kind::sms;
  const char* sid_name = sms ? "MessageSid" : "CallSid";
  ev.sid = field(form.fields, sid_name);
  ev.from = field(form.fields, "From");
  ev.to = field(form.fields, "To");
  for (auto [name, value] : {std::pair{sid_name, &ev.sid},
                             std::pair{"To", &ev.to}}) {
    if (value->empty()) {
      slot->reply(http_response::text(
        400, std::string{"missing form field '"} + name + "'\n"));
      return;
    }
  }
  switch (*what) {
    case inbound_event::kind::dial_result:
      ev.status = field(form.fields, "DialCallStatus");
      ev.duration = to_int(field(form.fields, "DialCallDuration"));
      break;
    case inbound_event::kind::call_status:
      ev.status = field(form.fields, "CallStatus");
      ev.duration = to_int(field(form.fields, "CallDuration"));
      break;
    case inbound_event::kind::sms:
      ev.body = field(form.fields, "Body");
      break;
    case inbound_event::kind::call_incoming:
      ev.status = field(form.fields, "CallStatus");
      break;
  }
  ev.raw.kind = engine::to_string(*what);
  ev.raw.call_sid = ev.sid;
  ev.raw.path = req.target;
  ev.raw.body = req.body;
  ev.raw.signature = std::string{*signature};
  ev.raw.received_at = clock_.now();
  auto tenant = by_number_.find(ev.to);
  if (tenant == by_number_.end()) {
    engine::log_warn("webhooks", std::string{ev.raw.kind} + " " + ev.sid
                                   + " for unknown number " + ev.to
                                   + ": rejected");
    sink_.record_unrouted(std::move(ev.raw));
    if (*what == inbound_event::kind::call_incoming)
      slot->reply(xml(tw::twiml_response{}.reject().str()));
    else
      slot->reply(empty_twiml());
    return;
  }
  ev.raw.tenant_id = tenant->second.id;
  switch (*what) {
    case inbound_event::kind::call_incoming: {
      // Answer in time whatever happens: the actor normally answers first.
      slot->set_deadline(opts_.answer_deadline,
                         xml(default_answer(tenant->second)));
      auto reply = std::make_shared<slot_voice_reply>(slot);
      sink_.deliver(tenant->second.id, std::move(ev), std::move(reply));
      return;
    }
    case inbound_event::kind::dial_result:
      // The caller is still on the line: end the call politely. What to play
      // here becomes a workflow decision.
      slot->reply(xml(tw::twiml_response{}.hangup().str()));
      break;
    case inbound_event::kind::call_status:
    case inbound_event::kind::sms:
      slot->reply(empty_twiml());
      break;
  }
  sink_.deliver(tenant->second.id, std::move(ev), nullptr);
}

} // namespace ringback::adapters
