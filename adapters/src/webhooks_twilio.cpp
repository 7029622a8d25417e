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
  if (rest == "voice/recording")
    return inbound_event::kind::recording;
  if (rest == "voice/transcription")
    return inbound_event::kind::transcription;
  if (rest == "sms")
    return inbound_event::kind::sms;
  if (rest == "sms/status")
    return inbound_event::kind::sms_status;
  return std::nullopt;
}

std::int32_t to_int(std::string_view text) {
  std::int32_t out = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && ptr == text.data() + text.size() && out >= 0 ? out
                                                                           : 0;
}

/// The decoded value of `name` in a query string, or "".
std::string query_param(std::string_view query, std::string_view name) {
  auto form = tw::decode_form(query);
  if (!form.ok())
    return {};
  auto v = tw::find_field(form.fields, name);
  return v ? std::string{*v} : std::string{};
}

std::string field(const tw::form_fields& form, std::string_view name) {
  auto v = tw::find_field(form, name);
  return v ? std::string{*v} : std::string{};
}

} // namespace

std::string render_twiml(const engine::voice_answer& a) {
  using vk = engine::voice_verb::kind;
  tw::twiml_response r;
  for (const auto& v : a.verbs) {
    switch (v.what) {
      case vk::say: {
        tw::say_verb s;
        s.text = v.text;
        s.voice = v.voice;
        s.language = v.language;
        s.loop = v.loop;
        r.say(s);
        break;
      }
      case vk::play:
        r.play(v.text, v.loop);
        break;
      case vk::pause:
        r.pause(v.length);
        break;
      case vk::dial: {
        tw::dial_verb d;
        d.timeout = v.timeout;
        d.action = v.action_url;
        if (!v.caller_id.empty())
          d.caller_id = v.caller_id;
        d.numbers = v.numbers;
        r.dial(d);
        break;
      }
      case vk::record: {
        tw::record_verb rec;
        rec.action = v.action_url;
        rec.max_length = v.max_length;
        rec.timeout = v.timeout;
        rec.play_beep = v.play_beep;
        rec.transcribe_callback = v.transcribe_callback;
        r.record(rec);
        break;
      }
      case vk::hangup:
        r.hangup();
        break;
      case vk::reject:
        r.reject(v.reason == "busy" ? tw::reject_reason::busy
                                    : tw::reject_reason::rejected);
        break;
    }
  }
  return r.str();
}

twilio_webhooks::twilio_webhooks(options opts,
                                 const std::vector<engine::tenant>& tenants,
                                 engine::event_sink& sink,
                                 const engine::clock& clock)
  : opts_(std::move(opts)),
    hangup_(tw::twiml_response{}.hangup().str()),
    sink_(sink),
    clock_(clock) {
  for (const auto& t : tenants)
    for (const auto& n : t.numbers)
      by_number_.emplace(n.number, route{t, default_answer(t)});
}

bool twilio_webhooks::owns(std::string_view path) {
  return kind_of(path).has_value();
}

std::string twilio_webhooks::default_answer(const engine::tenant& t) const {
  return render_twiml(engine::voice_answer::dial(
    {t.owner_phone}, opts_.ring_timeout,
    opts_.public_url + "/webhooks/twilio/voice/dial-result"));
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
  const bool sms = *what == inbound_event::kind::sms
                   || *what == inbound_event::kind::sms_status;
  // A status callback is about a message the business number sent: it is
  // routed by `From`; everything else by the number that was called/texted.
  const bool by_from = *what == inbound_event::kind::sms_status;
  const char* sid_name = sms ? "MessageSid" : "CallSid";
  ev.sid = field(form.fields, sid_name);
  ev.from = field(form.fields, "From");
  ev.to = field(form.fields, "To");
  for (auto [name, value] :
       {std::pair{sid_name, &ev.sid},
        by_from ? std::pair{"From", &ev.from} : std::pair{"To", &ev.to}}) {
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
    case inbound_event::kind::recording:
      ev.url = field(form.fields, "RecordingUrl");
      ev.duration = to_int(field(form.fields, "RecordingDuration"));
      ev.status = field(form.fields, "RecordingStatus");
      ev.run = query_param(req.query, "run");
      ev.step = query_param(req.query, "step");
      break;
    case inbound_event::kind::transcription:
      ev.body = field(form.fields, "TranscriptionText");
      ev.status = field(form.fields, "TranscriptionStatus");
      ev.url = field(form.fields, "RecordingUrl");
      ev.run = query_param(req.query, "run");
      ev.step = query_param(req.query, "step");
      break;
    case inbound_event::kind::call_incoming:
      ev.status = field(form.fields, "CallStatus");
      break;
    case inbound_event::kind::sms_status:
      ev.status = field(form.fields, "MessageStatus");
      if (ev.status.empty())
        ev.status = field(form.fields, "SmsStatus");
      ev.error_code = to_int(field(form.fields, "ErrorCode"));
      ev.body = field(form.fields, "ErrorMessage");
      break;
  }
  ev.raw.kind = engine::to_string(*what);
  ev.raw.call_sid = ev.sid;
  ev.raw.path = req.target;
  ev.raw.body = req.body;
  ev.raw.signature = std::string{*signature};
  ev.raw.received_at = clock_.now();
  auto routed = by_number_.find(by_from ? ev.from : ev.to);
  if (routed == by_number_.end()) {
    engine::log_warn("webhooks", std::string{ev.raw.kind} + " " + ev.sid
                                   + " for unknown number " + ev.to
                                   + ": rejected");
    sink_.record_unrouted(std::move(ev.raw));
    if (*what == inbound_event::kind::call_incoming)
      slot->reply(xml(tw::twiml_response{}.reject().str()));
    else if (by_from)
      slot->reply(http_response::text(204, ""));
    else
      slot->reply(empty_twiml());
    return;
  }
  const auto& [tenant, late_answer] = routed->second;
  ev.raw.tenant_id = tenant.id;
  // The handler answers later, through the sink; `late` goes out if it
  // has not by the deadline.
  auto answered_later = [&](http_response late) {
    slot->set_deadline(opts_.answer_deadline, std::move(late));
    sink_.deliver(tenant.id, std::move(ev),
                  std::make_shared<slot_voice_reply>(slot));
  };
  switch (*what) {
    case inbound_event::kind::call_incoming:
      // Answer in time whatever happens: the actor normally answers first.
      answered_later(xml(late_answer));
      return;
    case inbound_event::kind::dial_result:
    case inbound_event::kind::recording:
      // The caller may still be on the line: the run that asked says what
      // comes next; if it cannot say in time, end the call politely.
      answered_later(xml(hangup_));
      return;
    case inbound_event::kind::sms:
      // Answered (empty TwiML) by the event sink once the message's row is
      // stored, never before: a 200 must not stand for a text that a crash
      // could lose unwritten. A store slower than the deadline gets a 503,
      // which Twilio retries where the webhook URL asks it to (connection
      // overrides); the stored row makes any retry a duplicate.
      answered_later(http_response::text(503, "not stored in time\n"));
      return;
    case inbound_event::kind::call_status:
    case inbound_event::kind::transcription:
      slot->reply(empty_twiml());
      break;
    case inbound_event::kind::sms_status:
      slot->reply(http_response::text(204, ""));
      break;
  }
  sink_.deliver(tenant.id, std::move(ev), nullptr);
}

} // namespace ringback::adapters
