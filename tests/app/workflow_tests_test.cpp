#include "ringback/app/workflow_tests.hpp"

#include "ringback/app/cli.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace ringback::app;

namespace {

namespace fs = std::filesystem;

class TempDir {
public:
  TempDir() {
    auto name
      = std::string("ringback-wftest-")
        + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-"
        + std::to_string(::getpid());
    path_ = fs::temp_directory_path() / name;
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string str() const {
    return path_.string();
  }
  std::string write(const std::string& name, const std::string& text) const {
    auto p = path_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }

private:
  fs::path path_;
};

// -- workflows the tests run ------------------------------------------------

const std::string missed_yaml = R"(name: missed
trigger: call.missed
steps:
  - id: text_back
    send_sms:
      to: "{{ call.from }}"
      body: "Sorry we missed you at {{ tenant.name }}"
  - id: tell
    notify_owner: "Missed {{ call.from }}"
)";

const std::string incoming_yaml = R"(name: incoming
trigger: call.incoming
steps:
  - if: business_hours
    then:
      - dial:
          timeout: 15s
      - if: dial.answered
        then:
          - stop: answered
      - say: "Leave a message"
    else:
      - say: "Leave a message"
  - id: vm
    record_voicemail:
      transcribe: true
    on_transcription:
      - notify_owner: "VM from {{ call.from }}: {{ voicemail.transcription }}"
  - hangup:
)";

const std::string crm_yaml = R"(name: crm
trigger: sms.received
steps:
  - id: lookup
    http:
      method: POST
      url: "https://crm.example.com/leads"
      json: {phone: "{{ sms.from }}"}
  - log: "crm {{ steps.lookup.status }} id {{ steps.lookup.json.id }} error {{ steps.lookup.error }}"
  - tag_contact: lead
)";

const std::string followup_yaml = R"(name: followup
trigger: call.answered
steps:
  - wait: 1h
  - send_sms:
      to: "{{ call.from }}"
      body: "How was it?"
      urgent: false
  - wait_for_reply:
      timeout: 1d
    on_reply:
      - set: {answer: "{{ reply.body }}"}
    on_timeout:
      - log: "no answer"
)";

const std::string daily_yaml = R"(name: daily
trigger: schedule
schedule: "0 9 * * *"
steps:
  - log: "morning {{ schedule.fired_at }} {{ business_hours }}"
)";

/// Runs `test` (a test file's text) against the given workflows, written
/// into a fresh folder; the file is displayed as `t.test.yaml`.
class WorkflowTests : public ::testing::Test {
protected:
  void add(const std::string& name, const std::string& text) {
    dir_.write(name, text);
  }

  workflow_test_file_result run(const std::string& test,
                                const workflow_test_options& options = {}) {
    return run_workflow_test_string(test, "t.test.yaml", dir_.str(), options);
  }

  /// The only test of `test`; fails the gtest when the file has problems.
  workflow_test_result one(const std::string& test) {
    auto r = run(test);
    EXPECT_TRUE(r.diagnostics.empty()) << diagnostics(r);
    EXPECT_EQ(r.tests.size(), 1u);
    if (r.tests.empty())
      return {};
    return r.tests.front();
  }

  static std::string diagnostics(const workflow_test_file_result& r) {
    return ringback::workflows::to_string(r.diagnostics);
  }

  static std::string trace(const workflow_test_result& r) {
    std::string out;
    for (const auto& l : r.trace)
      out += l + "\n";
    return out;
  }

  /// The first line of a failure (its position and summary).
  static std::string first_line(const std::string& x) {
    return x.substr(0, x.find('\n'));
  }

  TempDir dir_;
};

// -- passing and failing tests ------------------------------------------------

TEST_F(WorkflowTests, MissedCallTextBackPasses) {
  add("missed.yaml", missed_yaml);
  auto t = one(R"(tenant: {name: Acme}
tests:
  - name: missed
    steps:
      - call: {from: "+15551230000"}
      - expect: {twiml: {contains: "<Dial"}}
      - dial_result: no-answer
      - expect:
          sms: {to: "+15551230000", body: "Sorry we missed you at Acme", urgent: true}
          notify_owner: {body: {matches: "^Missed \\+1555"}}
          sms_count: 2
          run: {workflow: missed, status: finished}
          runs: {workflow: missed, count: 1}
      - call_end: true
      - expect: {no_sms: true}
)");
  EXPECT_TRUE(t.passed) << t.failure << "\n" << trace(t);
  EXPECT_EQ(t.name, "missed");
  EXPECT_EQ(t.line, 3);
  ASSERT_FALSE(t.trace.empty());
  EXPECT_EQ(t.trace.front(),
            "mon 2026-11-23 10:00:00 the test starts (America/Denver)");
}

TEST_F(WorkflowTests, EachExpectationKindFailsWithExpectedAndActual) {
  add("missed.yaml", missed_yaml);
  // One test per failing expectation; line 5 holds it each time.
  struct example {
    std::string expect;
    std::string first_line;
  };
  const std::vector<example> examples{
    {R"(twiml: {contains: "<Say"})",
     "t.test.yaml:6:18: expect twiml: expected the TwiML answer to the "
     "dial-result webhook where it contains \"<Say\""},
    {R"(sms: {to: "+15550000000"})",
     "t.test.yaml:6:18: expect sms: expected an SMS where to is "
     "\"+15550000000\""},
    {R"(sms: {body: {contains: "x"}, count: 2})",
     "t.test.yaml:6:18: expect sms: expected 2 SMS where body contains \"x\", "
     "got 0"},
    {R"(sms: {to: "+15551230000", none: true})",
     "t.test.yaml:6:18: expect sms: expected no SMS where to is "
     "\"+15551230000\" since the last expect, got 1:"},
    {R"(sms: {urgent: false})",
     "t.test.yaml:6:18: expect sms: expected an SMS where urgent is false"},
    {R"(sms: {held: true})",
     "t.test.yaml:6:18: expect sms: expected an SMS where held is true"},
    {R"(sms_count: 1)",
     "t.test.yaml:6:18: expect sms_count: expected 1 SMS, got 2"},
    {R"(no_sms: true)",
     "t.test.yaml:6:18: expect no_sms: expected no SMS since the last "
     "expect, got 2:"},
    {R"(notify_owner: {body: {not_contains: "Missed"}})",
     "t.test.yaml:6:18: expect notify_owner: expected an SMS where to is the "
     "owner +15005550199, body does not contain \"Missed\""},
    {R"(http: {method: POST})",
     "t.test.yaml:6:18: expect http: expected an HTTP request where method "
     "is POST"},
    {R"(log: {level: warn})",
     "t.test.yaml:6:18: expect log: expected a log line where level is warn"},
    {R"(tag: vip)", "t.test.yaml:6:18: expect tag: expected a tag where tag "
                    "is \"vip\""},
    {R"(run: {workflow: missed, status: waiting})",
     "t.test.yaml:6:18: expect run: the last run 1 (missed) does not match:"},
    {R"(run: {workflow: mised})",
     "t.test.yaml:6:18: expect run: no workflow named 'mised' is under test "
     "(missed) (did you mean 'missed'?)"},
    {R"(runs: {workflow: missed, count: 2})",
     "t.test.yaml:6:18: expect runs: expected 2 runs where workflow is "
     "missed, got 1"},
  };
  for (const auto& x : examples) {
    auto t = one(R"(tests:
  - name: fails
    steps:
      - call: {from: "+15551230000"}
      - dial_result: busy
      - expect: {)"
                 + x.expect + "}\n");
    EXPECT_FALSE(t.passed) << x.expect;
    EXPECT_EQ(first_line(t.failure), x.first_line) << t.failure;
    EXPECT_FALSE(t.trace.empty()) << x.expect;
  }
}

TEST_F(WorkflowTests, FailureListsTheActualEffects) {
  add("missed.yaml", missed_yaml);
  auto t = one(R"(tests:
  - name: wrong number
    steps:
      - call: {from: "+15551230000"}
      - dial_result: no-answer
      - expect: {sms: {to: "+15559999999", body: {contains: "Sorry"}}}
)");
  EXPECT_FALSE(t.passed);
  EXPECT_EQ(t.failure,
            "t.test.yaml:6:18: expect sms: expected an SMS where to is "
            "\"+15559999999\", body contains \"Sorry\"\n"
            "  actual: 2 SMS since the last expect:\n"
            "    - to +15551230000 from +15005550100 \"Sorry we missed you at "
            "Test Business\" [missed/text_back]\n"
            "    - to +15005550199 from +15005550100 \"Missed +15551230000\" "
            "[missed/tell]");
}

TEST_F(WorkflowTests, RunExpectationReportsEveryMismatch) {
  add("followup.yaml", followup_yaml);
  auto t = one(R"(tests:
  - name: run state
    steps:
      - call: {from: "+15551230000"}
      - dial_result: {status: completed, duration: 60s}
      - expect:
          run:
            workflow: followup
            status: finished
            waiting_for: reply
            vars: {call.duration: "61", vars.answer: "x", call.from: ~}
)");
  EXPECT_FALSE(t.passed);
  EXPECT_EQ(t.failure,
            "t.test.yaml:7:11: expect run: the last run 1 (followup) does not "
            "match:\n"
            "    - status is waiting, expected finished\n"
            "    - it waits for timer, expected reply\n"
            "    - call.duration is \"60\", expected it is \"61\"\n"
            "    - vars.answer is not set, expected it is \"x\"\n"
            "    - call.from is \"+15551230000\", expected null");
}

TEST_F(WorkflowTests, ExpectationsOfOneGroupShareTheirWindow) {
  add("missed.yaml", missed_yaml);
  auto t = one(R"(tests:
  - name: windows
    steps:
      - call: {from: "+15551230000"}
      - dial_result: no-answer
      - expect: {sms: {to: "+15551230000"}}
      - expect: {sms_count: 2}
      - call_end: true
      - expect: {no_sms: true, runs: {workflow: missed, count: 0}}
)");
  EXPECT_TRUE(t.passed) << t.failure;
}

TEST_F(WorkflowTests, VoiceFlowRecordingAndTranscription) {
  add("incoming.yaml", incoming_yaml);
  add("missed.yaml", missed_yaml);
  auto t = one(R"(tests:
  - name: voicemail
    steps:
      - call: {from: "+15551230000"}
      - expect:
          twiml:
            equals: '<?xml version="1.0" encoding="UTF-8"?><Response><Dial timeout="15" action="https://ringback.test/webhooks/twilio/voice/dial-result" method="POST"><Number>+15005550199</Number></Dial></Response>'
      - dial_result: no-answer
      - expect:
          twiml: {contains: "<Say>Leave a message</Say><Record action=\"https://ringback.test/webhooks/twilio/voice/recording\" method", matches: 'transcribeCallback="https://ringback\.test/webhooks/twilio/voice/transcription\?step=\d+"'}
          sms: {to: "+15551230000", count: 1}
          run: {workflow: incoming, status: waiting, waiting_for: recording}
      - recording: {duration: 12s, url: "https://example.com/RE1"}
      - expect:
          twiml: {matches: "<Response><Hangup/></Response>$"}
          run: {workflow: incoming, status: finished, vars: {voicemail.url: "https://example.com/RE1", voicemail.duration: "12", voicemail.recorded: "true"}}
      - call_end: true
      - expect: {no_sms: true}
      - advance: 1m
      - transcription: "please call back"
      - expect:
          notify_owner: {body: "VM from +15551230000: please call back", count: 1}
          runs: {workflow: incoming, count: 1}
)");
  EXPECT_TRUE(t.passed) << t.failure << "\n" << trace(t);
}

TEST_F(WorkflowTests, AfterHoursCallIsMissedWhenItEnds) {
  add("incoming.yaml", incoming_yaml);
  add("missed.yaml", missed_yaml);
  auto t = one(R"(tests:
  - name: after hours
    at: 2026-11-23 20:00
    steps:
      - call: {from: "+15551230000"}
      - expect: {twiml: {not_contains: "<Dial", contains: "<Record"}}
      - recording: 0s
      - expect: {no_sms: true}
      - call_end: true
      - expect: {sms: {to: "+15551230000", count: 1}}
      - transcription: "nothing"
)");
  EXPECT_FALSE(t.passed);
  // Nothing was recorded, so nothing is transcribed.
  EXPECT_EQ(first_line(t.failure),
            "t.test.yaml:11:9: transcription: no recording waits for a "
            "transcription (a record_voicemail with transcribe: true, then a "
            "'recording' step, come first)");
}

TEST_F(WorkflowTests, TimersRepliesAndQuietHours) {
  add("followup.yaml", followup_yaml);
  auto r = run(R"(tenant: {quiet_hours: "21:00-07:00"}
tests:
  - name: follow-up
    at: 2026-11-23 16:30
    steps:
      - call: {from: "+15551230000"}
      - dial_result: {status: completed, duration: 60s}
      - expect: {run: {workflow: followup, waiting_for: timer}}
      - advance: 59m
      - expect: {no_sms: true}
      - advance: 1m
      - expect:
          sms: {to: "+15551230000", body: "How was it?", urgent: false, held: false}
          run: {workflow: followup, waiting_for: reply}
      - sms: {from: "+15551230001", body: "not me"}
      - expect: {run: {workflow: followup, waiting_for: reply}}
      - sms: {from: "+15551230000", body: "great"}
      - expect: {run: {workflow: followup, status: finished, vars: {vars.answer: great}}}
  - name: no reply
    at: 2026-11-23 20:30
    steps:
      - call: {from: "+15551230000"}
      - dial_result: {status: completed, duration: 60s}
      - advance: 1h
      - expect: {sms: {held: true, urgent: false}}
      - advance: 1d
      - expect:
          log: {level: info, message: "no answer"}
          run: {workflow: followup, status: finished}
)");
  ASSERT_EQ(r.tests.size(), 2u) << diagnostics(r);
  EXPECT_TRUE(r.tests[0].passed) << r.tests[0].failure << "\n"
                                 << trace(r.tests[0]);
  EXPECT_TRUE(r.tests[1].passed) << r.tests[1].failure;
  auto text = trace(r.tests[1]);
  EXPECT_NE(text.find("(not urgent: held in quiet hours until tue 2026-11-24 "
                      "07:00:00)"),
            std::string::npos)
    << text;
  EXPECT_NE(text.find("tue 2026-11-24 21:30:00 timer of run 1 (followup): no "
                      "reply in time"),
            std::string::npos)
    << text;
}

TEST_F(WorkflowTests, HttpRequestsAndResponses) {
  add("crm.yaml", crm_yaml);
  auto t = one(R"(tenant: {http_allow: ["*.example.com"]}
tests:
  - name: crm
    steps:
      - sms: {from: "+15551230000", body: "hi"}
      - expect:
          http: {method: POST, url: {contains: "crm.example.com"}, body: '{"phone":"+15551230000"}'}
          run: {workflow: crm, waiting_for: http}
          log: {none: true}
      - http_response: {status: 201, json: {id: 7, name: "Dana", tags: [a, "7"]}}
      - expect:
          no_http: true
          log: "crm 201 id 7 error "
          tag: {tag: lead, phone: "+15551230000"}
          run: {workflow: crm, status: finished, vars: {steps.lookup.json.name: Dana, steps.lookup.json.tags.1: "7", steps.lookup.ok: "true"}}
      - sms: {from: "+15551230001", body: "hi again"}
      - http_response: {error: timeout, attempts: 3}
      - expect:
          log: {message: {contains: "error timeout"}}
      - http_response: {status: 200}
)");
  EXPECT_FALSE(t.passed);
  EXPECT_EQ(t.failure, "t.test.yaml:20:9: http_response: no HTTP request "
                       "waits for a response");
}

TEST_F(WorkflowTests, HostsOutsideHttpAllowAreRefusedLikeProduction) {
  add("crm.yaml", crm_yaml);
  auto t = one(R"(tenant: {http_allow: [api.example.org]}
tests:
  - name: refused
    steps:
      - sms: {from: "+15551230000", body: "hi"}
      - expect:
          no_http: true
          log: "crm 0 id  error host 'crm.example.com' is not in the tenant's http_allow list"
          run: {workflow: crm, status: finished, vars: {steps.lookup.ok: "false"}}
)");
  EXPECT_TRUE(t.passed) << t.failure << "\n" << trace(t);
}

TEST_F(WorkflowTests, SchedulesFireWhileTheClockAdvances) {
  add("daily.yaml", daily_yaml);
  auto t = one(R"(tests:
  - name: schedule
    at: 2026-11-23 08:00
    steps:
      - advance: 59m
      - expect: {runs: {workflow: daily, count: 0}}
      - advance: 1m
      - expect: {log: "morning 2026-11-23T09:00:00 true"}
      - advance_to: 2026-11-29 12:00
      - expect:
          runs: {workflow: daily, count: 6}
          log: {message: {contains: "2026-11-29T09:00:00 false"}}
      - advance_to: 2026-11-29 11:00
)");
  EXPECT_FALSE(t.passed);
  EXPECT_EQ(t.failure, "t.test.yaml:13:9: advance_to: the clock is at sun "
                       "2026-11-29 12:00:00 already; it only moves forward");
}

TEST_F(WorkflowTests, TenantSettingsShapeTheCalendar) {
  add("hours.yaml", R"(name: hours
trigger: sms.received
steps:
  - log: "{{ business_hours }} {{ holiday }} {{ now.weekday }} {{ now.time }} {{ tenant.name }} {{ tenant.timezone }}"
)");
  auto r = run(R"(tenant:
  name: Night Owl
  timezone: Europe/Berlin
  business_hours: {}
  holidays: ["12-25"]
tests:
  - name: open around the clock but on holidays
    at: 2026-11-29 03:00
    steps:
      - sms: {from: "+15551230000", body: "hi"}
      - expect: {log: "true false sun 03:00 Night Owl Europe/Berlin"}
      - advance_to: 2026-12-25 12:00
      - sms: {from: "+15551230000", body: "hi"}
      - expect: {log: "false true fri 12:00 Night Owl Europe/Berlin"}
  - name: the file's tenant holds for every test
    workflows: [hours.yaml]
    steps:
      - sms: {from: "+15551230000", body: "hi"}
      - expect: {log: {message: {matches: "^true false mon 10:00 .* Europe/Berlin$"}}}
)");
  ASSERT_EQ(r.tests.size(), 2u) << diagnostics(r);
  EXPECT_TRUE(r.tests[0].passed) << r.tests[0].failure;
  EXPECT_TRUE(r.tests[1].passed) << r.tests[1].failure;
  auto defaults = run(R"(tests:
  - name: defaults
    at: 2026-11-28 10:00
    steps:
      - sms: {from: "+15551230000", body: "hi"}
      - expect: {log: "false false sat 10:00 Test Business America/Denver"}
)");
  ASSERT_EQ(defaults.tests.size(), 1u) << diagnostics(defaults);
  EXPECT_TRUE(defaults.tests[0].passed) << defaults.tests[0].failure;
}

TEST_F(WorkflowTests, EventsThatCannotHappenFailTheTest) {
  add("missed.yaml", missed_yaml);
  add("incoming.yaml", incoming_yaml);
  struct example {
    std::string steps;
    std::string failure;
  };
  const std::vector<example> examples{
    {"- dial_result: busy",
     "t.test.yaml:4:9: dial_result: no call is in progress (a 'call' step "
     "comes first)"},
    {"- call_end: true",
     "t.test.yaml:4:9: call_end: no call is in progress (a 'call' step comes "
     "first)"},
    {"- call: \"+15551230000\"\n      - recording: 10s",
     "t.test.yaml:5:9: recording: the call's run 1 (incoming) does not wait "
     "for a recording (it waits for dial)"},
    {"- call: \"+15551230000\"\n      - dial_result: busy\n      - "
     "dial_result: busy",
     "t.test.yaml:6:9: dial_result: the call's run 1 (incoming) does not wait "
     "for a dial result (it waits for recording)"},
    {"- http_response: {status: 200}",
     "t.test.yaml:4:9: http_response: no HTTP request waits for a response"},
    {"- call: {from: \"+15551230000\", sid: CA1}\n      - call_end: true\n"
     "      - call: {from: \"+15551230000\", sid: CA1}",
     "t.test.yaml:6:9: call: a call with sid CA1 came already"},
  };
  for (const auto& x : examples) {
    auto t = one("tests:\n  - name: impossible\n    steps:\n      " + x.steps
                 + "\n");
    EXPECT_FALSE(t.passed) << x.steps;
    EXPECT_EQ(t.failure, x.failure);
  }
}

TEST_F(WorkflowTests, TestsAreDeterministic) {
  add("incoming.yaml", incoming_yaml);
  add("missed.yaml", missed_yaml);
  add("followup.yaml", followup_yaml);
  const std::string test = R"(tests:
  - name: busy day
    steps:
      - call: {from: "+15551230000"}
      - dial_result: {status: completed, duration: 90s}
      - call_end: true
      - call: {from: "+15551230001"}
      - dial_result: no-answer
      - recording: 20s
      - call_end: true
      - transcription: "call me"
      - advance: 1d
)";
  auto a = one(test);
  auto b = one(test);
  EXPECT_TRUE(a.passed) << a.failure;
  EXPECT_EQ(a.trace, b.trace);
  EXPECT_GT(a.trace.size(), 20u);
}

// -- which workflows ----------------------------------------------------------

TEST_F(WorkflowTests, WorkflowListsAreRelativeToTheTestFile) {
  add("flows/missed.yaml", missed_yaml);
  add("flows/incoming.yaml", incoming_yaml);
  auto r = run(R"(workflows: [flows/missed.yaml]
tests:
  - name: built-in answer
    steps:
      - call: "+15551230000"
      - expect: {twiml: {contains: '<Dial timeout="20"'}}
  - name: with the incoming workflow
    workflows: [flows/missed.yaml, flows/incoming.yaml]
    steps:
      - call: "+15551230000"
      - expect: {twiml: {contains: '<Dial timeout="15"'}}
)");
  ASSERT_EQ(r.tests.size(), 2u) << diagnostics(r);
  EXPECT_TRUE(r.tests[0].passed) << r.tests[0].failure;
  EXPECT_TRUE(r.tests[1].passed) << r.tests[1].failure;
}

TEST_F(WorkflowTests, InvalidWorkflowsFailEveryTestWithTheirDiagnostics) {
  add("missed.yaml", missed_yaml);
  add("broken.yaml", "name: broken\ntrigger: call.missed\nsteps:\n"
                     "  - send_sms: {to: \"{{ call.form }}\", bdy: x}\n");
  auto r = run(R"(tests:
  - name: a
    steps: [{call: "+15551230000"}]
  - name: b
    steps: [{call: "+15551230000"}]
)");
  ASSERT_EQ(r.tests.size(), 2u) << diagnostics(r);
  EXPECT_TRUE(r.diagnostics.empty());
  for (const auto& t : r.tests) {
    EXPECT_FALSE(t.passed);
    EXPECT_EQ(first_line(t.failure), "the workflows under test do not load:");
    EXPECT_NE(t.failure.find(dir_.str()
                             + "/broken.yaml:4:39: error: /steps/0/send_sms: "
                               "unknown key 'bdy' (did you mean 'body'?)"),
              std::string::npos)
      << t.failure;
  }
  auto missing = run(R"(workflows: [nope.yaml]
tests:
  - name: a
    steps: [{call: "+15551230000"}]
)");
  ASSERT_EQ(missing.tests.size(), 1u);
  EXPECT_NE(missing.tests[0].failure.find(dir_.str() + "/nope.yaml"),
            std::string::npos)
    << missing.tests[0].failure;
}

TEST_F(WorkflowTests, TwoCallIncomingWorkflowsAreACatalogError) {
  add("incoming.yaml", incoming_yaml);
  add("incoming2.yaml", "name: incoming2\ntrigger: call.incoming\nsteps:\n"
                        "  - reject: busy\n");
  auto t = one("tests:\n  - name: a\n    steps: [{call: \"+15551230000\"}]\n");
  EXPECT_FALSE(t.passed);
  EXPECT_NE(t.failure.find("a second call.incoming workflow ('incoming2'"),
            std::string::npos)
    << t.failure;
}

TEST_F(WorkflowTests, TenantFoldersTestTheTenantsEffectiveWorkflows) {
  add("missed.yaml", missed_yaml);
  add("incoming.yaml", incoming_yaml);
  add("tenants/acme/missed.yaml",
      "name: missed\ntrigger: call.missed\nsteps:\n"
      "  - send_sms: {to: \"{{ call.from }}\", body: \"Acme {{ tenant.id "
      "}}\"}\n");
  add("tenants/acme/reject.yaml",
      "name: reject\ntrigger: call.incoming\nsteps:\n  - reject: busy\n");
  auto r = run_workflow_test_string(R"(tests:
  - name: own call.incoming replaces the global one
    steps:
      - call: "+15551230000"
      - expect: {twiml: {contains: '<Reject reason="busy"/>'}}
      - call_end: true
      - expect:
          sms: {body: "Acme acme", count: 1}
          sms_count: 1
)",
                                    "tenants/acme/t.test.yaml",
                                    dir_.str() + "/tenants/acme");
  ASSERT_EQ(r.tests.size(), 1u) << diagnostics(r);
  EXPECT_TRUE(r.tests[0].passed) << r.tests[0].failure << "\n"
                                 << trace(r.tests[0]);
}

// -- malformed test files -----------------------------------------------------

TEST_F(WorkflowTests, MalformedTestFilesReportEveryProblem) {
  add("missed.yaml", missed_yaml);
  auto r = run(R"(tenant:
  nme: Acme
  timezone: Mars/Base
  business_hours: {mnday: "08:00-17:00"}
  owner_phone: "555"
tests:
  - name: one
    steps:
      - call: {from: "+15551230000", form: x}
      - expct: {sms_count: 1}
      - expect: {sms: {too: "+1555"}, twiml: {matches: "(a"}}
      - advance: 2x
      - dial_result: noanswer
      - call: "+15551230000"
        expect: {no_sms: true}
      - http_response: {status: 200, error: timeout}
      - expect: {no_sms: false, smss: 1}
      - sms: {from: "+15551230000"}
  - name: one
    steps: []
)");
  EXPECT_TRUE(r.tests.empty());
  EXPECT_EQ(
    diagnostics(r),
    "t.test.yaml:2:3: error: /tenant: unknown key 'nme' (did you mean "
    "'name'?)\n"
    "t.test.yaml:3:13: error: /tenant/timezone: unknown time zone 'Mars/Base' "
    "(an IANA name such as America/Denver)\n"
    "t.test.yaml:4:20: error: /tenant/business_hours/mnday: unknown day "
    "'mnday' (did you mean 'monday'?); days are mon, tue, wed, thu, fri, sat, "
    "sun\n"
    "t.test.yaml:5:16: error: /tenant/owner_phone: '555' is not a phone "
    "number in E.164 form (e.g. +15551230000)\n"
    "t.test.yaml:9:38: error: /tests/0/steps/0/call: unknown key 'form' (did "
    "you mean 'from'?)\n"
    "t.test.yaml:10:9: error: /tests/0/steps/1: unknown key 'expct' (did you "
    "mean 'expect'?)\n"
    "t.test.yaml:11:24: error: /tests/0/steps/2/expect/sms: unknown key 'too' "
    "(did you mean 'to'?)\n"
    "t.test.yaml:11:56: error: /tests/0/steps/2/expect/twiml/matches: invalid "
    "regular expression: missing ): (a\n"
    "t.test.yaml:12:18: error: /tests/0/steps/3/advance: '2x' is not a "
    "duration (e.g. 30s, 10m, 2h, 1d)\n"
    "t.test.yaml:13:22: error: /tests/0/steps/4/dial_result: unknown dial "
    "status 'noanswer' (expected completed, answered, busy, no-answer, failed, "
    "canceled) (did you mean 'no-answer'?)\n"
    "t.test.yaml:15:9: error: /tests/0/steps/5: one event or expect per step: "
    "'expect' goes in a step of its own (after 'call')\n"
    "t.test.yaml:16:45: error: /tests/0/steps/6/http_response: an 'error' "
    "means no response came: leave out status, json and body\n"
    "t.test.yaml:17:26: error: /tests/0/steps/7/expect/no_sms: write "
    "'no_sms: true' or leave it out\n"
    "t.test.yaml:17:33: error: /tests/0/steps/7/expect: unknown key 'smss' "
    "(did you mean 'sms'?)\n"
    "t.test.yaml:18:9: error: /tests/0/steps/8/sms: missing required key "
    "'body'\n"
    "t.test.yaml:19:11: error: /tests/1/name: a second test named 'one' (the "
    "first is at line 7)\n"
    "t.test.yaml:20:12: error: /tests/1/steps: expected a list of steps "
    "(events and expects), got an empty list\n");
}

TEST_F(WorkflowTests, YamlProblemsAreDiagnostics) {
  struct example {
    std::string text;
    std::string diagnostics;
  };
  const std::vector<example> examples{
    {"", "t.test.yaml:1:1: error: an empty test file (it needs 'tests')\n"},
    {"tests:\n\t- name: x\n",
     "t.test.yaml:2:1: error: tab character used for indentation\n"},
    {"tests: [\n", "t.test.yaml:2:1: error: end of sequence flow not found\n"},
    {"tests:\n  - name: a\n    name: b\n    steps: [{call: "
     "\"+15551230000\"}]\n",
     "t.test.yaml:3:5: error: /tests/0: duplicate key 'name' (first defined "
     "at line 2)\n"},
    {"- a\n", "t.test.yaml:1:1: error: a test file is a map with 'tests' (and "
              "optionally 'workflows', 'tenant', 'at'), got a list\n"},
    {"tenant: {}\n", "t.test.yaml:1:1: error: missing required key 'tests'\n"},
    {"tests: [{name: a, steps: [{call: 5551230000}]}]\n",
     "t.test.yaml:1:34: error: /tests/0/steps/0/call: '5551230000' is not a "
     "phone number in E.164 form (e.g. +15551230000) nor a withheld caller id "
     "(e.g. anonymous)\n"},
    {"at: 2026-02-30 10:00\ntests: [{name: a, steps: [{advance: 1h}]}]\n",
     "t.test.yaml:1:5: error: /at: '2026-02-30 10:00' is not a local date and "
     "time (e.g. 2026-11-23 10:00)\n"},
    {"workflows: missed.yaml\ntests: [{name: a, steps: [{advance: 1h}]}]\n",
     "t.test.yaml:1:12: error: /workflows: expected a list of workflow files "
     "(relative to the test file), got a scalar\n"},
    {"tests: [{name: a, steps: [{expect: {run: {status: done}}}]}]\n",
     "t.test.yaml:1:37: error: /tests/0/steps/0/expect/run: missing required "
     "key 'workflow'\n"
     "t.test.yaml:1:51: error: /tests/0/steps/0/expect/run/status: expected "
     "one of running, waiting, finished, failed, got 'done'\n"},
  };
  for (const auto& x : examples) {
    auto r = run(x.text);
    EXPECT_TRUE(r.tests.empty()) << x.text;
    EXPECT_EQ(diagnostics(r), x.diagnostics) << x.text;
    EXPECT_FALSE(r.ok());
  }
}

TEST_F(WorkflowTests, MoreMalformedValues) {
  auto r = run(R"(workflows: [a.test.yaml]
tenant:
  id: ""
  holidays: ["2026-13-01"]
  quiet_hours: "21:00"
  http_allow: ["https://x.com"]
  business_hours: [mon]
tests:
  - name: ""
    steps:
      - call_end: {now: true}
      - http_response: {status: 200, json: {a: 1}, body: x}
      - http_response: {json: {a: 1}}
      - advance: 0s
      - expect:
          sms: {body: {}, urgent: maybe, count: -1}
          twiml: [a]
          run: {workflow: x, vars: {a: [b]}}
  - steps: [{call: "+15551230000"}]
  - 7
)");
  EXPECT_TRUE(r.tests.empty());
  EXPECT_EQ(
    diagnostics(r),
    "t.test.yaml:1:13: error: /workflows/0: expected a workflow file ending "
    "in .yaml (not .test.yaml), got 'a.test.yaml'\n"
    "t.test.yaml:3:7: error: /tenant/id: expected an id of 1 to 64 "
    "characters\n"
    "t.test.yaml:4:14: error: /tenant/holidays/0: month 13 is out of range "
    "01-12\n"
    "t.test.yaml:5:16: error: /tenant/quiet_hours: expected a range like "
    "08:00-17:00, got '21:00'\n"
    "t.test.yaml:6:16: error: /tenant/http_allow/0: 'https://x.com' has a "
    "scheme: give the host alone (e.g. api.example.com)\n"
    "t.test.yaml:7:19: error: /tenant/business_hours: expected a map of days "
    "to hours ({mon-fri: \"08:00-17:00\"}; {} for open around the clock), "
    "got a list\n"
    "t.test.yaml:9:11: error: /tests/0/name: a test needs a name\n"
    "t.test.yaml:11:19: error: /tests/0/steps/0/call_end: call_end takes "
    "nothing (write 'call_end: true'), got a map\n"
    "t.test.yaml:12:58: error: /tests/0/steps/1/http_response: give 'json' or "
    "'body', not both\n"
    "t.test.yaml:13:24: error: /tests/0/steps/2/http_response: missing "
    "required key 'status' (or 'error' for no response)\n"
    "t.test.yaml:14:18: error: /tests/0/steps/3/advance: advance by more than "
    "0s\n"
    "t.test.yaml:16:23: error: /tests/0/steps/4/expect/sms/body: give at "
    "least one of equals, contains, not_contains, matches\n"
    "t.test.yaml:16:35: error: /tests/0/steps/4/expect/sms/urgent: expected "
    "true or false, got 'maybe'\n"
    "t.test.yaml:16:49: error: /tests/0/steps/4/expect/sms/count: expected a "
    "whole number from 0 to 100000, got '-1'\n"
    "t.test.yaml:17:18: error: /tests/0/steps/4/expect/twiml: expected text "
    "or a map of equals, contains, not_contains, matches; got a list\n"
    "t.test.yaml:18:40: error: /tests/0/steps/4/expect/run/vars/a: expected "
    "text or a map of equals, contains, not_contains, matches; got a list\n"
    "t.test.yaml:19:5: error: /tests/1: missing required key 'name'\n"
    "t.test.yaml:20:5: error: /tests/2: expected a test (a map with name and "
    "steps), got a scalar\n");
}

TEST_F(WorkflowTests, RunawaySchedulesHitALimit) {
  add("often.yaml", "name: often\ntrigger: schedule\nschedule: \"* * * * "
                    "*\"\nsteps:\n  - log: tick\n");
  auto t = one(R"(tests:
  - name: a month of minutes
    steps:
      - advance: 30d
)");
  EXPECT_FALSE(t.passed);
  EXPECT_EQ(t.failure, "t.test.yaml:4:9: advance: more than 10000 timers and "
                       "schedules fired in one advance");
}

// -- finding and running files ------------------------------------------------

TEST(WorkflowTestFiles, FoldersAreSearchedRecursivelyAndSorted) {
  TempDir dir;
  dir.write("b.test.yaml", "");
  dir.write("a.test.yaml", "");
  dir.write("a.yaml", "");
  dir.write("tenants/acme/c.test.yaml", "");
  dir.write(".hidden/d.test.yaml", "");
  auto found
    = find_workflow_test_files({dir.str(), dir.str() + "/a.test.yaml",
                                dir.str() + "/a.yaml", dir.str() + "/none"});
  EXPECT_EQ(found.files,
            (std::vector<std::string>{dir.str() + "/a.test.yaml",
                                      dir.str() + "/b.test.yaml",
                                      dir.str() + "/tenants/acme/c.test.yaml",
                                      dir.str() + "/a.test.yaml"}));
  EXPECT_EQ(found.errors,
            (std::vector<std::string>{
              "not a test file (its name must end in .test.yaml): " + dir.str()
                + "/a.yaml",
              "no such file or folder: " + dir.str() + "/none"}));
}

TEST(WorkflowTestReport, PrintsLikeATestRunner) {
  TempDir dir;
  dir.write("missed.yaml", missed_yaml);
  auto good = dir.write("good.test.yaml", R"(tests:
  - name: texts back
    steps:
      - call: "+15551230000"
      - dial_result: busy
      - expect: {sms: {to: "+15551230000"}}
  - name: other
    steps: [{call: "+15551230000"}]
)");
  auto bad = dir.write("bad.test.yaml", R"(tests:
  - name: expects too much
    steps:
      - call: "+15551230000"
      - dial_result: busy
      - expect: {sms_count: 3}
)");
  auto broken = dir.write("broken.test.yaml", "tests: 3\n");
  std::ostringstream out;
  EXPECT_EQ(run_workflow_tests({good}, {}, out), 0);
  EXPECT_EQ(out.str().substr(0, out.str().find("(1 file,")),
            "PASS " + good + ": texts back\nPASS " + good
              + ": other\n\n2 tests: 2 passed, 0 failed ");
  std::ostringstream out2;
  EXPECT_EQ(run_workflow_tests({good, bad, broken}, {}, out2), 1);
  auto text = out2.str();
  EXPECT_NE(text.find("FAIL " + bad + ": expects too much\n    " + bad
                      + ":6:18: expect sms_count: expected 3 SMS, got 2\n"),
            std::string::npos)
    << text;
  EXPECT_NE(text.find("    trace:\n      mon 2026-11-23 10:00:00 the test "
                      "starts"),
            std::string::npos)
    << text;
  EXPECT_NE(text.find("ERROR " + broken + ": the test file cannot run\n    "
                      + broken
                      + ":1:8: error: /tests: expected a list of "
                        "tests (each with a name and steps), got a "
                        "scalar\n"),
            std::string::npos)
    << text;
  EXPECT_NE(text.find("\n3 tests: 2 passed, 1 failed, 1 file with errors (3 "
                      "files, "),
            std::string::npos)
    << text;
  std::ostringstream out3;
  workflow_test_options only;
  only.filter = "nothing matches";
  EXPECT_EQ(run_workflow_tests({good}, only, out3), 1);
  EXPECT_NE(out3.str().find("0 tests: 0 passed, 0 failed, 2 filtered out"),
            std::string::npos)
    << out3.str();
  EXPECT_NE(out3.str().find("no tests ran"), std::string::npos);
}

TEST(WorkflowTestCli, ExitCodes) {
  TempDir dir;
  dir.write("missed.yaml", missed_yaml);
  auto good = dir.write("good.test.yaml", R"(tests:
  - name: texts back
    steps:
      - call: "+15551230000"
      - dial_result: busy
      - expect: {sms: {to: "+15551230000"}}
)");
  auto cli = [](std::vector<std::string> args) {
    std::vector<char*> argv{const_cast<char*>("ringback")};
    for (auto& a : args)
      argv.push_back(a.data());
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    auto rc = run_cli(static_cast<int>(argv.size()), argv.data());
    auto out = ::testing::internal::GetCapturedStdout();
    auto err = ::testing::internal::GetCapturedStderr();
    return std::make_tuple(rc, out, err);
  };
  auto [rc, out, err] = cli({"workflows", "test", dir.str()});
  EXPECT_EQ(rc, 0) << out << err;
  EXPECT_NE(out.find("PASS " + good + ": texts back"), std::string::npos);
  std::tie(rc, out, err)
    = cli({"workflows", "test", "--filter", "texts", good});
  EXPECT_EQ(rc, 0) << out << err;
  std::tie(rc, out, err) = cli({"workflows", "test"});
  EXPECT_EQ(rc, 2);
  EXPECT_EQ(err.substr(0, err.find('\n')),
            "ringback workflows test: no PATH given");
  std::tie(rc, out, err) = cli({"workflows", "test", good, "--filter"});
  EXPECT_EQ(rc, 2);
  EXPECT_EQ(err.substr(0, err.find('\n')),
            "ringback workflows test: --filter needs a TEXT");
  std::tie(rc, out, err) = cli({"workflows", "test", "--bogus", good});
  EXPECT_EQ(rc, 2);
  EXPECT_EQ(err.substr(0, err.find('\n')),
            "ringback workflows test: unknown option '--bogus'");
  std::tie(rc, out, err) = cli({"workflows", "test", dir.str() + "/nope"});
  EXPECT_EQ(rc, 2);
  EXPECT_EQ(err, "ringback workflows test: no such file or folder: " + dir.str()
                   + "/nope\n");
  dir.write("empty/x.yaml", "");
  std::tie(rc, out, err) = cli({"workflows", "test", dir.str() + "/empty"});
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(err, "ringback workflows test: no *.test.yaml files in " + dir.str()
                   + "/empty\n");
  std::tie(rc, out, err) = cli({"workflows", "tset"});
  EXPECT_EQ(rc, 2);
  EXPECT_EQ(err.substr(0, err.find('\n')),
            "ringback workflows: expected 'check', 'test' or 'reference', got 'tset'");
}

TEST(WorkflowCheckCli, SeveralPathsAndFolders) {
  TempDir dir;
  dir.write("a/missed.yaml", missed_yaml);
  dir.write("b/incoming.yaml", incoming_yaml);
  dir.write("b/incoming.test.yaml", "not: a workflow\n");
  auto bad = dir.write("c/bad.yaml",
                       "name: bad\ntrigger: call.mised\nsteps: []\n");
  auto cli = [](std::vector<std::string> args) {
    std::vector<char*> argv{const_cast<char*>("ringback")};
    for (auto& a : args)
      argv.push_back(a.data());
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    auto rc = run_cli(static_cast<int>(argv.size()), argv.data());
    auto out = ::testing::internal::GetCapturedStdout();
    auto err = ::testing::internal::GetCapturedStderr();
    return std::make_tuple(rc, out, err);
  };
  auto [rc, out, err] = cli({"workflows", "check", dir.str() + "/a",
                             dir.str() + "/b", dir.str() + "/a/missed.yaml"});
  EXPECT_EQ(rc, 0) << err;
  EXPECT_EQ(out, "ok: 3 workflow(s) checked\n");
  EXPECT_EQ(err, "");
  std::tie(rc, out, err) = cli({"workflows", "check", dir.str() + "/a", bad});
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(out, "");
  EXPECT_EQ(err.substr(0, bad.size() + 10), bad + ":2:10: err");
  EXPECT_NE(err.find("did you mean 'call.missed'?"), std::string::npos) << err;
  // A folder's tenant overrides are checked too, each as its own catalog.
  auto tenant_bad = dir.write("a/tenants/acme/x.yaml",
                              "name: x\ntrigger: call.missed\nsteps:\n"
                              "  - send_smss: {}\n");
  dir.write("a/tenants/bob/missed.yaml", missed_yaml);
  std::tie(rc, out, err) = cli({"workflows", "check", dir.str() + "/a"});
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(err.substr(0, tenant_bad.size() + 9), tenant_bad + ":4:5: err")
    << err;
  EXPECT_NE(err.find("1 problem(s) found"), std::string::npos) << err;
}

// -- the shipped library
// -------------------------------------------------------

TEST(ShippedWorkflows, AllTheirTestsPass) {
  auto found = find_workflow_test_files({RINGBACK_SOURCE_DIR "/workflows"});
  EXPECT_TRUE(found.errors.empty());
  ASSERT_GE(found.files.size(), 4u);
  std::ostringstream out;
  EXPECT_EQ(run_workflow_tests(found.files, {}, out), 0) << out.str();
}

} // namespace

TEST_F(WorkflowTests, OwnerTimeoutStartsTheTakeoverWorkflow) {
  add("takeover.yaml", R"y(name: takeover
trigger: conversation.owner_timeout
steps:
  - send_sms:
      to: "{{ conversation.customer }}"
      body: "Thanks! {{ tenant.name }} will reply soon (re: {{ conversation.last_message | truncate(20) }})"
  - notify_owner: "#{{ conversation.id }} {{ contact.phone }} is waiting"
)y");
  auto t = one(R"y(tenant: {name: Acme}
tests:
  - name: takeover
    steps:
      - owner_timeout: {customer: "+15551230000", message: "my water heater is leaking", id: "12"}
      - expect:
          sms: {to: "+15551230000", body: "Thanks! Acme will reply soon (re: my water heater is l)"}
          notify_owner: {body: "#12 +15551230000 is waiting"}
)y");
  EXPECT_TRUE(t.passed) << t.failure << "\n" << trace(t);
}
