#include "ringback/adapters/twilio/form.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

using namespace ringback::adapters::twilio;

TEST(TwilioForm, DecodesATwilioWebhookBody) {
  const auto form = decode_form(
    "CallSid=CA123&From=%2B15005550001&To=%2B15005550006"
    "&CallerName=Jane+O%27Hara&Empty=");
  ASSERT_TRUE(form.ok());
  EXPECT_EQ(form.fields, (form_fields{{"CallSid", "CA123"},
                                      {"From", "+15005550001"},
                                      {"To", "+15005550006"},
                                      {"CallerName", "Jane O'Hara"},
                                      {"Empty", ""}}));
}

TEST(TwilioForm, KeepsRepeatedNamesInOrder) {
  const auto form = decode_form("a=2&b=1&a=1");
  ASSERT_TRUE(form.ok());
  EXPECT_EQ(form.fields, (form_fields{{"a", "2"}, {"b", "1"}, {"a", "1"}}));
}

TEST(TwilioForm, SkipsEmptyPiecesAndAcceptsNamesWithoutValue) {
  const auto form = decode_form("&a&&=x&b=1=2&");
  ASSERT_TRUE(form.ok());
  EXPECT_EQ(form.fields, (form_fields{{"a", ""}, {"", "x"}, {"b", "1=2"}}));
  EXPECT_TRUE(decode_form("").ok());
  EXPECT_TRUE(decode_form("").fields.empty());
}

TEST(TwilioForm, DecodesEscapesOfAnyCaseAndRawBytes) {
  const auto form = decode_form("k=%e2%82%AC%00%2b+%25");
  ASSERT_TRUE(form.ok());
  EXPECT_EQ(form.fields.at(0).second, std::string("\xE2\x82\xAC\0+ %", 7));
}

TEST(TwilioForm, InvalidEscapesAreErrorsWithTheirOffset) {
  struct row {
    const char* input;
    std::size_t offset;
  };
  for (const auto& [input, offset] :
       {row{"%", 0}, row{"a=%4", 2}, row{"a=1&b=%zz", 6}, row{"a=1&%g0=1", 4},
        row{"a=%%41", 2}, row{"a=b%", 3}}) {
    const auto form = decode_form(input);
    ASSERT_FALSE(form.ok()) << input;
    EXPECT_EQ(form.error->code, form_errc::invalid_escape) << input;
    EXPECT_EQ(form.error->offset, offset) << input;
    EXPECT_TRUE(form.fields.empty()) << input;
  }
}

TEST(TwilioForm, TooManyFieldsIsAnError) {
  EXPECT_TRUE(decode_form("a=1&b=2&c=3", 3).ok());
  const auto form = decode_form("a=1&b=2&c=3&d=4", 3);
  ASSERT_FALSE(form.ok());
  EXPECT_EQ(form.error->code, form_errc::too_many_fields);
  EXPECT_EQ(form.error->offset, 12u);
  std::string big;
  for (std::size_t i = 0; i <= default_max_form_fields; ++i) {
    big += "x=1&";
  }
  EXPECT_FALSE(decode_form(big).ok());
}

TEST(TwilioForm, ErrorMessages) {
  EXPECT_STREQ(to_string(form_errc::invalid_escape), "invalid percent-escape");
  EXPECT_STREQ(to_string(form_errc::too_many_fields), "too many form fields");
  EXPECT_EQ(to_string(*decode_form("a=1&b=%zz").error),
            "invalid percent-escape at byte 6");
  EXPECT_EQ(to_string(*decode_form("a&b&c", 2).error),
            "too many form fields at byte 4");
}

TEST(TwilioForm, DecodeComponent) {
  EXPECT_EQ(decode_component("a+b%2Bc"), "a b+c");
  EXPECT_EQ(decode_component(""), "");
  EXPECT_EQ(decode_component("%2"), std::nullopt);
}

TEST(TwilioForm, EncodeComponentKeepsOnlyUnreserved) {
  EXPECT_EQ(encode_component("+15005550001"), "%2B15005550001");
  EXPECT_EQ(encode_component("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(encode_component("a b&c=d/e?f#%'\""),
            "a%20b%26c%3Dd%2Fe%3Ff%23%25%27%22");
  EXPECT_EQ(encode_component("\xE2\x82\xAC"), "%E2%82%AC");
  EXPECT_EQ(encode_component(std::string("\0", 1)), "%00");
}

TEST(TwilioForm, EncodeForm) {
  EXPECT_EQ(encode_form(
              {{"To", "+15005550002"}, {"Body", "Sorry we missed you & co"}}),
            "To=%2B15005550002&Body=Sorry%20we%20missed%20you%20%26%20co");
  EXPECT_EQ(encode_form({}), "");
}

TEST(TwilioForm, FindField) {
  const form_fields fields{{"a", "1"}, {"b", "2"}, {"a", "3"}};
  EXPECT_EQ(find_field(fields, "a"), "1");
  EXPECT_EQ(find_field(fields, "b"), "2");
  EXPECT_EQ(find_field(fields, "c"), std::nullopt);
}

TEST(TwilioForm, SplitTarget) {
  auto t = split_target("/twilio/voice?tenant=acme&x=1?2");
  EXPECT_EQ(t.path, "/twilio/voice");
  EXPECT_EQ(t.query, "tenant=acme&x=1?2");
  t = split_target("/twilio/voice");
  EXPECT_EQ(t.path, "/twilio/voice");
  EXPECT_EQ(t.query, "");
  t = split_target("/p?");
  EXPECT_EQ(t.path, "/p");
  EXPECT_EQ(t.query, "");
}

// Random bytes, biased towards the characters the decoder treats specially.
// Checks that decoding never crashes, respects its limit and that whatever
// decodes survives an encode/decode round trip.
TEST(TwilioForm, FuzzRandomBytes) {
  std::mt19937 rng{20240501};
  const std::string special = "%+=&0aF";
  std::uniform_int_distribution<int> length{0, 48};
  std::uniform_int_distribution<int> byte{0, 255};
  std::uniform_int_distribution<int> pick{0, 3};
  std::size_t decoded = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string input;
    for (int n = length(rng); n > 0; --n) {
      if (pick(rng) == 0) {
        input.push_back(static_cast<char>(byte(rng)));
      } else {
        input.push_back(
          special[static_cast<std::size_t>(byte(rng)) % special.size()]);
      }
    }
    const auto form = decode_form(input, 8);
    if (!form.ok()) {
      ASSERT_LE(form.error->offset, input.size()) << input;
      ASSERT_TRUE(form.fields.empty());
      continue;
    }
    ++decoded;
    ASSERT_LE(form.fields.size(), 8u);
    const auto again = decode_form(encode_form(form.fields), 8);
    ASSERT_TRUE(again.ok()) << input;
    ASSERT_EQ(again.fields, form.fields) << input;
  }
  EXPECT_GT(decoded, 500u); // the corpus exercises both paths
}
