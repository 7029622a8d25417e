#pragma once

#include "ringback/actors/services.hpp"
#include "ringback/engine/executors.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ringback::testkit {

/// The public URL every actor test's node answers at.
inline constexpr const char* test_public_url = "https://ringback.example.com";

/// The services of one ringback "process" in an actor test: its store, kv
/// and carrier queues, its clock and id, and the public URL. The test sets
/// what differs (timings, workflows, numbers, metrics, retry policy, ...)
/// before it hands the services to the actors.
inline std::shared_ptr<actors::services>
node_services(engine::store_queue& store, engine::job_queue<engine::kv>& kv,
              engine::job_queue<engine::carrier>& carrier,
              const engine::clock& clock, std::string node_id) {
  auto s = std::make_shared<actors::services>();
  s->store = &store;
  s->kv = &kv;
  s->carrier = &carrier;
  s->clock = &clock;
  s->node_id = std::move(node_id);
  s->public_url = test_public_url;
  return s;
}

/// The call timings the actor tests reason with: ring 20 s, fallback 10 s
/// after it, re-checks every 15 s.
inline void use_test_timing(actors::services& s) {
  using namespace std::chrono_literals;
  s.timing.ring_timeout = 20s;
  s.timing.fallback_grace = 10s;
  s.timing.recheck_interval = 15s;
}

/// Runs store jobs inline, or holds them while closed (a slow store) until
/// `open()` runs them in order.
class gated_store_queue final : public engine::store_queue {
public:
  explicit gated_store_queue(engine::store& db) : inline_(db) {
    // nop
  }

  void post(work w, done d = nullptr) override {
    if (open_)
      inline_.post(std::move(w), std::move(d));
    else
      held_.emplace_back(std::move(w), std::move(d));
  }

  void close() {
    open_ = false;
  }

  void open() {
    open_ = true;
    auto held = std::move(held_);
    held_.clear();
    for (auto& [w, d] : held)
      inline_.post(std::move(w), std::move(d));
  }

  std::size_t held() const {
    return held_.size();
  }

private:
  engine::inline_store_queue inline_;
  bool open_ = true;
  std::vector<std::pair<work, done>> held_;
};

} // namespace ringback::testkit
