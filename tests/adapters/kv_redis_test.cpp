#include "ringback/adapters/kv/redis_kv.hpp"
#include "ringback/engine/messaging.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

// redis_kv against a scripted fake Redis: error replies, broken connections,
// timeouts and the connect handshake, without a real server. The real one
// is in tests/integration/kv_redis_test.cpp.

namespace ringback::adapters {
namespace {

using namespace std::chrono_literals;
namespace net = boost::asio;
using tcp = net::ip::tcp;

using argv_type = std::vector<std::string>;

/// What the fake does with a command.
struct action {
  enum kind_type { send, close, send_then_close, ignore } kind = send;
  std::string reply; // raw RESP, for `send`

  static action answer(std::string raw) {
    return {send, std::move(raw)};
  }
  static action hang_up() {
    return {close, {}};
  }
  static action never_answer() {
    return {ignore, {}};
  }
};

/// Parses one RESP command (an array of bulk strings) off the front of
/// `buf`; nullopt if it is not complete yet.
std::optional<argv_type> parse_command(std::string& buf) {
  std::size_t pos = 0;
  auto line = [&]() -> std::optional<std::string> {
    auto end = buf.find("\r\n", pos);
    if (end == std::string::npos)
      return std::nullopt;
    auto x = buf.substr(pos, end - pos);
    pos = end + 2;
    return x;
  };
  auto head = line();
  if (!head || head->empty() || (*head)[0] != '*')
    return std::nullopt;
  auto n = std::stoul(head->substr(1));
  argv_type argv;
  for (std::size_t i = 0; i < n; ++i) {
    auto len_line = line();
    if (!len_line)
      return std::nullopt;
    auto len = std::stoul(len_line->substr(1));
    if (buf.size() < pos + len + 2)
      return std::nullopt;
    argv.push_back(buf.substr(pos, len));
    pos += len + 2;
  }
  buf.erase(0, pos);
  return argv;
}

/// A fake Redis on 127.0.0.1. Serves one connection at a time on its own
/// thread; `script` decides the fate of each command, given the connection
/// number (1-based) and the command.
class fake_redis {
public:
  using script_type = std::function<action(int, const argv_type&)>;

  explicit fake_redis(script_type script) : script_(std::move(script)) {
    acceptor_.open(tcp::v4());
    acceptor_.bind({net::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread{[this] { serve(); }};
  }

  ~fake_redis() {
    stop_ = true;
    // Wake the accept (or a read) up: connect and close.
    {
      boost::system::error_code ec;
      net::io_context ioc;
      tcp::socket s{ioc};
      s.connect({net::ip::make_address("127.0.0.1"), port_}, ec);
    }
    {
      std::lock_guard<std::mutex> guard{mutex_};
      if (current_)
        ::shutdown(current_->native_handle(), SHUT_RDWR);
    }
    thread_.join();
  }

  std::uint16_t port() const {
    return port_;
  }

  redis_url url(std::string tail = "/0") const {
    return *parse_redis_url("redis://127.0.0.1:" + std::to_string(port_)
                            + tail);
  }

  /// Every command received, with its connection number.
  std::vector<std::pair<int, argv_type>> log() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return log_;
  }

  int connections() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return connections_;
  }

  /// Resolves once the fake has closed connection `n` on its side.
  std::future<void> closed(int n) {
    std::lock_guard<std::mutex> guard{mutex_};
    return closed_[n].get_future();
  }

private:
  void serve() {
    while (!stop_) {
      auto socket = std::make_shared<tcp::socket>(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(*socket, ec);
      if (ec || stop_)
        return;
      int n;
      {
        std::lock_guard<std::mutex> guard{mutex_};
        n = ++connections_;
        current_ = socket;
      }
      serve_connection(*socket, n);
      std::lock_guard<std::mutex> guard{mutex_};
      socket->close(ec);
      current_.reset();
      closed_[n].set_value();
    }
  }

  void serve_connection(tcp::socket& s, int n) {
    std::string buf;
    char chunk[4096];
    for (;;) {
      boost::system::error_code ec;
      auto got = s.read_some(net::buffer(chunk), ec);
      if (ec || stop_)
        return;
      buf.append(chunk, got);
      while (auto argv = parse_command(buf)) {
        {
          std::lock_guard<std::mutex> guard{mutex_};
          log_.emplace_back(n, *argv);
        }
        auto a = script_(n, *argv);
        if (a.kind == action::close)
          return;
        if (a.kind == action::send || a.kind == action::send_then_close)
          net::write(s, net::buffer(a.reply), ec);
        if (a.kind == action::send_then_close)
          return;
      }
    }
  }

  script_type script_;
  net::io_context ioc_;
  tcp::acceptor acceptor_{ioc_};
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::shared_ptr<tcp::socket> current_;
  std::vector<std::pair<int, argv_type>> log_;
  int connections_ = 0;
  std::map<int, std::promise<void>> closed_;
  std::thread thread_;
};

/// Answers like a healthy Redis that knows every key is absent.
action healthy(const argv_type& argv) {
  const auto& cmd = argv[0];
  if (cmd == "PING")
    return action::answer("+PONG\r\n");
  if (cmd == "SET" || cmd == "SELECT" || cmd == "AUTH" || cmd == "CLIENT")
    return action::answer("+OK\r\n");
  if (cmd == "EVALSHA" || cmd == "EVAL")
    return action::answer(":1\r\n");
  return action::answer("-ERR unknown command\r\n");
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const engine::port_error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string sha1_hex(const std::string& x) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(x.data(), x.size(), digest, &len, EVP_sha1(), nullptr);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 0xf];
  }
  return out;
}

redis_kv_options fast_options() {
  redis_kv_options opts;
  opts.connect_timeout = 5s;
  opts.command_timeout = 5s;
  return opts;
}

TEST(redis_kv_fake, does_not_connect_before_the_first_call) {
  fake_redis fake{[](int, const argv_type& a) { return healthy(a); }};
  {
    redis_kv kv{fake.url(), fast_options()};
    EXPECT_FALSE(kv.connected());
  }
  EXPECT_EQ(fake.connections(), 0);
}

TEST(redis_kv_fake, connect_authenticates_names_and_selects_in_that_order) {
  fake_redis fake{[](int, const argv_type& a) { return healthy(a); }};
  auto url = fake.url("/3");
  url.username = "alice";
  url.password = "pw";
  redis_kv with_user{url, fast_options()};
  EXPECT_TRUE(with_user.ping());
  EXPECT_TRUE(with_user.connected());
  auto log = fake.log();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[0].second, (argv_type{"AUTH", "alice", "pw"}));
  EXPECT_EQ(log[1].second, (argv_type{"CLIENT", "SETNAME", "ringback"}));
  EXPECT_EQ(log[2].second, (argv_type{"SELECT", "3"}));
  EXPECT_EQ(log[3].second, (argv_type{"PING"}));
}

TEST(redis_kv_fake, db_0_and_no_password_need_no_handshake) {
  fake_redis fake{[](int, const argv_type& a) { return healthy(a); }};
  auto opts = fast_options();
  opts.client_name.clear();
  redis_kv kv{fake.url("/0"), opts};
  EXPECT_TRUE(kv.set_if_absent("k", "v", 1500ms));
  auto log = fake.log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].second, (argv_type{"SET", "k", "v", "NX", "PX", "1500"}));
}

TEST(redis_kv_fake, set_if_absent_is_false_on_a_nil_reply) {
  fake_redis fake{[](int, const argv_type& a) {
    return a[0] == "SET" ? action::answer("$-1\r\n") : healthy(a);
  }};
  redis_kv kv{fake.url(), fast_options()};
  EXPECT_FALSE(kv.set_if_absent("k", "v", 1s));
}

TEST(redis_kv_fake, an_auth_failure_names_auth_and_hides_the_password) {
  fake_redis fake{[](int, const argv_type& a) {
    if (a[0] == "AUTH")
      return action::answer(
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    return healthy(a);
  }};
  auto url = fake.url();
  url.password = "hunter2";
  redis_kv kv{url, fast_options()};
  auto error = error_of([&] { kv.ping(); });
  EXPECT_EQ(error, "redis AUTH: WRONGPASS invalid username-password pair or "
                   "user is disabled.");
  EXPECT_FALSE(kv.connected());
}

TEST(redis_kv_fake, an_error_reply_is_a_port_error_naming_the_command) {
  fake_redis fake{[](int, const argv_type& a) {
    if (a[0] == "SET")
      return action::answer("-OOM command not allowed when used memory > "
                            "'maxmemory'.\r\n");
    return healthy(a);
  }};
  redis_kv kv{fake.url(), fast_options()};
  EXPECT_EQ(error_of([&] { kv.set_if_absent("k", "v", 1s); }),
            "redis SET: OOM command not allowed when used memory > "
            "'maxmemory'.");
  // The connection survives an error reply.
  EXPECT_TRUE(kv.connected());
  EXPECT_TRUE(kv.ping());
  EXPECT_EQ(fake.connections(), 1);
}

TEST(redis_kv_fake, a_select_failure_names_select) {
  fake_redis fake{[](int, const argv_type& a) {
    if (a[0] == "SELECT")
      return action::answer("-ERR DB index is out of range\r\n");
    return healthy(a);
  }};
  redis_kv kv{fake.url("/99"), fast_options()};
  EXPECT_EQ(error_of([&] { kv.claim("k", "a", 1s); }),
            "redis SELECT: ERR DB index is out of range");
  EXPECT_FALSE(kv.connected());
}

TEST(redis_kv_fake, a_closed_port_is_a_port_error_naming_connect) {
  std::uint16_t port;
  {
    net::io_context ioc;
    tcp::acceptor a{ioc, {net::ip::make_address("127.0.0.1"), 0}};
    port = a.local_endpoint().port();
  } // closed: nothing listens there now
  redis_kv kv{*parse_redis_url("redis://127.0.0.1:" + std::to_string(port)),
              fast_options()};
  auto expected = "redis connect 127.0.0.1:" + std::to_string(port)
                  + ": Connection refused";
  EXPECT_EQ(error_of([&] { kv.ping(); }), expected);
  EXPECT_EQ(error_of([&] { kv.set_if_absent("k", "v", 1s); }), expected);
  EXPECT_EQ(error_of([&] { kv.claim("k", "a", 1s); }), expected);
  EXPECT_FALSE(kv.connected());
}

TEST(redis_kv_fake,
     a_connection_lost_mid_command_fails_and_the_next_call_reconnects) {
  fake_redis fake{[](int n, const argv_type& a) {
    if (n == 1 && a[0] == "SET")
      return action::hang_up();
    return healthy(a);
  }};
  redis_kv kv{fake.url(), fast_options()};
  ASSERT_TRUE(kv.ping());
  // SET is not idempotent: its failure is reported, not retried.
  auto error = error_of([&] { kv.set_if_absent("k", "v", 1s); });
  EXPECT_EQ(error.rfind("redis SET: ", 0), 0u) << error;
  EXPECT_FALSE(kv.connected());
  EXPECT_TRUE(kv.set_if_absent("k", "v", 1s));
  EXPECT_EQ(fake.connections(), 2);
}

TEST(redis_kv_fake, claim_is_retried_once_on_a_fresh_connection) {
  fake_redis fake{[](int n, const argv_type& a) {
    if (n == 1 && a[0] == "EVALSHA")
      return action::hang_up();
    return healthy(a);
  }};
  redis_kv kv{fake.url(), fast_options()};
  ASSERT_TRUE(kv.ping());
  EXPECT_TRUE(kv.claim("k", "node-a", 1s));
  EXPECT_EQ(fake.connections(), 2);
}

TEST(redis_kv_fake, a_failure_on_a_fresh_connection_is_not_retried) {
  fake_redis fake{[](int, const argv_type& a) {
    if (a[0] == "EVALSHA")
      return action::hang_up();
    return healthy(a);
  }};
  redis_kv kv{fake.url(), fast_options()};
  auto error = error_of([&] { kv.claim("k", "a", 1s); });
  EXPECT_EQ(error.rfind("redis EVALSHA: ", 0), 0u) << error;
  EXPECT_EQ(fake.connections(), 1);
}

TEST(redis_kv_fake,
     a_connection_the_server_closed_while_idle_is_replaced_silently) {
  fake_redis fake{[](int n, const argv_type& a) {
    if (n == 1 && a[0] == "PING") // answer, then close (idle timeout, restart)
      return action{action::send_then_close, "+PONG\r\n"};
    return healthy(a);
  }};
  auto closed = fake.closed(1);
  redis_kv kv{fake.url(), fast_options()};
  ASSERT_TRUE(kv.ping());
  ASSERT_EQ(closed.wait_for(10s), std::future_status::ready);
  std::this_thread::sleep_for(50ms); // let the FIN cross the loopback
  EXPECT_TRUE(kv.set_if_absent("k", "v", 1s));
  EXPECT_EQ(fake.connections(), 2);
  // The dead connection was noticed before SET was sent on it.
  for (const auto& [n, argv] : fake.log()) {
    if (argv[0] == "SET") {
      EXPECT_EQ(n, 2);
    }
  }
}

TEST(redis_kv_fake,
     a_command_timeout_is_a_port_error_and_the_next_call_reconnects) {
  fake_redis fake{[](int n, const argv_type& a) {
    if (n == 1 && a[0] == "SET")
      return action::never_answer();
    return healthy(a);
  }};
  auto opts = fast_options();
  opts.command_timeout = 100ms;
  redis_kv kv{fake.url(), opts};
  ASSERT_TRUE(kv.ping());
  auto error = error_of([&] { kv.set_if_absent("k", "v", 1s); });
  EXPECT_NE(error.find("redis SET: "), std::string::npos) << error;
  EXPECT_NE(error.find("(command timeout 100 ms)"), std::string::npos) << error;
  EXPECT_FALSE(kv.connected());
  EXPECT_TRUE(kv.set_if_absent("k", "v", 1s));
  EXPECT_EQ(fake.connections(), 2);
}

TEST(redis_kv_fake, claim_falls_back_to_eval_on_noscript) {
  fake_redis fake{[](int, const argv_type& a) {
    if (a[0] == "EVALSHA")
      return action::answer(
        "-NOSCRIPT No matching script. Please use EVAL.\r\n");
    if (a[0] == "EVAL")
      return action::answer(":0\r\n");
    return healthy(a);
  }};
  redis_kv kv{fake.url(), fast_options()};
  EXPECT_FALSE(kv.claim("call:1", "node-a", 30s));
  auto log = fake.log();
  ASSERT_EQ(log.size(), 3u); // CLIENT SETNAME, EVALSHA, EVAL
  const auto& evalsha = log[1].second;
  const auto& eval = log[2].second;
  ASSERT_EQ(evalsha.size(), 6u);
  ASSERT_EQ(eval.size(), 6u);
  EXPECT_EQ(evalsha[0], "EVALSHA");
  EXPECT_EQ(eval[0], "EVAL");
  // EVALSHA names the very script EVAL sends.
  EXPECT_EQ(evalsha[1], sha1_hex(eval[1]));
  EXPECT_EQ((argv_type{evalsha.begin() + 2, evalsha.end()}),
            (argv_type{"1", "call:1", "node-a", "30000"}));
  EXPECT_EQ((argv_type{eval.begin() + 2, eval.end()}),
            (argv_type{"1", "call:1", "node-a", "30000"}));
}

TEST(redis_kv_fake, other_script_errors_are_port_errors) {
  fake_redis fake{[](int, const argv_type& a) {
    if (a[0] == "EVALSHA")
      return action::answer("-BUSY Redis is busy running a script.\r\n");
    return healthy(a);
  }};
  redis_kv kv{fake.url(), fast_options()};
  EXPECT_EQ(error_of([&] { kv.claim("k", "a", 1s); }),
            "redis EVALSHA: BUSY Redis is busy running a script.");
}

TEST(redis_kv_fake, unexpected_reply_types_are_port_errors) {
  fake_redis fake{[](int, const argv_type& a) {
    if (a[0] == "SET" || a[0] == "EVALSHA")
      return action::answer("$3\r\nwhy\r\n");
    return healthy(a);
  }};
  redis_kv kv{fake.url(), fast_options()};
  EXPECT_EQ(error_of([&] { kv.set_if_absent("k", "v", 1s); }),
            "redis SET: unexpected reply type 1");
  EXPECT_EQ(error_of([&] { kv.claim("k", "a", 1s); }),
            "redis EVALSHA: unexpected reply type 1");
}

// -- pace
// -----------------------------------------------------------------------

engine::pace_request pace_at(std::string number_key, engine::pace number,
                             std::string tenant_key = {},
                             std::optional<engine::pace> cap = std::nullopt) {
  engine::pace_request r;
  r.number_key = std::move(number_key);
  r.number = number;
  r.tenant_key = std::move(tenant_key);
  r.tenant = cap;
  r.now = 1'700'000'000'123;
  return r;
}

/// Answers the pace script with `raw`; the rest like a healthy Redis.
fake_redis::script_type pace_replies(std::string raw) {
  return [raw](int, const argv_type& a) {
    if (a[0] == "EVALSHA" || a[0] == "EVAL")
      return action::answer(raw);
    return healthy(a);
  };
}

TEST(redis_kv_fake, pace_sends_the_gcra_script_with_keys_and_decimal_args) {
  fake_redis fake{pace_replies("*2\r\n:1\r\n:0\r\n")};
  redis_kv kv{fake.url(), fast_options()};
  auto one = kv.pace(pace_at("ringback:pace:{acme}:number:+1500", {0.5, 3}));
  EXPECT_TRUE(one.allowed);
  EXPECT_EQ(one.retry_after_ms, 0);
  auto two = kv.pace(pace_at("n", {1.0 / 7.0, 1}, "ringback:pace:{acme}:tenant",
                             engine::pace{30.0, 120}));
  EXPECT_TRUE(two.allowed);
  // A tenant key without a cap is no cap: one key.
  kv.pace(pace_at("n", {100.0, 1}, "ignored"));
  auto log = fake.log();
  ASSERT_EQ(log.size(), 4u); // CLIENT SETNAME, then the scripts
  auto sha = sha1_hex(engine::gcra_lua_script);
  EXPECT_EQ(log[1].second,
            (argv_type{"EVALSHA", sha, "1", "ringback:pace:{acme}:number:+1500",
                       "1700000000123", "0.5", "3"}));
  EXPECT_EQ(log[2].second,
            (argv_type{"EVALSHA", sha, "2", "n", "ringback:pace:{acme}:tenant",
                       "1700000000123", "0.14285714285714285", "1", "30",
                       "120"}));
  EXPECT_EQ(log[3].second,
            (argv_type{"EVALSHA", sha, "1", "n", "1700000000123", "100", "1"}));
}

TEST(redis_kv_fake, pace_reads_a_refusal_and_its_wait) {
  fake_redis fake{pace_replies("*2\r\n:0\r\n:1500\r\n")};
  redis_kv kv{fake.url(), fast_options()};
  auto a = kv.pace(pace_at("n", {1.0, 1}));
  EXPECT_FALSE(a.allowed);
  EXPECT_EQ(a.retry_after_ms, 1500);
}

TEST(redis_kv_fake, pace_falls_back_to_eval_on_noscript) {
  fake_redis fake{[](int, const argv_type& a) {
    if (a[0] == "EVALSHA")
      return action::answer(
        "-NOSCRIPT No matching script. Please use EVAL.\r\n");
    if (a[0] == "EVAL")
      return action::answer("*2\r\n:0\r\n:250\r\n");
    return healthy(a);
  }};
  redis_kv kv{fake.url(), fast_options()};
  auto a = kv.pace(pace_at("n", {4.0, 1}));
  EXPECT_FALSE(a.allowed);
  EXPECT_EQ(a.retry_after_ms, 250);
  auto log = fake.log();
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log[2].second, (argv_type{"EVAL", engine::gcra_lua_script, "1", "n",
                                      "1700000000123", "4", "1"}));
}

TEST(redis_kv_fake, pace_script_errors_are_port_errors) {
  fake_redis fake{pace_replies(
    "-ERR Error running script (call to f_x): @user_script:1: gcra: ARGV[1] "
    "(now, epoch ms) is not a number\r\n")};
  redis_kv kv{fake.url(), fast_options()};
  EXPECT_EQ(error_of([&] {
              kv.pace(pace_at("n", {1.0, 1}));
            }),
            "redis EVALSHA: ERR Error running script (call to f_x): "
            "@user_script:1: gcra: ARGV[1] (now, epoch ms) is not a number");
  EXPECT_TRUE(kv.connected());
}

TEST(redis_kv_fake, pace_unexpected_replies_are_port_errors) {
  for (const auto& [raw, type] : std::vector<std::pair<std::string, int>>{
         {":1\r\n", 3},
         {"*1\r\n:1\r\n", 2},
         {"*3\r\n:1\r\n:0\r\n:0\r\n", 2},
         {"*2\r\n$1\r\n1\r\n:0\r\n", 2},
         {"$-1\r\n", 4},
       }) {
    fake_redis fake{pace_replies(raw)};
    redis_kv kv{fake.url(), fast_options()};
    EXPECT_EQ(error_of([&] {
                kv.pace(pace_at("n", {1.0, 1}));
              }),
              "redis EVALSHA: unexpected reply to the pace script (type "
                + std::to_string(type) + ")")
      << raw;
  }
}

TEST(redis_kv_fake, a_refusal_without_a_wait_still_waits_1_ms) {
  fake_redis fake{pace_replies("*2\r\n:0\r\n:0\r\n")};
  redis_kv kv{fake.url(), fast_options()};
  auto a = kv.pace(pace_at("n", {1.0, 1}));
  EXPECT_FALSE(a.allowed);
  EXPECT_EQ(a.retry_after_ms, 1);
}

TEST(redis_kv_fake, pace_is_retried_once_on_a_fresh_connection) {
  fake_redis fake{[](int n, const argv_type& a) {
    if (n == 1 && a[0] == "EVALSHA")
      return action::hang_up();
    if (a[0] == "EVALSHA")
      return action::answer("*2\r\n:1\r\n:0\r\n");
    return healthy(a);
  }};
  redis_kv kv{fake.url(), fast_options()};
  ASSERT_TRUE(kv.ping());
  EXPECT_TRUE(kv.pace(pace_at("n", {1.0, 1})).allowed);
  EXPECT_EQ(fake.connections(), 2);
}

TEST(redis_kv_fake, a_malformed_pace_request_fails_before_connecting) {
  fake_redis fake{[](int, const argv_type& a) { return healthy(a); }};
  redis_kv kv{fake.url(), fast_options()};
  EXPECT_EQ(error_of([&] {
              kv.pace(pace_at("", {1.0, 1}));
            }),
            "redis EVALSHA: number_key is empty");
  EXPECT_EQ(error_of([&] {
              kv.pace(pace_at("n", {1.0, 1}, "", engine::pace{}));
            }),
            "redis EVALSHA: a tenant cap needs a tenant_key");
  EXPECT_EQ(fake.connections(), 0);
}

} // namespace
} // namespace ringback::adapters
