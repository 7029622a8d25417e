#pragma once

// A scripted, recording HTTP/1.1 server on 127.0.0.1 (optionally TLS) that
// plays Twilio's REST API in the REST client's tests. Header-only: only
// *_test.cpp files are compiled into the test executable.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/ssl.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace ringback::test {

/// A request as the mock received it.
struct recorded_request {
  std::string method;
  std::string target;
  std::string host;
  std::string authorization;
  std::string content_type;
  std::string user_agent;
  std::string body;
  std::string sni;            // TLS server name sent by the client, if any
  std::size_t connection = 0; // 1-based number of the connection it came on
};

/// What the mock does with the next request.
struct mock_reply {
  enum class action : std::uint8_t {
    respond,                // answer; keep the connection if the client wants
    respond_and_close,      // answer (without `Connection: close`), then close
    close_without_response, // read the request, then close
    hang,                   // read the request, never answer
  };

  action what = action::respond;
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  static mock_reply json(int status, std::string body) {
    return {action::respond, status, std::move(body), {}};
  }
};

class TwilioMockServer {
public:
  /// Listens on 127.0.0.1, any free port; with `tls`, speaks TLS.
  explicit TwilioMockServer(boost::asio::ssl::context* tls = nullptr)
    : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}),
      tls_(tls) {
    accept();
    thread_ = std::thread{[this] { ioc_.run(); }};
  }

  ~TwilioMockServer() {
    ioc_.stop();
    thread_.join();
  }

  TwilioMockServer(const TwilioMockServer&) = delete;
  TwilioMockServer& operator=(const TwilioMockServer&) = delete;

  std::uint16_t port() const {
    return acceptor_.local_endpoint().port();
  }

  /// `http://127.0.0.1:PORT` (or https).
  std::string url() const {
    return std::string{tls_ != nullptr ? "https" : "http"}
           + "://127.0.0.1:" + std::to_string(port());
  }

  /// Queues the reply to a future request (replies are used in order; with
  /// none left the mock answers 500 "no scripted reply").
  void push(mock_reply reply) {
    std::lock_guard<std::mutex> guard{mtx_};
    replies_.push_back(std::move(reply));
  }

  std::vector<recorded_request> requests() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return requests_;
  }

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

  mock_reply next_reply(recorded_request request) {
    std::lock_guard<std::mutex> guard{mtx_};
    requests_.push_back(std::move(request));
    if (replies_.empty()) {
      return mock_reply::json(500, R"({"message":"no scripted reply"})");
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
  std::deque<mock_reply> replies_;
  std::vector<recorded_request> requests_;
  std::size_t connections_ = 0;
  std::size_t closed_ = 0;
};

template <class Stream>
class TwilioMockServer::Session
  : public std::enable_shared_from_this<Session<Stream>> {
public:
  Session(TwilioMockServer& server, std::size_t number, Stream stream)
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
    request_ = {};
    boost::beast::http::async_read(
      stream_, buffer_, request_,
      [self = this->shared_from_this()](boost::system::error_code ec,
                                        std::size_t) { self->on_read(ec); });
  }

  void on_read(boost::system::error_code ec) {
    namespace http = boost::beast::http;
    if (ec) {
      return finish();
    }
    recorded_request rec;
    rec.method = std::string{request_.method_string()};
    rec.target = std::string{request_.target()};
    rec.host = std::string{request_[http::field::host]};
    rec.authorization = std::string{request_[http::field::authorization]};
    rec.content_type = std::string{request_[http::field::content_type]};
    rec.user_agent = std::string{request_[http::field::user_agent]};
    rec.body = request_.body();
    rec.sni = sni_;
    rec.connection = number_;
    auto reply = server_.next_reply(std::move(rec));
    switch (reply.what) {
      case mock_reply::action::respond:
        return write(reply, false);
      case mock_reply::action::respond_and_close:
        return write(reply, true);
      case mock_reply::action::close_without_response:
        return finish();
      case mock_reply::action::hang:
        return wait_for_client_close();
    }
  }

  void write(const mock_reply& reply, bool close_after) {
    namespace http = boost::beast::http;
    response_ = {static_cast<http::status>(reply.status), 11};
    response_.set(http::field::content_type, "application/json; charset=utf-8");
    for (const auto& [name, value] : reply.headers) {
      response_.set(name, value);
    }
    response_.body() = reply.body;
    response_.keep_alive(request_.keep_alive());
    response_.prepare_payload();
    http::async_write(stream_, response_,
                      [self = this->shared_from_this(),
                       close_after](boost::system::error_code ec, std::size_t) {
                        if (ec || close_after
                            || !self->response_.keep_alive()) {
                          return self->finish();
                        }
                        self->read();
                      });
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

  TwilioMockServer& server_;
  std::size_t number_;
  Stream stream_;
  boost::beast::flat_buffer buffer_;
  boost::beast::http::request<boost::beast::http::string_body> request_;
  boost::beast::http::response<boost::beast::http::string_body> response_;
  std::string sni_;
  std::array<char, 512> scratch_{};
};

inline void TwilioMockServer::accept() {
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

} // namespace ringback::test
