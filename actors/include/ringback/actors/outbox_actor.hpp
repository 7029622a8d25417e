#pragma once

#include "ringback/actors/messages.hpp"
#include "ringback/actors/services.hpp"

#include <caf/all.hpp>

#include <random>
#include <unordered_map>
#include <unordered_set>

namespace ringback::actors {

struct outbox_state {
  const char* name = "outbox";
  std::unordered_set<std::int64_t> in_flight;
  std::unordered_set<std::int64_t> waiting;
  /// Failed lookups per message whose send had an unknown outcome.
  std::unordered_map<std::int64_t, std::int32_t> lookups;
  std::size_t sent = 0;
  std::size_t failed = 0;
  std::minstd_rand rng{std::random_device{}()};
};

/// Sends the stored outbound messages (the outbox) through the carrier, with
/// retries and backoff, recording every state change in the store
/// (`queued -> sending -> sent | failed`). A send whose outcome is unknown
/// (the request went out, no answer came back; or a crash mid-send) is looked
/// up at the carrier before it is ever sent again, so a lost answer does not
/// become a second text.
///
/// Protocol:
/// - `(send_atom, vector<int64_t> ids)`: messages already stored as queued.
/// - `(recover_atom)`: resend this node's queued messages after a start.
/// - `(stats_atom)` -> `outbox_stats`.
caf::behavior outbox_actor(caf::stateful_actor<outbox_state>* self,
                           services_ptr svc);

} // namespace ringback::actors
