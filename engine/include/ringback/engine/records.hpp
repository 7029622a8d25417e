#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ringback::engine {

/// Wall-clock milliseconds since the Unix epoch. Everything that is stored or
/// compared across processes uses this unit.
using epoch_ms = std::int64_t;

/// Kind of a sending number; decides its default pace (messaging issue).
enum class number_kind : std::uint8_t { long_code, toll_free, short_code };

const char* to_string(number_kind x);
std::optional<number_kind> parse_number_kind(std::string_view x);

/// A pace: `rate_per_s` messages per second on average, up to `burst` at
/// once after an idle period.
struct pace {
  double rate_per_s = 1.0;
  std::int32_t burst = 1;
};

/// The guards, each a tenant setting. A limit or window of 0 turns its guard
/// off.
struct gate_settings {
  /// At most one missed-call text-back per caller per tenant in this window.
  std::chrono::milliseconds repeat_caller_window{std::chrono::hours{24}};
  /// At most this many automated messages per recipient per hour.
  std::int32_t automated_per_hour = 10;
  /// At most this many messages exchanged with one number per `loop_window`
  /// before the conversation looks like two bots answering each other (the
  /// carrier pauses a pair after about 20 rapid messages).
  std::int32_t loop_limit = 15;
  std::chrono::milliseconds loop_window{std::chrono::minutes{10}};
  /// At most this many calls from one caller per `caller_rate_window` get
  /// texted (someone calling 50 times a minute gets nothing more).
  std::int32_t caller_rate_limit = 5;
  std::chrono::milliseconds caller_rate_window{std::chrono::minutes{1}};
};

/// What the AI may say about the business (the tenant's `profile:` in the
/// config). Every field is optional.
struct business_profile {
  std::string name;                  ///< "Acme Plumbing"
  std::vector<std::string> services; ///< "water heaters", "drain cleaning"
  std::string hours;                 ///< "Mon-Fri 8am-5pm, emergencies 24/7"
  std::string service_area;          ///< "Denver metro"
  std::string booking_link;          ///< "https://acme.example/book"
  std::string phone;                 ///< the business number, E.164
  /// Free text the owner wants the AI to know ("we don't do gas lines").
  std::string notes;
};

/// A tenant's conversation settings (`conversations:` in the config).
struct conversation_settings {
  /// How long the owner has to answer a customer message before the AI does.
  std::chrono::milliseconds owner_reply_window{std::chrono::seconds{60}};
  /// Customer texts within this time of the first make one AI turn.
  std::chrono::milliseconds batch{std::chrono::seconds{5}};
  /// A conversation with no message for this long closes (a summary goes to
  /// the owner); the next message reopens it.
  std::chrono::milliseconds idle_close{std::chrono::hours{24}};
  /// AI turns per conversation (since it was opened); then the AI stops and
  /// the customer's messages wait for the owner.
  std::int32_t max_ai_replies = 10;
  /// Longest AI reply, in bytes.
  std::size_t max_reply_chars = 320;
  /// Emergencies the AI recognises also ring the owner's phone (a call that
  /// reads the message), not only text it.
  bool page_by_call = false;
};

/// Which AI answers for a tenant (`ai:` in the config, globally and per
/// tenant).
struct ai_settings {
  /// "offline" (the built-in responder, no network) or "openai" (any
  /// OpenAI-compatible chat-completions server).
  std::string provider = "offline";
  std::string base_url; ///< openai: e.g. https://api.openai.com/v1
  std::string model;    ///< openai: e.g. gpt-4o-mini
  std::string api_key;  ///< openai: secret, never logged; may be empty
  std::chrono::milliseconds timeout{std::chrono::seconds{10}};
  std::int32_t max_attempts = 2;
  /// For cost accounting, US dollars per 1000 tokens.
  double usd_per_1k_prompt = 0;
  double usd_per_1k_completion = 0;
};

/// A business number of a tenant.
struct business_number {
  std::string number; // E.164
  number_kind kind = number_kind::long_code;
  double mps = 1.0; // messages per second
};

/// One tenant as configured.
struct tenant {
  std::string id;
  std::string name;
  std::vector<business_number> numbers;
  std::string owner_phone; // E.164
  std::string timezone;    // IANA name
  // Calendar settings, as written in the config file and already validated
  // there (ringback/workflows/calendar.hpp turns them into a calendar). `{}`
  // initializers keep brace-initialisations that stop at `timezone` quiet.
  /// Day spec -> time ranges, in file order: {"mon-fri", "08:00-17:00"},
  /// {"sun", "closed"}. Empty: open 24/7.
  std::vector<std::pair<std::string, std::string>> business_hours{};
  /// "2026-12-25" (that date) or "12-25" (every year); closed all day.
  std::vector<std::string> holidays{};
  /// "21:00-08:00": when automated texts are held; empty = none.
  std::string quiet_hours{};
  /// Hosts a workflow `http` step may call: "api.example.com" or
  /// "*.example.com"; empty = none.
  std::vector<std::string> http_allow{};
  /// The messaging guards (`messaging:` in the config).
  gate_settings guards{};
  /// The tenant's cap over all its numbers; none: only the numbers' paces.
  std::optional<pace> max_rate{};
  /// The answer to HELP and INFO; empty: "<name>: reply STOP to opt out..."
  /// (see `help_reply`).
  std::string help_text{};
  /// Sent after a STOP or START; empty: nothing (the carrier confirms opt-outs
  /// itself on long codes and toll-free numbers).
  std::string stop_reply{};
  std::string start_reply{};
  /// What the AI may say about the business (`profile:`).
  business_profile profile{};
  /// The owner-reply window and the AI's limits (`conversations:`).
  conversation_settings conversations{};
  /// Which AI answers (`ai:`; the global one unless the tenant has its own).
  ai_settings ai{};
};

/// Life of a call: ringing the owner, then exactly one outcome.
enum class call_phase : std::uint8_t { ringing, answered, missed };

const char* to_string(call_phase x);
std::optional<call_phase> parse_call_phase(std::string_view x);

/// What decided a call's outcome.
enum class decided_by : std::uint8_t { none, dial_result, fallback, status };

const char* to_string(decided_by x);
std::optional<decided_by> parse_decided_by(std::string_view x);

/// The stored state of one inbound call (one CallSid of the parent call).
struct call_record {
  std::string call_sid;
  std::string tenant_id;
  std::string from;        // the caller
  std::string to;          // the business number that was called
  std::string owner_phone; // the number that was dialled
  call_phase phase = call_phase::ringing;
  decided_by decided = decided_by::none;
  bool ended = false;         // the parent call has completed
  epoch_ms started_at = 0;    // when the incoming webhook arrived
  epoch_ms fallback_at = 0;   // when to ask the carrier; 0 = no check pending
  std::int32_t fallback_checks = 0;
  std::string dial_status;    // last DialCallStatus seen
  std::int32_t dial_duration = 0;
  std::string node_id;        // the process that owns the call's timers
  epoch_ms updated_at = 0;

  bool decided_outcome() const {
    return phase != call_phase::ringing;
  }
};

/// A webhook as received, kept raw for audit and replay.
struct webhook_record {
  std::string tenant_id; // empty when no tenant matched
  std::string kind;      // voice, dial-result, status, sms, ...
  std::string call_sid;  // or MessageSid for messages
  std::string path;      // request target as received
  std::string body;      // raw body
  std::string signature; // X-Twilio-Signature
  bool duplicate = false;
  epoch_ms received_at = 0;
};

/// Delivery state of an outbound message (the outbox):
/// `queued -> sending -> sent -> delivered | undelivered | failed`, and two
/// states the pre-send gate gives instead of `queued`: `held` (quiet hours:
/// queued again at `message_record::not_before`) and `refused` (final; the
/// reason is in `message_record::reason`).
enum class message_state : std::uint8_t {
  queued,
  sending,
  sent,
  delivered,
  undelivered,
  failed,
  held,
  refused,
};

const char* to_string(message_state x);
std::optional<message_state> parse_message_state(std::string_view x);

/// Which guards of the pre-send gate apply to an outbound message
/// (ringback/engine/messaging.hpp has the rules and the names).
enum class send_kind : std::uint8_t {
  /// The missed-call text-back: automated; at most one per caller per tenant
  /// per `gate_settings::repeat_caller_window`; subject to the caller rate.
  text_back,
  /// Any other automated message (workflow replies, follow-ups, review
  /// requests): automated cap; held in quiet hours unless urgent.
  automated,
  /// Written by a person (the owner's reply relayed to the customer): never
  /// capped, held or taken for a bot loop, but still refused to opted-out
  /// recipients and to numbers that are not a customer's phone.
  relayed,
  /// The answer to STOP, START or HELP: may reach an opted-out recipient
  /// (one confirmation is allowed by the carriers' rules); never capped nor
  /// held.
  compliance,
  /// A notification to the tenant's owner (missed call, voicemail, page):
  /// never capped, held or taken for a bot loop; refused only if the owner's
  /// phone opted out or is not a phone.
  notification,
};

/// How an outbound message reaches its recipient (the outbox sends both
/// alike: gate, pacing, claims, retries, lookups after an unknown outcome).
enum class message_channel : std::uint8_t {
  /// A text (`carrier::send_sms`), with a status callback.
  sms,
  /// A phone call that reads `message_record::body` to whoever answers
  /// (`carrier::place_call`: a workflow's `call_owner` page); its
  /// `message_sid` is the CallSid. No status callback, no transcript entry.
  call,
};

const char* to_string(message_channel x);
std::optional<message_channel> parse_message_channel(std::string_view x);

/// An outbound message: an SMS, or a call that reads `body` (`channel`).
/// Written before it is sent.
struct message_record {
  std::int64_t id = 0; // assigned by the store
  std::string tenant_id;
  std::string call_sid;  // the call that caused it, if any
  std::string purpose;   // workflow/step, e.g. "missed_call_text_back/text_back"
  std::string from;
  std::string to;
  std::string body;
  message_state state = message_state::queued;
  std::int32_t attempts = 0;
  std::string message_sid; // the carrier's id once accepted
  std::int32_t error_code = 0;
  std::string error_message;
  std::string node_id; // the process that sends it
  epoch_ms created_at = 0;
  epoch_ms updated_at = 0;
  send_kind kind = send_kind::automated;
  /// Urgent messages are not held in quiet hours.
  bool urgent = true;
  /// `held`: when the hold ends and the message is queued again. 0 otherwise.
  epoch_ms not_before = 0;
  /// `held` and `refused`: the gate's reason (`to_string(gate_reason)`, e.g.
  /// "opted_out"), and a sentence for people in `error_message`. Empty
  /// otherwise.
  std::string reason;
  /// When the carrier accepted it (state `sent` or later); 0 before.
  epoch_ms sent_at = 0;
  /// When the last delivery report (status callback) was applied; 0 = none.
  epoch_ms status_at = 0;
  /// A text, or a call that reads `body` (then `message_sid` is the
  /// CallSid). Set when it is written; never changed.
  message_channel channel = message_channel::sms;
};

/// The parts of ringback that store something of an inbound text in
/// transactions of their own after its row (bits of
/// `inbound_message::pending`).
enum inbound_consumer : std::uint8_t {
  inbound_conversations = 1, ///< the transcript line, relay, owner's answer
  inbound_runs = 2,          ///< the runs it resumes and the ones it starts
};

/// Both consumers: what a text that is not a keyword waits for.
inline constexpr std::uint8_t inbound_all_consumers = inbound_conversations
                                                      | inbound_runs;

/// What `store::consume_inbound` found.
enum class inbound_claim : std::uint8_t {
  claimed,     ///< the consumer's bit was set and is now clear
  done_before, ///< the bit was already clear: the part is stored
  unknown,     ///< no row for that MessageSid (a text never stored)
};

/// An inbound SMS, stored once per MessageSid before its webhook is answered.
struct inbound_message {
  std::string message_sid;
  std::string tenant_id;
  std::string from;
  std::string to;
  std::string body;
  epoch_ms received_at = 0;
  /// The process that stored it (and hands it to its consumers).
  std::string node_id = {};
  /// The consumers (`inbound_consumer` bits) whose part is not stored yet;
  /// each clears its bit in the transaction that stores its part.
  std::uint8_t pending = 0;
};

/// Where a workflow run is in its life.
enum class run_status : std::uint8_t {
  running,  ///< executing (or crashed while executing: resumed from `state`)
  waiting,  ///< suspended: see `run_record::waiting_for` and `wake_at`
  finished, ///< reached its end or a `stop`
  failed,   ///< stopped by an error (`run_record::error`)
};

const char* to_string(run_status x);
std::optional<run_status> parse_run_status(std::string_view x);

/// One run of a workflow, as stored: the audit trail's head and, while the
/// run waits, its durable state.
struct run_record {
  std::int64_t id = 0; // assigned by the store
  std::string tenant_id;
  std::string workflow; // name
  std::string version;  // content hash of the workflow file
  std::string trigger;  // e.g. "call.missed"
  std::string call_sid; // the call it belongs to, if any
  std::string contact;  // the customer's number, if any
  run_status status = run_status::running;
  /// While waiting: "timer", "reply", "dial", "recording" or "http".
  std::string waiting_for;
  epoch_ms wake_at = 0; // deadline of the wait; 0 = none
  std::string state;    // the interpreter's serialized state (JSON)
  std::string node_id;  // the process that holds its timer
  /// Bumped by every update; `store::update_run` compares it, so two
  /// processes never both resume one run.
  std::int64_t seq = 0;
  std::string error;
  epoch_ms started_at = 0;
  epoch_ms updated_at = 0;
};

/// One executed step of a run (the audit trail).
struct run_step_record {
  std::int64_t run_id = 0;
  std::int32_t seq = 0;    // 0, 1, 2, ... within the run
  std::string step_id;     // as written, or `#<n>`
  std::string type;        // e.g. "send_sms"
  std::string outcome;     // ok, skipped, failed, waiting, resumed
  std::string detail;      // why, and the effects it asked for
  epoch_ms at = 0;
  std::int64_t duration_us = 0;
};

/// A version of a workflow file as loaded, kept so that a run that waits
/// across a reload or a restart finishes on the version it started with.
struct workflow_version_record {
  std::string tenant_id; // "" for a global workflow
  std::string name;
  std::string version; // content hash
  std::string file;
  std::string source;
  epoch_ms loaded_at = 0;
};

// -- conversations (issue 5) -------------------------------------------------

/// Where a conversation with a customer is.
enum class conversation_state : std::uint8_t {
  /// A customer message waits for the owner; the owner-reply window runs.
  owner_window,
  /// The owner answered (or took the conversation back): the AI is silent.
  owner_active,
  /// The window ran out: the AI answers the customer.
  ai_active,
  /// Idle for the tenant's close time; the next message reopens it.
  closed,
};

const char* to_string(conversation_state x);
std::optional<conversation_state> parse_conversation_state(std::string_view x);

/// Who won an owner-reply window. Exactly one outcome per window.
enum class window_outcome : std::uint8_t { none, owner, ai };

const char* to_string(window_outcome x);
std::optional<window_outcome> parse_window_outcome(std::string_view x);

/// One conversation of a tenant with one customer (one row per tenant and
/// customer number; a closed one is reopened by the next message).
struct conversation_record {
  std::int64_t id = 0; ///< assigned by the store
  std::string tenant_id;
  std::string customer;        ///< E.164
  std::string business_number; ///< the number the customer last texted or called
  /// Short reference per tenant (1, 2, 3 ...) shown to the owner as `#12`.
  std::int32_t ref = 0;
  conversation_state state = conversation_state::owner_window;
  /// Bumped each time a window opens; the outcome belongs to this window.
  std::int32_t window_seq = 0;
  epoch_ms window_deadline = 0; ///< 0: no window open
  window_outcome outcome = window_outcome::none;
  /// When the AI's next turn is due (batching customer texts); 0: none.
  epoch_ms turn_at = 0;
  /// When the conversation closes for idleness; 0: closed or never.
  epoch_ms close_at = 0;
  std::int32_t ai_replies = 0; ///< AI turns since it was (re)opened
  epoch_ms opened_at = 0;
  epoch_ms last_customer_at = 0;
  epoch_ms last_owner_at = 0;
  epoch_ms last_ai_at = 0;
  std::string node_id;
  /// Bumped by every update; `store::update_conversation` compares it, so of
  /// two processes deciding one window exactly one writes.
  std::int64_t seq = 0;
  epoch_ms updated_at = 0;
};

/// One message of a conversation's transcript.
struct conversation_message {
  std::int64_t id = 0; ///< assigned by the store
  std::int64_t conversation_id = 0;
  std::string tenant_id;
  /// "customer", "owner", "ai" or "rule" (an automated, non-AI text).
  std::string author;
  std::string body;
  /// The outbox message that carries it (outbound), 0 for inbound.
  std::int64_t message_id = 0;
  /// The carrier's id (inbound), empty for outbound.
  std::string message_sid;
  epoch_ms at = 0;
};

/// Something that happened to a conversation (audit): "opened", "relayed",
/// "window_opened", "owner_won", "ai_won", "taken_back", "ai_turn",
/// "ai_error", "closed", "reopened", "emergency".
struct conversation_event {
  std::int64_t id = 0; ///< assigned by the store
  std::int64_t conversation_id = 0;
  std::string tenant_id;
  std::string kind;
  std::string detail;
  std::int32_t window_seq = 0;
  // For "ai_turn" and "ai_error":
  std::string provider; ///< "openai", "offline"
  std::int64_t latency_ms = 0;
  std::int32_t prompt_tokens = 0;
  std::int32_t completion_tokens = 0;
  double cost_usd = 0;
  epoch_ms at = 0;
};

/// AI usage of a tenant over a period (token and cost accounting).
struct ai_usage {
  std::int64_t turns = 0;
  std::int64_t errors = 0; ///< turns the model did not answer (fell back)
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  double cost_usd = 0;
};

} // namespace ringback::engine
