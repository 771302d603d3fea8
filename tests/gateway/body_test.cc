#include "gateway/body.h"
#include "gateway/json_scan.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace tidegate::gateway {
namespace {

TEST(Body, ScansTopLevelFieldsOnly) {
  const std::string body =
      R"({"messages":[{"role":"user","content":"say \"model\": x"}],"extra":{"model":"inner"},)"
      R"("model":"lora-request","stream":true,"max_tokens":5})";
  RequestFields f;
  ASSERT_FALSE(scanRequest(body, f));
  EXPECT_EQ(f.model, "lora-request");
  EXPECT_TRUE(f.stream);
  EXPECT_FALSE(f.include_usage);
  EXPECT_EQ(f.prompt_text, "say \"model\": x\n");
  EXPECT_EQ(body.substr(f.model_span.begin, f.model_span.end - f.model_span.begin),
            "\"lora-request\"");
}

// The prompt text for prefix affinity and token estimates: a `prompt` string, or each message's
// content (a string, or the text of its text parts) with a newline; other values are skipped.
TEST(Body, CollectsPromptTextWithoutBuildingADocument) {
  struct Case {
    const char* body;
    const char* text;
  } cases[] = {
      {R"({"model":"m","prompt":"a \u00e9 \"q\""})", "a \xC3\xA9 \"q\""},
      {R"({"model":"m","prompt":["x","y"]})", ""},
      {R"({"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"u"}]})",
       "s\nu\n"},
      {R"({"model":"m","messages":[{"content":[{"type":"text","text":"a"},{"type":"image_url",)"
       R"("image_url":{"url":"x"}},{"text":"b"},{"text":5},"str"]}]})",
       "ab\n"},
      {R"({"model":"m","messages":[1,"two",null,{"content":null},{"content":{"text":"no"}}]})", ""},
      {R"({"model":"m","messages":{"content":"not an array"}})", ""},
      {R"( { "model" : "m" , "messages" : [ { "content" : [ { "text" : "t" } ] } ] } )", "t\n"},
      // A member given twice counts as its last value; of prompt and messages, the later one.
      {R"({"model":"m","messages":[{"content":"a","content":"b"},{"content":[{"text":"c","text":1}]}]})",
       "b\n\n"},
      // A chat request's text is its messages, whatever else the body holds.
      {R"({"model":"m","messages":[{"content":"a"}],"prompt":"p"})", "a\n"},
      {R"({"model":"m","prompt":"p","messages":[{"content":"a"}]})", "a\n"},
      {R"({"model":"m","messages":[{"content":"a"}],"prompt":null})", "a\n"},
      {R"({"model":"m","prompt":"p","messages":null})", "p"},
      {R"({"model":"m","prompt":"p","prompt":null})", ""},
  };
  for (const auto& c : cases) {
    RequestFields f;
    ASSERT_FALSE(scanRequest(c.body, f)) << c.body;
    EXPECT_EQ(f.prompt_text, c.text) << c.body;
  }
  // The walk validates what it reads as strictly as it skips.
  for (const char* bad :
       {R"({"model":"m","messages":[{"content":"a"},]})",
        R"({"model":"m","messages":[{"content":[{"text":"a"}]})",
        R"({"model":"m","messages":[{"content":"\q"}]})",
        R"({"model":"m","messages":[{"content" "a"}]})", R"({"model":"m","prompt":"a)",
        R"({"model":"m","stream_options":{"include_usage":tru}})"}) {
    RequestFields f;
    const auto e = scanRequest(bad, f);
    ASSERT_TRUE(e) << bad;
    EXPECT_NE(e->message.find("malformed"), std::string::npos) << bad;
  }
  // Nesting is bounded inside the walk as in a skipped value.
  std::string deep = R"({"model":"m","messages":[{"content":[)";
  for (int i = 0; i < 100; ++i) deep += '[';
  for (int i = 0; i < 100; ++i) deep += ']';
  deep += "]}]}";
  RequestFields f;
  ASSERT_TRUE(scanRequest(deep, f));
}

TEST(Body, ReadsStreamOptionsFlagsOnlyWhenBoolean) {
  RequestFields f;
  ASSERT_FALSE(scanRequest(
      R"({"model":"m","stream_options":{ "include_usage" : true ,"x":{"include_usage":false},)"
      R"("continuous_usage_stats":"true"}})",
      f));
  EXPECT_TRUE(f.include_usage);
  EXPECT_FALSE(f.continuous_usage);
  // Given twice, the last value counts, even when it is not a boolean (as the engine reads it).
  RequestFields twice;
  ASSERT_FALSE(scanRequest(
      R"({"model":"m","stream_options":{"include_usage":true,"include_usage":null}})", twice));
  EXPECT_FALSE(twice.include_usage);
  RequestFields g;
  ASSERT_FALSE(scanRequest(R"({"model":"m","stream_options":[true]})", g));
  EXPECT_FALSE(g.include_usage);
  EXPECT_TRUE(g.stream_options_span.found());
}

TEST(Body, RejectsBadBodiesWithTheField) {
  struct Case {
    const char* body;
    const char* message;
    const char* param;
  } cases[] = {
      {"{oops", "malformed JSON", ""},
      {"[1]", "must be a JSON object", ""},
      {R"({"prompt":"x"})", "missing required field: model", "model"},
      {R"({"model":5})", "model: expected a string", "model"},
      {R"({"model":"m","stream":"yes"})", "stream: expected a boolean", "stream"},
      {R"({"model":"m"} trailing)", "trailing data", ""},
      {R"({"model":"m","x":[1,2,}})", "malformed JSON", ""},
      {R"({"model":"m","x":tru})", "malformed JSON", ""},
  };
  for (const auto& c : cases) {
    RequestFields f;
    auto e = scanRequest(c.body, f);
    ASSERT_TRUE(e) << c.body;
    EXPECT_NE(e->message.find(c.message), std::string::npos) << c.body << " -> " << e->message;
    EXPECT_EQ(e->param, c.param) << c.body;
  }
}

TEST(Body, RewritesModelAndForcesUsageByteExactly) {
  const std::string body = R"({"model": "lora-request", "prompt": "hi", "stream": true})";
  RequestFields f;
  ASSERT_FALSE(scanRequest(body, f));
  const auto out = rewriteBody(body, f, "tweet-summary-1", true);
  EXPECT_EQ(
      out,
      R"({"model": "tweet-summary-1", "prompt": "hi", "stream": true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}})");
  // Any other stream_options is replaced; one asking for both is left alone.
  const std::string off = R"({"model":"m","stream":true,"stream_options":{"include_usage":true}})";
  RequestFields g;
  ASSERT_FALSE(scanRequest(off, g));
  EXPECT_TRUE(g.include_usage);
  EXPECT_FALSE(g.continuous_usage);
  EXPECT_EQ(
      rewriteBody(off, g, "", true),
      R"({"model":"m","stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}})");
  const std::string on =
      R"({"model":"m","stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}})";
  RequestFields h;
  ASSERT_FALSE(scanRequest(on, h));
  EXPECT_TRUE(h.continuous_usage);
  EXPECT_EQ(rewriteBody(on, h, "m", true), on);
  // Non-streaming bodies get no stream_options.
  const std::string plain = R"({"model":"m","prompt":"x"})";
  RequestFields p;
  ASSERT_FALSE(scanRequest(plain, p));
  EXPECT_EQ(rewriteBody(plain, p, "", true), plain);
  EXPECT_TRUE(boost::json::parse(out).is_object());
}

TEST(Body, ReadsMaxTokens) {
  RequestFields f;
  ASSERT_FALSE(scanRequest(R"({"model":"m","max_tokens":128})", f));
  EXPECT_EQ(f.max_tokens, 128);
  RequestFields g;
  ASSERT_FALSE(scanRequest(R"({"model":"m","max_completion_tokens":7})", g));
  EXPECT_EQ(g.max_tokens, 7);
  RequestFields h;
  ASSERT_FALSE(scanRequest(R"({"model":"m"})", h));
  EXPECT_EQ(h.max_tokens, -1);
  RequestFields bad;
  const auto e = scanRequest(R"({"model":"m","max_tokens":"many"})", bad);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param, "max_tokens");
}

// Two `model` members: the gateway would route on one and an engine might run the other (most
// JSON readers take the last, some the first; seen while writing fuzz/request_body_fuzz.cc,
// which holds the scanner to Boost.JSON). Refused, like the other members the gateway reads.
TEST(Body, MembersTheGatewayReadsAreGivenOnce) {
  struct Case {
    const char* body;
    const char* param;
  } cases[] = {
      {R"({"model":"a","model":"b"})", "model"},
      {R"({"model":"a","mod\u0065l":"b"})", "model"},  // an escaped name is the same name
      {R"({"model":"m","stream":true,"stream":false})", "stream"},
      {R"({"model":"m","stream_options":{"include_usage":true},"stream_options":null})",
       "stream_options"},
      {R"({"model":"m","max_tokens":5,"max_tokens":null})", "max_tokens"},
  };
  for (const auto& c : cases) {
    RequestFields f;
    const auto e = scanRequest(c.body, f);
    ASSERT_TRUE(e) << c.body;
    EXPECT_EQ(e->param, c.param);
    EXPECT_EQ(e->message, std::string(c.param) + ": given more than once");
  }
  // max_tokens and max_completion_tokens are two members: the later one counts.
  RequestFields both;
  ASSERT_FALSE(scanRequest(R"({"model":"m","max_tokens":5,"max_completion_tokens":7})", both));
  EXPECT_EQ(both.max_tokens, 7);
}

}  // namespace
}  // namespace tidegate::gateway

namespace tidegate::gateway {
namespace {

// Found by fuzz/usage_scanner_fuzz.cc: escapes were skipped unchecked, so a body with `\q` in
// a string passed as valid JSON.
TEST(JsonScanner, EscapesFollowTheJsonGrammar) {
  for (const char* ok : {R"("\"\\\/\b\f\n\r\t")", R"("\u00e9\uD83D\uDE00")", R"("\ud800")"}) {
    JsonScanner s(ok);
    EXPECT_TRUE(s.value() && s.atEnd()) << ok;
  }
  for (const char* bad :
       {R"("\q")", R"("\u12")", R"("\u12G4")", R"("\x41")", "\"\\", "\"\\\xff\""}) {
    JsonScanner s(bad);
    EXPECT_FALSE(s.value()) << bad;
  }
  RequestFields f;
  const auto e = scanRequest(R"({"model":"m","x":"\q"})", f);
  ASSERT_TRUE(e);
  EXPECT_NE(e->message.find("malformed JSON"), std::string::npos);
}

TEST(JsonScanner, NumbersFollowTheJsonGrammar) {
  for (const char* ok : {"0", "-0", "7", "-12", "3.25", "1e5", "1E+5", "2.5e-3", "-0.0"})
    EXPECT_TRUE(JsonScanner::isNumber(ok)) << ok;
  for (const char* bad :
       {"", "-", "01", "1.", ".5", "1e", "1e+", "+1", "0x10", "1.2.3", "NaN", "Infinity", "1-2"})
    EXPECT_FALSE(JsonScanner::isNumber(bad)) << bad;
}

}  // namespace
}  // namespace tidegate::gateway
