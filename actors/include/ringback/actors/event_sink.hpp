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
/// Called from HTTP threads; never blocks.
class actor_event_sink final : public engine::event_sink {
public:
  actor_event_sink(services_ptr svc,
                   std::unordered_map<std::string, caf::actor> tenants);

  void deliver(const std::string& tenant_id, engine::inbound_event ev,
               std::shared_ptr<engine::voice_reply> reply) override;

  void record_unrouted(engine::webhook_record raw) override;

private:
  services_ptr svc_;
  std::unordered_map<std::string, caf::actor> tenants_;
};

/// The kv key that makes a callback "handled once".
std::string dedup_key(const engine::inbound_event& ev);

} // namespace ringback::actors
