#pragma once

#include "ringback/actors/messages.hpp"
#include "ringback/actors/services.hpp"

#include <caf/all.hpp>

#include <map>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace ringback::actors {

/// The messages waiting to go out through one sending number of a tenant, in
/// order (lowest id first). Only the head is paced; once it may go, it is
/// handed on and the next head is paced at once.
struct outbox_lane {
  std::string tenant_id;
  std::string from;
  std::set<std::int64_t> queued;
  /// A pacing question is in the kv, or a pacing timer is armed.
  bool pacing = false;
  /// The number's pace and the tenant's cap.
  engine::pace number_pace;
  std::optional<engine::pace> tenant_cap;
};

struct outbox_state {
  const char* name = "outbox";
  /// Lanes by (tenant, sending number).
  std::map<std::pair<std::string, std::string>, outbox_lane> lanes;
  /// Queued messages by id (their record as loaded), in a lane or waiting
  /// for a retry.
  std::unordered_map<std::int64_t, engine::message_record> known;
  /// When each message entered the queue (queue wait metrics).
  std::unordered_map<std::int64_t, engine::epoch_ms> queued_at;
  /// Handed to the store or the carrier, answer pending.
  std::unordered_set<std::int64_t> in_flight;
  /// Waiting for a retry timer.
  std::unordered_set<std::int64_t> waiting;
  /// Held messages (quiet hours), by id, and the earliest release armed.
  std::unordered_map<std::int64_t, engine::epoch_ms> held;
  /// Failed lookups per message whose send had an unknown outcome.
  std::unordered_map<std::int64_t, std::int32_t> lookups;
  /// The carrier's answer to a send whose outcome was unknown (a 5xx, a
  /// timeout): if the lookup then finds no message, the retry (its delay,
  /// Retry-After, the final error code) follows that answer.
  std::unordered_map<std::int64_t, engine::carrier_status> unsure;
  /// In-process pacing state used while the kv cannot be reached.
  std::unordered_map<std::string, engine::epoch_ms> local_tats;
  std::size_t sent = 0;
  std::size_t failed = 0;
  std::size_t refused = 0;
  std::minstd_rand rng{std::random_device{}()};
};

/// Sends the stored outbound messages (the outbox) through the carrier.
///
/// Each message was written to the store, already through the pre-send gate,
/// before the outbox hears of it. Queued messages wait in a lane per sending
/// number, in order; the head of each lane is paced through the kv (GCRA on
/// the number's pace and the tenant's cap, shared by every process on the same
/// Redis), so one tenant's numbers never slow another's. A message is claimed
/// in the store (`queued -> sending`, conditional: one process sends it),
/// checked once more against the opt-out ledger, then sent with a status
/// callback URL. Transient failures (429 with its Retry-After, 5xx, no
/// answer) are retried with exponential backoff and jitter up to the retry
/// policy's attempts, then `failed` with the carrier's code; permanent errors
/// are not retried, and 21610 records an opt-out. A send whose outcome is
/// unknown (the request went out, no answer came back; or a crash mid-send)
/// is looked up at the carrier before it is ever sent again. Held messages
/// (quiet hours) are queued again when their hold ends.
///
/// Protocol:
/// - `(send_atom, vector<int64_t> ids)`: messages just stored (queued, held
///   or refused: refused ones are only counted).
/// - `(recover_atom)`: resume this node's queued, held and interrupted
///   messages after a start.
/// - `(stats_atom)` -> `outbox_stats`.
caf::behavior outbox_actor(caf::stateful_actor<outbox_state>* self,
                           services_ptr svc);

/// The number's pace (its configured `mps`, the kind's burst) and the
/// tenant's cap, for messages from `from` on behalf of `t`; a number the
/// tenant does not have paces at 1 message/s.
std::pair<engine::pace, std::optional<engine::pace>>
pace_for(const engine::tenant* t, std::string_view from);

} // namespace ringback::actors
