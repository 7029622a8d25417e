#include "ringback/adapters/metrics/prometheus_metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <cmath>
#include <string>

namespace ringback::adapters {

namespace {

using counter_family = prometheus::Family<prometheus::Counter>;

counter_family& counter(prometheus::Registry& registry, const char* name,
                        const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

std::string text(std::string_view x) {
  return std::string{x};
}

/// Runs `fn`, dropping whatever it throws: counting must never take a send
/// or a webhook down with it.
template <class F>
void guarded(F&& fn) noexcept {
  try {
    fn();
  } catch (...) {
    // Dropped: the event is lost, the caller goes on.
  }
}

} // namespace

struct prometheus_metrics::families {
  explicit families(prometheus::Registry& r)
    : queued(counter(r, "ringback_messages_queued_total",
                     "Messages stored in the outbox as queued, or queued "
                     "again after a hold.")),
      sent(counter(r, "ringback_messages_sent_total",
                   "Messages the carrier accepted.")),
      retries(counter(r, "ringback_message_retries_total",
                      "Send attempts that failed and will be retried, by "
                      "reason (429, 5xx, timeout, lost).")),
      failed(counter(r, "ringback_messages_failed_total",
                     "Messages that failed for good, by carrier error code "
                     "(0 when the carrier gave none).")),
      delivered(counter(r, "ringback_messages_delivered_total",
                        "Messages a delivery report said were delivered.")),
      undelivered(counter(r, "ringback_messages_undelivered_total",
                          "Messages a delivery report said were not "
                          "delivered, by carrier error code.")),
      refused(counter(r, "ringback_messages_refused_total",
                      "Messages the pre-send gate refused, by reason.")),
      held(counter(r, "ringback_messages_held_total",
                   "Messages the pre-send gate held back for later, by "
                   "reason.")),
      depth(prometheus::BuildGauge()
              .Name("ringback_outbox_queue_depth")
              .Help("Messages waiting in this process's outbox for a "
                    "sending number, not yet handed to the carrier.")
              .Register(r)),
      wait(prometheus::BuildHistogram()
             .Name("ringback_outbox_queue_wait_seconds")
             .Help("Time from queued to handed to the carrier, pacing and "
                   "retries included.")
             .Register(r)),
      inbound(counter(r, "ringback_inbound_messages_total",
                      "Inbound text messages stored, by keyword kind "
                      "(carrier retries not counted).")),
      opt_outs(counter(r, "ringback_opt_outs_total",
                       "Recipients who opted out, by what opted them out.")),
      opt_ins(counter(r, "ringback_opt_ins_total",
                      "Recipients who opted back in, by what opted them "
                      "in.")),
      status_reports(counter(r, "ringback_status_reports_total",
                             "Delivery status callbacks handled, by result "
                             "(applied, stale, unknown).")),
      conversation_events(counter(r, "ringback_conversation_events_total",
                                  "Conversation events: opened, owner_won, "
                                  "ai_won, taken_back, closed...")),
      ai_turns(counter(r, "ringback_ai_turns_total",
                       "AI turns answered, by who wrote the answer (openai, "
                       "offline).")),
      ai_errors(counter(r, "ringback_ai_errors_total",
                        "AI turns the model failed (the offline responder "
                        "answered instead).")),
      ai_tokens(counter(r, "ringback_ai_tokens_total",
                        "Tokens the model reported, by kind (prompt, "
                        "completion).")),
      ai_cost(counter(r, "ringback_ai_cost_usd_total",
                      "Estimated cost of the model's tokens in US dollars.")),
      ai_latency(prometheus::BuildHistogram()
                   .Name("ringback_ai_latency_seconds")
                   .Help("Time an AI turn took, fallback included.")
                   .Register(r)),
      conversation_actors(prometheus::BuildGauge()
                            .Name("ringback_conversation_actors")
                            .Help("Conversation actors in memory (active "
                                  "conversations; passivated ones hold "
                                  "none).")
                            .Register(r)),
      store_waiting(prometheus::BuildGauge()
                      .Name("ringback_store_jobs_waiting")
                      .Help("Store jobs waiting for their transaction, by "
                            "connection and lane (urgent, ahead, queued).")
                      .Register(r)),
      store_jobs(counter(r, "ringback_store_jobs_total",
                         "Store jobs run, by connection.")),
      store_transactions(counter(r, "ringback_store_transactions_total",
                                 "Store transactions committed, by "
                                 "connection.")) {
    // nop
  }

  counter_family& queued;
  counter_family& sent;
  counter_family& retries;
  counter_family& failed;
  counter_family& delivered;
  counter_family& undelivered;
  counter_family& refused;
  counter_family& held;
  prometheus::Family<prometheus::Gauge>& depth;
  prometheus::Family<prometheus::Histogram>& wait;
  counter_family& inbound;
  counter_family& opt_outs;
  counter_family& opt_ins;
  counter_family& status_reports;
  counter_family& conversation_events;
  counter_family& ai_turns;
  counter_family& ai_errors;
  counter_family& ai_tokens;
  counter_family& ai_cost;
  prometheus::Family<prometheus::Histogram>& ai_latency;
  prometheus::Family<prometheus::Gauge>& conversation_actors;
  prometheus::Family<prometheus::Gauge>& store_waiting;
  counter_family& store_jobs;
  counter_family& store_transactions;
};

prometheus_metrics::prometheus_metrics()
  : registry_(std::make_shared<prometheus::Registry>()),
    families_(std::make_unique<families>(*registry_)) {
  // nop
}

prometheus_metrics::~prometheus_metrics() = default;

const std::vector<double>& prometheus_metrics::queue_wait_buckets() {
  static const std::vector<double> buckets{0.01, 0.05, 0.1, 0.5, 1,  2,
                                           5,    10,   30,  60,  300};
  return buckets;
}

const std::shared_ptr<prometheus::Registry>&
prometheus_metrics::registry() const noexcept {
  return registry_;
}

void prometheus_metrics::message_queued(std::string_view tenant,
                                        std::string_view number) {
  guarded([&] {
    families_->queued.Add({{"tenant", text(tenant)}, {"number", text(number)}})
      .Increment();
  });
}

void prometheus_metrics::message_sent(std::string_view tenant,
                                      std::string_view number) {
  guarded([&] {
    families_->sent.Add({{"tenant", text(tenant)}, {"number", text(number)}})
      .Increment();
  });
}

void prometheus_metrics::message_retried(std::string_view tenant,
                                         std::string_view number,
                                         std::string_view reason) {
  guarded([&] {
    families_->retries
      .Add({{"tenant", text(tenant)},
            {"number", text(number)},
            {"reason", text(reason)}})
      .Increment();
  });
}

void prometheus_metrics::message_failed(std::string_view tenant,
                                        std::string_view number,
                                        int error_code) {
  guarded([&] {
    families_->failed
      .Add({{"tenant", text(tenant)},
            {"number", text(number)},
            {"error_code", std::to_string(error_code)}})
      .Increment();
  });
}

void prometheus_metrics::message_delivered(std::string_view tenant,
                                           std::string_view number) {
  guarded([&] {
    families_->delivered
      .Add({{"tenant", text(tenant)}, {"number", text(number)}})
      .Increment();
  });
}

void prometheus_metrics::message_undelivered(std::string_view tenant,
                                             std::string_view number,
                                             int error_code) {
  guarded([&] {
    families_->undelivered
      .Add({{"tenant", text(tenant)},
            {"number", text(number)},
            {"error_code", std::to_string(error_code)}})
      .Increment();
  });
}

void prometheus_metrics::message_refused(std::string_view tenant,
                                         std::string_view reason) {
  guarded([&] {
    families_->refused.Add({{"tenant", text(tenant)}, {"reason", text(reason)}})
      .Increment();
  });
}

void prometheus_metrics::message_held(std::string_view tenant,
                                      std::string_view reason) {
  guarded([&] {
    families_->held.Add({{"tenant", text(tenant)}, {"reason", text(reason)}})
      .Increment();
  });
}

void prometheus_metrics::queue_depth(std::string_view tenant,
                                     std::string_view number,
                                     std::size_t depth) {
  guarded([&] {
    families_->depth.Add({{"tenant", text(tenant)}, {"number", text(number)}})
      .Set(static_cast<double>(depth));
  });
}

void prometheus_metrics::queue_wait(std::string_view tenant,
                                    std::string_view number, double seconds) {
  if (!std::isfinite(seconds)) {
    return;
  }
  guarded([&] {
    families_->wait
      .Add({{"tenant", text(tenant)}, {"number", text(number)}},
           queue_wait_buckets())
      .Observe(seconds < 0 ? 0.0 : seconds);
  });
}

void prometheus_metrics::inbound_message(std::string_view tenant,
                                         std::string_view keyword) {
  guarded([&] {
    families_->inbound
      .Add({{"tenant", text(tenant)}, {"keyword", text(keyword)}})
      .Increment();
  });
}

void prometheus_metrics::opt_out_changed(std::string_view tenant,
                                         bool opted_out,
                                         std::string_view source) {
  guarded([&] {
    auto& family = opted_out ? families_->opt_outs : families_->opt_ins;
    family.Add({{"tenant", text(tenant)}, {"source", text(source)}})
      .Increment();
  });
}

void prometheus_metrics::status_report(std::string_view result) {
  guarded([&] {
    families_->status_reports.Add({{"result", text(result)}}).Increment();
  });
}

void prometheus_metrics::conversation_event(std::string_view tenant,
                                            std::string_view event) {
  guarded([&] {
    families_->conversation_events
      .Add({{"tenant", text(tenant)}, {"event", text(event)}})
      .Increment();
  });
}

void prometheus_metrics::ai_turn(std::string_view tenant,
                                 std::string_view provider, bool failed,
                                 std::int64_t prompt_tokens,
                                 std::int64_t completion_tokens,
                                 double cost_usd, double latency_seconds) {
  guarded([&] {
    const auto t = text(tenant);
    families_->ai_turns.Add({{"tenant", t}, {"provider", text(provider)}})
      .Increment();
    if (failed)
      families_->ai_errors.Add({{"tenant", t}}).Increment();
    if (prompt_tokens > 0)
      families_->ai_tokens.Add({{"tenant", t}, {"kind", "prompt"}})
        .Increment(static_cast<double>(prompt_tokens));
    if (completion_tokens > 0)
      families_->ai_tokens.Add({{"tenant", t}, {"kind", "completion"}})
        .Increment(static_cast<double>(completion_tokens));
    if (cost_usd > 0 && std::isfinite(cost_usd))
      families_->ai_cost.Add({{"tenant", t}}).Increment(cost_usd);
    if (latency_seconds >= 0 && std::isfinite(latency_seconds))
      families_->ai_latency
        .Add({{"tenant", t}},
             prometheus::Histogram::BucketBoundaries{0.05, 0.1, 0.25, 0.5, 1,
                                                     2, 5, 10, 30})
        .Observe(latency_seconds);
  });
}

void prometheus_metrics::conversation_actors(std::string_view tenant,
                                             std::size_t live) {
  guarded([&] {
    families_->conversation_actors.Add({{"tenant", text(tenant)}})
      .Set(static_cast<double>(live));
  });
}

void prometheus_metrics::store_activity(std::string_view connection,
                                        const engine::store_activity& a) {
  guarded([&] {
    auto c = text(connection);
    auto& f = families_->store_waiting;
    f.Add({{"connection", c}, {"lane", "urgent"}})
      .Set(static_cast<double>(a.urgent));
    f.Add({{"connection", c}, {"lane", "ahead"}})
      .Set(static_cast<double>(a.ahead));
    f.Add({{"connection", c}, {"lane", "queued"}})
      .Set(static_cast<double>(a.queued));
    // The executor counts; the counters catch up with it (never back).
    auto catch_up = [](prometheus::Counter& counter, std::uint64_t total) {
      auto now = static_cast<double>(total);
      if (now > counter.Value())
        counter.Increment(now - counter.Value());
    };
    catch_up(families_->store_jobs.Add({{"connection", c}}), a.jobs);
    catch_up(families_->store_transactions.Add({{"connection", c}}),
             a.transactions);
  });
}

std::string prometheus_metrics::render() const {
  std::string out;
  guarded([&] {
    prometheus::TextSerializer serializer;
    out = serializer.Serialize(registry_->Collect());
  });
  return out;
}

} // namespace ringback::adapters
