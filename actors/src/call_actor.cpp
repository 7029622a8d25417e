#include "ringback/actors/call_actor.hpp"

#include "ringback/actors/messages.hpp"
#include "ringback/engine/log.hpp"

#include <utility>

namespace ringback::actors {

namespace {

using engine::call_effects;
using engine::call_fsm;
using engine::call_phase;
using claim_result = call_fsm::claim_result;

std::string outcome_key(const std::string& call_sid) {
  return "ringback:outcome:" + call_sid;
}

/// Claims the outcome: first in the kv (cheap, shared by every process), then
/// in the store together with the messages the outcome sends (the store's
/// conditional update is the final word). Reports `decided_atom` to `self`.
void claim_outcome(const caf::actor& self, const services_ptr& svc,
                   engine::call_record decided,
                   std::vector<engine::message_record> messages) {
  svc->kv->post([self, svc, decided = std::move(decided),
                 messages = std::move(messages)](engine::kv& kv) mutable {
    try {
      if (!kv.claim(outcome_key(decided.call_sid), svc->node_id,
                    svc->claim_ttl)) {
        caf::anon_send(self, decided_atom_v, claim_result::lost,
                       std::vector<std::int64_t>{});
        return;
      }
    } catch (const std::exception& e) {
      // The kv is only a fast filter; the store still decides exactly once.
      engine::log_warn("call", decided.call_sid + ": kv claim failed ("
                                 + e.what() + "), deciding in the store");
    }
    auto won = std::make_shared<bool>(false);
    auto ids = std::make_shared<std::vector<std::int64_t>>();
    svc->store->post(
      [decided, messages, won, ids](engine::store& db) {
        ids->clear(); // the job may run twice (batch retried alone)
        *won = db.decide_outcome(decided);
        if (*won)
          for (const auto& m : messages)
            ids->push_back(db.insert_message(m));
      },
      [self, won, ids](const std::string& error) {
        auto result = !error.empty() ? claim_result::failed
                                     : (*won ? claim_result::won
                                             : claim_result::lost);
        if (!error.empty())
          engine::log_error("call", "storing the outcome failed: " + error);
        caf::anon_send(self, decided_atom_v, result, *ids);
      });
  });
}

} // namespace

caf::behavior call_actor(caf::stateful_actor<call_state>* self,
                         engine::call_record record, services_ptr svc,
                         std::shared_ptr<const engine::tenant> tenant,
                         caf::actor tenant_actor, caf::actor outbox) {
  const auto sid = record.call_sid;
  self->state.fsm = std::make_unique<call_fsm>(std::move(record), svc->timing);
  auto now = [svc] { return svc->clock->now(); };
  auto apply = [=](const call_effects& fx) {
    auto& fsm = *self->state.fsm;
    const auto& rec = fsm.record();
    if (!fx.note.empty())
      engine::log_info("call", sid + ": " + fx.note);
    if (fx.persist)
      svc->store->post([rec](engine::store& db) { db.update_call(rec); },
                       [sid](const std::string& error) {
                         if (!error.empty())
                           engine::log_error("call", sid + ": saving failed: "
                                                       + error);
                       });
    if (fx.arm_timer)
      self->send(tenant_actor, arm_atom_v, sid, rec.fallback_at);
    if (fx.query_carrier) {
      auto me = caf::actor{self};
      svc->carrier->post([me, sid](engine::carrier& c) {
        caf::anon_send(me, report_atom_v, c.fetch_call(sid));
      });
    }
    if (fx.decide) {
      auto decided = fsm.pending_outcome();
      std::vector<engine::message_record> messages;
      if (*fx.decide == call_phase::missed && svc->run_workflows) {
        messages = svc->run_workflows("call.missed", decided, *tenant);
        for (auto& m : messages) {
          m.tenant_id = decided.tenant_id;
          m.call_sid = sid;
          m.node_id = svc->node_id;
          m.state = engine::message_state::queued;
          m.created_at = m.updated_at = now();
        }
      }
      claim_outcome(caf::actor{self}, svc, std::move(decided),
                    std::move(messages));
    }
    if (fx.finished && !self->state.finishing) {
      self->state.finishing = true;
      self->send(tenant_actor, finished_atom_v, sid);
    }
  };
  apply(self->state.fsm->resume(now()));
  return {
    [=](event_atom, const engine::inbound_event& ev,
        const std::shared_ptr<engine::voice_reply>& reply) {
      auto& fsm = *self->state.fsm;
      using kind = engine::inbound_event::kind;
      switch (ev.what) {
        case kind::call_incoming: {
          // Also for a carrier retry of the incoming webhook: same answer.
          if (reply) {
            engine::voice_answer a;
            a.what = engine::voice_answer::kind::dial;
            a.numbers = {fsm.record().owner_phone};
            a.timeout = std::chrono::duration_cast<std::chrono::seconds>(
              svc->timing.ring_timeout);
            a.action_url = svc->public_url + "/webhooks/twilio/voice/dial-result";
            reply->answer(a);
          }
          break;
        }
        case kind::dial_result:
          apply(fsm.on_dial_result(ev.status, ev.duration, now()));
          break;
        case kind::call_status:
          apply(fsm.on_call_status(ev.status, now()));
          break;
        case kind::sms:
          break;
      }
    },
    [=](fallback_atom) { apply(self->state.fsm->on_fallback_due(now())); },
    [=](report_atom, const engine::call_report& report) {
      apply(self->state.fsm->on_carrier_report(report, now()));
    },
    [=](decided_atom, claim_result result, const std::vector<std::int64_t>& ids) {
      if (result == claim_result::won && !ids.empty())
        self->send(outbox, send_atom_v, ids);
      apply(self->state.fsm->on_decided(result, now()));
    },
    [=](release_atom) { self->quit(); },
  };
}

} // namespace ringback::actors
