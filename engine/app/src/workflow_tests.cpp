#include "ringback/app/workflow_tests.hpp"

#include "ringback/engine/ai.hpp"

#include "ringback/actors/runs.hpp"

#include "ringback/adapters/webhooks/twilio_webhooks.hpp"
#include "ringback/engine/ingress.hpp"
#include "ringback/engine/records.hpp"
#include "ringback/workflows/calendar.hpp"
#include "ringback/workflows/contexts.hpp"
#include "ringback/workflows/expr.hpp"
#include "ringback/workflows/interpreter.hpp"
#include "ringback/workflows/language.hpp"
#include "ringback/workflows/loader.hpp"
#include "ringback/workflows/phone.hpp"
#include "ringback/workflows/program.hpp"
#include "ringback/workflows/registry.hpp"
#include "ringback/workflows/yaml_source.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>
#include <utility>

namespace ringback::app {

namespace fs = std::filesystem;
namespace wf = workflows;
using engine::epoch_ms;
using engine::run_status;
using wf::diagnostic;

namespace {

constexpr auto style = wf::path_style::pointer;

/// Where the simulated host says its webhooks are (dial and record actions).
constexpr std::string_view public_url = "https://ringback.test";

/// The built-in answer's ring time (the config's `calls.ring_timeout`).
constexpr std::chrono::seconds ring_timeout{20};

/// Timers and schedule firings one `advance` may fire: a guard against a
/// schedule firing every minute for a year.
constexpr std::size_t max_fired = 10'000;

/// Runs one test may start.
constexpr std::size_t max_runs = 10'000;

/// HTTP requests refused in a row by one run (each resumes it at once).
constexpr int max_refusals = 100;

/// Trace lines printed for a failing test (the last ones).
constexpr std::size_t max_trace_lines = 400;

/// A test's clock starts here unless `at` says otherwise: a Monday morning.
constexpr wf::local_time default_start{2026, 11, 23, 10, 0, 0, 0, 327};

// -- small helpers ------------------------------------------------------------

bool ends_with(std::string_view x, std::string_view suffix) {
  return x.size() >= suffix.size()
         && x.substr(x.size() - suffix.size()) == suffix;
}

/// `"text"` with control characters, quotes and backslashes escaped.
std::string in_quotes(std::string_view x) {
  std::string out = "\"";
  for (char c : x) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x",
                        static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

/// `'x'` for messages about what a file says (cut to 64 characters).
std::string quote_value(std::string_view x) {
  std::string s(x);
  if (wf::truncate_code_points(s, 64))
    s += "...";
  return "'" + s + "'";
}

std::string plural(std::size_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

/// The TwiML without its XML declaration (for traces).
std::string short_twiml(const std::string& xml) {
  auto i = xml.find("?>");
  return xml.rfind("<?xml", 0) == 0 && i != std::string::npos
           ? xml.substr(i + 2)
           : xml;
}

/// The host of an http(s) URL, without brackets, user info or port.
std::string host_of(std::string_view url) {
  auto scheme = url.find("://");
  if (scheme == std::string_view::npos)
    return {};
  auto rest = url.substr(scheme + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (auto at = rest.rfind('@'); at != std::string_view::npos)
    rest = rest.substr(at + 1);
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    return std::string(rest.substr(
      1, close == std::string_view::npos ? std::string_view::npos : close - 1));
  }
  return std::string(rest.substr(0, rest.find(':')));
}

int days_in_month(int year, int month) {
  static constexpr int days[] = {31, 28, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31};
  if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
    return 29;
  return days[month - 1];
}

/// "2026-11-23 10:00", "2026-11-23 10:00:30" or with a 'T' between.
std::optional<wf::local_time> parse_local_time(std::string_view x) {
  if (x.size() != 16 && x.size() != 19)
    return std::nullopt;
  auto number = [&](std::size_t at, std::size_t len, int& out) {
    for (std::size_t i = at; i < at + len; ++i)
      if (x[i] < '0' || x[i] > '9')
        return false;
    std::from_chars(x.data() + at, x.data() + at + len, out);
    return true;
  };
  wf::local_time t;
  if (!number(0, 4, t.year) || x[4] != '-' || !number(5, 2, t.month)
      || x[7] != '-' || !number(8, 2, t.day) || (x[10] != ' ' && x[10] != 'T')
      || !number(11, 2, t.hour) || x[13] != ':' || !number(14, 2, t.minute))
    return std::nullopt;
  if (x.size() == 19 && (x[16] != ':' || !number(17, 2, t.second)))
    return std::nullopt;
  if (t.year < 1970 || t.year > 2199 || t.month < 1 || t.month > 12 || t.day < 1
      || t.day > days_in_month(t.year, t.month) || t.hour > 23 || t.minute > 59
      || t.second > 59)
    return std::nullopt;
  return t;
}

/// "mon 2026-11-23 10:00:00".
std::string format_local(const wf::local_time& t) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s %04d-%02d-%02d %02d:%02d:%02d",
                wf::weekday_name(t.weekday), t.year, t.month, t.day, t.hour,
                t.minute, t.second);
  return buf;
}

/// A YAML tree as JSON: plain scalars that read as null, booleans or numbers
/// become those; quoted scalars stay text.
boost::json::value to_json(const YAML::Node& n) {
  namespace json = boost::json;
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      json::object o;
      wf::for_each_entry(n, [&](const YAML::Node& k, const YAML::Node& v) {
        o[wf::key_text(k)] = to_json(v);
      });
      return o;
    }
    case YAML::NodeType::Sequence: {
      json::array a;
      for (const auto& x : n)
        a.push_back(to_json(x));
      return a;
    }
    case YAML::NodeType::Scalar: {
      const auto& s = n.Scalar();
      if (n.Tag() == "!")
        return json::string(s);
      if (s == "null" || s == "~" || s == "Null" || s == "NULL")
        return nullptr;
      if (s == "true" || s == "True")
        return true;
      if (s == "false" || s == "False")
        return false;
      std::int64_t i = 0;
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
      if (ec == std::errc{} && p == s.data() + s.size())
        return i;
      double d = 0;
      auto [q, ec2] = std::from_chars(s.data(), s.data() + s.size(), d);
      if (ec2 == std::errc{} && q == s.data() + s.size() && !s.empty())
        return d;
      return json::string(s);
    }
    default:
      return nullptr;
  }
}

// -- the model of a test file -------------------------------------------------

/// Where something was written: 1-based line and column, JSON pointer.
struct position {
  int line = 0;
  int column = 0;
  std::string path;
};

position position_of(const YAML::Mark& m, std::string path) {
  return {m.is_null() ? 0 : m.line + 1, m.is_null() ? 0 : m.column + 1,
          std::move(path)};
}

/// A check of a text: every condition given must hold.
struct text_match {
  std::optional<std::string> equals;
  std::optional<std::string> contains;
  std::optional<std::string> not_contains;
  std::optional<std::string> matches; ///< the pattern (RE2, partial match)
  wf::expression regex;               ///< `text matches "<pattern>"`

  bool test(const std::string& x) const {
    if (equals && x != *equals)
      return false;
    if (contains && x.find(*contains) == std::string::npos)
      return false;
    if (not_contains && x.find(*not_contains) != std::string::npos)
      return false;
    if (matches) {
      wf::context ctx{{"text", wf::value{x}}};
      wf::eval_limits limits;
      limits.max_text_bytes = std::size_t{1} << 20;
      auto r = regex.evaluate(ctx, limits);
      if (!r.ok() || !r.result.truthy())
        return false;
    }
    return true;
  }

  /// `body contains "x" and does not contain "y"`.
  std::string describe(std::string_view what) const {
    std::vector<std::string> xs;
    if (equals)
      xs.push_back("is " + in_quotes(*equals));
    if (contains)
      xs.push_back("contains " + in_quotes(*contains));
    if (not_contains)
      xs.push_back("does not contain " + in_quotes(*not_contains));
    if (matches)
      xs.push_back("matches " + in_quotes(*matches));
    return std::string(what) + " " + wf::join(xs, " and ");
  }
};

/// One check of an `expect` step.
struct expectation {
  enum class kind : std::uint8_t {
    twiml,
    sms,
    sms_count,
    no_sms,
    notify_owner,
    http,
    no_http,
    log,
    tag,
    run,
    runs,
  };
  kind what = kind::sms;
  std::string key; ///< as written
  position at;
  std::optional<text_match> twiml;
  std::optional<text_match> to;
  std::optional<text_match> from;
  std::optional<text_match> body;
  std::optional<text_match> url;
  std::optional<text_match> message;
  std::optional<text_match> phone;
  std::optional<text_match> tag;
  std::optional<text_match> error;
  std::optional<std::string> method;
  std::optional<std::string> level;
  std::optional<std::string> workflow;
  std::optional<std::string> waiting_for;
  std::optional<bool> urgent;
  std::optional<bool> held;
  std::optional<run_status> status;
  /// `run.vars`: name and the check of its text; nullopt: null or absent.
  std::vector<std::pair<std::string, std::optional<text_match>>> vars;
  std::optional<std::int64_t> count; ///< exactly this many match
  bool none = false;                 ///< none matches
};

/// One step of a test: an event for the simulated host, or expectations.
struct test_step {
  enum class kind : std::uint8_t {
    call,
    dial_result,
    recording,
    transcription,
    call_end,
    sms,
    owner_timeout,
    advance,
    advance_to,
    http_response,
    expect,
  };
  kind what = kind::expect;
  std::string key;
  position at;
  std::string from;
  std::string to;
  std::string sid;
  std::string status;
  std::string body; ///< sms text, transcription text, HTTP response body
  std::string url;
  std::string content_type;
  std::string error;
  std::int64_t number
    = 0; ///< seconds (dial, recording), ms (advance), HTTP status
  std::int32_t attempts = 1;
  std::int64_t elapsed_ms = 0;
  wf::local_time when; ///< advance_to
  std::vector<expectation> expects;
};

/// The workflow files a `workflows` key names, relative to the test file.
using workflow_list = std::optional<std::vector<std::string>>;

struct test_case {
  std::string name;
  position at;
  std::optional<wf::local_time> start;
  workflow_list workflows; ///< overrides the file's
  std::vector<test_step> steps;
};

struct test_file {
  workflow_list workflows; ///< nullopt: the folder's
  engine::tenant tenant;
  std::optional<wf::local_time> start;
  std::vector<test_case> tests;
};

engine::tenant default_tenant(std::string id) {
  engine::tenant t;
  t.id = std::move(id);
  t.name = "Test Business";
  t.numbers = {{"+15005550100", engine::number_kind::long_code, 1.0}};
  t.owner_phone = "+15005550199";
  t.timezone = "America/Denver";
  t.business_hours = {{"mon-fri", "08:00-17:00"}};
  return t;
}

// -- the parser ---------------------------------------------------------------

const std::vector<std::string>& step_keys() {
  static const std::vector<std::string> xs{
    "call", "dial_result", "recording",  "transcription", "call_end",
    "sms",  "owner_timeout", "advance", "advance_to", "http_response",
    "expect"};
  return xs;
}

const std::vector<std::string>& expect_keys() {
  static const std::vector<std::string> xs{
    "twiml",   "sms", "sms_count", "no_sms", "notify_owner", "http",
    "no_http", "log", "tag",       "run",    "runs"};
  return xs;
}

const std::vector<std::string>& dial_statuses() {
  static const std::vector<std::string> xs{"completed", "answered", "busy",
                                           "no-answer", "failed",   "canceled"};
  return xs;
}

/// Reads a parsed test file into a `test_file`, reporting every problem.
class test_parser {
public:
  test_parser(wf::reporter& out, std::string tenant_id)
    : out_(out), tenant_id_(std::move(tenant_id)) {
    // nop
  }

  test_file parse(const YAML::Node& root) {
    test_file f;
    f.tenant = default_tenant(tenant_id_);
    YAML::Mark top;
    top.line = 0;
    top.column = 0;
    if (!root.IsMap()) {
      out_.error(wf::mark_of(root, top), "",
                 "a test file is a map with 'tests' (and optionally "
                 "'workflows', 'tenant', 'at'), got "
                   + wf::kind_name(root));
      return f;
    }
    wf::check_keys(root, top, "",
                   {{"workflows", "tenant", "at", "tests"}, {"tests"}}, out_);
    wf::for_each_entry(root, [&](const YAML::Node& k, const YAML::Node& v) {
      auto key = wf::key_text(k);
      auto path = wf::child_path(style, "", key);
      if (key == "workflows")
        f.workflows = read_workflow_list(v, k.Mark(), path);
      else if (key == "tenant")
        read_tenant(v, k.Mark(), path, f.tenant);
      else if (key == "at")
        f.start = local_time_of(v, k.Mark(), path);
      else if (key == "tests")
        read_tests(v, k.Mark(), path, f);
    });
    return f;
  }

private:
  void error(const YAML::Node& v, const YAML::Mark& key,
             const std::string& path, std::string message) {
    out_.error(wf::mark_of(v, key), path, std::move(message));
  }

  // -- scalars --

  std::optional<std::string> text(const YAML::Node& v, const YAML::Mark& key,
                                  const std::string& path,
                                  std::string_view what = "text") {
    if (!v.IsScalar()) {
      error(v, key, path,
            "expected " + std::string(what) + ", got " + wf::kind_name(v));
      return std::nullopt;
    }
    return v.Scalar();
  }

  std::optional<bool> flag(const YAML::Node& v, const YAML::Mark& key,
                           const std::string& path) {
    auto x = text(v, key, path, "true or false");
    if (!x)
      return std::nullopt;
    if (*x == "true")
      return true;
    if (*x == "false")
      return false;
    error(v, key, path, "expected true or false, got " + quote_value(*x));
    return std::nullopt;
  }

  std::optional<std::int64_t> whole(const YAML::Node& v, const YAML::Mark& key,
                                    const std::string& path, std::int64_t min,
                                    std::int64_t max) {
    auto x = text(v, key, path, "a whole number");
    if (!x)
      return std::nullopt;
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(x->data(), x->data() + x->size(), n);
    if (ec != std::errc{} || p != x->data() + x->size() || n < min || n > max) {
      error(v, key, path,
            "expected a whole number from " + std::to_string(min) + " to "
              + std::to_string(max) + ", got " + quote_value(*x));
      return std::nullopt;
    }
    return n;
  }

  std::optional<std::string> phone(const YAML::Node& v, const YAML::Mark& key,
                                   const std::string& path) {
    auto x = text(v, key, path, "a phone number");
    if (!x)
      return std::nullopt;
    auto n = wf::normalize_e164(*x);
    if (!n) {
      error(v, key, path,
            quote_value(*x)
              + " is not a phone number in E.164 form (e.g. +15551230000)");
      return std::nullopt;
    }
    return n;
  }

  /// A caller: a phone number, or what a carrier sends for a withheld one.
  std::optional<std::string> caller(const YAML::Node& v, const YAML::Mark& key,
                                    const std::string& path) {
    auto x = text(v, key, path, "a phone number");
    if (!x)
      return std::nullopt;
    if (auto n = wf::normalize_e164(*x))
      return n;
    // Without digits it is what carriers send for a withheld number
    // (anonymous, Restricted, Unavailable); with digits, a typo.
    if (x->empty() || x->size() > 64
        || x->find_first_of("0123456789") != std::string::npos) {
      error(v, key, path,
            quote_value(*x)
              + " is not a phone number in E.164 form (e.g. +15551230000) nor "
                "a withheld caller id (e.g. anonymous)");
      return std::nullopt;
    }
    return x;
  }

  std::optional<std::int64_t> duration_ms(const YAML::Node& v,
                                          const YAML::Mark& key,
                                          const std::string& path) {
    auto x = text(v, key, path, "a duration");
    if (!x)
      return std::nullopt;
    auto ms = wf::parse_duration_ms(*x);
    if (!ms) {
      error(v, key, path,
            quote_value(*x) + " is not a duration (e.g. 30s, 10m, 2h, 1d)");
      return std::nullopt;
    }
    return ms;
  }

  std::optional<wf::local_time> local_time_of(const YAML::Node& v,
                                              const YAML::Mark& key,
                                              const std::string& path) {
    auto x = text(v, key, path, "a local date and time");
    if (!x)
      return std::nullopt;
    auto t = parse_local_time(*x);
    if (!t)
      error(v, key, path,
            quote_value(*x)
              + " is not a local date and time (e.g. 2026-11-23 10:00)");
    return t;
  }

  std::optional<text_match> matcher(const YAML::Node& v, const YAML::Mark& key,
                                    const std::string& path) {
    text_match m;
    if (v.IsScalar()) {
      m.equals = v.Scalar();
      return m;
    }
    if (!v.IsMap()) {
      error(v, key, path,
            "expected text or a map of equals, contains, not_contains, "
            "matches; got "
              + wf::kind_name(v));
      return std::nullopt;
    }
    wf::check_keys(v, key, path,
                   {{"equals", "contains", "not_contains", "matches"}, {}},
                   out_);
    bool any = false;
    bool ok = true;
    wf::for_each_entry(v, [&](const YAML::Node& k, const YAML::Node& x) {
      auto name = wf::key_text(k);
      auto p = wf::child_path(style, path, name);
      std::optional<std::string>* slot = nullptr;
      if (name == "equals")
        slot = &m.equals;
      else if (name == "contains")
        slot = &m.contains;
      else if (name == "not_contains")
        slot = &m.not_contains;
      else if (name == "matches")
        slot = &m.matches;
      if (slot == nullptr)
        return;
      auto s = text(x, k.Mark(), p);
      if (!s) {
        ok = false;
        return;
      }
      any = true;
      *slot = *s;
      if (name == "matches") {
        std::string src = "text matches \"";
        for (char c : *s) {
          if (c == '\\' || c == '"')
            src += '\\';
          if (c == '\n')
            src += "\\n";
          else if (c == '\t')
            src += "\\t";
          else
            src += c;
        }
        src += '"';
        auto parsed = wf::parse_expression(src);
        if (!parsed.ok()) {
          error(x, k.Mark(), p, parsed.error);
          ok = false;
          return;
        }
        m.regex = parsed.value;
      }
    });
    if (!any && ok) {
      error(v, key, path,
            "give at least one of equals, contains, not_contains, matches");
      return std::nullopt;
    }
    if (!ok)
      return std::nullopt;
    return m;
  }

  // -- top level --

  workflow_list read_workflow_list(const YAML::Node& v, const YAML::Mark& key,
                                   const std::string& path) {
    std::vector<std::string> out;
    if (!v.IsSequence() || v.size() == 0) {
      error(v, key, path,
            "expected a list of workflow files (relative to the test file), "
            "got "
              + (v.IsSequence() ? std::string("an empty list")
                                : wf::kind_name(v)));
      return std::nullopt;
    }
    std::size_t i = 0;
    for (const auto& x : v) {
      auto p = wf::child_path(style, path, i++);
      if (auto name = text(x, key, p, "a workflow file name")) {
        if (name->empty() || !ends_with(*name, ".yaml")
            || ends_with(*name, ".test.yaml"))
          error(x, key, p,
                "expected a workflow file ending in .yaml (not .test.yaml), "
                "got "
                  + quote_value(*name));
        else
          out.push_back(*name);
      }
    }
    return out;
  }

  void read_tenant(const YAML::Node& v, const YAML::Mark& key,
                   const std::string& path, engine::tenant& t) {
    if (!v.IsMap()) {
      error(v, key, path,
            "expected a map of tenant settings, got " + wf::kind_name(v));
      return;
    }
    wf::check_keys(v, key, path,
                   {{"id", "name", "number", "owner_phone", "timezone",
                     "business_hours", "holidays", "quiet_hours", "http_allow"},
                    {}},
                   out_);
    const auto before = out_.count();
    wf::for_each_entry(v, [&](const YAML::Node& k, const YAML::Node& x) {
      auto name = wf::key_text(k);
      auto p = wf::child_path(style, path, name);
      if (name == "id") {
        if (auto s = text(x, k.Mark(), p)) {
          if (s->empty() || s->size() > 64)
            error(x, k.Mark(), p, "expected an id of 1 to 64 characters");
          else
            t.id = *s;
        }
      } else if (name == "name") {
        if (auto s = text(x, k.Mark(), p))
          t.name = *s;
      } else if (name == "number") {
        if (auto n = phone(x, k.Mark(), p))
          t.numbers = {{*n, engine::number_kind::long_code, 1.0}};
      } else if (name == "owner_phone") {
        if (auto n = phone(x, k.Mark(), p))
          t.owner_phone = *n;
      } else if (name == "timezone") {
        if (auto s = text(x, k.Mark(), p, "a time zone")) {
          if (!wf::time_zone::load(*s))
            error(x, k.Mark(), p,
                  "unknown time zone " + quote_value(*s)
                    + " (an IANA name such as America/Denver)");
          else
            t.timezone = *s;
        }
      } else if (name == "business_hours") {
        read_business_hours(x, k.Mark(), p, t);
      } else if (name == "holidays") {
        t.holidays.clear();
        for_each_text(x, k.Mark(), p, "a list of dates",
                      [&](const std::string& s, const YAML::Node& n,
                          const std::string& ip) {
                        auto r = wf::parse_holiday(s);
                        if (!r.ok())
                          error(n, k.Mark(), ip, r.error);
                        else
                          t.holidays.push_back(s);
                      });
      } else if (name == "quiet_hours") {
        if (auto s = text(x, k.Mark(), p, "a time range")) {
          auto r = wf::parse_daily_window(*s);
          if (s->empty() || *s == "none")
            t.quiet_hours.clear();
          else if (!r.ok())
            error(x, k.Mark(), p, r.error);
          else
            t.quiet_hours = *s;
        }
      } else if (name == "http_allow") {
        t.http_allow.clear();
        for_each_text(x, k.Mark(), p, "a list of host names",
                      [&](const std::string& s, const YAML::Node& n,
                          const std::string& ip) {
                        auto r = wf::parse_host_pattern(s);
                        if (!r.ok())
                          error(n, k.Mark(), ip, r.error);
                        else
                          t.http_allow.push_back(*r.value);
                      });
      }
    });
    if (out_.count() == before) {
      auto cal = wf::business_calendar::from_tenant(t);
      for (const auto& e : cal.errors)
        error(v, key, path, e);
    }
  }

  template <class F>
  void for_each_text(const YAML::Node& v, const YAML::Mark& key,
                     const std::string& path, std::string_view what, F&& fn) {
    if (!v.IsSequence()) {
      error(v, key, path,
            "expected " + std::string(what) + ", got " + wf::kind_name(v));
      return;
    }
    std::size_t i = 0;
    for (const auto& x : v) {
      auto p = wf::child_path(style, path, i++);
      if (auto s = text(x, key, p))
        fn(*s, x, p);
    }
  }

  void read_business_hours(const YAML::Node& v, const YAML::Mark& key,
                           const std::string& path, engine::tenant& t) {
    if (!v.IsMap()) {
      error(v, key, path,
            "expected a map of days to hours ({mon-fri: \"08:00-17:00\"}; {} "
            "for open around the clock), got "
              + wf::kind_name(v));
      return;
    }
    t.business_hours.clear();
    wf::weekly_hours week;
    wf::for_each_entry(v, [&](const YAML::Node& k, const YAML::Node& x) {
      auto days = wf::key_text(k);
      auto p = wf::child_path(style, path, days);
      auto d = wf::parse_day_spec(days);
      if (!d.ok()) {
        out_.error(k.Mark(), p, d.error);
        return;
      }
      auto hours = text(x, k.Mark(), p, "hours such as \"08:00-17:00\"");
      if (!hours)
        return;
      auto r = wf::parse_time_ranges(*hours);
      if (!r.ok()) {
        error(x, k.Mark(), p, r.error);
        return;
      }
      if (auto clash = wf::add_days(week, *d.value, days, *r.value);
          !clash.empty()) {
        out_.error(k.Mark(), p, clash);
        return;
      }
      t.business_hours.emplace_back(days, *hours);
    });
  }

  // -- tests --

  void read_tests(const YAML::Node& v, const YAML::Mark& key,
                  const std::string& path, test_file& f) {
    if (!v.IsSequence() || v.size() == 0) {
      error(v, key, path,
            "expected a list of tests (each with a name and steps), got "
              + (v.IsSequence() ? std::string("an empty list")
                                : wf::kind_name(v)));
      return;
    }
    std::map<std::string, int> names;
    std::size_t i = 0;
    for (const auto& x : v) {
      auto p = wf::child_path(style, path, i++);
      if (!x.IsMap()) {
        error(x, key, p,
              "expected a test (a map with name and steps), got "
                + wf::kind_name(x));
        continue;
      }
      wf::check_keys(x, x.Mark(), p,
                     {{"name", "at", "workflows", "steps"}, {"name", "steps"}},
                     out_);
      test_case tc;
      tc.at = position_of(x.Mark(), p);
      wf::for_each_entry(x, [&](const YAML::Node& k, const YAML::Node& y) {
        auto name = wf::key_text(k);
        auto q = wf::child_path(style, p, name);
        if (name == "name") {
          if (auto s = text(y, k.Mark(), q)) {
            tc.name = *s;
            tc.at = position_of(wf::mark_of(y, k.Mark()), p);
            if (s->empty())
              error(y, k.Mark(), q, "a test needs a name");
            else if (auto [it, fresh] = names.emplace(*s, tc.at.line); !fresh)
              error(y, k.Mark(), q,
                    "a second test named " + quote_value(*s)
                      + " (the first is at line " + std::to_string(it->second)
                      + ")");
          }
        } else if (name == "at") {
          tc.start = local_time_of(y, k.Mark(), q);
        } else if (name == "workflows") {
          tc.workflows = read_workflow_list(y, k.Mark(), q);
        } else if (name == "steps") {
          read_steps(y, k.Mark(), q, tc);
        }
      });
      f.tests.push_back(std::move(tc));
    }
  }

  void read_steps(const YAML::Node& v, const YAML::Mark& key,
                  const std::string& path, test_case& tc) {
    if (!v.IsSequence() || v.size() == 0) {
      error(v, key, path,
            "expected a list of steps (events and expects), got "
              + (v.IsSequence() ? std::string("an empty list")
                                : wf::kind_name(v)));
      return;
    }
    std::size_t i = 0;
    for (const auto& x : v) {
      auto p = wf::child_path(style, path, i++);
      if (!x.IsMap() || x.size() == 0) {
        error(x, key, p,
              "expected a step: a map with one of " + wf::join(step_keys())
                + "; got " + wf::kind_name(x));
        continue;
      }
      wf::check_keys(x, x.Mark(), p, {step_keys(), {}}, out_);
      std::string first_key;
      wf::for_each_entry(x, [&](const YAML::Node& k, const YAML::Node& y) {
        auto name = wf::key_text(k);
        auto it = std::find(step_keys().begin(), step_keys().end(), name);
        if (it == step_keys().end())
          return;
        if (!first_key.empty()) {
          out_.error(k.Mark(), p,
                     "one event or expect per step: '" + name
                       + "' goes in a step of its own (after '" + first_key
                       + "')");
          return;
        }
        first_key = name;
        test_step s;
        s.key = name;
        s.at = position_of(k.Mark(), wf::child_path(style, p, name));
        s.what = static_cast<test_step::kind>(it - step_keys().begin());
        if (read_step(y, k.Mark(), s.at.path, s))
          tc.steps.push_back(std::move(s));
      });
    }
  }

  bool read_step(const YAML::Node& v, const YAML::Mark& key,
                 const std::string& path, test_step& s) {
    const auto before = out_.count();
    using k = test_step::kind;
    switch (s.what) {
      case k::call:
        if (v.IsScalar()) {
          if (auto x = caller(v, key, path))
            s.from = *x;
          break;
        }
        fields(v, key, path, {"from", "to", "sid"}, {"from"},
               [&](const std::string& n, const YAML::Node& x,
                   const YAML::Mark& m, const std::string& p) {
                 if (n == "from") {
                   if (auto y = caller(x, m, p))
                     s.from = *y;
                 } else if (n == "to") {
                   if (auto y = phone(x, m, p))
                     s.to = *y;
                 } else if (auto y = text(x, m, p)) {
                   s.sid = *y;
                 }
               });
        break;
      case k::dial_result:
        if (v.IsScalar()) {
          s.status = v.Scalar();
        } else {
          fields(v, key, path, {"status", "duration"}, {"status"},
                 [&](const std::string& n, const YAML::Node& x,
                     const YAML::Mark& m, const std::string& p) {
                   if (n == "status") {
                     if (auto y = text(x, m, p))
                       s.status = *y;
                   } else if (auto y = duration_ms(x, m, p)) {
                     s.number = *y / 1000;
                   }
                 });
        }
        if (!s.status.empty()
            && std::find(dial_statuses().begin(), dial_statuses().end(),
                         s.status)
                 == dial_statuses().end())
          error(v.IsMap() ? v["status"] : v, key, path,
                "unknown dial status " + quote_value(s.status) + " (expected "
                  + wf::join(dial_statuses()) + ")"
                  + wf::did_you_mean(s.status, dial_statuses()));
        if (s.status == "completed" || s.status == "answered") {
          if (!v.IsMap() || !v["duration"])
            s.number = 60;
        }
        break;
      case k::recording:
        s.number = 10;
        s.url = "https://api.twilio.test/recordings/RE0001";
        if (v.IsScalar()) {
          if (auto y = duration_ms(v, key, path))
            s.number = *y / 1000;
          break;
        }
        fields(v, key, path, {"duration", "url"}, {},
               [&](const std::string& n, const YAML::Node& x,
                   const YAML::Mark& m, const std::string& p) {
                 if (n == "duration") {
                   if (auto y = duration_ms(x, m, p))
                     s.number = *y / 1000;
                 } else if (auto y = text(x, m, p)) {
                   s.url = *y;
                 }
               });
        break;
      case k::transcription:
        s.status = "completed";
        if (v.IsScalar()) {
          s.body = v.Scalar();
          break;
        }
        fields(v, key, path, {"text", "status"}, {},
               [&](const std::string& n, const YAML::Node& x,
                   const YAML::Mark& m, const std::string& p) {
                 if (auto y = text(x, m, p))
                   (n == "text" ? s.body : s.status) = *y;
               });
        break;
      case k::call_end:
        if (v.IsNull() || (v.IsScalar() && v.Scalar() == "true")
            || (v.IsMap() && v.size() == 0))
          break;
        error(v, key, path,
              "call_end takes nothing (write 'call_end: true'), got "
                + wf::kind_name(v));
        break;
      case k::sms:
        fields(v, key, path, {"from", "body", "to", "sid"}, {"from", "body"},
               [&](const std::string& n, const YAML::Node& x,
                   const YAML::Mark& m, const std::string& p) {
                 if (n == "from") {
                   if (auto y = phone(x, m, p))
                     s.from = *y;
                 } else if (n == "to") {
                   if (auto y = phone(x, m, p))
                     s.to = *y;
                 } else if (auto y = text(x, m, p)) {
                   (n == "body" ? s.body : s.sid) = *y;
                 }
               });
        break;
      case k::owner_timeout:
        s.sid = "1";
        fields(v, key, path, {"customer", "message", "id"},
               {"customer", "message"},
               [&](const std::string& n, const YAML::Node& x,
                   const YAML::Mark& m, const std::string& p) {
                 if (n == "customer") {
                   if (auto y = phone(x, m, p))
                     s.from = *y;
                 } else if (auto y = text(x, m, p)) {
                   (n == "message" ? s.body : s.sid) = *y;
                 }
               });
        break;
      case k::advance:
        if (auto y = duration_ms(v, key, path)) {
          if (*y <= 0)
            error(v, key, path, "advance by more than 0s");
          s.number = *y;
        }
        break;
      case k::advance_to:
        if (auto t = local_time_of(v, key, path))
          s.when = *t;
        break;
      case k::http_response:
        read_http_response(v, key, path, s);
        break;
      case k::expect:
        read_expect(v, key, path, s);
        break;
    }
    return out_.count() == before;
  }

  /// Checks a map's keys and calls `fn(name, value, key mark, path)` for
  /// each known key.
  template <class F>
  void fields(const YAML::Node& v, const YAML::Mark& key,
              const std::string& path, std::vector<std::string> allowed,
              std::vector<std::string> required, F&& fn) {
    if (!v.IsMap()) {
      error(v, key, path,
            "expected a map of " + wf::join(allowed) + ", got "
              + wf::kind_name(v));
      return;
    }
    wf::check_keys(v, key, path, {allowed, std::move(required)}, out_);
    wf::for_each_entry(v, [&](const YAML::Node& k, const YAML::Node& x) {
      auto name = wf::key_text(k);
      if (std::find(allowed.begin(), allowed.end(), name) != allowed.end())
        fn(name, x, k.Mark(), wf::child_path(style, path, name));
    });
  }

  void read_http_response(const YAML::Node& v, const YAML::Mark& key,
                          const std::string& path, test_step& s) {
    bool has_status = false;
    bool has_json = false;
    bool has_body = false;
    bool has_error = false;
    fields(v, key, path,
           {"status", "json", "body", "content_type", "error", "attempts",
            "elapsed_ms"},
           {},
           [&](const std::string& n, const YAML::Node& x, const YAML::Mark& m,
               const std::string& p) {
             if (n == "status") {
               has_status = true;
               if (auto y = whole(x, m, p, 100, 599))
                 s.number = *y;
             } else if (n == "json") {
               has_json = true;
               s.body = boost::json::serialize(to_json(x));
               if (s.content_type.empty())
                 s.content_type = "application/json";
             } else if (n == "body") {
               has_body = true;
               if (auto y = text(x, m, p))
                 s.body = *y;
             } else if (n == "content_type") {
               if (auto y = text(x, m, p))
                 s.content_type = *y;
             } else if (n == "error") {
               has_error = true;
               if (auto y = text(x, m, p))
                 s.error = *y;
             } else if (n == "attempts") {
               if (auto y = whole(x, m, p, 1, 10))
                 s.attempts = static_cast<std::int32_t>(*y);
             } else if (auto y = whole(x, m, p, 0, 600'000)) {
               s.elapsed_ms = *y;
             }
           });
    if (!v.IsMap())
      return;
    if (has_json && has_body)
      error(v["body"], key, path, "give 'json' or 'body', not both");
    if (has_error && (has_status || has_json || has_body))
      error(v["error"], key, path,
            "an 'error' means no response came: leave out status, json and "
            "body");
    if (!has_error && !has_status)
      error(v, key, path,
            "missing required key 'status' (or 'error' for no response)");
    if (has_error && s.error.empty())
      error(v["error"], key, path, "say why no response came, e.g. 'timeout'");
  }

  // -- expectations --

  void read_expect(const YAML::Node& v, const YAML::Mark& key,
                   const std::string& path, test_step& s) {
    if (!v.IsMap() || v.size() == 0) {
      error(v, key, path,
            "expected a map of expectations (" + wf::join(expect_keys())
              + "), got " + wf::kind_name(v));
      return;
    }
    wf::check_keys(v, key, path, {expect_keys(), {}}, out_);
    wf::for_each_entry(v, [&](const YAML::Node& k, const YAML::Node& x) {
      auto name = wf::key_text(k);
      auto it = std::find(expect_keys().begin(), expect_keys().end(), name);
      if (it == expect_keys().end())
        return;
      expectation e;
      e.key = name;
      e.what = static_cast<expectation::kind>(it - expect_keys().begin());
      auto p = wf::child_path(style, path, name);
      e.at = position_of(k.Mark(), p);
      if (read_expectation(x, k.Mark(), p, e))
        s.expects.push_back(std::move(e));
    });
  }

  /// `count` and `none`, shared by the effect expectations.
  void count_field(const std::string& n, const YAML::Node& x,
                   const YAML::Mark& m, const std::string& p, expectation& e) {
    if (n == "count") {
      if (auto y = whole(x, m, p, 0, 100'000))
        e.count = *y;
    } else if (n == "none") {
      if (auto y = flag(x, m, p)) {
        if (!*y)
          error(x, m, p, "write 'none: true' or leave it out");
        e.none = true;
      }
    }
  }

  bool read_expectation(const YAML::Node& v, const YAML::Mark& key,
                        const std::string& path, expectation& e) {
    const auto before = out_.count();
    using k = expectation::kind;
    auto match_into = [&](std::optional<text_match>& slot, const YAML::Node& x,
                          const YAML::Mark& m,
                          const std::string& p) { slot = matcher(x, m, p); };
    switch (e.what) {
      case k::twiml:
        match_into(e.twiml, v, key, path);
        break;
      case k::sms:
      case k::notify_owner: {
        std::vector<std::string> allowed{"body", "urgent", "held", "count",
                                         "none"};
        if (e.what == k::sms)
          allowed.insert(allowed.begin(), {"to", "from"});
        fields(v, key, path, allowed, {},
               [&](const std::string& n, const YAML::Node& x,
                   const YAML::Mark& m, const std::string& p) {
                 if (n == "to")
                   match_into(e.to, x, m, p);
                 else if (n == "from")
                   match_into(e.from, x, m, p);
                 else if (n == "body")
                   match_into(e.body, x, m, p);
                 else if (n == "urgent")
                   e.urgent = flag(x, m, p);
                 else if (n == "held")
                   e.held = flag(x, m, p);
                 else
                   count_field(n, x, m, p, e);
               });
        break;
      }
      case k::sms_count:
        e.count = whole(v, key, path, 0, 100'000);
        break;
      case k::no_sms:
      case k::no_http:
        if (auto y = flag(v, key, path); y && !*y)
          error(v, key, path, "write '" + e.key + ": true' or leave it out");
        break;
      case k::http:
        fields(v, key, path, {"method", "url", "body", "count", "none"}, {},
               [&](const std::string& n, const YAML::Node& x,
                   const YAML::Mark& m, const std::string& p) {
                 if (n == "method") {
                   static const std::vector<std::string> methods{"GET", "POST",
                                                                 "PUT", "PATCH",
                                                                 "DELETE"};
                   if (auto y = text(x, m, p)) {
                     if (std::find(methods.begin(), methods.end(), *y)
                         == methods.end())
                       error(x, m, p,
                             "expected one of " + wf::join(methods) + ", got "
                               + quote_value(*y)
                               + wf::did_you_mean(*y, methods));
                     else
                       e.method = *y;
                   }
                 } else if (n == "url") {
                   match_into(e.url, x, m, p);
                 } else if (n == "body") {
                   match_into(e.body, x, m, p);
                 } else {
                   count_field(n, x, m, p, e);
                 }
               });
        break;
      case k::log:
        if (v.IsScalar()) {
          match_into(e.message, v, key, path);
          break;
        }
        fields(
          v, key, path, {"level", "message", "count", "none"}, {},
          [&](const std::string& n, const YAML::Node& x, const YAML::Mark& m,
              const std::string& p) {
            if (n == "level") {
              static const std::vector<std::string> levels{"info", "warn",
                                                           "error"};
              if (auto y = text(x, m, p)) {
                if (std::find(levels.begin(), levels.end(), *y) == levels.end())
                  error(x, m, p,
                        "expected one of " + wf::join(levels) + ", got "
                          + quote_value(*y) + wf::did_you_mean(*y, levels));
                else
                  e.level = *y;
              }
            } else if (n == "message") {
              match_into(e.message, x, m, p);
            } else {
              count_field(n, x, m, p, e);
            }
          });
        break;
      case k::tag:
        if (v.IsScalar()) {
          match_into(e.tag, v, key, path);
          break;
        }
        fields(v, key, path, {"tag", "phone", "count", "none"}, {},
               [&](const std::string& n, const YAML::Node& x,
                   const YAML::Mark& m, const std::string& p) {
                 if (n == "tag")
                   match_into(e.tag, x, m, p);
                 else if (n == "phone")
                   match_into(e.phone, x, m, p);
                 else
                   count_field(n, x, m, p, e);
               });
        break;
      case k::run:
        fields(
          v, key, path, {"workflow", "status", "waiting_for", "error", "vars"},
          {"workflow"},
          [&](const std::string& n, const YAML::Node& x, const YAML::Mark& m,
              const std::string& p) {
            if (n == "workflow") {
              e.workflow = text(x, m, p, "a workflow name");
            } else if (n == "status") {
              read_status(x, m, p, e);
            } else if (n == "waiting_for") {
              static const std::vector<std::string> waits{"dial", "recording",
                                                          "timer", "reply",
                                                          "http"};
              if (auto y = text(x, m, p)) {
                if (std::find(waits.begin(), waits.end(), *y) == waits.end())
                  error(x, m, p,
                        "expected one of " + wf::join(waits) + ", got "
                          + quote_value(*y) + wf::did_you_mean(*y, waits));
                else
                  e.waiting_for = *y;
              }
            } else if (n == "error") {
              match_into(e.error, x, m, p);
            } else {
              read_vars(x, m, p, e);
            }
          });
        break;
      case k::runs:
        fields(v, key, path, {"workflow", "count"}, {"workflow", "count"},
               [&](const std::string& n, const YAML::Node& x,
                   const YAML::Mark& m, const std::string& p) {
                 if (n == "workflow")
                   e.workflow = text(x, m, p, "a workflow name");
                 else
                   count_field(n, x, m, p, e);
               });
        break;
    }
    return out_.count() == before;
  }

  void read_status(const YAML::Node& x, const YAML::Mark& m,
                   const std::string& p, expectation& e) {
    static const std::vector<std::string> names{"running", "waiting",
                                                "finished", "failed"};
    auto y = text(x, m, p);
    if (!y)
      return;
    auto st = engine::parse_run_status(*y);
    if (!st)
      error(x, m, p,
            "expected one of " + wf::join(names) + ", got " + quote_value(*y)
              + wf::did_you_mean(*y, names));
    else
      e.status = *st;
  }

  void read_vars(const YAML::Node& x, const YAML::Mark& m, const std::string& p,
                 expectation& e) {
    if (!x.IsMap() || x.size() == 0) {
      error(x, m, p,
            "expected a map of variable names to values (~ for null), got "
              + wf::kind_name(x));
      return;
    }
    wf::for_each_entry(x, [&](const YAML::Node& k, const YAML::Node& y) {
      auto name = wf::key_text(k);
      auto q = wf::child_path(style, p, name);
      if (y.IsNull()) {
        e.vars.emplace_back(name, std::nullopt);
      } else if (auto t = matcher(y, k.Mark(), q)) {
        e.vars.emplace_back(name, std::move(*t));
      }
    });
  }

  wf::reporter& out_;
  std::string tenant_id_;
};

// -- the simulated host -------------------------------------------------------

struct sms_effect {
  std::string purpose; ///< workflow/step
  std::string to;
  std::string from;
  std::string body;
  bool urgent = true;
  bool held = false;
  epoch_ms held_until = 0;
};

struct http_effect {
  std::string purpose;
  std::string method;
  std::string url;
  std::string body;
};

struct log_effect {
  std::string purpose;
  std::string level;
  std::string text;
};

struct tag_effect {
  std::string purpose;
  std::string phone;
  std::string tag;
};

struct twiml_effect {
  std::string webhook; ///< voice, dial-result, recording
  std::string xml;
};

struct sim_run {
  std::int64_t id = 0;
  wf::workflow_ptr workflow;
  std::string trigger; ///< or "transcription"
  run_status status = run_status::running;
  wf::run_state state;
  std::string error;
  std::size_t http_request = 0; ///< index of its pending request + 1; 0 = none

  std::string label() const {
    return "run " + std::to_string(id) + " (" + workflow->name + ")";
  }
};

struct sim_call {
  std::string sid;
  std::string from;
  std::string to;
  std::int64_t run = 0; ///< its call.incoming run; 0: the built-in answer
  engine::call_phase phase = engine::call_phase::ringing;
  bool dial_result_seen = false;
  bool ended = false;
  std::int64_t dial_duration = 0;
  /// A recording with transcribe: true waits for its transcription.
  std::int64_t transcription_run = 0;
  const wf::step* transcription_step = nullptr;
};

/// Indexes into the host's effect lists: the start of an expect's window.
struct marks {
  std::size_t sms = 0;
  std::size_t http = 0;
  std::size_t logs = 0;
  std::size_t tags = 0;
  std::size_t twiml = 0;
  std::size_t runs = 0;
};

/// One tenant's host, simulated: the contract the actors implement (how
/// calls, texts, timers, schedules and HTTP drive workflow runs), on a
/// virtual clock. Each event method returns "" or why the event cannot
/// happen (a mistake in the test).
class sim_host {
public:
  sim_host(engine::tenant tenant, wf::business_calendar cal,
           const wf::catalog& workflows, epoch_ms start)
    : tenant_(std::move(tenant)),
      cal_(std::move(cal)),
      workflows_(workflows),
      now_(start) {
    for (const auto& w : workflows_.workflows()) {
      if (w->trigger != "schedule")
        continue;
      auto cron = wf::cron_schedule::parse(w->schedule);
      if (!cron.ok())
        continue; // the loader rejects these
      auto next = cron.value->next_after(now_, cal_.zone());
      schedules_.push_back({w, *cron.value, next});
    }
    line(stamp(now_) + " the test starts (" + tenant_.timezone + ")");
  }

  const std::vector<std::string>& trace() const {
    return trace_;
  }
  const engine::tenant& tenant() const {
    return tenant_;
  }
  const wf::catalog& workflows() const {
    return workflows_;
  }
  const std::vector<sms_effect>& sms() const {
    return sms_;
  }
  const std::vector<http_effect>& http() const {
    return http_;
  }
  const std::vector<log_effect>& logs() const {
    return logs_;
  }
  const std::vector<tag_effect>& tags() const {
    return tags_;
  }
  const std::vector<twiml_effect>& twiml() const {
    return twiml_;
  }
  const std::deque<sim_run>& runs() const {
    return runs_;
  }
  marks mark() const {
    return {sms_.size(),  http_.size(),  logs_.size(),
            tags_.size(), twiml_.size(), runs_.size()};
  }

  std::string stamp(epoch_ms t) const {
    return format_local(cal_.zone().to_local(t));
  }

  std::string apply(const test_step& s) {
    using k = test_step::kind;
    switch (s.what) {
      case k::call:
        return call(s);
      case k::dial_result:
        return dial_result(s);
      case k::recording:
        return recording(s);
      case k::transcription:
        return transcription(s);
      case k::call_end:
        return call_end();
      case k::sms:
        return inbound_sms(s);
      case k::owner_timeout:
        return owner_timeout(s);
      case k::advance:
        return advance(now_ + s.number);
      case k::advance_to: {
        auto t = cal_.zone().from_local(s.when.year, s.when.month, s.when.day,
                                        s.when.hour, s.when.minute,
                                        s.when.second);
        if (t < now_)
          return "the clock is at " + stamp(now_)
                 + " already; it only moves "
                   "forward";
        return advance(t);
      }
      case k::http_response:
        return http_response(s);
      case k::expect:
        break;
    }
    return {};
  }

private:
  struct schedule_entry {
    wf::workflow_ptr workflow;
    wf::cron_schedule cron;
    std::optional<epoch_ms> next;
  };

  void line(std::string x) {
    trace_.push_back(std::move(x));
  }

  /// The calendar variables at `now_` (refreshed on every resume).
  wf::context fresh() const {
    wf::context ctx;
    wf::add_calendar_variables(cal_, now_, ctx);
    return ctx;
  }

  wf::context call_vars(const sim_call& c) const {
    auto ctx = wf::call_context(c.sid, c.from, c.to, tenant_);
    wf::add_calendar_variables(cal_, now_, ctx);
    return ctx;
  }

  sim_call* current_call() {
    for (auto i = calls_.rbegin(); i != calls_.rend(); ++i)
      if (!i->ended)
        return &*i;
    return nullptr;
  }

  sim_run& new_run(const wf::workflow_ptr& w, std::string trigger) {
    sim_run r;
    r.id = static_cast<std::int64_t>(runs_.size()) + 1;
    r.workflow = w;
    r.trigger = std::move(trigger);
    runs_.push_back(std::move(r));
    auto& out = runs_.back();
    line("  " + out.label() + " starts (" + out.trigger + ")");
    return out;
  }

  sim_run& run(std::int64_t id) {
    return runs_[static_cast<std::size_t>(id - 1)];
  }

  std::string too_many_runs() const {
    return "the test started " + std::to_string(runs_.size())
           + " runs, the limit (a schedule or loop out of control?)";
  }

  /// Starts every workflow of `trigger` (file order) with `vars`.
  std::string start_runs(const std::string& trigger, const wf::context& vars) {
    for (const auto& w : workflows_.for_trigger(trigger)) {
      if (runs_.size() >= max_runs)
        return too_many_runs();
      auto& r = new_run(w, trigger);
      absorb(r, wf::start(*w, vars, now_), nullptr);
    }
    return {};
  }

  /// Takes a segment's outcome: records its effects and new state, answers
  /// with its voice verbs (into `answer`, when a webhook waits for one), and
  /// carries out its HTTP request (refusing hosts the tenant does not allow,
  /// which resumes the run at once, as in production).
  void absorb(sim_run& r, wf::segment_result seg,
              std::vector<engine::voice_verb>* answer) {
    for (int refusals = 0;; ++refusals) {
      for (const auto& t : seg.trace)
        line("    " + t.step_id + " " + t.type + " " + wf::to_string(t.outcome)
             + (t.detail.empty() ? std::string() : ": " + t.detail));
      r.status = seg.status;
      r.state = std::move(seg.state);
      r.error = std::move(seg.error);
      const auto& name = r.workflow->name;
      // The callback URLs and ring timeout exactly as the service fills them.
      actors::fill_voice_urls(seg.fx.voice, std::string(public_url),
                              ring_timeout);
      for (auto& v : seg.fx.voice) {
        if (answer != nullptr)
          answer->push_back(std::move(v));
        else
          line("    (a voice verb with no live webhook to answer: dropped)");
      }
      for (auto& m : seg.fx.sms) {
        sms_effect e;
        e.purpose = name + "/" + m.step_id;
        e.to = std::move(m.to);
        e.from = std::move(m.from);
        e.body = std::move(m.body);
        e.urgent = m.urgent;
        e.held = !m.urgent && cal_.is_quiet(now_);
        if (e.held && cal_.quiet_hours())
          e.held_until = cal_.quiet_hours()->next_end(now_, cal_.zone());
        line("  SMS " + describe(e));
        sms_.push_back(std::move(e));
      }
      for (auto& l : seg.fx.logs) {
        line("  log " + l.level + " " + in_quotes(l.text) + " [" + name + "/"
             + l.step_id + "]");
        logs_.push_back(
          {name + "/" + l.step_id, std::move(l.level), std::move(l.text)});
      }
      for (auto& t : seg.fx.tags) {
        line("  tag " + t.phone + " " + t.tag + " [" + name + "/" + t.step_id
             + "]");
        tags_.push_back(
          {name + "/" + t.step_id, std::move(t.phone), std::move(t.tag)});
      }
      for (const auto& c : seg.fx.calls)
        line("  CALL " + c.to + " from " + c.from + " " + in_quotes(c.say) + " ["
             + name + "/" + c.step_id + "]");
      line("  " + r.label() + " " + status_text(r));
      if (seg.fx.ai && r.status == run_status::waiting
          && r.state.waiting_for == "ai" && refusals < max_refusals) {
        // No network in tests: the built-in offline responder answers, as it
        // does in the service when no AI is configured.
        seg = wf::resume(*r.workflow, r.state, offline_ai(r, *seg.fx.ai),
                         fresh(), now_);
        continue;
      }
      if (!seg.fx.http)
        return;
      const auto& h = *seg.fx.http;
      auto host = host_of(h.url);
      if (wf::host_allowed(host, tenant_.http_allow)) {
        http_.push_back({name + "/" + h.step_id, h.method, h.url, h.body});
        r.http_request = http_.size();
        line("  HTTP " + describe(http_.back()));
        return;
      }
      auto why = "host '" + host + "' is not in the tenant's http_allow list";
      line("  HTTP " + h.method + " " + h.url + " refused: " + why);
      if (r.status != run_status::waiting || r.state.waiting_for != "http"
          || refusals >= max_refusals)
        return;
      wf::resume_event ev;
      ev.what = wf::resume_event::kind::http;
      ev.error = why;
      seg = wf::resume(*r.workflow, r.state, ev, fresh(), now_);
    }
  }

  /// The offline responder's answer to an `ai_reply` of `r`: the customer's
  /// message is the conversation's last one (or the SMS that started it).
  wf::resume_event offline_ai(const sim_run& r, const wf::ai_action& a) {
    engine::ai_request req;
    req.tenant_id = tenant_.id;
    req.profile = tenant_.profile;
    if (req.profile.name.empty())
      req.profile.name = tenant_.name;
    if (req.profile.phone.empty() && !tenant_.numbers.empty())
      req.profile.phone = tenant_.numbers.front().number;
    req.max_chars = a.max_chars;
    std::string said;
    for (const char* name : {"conversation.last_message", "sms.body"}) {
      auto i = r.state.vars.find(name);
      if (i != r.state.vars.end() && !i->second.to_text().empty()) {
        said = i->second.to_text();
        break;
      }
    }
    req.transcript.push_back({engine::ai_turn::speaker::customer, said, now_});
    auto reply = engine::offline_reply(req);
    line("  AI (offline, " + std::string{engine::to_string(reply.about)}
         + ") answers " + in_quotes(reply.text));
    wf::resume_event ev;
    ev.what = wf::resume_event::kind::ai;
    ev.body = reply.text;
    ev.status = engine::to_string(reply.about);
    ev.provider = reply.provider;
    return ev;
  }

  std::string status_text(const sim_run& r) const {
    switch (r.status) {
      case run_status::running:
        return "is running";
      case run_status::finished:
        return "finished";
      case run_status::failed:
        return "failed: " + r.error;
      case run_status::waiting: {
        std::string out = "waits for " + r.state.waiting_for;
        if (r.state.waiting_for == "reply")
          out += " from " + r.state.contact;
        if (r.state.wake_at > 0)
          out += " until " + stamp(r.state.wake_at);
        return out;
      }
    }
    return "?";
  }

  void answer(const std::string& webhook,
              const std::vector<engine::voice_verb>& verbs) {
    engine::voice_answer a;
    a.verbs = verbs;
    twiml_.push_back({webhook, adapters::render_twiml(a)});
    line("  TwiML answer to the " + webhook
         + " webhook: " + short_twiml(twiml_.back().xml));
  }

  std::string call(const test_step& s) {
    sim_call c;
    c.sid = s.sid.empty()
              ? "CA" + std::string(30, '0')
                  + (calls_.size() < 9 ? "0" + std::to_string(calls_.size() + 1)
                                       : std::to_string(calls_.size() + 1))
              : s.sid;
    for (const auto& other : calls_)
      if (other.sid == c.sid)
        return "a call with sid " + c.sid + " came already";
    c.from = s.from;
    c.to = s.to.empty() && !tenant_.numbers.empty()
             ? tenant_.numbers.front().number
             : s.to;
    calls_.push_back(c);
    auto& call = calls_.back();
    line(stamp(now_) + " call " + call.sid + " from " + call.from + " to "
         + call.to);
    auto incoming = workflows_.for_trigger("call.incoming");
    if (incoming.empty()) {
      line("  no call.incoming workflow: the built-in answer rings the owner");
      answer("voice",
             engine::voice_answer::dial({tenant_.owner_phone}, ring_timeout,
                                        std::string(public_url)
                                          + "/webhooks/twilio/voice/"
                                            "dial-result")
               .verbs);
      return {};
    }
    if (runs_.size() >= max_runs)
      return too_many_runs();
    auto& r = new_run(incoming.front(), "call.incoming");
    call.run = r.id;
    std::vector<engine::voice_verb> verbs;
    absorb(r, wf::start(*r.workflow, call_vars(call), now_), &verbs);
    answer("voice", verbs);
    return {};
  }

  /// The call's outcome, decided once; starts call.answered or call.missed.
  std::string decide(sim_call& c, bool answered, std::int64_t duration,
                     std::string_view why) {
    c.phase = answered ? engine::call_phase::answered
                       : engine::call_phase::missed;
    c.dial_duration = answered ? duration : 0;
    line("  the call is " + std::string(answered ? "answered" : "missed") + " ("
         + std::string(why) + ")");
    auto ctx = call_vars(c);
    ctx["call.answered"] = wf::value{answered};
    ctx["call.duration"] = wf::value{c.dial_duration};
    return start_runs(answered ? "call.answered" : "call.missed", ctx);
  }

  std::string dial_result(const test_step& s) {
    auto* c = current_call();
    if (c == nullptr)
      return "no call is in progress (a 'call' step comes first)";
    line(stamp(now_) + " dial result " + s.status + " ("
         + std::to_string(s.number) + "s) for call " + c->sid);
    const bool first = !c->dial_result_seen;
    if (c->run != 0) {
      auto& r = run(c->run);
      if (r.status != run_status::waiting || r.state.waiting_for != "dial")
        return "the call's " + r.label()
               + " does not wait for a dial result (it " + status_text(r) + ")";
      wf::resume_event ev;
      ev.what = wf::resume_event::kind::dial;
      ev.status = s.status;
      ev.duration = s.number;
      std::vector<engine::voice_verb> verbs;
      absorb(r, wf::resume(*r.workflow, r.state, ev, fresh(), now_), &verbs);
      answer("dial-result", verbs);
    } else {
      if (!first)
        return "the built-in answer dials once: this call's dial result came "
               "already";
      answer("dial-result", {});
    }
    c->dial_result_seen = true;
    if (first && c->phase == engine::call_phase::ringing) {
      const bool answered = s.status == "completed" || s.status == "answered";
      return decide(*c, answered, s.number, "its first dial: " + s.status);
    }
    return {};
  }

  std::string recording(const test_step& s) {
    auto* c = current_call();
    if (c == nullptr)
      return "no call is in progress (a 'call' step comes first)";
    line(stamp(now_) + " recording of " + std::to_string(s.number)
         + "s for call " + c->sid);
    if (c->run == 0)
      return "the built-in answer records nothing (no call.incoming workflow)";
    auto& r = run(c->run);
    if (r.status != run_status::waiting || r.state.waiting_for != "recording")
      return "the call's " + r.label() + " does not wait for a recording (it "
             + status_text(r) + ")";
    const auto& ops = r.workflow->code->ops;
    const wf::step* step
      = r.state.waiting_op < ops.size() ? ops[r.state.waiting_op].s : nullptr;
    wf::resume_event ev;
    ev.what = wf::resume_event::kind::recording;
    ev.duration = s.number;
    ev.url = s.number > 0 ? s.url : std::string();
    ev.sid = "RE" + std::string(30, '0') + "01";
    std::vector<engine::voice_verb> verbs;
    absorb(r, wf::resume(*r.workflow, r.state, ev, fresh(), now_), &verbs);
    answer("recording", verbs);
    const auto* transcribe = step ? step->field("transcribe") : nullptr;
    if (transcribe != nullptr && transcribe->flag && !ev.url.empty()) {
      c->transcription_run = r.id;
      c->transcription_step = step;
    }
    return {};
  }

  std::string transcription(const test_step& s) {
    sim_call* c = nullptr;
    for (auto i = calls_.rbegin(); i != calls_.rend() && c == nullptr; ++i)
      if (i->transcription_step != nullptr)
        c = &*i;
    if (c == nullptr)
      return "no recording waits for a transcription (a record_voicemail "
             "with transcribe: true, then a 'recording' step, come first)";
    line(stamp(now_) + " transcription (" + s.status + ") for call " + c->sid
         + ": " + in_quotes(s.body));
    if (runs_.size() >= max_runs)
      return too_many_runs();
    const auto* step = c->transcription_step;
    c->transcription_step = nullptr;
    auto parent = run(c->transcription_run).workflow;
    auto vars = run(c->transcription_run).state.vars;
    vars["voicemail.transcription"] = wf::value{s.body};
    vars["voicemail.transcription_status"] = wf::value{s.status};
    wf::add_calendar_variables(cal_, now_, vars);
    auto& r = new_run(parent, "transcription");
    absorb(r,
           wf::start_at(*parent, wf::transcription_entry(*step),
                        std::move(vars), now_),
           nullptr);
    return {};
  }

  std::string call_end() {
    auto* c = current_call();
    if (c == nullptr)
      return "no call is in progress (a 'call' step comes first)";
    line(stamp(now_) + " call " + c->sid + " ends");
    c->ended = true;
    if (c->phase == engine::call_phase::ringing) {
      auto error = decide(*c, false, 0, "it ended without an answered dial");
      if (!error.empty())
        return error;
    }
    auto ctx = call_vars(*c);
    ctx["call.answered"] = wf::value{c->phase == engine::call_phase::answered};
    ctx["call.duration"] = wf::value{c->dial_duration};
    return start_runs("call.completed", ctx);
  }

  std::string inbound_sms(const test_step& s) {
    auto sid = s.sid.empty() ? "SM" + std::string(28, '0')
                                 + std::to_string(1000 + sms_seen_.size())
                             : s.sid;
    auto to = s.to.empty() && !tenant_.numbers.empty()
                ? tenant_.numbers.front().number
                : s.to;
    line(stamp(now_) + " SMS " + sid + " from " + s.from + " to " + to + ": "
         + in_quotes(s.body));
    if (!sms_seen_.insert(sid).second) {
      line("  a MessageSid seen before: a carrier retry, ignored");
      return {};
    }
    const auto n = runs_.size();
    for (std::size_t i = 0; i < n; ++i) {
      auto& r = runs_[i];
      if (r.status != run_status::waiting || r.state.waiting_for != "reply"
          || r.state.contact != s.from)
        continue;
      line("  " + r.label() + " gets the reply");
      wf::resume_event ev;
      ev.what = wf::resume_event::kind::reply;
      ev.body = s.body;
      ev.from = s.from;
      ev.sid = sid;
      absorb(r, wf::resume(*r.workflow, r.state, ev, fresh(), now_), nullptr);
    }
    engine::inbound_message m;
    m.message_sid = sid;
    m.tenant_id = tenant_.id;
    m.from = s.from;
    m.to = to;
    m.body = s.body;
    m.received_at = now_;
    auto ctx = wf::sms_context(m, tenant_);
    wf::add_calendar_variables(cal_, now_, ctx);
    return start_runs("sms.received", ctx);
  }

  /// The conversations layer's owner-reply window ran out: starts the
  /// `conversation.owner_timeout` workflows.
  std::string owner_timeout(const test_step& s) {
    line(stamp(now_) + " owner timeout in conversation #" + s.sid + " with "
         + s.from);
    wf::context ctx{
      {"conversation.id", wf::value{s.sid}},
      {"conversation.customer", wf::value{s.from}},
      {"conversation.last_message", wf::value{s.body}},
      {"conversation.transcript", wf::value{"customer: " + s.body}},
      {"conversation.takeover", wf::value{true}},
      {"contact.phone", wf::value{s.from}},
    };
    wf::add_tenant_variables(tenant_, "", ctx);
    wf::add_calendar_variables(cal_, now_, ctx);
    return start_runs("conversation.owner_timeout", ctx);
  }

  /// Moves the clock to `target`, firing due timers (and reply timeouts) and
  /// schedules in time order on the way (timers first at the same instant).
  std::string advance(epoch_ms target) {
    line(stamp(now_) + " advance " + wf::format_duration(target - now_) + " to "
         + stamp(target));
    for (std::size_t fired = 0;; ++fired) {
      sim_run* timer = nullptr;
      for (auto& r : runs_)
        if (r.status == run_status::waiting
            && (r.state.waiting_for == "timer"
                || r.state.waiting_for == "reply")
            && r.state.wake_at <= target
            && (timer == nullptr || r.state.wake_at < timer->state.wake_at))
          timer = &r;
      schedule_entry* sched = nullptr;
      for (auto& e : schedules_)
        if (e.next && *e.next <= target
            && (sched == nullptr || *e.next < *sched->next))
          sched = &e;
      if (timer == nullptr && sched == nullptr)
        break;
      if (fired >= max_fired)
        return "more than " + std::to_string(max_fired)
               + " timers and schedules fired in one advance";
      if (timer != nullptr
          && (sched == nullptr || timer->state.wake_at <= *sched->next)) {
        now_ = std::max(now_, timer->state.wake_at);
        line(
          stamp(now_) + " timer of " + timer->label()
          + (timer->state.waiting_for == "reply" ? ": no reply in time" : ""));
        wf::resume_event ev;
        ev.what = wf::resume_event::kind::timer;
        absorb(*timer,
               wf::resume(*timer->workflow, timer->state, ev, fresh(), now_),
               nullptr);
        continue;
      }
      now_ = std::max(now_, *sched->next);
      line(stamp(now_) + " schedule of " + sched->workflow->name + " fires ("
           + sched->cron.source() + ")");
      sched->next = sched->cron.next_after(now_, cal_.zone());
      if (runs_.size() >= max_runs)
        return too_many_runs();
      wf::context ctx;
      wf::add_tenant_variables(tenant_, "", ctx);
      wf::add_calendar_variables(cal_, now_, ctx);
      auto local = cal_.zone().to_local(now_);
      char fired_at[32];
      std::snprintf(fired_at, sizeof fired_at, "%04d-%02d-%02dT%02d:%02d:%02d",
                    local.year, local.month, local.day, local.hour,
                    local.minute, local.second);
      ctx["schedule.cron"] = wf::value{sched->cron.source()};
      ctx["schedule.fired_at"] = wf::value{std::string(fired_at)};
      auto& r = new_run(sched->workflow, "schedule");
      absorb(r, wf::start(*r.workflow, std::move(ctx), now_), nullptr);
    }
    now_ = target;
    return {};
  }

  std::string http_response(const test_step& s) {
    sim_run* pending = nullptr;
    for (auto& r : runs_)
      if (r.status == run_status::waiting && r.state.waiting_for == "http"
          && r.http_request > 0
          && (pending == nullptr || r.http_request < pending->http_request))
        pending = &r;
    if (pending == nullptr)
      return "no HTTP request waits for a response";
    const auto& req = http_[pending->http_request - 1];
    line(
      stamp(now_) + " HTTP response "
      + (s.error.empty() ? std::to_string(s.number) : "none (" + s.error + ")")
      + " to " + req.method + " " + req.url
      + (s.body.empty() ? std::string() : ": " + in_quotes(s.body)));
    pending->http_request = 0;
    wf::resume_event ev;
    ev.what = wf::resume_event::kind::http;
    ev.http_status = s.error.empty() ? static_cast<int>(s.number) : 0;
    ev.body = s.body;
    ev.content_type = s.content_type;
    ev.error = s.error;
    ev.attempts = s.attempts;
    ev.elapsed_ms = s.elapsed_ms;
    absorb(*pending,
           wf::resume(*pending->workflow, pending->state, ev, fresh(), now_),
           nullptr);
    return {};
  }

public:
  std::string describe(const sms_effect& e) const {
    std::string out = "to " + e.to + " from " + e.from + " " + in_quotes(e.body)
                      + " [" + e.purpose + "]";
    if (!e.urgent)
      out += e.held ? " (not urgent: held in quiet hours until "
                        + stamp(e.held_until) + ")"
                    : " (not urgent)";
    return out;
  }

  static std::string describe(const http_effect& e) {
    return e.method + " " + e.url
           + (e.body.empty() ? std::string() : " " + in_quotes(e.body)) + " ["
           + e.purpose + "]";
  }

private:
  engine::tenant tenant_;
  wf::business_calendar cal_;
  const wf::catalog& workflows_;
  epoch_ms now_;
  std::vector<schedule_entry> schedules_;
  std::deque<sim_run> runs_;
  std::deque<sim_call> calls_;
  std::set<std::string> sms_seen_;
  std::vector<sms_effect> sms_;
  std::vector<http_effect> http_;
  std::vector<log_effect> logs_;
  std::vector<tag_effect> tags_;
  std::vector<twiml_effect> twiml_;
  std::vector<std::string> trace_;
};

// -- expectations -------------------------------------------------------------

/// "where to is "+1555" and body contains "x"" (or "" without filters).
std::string where(const std::vector<std::string>& clauses) {
  return clauses.empty() ? std::string() : " where " + wf::join(clauses, ", ");
}

/// Checks a count of matching effects; returns "" or the failure.
template <class T, class Describe>
std::string check_count(const expectation& e, std::string_view article,
                        std::string_view noun_one, std::string_view noun_many,
                        const std::vector<std::string>& clauses,
                        const std::vector<const T*>& window,
                        const std::vector<const T*>& matching,
                        Describe&& describe) {
  auto list = [&](const std::vector<const T*>& xs) {
    std::string out;
    for (const auto* x : xs)
      out += "\n    - " + describe(*x);
    return out;
  };
  auto actual = [&] {
    if (window.empty())
      return "\n  actual: no " + std::string(noun_many)
             + " since the last expect";
    return "\n  actual: " + plural(window.size(), noun_one, noun_many)
           + " since the last expect:" + list(window);
  };
  if (e.none || (e.count && *e.count == 0)) {
    if (matching.empty())
      return {};
    return "expected no " + std::string(noun_one) + where(clauses)
           + " since the last expect, got " + std::to_string(matching.size())
           + ":" + list(matching);
  }
  if (e.count) {
    if (static_cast<std::int64_t>(matching.size()) == *e.count)
      return {};
    return "expected "
           + plural(static_cast<std::size_t>(*e.count), noun_one, noun_many)
           + where(clauses) + ", got " + std::to_string(matching.size())
           + actual();
  }
  if (!matching.empty())
    return {};
  return "expected " + std::string(article) + " " + std::string(noun_one)
         + where(clauses) + actual();
}

void add_clause(std::vector<std::string>& out, std::string_view name,
                const std::optional<text_match>& m) {
  if (m)
    out.push_back(m->describe(name));
}

std::string check_expectation(const expectation& e, const sim_host& host,
                              const marks& window) {
  using k = expectation::kind;
  switch (e.what) {
    case k::twiml: {
      if (host.twiml().size() <= window.twiml)
        return "expected a TwiML answer, but no webhook was answered since "
               "the last expect";
      const auto& t = host.twiml().back();
      if (e.twiml->test(t.xml))
        return {};
      return "expected the TwiML answer to the " + t.webhook + " webhook where "
             + e.twiml->describe("it") + "\n  actual: " + t.xml;
    }
    case k::sms:
    case k::notify_owner:
    case k::sms_count:
    case k::no_sms: {
      std::vector<std::string> clauses;
      if (e.what == k::notify_owner)
        clauses.push_back("to is the owner " + host.tenant().owner_phone);
      add_clause(clauses, "to", e.to);
      add_clause(clauses, "from", e.from);
      add_clause(clauses, "body", e.body);
      if (e.urgent)
        clauses.push_back(std::string("urgent is ")
                          + (*e.urgent ? "true" : "false"));
      if (e.held)
        clauses.push_back(std::string("held is ")
                          + (*e.held ? "true" : "false"));
      std::vector<const sms_effect*> all;
      std::vector<const sms_effect*> matching;
      for (std::size_t i = window.sms; i < host.sms().size(); ++i) {
        const auto& m = host.sms()[i];
        all.push_back(&m);
        if ((e.what != k::notify_owner || m.to == host.tenant().owner_phone)
            && (!e.to || e.to->test(m.to)) && (!e.from || e.from->test(m.from))
            && (!e.body || e.body->test(m.body))
            && (!e.urgent || *e.urgent == m.urgent)
            && (!e.held || *e.held == m.held))
          matching.push_back(&m);
      }
      auto copy = e;
      if (e.what == k::no_sms)
        copy.none = true;
      return check_count(copy, "an", "SMS", "SMS", clauses, all, matching,
                         [&](const sms_effect& m) { return host.describe(m); });
    }
    case k::http:
    case k::no_http: {
      std::vector<std::string> clauses;
      if (e.method)
        clauses.push_back("method is " + *e.method);
      add_clause(clauses, "url", e.url);
      add_clause(clauses, "body", e.body);
      std::vector<const http_effect*> all;
      std::vector<const http_effect*> matching;
      for (std::size_t i = window.http; i < host.http().size(); ++i) {
        const auto& h = host.http()[i];
        all.push_back(&h);
        if ((!e.method || *e.method == h.method)
            && (!e.url || e.url->test(h.url))
            && (!e.body || e.body->test(h.body)))
          matching.push_back(&h);
      }
      auto copy = e;
      if (e.what == k::no_http)
        copy.none = true;
      return check_count(copy, "an", "HTTP request", "HTTP requests", clauses,
                         all, matching, [](const http_effect& h) {
                           return sim_host::describe(h);
                         });
    }
    case k::log: {
      std::vector<std::string> clauses;
      if (e.level)
        clauses.push_back("level is " + *e.level);
      add_clause(clauses, "message", e.message);
      std::vector<const log_effect*> all;
      std::vector<const log_effect*> matching;
      for (std::size_t i = window.logs; i < host.logs().size(); ++i) {
        const auto& l = host.logs()[i];
        all.push_back(&l);
        if ((!e.level || *e.level == l.level)
            && (!e.message || e.message->test(l.text)))
          matching.push_back(&l);
      }
      return check_count(e, "a", "log line", "log lines", clauses, all,
                         matching, [](const log_effect& l) {
                           return l.level + " " + in_quotes(l.text) + " ["
                                  + l.purpose + "]";
                         });
    }
    case k::tag: {
      std::vector<std::string> clauses;
      add_clause(clauses, "tag", e.tag);
      add_clause(clauses, "phone", e.phone);
      std::vector<const tag_effect*> all;
      std::vector<const tag_effect*> matching;
      for (std::size_t i = window.tags; i < host.tags().size(); ++i) {
        const auto& t = host.tags()[i];
        all.push_back(&t);
        if ((!e.tag || e.tag->test(t.tag))
            && (!e.phone || e.phone->test(t.phone)))
          matching.push_back(&t);
      }
      return check_count(e, "a", "tag", "tags", clauses, all, matching,
                         [](const tag_effect& t) {
                           return t.phone + " " + t.tag + " [" + t.purpose
                                  + "]";
                         });
    }
    case k::run: {
      const auto& name = *e.workflow;
      if (!host.workflows().find(name)) {
        std::vector<std::string> names;
        for (const auto& w : host.workflows().workflows())
          names.push_back(w->name);
        return "no workflow named " + quote_value(name) + " is under test ("
               + wf::join(names) + ")" + wf::did_you_mean(name, names);
      }
      const sim_run* last = nullptr;
      for (const auto& r : host.runs())
        if (r.workflow->name == name)
          last = &r;
      if (last == nullptr)
        return "expected a run of " + name + ", but none started";
      std::vector<std::string> problems;
      if (e.status && *e.status != last->status)
        problems.push_back(
          "status is " + std::string(engine::to_string(last->status))
          + ", expected " + std::string(engine::to_string(*e.status))
          + (last->error.empty() ? std::string()
                                 : " (error: " + last->error + ")"));
      if (e.waiting_for
          && (last->status != run_status::waiting
              || last->state.waiting_for != *e.waiting_for))
        problems.push_back("it waits for "
                           + (last->status == run_status::waiting
                                ? last->state.waiting_for
                                : std::string("nothing"))
                           + ", expected " + *e.waiting_for);
      if (e.error && !e.error->test(last->error))
        problems.push_back("error " + in_quotes(last->error) + ", expected "
                           + e.error->describe("it"));
      for (const auto& [var, m] : e.vars) {
        auto i = last->state.vars.find(var);
        const bool present = i != last->state.vars.end()
                             && !i->second.is_null();
        if (!m) {
          if (present)
            problems.push_back(var + " is " + in_quotes(i->second.to_text())
                               + ", expected null");
        } else if (!present) {
          problems.push_back(var + " is not set, expected "
                             + m->describe("it"));
        } else if (!m->test(i->second.to_text())) {
          problems.push_back(var + " is " + in_quotes(i->second.to_text())
                             + ", expected " + m->describe("it"));
        }
      }
      if (problems.empty())
        return {};
      std::string out = "the last " + last->label() + " does not match:";
      for (const auto& p : problems)
        out += "\n    - " + p;
      return out;
    }
    case k::runs: {
      std::vector<const sim_run*> all;
      std::vector<const sim_run*> matching;
      for (std::size_t i = window.runs; i < host.runs().size(); ++i) {
        const auto& r = host.runs()[i];
        all.push_back(&r);
        if (r.workflow->name == *e.workflow)
          matching.push_back(&r);
      }
      return check_count(e, "a", "run", "runs", {"workflow is " + *e.workflow},
                         all, matching, [](const sim_run& r) {
                           return r.label() + " (" + r.trigger + ")";
                         });
    }
  }
  return {};
}

// -- running a file -----------------------------------------------------------

std::string at_text(const std::string& file, const position& p) {
  std::string out = file;
  if (p.line > 0)
    out += ":" + std::to_string(p.line) + ":" + std::to_string(p.column);
  return out + ": ";
}

/// The workflows a test file tests, loaded with the real loader.
struct loaded_workflows {
  wf::catalog catalog;
  std::vector<diagnostic> problems;
};

loaded_workflows load_workflows(const workflow_list& files,
                                const std::string& dir) {
  loaded_workflows out;
  auto take = [&](wf::catalog c) {
    for (const auto& d : c.diagnostics())
      out.problems.push_back(d);
    return c;
  };
  if (files) {
    for (const auto& name : *files) {
      auto path = (fs::path(dir) / name).lexically_normal().string();
      auto loaded = wf::load_file(path);
      for (auto& d : loaded.diagnostics)
        out.problems.push_back(std::move(d));
      if (loaded.value)
        out.catalog.add(loaded.value);
    }
  } else {
    auto here = fs::path(dir).lexically_normal();
    if (here.has_filename() == false)
      here = here.parent_path();
    if (here.parent_path().filename() == "tenants") {
      // A tenant's folder: what the tenant runs, as `ringback serve` loads
      // it (its own workflows over the global ones of the same name, its
      // call.incoming instead of the global one). Every folder under
      // tenants/ counts as a configured tenant here.
      auto global_dir = here.parent_path().parent_path();
      auto root = global_dir.empty() ? std::string(".") : global_dir.string();
      std::vector<std::string> ids;
      std::error_code ec;
      for (fs::directory_iterator it(here.parent_path(), ec), end;
           !ec && it != end; it.increment(ec)) {
        std::error_code type_ec;
        if (it->is_directory(type_ec))
          ids.push_back(it->path().filename().string());
      }
      auto set = wf::load_workflow_set(root, ids);
      for (auto& d : set.diagnostics)
        if (d.level == wf::severity::error)
          out.problems.push_back(std::move(d));
      if (set.value)
        for (const auto& trigger : wf::default_language().triggers.all())
          for (const auto& w :
               set.value->for_trigger(here.filename().string(), trigger.name))
            out.catalog.add(w);
    } else {
      auto all = take(wf::load_directory(dir));
      for (const auto& w : all.workflows())
        out.catalog.add(w);
    }
  }
  for (const auto& d : out.catalog.diagnostics())
    out.problems.push_back(d);
  if (out.catalog.workflows().empty() && out.problems.empty()) {
    diagnostic d;
    d.file = dir;
    d.message = "no workflows to test (no *.yaml besides the tests)";
    out.problems.push_back(std::move(d));
  }
  return out;
}

workflow_test_result
run_case(const std::string& file, const test_file& f, const test_case& tc,
         const loaded_workflows& loaded, const wf::business_calendar& cal) {
  workflow_test_result out;
  out.name = tc.name;
  out.line = tc.at.line;
  if (!loaded.problems.empty()) {
    out.failure = "the workflows under test do not load:";
    for (const auto& d : loaded.problems)
      out.failure += "\n  " + wf::to_string(d);
    return out;
  }
  auto when = tc.start ? *tc.start : f.start ? *f.start : default_start;
  auto start = cal.zone().from_local(when.year, when.month, when.day, when.hour,
                                     when.minute, when.second);
  sim_host host(f.tenant, cal, loaded.catalog, start);
  marks window;
  bool in_expects = false;
  for (const auto& s : tc.steps) {
    if (s.what == test_step::kind::expect) {
      in_expects = true;
      for (const auto& e : s.expects) {
        auto why = check_expectation(e, host, window);
        if (!why.empty()) {
          out.failure = at_text(file, e.at) + "expect " + e.key + ": " + why;
          out.trace = host.trace();
          return out;
        }
      }
      continue;
    }
    if (in_expects) {
      window = host.mark();
      in_expects = false;
    }
    auto why = host.apply(s);
    if (!why.empty()) {
      out.failure = at_text(file, s.at) + s.key + ": " + why;
      out.trace = host.trace();
      return out;
    }
  }
  out.passed = true;
  out.trace = host.trace();
  return out;
}

} // namespace

bool workflow_test_file_result::ok() const {
  return diagnostics.empty()
         && std::all_of(tests.begin(), tests.end(),
                        [](const workflow_test_result& t) { return t.passed; });
}

workflow_test_file_result
run_workflow_test_string(std::string_view text, const std::string& display_name,
                         const std::string& dir,
                         const workflow_test_options& options) {
  workflow_test_file_result out;
  out.file = display_name;
  try {
    wf::reporter report(display_name, out.diagnostics);
    auto doc = wf::parse_yaml(text, report, style);
    if (!doc.usable) {
      wf::sort_by_position(out.diagnostics);
      return out;
    }
    if (doc.root.IsNull()) {
      report.error_at(1, 1, "", "an empty test file (it needs 'tests')");
      return out;
    }
    auto here = fs::path(dir).lexically_normal();
    if (!here.has_filename())
      here = here.parent_path();
    std::string tenant_id = "test";
    if (here.parent_path().filename() == "tenants")
      tenant_id = here.filename().string();
    test_parser parser(report, tenant_id);
    auto f = parser.parse(doc.root);
    if (!out.diagnostics.empty()) {
      wf::sort_by_position(out.diagnostics);
      return out;
    }
    auto cal = wf::business_calendar::from_tenant(f.tenant);
    if (!cal.ok()) { // checked by the parser; kept as a guard
      for (const auto& e : cal.errors)
        report.error_at(0, 0, "/tenant", e);
      return out;
    }
    // Tests that name the same workflows share one load.
    std::map<std::string, loaded_workflows> loads;
    auto workflows_of = [&](const test_case& tc) -> const loaded_workflows& {
      const auto& files = tc.workflows ? tc.workflows : f.workflows;
      auto key = files ? wf::join(*files, "\n") : std::string("\n(folder)");
      auto i = loads.find(key);
      if (i == loads.end())
        i = loads.emplace(key, load_workflows(files, dir.empty() ? "." : dir))
              .first;
      return i->second;
    };
    for (const auto& tc : f.tests) {
      if (!options.filter.empty()
          && tc.name.find(options.filter) == std::string::npos) {
        ++out.filtered_out;
        continue;
      }
      try {
        out.tests.push_back(
          run_case(display_name, f, tc, workflows_of(tc), *cal.value));
      } catch (const std::exception& e) {
        workflow_test_result r;
        r.name = tc.name;
        r.line = tc.at.line;
        r.failure = at_text(display_name, tc.at)
                    + "internal error of the test runner: " + e.what();
        out.tests.push_back(std::move(r));
      }
    }
  } catch (const std::exception& e) {
    diagnostic d;
    d.file = display_name;
    d.message = std::string("internal error of the test runner: ") + e.what();
    out.diagnostics.push_back(std::move(d));
  }
  return out;
}

workflow_test_file_result
run_workflow_test_file(const std::string& path,
                       const workflow_test_options& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    workflow_test_file_result out;
    out.file = path;
    diagnostic d;
    d.file = path;
    d.message = "cannot read the file";
    out.diagnostics.push_back(std::move(d));
    return out;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  auto dir = fs::path(path).parent_path().string();
  return run_workflow_test_string(buf.str(), path, dir.empty() ? "." : dir,
                                  options);
}

workflow_test_discovery
find_workflow_test_files(const std::vector<std::string>& paths) {
  workflow_test_discovery out;
  for (const auto& path : paths) {
    std::error_code ec;
    auto status = fs::status(path, ec);
    if (ec || !fs::exists(status)) {
      out.errors.push_back("no such file or folder: " + path);
      continue;
    }
    if (!fs::is_directory(status)) {
      if (ends_with(path, ".test.yaml"))
        out.files.push_back(path);
      else
        out.errors.push_back("not a test file (its name must end in "
                             ".test.yaml): "
                             + path);
      continue;
    }
    std::vector<std::string> found;
    fs::recursive_directory_iterator it(path, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
      auto name = it->path().filename().string();
      std::error_code type_ec;
      if (!name.empty() && name[0] == '.') {
        if (it->is_directory(type_ec))
          it.disable_recursion_pending();
        continue;
      }
      if (ends_with(name, ".test.yaml") && it->is_regular_file(type_ec))
        found.push_back(it->path().string());
    }
    if (ec)
      out.errors.push_back("cannot read folder " + path + ": " + ec.message());
    std::sort(found.begin(), found.end());
    out.files.insert(out.files.end(), found.begin(), found.end());
  }
  return out;
}

int run_workflow_tests(const std::vector<std::string>& files,
                       const workflow_test_options& options,
                       std::ostream& out) {
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t passed = 0;
  std::size_t failed = 0;
  std::size_t broken_files = 0;
  std::size_t filtered = 0;
  auto print_trace = [&](const std::vector<std::string>& trace) {
    out << "    trace:\n";
    std::size_t first
      = trace.size() > max_trace_lines ? trace.size() - max_trace_lines : 0;
    if (first > 0)
      out << "      ... " << first << " earlier lines\n";
    for (std::size_t i = first; i < trace.size(); ++i)
      out << "      " << trace[i] << "\n";
  };
  for (const auto& file : files) {
    auto r = run_workflow_test_file(file, options);
    filtered += r.filtered_out;
    if (!r.diagnostics.empty()) {
      ++broken_files;
      out << "ERROR " << file << ": the test file cannot run\n";
      for (const auto& d : r.diagnostics)
        out << "    " << wf::to_string(d) << "\n";
      continue;
    }
    const std::string* previous = nullptr;
    for (const auto& t : r.tests) {
      out << (t.passed ? "PASS " : "FAIL ") << file << ": " << t.name << "\n";
      if (t.passed) {
        ++passed;
        if (options.verbose)
          print_trace(t.trace);
        continue;
      }
      ++failed;
      // Workflows that do not load fail every test the same way: say it once.
      if (previous != nullptr && *previous == t.failure && t.trace.empty()) {
        out << "    (the same failure as the test above)\n";
        continue;
      }
      previous = &t.failure;
      std::istringstream lines(t.failure);
      for (std::string l; std::getline(lines, l);)
        out << "    " << l << "\n";
      if (!t.trace.empty())
        print_trace(t.trace);
    }
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::steady_clock::now() - t0)
              .count();
  const auto total = passed + failed;
  out << "\n"
      << plural(total, "test", "tests") << ": " << passed << " passed, "
      << failed << " failed";
  if (broken_files > 0)
    out << ", " << plural(broken_files, "file", "files") << " with errors";
  if (filtered > 0)
    out << ", " << filtered << " filtered out";
  out << " (" << plural(files.size(), "file", "files") << ", " << ms
      << " ms)\n";
  if (total == 0 && broken_files == 0)
    out << "no tests ran\n";
  return failed == 0 && broken_files == 0 && total > 0 ? 0 : 1;
}

} // namespace ringback::app
