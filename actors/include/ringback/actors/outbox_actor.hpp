#pragma once

#include "ringback/actors/messages.hpp"
#include "ringback/actors/services.hpp"

#include <caf/all.hpp>

#include <deque>
#include <map>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace ringback::actors {

/// The messages waiting to go out through one sending number of a tenant, in
/// order (lowest id first). The kv grants the lane several slots at once
/// (`kv::pace_slots`, up to `outbox_max_slots` within `outbox_horizon_ms`);
/// each slot goes to the next queued message, which is claimed and sent when
/// its slot's time comes, without waiting for the answers to earlier sends.
struct outbox_lane {
  std::string tenant_id;
  std::string from;
  /// Waiting for a slot.
  std::set<std::int64_t> queued;
  /// Granted a slot, not started yet: (when it may start, message), in the
  /// order they were granted (the lane's order).
  std::deque<std::pair<engine::epoch_ms, std::int64_t>> slotted;
  /// A pacing question is in the kv.
  bool asking = false;
  /// The kv refused: ask again no sooner than this.
  engine::epoch_ms blocked_until = 0;
  /// When the armed pump timer fires (0: none armed).
  engine::epoch_ms timer_at = 0;
  /// Started (claimed or being claimed, or at the carrier), the answer to
  /// the send not back yet; at most `outbox_max_sending`.
  std::size_t sending = 0;
  /// The number's pace and the tenant's cap.
  engine::pace number_pace;
  std::optional<engine::pace> tenant_cap;
};

/// At most this many slots are asked for (and held) per lane at once.
constexpr std::size_t outbox_max_slots = 64;
/// Slots are granted at most this far ahead of the question (well under the
/// 1 s the kv keeps a pacing time beyond its last slot).
constexpr engine::epoch_ms outbox_horizon_ms = 200;
/// At most this many sends of a lane are under way at once (claimed and
/// not answered yet): the carrier's pace is the limit, not the outbox, and a
/// crash leaves at most this many per lane to look up.
constexpr std::size_t outbox_max_sending = 32;
/// A lane's timer waits at least this long, so that slots close together
/// start together (one claim for several); a slot never starts early.
constexpr engine::epoch_ms outbox_tick_ms = 5;
/// A text claimed in the transaction that wrote it (`claim_in_writing`) goes
/// to the carrier without another store job if its slot comes within this
/// long of its arrival here; one its number's pace holds longer is checked
/// against the opt-out ledger again first (a STOP may have come meanwhile).
constexpr engine::epoch_ms outbox_early_claim_grace_ms = 250;

struct outbox_state {
  const char* name = "outbox";
  /// Lanes by (tenant, sending number).
  std::map<std::pair<std::string, std::string>, outbox_lane> lanes;
  /// Queued messages by id (their record as loaded), in a lane or waiting
  /// for a retry. One `sending` here was claimed in the transaction that
  /// wrote it (`claim_in_writing`): no claim of its own when its slot comes.
  std::unordered_map<std::int64_t, engine::message_record> known;
  /// When each message entered the queue (queue wait metrics).
  std::unordered_map<std::int64_t, engine::epoch_ms> queued_at;
  /// Handed to the store or the carrier, answer pending.
  std::unordered_set<std::int64_t> in_flight;
  /// Holding a slot of their lane, not started yet.
  std::unordered_set<std::int64_t> slotted;
  /// Stored messages to load, and updates to save, gathered until the
  /// `(pump_atom)` the outbox sent itself (one store job each per burst).
  std::vector<std::int64_t> to_load;
  std::vector<engine::message_record> to_save;
  bool flush_armed = false;
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
/// number, in order; each lane asks the kv for several slots at once (GCRA on
/// the number's pace and the tenant's cap, shared by every process on the
/// same Redis), so one tenant's numbers never slow another's, and a lane has
/// as many sends in flight as its pace allows. When their slots come, a
/// lane's due messages are claimed in the store in one job (`queued ->
/// sending`, each conditional: one process sends it), checked once more
/// against the opt-out ledger in the same transaction, then sent with a
/// status callback URL, in the lane's order. A text claimed in the
/// transaction that wrote it (`claim_in_writing`), handed over as written by
/// its writer, skips that claim (the ledger is read again only if its pace
/// held it past `outbox_early_claim_grace_ms`). Transient failures (429 with
/// its Retry-After, 5xx, no answer) are retried with exponential backoff and
/// jitter up to the retry policy's attempts, then `failed` with the
/// carrier's code; permanent errors are not retried, and 21610 records an
/// opt-out. A send whose outcome is unknown (the request went out, no answer
/// came back; or a crash mid-send) is looked up at the carrier before it is
/// ever sent again. Held messages (quiet hours) are queued again when their
/// hold ends. Loads and saves are gathered into one store job per burst;
/// pending saves are always posted before the next claims.
///
/// A message on the `call` channel (an owner's page, `call_owner`) goes
/// exactly the same way, in its sending number's lane, but is "sent" with
/// `carrier::place_call` (no status callback; its `message_sid` is the
/// CallSid), looked up with `carrier::find_call`, never records a carrier
/// opt-out, and is not counted by the message metrics (they count texts).
///
/// Protocol:
/// - `(send_atom, vector<message_record>)`: messages just stored, as stored
///   (ids assigned, the gate's states set: queued ones are sent, held ones
///   wait for their hold, refused ones are only counted). What the hosts
///   send after a segment, a conversation's transition or a STOP/HELP
///   answer is written: the outbox does not read them back.
/// - `(send_atom, vector<int64_t> ids)`: the same for messages known only
///   by id (loaded in one store job per burst).
/// - `(recover_atom)`: resume this node's queued, held and interrupted
///   messages after a start.
/// - `(stats_atom)` -> `outbox_stats` (`queued` counts slotted messages).
/// - internal: `(pump_atom)` flushes gathered loads and saves; `(pump_atom,
///   tenant, from)` moves a lane on (its timer); `(paced_atom, tenant, from,
///   starts, retry_after_ms, kv_ok)` is the kv's answer; `(sent_atom, ids,
///   store_failed)` reports messages that were not sent.
caf::behavior outbox_actor(caf::stateful_actor<outbox_state>* self,
                           services_ptr svc);

/// The number's pace (its configured `mps`, the kind's burst) and the
/// tenant's cap, for messages from `from` on behalf of `t`; a number the
/// tenant does not have paces at 1 message/s.
std::pair<engine::pace, std::optional<engine::pace>>
pace_for(const engine::tenant* t, std::string_view from);

} // namespace ringback::actors
