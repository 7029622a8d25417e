#pragma once

#include "ringback/engine/metrics.hpp"

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace prometheus {
class Registry;
} // namespace prometheus

namespace ringback::adapters {

/// `engine::metrics` in a prometheus-cpp registry of its own (one per
/// instance: two instances share nothing). Every family the port names is
/// registered by the constructor, but a family shows in `render` (HELP,
/// TYPE and its series) only from its first event on: prometheus-cpp leaves
/// out families without series, so a fresh instance renders "". A series
/// (one set of label values) appears with its first event and stays.
///
/// Label values are kept as given and escaped by the text format (`\\`,
/// `\"`, `\n`); error codes are decimal strings, "0" when none.
/// `ringback_outbox_queue_wait_seconds` has the buckets of
/// `queue_wait_buckets()`; a negative wait counts as 0 and one that is not
/// finite (NaN, infinite) is dropped.
///
/// Thread-safe; every method of the port never throws (a failure, such as
/// running out of memory, drops the event). The constructor may throw
/// `std::bad_alloc`.
class prometheus_metrics final : public engine::metrics {
public:
  prometheus_metrics();
  ~prometheus_metrics() override;

  prometheus_metrics(const prometheus_metrics&) = delete;
  prometheus_metrics& operator=(const prometheus_metrics&) = delete;

  void message_queued(std::string_view tenant,
                      std::string_view number) override;
  void message_sent(std::string_view tenant, std::string_view number) override;
  void message_retried(std::string_view tenant, std::string_view number,
                       std::string_view reason) override;
  void message_failed(std::string_view tenant, std::string_view number,
                      int error_code) override;
  void message_delivered(std::string_view tenant,
                         std::string_view number) override;
  void message_undelivered(std::string_view tenant, std::string_view number,
                           int error_code) override;
  void message_refused(std::string_view tenant,
                       std::string_view reason) override;
  void message_held(std::string_view tenant, std::string_view reason) override;
  void queue_depth(std::string_view tenant, std::string_view number,
                   std::size_t depth) override;
  void queue_wait(std::string_view tenant, std::string_view number,
                  double seconds) override;
  void inbound_message(std::string_view tenant,
                       std::string_view keyword) override;
  void opt_out_changed(std::string_view tenant, bool opted_out,
                       std::string_view source) override;
  void status_report(std::string_view result) override;
  void conversation_event(std::string_view tenant,
                          std::string_view event) override;
  void ai_turn(std::string_view tenant, std::string_view provider, bool failed,
               std::int64_t prompt_tokens, std::int64_t completion_tokens,
               double cost_usd, double latency_seconds) override;
  void conversation_actors(std::string_view tenant, std::size_t live) override;
  void store_activity(std::string_view connection,
                      const engine::store_activity& a) override;

  /// The text exposition format (0.0.4) of the registry, through
  /// `prometheus::TextSerializer`; empty if rendering failed.
  std::string render() const override;

  /// The registry, e.g. for prometheus-cpp's own exposer.
  const std::shared_ptr<prometheus::Registry>& registry() const noexcept;

  /// The upper bounds of the queue wait histogram in seconds: 0.01 0.05 0.1
  /// 0.5 1 2 5 10 30 60 300 (and +Inf).
  static const std::vector<double>& queue_wait_buckets();

private:
  struct families;

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<families> families_;
};

} // namespace ringback::adapters
