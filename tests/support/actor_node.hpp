#pragma once

#include "ringback/actors/services.hpp"
#include "ringback/engine/executors.hpp"

#include <chrono>
#include <iterator>
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
/// `open()` runs them in the order `store_executor` would: the urgent ones,
/// then those posted ahead, then the rest, each lane in its posting order.
/// `open_ahead()` runs only the first two lanes: a store whose queue is
/// backed up behind them.
class gated_store_queue final : public engine::store_queue {
public:
  explicit gated_store_queue(engine::store& db) : inline_(db) {
    // nop
  }

  void post(work w, done d = nullptr) override {
    put(lane::queued, std::move(w), std::move(d));
  }

  void post_ahead(work w, done d = nullptr) override {
    put(lane::ahead, std::move(w), std::move(d));
  }

  void post_urgent(work w, done d = nullptr) override {
    put(lane::urgent, std::move(w), std::move(d));
  }

  void close() {
    open_ = false;
  }

  void open() {
    open_ = true;
    run(lane::queued);
  }

  /// Runs the urgent jobs and those posted ahead that are held now; what
  /// they post meanwhile is held again (the store stays closed).
  void open_ahead() {
    run(lane::ahead);
  }

  /// `open_ahead()`, then `run_actors()` (what those jobs lead to), until
  /// only queued jobs are held: the store stays behind its backlog. False
  /// if that does not settle.
  template <class F>
  bool drain_ahead(F run_actors) {
    for (int i = 0; i < 20 && held_ahead() > 0; ++i) {
      open_ahead();
      run_actors();
    }
    return held_ahead() == 0;
  }

  std::size_t held() const {
    return held_.size();
  }

  /// Held jobs posted urgent or ahead.
  std::size_t held_ahead() const {
    std::size_t n = 0;
    for (const auto& h : held_)
      n += h.where != lane::queued ? 1 : 0;
    return n;
  }

private:
  enum class lane { urgent, ahead, queued };

  struct held_job {
    lane where;
    work w;
    done d;
  };

  void put(lane where, work w, done d) {
    if (open_)
      inline_.post(std::move(w), std::move(d));
    else
      held_.push_back(held_job{where, std::move(w), std::move(d)});
  }

  /// Runs the held jobs of the lanes up to `last`, lane by lane.
  void run(lane last) {
    auto held = std::move(held_);
    held_.clear();
    std::vector<held_job> keep;
    for (auto l : {lane::urgent, lane::ahead, lane::queued})
      for (auto& h : held) {
        if (h.where != l)
          continue;
        if (l <= last)
          inline_.post(std::move(h.w), std::move(h.d));
        else
          keep.push_back(std::move(h));
      }
    // Kept ones go before anything posted while the others ran.
    keep.insert(keep.end(), std::make_move_iterator(held_.begin()),
                std::make_move_iterator(held_.end()));
    held_ = std::move(keep);
  }

  engine::inline_store_queue inline_;
  bool open_ = true;
  std::vector<held_job> held_;
};

} // namespace ringback::testkit
