#include "simulator.hpp"

#include "ringback/adapters/twilio/form.hpp"
#include "ringback/adapters/twilio/signature.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "twiml_parse.hpp"
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>

namespace ringback::sim {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
namespace tw = ringback::adapters::twilio;
using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;

namespace {

constexpr const char* voice_path = "/webhooks/twilio/voice";
constexpr const char* status_path = "/webhooks/twilio/voice/status";
constexpr const char* sms_path = "/webhooks/twilio/sms";
constexpr const char* api_prefix = "/2010-04-01/Accounts/";

sim_clock::duration secs(double s) {
  return duration_cast<sim_clock::duration>(std::chrono::duration<double>(s));
}

std::uint64_t micros(sim_clock::duration d) {
  auto us = duration_cast<microseconds>(d).count();
  return us < 0 ? 0 : static_cast<std::uint64_t>(us);
}

double ms(std::uint64_t us) {
  return static_cast<double>(us) / 1000.0;
}

/// "Sat, 21 Nov 2026 06:36:11 +0000": Twilio's dates (RFC 2822) and the
/// status callback's Timestamp.
std::string rfc1123_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

std::string fmt(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* format, ...) {
  char buf[1024];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  return buf;
}

json::object hist_json(const histogram& h) {
  return json::object{{"count", h.count()},
                      {"p50_ms", ms(h.percentile(50))},
                      {"p90_ms", ms(h.percentile(90))},
                      {"p99_ms", ms(h.percentile(99))},
                      {"p999_ms", ms(h.percentile(99.9))},
                      {"max_ms", ms(h.max())},
                      {"mean_ms", h.mean() / 1000.0}};
}

std::string hist_row(const char* name, const histogram& h) {
  if (h.count() == 0) {
    return fmt("  %-34s %8s\n", name, "-");
  }
  return fmt("  %-34s %8" PRIu64 " %8.2f %8.2f %8.2f %8.2f %9.2f\n", name,
             h.count(), ms(h.percentile(50)), ms(h.percentile(90)),
             ms(h.percentile(99)), ms(h.percentile(99.9)), ms(h.max()));
}

/// JSON text with plain decimals (Boost.JSON writes 3E1 for 30.0).
void write_json(const json::value& v, std::string& out) {
  switch (v.kind()) {
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) {
          out += ',';
        }
        first = false;
        out += json::serialize(json::value(kv.key()));
        out += ':';
        write_json(kv.value(), out);
      }
      out += '}';
      break;
    }
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& x : v.get_array()) {
        if (!first) {
          out += ',';
        }
        first = false;
        write_json(x, out);
      }
      out += ']';
      break;
    }
    case json::kind::double_: {
      double d = v.get_double();
      if (!std::isfinite(d)) {
        out += "null";
        break;
      }
      std::string text = fmt("%.3f", d);
      while (text.back() == '0') {
        text.pop_back();
      }
      if (text.back() == '.') {
        text.pop_back();
      }
      out += text == "-0" ? "0" : text;
      break;
    }
    default:
      out += json::serialize(v);
  }
}

std::string shorten(const std::string& text, std::size_t n) {
  return text.size() <= n ? text : text.substr(0, n - 3) + "...";
}

} // namespace

const char* to_string(hook x) {
  switch (x) {
    case hook::voice:
      return "voice";
    case hook::dial:
      return "dial-result";
    case hook::status:
      return "status";
    case hook::sms:
      return "sms";
  }
  return "?";
}

std::vector<sim_tenant> make_tenants(const options& o) {
  std::vector<sim_tenant> out;
  if (!o.number.empty()) {
    out.push_back({"given", o.number, o.owner});
    return out;
  }
  for (int i = 0; i < o.tenants; ++i) {
    out.push_back({"t" + std::to_string(i), fmt("+1303555%04d", 1000 + i),
                   fmt("+1303556%04d", 1000 + i)});
  }
  return out;
}

simulator::simulator(options o)
  : opt_(std::move(o)),
    tenants_(make_tenants(opt_)),
    timer_(io_),
    ticker_(io_),
    sampler_(io_),
    signals_(io_, SIGINT, SIGTERM),
    rng_(opt_.seed) {
  for (std::size_t i = 0; i < tenants_.size(); ++i) {
    owner_index_.emplace(tenants_[i].owner, static_cast<std::uint16_t>(i));
  }
  rest_auth_ = "Basic "
               + tw::base64_encode(opt_.account_sid + ":" + opt_.auth_token);
  caller_base_ = static_cast<std::uint32_t>(rng_() % 4'000'000);
}

simulator::~simulator() {
  metrics_stop_ = true;
  if (metrics_thread_.joinable()) {
    metrics_thread_.join();
  }
}

// -- helpers ------------------------------------------------------------------

std::string simulator::new_sid(const char* prefix) {
  return fmt("%s%016" PRIx64 "%016" PRIx64, prefix, rng_(), rng_());
}

double simulator::uniform(double lo, double hi) {
  if (hi <= lo) {
    return lo;
  }
  return std::uniform_real_distribution<double>{lo, hi}(rng_);
}

bool simulator::chance(double p) {
  return p > 0 && std::uniform_real_distribution<double>{0, 1}(rng_) < p;
}

double simulator::elapsed(sim_clock::time_point t) const {
  return std::chrono::duration<double>(t - t0_).count();
}

double simulator::now_s() const {
  return elapsed(sim_clock::now());
}

void simulator::demo(std::uint32_t idx, const std::string& what) {
  if (!opt_.demo) {
    return;
  }
  std::printf("%7.1fs  call %-3u %s\n", now_s(), idx + 1, what.c_str());
  std::fflush(stdout);
}

int simulator::step_at(sim_clock::time_point t) const {
  if (opt_.steps.empty() || t < t0_) {
    return -1;
  }
  auto k = static_cast<std::size_t>(elapsed(t) / opt_.step_duration.count());
  return k < opt_.steps.size() ? static_cast<int>(k) : -1;
}

// -- scheduling ---------------------------------------------------------------

void simulator::schedule(sim_clock::time_point at, ev what, std::uint32_t call,
                         std::uint16_t gen) {
  heap_.push(event{at, seq_++, call, what, gen});
  if (at < armed_) {
    arm();
  }
}

void simulator::arm() {
  if (heap_.empty()) {
    armed_ = sim_clock::time_point::max();
    return;
  }
  armed_ = heap_.top().at;
  timer_.expires_at(armed_);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec == asio::error::operation_aborted) {
      return;
    }
    on_timer();
  });
}

void simulator::on_timer() {
  armed_ = sim_clock::time_point::max();
  auto now = sim_clock::now();
  // Events due within the slack go now, with it: one timer (one
  // timerfd_settime) serves several events instead of one each. An event
  // taken early counts as scheduled now, so every latency is still measured
  // from the send or from the scheduled time, whichever came first; the
  // arrivals keep their own schedule (see `arrive`).
  const auto horizon = now + opt_.timer_slack;
  for (int n = 0; n < 2000 && !heap_.empty() && heap_.top().at <= horizon;
       ++n) {
    auto e = heap_.top();
    heap_.pop();
    dispatch(e, now);
  }
  if (!heap_.empty() && heap_.top().at <= now) {
    armed_ = now;
    asio::post(io_, [this] { on_timer(); });
    return;
  }
  arm();
}

void simulator::dispatch(event e, sim_clock::time_point now) {
  if (e.what == ev::arrival) {
    arrive(e.at, std::min(e.at, now));
    return;
  }
  e.at = std::min(e.at, now);
  auto& c = calls_[e.call];
  switch (e.what) {
    case ev::arrival:
      break;
    case ev::pickup:
      if (e.gen != c.gen || !c.ringing) {
        return;
      }
      c.ringing = false;
      --ringing_;
      demo(e.call,
           fmt("the owner answered after %.1f s; they talk for %.0f s",
               std::chrono::duration<double>(c.pickup - c.dial_start).count(),
               std::ceil(c.talk_s)));
      break;
    case ev::dial_end:
      if (e.gen != c.gen || c.ph != phase::dialing) {
        return;
      }
      if (c.ringing) {
        c.ringing = false;
        --ringing_;
      }
      if (c.answers) {
        demo(e.call, "the call ended after the talk: no text expected");
      } else {
        demo(e.call,
             fmt("the owner did not answer (%s after %.1f s)",
                 c.busy ? "busy" : "no-answer",
                 std::chrono::duration<double>(c.dial_end - c.dial_start)
                   .count()));
      }
      if (c.drop_dial) {
        demo(e.call, "the carrier LOSES the Dial callback (simulated): "
                     "ringback has to ask Twilio itself");
      } else {
        send_dial(e.call, e.at, false);
        if (c.dup_dial) {
          schedule(e.at + secs(uniform(0.05, 1.0)), ev::dial_dup, e.call,
                   c.gen);
        }
      }
      schedule(c.parent_end, ev::call_end, e.call, c.gen);
      break;
    case ev::dial_dup:
      send_dial(e.call, e.at, true);
      break;
    case ev::call_end:
      if (e.gen != c.gen || c.ph != phase::dialing) {
        return;
      }
      end_call(e.call, e.at);
      break;
    case ev::status_dup:
      send_status(e.call, e.at, true);
      break;
    case ev::caller_reply:
      send_reply(e.call, e.at, false);
      break;
    case ev::owner_reply:
      send_reply(e.call, e.at, true);
      break;
  }
}

// -- the calls
// ------------------------------------------------------------------

/// The phone numbers written in a text, as E.164 candidates: runs of 10 to
/// 15 digits, with the usual separators between them ("+1 (555) 123-0000").
/// A 10-digit run is also tried as a +1 number.
std::vector<std::string> phone_numbers_in(const std::string& body) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < body.size()) {
    if (!(body[i] >= '0' && body[i] <= '9') && body[i] != '+'
        && body[i] != '(') {
      ++i;
      continue;
    }
    std::string digits;
    std::size_t j = i;
    for (; j < body.size() && digits.size() <= 15; ++j) {
      char ch = body[j];
      if (ch >= '0' && ch <= '9')
        digits += ch;
      else if (ch != ' ' && ch != '(' && ch != ')' && ch != '-' && ch != '.'
               && !(ch == '+' && digits.empty()))
        break;
    }
    if (digits.size() >= 10 && digits.size() <= 15) {
      out.push_back("+" + digits);
      if (digits.size() == 10)
        out.push_back("+1" + digits);
    }
    i = j > i ? j : i + 1;
  }
  return out;
}

void simulator::arrive(sim_clock::time_point scheduled,
                       sim_clock::time_point at) {
  if (!arrivals_open_) {
    return;
  }
  const auto idx = static_cast<std::uint32_t>(calls_.size());
  calls_.emplace_back();
  auto& c = calls_.back();
  c.sid = new_sid("CA");
  c.child_sid = new_sid("CA");
  c.caller = fmt("+1720%07u", 2'000'000 + (caller_base_ + idx) % 8'000'000);
  c.tenant = static_cast<std::uint16_t>(idx % tenants_.size());
  c.start = at;
  c.step = static_cast<std::int16_t>(step_at(scheduled));
  c.answers = chance(opt_.answer_p);
  c.busy = !c.answers && chance(opt_.busy_share);
  c.ring_s = static_cast<float>(uniform(opt_.ring.min, opt_.ring.max));
  c.talk_s
    = static_cast<float>(std::max(1.0, uniform(opt_.talk.min, opt_.talk.max)));
  c.drop_dial = chance(opt_.drop_dial);
  c.dup_dial = !c.drop_dial && chance(opt_.dup_dial);
  c.drop_status = chance(opt_.drop_status);
  c.dup_status = !c.drop_status && chance(opt_.dup_status);
  c.reply = chance(opt_.reply_share);
  c.owner_reply = chance(opt_.owner_reply_share);
  c.reply_delay_s
    = static_cast<float>(uniform(opt_.reply_delay.min, opt_.reply_delay.max));
  c.owner_reply_delay_s
    = static_cast<float>(uniform(opt_.reply_delay.min, opt_.reply_delay.max));
  c.ringing = true;
  by_sid_.emplace(c.sid, idx);
  by_caller_.emplace(c.caller, idx);
  ++in_flight_;
  ++ringing_;
  peak_in_flight_ = std::max(peak_in_flight_, in_flight_);
  peak_ringing_ = std::max(peak_ringing_, ringing_);
  if (opt_.demo) {
    const auto& t = tenants_[c.tenant];
    demo(idx, fmt("%s calls %s (%s): the carrier asks ringback what to do",
                  c.caller.c_str(), t.number.c_str(), c.sid.c_str()));
  }
  send_voice(idx);

  // The next arrival: scheduled times, so a slow server cannot slow us down.
  if (opt_.max_calls > 0
      && static_cast<std::int64_t>(calls_.size()) >= opt_.max_calls) {
    stop_arrivals("max-calls reached");
    return;
  }
  double rate = opt_.steps.empty() ? rate_
                : c.step >= 0 ? opt_.steps[static_cast<std::size_t>(c.step)]
                              : 0;
  if (rate <= 0) {
    stop_arrivals("rate 0");
    return;
  }
  double gap = opt_.poisson ? std::exponential_distribution<double>{rate}(rng_)
                            : 1.0 / rate;
  // From the schedule, not from when this one went: a slow loop cannot slow
  // the arrivals down, nor the timer's slack speed them up.
  auto next = scheduled + secs(gap);
  if (next >= arrivals_end_) {
    stop_arrivals("duration reached");
    return;
  }
  schedule(next, ev::arrival, 0);
}

void simulator::post(hook kind, int step, const std::string& target,
                     const std::string& url, const tw::form_fields& fields,
                     sim_clock::time_point scheduled,
                     std::function<void(http_result&)> then) {
  http_job job;
  job.target = target;
  job.signature = tw::sign(opt_.auth_token, url, fields);
  job.body = tw::encode_form(fields);
  job.scheduled = scheduled;
  ++sent_[static_cast<int>(kind)];
  ++outstanding_;
  if (step >= 0) {
    ++steps_[step].scheduled;
    ++steps_[step].outstanding;
  }
  job.done = [this, kind, step, scheduled,
              then = std::move(then)](http_result&& r) {
    --outstanding_;
    record(kind, step, r, scheduled);
    if (then) {
      then(r);
    }
  };
  pool_->submit(std::move(job));
}

void simulator::record(hook kind, int step, const http_result& r,
                       sim_clock::time_point scheduled) {
  const auto k = static_cast<int>(kind);
  const auto latency = micros(r.done_at - scheduled);
  latency_[k].record(latency);
  if (r.sent_at != sim_clock::time_point{}) {
    send_lag_[k].record(micros(r.sent_at - scheduled));
  }
  second_.record(latency);
  ++second_count_;
  bool error = false;
  if (r.error != transport_error::none) {
    ++errors_[std::string{to_string(kind)} + ":" + to_string(r.error)];
    error = true;
  } else if (r.status < 200 || r.status > 299) {
    ++errors_[std::string{to_string(kind)} + ":http_"
              + std::to_string(r.status)];
    error = true;
  } else {
    ++ok_[k];
  }
  if (error) {
    ++second_errors_;
  }
  if (step >= 0) {
    auto& s = steps_[step];
    --s.outstanding;
    ++s.completed;
    s.latency.record(latency);
    if (error) {
      ++s.errors;
    }
  }
}

void simulator::send_voice(std::uint32_t idx) {
  auto& c = calls_[idx];
  const auto& t = tenants_[c.tenant];
  std::vector<std::pair<std::string, std::string>> f{
    {"AccountSid", opt_.account_sid},
    {"ApiVersion", "2010-04-01"},
    {"CallSid", c.sid},
    {"CallStatus", "ringing"},
    {"Called", t.number},
    {"CalledCity", ""},
    {"CalledCountry", "US"},
    {"CalledState", "CO"},
    {"CalledZip", ""},
    {"Caller", c.caller},
    {"CallerCity", "DENVER"},
    {"CallerCountry", "US"},
    {"CallerState", "CO"},
    {"CallerZip", "80202"},
    {"Direction", "inbound"},
    {"From", c.caller},
    {"FromCity", "DENVER"},
    {"FromCountry", "US"},
    {"FromState", "CO"},
    {"FromZip", "80202"},
    {"To", t.number},
    {"ToCity", ""},
    {"ToCountry", "US"},
    {"ToState", "CO"},
    {"ToZip", ""},
  };
  post(hook::voice, c.step, voice_path, opt_.public_url + voice_path,
       std::move(f), c.start,
       [this, idx](http_result& r) { on_voice(idx, std::move(r)); });
}

void simulator::on_voice(std::uint32_t idx, http_result&& r) {
  auto& c = calls_[idx];
  if (c.ph != phase::voice_pending) {
    return;
  }
  std::string problem;
  std::optional<dial_instruction> dial;
  if (r.error != transport_error::none) {
    problem = std::string{"voice webhook "} + to_string(r.error);
    c.voice_refused = true;
  } else if (r.status != 200) {
    problem = "voice webhook HTTP " + std::to_string(r.status);
  } else {
    std::string why;
    dial = parse_dial(r.body, why);
    if (!dial) {
      problem = "TwiML: " + why;
      ++twiml_problems_[why];
    } else if (dial->numbers.size() != 1
               || dial->numbers[0] != tenants_[c.tenant].owner) {
      problem = "TwiML: <Dial> to someone other than the owner";
      ++twiml_problems_["dial to someone else"];
      dial.reset();
    } else if (dial->action.empty()) {
      problem = "TwiML: <Dial> without action";
      ++twiml_problems_["dial without action"];
      dial.reset();
    } else if (dial->method != "POST") {
      problem = "TwiML: <Dial method=" + dial->method + ">";
      ++twiml_problems_["dial method not POST"];
      dial.reset();
    }
  }
  const auto now = sim_clock::now();
  if (!dial) {
    // Twilio would play an application error and hang up: the call ends.
    c.ph = phase::voice_failed;
    c.parent_end = now;
    if (c.ringing) {
      c.ringing = false;
      --ringing_;
    }
    --in_flight_;
    demo(idx, problem + ": the call ends (indeterminate)");
    return;
  }
  // The action URL, as Twilio would request it.
  action_url a;
  a.url = dial->action;
  if (a.url.rfind(opt_.public_url, 0) == 0) {
    a.target = a.url.substr(opt_.public_url.size());
  } else if (!a.url.empty() && a.url[0] == '/') {
    a.target = a.url;
    auto scheme = opt_.public_url.find("://");
    auto slash
      = opt_.public_url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    a.url = opt_.public_url.substr(0, slash) + a.target;
  } else {
    auto scheme = a.url.find("://");
    auto slash = scheme == std::string::npos ? std::string::npos
                                             : a.url.find('/', scheme + 3);
    a.target = slash == std::string::npos ? "/" : a.url.substr(slash);
  }
  std::size_t action_id = 0;
  for (; action_id < actions_.size(); ++action_id) {
    if (actions_[action_id].url == a.url) {
      break;
    }
  }
  if (action_id == actions_.size()) {
    if (actions_.size() >= 60000) {
      action_id = 0;
    } else {
      actions_.push_back(std::move(a));
    }
  }
  c.action = action_id;
  c.ph = phase::dialing;
  c.dial_start = now;
  const double timeout = dial->timeout_s;
  if (hangup_at_passed()) {
    c.answers = false;
    c.busy = false;
    c.ring_s = 1;
  }
  if (c.answers) {
    // An owner who answers does so before the Dial timeout.
    double pickup = std::min<double>(c.ring_s,
                                     std::max(timeout - 1, timeout / 2));
    c.pickup = now + secs(pickup);
    c.dial_end = c.pickup + secs(std::ceil(c.talk_s));
    schedule(c.pickup, ev::pickup, idx, c.gen);
  } else if (c.busy) {
    c.dial_end = now + secs(uniform(0.5, 2.0));
  } else {
    c.dial_end = now + secs(std::min<double>(c.ring_s, timeout));
  }
  c.parent_end = c.dial_end + milliseconds{200};
  demo(idx, fmt("ringback answered in %.1f ms: <Dial timeout=%.0f> %s",
                ms(micros(r.done_at - c.start)), timeout,
                tenants_[c.tenant].owner.c_str()));
  schedule(c.dial_end, ev::dial_end, idx, c.gen);
}

void simulator::send_dial(std::uint32_t idx, sim_clock::time_point at,
                          bool dup) {
  auto& c = calls_[idx];
  const auto& t = tenants_[c.tenant];
  const auto& a = actions_[c.action];
  const char* status = c.answers ? "completed" : c.busy ? "busy" : "no-answer";
  const auto duration
    = c.answers ? std::to_string(static_cast<int>(std::ceil(c.talk_s))) : "0";
  std::vector<std::pair<std::string, std::string>> f{
    {"AccountSid", opt_.account_sid},
    {"ApiVersion", "2010-04-01"},
    {"CallSid", c.sid},
    {"CallStatus", "in-progress"},
    {"Called", t.number},
    {"Caller", c.caller},
    {"DialCallDuration", duration},
    {"DialCallSid", c.child_sid},
    {"DialCallStatus", status},
    {"Direction", "inbound"},
    {"From", c.caller},
    {"To", t.number},
  };
  if (!dup) {
    c.dial_sched = at;
  }
  post(hook::dial, step_at(at), a.target, a.url, std::move(f), at,
       [this, idx, dup](http_result& r) {
         auto& c = calls_[idx];
         if (r.error == transport_error::none && r.status == 200) {
           if (!dup) {
             c.dial_failed = false;
           }
           if (dup) {
             demo(idx, "the carrier sent the Dial callback AGAIN (a retry): "
                       "ringback must not text twice");
           }
         } else {
           if (!dup) {
             c.dial_failed = true;
           }
           demo(idx, std::string{"the Dial callback failed: "}
                       + (r.error != transport_error::none
                            ? to_string(r.error)
                            : "HTTP " + std::to_string(r.status)));
         }
       });
}

void simulator::end_call(std::uint32_t idx, sim_clock::time_point at) {
  auto& c = calls_[idx];
  c.ph = phase::hung_up;
  --in_flight_;
  if (c.drop_status) {
    return;
  }
  send_status(idx, at, false);
  if (c.dup_status) {
    schedule(at + secs(uniform(0.05, 1.0)), ev::status_dup, idx, c.gen);
  }
}

void simulator::send_status(std::uint32_t idx, sim_clock::time_point at,
                            bool dup) {
  auto& c = calls_[idx];
  const auto& t = tenants_[c.tenant];
  const auto total = static_cast<int>(
    std::lround(std::chrono::duration<double>(c.parent_end - c.start).count()));
  std::vector<std::pair<std::string, std::string>> f{
    {"AccountSid", opt_.account_sid},
    {"ApiVersion", "2010-04-01"},
    {"CallDuration", std::to_string(total)},
    {"CallSid", c.sid},
    {"CallStatus", "completed"},
    {"CallbackSource", "call-progress-events"},
    {"Called", t.number},
    {"Caller", c.caller},
    {"Direction", "inbound"},
    {"From", c.caller},
    {"SequenceNumber", "0"},
    {"Timestamp", rfc1123_now()},
    {"To", t.number},
  };
  if (!dup) {
    c.status_sched = at;
  }
  post(hook::status, step_at(at), status_path, opt_.public_url + status_path,
       std::move(f), at, [this, idx, dup](http_result& r) {
         bool ok = r.error == transport_error::none && r.status == 200;
         if (!dup) {
           calls_[idx].status_failed = !ok;
         }
       });
}

void simulator::send_reply(std::uint32_t idx, sim_clock::time_point at,
                           bool owner) {
  auto& c = calls_[idx];
  const auto& t = tenants_[c.tenant];
  const auto sid = new_sid("SM");
  const std::string from = owner ? t.owner : c.caller;
  const std::string body
    = owner ? "On it, calling them back after this job."
            : "Hi, this is about the kitchen sink, it drains slowly. Can "
              "you come tomorrow morning?";
  std::vector<std::pair<std::string, std::string>> f{
    {"AccountSid", opt_.account_sid},
    {"ApiVersion", "2010-04-01"},
    {"Body", body},
    {"From", from},
    {"FromCity", "DENVER"},
    {"FromCountry", "US"},
    {"FromState", "CO"},
    {"FromZip", "80202"},
    {"MessageSid", sid},
    {"NumMedia", "0"},
    {"NumSegments", "1"},
    {"SmsMessageSid", sid},
    {"SmsSid", sid},
    {"SmsStatus", "received"},
    {"To", t.number},
    {"ToCountry", "US"},
  };
  if (!owner) {
    c.replied_at = at;
    c.reply_state = 2;
  }
  demo(idx, std::string{owner ? "the owner" : "the caller"}
              + " replies by SMS: \"" + shorten(body, 60) + "\"");
  std::function<void(http_result&)> then;
  if (!owner) {
    then = [this, idx](http_result& r) {
      const bool ok = r.error == transport_error::none && r.status >= 200
                      && r.status <= 299;
      calls_[idx].reply_state = ok ? 3 : 4;
    };
  }
  post(hook::sms, step_at(at), sms_path, opt_.public_url + sms_path,
       std::move(f), at, std::move(then));
}

bool simulator::hangup_at_passed() const {
  return hangup_done_;
}

void simulator::hang_up_all() {
  hangup_done_ = true;
  auto now = sim_clock::now();
  double pace = opt_.hangup_rate > 0 ? opt_.hangup_rate : std::max(rate_, 1.0);
  std::uint64_t k = 0;
  for (std::uint32_t i = 0; i < calls_.size(); ++i) {
    auto& c = calls_[i];
    if (c.ph != phase::dialing || !c.ringing) {
      continue;
    }
    ++c.gen;
    c.answers = false;
    c.busy = false;
    c.dial_end = now + secs(static_cast<double>(k++) / pace);
    c.parent_end = c.dial_end + milliseconds{200};
    schedule(c.dial_end, ev::dial_end, i, c.gen);
  }
  std::fprintf(stderr,
               "ringback_sim: %.1fs: hanging up %" PRIu64
               " ringing calls at %.0f/s\n",
               now_s(), k, pace);
}

// -- the REST API
// ---------------------------------------------------------------

std::string simulator::call_json(const call_state& c, bool child,
                                 sim_clock::time_point now) const {
  const auto& t = tenants_[c.tenant];
  std::string status;
  json::value duration = nullptr;
  if (!child) {
    if (c.ph == phase::voice_failed) {
      status = "failed";
      duration = "0";
    } else if (c.ph == phase::voice_pending) {
      status = "ringing";
    } else if (now >= c.parent_end) {
      status = "completed";
      duration = std::to_string(std::lround(
        std::chrono::duration<double>(c.parent_end - c.start).count()));
    } else {
      status = "in-progress";
    }
  } else if (c.answers) {
    if (now < c.pickup) {
      status = "ringing";
    } else if (now < c.dial_end) {
      status = "in-progress";
    } else {
      status = "completed";
      duration = std::to_string(static_cast<int>(std::ceil(c.talk_s)));
    }
  } else if (now < c.dial_end) {
    status = "ringing";
  } else {
    status = c.busy ? "busy" : "no-answer";
    duration = "0";
  }
  const auto& sid = child ? c.child_sid : c.sid;
  const auto uri = std::string{api_prefix} + opt_.account_sid + "/Calls/" + sid
                   + ".json";
  json::object o{
    {"sid", sid},
    {"account_sid", opt_.account_sid},
    {"parent_call_sid", child ? json::value(c.sid) : json::value(nullptr)},
    {"status", status},
    {"duration", duration},
    {"direction", child ? "outbound-dial" : "inbound"},
    {"from", child ? t.number : c.caller},
    {"to", child ? t.owner : t.number},
    {"api_version", "2010-04-01"},
    {"price", nullptr},
    {"price_unit", "USD"},
    {"uri", uri},
  };
  return json::serialize(o);
}

void simulator::serve_rest(const server_request& req, server_response& res,
                           std::chrono::milliseconds& delay) {
  res.set(http::field::content_type, "application/json; charset=utf-8");
  auto error = [&res](int status, int code, const std::string& message) {
    res.result(static_cast<unsigned>(status));
    res.body() = json::serialize(
      json::object{{"code", code},
                   {"message", message},
                   {"more_info", "https://www.twilio.com/docs/errors/"
                                   + std::to_string(code)},
                   {"status", status}});
  };
  auto auth = req[http::field::authorization];
  if (auth != rest_auth_) {
    ++rest_unauthorized_;
    res.set(http::field::www_authenticate, "Basic realm=\"Twilio API\"");
    error(401, 20003, "Authenticate");
    return;
  }
  auto target = tw::split_target(req.target());
  const std::string account = std::string{api_prefix} + opt_.account_sid + "/";
  if (target.path.substr(0, account.size()) != account) {
    ++rest_not_found_;
    error(404, 20404, "The requested resource was not found");
    return;
  }
  auto rest = target.path.substr(account.size());
  const auto now = sim_clock::now();
  if (req.method() == http::verb::post && rest == "Messages.json") {
    auto form = tw::decode_form(req.body());
    auto get = [&form](std::string_view name) {
      auto v = tw::find_field(form.fields, name);
      return v ? std::string{*v} : std::string{};
    };
    auto to = get("To"), from = get("From"), body = get("Body");
    if (!form.ok() || to.empty() || body.empty()) {
      ++rest_other_;
      error(400, 21604, "A 'To' phone number and a Body are required.");
      return;
    }
    if (chance(opt_.sms_fail_share)) {
      ++messages_injected_fail_;
      error(503, 20503, "Service Unavailable (injected by the simulator)");
      return;
    }
    // Recorded now: a send whose answer is lost (a kill while waiting) was
    // still received, as at Twilio.
    delay = duration_cast<milliseconds>(opt_.rest_delay);
    on_message(to, from, body);
    const auto idx = static_cast<std::uint32_t>(sent_messages_.size());
    sent_messages_.push_back({new_sid("SM"), to, from, body, rfc1123_now()});
    messages_by_to_[to].push_back(idx);
    message_by_sid_.emplace(sent_messages_.back().sid, idx);
    res.result(http::status::created);
    res.body() = message_json(sent_messages_.back());
    return;
  }
  if (req.method() == http::verb::get && rest == "Messages.json") {
    ++message_lookups_;
    list_messages(target.path, target.query, res);
    return;
  }
  if (req.method() == http::verb::get && rest.substr(0, 9) == "Messages/"
      && rest.size() > 14 && rest.substr(rest.size() - 5) == ".json") {
    auto i
      = message_by_sid_.find(std::string{rest.substr(9, rest.size() - 14)});
    if (i == message_by_sid_.end()) {
      ++rest_not_found_;
      error(404, 20404, "The requested resource was not found");
      return;
    }
    res.result(http::status::ok);
    res.body() = message_json(sent_messages_[i->second]);
    return;
  }
  if (req.method() == http::verb::get && rest.substr(0, 6) == "Calls/"
      && rest.size() > 11 && rest.substr(rest.size() - 5) == ".json") {
    auto sid = std::string{rest.substr(6, rest.size() - 11)};
    auto i = by_sid_.find(sid);
    if (i == by_sid_.end()) {
      ++rest_not_found_;
      error(404, 20404,
            "The requested resource " + std::string{target.path}
              + " was not found");
      return;
    }
    ++call_fetches_;
    auto& c = calls_[i->second];
    if (!c.fetched) {
      c.fetched = true;
      demo(i->second, "ringback asks Twilio about the call (GET Calls/"
                        + shorten(sid, 12) + ".json)");
    }
    res.result(http::status::ok);
    res.body() = call_json(c, false, now);
    return;
  }
  if (req.method() == http::verb::get && rest == "Calls.json") {
    auto query = tw::decode_form(target.query);
    auto parent = tw::find_field(query.fields, "ParentCallSid");
    std::string calls = "[";
    if (parent) {
      ++child_lists_;
      auto i = by_sid_.find(std::string{*parent});
      if (i != by_sid_.end()) {
        auto& c = calls_[i->second];
        if (c.ph == phase::dialing || c.ph == phase::hung_up) {
          calls += call_json(c, true, now);
        }
      }
    } else {
      ++rest_other_;
    }
    calls += "]";
    const std::string uri = std::string{target.path} + "?"
                            + std::string{target.query};
    res.result(http::status::ok);
    res.body() = "{\"calls\":" + calls + ",\"end\":0,\"first_page_uri\":"
                 + json::serialize(json::value(uri))
                 + ",\"next_page_uri\":null,\"page\":0,\"page_size\":50,"
                   "\"previous_page_uri\":null,\"start\":0,\"uri\":"
                 + json::serialize(json::value(uri)) + "}";
    return;
  }
  ++rest_not_found_;
  error(404, 20404, "The requested resource was not found");
}

std::string simulator::message_json(const sent_message& m) const {
  return json::serialize(
    json::object{{"account_sid", opt_.account_sid},
                 {"api_version", "2010-04-01"},
                 {"body", m.body},
                 {"date_created", m.created},
                 {"date_sent", nullptr},
                 {"date_updated", m.created},
                 {"direction", "outbound-api"},
                 {"error_code", nullptr},
                 {"error_message", nullptr},
                 {"from", m.from},
                 {"num_media", "0"},
                 {"num_segments", "1"},
                 {"price", nullptr},
                 {"sid", m.sid},
                 {"status", "queued"},
                 {"to", m.to},
                 {"uri", std::string{api_prefix} + opt_.account_sid
                           + "/Messages/" + m.sid + ".json"}});
}

void simulator::list_messages(std::string_view path, std::string_view query,
                              server_response& res) {
  // GET Messages.json?To=..&From=..[&PageSize=..][&Page=..]: newest first.
  auto q = tw::decode_form(query);
  auto get = [&q](std::string_view name) {
    auto v = tw::find_field(q.fields, name);
    return v ? std::string{*v} : std::string{};
  };
  const auto to = get("To"), from = get("From");
  int page_size = std::max(1,
                           std::min(1000, std::atoi(get("PageSize").c_str())));
  if (get("PageSize").empty()) {
    page_size = 50;
  }
  const int page = std::max(0, std::atoi(get("Page").c_str()));
  std::vector<std::uint32_t> match;
  if (auto i = messages_by_to_.find(to); i != messages_by_to_.end()) {
    for (auto it = i->second.rbegin(); it != i->second.rend(); ++it) {
      if (from.empty() || sent_messages_[*it].from == from) {
        match.push_back(*it);
      }
    }
  }
  const std::size_t begin = static_cast<std::size_t>(page) * page_size;
  std::string list = "[";
  for (std::size_t k = begin; k < match.size() && k < begin + page_size; ++k) {
    if (list.size() > 1) {
      list += ',';
    }
    list += message_json(sent_messages_[match[k]]);
  }
  list += "]";
  auto uri = [&](int p) {
    return std::string{path} + "?To=" + tw::encode_component(to)
           + "&From=" + tw::encode_component(from) + "&PageSize="
           + std::to_string(page_size) + "&Page=" + std::to_string(p);
  };
  const bool more = begin + page_size < match.size();
  res.result(http::status::ok);
  res.body() = "{\"messages\":" + list + ",\"end\":0,\"first_page_uri\":"
               + json::serialize(json::value(uri(0))) + ",\"next_page_uri\":"
               + (more ? json::serialize(json::value(uri(page + 1))) : "null")
               + ",\"page\":" + std::to_string(page)
               + ",\"page_size\":" + std::to_string(page_size)
               + ",\"previous_page_uri\":null," + "\"start\":0,\"uri\":"
               + json::serialize(json::value(uri(page))) + "}";
}

void simulator::on_message(const std::string& to, const std::string& from,
                           const std::string& body) {
  ++messages_;
  const auto now = sim_clock::now();
  if (auto i = by_caller_.find(to); i != by_caller_.end()) {
    const auto idx = i->second;
    auto& c = calls_[idx];
    if (from != tenants_[c.tenant].number) {
      ++wrong_from_;
    }
    const auto h = std::hash<std::string>{}(body);
    const bool after_reply = c.replied_at != sim_clock::time_point{}
                             && now > c.replied_at;
    if (c.texts_caller > 0 && after_reply && h != c.text_hash) {
      // a conversation reply (the AI's or the owner's), not a second
      // text-back
      if (c.conv_texts < 255) {
        ++c.conv_texts;
      }
      if (c.conv_texts == 1) {
        ai_after_reply_.record(micros(now - c.replied_at));
        if (first_ai_at_ == sim_clock::time_point{}) {
          first_ai_at_ = now;
        }
      }
      demo(idx, "ringback answers the caller: \"" + shorten(body, 70) + "\"");
      return;
    }
    if (c.texts_caller < 255) {
      ++c.texts_caller;
    }
    if (c.texts_caller > 1) {
      demo(idx, "DUPLICATE text to the caller: \"" + shorten(body, 50) + "\"");
      return;
    }
    c.text_hash = h;
    std::string how;
    // A callback counts once sent and not known to have failed: the text
    // may arrive before the callback's own answer does.
    const bool via_dial = c.dial_sched != sim_clock::time_point{}
                          && !c.dial_failed && now >= c.dial_sched;
    const bool via_status = c.status_sched != sim_clock::time_point{}
                            && !c.status_failed && now >= c.status_sched;
    c.path = via_dial ? 1 : via_status ? 2 : 3;
    if (via_dial) {
      text_fast_.record(micros(now - c.dial_sched));
      if (int k = step_at(c.dial_sched); k >= 0) {
        steps_[k].textback.record(micros(now - c.dial_sched));
      }
      how = fmt("%.0f ms after the Dial callback",
                ms(micros(now - c.dial_sched)));
    } else if (via_status) {
      text_status_.record(micros(now - c.status_sched));
      how = fmt("%.0f ms after the status callback; ringback asked Twilio",
                ms(micros(now - c.status_sched)));
    } else {
      text_timer_.record(micros(now - c.start));
      how = fmt("%.1f s after the call began; ringback's fallback timer asked "
                "Twilio",
                std::chrono::duration<double>(now - c.start).count());
    }
    if (c.ph != phase::voice_failed && !c.answers) {
      text_any_start_.record(micros(now - c.start));
    }
    demo(idx, "TEXTED BACK " + c.caller + " (" + how + "): \""
                + shorten(body, 60) + "\"");
    // With --reply-after the replies wait for start_replies().
    if (c.reply && stage_ == stage::load && !c.answers
        && opt_.reply_after.count() < 0) {
      c.reply_state = 1;
      schedule(now + secs(c.reply_delay_s), ev::caller_reply, idx, c.gen);
    }
    return;
  }
  if (auto o = owner_index_.find(to); o != owner_index_.end()) {
    if (from != tenants_[o->second].number) {
      ++wrong_from_;
    }
    // The conversation layer's texts to the owner are not missed-call
    // notifications: a customer's reply relayed with its reference, a
    // closing summary, or the answer to an owner text it could not route.
    if (body.rfind("[#", 0) == 0) {
      // "[#12 +1 720-200-0000] <the customer's words>": a relay, attributed
      // to the call by the caller's number; or the closing summary.
      ++owner_relays_;
      const auto head = body.substr(0, body.find(']'));
      if (body.find("] closed after ") != std::string::npos) {
        ++summaries_;
        return;
      }
      for (const auto& number : phone_numbers_in(head)) {
        auto c_it = by_caller_.find(number);
        if (c_it == by_caller_.end()
            || calls_[c_it->second].tenant != o->second) {
          continue;
        }
        auto& c = calls_[c_it->second];
        if (c.relays < 255) {
          ++c.relays;
        }
        if (c.relays == 1 && c.replied_at != sim_clock::time_point{}) {
          relay_after_reply_.record(micros(now - c.replied_at));
        }
        ++relays_attributed_;
        if (c.relays > 1) {
          demo(c_it->second, "DUPLICATE relay to the owner");
        } else {
          demo(c_it->second, "ringback relays the reply to the owner: \""
                               + shorten(body, 60) + "\"");
        }
        return;
      }
      return;
    }
    if (body.rfind("Which customer?", 0) == 0
        || body.rfind("No conversation #", 0) == 0
        || body.rfind("Nothing to send to #", 0) == 0) {
      ++owner_relays_;
      return;
    }
    // Attribute the notification to the call by the caller's number in it,
    // however the workflow formatted it (+15551230000, (555) 123-0000).
    for (const auto& number : phone_numbers_in(body)) {
      auto c_it = by_caller_.find(number);      if (c_it == by_caller_.end()) {
        continue;
      }
      auto& c = calls_[c_it->second];
      if (c.tenant != o->second) {
        continue;
      }
      if (c.texts_owner < 255) {
        ++c.texts_owner;
      }
      if (c.texts_owner == 1) {
        if (c.dial_sched != sim_clock::time_point{} && !c.dial_failed
            && now >= c.dial_sched) {
          owner_fast_.record(micros(now - c.dial_sched));
        }
        demo(c_it->second, "the owner is told: \"" + shorten(body, 70) + "\"");
        if (c.owner_reply && stage_ == stage::load) {
          schedule(now + secs(c.owner_reply_delay_s), ev::owner_reply,
                   c_it->second, c.gen);
        }
      } else {
        demo(c_it->second, "DUPLICATE owner notification");
      }
      return;
    }
    ++unattributed_owner_;
    return;
  }
  ++unknown_recipient_;
}

// -- phases
// ---------------------------------------------------------------------

std::optional<std::string> simulator::setup() {
  auto rest_addr = split_host_port(opt_.rest_listen);
  rest_ = std::make_unique<mini_server>(
    io_, [this](const server_request& q, server_response& s,
                std::chrono::milliseconds& delay) { serve_rest(q, s, delay); });
  if (auto err = rest_->start(rest_addr->first, rest_addr->second)) {
    return "REST server: " + *err;
  }
  auto target = split_host_port(opt_.target);
  boost::system::error_code ec;
  auto address = asio::ip::make_address(target->first, ec);
  if (ec) {
    return "--target: '" + target->first + "' is not an IP address";
  }
  pool_ = std::make_unique<client_pool>(
    io_, asio::ip::tcp::endpoint{address, target->second}, opt_.target,
    static_cast<std::size_t>(opt_.connections),
    duration_cast<milliseconds>(opt_.timeout));
  if (!opt_.ringback_bin.empty()) {
    // The REST API must answer before ringback starts (it resumes calls).
    std::thread io_thread{[this] {
      auto guard = asio::make_work_guard(io_);
      io_.run_for(std::chrono::seconds{130});
    }};
    supervisor_ = std::make_unique<supervisor>(opt_.ringback_bin,
                                               opt_.ringback_config,
                                               opt_.ringback_log, target->first,
                                               target->second);
    auto err = supervisor_->start();
    io_.stop();
    io_thread.join();
    io_.restart();
    if (err) {
      return *err;
    }
  }
  return std::nullopt;
}

void simulator::begin_load() {
  t0_ = sim_clock::now();
  double window = opt_.steps.empty()
                    ? opt_.duration.count()
                    : opt_.step_duration.count() * opt_.steps.size();
  arrivals_end_ = t0_ + secs(window);
  rate_ = opt_.rate;
  if (opt_.target_concurrency > 0) {
    double ring = (opt_.ring.min + opt_.ring.max) / 2;
    double talk = (opt_.talk.min + opt_.talk.max) / 2;
    double life = opt_.answer_p * (ring + talk)
                  + (1 - opt_.answer_p) * (1 - opt_.busy_share) * ring
                  + (1 - opt_.answer_p) * opt_.busy_share * 1.25 + 0.2;
    rate_ = opt_.target_concurrency / life;
  }
  double max_run = opt_.max_run.count();
  if (max_run <= 0) {
    max_run = window + opt_.ring.max + opt_.talk.max + opt_.reply_delay.max
              + 2 * opt_.timeout.count() + opt_.drain.count()
              + opt_.quiet.count() + 60 + 130.0 * opt_.kill_at.size()
              + std::max(0.0, opt_.hangup_after.count()) * 2
              + (opt_.reply_after.count() >= 0
                   ? opt_.reply_after.count() + opt_.drain.count()
                   : 0);
  }
  hard_end_ = t0_ + secs(max_run);
  if (!opt_.steps.empty()) {
    steps_.resize(opt_.steps.size());
    for (std::size_t i = 0; i < steps_.size(); ++i) {
      steps_[i].rate = opt_.steps[i];
      steps_[i].begin = t0_ + secs(opt_.step_duration.count() * i);
      steps_[i].end = steps_[i].begin + secs(opt_.step_duration.count());
    }
  }
  std::size_t expect = static_cast<std::size_t>(
    (opt_.steps.empty()
       ? rate_ * window
       : *std::max_element(opt_.steps.begin(), opt_.steps.end()) * window)
    + 16);
  if (opt_.max_calls > 0) {
    expect = std::min<std::size_t>(expect, opt_.max_calls);
  }
  calls_.reserve(std::min<std::size_t>(expect, 20'000'000));
  by_sid_.reserve(calls_.capacity());
  by_caller_.reserve(calls_.capacity());
  arrivals_open_ = true;
  if (!opt_.demo) { // the demo tells its own story on stdout
    std::fprintf(
      stderr,
      "ringback_sim: %s: load starts: %s for %.0f s, ringback pid %d, "
      "REST API on port %u\n",
      opt_.label.c_str(),
      opt_.steps.empty() ? fmt("%.2f calls/s", rate_).c_str()
                         : fmt("%zu steps of %.0f s", opt_.steps.size(),
                               opt_.step_duration.count())
                             .c_str(),
      window, supervisor_ ? supervisor_->pid() : opt_.pid, rest_->port());
  }
  schedule(t0_, ev::arrival, 0);
}

void simulator::stop_arrivals(const std::string& why) {
  if (!arrivals_open_) {
    return;
  }
  arrivals_open_ = false;
  arrivals_stop_reason_ = why;
  arrivals_end_ = std::min(arrivals_end_, sim_clock::now());
  for (auto& st : steps_) {
    auto b = st.begin, e = std::min(st.end, arrivals_end_);
    st.seconds = e > b ? std::chrono::duration<double>(e - b).count() : 0;
  }
  if (opt_.progress || !opt_.steps.empty()) {
    std::fprintf(stderr, "ringback_sim: %.1fs: arrivals stop: %s (%zu calls)\n",
                 now_s(), why.c_str(), calls_.size());
  }
}

void simulator::tick() {
  const auto now = sim_clock::now();
  if (now >= hard_end_ && stage_ != stage::done) {
    aborted_ = true;
    abort_reason_ = "the run passed --max-run";
    stop_arrivals(abort_reason_);
    stage_ = stage::done;
  }
  // kill -9 and restart on schedule
  if (supervisor_ && next_kill_ < opt_.kill_at.size()
      && now >= t0_ + secs(opt_.kill_at[next_kill_])) {
    double at = now_s();
    ++next_kill_;
    std::fprintf(stderr, "ringback_sim: %.1fs: kill -9 ringback (pid %d)\n", at,
                 supervisor_->pid());
    supervisor_->kill_and_restart(
      duration_cast<milliseconds>(opt_.restart_delay),
      [this, at](double down_ms, bool ok) {
        asio::post(io_, [this, at, down_ms, ok] {
          if (ok) {
            restarts_.emplace_back(at, down_ms);
          } else {
            ++failed_restarts_;
          }
          std::fprintf(stderr,
                       "ringback_sim: %.1fs: ringback %s after %.0f ms "
                       "(pid %d)\n",
                       now_s(), ok ? "ready again" : "FAILED to restart",
                       down_ms, supervisor_->pid());
        });
      });
  }
  // knee: judge each step once its requests are in
  for (auto& s : steps_) {
    if (s.evaluated || now < s.end) {
      continue;
    }
    bool settled = s.outstanding == 0 && now >= s.end + milliseconds{500};
    if (!settled && now < s.end + secs(opt_.timeout.count() + 1)) {
      break;
    }
    s.evaluated = true;
    if (knee_failed_) {
      // Begun while an earlier step was being judged and cut short by its
      // failure: says nothing about the rate it was meant to hold.
      s.verdict = "after the knee";
      continue;
    }
    const auto total = s.completed + s.outstanding;
    const auto wanted = static_cast<std::uint64_t>(std::ceil(0.99 * total));
    s.p99_us = wanted == 0 ? 0
               : wanted > s.completed
                 ? UINT64_MAX
                 : s.latency.percentile(100.0 * wanted / s.completed);
    if (s.scheduled == 0) {
      s.verdict = "not run";
      break;
    }
    const bool slow = s.p99_us
                      > static_cast<std::uint64_t>(opt_.knee_p99_ms * 1000);
    s.held = !slow && s.errors == 0 && s.outstanding == 0;
    s.verdict = s.held         ? "held"
                : s.errors > 0 ? fmt("errors (%" PRIu64 ")", s.errors)
                : slow         ? fmt("p99 over %.0f ms", opt_.knee_p99_ms)
                               : "requests unanswered";
    std::fprintf(stderr,
                 "ringback_sim: step %.0f calls/s: %" PRIu64
                 " webhooks, p99 %s, errors %" PRIu64 ": %s\n",
                 s.rate, s.completed,
                 s.p99_us == UINT64_MAX ? "n/a"
                                        : fmt("%.2f ms", ms(s.p99_us)).c_str(),
                 s.errors, s.verdict.c_str());
    if (!s.held) {
      knee_failed_ = true;
      stop_arrivals("knee: the " + fmt("%.0f", s.rate)
                    + " calls/s step did not hold (" + s.verdict + ")");
    }
  }
  // the end of the run
  switch (stage_) {
    case stage::load:
      // Every kill scheduled and every restart back (or failed) first.
      if (!arrivals_open_ && in_flight_ == 0
          && next_kill_ >= opt_.kill_at.size()
          && restarts_.size() + failed_restarts_ >= next_kill_
          && (opt_.reply_after.count() < 0 || replies_started_)) {
        stage_ = stage::drain;
        drain_start_ = now;
        if (opt_.progress) {
          std::fprintf(stderr,
                       "ringback_sim: %.1fs: every call ended; draining\n",
                       now_s());
        }
      } else if (!arrivals_open_ && opt_.hangup_after.count() >= 0
                 && !hangup_done_
                 && now >= arrivals_end_ + secs(opt_.hangup_after.count())) {
        hang_up_all();
      } else if (!arrivals_open_ && opt_.reply_after.count() >= 0
                 && !replies_started_ && in_flight_ == 0
                 && now >= arrivals_end_ + secs(opt_.reply_after.count())
                 && (texts_complete()
                     || now >= arrivals_end_
                                 + secs(opt_.reply_after.count()
                                        + opt_.drain.count()))) {
        start_replies();
      }
      break;
    case stage::drain:
      if ((outstanding_ == 0 && (!opt_.verify || texts_complete()))
          || now >= drain_start_ + secs(opt_.drain.count())) {
        stage_ = stage::quiet;
        quiet_start_ = now;
      }
      break;
    case stage::quiet:
      if (now >= quiet_start_ + secs(opt_.quiet.count()) && outstanding_ == 0) {
        stage_ = stage::done;
      } else if (now
                 >= quiet_start_
                      + secs(opt_.quiet.count() + opt_.timeout.count() + 1)) {
        stage_ = stage::done;
      }
      break;
    case stage::done:
      break;
  }
  if (stage_ == stage::done) {
    finish();
    return;
  }
  ticker_.expires_after(milliseconds{200});
  ticker_.async_wait([this](boost::system::error_code ec) {
    if (!ec) {
      tick();
    }
  });
}

void simulator::sample_processes() {
  const auto now = sim_clock::now();
  sample s;
  s.t = elapsed(now);
  s.in_flight = in_flight_;
  s.ringing = ringing_;
  s.conv_actors = opt_.poll_metrics ? conv_actors_.load() : -1;
  const double dt
    = std::chrono::duration<double>(now - prev_sample_at_).count();
  pid_t pid = supervisor_ ? supervisor_->pid() : opt_.pid;
  if (pid > 0) {
    auto r = read_proc(pid);
    if (r.ok) {
      s.ok = true;
      s.rss_kib = r.rss_kib;
      if (pid == prev_pid_ && dt > 0) {
        s.cpu_pct = 100.0 * static_cast<double>(r.cpu_ticks - prev_ticks_)
                    / ticks_per_second() / dt;
      }
      prev_ticks_ = r.cpu_ticks;
      prev_pid_ = pid;
      if (opt_.max_rss_mib > 0 && arrivals_open_
          && static_cast<double>(r.rss_kib) / 1024.0 > opt_.max_rss_mib) {
        stop_arrivals(fmt("ringback's RSS passed %.0f MiB", opt_.max_rss_mib));
      }
    }
  }
  auto self = read_proc(0);
  if (self.ok && dt > 0) {
    s.sim_cpu_pct = 100.0
                    * static_cast<double>(self.cpu_ticks - prev_self_ticks_)
                    / ticks_per_second() / dt;
    prev_self_ticks_ = self.cpu_ticks;
  }
  auto machine = read_machine();
  if (machine.ok && prev_machine_.ok && machine.total > prev_machine_.total) {
    // busy share of all CPUs, scaled to "% of one core" like the others
    s.machine_pct = 100.0
                    * static_cast<double>(machine.busy - prev_machine_.busy)
                    / ticks_per_second() / dt;
  }
  prev_machine_ = machine;
  prev_sample_at_ = now;
  samples_.push_back(s);
  if (opt_.progress) {
    std::fprintf(
      stderr,
      "t=%5.0fs calls=%zu in-flight=%" PRIu64 " ringing=%" PRIu64
      " req/s=%" PRIu64 " p99=%.1fms err=%" PRIu64 " texts=%" PRIu64
      " conns=%zu rss=%.1fMiB cpu=%.0f%% sim-cpu=%.0f%% others=%.0f%%\n",
      s.t, calls_.size(), in_flight_, ringing_, second_count_,
      ms(second_.percentile(99)), second_errors_, messages_, pool_->open(),
      s.rss_kib / 1024.0, s.cpu_pct, s.sim_cpu_pct,
      std::max(0.0, s.machine_pct - s.cpu_pct - s.sim_cpu_pct));
    if (opt_.poll_metrics) {
      std::fprintf(stderr,
                   "        conversation-actors=%lld relays=%" PRIu64
                   " answers=%" PRIu64 "\n",
                   static_cast<long long>(s.conv_actors), relays_attributed_,
                   ai_after_reply_.count());
    }
  }
  second_.reset();
  second_count_ = 0;
  second_errors_ = 0;
  sampler_.expires_at(now + std::chrono::seconds{1});
  sampler_.async_wait([this](boost::system::error_code ec) {
    if (!ec) {
      sample_processes();
    }
  });
}

bool simulator::texts_complete() const {
  for (const auto& c : calls_) {
    // A reply not yet answered, or answered but not yet relayed (nor, with
    // --expect-ai, answered by the AI).
    if (c.reply_state == 1 || c.reply_state == 2
        || (c.reply_state == 3
            && (c.relays == 0 || (opt_.expect_ai && c.conv_texts == 0)))) {
      return false;
    }
    if (c.ph == phase::voice_failed || c.answers) {
      continue;
    }
    if (c.texts_caller == 0 || c.texts_owner == 0) {
      return false;
    }
  }
  return true;
}

void simulator::finish() {
  timer_.cancel();
  sampler_.cancel();
  ticker_.cancel();
  signals_.cancel();
  rest_->stop();
  pool_->close_idle();
  io_.stop();
}

int simulator::run() {
  if (auto err = setup()) {
    std::fprintf(stderr, "ringback_sim: %s\n", err->c_str());
    if (supervisor_) {
      supervisor_->stop();
    }
    return 2;
  }
  pid_t pid = supervisor_ ? supervisor_->pid() : opt_.pid;
  if (pid > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds{500});
    auto r = read_proc(pid);
    if (!r.ok) {
      std::fprintf(stderr, "ringback_sim: cannot read /proc/%d\n", pid);
      return 2;
    }
    baseline_rss_kib_ = r.rss_kib;
    prev_ticks_ = r.cpu_ticks;
    prev_pid_ = pid;
  }
  prev_self_ticks_ = read_proc(0).cpu_ticks;
  prev_machine_ = read_machine();
  signals_.async_wait([this](boost::system::error_code ec, int sig) {
    if (ec) {
      return;
    }
    std::fprintf(stderr, "ringback_sim: signal %d: stopping early\n", sig);
    aborted_ = true;
    abort_reason_ = "interrupted";
    stop_arrivals("interrupted");
    stage_ = stage::done;
  });
  if (opt_.poll_metrics) {
    metrics_thread_ = std::thread{[this] { poll_metrics_loop(); }};
  }
  begin_load();
  prev_sample_at_ = t0_;
  sampler_.expires_at(t0_ + std::chrono::seconds{1});
  sampler_.async_wait([this](boost::system::error_code ec) {
    if (!ec) {
      sample_processes();
    }
  });
  ticker_.expires_after(milliseconds{200});
  ticker_.async_wait([this](boost::system::error_code ec) {
    if (!ec) {
      tick();
    }
  });
  io_.run();
  metrics_stop_ = true;
  if (metrics_thread_.joinable()) {
    metrics_thread_.join();
  }
  return verify_and_report();
}

void simulator::poll_metrics_loop() {
  const auto target = split_host_port(opt_.target);
  while (!metrics_stop_) {
    auto [status, body] = http_get(target->first, target->second, "/metrics",
                                   std::chrono::seconds{2});
    if (status == 200) {
      // No series yet: no conversation actor was ever started.
      conv_actors_ = std::llround(
        metric_sum(body, "ringback_conversation_actors").value_or(0));
    } else {
      conv_actors_ = -1;
    }
    for (int i = 0; i < 10 && !metrics_stop_; ++i) {
      std::this_thread::sleep_for(milliseconds{100});
    }
  }
}

void simulator::start_replies() {
  replies_started_ = true;
  replies_at_ = sim_clock::now();
  if (pid_t pid = supervisor_ ? supervisor_->pid() : opt_.pid; pid > 0) {
    reply_baseline_rss_kib_ = read_proc(pid).rss_kib;
  }
  const double pace = opt_.reply_rate > 0 ? opt_.reply_rate
                                          : std::max(rate_, 1.0);
  std::uint64_t k = 0;
  for (std::uint32_t i = 0; i < calls_.size(); ++i) {
    auto& c = calls_[i];
    if (!c.reply || c.answers || c.texts_caller == 0 || c.reply_state != 0) {
      continue;
    }
    c.reply_state = 1;
    schedule(replies_at_ + secs(static_cast<double>(k++) / pace),
             ev::caller_reply, i, c.gen);
  }
  replies_scheduled_ = k;
  std::fprintf(stderr,
               "ringback_sim: %.1fs: %" PRIu64 " callers reply at %.0f/s "
               "(ringback RSS %.1f MiB, conversation actors %lld)\n",
               now_s(), k, pace, reply_baseline_rss_kib_ / 1024.0,
               static_cast<long long>(conv_actors_.load()));
}

// -- the report
// -------------------------------------------------------------------

int simulator::verify_and_report() {
  const auto end = sim_clock::now();
  std::string stop_status;
  std::vector<std::string> crashes;
  std::uint64_t end_rss = 0;
  if (pid_t pid = supervisor_ ? supervisor_->pid() : opt_.pid; pid > 0) {
    end_rss = read_proc(pid).rss_kib;
  }
  // The conversation actors left once everything settled (before the stop).
  std::int64_t end_conv_actors = -1;
  if (opt_.poll_metrics) {
    const auto target = split_host_port(opt_.target);
    auto [status, body] = http_get(target->first, target->second, "/metrics",
                                   std::chrono::seconds{2});
    if (status == 200) {
      end_conv_actors = std::llround(
        metric_sum(body, "ringback_conversation_actors").value_or(0));
    }
  }
  if (supervisor_) {
    crashes = supervisor_->unexpected_exits();
    stop_status = supervisor_->stop();
  }

  // correctness
  std::uint64_t missed = 0, answered = 0, indeterminate = 0, busy = 0;
  std::uint64_t lost_caller = 0, lost_owner = 0, dup_caller = 0, dup_owner = 0;
  std::uint64_t answered_texted = 0, indeterminate_texted = 0,
                indeterminate_dup = 0, unfinished = 0, conv = 0;
  std::uint64_t via_fast = 0, via_status = 0, via_timer = 0, fetched = 0;
  std::uint64_t dropped_dial = 0, dropped_both = 0;
  std::uint64_t indeterminate_refused = 0;
  // the callers' replies: relayed to the owner exactly once, answered
  std::uint64_t replies_ok = 0, replies_failed = 0, lost_relay = 0,
                dup_relay = 0, answered_replies = 0, missing_answer = 0,
                several_answers = 0;
  for (const auto& c : calls_) {
    if (c.reply_state == 3) {
      ++replies_ok;
      if (c.relays == 0) {
        ++lost_relay;
      } else {
        dup_relay += c.relays - 1;
      }
      if (c.conv_texts > 0) {
        ++answered_replies;
      } else if (opt_.expect_ai) {
        ++missing_answer;
      }
      if (c.conv_texts > 1) {
        ++several_answers;
      }
    } else if (c.reply_state == 4) {
      ++replies_failed;
    }
  }
  for (const auto& c : calls_) {
    conv += c.conv_texts;
    if (c.fetched) {
      ++fetched;
    }
    if (c.ph == phase::voice_pending || c.ph == phase::dialing) {
      ++unfinished;
      continue;
    }
    if (c.ph == phase::voice_failed) {
      ++indeterminate;
      if (c.voice_refused) {
        ++indeterminate_refused;
      }
      if (c.texts_caller > 0) {
        ++indeterminate_texted;
      }
      if (c.texts_caller > 1) {
        indeterminate_dup += c.texts_caller - 1;
      }
      if (c.texts_owner > 1) {
        indeterminate_dup += c.texts_owner - 1;
      }
      continue;
    }
    if (c.answers) {
      ++answered;
      if (c.texts_caller > 0 || c.texts_owner > 0) {
        ++answered_texted;
      }
      continue;
    }
    ++missed;
    if (c.busy) {
      ++busy;
    }
    if (c.drop_dial) {
      ++dropped_dial;
      if (c.drop_status) {
        ++dropped_both;
      }
    }
    if (c.texts_caller == 0) {
      ++lost_caller;
    } else {
      dup_caller += c.texts_caller - 1;
    }
    if (c.texts_owner == 0) {
      ++lost_owner;
    } else {
      dup_owner += c.texts_owner - 1;
    }
    if (c.path == 1) {
      ++via_fast;
    } else if (c.path == 2) {
      ++via_status;
    } else if (c.path == 3) {
      ++via_timer;
    }
  }
  const std::uint64_t violations
    = opt_.verify
        ? lost_caller + lost_owner + dup_caller + dup_owner + answered_texted
            + indeterminate_dup + unknown_recipient_ + unattributed_owner_
            + wrong_from_ + lost_relay + dup_relay + missing_answer
        : 0;

  // process figures
  const double arrival_window = elapsed(arrivals_end_);
  double cpu_sum = 0, cpu_max = 0, steady_sum = 0, sim_sum = 0,
         inflight_steady = 0, others_sum = 0, others_max = 0;
  int cpu_n = 0, steady_n = 0;
  std::uint64_t peak_rss = baseline_rss_kib_;
  const sample* peak = nullptr;
  for (const auto& s : samples_) {
    if (!s.ok) {
      continue;
    }
    peak_rss = std::max(peak_rss, s.rss_kib);
    if (!peak || s.in_flight > peak->in_flight
        || (s.in_flight == peak->in_flight && s.rss_kib > peak->rss_kib)) {
      peak = &s;
    }
    if (s.t <= arrival_window + 0.5) {
      cpu_sum += s.cpu_pct;
      sim_sum += s.sim_cpu_pct;
      const double others = std::max(0.0,
                                     s.machine_pct - s.cpu_pct - s.sim_cpu_pct);
      others_sum += others;
      others_max = std::max(others_max, others);
      cpu_max = std::max(cpu_max, s.cpu_pct);
      ++cpu_n;
      if (s.t >= arrival_window / 2) {
        steady_sum += s.cpu_pct;
        inflight_steady += static_cast<double>(s.in_flight);
        ++steady_n;
      }
    }
  }
  const double cpu_mean = cpu_n ? cpu_sum / cpu_n : 0;
  const double cpu_steady = steady_n ? steady_sum / steady_n : 0;
  const double sim_cpu = cpu_n ? sim_sum / cpu_n : 0;
  const double others_cpu = cpu_n ? others_sum / cpu_n : 0;
  const double inflight_mean = steady_n ? inflight_steady / steady_n : 0;
  double bytes_per_call = 0, bytes_per_ringing = 0;
  if (peak && peak->in_flight > 0 && peak->rss_kib > baseline_rss_kib_) {
    bytes_per_call = 1024.0
                     * static_cast<double>(peak->rss_kib - baseline_rss_kib_)
                     / static_cast<double>(peak->in_flight);
  }
  if (peak && peak->ringing > 0 && peak->rss_kib > baseline_rss_kib_) {
    bytes_per_ringing = 1024.0
                        * static_cast<double>(peak->rss_kib - baseline_rss_kib_)
                        / static_cast<double>(peak->ringing);
  }
  // Conversation actors (--poll-metrics): the peak and its RSS over the
  // RSS when the replies began (the same calls, no conversation active);
  // then the last sample before the first answer to a reply (the AI's, at
  // the end of the owner-reply window), when the first ones are passivated.
  const sample* conv_peak = nullptr;
  const sample* before_ai = nullptr;
  const double first_ai_t
    = first_ai_at_ == sim_clock::time_point{} ? -1 : elapsed(first_ai_at_);
  for (const auto& s : samples_) {
    if (!s.ok || s.conv_actors < 0) {
      continue;
    }
    if (first_ai_t < 0 || s.t < first_ai_t) {
      if (!conv_peak || s.conv_actors > conv_peak->conv_actors) {
        conv_peak = &s;
      }
      before_ai = &s;
    }
  }
  std::int64_t conv_peak_after_ai = -1;
  for (const auto& s : samples_) {
    if (s.ok && first_ai_t >= 0 && s.t >= first_ai_t) {
      conv_peak_after_ai = std::max(conv_peak_after_ai, s.conv_actors);
    }
  }
  double bytes_per_conversation = 0;
  if (conv_peak && conv_peak->conv_actors > 0 && reply_baseline_rss_kib_ > 0) {
    bytes_per_conversation = 1024.0
                             * (static_cast<double>(conv_peak->rss_kib)
                                - static_cast<double>(reply_baseline_rss_kib_))
                             / static_cast<double>(conv_peak->conv_actors);
  }
  std::uint64_t sent_total = 0, ok_total = 0, err_total = 0;
  for (int k = 0; k < hook_count; ++k) {
    sent_total += sent_[k];
    ok_total += ok_[k];
  }
  for (const auto& [k, v] : errors_) {
    err_total += v;
  }
  histogram all;
  for (const auto& h : latency_) {
    all.merge(h);
  }
  const double load_s = std::max(arrival_window, 1e-9);

  // human summary
  std::string out;
  out += fmt("\n== ringback_sim: %s ==\n", opt_.label.c_str());
  if (opt_.steps.empty()) {
    out += fmt(
      "arrivals: %.2f calls/s for %.1f s (%s, %s), %zu calls; run %.1f s\n",
      rate_, arrival_window, opt_.poisson ? "Poisson" : "constant gaps",
      arrivals_stop_reason_.c_str(), calls_.size(), elapsed(end));
  } else {
    out += fmt("arrivals: %zu steps of %.0f s, %zu calls (%s); run %.1f s\n",
               opt_.steps.size(), opt_.step_duration.count(), calls_.size(),
               arrivals_stop_reason_.c_str(), elapsed(end));
  }
  if (aborted_) {
    out += "ABORTED: " + abort_reason_ + "\n";
  }
  out += fmt("calls: %" PRIu64 " missed (%" PRIu64 " busy), %" PRIu64
             " answered, %" PRIu64
             " indeterminate (no usable voice answer), %" PRIu64
             " unfinished\n",
             missed, busy, answered, indeterminate, unfinished);
  out += fmt("concurrency: peak %" PRIu64
             " in flight (mean %.0f over the 2nd half), "
             "peak %" PRIu64 " ringing\n",
             peak_in_flight_, inflight_mean, peak_ringing_);
  out += fmt("webhooks: %" PRIu64 " sent, %" PRIu64
             " answered 2xx, %.1f/s over the "
             "arrival window; pool: %zu connections at most, %" PRIu64
             " connects\n",
             sent_total, ok_total, static_cast<double>(sent_total) / load_s,
             pool_->peak_open(), pool_->connects());
  out += "errors:";
  if (errors_.empty()) {
    out += " none";
  }
  for (const auto& [k, v] : errors_) {
    out += fmt(" %s=%" PRIu64, k.c_str(), v);
  }
  for (const auto& [k, v] : twiml_problems_) {
    out += fmt(" twiml(%s)=%" PRIu64, k.c_str(), v);
  }
  out += "\n";
  out += fmt("latency, ms from the scheduled send   %8s %8s %8s %8s %8s %9s\n",
             "count", "p50", "p90", "p99", "p99.9", "max");
  for (int k = 0; k < hook_count; ++k) {
    out += hist_row(to_string(static_cast<hook>(k)), latency_[k]);
  }
  out += hist_row("all webhooks", all);
  histogram lag;
  for (const auto& h : send_lag_) {
    lag.merge(h);
  }
  out += hist_row("(send lag: scheduled -> write)", lag);
  out += "text-back (first text to the caller), ms\n";
  out += hist_row("fast path: from the Dial callback", text_fast_);
  out += hist_row("owner told: from the Dial callback", owner_fast_);
  out += hist_row("via status cb: from the status cb", text_status_);
  out += hist_row("via timer: from the call's start", text_timer_);
  out += hist_row("any missed call: from its start", text_any_start_);
  out
    += fmt("REST: %" PRIu64 " texts accepted (%" PRIu64
           " answered 503 on purpose), "
           "%" PRIu64 " message look-ups, %" PRIu64 " call fetches for %" PRIu64
           " calls, %" PRIu64 " child listings, %" PRIu64
           " unauthorized, %" PRIu64 " not found\n",
           messages_, messages_injected_fail_, message_lookups_, call_fetches_,
           fetched, child_lists_, rest_unauthorized_, rest_not_found_);
  if (supervisor_ || opt_.pid > 0) {
    out += fmt(
      "ringback: RSS %.1f MiB before, %.1f MiB peak, %.1f MiB at the end; "
      "CPU %.1f %% of a core on average, %.1f %% in the 2nd half, %.0f %% "
      "max (1 s)\n",
      baseline_rss_kib_ / 1024.0, peak_rss / 1024.0, end_rss / 1024.0, cpu_mean,
      cpu_steady, cpu_max);
    if (peak) {
      out += fmt("memory per live call: %.0f B per call in flight, %.0f B per "
                 "ringing call (RSS %.1f MiB at %" PRIu64 " in flight, %" PRIu64
                 " ringing, t=%.0fs)\n",
                 bytes_per_call, bytes_per_ringing, peak->rss_kib / 1024.0,
                 peak->in_flight, peak->ringing, peak->t);
    }
  }
  out += fmt("simulator: CPU %.1f %% of a core on average; other processes on "
             "the machine: %.1f %% on average, %.0f %% max (of %ld cores)\n",
             sim_cpu, others_cpu, others_max, sysconf(_SC_NPROCESSORS_ONLN));
  if (replies_ok + replies_failed > 0 || opt_.poll_metrics) {
    out += fmt("replies: %" PRIu64 " callers replied (%" PRIu64
               " answered 2xx, %" PRIu64 " failed: not expected to reach "
               "the owner); relayed to the owner: %" PRIu64 " (never %" PRIu64
               ", duplicates %" PRIu64 "); answered (AI or owner): %" PRIu64
               "%s; closing "
               "summaries %" PRIu64 "\n",
               replies_ok + replies_failed, replies_ok, replies_failed,
               replies_ok - lost_relay, lost_relay, dup_relay, answered_replies,
               several_answers
                 ? fmt(" (%" PRIu64 " more than once)", several_answers).c_str()
                 : "",
               summaries_);
    out += hist_row("relay to the owner: from the reply", relay_after_reply_);
    out += hist_row("first answer: from the reply", ai_after_reply_);
  }
  if (opt_.poll_metrics) {
    auto rss = [](const sample* x) { return x ? x->rss_kib / 1024.0 : 0.0; };
    out += fmt("conversation actors: peak %lld at t=%.0fs (RSS %.1f MiB; "
               "%.1f MiB when the replies began: %.0f B per active "
               "conversation)\n",
               conv_peak ? static_cast<long long>(conv_peak->conv_actors)
                         : -1LL,
               conv_peak ? conv_peak->t : 0.0, rss(conv_peak),
               reply_baseline_rss_kib_ / 1024.0, bytes_per_conversation);
    out += fmt("  before the first AI answer (t=%.0fs): %lld actors, RSS %.1f "
               "MiB; after it: peak %lld; at the end: %lld actors, RSS %.1f "
               "MiB\n",
               before_ai ? before_ai->t : 0.0,
               before_ai ? static_cast<long long>(before_ai->conv_actors)
                         : -1LL,
               rss(before_ai), static_cast<long long>(conv_peak_after_ai),
               static_cast<long long>(end_conv_actors), end_rss / 1024.0);
  }
  if (!restarts_.empty() || failed_restarts_ > 0) {
    out += "restarts:";
    for (const auto& [t, d] : restarts_) {
      out += fmt(" at %.1fs (down %.0f ms)", t, d);
    }
    if (failed_restarts_) {
      out += fmt(" FAILED=%" PRIu64, failed_restarts_);
    }
    out += "\n";
  }
  if (!restarts_.empty()) {
    out += fmt("  calls whose voice webhook got no answer (ringback down): "
               "%" PRIu64 " (ended indeterminate: neither texted nor counted "
               "as lost)\n",
               indeterminate_refused);
  }
  for (const auto& c : crashes) {
    out += "ringback exited unexpectedly: " + c + "\n";
  }
  if (!steps_.empty()) {
    out
      += "knee steps: calls/s  webhooks/s      p50      p99      max  errors  "
         " cpu%  other%  text p99  verdict\n"
         "  (ms; cpu%: ringback, other%: the rest of the machine but the "
         "simulator; text p99: fast-path text-back)\n";
    for (const auto& s : steps_) {
      // Steps the stop cut short before they were judged say nothing.
      if (s.scheduled == 0
          || (!s.evaluated && s.seconds < opt_.step_duration.count() / 2)) {
        continue;
      }
      double cpu = 0, others = 0;
      int n = 0;
      for (const auto& smp : samples_) {
        double a = elapsed(s.begin), b = elapsed(s.end);
        if (smp.ok && smp.t > a + 1 && smp.t <= b) {
          cpu += smp.cpu_pct;
          others += std::max(0.0,
                             smp.machine_pct - smp.cpu_pct - smp.sim_cpu_pct);
          ++n;
        }
      }
      const_cast<step_stats&>(s).cpu_pct = n ? cpu / n : 0;
      const_cast<step_stats&>(s).others_pct = n ? others / n : 0;
      const bool partial = s.seconds < 0.98 * opt_.step_duration.count();
      out += fmt(
        "          %7.0f  %10.0f %8.2f %8s %8.2f  %6" PRIu64
        " %5.0f %7.0f %9.2f  %s%s\n",
        s.rate, static_cast<double>(s.completed) / std::max(s.seconds, 1e-3),
        ms(s.latency.percentile(50)),
        s.p99_us == UINT64_MAX || s.verdict == "after the knee"
          ? "n/a"
          : fmt("%.2f", ms(s.p99_us)).c_str(),
        ms(s.latency.max()), s.errors, s.cpu_pct, s.others_pct,
        ms(s.textback.percentile(99)),
        s.evaluated ? s.verdict.c_str() : "not judged",
        partial ? fmt(" (cut short after %.1f s)", s.seconds).c_str() : "");
    }
  }
  // The knee: the last step held before the first one that did not.
  const step_stats* best = nullptr;
  for (const auto& s : steps_) {
    if (!s.held) {
      break;
    }
    best = &s;
  }
  if (!steps_.empty()) {
    out += best ? fmt("knee: highest step held %.0f calls/s = %.0f webhooks/s "
                      "(p99 %.2f ms)\n",
                      best->rate,
                      static_cast<double>(best->completed)
                        / std::max(best->seconds, 1e-3),
                      ms(best->p99_us))
                : "knee: no step held\n";
  }
  if (opt_.verify) {
    if (violations == 0) {
      out
        += fmt("correctness: OK: %" PRIu64 " missed calls texted back exactly "
               "once (caller and owner; %" PRIu64
               " via the Dial callback, %" PRIu64
               " via the status callback + REST, %" PRIu64 " via the fallback "
               "timer), no answered call texted, no duplicates; %" PRIu64
               " replies relayed to the owner exactly once%s\n",
               missed, via_fast, via_status, via_timer, replies_ok,
               opt_.expect_ai ? " and answered" : "");
    } else {
      out += fmt("correctness: %" PRIu64
                 " VIOLATIONS: lost texts to callers %" PRIu64
                 ", to owners %" PRIu64 "; duplicates to callers %" PRIu64
                 ", to owners %" PRIu64 "; answered calls texted %" PRIu64
                 "; duplicates on indeterminate calls %" PRIu64
                 "; texts to unknown numbers %" PRIu64
                 ", unattributed owner texts %" PRIu64 ", wrong From %" PRIu64
                 "; replies never relayed %" PRIu64 ", relayed twice %" PRIu64
                 ", never answered %" PRIu64 "\n",
                 violations, lost_caller, lost_owner, dup_caller, dup_owner,
                 answered_texted, indeterminate_dup, unknown_recipient_,
                 unattributed_owner_, wrong_from_, lost_relay, dup_relay,
                 missing_answer);
    }
    out += fmt("  (missed calls whose Dial callback was dropped: %" PRIu64
               ", of which the status callback too: %" PRIu64
               "; indeterminate calls texted: %" PRIu64
               "; conversation replies: %" PRIu64
               "; relayed to owners: %" PRIu64 ")\n",
               dropped_dial, dropped_both, indeterminate_texted, conv,
               owner_relays_);
  } else {
    out += "correctness: not checked (--no-verify)\n";
  }
  if (supervisor_) {
    out += "ringback stop: " + stop_status + "\n";
  }
  std::fputs(out.c_str(), stdout);

  // the JSON line
  json::object hooks;
  for (int k = 0; k < hook_count; ++k) {
    auto h = hist_json(latency_[k]);
    h["sent"] = sent_[k];
    h["ok"] = ok_[k];
    hooks[to_string(static_cast<hook>(k))] = std::move(h);
  }
  hooks["all"] = hist_json(all);
  json::object errs;
  for (const auto& [k, v] : errors_) {
    errs[k] = v;
  }
  for (const auto& [k, v] : twiml_problems_) {
    errs["twiml:" + k] = v;
  }
  json::array steps;
  for (const auto& s : steps_) {
    if (s.scheduled == 0
        || (!s.evaluated && s.seconds < opt_.step_duration.count() / 2)) {
      continue;
    }
    steps.push_back(json::object{
      {"calls_per_s", s.rate},
      {"webhooks_per_s",
       static_cast<double>(s.completed) / std::max(s.seconds, 1e-3)},
      {"seconds", s.seconds},
      {"textback_p99_ms", ms(s.textback.percentile(99))},
      {"p50_ms", ms(s.latency.percentile(50))},
      {"p99_ms", s.p99_us == UINT64_MAX ? json::value(nullptr)
                                        : json::value(ms(s.p99_us))},
      {"max_ms", ms(s.latency.max())},
      {"errors", s.errors},
      {"cpu_pct", s.cpu_pct},
      {"others_cpu_pct", s.others_pct},
      {"held", s.held},
      {"verdict", s.verdict}});
  }
  json::array restarts;
  for (const auto& [t, d] : restarts_) {
    restarts.push_back(json::object{{"at_s", t}, {"down_ms", d}});
  }
  json::object result{
    {"label", opt_.label},
    {"ok", violations == 0 && !aborted_},
    {"aborted", aborted_},
    {"rate_calls_per_s",
     steps_.empty() ? json::value(rate_) : json::value(nullptr)},
    {"arrival_s", arrival_window},
    {"run_s", elapsed(end)},
    {"calls", calls_.size()},
    {"missed", missed},
    {"answered", answered},
    {"indeterminate", indeterminate},
    {"indeterminate_no_answer", indeterminate_refused},
    {"unfinished", unfinished},
    {"peak_in_flight", peak_in_flight_},
    {"mean_in_flight_2nd_half", inflight_mean},
    {"peak_ringing", peak_ringing_},
    {"webhooks_sent", sent_total},
    {"webhooks_ok", ok_total},
    {"webhooks_per_s", static_cast<double>(sent_total) / load_s},
    {"errors_total", err_total},
    {"errors", std::move(errs)},
    {"latency", std::move(hooks)},
    {"textback_fast_ms", hist_json(text_fast_)},
    {"owner_fast_ms", hist_json(owner_fast_)},
    {"textback_status_ms", hist_json(text_status_)},
    {"textback_timer_ms", hist_json(text_timer_)},
    {"textback_from_start_ms", hist_json(text_any_start_)},
    {"messages", messages_},
    {"owner_relays", owner_relays_},
    {"messages_injected_503", messages_injected_fail_},
    {"message_lookups", message_lookups_},
    {"call_fetches", call_fetches_},
    {"child_listings", child_lists_},
    {"rest_unauthorized", rest_unauthorized_},
    {"rss_baseline_kib", baseline_rss_kib_},
    {"rss_peak_kib", peak_rss},
    {"rss_end_kib", end_rss},
    {"cpu_mean_pct", cpu_mean},
    {"cpu_2nd_half_pct", cpu_steady},
    {"cpu_max_pct", cpu_max},
    {"sim_cpu_mean_pct", sim_cpu},
    {"others_cpu_mean_pct", others_cpu},
    {"others_cpu_max_pct", others_max},
    {"bytes_per_call_in_flight", bytes_per_call},
    {"bytes_per_ringing_call", bytes_per_ringing},
    {"restarts", std::move(restarts)},
    {"failed_restarts", failed_restarts_},
    {"unexpected_exits", crashes.size()},
    {"steps", std::move(steps)},
    {"knee_calls_per_s", best ? json::value(best->rate) : json::value(nullptr)},
    {"knee_webhooks_per_s", best
                              ? json::value(static_cast<double>(best->completed)
                                            / std::max(best->seconds, 1e-3))
                              : json::value(nullptr)},
    {"verified", opt_.verify},
    {"violations", violations},
    {"violation_detail",
     json::object{{"lost_caller", lost_caller},
                  {"lost_owner", lost_owner},
                  {"dup_caller", dup_caller},
                  {"dup_owner", dup_owner},
                  {"answered_texted", answered_texted},
                  {"indeterminate_dup", indeterminate_dup},
                  {"unknown_recipient", unknown_recipient_},
                  {"unattributed_owner", unattributed_owner_},
                  {"wrong_from", wrong_from_},
                  {"lost_relay", lost_relay},
                  {"dup_relay", dup_relay},
                  {"missing_answer", missing_answer}}},
    {"conversations",
     json::object{
       {"replies", replies_ok + replies_failed},
       {"replies_ok", replies_ok},
       {"relayed", replies_ok - lost_relay},
       {"relay_ms", hist_json(relay_after_reply_)},
       {"answered", answered_replies},
       {"answered_more_than_once", several_answers},
       {"answer_ms", hist_json(ai_after_reply_)},
       {"summaries", summaries_},
       {"actors_peak",
        conv_peak ? json::value(conv_peak->conv_actors) : json::value(nullptr)},
       {"actors_peak_t",
        conv_peak ? json::value(conv_peak->t) : json::value(nullptr)},
       {"rss_before_replies_kib", reply_baseline_rss_kib_},
       {"rss_at_peak_kib",
        conv_peak ? json::value(conv_peak->rss_kib) : json::value(nullptr)},
       {"bytes_per_active_conversation", bytes_per_conversation},
       {"actors_before_ai",
        before_ai ? json::value(before_ai->conv_actors) : json::value(nullptr)},
       {"rss_before_ai_kib",
        before_ai ? json::value(before_ai->rss_kib) : json::value(nullptr)},
       {"actors_peak_after_ai", conv_peak_after_ai},
       {"actors_end", end_conv_actors},
       {"rss_end_kib", end_rss}}},
    {"textbacks_via", json::object{{"dial", via_fast},
                                   {"status", via_status},
                                   {"timer", via_timer}}},
  };
  std::string line;
  write_json(result, line);
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  if (!opt_.json_path.empty()) {
    std::ofstream f{opt_.json_path};
    f << line << "\n";
  }
  if (violations > 0) {
    return 1;
  }
  if (aborted_ || !crashes.empty() || failed_restarts_ > 0) {
    return 1;
  }
  return 0;
}

} // namespace ringback::sim
