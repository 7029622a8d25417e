#pragma once

#include "ringback/actors/messages.hpp"
#include "ringback/actors/services.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <chrono>

namespace ringback::actors {

/// Schedules a `wake_atom` for the earliest deadline of `self->state.timers`
/// (an `engine::deadline_queue`) unless one is already due sooner; records it
/// in `self->state.wake_at`. Stale wake-ups are harmless: they pop nothing.
/// Shared by the actors that hold the timers of many others (tenant, runs,
/// conversations), so that a pending CAF timer never keeps a short-lived
/// actor alive.
template <class State>
void schedule_wake(caf::stateful_actor<State>* self, const services_ptr& svc) {
  auto next = self->state.timers.next();
  if (!next)
    return;
  auto now = svc->clock->now();
  if (self->state.wake_at != 0 && self->state.wake_at <= *next
      && self->state.wake_at >= now)
    return;
  self->state.wake_at = *next;
  self->delayed_send(self,
                     std::chrono::milliseconds{
                       std::max<engine::epoch_ms>(0, *next - now)},
                     wake_atom_v);
}

} // namespace ringback::actors
