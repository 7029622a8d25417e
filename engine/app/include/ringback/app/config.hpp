#pragma once

#include "ringback/engine/records.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringback::app {

/// `host:port` to listen on.
struct listen_address {
  std::string host; ///< as written; an IPv6 address without its brackets
  std::uint16_t port = 0;

  /// "127.0.0.1:8080", "[::1]:8080".
  std::string to_string() const;
};

/// The `http:` section.
struct http_settings {
  int threads = 2;
  std::size_t max_body = std::size_t{64} * 1024; ///< bytes
  /// How long a voice webhook waits for the call actor before it answers
  /// with the safe default TwiML.
  std::chrono::milliseconds answer_deadline{2000};
};

/// The `twilio:` section.
struct twilio_settings {
  std::string api_url; ///< no trailing slash
  std::string account_sid;
  std::string auth_token; ///< secret: never log it
  /// Requests to the carrier's REST API under way at once (one blocking
  /// keep-alive connection per worker). At Twilio's 100-300 ms per request,
  /// 8 send ~30-80 texts/s: raise it for bursts.
  int connections = 8;
};

/// The `calls:` section.
struct call_settings {
  std::chrono::milliseconds ring_timeout{20000};
  std::chrono::milliseconds fallback_grace{10000};
  std::chrono::milliseconds recheck_interval{15000};
  /// `passivate_after`: a ringing call's actor quiescent this long is let go
  /// and reloaded from the store on its next event ("0s": at once); nullopt
  /// for `off` (keep every ringing call's actor in memory).
  std::optional<std::chrono::milliseconds> passivate_after{10000};
};

/// A validated configuration. Paths are absolute; URLs have no trailing
/// slash; phone numbers are E.164.
struct config {
  std::string source; ///< the file it came from, as given
  listen_address listen;
  std::string public_url;
  std::string node_id; ///< default: "<hostname>:<port>"
  /// "sqlite:/abs/path.db", "sqlite::memory:" or a postgresql:// URL (secret:
  /// may hold a password).
  std::string store;
  std::string kv;        ///< "memory" or a redis:// URL
  std::string workflows; ///< absolute directory
  http_settings http;
  twilio_settings twilio;
  call_settings calls;
  /// The global `ai:` section: which AI answers for tenants without their
  /// own `ai:` (each tenant already holds its effective one in
  /// `engine::tenant::ai`). Absent: the offline responder. `api_key` is a
  /// secret: never log it.
  engine::ai_settings ai;
  /// Each with its effective `ai` (its own, else the global one) and a
  /// `profile` whose `name` and `phone` default to the tenant's name and
  /// first number.
  std::vector<engine::tenant> tenants;
};

/// A config, or every problem found in the file, each printed like
/// `file:line:col: error: key.path: message`.
struct config_result {
  std::optional<config> value; ///< set iff `errors` is empty
  std::vector<std::string> errors;

  bool ok() const {
    return value.has_value();
  }
};

/// Looks up an environment variable; nullopt if unset.
using env_lookup
  = std::function<std::optional<std::string>(const std::string&)>;

/// `std::getenv`. Not thread-safe against `setenv`: use it at start-up.
std::optional<std::string> process_env(const std::string& name);

/// Reads and validates the config file at `path`. Relative paths in it are
/// relative to the file's folder. Never throws.
config_result load_config(const std::string& path);

/// Validates config text. `display_name` prefixes the errors; relative paths
/// resolve against `base_dir`; `${NAME}` is looked up through `env`
/// (which also supplies TZDIR, the time zone database, default
/// /usr/share/zoneinfo). Never throws.
config_result load_config_string(const std::string& text,
                                 const std::string& display_name,
                                 const std::string& base_dir,
                                 const env_lookup& env = process_env);

/// "500ms", "20s", "2m", "1h", "7d" -> milliseconds; a positive whole number
/// and a unit. nullopt otherwise.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view x);

/// "65536", "64KiB", "1MiB", "1GiB" (also with a "B" suffix for bytes) ->
/// bytes, positive. nullopt otherwise.
std::optional<std::size_t> parse_size(std::string_view x);

/// The default pace of a number kind: 1 (long code), 3 (toll-free) or 100
/// (short code) messages per second.
double default_mps(engine::number_kind kind);

/// One line for the start-up log, secrets masked (the auth token, a store
/// or kv password, the AI's api_key).
std::string describe(const config& c);

} // namespace ringback::app
