#include "ringback/workflows/language.hpp"
#include "ringback/workflows/phone.hpp"
#include "ringback/workflows/yaml_source.hpp"

namespace ringback::workflows {

namespace {

/// Longest SMS body Twilio accepts, in characters.
constexpr std::size_t max_body_chars = 1600;

/// Phone numbers are short; a long rendering is nonsense, not a number.
constexpr std::size_t max_number_bytes = 64;

/// Untrusted text quoted in the audit trail is cut to this many characters.
constexpr std::size_t max_quoted_chars = 32;

std::string quote(std::string x) {
  if (truncate_code_points(x, max_quoted_chars)) {
    x += "...";
  }
  return "'" + x + "'";
}

void note_missing(const rendered_text& r, std::vector<std::string>& missing) {
  for (const auto& m : r.missing) {
    missing.push_back(m);
  }
}

step_result execute_send_sms(const step& s, const context& ctx,
                             run_result& out) {
  const auto* to_field = s.field("to");
  const auto* from_field = s.field("from");
  const auto* body_field = s.field("body");
  if (to_field == nullptr || from_field == nullptr || body_field == nullptr) {
    // Only a workflow built by hand, not by the loader, can lack them.
    return {step_outcome::failed, "the step lacks 'to', 'from' or 'body'"};
  }
  std::vector<std::string> missing;
  std::vector<std::string> notes;
  auto render = [&](const field_value& f, std::size_t max_bytes) {
    auto r = f.text.render(ctx, max_bytes);
    note_missing(r, missing);
    return r;
  };
  auto to = render(*to_field, max_number_bytes);
  auto from = render(*from_field, max_number_bytes);
  auto body = render(*body_field, text_template::default_max_output);
  auto to_number = normalize_e164(to.text);
  if (!to_number) { // e.g. a withheld caller id ("anonymous"): nobody to text
    return {step_outcome::skipped,
            "to: " + quote(to.text) + " is not a phone number"};
  }
  auto from_number = normalize_e164(from.text);
  if (!from_number) {
    return {step_outcome::failed,
            "from: " + quote(from.text) + " is not a phone number"};
  }
  if (*to_number == *from_number) {
    return {step_outcome::skipped,
            "to and from are the same number " + *to_number};
  }
  if (body.text.find_first_not_of(" \t\r\n") == std::string::npos) {
    return {step_outcome::skipped, "body is empty"};
  }
  if (truncate_code_points(body.text, max_body_chars) || body.truncated) {
    notes.push_back("body truncated to "
                    + std::to_string(code_points(body.text)) + " characters");
  }
  if (!missing.empty()) {
    notes.insert(notes.begin(),
                 "missing variables rendered empty: " + join(missing));
  }
  out.sms.push_back({s.display_id(), std::move(*to_number),
                     std::move(*from_number), std::move(body.text)});
  return {step_outcome::ok, join(notes, "; ")};
}

} // namespace

/// `send_sms`: asks for one SMS.
///
/// Fields (all templates):
/// - `to` (required): the recipient, E.164 after rendering (formatting
///   characters are dropped). Anything else, e.g. a withheld caller id,
///   skips the step.
/// - `body` (required): plain text, cut to 1600 characters. Rendering to
///   only whitespace skips the step.
/// - `from` (optional, default `{{ call.to }}`: the business number that
///   was called): must render to E.164, or the step fails.
///
/// Appends one `sms_action` to the run; sending it is the caller's job.
step_spec send_sms_step() {
  step_spec spec;
  spec.type = "send_sms";
  spec.doc = "Send a text message.";
  spec.fields = {
    {"to", field_kind::text, true, "", "Recipient phone number (E.164)."},
    {"body", field_kind::text, true, "", "Message text (plain text)."},
    {"from", field_kind::text, false, "{{ call.to }}",
     "Sending number; defaults to the business number that was called."},
  };
  spec.execute = execute_send_sms;
  return spec;
}

} // namespace ringback::workflows
