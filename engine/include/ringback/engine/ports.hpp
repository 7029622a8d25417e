#pragma once

#include "ringback/engine/messaging.hpp"
#include "ringback/engine/records.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace ringback::engine {

/// Thrown by store and kv adapters at their boundary (they translate pqxx,
/// sqlite and hiredis failures into this one type). Only the executors that
/// run adapters catch it; everything above sees errors as values.
class port_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A delivery report from the carrier (Twilio's status callback).
struct status_report {
  std::string message_sid;
  /// The carrier's status as received ("delivered", "undelivered"...).
  std::string carrier_status;
  /// Its engine state (`message_state_from_twilio`).
  message_state state = message_state::sent;
  std::int32_t error_code = 0; ///< 0 = none
  std::string error_message;
  epoch_ms at = 0; ///< when it was received
};

/// What `store::record_status` did with a report.
struct status_report_result {
  /// Whether a message has that MessageSid.
  bool known = false;
  /// Whether the report moved the message forward (false: late or repeated).
  bool applied = false;
  /// The message after the report (set iff `known`).
  std::optional<message_record> message;
};

/// What the pre-send gate asks the store (see `store::gate_facts_for`).
struct gate_query {
  std::string tenant_id;
  std::string phone; ///< the recipient
  epoch_ms now = 0;
  /// The windows of the tenant's `gate_settings`.
  std::chrono::milliseconds repeat_caller_window{std::chrono::hours{24}};
  std::chrono::milliseconds loop_window{std::chrono::minutes{10}};
  std::chrono::milliseconds caller_rate_window{std::chrono::minutes{1}};
  /// The call a text-back answers (empty: none). The caller-rate count then
  /// stops at that call's start: calls the caller made after it, already
  /// ringing when its outcome is decided, do not take its text away (so the
  /// first calls of a burst are the ones texted, whatever order their
  /// outcomes are decided in).
  std::string call_sid;
};

/// Claims `ids` one by one in ascending order (each once), then returns what
/// was claimed in the order of `ids` (an id given twice counts once): the
/// order rule of `store::claim_messages`. `claim(id)` returns an optional
/// claim; `id_of(claim)` its message id.
template <class Claim, class IdOf>
auto claim_in_order(const std::vector<std::int64_t>& ids, Claim&& claim,
                    IdOf&& id_of) {
  using claimed_t =
    typename std::invoke_result_t<Claim&, std::int64_t>::value_type;
  std::vector<std::int64_t> ascending = ids;
  std::sort(ascending.begin(), ascending.end());
  ascending.erase(std::unique(ascending.begin(), ascending.end()),
                  ascending.end());
  std::vector<claimed_t> got;
  for (auto id : ascending)
    if (auto c = claim(id))
      got.push_back(std::move(*c));
  std::vector<claimed_t> claimed;
  claimed.reserve(got.size());
  std::vector<bool> taken(got.size(), false);
  for (auto id : ids) {
    auto i = std::lower_bound(
      got.begin(), got.end(), id,
      [&](const claimed_t& c, std::int64_t x) { return id_of(c) < x; });
    auto k = static_cast<std::size_t>(i - got.begin());
    if (i != got.end() && id_of(*i) == id && !taken[k]) {
      taken[k] = true;
      claimed.push_back(std::move(*i));
    }
  }
  return claimed;
}

/// The durable store (SQLite embedded, PostgreSQL shared).
///
/// Blocking. Only ever called from the store executor's own thread (never
/// from a CAF scheduler thread or an HTTP thread); one instance per thread.
/// Every method may throw `port_error`. Writes between `begin()` and
/// `commit()` are one transaction.
class store {
public:
  virtual ~store() = default;

  /// Applies the versioned schema migrations that are missing. Safe to call
  /// from several processes at once (runs under a lock). Idempotent.
  virtual void migrate() = 0;

  /// Returns the highest migration version applied.
  virtual int schema_version() = 0;

  virtual void begin() = 0;
  virtual void commit() = 0;
  virtual void rollback() = 0;

  /// Upkeep that can wait until the jobs of a transaction have their
  /// answers (SQLite: the WAL checkpoint). The store executor calls it after
  /// each batch's completions; a store that is never asked does its upkeep
  /// in `commit()` once it has waited long enough. Outside a transaction
  /// only. No-op by default.
  virtual void upkeep() {}

  /// Cheap liveness probe for /readyz.
  virtual bool ping() = 0;

  /// Inserts or updates a tenant and its numbers (numbers not listed are removed).
  virtual void upsert_tenant(const tenant& t) = 0;

  /// Inserts a new call. Returns false (and changes nothing) if the CallSid
  /// already exists.
  virtual bool insert_call(const call_record& c) = 0;

  /// Updates what changes while a call lives (`ended`, the fallback check,
  /// the dial status and duration, `node_id`, `updated_at`) of an existing
  /// call. Its identity (tenant, numbers, owner phone, `started_at`) stays as
  /// `insert_call` wrote it, and `phase` and `decided` are `decide_outcome`'s.
  virtual void update_call(const call_record& c) = 0;

  /// Sets the outcome (`phase`, `decided`) together with what `update_call`
  /// writes, but only if the stored call is still ringing. Returns true if this call
  /// decided it. This is the last line of defence for "exactly one outcome".
  virtual bool decide_outcome(const call_record& c) = 0;

  virtual std::optional<call_record> find_call(std::string_view call_sid) = 0;

  /// Undecided calls (still ringing) that belong to `node_id`, or whose
  /// fallback check is overdue since before `orphaned_before` (adopted from a
  /// process that never came back).
  virtual std::vector<call_record> unfinished_calls(std::string_view node_id,
                                                    epoch_ms orphaned_before)
    = 0;

  virtual void insert_webhook(const webhook_record& w) = 0;

  /// Inserts a message; returns its id.
  virtual std::int64_t insert_message(const message_record& m) = 0;

  /// Updates every mutable field of a message by id (state, attempts, sid,
  /// error, node, not_before, reason, sent_at, status_at, updated_at). When
  /// this gives the message a MessageSid for which delivery reports were
  /// recorded before (`record_status`), they are applied too, forward only.
  virtual void update_message(const message_record& m) = 0;

  virtual std::optional<message_record> find_message(std::int64_t id) = 0;

  /// Messages still `queued`, `sending` or `held` that belong to `node_id`,
  /// by id.
  virtual std::vector<message_record> pending_messages(std::string_view node_id)
    = 0;

  // -- messaging (the outbox, delivery reports, the opt-out ledger) ---------

  /// Claims message `id` for one send attempt: if it is still `queued`, sets
  /// it `sending`, `node_id`, `attempts + 1` and `updated_at = now`, and
  /// returns the updated record; otherwise (sent already, held, refused,
  /// claimed by another process, unknown) returns nullopt and changes
  /// nothing. One conditional write: of processes claiming the same message,
  /// exactly one gets it.
  virtual std::optional<message_record>
  claim_message(std::int64_t id, std::string_view node_id, epoch_ms now)
    = 0;

  /// Claims several messages in one go, as `claim_message` claims each
  /// (each conditional on its own: of processes claiming the same message,
  /// exactly one gets it). Returns the claimed ones in the order of `ids`
  /// (an id given twice counts once); the others are unchanged. The rows are
  /// claimed in ascending id order whatever the order of `ids`, so that
  /// concurrent batches in transactions never deadlock on row locks
  /// (PostgreSQL). Runs in the caller's transaction: when it throws, the
  /// caller's rollback undoes the claims made before the failure. The
  /// default calls `claim_message` per id.
  virtual std::vector<message_record>
  claim_messages(const std::vector<std::int64_t>& ids, std::string_view node_id,
                 epoch_ms now) {
    return claim_in_order(
      ids, [&](std::int64_t id) { return claim_message(id, node_id, now); },
      [](const message_record& m) { return m.id; });
  }

  /// A message claimed for sending, and whether the opt-out ledger says its
  /// recipient is opted out of the tenant's texts now.
  struct claimed_message {
    message_record message;
    bool opted_out = false;
  };

  /// `claim_messages`, and for each claimed message that is not a
  /// compliance answer (those go out whatever the ledger says) the ledger's
  /// word on its recipient, read in the same transaction (an opt-out
  /// recorded after the message was queued refuses it). The default reads
  /// the ledger per message; a store may read it with the claim.
  virtual std::vector<claimed_message>
  claim_for_sending(const std::vector<std::int64_t>& ids,
                    std::string_view node_id, epoch_ms now) {
    std::vector<claimed_message> out;
    for (auto& m : claim_messages(ids, node_id, now)) {
      bool opted_out = ledger_refuses(m);
      out.push_back({std::move(m), opted_out});
    }
    return out;
  }

  /// The opt-out ledger's word on sending `m` now: true if its recipient is
  /// opted out of the tenant's texts and `m` is not a compliance answer
  /// (those go out whatever the ledger says).
  bool ledger_refuses(const message_record& m) {
    if (m.kind == send_kind::compliance)
      return false;
    auto entry = find_opt_out(m.tenant_id, m.to);
    return entry && entry->opted_out;
  }

  /// Held messages of `node_id` whose `not_before` is at or before `now`
  /// become `queued` again (conditionally: a message that changed meanwhile
  /// stays as it is); returns their ids, lowest first, at most `limit`.
  virtual std::vector<std::int64_t>
  release_held(std::string_view node_id, epoch_ms now, std::size_t limit)
    = 0;

  /// The message the carrier knows as `message_sid`, if any.
  virtual std::optional<message_record>
  find_message_by_sid(std::string_view message_sid)
    = 0;

  /// Records a delivery report (a status callback) and applies it to the
  /// message with that MessageSid, forward only (`advances`): the state
  /// becomes `r.state`, `status_at` `r.at`, and a non-zero `r.error_code`
  /// with its message is kept. A report for a MessageSid no message has yet
  /// (the callback overtook the API's answer) is kept and applied by
  /// `update_message` when a message gets that MessageSid. Every report is
  /// kept for audit (`status_reports`).
  virtual status_report_result record_status(const status_report& r) = 0;

  /// The delivery reports received for a MessageSid, oldest first.
  virtual std::vector<status_report>
  status_reports(std::string_view message_sid)
    = 0;

  /// Everything the pre-send gate needs to know from the store about sending
  /// `q.phone` a message on behalf of `q.tenant_id` at `q.now` (the fields of
  /// `gate_facts` that come from the store; `own_number`,
  /// `other_tenant_number` and `quiet_hours_end` are left unset). Messages
  /// `refused` by the gate do not count. Serializes, until the end of the
  /// transaction, with other transactions asking about the same tenant and
  /// phone (PostgreSQL: an advisory transaction lock; SQLite: its single
  /// writer), so that two processes cannot both send a first text-back.
  virtual gate_facts gate_facts_for(const gate_query& q) = 0;

  /// The ledger entry of `phone` for `tenant_id`, nullopt if it never
  /// changed.
  virtual std::optional<opt_out_state> find_opt_out(std::string_view tenant_id,
                                                    std::string_view phone)
    = 0;

  /// Inserts or replaces the ledger entry (`s.tenant_id`, `s.phone`).
  virtual void save_opt_out(const opt_out_state& s) = 0;

  /// A tenant's ledger entries that are opted out, by phone.
  virtual std::vector<opt_out_state> opted_out(std::string_view tenant_id) = 0;

  // -- conversations ---------------------------------------------------------

  /// The conversation of `tenant_id` with `customer`, created if there is
  /// none (state `closed`, `ref` the tenant's next: 1, 2, 3 ..., the other
  /// fields zero, `opened_at` and `updated_at` = `now`, `business_number`
  /// as given). One row per tenant and customer, also when two processes
  /// create it at once (the loser reads the winner's). An existing row is
  /// returned as stored (its `business_number` is not changed here).
  virtual conversation_record
  find_or_create_conversation(std::string_view tenant_id,
                              std::string_view customer,
                              std::string_view business_number, epoch_ms now)
    = 0;

  virtual std::optional<conversation_record> find_conversation(std::int64_t id)
    = 0;

  /// By the short reference the owner uses (`#12`).
  virtual std::optional<conversation_record>
  find_conversation_by_ref(std::string_view tenant_id, std::int32_t ref) = 0;

  /// Writes the fields of conversation `c.id` (including `c.seq`, which the
  /// caller has bumped; not the tenant, the customer and the ref, fixed when
  /// it was created), but only if the stored `seq` is still
  /// `expected_seq`. Returns false, changing nothing, if another writer moved
  /// it first. Of writers expecting the same seq, exactly one wins. Throws
  /// `port_error` if `c.seq <= expected_seq` or the id is unknown.
  virtual bool
  update_conversation(const conversation_record& c, std::int64_t expected_seq)
    = 0;

  /// Tenant `tenant_id`'s conversations (any node) with a deadline at or
  /// before `now`: a `window_deadline` with no outcome yet, a `turn_at`, or a
  /// `close_at` of a conversation not closed; earliest deadline first, at
  /// most `limit`.
  virtual std::vector<conversation_record>
  due_conversations(std::string_view tenant_id, epoch_ms now,
                    std::size_t limit)
    = 0;

  /// Appends to a transcript (ids assigned in order).
  virtual void
  insert_conversation_messages(const std::vector<conversation_message>& ms)
    = 0;

  /// The last `limit` messages of a conversation, oldest first.
  virtual std::vector<conversation_message>
  conversation_messages(std::int64_t conversation_id, std::size_t limit) = 0;

  virtual void insert_conversation_event(const conversation_event& e) = 0;

  /// A conversation's events, oldest first.
  virtual std::vector<conversation_event>
  conversation_events(std::int64_t conversation_id) = 0;

  /// Remembers the conversation the owner last heard from (a plain reply of
  /// the owner goes there).
  virtual void set_owner_focus(std::string_view tenant_id,
                               std::int64_t conversation_id, epoch_ms at)
    = 0;

  /// The conversation the owner last heard from, if any.
  virtual std::optional<std::int64_t> owner_focus(std::string_view tenant_id)
    = 0;

  /// The tenant's AI usage from "ai_turn" and "ai_error" events at or after
  /// `since`.
  virtual ai_usage ai_usage_since(std::string_view tenant_id, epoch_ms since)
    = 0;

  /// Records an inbound SMS once per MessageSid; returns false if known.
  virtual bool insert_inbound(const inbound_message& m) = 0;

  /// Clears `consumer`'s bit of a stored text's `pending`, in the
  /// consumer's transaction before it stores its part (on PostgreSQL the row
  /// stays locked until that transaction ends, so two processes handling the
  /// same text never both see `claimed`).
  virtual inbound_claim
  consume_inbound(std::string_view message_sid, inbound_consumer consumer)
    = 0;

  /// Sets `consumer`'s bit again (a consumer that claimed a text and then
  /// stored nothing in the same transaction: its write lost a race).
  virtual void
  restore_inbound(std::string_view message_sid, inbound_consumer consumer)
    = 0;

  /// A tenant's texts received after `since` that some consumer has not
  /// stored its part of: those stored by `node_id`, and those of other
  /// processes received before `orphaned_before`; oldest first (then by
  /// MessageSid), at most `limit`.
  virtual std::vector<inbound_message>
  pending_inbound(std::string_view tenant_id, std::string_view node_id,
                  epoch_ms since, epoch_ms orphaned_before, std::size_t limit)
    = 0;

  /// Remembers a customer of a tenant (first and last contact).
  virtual void touch_contact(std::string_view tenant_id, std::string_view phone,
                             epoch_ms at)
    = 0;

  /// Number of messages stored for a call (tests and audit).
  virtual std::vector<message_record> messages_for_call(std::string_view call_sid)
    = 0;

  // -- workflow runs ---------------------------------------------------------

  /// Inserts a run (its `seq` as given, usually 0); returns its id.
  virtual std::int64_t insert_run(const run_record& r) = 0;

  /// Writes what a segment changes in run `r.id` (`contact`, `status`,
  /// `waiting_for`, `wake_at`, `state`, `node_id`, `seq` -- which the caller
  /// has bumped --, `error`, `updated_at`; the tenant, workflow, version,
  /// trigger, call and start stay as inserted), but only if the stored `seq`
  /// is still `expected_seq`.
  /// Returns false, changing nothing, if another writer moved it first (a
  /// value, not an error: an open transaction goes on). One conditional
  /// write, atomic across processes: of writers expecting the same seq,
  /// exactly one wins. Throws `port_error` if `r.seq <= expected_seq` (`seq 1
  /// must be greater than expected_seq 1 (run id 7)`) or the run is unknown
  /// (`unknown run id 7`).
  virtual bool update_run(const run_record& r, std::int64_t expected_seq) = 0;

  virtual std::optional<run_record> find_run(std::int64_t id) = 0;

  /// Runs `waiting` or `running` that belong to `node_id`, or whose `wake_at`
  /// is before `orphaned_before` (adopted from a process that never came
  /// back; 0 adopts nothing, nor does a run without a deadline), ordered by
  /// `wake_at` (no deadline first), then id; at most `limit`. Claim an
  /// adopted run with `update_run`.
  virtual std::vector<run_record> unfinished_runs(std::string_view node_id,
                                                  epoch_ms orphaned_before,
                                                  std::size_t limit) = 0;

  /// Runs of a tenant waiting (`status` waiting, `waiting_for` "reply") for a
  /// reply from `contact`, oldest (lowest id) first.
  virtual std::vector<run_record> runs_waiting_for_reply(
    std::string_view tenant_id, std::string_view contact) = 0;

  /// Runs started for a call (audit, tests), oldest first.
  virtual std::vector<run_record> runs_for_call(std::string_view call_sid) = 0;

  /// Records steps (atomically). A step recorded again (same `run_id` and
  /// `seq`, e.g. replayed after a crash) keeps its first record; the run
  /// itself is not checked (audit rows never fail a batch).
  virtual void insert_run_steps(const std::vector<run_step_record>& steps) = 0;

  /// The steps of a run in `seq` order.
  virtual std::vector<run_step_record> run_steps(std::int64_t run_id) = 0;

  /// Stores a workflow version once (a second save of the same tenant, name
  /// and version changes nothing).
  virtual void save_workflow_version(const workflow_version_record& v) = 0;

  virtual std::optional<workflow_version_record>
  find_workflow_version(std::string_view tenant_id, std::string_view name,
                        std::string_view version) = 0;

  /// Adds a tag to a tenant's contact (creating the contact, first and last
  /// contact `at`, if needed; a known contact's times stay); adding a tag
  /// twice keeps one.
  virtual void tag_contact(std::string_view tenant_id, std::string_view phone,
                           std::string_view tag, epoch_ms at) = 0;

  /// The contact's tags, sorted bytewise (whatever the database collation).
  virtual std::vector<std::string> contact_tags(std::string_view tenant_id,
                                                std::string_view phone) = 0;
};

/// A pacing question for `kv::pace`: may one message go out now through
/// the sending number (and within its tenant's cap)?
struct pace_request {
  std::string number_key; ///< `pace_key_for_number(tenant, number)`
  pace number;
  std::string tenant_key; ///< `pace_key_for_tenant(tenant)`; empty: no cap
  std::optional<pace> tenant;
  epoch_ms now = 0;
};

/// The kv's answer.
struct pace_answer {
  bool allowed = false;
  /// When refused: how long until a send would be allowed (> 0).
  epoch_ms retry_after_ms = 0;
};

/// Several sends paced at once (`kv::pace_slots`).
struct pace_slots_answer {
  /// When each granted send may start (epoch ms, non-decreasing, the first
  /// at or after the request's `now`, the last at or before `now +
  /// horizon`); empty: none granted.
  std::vector<epoch_ms> starts;
  /// When none was granted: how long from `now` until one would be (> 0).
  epoch_ms retry_after_ms = 0;
};

/// `kv::pace_slots` by asking `ask(at)` (one `gcra_pair` decision at time
/// `at`, which moves the stored times on only when it allows) at the earliest
/// times a send could go, from `now` on, until `count` sends are granted or
/// the next would start after `now + horizon_ms`. A refusal with no wait, or
/// a wait of more than a year, ends the search.
template <class Ask>
pace_slots_answer pace_slots_by_asking(epoch_ms now, std::size_t count,
                                       epoch_ms horizon_ms, Ask&& ask) {
  pace_slots_answer out;
  if (horizon_ms < 0)
    horizon_ms = 0;
  auto at = now;
  while (out.starts.size() < count) {
    pace_answer a = ask(at);
    if (a.allowed) {
      out.starts.push_back(at);
      continue;
    }
    auto wait = a.retry_after_ms > 0 ? a.retry_after_ms : 1;
    auto next = at + wait;
    if (next - now > horizon_ms || wait > 31'536'000'000) {
      if (out.starts.empty())
        out.retry_after_ms = std::max<epoch_ms>(1, next - now);
      break;
    }
    at = next;
  }
  return out;
}

/// Fast shared key-value state for dedup and claims (memory or Redis).
///
/// Blocking; called from the kv executor's threads only. May throw
/// `port_error`.
class kv {
public:
  virtual ~kv() = default;

  /// Sets `key` if absent. True if this call set it (first seen).
  virtual bool set_if_absent(std::string_view key, std::string_view value,
                             std::chrono::milliseconds ttl)
    = 0;

  /// Claims `key` for `owner`: true if the key was free (now set to owner)
  /// or already held by `owner` (a restarted process re-claiming its own).
  virtual bool claim(std::string_view key, std::string_view owner,
                     std::chrono::milliseconds ttl)
    = 0;

  virtual bool ping() = 0;

  /// Paces one send with GCRA (`gcra_pair`): allowed only if both the
  /// number's pace and the tenant's cap allow it, and only then are both
  /// stored times moved on. Atomic across every process sharing the kv
  /// (Redis: one Lua script, `gcra_lua_script`; memory: a mutex).
  virtual pace_answer pace(const pace_request& r) = 0;

  /// Paces up to `count` sends of the same number at once: grants, in
  /// order, the sends that GCRA allows at the earliest times from `r.now`
  /// to `r.now + horizon_ms` (inclusive), moving both stored times on for
  /// each, and says when each may start. A granted send must not start
  /// before its time; a granted slot that goes unused is lost (pacing is
  /// never exceeded, only slowed). Atomic per slot across every process
  /// sharing the kv; `horizon_ms` must stay well under the 1 s the stored
  /// times outlive their last slot (the outbox uses 200 ms). The default
  /// asks `pace` once per slot and refusal (`pace_slots_by_asking`); Redis
  /// answers in one script. May throw `port_error`.
  virtual pace_slots_answer pace_slots(const pace_request& r, std::size_t count,
                                       epoch_ms horizon_ms) {
    return pace_slots_by_asking(r.now, count, horizon_ms, [&](epoch_ms at) {
      pace_request q = r;
      q.now = at;
      return pace(q);
    });
  }
};

/// Outcome of a carrier REST request, as a value.
struct carrier_status {
  bool ok = false;
  int http_status = 0;          // 0 = no response (connect error, timeout)
  int error_code = 0;           // carrier error code, e.g. 21211
  std::string error_message;
  std::optional<std::chrono::milliseconds> retry_after;
  /// The request may have been acted on although no clear answer came back
  /// (a timeout or a lost connection after it was written, or a 5xx). For a
  /// send, the message may exist: look it up before sending it again.
  bool outcome_unknown = false;

  /// Worth retrying: no response, 429 or 5xx.
  bool retryable() const {
    return !ok && (http_status == 0 || http_status == 429 || http_status >= 500);
  }
};

struct sms_request {
  std::string from;
  std::string to;
  std::string body;
  std::string status_callback; // empty: none
};

struct sms_receipt {
  carrier_status status;
  std::string message_sid;
  std::string carrier_state; // "queued", "accepted", ...
};

/// Whether the carrier has a message, found by `carrier::find_sms`.
struct sms_lookup {
  carrier_status status;
  std::string message_sid; // empty: not found
};

/// An outbound call that reads a message to whoever answers (an owner's
/// emergency page).
struct call_request {
  std::string from; ///< the business number
  std::string to;   ///< the owner's phone
  std::string say;  ///< read twice, with a pause
};

struct call_receipt {
  carrier_status status;
  std::string call_sid; ///< the carrier's id once accepted
};

/// Whether the carrier has a call, found by `carrier::find_call`.
struct call_lookup {
  carrier_status status;
  std::string call_sid; ///< empty: not found
};

/// A call as the carrier reports it.
struct call_leg {
  std::string sid;
  std::string status; // queued ringing in-progress completed busy failed no-answer canceled
  std::int32_t duration = 0;
};

struct call_report {
  carrier_status status;
  call_leg parent;
  std::vector<call_leg> children; // the dialled legs
};

/// The carrier's REST API (Twilio first).
///
/// Blocking; called from the carrier executor's threads only. Never throws.
class carrier {
public:
  virtual ~carrier() = default;

  virtual sms_receipt send_sms(const sms_request& req) = 0;

  /// Looks for a message with exactly this sender, recipient and body that
  /// the carrier created at or after `created_after` (epoch ms). Used before
  /// sending again a message whose earlier send had an unknown outcome.
  virtual sms_lookup find_sms(const sms_request& req, epoch_ms created_after)
    = 0;

  /// Fetches the parent call and its child legs (`ParentCallSid=`).
  virtual call_report fetch_call(std::string_view call_sid) = 0;

  /// Places a call that reads `req.say` to whoever answers. Not retried
  /// here (the outbox retries a page, after `find_call` when the outcome is
  /// unknown). A 5xx, or no answer after the request was written, sets
  /// `outcome_unknown`: the call may exist.
  virtual call_receipt place_call(const call_request& req) = 0;

  /// Looks for a call placed through the API (not a leg a `<Dial>` made)
  /// from `req.from` to `req.to` that the carrier created at or after
  /// `created_after` (epoch ms; less a little clock skew). Used before
  /// placing again a call whose earlier placing had an unknown outcome. The
  /// carrier keeps no text of a call, so `req.say` is not compared: of
  /// several matching calls, the earliest is taken (later ones are later
  /// pages).
  virtual call_lookup find_call(const call_request& req, epoch_ms created_after)
    = 0;
};

/// Wall clock (virtual in tests).
class clock {
public:
  virtual ~clock() = default;
  virtual epoch_ms now() const = 0;
};

/// The real wall clock.
class system_clock final : public clock {
public:
  epoch_ms now() const override;
};

} // namespace ringback::engine
