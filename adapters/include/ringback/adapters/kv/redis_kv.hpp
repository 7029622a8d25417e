#pragma once

#include "ringback/engine/ports.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct redisContext; // hiredis; kept out of this header

namespace ringback::adapters {

/// Where a Redis server is: `redis://[[user]:password@]host[:port][/db]`.
struct redis_url {
  std::string host;
  std::uint16_t port = 6379;
  std::string username; // empty: AUTH with the password only (Redis < 6 style)
  std::string password; // empty: no AUTH
  int db = 0;

  /// The URL again, password masked (`redis://:***@host:port/db`), for logs
  /// and error messages.
  std::string display() const;
};

/// Parses a Redis URL. User name and password may be percent-encoded; an
/// IPv6 host is written in brackets (`redis://[::1]:6379/0`). On failure
/// returns nullopt and, if `error` is given, stores a message such as
/// `bad port 'x'` in it.
std::optional<redis_url> parse_redis_url(std::string_view url,
                                         std::string* error = nullptr);

/// Connection settings of `redis_kv`.
struct redis_kv_options {
  std::chrono::milliseconds connect_timeout{2000};
  /// Bounds every command round trip (socket send and receive timeouts).
  std::chrono::milliseconds command_timeout{1000};
  /// Sent with CLIENT SETNAME on every connect (shows in CLIENT LIST);
  /// empty: not set. Must not contain spaces.
  std::string client_name = "ringback";
};

/// `engine::kv` on Redis, through one synchronous hiredis connection.
///
/// Not thread-safe: one instance per kv executor thread (they are cheap;
/// `kv_factory` makes them). Blocking, bounded by the timeouts in
/// `redis_kv_options`. Connects lazily on the first call, so constructing
/// one never fails; then SELECTs the db and AUTHs if the URL says so.
///
/// Every failure (connect, I/O, timeout, error reply) throws
/// `engine::port_error` whose message names the command, e.g.
/// `redis SET: Connection reset by peer`. After an I/O failure the
/// connection is dropped and the next call connects anew. A connection the
/// server closed while idle (restart, `CLIENT KILL`, idle timeout) is
/// noticed before a command is sent and replaced without an error.
/// `claim` and `ping` are idempotent, so they are also retried once on a
/// fresh connection when an established connection fails mid-command;
/// `set_if_absent` is not (the first attempt may have set the key), so it
/// reports the failure. `pace` is retried like `claim`: a first attempt that
/// did run has only used up a slot that goes unused, which errs on the slow
/// side and never exceeds the pace.
class redis_kv final : public engine::kv {
public:
  explicit redis_kv(redis_url url, redis_kv_options options = {});
  ~redis_kv() override;

  redis_kv(const redis_kv&) = delete;
  redis_kv& operator=(const redis_kv&) = delete;

  /// `SET key value NX PX ttl`. Throws `engine::port_error` if `ttl` is
  /// not positive.
  bool set_if_absent(std::string_view key, std::string_view value,
                     std::chrono::milliseconds ttl) override;

  /// An atomic Lua script (EVALSHA, EVAL on NOSCRIPT): `SET key owner NX PX
  /// ttl`, else true iff `GET key == owner`, in which case the TTL is set
  /// to `ttl` again. Throws `engine::port_error` if `ttl` is not positive.
  bool claim(std::string_view key, std::string_view owner,
             std::chrono::milliseconds ttl) override;

  /// `PING`; true on PONG. Throws `engine::port_error` when unreachable.
  bool ping() override;

  /// `engine::gcra_lua_script` (EVALSHA, EVAL on NOSCRIPT, which caches it
  /// again) with KEYS `r.number_key` and, for a cap, `r.tenant_key`; ARGV
  /// `r.now`, then each rate (shortest round-trip decimal text, so the
  /// script reads the very same double) and burst. Throws
  /// `engine::port_error` on an error reply or an unexpected reply (`redis
  /// EVALSHA: unexpected reply ...`), if `r.number_key` is empty (`redis
  /// EVALSHA: number_key is empty`) or if `r.tenant` is set with an empty
  /// `r.tenant_key` (`redis EVALSHA: a tenant cap needs a tenant_key`); a
  /// `tenant_key` without `tenant` is no cap.
  engine::pace_answer pace(const engine::pace_request& r) override;

  /// `kv::pace_slots` in one atomic Lua script (`pace_slots_lua_script`, the
  /// same decisions as `engine::pace_slots_by_asking` over `gcra_pair`):
  /// KEYS as for `pace`; ARGV `r.now`, `count`, `horizon_ms`, then each rate
  /// and burst. Both stored times are written once, after the last slot
  /// (`PX` their time minus `r.now` plus 1 s). Retried like `pace`. Throws
  /// like `pace`, and `redis EVALSHA: unexpected reply to the pace slots
  /// script` on a malformed answer.
  engine::pace_slots_answer pace_slots(const engine::pace_request& r,
                                       std::size_t count,
                                       engine::epoch_ms horizon_ms) override;

  /// Whether a connection is currently open (it may still be dead).
  bool connected() const noexcept {
    return context_ != nullptr;
  }

  const redis_url& url() const noexcept {
    return url_;
  }

private:
  struct context_deleter {
    void operator()(redisContext* ptr) const noexcept;
  };

  using context_ptr = std::unique_ptr<redisContext, context_deleter>;

  class reply;

  /// Opens, names, authenticates and selects; throws `engine::port_error`.
  void connect();

  /// Drops a connection that the server has closed or reset while idle.
  void drop_if_dead() noexcept;

  /// Sends one command and reads its reply. Throws `engine::port_error`
  /// naming `argv[0]` on an I/O failure (dropping the connection) or on an
  /// error reply (keeping it).
  reply command(std::initializer_list<std::string_view> argv);

  /// The same for a command of `argc` arguments at `argv`.
  reply command(const std::string_view* argv, std::size_t argc);

  /// `EVALSHA sha args...`, or `EVAL script args...` if the server does not
  /// know the script (never seen, or flushed); EVAL caches it again. The
  /// `count` arguments at `args` start with numkeys.
  reply run_script(std::string_view script, const std::string& sha,
                   const std::string_view* args, std::size_t count);

  /// Runs `fn` and, if it fails with an I/O error on a connection that was
  /// already established before, runs it once more on a fresh connection.
  template <class F>
  auto idempotent(F fn) -> decltype(fn());

  redis_url url_;
  redis_kv_options options_;
  context_ptr context_;
};

} // namespace ringback::adapters
