#include "ringback/workflows/template.hpp"

#include "ringback/workflows/diagnostic.hpp"
#include "ringback/workflows/yaml_source.hpp"

#include <algorithm>

namespace ringback::workflows {

namespace {

/// The `}}` closing the `{{` before `from`, skipping string literals of the
/// expression (so `{{ x == "}}" }}` works). When a quote is left open, falls
/// back to the first `}}` and lets the expression parser report the string.
std::size_t find_close(std::string_view s, std::size_t from) {
  std::size_t i = from;
  while (i + 1 < s.size()) {
    char c = s[i];
    if (c == '"' || c == '\'') {
      auto j = i + 1;
      while (j < s.size() && s[j] != c) {
        j += s[j] == '\\' ? 2 : 1;
      }
      if (j >= s.size()) {
        return s.find("}}", from);
      }
      i = j + 1;
      continue;
    }
    if (c == '}' && s[i + 1] == '}') {
      return i;
    }
    ++i;
  }
  return std::string_view::npos;
}

std::string at_column(std::size_t column) {
  return " at column " + std::to_string(column) + " of the template";
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
    // Columns grow with `pos`: count code points incrementally.
    std::size_t counted = 0;
    std::size_t counted_column = 1;
    auto column = [&](std::size_t offset) {
      counted_column += code_points(source.substr(counted, offset - counted));
      counted = offset;
      return counted_column;
    };
    std::size_t pos = 0;
    while (pos < source.size()) {
      auto open = source.find("{{", pos);
      if (open == std::string_view::npos) {
        open = source.size();
      }
      if (open > pos) {
        template_part p;
        p.text = std::string(source.substr(pos, open - pos));
        p.column = column(pos);
        t.parts_.push_back(std::move(p));
      }
      if (open == source.size()) {
        break;
      }
      auto open_column = column(open);
      auto close = find_close(source, open + 2);
      if (close == std::string_view::npos) {
        result.error = "unterminated '{{'" + at_column(open_column)
                       + " (expected '}}')";
        return result;
      }
      auto inner = source.substr(open + 2, close - open - 2);
      if (inner.find_first_not_of(" \t\r\n") == std::string_view::npos) {
        result.error = "empty '{{ }}'" + at_column(open_column);
        return result;
      }
      auto parsed = parse_expression_in(source, open + 2, close);
      if (!parsed.ok()) {
        result.error = parsed.error + at_column(parsed.column);
        return result;
      }
      template_part p;
      p.is_variable = true;
      p.text = parsed.value.source();
      p.column = open_column;
      p.expr = std::move(parsed.value);
      t.parts_.push_back(std::move(p));
      pos = close + 2;
    }
    return result;
  }
};

template_parse_result parse_template(std::string_view source) {
  try {
    return template_parser::parse(source);
  } catch (...) { // std::bad_alloc
    template_parse_result r;
    r.error = "out of memory";
    return r;
  }
}

std::vector<variable_ref> text_template::variables() const {
  std::vector<variable_ref> out;
  for (const auto& p : parts_) {
    if (p.is_variable) {
      auto xs = p.expr.variables();
      out.insert(out.end(), std::make_move_iterator(xs.begin()),
                 std::make_move_iterator(xs.end()));
    }
  }
  return out;
}

bool text_template::is_single_expression() const {
  return parts_.size() == 1 && parts_[0].is_variable;
}

bool text_template::is_constant() const {
  return std::all_of(parts_.begin(), parts_.end(), [](const template_part& p) {
    return p.expr.is_constant();
  });
}

rendered_text text_template::render_with(const context& ctx,
                                         std::size_t max_bytes,
                                         const eval_limits& limits) const {
  rendered_text out;
  std::string piece;
  for (const auto& p : parts_) {
    const std::string* text = &p.text;
    if (p.is_variable) {
      piece.clear();
      auto error = p.expr.append_text(ctx, limits, piece, out.missing);
      if (!error.empty()) {
        out.errors.push_back(error + at_column(p.column));
        continue;
      }
      text = &piece;
    }
    if (out.truncated) {
      continue; // keep collecting `missing` and errors, stop growing the text
    }
    auto room = max_bytes - out.text.size();
    if (text->size() <= room) {
      out.text += *text;
    } else {
      std::string head = text->substr(0, room + 1);
      truncate_utf8(head, room);
      out.text += head;
      out.truncated = true;
    }
  }
  return out;
}

rendered_text text_template::render(const context& ctx,
                                    std::size_t max_bytes) const noexcept {
  try {
    eval_limits limits;
    limits.max_text_bytes = std::max(limits.max_text_bytes, max_bytes);
    return render_with(ctx, max_bytes, limits);
  } catch (...) {
    // Only std::bad_alloc can get here; the output is bounded, so this means
    // the process is out of memory anyway.
    return rendered_text{};
  }
}

eval_result
text_template::evaluate_value(const context& ctx,
                              const eval_limits& limits) const noexcept {
  eval_result r;
  try {
    if (is_single_expression()) {
      r = parts_[0].expr.evaluate(ctx, limits);
      if (!r.ok()) {
        r.error += at_column(parts_[0].column);
      }
      return r;
    }
    auto out = render_with(ctx, limits.max_text_bytes, limits);
    r.missing = std::move(out.missing);
    if (!out.errors.empty()) {
      r.error = std::move(out.errors.front());
    } else {
      r.result = value(std::move(out.text));
    }
  } catch (...) {
    r = eval_result{};
    r.error = "out of memory";
  }
  return r;
}

} // namespace ringback::workflows
