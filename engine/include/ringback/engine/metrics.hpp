#pragma once

// The metrics port: what the engine and the actors count, per tenant and per
// sending number, for `GET /metrics` (Prometheus text format). The adapter
// (ringback/adapters/metrics/prometheus_metrics.hpp) keeps them in a
// prometheus-cpp registry; `null_metrics` counts nothing.
//
// Thread-safe: called from actors, executors and HTTP threads. Never throws.
// Calls are cheap but not free (a label lookup under a mutex): count events,
// not loop iterations.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringback::engine {

/// A store executor at one moment (`store_executor::activity`): the jobs
/// waiting in each of its lanes, and the jobs run and transactions committed
/// since it started.
struct store_activity {
  std::size_t urgent = 0;
  std::size_t ahead = 0;
  std::size_t queued = 0;
  std::uint64_t jobs = 0;
  std::uint64_t transactions = 0;
};

class metrics {
public:
  virtual ~metrics() = default;

  // -- the outbox -----------------------------------------------------------
  // `number` is the sending number (E.164).

  /// A message was stored as `queued` (or queued again after a hold).
  /// ringback_messages_queued_total{tenant,number}
  virtual void message_queued(std::string_view tenant, std::string_view number)
    = 0;

  /// The carrier accepted a message.
  /// ringback_messages_sent_total{tenant,number}
  virtual void message_sent(std::string_view tenant, std::string_view number)
    = 0;

  /// A send attempt failed and will be retried; `reason` is "429", "5xx",
  /// "timeout" (no answer) or "lost" (an earlier attempt never arrived).
  /// ringback_message_retries_total{tenant,number,reason}
  virtual void message_retried(std::string_view tenant, std::string_view number,
                               std::string_view reason)
    = 0;

  /// A message failed for good (permanent error or attempts used up);
  /// `error_code` 0 when the carrier gave none.
  /// ringback_messages_failed_total{tenant,number,error_code}
  virtual void message_failed(std::string_view tenant, std::string_view number,
                              int error_code)
    = 0;

  /// A delivery report said delivered.
  /// ringback_messages_delivered_total{tenant,number}
  virtual void message_delivered(std::string_view tenant,
                                 std::string_view number)
    = 0;

  /// A delivery report said undelivered (or failed after acceptance).
  /// ringback_messages_undelivered_total{tenant,number,error_code}
  virtual void message_undelivered(std::string_view tenant,
                                   std::string_view number, int error_code)
    = 0;

  /// The pre-send gate refused a message; `reason` is a `gate_reason` name.
  /// ringback_messages_refused_total{tenant,reason}
  virtual void message_refused(std::string_view tenant, std::string_view reason)
    = 0;

  /// The pre-send gate held a message (quiet hours).
  /// ringback_messages_held_total{tenant,reason}
  virtual void message_held(std::string_view tenant, std::string_view reason)
    = 0;

  /// Messages waiting in this process's outbox for a sending number (queued,
  /// not yet handed to the carrier), as a gauge.
  /// ringback_outbox_queue_depth{tenant,number}
  virtual void queue_depth(std::string_view tenant, std::string_view number,
                           std::size_t depth)
    = 0;

  /// How long a message waited in the outbox, from queued to handed to the
  /// carrier (pacing and retries included).
  /// ringback_outbox_queue_wait_seconds{tenant,number} (histogram)
  virtual void queue_wait(std::string_view tenant, std::string_view number,
                          double seconds)
    = 0;

  // -- inbound and the ledger -----------------------------------------------

  /// An inbound SMS was stored (carrier retries are not counted);
  /// `keyword` is a `keyword_kind` name ("none", "opt_out", "opt_in",
  /// "help").
  /// ringback_inbound_messages_total{tenant,keyword}
  virtual void inbound_message(std::string_view tenant, std::string_view keyword)
    = 0;

  /// The ledger changed: `opted_out` true for an opt-out, false for an
  /// opt-in; `source` an `opt_out_source` name ("keyword", "carrier").
  /// ringback_opt_outs_total{tenant,source} and ringback_opt_ins_total{...}
  virtual void opt_out_changed(std::string_view tenant, bool opted_out,
                               std::string_view source)
    = 0;

  /// A status callback was handled; `result` is "applied", "stale" (late or
  /// repeated: the message did not move) or "unknown" (no such MessageSid).
  /// ringback_status_reports_total{result}
  virtual void status_report(std::string_view result) = 0;

  // -- conversations and the AI -----------------------------------------------

  /// A conversation event ("opened", "owner_won", "ai_won", "taken_back",
  /// "closed"...).
  /// ringback_conversation_events_total{tenant,event}
  virtual void conversation_event(std::string_view tenant,
                                  std::string_view event)
    = 0;

  /// An AI turn answered (`provider` "openai" or "offline"; `failed` when
  /// the model failed and the offline responder answered), with the tokens
  /// and cost the model reported and how long it took.
  /// ringback_ai_turns_total{tenant,provider}, ringback_ai_errors_total{tenant},
  /// ringback_ai_tokens_total{tenant,kind="prompt"|"completion"},
  /// ringback_ai_cost_usd_total{tenant}, ringback_ai_latency_seconds{tenant}
  virtual void ai_turn(std::string_view tenant, std::string_view provider,
                       bool failed, std::int64_t prompt_tokens,
                       std::int64_t completion_tokens, double cost_usd,
                       double latency_seconds)
    = 0;

  /// Conversation actors in memory for a tenant (active conversations;
  /// a passivated conversation holds none), as a gauge.
  /// ringback_conversation_actors{tenant}
  virtual void conversation_actors(std::string_view tenant, std::size_t live)
    = 0;

  /// A store connection's executor, read when the metrics are scraped
  /// (`connection`: "main", or "urgent" for PostgreSQL's second one): a
  /// backlog that keeps growing means the store writes less than comes in.
  /// ringback_store_jobs_waiting{connection,lane} (gauge; lane urgent, ahead
  /// or queued), ringback_store_jobs_total{connection},
  /// ringback_store_transactions_total{connection}
  virtual void
  store_activity(std::string_view connection, const engine::store_activity& a)
    = 0;

  // -- exposition -----------------------------------------------------------

  /// Every metric in the Prometheus text exposition format (version 0.0.4).
  virtual std::string render() const = 0;
};

/// Counts nothing; `render` returns an empty string.
class null_metrics final : public metrics {
public:
  void message_queued(std::string_view, std::string_view) override {}
  void message_sent(std::string_view, std::string_view) override {}
  void message_retried(std::string_view, std::string_view,
                       std::string_view) override {}
  void message_failed(std::string_view, std::string_view, int) override {}
  void message_delivered(std::string_view, std::string_view) override {}
  void message_undelivered(std::string_view, std::string_view, int) override {}
  void message_refused(std::string_view, std::string_view) override {}
  void message_held(std::string_view, std::string_view) override {}
  void queue_depth(std::string_view, std::string_view, std::size_t) override {}
  void queue_wait(std::string_view, std::string_view, double) override {}
  void inbound_message(std::string_view, std::string_view) override {}
  void opt_out_changed(std::string_view, bool, std::string_view) override {}
  void status_report(std::string_view) override {}
  void conversation_event(std::string_view, std::string_view) override {}
  void ai_turn(std::string_view, std::string_view, bool, std::int64_t,
               std::int64_t, double, double) override {}
  void conversation_actors(std::string_view, std::size_t) override {
  }
  void store_activity(std::string_view,
                      const engine::store_activity&) override {
  }
  std::string render() const override {
    return {};
  }
};

} // namespace ringback::engine
