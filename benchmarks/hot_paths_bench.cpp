// Microbenchmarks of the webhook hot path: what one incoming call costs
// before any I/O. Run: build/benchmarks/ringback_bench
#include "ringback/adapters/store/make_store.hpp"
#include "ringback/adapters/twilio/form.hpp"
#include "ringback/adapters/twilio/signature.hpp"
#include "ringback/adapters/webhooks/twilio_webhooks.hpp"
#include "ringback/engine/call_fsm.hpp"
#include "ringback/engine/executors.hpp"
#include "ringback/workflows/contexts.hpp"
#include "ringback/workflows/interpreter.hpp"
#include "ringback/workflows/loader.hpp"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#include <unistd.h>

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

} // namespace
