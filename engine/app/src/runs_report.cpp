#include "ringback/app/runs_report.hpp"

#include "ringback/adapters/store/make_store.hpp"
#include "ringback/app/config.hpp"

#include <ctime>
#include <iostream>

namespace ringback::app {

namespace {

std::string utc(engine::epoch_ms t) {
  if (t <= 0)
    return "-";
  std::time_t s = t / 1000;
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

void print(engine::store& db, const engine::run_record& r, std::ostream& out) {
  out << "run " << r.id << ": " << r.workflow << " (version " << r.version
      << "), trigger " << r.trigger << ", " << engine::to_string(r.status);
  if (r.status == engine::run_status::waiting)
    out << " for " << r.waiting_for
        << (r.wake_at > 0 ? " until " + utc(r.wake_at) : std::string{});
  out << "\n  started " << utc(r.started_at) << ", updated "
      << utc(r.updated_at) << " on " << r.node_id;
  if (!r.call_sid.empty())
    out << ", call " << r.call_sid;
  if (!r.contact.empty())
    out << ", contact " << r.contact;
  out << "\n";
  if (!r.error.empty())
    out << "  error: " << r.error << "\n";
  for (const auto& s : db.run_steps(r.id)) {
    out << "  " << utc(s.at) << "  " << s.step_id << " " << s.type << " "
        << s.outcome;
    if (s.duration_us > 0)
      out << " (" << s.duration_us << " us)";
    if (!s.detail.empty())
      out << ": " << s.detail;
    out << "\n";
  }
}

} // namespace

void print_call_runs(engine::store& db, const std::string& call_sid,
                     std::ostream& out) {
  auto runs = db.runs_for_call(call_sid);
  if (runs.empty())
    out << "no runs for call " << call_sid << "\n";
  for (const auto& r : runs)
    print(db, r, out);
  auto messages = db.messages_for_call(call_sid);
  if (!messages.empty())
    out << "messages of call " << call_sid << ":\n";
  for (const auto& m : messages) {
    out << "  #" << m.id << " " << m.purpose << " to " << m.to << " from "
        << m.from << ": " << engine::to_string(m.state);
    if (!m.message_sid.empty())
      out << " " << m.message_sid;
    if (m.error_code != 0)
      out << " (error " << m.error_code << ": " << m.error_message << ")";
    out << "\n    \"" << m.body << "\"\n";
  }
}

bool print_run(engine::store& db, std::int64_t run_id, std::ostream& out) {
  auto r = db.find_run(run_id);
  if (!r)
    return false;
  print(db, *r, out);
  return true;
}

int runs_main(const std::vector<std::string>& args) {
  std::string config_path;
  std::string call;
  std::string run;
  for (std::size_t i = 0; i + 1 < args.size(); i += 2) {
    if (args[i] == "--config")
      config_path = args[i + 1];
    else if (args[i] == "--call")
      call = args[i + 1];
    else if (args[i] == "--run")
      run = args[i + 1];
    else {
      std::cerr << "ringback runs: unknown option '" << args[i] << "'\n";
      return 2;
    }
  }
  if (args.size() % 2 != 0 || config_path.empty()
      || call.empty() == run.empty()) {
    std::cerr << "usage: ringback runs --config FILE (--call SID | --run ID)\n";
    return 2;
  }
  auto loaded = load_config(config_path);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors)
      std::cerr << e << "\n";
    return 1;
  }
  try {
    auto db = adapters::make_store(loaded.value->store, std::string{});
    if (!call.empty()) {
      print_call_runs(*db, call, std::cout);
      return 0;
    }
    std::int64_t id = 0;
    try {
      id = std::stoll(run);
    } catch (const std::exception&) {
      std::cerr << "ringback runs: --run needs a number, got '" << run << "'\n";
      return 2;
    }
    if (!print_run(*db, id, std::cout)) {
      std::cerr << "ringback runs: no run " << id << "\n";
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "ringback runs: " << e.what() << "\n";
    return 1;
  }
}

} // namespace ringback::app
