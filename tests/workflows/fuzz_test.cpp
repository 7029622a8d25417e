// Seeded random inputs for the workflow loader and the template engine: a
// few thousand mutations of a seed corpus. Nothing may throw, crash or hang;
// a workflow that loads must also run. Deterministic (fixed seed), so a
// failure reproduces; raise RINGBACK_FUZZ_ITERATIONS to search longer.
#include "ringback/workflows/interpreter.hpp"
#include "ringback/workflows/loader.hpp"
#include "ringback/workflows/template.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
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
      run_result out;
      ASSERT_NO_THROW(out = run(*r.value, ctx)) << "input #" << i;
      EXPECT_EQ(out.trace.size(), r.value->steps.size());
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
