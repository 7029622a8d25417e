#include "ringback/adapters/detail/percent.hpp"
#include "ringback/adapters/twilio/form.hpp"

#include <algorithm>

namespace ringback::adapters::twilio {

namespace {

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
         || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
         || c == '~';
}

/// Form encoding: '+' is a space.
std::optional<std::size_t> decode_into(std::string_view in, std::string& out) {
  return detail::percent_decode_into(in, out, detail::plus_decoding::space);
}

} // namespace

const char* to_string(form_errc x) {
  switch (x) {
    case form_errc::invalid_escape:
      return "invalid percent-escape";
    case form_errc::too_many_fields:
      return "too many form fields";
  }
  return "unknown form error";
}

std::string to_string(const form_error& x) {
  return std::string{to_string(x.code)} + " at byte "
         + std::to_string(x.offset);
}

decoded_form decode_form(std::string_view text, std::size_t max_fields) {
  decoded_form result;
  result.fields.reserve(std::min<std::size_t>(
    max_fields,
    static_cast<std::size_t>(std::count(text.begin(), text.end(), '&') + 1)));
  std::size_t begin = 0;
  while (begin <= text.size()) {
    auto end = text.find('&', begin);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    const auto piece = text.substr(begin, end - begin);
    if (!piece.empty()) {
      if (result.fields.size() == max_fields) {
        result.fields.clear();
        result.error = form_error{form_errc::too_many_fields, begin};
        return result;
      }
      const auto eq = piece.find('=');
      const auto name = piece.substr(0, eq);
      const auto value = eq == std::string_view::npos ? std::string_view{}
                                                      : piece.substr(eq + 1);
      auto& field = result.fields.emplace_back();
      auto bad = decode_into(name, field.first);
      if (!bad && eq != std::string_view::npos) {
        if (auto bad_value = decode_into(value, field.second)) {
          bad = eq + 1 + *bad_value;
        }
      }
      if (bad) {
        result.fields.clear();
        result.error = form_error{form_errc::invalid_escape, begin + *bad};
        return result;
      }
    }
    begin = end + 1;
  }
  return result;
}

std::optional<std::string> decode_component(std::string_view text) {
  std::string out;
  if (decode_into(text, out)) {
    return std::nullopt;
  }
  return out;
}

std::string encode_component(std::string_view text) {
  constexpr std::string_view hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (is_unreserved(u)) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 0x0F]);
    }
  }
  return out;
}

std::string encode_form(const form_fields& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty()) {
      out.push_back('&');
    }
    out += encode_component(name);
    out.push_back('=');
    out += encode_component(value);
  }
  return out;
}

std::optional<std::string_view> find_field(const form_fields& fields,
                                           std::string_view name) {
  for (const auto& [key, value] : fields) {
    if (key == name) {
      return std::string_view{value};
    }
  }
  return std::nullopt;
}

request_target split_target(std::string_view target) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) {
    return {target, {}};
  }
  return {target.substr(0, q), target.substr(q + 1)};
}

} // namespace ringback::adapters::twilio
