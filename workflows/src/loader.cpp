#include "ringback/workflows/loader.hpp"

#include "ringback/workflows/yaml_source.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <map>
#include <system_error>

namespace ringback::workflows {

namespace {

constexpr path_style style = path_style::pointer;

/// Workflow names and step ids end up in message purposes and logs.
bool is_name(std::string_view x) {
  if (x.empty() || x.size() > 64) {
    return false;
  }
  return std::all_of(x.begin(), x.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'
           || c == '-';
  });
}

const std::string name_rule = "(use letters, digits, '_' and '-', at most 64)";

int line_of(const YAML::Mark& m) {
  return m.is_null() ? 0 : m.line + 1;
}

int column_of(const YAML::Mark& m) {
  return m.is_null() ? 0 : m.column + 1;
}

class workflow_loader {
public:
  workflow_loader(const language& lang, reporter& out)
    : lang_(lang), out_(out) {
    // nop
  }

  std::optional<workflow> load(std::string_view text) {
    auto doc = parse_yaml(text, out_, style);
    if (!doc.usable) {
      return std::nullopt;
    }
    const auto& root = doc.root;
    if (!root.IsDefined() || root.IsNull()) {
      out_.error_at(1, 1, "",
                    "the file is empty (expected a workflow with 'name', "
                    "'trigger' and 'steps')");
      return std::nullopt;
    }
    if (!root.IsMap()) {
      out_.error(root.Mark(), "",
                 "expected a workflow (a map with 'name', 'trigger' and "
                 "'steps'), got "
                   + kind_name(root));
      return std::nullopt;
    }
    check_keys(root, root.Mark(), "",
               {{"name", "description", "trigger", "steps"},
                {"name", "trigger", "steps"}},
               out_);
    workflow wf;
    wf.file = out_.file();
    const trigger_spec* trigger = nullptr;
    YAML::Node steps;
    YAML::Mark steps_key;
    bool has_steps = false;
    for_each_entry(root, [&](const YAML::Node& key, const YAML::Node& value) {
      const auto& k = key.Scalar();
      auto path = child_path(style, "", k);
      if (k == "name") {
        if (auto x = scalar_text(value, key.Mark(), path)) {
          if (!is_name(*x)) {
            out_.error(value.Mark(), path,
                       "invalid workflow name '" + *x + "' " + name_rule);
          }
          wf.name = *x;
          wf.name_line = line_of(value.Mark());
          wf.name_column = column_of(value.Mark());
        }
      } else if (k == "description") {
        if (auto x = scalar_text(value, key.Mark(), path)) {
          wf.description = *x;
        }
      } else if (k == "trigger") {
        if (auto x = scalar_text(value, key.Mark(), path)) {
          trigger = lang_.triggers.find(*x);
          if (trigger == nullptr) {
            out_.error(value.Mark(), path,
                       "unknown trigger '" + *x + "'"
                         + did_you_mean(*x, lang_.triggers.names())
                         + "; known triggers: " + join(lang_.triggers.names()));
          }
          wf.trigger = *x;
        }
      } else if (k == "steps") {
        steps = value;
        steps_key = key.Mark();
        has_steps = true;
      }
    });
    // Steps last: their templates are checked against the trigger's
    // variables, wherever `trigger` appears in the file.
    if (has_steps) {
      load_steps(steps, steps_key, trigger, wf);
    }
    if (out_.count() > 0) {
      return std::nullopt;
    }
    return wf;
  }

private:
  /// A scalar's text, or reports "expected a string".
  std::optional<std::string> scalar_text(const YAML::Node& value,
                                         const YAML::Mark& key,
                                         const std::string& path) {
    if (value.IsScalar()) {
      return value.Scalar();
    }
    out_.error(mark_of(value, key), path,
               "expected a string, got " + kind_name(value));
    return std::nullopt;
  }

  void load_steps(const YAML::Node& steps, const YAML::Mark& key,
                  const trigger_spec* trigger, workflow& wf) {
    const std::string path = "/steps";
    if (steps.IsNull() || (steps.IsSequence() && steps.size() == 0)) {
      out_.error(mark_of(steps, key), path,
                 "a workflow needs at least one step");
      return;
    }
    if (!steps.IsSequence()) {
      out_.error(steps.Mark(), path,
                 "expected a list of steps, got " + kind_name(steps));
      return;
    }
    std::map<std::string, std::string> ids; // id -> path of its first use
    std::size_t index = 0;
    for (auto it = steps.begin(); it != steps.end(); ++it, ++index) {
      if (auto s = load_step(*it, index, trigger, ids)) {
        wf.steps.push_back(std::move(*s));
      }
    }
  }

  std::optional<step> load_step(const YAML::Node& item, std::size_t index,
                                const trigger_spec* trigger,
                                std::map<std::string, std::string>& ids) {
    const auto path = child_path(style, "/steps", index);
    if (!item.IsMap()) {
      out_.error(
        item.Mark(), path,
        "expected a step (a map like 'send_sms: {to: ..., body: ...}'), got "
          + kind_name(item));
      return std::nullopt;
    }
    const auto before = out_.count();
    step s;
    s.index = index;
    s.line = line_of(item.Mark());
    s.column = column_of(item.Mark());
    auto type_names = lang_.steps.names();
    auto step_keys = type_names;
    step_keys.emplace_back("id");
    std::vector<std::pair<YAML::Node, YAML::Node>> typed; // (key, fields)
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
            auto [first, added] = ids.emplace(*x, path);
            if (!added) {
              out_.error(value.Mark(), id_path,
                         "duplicate step id '" + *x + "' (also used by "
                           + first->second + ")");
            }
          }
          s.id = *x;
        }
      } else if (lang_.steps.find(k) != nullptr) {
        typed.emplace_back(key, value);
      } else {
        unknown = true;
        out_.error(key.Mark(), path,
                   "unknown step type '" + k + "'" + did_you_mean(k, step_keys)
                     + "; known step types: " + join(type_names));
      }
    });
    if (typed.empty()) {
      if (!unknown) {
        out_.error(item.Mark(), path,
                   "missing step type (known step types: " + join(type_names)
                     + ")");
      }
      return std::nullopt;
    }
    if (typed.size() > 1) {
      out_.error(typed[1].first.Mark(), path,
                 "more than one step type in one step ('"
                   + typed[0].first.Scalar() + "' and '"
                   + typed[1].first.Scalar()
                   + "'); give each its own list item");
    }
    s.type = typed[0].first.Scalar();
    s.spec = lang_.steps.find(s.type);
    load_fields(typed[0].first, typed[0].second,
                child_path(style, path, s.type), trigger, s);
    if (out_.count() > before) {
      return std::nullopt;
    }
    return s;
  }

  void load_fields(const YAML::Node& key, const YAML::Node& value,
                   const std::string& path, const trigger_spec* trigger,
                   step& s) {
    const auto& spec = *s.spec;
    key_rules rules;
    for (const auto& f : spec.fields) {
      rules.allowed.push_back(f.name);
      if (f.required) {
        rules.required.push_back(f.name);
      }
    }
    if (!value.IsNull() && !value.IsMap()) {
      out_.error(value.Mark(), path,
                 "expected a map of fields (" + join(rules.allowed) + "), got "
                   + kind_name(value));
      return;
    }
    // A null value (`send_sms:`) has no useful mark: point at its key.
    const auto where = mark_of(value, key.Mark());
    check_keys(value, where, path, rules, out_);
    if (value.IsMap()) {
      for_each_entry(value, [&](const YAML::Node& k, const YAML::Node& v) {
        if (const auto* f = spec.field(k.Scalar())) {
          load_field(*f, k, v, child_path(style, path, f->name), trigger, s);
        }
      });
    }
    for (const auto& f : spec.fields) {
      if (!f.required && !f.default_source.empty()
          && s.field(f.name) == nullptr) {
        apply_default(f, where, path, trigger, s);
      }
    }
  }

  void load_field(const field_spec& f, const YAML::Node& key,
                  const YAML::Node& value, const std::string& path,
                  const trigger_spec* trigger, step& s) {
    switch (f.kind) {
      case field_kind::text: {
        auto source = scalar_text(value, key.Mark(), path);
        if (!source) {
          return;
        }
        if (f.required
            && source->find_first_not_of(" \t\r\n") == std::string::npos) {
          out_.error(mark_of(value, key.Mark()), path, "must not be empty");
          return;
        }
        auto parsed = parse_template(*source);
        if (!parsed.ok()) {
          out_.error(value.Mark(), path, parsed.error);
          return;
        }
        check_variables(parsed.value, value.Mark(), path, trigger);
        field_value fv;
        fv.kind = f.kind;
        fv.text = std::move(parsed.value);
        fv.line = line_of(value.Mark());
        fv.column = column_of(value.Mark());
        s.fields.emplace(f.name, std::move(fv));
        break;
      }
    }
  }

  void check_variables(const text_template& t, const YAML::Mark& where,
                       const std::string& path, const trigger_spec* trigger) {
    if (trigger == nullptr) { // an unknown trigger is reported already
      return;
    }
    const auto& known = trigger->variables;
    for (const auto& v : t.variables()) {
      if (std::find(known.begin(), known.end(), v.text) == known.end()) {
        out_.error(where, path,
                   "unknown variable '" + v.text + "'"
                     + did_you_mean(v.text, known) + "; known variables for "
                     + trigger->name + ": " + join(known));
      }
    }
  }

  void apply_default(const field_spec& f, const YAML::Mark& where,
                     const std::string& path, const trigger_spec* trigger,
                     step& s) {
    auto parsed = parse_template(f.default_source);
    if (!parsed.ok() || trigger == nullptr) {
      return;
    }
    for (const auto& v : parsed.value.variables()) {
      if (std::find(trigger->variables.begin(), trigger->variables.end(),
                    v.text)
          == trigger->variables.end()) {
        out_.error(where, path,
                   "missing required key '" + f.name + "' (its default '"
                     + f.default_source + "' needs " + v.text
                     + ", which trigger '" + trigger->name
                     + "' does not offer)");
        return;
      }
    }
    field_value fv;
    fv.kind = f.kind;
    fv.text = std::move(parsed.value);
    fv.defaulted = true;
    s.fields.emplace(f.name, std::move(fv));
  }

  const language& lang_;
  reporter& out_;
};

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
    workflow_loader loader(lang, out);
    result.value = loader.load(text);
  } catch (const std::exception& e) {
    // yaml-cpp may throw from node access on documents we did not foresee;
    // a loader must still answer with a diagnostic.
    result.value.reset();
    out.error_at(0, 0, "",
                 std::string("internal error while loading: ") + e.what());
  }
  if (!result.diagnostics.empty()) {
    result.value.reset();
  }
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
         && text.size() <= limits.max_bytes) {
    text.append(buf.data(), n);
  }
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) {
    out.error_at(0, 0, "", "cannot read file");
    return result;
  }
  return load_string(text, path, lang);
}

std::vector<const workflow*>
catalog::for_trigger(std::string_view trigger) const {
  std::vector<const workflow*> out;
  for (const auto& wf : workflows_) {
    if (wf.trigger == trigger) {
      out.push_back(&wf);
    }
  }
  return out;
}

bool catalog::add(workflow wf) {
  for (const auto& other : workflows_) {
    if (other.name == wf.name) {
      diagnostic d;
      d.file = wf.file;
      d.line = wf.name_line;
      d.column = wf.name_column;
      d.path = "/name";
      d.message = "duplicate workflow name '" + wf.name + "' (also defined in "
                  + other.file + ")";
      diagnostics_.push_back(std::move(d));
      return false;
    }
  }
  workflows_.push_back(std::move(wf));
  return true;
}

void catalog::add_diagnostics(std::vector<diagnostic> xs) {
  for (auto& x : xs) {
    diagnostics_.push_back(std::move(x));
  }
}

catalog load_directory(const std::string& dir, const language& lang) {
  namespace fs = std::filesystem;
  catalog result;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    diagnostic d;
    d.file = dir;
    d.message = "cannot read directory: " + ec.message();
    result.add_diagnostics({std::move(d)});
    return result;
  }
  std::vector<std::string> names;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    auto name = it->path().filename().string();
    if (name.empty() || name[0] == '.' || !ends_with(name, ".yaml")
        || ends_with(name, ".test.yaml")) {
      continue;
    }
    std::error_code type_ec;
    if (fs::is_regular_file(it->path(), type_ec)) {
      names.push_back(name);
    }
  }
  if (ec) {
    diagnostic d;
    d.file = dir;
    d.message = "cannot read directory: " + ec.message();
    result.add_diagnostics({std::move(d)});
  }
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    auto loaded = load_file((fs::path(dir) / name).string(), lang);
    result.add_diagnostics(std::move(loaded.diagnostics));
    if (loaded.value) {
      result.add(std::move(*loaded.value));
    }
  }
  return result;
}

} // namespace ringback::workflows
