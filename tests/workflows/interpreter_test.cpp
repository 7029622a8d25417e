#include "ringback/workflows/interpreter.hpp"

#include "ringback/workflows/language.hpp"
#include "ringback/workflows/loader.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

using namespace ringback::workflows;

namespace {

ringback::engine::tenant acme() {
  ringback::engine::tenant t;
  t.id = "acme";
  t.name = "Acme Plumbing";
  t.numbers = {{"+15005550001", ringback::engine::number_kind::long_code, 1.0}};
  t.owner_phone = "+15005550002";
  t.timezone = "America/Denver";
  return t;
}

context missed_call() {
  return call_context("CA0123", "+15005550006", "+15005550001", acme());
}

workflow load_ok(std::string_view text) {
  auto r = load_string(text, "wf.yaml");
  EXPECT_TRUE(r.ok()) << to_string(r.diagnostics);
  return r.value.value_or(workflow{});
}

std::string one_step(std::string_view fields) {
  return "name: w\ntrigger: call.missed\nsteps:\n  - id: s\n    send_sms: "
         + std::string(fields) + "\n";
}

} // namespace

TEST(Interpreter, TheShippedWorkflowLoadsCleanAndSendsTwoTexts) {
  auto r = load_file(RINGBACK_SOURCE_DIR "/workflows/missed_call.yaml");
  ASSERT_TRUE(r.ok()) << to_string(r.diagnostics);
  const auto& wf = *r.value;
  EXPECT_EQ(wf.name, "missed_call_text_back");
  EXPECT_EQ(wf.trigger, "call.missed");
  auto out = run(wf, missed_call());
  EXPECT_EQ(out.workflow, "missed_call_text_back");
  ASSERT_EQ(out.sms.size(), 2u);
  EXPECT_EQ(out.sms[0].step_id, "text_back");
  EXPECT_EQ(out.sms[0].to, "+15005550006");
  EXPECT_EQ(out.sms[0].from, "+15005550001");
  EXPECT_EQ(out.sms[0].body,
            "Sorry we missed your call at Acme Plumbing! We'll get back to you "
            "shortly. Reply here to text us.");
  EXPECT_EQ(out.sms[1].step_id, "tell_owner");
  EXPECT_EQ(out.sms[1].to, "+15005550002");
  EXPECT_EQ(out.sms[1].from, "+15005550001");
  EXPECT_EQ(
    out.sms[1].body,
    "Missed call from +15005550006 to +15005550001. We texted them back.");
  ASSERT_EQ(out.trace.size(), 2u);
  EXPECT_EQ(out.trace[0].step_id, "text_back");
  EXPECT_EQ(out.trace[0].type, "send_sms");
  EXPECT_EQ(out.trace[0].outcome, step_outcome::ok);
  EXPECT_EQ(out.trace[0].detail, "");
  EXPECT_EQ(out.trace[1].outcome, step_outcome::ok);
}

TEST(Interpreter, TheShippedDirectoryHasOneCallMissedWorkflow) {
  auto c = load_directory(RINGBACK_SOURCE_DIR "/workflows");
  ASSERT_TRUE(c.ok()) << to_string(c.diagnostics());
  ASSERT_EQ(c.for_trigger("call.missed").size(), 1u);
  EXPECT_EQ(c.for_trigger("call.missed")[0]->name, "missed_call_text_back");
  EXPECT_TRUE(c.for_trigger("call.answered").empty());
}

TEST(Interpreter, RunIsDeterministic) {
  auto wf = load_ok(one_step("{to: '{{ call.from }}', body: 'x'}"));
  auto a = run(wf, missed_call());
  auto b = run(wf, missed_call());
  ASSERT_EQ(a.sms.size(), 1u);
  EXPECT_EQ(a.sms[0].body, b.sms[0].body);
  EXPECT_EQ(a.trace.size(), b.trace.size());
}

TEST(Interpreter, FromCanBeOverridden) {
  auto wf = load_ok(
    one_step("{to: '{{ call.from }}', from: '+1 (500) 555-0009', body: 'hi'}"));
  auto out = run(wf, missed_call());
  ASSERT_EQ(out.sms.size(), 1u);
  EXPECT_EQ(out.sms[0].from, "+15005550009");
}

TEST(Interpreter, AWithheldCallerIdSkipsTheTextBack) {
  auto wf = load_ok(one_step("{to: '{{ call.from }}', body: 'hi'}"));
  auto ctx = call_context("CA1", "anonymous", "+15005550001", acme());
  auto out = run(wf, ctx);
  EXPECT_TRUE(out.sms.empty());
  ASSERT_EQ(out.trace.size(), 1u);
  EXPECT_EQ(out.trace[0].outcome, step_outcome::skipped);
  EXPECT_EQ(out.trace[0].detail, "to: 'anonymous' is not a phone number");
}

TEST(Interpreter, OutcomesAndDetailsArePinned) {
  auto wf = load_ok(
    one_step("{to: '{{ call.from }}', from: '{{ call.sid }}', body: 'hi'}"));
  auto out = run(wf, missed_call());
  EXPECT_TRUE(out.sms.empty());
  EXPECT_EQ(out.trace[0].outcome, step_outcome::failed);
  EXPECT_EQ(out.trace[0].detail, "from: 'CA0123' is not a phone number");

  wf = load_ok(one_step("{to: '{{ call.to }}', body: 'hi'}"));
  out = run(wf, missed_call());
  EXPECT_EQ(out.trace[0].outcome, step_outcome::skipped);
  EXPECT_EQ(out.trace[0].detail,
            "to and from are the same number +15005550001");

  wf = load_ok(
    one_step("{to: '{{ call.from }}', body: '{{ tenant.timezone }}'}"));
  auto ctx = missed_call();
  ctx["tenant.timezone"] = " ";
  out = run(wf, ctx);
  EXPECT_EQ(out.trace[0].outcome, step_outcome::skipped);
  EXPECT_EQ(out.trace[0].detail, "body is empty");

  ctx.erase("tenant.timezone");
  out = run(wf, ctx);
  EXPECT_EQ(out.trace[0].detail, "body is empty");

  wf = load_ok(
    one_step("{to: '{{ call.from }}', body: 'at {{ tenant.name }}'}"));
  ctx = missed_call();
  ctx.erase("tenant.name");
  out = run(wf, ctx);
  ASSERT_EQ(out.sms.size(), 1u);
  EXPECT_EQ(out.sms[0].body, "at ");
  EXPECT_EQ(out.trace[0].outcome, step_outcome::ok);
  EXPECT_EQ(out.trace[0].detail,
            "missing variables rendered empty: tenant.name");

  ctx = missed_call();
  ctx["call.from"] = std::string(100, 'x');
  wf = load_ok(one_step("{to: '{{ call.from }}', body: 'x'}"));
  out = run(wf, ctx);
  EXPECT_EQ(out.trace[0].detail,
            "to: '" + std::string(32, 'x') + "...' is not a phone number");
}

TEST(Interpreter, LongBodiesAreCutTo1600Characters) {
  auto wf
    = load_ok(one_step("{to: '{{ call.from }}', body: '{{ tenant.name }}'}"));
  auto ctx = missed_call();
  std::string name;
  for (int i = 0; i < 2000; ++i) {
    name += "é";
  }
  ctx["tenant.name"] = name;
  auto out = run(wf, ctx);
  ASSERT_EQ(out.sms.size(), 1u);
  EXPECT_EQ(out.sms[0].body.size(), 3200u);
  EXPECT_EQ(out.trace[0].detail, "body truncated to 1600 characters");
}

TEST(Interpreter, StepsWithoutIdGetTheirIndex) {
  auto wf = load_ok(
    "name: w\ntrigger: call.missed\nsteps:\n"
    "  - send_sms: {to: '{{ call.from }}', body: a}\n"
    "  - id: second\n    send_sms: {to: '{{ call.from }}', body: b}\n"
    "  - send_sms: {to: '{{ call.from }}', body: c}\n");
  auto out = run(wf, missed_call());
  ASSERT_EQ(out.trace.size(), 3u);
  EXPECT_EQ(out.trace[0].step_id, "#0");
  EXPECT_EQ(out.trace[1].step_id, "second");
  EXPECT_EQ(out.trace[2].step_id, "#2");
  EXPECT_EQ(out.sms[2].step_id, "#2");
}

TEST(Interpreter, AThrowingExecutorFailsItsStepOnly) {
  language lang;
  lang.triggers.add({"call.missed", "", call_variables()});
  lang.steps.add(send_sms_step());
  step_spec boom;
  boom.type = "boom";
  boom.execute = [](const step&, const context&, run_result&) -> step_result {
    throw std::runtime_error("kaput");
  };
  ASSERT_TRUE(lang.steps.add(boom));
  EXPECT_FALSE(lang.steps.add(boom));
  auto r = load_string("name: w\ntrigger: call.missed\nsteps:\n  - boom: {}\n"
                       "  - send_sms: {to: '{{ call.from }}', body: hi}\n",
                       "wf.yaml", lang);
  ASSERT_TRUE(r.ok()) << to_string(r.diagnostics);
  auto out = run(*r.value, missed_call());
  ASSERT_EQ(out.trace.size(), 2u);
  EXPECT_EQ(out.trace[0].outcome, step_outcome::failed);
  EXPECT_EQ(out.trace[0].detail, "internal error: kaput");
  EXPECT_EQ(out.trace[1].outcome, step_outcome::ok);
  EXPECT_EQ(out.sms.size(), 1u);
}

TEST(Interpreter, OutcomeNamesRoundTrip) {
  for (auto x :
       {step_outcome::ok, step_outcome::skipped, step_outcome::failed}) {
    EXPECT_EQ(parse_step_outcome(to_string(x)), x);
  }
  EXPECT_EQ(parse_step_outcome("nope"), std::nullopt);
}

TEST(Interpreter, CallContextFromACallRecord) {
  ringback::engine::call_record c;
  c.call_sid = "CA9";
  c.from = "+15005550006";
  c.to = "+15005550001";
  auto ctx = call_context(c, acme());
  EXPECT_EQ(ctx.size(), call_variables().size());
  for (const auto& v : call_variables()) {
    EXPECT_EQ(ctx.count(v), 1u) << v;
  }
  EXPECT_EQ(ctx["call.sid"], "CA9");
  EXPECT_EQ(ctx["tenant.owner_phone"], "+15005550002");
}

TEST(Interpreter, HandBuiltStepsFailCleanly) {
  workflow wf;
  wf.name = "w";
  step s;
  s.type = "send_sms";
  s.spec = default_language().steps.find("send_sms");
  wf.steps.push_back(s);
  step t;
  t.type = "mystery";
  wf.steps.push_back(t);
  auto out = run(wf, missed_call());
  ASSERT_EQ(out.trace.size(), 2u);
  EXPECT_EQ(out.trace[0].outcome, step_outcome::failed);
  EXPECT_EQ(out.trace[0].detail, "the step lacks 'to', 'from' or 'body'");
  EXPECT_EQ(out.trace[1].outcome, step_outcome::failed);
  EXPECT_EQ(out.trace[1].detail, "no executor for step type 'mystery'");
  EXPECT_TRUE(out.sms.empty());
}
