// Seeded random inputs for the workflow loader and the template engine: a
// few thousand mutations of a seed corpus. Nothing may throw, crash or hang;
// a workflow that loads must also run. Deterministic (fixed seed), so a
// failure reproduces; raise RINGBACK_FUZZ_ITERATIONS to search longer.
#include "ringback/workflows/contexts.hpp"
#include "ringback/workflows/interpreter.hpp"
#include "ringback/workflows/loader.hpp"
#include "ringback/workflows/template.hpp"

#include <gtest/gtest.h>

#include "../fuzz/fuzz_checks.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

using namespace ringback::workflows;

namespace {

std::vector<std::string> seed_corpus() {
  // Long literals split over lines, on purpose.
  // NOLINTBEGIN(bugprone-suspicious-missing-comma)
  std::vector<std::string> seeds{
    "name: w\ntrigger: call.missed\nsteps:\n  - id: s\n    send_sms:\n"
    "      to: '{{ call.from }}'\n      body: \"Hi {{ tenant.name }}\"\n",
    "name: w\ntrigger: call.missed\nsteps:\n  - send_sms: {to: "
    "'{{call.from}}', "
    "body: x, from: '{{ call.to }}'}\n",
    "name: w\ntrigger: call.mised\nsteps: []\n",
    "name: &a [*a]\n",
    "a: {b: [1, 2, {c: d}], e: |\n  text\n  more\n}\n",
    "steps:\n  - send_sms:\n      body: >\n        folded\n        text\n",
    "? complex\n: value\n--- \nsecond: doc\n",
    "name: w\ntrigger: call.missed\nsteps:\n\t- x\n",
    "name: 'unterminated\n",
    "name: w\ntrigger: call.missed\nsteps:\n  - send_sms: {to: '{{', body: '{{ "
    "}}'}\n",
    "x: !!binary aGVsbG8=\ny: !custom 1\nz: *undefined\n",
  };
  // NOLINTEND(bugprone-suspicious-missing-comma)
  std::ifstream in(RINGBACK_SOURCE_DIR "/workflows/missed_call.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  seeds.push_back(ss.str());
  return seeds;
}

class Mutator {
public:
  explicit Mutator(std::uint32_t seed) : rng_(seed) {
    // nop
  }

  std::string mutate(std::string x, const std::vector<std::string>& corpus) {
    auto rounds = pick(1, 4);
    for (std::size_t r = 0; r < rounds; ++r) {
      auto pos = x.empty() ? 0 : pick(0, x.size() - 1);
      switch (pick(0, 7)) {
        case 0: // flip a byte
          if (!x.empty()) {
            x[pos] = static_cast<char>(pick(0, 255));
          }
          break;
        case 1: // insert a YAML-significant character
          x.insert(pos, 1, special_[pick(0, special_.size() - 1)]);
          break;
        case 2: // delete a range
          if (!x.empty()) {
            x.erase(pos, pick(1, 16));
          }
          break;
        case 3: // duplicate a range
          if (!x.empty()) {
            x.insert(pos, x.substr(pos, pick(1, 32)));
          }
          break;
        case 4: { // splice in part of another seed
          const auto& other = corpus[pick(0, corpus.size() - 1)];
          if (!other.empty()) {
            auto from = pick(0, other.size() - 1);
            x.insert(pos, other.substr(from, pick(1, 64)));
          }
          break;
        }
        case 5: // insert a token
          x.insert(pos, tokens_[pick(0, tokens_.size() - 1)]);
          break;
        case 6: // deep nesting
          x.insert(pos, std::string(pick(1, 200), pick(0, 1) ? '[' : '{'));
          break;
        default: // truncate
          x.resize(pos);
          break;
      }
    }
    return x;
  }

private:
  std::size_t pick(std::size_t lo, std::size_t hi) {
    return std::uniform_int_distribution<std::size_t>(lo, hi)(rng_);
  }

  std::mt19937 rng_;
  const std::string special_{"{}[]:-#&*!|>'\"%@`,?\t\n \\~"};
  const std::vector<std::string> tokens_{"{{",
                                         "}}",
                                         "{{ call.from }}",
                                         "{{ x.y",
                                         "\n  - ",
                                         ": ",
                                         "---\n",
                                         "&a ",
                                         "*a",
                                         "send_sms:",
                                         "id: s\n",
                                         "\xc3\xa9",
                                         "\xff\xfe",
                                         std::string(1, '\0'),
                                         "\r\n",
                                         "name: w\n",
                                         "steps:\n",
                                         "trigger: call.missed\n",
                                         "~",
                                         "!!str ",
                                         "<<: *a\n"};
};

std::size_t iterations() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read before any thread starts
  if (const char* x = std::getenv("RINGBACK_FUZZ_ITERATIONS")) {
    return std::strtoul(x, nullptr, 10);
  }
  return 3000;
}

} // namespace

TEST(WorkflowFuzz, MutatedWorkflowsNeverCrashOrHang) {
  auto corpus = seed_corpus();
  Mutator m(0x5EED);
  auto ctx = call_context("CA1", "+15005550006", "+15005550001",
                          {"acme", "Acme", {}, "+15005550002", "UTC"});
  std::size_t loaded = 0;
  const auto n = iterations();
  for (std::size_t i = 0; i < n; ++i) {
    auto input = m.mutate(corpus[i % corpus.size()], corpus);
    auto started = std::chrono::steady_clock::now();
    load_result r;
    ASSERT_NO_THROW(r = load_string(input, "fuzz.yaml")) << "input #" << i;
    for (const auto& d : r.diagnostics) {
      EXPECT_FALSE(d.message.empty()) << "input #" << i;
      EXPECT_EQ(d.file, "fuzz.yaml");
      EXPECT_GE(d.line, 0);
    }
    if (r.ok()) {
      ++loaded;
      segment_result out;
      ASSERT_NO_THROW(out = start(*r.value, ctx, 0)) << "input #" << i;
      EXPECT_EQ(out.error.find("internal error"), std::string::npos)
        << "input #" << i << ": " << out.error;
    }
    auto took = std::chrono::steady_clock::now() - started;
    ASSERT_LT(took, std::chrono::seconds(2)) << "input #" << i << " is slow";
  }
  // The corpus must keep exercising the happy path, too.
  EXPECT_GT(loaded, 0u);
}

TEST(WorkflowFuzz, RandomTemplatesNeverCrash) {
  std::mt19937 rng(0xC0DE);
  const std::string alphabet = "{} .ab_1\xc3\xa9";
  context ctx{{"a", "A"}, {"a.b", std::string(100, 'x')}, {"b_1", "\xc3\xa9"}};
  for (int i = 0; i < 5000; ++i) {
    std::string src;
    auto len = std::uniform_int_distribution<int>(0, 40)(rng);
    for (int j = 0; j < len; ++j) {
      src += alphabet[std::uniform_int_distribution<std::size_t>(
        0, alphabet.size() - 1)(rng)];
    }
    auto t = parse_template(src);
    if (!t.ok()) {
      continue;
    }
    auto max = std::uniform_int_distribution<std::size_t>(0, 64)(rng);
    auto r = t.value.render(ctx, max);
    ASSERT_LE(r.text.size(), max) << src;
  }
}

// -- expressions --------------------------------------------------------------

namespace {

std::vector<std::string> expression_seeds() {
  return {
    "call.from == \"+15005550100\" and business_hours",
    "business_hours and not (sms.body | lower contains \"stop\")",
    "sms.body matches \"(?i)^\\\\s*stop\"",
    "call.from in ['+15005550100', tenant.name, null] or n not in [1, -2.5]",
    "(n + 1) * 2 - 4 / 2 >= 3.25 and -n < 0",
    "tenant.name | default(\"us\") | trim | truncate(10) | length > 2",
    "call.from | e164 | phone == \"(500) 555-0100\"",
    "\"  42 \" | number + 1 == 43 and steps.lookup.json.items.0.name",
    "'a\\'b\\\\c\\n' contains \"\\n\" or \"x\" in long",
    "{{ n > 2 }}",
  };
}

/// Byte-level mutations plus the tokens of the expression language.
std::string mutate_expression(std::mt19937& rng, std::string x,
                              const std::vector<std::string>& corpus) {
  static const std::vector<std::string> tokens{
    " and ",     " or ",       "not ",      " == ",   " != ",     " < ",
    " >= ",      " contains ", " matches ", " in ",   " not in ", " + ",
    " - ",       " * ",        " / ",       " | ",    "lower",    "default(",
    "truncate(", "phone",      "e164",      "length", "number",   "(",
    ")",         "[",          "]",         ",",      "\"",       "'",
    "\\",        "\"(?i)x+\"", "-1",        "0.5",    "null",     "true",
    "call.from", "n.",         "{{",        "}}",     "\xc3\xa9", "\xff",
    "\n"};
  auto pick = [&](std::size_t lo, std::size_t hi) {
    return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
  };
  auto rounds = pick(1, 4);
  for (std::size_t r = 0; r < rounds; ++r) {
    auto pos = x.empty() ? 0 : pick(0, x.size() - 1);
    switch (pick(0, 5)) {
      case 0:
        if (!x.empty()) {
          x[pos] = static_cast<char>(pick(0, 255));
        }
        break;
      case 1:
        if (!x.empty()) {
          x.erase(pos, pick(1, 8));
        }
        break;
      case 2:
        x.insert(pos, tokens[pick(0, tokens.size() - 1)]);
        break;
      case 3: {
        const auto& other = corpus[pick(0, corpus.size() - 1)];
        x.insert(pos, other.substr(pick(0, other.size() - 1), pick(1, 24)));
        break;
      }
      case 4: // deep nesting
        x.insert(pos, std::string(pick(1, 40), pick(0, 1) ? '(' : '['));
        break;
      default:
        x.insert(pos, x.substr(pos, pick(1, 16)));
        break;
    }
  }
  return x;
}

std::vector<std::string> corpus_files(const std::string& target) {
  std::vector<std::string> out;
  std::filesystem::path dir = std::filesystem::path(RINGBACK_SOURCE_DIR)
                              / "tests/fuzz/corpus" / target;
  std::vector<std::filesystem::path> paths;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.is_regular_file()) {
      paths.push_back(e.path());
    }
  }
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    out.push_back(ss.str());
  }
  return out;
}

} // namespace

TEST(WorkflowFuzz, MutatedExpressionsNeverCrashOrHang) {
  auto corpus = expression_seeds();
  std::mt19937 rng(0xE7E7);
  const auto n = iterations() * 3;
  std::size_t parsed = 0;
  for (std::size_t i = 0; i < n; ++i) {
    auto input = mutate_expression(rng, corpus[i % corpus.size()], corpus);
    auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(ringback::fuzz::check_expression(input), "") << input;
    parsed += parse_expression(input).ok() ? 1 : 0;
    auto template_input = "x {{ " + input + " }} y";
    EXPECT_EQ(ringback::fuzz::check_template(template_input), "") << input;
    auto took = std::chrono::steady_clock::now() - started;
    ASSERT_LT(took, std::chrono::seconds(1)) << "slow: " << input;
  }
  EXPECT_GT(parsed, n / 20); // the mutations still reach the evaluator
}

// The libFuzzer seed corpora (tests/fuzz/corpus/<target>/) run here too.
TEST(WorkflowFuzz, SeedCorporaPassTheFuzzChecks) {
  struct target {
    const char* name;
    std::string (*check)(std::string_view);
  };
  for (const auto& t :
       {target{"fuzz_expression", ringback::fuzz::check_expression},
        target{"fuzz_template", ringback::fuzz::check_template},
        target{"fuzz_workflow_loader", ringback::fuzz::check_workflow}}) {
    auto files = corpus_files(t.name);
    EXPECT_GE(files.size(), 5u) << t.name;
    for (const auto& input : files) {
      EXPECT_EQ(t.check(input), "") << t.name << ": " << input;
    }
  }
}
