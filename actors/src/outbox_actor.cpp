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

/// Why messages reach `enqueue`: the counting differs.
enum class arrival : std::uint8_t {
  fresh,     ///< just stored by a workflow segment or the inbound handler
  recovered, ///< found unfinished after a start
  released,  ///< a hold ended
};

std::string describe(const message_record& m, const engine::carrier_status& s) {
  return "message " + std::to_string(m.id) + " to " + m.to + " failed (HTTP "
         + std::to_string(s.http_status)
         + (s.error_code != 0 ? ", code " + std::to_string(s.error_code)
                              : std::string{})
         + (s.error_message.empty() ? std::string{} : ": " + s.error_message)
         + ")";
}

void save(const services_ptr& svc, message_record m) {
  svc->store->post([m](engine::store& db) { db.update_message(m); },
                   [id = m.id](const std::string& error) {
                     if (!error.empty())
                       engine::log_error("outbox",
                                         "message " + std::to_string(id)
                                           + ": saving failed: " + error);
                   });
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
}

void report_depth(state_t* self, const services_ptr& svc,
                  const outbox_lane& lane) {
  svc->metrics->queue_depth(lane.tenant_id, lane.from, lane.queued.size());
}

/// Loads stored messages by id; they come back as `(enqueue_atom, ...)`.
void load(state_t* self, const services_ptr& svc, std::vector<std::int64_t> ids,
          arrival why) {
  auto me = caf::actor{self};
  auto found = std::make_shared<std::vector<message_record>>();
  svc->store->post(
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

/// Asks the kv whether the head of a lane may go now; the answer comes back
/// as `(paced_atom, tenant, from, answer, kv_ok)`.
void pump(state_t* self, const services_ptr& svc, const lane_key& key) {
  auto i = self->state.lanes.find(key);
  if (i == self->state.lanes.end())
    return;
  auto& lane = i->second;
  if (lane.pacing || lane.queued.empty())
    return;
  lane.pacing = true;
  engine::pace_request req;
  req.number_key = engine::pace_key_for_number(lane.tenant_id, lane.from);
  req.number = lane.number_pace;
  if (lane.tenant_cap) {
    req.tenant_key = engine::pace_key_for_tenant(lane.tenant_id);
    req.tenant = lane.tenant_cap;
  }
  req.now = svc->clock->now();
  auto me = caf::actor{self};
  svc->kv->post([me, key, req = std::move(req)](engine::kv& kv) {
    engine::pace_answer a;
    bool ok = true;
    try {
      a = kv.pace(req);
    } catch (const std::exception& e) {
      ok = false;
      engine::log_warn("outbox", "pacing through the kv failed (" + std::string{e.what()}
                                   + "), pacing in this process");
    }
    caf::anon_send(me, paced_atom_v, key.first, key.second, a, ok);
  });
}

void start(state_t* self, const services_ptr& svc, std::int64_t id);

/// Puts a queued message in its number's lane (once).
void enqueue(state_t* self, const services_ptr& svc, message_record m,
             bool count) {
  auto& st = self->state;
  const auto id = m.id;
  if (st.in_flight.count(id) != 0 || st.waiting.count(id) != 0)
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
  if (count)
    svc->metrics->message_queued(m.tenant_id, m.from);
  st.known.insert_or_assign(id, std::move(m));
  report_depth(self, svc, lane);
  pump(self, svc, key);
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
  svc->store->post(
    [m, code, at, changed](engine::store& db) {
      *changed = save_ledger(db, engine::apply_carrier_error(
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
    svc->metrics->message_retried(m.tenant_id, m.from, label);
    st.in_flight.erase(m.id);
    st.waiting.insert(m.id);
    save(svc, m);
    self->delayed_send(self, *delay, retry_atom_v, m);
    return;
  }
  m.state = message_state::failed;
  ++st.failed;
  const bool permanent = engine::is_permanent(status.error_code);
  engine::log_error("outbox",
                    what
                      + (permanent && status.error_code != 0
                           ? ": " + engine::describe_carrier_error(status.error_code)
                               + ", not retried"
                           : ", giving up after " + std::to_string(m.attempts)
                               + " attempt(s)"));
  svc->metrics->message_failed(m.tenant_id, m.from, status.error_code);
  if (engine::means_opted_out(status.error_code))
    record_carrier_opt_out(svc, m, status.error_code);
  save(svc, m);
  forget(self, m.id);
}

/// Asks the carrier whether a message whose send had an unknown outcome
/// arrived there. The answer comes back as `(checked_atom, message, lookup)`.
void reconcile(state_t* self, const services_ptr& svc, message_record m) {
  self->state.in_flight.insert(m.id);
  self->state.waiting.erase(m.id);
  auto me = caf::actor{self};
  svc->carrier->post([me, m = std::move(m)](engine::carrier& c) {
    engine::sms_request req{m.from, m.to, m.body, {}};
    auto lookup = c.find_sms(req, m.created_at);
    caf::anon_send(me, checked_atom_v, m, lookup);
  });
}

/// Claims the message in the store (`queued -> sending`; another process may
/// have it), checks the ledger once more, then hands it to the carrier. The
/// result comes back as `(sent_atom, message, receipt)`, or `(sent_atom, id,
/// store_failed)` when nothing was sent.
void start(state_t* self, const services_ptr& svc, std::int64_t id) {
  auto& st = self->state;
  if (!st.in_flight.insert(id).second)
    return; // already on its way
  auto me = caf::actor{self};
  auto claimed = std::make_shared<std::optional<message_record>>();
  auto refused = std::make_shared<bool>(false);
  auto now = svc->clock->now();
  auto node = svc->node_id;
  svc->store->post(
    [id, claimed, refused, now, node](engine::store& db) {
      claimed->reset();
      *refused = false;
      auto m = db.claim_message(id, node, now);
      if (!m)
        return; // sent already, refused, or another process has it
      if (m->kind != engine::send_kind::compliance) {
        auto ledger = db.find_opt_out(m->tenant_id, m->to);
        if (ledger && ledger->opted_out) {
          // Opted out after the message was queued: the gate says no now.
          m->state = message_state::refused;
          m->reason = engine::to_string(engine::gate_reason::opted_out);
          m->error_message = "recipient opted out of this tenant's texts "
                             "before the message went out";
          m->updated_at = now;
          db.update_message(*m);
          *refused = true;
        }
      }
      *claimed = std::move(*m);
    },
    [me, svc, claimed, refused, id](const std::string& error) {
      if (!error.empty() || !*claimed) {
        if (!error.empty())
          engine::log_error("outbox", "message " + std::to_string(id)
                                        + ": cannot start: " + error);
        caf::anon_send(me, sent_atom_v, id, !error.empty());
        return;
      }
      const auto& m = **claimed;
      if (*refused) {
        engine::log_info("outbox", "message " + std::to_string(id) + " to "
                                     + m.to + " refused: " + m.error_message);
        caf::anon_send(me, sent_atom_v, id, false);
        svc->metrics->message_refused(m.tenant_id, m.reason);
        return;
      }
      engine::sms_request req{m.from, m.to, m.body,
                              svc->public_url + "/webhooks/twilio/sms/status"};
      svc->carrier->post([me, m, req = std::move(req)](engine::carrier& c) {
        caf::anon_send(me, sent_atom_v, m, c.send_sms(req));
      });
    });
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
      load(self, svc, ids, arrival::fresh);
    },
    [=](enqueue_atom, std::vector<message_record>& found, std::int32_t why_raw) {
      auto why = static_cast<arrival>(why_raw);
      auto& st = self->state;
      for (auto& m : found) {
        switch (m.state) {
          case message_state::queued:
            st.held.erase(m.id);
            enqueue(self, svc, std::move(m), why != arrival::recovered);
            break;
          case message_state::held:
            if (why == arrival::fresh) {
              svc->metrics->message_held(m.tenant_id, m.reason);
              engine::log_info("outbox", "message " + std::to_string(m.id)
                                           + " to " + m.to + " held: "
                                           + m.error_message);
            }
            hold(self, svc, m);
            break;
          case message_state::refused:
            if (why == arrival::fresh) {
              ++st.refused;
              svc->metrics->message_refused(m.tenant_id, m.reason);
              engine::log_info("outbox", "message " + std::to_string(m.id)
                                           + " to " + m.to + " refused ("
                                           + m.reason + "): " + m.error_message);
            }
            break;
          case message_state::sending:
            if (why == arrival::recovered)
              reconcile(self, svc, std::move(m)); // cut off mid-send
            break;
          default:
            break; // sent or final already
        }
      }
    },
    [=](paced_atom, const std::string& tenant, const std::string& from,
        engine::pace_answer a, bool kv_ok) {
      auto& st = self->state;
      lane_key key{tenant, from};
      auto i = st.lanes.find(key);
      if (i == st.lanes.end())
        return;
      auto& lane = i->second;
      lane.pacing = false;
      if (!kv_ok) {
        // Without the kv, pace in this process: never faster than the
        // number's rate here (other processes do the same on their own).
        auto nk = engine::pace_key_for_number(tenant, from);
        auto tk = engine::pace_key_for_tenant(tenant);
        auto r = engine::gcra_pair(st.local_tats[nk], st.local_tats[tk],
                                   svc->clock->now(), lane.number_pace,
                                   lane.tenant_cap);
        if (r.allowed) {
          st.local_tats[nk] = r.number_tat;
          if (lane.tenant_cap)
            st.local_tats[tk] = r.tenant_tat;
        }
        a.allowed = r.allowed;
        a.retry_after_ms = r.retry_after_ms;
      }
      if (!a.allowed) {
        lane.pacing = true;
        self->delayed_send(self,
                           std::chrono::milliseconds{
                             std::max<engine::epoch_ms>(1, a.retry_after_ms)},
                           pump_atom_v, tenant, from);
        return;
      }
      if (lane.queued.empty())
        return;
      auto id = *lane.queued.begin();
      lane.queued.erase(lane.queued.begin());
      report_depth(self, svc, lane);
      auto at = st.queued_at.find(id);
      if (at != st.queued_at.end()) {
        svc->metrics->queue_wait(
          tenant, from,
          static_cast<double>(svc->clock->now() - at->second) / 1000.0);
      }
      start(self, svc, id);
      pump(self, svc, key);
    },
    [=](pump_atom, const std::string& tenant, const std::string& from) {
      lane_key key{tenant, from};
      auto i = self->state.lanes.find(key);
      if (i == self->state.lanes.end())
        return;
      i->second.pacing = false;
      pump(self, svc, key);
    },
    [=](retry_atom, message_record& m) {
      self->state.waiting.erase(m.id);
      enqueue(self, svc, std::move(m), false);
    },
    // Not sent: already sent, refused, another process's, or the store
    // failed (then tried again later).
    [=](sent_atom, std::int64_t id, bool store_failed) {
      auto& st = self->state;
      if (!store_failed) {
        forget(self, id);
        return;
      }
      st.in_flight.erase(id);
      auto i = st.known.find(id);
      if (i == st.known.end())
        return;
      st.waiting.insert(id);
      self->delayed_send(self, svc->retry.base, retry_atom_v, i->second);
    },
    [=](sent_atom, message_record& m, const engine::sms_receipt& r) {
      auto& st = self->state;
      auto now = svc->clock->now();
      m.updated_at = now;
      m.error_code = r.status.error_code;
      m.error_message = r.status.error_message;
      if (r.status.ok) {
        m.state = message_state::sent;
        m.message_sid = r.message_sid;
        m.sent_at = now;
        ++st.sent;
        svc->metrics->message_sent(m.tenant_id, m.from);
        engine::log_info("outbox", "message " + std::to_string(m.id) + " to "
                                     + m.to + " sent as " + r.message_sid);
        forget(self, m.id);
        save(svc, std::move(m));
        return;
      }
      if (r.status.outcome_unknown) {
        // Twilio may have the message although its answer was lost: look
        // before sending it again. It stays `sending` in the store meanwhile.
        engine::log_warn("outbox", describe(m, r.status)
                                     + ": the carrier may have it, checking");
        st.unsure[m.id] = r.status;
        save(svc, m);
        reconcile(self, svc, std::move(m));
        return;
      }
      retry_or_fail(self, svc, m, r.status, retry_label(r.status));
    },
    [=](reconcile_atom, message_record& m) { reconcile(self, svc, std::move(m)); },
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
        svc->metrics->message_sent(m.tenant_id, m.from);
        engine::log_info("outbox", "message " + std::to_string(m.id)
                                     + " had reached the carrier as "
                                     + found.message_sid + ", not sent again");
        forget(self, m.id);
        save(svc, std::move(m));
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
        svc->metrics->message_failed(m.tenant_id, m.from, 0);
        engine::log_error("outbox", "message " + std::to_string(m.id) + ": "
                                      + m.error_message);
        forget(self, m.id);
        save(svc, std::move(m));
        return;
      }
      st.waiting.insert(m.id);
      save(svc, m);
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
      svc->store->post(
        [released, node, now](engine::store& db) {
          released->clear();
          for (auto id : db.release_held(node, now, 10'000))
            if (auto m = db.find_message(id))
              released->push_back(std::move(*m));
        },
        [me, released](const std::string& error) {
          if (!error.empty()) {
            engine::log_error("outbox", "releasing held messages failed: " + error);
            return;
          }
          if (released->empty())
            return;
          engine::log_info("outbox", "hold over: "
                                       + std::to_string(released->size())
                                       + " held message(s) queued");
          caf::anon_send(me, enqueue_atom_v, std::move(*released),
                         static_cast<std::int32_t>(arrival::released));
        });
    },
    [=](recover_atom) {
      auto me = caf::actor{self};
      auto pending = std::make_shared<std::vector<message_record>>();
      auto node = svc->node_id;
      svc->store->post(
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
          engine::log_info("outbox", "resuming " + std::to_string(queued)
                                       + " queued message(s), "
                                       + std::to_string(held)
                                       + " held, and checking "
                                       + std::to_string(sending)
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
        out.queued += lane.queued.size();
      return out;
    },
  };
}

} // namespace ringback::actors
