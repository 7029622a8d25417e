#include "ringback/actors/call_actor.hpp"

#include "ringback/actors/messages.hpp"
#include "ringback/engine/log.hpp"
#include "ringback/workflows/calendar.hpp"
#include "ringback/workflows/contexts.hpp"
#include "ringback/workflows/diagnostic.hpp"

#include <cmath>
#include <optional>
#include <utility>

namespace ringback::actors {

namespace {

using engine::call_effects;
using engine::call_fsm;
using engine::call_phase;
using claim_result = call_fsm::claim_result;
using segments = std::vector<std::shared_ptr<stored_segment>>;
using state_t = caf::stateful_actor<call_state>;

// Every helper below works on the actor's state, so that the behavior's
// handlers capture `self` alone: a closure per handler that copied the
// services, the tenant, three actor handles and the CallSid cost ~3.7 KB per
// live call (docs/benchmarks.md, "Where the memory goes").

std::string outcome_key(const std::string& call_sid) {
  return "ringback:outcome:" + call_sid;
}

/// Claims the outcome: first in the kv (cheap, shared by every process), then
/// in the store together with the runs the outcome starts and their messages
/// (the store's conditional update is the final word). Reports
/// `decided_atom` to `self`.
///
/// `update`, if set, is the call's update from the same event: a won claim
/// writes it (`decide_outcome` writes what `update_call` does), a lost one
/// writes it with `update_call` before reporting, so that the event costs
/// one statement where the update and the claim cost two.
///
/// `ahead`: the store jobs go ahead of the store's queue (see
/// `call_state::row_ahead`).
void claim_outcome(const caf::actor& self, const services_ptr& svc,
                   engine::call_record decided, segments runs,
                   std::optional<engine::call_record> update, bool ahead) {
  svc->kv->post([self, svc, decided = std::move(decided),
                 runs = std::move(runs), update = std::move(update),
                 ahead](engine::kv& kv) mutable {
    auto post = ahead ? &engine::store_queue::post_ahead
                      : &engine::store_queue::post;
    try {
      if (!kv.claim(outcome_key(decided.call_sid), svc->node_id,
                    svc->claim_ttl)) {
        if (!update) {
          caf::anon_send(self, decided_atom_v, claim_result::lost,
                         std::vector<std::int64_t>{}, segments{});
          return;
        }
        (svc->store->*post)(
          [update = std::move(*update)](engine::store& db) {
            db.update_call(update);
          },
          [self, sid = decided.call_sid](const std::string& error) {
            if (!error.empty())
              engine::log_error("call", sid + ": saving failed: " + error);
            caf::anon_send(self, decided_atom_v,
                           error.empty() ? claim_result::lost
                                         : claim_result::failed,
                           std::vector<std::int64_t>{}, segments{});
          });
        return;
      }
    } catch (const std::exception& e) {
      // The kv is only a fast filter; the store still decides exactly once.
      engine::log_warn("call", decided.call_sid + ": kv claim failed ("
                                 + e.what() + "), deciding in the store");
    }
    auto won = std::make_shared<bool>(false);
    auto ids = std::make_shared<std::vector<std::int64_t>>();
    (svc->store->*post)(
      [decided, runs, won, ids, update](engine::store& db) {
        ids->clear(); // the job may run twice (batch retried alone)
        *won = db.decide_outcome(decided);
        if (!*won) {
          if (update)
            db.update_call(*update);
          return;
        }
        std::vector<std::int64_t> more;
        for (const auto& seg : runs) {
          seg->run.id = 0;
          write_segment(db, *seg, more);
          ids->insert(ids->end(), more.begin(), more.end());
        }
      },
      [self, won, ids, runs](const std::string& error) {
        auto result = !error.empty()
                        ? claim_result::failed
                        : (*won ? claim_result::won : claim_result::lost);
        if (!error.empty())
          engine::log_error("call", "storing the outcome failed: " + error);
        caf::anon_send(self, decided_atom_v, result, *ids, runs);
      });
  });
}

/// Starts the workflows of `trigger` for `call` as segments to store.
segments start_runs(const services_ptr& svc, const tenant_info_ptr& info_ptr,
                    std::string_view trigger, const engine::call_record& call) {
  const auto& info = *info_ptr;
  segments out;
  if (!svc->workflows)
    return out;
  auto now = svc->clock->now();
  auto vars = info.with_calendar(workflows::call_context(call, *info.tenant),
                                 now);
  for (const auto& wf : svc->workflows->for_trigger(info.tenant->id, trigger)) {
    auto r = workflows::start(*wf, vars, now, svc->run_limits);
    log_segment(*wf, r, call.call_sid);
    engine::run_record run;
    run.tenant_id = info.tenant->id;
    run.trigger = std::string(trigger);
    run.call_sid = call.call_sid;
    run.contact = call.from;
    out.push_back(std::make_shared<stored_segment>(
      make_segment(wf, r, std::move(run), *svc, info_ptr, now)));
  }
  return out;
}

engine::voice_answer builtin_answer(const engine::call_record& rec,
                                    const services& svc) {
  return engine::voice_answer::dial(
    {rec.owner_phone},
    std::chrono::duration_cast<std::chrono::seconds>(svc.timing.ring_timeout),
    svc.public_url + "/webhooks/twilio/voice/dial-result");
}

const services& svc_of(const state_t* self) {
  return *self->state.shared->svc;
}

const tenant_info& info_of(const state_t* self) {
  return *self->state.shared->info;
}

engine::epoch_ms now_of(const state_t* self) {
  return svc_of(self).clock->now();
}

/// The call's CallSid, kept once: in the state machine's record.
const std::string& sid_of(const state_t* self) {
  return self->state.fsm->record().call_sid;
}

/// Posts an update of the call's row in the row's lane (see
/// `call_state::row_ahead`): the lane of its jobs still unacknowledged (the
/// claim included), or with none, the store's queue.
void post_row_update(state_t* self, engine::store_queue::work w,
                     engine::store_queue::done d) {
  auto& st = self->state;
  if (st.row_unacked == 0 && !st.fsm->claim_in_flight())
    st.row_ahead = false;
  ++st.row_unacked;
  ++st.unacked_writes;
  auto& store = *svc_of(self).store;
  if (st.row_ahead)
    store.post_ahead(std::move(w), std::move(d));
  else
    store.post(std::move(w), std::move(d));
}

// -- the waiting run's variables ------------------------------------------
//
// A run waiting for the dial result holds every variable it was started
// with: the call's and the tenant's (11) and the calendar's (8), ~2.8 KB of
// map nodes and strings per live call. The call actor keeps only what a
// resume cannot recompute and puts the rest back before resuming.

/// The call's and tenant's variables as `call_context` gives them at the
/// start of the call. Depends only on what stays fixed while the call is
/// live: the record's CallSid, caller and called number, and the tenant.
workflows::context fixed_vars(const state_t* self) {
  const auto& rec = self->state.fsm->record();
  return workflows::call_context(rec.call_sid, rec.from, rec.to,
                                 *info_of(self).tenant);
}

/// Same kind and content, and for numbers the same sign of zero: putting
/// the fixed value back must give exactly what was taken out.
bool identical(const workflows::value& a, const workflows::value& b) {
  return a == b
         && (!a.is_number()
             || std::signbit(a.as_number()) == std::signbit(b.as_number()));
}

/// Takes out of `in.state.vars` the calendar variables (`resume` overrides
/// them all with fresh ones) and the fixed variables that still have their
/// fixed value (recording which in `in.fixed_stripped`).
void compact_vars(const state_t* self, incoming_run& in) {
  auto& vars = in.state.vars;
  in.fixed_stripped = 0;
  std::uint32_t bit = 1;
  for (const auto& [name, v] : fixed_vars(self)) {
    if (bit == 0)
      break; // more than 32: keep the rest
    if (auto i = vars.find(name); i != vars.end() && identical(i->second, v)) {
      vars.erase(i);
      in.fixed_stripped |= bit;
    }
    bit <<= 1;
  }
  for (auto name : workflows::calendar_variable_names())
    if (auto i = vars.find(std::string(name)); i != vars.end())
      vars.erase(i);
}

/// The state to resume `in` with: `compact_vars` undone, but for the
/// calendar variables, which `resume` sets from its `fresh` argument.
workflows::run_state full_state(const state_t* self, const incoming_run& in) {
  auto state = in.state;
  std::uint32_t bit = 1;
  for (auto& [name, v] : fixed_vars(self)) {
    if (bit == 0)
      break;
    if ((in.fixed_stripped & bit) != 0)
      state.vars.emplace(name, std::move(v));
    bit <<= 1;
  }
  return state;
}

/// Keeps `state` as the waiting run's, without what `full_state` restores.
void keep_state(const state_t* self, incoming_run& in,
                workflows::run_state state) {
  in.state = std::move(state);
  compact_vars(self, in);
}

/// The stored run `in` continues, for `make_segment`.
engine::run_record run_of(const state_t* self, const incoming_run& in) {
  engine::run_record run;
  run.id = in.id;
  run.tenant_id = info_of(self).tenant->id;
  run.workflow = in.workflow;
  run.version = in.version;
  run.trigger = "call.incoming";
  run.call_sid = sid_of(self);
  run.contact = in.contact;
  run.seq = in.seq;
  run.started_at = in.started_at;
  return run;
}

/// Keeps what `run_of` needs of `run` (the stored run after a segment).
void keep_run(incoming_run& in, const engine::run_record& run) {
  in.id = run.id;
  in.seq = run.seq;
  in.started_at = run.started_at;
  in.workflow = run.workflow;
  in.version = run.version;
  in.contact = run.contact;
}

// -- the behavior's steps -------------------------------------------------

/// Sends `finished` once the state machine is done and no live run needs
/// this actor (a run that still waits is in the store; a late event finds it
/// there).
void maybe_finish(state_t* self) {
  auto& st = self->state;
  if (!st.fsm_finished || st.finishing)
    return;
  const bool run_waits = st.incoming && st.incoming->waiting;
  if (run_waits && !st.fsm->record().ended)
    return;
  if (st.pending_reply || st.incoming_loading)
    return;
  // Every write of the call committed before it leaves: whoever loads it
  // next (a late event, another process) reads it with an urgent read,
  // ahead of the store's queue.
  if (st.unacked_writes != 0)
    return;
  st.finishing = true;
  self->send(st.tenant, finished_atom_v, sid_of(self));
}

/// Stores one segment of the incoming run; hands it to the runs actor if it
/// now waits for a timer or a reply.
void store_incoming(state_t* self, const workflows::segment_result& r) {
  const auto& sh = *self->state.shared;
  auto& in = *self->state.incoming;
  log_segment(*in.wf, r, sid_of(self));
  auto seg = std::make_shared<stored_segment>(
    make_segment(in.wf, r, run_of(self, in), *sh.svc, sh.info, now_of(self)));
  keep_run(in, seg->run);
  auto cell = in.stored_id;
  auto ids = std::make_shared<std::vector<std::int64_t>>();
  const bool hand_off = r.status == engine::run_status::waiting
                        && (r.state.waiting_for == "timer"
                            || r.state.waiting_for == "reply");
  auto won = std::make_shared<bool>(false);
  // Passivation waits for the acknowledgement: a run whose write failed
  // lives only in this actor.
  ++self->state.unacked_writes;
  sh.svc->store->post(
    [seg, cell, ids, won](engine::store& db) {
      if (*cell != 0)
        seg->run.id = *cell;
      *won = write_segment(db, *seg, *ids);
      if (*won)
        *cell = seg->run.id;
    },
    [seg, ids, outbox = sh.outbox, runs = sh.runs, hand_off,
     me = caf::actor{self}](const std::string& error) {
      caf::anon_send(me, written_atom_v, error.empty(), false);
      if (!error.empty()) {
        engine::log_error("call",
                          seg->run.call_sid
                            + ": storing the incoming run failed: " + error);
        return;
      }
      // Texts and pages alike: the ids are empty unless this process wrote
      // the segment.
      if (!ids->empty())
        caf::anon_send(outbox, send_atom_v, stored_messages(*seg, *ids));
      if (hand_off)
        caf::anon_send(runs, adopt_atom_v, seg->run);
    });
}

/// Carries out a segment of the incoming run: voice verbs answer `reply`
/// (or wait with it for an HTTP response), the rest is stored.
void handle_incoming(state_t* self, workflows::segment_result r,
                     std::shared_ptr<engine::voice_reply> reply) {
  auto& st = self->state;
  const auto& svc = svc_of(self);
  auto& in = *st.incoming;
  fill_voice_urls(r.fx.voice, svc.public_url,
                  std::chrono::duration_cast<std::chrono::seconds>(
                    svc.timing.ring_timeout));
  if (reply) {
    st.pending_reply = std::move(reply);
    st.pending_verbs.clear();
  }
  for (auto& v : r.fx.voice)
    st.pending_verbs.push_back(std::move(v));
  const bool waits = r.status == engine::run_status::waiting;
  in.waiting = waits
               && (r.state.waiting_for == "dial"
                   || r.state.waiting_for == "recording"
                   || r.state.waiting_for == "http");
  if (in.waiting) {
    keep_state(self, in, r.state);
  } else {
    in.state = r.state; // dropped below: finished or handed to the runs actor
    in.fixed_stripped = 0;
  }
  auto http = r.fx.http;
  store_incoming(self, r);
  if (http) {
    auto req = http_request(*http, *info_of(self).tenant);
    auto me = caf::actor{self};
    if (svc.http == nullptr) {
      engine::outbound_http_response resp;
      resp.error = "no HTTP client configured";
      self->send(self, http_atom_v, std::int64_t{0}, resp);
    } else {
      svc.http->post([me, req](engine::http_fetcher& f) {
        caf::anon_send(me, http_atom_v, std::int64_t{0}, f.fetch(req));
      });
    }
    return; // the reply, if any, waits for the response
  }
  if (st.pending_reply) {
    engine::voice_answer a{std::move(st.pending_verbs)};
    if (!st.first_answer)
      st.first_answer = a;
    st.pending_reply->answer(a);
    st.pending_reply.reset();
    st.pending_verbs.clear();
  }
  if (!in.waiting && waits)
    st.incoming.reset(); // handed to the runs actor
  else if (!waits)
    st.incoming.reset(); // finished
  maybe_finish(self);
}

void resume_incoming(state_t* self, const workflows::resume_event& ev,
                     std::shared_ptr<engine::voice_reply> reply) {
  const auto& in = *self->state.incoming;
  auto now = now_of(self);
  auto r = workflows::resume(*in.wf, full_state(self, in), ev,
                             info_of(self).calendar_vars(now), now,
                             svc_of(self).run_limits);
  handle_incoming(self, std::move(r), std::move(reply));
}

void apply(state_t* self, const call_effects& fx) {
  auto& st = self->state;
  const auto& svc = st.shared->svc;
  auto& fsm = *st.fsm;
  const auto& rec = fsm.record();
  const auto& sid = rec.call_sid;
  if (!fx.note.empty())
    engine::log_info("call", sid + ": " + fx.note);
  // An update from the event that also claims the outcome goes with the
  // claim (see claim_outcome); the claim in flight holds the actor as the
  // unacknowledged write would.
  const bool with_claim = fx.persist && fx.decide.has_value();
  if (with_claim)
    st.claim_persists = true;
  if (fx.persist && !with_claim) {
    // Counted like the run's writes: a passivated call is reloaded with an
    // urgent read, which must find every write of it committed.
    post_row_update(
      self, [rec](engine::store& db) { db.update_call(rec); },
      [sid, me = caf::actor{self}](const std::string& error) {
        caf::anon_send(me, written_atom_v, error.empty(), true);
        if (!error.empty())
          engine::log_error("call", sid + ": saving failed: " + error);
      });
  }
  if (fx.arm_timer)
    self->send(st.tenant, arm_atom_v, sid, rec.fallback_at);
  if (fx.query_carrier) {
    auto me = caf::actor{self};
    svc->carrier->post([me, sid](engine::carrier& c) {
      caf::anon_send(me, report_atom_v, c.fetch_call(sid));
    });
  }
  if (fx.decide) {
    auto decided = fsm.pending_outcome();
    auto trigger = *fx.decide == call_phase::missed ? "call.missed"
                                                    : "call.answered";
    auto runs_to_start = start_runs(svc, st.shared->info, trigger, decided);
    st.fsm_finished = false;
    // No update of the call's row left in the store's queue: the claim
    // goes ahead of it (a text-back must not wait behind other calls' audit
    // rows and updates), and the row's updates follow it there until they
    // are all acknowledged. With an update still queued, the claim stays in
    // its lane: ahead of it, the decided row could be overwritten by it.
    // (The incoming run's segments write other rows: they stay queued.)
    if (st.row_unacked == 0)
      st.row_ahead = true;
    claim_outcome(caf::actor{self}, svc, std::move(decided),
                  std::move(runs_to_start),
                  with_claim ? std::optional{rec} : std::nullopt, st.row_ahead);
  }
  if (fx.finished) {
    st.fsm_finished = true;
    maybe_finish(self);
  }
}

/// Answers the incoming webhook: starts the call.incoming run, or repeats
/// the answer for a carrier retry.
void answer_incoming(state_t* self,
                     std::shared_ptr<engine::voice_reply> reply) {
  auto& st = self->state;
  if (!reply)
    return;
  if (st.first_answer) {
    reply->answer(*st.first_answer);
    return;
  }
  const auto& svc = svc_of(self);
  const auto& info = info_of(self);
  const auto& rec = st.fsm->record();
  auto now = now_of(self);
  auto vars = info.with_calendar(workflows::call_context(rec, *info.tenant),
                                 now);
  auto replay = st.incoming ? st.incoming->wf : st.stored_wf;
  if (replay) {
    // The run started before this answer was asked for (elsewhere, or
    // before a restart): its first segment again gives the same answer
    // (the interpreter is pure); nothing of it is stored.
    auto r = workflows::start(*replay, std::move(vars), now, svc.run_limits);
    fill_voice_urls(r.fx.voice, svc.public_url,
                    std::chrono::duration_cast<std::chrono::seconds>(
                      svc.timing.ring_timeout));
    st.first_answer = r.fx.http || r.fx.voice.empty()
                        ? builtin_answer(rec, svc)
                        : engine::voice_answer{std::move(r.fx.voice)};
    reply->answer(*st.first_answer);
    return;
  }
  std::vector<workflows::workflow_ptr> wfs;
  if (svc.workflows)
    wfs = svc.workflows->for_trigger(info.tenant->id, "call.incoming");
  if (wfs.empty()) {
    st.first_answer = builtin_answer(rec, svc);
    reply->answer(*st.first_answer);
    return;
  }
  incoming_run in;
  in.wf = wfs.front();
  in.contact = rec.from;
  st.incoming = std::move(in);
  auto r = workflows::start(*st.incoming->wf, std::move(vars), now,
                            svc.run_limits);
  handle_incoming(self, std::move(r), std::move(reply));
}

/// Voice events for the incoming run, once it is in memory (or known to be
/// absent).
void voice_event(state_t* self, const engine::inbound_event& ev,
                 std::shared_ptr<engine::voice_reply> reply) {
  using kind = engine::inbound_event::kind;
  auto& st = self->state;
  if (ev.what == kind::call_incoming) {
    answer_incoming(self, std::move(reply));
    return;
  }
  const char* waiting = ev.what == kind::dial_result ? "dial" : "recording";
  if (st.incoming && st.incoming->waiting
      && st.incoming->state.waiting_for == waiting) {
    workflows::resume_event r;
    if (ev.what == kind::dial_result) {
      r.what = workflows::resume_event::kind::dial;
      r.status = ev.status;
      r.duration = ev.duration;
    } else {
      r.what = workflows::resume_event::kind::recording;
      r.url = ev.url;
      r.duration = ev.duration;
      r.sid = ev.raw.call_sid;
    }
    resume_incoming(self, r, std::move(reply));
    return;
  }
  if (reply) // no run to ask: end the call politely
    reply->answer(engine::voice_answer::hangup());
}

/// Loads the incoming run from the store (a restarted or released actor).
/// With the run comes the source of its workflow version when this process
/// does not have that version (edited since, or never loaded here): a run
/// finishes on the version it started with.
void load_incoming(state_t* self) {
  auto& st = self->state;
  st.incoming_loading = true;
  auto me = caf::actor{self};
  const auto& svc = st.shared->svc;
  auto tenant_id = info_of(self).tenant->id;
  auto loaded = std::make_shared<stored_incoming>();
  svc->store->post(
    [loaded, sid = sid_of(self), svc, tenant_id](engine::store& db) {
      *loaded = load_stored_incoming(db, *svc, tenant_id, sid);
    },
    [me, loaded](const std::string& error) {
      if (!error.empty())
        engine::log_error("call", "loading the incoming run failed: " + error);
      caf::anon_send(me, loaded_atom_v, loaded->runs, loaded->file,
                     loaded->source);
    });
}

// -- passivation ----------------------------------------------------------

/// Whether everything this actor holds is in the store, and nothing is on
/// its way to it but what the tenant forwards (see `call_actor`).
bool quiescent(const state_t* self) {
  const auto& st = self->state;
  const auto& fsm = *st.fsm;
  const auto& rec = fsm.record();
  if (st.finishing || st.fsm_finished || rec.decided_outcome()
      || fsm.claim_in_flight() || fsm.query_in_flight() || rec.fallback_at == 0)
    return false;
  // A due timer (a call reloaded for it) is on its way from the tenant.
  if (rec.fallback_at <= now_of(self))
    return false;
  if (st.incoming_loading || !st.held.empty() || st.pending_reply
      || st.unacked_writes != 0 || st.write_failed)
    return false;
  // A created call answers its incoming webhook first; a loaded one was
  // answered before (elsewhere, or before a restart or passivation).
  if (st.created && !st.first_answer)
    return false;
  return !st.incoming
         || (st.incoming->waiting && st.incoming->state.waiting_for == "dial");
}

/// Asks the tenant to let this actor go once it is quiescent; once per
/// quiescent stretch (the tenant ignores a request that an event overtook,
/// and the actor asks again after handling that event).
void maybe_passivate(state_t* self) {
  auto& st = self->state;
  if (!svc_of(self).passivate_after || !quiescent(self)) {
    st.asked_at = call_state::not_asked;
    return;
  }
  if (st.asked_at == st.handled)
    return;
  st.asked_at = st.handled;
  self->send(st.tenant, passivate_atom_v, sid_of(self), st.handled);
}

// -- the handlers ---------------------------------------------------------

void on_event(state_t* self, const engine::inbound_event& ev,
              std::shared_ptr<engine::voice_reply>& reply) {
  auto& st = self->state;
  auto& fsm = *st.fsm;
  using kind = engine::inbound_event::kind;
  switch (ev.what) {
    case kind::call_incoming: {
      if (!reply)
        break;
      if (!st.created && !st.first_answer && !st.incoming
          && !st.incoming_absent) {
        // A carrier retry reaching an actor that did not create the call
        // (another process, a restart): the run the first attempt started,
        // if any, is in the store.
        st.held.emplace_back(ev, std::move(reply));
        if (!st.incoming_loading)
          load_incoming(self);
        break;
      }
      answer_incoming(self, std::move(reply));
      break;
    }
    case kind::dial_result:
      apply(self, fsm.on_dial_result(ev.status, ev.duration, now_of(self)));
      [[fallthrough]];
    case kind::recording: {
      const char* wanted = ev.what == kind::dial_result ? "dial" : "recording";
      if (st.incoming && !st.pending_reply
          && st.incoming->state.waiting_for != "http"
          && st.incoming->state.waiting_for != wanted) {
        // Another process may have moved the run on (a callback it got):
        // the store, not this copy, says what the run waits for.
        st.incoming.reset();
        st.incoming_absent = false;
      }
      if (!st.incoming && !st.incoming_absent) {
        st.held.emplace_back(ev, std::move(reply));
        if (!st.incoming_loading)
          load_incoming(self);
        break;
      }
      voice_event(self, ev, std::move(reply));
      break;
    }
    case kind::call_status: {
      const bool was_ended = fsm.record().ended;
      apply(self, fsm.on_call_status(ev.status, now_of(self)));
      if (!was_ended && fsm.record().ended && svc_of(self).workflows) {
        auto vars = workflows::call_context(fsm.record(),
                                            *info_of(self).tenant);
        vars["call.duration"]
          = workflows::value{static_cast<std::int64_t>(ev.duration)};
        self->send(st.shared->runs, start_atom_v, std::string{"call.completed"},
                   std::move(vars), sid_of(self));
      }
      maybe_finish(self);
      break;
    }
    case kind::sms:
    case kind::sms_status:
    case kind::transcription:
      break;
  }
}

void on_loaded(state_t* self, const std::vector<engine::run_record>& found,
               const std::string& file, const std::string& source) {
  auto& st = self->state;
  const auto& svc = svc_of(self);
  st.incoming_loading = false;
  const engine::run_record* run = nullptr;   // waits for a callback
  const engine::run_record* first = nullptr; // the call's incoming run
  for (const auto& r : found) {
    if (r.trigger != "call.incoming")
      continue;
    if (first == nullptr)
      first = &r;
    if (r.status == engine::run_status::waiting
        && (r.waiting_for == "dial" || r.waiting_for == "recording"))
      run = &r;
  }
  // Every incoming run of a call (its on_transcription runs too) is of the
  // first one's workflow version.
  workflows::workflow_ptr wf;
  if (first != nullptr && svc.workflows)
    wf = svc.workflows->find_version(info_of(self).tenant->id, first->workflow,
                                     first->version);
  if (first != nullptr && !wf && !source.empty()) {
    auto loaded = workflows::load_string(source, file);
    wf = loaded.value;
    if (!wf)
      engine::log_error("call", sid_of(self)
                                  + ": the stored version of workflow "
                                  + first->workflow + " does not load: "
                                  + workflows::to_string(loaded.diagnostics));
  }
  st.stored_wf = wf;
  auto state = run != nullptr ? workflows::run_state::from_json(run->state)
                              : std::nullopt;
  if (run != nullptr && wf && state) {
    incoming_run in;
    in.wf = wf;
    keep_state(self, in, std::move(*state));
    keep_run(in, *run);
    *in.stored_id = run->id;
    in.waiting = true;
    st.incoming = std::move(in);
  } else {
    st.incoming_absent = true;
  }
  auto held = std::move(st.held);
  st.held.clear();
  for (auto& [ev, reply] : held)
    voice_event(self, ev, std::move(reply));
  maybe_finish(self);
}

void on_decided(state_t* self, claim_result result,
                const std::vector<std::int64_t>& ids, const segments& started) {
  auto& st = self->state;
  // A failed claim that carried the call's update failed that write too:
  // the record lives only here, so this actor stays (as after any failed
  // write; the retried claim writes it).
  if (st.claim_persists && result == claim_result::failed)
    st.write_failed = true;
  st.claim_persists = false;
  if (result == claim_result::won) {
    std::vector<engine::message_record> stored;
    for (const auto& seg : started) {
      auto more = stored_messages(*seg, ids);
      stored.insert(stored.end(), std::make_move_iterator(more.begin()),
                    std::make_move_iterator(more.end()));
    }
    if (!stored.empty())
      self->send(st.shared->outbox, send_atom_v, std::move(stored));
    for (const auto& seg : started) {
      if (seg->run.status != engine::run_status::waiting)
        continue;
      if (seg->http)
        self->send(st.shared->runs, adopt_atom_v, seg->run, *seg->http);
      else
        self->send(st.shared->runs, adopt_atom_v, seg->run);
    }
  }
  if (result == claim_result::lost && st.incoming && !st.pending_reply
      && st.incoming->state.waiting_for != "http") {
    // Another process decided the call, so the callbacks go there too: this
    // copy of the run would only keep the actor alive. A late callback here
    // loads the run from the store.
    st.incoming.reset();
  }
  apply(self, st.fsm->on_decided(result, now_of(self)));
}

} // namespace

stored_incoming load_stored_incoming(engine::store& db, const services& svc,
                                     const std::string& tenant_id,
                                     const std::string& sid) {
  stored_incoming out;
  out.runs = db.runs_for_call(sid);
  for (const auto& r : out.runs)
    if (r.trigger == "call.incoming") {
      if (!svc.workflows
          || !svc.workflows->find_version(tenant_id, r.workflow, r.version))
        if (auto v = db.find_workflow_version(tenant_id, r.workflow,
                                              r.version)) {
          out.file = std::move(v->file);
          out.source = std::move(v->source);
        }
      break;
    }
  return out;
}

caf::behavior call_actor(state_t* self, engine::call_record record,
                         call_shared_ptr shared, caf::actor tenant,
                         bool created,
                         std::shared_ptr<const stored_incoming> preloaded) {
  auto& st = self->state;
  st.fsm.emplace(std::move(record), shared->svc->timing);
  st.shared = std::move(shared);
  st.tenant = std::move(tenant);
  st.created = created;
  apply(self, st.fsm->resume(now_of(self)));
  if (preloaded && !created)
    on_loaded(self, preloaded->runs, preloaded->file, preloaded->source);
  // A call loaded for its timer or recovered after a restart may be
  // quiescent at once (the tenant ignores this if it has events on the way).
  maybe_passivate(self);
  return {
    [self](event_atom, const engine::inbound_event& ev,
           std::shared_ptr<engine::voice_reply>& reply) {
      ++self->state.handled;
      on_event(self, ev, reply);
      maybe_passivate(self);
    },
    [self](loaded_atom, const std::vector<engine::run_record>& found,
           const std::string& file, const std::string& source) {
      on_loaded(self, found, file, source);
      maybe_passivate(self);
    },
    [self](http_atom, std::int64_t,
           const engine::outbound_http_response& resp) {
      if (!self->state.incoming)
        return;
      resume_incoming(self, http_event(resp), nullptr);
      maybe_passivate(self);
    },
    [self](fallback_atom) {
      ++self->state.handled;
      apply(self, self->state.fsm->on_fallback_due(now_of(self)));
      maybe_passivate(self);
    },
    [self](report_atom, const engine::call_report& report) {
      apply(self, self->state.fsm->on_carrier_report(report, now_of(self)));
      maybe_passivate(self);
    },
    [self](decided_atom, claim_result result,
           const std::vector<std::int64_t>& ids, const segments& started) {
      on_decided(self, result, ids, started);
      maybe_passivate(self);
    },
    [self](written_atom, bool ok, bool row) {
      auto& st = self->state;
      if (st.unacked_writes > 0)
        --st.unacked_writes;
      if (row && st.row_unacked > 0)
        --st.row_unacked;
      if (!ok)
        st.write_failed = true;
      maybe_finish(self);
      maybe_passivate(self);
    },
    [self](release_atom) { self->quit(); },
  };
}

} // namespace ringback::actors
