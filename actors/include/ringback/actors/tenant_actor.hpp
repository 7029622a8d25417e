#pragma once

#include "ringback/actors/messages.hpp"
#include "ringback/actors/services.hpp"
#include "ringback/engine/deadline_queue.hpp"

#include <caf/all.hpp>

#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ringback::actors {

struct tenant_state {
  const char* name = "tenant";
  using pending_event
    = std::pair<engine::inbound_event, std::shared_ptr<engine::voice_reply>>;
  std::unordered_map<std::string, caf::actor> calls;
  std::unordered_map<std::string, std::vector<pending_event>> loading;
  std::unordered_map<std::string, int> restarts;
  engine::deadline_queue timers;
  engine::epoch_ms wake_at = 0; // earliest wake-up already scheduled
  std::size_t restored = 0;
  caf::actor runs; // the tenant's runs actor (linked)
  caf::actor conversations; // the tenant's conversations actor (linked)
};

/// One actor per tenant: supervises the tenant's call actors and holds their
/// timers; its linked children are the tenant's runs actor (workflow runs)
/// and conversations actor (customer conversations and the AI takeover).
///
/// Protocol:
/// - `(event_atom, inbound_event, shared_ptr<voice_reply>)` from the ingress;
///   routed to the call actor by CallSid, creating (incoming) or loading it
///   from the store (any other event, e.g. on another process or after a
///   restart) first.
/// - `(recover_atom)`: reload the unfinished calls of this node from the store
///   and re-arm their timers (sent once at start).
/// - `(stats_atom)` -> `tenant_stats`.
/// A call actor that dies abnormally is restored from the store (at most
/// three times per call).
caf::behavior tenant_actor(caf::stateful_actor<tenant_state>* self,
                           std::shared_ptr<const engine::tenant> tenant,
                           services_ptr svc, caf::actor outbox);

} // namespace ringback::actors
