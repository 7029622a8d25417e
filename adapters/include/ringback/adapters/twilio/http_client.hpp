#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

/// A small blocking HTTP/1.1 client for REST APIs (Beast over TCP or TLS),
/// used by the Twilio REST client. Header free of Boost on purpose.
namespace ringback::adapters::twilio {

/// An object built by a factory, or why it could not be built.
template <class T>
struct make_result {
  std::unique_ptr<T> value; // null on error
  std::string error;

  explicit operator bool() const {
    return value != nullptr;
  }
};

/// Where an API lives, parsed from its base URL.
struct http_endpoint {
  bool tls = true;
  std::string host; // IPv6 without brackets
  std::uint16_t port = 443;
  std::string base_path; // "" or "/prefix" (no trailing '/')

  /// The Host header: host, plus ":port" unless it is the scheme's default.
  std::string host_header() const;
};

/// Outcome of `parse_endpoint`.
struct parsed_endpoint {
  std::optional<http_endpoint> endpoint;
  std::string error; // set when `endpoint` is empty
};

/// Parses `http[s]://host[:port][/base/path]` (scheme case-insensitive, IPv6
/// as `[::1]`). Rejects user info, queries and fragments. Error messages name
/// the URL, e.g. "api_url 'ftp://x' must start with http:// or https://".
parsed_endpoint parse_endpoint(std::string_view url);

enum class http_method : std::uint8_t { get, post };

/// "GET" or "POST".
const char* to_string(http_method x);

struct http_request {
  http_method method = http_method::get;
  std::string target;       // origin-form: path and query, base path included
  std::string content_type; // for a body; empty: none
  std::string body;
};

struct http_response {
  int status = 0;
  std::string retry_after; // the Retry-After header, empty if absent
  std::string body;
};

/// A response, or why there is none (connect error, timeout, lost connection).
struct http_result {
  std::optional<http_response> response;
  std::string error;
  /// No response, but the request was (at least partly) written: the server
  /// may have received and acted on it.
  bool maybe_received = false;
};

struct http_client_options {
  http_endpoint endpoint;
  /// Budget for resolving, connecting and the TLS handshake together.
  std::chrono::milliseconds connect_timeout{5000};
  /// Budget for writing one request and reading its response.
  std::chrono::milliseconds request_timeout{10000};
  /// Value of the Authorization header sent with every request; empty: none.
  std::string authorization;
  std::string user_agent = "ringback";
  /// PEM file of trusted CAs for https; empty: the system's default paths.
  std::string ca_file;
  /// Largest response body accepted.
  std::size_t body_limit = std::size_t{4} * 1024 * 1024;
};

/// Blocking HTTP/1.1 client that keeps one connection alive between
/// requests and opens a new one when the server has closed it.
///
/// Not thread-safe: use an instance from one thread at a time (it owns its
/// io_context and runs it on the calling thread). Timeouts are enforced with
/// `beast::tcp_stream` expiry. Retries a request once on a fresh connection
/// only if the kept-alive connection turned out dead and the request is a GET
/// or nothing of it was written; a POST the server may have received is
/// never sent again. `send` never throws but `std::bad_alloc`.
class http_client {
public:
  /// Fails if the TLS context cannot be set up (e.g. unreadable `ca_file`).
  static make_result<http_client> make(http_client_options options);

  ~http_client();

  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  http_result send(const http_request& request);

  /// Connections opened so far (1 while keep-alive works).
  std::size_t connections_opened() const;

private:
  struct impl;

  explicit http_client(std::unique_ptr<impl> ptr);

  std::unique_ptr<impl> impl_;
};

} // namespace ringback::adapters::twilio
