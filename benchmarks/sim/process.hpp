#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ringback::sim {

/// One reading of /proc/PID.
struct proc_reading {
  bool ok = false;
  std::uint64_t rss_kib = 0;   // VmRSS
  std::uint64_t cpu_ticks = 0; // utime + stime
  int threads = 0;
};

/// Reads /proc/PID/status and /proc/PID/stat (0: this process).
proc_reading read_proc(pid_t pid);

/// The machine's busy and total CPU time from /proc/stat (all CPUs), in
/// clock ticks.
struct machine_reading {
  bool ok = false;
  std::uint64_t busy = 0;
  std::uint64_t total = 0;
};
machine_reading read_machine();

/// Clock ticks per second (sysconf(_SC_CLK_TCK)).
double ticks_per_second();

/// One GET http://host:port/path (a fresh connection, `timeout` for all of
/// it): the status (0 when there was no answer) and the body. Blocking: for
/// side threads, never the simulator's io thread.
std::pair<int, std::string>
http_get(const std::string& host, std::uint16_t port, const std::string& path,
         std::chrono::milliseconds timeout);

/// The sum of a metric's samples in a Prometheus text exposition (every
/// label set of `name`, e.g. `ringback_conversation_actors`); nullopt when
/// it has none.
std::optional<double> metric_sum(const std::string& exposition,
                                 const std::string& name);

/// GET http://host:port/readyz until it answers 200 or `timeout` passes.
bool wait_ready(const std::string& host, std::uint16_t port,
                std::chrono::milliseconds timeout,
                const std::function<bool()>& still_alive);

/// Starts, kills and restarts the ringback process from one long-lived
/// thread (so that PR_SET_PDEATHSIG keeps the child from outliving us).
class supervisor {
public:
  supervisor(std::string bin, std::string config, std::string log,
             std::string host, std::uint16_t port);
  ~supervisor();

  /// Spawns and waits for /readyz (up to 120 s). An error, or nullopt.
  std::optional<std::string> start();

  /// kill -9 now, then after `delay` start again with the same config and
  /// wait until ready; `done(downtime_ms, ok)` is called on the supervisor
  /// thread afterwards.
  void kill_and_restart(std::chrono::milliseconds delay,
                        std::function<void(double, bool)> done);

  /// SIGTERM, wait up to 15 s, then SIGKILL. Returns the exit status text.
  std::string stop();

  pid_t pid() const noexcept {
    return pid_.load();
  }

  /// Exits nobody asked for (crashes), with their status text.
  std::vector<std::string> unexpected_exits() const;

private:
  void loop();
  pid_t spawn_now();
  void reap_if_dead();

  std::string bin_, config_, log_, host_;
  std::uint16_t port_;
  std::atomic<pid_t> pid_{0};
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::string> unexpected_;
  bool quit_ = false;
  std::thread thread_;
};

std::string describe_wait_status(int status);

} // namespace ringback::sim
