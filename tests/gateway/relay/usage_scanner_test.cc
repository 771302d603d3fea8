#include "gateway/relay/usage_scanner.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace tidegate::gateway::relay {
namespace {

TEST(UsageScanner, ReadsWhatTheRelayNeeds) {
  struct Case {
    std::string json;
    bool object, error, choices_empty, role_only, usage_object;
    long prompt, completion;
  } cases[] = {
      // vLLM's chat role chunk, a content chunk, the usage-only final chunk.
      {R"({"id":"x","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})", true,
       false, false, true, false, -1, -1},
      {R"({"id":"x","choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null})", true, false,
       false, false, false, -1, -1},
      {R"({"id":"x","choices":[],"usage":{"prompt_tokens":16,"completion_tokens":8}})", true, false,
       true, false, true, 16, 8},
      // llama.cpp: role chunk with content null, timings after usage, cached-token details.
      {R"({"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}],"model":"tiny"})",
       true, false, false, true, false, -1, -1},
      {R"({"choices":[],"usage":{"completion_tokens":8,"prompt_tokens":16,"total_tokens":24,"prompt_tokens_details":{"cached_tokens":0}},"timings":{"cache_n":0}})",
       true, false, true, false, true, 16, 8},
      // A non-streamed body.
      {R"( { "choices" : [ {"text":" a"} ] , "usage" : { "prompt_tokens" : 2 , "completion_tokens" : 4 } } )",
       true, false, false, false, true, 2, 4},
      // Errors and not-objects.
      {R"({"error":{"message":"boom"}})", true, true, false, false, false, -1, -1},
      {"<html>502 Bad Gateway</html>", false, false, false, false, false, -1, -1},
      {R"({"choices":[]} trailing)", false, false, true, false, false, -1, -1},
      {R"([1,2])", false, false, false, false, false, -1, -1},
      {R"({"usage":{"prompt_tokens":-3,"completion_tokens":1.5}})", true, false, false, false, true,
       -1, -1},
      {"", false, false, false, false, false, -1, -1},
  };
  for (const auto& c : cases) {
    const auto s = scanObject(c.json);
    EXPECT_EQ(s.object, c.object) << c.json;
    EXPECT_EQ(s.error, c.error) << c.json;
    EXPECT_EQ(s.choices_empty, c.choices_empty) << c.json;
    EXPECT_EQ(s.role_only, c.role_only) << c.json;
    EXPECT_EQ(s.usage_object, c.usage_object) << c.json;
    EXPECT_EQ(s.usage.prompt, c.prompt) << c.json;
    EXPECT_EQ(s.usage.completion, c.completion) << c.json;
  }
}

TEST(UsageScanner, GivesEachClientTheStreamItAskedFor) {
  const std::string chunk = R"({"a":1,"usage":{"prompt_tokens":3,"completion_tokens":1},"b":2})";
  const std::string first = R"({"usage":{"prompt_tokens":3},"b":2})";
  const std::string last = R"({"a":1, "usage" : null})";
  const std::string final_usage = R"({"choices":[],"usage":{"prompt_tokens":3}})";
  struct Case {
    std::string json;
    ClientUsage client;
    UsageEdit edit;
    std::string want;  // "" for kDrop
  } cases[] = {
      {chunk, {false, false}, UsageEdit::kDeleteUsage, R"({"a":1,"b":2})"},
      {chunk, {true, false}, UsageEdit::kNullUsage, R"({"a":1,"usage":null,"b":2})"},
      {chunk, {true, true}, UsageEdit::kPass, chunk},
      {first, {false, false}, UsageEdit::kDeleteUsage, R"({"b":2})"},
      {last, {false, false}, UsageEdit::kDeleteUsage, R"({"a":1})"},
      {last, {true, false}, UsageEdit::kPass, last},
      {final_usage, {false, false}, UsageEdit::kDrop, ""},
      {final_usage, {true, false}, UsageEdit::kPass, final_usage},
      {R"({"a":1})", {false, false}, UsageEdit::kPass, R"({"a":1})"},
  };
  for (const auto& c : cases) {
    const auto s = scanObject(c.json);
    const auto e = usageEdit(s, c.client);
    EXPECT_EQ(e, c.edit) << c.json;
    if (e == UsageEdit::kDrop) continue;
    const auto out = applyUsageEdit(c.json, s, e);
    EXPECT_EQ(out, c.want) << c.json;
    boost::system::error_code ec;
    boost::json::parse(out, ec);
    EXPECT_FALSE(ec) << out;
  }
}

// Found by fuzz/usage_scanner_fuzz.cc, which holds the scanner to Boost.JSON: a member given
// twice counts as its last value (as Boost.JSON, Python's json and nlohmann::json read it), and
// an escape JSON does not have makes the text no object.
TEST(UsageScanner, AMemberGivenTwiceCountsAsItsLastValue) {
  const auto choices = scanObject(R"({"q":1,"choices":[],"usage":1,"choices":2})");
  EXPECT_TRUE(choices.object);
  EXPECT_FALSE(choices.choices_empty);
  const auto usage = scanObject(R"({"usage":{"prompt_tokens":5},"usage":null})");
  EXPECT_TRUE(usage.object);
  EXPECT_FALSE(usage.usage_object);
  EXPECT_EQ(usage.usage.prompt, -1);
  EXPECT_EQ(usage.usage_value.end - usage.usage_value.begin, 4u);  // the last one: null
  const auto again = scanObject(R"({"usage":null,"usage":{"prompt_tokens":5}})");
  EXPECT_TRUE(again.usage_object);
  EXPECT_EQ(again.usage.prompt, 5);
}

TEST(UsageScanner, EscapesFollowTheJsonGrammar) {
  EXPECT_FALSE(scanObject("{  \"choices\xff\\\xff\":1 }").object);
  EXPECT_FALSE(scanObject(R"({"usage":{"prompt_tokens":1},"x":"\q"})").object);
  EXPECT_FALSE(scanObject(R"({"x":"\u12"})").object);
  EXPECT_TRUE(scanObject(R"({"x":"\u00e9\n\"\/\\","y":"\ud800"})").object);
}

}  // namespace
}  // namespace tidegate::gateway::relay
