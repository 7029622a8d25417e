#include "ringback/actors/runs_actor.hpp"

#include "ringback/actors/wake.hpp"
#include "ringback/engine/log.hpp"
#include "ringback/workflows/contexts.hpp"
#include "ringback/workflows/program.hpp"

#include <algorithm>

namespace ringback::actors {

namespace {

using state_t = caf::stateful_actor<runs_state>;
using workflows::resume_event;
using workflows::workflow_ptr;

/// Most stored runs re-armed per recovery pass.
constexpr std::size_t recover_limit = 100'000;

/// How often the cron timers are compared with the current workflows (a
/// reload may add or drop schedules).
constexpr std::chrono::seconds cron_resync{30};

std::string run_key(std::int64_t id) {
  return "run:" + std::to_string(id);
}

std::string cron_key(const std::string& name) {
  return "cron:" + name;
}


/// The host side of one tenant's runs; every member runs on the actor.
class host {
public:
  using segments = std::vector<std::shared_ptr<stored_segment>>;

  host(state_t* self, tenant_info_ptr info, services_ptr svc, caf::actor outbox)
    : self_(self),
      info_(std::move(info)),
      svc_(std::move(svc)),
      outbox_(std::move(outbox)),
      who_("tenant " + info_->tenant->id) {
    // nop
  }

  engine::epoch_ms now() const {
    return svc_->clock->now();
  }

  /// Starts every workflow of `trigger`.
  void start(const std::string& trigger, workflows::context vars,
             const std::string& call_sid) {
    write(start_segments(trigger, std::move(vars), call_sid), {});
  }

  /// The first segments of every workflow of `trigger`, to write.
  segments start_segments(const std::string& trigger, workflows::context vars,
                          const std::string& call_sid) {
    segments out;
    if (!svc_->workflows)
      return out;
    auto list = svc_->workflows->for_trigger(info_->tenant->id, trigger);
    if (list.empty())
      return out;
    auto t = now();
    vars = info_->with_calendar(std::move(vars), t);
    for (const auto& wf : list) {
      auto r = workflows::start(*wf, vars, t, svc_->run_limits);
      engine::run_record run;
      run.tenant_id = info_->tenant->id;
      run.trigger = trigger;
      run.call_sid = call_sid;
      if (auto i = vars.find("contact.phone"); i != vars.end())
        run.contact = i->second.to_text();
      ++self_->state.stats.started;
      out.push_back(segment(wf, r, std::move(run)));
    }
    return out;
  }

  /// A segment to write: logged, with the AI events waiting for its run.
  std::shared_ptr<stored_segment> segment(const workflow_ptr& wf,
                                          const workflows::segment_result& r,
                                          engine::run_record run) {
    log_segment(*wf, r,
                who_ + (run.call_sid.empty() ? "" : " " + run.call_sid));
    auto seg = std::make_shared<stored_segment>(
      make_segment(wf, r, std::move(run), *svc_, info_, now()));
    if (auto i = ai_events_.find(seg->run.id); i != ai_events_.end()) {
      seg->ai_events = std::move(i->second);
      ai_events_.erase(i);
    }
    return seg;
  }

  /// Writes a segment, then carries out what comes after it.
  void store(const workflow_ptr& wf, const workflows::segment_result& r,
             engine::run_record run) {
    write({segment(wf, r, std::move(run))}, {});
  }

  /// Writes segments in one transaction, then carries out what comes after
  /// each. With an inbound text's `sid` the transaction first clears the
  /// runs' bit of that text, and writes nothing if it was clear already
  /// (the text's runs were stored before: it was handed on again after a
  /// restart); a text with no run to write still clears it.
  void write(segments segs, std::string sid) {
    if (segs.empty() && sid.empty())
      return;
    struct outcome {
      std::vector<std::int64_t> ids;
      bool won = false;
      std::optional<workflows::http_action> http;
      std::optional<workflows::ai_action> ai;
    };
    auto outs = std::make_shared<std::vector<outcome>>(segs.size());
    for (std::size_t i = 0; i < segs.size(); ++i) {
      (*outs)[i].http = segs[i]->http;
      (*outs)[i].ai = segs[i]->ai;
    }
    auto before = std::make_shared<bool>(false);
    auto me = caf::actor{self_};
    svc_->store->post(
      [segs, outs, before, sid](engine::store& db) {
        *before = !sid.empty()
                  && db.consume_inbound(sid, engine::inbound_runs)
                       == engine::inbound_claim::done_before;
        if (*before)
          return;
        for (std::size_t i = 0; i < segs.size(); ++i) {
          auto& o = (*outs)[i];
          o.ids.clear();
          o.won = write_segment(db, *segs[i], o.ids);
        }
      },
      [me, segs, outs, before, sid](const std::string& error) {
        if (!error.empty()) {
          std::string names;
          for (const auto& seg : segs)
            names += (names.empty() ? "" : ", ") + seg->run.workflow;
          engine::log_error("workflow", (names.empty() ? "text " + sid : names)
                                          + ": storing failed: " + error);
          return;
        }
        if (*before) {
          engine::log_info("workflow",
                           "text " + sid + ": its runs were stored before");
          return;
        }
        for (std::size_t i = 0; i < segs.size(); ++i) {
          const auto& seg = segs[i];
          auto& o = (*outs)[i];
          caf::anon_send(me, written_atom_v, seg, o.ids, o.won);
          if (o.won && o.http)
            caf::anon_send(me, http_atom_v, seg->run.id, *o.http);
          if (o.won && o.ai)
            caf::anon_send(me, ai_atom_v, seg->run.id, *o.ai);
        }
      });
  }

  /// After a segment is stored.
  void written(const std::shared_ptr<stored_segment>& seg,
               const std::vector<std::int64_t>& ids, bool won) {
    if (!won) {
      ++self_->state.stats.lost;
      engine::log_info("workflow", who_ + ": run " + std::to_string(seg->run.id)
                                     + " was resumed by another process");
      return;
    }
    if (!ids.empty())
      self_->send(outbox_, send_atom_v, stored_messages(*seg, ids));
    arm(seg->run);
  }

  /// Arms the timer of a waiting run (timer and reply waits).
  void arm(const engine::run_record& run) {
    auto& st = self_->state;
    if (run.status != engine::run_status::waiting) {
      st.timers.cancel(run_key(run.id));
      return;
    }
    if ((run.waiting_for == "timer" || run.waiting_for == "reply")
        && run.wake_at > 0) {
      st.timers.arm(run_key(run.id), run.wake_at);
      schedule_wake(self_, svc_);
    }
  }

  /// Sends an `http` step's request to the pool.
  void send_http(std::int64_t run_id, const workflows::http_action& a) {
    auto me = caf::actor{self_};
    if (svc_->http == nullptr) {
      engine::outbound_http_response r;
      r.error = "no HTTP client configured";
      r.error_kind = "bad_request";
      caf::anon_send(me, http_atom_v, run_id, r);
      return;
    }
    self_->state.http_pending.insert(run_id);
    auto req = http_request(a, *info_->tenant);
    svc_->http->post([me, run_id, req](engine::http_fetcher& f) {
      caf::anon_send(me, http_atom_v, run_id, f.fetch(req));
    });
  }

  /// Asks the AI for an `ai_reply` step: reads the customer's conversation,
  /// then the AI pool (or the offline responder) answers as
  /// `(ai_atom, run_id, reply)`.
  void send_ai(std::int64_t run_id, const workflows::ai_action& a) {
    auto me = caf::actor{self_};
    auto req = std::make_shared<engine::ai_request>();
    auto info = info_;
    auto svc = svc_;
    auto now = svc_->clock->now();
    svc_->store->post(
      [req, info, a, now](engine::store& db) {
        *req = {};
        const auto& t = *info->tenant;
        req->tenant_id = t.id;
        req->profile = t.profile;
        if (req->profile.name.empty())
          req->profile.name = t.name;
        if (req->profile.phone.empty())
          req->profile.phone = a.from.empty() && !t.numbers.empty()
                                 ? t.numbers.front().number
                                 : a.from;
        // The tenant's cap bounds what any workflow asks for.
        req->max_chars = std::min(a.max_chars, t.conversations.max_reply_chars);
        auto c = db.find_or_create_conversation(t.id, a.to, a.from, now);
        for (const auto& m : db.conversation_messages(c.id, 30)) {
          if (m.at < c.opened_at)
            continue;
          engine::ai_turn turn;
          turn.who = m.author == "customer" ? engine::ai_turn::speaker::customer
                     : m.author == "owner"  ? engine::ai_turn::speaker::owner
                                            : engine::ai_turn::speaker::ai;
          turn.text = m.body;
          turn.at = m.at;
          req->transcript.push_back(std::move(turn));
        }
      },
      [me, run_id, req, svc](const std::string& error) {
        if (!error.empty())
          engine::log_warn("workflow", "reading the conversation for an AI "
                                       "turn failed ("
                                         + error + "): answering without it");
        if (svc->ai == nullptr) {
          caf::anon_send(me, ai_atom_v, run_id, engine::offline_reply(*req));
          return;
        }
        svc->ai->post([me, run_id, req](engine::ai_responder& r) {
          caf::anon_send(me, ai_atom_v, run_id, r.respond(*req));
        });
      });
  }

  /// The AI's answer: resumes the run; the turn is recorded with its segment.
  void ai_answered(std::int64_t run_id, const engine::ai_reply& reply) {
    resume_event ev;
    ev.what = resume_event::kind::ai;
    ev.body = reply.text;
    ev.status = engine::to_string(reply.about);
    ev.provider = reply.provider;
    ev.error = reply.error;
    ev.elapsed_ms = reply.latency_ms;
    ev.prompt_tokens = reply.prompt_tokens;
    ev.completion_tokens = reply.completion_tokens;
    ev.cost_usd = reply.cost_usd;
    svc_->metrics->ai_turn(info_->tenant->id, reply.provider,
                           !reply.error.empty(), reply.prompt_tokens,
                           reply.completion_tokens, reply.cost_usd,
                           static_cast<double>(reply.latency_ms) / 1000.0);
    auto& events = ai_events_[run_id];
    events.clear();
    if (!reply.error.empty()) {
      engine::conversation_event e;
      e.kind = "ai_error";
      e.detail = reply.error;
      e.provider = reply.provider;
      e.at = now();
      events.push_back(std::move(e));
      engine::log_warn("workflow", who_ + ": AI for run "
                                     + std::to_string(run_id) + " failed ("
                                     + reply.error
                                     + "), the offline responder answered");
    }
    engine::conversation_event e;
    e.kind = "ai_turn";
    e.detail = std::string{engine::to_string(reply.about)}
               + (reply.model.empty() ? "" : " by " + reply.model);
    e.provider = reply.provider;
    e.latency_ms = reply.latency_ms;
    e.prompt_tokens = reply.prompt_tokens;
    e.completion_tokens = reply.completion_tokens;
    e.cost_usd = reply.cost_usd;
    e.at = now();
    events.push_back(std::move(e));
    load_and_resume(run_id, std::move(ev));
  }

  /// Loads a stored run (and its workflow's source if this process does not
  /// have its version), then resumes it with `ev` unless it moved on.
  void load_and_resume(std::int64_t run_id, resume_event ev) {
    struct loaded {
      std::optional<engine::run_record> run;
      workflow_ptr wf;
      std::optional<engine::workflow_version_record> source;
    };
    auto out = std::make_shared<loaded>();
    auto svc = svc_;
    auto tenant_id = info_->tenant->id;
    auto me = caf::actor{self_};
    svc_->store->post(
      [out, run_id, svc, tenant_id](engine::store& db) {
        out->run = db.find_run(run_id);
        out->source.reset();
        if (!out->run || !svc->workflows)
          return;
        out->wf = svc->workflows->find_version(tenant_id, out->run->workflow,
                                               out->run->version);
        if (!out->wf)
          out->source = db.find_workflow_version(tenant_id, out->run->workflow,
                                                 out->run->version);
      },
      [me, out, ev](const std::string& error) mutable {
        if (!error.empty()) {
          engine::log_error("workflow", "loading a run failed: " + error);
          return;
        }
        // Runs on the store thread: hop back onto the actor.
        caf::anon_send(me, loaded_atom_v,
                       std::make_shared<loaded_run>(
                         loaded_run{std::move(out->run), out->wf,
                                    std::move(out->source), std::move(ev)}));
      });
  }

  struct loaded_run {
    std::optional<engine::run_record> run;
    workflow_ptr wf;
    std::optional<engine::workflow_version_record> source;
    resume_event ev;
  };

  void resume_loaded(loaded_run& l) {
    if (auto r = resume_step(l))
      store(r->wf, r->result, std::move(*l.run));
  }

  struct resumed {
    workflow_ptr wf;
    workflows::segment_result result;
  };

  /// Resumes a loaded run with its event, unless it moved on; a run whose
  /// workflow is gone is recorded failed here (and nothing returned).
  std::optional<resumed> resume_step(loaded_run& l) {
    if (!l.run)
      return std::nullopt;
    auto& run = *l.run;
    const auto kind = workflows::to_string(l.ev.what);
    bool fits = run.status == engine::run_status::waiting
                && (run.waiting_for == kind
                    || (run.waiting_for == "reply"
                        && l.ev.what == resume_event::kind::timer));
    if (!fits) {
      // Finished meanwhile, resumed elsewhere, or waiting for something
      // else: an AI turn answered for it is not recorded here.
      if (l.ev.what == resume_event::kind::ai)
        ai_events_.erase(run.id);
      return std::nullopt;
    }
    if (l.ev.what == resume_event::kind::timer && run.wake_at > now() + 5)
      return std::nullopt; // re-armed later (a stale timer)
    auto wf = l.wf;
    if (!wf && l.source) {
      auto loaded = workflows::load_string(l.source->source, l.source->file);
      wf = loaded.value;
    }
    std::string error;
    auto state = workflows::run_state::from_json(run.state, &error);
    workflows::segment_result r;
    if (!wf) {
      r.status = engine::run_status::failed;
      r.error = "workflow " + run.workflow + " version " + run.version
                + " is no longer available";
    } else if (!state) {
      r.status = engine::run_status::failed;
      r.error = error;
    } else {
      r = workflows::resume(*wf, std::move(*state), l.ev,
                            info_->calendar_vars(now()), now(),
                            svc_->run_limits);
    }
    ++self_->state.stats.resumed;
    if (!wf) {
      engine::log_error("workflow", who_ + ": run " + std::to_string(run.id)
                                      + ": " + r.error);
      // Record the failure with a stand-in so the run does not wait forever.
      run.seq += 1;
      run.status = engine::run_status::failed;
      run.error = r.error;
      run.updated_at = now();
      auto expected = run.seq - 1;
      svc_->store->post(
        [run, expected](engine::store& db) { db.update_run(run, expected); });
      return std::nullopt;
    }
    return resumed{std::move(wf), std::move(r)};
  }

  /// What an inbound text found: the runs waiting for its sender's reply,
  /// each with its workflow (as `load_and_resume` loads them).
  struct sms_found {
    engine::inbound_event ev;
    std::vector<loaded_run> waiting;
  };

  /// An inbound text: the runs waiting for a reply from its sender resume
  /// with it, then sms.received starts (not for the owner's texts: they
  /// answer customers, which the conversations handle). Everything it
  /// writes goes in one transaction with the text's runs bit
  /// (`write`): a text handed on again after a restart starts and resumes
  /// nothing twice.
  void on_sms(const engine::inbound_event& ev) {
    const bool nothing_to_start
      = from_owner(ev) || !svc_->workflows
        || svc_->workflows->for_trigger(info_->tenant->id, "sms.received")
             .empty();
    auto out = std::make_shared<sms_found>();
    out->ev = ev;
    auto svc = svc_;
    auto tenant_id = info_->tenant->id;
    auto me = caf::actor{self_};
    svc_->store->post(
      [out, svc, tenant_id, nothing_to_start](engine::store& db) {
        out->waiting.clear();
        const auto& ev = out->ev;
        for (auto& run : db.runs_waiting_for_reply(tenant_id, ev.from)) {
          loaded_run l;
          if (svc->workflows)
            l.wf = svc->workflows->find_version(tenant_id, run.workflow,
                                                run.version);
          if (!l.wf)
            l.source = db.find_workflow_version(tenant_id, run.workflow,
                                                run.version);
          l.run = std::move(run);
          out->waiting.push_back(std::move(l));
        }
        // Nothing to resume or start: the text's runs part is this.
        if (out->waiting.empty() && nothing_to_start)
          db.consume_inbound(ev.sid, engine::inbound_runs);
      },
      [me, out, nothing_to_start](const std::string& error) {
        if (!error.empty()) {
          // Still pending: handed on again at the next start.
          engine::log_error("workflow", "finding runs waiting for a reply "
                                        "failed: "
                                          + error);
          return;
        }
        if (out->waiting.empty() && nothing_to_start)
          return;
        caf::anon_send(me, loaded_atom_v, out);
      });
  }

  void sms_loaded(sms_found& f) {
    const auto& ev = f.ev;
    resume_event r;
    r.what = resume_event::kind::reply;
    r.body = ev.body;
    r.from = ev.from;
    r.sid = ev.sid;
    segments segs;
    for (auto& l : f.waiting) {
      l.ev = r;
      if (auto x = resume_step(l))
        segs.push_back(segment(x->wf, x->result, std::move(*l.run)));
    }
    if (!from_owner(ev)) {
      engine::inbound_message m{ev.sid, info_->tenant->id, ev.from,
                                ev.to,  ev.body,           ev.raw.received_at};
      for (auto& seg : start_segments(
             "sms.received", workflows::sms_context(m, *info_->tenant), ""))
        segs.push_back(std::move(seg));
    }
    write(std::move(segs), ev.sid);
  }

  bool from_owner(const engine::inbound_event& ev) const {
    const auto& owner = info_->tenant->owner_phone;
    return !owner.empty() && ev.from == owner;
  }

  /// The on_transcription branch of a call's incoming run.
  void transcription(const std::string& call_sid, std::int32_t ordinal,
                     workflows::context extra) {
    auto me = caf::actor{self_};
    auto found = std::make_shared<std::vector<engine::run_record>>();
    // The branch belongs to the version the call's run started with: its
    // source comes along when this process does not have that version.
    auto source = std::make_shared<engine::workflow_version_record>();
    auto svc = svc_;
    auto tenant_id = info_->tenant->id;
    svc_->store->post(
      [found, source, call_sid, svc, tenant_id](engine::store& db) {
        *found = db.runs_for_call(call_sid);
        *source = {};
        for (const auto& run : *found)
          if (run.trigger == "call.incoming") {
            if (svc->workflows
                && !svc->workflows->find_version(tenant_id, run.workflow,
                                                 run.version))
              if (auto v = db.find_workflow_version(tenant_id, run.workflow,
                                                    run.version))
                *source = std::move(*v);
            break;
          }
      },
      [me, found, source, call_sid, ordinal, extra](const std::string& error) {
        if (!error.empty()) {
          engine::log_error("workflow", call_sid
                                          + ": loading the call's run "
                                            "failed: "
                                          + error);
          return;
        }
        for (const auto& run : *found)
          if (run.trigger == "call.incoming") {
            caf::anon_send(me, entry_atom_v, run, ordinal, extra, source->file,
                           source->source);
            return;
          }
        engine::log_warn("workflow", call_sid
                                       + ": a transcription for a call "
                                         "without an incoming run");
      });
  }

  void transcription_for(const engine::run_record& parent, std::int32_t ordinal,
                         workflows::context extra, const std::string& file,
                         const std::string& source) {
    if (!svc_->workflows)
      return;
    auto wf = svc_->workflows->find_version(info_->tenant->id, parent.workflow,
                                            parent.version);
    if (!wf && !source.empty())
      wf = workflows::load_string(source, file).value;
    if (!wf) {
      engine::log_warn("workflow", parent.call_sid + ": workflow "
                                     + parent.workflow + " version "
                                     + parent.version
                                     + " is gone; transcription dropped");
      return;
    }
    auto state = workflows::run_state::from_json(parent.state);
    auto vars = state ? state->vars : workflows::context{};
    for (auto& [k, v] : extra)
      vars[k] = v;
    const workflows::step* target = nullptr;
    for (const auto& e : wf->code->entries)
      if (e.first == "transcription:" + std::to_string(ordinal))
        target = &wf->steps.front(); // any: only the entry name matters
    if (target == nullptr) {
      engine::log_warn("workflow", parent.call_sid + ": step #"
                                     + std::to_string(ordinal)
                                     + " has no on_transcription branch");
      return;
    }
    auto t = now();
    vars = info_->with_calendar(std::move(vars), t);
    auto r = workflows::start_at(*wf,
                                 "transcription:" + std::to_string(ordinal),
                                 vars, t, svc_->run_limits);
    engine::run_record run;
    run.tenant_id = info_->tenant->id;
    run.trigger = "call.incoming";
    run.call_sid = parent.call_sid;
    run.contact = parent.contact;
    ++self_->state.stats.started;
    store(wf, r, std::move(run));
  }

  /// Re-syncs the cron timers with the current schedule workflows.
  void sync_cron() {
    auto& st = self_->state;
    if (!svc_->workflows)
      return;
    auto list = svc_->workflows->for_trigger(info_->tenant->id, "schedule");
    std::set<std::string> wanted;
    for (const auto& wf : list) {
      auto key = cron_key(wf->name);
      wanted.insert(key);
      if (st.timers.contains(key))
        continue;
      auto cron = workflows::cron_schedule::parse(wf->schedule);
      if (!cron.ok())
        continue;
      if (auto next = cron.value->next_after(now(), info_->calendar.zone())) {
        st.timers.arm(key, *next);
        st.cron_due[key] = *next;
      }
    }
    for (const auto& key : st.timers.keys())
      if (key.rfind("cron:", 0) == 0 && wanted.count(key) == 0) {
        st.timers.cancel(key);
        st.cron_due.erase(key);
      }
    schedule_wake(self_, svc_);
  }

  /// A cron timer fired: start the run once across processes, re-arm.
  void fire_cron(const std::string& name, engine::epoch_ms due) {
    if (!svc_->workflows)
      return;
    workflow_ptr current;
    for (const auto& w :
         svc_->workflows->for_trigger(info_->tenant->id, "schedule"))
      if (w->name == name)
        current = w;
    if (!current)
      return;
    auto cron = workflows::cron_schedule::parse(current->schedule);
    if (cron.ok())
      if (auto next = cron.value->next_after(std::max(now(), due),
                                             info_->calendar.zone())) {
        self_->state.timers.arm(cron_key(name), *next);
        self_->state.cron_due[cron_key(name)] = *next;
      }
    schedule_wake(self_, svc_);
    auto key = "ringback:cron:" + info_->tenant->id + ":" + name + ":"
               + std::to_string(due);
    auto me = caf::actor{self_};
    auto svc = svc_;
    svc_->kv->post([me, key, svc, name, due](engine::kv& kv) {
      bool first = true;
      try {
        first = kv.set_if_absent(key, svc->node_id, std::chrono::hours{48});
      } catch (const std::exception& e) {
        engine::log_warn("workflow",
                         std::string("cron dedup unavailable: ") + e.what());
      }
      if (first)
        caf::anon_send(me, cron_atom_v, name, due);
    });
  }

  void start_cron(const std::string& name, engine::epoch_ms due) {
    auto list = svc_->workflows->for_trigger(info_->tenant->id, "schedule");
    for (const auto& wf : list) {
      if (wf->name != name)
        continue;
      auto t = now();
      workflows::context vars;
      workflows::add_tenant_variables(*info_->tenant, "", vars);
      vars["schedule.cron"] = workflows::value{wf->schedule};
      auto lt = info_->calendar.zone().to_local(due);
      char buf[32];
      std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", lt.year,
                    lt.month, lt.day, lt.hour, lt.minute, lt.second);
      vars["schedule.fired_at"] = workflows::value{std::string(buf)};
      vars = info_->with_calendar(std::move(vars), t);
      auto r = workflows::start(*wf, vars, t, svc_->run_limits);
      engine::run_record run;
      run.tenant_id = info_->tenant->id;
      run.trigger = "schedule";
      ++self_->state.stats.started;
      store(wf, r, std::move(run));
    }
  }

  void recover() {
    auto me = caf::actor{self_};
    auto found = std::make_shared<std::vector<engine::run_record>>();
    auto svc = svc_;
    auto tenant_id = info_->tenant->id;
    auto orphaned_before = now() - svc_->adopt_after.count();
    svc_->store->post(
      [found, svc, tenant_id, orphaned_before](engine::store& db) {
        found->clear();
        for (auto& r :
             db.unfinished_runs(svc->node_id, orphaned_before, recover_limit))
          if (r.tenant_id == tenant_id)
            found->push_back(std::move(r));
      },
      [me, found](const std::string& error) {
        if (!error.empty())
          engine::log_error("workflow", "recovering runs failed: " + error);
        caf::anon_send(me, recover_atom_v, *found);
      });
  }

  void recovered(const std::vector<engine::run_record>& runs) {
    std::size_t n = 0;
    for (const auto& run : runs) {
      if (run.status != engine::run_status::waiting)
        continue;
      if (run.waiting_for == "http") {
        // The response was lost with the process. The server may have acted
        // on the request, so it is not sent again: the run carries on with
        // an error (steps.<id>.ok false; docs/operations.md).
        resume_event ev;
        ev.what = resume_event::kind::http;
        ev.error = "the process restarted while waiting; not retried";
        load_and_resume(run.id, ev);
        ++n;
        continue;
      }
      if (run.waiting_for == "ai") {
        // The AI's answer was lost with the process: ask again (the step
        // renders its own recipient and sender when it resumes).
        workflows::ai_action a;
        a.to = run.contact;
        send_ai(run.id, a);
        ++n;
        continue;
      }
      arm(run);
      ++n;
    }
    if (n > 0)
      engine::log_info("workflow", who_ + ": " + std::to_string(n)
                                     + " waiting run(s) re-armed");
  }

  state_t* self_;
  tenant_info_ptr info_;
  services_ptr svc_;
  caf::actor outbox_;
  std::string who_;
  /// The AI turn of each run resumed by an AI answer, recorded with the
  /// segment that resume writes.
  std::unordered_map<std::int64_t, std::vector<engine::conversation_event>>
    ai_events_;
};

} // namespace

} // namespace ringback::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(
  std::shared_ptr<ringback::actors::host::loaded_run>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(
  std::shared_ptr<ringback::actors::host::sms_found>)

namespace ringback::actors {

caf::behavior runs_actor(caf::stateful_actor<runs_state>* self,
                         tenant_info_ptr info, services_ptr svc,
                         caf::actor outbox) {
  auto h = std::make_shared<host>(self, std::move(info), svc,
                                  std::move(outbox));
  self->send(self, cron_atom_v);
  return {
    [=](start_atom, const std::string& trigger, workflows::context& vars,
        const std::string& call_sid) {
      h->start(trigger, std::move(vars), call_sid);
    },
    [=](entry_atom, const std::string& call_sid, std::int32_t ordinal,
        workflows::context& extra) {
      h->transcription(call_sid, ordinal, std::move(extra));
    },
    [=](entry_atom, const engine::run_record& parent, std::int32_t ordinal,
        workflows::context& extra, const std::string& file,
        const std::string& source) {
      h->transcription_for(parent, ordinal, std::move(extra), file, source);
    },
    [=](adopt_atom, const engine::run_record& run) {
      if (run.status == engine::run_status::waiting && run.waiting_for == "ai") {
        // A run written elsewhere (a call's outcome) that waits for the AI.
        workflows::ai_action a;
        a.to = run.contact;
        h->send_ai(run.id, a);
        return;
      }
      h->arm(run);
    },
    [=](adopt_atom, const engine::run_record& run,
        const workflows::http_action& a) { h->send_http(run.id, a); },
    [=](adopt_atom, std::int64_t run_id, resume_event& ev) {
      h->load_and_resume(run_id, std::move(ev));
    },
    [=](event_atom, const engine::inbound_event& ev,
        const std::shared_ptr<engine::voice_reply>&) {
      if (ev.what == engine::inbound_event::kind::sms)
        h->on_sms(ev);
    },
    [=](loaded_atom, const std::shared_ptr<host::loaded_run>& l) {
      h->resume_loaded(*l);
    },
    [=](loaded_atom, const std::shared_ptr<host::sms_found>& f) {
      h->sms_loaded(*f);
    },
    [=](written_atom, const std::shared_ptr<stored_segment>& seg,
        const std::vector<std::int64_t>& ids,
        bool won) { h->written(seg, ids, won); },
    [=](http_atom, std::int64_t run_id, const workflows::http_action& a) {
      h->send_http(run_id, a);
    },
    [=](ai_atom, std::int64_t run_id, const workflows::ai_action& a) {
      h->send_ai(run_id, a);
    },
    [=](ai_atom, std::int64_t run_id, const engine::ai_reply& reply) {
      h->ai_answered(run_id, reply);
    },
    [=](http_atom, std::int64_t run_id,
        const engine::outbound_http_response& r) {
      self->state.http_pending.erase(run_id);
      h->load_and_resume(run_id, http_event(r));
    },
    [=](wake_atom) {
      auto& st = self->state;
      st.wake_at = 0;
      auto now = svc->clock->now();
      for (auto& key : st.timers.pop_due(now)) {
        if (key.rfind("run:", 0) == 0) {
          resume_event ev;
          ev.what = resume_event::kind::timer;
          h->load_and_resume(std::stoll(key.substr(4)), ev);
        } else if (key.rfind("cron:", 0) == 0) {
          // The firing it was armed for: processes wake at different
          // instants, but must agree on which firing they run.
          auto due = now;
          if (auto i = st.cron_due.find(key); i != st.cron_due.end()) {
            due = i->second;
            st.cron_due.erase(i);
          }
          h->fire_cron(key.substr(5), due);
        }
      }
      schedule_wake(self, svc);
    },
    [=](cron_atom) {
      h->sync_cron();
      self->delayed_send(self, cron_resync, cron_atom_v);
    },
    [=](cron_atom, const std::string& name, engine::epoch_ms due) {
      h->start_cron(name, due);
    },
    [=](recover_atom) { h->recover(); },
    [=](recover_atom, const std::vector<engine::run_record>& runs) {
      h->recovered(runs);
    },
    [=](stats_atom) {
      auto s = self->state.stats;
      s.timers = self->state.timers.size();
      s.http = self->state.http_pending.size();
      return s;
    },
  };
}

} // namespace ringback::actors
