#include "ringback/workflows/diagnostic.hpp"

#include <algorithm>
#include <cctype>

namespace ringback::workflows {

const char* to_string(severity x) {
  return x == severity::error ? "error" : "warning";
}

std::string to_string(const diagnostic& x) {
  std::string out = x.file;
  if (x.line > 0) {
    out += ':';
    out += std::to_string(x.line);
    out += ':';
    out += std::to_string(x.column > 0 ? x.column : 1);
  }
  out += ": ";
  out += to_string(x.level);
  out += ": ";
  if (!x.path.empty()) {
    out += x.path;
    out += ": ";
  }
  out += x.message;
  return out;
}

void sort_by_position(std::vector<diagnostic>& xs) {
  std::stable_sort(xs.begin(), xs.end(),
                   [](const diagnostic& a, const diagnostic& b) {
                     return a.line != b.line ? a.line < b.line
                                             : a.column < b.column;
                   });
}

std::string to_string(const std::vector<diagnostic>& xs) {
  std::string out;
  for (const auto& x : xs) {
    out += to_string(x);
    out += '\n';
  }
  return out;
}

namespace {

std::string lower(std::string_view x) {
  std::string out(x);
  for (auto& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// Optimal string alignment distance: Levenshtein plus adjacent transpositions
// ("form" -> "from" is one edit, as people mistype).
std::size_t distance(const std::string& a, const std::string& b) {
  const auto n = a.size();
  const auto m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1,
                                          std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) {
    d[i][0] = i;
  }
  for (std::size_t j = 0; j <= m; ++j) {
    d[0][j] = j;
  }
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      auto cost = a[i - 1] == b[j - 1] ? 0u : 1u;
      d[i][j]
        = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

} // namespace

std::string nearest(std::string_view word,
                    const std::vector<std::string>& candidates) {
  // Long untrusted words cannot be near any candidate; don't spend on them.
  if (word.empty() || word.size() > 64) {
    return {};
  }
  const auto w = lower(word);
  const std::size_t limit
    = std::max<std::size_t>(1, std::min<std::size_t>(3, w.size() / 3));
  std::string best;
  std::size_t best_distance = limit + 1;
  for (const auto& c : candidates) {
    if (c.size() > 64) {
      continue;
    }
    auto d = distance(w, lower(c));
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

std::string did_you_mean(std::string_view word,
                         const std::vector<std::string>& candidates) {
  auto x = nearest(word, candidates);
  return x.empty() ? std::string{} : " (did you mean '" + x + "'?)";
}

std::string join(const std::vector<std::string>& xs,
                 std::string_view separator) {
  std::string out;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (i > 0) {
      out += separator;
    }
    out += xs[i];
  }
  return out;
}

} // namespace ringback::workflows
