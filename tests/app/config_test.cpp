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
              "tenants)"}));
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
  EXPECT_EQ(parse_duration("20"), std::nullopt);
  EXPECT_EQ(parse_duration(""), std::nullopt);
  EXPECT_EQ(parse_duration("s"), std::nullopt);
  EXPECT_EQ(parse_duration("0ms"), std::nullopt);
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
/// `    # --- <name> example ---`) uncommented: the lines after it that start
/// with "    # " lose their "# ". Counts them in `lines`.
std::string uncomment_sample(const std::string& marker, int& lines) {
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
  while (pos < text.size() && text.compare(pos, 6, "    # ") == 0) {
    auto end = text.find('\n', pos);
    end = end == std::string::npos ? text.size() : end + 1;
    uncommented += "    " + text.substr(pos + 6, end - pos - 6);
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
                     "a duration (expected a whole number and a unit: 500ms, "
                     "20s, 10m or 24h; or off)"}));
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
                      "z, repeat_caller_window: 1d}\n");
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
}
