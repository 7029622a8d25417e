// The integration steps: outbound HTTP, logs, contact tags.
#include "ringback/workflows/diagnostic.hpp"
#include "ringback/workflows/language.hpp"
#include "ringback/workflows/yaml_source.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>

namespace ringback::workflows {

namespace {

namespace json = boost::json;

/// Most variables one HTTP response may add (JSON flattened).
constexpr std::size_t max_json_vars = 200;
constexpr std::size_t max_json_depth = 8;
constexpr std::size_t max_json_text = 1024;
/// `steps.<id>.body` keeps at most this much of the body.
constexpr std::size_t max_body_var = 8192;

json::value render_json(const json_template& t, const context& vars,
                        std::vector<std::string>& notes) {
  switch (t.what) {
    case json_template::kind::null:
      return nullptr;
    case json_template::kind::boolean:
      return t.flag;
    case json_template::kind::number:
      // Whole numbers as integers: Boost.JSON writes the double 2 as "2E0".
      if (std::trunc(t.number) == t.number && std::fabs(t.number) < 9e15)
        return static_cast<std::int64_t>(t.number);
      return t.number;
    case json_template::kind::string: {
      auto r = t.text.render(vars);
      if (!r.missing.empty())
        notes.push_back("missing variables rendered empty: " + join(r.missing));
      return json::string(r.text);
    }
    case json_template::kind::array: {
      json::array a;
      for (const auto& x : t.items)
        a.push_back(render_json(x, vars, notes));
      return a;
    }
    case json_template::kind::object: {
      json::object o;
      for (const auto& [k, x] : t.members)
        o[k] = render_json(x, vars, notes);
      return o;
    }
  }
  return nullptr;
}

void flatten(const json::value& v, const std::string& prefix, std::size_t depth,
             context& out, std::size_t& count) {
  if (count >= max_json_vars || depth > max_json_depth)
    return;
  switch (v.kind()) {
    case json::kind::object:
      for (const auto& [k, x] : v.get_object())
        flatten(x, prefix + "." + std::string(k), depth + 1, out, count);
      return;
    case json::kind::array: {
      std::size_t i = 0;
      for (const auto& x : v.get_array())
        flatten(x, prefix + "." + std::to_string(i++), depth + 1, out, count);
      return;
    }
    case json::kind::string: {
      std::string s(v.get_string());
      truncate_utf8(s, max_json_text);
      out[prefix] = value{std::move(s)};
      break;
    }
    case json::kind::bool_:
      out[prefix] = value{v.get_bool()};
      break;
    case json::kind::int64:
      out[prefix] = value{static_cast<double>(v.get_int64())};
      break;
    case json::kind::uint64:
      out[prefix] = value{static_cast<double>(v.get_uint64())};
      break;
    case json::kind::double_:
      out[prefix] = value{v.get_double()};
      break;
    case json::kind::null:
      out[prefix] = value{};
      break;
  }
  ++count;
}

bool has_header(const std::vector<std::pair<std::string, std::string>>& hs,
                std::string_view name) {
  return std::any_of(hs.begin(), hs.end(), [&](const auto& h) {
    return h.first.size() == name.size()
           && std::equal(
             h.first.begin(), h.first.end(), name.begin(), [](char a, char b) {
               return std::tolower(static_cast<unsigned char>(a))
                      == std::tolower(static_cast<unsigned char>(b));
             });
  });
}

step_result execute_http(const step& s, step_frame& f) {
  std::vector<std::string> notes;
  http_action a;
  a.step_id = s.display_id();
  a.method = s.field("method")->text.source();
  a.url = f.render(*s.field("url"), notes, 2048);
  if (a.url.rfind("https://", 0) != 0 && a.url.rfind("http://", 0) != 0)
    return {step_outcome::failed, "url '" + a.url + "' is not an http(s) URL"};
  if (const auto* h = s.field("headers"))
    for (const auto& [name, t] : h->map)
      a.headers.emplace_back(name, t.render(f.vars, 1024).text);
  if (const auto* j = s.field("json")) {
    a.body = json::serialize(render_json(j->json, f.vars, notes));
    if (!has_header(a.headers, "Content-Type"))
      a.headers.emplace_back("Content-Type", "application/json");
  } else if (const auto* b = s.field("body")) {
    a.body = f.render(*b, notes, 65536);
  }
  a.timeout = std::chrono::milliseconds{s.field("timeout")->number};
  a.max_attempts = static_cast<std::int32_t>(s.field("retries")->number) + 1;
  std::string detail = a.method + " " + a.url;
  if (!notes.empty())
    detail += "; " + join(notes, "; ");
  f.fx.http = std::move(a);
  step_result r{step_outcome::ok, std::move(detail)};
  r.suspend = "http";
  return r;
}

std::string resume_http(const step& s, const resume_event& ev, step_frame& f,
                        std::string& detail) {
  const bool ok = ev.error.empty() && ev.http_status >= 200
                  && ev.http_status < 300;
  detail = ev.error.empty() ? "HTTP " + std::to_string(ev.http_status)
                            : "no response: " + ev.error;
  detail += " after " + std::to_string(ev.attempts) + " attempt(s), "
            + std::to_string(ev.elapsed_ms) + " ms";
  if (s.id.empty())
    return {};
  const std::string p = "steps." + s.id + ".";
  f.vars[p + "status"] = value{ev.http_status};
  f.vars[p + "ok"] = value{ok};
  f.vars[p + "error"] = value{ev.error};
  std::string body = ev.body;
  truncate_utf8(body, max_body_var);
  f.vars[p + "body"] = value{body};
  boost::system::error_code ec;
  auto parsed = json::parse(ev.body, ec);
  if (!ec) {
    std::size_t count = 0;
    flatten(parsed, p + "json", 0, f.vars, count);
    if (count >= max_json_vars)
      detail += "; JSON cut to " + std::to_string(max_json_vars) + " values";
  }
  return {};
}

step_result execute_log(const step& s, step_frame& f) {
  std::vector<std::string> notes;
  auto text = f.render(*s.field("message"), notes, 2048);
  f.fx.logs.push_back({s.display_id(), s.field("level")->text.source(), text});
  return {step_outcome::ok, join(notes, "; ")};
}

bool is_tag(std::string_view x) {
  return !x.empty() && x.size() <= 64
         && std::all_of(x.begin(), x.end(), [](char c) {
              return std::isalnum(static_cast<unsigned char>(c)) != 0
                     || c == '_' || c == '-' || c == ':';
            });
}

step_result execute_tag_contact(const step& s, step_frame& f) {
  std::vector<std::string> notes;
  auto tag = f.render(*s.field("tag"), notes, 128);
  auto phone = f.render(*s.field("phone"), notes, 64);
  if (!is_tag(tag))
    return {step_outcome::failed,
            "tag '" + tag + "' must be 1-64 letters, digits, '_', '-' or ':'"};
  if (phone.empty() || phone[0] != '+')
    return {step_outcome::skipped, "no contact number to tag"};
  f.fx.tags.push_back({s.display_id(), phone, tag});
  return {step_outcome::ok, phone + " tagged " + tag};
}

} // namespace

void add_integration_steps(step_registry& r) {
  {
    step_spec s;
    s.type = "http";
    s.family = step_family::integration;
    s.doc = "Call a web API (a CRM, a booking system). The host must be in "
            "the tenant's `http_allow` list; redirects are not followed. The "
            "run waits for the response; with an id, later steps read "
            "steps.<id>.status, .ok, .body, .error and .json.<path> (a JSON "
            "response flattened, e.g. steps.crm.json.customer.name).";
    s.fields = {
      {"url", field_kind::text, true, "", "http(s) URL."},
      {"method",
       field_kind::choice,
       false,
       "GET",
       "GET, POST, PUT, PATCH or DELETE; POST when a body or json is given.",
       0,
       0,
       {"GET", "POST", "PUT", "PATCH", "DELETE"}},
      {"headers", field_kind::text_map, false, "",
       "Request headers (templates)."},
      {"json", field_kind::json, false, "",
       "A JSON body written as YAML; its strings are templates."},
      {"body", field_kind::text, false, "", "A raw body (template)."},
      {"timeout", field_kind::duration, false, "5s", "Per attempt (1s to 30s).",
       1'000, 30'000},
      {"retries", field_kind::integer, false, "0",
       "Extra attempts (0-5) on connection failures, 429 and 503; also on "
       "timeouts, 500, 502 and 504 for GET, PUT, DELETE or a request with "
       "an Idempotency-Key header (a POST the server may have acted on is "
       "not sent again).",
       0, 5},
    };
    s.result_fields = {"status", "ok", "body", "error", "json.*"};
    s.execute = execute_http;
    s.resume = resume_http;
    s.example = "- id: crm\n  http:\n    method: POST\n    url: "
                "https://crm.example.com/leads\n    json:\n      phone: \"{{ "
                "call.from }}\"\n      source: missed_call";
    r.add(std::move(s));
  }
  {
    step_spec s;
    s.type = "log";
    s.family = step_family::integration;
    s.doc = "Write a line to the service log and the run's record.";
    s.primary = "message";
    s.fields = {
      {"message", field_kind::text, true, "", "The text."},
      {"level",
       field_kind::choice,
       false,
       "info",
       "info, warn or error.",
       0,
       0,
       {"info", "warn", "error"}},
    };
    s.execute = execute_log;
    s.example = "- log: \"after-hours call from {{ call.from }}\"";
    r.add(std::move(s));
  }
  {
    step_spec s;
    s.type = "tag_contact";
    s.family = step_family::integration;
    s.doc = "Tag the customer in the tenant's contacts (kept once).";
    s.primary = "tag";
    s.fields = {
      {"tag", field_kind::text, true, "",
       "1-64 letters, digits, '_', '-' or ':'."},
      {"phone", field_kind::text, false, "{{ contact.phone }}",
       "Whose contact; default: the customer."},
    };
    s.execute = execute_tag_contact;
    s.example = "- tag_contact: emergency";
    r.add(std::move(s));
  }
}

} // namespace ringback::workflows
