#include "ringback/workflows/language.hpp"

namespace ringback::workflows {

const field_spec* step_spec::field(std::string_view name) const {
  for (const auto& f : fields) {
    if (f.name == name) {
      return &f;
    }
  }
  return nullptr;
}

bool step_registry::add(step_spec spec) {
  if (find(spec.type) != nullptr) {
    return false;
  }
  specs_.push_back(std::make_shared<const step_spec>(std::move(spec)));
  return true;
}

std::shared_ptr<const step_spec>
step_registry::find(std::string_view type) const {
  for (const auto& s : specs_) {
    if (s->type == type) {
      return s;
    }
  }
  return nullptr;
}

std::vector<std::string> step_registry::names() const {
  std::vector<std::string> out;
  for (const auto& s : specs_) {
    out.push_back(s->type);
  }
  return out;
}

bool trigger_registry::add(trigger_spec spec) {
  if (find(spec.name) != nullptr) {
    return false;
  }
  specs_.push_back(std::move(spec));
  return true;
}

const trigger_spec* trigger_registry::find(std::string_view name) const {
  for (const auto& s : specs_) {
    if (s.name == name) {
      return &s;
    }
  }
  return nullptr;
}

std::vector<std::string> trigger_registry::names() const {
  std::vector<std::string> out;
  for (const auto& s : specs_) {
    out.push_back(s.name);
  }
  return out;
}

const std::vector<std::string>& call_variables() {
  static const std::vector<std::string> xs{
    "call.sid",    "call.from",          "call.to",        "tenant.id",
    "tenant.name", "tenant.owner_phone", "tenant.timezone"};
  return xs;
}

namespace {

language make_default_language() {
  language lang;
  // Only the triggers something fires today. sms.received,
  // conversation.owner_timeout and schedule join when their producers do, so
  // that a workflow can never wait on a trigger nobody fires.
  lang.triggers.add({"call.incoming", "A call to a business number arrived.",
                     call_variables()});
  lang.triggers.add(
    {"call.missed", "The owner did not answer a call.", call_variables()});
  lang.triggers.add(
    {"call.answered", "The owner answered a call.", call_variables()});
  lang.triggers.add({"call.completed", "A call ended.", call_variables()});
  lang.steps.add(send_sms_step());
  return lang;
}

} // namespace

const language& default_language() {
  static const language lang = make_default_language();
  return lang;
}

} // namespace ringback::workflows
