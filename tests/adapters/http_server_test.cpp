#include "ringback/adapters/http/http_server.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

// The HTTP ingress on real sockets (127.0.0.1, port 0). Timeouts in these
// tests are safety nets far above what an operation needs; assertions are
// about results and order, never about how long something took.

namespace ringback::adapters {
namespace {

using namespace std::chrono_literals;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using response = bhttp::response<bhttp::string_body>;

constexpr auto patience = 10s; // how long a client waits for anything

/// A raw HTTP client: writes bytes as given, parses responses with Beast.
/// Every operation runs on the test's own io_context with a timeout, so a
/// misbehaving server fails a test instead of hanging it.
class client {
public:
  client(net::io_context& ioc, std::uint16_t port) : ioc_(ioc), stream_(ioc) {
    connect_error = run(
      [&](auto done) {
        stream_.async_connect(
          tcp::endpoint{net::ip::make_address("127.0.0.1"), port}, done);
      },
      patience);
  }

  bool connected() const {
    return !connect_error;
  }

  error_code send(std::string_view raw) {
    return run(
      [&](auto done) {
        net::async_write(stream_, net::buffer(raw.data(), raw.size()), done);
      },
      patience);
  }

  /// The next response; nullopt if the connection closed or timed out
  /// first. `head`: the response to a HEAD request (no body follows).
  std::optional<response> read(bool head = false) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(boost::none);
    parser.skip(head);
    auto ec = run(
      [&](auto done) { bhttp::async_read(stream_, buffer_, parser, done); },
      patience);
    if (ec) {
      peer_closed_ = ec != beast::error::timeout;
      return std::nullopt;
    }
    return parser.release();
  }

  /// Reads and discards until the server closes the connection: true if it
  /// did (EOF or reset) within `limit`, false if it was still open.
  bool closed_by_peer(std::chrono::milliseconds limit = patience) {
    // Asio waits for a fresh readiness edge after a read hit EOF, so a
    // second read after EOF would wait forever: remember the first.
    if (peer_closed_)
      return true;
    auto give_up = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        give_up - std::chrono::steady_clock::now());
      if (left <= 0ms)
        return false;
      char scratch[4096];
      auto ec = run(
        [&](auto done) { stream_.async_read_some(net::buffer(scratch), done); },
        left);
      if (ec == beast::error::timeout)
        return false;
      if (ec)
        return true; // eof, connection reset, ...
    }
  }

  void close() {
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  error_code connect_error;

private:
  template <class Init>
  error_code run(Init init, std::chrono::milliseconds limit) {
    error_code result;
    bool done = false;
    stream_.expires_after(limit);
    init([&](const error_code& ec, auto&&...) {
      result = ec;
      done = true;
    });
    ioc_.restart();
    while (!done && ioc_.run_one() > 0) {
    }
    return result;
  }

  net::io_context& ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  bool peer_closed_ = false;
};

std::string get(std::string_view target, std::string_view extra = {}) {
  return "GET " + std::string{target} + " HTTP/1.1\r\nHost: test\r\n"
         + std::string{extra} + "\r\n";
}

std::string post(std::string_view target, std::string_view body,
                 std::string_view extra = {}) {
  return "POST " + std::string{target}
         + " HTTP/1.1\r\nHost: test\r\nContent-Type: "
           "application/x-www-form-urlencoded\r\nContent-Length: "
         + std::to_string(body.size()) + "\r\n" + std::string{extra} + "\r\n"
         + std::string{body};
}

/// Replies 200 with the request's path as the body.
void echo_path(const http_request& req, std::shared_ptr<reply_slot> slot) {
  slot->reply(http_response::text(200, req.path));
}

/// Hands the slots over to the test thread, in the order they came.
class slot_box {
public:
  void put(std::shared_ptr<reply_slot> slot) {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      slots_.push_back(std::move(slot));
    }
    cv_.notify_all();
  }

  /// The `n`-th slot (0-based), waiting for it if needed.
  std::shared_ptr<reply_slot> take(std::size_t n) {
    std::unique_lock<std::mutex> guard{mutex_};
    cv_.wait_for(guard, patience, [&] { return slots_.size() > n; });
    return slots_.size() > n ? slots_[n] : nullptr;
  }

  void clear() {
    std::lock_guard<std::mutex> guard{mutex_};
    slots_.clear();
  }

private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<reply_slot>> slots_;
};

template <class Predicate>
bool eventually(Predicate pred) {
  auto give_up = std::chrono::steady_clock::now() + patience;
  while (std::chrono::steady_clock::now() < give_up) {
    if (pred())
      return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

class http_server_test : public ::testing::Test {
protected:
  void start(http_handler handler, http_limits limits = {},
             std::size_t threads = 2) {
    http_server_options opts;
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.threads = threads;
    opts.limits = limits;
    opts.log = [this](std::string_view line) {
      std::lock_guard<std::mutex> guard{log_mutex_};
      log_.emplace_back(line);
    };
    server_ = std::make_unique<http_server>(std::move(opts),
                                            std::move(handler));
    auto error = server_->start();
    ASSERT_FALSE(error) << *error;
    ASSERT_NE(server_->port(), 0);
  }

  void TearDown() override {
    server_.reset();
    std::lock_guard<std::mutex> guard{helpers_mutex_};
    for (auto& t : helpers_)
      t.join();
  }

  std::unique_ptr<client> connect() {
    auto c = std::make_unique<client>(ioc_, server_->port());
    EXPECT_TRUE(c->connected()) << c->connect_error.message();
    return c;
  }

  /// Runs `fn` on a thread of its own (joined at tear-down).
  template <class F>
  void spawn(F fn) {
    std::lock_guard<std::mutex> guard{helpers_mutex_};
    helpers_.emplace_back(std::move(fn));
  }

  bool logged(std::string_view needle) {
    std::lock_guard<std::mutex> guard{log_mutex_};
    for (const auto& line : log_)
      if (line.find(needle) != std::string::npos)
        return true;
    return false;
  }

  net::io_context ioc_;
  std::unique_ptr<http_server> server_;
  slot_box slots_;
  std::mutex helpers_mutex_;
  std::vector<std::thread> helpers_;
  std::mutex log_mutex_;
  std::vector<std::string> log_;
};

// -- the basics ---------------------------------------------------------------

TEST_F(http_server_test, answers_a_request_and_passes_it_on_complete) {
  std::promise<http_request> seen;
  start([&](const http_request& req, std::shared_ptr<reply_slot> slot) {
    seen.set_value(req);
    http_response r;
    r.status = 200;
    r.content_type = "text/xml; charset=utf-8";
    r.body = "<Response/>";
    r.headers.push_back({"X-Ringback", "yes"});
    slot->reply(std::move(r));
  });
  auto c = connect();
  ASSERT_FALSE(c->send(post("/webhooks/twilio/voice?tenant=acme", "CallSid=CA1",
                            "X-Twilio-Signature: sig=\r\n")));
  auto res = c->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200u);
  EXPECT_EQ(res->body(), "<Response/>");
  EXPECT_EQ((*res)[bhttp::field::content_type], "text/xml; charset=utf-8");
  EXPECT_EQ((*res)["X-Ringback"], "yes");
  EXPECT_TRUE(res->keep_alive());
  auto req = seen.get_future().get();
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/webhooks/twilio/voice?tenant=acme");
  EXPECT_EQ(req.path, "/webhooks/twilio/voice");
  EXPECT_EQ(req.query, "tenant=acme");
  EXPECT_EQ(req.header("x-twilio-signature"), "sig=");
  EXPECT_EQ(req.header("HOST"), "test");
  EXPECT_EQ(req.body, "CallSid=CA1");
  EXPECT_EQ(req.remote_address, "127.0.0.1");
  EXPECT_NE(req.remote_port, 0);
  EXPECT_EQ(req.version, 11u);
}

TEST_F(http_server_test, keeps_the_connection_alive_between_requests) {
  start(echo_path);
  auto c = connect();
  for (auto path : {"/one", "/two", "/three"}) {
    ASSERT_FALSE(c->send(get(path)));
    auto res = c->read();
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->body(), path);
    EXPECT_TRUE(res->keep_alive());
  }
  EXPECT_EQ(server_->connections(), 1u);
}

TEST_F(http_server_test, closes_when_the_client_asks_or_speaks_http_1_0) {
  start(echo_path);
  auto c = connect();
  ASSERT_FALSE(c->send(get("/bye", "Connection: close\r\n")));
  auto res = c->read();
  ASSERT_TRUE(res);
  EXPECT_FALSE(res->keep_alive());
  EXPECT_TRUE(c->closed_by_peer());

  auto old = connect();
  ASSERT_FALSE(old->send("GET /old HTTP/1.0\r\n\r\n"));
  res = old->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->version(), 10u);
  EXPECT_EQ(res->body(), "/old");
  EXPECT_TRUE(old->closed_by_peer());
}

TEST_F(http_server_test, answers_pipelined_requests_one_at_a_time_in_order) {
  std::mutex mutex;
  std::vector<std::string> events;
  auto note = [&](std::string x) {
    std::lock_guard<std::mutex> guard{mutex};
    events.push_back(std::move(x));
  };
  start([&](const http_request& req, std::shared_ptr<reply_slot> slot) {
    note("handle " + req.path);
    if (req.path == "/slow") {
      spawn([&, slot, path = req.path] {
        std::this_thread::sleep_for(100ms);
        note("reply " + path);
        slot->reply(http_response::text(200, path));
      });
      return;
    }
    note("reply " + req.path);
    slot->reply(http_response::text(200, req.path));
  });
  auto c = connect();
  ASSERT_FALSE(c->send(get("/slow") + get("/fast") + get("/last")));
  for (auto path : {"/slow", "/fast", "/last"}) {
    auto res = c->read();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->body(), path);
  }
  std::lock_guard<std::mutex> guard{mutex};
  EXPECT_EQ(events, (std::vector<std::string>{"handle /slow", "reply /slow",
                                              "handle /fast", "reply /fast",
                                              "handle /last", "reply /last"}));
}

TEST_F(http_server_test, reads_chunked_bodies) {
  std::promise<std::string> body;
  start([&](const http_request& req, std::shared_ptr<reply_slot> slot) {
    body.set_value(req.body);
    slot->reply(http_response::text(200, "ok"));
  });
  auto c = connect();
  ASSERT_FALSE(
    c->send("POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
            "chunked\r\n\r\n5\r\nHello\r\n6\r\n world\r\n0\r\n\r\n"));
  auto res = c->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200u);
  EXPECT_EQ(body.get_future().get(), "Hello world");
}

TEST_F(http_server_test, answers_expect_100_continue_before_the_body) {
  start([](const http_request& req, std::shared_ptr<reply_slot> slot) {
    slot->reply(http_response::text(200, req.body));
  });
  auto c = connect();
  ASSERT_FALSE(c->send("POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                       "Expect: 100-continue\r\n\r\n"));
  auto interim = c->read();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->result_int(), 100u);
  ASSERT_FALSE(c->send("hello"));
  auto res = c->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200u);
  EXPECT_EQ(res->body(), "hello");
}

TEST_F(http_server_test, answers_head_with_the_length_but_without_the_body) {
  start([](const http_request&, std::shared_ptr<reply_slot> slot) {
    slot->reply(http_response::text(200, "twelve bytes"));
  });
  auto c = connect();
  ASSERT_FALSE(c->send("HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n"));
  auto res = c->read(/*head=*/true);
  ASSERT_TRUE(res);
  EXPECT_EQ((*res)[bhttp::field::content_length], "12");
  EXPECT_EQ(res->body(), "");
  // The framing held: the next response on the connection parses.
  ASSERT_FALSE(c->send(get("/next")));
  res = c->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), "twelve bytes");
}

// -- limits and bad input -----------------------------------------------------

TEST_F(http_server_test, a_body_over_the_limit_gets_413_and_a_close) {
  std::atomic<int> calls{0};
  http_limits limits;
  limits.max_body_bytes = 1024;
  start(
    [&](const http_request&, std::shared_ptr<reply_slot> slot) {
      ++calls;
      slot->reply(http_response::text(200, "ok"));
    },
    limits);
  // Declared too large (the whole body is sent anyway).
  auto c = connect();
  ASSERT_FALSE(c->send(post("/big", std::string(70'000, 'x'))));
  auto res = c->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 413u);
  EXPECT_EQ(res->body(), "Payload Too Large\n");
  EXPECT_FALSE(res->keep_alive());
  EXPECT_TRUE(c->closed_by_peer());
  // Chunked, growing past the limit.
  auto chunked = connect();
  ASSERT_FALSE(chunked->send("POST /big HTTP/1.1\r\nHost: t\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n800\r\n"
                             + std::string(0x800, 'y') + "\r\n0\r\n\r\n"));
  res = chunked->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 413u);
  EXPECT_TRUE(chunked->closed_by_peer());
  // Exactly at the limit is fine.
  auto ok = connect();
  ASSERT_FALSE(ok->send(post("/fits", std::string(1024, 'z'))));
  res = ok->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200u);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_TRUE(logged("413 Payload Too Large to 127.0.0.1:"));
}

TEST_F(http_server_test, a_huge_header_gets_431_and_a_close) {
  std::atomic<int> calls{0};
  start([&](const http_request&, std::shared_ptr<reply_slot> slot) {
    ++calls;
    slot->reply(http_response::text(200, "ok"));
  });
  auto c = connect();
  ASSERT_FALSE(
    c->send(get("/h", "X-Big: " + std::string(16 * 1024, 'a') + "\r\n")));
  auto res = c->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 431u);
  EXPECT_EQ(res->body(), "Request Header Fields Too Large\n");
  EXPECT_TRUE(c->closed_by_peer());
  EXPECT_EQ(calls.load(), 0);
  EXPECT_TRUE(logged("431 Request Header Fields Too Large to 127.0.0.1:"));
}

TEST_F(http_server_test, a_garbage_request_line_gets_400_and_a_close) {
  std::atomic<int> calls{0};
  start([&](const http_request&, std::shared_ptr<reply_slot> slot) {
    ++calls;
    slot->reply(http_response::text(200, "ok"));
  });
  auto c = connect();
  ASSERT_FALSE(c->send("GARBAGE\r\n\r\n"));
  auto res = c->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 400u);
  EXPECT_EQ(res->body(), "Bad Request\n");
  EXPECT_FALSE(res->keep_alive());
  EXPECT_TRUE(c->closed_by_peer());
  EXPECT_EQ(calls.load(), 0);
  EXPECT_TRUE(logged("400 Bad Request to 127.0.0.1:"));
}

TEST_F(http_server_test, malformed_requests_of_the_seed_corpus_get_400) {
  start(echo_path);
  const std::vector<std::string> corpus = {
    "GET / HTTP/2.0\r\nHost: t\r\n\r\n",
    "GET / HTTP/0.9\r\nHost: t\r\n\r\n",
    "GET / XTTP/1.1\r\nHost: t\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: "
    "2\r\n\r\nx",
    "GET / HTTP/1.1\r\nno colon here\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
    std::string{"\0\1\2\3\r\n\r\n", 8},
    "G\xc3\xa9T / HTTP/1.1\r\n\r\n",
    "GET /\x7f HTTP/1.1\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: t\r\nBad\x01Name: x\r\n\r\n",
    " / HTTP/1.1\r\n\r\n",
  };
  for (const auto& input : corpus) {
    auto c = connect();
    ASSERT_FALSE(c->send(input));
    auto res = c->read();
    ASSERT_TRUE(res) << testing::PrintToString(input);
    EXPECT_EQ(res->result_int(), 400u) << testing::PrintToString(input);
    EXPECT_TRUE(c->closed_by_peer()) << testing::PrintToString(input);
  }
  // Still serving.
  auto c = connect();
  ASSERT_FALSE(c->send(get("/alive")));
  auto res = c->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), "/alive");
}

TEST_F(http_server_test, random_and_mutated_input_never_takes_it_down) {
  http_limits limits;
  limits.read_timeout = 300ms;
  limits.idle_timeout = 300ms;
  start(echo_path, limits);
  std::mt19937 rng{20261121}; // fixed seed: the same inputs every run
  const auto valid = post("/webhooks/twilio/sms",
                          "From=%2B15550001111&Body=hi");
  std::vector<std::string> inputs;
  for (int i = 0; i < 60; ++i) {
    std::string noise(1 + rng() % 300, '\0');
    for (auto& ch : noise)
      ch = static_cast<char>(rng() % 256);
    inputs.push_back(std::move(noise));
  }
  for (int i = 0; i < 60; ++i) {
    auto mutated = valid;
    for (int flips = 1 + static_cast<int>(rng() % 4); flips > 0; --flips)
      mutated[rng() % mutated.size()] = static_cast<char>(rng() % 256);
    if (rng() % 3 == 0)
      mutated.resize(rng() % mutated.size());
    inputs.push_back(std::move(mutated));
  }
  std::vector<std::unique_ptr<client>> clients;
  for (const auto& input : inputs) {
    clients.push_back(connect());
    clients.back()->send(input);
  }
  for (std::size_t i = 0; i < clients.size(); ++i) {
    // Whatever comes back is a well-formed answer (a handler's or a
    // rejection, never a 500), and the connection ends (a rejection closes
    // it; otherwise a timeout does).
    while (auto res = clients[i]->read()) {
      EXPECT_TRUE(res->result_int() == 200 || res->result_int() == 400
                  || res->result_int() == 413 || res->result_int() == 431)
        << res->result_int() << " for " << testing::PrintToString(inputs[i]);
    }
    EXPECT_TRUE(clients[i]->closed_by_peer())
      << testing::PrintToString(inputs[i]);
  }
  auto c = connect();
  ASSERT_FALSE(c->send(get("/alive")));
  auto res = c->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), "/alive");
}

TEST_F(http_server_test,
       a_request_that_stalls_is_closed_after_the_read_timeout) {
  std::atomic<int> calls{0};
  http_limits limits;
  limits.read_timeout = 200ms;
  start(
    [&](const http_request&, std::shared_ptr<reply_slot> slot) {
      ++calls;
      slot->reply(http_response::text(200, "ok"));
    },
    limits);
  auto half_header = connect();
  ASSERT_FALSE(half_header->send("GET /slow HTTP/1.1\r\nHost: t\r\n"));
  auto half_body = connect();
  ASSERT_FALSE(half_body->send("POST /slow HTTP/1.1\r\nHost: t\r\n"
                               "Content-Length: 10\r\n\r\nabc"));
  auto silent = connect();
  EXPECT_TRUE(half_header->closed_by_peer());
  EXPECT_TRUE(half_body->closed_by_peer());
  EXPECT_TRUE(silent->closed_by_peer());
  EXPECT_EQ(calls.load(), 0);
  EXPECT_TRUE(eventually([&] { return server_->connections() == 0; }));
}

TEST_F(http_server_test, an_idle_keep_alive_connection_is_closed) {
  http_limits limits;
  limits.idle_timeout = 200ms;
  start(echo_path, limits);
  auto c = connect();
  ASSERT_FALSE(c->send(get("/once")));
  ASSERT_TRUE(c->read());
  EXPECT_TRUE(c->closed_by_peer());
}

TEST_F(http_server_test, connections_over_the_limit_are_closed) {
  http_limits limits;
  limits.max_connections = 2;
  start(echo_path, limits);
  auto a = connect();
  auto b = connect();
  for (auto* c : {a.get(), b.get()}) { // surely accepted and counted
    ASSERT_FALSE(c->send(get("/in")));
    ASSERT_TRUE(c->read());
  }
  auto refused = connect();
  EXPECT_TRUE(refused->closed_by_peer());
  EXPECT_TRUE(logged("refused a connection: 2 connections open"));
  // Room again once one goes.
  a->close();
  ASSERT_TRUE(eventually([&] { return server_->connections() == 1; }));
  auto c = connect();
  ASSERT_FALSE(c->send(get("/again")));
  auto res = c->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), "/again");
}

TEST_F(http_server_test, serves_200_concurrent_connections) {
  start([](const http_request& req, std::shared_ptr<reply_slot> slot) {
    slot->reply(http_response::text(200, req.path));
  });
  std::vector<std::unique_ptr<client>> clients;
  for (int i = 0; i < 200; ++i) {
    clients.push_back(connect());
    ASSERT_FALSE(clients.back()->send(get("/c" + std::to_string(i))));
  }
  // All of them open at once (accepting runs behind the clients a little).
  EXPECT_TRUE(eventually([&] { return server_->connections() == 200u; }));
  for (int i = 0; i < 200; ++i) {
    auto res = clients[static_cast<std::size_t>(i)]->read();
    ASSERT_TRUE(res) << i;
    EXPECT_EQ(res->body(), "/c" + std::to_string(i));
  }
}

TEST_F(http_server_test,
       each_connection_stays_on_one_io_thread_and_they_alternate) {
  // A connection's handlers run on one io thread for its whole life (no
  // strand needed, no hand-over between threads); connections are dealt to
  // the io threads in turn, so with 3 threads the 1st and 4th share one.
  std::mutex mutex;
  std::map<std::string, std::set<std::thread::id>> seen;
  start(
    [&](const http_request& req, std::shared_ptr<reply_slot> slot) {
      {
        std::lock_guard<std::mutex> guard{mutex};
        seen[req.path].insert(std::this_thread::get_id());
      }
      // Answered from elsewhere, as actors do: the write goes back to the
      // connection's own thread.
      spawn([slot] { slot->reply(http_response::text(200, "ok")); });
    },
    {}, 3);
  std::vector<std::unique_ptr<client>> clients;
  for (int i = 0; i < 4; ++i)
    clients.push_back(connect());
  for (int round = 0; round < 25; ++round) {
    for (int i = 0; i < 4; ++i) {
      auto& c = *clients[static_cast<std::size_t>(i)];
      ASSERT_FALSE(c.send(get("/c" + std::to_string(i))));
      auto res = c.read();
      ASSERT_TRUE(res);
      EXPECT_EQ(res->body(), "ok");
    }
  }
  std::lock_guard<std::mutex> guard{mutex};
  std::vector<std::thread::id> thread_of;
  for (int i = 0; i < 4; ++i) {
    const auto& ids = seen["/c" + std::to_string(i)];
    ASSERT_EQ(ids.size(), 1u) << "connection " << i << " moved between threads";
    thread_of.push_back(*ids.begin());
  }
  EXPECT_NE(thread_of[0], thread_of[1]);
  EXPECT_NE(thread_of[1], thread_of[2]);
  EXPECT_NE(thread_of[0], thread_of[2]);
  EXPECT_EQ(thread_of[3], thread_of[0]);
}

// -- answering through the slot -----------------------------------------------

TEST_F(http_server_test, a_reply_may_come_from_another_thread_later) {
  start([&](const http_request&, std::shared_ptr<reply_slot> slot) {
    spawn([slot] {
      std::this_thread::sleep_for(50ms);
      slot->reply(http_response::text(200, "from another thread"));
    });
  });
  auto c = connect();
  ASSERT_FALSE(c->send(get("/later")));
  auto res = c->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), "from another thread");
}

TEST_F(http_server_test, the_deadline_fallback_answers_when_nobody_does) {
  start([&](const http_request& req, std::shared_ptr<reply_slot> slot) {
    if (req.path == "/next") {
      slot->reply(http_response::text(200, "next"));
      return;
    }
    slot->set_deadline(100ms, http_response::text(200, "<Response/>"));
    slots_.put(slot); // and never replies
  });
  auto c = connect();
  ASSERT_FALSE(c->send(get("/voice")));
  auto res = c->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), "<Response/>");
  // The late answer is refused...
  auto slot = slots_.take(0);
  ASSERT_TRUE(slot);
  EXPECT_TRUE(slot->answered());
  EXPECT_FALSE(slot->reply(http_response::text(200, "too late")));
  // ...and does not leak into the next request on the connection.
  ASSERT_FALSE(c->send(get("/next")));
  res = c->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), "next");
}

TEST_F(http_server_test, a_reply_before_the_deadline_wins_over_the_fallback) {
  start([&](const http_request&, std::shared_ptr<reply_slot> slot) {
    slot->set_deadline(60s, http_response::text(200, "fallback"));
    spawn([slot] {
      std::this_thread::sleep_for(20ms);
      slot->reply(http_response::text(200, "actor"));
    });
  });
  auto c = connect();
  for (int i = 0; i < 2; ++i) {
    ASSERT_FALSE(c->send(get("/voice")));
    auto res = c->read();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->body(), "actor");
  }
}

TEST_F(http_server_test, a_later_deadline_replaces_an_earlier_one) {
  start([&](const http_request&, std::shared_ptr<reply_slot> slot) {
    slot->set_deadline(60s, http_response::text(200, "first"));
    slot->set_deadline(50ms, http_response::text(200, "second"));
    slots_.put(slot);
  });
  auto c = connect();
  ASSERT_FALSE(c->send(get("/voice")));
  auto res = c->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), "second");
}

TEST_F(http_server_test, a_slot_dropped_unanswered_sends_its_fallback_or_500) {
  start([&](const http_request& req, std::shared_ptr<reply_slot> slot) {
    if (req.path == "/with-deadline") // an actor that died with the slot
      slot->set_deadline(60s, http_response::text(200, "fallback"));
    // The slot goes out of scope unanswered.
  });
  auto c = connect();
  ASSERT_FALSE(c->send(get("/with-deadline")));
  auto res = c->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), "fallback"); // long before the 60 s deadline
  ASSERT_FALSE(c->send(get("/without")));
  res = c->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 500u);
}

TEST_F(http_server_test, a_handler_that_throws_gets_500_and_a_log_line) {
  start([&](const http_request& req, std::shared_ptr<reply_slot> slot) {
    if (req.path == "/throw")
      throw std::runtime_error("boom");
    slot->reply(http_response::text(200, "fine"));
  });
  auto c = connect();
  ASSERT_FALSE(c->send(get("/throw")));
  auto res = c->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 500u);
  EXPECT_TRUE(logged("handler failed for GET /throw: boom"));
  ASSERT_FALSE(c->send(get("/fine")));
  res = c->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), "fine");
}

TEST_F(http_server_test, a_bad_status_or_header_from_the_handler_is_contained) {
  start([&](const http_request& req, std::shared_ptr<reply_slot> slot) {
    if (req.path == "/status") {
      slot->reply(http_response::text(1000, "?"));
      return;
    }
    auto r = http_response::text(204, "ignored body");
    r.headers.push_back({"X-Split", "a\r\nSet-Cookie: evil=1"});
    r.headers.push_back({"Bad Name", "x"});
    r.headers.push_back({"Content-Length", "999"});
    r.headers.push_back({"X-Fine", "ok"});
    slot->reply(std::move(r));
  });
  auto c = connect();
  ASSERT_FALSE(c->send(get("/status")));
  auto res = c->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 500u);
  EXPECT_TRUE(logged("handler answered with status 1000 for /status"));
  ASSERT_FALSE(c->send(get("/headers")));
  res = c->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 204u);
  EXPECT_EQ(res->count("X-Split"), 0u);
  EXPECT_EQ(res->count("Set-Cookie"), 0u);
  EXPECT_EQ(res->count("Bad Name"), 0u);
  EXPECT_EQ((*res)["X-Fine"], "ok");
  EXPECT_TRUE(logged("dropped an invalid header for /headers"));
  // Still in step.
  ASSERT_FALSE(c->send(get("/status")));
  EXPECT_TRUE(c->read());
}

TEST_F(http_server_test, a_client_gone_before_the_reply_harms_nothing) {
  start([&](const http_request& req, std::shared_ptr<reply_slot> slot) {
    if (req.path == "/alive") {
      slot->reply(http_response::text(200, "alive"));
      return;
    }
    if (req.path == "/deadline")
      slot->set_deadline(50ms, http_response::text(200, "fallback"));
    slots_.put(slot);
  });
  auto c = connect();
  ASSERT_FALSE(c->send(get("/plain")));
  auto slot = slots_.take(0);
  ASSERT_TRUE(slot);
  c->close();
  std::this_thread::sleep_for(50ms); // let the FIN arrive first
  EXPECT_TRUE(slot->reply(http_response::text(200, "nobody listens")));
  // A deadline firing for a client that is gone, too.
  auto d = connect();
  ASSERT_FALSE(d->send(get("/deadline")));
  auto slot2 = slots_.take(1);
  ASSERT_TRUE(slot2);
  d->close();
  EXPECT_TRUE(eventually([&] { return slot2->answered(); }));
  EXPECT_TRUE(eventually([&] { return server_->connections() == 0; }));
  auto e = connect();
  ASSERT_FALSE(e->send(get("/alive")));
  auto res = e->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), "alive");
}

// -- life cycle ---------------------------------------------------------------

TEST_F(http_server_test,
       stop_lets_answers_in_flight_finish_and_closes_the_rest) {
  start([&](const http_request& req, std::shared_ptr<reply_slot> slot) {
    if (req.path == "/idle") {
      slot->reply(http_response::text(200, "idle"));
      return;
    }
    slots_.put(slot);
  });
  auto idle = connect();
  ASSERT_FALSE(idle->send(get("/idle")));
  ASSERT_TRUE(idle->read());
  auto busy = connect();
  ASSERT_FALSE(busy->send(get("/busy")));
  auto slot = slots_.take(0);
  ASSERT_TRUE(slot);
  auto port = server_->port();

  std::atomic<bool> stopped{false};
  std::thread stopper{[&] {
    server_->stop(60s);
    stopped = true;
  }};
  // Stopping: the idle connection is closed and nobody new gets in...
  EXPECT_TRUE(idle->closed_by_peer());
  EXPECT_TRUE(eventually([&] {
    client probe{ioc_, port};
    return !probe.connected() || probe.closed_by_peer(1s);
  }));
  // ...while the request in flight still gets its answer, then a close.
  EXPECT_FALSE(stopped.load());
  EXPECT_TRUE(slot->reply(http_response::text(200, "last words")));
  auto res = busy->read();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), "last words");
  EXPECT_FALSE(res->keep_alive());
  EXPECT_TRUE(busy->closed_by_peer());
  stopper.join();
  EXPECT_TRUE(stopped.load());
  EXPECT_EQ(server_->connections(), 0u);
  server_->stop(); // idempotent
}

TEST_F(http_server_test, stop_gives_up_on_answers_after_the_grace_period) {
  start([&](const http_request&, std::shared_ptr<reply_slot> slot) {
    slots_.put(slot);
  });
  auto c = connect();
  ASSERT_FALSE(c->send(get("/never")));
  auto slot = slots_.take(0);
  ASSERT_TRUE(slot);
  server_->stop(100ms);
  EXPECT_TRUE(c->closed_by_peer());
  // Answering after the stop is a harmless no-op.
  EXPECT_TRUE(slot->reply(http_response::text(200, "too late")));
  slots_.clear();
  slot.reset();
  server_.reset(); // the slot may even outlive the server
}

TEST_F(http_server_test, slots_may_outlive_the_server) {
  start([&](const http_request&, std::shared_ptr<reply_slot> slot) {
    slot->set_deadline(60s, http_response::text(200, "fallback"));
    slots_.put(slot);
  });
  auto c = connect();
  ASSERT_FALSE(c->send(get("/held")));
  auto slot = slots_.take(0);
  ASSERT_TRUE(slot);
  server_->stop(50ms);
  server_.reset();
  EXPECT_TRUE(slot->reply(http_response::text(200, "after the server")));
  slots_.clear();
  slot.reset(); // releases the connection and the io_context last
}

TEST_F(http_server_test, start_reports_a_port_in_use_and_a_second_start) {
  net::io_context ioc;
  tcp::acceptor taken{ioc, {net::ip::make_address("127.0.0.1"), 0}};
  auto port = taken.local_endpoint().port();
  http_server_options opts;
  opts.port = port;
  http_server blocked{opts, echo_path};
  auto error = blocked.start();
  ASSERT_TRUE(error);
  EXPECT_EQ(*error, "http: cannot listen on 127.0.0.1:" + std::to_string(port)
                      + ": bind: Address already in use");
  blocked.stop(); // nothing to stop

  start(echo_path);
  auto again = server_->start();
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, "http: already started");
}

} // namespace
} // namespace ringback::adapters
