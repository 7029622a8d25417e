#pragma once

#include <string>
#include <vector>

namespace ringback::adapters {

/// One step of the store schema. Versions start at 1 and increase by one;
/// both dialects have the same versions with the same meaning.
struct migration {
  int version = 0;
  std::string description;
  std::string sql; // one or more statements, run in one transaction
};

/// The schema for SQLite (`sqlite_store`).
const std::vector<migration>& sqlite_migrations();

/// The schema for PostgreSQL (`pg_store`).
const std::vector<migration>& pg_migrations();

/// The highest version of the built-in migrations.
int latest_schema_version();

/// Key of the transaction-scoped advisory lock `pg_store::migrate()` holds
/// (`pg_advisory_xact_lock`), so that processes migrate one at a time.
inline constexpr long long pg_migration_lock_key = 0x52494e47424b; // "RINGBK"

} // namespace ringback::adapters
