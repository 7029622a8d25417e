#include "ringback/actors/event_sink.hpp"

#include "ringback/actors/messages.hpp"
#include "ringback/engine/log.hpp"
#include "ringback/engine/messaging.hpp"

#include <utility>

namespace ringback::actors {

std::string dedup_key(const engine::inbound_event& ev) {
  return "ringback:wh:" + ev.sid + ':' + engine::to_string(ev.what) + ':'
         + ev.status;
}

std::string help_reply(const engine::tenant& t) {
  if (!t.help_text.empty())
    return t.help_text;
  std::string out = (t.name.empty() ? t.id : t.name)
                    + ": reply STOP to stop these texts, START to get them "
                      "again.";
  if (!t.numbers.empty())
    out += " Questions? Call " + t.numbers.front().number + ".";
  return out;
}

actor_event_sink::actor_event_sink(
  services_ptr svc, std::unordered_map<std::string, caf::actor> tenants,
  caf::actor outbox)
  : svc_(std::move(svc)), tenants_(std::move(tenants)),
    outbox_(std::move(outbox)) {
  // nop
}

namespace {

/// What handling one inbound message did (filled by the store job, read by
/// its completion).
struct inbound_outcome {
  bool first = false;
  engine::keyword_match keyword;
  bool ledger_changed = false;
  bool opted_out = false; ///< the ledger's value after the message
  std::vector<engine::message_record> replies;
};

/// A callback's dedup check, then its audit row, then (first time only) the
/// tenant: on the kv pool's thread, or inline with a non-blocking kv.
void dedup_callback(const services& svc, engine::kv& kv,
                    const caf::actor& tenant, engine::inbound_event ev,
                    std::shared_ptr<engine::voice_reply> reply) {
  bool first = true;
  try {
    first = kv.set_if_absent(dedup_key(ev), svc.node_id, svc.dedup_ttl);
  } catch (const std::exception& e) {
    // Fail open: the call's state machine ignores repeats by itself.
    engine::log_warn("ingress", std::string{"dedup unavailable: "} + e.what());
  }
  ev.raw.duplicate = !first;
  svc.store->post(
    [raw = ev.raw](engine::store& db) { db.insert_webhook(raw); });
  if (!first) {
    engine::log_info("ingress", std::string{engine::to_string(ev.what)} + " "
                                  + ev.status + " for " + ev.sid
                                  + " is a duplicate, ignored");
    return;
  }
  caf::anon_send(tenant, event_atom_v, std::move(ev), std::move(reply));
}

/// The compliance reply to a keyword, or "" for none.
std::string compliance_text(const engine::tenant& t,
                            const engine::keyword_match& k) {
  switch (k.kind) {
    case engine::keyword_kind::help:
      return help_reply(t);
    case engine::keyword_kind::opt_out:
      return t.stop_reply;
    case engine::keyword_kind::opt_in:
      return t.start_reply;
    case engine::keyword_kind::none:
      break;
  }
  return {};
}

} // namespace

void actor_event_sink::deliver_sms(
  const caf::actor& tenant, engine::inbound_event ev,
  std::shared_ptr<engine::voice_reply> stored) {
  const std::string tenant_id = ev.raw.tenant_id;
  engine::inbound_message m{ev.sid, tenant_id, ev.from, ev.to, ev.body,
                            ev.raw.received_at};
  m.node_id = svc_->node_id;
  // A keyword is handled here, in the row's own transaction; any other text
  // waits for its consumers (the conversations, the runs), each of which
  // clears its bit when its part is stored: the tenant hands what is still
  // pending to them again on start.
  const auto keyword = engine::classify_keyword(m.body);
  if (keyword.kind == engine::keyword_kind::none)
    m.pending = engine::inbound_all_consumers;
  auto info = svc_->numbers ? svc_->numbers->find(tenant_id) : nullptr;
  auto out = std::make_shared<inbound_outcome>();
  auto svc = svc_;
  auto node = svc_->node_id;
  // Ahead of the store's queue, like the outbox's claims: a STOP recorded
  // here is in the ledger before any claim posted after it reads the
  // ledger, and a keyword's answer or a relayed reply does not wait behind
  // a backlog of audit rows.
  svc_->store->post_ahead(
    [m, keyword, out, info, svc, node](engine::store& db) {
      *out = inbound_outcome{};
      out->first = db.insert_inbound(m);
      if (!out->first)
        return;
      db.touch_contact(m.tenant_id, m.from, m.received_at);
      out->keyword = keyword;
      if (out->keyword.kind == engine::keyword_kind::none)
        return;
      if (out->keyword.kind != engine::keyword_kind::help) {
        auto t = save_ledger(
          db, engine::apply_keyword(ledger_entry(db, m.tenant_id, m.from),
                                    out->keyword, m.received_at));
        out->ledger_changed = t.changed;
        out->opted_out = t.state.opted_out;
      }
      if (!info)
        return;
      auto text = compliance_text(*info->tenant, out->keyword);
      if (text.empty())
        return;
      engine::message_record r;
      r.tenant_id = m.tenant_id;
      r.purpose = std::string{"compliance/"} + std::string{out->keyword.keyword};
      r.from = m.to; // the number the customer texted
      r.to = m.from;
      r.body = std::move(text);
      r.kind = engine::send_kind::compliance;
      r.urgent = true;
      r.node_id = node;
      r.created_at = r.updated_at = m.received_at;
      gate_message(db, r, *info, svc->numbers.get(), m.received_at);
      r.id = db.insert_message(r);
      out->replies.push_back(std::move(r));
    },
    [svc, tenant, out, outbox = outbox_, ev = std::move(ev),
     stored = std::move(stored)](const std::string& error) mutable {
      if (!error.empty()) {
        // Not answered: the webhook's deadline answers 503.
        engine::log_error("ingress", "storing sms " + ev.sid
                                       + " failed: " + error);
        return;
      }
      // The row is committed (a retry's too, earlier): the webhook's 200
      // may go.
      if (stored)
        stored->answer(engine::voice_answer{});
      if (!out->first) {
        engine::log_info("ingress", "sms " + ev.sid
                                      + " is a carrier retry, ignored");
        return;
      }
      const auto& tenant_id = ev.raw.tenant_id;
      svc->metrics->inbound_message(tenant_id,
                                    engine::to_string(out->keyword.kind));
      if (out->keyword.kind == engine::keyword_kind::none) {
        caf::anon_send(tenant, event_atom_v, std::move(ev),
                       std::shared_ptr<engine::voice_reply>{});
        return;
      }
      engine::log_info("ingress",
                       "sms " + ev.sid + " from " + ev.from + " is "
                         + std::string{out->keyword.keyword}
                         + (out->ledger_changed
                              ? (out->opted_out ? ": opted out of "
                                                : ": opted back in to ")
                                  + tenant_id + "'s texts"
                              : std::string{": nothing to change"}));
      if (out->ledger_changed)
        svc->metrics->opt_out_changed(tenant_id, out->opted_out, "keyword");
      if (!out->replies.empty() && outbox)
        caf::anon_send(outbox, send_atom_v, out->replies);
    });
}

void actor_event_sink::deliver_status(const std::string& tenant_id,
                                      engine::inbound_event ev) {
  auto state = engine::message_state_from_twilio(ev.status);
  svc_->store->post([raw = ev.raw](engine::store& db) {
    db.insert_webhook(raw);
  });
  if (!state) {
    engine::log_info("ingress", "delivery report " + ev.sid + " with status '"
                                  + ev.status + "' ignored");
    return;
  }
  engine::status_report r;
  r.message_sid = ev.sid;
  r.carrier_status = ev.status;
  r.state = *state;
  r.error_code = ev.error_code;
  r.error_message = ev.body;
  r.at = ev.raw.received_at;
  auto result = std::make_shared<engine::status_report_result>();
  auto opted = std::make_shared<bool>(false);
  auto svc = svc_;
  svc_->store->post(
    [r, result, opted, tenant_id](engine::store& db) {
      *result = db.record_status(r);
      *opted = false;
      if (!result->known || !engine::means_opted_out(r.error_code))
        return;
      const auto& m = *result->message;
      *opted = save_ledger(db, engine::apply_carrier_error(
                                 ledger_entry(db, m.tenant_id, m.to),
                                 r.error_code, r.at))
                 .changed;
    },
    [svc, r, result, opted, tenant_id](const std::string& error) {
      if (!error.empty()) {
        engine::log_error("ingress", "delivery report " + r.message_sid
                                       + " failed: " + error);
        return;
      }
      if (!result->known) {
        svc->metrics->status_report("unknown");
        engine::log_warn("ingress", "delivery report for unknown message "
                                      + r.message_sid + " (" + r.carrier_status
                                      + "): kept, applied if it turns up");
        return;
      }
      if (!result->applied) {
        svc->metrics->status_report("stale");
        return;
      }
      svc->metrics->status_report("applied");
      const auto& m = *result->message;
      if (m.state == engine::message_state::delivered)
        svc->metrics->message_delivered(m.tenant_id, m.from);
      else if (m.state == engine::message_state::undelivered
               || m.state == engine::message_state::failed)
        svc->metrics->message_undelivered(m.tenant_id, m.from, r.error_code);
      if (*opted)
        svc->metrics->opt_out_changed(m.tenant_id, true, "carrier");
      if (m.state == engine::message_state::undelivered
          || m.state == engine::message_state::failed)
        engine::log_warn("ingress",
                         "message " + std::to_string(m.id) + " to " + m.to
                           + " " + r.carrier_status
                           + (r.error_code != 0
                                ? ": " + engine::describe_carrier_error(r.error_code)
                                : std::string{}));
    });
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
  if (ev.raw.tenant_id.empty())
    ev.raw.tenant_id = tenant_id;
  if (ev.what == kind::sms_status) {
    deliver_status(tenant_id, std::move(ev));
    return;
  }
  if (ev.what == kind::call_incoming || ev.what == kind::sms) {
    // The incoming call's answer must not wait for the kv; a retry of it is
    // idempotent anyway (one call per CallSid). An SMS is handled once per
    // MessageSid: the store's insert decides.
    svc_->store->post([raw = ev.raw](engine::store& db) {
      db.insert_webhook(raw);
    });
    if (ev.what == kind::sms) {
      deliver_sms(tenant, std::move(ev), std::move(reply));
      return;
    }
    caf::anon_send(tenant, event_atom_v, std::move(ev), std::move(reply));
    return;
  }
  // Callbacks: a carrier retry (same CallSid, kind and status) is handled
  // once, whichever process it reaches.
  if (inline_kv_ != nullptr) {
    dedup_callback(*svc_, *inline_kv_, tenant, std::move(ev), std::move(reply));
    return;
  }
  auto svc = svc_;
  svc_->kv->post([svc, tenant, ev = std::move(ev),
                  reply = std::move(reply)](engine::kv& kv) mutable {
    dedup_callback(*svc, kv, tenant, std::move(ev), std::move(reply));
  });
}

void actor_event_sink::record_unrouted(engine::webhook_record raw) {
  svc_->store->post([raw = std::move(raw)](engine::store& db) {
    db.insert_webhook(raw);
  });
}

} // namespace ringback::actors
