#include "ringback/workflows/loader.hpp"

#include "ringback/workflows/program.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

using namespace ringback::workflows;

namespace {

using strings = std::vector<std::string>;

/// Every diagnostic of `text`, printed; checks that `ok()` agrees.
strings diags(std::string_view text,
              const language& lang = default_language()) {
  auto r = load_string(text, "wf.yaml", lang);
  strings out;
  for (const auto& d : r.diagnostics)
    out.push_back(to_string(d));
  EXPECT_EQ(r.ok(), out.empty());
  return out;
}

/// A workflow of `trigger` whose steps (from line 4) are `steps`.
std::string wf(std::string_view trigger, std::string_view steps) {
  return "name: w\ntrigger: " + std::string(trigger) + "\nsteps:\n"
         + std::string(steps);
}

workflow_ptr load_ok(std::string_view text) {
  auto r = load_string(text, "wf.yaml");
  EXPECT_TRUE(r.ok()) << to_string(r.diagnostics);
  return r.value;
}

/// The first diagnostic only (tests of one mistake).
std::string first(std::string_view text) {
  auto xs = diags(text);
  return xs.empty() ? std::string("(no diagnostic)") : xs.front();
}

const std::string sms_vars
  = "business_hours, contact.phone, holiday, now.date, now.hour, now.minute, "
    "now.time, now.timezone, now.weekday, sms.body, sms.from, sms.sid, sms.to, "
    "tenant.id, tenant.name, tenant.number, tenant.owner_phone, "
    "tenant.page_by_call, tenant.timezone";

class temp_dir {
public:
  temp_dir() {
    auto name
      = std::string("ringback-lang-")
        + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-"
        + std::to_string(::getpid());
    path_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name) << text;
  }
  std::string str() const {
    return path_.string();
  }
  std::string file(const std::string& name) const {
    return (path_ / name).string();
  }

private:
  std::filesystem::path path_;
};

bool starts_with(const std::string& x, const std::string& prefix) {
  return x.compare(0, prefix.size(), prefix) == 0;
}

const step& only_step(const workflow_ptr& w) {
  static const step none;
  if (!w || w->steps.empty())
    return none;
  return w->steps.front();
}

} // namespace

// -- the file -----------------------------------------------------------------

TEST(Loader, TheShippedMissedCallWorkflowLoads) {
  auto r = load_file(RINGBACK_SOURCE_DIR "/workflows/missed_call.yaml");
  ASSERT_TRUE(r.ok()) << to_string(r.diagnostics);
  EXPECT_EQ(r.value->name, "missed_call_text_back");
  EXPECT_EQ(r.value->trigger, "call.missed");
  EXPECT_EQ(r.value->file, RINGBACK_SOURCE_DIR "/workflows/missed_call.yaml");
}

TEST(Loader, KeepsTheFileAndItsVersion) {
  const auto text = "name: greet\ndescription: Say hi\ntrigger: sms.received\n"
                    "steps:\n  - log: hi\n  - if: business_hours\n    then:\n"
                    "      - log: open\n";
  auto w = load_ok(text);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->name, "greet");
  EXPECT_EQ(w->description, "Say hi");
  EXPECT_EQ(w->trigger, "sms.received");
  EXPECT_EQ(w->file, "wf.yaml");
  EXPECT_EQ(w->source, text);
  EXPECT_EQ(w->version, content_hash(text));
  EXPECT_EQ(w->version.size(), 16u);
  EXPECT_EQ(w->name_line, 1);
  EXPECT_EQ(w->name_column, 7);
  EXPECT_EQ(w->step_count, 3u); // nested steps count
  ASSERT_TRUE(w->code);
  EXPECT_EQ(w->steps[1].branches[0].steps[0].ordinal, 2u);
  EXPECT_EQ(w->steps[1].branches[0].steps[0].path, "/steps/1/then/0");
  EXPECT_EQ(w->steps[1].line, 6);
  EXPECT_EQ(w->steps[1].column, 5);
  EXPECT_EQ(w->steps[1].display_id(), "#1");
}

TEST(Loader, ContentHashIsFnv1a64) {
  EXPECT_EQ(content_hash(""), "cbf29ce484222325");
  EXPECT_EQ(content_hash("a"), "af63dc4c8601ec8c");
  EXPECT_NE(content_hash("name: a"), content_hash("name: b"));
}

TEST(Loader, TopLevelProblems) {
  EXPECT_EQ(diags(""),
            strings{"wf.yaml:1:1: error: the file is empty (expected a "
                    "workflow with 'name', 'trigger' and 'steps')"});
  EXPECT_EQ(diags("# nothing\n"),
            strings{"wf.yaml:1:1: error: the file is empty (expected a "
                    "workflow with 'name', 'trigger' and 'steps')"});
  EXPECT_EQ(diags("- a\n- b\n"),
            strings{"wf.yaml:1:1: error: expected a workflow (a map with "
                    "'name', 'trigger' and 'steps'), got a list"});
  EXPECT_EQ(diags("description: x\n"),
            (strings{"wf.yaml:1:1: error: missing required key 'name'",
                     "wf.yaml:1:1: error: missing required key 'trigger'",
                     "wf.yaml:1:1: error: missing required key 'steps'"}));
  EXPECT_EQ(diags("name: w\ntrigger: sms.received\nstpes:\n  - log: x\n"),
            strings{"wf.yaml:3:1: error: unknown key 'stpes' (did you mean "
                    "'steps'?)"});
  EXPECT_EQ(diags("name: w\ntrigger: sms.received\nsteps: []\nversion: 2\n"),
            (strings{"wf.yaml:3:8: error: /steps: a workflow needs at least "
                     "one step",
                     "wf.yaml:4:1: error: unknown key 'version' (expected one "
                     "of: name, description, trigger, schedule, steps)"}));
  EXPECT_EQ(diags("name: w\ntrigger: sms.received\nsteps:\n"),
            strings{"wf.yaml:3:1: error: /steps: a workflow needs at least one "
                    "step"});
  EXPECT_EQ(diags("name: w\ntrigger: sms.received\nsteps: {log: x}\n"),
            strings{"wf.yaml:3:8: error: /steps: expected a list of steps, got "
                    "a map"});
  EXPECT_EQ(diags("a: 1\n---\nb: 2\n"),
            strings{"wf.yaml:2:1: error: only one document per file is "
                    "allowed"});
}

TEST(Loader, NamesAndTriggers) {
  EXPECT_EQ(diags("name: [w]\ntrigger: sms.received\nsteps:\n  - log: x\n"),
            strings{"wf.yaml:1:7: error: /name: expected a string, got a "
                    "list"});
  EXPECT_EQ(diags("name: missed call\ntrigger: sms.received\nsteps:\n  - log: "
                  "x\n"),
            strings{"wf.yaml:1:7: error: /name: invalid workflow name 'missed "
                    "call' (use letters, digits, '_' and '-', at most 64)"});
  EXPECT_EQ(diags(wf("call.mised", "  - log: x\n")),
            strings{"wf.yaml:2:10: error: /trigger: unknown trigger "
                    "'call.mised' (did you mean 'call.missed'?); known "
                    "triggers: call.incoming, call.missed, call.answered, "
                    "call.completed, sms.received, conversation.owner_timeout, "
                    "schedule"});
  // With an unknown trigger, variables are not checked (they depend on it).
  EXPECT_EQ(diags(wf("nope", "  - log: \"{{ anything }}\"\n")).size(), 1u);
}

TEST(Loader, TabsAndDuplicateKeys) {
  EXPECT_EQ(diags("name: w\ntrigger: sms.received\nsteps:\n\t- log: x\n"),
            strings{"wf.yaml:4:1: error: tab character used for indentation"});
  EXPECT_EQ(diags("name: w\nname: v\ntrigger: sms.received\nsteps:\n  - log: "
                  "{message: x, message: y}\n"),
            (strings{"wf.yaml:2:1: error: duplicate key 'name' (first defined "
                     "at line 1)",
                     "wf.yaml:5:23: error: /steps/0/log: duplicate key "
                     "'message' (first defined at line 5)"}));
}

// -- steps --------------------------------------------------------------------

TEST(Loader, StepShapeProblems) {
  EXPECT_EQ(diags(wf("sms.received", "  - log\n  - 3\n")),
            (strings{"wf.yaml:4:5: error: /steps/0: expected a step (a map "
                     "like 'send_sms: {to: ..., body: ...}'), got a scalar "
                     "(write 'log:' with a colon)",
                     "wf.yaml:5:5: error: /steps/1: expected a step (a map "
                     "like 'send_sms: {to: ..., body: ...}'), got a scalar"}));
  EXPECT_EQ(diags(wf("sms.received", "  - log: x\n    say: y\n")),
            strings{"wf.yaml:5:5: error: /steps/0: more than one step type in "
                    "one step ('log' and 'say'); give each its own list item"});
  EXPECT_EQ(diags(wf("sms.received", "  - id: a\n")),
            strings{"wf.yaml:4:5: error: /steps/0: missing step type (known "
                    "step types: dial, say, play, record_voicemail, hangup, "
                    "reject, send_sms, notify_owner, call_owner, ai_reply, if, switch, set, stop, "
                    "wait, wait_for_reply, repeat, http, log, tag_contact)"});
}

TEST(Loader, MisspeltStepTypeFieldAndBranch) {
  EXPECT_EQ(first(wf("call.missed", "  - sendsms: {to: x, body: y}\n")),
            "wf.yaml:4:5: error: /steps/0: unknown key 'sendsms' (did you mean "
            "'send_sms'?); known step types: dial, say, play, "
            "record_voicemail, hangup, reject, send_sms, notify_owner, call_owner, ai_reply, if, "
            "switch, set, stop, wait, wait_for_reply, repeat, http, log, "
            "tag_contact");
  EXPECT_EQ(diags(wf("call.missed",
                     "  - send_sms: {to: \"{{ call.from }}\", bdy: x}\n")),
            strings{"wf.yaml:4:39: error: /steps/0/send_sms: unknown key 'bdy' "
                    "(did you mean 'body'?)"});
  // A misspelt required branch is reported once, as the misspelling.
  EXPECT_EQ(diags(wf("sms.received", "  - if: business_hours\n    thn: []\n")),
            strings{"wf.yaml:5:5: error: /steps/0: unknown key 'thn' (did you "
                    "mean 'then'?); an 'if' step takes id, then, else"});
  EXPECT_EQ(diags(wf("sms.received",
                     "  - if: business_hours\n    then: []\n    els: []\n")),
            strings{"wf.yaml:6:5: error: /steps/0: unknown key 'els' (did you "
                    "mean 'else'?); an 'if' step takes id, then, else"});
  EXPECT_EQ(diags(wf("sms.received", "  - log: x\n    then: []\n")),
            strings{"wf.yaml:5:5: error: /steps/0: unknown key 'then'; a 'log' "
                    "step takes id"});
  EXPECT_EQ(diags(wf("sms.received", "  - log: {mesage: x}\n")),
            (strings{"wf.yaml:4:11: error: /steps/0/log: unknown key 'mesage' "
                     "(did you mean 'message'?)"}));
  EXPECT_EQ(diags(wf("sms.received", "  - log: {text: x}\n")),
            (strings{"wf.yaml:4:10: error: /steps/0/log: missing required key "
                     "'message'",
                     "wf.yaml:4:11: error: /steps/0/log: unknown key 'text' "
                     "(expected one of: message, level)"}));
}

TEST(Loader, MissingRequiredFieldsAndBranches) {
  EXPECT_EQ(diags(
              wf("call.missed", "  - send_sms: {to: \"{{ call.from }}\"}\n")),
            strings{"wf.yaml:4:15: error: /steps/0/send_sms: missing required "
                    "key 'body'"});
  // A null value: point at the step's type key.
  EXPECT_EQ(diags(wf("call.missed", "  - send_sms:\n")),
            (strings{"wf.yaml:4:5: error: /steps/0/send_sms: missing required "
                     "key 'to'",
                     "wf.yaml:4:5: error: /steps/0/send_sms: missing required "
                     "key 'body'"}));
  EXPECT_EQ(diags(wf("sms.received", "  - log:\n")),
            strings{"wf.yaml:4:5: error: /steps/0/log: missing required key "
                    "'message'"});
  EXPECT_EQ(diags(wf("sms.received", "  - if: business_hours\n")),
            strings{"wf.yaml:4:5: error: /steps/0: missing required key 'then' "
                    "(steps run when the condition is true)"});
  EXPECT_EQ(diags(wf("sms.received", "  - switch: sms.body\n")),
            strings{"wf.yaml:4:5: error: /steps/0: missing required key "
                    "'cases' (a map of labels to step lists)"});
  EXPECT_EQ(diags(wf("sms.received", "  - wait_for_reply: {timeout: 1h}\n    "
                                     "on_reply: []\n")),
            strings{"wf.yaml:4:5: error: /steps/0: missing required key "
                    "'on_timeout' (steps run when the time is up first)"});
  EXPECT_EQ(diags(wf("sms.received", "  - wait_for_reply: {}\n    on_reply: "
                                     "[]\n    on_timeout: []\n")),
            strings{"wf.yaml:4:21: error: /steps/0/wait_for_reply: missing "
                    "required key 'timeout'"});
  EXPECT_EQ(diags(wf("sms.received", "  - repeat: {times: 2}\n")),
            strings{"wf.yaml:4:5: error: /steps/0: missing required key "
                    "'steps' (the loop's body)"});
  EXPECT_EQ(diags(wf("sms.received", "  - say: \"\"\n")).front(),
            "wf.yaml:4:10: error: /steps/0/say: must not be empty");
  EXPECT_EQ(diags(wf("sms.received", "  - log: \"   \"\n")),
            strings{"wf.yaml:4:10: error: /steps/0/log: must not be empty"});
}

TEST(Loader, WrongTypes) {
  EXPECT_EQ(diags(wf("call.missed", "  - send_sms: {to: \"{{ call.from }}\", "
                                    "body: [a]}\n")),
            strings{"wf.yaml:4:45: error: /steps/0/send_sms/body: expected a "
                    "string, got a list"});
  EXPECT_EQ(diags(wf("call.missed", "  - send_sms: \"hello\"\n")),
            strings{"wf.yaml:4:15: error: /steps/0/send_sms: expected a map of "
                    "fields (to, body, from, urgent), got a scalar"});
  EXPECT_EQ(diags(wf("sms.received", "  - hangup: [1]\n")),
            strings{"wf.yaml:4:13: error: /steps/0/hangup: expected a map of "
                    "fields, got a list"});
  EXPECT_EQ(diags(wf("sms.received", "  - if: [a]\n    then: []\n")),
            strings{"wf.yaml:4:9: error: /steps/0/if: expected an expression, "
                    "got a list"});
  EXPECT_EQ(diags(wf("sms.received", "  - if: true\n    then: {log: x}\n")),
            strings{"wf.yaml:5:11: error: /steps/0/then: expected a list of "
                    "steps, got a map"});
  EXPECT_EQ(diags(wf("sms.received", "  - repeat: {times: abc}\n    steps: "
                                     "[log: x]\n")),
            strings{"wf.yaml:4:21: error: /steps/0/repeat/times: expected a "
                    "whole number, got 'abc'"});
  EXPECT_EQ(diags(wf("sms.received", "  - repeat: {times: 2.5}\n    steps: "
                                     "[log: x]\n")),
            strings{"wf.yaml:4:21: error: /steps/0/repeat/times: expected a "
                    "whole number, got '2.5'"});
  EXPECT_EQ(diags(wf("call.missed", "  - send_sms: {to: \"{{ call.from }}\", "
                                    "body: x, urgent: 1}\n")),
            strings{"wf.yaml:4:56: error: /steps/0/send_sms/urgent: expected "
                    "true or false, got '1'"});
  EXPECT_EQ(diags(wf("sms.received", "  - log: {message: x, level: "
                                     "warning}\n")),
            strings{"wf.yaml:4:30: error: /steps/0/log/level: 'warning' is not "
                    "one of info, warn, error"});
  EXPECT_EQ(diags(wf("sms.received", "  - log: {message: x, level: wrn}\n")),
            strings{"wf.yaml:4:30: error: /steps/0/log/level: 'wrn' is not "
                    "one of info, warn, error (did you mean 'warn'?)"});
  EXPECT_EQ(diags(wf("call.incoming", "  - reject: bsy\n")),
            strings{"wf.yaml:4:13: error: /steps/0/reject: 'bsy' is not one of "
                    "rejected, busy (did you mean 'busy'?)"});
  EXPECT_EQ(diags(wf("sms.received", "  - http: {url: \"https://x\", headers: "
                                     "[a]}\n")),
            strings{"wf.yaml:4:39: error: /steps/0/http/headers: expected a "
                    "map, got a list"});
  EXPECT_EQ(diags(wf("sms.received", "  - http: {url: \"https://x\", headers: "
                                     "{a: [b]}}\n")),
            strings{"wf.yaml:4:43: error: /steps/0/http/headers/a: expected a "
                    "string, got a list"});
  EXPECT_EQ(diags(wf("sms.received", "  - id: [a]\n    log: x\n")),
            strings{"wf.yaml:4:9: error: /steps/0/id: expected a string, got a "
                    "list"});
}

TEST(Loader, Durations) {
  auto w = load_ok(wf("sms.received", "  - wait: 90\n  - wait: 1h30m\n  - "
                                      "wait: \"2d\"\n  - wait: 45s\n"));
  ASSERT_TRUE(w);
  EXPECT_EQ(w->steps[0].field("for")->number, 90'000);
  EXPECT_EQ(w->steps[1].field("for")->number, 5'400'000);
  EXPECT_EQ(w->steps[2].field("for")->number, 172'800'000);
  EXPECT_EQ(w->steps[3].field("for")->number, 45'000);
  EXPECT_EQ(diags(wf("sms.received", "  - wait: 5x\n  - wait: 0s\n  - wait: "
                                     "91d\n  - wait: 1m30\n  - wait: -1s\n")),
            (strings{"wf.yaml:4:11: error: /steps/0/wait: invalid duration "
                     "'5x' (write e.g. 30s, 10m, 2h, 1d or 1h30m)",
                     "wf.yaml:5:11: error: /steps/1/wait: duration 0s out of "
                     "range 1s to 90d",
                     "wf.yaml:6:11: error: /steps/2/wait: duration 91d out of "
                     "range 1s to 90d",
                     "wf.yaml:7:11: error: /steps/3/wait: invalid duration "
                     "'1m30' (write e.g. 30s, 10m, 2h, 1d or 1h30m)",
                     "wf.yaml:8:11: error: /steps/4/wait: invalid duration "
                     "'-1s' (write e.g. 30s, 10m, 2h, 1d or 1h30m)"}));
  EXPECT_EQ(diags(wf("call.incoming", "  - dial: {timeout: 3s}\n")),
            strings{"wf.yaml:4:21: error: /steps/0/dial/timeout: duration 3s "
                    "out of range 5s to 10m"});
  EXPECT_EQ(diags(wf("sms.received", "  - http: {url: \"https://x\", timeout: "
                                     "500ms}\n")),
            strings{"wf.yaml:4:39: error: /steps/0/http/timeout: duration "
                    "500ms out of range 1s to 30s"});
}

TEST(Loader, DurationSyntax) {
  EXPECT_EQ(parse_duration_ms("20s"), 20'000);
  EXPECT_EQ(parse_duration_ms(" 10m "), 600'000);
  EXPECT_EQ(parse_duration_ms("2h"), 7'200'000);
  EXPECT_EQ(parse_duration_ms("1d"), 86'400'000);
  EXPECT_EQ(parse_duration_ms("500ms"), 500);
  EXPECT_EQ(parse_duration_ms("1h30m"), 5'400'000);
  EXPECT_EQ(parse_duration_ms("30"), 30'000);
  EXPECT_EQ(parse_duration_ms(""), std::nullopt);
  EXPECT_EQ(parse_duration_ms("1m30"), std::nullopt);
  EXPECT_EQ(parse_duration_ms("1w"), std::nullopt);
  EXPECT_EQ(parse_duration_ms("h"), std::nullopt);
  EXPECT_EQ(parse_duration_ms("99999999999s"), std::nullopt);
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(90'000), "1m30s");
  EXPECT_EQ(format_duration(86'400'000 + 3'600'000), "1d1h");
  EXPECT_EQ(format_duration(1500), "1500ms");
}

TEST(Loader, NumbersOutOfRange) {
  EXPECT_EQ(diags(wf("sms.received", "  - repeat: {times: 0}\n    steps: [log: "
                                     "x]\n  - repeat: {times: 101}\n    steps: "
                                     "[log: x]\n")),
            (strings{"wf.yaml:4:21: error: /steps/0/repeat/times: 0 is out of "
                     "range 1 to 100",
                     "wf.yaml:6:21: error: /steps/1/repeat/times: 101 is out "
                     "of range 1 to 100"}));
  EXPECT_EQ(diags(wf("call.incoming", "  - say: {text: hi, loop: 11}\n")),
            strings{"wf.yaml:4:27: error: /steps/0/say/loop: 11 is out of "
                    "range 1 to 10"});
  EXPECT_EQ(diags(wf("sms.received", "  - http: {url: \"https://x\", retries: "
                                     "6}\n")),
            strings{"wf.yaml:4:39: error: /steps/0/http/retries: 6 is out of "
                    "range 0 to 5"});
  EXPECT_EQ(diags(wf("sms.received", "  - repeat: {times: "
                                     "99999999999999999999}\n    steps: [log: "
                                     "x]\n")),
            strings{"wf.yaml:4:21: error: /steps/0/repeat/times: expected a "
                    "whole number, got '99999999999999999999'"});
}

// -- field kinds
// ----------------------------------------------------------------

TEST(Loader, TemplateAndConditionFields) {
  auto w = load_ok(wf("call.missed", "  - id: t\n    send_sms:\n      to: \"{{ "
                                     "call.from }}\"\n      body: Hi {{ "
                                     "tenant.name }}\n"));
  const auto& s = only_step(w);
  EXPECT_EQ(s.id, "t");
  EXPECT_EQ(s.type, "send_sms");
  ASSERT_NE(s.field("to"), nullptr);
  EXPECT_EQ(s.field("to")->kind, field_kind::text);
  EXPECT_EQ(s.field("to")->text.source(), "{{ call.from }}");
  EXPECT_EQ(s.field("to")->line, 6);
  EXPECT_EQ(s.field("to")->column, 11);
  EXPECT_FALSE(s.field("to")->defaulted);
  EXPECT_EQ(s.field("body")->text.source(), "Hi {{ tenant.name }}");
  auto c = load_ok(wf("sms.received", "  - if: business_hours and not holiday\n"
                                      "    then: [log: x]\n"));
  ASSERT_NE(only_step(c).field("condition"), nullptr);
  EXPECT_EQ(only_step(c).field("condition")->kind, field_kind::condition);
  EXPECT_EQ(only_step(c).field("condition")->expr.source(),
            "business_hours and not holiday");
  // A condition may be written as one `{{ expr }}`.
  auto d = load_ok(wf("sms.received", "  - if: \"{{ sms.body == 'x' }}\"\n"
                                      "    then: [log: x]\n"));
  EXPECT_EQ(only_step(d).field("condition")->expr.source(), "sms.body == 'x'");
}

TEST(Loader, IntegerBooleanChoiceFields) {
  auto w = load_ok(wf("call.incoming",
                      "  - say: {text: hi, loop: 3, voice: Polly.Joanna}\n"
                      "  - record_voicemail: {beep: false, transcribe: true, "
                      "max_length: 30s}\n  - reject: busy\n"));
  ASSERT_TRUE(w);
  EXPECT_EQ(w->steps[0].field("loop")->kind, field_kind::integer);
  EXPECT_EQ(w->steps[0].field("loop")->number, 3);
  EXPECT_EQ(w->steps[0].field("voice")->text.source(), "Polly.Joanna");
  EXPECT_EQ(w->steps[1].field("beep")->kind, field_kind::boolean);
  EXPECT_FALSE(w->steps[1].field("beep")->flag);
  EXPECT_TRUE(w->steps[1].field("transcribe")->flag);
  EXPECT_EQ(w->steps[1].field("max_length")->number, 30'000);
  EXPECT_EQ(w->steps[1].field("silence")->number, 5'000); // default
  EXPECT_EQ(w->steps[2].field("reason")->kind, field_kind::choice);
  EXPECT_EQ(w->steps[2].field("reason")->text.source(), "busy");
}

TEST(Loader, TemplateListFields) {
  auto w = load_ok(wf("call.incoming",
                      "  - dial: \"+15005550100\"\n"
                      "  - dial:\n      to: [\"+15005550100\", \"{{ "
                      "tenant.owner_phone }}\"]\n"));
  ASSERT_TRUE(w);
  ASSERT_EQ(w->steps[0].field("to")->list.size(), 1u);
  EXPECT_EQ(w->steps[0].field("to")->kind, field_kind::text_list);
  EXPECT_EQ(w->steps[0].field("to")->list[0].source(), "+15005550100");
  ASSERT_EQ(w->steps[1].field("to")->list.size(), 2u);
  EXPECT_EQ(w->steps[1].field("to")->list[1].source(),
            "{{ tenant.owner_phone }}");
  EXPECT_EQ(diags(wf("call.incoming", "  - dial: {to: []}\n")),
            strings{"wf.yaml:4:16: error: /steps/0/dial/to: expected a string "
                    "or a list of strings, got an empty list"});
  EXPECT_EQ(diags(wf("call.incoming", "  - dial: {to: {a: b}}\n")),
            strings{"wf.yaml:4:16: error: /steps/0/dial/to: expected a string "
                    "or a list of strings, got a map"});
  EXPECT_EQ(diags(wf("call.incoming", "  - dial: {to: [[a]]}\n")),
            strings{"wf.yaml:4:17: error: /steps/0/dial/to/0: expected a "
                    "string, got a list"});
  EXPECT_EQ(diags(wf("call.incoming", "  - dial: [a, b, c, d, e, f, g, h, i, "
                                      "j, k]\n")),
            strings{"wf.yaml:4:11: error: /steps/0/dial: at most 10 entries"});
  EXPECT_EQ(diags(wf("call.incoming", "  - dial: [\"{{ call.form }}\"]\n")),
            strings{"wf.yaml:4:16: error: /steps/0/dial/0: unknown variable "
                    "'call.form' (did you mean 'call.from'?); known variables "
                    "here: business_hours, call.answered, call.duration, "
                    "call.from, call.sid, call.to, contact.phone, holiday, "
                    "now.date, now.hour, now.minute, now.time, now.timezone, "
                    "now.weekday, tenant.id, tenant.name, tenant.number, "
                    "tenant.owner_phone, tenant.page_by_call, tenant.timezone"});
}

TEST(Loader, MapFields) {
  auto w
    = load_ok(wf("sms.received",
                 "  - set:\n      greeting: \"Hi {{ sms.from }}\"\n"
                 "      count.total: \"{{ 1 + 2 }}\"\n"
                 "  - http:\n      url: https://x.example\n      headers:\n"
                 "        X-Key: abc\n        X-From: \"{{ vars.greeting "
                 "}}\"\n"));
  ASSERT_TRUE(w);
  const auto* values = w->steps[0].field("values");
  ASSERT_NE(values, nullptr);
  EXPECT_EQ(values->kind, field_kind::text_map);
  ASSERT_EQ(values->map.size(), 2u);
  EXPECT_EQ(values->map[0].first, "greeting");
  EXPECT_EQ(values->map[1].first, "count.total");
  EXPECT_EQ(values->map[1].second.source(), "{{ 1 + 2 }}");
  const auto* headers = w->steps[1].field("headers");
  ASSERT_NE(headers, nullptr);
  ASSERT_EQ(headers->map.size(), 2u);
  EXPECT_EQ(headers->map[0].first, "X-Key");
  EXPECT_EQ(diags(
              wf("sms.received", "  - set: {a.b: x, \"1x\": y, a..b: z}\n")),
            (strings{"wf.yaml:4:19: error: /steps/0/set/1x: invalid variable "
                     "name '1x' (letters, digits and '_', dotted: a.b)",
                     "wf.yaml:4:28: error: /steps/0/set/a..b: invalid variable "
                     "name 'a..b' (letters, digits and '_', dotted: a.b)"}));
  EXPECT_EQ(diags(wf("sms.received", "  - set: x\n")),
            strings{"wf.yaml:4:10: error: /steps/0/set: expected a map of "
                    "names (letters, digits, '_', dotted) and their templates, "
                    "got a scalar"});
  EXPECT_EQ(diags(wf("sms.received", "  - set: {}\n")),
            strings{"wf.yaml:4:10: error: /steps/0/set: expected a map of "
                    "names (letters, digits, '_', dotted) and their templates, "
                    "got an empty map"});
  EXPECT_EQ(diags(wf("sms.received", "  - set:\n")),
            strings{
              "wf.yaml:4:5: error: /steps/0/set: expected a map of names "
              "(letters, digits, '_', dotted) and their templates, got an "
              "empty value"});
}

TEST(Loader, JsonFields) {
  auto w
    = load_ok(wf("sms.received",
                 "  - http:\n      url: https://x.example\n      json:\n"
                 "        n: 12.5\n        yes: true\n        no: null\n"
                 "        quoted: \"true\"\n        who: \"{{ sms.from }}\"\n"
                 "        list: [1, a]\n        nested: {k: ~}\n"));
  ASSERT_TRUE(w);
  const auto* j = only_step(w).field("json");
  ASSERT_NE(j, nullptr);
  EXPECT_EQ(j->kind, field_kind::json);
  const auto& o = j->json;
  ASSERT_EQ(o.what, json_template::kind::object);
  ASSERT_EQ(o.members.size(), 7u);
  EXPECT_EQ(o.members[0].first, "n");
  EXPECT_EQ(o.members[0].second.what, json_template::kind::number);
  EXPECT_EQ(o.members[0].second.number, 12.5);
  EXPECT_EQ(o.members[1].second.what, json_template::kind::boolean);
  EXPECT_TRUE(o.members[1].second.flag);
  EXPECT_EQ(o.members[2].second.what, json_template::kind::null);
  EXPECT_EQ(o.members[3].second.what, json_template::kind::string);
  EXPECT_EQ(o.members[3].second.text.source(), "true");
  EXPECT_EQ(o.members[4].second.text.source(), "{{ sms.from }}");
  ASSERT_EQ(o.members[5].second.what, json_template::kind::array);
  ASSERT_EQ(o.members[5].second.items.size(), 2u);
  EXPECT_EQ(o.members[5].second.items[1].what, json_template::kind::string);
  EXPECT_EQ(o.members[6].second.members[0].second.what,
            json_template::kind::null);
  // Its strings are templates, checked like any other.
  EXPECT_EQ(diags(wf("sms.received", "  - http:\n      url: https://x\n      "
                                     "json: {a: [\"{{ sms.bdy }}\"]}\n")),
            strings{"wf.yaml:6:22: error: /steps/0/http/json/a/0: unknown "
                    "variable 'sms.bdy' (did you mean 'sms.body'?); known "
                    "variables here: "
                    + sms_vars});
}

TEST(Loader, Shorthands) {
  auto w = load_ok(wf("call.incoming",
                      "  - say: \"Hello\"\n  - play: https://x/a.mp3\n"
                      "  - if: business_hours\n    then:\n      - dial: \"{{ "
                      "tenant.owner_phone }}\"\n    else:\n      - reject: "
                      "busy\n  - set: {a: b}\n  - log: done\n  - stop: "
                      "finished\n"));
  ASSERT_TRUE(w);
  EXPECT_EQ(w->steps[0].field("text")->text.source(), "Hello");
  EXPECT_EQ(w->steps[1].field("url")->text.source(), "https://x/a.mp3");
  EXPECT_EQ(w->steps[2].field("condition")->expr.source(), "business_hours");
  EXPECT_EQ(w->steps[2].branches[0].steps[0].field("to")->list[0].source(),
            "{{ tenant.owner_phone }}");
  EXPECT_EQ(w->steps[3].field("values")->map[0].first, "a");
  EXPECT_EQ(w->steps[4].field("message")->text.source(), "done");
  EXPECT_EQ(w->steps[4].field("level")->text.source(), "info");
  EXPECT_EQ(w->steps[5].field("reason")->text.source(), "finished");
  auto m = load_ok(wf("sms.received", "  - wait: 2h\n  - notify_owner: hi\n  - "
                                      "tag_contact: vip\n"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->steps[0].field("for")->number, 7'200'000);
  EXPECT_EQ(m->steps[1].field("body")->text.source(), "hi");
  EXPECT_EQ(m->steps[2].field("tag")->text.source(), "vip");
}

TEST(Loader, ShorthandOfAStepWithAnotherRequiredField) {
  // No shipped step has one; a custom language does.
  language lang;
  lang.triggers.add({"t", "A trigger.", {"x"}});
  step_spec s;
  s.type = "greet";
  s.primary = "text";
  s.fields = {{"text", field_kind::text, true, "", "What."},
              {"to", field_kind::text, true, "", "Whom."}};
  s.execute = [](const step&, step_frame&) { return step_result{}; };
  lang.steps.add(s);
  EXPECT_EQ(diags("name: w\ntrigger: t\nsteps:\n  - greet: hi\n", lang),
            strings{"wf.yaml:4:12: error: /steps/0/greet: missing required key "
                    "'to' (write 'greet: {text: ..., to: ...}')"});
  EXPECT_TRUE(
    diags(
      "name: w\ntrigger: t\nsteps:\n  - greet: {text: hi, to: \"{{ x }}\"}\n",
      lang)
      .empty());
}

TEST(Loader, Defaults) {
  auto w = load_ok(wf("call.incoming", "  - dial:\n  - record_voicemail:\n"));
  ASSERT_TRUE(w);
  const auto* to = w->steps[0].field("to");
  ASSERT_NE(to, nullptr);
  EXPECT_TRUE(to->defaulted);
  EXPECT_EQ(to->line, 0);
  EXPECT_EQ(to->list[0].source(), "{{ tenant.owner_phone }}");
  // No default: the host's ring timeout; the callee sees the caller's number.
  EXPECT_EQ(w->steps[0].field("timeout"), nullptr);
  EXPECT_EQ(w->steps[0].field("caller_id"), nullptr);
  EXPECT_EQ(w->steps[1].field("max_length")->number, 120'000);
  EXPECT_TRUE(w->steps[1].field("beep")->flag);
  EXPECT_FALSE(w->steps[1].field("transcribe")->flag);
  auto n
    = load_ok(wf("call.missed", "  - send_sms: {to: \"{{ call.from }}\", "
                                "body: x}\n  - http: {url: https://x}\n"
                                "  - http: {url: https://x, json: {a: 1}}\n"
                                "  - wait_for_reply: {timeout: 1h}\n"
                                "    on_reply: []\n    on_timeout: []\n"));
  ASSERT_TRUE(n);
  EXPECT_EQ(n->steps[0].field("from")->text.source(), "{{ tenant.number }}");
  EXPECT_TRUE(n->steps[0].field("urgent")->flag);
  EXPECT_EQ(n->steps[1].field("method")->text.source(), "GET");
  EXPECT_EQ(n->steps[1].field("timeout")->number, 5'000);
  EXPECT_EQ(n->steps[1].field("retries")->number, 0);
  // A request with a body and no method is a POST.
  EXPECT_EQ(n->steps[2].field("method")->text.source(), "POST");
  EXPECT_EQ(n->steps[3].field("from")->text.source(), "{{ contact.phone }}");
}

TEST(Loader, ADefaultNeedingAVariableTheTriggerLacksIsRequired) {
  EXPECT_EQ(diags(
              "name: w\ntrigger: schedule\nschedule: \"0 9 * * *\"\nsteps:\n"
              "  - wait_for_reply: {timeout: 1h}\n    on_reply: []\n    "
              "on_timeout: []\n  - tag_contact: x\n"),
            (strings{"wf.yaml:5:21: error: /steps/0/wait_for_reply: missing "
                     "required key 'from' (its default '{{ contact.phone }}' "
                     "needs contact.phone, which trigger 'schedule' does not "
                     "offer)",
                     "wf.yaml:8:18: error: /steps/1/tag_contact: missing "
                     "required key 'phone' (its default '{{ contact.phone }}' "
                     "needs contact.phone, which trigger 'schedule' does not "
                     "offer)"}));
}

TEST(Loader, StepRules) {
  EXPECT_EQ(diags(wf("call.incoming", "  - record_voicemail:\n    "
                                      "on_transcription: [log: x]\n")),
            strings{"wf.yaml:4:5: error: /steps/0: 'on_transcription' needs "
                    "'transcribe: true'"});
  EXPECT_EQ(diags(wf("sms.received", "  - http: {url: \"https://x\", method: "
                                     "GET, body: x}\n")),
            strings{"wf.yaml:4:38: error: /steps/0/http: a GET request has no "
                    "body"});
  EXPECT_EQ(diags(wf("sms.received", "  - http: {url: \"https://x\", method: "
                                     "DELETE, json: {a: 1}}\n")),
            strings{"wf.yaml:4:38: error: /steps/0/http: a DELETE request has "
                    "no body"});
  EXPECT_EQ(diags(wf("sms.received", "  - http: {url: \"https://x\", method: "
                                     "POST, body: x, json: {a: 1}}\n")),
            strings{"wf.yaml:4:59: error: /steps/0/http: give either 'body' or "
                    "'json', not both"});
  EXPECT_EQ(diags(wf("sms.received", "  - http: {url: \"https://x\", method: "
                                     "GTE}\n")),
            strings{"wf.yaml:4:38: error: /steps/0/http/method: 'GTE' is not "
                    "one of GET, POST, PUT, PATCH, DELETE (did you mean "
                    "'GET'?)"});
  EXPECT_EQ(diags(wf("sms.received", "  - switch: sms.body\n    cases: {}\n")),
            strings{"wf.yaml:5:12: error: /steps/0/cases: a switch needs at "
                    "least one case"});
  EXPECT_EQ(diags(wf("sms.received", "  - switch: sms.body\n    cases: [a]\n")),
            strings{"wf.yaml:5:12: error: /steps/0/cases: expected a map of "
                    "cases (a value: a list of steps), got a list"});
}

TEST(Loader, TemplateAndExpressionErrors) {
  EXPECT_EQ(diags(wf("sms.received", "  - log: \"hi {{ sms.body \"\n")),
            strings{"wf.yaml:4:10: error: /steps/0/log: unterminated '{{' at "
                    "column 4 of the template (expected '}}')"});
  EXPECT_EQ(diags(wf("sms.received", "  - log: \"{{ }}\"\n")),
            strings{"wf.yaml:4:10: error: /steps/0/log: empty '{{ }}' at "
                    "column 1 of the template"});
  EXPECT_EQ(diags(
              wf("sms.received", "  - log: \"hi {{ sms.body | lowr }}\"\n")),
            strings{"wf.yaml:4:10: error: /steps/0/log: unknown filter 'lowr' "
                    "(did you mean 'lower'?) at column 18 of the template"});
  // Conditions point at the problem itself.
  EXPECT_EQ(diags(wf("sms.received", "  - if: \"sms.body ===\"\n    then: "
                                     "[log: a]\n")),
            strings{"wf.yaml:4:21: error: /steps/0/if: unexpected '=' (use "
                    "'==' to compare)"});
  EXPECT_EQ(diags(wf("sms.received", "  - if: sms.body contains\n    then: "
                                     "[log: a]\n")),
            strings{"wf.yaml:4:26: error: /steps/0/if: unexpected end of the "
                    "expression (expected a value)"});
}

// -- variables and scopes ----------------------------------------------------

TEST(Loader, TriggerVariables) {
  EXPECT_EQ(diags(wf("sms.received", "  - log: \"{{ call.from }}\"\n")),
            strings{"wf.yaml:4:14: error: /steps/0/log: unknown variable "
                    "'call.from'; known variables here: "
                    + sms_vars});
  EXPECT_EQ(diags(wf("sms.received", "  - log: x {{ sms.bdy }}\n")),
            strings{"wf.yaml:4:15: error: /steps/0/log: unknown variable "
                    "'sms.bdy' (did you mean 'sms.body'?); known variables "
                    "here: "
                    + sms_vars});
  EXPECT_EQ(diags(wf("sms.received", "  - if: sms.from == \"x\" and "
                                     "call.to\n    then: [log: a]\n")),
            strings{"wf.yaml:4:29: error: /steps/0/if: unknown variable "
                    "'call.to'; known variables here: "
                    + sms_vars});
  // Every trigger's own variables load.
  for (const auto& t : default_language().triggers.all()) {
    std::string text = "name: w\ntrigger: " + t.name + "\n";
    if (t.name == "schedule")
      text += "schedule: \"0 9 * * *\"\n";
    text += "steps:\n";
    for (const auto& v : t.variables)
      text += "  - set: {x: \"{{ " + v + " }}\"}\n";
    if (t.voice)
      text += "  - hangup:\n";
    EXPECT_TRUE(diags(text).empty()) << t.name;
  }
}

TEST(Loader, SetVariablesAreKnownOnlyAfterTheSet) {
  EXPECT_EQ(diags(wf("sms.received",
                     "  - log: \"{{ vars.x }}\"\n  - set: {x: "
                     "\"1\"}\n  - log: \"{{ vars.x }} {{ vars.y "
                     "}}\"\n")),
            (strings{"wf.yaml:4:14: error: /steps/0/log: unknown variable "
                     "'vars.x'; a `set` step must define it before it is used",
                     "wf.yaml:6:27: error: /steps/2/log: unknown variable "
                     "'vars.y' (did you mean 'vars.x'?); a `set` step must "
                     "define it before it is used"}));
  // A set may read what an earlier one set, and a later one of its own map?
  // No: the map is one step, its names are known after it.
  EXPECT_EQ(diags(wf("sms.received", "  - set: {a: \"1\", b: \"{{ vars.a "
                                     "}}\"}\n")),
            strings{"wf.yaml:4:26: error: /steps/0/set/b: unknown variable "
                    "'vars.a'; a `set` step must define it before it is used"});
}

TEST(Loader, StepResultsAreKnownOnlyAfterTheStep) {
  EXPECT_EQ(diags(
              wf("sms.received",
                 "  - log: \"{{ steps.crm.status }}\"\n  - id: crm\n    "
                 "http: {url: \"https://x\"}\n  - log: \"{{ steps.crm.status "
                 "}} {{ steps.crm.json.a.b }} {{ steps.crm.foo }}\"\n")),
            (strings{"wf.yaml:4:14: error: /steps/0/log: unknown variable "
                     "'steps.crm.status'; results of a step are read after it, "
                     "by its id (steps.<id>.<field>)",
                     "wf.yaml:7:62: error: /steps/2/log: unknown variable "
                     "'steps.crm.foo' (did you mean 'steps.crm.ok'?); results "
                     "of a step are read after it, by its id "
                     "(steps.<id>.<field>)"}));
  // Without an id there are no results to read.
  EXPECT_EQ(diags(wf("sms.received", "  - http: {url: \"https://x\"}\n  - log: "
                                     "\"{{ steps.http.ok }}\"\n")),
            strings{"wf.yaml:5:14: error: /steps/1/log: unknown variable "
                    "'steps.http.ok'; results of a step are read after it, by "
                    "its id (steps.<id>.<field>)"});
  // dial.* after a dial.
  EXPECT_EQ(diags(wf("call.incoming",
                     "  - say: \"{{ dial.status }}\"\n  - "
                     "dial:\n  - say: \"{{ dial.status }}\"\n")),
            strings{"wf.yaml:4:14: error: /steps/0/say: unknown variable "
                    "'dial.status'; known "
                    "variables here: business_hours, call.answered, "
                    "call.duration, call.from, call.sid, call.to, "
                    "contact.phone, holiday, now.date, now.hour, now.minute, "
                    "now.time, now.timezone, now.weekday, tenant.id, "
                    "tenant.name, tenant.number, tenant.owner_phone, "
                    "tenant.page_by_call, tenant.timezone"});
}

TEST(Loader, BranchVariables) {
  // reply.* only inside on_reply.
  auto xs
    = diags(wf("sms.received",
               "  - log: \"{{ reply.body }}\"\n  - wait_for_reply: "
               "{timeout: 1h}\n    on_reply:\n      - log: \"{{ reply.body "
               "}}\"\n    on_timeout:\n      - log: \"{{ reply.from }}\"\n"
               "  - log: \"{{ reply.sid }}\"\n"));
  ASSERT_EQ(xs.size(), 3u);
  EXPECT_PRED2(starts_with, xs[0],
               "wf.yaml:4:14: error: /steps/0/log: unknown variable "
               "'reply.body'; known variables here: ");
  EXPECT_PRED2(starts_with, xs[1],
               "wf.yaml:9:18: error: /steps/1/on_timeout/0/log: unknown "
               "variable 'reply.from'; known variables here: ");
  EXPECT_PRED2(starts_with, xs[2],
               "wf.yaml:10:14: error: /steps/2/log: unknown variable "
               "'reply.sid'; known variables here: ");
  // loop.index only inside repeat.
  xs = diags(wf("sms.received", "  - repeat: {times: 3}\n    steps:\n      - "
                                "log: \"{{ loop.index }}\"\n  - log: \"{{ "
                                "loop.index }}\"\n"));
  ASSERT_EQ(xs.size(), 1u);
  EXPECT_PRED2(starts_with, xs[0],
               "wf.yaml:7:14: error: /steps/1/log: unknown variable "
               "'loop.index'; known variables here: ");
  // voicemail.transcription only inside on_transcription, which also sees
  // what the recording set.
  xs = diags(wf("call.incoming",
                "  - record_voicemail: {transcribe: true}\n    "
                "on_transcription:\n      - notify_owner: \"{{ "
                "voicemail.transcription }} {{ voicemail.url }}\"\n  - log: "
                "\"{{ voicemail.url }} {{ voicemail.transcription }}\"\n"));
  ASSERT_EQ(xs.size(), 1u);
  EXPECT_PRED2(starts_with, xs[0],
               "wf.yaml:7:34: error: /steps/1/log: unknown variable "
               "'voicemail.transcription'; known variables here: ");
}

TEST(Loader, WhatABranchDefinesIsKnownAfterTheStepNotInItsSiblings) {
  EXPECT_EQ(diags(
              wf("sms.received",
                 "  - if: business_hours\n    then: [set: {a: \"1\"}]\n    "
                 "else: [log: \"{{ vars.a }}\"]\n  - log: \"{{ vars.a }}\"\n")),
            strings{"wf.yaml:6:21: error: /steps/0/else/0/log: unknown "
                    "variable 'vars.a'; a `set` step must define it before it "
                    "is used"});
  EXPECT_EQ(diags(wf("sms.received",
                     "  - switch: sms.body\n    cases:\n      a: [set: {x: "
                     "\"1\"}]\n      b: [log: \"{{ vars.x }}\"]\n")),
            strings{"wf.yaml:7:20: error: /steps/0/cases/b/0/log: unknown "
                    "variable 'vars.x'; a `set` step must define it before it "
                    "is used"});
  // on_transcription runs as its own run: what it sets is not seen after.
  EXPECT_EQ(first(wf("call.incoming",
                     "  - record_voicemail: {transcribe: true}\n    "
                     "on_transcription: [set: {t: x}]\n  - log: \"{{ vars.t "
                     "}}\"\n")),
            "wf.yaml:6:14: error: /steps/1/log: unknown variable 'vars.t'; a "
            "`set` step must define it before it is used");
}

TEST(Loader, RepeatUntilSeesWhatTheBodyDefines) {
  EXPECT_TRUE(
    diags(wf("call.incoming",
             "  - repeat:\n      times: 2\n      until: dial.answered\n"
             "    steps:\n      - dial:\n"))
      .empty());
  EXPECT_EQ(diags(wf("sms.received",
                     "  - repeat: {times: 2, until: vars.nope}\n    steps: "
                     "[log: x]\n")),
            strings{"wf.yaml:4:31: error: /steps/0/repeat/until: unknown "
                    "variable 'vars.nope'; a `set` step must define it before "
                    "it is used"});
}

TEST(Loader, ColumnsPointAtTheVariableInsideTheScalar) {
  auto col = [](std::string_view step_line) {
    auto xs = diags(wf("sms.received", std::string(step_line) + "\n"));
    if (xs.size() != 1)
      return std::string("(") + std::to_string(xs.size()) + " diagnostics)";
    auto& x = xs.front();
    return x.substr(0, x.find(": error"));
  };
  EXPECT_EQ(col("  - log: hi {{ sms.bdy }}"), "wf.yaml:4:16");
  EXPECT_EQ(col("  - log: \"{{ sms.bdy }}\""), "wf.yaml:4:14");
  EXPECT_EQ(col("  - log: 'x {{ sms.bdy }}'"), "wf.yaml:4:16");
  EXPECT_EQ(col("  - log: {message: \"{{sms.bdy}}\"}"), "wf.yaml:4:23");
  // Escapes take more bytes than the characters they stand for.
  EXPECT_EQ(col("  - log: \"a\\\"b {{ sms.bdy }}\""), "wf.yaml:4:19");
  EXPECT_EQ(col("  - log: 'it''s {{ sms.bdy }}'"), "wf.yaml:4:20");
  EXPECT_EQ(col("  - log: \"\\u00e9 {{ sms.bdy }}\""), "wf.yaml:4:21");
  // Columns count bytes, as yaml-cpp's marks do.
  EXPECT_EQ(col("  - log: \"\xc3\xa9 {{ sms.bdy }}\""), "wf.yaml:4:17");
  // Beyond the first line: the scalar's own position.
  EXPECT_EQ(col("  - log: hi\n      there {{ sms.bdy }}"), "wf.yaml:4:10");
  EXPECT_EQ(col("  - log: |\n      hi {{ sms.bdy }}"), "wf.yaml:4:10");
  EXPECT_EQ(col("  - log: >\n      hi {{ sms.bdy }}"), "wf.yaml:4:10");
  // Conditions, quoted and plain.
  EXPECT_EQ(col("  - if: business_hours and sms.bdy\n    then: [log: x]"),
            "wf.yaml:4:28");
  EXPECT_EQ(col("  - if: \"{{ sms.bdy }}\"\n    then: [log: x]"),
            "wf.yaml:4:13");
}

// -- ids, schedules
// --------------------------------------------------------------

TEST(Loader, StepIds) {
  EXPECT_EQ(diags(wf("sms.received", "  - id: a\n    log: x\n  - if: true\n    "
                                     "then:\n      - id: a\n        log: y\n"
                                     "  - id: \"b c\"\n    log: z\n")),
            (strings{"wf.yaml:8:13: error: /steps/1/then/0/id: duplicate step "
                     "id 'a' (also used by /steps/0)",
                     "wf.yaml:10:9: error: /steps/2/id: invalid step id 'b c' "
                     "(use letters, digits, '_' and '-', at most 64)"}));
  auto w = load_ok(wf("sms.received", "  - id: first-one\n    log: x\n  - log: "
                                      "y\n"));
  ASSERT_TRUE(w);
  EXPECT_EQ(w->steps[0].display_id(), "first-one");
  EXPECT_EQ(w->steps[1].display_id(), "#1");
}

TEST(Loader, ScheduleRules) {
  auto w = load_ok(
    "name: w\ntrigger: schedule\nschedule: \"0 9 * * mon-fri\"\n"
    "steps:\n  - log: \"{{ schedule.cron }} {{ schedule.fired_at "
    "}}\"\n");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->schedule, "0 9 * * mon-fri");
  EXPECT_EQ(diags("name: w\ntrigger: schedule\nsteps:\n  - log: x\n"),
            strings{"wf.yaml:1:1: error: missing required key 'schedule' (a "
                    "cron expression, e.g. '0 9 * * mon-fri', for trigger "
                    "'schedule')"});
  EXPECT_EQ(diags("name: w\ntrigger: sms.received\nschedule: \"0 9 * * *\"\n"
                  "steps:\n  - log: x\n"),
            strings{"wf.yaml:3:11: error: /schedule: 'schedule' only goes with "
                    "'trigger: schedule'"});
  EXPECT_EQ(diags("name: w\ntrigger: schedule\nschedule: 0 25 * * *\nsteps:\n  "
                  "- log: x\n"),
            strings{"wf.yaml:3:13: error: /schedule: hour field: 25 is out of "
                    "range 0-23"});
  EXPECT_EQ(diags("name: w\ntrigger: schedule\nschedule: \"0 9 * * mon-fro\"\n"
                  "steps:\n  - log: x\n"),
            strings{
              "wf.yaml:3:24: error: /schedule: day-of-week field: unknown "
              "day name 'fro' (did you mean 'FRI'?) (names are SUN MON "
              "TUE WED THU FRI SAT)"});
  EXPECT_EQ(diags("name: w\ntrigger: schedule\nschedule: [a]\nsteps:\n  - log: "
                  "x\n"),
            strings{"wf.yaml:3:11: error: /schedule: expected a string, got a "
                    "list"});
}

// -- limits
// --------------------------------------------------------------------

TEST(Loader, StepAndNestingLimits) {
  std::string many;
  for (int i = 0; i < 501; ++i)
    many += "  - log: x\n";
  EXPECT_EQ(diags(wf("sms.received", many)),
            strings{"wf.yaml:504:5: error: /steps/500: too many steps (at most "
                    "500 in a file)"});
  std::string deep;
  std::string indent = "  ";
  for (int i = 0; i < 18; ++i) {
    deep += indent + "- if: true\n" + indent + "  then:\n";
    indent += "    ";
  }
  deep += indent + "- log: x\n";
  auto xs = diags(wf("sms.received", deep));
  ASSERT_EQ(xs.size(), 1u);
  EXPECT_NE(xs[0].find("steps nested too deeply (at most 16 levels)"),
            std::string::npos)
    << xs[0];
}

TEST(Loader, DiagnosticsAreSortedAndComplete) {
  auto xs = diags(wf("call.missed", "  - send_sms: {to: \"{{ call.form }}\", "
                                    "bdy: x}\n  - lgo: y\n  - wait: 1w\n"));
  ASSERT_EQ(xs.size(), 4u);
  EXPECT_EQ(xs[0].substr(0, 13), "wf.yaml:4:24:");
  EXPECT_EQ(xs[1].substr(0, 13), "wf.yaml:4:39:");
  EXPECT_EQ(xs[2].substr(0, 12), "wf.yaml:5:5:");
  EXPECT_EQ(xs[3].substr(0, 13), "wf.yaml:6:11:");
}

TEST(Loader, NeverThrowsOnJunk) {
  for (std::string_view junk :
       {"{", "[[[[", "name: &a [*a]", "steps: !!binary x", ": :", "\xff\xfe",
        "name: w\ntrigger: sms.received\nsteps:\n  - ? [a]\n    : b\n",
        "name: w\ntrigger: sms.received\nsteps:\n  - log: *nope\n",
        "name: w\ntrigger: sms.received\nsteps:\n  - {? {a: b} : c}\n"}) {
    load_result r;
    EXPECT_NO_THROW(r = load_string(junk, "junk.yaml")) << junk;
    EXPECT_FALSE(r.ok()) << junk;
    EXPECT_FALSE(r.diagnostics.empty()) << junk;
  }
}

// -- files and catalogs
// ----------------------------------------------------------

TEST(Loader, LoadFile) {
  temp_dir dir;
  dir.write("a.yaml", wf("sms.received", "  - log: x\n"));
  auto r = load_file(dir.file("a.yaml"));
  ASSERT_TRUE(r.ok()) << to_string(r.diagnostics);
  EXPECT_EQ(r.value->file, dir.file("a.yaml"));
  auto missing = load_file(dir.file("nope.yaml"));
  EXPECT_FALSE(missing.ok());
  ASSERT_EQ(missing.diagnostics.size(), 1u);
  EXPECT_EQ(to_string(missing.diagnostics[0]),
            dir.file("nope.yaml")
              + ": error: cannot read file: No such file or directory");
  dir.write("big.yaml", std::string(1024 * 1024 + 1, '#'));
  auto big = load_file(dir.file("big.yaml"));
  ASSERT_EQ(big.diagnostics.size(), 1u);
  EXPECT_EQ(big.diagnostics[0].message,
            "the file is too large (1048577 bytes; at most 1048576)");
}

TEST(Loader, LoadPathOnAFolder) {
  temp_dir dir;
  dir.write("b.yaml", "name: b\ntrigger: call.missed\nsteps:\n  - log: b\n");
  dir.write("a.yaml", "name: a\ntrigger: call.missed\nsteps:\n  - log: a\n");
  dir.write("c.yaml", "name: c\ntrigger: sms.received\nsteps:\n  - log: c\n");
  dir.write("a.test.yaml", "not: [a workflow\n");
  dir.write(".hidden.yaml", "not: [a workflow\n");
  dir.write("notes.txt", "not yaml\n");
  std::filesystem::create_directories(dir.file("tenants/acme"));
  std::ofstream(dir.file("tenants/acme/x.yaml")) << "junk: [\n";
  auto c = load_path(dir.str());
  ASSERT_TRUE(c.ok()) << to_string(c.diagnostics());
  ASSERT_EQ(c.workflows().size(), 3u);
  EXPECT_EQ(c.workflows()[0]->name, "a");
  EXPECT_EQ(c.workflows()[1]->name, "b");
  EXPECT_EQ(c.workflows()[0]->file, dir.file("a.yaml"));
  auto missed = c.for_trigger("call.missed");
  ASSERT_EQ(missed.size(), 2u);
  EXPECT_EQ(missed[0]->name, "a");
  EXPECT_EQ(missed[1]->name, "b");
  EXPECT_TRUE(c.for_trigger("call.answered").empty());
  ASSERT_TRUE(c.find("c"));
  EXPECT_EQ(c.find("c")->trigger, "sms.received");
  EXPECT_EQ(c.find("nope"), nullptr);
}

TEST(Loader, LoadPathOnAFile) {
  temp_dir dir;
  dir.write("one.yaml", "name: one\ntrigger: call.missed\nsteps:\n  - log: "
                        "x\n");
  auto c = load_path(dir.file("one.yaml"));
  ASSERT_TRUE(c.ok()) << to_string(c.diagnostics());
  ASSERT_EQ(c.workflows().size(), 1u);
  EXPECT_EQ(c.workflows()[0]->name, "one");
  dir.write("bad.yaml", "name: bad\ntrigger: call.missed\nsteps: []\n");
  auto b = load_path(dir.file("bad.yaml"));
  EXPECT_FALSE(b.ok());
  EXPECT_TRUE(b.workflows().empty());
  EXPECT_EQ(to_string(b.diagnostics()),
            dir.file("bad.yaml")
              + ":3:8: error: /steps: a workflow needs at least one step\n");
}

TEST(Loader, CatalogRules) {
  temp_dir dir;
  dir.write("a.yaml", "name: same\ntrigger: call.missed\nsteps:\n  - log: a\n");
  dir.write("b.yaml", "name: same\ntrigger: call.missed\nsteps:\n  - log: b\n");
  dir.write("c.yaml", "name: answer\ntrigger: call.incoming\nsteps:\n  - "
                      "hangup:\n");
  dir.write("d.yaml", "name: answer2\ntrigger: call.incoming\nsteps:\n  - "
                      "hangup:\n");
  dir.write("e.yaml",
            "name: broken\ntrigger: call.missed\nsteps:\n  - lg: x\n");
  auto c = load_directory(dir.str());
  EXPECT_FALSE(c.ok());
  ASSERT_EQ(c.workflows().size(), 2u);
  EXPECT_EQ(c.workflows()[0]->name, "same");
  EXPECT_EQ(c.workflows()[1]->name, "answer");
  EXPECT_EQ(to_string(c.diagnostics()),
            dir.file("b.yaml")
              + ":1:7: error: /name: duplicate workflow name 'same' (also "
                "defined in "
              + dir.file("a.yaml") + ")\n" + dir.file("d.yaml")
              + ":1:7: error: /name: a second call.incoming workflow "
                "('answer2'; 'answer' in "
              + dir.file("c.yaml")
              + " answers calls already): a call gets one answer\n"
              + dir.file("e.yaml")
              + ":4:5: error: /steps/0: unknown key 'lg' (did you mean "
                "'log'?); known step types: dial, say, play, "
                "record_voicemail, hangup, reject, send_sms, notify_owner, call_owner, ai_reply, if, "
                "switch, set, stop, wait, wait_for_reply, repeat, http, log, "
                "tag_contact\n");
}

TEST(Loader, AnUnreadableFolderIsADiagnostic) {
  auto c = load_directory("/nonexistent/ringback-workflows");
  EXPECT_FALSE(c.ok());
  ASSERT_EQ(c.diagnostics().size(), 1u);
  EXPECT_EQ(to_string(c.diagnostics()[0]),
            "/nonexistent/ringback-workflows: error: cannot read directory: No "
            "such file or directory");
  auto p = load_path("/nonexistent/x.yaml");
  ASSERT_EQ(p.diagnostics().size(), 1u);
  EXPECT_EQ(p.diagnostics()[0].message,
            "cannot read file: No such file or directory");
}

TEST(Loader, EveryStepTypesExampleLoads) {
  for (const auto& s : default_language().steps.all()) {
    std::string steps;
    std::string line = "  ";
    for (char c : s->example) {
      steps += c;
      if (c == '\n')
        steps += "  ";
    }
    steps = "  " + steps + "\n";
    bool loaded = false;
    std::string problems;
    for (const char* trigger :
         {"call.incoming", "call.missed", "sms.received"}) {
      auto r = load_string(wf(trigger, steps), s->type + ".yaml");
      if (r.ok()) {
        loaded = true;
        ASSERT_FALSE(r.value->steps.empty());
        EXPECT_EQ(r.value->steps.back().type, s->type);
        break;
      }
      problems += to_string(r.diagnostics);
    }
    EXPECT_TRUE(loaded) << s->type << ":\n" << steps << problems;
  }
}
