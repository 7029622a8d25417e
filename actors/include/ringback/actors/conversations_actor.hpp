#pragma once

#include "ringback/actors/messages.hpp"
#include "ringback/actors/runs.hpp"
#include "ringback/actors/services.hpp"
#include "ringback/engine/deadline_queue.hpp"

#include <caf/all.hpp>

#include <string>
#include <unordered_map>
#include <vector>

namespace ringback::actors {

/// What a conversation actor is asked to do, one at a time.
struct conversation_job {
  enum class kind : std::uint8_t { customer, owner, due };
  kind what = kind::due;
  std::string body;        ///< customer / owner text
  /// customer / owner: the inbound text's MessageSid (its part is stored
  /// once: `store::consume_inbound` in the transition's transaction).
  std::string message_sid;
  engine::epoch_ms at = 0;
};

/// What every conversation actor of one tenant needs and nobody changes:
/// made once by the tenant's conversations actor and shared, so that an
/// active conversation holds one pointer instead of its own copies.
struct conversation_shared {
  tenant_info_ptr info;
  services_ptr svc;
  caf::actor parent; ///< the tenant's conversations actor
  caf::actor runs;
  caf::actor outbox;
};

struct conversation_state {
  const char* name = "conversation";
  std::shared_ptr<const conversation_shared> shared;
  engine::conversation_record rec;
  /// Waiting jobs, oldest first. A vector: an empty one allocates nothing
  /// (a deque allocates ~600 B at once), and there are rarely more than two.
  std::vector<conversation_job> jobs;
  bool busy = false;      ///< a transition is being written
  bool releasing = false; ///< the parent let it go: stop when idle
  int retries = 0;        ///< lost writes of the current job
};

/// A live conversation actor and its customer's number.
struct live_conversation {
  caf::actor actor;
  std::string customer;
};

struct conversations_state {
  const char* name = "conversations";
  /// Live conversation actors by conversation id.
  std::unordered_map<std::int64_t, live_conversation> live;
  /// Conversation ids by customer number (for the live ones).
  std::unordered_map<std::string, std::int64_t> by_customer;
  /// The live ones' ids by their actor's id: a passivated actor's down
  /// message finds its conversation without a scan of `live`.
  std::unordered_map<caf::actor_id, std::int64_t> by_actor;
  /// Jobs waiting for their conversation to be loaded or created, by
  /// customer number ("#<id>" for jobs addressed by id).
  std::unordered_map<std::string, std::vector<conversation_job>> loading;
  /// "c:<id>": a conversation's next deadline; "p:<id>": passivation.
  engine::deadline_queue timers;
  engine::epoch_ms wake_at = 0;
  bool scanning = false; ///< the periodic scan runs
  conversations_stats stats;
};

/// One actor per tenant that supervises the tenant's conversation actors
/// (one per customer, spawned on demand, passivated when idle: the actor
/// stops, its state stays in the store) and holds their timers (the owner-
/// reply window, batched AI turns, idle close) in one deadline queue, so a
/// passivated conversation costs no memory beyond its next deadline, and
/// deadlines further out are found by a periodic scan of the store.
///
/// A conversation actor applies one `engine::conversation` transition at a
/// time and writes it with `store::update_conversation` (conditional on the
/// record's seq) in one transaction with its transcript, its events and the
/// messages it sends (the relay to the owner, the owner's words to the
/// customer, the closing summary); a lost write reloads the record and
/// applies the event again. Only the writer of a window's takeover starts the
/// AI turn (the tenant's `conversation.owner_timeout` workflows, through the
/// runs actor), so a window has exactly one outcome across processes.
///
/// Protocol:
/// - `(event_atom, inbound_event sms, reply)`: an inbound SMS of the tenant
///   (stored once already, no STOP/START/HELP): from the owner's phone it is
///   the owner's reply (`#12 ...` or the conversation the owner last heard
///   from), from anyone else a customer message.
/// - `(recover_atom)`: scan the store for due deadlines (also done
///   periodically).
/// - `(stats_atom)` -> `conversations_stats`.
caf::behavior conversations_actor(caf::stateful_actor<conversations_state>* self,
                                  tenant_info_ptr info, services_ptr svc,
                                  caf::actor runs, caf::actor outbox);

/// How often the store is scanned for conversation deadlines, and how far
/// ahead; also how long an idle conversation actor lives before it is
/// passivated.
struct conversation_timing {
  static constexpr std::chrono::seconds scan_interval{30};
  static constexpr std::chrono::seconds passivate_after{20};
};

} // namespace ringback::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ringback::actors::conversation_job)
