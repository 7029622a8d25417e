#pragma once

#include "ringback/engine/http_port.hpp"
#include "ringback/engine/ports.hpp"
#include "ringback/engine/records.hpp"
#include "ringback/workflows/calendar.hpp"
#include "ringback/workflows/interpreter.hpp"
#include "ringback/workflows/loader.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

/// What the actors share to host workflow runs: where workflows come from,
/// how a run's segment becomes store writes, and the URLs of voice callbacks.
/// See docs/architecture.md ("Workflow runs").
namespace ringback::actors {

/// Where actors find the workflows to run. Implementations are thread-safe
/// (called from actors on any scheduler thread).
class workflow_source {
public:
  virtual ~workflow_source() = default;

  /// The workflows `tenant_id` runs for `trigger`, in order.
  virtual std::vector<workflows::workflow_ptr>
  for_trigger(std::string_view tenant_id, std::string_view trigger) const = 0;

  /// A workflow by name and version, current or loaded earlier in this
  /// process; null if unknown here (the host then compiles the source the
  /// store kept).
  virtual workflows::workflow_ptr
  find_version(std::string_view tenant_id, std::string_view name,
               std::string_view version) const = 0;
};

/// A fixed catalog for every tenant (tests, simple set-ups).
class catalog_source final : public workflow_source {
public:
  explicit catalog_source(workflows::catalog c) : catalog_(std::move(c)) {
    // nop
  }

  std::vector<workflows::workflow_ptr>
  for_trigger(std::string_view, std::string_view trigger) const override {
    return catalog_.for_trigger(trigger);
  }

  workflows::workflow_ptr
  find_version(std::string_view, std::string_view name,
               std::string_view version) const override {
    auto wf = catalog_.find(name);
    return wf && wf->version == version ? wf : nullptr;
  }

private:
  workflows::catalog catalog_;
};

/// A tenant as runs see it: its record and its calendar.
struct tenant_info {
  std::shared_ptr<const engine::tenant> tenant;
  workflows::business_calendar calendar;

  /// Builds the calendar from the tenant's settings (validated at start-up;
  /// a bad one here falls back to 24/7 in UTC with an error logged).
  static std::shared_ptr<const tenant_info>
  make(std::shared_ptr<const engine::tenant> t);

  /// `vars` plus the calendar variables at `now`.
  workflows::context with_calendar(workflows::context vars,
                                   engine::epoch_ms now) const;

  /// Only the calendar variables at `now` (for `resume`'s `fresh`).
  workflows::context calendar_vars(engine::epoch_ms now) const;
};

using tenant_info_ptr = std::shared_ptr<const tenant_info>;

struct services;

/// The tenants of this deployment, by id, and which tenant each business
/// number belongs to: the pre-send gate refuses texts to a tenant's own
/// numbers and to other tenants' numbers; the outbox paces by them.
class tenant_directory {
public:
  tenant_directory() = default;
  explicit tenant_directory(const std::vector<engine::tenant>& tenants);

  /// The tenant of `number`, or nullptr if it is no business number here.
  const std::string* tenant_of(std::string_view number) const;

  /// A tenant by id, or null.
  tenant_info_ptr find(std::string_view tenant_id) const;

private:
  std::unordered_map<std::string, std::string> tenant_of_;
  std::unordered_map<std::string, tenant_info_ptr> tenants_;
};

/// Passes `m` through the pre-send gate inside the store transaction that
/// writes it: looks up the facts (`store::gate_facts_for`, the directory,
/// the tenant's quiet hours at `now`), decides (`engine::decide`) and sets
/// `m.state` to `queued`, `held` (with `not_before`) or `refused` (with
/// `reason` and `error_message`). Returns the decision.
engine::gate_decision gate_message(engine::store& db, engine::message_record& m,
                                   const tenant_info& info,
                                   const tenant_directory* numbers,
                                   engine::epoch_ms now);

/// Claims a text the gate queued for sending in the transaction that writes
/// it (`queued -> sending` with its first attempt, as `store::claim_messages`
/// would): the outbox of the writing process (`m.node_id`) then sends it
/// without a claim of its own, one store round trip sooner, unless its
/// number's pace holds it past `outbox_early_claim_grace_ms` (then the
/// outbox asks the opt-out ledger again first). The ledger was read by the
/// gate in this same transaction. A page (`call` channel) and a message the
/// gate did not queue are left as they are. Used by `write_segment` and by
/// the conversations' writes. After a crash, a text claimed
/// this way and not yet sent is looked up at the carrier before it is sent,
/// like any interrupted send.
void claim_in_writing(engine::message_record& m, engine::epoch_ms now);

/// The opt-out ledger entry of `phone` for `tenant_id` as stored, or a fresh
/// one (not opted out, never changed).
engine::opt_out_state ledger_entry(engine::store& db, std::string_view tenant_id,
                                   std::string_view phone);

/// Stores `t.state` if the event changed anything (`t.persist`); returns `t`.
const engine::opt_out_transition& save_ledger(engine::store& db,
                                              const engine::opt_out_transition& t);

/// One segment of a run, ready to be written in one store transaction.
struct stored_segment {
  engine::run_record run;        ///< id 0: a new run
  std::int64_t expected_seq = 0; ///< for an existing run
  /// The texts (`send_sms`, `notify_owner`...), then the pages
  /// (`call_owner`: channel `call`, kind `notification`, to the owner).
  std::vector<engine::message_record> messages;
  std::vector<engine::run_step_record> steps;
  std::vector<workflows::tag_action> tags;
  /// A new run's workflow, whose version is saved once per store executor
  /// (`save_version_once`): a pointer, so that a run start does not copy
  /// the workflow file's source, which is written once per process.
  workflows::workflow_ptr version;
  engine::epoch_ms version_seen_at = 0; ///< the version record's loaded_at
  /// The request to send once stored (the run then waits for "http").
  std::optional<workflows::http_action> http;
  /// The AI turn to produce once stored (the run then waits for "ai").
  std::optional<workflows::ai_action> ai;
  /// Who wrote each message, for the customer's conversation transcript:
  /// "ai" (an `ai_reply`), "rule" (any other text to a customer); empty for
  /// texts to the owner.
  std::vector<std::string> authors;
  /// The AI turn whose reply this segment sends ("ai_turn", with its
  /// provider, latency, tokens and cost; "ai_error" when the model failed),
  /// recorded on the customer's conversation.
  std::vector<engine::conversation_event> ai_events;
  /// For the pre-send gate of `messages` (null: no gate, tests).
  tenant_info_ptr info;
  std::shared_ptr<const tenant_directory> numbers;
};

/// Turns `r` (a segment of a run of `wf`) into store writes. `run` carries
/// the run's identity (id, tenant, workflow, version, trigger, call, contact,
/// seq before this segment, started_at); it is returned updated (status,
/// waiting, state, seq + 1).
stored_segment make_segment(const workflows::workflow_ptr& wf,
                            const workflows::segment_result& r,
                            engine::run_record run, const services& svc,
                            const tenant_info_ptr& info, engine::epoch_ms now);

/// Writes `s` (inside the store executor's transaction). A new run is
/// inserted (and `s.run.id` set); an existing one is updated only if its seq
/// is still `s.expected_seq` — returns false, writing nothing, otherwise.
/// Each message, a page too, passes the pre-send gate first (`gate_message`;
/// its state in `s.messages` says what the gate decided); the ids of every
/// message go to `message_ids` (the outbox sends the queued, holds the held
/// and counts the refused; a text the gate queued is claimed for sending
/// here, `claim_in_writing`: a page is sent, retried and looked up like a
/// text, so one committed with the segment is placed even if the process
/// dies right after the commit). Texts to a customer that were not refused
/// are added to the customer's conversation transcript (a text-back opens
/// the conversation); `ai_event` is recorded on it. May run more than once
/// for one segment (a batch retried alone): it starts afresh each time.
bool write_segment(engine::store& db, stored_segment& s,
                   std::vector<std::int64_t>& message_ids);

/// The messages of `s` that the last `write_segment` job stored (`ids`, what
/// that job reported), as stored: ids assigned and the gate's states set.
/// Handed to the outbox as they are, so it does not read back what was
/// just written.
std::vector<engine::message_record>
stored_messages(const stored_segment& s, const std::vector<std::int64_t>& ids);

/// Saves the version of `wf` (of tenant `tenant_id`, "" for a global
/// workflow, first seen at `loaded_at`) unless the store executor running
/// this job (see `engine::current_store_transaction`) has committed it
/// already in this process; returns whether it wrote. Outside an
/// executor's job it always writes. The store's insert stays idempotent
/// (`ON CONFLICT DO NOTHING`), so other processes, and a rolled-back batch,
/// save it again themselves.
bool save_version_once(engine::store& db, const std::string& tenant_id,
                       const workflows::workflow& wf,
                       engine::epoch_ms loaded_at);

/// Logs the segment's `log` steps and its trace at debug level.
void log_segment(const workflows::workflow& wf,
                 const workflows::segment_result& r, std::string_view who);

/// Completes voice verbs: the dial and record action URLs, the transcription
/// callback, and a dial's ring timeout when the workflow left it to the
/// service (`ring_timeout`). `public_url` has no trailing slash.
void fill_voice_urls(std::vector<engine::voice_verb>& verbs,
                     const std::string& public_url,
                     std::chrono::seconds ring_timeout);

/// An `http` step's request, for the fetcher (with the tenant's allow-list).
engine::outbound_http_request http_request(const workflows::http_action& a,
                                           const engine::tenant& t);

/// The fetcher's answer, as a resume event.
workflows::resume_event http_event(const engine::outbound_http_response& r);

} // namespace ringback::actors
