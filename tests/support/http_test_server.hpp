#pragma once

// A scripted, recording HTTP/1.1 server on 127.0.0.1 (optionally TLS) for
// outbound HTTP tests, and a self-signed test certificate made with
// OpenSSL's C API. Header-only: only *_test.cpp files are compiled into the
// test executables.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace ringback::test {

/// A request as the server received it.
struct received_request {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers; // in order
  std::string body;
  std::string sni;            // TLS server name sent by the client, if any
  std::size_t connection = 0; // 1-based number of the connection it came on

  /// The first header named `name` (any case); "" if absent.
  std::string header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (boost::beast::iequals(key, name)) {
        return value;
      }
    }
    return {};
  }

  /// How many headers are named `name` (any case).
  std::size_t count(std::string_view name) const {
    std::size_t n = 0;
    for (const auto& [key, value] : headers) {
      n += boost::beast::iequals(key, name) ? 1 : 0;
    }
    return n;
  }
};

/// What the server does with the next request.
struct scripted_reply {
  enum class action : std::uint8_t {
    respond,                // answer; keep the connection if the client wants
    respond_and_close,      // answer (without `Connection: close`), then close
    close_without_response, // read the request, then close
    hang,                   // read the request, never answer
    raw,                    // write `body` as is (no HTTP framing), then close
  };

  action what = action::respond;
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type = "application/json";

  static scripted_reply json(int status, std::string body) {
    return {action::respond, status, std::move(body), {}};
  }

  static scripted_reply raw_bytes(std::string bytes) {
    return {action::raw, 0, std::move(bytes), {}};
  }

  static scripted_reply of(action what) {
    return {what, 0, {}, {}};
  }
};

class HttpTestServer {
public:
  /// Listens on 127.0.0.1, any free port; with `tls`, speaks TLS.
  explicit HttpTestServer(boost::asio::ssl::context* tls = nullptr)
    : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}),
      tls_(tls) {
    accept();
    thread_ = std::thread{[this] { ioc_.run(); }};
  }

  ~HttpTestServer() {
    ioc_.stop();
    thread_.join();
  }

  HttpTestServer(const HttpTestServer&) = delete;
  HttpTestServer& operator=(const HttpTestServer&) = delete;

  std::uint16_t port() const {
    return acceptor_.local_endpoint().port();
  }

  /// `http://127.0.0.1:PORT` (or https) followed by `path`.
  std::string url(const std::string& path = "/") const {
    return std::string{tls_ != nullptr ? "https" : "http"}
           + "://127.0.0.1:" + std::to_string(port()) + path;
  }

  /// Queues the reply to a future request (used in order; with none left
  /// the server answers 500 "no scripted reply").
  void push(scripted_reply reply) {
    std::lock_guard<std::mutex> guard{mtx_};
    replies_.push_back(std::move(reply));
  }

  std::vector<received_request> requests() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return requests_;
  }

  /// Connections accepted so far.
  std::size_t connections() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return connections_;
  }

  /// Waits until the server has closed `n` connections (or 5 s passed).
  bool wait_closed(std::size_t n) {
    std::unique_lock<std::mutex> guard{mtx_};
    return closed_cv_.wait_for(guard, std::chrono::seconds{5},
                               [&] { return closed_ >= n; });
  }

private:
  template <class Stream>
  class Session;

  void accept();

  scripted_reply next_reply(received_request request) {
    std::lock_guard<std::mutex> guard{mtx_};
    requests_.push_back(std::move(request));
    if (replies_.empty()) {
      return scripted_reply::json(500, R"({"message":"no scripted reply"})");
    }
    auto reply = std::move(replies_.front());
    replies_.pop_front();
    return reply;
  }

  void note_closed() {
    std::lock_guard<std::mutex> guard{mtx_};
    ++closed_;
    closed_cv_.notify_all();
  }

  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::ssl::context* tls_;
  std::thread thread_;
  mutable std::mutex mtx_;
  std::condition_variable closed_cv_;
  std::deque<scripted_reply> replies_;
  std::vector<received_request> requests_;
  std::size_t connections_ = 0;
  std::size_t closed_ = 0;
};

template <class Stream>
class HttpTestServer::Session
  : public std::enable_shared_from_this<Session<Stream>> {
public:
  Session(HttpTestServer& server, std::size_t number, Stream stream)
    : server_(server), number_(number), stream_(std::move(stream)) {
    // Nothing to do.
  }

  void start() {
    if constexpr (std::is_same_v<Stream, boost::beast::tcp_stream>) {
      read();
    } else {
      stream_.async_handshake(
        boost::asio::ssl::stream_base::server,
        [self = this->shared_from_this()](boost::system::error_code ec) {
          if (ec) {
            return self->finish();
          }
          const char* name = SSL_get_servername(self->stream_.native_handle(),
                                                TLSEXT_NAMETYPE_host_name);
          self->sni_ = name != nullptr ? name : "";
          self->read();
        });
    }
  }

private:
  void read() {
    request_.emplace();
    request_->body_limit(1024 * 1024);
    boost::beast::http::async_read(
      stream_, buffer_, *request_,
      [self = this->shared_from_this()](boost::system::error_code ec,
                                        std::size_t) { self->on_read(ec); });
  }

  void on_read(boost::system::error_code ec) {
    if (ec) {
      return finish();
    }
    const auto& msg = request_->get();
    received_request rec;
    rec.method = std::string{msg.method_string()};
    rec.target = std::string{msg.target()};
    for (const auto& field : msg) {
      rec.headers.emplace_back(std::string{field.name_string()},
                               std::string{field.value()});
    }
    rec.body = msg.body();
    rec.sni = sni_;
    rec.connection = number_;
    keep_alive_ = msg.keep_alive();
    auto reply = server_.next_reply(std::move(rec));
    switch (reply.what) {
      case scripted_reply::action::respond:
        return write(reply, false);
      case scripted_reply::action::respond_and_close:
        return write(reply, true);
      case scripted_reply::action::close_without_response:
        return finish();
      case scripted_reply::action::hang:
        return wait_for_client_close();
      case scripted_reply::action::raw:
        return write_raw(std::move(reply.body));
    }
  }

  void write(const scripted_reply& reply, bool close_after) {
    namespace http = boost::beast::http;
    response_ = {static_cast<http::status>(reply.status), 11};
    if (!reply.content_type.empty()) {
      response_.set(http::field::content_type, reply.content_type);
    }
    for (const auto& [name, value] : reply.headers) {
      response_.set(name, value);
    }
    response_.body() = reply.body;
    response_.keep_alive(keep_alive_);
    response_.prepare_payload();
    http::async_write(stream_, response_,
                      [self = this->shared_from_this(), close_after](
                        boost::system::error_code ec, std::size_t) {
                        if (ec || close_after
                            || !self->response_.keep_alive()) {
                          return self->finish();
                        }
                        self->read();
                      });
  }

  void write_raw(std::string bytes) {
    raw_ = std::move(bytes);
    boost::asio::async_write(
      stream_, boost::asio::buffer(raw_),
      [self = this->shared_from_this()](boost::system::error_code,
                                        std::size_t) { self->finish(); });
  }

  /// Keeps the connection open, unanswered, until the client gives up.
  void wait_for_client_close() {
    stream_.async_read_some(boost::asio::buffer(scratch_),
                            [self = this->shared_from_this()](
                              boost::system::error_code ec, std::size_t) {
                              if (ec) {
                                return self->finish();
                              }
                              self->wait_for_client_close();
                            });
  }

  void finish() {
    boost::system::error_code ec;
    auto& socket = boost::beast::get_lowest_layer(stream_).socket();
    socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    socket.close(ec);
    server_.note_closed();
  }

  HttpTestServer& server_;
  std::size_t number_;
  Stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<
    boost::beast::http::request_parser<boost::beast::http::string_body>>
    request_;
  boost::beast::http::response<boost::beast::http::string_body> response_;
  std::string raw_;
  std::string sni_;
  bool keep_alive_ = true;
  std::array<char, 512> scratch_{};
};

inline void HttpTestServer::accept() {
  acceptor_.async_accept([this](boost::system::error_code ec,
                                boost::asio::ip::tcp::socket socket) {
    if (ec) {
      return;
    }
    std::size_t number = 0;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      number = ++connections_;
    }
    using plain = boost::beast::tcp_stream;
    using secure = boost::beast::ssl_stream<boost::beast::tcp_stream>;
    if (tls_ != nullptr) {
      std::make_shared<Session<secure>>(*this, number,
                                        secure{std::move(socket), *tls_})
        ->start();
    } else {
      std::make_shared<Session<plain>>(*this, number, plain{std::move(socket)})
        ->start();
    }
    accept();
  });
}

// -- a self-signed certificate ------------------------------------------------

/// A self-signed certificate (its own CA) and its key, as PEM.
struct test_certificate {
  std::string cert_pem;
  std::string key_pem;
};

namespace detail {

inline std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const auto size = BIO_get_mem_data(bio, &data);
  return {data, static_cast<std::size_t>(size)};
}

inline void add_extension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) {
    throw std::runtime_error{std::string{"bad certificate extension: "}
                             + value};
  }
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

} // namespace detail

/// A fresh P-256 certificate valid for an hour, for `subject_alt_names`
/// (OpenSSL syntax, e.g. "DNS:localhost,IP:127.0.0.1").
inline test_certificate make_test_certificate(const char* subject_alt_names) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(
    name, "CN", MBSTRING_ASC,
    reinterpret_cast<const unsigned char*>("ringback test"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  detail::add_extension(cert, NID_basic_constraints, "critical,CA:TRUE");
  detail::add_extension(cert, NID_key_usage,
                        "critical,digitalSignature,keyCertSign");
  detail::add_extension(cert, NID_subject_alt_name, subject_alt_names);
  X509_sign(cert, key, EVP_sha256());
  test_certificate out;
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  out.cert_pem = detail::bio_text(bio);
  BIO_free(bio);
  bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  out.key_pem = detail::bio_text(bio);
  BIO_free(bio);
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

} // namespace ringback::test
