// What each step type asks for (effects), its trace line, and what it sets
// when the run comes back to it.
#include "ringback/workflows/contexts.hpp"
#include "ringback/workflows/interpreter.hpp"
#include "ringback/workflows/language.hpp"
#include "ringback/workflows/loader.hpp"

#include <gtest/gtest.h>

using namespace ringback::workflows;
using ringback::engine::run_status;
using vk = ringback::engine::voice_verb::kind;

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
  return call_context("CA1", "+15005550006", "+15005550001", acme());
}

context sms(std::string body = "hello") {
  ringback::engine::inbound_message m;
  m.message_sid = "SM1";
  m.from = "+15005550007";
  m.to = "+15005550001";
  m.body = std::move(body);
  return sms_context(m, acme());
}

workflow_ptr load(std::string_view trigger, std::string_view steps) {
  auto text = "name: w\ntrigger: " + std::string(trigger) + "\nsteps:\n"
              + std::string(steps);
  auto r = load_string(text, "wf.yaml");
  EXPECT_TRUE(r.ok()) << to_string(r.diagnostics);
  return r.value;
}

/// Runs `steps` of `trigger` from the start.
segment_result run(std::string_view trigger, std::string_view steps,
                   context vars) {
  auto w = load(trigger, steps);
  if (!w) {
    segment_result failed;
    failed.status = run_status::failed;
    failed.error = "did not load";
    return failed;
  }
  return start(*w, std::move(vars), t0);
}

std::string trace_of(const segment_result& r) {
  std::string out;
  for (const auto& t : r.trace)
    out += t.step_id + " " + t.type + " " + to_string(t.outcome) + ": "
           + t.detail + "\n";
  return out;
}

resume_event recording_event() {
  resume_event ev;
  ev.what = resume_event::kind::recording;
  return ev;
}

resume_event timer_event() {
  resume_event ev;
  ev.what = resume_event::kind::timer;
  return ev;
}

std::string text(const context& vars, std::string_view name) {
  auto i = vars.find(name);
  return i == vars.end() ? "(unset)" : i->second.to_text();
}

} // namespace

// -- voice
// -----------------------------------------------------------------------

TEST(Steps, DialRingsTheOwnerByDefaultAndWaits) {
  auto r = run("call.incoming", "  - dial:\n", call());
  EXPECT_EQ(r.status, run_status::waiting);
  EXPECT_EQ(r.state.waiting_for, "dial");
  ASSERT_EQ(r.fx.voice.size(), 1u);
  const auto& v = r.fx.voice[0];
  EXPECT_EQ(v.what, vk::dial);
  EXPECT_EQ(v.numbers, std::vector<std::string>{"+15005550002"});
  EXPECT_EQ(v.timeout, std::chrono::seconds{0}); // the host's ring timeout
  EXPECT_EQ(v.caller_id, "");
  EXPECT_EQ(v.action_url, ""); // the host's to fill in
  EXPECT_EQ(trace_of(r), "#0 dial waiting: ringing +15005550002\n");
}

TEST(Steps, DialSeveralNumbersWithACallerId) {
  auto r
    = run("call.incoming",
          "  - dial:\n      to: [\"+1 (500) 555-0100\", \"{{ "
          "tenant.owner_phone }}\", \"not a number\"]\n      timeout: 30s\n"
          "      caller_id: \"{{ call.to }}\"\n",
          call());
  ASSERT_EQ(r.fx.voice.size(), 1u);
  EXPECT_EQ(r.fx.voice[0].numbers,
            (std::vector<std::string>{"+15005550100", "+15005550002"}));
  EXPECT_EQ(r.fx.voice[0].timeout, std::chrono::seconds{30});
  EXPECT_EQ(r.fx.voice[0].caller_id, "+15005550001");
  EXPECT_EQ(trace_of(r), "#0 dial waiting: ringing +15005550100, +15005550002 "
                         "for 30s; not a phone number: 'not a number'\n");
}

TEST(Steps, DialWithABadCallerIdShowsTheCallers) {
  auto r = run("call.incoming", "  - dial: {caller_id: private}\n", call());
  ASSERT_EQ(r.fx.voice.size(), 1u);
  EXPECT_EQ(r.fx.voice[0].caller_id, "");
  EXPECT_EQ(trace_of(r), "#0 dial waiting: ringing +15005550002; caller_id "
                         "'private' is not a phone number: showing the "
                         "caller's\n");
}

TEST(Steps, DialWithNoNumberFailsAndTheRunGoesOn) {
  auto r = run("call.incoming",
               "  - dial: \"{{ call.from | default('') }}x\"\n  - say: "
               "\"{{ dial.status }} {{ dial.answered }}\"\n",
               call());
  EXPECT_EQ(r.status, run_status::finished);
  ASSERT_EQ(r.fx.voice.size(), 1u);
  EXPECT_EQ(r.fx.voice[0].what, vk::say);
  EXPECT_EQ(r.fx.voice[0].text, "failed false");
  EXPECT_EQ(trace_of(r), "#0 dial failed: no number to dial; not a phone "
                         "number: '+15005550006x'\n#1 say ok: \n");
}

TEST(Steps, DialResultSetsDialVariables) {
  auto w = load("call.incoming", "  - dial:\n  - say: \"{{ dial.status }} {{ "
                                 "dial.answered }} {{ dial.duration }}\"\n");
  ASSERT_TRUE(w);
  for (auto [status, answered] :
       {std::pair<const char*, const char*>{"completed", "true"},
        {"answered", "true"},
        {"busy", "false"},
        {"no-answer", "false"},
        {"failed", "false"},
        {"canceled", "false"}}) {
    auto a = start(*w, call(), t0);
    resume_event ev;
    ev.what = resume_event::kind::dial;
    ev.status = status;
    ev.duration = 42;
    auto b = resume(*w, a.state, ev, {}, t0 + 1000);
    EXPECT_EQ(b.status, run_status::finished);
    ASSERT_EQ(b.fx.voice.size(), 1u) << status;
    EXPECT_EQ(b.fx.voice[0].text, std::string(status) + " " + answered + " 42");
    EXPECT_EQ(b.trace[0].outcome, step_outcome::resumed);
    EXPECT_EQ(b.trace[0].detail, std::string("dial ") + status + ", 42s");
  }
}

TEST(Steps, Say) {
  auto r
    = run("call.incoming",
          "  - say:\n      text: \"Thanks for calling {{ tenant.name }}\"\n"
          "      voice: Polly.Joanna\n      language: en-US\n      loop: 2\n",
          call());
  EXPECT_EQ(r.status, run_status::finished);
  ASSERT_EQ(r.fx.voice.size(), 1u);
  const auto& v = r.fx.voice[0];
  EXPECT_EQ(v.what, vk::say);
  EXPECT_EQ(v.text, "Thanks for calling Acme Plumbing");
  EXPECT_EQ(v.voice, "Polly.Joanna");
  EXPECT_EQ(v.language, "en-US");
  EXPECT_EQ(v.loop, 2);
  EXPECT_EQ(trace_of(r), "#0 say ok: \n");
}

TEST(Steps, SayNothingIsSkippedAndLongTextIsCut) {
  auto ctx = call();
  ctx["call.from"] = value{""};
  auto r = run("call.incoming", "  - say: \"{{ call.from }} \"\n  - hangup:\n",
               ctx);
  ASSERT_EQ(r.fx.voice.size(), 1u);
  EXPECT_EQ(r.fx.voice[0].what, vk::hangup);
  EXPECT_EQ(trace_of(r), "#0 say skipped: nothing to say\n#1 hangup ok: \n");
  ctx["call.from"] = value{std::string(5000, 'a')};
  r = run("call.incoming", "  - say: \"{{ call.from }}\"\n", ctx);
  ASSERT_EQ(r.fx.voice.size(), 1u);
  EXPECT_EQ(r.fx.voice[0].text.size(), 4096u);
  EXPECT_EQ(trace_of(r), "#0 say ok: text cut to 4096 characters\n");
}

TEST(Steps, Play) {
  auto r = run("call.incoming",
               "  - play: {url: \"https://x.example/a.mp3\", "
               "loop: 3}\n  - play: \"ftp://x/a.mp3\"\n  - "
               "hangup:\n",
               call());
  ASSERT_EQ(r.fx.voice.size(), 2u);
  EXPECT_EQ(r.fx.voice[0].what, vk::play);
  EXPECT_EQ(r.fx.voice[0].text, "https://x.example/a.mp3");
  EXPECT_EQ(r.fx.voice[0].loop, 3);
  EXPECT_EQ(r.fx.voice[1].what, vk::hangup);
  EXPECT_EQ(trace_of(r), "#0 play ok: \n#1 play failed: url 'ftp://x/a.mp3' is "
                         "not an http(s) URL\n#2 hangup ok: \n");
}

TEST(Steps, RecordVoicemail) {
  auto w = load("call.incoming",
                "  - say: Leave a message\n  - record_voicemail:\n      "
                "max_length: 1m\n      silence: 3s\n      beep: false\n      "
                "transcribe: true\n  - log: \"{{ voicemail.url }} {{ "
                "voicemail.duration }} {{ voicemail.recorded }}\"\n");
  ASSERT_TRUE(w);
  auto a = start(*w, call(), t0);
  EXPECT_EQ(a.status, run_status::waiting);
  EXPECT_EQ(a.state.waiting_for, "recording");
  ASSERT_EQ(a.fx.voice.size(), 2u);
  const auto& v = a.fx.voice[1];
  EXPECT_EQ(v.what, vk::record);
  EXPECT_EQ(v.max_length, std::chrono::seconds{60});
  EXPECT_EQ(v.timeout, std::chrono::seconds{3});
  EXPECT_FALSE(v.play_beep);
  // The host turns it into this step's transcription callback URL.
  EXPECT_EQ(v.transcribe_callback, "transcribe:1");
  EXPECT_EQ(a.trace.back().detail, "recording up to 1m");
  resume_event ev;
  ev.what = resume_event::kind::recording;
  ev.url = "https://api.twilio.com/rec/RE1";
  ev.duration = 17;
  auto b = resume(*w, a.state, ev, {}, t0 + 60'000);
  EXPECT_EQ(b.status, run_status::finished);
  ASSERT_EQ(b.fx.logs.size(), 1u);
  EXPECT_EQ(b.fx.logs[0].text, "https://api.twilio.com/rec/RE1 17 true");
  EXPECT_EQ(b.trace[0].detail, "recorded 17s");
  // Hung up before the beep: no recording.
  auto c = resume(*w, a.state, recording_event(), {}, t0 + 1000);
  ASSERT_EQ(c.fx.logs.size(), 1u);
  EXPECT_EQ(c.fx.logs[0].text, " 0 false");
  EXPECT_EQ(c.trace[0].detail, "no recording");
}

TEST(Steps, RecordVoicemailDefaults) {
  auto r = run("call.incoming", "  - record_voicemail:\n", call());
  ASSERT_EQ(r.fx.voice.size(), 1u);
  EXPECT_EQ(r.fx.voice[0].max_length, std::chrono::seconds{120});
  EXPECT_EQ(r.fx.voice[0].timeout, std::chrono::seconds{5});
  EXPECT_TRUE(r.fx.voice[0].play_beep);
  EXPECT_EQ(r.fx.voice[0].transcribe_callback, "");
}

TEST(Steps, HangupAndReject) {
  auto r = run("call.incoming", "  - hangup:\n", call());
  ASSERT_EQ(r.fx.voice.size(), 1u);
  EXPECT_EQ(r.fx.voice[0].what, vk::hangup);
  r = run("call.incoming", "  - reject:\n", call());
  ASSERT_EQ(r.fx.voice.size(), 1u);
  EXPECT_EQ(r.fx.voice[0].what, vk::reject);
  EXPECT_EQ(r.fx.voice[0].reason, "rejected");
  r = run("call.incoming", "  - reject: busy\n", call());
  EXPECT_EQ(r.fx.voice[0].reason, "busy");
  EXPECT_EQ(trace_of(r), "#0 reject ok: busy\n");
}

// -- messaging
// -------------------------------------------------------------------

TEST(Steps, SendSms) {
  auto r
    = run("call.missed",
          "  - id: text_back\n    send_sms:\n      to: \"{{ call.from }}\"\n"
          "      body: \"Sorry we missed you! {{ tenant.name }}\"\n",
          call());
  EXPECT_EQ(r.status, run_status::finished);
  ASSERT_EQ(r.fx.sms.size(), 1u);
  const auto& m = r.fx.sms[0];
  EXPECT_EQ(m.step_id, "text_back");
  EXPECT_EQ(m.to, "+15005550006");
  EXPECT_EQ(m.from, "+15005550001"); // tenant.number: the number called
  EXPECT_EQ(m.body, "Sorry we missed you! Acme Plumbing");
  EXPECT_TRUE(m.urgent);
  EXPECT_EQ(trace_of(r),
            "text_back send_sms ok: to +15005550006 from +15005550001\n");
}

TEST(Steps, SendSmsNormalizesAndMayWaitOutQuietHours) {
  auto r = run("call.missed",
               "  - send_sms:\n      to: \"+1 (500) 555-0100\"\n      from: "
               "\"+1 500 555 0001\"\n      body: later\n      urgent: false\n",
               call());
  ASSERT_EQ(r.fx.sms.size(), 1u);
  EXPECT_EQ(r.fx.sms[0].to, "+15005550100");
  EXPECT_EQ(r.fx.sms[0].from, "+15005550001");
  EXPECT_FALSE(r.fx.sms[0].urgent);
  EXPECT_EQ(trace_of(r), "#0 send_sms ok: to +15005550100 from +15005550001 "
                         "(not urgent)\n");
}

TEST(Steps, SendSmsSkipsAndFails) {
  auto ctx = call();
  ctx["call.from"] = value{"anonymous"};
  ctx["tenant.name"] = value{" "};
  auto r
    = run("call.missed",
          "  - send_sms: {to: \"{{ call.from }}\", body: hi}\n"
          "  - send_sms: {to: \"{{ call.to }}\", body: hi}\n"
          "  - send_sms: {to: \"+15005550100\", body: \"{{ tenant.name }}\"}\n"
          "  - send_sms: {to: \"+15005550100\", from: nope, body: hi}\n"
          "  - send_sms: {to: \"+15005550100\", body: \"{{ call.sid }}\"}\n",
          ctx);
  EXPECT_EQ(r.status, run_status::finished); // failed steps don't stop it
  ASSERT_EQ(r.fx.sms.size(), 1u);
  EXPECT_EQ(r.fx.sms[0].body, "CA1");
  EXPECT_EQ(trace_of(r),
            "#0 send_sms skipped: to: 'anonymous' is not a phone number\n"
            "#1 send_sms skipped: to and from are the same number "
            "+15005550001\n"
            "#2 send_sms skipped: body is empty\n"
            "#3 send_sms failed: from: 'nope' is not a phone number\n"
            "#4 send_sms ok: to +15005550100 from +15005550001\n");
}

TEST(Steps, SendSmsCutsLongBodies) {
  auto ctx = call();
  std::string long_text;
  for (int i = 0; i < 1700; ++i)
    long_text += "\xc3\xa9"; // 2 bytes, 1 character
  ctx["call.sid"] = value{long_text};
  auto r = run("call.missed",
               "  - send_sms: {to: \"{{ call.from }}\", body: "
               "\"{{ call.sid }}\"}\n",
               ctx);
  ASSERT_EQ(r.fx.sms.size(), 1u);
  // Rendering caps at 8192 bytes (4096 characters here), then the SMS at 1600.
  EXPECT_EQ(r.fx.sms[0].body.size(), 3200u);
  EXPECT_EQ(trace_of(r), "#0 send_sms ok: to +15005550006 from +15005550001; "
                         "body cut to 1600 characters\n");
}

TEST(Steps, NotifyOwner) {
  auto r
    = run("call.missed",
          "  - notify_owner: \"Missed call from {{ call.from | phone }}\"\n"
          "  - notify_owner: {body: later, urgent: false}\n",
          call());
  ASSERT_EQ(r.fx.sms.size(), 2u);
  EXPECT_EQ(r.fx.sms[0].to, "+15005550002");
  EXPECT_EQ(r.fx.sms[0].from, "+15005550001");
  EXPECT_EQ(r.fx.sms[0].body, "Missed call from (500) 555-0006");
  EXPECT_TRUE(r.fx.sms[0].urgent);
  EXPECT_FALSE(r.fx.sms[1].urgent);
}

// -- control
// ---------------------------------------------------------------------

TEST(Steps, SetKeepsTypesOfSingleExpressions) {
  auto r
    = run("sms.received",
          "  - set:\n      n: \"{{ 1 + 2 }}\"\n      t: \"n is {{ 1 + 2 }}\"\n"
          "      b: \"{{ sms.body == 'hello' }}\"\n      plain: text\n"
          "      nested.name: x\n  - set:\n      bad: \"{{ 1 < 'a' }}\"\n"
          "      m: \"{{ vars.n * 2 }}\"\n",
          sms());
  EXPECT_EQ(r.status, run_status::finished);
  const auto& v = r.state.vars;
  ASSERT_TRUE(v.count("vars.n"));
  EXPECT_TRUE(v.at("vars.n").is_number());
  EXPECT_EQ(v.at("vars.n").as_number(), 3);
  EXPECT_EQ(v.at("vars.t"), value{"n is 3"});
  EXPECT_EQ(v.at("vars.b"), value{true});
  EXPECT_EQ(v.at("vars.plain"), value{"text"});
  EXPECT_EQ(v.at("vars.nested.name"), value{"x"});
  EXPECT_TRUE(v.at("vars.bad").is_null());
  EXPECT_EQ(v.at("vars.m"), value{6});
  ASSERT_EQ(r.trace.size(), 2u);
  EXPECT_EQ(r.trace[0].detail,
            "set vars.n, vars.t, vars.b, vars.plain, vars.nested.name");
  EXPECT_EQ(r.trace[1].outcome, step_outcome::ok);
  EXPECT_EQ(r.trace[1].detail, "set vars.bad, vars.m; bad: cannot compare "
                               "number with string at column 1 of the "
                               "template");
}

TEST(Steps, WaitSuspendsUntilItsDeadline) {
  auto w = load("sms.received", "  - wait: 2h\n  - log: after\n");
  ASSERT_TRUE(w);
  auto a = start(*w, sms(), t0);
  EXPECT_EQ(a.status, run_status::waiting);
  EXPECT_EQ(a.state.waiting_for, "timer");
  EXPECT_EQ(a.state.wake_at, t0 + 7'200'000);
  EXPECT_EQ(trace_of(a), "#0 wait waiting: waiting 2h\n");
  auto b = resume(*w, a.state, timer_event(), {}, a.state.wake_at);
  EXPECT_EQ(b.status, run_status::finished);
  EXPECT_EQ(trace_of(b), "#0 wait resumed: time is up\n#1 log ok: \n");
  EXPECT_EQ(b.state.wake_at, 0);
  EXPECT_EQ(b.state.waiting_for, "");
}

TEST(Steps, WaitForReplyWaitsForTheCustomer) {
  auto r = run("sms.received",
               "  - wait_for_reply: {timeout: 1d}\n    "
               "on_reply: []\n    on_timeout: []\n",
               sms());
  EXPECT_EQ(r.status, run_status::waiting);
  EXPECT_EQ(r.state.waiting_for, "reply");
  EXPECT_EQ(r.state.contact, "+15005550007");
  EXPECT_EQ(r.state.wake_at, t0 + 86'400'000);
  EXPECT_EQ(trace_of(r),
            "#0 wait_for_reply waiting: waiting up to 1d for +15005550007\n");
  r = run("sms.received",
          "  - wait_for_reply:\n      timeout: 10m\n      "
          "from: \"+1 500 555 0002\"\n    on_reply: []\n    "
          "on_timeout: []\n",
          sms());
  EXPECT_EQ(r.state.contact, "+15005550002");
}

TEST(Steps, WaitForReplyFromNobodyIsSkipped) {
  auto ctx = sms();
  ctx["contact.phone"] = value{"anonymous"};
  auto r = run("sms.received",
               "  - wait_for_reply: {timeout: 1d}\n    "
               "on_reply: [log: r]\n    on_timeout: [log: t]\n"
               "  - log: after\n",
               ctx);
  EXPECT_EQ(r.status, run_status::finished);
  EXPECT_EQ(trace_of(r), "#0 wait_for_reply skipped: from: 'anonymous' is not "
                         "a phone number: nobody to wait for\n#3 log ok: \n");
}

// -- integration
// -----------------------------------------------------------------

TEST(Steps, HttpAsksAndWaits) {
  auto r
    = run("sms.received",
          "  - id: crm\n    http:\n      method: PUT\n      url: "
          "\"https://crm.example.com/c/{{ sms.from | e164 }}\"\n      "
          "headers:\n        Authorization: \"Bearer abc\"\n        X-Body: "
          "\"{{ sms.body }}\"\n      json:\n        phone: \"{{ sms.from "
          "}}\"\n        count: 2\n        ratio: 0.5\n        vip: true\n"
          "        none: null\n        tags: [a, \"{{ tenant.id }}\"]\n"
          "      timeout: 10s\n      retries: 2\n",
          sms());
  EXPECT_EQ(r.status, run_status::waiting);
  EXPECT_EQ(r.state.waiting_for, "http");
  ASSERT_TRUE(r.fx.http);
  const auto& h = *r.fx.http;
  EXPECT_EQ(h.step_id, "crm");
  EXPECT_EQ(h.method, "PUT");
  EXPECT_EQ(h.url, "https://crm.example.com/c/+15005550007");
  EXPECT_EQ(h.headers, (std::vector<std::pair<std::string, std::string>>{
                         {"Authorization", "Bearer abc"},
                         {"X-Body", "hello"},
                         {"Content-Type", "application/json"}}));
  EXPECT_EQ(h.body, "{\"phone\":\"+15005550007\",\"count\":2,\"ratio\":5E-1,"
                    "\"vip\":true,\"none\":null,\"tags\":[\"a\",\"acme\"]}");
  EXPECT_EQ(h.timeout, std::chrono::milliseconds{10'000});
  EXPECT_EQ(h.max_attempts, 3);
  EXPECT_EQ(trace_of(r), "crm http waiting: PUT "
                         "https://crm.example.com/c/+15005550007\n");
}

TEST(Steps, HttpRawBodyAndOwnContentType) {
  auto r
    = run("sms.received",
          "  - http:\n      url: https://x.example/hook\n      headers: "
          "{content-type: text/plain}\n      body: \"got {{ sms.body }}\"\n",
          sms());
  ASSERT_TRUE(r.fx.http);
  EXPECT_EQ(r.fx.http->method, "POST"); // a body without a method
  EXPECT_EQ(r.fx.http->body, "got hello");
  EXPECT_EQ(r.fx.http->headers.size(), 1u);
  r = run("sms.received",
          "  - http:\n      url: https://x.example/hook\n      headers: "
          "{Content-Type: application/vnd.x+json}\n      json: {a: b}\n",
          sms());
  ASSERT_TRUE(r.fx.http);
  ASSERT_EQ(r.fx.http->headers.size(), 1u);
  EXPECT_EQ(r.fx.http->headers[0].second, "application/vnd.x+json");
  EXPECT_EQ(r.fx.http->timeout, std::chrono::milliseconds{5000});
  EXPECT_EQ(r.fx.http->max_attempts, 1);
}

TEST(Steps, HttpWithABadUrlFails) {
  auto r = run("sms.received",
               "  - http: {url: \"{{ sms.body }}\"}\n  - log: "
               "after\n",
               sms());
  EXPECT_EQ(r.status, run_status::finished);
  EXPECT_FALSE(r.fx.http);
  EXPECT_EQ(trace_of(r), "#0 http failed: url 'hello' is not an http(s) URL\n"
                         "#1 log ok: \n");
}

TEST(Steps, HttpResponseSetsStepResults) {
  auto w = load("sms.received",
                "  - id: crm\n    http: {url: \"https://x.example\"}\n  - log: "
                "\"{{ steps.crm.status }} {{ steps.crm.ok }} [{{ "
                "steps.crm.error }}] {{ steps.crm.json.customer.name }} {{ "
                "steps.crm.json.items.1 }} {{ steps.crm.json.n }}\"\n");
  ASSERT_TRUE(w);
  auto a = start(*w, sms(), t0);
  resume_event ev;
  ev.what = resume_event::kind::http;
  ev.http_status = 200;
  ev.body = R"({"customer":{"name":"Ann","vip":true},"items":["a","b"],"n":3})";
  ev.attempts = 2;
  ev.elapsed_ms = 120;
  auto b = resume(*w, a.state, ev, {}, t0 + 200);
  EXPECT_EQ(b.status, run_status::finished);
  ASSERT_EQ(b.fx.logs.size(), 1u);
  EXPECT_EQ(b.fx.logs[0].text, "200 true [] Ann b 3");
  EXPECT_EQ(b.trace[0].detail, "HTTP 200 after 2 attempt(s), 120 ms");
  EXPECT_EQ(b.state.vars.at("steps.crm.json.customer.vip"), value{true});
  EXPECT_EQ(b.state.vars.at("steps.crm.body"), value{ev.body});
  // An error status is not ok; a body that is not JSON adds no json.*.
  ev.http_status = 503;
  ev.body = "<html>down</html>";
  auto c = resume(*w, a.state, ev, {}, t0 + 200);
  ASSERT_EQ(c.fx.logs.size(), 1u);
  EXPECT_EQ(c.fx.logs[0].text, "503 false []   ");
  // No response at all.
  resume_event none;
  none.what = resume_event::kind::http;
  none.error = "host not in http_allow";
  auto d = resume(*w, a.state, none, {}, t0 + 200);
  ASSERT_EQ(d.fx.logs.size(), 1u);
  EXPECT_EQ(d.fx.logs[0].text, "0 false [host not in http_allow]   ");
  EXPECT_EQ(d.trace[0].detail,
            "no response: host not in http_allow after 0 attempt(s), 0 ms");
}

TEST(Steps, HttpJsonResultsAreBounded) {
  auto w = load("sms.received", "  - id: big\n    http: {url: "
                                "\"https://x.example\"}\n");
  ASSERT_TRUE(w);
  auto a = start(*w, sms(), t0);
  std::string body = "[";
  for (int i = 0; i < 300; ++i)
    body += (i ? "," : "") + std::to_string(i);
  body += "]";
  resume_event ev;
  ev.what = resume_event::kind::http;
  ev.http_status = 200;
  ev.body = body;
  auto b = resume(*w, a.state, ev, {}, t0);
  EXPECT_EQ(b.state.vars.count("steps.big.json.199"), 1u);
  EXPECT_EQ(b.state.vars.count("steps.big.json.200"), 0u);
  EXPECT_EQ(b.trace[0].detail,
            "HTTP 200 after 0 attempt(s), 0 ms; JSON cut to 200 values");
  std::string deep = "1";
  for (int i = 0; i < 20; ++i)
    deep = "{\"a\":" + deep + "}";
  ev.body = deep;
  auto c = resume(*w, a.state, ev, {}, t0);
  for (const auto& [name, v] : c.state.vars)
    EXPECT_EQ(name.rfind("steps.big.json.a.a.a.a.a.a.a.a.a.a", 0),
              std::string::npos)
      << name;
}

TEST(Steps, HttpWithoutAnIdSetsNothing) {
  auto w = load("sms.received", "  - http: {url: \"https://x.example\"}\n");
  ASSERT_TRUE(w);
  auto a = start(*w, sms(), t0);
  resume_event ev;
  ev.what = resume_event::kind::http;
  ev.http_status = 204;
  auto b = resume(*w, a.state, ev, {}, t0);
  EXPECT_EQ(b.status, run_status::finished);
  for (const auto& [name, v] : b.state.vars)
    EXPECT_NE(name.rfind("steps.", 0), 0u) << name;
}

TEST(Steps, Log) {
  auto r = run("sms.received",
               "  - id: note\n    log: {message: \"from {{ sms.from "
               "}}\", level: warn}\n  - log: plain\n",
               sms());
  ASSERT_EQ(r.fx.logs.size(), 2u);
  EXPECT_EQ(r.fx.logs[0].step_id, "note");
  EXPECT_EQ(r.fx.logs[0].level, "warn");
  EXPECT_EQ(r.fx.logs[0].text, "from +15005550007");
  EXPECT_EQ(r.fx.logs[1].level, "info");
}

TEST(Steps, MissingVariablesRenderEmptyAndAreNoted) {
  auto ctx = sms();
  ctx.erase("sms.body");
  auto r = run("sms.received", "  - log: \"[{{ sms.body }}]\"\n", ctx);
  ASSERT_EQ(r.fx.logs.size(), 1u);
  EXPECT_EQ(r.fx.logs[0].text, "[]");
  EXPECT_EQ(trace_of(r),
            "#0 log ok: missing variables rendered empty: sms.body\n");
}

TEST(Steps, TagContact) {
  auto r = run("sms.received",
               "  - tag_contact: vip\n  - tag_contact: {tag: "
               "\"lead:{{ tenant.id }}\", phone: "
               "\"+15005550100\"}\n  - tag_contact: \"two "
               "words\"\n",
               sms());
  ASSERT_EQ(r.fx.tags.size(), 2u);
  EXPECT_EQ(r.fx.tags[0].phone, "+15005550007");
  EXPECT_EQ(r.fx.tags[0].tag, "vip");
  EXPECT_EQ(r.fx.tags[1].phone, "+15005550100");
  EXPECT_EQ(r.fx.tags[1].tag, "lead:acme");
  EXPECT_EQ(trace_of(r), "#0 tag_contact ok: +15005550007 tagged vip\n"
                         "#1 tag_contact ok: +15005550100 tagged lead:acme\n"
                         "#2 tag_contact failed: tag 'two words' must be 1-64 "
                         "letters, digits, '_', '-' or ':'\n");
  auto ctx = sms();
  ctx["contact.phone"] = value{""};
  r = run("sms.received", "  - tag_contact: vip\n", ctx);
  EXPECT_TRUE(r.fx.tags.empty());
  EXPECT_EQ(trace_of(r), "#0 tag_contact skipped: no contact number to tag\n");
}

// -- the registry
// ----------------------------------------------------------------

TEST(Steps, RegistryIsConsistent) {
  const auto& lang = default_language();
  EXPECT_EQ(lang.steps.names(),
            (std::vector<std::string>{
              "dial", "say", "play", "record_voicemail", "hangup", "reject",
              "send_sms", "notify_owner", "call_owner", "ai_reply", "if", "switch", "set", "stop", "wait",
              "wait_for_reply", "repeat", "http", "log", "tag_contact"}));
  for (const auto& s : lang.steps.all()) {
    EXPECT_FALSE(s->doc.empty()) << s->type;
    EXPECT_FALSE(s->example.empty()) << s->type;
    const bool compiled = s->type == "if" || s->type == "switch"
                          || s->type == "repeat" || s->type == "stop";
    EXPECT_EQ(static_cast<bool>(s->execute), !compiled) << s->type;
    if (!s->primary.empty()) {
      EXPECT_NE(s->field(s->primary), nullptr) << s->type;
    }
    for (const auto& f : s->fields) {
      EXPECT_FALSE(f.doc.empty()) << s->type << "." << f.name;
      EXPECT_FALSE(f.required && !f.default_source.empty())
        << s->type << "." << f.name;
      if (f.kind == field_kind::choice) {
        EXPECT_FALSE(f.choices.empty()) << s->type << "." << f.name;
      }
      if (f.kind == field_kind::duration && !f.default_source.empty()) {
        EXPECT_TRUE(parse_duration_ms(f.default_source)) << s->type;
      }
    }
    // Steps that suspend can be resumed.
    if (s->type == "dial" || s->type == "record_voicemail" || s->type == "wait"
        || s->type == "wait_for_reply" || s->type == "http") {
      EXPECT_TRUE(static_cast<bool>(s->resume)) << s->type;
    }
  }
  step_registry r;
  step_spec dup;
  dup.type = "x";
  EXPECT_TRUE(r.add(dup));
  EXPECT_FALSE(r.add(dup));
  EXPECT_EQ(r.names(), std::vector<std::string>{"x"});
  EXPECT_EQ(r.find("y"), nullptr);
}

TEST(Steps, TriggersAndVariables) {
  const auto& t = default_language().triggers;
  EXPECT_EQ(t.names(),
            (std::vector<std::string>{
              "call.incoming", "call.missed", "call.answered", "call.completed",
              "sms.received", "conversation.owner_timeout", "schedule"}));
  ASSERT_NE(t.find("call.incoming"), nullptr);
  EXPECT_TRUE(t.find("call.incoming")->voice);
  EXPECT_FALSE(t.find("call.missed")->voice);
  EXPECT_EQ(t.find("nope"), nullptr);
  for (const auto& spec : t.all()) {
    EXPECT_FALSE(spec.doc.empty()) << spec.name;
    for (const auto& v : spec.variables)
      EXPECT_FALSE(variable_doc(v).empty()) << spec.name << ": " << v;
    // Every run sees the common variables.
    for (const auto& v : common_variables())
      EXPECT_NE(std::find(spec.variables.begin(), spec.variables.end(), v),
                spec.variables.end())
        << spec.name << ": " << v;
  }
  EXPECT_EQ(variable_doc("nope"), "");
  // The contexts offer what the call and SMS triggers promise (the calendar
  // adds business_hours, holiday and now.*).
  auto c = call();
  for (const auto& v : call_variables())
    if (v != "business_hours" && v != "holiday" && v.rfind("now.", 0) != 0) {
      EXPECT_EQ(c.count(v), 1u) << v;
    }
  auto m = sms();
  for (const auto& v : t.find("sms.received")->variables)
    if (v != "business_hours" && v != "holiday" && v.rfind("now.", 0) != 0) {
      EXPECT_EQ(m.count(v), 1u) << v;
    }
  EXPECT_EQ(text(m, "sms.body"), "hello");
  EXPECT_EQ(text(m, "contact.phone"), "+15005550007");
  EXPECT_EQ(text(m, "tenant.number"), "+15005550001");
  EXPECT_EQ(text(c, "call.answered"), "false");
  EXPECT_EQ(text(c, "call.duration"), "0");
}

// -- ai_reply --------------------------------------------------------------------

namespace {

resume_event ai_event(std::string text, std::string intent = "booking",
                      std::string error = {}) {
  resume_event ev;
  ev.what = resume_event::kind::ai;
  ev.body = std::move(text);
  ev.status = std::move(intent);
  ev.provider = error.empty() ? "openai" : "offline";
  ev.error = std::move(error);
  ev.elapsed_ms = 840;
  return ev;
}

} // namespace

TEST(Steps, AiReplyAsksTheAIAndTextsItsAnswer) {
  auto w = load("sms.received",
                "  - id: answer\n    ai_reply: {max_chars: 200}\n"
                "  - log: \"{{ steps.answer.intent }} by {{ steps.answer.provider }}\"\n");
  ASSERT_TRUE(w);
  auto a = start(*w, sms("can someone come today?"), t0);
  EXPECT_EQ(a.status, run_status::waiting);
  EXPECT_EQ(a.state.waiting_for, "ai");
  ASSERT_TRUE(a.fx.ai);
  EXPECT_EQ(a.fx.ai->to, "+15005550007");
  EXPECT_EQ(a.fx.ai->from, "+15005550001");
  EXPECT_EQ(a.fx.ai->max_chars, 200u);
  EXPECT_TRUE(a.fx.sms.empty()) << "nothing is sent before the reply";
  auto b = resume(*w, a.state, ai_event("Yes! Book here: https://acme.example/book"),
                  {}, t0 + 900);
  EXPECT_EQ(b.status, run_status::finished);
  ASSERT_EQ(b.fx.sms.size(), 1u);
  EXPECT_EQ(b.fx.sms[0].to, "+15005550007");
  EXPECT_EQ(b.fx.sms[0].from, "+15005550001");
  EXPECT_EQ(b.fx.sms[0].body, "Yes! Book here: https://acme.example/book");
  EXPECT_EQ(b.fx.sms[0].author, "ai");
  ASSERT_EQ(b.fx.logs.size(), 1u);
  EXPECT_EQ(b.fx.logs[0].text, "booking by openai");
  EXPECT_EQ(b.trace[0].detail,
            "openai answered in 840 ms (booking); texted +15005550007");
}

TEST(Steps, AiReplyRecordsAModelFailureAndSendsTheFallback) {
  auto w = load("sms.received", "  - id: answer\n    ai_reply: {}\n");
  ASSERT_TRUE(w);
  auto a = start(*w, sms("leak!"), t0);
  auto b = resume(*w, a.state,
                  ai_event("We're paging the owner now.", "emergency",
                           "chat completions: timed out after 10000 ms"),
                  {}, t0 + 10'100);
  ASSERT_EQ(b.fx.sms.size(), 1u);
  EXPECT_EQ(b.state.vars.at("steps.answer.error"),
            value{"chat completions: timed out after 10000 ms"});
  EXPECT_NE(b.trace[0].detail.find("the model failed: chat completions: timed out"),
            std::string::npos)
    << b.trace[0].detail;
  // An empty reply sends nothing.
  auto c = resume(*w, a.state, ai_event("  "), {}, t0 + 900);
  EXPECT_TRUE(c.fx.sms.empty());
  EXPECT_NE(c.trace[0].detail.find("nothing to send"), std::string::npos);
  // Only an AI answer resumes it.
  auto d = resume(*w, a.state, timer_event(), {}, t0 + 900);
  EXPECT_EQ(d.status, run_status::failed);
  EXPECT_EQ(d.error, "the run waits for ai, not for timer");
}

TEST(Steps, AiReplyToSomeoneWithoutANumberIsSkipped) {
  auto r = run("sms.received", "  - ai_reply: {to: \"anonymous\"}\n", sms());
  EXPECT_EQ(r.status, run_status::finished);
  EXPECT_FALSE(r.fx.ai);
  EXPECT_EQ(trace_of(r),
            "#0 ai_reply skipped: to: 'anonymous' is not a phone number\n");
}

TEST(Steps, CallOwnerAsksForACallThatReadsTheMessage) {
  auto r = run("sms.received",
               "  - call_owner: \"Emergency text from {{ sms.from | phone }}\"\n",
               sms("water everywhere"));
  EXPECT_EQ(r.status, run_status::finished);
  ASSERT_EQ(r.fx.calls.size(), 1u);
  EXPECT_EQ(r.fx.calls[0].to, "+15005550002");
  EXPECT_EQ(r.fx.calls[0].from, "+15005550001");
  EXPECT_EQ(r.fx.calls[0].say, "Emergency text from (500) 555-0007");
  EXPECT_EQ(trace_of(r),
            "#0 call_owner ok: calling +15005550002 from +15005550001\n");
  auto blank = run("sms.received", "  - call_owner: \"{{ sms.body | trim }}\"\n",
                   sms("   "));
  EXPECT_TRUE(blank.fx.calls.empty());
  EXPECT_EQ(trace_of(blank), "#0 call_owner skipped: nothing to say\n");
}
