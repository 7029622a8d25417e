#include "ringback/engine/call_fsm.hpp"

#include <algorithm>
#include <utility>

namespace ringback::engine {

namespace {

using std::chrono::milliseconds;

/// What a `DialCallStatus` says about the outcome, if anything.
std::optional<call_phase> classify_dial_status(std::string_view status) {
  if (status == "completed" || status == "answered")
    return call_phase::answered;
  if (status == "no-answer" || status == "busy" || status == "failed"
      || status == "canceled")
    return call_phase::missed;
  return std::nullopt;
}

bool leg_answered(const call_leg& leg) {
  return leg.status == "in-progress" || leg.status == "answered"
         || (leg.status == "completed" && leg.duration > 0);
}

/// A claim that failed (store or kv down) is tried again this soon.
constexpr milliseconds claim_retry{2'000};

} // namespace

bool call_fsm::is_final_status(std::string_view status) {
  return status == "completed" || status == "busy" || status == "failed"
         || status == "no-answer" || status == "canceled";
}

call_record call_fsm::begin(std::string call_sid, std::string tenant_id,
                            std::string from, std::string to,
                            std::string owner_phone, std::string node_id,
                            epoch_ms now, const call_timing& timing) {
  call_record r;
  r.call_sid = std::move(call_sid);
  r.tenant_id = std::move(tenant_id);
  r.from = std::move(from);
  r.to = std::move(to);
  r.owner_phone = std::move(owner_phone);
  r.node_id = std::move(node_id);
  r.started_at = now;
  r.fallback_at = now + (timing.ring_timeout + timing.fallback_grace).count();
  r.updated_at = now;
  return r;
}

call_fsm::call_fsm(call_record record, call_timing timing)
  : record_(std::move(record)), timing_(timing) {
  // nop
}

call_effects call_fsm::resume(epoch_ms now) {
  if (record_.decided_outcome()) {
    call_effects fx;
    fx.finished = true;
    fx.note = "resumed a decided call";
    return fx;
  }
  // A dial result was stored but its claim never completed (crash between
  // the two): decide again, the claim is idempotent.
  if (auto phase = classify_dial_status(record_.dial_status))
    return decide(*phase, decided_by::dial_result,
                  "resumed with dial result " + record_.dial_status);
  call_effects fx;
  if (record_.fallback_at == 0) {
    fx.finished = true;
    fx.note = "resumed a call with no check pending";
    return fx;
  }
  fx.arm_timer = true;
  fx.note = "ringing " + record_.owner_phone + ", carrier check in "
            + std::to_string(std::max<epoch_ms>(0, record_.fallback_at - now) / 1000)
            + " s unless the dial result comes first";
  return fx;
}

call_effects call_fsm::on_dial_result(std::string_view dial_status,
                                      std::int32_t dial_duration,
                                      epoch_ms now) {
  call_effects fx;
  if (record_.decided_outcome() || claiming_) {
    fx.finished = !claiming_;
    fx.note = "dial result '" + std::string{dial_status}
              + "' ignored: outcome already "
              + (claiming_ ? "being decided" : to_string(record_.phase));
    return fx;
  }
  record_.dial_status = std::string{dial_status};
  record_.dial_duration = dial_duration;
  record_.updated_at = now;
  auto phase = classify_dial_status(dial_status);
  if (!phase) {
    // Unknown status: do not guess, ask the carrier.
    fx.persist = true;
    fx.note = "unknown dial status '" + record_.dial_status
              + "', asking the carrier";
    if (!querying_) {
      querying_ = true;
      fx.query_carrier = true;
    }
    return fx;
  }
  fx = decide(*phase, decided_by::dial_result,
              "dial result " + record_.dial_status);
  fx.persist = true;
  return fx;
}

call_effects call_fsm::on_call_status(std::string_view call_status,
                                      epoch_ms now) {
  call_effects fx;
  if (!is_final_status(call_status)) {
    fx.finished = record_.decided_outcome() && !claiming_;
    fx.note = "call status " + std::string{call_status};
    return fx;
  }
  if (!record_.ended) {
    record_.ended = true;
    record_.updated_at = now;
    fx.persist = true;
  }
  if (record_.decided_outcome()) {
    fx.finished = true;
    fx.note = "call ended after outcome " + std::string{to_string(record_.phase)};
    return fx;
  }
  if (claiming_) {
    fx.note = "call ended while its outcome is being decided";
    return fx;
  }
  // The call ended with no dial result (caller hung up, or the callback was
  // lost or is late): ask the carrier now instead of waiting for the timer.
  fx.note = "call ended (" + std::string{call_status}
            + ") with no dial result, asking the carrier";
  if (!querying_) {
    querying_ = true;
    fx.query_carrier = true;
  }
  return fx;
}

call_effects call_fsm::on_fallback_due(epoch_ms now) {
  call_effects fx;
  if (record_.decided_outcome()) {
    fx.finished = !claiming_;
    fx.note = "fallback timer after the outcome";
    return fx;
  }
  if (claiming_ || querying_) {
    fx.note = "fallback timer while busy";
    return fx;
  }
  if (auto phase = classify_dial_status(record_.dial_status))
    return decide(*phase, decided_by::dial_result,
                  "retrying claim for dial result " + record_.dial_status);
  querying_ = true;
  fx.query_carrier = true;
  fx.note = "no dial result in time, asking the carrier";
  return fx;
}

call_effects call_fsm::on_carrier_report(const call_report& report,
                                         epoch_ms now) {
  querying_ = false;
  if (record_.decided_outcome() || claiming_) {
    call_effects fx;
    fx.finished = !claiming_;
    fx.note = "carrier report after the outcome ignored";
    return fx;
  }
  ++record_.fallback_checks;
  record_.updated_at = now;
  if (!report.status.ok)
    return check_again(now, timing_.recheck_interval,
                       "carrier query failed (HTTP "
                         + std::to_string(report.status.http_status) + ")");
  const auto& legs = report.children;
  if (std::any_of(legs.begin(), legs.end(), leg_answered))
    return decide(call_phase::answered, decided_by::fallback,
                  "carrier: the owner's leg was answered");
  if (is_final_status(report.parent.status))
    return decide(call_phase::missed, decided_by::fallback,
                  "carrier: call " + report.parent.status
                    + " and no leg answered");
  auto leg_final = [](const call_leg& leg) {
    return is_final_status(leg.status);
  };
  if (!legs.empty() && std::all_of(legs.begin(), legs.end(), leg_final))
    return decide(call_phase::missed, decided_by::fallback,
                  "carrier: every dialled leg ended unanswered");
  return check_again(now, timing_.recheck_interval,
                     "carrier: call " + report.parent.status
                       + ", no outcome yet");
}

call_effects call_fsm::on_decided(claim_result result, epoch_ms now) {
  call_effects fx;
  auto phase = claiming_;
  auto by = claiming_by_;
  claiming_.reset();
  claiming_by_ = decided_by::none;
  switch (result) {
    case claim_result::won:
      record_ = decided_record_for(*phase, by);
      record_.updated_at = now;
      fx.arm_timer = true; // cancels: fallback_at is 0 now
      fx.finished = true;
      fx.note = std::string{"outcome "} + to_string(*phase) + " decided by "
                + to_string(by);
      break;
    case claim_result::lost:
      fx.finished = true;
      fx.note = "outcome already decided elsewhere";
      break;
    case claim_result::failed:
      record_.fallback_at = now + claim_retry.count();
      fx.arm_timer = true;
      fx.note = "claiming the outcome failed, retrying";
      break;
  }
  return fx;
}

call_record call_fsm::decided_record_for(call_phase phase, decided_by by) const {
  auto r = record_;
  r.phase = phase;
  r.decided = by;
  r.fallback_at = 0;
  return r;
}

call_record call_fsm::pending_outcome() const {
  return decided_record_for(claiming_.value_or(record_.phase), claiming_by_);
}

call_effects call_fsm::decide(call_phase phase, decided_by by,
                              std::string note) {
  call_effects fx;
  claiming_ = phase;
  claiming_by_ = by;
  fx.decide = phase;
  fx.note = std::move(note);
  return fx;
}

call_effects call_fsm::check_again(epoch_ms now, std::chrono::milliseconds delay,
                                   std::string note) {
  call_effects fx;
  fx.persist = true;
  if (record_.fallback_checks >= timing_.max_checks) {
    record_.fallback_at = 0;
    fx.arm_timer = true;
    fx.finished = true;
    fx.note = note + "; giving up after "
              + std::to_string(record_.fallback_checks) + " checks";
    return fx;
  }
  record_.fallback_at = now + delay.count();
  fx.arm_timer = true;
  fx.note = std::move(note);
  return fx;
}

} // namespace ringback::engine
