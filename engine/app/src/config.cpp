#include "ringback/app/config.hpp"

#include "ringback/workflows/calendar.hpp"
#include "ringback/workflows/diagnostic.hpp"
#include "ringback/workflows/phone.hpp"
#include "ringback/workflows/yaml_source.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <system_error>

namespace ringback::app {

namespace fs = std::filesystem;
using workflows::diagnostic;
using workflows::reporter;

namespace {

constexpr auto style = workflows::path_style::dotted;

std::string quote_value(std::string_view x) {
  std::string s(x);
  if (workflows::truncate_code_points(s, 64)) {
    s += "...";
  }
  return "'" + s + "'";
}

bool all_digits(std::string_view x) {
  return !x.empty() && std::all_of(x.begin(), x.end(), [](char c) {
    return c >= '0' && c <= '9';
  });
}

/// Splits "20s" into "20" and "s".
std::pair<std::string_view, std::string_view>
number_and_unit(std::string_view x) {
  std::size_t i = 0;
  while (i < x.size() && x[i] >= '0' && x[i] <= '9') {
    ++i;
  }
  return {x.substr(0, i), x.substr(i)};
}

std::string lower(std::string_view x) {
  std::string out(x);
  for (auto& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

/// Milliseconds per unit, or 0.
std::int64_t duration_unit(std::string_view unit) {
  if (unit == "ms") {
    return 1;
  }
  if (unit == "s") {
    return 1000;
  }
  if (unit == "m") {
    return std::int64_t{60} * 1000;
  }
  if (unit == "h") {
    return std::int64_t{60} * 60 * 1000;
  }
  if (unit == "d") {
    return std::int64_t{24} * 60 * 60 * 1000;
  }
  return 0;
}

/// "90s" -> "90s", 3600000 -> "1h": the largest unit that divides it.
std::string format_ms(std::chrono::milliseconds x) {
  for (const char* unit : {"d", "h", "m", "s"}) {
    auto per = duration_unit(unit);
    if (x.count() != 0 && x.count() % per == 0) {
      return std::to_string(x.count() / per) + unit;
    }
  }
  return std::to_string(x.count()) + "ms";
}

/// The unit people meant by "sec", "minutes", ... or "".
std::string duration_hint(std::string_view unit) {
  static const std::map<std::string, std::string> hints{
    {"msec", "ms"}, {"millis", "ms"}, {"milliseconds", "ms"}, {"sec", "s"},
    {"secs", "s"},  {"second", "s"},  {"seconds", "s"},       {"min", "m"},
    {"mins", "m"},  {"minute", "m"},  {"minutes", "m"},       {"hr", "h"},
    {"hrs", "h"},   {"hour", "h"},    {"hours", "h"},         {"day", "d"},
    {"days", "d"},  {"S", "s"},       {"MS", "ms"},           {"M", "m"},
    {"H", "h"},     {"D", "d"}};
  auto i = hints.find(std::string(unit));
  if (i == hints.end()) {
    i = hints.find(lower(unit));
  }
  return i == hints.end() ? std::string{} : i->second;
}

std::size_t size_unit(std::string_view unit) {
  if (unit.empty() || unit == "B") {
    return 1;
  }
  if (unit == "KiB") {
    return 1024;
  }
  if (unit == "MiB") {
    return std::size_t{1024} * 1024;
  }
  if (unit == "GiB") {
    return std::size_t{1024} * 1024 * 1024;
  }
  return 0;
}

std::string size_hint(std::string_view unit) {
  auto u = lower(unit);
  if (u == "k" || u == "kb" || u == "kib") {
    return "KiB";
  }
  if (u == "m" || u == "mb" || u == "mib") {
    return "MiB";
  }
  if (u == "g" || u == "gb" || u == "gib") {
    return "GiB";
  }
  if (u == "b" || u == "bytes") {
    return "B";
  }
  return {};
}

bool is_env_name(std::string_view x) {
  if (x.empty() || std::isdigit(static_cast<unsigned char>(x[0])) != 0) {
    return false;
  }
  return std::all_of(x.begin(), x.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
  });
}

bool is_identifier(std::string_view x) {
  return !x.empty() && x.size() <= 64
         && std::all_of(x.begin(), x.end(), [](char c) {
              return std::isalnum(static_cast<unsigned char>(c)) != 0
                     || c == '_' || c == '-';
            });
}

/// "https://host[:port][/path]" without query or fragment; returns it
/// without trailing slashes, or nullopt.
std::optional<std::string> http_url(std::string_view x) {
  std::string_view rest;
  auto l = lower(x.substr(0, 8));
  if (l.rfind("http://", 0) == 0) {
    rest = x.substr(7);
  } else if (l.rfind("https://", 0) == 0) {
    rest = x.substr(8);
  } else {
    return std::nullopt;
  }
  auto host = rest.substr(0, rest.find('/'));
  if (host.empty() || host.front() == ':') {
    return std::nullopt;
  }
  for (char c : x) {
    if (std::isspace(static_cast<unsigned char>(c)) != 0 || c == '?'
        || c == '#') {
      return std::nullopt;
    }
  }
  std::string out(x);
  while (out.size() > x.size() - rest.size() + host.size()
         && out.back() == '/') {
    out.pop_back();
  }
  return out;
}

/// The scheme of a URL-looking value ("mysql" of "mysql://..."), or "".
std::string scheme_of(std::string_view x) {
  auto colon = x.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return {};
  }
  auto s = x.substr(0, colon);
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '+' && c != '-'
        && c != '.') {
      return {};
    }
  }
  return std::string(s);
}

/// Masks the password of "scheme://user:password@host...".
std::string redact_url(std::string_view x) {
  auto start = x.find("://");
  if (start == std::string_view::npos) {
    return std::string(x);
  }
  start += 3;
  auto at = x.find('@', start);
  if (at == std::string_view::npos) {
    return std::string(x);
  }
  auto colon = x.find(':', start);
  if (colon == std::string_view::npos || colon > at) {
    return std::string(x);
  }
  return std::string(x.substr(0, colon + 1)) + "***"
         + std::string(x.substr(at));
}

std::string host_name() {
  std::array<char, 256> buf{};
  if (::gethostname(buf.data(), buf.size() - 1) != 0 || buf[0] == '\0') {
    return "localhost";
  }
  return buf.data();
}

/// One key of a map as found in the file.
struct entry {
  YAML::Node key;
  YAML::Node value;
  std::string path;

  /// Where to point at the value (the key for an empty value).
  YAML::Mark mark() const {
    return workflows::mark_of(value, key.Mark());
  }
};

using entries = std::map<std::string, entry>;

class config_reader {
public:
  config_reader(std::string_view text, const std::string& base_dir,
                const env_lookup& env, reporter& out)
    : text_(text), base_dir_(base_dir), env_(env), out_(out) {
    std::size_t pos = 0;
    while (pos <= text_.size()) {
      auto end = text_.find('\n', pos);
      if (end == std::string_view::npos) {
        end = text_.size();
      }
      lines_.push_back(text_.substr(pos, end - pos));
      pos = end + 1;
    }
  }

  std::optional<config> read() {
    auto doc = workflows::parse_yaml(text_, out_, style);
    if (!doc.usable) {
      return std::nullopt;
    }
    const auto& root = doc.root;
    if (!root.IsDefined() || root.IsNull()) {
      out_.error_at(1, 1, "", "the file is empty (expected a map of settings)");
      return std::nullopt;
    }
    if (!root.IsMap()) {
      out_.error(root.Mark(), "",
                 "expected a map of settings, got "
                   + workflows::kind_name(root));
      return std::nullopt;
    }
    config c;
    auto top
      = section(root, root.Mark(), "",
                {{"listen", "public_url", "node_id", "store", "kv", "workflows",
                  "http", "twilio", "calls", "ai", "tenants"},
                 {"listen", "public_url", "store", "kv", "workflows", "twilio",
                  "calls", "tenants"}});
    bool listen_ok = false;
    if (auto* e = find(top, "listen")) {
      listen_ok = read_listen(*e, c.listen);
    }
    if (auto* e = find(top, "public_url")) {
      read_url(*e, c.public_url);
    }
    if (auto* e = find(top, "node_id")) {
      if (auto x = scalar(*e)) {
        if (x->empty()) {
          error(*e, "must not be empty");
        } else if (std::any_of(x->begin(), x->end(), [](char ch) {
                     return std::isspace(static_cast<unsigned char>(ch)) != 0;
                   })) {
          error(*e, quote_value(*x) + " must not contain whitespace");
        }
        c.node_id = *x;
      }
    } else if (listen_ok) {
      c.node_id = host_name() + ":" + std::to_string(c.listen.port);
    }
    if (auto* e = find(top, "store")) {
      read_store(*e, c.store);
    }
    if (auto* e = find(top, "kv")) {
      read_kv(*e, c.kv);
    }
    if (auto* e = find(top, "workflows")) {
      read_workflows(*e, c.workflows);
    }
    if (auto* e = find(top, "http")) {
      read_http(*e, c.http);
    }
    if (auto* e = find(top, "twilio")) {
      read_twilio(*e, c.twilio);
    }
    if (auto* e = find(top, "calls")) {
      read_calls(*e, c.calls);
    }
    // Before the tenants: a tenant without its own `ai:` gets this one.
    if (auto* e = find(top, "ai")) {
      read_ai(*e, c.ai);
    }
    global_ai_ = c.ai;
    if (auto* e = find(top, "tenants")) {
      read_tenants(*e, c.tenants);
    }
    if (out_.count() > 0) {
      return std::nullopt;
    }
    return c;
  }

private:
  // -- plumbing ---------------------------------------------------------------

  void error(const entry& e, std::string message) {
    out_.error(e.mark(), e.path, std::move(message));
  }

  static const entry* find(const entries& xs, const std::string& key) {
    auto i = xs.find(key);
    return i == xs.end() ? nullptr : &i->second;
  }

  /// Checks the keys of a map and returns its entries. A null map is empty.
  entries section(const YAML::Node& map, const YAML::Mark& where,
                  const std::string& path, const workflows::key_rules& rules) {
    entries out;
    workflows::check_keys(map, where, path, rules, out_);
    if (map.IsMap()) {
      workflows::for_each_entry(map, [&](const YAML::Node& k,
                                         const YAML::Node& v) {
        out.emplace(k.Scalar(),
                    entry{k, v,
                          workflows::child_path(style, path, k.Scalar())});
      });
    }
    return out;
  }

  /// A nested section: a map (or nothing, for optional ones).
  std::optional<entries> subsection(const entry& e,
                                    const workflows::key_rules& rules) {
    if (!e.value.IsNull() && !e.value.IsMap()) {
      error(e, "expected a map, got " + workflows::kind_name(e.value));
      return std::nullopt;
    }
    return section(e.value, e.mark(), e.path, rules);
  }

  /// The text of a scalar with `${NAME}` replaced from the environment.
  std::optional<std::string> scalar(const entry& e) {
    if (!e.value.IsScalar()) {
      error(e, "expected a string, got " + workflows::kind_name(e.value));
      return std::nullopt;
    }
    return substitute(e.value.Scalar(), e);
  }

  /// `${NAME}` -> the variable's value, `$${` -> a literal `${`. Reports
  /// every unset variable, at its own column where it can be found.
  std::optional<std::string> substitute(const std::string& raw,
                                        const entry& e) {
    std::string out;
    bool ok = true;
    std::size_t i = 0;
    while (i < raw.size()) {
      if (raw.compare(i, 3, "$${") == 0) {
        out += "${";
        i += 3;
        continue;
      }
      if (raw.compare(i, 2, "${") != 0) {
        out += raw[i++];
        continue;
      }
      auto close = raw.find('}', i + 2);
      if (close == std::string::npos) {
        error_near(e, "${", "unterminated '${' (expected ${NAME})");
        return std::nullopt;
      }
      auto name = raw.substr(i + 2, close - i - 2);
      if (!is_env_name(name)) {
        error_near(e, "${" + name + "}",
                   "invalid environment variable name " + quote_value(name));
        ok = false;
      } else if (auto value = env_ ? env_(name) : std::nullopt) {
        out += *value;
      } else {
        error_near(e, "${" + name + "}",
                   "environment variable " + name + " is not set");
        ok = false;
      }
      i = close + 1;
    }
    if (!ok) {
      return std::nullopt;
    }
    return out;
  }

  /// Reports at the column of `needle` on the value's line when it is there
  /// (a one-line value); else at the value.
  void error_near(const entry& e, const std::string& needle,
                  std::string message) {
    auto m = e.mark();
    if (!m.is_null() && m.line >= 0
        && static_cast<std::size_t>(m.line) < lines_.size()) {
      auto line = lines_[static_cast<std::size_t>(m.line)];
      auto from = std::min<std::size_t>(
        static_cast<std::size_t>(std::max(m.column, 0)), line.size());
      auto at = line.find(needle, from);
      if (at != std::string_view::npos) {
        out_.error_at(
          m.line + 1,
          static_cast<int>(workflows::code_points(line.substr(0, at))) + 1,
          e.path, std::move(message));
        return;
      }
    }
    error(e, std::move(message));
  }

  std::optional<std::string> non_empty(const entry& e) {
    auto x = scalar(e);
    if (x && x->empty()) {
      error(e, "must not be empty");
      return std::nullopt;
    }
    return x;
  }

  std::string resolve(const std::string& path) const {
    fs::path p(path);
    if (p.is_relative()) {
      p = fs::path(base_dir_) / p;
    }
    return p.lexically_normal().string();
  }

  std::optional<std::chrono::milliseconds> duration(const entry& e) {
    auto x = scalar(e);
    if (!x) {
      return std::nullopt;
    }
    return duration_of(e, *x);
  }

  /// `x` (the value of `e`, substituted) as a positive duration; reports why
  /// not.
  std::optional<std::chrono::milliseconds> duration_of(const entry& e,
                                                       const std::string& x) {
    if (auto d = parse_duration(x)) {
      return d;
    }
    auto [number, unit] = number_and_unit(x);
    if (!number.empty() && unit.empty()) {
      error(e, quote_value(x) + " has no unit (did you mean '" + x + "s'?)");
    } else if (!number.empty() && duration_unit(unit) != 0
               && number.size() > 9) {
      error(e, quote_value(x) + " is too large");
    } else if (!number.empty() && duration_unit(unit) != 0) {
      error(e, quote_value(x) + " must be greater than zero");
    } else if (auto hint = duration_hint(unit);
               !number.empty() && !hint.empty()) {
      error(e, quote_value(x) + " is not a duration (did you mean '"
                 + std::string(number) + hint + "'?)");
    } else {
      error(
        e, quote_value(x)
             + " is not a duration (expected a whole number and a unit: 500ms, "
               "20s, 2m or 1h)");
    }
    return std::nullopt;
  }

  std::optional<std::size_t> size(const entry& e) {
    auto x = scalar(e);
    if (!x) {
      return std::nullopt;
    }
    if (auto s = parse_size(*x)) {
      return s;
    }
    auto [number, unit] = number_and_unit(*x);
    if (!number.empty() && size_unit(unit) != 0
        && number.find_first_not_of('0') == std::string_view::npos) {
      error(e, quote_value(*x) + " must be greater than zero");
    } else if (!number.empty() && size_unit(unit) != 0) {
      error(e, quote_value(*x) + " is too large");
    } else if (auto hint = size_hint(unit); !number.empty() && !hint.empty()) {
      error(e, quote_value(*x) + " is not a size (did you mean '"
                 + std::string(number) + hint + "'?)");
    } else {
      error(
        e, quote_value(*x)
             + " is not a size (expected bytes or a whole number with KiB, MiB "
               "or GiB, e.g. 64KiB)");
    }
    return std::nullopt;
  }

  std::optional<std::string> phone(const entry& e) {
    auto x = scalar(e);
    if (!x) {
      return std::nullopt;
    }
    if (auto n = workflows::normalize_e164(*x)) {
      return n;
    }
    error(e, quote_value(*x)
               + " is not an E.164 phone number (expected +<country><number>)");
    return std::nullopt;
  }

  // -- settings ---------------------------------------------------------------

  bool read_listen(const entry& e, listen_address& out) {
    auto x = scalar(e);
    if (!x) {
      return false;
    }
    std::string_view s(*x);
    std::string_view host;
    std::string_view port;
    if (!s.empty() && s.front() == '[') {
      auto close = s.find("]:");
      if (close != std::string_view::npos) {
        host = s.substr(1, close - 1);
        port = s.substr(close + 2);
      }
    } else if (auto colon = s.rfind(':'); colon != std::string_view::npos) {
      host = s.substr(0, colon);
      port = s.substr(colon + 1);
      if (host.find(':') != std::string_view::npos) { // IPv6 needs brackets
        host = {};
      }
    }
    auto bad_host = std::any_of(host.begin(), host.end(), [](char c) {
      return std::isspace(static_cast<unsigned char>(c)) != 0 || c == '/';
    });
    if (host.empty() || bad_host || !all_digits(port)) {
      error(e, quote_value(*x) + " is not host:port (e.g. 127.0.0.1:8080)");
      return false;
    }
    unsigned long p = port.size() > 5
                        ? 0
                        : std::strtoul(std::string(port).c_str(), nullptr, 10);
    if (p < 1 || p > 65535) {
      error(e, "port " + std::string(port) + " is not between 1 and 65535");
      return false;
    }
    out.host = std::string(host);
    out.port = static_cast<std::uint16_t>(p);
    return true;
  }

  void read_url(const entry& e, std::string& out) {
    auto x = scalar(e);
    if (!x) {
      return;
    }
    if (auto u = http_url(*x)) {
      out = *u;
    } else {
      error(
        e,
        quote_value(*x)
          + " is not an http:// or https:// URL (without ?query or #fragment)");
    }
  }

  void read_store(const entry& e, std::string& out) {
    auto x = non_empty(e);
    if (!x) {
      return;
    }
    const std::string& s = *x;
    if (s.rfind("sqlite:", 0) == 0) {
      auto path = s.substr(7);
      if (path.rfind("//", 0) == 0) { // sqlite:///abs/path
        path = path.substr(2);
      }
      if (path.empty()) {
        error(e, "'sqlite:' needs a path (e.g. sqlite:ringback.db)");
      } else {
        out = path == ":memory:" ? s : "sqlite:" + resolve(path);
      }
      return;
    }
    if (s.rfind("postgresql://", 0) == 0 || s.rfind("postgres://", 0) == 0) {
      if (s.size() == s.find("://") + 3) {
        error(e, "the postgresql URL has no host (e.g. "
                 "postgresql://user:pass@host:5432/db)");
      } else {
        out = s;
      }
      return;
    }
    // Never echo the value: it may hold a password.
    auto scheme = scheme_of(s);
    error(
      e,
      (scheme.empty() ? std::string("unsupported store")
                      : "unsupported store scheme '" + scheme + "'")
        + " (expected sqlite:<path> or postgresql://user:pass@host:5432/db)");
  }

  void read_kv(const entry& e, std::string& out) {
    auto x = non_empty(e);
    if (!x) {
      return;
    }
    if (*x == "memory") {
      out = *x;
      return;
    }
    if (x->rfind("redis://", 0) == 0 && x->size() > 8) {
      out = *x;
      return;
    }
    auto scheme = scheme_of(*x);
    error(e, (scheme.empty() ? "unsupported kv " + quote_value(*x)
                             : "unsupported kv scheme '" + scheme + "'")
               + " (expected memory or redis://host:port/db)");
  }

  void read_workflows(const entry& e, std::string& out) {
    auto x = non_empty(e);
    if (!x) {
      return;
    }
    auto dir = resolve(*x);
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      error(e, "'" + dir + "' is not a directory");
    } else {
      out = dir;
    }
  }

  /// A thread or connection count: a whole number from 1 to 256.
  void read_small_count(const entry& e, int& out) {
    auto x = scalar(e);
    if (!x)
      return;
    int n = 0;
    auto [end, ec] = std::from_chars(x->data(), x->data() + x->size(), n);
    if (ec != std::errc{} || end != x->data() + x->size() || n < 1 || n > 256)
      error(e, "expected a whole number from 1 to 256, got " + quote_value(*x));
    else
      out = n;
  }

  void read_http(const entry& e, http_settings& out) {
    auto s = subsection(e, {{"threads", "max_body", "answer_deadline"}, {}});
    if (!s) {
      return;
    }
    if (auto* t = find(*s, "threads"))
      read_small_count(*t, out.threads);
    if (auto* m = find(*s, "max_body")) {
      if (auto x = size(*m)) {
        out.max_body = *x;
      }
    }
    if (auto* d = find(*s, "answer_deadline")) {
      if (auto x = duration(*d)) {
        out.answer_deadline = *x;
      }
    }
  }

  void read_twilio(const entry& e, twilio_settings& out) {
    auto s = subsection(
      e, {{"api_url", "account_sid", "auth_token", "connections"},
          {"api_url", "account_sid", "auth_token"}});
    if (!s) {
      return;
    }
    if (auto* u = find(*s, "api_url")) {
      read_url(*u, out.api_url);
    }
    if (auto* a = find(*s, "account_sid")) {
      if (auto x = scalar(*a)) {
        bool ok = x->size() == 34 && x->compare(0, 2, "AC") == 0
                  && std::all_of(x->begin() + 2, x->end(), [](char c) {
                       return std::isxdigit(static_cast<unsigned char>(c)) != 0;
                     });
        if (ok) {
          out.account_sid = *x;
        } else {
          error(
            *a,
            quote_value(*x)
              + " is not a Twilio account SID (expected AC and 32 hex digits)");
        }
      }
    }
    if (auto* t = find(*s, "auth_token")) {
      if (auto x = non_empty(*t)) { // a secret: never echoed
        out.auth_token = *x;
      }
    }
    if (auto* c = find(*s, "connections"))
      read_small_count(*c, out.connections);
  }

  void read_calls(const entry& e, call_settings& out) {
    auto s = subsection(e,
                        {{"ring_timeout", "fallback_grace", "recheck_interval",
                          "passivate_after"},
                         {"ring_timeout", "fallback_grace"}});
    if (!s) {
      return;
    }
    if (auto* x = find(*s, "ring_timeout")) {
      if (auto d = duration(*x)) {
        out.ring_timeout = *d;
      }
    }
    if (auto* x = find(*s, "fallback_grace")) {
      if (auto d = duration(*x)) {
        out.fallback_grace = *d;
      }
    }
    if (auto* x = find(*s, "recheck_interval")) {
      if (auto d = duration(*x)) {
        out.recheck_interval = *d;
      }
    }
    if (auto* x = find(*s, "passivate_after")) {
      read_passivate_after(*x, out.passivate_after);
    }
  }

  /// `off`, a zero duration ("0s": at once) or a positive duration.
  void read_passivate_after(const entry& e,
                            std::optional<std::chrono::milliseconds>& out) {
    auto x = scalar(e);
    if (!x) {
      return;
    }
    if (*x == "off") {
      out.reset();
      return;
    }
    auto [number, unit] = number_and_unit(*x);
    if (!number.empty() && duration_unit(unit) != 0
        && std::all_of(number.begin(), number.end(),
                       [](char c) { return c == '0'; })) {
      out = std::chrono::milliseconds{0};
      return;
    }
    static const std::set<std::string> offs{"false", "no", "none", "never",
                                            "disabled", "n"};
    if (offs.count(lower(*x)) > 0 || lower(*x) == "off") {
      error(e, quote_value(*x) + " is not a duration (did you mean 'off'?)");
      return;
    }
    if (auto d = duration_of(e, *x)) {
      out = *d;
    }
  }

  void read_tenants(const entry& e, std::vector<engine::tenant>& out) {
    if (e.value.IsNull() || (e.value.IsSequence() && e.value.size() == 0)) {
      error(e, "at least one tenant is required");
      return;
    }
    if (!e.value.IsSequence()) {
      error(e,
            "expected a list of tenants, got " + workflows::kind_name(e.value));
      return;
    }
    std::map<std::string, int> ids; // id -> line
    std::map<std::string, std::pair<std::string, int>>
      used; // number -> tenant, line
    std::size_t i = 0;
    for (auto it = e.value.begin(); it != e.value.end(); ++it, ++i) {
      // A list item has no key: it stands for its own key.
      entry item{*it, *it, workflows::child_path(style, e.path, i)};
      if (!it->IsMap()) {
        out_.error(
          it->Mark(), item.path,
          "expected a tenant (a map with id, name, numbers, owner_phone and "
          "timezone), got "
            + workflows::kind_name(*it));
        continue;
      }
      if (auto t = read_tenant(item, ids, used)) {
        out.push_back(std::move(*t));
      }
    }
  }

  std::optional<engine::tenant>
  read_tenant(const entry& e, std::map<std::string, int>& ids,
              std::map<std::string, std::pair<std::string, int>>& used) {
    const auto before = out_.count();
    const std::vector<std::string> keys{"id", "name", "numbers", "owner_phone",
                                        "timezone"};
    auto allowed = keys;
    allowed.insert(allowed.end(),
                   {"business_hours", "holidays", "quiet_hours", "http_allow",
                    "messaging", "profile", "conversations", "ai"});
    auto s = section(e.value, e.value.Mark(), e.path, {allowed, keys});
    engine::tenant t;
    if (auto* x = find(s, "id")) {
      if (auto id = scalar(*x)) {
        t.id = *id;
        if (!is_identifier(*id)) {
          error(*x, "invalid tenant id " + quote_value(*id)
                      + " (use letters, digits, '_' and '-', at most 64)");
        } else {
          auto [first, added] = ids.emplace(*id, x->mark().line + 1);
          if (!added) {
            error(*x, "duplicate tenant id '" + *id
                        + "' (first defined at line "
                        + std::to_string(first->second) + ")");
          }
        }
      }
    }
    if (auto* x = find(s, "name")) {
      if (auto name = non_empty(*x)) {
        t.name = *name;
      }
    }
    if (auto* x = find(s, "numbers")) {
      read_numbers(*x, t, used);
    }
    if (auto* x = find(s, "owner_phone")) {
      if (auto p = phone(*x)) {
        t.owner_phone = *p;
        for (const auto& n : t.numbers) {
          if (n.number == *p) {
            error(
              *x,
              *p
                + " is one of this tenant's own numbers (the call would ring "
                  "back into ringback)");
          }
        }
      }
    }
    if (auto* x = find(s, "timezone")) {
      if (auto tz = non_empty(*x)) {
        if (check_timezone(*x, *tz)) {
          t.timezone = *tz;
        }
      }
    }
    if (auto* x = find(s, "business_hours")) {
      read_business_hours(*x, t);
    }
    if (auto* x = find(s, "holidays")) {
      read_holidays(*x, t);
    }
    if (auto* x = find(s, "quiet_hours")) {
      if (auto text = scalar(*x)) {
        auto w = workflows::parse_daily_window(*text);
        if (w.ok()) {
          t.quiet_hours = *text;
        } else {
          error_in_value(*x, *text, w.column, w.error);
        }
      }
    }
    if (auto* x = find(s, "http_allow")) {
      read_http_allow(*x, t);
    }
    if (auto* x = find(s, "messaging")) {
      read_messaging(*x, t);
    }
    if (auto* x = find(s, "profile")) {
      read_profile(*x, t.profile);
    }
    if (t.profile.name.empty()) {
      t.profile.name = t.name;
    }
    if (t.profile.phone.empty() && !t.numbers.empty()) {
      t.profile.phone = t.numbers.front().number;
    }
    if (auto* x = find(s, "conversations")) {
      read_conversations(*x, t.conversations);
    }
    if (auto* x = find(s, "ai")) {
      // The whole block replaces the global one: keys it leaves out take
      // the defaults, not the global values.
      engine::ai_settings own;
      read_ai(*x, own);
      t.ai = std::move(own);
    } else {
      t.ai = global_ai_;
    }
    if (out_.count() > before) {
      return std::nullopt;
    }
    return t;
  }

  void read_numbers(const entry& e, engine::tenant& t,
                    std::map<std::string, std::pair<std::string, int>>& used) {
    if (e.value.IsNull() || (e.value.IsSequence() && e.value.size() == 0)) {
      error(e, "a tenant needs at least one number");
      return;
    }
    if (!e.value.IsSequence()) {
      error(e, "expected a list of phone numbers, got "
                 + workflows::kind_name(e.value));
      return;
    }
    std::size_t i = 0;
    for (auto it = e.value.begin(); it != e.value.end(); ++it, ++i) {
      entry item{*it, *it, workflows::child_path(style, e.path, i)};
      engine::business_number n;
      const entry* number_entry = &item;
      entries fields;
      if (it->IsScalar()) {
        auto p = phone(item);
        if (!p) {
          continue;
        }
        n.number = *p;
      } else if (it->IsMap()) {
        fields = section(*it, it->Mark(), item.path,
                         {{"number", "type", "mps"}, {"number"}});
        number_entry = find(fields, "number");
        if (number_entry == nullptr) {
          continue;
        }
        auto p = phone(*number_entry);
        if (!p) {
          continue;
        }
        n.number = *p;
        if (auto* x = find(fields, "type")) {
          if (auto type = scalar(*x)) {
            if (auto kind = engine::parse_number_kind(*type)) {
              n.kind = *kind;
            } else {
              std::vector<std::string> kinds{"long_code", "toll_free",
                                             "short_code"};
              error(*x, "unknown number type " + quote_value(*type)
                          + workflows::did_you_mean(*type, kinds)
                          + "; known types: " + workflows::join(kinds));
            }
          }
        }
        n.mps = default_mps(n.kind);
        if (auto* x = find(fields, "mps")) {
          if (auto mps = scalar(*x)) {
            double v = 0;
            auto [end, ec] = std::from_chars(mps->data(),
                                             mps->data() + mps->size(), v);
            if (ec != std::errc{} || end != mps->data() + mps->size()
                || !std::isfinite(v) || v <= 0 || v > 10000) {
              error(*x,
                    "expected a positive number of messages per second, got "
                      + quote_value(*mps));
            } else {
              n.mps = v;
            }
          }
        }
      } else {
        error(item,
              "expected a phone number or a map with number, type and mps, got "
                + workflows::kind_name(*it));
        continue;
      }
      auto line = number_entry->mark().line + 1;
      auto [first, added] = used.emplace(n.number, std::make_pair(t.id, line));
      if (!added) {
        error(*number_entry, n.number + " is already used by tenant '"
                               + first->second.first + "' (line "
                               + std::to_string(first->second.second) + ")");
      }
      t.numbers.push_back(std::move(n));
    }
  }

  /// Reports at `column` (1-based, in characters) of a scalar's `text`: at
  /// that character of the line when the text stands there as written (one
  /// line, quoted or plain); else at the value itself (a multi-line or
  /// escaped scalar, a ${NAME} substitution).
  void error_in_value(const entry& e, const std::string& text,
                      std::size_t column, std::string message) {
    auto m = e.mark();
    if (!m.is_null() && m.line >= 0
        && static_cast<std::size_t>(m.line) < lines_.size() && column > 0) {
      auto line = lines_[static_cast<std::size_t>(m.line)];
      auto at = static_cast<std::size_t>(std::max(m.column, 0));
      if (at < line.size() && (line[at] == '"' || line[at] == '\'')) {
        ++at;
      }
      if (at <= line.size() && line.substr(at, text.size()) == text) {
        out_.error_at(m.line + 1,
                      static_cast<int>(
                        workflows::code_points(line.substr(0, at)) + column),
                      e.path, std::move(message));
        return;
      }
    }
    error(e, std::move(message));
  }

  /// `business_hours`: day spec -> time ranges, every day at most once.
  void read_business_hours(const entry& e, engine::tenant& t) {
    if (!e.value.IsMap()) {
      error(e, "expected a map of days to hours (e.g. mon-fri: "
               "\"08:00-17:00\"), got "
                 + workflows::kind_name(e.value));
      return;
    }
    if (e.value.size() == 0) {
      error(e, "no days given (leave business_hours out to be open 24/7)");
      return;
    }
    workflows::weekly_hours week;
    workflows::for_each_entry(e.value, [&](const YAML::Node& k,
                                           const YAML::Node& v) {
      entry item{k, v, workflows::child_path(style, e.path, k.Scalar())};
      entry key{k, k, item.path};
      auto days = workflows::parse_day_spec(k.Scalar());
      if (!days.ok()) {
        error_in_value(key, k.Scalar(), days.column, days.error);
      }
      if (!v.IsScalar()) {
        error(item, "expected time ranges like \"08:00-17:00\" or closed, got "
                      + workflows::kind_name(v));
        return;
      }
      auto text = scalar(item);
      if (!text) {
        return;
      }
      auto ranges = workflows::parse_time_ranges(*text);
      if (!ranges.ok()) {
        error_in_value(item, *text, ranges.column, ranges.error);
        return;
      }
      if (!days.ok()) {
        return;
      }
      auto clash = workflows::add_days(week, *days.value, k.Scalar(),
                                       *ranges.value);
      if (!clash.empty()) {
        error(key, clash);
        return;
      }
      t.business_hours.emplace_back(k.Scalar(), *text);
    });
  }

  /// Calls `fn(item)` for each item of the list `e` that is a scalar; a
  /// null list has none. Reports "expected <list_what>, got ..." for a value
  /// that is not a list and "expected <item_what>, got ..." for an item that
  /// is not a scalar.
  template <class F>
  void for_each_scalar(const entry& e, std::string_view list_what,
                       std::string_view item_what, F&& fn) {
    if (e.value.IsNull()) {
      return; // none
    }
    if (!e.value.IsSequence()) {
      error(e, "expected " + std::string(list_what) + ", got "
                 + workflows::kind_name(e.value));
      return;
    }
    std::size_t i = 0;
    for (auto it = e.value.begin(); it != e.value.end(); ++it, ++i) {
      entry item{*it, *it, workflows::child_path(style, e.path, i)};
      if (!it->IsScalar()) {
        error(item, "expected " + std::string(item_what) + ", got "
                      + workflows::kind_name(*it));
        continue;
      }
      fn(item);
    }
  }

  void read_holidays(const entry& e, engine::tenant& t) {
    std::map<std::string, int> seen; // date -> line
    for_each_scalar(
      e, "a list of dates like [\"2026-12-25\", \"01-01\"]",
      "a date (YYYY-MM-DD or MM-DD)", [&](const entry& item) {
        auto text = scalar(item);
        if (!text) {
          return;
        }
        auto h = workflows::parse_holiday(*text);
        if (!h.ok()) {
          error_in_value(item, *text, h.column, h.error);
          return;
        }
        std::array<char, 32> date{};
        if (h.value->year == 0) {
          std::snprintf(date.data(), date.size(), "%02d-%02d", h.value->month,
                        h.value->day);
        } else {
          std::snprintf(date.data(), date.size(), "%04d-%02d-%02d",
                        h.value->year, h.value->month, h.value->day);
        }
        auto [first, added] = seen.emplace(date.data(), item.mark().line + 1);
        if (!added) {
          error(item, std::string(date.data()) + " is already listed (line "
                        + std::to_string(first->second) + ")");
          return;
        }
        t.holidays.push_back(*text);
      });
  }

  void read_http_allow(const entry& e, engine::tenant& t) {
    for_each_scalar(
      e, "a list of host names like [\"api.example.com\", \"*.example.com\"]",
      "a host name", [&](const entry& item) {
        auto text = scalar(item);
        if (!text) {
          return;
        }
        auto p = workflows::parse_host_pattern(*text);
        if (!p.ok()) {
          error_in_value(item, *text, p.column, p.error);
          return;
        }
        t.http_allow.push_back(*text);
      });
  }

  /// `messaging:`: the guards of the pre-send gate, the tenant's pace cap and
  /// the compliance texts. Every key is optional; absent keys keep the
  /// defaults of `engine::gate_settings` and `engine::tenant`.
  void read_messaging(const entry& e, engine::tenant& t) {
    auto s = subsection(e, {{"repeat_caller_window", "automated_per_hour",
                             "loop_limit", "loop_window", "caller_rate_limit",
                             "caller_rate_window", "max_mps", "help_text",
                             "stop_reply", "start_reply"},
                            {}});
    if (!s) {
      return;
    }
    auto& g = t.guards;
    if (auto* x = find(*s, "repeat_caller_window")) {
      if (auto d = guard_window(*x)) {
        g.repeat_caller_window = *d;
      }
    }
    if (auto* x = find(*s, "automated_per_hour")) {
      if (auto n = guard_limit(*x)) {
        g.automated_per_hour = *n;
      }
    }
    if (auto* x = find(*s, "loop_limit")) {
      if (auto n = guard_limit(*x)) {
        g.loop_limit = *n;
      }
    }
    if (auto* x = find(*s, "loop_window")) {
      if (auto d = guard_window(*x)) {
        g.loop_window = *d;
      }
    }
    if (auto* x = find(*s, "caller_rate_limit")) {
      if (auto n = guard_limit(*x)) {
        g.caller_rate_limit = *n;
      }
    }
    if (auto* x = find(*s, "caller_rate_window")) {
      if (auto d = guard_window(*x)) {
        g.caller_rate_window = *d;
      }
    }
    if (auto* x = find(*s, "max_mps")) {
      if (auto v = scalar(*x)) {
        double rate = 0;
        auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(),
                                         rate);
        if (ec != std::errc{} || end != v->data() + v->size()
            || !std::isfinite(rate) || rate <= 0 || rate > 10000) {
          error(*x, "expected a positive number of messages per second (at "
                    "most 10000; leave max_mps out for no cap), got "
                      + quote_value(*v));
        } else {
          t.max_rate = engine::pace{rate, 1};
        }
      }
    }
    if (auto* x = find(*s, "help_text")) {
      if (auto v = message_text(*x)) {
        t.help_text = *v;
      }
    }
    if (auto* x = find(*s, "stop_reply")) {
      if (auto v = message_text(*x)) {
        t.stop_reply = *v;
      }
    }
    if (auto* x = find(*s, "start_reply")) {
      if (auto v = message_text(*x)) {
        t.start_reply = *v;
      }
    }
  }

  /// A guard's window: a duration, or `off` / `0` (also `0s`, `0m`...): the
  /// guard is off (0 ms).
  std::optional<std::chrono::milliseconds> guard_window(const entry& e) {
    if (!e.value.IsScalar()) {
      error(e, "expected a duration (e.g. 10m) or off, got "
                 + workflows::kind_name(e.value));
      return std::nullopt;
    }
    auto text = substitute(e.value.Scalar(), e);
    if (!text) {
      return std::nullopt;
    }
    auto [number, unit] = number_and_unit(*text);
    bool zero = !number.empty()
                && number.find_first_not_of('0') == std::string_view::npos
                && (unit.empty() || duration_unit(unit) != 0);
    if (lower(*text) == "off" || zero) {
      return std::chrono::milliseconds{0};
    }
    if (auto d = parse_duration(*text)) {
      return d;
    }
    if (!number.empty() && unit.empty()) {
      error(e, quote_value(*text) + " has no unit (did you mean '" + *text
                 + "s'?)");
    } else if (!number.empty() && duration_unit(unit) != 0) {
      error(e, quote_value(*text) + " is too large");
    } else if (auto hint = duration_hint(unit);
               !number.empty() && !hint.empty()) {
      error(e, quote_value(*text) + " is not a duration (did you mean '"
                 + std::string(number) + hint + "'?)");
    } else if (!text->empty() && text->front() == '-') {
      error(e, quote_value(*text)
                 + " must not be negative (0 or off turns the guard off)");
    } else {
      error(e, quote_value(*text)
                 + " is not a duration (expected a whole number and a unit: "
                   "500ms, 20s, 10m or 24h; or off)");
    }
    return std::nullopt;
  }

  /// A guard's limit: a whole number from 0 to 1000000, or `off` (0): the
  /// guard is off.
  std::optional<std::int32_t> guard_limit(const entry& e) {
    if (!e.value.IsScalar()) {
      error(e, "expected a whole number or off, got "
                 + workflows::kind_name(e.value));
      return std::nullopt;
    }
    auto text = substitute(e.value.Scalar(), e);
    if (!text) {
      return std::nullopt;
    }
    if (lower(*text) == "off") {
      return 0;
    }
    constexpr std::int64_t max = 1000000;
    if (all_digits(*text)) {
      if (text->size() > 9 || std::strtoll(text->c_str(), nullptr, 10) > max) {
        error(e, quote_value(*text) + " is too large (at most "
                   + std::to_string(max) + ")");
        return std::nullopt;
      }
      return static_cast<std::int32_t>(
        std::strtoll(text->c_str(), nullptr, 10));
    }
    if (text->size() > 1 && text->front() == '-'
        && all_digits(std::string_view(*text).substr(1))) {
      error(e, quote_value(*text)
                 + " must not be negative (0 or off turns the guard off)");
    } else {
      error(e, "expected a whole number (0 or off turns the guard off), got "
                 + quote_value(*text));
    }
    return std::nullopt;
  }

  /// A text ringback sends as one SMS: at most 1600 characters (the
  /// carrier's limit for one message). An empty value is "". `why` follows
  /// the limit in the error.
  std::optional<std::string>
  message_text(const entry& e, const char* why = ", the limit of one SMS") {
    if (e.value.IsNull()) {
      return std::string{};
    }
    auto text = scalar(e);
    if (!text) {
      return std::nullopt;
    }
    constexpr std::size_t max = 1600;
    if (auto n = workflows::code_points(*text); n > max) {
      error(e, "the text is " + std::to_string(n) + " characters long (at most "
                 + std::to_string(max) + why + ")");
      return std::nullopt;
    }
    return text;
  }

  // -- conversations and the AI (issue 5) -------------------------------------

  /// `ai:` (global, or a tenant's, which replaces the global one whole):
  /// which AI answers. `provider` is required; openai also needs `base_url`
  /// and `model`. Keys left out keep the defaults of `engine::ai_settings`.
  void read_ai(const entry& e, engine::ai_settings& out) {
    auto s = subsection(e, {{"provider", "base_url", "model", "api_key",
                             "timeout", "max_attempts", "usd_per_1k_prompt",
                             "usd_per_1k_completion"},
                            {"provider"}});
    if (!s) {
      return;
    }
    bool openai = false;
    if (auto* x = find(*s, "provider")) {
      if (auto v = scalar(*x)) {
        const std::vector<std::string> known{"offline", "openai"};
        if (std::find(known.begin(), known.end(), *v) == known.end()) {
          error(*x, "unknown AI provider " + quote_value(*v)
                      + workflows::did_you_mean(*v, known)
                      + "; known providers: " + workflows::join(known));
        } else {
          out.provider = *v;
          openai = *v == "openai";
        }
      }
    }
    if (auto* x = find(*s, "base_url")) {
      read_base_url(*x, out.base_url);
    } else if (openai) {
      out_.error(e.mark(), e.path,
                 "missing required key 'base_url' (provider openai needs the "
                 "API's base URL, e.g. https://api.openai.com/v1)");
    }
    if (auto* x = find(*s, "model")) {
      if (auto v = non_empty(*x)) {
        constexpr std::size_t max = 256;
        if (auto n = workflows::code_points(*v); n > max) {
          error(*x, "the model name is " + std::to_string(n)
                      + " characters long (at most " + std::to_string(max)
                      + ")");
        } else if (has_control(*v)) {
          error(*x, "the model name must not contain control characters");
        } else {
          out.model = *v;
        }
      }
    } else if (openai) {
      out_.error(e.mark(), e.path,
                 "missing required key 'model' (provider openai needs the "
                 "model's name, e.g. gpt-4o-mini)");
    }
    if (auto* x = find(*s, "api_key")) {
      // A secret: never echoed. It travels in an HTTP header, so no spaces
      // or line breaks (a stray newline from a key file is a common slip).
      if (auto v = scalar(*x)) {
        if (v->empty()) {
          error(*x, "must not be empty (leave api_key out when the server "
                    "needs no key)");
        } else if (std::any_of(v->begin(), v->end(), [](char c) {
                     auto u = static_cast<unsigned char>(c);
                     return u <= 0x20 || u == 0x7f;
                   })) {
          error(*x, "must not contain spaces, line breaks or control "
                    "characters");
        } else {
          out.api_key = *v;
        }
      }
    }
    if (auto* x = find(*s, "timeout")) {
      if (auto d = duration_between(*x, std::chrono::seconds{1},
                                    std::chrono::seconds{120})) {
        out.timeout = *d;
      }
    }
    if (auto* x = find(*s, "max_attempts")) {
      if (auto n = whole_number(*x, 1, 5)) {
        out.max_attempts = static_cast<std::int32_t>(*n);
      }
    }
    if (auto* x = find(*s, "usd_per_1k_prompt")) {
      if (auto v = price(*x)) {
        out.usd_per_1k_prompt = *v;
      }
    }
    if (auto* x = find(*s, "usd_per_1k_completion")) {
      if (auto v = price(*x)) {
        out.usd_per_1k_completion = *v;
      }
    }
  }

  /// The base of an OpenAI-compatible API: an http(s) URL without query or
  /// fragment, trailing slashes dropped; ringback appends /chat/completions.
  void read_base_url(const entry& e, std::string& out) {
    auto x = scalar(e);
    if (!x) {
      return;
    }
    // The URL may carry credentials (user:password@): never echo those.
    auto shown = quote_value(redact_url(*x));
    auto u = http_url(*x);
    if (!u) {
      error(e, shown
                 + " is not an http:// or https:// URL (without ?query or "
                   "#fragment)");
      return;
    }
    const std::string endpoint = "/chat/completions";
    if (u->size() >= endpoint.size()
        && lower(u->substr(u->size() - endpoint.size())) == endpoint) {
      error(e, shown
                 + " is the endpoint itself: give the base URL without "
                   "/chat/completions (e.g. https://api.openai.com/v1)");
      return;
    }
    out = *u;
  }

  /// `profile:`: what the AI may say about the business. Every key is
  /// optional; `name` and `phone` default to the tenant's (set by the
  /// caller).
  void read_profile(const entry& e, engine::business_profile& p) {
    auto s = subsection(e, {{"name", "phone", "services", "hours",
                             "service_area", "booking_link", "notes"},
                            {}});
    if (!s) {
      return;
    }
    if (auto* x = find(*s, "name")) {
      if (auto v = profile_text(*x)) {
        p.name = *v;
      }
    }
    if (auto* x = find(*s, "phone")) {
      if (auto v = phone(*x)) {
        p.phone = *v;
      }
    }
    if (auto* x = find(*s, "services")) {
      read_services(*x, p.services);
    }
    if (auto* x = find(*s, "hours")) {
      if (auto v = profile_text(*x)) {
        p.hours = *v;
      }
    }
    if (auto* x = find(*s, "service_area")) {
      if (auto v = profile_text(*x)) {
        p.service_area = *v;
      }
    }
    if (auto* x = find(*s, "booking_link")) {
      if (auto v = profile_text(*x)) {
        if (v->empty() || is_link(*v)) {
          p.booking_link = *v;
        } else {
          error(*x, quote_value(*v)
                      + " is not an http:// or https:// link (e.g. "
                        "https://acme.example/book)");
        }
      }
    }
    if (auto* x = find(*s, "notes")) {
      if (auto v = profile_text(*x)) {
        p.notes = *v;
      }
    }
  }

  void read_services(const entry& e, std::vector<std::string>& out) {
    std::map<std::string, int> seen; // service -> line
    for_each_scalar(
      e, "a list like [\"water heaters\", \"drain cleaning\"]",
      "a service name", [&](const entry& item) {
        auto text = profile_text(item);
        if (!text) {
          return;
        }
        if (text->empty()) {
          error(item, "must not be empty");
          return;
        }
        auto [first, added] = seen.emplace(*text, item.mark().line + 1);
        if (!added) {
          error(item, quote_value(*text) + " is already listed (line "
                        + std::to_string(first->second) + ")");
          return;
        }
        out.push_back(*text);
      });
  }

  /// `conversations:`: the owner-reply window, batching, idle close and the
  /// AI's limits. Every key is optional; absent keys keep the defaults of
  /// `engine::conversation_settings`.
  void read_conversations(const entry& e, engine::conversation_settings& c) {
    using std::chrono::hours;
    using std::chrono::minutes;
    using std::chrono::seconds;
    auto s = subsection(e, {{"owner_reply_window", "batch", "idle_close",
                             "max_ai_replies", "max_reply_chars",
                             "page_by_call"},
                            {}});
    if (!s) {
      return;
    }
    bool others_ok = true; // compare idle_close only with valid values
    if (auto* x = find(*s, "owner_reply_window")) {
      if (auto d = duration_between(*x, seconds{5}, hours{1})) {
        c.owner_reply_window = *d;
      } else {
        others_ok = false;
      }
    }
    if (auto* x = find(*s, "batch")) {
      if (auto d = duration_between(*x, seconds{0}, seconds{60})) {
        c.batch = *d;
      } else {
        others_ok = false;
      }
    }
    if (auto* x = find(*s, "idle_close")) {
      if (auto d = duration_between(*x, minutes{1}, hours{24 * 30})) {
        // Closing before the AI could take over (or answer a batch) would
        // make the window meaningless.
        if (others_ok && *d <= c.owner_reply_window) {
          error(*x, "must be longer than owner_reply_window ("
                      + format_ms(c.owner_reply_window)
                      + "): the conversation would close before the AI "
                        "could answer");
        } else if (others_ok && *d <= c.batch) {
          error(*x, "must be longer than batch (" + format_ms(c.batch) + ")");
        } else {
          c.idle_close = *d;
        }
      }
    }
    if (auto* x = find(*s, "max_ai_replies")) {
      if (auto n = whole_number(*x, 0, 100)) {
        c.max_ai_replies = static_cast<std::int32_t>(*n);
      }
    }
    if (auto* x = find(*s, "max_reply_chars")) {
      if (auto n = whole_number(*x, 40, 1600)) {
        c.max_reply_chars = static_cast<std::size_t>(*n);
      }
    }
    if (auto* x = find(*s, "page_by_call")) {
      if (auto v = scalar(*x)) {
        if (*v == "true") {
          c.page_by_call = true;
        } else if (*v == "false") {
          c.page_by_call = false;
        } else {
          error(*x, "expected true or false, got " + quote_value(*v));
        }
      }
    }
  }

  /// A duration from `min` to `max`. When `min` is 0, `0` (with or without a
  /// unit) is allowed too.
  std::optional<std::chrono::milliseconds>
  duration_between(const entry& e, std::chrono::milliseconds min,
                   std::chrono::milliseconds max) {
    auto x = scalar(e);
    if (!x) {
      return std::nullopt;
    }
    auto [number, unit] = number_and_unit(*x);
    bool zero = !number.empty()
                && number.find_first_not_of('0') == std::string_view::npos
                && (unit.empty() || duration_unit(unit) != 0);
    std::optional<std::chrono::milliseconds> d;
    if (zero) {
      d = std::chrono::milliseconds{0};
    } else if (x->size() > 1 && x->front() == '-'
               && parse_duration(std::string_view(*x).substr(1))) {
      error(e, quote_value(*x) + " must not be negative");
      return std::nullopt;
    } else {
      d = duration_of(e, *x);
      if (!d) {
        return std::nullopt;
      }
    }
    if (*d < min) {
      error(e, quote_value(*x) + " is too short (at least " + format_ms(min)
                 + ")");
      return std::nullopt;
    }
    if (*d > max) {
      error(e,
            quote_value(*x) + " is too long (at most " + format_ms(max) + ")");
      return std::nullopt;
    }
    return d;
  }

  /// A whole number from `min` to `max`.
  std::optional<std::int64_t> whole_number(const entry& e, std::int64_t min,
                                           std::int64_t max) {
    auto x = scalar(e);
    if (!x) {
      return std::nullopt;
    }
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(x->data(), x->data() + x->size(), n);
    if (ec != std::errc{} || end != x->data() + x->size() || n < min
        || n > max) {
      error(e, "expected a whole number from " + std::to_string(min) + " to "
                 + std::to_string(max) + ", got " + quote_value(*x));
      return std::nullopt;
    }
    return n;
  }

  /// A price in US dollars per 1000 tokens: a finite number, 0 or more.
  std::optional<double> price(const entry& e) {
    auto x = scalar(e);
    if (!x) {
      return std::nullopt;
    }
    double v = 0;
    auto [end, ec] = std::from_chars(x->data(), x->data() + x->size(), v);
    if (ec != std::errc{} || end != x->data() + x->size() || !std::isfinite(v)
        || v < 0) {
      error(e, "expected a price in US dollars per 1000 tokens (a number, 0 "
               "or more, e.g. 0.00015), got "
                 + quote_value(*x));
      return std::nullopt;
    }
    return v;
  }

  /// A profile text: at most 1600 characters; an empty value is "".
  std::optional<std::string> profile_text(const entry& e) {
    return message_text(e, "");
  }

  static bool has_control(std::string_view x) {
    return std::any_of(x.begin(), x.end(), [](char c) {
      auto u = static_cast<unsigned char>(c);
      return u < 0x20 || u == 0x7f;
    });
  }

  /// "http(s)://host..." with anything after the host (a path, a query, a
  /// fragment) but no white space or control characters.
  static bool is_link(std::string_view x) {
    std::string_view rest;
    auto l = lower(x.substr(0, 8));
    if (l.rfind("http://", 0) == 0) {
      rest = x.substr(7);
    } else if (l.rfind("https://", 0) == 0) {
      rest = x.substr(8);
    } else {
      return false;
    }
    auto host = rest.substr(0, rest.find_first_of("/?#"));
    return !host.empty() && host.front() != ':' && !has_control(x)
           && std::none_of(x.begin(), x.end(), [](char c) {
                return std::isspace(static_cast<unsigned char>(c)) != 0;
              });
  }

  /// An IANA name that exists in the time zone database ($TZDIR, default
  /// /usr/share/zoneinfo); without a database, anything shaped like
  /// Area/City (or UTC).
  bool check_timezone(const entry& e, const std::string& name) {
    const auto expected = " (expected an IANA name like America/Denver)";
    bool shaped = name.size() <= 64 && name.front() != '/' && name.back() != '/'
                  && name.find("//") == std::string::npos
                  && name.find("..") == std::string::npos
                  && std::all_of(name.begin(), name.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) != 0
                              || c == '_' || c == '-' || c == '+' || c == '/';
                     });
    if (!shaped) {
      error(e, quote_value(name) + " is not a time zone name" + expected);
      return false;
    }
    auto tzdir = env_ ? env_("TZDIR") : std::nullopt;
    fs::path db = tzdir && !tzdir->empty() ? *tzdir : "/usr/share/zoneinfo";
    std::error_code ec;
    if (!fs::is_directory(db, ec)) {
      bool area_city
        = name == "UTC"
          || (std::isupper(static_cast<unsigned char>(name.front())) != 0
              && name.find('/') != std::string::npos);
      if (!area_city) {
        error(e, quote_value(name) + " is not a time zone name" + expected);
      }
      return area_city;
    }
    auto file = db / name;
    if (fs::is_regular_file(file, ec)) {
      std::array<char, 4> magic{};
      std::ifstream in(file, std::ios::binary);
      if (in.read(magic.data(), magic.size())
          && std::memcmp(magic.data(), "TZif", 4) == 0) {
        return true;
      }
    }
    // Suggest a sibling: "America/Denvr" -> "America/Denver".
    std::vector<std::string> siblings;
    auto parent = file.parent_path();
    auto prefix = fs::path(name).parent_path().string();
    for (fs::directory_iterator it(parent, ec), end; !ec && it != end;
         it.increment(ec)) {
      auto leaf = it->path().filename().string();
      if (!prefix.empty()) {
        leaf.insert(0, prefix + '/');
      }
      siblings.push_back(std::move(leaf));
      if (siblings.size() > 1000) {
        break;
      }
    }
    std::sort(siblings.begin(), siblings.end());
    auto hint = workflows::did_you_mean(name, siblings);
    error(e, "unknown time zone " + quote_value(name)
               + (hint.empty() ? expected : hint));
    return false;
  }

  std::string_view text_;
  std::string base_dir_;
  const env_lookup& env_;
  reporter& out_;
  std::vector<std::string_view> lines_;
  engine::ai_settings global_ai_; ///< the global `ai:`, for the tenants
};

std::vector<std::string> to_strings(const std::vector<diagnostic>& xs) {
  std::vector<std::string> out;
  out.reserve(xs.size());
  for (const auto& x : xs) {
    out.push_back(workflows::to_string(x));
  }
  return out;
}

} // namespace

std::string listen_address::to_string() const {
  if (host.find(':') != std::string::npos) {
    return "[" + host + "]:" + std::to_string(port);
  }
  return host + ":" + std::to_string(port);
}

std::optional<std::string> process_env(const std::string& name) {
  // Read at start-up, before any thread may call setenv.
  if (const char* x
      = std::getenv(name.c_str())) { // NOLINT(concurrency-mt-unsafe)
    return std::string(x);
  }
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view x) {
  auto [number, unit] = number_and_unit(x);
  auto per = duration_unit(unit);
  if (number.empty() || number.size() > 9 || per == 0) {
    return std::nullopt;
  }
  std::int64_t n = std::strtoll(std::string(number).c_str(), nullptr, 10);
  if (n <= 0) {
    return std::nullopt;
  }
  return std::chrono::milliseconds(n * per);
}

std::optional<std::size_t> parse_size(std::string_view x) {
  auto [number, unit] = number_and_unit(x);
  auto per = size_unit(unit);
  if (number.empty() || number.size() > 12 || per == 0) {
    return std::nullopt;
  }
  auto n = std::strtoull(std::string(number).c_str(), nullptr, 10);
  // At most 1 TiB: beyond any body limit and far from overflow.
  if (n == 0 || n > (std::uint64_t{1} << 40) / per) {
    return std::nullopt;
  }
  return static_cast<std::size_t>(n * per);
}

double default_mps(engine::number_kind kind) {
  switch (kind) {
    case engine::number_kind::long_code:
      return 1;
    case engine::number_kind::toll_free:
      return 3;
    case engine::number_kind::short_code:
      return 100;
  }
  return 1;
}

config_result
load_config_string(const std::string& text, const std::string& display_name,
                   const std::string& base_dir, const env_lookup& env) {
  config_result result;
  std::vector<diagnostic> diags;
  reporter out(display_name, diags);
  try {
    std::error_code ec;
    auto base = fs::absolute(base_dir.empty() ? "." : base_dir, ec)
                  .lexically_normal()
                  .string();
    config_reader reader(text, base, env, out);
    auto c = reader.read();
    if (c && diags.empty()) {
      c->source = display_name;
      result.value = std::move(c);
    }
  } catch (const std::exception& e) {
    out.error_at(0, 0, "",
                 std::string("internal error while loading: ") + e.what());
  }
  workflows::sort_by_position(diags);
  result.errors = to_strings(diags);
  if (!result.errors.empty()) {
    result.value.reset();
  }
  return result;
}

config_result load_config(const std::string& path) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (!ec && size > workflows::yaml_limits{}.max_bytes) {
    return {std::nullopt,
            {path + ": error: the file is too large (" + std::to_string(size)
             + " bytes)"}};
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    auto why = std::generic_category().message(errno);
    return {std::nullopt, {path + ": error: cannot read file: " + why}};
  }
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  auto base = fs::absolute(path, ec).parent_path().string();
  return load_config_string(text, path, base);
}

std::string describe(const config& c) {
  std::string out = "config " + c.source + ":";
  auto add = [&out](std::string_view key, std::string_view value) {
    out += ' ';
    out += key;
    out += '=';
    out += value;
  };
  auto ms = [](std::chrono::milliseconds x) {
    return std::to_string(x.count()) + "ms";
  };
  add("listen", c.listen.to_string());
  add("public_url", c.public_url);
  add("node_id", c.node_id);
  add("store", redact_url(c.store));
  add("kv", redact_url(c.kv));
  add("workflows", c.workflows);
  add("http.threads", std::to_string(c.http.threads));
  add("http.max_body", std::to_string(c.http.max_body));
  add("http.answer_deadline", ms(c.http.answer_deadline));
  add("twilio.api_url", c.twilio.api_url);
  add("twilio.connections", std::to_string(c.twilio.connections));
  add("twilio.account_sid", c.twilio.account_sid);
  add("twilio.auth_token", "***");
  add("calls.ring_timeout", ms(c.calls.ring_timeout));
  add("calls.fallback_grace", ms(c.calls.fallback_grace));
  add("calls.recheck_interval", ms(c.calls.recheck_interval));
  add("calls.passivate_after",
      c.calls.passivate_after ? ms(*c.calls.passivate_after) : "off");
  add("ai.provider", c.ai.provider);
  if (c.ai.provider != "offline") {
    add("ai.base_url", redact_url(c.ai.base_url));
    add("ai.model", c.ai.model);
    add("ai.api_key", c.ai.api_key.empty() ? "none" : "***");
    add("ai.timeout", ms(c.ai.timeout));
    add("ai.max_attempts", std::to_string(c.ai.max_attempts));
  }
  std::string tenants;
  for (const auto& t : c.tenants) {
    if (!tenants.empty()) {
      tenants += ',';
    }
    tenants += t.id;
    tenants += '(';
    tenants += std::to_string(t.numbers.size());
    tenants += " numbers, ai ";
    tenants += t.ai.provider;
    if (t.ai.provider != "offline") {
      tenants += ' ';
      tenants += t.ai.model;
    }
    tenants += ')';
  }
  add("tenants", tenants);
  return out;
}

} // namespace ringback::app
