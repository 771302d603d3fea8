#include "engine/text_gen.h"

#include <gtest/gtest.h>

#include "common/tokenizer.h"

namespace tidegate::engine {
namespace {

std::string join(const GeneratedText& g) {
  std::string s;
  for (const auto& p : g.pieces) s += p;
  return s;
}

TEST(TextGen, RandomIsSeededAndRunsToMaxTokens) {
  GenerateSpec spec{.max_tokens = 40, .seed = 10};
  auto a = generateText(spec), b = generateText(spec);
  EXPECT_EQ(join(a), join(b));
  EXPECT_EQ(a.pieces.size(), 40u);
  EXPECT_EQ(a.finish_reason, "length");
  // Each piece is one token, so re-tokenising the text gives the same count.
  EXPECT_EQ(tokenizer::count(join(a)), 40u);
  spec.seed = 11;
  EXPECT_NE(join(generateText(spec)), join(a));
}

TEST(TextGen, EchoRepeatsThePromptAndEnds) {
  GenerateSpec spec{
      .mode = TextMode::kEcho, .echo_source = "Hello there, world", .max_tokens = 100};
  auto g = generateText(spec);
  EXPECT_EQ(join(g), "Hello there, world");
  EXPECT_EQ(g.pieces.size(), 5u);  // 4 pieces + EOS
  EXPECT_EQ(g.finish_reason, "stop");
  spec.max_tokens = 2;
  g = generateText(spec);
  EXPECT_EQ(join(g), "Hello there");
  EXPECT_EQ(g.finish_reason, "length");
}

TEST(TextGen, StopStringsCutTheText) {
  std::vector<std::string> stop = {"STOP", "<|im_end|>"};
  GenerateSpec spec{.mode = TextMode::kEcho,
                    .echo_source = "one two STOP three",
                    .max_tokens = 100,
                    .stop = &stop};
  auto g = generateText(spec);
  EXPECT_EQ(join(g), "one two ");
  EXPECT_EQ(g.finish_reason, "stop");
  EXPECT_EQ(g.stop_reason, "STOP");
  EXPECT_EQ(g.pieces.size(), 3u);  // the token holding the stop string counts
  // A stop string split across tokens is found too.
  std::vector<std::string> split = {"<|im_end|>"};
  spec.stop = &split;
  spec.echo_source = "ok<|im_end|>more";
  g = generateText(spec);
  EXPECT_EQ(join(g), "ok");
  EXPECT_EQ(g.stop_reason, "<|im_end|>");
}

TEST(TextGen, EosMeanShortensRandomOutputUnlessIgnored) {
  double total = 0;
  const int n = 400;
  for (int i = 0; i < n; ++i) {
    auto g =
        generateText({.max_tokens = 1000, .seed = static_cast<std::uint64_t>(i), .eos_mean = 20});
    total += static_cast<double>(g.pieces.size());
    ASSERT_EQ(g.finish_reason, "stop");
  }
  EXPECT_NEAR(total / n, 20, 3);
  auto full = generateText({.max_tokens = 50, .seed = 1, .eos_mean = 5, .ignore_eos = true});
  EXPECT_EQ(full.pieces.size(), 50u);
  EXPECT_EQ(full.finish_reason, "length");
}

}  // namespace
}  // namespace tidegate::engine
