#pragma once

#include "ringback/engine/ports.hpp"

#include <gmock/gmock.h>

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
};

} // namespace ringback::testkit
