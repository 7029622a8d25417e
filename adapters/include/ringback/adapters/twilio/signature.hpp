#pragma once

#include "ringback/adapters/twilio/form.hpp"

#include <string>
#include <string_view>
#include <vector>

/// `X-Twilio-Signature`: how Twilio signs its webhooks, and how a receiver
/// checks them. Follows twilio-node's `getExpectedTwilioSignature` and
/// `validateRequest` / `validateRequestWithBody` (see
/// shared/oracles/twilio/VECTORS.md). Pure functions, safe from any thread.
namespace ringback::adapters::twilio {

/// The exact bytes that are HMACed: `url` as given, then for each distinct
/// parameter name in UTF-16 code-unit order (JavaScript's default sort; for
/// ASCII names plain byte order, `A` < `a`) its distinct values in the same
/// order, each as name + value. `params` are the decoded form values.
std::string signing_payload(std::string_view url, const form_fields& params);

/// base64(HMAC-SHA1(auth_token, signing_payload(url, params))): the
/// signature Twilio sends for a form POST to `url` (or, with no params, for a
/// GET or a JSON body).
std::string sign(std::string_view auth_token, std::string_view url,
                 const form_fields& params = {});

/// The URLs a lenient receiver tries, first the one given: with the port
/// stripped (any port) or, when there is none, with the scheme's default port
/// added (`:443` for https, `:80` for http); then each of those normalised
/// like a WHATWG URL serializer (in the query, `'`, `"`, `<`, `>`, spaces,
/// control and non-ASCII bytes are percent-encoded). No duplicates.
std::vector<std::string> url_variants(std::string_view url);

/// True if `signature` is Twilio's signature of a form request to `url` with
/// the decoded body fields `params`, for any of `url_variants(url)`.
/// Compared in constant time. An empty signature is never valid.
bool validate(std::string_view auth_token, std::string_view url,
              const form_fields& params, std::string_view signature);

/// For a request with a non-form body (JSON): true if `url` carries a
/// `bodySHA256` query parameter equal to the lower-case hex SHA-256 of
/// `raw_body` and `signature` signs the URL (any of its variants) with no
/// parameters. False when `bodySHA256` is absent.
bool validate_json(std::string_view auth_token, std::string_view url,
                   std::string_view raw_body, std::string_view signature);

/// `url` with `bodySHA256=<sha256_hex(raw_body)>` appended to its query: the
/// URL Twilio signs for a JSON body (used by tests and the load simulator).
std::string with_body_sha256(std::string_view url, std::string_view raw_body);

/// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

/// Standard base64 with padding (signatures, HTTP Basic credentials).
std::string base64_encode(std::string_view data);

} // namespace ringback::adapters::twilio
