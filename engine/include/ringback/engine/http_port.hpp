#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ringback::engine {

/// An outbound HTTP request asked for by a workflow's `http` step.
struct outbound_http_request {
  /// GET, POST, PUT, PATCH or DELETE (case-insensitive).
  std::string method = "GET";

  /// Absolute `http://` or `https://` URL without user info; a fragment is
  /// dropped. Characters outside printable ASCII must be percent-encoded.
  std::string url;

  /// Sent in order after ringback's defaults; a name equal to a default
  /// (`User-Agent`, `Accept`, `Content-Type`, `Authorization`) replaces it.
  /// Names that frame the message (`Host`, `Content-Length`, `Connection`,
  /// `Transfer-Encoding`, ...) and CR, LF or NUL anywhere are refused.
  std::vector<std::pair<std::string, std::string>> headers;

  /// Sent as is; its content type comes from `headers`.
  std::string body;

  /// Budget of one attempt for the whole exchange: resolving, connecting,
  /// the TLS handshake, writing the request and reading the last byte.
  std::chrono::milliseconds timeout{5000};

  /// Attempts in all (retries = max_attempts - 1); clamped to [1, 10].
  std::int32_t max_attempts = 1;

  /// The tenant's allow-list: exact host names (`api.x.com`, any case),
  /// `*.x.com` (any subdomain of x.com, not x.com itself) and IP literals
  /// (`127.0.0.1`, `::1`), compared before any DNS lookup or connection.
  std::vector<std::string> allowed_hosts;
};

/// What came of an `outbound_http_request`.
struct outbound_http_response {
  /// HTTP status of the last response; 0 when none arrived. Redirects are
  /// not followed: a 3xx is returned like any other status.
  int status = 0;

  /// At most the body cap (64 KiB); see `truncated`.
  std::string body;

  /// The response's Content-Type header, empty if absent.
  std::string content_type;

  /// The body was longer than the cap and was cut there.
  bool truncated = false;

  /// Why no response came back; empty when a response arrived (any status).
  std::string error;

  /// Empty when a response arrived, else one of:
  /// - `not_allowed`: the host is not in `allowed_hosts` (nothing was sent);
  /// - `bad_url`: the URL cannot be used (nothing was sent);
  /// - `bad_request`: bad method, header or timeout (nothing was sent);
  /// - `connect`: the host could not be resolved or reached;
  /// - `tls`: the TLS handshake or certificate verification failed;
  /// - `timeout`: the last attempt ran out of time;
  /// - `closed`: the server closed the connection before the whole response;
  /// - `protocol`: the response was not valid HTTP/1.1 (or its header was
  ///   larger than 16 KiB).
  std::string error_kind;

  /// Attempts made (0 when the request was refused before sending).
  std::int32_t attempts = 0;

  /// Wall time of all attempts and the waits between them.
  std::int64_t elapsed_ms = 0;

  /// A response arrived with a 2xx status.
  bool ok() const {
    return error.empty() && status >= 200 && status < 300;
  }
};

/// Runs outbound HTTP requests for workflows.
///
/// Blocking: runs on a worker thread of its own, never on a CAF scheduler or
/// HTTP thread. An instance is used from one thread at a time (one instance
/// per worker). `fetch` never throws but `std::bad_alloc`; every failure is
/// reported in the response's `error` and `error_kind`.
class http_fetcher {
public:
  virtual ~http_fetcher() = default;

  virtual outbound_http_response fetch(const outbound_http_request& req) = 0;
};

} // namespace ringback::engine
