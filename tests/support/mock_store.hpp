#pragma once

#include "ringback/engine/ports.hpp"

#include <gmock/gmock.h>

#include <utility>

namespace ringback::testkit {

/// A strict-able gmock of the store port, for tests where the interaction
/// itself is the point (transactions, batching).
class mock_store : public engine::store {
public:
  MOCK_METHOD(void, migrate, (), (override));
  MOCK_METHOD(int, schema_version, (), (override));
  MOCK_METHOD(void, begin, (), (override));
  MOCK_METHOD(void, commit, (), (override));
  MOCK_METHOD(void, rollback, (), (override));
  MOCK_METHOD(void, upkeep, (), (override));
  MOCK_METHOD(bool, ping, (), (override));
  MOCK_METHOD(void, upsert_tenant, (const engine::tenant&), (override));
  MOCK_METHOD(bool, insert_call, (const engine::call_record&), (override));
  MOCK_METHOD(void, update_call, (const engine::call_record&), (override));
  MOCK_METHOD(bool, decide_outcome, (const engine::call_record&), (override));
  MOCK_METHOD(std::optional<engine::call_record>, find_call, (std::string_view),
              (override));
  MOCK_METHOD(std::vector<engine::call_record>, unfinished_calls,
              (std::string_view, engine::epoch_ms), (override));
  MOCK_METHOD(void, insert_webhook, (const engine::webhook_record&), (override));
  MOCK_METHOD(std::int64_t, insert_message, (const engine::message_record&),
              (override));
  MOCK_METHOD(void, update_message, (const engine::message_record&), (override));
  MOCK_METHOD(std::optional<engine::message_record>, find_message, (std::int64_t),
              (override));
  MOCK_METHOD(std::vector<engine::message_record>, pending_messages,
              (std::string_view), (override));
  MOCK_METHOD(std::optional<engine::message_record>, claim_message,
              (std::int64_t, std::string_view, engine::epoch_ms), (override));
  MOCK_METHOD(std::vector<std::int64_t>, release_held,
              (std::string_view, engine::epoch_ms, std::size_t), (override));
  MOCK_METHOD(std::optional<engine::message_record>, find_message_by_sid,
              (std::string_view), (override));
  MOCK_METHOD(engine::status_report_result, record_status,
              (const engine::status_report&), (override));
  MOCK_METHOD(std::vector<engine::status_report>, status_reports,
              (std::string_view), (override));
  MOCK_METHOD(engine::gate_facts, gate_facts_for, (const engine::gate_query&),
              (override));
  MOCK_METHOD(std::optional<engine::opt_out_state>, find_opt_out,
              (std::string_view, std::string_view), (override));
  MOCK_METHOD(void, save_opt_out, (const engine::opt_out_state&), (override));
  MOCK_METHOD(std::vector<engine::opt_out_state>, opted_out, (std::string_view),
              (override));
  MOCK_METHOD(bool, insert_inbound, (const engine::inbound_message&), (override));
  MOCK_METHOD(engine::inbound_claim, consume_inbound,
              (std::string_view, engine::inbound_consumer), (override));
  MOCK_METHOD(void, restore_inbound,
              (std::string_view, engine::inbound_consumer), (override));
  MOCK_METHOD(std::vector<engine::inbound_message>, pending_inbound,
              (std::string_view, std::string_view, engine::epoch_ms,
               engine::epoch_ms, std::size_t),
              (override));
  MOCK_METHOD(void, touch_contact,
              (std::string_view, std::string_view, engine::epoch_ms), (override));
  MOCK_METHOD(std::vector<engine::message_record>, messages_for_call,
              (std::string_view), (override));
  MOCK_METHOD(std::int64_t, insert_run, (const engine::run_record&),
              (override));
  MOCK_METHOD(bool, update_run, (const engine::run_record&, std::int64_t),
              (override));
  MOCK_METHOD(std::optional<engine::run_record>, find_run, (std::int64_t),
              (override));
  MOCK_METHOD(std::vector<engine::run_record>, unfinished_runs,
              (std::string_view, engine::epoch_ms, std::size_t), (override));
  MOCK_METHOD(std::vector<engine::run_record>, runs_waiting_for_reply,
              (std::string_view, std::string_view), (override));
  MOCK_METHOD(std::vector<engine::run_record>, runs_for_call,
              (std::string_view), (override));
  MOCK_METHOD(void, insert_run_steps,
              (const std::vector<engine::run_step_record>&), (override));
  MOCK_METHOD(std::vector<engine::run_step_record>, run_steps, (std::int64_t),
              (override));
  MOCK_METHOD(void, save_workflow_version,
              (const engine::workflow_version_record&), (override));
  MOCK_METHOD(std::optional<engine::workflow_version_record>,
              find_workflow_version,
              (std::string_view, std::string_view, std::string_view),
              (override));
  MOCK_METHOD(void, tag_contact,
              (std::string_view, std::string_view, std::string_view,
               engine::epoch_ms),
              (override));
  MOCK_METHOD(std::vector<std::string>, contact_tags,
              (std::string_view, std::string_view), (override));
  MOCK_METHOD(engine::conversation_record, find_or_create_conversation,
              (std::string_view, std::string_view, std::string_view,
               engine::epoch_ms),
              (override));
  MOCK_METHOD(std::optional<engine::conversation_record>, find_conversation,
              (std::int64_t), (override));
  MOCK_METHOD(std::optional<engine::conversation_record>,
              find_conversation_by_ref, (std::string_view, std::int32_t),
              (override));
  MOCK_METHOD(bool, update_conversation,
              (const engine::conversation_record&, std::int64_t), (override));
  MOCK_METHOD(std::vector<engine::conversation_record>, due_conversations,
              (std::string_view, engine::epoch_ms, std::size_t), (override));
  MOCK_METHOD(void, insert_conversation_messages,
              (const std::vector<engine::conversation_message>&), (override));
  MOCK_METHOD(std::vector<engine::conversation_message>, conversation_messages,
              (std::int64_t, std::size_t), (override));
  MOCK_METHOD(void, insert_conversation_event,
              (const engine::conversation_event&), (override));
  MOCK_METHOD(std::vector<engine::conversation_event>, conversation_events,
              (std::int64_t), (override));
  MOCK_METHOD(void, set_owner_focus,
              (std::string_view, std::int64_t, engine::epoch_ms), (override));
  MOCK_METHOD(std::optional<std::int64_t>, owner_focus, (std::string_view),
              (override));
  MOCK_METHOD(engine::ai_usage, ai_usage_since,
              (std::string_view, engine::epoch_ms), (override));
  /// Makes every method do what `real`'s does unless a test says otherwise:
  /// a spy on a working store, for tests that count one kind of call.
  void delegate_to(engine::store& real) {
#define RINGBACK_DELEGATE(method)                                              \
  ON_CALL(*this, method)                                                       \
    .WillByDefault([&real](auto&&... args) -> decltype(auto) {                 \
      return real.method(std::forward<decltype(args)>(args)...);               \
    })
    RINGBACK_DELEGATE(migrate);
    RINGBACK_DELEGATE(schema_version);
    RINGBACK_DELEGATE(begin);
    RINGBACK_DELEGATE(commit);
    RINGBACK_DELEGATE(rollback);
    RINGBACK_DELEGATE(upkeep);
    RINGBACK_DELEGATE(ping);
    RINGBACK_DELEGATE(upsert_tenant);
    RINGBACK_DELEGATE(insert_call);
    RINGBACK_DELEGATE(update_call);
    RINGBACK_DELEGATE(decide_outcome);
    RINGBACK_DELEGATE(find_call);
    RINGBACK_DELEGATE(unfinished_calls);
    RINGBACK_DELEGATE(insert_webhook);
    RINGBACK_DELEGATE(insert_message);
    RINGBACK_DELEGATE(update_message);
    RINGBACK_DELEGATE(find_message);
    RINGBACK_DELEGATE(pending_messages);
    RINGBACK_DELEGATE(claim_message);
    RINGBACK_DELEGATE(release_held);
    RINGBACK_DELEGATE(find_message_by_sid);
    RINGBACK_DELEGATE(record_status);
    RINGBACK_DELEGATE(status_reports);
    RINGBACK_DELEGATE(gate_facts_for);
    RINGBACK_DELEGATE(find_opt_out);
    RINGBACK_DELEGATE(save_opt_out);
    RINGBACK_DELEGATE(opted_out);
    RINGBACK_DELEGATE(insert_inbound);
    RINGBACK_DELEGATE(consume_inbound);
    RINGBACK_DELEGATE(restore_inbound);
    RINGBACK_DELEGATE(pending_inbound);
    RINGBACK_DELEGATE(touch_contact);
    RINGBACK_DELEGATE(messages_for_call);
    RINGBACK_DELEGATE(insert_run);
    RINGBACK_DELEGATE(update_run);
    RINGBACK_DELEGATE(find_run);
    RINGBACK_DELEGATE(unfinished_runs);
    RINGBACK_DELEGATE(runs_waiting_for_reply);
    RINGBACK_DELEGATE(runs_for_call);
    RINGBACK_DELEGATE(insert_run_steps);
    RINGBACK_DELEGATE(run_steps);
    RINGBACK_DELEGATE(save_workflow_version);
    RINGBACK_DELEGATE(find_workflow_version);
    RINGBACK_DELEGATE(tag_contact);
    RINGBACK_DELEGATE(contact_tags);
    RINGBACK_DELEGATE(find_or_create_conversation);
    RINGBACK_DELEGATE(find_conversation);
    RINGBACK_DELEGATE(find_conversation_by_ref);
    RINGBACK_DELEGATE(update_conversation);
    RINGBACK_DELEGATE(due_conversations);
    RINGBACK_DELEGATE(insert_conversation_messages);
    RINGBACK_DELEGATE(conversation_messages);
    RINGBACK_DELEGATE(insert_conversation_event);
    RINGBACK_DELEGATE(conversation_events);
    RINGBACK_DELEGATE(set_owner_focus);
    RINGBACK_DELEGATE(owner_focus);
    RINGBACK_DELEGATE(ai_usage_since);
#undef RINGBACK_DELEGATE
  }
};

} // namespace ringback::testkit
