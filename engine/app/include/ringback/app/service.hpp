#pragma once

#include "ringback/app/config.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace ringback::app {

/// The running service: store, kv, carrier client, actors and HTTP ingress,
/// wired from a config. The composition root of ringback.
class service {
public:
  explicit service(config cfg);
  ~service();

  service(const service&) = delete;
  service& operator=(const service&) = delete;

  /// Loads the workflows, migrates the store, spawns the actors, resumes the
  /// unfinished calls and messages and starts listening. Returns an error
  /// message (and starts nothing) when any of it fails.
  std::optional<std::string> start();

  /// The port the HTTP ingress listens on (after `start`).
  std::uint16_t port() const;

  /// Reloads the workflows folder (SIGHUP): a valid new version replaces the
  /// old one atomically; an invalid one is logged and the old one kept.
  /// Returns true if the new version was taken.
  bool reload_workflows();

  /// Stops accepting requests, lets the actors finish, flushes the store.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// `ringback serve --config FILE`: runs until SIGINT or SIGTERM; SIGHUP
/// reloads the workflows.
int serve_main(const std::string& config_path);

} // namespace ringback::app
