#pragma once

#include "ringback/engine/ports.hpp"

#include <memory>
#include <string>
#include <string_view>

namespace ringback::adapters {

/// Opens the store a URL names (nothing is migrated yet):
/// - `sqlite:PATH` (a relative PATH is resolved against `base_dir`, e.g. the
///   config file's directory; `sqlite://PATH` is accepted too),
/// - `sqlite::memory:` (a private in-memory SQLite database),
/// - `postgresql://user:pass@host:port/db` or `postgres://...` (connects
///   lazily),
/// - `memory:` (the in-memory fake, for tests).
/// Throws `engine::port_error` `unsupported store URL '...': expected
/// sqlite:PATH or postgresql://...` for anything else (a password in the URL
/// is shown as `***`), and whatever opening the store throws.
std::unique_ptr<engine::store> make_store(std::string_view url,
                                          const std::string& base_dir);

/// Whether the store `url` names runs transactions of several connections
/// at once (PostgreSQL), so that a second connection can serve the urgent
/// jobs beside the main one's batches. SQLite takes one writer at a time.
bool store_runs_concurrent_writers(std::string_view url);

/// `url` with the password of its user info (`user:PASSWORD@`) replaced by
/// `***`, for messages and logs.
std::string redact_url(std::string_view url);

} // namespace ringback::adapters
