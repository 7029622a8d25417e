// The messaging steps: texts go to the outbox (which paces, gates and sends
// them); the run only asks.
#include "ringback/workflows/diagnostic.hpp"
#include "ringback/workflows/language.hpp"
#include "ringback/workflows/phone.hpp"
#include "ringback/workflows/yaml_source.hpp"

namespace ringback::workflows {

namespace {

/// Longest SMS body Twilio accepts, in characters.
constexpr std::size_t max_body_chars = 1600;

/// Phone numbers are short; a long rendering is nonsense, not a number.
constexpr std::size_t max_number_bytes = 64;

std::string quote(std::string x) {
  if (truncate_code_points(x, 32))
    x += "...";
  return "'" + x + "'";
}

bool is_urgent(const step& s) {
  const auto* f = s.field("urgent");
  return f == nullptr || f->flag;
}

/// Validates and appends one SMS; shared by send_sms and notify_owner.
step_result ask_sms(const step& s, step_frame& f, const std::string& to,
                    const std::string& from, std::string body,
                    std::vector<std::string> notes) {
  auto to_number = normalize_e164(to);
  if (!to_number) // e.g. a withheld caller id ("anonymous"): nobody to text
    return {step_outcome::skipped,
            "to: " + quote(to) + " is not a phone number"};
  auto from_number = normalize_e164(from);
  if (!from_number)
    return {step_outcome::failed,
            "from: " + quote(from) + " is not a phone number"};
  if (*to_number == *from_number)
    return {step_outcome::skipped,
            "to and from are the same number " + *to_number};
  if (body.find_first_not_of(" \t\r\n") == std::string::npos)
    return {step_outcome::skipped, "body is empty"};
  if (truncate_code_points(body, max_body_chars))
    notes.push_back("body cut to " + std::to_string(max_body_chars)
                    + " characters");
  std::string detail = "to " + *to_number + " from " + *from_number;
  if (!is_urgent(s))
    detail += " (not urgent)";
  if (!notes.empty())
    detail += "; " + join(notes, "; ");
  f.fx.sms.push_back({s.display_id(), std::move(*to_number),
                      std::move(*from_number), std::move(body), is_urgent(s)});
  return {step_outcome::ok, std::move(detail)};
}

std::string var_text(const context& vars, std::string_view name);

step_result execute_call_owner(const step& s, step_frame& f) {
  std::vector<std::string> notes;
  auto say = f.render(*s.field("say"), notes, 1000);
  if (say.find_first_not_of(" \t\r\n") == std::string::npos)
    return {step_outcome::skipped, "nothing to say"};
  auto to = normalize_e164(var_text(f.vars, "tenant.owner_phone"));
  if (!to)
    return {step_outcome::skipped, "the tenant has no owner phone"};
  auto from = normalize_e164(var_text(f.vars, "tenant.number"));
  if (!from)
    return {step_outcome::failed, "the tenant has no business number"};
  std::string detail = "calling " + *to + " from " + *from;
  if (!notes.empty())
    detail += "; " + join(notes, "; ");
  f.fx.calls.push_back({s.display_id(), *to, *from, std::move(say)});
  return {step_outcome::ok, std::move(detail)};
}

step_result execute_ai_reply(const step& s, step_frame& f) {
  std::vector<std::string> notes;
  auto to = f.render(*s.field("to"), notes, max_number_bytes);
  auto from = f.render(*s.field("from"), notes, max_number_bytes);
  auto to_number = normalize_e164(to);
  if (!to_number)
    return {step_outcome::skipped,
            "to: " + quote(to) + " is not a phone number"};
  auto from_number = normalize_e164(from);
  if (!from_number)
    return {step_outcome::failed,
            "from: " + quote(from) + " is not a phone number"};
  ai_action a;
  a.step_id = s.display_id();
  a.to = *to_number;
  a.from = *from_number;
  a.max_chars = static_cast<std::size_t>(s.field("max_chars")->number);
  std::string detail = "asking the AI to answer " + a.to;
  if (!notes.empty())
    detail += "; " + join(notes, "; ");
  f.fx.ai = std::move(a);
  step_result r{step_outcome::ok, std::move(detail)};
  r.suspend = "ai";
  return r;
}

std::string resume_ai_reply(const step& s, const resume_event& ev,
                            step_frame& f, std::string& detail) {
  std::vector<std::string> notes;
  auto to = normalize_e164(f.render(*s.field("to"), notes, max_number_bytes));
  auto from
    = normalize_e164(f.render(*s.field("from"), notes, max_number_bytes));
  detail = (ev.provider.empty() ? std::string{"AI"} : ev.provider) + " answered in "
           + std::to_string(ev.elapsed_ms) + " ms";
  if (!ev.status.empty())
    detail += " (" + ev.status + ")";
  if (!ev.error.empty())
    detail += "; the model failed: " + ev.error;
  if (!s.id.empty()) {
    const std::string p = "steps." + s.id + ".";
    f.vars[p + "text"] = value{ev.body};
    f.vars[p + "intent"] = value{ev.status};
    f.vars[p + "provider"] = value{ev.provider};
    f.vars[p + "error"] = value{ev.error};
  }
  auto body = ev.body;
  if (!to || !from || body.find_first_not_of(" \t\r\n") == std::string::npos) {
    detail += "; nothing to send";
    return {};
  }
  truncate_code_points(body, max_body_chars);
  sms_action m{s.display_id(), *to, *from, std::move(body), true};
  m.author = "ai";
  f.fx.sms.push_back(std::move(m));
  detail += "; texted " + *to;
  return {};
}

step_result execute_send_sms(const step& s, step_frame& f) {
  std::vector<std::string> notes;
  auto to = f.render(*s.field("to"), notes, max_number_bytes);
  auto from = f.render(*s.field("from"), notes, max_number_bytes);
  auto body = f.render(*s.field("body"), notes);
  return ask_sms(s, f, to, from, std::move(body), std::move(notes));
}

std::string var_text(const context& vars, std::string_view name) {
  auto i = vars.find(name);
  return i == vars.end() ? std::string{} : i->second.to_text();
}

step_result execute_notify_owner(const step& s, step_frame& f) {
  std::vector<std::string> notes;
  auto body = f.render(*s.field("body"), notes);
  return ask_sms(s, f, var_text(f.vars, "tenant.owner_phone"),
                 var_text(f.vars, "tenant.number"), std::move(body),
                 std::move(notes));
}

field_spec urgent_field() {
  return {"urgent", field_kind::boolean, false, "true",
          "false marks a deferrable text (follow-ups, review requests): in "
          "the tenant's quiet hours it is held until they end."};
}

} // namespace

void add_messaging_steps(step_registry& r) {
  {
    step_spec s;
    s.type = "send_sms";
    s.family = step_family::messaging;
    s.doc = "Send a text message through the outbox (stored together with "
            "the run's segment, sent once, retried on carrier errors). A "
            "recipient that is not a phone number (a withheld caller id) "
            "skips the step.";
    s.fields = {
      {"to", field_kind::text, true, "", "Recipient, E.164 after rendering."},
      {"body", field_kind::text, true, "",
       "Plain text, cut to 1600 characters; only whitespace skips the step."},
      {"from", field_kind::text, false, "{{ tenant.number }}",
       "Sending number; default: the business number in play."},
      urgent_field(),
    };
    s.execute = execute_send_sms;
    s.example
      = "- send_sms:\n    to: \"{{ call.from }}\"\n    body: \"Sorry we "
        "missed you! {{ tenant.name }} will call back.\"";
    r.add(std::move(s));
  }
  {
    step_spec s;
    s.type = "notify_owner";
    s.family = step_family::messaging;
    s.doc = "Text the owner's own phone from the business number.";
    s.primary = "body";
    s.fields = {
      {"body", field_kind::text, true, "",
       "Plain text, cut to 1600 characters."},
      urgent_field(),
    };
    s.execute = execute_notify_owner;
    s.example = "- notify_owner: \"Missed call from {{ call.from | phone }}\"";
    r.add(std::move(s));
  }
  {
    step_spec s;
    s.type = "call_owner";
    s.family = step_family::messaging;
    s.doc = "Call the owner's phone from the business number and read a "
            "message twice (an emergency page). The page is stored with the "
            "run's segment and placed by the outbox like a text: refused if "
            "the owner opted out, retried on the carrier's transient errors, "
            "and looked up at the carrier before it is placed again after a "
            "crash or a lost answer.";
    s.primary = "say";
    s.fields = {
      {"say", field_kind::text, true, "",
       "What to read, at most 1000 bytes; only whitespace skips the step."},
    };
    s.execute = execute_call_owner;
    s.example = "- call_owner: \"Emergency call from {{ contact.phone | phone "
                "}}. Check your texts.\"";
    r.add(std::move(s));
  }
  {
    step_spec s;
    s.type = "ai_reply";
    s.family = step_family::messaging;
    s.doc = "Let the AI answer the customer: it reads the tenant's profile "
            "and the conversation's transcript and writes one reply, which "
            "is texted like send_sms. The run waits for the reply; when the "
            "model fails or is too slow the built-in offline responder "
            "answers, so the customer always gets one. With an id, later "
            "steps read steps.<id>.text, .intent (emergency, booking, quote, "
            "hours_location, opt_out, other), .provider and .error.";
    s.fields = {
      {"to", field_kind::text, false, "{{ contact.phone }}",
       "The customer; default: the conversation's."},
      {"from", field_kind::text, false, "{{ tenant.number }}",
       "Sending number; default: the number the customer texted."},
      {"max_chars", field_kind::integer, false, "320",
       "Longest reply (40-1600 characters); longer ones are cut at a "
       "sentence.",
       40, 1600},
    };
    s.result_fields = {"text", "intent", "provider", "error"};
    s.execute = execute_ai_reply;
    s.resume = resume_ai_reply;
    s.example = "- id: answer\n  ai_reply: {}";
    r.add(std::move(s));
  }
}

} // namespace ringback::workflows
