#include "ringback/adapters/integration/http_fetcher.hpp"
#include "ringback/adapters/twilio/http_client.hpp"
#include "ringback/engine/retry_policy.hpp"

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <list>
#include <random>
#include <thread>
#include <utility>

namespace ringback::adapters::integration {

namespace {

using std::chrono::milliseconds;
using twilio::http_failure;
using twilio::http_method;
using twilio::printable;

constexpr std::size_t max_url_size = 8 * 1024;

std::string lower(std::string_view x) {
  std::string out{x};
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>(std::tolower(c));
  });
  return out;
}

bool iequals(std::string_view x, std::string_view y) {
  return x.size() == y.size()
         && std::equal(x.begin(), x.end(), y.begin(), [](char a, char b) {
              return std::tolower(static_cast<unsigned char>(a))
                     == std::tolower(static_cast<unsigned char>(b));
            });
}

std::optional<boost::asio::ip::address> ip_address(const std::string& x) {
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(x, ec);
  if (ec) {
    return std::nullopt;
  }
  return addr;
}

/// Lower case, without IPv6 brackets and one trailing '.'.
std::string normalize_host(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (!host.empty() && host.back() == '.') {
    host.remove_suffix(1);
  }
  return lower(host);
}

/// A host name made of dot-separated, non-empty labels of letters, digits,
/// '-' and '_' (IPv4 literals included).
bool is_host_name(std::string_view host) {
  if (host.empty() || host.front() == '.' || host.back() == '.'
      || host.find("..") != std::string_view::npos) {
    return false;
  }
  return std::all_of(host.begin(), host.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x80 && std::isalnum(u) != 0) || c == '-' || c == '_'
           || c == '.';
  });
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end || value == 0
      || value > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(value);
}

std::optional<http_method> parse_method(std::string_view name) {
  constexpr std::pair<std::string_view, http_method> methods[] = {
    {"GET", http_method::get},        {"POST", http_method::post},
    {"PUT", http_method::put},        {"PATCH", http_method::patch},
    {"DELETE", http_method::delete_},
  };
  for (const auto& [text, method] : methods) {
    if (iequals(name, text)) {
      return method;
    }
  }
  return std::nullopt;
}

std::string_view error_kind_of(http_failure x) {
  switch (x) {
    case http_failure::none:
      return "";
    case http_failure::invalid_request:
      return "bad_request";
    case http_failure::resolve:
    case http_failure::connect:
      return "connect";
    case http_failure::tls:
      return "tls";
    case http_failure::timeout:
      return "timeout";
    case http_failure::connection_lost:
      return "closed";
    case http_failure::protocol:
      return "protocol";
  }
  return "protocol";
}

/// 429 and 503 say the request was not processed; after a 500 the server,
/// and behind a 502 or 504 an upstream, may have acted on it.
bool retries_status(int status, bool idempotent) {
  if (status == 429 || status == 503) {
    return true;
  }
  return (status == 500 || status == 502 || status == 504) && idempotent;
}

bool retries_failure(const twilio::http_result& result, bool idempotent) {
  switch (result.failure) {
    case http_failure::resolve:
    case http_failure::connect:
      return true;
    case http_failure::timeout:
    case http_failure::connection_lost:
      return idempotent || !result.maybe_received;
    default:
      return false;
  }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

std::optional<unsigned> parse_digits(std::string_view text) {
  unsigned value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end
      || !std::isdigit(static_cast<unsigned char>(text.front()))) {
    return std::nullopt;
  }
  return value;
}

/// Seconds since the epoch of an IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT".
std::optional<std::int64_t> parse_imf_fixdate(std::string_view x) {
  constexpr std::string_view months[] = {"Jan", "Feb", "Mar", "Apr",
                                         "May", "Jun", "Jul", "Aug",
                                         "Sep", "Oct", "Nov", "Dec"};
  if (x.size() != 29 || x.substr(3, 2) != ", " || x[7] != ' ' || x[11] != ' '
      || x[16] != ' ' || x[19] != ':' || x[22] != ':'
      || x.substr(25) != " GMT") {
    return std::nullopt;
  }
  const auto month = std::find(std::begin(months), std::end(months),
                               x.substr(8, 3));
  const auto day = parse_digits(x.substr(5, 2));
  const auto year = parse_digits(x.substr(12, 4));
  const auto hour = parse_digits(x.substr(17, 2));
  const auto minute = parse_digits(x.substr(20, 2));
  const auto second = parse_digits(x.substr(23, 2));
  if (month == std::end(months) || !day || !year || !hour || !minute || !second
      || *day < 1 || *day > 31 || *hour > 23 || *minute > 59 || *second > 60) {
    return std::nullopt;
  }
  const auto m = static_cast<unsigned>(month - std::begin(months)) + 1;
  return days_from_civil(*year, m, *day) * 86400 + *hour * 3600 + *minute * 60
         + *second;
}

} // namespace

// -- checks -------------------------------------------------------------------

parsed_url parse_url(std::string_view url) {
  auto fail = [&](const char* what) {
    return parsed_url{std::nullopt, "URL '" + printable(url) + "' " + what};
  };
  if (url.size() > max_url_size) {
    return fail("is longer than 8192 bytes");
  }
  const bool printable_ascii = std::all_of(url.begin(), url.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f;
  });
  if (!printable_ascii) {
    return fail("has a space, control or non-ASCII character (percent-encode "
                "it)");
  }
  const auto scheme_end = url.find("://");
  const auto scheme = lower(url.substr(0, scheme_end));
  if (scheme_end == std::string_view::npos
      || (scheme != "http" && scheme != "https")) {
    return fail("must start with http:// or https://");
  }
  const auto rest = url.substr(scheme_end + 3);
  const auto authority_end = std::min(rest.find_first_of("/?#"), rest.size());
  const auto authority = rest.substr(0, authority_end);
  if (authority.find('@') != std::string_view::npos) {
    return fail("must not contain user info");
  }
  std::string_view host;
  std::string_view after; // ":port" or empty
  bool bracketed = false;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      return fail("has an unterminated IPv6 address");
    }
    host = authority.substr(1, close - 1);
    after = authority.substr(close + 1);
    bracketed = true;
  } else {
    const auto colon = std::min(authority.find(':'), authority.size());
    host = authority.substr(0, colon);
    after = authority.substr(colon);
  }
  http_target out;
  out.tls = scheme == "https";
  out.port = out.tls ? 443 : 80;
  if (!after.empty()) {
    const auto port = after.front() == ':' ? parse_port(after.substr(1))
                                           : std::nullopt;
    if (!port) {
      return fail("has a bad port");
    }
    out.port = *port;
  }
  if (host.empty()) {
    return fail("has no host");
  }
  if (bracketed) {
    // Zone ids ("%eth0") are refused: they name a local interface.
    boost::system::error_code ec;
    boost::asio::ip::make_address_v6(std::string{host}, ec);
    if (ec || host.find('%') != std::string_view::npos) {
      return fail("has a bad IPv6 address");
    }
    out.host = lower(host);
  } else {
    if (host.back() == '.') {
      host.remove_suffix(1);
    }
    if (!is_host_name(host)) {
      return fail("has a bad host name");
    }
    out.host = lower(host);
  }
  auto path = rest.substr(authority_end);
  path = path.substr(0, std::min(path.find('#'), path.size()));
  if (path.empty() || path.front() != '/') {
    out.target = "/";
  }
  out.target += std::string{path};
  return {std::move(out), {}};
}

bool is_host_allowed(std::string_view host,
                     const std::vector<std::string>& allowed_hosts) {
  const auto name = normalize_host(host);
  if (name.empty()) {
    return false;
  }
  const auto address = ip_address(name);
  for (const auto& raw : allowed_hosts) {
    const auto entry = normalize_host(raw);
    if (address) {
      if (const auto other = ip_address(entry); other && *other == *address) {
        return true;
      }
      continue;
    }
    if (entry.size() > 2 && entry.compare(0, 2, "*.") == 0) {
      const std::string_view suffix{entry.data() + 1, entry.size() - 1};
      if (name.size() > suffix.size()
          && name.compare(name.size() - suffix.size(), suffix.size(), suffix)
               == 0) {
        return true;
      }
      continue;
    }
    if (entry == name) {
      return true;
    }
  }
  return false;
}

std::optional<milliseconds>
parse_retry_after(std::string_view value,
                  std::chrono::system_clock::time_point now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
    value.remove_prefix(1);
  }
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
    value.remove_suffix(1);
  }
  constexpr std::int64_t max_seconds = 1'000'000'000;
  if (!value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) != 0;
      })) {
    std::int64_t seconds = max_seconds;
    if (value.size() < 10) {
      std::from_chars(value.data(), value.data() + value.size(), seconds);
    }
    return milliseconds{std::min(seconds, max_seconds) * 1000};
  }
  const auto date = parse_imf_fixdate(value);
  if (!date) {
    return std::nullopt;
  }
  const auto now_ms
    = std::chrono::duration_cast<milliseconds>(now.time_since_epoch()).count();
  const auto wait = *date * 1000 - now_ms;
  return milliseconds{std::clamp<std::int64_t>(wait, 0, max_seconds * 1000)};
}

// -- fetcher ------------------------------------------------------------------

struct beast_http_fetcher::impl {
  /// A kept client (one connection) and the key of its host.
  struct kept_client {
    std::string key;
    std::unique_ptr<twilio::http_client> client;
  };

  explicit impl(http_fetcher_options opts)
    : options(std::move(opts)),
      rng(options.seed != 0 ? options.seed : std::random_device{}()) {
    options.max_kept_hosts = std::max<std::size_t>(options.max_kept_hosts, 1);
    options.max_attempts = std::max<std::int32_t>(options.max_attempts, 1);
  }

  /// The client for `target`'s host, most recently used first; drops the
  /// least recently used one beyond `max_kept_hosts`.
  twilio::http_client* client_for(const http_target& target,
                                  std::string& error) {
    auto key = std::string{target.tls ? "https://" : "http://"} + target.host
               + ":" + std::to_string(target.port);
    auto i = std::find_if(clients.begin(), clients.end(),
                          [&](const kept_client& x) { return x.key == key; });
    if (i != clients.end()) {
      clients.splice(clients.begin(), clients, i);
      return clients.front().client.get();
    }
    twilio::http_client_options opts;
    opts.endpoint.tls = target.tls;
    opts.endpoint.host = target.host;
    opts.endpoint.port = target.port;
    opts.user_agent = options.user_agent;
    opts.ca_file = options.ca_file;
    opts.body_limit = options.body_limit;
    opts.truncate_body = true;
    auto made = twilio::http_client::make(std::move(opts));
    if (!made) {
      error = std::move(made.error);
      return nullptr;
    }
    clients.push_front({std::move(key), std::move(made.value)});
    while (clients.size() > options.max_kept_hosts) {
      dropped_connections += clients.back().client->connections_opened();
      clients.pop_back();
    }
    return clients.front().client.get();
  }

  /// The wait before attempt `attempts + 1`, or nothing when the server
  /// asks for a longer wait than the cap.
  std::optional<milliseconds> backoff(std::int32_t attempts,
                                      std::optional<milliseconds> retry_after) {
    if (retry_after && *retry_after > options.retry_after_cap) {
      return std::nullopt;
    }
    engine::retry_policy policy;
    policy.base = options.backoff_base;
    policy.cap = options.backoff_cap;
    policy.max_attempts = std::numeric_limits<std::int32_t>::max();
    engine::carrier_status status; // a retryable failure: no response
    status.retry_after = retry_after;
    std::uniform_real_distribution<double> jitter{0.0, 1.0};
    return policy.next_delay(attempts, status, jitter(rng));
  }

  engine::outbound_http_response
  fetch(const engine::outbound_http_request& req) {
    const auto start = std::chrono::steady_clock::now();
    engine::outbound_http_response out;
    auto finish = [&](std::string error = {}, std::string_view kind = {}) {
      if (!error.empty()) {
        out.error = std::move(error);
        out.error_kind = std::string{kind};
      }
      out.elapsed_ms = std::chrono::duration_cast<milliseconds>(
                         std::chrono::steady_clock::now() - start)
                         .count();
      return std::move(out);
    };
    const auto method = parse_method(req.method);
    if (!method) {
      return finish("method '" + printable(req.method, 20)
                      + "' is not one of GET, POST, PUT, PATCH, DELETE",
                    "bad_request");
    }
    if (req.timeout.count() <= 0) {
      return finish("timeout must be positive, got "
                      + std::to_string(req.timeout.count()) + " ms",
                    "bad_request");
    }
    auto url = parse_url(req.url);
    if (!url.target) {
      return finish(std::move(url.error), "bad_url");
    }
    const auto& target = *url.target;
    if (!is_host_allowed(target.host, req.allowed_hosts)) {
      return finish("host '" + target.host
                      + "' is not in the tenant's http_allow list",
                    "not_allowed");
    }
    bool idempotency_key = false;
    for (const auto& [name, value] : req.headers) {
      if (auto error = twilio::check_header(name, value); !error.empty()) {
        return finish(std::move(error), "bad_request");
      }
      idempotency_key = idempotency_key || iequals(name, "Idempotency-Key");
    }
    std::string error;
    auto* client = client_for(target, error);
    if (client == nullptr) {
      return finish(std::move(error), "tls");
    }
    twilio::http_request request;
    request.method = *method;
    request.target = target.target;
    request.headers = req.headers;
    request.body = req.body;
    request.timeout = req.timeout;
    const bool idempotent = twilio::is_idempotent(*method) || idempotency_key;
    const auto max_attempts = std::clamp(req.max_attempts, 1,
                                         options.max_attempts);
    for (;;) {
      ++out.attempts;
      auto result = client->send(request);
      bool retry = false;
      std::optional<milliseconds> retry_after;
      if (result.response) {
        auto& res = *result.response;
        out.status = res.status;
        out.body = std::move(res.body);
        out.content_type = std::move(res.content_type);
        out.truncated = res.truncated;
        out.error.clear();
        out.error_kind.clear();
        retry = retries_status(res.status, idempotent);
        if (retry && !res.retry_after.empty()) {
          retry_after = parse_retry_after(res.retry_after,
                                          std::chrono::system_clock::now());
        }
      } else {
        out.status = 0;
        out.body.clear();
        out.content_type.clear();
        out.truncated = false;
        out.error = std::move(result.error);
        out.error_kind = std::string{error_kind_of(result.failure)};
        retry = retries_failure(result, idempotent);
      }
      if (!retry || out.attempts >= max_attempts) {
        break;
      }
      const auto delay = backoff(out.attempts, retry_after);
      if (!delay) {
        break;
      }
      std::this_thread::sleep_for(*delay);
    }
    if (!out.error.empty() && out.attempts > 1) {
      out.error += " (after " + std::to_string(out.attempts) + " attempts)";
    }
    return finish();
  }

  std::size_t connections_opened() const {
    auto n = dropped_connections;
    for (const auto& x : clients) {
      n += x.client->connections_opened();
    }
    return n;
  }

  http_fetcher_options options;
  std::mt19937_64 rng;
  std::list<kept_client> clients; // most recently used first
  std::size_t dropped_connections = 0;
};

beast_http_fetcher::beast_http_fetcher(http_fetcher_options options)
  : impl_(std::make_unique<impl>(std::move(options))) {
  // Nothing to do.
}

beast_http_fetcher::~beast_http_fetcher() = default;

engine::outbound_http_response
beast_http_fetcher::fetch(const engine::outbound_http_request& req) {
  return impl_->fetch(req);
}

std::size_t beast_http_fetcher::connections_opened() const {
  return impl_->connections_opened();
}

http_fetcher_factory_result
make_http_fetcher_factory(http_fetcher_options options) {
  // Loads the CA store once, as every https client will, to fail at start-up
  // rather than on a workflow's first request.
  twilio::http_client_options probe;
  probe.endpoint.tls = true;
  probe.endpoint.host = "localhost";
  probe.ca_file = options.ca_file;
  if (auto made = twilio::http_client::make(std::move(probe)); !made) {
    return {{}, std::move(made.error)};
  }
  auto shared
    = std::make_shared<const http_fetcher_options>(std::move(options));
  return {[shared]() -> std::unique_ptr<engine::http_fetcher> {
            return std::make_unique<beast_http_fetcher>(*shared);
          },
          {}};
}

} // namespace ringback::adapters::integration
