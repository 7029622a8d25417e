#include "ringback/adapters/twilio/signature.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

// Every vector of shared/oracles/twilio/VECTORS.md (from twilio-node's
// spec/validation.spec.js plus the oracle's extra rows).

using namespace ringback::adapters::twilio;

namespace {

const form_fields default_params = {
  {"CallSid", "CA1234567890ABCDE"},
  {"Caller", "+14158675309"},
  {"Digits", "1234"},
  {"From", "+14158675309"},
  {"To", "+18005551212"},
};

const std::string zeros32(32, '0');

struct vector_row {
  std::string name;
  std::string token;
  std::string url;
  form_fields params;
  std::string signature;
};

std::vector<vector_row> official_rows() {
  return {
    {"row1", "12345", "https://mycompany.com/myapp.php?foo=1&bar=2",
     default_params, "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
    {"row2", "12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2",
     default_params, "kvajT1Ptam85bY51eRf/AJRuM3w="},
    {"row3", "12345", "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
     default_params, "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="},
    {"row4", "12345", "http://mycompany.com:80/myapp.php?foo=1&bar=2",
     default_params, "0ZXoZLH/DfblKGATFgpif+LLRf4="},
    {"row5", "12345", "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2",
     default_params, "CukzLTc1tT5dXEDIHm/tKBanW10="},
    {"row6", "12345", "https://user@mycompany.com/myapp.php?foo=1&bar=2",
     default_params, "2YRLlVAflCqxaNicjMpJcSTgzSs="},
    {"row7", "12345",
     "https://user:pass@mycompany.com:443/myapp.php?foo=1&bar=2",
     default_params, "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI="},
    {"row8", "12345",
     "https://mycompany.com/myapp.php?foo=1&bar=2&Body=It%27s+amazing",
     default_params, "TfZzewPq8wqrGlMfyAud8+/IvJ0="},
    {"row8_raw_quote_signed", "12345",
     "https://mycompany.com/myapp.php?foo=1&bar=2&Body=It's+amazing",
     default_params, "dsq4Ehbj6cs+KdTkpF5sSSplOWw="},
    {"row9",
     "12345",
     "https://mycompany.com/myapp.php?foo=1&bar=2",
     {{"MessagingBinding.Address", "+1325xxxxxxx"},
      {"MessagingBinding.Address", "+1415xxxxxxx"}},
     "83O6e2vORAoJHUNzJjDWN1jz+BA="},
    {"row9_other_order",
     "12345",
     "https://mycompany.com/myapp.php?foo=1&bar=2",
     {{"MessagingBinding.Address", "+1415xxxxxxx"},
      {"MessagingBinding.Address", "+1325xxxxxxx"}},
     "83O6e2vORAoJHUNzJjDWN1jz+BA="},
    {"row10",
     "12345",
     "https://mycompany.com/myapp.php?foo=1&bar=2",
     {{"Sid", "CA123"},
      {"SidAccount", "AC123"},
      {"Digits", "5678"},
      {"Digits", "1234"},
      {"Digits", "1234"}},
     "IK+Dwps556ElfBT0I3Rgjkr1wJU="},
  };
}

std::vector<vector_row> extra_rows() {
  return {
    {"test_param",
     "s3cr3t",
     "https://example.com/path?test=param",
     {},
     "loLgTitFAoWx57yy5oEU4Hlddzw="},
    {"test_param_443",
     "s3cr3t",
     "https://example.com:443/path?test=param",
     {},
     "IdwMFypqvNxti3YgvWWmfcNL26M="},
    {"raw_quote",
     "s3cr3t",
     "https://example.com/path?test=param'WithQuote",
     {},
     "GfI7onHX/KQ2k1oVS3cUTVk4IEw="},
    {"encoded_quote",
     "s3cr3t",
     "https://example.com/path?test=param%27WithQuote",
     {},
     "HkuXLxVQ7zHv9LmGpzlLuGaxhJY="},
    {"o_hara",
     "s3cr3t",
     "https://example.com/path?name=William+O'hara",
     {},
     "b605MmAhLsMvWR7OrdCJdbf+5C8="},
    {"voice_webhook",
     "12345",
     "http://127.0.0.1:8080/twilio/voice",
     {{"AccountSid", "AC" + zeros32},
      {"CallSid", "CA" + zeros32},
      {"CallStatus", "ringing"},
      {"Direction", "inbound"},
      {"From", "+15005550001"},
      {"To", "+15005550006"}},
     "ybhRui1yVrL/YOi4eKjyR7ULmIU="},
    {"status_webhook",
     "12345",
     "http://127.0.0.1:8080/twilio/status",
     {{"AccountSid", "AC" + zeros32},
      {"CallSid", "CA" + zeros32},
      {"CallStatus", "completed"},
      {"CallDuration", "15"},
      {"Timestamp", "Tue, 31 Aug 2010 20:36:44 +0000"}},
     "RDF3vtz4KgUrr1JfAakN1WfZCzg="},
    {"empty",
     "12345",
     "https://example.com/empty",
     {},
     "fk0FZWREU/JkEZLr5UD+kPqqVNY="},
    {"utf8",
     "12345",
     "https://example.com/utf8",
     {{"Body", "h\xC3\xA9llo \xF0\x9F\x91\x8D & <x>"}},
     "pXBTYvUpXjrFkOS83jnoazH/xVA="},
  };
}

std::vector<vector_row> all_rows() {
  auto rows = official_rows();
  for (auto& row : extra_rows()) {
    rows.push_back(std::move(row));
  }
  return rows;
}

class TwilioSignatureVectors : public testing::TestWithParam<vector_row> {};

std::string row_name(const testing::TestParamInfo<vector_row>& info) {
  return info.param.name;
}

} // namespace

TEST_P(TwilioSignatureVectors, SignGivesTheExpectedSignature) {
  const auto& row = GetParam();
  EXPECT_EQ(sign(row.token, row.url, row.params), row.signature);
}

TEST_P(TwilioSignatureVectors, ValidateAcceptsTheSignature) {
  const auto& row = GetParam();
  EXPECT_TRUE(validate(row.token, row.url, row.params, row.signature));
}

TEST_P(TwilioSignatureVectors, ValidateRejectsAnotherToken) {
  const auto& row = GetParam();
  EXPECT_FALSE(validate(row.token + "x", row.url, row.params, row.signature));
}

TEST_P(TwilioSignatureVectors, ValidateRejectsAChangedParameter) {
  auto row = GetParam();
  row.params.emplace_back("Injected", "1");
  EXPECT_FALSE(validate(row.token, row.url, row.params, row.signature));
}

INSTANTIATE_TEST_SUITE_P(TwilioOracle, TwilioSignatureVectors,
                         testing::ValuesIn(all_rows()), row_name);

TEST(TwilioSignature, SigningWithAnotherTokenAndBackGivesEachItsOwn) {
  // Each thread keeps its HMAC keyed with the last token: a change of token
  // must re-key it, and going back must not keep the other key.
  const auto row = official_rows().front();
  const auto other_token = row.token + "other";
  std::string fresh_other;
  std::thread([&] {
    fresh_other = sign(other_token, row.url, row.params);
  }).join();
  EXPECT_EQ(sign(row.token, row.url, row.params), row.signature);
  EXPECT_EQ(sign(other_token, row.url, row.params), fresh_other);
  EXPECT_NE(fresh_other, row.signature);
  EXPECT_EQ(sign(row.token, row.url, row.params), row.signature);
  EXPECT_EQ(sign("", row.url, row.params),
            sign(std::string_view{}, row.url, row.params));
  EXPECT_EQ(sign(row.token, row.url, row.params), row.signature);
}

TEST(TwilioSignature, PayloadSortsAsciiAndOtherTextTheSameWay) {
  // ASCII fields sort by bytes; one non-ASCII value sorts them all by UTF-16
  // code units: the order of the ASCII ones must not change.
  const form_fields ascii{{"To", "+1"}, {"Body", "b"}, {"body", "a"}};
  auto with_accent = ascii;
  with_accent.emplace_back("Zz", "\xC3\xA9");
  EXPECT_EQ(signing_payload("u", ascii), "uBodybTo+1bodya");
  EXPECT_EQ(signing_payload("u", with_accent), "uBodybTo+1Zz\xC3\xA9"
                                               "bodya");
}

TEST(TwilioSignature, PayloadOfRowOneIsExact) {
  EXPECT_EQ(
    signing_payload("https://mycompany.com/myapp.php?foo=1&bar=2",
                    default_params),
    "https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+"
    "14158675309Digits1234From+14158675309To+18005551212");
}

TEST(TwilioSignature, PayloadSortsNamesCaseSensitivelyAndDeduplicatesValues) {
  const form_fields params{
    {"b", "2"}, {"a", "9"}, {"B", "1"}, {"a", "1"}, {"a", "9"}};
  EXPECT_EQ(signing_payload("u", params), "uB1a1a9b2");
}

TEST(TwilioSignature, PayloadSortsLikeJavaScriptUtf16CodeUnits) {
  // U+1F600 is a surrogate pair (0xD83D...) in UTF-16 and so sorts before
  // U+FF61, although its UTF-8 bytes (F0...) sort after (EF...).
  const std::string emoji = "\xF0\x9F\x98\x80";
  const std::string halfwidth = "\xEF\xBD\xA1";
  const form_fields params{{halfwidth, "1"}, {emoji, "2"}};
  EXPECT_EQ(signing_payload("u", params), "u" + emoji + "2" + halfwidth + "1");
}

TEST(TwilioSignature, RawQuoteUrlValidatesWithTheNormalisedSignature) {
  // Row 8 as twilio-node's test passes it: a raw quote in the URL.
  EXPECT_TRUE(validate(
    "12345", "https://mycompany.com/myapp.php?foo=1&bar=2&Body=It's+amazing",
    default_params, "TfZzewPq8wqrGlMfyAud8+/IvJ0="));
  EXPECT_TRUE(validate("s3cr3t",
                       "https://example.com/path?test=param'WithQuote", {},
                       "HkuXLxVQ7zHv9LmGpzlLuGaxhJY="));
}

TEST(TwilioSignature, PortVariantsValidate) {
  // Row 2's signature was made with :443; the request may arrive without it.
  EXPECT_TRUE(validate("12345", "https://mycompany.com/myapp.php?foo=1&bar=2",
                       default_params, "kvajT1Ptam85bY51eRf/AJRuM3w="));
  // Row 1's signature with a non-default port: the port is stripped.
  EXPECT_TRUE(validate("12345",
                       "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
                       default_params, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
  // Row 4 (http, :80) arrives without the port.
  EXPECT_TRUE(validate("12345", "http://mycompany.com/myapp.php?foo=1&bar=2",
                       default_params, "0ZXoZLH/DfblKGATFgpif+LLRf4="));
}

TEST(TwilioSignature, NegativeCasesFromTheOfficialTests) {
  const auto url = "https://mycompany.com/myapp.php?foo=1&bar=2";
  EXPECT_FALSE(validate("12345", url, default_params, "WRONG_SIGNATURE"));
  EXPECT_FALSE(validate("12345", url, default_params, ""));
  EXPECT_FALSE(validate("12345", "https://mycompany.com/myapp.php?foo=1&bar=3",
                        default_params, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
  EXPECT_FALSE(
    validate("12345", url, default_params, "RSOYDt4T1cUTdK1PDd93/VVr8B8"));
}

TEST(TwilioSignature, UrlVariants) {
  EXPECT_EQ(url_variants("https://a.com/p?x=1"),
            (std::vector<std::string>{"https://a.com/p?x=1",
                                      "https://a.com:443/p?x=1"}));
  EXPECT_EQ(url_variants("http://u:p@a.com:8080/p"),
            (std::vector<std::string>{"http://u:p@a.com:8080/p",
                                      "http://u:p@a.com/p"}));
  EXPECT_EQ(url_variants("http://[::1]/p"),
            (std::vector<std::string>{"http://[::1]/p", "http://[::1]:80/p"}));
  EXPECT_EQ(url_variants("https://a.com/p?n=O'h \"x\""),
            (std::vector<std::string>{
              "https://a.com/p?n=O'h \"x\"", "https://a.com:443/p?n=O'h \"x\"",
              "https://a.com/p?n=O%27h%20%22x%22",
              "https://a.com:443/p?n=O%27h%20%22x%22"}));
  EXPECT_EQ(url_variants("not a url"), (std::vector<std::string>{"not a url"}));
  EXPECT_EQ(url_variants("/p?next=http://a:1/"),
            (std::vector<std::string>{"/p?next=http://a:1/"}));
}

// -- JSON body (bodySHA256) --------------------------------------------------

namespace {

const std::string b1_body = R"({"property": "value", "boolean": true})";
const std::string b1_hash
  = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
const std::string b1_url
  = "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=" + b1_hash;
const std::string b1_signature = "a9nBmqA0ju/hNViExpshrM61xv4=";

} // namespace

TEST(TwilioSignatureJson, B1) {
  EXPECT_EQ(sha256_hex(b1_body), b1_hash);
  EXPECT_EQ(sign("12345", b1_url), b1_signature);
  EXPECT_TRUE(validate_json("12345", b1_url, b1_body, b1_signature));
}

TEST(TwilioSignatureJson, B2SignedWithPortValidatesWithout) {
  const std::string hash
    = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
  EXPECT_EQ(sha256_hex("{}"), hash);
  EXPECT_EQ(sign("12345",
                 "https://mycompany.com:443/myapp.php?foo=1&bar=2&bodySHA256="
                   + hash),
            "Ldidvp12m26NI7eqEvxnEpkd9Hc=");
  EXPECT_TRUE(validate_json(
    "12345", "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=" + hash,
    "{}", "Ldidvp12m26NI7eqEvxnEpkd9Hc="));
}

TEST(TwilioSignatureJson, B3) {
  const auto url = "https://mycompany.com/myapp.php?bodySHA256=" + b1_hash;
  EXPECT_EQ(sign("12345", url), "y77kIzt2vzLz71DgmJGsen2scGs=");
  EXPECT_TRUE(
    validate_json("12345", url, b1_body, "y77kIzt2vzLz71DgmJGsen2scGs="));
}

TEST(TwilioSignatureJson, BodyDifferingByOneByteFails) {
  auto body = b1_body;
  body.back() = ']';
  EXPECT_FALSE(validate_json("12345", b1_url, body, b1_signature));
}

TEST(TwilioSignatureJson, TruncatedHashFails) {
  const auto url = b1_url.substr(0, b1_url.size() - 1);
  EXPECT_FALSE(validate_json("12345", url, b1_body, b1_signature));
  EXPECT_FALSE(validate_json("12345", url, b1_body, sign("12345", url)));
}

TEST(TwilioSignatureJson, UrlWithoutBodyHashFails) {
  // Form params signed normally are no JSON-body signature.
  const auto url = "https://mycompany.com/myapp.php?foo=1&bar=2";
  EXPECT_FALSE(
    validate_json("12345", url, b1_body, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
  EXPECT_FALSE(validate_json("12345", url, b1_body, sign("12345", url)));
}

TEST(TwilioSignatureJson, MissingSignatureFails) {
  EXPECT_FALSE(validate_json("12345", b1_url, b1_body, ""));
}

TEST(TwilioSignatureJson, WithBodySha256BuildsTheSignedUrl) {
  EXPECT_EQ(with_body_sha256("https://mycompany.com/myapp.php?foo=1&bar=2",
                             b1_body),
            b1_url);
  EXPECT_EQ(with_body_sha256("https://mycompany.com/myapp.php", b1_body),
            "https://mycompany.com/myapp.php?bodySHA256=" + b1_hash);
  EXPECT_EQ(with_body_sha256("https://mycompany.com/myapp.php?", b1_body),
            "https://mycompany.com/myapp.php?bodySHA256=" + b1_hash);
}

TEST(TwilioSignature, Base64) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("ACxxx:token"), "QUN4eHg6dG9rZW4=");
}
