#include "ringback/workflows/language.hpp"
#include "ringback/workflows/loader.hpp"
#include "ringback/workflows/program.hpp"

#include <gtest/gtest.h>

using namespace ringback::workflows;

namespace {

using strings = std::vector<std::string>;

std::string wf(std::string_view trigger, std::string_view steps) {
  return "name: w\ntrigger: " + std::string(trigger) + "\nsteps:\n"
         + std::string(steps);
}

strings diags(std::string_view text) {
  auto r = load_string(text, "wf.yaml");
  strings out;
  for (const auto& d : r.diagnostics)
    out.push_back(to_string(d));
  EXPECT_EQ(r.ok(), out.empty());
  return out;
}

/// The listing of a workflow that loads, or its diagnostics.
std::string listing(std::string_view text) {
  auto r = load_string(text, "wf.yaml");
  if (!r.ok())
    return to_string(r.diagnostics);
  return disassemble(*r.value->code);
}

const std::string no_answer
  = "a path through this workflow ends without answering the call (every "
    "path of a call.incoming workflow needs a voice step: dial, say, play, "
    "record_voicemail, hangup or reject)";

} // namespace

// -- unreachable steps
// -----------------------------------------------------------

TEST(Compile, StepsAfterAStopAreUnreachable) {
  EXPECT_EQ(diags(wf("sms.received", "  - log: a\n  - stop: done\n  - log: b\n"
                                     "  - log: c\n")),
            strings{"wf.yaml:6:5: error: /steps/2: unreachable step: the run "
                    "always stops at the 'stop' at line 5 before it"});
  // Inside a branch too; the branch's stop does not end the outer list.
  EXPECT_EQ(diags(wf("sms.received", "  - if: business_hours\n    then:\n      "
                                     "- stop:\n      - log: a\n  - log: b\n")),
            strings{"wf.yaml:7:9: error: /steps/0/then/1: unreachable step: "
                    "the run always stops at the 'stop' at line 6 before it"});
}

TEST(Compile, StepsAfterAnIfWhoseBranchesBothStopAreUnreachable) {
  EXPECT_EQ(diags(wf("sms.received",
                     "  - if: business_hours\n    then: [log: a, "
                     "stop: ]\n    else: [stop: x]\n  - log: "
                     "b\n")),
            strings{"wf.yaml:7:5: error: /steps/1: unreachable step: the run "
                    "always stops at the 'if' at line 4 before it"});
  // One branch that goes on is enough.
  EXPECT_TRUE(diags(wf("sms.received", "  - if: business_hours\n    then: "
                                       "[stop: ]\n  - log: b\n"))
                .empty());
  EXPECT_TRUE(diags(wf("sms.received", "  - if: business_hours\n    then: "
                                       "[stop: ]\n    else: [log: a]\n  - log: "
                                       "b\n"))
                .empty());
  // Nested: an if in a branch that always stops.
  EXPECT_EQ(diags(
              wf("sms.received",
                 "  - if: business_hours\n    then:\n      - if: holiday\n"
                 "        then: [stop: ]\n        else: [stop: ]\n    else: "
                 "[stop: ]\n  - log: b\n")),
            strings{"wf.yaml:10:5: error: /steps/1: unreachable step: the run "
                    "always stops at the 'if' at line 4 before it"});
}

TEST(Compile, OtherStepsThatAlwaysStop) {
  EXPECT_EQ(diags(wf("sms.received",
                     "  - switch: sms.body\n    cases:\n      a: "
                     "[stop: ]\n    default: [stop: ]\n  - log: "
                     "b\n")),
            strings{"wf.yaml:8:5: error: /steps/1: unreachable step: the run "
                    "always stops at the 'switch' at line 4 before it"});
  // Without a default, no case may match.
  EXPECT_TRUE(
    diags(wf("sms.received", "  - switch: sms.body\n    cases:\n      "
                             "a: [stop: ]\n  - log: b\n"))
      .empty());
  EXPECT_EQ(diags(wf("sms.received", "  - wait_for_reply: {timeout: 1h}\n    "
                                     "on_reply: [stop: ]\n    on_timeout: "
                                     "[stop: ]\n  - log: b\n")),
            strings{
              "wf.yaml:7:5: error: /steps/1: unreachable step: the run "
              "always stops at the 'wait_for_reply' at line 4 before it"});
  EXPECT_TRUE(
    diags(wf("sms.received", "  - wait_for_reply: {timeout: 1h}\n    "
                             "on_reply: [stop: ]\n    on_timeout: []\n"
                             "  - log: b\n"))
      .empty());
  // A loop's first pass always runs.
  EXPECT_EQ(diags(wf("sms.received", "  - repeat: {times: 3}\n    steps: [log: "
                                     "a, stop: ]\n  - log: b\n")),
            strings{"wf.yaml:6:5: error: /steps/1: unreachable step: the run "
                    "always stops at the 'repeat' at line 4 before it"});
}

// -- voice
// -----------------------------------------------------------------------

TEST(Compile, VoiceStepsNeedALiveCall) {
  EXPECT_EQ(diags(wf("call.missed", "  - say: hi\n")),
            strings{"wf.yaml:4:5: error: /steps/0: 'say' needs a live call: "
                    "voice steps run only in call.incoming workflows (and not "
                    "in on_transcription, which runs after the call)"});
  EXPECT_EQ(diags(wf("sms.received", "  - if: true\n    then: [hangup: ]\n")),
            strings{
              "wf.yaml:5:12: error: /steps/0/then/0: 'hangup' needs a "
              "live call: voice steps run only in call.incoming workflows "
              "(and not in on_transcription, which runs after the call)"});
  EXPECT_EQ(diags(wf("call.incoming", "  - record_voicemail: {transcribe: "
                                      "true}\n    on_transcription:\n      - "
                                      "say: too late\n")),
            strings{"wf.yaml:6:9: error: /steps/0/on_transcription/0: 'say' "
                    "needs a live call: voice steps run only in call.incoming "
                    "workflows (and not in on_transcription, which runs after "
                    "the call)"});
  for (const auto& s : default_language().steps.all()) {
    if (s->family != step_family::voice)
      continue;
    const auto* primary = s->field(s->primary);
    auto xs = diags(
      wf("call.completed",
         "  - " + s->type + (primary && primary->required ? ": x\n" : ":\n")));
    ASSERT_FALSE(xs.empty()) << s->type;
    EXPECT_EQ(xs.back(), "wf.yaml:4:5: error: /steps/0: '" + s->type
                           + "' needs a live call: voice steps run only in "
                             "call.incoming workflows (and not in "
                             "on_transcription, which runs after the call)");
  }
}

TEST(Compile, OnTranscriptionNeedsTranscribe) {
  EXPECT_EQ(diags(wf("call.incoming",
                     "  - record_voicemail: {transcribe: "
                     "false}\n    on_transcription: [log: x]\n")),
            strings{"wf.yaml:4:5: error: /steps/0: 'on_transcription' needs "
                    "'transcribe: true'"});
  EXPECT_TRUE(
    diags(wf("call.incoming", "  - record_voicemail: {transcribe: "
                              "true}\n    on_transcription: [log: x]\n"))
      .empty());
}

TEST(Compile, VoiceAfterTheCallEnded) {
  EXPECT_EQ(diags(wf("call.incoming", "  - say: hi\n  - hangup:\n  - say: "
                                      "bye\n")),
            strings{"wf.yaml:6:5: error: /steps/2: 'say' after the call was "
                    "ended (by a hangup or reject before it)"});
  EXPECT_EQ(diags(wf("call.incoming", "  - reject: busy\n  - dial:\n")),
            strings{"wf.yaml:5:5: error: /steps/1: 'dial' after the call was "
                    "ended (by a hangup or reject before it)"});
  EXPECT_EQ(diags(wf("call.incoming", "  - if: business_hours\n    then: "
                                      "[hangup: ]\n    else: [reject: ]\n  - "
                                      "play: https://x/a.mp3\n")),
            strings{"wf.yaml:7:5: error: /steps/1: 'play' after the call was "
                    "ended (by a hangup or reject before it)"});
  // Non-voice steps after a hangup are fine (a text to the caller).
  EXPECT_TRUE(diags(wf("call.incoming", "  - hangup:\n  - send_sms: {to: \"{{ "
                                        "call.from }}\", body: hi}\n"))
                .empty());
  // After an if that stops on its hangup path, the other path goes on.
  EXPECT_TRUE(diags(wf("call.incoming", "  - if: business_hours\n    then: "
                                        "[hangup: , stop: ]\n  - say: hi\n"))
                .empty());
}

TEST(Compile, CallIncomingPathsMustAnswer) {
  EXPECT_EQ(diags(wf("call.incoming", "  - log: x\n")),
            strings{"wf.yaml:4:5: error: /steps/0: " + no_answer});
  EXPECT_EQ(diags(wf("call.incoming",
                     "  - if: business_hours\n    then:\n      "
                     "- dial:\n")),
            strings{"wf.yaml:4:5: error: /steps/0: when the condition is false "
                    "the call gets no answer (add an 'else' with a voice "
                    "step, or one after the 'if')"});
  // A voice step after the `if` answers the path the `if` left open.
  EXPECT_TRUE(diags(wf("call.incoming",
                       "  - if: business_hours\n    then:\n      - say: hi\n"
                       "  - dial:\n"))
                .empty());
  EXPECT_TRUE(diags(wf("call.incoming",
                       "  - switch: call.from\n    cases:\n      "
                       "\"+15005550100\": [say: vip]\n  - dial:\n"))
                .empty());
  EXPECT_EQ(diags(wf("call.incoming",
                     "  - switch: call.from\n    cases:\n      "
                     "\"+15005550100\": [reject: ]\n")),
            strings{"wf.yaml:4:5: error: /steps/0: when no case matches the "
                    "call gets no answer (add a 'default' with a voice step, "
                    "or one after the 'switch')"});
  EXPECT_EQ(
    diags(wf("call.incoming", "  - if: holiday\n    then: [stop: ]\n  - "
                              "dial:\n")),
    strings{"wf.yaml:5:12: error: /steps/0/then/0: the run can stop "
            "here without answering the call (add a voice step before "
            "it: dial, say, play, record_voicemail, hangup or reject)"});
  EXPECT_EQ(diags(wf("call.incoming", "  - wait: 10s\n  - say: late\n")),
            strings{"wf.yaml:4:5: error: /steps/0: 'wait' before the call is "
                    "answered: the carrier needs the answer within seconds "
                    "(answer first, e.g. with 'say' or 'dial')"});
  EXPECT_EQ(diags(wf("call.incoming", "  - wait_for_reply: {timeout: 1m}\n    "
                                      "on_reply: [say: a]\n    on_timeout: "
                                      "[say: b]\n")),
            strings{"wf.yaml:4:5: error: /steps/0: 'wait_for_reply' before the "
                    "call is answered: the carrier needs the answer within "
                    "seconds (answer first, e.g. with 'say' or 'dial')"});
  // A branch without a voice step, both written.
  EXPECT_EQ(diags(wf("call.incoming",
                     "  - if: business_hours\n    then: [dial: "
                     "]\n    else: [log: closed]\n")),
            strings{"wf.yaml:4:5: error: /steps/0: " + no_answer});
}

TEST(Compile, CallIncomingPathsThatAnswer) {
  for (std::string_view steps :
       {"  - say: hi\n", "  - reject:\n",
        "  - if: business_hours\n    then: [dial: ]\n    else: "
        "[record_voicemail: ]\n",
        "  - switch: call.from\n    cases:\n      x: [hangup: ]\n    default: "
        "[dial: ]\n",
        "  - repeat: {times: 2, until: dial.answered}\n    steps: [dial: ]\n",
        "  - if: holiday\n    then: [say: closed, stop: ]\n  - dial:\n",
        "  - say: hi\n  - wait_for_reply: {timeout: 1h}\n    on_reply: [log: "
        "r]\n    on_timeout: []\n",
        "  - dial:\n  - if: \"not dial.answered\"\n    then: "
        "[record_voicemail: ]\n"}) {
    EXPECT_TRUE(diags(wf("call.incoming", steps)).empty()) << steps;
  }
}

TEST(Compile, VoiceAfterAWaitIsAnError) {
  EXPECT_EQ(diags(wf("call.incoming", "  - say: hold on\n  - wait: 10s\n  - "
                                      "say: thanks\n")),
            strings{"wf.yaml:6:5: error: /steps/2: 'say' after the 'wait' at "
                    "line 5: the call's answer went out when the run began to "
                    "wait, so voice steps must come before any wait"});
  EXPECT_EQ(diags(wf("call.incoming", "  - say: hi\n  - wait_for_reply: "
                                      "{timeout: 1h}\n    on_reply: [dial: ]\n"
                                      "    on_timeout: []\n")),
            strings{
              "wf.yaml:6:16: error: /steps/1/on_reply/0: 'dial' after the "
              "'wait_for_reply' at line 5: the call's answer went out "
              "when the run began to wait, so voice steps must come "
              "before any wait"});
}

TEST(Compile, WithoutATriggerOnlyTheControlFlowIsChecked) {
  auto ok = load_string(wf("sms.received", "  - log: x\n"), "wf.yaml");
  ASSERT_TRUE(ok.ok());
  std::vector<compile_problem> problems;
  auto p = compile(*ok.value, nullptr, problems);
  EXPECT_TRUE(problems.empty());
  ASSERT_TRUE(p);
  EXPECT_EQ(disassemble(*p), "0: exec log #0\n1: halt\n");
  p = compile(*ok.value, default_language().triggers.find("call.incoming"),
              problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].message, no_answer);
  EXPECT_EQ(problems[0].path, "/steps/0");
  EXPECT_EQ(problems[0].line, 4);
  EXPECT_EQ(problems[0].column, 5);
  // An unknown trigger is the loader's to report; variables are not checked.
  EXPECT_EQ(diags(wf("call.unknown", "  - log: \"{{ whatever }}\"\n  - "
                                     "stop:\n  - log: y\n")),
            (strings{"wf.yaml:2:10: error: /trigger: unknown trigger "
                     "'call.unknown'; known triggers: call.incoming, "
                     "call.missed, call.answered, call.completed, "
                     "sms.received, conversation.owner_timeout, schedule"}));
}

// -- the program
// ------------------------------------------------------------------

TEST(Compile, DisassembleIfElse) {
  EXPECT_EQ(listing(wf("sms.received",
                       "  - if: business_hours\n    then: [log: "
                       "a]\n    else: [log: b]\n  - log: c\n")),
            "0: if #0 else->3\n"
            "1: exec log #1\n"
            "2: jump 4\n"
            "3: exec log #2\n"
            "4: exec log #3\n"
            "5: halt\n");
  EXPECT_EQ(listing(wf("sms.received", "  - id: open\n    if: business_hours\n"
                                       "    then: [log: a]\n  - log: c\n")),
            "0: if open else->2\n"
            "1: exec log #1\n"
            "2: exec log #2\n"
            "3: halt\n");
}

TEST(Compile, DisassembleSwitch) {
  EXPECT_EQ(listing(wf("sms.received", "  - id: sw\n    switch: sms.body\n    "
                                       "cases:\n      a: [log: a]\n      b: "
                                       "[log: b, log: bb]\n    default: [log: "
                                       "d]\n  - log: c\n")),
            "0: switch sw a->1 b->3 default->6\n"
            "1: exec log #1\n"
            "2: jump 7\n"
            "3: exec log #2\n"
            "4: exec log #3\n"
            "5: jump 7\n"
            "6: exec log #4\n"
            "7: exec log #5\n"
            "8: halt\n");
  EXPECT_EQ(listing(wf("sms.received",
                       "  - switch: sms.body\n    cases:\n      "
                       "a: [log: a]\n")),
            "0: switch #0 a->1 default->3\n"
            "1: exec log #1\n"
            "2: jump 3\n"
            "3: halt\n");
}

TEST(Compile, DisassembleRepeat) {
  auto r
    = load_string(wf("sms.received", "  - repeat: {times: 3}\n    steps:\n"
                                     "      - repeat: {times: 2}\n        "
                                     "steps: [log: a]\n      - log: b\n  - "
                                     "log: c\n"),
                  "wf.yaml");
  ASSERT_TRUE(r.ok()) << to_string(r.diagnostics);
  EXPECT_EQ(disassemble(*r.value->code), "0: loop_begin 0\n"
                                         "1: loop_begin 1\n"
                                         "2: exec log #2\n"
                                         "3: loop_next 1 body->2\n"
                                         "4: exec log #3\n"
                                         "5: loop_next 0 body->1\n"
                                         "6: exec log #4\n"
                                         "7: halt\n");
  EXPECT_EQ(r.value->code->loop_slots, 2u);
}

TEST(Compile, DisassembleWaitForReplyAndStop) {
  EXPECT_EQ(listing(wf("sms.received", "  - id: ask\n    wait_for_reply: "
                                       "{timeout: 1h}\n    on_reply: [log: r]\n"
                                       "    on_timeout: [log: t]\n  - stop: "
                                       "done\n")),
            "0: exec wait_for_reply ask on_reply->2 on_timeout->4\n"
            "1: jump 6\n"
            "2: exec log #1\n"
            "3: jump 6\n"
            "4: exec log #2\n"
            "5: jump 6\n"
            "6: halt #3\n"
            "7: halt\n");
}

TEST(Compile, DisassembleEntries) {
  auto r = load_string(
    wf("call.incoming", "  - id: vm\n    record_voicemail: {transcribe: true}\n"
                        "    on_transcription: [notify_owner: x]\n  - "
                        "hangup:\n"),
    "wf.yaml");
  ASSERT_TRUE(r.ok()) << to_string(r.diagnostics);
  EXPECT_EQ(disassemble(*r.value->code), "0: exec record_voicemail vm\n"
                                         "1: exec hangup #2\n"
                                         "2: halt\n"
                                         "3: exec notify_owner #1\n"
                                         "4: halt\n"
                                         "entry transcription:0 -> 3\n");
  ASSERT_EQ(r.value->code->entries.size(), 1u);
  EXPECT_EQ(r.value->code->entries[0].first,
            transcription_entry(r.value->steps[0]));
}
