#include "ringback/adapters/twilio/signature.hpp"
#include "ringback/adapters/twilio/utf8.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <tuple>

namespace ringback::adapters::twilio {

namespace {

/// The UTF-16 code units JavaScript would hold for `text`; an invalid byte
/// becomes U+FFFD, like Node's UTF-8 decoder. Only used as a sort key.
std::u16string utf16_units(std::string_view text) {
  std::u16string out;
  out.reserve(text.size());
  for (std::size_t pos = 0; pos < text.size();) {
    auto ch = decode_utf8(text, pos);
    if (ch.length == 0) {
      ch = {replacement_character, 1};
    }
    if (ch.code_point < 0x10000) {
      out.push_back(static_cast<char16_t>(ch.code_point));
    } else {
      const auto v = ch.code_point - 0x10000;
      out.push_back(static_cast<char16_t>(0xD800 + (v >> 10)));
      out.push_back(static_cast<char16_t>(0xDC00 + (v & 0x3FF)));
    }
    pos += ch.length;
  }
  return out;
}

/// OpenSSL wants a non-null pointer even for zero bytes.
const unsigned char* bytes_of(std::string_view x) {
  static constexpr unsigned char empty = 0;
  return x.empty() ? &empty : reinterpret_cast<const unsigned char*>(x.data());
}

/// An HMAC-SHA1 context per thread, keyed with the last key it was given:
/// OpenSSL 3's one-shot `HMAC()` looks the algorithms up in its provider
/// tables at every call, which cost more than hashing a webhook. A signer
/// (ringback, or the load simulator) mostly signs with one auth token.
class hmac_sha1 {
public:
  hmac_sha1()
    : mac_(EVP_MAC_fetch(nullptr, "HMAC", nullptr)),
      ctx_(mac_ != nullptr ? EVP_MAC_CTX_new(mac_) : nullptr) {
    // nop
  }

  ~hmac_sha1() {
    EVP_MAC_CTX_free(ctx_);
    EVP_MAC_free(mac_);
  }

  hmac_sha1(const hmac_sha1&) = delete;
  hmac_sha1& operator=(const hmac_sha1&) = delete;

  /// The digest's size in `out`, or 0 on an OpenSSL failure.
  std::size_t mac(std::string_view key, std::string_view data,
                  std::array<unsigned char, EVP_MAX_MD_SIZE>& out) {
    if (ctx_ == nullptr)
      return 0;
    // A null key makes HMAC start over with the key it has.
    const bool same_key = keyed_ && key == key_;
    char digest_name[] = "SHA1";
    OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
      OSSL_PARAM_construct_end()};
    if (EVP_MAC_init(ctx_, same_key ? nullptr : bytes_of(key),
                     same_key ? 0 : key.size(), same_key ? nullptr : params)
        != 1) {
      keyed_ = false;
      return 0;
    }
    if (!same_key) {
      key_.assign(key);
      keyed_ = true;
    }
    std::size_t size = 0;
    if (EVP_MAC_update(ctx_, bytes_of(data), data.size()) != 1
        || EVP_MAC_final(ctx_, out.data(), &size, out.size()) != 1) {
      keyed_ = false;
      return 0;
    }
    return size;
  }

private:
  EVP_MAC* mac_;
  EVP_MAC_CTX* ctx_;
  std::string key_;
  bool keyed_ = false;
};

std::string hmac_sha1_base64(std::string_view key, std::string_view data) {
  thread_local hmac_sha1 hmac;
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  const auto size = hmac.mac(key, data, digest);
  if (size == 0) {
    return {};
  }
  return base64_encode({reinterpret_cast<const char*>(digest.data()), size});
}

bool constant_time_equal(std::string_view x, std::string_view y) {
  // The length of a signature is public (28 for base64 SHA-1); only the
  // content must not leak through timing.
  return x.size() == y.size()
         && CRYPTO_memcmp(x.data(), y.data(), x.size()) == 0;
}

bool iequals(std::string_view x, std::string_view y) {
  return std::equal(x.begin(), x.end(), y.begin(), y.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a))
           == std::tolower(static_cast<unsigned char>(b));
  });
}

/// The parts of a URL the port variants need: everything before the port,
/// the port with its colon (may be empty), everything after.
struct url_parts {
  std::string_view scheme;
  std::string_view before_port;
  std::string_view port; // ":443" or empty
  std::string_view rest; // path, query, fragment
};

std::optional<url_parts> split_url(std::string_view url) {
  const auto scheme_end = url.find("://");
  // A "://" after the first '/', '?' or '#' is no scheme separator.
  if (scheme_end == std::string_view::npos || scheme_end == 0
      || url.find_first_of("/?#") < scheme_end) {
    return std::nullopt;
  }
  const auto authority_begin = scheme_end + 3;
  auto authority_end = url.find_first_of("/?#", authority_begin);
  if (authority_end == std::string_view::npos) {
    authority_end = url.size();
  }
  const auto authority = url.substr(authority_begin,
                                    authority_end - authority_begin);
  const auto at = authority.rfind('@');
  const auto host_begin = at == std::string_view::npos ? 0 : at + 1;
  // An IPv6 literal `[::1]` holds colons of its own: look after its `]`.
  const auto bracket = authority.find(']', host_begin);
  const auto colon = authority.find(':', bracket == std::string_view::npos
                                           ? host_begin
                                           : bracket);
  const auto port_begin = colon == std::string_view::npos ? authority.size()
                                                          : colon;
  url_parts parts;
  parts.scheme = url.substr(0, scheme_end);
  parts.before_port = url.substr(0, authority_begin + port_begin);
  parts.port = authority.substr(port_begin);
  parts.rest = url.substr(authority_end);
  return parts;
}

/// The URL with its port stripped or, when it has none, with the default
/// port of its scheme added; nullopt if there is no such variant.
std::optional<std::string> port_variant(std::string_view url) {
  const auto parts = split_url(url);
  if (!parts) {
    return std::nullopt;
  }
  std::string out{parts->before_port};
  if (!parts->port.empty()) {
    out += parts->rest;
    return out;
  }
  if (iequals(parts->scheme, "https")) {
    out += ":443";
  } else if (iequals(parts->scheme, "http")) {
    out += ":80";
  } else {
    return std::nullopt;
  }
  out += parts->rest;
  return out;
}

bool query_needs_escape(unsigned char c) {
  return c <= 0x20 || c >= 0x7F || c == '"' || c == '\'' || c == '<'
         || c == '>';
}

/// Percent-encodes the query the way a WHATWG URL serializer does for
/// special schemes (`'` becomes `%27`); existing escapes stay as they are.
std::string normalize_query(std::string_view url) {
  const auto q = url.find('?');
  if (q == std::string_view::npos) {
    return std::string{url};
  }
  const auto fragment = url.find('#', q);
  const auto query_end = fragment == std::string_view::npos ? url.size()
                                                            : fragment;
  std::string out{url.substr(0, q + 1)};
  for (auto i = q + 1; i < query_end; ++i) {
    if (query_needs_escape(static_cast<unsigned char>(url[i]))) {
      out += encode_component(url.substr(i, 1));
    } else {
      out.push_back(url[i]);
    }
  }
  out += url.substr(query_end);
  return out;
}

void add_unique(std::vector<std::string>& xs, std::string x) {
  if (std::find(xs.begin(), xs.end(), x) == xs.end()) {
    xs.push_back(std::move(x));
  }
}

bool is_ascii(std::string_view text) {
  unsigned char any = 0;
  for (char c : text)
    any |= static_cast<unsigned char>(c);
  return any < 0x80;
}

using field = std::pair<std::string, std::string>;

/// The fields in Twilio's order, each (name, value) pair once.
std::vector<const field*> sorted_fields(const form_fields& params) {
  std::vector<const field*> out;
  out.reserve(params.size());
  for (const auto& f : params)
    out.push_back(&f);
  auto same = [](const field* x, const field* y) { return *x == *y; };
  // ASCII sorts the same by bytes as by UTF-16 code units: the usual case
  // needs no sort keys.
  const bool ascii
    = std::all_of(params.begin(), params.end(), [](const auto& f) {
        return is_ascii(f.first) && is_ascii(f.second);
      });
  if (ascii) {
    std::sort(out.begin(), out.end(),
              [](const field* x, const field* y) { return *x < *y; });
  } else {
    struct keys {
      std::u16string name;
      std::u16string value;
    };
    std::vector<std::pair<keys, const field*>> keyed;
    keyed.reserve(out.size());
    for (const auto* f : out)
      keyed.push_back({{utf16_units(f->first), utf16_units(f->second)}, f});
    std::sort(keyed.begin(), keyed.end(), [](const auto& x, const auto& y) {
      return std::tie(x.first.name, x.first.value, *x.second)
             < std::tie(y.first.name, y.first.value, *y.second);
    });
    for (std::size_t i = 0; i < keyed.size(); ++i)
      out[i] = keyed[i].second;
  }
  // Values of a repeated name are de-duplicated, as twilio-node does.
  out.erase(std::unique(out.begin(), out.end(), same), out.end());
  return out;
}

/// The payload of `url` with the fields already in order.
std::string payload_of(std::string_view url,
                       const std::vector<const field*>& fields) {
  auto size = url.size();
  for (const auto* f : fields)
    size += f->first.size() + f->second.size();
  std::string out;
  out.reserve(size);
  out += url;
  for (const auto* f : fields) {
    out += f->first;
    out += f->second;
  }
  return out;
}

} // namespace

std::string signing_payload(std::string_view url, const form_fields& params) {
  return payload_of(url, sorted_fields(params));
}

std::string sign(std::string_view auth_token, std::string_view url,
                 const form_fields& params) {
  return hmac_sha1_base64(auth_token, signing_payload(url, params));
}

std::vector<std::string> url_variants(std::string_view url) {
  std::vector<std::string> plain{std::string{url}};
  if (auto other = port_variant(url)) {
    add_unique(plain, std::move(*other));
  }
  auto all = plain;
  for (const auto& x : plain) {
    add_unique(all, normalize_query(x));
  }
  return all;
}

bool validate(std::string_view auth_token, std::string_view url,
              const form_fields& params, std::string_view signature) {
  if (signature.empty()) {
    return false;
  }
  // Each comparison is constant-time; stopping at the first match only tells
  // which URL form matched, which is public. The URL as given is the one
  // Twilio signs, so a valid request costs one HMAC, and the fields are
  // sorted once for every form tried.
  const auto fields = sorted_fields(params);
  auto matches = [&](std::string_view candidate) {
    return constant_time_equal(
      hmac_sha1_base64(auth_token, payload_of(candidate, fields)), signature);
  };
  if (matches(url)) {
    return true;
  }
  for (const auto& candidate : url_variants(url)) {
    if (candidate != url && matches(candidate)) {
      return true;
    }
  }
  return false;
}

bool validate_json(std::string_view auth_token, std::string_view url,
                   std::string_view raw_body, std::string_view signature) {
  const auto query = decode_form(split_target(url).query);
  const auto expected_hash = find_field(query.fields, "bodySHA256");
  if (!expected_hash) {
    return false;
  }
  const bool body_ok = constant_time_equal(sha256_hex(raw_body),
                                           *expected_hash);
  const bool signature_ok = validate(auth_token, url, {}, signature);
  return body_ok && signature_ok;
}

std::string with_body_sha256(std::string_view url, std::string_view raw_body) {
  std::string out{url};
  if (out.find('?') == std::string::npos) {
    out.push_back('?');
  } else if (out.back() != '?' && out.back() != '&') {
    out.push_back('&');
  }
  out += "bodySHA256=";
  out += sha256_hex(raw_body);
  return out;
}

std::string base64_encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const auto n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                 bytes_of(data), static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string sha256_hex(std::string_view data) {
  constexpr std::string_view hex = "0123456789abcdef";
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(bytes_of(data), data.size(), digest.data());
  std::string out;
  out.reserve(2 * digest.size());
  for (const auto byte : digest) {
    out.push_back(hex[byte >> 4]);
    out.push_back(hex[byte & 0x0F]);
  }
  return out;
}

} // namespace ringback::adapters::twilio
