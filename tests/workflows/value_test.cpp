#include "ringback/workflows/value.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>

using namespace ringback::workflows;

TEST(Value, KindsAndAccessors) {
  EXPECT_TRUE(value().is_null());
  EXPECT_TRUE(value(nullptr).is_null());
  EXPECT_TRUE(value(true).is_bool());
  EXPECT_TRUE(value(false).is_bool());
  EXPECT_TRUE(value(3).is_number());
  EXPECT_TRUE(value(2.5).is_number());
  EXPECT_TRUE(value(std::int64_t{1} << 40).is_number());
  EXPECT_TRUE(value("x").is_string());
  EXPECT_TRUE(value(std::string("x")).is_string());
  EXPECT_TRUE(value(std::string_view("x")).is_string());
  EXPECT_EQ(value(std::int64_t{1} << 40).as_number(), 1099511627776.0);
  EXPECT_EQ(value("abc").as_string(), "abc");
  EXPECT_EQ(value(true).type(), value::kind::boolean);
}

TEST(Value, Truthiness) {
  EXPECT_FALSE(value().truthy());
  EXPECT_FALSE(value(false).truthy());
  EXPECT_FALSE(value(0).truthy());
  EXPECT_FALSE(value(-0.0).truthy());
  EXPECT_FALSE(value(std::nan("")).truthy());
  EXPECT_FALSE(value("").truthy());
  EXPECT_TRUE(value(true).truthy());
  EXPECT_TRUE(value(-1).truthy());
  EXPECT_TRUE(value(0.001).truthy());
  EXPECT_TRUE(value("0").truthy()); // text is true unless empty
  EXPECT_TRUE(value("false").truthy());
  EXPECT_TRUE(value(std::numeric_limits<double>::infinity()).truthy());
}

TEST(Value, TextForms) {
  EXPECT_EQ(value().to_text(), "");
  EXPECT_EQ(value(true).to_text(), "true");
  EXPECT_EQ(value(false).to_text(), "false");
  EXPECT_EQ(value(3).to_text(), "3");
  EXPECT_EQ(value(3.0).to_text(), "3");
  EXPECT_EQ(value(-42).to_text(), "-42");
  EXPECT_EQ(value(2.5).to_text(), "2.5");
  EXPECT_EQ(value(0.1).to_text(), "0.1");
  EXPECT_EQ(value(0.1 + 0.2).to_text(), "0.30000000000000004");
  EXPECT_EQ(value(1e21).to_text(), "1e+21");
  EXPECT_EQ(value(15005550100.0).to_text(), "15005550100");
  EXPECT_EQ(value(-0.0).to_text(), "0");
  EXPECT_EQ(value(std::nan("")).to_text(), "NaN");
  EXPECT_EQ(value(std::numeric_limits<double>::infinity()).to_text(),
            "Infinity");
  EXPECT_EQ(value(-std::numeric_limits<double>::infinity()).to_text(),
            "-Infinity");
  EXPECT_EQ(value("h\xc3\xa9").to_text(), "h\xc3\xa9");
}

TEST(Value, EqualityComparesKindAndContent) {
  EXPECT_EQ(value(), value());
  EXPECT_EQ(value(1), value(1.0));
  EXPECT_EQ(value("a"), value(std::string("a")));
  EXPECT_EQ(value(true), value(true));
  EXPECT_NE(value(1), value("1"));
  EXPECT_NE(value(true), value(1));
  EXPECT_NE(value(), value(""));
  EXPECT_NE(value(), value(0));
  EXPECT_NE(value(false), value());
  EXPECT_NE(value("a"), value("A"));
  EXPECT_NE(value(std::nan("")), value(std::nan("")));
  EXPECT_EQ(value(0.0), value(-0.0));
}

TEST(Value, KindNames) {
  EXPECT_STREQ(to_string(value::kind::null), "null");
  EXPECT_STREQ(to_string(value::kind::boolean), "boolean");
  EXPECT_STREQ(to_string(value::kind::number), "number");
  EXPECT_STREQ(to_string(value::kind::string), "string");
}

TEST(Value, ContextLooksUpByStringView) {
  context ctx{{"call.from", "+15005550006"}, {"n", 3}};
  std::string_view key = "call.from";
  auto i = ctx.find(key);
  ASSERT_NE(i, ctx.end());
  EXPECT_EQ(i->second, value("+15005550006"));
  EXPECT_EQ(ctx.at("n"), value(3));
}

TEST(Value, PrintsForLogsAndTests) {
  std::ostringstream out;
  out << value() << ' ' << value(true) << ' ' << value(2.5) << ' '
      << value("a b");
  EXPECT_EQ(out.str(), "null true 2.5 \"a b\"");
}
