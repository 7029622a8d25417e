#include "options.hpp"

#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>

namespace ringback::sim {

namespace {

std::optional<double> number(const std::string& text) {
  if (text.empty()) {
    return std::nullopt;
  }
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) {
    return std::nullopt;
  }
  return v;
}

std::optional<range_s> parse_range(const std::string& text) {
  auto colon = text.find(':');
  auto lo = parse_seconds(text.substr(0, colon));
  auto hi = colon == std::string::npos ? lo
                                       : parse_seconds(text.substr(colon + 1));
  if (!lo || !hi || *lo < 0 || *hi < *lo) {
    return std::nullopt;
  }
  return range_s{*lo, *hi};
}

std::optional<std::vector<double>> parse_list(const std::string& text) {
  std::vector<double> out;
  std::stringstream in{text};
  std::string item;
  while (std::getline(in, item, ',')) {
    auto v = number(item);
    if (!v || *v < 0) {
      return std::nullopt;
    }
    out.push_back(*v);
  }
  if (out.empty()) {
    return std::nullopt;
  }
  return out;
}

using setter = std::function<bool(const std::string&)>;

setter share(double& x) {
  return [&x](const std::string& v) {
    auto n = number(v);
    if (!n || *n < 0 || *n > 1) {
      return false;
    }
    x = *n;
    return true;
  };
}

setter positive(double& x) {
  return [&x](const std::string& v) {
    auto n = number(v);
    if (!n || *n < 0) {
      return false;
    }
    x = *n;
    return true;
  };
}

template <class Int>
setter integer(Int& x) {
  return [&x](const std::string& v) {
    auto n = number(v);
    if (!n || *n < 0 || *n != static_cast<double>(static_cast<Int>(*n))) {
      return false;
    }
    x = static_cast<Int>(*n);
    return true;
  };
}

setter text(std::string& x) {
  return [&x](const std::string& v) {
    x = v;
    return !v.empty();
  };
}

setter duration(seconds_d& x) {
  return [&x](const std::string& v) {
    auto n = parse_seconds(v);
    if (!n || *n < 0) {
      return false;
    }
    x = seconds_d{*n};
    return true;
  };
}

setter range(range_s& x) {
  return [&x](const std::string& v) {
    auto r = parse_range(v);
    if (!r) {
      return false;
    }
    x = *r;
    return true;
  };
}

setter list(std::vector<double>& x) {
  return [&x](const std::string& v) {
    auto l = parse_list(v);
    if (!l) {
      return false;
    }
    x = *l;
    return true;
  };
}

std::optional<std::string>
run_parser(int argc, char** argv, const std::map<std::string, setter>& valued,
           const std::map<std::string, std::function<void()>>& flags,
           bool& help) {
  help = false;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      help = true;
      return std::nullopt;
    }
    std::string value;
    bool has_value = false;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    if (auto f = flags.find(arg); f != flags.end()) {
      if (has_value) {
        return arg + " takes no value";
      }
      f->second();
      continue;
    }
    auto s = valued.find(arg);
    if (s == valued.end()) {
      return "unknown option '" + arg + "' (see --help)";
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        return arg + " needs a value";
      }
      value = argv[++i];
    }
    if (!s->second(value)) {
      return "bad value for " + arg + ": '" + value + "'";
    }
  }
  return std::nullopt;
}

} // namespace

std::optional<double> parse_seconds(const std::string& text) {
  struct unit {
    const char* suffix;
    double factor;
  };
  static const unit units[]
    = {{"us", 1e-6}, {"ms", 1e-3}, {"s", 1}, {"m", 60}, {"h", 3600}};
  for (const auto& u : units) {
    std::string suffix = u.suffix;
    if (text.size() > suffix.size()
        && text.compare(text.size() - suffix.size(), suffix.size(), suffix)
             == 0) {
      auto n = number(text.substr(0, text.size() - suffix.size()));
      if (n) {
        return *n * u.factor;
      }
    }
  }
  return number(text);
}

std::optional<std::pair<std::string, std::uint16_t>>
split_host_port(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return std::nullopt;
  }
  auto port = number(text.substr(colon + 1));
  if (!port || *port < 0 || *port > 65535) {
    return std::nullopt;
  }
  return std::pair{text.substr(0, colon), static_cast<std::uint16_t>(*port)};
}

std::optional<std::string> parse(int argc, char** argv, options& o,
                                 bool& help) {
  seconds_d timer_slack{o.timer_slack};
  std::map<std::string, setter> valued{
    {"--target", text(o.target)},
    {"--public-url", text(o.public_url)},
    {"--account-sid", text(o.account_sid)},
    {"--auth-token", text(o.auth_token)},
    {"--tenants", integer(o.tenants)},
    {"--number", text(o.number)},
    {"--owner", text(o.owner)},
    {"--rest-listen", text(o.rest_listen)},
    {"--rate", positive(o.rate)},
    {"--target-concurrency", integer(o.target_concurrency)},
    {"--duration", duration(o.duration)},
    {"--max-calls", integer(o.max_calls)},
    {"--steps", list(o.steps)},
    {"--step-duration", duration(o.step_duration)},
    {"--knee-p99-ms", positive(o.knee_p99_ms)},
    {"--ring", range(o.ring)},
    {"--answer-p", share(o.answer_p)},
    {"--talk", range(o.talk)},
    {"--busy-share", share(o.busy_share)},
    {"--drop-dial", share(o.drop_dial)},
    {"--drop-status", share(o.drop_status)},
    {"--dup-dial", share(o.dup_dial)},
    {"--dup-status", share(o.dup_status)},
    {"--reply-share", share(o.reply_share)},
    {"--owner-reply-share", share(o.owner_reply_share)},
    {"--reply-delay", range(o.reply_delay)},
    {"--sms-fail-share", share(o.sms_fail_share)},
    {"--rest-delay", duration(o.rest_delay)},
    {"--hangup-after", duration(o.hangup_after)},
    {"--hangup-rate", positive(o.hangup_rate)},
    {"--max-rss-mib", positive(o.max_rss_mib)},
    {"--reply-after", duration(o.reply_after)},
    {"--reply-rate", positive(o.reply_rate)},
    {"--connections", integer(o.connections)},
    {"--timeout", duration(o.timeout)},
    {"--timer-slack", duration(timer_slack)},
    {"--drain", duration(o.drain)},
    {"--quiet", duration(o.quiet)},
    {"--max-run", duration(o.max_run)},
    {"--pid", integer(o.pid)},
    {"--ringback-bin", text(o.ringback_bin)},
    {"--ringback-config", text(o.ringback_config)},
    {"--ringback-log", text(o.ringback_log)},
    {"--kill-at", list(o.kill_at)},
    {"--restart-delay", duration(o.restart_delay)},
    {"--json", text(o.json_path)},
    {"--label", text(o.label)},
    {"--seed", integer(o.seed)},
  };
  std::map<std::string, std::function<void()>> flags{
    {"--poisson", [&] { o.poisson = true; }},
    {"--no-verify", [&] { o.verify = false; }},
    {"--demo", [&] { o.demo = true; }},
    {"--progress", [&] { o.progress = true; }},
    {"--expect-ai", [&] { o.expect_ai = true; }},
    {"--poll-metrics", [&] { o.poll_metrics = true; }},
  };
  if (auto err = run_parser(argc, argv, valued, flags, help)) {
    return err;
  }
  if (help) {
    return std::nullopt;
  }
  if (!split_host_port(o.target)) {
    return "--target must be HOST:PORT, got '" + o.target + "'";
  }
  if (!split_host_port(o.rest_listen)) {
    return "--rest-listen must be HOST:PORT, got '" + o.rest_listen + "'";
  }
  if (o.public_url.empty()) {
    o.public_url = "http://" + o.target;
  }
  while (!o.public_url.empty() && o.public_url.back() == '/') {
    o.public_url.pop_back();
  }
  if (o.number.empty() != o.owner.empty()) {
    return "--number and --owner go together";
  }
  if (o.tenants < 1 || o.tenants > 8999) {
    return "--tenants must be 1..8999";
  }
  if (o.connections < 1) {
    return "--connections must be at least 1";
  }
  if (o.timeout.count() <= 0) {
    return "--timeout must be positive";
  }
  if (timer_slack > std::chrono::milliseconds{10}) {
    return "--timer-slack must be at most 10ms";
  }
  o.timer_slack
    = std::chrono::duration_cast<std::chrono::microseconds>(timer_slack);
  if (!o.ringback_bin.empty() && o.ringback_config.empty()) {
    return "--ringback-bin needs --ringback-config";
  }
  if (!o.kill_at.empty() && o.ringback_bin.empty()) {
    return "--kill-at needs --ringback-bin (the simulator restarts what it "
           "started)";
  }
  if (o.pid != 0 && !o.ringback_bin.empty()) {
    return "--pid and --ringback-bin exclude each other";
  }
  return std::nullopt;
}

std::optional<std::string> parse(int argc, char** argv, bare_options& o,
                                 bool& help) {
  std::map<std::string, setter> valued{
    {"--listen", text(o.listen)},
    {"--threads", integer(o.threads)},
    {"--owner", text(o.owner)},
    {"--public-url", text(o.public_url)},
  };
  if (auto err = run_parser(argc, argv, valued, {}, help)) {
    return err;
  }
  if (!split_host_port(o.listen)) {
    return "--listen must be HOST:PORT";
  }
  if (o.threads < 1) {
    return "--threads must be at least 1";
  }
  return std::nullopt;
}

const char* usage() {
  return R"(ringback_sim: a carrier (Twilio) simulator and load generator for ringback.

usage: ringback_sim [OPTIONS]                 drive ringback, verify, report
       ringback_sim bare-server [--listen H:P] [--threads N]
                                              a bare Beast server answering a fixed
                                              TwiML <Dial>, the yardstick for ratios

Where ringback is:
  --target H:P            ringback's listen address            [127.0.0.1:8080]
  --public-url URL        its public_url (signatures)          [http://TARGET]
  --account-sid SID       twilio.account_sid of its config     [AC000...0]
  --auth-token TOKEN      twilio.auth_token of its config      [dev-token]
  --tenants N             tenants t0..tN-1: number +1303555(1000+i),
                          owner +1303556(1000+i)               [1]
  --number E164 --owner E164   one given tenant instead (e.g. deploy/ringback.yaml)
  --rest-listen H:P       where the simulated Twilio REST API listens
                          (ringback's twilio.api_url)          [127.0.0.1:8089]
Process under test (sampled each second: VmRSS, utime+stime):
  --pid PID               an already running ringback
  --ringback-bin PATH --ringback-config FILE [--ringback-log FILE]
                          start `PATH serve --config FILE`, wait for /readyz,
                          stop it (SIGTERM) at the end
  --kill-at S,S...        kill -9 it at these seconds after the load started and
                          restart it with the same config  (--restart-delay 1s)
Load (open model: scheduled send times; latency from the scheduled time):
  --rate R                calls per second                     [5]
  --target-concurrency N  derive the rate from N / mean call lifetime
  --duration D            arrivals for D                       [10s]
  --max-calls N           at most N calls
  --poisson               exponential inter-arrival gaps
  --timer-slack D         send events due within D together, early (each
                          counted from when it went)              [1ms]
  --steps R1,R2,...       knee search: one rate per step, stop at the first step
                          whose p99 > --knee-p99-ms [50] or with errors
  --step-duration D       [10s]
  --max-rss-mib M         stop arrivals once ringback's RSS exceeds M MiB
  --hangup-after D        D after arrivals stop, every call still ringing ends
                          unanswered (many-idle), --hangup-rate R per second
                          [the arrival rate]
  --reply-after D         callers reply together (many-conversations): once
                          every missed call is texted back and D after arrivals
                          stop, every replying caller (--reply-share) texts,
                          --reply-rate R per second [the arrival rate]
Calls (times in seconds, MIN:MAX uniform, units ms/s/m allowed):
  --ring MIN:MAX [15:25]  --answer-p P [0.5]  --talk MIN:MAX [20:100]
  --busy-share S [0.1]    share of missed calls that are busy
  --drop-dial S [0.05]    Dial action callbacks lost   --dup-dial S [0.05]   sent twice
  --drop-status S [0.5]   status callbacks lost        --dup-status S [0.05] sent twice
  --reply-share S [0.2]   callers replying by SMS      --owner-reply-share S [0.1]
  --reply-delay MIN:MAX [1:5]   --sms-fail-share S [0]  Messages POSTs answered 503
  --rest-delay D [0]      Messages POSTs answered after D (Twilio takes 100-300 ms);
                          the message counts as received on arrival
Client:
  --connections N         keep-alive pool size to ringback     [128]
  --timeout D             per request, from its scheduled time [5s]
End and output:
  --drain D               wait up to D for outstanding texts   [60s]
  --quiet D               then this long for late duplicates   [3s]
  --max-run D             hard cap on the whole run            [derived]
  --no-verify             skip the correctness check
                          (checked: each missed call texted once to the caller
                          and to the owner, no answered call texted, each
                          caller's reply relayed to the owner once)
  --expect-ai             also wait for and check one AI answer per reply
                          (the owner never answers: the AI takes the window)
  --poll-metrics          GET ringback's /metrics each second (a side thread):
                          conversation actors alive (ringback_conversation_actors)
  --demo                  print each call's fate as it happens
  --progress              one status line per second on stderr
  --json FILE             also write the JSON result there
  --label NAME            scenario name in the report
  --seed N                random seed                          [1]
Exit: 0 ok, 1 correctness violations, 2 usage or setup error.
)";
}

} // namespace ringback::sim
