#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// A small blocking HTTP/1.1 client for REST APIs (Beast over TCP or TLS),
/// used by the Twilio REST client and the workflows' outbound HTTP fetcher.
/// Header free of Boost on purpose.
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

enum class http_method : std::uint8_t { get, post, put, patch, delete_ };

/// "GET", "POST", "PUT", "PATCH" or "DELETE".
const char* to_string(http_method x);

/// GET, PUT and DELETE: sending such a request twice has the effect of
/// sending it once (RFC 9110, 9.2.2); POST and PATCH are not idempotent.
bool is_idempotent(http_method x);

/// Why the header `name: value` cannot be sent, or "" if it can. Refuses
/// an empty or non-token name, control characters (CR, LF, NUL...; a tab is
/// fine) in the value, names over 256 bytes and values over 8 KiB, and the
/// headers the client frames the message with:
/// Host, Content-Length, Transfer-Encoding, Connection, Keep-Alive,
/// Proxy-Connection, TE, Trailer, Upgrade, Expect. Example message:
/// "header 'X-Evil' has a control character (such as CR or LF) in its value".
std::string check_header(std::string_view name, std::string_view value);

/// `text` fit for an error message: bytes outside printable ASCII shown as
/// `\xNN`, cut after `max_size` bytes with "...".
std::string printable(std::string_view text, std::size_t max_size = 200);

struct http_request {
  http_method method = http_method::get;
  std::string target;       // origin-form: path and query, base path included
  std::string content_type; // for a body; empty: none
  std::string body;
  /// Extra headers, sent after the defaults (Host, User-Agent, Accept,
  /// Authorization, Content-Type). One named like a default replaces it;
  /// others are added (a name may repeat). A header `check_header` refuses
  /// fails the request before anything is sent.
  std::vector<std::pair<std::string, std::string>> headers;
  /// Budget for this whole request: resolving, connecting and the TLS
  /// handshake (when a connection must be opened) and the exchange together.
  /// Empty: the options' `connect_timeout` and `request_timeout` apply.
  std::optional<std::chrono::milliseconds> timeout;
};

struct http_response {
  int status = 0;
  std::string retry_after; // the Retry-After header, empty if absent
  std::string body;
  std::string content_type; // the Content-Type header, empty if absent
  /// The body was longer than `body_limit` and cut there (only with
  /// `http_client_options::truncate_body`).
  bool truncated = false;
};

/// Why a request got no response.
enum class http_failure : std::uint8_t {
  none,            // a response arrived
  invalid_request, // refused before sending (header, target)
  resolve,         // the host name could not be resolved
  connect,         // the connection could not be opened
  tls,             // TLS set-up, handshake or certificate verification
  timeout,         // a deadline passed (resolving, connecting or exchanging)
  connection_lost, // the peer closed or reset the connection
  protocol,        // the response was malformed or over a limit
};

/// A response, or why there is none (connect error, timeout, lost connection).
struct http_result {
  std::optional<http_response> response;
  std::string error;
  /// No response, but the request was (at least partly) written: the server
  /// may have received and acted on it.
  bool maybe_received = false;
  http_failure failure = http_failure::none;
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
  /// What a longer body does: false fails the request (`protocol`); true
  /// keeps its first `body_limit` bytes, sets `truncated`, discards the rest
  /// and closes the connection.
  bool truncate_body = false;
};

/// Blocking HTTP/1.1 client that keeps one connection alive between
/// requests and opens a new one when the server has closed it.
///
/// Not thread-safe: use an instance from one thread at a time (it owns its
/// io_context and runs it on the calling thread). Timeouts are enforced with
/// `beast::tcp_stream` expiry. Retries a request once on a fresh connection
/// only if the kept-alive connection turned out dead and the request is
/// idempotent (GET, PUT, DELETE) or nothing of it was written; a POST or
/// PATCH the server may have received is never sent again. Redirects are not
/// followed. `send` never throws but `std::bad_alloc`.
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
