#include "ringback/workflows/language.hpp"

#include <charconv>
#include <utility>

namespace ringback::workflows {

const char* to_string(step_family x) {
  switch (x) {
    case step_family::voice:
      return "voice";
    case step_family::messaging:
      return "messaging";
    case step_family::control:
      return "control";
    case step_family::integration:
      return "integration";
  }
  return "?";
}

const field_spec* step_spec::field(std::string_view name) const {
  for (const auto& f : fields)
    if (f.name == name)
      return &f;
  return nullptr;
}

const branch_spec* step_spec::branch(std::string_view name) const {
  for (const auto& b : branches)
    if (b.name == name)
      return &b;
  return nullptr;
}

bool step_registry::add(step_spec spec) {
  if (find(spec.type) != nullptr)
    return false;
  specs_.push_back(std::make_shared<const step_spec>(std::move(spec)));
  return true;
}

std::shared_ptr<const step_spec>
step_registry::find(std::string_view type) const {
  for (const auto& s : specs_)
    if (s->type == type)
      return s;
  return nullptr;
}

std::vector<std::string> step_registry::names() const {
  std::vector<std::string> out;
  for (const auto& s : specs_)
    out.push_back(s->type);
  return out;
}

bool trigger_registry::add(trigger_spec spec) {
  if (find(spec.name) != nullptr)
    return false;
  specs_.push_back(std::move(spec));
  return true;
}

const trigger_spec* trigger_registry::find(std::string_view name) const {
  for (const auto& s : specs_)
    if (s.name == name)
      return &s;
  return nullptr;
}

std::vector<std::string> trigger_registry::names() const {
  std::vector<std::string> out;
  for (const auto& s : specs_)
    out.push_back(s.name);
  return out;
}

namespace {

/// Every variable a trigger can offer, with its documentation.
const std::vector<std::pair<std::string, std::string>>& variable_docs() {
  static const std::vector<std::pair<std::string, std::string>> xs{
    {"tenant.id", "The tenant's id."},
    {"tenant.name", "The business name."},
    {"tenant.owner_phone", "The owner's own phone (E.164)."},
    {"tenant.timezone", "The tenant's IANA time zone."},
    {"tenant.number",
     "The business number in play: the number called or texted (or the "
     "tenant's first number for schedules)."},
    {"tenant.page_by_call",
     "True when the tenant wants emergencies to ring the owner's phone "
     "(`conversations.page_by_call`), not only text it."},
    {"business_hours",
     "True inside the tenant's business hours and not on a holiday (always "
     "true when no hours are configured)."},
    {"holiday", "True on one of the tenant's holidays."},
    {"now.date", "Today in the tenant's time zone, `2026-11-21`."},
    {"now.time", "The local time, `14:05`."},
    {"now.hour", "The local hour, 0-23 (a number)."},
    {"now.minute", "The local minute, 0-59 (a number)."},
    {"now.weekday", "`mon` ... `sun`."},
    {"now.timezone", "The time zone these are in."},
    {"call.sid", "The carrier's id of the call."},
    {"call.from", "The caller's number (E.164), or what the carrier sent "
                  "for a withheld one."},
    {"call.to", "The business number that was called."},
    {"call.answered", "True once the owner answered (call.answered, "
                      "call.completed)."},
    {"call.duration", "Seconds the owner talked (a number; 0 if unknown)."},
    {"contact.phone", "The customer's number: the caller, or the sender of "
                      "an SMS."},
    {"sms.sid", "The carrier's id of the message."},
    {"sms.from", "The sender's number."},
    {"sms.to", "The business number that received it."},
    {"sms.body", "The message text."},
    {"conversation.id", "The conversation's short reference (e.g. `12`)."},
    {"conversation.customer", "The customer's number."},
    {"conversation.last_message", "The customer's last message."},
    {"conversation.transcript",
     "The conversation so far, one `who: text` line a message."},
    {"conversation.takeover",
     "True for the AI's first turn of a window (the takeover), false for "
     "its later turns while it holds the conversation."},
    {"schedule.cron", "The cron expression that fired."},
    {"schedule.fired_at", "When it fired, local ISO-8601 time."},
  };
  return xs;
}

std::vector<std::string> with_common(std::vector<std::string> xs) {
  auto out = common_variables();
  out.insert(out.end(), xs.begin(), xs.end());
  return out;
}

language make_default_language() {
  language lang;
  lang.triggers.add({"call.incoming",
                     "A call to a business number arrived. The run answers "
                     "it: its path must reach a voice step (dial, say, "
                     "play, record_voicemail, hangup or reject).",
                     call_variables(), true});
  lang.triggers.add({"call.missed",
                     "The owner did not answer a forwarded call (decided "
                     "once, by the dial result or the carrier's records).",
                     call_variables()});
  lang.triggers.add({"call.answered", "The owner answered a forwarded call.",
                     call_variables()});
  lang.triggers.add({"call.completed", "A call ended.", call_variables()});
  lang.triggers.add({"sms.received",
                     "A customer texted a business number (carrier retries "
                     "are fired once).",
                     with_common({"sms.sid", "sms.from", "sms.to", "sms.body",
                                  "contact.phone"})});
  lang.triggers.add(
    {"conversation.owner_timeout",
     "The owner did not answer a customer's message within the owner-reply "
     "window: the point where the AI takes over; fired again for each batch "
     "of the customer's texts while the AI holds the conversation (until the "
     "owner writes). `tenant.number` is the number the customer texted.",
     with_common({"conversation.id", "conversation.customer",
                  "conversation.last_message", "conversation.transcript",
                  "conversation.takeover", "contact.phone"})});
  lang.triggers.add({"schedule",
                     "A cron expression (the workflow's `schedule` key) "
                     "fired, in the tenant's time zone; runs once per tenant.",
                     with_common({"schedule.cron", "schedule.fired_at"})});
  add_voice_steps(lang.steps);
  add_messaging_steps(lang.steps);
  add_control_steps(lang.steps);
  add_integration_steps(lang.steps);
  return lang;
}

} // namespace

const std::vector<std::string>& common_variables() {
  static const std::vector<std::string> xs{
    "tenant.id",       "tenant.name",   "tenant.owner_phone",
    "tenant.timezone", "tenant.number", "tenant.page_by_call", "business_hours",
    "holiday",         "now.date",      "now.time",
    "now.hour",        "now.minute",    "now.weekday",
    "now.timezone"};
  return xs;
}

const std::vector<std::string>& call_variables() {
  static const std::vector<std::string> xs
    = with_common({"call.sid", "call.from", "call.to", "call.answered",
                   "call.duration", "contact.phone"});
  return xs;
}

std::string variable_doc(std::string_view name) {
  for (const auto& [n, doc] : variable_docs())
    if (n == name)
      return doc;
  return {};
}

const language& default_language() {
  static const language lang = make_default_language();
  return lang;
}

std::optional<std::int64_t> parse_duration_ms(std::string_view text) {
  while (!text.empty() && text.front() == ' ')
    text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ')
    text.remove_suffix(1);
  if (text.empty())
    return std::nullopt;
  std::int64_t total = 0;
  bool any = false;
  while (!text.empty()) {
    std::int64_t n = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || n < 0 || n > 10'000'000)
      return std::nullopt;
    text.remove_prefix(static_cast<std::size_t>(ptr - text.data()));
    std::int64_t unit = 0;
    if (text.empty() && !any) {
      unit = 1000; // a bare number: seconds
    } else if (text.substr(0, 2) == "ms") {
      unit = 1;
      text.remove_prefix(2);
    } else if (!text.empty()) {
      switch (text.front()) {
        case 's':
          unit = 1000;
          break;
        case 'm':
          unit = 60'000;
          break;
        case 'h':
          unit = 3'600'000;
          break;
        case 'd':
          unit = 86'400'000;
          break;
        default:
          return std::nullopt;
      }
      text.remove_prefix(1);
    } else {
      return std::nullopt; // "1m30": a number without a unit after another
    }
    total += n * unit;
    any = true;
  }
  return total;
}

std::string format_duration(std::int64_t ms) {
  if (ms == 0)
    return "0s";
  std::string out;
  if (ms % 1000 != 0)
    return std::to_string(ms) + "ms";
  auto s = ms / 1000;
  for (auto [unit, name] : {std::pair<std::int64_t, const char*>{86400, "d"},
                            {3600, "h"},
                            {60, "m"},
                            {1, "s"}}) {
    if (s >= unit) {
      out += std::to_string(s / unit) + name;
      s %= unit;
    }
  }
  return out;
}

} // namespace ringback::workflows
