#include "ringback/actors/event_sink.hpp"

#include "ringback/actors/messages.hpp"
#include "ringback/engine/log.hpp"

#include <utility>

namespace ringback::actors {

std::string dedup_key(const engine::inbound_event& ev) {
  return "ringback:wh:" + ev.sid + ':' + engine::to_string(ev.what) + ':'
         + ev.status;
}

actor_event_sink::actor_event_sink(
  services_ptr svc, std::unordered_map<std::string, caf::actor> tenants)
  : svc_(std::move(svc)), tenants_(std::move(tenants)) {
  // nop
}

void actor_event_sink::deliver(const std::string& tenant_id,
                               engine::inbound_event ev,
                               std::shared_ptr<engine::voice_reply> reply) {
  auto i = tenants_.find(tenant_id);
  if (i == tenants_.end()) {
    engine::log_error("ingress", "no actor for tenant '" + tenant_id + "'");
    return;
  }
  auto tenant = i->second;
  using kind = engine::inbound_event::kind;
  if (ev.what == kind::call_incoming || ev.what == kind::sms) {
    // The incoming call's answer must not wait for the kv; a retry of it is
    // idempotent anyway (one call per CallSid). An SMS is handled once per
    // MessageSid: the store's insert decides.
    svc_->store->post([raw = ev.raw](engine::store& db) {
      db.insert_webhook(raw);
    });
    if (ev.what == kind::sms) {
      engine::inbound_message m{ev.sid, tenant_id, ev.from, ev.to, ev.body,
                                ev.raw.received_at};
      auto first = std::make_shared<bool>(false);
      svc_->store->post(
        [m, first](engine::store& db) {
          *first = db.insert_inbound(m);
          if (*first)
            db.touch_contact(m.tenant_id, m.from, m.received_at);
        },
        [tenant, first, ev = std::move(ev)](const std::string& error) mutable {
          if (!error.empty()) {
            engine::log_error("ingress", "storing sms " + ev.sid
                                           + " failed: " + error);
            return;
          }
          if (!*first) {
            engine::log_info("ingress", "sms " + ev.sid
                                          + " is a carrier retry, ignored");
            return;
          }
          caf::anon_send(tenant, event_atom_v, std::move(ev),
                         std::shared_ptr<engine::voice_reply>{});
        });
      return;
    }
    caf::anon_send(tenant, event_atom_v, std::move(ev), std::move(reply));
    return;
  }
  // Callbacks: a carrier retry (same CallSid, kind and status) is handled
  // once, whichever process it reaches.
  auto svc = svc_;
  svc_->kv->post([svc, tenant, ev = std::move(ev),
                  reply = std::move(reply)](engine::kv& kv) mutable {
    bool first = true;
    try {
      first = kv.set_if_absent(dedup_key(ev), svc->node_id, svc->dedup_ttl);
    } catch (const std::exception& e) {
      // Fail open: the call's state machine ignores repeats by itself.
      engine::log_warn("ingress", std::string{"dedup unavailable: "} + e.what());
    }
    ev.raw.duplicate = !first;
    svc->store->post([raw = ev.raw](engine::store& db) {
      db.insert_webhook(raw);
    });
    if (!first) {
      engine::log_info("ingress", std::string{engine::to_string(ev.what)} + " "
                                    + ev.status + " for " + ev.sid
                                    + " is a duplicate, ignored");
      return;
    }
    caf::anon_send(tenant, event_atom_v, std::move(ev), std::move(reply));
  });
}

void actor_event_sink::record_unrouted(engine::webhook_record raw) {
  svc_->store->post([raw = std::move(raw)](engine::store& db) {
    db.insert_webhook(raw);
  });
}

} // namespace ringback::actors
