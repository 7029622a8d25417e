#include "ringback/actors/conversations_actor.hpp"

#include "ringback/engine/conversation.hpp"
#include "ringback/actors/wake.hpp"
#include "ringback/engine/log.hpp"
#include "ringback/workflows/contexts.hpp"

#include <memory>
#include <optional>

namespace ringback::actors {

namespace {

using engine::conversation_record;
using parent_t = caf::stateful_actor<conversations_state>;
using conv_t = caf::stateful_actor<conversation_state>;
using job_kind = conversation_job::kind;

/// Posts a conversation's store job ahead of the store's queue
/// (`post_ahead`): a customer's reply relayed to the owner, the owner's
/// answer and the AI's turn do not wait behind a backlog of bookkeeping.
/// Their order against queued writes does not matter: a conversation's
/// writes are compare-and-set on its `seq` (as between processes), and what
/// they read (the conversation a text-back opened, the owner's focus) was
/// committed before the event that asks for it. The deadline scan stays in
/// the queue.
void post_ahead(const services& svc, engine::store_queue::work w,
                engine::store_queue::done d) {
  svc.store->post_ahead(std::move(w), std::move(d));
}

/// How many messages of the transcript an AI turn and a summary read.
constexpr std::size_t transcript_window = 30;

/// What writing one transition did (filled on the store thread).
struct write_result {
  bool won = false;
  /// The job's text had its part stored already (a text handed on again
  /// after a restart, or by another process): nothing was written.
  bool stored_before = false;
  std::string error;
  /// The record now stored: the transition's when it won, the other
  /// writer's when it lost.
  std::optional<conversation_record> rec;
  engine::conversation_effects fx;
  /// The texts it stored, for the outbox.
  std::vector<engine::message_record> messages;
  /// For an AI turn: the transcript it reads.
  std::vector<engine::conversation_message> transcript;
};

/// Stores an outbound text of a conversation through the gate; returns it
/// as stored (its id assigned), for the outbox.
engine::message_record
queue_text(engine::store& db, const tenant_info& info, const services& svc,
           const conversation_record& c, std::string to, std::string body,
           engine::send_kind kind, const std::string& purpose,
           engine::epoch_ms now) {
  engine::message_record m;
  m.tenant_id = c.tenant_id;
  m.purpose = purpose;
  m.from = c.business_number.empty() && !info.tenant->numbers.empty()
             ? info.tenant->numbers.front().number
             : c.business_number;
  m.to = std::move(to);
  m.body = std::move(body);
  m.kind = kind;
  m.urgent = true;
  m.node_id = svc.node_id;
  m.created_at = m.updated_at = now;
  gate_message(db, m, info, svc.numbers.get(), now);
  claim_in_writing(m, now);
  m.id = db.insert_message(m);
  return m;
}

/// Writes a transition with everything it says, in the caller's transaction.
void write_transition(engine::store& db, const tenant_info& info,
                      const services& svc, const conversation_record& before,
                      const engine::conversation_step& st,
                      const conversation_job& job, engine::epoch_ms now,
                      write_result& out) {
  out = write_result{};
  // A text's part is stored once: its bit is cleared first (on PostgreSQL
  // that locks the text's row until the commit, so a second process
  // handling the same text waits here and then finds it done).
  const bool from_text = !job.message_sid.empty();
  auto claim = engine::inbound_claim::unknown;
  if (from_text) {
    claim = db.consume_inbound(job.message_sid, engine::inbound_conversations);
    if (claim == engine::inbound_claim::done_before) {
      out.stored_before = true;
      return;
    }
  }
  if (!db.update_conversation(st.next, before.seq)) {
    if (claim == engine::inbound_claim::claimed)
      db.restore_inbound(job.message_sid, engine::inbound_conversations);
    out.rec = db.find_conversation(before.id);
    return;
  }
  out.won = true;
  out.rec = st.next;
  out.fx = st.fx;
  const auto& c = st.next;
  const auto& tenant = *info.tenant;
  std::vector<engine::conversation_message> said;
  auto say = [&](const char* author, const std::string& body,
                 std::int64_t message_id, const std::string& sid) {
    engine::conversation_message m;
    m.conversation_id = c.id;
    m.tenant_id = c.tenant_id;
    m.author = author;
    m.body = body;
    m.message_id = message_id;
    m.message_sid = sid;
    m.at = now;
    said.push_back(std::move(m));
  };
  if (job.what == job_kind::customer)
    say("customer", job.body, 0, job.message_sid);
  if (st.fx.send_owner_text) {
    out.messages.push_back(queue_text(db, info, svc, c, c.customer, job.body,
                                      engine::send_kind::relayed,
                                      "conversation/owner", now));
    say("owner", job.body, out.messages.back().id, {});
  }
  if (st.fx.relay_to_owner && !tenant.owner_phone.empty()) {
    out.messages.push_back(queue_text(
      db, info, svc, c, tenant.owner_phone,
      engine::format_relay(c.ref, c.customer, job.body),
      engine::send_kind::notification, "conversation/relay", now));
    db.set_owner_focus(c.tenant_id, c.id, now);
  }
  if (!said.empty())
    db.insert_conversation_messages(said);
  if (st.fx.summary_to_owner || st.fx.ai_turn)
    out.transcript = db.conversation_messages(c.id, transcript_window);
  if (st.fx.summary_to_owner && !tenant.owner_phone.empty())
    out.messages.push_back(queue_text(
      db, info, svc, c, tenant.owner_phone,
      engine::format_summary(c, out.transcript, now),
      engine::send_kind::notification, "conversation/summary", now));
  for (const auto& kind : st.fx.events) {
    engine::conversation_event e;
    e.conversation_id = c.id;
    e.tenant_id = c.tenant_id;
    e.kind = kind;
    e.window_seq = c.window_seq;
    e.at = now;
    if (kind == "ai_won" || kind == "window_opened")
      e.detail = "window " + std::to_string(c.window_seq);
    db.insert_conversation_event(e);
  }
}

/// The variables of a `conversation.owner_timeout` run.
workflows::context ai_turn_vars(const tenant_info& info,
                                const conversation_record& c,
                                const std::vector<engine::conversation_message>& t,
                                bool takeover) {
  workflows::context vars;
  workflows::add_tenant_variables(*info.tenant, c.business_number, vars);
  std::string transcript;
  std::string last;
  for (const auto& m : t) {
    if (m.at < c.opened_at)
      continue;
    transcript += m.author + ": " + m.body + "\n";
    if (m.author == "customer")
      last = m.body;
  }
  vars["conversation.id"] = workflows::value{static_cast<std::int64_t>(c.ref)};
  vars["conversation.customer"] = workflows::value{c.customer};
  vars["conversation.last_message"] = workflows::value{last};
  vars["conversation.transcript"] = workflows::value{transcript};
  vars["conversation.takeover"] = workflows::value{takeover};
  vars["contact.phone"] = workflows::value{c.customer};
  return vars;
}

// -- one conversation ---------------------------------------------------------

/// Drops the job at the head of the queue.
void pop_job(conversation_state& st) {
  st.jobs.erase(st.jobs.begin());
}

void next_job(conv_t* self) {
  auto& st = self->state;
  const auto& info = st.shared->info;
  const auto& svc = st.shared->svc;
  const auto& parent = st.shared->parent;
  if (st.busy)
    return;
  if (st.jobs.empty()) {
    if (st.releasing) {
      self->quit();
      return;
    }
    self->send(parent, idle_atom_v, st.rec.id);
    return;
  }
  const auto& job = st.jobs.front();
  const auto& settings = info->tenant->conversations;
  auto now = svc->clock->now();
  engine::conversation_step step;
  switch (job.what) {
    case job_kind::customer:
      step = engine::on_customer_message(st.rec, settings, now);
      break;
    case job_kind::owner:
      step = engine::on_owner_message(st.rec, settings, now);
      break;
    case job_kind::due:
      step = engine::on_due(st.rec, settings, now);
      break;
  }
  if (!step.changed) {
    if (!job.message_sid.empty())
      post_ahead(
        *svc,
        [sid = job.message_sid](engine::store& db) {
          db.consume_inbound(sid, engine::inbound_conversations);
        },
        [](const std::string&) {});
    pop_job(st);
    next_job(self);
    return;
  }
  st.busy = true;
  auto res = std::make_shared<write_result>();
  auto before = st.rec;
  auto me = caf::actor{self};
  post_ahead(
    *svc,
    [res, info, svc, before, step, job, now](engine::store& db) {
      write_transition(db, *info, *svc, before, step, job, now, *res);
    },
    [me, res](const std::string& error) {
      if (!error.empty()) {
        res->won = false;
        res->error = error;
      }
      caf::anon_send(me, written_atom_v, res);
    });
}

/// Every handler captures `self` alone (what it needs is in the state's
/// shared part): a closure per handler copying the services, the tenant and
/// three actor handles is per-conversation memory.
caf::behavior conversation_actor(
  conv_t* self, std::shared_ptr<const conversation_shared> shared,
  conversation_record rec) {
  self->state.shared = std::move(shared);
  self->state.rec = std::move(rec);
  return {
    [self](job_atom, conversation_job& job) {
      self->state.jobs.push_back(std::move(job));
      next_job(self);
    },
    [self](written_atom, const std::shared_ptr<write_result>& res) {
      auto& st = self->state;
      const auto& info = st.shared->info;
      const auto& svc = st.shared->svc;
      const auto& parent = st.shared->parent;
      const auto& runs = st.shared->runs;
      const auto& outbox = st.shared->outbox;
      st.busy = false;
      const auto id = st.rec.id;
      if (!res->error.empty()) {
        if (++st.retries > 3) {
          engine::log_error("conversation",
                            "#" + std::to_string(st.rec.ref) + ": dropping an "
                              "event after the store failed 4 times: "
                              + res->error);
          pop_job(st);
          st.retries = 0;
          next_job(self);
          return;
        }
        // Try the same job again after a pause: the nudge below (a due job
        // that is not due changes nothing) runs the queue again.
        self->delayed_send(self, svc->retry.base, job_atom_v,
                           conversation_job{job_kind::due, {}, {}, 0});
        return;
      }
      if (res->stored_before) {
        engine::log_info("conversation", "#" + std::to_string(st.rec.ref)
                                           + ": text "
                                           + st.jobs.front().message_sid
                                           + " was handled before, skipped");
        st.retries = 0;
        pop_job(st);
        next_job(self);
        return;
      }
      if (!res->won) {
        if (res->rec)
          st.rec = *res->rec;
        if (++st.retries > 5) {
          engine::log_error("conversation", "#" + std::to_string(st.rec.ref)
                                              + ": no progress after 6 "
                                                "conflicting writes");
          pop_job(st);
          st.retries = 0;
        }
        self->send(parent, written_atom_v, id, false);
        next_job(self);
        return;
      }
      st.retries = 0;
      st.rec = *res->rec;
      pop_job(st);
      if (!res->messages.empty())
        self->send(outbox, send_atom_v, std::move(res->messages));
      for (const auto& e : res->fx.events) {
        svc->metrics->conversation_event(st.rec.tenant_id, e);
        engine::log_info("conversation", st.rec.tenant_id + " #"
                                           + std::to_string(st.rec.ref) + " "
                                           + st.rec.customer + ": " + e);
      }
      if (res->fx.ai_turn) {
        self->send(parent, written_atom_v, id, true);
        self->send(runs, start_atom_v,
                   std::string{"conversation.owner_timeout"},
                   ai_turn_vars(*info, st.rec, res->transcript,
                                res->fx.takeover),
                   std::string{});
      }
      self->send(parent, arm_atom_v, id, engine::next_deadline(st.rec));
      next_job(self);
    },
    [self](release_atom) {
      self->state.releasing = true;
      next_job(self);
    },
  };
}

// -- the tenant's conversations ------------------------------------------------


std::string key_of(std::int64_t id) {
  return "#" + std::to_string(id);
}

/// Hands `job` to the live actor of conversation `id`.
void forward(parent_t* self, std::int64_t id, conversation_job job) {
  auto& st = self->state;
  st.timers.cancel("p:" + std::to_string(id));
  self->send(st.live.at(id).actor, job_atom_v, std::move(job));
}

class conversations_host {
public:
  conversations_host(parent_t* self, tenant_info_ptr info, services_ptr svc,
                     caf::actor runs, caf::actor outbox)
    : self_(self), info_(std::move(info)), svc_(std::move(svc)),
      runs_(std::move(runs)), outbox_(std::move(outbox)),
      shared_(std::make_shared<const conversation_shared>(conversation_shared{
        info_, svc_, caf::actor{self_}, runs_, outbox_})) {
    // nop
  }

  /// A live actor for `rec` (spawned if needed), then its waiting jobs.
  void adopt(const conversation_record& rec, const std::string& key) {
    auto& st = self_->state;
    auto jobs = std::move(st.loading[key]);
    st.loading.erase(key);
    if (st.live.count(rec.id) == 0) {
      auto child = self_->spawn(conversation_actor, shared_, rec);
      self_->monitor(child);
      st.by_actor.emplace(child.id(), rec.id);
      st.live.emplace(rec.id, live_conversation{child, rec.customer});
      st.by_customer[rec.customer] = rec.id;
      ++st.stats.spawned;
      svc_->metrics->conversation_actors(info_->tenant->id, st.live.size());
    }
    for (auto& j : jobs)
      forward(self_, rec.id, std::move(j));
  }

  void customer(const engine::inbound_event& ev) {
    conversation_job job{job_kind::customer, ev.body, ev.sid,
                         ev.raw.received_at};
    auto& st = self_->state;
    if (auto i = st.by_customer.find(ev.from);
        i != st.by_customer.end() && st.live.count(i->second) != 0) {
      forward(self_, i->second, std::move(job));
      return;
    }
    auto& waiting = st.loading[ev.from];
    waiting.push_back(std::move(job));
    if (waiting.size() > 1)
      return; // already loading
    auto found = std::make_shared<std::optional<conversation_record>>();
    auto tenant_id = info_->tenant->id;
    auto from = ev.from;
    auto to = ev.to;
    auto now = svc_->clock->now();
    auto me = caf::actor{self_};
    post_ahead(
      *svc_,
      [found, tenant_id, from, to, now](engine::store& db) {
        *found = db.find_or_create_conversation(tenant_id, from, to, now);
      },
      [me, found, from](const std::string& error) {
        if (!error.empty())
          engine::log_error("conversation", "opening the conversation with "
                                              + from + " failed: " + error);
        caf::anon_send(me, loaded_atom_v, from, *found);
      });
  }

  /// The owner's text: to the conversation it names, or the one the owner
  /// last heard from; a problem is explained to the owner.
  void owner(const engine::inbound_event& ev) {
    auto reply = engine::parse_owner_reply(ev.body);
    auto sid = ev.sid;
    auto found = std::make_shared<std::optional<conversation_record>>();
    auto notice = std::make_shared<std::vector<engine::message_record>>();
    auto info = info_;
    auto svc = svc_;
    auto now = svc_->clock->now();
    auto me = caf::actor{self_};
    auto outbox = outbox_;
    auto business = ev.to;
    post_ahead(
      *svc_,
      [found, notice, info, svc, reply, now, business, sid](engine::store& db) {
        found->reset();
        notice->clear();
        const auto& tenant_id = info->tenant->id;
        if (reply.ref) {
          *found = db.find_conversation_by_ref(tenant_id, *reply.ref);
        } else if (auto focus = db.owner_focus(tenant_id)) {
          *found = db.find_conversation(*focus);
        }
        std::string problem;
        if (!*found)
          problem = reply.ref ? "No conversation #" + std::to_string(*reply.ref)
                                  + ". Start your text with the number shown "
                                    "in brackets, e.g. #12 on my way."
                              : "Which customer? Start your text with the "
                                "number shown in brackets, e.g. #12 on my way.";
        else if (reply.text.empty())
          problem = "Nothing to send to #" + std::to_string((*found)->ref)
                    + ": write your text after the number.";
        if (problem.empty())
          return; // the conversation's transition stores the text's part
        found->reset();
        if (db.consume_inbound(sid, engine::inbound_conversations)
            == engine::inbound_claim::done_before)
          return; // explained to the owner before
        conversation_record stand_in;
        stand_in.tenant_id = tenant_id;
        stand_in.business_number = business;
        notice->push_back(queue_text(db, *info, *svc, stand_in,
                                     info->tenant->owner_phone, problem,
                                     engine::send_kind::notification,
                                     "conversation/owner_help", now));
      },
      [me, found, notice, outbox, text = reply.text,
       sid](const std::string& error) {
        if (!error.empty()) {
          engine::log_error("conversation",
                            "routing the owner's reply failed: " + error);
          return;
        }
        if (!notice->empty())
          caf::anon_send(outbox, send_atom_v, *notice);
        if (*found)
          caf::anon_send(me, job_atom_v, **found, text, sid);
      });
  }

  void owner_job(const conversation_record& rec, std::string text,
                 std::string sid) {
    auto& st = self_->state;
    conversation_job job{job_kind::owner, std::move(text), std::move(sid),
                         svc_->clock->now()};
    if (st.live.count(rec.id) == 0) {
      st.loading[key_of(rec.id)].push_back(std::move(job));
      adopt(rec, key_of(rec.id));
      return;
    }
    forward(self_, rec.id, std::move(job));
  }

  /// A conversation's deadline: to its actor, loaded if it was passivated.
  void due(std::int64_t id) {
    auto& st = self_->state;
    conversation_job job{job_kind::due, {}, {}, svc_->clock->now()};
    if (st.live.count(id) != 0) {
      forward(self_, id, std::move(job));
      return;
    }
    auto key = key_of(id);
    auto& waiting = st.loading[key];
    waiting.push_back(std::move(job));
    if (waiting.size() > 1)
      return;
    auto found = std::make_shared<std::optional<conversation_record>>();
    auto me = caf::actor{self_};
    post_ahead(
      *svc_,
      [found, id](engine::store& db) { *found = db.find_conversation(id); },
      [me, found, key](const std::string& error) {
        if (!error.empty())
          engine::log_error("conversation", "loading a conversation failed: "
                                              + error);
        caf::anon_send(me, loaded_atom_v, key, *found);
      });
  }

  void arm(std::int64_t id, engine::epoch_ms at) {
    auto& st = self_->state;
    auto key = "c:" + std::to_string(id);
    // Far deadlines are left to the periodic scan: a passivated conversation
    // holds no memory here until its deadline comes near.
    auto horizon = svc_->clock->now()
                   + 2 * std::chrono::milliseconds{conversation_timing::scan_interval}
                           .count();
    if (at == 0 || at > horizon) {
      st.timers.cancel(key);
      return;
    }
    st.timers.arm(key, at);
    schedule_wake(self_, svc_);
  }

  void idle(std::int64_t id) {
    auto& st = self_->state;
    if (st.live.count(id) == 0)
      return;
    st.timers.arm("p:" + std::to_string(id),
                  svc_->clock->now()
                    + std::chrono::milliseconds{conversation_timing::passivate_after}
                        .count());
    schedule_wake(self_, svc_);
  }

  void wake() {
    auto& st = self_->state;
    st.wake_at = 0;
    auto now = svc_->clock->now();
    for (const auto& key : st.timers.pop_due(now)) {
      auto id = std::stoll(key.substr(2));
      if (key[0] == 'c') {
        due(id);
        continue;
      }
      // Passivation: let an idle actor go; its state is in the store.
      auto i = st.live.find(id);
      if (i == st.live.end())
        continue;
      self_->send(i->second.actor, release_atom_v);
      drop(id);
      ++st.stats.passivated;
    }
    schedule_wake(self_, svc_);
  }

  /// Forgets the live actor of `id` (gone, or let go: then it quits
  /// normally and sends no down message).
  void drop(std::int64_t id) {
    auto& st = self_->state;
    auto i = st.live.find(id);
    if (i == st.live.end())
      return;
    st.by_actor.erase(i->second.actor.id());
    self_->demonitor(i->second.actor);
    if (auto j = st.by_customer.find(i->second.customer);
        j != st.by_customer.end() && j->second == id)
      st.by_customer.erase(j);
    st.live.erase(i);
    svc_->metrics->conversation_actors(info_->tenant->id, st.live.size());
  }

  void scan() {
    auto found = std::make_shared<std::vector<conversation_record>>();
    auto horizon = svc_->clock->now()
                   + std::chrono::milliseconds{conversation_timing::scan_interval}
                       .count();
    auto tenant_id = info_->tenant->id;
    auto me = caf::actor{self_};
    svc_->store->post(
      [found, horizon, tenant_id](engine::store& db) {
        *found = db.due_conversations(tenant_id, horizon, 10'000);
      },
      [me, found](const std::string& error) {
        if (!error.empty()) {
          engine::log_error("conversation", "scanning for deadlines failed: "
                                              + error);
          return;
        }
        for (const auto& c : *found)
          caf::anon_send(me, arm_atom_v, c.id, engine::next_deadline(c));
      });
    self_->delayed_send(self_, conversation_timing::scan_interval, scan_atom_v);
  }

  conversations_stats stats() const {
    auto s = self_->state.stats;
    s.live = self_->state.live.size();
    s.timers = self_->state.timers.size();
    s.loading = self_->state.loading.size();
    return s;
  }

private:
  parent_t* self_;
  tenant_info_ptr info_;
  services_ptr svc_;
  caf::actor runs_;
  caf::actor outbox_;
  /// What the conversation actors share (one per tenant).
  std::shared_ptr<const conversation_shared> shared_;
};

} // namespace

} // namespace ringback::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<ringback::actors::write_result>)

namespace ringback::actors {

caf::behavior conversations_actor(parent_t* self, tenant_info_ptr info,
                                  services_ptr svc, caf::actor runs,
                                  caf::actor outbox) {
  auto host = std::make_shared<conversations_host>(self, info, svc,
                                                   std::move(runs),
                                                   std::move(outbox));
  self->set_down_handler([self, host](const caf::down_msg& dm) {
    const auto& by_actor = self->state.by_actor;
    if (auto i = by_actor.find(dm.source.id()); i != by_actor.end())
      host->drop(i->second);
  });
  const auto owner_phone = info->tenant->owner_phone;
  return {
    [=](event_atom, const engine::inbound_event& ev,
        const std::shared_ptr<engine::voice_reply>&) {
      if (!owner_phone.empty() && ev.from == owner_phone)
        host->owner(ev);
      else
        host->customer(ev);
    },
    [=](loaded_atom, const std::string& key,
        const std::optional<conversation_record>& rec) {
      if (!rec) {
        self->state.loading.erase(key);
        return;
      }
      host->adopt(*rec, key);
    },
    [=](job_atom, const conversation_record& rec, std::string& text,
        std::string& sid) {
      host->owner_job(rec, std::move(text), std::move(sid));
    },
    [=](arm_atom, std::int64_t id, engine::epoch_ms at) { host->arm(id, at); },
    [=](idle_atom, std::int64_t id) { host->idle(id); },
    [=](written_atom, std::int64_t, bool ai_turn) {
      if (ai_turn)
        ++self->state.stats.ai_turns;
      else
        ++self->state.stats.lost;
    },
    [=](wake_atom) { host->wake(); },
    [=](scan_atom) { host->scan(); },
    [=](recover_atom) {
      // The first scan starts the periodic ones.
      if (!self->state.scanning) {
        self->state.scanning = true;
        self->send(self, scan_atom_v);
      }
    },
    [=](stats_atom) { return host->stats(); },
  };
}

} // namespace ringback::actors
