#pragma once

#include "ringback/engine/ingress.hpp"
#include "ringback/engine/records.hpp"
#include "ringback/workflows/model.hpp"
#include "ringback/workflows/value.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// Runs workflows. The interpreter is pure: no I/O, no clock, no randomness.
/// A run executes its steps until it ends or must wait for the world (a dial
/// result, a recording, a timer, a reply, an HTTP response); it then hands
/// back a `segment_result` holding what it asks for (`effects`) and its
/// serializable `run_state`. Whoever hosts the run carries the effects out,
/// stores the state, and later calls `resume` with what happened.
namespace ringback::workflows {

/// What became of one step.
enum class step_outcome : std::uint8_t {
  ok,      ///< it did its work (e.g. asked for an SMS)
  skipped, ///< nothing to do, e.g. the caller's number is withheld
  failed,  ///< it could not run, e.g. a field rendered to nonsense
  waiting, ///< it suspended the run
  resumed, ///< the run came back to it with what it waited for
};

const char* to_string(step_outcome x);
std::optional<step_outcome> parse_step_outcome(std::string_view x);

/// An SMS the run asks for. The host writes it to the outbox, naming its
/// purpose after the workflow and `step_id`.
struct sms_action {
  std::string step_id;
  std::string to;
  std::string from;
  std::string body;
  /// Sent at once even in the tenant's quiet hours (text-backs, owner pages).
  bool urgent = true;
  /// Who wrote it, for a conversation's transcript: "ai" for `ai_reply`,
  /// empty for the workflow's own texts.
  std::string author{};
};

struct log_action {
  std::string step_id;
  std::string level; ///< info, warn, error
  std::string text;
};

struct tag_action {
  std::string step_id;
  std::string phone;
  std::string tag;
};

/// An outbound HTTP request; the run waits for its response.
struct http_action {
  std::string step_id;
  std::string method;
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds timeout{5000};
  std::int32_t max_attempts = 1;
};

/// An AI turn (`ai_reply`); the run waits for the reply, then texts it.
struct ai_action {
  std::string step_id;
  std::string to;   ///< the customer, E.164
  std::string from; ///< the business number
  std::size_t max_chars = 320;
};

/// A call to the owner's phone that reads a message (`call_owner`).
struct call_action {
  std::string step_id;
  std::string to;   ///< the owner's phone
  std::string from; ///< the business number
  std::string say;
};

/// Everything one segment of a run asks for, in step order.
struct effects {
  /// Voice verbs for the live call's current webhook answer (TwiML). A
  /// `dial` or `record` verb's `action_url` is left empty: the host knows
  /// where its callbacks go.
  std::vector<engine::voice_verb> voice;
  std::vector<sms_action> sms;
  std::vector<log_action> logs;
  std::vector<tag_action> tags;
  std::optional<http_action> http;
  std::optional<ai_action> ai;
  std::vector<call_action> calls;

  bool empty() const {
    return voice.empty() && sms.empty() && logs.empty() && tags.empty()
           && !http && !ai && calls.empty();
  }
};

/// One line of the audit trail of a run.
struct step_trace {
  std::string step_id; ///< `step::display_id()`
  std::string type;
  step_outcome outcome = step_outcome::ok;
  std::string detail; ///< why it skipped / failed, and what it asked for
  std::int64_t duration_us = 0;
};

/// Bounds of a run.
struct run_limits {
  /// Steps a run may execute in all (loops count every pass).
  std::int64_t max_steps = 1000;
  eval_limits eval;
};

/// A run's resumable state: serializable, versioned with the workflow.
struct run_state {
  std::size_t pc = 0;                 ///< next instruction of the program
  context vars;                       ///< everything the run has seen and set
  std::vector<std::int64_t> counters; ///< loop counters
  std::int64_t executed = 0;          ///< steps executed so far
  /// While waiting: "dial", "recording", "timer", "reply", "http" or "ai".
  std::string waiting_for;
  std::size_t waiting_op = 0;   ///< the instruction of the waiting step
  engine::epoch_ms wake_at = 0; ///< deadline of a timer or reply wait
  std::string contact;          ///< reply wait: whose reply

  std::string to_json() const;
  /// Nullopt (with `error` set) for text `to_json` did not write.
  static std::optional<run_state> from_json(std::string_view text,
                                            std::string* error = nullptr);
};

/// What happened while a run waited.
struct resume_event {
  enum class kind : std::uint8_t { dial, recording, timer, reply, http, ai };
  kind what = kind::timer;
  std::string status;          ///< dial: DialCallStatus
  std::int64_t duration = 0;   ///< dial, recording: seconds
  std::string url;             ///< recording: RecordingUrl
  std::string body;            ///< reply: the SMS text; http: response body
  std::string from;            ///< reply: sender
  std::string sid;             ///< reply: MessageSid; recording: RecordingSid
  int http_status = 0;         ///< http: 0 when no response came
  std::string content_type;    ///< http
  std::string error;           ///< http: why no response / not allowed
  std::int32_t attempts = 0;   ///< http
  std::int64_t elapsed_ms = 0; ///< http; ai: the AI's latency
  // ai: `body` is the reply, `error` why the model did not write it (the
  // offline responder did), `status` the intent read from the customer.
  std::string provider;          ///< ai: "openai" or "offline"
  std::int32_t prompt_tokens = 0;     ///< ai
  std::int32_t completion_tokens = 0; ///< ai
  double cost_usd = 0;                ///< ai
};

const char* to_string(resume_event::kind x);

/// The outcome of running a segment.
struct segment_result {
  engine::run_status status = engine::run_status::finished;
  run_state state;
  effects fx;
  std::vector<step_trace> trace;
  std::string error; ///< status == failed
};

/// Starts a run of `wf` with the trigger's variables. `now` is the current
/// time (for `wait` deadlines). Never throws (bad_alloc aside).
segment_result start(const workflow& wf, context vars, engine::epoch_ms now,
                     const run_limits& limits = {});

/// Starts a run at one of the program's extra entry points (e.g.
/// `transcription:<ordinal>`, the `on_transcription` branch of a
/// `record_voicemail`), with `vars` (usually the parent run's, plus the
/// event's). A failed result if `entry` is unknown.
segment_result start_at(const workflow& wf, std::string_view entry,
                        context vars, engine::epoch_ms now,
                        const run_limits& limits = {});

/// Resumes a waiting run. `fresh` overrides variables that change with time
/// (`business_hours`, `now.*`). A failed result if the run does not wait for
/// this kind of event or its state does not fit `wf`.
segment_result resume(const workflow& wf, run_state state,
                      const resume_event& ev, const context& fresh,
                      engine::epoch_ms now, const run_limits& limits = {});

/// The entry name of a `record_voicemail` step's `on_transcription` branch.
std::string transcription_entry(const step& s);

} // namespace ringback::workflows
