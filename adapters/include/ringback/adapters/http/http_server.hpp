#pragma once

#include "ringback/adapters/http/http_message.hpp"
#include "ringback/adapters/http/reply_slot.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace ringback::adapters {

namespace http_detail {
struct server_core;
} // namespace http_detail

/// What one connection may cost the server. Every limit has a status code
/// or a close behind it, never a crash.
struct http_limits {
  /// Larger bodies (by Content-Length, or as chunks arrive) get 413.
  std::size_t max_body_bytes = std::size_t{64} * 1024;
  /// Request line plus header fields; larger gets 431.
  std::size_t max_header_bytes = std::size_t{8} * 1024;
  /// Header and body of one request must arrive within this, counted from
  /// the request's first byte; else the connection is closed.
  std::chrono::milliseconds read_timeout{10'000};
  /// A keep-alive connection with no next request for this long is closed.
  std::chrono::milliseconds idle_timeout{30'000};
  /// Writing one response must finish within this; else the connection is
  /// closed (slow readers).
  std::chrono::milliseconds write_timeout{10'000};
  /// Connections accepted beyond this many open ones are closed at once.
  std::size_t max_connections = 10'000;
};

/// Settings of `http_server`.
struct http_server_options {
  std::string host = "127.0.0.1"; // an IP address or a resolvable name
  std::uint16_t port = 0;         // 0: any free port (see `http_server::port`)
  std::size_t threads = 2;        // io threads (at least 1)
  http_limits limits;
  /// Receives one line per notable event: bad requests (4xx sent),
  /// handler exceptions, accept failures, refused connections. May be
  /// called from any io thread concurrently. Empty: `engine::log_warn`
  /// with the component `http`.
  std::function<void(std::string_view)> log;
};

/// Called once per request, on an io thread, with the request (valid only
/// during the call: copy what you keep) and the slot to answer through.
/// Must not block; may reply at once or hand the slot on (to an actor) and
/// return. Exceptions are caught, logged and answered with 500.
using http_handler
  = std::function<void(const http_request&, std::shared_ptr<reply_slot>)>;

/// The HTTP/1.1 ingress (Boost.Beast on Asio).
///
/// Keep-alive and pipelining-safe: a connection's requests are read and
/// answered one at a time, in order. Malformed requests (HTTP versions
/// other than 1.0 and 1.1 included) get 400, oversized ones 413 or 431,
/// each followed by a close; a request that stalls, or a keep-alive
/// connection left idle, is closed after its timeout. `Expect:
/// 100-continue` is honoured; HEAD answers carry the length of the body
/// they omit. `reply_slot`s may be answered
/// from any thread: the write is posted onto the connection's io thread.
///
/// `start()` and `stop()` are called from the owning thread, never from a
/// handler.
class http_server {
public:
  http_server(http_server_options options, http_handler handler);

  /// Stops (see `stop`) if still running.
  ~http_server();

  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Binds, listens and starts the io threads, then returns. Returns a
  /// message such as `http: cannot listen on 127.0.0.1:80: bind: Permission
  /// denied` on failure (nothing left running); nullopt on success. A
  /// server starts at most once.
  [[nodiscard]] std::optional<std::string> start();

  /// The bound port, once started (the real one when asked for port 0).
  std::uint16_t port() const noexcept;

  /// Graceful stop: stops accepting, closes idle connections and those
  /// still reading a request, lets the requests already handed to the
  /// handler be answered (with `Connection: close`) for up to `grace`, then
  /// closes what is left and joins the io threads. Answers given after that
  /// are dropped. Idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds{5});

  /// Open connections right now.
  std::size_t connections() const noexcept;

private:
  std::shared_ptr<http_detail::server_core> core_;
};

} // namespace ringback::adapters
