#include "ringback/workflows/interpreter.hpp"

#include "ringback/workflows/language.hpp"

#include <array>
#include <exception>

namespace ringback::workflows {

namespace {

constexpr std::array<const char*, 3> step_outcome_names{"ok", "skipped",
                                                        "failed"};

} // namespace

const char* to_string(step_outcome x) {
  return step_outcome_names[static_cast<std::size_t>(x)];
}

std::optional<step_outcome> parse_step_outcome(std::string_view x) {
  for (std::size_t i = 0; i < step_outcome_names.size(); ++i) {
    if (x == step_outcome_names[i]) {
      return static_cast<step_outcome>(i);
    }
  }
  return std::nullopt;
}

run_result run(const workflow& wf, const context& ctx) {
  run_result out;
  out.workflow = wf.name;
  for (const auto& s : wf.steps) {
    step_trace t;
    t.step_id = s.display_id();
    t.type = s.type;
    step_result r;
    try {
      if (s.spec == nullptr || !s.spec->execute) {
        r = {step_outcome::failed,
             "no executor for step type '" + s.type + "'"};
      } else {
        r = s.spec->execute(s, ctx, out);
      }
    } catch (const std::exception& e) {
      r = {step_outcome::failed, std::string("internal error: ") + e.what()};
    } catch (...) {
      r = {step_outcome::failed, "internal error"};
    }
    t.outcome = r.outcome;
    t.detail = std::move(r.detail);
    out.trace.push_back(std::move(t));
  }
  return out;
}

context call_context(std::string_view call_sid, std::string_view from,
                     std::string_view to, const engine::tenant& tenant) {
  return context{
    {"call.sid", std::string(call_sid)},
    {"call.from", std::string(from)},
    {"call.to", std::string(to)},
    {"tenant.id", tenant.id},
    {"tenant.name", tenant.name},
    {"tenant.owner_phone", tenant.owner_phone},
    {"tenant.timezone", tenant.timezone},
  };
}

context call_context(const engine::call_record& call,
                     const engine::tenant& tenant) {
  return call_context(call.call_sid, call.from, call.to, tenant);
}

} // namespace ringback::workflows
