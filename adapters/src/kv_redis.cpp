#include "ringback/adapters/detail/percent.hpp"
#include "ringback/adapters/kv/redis_kv.hpp"
#include "ringback/engine/messaging.hpp"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <ctime>
#include <utility>
#include <vector>

namespace ringback::adapters {

// -- URL ----------------------------------------------------------------------

namespace {

bool all_digits(std::string_view x) {
  if (x.empty()) {
    return false;
  }
  for (auto c : x) {
    if (c < '0' || c > '9') {
      return false;
    }
  }
  return true;
}

std::optional<redis_url> fail(std::string* error, std::string message) {
  if (error != nullptr) {
    *error = std::move(message);
  }
  return std::nullopt;
}

} // namespace

std::string redis_url::display() const {
  std::string out = "redis://";
  if (!username.empty() || !password.empty()) {
    out += username;
    if (!password.empty()) {
      out += ":***";
    }
    out += '@';
  }
  if (host.find(':') != std::string::npos) {
    out += '[' + host + ']';
  } else {
    out += host;
  }
  out += ':';
  out += std::to_string(port);
  out += '/';
  out += std::to_string(db);
  return out;
}

std::optional<redis_url> parse_redis_url(std::string_view url,
                                         std::string* error) {
  constexpr std::string_view scheme = "redis://";
  if (url.substr(0, 9) == "rediss://") {
    return fail(error, "TLS (rediss://) is not supported");
  }
  if (url.substr(0, scheme.size()) != scheme) {
    return fail(error, "expected redis://");
  }
  auto rest = url.substr(scheme.size());
  if (auto q = rest.find_first_of("?#"); q != std::string_view::npos) {
    return fail(error, "unexpected query or fragment '"
                         + std::string{rest.substr(q)} + "'");
  }
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  auto path = slash == std::string_view::npos ? std::string_view{}
                                              : rest.substr(slash + 1);
  redis_url result;
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    auto userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    auto colon = userinfo.find(':');
    auto user = detail::percent_decode(userinfo.substr(0, colon),
                                       detail::plus_decoding::literal);
    if (!user) {
      return fail(error, "bad percent-encoding in the user name");
    }
    result.username = std::move(*user);
    if (colon != std::string_view::npos) {
      auto pass = detail::percent_decode(userinfo.substr(colon + 1),
                                         detail::plus_decoding::literal);
      if (!pass) {
        return fail(error, "bad percent-encoding in the password");
      }
      result.password = std::move(*pass);
    }
    if (!result.username.empty() && result.password.empty()) {
      return fail(error, "a user name needs a password");
    }
  }
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      return fail(error, "missing ']' after the IPv6 host");
    }
    result.host = std::string{authority.substr(1, close - 1)};
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return fail(error,
                    "unexpected '" + std::string{after} + "' after the host");
      }
      port = after.substr(1);
      if (port.empty()) {
        return fail(error, "bad port ''");
      }
    }
  } else {
    auto colon = authority.find(':');
    result.host = std::string{authority.substr(0, colon)};
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) {
        return fail(error, "bad port ''");
      }
    }
  }
  if (result.host.empty()) {
    return fail(error, "missing host");
  }
  if (!port.empty()) {
    if (!all_digits(port) || port.size() > 5 || std::stoi(std::string{port}) < 1
        || std::stoi(std::string{port}) > 65535) {
      return fail(error, "bad port '" + std::string{port} + "'");
    }
    result.port = static_cast<std::uint16_t>(std::stoi(std::string{port}));
  }
  if (!path.empty()) {
    if (!all_digits(path) || path.size() > 5) {
      return fail(error, "bad db '" + std::string{path} + "'");
    }
    result.db = std::stoi(std::string{path});
  }
  return result;
}

// -- hiredis plumbing ---------------------------------------------------------

namespace {

/// An error reply from the server (the connection stays usable).
class error_reply : public engine::port_error {
public:
  error_reply(const std::string& what, std::string text)
    : engine::port_error(what), text(std::move(text)) {
  }

  std::string text;
};

/// An I/O failure (the connection is gone).
class io_failure : public engine::port_error {
public:
  using engine::port_error::port_error;
};

/// hiredis writes with plain write(2): a write to a reset socket would raise
/// SIGPIPE and kill the process unless the application ignores it. Blocks
/// the signal on this thread for the duration and swallows one that became
/// pending meanwhile.
class sigpipe_guard {
public:
  sigpipe_guard() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }

  ~sigpipe_guard() {
    if (!was_pending_) {
      sigset_t pending;
      sigemptyset(&pending);
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        timespec zero{0, 0};
        sigtimedwait(&set_, nullptr, &zero);
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

  sigpipe_guard(const sigpipe_guard&) = delete;
  sigpipe_guard& operator=(const sigpipe_guard&) = delete;

private:
  sigset_t set_;
  sigset_t old_;
  bool was_pending_ = false;
};

timeval to_timeval(std::chrono::milliseconds x) {
  if (x.count() <= 0) {
    x = std::chrono::milliseconds{1};
  }
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(x.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((x.count() % 1000) * 1000);
  return tv;
}

/// How the command shows in error messages: `SET`, `CLIENT SETNAME`, ...
std::string command_name(const std::string_view* argv, std::size_t argc) {
  std::string out{argv[0]};
  if ((out == "CLIENT" || out == "SCRIPT") && argc > 1) {
    out += ' ' + std::string{argv[1]};
  }
  return out;
}

constexpr std::string_view claim_script
  = "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then\n"
    "  return 1\n"
    "end\n"
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

/// SHA1 of a script in hex, as EVALSHA wants it.
std::string sha1_hex(std::string_view script) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int len = 0;
  EVP_Digest(script.data(), script.size(), digest.data(), &len, EVP_sha1(),
             nullptr);
  constexpr std::string_view hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 0xf];
  }
  return out;
}

const std::string& claim_script_sha() {
  static const std::string sha = sha1_hex(claim_script);
  return sha;
}

const std::string& pace_script_sha() {
  static const std::string sha = sha1_hex(engine::gcra_lua_script);
  return sha;
}


const std::string& pace_slots_script_sha() {
  static const std::string sha = sha1_hex(engine::gcra_slots_lua_script);
  return sha;
}

/// A rate as the script's `tonumber` reads it back: the shortest decimal
/// text that round-trips to the same double, in no locale ("0.5", "3",
/// "1e-05"; "nan" and "inf" too, which the script refuses like `gcra`).
std::string rate_argument(double rate) {
  std::array<char, 64> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), rate);
  if (ec != std::errc{}) {
    return "nan"; // cannot happen with 64 bytes; refused either way
  }
  return std::string{buf.data(), end};
}

/// An integer of the script's reply, which must be an array of two.
long long reply_integer(const redisReply* r, std::size_t i) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2
      || r->element[i]->type != REDIS_REPLY_INTEGER) {
    throw engine::port_error(
      "redis EVALSHA: unexpected reply to the pace script (type "
      + std::to_string(r->type) + ")");
  }
  return r->element[i]->integer;
}

std::string ttl_argument(const char* command, std::chrono::milliseconds ttl) {
  if (ttl.count() <= 0) {
    throw engine::port_error(std::string{"redis "} + command
                             + ": ttl must be positive, got "
                             + std::to_string(ttl.count()) + " ms");
  }
  return std::to_string(ttl.count());
}

} // namespace

class redis_kv::reply {
public:
  explicit reply(redisReply* ptr) : ptr_(ptr) {
  }

  const redisReply* operator->() const noexcept {
    return ptr_.get();
  }

  const redisReply* get() const noexcept {
    return ptr_.get();
  }

  bool is_status(std::string_view text) const noexcept {
    return ptr_->type == REDIS_REPLY_STATUS
           && std::string_view{ptr_->str, ptr_->len} == text;
  }

private:
  struct deleter {
    void operator()(redisReply* x) const noexcept {
      freeReplyObject(x);
    }
  };

  std::unique_ptr<redisReply, deleter> ptr_;
};

void redis_kv::context_deleter::operator()(redisContext* ptr) const noexcept {
  redisFree(ptr);
}

redis_kv::redis_kv(redis_url url, redis_kv_options options)
  : url_(std::move(url)), options_(std::move(options)) {
  // Connects lazily, on the first call.
}

redis_kv::~redis_kv() = default;

void redis_kv::connect() {
  context_.reset();
  auto where = url_.host + ':' + std::to_string(url_.port);
  context_ptr ctx{redisConnectWithTimeout(
    url_.host.c_str(), url_.port, to_timeval(options_.connect_timeout))};
  if (!ctx) {
    throw io_failure("redis connect " + where + ": out of memory");
  }
  if (ctx->err != 0) {
    std::string why = ctx->errstr;
    if (ctx->err == REDIS_ERR_IO
        && (errno == ETIMEDOUT || errno == EINPROGRESS || errno == EAGAIN)) {
      why += " (connect timeout "
             + std::to_string(options_.connect_timeout.count()) + " ms)";
    }
    throw io_failure("redis connect " + where + ": " + why);
  }
  if (redisSetTimeout(ctx.get(), to_timeval(options_.command_timeout))
      != REDIS_OK) {
    throw io_failure("redis connect " + where + ": cannot set timeouts");
  }
  redisEnableKeepAlive(ctx.get());
  context_ = std::move(ctx);
  try {
    if (!url_.password.empty()) {
      if (url_.username.empty()) {
        command({"AUTH", url_.password});
      } else {
        command({"AUTH", url_.username, url_.password});
      }
    }
    if (!options_.client_name.empty()) {
      command({"CLIENT", "SETNAME", options_.client_name});
    }
    if (url_.db != 0) {
      command({"SELECT", std::to_string(url_.db)});
    }
  } catch (...) {
    context_.reset();
    throw;
  }
}

void redis_kv::drop_if_dead() noexcept {
  if (!context_) {
    return;
  }
  char byte = 0;
  auto n = ::recv(context_->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    return; // idle and healthy
  }
  // 0: the server closed it; < 0: reset; > 0: bytes nobody asked for, so the
  // protocol is out of step. In each case a fresh connection is the cure.
  context_.reset();
}

redis_kv::reply
redis_kv::command(std::initializer_list<std::string_view> argv) {
  return command(argv.begin(), argv.size());
}

redis_kv::reply redis_kv::command(const std::string_view* argv,
                                  std::size_t argc) {
  std::vector<const char*> args;
  std::vector<std::size_t> lengths;
  args.reserve(argc);
  lengths.reserve(argc);
  for (std::size_t i = 0; i < argc; ++i) {
    args.push_back(argv[i].data());
    lengths.push_back(argv[i].size());
  }
  redisReply* raw = nullptr;
  int saved_errno = 0;
  {
    sigpipe_guard guard;
    errno = 0;
    raw = static_cast<redisReply*>(
      redisCommandArgv(context_.get(), static_cast<int>(args.size()),
                       args.data(), lengths.data()));
    saved_errno = errno;
  }
  if (raw == nullptr) {
    std::string why = context_->errstr[0] != '\0' ? context_->errstr
                                                  : "connection lost";
    if (context_->err == REDIS_ERR_IO
        && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)) {
      why += " (command timeout "
             + std::to_string(options_.command_timeout.count()) + " ms)";
    }
    context_.reset();
    throw io_failure("redis " + command_name(argv, argc) + ": " + why);
  }
  reply result{raw};
  if (result->type == REDIS_REPLY_ERROR) {
    std::string text{result->str, result->len};
    auto message = "redis " + command_name(argv, argc) + ": " + text;
    throw error_reply(message, std::move(text));
  }
  return result;
}

template <class F>
auto redis_kv::idempotent(F fn) -> decltype(fn()) {
  drop_if_dead();
  bool was_connected = context_ != nullptr;
  try {
    if (!context_) {
      connect();
    }
    return fn();
  } catch (const io_failure&) {
    // A connection that looked fine may have died just now; a fresh one
    // tells a broken link from a server that is really down.
    if (!was_connected) {
      throw;
    }
  }
  connect();
  return fn();
}

bool redis_kv::set_if_absent(std::string_view key, std::string_view value,
                             std::chrono::milliseconds ttl) {
  auto ttl_ms = ttl_argument("SET", ttl);
  drop_if_dead();
  if (!context_) {
    connect();
  }
  auto r = command({"SET", key, value, "NX", "PX", ttl_ms});
  if (r.is_status("OK")) {
    return true;
  }
  if (r->type == REDIS_REPLY_NIL) {
    return false;
  }
  throw engine::port_error("redis SET: unexpected reply type "
                           + std::to_string(r->type));
}

redis_kv::reply
redis_kv::run_script(std::string_view script, const std::string& sha,
                     const std::string_view* args, std::size_t count) {
  std::array<std::string_view, 12> argv{};
  if (count + 2 > argv.size()) {
    throw engine::port_error("redis EVALSHA: too many arguments");
  }
  std::copy(args, args + count, argv.begin() + 2);
  argv[0] = "EVALSHA";
  argv[1] = sha;
  try {
    return command(argv.data(), count + 2);
  } catch (const error_reply& e) {
    if (e.text.rfind("NOSCRIPT", 0) != 0) {
      throw;
    }
  }
  // The server has not seen the script yet (or flushed it): EVAL caches it.
  argv[0] = "EVAL";
  argv[1] = script;
  return command(argv.data(), count + 2);
}

bool redis_kv::claim(std::string_view key, std::string_view owner,
                     std::chrono::milliseconds ttl) {
  auto ttl_ms = ttl_argument("EVALSHA", ttl);
  return idempotent([&] {
    std::array<std::string_view, 4> args{"1", key, owner, ttl_ms};
    auto r = run_script(claim_script, claim_script_sha(), args.data(),
                        args.size());
    if (r->type != REDIS_REPLY_INTEGER) {
      throw engine::port_error("redis EVALSHA: unexpected reply type "
                               + std::to_string(r->type));
    }
    return r->integer == 1;
  });
}

bool redis_kv::ping() {
  return idempotent([&] { return command({"PING"}).is_status("PONG"); });
}

engine::pace_answer redis_kv::pace(const engine::pace_request& r) {
  if (r.number_key.empty()) {
    throw engine::port_error("redis EVALSHA: number_key is empty");
  }
  if (r.tenant && r.tenant_key.empty()) {
    throw engine::port_error("redis EVALSHA: a tenant cap needs a tenant_key");
  }
  auto now = std::to_string(r.now);
  auto number_rate = rate_argument(r.number.rate_per_s);
  auto number_burst = std::to_string(r.number.burst);
  std::string tenant_rate;
  std::string tenant_burst;
  std::array<std::string_view, 8> args{};
  std::size_t count = 0;
  if (r.tenant) {
    tenant_rate = rate_argument(r.tenant->rate_per_s);
    tenant_burst = std::to_string(r.tenant->burst);
    args = {"2",         r.number_key, r.tenant_key, now,
            number_rate, number_burst, tenant_rate,  tenant_burst};
    count = 8;
  } else {
    args = {"1", r.number_key, now, number_rate, number_burst};
    count = 5;
  }
  return idempotent([&] {
    auto reply = run_script(engine::gcra_lua_script, pace_script_sha(),
                            args.data(), count);
    auto allowed = reply_integer(reply.get(), 0) == 1;
    auto retry_after = reply_integer(reply.get(), 1);
    engine::pace_answer out;
    out.allowed = allowed;
    // The script always answers a refusal with a wait > 0; keep the promise
    // even if a stored time was tampered with.
    out.retry_after_ms = allowed ? 0 : std::max<long long>(retry_after, 1);
    return out;
  });
}

engine::pace_slots_answer redis_kv::pace_slots(const engine::pace_request& r,
                                               std::size_t count,
                                               engine::epoch_ms horizon_ms) {
  if (r.number_key.empty()) {
    throw engine::port_error("redis EVALSHA: number_key is empty");
  }
  if (r.tenant && r.tenant_key.empty()) {
    throw engine::port_error("redis EVALSHA: a tenant cap needs a tenant_key");
  }
  engine::pace_slots_answer none;
  if (count == 0) {
    return none;
  }
  auto now = std::to_string(r.now);
  auto slots = std::to_string(count);
  auto horizon = std::to_string(std::max<engine::epoch_ms>(0, horizon_ms));
  auto number_rate = rate_argument(r.number.rate_per_s);
  auto number_burst = std::to_string(r.number.burst);
  std::string tenant_rate;
  std::string tenant_burst;
  std::array<std::string_view, 10> args{};
  std::size_t n = 0;
  if (r.tenant) {
    tenant_rate = rate_argument(r.tenant->rate_per_s);
    tenant_burst = std::to_string(r.tenant->burst);
    args = {"2",     r.number_key, r.tenant_key, now,         slots,
            horizon, number_rate,  number_burst, tenant_rate, tenant_burst};
    n = 10;
  } else {
    args = {"1", r.number_key, now, slots, horizon, number_rate, number_burst};
    n = 7;
  }
  return idempotent([&] {
    auto reply = run_script(engine::gcra_slots_lua_script, pace_slots_script_sha(),
                            args.data(), n);
    const auto* x = reply.get();
    auto bad = [&] {
      return engine::port_error(
        "redis EVALSHA: unexpected reply to the pace slots script (type "
        + std::to_string(x->type) + ")");
    };
    if (x->type != REDIS_REPLY_ARRAY || x->elements < 2) {
      throw bad();
    }
    for (std::size_t i = 0; i < x->elements; ++i) {
      if (x->element[i]->type != REDIS_REPLY_INTEGER) {
        throw bad();
      }
    }
    auto granted = x->element[0]->integer;
    if (granted < 0 || static_cast<std::size_t>(granted) != x->elements - 2
        || static_cast<std::size_t>(granted) > count) {
      throw bad();
    }
    engine::pace_slots_answer out;
    out.starts.reserve(static_cast<std::size_t>(granted));
    for (std::size_t i = 2; i < x->elements; ++i) {
      out.starts.push_back(x->element[i]->integer);
    }
    if (out.starts.empty()) {
      // Keep the promise of a wait > 0 even if a stored time was tampered
      // with.
      out.retry_after_ms = std::max<long long>(x->element[1]->integer, 1);
    }
    return out;
  });
}

} // namespace ringback::adapters
