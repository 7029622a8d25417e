#include "ringback/workflows/template.hpp"

#include "ringback/workflows/yaml_source.hpp"

#include <cctype>

namespace ringback::workflows {

namespace {

bool is_identifier_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_';
}

bool is_identifier_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
}

// identifier ( '.' identifier )*
bool is_variable_name(std::string_view x) {
  bool at_start = true;
  for (char c : x) {
    if (at_start) {
      if (!is_identifier_start(c)) {
        return false;
      }
      at_start = false;
    } else if (c == '.') {
      at_start = true;
    } else if (!is_identifier_char(c)) {
      return false;
    }
  }
  return !at_start;
}

std::string_view trim(std::string_view x) {
  auto is_space = [](char c) { return c == ' ' || c == '\t'; };
  while (!x.empty() && is_space(x.front())) {
    x.remove_prefix(1);
  }
  while (!x.empty() && is_space(x.back())) {
    x.remove_suffix(1);
  }
  return x;
}

} // namespace

struct template_parser {
  static template_parse_result parse(std::string_view source) {
    template_parse_result result;
    if (source.size() > text_template::max_source_bytes) {
      result.error = "the template is too long ("
                     + std::to_string(source.size()) + " bytes; at most "
                     + std::to_string(text_template::max_source_bytes) + ")";
      return result;
    }
    auto& t = result.value;
    t.source_ = std::string(source);
    auto column = [&](std::size_t offset) {
      return code_points(source.substr(0, offset)) + 1;
    };
    std::size_t pos = 0;
    while (pos < source.size()) {
      auto open = source.find("{{", pos);
      if (open == std::string_view::npos) {
        open = source.size();
      }
      if (open > pos) {
        t.parts_.push_back(
          {false, std::string(source.substr(pos, open - pos)), column(pos)});
      }
      if (open == source.size()) {
        break;
      }
      auto close = source.find("}}", open + 2);
      if (close == std::string_view::npos) {
        result.error = "unterminated '{{' at column "
                       + std::to_string(column(open))
                       + " of the template (expected '}}')";
        return result;
      }
      auto name = trim(source.substr(open + 2, close - open - 2));
      if (name.empty()) {
        result.error = "empty '{{ }}' at column " + std::to_string(column(open))
                       + " of the template";
        return result;
      }
      if (!is_variable_name(name)) {
        result.error = "invalid variable name '" + std::string(name)
                       + "' at column " + std::to_string(column(open))
                       + " of the template (expected a name like call.from)";
        return result;
      }
      t.parts_.push_back({true, std::string(name), column(open)});
      pos = close + 2;
    }
    return result;
  }
};

template_parse_result parse_template(std::string_view source) {
  return template_parser::parse(source);
}

std::vector<template_part> text_template::variables() const {
  std::vector<template_part> out;
  for (const auto& p : parts_) {
    if (p.is_variable) {
      out.push_back(p);
    }
  }
  return out;
}

rendered_text text_template::render(const context& ctx,
                                    std::size_t max_bytes) const noexcept {
  rendered_text out;
  try {
    for (const auto& p : parts_) {
      const std::string* piece = &p.text;
      if (p.is_variable) {
        auto i = ctx.find(p.text);
        if (i == ctx.end()) {
          out.missing.push_back(p.text);
          continue;
        }
        piece = &i->second;
      }
      if (out.truncated) {
        continue; // keep collecting `missing`, stop growing the text
      }
      auto room = max_bytes - out.text.size();
      if (piece->size() <= room) {
        out.text += *piece;
      } else {
        std::string head = piece->substr(0, room + 1);
        truncate_utf8(head, room);
        out.text += head;
        out.truncated = true;
      }
    }
  } catch (...) {
    // Only std::bad_alloc can get here; the output is bounded, so this means
    // the process is out of memory anyway.
    return rendered_text{};
  }
  return out;
}

} // namespace ringback::workflows
