#pragma once

#include "ringback/engine/ingress.hpp"
#include "ringback/engine/ports.hpp"

#include <atomic>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace ringback::testkit {

/// A wall clock the test moves by hand.
class manual_clock final : public engine::clock {
public:
  explicit manual_clock(engine::epoch_ms start = 1'700'000'000'000) : now_(start) {
    // nop
  }

  engine::epoch_ms now() const override {
    return now_.load();
  }

  void advance(std::chrono::milliseconds d) {
    now_ += d.count();
  }

private:
  std::atomic<engine::epoch_ms> now_;
};

/// A carrier that records what it was asked and answers from a script.
class fake_carrier final : public engine::carrier {
public:
  engine::sms_receipt send_sms(const engine::sms_request& req) override {
    std::lock_guard<std::mutex> guard{mtx_};
    attempts.push_back(req);
    engine::sms_receipt r;
    if (!scripted_sends.empty()) {
      r = scripted_sends.front();
      scripted_sends.pop_front();
    } else {
      r.status.ok = true;
      r.status.http_status = 201;
      r.message_sid = "SM" + std::to_string(attempts.size());
    }
    if (r.status.ok)
      sent.push_back(req);
    if (r.status.ok || (r.status.outcome_unknown && accept_silently))
      accepted.push_back(req);
    return r;
  }

  engine::sms_lookup find_sms(const engine::sms_request& req,
                             engine::epoch_ms) override {
    std::lock_guard<std::mutex> guard{mtx_};
    ++lookups;
    engine::sms_lookup r;
    if (lookup_fails > 0) {
      --lookup_fails;
      r.status.http_status = 503;
      return r;
    }
    r.status.ok = true;
    r.status.http_status = 200;
    for (std::size_t i = 0; i < accepted.size(); ++i)
      if (accepted[i].to == req.to && accepted[i].from == req.from
          && accepted[i].body == req.body)
        r.message_sid = "SM-found-" + std::to_string(i);
    return r;
  }

  engine::call_report fetch_call(std::string_view call_sid) override {
    std::lock_guard<std::mutex> guard{mtx_};
    queries.emplace_back(call_sid);
    if (auto i = reports.find(std::string{call_sid}); i != reports.end())
      return i->second;
    engine::call_report r;
    r.status.http_status = 404;
    r.status.error_code = 20404;
    return r;
  }

  /// Answers from `scripted_calls` (then: placed, "CApage<n>"). A call the
  /// carrier has (answered ok, or its answer scripted as lost while
  /// `accept_silently`) is in `pages`.
  engine::call_receipt place_call(const engine::call_request& req) override {
    std::lock_guard<std::mutex> guard{mtx_};
    call_attempts.push_back(req);
    engine::call_receipt r;
    if (!scripted_calls.empty()) {
      r = scripted_calls.front();
      scripted_calls.pop_front();
    } else {
      r.status.ok = true;
      r.status.http_status = 201;
      r.call_sid = "CApage" + std::to_string(call_attempts.size());
    }
    if (r.status.ok || (r.status.outcome_unknown && accept_silently)) {
      pages.push_back(req);
      page_sids.push_back(
        r.status.ok ? r.call_sid : "CAlost" + std::to_string(pages.size()));
    }
    return r;
  }

  /// As Twilio: a call has no text, so only From and To are compared; the
  /// earliest match is found.
  engine::call_lookup find_call(const engine::call_request& req,
                                engine::epoch_ms created_after) override {
    std::lock_guard<std::mutex> guard{mtx_};
    ++call_lookups;
    call_lookup_times.push_back(created_after);
    engine::call_lookup r;
    if (call_lookup_fails > 0) {
      --call_lookup_fails;
      r.status.http_status = 503;
      r.status.error_message = "scripted lookup failure";
      return r;
    }
    r.status.ok = true;
    r.status.http_status = 200;
    for (std::size_t i = 0; i < pages.size(); ++i)
      if (pages[i].to == req.to && pages[i].from == req.from) {
        r.call_sid = page_sids[i];
        break;
      }
    return r;
  }

  /// The parent call ended as `parent` with one dialled leg.
  void set_call(const std::string& sid, std::string parent, std::string leg,
                std::int32_t leg_duration = 0) {
    engine::call_report r;
    r.status.ok = true;
    r.status.http_status = 200;
    r.parent = {sid, std::move(parent), 0};
    r.children.push_back({sid + "-leg", std::move(leg), leg_duration});
    reports[sid] = r;
  }

  /// The send reached the carrier, but its answer was lost.
  static engine::sms_receipt lost_answer() {
    engine::sms_receipt r;
    r.status.error_message = "POST /Messages.json: timed out";
    r.status.outcome_unknown = true;
    return r;
  }

  static engine::sms_receipt failure(int http, int code = 0) {
    engine::sms_receipt r;
    r.status.http_status = http;
    r.status.error_code = code;
    r.status.error_message = "scripted failure";
    return r;
  }

  /// The call was placed (or not: see `accept_silently`), but the answer
  /// was lost.
  static engine::call_receipt lost_call_answer() {
    engine::call_receipt r;
    r.status.error_message = "POST /Calls.json: timed out";
    r.status.outcome_unknown = true;
    return r;
  }

  static engine::call_receipt call_failure(int http, int code = 0) {
    engine::call_receipt r;
    r.status.http_status = http;
    r.status.error_code = code;
    r.status.error_message = "scripted call failure";
    r.status.outcome_unknown = http >= 500;
    return r;
  }

  std::vector<engine::sms_request> attempts;
  /// Every `place_call` request, and the calls the carrier has (with their
  /// CallSids).
  std::vector<engine::call_request> call_attempts;
  std::vector<engine::call_request> pages;
  std::vector<std::string> page_sids;
  std::deque<engine::call_receipt> scripted_calls;
  int call_lookups = 0;
  int call_lookup_fails = 0;
  /// The `created_after` of each `find_call`.
  std::vector<engine::epoch_ms> call_lookup_times;
  std::vector<engine::sms_request> sent;
  std::deque<engine::sms_receipt> scripted_sends;
  std::vector<std::string> queries;
  /// What the carrier holds: sent ones plus (if `accept_silently`) those
  /// whose answer was scripted as lost.
  std::vector<engine::sms_request> accepted;
  bool accept_silently = true;
  int lookups = 0;
  int lookup_fails = 0;
  std::unordered_map<std::string, engine::call_report> reports;

private:
  std::mutex mtx_;
};

/// A kv that forwards dedup and claims to `inner` but never paces: for tests
/// of call and run flows, where texts should leave at once (pacing has its
/// own tests in tests/actors/outbox_test.cpp).
class unpaced_kv final : public engine::kv {
public:
  explicit unpaced_kv(engine::kv& inner) : inner_(inner) {
    // nop
  }

  bool set_if_absent(std::string_view key, std::string_view value,
                     std::chrono::milliseconds ttl) override {
    return inner_.set_if_absent(key, value, ttl);
  }

  bool claim(std::string_view key, std::string_view owner,
             std::chrono::milliseconds ttl) override {
    return inner_.claim(key, owner, ttl);
  }

  bool ping() override {
    return inner_.ping();
  }

  engine::pace_answer pace(const engine::pace_request&) override {
    ++paced;
    return {true, 0};
  }

  std::atomic<int> paced{0};

private:
  engine::kv& inner_;
};

/// Captures the answers to a voice webhook.
class recorded_reply final : public engine::voice_reply {
public:
  void answer(const engine::voice_answer& a) override {
    answers.push_back(a);
  }

  std::vector<engine::voice_answer> answers;
};

inline engine::inbound_event call_event(engine::inbound_event::kind what,
                                        std::string sid, std::string status = {},
                                        std::int32_t duration = 0) {
  engine::inbound_event ev;
  ev.what = what;
  ev.sid = std::move(sid);
  ev.from = "+15550100";
  ev.to = "+15005550001";
  ev.status = std::move(status);
  ev.duration = duration;
  ev.raw.kind = engine::to_string(what);
  ev.raw.call_sid = ev.sid;
  return ev;
}

} // namespace ringback::testkit
