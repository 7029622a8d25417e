#include "ringback/adapters/twilio/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/ssl.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <memory>

namespace ringback::adapters::twilio {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using steady_time = std::chrono::steady_clock::time_point;

namespace {

constexpr std::uint32_t header_limit = 16 * 1024;

// Beast stores a field in at most 64 KiB (and throws beyond); servers
// commonly refuse header fields over 8 KiB.
constexpr std::size_t max_header_name = 256;
constexpr std::size_t max_header_value = 8 * 1024;

std::string lower(std::string_view x) {
  std::string out{x};
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>(std::tolower(c));
  });
  return out;
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

bool is_ip_address(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

std::string describe_timeout(std::chrono::milliseconds budget) {
  return "timed out after " + std::to_string(budget.count()) + " ms";
}

/// A failure before any response: its message and kind.
struct failure_info {
  std::string error;
  http_failure kind = http_failure::none;

  bool failed() const {
    return kind != http_failure::none;
  }
};

/// When the phases of one `send` must end, and the budgets named in timeout
/// messages. Without a per-request timeout each phase gets the option's
/// budget from the moment it starts, as before per-request timeouts existed.
struct send_deadlines {
  std::optional<steady_time> total; // per-request timeout: one deadline
  std::chrono::milliseconds total_budget{0};
  std::chrono::milliseconds connect_budget{0};
  std::chrono::milliseconds request_budget{0};

  steady_time connect_deadline() const {
    return total ? *total : std::chrono::steady_clock::now() + connect_budget;
  }

  steady_time request_deadline() const {
    return total ? *total : std::chrono::steady_clock::now() + request_budget;
  }

  std::chrono::milliseconds connect_timeout() const {
    return total ? total_budget : connect_budget;
  }

  std::chrono::milliseconds request_timeout() const {
    return total ? total_budget : request_budget;
  }
};

/// RFC 9110 token characters, the only ones allowed in a header name.
bool is_token_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (std::isalnum(u) != 0) {
    return u < 0x80;
  }
  return std::string_view{"!#$%&'*+-.^_`|~"}.find(c) != std::string_view::npos;
}

/// The request target goes into the request line verbatim: no spaces,
/// controls or non-ASCII bytes (those must be percent-encoded).
bool is_valid_target(std::string_view target) {
  return !target.empty()
         && std::all_of(target.begin(), target.end(), [](char c) {
              const auto u = static_cast<unsigned char>(c);
              return u > 0x20 && u < 0x7f;
            });
}

/// Errors that mean the peer closed or reset the connection.
bool is_connection_lost(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == http::error::partial_message
         || ec == asio::error::eof || ec == asio::error::connection_reset
         || ec == asio::error::broken_pipe
         || ec == ssl::error::stream_truncated;
}

/// What one attempt to exchange a request and a response gave.
struct exchange_outcome {
  std::optional<http_response> response;
  error_code ec;
  bool nothing_written = false;
};

constexpr std::string_view framing_headers[] = {
  "host",       "content-length", "transfer-encoding",
  "connection", "keep-alive",     "proxy-connection",
  "te",         "trailer",        "upgrade",
  "expect",
};

/// Defaults a request header of the same name replaces (others are added).
constexpr std::string_view default_headers[] = {
  "user-agent",
  "accept",
  "authorization",
  "content-type",
};

template <std::size_t N>
bool contains(const std::string_view (&names)[N], const std::string& name) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

} // namespace

// -- endpoint -----------------------------------------------------------------

std::string http_endpoint::host_header() const {
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]"
                                                        : host;
  if (port != (tls ? 443 : 80)) {
    out += ":" + std::to_string(port);
  }
  return out;
}

namespace {

/// `host[:port]` or `[v6][:port]` taken apart; `port` is empty if absent.
struct host_and_port {
  std::string_view host;
  std::string_view port;
  const char* error = nullptr;
};

host_and_port split_authority(std::string_view authority) {
  host_and_port out;
  std::string_view after; // ":port" or empty
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      out.error = "has an unterminated IPv6 address";
      return out;
    }
    out.host = authority.substr(1, close - 1);
    after = authority.substr(close + 1);
  } else {
    const auto colon = std::min(authority.find(':'), authority.size());
    out.host = authority.substr(0, colon);
    after = authority.substr(colon);
  }
  if (!after.empty() && (after.front() != ':' || after.size() == 1)) {
    out.error = "has a bad port";
    return out;
  }
  out.port = after.empty() ? after : after.substr(1);
  return out;
}

} // namespace

parsed_endpoint parse_endpoint(std::string_view url) {
  auto fail = [&](const char* what) {
    return parsed_endpoint{std::nullopt,
                           "api_url '" + std::string{url} + "' " + what};
  };
  const auto scheme_end = url.find("://");
  const auto scheme = lower(url.substr(0, scheme_end));
  if (scheme_end == std::string_view::npos
      || (scheme != "http" && scheme != "https")) {
    return fail("must start with http:// or https://");
  }
  const auto rest = url.substr(scheme_end + 3);
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return fail("must not contain a query or fragment");
  }
  const auto path_begin = std::min(rest.find('/'), rest.size());
  const auto authority = rest.substr(0, path_begin);
  if (authority.find('@') != std::string_view::npos) {
    return fail("must not contain user info");
  }
  const auto parts = split_authority(authority);
  if (parts.error != nullptr) {
    return fail(parts.error);
  }
  if (parts.host.empty()) {
    return fail("has no host");
  }
  http_endpoint ep;
  ep.tls = scheme == "https";
  ep.host = std::string{parts.host};
  ep.port = ep.tls ? 443 : 80;
  if (!parts.port.empty()) {
    const auto port = parse_port(parts.port);
    if (!port) {
      return fail("has a bad port");
    }
    ep.port = *port;
  }
  auto path = rest.substr(path_begin);
  while (!path.empty() && path.back() == '/') {
    path.remove_suffix(1);
  }
  ep.base_path = std::string{path};
  return {std::move(ep), {}};
}

const char* to_string(http_method x) {
  switch (x) {
    case http_method::get:
      return "GET";
    case http_method::post:
      return "POST";
    case http_method::put:
      return "PUT";
    case http_method::patch:
      return "PATCH";
    case http_method::delete_:
      return "DELETE";
  }
  return "GET";
}

bool is_idempotent(http_method x) {
  return x == http_method::get || x == http_method::put
         || x == http_method::delete_;
}

std::string printable(std::string_view text, std::size_t max_size) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < text.size() && i < max_size; ++i) {
    const auto u = static_cast<unsigned char>(text[i]);
    if (u >= 0x20 && u < 0x7f && u != '\\') {
      out += text[i];
    } else {
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 0xf];
    }
  }
  if (text.size() > max_size) {
    out += "...";
  }
  return out;
}

std::string check_header(std::string_view name, std::string_view value) {
  if (name.empty()) {
    return "header name must not be empty";
  }
  if (name.size() > max_header_name) {
    return "header name '" + printable(name, 100) + "' is longer than "
           + std::to_string(max_header_name) + " bytes";
  }
  if (!std::all_of(name.begin(), name.end(), is_token_char)) {
    return "header name '" + printable(name, 100)
           + "' has a character not allowed in a header name";
  }
  if (contains(framing_headers, lower(name))) {
    return "header '" + std::string{name}
           + "' is set by ringback and must not be given";
  }
  const bool has_control = std::any_of(value.begin(), value.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && u != '\t') || u == 0x7f;
  });
  if (has_control) {
    return "header '" + std::string{name}
           + "' has a control character (such as CR or LF) in its value";
  }
  if (value.size() > max_header_value) {
    return "header '" + std::string{name} + "' has a value longer than "
           + std::to_string(max_header_value) + " bytes";
  }
  return {};
}

// -- client -------------------------------------------------------------------

class http_client::impl {
public:
  impl(http_client_options options, std::optional<ssl::context> tls)
    : options_(std::move(options)),
      tls_(std::move(tls)),
      host_header_(options_.endpoint.host_header()),
      peer_(options_.endpoint.host + ":"
            + std::to_string(options_.endpoint.port)) {
    // Nothing to do.
  }

  http_result send(const http_request& request) {
    if (auto error = check_request(request); !error.empty()) {
      return {std::nullopt, std::move(error), false,
              http_failure::invalid_request};
    }
    send_deadlines deadlines;
    deadlines.connect_budget = options_.connect_timeout;
    deadlines.request_budget = options_.request_timeout;
    if (request.timeout) {
      deadlines.total = std::chrono::steady_clock::now() + *request.timeout;
      deadlines.total_budget = *request.timeout;
    }
    const bool reused = is_open() && idle_connection_alive();
    if (!reused) {
      close();
    }
    if (!is_open()) {
      if (auto failure = connect(deadlines); failure.failed()) {
        return {std::nullopt, std::move(failure.error), false, failure.kind};
      }
    }
    auto outcome = exchange(request, deadlines);
    if (!outcome.response && reused && may_retry(request, outcome)) {
      close();
      if (auto failure = connect(deadlines); failure.failed()) {
        return {std::nullopt, std::move(failure.error), false, failure.kind};
      }
      outcome = exchange(request, deadlines);
    }
    if (!outcome.response) {
      close();
      return {std::nullopt, describe_failure(request, outcome.ec, deadlines),
              !outcome.nothing_written, classify(outcome.ec)};
    }
    return {std::move(outcome.response), {}};
  }

  std::size_t connections_opened() const {
    return connections_opened_;
  }

private:
  bool is_open() const {
    return plain_.has_value() || secure_.has_value();
  }

  beast::tcp_stream& tcp_layer() {
    return secure_ ? beast::get_lowest_layer(*secure_) : *plain_;
  }

  template <class F>
  void with_stream(F&& f) {
    if (secure_) {
      f(*secure_);
    } else {
      f(*plain_);
    }
  }

  /// Runs handlers until the operation just started has set `done`. Every
  /// operation but resolving is bounded by a tcp_stream expiry, so this
  /// returns in time; a resolve abandoned at its deadline may complete in a
  /// later call (its state is shared, see `resolve`).
  void run_until(const bool& done) {
    ioc_.restart();
    while (!done) {
      ioc_.run_one();
    }
  }

  void close() {
    plain_.reset();
    secure_.reset();
    buffer_.clear();
  }

  /// A kept-alive connection is only reused if the server has sent nothing
  /// since the last response: readable data or EOF means it is closing (or
  /// misbehaving). Catching this before writing keeps POSTs safe.
  bool idle_connection_alive() {
    if (buffer_.size() != 0) {
      return false;
    }
    auto& sock = tcp_layer().socket();
    error_code ec;
    sock.non_blocking(true, ec);
    if (ec) {
      return false;
    }
    char byte = 0;
    sock.receive(asio::buffer(&byte, 1), tcp::socket::message_peek, ec);
    error_code ignored;
    sock.non_blocking(false, ignored);
    return ec == asio::error::would_block;
  }

  static std::string check_request(const http_request& request) {
    if (!is_valid_target(request.target)) {
      return "request target '" + printable(request.target)
             + "' is empty or has a space, control or non-ASCII character";
    }
    for (const auto& [name, value] : request.headers) {
      if (auto error = check_header(name, value); !error.empty()) {
        return error;
      }
    }
    return {};
  }

  static bool may_retry(const http_request& request,
                        const exchange_outcome& outcome) {
    if (!is_connection_lost(outcome.ec)) {
      return false;
    }
    return is_idempotent(request.method) || outcome.nothing_written;
  }

  static http_failure classify(const error_code& ec) {
    if (ec == beast::error::timeout) {
      return http_failure::timeout;
    }
    if (is_connection_lost(ec)) {
      return http_failure::connection_lost;
    }
    return http_failure::protocol;
  }

  std::string describe_failure(const http_request& request,
                               const error_code& ec,
                               const send_deadlines& deadlines) const {
    std::string out = to_string(request.method);
    out += ' ';
    out += request.target;
    out += ": ";
    if (ec == beast::error::timeout) {
      out += describe_timeout(deadlines.request_timeout());
    } else if (is_connection_lost(ec)) {
      out += "connection closed by " + peer_ + " before the response";
    } else {
      out += ec.message();
    }
    return out;
  }

  /// Opens a connection (TLS: with the handshake); returns why it failed,
  /// or no failure.
  failure_info connect(const send_deadlines& deadlines) {
    const auto deadline = deadlines.connect_deadline();
    const auto budget = deadlines.connect_timeout();
    tcp::resolver::results_type endpoints;
    if (auto failure = resolve(deadline, budget, endpoints); failure.failed()) {
      return failure;
    }
    beast::tcp_stream stream{ioc_};
    stream.expires_at(deadline);
    error_code ec;
    bool done = false;
    stream.async_connect(endpoints, [&](error_code e, const tcp::endpoint&) {
      ec = e;
      done = true;
    });
    run_until(done);
    if (ec == beast::error::timeout) {
      return {"connect to " + peer_ + " " + describe_timeout(budget),
              http_failure::timeout};
    }
    if (ec) {
      return {"connect to " + peer_ + " failed: " + ec.message(),
              http_failure::connect};
    }
    stream.socket().set_option(tcp::no_delay{true}, ec);
    ++connections_opened_;
    if (!tls_) {
      plain_.emplace(std::move(stream));
      return {};
    }
    return handshake(std::move(stream), deadline, budget);
  }

  /// Resolves the host within the deadline. getaddrinfo cannot be
  /// interrupted, so a lookup still running at the deadline is abandoned:
  /// its handler only touches shared state and runs whenever it completes.
  failure_info resolve(steady_time deadline, std::chrono::milliseconds budget,
                       tcp::resolver::results_type& out) {
    struct state {
      bool done = false;
      error_code ec;
      tcp::resolver::results_type results;
    };
    auto st = std::make_shared<state>();
    resolver_.async_resolve(
      options_.endpoint.host, std::to_string(options_.endpoint.port),
      [st](error_code ec, tcp::resolver::results_type results) {
        st->done = true;
        st->ec = ec;
        st->results = std::move(results);
      });
    ioc_.restart();
    while (!st->done && ioc_.run_one_until(deadline) > 0) {
      ; // Nothing else to do: handlers do the work.
    }
    std::string reason;
    auto kind = http_failure::resolve;
    if (!st->done) {
      resolver_.cancel();
      reason = describe_timeout(budget);
      kind = http_failure::timeout;
    } else if (st->ec) {
      reason = st->ec.message();
    } else {
      out = std::move(st->results);
      return {};
    }
    return {"cannot resolve " + options_.endpoint.host + ": " + reason, kind};
  }

  failure_info handshake(beast::tcp_stream stream, steady_time deadline,
                         std::chrono::milliseconds budget) {
    const auto& host = options_.endpoint.host;
    secure_.emplace(std::move(stream), *tls_);
    // SNI carries host names only (RFC 6066), never IP literals.
    if (!is_ip_address(host)) {
      SSL_set_tlsext_host_name(secure_->native_handle(), host.c_str());
    }
    secure_->set_verify_mode(ssl::verify_peer);
    secure_->set_verify_callback(ssl::host_name_verification{host});
    beast::get_lowest_layer(*secure_).expires_at(deadline);
    error_code ec;
    bool done = false;
    secure_->async_handshake(ssl::stream_base::client, [&](error_code e) {
      ec = e;
      done = true;
    });
    run_until(done);
    if (!ec) {
      return {};
    }
    close();
    const bool timed_out = ec == beast::error::timeout;
    const auto reason = timed_out ? describe_timeout(budget) : ec.message();
    return {"TLS handshake with " + peer_ + " failed: " + reason,
            timed_out ? http_failure::timeout : http_failure::tls};
  }

  static http::verb verb_of(http_method method) {
    switch (method) {
      case http_method::get:
        return http::verb::get;
      case http_method::post:
        return http::verb::post;
      case http_method::put:
        return http::verb::put;
      case http_method::patch:
        return http::verb::patch;
      case http_method::delete_:
        return http::verb::delete_;
    }
    return http::verb::get;
  }

  http::request<http::string_body>
  make_request(const http_request& request) const {
    http::request<http::string_body> req{verb_of(request.method),
                                         request.target, 11};
    req.set(http::field::host, host_header_);
    req.set(http::field::user_agent, options_.user_agent);
    req.set(http::field::accept, "application/json");
    if (!options_.authorization.empty()) {
      req.set(http::field::authorization, options_.authorization);
    }
    if (!request.content_type.empty()) {
      req.set(http::field::content_type, request.content_type);
    }
    for (const auto& [name, value] : request.headers) {
      if (contains(default_headers, lower(name))) {
        req.set(name, value);
      } else {
        req.insert(name, value);
      }
    }
    req.body() = request.body;
    req.prepare_payload();
    return req;
  }

  exchange_outcome exchange(const http_request& request,
                            const send_deadlines& deadlines) {
    exchange_outcome outcome;
    const auto deadline = deadlines.request_deadline();
    auto req = make_request(request);
    std::size_t written = 0;
    bool done = false;
    tcp_layer().expires_at(deadline);
    with_stream([&](auto& stream) {
      http::async_write(stream, req, [&](error_code e, std::size_t n) {
        outcome.ec = e;
        written = n;
        done = true;
      });
    });
    run_until(done);
    if (outcome.ec) {
      outcome.nothing_written = written == 0;
      return outcome;
    }
    http::response_parser<http::string_body> parser;
    parser.header_limit(header_limit);
    bool truncated = false;
    if (options_.truncate_body) {
      parser.body_limit(boost::none);
      outcome.ec = read_truncating(parser, deadline, truncated);
    } else {
      parser.body_limit(options_.body_limit);
      done = false;
      tcp_layer().expires_at(deadline);
      with_stream([&](auto& stream) {
        http::async_read(stream, buffer_, parser,
                         [&](error_code e, std::size_t) {
                           outcome.ec = e;
                           done = true;
                         });
      });
      run_until(done);
    }
    if (outcome.ec) {
      return outcome;
    }
    auto res = parser.release();
    // Bytes after the response would be a protocol error: start afresh. A
    // truncated body leaves unread bytes on the connection: drop it.
    if (truncated || !res.keep_alive() || buffer_.size() != 0) {
      close();
    } else {
      tcp_layer().expires_never();
    }
    if (truncated) {
      res.body().resize(options_.body_limit);
    }
    outcome.response
      = http_response{static_cast<int>(res.result_int()),
                      std::string{res[http::field::retry_after]},
                      std::move(res.body()),
                      std::string{res[http::field::content_type]}, truncated};
    return outcome;
  }

  /// Reads a response piecewise until it is complete or its body has
  /// reached `body_limit` (then `truncated` is set; the caller cuts the body
  /// and closes the connection). The body grows at most one read (64 KiB)
  /// past the limit.
  error_code read_truncating(http::response_parser<http::string_body>& parser,
                             steady_time deadline, bool& truncated) {
    error_code ec;
    bool done = false;
    tcp_layer().expires_at(deadline);
    with_stream([&](auto& stream) {
      http::async_read_header(stream, buffer_, parser,
                              [&](error_code e, std::size_t) {
                                ec = e;
                                done = true;
                              });
    });
    run_until(done);
    while (!ec && !parser.is_done()) {
      if (parser.get().body().size() >= options_.body_limit) {
        truncated = true;
        return ec;
      }
      done = false;
      with_stream([&](auto& stream) {
        http::async_read_some(stream, buffer_, parser,
                              [&](error_code e, std::size_t) {
                                ec = e;
                                done = true;
                              });
      });
      run_until(done);
    }
    if (!ec && parser.get().body().size() > options_.body_limit) {
      truncated = true;
    }
    return ec;
  }

  http_client_options options_;
  asio::io_context ioc_{1};
  tcp::resolver resolver_{ioc_};
  std::optional<ssl::context> tls_;
  std::optional<beast::tcp_stream> plain_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure_;
  beast::flat_buffer buffer_;
  std::string host_header_;
  std::string peer_; // host:port, for messages
  std::size_t connections_opened_ = 0;
};

make_result<http_client> http_client::make(http_client_options options) {
  std::optional<ssl::context> tls;
  if (options.endpoint.tls) {
    tls.emplace(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_2_VERSION);
    error_code ec;
    if (options.ca_file.empty()) {
      tls->set_default_verify_paths(ec);
    } else {
      tls->load_verify_file(options.ca_file, ec);
    }
    if (ec) {
      const auto what = options.ca_file.empty()
                          ? std::string{"the system CA paths"}
                          : "CA file '" + options.ca_file + "'";
      return {nullptr, "cannot load " + what + ": " + ec.message()};
    }
  }
  auto ptr = std::make_unique<impl>(std::move(options), std::move(tls));
  return {std::unique_ptr<http_client>{new http_client{std::move(ptr)}}, {}};
}

http_client::http_client(std::unique_ptr<impl> ptr) : impl_(std::move(ptr)) {
  // Nothing to do.
}

http_client::~http_client() = default;

http_result http_client::send(const http_request& request) {
  return impl_->send(request);
}

std::size_t http_client::connections_opened() const {
  return impl_->connections_opened();
}

} // namespace ringback::adapters::twilio
