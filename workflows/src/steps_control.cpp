// The control steps. `if`, `switch`, `repeat` and `stop` are compiled into
// jumps (program.hpp); `set`, `wait` and `wait_for_reply` run here.
#include "ringback/workflows/diagnostic.hpp"
#include "ringback/workflows/language.hpp"
#include "ringback/workflows/phone.hpp"

namespace ringback::workflows {

namespace {

step_result execute_set(const step& s, step_frame& f) {
  std::vector<std::string> notes;
  std::vector<std::string> names;
  for (const auto& [name, t] : s.field("values")->map) {
    auto r = t.evaluate_value(f.vars, f.limits.eval);
    if (!r.ok())
      notes.push_back(name + ": " + r.error);
    if (!r.missing.empty())
      notes.push_back(name + ": missing variables " + join(r.missing));
    f.vars["vars." + name] = std::move(r.result);
    names.push_back("vars." + name);
  }
  auto detail = "set " + join(names);
  if (!notes.empty())
    detail += "; " + join(notes, "; ");
  return {step_outcome::ok, std::move(detail)};
}

step_result execute_wait(const step& s, step_frame& f) {
  auto ms = s.field("for")->number;
  step_result r{step_outcome::ok, "waiting " + format_duration(ms)};
  r.suspend = "timer";
  r.wake_at = f.now + ms;
  return r;
}

std::string resume_wait(const step&, const resume_event&, step_frame&,
                        std::string& detail) {
  detail = "time is up";
  return {};
}

step_result execute_wait_for_reply(const step& s, step_frame& f) {
  std::vector<std::string> notes;
  auto from = f.render(*s.field("from"), notes, 64);
  auto number = normalize_e164(from);
  if (!number)
    return {step_outcome::skipped,
            "from: '" + from + "' is not a phone number: nobody to wait for"};
  auto ms = s.field("timeout")->number;
  step_result r{step_outcome::ok,
                "waiting up to " + format_duration(ms) + " for " + *number};
  r.suspend = "reply";
  r.wake_at = f.now + ms;
  r.contact = *number;
  return r;
}

std::string resume_wait_for_reply(const step&, const resume_event& ev,
                                  step_frame& f, std::string& detail) {
  if (ev.what == resume_event::kind::reply) {
    f.vars["reply.body"] = value{ev.body};
    f.vars["reply.from"] = value{ev.from};
    f.vars["reply.sid"] = value{ev.sid};
    detail = "reply from " + ev.from;
    return "on_reply";
  }
  detail = "no reply in time";
  return "on_timeout";
}

} // namespace

void add_control_steps(step_registry& r) {
  {
    step_spec s;
    s.type = "if";
    s.doc = "Run `then` when the condition is true, else `else`. The "
            "condition is an expression (see Expressions).";
    s.primary = "condition";
    s.fields = {{"condition", field_kind::condition, true, "",
                 "The condition, e.g. business_hours."}};
    s.branches = {{"then", true, "steps run when the condition is true", {}},
                  {"else", false, "steps run when it is false", {}}};
    s.example = "- if: business_hours\n  then:\n    - dial: \"{{ "
                "tenant.owner_phone }}\"\n  else:\n    - record_voicemail:";
    r.add(std::move(s));
  }
  {
    step_spec s;
    s.type = "switch";
    s.doc = "Run the steps of the case whose label equals the value (compared "
            "as text), or `default`.";
    s.primary = "on";
    s.fields = {{"on", field_kind::condition, true, "",
                 "The value to switch on, an expression."}};
    s.branches = {{"cases", true, "a map of labels to step lists", {}, true},
                  {"default", false, "steps run when no label matches", {}}};
    s.example = "- switch: sms.body | trim | lower\n  cases:\n    \"yes\":\n"
                "      - notify_owner: \"{{ contact.phone | phone }} "
                "confirmed\"\n    \"no\":\n      - tag_contact: declined\n"
                "  default:\n    - notify_owner: \"Text from {{ contact.phone "
                "| phone }}: {{ sms.body }}\"";
    r.add(std::move(s));
  }
  {
    step_spec s;
    s.type = "set";
    s.doc = "Set variables for the steps after it, as `vars.<name>`. A value "
            "that is one `{{ expression }}` keeps its type (a number stays a "
            "number); anything else is text.";
    s.shape = value_shape::map;
    s.primary = "values";
    s.fields = {{"values", field_kind::text_map, true, "",
                 "names (letters, digits, '_', dotted) and their templates"}};
    s.execute = execute_set;
    s.example = "- set:\n    greeting: \"Hi from {{ tenant.name }}\"";
    r.add(std::move(s));
  }
  {
    step_spec s;
    s.type = "stop";
    s.doc = "End the run here.";
    s.primary = "reason";
    s.fields
      = {{"reason", field_kind::text, false, "", "Why, for the run's record."}};
    s.example = "- stop: \"opted out\"";
    r.add(std::move(s));
  }
  {
    step_spec s;
    s.type = "wait";
    s.doc = "Wait, durably: the run is stored and resumed when the time is "
            "up, on whichever process holds it, even after a restart.";
    s.primary = "for";
    s.fields = {{"for", field_kind::duration, true, "", "How long (1s to 90d).",
                 1'000, 90LL * 86'400'000}};
    s.execute = execute_wait;
    s.resume = resume_wait;
    s.example = "- wait: 2h";
    r.add(std::move(s));
  }
  {
    step_spec s;
    s.type = "wait_for_reply";
    s.doc = "Wait, durably, for the next text from a number, at most "
            "`timeout`; then run `on_reply` (with reply.*) or `on_timeout`. "
            "Both branches must be written (an empty list is fine).";
    s.fields = {
      {"timeout", field_kind::duration, true, "",
       "How long to wait for the reply (10s to 30d).", 10'000,
       30LL * 86'400'000},
      {"from", field_kind::text, false, "{{ contact.phone }}",
       "Whose reply; default: the customer."},
    };
    s.branches = {
      {"on_reply",
       true,
       "steps run when the reply arrives",
       {"reply.body", "reply.from", "reply.sid"}},
      {"on_timeout", true, "steps run when the time is up first", {}},
    };
    s.execute = execute_wait_for_reply;
    s.resume = resume_wait_for_reply;
    s.example = "- wait_for_reply:\n    timeout: 1d\n  on_reply:\n    - "
                "notify_owner: \"Review reply: {{ reply.body }}\"\n  "
                "on_timeout: []";
    r.add(std::move(s));
  }
  {
    step_spec s;
    s.type = "repeat";
    s.doc = "Run `steps` up to `times` times (a loop always has a bound), "
            "stopping early once `until` is true after a pass.";
    s.fields = {
      {"times", field_kind::integer, true, "",
       "At most this many passes (1-100).", 1, 100},
      {"until", field_kind::condition, false, "",
       "Checked after each pass; true ends the loop."},
    };
    s.branches = {{"steps", true, "the loop's body", {"loop.index"}}};
    s.example = "- repeat:\n    times: 2\n    until: dial.answered\n  "
                "steps:\n    - dial: \"{{ tenant.owner_phone }}\"";
    r.add(std::move(s));
  }
}

} // namespace ringback::workflows
