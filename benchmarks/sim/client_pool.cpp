#include "client_pool.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <optional>

namespace ringback::sim {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

const char* to_string(transport_error x) {
  switch (x) {
    case transport_error::none:
      return "none";
    case transport_error::connect:
      return "connect";
    case transport_error::timeout:
      return "timeout";
    case transport_error::queue_timeout:
      return "queue_timeout";
    case transport_error::io:
      return "io";
  }
  return "?";
}

struct client_pool::connection
  : std::enable_shared_from_this<client_pool::connection> {
  connection(asio::io_context& io, client_pool& pool)
    : stream(io), pool(&pool) {
  }

  beast::tcp_stream stream;
  client_pool* pool;
  bool connected = false;
  sim_clock::time_point idle_since;
  beast::flat_buffer buffer;
  http::request<http::string_body> req;
  std::optional<http::response_parser<http::string_body>> parser;
  http_job job;
  http_result result;

  std::chrono::steady_clock::duration left() const {
    auto deadline = job.scheduled + pool->timeout_;
    auto now = sim_clock::now();
    return deadline > now ? deadline - now
                          : std::chrono::steady_clock::duration{
                            std::chrono::milliseconds{1}};
  }

  void start() {
    result = http_result{};
    if (!connected) {
      stream.expires_after(left());
      stream.async_connect(pool->to_,
                           [self = shared_from_this()](beast::error_code ec) {
                             self->on_connect(ec);
                           });
      return;
    }
    write();
  }

  void on_connect(beast::error_code ec) {
    if (ec) {
      fail(ec == beast::error::timeout ? transport_error::timeout
                                       : transport_error::connect);
      return;
    }
    connected = true;
    ++pool->connects_;
    stream.socket().set_option(tcp::no_delay{true}, ec);
    write();
  }

  void write() {
    req = {};
    req.method(http::verb::post);
    req.target(job.target);
    req.version(11);
    req.set(http::field::host, pool->host_);
    req.set(http::field::user_agent, "TwilioProxy/1.1");
    req.set(http::field::content_type, "application/x-www-form-urlencoded");
    req.set("X-Twilio-Signature", job.signature);
    req.keep_alive(true);
    req.body() = std::move(job.body);
    req.prepare_payload();
    result.sent_at = sim_clock::now();
    stream.expires_after(left());
    http::async_write(stream, req,
                      [self = shared_from_this()](beast::error_code ec,
                                                  std::size_t) {
                        self->on_write(ec);
                      });
  }

  void on_write(beast::error_code ec) {
    if (ec) {
      fail(ec == beast::error::timeout ? transport_error::timeout
                                       : transport_error::io);
      return;
    }
    parser.emplace();
    parser->body_limit(1 << 20);
    stream.expires_after(left());
    http::async_read(stream, buffer, *parser,
                     [self = shared_from_this()](beast::error_code ec,
                                                 std::size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(beast::error_code ec) {
    if (ec) {
      fail(ec == beast::error::timeout ? transport_error::timeout
                                       : transport_error::io);
      return;
    }
    auto& res = parser->get();
    result.status = static_cast<int>(res.result_int());
    result.body = std::move(res.body());
    result.done_at = sim_clock::now();
    bool reusable = res.keep_alive();
    parser.reset();
    deliver(reusable);
  }

  void fail(transport_error why) {
    result.error = why;
    result.done_at = sim_clock::now();
    beast::error_code ignored;
    stream.socket().close(ignored);
    connected = false;
    buffer.clear();
    deliver(false);
  }

  void deliver(bool reusable) {
    auto done = std::move(job.done);
    auto res = std::move(result);
    job = http_job{};
    pool->finished(shared_from_this(), reusable);
    if (done) {
      done(std::move(res));
    }
  }
};

client_pool::client_pool(asio::io_context& io, tcp::endpoint to,
                         std::string host_header, std::size_t max_connections,
                         std::chrono::milliseconds timeout)
  : io_(io),
    to_(std::move(to)),
    host_(std::move(host_header)),
    max_(max_connections),
    timeout_(timeout) {
}

client_pool::~client_pool() = default;

std::shared_ptr<client_pool::connection> client_pool::make() {
  ++open_;
  peak_open_ = std::max(peak_open_, open_);
  return std::make_shared<connection>(io_, *this);
}

void client_pool::submit(http_job job) {
  ++in_flight_;
  while (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    if (sim_clock::now() - c->idle_since < std::chrono::seconds{15}) {
      run(c, std::move(job));
      return;
    }
    beast::error_code ignored;
    c->stream.socket().close(ignored);
    --open_;
  }
  if (open_ < max_) {
    run(make(), std::move(job));
    return;
  }
  waiting_.push_back(std::move(job));
}

void client_pool::run(const std::shared_ptr<connection>& c, http_job job) {
  c->job = std::move(job);
  c->start();
}

void client_pool::finished(std::shared_ptr<connection> c, bool reusable) {
  --in_flight_;
  if (!reusable) {
    beast::error_code ignored;
    c->stream.socket().close(ignored);
    --open_;
    c.reset();
  }
  // Requests that waited past their timeout fail without being sent.
  while (!waiting_.empty()
         && sim_clock::now() - waiting_.front().scheduled >= timeout_) {
    auto job = std::move(waiting_.front());
    waiting_.pop_front();
    --in_flight_;
    http_result r;
    r.error = transport_error::queue_timeout;
    r.done_at = sim_clock::now();
    asio::post(io_, [done = std::move(job.done), r = std::move(r)]() mutable {
      done(std::move(r));
    });
  }
  if (waiting_.empty()) {
    if (c) {
      c->idle_since = sim_clock::now();
      idle_.push_back(std::move(c));
    }
    return;
  }
  auto job = std::move(waiting_.front());
  waiting_.pop_front();
  if (!c) {
    c = make();
  }
  // Counted once at submit: run() does not count again.
  run(c, std::move(job));
}

void client_pool::close_idle() {
  for (auto& c : idle_) {
    beast::error_code ignored;
    c->stream.socket().close(ignored);
    --open_;
  }
  idle_.clear();
}

} // namespace ringback::sim
