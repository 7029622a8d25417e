#include "ringback/actors/runs.hpp"

#include "ringback/actors/services.hpp"
#include "ringback/engine/conversation.hpp"
#include "ringback/engine/executors.hpp"
#include "ringback/engine/log.hpp"
#include "ringback/engine/messaging.hpp"
#include "ringback/workflows/diagnostic.hpp"

#include <algorithm>
#include <mutex>
#include <unordered_set>

namespace ringback::actors {

namespace {

/// The workflow versions known to be committed, per store executor
/// (`store_transaction::executor_id`): a run start skips the (idempotent)
/// insert of a version its executor has committed already.
class saved_versions {
public:
  static saved_versions& instance() {
    static auto* memo = new saved_versions; // never destroyed: used at exit
    return *memo;
  }

  static std::string key(std::uint64_t executor, const std::string& tenant_id,
                         const workflows::workflow& wf) {
    std::string out = std::to_string(executor);
    for (const auto* part : {&tenant_id, &wf.name, &wf.version}) {
      out += '\0';
      out += *part;
    }
    return out;
  }

  bool contains(const std::string& key) const {
    std::lock_guard<std::mutex> guard{mtx_};
    return keys_.count(key) != 0;
  }

  void add(std::string key) {
    std::lock_guard<std::mutex> guard{mtx_};
    keys_.insert(std::move(key));
  }

private:
  mutable std::mutex mtx_;
  std::unordered_set<std::string> keys_;
};

} // namespace

bool save_version_once(engine::store& db, const std::string& tenant_id,
                       const workflows::workflow& wf,
                       engine::epoch_ms loaded_at) {
  auto record = [&] {
    engine::workflow_version_record v;
    v.tenant_id = tenant_id;
    v.name = wf.name;
    v.version = wf.version;
    v.file = wf.file;
    v.source = wf.source;
    v.loaded_at = loaded_at;
    return v;
  };
  auto* txn = engine::current_store_transaction();
  if (txn == nullptr) {
    db.save_workflow_version(record());
    return true;
  }
  auto key = saved_versions::key(txn->executor_id(), tenant_id, wf);
  auto& memo = saved_versions::instance();
  if (memo.contains(key))
    return false;
  db.save_workflow_version(record());
  // Remembered only once committed: a rolled-back batch forgets it.
  txn->after_commit(
    [key = std::move(key), &memo]() mutable { memo.add(std::move(key)); });
  return true;
}

tenant_directory::tenant_directory(const std::vector<engine::tenant>& tenants) {
  for (const auto& t : tenants) {
    for (const auto& n : t.numbers)
      tenant_of_.emplace(n.number, t.id);
    tenants_.emplace(t.id,
                     tenant_info::make(std::make_shared<const engine::tenant>(t)));
  }
}

const std::string* tenant_directory::tenant_of(std::string_view number) const {
  auto i = tenant_of_.find(std::string{number});
  return i == tenant_of_.end() ? nullptr : &i->second;
}

tenant_info_ptr tenant_directory::find(std::string_view tenant_id) const {
  auto i = tenants_.find(std::string{tenant_id});
  return i == tenants_.end() ? nullptr : i->second;
}

engine::opt_out_state ledger_entry(engine::store& db, std::string_view tenant_id,
                                   std::string_view phone) {
  if (auto old = db.find_opt_out(tenant_id, phone))
    return std::move(*old);
  engine::opt_out_state s;
  s.tenant_id = std::string{tenant_id};
  s.phone = std::string{phone};
  return s;
}

const engine::opt_out_transition& save_ledger(engine::store& db,
                                              const engine::opt_out_transition& t) {
  if (t.persist)
    db.save_opt_out(t.state);
  return t;
}

engine::gate_decision gate_message(engine::store& db, engine::message_record& m,
                                   const tenant_info& info,
                                   const tenant_directory* numbers,
                                   engine::epoch_ms now) {
  const auto& guards = info.tenant->guards;
  engine::gate_facts facts;
  // Only text-backs and other automated messages are counted against the
  // caps and windows; a notification, a relayed reply or a compliance
  // answer asks the opt-out ledger alone (one row, where the counts would
  // read every recent message to a busy owner's phone).
  const bool counted = m.kind == engine::send_kind::text_back
                       || m.kind == engine::send_kind::automated;
  if (engine::is_e164(m.to) && !counted) {
    if (auto entry = db.find_opt_out(m.tenant_id, m.to))
      facts.opted_out = entry->opted_out;
  } else if (engine::is_e164(m.to)) {
    engine::gate_query q;
    q.tenant_id = m.tenant_id;
    q.phone = m.to;
    q.now = now;
    q.repeat_caller_window = guards.repeat_caller_window;
    q.loop_window = guards.loop_window;
    q.caller_rate_window = guards.caller_rate_window;
    if (m.kind == engine::send_kind::text_back)
      q.call_sid = m.call_sid;
    facts = db.gate_facts_for(q);
  }
  if (numbers != nullptr) {
    if (const auto* owner = numbers->tenant_of(m.to)) {
      facts.own_number = *owner == m.tenant_id;
      facts.other_tenant_number = *owner != m.tenant_id;
    }
  }
  const auto& cal = info.calendar;
  if (cal.quiet_hours() && cal.is_quiet(now))
    facts.quiet_hours_end = cal.quiet_hours()->next_end(now, cal.zone());
  engine::outbound_candidate c;
  c.tenant_id = m.tenant_id;
  c.from = m.from;
  c.to = m.to;
  c.kind = m.kind;
  c.urgent = m.urgent;
  auto d = engine::decide(c, facts, guards, now);
  m.reason.clear();
  m.not_before = 0;
  m.error_message.clear();
  if (d.sends()) {
    m.state = engine::message_state::queued;
    return d;
  }
  m.state = d.holds() ? engine::message_state::held
                      : engine::message_state::refused;
  m.reason = engine::to_string(d.reason);
  m.error_message = d.message;
  if (d.holds())
    m.not_before = d.hold_until;
  return d;
}

void claim_in_writing(engine::message_record& m, engine::epoch_ms now) {
  if (m.state != engine::message_state::queued
      || m.channel == engine::message_channel::call)
    return;
  m.state = engine::message_state::sending;
  ++m.attempts;
  m.updated_at = now;
}

std::shared_ptr<const tenant_info>
tenant_info::make(std::shared_ptr<const engine::tenant> t) {
  auto out = std::make_shared<tenant_info>();
  auto cal = workflows::business_calendar::from_tenant(*t);
  if (cal.ok()) {
    out->calendar = std::move(*cal.value);
  } else {
    engine::log_error("tenant " + t->id,
                      "calendar: " + workflows::join(cal.errors, "; ")
                        + " (using 24/7 in UTC)");
  }
  out->tenant = std::move(t);
  return out;
}

workflows::context tenant_info::with_calendar(workflows::context vars,
                                              engine::epoch_ms now) const {
  workflows::add_calendar_variables(calendar, now, vars);
  return vars;
}

workflows::context tenant_info::calendar_vars(engine::epoch_ms now) const {
  workflows::context vars;
  workflows::add_calendar_variables(calendar, now, vars);
  return vars;
}

stored_segment make_segment(const workflows::workflow_ptr& wf_ptr,
                            const workflows::segment_result& r,
                            engine::run_record run, const services& svc,
                            const tenant_info_ptr& info, engine::epoch_ms now) {
  const auto& wf = *wf_ptr;
  const auto& node_id = svc.node_id;
  stored_segment s;
  s.info = info;
  s.numbers = svc.numbers;
  s.expected_seq = run.seq;
  // A call actor's incoming run keeps id 0 in memory until the store assigns
  // one (the store job fills it in), so a run's first segment is seq 0, not
  // id 0: later segments must keep its start time.
  if (run.seq == 0) {
    run.workflow = wf.name;
    run.version = wf.version;
    run.started_at = now;
  }
  if (run.id == 0) {
    s.version = wf_ptr;
    s.version_seen_at = now;
  }
  run.seq += 1;
  run.status = r.status;
  run.waiting_for = r.status == engine::run_status::waiting
                      ? r.state.waiting_for
                      : std::string{};
  run.wake_at = run.waiting_for.empty() ? 0 : r.state.wake_at;
  if (!r.state.contact.empty())
    run.contact = r.state.contact;
  run.state = r.state.to_json();
  run.error = r.error;
  run.node_id = node_id;
  run.updated_at = now;
  std::int32_t i = 0;
  for (const auto& t : r.trace) {
    engine::run_step_record st;
    st.seq = static_cast<std::int32_t>(run.seq * 10'000) + i++;
    st.step_id = t.step_id;
    st.type = t.type;
    st.outcome = workflows::to_string(t.outcome);
    st.detail = t.detail;
    st.at = now;
    st.duration_us = t.duration_us;
    s.steps.push_back(std::move(st));
  }
  if (r.status == engine::run_status::failed) {
    engine::run_step_record st;
    st.seq = static_cast<std::int32_t>(run.seq * 10'000) + i++;
    st.step_id = "-";
    st.type = "error";
    st.outcome = "failed";
    st.detail = r.error;
    st.at = now;
    s.steps.push_back(std::move(st));
  }
  // The first text to the caller of a missed call is its text-back; texts to
  // the owner are notifications; anything else a workflow sends is automated.
  bool text_back_given = false;
  const std::string* owner = info ? &info->tenant->owner_phone : nullptr;
  for (const auto& sms : r.fx.sms) {
    engine::message_record m;
    m.urgent = sms.urgent;
    if (owner != nullptr && sms.to == *owner) {
      m.kind = engine::send_kind::notification;
    } else if (!text_back_given && run.trigger == "call.missed"
               && !run.contact.empty() && sms.to == run.contact) {
      m.kind = engine::send_kind::text_back;
      m.urgent = true;
      text_back_given = true;
    } else {
      m.kind = engine::send_kind::automated;
    }
    m.tenant_id = run.tenant_id;
    m.call_sid = run.call_sid;
    m.purpose = wf.name + "/" + sms.step_id;
    m.from = sms.from;
    m.to = sms.to;
    m.body = sms.body;
    m.state = engine::message_state::queued;
    m.node_id = node_id;
    m.created_at = m.updated_at = now;
    const bool to_owner = m.kind == engine::send_kind::notification;
    s.authors.push_back(to_owner ? std::string{}
                                 : (sms.author.empty() ? std::string{"rule"}
                                                       : sms.author));
    s.messages.push_back(std::move(m));
  }
  // A page (`call_owner`) is an outbox message on the call channel: written
  // in the segment's own transaction, then sent (and retried, and looked up
  // after an unknown outcome) exactly like a text to the owner.
  for (const auto& c : r.fx.calls) {
    engine::message_record m;
    m.channel = engine::message_channel::call;
    m.kind = engine::send_kind::notification;
    m.urgent = true;
    m.tenant_id = run.tenant_id;
    m.call_sid = run.call_sid;
    m.purpose = wf.name + "/" + c.step_id;
    m.from = c.from;
    m.to = c.to;
    m.body = c.say;
    m.state = engine::message_state::queued;
    m.node_id = node_id;
    m.created_at = m.updated_at = now;
    s.authors.emplace_back(); // not part of a conversation's transcript
    s.messages.push_back(std::move(m));
  }
  s.tags = r.fx.tags;
  s.http = r.fx.http;
  s.ai = r.fx.ai;
  s.run = std::move(run);
  return s;
}

std::vector<engine::message_record>
stored_messages(const stored_segment& s,
                const std::vector<std::int64_t>& ids) {
  std::vector<engine::message_record> out;
  // `ids` may list other segments' messages too (an outcome's runs); each
  // attempt of a job assigns the ids of every message it writes afresh.
  for (const auto& m : s.messages)
    if (m.id != 0 && std::find(ids.begin(), ids.end(), m.id) != ids.end())
      out.push_back(m);
  return out;
}

bool write_segment(engine::store& db, stored_segment& s,
                   std::vector<std::int64_t>& message_ids) {
  message_ids.clear();
  if (s.run.id == 0) {
    if (s.version)
      save_version_once(db, s.run.tenant_id, *s.version, s.version_seen_at);
    s.run.id = db.insert_run(s.run);
  } else if (!db.update_run(s.run, s.expected_seq)) {
    return false;
  }
  for (auto& st : s.steps)
    st.run_id = s.run.id;
  if (!s.steps.empty())
    db.insert_run_steps(s.steps);
  std::vector<engine::conversation_message> said;
  for (std::size_t i = 0; i < s.messages.size(); ++i) {
    auto& m = s.messages[i];
    if (s.info) {
      gate_message(db, m, *s.info, s.numbers.get(), m.created_at);
      claim_in_writing(m, m.created_at);
    }
    m.id = db.insert_message(m);
    message_ids.push_back(m.id);
    const auto& author = i < s.authors.size() ? s.authors[i] : std::string{};
    if (author.empty() || m.state == engine::message_state::refused)
      continue;
    auto c = db.find_or_create_conversation(m.tenant_id, m.to, m.from,
                                            m.created_at);
    if (m.kind == engine::send_kind::text_back && s.info) {
      // A missed call's text-back opens the conversation for the owner.
      for (int attempt = 0; attempt < 3; ++attempt) {
        auto st = engine::on_text_back(c, s.info->tenant->conversations,
                                       m.created_at);
        if (db.update_conversation(st.next, c.seq)) {
          c = st.next;
          for (const auto& e : st.fx.events) {
            engine::conversation_event ev;
            ev.conversation_id = c.id;
            ev.tenant_id = c.tenant_id;
            ev.kind = e;
            ev.detail = "missed call " + s.run.call_sid;
            ev.at = m.created_at;
            db.insert_conversation_event(ev);
          }
          break;
        }
        if (auto again = db.find_conversation(c.id))
          c = std::move(*again);
      }
    }
    engine::conversation_message cm;
    cm.conversation_id = c.id;
    cm.tenant_id = m.tenant_id;
    cm.author = author;
    cm.body = m.body;
    cm.message_id = m.id;
    cm.at = m.created_at;
    said.push_back(std::move(cm));
  }
  if (!said.empty())
    db.insert_conversation_messages(said);
  if (!s.ai_events.empty() && !s.run.contact.empty()) {
    // The turn is recorded (tokens, cost, latency) even if its text was
    // refused by the gate.
    auto c = db.find_or_create_conversation(s.run.tenant_id, s.run.contact, "",
                                            s.run.updated_at);
    for (auto ev : s.ai_events) {
      ev.conversation_id = c.id;
      ev.tenant_id = c.tenant_id;
      ev.window_seq = c.window_seq; // the window the AI took over
      db.insert_conversation_event(ev);
    }
  }
  for (const auto& t : s.tags)
    db.tag_contact(s.run.tenant_id, t.phone, t.tag, s.run.updated_at);
  return true;
}

void log_segment(const workflows::workflow& wf,
                 const workflows::segment_result& r, std::string_view who) {
  const std::string prefix = std::string(who) + ": " + wf.name + " ";
  for (const auto& l : r.fx.logs) {
    auto line = prefix + l.step_id + ": " + l.text;
    if (l.level == "error")
      engine::log_error("workflow", line);
    else if (l.level == "warn")
      engine::log_warn("workflow", line);
    else
      engine::log_info("workflow", line);
  }
  for (const auto& t : r.trace)
    engine::log_info("workflow",
                     prefix + t.step_id + " " + workflows::to_string(t.outcome)
                       + (t.detail.empty() ? "" : " (" + t.detail + ")"));
  if (r.status == engine::run_status::failed)
    engine::log_error("workflow", prefix + "failed: " + r.error);
}

void fill_voice_urls(std::vector<engine::voice_verb>& verbs,
                     const std::string& public_url,
                     std::chrono::seconds ring_timeout) {
  using vk = engine::voice_verb::kind;
  for (auto& v : verbs) {
    if (v.what == vk::dial && v.action_url.empty())
      v.action_url = public_url + "/webhooks/twilio/voice/dial-result";
    if (v.what == vk::dial && v.timeout.count() == 0)
      v.timeout = ring_timeout;
    if (v.what == vk::record) {
      if (v.action_url.empty())
        v.action_url = public_url + "/webhooks/twilio/voice/recording";
      const std::string marker = "transcribe:";
      if (v.transcribe_callback.rfind(marker, 0) == 0)
        v.transcribe_callback = public_url
                                + "/webhooks/twilio/voice/transcription?step="
                                + v.transcribe_callback.substr(marker.size());
    }
  }
}

engine::outbound_http_request http_request(const workflows::http_action& a,
                                           const engine::tenant& t) {
  engine::outbound_http_request req;
  req.method = a.method;
  req.url = a.url;
  req.headers = a.headers;
  req.body = a.body;
  req.timeout = a.timeout;
  req.max_attempts = a.max_attempts;
  req.allowed_hosts = t.http_allow;
  return req;
}

workflows::resume_event http_event(const engine::outbound_http_response& r) {
  workflows::resume_event ev;
  ev.what = workflows::resume_event::kind::http;
  ev.http_status = r.status;
  ev.body = r.body;
  ev.content_type = r.content_type;
  ev.error = r.error;
  ev.attempts = r.attempts;
  ev.elapsed_ms = r.elapsed_ms;
  return ev;
}

} // namespace ringback::actors
