#include "ringback/app/config.hpp"

#include "ringback/workflows/calendar.hpp"
#include "ringback/workflows/loader.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

using namespace ringback::app;
using ringback::engine::number_kind;
using namespace std::chrono_literals;

namespace {

using strings = std::vector<std::string>;

class TempDir {
public:
  TempDir() {
    auto name
      = std::string("ringback-config-")
        + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-"
        + std::to_string(::getpid());
    path_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_ / "flows");
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string str() const {
    return path_.string();
  }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name) << text;
    return (path_ / name).string();
  }

private:
  std::filesystem::path path_;
};

// Line numbers matter: the pinned messages below point into this text.
const std::string base
  = "listen: 127.0.0.1:8080\n"                            // 1
    "public_url: https://ringback.example.com/\n"         // 2
    "store: sqlite:ringback.db\n"                         // 3
    "kv: memory\n"                                        // 4
    "workflows: ./flows\n"                                // 5
    "twilio:\n"                                           // 6
    "  api_url: https://api.twilio.com\n"                 // 7
    "  account_sid: AC0123456789abcdef0123456789abcdef\n" // 8
    "  auth_token: ${TWILIO_AUTH_TOKEN}\n"                // 9
    "calls:\n"                                            // 10
    "  ring_timeout: 20s\n"                               // 11
    "  fallback_grace: 10s\n"                             // 12
    "tenants:\n"                                          // 13
    "  - id: acme\n"                                      // 14
    "    name: Acme Plumbing\n"                           // 15
    "    numbers: [\"+15005550001\", {number: \"+15005550003\", "
    "type: toll_free, mps: 3}]\n"         // 16
    "    owner_phone: \"+15005550002\"\n" // 17
    "    timezone: America/Denver\n";     // 18

std::string replace(std::string text, const std::string& from,
                    const std::string& to) {
  auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) {
    text.replace(at, from.size(), to);
  }
  return text;
}

class Config : public ::testing::Test {
protected:
  env_lookup env_
    = [this](const std::string& name) -> std::optional<std::string> {
    auto i = vars_.find(name);
    if (i == vars_.end()) {
      return std::nullopt;
    }
    return i->second;
  };

  config_result load(const std::string& text) {
    return load_config_string(text, "ringback.yaml", dir_.str(), env_);
  }

  strings errors(const std::string& text) {
    auto r = load(text);
    EXPECT_EQ(r.ok(), r.errors.empty());
    return r.errors;
  }

  strings errors(const std::string& from, const std::string& to) {
    return errors(replace(base, from, to));
  }

  config ok(const std::string& text) {
    auto r = load(text);
    EXPECT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
    return r.value.value_or(config{});
  }

  std::map<std::string, std::string> vars_{{"TWILIO_AUTH_TOKEN", "tok"}};
  TempDir dir_;
};

std::string host_name() {
  std::array<char, 256> buf{};
  ::gethostname(buf.data(), buf.size() - 1);
  return buf.data();
}

} // namespace

TEST_F(Config, TheSampleConfigLoads) {
  auto r = load_config(RINGBACK_SOURCE_DIR "/deploy/ringback.yaml");
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
  const auto& c = *r.value;
  const std::string root
    = std::filesystem::path(RINGBACK_SOURCE_DIR).lexically_normal().string();
  EXPECT_EQ(c.source, RINGBACK_SOURCE_DIR "/deploy/ringback.yaml");
  EXPECT_EQ(c.listen.host, "127.0.0.1");
  EXPECT_EQ(c.listen.port, 8080);
  EXPECT_EQ(c.public_url, "http://127.0.0.1:8080");
  EXPECT_EQ(c.node_id, host_name() + ":8080");
  EXPECT_EQ(c.store, "sqlite:" + root + "/deploy/ringback.db");
  EXPECT_EQ(c.kv, "memory");
  EXPECT_EQ(c.workflows, root + "/workflows");
  EXPECT_EQ(c.http.threads, 2);
  EXPECT_EQ(c.http.max_body, 64u * 1024);
  EXPECT_EQ(c.http.answer_deadline, 2s);
  EXPECT_EQ(c.twilio.api_url, "http://127.0.0.1:8089");
  EXPECT_EQ(c.twilio.account_sid, "AC" + std::string(32, '0'));
  EXPECT_EQ(c.twilio.auth_token, "dev-token");
  EXPECT_EQ(c.calls.ring_timeout, 20s);
  EXPECT_EQ(c.calls.fallback_grace, 10s);
  EXPECT_EQ(c.calls.recheck_interval, 15s);
  ASSERT_EQ(c.tenants.size(), 1u);
  const auto& t = c.tenants[0];
  EXPECT_EQ(t.id, "acme");
  EXPECT_EQ(t.name, "Acme Plumbing");
  EXPECT_EQ(t.owner_phone, "+15005550002");
  EXPECT_EQ(t.timezone, "America/Denver");
  ASSERT_EQ(t.numbers.size(), 2u);
  EXPECT_EQ(t.numbers[0].number, "+15005550001");
  EXPECT_EQ(t.numbers[0].kind, number_kind::long_code);
  EXPECT_EQ(t.numbers[0].mps, 1.0);
  EXPECT_EQ(t.numbers[1].number, "+15005550003");
  EXPECT_EQ(t.numbers[1].kind, number_kind::toll_free);
  EXPECT_EQ(t.numbers[1].mps, 3.0);
  // ... and the workflows folder it names loads clean.
  auto flows = ringback::workflows::load_directory(c.workflows);
  EXPECT_TRUE(flows.ok()) << ringback::workflows::to_string(
    flows.diagnostics());
  EXPECT_EQ(flows.for_trigger("call.missed").size(), 1u);
}

TEST_F(Config, TheBaseConfigLoadsWithDefaults) {
  auto c = ok(base);
  EXPECT_EQ(c.public_url, "https://ringback.example.com"); // no trailing slash
  EXPECT_EQ(c.twilio.auth_token, "tok");
  EXPECT_EQ(c.node_id, host_name() + ":8080");
  EXPECT_EQ(c.http.threads, 2);
  EXPECT_EQ(c.http.max_body, 65536u);
  EXPECT_EQ(c.http.answer_deadline, 2000ms);
  EXPECT_EQ(c.calls.recheck_interval, 15s);
  EXPECT_EQ(c.source, "ringback.yaml");
}

TEST_F(Config, OptionalSettings) {
  auto c = ok(base
              + "node_id: node-a\nhttp: {threads: 4, max_body: 1MiB, "
                "answer_deadline: 500ms}\n");
  EXPECT_EQ(c.node_id, "node-a");
  EXPECT_EQ(c.http.threads, 4);
  EXPECT_EQ(c.http.max_body, 1024u * 1024);
  EXPECT_EQ(c.http.answer_deadline, 500ms);
  c = ok(replace(base, "  fallback_grace: 10s\n",
                 "  fallback_grace: 10s\n  recheck_interval: 2m\n"));
  EXPECT_EQ(c.calls.recheck_interval, 2min);
  c = ok(base + "http:\n");
  EXPECT_EQ(c.http.threads, 2);
  c = ok(replace(base, "listen: 127.0.0.1:8080", "listen: '[::1]:9000'"));
  EXPECT_EQ(c.listen.host, "::1");
  EXPECT_EQ(c.listen.port, 9000);
  EXPECT_EQ(c.listen.to_string(), "[::1]:9000");
  EXPECT_EQ(c.node_id, host_name() + ":9000");
  c = ok(replace(base, "https://ringback.example.com/",
                 "https://example.com/ringback//"));
  EXPECT_EQ(c.public_url, "https://example.com/ringback");
}

TEST_F(Config, NumbersAndTheirDefaults) {
  auto c = ok(replace(base, "type: toll_free, mps: 3}",
                      "type: short_code}, '+1 (500) 555-0004'"));
  const auto& n = c.tenants[0].numbers;
  ASSERT_EQ(n.size(), 3u);
  EXPECT_EQ(n[1].kind, number_kind::short_code);
  EXPECT_EQ(n[1].mps, 100.0);
  EXPECT_EQ(n[2].number, "+15005550004"); // formatting dropped
  c = ok(replace(base, "type: toll_free, mps: 3}", "mps: 0.5}"));
  EXPECT_EQ(c.tenants[0].numbers[1].kind, number_kind::long_code);
  EXPECT_EQ(c.tenants[0].numbers[1].mps, 0.5);
  EXPECT_EQ(default_mps(number_kind::long_code), 1.0);
  EXPECT_EQ(default_mps(number_kind::toll_free), 3.0);
  EXPECT_EQ(default_mps(number_kind::short_code), 100.0);
}

TEST_F(Config, EnvironmentSubstitution) {
  vars_["HOST"] = "10.0.0.1";
  vars_["SID"] = "AC" + std::string(32, 'f');
  vars_["EMPTY"] = "";
  auto c = ok(replace(
    replace(replace(base, "listen: 127.0.0.1:8080", "listen: ${HOST}:8080"),
            "AC0123456789abcdef0123456789abcdef", "\"${SID}\""),
    "name: Acme Plumbing", "name: Acme$${literal}${EMPTY}"));
  EXPECT_EQ(c.listen.host, "10.0.0.1");
  EXPECT_EQ(c.twilio.account_sid, "AC" + std::string(32, 'f'));
  EXPECT_EQ(c.tenants[0].name, "Acme${literal}");
  // Literal values need no environment at all.
  vars_.clear();
  c = ok(replace(base, "${TWILIO_AUTH_TOKEN}", "literal-token"));
  EXPECT_EQ(c.twilio.auth_token, "literal-token");
}

TEST_F(Config, EnvironmentErrors) {
  vars_.clear();
  EXPECT_EQ(errors(base),
            (strings{
              "ringback.yaml:9:15: error: twilio.auth_token: environment "
              "variable TWILIO_AUTH_TOKEN is not set"}));
  EXPECT_EQ(
    errors("${TWILIO_AUTH_TOKEN}", "\"${TWILIO_AUTH_TOKEN}\""),
    (strings{
      "ringback.yaml:9:16: error: twilio.auth_token: environment variable "
      "TWILIO_AUTH_TOKEN is not set"}));
  EXPECT_EQ(
    errors("${TWILIO_AUTH_TOKEN}", "x-${A}-${B}"),
    (strings{
      "ringback.yaml:9:17: error: twilio.auth_token: environment variable A is "
      "not set",
      "ringback.yaml:9:22: error: twilio.auth_token: environment variable B is "
      "not set"}));
  EXPECT_EQ(
    errors("${TWILIO_AUTH_TOKEN}", "${1A}"),
    (strings{
      "ringback.yaml:9:15: error: twilio.auth_token: invalid environment "
      "variable name '1A'"}));
  EXPECT_EQ(errors("${TWILIO_AUTH_TOKEN}", "${TOKEN"),
            (strings{
              "ringback.yaml:9:15: error: twilio.auth_token: unterminated '${' "
              "(expected ${NAME})"}));
  vars_["EMPTY"] = "";
  EXPECT_EQ(
    errors("${TWILIO_AUTH_TOKEN}", "${EMPTY}"),
    (strings{
      "ringback.yaml:9:15: error: twilio.auth_token: must not be empty"}));
}

TEST_F(Config, RelativePathsResolveAgainstTheConfigFolder) {
  std::filesystem::create_directories(dir_.str() + "/data");
  auto c = ok(replace(base, "sqlite:ringback.db", "sqlite:data/../data/x.db"));
  EXPECT_EQ(c.store, "sqlite:" + dir_.str() + "/data/x.db");
  EXPECT_EQ(c.workflows, dir_.str() + "/flows");
  c = ok(
    replace(replace(base, "sqlite:ringback.db", "sqlite:/var/lib/ringback.db"),
            "./flows", dir_.str() + "/flows/"));
  EXPECT_EQ(c.store, "sqlite:/var/lib/ringback.db");
  EXPECT_EQ(c.workflows, dir_.str() + "/flows/");
  EXPECT_EQ(ok(replace(base, "sqlite:ringback.db", "sqlite:///tmp/r.db")).store,
            "sqlite:/tmp/r.db");
  EXPECT_EQ(ok(replace(base, "sqlite:ringback.db", "'sqlite::memory:'")).store,
            "sqlite::memory:");
  auto pg = "postgresql://ringback:secret@db:5432/ringback";
  EXPECT_EQ(ok(replace(base, "sqlite:ringback.db", pg)).store, pg);
  EXPECT_EQ(ok(replace(base, "kv: memory", "kv: redis://127.0.0.1:6379/0")).kv,
            "redis://127.0.0.1:6379/0");

  // load_config: relative to the file, not to the working directory.
  auto path = dir_.write("ringback.yaml",
                         replace(base, "${TWILIO_AUTH_TOKEN}", "t"));
  auto r = load_config(path);
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
  EXPECT_EQ(r.value->store, "sqlite:" + dir_.str() + "/ringback.db");
  EXPECT_EQ(r.value->workflows, dir_.str() + "/flows");
}

TEST_F(Config, DocumentErrors) {
  EXPECT_EQ(errors(""),
            (strings{
              "ringback.yaml:1:1: error: the file is empty (expected a map "
              "of settings)"}));
  EXPECT_EQ(
    errors("- a\n"),
    (strings{
      "ringback.yaml:1:1: error: expected a map of settings, got a list"}));
  EXPECT_EQ(
    errors("listen: [\n"),
    (strings{"ringback.yaml:2:1: error: end of sequence flow not found"}));
  EXPECT_EQ(
    errors("listen: 127.0.0.1:8080\n\tkv: memory\n"),
    (strings{"ringback.yaml:2:1: error: tab character used for indentation"}));
  EXPECT_EQ(
    errors("listen: 127.0.0.1:8080\n"),
    (strings{"ringback.yaml:1:1: error: missing required key 'public_url'",
             "ringback.yaml:1:1: error: missing required key 'store'",
             "ringback.yaml:1:1: error: missing required key 'kv'",
             "ringback.yaml:1:1: error: missing required key 'workflows'",
             "ringback.yaml:1:1: error: missing required key 'twilio'",
             "ringback.yaml:1:1: error: missing required key 'calls'",
             "ringback.yaml:1:1: error: missing required key 'tenants'"}));
  auto r = load_config("/nonexistent/ringback.yaml");
  EXPECT_EQ(r.errors,
            (strings{
              "/nonexistent/ringback.yaml: error: cannot read file: No such "
              "file or directory"}));
}

TEST_F(Config, UnknownAndDuplicateKeys) {
  EXPECT_EQ(
    errors("store: sqlite:ringback.db", "stor: sqlite:ringback.db"),
    (strings{
      "ringback.yaml:3:1: error: unknown key 'stor' (did you mean 'store'?)"}));
  EXPECT_EQ(errors(base + "colour: blue\n"),
            (strings{
              "ringback.yaml:19:1: error: unknown key 'colour' (expected one "
              "of: listen, "
              "public_url, node_id, store, kv, workflows, http, twilio, calls, "
              "ai, tenants)"}));
  EXPECT_EQ(errors("  account_sid:", "  acount_sid:"),
            (strings{"ringback.yaml:8:3: error: twilio: unknown key "
                     "'acount_sid' (did you mean "
                     "'account_sid'?)"}));
  EXPECT_EQ(errors("    owner_phone:",
                   "    owner_phone: \"+15005550009\"\n    onwer_phone:"),
            (strings{"ringback.yaml:18:5: error: tenants[0]: unknown key "
                     "'onwer_phone' (did you "
                     "mean 'owner_phone'?)"}));
  EXPECT_EQ(errors(base + "kv: redis://x\n"),
            (strings{"ringback.yaml:19:1: error: duplicate key 'kv' (first "
                     "defined at line 4)"}));
  EXPECT_EQ(
    errors("    name: Acme Plumbing\n",
           "    name: Acme Plumbing\n    name: Acme\n"),
    (strings{
      "ringback.yaml:16:5: error: tenants[0]: duplicate key 'name' (first "
      "defined at line 15)"}));
  EXPECT_EQ(
    errors("http: {threads: 1, threads: 2}\n" + base),
    (strings{
      "ringback.yaml:1:20: error: http: duplicate key 'threads' (first defined "
      "at line 1)"}));
}

TEST_F(Config, MissingAndMistypedSections) {
  EXPECT_EQ(
    errors("  auth_token: ${TWILIO_AUTH_TOKEN}\n", ""),
    (strings{
      "ringback.yaml:7:3: error: twilio: missing required key 'auth_token'"}));
  EXPECT_EQ(errors("  ring_timeout: 20s\n", ""),
            (strings{"ringback.yaml:11:3: error: calls: missing required key "
                     "'ring_timeout'"}));
  EXPECT_EQ(
    errors(base + "http: [1]\n"),
    (strings{"ringback.yaml:19:7: error: http: expected a map, got a list"}));
  EXPECT_EQ(
    errors("listen: 127.0.0.1:8080", "listen: {host: x}"),
    (strings{
      "ringback.yaml:1:9: error: listen: expected a string, got a map"}));
  EXPECT_EQ(errors("store: sqlite:ringback.db", "store:"),
            (strings{"ringback.yaml:3:1: error: store: expected a string, got "
                     "an empty value"}));
}

TEST_F(Config, ListenAndUrls) {
  EXPECT_EQ(errors("listen: 127.0.0.1:8080", "listen: 8080"),
            (strings{
              "ringback.yaml:1:9: error: listen: '8080' is not host:port (e.g. "
              "127.0.0.1:8080)"}));
  EXPECT_EQ(
    errors("listen: 127.0.0.1:8080", "listen: ::1:8080"),
    (strings{
      "ringback.yaml:1:9: error: listen: '::1:8080' is not host:port (e.g. "
      "127.0.0.1:8080)"}));
  EXPECT_EQ(
    errors("listen: 127.0.0.1:8080", "listen: 127.0.0.1:99999"),
    (strings{
      "ringback.yaml:1:9: error: listen: port 99999 is not between 1 and "
      "65535"}));
  EXPECT_EQ(
    errors("https://ringback.example.com/", "ftp://ringback.example.com"),
    (strings{
      "ringback.yaml:2:13: error: public_url: 'ftp://ringback.example.com' is "
      "not an http:// or https:// URL (without ?query or #fragment)"}));
  EXPECT_EQ(
    errors("https://api.twilio.com", "https://api.twilio.com/?x=1"),
    (strings{
      "ringback.yaml:7:12: error: twilio.api_url: "
      "'https://api.twilio.com/?x=1' "
      "is not an http:// or https:// URL (without ?query or #fragment)"}));
  EXPECT_EQ(errors(base + "node_id: node a\n"),
            (strings{
              "ringback.yaml:19:10: error: node_id: 'node a' must not contain "
              "whitespace"}));
  EXPECT_EQ(
    errors(base + "node_id: ''\n"),
    (strings{"ringback.yaml:19:10: error: node_id: must not be empty"}));
}

TEST_F(Config, StoreKvAndWorkflows) {
  auto out = errors("sqlite:ringback.db",
                    "mysql://ringback:secret@db/ringback");
  EXPECT_EQ(
    out, (strings{
           "ringback.yaml:3:8: error: store: unsupported store scheme 'mysql' "
           "(expected sqlite:<path> or postgresql://user:pass@host:5432/db)"}));
  EXPECT_EQ(errors("sqlite:ringback.db", "ringback.db"),
            (strings{
              "ringback.yaml:3:8: error: store: unsupported store (expected "
              "sqlite:<path> or postgresql://user:pass@host:5432/db)"}));
  EXPECT_EQ(errors("sqlite:ringback.db", "'sqlite:'"),
            (strings{
              "ringback.yaml:3:8: error: store: 'sqlite:' needs a path (e.g. "
              "sqlite:ringback.db)"}));
  EXPECT_EQ(
    errors("sqlite:ringback.db", "postgresql://"),
    (strings{
      "ringback.yaml:3:8: error: store: the postgresql URL has no host (e.g. "
      "postgresql://user:pass@host:5432/db)"}));
  EXPECT_EQ(errors("kv: memory", "kv: redis"),
            (strings{"ringback.yaml:4:5: error: kv: unsupported kv 'redis' "
                     "(expected memory or "
                     "redis://host:port/db)"}));
  EXPECT_EQ(
    errors("kv: memory", "kv: rediss://:secret@h:6379"),
    (strings{
      "ringback.yaml:4:5: error: kv: unsupported kv scheme 'rediss' (expected "
      "memory or redis://host:port/db)"}));
  EXPECT_EQ(errors("./flows", "./nowhere"),
            (strings{"ringback.yaml:5:12: error: workflows: '" + dir_.str()
                     + "/nowhere' is not a directory"}));
}

TEST_F(Config, Durations) {
  auto ring = [&](const std::string& value) {
    return errors("ring_timeout: 20s", "ring_timeout: " + value);
  };
  const std::string at = "ringback.yaml:11:17: error: calls.ring_timeout: ";
  EXPECT_EQ(ring("20"),
            (strings{at + "'20' has no unit (did you mean '20s'?)"}));
  EXPECT_EQ(ring("20sec"),
            (strings{at + "'20sec' is not a duration (did you mean '20s'?)"}));
  EXPECT_EQ(
    ring("2 minutes"),
    (strings{
      at
      + "'2 minutes' is not a duration (expected a whole number and a unit: "
        "500ms, 20s, 2m or 1h)"}));
  EXPECT_EQ(ring("1.5s"),
            (strings{at
                     + "'1.5s' is not a duration (expected a whole number and "
                       "a unit: 500ms, 20s, 2m or 1h)"}));
  EXPECT_EQ(ring("0s"), (strings{at + "'0s' must be greater than zero"}));
  EXPECT_EQ(ring("9999999999s"), (strings{at + "'9999999999s' is too large"}));
  EXPECT_EQ(ring("-5s"),
            (strings{at
                     + "'-5s' is not a duration (expected a whole number and a "
                       "unit: 500ms, 20s, 2m or 1h)"}));

  EXPECT_EQ(parse_duration("500ms"), 500ms);
  EXPECT_EQ(parse_duration("20s"), 20s);
  EXPECT_EQ(parse_duration("2m"), 2min);
  EXPECT_EQ(parse_duration("1h"), 1h);
  EXPECT_EQ(parse_duration("7d"), 168h);
  EXPECT_EQ(ring("2days"),
            (strings{at + "'2days' is not a duration (did you mean '2d'?)"}));
  EXPECT_EQ(parse_duration("20"), std::nullopt);
  EXPECT_EQ(parse_duration(""), std::nullopt);
  EXPECT_EQ(parse_duration("s"), std::nullopt);
  EXPECT_EQ(parse_duration("0ms"), std::nullopt);
}

TEST_F(Config, TwilioConnections) {
  EXPECT_EQ(ok(base).twilio.connections, 8) << "the default";
  auto with = [&](const std::string& value) {
    return replace(base, "  auth_token: ${TWILIO_AUTH_TOKEN}\n",
                   "  auth_token: ${TWILIO_AUTH_TOKEN}\n  connections: " + value
                     + "\n");
  };
  EXPECT_EQ(ok(with("32")).twilio.connections, 32);
  EXPECT_NE(describe(ok(with("32"))).find(" twilio.connections=32 "),
            std::string::npos);
  const std::string at = "ringback.yaml:10:16: error: twilio.connections: ";
  EXPECT_EQ(errors(with("0")),
            (strings{at + "expected a whole number from 1 to 256, got '0'"}));
  EXPECT_EQ(errors(with("lots")),
            (strings{at + "expected a whole number from 1 to 256, got 'lots'"}));
  EXPECT_EQ(errors(with("257")),
            (strings{at + "expected a whole number from 1 to 256, got '257'"}));
}

TEST_F(Config, PassivateAfter) {
  EXPECT_EQ(ok(base).calls.passivate_after, 10s) << "the default";
  auto with = [&](const std::string& value) {
    return replace(base, "  fallback_grace: 10s\n",
                   "  fallback_grace: 10s\n  passivate_after: " + value + "\n");
  };
  EXPECT_EQ(ok(with("30s")).calls.passivate_after, 30s);
  EXPECT_EQ(ok(with("500ms")).calls.passivate_after, 500ms);
  EXPECT_EQ(ok(with("0s")).calls.passivate_after, 0ms) << "at once";
  EXPECT_EQ(ok(with("0ms")).calls.passivate_after, 0ms);
  EXPECT_EQ(ok(with("off")).calls.passivate_after, std::nullopt);
  EXPECT_NE(describe(ok(with("off"))).find(" calls.passivate_after=off "),
            std::string::npos);
  EXPECT_NE(describe(ok(base)).find(" calls.passivate_after=10000ms "),
            std::string::npos);
  const std::string at = "ringback.yaml:13:20: error: calls.passivate_after: ";
  auto bad = [&](const std::string& value) { return errors(with(value)); };
  EXPECT_EQ(bad("false"),
            (strings{at + "'false' is not a duration (did you mean 'off'?)"}));
  EXPECT_EQ(bad("no"),
            (strings{at + "'no' is not a duration (did you mean 'off'?)"}));
  EXPECT_EQ(bad("Off"),
            (strings{at + "'Off' is not a duration (did you mean 'off'?)"}));
  EXPECT_EQ(bad("never"),
            (strings{at + "'never' is not a duration (did you mean 'off'?)"}));
  EXPECT_EQ(bad("0"), (strings{at + "'0' has no unit (did you mean '0s'?)"}));
  EXPECT_EQ(bad("10"), (strings{at + "'10' has no unit (did you mean '10s'?)"}));
  EXPECT_EQ(bad("10sec"),
            (strings{at + "'10sec' is not a duration (did you mean '10s'?)"}));
  EXPECT_EQ(bad("-1s"),
            (strings{at
                     + "'-1s' is not a duration (expected a whole number and a "
                       "unit: 500ms, 20s, 2m or 1h)"}));
  EXPECT_EQ(bad("[10s]"),
            (strings{at + "expected a string, got a list"}));
  EXPECT_EQ(
    errors(replace(base, "  fallback_grace: 10s\n",
                   "  fallback_grace: 10s\n  passivate_afer: 1s\n")),
    (strings{"ringback.yaml:13:3: error: calls: unknown key 'passivate_afer' "
             "(did you mean 'passivate_after'?)"}));
}

TEST_F(Config, SizesAndThreads) {
  auto body = [&](const std::string& value) {
    return errors(base + "http: {max_body: " + value + "}\n");
  };
  const std::string at = "ringback.yaml:19:18: error: http.max_body: ";
  EXPECT_EQ(body("64kb"),
            (strings{at + "'64kb' is not a size (did you mean '64KiB'?)"}));
  EXPECT_EQ(body("1mb"),
            (strings{at + "'1mb' is not a size (did you mean '1MiB'?)"}));
  EXPECT_EQ(body("lots"),
            (strings{at
                     + "'lots' is not a size (expected bytes or a whole number "
                       "with KiB, MiB or GiB, e.g. 64KiB)"}));
  EXPECT_EQ(body("0"), (strings{at + "'0' must be greater than zero"}));
  EXPECT_EQ(body("2048GiB"), (strings{at + "'2048GiB' is too large"}));
  EXPECT_EQ(errors(base + "http: {threads: 0}\n"),
            (strings{"ringback.yaml:19:17: error: http.threads: expected a "
                     "whole number from 1 "
                     "to 256, got '0'"}));

  EXPECT_EQ(parse_size("65536"), 65536u);
  EXPECT_EQ(parse_size("100B"), 100u);
  EXPECT_EQ(parse_size("64KiB"), 65536u);
  EXPECT_EQ(parse_size("1MiB"), 1048576u);
  EXPECT_EQ(parse_size("1GiB"), 1073741824u);
  EXPECT_EQ(parse_size("64kb"), std::nullopt);
  EXPECT_EQ(parse_size("0"), std::nullopt);
}

TEST_F(Config, TwilioCredentials) {
  EXPECT_EQ(
    errors("AC0123456789abcdef0123456789abcdef", "ACxyz"),
    (strings{
      "ringback.yaml:8:16: error: twilio.account_sid: 'ACxyz' is not a Twilio "
      "account SID (expected AC and 32 hex digits)"}));
  EXPECT_EQ(
    errors("${TWILIO_AUTH_TOKEN}", "''"),
    (strings{
      "ringback.yaml:9:15: error: twilio.auth_token: must not be empty"}));
}

TEST_F(Config, TenantErrors) {
  EXPECT_EQ(
    errors("\"+15005550002\"", "5550002"),
    (strings{
      "ringback.yaml:17:18: error: tenants[0].owner_phone: '5550002' is not an "
      "E.164 phone number (expected +<country><number>)"}));
  EXPECT_EQ(
    errors("\"+15005550002\"", "\"+15005550001\""),
    (strings{
      "ringback.yaml:17:18: error: tenants[0].owner_phone: +15005550001 is one "
      "of this tenant's own numbers (the call would ring back into "
      "ringback)"}));
  EXPECT_EQ(errors("[\"+15005550001\",", "[\"5005550001\","),
            (strings{"ringback.yaml:16:15: error: tenants[0].numbers[0]: "
                     "'5005550001' is not an "
                     "E.164 phone number (expected +<country><number>)"}));
  EXPECT_EQ(
    errors("type: toll_free", "type: tollfree"),
    (strings{
      "ringback.yaml:16:62: error: tenants[0].numbers[1].type: unknown number "
      "type 'tollfree' (did you mean 'toll_free'?); known types: long_code, "
      "toll_free, short_code"}));
  EXPECT_EQ(errors("mps: 3", "mps: fast"),
            (strings{"ringback.yaml:16:78: error: tenants[0].numbers[1].mps: "
                     "expected a positive "
                     "number of messages per second, got 'fast'"}));
  EXPECT_EQ(
    errors("{number: \"+15005550003\", ", "{"),
    (strings{
      "ringback.yaml:16:31: error: tenants[0].numbers[1]: missing required key "
      "'number'"}));
  EXPECT_EQ(errors("[\"+15005550001\",", "[[1],"),
            (strings{"ringback.yaml:16:15: error: tenants[0].numbers[0]: "
                     "expected a phone number "
                     "or a map with number, type and mps, got a list"}));
  EXPECT_EQ(
    errors("    numbers: [\"+15005550001\", {number: \"+15005550003\", type: "
           "toll_free, "
           "mps: 3}]\n",
           "    numbers: []\n"),
    (strings{
      "ringback.yaml:16:14: error: tenants[0].numbers: a tenant needs at least "
      "one number"}));
  EXPECT_EQ(errors("id: acme", "id: 'ac me'"),
            (strings{"ringback.yaml:14:9: error: tenants[0].id: invalid tenant "
                     "id 'ac me' (use "
                     "letters, digits, '_' and '-', at most 64)"}));
  EXPECT_EQ(
    errors("    name: Acme Plumbing\n", "    name: ''\n"),
    (strings{
      "ringback.yaml:15:11: error: tenants[0].name: must not be empty"}));
  EXPECT_EQ(
    errors(base.substr(0, base.find("tenants:")) + "tenants: []\n"),
    (strings{
      "ringback.yaml:13:10: error: tenants: at least one tenant is required"}));
  EXPECT_EQ(
    errors("tenants:\n  - id: acme\n", "tenants:\n  - 3\n  - id: acme\n"),
    (strings{"ringback.yaml:14:5: error: tenants[0]: expected a tenant (a map "
             "with id, "
             "name, numbers, owner_phone and timezone), got a scalar"}));
  EXPECT_EQ(
    errors("    name: Acme Plumbing\n", ""),
    (strings{
      "ringback.yaml:14:5: error: tenants[0]: missing required key 'name'"}));
}

TEST_F(Config, TenantsMustNotShareIdsOrNumbers) {
  auto two = base
             + "  - id: acme\n"                                         // 19
               "    name: Acme Two\n"                                   // 20
               "    numbers: [\"+15005550005\", \"+1 500 555 0003\"]\n" // 21
               "    owner_phone: \"+15005550002\"\n"                    // 22
               "    timezone: UTC\n";                                   // 23
  EXPECT_EQ(errors(two),
            (strings{"ringback.yaml:19:9: error: tenants[1].id: duplicate "
                     "tenant id 'acme' (first "
                     "defined at line 14)",
                     "ringback.yaml:21:31: error: tenants[1].numbers[1]: "
                     "+15005550003 is already "
                     "used by tenant 'acme' (line 16)"}));
}

TEST_F(Config, TimeZones) {
  EXPECT_EQ(
    errors("America/Denver", "America/Denvr"),
    (strings{
      "ringback.yaml:18:15: error: tenants[0].timezone: unknown time zone "
      "'America/Denvr' (did you mean 'America/Denver'?)"}));
  EXPECT_EQ(
    errors("America/Denver", "Mars/Olympus_Mons"),
    (strings{
      "ringback.yaml:18:15: error: tenants[0].timezone: unknown time zone "
      "'Mars/Olympus_Mons' (expected an IANA name like America/Denver)"}));
  EXPECT_EQ(errors("America/Denver", "../../etc/passwd"),
            (strings{
              "ringback.yaml:18:15: error: tenants[0].timezone: "
              "'../../etc/passwd' is not "
              "a time zone name (expected an IANA name like America/Denver)"}));
  EXPECT_EQ(errors("America/Denver", "zone.tab"),
            (strings{"ringback.yaml:18:15: error: tenants[0].timezone: "
                     "'zone.tab' is not a time "
                     "zone name (expected an IANA name like America/Denver)"}));
  EXPECT_EQ(ok(replace(base, "America/Denver", "UTC")).tenants[0].timezone,
            "UTC");
  EXPECT_EQ(
    ok(replace(base, "America/Denver", "Etc/GMT+5")).tenants[0].timezone,
    "Etc/GMT+5");

  // Without a time zone database, anything shaped like Area/City passes.
  vars_["TZDIR"] = dir_.str() + "/no-such-zoneinfo";
  EXPECT_EQ(ok(replace(base, "America/Denver", "Mars/Olympus_Mons"))
              .tenants[0]
              .timezone,
            "Mars/Olympus_Mons");
  EXPECT_EQ(
    errors("America/Denver", "denver"),
    (strings{
      "ringback.yaml:18:15: error: tenants[0].timezone: 'denver' is not a time "
      "zone name (expected an IANA name like America/Denver)"}));
}

// The calendar keys of a tenant, appended to `base` (lines 19-26).
const std::string calendar
  = "    business_hours:\n"                       // 19
    "      mon-fri: \"08:00-17:00\"\n"            // 20
    "      sat: \"09:00-12:00, 13:00-15:00\"\n"   // 21
    "      sun: closed\n"                         // 22
    "    holidays: [\"2026-12-25\", \"01-01\"]\n" // 23
    "    quiet_hours: \"21:00-08:00\"\n"          // 24
    "    http_allow: [\"api.example.com\", \"*.hooks.example.org\", "
    "\"127.0.0.1\"]\n"; // 25

TEST_F(Config, TenantCalendarSettings) {
  auto c = ok(base + calendar);
  const auto& t = c.tenants[0];
  using pairs = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(t.business_hours, (pairs{{"mon-fri", "08:00-17:00"},
                                     {"sat", "09:00-12:00, 13:00-15:00"},
                                     {"sun", "closed"}}));
  EXPECT_EQ(t.holidays, (strings{"2026-12-25", "01-01"}));
  EXPECT_EQ(t.quiet_hours, "21:00-08:00");
  EXPECT_EQ(t.http_allow,
            (strings{"api.example.com", "*.hooks.example.org", "127.0.0.1"}));
  // What the config accepts, the calendar builds.
  auto cal = ringback::workflows::business_calendar::from_tenant(t);
  EXPECT_TRUE(cal.ok()) << ::testing::PrintToString(cal.errors);
  // All optional: absent means open 24/7, no holidays, no quiet hours and no
  // http hosts.
  auto plain = ok(base).tenants[0];
  EXPECT_TRUE(plain.business_hours.empty());
  EXPECT_TRUE(plain.holidays.empty());
  EXPECT_TRUE(plain.quiet_hours.empty());
  EXPECT_TRUE(plain.http_allow.empty());
  // Empty lists are none; plain (unquoted) values and full day names work.
  auto lists = ok(base
                  + "    business_hours: {Monday: 22:00-02:00, tue: closed}\n"
                    "    holidays:\n"
                    "    http_allow: []\n");
  EXPECT_EQ(lists.tenants[0].business_hours,
            (pairs{{"Monday", "22:00-02:00"}, {"tue", "closed"}}));
  EXPECT_TRUE(lists.tenants[0].holidays.empty());
  EXPECT_TRUE(lists.tenants[0].http_allow.empty());
}

TEST_F(Config, BusinessHoursErrors) {
  auto with = [&](const std::string& from, const std::string& to) {
    return errors(base + replace(calendar, from, to));
  };
  EXPECT_EQ(with("      mon-fri:", "      mnday:"),
            (strings{"ringback.yaml:20:7: error: "
                     "tenants[0].business_hours.mnday: unknown day 'mnday' "
                     "(did you mean 'monday'?); days are mon, tue, wed, thu, "
                     "fri, sat, sun"}));
  EXPECT_EQ(with("      mon-fri:", "      mon-frii:"),
            (strings{"ringback.yaml:20:11: error: "
                     "tenants[0].business_hours.mon-frii: unknown day 'frii' "
                     "(did you mean 'fri'?); days are mon, tue, wed, thu, fri, "
                     "sat, sun"}));
  EXPECT_EQ(with("      sun: closed", "      weekend: closed"),
            (strings{
              "ringback.yaml:22:7: error: "
              "tenants[0].business_hours.weekend: unknown day 'weekend'; "
              "days are mon, tue, wed, thu, fri, sat, sun"}));
  EXPECT_EQ(with("\"08:00-17:00\"", "\"08:00-25:00\""),
            (strings{"ringback.yaml:20:23: error: "
                     "tenants[0].business_hours.mon-fri: hour 25 is out of "
                     "range 00-23"}));
  EXPECT_EQ(with("\"08:00-17:00\"", "25:00-26:00"),
            (strings{"ringback.yaml:20:16: error: "
                     "tenants[0].business_hours.mon-fri: hour 25 is out of "
                     "range 00-23"}));
  EXPECT_EQ(with("13:00-15:00", "11:00-15:00"),
            (strings{"ringback.yaml:21:26: error: "
                     "tenants[0].business_hours.sat: '11:00-15:00' overlaps "
                     "'09:00-12:00'"}));
  EXPECT_EQ(with("      sun: closed\n",
                 "      sun: closed\n      fri: closed\n"),
            (strings{"ringback.yaml:23:7: error: "
                     "tenants[0].business_hours.fri: fri is already given by "
                     "'mon-fri'"}));
  EXPECT_EQ(with("sun: closed", "sun: [closed]"),
            (strings{"ringback.yaml:22:12: error: "
                     "tenants[0].business_hours.sun: expected time ranges like "
                     "\"08:00-17:00\" or closed, got a list"}));
  EXPECT_EQ(with("sun: closed", "sun:"),
            (strings{"ringback.yaml:22:7: error: "
                     "tenants[0].business_hours.sun: expected time ranges like "
                     "\"08:00-17:00\" or closed, got an empty value"}));
  EXPECT_EQ(errors(base + "    business_hours: [\"08:00-17:00\"]\n"),
            (strings{"ringback.yaml:19:21: error: tenants[0].business_hours: "
                     "expected a map of days to hours (e.g. mon-fri: "
                     "\"08:00-17:00\"), got a list"}));
  EXPECT_EQ(errors(base + "    business_hours: {}\n"),
            (strings{"ringback.yaml:19:21: error: tenants[0].business_hours: "
                     "no days given (leave business_hours out to be open "
                     "24/7)"}));
  // Both halves of an entry are checked.
  EXPECT_EQ(
    with("      sun: closed", "      sn: 9-5"),
    (strings{"ringback.yaml:22:7: error: tenants[0].business_hours.sn: unknown "
             "day 'sn' (did you mean 'sun'?); days are mon, tue, wed, thu, "
             "fri, sat, sun",
             "ringback.yaml:22:11: error: tenants[0].business_hours.sn: '9' is "
             "not a time (expected HH:MM, e.g. 08:00)"}));
}

TEST_F(Config, HolidayQuietHoursAndHttpAllowErrors) {
  auto with = [&](const std::string& from, const std::string& to) {
    return errors(base + replace(calendar, from, to));
  };
  EXPECT_EQ(with("\"01-01\"", "\"13-01\""),
            (strings{"ringback.yaml:23:31: error: tenants[0].holidays[1]: "
                     "month 13 is out of range 01-12"}));
  EXPECT_EQ(with("\"2026-12-25\"", "\"2026-02-30\""),
            (strings{"ringback.yaml:23:25: error: tenants[0].holidays[0]: day "
                     "30 does not exist in February 2026 (28 days)"}));
  EXPECT_EQ(with("\"2026-12-25\"", "Christmas"),
            (strings{"ringback.yaml:23:16: error: tenants[0].holidays[0]: "
                     "'Christmas' is not a date (expected YYYY-MM-DD or "
                     "MM-DD, e.g. 2026-12-25 or 12-25)"}));
  EXPECT_EQ(with("\"2026-12-25\", \"01-01\"", "\"01-01\", \"01-01\""),
            (strings{"ringback.yaml:23:25: error: tenants[0].holidays[1]: "
                     "01-01 is already listed (line 23)"}));
  EXPECT_EQ(with("[\"2026-12-25\", \"01-01\"]", "\"12-25\""),
            (strings{"ringback.yaml:23:15: error: tenants[0].holidays: "
                     "expected a list of dates like [\"2026-12-25\", "
                     "\"01-01\"], got a scalar"}));
  EXPECT_EQ(with("\"21:00-08:00\"", "\"21:00-8am\""),
            (strings{"ringback.yaml:24:25: error: tenants[0].quiet_hours: "
                     "'8am' is not a time (expected HH:MM, e.g. 08:00)"}));
  EXPECT_EQ(with("\"21:00-08:00\"", "\"21:00-08:00, 12:00-13:00\""),
            (strings{"ringback.yaml:24:30: error: tenants[0].quiet_hours: "
                     "expected one range like 21:00-08:00, not a list"}));
  EXPECT_EQ(with("\"*.hooks.example.org\"", "\"hooks.*.example.org\""),
            (strings{"ringback.yaml:25:44: error: tenants[0].http_allow[1]: "
                     "'*' is only allowed as a leading '*.' (e.g. "
                     "*.example.com)"}));
  EXPECT_EQ(with("\"api.example.com\"", "\"https://api.example.com\""),
            (strings{"ringback.yaml:25:19: error: tenants[0].http_allow[0]: "
                     "'https://api.example.com' has a scheme: give the host "
                     "alone (e.g. api.example.com)"}));
  EXPECT_EQ(
    with("[\"api.example.com\", \"*.hooks.example.org\", \"127.0.0.1\"]",
         "api.example.com"),
    (strings{"ringback.yaml:25:17: error: tenants[0].http_allow: expected a "
             "list of host names like [\"api.example.com\", "
             "\"*.example.com\"], got a scalar"}));
  EXPECT_EQ(with("    holidays:", "    holiday:"),
            (strings{"ringback.yaml:23:5: error: tenants[0]: unknown key "
                     "'holiday' (did you mean 'holidays'?)"}));
  // A substituted value is reported at the value.
  vars_["QUIET"] = "21:00-25:00";
  EXPECT_EQ(with("\"21:00-08:00\"", "${QUIET}"),
            (strings{"ringback.yaml:24:18: error: tenants[0].quiet_hours: "
                     "hour 25 is out of range 00-23"}));
}

namespace {

/// deploy/ringback.yaml with the commented example under `marker` (a line
/// `<indent># --- <name> example ---`) uncommented: the lines after it that
/// start with `<indent># ` lose their "# ". Counts them in `lines`.
std::string uncomment_sample(const std::string& marker, int& lines,
                             const std::string& indent = "    ") {
  std::ifstream in(RINGBACK_SOURCE_DIR "/deploy/ringback.yaml");
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  lines = 0;
  auto at = text.find(marker);
  EXPECT_NE(at, std::string::npos) << marker;
  if (at == std::string::npos) {
    return text;
  }
  std::string uncommented = text.substr(0, at);
  std::size_t pos = at + marker.size();
  const auto prefix = indent + "# ";
  while (pos < text.size() && text.compare(pos, prefix.size(), prefix) == 0) {
    auto end = text.find('\n', pos);
    end = end == std::string::npos ? text.size() : end + 1;
    uncommented
      += indent + text.substr(pos + prefix.size(), end - pos - prefix.size());
    pos = end;
    ++lines;
  }
  return uncommented + text.substr(pos);
}

} // namespace

TEST_F(Config, TheSampleCalendarExampleLoads) {
  // deploy/ringback.yaml carries the calendar keys as a commented example;
  // uncommented, it must load and build a calendar.
  int lines = 0;
  auto uncommented = uncomment_sample("    # --- calendar example ---\n",
                                      lines);
  EXPECT_GE(lines, 5);
  vars_.clear();
  auto r = load_config_string(uncommented, "ringback.yaml",
                              RINGBACK_SOURCE_DIR "/deploy", env_);
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r.errors) << uncommented;
  const auto& t = r.value->tenants[0];
  EXPECT_FALSE(t.business_hours.empty());
  EXPECT_FALSE(t.holidays.empty());
  EXPECT_FALSE(t.quiet_hours.empty());
  EXPECT_FALSE(t.http_allow.empty());
  EXPECT_TRUE(ringback::workflows::business_calendar::from_tenant(t).ok());
}

namespace {

using ringback::engine::gate_settings;

/// Field by field: `gate_settings` has no operator==.
void expect_guards(const gate_settings& got, const gate_settings& want) {
  EXPECT_EQ(got.repeat_caller_window, want.repeat_caller_window);
  EXPECT_EQ(got.automated_per_hour, want.automated_per_hour);
  EXPECT_EQ(got.loop_limit, want.loop_limit);
  EXPECT_EQ(got.loop_window, want.loop_window);
  EXPECT_EQ(got.caller_rate_limit, want.caller_rate_limit);
  EXPECT_EQ(got.caller_rate_window, want.caller_rate_window);
}

// The messaging keys of a tenant, appended to `base` (lines 19-29).
const std::string messaging
  = "    messaging:\n"                                                    // 19
    "      repeat_caller_window: 12h\n"                                   // 20
    "      automated_per_hour: 4\n"                                       // 21
    "      loop_limit: 8\n"                                               // 22
    "      loop_window: 5m\n"                                             // 23
    "      caller_rate_limit: 3\n"                                        // 24
    "      caller_rate_window: 30s\n"                                     // 25
    "      max_mps: 2.5\n"                                                // 26
    "      help_text: \"Acme: call +1 500 555 0001. STOP to opt out.\"\n" // 27
    "      stop_reply: \"No more texts from Acme.\"\n"                    // 28
    "      start_reply: ''\n";                                            // 29

} // namespace

TEST_F(Config, MessagingDefaultsAreTheGateDefaults) {
  // Absent, empty or an empty map: the engine's defaults, no tenant cap and
  // no texts (the default HELP answer is the messaging layer's).
  for (const auto& tail : {std::string{}, std::string("    messaging:\n"),
                           std::string("    messaging: {}\n")}) {
    auto t = ok(base + tail).tenants[0];
    expect_guards(t.guards, gate_settings{});
    EXPECT_FALSE(t.max_rate.has_value()) << tail;
    EXPECT_EQ(t.help_text, "") << tail;
    EXPECT_EQ(t.stop_reply, "") << tail;
    EXPECT_EQ(t.start_reply, "") << tail;
  }
  // The defaults as documented (deploy/ringback.yaml, docs/operations.md).
  const gate_settings d;
  EXPECT_EQ(d.repeat_caller_window, 24h);
  EXPECT_EQ(d.automated_per_hour, 10);
  EXPECT_EQ(d.loop_limit, 15);
  EXPECT_EQ(d.loop_window, 10min);
  EXPECT_EQ(d.caller_rate_limit, 5);
  EXPECT_EQ(d.caller_rate_window, 1min);
}

TEST_F(Config, MessagingSettings) {
  auto t = ok(base + messaging).tenants[0];
  EXPECT_EQ(t.guards.repeat_caller_window, 12h);
  EXPECT_EQ(t.guards.automated_per_hour, 4);
  EXPECT_EQ(t.guards.loop_limit, 8);
  EXPECT_EQ(t.guards.loop_window, 5min);
  EXPECT_EQ(t.guards.caller_rate_limit, 3);
  EXPECT_EQ(t.guards.caller_rate_window, 30s);
  ASSERT_TRUE(t.max_rate.has_value());
  EXPECT_EQ(t.max_rate->rate_per_s, 2.5);
  EXPECT_EQ(t.max_rate->burst, 1);
  EXPECT_EQ(t.help_text, "Acme: call +1 500 555 0001. STOP to opt out.");
  EXPECT_EQ(t.stop_reply, "No more texts from Acme.");
  EXPECT_EQ(t.start_reply, "");
  // Keys left out keep their defaults.
  auto some = ok(base + "    messaging: {loop_limit: 20}\n").tenants[0];
  gate_settings want;
  want.loop_limit = 20;
  expect_guards(some.guards, want);
  // A multi-line text and ${NAME} substitution work; a null text is empty.
  vars_["HELP"] = "Acme help";
  auto texts = ok(base
                  + "    messaging:\n"
                    "      help_text: ${HELP}\n"
                    "      stop_reply: |\n"
                    "        You are opted out.\n"
                    "        Reply START to opt back in.\n"
                    "      start_reply:\n")
                 .tenants[0];
  EXPECT_EQ(texts.help_text, "Acme help");
  EXPECT_EQ(texts.stop_reply,
            "You are opted out.\nReply START to opt back in.\n");
  EXPECT_EQ(texts.start_reply, "");
  // Each tenant has its own.
  auto two = ok(base + messaging
                + "  - id: bob\n"
                  "    name: Bob's Bikes\n"
                  "    numbers: [\"+15005550005\"]\n"
                  "    owner_phone: \"+15005550006\"\n"
                  "    timezone: UTC\n");
  ASSERT_EQ(two.tenants.size(), 2u);
  EXPECT_EQ(two.tenants[0].guards.loop_limit, 8);
  expect_guards(two.tenants[1].guards, gate_settings{});
  EXPECT_FALSE(two.tenants[1].max_rate.has_value());
}

TEST_F(Config, MessagingGuardsTurnOff) {
  for (const std::string off : {"off", "OFF", "0", "0s", "0ms", "0h"}) {
    auto t = ok(base + "    messaging:\n      repeat_caller_window: " + off
                + "\n      loop_window: " + off
                + "\n      caller_rate_window: " + off + "\n")
               .tenants[0];
    EXPECT_EQ(t.guards.repeat_caller_window, 0ms) << off;
    EXPECT_EQ(t.guards.loop_window, 0ms) << off;
    EXPECT_EQ(t.guards.caller_rate_window, 0ms) << off;
  }
  for (const std::string off : {"off", "Off", "0"}) {
    auto t = ok(base + "    messaging:\n      automated_per_hour: " + off
                + "\n      loop_limit: " + off
                + "\n      caller_rate_limit: " + off + "\n")
               .tenants[0];
    EXPECT_EQ(t.guards.automated_per_hour, 0) << off;
    EXPECT_EQ(t.guards.loop_limit, 0) << off;
    EXPECT_EQ(t.guards.caller_rate_limit, 0) << off;
  }
  auto big
    = ok(base + "    messaging: {loop_limit: 1000000, loop_window: 1ms}\n")
        .tenants[0];
  EXPECT_EQ(big.guards.loop_limit, 1000000);
  EXPECT_EQ(big.guards.loop_window, 1ms);
}

TEST_F(Config, MessagingErrors) {
  auto with = [&](const std::string& from, const std::string& to) {
    return errors(base + replace(messaging, from, to));
  };
  // Unknown keys, with a suggestion when one is close.
  EXPECT_EQ(with("      loop_limit:", "      loop_limt:"),
            (strings{"ringback.yaml:22:7: error: tenants[0].messaging: "
                     "unknown key 'loop_limt' (did you mean 'loop_limit'?)"}));
  EXPECT_EQ(with("      max_mps: 2.5\n", "      colour: blue\n"),
            (strings{"ringback.yaml:26:7: error: tenants[0].messaging: "
                     "unknown key 'colour' (expected one of: "
                     "repeat_caller_window, automated_per_hour, loop_limit, "
                     "loop_window, caller_rate_limit, caller_rate_window, "
                     "max_mps, help_text, stop_reply, start_reply)"}));
  EXPECT_EQ(errors(base + "    mesaging: {}\n"),
            (strings{"ringback.yaml:19:5: error: tenants[0]: unknown key "
                     "'mesaging' (did you mean 'messaging'?)"}));
  EXPECT_EQ(with("      loop_limit: 8\n",
                 "      loop_limit: 8\n      loop_limit: 9\n"),
            (strings{"ringback.yaml:23:7: error: tenants[0].messaging: "
                     "duplicate key 'loop_limit' (first defined at line 22)"}));
  // Wrong types.
  EXPECT_EQ(errors(base + "    messaging: [loop_limit]\n"),
            (strings{"ringback.yaml:19:16: error: tenants[0].messaging: "
                     "expected a map, got a list"}));
  EXPECT_EQ(with("loop_limit: 8", "loop_limit: [8]"),
            (strings{"ringback.yaml:22:19: error: "
                     "tenants[0].messaging.loop_limit: expected a whole number "
                     "or off, got a list"}));
  EXPECT_EQ(with("loop_window: 5m", "loop_window: {m: 5}"),
            (strings{"ringback.yaml:23:20: error: "
                     "tenants[0].messaging.loop_window: expected a duration "
                     "(e.g. 10m) or off, got a map"}));
  EXPECT_EQ(with("help_text: \"Acme: call +1 500 555 0001. STOP to opt out.\"",
                 "help_text: [Acme]"),
            (strings{"ringback.yaml:27:18: error: "
                     "tenants[0].messaging.help_text: expected a string, got a "
                     "list"}));
  // Limits: whole numbers, not negative, not huge.
  EXPECT_EQ(with("loop_limit: 8", "loop_limit: -1"),
            (strings{"ringback.yaml:22:19: error: "
                     "tenants[0].messaging.loop_limit: '-1' must not be "
                     "negative (0 or off turns the guard off)"}));
  EXPECT_EQ(with("automated_per_hour: 4", "automated_per_hour: 2.5"),
            (strings{
              "ringback.yaml:21:27: error: "
              "tenants[0].messaging.automated_per_hour: expected a "
              "whole number (0 or off turns the guard off), got '2.5'"}));
  EXPECT_EQ(with("caller_rate_limit: 3", "caller_rate_limit: many"),
            (strings{
              "ringback.yaml:24:26: error: "
              "tenants[0].messaging.caller_rate_limit: expected a "
              "whole number (0 or off turns the guard off), got 'many'"}));
  EXPECT_EQ(with("caller_rate_limit: 3", "caller_rate_limit: 1000001"),
            (strings{"ringback.yaml:24:26: error: "
                     "tenants[0].messaging.caller_rate_limit: '1000001' is too "
                     "large (at most 1000000)"}));
  EXPECT_EQ(with("caller_rate_limit: 3", "caller_rate_limit: 99999999999"),
            (strings{"ringback.yaml:24:26: error: "
                     "tenants[0].messaging.caller_rate_limit: '99999999999' is "
                     "too large (at most 1000000)"}));
  // Windows: durations or off.
  EXPECT_EQ(with("repeat_caller_window: 12h", "repeat_caller_window: 24"),
            (strings{"ringback.yaml:20:29: error: "
                     "tenants[0].messaging.repeat_caller_window: '24' has no "
                     "unit (did you mean '24s'?)"}));
  EXPECT_EQ(with("repeat_caller_window: 12h", "repeat_caller_window: 1day"),
            (strings{"ringback.yaml:20:29: error: "
                     "tenants[0].messaging.repeat_caller_window: '1day' is not "
                     "a duration (did you mean '1d'?)"}));
  EXPECT_EQ(with("repeat_caller_window: 12h", "repeat_caller_window: 1week"),
            (strings{"ringback.yaml:20:29: error: "
                     "tenants[0].messaging.repeat_caller_window: '1week' is "
                     "not a duration (expected a whole number and a unit: "
                     "500ms, 20s, 10m or 24h; or off)"}));
  EXPECT_EQ(ok(base
               + replace(messaging, "repeat_caller_window: 12h",
                         "repeat_caller_window: 2d"))
              .tenants[0]
              .guards.repeat_caller_window,
            48h);
  EXPECT_EQ(with("loop_window: 5m", "loop_window: 5min"),
            (strings{"ringback.yaml:23:20: error: "
                     "tenants[0].messaging.loop_window: '5min' is not a "
                     "duration (did you mean '5m'?)"}));
  EXPECT_EQ(with("loop_window: 5m", "loop_window: -5m"),
            (strings{"ringback.yaml:23:20: error: "
                     "tenants[0].messaging.loop_window: '-5m' must not be "
                     "negative (0 or off turns the guard off)"}));
  EXPECT_EQ(with("caller_rate_window: 30s", "caller_rate_window: 9999999999s"),
            (strings{"ringback.yaml:25:27: error: "
                     "tenants[0].messaging.caller_rate_window: '9999999999s' "
                     "is too large"}));
  EXPECT_EQ(with("caller_rate_window: 30s", "caller_rate_window: ''"),
            (strings{"ringback.yaml:25:27: error: "
                     "tenants[0].messaging.caller_rate_window: '' is not a "
                     "duration (expected a whole number and a unit: 500ms, "
                     "20s, 10m or 24h; or off)"}));
  // max_mps: a positive number.
  const std::string mps_error
    = "tenants[0].messaging.max_mps: expected a positive number of messages "
      "per second (at most 10000; leave max_mps out for no cap), got ";
  EXPECT_EQ(with("max_mps: 2.5", "max_mps: 0"),
            (strings{"ringback.yaml:26:16: error: " + mps_error + "'0'"}));
  EXPECT_EQ(with("max_mps: 2.5", "max_mps: -3"),
            (strings{"ringback.yaml:26:16: error: " + mps_error + "'-3'"}));
  EXPECT_EQ(with("max_mps: 2.5", "max_mps: off"),
            (strings{"ringback.yaml:26:16: error: " + mps_error + "'off'"}));
  EXPECT_EQ(with("max_mps: 2.5", "max_mps: 10/s"),
            (strings{"ringback.yaml:26:16: error: " + mps_error + "'10/s'"}));
  EXPECT_EQ(with("max_mps: 2.5", "max_mps: .nan"),
            (strings{"ringback.yaml:26:16: error: " + mps_error + "'.nan'"}));
  EXPECT_EQ(with("max_mps: 2.5", "max_mps: 20000"),
            (strings{"ringback.yaml:26:16: error: " + mps_error + "'20000'"}));
  // Texts: at most 1600 characters (code points, not bytes).
  EXPECT_EQ(with("\"No more texts from Acme.\"",
                 "\"" + std::string(1601, 'x') + "\""),
            (strings{"ringback.yaml:28:19: error: "
                     "tenants[0].messaging.stop_reply: the text is 1601 "
                     "characters long (at most 1600, the limit of one SMS)"}));
  std::string euros;
  for (int i = 0; i < 1600; ++i) {
    euros += "\xe2\x82\xac"; // 1600 characters, 4800 bytes
  }
  EXPECT_EQ(ok(base + replace(messaging, "''", "\"" + euros + "\""))
              .tenants[0]
              .start_reply,
            euros);
  EXPECT_EQ(with("start_reply: ''", "start_reply: \"" + euros + "!\""),
            (strings{"ringback.yaml:29:20: error: "
                     "tenants[0].messaging.start_reply: the text is 1601 "
                     "characters long (at most 1600, the limit of one SMS)"}));
  // Every problem at once.
  auto all = errors(base
                    + "    messaging: {loop_limit: x, loop_window: y, max_mps: "
                      "z, repeat_caller_window: 1w}\n");
  EXPECT_EQ(all.size(), 4u) << ::testing::PrintToString(all);
}

TEST_F(Config, TheSampleMessagingExampleLoads) {
  // deploy/ringback.yaml carries the messaging keys as a commented example
  // (the defaults, a tenant cap and a HELP text); uncommented, it loads.
  int lines = 0;
  auto uncommented = uncomment_sample("    # --- messaging example ---\n",
                                      lines);
  EXPECT_GE(lines, 11);
  vars_.clear();
  auto r = load_config_string(uncommented, "ringback.yaml",
                              RINGBACK_SOURCE_DIR "/deploy", env_);
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r.errors) << uncommented;
  const auto& t = r.value->tenants[0];
  expect_guards(t.guards, gate_settings{});
  ASSERT_TRUE(t.max_rate.has_value());
  EXPECT_EQ(t.max_rate->rate_per_s, 10.0);
  EXPECT_NE(t.help_text, "");
  EXPECT_EQ(t.stop_reply, "");
  EXPECT_EQ(t.start_reply, "");
}

TEST_F(Config, EveryProblemIsReportedAtOnce) {
  auto text
    = replace(replace(replace(base, "ring_timeout: 20s", "ring_timeout: 20"),
                      "kv: memory", "kv: mem"),
              "America/Denver", "America/Denvr");
  EXPECT_EQ(errors(text).size(), 3u);
}

TEST_F(Config, DescribeMasksSecrets) {
  vars_["TWILIO_AUTH_TOKEN"] = "hunter1";
  auto c = ok(replace(replace(base, "sqlite:ringback.db",
                              "postgresql://rb:hunter2@db/rb"),
                      "kv: memory", "kv: redis://:hunter3@127.0.0.1:6379/0"));
  auto line = describe(c);
  EXPECT_EQ(line.find("hunter"), std::string::npos) << line;
  EXPECT_NE(line.find("store=postgresql://rb:***@db/rb"), std::string::npos)
    << line;
  EXPECT_NE(line.find("kv=redis://:***@127.0.0.1:6379/0"), std::string::npos)
    << line;
  EXPECT_NE(line.find("ai.provider=offline"), std::string::npos) << line;
  EXPECT_NE(line.find("tenants=acme(2 numbers, ai offline)"), std::string::npos)
    << line;
}

// -- conversations and the AI (issue 5) ---------------------------------------

namespace {

using ringback::engine::ai_settings;
using ringback::engine::business_profile;
using ringback::engine::conversation_settings;

/// Field by field: the settings have no operator==.
void expect_conversations(const conversation_settings& got,
                          const conversation_settings& want) {
  EXPECT_EQ(got.owner_reply_window, want.owner_reply_window);
  EXPECT_EQ(got.batch, want.batch);
  EXPECT_EQ(got.idle_close, want.idle_close);
  EXPECT_EQ(got.max_ai_replies, want.max_ai_replies);
  EXPECT_EQ(got.max_reply_chars, want.max_reply_chars);
}

void expect_ai(const ai_settings& got, const ai_settings& want) {
  EXPECT_EQ(got.provider, want.provider);
  EXPECT_EQ(got.base_url, want.base_url);
  EXPECT_EQ(got.model, want.model);
  EXPECT_EQ(got.api_key, want.api_key);
  EXPECT_EQ(got.timeout, want.timeout);
  EXPECT_EQ(got.max_attempts, want.max_attempts);
  EXPECT_EQ(got.usd_per_1k_prompt, want.usd_per_1k_prompt);
  EXPECT_EQ(got.usd_per_1k_completion, want.usd_per_1k_completion);
}

// The global `ai:`, appended to `base` (lines 19-27).
const std::string global_ai = "ai:\n"                                   // 19
                              "  provider: openai\n"                    // 20
                              "  base_url: https://api.openai.com/v1\n" // 21
                              "  model: gpt-4o-mini\n"                  // 22
                              "  api_key: ${OPENAI_API_KEY}\n"          // 23
                              "  timeout: 15s\n"                        // 24
                              "  max_attempts: 3\n"                     // 25
                              "  usd_per_1k_prompt: 0.00015\n"          // 26
                              "  usd_per_1k_completion: 0.0006\n";      // 27

// A tenant's profile, conversation settings and own AI, appended to `base`
// (lines 19-34).
const std::string conversation
  = "    profile:\n"                                            // 19
    "      services: [\"water heaters\", \"drain cleaning\"]\n" // 20
    "      hours: \"Mon-Fri 8am-5pm, emergencies 24/7\"\n"      // 21
    "      service_area: Denver metro\n"                        // 22
    "      booking_link: https://acme.example/book?src=sms\n"   // 23
    "      notes: \"We don't work on gas lines.\"\n"            // 24
    "    conversations:\n"                                      // 25
    "      owner_reply_window: 90s\n"                           // 26
    "      batch: 0s\n"                                         // 27
    "      idle_close: 7d\n"                                    // 28
    "      max_ai_replies: 3\n"                                 // 29
    "      max_reply_chars: 160\n"                              // 30
    "    ai:\n"                                                 // 31
    "      provider: openai\n"                                  // 32
    "      base_url: http://127.0.0.1:11434/v1/\n"              // 33
    "      model: llama3.1:8b\n";                               // 34

const std::string second_tenant = "  - id: bob\n"
                                  "    name: Bob's Bikes\n"
                                  "    numbers: [\"+15005550005\"]\n"
                                  "    owner_phone: \"+15005550006\"\n"
                                  "    timezone: UTC\n";

} // namespace

TEST_F(Config, ConversationDefaultsAreTheEngineDefaults) {
  // Absent, empty or an empty map: the engine's defaults; the offline AI.
  for (const auto& tail :
       {std::string{}, std::string("    conversations:\n    profile:\n"),
        std::string("    conversations: {}\n    profile: {}\n")}) {
    auto c = ok(base + tail);
    const auto& t = c.tenants[0];
    expect_conversations(t.conversations, conversation_settings{});
    expect_ai(t.ai, ai_settings{});
    expect_ai(c.ai, ai_settings{});
    // The profile's name and phone default to the tenant's.
    EXPECT_EQ(t.profile.name, "Acme Plumbing") << tail;
    EXPECT_EQ(t.profile.phone, "+15005550001") << tail;
    EXPECT_TRUE(t.profile.services.empty()) << tail;
    EXPECT_EQ(t.profile.hours, "") << tail;
    EXPECT_EQ(t.profile.service_area, "") << tail;
    EXPECT_EQ(t.profile.booking_link, "") << tail;
    EXPECT_EQ(t.profile.notes, "") << tail;
  }
  // The defaults as documented (deploy/ringback.yaml, docs/operations.md).
  const conversation_settings d;
  EXPECT_EQ(d.owner_reply_window, 60s);
  EXPECT_EQ(d.batch, 5s);
  EXPECT_EQ(d.idle_close, 24h);
  EXPECT_EQ(d.max_ai_replies, 10);
  EXPECT_EQ(d.max_reply_chars, 320u);
  const ai_settings a;
  EXPECT_EQ(a.provider, "offline");
  EXPECT_EQ(a.timeout, 10s);
  EXPECT_EQ(a.max_attempts, 2);
  EXPECT_EQ(a.usd_per_1k_prompt, 0.0);
  EXPECT_EQ(a.usd_per_1k_completion, 0.0);
}

TEST_F(Config, ProfileAndConversationSettings) {
  auto t = ok(base + conversation).tenants[0];
  EXPECT_EQ(t.profile.name, "Acme Plumbing");
  EXPECT_EQ(t.profile.phone, "+15005550001");
  EXPECT_EQ(t.profile.services, (strings{"water heaters", "drain cleaning"}));
  EXPECT_EQ(t.profile.hours, "Mon-Fri 8am-5pm, emergencies 24/7");
  EXPECT_EQ(t.profile.service_area, "Denver metro");
  EXPECT_EQ(t.profile.booking_link, "https://acme.example/book?src=sms");
  EXPECT_EQ(t.profile.notes, "We don't work on gas lines.");
  EXPECT_EQ(t.conversations.owner_reply_window, 90s);
  EXPECT_EQ(t.conversations.batch, 0s);
  EXPECT_EQ(t.conversations.idle_close, 7 * 24h);
  EXPECT_EQ(t.conversations.max_ai_replies, 3);
  EXPECT_EQ(t.conversations.max_reply_chars, 160u);
  // The tenant's own AI; its trailing slash dropped.
  ai_settings want;
  want.provider = "openai";
  want.base_url = "http://127.0.0.1:11434/v1";
  want.model = "llama3.1:8b";
  expect_ai(t.ai, want);
  // Keys left out keep their defaults; name and phone may be set.
  auto some = ok(base
                 + "    conversations: {max_ai_replies: 0}\n"
                   "    profile: {name: Acme, phone: '+1 500 555 0009', "
                   "services: []}\n")
                .tenants[0];
  conversation_settings c;
  c.max_ai_replies = 0;
  expect_conversations(some.conversations, c);
  EXPECT_EQ(some.profile.name, "Acme");
  EXPECT_EQ(some.profile.phone, "+15005550009");
  EXPECT_TRUE(some.profile.services.empty());
  // The bounds are included; batch may be 0 written any way.
  for (const std::string zero : {"0", "0s", "0ms"}) {
    EXPECT_EQ(ok(base + "    conversations: {batch: " + zero + "}\n")
                .tenants[0]
                .conversations.batch,
              0ms)
      << zero;
  }
  auto low = ok(base
                + "    conversations: {owner_reply_window: 5s, batch: 60s, "
                  "idle_close: 2m, max_ai_replies: 100, max_reply_chars: 40}\n")
               .tenants[0]
               .conversations;
  EXPECT_EQ(low.owner_reply_window, 5s);
  EXPECT_EQ(low.batch, 60s);
  EXPECT_EQ(low.idle_close, 2min);
  EXPECT_EQ(low.max_ai_replies, 100);
  EXPECT_EQ(low.max_reply_chars, 40u);
  auto high = ok(base
                 + "    conversations: {owner_reply_window: 1h, "
                   "idle_close: 30d, max_reply_chars: 1600}\n")
                .tenants[0]
                .conversations;
  EXPECT_EQ(high.owner_reply_window, 1h);
  EXPECT_EQ(high.idle_close, 30 * 24h);
  EXPECT_EQ(high.max_reply_chars, 1600u);
  EXPECT_EQ(ok(base
               + "    conversations: {owner_reply_window: 30s, idle_close: "
                 "1m}\n")
              .tenants[0]
              .conversations.idle_close,
            1min);
  // Multi-line texts of 1600 characters are fine.
  std::string euros;
  for (int i = 0; i < 1600; ++i) {
    euros += "\xe2\x82\xac"; // 1600 characters, 4800 bytes
  }
  EXPECT_EQ(ok(base + "    profile: {notes: \"" + euros + "\"}\n")
              .tenants[0]
              .profile.notes,
            euros);
  EXPECT_EQ(ok(base
               + "    profile:\n"
                 "      notes: |\n"
                 "        No gas lines.\n"
                 "        No roofs.\n")
              .tenants[0]
              .profile.notes,
            "No gas lines.\nNo roofs.\n");
}

TEST_F(Config, GlobalAiAndTenantOverrides) {
  vars_["OPENAI_API_KEY"] = "sk-test-123";
  auto c = ok(base + second_tenant
              + "    ai: {provider: offline}\n"
                "  - id: carl\n"
                "    name: Carl's Cooling\n"
                "    numbers: [\"+15005550007\"]\n"
                "    owner_phone: \"+15005550008\"\n"
                "    timezone: UTC\n"
                "    ai:\n"
                "      provider: openai\n"
                "      base_url: http://127.0.0.1:8000/v1\n"
                "      model: Qwen/Qwen2.5-7B-Instruct\n"
              + global_ai);
  ai_settings global;
  global.provider = "openai";
  global.base_url = "https://api.openai.com/v1";
  global.model = "gpt-4o-mini";
  global.api_key = "sk-test-123";
  global.timeout = 15s;
  global.max_attempts = 3;
  global.usd_per_1k_prompt = 0.00015;
  global.usd_per_1k_completion = 0.0006;
  expect_ai(c.ai, global);
  ASSERT_EQ(c.tenants.size(), 3u);
  // Without its own `ai:`, a tenant gets the global one...
  expect_ai(c.tenants[0].ai, global);
  // ... with one, that one whole: keys it leaves out are the defaults, not
  // the global values.
  expect_ai(c.tenants[1].ai, ai_settings{});
  ai_settings carl;
  carl.provider = "openai";
  carl.base_url = "http://127.0.0.1:8000/v1";
  carl.model = "Qwen/Qwen2.5-7B-Instruct";
  expect_ai(c.tenants[2].ai, carl);
  // The global `ai:` may come before the tenants too.
  auto after = ok(global_ai + base + second_tenant);
  expect_ai(after.tenants[0].ai, global);
  expect_ai(after.tenants[1].ai, global);
  // With offline, the openai keys are still checked but not needed; a
  // literal api_key works too.
  auto offline = ok(base
                    + "ai:\n  provider: offline\n  model: gpt-4o-mini\n  "
                      "api_key: literal-key\n");
  EXPECT_EQ(offline.ai.provider, "offline");
  EXPECT_EQ(offline.ai.model, "gpt-4o-mini");
  EXPECT_EQ(offline.ai.api_key, "literal-key");
  EXPECT_EQ(offline.tenants[0].ai.provider, "offline");
  // A local server needs no key; prices may be 0; the bounds are included.
  auto local = ok(base
                  + "ai: {provider: openai, base_url: 'http://[::1]:8081/v1', "
                    "model: local, timeout: 120s, max_attempts: 5, "
                    "usd_per_1k_prompt: 0, usd_per_1k_completion: 1e-3}\n");
  EXPECT_EQ(local.ai.base_url, "http://[::1]:8081/v1");
  EXPECT_EQ(local.ai.api_key, "");
  EXPECT_EQ(local.ai.timeout, 120s);
  EXPECT_EQ(local.ai.max_attempts, 5);
  EXPECT_EQ(local.ai.usd_per_1k_completion, 0.001);
  EXPECT_EQ(ok(base
               + "ai: {provider: openai, base_url: 'http://x/v1', model: m, "
                 "timeout: 1s, max_attempts: 1}\n")
              .ai.timeout,
            1s);
}

TEST_F(Config, AiApiKeyComesFromTheEnvironment) {
  vars_["OPENAI_API_KEY"] = "sk-from-env";
  EXPECT_EQ(ok(base + global_ai).ai.api_key, "sk-from-env");
  EXPECT_EQ(ok(base
               + replace(conversation, "      model: llama3.1:8b\n",
                         "      model: llama3.1:8b\n"
                         "      api_key: \"${OPENAI_API_KEY}\"\n"))
              .tenants[0]
              .ai.api_key,
            "sk-from-env");
  vars_.erase("OPENAI_API_KEY");
  EXPECT_EQ(errors(base + global_ai),
            (strings{"ringback.yaml:23:12: error: ai.api_key: environment "
                     "variable OPENAI_API_KEY is not set"}));
  vars_["OPENAI_API_KEY"] = "";
  EXPECT_EQ(errors(base + global_ai),
            (strings{"ringback.yaml:23:12: error: ai.api_key: must not be "
                     "empty (leave api_key out when the server needs no "
                     "key)"}));
  // A stray line break (from a key file) or a space: refused, not echoed.
  for (const std::string bad : {"sk-secret\n", "sk secret", "sk-\tsecret"}) {
    vars_["OPENAI_API_KEY"] = bad;
    auto out = errors(base + global_ai);
    EXPECT_EQ(out, (strings{"ringback.yaml:23:12: error: ai.api_key: must not "
                            "contain spaces, line breaks or control "
                            "characters"}));
  }
}

TEST_F(Config, AiErrors) {
  vars_["OPENAI_API_KEY"] = "sk-test";
  auto with = [&](const std::string& from, const std::string& to) {
    return errors(base + replace(global_ai, from, to));
  };
  // Keys.
  EXPECT_EQ(with("  model:", "  modle:"),
            (strings{"ringback.yaml:20:3: error: ai: missing required key "
                     "'model' (provider openai needs the model's name, e.g. "
                     "gpt-4o-mini)",
                     "ringback.yaml:22:3: error: ai: unknown key 'modle' (did "
                     "you mean 'model'?)"}));
  EXPECT_EQ(with("  timeout: 15s\n", "  colour: blue\n"),
            (strings{"ringback.yaml:24:3: error: ai: unknown key 'colour' "
                     "(expected one of: provider, base_url, model, api_key, "
                     "timeout, max_attempts, usd_per_1k_prompt, "
                     "usd_per_1k_completion)"}));
  EXPECT_EQ(with("  provider: openai\n", ""),
            (strings{"ringback.yaml:20:3: error: ai: missing required key "
                     "'provider'"}));
  EXPECT_EQ(errors(base + "ai:\n"),
            (strings{"ringback.yaml:19:1: error: ai: missing required key "
                     "'provider'"}));
  EXPECT_EQ(errors(base + "ai: openai\n"),
            (strings{"ringback.yaml:19:5: error: ai: expected a map, got a "
                     "scalar"}));
  EXPECT_EQ(with("  model: gpt-4o-mini\n", "  model: gpt-4o-mini\n  model: "
                                           "gpt-4o\n"),
            (strings{"ringback.yaml:23:3: error: ai: duplicate key 'model' "
                     "(first defined at line 22)"}));
  // The provider.
  EXPECT_EQ(with("provider: openai", "provider: OpenAI"),
            (strings{"ringback.yaml:20:13: error: ai.provider: unknown AI "
                     "provider 'OpenAI' (did you mean 'openai'?); known "
                     "providers: offline, openai"}));
  EXPECT_EQ(with("provider: openai", "provider: anthropic"),
            (strings{"ringback.yaml:20:13: error: ai.provider: unknown AI "
                     "provider 'anthropic'; known providers: offline, "
                     "openai"}));
  EXPECT_EQ(with("provider: openai", "provider: [openai]"),
            (strings{"ringback.yaml:20:13: error: ai.provider: expected a "
                     "string, got a list"}));
  // openai needs base_url and model.
  EXPECT_EQ(errors(base + "ai: {provider: openai}\n"),
            (strings{"ringback.yaml:19:5: error: ai: missing required key "
                     "'base_url' (provider openai needs the API's base URL, "
                     "e.g. https://api.openai.com/v1)",
                     "ringback.yaml:19:5: error: ai: missing required key "
                     "'model' (provider openai needs the model's name, e.g. "
                     "gpt-4o-mini)"}));
  // base_url.
  EXPECT_EQ(with("https://api.openai.com/v1", "api.openai.com/v1"),
            (strings{"ringback.yaml:21:13: error: ai.base_url: "
                     "'api.openai.com/v1' is not an http:// or https:// URL "
                     "(without ?query or #fragment)"}));
  EXPECT_EQ(with("https://api.openai.com/v1", "https://api.openai.com/v1?x=1"),
            (strings{"ringback.yaml:21:13: error: ai.base_url: "
                     "'https://api.openai.com/v1?x=1' is not an http:// or "
                     "https:// URL (without ?query or #fragment)"}));
  EXPECT_EQ(with("https://api.openai.com/v1",
                 "https://api.openai.com/v1/chat/completions"),
            (strings{"ringback.yaml:21:13: error: ai.base_url: "
                     "'https://api.openai.com/v1/chat/completions' is the "
                     "endpoint itself: give the base URL without "
                     "/chat/completions (e.g. https://api.openai.com/v1)"}));
  // A password in the URL is not echoed.
  auto leaked = with("https://api.openai.com/v1",
                     "https://me:hunter2@api.openai.com/v1 x");
  EXPECT_EQ(leaked,
            (strings{"ringback.yaml:21:13: error: ai.base_url: "
                     "'https://me:***@api.openai.com/v1 x' is not an http:// "
                     "or https:// URL (without ?query or #fragment)"}));
  // model.
  EXPECT_EQ(with("model: gpt-4o-mini", "model: ''"),
            (strings{"ringback.yaml:22:10: error: ai.model: must not be "
                     "empty"}));
  EXPECT_EQ(with("model: gpt-4o-mini", "model: " + std::string(257, 'm')),
            (strings{"ringback.yaml:22:10: error: ai.model: the model name "
                     "is 257 characters long (at most 256)"}));
  EXPECT_EQ(with("model: gpt-4o-mini", "model: \"gpt\\t4\""),
            (strings{"ringback.yaml:22:10: error: ai.model: the model name "
                     "must not contain control characters"}));
  // timeout: 1s to 120s.
  const std::string timeout = "ringback.yaml:24:12: error: ai.timeout: ";
  EXPECT_EQ(with("timeout: 15s", "timeout: 500ms"),
            (strings{timeout + "'500ms' is too short (at least 1s)"}));
  EXPECT_EQ(with("timeout: 15s", "timeout: 0s"),
            (strings{timeout + "'0s' is too short (at least 1s)"}));
  EXPECT_EQ(with("timeout: 15s", "timeout: 3m"),
            (strings{timeout + "'3m' is too long (at most 2m)"}));
  EXPECT_EQ(with("timeout: 15s", "timeout: 15"),
            (strings{timeout + "'15' has no unit (did you mean '15s'?)"}));
  EXPECT_EQ(with("timeout: 15s", "timeout: -15s"),
            (strings{timeout + "'-15s' must not be negative"}));
  // max_attempts: 1 to 5.
  const std::string attempts
    = "ringback.yaml:25:17: error: ai.max_attempts: expected a whole number "
      "from 1 to 5, got ";
  EXPECT_EQ(with("max_attempts: 3", "max_attempts: 0"),
            (strings{attempts + "'0'"}));
  EXPECT_EQ(with("max_attempts: 3", "max_attempts: 6"),
            (strings{attempts + "'6'"}));
  EXPECT_EQ(with("max_attempts: 3", "max_attempts: two"),
            (strings{attempts + "'two'"}));
  EXPECT_EQ(with("max_attempts: 3", "max_attempts: 2.5"),
            (strings{attempts + "'2.5'"}));
  // Prices: a number, 0 or more.
  const std::string prompt
    = "ringback.yaml:26:22: error: ai.usd_per_1k_prompt: expected a price in "
      "US dollars per 1000 tokens (a number, 0 or more, e.g. 0.00015), got ";
  EXPECT_EQ(with("usd_per_1k_prompt: 0.00015", "usd_per_1k_prompt: -1"),
            (strings{prompt + "'-1'"}));
  EXPECT_EQ(with("usd_per_1k_prompt: 0.00015", "usd_per_1k_prompt: free"),
            (strings{prompt + "'free'"}));
  EXPECT_EQ(with("usd_per_1k_prompt: 0.00015", "usd_per_1k_prompt: .inf"),
            (strings{prompt + "'.inf'"}));
  EXPECT_EQ(
    with("usd_per_1k_completion: 0.0006", "usd_per_1k_completion: $0.60"),
    (strings{"ringback.yaml:27:26: error: ai.usd_per_1k_completion: expected "
             "a price in US dollars per 1000 tokens (a number, 0 or more, "
             "e.g. 0.00015), got '$0.60'"}));
  // A tenant's `ai:` is checked the same way, at its own path.
  EXPECT_EQ(
    errors(base + replace(conversation, "provider: openai", "provider: opnai")),
    (strings{"ringback.yaml:32:17: error: tenants[0].ai.provider: unknown AI "
             "provider 'opnai' (did you mean 'openai'?); known providers: "
             "offline, openai"}));
  EXPECT_EQ(errors(base
                   + replace(conversation, "      model: llama3.1:8b\n", "")),
            (strings{"ringback.yaml:32:7: error: tenants[0].ai: missing "
                     "required key 'model' (provider openai needs the model's "
                     "name, e.g. gpt-4o-mini)"}));
  // Every problem at once.
  auto all = errors(base
                    + "ai: {provider: openai, base_url: x, model: '', timeout: "
                      "1h, max_attempts: 9, usd_per_1k_prompt: -2}\n");
  EXPECT_EQ(all.size(), 5u) << ::testing::PrintToString(all);
}

TEST_F(Config, ProfileErrors) {
  auto with = [&](const std::string& from, const std::string& to) {
    return errors(base + replace(conversation, from, to));
  };
  EXPECT_EQ(with("      services:", "      servces:"),
            (strings{"ringback.yaml:20:7: error: tenants[0].profile: unknown "
                     "key 'servces' (did you mean 'services'?)"}));
  EXPECT_EQ(errors(base + "    profil: {}\n"),
            (strings{"ringback.yaml:19:5: error: tenants[0]: unknown key "
                     "'profil' (did you mean 'profile'?)"}));
  EXPECT_EQ(errors(base + "    profile: [services]\n"),
            (strings{"ringback.yaml:19:14: error: tenants[0].profile: "
                     "expected a map, got a list"}));
  // services: a list of distinct, non-empty names.
  EXPECT_EQ(with("[\"water heaters\", \"drain cleaning\"]", "water heaters"),
            (strings{
              "ringback.yaml:20:17: error: tenants[0].profile.services: "
              "expected a list like [\"water heaters\", \"drain cleaning\"], "
              "got a scalar"}));
  EXPECT_EQ(with("\"drain cleaning\"", "{name: drains}"),
            (strings{"ringback.yaml:20:35: error: "
                     "tenants[0].profile.services[1]: expected a service "
                     "name, got a map"}));
  EXPECT_EQ(with("\"drain cleaning\"", "''"),
            (strings{"ringback.yaml:20:35: error: "
                     "tenants[0].profile.services[1]: must not be empty"}));
  EXPECT_EQ(with("\"drain cleaning\"", "\"water heaters\""),
            (strings{"ringback.yaml:20:35: error: "
                     "tenants[0].profile.services[1]: 'water heaters' is "
                     "already listed (line 20)"}));
  // Texts: at most 1600 characters.
  EXPECT_EQ(with("\"We don't work on gas lines.\"",
                 "\"" + std::string(1601, 'x') + "\""),
            (strings{"ringback.yaml:24:14: error: tenants[0].profile.notes: "
                     "the text is 1601 characters long (at most 1600)"}));
  EXPECT_EQ(with("\"Mon-Fri 8am-5pm, emergencies 24/7\"",
                 std::string(1601, 'h')),
            (strings{"ringback.yaml:21:14: error: tenants[0].profile.hours: "
                     "the text is 1601 characters long (at most 1600)"}));
  EXPECT_EQ(with("Denver metro", std::string(1700, 'd')),
            (strings{"ringback.yaml:22:21: error: "
                     "tenants[0].profile.service_area: the text is 1700 "
                     "characters long (at most 1600)"}));
  EXPECT_EQ(with("\"drain cleaning\"", "\"" + std::string(1601, 's') + "\""),
            (strings{"ringback.yaml:20:35: error: "
                     "tenants[0].profile.services[1]: the text is 1601 "
                     "characters long (at most 1600)"}));
  EXPECT_EQ(with("Denver metro", "[Denver]"),
            (strings{"ringback.yaml:22:21: error: "
                     "tenants[0].profile.service_area: expected a string, got "
                     "a list"}));
  // booking_link: an http(s) link.
  const std::string link
    = "ringback.yaml:23:21: error: tenants[0].profile.booking_link: ";
  EXPECT_EQ(with("https://acme.example/book?src=sms", "acme.example/book"),
            (strings{link
                     + "'acme.example/book' is not an http:// or https:// "
                       "link (e.g. https://acme.example/book)"}));
  EXPECT_EQ(with("https://acme.example/book?src=sms", "\"https://acme "
                                                      "example/book\""),
            (strings{link
                     + "'https://acme example/book' is not an http:// or "
                       "https:// link (e.g. https://acme.example/book)"}));
  EXPECT_EQ(with("https://acme.example/book?src=sms", "https://"),
            (strings{link
                     + "'https://' is not an http:// or https:// link (e.g. "
                       "https://acme.example/book)"}));
  EXPECT_EQ(
    with("https://acme.example/book?src=sms",
         "https://x/" + std::string(1600, 'b')),
    (strings{link + "the text is 1610 characters long (at most 1600)"}));
  // phone: E.164.
  EXPECT_EQ(errors(base + "    profile: {phone: 555-0100}\n"),
            (strings{"ringback.yaml:19:22: error: tenants[0].profile.phone: "
                     "'555-0100' is not an E.164 phone number (expected "
                     "+<country><number>)"}));
}

TEST_F(Config, ConversationErrors) {
  auto with = [&](const std::string& from, const std::string& to) {
    return errors(base + replace(conversation, from, to));
  };
  EXPECT_EQ(with("      batch:", "      bach:"),
            (strings{"ringback.yaml:27:7: error: tenants[0].conversations: "
                     "unknown key 'bach' (did you mean 'batch'?)"}));
  EXPECT_EQ(with("      batch: 0s\n", "      colour: blue\n"),
            (strings{"ringback.yaml:27:7: error: tenants[0].conversations: "
                     "unknown key 'colour' (expected one of: "
                     "owner_reply_window, batch, idle_close, max_ai_replies, "
                     "max_reply_chars, page_by_call)"}));
  EXPECT_EQ(errors(base + "    conversations: 60s\n"),
            (strings{"ringback.yaml:19:20: error: tenants[0].conversations: "
                     "expected a map, got a scalar"}));
  // owner_reply_window: 5s to 1h.
  const std::string window = "ringback.yaml:26:27: error: "
                             "tenants[0].conversations.owner_reply_window: ";
  EXPECT_EQ(with("owner_reply_window: 90s", "owner_reply_window: 4s"),
            (strings{window + "'4s' is too short (at least 5s)"}));
  EXPECT_EQ(with("owner_reply_window: 90s", "owner_reply_window: 0"),
            (strings{window + "'0' is too short (at least 5s)"}));
  EXPECT_EQ(with("owner_reply_window: 90s", "owner_reply_window: 61m"),
            (strings{window + "'61m' is too long (at most 1h)"}));
  EXPECT_EQ(with("owner_reply_window: 90s", "owner_reply_window: 90"),
            (strings{window + "'90' has no unit (did you mean '90s'?)"}));
  EXPECT_EQ(
    with("owner_reply_window: 90s", "owner_reply_window: 1min"),
    (strings{window + "'1min' is not a duration (did you mean '1m'?)"}));
  EXPECT_EQ(with("owner_reply_window: 90s", "owner_reply_window: [90s]"),
            (strings{window + "expected a string, got a list"}));
  // batch: 0 to 60s.
  const std::string batch
    = "ringback.yaml:27:14: error: tenants[0].conversations.batch: ";
  EXPECT_EQ(with("batch: 0s", "batch: 61s"),
            (strings{batch + "'61s' is too long (at most 1m)"}));
  EXPECT_EQ(with("batch: 0s", "batch: -1s"),
            (strings{batch + "'-1s' must not be negative"}));
  EXPECT_EQ(with("batch: 0s", "batch: off"),
            (strings{batch
                     + "'off' is not a duration (expected a whole number and "
                       "a unit: 500ms, 20s, 2m or 1h)"}));
  // idle_close: 1m to 30d, and longer than the window.
  const std::string idle
    = "ringback.yaml:28:19: error: tenants[0].conversations.idle_close: ";
  EXPECT_EQ(with("idle_close: 7d", "idle_close: 59s"),
            (strings{idle + "'59s' is too short (at least 1m)"}));
  EXPECT_EQ(with("idle_close: 7d", "idle_close: 31d"),
            (strings{idle + "'31d' is too long (at most 30d)"}));
  EXPECT_EQ(with("idle_close: 7d", "idle_close: 721h"),
            (strings{idle + "'721h' is too long (at most 30d)"}));
  EXPECT_EQ(with("idle_close: 7d", "idle_close: 90s"),
            (strings{idle
                     + "must be longer than owner_reply_window (90s): the "
                       "conversation would close before the AI could "
                       "answer"}));
  // Compared only with a valid window.
  EXPECT_EQ(with("owner_reply_window: 90s", "owner_reply_window: 2h"),
            (strings{window + "'2h' is too long (at most 1h)"}));
  EXPECT_EQ(with("owner_reply_window: 90s\n      batch: 0s\n      "
                 "idle_close: 7d",
                 "owner_reply_window: 2h\n      batch: 0s\n      "
                 "idle_close: 2m"),
            (strings{window + "'2h' is too long (at most 1h)"}));
  EXPECT_EQ(errors(base
                   + "    conversations: {owner_reply_window: 30s, batch: 60s, "
                     "idle_close: 1m}\n"),
            (strings{"ringback.yaml:19:70: error: "
                     "tenants[0].conversations.idle_close: must be longer "
                     "than batch (1m)"}));
  // max_ai_replies: 0 to 100; max_reply_chars: 40 to 1600.
  const std::string replies
    = "ringback.yaml:29:23: error: tenants[0].conversations.max_ai_replies: "
      "expected a whole number from 0 to 100, got ";
  EXPECT_EQ(with("max_ai_replies: 3", "max_ai_replies: 101"),
            (strings{replies + "'101'"}));
  EXPECT_EQ(with("max_ai_replies: 3", "max_ai_replies: -1"),
            (strings{replies + "'-1'"}));
  EXPECT_EQ(with("max_ai_replies: 3", "max_ai_replies: many"),
            (strings{replies + "'many'"}));
  const std::string chars
    = "ringback.yaml:30:24: error: tenants[0].conversations.max_reply_chars: "
      "expected a whole number from 40 to 1600, got ";
  EXPECT_EQ(with("max_reply_chars: 160", "max_reply_chars: 39"),
            (strings{chars + "'39'"}));
  EXPECT_EQ(with("max_reply_chars: 160", "max_reply_chars: 1601"),
            (strings{chars + "'1601'"}));
  EXPECT_EQ(with("max_reply_chars: 160",
                 "max_reply_chars: 99999999999999999999"),
            (strings{chars + "'99999999999999999999'"}));
  // Every problem at once.
  auto all = errors(base
                    + "    conversations: {owner_reply_window: 1s, batch: 2m, "
                      "idle_close: 40d, max_ai_replies: x, max_reply_chars: "
                      "1}\n    profile: {booking_link: nope}\n");
  EXPECT_EQ(all.size(), 6u) << ::testing::PrintToString(all);
}

TEST_F(Config, TheSampleAiExamplesLoad) {
  // deploy/ringback.yaml carries a global `ai:` (OpenAI) and a tenant's
  // profile, conversation settings and own AI (a local server) as commented
  // examples; uncommented, they load.
  int global_lines = 0;
  auto text = uncomment_sample("# --- ai example ---\n", global_lines, "");
  EXPECT_GE(global_lines, 8);
  vars_.clear();
  vars_["OPENAI_API_KEY"] = "sk-sample";
  auto r = load_config_string(text, "ringback.yaml",
                              RINGBACK_SOURCE_DIR "/deploy", env_);
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r.errors) << text;
  EXPECT_EQ(r.value->ai.provider, "openai");
  EXPECT_EQ(r.value->ai.base_url, "https://api.openai.com/v1");
  EXPECT_EQ(r.value->ai.model, "gpt-4o-mini");
  EXPECT_EQ(r.value->ai.api_key, "sk-sample");
  EXPECT_GT(r.value->ai.usd_per_1k_prompt, 0.0);
  EXPECT_GT(r.value->ai.usd_per_1k_completion, 0.0);
  expect_ai(r.value->tenants[0].ai, r.value->ai);

  int tenant_lines = 0;
  auto tenant = uncomment_sample("    # --- conversations example ---\n",
                                 tenant_lines);
  EXPECT_GE(tenant_lines, 15);
  r = load_config_string(tenant, "ringback.yaml", RINGBACK_SOURCE_DIR "/deploy",
                         env_);
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r.errors) << tenant;
  const auto& t = r.value->tenants[0];
  EXPECT_FALSE(t.profile.services.empty());
  EXPECT_NE(t.profile.hours, "");
  EXPECT_NE(t.profile.service_area, "");
  EXPECT_NE(t.profile.booking_link, "");
  EXPECT_EQ(t.profile.name, "Acme Plumbing");
  EXPECT_EQ(t.profile.phone, "+15005550001");
  // The sample shows the defaults.
  expect_conversations(t.conversations, conversation_settings{});
  EXPECT_EQ(t.ai.provider, "openai");
  EXPECT_NE(t.ai.base_url, "");
  EXPECT_NE(t.ai.model, "");
  EXPECT_EQ(r.value->ai.provider, "offline"); // the global one stays commented
}

TEST_F(Config, DescribeMasksTheAiKey) {
  vars_["OPENAI_API_KEY"] = "sk-hunter4";
  auto c = ok(base + second_tenant
              + "    ai: {provider: openai, base_url: "
                "'http://me:hunter5@127.0.0.1:8000/v1', model: m, api_key: "
                "sk-hunter6}\n"
              + global_ai);
  auto line = describe(c);
  EXPECT_EQ(line.find("hunter"), std::string::npos) << line;
  EXPECT_NE(line.find(
              " ai.provider=openai ai.base_url=https://api.openai.com/v1 "
              "ai.model=gpt-4o-mini ai.api_key=*** ai.timeout=15000ms "
              "ai.max_attempts=3 "),
            std::string::npos)
    << line;
  EXPECT_NE(line.find("tenants=acme(2 numbers, ai openai gpt-4o-mini),bob(1 "
                      "numbers, ai openai m)"),
            std::string::npos)
    << line;
  // Without a key, it says so.
  auto local
    = ok(base
         + "ai: {provider: openai, base_url: 'http://127.0.0.1:8081/v1', "
           "model: local}\n");
  EXPECT_NE(describe(local).find("ai.api_key=none"), std::string::npos)
    << describe(local);
}
