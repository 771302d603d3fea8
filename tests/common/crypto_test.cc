#include "common/crypto.h"

#include <gtest/gtest.h>

#include "common/duration.h"
#include "common/url.h"

namespace tidegate {
namespace {

TEST(Crypto, Sha256MatchesTheStandardVectors) {
  EXPECT_EQ(crypto::sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(crypto::sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(crypto::sha1Hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
}

TEST(Crypto, HexRoundTripsAndRejectsGarbage) {
  const std::string raw = crypto::sha256("sk-demo-free");
  EXPECT_EQ(crypto::fromHex(crypto::toHex(raw)), raw);
  EXPECT_EQ(crypto::fromHex("zz"), "");
  EXPECT_EQ(crypto::fromHex("abc"), "");
  EXPECT_EQ(crypto::randomHex(16).size(), 32u);
  EXPECT_NE(crypto::randomHex(16), crypto::randomHex(16));
}

TEST(Crypto, Base64RoundTripsRfc4648VectorsAndRejectsGarbage) {
  // RFC 4648 §10.
  const std::vector<std::pair<std::string, std::string>> vectors = {{"", ""},
                                                                    {"Zg==", "f"},
                                                                    {"Zm8=", "fo"},
                                                                    {"Zm9v", "foo"},
                                                                    {"Zm9vYg==", "foob"},
                                                                    {"Zm9vYmE=", "fooba"},
                                                                    {"Zm9vYmFy", "foobar"}};
  for (const auto& [in, out] : vectors) {
    auto got = crypto::base64Decode(in);
    ASSERT_TRUE(got) << in;
    EXPECT_EQ(*got, out) << in;
    EXPECT_EQ(crypto::base64Encode(out), in);
  }
  EXPECT_EQ(*crypto::base64Decode("Zm9v\nYmFy\n"), "foobar");  // PEM-style line breaks
  for (const char* bad : {"Zm9", "Zm=v", "Z===", "Zm9v!A==", "=Zm9"})
    EXPECT_FALSE(crypto::base64Decode(bad)) << bad;
}

TEST(Crypto, ConstantTimeEqualComparesWholeValues) {
  EXPECT_TRUE(crypto::constantTimeEqual("abc", "abc"));
  EXPECT_FALSE(crypto::constantTimeEqual("abc", "abd"));
  EXPECT_FALSE(crypto::constantTimeEqual("abc", "abcd"));
}

TEST(Timestamp, ParsesRfc3339AndFormatsBack) {
  auto t = parseTimestamp("2027-01-01T00:00:00Z");
  ASSERT_TRUE(t.ok());
  EXPECT_DOUBLE_EQ(*t, 1798761600);
  EXPECT_DOUBLE_EQ(*parseTimestamp("2027-01-01T01:00:00+01:00"), 1798761600);
  EXPECT_DOUBLE_EQ(*parseTimestamp("2027-01-01"), 1798761600);
  EXPECT_EQ(formatTimestamp(1798761600), "2027-01-01T00:00:00Z");
  EXPECT_FALSE(parseTimestamp("tomorrow").ok());
  EXPECT_FALSE(parseTimestamp("2027-13-01T00:00:00Z").ok());
  EXPECT_FALSE(parseTimestamp("2027-01-01T00:00:00").ok());  // no zone: ambiguous
}

TEST(Url, QueryParamsAreDecoded) {
  EXPECT_EQ(queryParam("from=2027-01-01T00%3A00%3A00Z&group_by=model", "from"),
            "2027-01-01T00:00:00Z");
  EXPECT_EQ(queryParam("from=1&group_by=model", "group_by"), "model");
  EXPECT_EQ(queryParam("from=1", "to"), "");
  EXPECT_EQ(urlDecode("a+b%20c"), "a b c");
}

}  // namespace
}  // namespace tidegate
