// cron_schedule: parsing five-field cron expressions and finding the next
// firing in a time zone's local time.
#include "ringback/workflows/calendar.hpp"

#include "calendar_text.hpp"
#include "ringback/workflows/diagnostic.hpp"

#include <cctz/civil_time.h>

#include <algorithm>
#include <cctype>

namespace ringback::workflows {

namespace {

using calendar_text::column_of;
using calendar_text::is_blank;
using calendar_text::is_digit;
using calendar_text::lower;

std::string quoted(std::string_view x) {
  return calendar_text::quoted(x, 32);
}


using engine::epoch_ms;

struct piece {
  std::string_view text;
  std::size_t pos = 0;
};






std::vector<piece> split(const piece& p, char sep) {
  std::vector<piece> out;
  std::size_t start = 0;
  while (true) {
    auto at = p.text.find(sep, start);
    auto end = at == std::string_view::npos ? p.text.size() : at;
    out.push_back({p.text.substr(start, end - start), p.pos + start});
    if (at == std::string_view::npos) {
      break;
    }
    start = at + 1;
  }
  return out;
}

/// The blank-separated words of `text`.
std::vector<piece> words(std::string_view text) {
  std::vector<piece> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_blank(text[i])) {
      ++i;
    }
    auto start = i;
    while (i < text.size() && !is_blank(text[i])) {
      ++i;
    }
    if (i > start) {
      out.push_back({text.substr(start, i - start), start});
    }
  }
  return out;
}

struct field_spec {
  const char* name;
  int min;
  int max;
  const std::vector<std::string>* names; // index + name_base = value
  int name_base;
  const char* name_kind;
};

const std::vector<std::string> month_names{"JAN", "FEB", "MAR", "APR",
                                           "MAY", "JUN", "JUL", "AUG",
                                           "SEP", "OCT", "NOV", "DEC"};
const std::vector<std::string> day_names{"SUN", "MON", "TUE", "WED",
                                         "THU", "FRI", "SAT"};

const std::array<field_spec, 5> specs{{
  {"minute", 0, 59, nullptr, 0, ""},
  {"hour", 0, 23, nullptr, 0, ""},
  {"day-of-month", 1, 31, nullptr, 0, ""},
  {"month", 1, 12, &month_names, 1, "month"},
  {"day-of-week", 0, 7, &day_names, 0, "day"},
}};

struct field_error {
  std::string message;
  std::size_t pos = 0;
};

std::string prefix(const field_spec& f) {
  return std::string(f.name) + " field: ";
}

std::string range_of(const field_spec& f) {
  return std::to_string(f.min) + "-" + std::to_string(f.max);
}

/// A number or a name of field `f`; -1 and `err` on failure.
int parse_value(const field_spec& f, const piece& p, field_error& err) {
  const auto& s = p.text;
  if (!s.empty() && std::all_of(s.begin(), s.end(), is_digit)) {
    int v = s.size() > 4 ? -1 : std::stoi(std::string(s));
    if (v < f.min || v > f.max) {
      err = {prefix(f) + std::string(s.substr(0, 12))
               + (s.size() > 12 ? "..." : "") + " is out of range "
               + range_of(f),
             p.pos};
      return -1;
    }
    return v;
  }
  bool alpha = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalpha(static_cast<unsigned char>(c)) != 0;
  });
  if (f.names != nullptr && alpha) {
    auto w = lower(s);
    for (std::size_t i = 0; i < f.names->size(); ++i) {
      if (w == lower((*f.names)[i])) {
        return static_cast<int>(i) + f.name_base;
      }
    }
    err = {prefix(f) + "unknown " + f.name_kind + " name " + quoted(s)
             + did_you_mean(s, *f.names) + " (names are " + join(*f.names, " ")
             + ")",
           p.pos};
    return -1;
  }
  err = {prefix(f) + quoted(s) + " is not a number"
           + (f.names != nullptr ? std::string(" or a ") + f.name_kind + " name"
                                 : ""),
         p.pos};
  return -1;
}

/// The bits of one field (bit v = value v; day-of-week 7 is bit 0).
bool parse_field(const field_spec& f, const piece& field, std::uint64_t& bits,
                 field_error& err) {
  const bool dow = f.max == 7;
  const int top = dow ? 6 : f.max;
  const int span = dow ? 7 : f.max - f.min + 1;
  for (const auto& item : split(field, ',')) {
    if (item.text.empty()) {
      err = {prefix(f) + "empty item in a list", item.pos};
      return false;
    }
    auto slash = item.text.find('/');
    piece base{item.text.substr(0, slash), item.pos};
    int lo = 0;
    int hi = 0;
    if (base.text == "*") {
      lo = f.min;
      hi = top;
    } else if (auto dash = base.text.find('-');
               dash != std::string_view::npos) {
      piece a_text{base.text.substr(0, dash), base.pos};
      piece b_text{base.text.substr(dash + 1), base.pos + dash + 1};
      if (a_text.text.empty() || b_text.text.empty()) {
        err = {prefix(f) + "incomplete range " + quoted(base.text)
                 + " (expected a-b)",
               base.pos};
        return false;
      }
      lo = parse_value(f, a_text, err);
      if (lo < 0) {
        return false;
      }
      hi = parse_value(f, b_text, err);
      if (hi < 0) {
        return false;
      }
      if (dow && hi == 0 && lo > 0) {
        hi = 7; // SAT-SUN, 5-0: up to Sunday
      }
      if (lo > hi) {
        err = {prefix(f) + "range " + std::string(base.text)
                 + " is backwards (the start must not be greater than the "
                   "end)",
               base.pos};
        return false;
      }
    } else {
      lo = parse_value(f, base, err);
      if (lo < 0) {
        return false;
      }
      hi = slash == std::string_view::npos ? lo : top; // 5/15 = 5-max/15
    }
    int step = 1;
    if (slash != std::string_view::npos) {
      piece s{item.text.substr(slash + 1), item.pos + slash + 1};
      if (s.text.empty()) {
        err = {prefix(f) + "missing step after '/'", s.pos};
        return false;
      }
      if (!std::all_of(s.text.begin(), s.text.end(), is_digit)) {
        err = {prefix(f) + "step " + quoted(s.text) + " is not a number",
               s.pos};
        return false;
      }
      step = s.text.size() > 4 ? -1 : std::stoi(std::string(s.text));
      if (step < 1 || step > span) {
        err = {prefix(f) + "step " + std::string(s.text.substr(0, 12))
                 + (s.text.size() > 12 ? "..." : "") + " is out of range 1-"
                 + std::to_string(span),
               s.pos};
        return false;
      }
    }
    for (int v = lo; v <= hi; v += step) {
      bits |= std::uint64_t{1} << (dow && v == 7 ? 0 : v);
    }
  }
  return true;
}

struct macro {
  const char* name;
  const char* fields;
};

constexpr std::array<macro, 7> macros{{
  {"@hourly", "0 * * * *"},
  {"@daily", "0 0 * * *"},
  {"@midnight", "0 0 * * *"},
  {"@weekly", "0 0 * * 0"},
  {"@monthly", "0 0 1 * *"},
  {"@yearly", "0 0 1 1 *"},
  {"@annually", "0 0 1 1 *"},
}};

int next_bit(std::uint64_t bits, int after, int limit) {
  for (int i = after + 1; i <= limit; ++i) {
    if ((bits >> i & 1) != 0) {
      return i;
    }
  }
  return -1;
}

} // namespace

cron_parse_result cron_schedule::parse(std::string_view text) {
  cron_parse_result r;
  auto fail = [&](std::size_t pos, std::string message) {
    r.value.reset();
    r.error = std::move(message);
    r.column = column_of(text, pos);
    return r;
  };
  auto fields = words(text);
  if (fields.empty()) {
    return fail(0, "empty schedule (expected 5 fields: minute hour "
                   "day-of-month month day-of-week, or a macro like @daily)");
  }
  std::string expansion;
  std::string_view body = text;
  if (fields[0].text.front() == '@') {
    auto name = lower(fields[0].text);
    if (fields.size() > 1) {
      return fail(fields[1].pos, "unexpected " + quoted(fields[1].text)
                                   + " after " + quoted(fields[0].text));
    }
    if (name == "@reboot") {
      return fail(fields[0].pos,
                  "@reboot is not supported (a schedule fires at times of "
                  "day)");
    }
    auto m = std::find_if(macros.begin(), macros.end(),
                          [&](const macro& x) { return name == x.name; });
    if (m == macros.end()) {
      std::vector<std::string> names;
      for (const auto& x : macros) {
        names.emplace_back(x.name);
      }
      return fail(fields[0].pos, "unknown macro " + quoted(fields[0].text)
                                   + did_you_mean(fields[0].text, names)
                                   + "; macros are " + join(names));
    }
    expansion = m->fields;
    body = expansion;
    fields = words(body);
  }
  if (fields.size() != 5) {
    auto pos = fields.size() > 5
                 ? fields[5].pos
                 : fields.back().pos + fields.back().text.size();
    return fail(pos, "expected 5 fields (minute hour day-of-month month "
                     "day-of-week), got "
                       + std::to_string(fields.size()));
  }
  cron_schedule s;
  std::array<std::uint64_t, 5> bits{};
  for (std::size_t i = 0; i < 5; ++i) {
    field_error err;
    if (!parse_field(specs[i], fields[i], bits[i], err)) {
      // A macro's own fields never fail: positions are in `text`.
      return fail(err.pos, err.message);
    }
  }
  s.source_ = std::string(text);
  s.minutes_ = bits[0];
  s.hours_ = static_cast<std::uint32_t>(bits[1]);
  s.days_ = static_cast<std::uint32_t>(bits[2]);
  s.months_ = static_cast<std::uint16_t>(bits[3]);
  s.weekdays_ = static_cast<std::uint8_t>(bits[4]);
  s.dom_restricted_ = fields[2].text != "*";
  s.dow_restricted_ = fields[4].text != "*";
  r.value = std::move(s);
  return r;
}

bool cron_schedule::day_matches(int month, int day, int weekday) const {
  if ((months_ >> month & 1) == 0) {
    return false;
  }
  bool dom = (days_ >> day & 1) != 0;
  bool dow = (weekdays_ >> weekday & 1) != 0;
  if (dom_restricted_ && dow_restricted_) {
    return dom || dow;
  }
  return dom && dow;
}

bool cron_schedule::matches(const local_time& x) const {
  if (x.month < 1 || x.month > 12 || x.day < 1 || x.day > 31 || x.hour < 0
      || x.hour > 23 || x.minute < 0 || x.minute > 59 || x.weekday < 0
      || x.weekday > 6) {
    return false;
  }
  return day_matches(x.month, x.day, (x.weekday + 1) % 7)
         && (hours_ >> x.hour & 1) != 0 && (minutes_ >> x.minute & 1) != 0;
}

std::optional<epoch_ms> cron_schedule::next_after(epoch_ms t,
                                                  const time_zone& tz) const {
  if (minutes_ == 0 || hours_ == 0 || days_ == 0 || months_ == 0
      || weekdays_ == 0) {
    return std::nullopt; // default-constructed: never fires
  }
  const auto now = tz.to_local(t);
  cctz::civil_minute c(now.year, now.month, now.day, now.hour, now.minute);
  c += 1;
  // Every possible schedule fires within eight years (Feb 29 across 2100).
  const auto last_year = static_cast<std::int64_t>(now.year) + 9;
  // Each step below skips at least a minute and usually much more; the cap
  // is a second line of defence, far above what nine years need.
  for (int guard = 0; guard < 1000000; ++guard) {
    if (c.year() > last_year) {
      return std::nullopt;
    }
    if ((months_ >> c.month() & 1) == 0) {
      c = cctz::civil_minute(cctz::civil_month(c) + 1);
      continue;
    }
    const cctz::civil_day d(c);
    const int weekday = (static_cast<int>(cctz::get_weekday(d)) + 1) % 7;
    if (!day_matches(c.month(), c.day(), weekday)) {
      c = cctz::civil_minute(d + 1);
      continue;
    }
    if ((hours_ >> c.hour() & 1) == 0) {
      int h = next_bit(hours_, c.hour(), 23);
      c = h < 0 ? cctz::civil_minute(d + 1)
                : cctz::civil_minute(d.year(), d.month(), d.day(), h, 0);
      continue;
    }
    if ((minutes_ >> c.minute() & 1) == 0) {
      int m = next_bit(minutes_, c.minute(), 59);
      c = m < 0 ? cctz::civil_minute(cctz::civil_hour(c) + 1)
                : cctz::civil_minute(d.year(), d.month(), d.day(), c.hour(), m);
      continue;
    }
    // A skipped time maps to the end of the gap, a repeated one to its first
    // occurrence; one already behind `t` has fired (or never will).
    auto at = tz.from_local(static_cast<int>(c.year()), c.month(), c.day(),
                            c.hour(), c.minute(), 0);
    if (at > t) {
      return at;
    }
    c += 1;
  }
  return std::nullopt;
}

} // namespace ringback::workflows
