#pragma once

#include "ringback/actors/services.hpp"
#include "ringback/engine/call_fsm.hpp"

#include <caf/all.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ringback::actors {

/// What every call actor of one tenant needs and nobody changes: made once
/// by the tenant actor and shared, so that a live call holds one pointer
/// instead of its own copies (a call actor's memory is the per-call cost).
struct call_shared {
  services_ptr svc;
  tenant_info_ptr info;
  caf::actor outbox;
  caf::actor runs; ///< the tenant's runs actor
};

using call_shared_ptr = std::shared_ptr<const call_shared>;

/// The call.incoming run a call actor hosts while the call is live.
struct incoming_run {
  workflows::workflow_ptr wf;
  /// The run's state without what a resume puts back: the calendar
  /// variables (`resume` is handed them fresh) and the call's and tenant's
  /// variables listed in `fixed_stripped` (recomputed from the call record
  /// and the tenant, which do not change during the call).
  workflows::run_state state;
  /// Bit i: the i-th variable (in name order) of the call's fixed context
  /// (`workflows::call_context` of the call's sid, caller, called number
  /// and tenant) was taken out of `state.vars`.
  std::uint32_t fixed_stripped = 0;
  /// What `make_segment` needs of the stored run for its next segment and
  /// does not set itself (see `runs.hpp`); the tenant, the trigger
  /// (call.incoming) and the CallSid are the call's. A whole `run_record`
  /// (with the stored JSON state) is rebuilt when a segment is stored.
  std::int64_t id = 0; ///< 0 until the store has assigned one
  std::int64_t seq = 0;
  engine::epoch_ms started_at = 0;
  std::string workflow;
  std::string version;
  std::string contact;
  /// Shared with the store jobs: the id the first write assigned.
  std::shared_ptr<std::int64_t> stored_id = std::make_shared<std::int64_t>(0);
  bool waiting = false; ///< waits for dial, recording or http
};

struct call_state {
  const char* name = "call";
  call_shared_ptr shared;
  caf::actor tenant;
  std::optional<engine::call_fsm> fsm;
  /// The tenant has just stored the record for an incoming webhook (see
  /// `call_actor`).
  bool created = false;
  bool finishing = false;
  bool fsm_finished = false;     ///< the state machine has nothing left to do
  bool incoming_loading = false; ///< looking for it in the store
  bool incoming_absent = false;  ///< the store has none for this call
  std::optional<incoming_run> incoming;
  /// The workflow (version) of the call's incoming run as loaded from the
  /// store, whatever its state: a carrier retry of the incoming webhook
  /// replays its first segment for the same answer.
  workflows::workflow_ptr stored_wf;
  /// Voice events that arrived while the run was loading.
  std::vector<
    std::pair<engine::inbound_event, std::shared_ptr<engine::voice_reply>>>
    held;
  /// The answer of the incoming webhook, repeated for a carrier retry.
  std::optional<engine::voice_answer> first_answer;
  /// A voice webhook still waiting for the run's answer (the run waits for
  /// an HTTP response first), and the verbs gathered so far.
  std::shared_ptr<engine::voice_reply> pending_reply;
  std::vector<engine::voice_verb> pending_verbs;
  /// Messages from the tenant handled so far (events and fallbacks): the
  /// tenant passivates this actor only if it forwarded exactly as many.
  std::uint32_t handled = 0;
  /// `handled` when this actor last asked to be passivated, `not_asked` if
  /// it has not asked since it was last busy.
  std::uint32_t asked_at = not_asked;
  static constexpr std::uint32_t not_asked = UINT32_MAX;
  /// Writes of the call posted to the store and not acknowledged (the
  /// incoming run's segments and the row's updates).
  std::uint16_t unacked_writes = 0;
  /// A segment write failed: the run lives only here, so this actor stays.
  bool write_failed = false;
  /// The outcome's claim in flight also carries the call's update (see
  /// `claim_outcome`).
  bool claim_persists = false;
  /// The updates of the call's row go ahead of the store's queue
  /// (`post_ahead`): set when the outcome is claimed with no update of the
  /// row unacknowledged, so that the claim, the runs it starts and their
  /// texts do not wait behind other calls' bookkeeping. The row's updates
  /// follow the claim there while any of them (or the claim) is
  /// unacknowledged, which keeps them in order; then they queue again. The
  /// incoming run's segments (other rows) always queue.
  bool row_ahead = false;
  /// Updates of the call's row posted and not acknowledged (also counted
  /// in `unacked_writes`).
  std::uint16_t row_unacked = 0;
};

/// A call's call.incoming runs as the store has them, with the source of
/// their workflow version when this process does not have that version.
struct stored_incoming {
  std::vector<engine::run_record> runs;
  std::string file;   ///< of the version's source; empty: not needed
  std::string source; ///< the version's YAML; empty: not needed
};

/// Reads `stored_incoming` of call `sid` (a store job; may throw
/// `port_error`). Run in the job that loads the call itself, so that a call
/// loaded for a callback costs one store round trip, not two.
stored_incoming load_stored_incoming(engine::store& db, const services& svc,
                                     const std::string& tenant_id,
                                     const std::string& sid);

/// One actor per live call (CallSid), hosting its `call_fsm`.
///
/// Protocol (all from its tenant, which forwards in arrival order):
/// - `(event_atom, inbound_event, shared_ptr<voice_reply>)`: a webhook event.
///   The incoming one starts the tenant's call.incoming workflow, whose voice
///   steps answer it (without one: a Dial to the owner); the dial-result and
///   recording callbacks resume that run and are answered by it.
/// - `(fallback_atom)`: the call's timer fired (the tenant holds the timers).
/// - `(release_atom)`: stop (sent after this actor reported `finished_atom`
///   or asked to be passivated).
/// Internally: `(report_atom, call_report)`, `(decided_atom, claim_result,
/// vector<int64_t>)` from the carrier and kv/store queues, `(written_atom,
/// bool ok)` when a segment of the incoming run is stored.
/// It tells `tenant` `(arm_atom, sid, at)` and `(finished_atom, sid)`, and
/// the outbox `(send_atom, ids)` once a missed outcome stored its messages.
///
/// Passivation (`services::passivate_after` set): once the call is quiescent
/// -- ringing with no claim or carrier query in flight, its first answer
/// given (or the actor was loaded from the store), no voice reply pending,
/// no events held, no load in flight, and its incoming run either absent or
/// stored (every write acknowledged) and waiting for the dial result -- it
/// tells `tenant` `(passivate_atom, sid, uint32 handled)`, `handled` being
/// the number of events and fallbacks it has handled. It asks again each
/// time it becomes quiescent after handling more. Everything it holds is
/// then in the store: the tenant may release it and reload the call on its
/// next event or timer, like a call created by another process.
/// `shared`: the tenant's services, info, outbox and runs actor (one object
/// for all the tenant's calls; never null).
/// `created`: the tenant has just stored `record` for an incoming webhook, so
/// no run of the call can exist yet; false for a call loaded from the store,
/// whose incoming webhook (a carrier retry) first looks for the run there.
/// `preloaded`: for a loaded call, its incoming runs read with it (null: the
/// actor reads them when an event needs them).
/// Every handler captures only `self`: the per-call memory is the actor and
/// its `call_state`.
caf::behavior call_actor(caf::stateful_actor<call_state>* self,
                         engine::call_record record, call_shared_ptr shared,
                         caf::actor tenant, bool created,
                         std::shared_ptr<const stored_incoming> preloaded
                         = nullptr);

} // namespace ringback::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(
  std::shared_ptr<const ringback::actors::stored_incoming>)
