#pragma once

#include "ringback/engine/records.hpp"
#include "ringback/workflows/model.hpp"
#include "ringback/workflows/template.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringback::workflows {

/// What became of one step.
enum class step_outcome : std::uint8_t {
  ok,      ///< it did its work (e.g. asked for an SMS)
  skipped, ///< nothing to do, e.g. the caller's number is withheld
  failed,  ///< it could not run, e.g. a field rendered to nonsense
};

const char* to_string(step_outcome x);
std::optional<step_outcome> parse_step_outcome(std::string_view x);

/// An SMS the run asks for. The caller writes it to the outbox, naming its
/// purpose after the workflow and `step_id`.
struct sms_action {
  std::string step_id;
  std::string to;
  std::string from;
  std::string body;
};

/// One line of the audit trail of a run.
struct step_trace {
  std::string step_id; ///< `step::display_id()`
  std::string type;
  step_outcome outcome = step_outcome::ok;
  std::string detail; ///< why it skipped / failed, or notes (truncation, ...)
};

/// Everything a run decided, in step order. Carrying it out (sending,
/// storing) is the caller's job.
struct run_result {
  std::string workflow;
  std::vector<sms_action> sms;
  std::vector<step_trace> trace;
};

/// Runs `wf` against `ctx`: each step in order, each exactly once. Pure: no
/// I/O, no clock, no randomness; never throws (a throwing executor becomes a
/// `failed` step). Variables missing from `ctx` render as empty text.
run_result run(const workflow& wf, const context& ctx);

/// The context of the call.* triggers: call.sid, call.from, call.to,
/// tenant.id, tenant.name, tenant.owner_phone, tenant.timezone.
context call_context(std::string_view call_sid, std::string_view from,
                     std::string_view to, const engine::tenant& tenant);

context call_context(const engine::call_record& call,
                     const engine::tenant& tenant);

} // namespace ringback::workflows
