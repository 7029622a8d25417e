#pragma once

#include "ringback/adapters/twilio/form.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "client_pool.hpp"
#include "histogram.hpp"
#include "mini_server.hpp"
#include "options.hpp"
#include "process.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace ringback::sim {

/// The webhook kinds the carrier sends.
enum class hook : std::uint8_t { voice, dial, status, sms };
inline constexpr int hook_count = 4;
const char* to_string(hook x);

/// A tenant as the simulator sees it.
struct sim_tenant {
  std::string id;
  std::string number; // the business number (webhook To)
  std::string owner;  // the phone that rings
};

/// The tenants of `o`: the scheme t0..tN-1 or the one given.
std::vector<sim_tenant> make_tenants(const options& o);

/// One load run: owns the io_context (one thread), the client pool to
/// ringback, the REST server, the call table, the measurements; `run()`
/// returns the exit code.
class simulator {
public:
  explicit simulator(options o);
  ~simulator();

  int run();

private:
  enum class phase : std::uint8_t {
    voice_pending, // voice webhook sent, no answer yet
    dialing,       // the owner's phone rings (or they talk)
    hung_up,       // the parent call ended
    voice_failed,  // no usable TwiML: the call ended (indeterminate)
  };
  enum class ev : std::uint8_t {
    arrival,
    pickup,
    dial_end,
    dial_dup,
    call_end,
    status_dup,
    caller_reply,
    owner_reply,
  };
  struct event {
    sim_clock::time_point at;
    std::uint64_t seq;
    std::uint32_t call;
    ev what;
    std::uint16_t gen;
  };
  struct later {
    bool operator()(const event& a, const event& b) const {
      return a.at != b.at ? a.at > b.at : a.seq > b.seq;
    }
  };
  struct call_state {
    std::string sid;
    std::string child_sid;
    std::string caller;
    std::uint16_t tenant = 0;
    std::uint16_t gen = 0;
    std::uint16_t action = 0; // index into actions_
    std::int16_t step = -1;   // knee step of the arrival, -1: none
    phase ph = phase::voice_pending;
    // the plan
    bool answers = false;
    bool busy = false;
    bool drop_dial = false, dup_dial = false;
    bool drop_status = false, dup_status = false;
    bool reply = false, owner_reply = false;
    float ring_s = 0, talk_s = 0, reply_delay_s = 0, owner_reply_delay_s = 0;
    // the timeline
    sim_clock::time_point start, dial_start, pickup, dial_end, parent_end;
    sim_clock::time_point dial_sched, status_sched, replied_at;
    // what was observed
    bool ringing = false;
    bool dial_failed = false, status_failed = false; // first send got no 2xx
    bool fetched = false;
    std::uint8_t texts_caller = 0, texts_owner = 0, conv_texts = 0;
    std::uint8_t path = 0; // of the first text: 1 dial cb, 2 status cb, 3 timer
    /// The caller's reply: 0 none, 1 scheduled, 2 sent, 3 answered 2xx,
    /// 4 failed (no 2xx: not expected to reach the owner).
    std::uint8_t reply_state = 0;
    std::uint8_t relays = 0;    // the reply relayed to the owner ("[#12 ...")
    bool voice_refused = false; // the voice webhook got no HTTP answer
    std::size_t text_hash = 0;
  };
  struct sent_message {
    std::string sid, to, from, body, created; // created: RFC 2822
  };
  struct action_url {
    std::string target; // sent to ringback
    std::string url;    // signed
  };
  struct step_stats {
    double rate = 0;
    sim_clock::time_point begin, end;
    histogram latency;
    histogram textback; // fast path, dial callbacks scheduled in the step
    double seconds = 0; // how long arrivals ran at this rate
    std::uint64_t scheduled = 0, completed = 0, errors = 0;
    std::uint64_t outstanding = 0;
    bool evaluated = false, held = false;
    double cpu_pct = 0;
    double others_pct = 0;
    std::uint64_t p99_us = 0;
    std::string verdict;
  };
  struct sample {
    double t = 0;
    std::uint64_t rss_kib = 0;
    double cpu_pct = 0;
    double sim_cpu_pct = 0;
    double machine_pct = 0; // all processes, in % of one core
    std::uint64_t in_flight = 0;
    std::uint64_t ringing = 0;
    std::int64_t conv_actors = -1; // ringback_conversation_actors, -1 unknown
    bool ok = false;
  };

  // setup and phases
  std::optional<std::string> setup();
  void begin_load();
  void stop_arrivals(const std::string& why);
  void tick();             // every 200 ms: end conditions, knee steps
  void sample_processes(); // every second
  void finish();           // verify, report, stop
  double elapsed(sim_clock::time_point t) const;
  double now_s() const;

  // scheduling
  void schedule(sim_clock::time_point at, ev what, std::uint32_t call,
                std::uint16_t gen = 0);
  void arm();
  void on_timer();
  void dispatch(event e, sim_clock::time_point now);

  // calls
  /// `scheduled`: the arrival's place in the schedule; `at`: when it goes
  /// (at most `timer_slack` earlier).
  void arrive(sim_clock::time_point scheduled, sim_clock::time_point at);
  void send_voice(std::uint32_t idx);
  void on_voice(std::uint32_t idx, http_result&& r);
  void send_dial(std::uint32_t idx, sim_clock::time_point at, bool dup);
  void end_call(std::uint32_t idx, sim_clock::time_point at);
  void send_status(std::uint32_t idx, sim_clock::time_point at, bool dup);
  void send_reply(std::uint32_t idx, sim_clock::time_point at, bool owner);
  void hang_up_all();
  /// --reply-after: every caller who replies does so now, paced.
  void start_replies();
  void poll_metrics_loop();
  bool hangup_at_passed() const;
  /// Signs and sends one webhook; `then` runs with the answer.
  void
  post(hook kind, int step, const std::string& target, const std::string& url,
       const ringback::adapters::twilio::form_fields& fields,
       sim_clock::time_point scheduled, std::function<void(http_result&)> then);
  void record(hook kind, int step, const http_result& r,
              sim_clock::time_point scheduled);
  /// The knee step whose window holds `t`; -1 outside every window.
  int step_at(sim_clock::time_point t) const;

  // the REST API
  void serve_rest(const server_request& req, server_response& res,
                  std::chrono::milliseconds& delay);
  void on_message(const std::string& to, const std::string& from,
                  const std::string& body);
  std::string message_json(const sent_message& m) const;
  void list_messages(std::string_view path, std::string_view query,
                     server_response& res);
  std::string call_json(const call_state& c, bool child,
                        sim_clock::time_point now) const;

  // the end
  bool texts_complete() const;
  int verify_and_report();

  // helpers
  std::string new_sid(const char* prefix);
  double uniform(double lo, double hi);
  bool chance(double p);
  void demo(std::uint32_t idx, const std::string& what);

  options opt_;
  std::vector<sim_tenant> tenants_;
  std::unordered_map<std::string, std::uint16_t> owner_index_;
  std::string rest_auth_;
  boost::asio::io_context io_;
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer ticker_;
  boost::asio::steady_timer sampler_;
  boost::asio::signal_set signals_;
  std::unique_ptr<client_pool> pool_;
  std::unique_ptr<mini_server> rest_;
  std::unique_ptr<supervisor> supervisor_;
  std::mt19937_64 rng_;

  std::priority_queue<event, std::vector<event>, later> heap_;
  std::uint64_t seq_ = 0;
  sim_clock::time_point armed_ = sim_clock::time_point::max();

  std::vector<call_state> calls_;
  std::unordered_map<std::string, std::uint32_t> by_sid_;
  std::unordered_map<std::string, std::uint32_t> by_caller_;
  std::vector<action_url> actions_;
  std::vector<sent_message> sent_messages_;
  std::unordered_map<std::string, std::vector<std::uint32_t>> messages_by_to_;
  std::unordered_map<std::string, std::uint32_t> message_by_sid_;
  std::uint32_t caller_base_ = 0;

  // run state
  sim_clock::time_point t0_; // load start
  sim_clock::time_point arrivals_end_;
  sim_clock::time_point hard_end_;
  sim_clock::time_point drain_start_, quiet_start_;
  bool arrivals_open_ = false;
  std::string arrivals_stop_reason_;
  enum class stage : std::uint8_t { load, drain, quiet, done } stage_ = stage::load;
  bool aborted_ = false;
  bool hangup_done_ = false;
  std::string abort_reason_;
  double rate_ = 0;
  std::uint64_t in_flight_ = 0, ringing_ = 0;
  std::uint64_t peak_in_flight_ = 0, peak_ringing_ = 0;
  std::uint64_t outstanding_ = 0;

  // measurements
  std::array<histogram, hook_count> latency_;
  std::array<histogram, hook_count> send_lag_;
  std::array<std::uint64_t, hook_count> sent_{}, ok_{};
  std::map<std::string, std::uint64_t> errors_;
  std::map<std::string, std::uint64_t> twiml_problems_;
  histogram second_; // last second, all kinds (progress line)
  std::uint64_t second_count_ = 0, second_errors_ = 0;
  histogram text_fast_, text_status_, text_timer_, text_any_start_;
  histogram owner_fast_;
  std::uint64_t messages_ = 0, messages_injected_fail_ = 0;
  std::uint64_t message_lookups_ = 0;
  std::uint64_t call_fetches_ = 0, child_lists_ = 0, rest_unauthorized_ = 0,
                rest_not_found_ = 0, rest_other_ = 0;
  std::uint64_t unknown_recipient_ = 0, unattributed_owner_ = 0,
                wrong_from_ = 0;
  /// Texts to owners from the conversation layer: customers' replies relayed
  /// ("[#12 +1 ...] ..."), summaries, and answers to the owner's own texts.
  std::uint64_t owner_relays_ = 0;
  std::vector<step_stats> steps_;
  /// A knee step failed: the steps after it are not judged.
  bool knee_failed_ = false;
  std::vector<sample> samples_;
  std::uint64_t baseline_rss_kib_ = 0;
  std::uint64_t prev_ticks_ = 0, prev_self_ticks_ = 0;
  machine_reading prev_machine_;
  pid_t prev_pid_ = 0;
  sim_clock::time_point prev_sample_at_;
  std::vector<std::pair<double, double>> restarts_; // (t, downtime ms)
  std::uint64_t failed_restarts_ = 0;
  std::size_t next_kill_ = 0;

  // conversations (replies, relays, the AI's answers)
  bool replies_started_ = false;
  sim_clock::time_point replies_at_, first_ai_at_;
  std::uint64_t reply_baseline_rss_kib_ = 0;
  std::uint64_t replies_scheduled_ = 0;
  std::uint64_t relays_attributed_ = 0, summaries_ = 0;
  histogram relay_after_reply_, ai_after_reply_;
  std::thread metrics_thread_;
  std::atomic<bool> metrics_stop_{false};
  std::atomic<std::int64_t> conv_actors_{-1};
};

} // namespace ringback::sim
