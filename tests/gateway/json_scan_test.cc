// JsonScanner's string scan, which skips plain bytes sixteen at a time: a quote, a backslash or
// a control byte must stop it at whatever offset it sits, near a 16-byte boundary or not, and
// bytes of UTF-8 (>= 0x80) are plain.
#include "gateway/json_scan.h"

#include <gtest/gtest.h>

#include <string>

namespace tidegate::gateway {
namespace {

TEST(JsonScanner, StringEndsAtItsQuoteWhereverItIs) {
  for (std::size_t len = 0; len < 70; ++len) {
    const std::string text(len, 'a');
    const std::string doc = "\"" + text + "\",1";
    JsonScanner s(doc);
    std::string out;
    ASSERT_TRUE(s.string(&out)) << len;
    EXPECT_EQ(out, text);
    EXPECT_EQ(s.pos(), len + 2);
  }
}

TEST(JsonScanner, ControlBytesAnywhereInAStringAreMalformed) {
  for (std::size_t at = 0; at < 40; ++at) {
    for (const char bad : {'\n', '\t', '\x01', '\x1f'}) {
      std::string doc = "\"" + std::string(40, 'x') + "\"";
      doc[1 + at] = bad;
      JsonScanner s(doc);
      EXPECT_FALSE(s.string(nullptr)) << "at " << at << " byte " << int(bad);
    }
  }
}

TEST(JsonScanner, EscapesAnywhereAreDecodedAndUtf8IsPlain) {
  for (std::size_t at = 0; at < 40; ++at) {
    std::string raw(40, 'y');
    raw.replace(at, 1, "\\\"");  // an escaped quote must not end the string
    const std::string doc = "\"" + raw + "\"";
    JsonScanner s(doc);
    std::string out;
    ASSERT_TRUE(s.string(&out)) << at;
    std::string want(40, 'y');
    want[at] = '"';
    EXPECT_EQ(out, want);
    EXPECT_TRUE(s.atEnd());
  }
  const std::string utf8 =
      "\"h\xc3\xa9llo w\xc3\xb6rld, \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e and more\"";
  JsonScanner s(utf8);
  std::string out;
  ASSERT_TRUE(s.string(&out));
  EXPECT_EQ(out, utf8.substr(1, utf8.size() - 2));
}

TEST(JsonScanner, UnterminatedStringsAndBadEscapesAreMalformed) {
  const std::string docs[] = {"\"abc",      "\"" + std::string(33, 'z'),
                              "\"abc\\",    "\"a\\x\"",
                              "\"a\\u12\"", "\"" + std::string(20, 'z') + "\\q\""};
  for (const auto& doc : docs) {
    JsonScanner s(doc);
    EXPECT_FALSE(s.string(nullptr)) << doc;
  }
}

TEST(JsonScanner, LiteralsAreWholeTokens) {
  struct Case {
    std::string doc;
    bool ok;
  } cases[] = {{"true", true}, {"false", true},  {"null", true}, {"-12.5e+3", true},
               {"0", true},    {"truex", false}, {"nul", false}, {"01", false},
               {"1.", false},  {"+1", false},    {"1e", false},  {"TRUE", false}};
  for (const auto& c : cases) {
    JsonScanner s(c.doc);
    EXPECT_EQ(s.value() && s.atEnd(), c.ok) << c.doc;
  }
}

}  // namespace
}  // namespace tidegate::gateway
