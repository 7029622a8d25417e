#include "ringback/adapters/http/http_server.hpp"

#include "ringback/engine/executors.hpp"
#include "ringback/engine/log.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <iterator>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ringback::adapters {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

namespace http_detail {
class session;
struct server_core;
} // namespace http_detail

namespace {

/// After an error response, how long and how much the server keeps reading
/// (and discarding) before it closes, so that the client reads the response
/// instead of a reset caused by unread request bytes.
constexpr std::chrono::milliseconds linger_timeout{1000};
constexpr std::size_t linger_max_bytes = std::size_t{1024} * 1024;

/// Pause before accepting again after accept failed (e.g. out of file
/// descriptors), so that the failure does not spin.
constexpr std::chrono::milliseconds accept_retry_delay{100};

bool valid_header_name(std::string_view x) {
  if (x.empty()) {
    return false;
  }
  for (unsigned char c : x) {
    // RFC 9110 token characters.
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9')
              || std::string_view{"!#$%&'*+-.^_`|~"}.find(static_cast<char>(c))
                   != std::string_view::npos;
    if (!ok) {
      return false;
    }
  }
  return true;
}

bool valid_header_value(std::string_view x) {
  return x.find_first_of(std::string_view{"\r\n\0", 3})
         == std::string_view::npos;
}

} // namespace

// -- core: what sessions share, outliving the server object -------------------

/// Owned by `http_server` and by every session, so the io_context outlives
/// every socket even when a reply slot (holding its session) is released by
/// an actor long after the server object is gone.
struct http_detail::server_core : std::enable_shared_from_this<server_core> {
  server_core(http_server_options opts, http_handler fn)
    : options(normalize(std::move(opts))), handler(std::move(fn)) {
    // nop
  }

  static http_server_options normalize(http_server_options x) {
    x.threads = std::max<std::size_t>(x.threads, 1);
    return x;
  }

  void log(const std::string& line) const {
    if (options.log) {
      options.log(line);
    } else {
      engine::log_warn("http", line);
    }
  }

  void do_accept();
  void on_accept(const error_code& ec, tcp::socket socket);
  void on_session_closed(std::uint64_t id);

  /// Posts `fn` unless the server has stopped for good (then it would never
  /// run, and a queued handler holding a session would keep this core alive
  /// in a cycle).
  template <class Executor, class F>
  void post_unless_stopped(const Executor& ex, F&& fn) {
    std::lock_guard<std::mutex> guard{mutex};
    if (!stopped) {
      net::post(ex, std::forward<F>(fn));
    }
  }

  /// One io_context per io thread, each run by its thread alone: a
  /// connection lives on one of them (dealt round-robin as accepted), so its
  /// handlers never need a strand and one thread's readiness events never
  /// wake another. The acceptor lives on the first.
  static std::vector<std::unique_ptr<net::io_context>>
  make_contexts(std::size_t n) {
    std::vector<std::unique_ptr<net::io_context>> xs;
    for (std::size_t i = 0; i < n; ++i) {
      xs.push_back(std::make_unique<net::io_context>(1));
    }
    return xs;
  }

  /// The context of the next accepted connection (on the acceptor's thread).
  net::io_context& next_context() {
    return *iocs[next_ioc++ % iocs.size()];
  }

  const http_server_options options;
  const http_handler handler;
  std::vector<std::unique_ptr<net::io_context>> iocs{
    make_contexts(options.threads)};
  std::vector<net::executor_work_guard<net::io_context::executor_type>> work;
  tcp::acceptor acceptor{*iocs.front()};
  net::steady_timer accept_retry{*iocs.front()};
  std::size_t next_ioc = 0;
  std::vector<std::thread> threads;
  std::uint16_t bound_port = 0;
  bool started = false;

  std::atomic<std::size_t> open{0};
  std::mutex mutex; // guards everything below
  std::condition_variable all_closed;
  bool stopping = false; // no new connections, no keep-alive
  bool stopped = false;  // nothing is posted anymore
  std::uint64_t next_session_id = 0;
  std::unordered_map<std::uint64_t, std::weak_ptr<session>> sessions;
};

namespace http_detail {

using core = server_core;

class session_slot;

/// One connection. Every member is touched on the connection's io thread
/// only; other threads come in through the `post_*` functions.
class session : public std::enable_shared_from_this<session> {
public:
  session(std::shared_ptr<core> owner, tcp::socket socket, std::uint64_t id)
    : core_(std::move(owner)),
      stream_(std::move(socket)),
      deadline_(stream_.get_executor()),
      id_(id) {
    error_code ec;
    auto peer = stream_.socket().remote_endpoint(ec);
    if (!ec) {
      remote_address_ = peer.address().to_string();
      remote_port_ = peer.port();
    }
    stream_.socket().set_option(tcp::no_delay{true}, ec);
  }

  ~session() {
    if (!closed_) {
      core_->on_session_closed(id_);
    }
  }

  void start() {
    net::dispatch(stream_.get_executor(),
                  [self = shared_from_this()] { self->read_request(); });
  }

  // -- entry points for other threads -----------------------------------------

  void post_reply(std::uint64_t seq, http_response response) {
    core_->post_unless_stopped(stream_.get_executor(),
                               [self = shared_from_this(), seq,
                                r = std::move(response)]() mutable {
                                 self->on_reply(seq, std::move(r));
                               });
  }

  void post_deadline(std::uint64_t seq, std::weak_ptr<session_slot> slot,
                     std::chrono::milliseconds after);

  /// Graceful: closes the connection unless a request is being answered.
  void post_stop() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      self->stop_requested_ = true;
      if (self->state_ == state::idle || self->state_ == state::reading) {
        self->close();
      }
    });
  }

  void post_close() {
    net::post(stream_.get_executor(),
              [self = shared_from_this()] { self->close(); });
  }

private:
  enum class state { idle, reading, handling, writing, lingering, closed };

  // -- reading ----------------------------------------------------------------

  void read_request() {
    if (stop_requested_) {
      close();
      return;
    }
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(
      std::min<std::size_t>(core_->options.limits.max_header_bytes,
                            std::numeric_limits<std::uint32_t>::max())));
    parser_->body_limit(
      static_cast<std::uint64_t>(core_->options.limits.max_body_bytes));
    if (first_request_ || buffer_.size() > 0) {
      read_header();
      return;
    }
    // Between keep-alive requests: wait for the next one's first byte with
    // the idle timeout; the read timeout starts with that byte.
    state_ = state::idle;
    stream_.expires_after(core_->options.limits.idle_timeout);
    stream_.async_read_some(buffer_.prepare(1024),
                            [self = shared_from_this()](const error_code& ec,
                                                        std::size_t n) {
                              if (ec) {
                                self->close();
                                return;
                              }
                              self->buffer_.commit(n);
                              self->read_header();
                            });
  }

  void read_header() {
    state_ = state::reading;
    stream_.expires_after(core_->options.limits.read_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = shared_from_this()](const error_code& ec,
                                                         std::size_t) {
                               self->on_header(ec);
                             });
  }

  void on_header(const error_code& ec) {
    if (ec) {
      on_read_error(ec);
      return;
    }
    // Beast has rejected anything but HTTP/1.0 and HTTP/1.1 (bad_version).
    const auto& req = parser_->get();
    auto expect = req[bhttp::field::expect];
    if (!parser_->is_done() && req.version() >= 11
        && iequals(expect, "100-continue")) {
      static constexpr std::string_view continue_line
        = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(
        stream_, net::buffer(continue_line.data(), continue_line.size()),
        [self = shared_from_this()](const error_code& ec, std::size_t) {
          if (ec) {
            self->close();
          } else {
            self->read_body();
          }
        });
      return;
    }
    read_body();
  }

  void read_body() {
    if (parser_->is_done()) {
      on_read({});
      return;
    }
    // The read timeout set before the header still runs: it bounds both.
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](const error_code& ec,
                                                  std::size_t) {
                        self->on_read(ec);
                      });
  }

  void on_read_error(const error_code& ec) {
    if (ec.category()
          != bhttp::make_error_code(bhttp::error::end_of_stream).category()
        || ec == bhttp::error::end_of_stream
        || ec == bhttp::error::partial_message) {
      // The peer went away, reset, or timed out: nobody to answer.
      close();
      return;
    }
    if (ec == bhttp::error::body_limit) {
      send_error(413, "Payload Too Large", "request body too large", ec);
    } else if (ec == bhttp::error::header_limit
               || ec == bhttp::error::buffer_overflow) {
      send_error(431, "Request Header Fields Too Large",
                 "request header too large", ec);
    } else {
      send_error(400, "Bad Request", "malformed request", ec);
    }
  }

  void on_read(const error_code& ec) {
    if (ec) {
      on_read_error(ec);
      return;
    }
    first_request_ = false;
    auto msg = parser_->release();
    parser_.reset();
    request_ = http_request{};
    request_.method = std::string{msg.method_string()};
    request_.set_target(std::string{msg.target()});
    request_.version = msg.version();
    request_.headers.reserve(
      static_cast<std::size_t>(std::distance(msg.begin(), msg.end())));
    for (const auto& field : msg) {
      request_.headers.push_back(
        {std::string{field.name_string()}, std::string{field.value()}});
    }
    request_.body = std::move(msg.body());
    request_.remote_address = remote_address_;
    request_.remote_port = remote_port_;
    keep_alive_ = msg.keep_alive();
    head_ = msg.method() == bhttp::verb::head;
    ++seq_;
    state_ = state::handling;
    stream_.expires_never();
    dispatch_to_handler();
  }

  void dispatch_to_handler();

  // -- answering --------------------------------------------------------------

  void on_reply(std::uint64_t seq, http_response r) {
    if (seq != seq_ || state_ != state::handling) {
      return; // a stale answer, or the connection is gone
    }
    deadline_.cancel();
    write_response(std::move(r), stop_requested_ ? false : keep_alive_);
  }

  void send_error(int status, std::string_view reason, std::string_view what,
                  const error_code& ec) {
    core_->log(std::to_string(status) + " " + std::string{reason} + " to "
               + remote_address_ + ":" + std::to_string(remote_port_) + ": "
               + std::string{what} + " (" + ec.message() + ")");
    request_ = http_request{};
    head_ = false;
    linger_ = true;
    write_response(http_response::text(status, std::string{reason} + "\n"),
                   false);
  }

  void write_response(http_response r, bool keep_alive) {
    keep_alive_ = keep_alive;
    response_ = {};
    response_.version(request_.version == 10 ? 10 : 11);
    if (r.status < 200 || r.status > 599) {
      core_->log("handler answered with status " + std::to_string(r.status)
                 + " for " + request_.target + ", sending 500");
      r = http_response::text(500, "Internal Server Error\n");
    }
    response_.result(static_cast<unsigned>(r.status));
    if (!r.content_type.empty()) {
      if (valid_header_value(r.content_type)) {
        response_.set(bhttp::field::content_type, r.content_type);
      } else {
        core_->log("dropped an invalid Content-Type for " + request_.target);
      }
    }
    for (auto& h : r.headers) {
      if (!valid_header_name(h.name) || !valid_header_value(h.value)) {
        core_->log("dropped an invalid header for " + request_.target);
        continue;
      }
      // The server alone decides framing and the connection's fate.
      if (iequals(h.name, "content-length")
          || iequals(h.name, "transfer-encoding")
          || iequals(h.name, "connection")) {
        continue;
      }
      response_.insert(h.name, h.value);
    }
    auto no_body = r.status == 204 || r.status == 304;
    if (no_body) {
      r.body.clear();
    }
    auto length = r.body.size();
    if (head_) {
      // A HEAD answer carries the length of the body it does not send.
      response_.keep_alive(keep_alive_);
      if (!no_body) {
        response_.content_length(length);
      }
    } else {
      response_.body() = std::move(r.body);
      response_.keep_alive(keep_alive_);
      response_.prepare_payload();
    }
    state_ = state::writing;
    stream_.expires_after(core_->options.limits.write_timeout);
    bhttp::async_write(stream_, response_,
                       [self = shared_from_this()](const error_code& ec,
                                                   std::size_t) {
                         self->on_write(ec);
                       });
  }

  void on_write(const error_code& ec) {
    response_ = {};
    if (ec) {
      close();
      return;
    }
    if (linger_) {
      linger();
      return;
    }
    if (!keep_alive_ || stop_requested_) {
      error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      close();
      return;
    }
    read_request();
  }

  // -- closing ----------------------------------------------------------------

  /// Half-closes, then reads and discards what the client still sends (the
  /// rest of an oversized request) for a while, so that closing with unread
  /// data does not reset the connection under the client's feet.
  void linger() {
    state_ = state::lingering;
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(linger_timeout);
    drain();
  }

  void drain() {
    buffer_.clear(); // reuses its storage: no per-connection scratch space
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](const error_code& ec,
                                                        std::size_t n) {
                              self->lingered_ += n;
                              if (ec || self->lingered_ > linger_max_bytes) {
                                self->close();
                              } else {
                                self->drain();
                              }
                            });
  }

  void close() {
    if (closed_) {
      return;
    }
    closed_ = true;
    state_ = state::closed;
    parser_.reset();
    error_code ignored;
    deadline_.cancel();
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    core_->on_session_closed(id_);
  }

  std::shared_ptr<core> core_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> response_;
  http_request request_;
  net::steady_timer deadline_;
  std::string remote_address_;
  std::uint16_t remote_port_ = 0;
  std::uint64_t id_;
  std::uint64_t seq_ = 0; // numbers the requests; a slot answers its own
  std::size_t lingered_ = 0;
  state state_ = state::idle;
  bool first_request_ = true;
  bool keep_alive_ = false;
  bool head_ = false;
  bool linger_ = false;
  bool stop_requested_ = false;
  bool closed_ = false;
};

/// The server's reply slot: holds its session (keeping the connection
/// alive) and posts the answer onto the session's io thread.
class session_slot final : public reply_slot,
                           public std::enable_shared_from_this<session_slot> {
public:
  session_slot(std::shared_ptr<session> owner, std::uint64_t seq)
    : session_(std::move(owner)), seq_(seq) {
  }

  ~session_slot() override {
    if (!claim()) {
      return;
    }
    try {
      std::optional<http_response> fallback;
      {
        std::lock_guard<std::mutex> guard{mutex_};
        fallback = std::move(fallback_);
      }
      if (!fallback) {
        fallback = http_response::text(500, "Internal Server Error\n");
      }
      session_->post_reply(seq_, std::move(*fallback));
    } catch (...) {
      // Out of memory: the connection closes without an answer instead.
    }
  }

  /// The deadline has passed: answer with the fallback unless answered.
  void expire() {
    std::optional<http_response> fallback;
    {
      std::lock_guard<std::mutex> guard{mutex_};
      fallback = fallback_;
    }
    if (fallback) {
      reply(std::move(*fallback));
    }
  }

protected:
  void deliver(http_response response) override {
    session_->post_reply(seq_, std::move(response));
  }

  void arm_deadline(std::chrono::milliseconds after,
                    http_response fallback) override {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      fallback_ = std::move(fallback);
    }
    session_->post_deadline(seq_, weak_from_this(), after);
  }

private:
  std::shared_ptr<session> session_;
  std::uint64_t seq_;
  std::mutex mutex_;
  std::optional<http_response> fallback_;
};

void session::post_deadline(std::uint64_t seq, std::weak_ptr<session_slot> slot,
                            std::chrono::milliseconds after) {
  core_->post_unless_stopped(
    stream_.get_executor(),
    [self = shared_from_this(), seq, slot = std::move(slot), after] {
      if (seq != self->seq_ || self->state_ != state::handling) {
        return;
      }
      // Re-arming cancels the earlier wait (its handler sees the abort).
      self->deadline_.expires_after(after);
      self->deadline_.async_wait([slot](const error_code& ec) {
        if (ec) {
          return;
        }
        // A slot already gone has answered for itself in its destructor.
        if (auto s = slot.lock()) {
          s->expire();
        }
      });
    });
}

void session::dispatch_to_handler() {
  auto slot = std::make_shared<session_slot>(shared_from_this(), seq_);
  try {
    core_->handler(request_, slot);
    return;
  } catch (const std::exception& e) {
    core_->log("handler failed for " + request_.method + " " + request_.target
               + ": " + e.what());
  } catch (...) {
    core_->log("handler failed for " + request_.method + " " + request_.target
               + ": unknown exception");
  }
  slot->reply(http_response::text(500, "Internal Server Error\n"));
}

} // namespace http_detail

using http_detail::session;

// -- core ---------------------------------------------------------------------

void http_detail::server_core::do_accept() {
  // Handlers capture `this`, not a shared_ptr: they live in `iocs`, which the
  // core owns, so they can never outlive it.
  acceptor.async_accept(next_context(),
                        [this](const error_code& ec, tcp::socket socket) {
                          on_accept(ec, std::move(socket));
                        });
}

void http_detail::server_core::on_accept(const error_code& ec,
                                         tcp::socket socket) {
  if (ec == net::error::operation_aborted || !acceptor.is_open()) {
    return;
  }
  if (ec) {
    log("accept failed: " + ec.message());
    accept_retry.expires_after(accept_retry_delay);
    accept_retry.async_wait([this](const error_code& ec) {
      if (!ec && acceptor.is_open()) {
        do_accept();
      }
    });
    return;
  }
  std::shared_ptr<session> s;
  std::optional<tcp::socket> refused;
  {
    std::lock_guard<std::mutex> guard{mutex};
    if (stopping) {
      return; // `socket` closes as it goes out of scope
    }
    if (open.load() >= options.limits.max_connections) {
      refused.emplace(std::move(socket));
    } else {
      auto id = next_session_id++;
      ++open;
      s = std::make_shared<session>(shared_from_this(), std::move(socket), id);
      sessions.emplace(id, s);
    }
  }
  if (refused) {
    log("refused a connection: "
        + std::to_string(options.limits.max_connections) + " connections open");
    error_code ignored;
    refused->close(ignored);
  } else {
    s->start();
  }
  do_accept();
}

void http_detail::server_core::on_session_closed(std::uint64_t id) {
  std::lock_guard<std::mutex> guard{mutex};
  if (sessions.erase(id) == 0) {
    return;
  }
  if (--open == 0) {
    all_closed.notify_all();
  }
}

// -- http_server --------------------------------------------------------------

http_server::http_server(http_server_options options, http_handler handler)
  : core_(std::make_shared<http_detail::server_core>(std::move(options),
                                                     std::move(handler))) {
  // nop
}

http_server::~http_server() {
  try {
    stop();
  } catch (...) {
    // Only std::system_error from joining could land here; nothing to do.
  }
}

std::optional<std::string> http_server::start() {
  auto& c = *core_;
  if (c.started) {
    return "http: already started";
  }
  c.started = true;
  const auto& host = c.options.host;
  auto where = host + ":" + std::to_string(c.options.port);
  error_code ec;
  tcp::endpoint endpoint;
  auto address = net::ip::make_address(host, ec);
  if (!ec) {
    endpoint = tcp::endpoint{address, c.options.port};
  } else {
    tcp::resolver resolver{*c.iocs.front()};
    auto results = resolver.resolve(host, std::to_string(c.options.port),
                                    tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      return "http: cannot resolve host '" + host
             + "': " + (ec ? ec.message() : std::string{"no address"});
    }
    endpoint = results.begin()->endpoint();
  }
  auto fail = [&](const char* step) -> std::optional<std::string> {
    error_code ignored;
    c.acceptor.close(ignored);
    return "http: cannot listen on " + where + ": " + step + ": "
           + ec.message();
  };
  if (c.acceptor.open(endpoint.protocol(), ec); ec) {
    return fail("open");
  }
  if (c.acceptor.set_option(net::socket_base::reuse_address{true}, ec); ec) {
    return fail("SO_REUSEADDR");
  }
  if (c.acceptor.bind(endpoint, ec); ec) {
    return fail("bind");
  }
  if (c.acceptor.listen(net::socket_base::max_listen_connections, ec); ec) {
    return fail("listen");
  }
  c.bound_port = c.acceptor.local_endpoint(ec).port();
  for (auto& ioc : c.iocs) {
    c.work.push_back(net::make_work_guard(*ioc));
  }
  net::post(*c.iocs.front(), [&c] { c.do_accept(); });
  for (auto& ioc : c.iocs) {
    c.threads.emplace_back([ioc = ioc.get()] {
      engine::name_this_thread("rb.http");
      ioc->run();
    });
  }
  return std::nullopt;
}

std::uint16_t http_server::port() const noexcept {
  return core_->bound_port;
}

std::size_t http_server::connections() const noexcept {
  return core_->open.load();
}

void http_server::stop(std::chrono::milliseconds grace) {
  auto& c = *core_;
  if (c.threads.empty()) {
    return; // never started, or stopped already
  }
  auto snapshot = [&c] {
    std::vector<std::shared_ptr<session>> result;
    std::lock_guard<std::mutex> guard{c.mutex};
    for (auto& [id, weak] : c.sessions) {
      if (auto s = weak.lock()) {
        result.push_back(std::move(s));
      }
    }
    return result;
  };
  {
    std::lock_guard<std::mutex> guard{c.mutex};
    c.stopping = true;
  }
  net::post(*c.iocs.front(), [&c] {
    error_code ignored;
    c.acceptor.close(ignored);
    c.accept_retry.cancel();
  });
  for (auto& s : snapshot()) {
    s->post_stop();
  }
  {
    std::unique_lock<std::mutex> guard{c.mutex};
    c.all_closed.wait_for(guard, grace, [&c] { return c.open.load() == 0; });
  }
  for (auto& s : snapshot()) {
    s->post_close();
  }
  {
    std::lock_guard<std::mutex> guard{c.mutex};
    c.stopped = true;
  }
  // Everything is closed or closing, so the io threads run out of work.
  c.work.clear();
  for (auto& t : c.threads) {
    t.join();
  }
  c.threads.clear();
}

} // namespace ringback::adapters
