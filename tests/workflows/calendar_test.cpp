#include "ringback/workflows/calendar.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <random>

using namespace ringback::workflows;
using ringback::engine::epoch_ms;

namespace {

// Known 2026 DST changes:
//   America/Denver: Mar 8 02:00 MST -> 03:00 MDT (09:00Z),
//                   Nov 1 02:00 MDT -> 01:00 MST (08:00Z). MST = UTC-7.
//   Europe/Berlin:  Mar 29 02:00 CET -> 03:00 CEST (01:00Z),
//                   Oct 25 03:00 CEST -> 02:00 CET (01:00Z). CET = UTC+1.

epoch_ms utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return time_zone{}.from_local(y, mo, d, h, mi, s);
}

time_zone zone(std::string_view name) {
  auto z = time_zone::load(name);
  EXPECT_TRUE(z.has_value()) << name;
  return z.value_or(time_zone{});
}

/// "error @column" or "ok".
template <class T>
std::string error_of(const calendar_parse_result<T>& r) {
  if (r.ok()) {
    return "ok";
  }
  return r.error + " @" + std::to_string(r.column);
}

std::string day_error(std::string_view x) {
  return error_of(parse_day_spec(x));
}

std::string ranges_error(std::string_view x) {
  return error_of(parse_time_ranges(x));
}

std::string holiday_error(std::string_view x) {
  return error_of(parse_holiday(x));
}

std::string window_error(std::string_view x) {
  return error_of(parse_daily_window(x));
}

std::string host_error(std::string_view x) {
  return error_of(parse_host_pattern(x));
}

std::string cron_error(std::string_view x) {
  return error_of(cron_schedule::parse(x));
}

std::uint8_t days(std::initializer_list<int> xs) {
  std::uint8_t m = 0;
  for (int x : xs) {
    m = static_cast<std::uint8_t>(m | (1u << x));
  }
  return m;
}

std::vector<time_range> ranges(std::string_view x) {
  auto r = parse_time_ranges(x);
  EXPECT_TRUE(r.ok()) << x << ": " << r.error;
  return r.value.value_or(std::vector<time_range>{});
}

ringback::engine::tenant
tenant(std::string tz, std::vector<std::pair<std::string, std::string>> hours,
       std::vector<std::string> holidays = {}, std::string quiet = {}) {
  ringback::engine::tenant t;
  t.id = "acme";
  t.timezone = std::move(tz);
  t.business_hours = std::move(hours);
  t.holidays = std::move(holidays);
  t.quiet_hours = std::move(quiet);
  return t;
}

business_calendar calendar_of(const ringback::engine::tenant& t) {
  auto r = business_calendar::from_tenant(t);
  EXPECT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
  return r.value.value_or(business_calendar{});
}

/// The sample tenant of the brief.
business_calendar acme() {
  return calendar_of(tenant("America/Denver",
                            {{"mon-fri", "08:00-17:00"},
                             {"sat", "09:00-12:00, 13:00-15:00"},
                             {"sun", "closed"}},
                            {"2026-12-25", "01-01"}));
}

/// Denver wall time -> instant.
epoch_ms denver(int y, int mo, int d, int h, int mi = 0) {
  return zone("America/Denver").from_local(y, mo, d, h, mi, 0);
}

std::optional<epoch_ms> next(std::string_view cron, epoch_ms t,
                             const time_zone& tz = time_zone{}) {
  auto c = cron_schedule::parse(cron);
  EXPECT_TRUE(c.ok()) << cron << ": " << c.error;
  if (!c.ok()) {
    return std::nullopt;
  }
  return c.value->next_after(t, tz);
}

} // namespace

// -- time zones ---------------------------------------------------------------

TEST(TimeZone, LoadsIanaNamesAndRejectsOthers) {
  EXPECT_EQ(time_zone{}.name(), "UTC");
  EXPECT_EQ(zone("UTC").name(), "UTC");
  EXPECT_EQ(zone("America/Denver").name(), "America/Denver");
  EXPECT_EQ(zone("Etc/GMT+5").name(), "Etc/GMT+5");
  EXPECT_FALSE(time_zone::load("Mars/Olympus_Mons"));
  EXPECT_FALSE(time_zone::load("America/Denvr"));
  EXPECT_FALSE(time_zone::load(""));
  EXPECT_FALSE(time_zone::load("../../etc/passwd"));
  EXPECT_FALSE(time_zone::load("/usr/share/zoneinfo/UTC"));
  EXPECT_FALSE(time_zone::load("zone.tab"));
  EXPECT_FALSE(time_zone::load("localtime"));
}

TEST(TimeZone, ToLocal) {
  auto x = zone("America/Denver").to_local(utc(2026, 11, 21, 21, 5, 30) + 999);
  EXPECT_EQ(x.year, 2026);
  EXPECT_EQ(x.month, 11);
  EXPECT_EQ(x.day, 21);
  EXPECT_EQ(x.hour, 14); // MST, UTC-7
  EXPECT_EQ(x.minute, 5);
  EXPECT_EQ(x.second, 30);
  EXPECT_EQ(x.weekday, 5); // Saturday
  EXPECT_EQ(x.yday, 325);
  auto summer = zone("America/Denver").to_local(utc(2026, 7, 1, 12));
  EXPECT_EQ(summer.hour, 6); // MDT, UTC-6
  auto berlin = zone("Europe/Berlin").to_local(utc(2026, 12, 31, 23, 30));
  EXPECT_EQ(berlin.year, 2027);
  EXPECT_EQ(berlin.yday, 1);
  EXPECT_EQ(berlin.hour, 0);
  EXPECT_EQ(berlin.weekday, 4); // Friday
  // Before the epoch, milliseconds round down.
  auto before = time_zone{}.to_local(-1);
  EXPECT_EQ(before.year, 1969);
  EXPECT_EQ(before.month, 12);
  EXPECT_EQ(before.day, 31);
  EXPECT_EQ(before.second, 59);
  EXPECT_EQ(before.weekday, 2); // Wednesday
}

TEST(TimeZone, FromLocalAcrossDenverDst) {
  auto z = zone("America/Denver");
  EXPECT_EQ(z.from_local(2026, 11, 21, 14, 5, 30),
            utc(2026, 11, 21, 21, 5, 30));
  // Spring gap: 02:30 does not exist; the instant just after the gap.
  EXPECT_EQ(z.from_local(2026, 3, 8, 2, 30, 0), utc(2026, 3, 8, 9));
  EXPECT_EQ(z.from_local(2026, 3, 8, 2, 0, 0), utc(2026, 3, 8, 9));
  EXPECT_EQ(z.from_local(2026, 3, 8, 3, 0, 0), utc(2026, 3, 8, 9));
  EXPECT_EQ(z.from_local(2026, 3, 8, 1, 59, 59), utc(2026, 3, 8, 8, 59, 59));
  // Fall repeat: the first occurrence (MDT); both from from_local_both.
  EXPECT_EQ(z.from_local(2026, 11, 1, 1, 30, 0), utc(2026, 11, 1, 7, 30));
  auto both = z.from_local_both(2026, 11, 1, 1, 30, 0);
  EXPECT_EQ(both.first, utc(2026, 11, 1, 7, 30));
  EXPECT_EQ(both.second, utc(2026, 11, 1, 8, 30));
  auto unique = z.from_local_both(2026, 11, 1, 2, 30, 0);
  EXPECT_EQ(unique.first, unique.second);
  // Out-of-range fields carry over.
  EXPECT_EQ(z.from_local(2026, 11, 31, 0, 0, 0),
            z.from_local(2026, 12, 1, 0, 0, 0));
  EXPECT_EQ(z.from_local(2026, 11, 21, 0, 24 * 60, 0),
            z.from_local(2026, 11, 22, 0, 0, 0));
}

TEST(TimeZone, FromLocalAcrossBerlinDst) {
  auto z = zone("Europe/Berlin");
  EXPECT_EQ(z.from_local(2026, 3, 29, 2, 30, 0), utc(2026, 3, 29, 1));
  EXPECT_EQ(z.from_local(2026, 3, 29, 3, 0, 0), utc(2026, 3, 29, 1));
  auto both = z.from_local_both(2026, 10, 25, 2, 30, 0);
  EXPECT_EQ(both.first, utc(2026, 10, 25, 0, 30));  // CEST
  EXPECT_EQ(both.second, utc(2026, 10, 25, 1, 30)); // CET
}

TEST(TimeZone, Transitions) {
  EXPECT_EQ(
    zone("America/Denver").transitions(utc(2026, 1, 1), utc(2027, 1, 1)),
    (std::vector<epoch_ms>{utc(2026, 3, 8, 9), utc(2026, 11, 1, 8)}));
  // (from, to]: the end is included, the start is not.
  EXPECT_EQ(zone("Europe/Berlin")
              .transitions(utc(2026, 3, 29, 1), utc(2026, 10, 25, 1)),
            (std::vector<epoch_ms>{utc(2026, 10, 25, 1)}));
  EXPECT_TRUE(
    time_zone{}.transitions(utc(2026, 1, 1), utc(2027, 1, 1)).empty());
}

TEST(TimeZone, ExtremeInstantsDoNotCrash) {
  constexpr auto max = std::numeric_limits<epoch_ms>::max();
  constexpr auto min = std::numeric_limits<epoch_ms>::min();
  auto z = zone("America/Denver");
  auto hi = z.to_local(max);
  EXPECT_GT(hi.year, 200000000);
  auto lo = z.to_local(min);
  EXPECT_LT(lo.year, -200000000);
  EXPECT_EQ(z.from_local(300000000, 1, 1, 0, 0, 0), max);
  EXPECT_EQ(z.from_local(-300000000, 1, 1, 0, 0, 0), min);
  EXPECT_EQ(weekday_name(0), std::string("mon"));
  EXPECT_EQ(weekday_name(6), std::string("sun"));
  EXPECT_EQ(weekday_name(7), std::string(""));
  EXPECT_EQ(weekday_name(-1), std::string(""));
}

// -- day specs ----------------------------------------------------------------

TEST(DaySpec, RangesListsAndNames) {
  EXPECT_EQ(parse_day_spec("mon-fri").value->mask, days({0, 1, 2, 3, 4}));
  EXPECT_EQ(parse_day_spec("sat-sun").value->mask, days({5, 6}));
  EXPECT_EQ(parse_day_spec("sun").value->mask, days({6}));
  EXPECT_EQ(parse_day_spec("mon,wed, fri").value->mask, days({0, 2, 4}));
  EXPECT_EQ(parse_day_spec("mon-tue, thu").value->mask, days({0, 1, 3}));
  EXPECT_EQ(parse_day_spec("fri-mon").value->mask, days({4, 5, 6, 0}));
  EXPECT_EQ(parse_day_spec("Monday - Wednesday").value->mask, days({0, 1, 2}));
  EXPECT_EQ(parse_day_spec(" TUE ").value->mask, days({1}));
  EXPECT_TRUE(parse_day_spec("mon").value->has(0));
  EXPECT_FALSE(parse_day_spec("mon").value->has(1));
  EXPECT_FALSE(parse_day_spec("mon").value->has(7));
}

TEST(DaySpec, ErrorsWithColumns) {
  EXPECT_EQ(day_error("mnday"),
            "unknown day 'mnday' (did you mean 'monday'?); days are mon, tue, "
            "wed, thu, fri, sat, sun @1");
  EXPECT_EQ(day_error("mon-frii"),
            "unknown day 'frii' (did you mean 'fri'?); days are mon, tue, wed, "
            "thu, fri, sat, sun @5");
  EXPECT_EQ(
    day_error("weekdays"),
    "unknown day 'weekdays'; days are mon, tue, wed, thu, fri, sat, sun "
    "@1");
  EXPECT_EQ(day_error("mon,,tue"), "empty item in the list of days @5");
  EXPECT_EQ(day_error("mon-fri, wed"), "wed is named twice @10");
  EXPECT_EQ(day_error("mon-"),
            "incomplete range 'mon-' (expected a day on both sides of '-') @1");
  EXPECT_EQ(day_error(""),
            "expected a day (mon..sun), a range like mon-fri or a list like "
            "mon,wed,fri @1");
  EXPECT_EQ(day_error("  "),
            "expected a day (mon..sun), a range like mon-fri or a list like "
            "mon,wed,fri @3");
}

// -- time ranges --------------------------------------------------------------

TEST(TimeRanges, Parse) {
  EXPECT_EQ(ranges("08:00-17:00"), (std::vector<time_range>{{480, 1020}}));
  EXPECT_EQ(ranges("9:00-12:00, 13:00-15:30"),
            (std::vector<time_range>{{540, 720}, {780, 930}}));
  EXPECT_EQ(ranges("13:00-15:00,09:00-12:00"), // sorted
            (std::vector<time_range>{{540, 720}, {780, 900}}));
  EXPECT_EQ(ranges("22:00-02:00"), (std::vector<time_range>{{1320, 1560}}));
  EXPECT_EQ(ranges("22:00-00:00"), (std::vector<time_range>{{1320, 1440}}));
  EXPECT_EQ(ranges("00:00-24:00"), (std::vector<time_range>{{0, 1440}}));
  EXPECT_EQ(ranges("08:00 - 12:00, 12:00-13:00"), // touching is fine
            (std::vector<time_range>{{480, 720}, {720, 780}}));
  EXPECT_TRUE(ranges("closed").empty());
  EXPECT_TRUE(ranges(" Closed ").empty());
  EXPECT_TRUE(parse_time_ranges("closed").ok());
}

TEST(TimeRanges, ErrorsWithColumns) {
  EXPECT_EQ(ranges_error("25:00-26:00"), "hour 25 is out of range 00-23 @1");
  EXPECT_EQ(ranges_error("08:00-25:00"), "hour 25 is out of range 00-23 @7");
  EXPECT_EQ(ranges_error("08:00-17:60"), "minute 60 is out of range 00-59 @10");
  EXPECT_EQ(ranges_error("08:00-24:30"),
            "'24:30' is not a time (24:00 is the latest) @7");
  EXPECT_EQ(ranges_error("24:00-08:00"), "24:00 can only end a range @1");
  EXPECT_EQ(ranges_error("8am-5pm"),
            "'8am' is not a time (expected HH:MM, e.g. 08:00) @1");
  EXPECT_EQ(ranges_error("08:00-1700"),
            "'1700' is not a time (expected HH:MM, e.g. 08:00) @7");
  EXPECT_EQ(ranges_error("08:00"),
            "expected a range like 08:00-17:00, got '08:00' @1");
  EXPECT_EQ(ranges_error("09:00-10:00, 08:00\xE2\x80\x93"
                         "17:00"),
            "expected a range like 08:00-17:00, got '08:00\xE2\x80\x93"
            "17:00' (use a plain '-' between the times) @14");
  EXPECT_EQ(ranges_error("08:00-08:00"),
            "'08:00-08:00' is an empty range (use 00:00-24:00 for the whole "
            "day) @1");
  EXPECT_EQ(ranges_error("09:00-12:00, 11:00-13:00"),
            "'11:00-13:00' overlaps '09:00-12:00' @14");
  EXPECT_EQ(ranges_error("11:00-13:00, 09:00-12:00"),
            "'09:00-12:00' overlaps '11:00-13:00' @14");
  EXPECT_EQ(ranges_error("22:00-02:00, 23:00-23:30"),
            "'23:00-23:30' overlaps '22:00-02:00' @14");
  EXPECT_EQ(ranges_error("09:00-12:00,,13:00-14:00"),
            "empty item in the list of ranges @13");
  EXPECT_EQ(ranges_error("closed, 09:00-12:00"),
            "'closed' cannot be combined with ranges @1");
  EXPECT_EQ(ranges_error(""),
            "expected time ranges like 08:00-17:00, or closed @1");
  // Columns count characters, not bytes.
  EXPECT_EQ(ranges_error("\xC3\xA9"
                         "08:00-09:00"),
            "'\xC3\xA9"
            "08:00' is not a time (expected HH:MM, e.g. 08:00) @1");
}

// -- holidays -----------------------------------------------------------------

TEST(Holidays, Parse) {
  auto full = parse_holiday("2026-12-25");
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full.value->year, 2026);
  EXPECT_EQ(full.value->month, 12);
  EXPECT_EQ(full.value->day, 25);
  auto yearly = parse_holiday(" 01-01 ");
  ASSERT_TRUE(yearly.ok());
  EXPECT_EQ(yearly.value->year, 0);
  EXPECT_EQ(yearly.value->month, 1);
  EXPECT_EQ(yearly.value->day, 1);
  EXPECT_TRUE(parse_holiday("02-29").ok());
  EXPECT_TRUE(parse_holiday("2028-02-29").ok());
}

TEST(Holidays, ErrorsWithColumns) {
  EXPECT_EQ(holiday_error("2026-02-29"),
            "day 29 does not exist in February 2026 (28 days) @9");
  EXPECT_EQ(holiday_error("04-31"),
            "day 31 does not exist in April (30 days) @4");
  EXPECT_EQ(holiday_error("02-30"),
            "day 30 does not exist in February (29 days) @4");
  EXPECT_EQ(holiday_error("2026-13-01"), "month 13 is out of range 01-12 @6");
  EXPECT_EQ(holiday_error("00-10"), "month 00 is out of range 01-12 @1");
  EXPECT_EQ(holiday_error("12-32"), "day 32 is out of range 01-31 @4");
  EXPECT_EQ(holiday_error("  12-00"), "day 00 is out of range 01-31 @6");
  EXPECT_EQ(holiday_error("0000-01-01"),
            "year 0000 is out of range 0001-9999 @1");
  EXPECT_EQ(holiday_error("Dec 25"),
            "'Dec 25' is not a date (expected YYYY-MM-DD or MM-DD, e.g. "
            "2026-12-25 or 12-25) @1");
  EXPECT_EQ(holiday_error("2026-1-5"),
            "'2026-1-5' is not a date (expected YYYY-MM-DD or MM-DD, e.g. "
            "2026-12-25 or 12-25) @1");
  EXPECT_EQ(
    holiday_error(""),
    "'' is not a date (expected YYYY-MM-DD or MM-DD, e.g. 2026-12-25 or "
    "12-25) @1");
}

// -- daily windows (quiet hours) ----------------------------------------------

TEST(DailyWindow, ContainsAcrossMidnight) {
  auto w = *parse_daily_window("21:00-08:00").value;
  auto at = [](int h, int m) {
    local_time x;
    x.hour = h;
    x.minute = m;
    return x;
  };
  EXPECT_TRUE(w.contains(at(21, 0)));
  EXPECT_TRUE(w.contains(at(23, 59)));
  EXPECT_TRUE(w.contains(at(0, 0)));
  EXPECT_TRUE(w.contains(at(7, 59)));
  EXPECT_FALSE(w.contains(at(8, 0)));
  EXPECT_FALSE(w.contains(at(20, 59)));
  auto day = *parse_daily_window("09:00-17:00").value;
  EXPECT_TRUE(day.contains(at(9, 0)));
  EXPECT_FALSE(day.contains(at(17, 0)));
  EXPECT_FALSE(day.contains(at(8, 59)));
  auto all = *parse_daily_window("00:00-24:00").value;
  EXPECT_TRUE(all.contains(at(0, 0)));
  EXPECT_TRUE(all.contains(at(23, 59)));
  EXPECT_TRUE(w.contains(denver(2026, 11, 21, 22), zone("America/Denver")));
  EXPECT_FALSE(w.contains(denver(2026, 11, 21, 12), zone("America/Denver")));
}

TEST(DailyWindow, Errors) {
  EXPECT_EQ(window_error("21:00-08:00, 12:00-13:00"),
            "expected one range like 21:00-08:00, not a list @12");
  EXPECT_EQ(window_error("closed"),
            "expected a range like 21:00-08:00, got 'closed' @1");
  EXPECT_EQ(window_error(" "), "expected a range like 21:00-08:00 @2");
  EXPECT_EQ(window_error("21:00-25:00"), "hour 25 is out of range 00-23 @7");
  EXPECT_EQ(window_error("21:00"),
            "expected a range like 08:00-17:00, got '21:00' @1");
}

TEST(DailyWindow, NextEnd) {
  auto z = zone("America/Denver");
  auto w = *parse_daily_window("21:00-08:00").value;
  // Inside, before midnight: tomorrow's 08:00; after midnight: today's.
  EXPECT_EQ(w.next_end(denver(2026, 11, 21, 22), z), denver(2026, 11, 22, 8));
  EXPECT_EQ(w.next_end(denver(2026, 11, 22, 7), z), denver(2026, 11, 22, 8));
  // Outside: t itself.
  EXPECT_EQ(w.next_end(denver(2026, 11, 22, 12), z), denver(2026, 11, 22, 12));
  // The night DST starts and the night it ends: 08:00 by the new offset.
  EXPECT_EQ(w.next_end(denver(2026, 3, 7, 22), z), utc(2026, 3, 8, 14));
  EXPECT_EQ(w.next_end(denver(2026, 10, 31, 22), z), utc(2026, 11, 1, 15));
  // An end skipped by the gap: just after the gap.
  auto gap = *parse_daily_window("22:00-02:30").value;
  EXPECT_EQ(gap.next_end(utc(2026, 3, 8, 8), z), utc(2026, 3, 8, 9));
  // An end in the repeated hour: the occurrence after t.
  auto rep = *parse_daily_window("22:00-01:30").value;
  EXPECT_EQ(rep.next_end(utc(2026, 11, 1, 7, 10), z), utc(2026, 11, 1, 7, 30));
  EXPECT_EQ(rep.next_end(utc(2026, 11, 1, 8, 10), z), utc(2026, 11, 1, 8, 30));
  // All day: the next midnight.
  auto all = *parse_daily_window("00:00-24:00").value;
  EXPECT_EQ(all.next_end(denver(2026, 11, 21, 13), z), denver(2026, 11, 22, 0));
}

// -- host patterns ------------------------------------------------------------

TEST(HostPatterns, Parse) {
  EXPECT_EQ(*parse_host_pattern("API.Example.com").value, "api.example.com");
  EXPECT_EQ(*parse_host_pattern("*.hooks.example.org").value,
            "*.hooks.example.org");
  EXPECT_EQ(*parse_host_pattern("example.com.").value, "example.com");
  EXPECT_EQ(*parse_host_pattern("127.0.0.1").value, "127.0.0.1");
  EXPECT_EQ(*parse_host_pattern("::1").value, "::1");
  EXPECT_EQ(*parse_host_pattern("[2001:DB8::1]").value, "2001:db8::1");
  EXPECT_EQ(*parse_host_pattern("my_host-1.internal").value,
            "my_host-1.internal");
}

TEST(HostPatterns, ErrorsWithColumns) {
  EXPECT_EQ(host_error(""),
            "expected a host name like api.example.com or *.example.com @1");
  EXPECT_EQ(host_error("https://api.example.com"),
            "'https://api.example.com' has a scheme: give the host alone (e.g. "
            "api.example.com) @1");
  EXPECT_EQ(host_error("*"),
            "'*' would allow every host; list the hosts (or *.example.com) @1");
  EXPECT_EQ(host_error("api.example.com:8443"),
            "a host pattern has no port (the allow-list is by host name) @16");
  EXPECT_EQ(host_error("api.example.com/hooks"),
            "a host pattern has no path (give the host alone, e.g. "
            "api.example.com) @16");
  EXPECT_EQ(host_error("api.*.example.com"),
            "'*' is only allowed as a leading '*.' (e.g. *.example.com) @5");
  EXPECT_EQ(host_error("*example.com"),
            "'*' is only allowed as a leading '*.' (e.g. *.example.com) @1");
  EXPECT_EQ(host_error("*."),
            "'*.' needs a domain after it (e.g. *.example.com) @1");
  EXPECT_EQ(host_error("a..b"), "empty label in 'a..b' @3");
  EXPECT_EQ(host_error("api ex.com"),
            "invalid character ' ' in a host name @4");
  EXPECT_EQ(host_error("ab.\xC3\xA9.com"),
            "invalid character '\xC3\xA9' in a host name @4");
  EXPECT_EQ(host_error("\xC3\xBC\xC3\xBC.com:80"),
            "a host pattern has no port (the allow-list is by host name) @7");
  EXPECT_EQ(host_error("-api.example.com"),
            "a label cannot start or end with '-' @1");
  EXPECT_EQ(host_error("a." + std::string(64, 'b') + ".com"),
            "a label is longer than 63 characters @3");
  EXPECT_EQ(host_error(std::string(60, 'a') + "." + std::string(60, 'a') + "."
                       + std::string(60, 'a') + "." + std::string(60, 'a') + "."
                       + std::string(60, 'a')),
            "the host name is longer than 253 characters @1");
  EXPECT_EQ(host_error("[::1"),
            "'[::1' is not an IPv6 address in brackets (e.g. [::1], without a "
            "port) @1");
  EXPECT_EQ(host_error("[::1]:80"),
            "'[::1]:80' is not an IPv6 address in brackets (e.g. [::1], "
            "without a port) @1");
  EXPECT_EQ(host_error("::g"), "'::g' is not an IPv6 address @1");
}

TEST(HostPatterns, Allowed) {
  const std::vector<std::string> allow{"api.example.com", "*.hooks.example.org",
                                       "127.0.0.1", "::1"};
  EXPECT_TRUE(host_allowed("api.example.com", allow));
  EXPECT_TRUE(host_allowed("API.Example.COM.", allow));
  EXPECT_FALSE(host_allowed("x.api.example.com", allow));
  EXPECT_FALSE(host_allowed("example.com", allow));
  EXPECT_TRUE(host_allowed("a.hooks.example.org", allow));
  EXPECT_TRUE(host_allowed("a.b.Hooks.example.org", allow));
  EXPECT_FALSE(host_allowed("hooks.example.org", allow));
  EXPECT_FALSE(host_allowed("evilhooks.example.org", allow));
  EXPECT_FALSE(host_allowed(".hooks.example.org", allow));
  EXPECT_FALSE(host_allowed("hooks.example.org.evil.com", allow));
  EXPECT_TRUE(host_allowed("127.0.0.1", allow));
  EXPECT_FALSE(host_allowed("127.0.0.2", allow));
  EXPECT_TRUE(host_allowed("[::1]", allow));
  EXPECT_TRUE(host_allowed("::1", allow));
  EXPECT_FALSE(host_allowed("", allow));
  EXPECT_FALSE(host_allowed("api.example.com", {}));
  // Patterns parse_host_pattern rejects match nothing.
  EXPECT_FALSE(host_allowed("api.example.com", {"*"}));
  EXPECT_FALSE(host_allowed("api.example.com", {"api.example.com:443"}));
}

// -- business calendars -------------------------------------------------------

TEST(BusinessCalendar, OpenInHoursOnly) {
  auto cal = acme();
  EXPECT_FALSE(cal.always_open());
  EXPECT_EQ(cal.zone().name(), "America/Denver");
  // Mon 2026-11-23.
  EXPECT_FALSE(cal.is_open(denver(2026, 11, 23, 7, 59)));
  EXPECT_TRUE(cal.is_open(denver(2026, 11, 23, 8, 0)));
  EXPECT_TRUE(cal.is_open(denver(2026, 11, 23, 16, 59)));
  EXPECT_FALSE(cal.is_open(denver(2026, 11, 23, 17, 0)));
  // Sat 2026-11-21: two ranges.
  EXPECT_TRUE(cal.is_open(denver(2026, 11, 21, 11, 59)));
  EXPECT_FALSE(cal.is_open(denver(2026, 11, 21, 12, 30)));
  EXPECT_TRUE(cal.is_open(denver(2026, 11, 21, 13, 0)));
  EXPECT_FALSE(cal.is_open(denver(2026, 11, 21, 15, 0)));
  // Sun: closed.
  EXPECT_FALSE(cal.is_open(denver(2026, 11, 22, 12, 0)));
}

TEST(BusinessCalendar, HolidaysByDateAndYearly) {
  auto cal = acme();
  // Fri 2026-12-25 (a full date) and Fri 2027-01-01 (01-01, every year).
  EXPECT_TRUE(cal.is_holiday(denver(2026, 12, 25, 10)));
  EXPECT_FALSE(cal.is_open(denver(2026, 12, 25, 10)));
  EXPECT_TRUE(cal.is_holiday(denver(2027, 1, 1, 10)));
  EXPECT_FALSE(cal.is_open(denver(2027, 1, 1, 10)));
  EXPECT_TRUE(cal.is_holiday(denver(2031, 1, 1, 0)));
  EXPECT_FALSE(cal.is_holiday(denver(2027, 12, 25, 10))); // 2026 only
  EXPECT_TRUE(cal.is_open(denver(2027, 12, 24, 10)));
  EXPECT_TRUE(cal.is_open(denver(2026, 12, 24, 10)));
  // Local dates: 2026-12-25 00:30 in Denver is 07:30Z.
  EXPECT_TRUE(cal.is_holiday(utc(2026, 12, 25, 7, 30)));
  EXPECT_FALSE(cal.is_holiday(utc(2026, 12, 25, 6, 30)));
}

TEST(BusinessCalendar, NextOpen) {
  auto cal = acme();
  auto open = denver(2026, 11, 23, 10);
  EXPECT_EQ(cal.next_open(open), open);
  EXPECT_EQ(cal.next_open(denver(2026, 11, 20, 17)), denver(2026, 11, 21, 9));
  EXPECT_EQ(cal.next_open(denver(2026, 11, 21, 12, 1)),
            denver(2026, 11, 21, 13));
  EXPECT_EQ(cal.next_open(denver(2026, 11, 21, 15)), denver(2026, 11, 23, 8));
  EXPECT_EQ(cal.next_open(denver(2026, 11, 23, 7, 59) + 59999),
            denver(2026, 11, 23, 8));
  // Thu Dec 24 after hours -> Fri Dec 25 is a holiday -> Sat 09:00.
  EXPECT_EQ(cal.next_open(denver(2026, 12, 24, 17)), denver(2026, 12, 26, 9));
  // Thu Dec 31 -> Fri Jan 1 (yearly) -> Sat Jan 2 09:00.
  EXPECT_EQ(cal.next_open(denver(2026, 12, 31, 18)), denver(2027, 1, 2, 9));
}

TEST(BusinessCalendar, RangesCrossingMidnight) {
  auto cal = calendar_of(tenant("UTC", {{"fri-sat", "20:00-02:00"}}));
  EXPECT_TRUE(cal.is_open(utc(2026, 11, 20, 20)));    // Fri 20:00
  EXPECT_TRUE(cal.is_open(utc(2026, 11, 21, 1, 59))); // Sat, Fri's night
  EXPECT_FALSE(cal.is_open(utc(2026, 11, 21, 2)));
  EXPECT_TRUE(cal.is_open(utc(2026, 11, 22, 1)));  // Sun, Sat's night
  EXPECT_FALSE(cal.is_open(utc(2026, 11, 23, 1))); // Mon
  EXPECT_FALSE(cal.is_open(utc(2026, 11, 20, 1))); // Fri, Thu closed
  EXPECT_EQ(cal.next_open(utc(2026, 11, 21, 2)), utc(2026, 11, 21, 20));
  EXPECT_EQ(cal.next_open(utc(2026, 11, 22, 2)), utc(2026, 11, 27, 20));
}

TEST(BusinessCalendar, HolidayClosesItsWholeDateAndItsNight) {
  // Sat 2026-11-21 is a holiday.
  auto cal
    = calendar_of(tenant("UTC", {{"fri-sat", "20:00-02:00"}}, {"2026-11-21"}));
  EXPECT_TRUE(cal.is_open(utc(2026, 11, 20, 21)));
  EXPECT_FALSE(cal.is_open(utc(2026, 11, 21, 0, 30))); // Fri's night, on it
  EXPECT_FALSE(cal.is_open(utc(2026, 11, 21, 21)));
  EXPECT_FALSE(cal.is_open(utc(2026, 11, 22, 1))); // its own night
  EXPECT_EQ(cal.next_open(utc(2026, 11, 21, 0, 30)), utc(2026, 11, 27, 20));
  // Fri 2026-11-20 is a holiday: the day after opens at midnight by its own
  // range (Friday's night never began).
  auto sat_night = calendar_of(tenant(
    "UTC", {{"fri", "20:00-02:00"}, {"sat", "00:00-24:00"}}, {"2026-11-20"}));
  EXPECT_EQ(sat_night.next_open(utc(2026, 11, 20, 12)), utc(2026, 11, 21, 0));
}

TEST(BusinessCalendar, NoHoursMeansOpenButHolidaysClose) {
  auto always = calendar_of(tenant("America/Denver", {}));
  EXPECT_TRUE(always.always_open());
  EXPECT_TRUE(always.is_open(utc(2026, 12, 25, 12)));
  EXPECT_EQ(always.next_open(utc(2026, 12, 25, 12)), utc(2026, 12, 25, 12));
  auto holidays = calendar_of(tenant("America/Denver", {}, {"12-25"}));
  EXPECT_FALSE(holidays.always_open());
  EXPECT_FALSE(holidays.is_open(denver(2026, 12, 25, 12)));
  EXPECT_TRUE(holidays.is_open(denver(2026, 12, 24, 23, 59)));
  EXPECT_EQ(holidays.next_open(denver(2026, 12, 25, 12)),
            denver(2026, 12, 26, 0));
  // The default calendar: UTC, open.
  business_calendar none;
  EXPECT_TRUE(none.always_open());
  EXPECT_EQ(none.zone().name(), "UTC");
  EXPECT_TRUE(none.is_open(0));
  EXPECT_FALSE(none.is_holiday(0));
  EXPECT_FALSE(none.is_quiet(0));
}

TEST(BusinessCalendar, NeverOpen) {
  auto cal = calendar_of(tenant("UTC", {{"mon-sun", "closed"}}));
  EXPECT_FALSE(cal.always_open());
  EXPECT_FALSE(cal.is_open(utc(2026, 11, 21, 12)));
  EXPECT_EQ(cal.next_open(utc(2026, 11, 21, 12)), std::nullopt);
  // Every day of the year a holiday: never open (the search is bounded).
  std::vector<std::string> every_day;
  for (int m = 1; m <= 12; ++m) {
    for (int d = 1; d <= 31; ++d) {
      auto h = parse_holiday((m < 10 ? "0" : "") + std::to_string(m) + "-"
                             + (d < 10 ? "0" : "") + std::to_string(d));
      if (h.ok()) {
        every_day.push_back((m < 10 ? "0" : "") + std::to_string(m) + "-"
                            + (d < 10 ? "0" : "") + std::to_string(d));
      }
    }
  }
  ASSERT_EQ(every_day.size(), 366u);
  auto all_holidays = calendar_of(tenant("UTC", {}, every_day));
  EXPECT_EQ(all_holidays.next_open(utc(2026, 11, 21)), std::nullopt);
}

TEST(BusinessCalendar, DenverSpringGap) {
  // Sun 2026-03-08: 02:00-03:00 does not exist.
  auto cal = calendar_of(tenant("America/Denver", {{"sun", "02:30-04:00"}}));
  EXPECT_FALSE(cal.is_open(utc(2026, 3, 8, 8, 59, 59))); // 01:59:59 MST
  EXPECT_TRUE(cal.is_open(utc(2026, 3, 8, 9)));          // 03:00 MDT
  EXPECT_FALSE(cal.is_open(utc(2026, 3, 8, 10)));        // 04:00 MDT
  EXPECT_EQ(cal.next_open(utc(2026, 3, 8, 8)), utc(2026, 3, 8, 9));
  // A range entirely inside the gap never happens that day.
  auto lost = calendar_of(tenant("America/Denver", {{"sun", "02:00-02:30"}}));
  EXPECT_EQ(lost.next_open(utc(2026, 3, 8, 7)), utc(2026, 3, 15, 8));
}

TEST(BusinessCalendar, DenverFallRepeat) {
  // Sun 2026-11-01: 01:00-02:00 happens twice (07:00Z MDT, 08:00Z MST).
  auto cal = calendar_of(tenant("America/Denver", {{"sun", "01:00-01:30"}}));
  EXPECT_TRUE(cal.is_open(utc(2026, 11, 1, 7, 15)));  // 01:15 MDT
  EXPECT_FALSE(cal.is_open(utc(2026, 11, 1, 7, 45))); // 01:45 MDT
  EXPECT_TRUE(cal.is_open(utc(2026, 11, 1, 8, 15)));  // 01:15 MST
  EXPECT_FALSE(cal.is_open(utc(2026, 11, 1, 8, 30))); // 01:30 MST
  // Closed at 01:45 MDT; the clock falls back into the range at 08:00Z.
  EXPECT_EQ(cal.next_open(utc(2026, 11, 1, 7, 45)), utc(2026, 11, 1, 8));
  // A range begun before the repeated hour: closed at 01:30 MDT, the clock
  // falls back into it at 08:00Z.
  auto early = calendar_of(tenant("America/Denver", {{"sun", "00:30-01:30"}}));
  EXPECT_TRUE(early.is_open(utc(2026, 11, 1, 7, 15)));
  EXPECT_FALSE(early.is_open(utc(2026, 11, 1, 7, 45)));
  EXPECT_EQ(early.next_open(utc(2026, 11, 1, 7, 45)), utc(2026, 11, 1, 8));
  // A range starting inside the repeated hour: its second start.
  auto late = calendar_of(tenant("America/Denver", {{"sun", "01:20-01:40"}}));
  EXPECT_EQ(late.next_open(utc(2026, 11, 1, 7, 50)), utc(2026, 11, 1, 8, 20));
}

TEST(BusinessCalendar, BerlinDst) {
  auto cal = calendar_of(tenant("Europe/Berlin", {{"mon-sun", "02:00-04:00"}}));
  // Sun 2026-03-29: 02:00-03:00 CET is skipped.
  EXPECT_FALSE(cal.is_open(utc(2026, 3, 29, 0, 30))); // 01:30 CET
  EXPECT_TRUE(cal.is_open(utc(2026, 3, 29, 1)));      // 03:00 CEST
  EXPECT_FALSE(cal.is_open(utc(2026, 3, 29, 2)));     // 04:00 CEST
  EXPECT_EQ(cal.next_open(utc(2026, 3, 29, 0, 30)), utc(2026, 3, 29, 1));
  // Sun 2026-10-25: 02:00-03:00 happens twice; open both times.
  EXPECT_TRUE(cal.is_open(utc(2026, 10, 25, 0, 30))); // 02:30 CEST
  EXPECT_TRUE(cal.is_open(utc(2026, 10, 25, 1, 30))); // 02:30 CET
  EXPECT_TRUE(cal.is_open(utc(2026, 10, 25, 2, 30))); // 03:30 CET
  EXPECT_FALSE(cal.is_open(utc(2026, 10, 25, 3)));    // 04:00 CET
  EXPECT_EQ(cal.next_open(utc(2026, 10, 24, 22)),
            utc(2026, 10, 25, 0)); // 02:00 CEST
}

TEST(BusinessCalendar, QuietHours) {
  auto cal = calendar_of(tenant("America/Denver", {}, {}, "21:00-08:00"));
  ASSERT_TRUE(cal.quiet_hours().has_value());
  EXPECT_TRUE(cal.is_quiet(denver(2026, 11, 21, 21)));
  EXPECT_FALSE(cal.is_quiet(denver(2026, 11, 21, 20, 59)));
  EXPECT_EQ(cal.quiet_hours()->next_end(denver(2026, 11, 21, 23), cal.zone()),
            denver(2026, 11, 22, 8));
  EXPECT_FALSE(acme().quiet_hours().has_value());
}

TEST(BusinessCalendar, FromTenantReportsEveryError) {
  auto r = business_calendar::from_tenant(tenant("Mars/Base",
                                                 {{"mnday", "08:00-17:00"},
                                                  {"sat", "25:00-26:00"},
                                                  {"mon-fri", "08:00-17:00"},
                                                  {"fri", "09:00-10:00"}},
                                                 {"12-25", "13-01"}, "nope"));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.errors,
            (std::vector<std::string>{
              "timezone: unknown time zone 'Mars/Base'",
              "business_hours.mnday: unknown day 'mnday' (did you mean "
              "'monday'?); days are mon, tue, wed, thu, fri, sat, sun",
              "business_hours.sat: hour 25 is out of range 00-23",
              "business_hours.fri: fri is already given by 'mon-fri'",
              "holidays[1]: month 13 is out of range 01-12",
              "quiet_hours: expected a range like 08:00-17:00, got 'nope'"}));
  // An empty time zone is UTC.
  auto utc_cal = business_calendar::from_tenant(tenant("", {}));
  ASSERT_TRUE(utc_cal.ok());
  EXPECT_EQ(utc_cal.value->zone().name(), "UTC");
}

TEST(BusinessCalendar, AddDays) {
  weekly_hours w;
  EXPECT_EQ(add_days(w, *parse_day_spec("mon-fri").value, "mon-fri",
                     ranges("13:00-17:00, 08:00-12:00")),
            "");
  EXPECT_EQ(w.days[0], (std::vector<time_range>{{480, 720}, {780, 1020}}));
  EXPECT_EQ(w.named_by[4], "mon-fri");
  EXPECT_TRUE(w.named_by[5].empty());
  EXPECT_EQ(add_days(w, *parse_day_spec("sat, fri").value, "sat, fri", {}),
            "fri is already given by 'mon-fri'");
  EXPECT_TRUE(w.named_by[5].empty()); // nothing added
  EXPECT_EQ(add_days(w, *parse_day_spec("sat").value, "sat", {}), "");
  EXPECT_EQ(w.named_by[5], "sat");
}

// -- cron
// -----------------------------------------------------------------------

TEST(Cron, ParseErrorsWithColumns) {
  EXPECT_EQ(cron_error("61 * * * *"),
            "minute field: 61 is out of range 0-59 @1");
  EXPECT_EQ(cron_error("0 24 * * *"), "hour field: 24 is out of range 0-23 @3");
  EXPECT_EQ(cron_error("0 0 0 * *"),
            "day-of-month field: 0 is out of range 1-31 @5");
  EXPECT_EQ(cron_error("0 0 * 13 *"),
            "month field: 13 is out of range 1-12 @7");
  EXPECT_EQ(cron_error("0 0 * * 8"),
            "day-of-week field: 8 is out of range 0-7 @9");
  EXPECT_EQ(cron_error("0 0 1,99999999999999 * *"),
            "day-of-month field: 999999999999... is out of range 1-31 @7");
  EXPECT_EQ(cron_error("0 0 * JANU *"),
            "month field: unknown month name 'JANU' (did you mean 'JAN'?) "
            "(names are JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC) @7");
  EXPECT_EQ(cron_error("0 0 * * mom"),
            "day-of-week field: unknown day name 'mom' (did you mean 'MON'?) "
            "(names are SUN MON TUE WED THU FRI SAT) @9");
  EXPECT_EQ(cron_error("MON * * * *"),
            "minute field: 'MON' is not a number @1");
  EXPECT_EQ(cron_error("0 0 * * 1.5"),
            "day-of-week field: '1.5' is not a number or a day name @9");
  EXPECT_EQ(cron_error("0 0 ? * 1"),
            "day-of-month field: '?' is not a number @5");
  EXPECT_EQ(cron_error("*/0 * * * *"),
            "minute field: step 0 is out of range 1-60 @3");
  EXPECT_EQ(cron_error("0 */25 * * *"),
            "hour field: step 25 is out of range 1-24 @5");
  EXPECT_EQ(cron_error("*/x * * * *"),
            "minute field: step 'x' is not a number @3");
  EXPECT_EQ(cron_error("*/ * * * *"),
            "minute field: missing step after '/' @3");
  EXPECT_EQ(
    cron_error("0 17-9 * * *"),
    "hour field: range 17-9 is backwards (the start must not be greater "
    "than the end) @3");
  EXPECT_EQ(cron_error("0 9- * * *"),
            "hour field: incomplete range '9-' (expected a-b) @3");
  EXPECT_EQ(cron_error("0 *-5 * * *"), "hour field: '*' is not a number @3");
  EXPECT_EQ(cron_error("1,,2 * * * *"),
            "minute field: empty item in a list @3");
  EXPECT_EQ(cron_error("0 0 * *"),
            "expected 5 fields (minute hour day-of-month month day-of-week), "
            "got 4 @8");
  EXPECT_EQ(cron_error("0 0 * * * *"),
            "expected 5 fields (minute hour day-of-month month day-of-week), "
            "got 6 @11");
  EXPECT_EQ(cron_error(""),
            "empty schedule (expected 5 fields: minute hour day-of-month month "
            "day-of-week, or a macro like @daily) @1");
  EXPECT_EQ(cron_error("@dayly"),
            "unknown macro '@dayly' (did you mean '@daily'?); macros are "
            "@hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually "
            "@1");
  EXPECT_EQ(cron_error("@reboot"),
            "@reboot is not supported (a schedule fires at times of day) @1");
  EXPECT_EQ(cron_error("@daily 5"), "unexpected '5' after '@daily' @8");
  EXPECT_EQ(cron_error("  0\t0 * * 99"),
            "day-of-week field: 99 is out of range 0-7 @11");
}

TEST(Cron, ParsesEveryFieldKind) {
  for (auto x : {"* * * * *", "0,30 8-17/2 1-15 JAN-mar,DEC MON-FRI",
                 "5/15 * * * SAT-SUN", "0 0 * * 7", "@Hourly", " @annually ",
                 "0 0 29 2 *", "0 0 31 2 *"}) {
    EXPECT_TRUE(cron_schedule::parse(x).ok()) << x;
  }
  EXPECT_EQ(cron_schedule::parse("*/5 * * * *").value->source(), "*/5 * * * *");
  EXPECT_EQ(cron_schedule::parse("@daily").value->source(), "@daily");
}

TEST(Cron, Matches) {
  auto c = *cron_schedule::parse("30 9 * * MON-FRI").value;
  local_time x;
  x.hour = 9;
  x.minute = 30;
  x.weekday = 0; // Monday
  EXPECT_TRUE(c.matches(x));
  x.weekday = 5;
  EXPECT_FALSE(c.matches(x));
  x.weekday = 0;
  x.minute = 31;
  EXPECT_FALSE(c.matches(x));
  x.month = 13;
  EXPECT_FALSE(c.matches(x));
}

TEST(Cron, NextAfterMinutesAndHours) {
  EXPECT_EQ(next("5,35 * * * *", utc(2026, 11, 21, 10, 6)),
            utc(2026, 11, 21, 10, 35));
  // Strictly after: a firing time itself is not returned again.
  EXPECT_EQ(next("5,35 * * * *", utc(2026, 11, 21, 10, 35)),
            utc(2026, 11, 21, 11, 5));
  EXPECT_EQ(next("5,35 * * * *", utc(2026, 11, 21, 10, 34, 59) + 999),
            utc(2026, 11, 21, 10, 35));
  EXPECT_EQ(next("* * * * *", utc(2026, 11, 21, 10, 35, 10)),
            utc(2026, 11, 21, 10, 36));
  EXPECT_EQ(next("*/15 * * * *", utc(2026, 11, 21, 10, 1)),
            utc(2026, 11, 21, 10, 15));
  EXPECT_EQ(next("10-50/20 * * * *", utc(2026, 11, 21, 10, 31)),
            utc(2026, 11, 21, 10, 50));
  EXPECT_EQ(next("10-50/20 * * * *", utc(2026, 11, 21, 10, 51)),
            utc(2026, 11, 21, 11, 10));
  EXPECT_EQ(next("5/20 * * * *", utc(2026, 11, 21, 10, 46)),
            utc(2026, 11, 21, 11, 5));
  EXPECT_EQ(next("0 9-17 * * *", utc(2026, 11, 21, 17, 30)),
            utc(2026, 11, 22, 9));
  EXPECT_EQ(next("0 */6 * * *", utc(2026, 11, 21, 13)), utc(2026, 11, 21, 18));
  EXPECT_EQ(next("59 23 31 12 *", utc(2026, 11, 21)),
            utc(2026, 12, 31, 23, 59));
  // Before the epoch.
  EXPECT_EQ(next("0 0 * * *", utc(1969, 12, 31, 12)), 0);
}

TEST(Cron, NextAfterDaysMonthsAndWeekdays) {
  EXPECT_EQ(next("0 0 15 * *", utc(2026, 11, 20)), utc(2026, 12, 15));
  EXPECT_EQ(next("0 0 31 * *", utc(2026, 11, 1)), utc(2026, 12, 31));
  EXPECT_EQ(next("0 0 1 JAN,jul *", utc(2026, 2, 1)), utc(2026, 7, 1));
  EXPECT_EQ(next("0 0 1 1-3 *", utc(2026, 11, 1)), utc(2027, 1, 1));
  // Sat 2026-11-21.
  EXPECT_EQ(next("0 9 * * MON-FRI", utc(2026, 11, 21)), utc(2026, 11, 23, 9));
  EXPECT_EQ(next("0 9 * * 7", utc(2026, 11, 21)), utc(2026, 11, 22, 9));
  EXPECT_EQ(next("0 9 * * 0", utc(2026, 11, 21)), utc(2026, 11, 22, 9));
  EXPECT_EQ(next("0 9 * * sun", utc(2026, 11, 21)), utc(2026, 11, 22, 9));
  EXPECT_EQ(next("0 9 * * SAT-SUN", utc(2026, 11, 23)), utc(2026, 11, 28, 9));
  EXPECT_EQ(next("0 9 * * 5-7", utc(2026, 11, 23)), utc(2026, 11, 27, 9));
  EXPECT_EQ(next("0 9 * * */2", utc(2026, 11, 23)),
            utc(2026, 11, 24, 9)); // Tue
}

TEST(Cron, DayOfMonthOrDayOfWeek) {
  // Both restricted: either fires. Tue 2026-11-24 -> Mon Nov 30, then Tue
  // Dec 1.
  EXPECT_EQ(next("0 0 1 * MON", utc(2026, 11, 24)), utc(2026, 11, 30));
  EXPECT_EQ(next("0 0 1 * MON", utc(2026, 11, 30)), utc(2026, 12, 1));
  EXPECT_EQ(next("0 0 13 * FRI", utc(2026, 11, 14)), utc(2026, 11, 20));
  // Only one restricted: it alone decides.
  EXPECT_EQ(next("0 0 1 * *", utc(2026, 11, 24)), utc(2026, 12, 1));
  EXPECT_EQ(next("0 0 * * MON", utc(2026, 11, 24)), utc(2026, 11, 30));
  // A step counts as restricted (crontab(5): "not only *").
  EXPECT_EQ(next("0 0 */10 * MON", utc(2026, 11, 24)), utc(2026, 11, 30));
}

TEST(Cron, Macros) {
  EXPECT_EQ(next("@hourly", utc(2026, 11, 21, 10, 30)), utc(2026, 11, 21, 11));
  EXPECT_EQ(next("@daily", utc(2026, 11, 21, 10, 30)), utc(2026, 11, 22));
  EXPECT_EQ(next("@midnight", utc(2026, 11, 21, 10, 30)), utc(2026, 11, 22));
  EXPECT_EQ(next("@weekly", utc(2026, 11, 21, 10, 30)), utc(2026, 11, 22));
  EXPECT_EQ(next("@monthly", utc(2026, 11, 21, 10, 30)), utc(2026, 12, 1));
  EXPECT_EQ(next("@yearly", utc(2026, 11, 21, 10, 30)), utc(2027, 1, 1));
  EXPECT_EQ(next("@annually", utc(2026, 11, 21, 10, 30)), utc(2027, 1, 1));
}

TEST(Cron, LeapDaysAndImpossibleDates) {
  EXPECT_EQ(next("0 0 29 2 *", utc(2026, 1, 1)), utc(2028, 2, 29));
  EXPECT_EQ(next("0 0 29 2 *", utc(2028, 2, 29)), utc(2032, 2, 29));
  // 2100 is not a leap year: eight years from 2096 to 2104.
  EXPECT_EQ(next("0 0 29 2 *", utc(2096, 3, 1)), utc(2104, 2, 29));
  // Never: bounded search, nullopt.
  EXPECT_EQ(next("0 0 31 2 *", utc(2026, 1, 1)), std::nullopt);
  EXPECT_EQ(next("0 0 30 2 *", utc(2026, 1, 1)), std::nullopt);
  EXPECT_EQ(next("0 0 31 4,6,9,11 *", utc(2026, 1, 1)), std::nullopt);
  // ... unless a weekday rescues it (either field fires).
  EXPECT_EQ(next("0 0 31 2 MON", utc(2026, 1, 1)), utc(2026, 2, 2));
  // Far instants do not crash or loop.
  EXPECT_EQ(next("0 0 31 2 *", std::numeric_limits<epoch_ms>::max()),
            std::nullopt);
  EXPECT_TRUE(
    next("* * * * *", std::numeric_limits<epoch_ms>::min() / 2).has_value());
  EXPECT_EQ(cron_schedule{}.next_after(0, time_zone{}), std::nullopt);
}

TEST(Cron, DenverSpringGapFiresOnceAfterTheGap) {
  auto z = zone("America/Denver");
  // 02:30 does not exist on 2026-03-08: fires at 03:00 MDT (09:00Z).
  EXPECT_EQ(next("30 2 * * *", denver(2026, 3, 7, 12), z), utc(2026, 3, 8, 9));
  EXPECT_EQ(next("30 2 * * *", utc(2026, 3, 8, 9), z), utc(2026, 3, 9, 8, 30));
  // Every 15 minutes: the four skipped times fire once, at 09:00Z.
  EXPECT_EQ(next("*/15 * * * *", utc(2026, 3, 8, 8, 50), z),
            utc(2026, 3, 8, 9));
  EXPECT_EQ(next("*/15 * * * *", utc(2026, 3, 8, 9), z),
            utc(2026, 3, 8, 9, 15));
  EXPECT_EQ(next("0 3 * * *", denver(2026, 3, 7, 12), z), utc(2026, 3, 8, 9));
}

TEST(Cron, DenverFallRepeatFiresOnce) {
  auto z = zone("America/Denver");
  // 01:30 happens twice on 2026-11-01: fires at the first (07:30Z) only.
  EXPECT_EQ(next("30 1 * * *", denver(2026, 10, 31, 12), z),
            utc(2026, 11, 1, 7, 30));
  EXPECT_EQ(next("30 1 * * *", utc(2026, 11, 1, 7, 30), z),
            utc(2026, 11, 2, 8, 30));
  // Every 20 minutes: 01:40 MDT, then the repeated 01:xx are skipped.
  EXPECT_EQ(next("*/20 * * * *", utc(2026, 11, 1, 7, 20), z),
            utc(2026, 11, 1, 7, 40));
  EXPECT_EQ(next("*/20 * * * *", utc(2026, 11, 1, 7, 40), z),
            utc(2026, 11, 1, 9));
  // From inside the second 01:xx hour, too.
  EXPECT_EQ(next("*/20 * * * *", utc(2026, 11, 1, 8, 10), z),
            utc(2026, 11, 1, 9));
  EXPECT_EQ(next("0 2 * * *", denver(2026, 10, 31, 12), z),
            utc(2026, 11, 1, 9));
}

TEST(Cron, BerlinDst) {
  auto z = zone("Europe/Berlin");
  EXPECT_EQ(next("30 2 * * *", utc(2026, 3, 28, 12), z), utc(2026, 3, 29, 1));
  EXPECT_EQ(next("30 2 * * *", utc(2026, 3, 29, 1), z),
            utc(2026, 3, 30, 0, 30));
  EXPECT_EQ(next("30 2 * * *", utc(2026, 10, 24, 12), z),
            utc(2026, 10, 25, 0, 30));
  EXPECT_EQ(next("30 2 * * *", utc(2026, 10, 25, 0, 30), z),
            utc(2026, 10, 26, 1, 30));
  // In local time: 09:00 Berlin is 08:00Z in winter, 07:00Z in summer.
  EXPECT_EQ(next("0 9 * * *", utc(2026, 3, 28, 12), z), utc(2026, 3, 29, 7));
  EXPECT_EQ(next("0 9 * * *", utc(2026, 3, 27, 12), z), utc(2026, 3, 28, 8));
}

// -- run variables
// --------------------------------------------------------------

TEST(CalendarVariables, DescribeNowInTheTenantsZone) {
  context ctx{{"holiday", "stale"}, {"call.from", "+15005550006"}};
  // Sat 2026-11-21 14:05 in Denver: in Saturday's 13:00-15:00.
  add_calendar_variables(acme(), utc(2026, 11, 21, 21, 5, 30), ctx);
  EXPECT_EQ(ctx.at("business_hours"), value(true));
  EXPECT_EQ(ctx.at("holiday"), value(false));
  EXPECT_EQ(ctx.at("now.date"), value("2026-11-21"));
  EXPECT_EQ(ctx.at("now.time"), value("14:05"));
  EXPECT_EQ(ctx.at("now.hour"), value(14));
  EXPECT_EQ(ctx.at("now.minute"), value(5));
  EXPECT_EQ(ctx.at("now.weekday"), value("sat"));
  EXPECT_EQ(ctx.at("now.timezone"), value("America/Denver"));
  EXPECT_EQ(ctx.at("call.from"), value("+15005550006"));
  EXPECT_EQ(ctx.size(), 9u);
  // The names it sets are the ones a waiting run drops.
  context only;
  add_calendar_variables(acme(), utc(2026, 11, 21, 21, 5, 30), only);
  ASSERT_EQ(only.size(), calendar_variable_names().size());
  for (auto name : calendar_variable_names())
    EXPECT_EQ(only.count(std::string(name)), 1u) << name;
  add_calendar_variables(acme(), denver(2026, 12, 25, 9, 7), ctx);
  EXPECT_EQ(ctx.at("business_hours"), value(false));
  EXPECT_EQ(ctx.at("holiday"), value(true));
  EXPECT_EQ(ctx.at("now.time"), value("09:07"));
  EXPECT_EQ(ctx.at("now.weekday"), value("fri"));
}

// -- robustness
// -----------------------------------------------------------------

TEST(CalendarRobustness, RandomInputNeverCrashesAndPointsInsideTheText) {
  std::mt19937 rng(20261121);
  const std::string alphabet = "0123456789:-,/* @\t.abcdefghijklmnopqrstuvwxyz"
                               "JANMONSUNFRI[]\xC3\xA9\xE2\x80\x93";
  auto text = [&] {
    std::string s;
    auto n = rng() % 24;
    for (std::size_t i = 0; i < n; ++i) {
      s += alphabet[rng() % alphabet.size()];
    }
    return s;
  };
  auto check = [](const auto& r, const std::string& s) {
    if (r.ok()) {
      return;
    }
    EXPECT_FALSE(r.error.empty()) << s;
    EXPECT_GE(r.column, 1u) << s;
    EXPECT_LE(r.column, s.size() + 1) << s;
  };
  const auto denver_zone = zone("America/Denver");
  int schedules = 0;
  for (int i = 0; i < 3000; ++i) {
    auto s = text();
    check(parse_day_spec(s), s);
    check(parse_time_ranges(s), s);
    check(parse_holiday(s), s);
    check(parse_daily_window(s), s);
    check(parse_host_pattern(s), s);
    auto c = cron_schedule::parse(s);
    check(c, s);
    if (c.ok()) {
      ++schedules;
      auto t = static_cast<epoch_ms>(rng() % 4000000000u) * 1000;
      auto n = c.value->next_after(t, denver_zone);
      if (n) {
        EXPECT_GT(*n, t) << s;
      }
    }
  }
  // A few random schedules of the right shape, too.
  const std::vector<std::string> times{"*", "*/7", "1-5", "0", "3,9"};
  const std::vector<std::string> dates{"*", "*/7", "1-5", "1", "3,9"};
  const std::vector<std::string> weekdays{"*", "*/3", "1-5", "0", "MON,sat"};
  for (int i = 0; i < 300; ++i) {
    std::string s;
    for (int f = 0; f < 5; ++f) {
      const auto& parts = f < 2 ? times : f < 4 ? dates : weekdays;
      s += parts[rng() % parts.size()] + " ";
    }
    auto c = cron_schedule::parse(s);
    ASSERT_TRUE(c.ok()) << s << ": " << c.error;
    ++schedules;
    auto t = static_cast<epoch_ms>(rng() % 4000000000u) * 1000;
    auto n = c.value->next_after(t, denver_zone);
    ASSERT_TRUE(n.has_value()) << s;
    EXPECT_GT(*n, t) << s;
    EXPECT_TRUE(c.value->matches(denver_zone.to_local(*n))
                || denver_zone.to_local(*n).minute == 0) // just after a gap
      << s;
  }
  EXPECT_GE(schedules, 300);
}
