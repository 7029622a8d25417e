#include "ringback/workflows/reference.hpp"

#include "ringback/workflows/expr.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace ringback::workflows {

namespace {

/// A table cell: one line, `|` escaped (GitHub splits cells on it even
/// inside code spans).
std::string cell(std::string_view x) {
  std::string out;
  out.reserve(x.size());
  for (char c : x) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n')
      out += ' ';
    else
      out += c;
  }
  return out;
}

std::string code(std::string_view x) {
  return "`" + std::string(x) + "`";
}

std::string code_list(const std::vector<std::string>& xs) {
  std::string out;
  for (const auto& x : xs) {
    if (!out.empty())
      out += ", ";
    out += code(x);
  }
  return out;
}

/// The kind column: the kind and its bounds or choices.
std::string kind_text(const field_spec& f) {
  std::string out = to_string(f.kind);
  switch (f.kind) {
    case field_kind::integer:
      if (f.max > 0)
        out += ", " + std::to_string(f.min) + " to " + std::to_string(f.max);
      break;
    case field_kind::duration:
      if (f.max > 0)
        out += ", " + format_duration(f.min) + " to " + format_duration(f.max);
      break;
    case field_kind::choice:
      out += ": " + code_list(f.choices);
      break;
    default:
      break;
  }
  return out;
}

/// Up to the first ". " (the whole text if there is none).
std::string first_sentence(const std::string& x) {
  auto end = x.find(". ");
  return end == std::string::npos ? x : x.substr(0, end + 1);
}

std::string default_text(const field_spec& f) {
  return f.default_source.empty() ? std::string("-") : code(f.default_source);
}

void variable_table(const std::vector<std::string>& names, std::string& out) {
  out += "| variable | meaning |\n|---|---|\n";
  for (const auto& v : names)
    out += "| " + code(v) + " | " + cell(variable_doc(v)) + " |\n";
  out += "\n";
}

/// The variables every trigger of `lang` offers, in the first trigger's
/// order.
std::vector<std::string> shared_variables(const language& lang) {
  std::vector<std::string> out;
  const auto& all = lang.triggers.all();
  if (all.empty())
    return out;
  for (const auto& v : all.front().variables) {
    bool everywhere = true;
    for (const auto& t : all)
      everywhere = everywhere
                   && std::find(t.variables.begin(), t.variables.end(), v)
                        != t.variables.end();
    if (everywhere)
      out.push_back(v);
  }
  return out;
}

void triggers(const language& lang, std::string& out) {
  out += "### Triggers\n\n";
  out += "| trigger | when |\n|---|---|\n";
  for (const auto& t : lang.triggers.all())
    out += "| " + code(t.name) + " | " + cell(first_sentence(t.doc)) + " |\n";
  out += "\n";
  const auto shared = shared_variables(lang);
  if (!shared.empty() && lang.triggers.all().size() > 1) {
    out += "Every run sees these variables:\n\n";
    variable_table(shared, out);
  }
  for (const auto& t : lang.triggers.all()) {
    out += "#### Trigger `" + t.name + "`\n\n";
    out += t.doc + "\n\n";
    if (t.voice)
      out += "The run answers a live call: its voice steps are the call's "
             "answer.\n\n";
    std::vector<std::string> own;
    for (const auto& v : t.variables)
      if (lang.triggers.all().size() == 1
          || std::find(shared.begin(), shared.end(), v) == shared.end())
        own.push_back(v);
    if (own.empty())
      continue;
    out += lang.triggers.all().size() > 1 ? "Its runs also see:\n\n"
                                          : "Its runs see:\n\n";
    variable_table(own, out);
  }
}

void step(const step_spec& s, std::string& out) {
  out += "##### `" + s.type + "`\n\n";
  out += s.doc + "\n\n";
  if (!s.fields.empty()) {
    if (s.shape == value_shape::map) {
      const auto* f = s.field(s.primary);
      out += "Written as a map: `" + s.type + ": {name: value, ...}`, "
             + (f != nullptr ? f->doc : std::string()) + ".\n\n";
    } else {
      out += "| field | kind | required | default | meaning |\n"
             "|---|---|---|---|---|\n";
      for (const auto& f : s.fields)
        out += "| " + code(f.name) + " | " + cell(kind_text(f)) + " | "
               + (f.required ? "yes" : "no") + " | " + cell(default_text(f))
               + " | " + cell(f.doc) + " |\n";
      out += "\n";
      if (!s.primary.empty())
        out += "Shorthand: `" + s.type + ": VALUE` sets `" + s.primary
               + "`.\n\n";
    }
  } else {
    out += "No fields: write `" + s.type + ":`.\n\n";
  }
  if (!s.branches.empty()) {
    out += "| branch | required | meaning | adds |\n|---|---|---|---|\n";
    for (const auto& b : s.branches) {
      std::string meaning = b.doc;
      if (b.keyed)
        meaning += " (a map: label -> list of steps)";
      out += "| " + code(b.name) + " | " + (b.required ? "yes" : "no") + " | "
             + cell(meaning) + " | "
             + (b.variables.empty() ? std::string("-")
                                    : cell(code_list(b.variables)))
             + " |\n";
    }
    out += "\n";
  }
  if (!s.defines.empty())
    out += "Defines for the steps after it: " + code_list(s.defines) + ".\n\n";
  if (!s.result_fields.empty()) {
    std::vector<std::string> names;
    for (const auto& r : s.result_fields)
      names.push_back("steps.<id>." + r);
    out += "With an `id`, later steps read " + code_list(names) + ".\n\n";
  }
  if (!s.example.empty())
    out += "```yaml\n" + s.example + "\n```\n\n";
}

void steps(const language& lang, std::string& out) {
  out += "### Steps\n\n";
  constexpr std::array<std::pair<step_family, const char*>, 4> families{{
    {step_family::voice, "Voice steps answer the live call of a "
                         "`call.incoming` workflow."},
    {step_family::messaging, "Messaging steps ask the outbox for texts."},
    {step_family::control, "Control steps decide what runs next, hold "
                           "variables and wait."},
    {step_family::integration, "Integration steps reach other systems and "
                               "the run's record."},
  }};
  out += "| step | family | what it does |\n|---|---|---|\n";
  for (const auto& [family, intro] : families)
    for (const auto& s : lang.steps.all())
      if (s->family == family) {
        out += "| " + code(s->type) + " | " + to_string(family) + " | "
               + cell(first_sentence(s->doc)) + " |\n";
      }
  out += "\n";
  for (const auto& [family, intro] : families) {
    bool any = false;
    for (const auto& s : lang.steps.all())
      any = any || s->family == family;
    if (!any)
      continue;
    std::string title = to_string(family);
    title[0] = static_cast<char>(title[0] - 'a' + 'A');
    out += "#### " + title + " steps\n\n" + intro + "\n\n";
    for (const auto& s : lang.steps.all())
      if (s->family == family)
        step(*s, out);
  }
}

void expressions(std::string& out) {
  out += "### Expression operators\n\nLowest precedence first.\n\n";
  out += "| operator | usage | meaning |\n|---|---|---|\n";
  for (const auto& d : operator_docs())
    out += "| " + cell(code(d.name)) + " | " + cell(code(d.usage)) + " | "
           + cell(d.doc) + " |\n";
  out += "\n### Filters\n\n";
  out += "| filter | usage | meaning |\n|---|---|---|\n";
  for (const auto& d : filter_docs())
    out += "| " + cell(code(d.name)) + " | " + cell(code(d.usage)) + " | "
           + cell(d.doc) + " |\n";
  out += "\n";
}

void durations(std::string& out) {
  out += "### Durations\n\n"
         "A duration is a whole number with a unit, `ms`, `s`, `m`, `h` or "
         "`d`, or several of them written together (`1h30m`); a bare number "
         "is seconds. Each field has its own bounds (see its kind).\n\n";
  out += "| written | means |\n|---|---|\n";
  for (const char* x : {"500ms", "20s", "90", "10m", "1h30m", "2h", "1d"}) {
    auto ms = parse_duration_ms(x);
    out += "| " + code(x) + " | "
           + (ms ? (*ms < 1000 ? std::to_string(*ms) + " milliseconds"
                               : std::to_string(*ms / 1000) + " seconds")
                 : std::string("invalid"))
           + " |\n";
  }
  out += "\n";
}

} // namespace

std::string reference_markdown(const language& lang) {
  std::string out;
  out += "## Reference\n\n"
         "Generated from ringback's registries (`reference_markdown()` in "
         "`workflows/src/reference.cpp`); do not edit by hand.\n\n";
  triggers(lang, out);
  steps(lang, out);
  expressions(out);
  durations(out);
  while (out.size() > 1 && out[out.size() - 1] == '\n'
         && out[out.size() - 2] == '\n')
    out.pop_back();
  return out;
}

namespace {

struct marker_span {
  std::size_t content_begin; ///< just after the begin marker
  std::size_t content_end;   ///< at the end marker
};

std::optional<marker_span> find_markers(std::string_view doc) {
  auto b = doc.find(reference_begin_marker);
  if (b == std::string_view::npos)
    return std::nullopt;
  auto begin = b + reference_begin_marker.size();
  auto e = doc.find(reference_end_marker, begin);
  if (e == std::string_view::npos)
    return std::nullopt;
  return marker_span{begin, e};
}

} // namespace

std::optional<std::string> extract_reference(std::string_view doc) {
  auto m = find_markers(doc);
  if (!m)
    return std::nullopt;
  auto x = doc.substr(m->content_begin, m->content_end - m->content_begin);
  if (x.substr(0, 2) == "\n\n")
    x.remove_prefix(2);
  if (!x.empty() && x.back() == '\n')
    x.remove_suffix(1);
  return std::string(x);
}

std::optional<std::string> replace_reference(std::string_view doc,
                                             std::string_view reference) {
  auto m = find_markers(doc);
  if (!m)
    return std::nullopt;
  std::string out(doc.substr(0, m->content_begin));
  out += "\n\n";
  out += reference;
  out += "\n";
  out += doc.substr(m->content_end);
  return out;
}

} // namespace ringback::workflows
