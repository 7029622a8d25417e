#include "ringback/actors/outbox_actor.hpp"

#include "ringback/engine/log.hpp"

#include <memory>
#include <optional>

namespace ringback::actors {

namespace {

using engine::message_record;
using engine::message_state;
using state_t = caf::stateful_actor<outbox_state>;

void save(const services_ptr& svc, message_record m) {
  svc->store->post([m](engine::store& db) { db.update_message(m); },
                   [id = m.id](const std::string& error) {
                     if (!error.empty())
                       engine::log_error("outbox",
                                         "message " + std::to_string(id)
                                           + ": saving failed: " + error);
                   });
}

/// Marks the message `sending` in the store, then hands it to the carrier.
/// The result comes back as `(sent_atom, message, receipt)`.
void start(state_t* self, const services_ptr& svc, std::int64_t id) {
  if (!self->state.in_flight.insert(id).second)
    return; // already on its way
  self->state.waiting.erase(id);
  auto me = caf::actor{self};
  auto claimed = std::make_shared<std::optional<message_record>>();
  auto now = svc->clock->now();
  svc->store->post(
    [id, claimed, now](engine::store& db) {
      claimed->reset();
      auto m = db.find_message(id);
      if (!m || m->state != message_state::queued)
        return; // sent already, or not ours to send
      m->state = message_state::sending;
      ++m->attempts;
      m->updated_at = now;
      db.update_message(*m);
      *claimed = std::move(*m);
    },
    [me, svc, claimed, id](const std::string& error) {
      if (!error.empty() || !*claimed) {
        if (!error.empty())
          engine::log_error("outbox", "message " + std::to_string(id)
                                        + ": cannot start: " + error);
        caf::anon_send(me, sent_atom_v, id, !error.empty());
        return;
      }
      svc->carrier->post([me, m = **claimed](engine::carrier& c) {
        engine::sms_request req{m.from, m.to, m.body, {}};
        caf::anon_send(me, sent_atom_v, m, c.send_sms(req));
      });
    });
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

std::string describe(const message_record& m, const engine::carrier_status& s) {
  return "message " + std::to_string(m.id) + " to " + m.to + " failed (HTTP "
         + std::to_string(s.http_status)
         + (s.error_code != 0 ? ", code " + std::to_string(s.error_code)
                              : std::string{})
         + (s.error_message.empty() ? std::string{} : ": " + s.error_message)
         + ")";
}

/// Schedules another attempt after a transient failure, or fails the message
/// for good when the policy says so.
void retry_or_fail(state_t* self, const services_ptr& svc, message_record& m,
                   const engine::carrier_status& status) {
  auto& st = self->state;
  std::uniform_real_distribution<double> jitter{0.0, 1.0};
  auto delay = svc->retry.next_delay(m.attempts, status, jitter(st.rng));
  auto what = describe(m, status);
  if (delay) {
    m.state = message_state::queued;
    engine::log_warn("outbox", what + ", attempt " + std::to_string(m.attempts)
                                 + ", retrying in "
                                 + std::to_string(delay->count()) + " ms");
    st.waiting.insert(m.id);
    self->delayed_send(self, *delay, retry_atom_v, m.id);
  } else {
    m.state = message_state::failed;
    ++st.failed;
    engine::log_error("outbox", what + ", giving up after "
                                  + std::to_string(m.attempts) + " attempt(s)");
  }
  save(svc, m);
}

} // namespace

caf::behavior outbox_actor(state_t* self, services_ptr svc) {
  return {
    [=](send_atom, const std::vector<std::int64_t>& ids) {
      for (auto id : ids)
        start(self, svc, id);
    },
    [=](retry_atom, std::int64_t id) { start(self, svc, id); },
    // Not started: already sent, unknown, or the store failed (then retried).
    [=](sent_atom, std::int64_t id, bool store_failed) {
      self->state.in_flight.erase(id);
      if (store_failed) {
        self->state.waiting.insert(id);
        self->delayed_send(self, svc->retry.base, retry_atom_v, id);
      }
    },
    [=](sent_atom, message_record& m, const engine::sms_receipt& r) {
      auto& st = self->state;
      st.in_flight.erase(m.id);
      m.updated_at = svc->clock->now();
      m.error_code = r.status.error_code;
      m.error_message = r.status.error_message;
      if (r.status.ok) {
        m.state = message_state::sent;
        m.message_sid = r.message_sid;
        ++st.sent;
        engine::log_info("outbox", "message " + std::to_string(m.id) + " to "
                                     + m.to + " sent as " + r.message_sid);
        save(svc, std::move(m));
        return;
      }
      if (r.status.outcome_unknown) {
        // Twilio may have the message although its answer was lost: look
        // before sending it again. It stays `sending` in the store meanwhile.
        engine::log_warn("outbox", describe(m, r.status)
                                     + ": the carrier may have it, checking");
        save(svc, m);
        reconcile(self, svc, std::move(m));
        return;
      }
      retry_or_fail(self, svc, m, r.status);
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
        m.error_code = 0;
        m.error_message.clear();
        ++st.sent;
        engine::log_info("outbox", "message " + std::to_string(m.id)
                                     + " had reached the carrier as "
                                     + found.message_sid + ", not sent again");
        save(svc, std::move(m));
        return;
      }
      if (found.status.ok) {
        // Not there: the earlier attempt never arrived; send it again.
        engine::carrier_status lost;
        lost.error_message = "earlier attempt never reached the carrier";
        retry_or_fail(self, svc, m, lost);
        return;
      }
      // The lookup itself failed: ask again later, never resend blindly.
      std::uniform_real_distribution<double> jitter{0.0, 1.0};
      auto delay = svc->retry.next_delay(++st.lookups[m.id], found.status,
                                         jitter(st.rng));
      if (!delay) {
        st.lookups.erase(m.id);
        m.state = message_state::failed;
        m.error_message = "outcome unknown: the carrier could not be asked ("
                          + found.status.error_message + ")";
        ++st.failed;
        engine::log_error("outbox", "message " + std::to_string(m.id) + ": "
                                      + m.error_message);
        save(svc, std::move(m));
        return;
      }
      st.waiting.insert(m.id);
      save(svc, m);
      self->delayed_send(self, *delay, reconcile_atom_v, std::move(m));
    },
    [=](recover_atom) {
      auto me = caf::actor{self};
      auto queued = std::make_shared<std::vector<std::int64_t>>();
      auto unsure = std::make_shared<std::vector<message_record>>();
      auto node = svc->node_id;
      svc->store->post(
        [queued, unsure, node](engine::store& db) {
          queued->clear();
          unsure->clear();
          for (auto& m : db.pending_messages(node)) {
            if (m.state == message_state::sending)
              unsure->push_back(std::move(m)); // cut off mid-send by a crash
            else
              queued->push_back(m.id);
          }
        },
        [me, queued, unsure](const std::string& error) {
          if (!error.empty()) {
            engine::log_error("outbox", "recovering messages failed: " + error);
            return;
          }
          if (queued->empty() && unsure->empty())
            return;
          engine::log_info("outbox", "resuming " + std::to_string(queued->size())
                                       + " queued message(s) and checking "
                                       + std::to_string(unsure->size())
                                       + " interrupted send(s) with the carrier");
          if (!queued->empty())
            caf::anon_send(me, send_atom_v, *queued);
          for (auto& m : *unsure)
            caf::anon_send(me, reconcile_atom_v, std::move(m));
        });
    },
    [=](stats_atom) {
      const auto& st = self->state;
      return outbox_stats{st.in_flight.size(), st.waiting.size(), st.sent,
                          st.failed};
    },
  };
}

} // namespace ringback::actors
