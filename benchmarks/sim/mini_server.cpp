#include "mini_server.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <optional>

namespace ringback::sim {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct mini_server::state : std::enable_shared_from_this<state> {
  state(asio::io_context& io, server_handler h)
    : io(io), acceptor(io), handler(std::move(h)) {
  }

  asio::io_context& io;
  tcp::acceptor acceptor;
  server_handler handler;
  std::atomic<std::uint64_t> requests{0};
  bool stopped = false;

  void accept() {
    acceptor.async_accept(
      asio::make_strand(io),
      [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
        if (self->stopped) {
          return;
        }
        if (!ec) {
          socket.set_option(tcp::no_delay{true}, ec);
          std::make_shared<session>(std::move(socket), self)->read();
        }
        self->accept();
      });
  }

  struct session : std::enable_shared_from_this<session> {
    session(tcp::socket s, std::shared_ptr<state> owner)
      : stream(std::move(s)), owner(std::move(owner)) {
    }

    beast::tcp_stream stream;
    std::shared_ptr<state> owner;
    std::optional<asio::steady_timer> delay_timer;
    beast::flat_buffer buffer;
    std::optional<http::request_parser<http::string_body>> parser;
    server_response res;

    void read() {
      parser.emplace();
      parser->body_limit(1 << 20);
      stream.expires_after(std::chrono::seconds{120});
      http::async_read(stream, buffer, *parser,
                       [self = shared_from_this()](beast::error_code ec,
                                                   std::size_t) {
                         self->on_read(ec);
                       });
    }

    void on_read(beast::error_code ec) {
      if (ec) {
        stream.socket().shutdown(tcp::socket::shutdown_send, ec);
        return;
      }
      auto req = parser->release();
      owner->requests.fetch_add(1, std::memory_order_relaxed);
      res = {};
      res.version(req.version());
      res.result(http::status::ok);
      std::chrono::milliseconds delay{0};
      try {
        owner->handler(req, res, delay);
      } catch (const std::exception& e) {
        res = {};
        res.version(req.version());
        res.result(http::status::internal_server_error);
        res.body() = std::string{"simulator error: "} + e.what() + "\n";
      }
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      if (delay.count() > 0) {
        if (!delay_timer) {
          delay_timer.emplace(stream.get_executor());
        }
        delay_timer->expires_after(delay);
        delay_timer->async_wait(
          [self = shared_from_this()](beast::error_code) { self->write(); });
        return;
      }
      write();
    }

    void write() {
      stream.expires_after(std::chrono::seconds{30});
      http::async_write(stream, res,
                        [self = shared_from_this()](beast::error_code ec,
                                                    std::size_t) {
                          self->on_write(ec);
                        });
    }

    void on_write(beast::error_code ec) {
      if (ec) {
        return;
      }
      if (!res.keep_alive()) {
        stream.socket().shutdown(tcp::socket::shutdown_send, ec);
        return;
      }
      read();
    }
  };
};

mini_server::mini_server(asio::io_context& io, server_handler handler)
  : state_(std::make_shared<state>(io, std::move(handler))) {
}

mini_server::~mini_server() {
  stop();
}

std::optional<std::string> mini_server::start(const std::string& host,
                                              std::uint16_t port) {
  beast::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) {
    return "bad listen address '" + host + "': " + ec.message();
  }
  tcp::endpoint ep{address, port};
  auto& a = state_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) {
    a.set_option(asio::socket_base::reuse_address(true), ec);
  }
  if (!ec) {
    a.bind(ep, ec);
  }
  if (!ec) {
    a.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return "cannot listen on " + host + ":" + std::to_string(port) + ": "
           + ec.message();
  }
  port_ = a.local_endpoint().port();
  state_->accept();
  return std::nullopt;
}

void mini_server::stop() {
  if (state_->stopped) {
    return;
  }
  state_->stopped = true;
  beast::error_code ignored;
  state_->acceptor.close(ignored);
}

std::uint64_t mini_server::requests() const noexcept {
  return state_->requests.load(std::memory_order_relaxed);
}

} // namespace ringback::sim
