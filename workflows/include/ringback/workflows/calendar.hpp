#pragma once

#include "ringback/engine/records.hpp"
#include "ringback/workflows/value.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// Tenant calendars: time zones, business hours, holidays, quiet hours, cron
/// schedules and the `http` allow-list, all evaluated in a tenant's local
/// time. Plain values: no I/O after `time_zone::load`, safe to share between
/// threads once built (every member function is const). Nothing here throws
/// on bad input: parsers return an error with the 1-based column of the
/// offending text, and the calendar's searches are bounded.
namespace ringback::workflows {

/// A wall-clock time in some zone.
struct local_time {
  int year = 1970;
  int month = 1;   ///< 1-12
  int day = 1;     ///< 1-31
  int hour = 0;    ///< 0-23
  int minute = 0;  ///< 0-59
  int second = 0;  ///< 0-59
  int weekday = 3; ///< 0 = Monday ... 6 = Sunday
  int yday = 1;    ///< day of the year, 1-366
};

/// "mon", "tue", ... "sun" for a weekday 0-6 (0 = Monday); "" outside.
const char* weekday_name(int weekday);

/// An IANA time zone (cctz underneath, read from the system's zoneinfo or
/// $TZDIR). Cheap to copy: copies share one immutable zone.
class time_zone {
public:
  /// UTC.
  time_zone();

  /// "UTC", "America/Denver", "Etc/GMT+5", ... or nullopt for a name the
  /// database does not know (or one shaped like a path: "../x", "/etc/x").
  /// May read the zone file on the first load of a name; never throws.
  static std::optional<time_zone> load(std::string_view iana);

  /// The name it was loaded by.
  const std::string& name() const;

  /// The wall-clock time at `t` (milliseconds are dropped, rounding down).
  local_time to_local(engine::epoch_ms t) const;

  /// Local wall time -> the instant. Out-of-range fields carry over the way
  /// `mktime` does (day 32 is the 1st of the next month). For a time skipped
  /// by a DST gap: the instant just after the gap; for a repeated time: its
  /// first occurrence. Saturates at the limits of `epoch_ms`.
  engine::epoch_ms from_local(int y, int mo, int d, int h, int mi, int s) const;

  /// Both instants of a wall time: `first` as `from_local` gives it and
  /// `second` the later occurrence of a time repeated by a fall-back (equal
  /// to `first` for any other time).
  std::pair<engine::epoch_ms, engine::epoch_ms>
  from_local_both(int y, int mo, int d, int h, int mi, int s) const;

  /// The instants in `(from, to]` where the zone's UTC offset changes
  /// (at most 64), in order.
  std::vector<engine::epoch_ms> transitions(engine::epoch_ms from,
                                            engine::epoch_ms to) const;

private:
  struct impl;

  explicit time_zone(std::shared_ptr<const impl> x);

  std::shared_ptr<const impl> impl_;
};

/// The outcome of a parser: a value, or an error with the 1-based column in
/// the parsed text where the problem starts.
template <class T>
struct calendar_parse_result {
  std::optional<T> value;
  std::string error;
  std::size_t column = 0;

  bool ok() const {
    return value.has_value();
  }
};

/// A set of weekdays (bit i = weekday i, 0 = Monday).
struct day_set {
  std::uint8_t mask = 0;

  bool has(int weekday) const {
    return weekday >= 0 && weekday < 7 && (mask >> weekday & 1) != 0;
  }
};

/// `[start, end)` in minutes after local midnight: start 0-1439, end
/// start+1 .. start+1440. An end past 1440 runs into the next day
/// ("22:00-02:00" is 1320-1560).
struct time_range {
  int start = 0;
  int end = 0;

  friend bool operator==(const time_range& a, const time_range& b) {
    return a.start == b.start && a.end == b.end;
  }
};

/// A holiday: one date, or a month and day every year (year 0).
struct holiday {
  int year = 0;
  int month = 1;
  int day = 1;
};

/// "mon-fri", "sat", "mon,wed,fri", "mon-wed, fri", "fri-mon" (a range may
/// wrap past Sunday). Days are mon..sun or their full names, any case.
/// Errors: "unknown day 'mnday' (did you mean 'monday'?)...", a day named
/// twice, an empty item.
calendar_parse_result<day_set> parse_day_spec(std::string_view text);

/// "08:00-17:00", "09:00-12:00, 13:00-15:00", "22:00-02:00" (crosses
/// midnight), "00:00-24:00" (all day) or "closed" (an empty list). Times are
/// H:MM or HH:MM; 24:00 only as an end. Ranges are sorted by start; ranges of
/// the same text must not overlap (touching is fine).
calendar_parse_result<std::vector<time_range>>
parse_time_ranges(std::string_view text);

/// "2026-12-25" or "12-25" (every year; 02-29 then falls in leap years only).
calendar_parse_result<holiday> parse_holiday(std::string_view text);

/// A daily window of local time, e.g. quiet hours "21:00-08:00" (it may cross
/// midnight; "00:00-24:00" is all day).
class daily_window {
public:
  daily_window() = default;
  explicit daily_window(time_range r) : range_(r) {
    // nop
  }

  const time_range& range() const {
    return range_;
  }

  /// Whether the wall time falls in the window (start inclusive, end
  /// exclusive).
  bool contains(const local_time& x) const;

  /// Whether the instant falls in the window in `tz`'s local time.
  bool contains(engine::epoch_ms t, const time_zone& tz) const;

  /// When the window that holds `t` ends (the end's first occurrence after
  /// `t`; just after a DST gap when the end is skipped), or `t` itself when
  /// `t` is not inside. An all-day window ends at the next local midnight.
  engine::epoch_ms next_end(engine::epoch_ms t, const time_zone& tz) const;

private:
  time_range range_;
};

/// "21:00-08:00": one range, as in `parse_time_ranges` ("closed" and lists
/// are errors here).
calendar_parse_result<daily_window> parse_daily_window(std::string_view text);

/// "api.example.com", "*.hooks.example.org", "127.0.0.1", "::1" or "[::1]".
/// The value is the pattern lower-cased, without brackets or a trailing dot.
/// A scheme, port, path, a lone "*" or a "*" anywhere but a leading "*." are
/// errors.
calendar_parse_result<std::string> parse_host_pattern(std::string_view text);

/// Whether `host` matches one of `patterns` (case-insensitive; a trailing dot
/// and IPv6 brackets are ignored). "*.example.com" matches any name below
/// example.com ("a.example.com", "a.b.example.com") but not example.com
/// itself. Patterns that `parse_host_pattern` rejects match nothing.
bool host_allowed(std::string_view host,
                  const std::vector<std::string>& patterns);

/// Opening hours of a week, by local weekday.
struct weekly_hours {
  /// Sorted ranges per weekday (0 = Monday); a range may run past midnight.
  std::array<std::vector<time_range>, 7> days;
  /// The day spec that named each day ("" = not named: closed).
  std::array<std::string, 7> named_by;
};

/// Adds `ranges` to every day of `days`. Returns "" or, when a day was named
/// by an earlier spec, "fri is already given by 'mon-fri'" (and adds
/// nothing).
std::string add_days(weekly_hours& week, const day_set& days,
                     std::string_view spec,
                     const std::vector<time_range>& ranges);

struct calendar_result;

/// A tenant's business hours and holidays in its time zone, plus its quiet
/// hours. Days the hours do not name are closed; no hours at all means open
/// around the clock (holidays still close). A holiday closes its whole local
/// date, 00:00 to 24:00, including the after-midnight part of a range that
/// began the day before; a range that begins on a holiday does not run into
/// the next day either. Times a DST change skips are not open; a repeated
/// hour is open both times when its wall time is.
class business_calendar {
public:
  /// Open 24/7 in UTC.
  business_calendar();

  /// From a tenant's raw fields (`timezone`, `business_hours`, `holidays`,
  /// `quiet_hours`; an empty timezone is UTC; `http_allow` is not a
  /// calendar's business). Every problem is reported, each naming its field:
  /// "timezone: unknown time zone 'Mars/Base'", "business_hours.mnday:
  /// unknown day 'mnday' ...", "business_hours.sat: hour 25 is out of range
  /// 00-23", "holidays[1]: ...", "quiet_hours: ...". Never throws.
  static calendar_result from_tenant(const engine::tenant& t);

  /// From parts already parsed.
  business_calendar(time_zone zone, std::optional<weekly_hours> hours,
                    std::vector<holiday> holidays,
                    std::optional<daily_window> quiet_hours = std::nullopt);

  /// In hours and not on a holiday.
  bool is_open(engine::epoch_ms t) const;

  /// Whether `t`'s local date is a holiday.
  bool is_holiday(engine::epoch_ms t) const;

  /// `t` itself when open, else the first instant after `t` when it opens;
  /// nullopt when it does not open within the next eight years (never, for a
  /// week with every day closed).
  std::optional<engine::epoch_ms> next_open(engine::epoch_ms t) const;

  const time_zone& zone() const {
    return zone_;
  }

  /// No business hours and no holidays: open at every instant.
  bool always_open() const {
    return !hours_ && holidays_.empty();
  }

  /// The hours; nullopt when none are configured (open 24/7).
  const std::optional<weekly_hours>& hours() const {
    return hours_;
  }

  const std::vector<holiday>& holidays() const {
    return holidays_;
  }

  /// The tenant's quiet hours, if any (for the messaging layer).
  const std::optional<daily_window>& quiet_hours() const {
    return quiet_hours_;
  }

  /// Whether `t` falls in the quiet hours (false without any).
  bool is_quiet(engine::epoch_ms t) const;

private:
  bool in_hours(const local_time& x) const;
  bool holiday_on(int year, int month, int day) const;

  time_zone zone_;
  std::optional<weekly_hours> hours_;
  std::vector<holiday> holidays_;
  std::optional<daily_window> quiet_hours_;
};

/// The outcome of `business_calendar::from_tenant`.
struct calendar_result {
  std::optional<business_calendar> value;
  std::vector<std::string> errors;

  bool ok() const {
    return value.has_value();
  }
};

class cron_schedule;

/// The outcome of `cron_schedule::parse`.
using cron_parse_result = calendar_parse_result<cron_schedule>;

/// A cron expression evaluated in a time zone's local time.
class cron_schedule {
public:
  /// 5 fields: minute hour day-of-month month day-of-week; `*`, lists `1,5`,
  /// ranges `1-5`, steps `*/15`, `10-50/10` and `5/15` (= 5-max/15), names
  /// JAN..DEC and SUN..SAT (any case; 0 and 7 are Sunday), and the macros
  /// @hourly @daily @midnight @weekly @monthly @yearly @annually. Fields are
  /// separated by spaces or tabs. Errors name the field and point at the
  /// offending text: "minute field: 61 is out of range 0-59".
  static cron_parse_result parse(std::string_view text);

  /// The first firing strictly after `t`, in `tz`'s local time. When both
  /// day-of-month and day-of-week are restricted (not a plain `*`), a day
  /// matching either fires. DST: local times a spring-forward gap skips fire
  /// once, right after the gap; a repeated fall-back hour fires once (its
  /// first occurrence). nullopt when nothing fires within about nine years
  /// (an impossible date like `0 0 31 2 *`); bounded work either way.
  std::optional<engine::epoch_ms> next_after(engine::epoch_ms t,
                                             const time_zone& tz) const;

  /// The text it was parsed from.
  const std::string& source() const {
    return source_;
  }

  /// Whether a wall time (to the minute) matches.
  bool matches(const local_time& x) const;

private:
  bool day_matches(int month, int day, int weekday) const;

  std::string source_;
  std::uint64_t minutes_ = 0; // bit 0-59
  std::uint32_t hours_ = 0;   // bit 0-23
  std::uint32_t days_ = 0;    // bit 1-31
  std::uint16_t months_ = 0;  // bit 1-12
  std::uint8_t weekdays_ = 0; // bit 0-6, 0 = Sunday (cron's numbering)
  bool dom_restricted_ = false;
  bool dow_restricted_ = false;
};

/// Adds what a run knows about "now" for `cal`'s tenant, replacing earlier
/// values: `business_hours` (bool, `is_open`), `holiday` (bool), `now.date`
/// ("2026-11-21"), `now.time` ("14:05"), `now.hour` and `now.minute`
/// (numbers), `now.weekday` ("sat") and `now.timezone` ("America/Denver").
void add_calendar_variables(const business_calendar& cal, engine::epoch_ms now,
                            context& ctx);

/// The names `add_calendar_variables` sets, in the order above: what a
/// waiting run can drop and have set afresh when it resumes.
const std::array<std::string_view, 8>& calendar_variable_names();

} // namespace ringback::workflows
