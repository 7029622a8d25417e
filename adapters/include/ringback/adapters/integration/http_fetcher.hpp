#pragma once

#include "ringback/engine/http_port.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// The workflows' outbound HTTP (`http` step): `engine::http_fetcher` over
/// the blocking Beast client of `adapters/twilio/http_client.hpp`.
namespace ringback::adapters::integration {

struct http_fetcher_options {
  /// PEM file of trusted CAs for https; empty: the system's default paths.
  std::string ca_file;
  /// Bodies longer than this are cut (`truncated`).
  std::size_t body_limit = std::size_t{64} * 1024;
  /// Sent unless the workflow gives its own User-Agent header.
  std::string user_agent = "ringback/0.1";
  /// Backoff before retry n (1-based): a random point in the upper half of
  /// `base * 2^(n-1)`, at most `cap` (engine::retry_policy).
  std::chrono::milliseconds backoff_base{200};
  std::chrono::milliseconds backoff_cap{5000};
  /// A Retry-After is waited for as a minimum when it is at most this long;
  /// a longer one ends the retries (the response is returned as is).
  std::chrono::milliseconds retry_after_cap{10000};
  /// Hosts (scheme, host, port) whose idle connection a fetcher keeps open,
  /// least recently used dropped first.
  std::size_t max_kept_hosts = 8;
  /// Seed of the backoff jitter; 0: a random seed.
  std::uint64_t seed = 0;
  /// Attempts are clamped to [1, max_attempts].
  std::int32_t max_attempts = 10;
};

/// Runs a workflow's HTTP request over HTTP/1.1 (TLS via OpenSSL).
///
/// Before anything is resolved or sent, the method, the timeout, the URL,
/// the headers and the host (against `allowed_hosts`) are checked.
///
/// Retries (up to `max_attempts`, with backoff and jitter, honouring
/// Retry-After up to `retry_after_cap`) follow one rule: send again only
/// what cannot be acted on twice.
/// - Always: failures to resolve or connect, and timeouts or lost
///   connections before a byte of the request was written; 429 and 503 (the
///   server says it did not process the request).
/// - Only for idempotent requests (GET, PUT, DELETE, or any request with an
///   `Idempotency-Key` header): timeouts and lost connections after writing,
///   500, 502 and 504 (the server, or a gateway's upstream, may have acted).
/// - Never: other statuses (1xx-4xx but 429, 501, 505...), TLS and
///   protocol errors.
///
/// Redirects are not followed: a 3xx is returned as a response. Bodies over
/// `body_limit` are cut and `truncated` set. The idle connection to each of
/// the last `max_kept_hosts` hosts is kept alive and reused.
///
/// Not thread-safe: one instance per worker thread. `fetch` blocks (at most
/// about attempts x timeout + the waits between them) and never throws but
/// `std::bad_alloc`.
class beast_http_fetcher final : public engine::http_fetcher {
public:
  explicit beast_http_fetcher(http_fetcher_options options);

  ~beast_http_fetcher() override;

  beast_http_fetcher(const beast_http_fetcher&) = delete;
  beast_http_fetcher& operator=(const beast_http_fetcher&) = delete;

  engine::outbound_http_response
  fetch(const engine::outbound_http_request& req) override;

  /// Connections opened so far, over all hosts.
  std::size_t connections_opened() const;

private:
  struct impl;

  std::unique_ptr<impl> impl_;
};

/// Makes one fetcher per call; the composition root calls it once per
/// worker thread. Thread-safe.
using http_fetcher_factory
  = std::function<std::unique_ptr<engine::http_fetcher>()>;

struct http_fetcher_factory_result {
  http_fetcher_factory factory; // empty on error
  std::string error;

  explicit operator bool() const {
    return static_cast<bool>(factory);
  }
};

/// Checks the options once (the CA file or the system CA paths must load;
/// e.g. "cannot load CA file '/x.pem': No such file or directory") and
/// returns a factory of `beast_http_fetcher`s.
http_fetcher_factory_result
make_http_fetcher_factory(http_fetcher_options options);

// -- the checks, exposed for tests -------------------------------------------

/// Where a request goes, taken from its URL.
struct http_target {
  bool tls = false;
  std::string host; // lower case, IPv6 without brackets, no trailing '.'
  std::uint16_t port = 0;
  std::string target; // origin-form: path (at least "/") and query
};

struct parsed_url {
  std::optional<http_target> target;
  std::string error; // set when `target` is empty
};

/// Parses an absolute http(s) URL of at most 8 KiB. Error messages name the
/// URL, e.g. "URL 'ftp://x' must start with http:// or https://".
parsed_url parse_url(std::string_view url);

/// Whether `host` (as `parse_url` gives it) matches an entry of the
/// allow-list: a host name equal to the entry (any case, a trailing '.'
/// ignored), a subdomain of `x.com` for `*.x.com`, or for an IP literal the
/// same address (`[::1]`, `::1` and `0:0::1` are one address). Wildcards
/// never match IP literals; malformed entries match nothing.
bool is_host_allowed(std::string_view host,
                     const std::vector<std::string>& allowed_hosts);

/// The wait a Retry-After value asks for: delay-seconds or an IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`, compared with `now`; past dates give 0).
/// Empty for anything else.
std::optional<std::chrono::milliseconds>
parse_retry_after(std::string_view value,
                  std::chrono::system_clock::time_point now);

} // namespace ringback::adapters::integration
