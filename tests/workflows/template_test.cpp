#include "ringback/workflows/template.hpp"

#include <gtest/gtest.h>

using namespace ringback::workflows;

namespace {

std::string render(std::string_view source, const context& ctx) {
  auto t = parse_template(source);
  EXPECT_TRUE(t.ok()) << t.error;
  auto r = t.value.render(ctx);
  EXPECT_TRUE(r.errors.empty()) << source << ": " << r.errors.front();
  return r.text;
}

std::string error_of(std::string_view source) {
  return parse_template(source).error;
}

} // namespace

TEST(Template, LiteralTextStaysAsIs) {
  EXPECT_EQ(render("", {}), "");
  EXPECT_EQ(render("hello", {}), "hello");
  EXPECT_EQ(render("a } b }} c {", {}), "a } b }} c {");
  EXPECT_EQ(render("it's \"quoted\"", {}), "it's \"quoted\"");
}

TEST(Template, VariablesWithAndWithoutSpaces) {
  context ctx{{"call.from", "+15005550006"}, {"tenant.name", "Acme"}};
  EXPECT_EQ(render("{{call.from}}", ctx), "+15005550006");
  EXPECT_EQ(render("{{ call.from }}", ctx), "+15005550006");
  EXPECT_EQ(render("{{   call.from\t}}", ctx), "+15005550006");
  EXPECT_EQ(render("Hi from {{ tenant.name }}, {{call.from}}!", ctx),
            "Hi from Acme, +15005550006!");
}

TEST(Template, OutputIsPlainTextWithoutEscaping) {
  context ctx{{"tenant.name", "Tom & Jerry's <Plumbing> \"24/7\""}};
  EXPECT_EQ(render("At {{ tenant.name }}: 5 < 6 & \"ok\"", ctx),
            "At Tom & Jerry's <Plumbing> \"24/7\": 5 < 6 & \"ok\"");
}

TEST(Template, ValuesRenderAsText) {
  context ctx{{"n", 3}, {"x", 2.5}, {"t", true}, {"z", nullptr}};
  EXPECT_EQ(render("{{n}} {{x}} {{t}} [{{z}}]", ctx), "3 2.5 true []");
}

TEST(Template, ValuesAreNotReinterpreted) {
  context ctx{{"a", "{{ b }}"}, {"b", "no"}};
  EXPECT_EQ(render("{{ a }}", ctx), "{{ b }}");
}

TEST(Template, MissingVariablesRenderEmptyAndAreListed) {
  auto t = parse_template("[{{ a }}|{{ b }}|{{ a }}]");
  ASSERT_TRUE(t.ok());
  auto r = t.value.render({{"b", "B"}});
  EXPECT_EQ(r.text, "[|B|]");
  EXPECT_EQ(r.missing, (std::vector<std::string>{"a", "a"})); // once a part
  EXPECT_TRUE(r.errors.empty());
  EXPECT_FALSE(r.truncated);
  r = parse_template("{{ a or a or b }}").value.render({});
  EXPECT_EQ(r.missing, (std::vector<std::string>{"a", "b"}));
}

TEST(Template, PartsAndColumns) {
  auto t = parse_template("H\xc3\xa9 {{ x.y }}!");
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t.value.parts().size(), 3u);
  EXPECT_EQ(t.value.parts()[1].text, "x.y");
  EXPECT_TRUE(t.value.parts()[1].is_variable);
  EXPECT_EQ(t.value.parts()[1].column, 4u); // code points, not bytes
  EXPECT_EQ(t.value.parts()[1].expr.source(), "x.y");
  EXPECT_FALSE(t.value.parts()[0].is_variable);
  EXPECT_TRUE(t.value.parts()[0].expr.empty());
  EXPECT_EQ(t.value.parts()[2].column, 13u);
  EXPECT_EQ(t.value.variables(), (std::vector<variable_ref>{{"x.y", 7}}));
}

TEST(Template, ExpressionParts) {
  context ctx{{"call.from", "+15005550100"},
              {"tenant.name", "Acme"},
              {"n", 3},
              {"vip", true}};
  EXPECT_EQ(render("Hi {{ call.from | phone }}", ctx), "Hi (500) 555-0100");
  EXPECT_EQ(render("{{ nick | default(tenant.name) | upper }}!", ctx), "ACME!");
  EXPECT_EQ(render("{{ n + 1 }} items, {{ n / 2 }} each", ctx),
            "4 items, 1.5 each");
  EXPECT_EQ(render("{{ vip }}/{{ not vip }}/{{ nothing }}", ctx),
            "true/false/");
  EXPECT_EQ(render("{{ \"a\" + 'b' }}", ctx), "ab");
  // A '}}' inside a string literal does not close the part.
  EXPECT_EQ(render("[{{ \"}}\" + 'x}}' }}]", ctx), "[}}x}}]");
  EXPECT_EQ(render("{{x|upper}}", {{"x", "a"}}), "A");
}

TEST(Template, VariablesOfAllPartsWithTemplateColumns) {
  auto t = parse_template("\xc3\xa9{{ a }} and {{ b | default(a) == c }}");
  ASSERT_TRUE(t.ok()) << t.error;
  EXPECT_EQ(t.value.variables(), (std::vector<variable_ref>{
                                   {"a", 5}, {"b", 17}, {"a", 29}, {"c", 35}}));
  EXPECT_FALSE(t.value.is_constant());
  EXPECT_TRUE(parse_template("x {{ 1 + 2 }}").value.is_constant());
  EXPECT_TRUE(parse_template("").value.is_constant());
}

TEST(Template, FailedPartsRenderEmptyAndListTheirErrors) {
  auto t = parse_template("a{{ n < 'x' }}b{{ n }}c{{ 1 / 0 }}");
  ASSERT_TRUE(t.ok()) << t.error;
  auto r = t.value.render({{"n", 1}});
  EXPECT_EQ(r.text, "ab1c");
  EXPECT_EQ(r.errors, (std::vector<std::string>{
                        "cannot compare number with string at column 2 of "
                        "the template",
                        "division by zero at column 24 of the template"}));
  EXPECT_TRUE(r.missing.empty());
  r = t.value.render({});
  EXPECT_EQ(r.missing, (std::vector<std::string>{"n", "n"}));
  EXPECT_EQ(r.errors.size(), 2u);
}

TEST(Template, SingleExpressionKeepsItsKind) {
  context ctx{{"n", 3}, {"s", "x"}};
  auto t = parse_template("{{ 1 + 2 }}");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t.value.is_single_expression());
  auto r = t.value.evaluate_value(ctx);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.result, value(3));
  r = parse_template("{{ n > 2 }}").value.evaluate_value(ctx);
  EXPECT_EQ(r.result, value(true));
  r = parse_template("{{ missing }}").value.evaluate_value(ctx);
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.result.is_null());
  EXPECT_EQ(r.missing, (std::vector<std::string>{"missing"}));
  r = parse_template("{{ n < s }}").value.evaluate_value(ctx);
  EXPECT_EQ(r.error,
            "cannot compare number with string at column 1 of the template");
  EXPECT_TRUE(r.result.is_null());
  // Anything around the braces makes it text.
  for (const char* src :
       {" {{ 1 + 2 }}", "{{ 1 }}{{ 2 }}", "n={{ n }}", "3", ""}) {
    auto x = parse_template(src);
    ASSERT_TRUE(x.ok()) << src;
    EXPECT_FALSE(x.value.is_single_expression()) << src;
    r = x.value.evaluate_value(ctx);
    ASSERT_TRUE(r.ok()) << src;
    EXPECT_TRUE(r.result.is_string()) << src;
  }
  EXPECT_EQ(parse_template("{{ 1 }}{{ 2 }}").value.evaluate_value(ctx).result,
            value("12"));
  r = parse_template("a {{ n < s }} {{ m }}").value.evaluate_value(ctx);
  EXPECT_EQ(r.error,
            "cannot compare number with string at column 3 of the template");
  EXPECT_TRUE(r.result.is_null());
  EXPECT_EQ(r.missing, (std::vector<std::string>{"m"}));
  eval_limits limits;
  limits.max_text_bytes = 4;
  r = parse_template("abc{{ s }}def").value.evaluate_value(ctx, limits);
  EXPECT_EQ(r.result, value("abcx"));
}

TEST(Template, ErrorsArePinned) {
  EXPECT_EQ(error_of("Hi {{ call.from"),
            "unterminated '{{' at column 4 of the template (expected '}}')");
  EXPECT_EQ(error_of("\xc3\xa9{{"),
            "unterminated '{{' at column 2 of the template (expected '}}')");
  EXPECT_EQ(error_of("a {{ }} b"), "empty '{{ }}' at column 3 of the template");
  EXPECT_EQ(error_of("{{ call from }}"),
            "expected an operator or the end of the expression, found 'from' "
            "at column 9 of the template");
  EXPECT_EQ(error_of("{{ call. }}"),
            "invalid variable name 'call.' (expected a name like call.from) at "
            "column 4 of the template");
  EXPECT_EQ(error_of("{{ 1x }}"),
            "invalid number '1x' at column 4 of the template");
  EXPECT_EQ(error_of("Hi {{ call.from | lowr }}"),
            "unknown filter 'lowr' (did you mean 'lower'?) at column 19 of the "
            "template");
  EXPECT_EQ(error_of("\xc3\xa9 {{ a cotains 'b' }}"),
            "unknown operator 'cotains' (did you mean 'contains'?) at column 8 "
            "of the template");
  EXPECT_EQ(error_of("{{ 'a }}"),
            "unterminated string (expected a closing ') at column 4 of the "
            "template");
  EXPECT_EQ(error_of("{{ a }} {{ b {{ c }}"),
            "unexpected '{{' at column 14 of the template");
  EXPECT_EQ(error_of(std::string(4097, 'x')),
            "the template is too long (4097 bytes; at most 4096)");
  EXPECT_TRUE(parse_template(std::string(4096, 'x')).ok());
}

TEST(Template, RenderingIsBoundedAndCutsOnUtf8Boundaries) {
  auto t = parse_template("ab{{ v }}cd");
  ASSERT_TRUE(t.ok());
  // "é" is two bytes: a cut after 3 bytes must not split it.
  auto r = t.value.render({{"v", "\xc3\xa9\xc3\xa9"}}, 3);
  EXPECT_EQ(r.text, "ab");
  EXPECT_TRUE(r.truncated);
  r = t.value.render({{"v", "\xc3\xa9\xc3\xa9"}}, 4);
  EXPECT_EQ(r.text, "ab\xc3\xa9");
  r = t.value.render({{"v", std::string(1 << 20, 'x')}});
  EXPECT_EQ(r.text.size(), text_template::default_max_output);
  EXPECT_TRUE(r.truncated);
  r = t.value.render({{"v", "x"}}, 0);
  EXPECT_EQ(r.text, "");
  // A larger cap than the default lets longer values through.
  r = t.value.render({{"v", std::string(10000, 'x')}}, 20000);
  EXPECT_EQ(r.text.size(), 10004u);
  EXPECT_FALSE(r.truncated);
}
