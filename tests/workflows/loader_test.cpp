#include "ringback/workflows/loader.hpp"

#include "ringback/workflows/phone.hpp"
#include "ringback/workflows/yaml_source.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using namespace ringback::workflows;

namespace {

using strings = std::vector<std::string>;

strings diags(std::string_view text) {
  auto r = load_string(text, "wf.yaml");
  strings out;
  for (const auto& d : r.diagnostics) {
    out.push_back(to_string(d));
  }
  EXPECT_EQ(r.ok(), out.empty());
  return out;
}

const char* valid = "name: w\n"
                    "trigger: call.missed\n"
                    "steps:\n"
                    "  - id: s\n"
                    "    send_sms:\n"
                    "      to: '{{ call.from }}'\n"
                    "      body: hi\n";

class TempDir {
public:
  TempDir() {
    auto name
      = std::string("ringback-wf-")
        + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-"
        + std::to_string(::getpid());
    path_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name) << text;
  }
  std::string str() const {
    return path_.string();
  }

private:
  std::filesystem::path path_;
};

} // namespace

TEST(WorkflowLoader, AValidWorkflowLoads) {
  auto r = load_string(valid, "wf.yaml");
  ASSERT_TRUE(r.ok()) << to_string(r.diagnostics);
  const auto& wf = *r.value;
  EXPECT_EQ(wf.name, "w");
  EXPECT_EQ(wf.trigger, "call.missed");
  EXPECT_EQ(wf.file, "wf.yaml");
  EXPECT_EQ(wf.name_line, 1);
  EXPECT_EQ(wf.name_column, 7);
  ASSERT_EQ(wf.steps.size(), 1u);
  const auto& s = wf.steps[0];
  EXPECT_EQ(s.id, "s");
  EXPECT_EQ(s.type, "send_sms");
  EXPECT_EQ(s.line, 4);
  EXPECT_EQ(s.column, 5);
  ASSERT_NE(s.spec, nullptr);
  ASSERT_NE(s.field("to"), nullptr);
  EXPECT_EQ(s.field("to")->text.source(), "{{ call.from }}");
  EXPECT_EQ(s.field("to")->line, 6);
  ASSERT_NE(s.field("from"), nullptr); // defaulted
  EXPECT_TRUE(s.field("from")->defaulted);
  EXPECT_EQ(s.field("from")->text.source(), "{{ call.to }}");
}

TEST(WorkflowLoader, TheExampleFromTheStyleGuide) {
  EXPECT_EQ(diags("name: w\n"
                  "trigger: call.missed\n"
                  "steps:\n"
                  "  - send_sms:\n"
                  "      to: '{{ call.from }}'\n"
                  "      bdy: hi\n"),
            (strings{"wf.yaml:6:7: error: /steps/0/send_sms: unknown key 'bdy' "
                     "(did you mean 'body'?)"}));
}

TEST(WorkflowLoader, SyntaxErrorsCarryYamlCppMarks) {
  EXPECT_EQ(diags("name: [w\n"),
            (strings{"wf.yaml:2:1: error: end of sequence flow not found"}));
  EXPECT_EQ(diags("name: w\ntrigger: a: b\n"),
            (strings{"wf.yaml:2:11: error: illegal map value"}));
  EXPECT_EQ(diags(std::string(1000, '[')),
            (strings{"wf.yaml:1:1: error: the document is nested too deeply"}));
}

TEST(WorkflowLoader, TabIndentationIsNamed) {
  EXPECT_EQ(
    diags("name: w\n"
          "trigger: call.missed\n"
          "steps:\n"
          "\t- send_sms:\n"
          "  \t  to: x\n"
          "\t# a comment is fine\n"
          "\t\n"),
    (strings{"wf.yaml:4:1: error: tab character used for indentation",
             "wf.yaml:5:3: error: tab character used for indentation"}));
  // Tabs elsewhere are no indentation.
  auto r = load_string(std::string(valid) + "description: \"a\\tb\"\t# x\n",
                       "wf.yaml");
  EXPECT_TRUE(r.ok()) << to_string(r.diagnostics);
}

TEST(WorkflowLoader, DuplicateKeysAtAnyDepth) {
  EXPECT_EQ(
    diags("name: w\n"
          "trigger: call.missed\n"
          "name: v\n"
          "steps:\n"
          "  - id: s\n"
          "    send_sms:\n"
          "      to: '{{ call.from }}'\n"
          "      body: a\n"
          "      body: b\n"
          "    id: t\n"
          "  - send_sms: {to: x, body: y, to: z}\n"),
    (strings{
      "wf.yaml:3:1: error: duplicate key 'name' (first defined at line 1)",
      "wf.yaml:9:7: error: /steps/0/send_sms: duplicate key 'body' "
      "(first defined at line 8)",
      "wf.yaml:10:5: error: /steps/0: duplicate key 'id' (first defined at "
      "line 5)",
      "wf.yaml:11:32: error: /steps/1/send_sms: duplicate key 'to' "
      "(first defined at line 11)"}));
  EXPECT_EQ(
    diags(std::string(valid) + "x: {a: {b: 1, b: 2}}\n"),
    (strings{"wf.yaml:8:1: error: unknown key 'x' (expected one of: name, "
             "description, trigger, steps)",
             "wf.yaml:8:15: error: /x/a: duplicate key 'b' (first defined at "
             "line 8)"}));
}

TEST(WorkflowLoader, DocumentShape) {
  EXPECT_EQ(diags(""),
            (strings{
              "wf.yaml:1:1: error: the file is empty (expected a workflow with "
              "'name', 'trigger' and 'steps')"}));
  EXPECT_EQ(diags("# nothing\n"),
            (strings{
              "wf.yaml:1:1: error: the file is empty (expected a workflow with "
              "'name', 'trigger' and 'steps')"}));
  EXPECT_EQ(diags("- a\n"),
            (strings{
              "wf.yaml:1:1: error: expected a workflow (a map with 'name', "
              "'trigger' and 'steps'), got a list"}));
  EXPECT_EQ(
    diags(std::string(valid) + "---\nname: x\n"),
    (strings{"wf.yaml:8:1: error: only one document per file is allowed"}));
  // yaml-cpp 0.7's LoadAll loops forever on these (jbeder/yaml-cpp#1040).
  EXPECT_EQ(diags(","), (strings{"wf.yaml:1:1: error: unexpected ','"}));
  EXPECT_EQ(diags(",Kame\" "), (strings{"wf.yaml:1:1: error: unexpected ','"}));
  EXPECT_EQ(diags("name: w\n,\n"),
            (strings{"wf.yaml:2:1: error: end of map not found"}));
  EXPECT_EQ(
    diags("? [a]\n: 1\n"),
    (strings{"wf.yaml:1:1: error: missing required key 'name'",
             "wf.yaml:1:1: error: missing required key 'trigger'",
             "wf.yaml:1:1: error: missing required key 'steps'",
             "wf.yaml:1:3: error: keys must be plain scalars, got a list"}));
}

TEST(WorkflowLoader, TopLevelKeys) {
  EXPECT_EQ(
    diags("nmae: w\n"
          "trigers: call.missed\n"
          "desc: x\n"
          "steps:\n"
          "  - send_sms: {to: '{{ call.from }}', body: hi}\n"),
    (strings{
      "wf.yaml:1:1: error: unknown key 'nmae' (did you mean 'name'?)",
      "wf.yaml:2:1: error: unknown key 'trigers' (did you mean 'trigger'?)",
      "wf.yaml:3:1: error: unknown key 'desc' (expected one of: name, "
      "description, trigger, steps)"}));
  EXPECT_EQ(diags("steps:\n  - send_sms: {to: '{{ call.from }}', body: hi}\n"),
            (strings{"wf.yaml:1:1: error: missing required key 'name'",
                     "wf.yaml:1:1: error: missing required key 'trigger'"}));
  EXPECT_EQ(
    diags("name: {a: 1}\ndescription: [x]\ntrigger:\nsteps: x\n"),
    (strings{
      "wf.yaml:1:7: error: /name: expected a string, got a map",
      "wf.yaml:2:14: error: /description: expected a string, got a list",
      "wf.yaml:3:1: error: /trigger: expected a string, got an empty value",
      "wf.yaml:4:8: error: /steps: expected a list of steps, got a scalar"}));
  EXPECT_EQ(diags("name: not ok\ntrigger: call.missed\n"
                  "steps:\n  - send_sms: {to: '{{ call.from }}', body: hi}\n"),
            (strings{
              "wf.yaml:1:7: error: /name: invalid workflow name 'not ok' (use "
              "letters, digits, '_' and '-', at most 64)"}));
}

TEST(WorkflowLoader, UnknownTrigger) {
  EXPECT_EQ(
    diags("name: w\ntrigger: call.mised\nsteps:\n"
          "  - send_sms: {to: '{{ call.from }}', body: hi}\n"),
    (strings{
      "wf.yaml:2:10: error: /trigger: unknown trigger 'call.mised' (did you "
      "mean 'call.missed'?); known triggers: call.incoming, call.missed, "
      "call.answered, call.completed"}));
  EXPECT_EQ(
    diags("name: w\ntrigger: telegram\nsteps:\n"
          "  - send_sms: {to: '{{ call.from }}', body: hi}\n"),
    (strings{
      "wf.yaml:2:10: error: /trigger: unknown trigger 'telegram'; known "
      "triggers: call.incoming, call.missed, call.answered, call.completed"}));
}

TEST(WorkflowLoader, StepsList) {
  EXPECT_EQ(
    diags("name: w\ntrigger: call.missed\nsteps: []\n"),
    (strings{
      "wf.yaml:3:8: error: /steps: a workflow needs at least one step"}));
  EXPECT_EQ(
    diags("name: w\ntrigger: call.missed\nsteps:\n"),
    (strings{
      "wf.yaml:3:1: error: /steps: a workflow needs at least one step"}));
  EXPECT_EQ(
    diags("name: w\ntrigger: call.missed\nsteps:\n  - hello\n  - {}\n"),
    (strings{
      "wf.yaml:4:5: error: /steps/0: expected a step (a map like "
      "'send_sms: {to: ..., body: ...}'), got a scalar",
      "wf.yaml:5:5: error: /steps/1: missing step type (known step types: "
      "send_sms)"}));
}

TEST(WorkflowLoader, StepTypes) {
  EXPECT_EQ(
    diags("name: w\ntrigger: call.missed\nsteps:\n"
          "  - sned_sms: {to: '{{ call.from }}', body: hi}\n"
          "  - ide: x\n"
          "    send_sms: {to: '{{ call.from }}', body: hi}\n"
          "  - dial: {to: x}\n"),
    (strings{
      "wf.yaml:4:5: error: /steps/0: unknown step type 'sned_sms' (did you "
      "mean 'send_sms'?); known step types: send_sms",
      "wf.yaml:5:5: error: /steps/1: unknown step type 'ide' (did you mean "
      "'id'?); known step types: send_sms",
      "wf.yaml:7:5: error: /steps/2: unknown step type 'dial'; known step "
      "types: send_sms"}));
}

TEST(WorkflowLoader, MoreThanOneStepTypeInAStep) {
  language lang;
  lang.triggers.add({"call.missed", "", call_variables()});
  lang.steps.add(send_sms_step());
  step_spec other;
  other.type = "hang_up";
  lang.steps.add(other);
  auto r = load_string("name: w\ntrigger: call.missed\nsteps:\n"
                       "  - send_sms: {to: '{{ call.from }}', body: hi}\n"
                       "    hang_up: {}\n",
                       "wf.yaml", lang);
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(to_string(r.diagnostics[0]),
            "wf.yaml:5:5: error: /steps/0: more than one step type in one step "
            "('send_sms' and 'hang_up'); give each its own list item");
}

TEST(WorkflowLoader, StepIds) {
  EXPECT_EQ(
    diags("name: w\ntrigger: call.missed\nsteps:\n"
          "  - id: a\n    send_sms: {to: '{{ call.from }}', body: hi}\n"
          "  - id: b\n    send_sms: {to: '{{ call.from }}', body: hi}\n"
          "  - id: a\n    send_sms: {to: '{{ call.from }}', body: hi}\n"
          "  - id: 'a#1'\n    send_sms: {to: '{{ call.from }}', body: hi}\n"
          "  - id: [x]\n    send_sms: {to: '{{ call.from }}', body: hi}\n"),
    (strings{
      "wf.yaml:8:9: error: /steps/2/id: duplicate step id 'a' (also used by "
      "/steps/0)",
      "wf.yaml:10:9: error: /steps/3/id: invalid step id 'a#1' (use letters, "
      "digits, '_' and '-', at most 64)",
      "wf.yaml:12:9: error: /steps/4/id: expected a string, got a list"}));
}

TEST(WorkflowLoader, SendSmsFields) {
  EXPECT_EQ(
    diags("name: w\ntrigger: call.missed\nsteps:\n"
          "  - send_sms:\n"
          "      body: hi\n"
          "  - send_sms:\n"
          "  - send_sms: hello\n"
          "  - send_sms:\n"
          "      to: '{{ call.from }}'\n"
          "      body: {text: hi}\n"
          "      from: [a]\n"
          "  - send_sms: {to: ' ', body: ''}\n"),
    (strings{
      "wf.yaml:5:7: error: /steps/0/send_sms: missing required key 'to'",
      "wf.yaml:6:5: error: /steps/1/send_sms: missing required key 'to'",
      "wf.yaml:6:5: error: /steps/1/send_sms: missing required key 'body'",
      // NOLINTNEXTLINE(bugprone-suspicious-missing-comma): split literals
      "wf.yaml:7:15: error: /steps/2/send_sms: expected a map of fields (to, "
      "body, from), got a scalar",
      "wf.yaml:10:13: error: /steps/3/send_sms/body: expected a string, got a "
      "map",
      "wf.yaml:11:13: error: /steps/3/send_sms/from: expected a string, got a "
      "list",
      "wf.yaml:12:20: error: /steps/4/send_sms/to: must not be empty",
      "wf.yaml:12:31: error: /steps/4/send_sms/body: must not be empty"}));
}

TEST(WorkflowLoader, TemplatesInFields) {
  EXPECT_EQ(
    diags("name: w\ntrigger: call.missed\nsteps:\n"
          "  - send_sms:\n"
          "      to: '{{ call.form }}'\n"
          "      body: 'Hi {{ tenant.name }} {{ caller.name }}'\n"
          "  - send_sms:\n"
          "      to: '{{ call.from'\n"
          "      body: '{{}}'\n"
          "      from: '{{ call to }}'\n"),
    (strings{
      // NOLINTNEXTLINE(bugprone-suspicious-missing-comma): split literals
      "wf.yaml:5:11: error: /steps/0/send_sms/to: unknown variable "
      "'call.form' (did you mean 'call.from'?); known variables for "
      "call.missed: call.sid, call.from, call.to, tenant.id, tenant.name, "
      "tenant.owner_phone, tenant.timezone",
      "wf.yaml:6:13: error: /steps/0/send_sms/body: unknown variable "
      "'caller.name'; known variables for call.missed: call.sid, call.from, "
      "call.to, tenant.id, tenant.name, tenant.owner_phone, tenant.timezone",
      "wf.yaml:8:11: error: /steps/1/send_sms/to: unterminated '{{' at column "
      "1 of the template (expected '}}')",
      "wf.yaml:9:13: error: /steps/1/send_sms/body: empty '{{ }}' at column 1 "
      "of the template",
      "wf.yaml:10:13: error: /steps/1/send_sms/from: invalid variable name "
      "'call to' at column 1 of the template (expected a name like "
      "call.from)"}));
}

TEST(loader_test,
     a_default_needing_a_missing_variable_makes_the_field_required) {
  language lang;
  lang.triggers.add({"schedule", "", {"tenant.id"}});
  lang.steps.add(send_sms_step());
  auto r = load_string("name: w\ntrigger: schedule\nsteps:\n"
                       "  - send_sms: {to: '+15005550002', body: hi}\n",
                       "wf.yaml", lang);
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(
    to_string(r.diagnostics[0]),
    "wf.yaml:4:15: error: /steps/0/send_sms: missing required key 'from' (its "
    "default '{{ call.to }}' needs call.to, which trigger 'schedule' does not "
    "offer)");
}

TEST(WorkflowLoader, AllProblemsAreReportedAtOnce) {
  auto out = diags("name: w\ntriger: call.missed\nsteps:\n"
                   "  - send_sms: {to: '{{ x }}', bdy: hi}\n"
                   "  - sendsms: {}\n");
  EXPECT_EQ(out.size(), 3u) << ::testing::PrintToString(out);
}

TEST(WorkflowLoader, FileAndDirectoryErrors) {
  auto r = load_file("/nonexistent/wf.yaml");
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(
    to_string(r.diagnostics[0]),
    "/nonexistent/wf.yaml: error: cannot read file: No such file or directory");
  auto c = load_directory("/nonexistent");
  ASSERT_EQ(c.diagnostics().size(), 1u);
  EXPECT_EQ(
    to_string(c.diagnostics()[0]),
    "/nonexistent: error: cannot read directory: No such file or directory");
}

TEST(WorkflowLoader, LoadDirectorySortsSkipsAndCollects) {
  TempDir dir;
  auto flow = [](const std::string& name, const std::string& trigger) {
    return "name: " + name + "\ntrigger: " + trigger
           + "\nsteps:\n  - send_sms: {to: '{{ call.from }}', body: hi}\n";
  };
  dir.write("b.yaml", flow("bee", "call.missed"));
  dir.write("a.yaml", flow("ay", "call.missed"));
  dir.write("c.yaml", flow("sea", "call.answered"));
  dir.write("d.yaml", flow("ay", "call.missed"));
  dir.write("e.yaml", "name: e\n");
  dir.write("a.test.yaml", "not: a workflow\n");
  dir.write("f.yml", "not: a workflow\n");
  dir.write(".g.yaml", "not: a workflow\n");
  std::filesystem::create_directories(dir.str() + "/sub.yaml");
  auto c = load_directory(dir.str());
  strings out;
  for (const auto& d : c.diagnostics()) {
    out.push_back(to_string(d));
  }
  EXPECT_EQ(
    out,
    (strings{dir.str()
               + "/d.yaml:1:7: error: /name: duplicate workflow name "
                 "'ay' (also defined in "
               + dir.str() + "/a.yaml)",
             dir.str() + "/e.yaml:1:1: error: missing required key 'trigger'",
             dir.str() + "/e.yaml:1:1: error: missing required key 'steps'"}));
  ASSERT_EQ(c.workflows().size(), 3u);
  EXPECT_EQ(c.workflows()[0].name, "ay");
  EXPECT_EQ(c.workflows()[0].file, dir.str() + "/a.yaml");
  EXPECT_EQ(c.workflows()[1].name, "bee");
  EXPECT_EQ(c.workflows()[2].name, "sea");
  auto missed = c.for_trigger("call.missed");
  ASSERT_EQ(missed.size(), 2u);
  EXPECT_EQ(missed[0]->name, "ay");
  EXPECT_EQ(missed[1]->name, "bee");
  EXPECT_EQ(c.for_trigger("call.answered").size(), 1u);
  EXPECT_TRUE(c.for_trigger("sms.received").empty());
}

TEST(WorkflowLoader, CyclicAndExplodingAliasesAreBounded) {
  EXPECT_EQ(
    diags("name: &a [*a]\n"),
    (strings{
      "wf.yaml:1:7: error: /name/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/"
      "0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/0/"
      "0/0/0/0/0/0/0/0/0: the document is nested more than 64 levels deep"}));
  // Ten levels of ten aliases each: 10^9 nodes if walked naively.
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    auto level = std::to_string(i);
    auto previous = "*a" + std::to_string(i - 1);
    bomb += "a";
    bomb += level;
    bomb += ": &a";
    bomb += level;
    bomb += " [";
    bomb += previous;
    for (int j = 1; j < 10; ++j) {
      bomb += ", ";
      bomb += previous;
    }
    bomb += "]\n";
  }
  auto out = diags(bomb);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].find("the document has more than 100000 nodes"),
            std::string::npos)
    << out[0];
}

TEST(WorkflowLoader, HugeFilesAreRefused) {
  EXPECT_EQ(diags(std::string(1024 * 1024 + 1, '#')),
            (strings{
              "wf.yaml: error: the file is too large (1048577 bytes; at most "
              "1048576)"}));
}

TEST(Diagnostic, Formatting) {
  diagnostic d{"f.yaml", 3, 7, "/a", "bad"};
  EXPECT_EQ(to_string(d), "f.yaml:3:7: error: /a: bad");
  d.path.clear();
  EXPECT_EQ(to_string(d), "f.yaml:3:7: error: bad");
  d.line = 0;
  EXPECT_EQ(to_string(d), "f.yaml: error: bad");
  d.level = severity::warning;
  EXPECT_EQ(to_string(d), "f.yaml: warning: bad");
}

TEST(Diagnostic, Nearest) {
  strings keys{"to", "body", "from"};
  EXPECT_EQ(nearest("bdy", keys), "body");
  EXPECT_EQ(nearest("form", keys), "from"); // a transposition is one edit
  EXPECT_EQ(nearest("Body", keys), "body");
  EXPECT_EQ(nearest("id", keys), "");
  EXPECT_EQ(nearest("", keys), "");
  EXPECT_EQ(nearest(std::string(1000, 'x'), keys), "");
  EXPECT_EQ(did_you_mean("tu", keys), " (did you mean 'to'?)");
}

TEST(Diagnostic, Paths) {
  EXPECT_EQ(child_path(path_style::pointer, "", "steps"), "/steps");
  EXPECT_EQ(child_path(path_style::pointer, "/steps", 2), "/steps/2");
  EXPECT_EQ(child_path(path_style::pointer, "", "a/b~c"), "/a~1b~0c");
  EXPECT_EQ(child_path(path_style::dotted, "", "tenants"), "tenants");
  EXPECT_EQ(child_path(path_style::dotted, "tenants", 0), "tenants[0]");
  EXPECT_EQ(child_path(path_style::dotted, "tenants[0]", "id"),
            "tenants[0].id");
}

TEST(Phone, E164) {
  EXPECT_TRUE(is_e164("+15005550001"));
  EXPECT_TRUE(is_e164("+12345678"));        // 8 digits
  EXPECT_TRUE(is_e164("+123456789012345")); // 15 digits
  EXPECT_FALSE(is_e164("+1234567"));
  EXPECT_FALSE(is_e164("+1234567890123456"));
  EXPECT_FALSE(is_e164("15005550001"));
  EXPECT_FALSE(is_e164("+05005550001"));
  EXPECT_FALSE(is_e164("+1500555000a"));
  EXPECT_FALSE(is_e164(""));
  EXPECT_EQ(normalize_e164("+1 (500) 555-0001"), "+15005550001");
  EXPECT_EQ(normalize_e164("+1.500.555.0001"), "+15005550001");
  EXPECT_EQ(normalize_e164("5005550001"), std::nullopt);
  EXPECT_EQ(normalize_e164("anonymous"), std::nullopt);
}
