#include "ringback/actors/outbox_actor.hpp"

#include "ringback/engine/log.hpp"
#include "ringback/engine/messaging.hpp"

#include <algorithm>
#include <memory>
#include <optional>

namespace ringback::actors {

namespace {

using engine::message_record;
using engine::message_state;
using state_t = caf::stateful_actor<outbox_state>;
using lane_key = std::pair<std::string, std::string>;

/// Posts one of the outbox's store jobs, all of them ahead of the store's
/// queue (`post_ahead`): a text on its way waits for its claim, not behind
/// a backlog of other writes. All in one lane, they stay in order (a
/// message's save before its next claim); what they read and claim was
/// committed before it reached the outbox (the opt-outs an inbound STOP
/// records go ahead too: see `actor_event_sink::deliver_sms`).
void post_job(const services_ptr& svc, engine::store_queue::work w,
              engine::store_queue::done d) {
  svc->store->post_ahead(std::move(w), std::move(d));
}

/// Why messages reach `enqueue`: the counting differs.
enum class arrival : std::uint8_t {
  fresh,     ///< just stored by a workflow segment or the inbound handler
  recovered, ///< found unfinished after a start
  released,  ///< a hold ended
};

bool is_call(const message_record& m) {
  return m.channel == engine::message_channel::call;
}

/// The message metrics (`message_*`, queue wait) count texts only: a page
/// (a call) is no SMS. It still takes its place in its number's lane.
bool counts_as_text(const message_record& m) {
  return !is_call(m);
}

/// "message 12", or "page 12" for a call, for the log.
std::string name_of(const message_record& m) {
  return (is_call(m) ? "page " : "message ") + std::to_string(m.id);
}

/// The outbox treats a call's answers as a text's: the CallSid takes the
/// place of the MessageSid.
engine::sms_receipt as_receipt(engine::call_receipt r) {
  engine::sms_receipt out;
  out.status = std::move(r.status);
  out.message_sid = std::move(r.call_sid);
  return out;
}

engine::sms_lookup as_lookup(engine::call_lookup r) {
  engine::sms_lookup out;
  out.status = std::move(r.status);
  out.message_sid = std::move(r.call_sid);
  return out;
}

/// Sends `m` through the carrier: a text with a status callback, or a call
/// that reads its body (no callback: nothing would use it).
engine::sms_receipt send_one(engine::carrier& c, const message_record& m,
                             const std::string& public_url) {
  if (is_call(m))
    return as_receipt(c.place_call({m.from, m.to, m.body}));
  return c.send_sms(
    {m.from, m.to, m.body, public_url + "/webhooks/twilio/sms/status"});
}

std::string describe(const message_record& m, const engine::carrier_status& s) {
  return name_of(m) + " to " + m.to + " failed (HTTP "
         + std::to_string(s.http_status)
         + (s.error_code != 0 ? ", code " + std::to_string(s.error_code)
                              : std::string{})
         + (s.error_message.empty() ? std::string{} : ": " + s.error_message)
         + ")";
}

/// Asks for a `(pump_atom)` to self that flushes the gathered loads and
/// saves (once per burst: it comes after the messages already queued).
void arm_flush(state_t* self) {
  if (self->state.flush_armed)
    return;
  self->state.flush_armed = true;
  self->send(self, pump_atom_v);
}

/// Posts the gathered saves in one store job. Called before every claim, so
/// that the store sees a message's last update before it is claimed again.
void flush_saves(state_t* self, const services_ptr& svc) {
  auto& st = self->state;
  if (st.to_save.empty())
    return;
  auto ms
    = std::make_shared<std::vector<message_record>>(std::move(st.to_save));
  st.to_save.clear();
  post_job(
    svc,
    [ms](engine::store& db) {
      for (const auto& m : *ms)
        db.update_message(m);
    },
    [ms](const std::string& error) {
      if (error.empty())
        return;
      std::string ids;
      for (const auto& m : *ms)
        ids += (ids.empty() ? "" : ", ") + std::to_string(m.id);
      engine::log_error("outbox",
                        "message(s) " + ids + ": saving failed: " + error);
    });
}

/// Saves a message's update (gathered; see `flush_saves`).
void save(state_t* self, message_record m) {
  self->state.to_save.push_back(std::move(m));
  arm_flush(self);
}

/// Forgets everything held in memory about a message that is done here.
void forget(state_t* self, std::int64_t id) {
  auto& st = self->state;
  st.known.erase(id);
  st.queued_at.erase(id);
  st.lookups.erase(id);
  st.unsure.erase(id);
  st.in_flight.erase(id);
  st.waiting.erase(id);
  st.slotted.erase(id);
}

void report_depth(state_t* self, const services_ptr& svc,
                  const outbox_lane& lane) {
  svc->metrics->queue_depth(lane.tenant_id, lane.from,
                            lane.queued.size() + lane.slotted.size());
}

/// Loads stored messages by id in one store job; they come back as
/// `(enqueue_atom, ...)`.
void load(state_t* self, const services_ptr& svc, std::vector<std::int64_t> ids,
          arrival why) {
  auto me = caf::actor{self};
  auto found = std::make_shared<std::vector<message_record>>();
  post_job(
    svc,
    [ids = std::move(ids), found](engine::store& db) {
      found->clear();
      for (auto id : ids)
        if (auto m = db.find_message(id))
          found->push_back(std::move(*m));
    },
    [me, found, why](const std::string& error) {
      if (!error.empty()) {
        engine::log_error("outbox", "loading messages failed: " + error);
        return;
      }
      caf::anon_send(me, enqueue_atom_v, std::move(*found),
                     static_cast<std::int32_t>(why));
    });
}

/// Asks the kv for slots for the next messages of a lane; the answer comes
/// back as `(paced_atom, tenant, from, starts, retry_after_ms, kv_ok)`.
void ask(state_t* self, const services_ptr& svc, outbox_lane& lane,
         engine::epoch_ms now) {
  lane.asking = true;
  auto count = std::min(lane.queued.size(),
                        outbox_max_slots
                          - std::min(outbox_max_slots, lane.slotted.size()));
  engine::pace_request req;
  req.number_key = engine::pace_key_for_number(lane.tenant_id, lane.from);
  req.number = lane.number_pace;
  if (lane.tenant_cap) {
    req.tenant_key = engine::pace_key_for_tenant(lane.tenant_id);
    req.tenant = lane.tenant_cap;
  }
  req.now = now;
  auto me = caf::actor{self};
  svc->kv->post([me, tenant = lane.tenant_id, from = lane.from,
                 req = std::move(req), count](engine::kv& kv) {
    engine::pace_slots_answer a;
    bool ok = true;
    try {
      a = kv.pace_slots(req, count, outbox_horizon_ms);
    } catch (const std::exception& e) {
      ok = false;
      engine::log_warn("outbox", "pacing through the kv failed ("
                                   + std::string{e.what()}
                                   + "), pacing in this process");
    }
    caf::anon_send(me, paced_atom_v, tenant, from, std::move(a.starts),
                   a.retry_after_ms, ok);
  });
}

void start(state_t* self, const services_ptr& svc, outbox_lane& lane,
           std::vector<std::int64_t> ids);

/// Moves a lane on: starts the messages whose slot has come (in order, one
/// claim for all), asks for more slots when it runs low, and arms the
/// lane's timer for its next slot or for the end of a refusal.
void pump(state_t* self, const services_ptr& svc, const lane_key& key) {
  auto i = self->state.lanes.find(key);
  if (i == self->state.lanes.end())
    return;
  auto& lane = i->second;
  auto now = svc->clock->now();
  std::vector<std::int64_t> due;
  while (!lane.slotted.empty() && lane.slotted.front().first <= now
         && lane.sending + due.size() < outbox_max_sending) {
    due.push_back(lane.slotted.front().second);
    lane.slotted.pop_front();
  }
  if (!due.empty())
    start(self, svc, lane, std::move(due));
  // A lane at its limit of sends under way waits for an answer (which
  // pumps it) before it starts or asks for more.
  const bool full = lane.sending >= outbox_max_sending;
  if (!full && !lane.asking && !lane.queued.empty() && now >= lane.blocked_until
      && lane.slotted.size() < outbox_max_slots / 2)
    ask(self, svc, lane, now);
  engine::epoch_ms next = 0;
  if (!full && !lane.slotted.empty())
    next = lane.slotted.front().first;
  if (!lane.asking && !lane.queued.empty() && lane.blocked_until > now
      && (next == 0 || lane.blocked_until < next))
    next = lane.blocked_until;
  if (next == 0 || (lane.timer_at != 0 && lane.timer_at <= next))
    return;
  auto delay = std::max<engine::epoch_ms>(outbox_tick_ms, next - now);
  lane.timer_at = now + delay;
  self->delayed_send(self, std::chrono::milliseconds{delay}, pump_atom_v,
                     lane.tenant_id, lane.from);
}

/// Puts a queued message in its number's lane (once); the caller pumps the
/// lane (`pump`) once it has enqueued what it has.
void enqueue(state_t* self, const services_ptr& svc, message_record m,
             bool count) {
  auto& st = self->state;
  const auto id = m.id;
  if (st.in_flight.count(id) != 0 || st.waiting.count(id) != 0
      || st.slotted.count(id) != 0)
    return;
  lane_key key{m.tenant_id, m.from};
  auto [it, created] = st.lanes.try_emplace(key);
  auto& lane = it->second;
  if (created) {
    lane.tenant_id = m.tenant_id;
    lane.from = m.from;
    auto info = svc->numbers ? svc->numbers->find(m.tenant_id) : nullptr;
    auto paces = pace_for(info ? info->tenant.get() : nullptr, m.from);
    lane.number_pace = paces.first;
    lane.tenant_cap = paces.second;
  }
  if (!lane.queued.insert(id).second)
    return;
  st.queued_at.emplace(id, svc->clock->now());
  if (count && counts_as_text(m))
    svc->metrics->message_queued(m.tenant_id, m.from);
  st.known.insert_or_assign(id, std::move(m));
  report_depth(self, svc, lane);
}

/// Keeps a held message until its hold ends.
void hold(state_t* self, const services_ptr& svc, const message_record& m) {
  auto& st = self->state;
  if (!st.held.emplace(m.id, m.not_before).second)
    return;
  auto delay = std::max<engine::epoch_ms>(0, m.not_before - svc->clock->now());
  self->delayed_send(self, std::chrono::milliseconds{delay}, unhold_atom_v,
                     m.not_before);
}

/// Records an opt-out the carrier reported (error 21610) in the ledger.
void record_carrier_opt_out(const services_ptr& svc, const message_record& m,
                            int code) {
  auto changed = std::make_shared<bool>(false);
  auto at = svc->clock->now();
  post_job(
    svc,
    [m, code, at, changed](engine::store& db) {
      *changed = save_ledger(db,
                             engine::apply_carrier_error(
                               ledger_entry(db, m.tenant_id, m.to), code, at))
                   .changed;
    },
    [svc, m, changed](const std::string& error) {
      if (!error.empty()) {
        engine::log_error("outbox", "recording the opt-out of " + m.to
                                      + " failed: " + error);
        return;
      }
      if (*changed) {
        svc->metrics->opt_out_changed(m.tenant_id, true, "carrier");
        engine::log_info("outbox", m.to + " opted out of " + m.tenant_id
                                     + "'s texts at the carrier (21610)");
      }
    });
}

/// The metrics label of a failed attempt's cause.
const char* retry_label(const engine::carrier_status& s) {
  return s.http_status == 429   ? "429"
         : s.http_status >= 500 ? "5xx"
         : s.http_status == 0   ? "timeout"
                                : "error";
}

/// Schedules another attempt after a transient failure, or fails the message
/// for good when the policy says so.
void retry_or_fail(state_t* self, const services_ptr& svc, message_record& m,
                   const engine::carrier_status& status, const char* label) {
  auto& st = self->state;
  std::uniform_real_distribution<double> jitter{0.0, 1.0};
  auto delay = svc->retry.next_delay(m.attempts, status, jitter(st.rng));
  auto what = describe(m, status);
  if (delay) {
    m.state = message_state::queued;
    engine::log_warn("outbox", what + ", attempt " + std::to_string(m.attempts)
                                 + ", retrying in "
                                 + std::to_string(delay->count()) + " ms");
    if (counts_as_text(m))
      svc->metrics->message_retried(m.tenant_id, m.from, label);
    st.in_flight.erase(m.id);
    st.waiting.insert(m.id);
    save(self, m);
    self->delayed_send(self, *delay, retry_atom_v, m);
    return;
  }
  m.state = message_state::failed;
  ++st.failed;
  const bool permanent = engine::is_permanent(status.error_code);
  engine::log_error(
    "outbox", what
                + (permanent && status.error_code != 0
                     ? ": " + engine::describe_carrier_error(status.error_code)
                         + ", not retried"
                     : ", giving up after " + std::to_string(m.attempts)
                         + " attempt(s)"));
  if (counts_as_text(m))
    svc->metrics->message_failed(m.tenant_id, m.from, status.error_code);
  // 21610 is the carrier's word on texts; a call's codes say nothing of it.
  if (!is_call(m) && engine::means_opted_out(status.error_code))
    record_carrier_opt_out(svc, m, status.error_code);
  save(self, m);
  forget(self, m.id);
}

/// Asks the carrier whether a message whose send had an unknown outcome
/// arrived there (`find_sms`; for a page, `find_call`). The answer comes
/// back as `(checked_atom, message, lookup)`.
void reconcile(state_t* self, const services_ptr& svc, message_record m) {
  self->state.in_flight.insert(m.id);
  self->state.waiting.erase(m.id);
  auto me = caf::actor{self};
  svc->carrier->post([me, m = std::move(m)](engine::carrier& c) {
    auto lookup
      = is_call(m)
          ? as_lookup(c.find_call({m.from, m.to, m.body}, m.created_at))
          : c.find_sms({m.from, m.to, m.body, {}}, m.created_at);
    caf::anon_send(me, checked_atom_v, m, lookup);
  });
}

/// Claims a lane's due messages in the store in one job (`queued ->
/// sending`, each conditional: another process may have one), checks the
/// ledger once more in the same transaction, then hands each claimed one to
/// the carrier, in order. Each result comes back as `(sent_atom, message,
/// receipt)`; the messages not sent (another process's, sent already,
/// refused now) as one `(sent_atom, ids, false)`, and all of them as
/// `(sent_atom, ids, true)` when the store failed (nothing was claimed).
void start(state_t* self, const services_ptr& svc, outbox_lane& lane,
           std::vector<std::int64_t> due) {
  auto& st = self->state;
  auto now = svc->clock->now();
  std::vector<std::int64_t> ids;
  ids.reserve(due.size());
  for (auto id : due) {
    st.slotted.erase(id);
    if (!st.in_flight.insert(id).second)
      continue; // already on its way
    ids.push_back(id);
    auto at = st.queued_at.find(id);
    auto known = st.known.find(id);
    if (at != st.queued_at.end()
        && (known == st.known.end() || counts_as_text(known->second)))
      svc->metrics->queue_wait(lane.tenant_id, lane.from,
                               static_cast<double>(now - at->second) / 1000.0);
  }
  report_depth(self, svc, lane);
  if (ids.empty())
    return;
  lane.sending += ids.size();
  auto me = caf::actor{self};
  // Claimed where they were written (the only `sending` messages a lane
  // holds: a retry is `queued` again) and due at once: straight to the
  // carrier. Claimed there but held by the pace: the ledger is asked again
  // (`recheck`). The others are claimed now.
  std::vector<std::int64_t> claim;
  std::vector<std::int64_t> recheck;
  for (auto id : ids) {
    auto known = st.known.find(id);
    if (known == st.known.end()
        || known->second.state != message_state::sending) {
      claim.push_back(id);
      continue;
    }
    auto at = st.queued_at.find(id);
    if (at == st.queued_at.end()
        || now - at->second > outbox_early_claim_grace_ms) {
      recheck.push_back(id);
      continue;
    }
    svc->carrier->post(
      [me, m = known->second, url = svc->public_url](engine::carrier& c) {
        caf::anon_send(me, sent_atom_v, m, send_one(c, m, url));
      });
  }
  if (claim.empty() && recheck.empty())
    return;
  ids = claim;
  ids.insert(ids.end(), recheck.begin(), recheck.end());
  // The store runs jobs in order: a message's last update (a retry's
  // `queued`) must be written before it is claimed again.
  flush_saves(self, svc);
  struct outcome {
    std::vector<message_record> claimed;
    std::vector<bool> refused;
  };
  auto result = std::make_shared<outcome>();
  auto node = svc->node_id;
  post_job(
    svc,
    [claim, recheck, result, now, node](engine::store& db) {
      auto claimed = claim.empty()
                       ? std::vector<engine::store::claimed_message>{}
                       : db.claim_for_sending(claim, node, now);
      for (auto id : recheck) {
        // Still this process's and unsent: the ledger's word on it now.
        auto m = db.find_message(id);
        if (!m || m->state != message_state::sending || m->node_id != node)
          continue;
        bool opted_out = db.ledger_refuses(*m);
        claimed.push_back({std::move(*m), opted_out});
      }
      result->claimed.clear();
      result->refused.assign(claimed.size(), false);
      for (std::size_t i = 0; i < claimed.size(); ++i) {
        result->claimed.push_back(std::move(claimed[i].message));
        auto& m = result->claimed.back();
        if (claimed[i].opted_out) {
          // Opted out after the message was queued: the gate says no now.
          m.state = message_state::refused;
          m.reason = engine::to_string(engine::gate_reason::opted_out);
          m.error_message = "recipient opted out of this tenant's texts "
                            "before the message went out";
          m.updated_at = now;
          db.update_message(m);
          result->refused[i] = true;
        }
      }
    },
    [me, svc, ids, result](const std::string& error) {
      if (!error.empty()) {
        std::string list;
        for (auto id : ids)
          list += (list.empty() ? "" : ", ") + std::to_string(id);
        engine::log_error("outbox",
                          "message(s) " + list + ": cannot start: " + error);
        caf::anon_send(me, sent_atom_v, ids, true);
        return;
      }
      std::unordered_set<std::int64_t> sending;
      std::vector<std::int64_t> not_sent;
      for (std::size_t i = 0; i < result->claimed.size(); ++i) {
        const auto& m = result->claimed[i];
        if (result->refused[i]) {
          engine::log_info("outbox", name_of(m) + " to " + m.to
                                       + " refused: " + m.error_message);
          if (counts_as_text(m))
            svc->metrics->message_refused(m.tenant_id, m.reason);
          continue;
        }
        sending.insert(m.id);
        svc->carrier->post([me, m, url = svc->public_url](engine::carrier& c) {
          caf::anon_send(me, sent_atom_v, m, send_one(c, m, url));
        });
      }
      for (auto id : ids)
        if (sending.count(id) == 0)
          not_sent.push_back(id);
      if (!not_sent.empty())
        caf::anon_send(me, sent_atom_v, std::move(not_sent), false);
    });
}

/// `n` sends of a lane got their answer (or were not sent): the lane may
/// start more.
void settle(state_t* self, const services_ptr& svc, const lane_key& key,
            std::size_t n) {
  auto i = self->state.lanes.find(key);
  if (i == self->state.lanes.end())
    return;
  auto& lane = i->second;
  lane.sending -= std::min(n, lane.sending);
  pump(self, svc, key);
}

/// Takes stored messages in: queued ones join their lanes (which are then
/// pumped), held ones wait for their hold, refused ones are counted, and
/// (after a start) interrupted sends are looked up. `from_writer`: handed
/// over by the actor that wrote them, as written: a text claimed in that
/// transaction (`claim_in_writing`) joins its lane too.
void arrive(state_t* self, const services_ptr& svc,
            std::vector<message_record>& found, arrival why,
            bool from_writer = false) {
  auto& st = self->state;
  std::set<lane_key> touched;
  for (auto& m : found) {
    switch (m.state) {
      case message_state::queued:
        st.held.erase(m.id);
        touched.emplace(m.tenant_id, m.from);
        enqueue(self, svc, std::move(m), why != arrival::recovered);
        break;
      case message_state::held:
        if (why == arrival::fresh) {
          if (counts_as_text(m))
            svc->metrics->message_held(m.tenant_id, m.reason);
          engine::log_info("outbox", name_of(m) + " to " + m.to
                                       + " held: " + m.error_message);
        }
        hold(self, svc, m);
        break;
      case message_state::refused:
        if (why == arrival::fresh) {
          ++st.refused;
          if (counts_as_text(m))
            svc->metrics->message_refused(m.tenant_id, m.reason);
          engine::log_info("outbox", name_of(m) + " to " + m.to + " refused ("
                                       + m.reason + "): " + m.error_message);
        }
        break;
      case message_state::sending:
        if (why == arrival::recovered) {
          reconcile(self, svc, std::move(m)); // cut off mid-send
        } else if (from_writer && m.node_id == svc->node_id
                   && st.in_flight.count(m.id) == 0) {
          // Claimed by this process in the transaction that wrote it, and
          // handed over by its writer (once). One loaded by id is not
          // taken: it may be on its way already.
          touched.emplace(m.tenant_id, m.from);
          enqueue(self, svc, std::move(m), true);
        }
        break;
      default:
        break; // sent or final already
    }
  }
  // Each lane asks for as many slots as it now has messages.
  for (const auto& key : touched)
    pump(self, svc, key);
}

} // namespace

std::pair<engine::pace, std::optional<engine::pace>>
pace_for(const engine::tenant* t, std::string_view from) {
  engine::pace number = engine::default_pace(engine::number_kind::long_code);
  std::optional<engine::pace> cap;
  if (t == nullptr)
    return {number, cap};
  for (const auto& n : t->numbers) {
    if (n.number != from)
      continue;
    number = engine::default_pace(n.kind);
    if (n.mps > 0)
      number.rate_per_s = n.mps;
  }
  cap = t->max_rate;
  return {number, cap};
}

caf::behavior outbox_actor(state_t* self, services_ptr svc) {
  return {
    [=](send_atom, const std::vector<std::int64_t>& ids) {
      auto& st = self->state;
      st.to_load.insert(st.to_load.end(), ids.begin(), ids.end());
      arm_flush(self);
    },
    [=](pump_atom) {
      auto& st = self->state;
      st.flush_armed = false;
      if (!st.to_load.empty()) {
        std::vector<std::int64_t> ids;
        ids.swap(st.to_load);
        load(self, svc, std::move(ids), arrival::fresh);
      }
      flush_saves(self, svc);
    },
    [=](send_atom, std::vector<message_record>& stored) {
      arrive(self, svc, stored, arrival::fresh, true);
    },
    [=](enqueue_atom, std::vector<message_record>& found,
        std::int32_t why_raw) {
      arrive(self, svc, found, static_cast<arrival>(why_raw));
    },
    [=](paced_atom, const std::string& tenant, const std::string& from,
        std::vector<std::int64_t>& starts, std::int64_t retry_after_ms,
        bool kv_ok) {
      auto& st = self->state;
      lane_key key{tenant, from};
      auto i = st.lanes.find(key);
      if (i == st.lanes.end())
        return;
      auto& lane = i->second;
      lane.asking = false;
      auto now = svc->clock->now();
      if (!kv_ok) {
        // Without the kv, pace in this process: never faster than the
        // number's rate here (other processes do the same on their own).
        auto nk = engine::pace_key_for_number(tenant, from);
        auto tk = engine::pace_key_for_tenant(tenant);
        auto count = std::min(
          lane.queued.size(),
          outbox_max_slots - std::min(outbox_max_slots, lane.slotted.size()));
        auto local = engine::pace_slots_by_asking(
          now, count, outbox_horizon_ms, [&](engine::epoch_ms at) {
            auto r = engine::gcra_pair(st.local_tats[nk], st.local_tats[tk], at,
                                       lane.number_pace, lane.tenant_cap);
            if (r.allowed) {
              st.local_tats[nk] = r.number_tat;
              if (lane.tenant_cap)
                st.local_tats[tk] = r.tenant_tat;
            }
            return engine::pace_answer{r.allowed, r.retry_after_ms};
          });
        starts = std::move(local.starts);
        retry_after_ms = local.retry_after_ms;
      }
      if (starts.empty()) {
        lane.blocked_until = now + std::max<std::int64_t>(1, retry_after_ms);
      } else {
        // Each slot goes to the next message of the lane, in order. (The
        // lane asked for no more than it had queued, and only one question
        // is out at a time, so no slot is left over.)
        for (auto at : starts) {
          if (lane.queued.empty())
            break;
          auto id = *lane.queued.begin();
          lane.queued.erase(lane.queued.begin());
          lane.slotted.emplace_back(at, id);
          st.slotted.insert(id);
        }
      }
      pump(self, svc, key);
    },
    [=](pump_atom, const std::string& tenant, const std::string& from) {
      lane_key key{tenant, from};
      auto i = self->state.lanes.find(key);
      if (i == self->state.lanes.end())
        return;
      i->second.timer_at = 0;
      pump(self, svc, key);
    },
    [=](retry_atom, message_record& m) {
      self->state.waiting.erase(m.id);
      lane_key key{m.tenant_id, m.from};
      enqueue(self, svc, std::move(m), false);
      pump(self, svc, key);
    },
    // Not sent: already sent, refused, another process's, or the store
    // failed (then tried again later).
    [=](sent_atom, const std::vector<std::int64_t>& ids, bool store_failed) {
      auto& st = self->state;
      std::map<lane_key, std::size_t> settled;
      for (auto id : ids)
        if (auto i = st.known.find(id); i != st.known.end())
          ++settled[lane_key{i->second.tenant_id, i->second.from}];
      for (auto id : ids) {
        if (!store_failed) {
          forget(self, id);
          continue;
        }
        st.in_flight.erase(id);
        auto i = st.known.find(id);
        if (i == st.known.end())
          continue;
        // One claimed where it was written stays `sending` here: its retry
        // asks the ledger again rather than claiming what is claimed.
        st.waiting.insert(id);
        self->delayed_send(self, svc->retry.base, retry_atom_v, i->second);
      }
      for (const auto& [key, n] : settled)
        settle(self, svc, key, n);
    },
    [=](sent_atom, message_record& m, const engine::sms_receipt& r) {
      auto& st = self->state;
      settle(self, svc, lane_key{m.tenant_id, m.from}, 1);
      auto now = svc->clock->now();
      m.updated_at = now;
      m.error_code = r.status.error_code;
      m.error_message = r.status.error_message;
      if (r.status.ok) {
        m.state = message_state::sent;
        m.message_sid = r.message_sid;
        m.sent_at = now;
        ++st.sent;
        if (counts_as_text(m))
          svc->metrics->message_sent(m.tenant_id, m.from);
        engine::log_info("outbox",
                         name_of(m) + " to " + m.to
                           + (is_call(m) ? " placed as " : " sent as ")
                           + r.message_sid);
        forget(self, m.id);
        save(self, std::move(m));
        return;
      }
      if (r.status.outcome_unknown) {
        // Twilio may have the message although its answer was lost: look
        // before sending it again. It stays `sending` in the store meanwhile.
        engine::log_warn("outbox", describe(m, r.status)
                                     + ": the carrier may have it, checking");
        st.unsure[m.id] = r.status;
        save(self, m);
        reconcile(self, svc, std::move(m));
        return;
      }
      retry_or_fail(self, svc, m, r.status, retry_label(r.status));
    },
    [=](reconcile_atom, message_record& m) {
      reconcile(self, svc, std::move(m));
    },
    [=](checked_atom, message_record& m, const engine::sms_lookup& found) {
      auto& st = self->state;
      st.in_flight.erase(m.id);
      m.updated_at = svc->clock->now();
      if (found.status.ok)
        st.lookups.erase(m.id);
      if (found.status.ok && !found.message_sid.empty()) {
        m.state = message_state::sent;
        m.message_sid = found.message_sid;
        m.sent_at = m.updated_at;
        m.error_code = 0;
        m.error_message.clear();
        ++st.sent;
        if (counts_as_text(m))
          svc->metrics->message_sent(m.tenant_id, m.from);
        engine::log_info("outbox", name_of(m) + " had reached the carrier as "
                                     + found.message_sid + ", not sent again");
        forget(self, m.id);
        save(self, std::move(m));
        return;
      }
      if (found.status.ok) {
        // Not there: the earlier attempt never arrived; send it again, after
        // the delay its own answer asks for (a 5xx's Retry-After), and fail
        // with that answer's code when the attempts are used up.
        auto i = st.unsure.find(m.id);
        if (i != st.unsure.end()) {
          auto why = i->second;
          st.unsure.erase(i);
          why.outcome_unknown = false;
          retry_or_fail(self, svc, m, why, retry_label(why));
          return;
        }
        engine::carrier_status lost;
        lost.error_message = "earlier attempt never reached the carrier";
        retry_or_fail(self, svc, m, lost, "lost");
        return;
      }
      // The lookup itself failed: ask again later, never resend blindly.
      std::uniform_real_distribution<double> jitter{0.0, 1.0};
      auto delay = svc->retry.next_delay(++st.lookups[m.id], found.status,
                                         jitter(st.rng));
      if (!delay) {
        m.state = message_state::failed;
        m.error_message = "outcome unknown: the carrier could not be asked ("
                          + found.status.error_message + ")";
        ++st.failed;
        if (counts_as_text(m))
          svc->metrics->message_failed(m.tenant_id, m.from, 0);
        engine::log_error("outbox", name_of(m) + ": " + m.error_message);
        forget(self, m.id);
        save(self, std::move(m));
        return;
      }
      st.waiting.insert(m.id);
      save(self, m);
      self->delayed_send(self, *delay, reconcile_atom_v, std::move(m));
    },
    [=](unhold_atom, engine::epoch_ms due) {
      auto now = svc->clock->now();
      if (due > now) {
        self->delayed_send(self, std::chrono::milliseconds{due - now},
                           unhold_atom_v, due);
        return;
      }
      auto& st = self->state;
      if (st.held.empty())
        return;
      // Due ones are released below or changed meanwhile: no longer held.
      for (auto i = st.held.begin(); i != st.held.end();)
        i = i->second <= now ? st.held.erase(i) : std::next(i);
      auto me = caf::actor{self};
      auto released = std::make_shared<std::vector<message_record>>();
      auto node = svc->node_id;
      post_job(
        svc,
        [released, node, now](engine::store& db) {
          released->clear();
          for (auto id : db.release_held(node, now, 10'000))
            if (auto m = db.find_message(id))
              released->push_back(std::move(*m));
        },
        [me, released](const std::string& error) {
          if (!error.empty()) {
            engine::log_error("outbox",
                              "releasing held messages failed: " + error);
            return;
          }
          if (released->empty())
            return;
          engine::log_info("outbox",
                           "hold over: " + std::to_string(released->size())
                             + " held message(s) queued");
          caf::anon_send(me, enqueue_atom_v, std::move(*released),
                         static_cast<std::int32_t>(arrival::released));
        });
    },
    [=](recover_atom) {
      auto me = caf::actor{self};
      auto pending = std::make_shared<std::vector<message_record>>();
      auto node = svc->node_id;
      post_job(
        svc,
        [pending, node](engine::store& db) {
          *pending = db.pending_messages(node);
        },
        [me, pending](const std::string& error) {
          if (!error.empty()) {
            engine::log_error("outbox", "recovering messages failed: " + error);
            return;
          }
          if (pending->empty())
            return;
          std::size_t queued = 0;
          std::size_t sending = 0;
          std::size_t held = 0;
          for (const auto& m : *pending) {
            queued += m.state == message_state::queued ? 1 : 0;
            sending += m.state == message_state::sending ? 1 : 0;
            held += m.state == message_state::held ? 1 : 0;
          }
          engine::log_info("outbox",
                           "resuming " + std::to_string(queued)
                             + " queued message(s), " + std::to_string(held)
                             + " held, and checking " + std::to_string(sending)
                             + " interrupted send(s) with the carrier");
          caf::anon_send(me, enqueue_atom_v, std::move(*pending),
                         static_cast<std::int32_t>(arrival::recovered));
        });
    },
    [=](stats_atom) {
      const auto& st = self->state;
      outbox_stats out;
      out.in_flight = st.in_flight.size();
      out.waiting_retry = st.waiting.size();
      out.sent = st.sent;
      out.failed = st.failed;
      out.refused = st.refused;
      out.held = st.held.size();
      for (const auto& [key, lane] : st.lanes)
        out.queued += lane.queued.size() + lane.slotted.size();
      return out;
    },
  };
}

} // namespace ringback::actors
