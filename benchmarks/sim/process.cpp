#include "process.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <sstream>

namespace ringback::sim {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

proc_reading read_proc(pid_t pid) {
  proc_reading r;
  const std::string base = pid == 0 ? std::string{"/proc/self"}
                                    : "/proc/" + std::to_string(pid);
  {
    std::ifstream status{base + "/status"};
    if (!status) {
      return r;
    }
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) {
        r.rss_kib = std::strtoull(line.c_str() + 6, nullptr, 10);
      } else if (line.rfind("Threads:", 0) == 0) {
        r.threads = std::atoi(line.c_str() + 8);
      }
    }
  }
  std::ifstream stat{base + "/stat"};
  std::string all;
  if (!stat || !std::getline(stat, all)) {
    return r;
  }
  // The command may hold spaces and parentheses: fields follow the last ')'.
  auto close = all.rfind(')');
  if (close == std::string::npos) {
    return r;
  }
  std::istringstream rest{all.substr(close + 2)};
  std::string field;
  // After ')' come field 3 (state) ... ; utime is field 14, stime 15.
  std::uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) {
      utime = std::strtoull(field.c_str(), nullptr, 10);
    }
    if (i == 15) {
      stime = std::strtoull(field.c_str(), nullptr, 10);
    }
  }
  r.cpu_ticks = utime + stime;
  r.ok = true;
  return r;
}

machine_reading read_machine() {
  machine_reading m;
  std::ifstream stat{"/proc/stat"};
  std::string cpu;
  if (!(stat >> cpu) || cpu != "cpu") {
    return m;
  }
  // user nice system idle iowait irq softirq steal
  std::uint64_t v[8] = {};
  for (auto& x : v) {
    if (!(stat >> x)) {
      return m;
    }
  }
  m.busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  m.total = m.busy + v[3] + v[4];
  m.ok = true;
  return m;
}

double ticks_per_second() {
  static const double t = static_cast<double>(sysconf(_SC_CLK_TCK));
  return t;
}

std::pair<int, std::string>
http_get(const std::string& host, std::uint16_t port, const std::string& path,
         std::chrono::milliseconds timeout) {
  try {
    asio::io_context io;
    beast::tcp_stream stream{io};
    stream.expires_after(timeout);
    stream.connect(tcp::endpoint{asio::ip::make_address(host), port});
    http::request<http::empty_body> req{http::verb::get, path, 11};
    req.set(http::field::host, host);
    req.keep_alive(false);
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    http::read(stream, buf, parser);
    auto& res = parser.get();
    return {static_cast<int>(res.result_int()), std::move(res.body())};
  } catch (const std::exception&) {
    return {0, {}};
  }
}

std::optional<double> metric_sum(const std::string& exposition,
                                 const std::string& name) {
  std::optional<double> sum;
  std::istringstream in{exposition};
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() <= name.size() || line.compare(0, name.size(), name) != 0
        || (line[name.size()] != '{' && line[name.size()] != ' ')) {
      continue;
    }
    auto space = line.rfind(' ');
    if (space == std::string::npos) {
      continue;
    }
    char* end = nullptr;
    const double v = std::strtod(line.c_str() + space + 1, &end);
    if (end == line.c_str() + space + 1) {
      continue;
    }
    sum = sum.value_or(0) + v;
  }
  return sum;
}

namespace {

int readyz_status(const std::string& host, std::uint16_t port) {
  return http_get(host, port, "/readyz", std::chrono::seconds{2}).first;
}

} // namespace

bool wait_ready(const std::string& host, std::uint16_t port,
                std::chrono::milliseconds timeout,
                const std::function<bool()>& still_alive) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (still_alive && !still_alive()) {
      return false;
    }
    if (readyz_status(host, port) == 200) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  return false;
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) {
    return "exited with " + std::to_string(WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    return std::string{"killed by signal "} + std::to_string(WTERMSIG(status))
           + " (" + strsignal(WTERMSIG(status)) + ")";
  }
  return "status " + std::to_string(status);
}

supervisor::supervisor(std::string bin, std::string config, std::string log,
                       std::string host, std::uint16_t port)
  : bin_(std::move(bin)),
    config_(std::move(config)),
    log_(std::move(log)),
    host_(std::move(host)),
    port_(port) {
  thread_ = std::thread{[this] { loop(); }};
}

supervisor::~supervisor() {
  stop();
  {
    std::lock_guard<std::mutex> guard{mutex_};
    quit_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void supervisor::loop() {
  std::unique_lock<std::mutex> lock{mutex_};
  while (!quit_) {
    if (!jobs_.empty()) {
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
      continue;
    }
    cv_.wait_for(lock, std::chrono::milliseconds{200});
    lock.unlock();
    reap_if_dead();
    lock.lock();
  }
}

void supervisor::reap_if_dead() {
  // Under the mutex: stop() must not race us for the same child.
  std::lock_guard<std::mutex> guard{mutex_};
  pid_t p = pid_.load();
  if (p <= 0) {
    return;
  }
  int status = 0;
  if (waitpid(p, &status, WNOHANG) == p) {
    pid_.store(0);
    unexpected_.push_back(describe_wait_status(status));
  }
}

pid_t supervisor::spawn_now() {
  const pid_t parent = getpid();
  pid_t child = fork();
  if (child == 0) {
    // Only async-signal-safe calls from here to exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
      _exit(127);
    }
    int in = open("/dev/null", O_RDONLY);
    if (in >= 0) {
      dup2(in, 0);
    }
    if (!log_.empty()) {
      int out = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (out >= 0) {
        dup2(out, 1);
        dup2(out, 2);
      }
    }
    setpgid(0, 0);
    const char* argv[] = {bin_.c_str(), "serve", "--config", config_.c_str(),
                          nullptr};
    execv(bin_.c_str(), const_cast<char* const*>(argv));
    _exit(127);
  }
  return child;
}

std::optional<std::string> supervisor::start() {
  std::promise<std::optional<std::string>> result;
  auto fut = result.get_future();
  {
    std::lock_guard<std::mutex> guard{mutex_};
    jobs_.push_back([this, &result] {
      pid_t p = spawn_now();
      if (p < 0) {
        result.set_value("fork failed: " + std::string{strerror(errno)});
        return;
      }
      pid_.store(p);
      auto alive = [p] {
        int status = 0;
        return waitpid(p, &status, WNOHANG) == 0;
      };
      if (!wait_ready(host_, port_, std::chrono::seconds{120}, alive)) {
        kill(p, SIGKILL);
        int status = 0;
        waitpid(p, &status, 0);
        pid_.store(0);
        result.set_value("ringback did not become ready on " + host_ + ":"
                         + std::to_string(port_) + " (see its log "
                         + (log_.empty() ? std::string{"on stderr"} : log_)
                         + ")");
        return;
      }
      result.set_value(std::nullopt);
    });
  }
  cv_.notify_all();
  return fut.get();
}

void supervisor::kill_and_restart(std::chrono::milliseconds delay,
                                  std::function<void(double, bool)> done) {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    jobs_.push_back([this, delay, done = std::move(done)] {
      auto t0 = std::chrono::steady_clock::now();
      pid_t p = pid_.exchange(0);
      if (p > 0) {
        kill(p, SIGKILL);
        int status = 0;
        waitpid(p, &status, 0);
      }
      std::this_thread::sleep_for(delay);
      pid_t q = spawn_now();
      bool ok = q > 0;
      if (ok) {
        pid_.store(q);
        auto alive = [q] {
          int status = 0;
          return waitpid(q, &status, WNOHANG) == 0;
        };
        ok = wait_ready(host_, port_, std::chrono::seconds{120}, alive);
      }
      std::chrono::duration<double, std::milli> down
        = std::chrono::steady_clock::now() - t0;
      done(down.count(), ok);
    });
  }
  cv_.notify_all();
}

std::string supervisor::stop() {
  std::lock_guard<std::mutex> guard{mutex_};
  pid_t p = pid_.exchange(0);
  if (p <= 0) {
    return "not running";
  }
  kill(p, SIGTERM);
  int status = 0;
  for (int i = 0; i < 150; ++i) {
    if (waitpid(p, &status, WNOHANG) == p) {
      return describe_wait_status(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  kill(p, SIGKILL);
  waitpid(p, &status, 0);
  return "did not stop within 15 s after SIGTERM: "
         + describe_wait_status(status);
}

std::vector<std::string> supervisor::unexpected_exits() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return unexpected_;
}

} // namespace ringback::sim
