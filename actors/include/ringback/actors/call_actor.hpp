#pragma once

#include "ringback/actors/services.hpp"
#include "ringback/engine/call_fsm.hpp"

#include <caf/all.hpp>

#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace ringback::actors {

/// The call.incoming run a call actor hosts while the call is live.
struct incoming_run {
  workflows::workflow_ptr wf;
  workflows::run_state state;
  engine::run_record run; ///< id 0 until the store has assigned one
  /// Shared with the store jobs: the id the first write assigned.
  std::shared_ptr<std::int64_t> stored_id = std::make_shared<std::int64_t>(0);
  bool waiting = false; ///< waits for dial, recording or http
};

struct call_state {
  const char* name = "call";
  std::unique_ptr<engine::call_fsm> fsm;
  bool finishing = false;
  bool fsm_finished = false; ///< the state machine has nothing left to do
  std::optional<incoming_run> incoming;
  bool incoming_loading = false; ///< looking for it in the store
  bool incoming_absent = false;  ///< the store has none for this call
  /// The workflow (version) of the call's incoming run as loaded from the
  /// store, whatever its state: a carrier retry of the incoming webhook
  /// replays its first segment for the same answer.
  workflows::workflow_ptr stored_wf;
  /// Voice events that arrived while the run was loading.
  std::vector<std::pair<engine::inbound_event, std::shared_ptr<engine::voice_reply>>>
    held;
  /// The answer of the incoming webhook, repeated for a carrier retry.
  std::optional<engine::voice_answer> first_answer;
  /// A voice webhook still waiting for the run's answer (the run waits for
  /// an HTTP response first), and the verbs gathered so far.
  std::shared_ptr<engine::voice_reply> pending_reply;
  std::vector<engine::voice_verb> pending_verbs;
};

/// One actor per live call (CallSid), hosting its `call_fsm`.
///
/// Protocol (all from its tenant, which forwards in arrival order):
/// - `(event_atom, inbound_event, shared_ptr<voice_reply>)`: a webhook event.
///   The incoming one starts the tenant's call.incoming workflow, whose voice
///   steps answer it (without one: a Dial to the owner); the dial-result and
///   recording callbacks resume that run and are answered by it.
/// - `(fallback_atom)`: the call's timer fired (the tenant holds the timers).
/// - `(release_atom)`: stop (sent after this actor reported `finished_atom`).
/// Internally: `(report_atom, call_report)`, `(decided_atom, claim_result,
/// vector<int64_t>)` from the carrier and kv/store queues.
/// It tells the tenant `(arm_atom, sid, at)` and `(finished_atom, sid)`, and
/// the outbox `(send_atom, ids)` once a missed outcome stored its messages.
/// `created`: the tenant has just stored `record` for an incoming webhook, so
/// no run of the call can exist yet; false for a call loaded from the store,
/// whose incoming webhook (a carrier retry) first looks for the run there.
caf::behavior call_actor(caf::stateful_actor<call_state>* self,
                         engine::call_record record, services_ptr svc,
                         tenant_info_ptr info, caf::actor tenant_actor,
                         caf::actor outbox, caf::actor runs, bool created);

} // namespace ringback::actors
