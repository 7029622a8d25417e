#pragma once

#include "ringback/workflows/interpreter.hpp"
#include "ringback/workflows/model.hpp"
#include "ringback/workflows/template.hpp"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

/// The vocabulary of the workflow language: which triggers exist (and which
/// variables they offer) and which step types exist (their fields and how
/// they run). The loader validates against it, the interpreter runs through
/// it; a new step type is one `step_spec` registered here.
namespace ringback::workflows {

/// One field a step type accepts.
struct field_spec {
  std::string name;
  field_kind kind = field_kind::text;
  bool required = false;
  /// Source of the default (a template for `text`); empty = no default.
  /// A default that uses variables the trigger does not offer makes the
  /// field required for that trigger.
  std::string default_source;
  std::string doc;
};

/// What an executor reports back for the trace.
struct step_result {
  step_outcome outcome = step_outcome::ok;
  std::string detail;
};

/// Runs one step: reads the step's validated fields and `ctx`, appends the
/// actions it asks for to `out`. Must be pure (no I/O, no clock) and should
/// not throw; the interpreter turns an exception into a failed step.
using step_executor = std::function<step_result(
  const step& s, const context& ctx, run_result& out)>;

/// One step type.
struct step_spec {
  std::string type; ///< the key that selects it in a step, e.g. "send_sms"
  std::string doc;
  std::vector<field_spec> fields; ///< in the order they are documented
  step_executor execute;

  /// Null if absent.
  const field_spec* field(std::string_view name) const;
};

/// Step types by name.
class step_registry {
public:
  /// Returns false (and keeps the old one) if `spec.type` is taken.
  bool add(step_spec spec);

  /// Null if unknown.
  std::shared_ptr<const step_spec> find(std::string_view type) const;

  /// In registration order.
  std::vector<std::string> names() const;

private:
  std::vector<std::shared_ptr<const step_spec>> specs_;
};

/// One trigger and the variables its runs see.
struct trigger_spec {
  std::string name; ///< e.g. "call.missed"
  std::string doc;
  std::vector<std::string> variables; ///< in documentation order
};

/// Triggers by name.
class trigger_registry {
public:
  bool add(trigger_spec spec);

  /// Null if unknown.
  const trigger_spec* find(std::string_view name) const;

  std::vector<std::string> names() const;

private:
  std::vector<trigger_spec> specs_;
};

/// Steps and triggers together.
struct language {
  step_registry steps;
  trigger_registry triggers;
};

/// The variables every call.* trigger offers.
const std::vector<std::string>& call_variables();

/// Triggers call.incoming, call.missed, call.answered, call.completed; step
/// type send_sms. Built once; immutable.
const language& default_language();

/// The `send_sms` step type (see send_sms.cpp for its documentation).
step_spec send_sms_step();

} // namespace ringback::workflows
