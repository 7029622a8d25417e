#include "ringback/app/service.hpp"

#include "ringback/actors/event_sink.hpp"
#include "ringback/actors/messages.hpp"
#include "ringback/actors/outbox_actor.hpp"
#include "ringback/actors/tenant_actor.hpp"
#include "ringback/adapters/http/http_server.hpp"
#include "ringback/adapters/ai/openai_responder.hpp"
#include "ringback/adapters/kv/kv_factory.hpp"
#include "ringback/adapters/metrics/prometheus_metrics.hpp"
#include "ringback/adapters/store/make_store.hpp"
#include "ringback/adapters/twilio/rest_client.hpp"
#include "ringback/adapters/webhooks/twilio_webhooks.hpp"
#include "ringback/engine/executors.hpp"
#include "ringback/engine/log.hpp"
#include "ringback/adapters/integration/http_fetcher.hpp"
#include "ringback/workflows/registry.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <iostream>
#include <mutex>
#include <thread>

namespace ringback::app {

namespace {

/// Redis round trips block a worker; the in-memory kv only takes a mutex,
/// and its jobs run on the poster's thread (see `inline_kv`).
constexpr std::size_t redis_kv_threads = 2;

constexpr std::size_t http_threads = 4;
constexpr std::size_t ai_threads = 4;

/// The AI of each tenant, for one worker thread: an OpenAI-compatible
/// client for tenants whose `ai.provider` is openai (each with this worker's
/// HTTP client), the offline responder for the others.
class tenant_ai final : public engine::ai_responder {
public:
  /// Nullopt and an error naming the tenant for a bad `ai:` setting.
  static std::unique_ptr<tenant_ai>
  make(const std::vector<engine::tenant>& tenants,
       const adapters::integration::http_fetcher_factory& fetchers,
       std::string* error) {
    auto out = std::unique_ptr<tenant_ai>(new tenant_ai);
    out->fetcher_ = fetchers();
    for (const auto& t : tenants) {
      if (t.ai.provider != "openai")
        continue;
      adapters::ai::openai_settings o;
      o.base_url = t.ai.base_url;
      o.model = t.ai.model;
      o.api_key = t.ai.api_key;
      o.timeout = t.ai.timeout;
      o.max_attempts = t.ai.max_attempts;
      o.usd_per_1k_prompt = t.ai.usd_per_1k_prompt;
      o.usd_per_1k_completion = t.ai.usd_per_1k_completion;
      auto r = adapters::ai::make_openai_responder(o, *out->fetcher_);
      if (!r) {
        if (error != nullptr)
          *error = "tenant " + t.id + ": ai: " + r.error;
        return nullptr;
      }
      out->by_tenant_.emplace(t.id, std::move(r.value));
    }
    return out;
  }

  engine::ai_reply respond(const engine::ai_request& req) override {
    auto i = by_tenant_.find(req.tenant_id);
    if (i == by_tenant_.end())
      return engine::offline_reply(req);
    return i->second->respond(req);
  }

private:
  tenant_ai() = default;

  std::unique_ptr<engine::http_fetcher> fetcher_;
  std::unordered_map<std::string, std::unique_ptr<adapters::ai::openai_responder>>
    by_tenant_;
};

/// How often the workflows folder is checked for changes.
constexpr std::chrono::seconds watch_interval{1};

/// The actors' view of the workflow registry.
class registry_source final : public actors::workflow_source {
public:
  explicit registry_source(const workflows::workflow_registry& r) : reg_(r) {
    // nop
  }

  std::vector<workflows::workflow_ptr>
  for_trigger(std::string_view tenant_id,
              std::string_view trigger) const override {
    return reg_.current()->for_trigger(tenant_id, trigger);
  }

  workflows::workflow_ptr find_version(std::string_view tenant_id,
                                       std::string_view name,
                                       std::string_view version) const override {
    return reg_.find_version(tenant_id, name, version);
  }

private:
  const workflows::workflow_registry& reg_;
};

void log_registry(std::string_view level, std::string_view line) {
  if (level == "error")
    engine::log_error("workflows", line);
  else if (level == "warn" || level == "warning")
    engine::log_warn("workflows", line);
  else
    engine::log_info("workflows", line);
}

/// Answers /readyz once both the store and the kv answered a ping.
struct readiness {
  std::shared_ptr<adapters::reply_slot> slot;
  std::mutex mtx;
  int pending = 2;
  std::string problems;

  void report(const std::string& what, bool ok) {
    std::lock_guard<std::mutex> guard{mtx};
    if (!ok)
      problems += what + " unreachable\n";
    if (--pending > 0)
      return;
    if (problems.empty())
      slot->reply(adapters::http_response::text(200, "ready\n"));
    else
      slot->reply(adapters::http_response::text(503, problems));
  }
};

} // namespace

struct service::impl {
  explicit impl(config c) : cfg(std::move(c)) {
    // nop
  }

  config cfg;
  engine::system_clock clock;
  std::unique_ptr<workflows::workflow_registry> registry;
  std::unique_ptr<engine::worker_pool<engine::http_fetcher>> http_pool;
  std::unique_ptr<engine::worker_pool<engine::ai_responder>> ai_pool;
  std::unique_ptr<engine::store_executor> store;
  /// PostgreSQL: the urgent jobs' executor, on a connection of its own, and
  /// the queue that sends them there (`split_store_queue`); null otherwise.
  std::unique_ptr<engine::store_executor> urgent_store;
  std::unique_ptr<engine::split_store_queue> store_lanes;
  bool store_stopped = false;
  std::unique_ptr<adapters::kv_factory> kv_factory;
  /// The kv's jobs: a pool of Redis connections, or null with the
  /// in-memory kv, whose jobs run where they are posted (`kv_inline`).
  std::unique_ptr<engine::worker_pool<engine::kv>> kv;
  /// The in-memory kv (null with Redis): the callbacks' dedup on the HTTP
  /// threads, the other kv jobs through `kv_inline`. Declared before `sink`
  /// and `kv_inline`, which point to it.
  std::unique_ptr<engine::kv> inline_kv;
  std::unique_ptr<engine::inline_queue<engine::kv>> kv_inline;
  /// `kv` or `kv_inline`.
  engine::job_queue<engine::kv>* kv_jobs = nullptr;
  std::unique_ptr<engine::worker_pool<engine::carrier>> carrier;
  std::unique_ptr<caf::actor_system_config> actor_cfg;
  std::unique_ptr<caf::actor_system> system;
  caf::actor outbox;
  std::vector<caf::actor> tenants;
  std::unique_ptr<actors::actor_event_sink> sink;
  std::unique_ptr<adapters::twilio_webhooks> webhooks;
  std::unique_ptr<adapters::http_server> http;
  std::shared_ptr<engine::metrics> metrics;

  void route(const adapters::http_request& req,
             std::shared_ptr<adapters::reply_slot> slot) {
    if (adapters::twilio_webhooks::owns(req.path)) {
      webhooks->handle(req, std::move(slot));
      return;
    }
    if (req.path == "/healthz" || req.path == "/readyz") {
      if (req.method != "GET" && req.method != "HEAD") {
        auto r = adapters::http_response::text(405, "method not allowed: use GET\n");
        r.headers.push_back({"Allow", "GET"});
        slot->reply(std::move(r));
        return;
      }
      if (req.path == "/healthz") {
        slot->reply(adapters::http_response::text(200, "ok\n"));
        return;
      }
      auto r = std::make_shared<readiness>();
      r->slot = slot;
      slot->set_deadline(std::chrono::seconds{3},
                         adapters::http_response::text(503, "store or kv too slow\n"));
      store->post([r](engine::store& db) { r->report("store", db.ping()); },
                  [r](const std::string& error) {
                    if (!error.empty())
                      r->report("store", false);
                  });
      kv_jobs->post([r](engine::kv& k) {
        bool ok = false;
        try {
          ok = k.ping();
        } catch (const std::exception&) {
          ok = false;
        }
        r->report("kv", ok);
      });
      return;
    }
    if (req.path == "/metrics") {
      if (req.method != "GET" && req.method != "HEAD") {
        auto r = adapters::http_response::text(405, "method not allowed: use GET\n");
        r.headers.push_back({"Allow", "GET"});
        slot->reply(std::move(r));
        return;
      }
      metrics->store_activity("main", store->activity());
      if (urgent_store)
        metrics->store_activity("urgent", urgent_store->activity());
      auto r = adapters::http_response::text(200, metrics->render());
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      slot->reply(std::move(r));
      return;
    }
    slot->reply(adapters::http_response::text(404, "not found\n"));
  }
};

service::service(config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {
  // nop
}

service::~service() {
  stop();
}

std::optional<std::string> service::start() {
  auto& d = *impl_;
  const auto& cfg = d.cfg;
  // Workflows first: an invalid one stops the start with its diagnostics.
  std::vector<std::string> tenant_ids;
  for (const auto& t : cfg.tenants)
    tenant_ids.push_back(t.id);
  d.registry = std::make_unique<workflows::workflow_registry>(cfg.workflows,
                                                              tenant_ids);
  auto loaded = d.registry->load();
  if (!loaded.value) {
    std::string msg = "invalid workflows in " + cfg.workflows + ":\n";
    for (const auto& diag : loaded.diagnostics)
      msg += workflows::to_string(diag) + "\n";
    return msg;
  }
  for (const auto& t : cfg.tenants)
    if (loaded.value->for_trigger(t.id, "call.missed").empty())
      engine::log_warn("service", "tenant " + t.id
                                    + ": no workflow handles call.missed: "
                                      "missed calls will not be texted back");
  try {
    auto db = adapters::make_store(cfg.store, std::string{});
    db->migrate();
    db->begin();
    for (const auto& t : cfg.tenants)
      db->upsert_tenant(t);
    db->commit();
    // Batches of at most 128 jobs: an urgent job (the answer to an
    // incoming call) waits for the batch in progress, so its size bounds
    // that wait; 128 still turns a burst into few commits.
    d.store = std::make_unique<engine::store_executor>(std::move(db), 128);
    if (adapters::store_runs_concurrent_writers(cfg.store)) {
      // The urgent jobs on a connection of their own. Its linger (2 ms, the
      // default) gathers the inserts of calls arriving together into one
      // transaction: one per job cost PostgreSQL enough CPU to slow the
      // main connection (docs/benchmarks.md).
      d.urgent_store = std::make_unique<engine::store_executor>(
        adapters::make_store(cfg.store, std::string{}), 128);
      d.store_lanes = std::make_unique<engine::split_store_queue>(
        *d.store, *d.urgent_store);
    }
    d.kv_factory = std::make_unique<adapters::kv_factory>(cfg.kv);
    auto* factory = d.kv_factory.get();
    if (factory->is_memory()) {
      d.inline_kv = factory->make_kv();
      d.kv_inline
        = std::make_unique<engine::inline_queue<engine::kv>>(*d.inline_kv);
      d.kv_jobs = d.kv_inline.get();
    } else {
      d.kv = std::make_unique<engine::worker_pool<engine::kv>>(
        redis_kv_threads, [factory] { return factory->make_kv(); }, "rb.kv");
      d.kv_jobs = d.kv.get();
    }
  } catch (const std::exception& e) {
    return std::string{"cannot open the store or kv: "} + e.what();
  }
  auto fetchers = adapters::integration::make_http_fetcher_factory({});
  if (!fetchers)
    return "http client: " + fetchers.error;
  d.http_pool = std::make_unique<engine::worker_pool<engine::http_fetcher>>(
    http_threads, fetchers.factory, "rb.fetch");
  {
    std::string error;
    if (!tenant_ai::make(cfg.tenants, fetchers.factory, &error))
      return error; // checked once here; the workers make their own below
    auto tenants = cfg.tenants;
    auto factory = fetchers.factory;
    d.ai_pool = std::make_unique<engine::worker_pool<engine::ai_responder>>(
      ai_threads,
      [tenants, factory]() -> std::unique_ptr<engine::ai_responder> {
        return tenant_ai::make(tenants, factory, nullptr);
      },
      "rb.ai");
  }
  adapters::twilio::rest_client_options rest;
  rest.api_url = cfg.twilio.api_url;
  rest.account_sid = cfg.twilio.account_sid;
  rest.auth_token = cfg.twilio.auth_token;
  if (auto probe = adapters::twilio::twilio_rest_client::make(rest); !probe)
    return "twilio: " + probe.error;
  d.carrier = std::make_unique<engine::worker_pool<engine::carrier>>(
    static_cast<std::size_t>(cfg.twilio.connections),
    [rest]() -> std::unique_ptr<engine::carrier> {
      return adapters::twilio::twilio_rest_client::make(rest).value;
    },
    "rb.carrier");
  auto svc = std::make_shared<actors::services>();
  svc->store = d.store_lanes
                 ? static_cast<engine::store_queue*>(d.store_lanes.get())
                 : d.store.get();
  svc->kv = d.kv_jobs;
  svc->carrier = d.carrier.get();
  svc->clock = &d.clock;
  svc->workflows = std::make_shared<registry_source>(*d.registry);
  svc->http = d.http_pool.get();
  svc->ai = d.ai_pool.get();
  svc->node_id = cfg.node_id;
  svc->public_url = cfg.public_url;
  svc->numbers = std::make_shared<const actors::tenant_directory>(cfg.tenants);
  d.metrics = std::make_shared<adapters::prometheus_metrics>();
  svc->metrics = d.metrics;
  svc->timing.ring_timeout = cfg.calls.ring_timeout;
  svc->timing.fallback_grace = cfg.calls.fallback_grace;
  svc->timing.recheck_interval = cfg.calls.recheck_interval;
  svc->passivate_after = cfg.calls.passivate_after;
  d.actor_cfg = std::make_unique<caf::actor_system_config>();
  d.actor_cfg->set("logger.file-verbosity", caf::atom("quiet"));
  d.actor_cfg->set("logger.console-verbosity", caf::atom("quiet"));
  // CAF's default work-stealing workers poll between messages; ringback's
  // actors get many small, sparse messages, and a shared queue with a
  // condition variable used 2.5x less CPU for the same calls (see
  // docs/benchmarks.md).
  d.actor_cfg->set("scheduler.policy", caf::atom("sharing"));
  // CAF 0.17 starts max(cores, 4) workers; more workers than cores only
  // add thread switches (docs/benchmarks.md, "Where the time goes").
  d.actor_cfg->set("scheduler.max-threads",
                   static_cast<std::size_t>(
                     std::max(1u, std::thread::hardware_concurrency())));
  d.system = std::make_unique<caf::actor_system>(*d.actor_cfg);
  d.outbox = d.system->spawn(actors::outbox_actor, svc);
  std::unordered_map<std::string, caf::actor> by_id;
  for (const auto& t : cfg.tenants) {
    auto tenant = d.system->spawn(actors::tenant_actor,
                                  std::make_shared<const engine::tenant>(t), svc,
                                  d.outbox);
    d.tenants.push_back(tenant);
    by_id.emplace(t.id, tenant);
  }
  d.sink = std::make_unique<actors::actor_event_sink>(svc, std::move(by_id),
                                                      d.outbox);
  d.sink->set_inline_kv(d.inline_kv.get());
  adapters::twilio_webhooks::options wo;
  wo.public_url = cfg.public_url;
  wo.auth_token = cfg.twilio.auth_token;
  wo.answer_deadline = cfg.http.answer_deadline;
  wo.ring_timeout = std::chrono::duration_cast<std::chrono::seconds>(
    cfg.calls.ring_timeout);
  d.webhooks = std::make_unique<adapters::twilio_webhooks>(wo, cfg.tenants,
                                                           *d.sink, d.clock);
  // Resume what a previous run left unfinished before taking new requests.
  svc->started_at = d.clock.now();
  caf::anon_send(d.outbox, actors::recover_atom_v);
  for (const auto& t : d.tenants)
    caf::anon_send(t, actors::recover_atom_v);
  adapters::http_server_options ho;
  ho.host = cfg.listen.host;
  ho.port = cfg.listen.port;
  ho.threads = static_cast<std::size_t>(cfg.http.threads);
  ho.limits.max_body_bytes = cfg.http.max_body;
  ho.log = [](std::string_view line) { engine::log_warn("http", line); };
  auto* self = impl_.get();
  d.http = std::make_unique<adapters::http_server>(
    ho, [self](const adapters::http_request& req,
               std::shared_ptr<adapters::reply_slot> slot) {
      self->route(req, std::move(slot));
    });
  if (auto err = d.http->start())
    return "cannot listen on " + cfg.listen.host + ":"
           + std::to_string(cfg.listen.port) + ": " + *err;
  engine::log_info("service",
                   "listening on " + cfg.listen.host + ":"
                     + std::to_string(d.http->port()) + " as node "
                     + cfg.node_id + " (store " + adapters::redact_url(cfg.store)
                     + ", kv " + d.kv_factory->display_url() + ", "
                     + std::to_string(cfg.tenants.size()) + " tenant(s), "
                     + std::to_string(loaded.value->all().size())
                     + " workflow(s) from " + cfg.workflows + ")");
  d.registry->watch(watch_interval, log_registry);
  return std::nullopt;
}

std::uint16_t service::port() const {
  return impl_->http ? impl_->http->port() : 0;
}

bool service::reload_workflows() {
  auto& d = *impl_;
  if (!d.registry)
    return false;
  return d.registry->reload(log_registry);
}

void service::stop() {
  auto& d = *impl_;
  if (d.registry)
    d.registry->stop();
  // 1. No new requests.
  if (d.http) {
    d.http->stop();
    d.http.reset();
  }
  // 2. The actors stop taking messages.
  if (d.system) {
    for (const auto& t : d.tenants)
      caf::anon_send_exit(t, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(d.outbox, caf::exit_reason::user_shutdown);
    d.tenants.clear();
    d.outbox = nullptr;
  }
  // 3. Drain the blocking work while the actor system still exists: a job's
  //    completion may still address an actor (a message to a stopped actor
  //    is dropped; one to a destroyed system would not be safe). A send cut
  //    short here stays `sending` and is looked up at the next start.
  if (d.carrier)
    d.carrier->stop();
  if (d.http_pool)
    d.http_pool->stop();
  if (d.ai_pool)
    d.ai_pool->stop();
  if (d.kv)
    d.kv->stop();
  if (d.store && !d.store_stopped) {
    // The urgent jobs first: their answers may post more to the main one.
    if (d.urgent_store)
      d.urgent_store->stop();
    d.store->stop();
    d.store_stopped = true;
    engine::log_info("service", "store: " + std::to_string(d.store->jobs())
                                  + " jobs in "
                                  + std::to_string(d.store->commits())
                                  + " transactions");
    if (d.urgent_store)
      engine::log_info("service", "store, urgent connection: "
                                    + std::to_string(d.urgent_store->jobs())
                                    + " jobs in "
                                    + std::to_string(d.urgent_store->commits())
                                    + " transactions");
  }
  // 4. Then the actor system, which waits for every actor.
  d.system.reset();
}

int serve_main(const std::string& config_path) {
  auto loaded = load_config(config_path);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors)
      std::cerr << e << "\n";
    return 1;
  }
  // Wait for signals in this thread only: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  // A busy server logs thousands of info lines a second: one write per
  // 20 ms of them, not one per line (warnings and errors go out at once).
  engine::set_log_buffering(std::chrono::milliseconds{20});
  service svc{std::move(*loaded.value)};
  if (auto err = svc.start()) {
    std::cerr << "ringback: " << *err << "\n";
    return 1;
  }
  int sig = 0;
  for (;;) {
    sigwait(&signals, &sig);
    if (sig != SIGHUP)
      break;
    engine::log_info("service", "SIGHUP: reloading the workflows");
    svc.reload_workflows();
  }
  engine::log_info("service", std::string{"stopping on "} + strsignal(sig));
  svc.stop();
  engine::flush_log();
  return 0;
}

} // namespace ringback::app
