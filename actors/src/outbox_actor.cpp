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
      std::uniform_real_distribution<double> jitter{0.0, 1.0};
      auto delay = svc->retry.next_delay(m.attempts, r.status, jitter(st.rng));
      auto what = "message " + std::to_string(m.id) + " to " + m.to
                  + " failed (HTTP " + std::to_string(r.status.http_status)
                  + (r.status.error_code != 0
                       ? ", code " + std::to_string(r.status.error_code)
                       : std::string{})
                  + (r.status.error_message.empty()
                       ? std::string{}
                       : ": " + r.status.error_message)
                  + ")";
      if (delay) {
        m.state = message_state::queued;
        engine::log_warn("outbox", what + ", attempt "
                                     + std::to_string(m.attempts)
                                     + ", retrying in "
                                     + std::to_string(delay->count()) + " ms");
        st.waiting.insert(m.id);
        self->delayed_send(self, *delay, retry_atom_v, m.id);
      } else {
        m.state = message_state::failed;
        ++st.failed;
        engine::log_error("outbox", what + ", giving up after "
                                      + std::to_string(m.attempts)
                                      + " attempt(s)");
      }
      save(svc, std::move(m));
    },
    [=](recover_atom) {
      auto me = caf::actor{self};
      auto ids = std::make_shared<std::vector<std::int64_t>>();
      auto node = svc->node_id;
      svc->store->post(
        [ids, node](engine::store& db) {
          ids->clear();
          for (auto& m : db.pending_messages(node)) {
            if (m.state == message_state::sending) {
              // Cut off mid-send by a crash: the carrier may or may not have
              // it. Sending again favours the customer over a rare duplicate.
              m.state = message_state::queued;
              db.update_message(m);
            }
            ids->push_back(m.id);
          }
        },
        [me, ids](const std::string& error) {
          if (!error.empty()) {
            engine::log_error("outbox", "recovering messages failed: " + error);
            return;
          }
          if (!ids->empty()) {
            engine::log_info("outbox", "resending " + std::to_string(ids->size())
                                         + " queued message(s)");
            caf::anon_send(me, send_atom_v, *ids);
          }
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
