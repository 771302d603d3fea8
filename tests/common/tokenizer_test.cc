#include "common/tokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tidegate::tokenizer {
namespace {

std::vector<std::string> pieces(std::string_view text) {
  std::vector<Piece> ps;
  split(text, ps);
  std::vector<std::string> out;
  for (auto p : ps) out.emplace_back(text.substr(p.offset, p.length));
  return out;
}

TEST(Tokenizer, SplitsLikeABpeTokenizer) {
  struct Case {
    std::string text;
    std::vector<std::string> want;
  } cases[] = {
      {"Hello world", {"Hello", " world"}},
      {"Hello, world!", {"Hello", ",", " world", "!"}},
      {"internationalization", {"intern", "ationa", "lizati", "on"}},
      {"year 2024: 12345", {"year", " 202", "4", ":", " 123", "45"}},
      {"a\n\nb", {"a", "\n", "\n", "b"}},
      {"x  y", {"x", " ", " y"}},
      {"tab\there", {"tab", "\t", "here"}},
      {"日本", {"日", "本"}},
      {" lead", {" lead"}},
      {"", {}},
  };
  for (const auto& c : cases) EXPECT_EQ(pieces(c.text), c.want) << "text: " << c.text;
}

TEST(Tokenizer, PiecesCoverTheTextExactly) {
  const std::string text = "The quick brown fox, 1234567 times\n\t  jumps — ünïcode!";
  std::string joined;
  for (const auto& p : pieces(text)) joined += p;
  EXPECT_EQ(joined, text);
}

TEST(Tokenizer, CountsAboutOnePointThreeTokensPerEnglishWord) {
  const std::string text =
      "Continuous batching lets an inference engine admit new requests between decoding steps, "
      "so the accelerator stays busy while individual requests finish at different times.";
  const double words = 24;
  const double ratio = static_cast<double>(count(text)) / words;
  EXPECT_GT(ratio, 1.0);
  EXPECT_LT(ratio, 1.6);
}

TEST(Tokenizer, IdsAreStable) {
  std::vector<std::uint32_t> a, b;
  encode("same text here", a);
  encode("same text here", b);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.size(), 3u);
  EXPECT_NE(tokenId(" text"), tokenId("text"));
}

}  // namespace
}  // namespace tidegate::tokenizer
