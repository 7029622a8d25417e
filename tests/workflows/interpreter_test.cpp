// How runs go: control flow, suspension and resumption, the serialized state,
// bounds and failures. What each step asks for is in steps_test.cpp.
#include "ringback/workflows/interpreter.hpp"

#include "ringback/workflows/calendar.hpp"
#include "ringback/workflows/contexts.hpp"
#include "ringback/workflows/loader.hpp"
#include "ringback/workflows/program.hpp"

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using namespace ringback::workflows;
using ringback::engine::run_status;

namespace {

constexpr ringback::engine::epoch_ms t0 = 1'790'000'000'000;

ringback::engine::tenant acme() {
  ringback::engine::tenant t;
  t.id = "acme";
  t.name = "Acme Plumbing";
  t.numbers = {{"+15005550001", ringback::engine::number_kind::long_code, 1.0}};
  t.owner_phone = "+15005550002";
  t.timezone = "America/Denver";
  return t;
}

context call() {
  auto ctx = call_context("CA1", "+15005550006", "+15005550001", acme());
  ctx["business_hours"] = value{true};
  return ctx;
}

context sms(std::string body = "hello") {
  ringback::engine::inbound_message m;
  m.message_sid = "SM1";
  m.from = "+15005550007";
  m.to = "+15005550001";
  m.body = std::move(body);
  auto ctx = sms_context(m, acme());
  ctx["business_hours"] = value{true};
  return ctx;
}

workflow_ptr load(std::string_view trigger, std::string_view steps) {
  auto text = "name: w\ntrigger: " + std::string(trigger) + "\nsteps:\n"
              + std::string(steps);
  auto r = load_string(text, "wf.yaml");
  EXPECT_TRUE(r.ok()) << to_string(r.diagnostics);
  return r.value;
}

std::string trace_of(const segment_result& r) {
  std::string out;
  for (const auto& t : r.trace)
    out += t.step_id + " " + t.type + " " + to_string(t.outcome) + ": "
           + t.detail + "\n";
  return out;
}

std::string logs_of(const segment_result& r) {
  std::string out;
  for (const auto& l : r.fx.logs)
    out += l.text + ";";
  return out;
}

resume_event event(resume_event::kind k) {
  resume_event ev;
  ev.what = k;
  return ev;
}

resume_event dial_result(std::string status, std::int64_t duration = 0) {
  auto ev = event(resume_event::kind::dial);
  ev.status = std::move(status);
  ev.duration = duration;
  return ev;
}

resume_event reply(std::string body) {
  auto ev = event(resume_event::kind::reply);
  ev.body = std::move(body);
  ev.from = "+15005550007";
  ev.sid = "SM2";
  return ev;
}

} // namespace

// -- control flow
// ----------------------------------------------------------------

TEST(Interpreter, RunsStepsInOrderAndFinishes) {
  auto w = load("sms.received", "  - log: a\n  - log: b\n");
  ASSERT_TRUE(w);
  auto r = start(*w, sms(), t0);
  EXPECT_EQ(r.status, run_status::finished);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(logs_of(r), "a;b;");
  EXPECT_EQ(r.state.executed, 2);
  EXPECT_EQ(r.state.waiting_for, "");
  EXPECT_EQ(r.state.vars.at("sms.body"), value{"hello"});
}

TEST(Interpreter, IfElse) {
  auto w = load("sms.received", "  - if: sms.body contains \"stop\"\n    then: "
                                "[log: opted out]\n    else: [log: kept]\n  - "
                                "log: end\n");
  ASSERT_TRUE(w);
  auto a = start(*w, sms("please stop"), t0);
  EXPECT_EQ(logs_of(a), "opted out;end;");
  EXPECT_EQ(trace_of(a), "#0 if ok: true: then\n#1 log ok: \n#3 log ok: \n");
  auto b = start(*w, sms("hi"), t0);
  EXPECT_EQ(logs_of(b), "kept;end;");
  EXPECT_EQ(trace_of(b), "#0 if ok: false: else\n#2 log ok: \n#3 log ok: \n");
}

TEST(Interpreter, AConditionThatErrorsTakesElse) {
  auto w = load("sms.received", "  - if: sms.body > 3\n    then: [log: then]\n"
                                "    else: [log: else]\n");
  ASSERT_TRUE(w);
  auto r = start(*w, sms(), t0);
  EXPECT_EQ(r.status, run_status::finished);
  EXPECT_EQ(logs_of(r), "else;");
  ASSERT_FALSE(r.trace.empty());
  EXPECT_EQ(r.trace[0].outcome, step_outcome::failed);
  EXPECT_EQ(r.trace[0].detail,
            "condition failed (cannot compare string with number): taking "
            "'else'");
}

TEST(Interpreter, AMissingVariableReadsAsNullAndIsNoted) {
  auto w = load("sms.received", "  - if: sms.body\n    then: [log: yes]\n    "
                                "else: [log: no]\n");
  ASSERT_TRUE(w);
  auto ctx = sms();
  ctx.erase("sms.body");
  auto r = start(*w, ctx, t0);
  EXPECT_EQ(logs_of(r), "no;");
  EXPECT_EQ(r.trace[0].detail, "false: else; missing variables: sms.body");
}

TEST(Interpreter, Switch) {
  auto w = load("sms.received",
                "  - switch: sms.body | trim | lower\n    "
                "cases:\n      \"yes\": [log: confirmed]\n      "
                "\"2\": [log: two]\n    default: [log: other]\n"
                "  - log: end\n");
  ASSERT_TRUE(w);
  auto a = start(*w, sms(" YES "), t0);
  EXPECT_EQ(logs_of(a), "confirmed;end;");
  EXPECT_EQ(a.trace[0].detail, "case 'yes'");
  EXPECT_EQ(logs_of(start(*w, sms("2"), t0)), "two;end;");
  auto c = start(*w, sms("maybe"), t0);
  EXPECT_EQ(logs_of(c), "other;end;");
  EXPECT_EQ(c.trace[0].detail, "default");
  // A number subject compares as text.
  auto n = load("sms.received", "  - switch: sms.body | number\n    cases:\n   "
                                "   \"2\": [log: two]\n");
  ASSERT_TRUE(n);
  EXPECT_EQ(logs_of(start(*n, sms("2.0"), t0)), "two;");
  // A subject that errors takes the default.
  auto e = load("sms.received", "  - switch: sms.body > 1\n    cases:\n      "
                                "\"true\": [log: t]\n    default: [log: d]\n");
  ASSERT_TRUE(e);
  auto r = start(*e, sms(), t0);
  EXPECT_EQ(logs_of(r), "d;");
  EXPECT_EQ(r.trace[0].outcome, step_outcome::failed);
  EXPECT_EQ(r.trace[0].detail,
            "subject failed (cannot compare string with number): default");
}

TEST(Interpreter, StopEndsTheRun) {
  auto w = load("sms.received",
                "  - if: sms.body == \"stop\"\n    then: [stop: "
                "\"opted out by {{ sms.from }}\"]\n  - log: "
                "after\n");
  ASSERT_TRUE(w);
  auto a = start(*w, sms("stop"), t0);
  EXPECT_EQ(a.status, run_status::finished);
  EXPECT_EQ(logs_of(a), "");
  EXPECT_EQ(trace_of(a), "#0 if ok: true: then\n#1 stop ok: opted out by "
                         "+15005550007\n");
  EXPECT_EQ(logs_of(start(*w, sms("go"), t0)), "after;");
}

TEST(Interpreter, FailedStepsDoNotStopTheRun) {
  auto w = load("sms.received", "  - http: {url: \"{{ sms.body }}\"}\n  - "
                                "tag_contact: \"{{ sms.body }}!\"\n  - log: "
                                "still here\n");
  ASSERT_TRUE(w);
  auto r = start(*w, sms(), t0);
  EXPECT_EQ(r.status, run_status::finished);
  EXPECT_EQ(logs_of(r), "still here;");
  ASSERT_EQ(r.trace.size(), 3u);
  EXPECT_EQ(r.trace[0].outcome, step_outcome::failed);
  EXPECT_EQ(r.trace[1].outcome, step_outcome::failed);
  EXPECT_EQ(r.trace[2].outcome, step_outcome::ok);
}

TEST(Interpreter, AThrowingStepFailsAloneAndTheRunGoesOn) {
  language lang;
  lang.triggers.add({"t", "A trigger.", {}});
  step_spec boom;
  boom.type = "boom";
  boom.execute = [](const step&, step_frame&) -> step_result {
    throw std::runtime_error("kaput");
  };
  lang.steps.add(boom);
  step_spec note;
  note.type = "note";
  note.execute = [](const step& s, step_frame& f) {
    f.fx.logs.push_back({s.display_id(), "info", "noted"});
    return step_result{};
  };
  lang.steps.add(note);
  auto r = load_string("name: w\ntrigger: t\nsteps:\n  - boom:\n  - note:\n",
                       "wf.yaml", lang);
  ASSERT_TRUE(r.ok()) << to_string(r.diagnostics);
  auto out = start(*r.value, {}, t0);
  EXPECT_EQ(out.status, run_status::finished);
  EXPECT_EQ(trace_of(out), "#0 boom failed: internal error: kaput\n#1 note ok: "
                           "\n");
  EXPECT_EQ(logs_of(out), "noted;");
}

// -- loops
// -----------------------------------------------------------------------

TEST(Interpreter, RepeatTimes) {
  auto w = load("sms.received",
                "  - repeat: {times: 3}\n    steps: [log: \"pass "
                "{{ loop.index }}\"]\n  - log: end\n");
  ASSERT_TRUE(w);
  auto r = start(*w, sms(), t0);
  EXPECT_EQ(r.status, run_status::finished);
  EXPECT_EQ(logs_of(r), "pass 0;pass 1;pass 2;end;");
  EXPECT_EQ(trace_of(r), "#1 log ok: \n#1 log ok: \n#1 log ok: \n#0 repeat ok: "
                         "done after 3 pass(es)\n#2 log ok: \n");
}

TEST(Interpreter, RepeatUntil) {
  auto w = load("sms.received",
                "  - set: {n: \"{{ 0 }}\"}\n  - repeat: {times: "
                "10, until: vars.n >= 2}\n    steps:\n      - "
                "set: {n: \"{{ vars.n + 1 }}\"}\n      - log: "
                "\"{{ vars.n }}\"\n");
  ASSERT_TRUE(w);
  auto r = start(*w, sms(), t0);
  EXPECT_EQ(logs_of(r), "1;2;");
  EXPECT_EQ(r.trace.back().detail, "done after 2 pass(es)");
  // `until` is checked after a pass, so the body runs at least once.
  auto once = load("sms.received", "  - repeat: {times: 5, until: true}\n    "
                                   "steps: [log: x]\n");
  ASSERT_TRUE(once);
  EXPECT_EQ(logs_of(start(*once, sms(), t0)), "x;");
  // An `until` that errors ends the loop.
  auto bad = load("sms.received", "  - repeat: {times: 5, until: sms.body > "
                                  "1}\n    steps: [log: x]\n");
  ASSERT_TRUE(bad);
  EXPECT_EQ(logs_of(start(*bad, sms(), t0)), "x;");
}

TEST(Interpreter, NestedLoopsKeepTheirOwnIndex) {
  auto w = load("sms.received",
                "  - repeat: {times: 2}\n    steps:\n      - "
                "repeat: {times: 2}\n        steps: [log: "
                "\"{{ loop.index }}\"]\n      - log: \"outer {{ "
                "loop.index }}\"\n");
  ASSERT_TRUE(w);
  auto r = start(*w, sms(), t0);
  EXPECT_EQ(logs_of(r), "0;1;outer 0;0;1;outer 1;");
}

TEST(Interpreter, MaxStepsBoundsARun) {
  auto w = load("sms.received", "  - repeat: {times: 100}\n    steps:\n      - "
                                "repeat: {times: 100}\n        steps: [log: "
                                "x]\n");
  ASSERT_TRUE(w);
  auto r = start(*w, sms(), t0);
  EXPECT_EQ(r.status, run_status::failed);
  EXPECT_EQ(r.error,
            "the run executed 1000 steps, the limit: a loop that never "
            "ends?");
  EXPECT_EQ(r.fx.logs.size(), 1000u);
  run_limits small;
  small.max_steps = 5;
  auto s = start(*w, sms(), t0, small);
  EXPECT_EQ(s.status, run_status::failed);
  EXPECT_EQ(s.fx.logs.size(), 5u);
  EXPECT_EQ(s.state.executed, 5);
}

// -- suspension and resumption
// -----------------------------------------------------

TEST(Interpreter, DialSuspendsAndResumesWithTheResult) {
  auto w = load("call.incoming",
                "  - say: Connecting you\n  - dial:\n  - if: "
                "dial.answered\n    then: [hangup: ]\n    else:\n"
                "      - say: \"Sorry, {{ dial.status }}\"\n"
                "      - record_voicemail:\n");
  ASSERT_TRUE(w);
  auto a = start(*w, call(), t0);
  EXPECT_EQ(a.status, run_status::waiting);
  EXPECT_EQ(a.state.waiting_for, "dial");
  EXPECT_EQ(a.state.waiting_op, 1u);
  EXPECT_EQ(a.state.pc, 1u); // moves on when the run resumes
  ASSERT_EQ(a.fx.voice.size(), 2u);
  auto b = resume(*w, a.state, dial_result("no-answer"), {}, t0 + 20'000);
  EXPECT_EQ(b.status, run_status::waiting);
  EXPECT_EQ(b.state.waiting_for, "recording");
  ASSERT_EQ(b.fx.voice.size(), 2u); // the answer to the dial-result webhook
  EXPECT_EQ(b.fx.voice[0].text, "Sorry, no-answer");
  auto c = resume(*w, b.state, event(resume_event::kind::recording), {},
                  t0 + 80'000);
  EXPECT_EQ(c.status, run_status::finished);
  EXPECT_TRUE(c.fx.voice.empty()); // nothing more: the carrier hangs up
  auto d = resume(*w, a.state, dial_result("completed", 30), {}, t0 + 60'000);
  EXPECT_EQ(d.status, run_status::finished);
  ASSERT_EQ(d.fx.voice.size(), 1u);
  EXPECT_EQ(d.fx.voice[0].what, ringback::engine::voice_verb::kind::hangup);
}

TEST(Interpreter, ADialInALoop) {
  auto w = load("call.incoming",
                "  - repeat: {times: 2, until: "
                "dial.answered}\n    steps: [dial: ]\n  - say: "
                "\"{{ dial.status }}\"\n");
  ASSERT_TRUE(w);
  auto a = start(*w, call(), t0);
  ASSERT_EQ(a.state.waiting_for, "dial");
  auto b = resume(*w, a.state, dial_result("busy"), {}, t0);
  ASSERT_EQ(b.state.waiting_for, "dial"); // second pass
  EXPECT_EQ(b.state.counters, std::vector<std::int64_t>{1});
  auto c = resume(*w, b.state, dial_result("busy"), {}, t0);
  EXPECT_EQ(c.status, run_status::finished);
  ASSERT_EQ(c.fx.voice.size(), 1u);
  EXPECT_EQ(c.fx.voice[0].text, "busy");
  auto d = resume(*w, a.state, dial_result("completed"), {}, t0);
  EXPECT_EQ(d.status, run_status::finished);
  EXPECT_EQ(d.fx.voice[0].text, "completed");
}

TEST(Interpreter, TimerSuspendsUntilWakeAt) {
  auto w = load("call.missed",
                "  - send_sms: {to: \"{{ call.from }}\", body: "
                "sorry}\n  - wait: 10m\n  - send_sms: {to: "
                "\"{{ call.from }}\", body: \"still there?\"}\n");
  ASSERT_TRUE(w);
  auto a = start(*w, call(), t0);
  EXPECT_EQ(a.status, run_status::waiting);
  EXPECT_EQ(a.state.waiting_for, "timer");
  EXPECT_EQ(a.state.wake_at, t0 + 600'000);
  ASSERT_EQ(a.fx.sms.size(), 1u);
  auto b = resume(*w, a.state, event(resume_event::kind::timer), {},
                  t0 + 600'000);
  EXPECT_EQ(b.status, run_status::finished);
  ASSERT_EQ(b.fx.sms.size(), 1u);
  EXPECT_EQ(b.fx.sms[0].body, "still there?");
}

TEST(Interpreter, ReplyResumesOnReplyAndTimeoutOnTimeout) {
  auto w
    = load("call.missed",
           "  - send_sms: {to: \"{{ call.from }}\", body: \"Rate us 1-5\"}\n"
           "  - wait_for_reply: {timeout: 1d}\n    on_reply:\n      - "
           "notify_owner: \"Rating from {{ reply.from }}: {{ reply.body "
           "}} ({{ reply.sid }})\"\n    on_timeout:\n      - log: no "
           "rating\n  - log: end\n");
  ASSERT_TRUE(w);
  auto a = start(*w, call(), t0);
  ASSERT_EQ(a.status, run_status::waiting);
  EXPECT_EQ(a.state.waiting_for, "reply");
  EXPECT_EQ(a.state.contact, "+15005550006");
  EXPECT_EQ(a.state.wake_at, t0 + 86'400'000);
  auto ev = reply("5");
  ev.from = "+15005550006";
  auto b = resume(*w, a.state, ev, {}, t0 + 5000);
  EXPECT_EQ(b.status, run_status::finished);
  ASSERT_EQ(b.fx.sms.size(), 1u);
  EXPECT_EQ(b.fx.sms[0].body, "Rating from +15005550006: 5 (SM2)");
  EXPECT_EQ(logs_of(b), "end;");
  EXPECT_EQ(b.trace[0].detail, "reply from +15005550006");
  EXPECT_EQ(b.state.contact, "");
  EXPECT_EQ(b.state.wake_at, 0);
  auto c = resume(*w, a.state, event(resume_event::kind::timer), {},
                  a.state.wake_at);
  EXPECT_EQ(c.status, run_status::finished);
  EXPECT_TRUE(c.fx.sms.empty());
  EXPECT_EQ(logs_of(c), "no rating;end;");
  EXPECT_EQ(c.trace[0].detail, "no reply in time");
}

TEST(Interpreter, HttpSuspendsAndFlattensJson) {
  auto w = load("sms.received", "  - id: crm\n    http: {url: "
                                "\"https://crm.example/c\"}\n  - if: "
                                "steps.crm.ok and steps.crm.json.vip\n    "
                                "then: [notify_owner: \"VIP {{ "
                                "steps.crm.json.name }} texted\"]\n");
  ASSERT_TRUE(w);
  auto a = start(*w, sms(), t0);
  ASSERT_EQ(a.state.waiting_for, "http");
  ASSERT_TRUE(a.fx.http);
  auto ev = event(resume_event::kind::http);
  ev.http_status = 200;
  ev.body = R"({"name":"Ann","vip":true})";
  auto b = resume(*w, a.state, ev, {}, t0);
  EXPECT_EQ(b.status, run_status::finished);
  ASSERT_EQ(b.fx.sms.size(), 1u);
  EXPECT_EQ(b.fx.sms[0].body, "VIP Ann texted");
  ev.body = R"({"name":"Bob","vip":false})";
  EXPECT_TRUE(resume(*w, a.state, ev, {}, t0).fx.sms.empty());
}

TEST(Interpreter, ResumeWithTheWrongEventFailsCleanly) {
  auto w = load("sms.received", "  - wait: 1h\n  - log: x\n");
  ASSERT_TRUE(w);
  auto a = start(*w, sms(), t0);
  auto b = resume(*w, a.state, reply("hi"), {}, t0);
  EXPECT_EQ(b.status, run_status::failed);
  EXPECT_EQ(b.error, "the run waits for timer, not for reply");
  EXPECT_EQ(b.state.waiting_for, "timer"); // untouched
  EXPECT_TRUE(b.fx.empty());
  auto done = start(*load("sms.received", "  - log: x\n"), sms(), t0);
  auto c = resume(*w, done.state, event(resume_event::kind::timer), {}, t0);
  EXPECT_EQ(c.status, run_status::failed);
  EXPECT_EQ(c.error, "the run waits for nothing, not for timer");
  // A state that does not fit the workflow (another version).
  auto st = a.state;
  st.waiting_op = 99;
  auto d = resume(*w, st, event(resume_event::kind::timer), {}, t0);
  EXPECT_EQ(d.status, run_status::failed);
  EXPECT_EQ(d.error,
            "the run's state does not fit workflow 'w' version " + w->version);
  st = a.state;
  st.counters = {1, 2};
  EXPECT_EQ(resume(*w, st, event(resume_event::kind::timer), {}, t0).status,
            run_status::failed);
  st = a.state;
  st.waiting_op = 1; // the log after the wait: it never waits
  EXPECT_EQ(resume(*w, st, event(resume_event::kind::timer), {}, t0).status,
            run_status::failed);
  st.waiting_op = 2; // the halt: not a step
  EXPECT_EQ(resume(*w, st, event(resume_event::kind::timer), {}, t0).status,
            run_status::failed);
}

TEST(Interpreter, AWorkflowThatIsNotCompiledFails) {
  workflow w;
  w.name = "raw";
  auto r = start(w, {}, t0);
  EXPECT_EQ(r.status, run_status::failed);
  EXPECT_EQ(r.error, "workflow 'raw' is not compiled");
}

// -- transcription entry
// -----------------------------------------------------------

TEST(Interpreter, StartAtTheTranscriptionEntry) {
  auto w = load("call.incoming",
                "  - say: Leave a message\n  - id: vm\n    record_voicemail: "
                "{transcribe: true}\n    on_transcription:\n      - "
                "notify_owner: \"Voicemail from {{ call.from }} ({{ "
                "voicemail.duration }}s): {{ voicemail.transcription }}\"\n  "
                "- log: recorded\n");
  ASSERT_TRUE(w);
  auto a = start(*w, call(), t0);
  ASSERT_EQ(a.state.waiting_for, "recording");
  auto ev = event(resume_event::kind::recording);
  ev.url = "https://x/RE1";
  ev.duration = 9;
  auto b = resume(*w, a.state, ev, {}, t0 + 30'000);
  EXPECT_EQ(b.status, run_status::finished);
  EXPECT_EQ(logs_of(b), "recorded;");
  EXPECT_TRUE(b.fx.sms.empty()); // the branch waits for the transcription
  // The host starts the branch as its own run with the parent's variables.
  auto vars = b.state.vars;
  vars["voicemail.transcription"] = value{"Please call back"};
  vars["voicemail.transcription_status"] = value{"completed"};
  const auto entry = transcription_entry(w->steps[1]);
  EXPECT_EQ(entry, "transcription:1");
  auto c = start_at(*w, entry, vars, t0 + 90'000);
  EXPECT_EQ(c.status, run_status::finished);
  ASSERT_EQ(c.fx.sms.size(), 1u);
  EXPECT_EQ(c.fx.sms[0].to, "+15005550002");
  EXPECT_EQ(c.fx.sms[0].body,
            "Voicemail from +15005550006 (9s): Please call back");
  EXPECT_EQ(logs_of(c), ""); // only the branch runs
  auto d = start_at(*w, "transcription:7", vars, t0);
  EXPECT_EQ(d.status, run_status::failed);
  EXPECT_EQ(d.error, "workflow 'w' has no entry 'transcription:7'");
}

// -- the stored state
// ------------------------------------------------------------

TEST(Interpreter, RunStateRoundTrips) {
  run_state st;
  st.pc = 7;
  st.vars = {{"a", value{}},
             {"b", value{true}},
             {"c", value{2.5}},
             {"d", value{"text \"quoted\" \xc3\xa9"}},
             {"e", value{-3}}};
  st.counters = {0, 4};
  st.executed = 12;
  st.waiting_for = "reply";
  st.waiting_op = 5;
  st.wake_at = t0;
  st.contact = "+15005550006";
  auto json = st.to_json();
  std::string error;
  auto back = run_state::from_json(json, &error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(back->pc, st.pc);
  EXPECT_EQ(back->vars, st.vars);
  EXPECT_EQ(back->counters, st.counters);
  EXPECT_EQ(back->executed, st.executed);
  EXPECT_EQ(back->waiting_for, st.waiting_for);
  EXPECT_EQ(back->waiting_op, st.waiting_op);
  EXPECT_EQ(back->wake_at, st.wake_at);
  EXPECT_EQ(back->contact, st.contact);
  EXPECT_EQ(back->to_json(), json);
  // A finished run has no waiting fields.
  run_state done;
  auto d = run_state::from_json(done.to_json());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->waiting_for, "");
  EXPECT_EQ(done.to_json(), R"({"pc":0,"vars":{},"counters":[],"executed":0})");
}

TEST(Interpreter, RunStateTextIsJsonForAnyStringAndNumber) {
  // The state is written without a JSON library's serializer: every byte
  // that needs escaping, text that is not ASCII, and numbers of every kind
  // must come back the same, and Boost.JSON must read the text as JSON.
  std::string every_control;
  for (int c = 1; c < 0x20; ++c)
    every_control.push_back(static_cast<char>(c));
  run_state st;
  st.vars = {
    {"controls", value{every_control + std::string(1, '\0') + "end"}},
    {"quotes and slashes", value{R"(a "b" \c\ /d/)"}},
    {"utf8 \xe2\x98\x8e", value{"caf\xc3\xa9 \xf0\x9f\x94\xa7 \x7f"}},
    {"empty", value{""}},
    {"tenth", value{0.1}},
    {"huge", value{1e300}},
    {"tiny", value{-5e-324}},
    {"negative zero", value{-0.0}},
    {"integer", value{123456789012345.0}},
    {"big integer", value{9007199254740993.0}},
    {"yes", value{true}},
    {"no", value{false}},
    {"nothing", value{}},
  };
  st.counters = {0, -1, std::numeric_limits<std::int64_t>::max()};
  st.executed = std::numeric_limits<std::int64_t>::min();
  st.waiting_for = "timer";
  st.contact = "\"+1\"\n";
  auto text = st.to_json();
  boost::system::error_code ec;
  auto parsed = boost::json::parse(text, ec);
  ASSERT_FALSE(ec) << ec.message() << " in " << text;
  EXPECT_EQ(parsed.at("vars").at("controls").as_string(),
            every_control + std::string(1, '\0') + "end");
  std::string error;
  auto back = run_state::from_json(text, &error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(back->vars, st.vars);
  EXPECT_TRUE(std::signbit(back->vars.at("negative zero").as_number()));
  EXPECT_EQ(back->counters, st.counters);
  EXPECT_EQ(back->executed, st.executed);
  EXPECT_EQ(back->contact, st.contact);
  EXPECT_NE(text.find(R"("a \"b\" \\c\\ /d/")"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(\u0001)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(\n)"), std::string::npos) << text;
  EXPECT_NE(text.find("\"tenth\":0.1,"), std::string::npos) << text;
}

TEST(Interpreter, RunStateRejectsWhatItDidNotWrite) {
  auto bad = [](std::string_view text) {
    std::string error;
    auto st = run_state::from_json(text, &error);
    EXPECT_FALSE(st) << text;
    return error;
  };
  EXPECT_EQ(bad("nope").rfind("run state is not JSON: ", 0), 0u);
  EXPECT_EQ(bad("[1]"), "run state is not a JSON object");
  EXPECT_EQ(bad("{}").rfind("run state is incomplete: ", 0), 0u);
  EXPECT_EQ(bad(R"({"pc":0,"vars":{"x":[1]},"counters":[],"executed":0})"),
            "run state variable 'x' has an unsupported type");
  EXPECT_EQ(bad(R"({"pc":-1,"vars":{},"counters":[],"executed":0})")
              .rfind("run state is incomplete: ", 0),
            0u);
  EXPECT_EQ(bad(R"({"pc":0,"vars":{},"counters":[],"executed":0,)"
                R"("waiting_for":"timer"})")
              .rfind("run state is incomplete: ", 0),
            0u);
  EXPECT_FALSE(run_state::from_json(""));
}

TEST(Interpreter, AResumedDeserializedStateRunsLikeTheOriginal) {
  auto w
    = load("call.missed",
           "  - set: {n: \"{{ 2 }}\"}\n  - repeat: {times: 3}\n    steps:\n"
           "      - wait: 1h\n      - log: \"{{ loop.index }} {{ vars.n "
           "}}\"\n  - wait_for_reply: {timeout: 1d}\n    on_reply: [log: "
           "\"{{ reply.body }}\"]\n    on_timeout: []\n");
  ASSERT_TRUE(w);
  auto r = start(*w, call(), t0);
  std::string logs;
  // Store and reload the state at every wait, as the host does.
  for (int i = 0; i < 10 && r.status == run_status::waiting; ++i) {
    auto stored = r.state.to_json();
    auto st = run_state::from_json(stored);
    ASSERT_TRUE(st);
    auto ev = r.state.waiting_for == "reply" ? reply("bye")
                                             : event(resume_event::kind::timer);
    auto direct = resume(*w, r.state, ev, {}, r.state.wake_at);
    r = resume(*w, *st, ev, {}, st->wake_at);
    EXPECT_EQ(trace_of(direct), trace_of(r));
    EXPECT_EQ(direct.state.to_json(), r.state.to_json());
    logs += logs_of(r);
  }
  EXPECT_EQ(r.status, run_status::finished);
  EXPECT_EQ(logs, "0 2;1 2;2 2;bye;");
}

TEST(Interpreter, FreshVariablesOverrideOnResume) {
  auto w = load("call.missed", "  - wait: 12h\n  - if: business_hours\n    "
                               "then: [log: \"open at {{ now.time }}\"]\n    "
                               "else: [log: \"closed at {{ now.time }}\"]\n");
  ASSERT_TRUE(w);
  auto t = acme();
  t.business_hours = {{"mon-fri", "08:00-17:00"}};
  auto cal = business_calendar::from_tenant(t);
  ASSERT_TRUE(cal.ok());
  // Thursday 2025-11-20 10:00 in Denver (17:00 UTC): open.
  const ringback::engine::epoch_ms thursday = 1'763'658'000'000;
  auto vars = call();
  add_calendar_variables(*cal.value, thursday, vars);
  ASSERT_EQ(vars.at("business_hours"), value{true});
  auto a = start(*w, vars, thursday);
  ASSERT_EQ(a.state.waiting_for, "timer");
  // 12 hours later it is 22:00: closed.
  context fresh;
  add_calendar_variables(*cal.value, a.state.wake_at, fresh);
  auto b = resume(*w, a.state, event(resume_event::kind::timer), fresh,
                  a.state.wake_at);
  EXPECT_EQ(logs_of(b), "closed at 22:00;");
  EXPECT_EQ(b.state.vars.at("business_hours"), value{false});
  // Without fresh variables the stale ones stay.
  auto c = resume(*w, a.state, event(resume_event::kind::timer), {},
                  a.state.wake_at);
  EXPECT_EQ(logs_of(c), "open at 10:00;");
}

TEST(Interpreter, RunsAreDeterministic) {
  auto w = load("sms.received",
                "  - set: {x: \"{{ sms.body | upper }}\"}\n  - "
                "notify_owner: \"{{ vars.x }}\"\n  - wait: 1h\n");
  ASSERT_TRUE(w);
  auto a = start(*w, sms(), t0);
  auto b = start(*w, sms(), t0);
  EXPECT_EQ(a.state.to_json(), b.state.to_json());
  EXPECT_EQ(trace_of(a), trace_of(b));
  ASSERT_EQ(a.fx.sms.size(), 1u);
  EXPECT_EQ(a.fx.sms[0].body, "HELLO");
}

TEST(Interpreter, Names) {
  EXPECT_STREQ(to_string(step_outcome::resumed), "resumed");
  EXPECT_EQ(parse_step_outcome("skipped"), step_outcome::skipped);
  EXPECT_EQ(parse_step_outcome("nope"), std::nullopt);
  EXPECT_STREQ(to_string(resume_event::kind::recording), "recording");
  EXPECT_STREQ(to_string(step_family::integration), "integration");
  EXPECT_STREQ(to_string(field_kind::text_list), "template list");
}
