#include "ringback/workflows/model.hpp"

#include <array>
#include <cstdint>

namespace ringback::workflows {

const char* to_string(field_kind x) {
  switch (x) {
    case field_kind::text:
      return "template";
    case field_kind::condition:
      return "condition";
    case field_kind::duration:
      return "duration";
    case field_kind::integer:
      return "integer";
    case field_kind::boolean:
      return "boolean";
    case field_kind::choice:
      return "choice";
    case field_kind::text_list:
      return "template list";
    case field_kind::text_map:
      return "map of templates";
    case field_kind::json:
      return "JSON";
  }
  return "?";
}

std::string step::display_id() const {
  return id.empty() ? "#" + std::to_string(ordinal) : id;
}

const field_value* step::field(std::string_view name) const {
  auto i = fields.find(name);
  return i == fields.end() ? nullptr : &i->second;
}

const branch* step::find_branch(std::string_view name) const {
  for (const auto& b : branches)
    if (b.name == name)
      return &b;
  return nullptr;
}

std::string content_hash(std::string_view text) {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  static constexpr std::array<char, 16> digits{'0', '1', '2', '3', '4', '5',
                                               '6', '7', '8', '9', 'a', 'b',
                                               'c', 'd', 'e', 'f'};
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = digits[h & 0xF];
    h >>= 4;
  }
  return out;
}

} // namespace ringback::workflows
