#pragma once

#include "ringback/engine/ports.hpp"
#include "ringback/engine/records.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringback::adapters {

/// A customer of a tenant as `touch_contact` remembers it.
struct contact_record {
  std::string tenant_id;
  std::string phone;
  engine::epoch_ms first_seen = 0;
  engine::epoch_ms last_seen = 0;
};

/// An `engine::store` that can also read back what the port only writes
/// (tenants, webhooks, inbound messages, contacts). Every store adapter
/// implements it; tests, audit and replay tooling use it, the engine does not.
///
/// Same threading and error rules as `engine::store`. Adapter-wide rules that
/// the conformance suite (tests/support/store_conformance.hpp) pins:
/// - Outside `begin()`/`commit()` every call is its own transaction.
/// - `commit()` without an open transaction and a nested `begin()` throw
///   `port_error`; `rollback()` without one is a no-op and never throws.
/// - After any `port_error` inside a transaction, the transaction is aborted:
///   every call but `rollback()` throws `port_error` until `rollback()`, and
///   `commit()` rolls back and throws.
/// - Calls other than `migrate()`, `schema_version()` and `ping()` before the
///   schema exists throw `port_error`.
/// - Error messages read `<backend> <operation>: <detail>`, e.g.
///   `sqlite insert_call: database is locked`.
class audited_store : public engine::store {
public:
  /// The tenant and its numbers (ordered by number), if stored.
  virtual std::optional<engine::tenant> find_tenant(std::string_view id) = 0;

  /// The webhooks stored with this CallSid (or MessageSid), oldest first.
  virtual std::vector<engine::webhook_record>
  webhooks_for(std::string_view call_sid) = 0;

  virtual std::optional<engine::inbound_message>
  find_inbound(std::string_view message_sid) = 0;

  virtual std::optional<contact_record>
  find_contact(std::string_view tenant_id, std::string_view phone) = 0;
};

} // namespace ringback::adapters
