#pragma once

#include "ringback/actors/runs.hpp"
#include "ringback/engine/ai.hpp"
#include "ringback/engine/call_fsm.hpp"
#include "ringback/engine/http_port.hpp"
#include "ringback/engine/ingress.hpp"
#include "ringback/engine/ports.hpp"
#include "ringback/engine/records.hpp"

#include <caf/all.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

// All message types of ringback's actors. Atom text is at most 10 characters
// in CAF 0.17.6.
CAF_BEGIN_TYPE_ID_BLOCK(ringback, caf::first_custom_type_id)
  // tenant <- ingress
  CAF_ADD_ATOM(ringback, ringback::actors, event_atom, "event")
  // tenant <- store: a call was created or loaded
  CAF_ADD_ATOM(ringback, ringback::actors, loaded_atom, "loaded")
  // tenant <- call: (re)arm or cancel the call's timer
  CAF_ADD_ATOM(ringback, ringback::actors, arm_atom, "arm")
  // tenant -> tenant: the earliest timer may be due
  CAF_ADD_ATOM(ringback, ringback::actors, wake_atom, "wake")
  // tenant <- call: nothing left in memory
  CAF_ADD_ATOM(ringback, ringback::actors, finished_atom, "finished")
  // tenant -> call: stop now
  CAF_ADD_ATOM(ringback, ringback::actors, release_atom, "release")
  // tenant -> call: the fallback timer fired
  CAF_ADD_ATOM(ringback, ringback::actors, fallback_atom, "fallback")
  // call <- carrier pool
  CAF_ADD_ATOM(ringback, ringback::actors, report_atom, "report")
  // call <- kv/store: the outcome claim's result
  CAF_ADD_ATOM(ringback, ringback::actors, decided_atom, "decided")
  // tenant/outbox: resume stored work after a start
  CAF_ADD_ATOM(ringback, ringback::actors, recover_atom, "recover")
  // outbox <- anyone: send these stored messages
  CAF_ADD_ATOM(ringback, ringback::actors, send_atom, "send")
  // outbox <- carrier pool
  CAF_ADD_ATOM(ringback, ringback::actors, sent_atom, "sent")
  // outbox -> outbox: a retry is due
  CAF_ADD_ATOM(ringback, ringback::actors, retry_atom, "retry")
  // outbox: ask the carrier whether a send with an unknown outcome arrived
  CAF_ADD_ATOM(ringback, ringback::actors, reconcile_atom, "reconcile")
  // outbox <- carrier pool: the answer to that question
  CAF_ADD_ATOM(ringback, ringback::actors, checked_atom, "checked")
  // outbox <- store: stored messages loaded, to queue, hold or count
  CAF_ADD_ATOM(ringback, ringback::actors, enqueue_atom, "enqueue")
  // outbox <- kv pool: a lane's pacing answer
  CAF_ADD_ATOM(ringback, ringback::actors, paced_atom, "paced")
  // outbox -> outbox: pace a lane's head again
  CAF_ADD_ATOM(ringback, ringback::actors, pump_atom, "pump")
  // outbox -> outbox: held messages may be due
  CAF_ADD_ATOM(ringback, ringback::actors, unhold_atom, "unhold")
  // runs <- ai pool: an ai_reply step's answer
  CAF_ADD_ATOM(ringback, ringback::actors, ai_atom, "ai")
  // conversation <- conversations: one job (customer, owner, due)
  CAF_ADD_ATOM(ringback, ringback::actors, job_atom, "job")
  // conversations <- conversation: nothing left to do for now
  CAF_ADD_ATOM(ringback, ringback::actors, idle_atom, "idle")
  // conversations -> conversations: scan the store for deadlines
  CAF_ADD_ATOM(ringback, ringback::actors, scan_atom, "scan")
  // runs <- anyone: start the workflows of a trigger
  CAF_ADD_ATOM(ringback, ringback::actors, start_atom, "start")
  // runs <- tenant: run a record_voicemail's on_transcription branch
  CAF_ADD_ATOM(ringback, ringback::actors, entry_atom, "entry")
  // runs <- call: host a stored run that now waits for a timer/reply/http
  CAF_ADD_ATOM(ringback, ringback::actors, adopt_atom, "adopt")
  // runs/call <- store: a run's segment was written (or lost the race)
  CAF_ADD_ATOM(ringback, ringback::actors, written_atom, "written")
  // runs/call <- http pool: an `http` step's response
  CAF_ADD_ATOM(ringback, ringback::actors, http_atom, "http")
  // runs -> runs: re-sync the cron timers of schedule workflows
  CAF_ADD_ATOM(ringback, ringback::actors, cron_atom, "cron")
  // introspection for tests and metrics
  CAF_ADD_ATOM(ringback, ringback::actors, stats_atom, "stats")
  // tenant <- call: quiescent after this many forwarded messages, let me go
  CAF_ADD_ATOM(ringback, ringback::actors, passivate_atom, "passivate")
CAF_END_TYPE_ID_BLOCK(ringback)

// Messages never leave the process (cross-process coordination goes through
// the store and the kv), so these types need no serialization.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ringback::engine::inbound_event)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<ringback::engine::voice_reply>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ringback::engine::call_record)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ringback::engine::call_report)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ringback::engine::call_fsm::claim_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ringback::engine::sms_receipt)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ringback::engine::sms_lookup)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ringback::engine::pace_answer)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ringback::engine::ai_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ringback::engine::conversation_record)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<ringback::engine::conversation_record>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ringback::workflows::ai_action)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ringback::engine::message_record)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<ringback::engine::message_record>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<ringback::engine::call_record>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<ringback::engine::inbound_message>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<std::int64_t>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<std::string>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ringback::workflows::context)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ringback::workflows::resume_event)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ringback::engine::run_record)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<ringback::engine::run_record>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ringback::engine::outbound_http_response)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<ringback::actors::stored_segment>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(
  std::vector<std::shared_ptr<ringback::actors::stored_segment>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ringback::workflows::workflow_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ringback::workflows::http_action)

namespace ringback::actors {

/// Statistics a tenant reports on `stats_atom` (tests, metrics).
struct tenant_stats {
  std::size_t live_calls = 0;
  std::size_t loading = 0;
  std::size_t timers = 0;
  std::size_t restored = 0;
  /// Ringing calls whose actor was let go while quiescent (so far); such a
  /// call keeps its timer in `timers` and is not in `live_calls`.
  std::size_t passivated = 0;
  /// Inbound texts a start handed on again (their parts not stored).
  std::size_t texts_handed_on = 0;
};

/// Statistics a tenant's runs actor reports on `stats_atom`.
struct runs_stats {
  std::size_t timers = 0;     ///< runs and schedules with a timer armed
  std::size_t http = 0;       ///< runs waiting for an HTTP response
  std::size_t started = 0;    ///< runs started by this actor
  std::size_t resumed = 0;    ///< segments resumed by this actor
  std::size_t lost = 0;       ///< resumes another process won first
};

/// Statistics a tenant's conversations actor reports on `stats_atom`.
struct conversations_stats {
  std::size_t live = 0;       ///< conversation actors in memory
  std::size_t timers = 0;     ///< deadlines armed in memory
  std::size_t loading = 0;    ///< conversations being loaded
  std::size_t spawned = 0;    ///< conversation actors started so far
  std::size_t passivated = 0; ///< conversation actors let go so far
  std::size_t ai_turns = 0;   ///< AI turns started by this process
  std::size_t lost = 0;       ///< writes another process won first
};

/// Statistics the outbox reports on `stats_atom`.
struct outbox_stats {
  std::size_t in_flight = 0;
  std::size_t waiting_retry = 0;
  std::size_t sent = 0;
  std::size_t failed = 0;
  std::size_t queued = 0;  ///< in lanes, waiting for their pace
  std::size_t held = 0;    ///< held until quiet hours end
  std::size_t refused = 0; ///< refused by the gate (at queueing or at send)
};

} // namespace ringback::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ringback::actors::tenant_stats)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ringback::actors::outbox_stats)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ringback::actors::runs_stats)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ringback::actors::conversations_stats)
