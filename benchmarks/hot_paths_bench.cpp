// Microbenchmarks of the webhook hot path: what one incoming call costs
// before any I/O. Run: build/benchmarks/ringback_bench
#include "ringback/adapters/store/make_store.hpp"
#include "ringback/adapters/store/pg_store.hpp"
#include "ringback/adapters/twilio/form.hpp"
#include "ringback/adapters/twilio/signature.hpp"
#include "ringback/adapters/webhooks/twilio_webhooks.hpp"
#include "ringback/engine/call_fsm.hpp"
#include "ringback/engine/executors.hpp"
#include "ringback/workflows/contexts.hpp"
#include "ringback/workflows/interpreter.hpp"
#include "ringback/workflows/loader.hpp"

#include <benchmark/benchmark.h>
#include <pqxx/pqxx>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using namespace ringback;
namespace tw = adapters::twilio;

const tw::form_fields voice_form{
  {"AccountSid", "AC00000000000000000000000000000000"},
  {"ApiVersion", "2010-04-01"},
  {"CallSid", "CA0123456789abcdef0123456789abcdef"},
  {"CallStatus", "ringing"},
  {"Called", "+15005550001"},
  {"Caller", "+15550100123"},
  {"Direction", "inbound"},
  {"From", "+15550100123"},
  {"To", "+15005550001"}};

const std::string url = "https://ringback.example.com/webhooks/twilio/voice";

void signature_check(benchmark::State& state) {
  auto sig = tw::sign("token", url, voice_form);
  for (auto _ : state)
    benchmark::DoNotOptimize(tw::validate("token", url, voice_form, sig));
}
BENCHMARK(signature_check);

void form_decoding(benchmark::State& state) {
  auto body = tw::encode_form(voice_form);
  for (auto _ : state)
    benchmark::DoNotOptimize(tw::decode_form(body));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(form_decoding);

void twiml_rendering(benchmark::State& state) {
  auto a = engine::voice_answer::dial({"+15005550002"}, std::chrono::seconds{20},
                                     "https://ringback.example.com/webhooks/twilio/voice/dial-result");
  for (auto _ : state)
    benchmark::DoNotOptimize(adapters::render_twiml(a));
}
BENCHMARK(twiml_rendering);

void call_state_machine(benchmark::State& state) {
  engine::call_timing timing;
  for (auto _ : state) {
    engine::call_fsm fsm{engine::call_fsm::begin("CA1", "acme", "+15550100",
                                                 "+15005550001", "+15005550002",
                                                 "node", 1000, timing),
                         timing};
    benchmark::DoNotOptimize(fsm.resume(1000));
    benchmark::DoNotOptimize(fsm.on_dial_result("no-answer", 0, 2000));
    benchmark::DoNotOptimize(
      fsm.on_decided(engine::call_fsm::claim_result::won, 2001));
  }
}
BENCHMARK(call_state_machine);

void missed_call_workflow(benchmark::State& state) {
  auto cat = workflows::load_directory(RINGBACK_SOURCE_DIR "/workflows");
  auto wfs = cat.for_trigger("call.missed");
  if (wfs.empty()) {
    state.SkipWithError("no call.missed workflow");
    return;
  }
  engine::tenant t;
  t.id = "acme";
  t.name = "Acme Plumbing";
  t.owner_phone = "+15005550002";
  auto ctx = workflows::call_context("CA1", "+15550100123", "+15005550001", t);
  for (auto _ : state)
    benchmark::DoNotOptimize(workflows::start(*wfs.front(), ctx, 0));
}
BENCHMARK(missed_call_workflow);

/// One group-commit batch of N call inserts on a fresh SQLite file.
void sqlite_write_batch(benchmark::State& state) {
  auto path = std::string{"/tmp/ringback-bench-"} + std::to_string(::getpid()) + ".db";
  std::remove(path.c_str());
  auto db = adapters::make_store("sqlite:" + path, "/");
  db->migrate();
  engine::call_timing timing;
  std::int64_t n = 0;
  for (auto _ : state) {
    db->begin();
    for (int i = 0; i < state.range(0); ++i) {
      auto rec = engine::call_fsm::begin("CA" + std::to_string(n++), "acme", "+1",
                                         "+2", "+3", "node", 1000, timing);
      db->insert_call(rec);
    }
    db->commit();
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  db.reset();
  for (auto suffix : {"", "-wal", "-shm"})
    std::remove((path + suffix).c_str());
}
BENCHMARK(sqlite_write_batch)->Arg(1)->Arg(64)->Arg(512)->Unit(benchmark::kMicrosecond);

/// The writes a missed call makes on PostgreSQL's main connection after its
/// insert, 16 calls per transaction as under load: the dial result's update,
/// the caller's and the owner's texts (insert, then the update with the
/// MessageSid under its advisory lock), the call's final update and three
/// webhook audit rows. Arg: 1 = libpq's pipeline mode (the default), 0 =
/// each statement on its own. Needs RINGBACK_TEST_PG (a server URL, e.g.
/// from scripts/test-services); a schema of its own is dropped at the end.
void pg_call_writes(benchmark::State& state) {
  const char* url
    = std::getenv("RINGBACK_TEST_PG"); // NOLINT(concurrency-mt-unsafe)
  if (url == nullptr || *url == '\0') {
    state.SkipWithError("RINGBACK_TEST_PG is not set");
    return;
  }
  adapters::pg_store_options o;
  o.url = url;
  o.schema = "bench_" + std::to_string(::getpid());
  o.pipeline = state.range(0) != 0;
  constexpr int calls_per_tx = 16;
  std::uint64_t trips = 0;
  {
    adapters::pg_store db{o};
    db.migrate();
    engine::call_timing timing;
    std::int64_t n = 0;
    for (auto _ : state) {
      state.PauseTiming();
      std::vector<engine::call_record> calls;
      db.begin();
      for (int i = 0; i < calls_per_tx; ++i) {
        calls.push_back(engine::call_fsm::begin("CA" + std::to_string(n++),
                                                "acme", "+1", "+2", "+3",
                                                "node", 1000, timing));
        db.insert_call(calls.back());
      }
      db.commit();
      auto before = db.statement_round_trips();
      state.ResumeTiming();
      db.begin();
      for (auto& c : calls) {
        c.dial_status = "no-answer";
        db.update_call(c);
        for (const char* to : {"+1", "+3"}) {
          engine::message_record m;
          m.tenant_id = "acme";
          m.call_sid = c.call_sid;
          m.purpose = "missed_call.text_back";
          m.from = "+2";
          m.to = to;
          m.body = "Sorry we missed your call!";
          m.node_id = "node";
          m.id = db.insert_message(m);
          m.message_sid = "SM" + std::to_string(m.id);
          m.state = engine::message_state::sent;
          db.update_message(m);
        }
        c.ended = true;
        db.update_call(c);
        for (const char* kind : {"voice", "dial", "status"})
          db.insert_webhook(
            {"acme", kind, c.call_sid, "/twilio", "body", "sig", false, 1});
      }
      db.commit();
      trips += db.statement_round_trips() - before;
    }
    state.SetItemsProcessed(state.iterations() * calls_per_tx);
    state.counters["round_trips_per_call"] = benchmark::Counter(
      static_cast<double>(trips)
      / static_cast<double>(state.iterations() * calls_per_tx));
  }
  try {
    pqxx::connection c{url};
    pqxx::nontransaction{c}.exec("DROP SCHEMA IF EXISTS " + o.schema
                                 + " CASCADE");
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}
BENCHMARK(pg_call_writes)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

} // namespace
