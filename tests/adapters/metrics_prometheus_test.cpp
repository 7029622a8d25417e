#include "ringback/adapters/metrics/prometheus_metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

// prometheus_metrics through its rendering: the exact lines a scraper sees.

namespace ringback::adapters {
namespace {

/// The lines of `text` (without the trailing newline of each).
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in{text};
  std::string line;
  while (std::getline(in, line))
    out.push_back(line);
  return out;
}

/// Whether `text` has exactly the line `line`.
::testing::AssertionResult has_line(const std::string& text,
                                    const std::string& line) {
  for (const auto& x : lines_of(text))
    if (x == line)
      return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "no line\n  " << line << "\nin\n"
                                       << text;
}

/// The lines of `text` that start with `prefix`.
std::vector<std::string> lines_starting(const std::string& text,
                                        const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& x : lines_of(text))
    if (x.rfind(prefix, 0) == 0)
      out.push_back(x);
  return out;
}

constexpr const char* number = "+15005550001";

TEST(prometheus_metrics, counters_render_one_line_per_series) {
  prometheus_metrics m;
  m.message_sent("acme", number);
  m.message_sent("acme", number);
  m.message_sent("acme", "+15005550002");
  m.message_sent("bolt", number);
  auto text = m.render();
  EXPECT_TRUE(has_line(
    text,
    "ringback_messages_sent_total{number=\"+15005550001\",tenant=\"acme\"} 2"));
  EXPECT_TRUE(has_line(
    text,
    "ringback_messages_sent_total{number=\"+15005550002\",tenant=\"acme\"} 1"));
  EXPECT_TRUE(has_line(
    text,
    "ringback_messages_sent_total{number=\"+15005550001\",tenant=\"bolt\"} 1"));
  EXPECT_TRUE(has_line(text, "# TYPE ringback_messages_sent_total counter"));
  EXPECT_EQ(lines_starting(text, "ringback_messages_sent_total{").size(), 3u);
}

TEST(prometheus_metrics, every_event_goes_to_its_own_family_and_labels) {
  prometheus_metrics m;
  m.message_queued("acme", number);
  m.message_retried("acme", number, "429");
  m.message_retried("acme", number, "429");
  m.message_retried("acme", number, "timeout");
  m.message_failed("acme", number, 21211);
  m.message_failed("acme", number, 0);
  m.message_delivered("acme", number);
  m.message_undelivered("acme", number, 30003);
  m.message_refused("acme", "opted_out");
  m.message_held("acme", "quiet_hours");
  m.inbound_message("acme", "opt_out");
  m.opt_out_changed("acme", true, "keyword");
  m.opt_out_changed("acme", true, "carrier");
  m.opt_out_changed("acme", false, "keyword");
  m.status_report("applied");
  m.status_report("stale");
  m.status_report("stale");
  auto text = m.render();
  const std::string n = "number=\"+15005550001\"";
  for (const auto& line : {
         "ringback_messages_queued_total{" + n + ",tenant=\"acme\"} 1",
         "ringback_message_retries_total{" + n
           + ",reason=\"429\",tenant=\"acme\"} 2",
         "ringback_message_retries_total{" + n
           + ",reason=\"timeout\",tenant=\"acme\"} 1",
         "ringback_messages_failed_total{error_code=\"21211\"," + n
           + ",tenant=\"acme\"} 1",
         "ringback_messages_failed_total{error_code=\"0\"," + n
           + ",tenant=\"acme\"} 1",
         "ringback_messages_delivered_total{" + n + ",tenant=\"acme\"} 1",
         "ringback_messages_undelivered_total{error_code=\"30003\"," + n
           + ",tenant=\"acme\"} 1",
         std::string{"ringback_messages_refused_total{reason=\"opted_out\","
                     "tenant=\"acme\"} 1"},
         std::string{"ringback_messages_held_total{reason=\"quiet_hours\","
                     "tenant=\"acme\"} 1"},
         std::string{"ringback_inbound_messages_total{keyword=\"opt_out\","
                     "tenant=\"acme\"} 1"},
         std::string{
           "ringback_opt_outs_total{source=\"keyword\",tenant=\"acme\"} 1"},
         std::string{
           "ringback_opt_outs_total{source=\"carrier\",tenant=\"acme\"} 1"},
         std::string{
           "ringback_opt_ins_total{source=\"keyword\",tenant=\"acme\"} 1"},
         std::string{"ringback_status_reports_total{result=\"applied\"} 1"},
         std::string{"ringback_status_reports_total{result=\"stale\"} 2"},
       })
    EXPECT_TRUE(has_line(text, line));
  EXPECT_TRUE(
    lines_starting(text, "ringback_opt_ins_total{source=\"carrier\"").empty());
}

TEST(prometheus_metrics, nothing_renders_before_the_first_event) {
  prometheus_metrics m;
  EXPECT_EQ(m.render(), "");
}

TEST(prometheus_metrics, every_family_has_help_and_type_lines) {
  prometheus_metrics m;
  m.message_queued("acme", number);
  m.message_sent("acme", number);
  m.message_retried("acme", number, "5xx");
  m.message_failed("acme", number, 0);
  m.message_delivered("acme", number);
  m.message_undelivered("acme", number, 0);
  m.message_refused("acme", "loop_suspected");
  m.message_held("acme", "quiet_hours");
  m.queue_depth("acme", number, 1);
  m.queue_wait("acme", number, 1.0);
  m.inbound_message("acme", "help");
  m.opt_out_changed("acme", true, "keyword");
  m.opt_out_changed("acme", false, "keyword");
  m.status_report("unknown");
  auto text = m.render();
  for (const auto& [name, type] :
       std::vector<std::pair<std::string, std::string>>{
         {"ringback_messages_queued_total", "counter"},
         {"ringback_messages_sent_total", "counter"},
         {"ringback_message_retries_total", "counter"},
         {"ringback_messages_failed_total", "counter"},
         {"ringback_messages_delivered_total", "counter"},
         {"ringback_messages_undelivered_total", "counter"},
         {"ringback_messages_refused_total", "counter"},
         {"ringback_messages_held_total", "counter"},
         {"ringback_outbox_queue_depth", "gauge"},
         {"ringback_outbox_queue_wait_seconds", "histogram"},
         {"ringback_inbound_messages_total", "counter"},
         {"ringback_opt_outs_total", "counter"},
         {"ringback_opt_ins_total", "counter"},
         {"ringback_status_reports_total", "counter"},
       }) {
    EXPECT_TRUE(has_line(text, "# TYPE " + name + " " + type));
    EXPECT_EQ(lines_starting(text, "# HELP " + name + " ").size(), 1u) << name;
  }
  EXPECT_EQ(lines_starting(text, "# TYPE ").size(), 14u);
}

TEST(prometheus_metrics, label_values_are_escaped_as_the_format_says) {
  prometheus_metrics m;
  m.message_refused("quote\"back\\slash\nnewline", "a b=c,d}");
  auto text = m.render();
  EXPECT_TRUE(has_line(text, "ringback_messages_refused_total{reason=\"a "
                             "b=c,d}\",tenant=\"quote\\\"back\\\\slash\\"
                             "nnewline\"} 1"));
  // The raw newline did not split the series line.
  EXPECT_TRUE(lines_starting(text, "newline").empty());
}

TEST(prometheus_metrics, empty_and_utf8_label_values_are_kept) {
  prometheus_metrics m;
  m.status_report("");
  m.inbound_message("caf\xc3\xa9", "none");
  auto text = m.render();
  EXPECT_TRUE(has_line(text, "ringback_status_reports_total{result=\"\"} 1"));
  EXPECT_TRUE(has_line(text, "ringback_inbound_messages_total{keyword=\"none\","
                             "tenant=\"caf\xc3\xa9\"} 1"));
}

TEST(prometheus_metrics, concurrent_increments_are_all_counted) {
  prometheus_metrics m;
  constexpr int threads = 4;
  constexpr int per_thread = 10'000;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&m, t] {
      for (int i = 0; i < per_thread; ++i) {
        m.message_sent("acme", number);
        // A series per thread too, created while the others count.
        m.message_queued("acme", "+1500555000" + std::to_string(t));
        if (i % 1000 == 0)
          (void) m.render(); // scrapes while counting
      }
    });
  for (auto& t : pool)
    t.join();
  auto text = m.render();
  EXPECT_TRUE(has_line(
    text,
    "ringback_messages_sent_total{number=\"+15005550001\",tenant=\"acme\"}"
    " 40000"));
  for (int t = 0; t < threads; ++t)
    EXPECT_TRUE(has_line(text, "ringback_messages_queued_total{number=\"+"
                               "1500555000"
                                 + std::to_string(t)
                                 + "\",tenant=\"acme\"} 10000"));
}

TEST(prometheus_metrics, queue_wait_fills_cumulative_buckets) {
  prometheus_metrics m;
  for (double s : {0.005, 0.01, 0.3, 0.7, 3.0, 45.0, 1000.0})
    m.queue_wait("acme", number, s);
  m.queue_wait("acme", number, -2.0); // a clock step: counts as 0
  m.queue_wait("acme", number, std::nan(""));
  m.queue_wait("acme", number, std::numeric_limits<double>::infinity());
  auto text = m.render();
  const std::string p = "ringback_outbox_queue_wait_seconds_bucket{number=\""
                        "+15005550001\",tenant=\"acme\",le=\"";
  // Cumulative: each bucket counts every wait at or below its bound.
  for (const auto& [le, count] : std::vector<std::pair<std::string, int>>{
         {"0.01", 3},
         {"0.05", 3},
         {"0.1", 3},
         {"0.5", 4},
         {"1", 5},
         {"2", 5},
         {"5", 6},
         {"10", 6},
         {"30", 6},
         {"60", 7},
         {"300", 7},
         {"+Inf", 8},
       })
    EXPECT_TRUE(has_line(text, p + le + "\"} " + std::to_string(count)));
  EXPECT_EQ(
    lines_starting(text, "ringback_outbox_queue_wait_seconds_bucket{").size(),
    12u);
  EXPECT_TRUE(has_line(text, "ringback_outbox_queue_wait_seconds_count{number="
                             "\"+15005550001\",tenant=\"acme\"} 8"));
  EXPECT_TRUE(has_line(text, "ringback_outbox_queue_wait_seconds_sum{number="
                             "\"+15005550001\",tenant=\"acme\"} 1049.015"));
  EXPECT_EQ(prometheus_metrics::queue_wait_buckets(),
            (std::vector<double>{0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60,
                                 300}));
}

TEST(prometheus_metrics, queue_depth_is_a_gauge_that_is_overwritten) {
  prometheus_metrics m;
  m.queue_depth("acme", number, 7);
  m.queue_depth("acme", "+15005550002", 3);
  EXPECT_TRUE(has_line(m.render(), "ringback_outbox_queue_depth{number=\""
                                   "+15005550001\",tenant=\"acme\"} 7"));
  m.queue_depth("acme", number, 2);
  m.queue_depth("acme", "+15005550002", 0);
  auto text = m.render();
  EXPECT_TRUE(has_line(text, "ringback_outbox_queue_depth{number=\""
                             "+15005550001\",tenant=\"acme\"} 2"));
  EXPECT_TRUE(has_line(text, "ringback_outbox_queue_depth{number=\""
                             "+15005550002\",tenant=\"acme\"} 0"));
  EXPECT_TRUE(has_line(text, "# TYPE ringback_outbox_queue_depth gauge"));
  m.queue_depth("acme", number, 123456789);
  EXPECT_TRUE(has_line(m.render(), "ringback_outbox_queue_depth{number=\""
                                   "+15005550001\",tenant=\"acme\"} "
                                   "123456789"));
}

TEST(prometheus_metrics, conversation_actors_is_a_gauge_per_tenant) {
  prometheus_metrics m;
  m.conversation_actors("acme", 12);
  m.conversation_actors("bobs", 3);
  EXPECT_TRUE(
    has_line(m.render(), "ringback_conversation_actors{tenant=\"acme\"} 12"));
  m.conversation_actors("acme", 0);
  auto text = m.render();
  EXPECT_TRUE(
    has_line(text, "ringback_conversation_actors{tenant=\"acme\"} 0"));
  EXPECT_TRUE(
    has_line(text, "ringback_conversation_actors{tenant=\"bobs\"} 3"));
  EXPECT_TRUE(has_line(text, "# TYPE ringback_conversation_actors gauge"));
  EXPECT_EQ(lines_starting(text, "# HELP ringback_conversation_actors ").size(),
            1u);
  engine::null_metrics none;
  none.conversation_actors("acme", 5);
  EXPECT_EQ(none.render(), "");
}

TEST(prometheus_metrics, store_activity_shows_the_backlog_and_the_totals) {
  prometheus_metrics m;
  engine::store_activity a;
  a.urgent = 1;
  a.ahead = 2;
  a.queued = 300;
  a.jobs = 1000;
  a.transactions = 40;
  m.store_activity("main", a);
  auto text = m.render();
  EXPECT_TRUE(has_line(
    text,
    "ringback_store_jobs_waiting{connection=\"main\",lane=\"queued\"} 300"));
  EXPECT_TRUE(has_line(
    text, "ringback_store_jobs_waiting{connection=\"main\",lane=\"ahead\"} 2"));
  EXPECT_TRUE(has_line(
    text,
    "ringback_store_jobs_waiting{connection=\"main\",lane=\"urgent\"} 1"));
  EXPECT_TRUE(
    has_line(text, "ringback_store_jobs_total{connection=\"main\"} 1000"));
  EXPECT_TRUE(has_line(
    text, "ringback_store_transactions_total{connection=\"main\"} 40"));
  EXPECT_TRUE(has_line(text, "# TYPE ringback_store_jobs_waiting gauge"));
  EXPECT_TRUE(has_line(text, "# TYPE ringback_store_jobs_total counter"));
  EXPECT_TRUE(
    has_line(text, "# TYPE ringback_store_transactions_total counter"));
  // The backlog drains; the totals grow, per connection.
  a = {};
  a.jobs = 1500;
  a.transactions = 41;
  m.store_activity("main", a);
  engine::store_activity urgent;
  urgent.jobs = 7;
  urgent.transactions = 3;
  m.store_activity("urgent", urgent);
  text = m.render();
  EXPECT_TRUE(has_line(
    text,
    "ringback_store_jobs_waiting{connection=\"main\",lane=\"queued\"} 0"));
  EXPECT_TRUE(
    has_line(text, "ringback_store_jobs_total{connection=\"main\"} 1500"));
  EXPECT_TRUE(
    has_line(text, "ringback_store_jobs_total{connection=\"urgent\"} 7"));
  EXPECT_TRUE(has_line(
    text, "ringback_store_transactions_total{connection=\"urgent\"} 3"));
  // A counter never goes back (a smaller total changes nothing).
  a.jobs = 10;
  m.store_activity("main", a);
  EXPECT_TRUE(has_line(m.render(),
                       "ringback_store_jobs_total{connection=\"main\"} 1500"));
}

TEST(prometheus_metrics, instances_share_nothing) {
  prometheus_metrics a;
  prometheus_metrics b;
  a.message_sent("acme", number);
  EXPECT_TRUE(
    lines_starting(b.render(), "ringback_messages_sent_total{").empty());
  EXPECT_NE(a.registry(), b.registry());
  EXPECT_EQ(lines_starting(a.render(), "ringback_messages_sent_total{").size(),
            1u);
}

TEST(prometheus_metrics, works_through_the_port) {
  prometheus_metrics impl;
  engine::metrics& m = impl;
  m.message_sent("acme", number);
  EXPECT_TRUE(has_line(
    m.render(),
    "ringback_messages_sent_total{number=\"+15005550001\",tenant=\"acme\"} 1"));
  engine::null_metrics none;
  none.message_sent("acme", number);
  EXPECT_EQ(none.render(), "");
}

} // namespace
} // namespace ringback::adapters
