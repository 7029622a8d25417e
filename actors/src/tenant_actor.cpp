#include "ringback/actors/tenant_actor.hpp"

#include "ringback/actors/call_actor.hpp"
#include "ringback/actors/conversations_actor.hpp"
#include "ringback/actors/runs_actor.hpp"
#include "ringback/engine/log.hpp"

#include <algorithm>
#include <optional>

namespace ringback::actors {

namespace {

using engine::call_record;
using engine::inbound_event;
using state_t = caf::stateful_actor<tenant_state>;

/// A crashing call is restored this many times, then left to the store.
constexpr int max_restarts = 3;

/// How far back a start looks for inbound texts whose parts were never
/// stored (a consumer that kept failing leaves its text pending: this bounds
/// how long it is retried).
constexpr engine::epoch_ms inbound_horizon = 24 * 3600 * 1000;

/// Most pending texts handed on per start.
constexpr std::size_t inbound_limit = 100'000;

/// Creates the call (incoming) or loads it (any other event) in the store and
/// reports `(loaded_atom, sid, records, error, created)` back.
void create_or_load(state_t* self, const services_ptr& svc,
                    std::optional<call_record> fresh, const std::string& sid,
                    const std::string& tenant_id, bool with_runs,
                    bool urgent = false) {
  auto found = std::make_shared<std::vector<call_record>>();
  auto created = std::make_shared<bool>(false);
  auto runs = std::make_shared<std::shared_ptr<const stored_incoming>>();
  auto me = caf::actor{self};
  // `urgent`: ahead of the store's queued writes. Only when no write of this
  // call can be queued: a new call, or one whose actor left (finished or
  // passivated) after all its writes were acknowledged.
  auto post = urgent ? &engine::store_queue::post_urgent
                     : &engine::store_queue::post;
  (svc->store->*post)(
    [fresh, sid, found, created, runs, svc, tenant_id,
     with_runs](engine::store& db) {
      found->clear();
      *created = false;
      runs->reset();
      if (fresh && db.insert_call(*fresh)) {
        found->push_back(*fresh);
        *created = true;
        return;
      }
      if (auto rec = db.find_call(sid)) {
        found->push_back(std::move(*rec));
        if (!with_runs)
          return;
        // In the same job: a loaded call's callback (a passivated call's dial
        // result, say) then costs one store round trip, not two.
        *runs = std::make_shared<const stored_incoming>(
          load_stored_incoming(db, *svc, tenant_id, sid));
      }
    },
    [me, sid, found, created, runs](const std::string& error) {
      caf::anon_send(me, loaded_atom_v, sid, *found, error, *created, *runs);
    });
}

/// Schedules a `wake_atom` for the earliest deadline of either queue (the
/// calls' timers and the passivation deadlines) unless one is due sooner.
/// Like `schedule_wake` (wake.hpp), which knows one queue only.
void schedule_tenant_wake(state_t* self, const services_ptr& svc) {
  auto& st = self->state;
  auto next = st.timers.next();
  if (auto idle = st.idle.next(); idle && (!next || *idle < *next))
    next = idle;
  if (!next)
    return;
  auto now = svc->clock->now();
  if (st.wake_at != 0 && st.wake_at <= *next && st.wake_at >= now)
    return;
  st.wake_at = *next;
  if (*next <= now) {
    // Due already (a reloaded call's past deadline): now, not at the
    // clock's next tick.
    self->send(self, wake_atom_v);
    return;
  }
  self->delayed_send(self,
                     std::chrono::milliseconds{
                       std::max<engine::epoch_ms>(0, *next - now)},
                     wake_atom_v);
}

/// Hands a call actor a message of the tenant's (counted for passivation:
/// whatever was forwarded cancels a pending passivation).
template <class... Ts>
void forward(state_t* self, const std::string& sid, live_call& call,
             Ts&&... xs) {
  ++call.forwarded;
  self->state.idle.cancel(sid);
  self->send(call, std::forward<Ts>(xs)...);
}

/// Lets a quiescent call actor go: it has handled all the tenant forwarded
/// and holds nothing the store does not have. Its timer stays armed.
void passivate(state_t* self,
               std::unordered_map<std::string, live_call>::iterator i) {
  auto& st = self->state;
  self->demonitor(i->second.address()); // it quits normally: no down_msg
  self->send(i->second, release_atom_v);
  st.idle.cancel(i->first);
  st.restarts.erase(i->first);
  st.calls.erase(i);
  ++st.passivated;
}

} // namespace

caf::behavior tenant_actor(state_t* self,
                           std::shared_ptr<const engine::tenant> tenant,
                           services_ptr svc, caf::actor outbox) {
  const std::string component = "tenant " + tenant->id;
  auto info = tenant_info::make(tenant);
  auto runs = self->spawn<caf::linked>(runs_actor, info, svc, outbox);
  self->state.runs = runs;
  auto conversations
    = self->spawn<caf::linked>(conversations_actor, info, svc, runs, outbox);
  self->state.conversations = conversations;
  // One for all the tenant's calls: a call actor holds this pointer, not
  // copies of what it points to.
  auto shared
    = std::make_shared<const call_shared>(call_shared{svc, info, outbox, runs});
  auto spawn_call = [=](call_record rec, bool created,
                        std::shared_ptr<const stored_incoming> runs) {
    auto sid = rec.call_sid;
    auto call = self->spawn(call_actor, std::move(rec), shared,
                            caf::actor{self}, created, std::move(runs));
    self->monitor(call);
    self->state.calls.insert_or_assign(sid, live_call{call});
    return call;
  };
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& calls = self->state.calls;
    auto i = std::find_if(calls.begin(), calls.end(), [&](const auto& kv) {
      return kv.second.address() == dm.source;
    });
    if (i == calls.end())
      return; // died after it was let go (a released actor is demonitored)
    auto sid = i->first;
    calls.erase(i);
    self->state.idle.cancel(sid);
    if (++self->state.restarts[sid] > max_restarts) {
      engine::log_error(component, sid + ": call actor keeps failing ("
                                     + to_string(dm.reason)
                                     + "), leaving it to the store");
      self->state.timers.cancel(sid);
      return;
    }
    engine::log_warn(component, sid + ": call actor died ("
                                  + to_string(dm.reason)
                                  + "), restoring it from the store");
    ++self->state.restored;
    self->state.loading[sid]; // queue events until it is back
    create_or_load(self, svc, std::nullopt, sid, tenant->id, false);
  });
  return {
    [=](event_atom, inbound_event& ev,
        std::shared_ptr<engine::voice_reply>& reply) {
      auto& st = self->state;
      using kind = inbound_event::kind;
      if (ev.what == kind::sms) {
        // Every text goes to the conversations and to the workflows (runs
        // waiting for a reply from the sender; sms.received, which the runs
        // actor does not start for the owner's own texts).
        self->send(runs, event_atom_v, ev, reply);
        self->send(conversations, event_atom_v, std::move(ev),
                   std::move(reply));
        return;
      }
      if (ev.what == kind::transcription) {
        std::int32_t ordinal = -1;
        try {
          ordinal = std::stoi(ev.step);
        } catch (const std::exception&) {
          engine::log_warn(component, ev.sid + ": transcription without a "
                                               "step; ignored");
          return;
        }
        workflows::context extra{
          {"voicemail.transcription", workflows::value{ev.body}},
          {"voicemail.transcription_status", workflows::value{ev.status}},
        };
        self->send(runs, entry_atom_v, ev.sid, ordinal, std::move(extra));
        return;
      }
      if (auto i = st.calls.find(ev.sid); i != st.calls.end()) {
        forward(self, i->first, i->second, event_atom_v, std::move(ev),
                std::move(reply));
        return;
      }
      if (auto i = st.loading.find(ev.sid); i != st.loading.end()) {
        i->second.emplace_back(std::move(ev), std::move(reply));
        return;
      }
      std::optional<call_record> fresh;
      if (ev.what == inbound_event::kind::call_incoming) {
        engine::log_info(component, ev.sid + ": incoming call from " + ev.from
                                      + " to " + ev.to);
        fresh = engine::call_fsm::begin(ev.sid, tenant->id, ev.from, ev.to,
                                        tenant->owner_phone, svc->node_id,
                                        svc->clock->now(), svc->timing);
      }
      auto sid = ev.sid;
      // The voice callbacks (and a carrier retry of the incoming webhook)
      // resume or replay the call's incoming run: read it with the call.
      const bool with_runs = ev.what != inbound_event::kind::call_status;
      st.loading[sid].emplace_back(std::move(ev), std::move(reply));
      // Urgent, ahead of the store's queue of writes, so that the answer to
      // an incoming call never waits behind a backlog: a new call's insert
      // needs no queued write, and a call without an actor here left only
      // once its writes were committed (finished or passivated; a crashed
      // actor's call is reloaded by the down handler, in order).
      create_or_load(self, svc, std::move(fresh), sid, tenant->id, with_runs,
                     true);
    },
    [=](loaded_atom, const std::string& sid, std::vector<call_record>& found,
        const std::string& error, bool created,
        std::shared_ptr<const stored_incoming>& runs) {
      auto& st = self->state;
      auto pending = std::move(st.loading[sid]);
      st.loading.erase(sid);
      if (!error.empty())
        engine::log_error(component, sid + ": store failed: " + error);
      if (found.empty()) {
        // Not stored (store down) or unknown. An incoming call still gets its
        // actor so the caller is served; anything else has nothing to act on.
        auto incoming = std::find_if(pending.begin(), pending.end(), [](auto& p) {
          return p.first.what == inbound_event::kind::call_incoming;
        });
        if (incoming == pending.end()) {
          engine::log_warn(component,
                           sid
                             + (pending.empty()
                                  ? ": timer of a call the store does not have"
                                  : ": event for an unknown call dropped"));
          return;
        }
        const auto& ev = incoming->first;
        found.push_back(engine::call_fsm::begin(
          ev.sid, tenant->id, ev.from, ev.to, tenant->owner_phone,
          svc->node_id, svc->clock->now(), svc->timing));
        created = true;
      }
      spawn_call(std::move(found.front()), created,
                 created ? nullptr : std::move(runs));
      auto i = st.calls.find(sid);
      for (auto& [ev, reply] : pending)
        forward(self, sid, i->second, event_atom_v, std::move(ev),
                std::move(reply));
    },
    [=](arm_atom, const std::string& sid, engine::epoch_ms at) {
      if (at == 0) {
        self->state.timers.cancel(sid);
        return;
      }
      self->state.timers.arm(sid, at);
      schedule_tenant_wake(self, svc);
    },
    [=](wake_atom) {
      auto& st = self->state;
      st.wake_at = 0;
      auto now = svc->clock->now();
      for (auto& sid : st.timers.pop_due(now)) {
        if (auto i = st.calls.find(sid); i != st.calls.end()) {
          forward(self, sid, i->second, fallback_atom_v);
          continue;
        }
        // Being loaded: the new actor's `call_fsm::resume` re-arms the timer
        // (a past deadline fires at once).
        if (st.loading.count(sid) > 0)
          continue;
        // Passivated: reload the call the same way.
        st.loading[sid];
        create_or_load(self, svc, std::nullopt, sid, tenant->id, false, true);
      }
      for (auto& sid : st.idle.pop_due(now))
        if (auto i = st.calls.find(sid); i != st.calls.end())
          passivate(self, i);
      schedule_tenant_wake(self, svc);
    },
    [=](passivate_atom, const std::string& sid, std::uint32_t handled) {
      auto& st = self->state;
      auto i = st.calls.find(sid);
      if (i == st.calls.end() || i->second.address() != self->current_sender()
          || !svc->passivate_after)
        return;
      // Something is on its way to the actor: it asks again once it has
      // handled it, so nothing forwarded is ever lost with the actor.
      if (i->second.forwarded != handled)
        return;
      if (svc->passivate_after->count() <= 0) {
        passivate(self, i);
        return;
      }
      // "Idle for passivate_after" without a CAF timer per call (a pending
      // delayed message costs memory per call and keeps the actor alive): a
      // second deadline queue, cancelled by whatever is forwarded to the
      // call. The existing wake-ups (the calls' fallback timers) come too
      // rarely to serve: minutes apart when calls ring long.
      st.idle.arm(sid, svc->clock->now() + svc->passivate_after->count());
      schedule_tenant_wake(self, svc);
    },
    [=](finished_atom, const std::string& sid) {
      auto& st = self->state;
      auto i = st.calls.find(sid);
      if (i == st.calls.end()
          || i->second.address() != self->current_sender())
        return;
      // Events forwarded before this point are ahead of the release in the
      // call's mailbox, so nothing is lost; later ones reload the call.
      self->demonitor(i->second.address()); // it quits normally: no down_msg
      self->send(i->second, release_atom_v);
      st.calls.erase(i);
      st.timers.cancel(sid);
      st.idle.cancel(sid);
      st.restarts.erase(sid);
    },
    [=](recover_atom) {
      self->send(runs, recover_atom_v);
      self->send(conversations, recover_atom_v);
      auto found = std::make_shared<std::vector<call_record>>();
      auto me = caf::actor{self};
      auto orphaned_before = svc->clock->now() - svc->adopt_after.count();
      auto tenant_id = tenant->id;
      // Inbound texts stored (and answered) whose conversation or runs part
      // was not: a crash in between. Handed to the consumers still to store
      // theirs; each stores its part once (`consume_inbound`), so a text
      // another process is handling meanwhile is not handled twice.
      auto texts = std::make_shared<std::vector<engine::inbound_message>>();
      auto since = svc->clock->now() - inbound_horizon;
      svc->store->post(
        [texts, svc, tenant_id, since, orphaned_before](engine::store& db) {
          *texts = db.pending_inbound(tenant_id, svc->node_id, since,
                                      orphaned_before, inbound_limit);
          // This process's own texts, received since it started, are in
          // its consumers' hands already.
          if (svc->started_at > 0)
            texts->erase(std::remove_if(texts->begin(), texts->end(),
                                        [&](const auto& m) {
                                          return m.node_id == svc->node_id
                                                 && m.received_at
                                                      >= svc->started_at;
                                        }),
                         texts->end());
        },
        [me, texts](const std::string& error) {
          if (!error.empty()) {
            engine::log_error("tenant",
                              "recovering inbound texts failed: " + error);
            return;
          }
          if (!texts->empty())
            caf::anon_send(me, recover_atom_v, *texts);
        });
      svc->store->post(
        [found, svc, orphaned_before, tenant_id](engine::store& db) {
          found->clear();
          for (auto& rec : db.unfinished_calls(svc->node_id, orphaned_before))
            if (rec.tenant_id == tenant_id)
              found->push_back(std::move(rec));
        },
        [me, found](const std::string& error) {
          if (!error.empty())
            engine::log_error("tenant", "recovering calls failed: " + error);
          caf::anon_send(me, recover_atom_v, *found);
        });
    },
    [=](recover_atom, std::vector<call_record>& found) {
      for (auto& rec : found) {
        if (self->state.calls.count(rec.call_sid) > 0
            || self->state.loading.count(rec.call_sid) > 0)
          continue;
        engine::log_info(component, rec.call_sid + ": resumed after restart");
        ++self->state.restored;
        spawn_call(std::move(rec), false, nullptr);
      }
    },
    [=](recover_atom, std::vector<engine::inbound_message>& texts) {
      self->state.texts_handed_on += texts.size();
      engine::log_info(component,
                       std::to_string(texts.size())
                         + " inbound texts handed on again after a restart");
      for (auto& m : texts) {
        inbound_event ev;
        ev.what = inbound_event::kind::sms;
        ev.sid = m.message_sid;
        ev.from = m.from;
        ev.to = m.to;
        ev.body = m.body;
        ev.raw.tenant_id = m.tenant_id;
        ev.raw.kind = "sms";
        ev.raw.call_sid = m.message_sid;
        ev.raw.received_at = m.received_at;
        if ((m.pending & engine::inbound_runs) != 0)
          self->send(runs, event_atom_v, ev,
                     std::shared_ptr<engine::voice_reply>{});
        if ((m.pending & engine::inbound_conversations) != 0)
          self->send(conversations, event_atom_v, std::move(ev),
                     std::shared_ptr<engine::voice_reply>{});
      }
    },
    [=](stats_atom) {
      const auto& st = self->state;
      return tenant_stats{st.calls.size(),  st.loading.size(),
                          st.timers.size(), st.restored,
                          st.passivated,    st.texts_handed_on};
    },
  };
}

} // namespace ringback::actors
