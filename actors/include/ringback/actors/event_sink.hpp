#pragma once

#include "ringback/actors/services.hpp"
#include "ringback/engine/ingress.hpp"

#include <caf/all.hpp>

#include <string>
#include <unordered_map>

namespace ringback::actors {

/// The inbound port implemented with actors: records every webhook in the
/// store (batched), drops carrier retries of callbacks already handled (kv
/// dedup, shared across processes), and hands the rest to the tenant actor.
///
/// Inbound messages are stored once per MessageSid; STOP, START and HELP
/// (`classify_keyword`) update the tenant's opt-out ledger and get their
/// compliance reply (through the gate and the `outbox`), and start no
/// workflow; other messages go to the tenant. Delivery reports
/// (`sms_status`) are applied to the outbox's messages in the store, forward
/// only. Called from HTTP threads; never blocks on I/O.
///
/// A callback's dedup key goes through `svc->kv` (a worker pool: Redis blocks)
/// unless an inline kv was given (`set_inline_kv`): then it is checked on the
/// calling thread, which saves a thread hop per callback.
class actor_event_sink final : public engine::event_sink {
public:
  actor_event_sink(services_ptr svc,
                   std::unordered_map<std::string, caf::actor> tenants,
                   caf::actor outbox = {});

  /// Checks callbacks' dedup keys on the calling (HTTP) thread with `kv`
  /// instead of posting them to `svc->kv`. Only for a kv that never blocks on
  /// I/O and is thread-safe (the in-memory kv, whose one mutex is held for a
  /// map lookup); it must see the same keys as `svc->kv` and outlive the
  /// sink. Null: back to the pool. Call before the first `deliver`.
  void set_inline_kv(engine::kv* kv) noexcept {
    inline_kv_ = kv;
  }

  void deliver(const std::string& tenant_id, engine::inbound_event ev,
               std::shared_ptr<engine::voice_reply> reply) override;

  void record_unrouted(engine::webhook_record raw) override;

private:
  void deliver_sms(const caf::actor& tenant, engine::inbound_event ev,
                   std::shared_ptr<engine::voice_reply> stored);
  void deliver_status(const std::string& tenant_id, engine::inbound_event ev);

  services_ptr svc_;
  engine::kv* inline_kv_ = nullptr;
  std::unordered_map<std::string, caf::actor> tenants_;
  caf::actor outbox_;
};

/// The answer to HELP or INFO: the tenant's `help_text`, or "<name>: reply
/// STOP to stop these texts, START to get them again. Questions? Call
/// <first number>." when it has none.
std::string help_reply(const engine::tenant& t);

/// The kv key that makes a callback "handled once".
std::string dedup_key(const engine::inbound_event& ev);

} // namespace ringback::actors
