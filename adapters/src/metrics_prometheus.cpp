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
                             "(applied, stale, unknown).")) {
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

std::string prometheus_metrics::render() const {
  std::string out;
  guarded([&] {
    prometheus::TextSerializer serializer;
    out = serializer.Serialize(registry_->Collect());
  });
  return out;
}

} // namespace ringback::adapters
