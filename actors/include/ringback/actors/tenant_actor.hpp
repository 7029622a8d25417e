#pragma once

#include "ringback/actors/messages.hpp"
#include "ringback/actors/services.hpp"
#include "ringback/engine/deadline_queue.hpp"

#include <caf/all.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ringback::actors {

/// A live call actor (usable as its handle) and how many messages (events
/// and fallbacks) the tenant has forwarded to it, for passivation.
struct live_call : caf::actor {
  live_call(caf::actor handle) // NOLINT(google-explicit-constructor)
    : caf::actor(std::move(handle)) {
    // nop
  }
  std::uint32_t forwarded = 0;
};

struct tenant_state {
  const char* name = "tenant";
  using pending_event
    = std::pair<engine::inbound_event, std::shared_ptr<engine::voice_reply>>;
  /// Live call actors by CallSid (a passivated call has none).
  std::unordered_map<std::string, live_call> calls;
  std::unordered_map<std::string, std::vector<pending_event>> loading;
  std::unordered_map<std::string, int> restarts;
  /// The calls' fallback timers, live and passivated calls alike.
  engine::deadline_queue timers;
  /// When each quiescent call actor is due to be passivated.
  engine::deadline_queue idle;
  engine::epoch_ms wake_at = 0; // earliest wake-up already scheduled
  std::size_t restored = 0;
  /// Inbound texts handed on again to their consumers at starts (so far).
  std::size_t texts_handed_on = 0;
  std::size_t passivated = 0; // call actors let go while ringing
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
/// - `(passivate_atom, sid, uint32 handled)` from a quiescent call actor:
///   if the tenant forwarded it exactly `handled` messages, it is released
///   once `services::passivate_after` has passed with nothing forwarded to
///   it (at once for 0); otherwise the request is ignored (the actor asks
///   again after handling what is on its way). A passivated call keeps its
///   timer here; its next event, or its timer, reloads it from the store.
/// - `(stats_atom)` -> `tenant_stats`.
/// A call actor that dies abnormally is restored from the store (at most
/// three times per call).
caf::behavior tenant_actor(caf::stateful_actor<tenant_state>* self,
                           std::shared_ptr<const engine::tenant> tenant,
                           services_ptr svc, caf::actor outbox);

} // namespace ringback::actors
