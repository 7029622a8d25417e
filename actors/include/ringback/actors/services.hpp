#pragma once

#include "ringback/engine/call_fsm.hpp"
#include "ringback/engine/executors.hpp"
#include "ringback/engine/ports.hpp"
#include "ringback/engine/records.hpp"
#include "ringback/engine/retry_policy.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ringback::actors {

/// Runs the workflows of a trigger for a call and returns the messages they
/// want sent (not yet stored). Pure and fast: called on an actor's thread.
using workflow_runner = std::function<std::vector<engine::message_record>(
  std::string_view trigger, const engine::call_record& call,
  const engine::tenant& tenant)>;

/// Everything the actors reach outside themselves. Owned by the composition
/// root, which outlives the actor system; actors hold a shared_ptr to const.
struct services {
  engine::store_queue* store = nullptr;
  engine::job_queue<engine::kv>* kv = nullptr;
  engine::job_queue<engine::carrier>* carrier = nullptr;
  const engine::clock* clock = nullptr;
  workflow_runner run_workflows;
  std::string node_id;
  std::string public_url;
  engine::call_timing timing;
  engine::retry_policy retry;
  /// How long an outcome claim in the kv outlives its owner.
  std::chrono::milliseconds claim_ttl{std::chrono::minutes{10}};
  /// How long a webhook is remembered for dedup.
  std::chrono::milliseconds dedup_ttl{std::chrono::hours{24}};
  /// Calls whose fallback is overdue by this much are adopted from a process
  /// that did not come back.
  std::chrono::milliseconds adopt_after{std::chrono::minutes{2}};
};

using services_ptr = std::shared_ptr<const services>;

} // namespace ringback::actors
