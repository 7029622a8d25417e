#pragma once

#include "ringback/engine/ports.hpp"
#include "ringback/engine/records.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace ringback::engine {

/// Timing of the missed-call detection.
struct call_timing {
  std::chrono::milliseconds ring_timeout{20'000};
  /// Extra wait after the ring timeout before asking the carrier.
  std::chrono::milliseconds fallback_grace{10'000};
  /// Delay between two carrier checks while the outcome is still open.
  std::chrono::milliseconds recheck_interval{15'000};
  /// Give up asking the carrier after this many checks.
  std::int32_t max_checks = 240;
};

/// What the host of a call_fsm must do after an event. Several may be set.
struct call_effects {
  /// Write the record (`store::update_call`).
  bool persist = false;
  /// Claim this outcome (kv claim, then `store::decide_outcome` together with
  /// the workflow's messages); report back with `on_decided`.
  std::optional<call_phase> decide;
  /// (Re)arm the single fallback timer at `record().fallback_at` (0: cancel).
  bool arm_timer = false;
  /// Ask the carrier about the call and its legs; report with
  /// `on_carrier_report`.
  bool query_carrier = false;
  /// Nothing left to do in memory: the host may stop (state is stored).
  bool finished = false;
  /// Why, for the log.
  std::string note;
};

/// The state machine of one inbound call: ringing the owner, then exactly one
/// outcome (answered or missed), decided by the Dial action callback (fast
/// path) or by asking the carrier once `ring_timeout + fallback_grace` has
/// passed (fallback). Pure: no I/O, no clock; time comes in as arguments.
class call_fsm {
public:
  /// A new call whose incoming webhook arrived at `now`.
  static call_record begin(std::string call_sid, std::string tenant_id,
                           std::string from, std::string to,
                           std::string owner_phone, std::string node_id,
                           epoch_ms now, const call_timing& timing);

  /// Resumes a call from its stored record (after a restart or a crash).
  call_fsm(call_record record, call_timing timing);

  /// Effects to apply right after construction (re-arm or re-claim).
  call_effects resume(epoch_ms now);

  /// `DialCallStatus` of the Dial action callback.
  call_effects on_dial_result(std::string_view dial_status,
                              std::int32_t dial_duration, epoch_ms now);

  /// `CallStatus` of a status callback for the parent call.
  call_effects on_call_status(std::string_view call_status, epoch_ms now);

  /// The fallback timer fired.
  call_effects on_fallback_due(epoch_ms now);

  /// The carrier answered the query asked for by `query_carrier`.
  call_effects on_carrier_report(const call_report& report, epoch_ms now);

  /// Result of the claim asked for by `decide`: `won` if this host decided
  /// the outcome, `lost` if another already had, `failed` on an error (the
  /// claim is tried again later).
  enum class claim_result : std::uint8_t { won, lost, failed };
  call_effects on_decided(claim_result result, epoch_ms now);

  const call_record& record() const {
    return record_;
  }

  /// The record as it will be stored if the claim in flight wins.
  call_record pending_outcome() const;

  bool claim_in_flight() const {
    return claiming_.has_value();
  }

  bool query_in_flight() const {
    return querying_;
  }

  /// Classifies a parent call or leg status as finished.
  static bool is_final_status(std::string_view status);

private:
  call_record decided_record_for(call_phase phase, decided_by by) const;
  call_effects decide(call_phase phase, decided_by by, std::string note);
  call_effects check_again(epoch_ms now, std::chrono::milliseconds delay,
                           std::string note);

  call_record record_;
  call_timing timing_;
  std::optional<call_phase> claiming_;
  decided_by claiming_by_ = decided_by::none;
  bool querying_ = false;
};

} // namespace ringback::engine
