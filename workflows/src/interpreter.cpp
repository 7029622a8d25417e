#include "ringback/workflows/interpreter.hpp"

#include "ringback/workflows/diagnostic.hpp"
#include "ringback/workflows/language.hpp"
#include "ringback/workflows/program.hpp"

#include <boost/json.hpp>

#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <exception>

namespace ringback::workflows {

namespace {

constexpr std::array<const char*, 5> step_outcome_names{"ok", "skipped",
                                                        "failed", "waiting",
                                                        "resumed"};

namespace json = boost::json;

/// Writes JSON text straight into a string: the run state's document is
/// flat (scalars in one object), so no tree is built to serialize it. Strings
/// are escaped as Boost.JSON's serializer escapes them (quote, backslash and
/// control characters; other bytes as they are).
class json_writer {
public:
  explicit json_writer(std::string& out) : out_(out) {
  }

  void string(std::string_view x) {
    static constexpr char hex[] = "0123456789abcdef";
    out_.push_back('"');
    std::size_t plain = 0; // start of the run of bytes copied as they are
    for (std::size_t i = 0; i < x.size(); ++i) {
      auto c = static_cast<unsigned char>(x[i]);
      if (c >= 0x20 && c != '"' && c != '\\')
        continue;
      out_.append(x.data() + plain, i - plain);
      plain = i + 1;
      out_.push_back('\\');
      // The characters with a short escape, and their escapes' letters.
      constexpr std::string_view shorts{"\"\\\b\f\n\r\t"};
      constexpr std::string_view letters{"\"\\bfnrt"};
      if (auto k = shorts.find(static_cast<char>(c));
          k != std::string_view::npos) {
        out_.push_back(letters[k]);
      } else {
        out_.append("u00");
        out_.push_back(hex[c >> 4]);
        out_.push_back(hex[c & 0xf]);
      }
    }
    out_.append(x.data() + plain, x.size() - plain);
    out_.push_back('"');
  }

  void integer(std::int64_t x) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, x);
    out_.append(buf, r.ptr);
  }

  /// The shortest text that reads back as the same double; what JSON has
  /// no number for (infinities, NaN) as Boost.JSON writes it.
  void number(double x) {
    if (!std::isfinite(x)) {
      out_ += json::serialize(json::value(x));
      return;
    }
    if (x == 0 && std::signbit(x)) {
      out_.append("-0.0"); // "-0" would read back as the integer 0
      return;
    }
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, x);
    out_.append(buf, r.ptr);
  }

  void scalar(const value& v) {
    switch (v.type()) {
      case value::kind::null:
        out_.append("null");
        return;
      case value::kind::boolean:
        out_.append(v.as_bool() ? "true" : "false");
        return;
      case value::kind::number:
        number(v.as_number());
        return;
      case value::kind::string:
        string(v.as_string());
        return;
    }
    out_.append("null");
  }

  /// `"name":`, after a comma unless it is the object's first member.
  void key(std::string_view name, bool first = false) {
    if (!first)
      out_.push_back(',');
    string(name);
    out_.push_back(':');
  }

private:
  std::string& out_;
};

std::optional<value> from_json_value(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return value{};
    case json::kind::bool_:
      return value{v.get_bool()};
    case json::kind::double_:
      return value{v.get_double()};
    case json::kind::int64:
      return value{static_cast<double>(v.get_int64())};
    case json::kind::uint64:
      return value{static_cast<double>(v.get_uint64())};
    case json::kind::string:
      return value{std::string(v.get_string())};
    default:
      return std::nullopt;
  }
}

std::int64_t micros_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::microseconds>(
           std::chrono::steady_clock::now() - t0)
    .count();
}

/// The counter slot of the innermost loop whose body holds the loop ending
/// at `pc` (a `loop_next`); loop bodies are contiguous `[target, next)`.
std::optional<std::size_t> enclosing_loop(const std::vector<op>& ops,
                                          std::size_t pc) {
  std::optional<std::size_t> slot;
  std::size_t best_start = 0;
  const auto start = ops[pc].target;
  for (std::size_t j = pc + 1; j < ops.size(); ++j) {
    const auto& o = ops[j];
    if (o.what == op::kind::loop_next && o.target <= start
        && (!slot || o.target > best_start)) {
      slot = o.slot;
      best_start = o.target;
    }
  }
  return slot;
}

/// Runs the program from `st.pc` until it ends or waits.
void run_from(const workflow& wf, run_state st, engine::epoch_ms now,
              const run_limits& lim, segment_result& out) {
  const auto& ops = wf.code->ops;
  auto fail = [&](std::string why) {
    out.status = engine::run_status::failed;
    out.error = std::move(why);
    out.state = std::move(st);
  };
  for (;;) {
    if (st.pc >= ops.size()) {
      fail("the run's position " + std::to_string(st.pc)
           + " is outside the workflow (a different version?)");
      return;
    }
    if (st.executed >= lim.max_steps) {
      fail("the run executed " + std::to_string(st.executed)
           + " steps, the limit: a loop that never ends?");
      return;
    }
    const op& o = ops[st.pc];
    switch (o.what) {
      case op::kind::exec: {
        ++st.executed;
        const step& s = *o.s;
        step_trace t;
        t.step_id = s.display_id();
        t.type = s.type;
        step_result r;
        auto t0 = std::chrono::steady_clock::now();
        try {
          step_frame f{wf, st.vars, out.fx, now, lim};
          if (!s.spec || !s.spec->execute)
            r = {step_outcome::failed,
                 "no executor for step type '" + s.type + "'"};
          else
            r = s.spec->execute(s, f);
        } catch (const std::exception& e) {
          r = {step_outcome::failed,
               std::string("internal error: ") + e.what()};
        } catch (...) {
          r = {step_outcome::failed, "internal error"};
        }
        t.duration_us = micros_since(t0);
        t.outcome = r.suspend.empty() ? r.outcome : step_outcome::waiting;
        t.detail = std::move(r.detail);
        out.trace.push_back(std::move(t));
        if (!r.suspend.empty()) {
          st.waiting_for = std::move(r.suspend);
          st.waiting_op = st.pc;
          st.wake_at = r.wake_at;
          st.contact = std::move(r.contact);
          out.status = engine::run_status::waiting;
          out.state = std::move(st);
          return;
        }
        ++st.pc;
        break;
      }
      case op::kind::branch_if: {
        ++st.executed;
        const step& s = *o.s;
        step_trace t{s.display_id(), s.type, step_outcome::ok, {}, 0};
        auto t0 = std::chrono::steady_clock::now();
        bool truth = false;
        if (const auto* f = s.field("condition")) {
          auto r = f->expr.evaluate(st.vars, lim.eval);
          if (!r.ok()) {
            t.outcome = step_outcome::failed;
            t.detail = "condition failed (" + r.error + "): taking 'else'";
          } else {
            truth = r.result.truthy();
            t.detail = truth ? "true: then" : "false: else";
          }
          if (!r.missing.empty())
            t.detail += "; missing variables: " + join(r.missing);
        }
        t.duration_us = micros_since(t0);
        out.trace.push_back(std::move(t));
        st.pc = truth ? st.pc + 1 : o.target;
        break;
      }
      case op::kind::jump:
        st.pc = o.target;
        break;
      case op::kind::switch_on: {
        ++st.executed;
        const step& s = *o.s;
        step_trace t{s.display_id(), s.type, step_outcome::ok, {}, 0};
        auto t0 = std::chrono::steady_clock::now();
        std::string subject;
        if (const auto* f = s.field("on")) {
          auto r = f->expr.evaluate(st.vars, lim.eval);
          if (!r.ok()) {
            t.outcome = step_outcome::failed;
            t.detail = "subject failed (" + r.error + "): ";
          } else {
            subject = r.result.to_text();
          }
        }
        std::size_t next = o.default_target;
        std::string taken = "default";
        for (const auto& [label, target] : o.targets)
          if (label == subject) {
            next = target;
            taken = "case '" + label + "'";
            break;
          }
        t.detail += taken;
        t.duration_us = micros_since(t0);
        out.trace.push_back(std::move(t));
        st.pc = next;
        break;
      }
      case op::kind::loop_begin:
        if (o.slot < st.counters.size())
          st.counters[o.slot] = 0;
        st.vars["loop.index"] = value{0};
        ++st.pc;
        break;
      case op::kind::loop_next: {
        const step& s = *o.s;
        if (o.slot >= st.counters.size()) {
          fail("loop counter out of range (a different version?)");
          return;
        }
        auto& n = st.counters[o.slot];
        ++n;
        std::int64_t times = 1;
        if (const auto* f = s.field("times"))
          times = f->number;
        bool done = n >= times;
        if (!done) {
          if (const auto* f = s.field("until")) {
            auto r = f->expr.evaluate(st.vars, lim.eval);
            done = !r.ok() || r.result.truthy();
          }
        }
        if (done) {
          out.trace.push_back({s.display_id(), s.type, step_outcome::ok,
                               "done after " + std::to_string(n) + " pass(es)",
                               0});
          // Back in an enclosing loop's body: its pass number again.
          if (auto outer = enclosing_loop(ops, st.pc);
              outer && *outer < st.counters.size())
            st.vars["loop.index"] = value{st.counters[*outer]};
          ++st.pc;
        } else {
          st.vars["loop.index"] = value{static_cast<std::int64_t>(n)};
          st.pc = o.target;
        }
        break;
      }
      case op::kind::halt:
        if (o.s != nullptr) {
          std::string why;
          if (const auto* f = o.s->field("reason")) {
            std::vector<std::string> notes;
            step_frame fr{wf, st.vars, out.fx, now, lim};
            why = fr.render(*f, notes);
          }
          out.trace.push_back(
            {o.s->display_id(), o.s->type, step_outcome::ok, why, 0});
        }
        out.status = engine::run_status::finished;
        st.waiting_for.clear();
        out.state = std::move(st);
        return;
    }
  }
}

segment_result guarded(const workflow& wf,
                       const std::function<void(segment_result&)>& body) {
  segment_result out;
  if (!wf.code) {
    out.status = engine::run_status::failed;
    out.error = "workflow '" + wf.name + "' is not compiled";
    return out;
  }
  try {
    body(out);
  } catch (const std::exception& e) {
    out.status = engine::run_status::failed;
    out.error = std::string("internal error: ") + e.what();
  }
  return out;
}

} // namespace

const char* to_string(step_outcome x) {
  return step_outcome_names[static_cast<std::size_t>(x)];
}

std::optional<step_outcome> parse_step_outcome(std::string_view x) {
  for (std::size_t i = 0; i < step_outcome_names.size(); ++i)
    if (x == step_outcome_names[i])
      return static_cast<step_outcome>(i);
  return std::nullopt;
}

const char* to_string(resume_event::kind x) {
  switch (x) {
    case resume_event::kind::dial:
      return "dial";
    case resume_event::kind::recording:
      return "recording";
    case resume_event::kind::timer:
      return "timer";
    case resume_event::kind::reply:
      return "reply";
    case resume_event::kind::http:
      return "http";
    case resume_event::kind::ai:
      return "ai";
  }
  return "?";
}

std::string step_frame::render(const field_value& f,
                               std::vector<std::string>& notes,
                               std::size_t max_bytes) const {
  auto r = f.text.render(vars, max_bytes);
  if (!r.missing.empty())
    notes.push_back("missing variables rendered empty: " + join(r.missing));
  for (const auto& e : r.errors)
    notes.push_back(e);
  return std::move(r.text);
}

std::string run_state::to_json() const {
  // Once per stored segment: written straight into the text (see
  // json_writer), in the member order `from_json` has always read.
  std::string out;
  out.reserve(256 + 48 * vars.size());
  json_writer w{out};
  out.push_back('{');
  w.key("pc", true);
  w.integer(static_cast<std::int64_t>(pc));
  w.key("vars");
  out.push_back('{');
  bool first = true;
  for (const auto& [name, x] : vars) {
    w.key(name, first);
    first = false;
    w.scalar(x);
  }
  out.append("}");
  w.key("counters");
  out.push_back('[');
  for (std::size_t i = 0; i < counters.size(); ++i) {
    if (i > 0)
      out.push_back(',');
    w.integer(counters[i]);
  }
  out.push_back(']');
  w.key("executed");
  w.integer(executed);
  if (!waiting_for.empty()) {
    w.key("waiting_for");
    w.string(waiting_for);
    w.key("waiting_op");
    w.integer(static_cast<std::int64_t>(waiting_op));
    w.key("wake_at");
    w.integer(wake_at);
    w.key("contact");
    w.string(contact);
  }
  out.push_back('}');
  return out;
}

std::optional<run_state> run_state::from_json(std::string_view text,
                                              std::string* error) {
  auto fail = [&](std::string why) -> std::optional<run_state> {
    if (error != nullptr)
      *error = std::move(why);
    return std::nullopt;
  };
  // The parsed document lives while its values are copied out: one arena.
  unsigned char buffer[4096];
  json::monotonic_resource arena(buffer, sizeof buffer);
  boost::system::error_code ec;
  auto parsed = json::parse(text, ec, json::storage_ptr(&arena));
  if (ec)
    return fail("run state is not JSON: " + ec.message());
  if (!parsed.is_object())
    return fail("run state is not a JSON object");
  const auto& o = parsed.get_object();
  run_state st;
  try {
    st.pc = json::value_to<std::size_t>(o.at("pc"));
    for (const auto& [name, x] : o.at("vars").as_object()) {
      auto v = from_json_value(x);
      if (!v)
        return fail("run state variable '" + std::string(name)
                    + "' has an unsupported type");
      st.vars.emplace(std::string(name), std::move(*v));
    }
    for (const auto& n : o.at("counters").as_array())
      st.counters.push_back(json::value_to<std::int64_t>(n));
    st.executed = json::value_to<std::int64_t>(o.at("executed"));
    if (const auto* w = o.if_contains("waiting_for")) {
      st.waiting_for = std::string(w->as_string());
      st.waiting_op = json::value_to<std::size_t>(o.at("waiting_op"));
      st.wake_at = json::value_to<std::int64_t>(o.at("wake_at"));
      st.contact = std::string(o.at("contact").as_string());
    }
  } catch (const std::exception& e) {
    return fail(std::string("run state is incomplete: ") + e.what());
  }
  return st;
}

segment_result start(const workflow& wf, context vars, engine::epoch_ms now,
                     const run_limits& limits) {
  return guarded(wf, [&](segment_result& out) {
    run_state st;
    st.vars = std::move(vars);
    st.counters.assign(wf.code->loop_slots, 0);
    run_from(wf, std::move(st), now, limits, out);
  });
}

segment_result start_at(const workflow& wf, std::string_view entry,
                        context vars, engine::epoch_ms now,
                        const run_limits& limits) {
  return guarded(wf, [&](segment_result& out) {
    for (const auto& [name, pc] : wf.code->entries) {
      if (name == entry) {
        run_state st;
        st.pc = pc;
        st.vars = std::move(vars);
        st.counters.assign(wf.code->loop_slots, 0);
        run_from(wf, std::move(st), now, limits, out);
        return;
      }
    }
    out.status = engine::run_status::failed;
    out.error = "workflow '" + wf.name + "' has no entry '" + std::string(entry)
                + "'";
  });
}

segment_result resume(const workflow& wf, run_state state,
                      const resume_event& ev, const context& fresh,
                      engine::epoch_ms now, const run_limits& limits) {
  return guarded(wf, [&](segment_result& out) {
    const auto& ops = wf.code->ops;
    const std::string kind = to_string(ev.what);
    bool fits = state.waiting_for == kind
                || (state.waiting_for == "reply"
                    && ev.what == resume_event::kind::timer);
    if (!fits) {
      out.status = engine::run_status::failed;
      out.error = "the run waits for "
                  + (state.waiting_for.empty() ? std::string("nothing")
                                               : state.waiting_for)
                  + ", not for " + kind;
      out.state = std::move(state);
      return;
    }
    if (state.waiting_op >= ops.size()
        || ops[state.waiting_op].what != op::kind::exec
        || !ops[state.waiting_op].s->spec
        || !ops[state.waiting_op].s->spec->resume
        || state.counters.size() != wf.code->loop_slots) {
      out.status = engine::run_status::failed;
      out.error = "the run's state does not fit workflow '" + wf.name
                  + "' version " + wf.version;
      out.state = std::move(state);
      return;
    }
    for (const auto& [name, v] : fresh)
      state.vars[name] = v;
    const op& o = ops[state.waiting_op];
    const step& s = *o.s;
    std::string branch;
    step_trace t{s.display_id(), s.type, step_outcome::resumed, {}, 0};
    auto t0 = std::chrono::steady_clock::now();
    try {
      step_frame f{wf, state.vars, out.fx, now, limits};
      if (s.spec && s.spec->resume)
        branch = s.spec->resume(s, ev, f, t.detail);
    } catch (const std::exception& e) {
      t.outcome = step_outcome::failed;
      t.detail = std::string("internal error: ") + e.what();
    }
    t.duration_us = micros_since(t0);
    out.trace.push_back(std::move(t));
    state.waiting_for.clear();
    state.wake_at = 0;
    state.contact.clear();
    std::size_t next = state.waiting_op + 1;
    if (!branch.empty())
      for (const auto& [name, target] : o.targets)
        if (name == branch)
          next = target;
    state.pc = next;
    run_from(wf, std::move(state), now, limits, out);
  });
}

} // namespace ringback::workflows
