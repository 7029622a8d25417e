#pragma once

#include "ringback/actors/services.hpp"
#include "ringback/engine/call_fsm.hpp"

#include <caf/all.hpp>

#include <memory>

namespace ringback::actors {

struct call_state {
  const char* name = "call";
  std::unique_ptr<engine::call_fsm> fsm;
  bool finishing = false;
};

/// One actor per live call (CallSid), hosting its `call_fsm`.
///
/// Protocol (all from its tenant, which forwards in arrival order):
/// - `(event_atom, inbound_event, shared_ptr<voice_reply>)`: a webhook event;
///   the incoming one is answered with a Dial to the owner.
/// - `(fallback_atom)`: the call's timer fired (the tenant holds the timers).
/// - `(release_atom)`: stop (sent after this actor reported `finished_atom`).
/// Internally: `(report_atom, call_report)`, `(decided_atom, claim_result,
/// vector<int64_t>)` from the carrier and kv/store queues.
/// It tells the tenant `(arm_atom, sid, at)` and `(finished_atom, sid)`, and
/// the outbox `(send_atom, ids)` once a missed outcome stored its messages.
caf::behavior call_actor(caf::stateful_actor<call_state>* self,
                         engine::call_record record, services_ptr svc,
                         std::shared_ptr<const engine::tenant> tenant,
                         caf::actor tenant_actor, caf::actor outbox);

} // namespace ringback::actors
