// Microbenchmarks of the workflow language: what one run of a typical
// workflow costs on an actor's thread (parse and compile happen once, at
// load). Figures and the command: docs/benchmarks.md.
#include "ringback/workflows/calendar.hpp"
#include "ringback/workflows/contexts.hpp"
#include "ringback/workflows/expr.hpp"
#include "ringback/workflows/interpreter.hpp"
#include "ringback/workflows/loader.hpp"

#include <benchmark/benchmark.h>

#include <string>

namespace {

using namespace ringback;

/// The after-hours branch a typical missed-call text-back takes: a
/// condition, a set, two texts with filters.
constexpr const char* typical = R"yaml(name: typical
trigger: call.missed
steps:
  - if: business_hours and not holiday
    then:
      - set:
          when: "shortly"
    else:
      - set:
          when: "first thing tomorrow"
  - id: text_back
    send_sms:
      to: "{{ call.from }}"
      body: "Sorry we missed your call at {{ tenant.name }}! We'll call you back {{ vars.when }}."
  - notify_owner: "Missed call from {{ call.from | phone }} ({{ now.time }})"
)yaml";

engine::tenant acme() {
  engine::tenant t;
  t.id = "acme";
  t.name = "Acme Plumbing";
  t.owner_phone = "+15005550002";
  t.timezone = "America/Denver";
  t.business_hours = {{"mon-fri", "08:00-17:00"}};
  t.numbers.push_back({"+15005550001", engine::number_kind::long_code, 1.0});
  return t;
}

constexpr engine::epoch_ms now_ms = 1'795'000'000'000; // a weekday, 2026

workflows::context call_vars(const workflows::business_calendar& cal) {
  auto t = acme();
  auto ctx = workflows::call_context("CA1", "+15550100123", "+15005550001", t);
  workflows::add_calendar_variables(cal, now_ms, ctx);
  return ctx;
}

workflows::business_calendar calendar() {
  return *workflows::business_calendar::from_tenant(acme()).value;
}

/// One whole run of the typical workflow: 5 steps, 2 SMS asked for.
void workflow_typical_run(benchmark::State& state) {
  auto wf = workflows::load_string(typical, "typical.yaml").value;
  auto ctx = call_vars(calendar());
  for (auto _ : state)
    benchmark::DoNotOptimize(workflows::start(*wf, ctx, now_ms));
  state.counters["steps/run"] = 5;
}
BENCHMARK(workflow_typical_run);

/// The variables a run starts with: trigger + calendar (per event).
void workflow_context_build(benchmark::State& state) {
  auto cal = calendar();
  for (auto _ : state)
    benchmark::DoNotOptimize(call_vars(cal));
}
BENCHMARK(workflow_context_build);

void expression_condition(benchmark::State& state) {
  auto e
    = workflows::parse_condition(
        R"x(business_hours and call.from != "" and not (call.from in ["+15550100999", "+15550100998"]))x")
        .value;
  auto ctx = call_vars(calendar());
  for (auto _ : state)
    benchmark::DoNotOptimize(e.evaluate(ctx));
}
BENCHMARK(expression_condition);

void expression_matches(benchmark::State& state) {
  auto e
    = workflows::parse_condition(
        R"x(sms.body | lower matches "(flood|no heat|burst|gas leak|sparks)")x")
        .value;
  workflows::context ctx{
    {"sms.body",
     workflows::value{"Hi, my basement has water everywhere, I think "
                      "a pipe BURST overnight. Can someone come?"}}};
  for (auto _ : state)
    benchmark::DoNotOptimize(e.evaluate(ctx));
}
BENCHMARK(expression_matches);

void template_render(benchmark::State& state) {
  auto t = workflows::parse_template(
             "Sorry we missed your call at {{ tenant.name }}! Call {{ "
             "tenant.number | phone }} or reply here.")
             .value;
  auto ctx = call_vars(calendar());
  for (auto _ : state)
    benchmark::DoNotOptimize(t.render(ctx));
}
BENCHMARK(template_render);

/// A run that waits: its state is what a suspension stores.
workflows::segment_result waiting_run() {
  auto wf = workflows::load_string(R"(name: w
trigger: call.missed
steps:
  - wait: 2h
  - send_sms: {to: "{{ call.from }}", body: "hi"}
)",
                                   "w.yaml")
              .value;
  return workflows::start(*wf, call_vars(calendar()), now_ms);
}

/// A durable wait's state, stored and read back (per suspension).
void run_state_round_trip(benchmark::State& state) {
  auto r = waiting_run();
  for (auto _ : state) {
    auto text = r.state.to_json();
    benchmark::DoNotOptimize(workflows::run_state::from_json(text));
  }
}
BENCHMARK(run_state_round_trip);

/// A run's state as stored with each segment (every run, waiting or not).
void run_state_to_json(benchmark::State& state) {
  auto r = waiting_run();
  for (auto _ : state)
    benchmark::DoNotOptimize(r.state.to_json());
}
BENCHMARK(run_state_to_json);

/// Loading and compiling a file (at start-up and on reload, not per event).
void workflow_load_and_compile(benchmark::State& state) {
  for (auto _ : state)
    benchmark::DoNotOptimize(workflows::load_string(typical, "typical.yaml"));
}
BENCHMARK(workflow_load_and_compile)->Unit(benchmark::kMicrosecond);

} // namespace
