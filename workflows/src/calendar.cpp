#include "ringback/workflows/calendar.hpp"

#include "calendar_text.hpp"

#include "ringback/workflows/diagnostic.hpp"

#include <cctz/civil_time.h>
#include <cctz/time_zone.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <limits>

namespace ringback::workflows {

namespace {

using calendar_text::column_of;
using calendar_text::is_blank;
using calendar_text::is_digit;
using calendar_text::lower;

std::string quoted(std::string_view x) {
  return calendar_text::quoted(x, 64);
}


using engine::epoch_ms;
using seconds_point = cctz::time_point<cctz::seconds>;

constexpr std::array<const char*, 7> short_days{"mon", "tue", "wed", "thu",
                                                "fri", "sat", "sun"};
constexpr std::array<const char*, 7> full_days{
  "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"};
constexpr std::array<const char*, 12> month_names{
  "January", "February", "March",     "April",   "May",      "June",
  "July",    "August",   "September", "October", "November", "December"};







/// A trimmed piece of a text and the byte position where it starts.
struct piece {
  std::string_view text;
  std::size_t pos = 0;
};

piece trim(std::string_view text, std::size_t pos) {
  std::size_t b = 0;
  while (b < text.size() && is_blank(text[b])) {
    ++b;
  }
  std::size_t e = text.size();
  while (e > b && is_blank(text[e - 1])) {
    --e;
  }
  return {text.substr(b, e - b), pos + b};
}

/// Splits `p` at every `sep`, trimming each part.
std::vector<piece> split(const piece& p, char sep) {
  std::vector<piece> out;
  std::size_t start = 0;
  while (true) {
    auto at = p.text.find(sep, start);
    auto end = at == std::string_view::npos ? p.text.size() : at;
    out.push_back(trim(p.text.substr(start, end - start), p.pos + start));
    if (at == std::string_view::npos) {
      break;
    }
    start = at + 1;
  }
  return out;
}

template <class T>
calendar_parse_result<T>
fail(std::string_view whole, std::size_t pos, std::string message) {
  calendar_parse_result<T> r;
  r.error = std::move(message);
  r.column = column_of(whole, pos);
  return r;
}

std::string two_digits(int x) {
  std::array<char, 16> buf{};
  std::snprintf(buf.data(), buf.size(), "%02d", x);
  return buf.data();
}

bool leap_year(std::int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int days_in_month(std::int64_t y, int m) {
  static constexpr std::array<int, 12> days{31, 28, 31, 30, 31, 30,
                                            31, 31, 30, 31, 30, 31};
  return m == 2 && leap_year(y) ? 29 : days[static_cast<std::size_t>(m - 1)];
}

// -- time helpers -------------------------------------------------------------

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  auto q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) {
    --q;
  }
  return q;
}

seconds_point to_point(epoch_ms t) {
  return seconds_point(cctz::seconds(floor_div(t, 1000)));
}

epoch_ms to_ms(const seconds_point& p) {
  constexpr auto max = std::numeric_limits<epoch_ms>::max();
  constexpr auto min = std::numeric_limits<epoch_ms>::min();
  auto s = static_cast<std::int64_t>(p.time_since_epoch().count());
  if (s > max / 1000) {
    return max;
  }
  if (s < min / 1000) {
    return min;
  }
  return s * 1000;
}

int weekday_of(const cctz::civil_day& d) {
  return static_cast<int>(cctz::get_weekday(d)); // monday = 0
}

local_time make_local(const cctz::civil_second& cs) {
  local_time x;
  x.year = static_cast<int>(cs.year());
  x.month = cs.month();
  x.day = cs.day();
  x.hour = cs.hour();
  x.minute = cs.minute();
  x.second = cs.second();
  cctz::civil_day d(cs);
  x.weekday = weekday_of(d);
  x.yday = cctz::get_yearday(d);
  return x;
}

// -- parsing pieces -----------------------------------------------------------

/// "H:MM" or "HH:MM" -> minutes after midnight, 0-1440 (24:00 allowed here;
/// callers decide where it may stand).
calendar_parse_result<int> parse_clock(std::string_view whole, const piece& p) {
  auto s = p.text;
  auto colon = s.find(':');
  bool shaped = colon != std::string_view::npos && (colon == 1 || colon == 2)
                && s.size() == colon + 3
                && std::all_of(s.begin(), s.begin() + colon, is_digit)
                && std::all_of(s.begin() + colon + 1, s.end(), is_digit);
  if (!shaped) {
    return fail<int>(whole, p.pos,
                     quoted(s) + " is not a time (expected HH:MM, e.g. 08:00)");
  }
  int h = std::stoi(std::string(s.substr(0, colon)));
  int m = std::stoi(std::string(s.substr(colon + 1)));
  if (h > 24) {
    return fail<int>(whole, p.pos,
                     "hour " + std::string(s.substr(0, colon))
                       + " is out of range 00-23");
  }
  if (m > 59) {
    return fail<int>(whole, p.pos + colon + 1,
                     "minute " + std::string(s.substr(colon + 1))
                       + " is out of range 00-59");
  }
  if (h == 24 && m != 0) {
    return fail<int>(whole, p.pos,
                     quoted(s) + " is not a time (24:00 is the latest)");
  }
  calendar_parse_result<int> r;
  r.value = h * 60 + m;
  return r;
}

int day_index(std::string_view word) {
  auto w = lower(word);
  for (std::size_t i = 0; i < 7; ++i) {
    if (w == short_days[i] || w == full_days[i]) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

std::string unknown_day(std::string_view word) {
  static const std::vector<std::string> candidates{
    "mon",      "tue",    "wed",      "thu",     "fri",
    "sat",      "sun",    "monday",   "tuesday", "wednesday",
    "thursday", "friday", "saturday", "sunday"};
  return "unknown day " + quoted(word) + did_you_mean(word, candidates)
         + "; days are mon, tue, wed, thu, fri, sat, sun";
}

} // namespace

const char* weekday_name(int weekday) {
  if (weekday < 0 || weekday > 6) {
    return "";
  }
  return short_days[static_cast<std::size_t>(weekday)];
}

// -- time_zone ----------------------------------------------------------------

struct time_zone::impl {
  std::string name;
  cctz::time_zone zone;
};

time_zone::time_zone() {
  static const auto utc
    = std::make_shared<const impl>(impl{"UTC", cctz::utc_time_zone()});
  impl_ = utc;
}

time_zone::time_zone(std::shared_ptr<const impl> x) : impl_(std::move(x)) {
  // nop
}

std::optional<time_zone> time_zone::load(std::string_view iana) {
  if (iana == "UTC") {
    return time_zone{};
  }
  // Names only: never a path that reaches outside the zone database.
  bool shaped = !iana.empty() && iana.size() <= 128 && iana.front() != '/'
                && iana.back() != '/' && iana.find("//") == std::string::npos
                && std::all_of(iana.begin(), iana.end(), [](char c) {
                     return std::isalnum(static_cast<unsigned char>(c)) != 0
                            || c == '_' || c == '-' || c == '+' || c == '/';
                   });
  if (!shaped || iana == "localtime") {
    return std::nullopt;
  }
  try {
    cctz::time_zone z;
    if (!cctz::load_time_zone(std::string(iana), &z)) {
      return std::nullopt;
    }
    return time_zone{std::make_shared<const impl>(impl{std::string(iana), z})};
  } catch (const std::exception&) { // allocation failure while reading
    return std::nullopt;
  }
}

const std::string& time_zone::name() const {
  return impl_->name;
}

local_time time_zone::to_local(epoch_ms t) const {
  return make_local(cctz::convert(to_point(t), impl_->zone));
}

epoch_ms time_zone::from_local(int y, int mo, int d, int h, int mi,
                               int s) const {
  return from_local_both(y, mo, d, h, mi, s).first;
}

std::pair<epoch_ms, epoch_ms>
time_zone::from_local_both(int y, int mo, int d, int h, int mi, int s) const {
  auto cl = impl_->zone.lookup(cctz::civil_second(y, mo, d, h, mi, s));
  using kind = cctz::time_zone::civil_lookup;
  auto first = cl.kind == kind::SKIPPED ? cl.trans : cl.pre;
  auto second = cl.kind == kind::REPEATED ? cl.post : first;
  return {to_ms(first), to_ms(second)};
}

std::vector<epoch_ms> time_zone::transitions(epoch_ms from, epoch_ms to) const {
  std::vector<epoch_ms> out;
  auto at = to_point(from);
  cctz::time_zone::civil_transition tr;
  // A handful a year at most; the cap only guards against a broken zone.
  while (out.size() < 64 && impl_->zone.next_transition(at, &tr)) {
    auto instant = impl_->zone.lookup(tr.to).trans;
    if (instant <= at || to_ms(instant) > to) {
      break;
    }
    if (to_ms(instant) > from) {
      out.push_back(to_ms(instant));
    }
    at = instant;
  }
  return out;
}

// -- parsers ------------------------------------------------------------------

calendar_parse_result<day_set> parse_day_spec(std::string_view text) {
  auto all = trim(text, 0);
  if (all.text.empty()) {
    return fail<day_set>(text, all.pos,
                         "expected a day (mon..sun), a range like mon-fri or "
                         "a list like mon,wed,fri");
  }
  day_set out;
  for (const auto& item : split(all, ',')) {
    if (item.text.empty()) {
      return fail<day_set>(text, item.pos, "empty item in the list of days");
    }
    auto dash = item.text.find('-');
    auto first = trim(item.text.substr(0, dash), item.pos);
    auto last = first;
    if (dash != std::string_view::npos) {
      last = trim(item.text.substr(dash + 1), item.pos + dash + 1);
      if (first.text.empty() || last.text.empty()) {
        return fail<day_set>(text, item.pos,
                             "incomplete range " + quoted(item.text)
                               + " (expected a day on both sides of '-')");
      }
    }
    int a = day_index(first.text);
    if (a < 0) {
      return fail<day_set>(text, first.pos, unknown_day(first.text));
    }
    int b = day_index(last.text);
    if (b < 0) {
      return fail<day_set>(text, last.pos, unknown_day(last.text));
    }
    // A range may wrap past Sunday: fri-mon is fri, sat, sun, mon.
    for (int d = a;; d = (d + 1) % 7) {
      if (out.has(d)) {
        return fail<day_set>(text, item.pos,
                             std::string(weekday_name(d)) + " is named twice");
      }
      out.mask = static_cast<std::uint8_t>(out.mask | (1u << d));
      if (d == b) {
        break;
      }
    }
  }
  calendar_parse_result<day_set> r;
  r.value = out;
  return r;
}

calendar_parse_result<std::vector<time_range>>
parse_time_ranges(std::string_view text) {
  using result = calendar_parse_result<std::vector<time_range>>;
  auto all = trim(text, 0);
  if (all.text.empty()) {
    return fail<std::vector<time_range>>(
      text, all.pos, "expected time ranges like 08:00-17:00, or closed");
  }
  if (lower(all.text) == "closed") {
    result r;
    r.value.emplace();
    return r;
  }
  struct parsed {
    time_range range;
    piece item;
  };
  std::vector<parsed> xs;
  for (const auto& item : split(all, ',')) {
    if (item.text.empty()) {
      return fail<std::vector<time_range>>(text, item.pos,
                                           "empty item in the list of ranges");
    }
    if (lower(item.text) == "closed") {
      return fail<std::vector<time_range>>(
        text, item.pos, "'closed' cannot be combined with ranges");
    }
    auto dash = item.text.find('-');
    if (dash == std::string_view::npos) {
      bool fancy_dash = item.text.find("\xE2\x80\x93") != std::string::npos
                        || item.text.find("\xE2\x80\x94") != std::string::npos;
      return fail<std::vector<time_range>>(
        text, item.pos,
        "expected a range like 08:00-17:00, got " + quoted(item.text)
          + (fancy_dash ? " (use a plain '-' between the times)" : ""));
    }
    auto from = trim(item.text.substr(0, dash), item.pos);
    auto to = trim(item.text.substr(dash + 1), item.pos + dash + 1);
    auto a = parse_clock(text, from);
    if (!a.ok()) {
      return result{std::nullopt, a.error, a.column};
    }
    if (*a.value == 1440) {
      return result{std::nullopt, "24:00 can only end a range",
                    column_of(text, from.pos)};
    }
    auto b = parse_clock(text, to);
    if (!b.ok()) {
      return result{std::nullopt, b.error, b.column};
    }
    if (*a.value == *b.value) {
      return result{std::nullopt,
                    quoted(item.text)
                      + " is an empty range (use 00:00-24:00 for the whole "
                        "day)",
                    column_of(text, item.pos)};
    }
    time_range r{*a.value, *b.value};
    if (r.end <= r.start) {
      r.end += 1440; // runs past midnight
    }
    xs.push_back({r, item});
  }
  std::stable_sort(xs.begin(), xs.end(), [](const auto& x, const auto& y) {
    return x.range.start < y.range.start;
  });
  for (std::size_t i = 1; i < xs.size(); ++i) {
    const auto& x = xs[i - 1];
    const auto& y = xs[i];
    if (y.range.start < x.range.end) {
      const auto& later = x.item.pos > y.item.pos ? x : y;
      const auto& earlier = x.item.pos > y.item.pos ? y : x;
      return result{std::nullopt,
                    quoted(later.item.text) + " overlaps "
                      + quoted(earlier.item.text),
                    column_of(text, later.item.pos)};
    }
  }
  result r;
  r.value.emplace();
  for (const auto& x : xs) {
    r.value->push_back(x.range);
  }
  return r;
}

calendar_parse_result<holiday> parse_holiday(std::string_view text) {
  auto p = trim(text, 0);
  auto s = p.text;
  auto digits = [&s](std::size_t from, std::size_t n) {
    return std::all_of(s.begin() + from, s.begin() + from + n, is_digit);
  };
  bool full = s.size() == 10 && digits(0, 4) && s[4] == '-' && digits(5, 2)
              && s[7] == '-' && digits(8, 2);
  bool yearly = s.size() == 5 && digits(0, 2) && s[2] == '-' && digits(3, 2);
  if (!full && !yearly) {
    return fail<holiday>(text, p.pos,
                         (s.empty() ? std::string("''") : quoted(s))
                           + " is not a date (expected YYYY-MM-DD or MM-DD, "
                             "e.g. 2026-12-25 or 12-25)");
  }
  auto number = [&s](std::size_t from, std::size_t n) {
    return std::stoi(std::string(s.substr(from, n)));
  };
  std::size_t month_at = full ? 5 : 0;
  holiday h;
  h.year = full ? number(0, 4) : 0;
  h.month = number(month_at, 2);
  h.day = number(month_at + 3, 2);
  if (full && h.year == 0) {
    return fail<holiday>(text, p.pos, "year 0000 is out of range 0001-9999");
  }
  if (h.month < 1 || h.month > 12) {
    return fail<holiday>(text, p.pos + month_at,
                         "month " + std::string(s.substr(month_at, 2))
                           + " is out of range 01-12");
  }
  const auto day_at = p.pos + month_at + 3;
  if (h.day < 1 || h.day > 31) {
    return fail<holiday>(text, day_at,
                         "day " + std::string(s.substr(month_at + 3, 2))
                           + " is out of range 01-31");
  }
  // Every year: February has 29 days (the holiday falls in leap years only).
  int limit = days_in_month(full ? h.year : 2000, h.month);
  if (h.day > limit) {
    auto month
      = std::string(month_names[static_cast<std::size_t>(h.month - 1)]);
    return fail<holiday>(text, day_at,
                         "day " + two_digits(h.day) + " does not exist in "
                           + month
                           + (full ? " " + std::string(s.substr(0, 4)) : "")
                           + " (" + std::to_string(limit) + " days)");
  }
  calendar_parse_result<holiday> r;
  r.value = h;
  return r;
}

calendar_parse_result<daily_window> parse_daily_window(std::string_view text) {
  auto p = trim(text, 0);
  if (auto comma = text.find(','); comma != std::string_view::npos) {
    return fail<daily_window>(text, comma,
                              "expected one range like 21:00-08:00, not a "
                              "list");
  }
  if (p.text.empty()) {
    return fail<daily_window>(text, p.pos, "expected a range like 21:00-08:00");
  }
  if (lower(p.text) == "closed") {
    return fail<daily_window>(
      text, p.pos, "expected a range like 21:00-08:00, got " + quoted(p.text));
  }
  auto ranges = parse_time_ranges(text);
  if (!ranges.ok()) {
    return {std::nullopt, ranges.error, ranges.column};
  }
  calendar_parse_result<daily_window> r;
  r.value = daily_window{ranges.value->front()};
  return r;
}

calendar_parse_result<std::string> parse_host_pattern(std::string_view text) {
  using result = calendar_parse_result<std::string>;
  auto p = trim(text, 0);
  auto s = p.text;
  if (s.empty()) {
    return fail<std::string>(
      text, p.pos,
      "expected a host name like api.example.com or *.example.com");
  }
  if (auto scheme = s.find("://"); scheme != std::string_view::npos) {
    return fail<std::string>(text, p.pos,
                             quoted(s)
                               + " has a scheme: give the host alone (e.g. "
                                 "api.example.com)");
  }
  if (s == "*") {
    return fail<std::string>(text, p.pos,
                             "'*' would allow every host; list the hosts (or "
                             "*.example.com)");
  }
  auto ipv6 = [](std::string_view x) {
    return std::count(x.begin(), x.end(), ':') >= 2
           && std::all_of(x.begin(), x.end(), [](char c) {
                return std::isxdigit(static_cast<unsigned char>(c)) != 0
                       || c == ':' || c == '.';
              });
  };
  if (s.front() == '[') {
    if (s.back() == ']' && ipv6(s.substr(1, s.size() - 2))) {
      return result{lower(s.substr(1, s.size() - 2)), {}, 0};
    }
    return fail<std::string>(text, p.pos,
                             quoted(s)
                               + " is not an IPv6 address in brackets "
                                 "(e.g. [::1], without a port)");
  }
  if (std::count(s.begin(), s.end(), ':') >= 2) {
    if (ipv6(s)) {
      return result{lower(s), {}, 0};
    }
    return fail<std::string>(text, p.pos,
                             quoted(s) + " is not an IPv6 address");
  }
  if (auto colon = s.find(':'); colon != std::string_view::npos) {
    return fail<std::string>(text, p.pos + colon,
                             "a host pattern has no port (the allow-list is "
                             "by host name)");
  }
  if (auto slash = s.find('/'); slash != std::string_view::npos) {
    return fail<std::string>(text, p.pos + slash,
                             "a host pattern has no path (give the host "
                             "alone, e.g. api.example.com)");
  }
  bool wild = s.size() >= 2 && s[0] == '*' && s[1] == '.';
  std::size_t body_at = wild ? 2 : 0;
  auto body = s.substr(body_at);
  if (!body.empty() && body.back() == '.') {
    body.remove_suffix(1); // the root label: "example.com." is example.com
  }
  if (body.empty()) {
    return fail<std::string>(text, p.pos,
                             "'*.' needs a domain after it (e.g. "
                             "*.example.com)");
  }
  if (body.size() > 253) {
    return fail<std::string>(text, p.pos,
                             "the host name is longer than 253 characters");
  }
  std::size_t label_at = 0;
  while (label_at <= body.size()) {
    auto end = body.find('.', label_at);
    if (end == std::string_view::npos) {
      end = body.size();
    }
    auto label = body.substr(label_at, end - label_at);
    const auto pos = p.pos + body_at + label_at;
    if (label.empty()) {
      return fail<std::string>(text, pos, "empty label in " + quoted(s));
    }
    for (std::size_t i = 0; i < label.size(); ++i) {
      char c = label[i];
      if (c == '*') {
        return fail<std::string>(text, pos + i,
                                 "'*' is only allowed as a leading '*.' (e.g. "
                                 "*.example.com)");
      }
      if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '-'
          && c != '_') {
        // Show a whole UTF-8 sequence, not its first byte.
        std::size_t n = 1;
        while (i + n < label.size()
               && (static_cast<unsigned char>(label[i + n]) & 0xC0) == 0x80) {
          ++n;
        }
        return fail<std::string>(text, pos + i,
                                 "invalid character "
                                   + quoted(label.substr(i, n))
                                   + " in a host name");
      }
    }
    if (label.size() > 63) {
      return fail<std::string>(text, pos,
                               "a label is longer than 63 characters");
    }
    if (label.front() == '-' || label.back() == '-') {
      return fail<std::string>(text, pos,
                               "a label cannot start or end with '-'");
    }
    label_at = end + 1;
  }
  return result{(wild ? "*." : "") + lower(body), {}, 0};
}

bool host_allowed(std::string_view host,
                  const std::vector<std::string>& patterns) {
  auto h = lower(trim(host, 0).text);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') {
    h = h.substr(1, h.size() - 2);
  }
  if (!h.empty() && h.back() == '.') {
    h.pop_back();
  }
  if (h.empty()) {
    return false;
  }
  for (const auto& x : patterns) {
    auto p = parse_host_pattern(x);
    if (!p.ok()) {
      continue;
    }
    const auto& v = *p.value;
    if (v.size() > 2 && v[0] == '*' && v[1] == '.') {
      auto suffix = std::string_view(v).substr(1); // ".example.com"
      if (h.size() > suffix.size()
          && h.compare(h.size() - suffix.size(), suffix.size(), suffix) == 0
          && h[h.size() - suffix.size() - 1] != '.') {
        return true;
      }
    } else if (h == v) {
      return true;
    }
  }
  return false;
}

std::string add_days(weekly_hours& week, const day_set& days,
                     std::string_view spec,
                     const std::vector<time_range>& ranges) {
  for (int d = 0; d < 7; ++d) {
    if (days.has(d) && !week.named_by[static_cast<std::size_t>(d)].empty()) {
      return std::string(weekday_name(d)) + " is already given by '"
             + week.named_by[static_cast<std::size_t>(d)] + "'";
    }
  }
  auto sorted = ranges;
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.start < b.start; });
  for (int d = 0; d < 7; ++d) {
    if (days.has(d)) {
      auto i = static_cast<std::size_t>(d);
      week.named_by[i] = std::string(spec);
      week.days[i] = sorted;
    }
  }
  return {};
}

// -- daily_window -------------------------------------------------------------

bool daily_window::contains(const local_time& x) const {
  int m = x.hour * 60 + x.minute;
  if (range_.end <= 1440) {
    return range_.start <= m && m < range_.end;
  }
  return m >= range_.start || m < range_.end - 1440;
}

bool daily_window::contains(epoch_ms t, const time_zone& tz) const {
  return contains(tz.to_local(t));
}

epoch_ms daily_window::next_end(epoch_ms t, const time_zone& tz) const {
  auto x = tz.to_local(t);
  if (!contains(x)) {
    return t;
  }
  int m = x.hour * 60 + x.minute;
  // Minutes after today's midnight where this stretch of the window ends.
  int end = range_.end;
  if (range_.end > 1440 && m < range_.end - 1440) {
    end = range_.end - 1440; // began yesterday
  }
  auto [first, second] = tz.from_local_both(x.year, x.month, x.day, 0, end, 0);
  if (first > t) {
    return first;
  }
  return second > t ? second : t;
}

// -- business_calendar --------------------------------------------------------

business_calendar::business_calendar() = default;

business_calendar::business_calendar(time_zone zone,
                                     std::optional<weekly_hours> hours,
                                     std::vector<holiday> holidays,
                                     std::optional<daily_window> quiet_hours)
  : zone_(std::move(zone)),
    hours_(std::move(hours)),
    holidays_(std::move(holidays)),
    quiet_hours_(quiet_hours) {
  // nop
}

calendar_result business_calendar::from_tenant(const engine::tenant& t) {
  calendar_result out;
  auto& errors = out.errors;
  try {
    const std::string zone_name = t.timezone.empty() ? "UTC" : t.timezone;
    auto zone = time_zone::load(zone_name);
    if (!zone) {
      errors.push_back("timezone: unknown time zone " + quoted(zone_name));
    }
    std::optional<weekly_hours> hours;
    if (!t.business_hours.empty()) {
      hours.emplace();
      for (const auto& [spec, text] : t.business_hours) {
        const auto field = "business_hours." + spec;
        auto days = parse_day_spec(spec);
        if (!days.ok()) {
          errors.push_back(field + ": " + days.error);
        }
        auto ranges = parse_time_ranges(text);
        if (!ranges.ok()) {
          errors.push_back(field + ": " + ranges.error);
        }
        if (days.ok() && ranges.ok()) {
          auto e = add_days(*hours, *days.value, spec, *ranges.value);
          if (!e.empty()) {
            errors.push_back(field + ": " + e);
          }
        }
      }
    }
    std::vector<holiday> holidays;
    for (std::size_t i = 0; i < t.holidays.size(); ++i) {
      auto h = parse_holiday(t.holidays[i]);
      if (h.ok()) {
        holidays.push_back(*h.value);
      } else {
        errors.push_back("holidays[" + std::to_string(i) + "]: " + h.error);
      }
    }
    std::optional<daily_window> quiet;
    if (!t.quiet_hours.empty()) {
      auto q = parse_daily_window(t.quiet_hours);
      if (q.ok()) {
        quiet = *q.value;
      } else {
        errors.push_back("quiet_hours: " + q.error);
      }
    }
    if (errors.empty() && zone) {
      out.value = business_calendar(std::move(*zone), std::move(hours),
                                    std::move(holidays), quiet);
    }
  } catch (const std::exception& e) { // allocation failure
    errors.push_back(std::string("internal error: ") + e.what());
  }
  if (!errors.empty()) {
    out.value.reset();
  }
  return out;
}

bool business_calendar::holiday_on(int year, int month, int day) const {
  return std::any_of(holidays_.begin(), holidays_.end(), [&](const holiday& h) {
    return (h.year == 0 || h.year == year) && h.month == month && h.day == day;
  });
}

bool business_calendar::in_hours(const local_time& x) const {
  if (holiday_on(x.year, x.month, x.day)) {
    return false;
  }
  if (!hours_) {
    return true;
  }
  const int m = x.hour * 60 + x.minute;
  for (const auto& r : hours_->days[static_cast<std::size_t>(x.weekday)]) {
    if (r.start <= m && m < std::min(r.end, 1440)) {
      return true;
    }
  }
  // The after-midnight part of yesterday's ranges, unless yesterday was a
  // holiday (that shift never began).
  const auto yesterday = cctz::civil_day(x.year, x.month, x.day) - 1;
  const auto& before
    = hours_->days[static_cast<std::size_t>((x.weekday + 6) % 7)];
  bool spills = std::any_of(before.begin(), before.end(), [m](const auto& r) {
    return r.end > 1440 && m < r.end - 1440;
  });
  return spills
         && !holiday_on(static_cast<int>(yesterday.year()), yesterday.month(),
                        yesterday.day());
}

bool business_calendar::is_open(epoch_ms t) const {
  if (always_open()) {
    return true;
  }
  return in_hours(zone_.to_local(t));
}

bool business_calendar::is_holiday(epoch_ms t) const {
  if (holidays_.empty()) {
    return false;
  }
  auto x = zone_.to_local(t);
  return holiday_on(x.year, x.month, x.day);
}

bool business_calendar::is_quiet(epoch_ms t) const {
  return quiet_hours_ && quiet_hours_->contains(zone_.to_local(t));
}

std::optional<epoch_ms> business_calendar::next_open(epoch_ms t) const {
  if (is_open(t)) {
    return t;
  }
  if (hours_
      && std::all_of(hours_->days.begin(), hours_->days.end(),
                     [](const auto& d) { return d.empty(); })) {
    return std::nullopt;
  }
  // Opening can only happen at a range's start, at a local midnight (a
  // holiday ends, yesterday's range runs on) or at a DST change (the clock
  // jumps into a range): try those instants day by day, in order.
  const auto x = zone_.to_local(t);
  const cctz::civil_day first_day(x.year, x.month, x.day);
  std::vector<epoch_ms> candidates;
  constexpr int horizon_days = 8 * 366;
  for (int i = 0; i <= horizon_days; ++i) {
    const auto d = first_day + i;
    const auto y = static_cast<int>(d.year());
    candidates.clear();
    auto add = [&](int minutes) {
      auto [a, b] = zone_.from_local_both(y, d.month(), d.day(), 0, minutes, 0);
      candidates.push_back(a);
      candidates.push_back(b);
    };
    add(0);
    if (hours_) {
      for (const auto& r :
           hours_->days[static_cast<std::size_t>(weekday_of(d))]) {
        add(r.start);
      }
    }
    const auto midnight = candidates.front();
    const auto next_midnight = zone_.from_local(y, d.month(), d.day() + 1, 0, 0,
                                                0);
    const auto from = midnight == std::numeric_limits<epoch_ms>::min()
                        ? midnight
                        : midnight - 1;
    for (auto c : zone_.transitions(from, next_midnight)) {
      candidates.push_back(c);
    }
    std::sort(candidates.begin(), candidates.end());
    for (auto c : candidates) {
      if (c > t && is_open(c)) {
        return c;
      }
    }
  }
  return std::nullopt;
}

// -- run variables ------------------------------------------------------------

const std::array<std::string_view, 8>& calendar_variable_names() {
  static constexpr std::array<std::string_view, 8> names{
    "business_hours", "holiday",    "now.date",    "now.time",
    "now.hour",       "now.minute", "now.weekday", "now.timezone"};
  return names;
}

void add_calendar_variables(const business_calendar& cal, epoch_ms now,
                            context& ctx) {
  const auto x = cal.zone().to_local(now);
  std::array<char, 48> date{};
  std::snprintf(date.data(), date.size(), "%04d-%02d-%02d", x.year, x.month,
                x.day);
  const auto& names = calendar_variable_names();
  auto set = [&](std::size_t i, value v) {
    ctx[std::string(names[i])] = std::move(v);
  };
  set(0, value(cal.is_open(now)));
  set(1, value(cal.is_holiday(now)));
  set(2, value(std::string(date.data())));
  set(3, value(two_digits(x.hour) + ":" + two_digits(x.minute)));
  set(4, value(x.hour));
  set(5, value(x.minute));
  set(6, value(weekday_name(x.weekday)));
  set(7, value(cal.zone().name()));
}

} // namespace ringback::workflows
