#pragma once

#include "ringback/workflows/interpreter.hpp"
#include "ringback/workflows/model.hpp"
#include "ringback/workflows/value.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

/// The vocabulary of the workflow language: which triggers exist (and which
/// variables they offer) and which step types exist (their fields, branches
/// and how they run). The loader validates against it, the interpreter runs
/// through it, docs/workflows.md is generated from it; a new step type is one
/// `step_spec` registered here.
namespace ringback::workflows {

/// One field a step type accepts.
struct field_spec {
  field_spec() = default;
  field_spec(std::string n, field_kind k, bool req, std::string def,
             std::string d, std::int64_t lo = 0, std::int64_t hi = 0,
             std::vector<std::string> cs = {})
    : name(std::move(n)),
      kind(k),
      required(req),
      default_source(std::move(def)),
      doc(std::move(d)),
      min(lo),
      max(hi),
      choices(std::move(cs)) {
    // nop
  }

  std::string name;
  field_kind kind = field_kind::text;
  bool required = false;
  /// Source of the default (a template for `text`, `10s` for a duration);
  /// empty = no default. A default that uses variables the trigger does not
  /// offer makes the field required for that trigger.
  std::string default_source;
  std::string doc;
  std::int64_t min = 0;             ///< integer: bounds; duration: bounds in ms
  std::int64_t max = 0;             ///< 0 = unbounded
  std::vector<std::string> choices; ///< choice: the words allowed
};

/// A nested list of steps a step type accepts, as a sibling key of its type
/// key (`if: cond` + `then: [...]`).
struct branch_spec {
  branch_spec() = default;
  branch_spec(std::string n, bool req, std::string d,
              std::vector<std::string> vars = {}, bool k = false)
    : name(std::move(n)),
      required(req),
      doc(std::move(d)),
      variables(std::move(vars)),
      keyed(k) {
    // nop
  }

  std::string name;
  bool required = false;
  std::string doc;
  /// Variables the branch's steps may read besides the run's.
  std::vector<std::string> variables;
  /// A map of labels to step lists (`cases: {busy: [...], ...}`) rather
  /// than one step list.
  bool keyed = false;
};

/// How a step type's own key holds its fields.
enum class value_shape : std::uint8_t {
  fields, ///< `send_sms: {to: ..., body: ...}` (or a scalar for `primary`)
  map,    ///< `set: {name: template, ...}`: the whole map is `primary`
};

/// The family a step type belongs to (documentation and checks).
enum class step_family : std::uint8_t {
  voice,
  messaging,
  control,
  integration
};

const char* to_string(step_family x);

/// What an executor reports back for the trace.
struct step_result {
  step_result() = default;
  step_result(step_outcome o, std::string d = {})
    : outcome(o), detail(std::move(d)) {
    // nop
  }

  step_outcome outcome = step_outcome::ok;
  std::string detail;
  /// Set to suspend the run: "dial", "recording", "timer", "reply", "http",
  /// "ai".
  std::string suspend;
  engine::epoch_ms wake_at = 0; ///< timer, reply: the deadline
  std::string contact;          ///< reply: whose reply to wait for
};

/// What a step sees while it runs.
struct step_frame {
  const workflow& wf;
  context& vars; ///< read and write (`set`, results of steps)
  effects& fx;   ///< append what the step asks for
  engine::epoch_ms now = 0;
  const run_limits& limits;

  /// Renders a text field; notes missing variables and errors in `notes`.
  std::string
  render(const field_value& f, std::vector<std::string>& notes,
         std::size_t max_bytes = text_template::default_max_output) const;
};

/// Runs one step: reads its fields and the run's variables, appends the
/// effects it asks for, and may suspend the run. Must be pure (no I/O, no
/// clock) and should not throw; the interpreter turns an exception into a
/// failed step.
using step_executor = std::function<step_result(const step&, step_frame&)>;

/// Resumes a suspended step with what happened; returns the branch to take
/// ("" = carry on after the step) and sets variables in `frame.vars`.
using step_resumer = std::function<std::string(
  const step&, const resume_event&, step_frame&, std::string& detail)>;

/// One step type.
struct step_spec {
  std::string type; ///< the key that selects it in a step, e.g. "send_sms"
  step_family family = step_family::control;
  std::string doc;
  value_shape shape = value_shape::fields;
  /// The field a scalar (or, for `map`, the map) written as the type key's
  /// value fills: `say: "Hello"`, `if: business_hours`. Empty: none.
  std::string primary;
  std::vector<field_spec> fields; ///< in the order they are documented
  std::vector<branch_spec> branches;
  /// Control steps the compiler handles itself (if, switch, repeat, stop)
  /// have no executor.
  step_executor execute;
  step_resumer resume;
  /// Variables the step defines for the steps after it (`dial.status`);
  /// `steps.<id>.` prefixes are added for steps with an id by `defines_prefix`.
  std::vector<std::string> defines;
  /// With an id, the step defines `steps.<id>.<name>` for each of these
  /// (a trailing '*' allows anything under that prefix).
  std::vector<std::string> result_fields;
  /// An example for the docs (YAML, one step as a list item).
  std::string example;

  /// Null if absent.
  const field_spec* field(std::string_view name) const;
  const branch_spec* branch(std::string_view name) const;
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

  const std::vector<std::shared_ptr<const step_spec>>& all() const {
    return specs_;
  }

private:
  std::vector<std::shared_ptr<const step_spec>> specs_;
};

/// One trigger and the variables its runs see.
struct trigger_spec {
  std::string name; ///< e.g. "call.missed"
  std::string doc;
  std::vector<std::string> variables; ///< in documentation order
  /// A live call waits for the run's voice answer (call.incoming).
  bool voice = false;
};

/// Triggers by name.
class trigger_registry {
public:
  bool add(trigger_spec spec);

  /// Null if unknown.
  const trigger_spec* find(std::string_view name) const;

  std::vector<std::string> names() const;

  const std::vector<trigger_spec>& all() const {
    return specs_;
  }

private:
  std::vector<trigger_spec> specs_;
};

/// Steps and triggers together.
struct language {
  step_registry steps;
  trigger_registry triggers;
};

/// Variables every run sees: tenant.*, business_hours, holiday, now.*.
const std::vector<std::string>& common_variables();

/// The variables every call.* trigger offers (common ones included).
const std::vector<std::string>& call_variables();

/// Documentation of a variable ("" if unknown).
std::string variable_doc(std::string_view name);

/// Every trigger and step type of ringback. Built once; immutable.
const language& default_language();

// The step types, by family (steps_*.cpp).
void add_voice_steps(step_registry& r);
void add_messaging_steps(step_registry& r);
void add_control_steps(step_registry& r);
void add_integration_steps(step_registry& r);

/// Parses `20s`, `10m`, `2h`, `1d`, `500ms` or a bare number of seconds.
std::optional<std::int64_t> parse_duration_ms(std::string_view text);

/// `90000` -> "1m30s".
std::string format_duration(std::int64_t ms);

} // namespace ringback::workflows
