#include "ringback/workflows/language.hpp"
#include "ringback/workflows/program.hpp"

#include <deque>
#include <optional>
#include <sstream>

namespace ringback::workflows {

namespace {

bool is_voice(const step& s) {
  return s.spec && s.spec->family == step_family::voice;
}

/// Emits instructions for the step lists of a workflow.
class emitter {
public:
  explicit emitter(program& p) : p_(p) {
    // nop
  }

  std::size_t here() const {
    return p_.ops.size();
  }

  std::size_t emit(op::kind k, const step* s = nullptr) {
    op o;
    o.what = k;
    o.s = s;
    p_.ops.push_back(std::move(o));
    return p_.ops.size() - 1;
  }

  void list(const std::vector<step>& steps) {
    for (const auto& s : steps)
      one(s);
  }

  void one(const step& s) {
    if (s.type == "if") {
      auto test = emit(op::kind::branch_if, &s);
      if (const auto* then = s.find_branch("then"))
        list(then->steps);
      if (const auto* otherwise = s.find_branch("else")) {
        auto skip = emit(op::kind::jump);
        p_.ops[test].target = here();
        list(otherwise->steps);
        p_.ops[skip].target = here();
      } else {
        p_.ops[test].target = here();
      }
    } else if (s.type == "switch") {
      auto sw = emit(op::kind::switch_on, &s);
      std::vector<std::size_t> ends;
      for (const auto& b : s.branches) {
        if (b.name != "cases")
          continue;
        p_.ops[sw].targets.emplace_back(b.label, here());
        list(b.steps);
        ends.push_back(emit(op::kind::jump));
      }
      p_.ops[sw].default_target = here();
      if (const auto* d = s.find_branch("default"))
        list(d->steps);
      for (auto e : ends)
        p_.ops[e].target = here();
    } else if (s.type == "repeat") {
      auto slot = p_.loop_slots++;
      auto begin = emit(op::kind::loop_begin, &s);
      p_.ops[begin].slot = slot;
      auto body = here();
      if (const auto* b = s.find_branch("steps"))
        list(b->steps);
      auto next = emit(op::kind::loop_next, &s);
      p_.ops[next].slot = slot;
      p_.ops[next].target = body;
    } else if (s.type == "stop") {
      emit(op::kind::halt, &s);
    } else {
      auto x = emit(op::kind::exec, &s);
      // Outcome branches (wait_for_reply): the resumer names the branch.
      std::vector<std::size_t> ends;
      bool any = false;
      for (const auto& b : s.branches) {
        if (b.name == "on_transcription") {
          deferred_.emplace_back(transcription_entry(s), &b);
          continue;
        }
        if (!any) {
          ends.push_back(emit(op::kind::jump)); // no branch taken: skip all
          any = true;
        }
        p_.ops[x].targets.emplace_back(b.name, here());
        list(b.steps);
        ends.push_back(emit(op::kind::jump));
      }
      for (auto e : ends)
        p_.ops[e].target = here();
    }
  }

  /// Branches that run later as their own entry points.
  void entries() {
    while (!deferred_.empty()) {
      auto [name, b] = deferred_.front();
      deferred_.pop_front();
      p_.entries.emplace_back(name, here());
      list(b->steps);
      emit(op::kind::halt);
    }
  }

private:
  program& p_;
  std::deque<std::pair<std::string, const branch*>> deferred_;
};

/// Control-flow checks on the step tree.
class checker {
public:
  checker(const trigger_spec* trigger, std::vector<compile_problem>& out)
    : trigger_(trigger), out_(out) {
    // nop
  }

  void report(const step& s, std::string message) {
    out_.push_back({s.line, s.column, s.path, std::move(message)});
  }

  /// True if every path through `steps` stops the run; reports the first
  /// step after such a point in each list (and inside branches) once.
  bool always_stops(const std::vector<step>& steps) {
    const step* stopper = nullptr;
    for (const auto& s : steps) {
      if (stopper != nullptr) {
        report(s, "unreachable step: the run always stops at the '"
                    + stopper->type + "' at line "
                    + std::to_string(stopper->line) + " before it");
        return true;
      }
      if (stops(s))
        stopper = &s;
    }
    return stopper != nullptr;
  }

  /// True if every path through `s` ends the run.
  bool stops(const step& s) {
    bool all = true;  // every branch (but on_transcription) stops
    bool any = false; // there is such a branch
    for (const auto& b : s.branches) {
      bool x = always_stops(b.steps); // reports unreachable steps inside
      if (b.name == "on_transcription")
        continue;
      all = all && x;
      any = true;
    }
    if (s.type == "stop")
      return true;
    if (s.type == "if")
      return s.find_branch("else") != nullptr && all;
    if (s.type == "switch")
      return s.find_branch("default") != nullptr && all;
    if (s.type == "wait_for_reply" || s.type == "repeat") // a pass always runs
      return any && all;
    return false;
  }

  /// Voice state along a path.
  struct voice_state {
    bool answered = false; ///< a voice verb was produced
    bool ended = false;    ///< hangup / reject: the call is over
    bool stopped = false;  ///< a `stop`: nothing after it runs
    /// A wait after the answer: the answer went out when the run began to
    /// wait, so no voice verb can follow.
    const step* waited = nullptr;
    /// The step that let a path go on unanswered (an `if` without `else`,
    /// a `switch` without `default`), reported only if the path then ends
    /// without an answer.
    const step* leak = nullptr;
    std::string leak_message;
  };

  /// The state after either of two paths (a stopped path adds nothing):
  /// answered / ended / waited only if both are.
  static voice_state join(const voice_state& a, const voice_state& b) {
    if (a.stopped)
      return b;
    if (b.stopped)
      return a;
    voice_state out;
    out.answered = a.answered && b.answered;
    out.ended = a.ended && b.ended;
    out.waited = a.waited != nullptr && b.waited != nullptr ? a.waited
                                                            : nullptr;
    const auto& from = a.leak != nullptr ? a : b;
    out.leak = from.leak;
    out.leak_message = from.leak_message;
    return out;
  }

  bool answer_required(const voice_state& st, bool live) const {
    return live && trigger_voice() && !st.answered;
  }

  void report_no_answer(const step& s, std::string message) {
    no_answer_reported_ = true;
    report(s, std::move(message));
  }

  /// Checks voice steps along every path of `steps`, starting in `in`;
  /// returns the state every path is guaranteed to end in.
  voice_state voice(const std::vector<step>& steps, voice_state in, bool live) {
    auto st = in;
    for (const auto& s : steps) {
      if (st.stopped)
        return st; // unreachable, reported by always_stops
      if (is_voice(s)) {
        if (!live) {
          report(s, "'" + s.type
                      + "' needs a live call: voice steps run "
                        "only in call.incoming workflows (and not in "
                        "on_transcription, which runs after the call)");
        } else if (st.ended) {
          report(s, "'" + s.type
                      + "' after the call was ended (by a "
                        "hangup or reject before it)");
        } else if (st.waited != nullptr) {
          report(s, "'" + s.type + "' after the '" + st.waited->type
                      + "' at line " + std::to_string(st.waited->line)
                      + ": the call's answer went out when the run began to "
                        "wait, so voice steps must come before any wait");
        }
        st.answered = true;
        st.leak = nullptr;
        if (s.type == "hangup" || s.type == "reject")
          st.ended = true;
        for (const auto& b : s.branches)
          voice(b.steps, st, b.name != "on_transcription" && live);
        continue;
      }
      if (s.type == "stop") {
        if (answer_required(st, live))
          report_no_answer(s, "the run can stop here without answering the "
                              "call (add a voice step before it: dial, say, "
                              "play, record_voicemail, hangup or reject)");
        st.stopped = true;
        return st;
      }
      if (s.type == "wait" || s.type == "wait_for_reply") {
        if (answer_required(st, live))
          report_no_answer(s, "'" + s.type
                                + "' before the call is answered: "
                                  "the carrier needs the answer within seconds "
                                  "(answer first, e.g. with 'say' or 'dial')");
        else if (live && trigger_voice() && st.waited == nullptr && !st.ended)
          st.waited = &s;
      }
      if (s.type == "if") {
        const auto* t = s.find_branch("then");
        const auto* e = s.find_branch("else");
        auto a = t ? voice(t->steps, st, live) : st;
        auto b = e ? voice(e->steps, st, live) : st;
        const bool leaks = answer_required(st, live) && e == nullptr
                           && !a.stopped && a.answered;
        st = join(a, b);
        if (leaks && st.leak == nullptr) {
          st.leak = &s;
          st.leak_message = "when the condition is false the call gets no "
                            "answer (add an 'else' with a voice step, or one "
                            "after the 'if')";
        }
        continue;
      }
      if (s.type == "switch") {
        std::optional<voice_state> all;
        for (const auto& b : s.branches) {
          auto r = voice(b.steps, st, live);
          all = all ? join(*all, r) : r;
        }
        bool leaks = false;
        if (s.find_branch("default") == nullptr) {
          leaks = answer_required(st, live) && all && !all->stopped
                  && all->answered;
          all = all ? join(*all, st) : st;
        }
        st = all ? *all : st;
        if (leaks && st.leak == nullptr) {
          st.leak = &s;
          st.leak_message = "when no case matches the call gets no answer "
                            "(add a 'default' with a voice step, or one after "
                            "the 'switch')";
        }
        continue;
      }
      if (s.type == "repeat") { // the body runs at least once
        if (const auto* b = s.find_branch("steps"))
          st = voice(b->steps, st, live);
        continue;
      }
      // Outcome branches (wait_for_reply): one of them runs.
      std::optional<voice_state> all;
      for (const auto& b : s.branches) {
        auto r = voice(b.steps, st, live && b.name != "on_transcription");
        if (b.name != "on_transcription")
          all = all ? join(*all, r) : r;
      }
      if (all)
        st = *all;
    }
    return st;
  }

  bool trigger_voice() const {
    return trigger_ != nullptr && trigger_->voice;
  }

  void check(const workflow& wf) {
    always_stops(wf.steps);
    const bool live = trigger_ == nullptr || trigger_->voice;
    auto st = voice(wf.steps, {}, live);
    if (trigger_voice() && !st.stopped && !st.answered && st.leak != nullptr) {
      report(*st.leak, st.leak_message);
    } else if (trigger_voice() && !st.stopped && !st.answered
               && !wf.steps.empty() && !no_answer_reported_) {
      const auto& last = wf.steps.back();
      report(last, "a path through this workflow ends without answering the "
                   "call (every path of a call.incoming workflow needs a "
                   "voice step: dial, say, play, record_voicemail, hangup or "
                   "reject)");
    }
  }

private:
  const trigger_spec* trigger_;
  std::vector<compile_problem>& out_;
  bool no_answer_reported_ = false;
};

} // namespace

std::string transcription_entry(const step& s) {
  return "transcription:" + std::to_string(s.ordinal);
}

std::shared_ptr<const program> compile(const workflow& wf,
                                       const trigger_spec* trigger,
                                       std::vector<compile_problem>& problems) {
  auto p = std::make_shared<program>();
  emitter e(*p);
  e.list(wf.steps);
  e.emit(op::kind::halt);
  e.entries();
  checker c(trigger, problems);
  c.check(wf);
  return p;
}

std::string disassemble(const program& p) {
  std::ostringstream out;
  for (std::size_t i = 0; i < p.ops.size(); ++i) {
    const auto& o = p.ops[i];
    out << i << ": ";
    switch (o.what) {
      case op::kind::exec:
        out << "exec " << o.s->type << " " << o.s->display_id();
        for (const auto& [name, t] : o.targets)
          out << " " << name << "->" << t;
        break;
      case op::kind::branch_if:
        out << "if " << o.s->display_id() << " else->" << o.target;
        break;
      case op::kind::jump:
        out << "jump " << o.target;
        break;
      case op::kind::switch_on:
        out << "switch " << o.s->display_id();
        for (const auto& [label, t] : o.targets)
          out << " " << label << "->" << t;
        out << " default->" << o.default_target;
        break;
      case op::kind::loop_begin:
        out << "loop_begin " << o.slot;
        break;
      case op::kind::loop_next:
        out << "loop_next " << o.slot << " body->" << o.target;
        break;
      case op::kind::halt:
        out << "halt";
        if (o.s != nullptr)
          out << " " << o.s->display_id();
        break;
    }
    out << "\n";
  }
  for (const auto& [name, pc] : p.entries)
    out << "entry " << name << " -> " << pc << "\n";
  return out.str();
}

} // namespace ringback::workflows
