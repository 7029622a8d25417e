#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ringback::adapters::detail {

/// How '+' decodes: a space in form bodies, itself elsewhere (URLs).
enum class plus_decoding : bool { literal, space };

/// Decodes `%XX` escapes of `in` and appends the result to `out`. Returns the
/// offset (within `in`) of the first invalid escape, or nullopt on success.
std::optional<std::size_t>
percent_decode_into(std::string_view in, std::string& out, plus_decoding plus);

/// Decodes all of `in`, or nullopt if it holds an invalid escape.
std::optional<std::string> percent_decode(std::string_view in,
                                          plus_decoding plus);

} // namespace ringback::adapters::detail
