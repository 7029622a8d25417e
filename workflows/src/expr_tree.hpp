#pragma once

// The parsed form of an expression, private to workflows/src/expr_*.cpp: a
// flat vector of plain nodes (children by index), so that evaluation walks
// contiguous memory and copying an `expression` copies one shared pointer.

#include "ringback/workflows/expr.hpp"

#include <re2/re2.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ringback::workflows::detail {

enum class op : std::uint8_t {
  literal,  ///< literals[index]
  variable, ///< variables[index]
  list,     ///< args[index, index + count): only right of `in`
  not_,     ///< a
  and_,     ///< args[index, index + count)
  or_,      ///< args[index, index + count)
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
  contains, ///< a contains b
  matches,  ///< a matches regexes[index]
  in,       ///< a in b (b: a list node or any expression)
  not_in,
  add,
  sub,
  mul,
  div,
  neg,    ///< -a
  filter, ///< a | filter(args[index, index + count))
};

enum class filter_id : std::uint8_t {
  lower,
  upper,
  trim,
  default_,
  phone,
  e164,
  truncate,
  length,
  number,
};

struct node {
  op kind = op::literal;
  filter_id filter = filter_id::lower;
  std::uint32_t a = 0;
  std::uint32_t b = 0;
  std::uint32_t index = 0;
  std::uint32_t count = 0;
  std::uint32_t column = 0; ///< of the operator / operand, for diagnostics
};

struct expr_tree {
  std::string source; ///< trimmed
  std::vector<node> nodes;
  std::uint32_t root = 0;
  std::vector<value> literals;
  std::vector<variable_ref> variables; ///< in source order
  std::vector<std::unique_ptr<re2::RE2>> regexes;
  std::vector<std::uint32_t> args;
};

/// A filter's row in the table shared by the parser, evaluator and docs.
struct filter_spec {
  const char* name;
  filter_id id;
  std::uint8_t arity;   ///< exact number of arguments
  const char* arg_name; ///< "n", "x", or nullptr
  const char* usage;
  const char* doc;
};

const std::vector<filter_spec>& filter_table();

/// A value in an error message: 3, true, null, 'text' (cut to 32 code
/// points).
std::string describe(const value& x);

/// The message for a bad `truncate` argument, or "" when `x` is fine.
std::string check_truncate_arg(const value& x);

} // namespace ringback::workflows::detail
