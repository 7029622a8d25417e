#pragma once

#include "ringback/engine/messaging.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace ringback::workflows {

/// True for `+` followed by 8 to 15 digits, the first not 0 (E.164): the
/// messaging gate's check, so that a workflow and the outbox agree on what a
/// number is.
using engine::is_e164;

/// Drops the usual formatting (spaces, `-`, `.`, `(`, `)`) and returns the
/// number if what is left is E.164; never guesses a country code.
/// "+1 (500) 555-0001" -> "+15005550001"; "5005550001" -> nullopt.
std::optional<std::string> normalize_e164(std::string_view x);

} // namespace ringback::workflows
