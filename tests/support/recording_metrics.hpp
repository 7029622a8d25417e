#pragma once

#include "ringback/engine/metrics.hpp"

#include <map>
#include <mutex>
#include <string>

namespace ringback::testkit {

/// Counts every metrics call under a readable key, e.g.
/// "sent acme +15005550001", "refused acme opted_out", "retried acme
/// +15005550001 429", "failed acme +15005550001 21610", "opt_out acme
/// carrier", "opt_in acme keyword", "inbound acme help", "status applied".
/// Gauges keep their last value under "depth <tenant> <number>" and
/// "conversation_actors <tenant>".
class recording_metrics final : public engine::metrics {
public:
  void message_queued(std::string_view t, std::string_view n) override {
    add("queued", t, n);
  }
  void message_sent(std::string_view t, std::string_view n) override {
    add("sent", t, n);
  }
  void message_retried(std::string_view t, std::string_view n,
                       std::string_view reason) override {
    add("retried", t, n, reason);
  }
  void message_failed(std::string_view t, std::string_view n,
                      int code) override {
    add("failed", t, n, std::to_string(code));
  }
  void message_delivered(std::string_view t, std::string_view n) override {
    add("delivered", t, n);
  }
  void message_undelivered(std::string_view t, std::string_view n,
                           int code) override {
    add("undelivered", t, n, std::to_string(code));
  }
  void message_refused(std::string_view t, std::string_view reason) override {
    add("refused", t, reason);
  }
  void message_held(std::string_view t, std::string_view reason) override {
    add("held", t, reason);
  }
  void queue_depth(std::string_view t, std::string_view n,
                   std::size_t depth) override {
    std::lock_guard<std::mutex> guard{mtx_};
    counts_["depth " + std::string{t} + " " + std::string{n}]
      = static_cast<long>(depth);
  }
  void queue_wait(std::string_view t, std::string_view n, double) override {
    add("waited", t, n);
  }
  void inbound_message(std::string_view t, std::string_view keyword) override {
    add("inbound", t, keyword);
  }
  void opt_out_changed(std::string_view t, bool opted_out,
                       std::string_view source) override {
    add(opted_out ? "opt_out" : "opt_in", t, source);
  }
  void status_report(std::string_view result) override {
    add("status", result);
  }
  void conversation_event(std::string_view t, std::string_view event) override {
    add("conversation", t, event);
  }
  void ai_turn(std::string_view t, std::string_view provider, bool failed,
               std::int64_t, std::int64_t, double, double) override {
    add("ai", t, provider);
    if (failed)
      add("ai_error", t);
  }
  void conversation_actors(std::string_view t, std::size_t live) override {
    std::lock_guard<std::mutex> guard{mtx_};
    counts_["conversation_actors " + std::string{t}] = static_cast<long>(live);
  }
  void store_activity(std::string_view c,
                      const engine::store_activity& a) override {
    std::lock_guard<std::mutex> guard{mtx_};
    counts_["store_waiting " + std::string{c}]
      = static_cast<long>(a.urgent + a.ahead + a.queued);
  }
  std::string render() const override {
    std::lock_guard<std::mutex> guard{mtx_};
    std::string out;
    for (const auto& [k, v] : counts_)
      out += k + " = " + std::to_string(v) + "\n";
    return out;
  }

  /// The count (or gauge value) under `key`; 0 if never touched.
  long operator[](const std::string& key) const {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = counts_.find(key);
    return i == counts_.end() ? 0 : i->second;
  }

private:
  template <class... Ts>
  void add(std::string_view what, const Ts&... parts) {
    std::string key{what};
    ((key += " ", key += std::string_view{parts}), ...);
    std::lock_guard<std::mutex> guard{mtx_};
    ++counts_[key];
  }

  mutable std::mutex mtx_;
  std::map<std::string, long> counts_;
};

} // namespace ringback::testkit
