#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringback::adapters {

/// One header field, as received or to send.
struct http_header {
  std::string name;
  std::string value;
};

/// A complete HTTP request as the server hands it to the handler. Plain data:
/// handlers under test build one by hand.
struct http_request {
  std::string method; // as sent: "GET", "POST", ...
  std::string target; // the raw request-target: "/twilio/voice?x=1"
  std::string path;   // `target` up to the first '?', not decoded
  std::string query;  // `target` after the first '?' (without it), raw
  std::vector<http_header> headers; // in the order received
  std::string body;
  std::string remote_address; // the peer's IP address ("127.0.0.1", "::1")
  std::uint16_t remote_port = 0;
  unsigned version = 11; // 10 = HTTP/1.0, 11 = HTTP/1.1

  /// Sets `target`, `path` and `query` from a raw request-target.
  void set_target(std::string raw);

  /// The value of the first header called `name`, compared ASCII
  /// case-insensitively; nullopt if absent. Valid while the request lives.
  std::optional<std::string_view> header(std::string_view name) const;
};

/// What a handler answers. `Content-Length` and `Connection` are set by the
/// server; `headers` carries any others (a header whose name or value holds
/// CR, LF or NUL is dropped and logged, so handlers cannot split responses).
struct http_response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<http_header> headers;

  /// A `text/plain` response.
  static http_response text(int status, std::string body);

  /// The first extra header called `name` (ASCII case-insensitive).
  std::optional<std::string_view> header(std::string_view name) const;
};

/// ASCII case-insensitive equality, as header names compare.
bool iequals(std::string_view x, std::string_view y) noexcept;

} // namespace ringback::adapters
