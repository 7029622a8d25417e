#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// application/x-www-form-urlencoded bodies and query strings: Twilio posts
/// its webhooks as forms, and its REST API takes forms. Pure functions, safe
/// to call from any thread.
namespace ringback::adapters::twilio {

/// Decoded form fields in the order they appear. A name may repeat (Twilio
/// does that for list parameters), so this is a multimap kept as a vector.
using form_fields = std::vector<std::pair<std::string, std::string>>;

/// Default cap on the number of fields `decode_form` accepts. Twilio's
/// webhooks carry about 30; the cap bounds the work a hostile body can cause.
inline constexpr std::size_t default_max_form_fields = 256;

/// Why a form could not be decoded.
enum class form_errc : std::uint8_t {
  /// A `%` not followed by two hex digits.
  invalid_escape,
  /// More fields than the caller allows.
  too_many_fields,
};

/// A short English description, e.g. "invalid percent-escape".
const char* to_string(form_errc x);

/// A decoding error and the byte offset in the input where it was found.
struct form_error {
  form_errc code = form_errc::invalid_escape;
  std::size_t offset = 0;
};

/// The message for a log line or a 400 answer, e.g.
/// "invalid percent-escape at byte 7".
std::string to_string(const form_error& x);

/// Outcome of `decode_form`: the fields, or an error (and no fields).
struct decoded_form {
  form_fields fields;
  std::optional<form_error> error;

  bool ok() const {
    return !error.has_value();
  }
};

/// Decodes `name=value&name=value...`: `+` is a space, `%XX` a byte. Empty
/// pieces (`a=1&&b=2`) are skipped; a piece without `=` is a name with an
/// empty value. Bytes are passed through as they are (no UTF-8 check).
/// Fails on an invalid escape or when there are more than `max_fields`
/// fields. Never throws but `std::bad_alloc`.
decoded_form decode_form(std::string_view text,
                         std::size_t max_fields = default_max_form_fields);

/// Decodes one component (`+` is a space, `%XX` a byte); `nullopt` if it
/// holds an invalid escape.
std::optional<std::string> decode_component(std::string_view text);

/// Percent-encodes every byte but the unreserved ones (`A-Z a-z 0-9 - . _ ~`),
/// with upper-case hex: `+1 555` gives `%2B1%20555`. Safe for path segments,
/// query values and form values alike.
std::string encode_component(std::string_view text);

/// Encodes fields as `name=value&...` with `encode_component`, in order.
std::string encode_form(const form_fields& fields);

/// The value of the first field called `name`, if any. The view points into
/// `fields`.
std::optional<std::string_view> find_field(const form_fields& fields,
                                           std::string_view name);

/// An HTTP request target split at the first `?`.
struct request_target {
  std::string_view path;
  std::string_view query; // without the `?`; empty if there is none
};

/// Splits `/a/b?x=1` into `/a/b` and `x=1`. Views point into `target`.
request_target split_target(std::string_view target);

} // namespace ringback::adapters::twilio
