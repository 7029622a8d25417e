#include "ringback/workflows/contexts.hpp"

namespace ringback::workflows {

void add_tenant_variables(const engine::tenant& t, std::string_view number,
                          context& ctx) {
  ctx["tenant.id"] = value{t.id};
  ctx["tenant.name"] = value{t.name};
  ctx["tenant.owner_phone"] = value{t.owner_phone};
  ctx["tenant.timezone"] = value{t.timezone};
  std::string n(number);
  if (n.empty() && !t.numbers.empty())
    n = t.numbers.front().number;
  ctx["tenant.number"] = value{std::move(n)};
  ctx["tenant.page_by_call"] = value{t.conversations.page_by_call};
}

context call_context(std::string_view call_sid, std::string_view from,
                     std::string_view to, const engine::tenant& tenant) {
  context ctx{
    {"call.sid", value{call_sid}}, {"call.from", value{from}},
    {"call.to", value{to}},        {"call.answered", value{false}},
    {"call.duration", value{0}},   {"contact.phone", value{from}},
  };
  add_tenant_variables(tenant, to, ctx);
  return ctx;
}

context call_context(const engine::call_record& call,
                     const engine::tenant& tenant) {
  auto ctx = call_context(call.call_sid, call.from, call.to, tenant);
  ctx["call.answered"] = value{call.phase == engine::call_phase::answered};
  ctx["call.duration"] = value{static_cast<std::int64_t>(call.dial_duration)};
  return ctx;
}

context sms_context(const engine::inbound_message& m,
                    const engine::tenant& tenant) {
  context ctx{
    {"sms.sid", value{m.message_sid}}, {"sms.from", value{m.from}},
    {"sms.to", value{m.to}},           {"sms.body", value{m.body}},
    {"contact.phone", value{m.from}},
  };
  add_tenant_variables(tenant, m.to, ctx);
  return ctx;
}

} // namespace ringback::workflows
