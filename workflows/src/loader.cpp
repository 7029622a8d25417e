#include "ringback/workflows/loader.hpp"

#include "ringback/workflows/calendar.hpp"
#include "ringback/workflows/program.hpp"
#include "ringback/workflows/yaml_source.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <system_error>

namespace ringback::workflows {

namespace {

constexpr path_style style = path_style::pointer;

/// Workflow names and step ids end up in message purposes and logs.
bool is_name(std::string_view x) {
  if (x.empty() || x.size() > 64)
    return false;
  return std::all_of(x.begin(), x.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'
           || c == '-';
  });
}

/// `set` names: identifier(.identifier)*, at most 64 bytes.
bool is_variable_name(std::string_view x) {
  if (x.empty() || x.size() > 64)
    return false;
  bool at_start = true;
  for (char c : x) {
    auto u = static_cast<unsigned char>(c);
    if (at_start) {
      if (std::isalpha(u) == 0 && c != '_')
        return false;
      at_start = false;
    } else if (c == '.') {
      at_start = true;
    } else if (std::isalnum(u) == 0 && c != '_') {
      return false;
    }
  }
  return !at_start;
}

const std::string name_rule = "(use letters, digits, '_' and '-', at most 64)";

/// "an" before a vowel ("an 'if' step"), else "a".
std::string a_or_an(std::string_view word) {
  return !word.empty()
             && std::string_view("aeiou").find(word[0])
                  != std::string_view::npos
           ? "an"
           : "a";
}

/// Fields read after the step's branches ran, so checked against the
/// variables they define: `repeat`'s `until` (`until: dial.answered` after a
/// `dial` in the body).
bool is_late_field(const step& s, std::string_view field) {
  return s.type == "repeat" && field == "until";
}

int line_of(const YAML::Mark& m) {
  return m.is_null() ? 0 : m.line + 1;
}

int column_of(const YAML::Mark& m) {
  return m.is_null() ? 0 : m.column + 1;
}

/// Most steps a file may hold, nested ones included.
constexpr std::size_t max_steps = 500;

/// Deepest nesting of branches.
constexpr std::size_t max_nesting = 16;

/// Names a run can read at some point of the file: the trigger's, and those
/// the steps before it define.
struct scope {
  std::set<std::string, std::less<>> names;
  std::vector<std::string> prefixes; ///< "steps.lookup.json." etc.

  bool knows(std::string_view name) const {
    if (names.count(name) > 0)
      return true;
    for (const auto& p : prefixes)
      if (name.size() > p.size() && name.substr(0, p.size()) == p)
        return true;
    return false;
  }

  std::vector<std::string> list() const {
    return {names.begin(), names.end()};
  }
};

class workflow_loader {
public:
  workflow_loader(std::string_view text, const language& lang, reporter& out)
    : text_(text), lang_(lang), out_(out) {
    // nop
  }

  std::shared_ptr<workflow> load() {
    auto doc = parse_yaml(text_, out_, style);
    if (!doc.usable)
      return nullptr;
    const auto& root = doc.root;
    if (!root.IsDefined() || root.IsNull()) {
      out_.error_at(1, 1, "",
                    "the file is empty (expected a workflow with 'name', "
                    "'trigger' and 'steps')");
      return nullptr;
    }
    if (!root.IsMap()) {
      out_.error(root.Mark(), "",
                 "expected a workflow (a map with 'name', 'trigger' and "
                 "'steps'), got "
                   + kind_name(root));
      return nullptr;
    }
    check_keys(root, root.Mark(), "",
               {{"name", "description", "trigger", "schedule", "steps"},
                {"name", "trigger", "steps"}},
               out_);
    auto wf = std::make_shared<workflow>();
    wf->file = out_.file();
    wf->source = std::string(text_);
    wf->version = content_hash(text_);
    YAML::Node steps;
    YAML::Mark steps_key;
    bool has_steps = false;
    YAML::Mark schedule_mark;
    bool has_schedule = false;
    for_each_entry(root, [&](const YAML::Node& key, const YAML::Node& value) {
      const auto& k = key.Scalar();
      auto path = child_path(style, "", k);
      if (k == "name") {
        if (auto x = scalar_text(value, key.Mark(), path)) {
          if (!is_name(*x))
            out_.error(value.Mark(), path,
                       "invalid workflow name '" + *x + "' " + name_rule);
          wf->name = *x;
          wf->name_line = line_of(value.Mark());
          wf->name_column = column_of(value.Mark());
        }
      } else if (k == "description") {
        if (auto x = scalar_text(value, key.Mark(), path))
          wf->description = *x;
      } else if (k == "trigger") {
        if (auto x = scalar_text(value, key.Mark(), path)) {
          trigger_ = lang_.triggers.find(*x);
          if (trigger_ == nullptr)
            out_.error(value.Mark(), path,
                       "unknown trigger '" + *x + "'"
                         + did_you_mean(*x, lang_.triggers.names())
                         + "; known triggers: " + join(lang_.triggers.names()));
          wf->trigger = *x;
        }
      } else if (k == "schedule") {
        has_schedule = true;
        schedule_mark = mark_of(value, key.Mark());
        if (auto x = scalar_text(value, key.Mark(), path)) {
          wf->schedule = *x;
          check_schedule(*x, value, path);
        }
      } else if (k == "steps") {
        steps = value;
        steps_key = key.Mark();
        has_steps = true;
      }
    });
    if (trigger_ != nullptr && trigger_->name == "schedule" && !has_schedule)
      out_.error(root.Mark(), "",
                 "missing required key 'schedule' (a cron expression, e.g. "
                 "'0 9 * * mon-fri', for trigger 'schedule')");
    if (trigger_ != nullptr && trigger_->name != "schedule" && has_schedule)
      out_.error(schedule_mark, "/schedule",
                 "'schedule' only goes with 'trigger: schedule'");
    // Steps last: their templates are checked against the trigger's
    // variables, wherever `trigger` appears in the file.
    if (has_steps) {
      scope sc;
      if (trigger_ != nullptr)
        sc.names.insert(trigger_->variables.begin(), trigger_->variables.end());
      if (steps.IsNull() || (steps.IsSequence() && steps.size() == 0)) {
        out_.error(mark_of(steps, steps_key), "/steps",
                   "a workflow needs at least one step");
      } else {
        wf->steps = load_list(steps, steps_key, "/steps", sc, 0);
      }
    }
    wf->step_count = ordinal_;
    if (out_.count() > 0)
      return nullptr;
    std::vector<compile_problem> problems;
    auto code = compile(*wf, trigger_, problems);
    for (auto& p : problems)
      out_.error_at(p.line, p.column, std::move(p.path), std::move(p.message));
    if (out_.count() > 0)
      return nullptr;
    wf->code = std::move(code);
    return wf;
  }

private:
  /// A scalar's text, or reports "expected a string".
  std::optional<std::string>
  scalar_text(const YAML::Node& value, const YAML::Mark& key,
              const std::string& path, const char* what = "a string") {
    if (value.IsScalar())
      return value.Scalar();
    out_.error(mark_of(value, key), path,
               std::string("expected ") + what + ", got " + kind_name(value));
    return std::nullopt;
  }

  void check_schedule(const std::string& text, const YAML::Node& value,
                      const std::string& path);

  /// 1-based column in the file (in bytes, like yaml-cpp's marks) of the
  /// `offset`-th (1-based) code point of a scalar's value, found by walking
  /// the scalar's source (quotes, `''` and `\` escapes) as far as its first
  /// line goes; the scalar's own column when the place is not on that line
  /// (block scalars, folded lines).
  int column_in(const YAML::Node& value, std::size_t offset) {
    const auto m = value.Mark();
    if (m.is_null() || offset == 0)
      return column_of(m);
    const auto pos = static_cast<std::size_t>(m.pos);
    if (pos >= text_.size())
      return column_of(m);
    const char first = text_[pos];
    if (first == '|' || first == '>')
      return column_of(m);
    const char quote = (first == '"' || first == '\'') ? first : '\0';
    auto i = pos + (quote != '\0' ? 1 : 0);
    std::size_t seen = 0; // code points of the value before `i`
    while (i < text_.size() && seen + 1 < offset) {
      const char c = text_[i];
      if (c == '\n' || c == '\r')
        return column_of(m);
      if (quote == '\'' && c == '\'') {
        if (i + 1 >= text_.size() || text_[i + 1] != '\'')
          return column_of(m); // the closing quote
        i += 2;
      } else if (quote == '"' && c == '"') {
        return column_of(m);
      } else if (quote == '"' && c == '\\' && i + 1 < text_.size()) {
        const char e = text_[i + 1];
        i += e == 'x' ? 4 : e == 'u' ? 6 : e == 'U' ? 10 : 2;
      } else {
        ++i;
        while (i < text_.size()
               && (static_cast<unsigned char>(text_[i]) & 0xC0) == 0x80)
          ++i;
      }
      ++seen;
    }
    if (seen + 1 < offset) // the text ended first
      return column_of(m);
    return column_of(m) + static_cast<int>(i - pos);
  }

  void error_in(const YAML::Node& value, std::size_t offset,
                const std::string& path, std::string message) {
    out_.error_at(line_of(value.Mark()), column_in(value, offset), path,
                  std::move(message));
  }

  void check_variables(const std::vector<variable_ref>& refs,
                       const YAML::Node& value, std::size_t base,
                       const std::string& path, const scope& sc) {
    if (trigger_ == nullptr) // an unknown trigger is reported already
      return;
    for (const auto& v : refs) {
      if (sc.knows(v.name))
        continue;
      auto known = sc.list();
      std::string msg = "unknown variable '" + v.name + "'"
                        + did_you_mean(v.name, known);
      if (v.name.rfind("vars.", 0) == 0)
        msg += "; a `set` step must define it before it is used";
      else if (v.name.rfind("steps.", 0) == 0)
        msg += "; results of a step are read after it, by its id "
               "(steps.<id>.<field>)";
      else
        msg += "; known variables here: " + join(known);
      error_in(value, base + v.column, path, std::move(msg));
    }
  }

  std::vector<step> load_list(const YAML::Node& list, const YAML::Mark& key,
                              const std::string& path, scope& sc,
                              std::size_t depth) {
    std::vector<step> out;
    if (list.IsNull())
      return out; // an empty branch (`else:`) does nothing
    if (!list.IsSequence()) {
      out_.error(mark_of(list, key), path,
                 "expected a list of steps, got " + kind_name(list));
      return out;
    }
    if (depth > max_nesting) {
      out_.error(list.Mark(), path,
                 "steps nested too deeply (at most "
                   + std::to_string(max_nesting) + " levels)");
      return out;
    }
    std::size_t index = 0;
    for (auto it = list.begin(); it != list.end(); ++it, ++index) {
      if (ordinal_ >= max_steps) {
        if (!too_many_) {
          too_many_ = true;
          out_.error(it->Mark(), child_path(style, path, index),
                     "too many steps (at most " + std::to_string(max_steps)
                       + " in a file)");
        }
        return out;
      }
      if (auto s = load_step(*it, child_path(style, path, index), sc, depth))
        out.push_back(std::move(*s));
    }
    return out;
  }

  std::optional<step> load_step(const YAML::Node& item, const std::string& path,
                                scope& sc, std::size_t depth) {
    auto type_names = lang_.steps.names();
    if (!item.IsMap()) {
      std::string hint;
      if (item.IsScalar() && lang_.steps.find(item.Scalar()) != nullptr)
        hint = " (write '" + item.Scalar() + ":' with a colon)";
      out_.error(item.Mark(), path,
                 "expected a step (a map like 'send_sms: {to: ..., body: "
                 "...}'), got "
                   + kind_name(item) + hint);
      return std::nullopt;
    }
    const auto before = out_.count();
    step s;
    s.path = path;
    s.ordinal = ordinal_++;
    s.line = line_of(item.Mark());
    s.column = column_of(item.Mark());
    // The type key first: it decides which sibling keys (branches) exist.
    std::vector<std::pair<YAML::Node, YAML::Node>> typed;
    for_each_entry(item, [&](const YAML::Node& key, const YAML::Node& value) {
      if (lang_.steps.find(key.Scalar()) != nullptr)
        typed.emplace_back(key, value);
    });
    std::shared_ptr<const step_spec> spec;
    if (!typed.empty())
      spec = lang_.steps.find(typed[0].first.Scalar());
    std::vector<std::string> allowed{"id"};
    if (spec)
      for (const auto& b : spec->branches)
        allowed.push_back(b.name);
    std::vector<std::pair<YAML::Node, YAML::Node>> branch_nodes;
    std::vector<std::string> suggested; // "did you mean" names given
    bool unknown = false;
    for_each_entry(item, [&](const YAML::Node& key, const YAML::Node& value) {
      const auto& k = key.Scalar();
      if (k == "id") {
        auto id_path = child_path(style, path, "id");
        if (auto x = scalar_text(value, key.Mark(), id_path)) {
          if (!is_name(*x)) {
            out_.error(value.Mark(), id_path,
                       "invalid step id '" + *x + "' " + name_rule);
          } else {
            auto [first, added] = ids_.emplace(*x, path);
            if (!added)
              out_.error(value.Mark(), id_path,
                         "duplicate step id '" + *x + "' (also used by "
                           + first->second + ")");
          }
          s.id = *x;
        }
      } else if (lang_.steps.find(k) != nullptr) {
        // handled above
      } else if (spec && spec->branch(k) != nullptr) {
        branch_nodes.emplace_back(key, value);
      } else {
        unknown = true;
        auto candidates = type_names;
        candidates.insert(candidates.end(), allowed.begin(), allowed.end());
        suggested.push_back(nearest(k, candidates));
        std::string msg = "unknown key '" + k + "'"
                          + did_you_mean(k, candidates);
        if (spec)
          msg += "; " + a_or_an(spec->type) + " '" + spec->type
                 + "' step takes " + join(allowed);
        else
          msg += "; known step types: " + join(type_names);
        out_.error(key.Mark(), path, std::move(msg));
      }
    });
    if (typed.empty()) {
      if (!unknown)
        out_.error(item.Mark(), path,
                   "missing step type (known step types: " + join(type_names)
                     + ")");
      return std::nullopt;
    }
    if (typed.size() > 1) {
      out_.error(typed[1].first.Mark(), path,
                 "more than one step type in one step ('"
                   + typed[0].first.Scalar() + "' and '"
                   + typed[1].first.Scalar()
                   + "'); give each its own list item");
    }
    s.type = spec->type;
    s.spec = spec;
    const auto& [type_key, type_value] = typed[0];
    load_fields(type_key, type_value, child_path(style, path, s.type), sc, s);
    // Branches: in the spec's order; each sees what came before and what
    // the branch offers (not what a sibling branch defines); what they
    // define is known after the step, except for `on_transcription`, which
    // runs later as a run of its own. Branches run after the step itself
    // (`on_transcription` after the recording), so they see what it defines.
    scope outer = sc;
    define(s, outer);
    for (const auto& bs : spec->branches) {
      const YAML::Node* key = nullptr;
      const YAML::Node* value = nullptr;
      for (const auto& [k, v] : branch_nodes)
        if (k.Scalar() == bs.name) {
          key = &k;
          value = &v;
        }
      auto bpath = child_path(style, path, bs.name);
      if (key == nullptr) {
        // A misspelt key already says "did you mean"; don't say it twice.
        if (bs.required
            && std::find(suggested.begin(), suggested.end(), bs.name)
                 == suggested.end())
          out_.error(item.Mark(), path,
                     "missing required key '" + bs.name + "' (" + bs.doc + ")");
        continue;
      }
      if (bs.keyed) {
        load_keyed_branch(bs, *key, *value, bpath, outer, sc, depth, s);
        continue;
      }
      branch b;
      b.name = bs.name;
      b.line = line_of(mark_of(*value, key->Mark()));
      b.column = column_of(mark_of(*value, key->Mark()));
      scope inner = outer;
      inner.names.insert(bs.variables.begin(), bs.variables.end());
      b.steps = load_list(*value, key->Mark(), bpath, inner, depth + 1);
      if (bs.name != "on_transcription")
        merge_defined(sc, inner, bs.variables);
      s.branches.push_back(std::move(b));
    }
    load_late_fields(type_value, child_path(style, path, s.type), sc, s);
    check_step(s, item, path);
    if (out_.count() > before)
      return std::nullopt;
    define(s, sc);
    return s;
  }

  void load_keyed_branch(const branch_spec& bs, const YAML::Node& key,
                         const YAML::Node& value, const std::string& path,
                         const scope& outer, scope& sc, std::size_t depth,
                         step& s) {
    if (!value.IsMap()) {
      out_.error(mark_of(value, key.Mark()), path,
                 "expected a map of cases (a value: a list of steps), got "
                   + kind_name(value));
      return;
    }
    if (value.size() == 0) {
      out_.error(value.Mark(), path, "a switch needs at least one case");
      return;
    }
    for_each_entry(value, [&](const YAML::Node& k, const YAML::Node& v) {
      branch b;
      b.name = bs.name;
      b.label = k.Scalar();
      b.line = line_of(k.Mark());
      b.column = column_of(k.Mark());
      scope inner = outer;
      inner.names.insert(bs.variables.begin(), bs.variables.end());
      b.steps = load_list(v, k.Mark(), child_path(style, path, k.Scalar()),
                          inner, depth + 1);
      merge_defined(sc, inner, bs.variables);
      s.branches.push_back(std::move(b));
    });
  }

  static void merge_defined(scope& outer, const scope& inner,
                            const std::vector<std::string>& branch_only) {
    for (const auto& n : inner.names)
      if (std::find(branch_only.begin(), branch_only.end(), n)
          == branch_only.end())
        outer.names.insert(n);
    for (const auto& p : inner.prefixes)
      if (std::find(outer.prefixes.begin(), outer.prefixes.end(), p)
          == outer.prefixes.end())
        outer.prefixes.push_back(p);
  }

  /// Adds what `s` defines for the steps after it.
  void define(const step& s, scope& sc) {
    for (const auto& d : s.spec->defines)
      sc.names.insert(d);
    if (s.type == "set")
      if (const auto* f = s.field("values"))
        for (const auto& [name, t] : f->map)
          sc.names.insert("vars." + name);
    if (!s.id.empty())
      for (const auto& r : s.spec->result_fields) {
        if (!r.empty() && r.back() == '*')
          sc.prefixes.push_back("steps." + s.id + "."
                                + r.substr(0, r.size() - 1));
        else
          sc.names.insert("steps." + s.id + "." + r);
      }
  }

  /// Checks that need several fields at once.
  void check_step(step& s, const YAML::Node& item, const std::string& path) {
    auto fpath = child_path(style, path, s.type);
    if (s.type == "record_voicemail") {
      const auto* t = s.field("transcribe");
      if (s.find_branch("on_transcription") != nullptr
          && (t == nullptr || !t->flag))
        out_.error(item.Mark(), path,
                   "'on_transcription' needs 'transcribe: true'");
    }
    if (s.type == "http") {
      const auto* body = s.field("body");
      const auto* json = s.field("json");
      if (body != nullptr && json != nullptr)
        out_.error_at(json->line, json->column, fpath,
                      "give either 'body' or 'json', not both");
      auto method = s.fields.find("method");
      if (method != s.fields.end() && method->second.defaulted
          && (body != nullptr || json != nullptr)) {
        // A request with a body and no method is a POST.
        method->second.text = parse_template("POST").value;
      } else if (method != s.fields.end()
                 && (body != nullptr || json != nullptr)) {
        auto m = method->second.text.source();
        if (m == "GET" || m == "DELETE")
          out_.error_at(method->second.line, method->second.column, fpath,
                        "a " + m + " request has no body");
      }
    }
  }

  void load_fields(const YAML::Node& key, const YAML::Node& value,
                   const std::string& path, const scope& sc, step& s) {
    const auto& spec = *s.spec;
    key_rules rules;
    for (const auto& f : spec.fields) {
      rules.allowed.push_back(f.name);
      if (f.required)
        rules.required.push_back(f.name);
    }
    const auto where = mark_of(value, key.Mark());
    if (spec.shape == value_shape::map) {
      const auto* f = spec.field(spec.primary);
      if (!value.IsMap() || value.size() == 0) {
        out_.error(where, path,
                   "expected a map of " + f->doc + ", got "
                     + (value.IsMap() ? "an empty map" : kind_name(value)));
        return;
      }
      load_field(*f, key, value, path, sc, s);
      return;
    }
    const bool shorthand = !spec.primary.empty()
                           && (value.IsScalar() || value.IsSequence());
    if (shorthand) {
      const auto* f = spec.field(spec.primary);
      load_field(*f, key, value, path, sc, s);
    } else if (!value.IsNull() && !value.IsMap()) {
      std::string msg = "expected a map of fields";
      if (!rules.allowed.empty())
        msg += " (" + join(rules.allowed) + ")";
      out_.error(value.Mark(), path, msg + ", got " + kind_name(value));
      return;
    } else {
      check_keys(value, where, path, rules, out_);
      if (value.IsMap())
        for_each_entry(value, [&](const YAML::Node& k, const YAML::Node& v) {
          const auto* f = spec.field(k.Scalar());
          if (f != nullptr && !is_late_field(s, f->name))
            load_field(*f, k, v, child_path(style, path, f->name), sc, s);
        });
    }
    if (shorthand)
      for (const auto& f : spec.fields)
        if (f.required && f.name != spec.primary)
          out_.error(where, path,
                     "missing required key '" + f.name + "' (write '"
                       + spec.type + ": {" + spec.primary + ": ..., " + f.name
                       + ": ...}')");
    for (const auto& f : spec.fields)
      if (!f.required && !f.default_source.empty()
          && s.field(f.name) == nullptr)
        apply_default(f, where, path, sc, s);
  }

  /// Loads the fields `is_late_field` held back, with the scope after the
  /// step's branches.
  void load_late_fields(const YAML::Node& value, const std::string& path,
                        const scope& sc, step& s) {
    if (!value.IsMap())
      return;
    for_each_entry(value, [&](const YAML::Node& k, const YAML::Node& v) {
      const auto* f = s.spec->field(k.Scalar());
      if (f != nullptr && is_late_field(s, f->name))
        load_field(*f, k, v, child_path(style, path, f->name), sc, s);
    });
  }

  std::optional<text_template> load_template(const YAML::Node& value,
                                             const std::string& path,
                                             const scope& sc) {
    auto parsed = parse_template(value.Scalar());
    if (!parsed.ok()) {
      out_.error(value.Mark(), path, parsed.error);
      return std::nullopt;
    }
    check_variables(parsed.value.variables(), value, 0, path, sc);
    return std::move(parsed.value);
  }

  void load_field(const field_spec& f, const YAML::Node& key,
                  const YAML::Node& value, const std::string& path,
                  const scope& sc, step& s) {
    field_value fv;
    fv.kind = f.kind;
    fv.line = line_of(mark_of(value, key.Mark()));
    fv.column = column_of(mark_of(value, key.Mark()));
    const auto where = mark_of(value, key.Mark());
    switch (f.kind) {
      case field_kind::text: {
        auto source = scalar_text(value, key.Mark(), path);
        if (!source)
          return;
        if (f.required
            && source->find_first_not_of(" \t\r\n") == std::string::npos) {
          out_.error(where, path, "must not be empty");
          return;
        }
        auto t = load_template(value, path, sc);
        if (!t)
          return;
        fv.text = std::move(*t);
        break;
      }
      case field_kind::condition: {
        auto source = scalar_text(value, key.Mark(), path, "an expression");
        if (!source)
          return;
        auto parsed = parse_condition(*source);
        if (!parsed.ok()) {
          error_in(value, parsed.column, path, parsed.error);
          return;
        }
        check_variables(parsed.value.variables(), value, 0, path, sc);
        fv.expr = std::move(parsed.value);
        break;
      }
      case field_kind::duration: {
        auto source = scalar_text(value, key.Mark(), path, "a duration");
        if (!source)
          return;
        auto ms = parse_duration_ms(*source);
        if (!ms) {
          out_.error(where, path,
                     "invalid duration '" + *source
                       + "' (write e.g. 30s, 10m, 2h, 1d or 1h30m)");
          return;
        }
        if (*ms < f.min || (f.max > 0 && *ms > f.max)) {
          out_.error(where, path,
                     "duration " + format_duration(*ms) + " out of range "
                       + format_duration(f.min) + " to "
                       + format_duration(f.max));
          return;
        }
        fv.number = *ms;
        break;
      }
      case field_kind::integer: {
        auto source = scalar_text(value, key.Mark(), path, "a whole number");
        if (!source)
          return;
        std::int64_t n = 0;
        auto [ptr, ec] = std::from_chars(source->data(),
                                         source->data() + source->size(), n);
        if (ec != std::errc{} || ptr != source->data() + source->size()) {
          out_.error(where, path,
                     "expected a whole number, got '" + *source + "'");
          return;
        }
        if (n < f.min || (f.max > 0 && n > f.max)) {
          out_.error(where, path,
                     std::to_string(n) + " is out of range "
                       + std::to_string(f.min) + " to "
                       + std::to_string(f.max));
          return;
        }
        fv.number = n;
        break;
      }
      case field_kind::boolean: {
        auto source = scalar_text(value, key.Mark(), path, "true or false");
        if (!source)
          return;
        if (*source == "true") {
          fv.flag = true;
        } else if (*source == "false") {
          fv.flag = false;
        } else {
          out_.error(where, path,
                     "expected true or false, got '" + *source + "'");
          return;
        }
        break;
      }
      case field_kind::choice: {
        auto source = scalar_text(value, key.Mark(), path);
        if (!source)
          return;
        if (std::find(f.choices.begin(), f.choices.end(), *source)
            == f.choices.end()) {
          out_.error(where, path,
                     "'" + *source + "' is not one of " + join(f.choices)
                       + did_you_mean(*source, f.choices));
          return;
        }
        fv.text = parse_template(*source).value;
        break;
      }
      case field_kind::text_list: {
        if (value.IsScalar()) {
          auto t = load_template(value, path, sc);
          if (!t)
            return;
          fv.list.push_back(std::move(*t));
        } else if (value.IsSequence() && value.size() > 0) {
          std::size_t i = 0;
          for (auto it = value.begin(); it != value.end(); ++it, ++i) {
            auto ipath = child_path(style, path, i);
            if (!it->IsScalar()) {
              out_.error(it->Mark(), ipath,
                         "expected a string, got " + kind_name(*it));
              continue;
            }
            if (auto t = load_template(*it, ipath, sc))
              fv.list.push_back(std::move(*t));
          }
          if (value.size() > 10) {
            out_.error(where, path, "at most 10 entries");
            return;
          }
        } else {
          out_.error(where, path,
                     "expected a string or a list of strings, got "
                       + (value.IsSequence() ? "an empty list"
                                             : kind_name(value)));
          return;
        }
        break;
      }
      case field_kind::text_map: {
        if (!value.IsMap()) {
          out_.error(where, path, "expected a map, got " + kind_name(value));
          return;
        }
        for_each_entry(value, [&](const YAML::Node& k, const YAML::Node& v) {
          auto kpath = child_path(style, path, k.Scalar());
          if (s.type == "set" && !is_variable_name(k.Scalar())) {
            out_.error(k.Mark(), kpath,
                       "invalid variable name '" + k.Scalar()
                         + "' (letters, digits and '_', dotted: a.b)");
            return;
          }
          if (!v.IsScalar()) {
            out_.error(mark_of(v, k.Mark()), kpath,
                       "expected a string, got " + kind_name(v));
            return;
          }
          if (auto t = load_template(v, kpath, sc))
            fv.map.emplace_back(k.Scalar(), std::move(*t));
        });
        break;
      }
      case field_kind::json: {
        if (!load_json(value, key.Mark(), path, sc, fv.json))
          return;
        break;
      }
    }
    s.fields.emplace(f.name, std::move(fv));
  }

  bool load_json(const YAML::Node& value, const YAML::Mark& key,
                 const std::string& path, const scope& sc, json_template& out) {
    if (value.IsNull()) {
      out.what = json_template::kind::null;
      return true;
    }
    if (value.IsScalar()) {
      const auto& text = value.Scalar();
      if (value.Tag() == "?") { // plain: YAML's core schema types
        if (text == "true" || text == "false") {
          out.what = json_template::kind::boolean;
          out.flag = text == "true";
          return true;
        }
        if (text == "null" || text == "~") {
          out.what = json_template::kind::null;
          return true;
        }
        double d = 0;
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(),
                                         d);
        if (ec == std::errc{} && ptr == text.data() + text.size()) {
          out.what = json_template::kind::number;
          out.number = d;
          return true;
        }
      }
      auto t = load_template(value, path, sc);
      if (!t)
        return false;
      out.what = json_template::kind::string;
      out.text = std::move(*t);
      return true;
    }
    bool ok = true;
    if (value.IsSequence()) {
      out.what = json_template::kind::array;
      std::size_t i = 0;
      for (auto it = value.begin(); it != value.end(); ++it, ++i) {
        json_template item;
        ok = load_json(*it, it->Mark(), child_path(style, path, i), sc, item)
             && ok;
        out.items.push_back(std::move(item));
      }
      return ok;
    }
    out.what = json_template::kind::object;
    for_each_entry(value, [&](const YAML::Node& k, const YAML::Node& v) {
      json_template item;
      ok = load_json(v, k.Mark(), child_path(style, path, k.Scalar()), sc, item)
           && ok;
      out.members.emplace_back(k.Scalar(), std::move(item));
    });
    (void) key;
    return ok;
  }

  void apply_default(const field_spec& f, const YAML::Mark& where,
                     const std::string& path, const scope& sc, step& s) {
    field_value fv;
    fv.kind = f.kind;
    fv.defaulted = true;
    switch (f.kind) {
      case field_kind::text:
      case field_kind::choice:
      case field_kind::text_list: {
        auto parsed = parse_template(f.default_source);
        if (!parsed.ok())
          return;
        if (trigger_ != nullptr)
          for (const auto& v : parsed.value.variables())
            if (!sc.knows(v.name)) {
              out_.error(where, path,
                         "missing required key '" + f.name + "' (its default '"
                           + f.default_source + "' needs " + v.name
                           + ", which trigger '" + trigger_->name
                           + "' does not offer)");
              return;
            }
        if (f.kind == field_kind::text_list)
          fv.list.push_back(std::move(parsed.value));
        else
          fv.text = std::move(parsed.value);
        break;
      }
      case field_kind::duration:
        fv.number = parse_duration_ms(f.default_source).value_or(0);
        break;
      case field_kind::integer:
        fv.number = std::stoll(f.default_source);
        break;
      case field_kind::boolean:
        fv.flag = f.default_source == "true";
        break;
      case field_kind::condition: {
        auto parsed = parse_condition(f.default_source);
        if (!parsed.ok())
          return;
        fv.expr = std::move(parsed.value);
        break;
      }
      case field_kind::text_map:
      case field_kind::json:
        return;
    }
    s.fields.emplace(f.name, std::move(fv));
  }

  std::string_view text_;
  const language& lang_;
  reporter& out_;
  const trigger_spec* trigger_ = nullptr;
  std::map<std::string, std::string> ids_; // id -> path of its first use
  std::size_t ordinal_ = 0;
  bool too_many_ = false;
};

void workflow_loader::check_schedule(const std::string& text,
                                     const YAML::Node& value,
                                     const std::string& path) {
  auto parsed = cron_schedule::parse(text);
  if (!parsed.ok())
    error_in(value, parsed.column, path, parsed.error);
}

bool ends_with(std::string_view x, std::string_view suffix) {
  return x.size() >= suffix.size()
         && x.substr(x.size() - suffix.size()) == suffix;
}

} // namespace

load_result load_string(std::string_view text, const std::string& display_name,
                        const language& lang) {
  load_result result;
  reporter out(display_name, result.diagnostics);
  try {
    workflow_loader loader(text, lang, out);
    result.value = loader.load();
  } catch (const std::exception& e) {
    // yaml-cpp may throw from node access on documents we did not foresee;
    // a loader must still answer with a diagnostic.
    result.value.reset();
    out.error_at(0, 0, "",
                 std::string("internal error while loading: ") + e.what());
  }
  if (!result.diagnostics.empty())
    result.value.reset();
  sort_by_position(result.diagnostics);
  return result;
}

load_result load_file(const std::string& path, const language& lang) {
  load_result result;
  reporter out(path, result.diagnostics);
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  const yaml_limits limits;
  if (!ec && size > limits.max_bytes) {
    out.error_at(0, 0, "",
                 "the file is too large (" + std::to_string(size)
                   + " bytes; at most " + std::to_string(limits.max_bytes)
                   + ")");
    return result;
  }
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    out.error_at(0, 0, "",
                 "cannot read file: " + std::generic_category().message(errno));
    return result;
  }
  std::string text;
  std::array<char, 8192> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0
         && text.size() <= limits.max_bytes)
    text.append(buf.data(), n);
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) {
    out.error_at(0, 0, "", "cannot read file");
    return result;
  }
  return load_string(text, path, lang);
}

std::vector<workflow_ptr> catalog::for_trigger(std::string_view trigger) const {
  std::vector<workflow_ptr> out;
  for (const auto& wf : workflows_)
    if (wf->trigger == trigger)
      out.push_back(wf);
  return out;
}

workflow_ptr catalog::find(std::string_view name) const {
  for (const auto& wf : workflows_)
    if (wf->name == name)
      return wf;
  return nullptr;
}

bool catalog::add(workflow_ptr wf) {
  auto report = [&](std::string message) {
    diagnostic d;
    d.file = wf->file;
    d.line = wf->name_line;
    d.column = wf->name_column;
    d.path = "/name";
    d.message = std::move(message);
    diagnostics_.push_back(std::move(d));
  };
  for (const auto& other : workflows_) {
    if (other->name == wf->name) {
      report("duplicate workflow name '" + wf->name + "' (also defined in "
             + other->file + ")");
      return false;
    }
    if (wf->trigger == "call.incoming" && other->trigger == "call.incoming") {
      report("a second call.incoming workflow ('" + wf->name + "'; '"
             + other->name + "' in " + other->file
             + " answers calls already): a call gets one answer");
      return false;
    }
  }
  workflows_.push_back(std::move(wf));
  return true;
}

void catalog::add_diagnostics(std::vector<diagnostic> xs) {
  for (auto& x : xs)
    diagnostics_.push_back(std::move(x));
}

catalog load_directory(const std::string& dir, const language& lang) {
  namespace fs = std::filesystem;
  catalog result;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  auto unreadable = [&] {
    diagnostic d;
    d.file = dir;
    d.message = "cannot read directory: " + ec.message();
    result.add_diagnostics({std::move(d)});
  };
  if (ec) {
    unreadable();
    return result;
  }
  std::vector<std::string> names;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    auto name = it->path().filename().string();
    if (name.empty() || name[0] == '.' || !ends_with(name, ".yaml")
        || ends_with(name, ".test.yaml"))
      continue;
    std::error_code type_ec;
    if (fs::is_regular_file(it->path(), type_ec))
      names.push_back(name);
  }
  if (ec)
    unreadable();
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    auto loaded = load_file((fs::path(dir) / name).string(), lang);
    result.add_diagnostics(std::move(loaded.diagnostics));
    if (loaded.value)
      result.add(std::move(loaded.value));
  }
  return result;
}

catalog load_path(const std::string& path, const language& lang) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    return load_directory(path, lang);
  catalog result;
  auto loaded = load_file(path, lang);
  result.add_diagnostics(std::move(loaded.diagnostics));
  if (loaded.value)
    result.add(std::move(loaded.value));
  return result;
}

} // namespace ringback::workflows
