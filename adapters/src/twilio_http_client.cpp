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
  }
  return "GET";
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
    const bool reused = is_open() && idle_connection_alive();
    if (!reused) {
      close();
    }
    if (!is_open()) {
      if (auto error = connect(); !error.empty()) {
        return {std::nullopt, std::move(error)};
      }
    }
    auto outcome = exchange(request);
    if (!outcome.response && reused && may_retry(request, outcome)) {
      close();
      if (auto error = connect(); !error.empty()) {
        return {std::nullopt, std::move(error)};
      }
      outcome = exchange(request);
    }
    if (!outcome.response) {
      close();
      return {std::nullopt, describe_failure(request, outcome.ec),
              !outcome.nothing_written};
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

  static bool may_retry(const http_request& request,
                        const exchange_outcome& outcome) {
    if (!is_connection_lost(outcome.ec)) {
      return false;
    }
    return request.method == http_method::get || outcome.nothing_written;
  }

  std::string describe_failure(const http_request& request,
                               const error_code& ec) const {
    std::string out = to_string(request.method);
    out += ' ';
    out += request.target;
    out += ": ";
    if (ec == beast::error::timeout) {
      out += describe_timeout(options_.request_timeout);
    } else if (is_connection_lost(ec)) {
      out += "connection closed by " + peer_ + " before the response";
    } else {
      out += ec.message();
    }
    return out;
  }

  /// Opens a connection (TLS: with the handshake); returns the error, or
  /// an empty string on success.
  std::string connect() {
    const auto deadline = std::chrono::steady_clock::now()
                          + options_.connect_timeout;
    tcp::resolver::results_type endpoints;
    if (auto error = resolve(deadline, endpoints); !error.empty()) {
      return error;
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
      return "connect to " + peer_ + " "
             + describe_timeout(options_.connect_timeout);
    }
    if (ec) {
      return "connect to " + peer_ + " failed: " + ec.message();
    }
    stream.socket().set_option(tcp::no_delay{true}, ec);
    ++connections_opened_;
    if (!tls_) {
      plain_.emplace(std::move(stream));
      return {};
    }
    return handshake(std::move(stream), deadline);
  }

  /// Resolves the host within the deadline. getaddrinfo cannot be
  /// interrupted, so a lookup still running at the deadline is abandoned:
  /// its handler only touches shared state and runs whenever it completes.
  std::string resolve(steady_time deadline, tcp::resolver::results_type& out) {
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
    if (!st->done) {
      resolver_.cancel();
      reason = describe_timeout(options_.connect_timeout);
    } else if (st->ec) {
      reason = st->ec.message();
    } else {
      out = std::move(st->results);
      return {};
    }
    return "cannot resolve " + options_.endpoint.host + ": " + reason;
  }

  std::string handshake(beast::tcp_stream stream, steady_time deadline) {
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
    const auto reason = ec == beast::error::timeout
                          ? describe_timeout(options_.connect_timeout)
                          : ec.message();
    return "TLS handshake with " + peer_ + " failed: " + reason;
  }

  http::request<http::string_body>
  make_request(const http_request& request) const {
    const auto verb = request.method == http_method::post ? http::verb::post
                                                          : http::verb::get;
    http::request<http::string_body> req{verb, request.target, 11};
    req.set(http::field::host, host_header_);
    req.set(http::field::user_agent, options_.user_agent);
    req.set(http::field::accept, "application/json");
    if (!options_.authorization.empty()) {
      req.set(http::field::authorization, options_.authorization);
    }
    if (!request.content_type.empty()) {
      req.set(http::field::content_type, request.content_type);
    }
    req.body() = request.body;
    req.prepare_payload();
    return req;
  }

  exchange_outcome exchange(const http_request& request) {
    exchange_outcome outcome;
    const auto deadline = std::chrono::steady_clock::now()
                          + options_.request_timeout;
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
    parser.body_limit(options_.body_limit);
    done = false;
    tcp_layer().expires_at(deadline);
    with_stream([&](auto& stream) {
      http::async_read(stream, buffer_, parser, [&](error_code e, std::size_t) {
        outcome.ec = e;
        done = true;
      });
    });
    run_until(done);
    if (outcome.ec) {
      return outcome;
    }
    auto res = parser.release();
    // Bytes after the response would be a protocol error: start afresh.
    if (!res.keep_alive() || buffer_.size() != 0) {
      close();
    } else {
      tcp_layer().expires_never();
    }
    outcome.response = http_response{static_cast<int>(res.result_int()),
                                     std::string{res[http::field::retry_after]},
                                     std::move(res.body())};
    return outcome;
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
