// The evaluator: a recursive walk of the flat tree. Each call gets a scratch
// value from its caller and returns a pointer to its result: into the
// context or the tree's literals when it only reads (no copy, no
// allocation), else to the scratch value.
#include "ringback/workflows/phone.hpp"
#include "ringback/workflows/yaml_source.hpp"

#include "expr_tree.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>

namespace ringback::workflows {

namespace {

using detail::filter_id;
using detail::node;
using detail::op;

const value null_value;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
         || c == '\v';
}

/// Text parsed as a number: optional sign, digits, optional fraction,
/// optional exponent, surrounding whitespace allowed; no hex, inf or nan.
std::optional<double> parse_number(std::string_view x) {
  while (!x.empty() && is_space(x.front())) {
    x.remove_prefix(1);
  }
  while (!x.empty() && is_space(x.back())) {
    x.remove_suffix(1);
  }
  if (x.size() > 400) {
    return std::nullopt;
  }
  std::size_t i = 0;
  bool negative = false;
  if (i < x.size() && (x[i] == '+' || x[i] == '-')) {
    negative = x[i] == '-';
    ++i;
  }
  auto body = x.substr(i);
  std::size_t digits = 0;
  auto digit = [&](std::size_t k) {
    return k < x.size() && x[k] >= '0' && x[k] <= '9';
  };
  while (digit(i)) {
    ++i;
    ++digits;
  }
  if (i < x.size() && x[i] == '.') {
    ++i;
    while (digit(i)) {
      ++i;
      ++digits;
    }
  }
  if (digits == 0) {
    return std::nullopt;
  }
  if (i < x.size() && (x[i] == 'e' || x[i] == 'E')) {
    ++i;
    if (i < x.size() && (x[i] == '+' || x[i] == '-')) {
      ++i;
    }
    if (!digit(i)) {
      return std::nullopt;
    }
    while (digit(i)) {
      ++i;
    }
  }
  if (i != x.size()) {
    return std::nullopt;
  }
  double out = 0;
  auto [ptr, ec] = std::from_chars(body.data(), body.data() + body.size(), out);
  if (ec != std::errc{} || ptr != body.data() + body.size()) {
    return std::nullopt; // out of range
  }
  return negative ? -out : out;
}

struct evaluator {
  const detail::expr_tree& t;
  const context& ctx;
  const eval_limits& limits;
  std::string& error;
  std::vector<std::string>& missing;
  std::size_t missing_begin;
  std::size_t steps = 0;

  const value* fail(std::string message) {
    error = std::move(message);
    return nullptr;
  }

  /// `x` itself, or cut to `max_text_bytes` into `scratch`.
  const value* capped(const value* x, value& scratch) {
    if (x->is_string() && x->as_string().size() > limits.max_text_bytes) {
      std::string s(x->as_string(), 0, limits.max_text_bytes + 1);
      truncate_utf8(s, limits.max_text_bytes);
      scratch = value(std::move(s));
      return &scratch;
    }
    return x;
  }

  const value* text(std::string s, value& scratch) {
    if (s.size() > limits.max_text_bytes) {
      truncate_utf8(s, limits.max_text_bytes);
    }
    scratch = value(std::move(s));
    return &scratch;
  }

  const value* boolean(bool x, value& scratch) {
    scratch = value(x);
    return &scratch;
  }

  const value* number(double x, value& scratch) {
    scratch = value(x);
    return &scratch;
  }

  void note_missing(const std::string& name) {
    auto first = missing.begin() + static_cast<std::ptrdiff_t>(missing_begin);
    if (std::find(first, missing.end(), name) == missing.end()) {
      missing.push_back(name);
    }
  }

  /// The text a text operator sees: null reads as "".
  static const std::string* text_operand(const value& x) {
    static const std::string empty;
    if (x.is_string()) {
      return &x.as_string();
    }
    return x.is_null() ? &empty : nullptr;
  }

  const value* eval(std::uint32_t i, value& scratch) {
    if (++steps > limits.max_steps) {
      return fail("the expression took too many steps (more than "
                  + std::to_string(limits.max_steps) + ")");
    }
    const node& n = t.nodes[i];
    switch (n.kind) {
      case op::literal:
        return capped(&t.literals[n.index], scratch);
      case op::variable: {
        const auto& name = t.variables[n.index].name;
        auto it = ctx.find(name);
        if (it == ctx.end()) {
          note_missing(name);
          return &null_value;
        }
        return capped(&it->second, scratch);
      }
      case op::list:
        return fail("a list may only stand right of 'in'");
      case op::not_: {
        auto x = eval(n.a, scratch);
        return x == nullptr ? x : boolean(!x->truthy(), scratch);
      }
      case op::and_:
      case op::or_: {
        const bool stop_on = n.kind == op::or_;
        for (std::uint32_t k = 0; k < n.count; ++k) {
          auto x = eval(t.args[n.index + k], scratch);
          if (x == nullptr) {
            return x;
          }
          if (x->truthy() == stop_on) {
            return boolean(stop_on, scratch);
          }
        }
        return boolean(!stop_on, scratch);
      }
      case op::eq:
      case op::ne: {
        value sb;
        auto a = eval(n.a, scratch);
        if (a == nullptr) {
          return a;
        }
        auto b = eval(n.b, sb);
        if (b == nullptr) {
          return b;
        }
        return boolean((*a == *b) == (n.kind == op::eq), scratch);
      }
      case op::lt:
      case op::le:
      case op::gt:
      case op::ge:
        return compare(n, scratch);
      case op::contains: {
        value sb;
        auto a = eval(n.a, scratch);
        if (a == nullptr) {
          return a;
        }
        auto b = eval(n.b, sb);
        if (b == nullptr) {
          return b;
        }
        auto ta = text_operand(*a);
        auto tb = text_operand(*b);
        if (ta == nullptr || tb == nullptr) {
          return fail(std::string("'contains' needs text on both sides, got ")
                      + to_string(a->type()) + " and " + to_string(b->type()));
        }
        return boolean(ta->find(*tb) != std::string::npos, scratch);
      }
      case op::matches: {
        auto a = eval(n.a, scratch);
        if (a == nullptr) {
          return a;
        }
        auto ta = text_operand(*a);
        if (ta == nullptr) {
          return fail(std::string("'matches' needs text on its left, got ")
                      + to_string(a->type()));
        }
        return boolean(re2::RE2::PartialMatch(*ta, *t.regexes[n.index]),
                       scratch);
      }
      case op::in:
      case op::not_in:
        return in(n, scratch);
      case op::add:
      case op::sub:
      case op::mul:
      case op::div:
        return arithmetic(n, scratch);
      case op::neg: {
        auto a = eval(n.a, scratch);
        if (a == nullptr) {
          return a;
        }
        if (!a->is_number()) {
          return fail(std::string("'-' needs a number, got ")
                      + to_string(a->type()));
        }
        return number(-a->as_number(), scratch);
      }
      case op::filter:
        return filter(n, scratch);
    }
    return fail("invalid expression");
  }

  const value* compare(const node& n, value& scratch) {
    value sb;
    auto a = eval(n.a, scratch);
    if (a == nullptr) {
      return a;
    }
    auto b = eval(n.b, sb);
    if (b == nullptr) {
      return b;
    }
    int c = 0;
    if (a->is_number() && b->is_number()) {
      auto x = a->as_number();
      auto y = b->as_number();
      if (std::isnan(x) || std::isnan(y)) {
        return boolean(false, scratch);
      }
      c = x < y ? -1 : (y < x ? 1 : 0);
    } else if (a->is_string() && b->is_string()) {
      c = a->as_string().compare(b->as_string());
    } else {
      return fail(std::string("cannot compare ") + to_string(a->type())
                  + " with " + to_string(b->type()));
    }
    switch (n.kind) {
      case op::lt:
        return boolean(c < 0, scratch);
      case op::le:
        return boolean(c <= 0, scratch);
      case op::gt:
        return boolean(c > 0, scratch);
      default:
        return boolean(c >= 0, scratch);
    }
  }

  const value* in(const node& n, value& scratch) {
    const bool negate = n.kind == op::not_in;
    value sa;
    auto a = eval(n.a, sa);
    if (a == nullptr) {
      return a;
    }
    const node& right = t.nodes[n.b];
    if (right.kind == op::list) {
      ++steps; // the list node itself
      for (std::uint32_t k = 0; k < right.count; ++k) {
        auto x = eval(t.args[right.index + k], scratch);
        if (x == nullptr) {
          return x;
        }
        if (*x == *a) {
          return boolean(!negate, scratch);
        }
      }
      return boolean(negate, scratch);
    }
    auto b = eval(n.b, scratch);
    if (b == nullptr) {
      return b;
    }
    auto tb = text_operand(*b);
    if (tb == nullptr) {
      return fail(std::string("'in' needs a list or text on its right, got ")
                  + to_string(b->type()));
    }
    auto ta = text_operand(*a);
    if (ta == nullptr) {
      return fail(std::string("'in' needs text on its left when its right is "
                              "text, got ")
                  + to_string(a->type()));
    }
    return boolean((tb->find(*ta) != std::string::npos) != negate, scratch);
  }

  const value* arithmetic(const node& n, value& scratch) {
    value sb;
    auto a = eval(n.a, scratch);
    if (a == nullptr) {
      return a;
    }
    auto b = eval(n.b, sb);
    if (b == nullptr) {
      return b;
    }
    if (a->is_number() && b->is_number()) {
      auto x = a->as_number();
      auto y = b->as_number();
      switch (n.kind) {
        case op::add:
          return number(x + y, scratch);
        case op::sub:
          return number(x - y, scratch);
        case op::mul:
          return number(x * y, scratch);
        default:
          if (y == 0) {
            return fail("division by zero");
          }
          return number(x / y, scratch);
      }
    }
    if (n.kind == op::add) {
      if (a->is_string() && b->is_string()) {
        // Both are capped already; keep the join within the cap too,
        // cutting b on a UTF-8 boundary.
        const auto& tail = b->as_string();
        std::string s = a->as_string();
        auto room = limits.max_text_bytes
                    - std::min(limits.max_text_bytes, s.size());
        auto keep = std::min(tail.size(), room);
        while (keep > 0 && keep < tail.size()
               && (static_cast<unsigned char>(tail[keep]) & 0xC0) == 0x80) {
          --keep;
        }
        s.append(tail, 0, keep);
        return text(std::move(s), scratch);
      }
      return fail(std::string("'+' needs two numbers or two texts, got ")
                  + to_string(a->type()) + " and " + to_string(b->type()));
    }
    const char* name = n.kind == op::sub   ? "'-'"
                       : n.kind == op::mul ? "'*'"
                                           : "'/'";
    return fail(std::string(name) + " needs two numbers, got "
                + to_string(a->type()) + " and " + to_string(b->type()));
  }

  /// The text form of a filter's input (numbers and booleans as text).
  static std::string text_of(const value& x) {
    return x.is_string() ? x.as_string() : x.to_text();
  }

  const value* filter(const node& n, value& scratch) {
    auto in = eval(n.a, scratch);
    if (in == nullptr) {
      return in;
    }
    switch (n.filter) {
      case filter_id::default_:
        if (in->is_null() || (in->is_string() && in->as_string().empty())) {
          return eval(t.args[n.index], scratch);
        }
        return in;
      case filter_id::lower:
      case filter_id::upper: {
        if (in->is_null()) {
          return in;
        }
        auto s = text_of(*in);
        const bool up = n.filter == filter_id::upper;
        for (auto& c : s) {
          if (up && c >= 'a' && c <= 'z') {
            c = static_cast<char>(c - 'a' + 'A');
          } else if (!up && c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
          }
        }
        return text(std::move(s), scratch);
      }
      case filter_id::trim: {
        if (in->is_null()) {
          return in;
        }
        auto s = text_of(*in);
        std::size_t b = 0;
        auto e = s.size();
        while (b < e && is_space(s[b])) {
          ++b;
        }
        while (e > b && is_space(s[e - 1])) {
          --e;
        }
        return text(s.substr(b, e - b), scratch);
      }
      case filter_id::phone: {
        if (!in->is_string()) {
          return in;
        }
        auto e = normalize_e164(in->as_string());
        if (!e) {
          return in;
        }
        if (e->size() == 12 && e->compare(0, 2, "+1") == 0) {
          return text("(" + e->substr(2, 3) + ") " + e->substr(5, 3) + "-"
                        + e->substr(8, 4),
                      scratch);
        }
        return text(std::move(*e), scratch);
      }
      case filter_id::e164: {
        if (!in->is_string()) {
          scratch = value();
          return &scratch;
        }
        auto e = normalize_e164(in->as_string());
        if (!e) {
          scratch = value();
          return &scratch;
        }
        return text(std::move(*e), scratch);
      }
      case filter_id::truncate: {
        value sn;
        auto arg = eval(t.args[n.index], sn);
        if (arg == nullptr) {
          return arg;
        }
        auto message = detail::check_truncate_arg(*arg);
        if (!message.empty()) {
          return fail(std::move(message));
        }
        if (in->is_null()) {
          return in;
        }
        auto limit = arg->as_number() >= 1e18
                       ? std::size_t{1} << 62
                       : static_cast<std::size_t>(arg->as_number());
        if (in->is_string() && code_points(in->as_string()) <= limit) {
          return in;
        }
        auto s = text_of(*in);
        truncate_code_points(s, limit);
        return text(std::move(s), scratch);
      }
      case filter_id::length: {
        double len = in->is_null() ? 0
                     : in->is_string()
                       ? static_cast<double>(code_points(in->as_string()))
                       : static_cast<double>(code_points(in->to_text()));
        return number(len, scratch);
      }
      case filter_id::number: {
        if (in->is_number()) {
          return in;
        }
        std::optional<double> x;
        if (in->is_string()) {
          x = parse_number(in->as_string());
        }
        scratch = x ? value(*x) : value();
        return &scratch;
      }
    }
    return fail("invalid expression");
  }
};

} // namespace

eval_result expression::evaluate(const context& ctx,
                                 const eval_limits& limits) const noexcept {
  eval_result r;
  if (!tree_) {
    return r;
  }
  try {
    evaluator e{*tree_, ctx, limits, r.error, r.missing, 0};
    value scratch;
    auto x = e.eval(tree_->root, scratch);
    if (x == &scratch) {
      r.result = std::move(scratch);
    } else if (x != nullptr) {
      r.result = *x;
    }
  } catch (...) { // std::bad_alloc
    r = eval_result{};
    r.error = "out of memory"; // fits the small-string buffer: no allocation
  }
  return r;
}

std::string
expression::append_text(const context& ctx, const eval_limits& limits,
                        std::string& out,
                        std::vector<std::string>& missing) const noexcept {
  if (!tree_) {
    return {};
  }
  try {
    std::string error;
    evaluator e{*tree_, ctx, limits, error, missing, missing.size()};
    value scratch;
    auto x = e.eval(tree_->root, scratch);
    if (x == nullptr) {
      return error;
    }
    if (x->is_string()) {
      out += x->as_string();
    } else {
      out += x->to_text();
    }
    return {};
  } catch (...) {
    return "out of memory";
  }
}

} // namespace ringback::workflows
