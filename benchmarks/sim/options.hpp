#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ringback::sim {

using seconds_d = std::chrono::duration<double>;

/// A uniform range of seconds, written `MIN:MAX` (`15:25`, `500ms:2s`) or
/// one value.
struct range_s {
  double min = 0;
  double max = 0;
};

/// Everything `ringback_sim` can be told. Defaults are a gentle run against
/// `deploy/ringback.yaml`'s address and credentials.
struct options {
  // where ringback is and how it signs
  std::string target = "127.0.0.1:8080";
  std::string public_url; // default: http://<target>
  std::string account_sid = "AC00000000000000000000000000000000";
  std::string auth_token = "dev-token";
  int tenants = 1;    // numbers by the scheme in docs/benchmarks.md
  std::string number; // a single given tenant instead: its number ...
  std::string owner;  // ... and its owner's phone
  std::string rest_listen = "127.0.0.1:8089"; // the Twilio REST API we play

  // the load: an open model
  double rate = 5;            // calls per second
  int target_concurrency = 0; // > 0: derive `rate` from the call times
  seconds_d duration{10};     // arrivals stop after this ...
  std::int64_t max_calls = 0; // ... or after this many calls (0: no cap)
  bool poisson = false;       // exponential gaps instead of constant
  // events due within this go together (one timer for several events)
  std::chrono::microseconds timer_slack{1000};
  std::vector<double> steps;  // knee: a rate per step
  seconds_d step_duration{10};
  double knee_p99_ms = 50;
  // the calls
  range_s ring{15, 25};
  double answer_p = 0.5;
  range_s talk{20, 100};
  double busy_share = 0.1;  // of missed calls
  double drop_dial = 0.05;  // Dial action callbacks never sent
  double drop_status = 0.5; // status callbacks never sent
  double dup_dial = 0.05;   // sent twice (carrier retry)
  double dup_status = 0.05;
  double reply_share = 0.2;       // callers answering the text-back
  double owner_reply_share = 0.1; // owners answering the notification
  range_s reply_delay{1, 5};
  double sms_fail_share = 0; // Messages POSTs answered 503
  seconds_d rest_delay{0};   // Messages POSTs answered after this
  seconds_d hangup_after{
    -1}; // >= 0: end ringing calls this long after arrivals stop
  double hangup_rate = 0; // ... at this pace (0: the arrival rate)
  double max_rss_mib = 0; // stop arrivals once ringback's RSS passes this
  seconds_d reply_after{
    -1}; // >= 0: callers reply together, this long after arrivals stop ...
  double reply_rate = 0;     // ... at this pace (0: the arrival rate)
  bool expect_ai = false;    // every reply must also get the AI's answer
  bool poll_metrics = false; // GET /metrics each second (conversation actors)
  // the client
  int connections = 128;
  seconds_d timeout{5};
  // the end
  seconds_d drain{60};
  seconds_d quiet{3};
  seconds_d max_run{0}; // hard cap on the whole run (0: derived)
  bool verify = true;
  // the process under test
  int pid = 0;
  std::string ringback_bin;
  std::string ringback_config;
  std::string ringback_log;
  std::vector<double> kill_at; // seconds after the load started
  seconds_d restart_delay{1};
  // output
  bool demo = false;
  bool progress = false;
  std::string json_path;
  std::string label = "run";
  std::uint64_t seed = 1;
};

/// Options of `ringback_sim bare-server`.
struct bare_options {
  std::string listen = "127.0.0.1:8090";
  int threads = 2;
  std::string owner = "+15005550002";
  std::string public_url = "http://127.0.0.1:8090";
};

/// Parses argv (without the program name). Returns an error message, or
/// nullopt; `--help` sets `help`.
std::optional<std::string> parse(int argc, char** argv, options& out,
                                 bool& help);
std::optional<std::string> parse(int argc, char** argv, bare_options& out,
                                 bool& help);

/// The text `--help` prints.
const char* usage();

/// "20s", "500ms", "2m", "1.5" (seconds) -> seconds; nullopt if malformed.
std::optional<double> parse_seconds(const std::string& text);

/// Splits "HOST:PORT"; nullopt if the port is missing or bad.
std::optional<std::pair<std::string, std::uint16_t>>
split_host_port(const std::string& text);

} // namespace ringback::sim
