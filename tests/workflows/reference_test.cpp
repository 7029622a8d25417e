#include "ringback/workflows/reference.hpp"

#include "ringback/workflows/expr.hpp"
#include "ringback/workflows/loader.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace ringback::workflows;

namespace {

const std::string docs_path = RINGBACK_SOURCE_DIR "/docs/workflows.md";

std::vector<std::string> lines_of(const std::string& x) {
  std::vector<std::string> out;
  std::istringstream in(x);
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

/// A unified-ish diff of two texts, by lines: ` ` kept, `-` only in `a`,
/// `+` only in `b`, with `context` lines around each change; at most
/// `max_lines` lines.
std::string line_diff(const std::string& a, const std::string& b,
                      std::size_t context = 2, std::size_t max_lines = 80) {
  auto x = lines_of(a);
  auto y = lines_of(b);
  // Longest common subsequence table, from the ends.
  std::vector<std::vector<std::size_t>> lcs(
    x.size() + 1, std::vector<std::size_t>(y.size() + 1, 0));
  for (auto i = x.size(); i-- > 0;)
    for (auto j = y.size(); j-- > 0;)
      lcs[i][j] = x[i] == y[j] ? lcs[i + 1][j + 1] + 1
                               : std::max(lcs[i + 1][j], lcs[i][j + 1]);
  std::vector<std::pair<char, std::string>> ops;
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < x.size() || j < y.size()) {
    if (i < x.size() && j < y.size() && x[i] == y[j]) {
      ops.emplace_back(' ', x[i]);
      ++i;
      ++j;
    } else if (i < x.size()
               && (j == y.size() || lcs[i + 1][j] >= lcs[i][j + 1])) {
      ops.emplace_back('-', x[i++]);
    } else {
      ops.emplace_back('+', y[j++]);
    }
  }
  std::vector<bool> shown(ops.size(), false);
  for (std::size_t k = 0; k < ops.size(); ++k)
    if (ops[k].first != ' ')
      for (auto m = k > context ? k - context : 0;
           m < std::min(ops.size(), k + context + 1); ++m)
        shown[m] = true;
  std::string out;
  std::size_t n = 0;
  bool gap = false;
  std::size_t line_a = 1;
  for (std::size_t k = 0; k < ops.size(); ++k) {
    if (!shown[k]) {
      gap = true;
    } else {
      if (gap || n == 0)
        out += "@@ line " + std::to_string(line_a) + " @@\n";
      gap = false;
      if (++n > max_lines) {
        out += "... (more differences)\n";
        break;
      }
      out += ops[k].first + ops[k].second + "\n";
    }
    if (ops[k].first != '+')
      ++line_a;
  }
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A tiny language whose reference is pinned whole.
language tiny() {
  language lang;
  lang.triggers.add({"call.missed", "A call was missed.", {"call.from"}});
  step_spec say;
  say.type = "say";
  say.family = step_family::voice;
  say.doc = "Speak. Really.";
  say.primary = "text";
  say.fields
    = {{"text", field_kind::text, true, "", "What to say."},
       {"loop", field_kind::integer, false, "1", "Times.", 1, 10},
       {"pause", field_kind::duration, false, "1s", "Gap.", 1000, 60'000},
       {"mode", field_kind::choice, false, "a", "A | B.", 0, 0, {"a", "b"}}};
  say.example = "- say: hi";
  lang.steps.add(say);
  step_spec wait;
  wait.type = "wait_for_reply";
  wait.doc = "Wait for a text";
  wait.fields = {{"timeout", field_kind::duration, true, "", "How long."}};
  wait.branches = {{"on_reply", true, "got one", {"reply.body"}},
                   {"cases", false, "by label", {}, true}};
  wait.defines = {"waited"};
  wait.result_fields = {"json.*"};
  lang.steps.add(wait);
  step_spec hangup;
  hangup.type = "hangup";
  hangup.family = step_family::voice;
  hangup.doc = "End the call.";
  lang.steps.add(hangup);
  step_spec set;
  set.type = "set";
  set.doc = "Set variables.";
  set.shape = value_shape::map;
  set.primary = "values";
  set.fields = {{"values", field_kind::text_map, true, "", "names and values"}};
  lang.steps.add(set);
  return lang;
}

} // namespace

TEST(Reference, TinyLanguageIsRenderedExactly) {
  auto md = reference_markdown(tiny());
  const std::string expected_start
    = "## Reference\n\n"
      "Generated from ringback's registries (`reference_markdown()` in "
      "`workflows/src/reference.cpp`); do not edit by hand.\n\n"
      "### Triggers\n\n"
      "| trigger | when |\n|---|---|\n"
      "| `call.missed` | A call was missed. |\n\n"
      "#### Trigger `call.missed`\n\n"
      "A call was missed.\n\n"
      "Its runs see:\n\n"
      "| variable | meaning |\n|---|---|\n"
      "| `call.from` | The caller's number (E.164), or what the carrier sent "
      "for a withheld one. |\n\n"
      "### Steps\n\n"
      "| step | family | what it does |\n|---|---|---|\n"
      "| `say` | voice | Speak. |\n"
      "| `hangup` | voice | End the call. |\n"
      "| `wait_for_reply` | control | Wait for a text |\n"
      "| `set` | control | Set variables. |\n\n"
      "#### Voice steps\n\n"
      "Voice steps answer the live call of a `call.incoming` workflow.\n\n"
      "##### `say`\n\n"
      "Speak. Really.\n\n"
      "| field | kind | required | default | meaning |\n"
      "|---|---|---|---|---|\n"
      "| `text` | template | yes | - | What to say. |\n"
      "| `loop` | integer, 1 to 10 | no | `1` | Times. |\n"
      "| `pause` | duration, 1s to 1m | no | `1s` | Gap. |\n"
      "| `mode` | choice: `a`, `b` | no | `a` | A \\| B. |\n\n"
      "Shorthand: `say: VALUE` sets `text`.\n\n"
      "```yaml\n- say: hi\n```\n\n"
      "##### `hangup`\n\n"
      "End the call.\n\n"
      "No fields: write `hangup:`.\n\n"
      "#### Control steps\n\n"
      "Control steps decide what runs next, hold variables and wait.\n\n"
      "##### `wait_for_reply`\n\n"
      "Wait for a text\n\n"
      "| field | kind | required | default | meaning |\n"
      "|---|---|---|---|---|\n"
      "| `timeout` | duration | yes | - | How long. |\n\n"
      "| branch | required | meaning | adds |\n|---|---|---|---|\n"
      "| `on_reply` | yes | got one | `reply.body` |\n"
      "| `cases` | no | by label (a map: label -> list of steps) | - |\n\n"
      "Defines for the steps after it: `waited`.\n\n"
      "With an `id`, later steps read `steps.<id>.json.*`.\n\n"
      "##### `set`\n\n"
      "Set variables.\n\n"
      "Written as a map: `set: {name: value, ...}`, names and values.\n\n"
      "### Expression operators\n\n";
  EXPECT_EQ(md.substr(0, expected_start.size()), expected_start)
    << line_diff(md.substr(0, expected_start.size()), expected_start);
  EXPECT_NE(md.find("### Durations\n\nA duration is a whole number with a "
                    "unit, `ms`, `s`, `m`, `h` or `d`, or several of them "
                    "written together (`1h30m`); a bare number is seconds. "
                    "Each field has its own bounds (see its kind).\n\n"
                    "| written | means |\n|---|---|\n"
                    "| `500ms` | 500 milliseconds |\n"
                    "| `20s` | 20 seconds |\n"
                    "| `90` | 90 seconds |\n"
                    "| `10m` | 600 seconds |\n"
                    "| `1h30m` | 5400 seconds |\n"
                    "| `2h` | 7200 seconds |\n"
                    "| `1d` | 86400 seconds |\n"),
            std::string::npos);
  // One trailing newline, no more.
  ASSERT_GE(md.size(), 2u);
  EXPECT_EQ(md.back(), '\n');
  EXPECT_NE(md[md.size() - 2], '\n');
}

TEST(Reference, CoversTheWholeDefaultLanguage) {
  const auto& lang = default_language();
  auto md = reference_markdown(lang);
  EXPECT_EQ(md, reference_markdown(lang)); // deterministic
  for (const auto& t : lang.triggers.all()) {
    EXPECT_NE(md.find("#### Trigger `" + t.name + "`\n"), std::string::npos)
      << t.name;
    for (const auto& v : t.variables)
      EXPECT_NE(md.find("| `" + v + "` | " + variable_doc(v) + " |"),
                std::string::npos)
        << v;
  }
  for (const auto& s : lang.steps.all()) {
    auto at = md.find("##### `" + s->type + "`\n");
    ASSERT_NE(at, std::string::npos) << s->type;
    for (const auto& f : s->fields) {
      if (s->shape == value_shape::fields) {
        EXPECT_NE(md.find("| `" + f.name + "` |", at), std::string::npos)
          << s->type << "." << f.name;
      }
    }
    for (const auto& b : s->branches)
      EXPECT_NE(md.find("| `" + b.name + "` |", at), std::string::npos)
        << s->type << "." << b.name;
    EXPECT_NE(md.find("```yaml\n" + s->example + "\n```", at),
              std::string::npos)
      << s->type;
  }
  for (const auto& d : operator_docs())
    EXPECT_NE(md.find(d.doc), std::string::npos) << d.name;
  for (const auto& d : filter_docs())
    EXPECT_NE(md.find(d.doc), std::string::npos) << d.name;
  // Every table row has as many cells as its header (a stray `|` would
  // split one).
  std::size_t header_cells = 0;
  for (const auto& line : lines_of(md)) {
    if (line.empty() || line[0] != '|') {
      header_cells = 0;
      continue;
    }
    std::size_t cells = 0;
    for (std::size_t i = 1; i < line.size(); ++i)
      if (line[i] == '|' && line[i - 1] != '\\')
        ++cells;
    if (header_cells == 0)
      header_cells = cells;
    EXPECT_EQ(cells, header_cells) << line;
  }
}

TEST(Reference, ExtractAndReplaceBetweenTheMarkers) {
  const std::string doc = "# Doc\n\n" + std::string(reference_begin_marker)
                          + "\n\nold\n" + std::string(reference_end_marker)
                          + "\n\n## After\n";
  EXPECT_EQ(extract_reference(doc), "old");
  auto updated = replace_reference(doc, "## Reference\n\nnew\n");
  ASSERT_TRUE(updated);
  EXPECT_EQ(*updated, "# Doc\n\n" + std::string(reference_begin_marker)
                        + "\n\n## Reference\n\nnew\n\n"
                        + std::string(reference_end_marker) + "\n\n## After\n");
  EXPECT_EQ(extract_reference(*updated), "## Reference\n\nnew\n");
  EXPECT_EQ(replace_reference(*updated, "## Reference\n\nnew\n"), *updated);
  EXPECT_EQ(extract_reference("no markers"), std::nullopt);
  EXPECT_EQ(replace_reference("no markers", "x"), std::nullopt);
  // Out of order.
  EXPECT_EQ(extract_reference(std::string(reference_end_marker) + "\n"
                              + std::string(reference_begin_marker)),
            std::nullopt);
}

TEST(Reference, LineDiffShowsWhatChanged) {
  EXPECT_EQ(line_diff("a\nb\nc\n", "a\nb\nc\n"), "");
  EXPECT_EQ(line_diff("a\nb\nc\nd\ne\nf\n", "a\nb\nc\nX\ne\nf\n", 1),
            "@@ line 3 @@\n c\n-d\n+X\n e\n");
}

/// docs/workflows.md carries the generated reference; it must be current.
/// `RINGBACK_UPDATE_DOCS=1 workflows_tests --gtest_filter=Reference.*`
/// rewrites it instead.
TEST(Reference, TheDocsCarryTheCurrentReference) {
  const auto doc = read_file(docs_path);
  ASSERT_FALSE(doc.empty()) << "cannot read " << docs_path;
  const auto generated = reference_markdown(default_language());
  const char* update = std::getenv("RINGBACK_UPDATE_DOCS");
  if (update != nullptr && std::string(update) == "1") {
    auto updated = replace_reference(doc, generated);
    ASSERT_TRUE(updated) << docs_path << " lacks the markers "
                         << reference_begin_marker << " and "
                         << reference_end_marker;
    if (*updated != doc) {
      std::ofstream(docs_path, std::ios::binary | std::ios::trunc) << *updated;
      std::cout << "rewrote the generated reference in " << docs_path << "\n";
    }
    return;
  }
  auto current = extract_reference(doc);
  ASSERT_TRUE(current) << docs_path << " lacks the markers "
                       << reference_begin_marker << " and "
                       << reference_end_marker;
  EXPECT_TRUE(*current == generated)
    << "The reference in " << docs_path
    << " is stale. Regenerate it with\n  RINGBACK_UPDATE_DOCS=1 "
       "<build>/tests/workflows_tests --gtest_filter='Reference.*'\n"
       "Differences (- docs, + generated):\n"
    << line_diff(*current, generated);
}

/// The workflows the documentation shows (```yaml blocks that start with
/// `name:`) load without a problem.
TEST(Reference, TheDocsExamplesLoad) {
  const auto doc = read_file(docs_path);
  ASSERT_FALSE(doc.empty()) << "cannot read " << docs_path;
  std::size_t examples = 0;
  std::size_t at = 0;
  while ((at = doc.find("```yaml\n", at)) != std::string::npos) {
    at += 8;
    auto end = doc.find("```", at);
    ASSERT_NE(end, std::string::npos);
    auto block = doc.substr(at, end - at);
    at = end + 3;
    if (block.rfind("name:", 0) != 0)
      continue;
    ++examples;
    auto line = std::count(doc.begin(), doc.begin() + static_cast<long>(at),
                           '\n');
    auto r = load_string(block, "docs/workflows.md example");
    EXPECT_TRUE(r.ok()) << "the example ending at line " << line << ":\n"
                        << to_string(r.diagnostics);
  }
  EXPECT_GE(examples, 4u);
}
