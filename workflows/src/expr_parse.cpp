// Lexer and recursive-descent parser of the expression language. The
// recursion is bounded by `expression::max_depth` (every construct that nests
// a full expression, `not` and unary `-` count a level), the tree by
// `expression::max_nodes`; the first problem stops the parse.
#include "ringback/workflows/diagnostic.hpp"
#include "ringback/workflows/yaml_source.hpp"

#include "expr_tree.hpp"

#include <charconv>
#include <cstdint>
#include <limits>

namespace ringback::workflows {

namespace {

using detail::filter_id;
using detail::node;
using detail::op;

constexpr std::uint32_t bad = std::numeric_limits<std::uint32_t>::max();

enum class tok : std::uint8_t {
  end,
  error, ///< the lexer's message is recorded already
  string,
  number,
  name,
  lparen,
  rparen,
  lbracket,
  rbracket,
  comma,
  pipe,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
  plus,
  minus,
  star,
  slash,
  kw_and,
  kw_or,
  kw_not,
  kw_true,
  kw_false,
  kw_null,
  kw_contains,
  kw_matches,
  kw_in,
};

struct token {
  tok kind = tok::end;
  std::size_t begin = 0; ///< byte offsets in the full source
  std::size_t end = 0;
  std::size_t column = 0;
  std::string text; ///< decoded string literal, or the name
  double number = 0;
};

bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

bool is_ident_char(char c) {
  return is_ident_start(c) || (c >= '0' && c <= '9');
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool is_continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

/// `x` cut to `n` code points, with "..." when cut.
std::string clip(std::string_view x, std::size_t n = 32) {
  std::string out(x.substr(0, 4 * n + 4));
  if (truncate_code_points(out, n) || out.size() < x.size()) {
    out += "...";
  }
  return out;
}

/// The character at `pos` for a message: a valid UTF-8 sequence as is,
/// anything else as \xNN.
std::string char_at(std::string_view s, std::size_t pos) {
  auto c = static_cast<unsigned char>(s[pos]);
  std::size_t len = c < 0x80           ? 1
                    : (c >> 5) == 0x6  ? 2
                    : (c >> 4) == 0xE  ? 3
                    : (c >> 3) == 0x1E ? 4
                                       : 0;
  bool valid = len > 0 && pos + len <= s.size();
  for (std::size_t i = 1; valid && i < len; ++i) {
    valid = is_continuation(s[pos + i]);
  }
  if (valid && c >= 0x20 && c != 0x7F) {
    return std::string(s.substr(pos, len));
  }
  static constexpr char hex[] = "0123456789ABCDEF";
  return std::string{'\\', 'x', hex[c >> 4], hex[c & 0xF]};
}

struct keyword {
  const char* text;
  tok kind;
};

constexpr keyword keywords[] = {
  {"and", tok::kw_and},
  {"or", tok::kw_or},
  {"not", tok::kw_not},
  {"true", tok::kw_true},
  {"false", tok::kw_false},
  {"null", tok::kw_null},
  {"contains", tok::kw_contains},
  {"matches", tok::kw_matches},
  {"in", tok::kw_in},
};

const std::vector<std::string>& operator_words() {
  static const std::vector<std::string> xs{"and",      "or",      "not",
                                           "contains", "matches", "in"};
  return xs;
}

class lexer {
public:
  lexer(std::string_view src, std::size_t begin, std::size_t end,
        std::size_t column)
    : src_(src), pos_(begin), end_(end), column_(column) {
    // nop
  }

  /// The next token; `end` (forever) at the end, `error` (forever) after a
  /// bad character, with `error_` / `error_column_` set.
  token next() {
    if (failed_) {
      return make(tok::error, pos_);
    }
    while (pos_ < end_ && is_space(src_[pos_])) {
      advance(1);
    }
    if (pos_ >= end_) {
      return make(tok::end, pos_);
    }
    auto start = pos_;
    auto start_column = column_;
    char c = src_[pos_];
    auto simple = [&](tok k, std::size_t len) {
      advance(len);
      token t = make(k, start);
      t.column = start_column;
      return t;
    };
    auto peek = [&](std::size_t k) {
      return pos_ + k < end_ ? src_[pos_ + k] : '\0';
    };
    switch (c) {
      case '(':
        return simple(tok::lparen, 1);
      case ')':
        return simple(tok::rparen, 1);
      case '[':
        return simple(tok::lbracket, 1);
      case ']':
        return simple(tok::rbracket, 1);
      case ',':
        return simple(tok::comma, 1);
      case '+':
        return simple(tok::plus, 1);
      case '-':
        return simple(tok::minus, 1);
      case '*':
        return simple(tok::star, 1);
      case '/':
        return simple(tok::slash, 1);
      case '|':
        if (peek(1) == '|') {
          return fail("unexpected '||' (use 'or')", start_column);
        }
        return simple(tok::pipe, 1);
      case '=':
        if (peek(1) == '=') {
          return simple(tok::eq, 2);
        }
        return fail("unexpected '=' (use '==' to compare)", start_column);
      case '!':
        if (peek(1) == '=') {
          return simple(tok::ne, 2);
        }
        return fail("unexpected '!' (use 'not')", start_column);
      case '<':
        return peek(1) == '=' ? simple(tok::le, 2) : simple(tok::lt, 1);
      case '>':
        return peek(1) == '=' ? simple(tok::ge, 2) : simple(tok::gt, 1);
      case '&':
        if (peek(1) == '&') {
          return fail("unexpected '&&' (use 'and')", start_column);
        }
        break;
      case '{':
        if (peek(1) == '{') {
          return fail("unexpected '{{'", start_column);
        }
        break;
      case '}':
        if (peek(1) == '}') {
          return fail("unexpected '}}'", start_column);
        }
        break;
      case '"':
      case '\'':
        return string_literal();
      default:
        if (is_digit(c)) {
          return number();
        }
        if (is_ident_start(c)) {
          return name();
        }
    }
    return fail("unexpected character '" + char_at(src_, pos_) + "'",
                start_column);
  }

  const std::string& error() const {
    return error_;
  }

  std::size_t error_column() const {
    return error_column_;
  }

private:
  void advance(std::size_t n) {
    for (std::size_t i = 0; i < n && pos_ < end_; ++i, ++pos_) {
      if (!is_continuation(src_[pos_])) {
        ++column_;
      }
    }
  }

  token make(tok k, std::size_t start) const {
    token t;
    t.kind = k;
    t.begin = start;
    t.end = pos_;
    t.column = column_;
    return t;
  }

  token fail(std::string message, std::size_t column) {
    failed_ = true;
    error_ = std::move(message);
    error_column_ = column;
    token t = make(tok::error, pos_);
    t.column = column;
    return t;
  }

  token string_literal() {
    auto start = pos_;
    auto start_column = column_;
    char quote = src_[pos_];
    advance(1);
    std::string text;
    while (pos_ < end_) {
      char c = src_[pos_];
      if (c == quote) {
        advance(1);
        token t = make(tok::string, start);
        t.column = start_column;
        t.text = std::move(text);
        return t;
      }
      if (c == '\\' && pos_ + 1 < end_) {
        char e = src_[pos_ + 1];
        switch (e) {
          case '"':
          case '\'':
          case '\\':
            text += e;
            break;
          case 'n':
            text += '\n';
            break;
          case 't':
            text += '\t';
            break;
          default:
            return fail("unknown escape '\\" + char_at(src_, pos_ + 1)
                          + "' in a string (use '\\\\' for a backslash)",
                        column_);
        }
        advance(2);
        continue;
      }
      if (c == '\\') {
        break; // a backslash at the end: unterminated
      }
      // Copy a whole run of plain bytes at once (invalid UTF-8 included).
      auto run_end = pos_ + 1;
      while (run_end < end_ && src_[run_end] != quote
             && src_[run_end] != '\\') {
        ++run_end;
      }
      text.append(src_.substr(pos_, run_end - pos_));
      advance(run_end - pos_);
    }
    return fail(std::string("unterminated string (expected a closing ") + quote
                  + ")",
                start_column);
  }

  token number() {
    auto start = pos_;
    auto start_column = column_;
    while (pos_ < end_ && is_digit(src_[pos_])) {
      advance(1);
    }
    if (pos_ + 1 < end_ && src_[pos_] == '.' && is_digit(src_[pos_ + 1])) {
      advance(1);
      while (pos_ < end_ && is_digit(src_[pos_])) {
        advance(1);
      }
    }
    if (pos_ < end_ && (is_ident_char(src_[pos_]) || src_[pos_] == '.')) {
      auto stop = pos_;
      while (stop < end_ && (is_ident_char(src_[stop]) || src_[stop] == '.')) {
        ++stop;
      }
      return fail("invalid number '" + clip(src_.substr(start, stop - start))
                    + "'",
                  start_column);
    }
    token t = make(tok::number, start);
    t.column = start_column;
    const char* first = src_.data() + start;
    const char* last = src_.data() + pos_;
    auto [ptr, ec] = std::from_chars(first, last, t.number);
    if (ec != std::errc{} || ptr != last) {
      return fail("number '" + clip(src_.substr(start, pos_ - start))
                    + "' is out of range",
                  start_column);
    }
    return t;
  }

  token name() {
    auto start = pos_;
    auto start_column = column_;
    while (pos_ < end_ && is_ident_char(src_[pos_])) {
      advance(1);
    }
    bool dotted = false;
    while (pos_ < end_ && src_[pos_] == '.') {
      if (pos_ + 1 >= end_ || !is_ident_char(src_[pos_ + 1])) {
        advance(1);
        return fail("invalid variable name '"
                      + clip(src_.substr(start, pos_ - start))
                      + "' (expected a name like call.from)",
                    start_column);
      }
      dotted = true;
      advance(1);
      while (pos_ < end_ && is_ident_char(src_[pos_])) {
        advance(1);
      }
    }
    token t = make(tok::name, start);
    t.column = start_column;
    t.text = std::string(src_.substr(start, pos_ - start));
    if (!dotted) {
      for (const auto& k : keywords) {
        if (t.text == k.text) {
          t.kind = k.kind;
          break;
        }
      }
    }
    return t;
  }

  std::string_view src_;
  std::size_t pos_;
  std::size_t end_;
  std::size_t column_;
  bool failed_ = false;
  std::string error_;
  std::size_t error_column_ = 0;
};

bool is_comparison(tok k) {
  return k == tok::eq || k == tok::ne || k == tok::lt || k == tok::le
         || k == tok::gt || k == tok::ge;
}

op comparison_op(tok k) {
  switch (k) {
    case tok::eq:
      return op::eq;
    case tok::ne:
      return op::ne;
    case tok::lt:
      return op::lt;
    case tok::le:
      return op::le;
    case tok::gt:
      return op::gt;
    default:
      return op::ge;
  }
}

} // namespace

struct expr_parser {
  expr_parser(std::string_view src, std::size_t begin, std::size_t end,
              std::size_t column)
    : src_(src), lex_(src, begin, end, column) {
    tree_ = std::make_shared<detail::expr_tree>();
  }

  static expr_parse_result parse(std::string_view src, std::size_t begin,
                                 std::size_t end) {
    expr_parse_result result;
    end = std::min(end, src.size());
    begin = std::min(begin, end);
    const auto column = code_points(src.substr(0, begin)) + 1;
    if (end - begin > expression::max_source_bytes) {
      result.error = "the expression is too long ("
                     + std::to_string(end - begin) + " bytes; at most "
                     + std::to_string(expression::max_source_bytes) + ")";
      result.column = column;
      return result;
    }
    auto first = begin;
    while (first < end && is_space(src[first])) {
      ++first;
    }
    auto last = end;
    while (last > first && is_space(src[last - 1])) {
      --last;
    }
    if (first == last) {
      result.error = "empty expression";
      result.column = column;
      return result;
    }
    expr_parser p(src, begin, end, column);
    p.tree_->source = std::string(src.substr(first, last - first));
    auto root = p.parse_or();
    if (root != bad && p.peek().kind != tok::end) {
      p.unexpected_after_operand(p.peek(), "the end of the expression");
      root = bad;
    }
    if (root == bad || !p.error_.empty()) {
      result.error = p.error_.empty() ? "invalid expression" : p.error_;
      result.column = p.error_column_;
      return result;
    }
    p.tree_->root = root;
    result.value.tree_ = std::move(p.tree_);
    return result;
  }

private:
  /// Raises the nesting level for the lifetime of a scope.
  struct nest {
    nest(expr_parser& p, std::size_t column) : p_(p) {
      ok = ++p_.depth_ <= expression::max_depth;
      if (!ok) {
        p_.fail("the expression nests too deeply (more than "
                  + std::to_string(expression::max_depth) + " levels)",
                column);
      }
    }
    ~nest() {
      --p_.depth_;
    }
    nest(const nest&) = delete;
    nest& operator=(const nest&) = delete;
    expr_parser& p_;
    bool ok;
  };

  const token& peek(std::size_t k = 0) {
    while (tokens_.size() <= next_ + k) {
      tokens_.push_back(lex_.next());
      if (tokens_.back().kind == tok::error) {
        fail(lex_.error(), lex_.error_column());
      }
    }
    return tokens_[next_ + k];
  }

  token take() {
    token t = peek();
    if (t.kind != tok::end && t.kind != tok::error) {
      ++next_;
    }
    return t;
  }

  std::uint32_t fail(std::string message, std::size_t column) {
    if (error_.empty()) {
      error_ = std::move(message);
      error_column_ = column;
    }
    return bad;
  }

  std::uint32_t add(node n) {
    if (tree_->nodes.size() >= expression::max_nodes) {
      return fail("the expression is too complex (more than "
                    + std::to_string(expression::max_nodes) + " parts)",
                  n.column);
    }
    tree_->nodes.push_back(n);
    return static_cast<std::uint32_t>(tree_->nodes.size() - 1);
  }

  std::uint32_t add_with_args(node n, const std::vector<std::uint32_t>& xs) {
    n.index = static_cast<std::uint32_t>(tree_->args.size());
    n.count = static_cast<std::uint32_t>(xs.size());
    tree_->args.insert(tree_->args.end(), xs.begin(), xs.end());
    return add(n);
  }

  std::string shown(const token& t) {
    if (t.kind == tok::end) {
      return "the end of the expression";
    }
    return "'" + clip(src_.substr(t.begin, t.end - t.begin)) + "'";
  }

  /// Reports `t` where an operator (or `expected`) should follow an operand.
  std::uint32_t unexpected_after_operand(const token& t,
                                         const std::string& expected) {
    if (t.kind == tok::error) {
      return bad;
    }
    if (t.kind == tok::name && t.text.find('.') == std::string::npos) {
      auto near = nearest(t.text, operator_words());
      if (!near.empty()) {
        return fail("unknown operator '" + t.text + "' (did you mean '" + near
                      + "'?)",
                    t.column);
      }
    }
    if (t.kind == tok::rparen && expected == "the end of the expression") {
      return fail("unmatched ')'", t.column);
    }
    return fail("expected an operator or " + expected + ", found " + shown(t),
                t.column);
  }

  std::uint32_t parse_or() {
    return parse_chain(tok::kw_or, op::or_, &expr_parser::parse_and);
  }

  std::uint32_t parse_and() {
    return parse_chain(tok::kw_and, op::and_, &expr_parser::parse_not);
  }

  std::uint32_t parse_chain(tok word, op kind,
                            std::uint32_t (expr_parser::*operand)()) {
    auto first = (this->*operand)();
    if (first == bad || peek().kind != word) {
      return first;
    }
    std::vector<std::uint32_t> xs{first};
    node n;
    n.kind = kind;
    n.column = static_cast<std::uint32_t>(peek().column);
    while (peek().kind == word) {
      take();
      auto x = (this->*operand)();
      if (x == bad) {
        return bad;
      }
      xs.push_back(x);
    }
    return add_with_args(n, xs);
  }

  std::uint32_t parse_not() {
    if (peek().kind != tok::kw_not) {
      return parse_comparison();
    }
    auto t = take();
    nest guard(*this, t.column);
    if (!guard.ok) {
      return bad;
    }
    auto a = parse_not();
    if (a == bad) {
      return bad;
    }
    node n;
    n.kind = op::not_;
    n.a = a;
    n.column = static_cast<std::uint32_t>(t.column);
    return add(n);
  }

  std::uint32_t binary(op kind, std::uint32_t a, std::uint32_t b,
                       std::size_t column) {
    node n;
    n.kind = kind;
    n.a = a;
    n.b = b;
    n.column = static_cast<std::uint32_t>(column);
    return add(n);
  }

  std::uint32_t parse_comparison() {
    auto a = parse_contains();
    if (a == bad || !is_comparison(peek().kind)) {
      return a;
    }
    auto t = take();
    auto b = parse_contains();
    if (b == bad) {
      return bad;
    }
    if (is_comparison(peek().kind)) {
      return fail("comparisons do not chain (use 'and' or parentheses)",
                  peek().column);
    }
    return binary(comparison_op(t.kind), a, b, t.column);
  }

  std::uint32_t parse_contains() {
    auto a = parse_matches();
    if (a == bad || peek().kind != tok::kw_contains) {
      return a;
    }
    auto t = take();
    auto b = parse_matches();
    if (b == bad) {
      return bad;
    }
    if (peek().kind == tok::kw_contains) {
      return fail("'contains' does not chain (use parentheses)", peek().column);
    }
    return binary(op::contains, a, b, t.column);
  }

  std::uint32_t parse_matches() {
    auto a = parse_in();
    if (a == bad || peek().kind != tok::kw_matches) {
      return a;
    }
    auto t = take();
    const auto& r = peek();
    if (r.kind != tok::string) {
      if (r.kind == tok::error) {
        return bad;
      }
      return fail("'matches' needs a string literal (a regular expression) on "
                  "its right, found "
                    + shown(r),
                  r.column);
    }
    auto pattern = take();
    if (tree_->regexes.size() >= expression::max_regexes) {
      return fail("too many 'matches' (at most "
                    + std::to_string(expression::max_regexes)
                    + " in one expression)",
                  t.column);
    }
    // RE2 runs in linear time; the memory budget bounds the compiled program
    // and the DFA cache (past it RE2 falls back to its slower NFA, still
    // linear), and the count above bounds an expression's total.
    re2::RE2::Options options;
    options.set_log_errors(false);
    options.set_never_capture(true);
    options.set_max_mem(expression::max_regex_memory);
    auto re = std::make_unique<re2::RE2>(pattern.text, options);
    if (!re->ok()) {
      return fail("invalid regular expression: " + clip(re->error(), 80),
                  pattern.column);
    }
    if (peek().kind == tok::kw_matches) {
      return fail("'matches' does not chain (use parentheses)", peek().column);
    }
    node n;
    n.kind = op::matches;
    n.a = a;
    n.index = static_cast<std::uint32_t>(tree_->regexes.size());
    n.column = static_cast<std::uint32_t>(t.column);
    tree_->regexes.push_back(std::move(re));
    return add(n);
  }

  bool at_in() {
    return peek().kind == tok::kw_in
           || (peek().kind == tok::kw_not && peek(1).kind == tok::kw_in);
  }

  std::uint32_t parse_in() {
    auto a = parse_additive();
    if (a == bad || !at_in()) {
      return a;
    }
    auto t = take();
    auto kind = op::in;
    if (t.kind == tok::kw_not) {
      take();
      kind = op::not_in;
    }
    auto b = peek().kind == tok::lbracket ? parse_list() : parse_additive();
    if (b == bad) {
      return bad;
    }
    if (at_in()) {
      return fail("'in' does not chain (use parentheses)", peek().column);
    }
    return binary(kind, a, b, t.column);
  }

  /// Parses `a, b, ...` up to the `close` token, after the opening bracket
  /// `open` was taken; appends the items to `out`. Returns `bad` (the error
  /// set) or 0.
  std::uint32_t parse_items(const token& open, tok close, char opener,
                            char closer, std::vector<std::uint32_t>& out) {
    if (peek().kind == close) {
      take();
      return 0;
    }
    for (;;) {
      auto x = parse_or();
      if (x == bad) {
        return bad;
      }
      out.push_back(x);
      auto t = take();
      if (t.kind == tok::comma) {
        continue;
      }
      if (t.kind == close) {
        return 0;
      }
      if (t.kind == tok::end) {
        return fail(std::string("unclosed '") + opener + "' (expected '"
                      + closer + "')",
                    open.column);
      }
      return unexpected_after_operand(t,
                                      std::string("',' or '") + closer + "'");
    }
  }

  std::uint32_t parse_list() {
    auto open = take();
    nest guard(*this, open.column);
    if (!guard.ok) {
      return bad;
    }
    std::vector<std::uint32_t> items;
    if (parse_items(open, tok::rbracket, '[', ']', items) == bad) {
      return bad;
    }
    node n;
    n.kind = op::list;
    n.column = static_cast<std::uint32_t>(open.column);
    return add_with_args(n, items);
  }

  std::uint32_t parse_additive() {
    auto a = parse_multiplicative();
    while (a != bad
           && (peek().kind == tok::plus || peek().kind == tok::minus)) {
      auto t = take();
      auto b = parse_multiplicative();
      if (b == bad) {
        return bad;
      }
      a = binary(t.kind == tok::plus ? op::add : op::sub, a, b, t.column);
    }
    return a;
  }

  std::uint32_t parse_multiplicative() {
    auto a = parse_unary();
    while (a != bad
           && (peek().kind == tok::star || peek().kind == tok::slash)) {
      auto t = take();
      auto b = parse_unary();
      if (b == bad) {
        return bad;
      }
      a = binary(t.kind == tok::star ? op::mul : op::div, a, b, t.column);
    }
    return a;
  }

  std::uint32_t parse_unary() {
    if (peek().kind != tok::minus || peek(1).kind == tok::number) {
      return parse_pipe(); // `-3` is a literal, handled by parse_primary
    }
    auto t = take();
    nest guard(*this, t.column);
    if (!guard.ok) {
      return bad;
    }
    auto a = parse_unary();
    if (a == bad) {
      return bad;
    }
    node n;
    n.kind = op::neg;
    n.a = a;
    n.column = static_cast<std::uint32_t>(t.column);
    return add(n);
  }

  std::uint32_t parse_pipe() {
    auto a = parse_primary();
    while (a != bad && peek().kind == tok::pipe) {
      take();
      a = parse_filter(a);
    }
    return a;
  }

  std::uint32_t parse_filter(std::uint32_t input) {
    auto name = peek();
    if (name.kind == tok::error) {
      return bad;
    }
    // Keywords are not filter names, but say so plainly.
    bool word = name.kind == tok::name || name.kind >= tok::kw_and;
    if (!word) {
      return fail("expected a filter name after '|', found " + shown(name),
                  name.column);
    }
    auto text = std::string(src_.substr(name.begin, name.end - name.begin));
    const detail::filter_spec* spec = nullptr;
    for (const auto& f : detail::filter_table()) {
      if (text == f.name) {
        spec = &f;
        break;
      }
    }
    if (spec == nullptr) {
      auto hint = did_you_mean(text, filter_names());
      if (hint.empty()) {
        hint = " (filters: " + join(filter_names()) + ")";
      }
      return fail("unknown filter '" + clip(text) + "'" + hint, name.column);
    }
    take();
    std::vector<std::uint32_t> args;
    if (peek().kind == tok::lparen) {
      auto open = take();
      nest guard(*this, open.column);
      if (!guard.ok) {
        return bad;
      }
      if (parse_items(open, tok::rparen, '(', ')', args) == bad) {
        return bad;
      }
    }
    if (args.size() != spec->arity) {
      std::string takes = spec->arity == 0
                            ? "takes no arguments"
                            : "takes " + std::to_string(spec->arity)
                                + " argument" + (spec->arity == 1 ? "" : "s")
                                + " (" + spec->arg_name + ")";
      return fail("filter '" + text + "' " + takes + ", got "
                    + std::to_string(args.size()),
                  name.column);
    }
    if (spec->id == filter_id::truncate) {
      const auto& arg = tree_->nodes[args[0]];
      if (arg.kind == op::literal) {
        auto message = detail::check_truncate_arg(tree_->literals[arg.index]);
        if (!message.empty()) {
          return fail(message, arg.column);
        }
      }
    }
    node n;
    n.kind = op::filter;
    n.filter = spec->id;
    n.a = input;
    n.column = static_cast<std::uint32_t>(name.column);
    return add_with_args(n, args);
  }

  std::uint32_t literal(value x, std::size_t column) {
    node n;
    n.kind = op::literal;
    n.index = static_cast<std::uint32_t>(tree_->literals.size());
    n.column = static_cast<std::uint32_t>(column);
    auto i = add(n);
    if (i != bad) {
      tree_->literals.push_back(std::move(x));
    }
    return i;
  }

  std::uint32_t parse_primary() {
    const auto& t = peek();
    switch (t.kind) {
      case tok::string: {
        auto s = take();
        return literal(value(std::move(s.text)), s.column);
      }
      case tok::number: {
        auto s = take();
        return literal(value(s.number), s.column);
      }
      case tok::minus: { // only before a number: see parse_unary
        auto m = take();
        auto s = take();
        return literal(value(-s.number), m.column);
      }
      case tok::kw_true:
        return literal(value(true), take().column);
      case tok::kw_false:
        return literal(value(false), take().column);
      case tok::kw_null:
        return literal(value(), take().column);
      case tok::name: {
        auto s = take();
        node n;
        n.kind = op::variable;
        n.index = static_cast<std::uint32_t>(tree_->variables.size());
        n.column = static_cast<std::uint32_t>(s.column);
        auto i = add(n);
        if (i != bad) {
          tree_->variables.push_back({std::move(s.text), s.column});
        }
        return i;
      }
      case tok::lparen: {
        auto open = take();
        nest guard(*this, open.column);
        if (!guard.ok) {
          return bad;
        }
        auto a = parse_or();
        if (a == bad) {
          return bad;
        }
        if (peek().kind == tok::rparen) {
          take();
          return a;
        }
        if (peek().kind == tok::end) {
          return fail("unclosed '(' (expected ')')", open.column);
        }
        return unexpected_after_operand(peek(), "')'");
      }
      case tok::lbracket:
        return fail("a list [...] may only stand right of 'in'", t.column);
      case tok::end:
        return fail("unexpected end of the expression (expected a value)",
                    t.column);
      case tok::error:
        return bad;
      default:
        return fail("expected a value, found " + shown(t), t.column);
    }
  }

  std::string_view src_;
  lexer lex_;
  std::vector<token> tokens_;
  std::size_t next_ = 0;
  std::shared_ptr<detail::expr_tree> tree_;
  std::string error_;
  std::size_t error_column_ = 0;
  std::size_t depth_ = 0;
};

expr_parse_result parse_expression_in(std::string_view source,
                                      std::size_t begin, std::size_t end) {
  try {
    return expr_parser::parse(source, begin, end);
  } catch (...) { // std::bad_alloc
    expr_parse_result r;
    r.error = "out of memory";
    r.column = 1;
    return r;
  }
}

expr_parse_result parse_expression(std::string_view source) {
  return parse_expression_in(source, 0, source.size());
}

expr_parse_result parse_condition(std::string_view source) {
  std::size_t first = 0;
  while (first < source.size() && is_space(source[first])) {
    ++first;
  }
  auto last = source.size();
  while (last > first && is_space(source[last - 1])) {
    --last;
  }
  auto body = source.substr(first, last - first);
  expr_parse_result r;
  if (body.size() >= 4 && body.substr(0, 2) == "{{"
      && body.substr(body.size() - 2) == "}}") {
    auto inner_begin = first + 2;
    auto inner_end = last - 2;
    auto inner = source.substr(inner_begin, inner_end - inner_begin);
    if (inner.find_first_not_of(" \t\r\n") == std::string_view::npos) {
      r.error = "empty '{{ }}'";
      r.column = code_points(source.substr(0, first)) + 1;
      return r;
    }
    r = parse_expression_in(source, inner_begin, inner_end);
  } else {
    r = parse_expression_in(source, 0, source.size());
  }
  if (r.error == "unexpected '{{'" || r.error == "unexpected '}}'") {
    r.error += " (write a condition bare or as one whole '{{ ... }}')";
  }
  return r;
}

} // namespace ringback::workflows
