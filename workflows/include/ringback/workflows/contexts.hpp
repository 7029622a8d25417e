#pragma once

#include "ringback/engine/records.hpp"
#include "ringback/workflows/value.hpp"

#include <string_view>

/// The variables each trigger offers, built from the engine's records (see
/// language.cpp for their documentation). Calendar variables (business_hours,
/// now.*) are added by `add_calendar_variables` (calendar.hpp).
namespace ringback::workflows {

/// tenant.id, tenant.name, tenant.owner_phone, tenant.timezone and
/// tenant.number (`number`, or the tenant's first number when empty).
void add_tenant_variables(const engine::tenant& t, std::string_view number,
                          context& ctx);

/// The call.* triggers: call.sid, call.from, call.to, call.answered,
/// call.duration, contact.phone, and the tenant's.
context call_context(std::string_view call_sid, std::string_view from,
                     std::string_view to, const engine::tenant& tenant);

context call_context(const engine::call_record& call,
                     const engine::tenant& tenant);

/// sms.received: sms.sid, sms.from, sms.to, sms.body, contact.phone, and the
/// tenant's.
context sms_context(const engine::inbound_message& m,
                    const engine::tenant& tenant);

} // namespace ringback::workflows
