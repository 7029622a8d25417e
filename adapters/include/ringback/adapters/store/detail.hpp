#pragma once

// Internals shared by the store adapters (not part of their API).

#include "ringback/engine/ports.hpp"
#include "ringback/engine/records.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace ringback::adapters::store_detail {

/// Throws `port_error` `<backend> <op>: <detail>`.
[[noreturn]] void fail(std::string_view backend, std::string_view op,
                       std::string_view detail);

/// Detail of the error every call but `rollback()` throws inside a
/// transaction that an earlier error aborted.
inline constexpr std::string_view aborted_detail
  = "the transaction was aborted by an earlier error; call rollback()";

/// Detail of the error `commit()` throws for such a transaction.
inline constexpr std::string_view commit_aborted_detail
  = "the transaction was aborted by an earlier error; rolled back";

/// Decodes an enum column; throws `port_error` naming the column and value
/// when the stored text is not a known name.
template <class Enum>
Enum parse_column(std::optional<Enum> parsed, std::string_view backend,
                  std::string_view op, std::string_view column,
                  std::string_view text) {
  if (!parsed) {
    std::string detail = "unknown ";
    detail.append(column).append(" '").append(text).append("' in the database");
    fail(backend, op, detail);
  }
  return *parsed;
}

/// Wall clock for `updated_at` / `applied_at` columns the records lack.
engine::epoch_ms now_ms();

} // namespace ringback::adapters::store_detail
