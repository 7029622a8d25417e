// The voice steps: they answer a live call (call.incoming workflows).
#include "ringback/workflows/diagnostic.hpp"
#include "ringback/workflows/language.hpp"
#include "ringback/workflows/phone.hpp"
#include "ringback/workflows/yaml_source.hpp"

namespace ringback::workflows {

namespace {

using vk = engine::voice_verb::kind;

/// Longest text Twilio speaks in one <Say>, in characters.
constexpr std::size_t max_say_chars = 4096;

std::string quote(std::string x) {
  if (truncate_code_points(x, 32))
    x += "...";
  return "'" + x + "'";
}

std::int32_t loop_of(const step& s) {
  const auto* f = s.field("loop");
  return f ? static_cast<std::int32_t>(f->number) : 1;
}

std::chrono::seconds seconds_of(const field_value* f, std::int64_t fallback) {
  return std::chrono::seconds{(f ? f->number : fallback) / 1000};
}

step_result execute_dial(const step& s, step_frame& f) {
  std::vector<std::string> notes;
  engine::voice_verb v;
  v.what = vk::dial;
  if (const auto* to = s.field("to"))
    for (const auto& t : to->list) {
      auto r = t.render(f.vars, 64);
      if (auto n = normalize_e164(r.text))
        v.numbers.push_back(*n);
      else
        notes.push_back("not a phone number: " + quote(r.text));
    }
  if (const auto* c = s.field("caller_id")) {
    auto text = f.render(*c, notes, 64);
    if (auto n = normalize_e164(text))
      v.caller_id = *n;
    else if (!text.empty())
      notes.push_back("caller_id " + quote(text)
                      + " is not a phone number: "
                        "showing the caller's");
  }
  // 0: the host's ring timeout (calls.ring_timeout).
  v.timeout = seconds_of(s.field("timeout"), 0);
  if (v.numbers.empty()) {
    f.vars["dial.status"] = value{"failed"};
    f.vars["dial.answered"] = value{false};
    f.vars["dial.duration"] = value{0};
    return {step_outcome::failed, "no number to dial; " + join(notes, "; ")};
  }
  std::string detail = "ringing " + join(v.numbers);
  if (v.timeout.count() > 0)
    detail += " for " + std::to_string(v.timeout.count()) + "s";
  if (!notes.empty())
    detail += "; " + join(notes, "; ");
  f.fx.voice.push_back(std::move(v));
  step_result r{step_outcome::ok, std::move(detail)};
  r.suspend = "dial";
  return r;
}

std::string resume_dial(const step&, const resume_event& ev, step_frame& f,
                        std::string& detail) {
  const bool answered = ev.status == "completed" || ev.status == "answered";
  f.vars["dial.status"] = value{ev.status};
  f.vars["dial.answered"] = value{answered};
  f.vars["dial.duration"] = value{ev.duration};
  detail = "dial "
           + (ev.status.empty() ? std::string("(no status)") : ev.status) + ", "
           + std::to_string(ev.duration) + "s";
  return {};
}

step_result execute_say(const step& s, step_frame& f) {
  std::vector<std::string> notes;
  engine::voice_verb v;
  v.what = vk::say;
  v.text = f.render(*s.field("text"), notes);
  if (v.text.find_first_not_of(" \t\r\n") == std::string::npos)
    return {step_outcome::skipped, "nothing to say"};
  if (truncate_code_points(v.text, max_say_chars))
    notes.push_back("text cut to 4096 characters");
  if (const auto* x = s.field("voice"))
    v.voice = f.render(*x, notes, 64);
  if (const auto* x = s.field("language"))
    v.language = f.render(*x, notes, 16);
  v.loop = loop_of(s);
  f.fx.voice.push_back(std::move(v));
  return {step_outcome::ok, join(notes, "; ")};
}

step_result execute_play(const step& s, step_frame& f) {
  std::vector<std::string> notes;
  engine::voice_verb v;
  v.what = vk::play;
  v.text = f.render(*s.field("url"), notes, 2048);
  if (v.text.rfind("https://", 0) != 0 && v.text.rfind("http://", 0) != 0)
    return {step_outcome::failed,
            "url " + quote(v.text) + " is not an http(s) URL"};
  v.loop = loop_of(s);
  f.fx.voice.push_back(std::move(v));
  return {step_outcome::ok, join(notes, "; ")};
}

step_result execute_record(const step& s, step_frame& f) {
  engine::voice_verb v;
  v.what = vk::record;
  v.max_length = seconds_of(s.field("max_length"), 120'000);
  v.timeout = seconds_of(s.field("silence"), 5'000);
  const auto* beep = s.field("beep");
  v.play_beep = beep == nullptr || beep->flag;
  const auto* transcribe = s.field("transcribe");
  if (transcribe != nullptr && transcribe->flag)
    // The host turns this into the callback URL of this step.
    v.transcribe_callback = "transcribe:" + std::to_string(s.ordinal);
  step_result r{step_outcome::ok,
                "recording up to "
                  + format_duration(v.max_length.count() * 1000)};
  f.fx.voice.push_back(std::move(v));
  r.suspend = "recording";
  return r;
}

std::string resume_record(const step&, const resume_event& ev, step_frame& f,
                          std::string& detail) {
  f.vars["voicemail.url"] = value{ev.url};
  f.vars["voicemail.duration"] = value{ev.duration};
  f.vars["voicemail.recorded"] = value{ev.duration > 0 && !ev.url.empty()};
  detail = ev.url.empty() ? "no recording"
                          : "recorded " + std::to_string(ev.duration) + "s";
  return {};
}

step_result execute_hangup(const step&, step_frame& f) {
  engine::voice_verb v;
  v.what = vk::hangup;
  f.fx.voice.push_back(std::move(v));
  return {};
}

step_result execute_reject(const step& s, step_frame& f) {
  engine::voice_verb v;
  v.what = vk::reject;
  if (const auto* r = s.field("reason"))
    v.reason = r->text.source();
  std::string detail = v.reason;
  f.fx.voice.push_back(std::move(v));
  return {step_outcome::ok, std::move(detail)};
}

field_spec loop_field() {
  return {"loop",
          field_kind::integer,
          false,
          "1",
          "How many times to repeat it (1-10).",
          1,
          10};
}

} // namespace

void add_voice_steps(step_registry& r) {
  {
    step_spec s;
    s.type = "dial";
    s.family = step_family::voice;
    s.primary = "to";
    s.doc = "Forward the call: ring one or more numbers at once; the first "
            "to answer is connected. The run waits for the result, then "
            "carries on (e.g. to a voicemail when nobody answered). The first "
            "dial of a call decides whether it was answered or missed.";
    s.fields = {
      {"to", field_kind::text_list, false, "{{ tenant.owner_phone }}",
       "Number(s) to ring, E.164 after rendering (at most 10)."},
      {"timeout", field_kind::duration, false, "",
       "How long to ring (5s to 10m); default: the service's "
       "calls.ring_timeout.",
       5'000, 600'000},
      {"caller_id", field_kind::text, false, "",
       "Number shown to the callee; default: the caller's."},
    };
    s.defines = {"dial.status", "dial.answered", "dial.duration"};
    s.execute = execute_dial;
    s.resume = resume_dial;
    s.example
      = "- dial:\n    to: \"{{ tenant.owner_phone }}\"\n    timeout: 20s";
    r.add(std::move(s));
  }
  {
    step_spec s;
    s.type = "say";
    s.family = step_family::voice;
    s.doc = "Speak text to the caller (text-to-speech). Caller data in the "
            "text is escaped where it lands in TwiML.";
    s.primary = "text";
    s.fields = {
      {"text", field_kind::text, true, "",
       "What to say (at most 4096 characters)."},
      {"voice", field_kind::text, false, "",
       "A Twilio voice, e.g. Polly.Joanna."},
      {"language", field_kind::text, false, "", "e.g. en-US, es-MX."},
      loop_field(),
    };
    s.execute = execute_say;
    s.example = "- say: \"Thanks for calling {{ tenant.name }}.\"";
    r.add(std::move(s));
  }
  {
    step_spec s;
    s.type = "play";
    s.family = step_family::voice;
    s.doc = "Play an audio file (MP3 or WAV) to the caller.";
    s.primary = "url";
    s.fields = {
      {"url", field_kind::text, true, "", "An http(s) URL of the audio."},
      loop_field(),
    };
    s.execute = execute_play;
    s.example = "- play: https://example.com/greeting.mp3";
    r.add(std::move(s));
  }
  {
    step_spec s;
    s.type = "record_voicemail";
    s.family = step_family::voice;
    s.doc = "Record a message from the caller (after a beep) until silence, "
            "'#' or the maximum length. The run waits for the recording, then "
            "carries on with voicemail.* set. With `transcribe: true`, the "
            "`on_transcription` steps run when the carrier's transcription "
            "arrives (after the call).";
    s.fields = {
      {"max_length", field_kind::duration, false, "2m",
       "Longest recording (1s to 1h).", 1'000, 3'600'000},
      {"silence", field_kind::duration, false, "5s",
       "Silence that ends the recording (1s to 1m).", 1'000, 60'000},
      {"beep", field_kind::boolean, false, "true", "Play a beep first."},
      {"transcribe", field_kind::boolean, false, "false",
       "Ask the carrier for a transcription."},
    };
    s.branches
      = {{"on_transcription",
          false,
          "steps run when the transcription arrives",
          {"voicemail.transcription", "voicemail.transcription_status"}}};
    s.defines = {"voicemail.url", "voicemail.duration", "voicemail.recorded"};
    s.execute = execute_record;
    s.resume = resume_record;
    s.example
      = "- record_voicemail:\n    max_length: 2m\n    transcribe: true\n"
        "  on_transcription:\n    - notify_owner: \"Voicemail from "
        "{{ call.from }}: {{ voicemail.transcription }}\"";
    r.add(std::move(s));
  }
  {
    step_spec s;
    s.type = "hangup";
    s.family = step_family::voice;
    s.doc = "End the call. Steps after it still run (e.g. a text to the "
            "caller), but no voice step can.";
    s.execute = execute_hangup;
    s.example = "- hangup:";
    r.add(std::move(s));
  }
  {
    step_spec s;
    s.type = "reject";
    s.family = step_family::voice;
    s.doc = "Refuse the call without answering it (no charge for the caller).";
    s.primary = "reason";
    s.fields = {{"reason",
                 field_kind::choice,
                 false,
                 "rejected",
                 "What the caller hears: rejected or busy.",
                 0,
                 0,
                 {"rejected", "busy"}}};
    s.execute = execute_reject;
    s.example = "- reject: busy";
    r.add(std::move(s));
  }
}

} // namespace ringback::workflows
