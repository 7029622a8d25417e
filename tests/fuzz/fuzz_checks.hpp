#pragma once

// The bodies of the libFuzzer targets, shared with the ordinary tests
// (tests/workflows/fuzz_test.cpp runs every seed corpus file through them).
// Each takes untrusted bytes, exercises one entry point and checks its
// invariants; it returns "" or what was violated. Crashes, leaks, undefined
// behaviour and hangs are the sanitizers' and libFuzzer's to catch.

#include "ringback/workflows/expr.hpp"
#include "ringback/workflows/loader.hpp"
#include "ringback/workflows/template.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringback::fuzz {

inline std::size_t code_points(std::string_view x) {
  std::size_t n = 0;
  for (char c : x) {
    n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  }
  return n;
}

/// A context with every kind of value, a long text and invalid UTF-8.
inline const workflows::context& fuzz_context() {
  static const workflows::context ctx{
    {"call.from", "+15005550100"},
    {"call.to", "+442079460958"},
    {"tenant.name", "Acme \xc3\xa9"},
    {"business_hours", true},
    {"n", 3},
    {"x", 2.5},
    {"zero", 0},
    {"empty", ""},
    {"nothing", nullptr},
    {"sms.body", "Please STOP"},
    {"long", std::string(20000, 'a')},
    {"bad", "\xff\xc3\x80\x80"},
    {"steps.lookup.json.items.0.name", "Ada"},
  };
  return ctx;
}

inline std::string check_eval(const workflows::expression& e,
                              const workflows::eval_limits& limits) {
  auto r = e.evaluate(fuzz_context(), limits);
  if (!r.ok()) {
    if (!r.result.is_null()) {
      return "an evaluation error with a non-null result";
    }
    return {};
  }
  if (r.result.is_string()
      && r.result.as_string().size() > limits.max_text_bytes) {
    return "a text result over max_text_bytes";
  }
  auto again = e.evaluate(fuzz_context(), limits);
  if (again.error != r.error
      || !(again.result == r.result || r.result.to_text() == "NaN")) {
    return "evaluation is not deterministic";
  }
  return {};
}

inline std::string check_parsed(const workflows::expr_parse_result& p,
                                std::string_view source) {
  const auto points = code_points(source);
  if (!p.ok()) {
    if (p.column < 1 || p.column > points + 1) {
      return "a parse error column out of range: " + std::to_string(p.column);
    }
    if (!p.value.empty()) {
      return "a parse error with an expression";
    }
    return {};
  }
  for (const auto& v : p.value.variables()) {
    if (v.name.empty() || v.column < 1 || v.column > points) {
      return "a variable column out of range";
    }
  }
  auto error = check_eval(p.value, {});
  if (error.empty()) {
    workflows::eval_limits tight;
    tight.max_steps = 7;
    tight.max_text_bytes = 5;
    error = check_eval(p.value, tight);
  }
  return error;
}

/// fuzz_expression: parse_expression and parse_condition, then evaluation
/// under the default and under tight limits.
inline std::string check_expression(std::string_view input) {
  auto p = workflows::parse_expression(input);
  auto error = check_parsed(p, input);
  if (!error.empty()) {
    return "parse_expression: " + error;
  }
  auto c = workflows::parse_condition(input);
  error = check_parsed(c, input);
  if (!error.empty()) {
    return "parse_condition: " + error;
  }
  return {};
}

/// fuzz_template: parse_template, then render under a cap taken from the
/// input's length and evaluate_value.
inline std::string check_template(std::string_view input) {
  auto t = workflows::parse_template(input);
  if (!t.ok()) {
    if (t.error.empty()) {
      return "an empty error";
    }
    return {};
  }
  const auto points = code_points(input);
  for (const auto& v : t.value.variables()) {
    if (v.name.empty() || v.column < 1 || v.column > points) {
      return "a variable column out of range";
    }
  }
  std::size_t max = input.size() % 97;
  auto r = t.value.render(fuzz_context(), max);
  if (r.text.size() > max) {
    return "render went over max_bytes";
  }
  r = t.value.render(fuzz_context());
  if (r.text.size() > workflows::text_template::default_max_output) {
    return "render went over the default cap";
  }
  workflows::eval_limits limits;
  limits.max_text_bytes = 64;
  auto v = t.value.evaluate_value(fuzz_context(), limits);
  if (v.ok() && v.result.is_string() && v.result.as_string().size() > 64) {
    return "evaluate_value went over max_text_bytes";
  }
  if (!v.ok() && !v.result.is_null()) {
    return "an evaluation error with a non-null result";
  }
  if (t.value.is_single_expression()
      != (t.value.parts().size() == 1 && t.value.parts()[0].is_variable)) {
    return "is_single_expression disagrees with parts()";
  }
  return {};
}

/// fuzz_workflow_loader: load_string; every diagnostic must say something
/// about the right file, and a failure must be explained.
inline std::string check_workflow(std::string_view input) {
  auto r = workflows::load_string(input, "fuzz.yaml");
  for (const auto& d : r.diagnostics) {
    if (d.message.empty() || d.file != "fuzz.yaml" || d.line < 0
        || d.column < 0) {
      return "a malformed diagnostic: " + workflows::to_string(d);
    }
  }
  if (!r.ok() && r.diagnostics.empty()) {
    return "a failed load without a diagnostic";
  }
  return {};
}

} // namespace ringback::fuzz
