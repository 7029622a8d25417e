#pragma once

#include "ringback/workflows/language.hpp"

#include <optional>
#include <string>
#include <string_view>

/// The reference documentation of the workflow language, generated from the
/// registries themselves (language.hpp, expr.hpp), so that it cannot drift
/// from what the loader accepts. docs/workflows.md holds a copy between
/// `reference_begin_marker` and `reference_end_marker`; a test fails when the
/// copy is stale (RINGBACK_UPDATE_DOCS=1 rewrites it).
namespace ringback::workflows {

/// The Markdown reference of `lang`: every trigger (its doc and variables,
/// each with `variable_doc`), every step type grouped by family (its doc, a
/// table of its fields with kind, bounds, required, default and doc, its
/// shorthand, branches, the variables it defines and its example), the
/// expression operators and filters (`operator_docs()`, `filter_docs()`)
/// and the duration syntax. Starts with a `## Reference` heading and ends
/// with a newline. Deterministic: the same language gives the same bytes.
std::string reference_markdown(const language& lang);

inline constexpr std::string_view reference_begin_marker
  = "<!-- BEGIN GENERATED REFERENCE (ringback workflows reference) -->";
inline constexpr std::string_view reference_end_marker
  = "<!-- END GENERATED REFERENCE -->";

/// The text between the markers of `doc` (as `replace_reference` writes it:
/// the markers on lines of their own, a blank line after the first), or
/// nullopt when a marker is missing or they are out of order.
std::optional<std::string> extract_reference(std::string_view doc);

/// `doc` with the text between its markers replaced by `reference`, or
/// nullopt when a marker is missing or they are out of order.
std::optional<std::string> replace_reference(std::string_view doc,
                                             std::string_view reference);

} // namespace ringback::workflows
