#include "ringback/workflows/expr.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <thread>

using namespace ringback::workflows;

namespace {

const context& sample() {
  static const context ctx{
    {"call.from", "+15005550100"},
    {"call.to", "+442079460958"},
    {"business_hours", true},
    {"sms.body", "Please STOP texting"},
    {"n", 3},
    {"zero", 0},
    {"empty", ""},
    {"nothing", nullptr},
    {"steps.lookup.json.items.0.name", "Ada"},
    {"tenant.name", "Acme"},
  };
  return ctx;
}

value eval(std::string_view source, const context& ctx = sample()) {
  auto p = parse_expression(source);
  EXPECT_TRUE(p.ok()) << source << ": " << p.error << " at " << p.column;
  auto r = p.value.evaluate(ctx);
  EXPECT_TRUE(r.ok()) << source << ": " << r.error;
  return r.result;
}

/// "message @column".
std::string parse_error(std::string_view source) {
  auto p = parse_expression(source);
  EXPECT_FALSE(p.ok()) << source;
  EXPECT_TRUE(p.value.empty()) << source;
  return p.error + " @" + std::to_string(p.column);
}

std::string eval_error(std::string_view source, const context& ctx = sample()) {
  auto p = parse_expression(source);
  EXPECT_TRUE(p.ok()) << source << ": " << p.error;
  auto r = p.value.evaluate(ctx);
  EXPECT_FALSE(r.ok()) << source;
  EXPECT_TRUE(r.result.is_null()) << source;
  return r.error;
}

} // namespace

// -- literals and variables ---------------------------------------------------

TEST(Expr, Literals) {
  EXPECT_EQ(eval("\"hi\""), value("hi"));
  EXPECT_EQ(eval("'hi'"), value("hi"));
  EXPECT_EQ(eval(R"("a\"b\'c\\d\ne\tf")"), value("a\"b'c\\d\ne\tf"));
  EXPECT_EQ(eval(R"('it\'s "quoted"')"), value("it's \"quoted\""));
  EXPECT_EQ(eval("\"\""), value(""));
  EXPECT_EQ(eval("42"), value(42));
  EXPECT_EQ(eval("2.5"), value(2.5));
  EXPECT_EQ(eval("-3"), value(-3));
  EXPECT_EQ(eval("-0.25"), value(-0.25));
  EXPECT_EQ(eval("007"), value(7));
  EXPECT_EQ(eval("true"), value(true));
  EXPECT_EQ(eval("false"), value(false));
  EXPECT_EQ(eval("null"), value());
  EXPECT_EQ(eval("  \t\n 1 \r\n"), value(1));
  EXPECT_EQ(eval("\"h\xc3\xa9\""), value("h\xc3\xa9"));
}

TEST(Expr, VariablesAreDottedNamesOfTheFlatContext) {
  EXPECT_EQ(eval("call.from"), value("+15005550100"));
  EXPECT_EQ(eval("business_hours"), value(true));
  EXPECT_EQ(eval("steps.lookup.json.items.0.name"), value("Ada"));
  EXPECT_EQ(eval("nothing"), value());
  // Keywords are whole words only: a dotted name starting with one is a
  // variable.
  EXPECT_EQ(eval("in.x", {{"in.x", 1}}), value(1));
  EXPECT_EQ(eval("true_x", {{"true_x", 1}}), value(1));
  EXPECT_EQ(eval("a.2nd", {{"a.2nd", 2}}), value(2));
}

TEST(Expr, MissingVariablesReadAsNullAndAreListedOnce) {
  auto p = parse_expression("a == null and b == null and a == null");
  ASSERT_TRUE(p.ok());
  auto r = p.value.evaluate({});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.result, value(true));
  EXPECT_EQ(r.missing, (std::vector<std::string>{"a", "b"}));
  // Short-circuit: an unread variable is not missing.
  r = parse_expression("false and x").value.evaluate({});
  EXPECT_TRUE(r.missing.empty());
  r = parse_expression("n").value.evaluate(sample());
  EXPECT_TRUE(r.missing.empty());
}

TEST(Expr, VariablesInSourceOrderWithCodePointColumns) {
  auto p
    = parse_expression("\"\xc3\xa9\" == a.b or x | default(y) in [z, a.b]");
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_EQ(p.value.variables(),
            (std::vector<variable_ref>{
              {"a.b", 8}, {"x", 15}, {"y", 27}, {"z", 34}, {"a.b", 37}}));
  EXPECT_FALSE(p.value.is_constant());
  EXPECT_TRUE(parse_expression("1 + 2").value.is_constant());
}

TEST(Expr, SourceAndEmptiness) {
  expression none;
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none.source(), "");
  EXPECT_TRUE(none.variables().empty());
  auto r = none.evaluate(sample());
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.result.is_null());
  auto p = parse_expression("  a  and b\n");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p.value.empty());
  EXPECT_EQ(p.value.source(), "a  and b");
  auto copy = p.value; // shares the tree
  EXPECT_EQ(&copy.source(), &p.value.source());
}

// -- operators ----------------------------------------------------------------

TEST(Expr, AndOrShortCircuitAndYieldBooleans) {
  EXPECT_EQ(eval("true and true"), value(true));
  EXPECT_EQ(eval("true and false"), value(false));
  EXPECT_EQ(eval("false or true"), value(true));
  EXPECT_EQ(eval("false or false"), value(false));
  EXPECT_EQ(eval("\"x\" and 1"), value(true));
  EXPECT_EQ(eval("\"\" or 0"), value(false));
  EXPECT_EQ(eval("n or missing_thing"), value(true));
  // The right side is not evaluated: no type error.
  EXPECT_EQ(eval("false and (1 < \"a\")"), value(false));
  EXPECT_EQ(eval("true or (1 < \"a\")"), value(true));
  EXPECT_EQ(eval("a and b and c or d", {{"d", 1}}), value(true));
  // and binds tighter than or.
  EXPECT_EQ(eval("true or false and false"), value(true));
  EXPECT_EQ(eval("(true or false) and false"), value(false));
}

TEST(Expr, NotIsBooleanNegationBelowComparisons) {
  EXPECT_EQ(eval("not true"), value(false));
  EXPECT_EQ(eval("not nothing"), value(true));
  EXPECT_EQ(eval("not not n"), value(true));
  EXPECT_EQ(eval("not n == 4"), value(true)); // not (n == 4)
  EXPECT_EQ(eval("not zero and business_hours"), value(true));
  EXPECT_EQ(eval("business_hours and not (sms.body | lower contains \"stop\")"),
            value(false));
}

TEST(Expr, EqualityComparesKindAndContent) {
  EXPECT_EQ(eval("call.from == \"+15005550100\""), value(true));
  EXPECT_EQ(eval("call.from != \"+15005550100\""), value(false));
  EXPECT_EQ(eval("n == 3"), value(true));
  EXPECT_EQ(eval("n == 3.0"), value(true));
  EXPECT_EQ(eval("n == \"3\""), value(false)); // never equal across kinds
  EXPECT_EQ(eval("n != \"3\""), value(true));
  EXPECT_EQ(eval("nothing == null"), value(true));
  EXPECT_EQ(eval("missing == null"), value(true));
  EXPECT_EQ(eval("empty == null"), value(false));
  EXPECT_EQ(eval("true == 1"), value(false));
  EXPECT_EQ(eval("\"a\" == 'a'"), value(true));
}

TEST(Expr, OrderingNeedsTwoNumbersOrTwoTexts) {
  EXPECT_EQ(eval("n < 4"), value(true));
  EXPECT_EQ(eval("n <= 3"), value(true));
  EXPECT_EQ(eval("n > 3"), value(false));
  EXPECT_EQ(eval("n >= 3"), value(true));
  EXPECT_EQ(eval("-1 < 0"), value(true));
  EXPECT_EQ(eval("\"apple\" < \"banana\""), value(true));
  EXPECT_EQ(eval("\"B\" < \"a\""), value(true)); // byte order
  EXPECT_EQ(eval("\"\xc3\xa9\" > \"z\""), value(true));
  EXPECT_EQ(eval_error("n < \"4\""), "cannot compare number with string");
  EXPECT_EQ(eval_error("missing >= 1"), "cannot compare null with number");
  EXPECT_EQ(eval_error("true > false"), "cannot compare boolean with boolean");
}

TEST(Expr, Contains) {
  EXPECT_EQ(eval("sms.body contains \"STOP\""), value(true));
  EXPECT_EQ(eval("sms.body contains \"stop\""), value(false)); // case matters
  EXPECT_EQ(eval("sms.body | lower contains \"stop\""), value(true));
  EXPECT_EQ(eval("sms.body contains \"\""), value(true));
  EXPECT_EQ(eval("missing contains \"x\""), value(false)); // null reads as ""
  EXPECT_EQ(eval("\"abc\" contains missing"), value(true));
  EXPECT_EQ(eval_error("n contains \"3\""),
            "'contains' needs text on both sides, got number and string");
  EXPECT_EQ(eval_error("\"3\" contains true"),
            "'contains' needs text on both sides, got string and boolean");
}

TEST(Expr, MatchesIsAnRe2PartialMatch) {
  EXPECT_EQ(eval("sms.body matches \"ST.P\""), value(true));
  EXPECT_EQ(eval("sms.body matches \"^STOP\""), value(false));
  EXPECT_EQ(eval("sms.body matches '(?i)^please\\\\s+stop'"), value(true));
  EXPECT_EQ(eval("call.from matches \"^\\\\+1[0-9]{10}$\""), value(true));
  EXPECT_EQ(eval("missing matches \"^$\""), value(true));
  EXPECT_EQ(eval("\"h\xc3\xa9llo\" matches \"^h.llo$\""), value(true));
  // Invalid UTF-8 in the text is no crash.
  EXPECT_EQ(eval("x matches \"a\"", {{"x", std::string("\xff\xfe") + "a"}}),
            value(true));
  EXPECT_EQ(eval_error("n matches \"3\""),
            "'matches' needs text on its left, got number");
}

TEST(Expr, InListsAndText) {
  EXPECT_EQ(eval("n in [1, 2, 3]"), value(true));
  EXPECT_EQ(eval("n in [\"3\"]"), value(false));
  EXPECT_EQ(eval("n in []"), value(false));
  EXPECT_EQ(eval("n not in [1, 2]"), value(true));
  EXPECT_EQ(eval("call.from in [tenant.name, \"+15005550100\"]"), value(true));
  EXPECT_EQ(eval("missing in [null]"), value(true));
  EXPECT_EQ(eval("-1 in [-1]"), value(true));
  EXPECT_EQ(eval("\"STOP\" in sms.body"), value(true));
  EXPECT_EQ(eval("\"stop\" not in sms.body"), value(true));
  EXPECT_EQ(eval("\"\" in missing"), value(true));
  // The list is evaluated lazily: no error after the first match.
  EXPECT_EQ(eval("1 in [1, 1 < \"a\"]"), value(true));
  EXPECT_EQ(eval_error("\"a\" in n"),
            "'in' needs a list or text on its right, got number");
  EXPECT_EQ(eval_error("n in \"123\""),
            "'in' needs text on its left when its right is text, got number");
}

TEST(Expr, Arithmetic) {
  EXPECT_EQ(eval("1 + 2 * 3"), value(7));
  EXPECT_EQ(eval("(1 + 2) * 3"), value(9));
  EXPECT_EQ(eval("7 / 2"), value(3.5));
  EXPECT_EQ(eval("10 - 2 - 3"), value(5)); // left to right
  EXPECT_EQ(eval("n-1"), value(2));
  EXPECT_EQ(eval("n - -1"), value(4));
  EXPECT_EQ(eval("-n"), value(-3));
  EXPECT_EQ(eval("- (1 + 1)"), value(-2));
  EXPECT_EQ(eval("n * 2 > 5"), value(true));
  EXPECT_EQ(eval("\"a\" + \"b\" + tenant.name"), value("abAcme"));
  EXPECT_EQ(eval("\"ab\" | length + 1"), value(3));     // | binds tighter
  EXPECT_EQ(eval("\"n=\" + (n | trim)"), value("n=3")); // text of a number
  EXPECT_EQ(eval_error("1 / 0"), "division by zero");
  EXPECT_EQ(eval_error("1 + \"a\""),
            "'+' needs two numbers or two texts, got number and string");
  EXPECT_EQ(eval_error("\"a\" - 1"), "'-' needs two numbers, got string and "
                                     "number");
  EXPECT_EQ(eval_error("null * 1"), "'*' needs two numbers, got null and "
                                    "number");
  EXPECT_EQ(eval_error("1 / true"), "'/' needs two numbers, got number and "
                                    "boolean");
  EXPECT_EQ(eval_error("-\"a\""), "'-' needs a number, got string");
  // Overflow is no error: it reads as Infinity.
  EXPECT_EQ(eval("x * x", {{"x", 1e300}}).to_text(), "Infinity");
}

TEST(Expr, Precedence) {
  // or < and < not < comparisons < contains < matches < in < + < * < - < |
  EXPECT_EQ(eval("n == 3 and sms.body | lower contains \"stop\""), value(true));
  EXPECT_EQ(eval("\"stop\" in sms.body | lower == true"), value(true));
  EXPECT_EQ(eval("n + 1 in [4]"), value(true));
  EXPECT_EQ(eval("sms.body contains \"STOP\" == true"), value(true));
  EXPECT_EQ(eval("1 + 2 == 3"), value(true));
  EXPECT_EQ(eval("-\"12\" | number"), value(-12));
  EXPECT_EQ(eval("(((n)))"), value(3));
}

// -- filters ------------------------------------------------------------------

TEST(Expr, TextFilters) {
  EXPECT_EQ(eval("\"AbC \xc3\x89t\xc3\xa9\" | lower"),
            value("abc \xc3\x89t\xc3\xa9"));
  EXPECT_EQ(eval("\"AbC \xc3\xa9t\xc3\xa9\" | upper"),
            value("ABC \xc3\xa9T\xc3\xa9"));
  EXPECT_EQ(eval("\" \\t a b \\n\" | trim"), value("a b"));
  EXPECT_EQ(eval("\"   \" | trim"), value(""));
  EXPECT_EQ(eval("n | upper"), value("3")); // numbers become text
  EXPECT_EQ(eval("true | upper"), value("TRUE"));
  EXPECT_EQ(eval("missing | upper"), value()); // null stays null
  EXPECT_EQ(eval("missing | trim | lower"), value());
  EXPECT_EQ(eval("\"  Hello \" | trim | upper | truncate(3)"), value("HEL"));
  EXPECT_EQ(eval("sms.body | lower()"), value("please stop texting"));
}

TEST(Expr, DefaultFilter) {
  EXPECT_EQ(eval("missing | default(\"x\")"), value("x"));
  EXPECT_EQ(eval("nothing | default(\"x\")"), value("x"));
  EXPECT_EQ(eval("empty | default(\"x\")"), value("x"));
  EXPECT_EQ(eval("zero | default(5)"), value(0));
  EXPECT_EQ(eval("false | default(5)"), value(false));
  EXPECT_EQ(eval("tenant.name | default(\"us\")"), value("Acme"));
  EXPECT_EQ(eval("missing | default(call.from | phone)"),
            value("(500) 555-0100"));
  EXPECT_EQ(eval("\"a\" | default(1 < \"b\")"), value("a")); // lazy
  EXPECT_EQ(eval_error("missing | default(1 < \"b\")"),
            "cannot compare number with string");
}

TEST(Expr, PhoneFilters) {
  EXPECT_EQ(eval("call.from | phone"), value("(500) 555-0100"));
  EXPECT_EQ(eval("\"+1 (500) 555-0100\" | phone"), value("(500) 555-0100"));
  EXPECT_EQ(eval("call.to | phone"), value("+442079460958"));
  EXPECT_EQ(eval("\"+44 20 7946 0958\" | phone"), value("+442079460958"));
  EXPECT_EQ(eval("\"anonymous\" | phone"), value("anonymous"));
  EXPECT_EQ(eval("\"5005550100\" | phone"), value("5005550100"));
  EXPECT_EQ(eval("n | phone"), value(3));
  EXPECT_EQ(eval("missing | phone"), value());
  EXPECT_EQ(eval("\"+1 (500) 555-0100\" | e164"), value("+15005550100"));
  EXPECT_EQ(eval("call.to | e164"), value("+442079460958"));
  EXPECT_EQ(eval("\"5005550100\" | e164"), value());
  EXPECT_EQ(eval("\"anonymous\" | e164"), value());
  EXPECT_EQ(eval("n | e164"), value());
  EXPECT_EQ(eval("missing | e164 | default(\"none\")"), value("none"));
}

TEST(Expr, TruncateLengthNumber) {
  EXPECT_EQ(eval("\"h\xc3\xa9llo\" | truncate(2)"), value("h\xc3\xa9"));
  EXPECT_EQ(eval("\"h\xc3\xa9llo\" | truncate(0)"), value(""));
  EXPECT_EQ(eval("\"h\xc3\xa9llo\" | truncate(100)"), value("h\xc3\xa9llo"));
  EXPECT_EQ(eval("\"abc\" | truncate(n - 1)"), value("ab"));
  EXPECT_EQ(eval("12345 | truncate(2)"), value("12"));
  EXPECT_EQ(eval("missing | truncate(1)"), value());
  EXPECT_EQ(eval("\"abc\" | truncate(\"2\" | number)"), value("ab"));
  EXPECT_EQ(eval_error("\"abc\" | truncate(x)", {{"x", "a"}}),
            "truncate(n) needs a whole number n >= 0, got 'a'");
  EXPECT_EQ(eval_error("\"abc\" | truncate(0 - 1)"),
            "truncate(n) needs a whole number n >= 0, got -1");
  EXPECT_EQ(eval_error("\"abc\" | truncate(missing)"),
            "truncate(n) needs a whole number n >= 0, got null");
  EXPECT_EQ(eval("\"h\xc3\xa9llo\" | length"), value(5));
  EXPECT_EQ(eval("\"\" | length"), value(0));
  EXPECT_EQ(eval("missing | length"), value(0));
  EXPECT_EQ(eval("n * 100 | length"), value(9)); // | binds tighter than *
  EXPECT_EQ(eval("(n * 100) | length"), value(3));
  EXPECT_EQ(eval("true | length"), value(4));
  EXPECT_EQ(eval("\"42\" | number"), value(42));
  EXPECT_EQ(eval("\" 2.5 \" | number"), value(2.5));
  EXPECT_EQ(eval("\"-1e3\" | number"), value(-1000));
  EXPECT_EQ(eval("\"+7\" | number"), value(7));
  EXPECT_EQ(eval("\".5\" | number"), value(0.5));
  EXPECT_EQ(eval("\"abc\" | number"), value());
  EXPECT_EQ(eval("\"\" | number"), value());
  EXPECT_EQ(eval("\"1e999\" | number"), value());
  EXPECT_EQ(eval("\"inf\" | number"), value());
  EXPECT_EQ(eval("\"nan\" | number"), value());
  EXPECT_EQ(eval("\"0x10\" | number"), value());
  EXPECT_EQ(eval("\"1.\" | number"), value(1));
  EXPECT_EQ(eval("\"1e\" | number"), value());
  EXPECT_EQ(eval("\"-\" | number"), value());
  EXPECT_EQ(eval("n | number"), value(3));
  EXPECT_EQ(eval("true | number"), value());
  EXPECT_EQ(eval("\"10\" | number > 9"), value(true));
}

// -- parse errors -------------------------------------------------------------

TEST(Expr, UnknownFiltersAndArguments) {
  EXPECT_EQ(parse_error("sms.body | lowr"),
            "unknown filter 'lowr' (did you mean 'lower'?) @12");
  EXPECT_EQ(parse_error("x | Phone"),
            "unknown filter 'Phone' (did you mean 'phone'?) @5");
  EXPECT_EQ(parse_error("x | frobnicate"),
            "unknown filter 'frobnicate' (filters: lower, upper, trim, "
            "default, phone, e164, truncate, length, number) @5");
  EXPECT_EQ(parse_error("x | truncate"),
            "filter 'truncate' takes 1 argument (n), got 0 @5");
  EXPECT_EQ(parse_error("x | truncate()"),
            "filter 'truncate' takes 1 argument (n), got 0 @5");
  EXPECT_EQ(parse_error("x | lower(1)"),
            "filter 'lower' takes no arguments, got 1 @5");
  EXPECT_EQ(parse_error("x | default(1, 2)"),
            "filter 'default' takes 1 argument (x), got 2 @5");
  EXPECT_EQ(parse_error("x | truncate(-1)"),
            "truncate(n) needs a whole number n >= 0, got -1 @14");
  EXPECT_EQ(parse_error("x | truncate(2.5)"),
            "truncate(n) needs a whole number n >= 0, got 2.5 @14");
  EXPECT_EQ(parse_error("x | truncate(\"3\")"),
            "truncate(n) needs a whole number n >= 0, got '3' @14");
  EXPECT_EQ(parse_error("x | "),
            "expected a filter name after '|', found the end of the "
            "expression @5");
  EXPECT_EQ(parse_error("x | (lower)"),
            "expected a filter name after '|', found '(' @5");
  EXPECT_EQ(parse_error("x | a.b"), "unknown filter 'a.b' (filters: lower, "
                                    "upper, trim, default, phone, e164, "
                                    "truncate, length, number) @5");
  EXPECT_EQ(parse_error("x | default(1"), "unclosed '(' (expected ')') @12");
  EXPECT_EQ(parse_error("x | default(1 2)"),
            "expected an operator or ',' or ')', found '2' @15");
}

TEST(Expr, MisspeltOperatorsGetADidYouMean) {
  EXPECT_EQ(parse_error("sms.body cotains \"stop\""),
            "unknown operator 'cotains' (did you mean 'contains'?) @10");
  EXPECT_EQ(parse_error("a adn b"),
            "unknown operator 'adn' (did you mean 'and'?) @3");
  EXPECT_EQ(parse_error("a matchs \"x\""),
            "unknown operator 'matchs' (did you mean 'matches'?) @3");
  EXPECT_EQ(parse_error("(a cotains b)"),
            "unknown operator 'cotains' (did you mean 'contains'?) @4");
  EXPECT_EQ(parse_error("a in [1 b]"),
            "expected an operator or ',' or ']', found 'b' @9");
  EXPECT_EQ(parse_error("a b"),
            "expected an operator or the end of the expression, found 'b' @3");
  EXPECT_EQ(parse_error("(a b)"), "expected an operator or ')', found 'b' @4");
  EXPECT_EQ(parse_error("a = b"), "unexpected '=' (use '==' to compare) @3");
  EXPECT_EQ(parse_error("a && b"), "unexpected '&&' (use 'and') @3");
  EXPECT_EQ(parse_error("a || b"), "unexpected '||' (use 'or') @3");
  EXPECT_EQ(parse_error("!a"), "unexpected '!' (use 'not') @1");
  EXPECT_EQ(parse_error("a not contains b"),
            "expected an operator or the end of the expression, found 'not' "
            "@3");
}

TEST(Expr, LexicalErrors) {
  EXPECT_EQ(parse_error("\"abc"),
            "unterminated string (expected a closing \") @1");
  EXPECT_EQ(parse_error("x == 'abc"),
            "unterminated string (expected a closing ') @6");
  EXPECT_EQ(parse_error("'abc\\"),
            "unterminated string (expected a closing ') @1");
  EXPECT_EQ(parse_error("'ab\\q'"),
            "unknown escape '\\q' in a string (use '\\\\' for a backslash) @4");
  EXPECT_EQ(parse_error("12abc"), "invalid number '12abc' @1");
  EXPECT_EQ(parse_error("1."), "invalid number '1.' @1");
  EXPECT_EQ(parse_error("x == 1.2.3"), "invalid number '1.2.3' @6");
  EXPECT_EQ(parse_error("1e5"), "invalid number '1e5' @1");
  EXPECT_EQ(parse_error(std::string(400, '9')),
            "number '99999999999999999999999999999999...' is out of range @1");
  EXPECT_EQ(
    parse_error("call."),
    "invalid variable name 'call.' (expected a name like call.from) @1");
  EXPECT_EQ(
    parse_error("a == call..from"),
    "invalid variable name 'call.' (expected a name like call.from) @6");
  EXPECT_EQ(parse_error("\xc3\xa9 == 1"), "unexpected character '\xc3\xa9' @1");
  EXPECT_EQ(parse_error("\"\xc3\xa9\" == \xff"),
            "unexpected character '\\xFF' @8");
  EXPECT_EQ(parse_error("a\x01"), "unexpected character '\\x01' @2");
  EXPECT_EQ(parse_error("a # b"), "unexpected character '#' @3");
  EXPECT_EQ(parse_error("{{ a }}"), "unexpected '{{' @1");
  EXPECT_EQ(parse_error("a }}"), "unexpected '}}' @3");
}

TEST(Expr, SyntaxErrors) {
  EXPECT_EQ(parse_error(""), "empty expression @1");
  EXPECT_EQ(parse_error(" \n\t"), "empty expression @1");
  EXPECT_EQ(parse_error("a +"),
            "unexpected end of the expression (expected a value) @4");
  EXPECT_EQ(parse_error("a + )"), "expected a value, found ')' @5");
  EXPECT_EQ(parse_error("a and or b"), "expected a value, found 'or' @7");
  EXPECT_EQ(parse_error("a == b)"), "unmatched ')' @7");
  EXPECT_EQ(parse_error("(a == b"), "unclosed '(' (expected ')') @1");
  EXPECT_EQ(parse_error("()"), "expected a value, found ')' @2");
  EXPECT_EQ(parse_error("a == b == c"),
            "comparisons do not chain (use 'and' or parentheses) @8");
  EXPECT_EQ(parse_error("1 < n <= 5"),
            "comparisons do not chain (use 'and' or parentheses) @7");
  EXPECT_EQ(parse_error("a contains b contains c"),
            "'contains' does not chain (use parentheses) @14");
  EXPECT_EQ(parse_error("a in [1] in [2]"),
            "'in' does not chain (use parentheses) @10");
  EXPECT_EQ(parse_error("a matches \"x\" matches \"y\""),
            "'matches' does not chain (use parentheses) @15");
  EXPECT_EQ(parse_error("a matches b"),
            "'matches' needs a string literal (a regular expression) on its "
            "right, found 'b' @11");
  EXPECT_EQ(parse_error("a matches"),
            "'matches' needs a string literal (a regular expression) on its "
            "right, found the end of the expression @10");
  EXPECT_EQ(parse_error("a matches \"(\""),
            "invalid regular expression: missing ): ( @11");
  EXPECT_EQ(parse_error("a matches \"x{2,1}\""),
            "invalid regular expression: invalid repetition size: {2,1} @11");
  EXPECT_EQ(parse_error("[1, 2]"),
            "a list [...] may only stand right of 'in' @1");
  EXPECT_EQ(parse_error("a in [1, 2"), "unclosed '[' (expected ']') @6");
  EXPECT_EQ(parse_error("a in [1,]"), "expected a value, found ']' @9");
  EXPECT_EQ(parse_error("not"),
            "unexpected end of the expression (expected a value) @4");
  EXPECT_EQ(parse_error("\xc3\xa9\xc3\xa9"),
            "unexpected character '\xc3\xa9' @1");
  EXPECT_EQ(parse_error("\"\xc3\xa9\xc3\xa9\" cotains x"),
            "unknown operator 'cotains' (did you mean 'contains'?) @6");
}

TEST(Expr, RegexesAreBounded) {
  // Too big for RE2's memory budget: a parse error, not a slow match.
  auto p = parse_expression("x matches \"((a{100}){100}){100}\"");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error.rfind("invalid regular expression: ", 0), 0u) << p.error;
  EXPECT_EQ(p.column, 11u);
  std::string many = "x matches 'a'";
  for (int i = 0; i < 7; ++i) {
    many += " or x matches 'a'";
  }
  EXPECT_TRUE(parse_expression(many).ok());
  EXPECT_EQ(parse_error(many + " or x matches 'b'"),
            "too many 'matches' (at most 8 in one expression) @139");
  // Invalid UTF-8 in a pattern is a parse error too.
  p = parse_expression("x matches \"\xff\"");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error, "invalid regular expression: invalid UTF-8");
  // A classic catastrophic-backtracking pattern runs in linear time.
  std::string text(8000, 'a');
  auto q = parse_expression("x matches \"^(a+)+$\" or x matches \"(a|aa)*b\"");
  ASSERT_TRUE(q.ok()) << q.error;
  // (RE2: linear by construction; a backtracking engine would not return
  // before the test's timeout. Speed is measured in benchmarks/.)
  auto r = q.value.evaluate({{"x", text + "!"}});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.result, value(false));
}

TEST(Expr, SizeDepthAndNodeLimits) {
  EXPECT_EQ(parse_error(std::string(4097, 'a')),
            "the expression is too long (4097 bytes; at most 4096) @1");
  EXPECT_TRUE(parse_expression(std::string(4096, 'a')).ok());

  auto parens = [](std::size_t n) {
    return std::string(n, '(') + "a" + std::string(n, ')');
  };
  EXPECT_TRUE(parse_expression(parens(32)).ok());
  EXPECT_EQ(parse_error(parens(33)),
            "the expression nests too deeply (more than 32 levels) @33");
  EXPECT_EQ(parse_error(parens(5000)),
            "the expression is too long (10001 bytes; at most 4096) @1");
  EXPECT_EQ(parse_error(std::string(4000, '(')),
            "the expression nests too deeply (more than 32 levels) @33");
  EXPECT_EQ(parse_error(std::string(4000, '[')),
            "a list [...] may only stand right of 'in' @1");
  std::string nots;
  for (int i = 0; i < 33; ++i) {
    nots += "not ";
  }
  EXPECT_EQ(parse_error(nots + "a"),
            "the expression nests too deeply (more than 32 levels) @129");
  EXPECT_EQ(parse_error(std::string(40, '-') + "a"),
            "the expression nests too deeply (more than 32 levels) @33");
  EXPECT_EQ(parse_error("a in [" + std::string(40, '(')),
            "the expression nests too deeply (more than 32 levels) @38");
  std::string filters = "x";
  for (int i = 0; i < 40; ++i) {
    filters += " | default(y";
  }
  EXPECT_EQ(parse_error(filters).substr(0, 48),
            "the expression nests too deeply (more than 32 le");

  // 1 + 1 + ... : 2k + 1 nodes for k additions.
  std::string sum = "1";
  for (int i = 0; i < 255; ++i) {
    sum += " + 1";
  }
  auto p = parse_expression(sum); // 511 nodes
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_EQ(p.value.evaluate({}).result, value(256));
  sum += " + 1";
  EXPECT_EQ(parse_error(sum),
            "the expression is too complex (more than 512 parts) @1023");
  // The deepest trees (left-deep chains) evaluate without trouble.
  std::string pipes = "x";
  for (int i = 0; i < 511; ++i) {
    pipes += "|trim";
  }
  p = parse_expression(pipes);
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_EQ(p.value.evaluate({{"x", " a "}}).result, value("a"));
  // Long and/or chains are flat, not deep.
  std::string chain = "a";
  for (int i = 0; i < 400; ++i) {
    chain += " or a";
  }
  p = parse_expression(chain);
  ASSERT_TRUE(p.ok()) << p.error;
  auto r = p.value.evaluate({{"a", false}});
  EXPECT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.result, value(false));
}

// -- conditions ---------------------------------------------------------------

TEST(Expr, ConditionsAreBareOrOneWholeTemplate) {
  auto p = parse_condition("business_hours");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.value.evaluate(sample()).result, value(true));
  p = parse_condition("  {{ call.from == 'x' or n > 2 }}  ");
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_EQ(p.value.source(), "call.from == 'x' or n > 2");
  EXPECT_EQ(p.value.evaluate(sample()).result, value(true));
  // Columns count in the condition as written.
  EXPECT_EQ(p.value.variables(),
            (std::vector<variable_ref>{{"call.from", 6}, {"n", 26}}));
  p = parse_condition("{{x == \"}}\"}}");
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_EQ(p.value.evaluate({{"x", "}}"}}).result, value(true));

  auto error = [](std::string_view source) {
    auto r = parse_condition(source);
    EXPECT_FALSE(r.ok()) << source;
    return r.error + " @" + std::to_string(r.column);
  };
  EXPECT_EQ(error(""), "empty expression @1");
  EXPECT_EQ(error(" {{ }} "), "empty '{{ }}' @2");
  EXPECT_EQ(error("{{ a | lowr }}"),
            "unknown filter 'lowr' (did you mean 'lower'?) @8");
  EXPECT_EQ(error("{{ a }} and {{ b }}"),
            "unexpected '}}' (write a condition bare or as one whole "
            "'{{ ... }}') @6");
  EXPECT_EQ(error("a and {{ b }}"),
            "unexpected '{{' (write a condition bare or as one whole "
            "'{{ ... }}') @7");
  EXPECT_EQ(error("{{ a"),
            "unexpected '{{' (write a condition bare or as one whole "
            "'{{ ... }}') @1");
}

TEST(Expr, ParseExpressionInCountsColumnsFromTheWholeSource) {
  std::string_view src = "Hi \xc3\xa9 {{ a | lowr }}";
  auto p = parse_expression_in(src, 8, 18);
  EXPECT_EQ(p.error, "unknown filter 'lowr' (did you mean 'lower'?)");
  EXPECT_EQ(p.column, 13u);
  p = parse_expression_in(src, 8, 10);
  ASSERT_TRUE(p.ok()) << p.error;
  EXPECT_EQ(p.value.source(), "a");
  EXPECT_EQ(p.value.variables(), (std::vector<variable_ref>{{"a", 9}}));
  // Out-of-range offsets are clamped, not undefined.
  EXPECT_EQ(parse_expression_in(src, 100, 200).error, "empty expression");
  EXPECT_EQ(parse_expression_in(src, 12, 3).error, "empty expression");
}

// -- evaluation limits and safety ---------------------------------------------

TEST(Expr, StepLimit) {
  auto p = parse_expression("1 + 1 + 1"); // 5 nodes
  ASSERT_TRUE(p.ok());
  eval_limits limits;
  limits.max_steps = 5;
  EXPECT_TRUE(p.value.evaluate({}, limits).ok());
  limits.max_steps = 4;
  auto r = p.value.evaluate({}, limits);
  EXPECT_EQ(r.error, "the expression took too many steps (more than 4)");
  EXPECT_TRUE(r.result.is_null());
  limits.max_steps = 0;
  EXPECT_EQ(p.value.evaluate({}, limits).error,
            "the expression took too many steps (more than 0)");
}

TEST(Expr, TextIsCappedOnUtf8Boundaries) {
  eval_limits limits;
  limits.max_text_bytes = 3;
  auto p = parse_expression("a + b");
  ASSERT_TRUE(p.ok());
  auto r = p.value.evaluate({{"a", "h\xc3\xa9llo"}, {"b", "world"}}, limits);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.result, value("h\xc3\xa9"));
  limits.max_text_bytes = 2; // would split the é: a reads as "h"
  r = p.value.evaluate({{"a", "h\xc3\xa9llo"}, {"b", "world"}}, limits);
  EXPECT_EQ(r.result, value("hw"));
  // Long variables are cut when read, literals too.
  const context big{{"x", std::string(100000, 'x')}};
  r = parse_expression("x").value.evaluate(big);
  EXPECT_EQ(r.result.as_string().size(), 8192u);
  r = parse_expression("x | length").value.evaluate(big);
  EXPECT_EQ(r.result, value(8192));
  r = parse_expression("x + x | upper").value.evaluate(big);
  EXPECT_EQ(r.result.as_string().size(), 8192u);
  r = parse_expression("'abcdef'").value.evaluate({}, limits);
  EXPECT_EQ(r.result, value("ab"));
  // No cap at all does not overflow.
  limits.max_text_bytes = std::numeric_limits<std::size_t>::max();
  r = parse_expression("'a' + 'b' | upper").value.evaluate({}, limits);
  EXPECT_EQ(r.result, value("aB"));
}

TEST(Expr, InvalidUtf8IsCarriedNotACrash) {
  const context ctx{{"x", "\xff\xc3"}, {"y", "\x80\x80\x80"}};
  for (const char* src :
       {"x | upper", "x | truncate(1)", "x | length", "y | truncate(1)",
        "x + y", "x contains y", "x | phone", "x | e164", "x | number",
        "x | trim", "x matches \".\"", "'\xff' == x"}) {
    auto p = parse_expression(src);
    ASSERT_TRUE(p.ok()) << src << ": " << p.error;
    auto r = p.value.evaluate(ctx);
    EXPECT_TRUE(r.ok()) << src << ": " << r.error;
  }
  EXPECT_EQ(eval("y | length", ctx), value(0)); // stray continuation bytes
  EXPECT_EQ(eval("x | length", ctx), value(2));
}

TEST(Expr, ConcurrentEvaluationOfOneExpression) {
  auto p = parse_expression(
    "call.from matches \"^\\\\+1\" and (sms.body | lower contains \"stop\")");
  ASSERT_TRUE(p.ok()) << p.error;
  const auto e = p.value;
  std::vector<std::thread> threads;
  std::vector<int> good(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&e, &good, t] {
      for (int i = 0; i < 5000; ++i) {
        auto r = e.evaluate(sample());
        good[static_cast<std::size_t>(t)] += r.ok() && r.result == value(true);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(good, (std::vector<int>(4, 5000)));
}

// -- documentation ------------------------------------------------------------

TEST(Expr, EveryFilterIsDocumentedAndItsUsageParses) {
  const auto& docs = filter_docs();
  ASSERT_EQ(docs.size(), filter_names().size());
  for (std::size_t i = 0; i < docs.size(); ++i) {
    EXPECT_EQ(docs[i].name, filter_names()[i]);
    EXPECT_FALSE(docs[i].doc.empty()) << docs[i].name;
    auto p = parse_expression(docs[i].usage);
    EXPECT_TRUE(p.ok()) << docs[i].usage << ": " << p.error;
  }
  for (const char* name : {"lower", "upper", "trim", "default", "phone", "e164",
                           "truncate", "length", "number"}) {
    EXPECT_NE(std::find(filter_names().begin(), filter_names().end(), name),
              filter_names().end())
      << name;
  }
}

TEST(Expr, EveryOperatorIsDocumented) {
  const auto& docs = operator_docs();
  std::vector<std::string> names;
  for (const auto& d : docs) {
    EXPECT_FALSE(d.usage.empty()) << d.name;
    EXPECT_FALSE(d.doc.empty()) << d.name;
    names.push_back(d.name);
  }
  for (const char* name : {"or", "and", "not", "==", "!=", "<", "contains",
                           "matches", "in", "+", "*", "-", "|"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  }
}

// -- property-style tests -----------------------------------------------------

namespace {

/// Random well-formed expressions from a small grammar.
class expr_generator {
public:
  explicit expr_generator(std::uint32_t seed) : rng_(seed) {
    // nop
  }

  std::string next(int depth = 0) {
    if (depth > 4 || pick(0, 3) == 0) {
      return atom();
    }
    switch (pick(0, 9)) {
      case 0:
        return next(depth + 1) + " and " + next(depth + 1);
      case 1:
        return next(depth + 1) + " or " + next(depth + 1);
      case 2:
        return "not " + next(depth + 1);
      case 3:
        return "(" + next(depth + 1) + ") " + one_of(comparisons_) + " ("
               + next(depth + 1) + ")";
      case 4:
        return "(" + next(depth + 1) + ") contains (" + next(depth + 1) + ")";
      case 5:
        return "(" + next(depth + 1) + ") matches " + one_of(patterns_);
      case 6:
        return "(" + next(depth + 1) + ") in [" + atom() + ", "
               + next(depth + 1) + "]";
      case 7:
        return "(" + next(depth + 1) + ") " + one_of(arithmetic_) + " ("
               + next(depth + 1) + ")";
      default:
        return "(" + next(depth + 1) + ") | " + one_of(filters_);
    }
  }

private:
  std::string atom() {
    switch (pick(0, 4)) {
      case 0:
        return one_of(variables_);
      case 1:
        return std::to_string(static_cast<int>(pick(0, 20)) - 10);
      case 2:
        return one_of(strings_);
      case 3:
        return one_of({"true", "false", "null"});
      default:
        return one_of(variables_) + " | " + one_of(filters_);
    }
  }

  std::string one_of(const std::vector<std::string>& xs) {
    return xs[pick(0, xs.size() - 1)];
  }

  std::size_t pick(std::size_t lo, std::size_t hi) {
    return std::uniform_int_distribution<std::size_t>(lo, hi)(rng_);
  }

  std::mt19937 rng_;
  const std::vector<std::string> variables_{"call.from", "n",
                                            "zero",      "empty",
                                            "nothing",   "missing",
                                            "sms.body",  "business_hours"};
  const std::vector<std::string> strings_{"\"\"", "\"stop\"", "'+15005550100'",
                                          "\"\xc3\xa9t\xc3\xa9\"", "\"3\""};
  const std::vector<std::string> comparisons_{"==", "!=", "<", "<=", ">", ">="};
  const std::vector<std::string> arithmetic_{"+", "-", "*", "/"};
  const std::vector<std::string> patterns_{"\"^a\"", "'(?i)stop'", "\"\\\\d+\"",
                                           "\".\""};
  const std::vector<std::string> filters_{"lower",          "upper",  "trim",
                                          "default(\"d\")", "phone",  "e164",
                                          "truncate(2)",    "length", "number",
                                          "default(n)"};
};

} // namespace

TEST(Expr, RandomWellFormedExpressionsParseAndEvaluate) {
  expr_generator gen(0xE4E4);
  const std::vector<std::string> known_errors{
    "cannot compare", "'contains' needs", "'matches' needs",
    "'in' needs",     "'+' needs",        "'-' needs",
    "'*' needs",      "'/' needs",        "division by zero"};
  std::size_t evaluated_ok = 0;
  for (int i = 0; i < 3000; ++i) {
    auto src = gen.next();
    auto p = parse_expression(src);
    if (src.size() > expression::max_source_bytes) {
      continue;
    }
    ASSERT_TRUE(p.ok()) << src << ": " << p.error << " at " << p.column;
    auto r = p.value.evaluate(sample());
    if (r.ok()) {
      ++evaluated_ok;
      // Same input, same result.
      auto again = p.value.evaluate(sample());
      EXPECT_EQ(again.result.to_text(), r.result.to_text()) << src;
    } else {
      EXPECT_TRUE(r.result.is_null());
      bool known = std::any_of(known_errors.begin(), known_errors.end(),
                               [&](const std::string& prefix) {
                                 return r.error.rfind(prefix, 0) == 0;
                               });
      EXPECT_TRUE(known) << src << ": " << r.error;
    }
    // Variables are reported at their own columns.
    for (const auto& v : p.value.variables()) {
      auto byte = 0u;
      auto column = 1u;
      while (column < v.column) { // ASCII apart from one known literal
        column += (static_cast<unsigned char>(src[byte]) & 0xC0) != 0x80;
        ++byte;
      }
      while ((static_cast<unsigned char>(src[byte]) & 0xC0) == 0x80) {
        ++byte;
      }
      EXPECT_EQ(src.compare(byte, v.name.size(), v.name), 0)
        << src << ": " << v.name << " at " << v.column;
    }
  }
  EXPECT_GT(evaluated_ok, 1000u);
}

TEST(Expr, RandomBytesNeverCrashTheParser) {
  std::mt19937 rng(0xB17E);
  const std::string alphabet = "abnot.0129 ()[],|'\"\\<>=!+-*/{}\xc3\xa9\xff"
                               "andorcontainsmatchesinlowertruncate";
  for (int i = 0; i < 20000; ++i) {
    std::string src;
    auto len = std::uniform_int_distribution<int>(0, 48)(rng);
    for (int j = 0; j < len; ++j) {
      src += alphabet[std::uniform_int_distribution<std::size_t>(
        0, alphabet.size() - 1)(rng)];
    }
    auto p = parse_expression(src);
    std::size_t points = 0;
    for (char c : src) {
      points += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }
    if (!p.ok()) {
      EXPECT_GE(p.column, 1u) << src;
      EXPECT_LE(p.column, points + 1) << src;
      continue;
    }
    eval_limits limits;
    limits.max_text_bytes = 16;
    auto r = p.value.evaluate(sample(), limits);
    if (r.ok() && r.result.is_string()) {
      EXPECT_LE(r.result.as_string().size(), 16u) << src;
    }
  }
}
