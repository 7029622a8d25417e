#pragma once

#include "ringback/actors/messages.hpp"
#include "ringback/actors/runs.hpp"
#include "ringback/actors/services.hpp"
#include "ringback/engine/deadline_queue.hpp"

#include <caf/all.hpp>

#include <map>
#include <memory>
#include <set>
#include <string>

namespace ringback::actors {

struct runs_state {
  const char* name = "runs";
  engine::deadline_queue timers; // "run:<id>" and "cron:<workflow>"
  /// The firing each cron timer is armed for: the kv key that makes a firing
  /// run once across processes names it (not the instant a process woke).
  std::map<std::string, engine::epoch_ms> cron_due;
  engine::epoch_ms wake_at = 0;
  std::set<std::int64_t> http_pending;
  runs_stats stats;
};

/// One actor per tenant hosting the tenant's workflow runs that are not
/// answering a live call (the call actor hosts those): it starts runs for a
/// trigger, stores each segment together with its messages in one
/// transaction, holds the timers of durable waits, resumes runs waiting for a
/// reply or an HTTP response, and fires `schedule` workflows.
///
/// Protocol:
/// - `(start_atom, trigger, context vars, call_sid)`: start every workflow
///   of `trigger` (the calendar variables are added here).
/// - `(entry_atom, call_sid, step ordinal, context extra)`: run the
///   `on_transcription` branch of the call's incoming run.
/// - `(adopt_atom, run_record)`: a stored run now waits for a timer, a
///   reply or an HTTP response: arm / send it.
/// - `(event_atom, inbound_event sms, reply)`: an inbound SMS (stored once
///   already): resume the runs waiting for its sender, then start
///   `sms.received` workflows.
/// - `(recover_atom)`: re-arm the waits of this node's stored runs (and of
///   runs whose owner never came back).
/// - `(stats_atom)` -> `runs_stats`.
/// A resume is claimed in the store (`update_run` on the run's seq), so two
/// processes never both continue one run.
caf::behavior runs_actor(caf::stateful_actor<runs_state>* self,
                         tenant_info_ptr info, services_ptr svc,
                         caf::actor outbox);

} // namespace ringback::actors
