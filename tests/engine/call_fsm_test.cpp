#include "ringback/engine/call_fsm.hpp"

#include <gtest/gtest.h>

namespace {

using namespace ringback::engine;
using namespace std::chrono_literals;
using claim = call_fsm::claim_result;

constexpr epoch_ms t0 = 1'700'000'000'000;

call_timing timing() {
  call_timing t;
  t.ring_timeout = 20s;
  t.fallback_grace = 10s;
  t.recheck_interval = 15s;
  t.max_checks = 3;
  return t;
}

call_fsm fresh() {
  return call_fsm{call_fsm::begin("CA1", "acme", "+15550100", "+15005550001",
                                  "+15005550002", "node-a", t0, timing()),
                  timing()};
}

call_report report(std::string parent, std::vector<call_leg> legs) {
  call_report r;
  r.status.ok = true;
  r.status.http_status = 200;
  r.parent = {"CA1", std::move(parent), 0};
  r.children = std::move(legs);
  return r;
}

TEST(CallFsm, BeginArmsTheFallbackAfterRingTimeoutPlusGrace) {
  auto rec = call_fsm::begin("CA1", "acme", "+1", "+2", "+3", "n", t0, timing());
  EXPECT_EQ(rec.phase, call_phase::ringing);
  EXPECT_EQ(rec.fallback_at, t0 + 30'000);
  EXPECT_EQ(rec.started_at, t0);
  EXPECT_EQ(rec.node_id, "n");
  auto fsm = call_fsm{rec, timing()};
  auto fx = fsm.resume(t0);
  EXPECT_TRUE(fx.arm_timer);
  EXPECT_FALSE(fx.decide);
  EXPECT_FALSE(fx.finished);
}

class DialStatus : public ::testing::TestWithParam<std::pair<const char*, call_phase>> {};

TEST_P(DialStatus, DecidesTheOutcomeOnce) {
  auto [status, phase] = GetParam();
  auto fsm = fresh();
  auto fx = fsm.on_dial_result(status, 0, t0 + 21'000);
  ASSERT_TRUE(fx.decide);
  EXPECT_EQ(*fx.decide, phase);
  EXPECT_TRUE(fx.persist);
  EXPECT_EQ(fsm.record().dial_status, status);
  auto pending = fsm.pending_outcome();
  EXPECT_EQ(pending.phase, phase);
  EXPECT_EQ(pending.decided, decided_by::dial_result);
  EXPECT_EQ(pending.fallback_at, 0);
  // A duplicate while the claim is in flight asks for nothing.
  auto dup = fsm.on_dial_result(status, 0, t0 + 21'500);
  EXPECT_FALSE(dup.decide);
  EXPECT_FALSE(dup.finished);
  auto won = fsm.on_decided(claim::won, t0 + 21'600);
  EXPECT_TRUE(won.finished);
  EXPECT_TRUE(won.arm_timer);
  EXPECT_EQ(fsm.record().phase, phase);
  EXPECT_EQ(fsm.record().fallback_at, 0);
  // And after it: still nothing, and the host may stop.
  auto late = fsm.on_dial_result("no-answer", 0, t0 + 40'000);
  EXPECT_FALSE(late.decide);
  EXPECT_TRUE(late.finished);
  EXPECT_FALSE(fsm.on_fallback_due(t0 + 40'000).query_carrier);
}

INSTANTIATE_TEST_SUITE_P(
  AllStatuses, DialStatus,
  ::testing::Values(std::pair{"no-answer", call_phase::missed},
                    std::pair{"busy", call_phase::missed},
                    std::pair{"failed", call_phase::missed},
                    std::pair{"canceled", call_phase::missed},
                    std::pair{"completed", call_phase::answered},
                    std::pair{"answered", call_phase::answered}));

TEST(CallFsm, UnknownDialStatusAsksTheCarrierInsteadOfGuessing) {
  auto fsm = fresh();
  auto fx = fsm.on_dial_result("sideways", 0, t0 + 1);
  EXPECT_FALSE(fx.decide);
  EXPECT_TRUE(fx.query_carrier);
  EXPECT_TRUE(fx.persist);
}

TEST(CallFsm, LostCallbackFallsBackToTheCarrier) {
  auto fsm = fresh();
  auto fx = fsm.on_fallback_due(t0 + 30'000);
  EXPECT_TRUE(fx.query_carrier);
  EXPECT_TRUE(fsm.query_in_flight());
  // A second timer while asking does not ask twice.
  EXPECT_FALSE(fsm.on_fallback_due(t0 + 30'001).query_carrier);
  auto got = fsm.on_carrier_report(report("completed", {{"CA2", "no-answer", 0}}),
                                   t0 + 30'100);
  ASSERT_TRUE(got.decide);
  EXPECT_EQ(*got.decide, call_phase::missed);
  EXPECT_EQ(fsm.pending_outcome().decided, decided_by::fallback);
}

TEST(CallFsm, AnAnsweredLegMeansNoText) {
  for (auto leg : {call_leg{"CA2", "in-progress", 0}, call_leg{"CA2", "completed", 42}}) {
    auto fsm = fresh();
    fsm.on_fallback_due(t0 + 30'000);
    auto fx = fsm.on_carrier_report(report("in-progress", {leg}), t0 + 30'100);
    ASSERT_TRUE(fx.decide) << leg.status;
    EXPECT_EQ(*fx.decide, call_phase::answered) << leg.status;
  }
}

TEST(CallFsm, ACompletedLegOfZeroSecondsWasNotAnswered) {
  auto fsm = fresh();
  fsm.on_fallback_due(t0 + 30'000);
  auto fx = fsm.on_carrier_report(report("completed", {{"CA2", "completed", 0}}),
                                  t0 + 30'100);
  ASSERT_TRUE(fx.decide);
  EXPECT_EQ(*fx.decide, call_phase::missed);
}

TEST(CallFsm, EveryLegEndedUnansweredWhileTheCallerStillListensIsMissed) {
  auto fsm = fresh();
  fsm.on_fallback_due(t0 + 30'000);
  auto fx = fsm.on_carrier_report(
    report("in-progress", {{"CA2", "busy", 0}, {"CA3", "no-answer", 0}}),
    t0 + 30'100);
  ASSERT_TRUE(fx.decide);
  EXPECT_EQ(*fx.decide, call_phase::missed);
}

TEST(CallFsm, ACallStillRingingIsCheckedAgainLater) {
  auto fsm = fresh();
  fsm.on_fallback_due(t0 + 30'000);
  auto fx = fsm.on_carrier_report(report("in-progress", {{"CA2", "ringing", 0}}),
                                  t0 + 30'100);
  EXPECT_FALSE(fx.decide);
  EXPECT_TRUE(fx.arm_timer);
  EXPECT_TRUE(fx.persist);
  EXPECT_EQ(fsm.record().fallback_at, t0 + 30'100 + 15'000);
  EXPECT_EQ(fsm.record().fallback_checks, 1);
  // Then it ends unanswered.
  EXPECT_TRUE(fsm.on_fallback_due(t0 + 45'100).query_carrier);
  auto later = fsm.on_carrier_report(report("completed", {{"CA2", "no-answer", 0}}),
                                     t0 + 45'200);
  ASSERT_TRUE(later.decide);
  EXPECT_EQ(*later.decide, call_phase::missed);
}

TEST(CallFsm, AFailedQueryIsRetriedAndTheChecksAreBounded) {
  auto fsm = fresh();
  call_report failed;
  failed.status.http_status = 503;
  for (int i = 1; i <= 3; ++i) {
    EXPECT_TRUE(fsm.on_fallback_due(t0 + i * 100'000).query_carrier);
    auto fx = fsm.on_carrier_report(failed, t0 + i * 100'000 + 1);
    EXPECT_FALSE(fx.decide);
    EXPECT_TRUE(fx.arm_timer);
    if (i < 3) {
      EXPECT_FALSE(fx.finished);
      EXPECT_GT(fsm.record().fallback_at, 0);
    } else {
      EXPECT_TRUE(fx.finished) << "gives up after max_checks";
      EXPECT_EQ(fsm.record().fallback_at, 0);
      EXPECT_NE(fx.note.find("giving up after 3 checks"), std::string::npos);
    }
  }
}

TEST(CallFsm, StatusCompletedBeforeTheDialResultAsksTheCarrierAtOnce) {
  auto fsm = fresh();
  auto fx = fsm.on_call_status("completed", t0 + 5'000);
  EXPECT_TRUE(fx.query_carrier);
  EXPECT_TRUE(fx.persist);
  EXPECT_TRUE(fsm.record().ended);
  // The dial result overtakes the query: it decides, the report is ignored.
  auto dial = fsm.on_dial_result("no-answer", 0, t0 + 5'100);
  ASSERT_TRUE(dial.decide);
  auto rep = fsm.on_carrier_report(report("completed", {{"CA2", "completed", 9}}),
                                   t0 + 5'200);
  EXPECT_FALSE(rep.decide);
  EXPECT_TRUE(fsm.on_decided(claim::won, t0 + 5'300).finished);
  EXPECT_EQ(fsm.record().phase, call_phase::missed);
}

TEST(CallFsm, NonFinalStatusesChangeNothing) {
  auto fsm = fresh();
  for (auto s : {"queued", "ringing", "in-progress"}) {
    auto fx = fsm.on_call_status(s, t0 + 1);
    EXPECT_FALSE(fx.persist);
    EXPECT_FALSE(fx.query_carrier);
    EXPECT_FALSE(fx.decide);
  }
  EXPECT_FALSE(fsm.record().ended);
}

TEST(CallFsm, ALostClaimFinishesWithoutDeciding) {
  auto fsm = fresh();
  fsm.on_dial_result("no-answer", 0, t0 + 21'000);
  auto fx = fsm.on_decided(claim::lost, t0 + 21'100);
  EXPECT_TRUE(fx.finished);
  EXPECT_FALSE(fsm.claim_in_flight());
}

TEST(CallFsm, AFailedClaimIsRetriedFromTheStoredDialResult) {
  auto fsm = fresh();
  fsm.on_dial_result("busy", 0, t0 + 21'000);
  auto fx = fsm.on_decided(claim::failed, t0 + 21'100);
  EXPECT_FALSE(fx.finished);
  EXPECT_TRUE(fx.arm_timer);
  EXPECT_EQ(fsm.record().fallback_at, t0 + 23'100);
  auto retry = fsm.on_fallback_due(t0 + 23'100);
  ASSERT_TRUE(retry.decide);
  EXPECT_EQ(*retry.decide, call_phase::missed);
  EXPECT_FALSE(retry.query_carrier);
}

TEST(CallFsm, ResumingAfterACrashBetweenDialResultAndClaimDecidesAgain) {
  auto rec = fresh().record();
  rec.dial_status = "no-answer";
  call_fsm fsm{rec, timing()};
  auto fx = fsm.resume(t0 + 60'000);
  ASSERT_TRUE(fx.decide);
  EXPECT_EQ(*fx.decide, call_phase::missed);
}

TEST(CallFsm, ResumingADecidedCallFinishes) {
  auto rec = fresh().record();
  rec.phase = call_phase::answered;
  call_fsm fsm{rec, timing()};
  auto fx = fsm.resume(t0);
  EXPECT_TRUE(fx.finished);
  EXPECT_FALSE(fx.decide);
  EXPECT_FALSE(fx.arm_timer);
}

TEST(CallFsm, FinalStatusesAreClassified) {
  for (auto s : {"completed", "busy", "failed", "no-answer", "canceled"})
    EXPECT_TRUE(call_fsm::is_final_status(s)) << s;
  for (auto s : {"queued", "ringing", "in-progress", ""})
    EXPECT_FALSE(call_fsm::is_final_status(s)) << s;
}

} // namespace
