#include "ringback/workflows/model.hpp"

namespace ringback::workflows {

const char* to_string(field_kind x) {
  switch (x) {
    case field_kind::text:
      return "text";
  }
  return "?";
}

std::string step::display_id() const {
  return id.empty() ? "#" + std::to_string(index) : id;
}

const field_value* step::field(std::string_view name) const {
  auto i = fields.find(name);
  return i == fields.end() ? nullptr : &i->second;
}

} // namespace ringback::workflows
