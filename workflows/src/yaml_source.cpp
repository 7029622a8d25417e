#include "ringback/workflows/yaml_source.hpp"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <exception>
#include <map>
#include <sstream>

namespace ringback::workflows {

std::string child_path(path_style style, std::string_view parent,
                       std::string_view key) {
  std::string out(parent);
  if (style == path_style::pointer) {
    out += '/';
    for (char c : key) {
      if (c == '~') {
        out += "~0";
      } else if (c == '/') {
        out += "~1";
      } else {
        out += c;
      }
    }
  } else {
    if (!out.empty()) {
      out += '.';
    }
    out += key;
  }
  return out;
}

std::string child_path(path_style style, std::string_view parent,
                       std::size_t index) {
  std::string out(parent);
  if (style == path_style::pointer) {
    out += '/';
    out += std::to_string(index);
  } else {
    out += '[';
    out += std::to_string(index);
    out += ']';
  }
  return out;
}

reporter::reporter(std::string file, std::vector<diagnostic>& out)
  : file_(std::move(file)), out_(out) {
  // nop
}

void reporter::error(const YAML::Mark& where, std::string path,
                     std::string message) {
  if (where.is_null() || where.line < 0) {
    error_at(0, 0, std::move(path), std::move(message));
  } else {
    error_at(where.line + 1, where.column + 1, std::move(path),
             std::move(message));
  }
}

void reporter::error_at(int line, int column, std::string path,
                        std::string message) {
  diagnostic d;
  d.file = file_;
  d.line = line;
  d.column = column;
  d.path = std::move(path);
  d.message = std::move(message);
  out_.push_back(std::move(d));
}

namespace {

// yaml-cpp says "illegal map value" or worse for tab indentation; say what
// it is. Whitespace-only and comment-only lines are harmless and skipped.
// Strict: a tab after the indentation of a block scalar's content counts too
// (write "\t" in a double-quoted string instead).
bool report_tabs(std::string_view text, reporter& out) {
  bool found = false;
  int line = 1;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    auto content = text.substr(pos, end - pos);
    std::size_t i = 0;
    std::size_t first_tab = std::string_view::npos;
    while (i < content.size() && (content[i] == ' ' || content[i] == '\t')) {
      if (content[i] == '\t' && first_tab == std::string_view::npos) {
        first_tab = i;
      }
      ++i;
    }
    auto rest = content.substr(i);
    bool blank = rest.empty() || rest == "\r" || rest.front() == '#';
    if (first_tab != std::string_view::npos && !blank) {
      out.error_at(line, static_cast<int>(first_tab) + 1, "",
                   "tab character used for indentation");
      found = true;
    }
    if (end == text.size()) {
      break;
    }
    pos = end + 1;
    ++line;
  }
  return found;
}

// Records where each document starts.
class document_starts : public YAML::EventHandler {
public:
  std::vector<YAML::Mark> marks;

  void OnDocumentStart(const YAML::Mark& mark) override {
    marks.push_back(mark);
  }
  void OnDocumentEnd() override {
  }
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {
  }
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {
  }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
  }
  void OnSequenceEnd() override {
  }
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
  }
  void OnMapEnd() override {
  }
};

// Reports a second document. Not YAML::LoadAll: in yaml-cpp 0.7 a token that
// cannot start a node at document level (a stray ',') is never consumed and
// LoadAll loops, allocating until the process dies (jbeder/yaml-cpp#1040,
// fixed upstream by #1319 after 0.7). A document that starts where the
// previous one did is that loop: report the token instead. May throw
// yaml-cpp's syntax errors.
bool single_document(std::string_view text, reporter& out) {
  std::istringstream in{std::string(text)};
  YAML::Parser parser(in);
  document_starts docs;
  for (int i = 0; i < 3 && parser.HandleNextDocument(docs); ++i) {
    auto n = docs.marks.size();
    if (n >= 2 && docs.marks[n - 1].pos == docs.marks[n - 2].pos) {
      const auto& m = docs.marks[n - 1];
      auto pos = static_cast<std::size_t>(m.pos);
      auto c = pos < text.size() ? text[pos] : '?';
      out.error(m, "",
                c > ' ' && c < 127 ? "unexpected '" + std::string(1, c) + "'"
                                   : std::string("unexpected character"));
      return false;
    }
  }
  if (docs.marks.size() > 1) {
    out.error(docs.marks[1], "", "only one document per file is allowed");
    return false;
  }
  return true;
}

class walker {
public:
  walker(reporter& out, path_style style, const yaml_limits& limits)
    : out_(out), style_(style), limits_(limits) {
    // nop
  }

  bool stopped() const {
    return stopped_;
  }

  void walk(const YAML::Node& node, const std::string& path,
            std::size_t depth) {
    if (stopped_ || !visit(node, path, depth)) {
      return;
    }
    if (node.IsMap()) {
      std::map<std::string, YAML::Mark> first;
      for (auto it = node.begin(); it != node.end() && !stopped_; ++it) {
        if (!visit(it->first, path, depth + 1)) {
          return;
        }
        if (!it->first.IsScalar()) {
          out_.error(it->first.Mark(), path,
                     "keys must be plain scalars, got " + kind_name(it->first));
          continue;
        }
        const auto& key = it->first.Scalar();
        auto [pos, added] = first.emplace(key, it->first.Mark());
        if (!added) {
          out_.error(it->first.Mark(), path,
                     "duplicate key '" + key + "' (first defined at line "
                       + std::to_string(pos->second.line + 1) + ")");
        }
        walk(it->second, child_path(style_, path, key), depth + 1);
      }
    } else if (node.IsSequence()) {
      std::size_t i = 0;
      for (auto it = node.begin(); it != node.end() && !stopped_; ++it, ++i) {
        walk(*it, child_path(style_, path, i), depth + 1);
      }
    }
  }

private:
  bool visit(const YAML::Node& node, const std::string& path,
             std::size_t depth) {
    if (++nodes_ > limits_.max_nodes) {
      out_.error(node.Mark(), path,
                 "the document has more than "
                   + std::to_string(limits_.max_nodes) + " nodes");
      stopped_ = true;
    } else if (depth > limits_.max_depth) {
      out_.error(node.Mark(), path,
                 "the document is nested more than "
                   + std::to_string(limits_.max_depth) + " levels deep");
      stopped_ = true;
    }
    return !stopped_;
  }

  reporter& out_;
  path_style style_;
  const yaml_limits& limits_;
  std::size_t nodes_ = 0;
  bool stopped_ = false;
};

} // namespace

yaml_document parse_yaml(std::string_view text, reporter& out, path_style style,
                         const yaml_limits& limits) {
  yaml_document result;
  if (text.size() > limits.max_bytes) {
    out.error_at(0, 0, "",
                 "the file is too large (" + std::to_string(text.size())
                   + " bytes; at most " + std::to_string(limits.max_bytes)
                   + ")");
    return result;
  }
  if (report_tabs(text, out)) {
    return result;
  }
  try {
    if (!single_document(text, out)) {
      return result;
    }
    result.root = YAML::Load(std::string(text));
    walker w(out, style, limits);
    w.walk(result.root, "", 0);
    result.usable = !w.stopped();
  } catch (const YAML::DeepRecursion& e) {
    out.error(e.mark, "", "the document is nested too deeply");
  } catch (const YAML::Exception& e) {
    out.error(e.mark, "", e.msg);
  } catch (const std::exception& e) {
    out.error_at(0, 0, "", std::string("cannot parse: ") + e.what());
  }
  return result;
}

std::string kind_name(const YAML::Node& x) {
  if (!x.IsDefined() || x.IsNull()) {
    return "an empty value";
  }
  if (x.IsScalar()) {
    return "a scalar";
  }
  if (x.IsSequence()) {
    return "a list";
  }
  return "a map";
}

YAML::Mark mark_of(const YAML::Node& value, const YAML::Mark& fallback) {
  if (!value.IsDefined() || value.IsNull() || value.Mark().is_null()) {
    return fallback;
  }
  return value.Mark();
}

void check_keys(const YAML::Node& map, const YAML::Mark& where,
                const std::string& path, const key_rules& rules,
                reporter& out) {
  auto contains = [](const std::vector<std::string>& xs, const std::string& x) {
    return std::find(xs.begin(), xs.end(), x) != xs.end();
  };
  std::vector<std::string> present;
  std::vector<std::string> suggested;
  if (map.IsDefined() && map.IsMap()) {
    for_each_entry(map, [&](const YAML::Node& key, const YAML::Node&) {
      const auto& k = key.Scalar();
      present.push_back(k);
      if (contains(rules.allowed, k)) {
        return;
      }
      auto guess = nearest(k, rules.allowed);
      if (!guess.empty()) {
        suggested.push_back(guess);
        out.error(key.Mark(), path,
                  "unknown key '" + k + "' (did you mean '" + guess + "'?)");
      } else {
        out.error(key.Mark(), path,
                  "unknown key '" + k
                    + "' (expected one of: " + join(rules.allowed) + ")");
      }
    });
  }
  for (const auto& r : rules.required) {
    // A misspelt key already says "did you mean 'r'"; don't say it twice.
    if (!contains(present, r) && !contains(suggested, r)) {
      out.error(where, path, "missing required key '" + r + "'");
    }
  }
}

std::string key_text(const YAML::Node& key) {
  return key.IsScalar() ? key.Scalar() : std::string{};
}

std::size_t code_points(std::string_view x) {
  std::size_t n = 0;
  for (char c : x) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {
      ++n;
    }
  }
  return n;
}

bool truncate_utf8(std::string& x, std::size_t max_bytes) {
  if (x.size() <= max_bytes) {
    return false;
  }
  auto cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(x[cut]) & 0xC0) == 0x80) {
    --cut;
  }
  x.resize(cut);
  return true;
}

bool truncate_code_points(std::string& x, std::size_t max_code_points) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if ((static_cast<unsigned char>(x[i]) & 0xC0) != 0x80) {
      if (n == max_code_points) {
        x.resize(i);
        return true;
      }
      ++n;
    }
  }
  return false;
}

} // namespace ringback::workflows
