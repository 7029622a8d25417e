#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace ringback::sim {

using server_request
  = boost::beast::http::request<boost::beast::http::string_body>;
using server_response
  = boost::beast::http::response<boost::beast::http::string_body>;

/// Answers one request synchronously (on an io thread). The server sets
/// Content-Length and keep-alive, and writes the answer after `delay`
/// (0 by default; a timer, the thread is not blocked).
using server_handler = std::function<void(
  const server_request&, server_response&, std::chrono::milliseconds& delay)>;

/// A small keep-alive HTTP/1.1 server (Boost.Beast): the simulated Twilio
/// REST API, and the bare fixed-answer server used as a yardstick. Each
/// connection runs on its own strand, so the io_context may be run by
/// several threads (the handler must then be thread-safe).
class mini_server {
public:
  mini_server(boost::asio::io_context& io, server_handler handler);
  ~mini_server();

  /// Binds and listens on host:port (0: any free port). An error message,
  /// or nullopt.
  std::optional<std::string> start(const std::string& host, std::uint16_t port);

  std::uint16_t port() const noexcept {
    return port_;
  }

  /// Stops accepting (open connections end with the io_context).
  void stop();

  std::uint64_t requests() const noexcept;

private:
  struct state;
  std::shared_ptr<state> state_;
  std::uint16_t port_ = 0;
};

} // namespace ringback::sim
