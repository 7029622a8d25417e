#include "ringback/workflows/registry.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace ringback::workflows;

namespace {

using strings = std::vector<std::string>;

/// A fresh folder per test, removed afterwards.
class temp_dir {
public:
  temp_dir() {
    auto name
      = std::string("ringback-registry-")
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

  /// Writes `rel` (creating its folders) by writing a temporary file and
  /// renaming it, as editors do: a reader never sees half a file.
  void write(const std::string& rel, const std::string& text) const {
    auto target = path_ / rel;
    std::filesystem::create_directories(target.parent_path());
    auto tmp = target.parent_path()
               / ("." + target.filename().string() + ".tmp");
    {
      std::ofstream out(tmp, std::ios::binary);
      out << text;
    }
    std::filesystem::rename(tmp, target);
  }
  void mkdir(const std::string& rel) const {
    std::filesystem::create_directories(path_ / rel);
  }
  void remove(const std::string& rel) const {
    std::filesystem::remove_all(path_ / rel);
  }
  std::string str() const {
    return path_.string();
  }
  std::string operator/(const std::string& rel) const {
    return (path_ / rel).string();
  }

private:
  std::filesystem::path path_;
};

std::string sms_wf(const std::string& name, const std::string& trigger,
                   const std::string& body) {
  return "name: " + name + "\ntrigger: " + trigger
         + "\nsteps:\n  - send_sms:\n      to: '{{ tenant.owner_phone }}'\n"
           "      body: '"
         + body + "'\n";
}

std::string answer_wf(const std::string& name, const std::string& text) {
  return "name: " + name + "\ntrigger: call.incoming\nsteps:\n  - say: '" + text
         + "'\n";
}

strings names(const std::vector<workflow_ptr>& xs) {
  strings out;
  for (const auto& x : xs)
    out.push_back(x->name);
  return out;
}

strings lines(const std::vector<diagnostic>& xs) {
  strings out;
  for (const auto& x : xs)
    out.push_back(to_string(x));
  return out;
}

/// Collects what a registry logs.
struct log_sink {
  std::mutex mtx;
  strings entries;

  registry_log fn() {
    return [this](std::string_view level, std::string_view line) {
      std::lock_guard<std::mutex> guard(mtx);
      entries.push_back(std::string(level) + " " + std::string(line));
    };
  }
  strings take() {
    std::lock_guard<std::mutex> guard(mtx);
    return std::exchange(entries, {});
  }
};

/// The layout most tests start from: three global workflows, a tenant
/// `acme` that overrides one by name, answers calls itself and adds one, and
/// a tenant `bob` without a folder.
void write_standard(const temp_dir& dir) {
  dir.write("missed.yaml", sms_wf("missed_call", "call.missed", "global"));
  dir.write("answer.yaml", answer_wf("greeting", "Hello"));
  dir.write("reply.yaml", sms_wf("auto_reply", "sms.received", "thanks"));
  dir.write("missed.test.yaml", "not: loaded");
  dir.write("notes.txt", "not a workflow");
  dir.write("tenants/acme/missed.yaml",
            sms_wf("missed_call", "call.missed", "acme"));
  dir.write("tenants/acme/answer.yaml", answer_wf("acme_answer", "Acme!"));
  dir.write("tenants/acme/extra.yaml",
            sms_wf("acme_extra", "call.missed", "extra"));
}

const strings tenant_ids{"acme", "bob"};

/// Waits up to ~10 s for `pred`.
template <class Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 1000; ++i) {
    if (pred())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

} // namespace

// -- load_workflow_set --------------------------------------------------------

TEST(WorkflowSet, ATenantOverridesByNameAndAddsItsOwn) {
  temp_dir dir;
  write_standard(dir);
  auto r = load_workflow_set(dir.str(), tenant_ids);
  ASSERT_TRUE(r.ok()) << to_string(r.diagnostics);
  EXPECT_TRUE(r.diagnostics.empty());
  const auto& set = *r.value;
  EXPECT_EQ(set.generation(), 1u);
  EXPECT_EQ(set.tenants(), strings{"acme"});
  // acme: its missed_call in the global one's place, then its addition.
  auto missed = set.for_trigger("acme", "call.missed");
  ASSERT_EQ(names(missed), (strings{"missed_call", "acme_extra"}));
  EXPECT_EQ(missed[0]->file, dir / "tenants/acme/missed.yaml");
  EXPECT_EQ(set.tenant_of(missed[0]), "acme");
  EXPECT_EQ(set.tenant_of(missed[1]), "acme");
  // Not overridden: the global one.
  auto replies = set.for_trigger("acme", "sms.received");
  ASSERT_EQ(names(replies), strings{"auto_reply"});
  EXPECT_EQ(set.tenant_of(replies[0]), "");
  // bob has no folder; an unconfigured id sees the global ones too.
  for (const char* id : {"bob", "nobody", ""}) {
    auto xs = set.for_trigger(id, "call.missed");
    ASSERT_EQ(names(xs), strings{"missed_call"}) << id;
    EXPECT_EQ(xs[0]->file, dir / "missed.yaml");
    EXPECT_EQ(set.tenant_of(xs[0]), "");
  }
  EXPECT_TRUE(set.for_trigger("acme", "schedule").empty());
  EXPECT_TRUE(set.for_trigger("acme", "no.such.trigger").empty());
}

TEST(WorkflowSet, ATenantsCallIncomingReplacesTheGlobalOneWhateverItsName) {
  temp_dir dir;
  write_standard(dir);
  auto r = load_workflow_set(dir.str(), tenant_ids);
  ASSERT_TRUE(r.ok()) << to_string(r.diagnostics);
  const auto& set = *r.value;
  EXPECT_EQ(names(set.for_trigger("acme", "call.incoming")),
            strings{"acme_answer"});
  EXPECT_EQ(names(set.for_trigger("bob", "call.incoming")),
            strings{"greeting"});
  EXPECT_EQ(set.find("acme", "greeting"), nullptr);
  ASSERT_NE(set.find("bob", "greeting"), nullptr);
  EXPECT_EQ(set.find("bob", "acme_answer"), nullptr);
  ASSERT_NE(set.find("acme", "acme_answer"), nullptr);
  EXPECT_EQ(set.find("acme", "acme_answer")->trigger, "call.incoming");
}

TEST(WorkflowSet, FindAllAndTenantOf) {
  temp_dir dir;
  write_standard(dir);
  auto r = load_workflow_set(dir.str(), tenant_ids);
  ASSERT_TRUE(r.ok()) << to_string(r.diagnostics);
  const auto& set = *r.value;
  auto acme = set.find("acme", "missed_call");
  auto bob = set.find("bob", "missed_call");
  ASSERT_NE(acme, nullptr);
  ASSERT_NE(bob, nullptr);
  EXPECT_NE(acme, bob);
  EXPECT_NE(acme->version, bob->version);
  EXPECT_EQ(set.find("acme", "auto_reply"), set.find("bob", "auto_reply"));
  EXPECT_EQ(set.find("acme", "nope"), nullptr);
  // Global ones (file order), then acme's (file order).
  auto all = set.all();
  EXPECT_EQ(names(all), (strings{"greeting", "missed_call", "auto_reply",
                                 "acme_answer", "acme_extra", "missed_call"}));
  strings owners;
  for (const auto& wf : all)
    owners.push_back(set.tenant_of(wf));
  EXPECT_EQ(owners, (strings{"", "", "", "acme", "acme", "acme"}));
  // A workflow from elsewhere belongs to nobody here.
  auto other = load_string(sms_wf("x", "call.missed", "x"), "x.yaml");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(set.tenant_of(other.value), "");
  EXPECT_EQ(set.tenant_of(nullptr), "");
}

TEST(WorkflowSet, AnOverrideMayChangeTheTrigger) {
  temp_dir dir;
  dir.write("missed.yaml", sms_wf("follow_up", "call.missed", "global"));
  dir.write("tenants/acme/follow_up.yaml",
            sms_wf("follow_up", "call.answered", "acme"));
  auto r = load_workflow_set(dir.str(), tenant_ids);
  ASSERT_TRUE(r.ok()) << to_string(r.diagnostics);
  EXPECT_TRUE(r.value->for_trigger("acme", "call.missed").empty());
  EXPECT_EQ(names(r.value->for_trigger("acme", "call.answered")),
            strings{"follow_up"});
  EXPECT_EQ(names(r.value->for_trigger("bob", "call.missed")),
            strings{"follow_up"});
}

TEST(WorkflowSet, NoTenantsFolderMeansGlobalWorkflowsOnly) {
  temp_dir dir;
  dir.write("missed.yaml", sms_wf("missed_call", "call.missed", "global"));
  auto r = load_workflow_set(dir.str(), {});
  ASSERT_TRUE(r.ok()) << to_string(r.diagnostics);
  EXPECT_TRUE(r.value->tenants().empty());
  EXPECT_EQ(names(r.value->for_trigger("acme", "call.missed")),
            strings{"missed_call"});
}

TEST(WorkflowSet, AnEmptyTenantFolderInheritsEverything) {
  temp_dir dir;
  write_standard(dir);
  dir.mkdir("tenants/bob");
  auto r = load_workflow_set(dir.str(), tenant_ids);
  ASSERT_TRUE(r.ok()) << to_string(r.diagnostics);
  EXPECT_EQ(r.value->tenants(), (strings{"acme", "bob"}));
  EXPECT_EQ(names(r.value->for_trigger("bob", "call.incoming")),
            strings{"greeting"});
}

TEST(WorkflowSet, AnUnknownTenantFolderIsAnError) {
  temp_dir dir;
  write_standard(dir);
  dir.write("tenants/acne/missed.yaml",
            sms_wf("missed_call", "call.missed", "typo"));
  dir.mkdir("tenants/zed");
  dir.mkdir("tenants/.hidden");
  auto r = load_workflow_set(dir.str(), tenant_ids);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(lines(r.diagnostics),
            (strings{dir / "tenants/acne"
                       + ": error: unknown tenant 'acne' (did you mean "
                         "'acme'?); the tenants are acme, bob",
                     dir / "tenants/zed"
                       + ": error: unknown tenant 'zed'; the tenants are "
                         "acme, bob"}));
  auto none = load_workflow_set(dir.str(), {});
  EXPECT_FALSE(none.ok());
  ASSERT_EQ(none.diagnostics.size(), 3u);
  EXPECT_EQ(to_string(none.diagnostics[0]),
            dir / "tenants/acme"
              + ": error: unknown tenant 'acme'; no tenants are configured");
}

TEST(WorkflowSet, AWorkflowDirectlyInTenantsIsAnError) {
  temp_dir dir;
  write_standard(dir);
  dir.write("tenants/acme.yaml", sms_wf("x", "call.missed", "x"));
  dir.write("tenants/README.md", "one folder per tenant");
  dir.write("tenants/acme.test.yaml", "not: loaded");
  auto r = load_workflow_set(dir.str(), tenant_ids);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(lines(r.diagnostics),
            strings{dir / "tenants/acme.yaml"
                    + ": error: a workflow directly in tenants/ is not "
                      "loaded; put it in tenants/<tenant id>/ or in the "
                      "folder above for every tenant"});
}

TEST(WorkflowSet, TenantsMustBeAFolder) {
  temp_dir dir;
  dir.write("missed.yaml", sms_wf("missed_call", "call.missed", "global"));
  dir.write("tenants", "acme");
  auto r = load_workflow_set(dir.str(), tenant_ids);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(lines(r.diagnostics),
            strings{dir / "tenants"
                    + ": error: expected a folder holding one folder per "
                      "tenant (tenants/<tenant id>/), got a file"});
}

TEST(WorkflowSet, ReportsTheProblemsOfEveryFileAtOnce) {
  temp_dir dir;
  write_standard(dir);
  dir.write("bad.yaml", "name: bad\ntrigger: call.mised\nsteps:\n"
                        "  - send_sms: {to: x, body: hi}\n");
  dir.write("tenants/acme/bad.yaml",
            "name: acme_bad\ntrigger: call.missed\nsteps:\n"
            "  - send_sms: {to: '{{ call.frm }}', body: hi}\n");
  dir.write("tenants/acme/second_answer.yaml", answer_wf("another", "Hi"));
  auto r = load_workflow_set(dir.str(), tenant_ids);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.value, nullptr);
  auto got = lines(r.diagnostics);
  ASSERT_EQ(got.size(), 3u) << to_string(r.diagnostics);
  EXPECT_EQ(got[0].rfind(dir / "bad.yaml"
                           + ":2:10: error: /trigger: unknown "
                             "trigger 'call.mised' (did you "
                             "mean 'call.missed'?)",
                         0),
            0u)
    << got[0];
  EXPECT_EQ(got[1].rfind(dir / "tenants/acme/bad.yaml"
                           + ":4:24: error: /steps/0/send_sms/to: unknown "
                             "variable 'call.frm' (did you mean "
                             "'call.from'?)",
                         0),
            0u)
    << got[1];
  // Two call.incoming workflows in one tenant's folder.
  EXPECT_EQ(got[2], dir / "tenants/acme/second_answer.yaml"
                      + ":1:7: error: /name: a second call.incoming workflow "
                        "('another'; 'acme_answer' in "
                      + dir / "tenants/acme/answer.yaml"
                      + " answers calls already): a call gets one answer");
}

TEST(WorkflowSet, AMissingFolderIsAnError) {
  temp_dir dir;
  auto r = load_workflow_set(dir / "nope", tenant_ids);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(lines(r.diagnostics),
            strings{dir / "nope"
                    + ": error: cannot read directory: No such file or "
                      "directory"});
  dir.write("file.yaml", sms_wf("x", "call.missed", "x"));
  auto file = load_workflow_set(dir / "file.yaml", tenant_ids);
  EXPECT_FALSE(file.ok());
  EXPECT_EQ(lines(file.diagnostics),
            strings{dir / "file.yaml"
                    + ": error: cannot read directory: Not a directory"});
}

TEST(WorkflowSet, AnEmptySetHasNothing) {
  workflow_set set;
  EXPECT_EQ(set.generation(), 0u);
  EXPECT_TRUE(set.all().empty());
  EXPECT_TRUE(set.for_trigger("acme", "call.missed").empty());
  EXPECT_EQ(set.find("acme", "x"), nullptr);
}

// -- workflow_registry --------------------------------------------------------

TEST(WorkflowRegistry, StartsEmptyThenLoads) {
  temp_dir dir;
  write_standard(dir);
  workflow_registry reg(dir.str(), tenant_ids);
  ASSERT_NE(reg.current(), nullptr);
  EXPECT_EQ(reg.current()->generation(), 0u);
  EXPECT_TRUE(reg.current()->all().empty());
  auto r = reg.load();
  ASSERT_TRUE(r.ok()) << to_string(r.diagnostics);
  EXPECT_EQ(r.value->generation(), 1u);
  EXPECT_EQ(reg.current(), r.value);
  EXPECT_EQ(names(reg.current()->for_trigger("acme", "call.incoming")),
            strings{"acme_answer"});
}

TEST(WorkflowRegistry, AFailedFirstLoadLeavesTheEmptySet) {
  temp_dir dir;
  dir.write("bad.yaml", "name: [\n");
  workflow_registry reg(dir.str(), tenant_ids);
  auto r = reg.load();
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.diagnostics.empty());
  EXPECT_EQ(reg.current()->generation(), 0u);
  log_sink sink;
  EXPECT_FALSE(reg.reload(sink.fn()));
  auto got = sink.take();
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back(), "error rejected new workflows; none are loaded yet");
}

TEST(WorkflowRegistry, AnInvalidEditKeepsTheOldSetAndALaterFixLoads) {
  temp_dir dir;
  write_standard(dir);
  workflow_registry reg(dir.str(), tenant_ids);
  ASSERT_TRUE(reg.load().ok());
  auto before = reg.current();
  log_sink sink;

  dir.write("tenants/acme/missed.yaml",
            "name: missed_call\ntrigger: call.missed\nsteps:\n"
            "  - send_sms: {to: '{{ tenant.owner_phone }}', bdy: hi}\n");
  EXPECT_FALSE(reg.reload(sink.fn()));
  EXPECT_EQ(reg.current(), before);
  EXPECT_EQ(reg.current()->generation(), 1u);
  // One line per diagnostic, at its severity, as file:line:col (the
  // loader's own wording is pinned in its tests; here only the start).
  auto got = sink.take();
  ASSERT_EQ(got.size(), 2u) << ::testing::PrintToString(got);
  EXPECT_EQ(got[0].rfind("error " + dir / "tenants/acme/missed.yaml"
                           + ":4:48: error: /steps/0/send_sms: unknown key "
                             "'bdy' (did you mean 'body'?)",
                         0),
            0u)
    << got[0];
  EXPECT_EQ(got[1], "error rejected new workflows, keeping generation 1");

  dir.write("tenants/acme/missed.yaml",
            sms_wf("missed_call", "call.missed", "acme, fixed"));
  EXPECT_TRUE(reg.reload(sink.fn()));
  EXPECT_EQ(sink.take(),
            strings{"info reloaded workflows: 1 changed (acme/missed_call), "
                    "generation 2"});
  EXPECT_EQ(reg.current()->generation(), 2u);
  EXPECT_NE(reg.current(), before);
  EXPECT_EQ(reg.current()->find("acme", "missed_call")->source,
            sms_wf("missed_call", "call.missed", "acme, fixed"));
  // The old set is untouched: a reader holding it still sees it whole.
  EXPECT_EQ(before->find("acme", "missed_call")->source,
            sms_wf("missed_call", "call.missed", "acme"));
}

TEST(WorkflowRegistry, TheSummaryNamesAddedChangedAndRemovedWorkflows) {
  temp_dir dir;
  write_standard(dir);
  workflow_registry reg(dir.str(), tenant_ids);
  ASSERT_TRUE(reg.load().ok());
  log_sink sink;
  EXPECT_TRUE(reg.reload(sink.fn()));
  EXPECT_EQ(sink.take(),
            strings{"info reloaded workflows: 0 changed, generation 2"});
  dir.remove("reply.yaml");
  dir.write("missed.yaml", sms_wf("missed_call", "call.missed", "global 2"));
  dir.write("tenants/bob/extra.yaml", sms_wf("bob_extra", "call.missed", "b"));
  EXPECT_TRUE(reg.reload(sink.fn()));
  EXPECT_EQ(sink.take(),
            strings{"info reloaded workflows: 3 changed (missed_call, "
                    "bob/bob_extra (new), auto_reply (removed)), "
                    "generation 3"});
  EXPECT_TRUE(reg.reload({})); // no log: fine
  EXPECT_EQ(reg.current()->generation(), 4u);
}

TEST(WorkflowRegistry, OldVersionsStayFindable) {
  temp_dir dir;
  write_standard(dir);
  workflow_registry reg(dir.str(), tenant_ids);
  ASSERT_TRUE(reg.load().ok());
  auto v1_acme = reg.current()->find("acme", "missed_call");
  auto v1_global = reg.current()->find("bob", "missed_call");
  auto v1_greeting = reg.current()->find("bob", "greeting");
  ASSERT_NE(v1_acme, nullptr);
  ASSERT_NE(v1_global, nullptr);
  ASSERT_NE(v1_greeting, nullptr);

  dir.write("tenants/acme/missed.yaml",
            sms_wf("missed_call", "call.missed", "acme v2"));
  dir.write("missed.yaml", sms_wf("missed_call", "call.missed", "global v2"));
  dir.remove("answer.yaml");
  ASSERT_TRUE(reg.reload({}));
  auto v2_acme = reg.current()->find("acme", "missed_call");
  ASSERT_NE(v2_acme, nullptr);
  ASSERT_NE(v2_acme->version, v1_acme->version);
  EXPECT_EQ(reg.current()->find("bob", "greeting"), nullptr);

  EXPECT_EQ(reg.find_version("acme", "missed_call", v1_acme->version), v1_acme);
  EXPECT_EQ(reg.find_version("acme", "missed_call", v2_acme->version), v2_acme);
  EXPECT_EQ(reg.find_version("bob", "missed_call", v1_global->version),
            v1_global);
  EXPECT_EQ(reg.find_version("", "missed_call", v1_global->version), v1_global);
  // A run of acme that started on the global version before acme overrode
  // it (or a tenant whose call.incoming displaces the global one).
  EXPECT_EQ(reg.find_version("acme", "missed_call", v1_global->version),
            v1_global);
  EXPECT_EQ(reg.find_version("acme", "greeting", v1_greeting->version),
            v1_greeting);
  // Removed from the folder, still there for its waiting runs.
  EXPECT_EQ(reg.find_version("bob", "greeting", v1_greeting->version),
            v1_greeting);
  // One tenant never gets another's workflow.
  EXPECT_EQ(reg.find_version("bob", "missed_call", v1_acme->version), nullptr);
  EXPECT_EQ(reg.find_version("", "missed_call", v1_acme->version), nullptr);
  // Never loaded here.
  EXPECT_EQ(reg.find_version("acme", "missed_call", "0123456789abcdef"),
            nullptr);
  EXPECT_EQ(reg.find_version("acme", "nope", v1_acme->version), nullptr);
}

TEST(WorkflowRegistry, ARejectedVersionIsNeverFindable) {
  temp_dir dir;
  write_standard(dir);
  workflow_registry reg(dir.str(), tenant_ids);
  ASSERT_TRUE(reg.load().ok());
  // A clean new version of one file next to a broken file: nothing of the
  // rejected load is kept.
  const auto fresh = sms_wf("missed_call", "call.missed", "never live");
  dir.write("missed.yaml", fresh);
  dir.write("broken.yaml", "name: broken\n");
  EXPECT_FALSE(reg.reload({}));
  EXPECT_EQ(reg.find_version("bob", "missed_call", content_hash(fresh)),
            nullptr);
}

TEST(WorkflowRegistry, TheWatcherPicksUpChanges) {
  temp_dir dir;
  write_standard(dir);
  workflow_registry reg(dir.str(), tenant_ids);
  ASSERT_TRUE(reg.load().ok());
  log_sink sink;
  reg.watch(std::chrono::milliseconds(20), sink.fn());

  // An edit.
  dir.write("missed.yaml", sms_wf("missed_call", "call.missed", "edited"));
  ASSERT_TRUE(eventually([&] { return reg.current()->generation() >= 2; }));
  EXPECT_EQ(reg.current()->find("bob", "missed_call")->source,
            sms_wf("missed_call", "call.missed", "edited"));

  // A broken edit is logged and changes nothing; its fix loads.
  const auto gen = reg.current()->generation();
  dir.write("tenants/acme/extra.yaml", "name: acme_extra\ntrigger: nope\n");
  ASSERT_TRUE(eventually([&] {
    auto got = sink.take();
    for (const auto& x : got)
      if (x
          == "error rejected new workflows, keeping generation "
               + std::to_string(gen))
        return true;
    return false;
  }));
  EXPECT_EQ(reg.current()->generation(), gen);
  dir.write("tenants/acme/extra.yaml",
            sms_wf("acme_extra", "call.missed", "fixed"));
  ASSERT_TRUE(eventually([&] { return reg.current()->generation() > gen; }));
  EXPECT_EQ(reg.current()->find("acme", "acme_extra")->source,
            sms_wf("acme_extra", "call.missed", "fixed"));

  // A new tenant folder, with a workflow in it.
  const auto gen2 = reg.current()->generation();
  dir.write("tenants/bob/answer.yaml", answer_wf("bob_answer", "Bob here"));
  ASSERT_TRUE(eventually([&] { return reg.current()->generation() > gen2; }));
  EXPECT_EQ(names(reg.current()->for_trigger("bob", "call.incoming")),
            strings{"bob_answer"});

  // A removed file.
  const auto gen3 = reg.current()->generation();
  dir.remove("reply.yaml");
  ASSERT_TRUE(eventually([&] { return reg.current()->generation() > gen3; }));
  EXPECT_TRUE(reg.current()->for_trigger("bob", "sms.received").empty());
  reg.stop();
  reg.stop(); // idempotent
}

TEST(WorkflowRegistry, TheWatcherIgnoresFilesThatAreNotWorkflows) {
  temp_dir dir;
  write_standard(dir);
  workflow_registry reg(dir.str(), tenant_ids);
  ASSERT_TRUE(reg.load().ok());
  log_sink sink;
  reg.watch(std::chrono::milliseconds(10), sink.fn());
  dir.write("notes.txt", "changed");
  dir.write("missed.test.yaml", "changed: too");
  dir.write(".missed.yaml.swp", "editor state");
  dir.write("tenants/acme/.answer.yaml.swp", "editor state");
  // Then a real change: once it is loaded, the others would have been too.
  dir.write("answer.yaml", answer_wf("greeting", "Hello again"));
  ASSERT_TRUE(eventually([&] { return reg.current()->generation() >= 2; }));
  reg.stop();
  EXPECT_EQ(reg.current()->generation(), 2u);
  EXPECT_EQ(sink.take(),
            strings{"info reloaded workflows: 1 changed (greeting), "
                    "generation 2"});
}

TEST(WorkflowRegistry, TheWatcherDebouncesABurstOfWrites) {
  temp_dir dir;
  write_standard(dir);
  workflow_registry reg(dir.str(), tenant_ids);
  ASSERT_TRUE(reg.load().ok());
  // A long interval: a burst written well within it is one reload.
  reg.watch(std::chrono::milliseconds(300), {});
  for (int i = 0; i < 5; ++i)
    dir.write("missed.yaml", sms_wf("missed_call", "call.missed",
                                    "burst " + std::to_string(i)));
  ASSERT_TRUE(eventually([&] { return reg.current()->generation() >= 2; }));
  EXPECT_EQ(reg.current()->find("bob", "missed_call")->source,
            sms_wf("missed_call", "call.missed", "burst 4"));
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  reg.stop();
  EXPECT_EQ(reg.current()->generation(), 2u);
}

TEST(WorkflowRegistry, AThrowingLogDoesNotEndTheWatcher) {
  temp_dir dir;
  write_standard(dir);
  workflow_registry reg(dir.str(), tenant_ids);
  ASSERT_TRUE(reg.load().ok());
  reg.watch(std::chrono::milliseconds(10),
            [](std::string_view, std::string_view) {
              throw std::runtime_error("log is down");
            });
  dir.write("missed.yaml", sms_wf("missed_call", "call.missed", "one"));
  ASSERT_TRUE(eventually([&] { return reg.current()->generation() >= 2; }));
  dir.write("missed.yaml", sms_wf("missed_call", "call.missed", "two"));
  ASSERT_TRUE(eventually([&] { return reg.current()->generation() >= 3; }));
  // The destructor stops the watcher.
}

TEST(WorkflowRegistry, WatchingAgainReplacesTheWatcher) {
  temp_dir dir;
  write_standard(dir);
  workflow_registry reg(dir.str(), tenant_ids);
  ASSERT_TRUE(reg.load().ok());
  log_sink first;
  log_sink second;
  reg.watch(std::chrono::milliseconds(10), first.fn());
  reg.watch(std::chrono::milliseconds(10), second.fn());
  dir.write("missed.yaml", sms_wf("missed_call", "call.missed", "again"));
  ASSERT_TRUE(eventually([&] { return reg.current()->generation() >= 2; }));
  reg.stop();
  EXPECT_TRUE(first.take().empty());
  EXPECT_FALSE(second.take().empty());
}

TEST(WorkflowRegistry, ReadersSeeWholeSetsDuringReloads) {
  temp_dir dir;
  write_standard(dir);
  workflow_registry reg(dir.str(), tenant_ids);
  ASSERT_TRUE(reg.load().ok());
  std::atomic<bool> done{false};
  std::atomic<long> reads{0};
  std::atomic<long> bad{0};
  auto reader = [&] {
    std::uint64_t last_generation = 0;
    while (!done.load()) {
      auto set = reg.current();
      // Generations never go back.
      if (set->generation() < last_generation)
        ++bad;
      last_generation = set->generation();
      // Every set is whole: acme always has its two call.missed workflows,
      // both of the same edit (their bodies carry the generation's tag).
      auto xs = set->for_trigger("acme", "call.missed");
      if (xs.size() != 2 || xs[0]->name != "missed_call"
          || xs[1]->name != "acme_extra") {
        ++bad;
      } else {
        if (xs[0]->source.substr(xs[0]->source.rfind("body"))
            != xs[1]->source.substr(xs[1]->source.rfind("body")))
          ++bad;
        if (reg.find_version("acme", "missed_call", xs[0]->version) != xs[0])
          ++bad;
      }
      if (set->for_trigger("bob", "call.incoming").size() != 1)
        ++bad;
      ++reads;
    }
  };
  dir.write("tenants/acme/missed.yaml",
            sms_wf("missed_call", "call.missed", "tag 0"));
  dir.write("tenants/acme/extra.yaml",
            sms_wf("acme_extra", "call.missed", "tag 0"));
  ASSERT_TRUE(reg.reload({}));
  std::thread r1(reader);
  std::thread r2(reader);
  log_sink sink;
  int reloads = 0;
  for (int i = 1; i <= 40; ++i) {
    const auto tag = "tag " + std::to_string(i);
    dir.write("tenants/acme/missed.yaml",
              sms_wf("missed_call", "call.missed", tag));
    dir.write("tenants/acme/extra.yaml",
              sms_wf("acme_extra", "call.missed", tag));
    if (i % 5 == 0) // now and then a broken edit, rejected
      dir.write("answer.yaml", "name: greeting\n");
    reloads += reg.reload(sink.fn()) ? 1 : 0;
    if (i % 5 == 0)
      dir.write("answer.yaml", answer_wf("greeting", "Hello"));
  }
  done = true;
  r1.join();
  r2.join();
  EXPECT_EQ(reloads, 32);
  EXPECT_EQ(reg.current()->generation(), 2u + 32u);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads.load(), 0);
}

TEST(WorkflowRegistry, ConcurrentReloadsHandOutGenerationsInOrder) {
  temp_dir dir;
  write_standard(dir);
  workflow_registry reg(dir.str(), tenant_ids);
  ASSERT_TRUE(reg.load().ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i)
        reg.reload({});
    });
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(reg.current()->generation(), 41u);
}
