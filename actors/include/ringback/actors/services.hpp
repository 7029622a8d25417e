#pragma once

#include "ringback/actors/runs.hpp"
#include "ringback/engine/call_fsm.hpp"
#include "ringback/engine/ai.hpp"
#include "ringback/engine/executors.hpp"
#include "ringback/engine/http_port.hpp"
#include "ringback/engine/metrics.hpp"
#include "ringback/engine/ports.hpp"
#include "ringback/engine/records.hpp"
#include "ringback/engine/retry_policy.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringback::actors {

/// Everything the actors reach outside themselves. Owned by the composition
/// root, which outlives the actor system; actors hold a shared_ptr to const.
struct services {
  engine::store_queue* store = nullptr;
  engine::job_queue<engine::kv>* kv = nullptr;
  engine::job_queue<engine::carrier>* carrier = nullptr;
  const engine::clock* clock = nullptr;
  /// The workflows to run; null: none (calls are forwarded, nothing more).
  std::shared_ptr<const workflow_source> workflows;
  /// Runs `http` steps; null: they fail with "no HTTP client".
  engine::job_queue<engine::http_fetcher>* http = nullptr;
  /// Answers `ai_reply` steps; null: the offline responder answers in the
  /// actor's own thread (it is cheap and pure).
  engine::job_queue<engine::ai_responder>* ai = nullptr;
  workflows::run_limits run_limits;
  std::string node_id;
  std::string public_url;
  /// The tenants and their business numbers (the pre-send gate, pacing);
  /// null: no number is refused for being one, and numbers pace at 1/s.
  std::shared_ptr<const tenant_directory> numbers;
  /// Where the actors count what they do (never null).
  std::shared_ptr<engine::metrics> metrics
    = std::make_shared<engine::null_metrics>();
  engine::call_timing timing;
  engine::retry_policy retry;
  /// How long an outcome claim in the kv outlives its owner.
  std::chrono::milliseconds claim_ttl{std::chrono::minutes{10}};
  /// How long a webhook is remembered for dedup.
  std::chrono::milliseconds dedup_ttl{std::chrono::hours{24}};
  /// Calls whose fallback is overdue by this much are adopted from a process
  /// that did not come back.
  std::chrono::milliseconds adopt_after{std::chrono::minutes{2}};
  /// When this process began taking requests (0: unknown). The inbound
  /// texts it stored since are being handled: a start hands on only texts
  /// of this node received before it.
  engine::epoch_ms started_at = 0;
  /// A ringing call's actor that has been quiescent this long is let go (0:
  /// at once); its tenant keeps the timer and its next event reloads it from
  /// the store. nullopt: never (`calls.passivate_after: off`).
  std::optional<std::chrono::milliseconds> passivate_after{
    std::chrono::seconds{10}};
};

using services_ptr = std::shared_ptr<const services>;

} // namespace ringback::actors
