#include "ringback/workflows/template.hpp"

#include <gtest/gtest.h>

using namespace ringback::workflows;

namespace {

std::string render(std::string_view source, const context& ctx) {
  auto t = parse_template(source);
  EXPECT_TRUE(t.ok()) << t.error;
  return t.value.render(ctx).text;
}

std::string error_of(std::string_view source) {
  return parse_template(source).error;
}

} // namespace

TEST(Template, LiteralTextStaysAsIs) {
  EXPECT_EQ(render("", {}), "");
  EXPECT_EQ(render("hello", {}), "hello");
  EXPECT_EQ(render("a } b }} c {", {}), "a } b }} c {");
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

TEST(Template, ValuesAreNotReinterpreted) {
  context ctx{{"a", "{{ b }}"}, {"b", "no"}};
  EXPECT_EQ(render("{{ a }}", ctx), "{{ b }}");
}

TEST(Template, MissingVariablesRenderEmptyAndAreListed) {
  auto t = parse_template("[{{ a }}|{{ b }}|{{ a }}]");
  ASSERT_TRUE(t.ok());
  auto r = t.value.render({{"b", "B"}});
  EXPECT_EQ(r.text, "[|B|]");
  EXPECT_EQ(r.missing, (std::vector<std::string>{"a", "a"}));
  EXPECT_FALSE(r.truncated);
}

TEST(Template, PartsAndColumns) {
  auto t = parse_template("Hé {{ x.y }}!");
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t.value.parts().size(), 3u);
  EXPECT_EQ(t.value.parts()[1].text, "x.y");
  EXPECT_TRUE(t.value.parts()[1].is_variable);
  EXPECT_EQ(t.value.parts()[1].column, 4u); // code points, not bytes
  ASSERT_EQ(t.value.variables().size(), 1u);
}

TEST(Template, ErrorsArePinned) {
  EXPECT_EQ(error_of("Hi {{ call.from"),
            "unterminated '{{' at column 4 of the template (expected '}}')");
  EXPECT_EQ(error_of("é{{"),
            "unterminated '{{' at column 2 of the template (expected '}}')");
  EXPECT_EQ(error_of("a {{ }} b"), "empty '{{ }}' at column 3 of the template");
  EXPECT_EQ(error_of("{{ call from }}"),
            "invalid variable name 'call from' at column 1 of the template "
            "(expected a name like call.from)");
  EXPECT_EQ(error_of("{{ call. }}"),
            "invalid variable name 'call.' at column 1 of the template "
            "(expected a name like call.from)");
  EXPECT_EQ(error_of("{{ 1x }}"),
            "invalid variable name '1x' at column 1 of the template "
            "(expected a name like call.from)");
  EXPECT_EQ(error_of(std::string(4097, 'x')),
            "the template is too long (4097 bytes; at most 4096)");
  EXPECT_TRUE(parse_template(std::string(4096, 'x')).ok());
}

TEST(Template, RenderingIsBoundedAndCutsOnUtf8Boundaries) {
  auto t = parse_template("ab{{ v }}cd");
  ASSERT_TRUE(t.ok());
  // "é" is two bytes: a cut after 3 bytes must not split it.
  auto r = t.value.render({{"v", "éé"}}, 3);
  EXPECT_EQ(r.text, "ab");
  EXPECT_TRUE(r.truncated);
  r = t.value.render({{"v", "éé"}}, 4);
  EXPECT_EQ(r.text, "abé");
  r = t.value.render({{"v", std::string(1 << 20, 'x')}});
  EXPECT_EQ(r.text.size(), text_template::default_max_output);
  EXPECT_TRUE(r.truncated);
  r = t.value.render({{"v", "x"}}, 0);
  EXPECT_EQ(r.text, "");
}
