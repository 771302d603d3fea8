#include "engine/openai_api.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "common/tokenizer.h"

namespace tidegate::engine {
namespace {

namespace bj = boost::json;

TEST(ParseGeneration, RejectsBadInputWithTheField) {
  struct Case {
    Endpoint ep;
    const char* body;
    const char* param;
    const char* message_part;
  } cases[] = {
      {Endpoint::kChat, "{not json", "", "malformed JSON"},
      {Endpoint::kChat, "[1,2]", "", "must be a JSON object"},
      {Endpoint::kChat, R"({"messages":[{"role":"user","content":"hi"}]})", "model",
       "missing required field: model"},
      {Endpoint::kChat, R"({"model":"m"})", "messages", "missing required field: messages"},
      {Endpoint::kChat, R"({"model":"m","messages":"hi"})", "messages",
       "expected array, got string"},
      {Endpoint::kChat, R"({"model":"m","messages":[]})", "messages", "must not be empty"},
      {Endpoint::kChat, R"({"model":"m","messages":[{"content":"x"}]})", "messages[0].role",
       "role"},
      {Endpoint::kChat, R"({"model":7,"messages":[{"role":"user","content":"x"}]})", "model",
       "expected string, got integer"},
      {Endpoint::kChat,
       R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":"5"})", "max_tokens",
       "expected integer"},
      {Endpoint::kChat,
       R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0})", "max_tokens",
       "at least 1"},
      {Endpoint::kChat, R"({"model":"m","messages":[{"role":"user","content":"x"}],"n":2})", "n",
       "only n=1"},
      {Endpoint::kChat,
       R"({"model":"m","messages":[{"role":"user","content":"x"}],"temperature":3})", "temperature",
       "between"},
      {Endpoint::kChat,
       R"({"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"hot"})",
       "temperature", "expected number"},
      {Endpoint::kChat,
       R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"})", "stream",
       "expected boolean"},
      {Endpoint::kChat, R"({"model":"m","messages":[{"role":"user","content":"x"}],"stop":5})",
       "stop", "expected string or array"},
      {Endpoint::kChat,
       R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}})",
       "stream_options", "only allowed when stream"},
      {Endpoint::kChat,
       R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]})",
       "messages[0].content", "only parts of type"},
      {Endpoint::kCompletion, R"({"model":"m"})", "prompt", "missing required field: prompt"},
      {Endpoint::kCompletion, R"({"model":"m","prompt":""})", "prompt", "must not be empty"},
      {Endpoint::kCompletion, R"({"model":"m","prompt":["a","b"]})", "prompt", "batched prompts"},
      {Endpoint::kCompletion, R"({"model":"m","prompt":{"x":1}})", "prompt",
       "expected string or array"},
  };
  for (const auto& c : cases) {
    auto r = parseGeneration(c.ep, c.body);
    ASSERT_TRUE(std::holds_alternative<ApiError>(r)) << c.body;
    const auto& e = std::get<ApiError>(r);
    EXPECT_EQ(e.status, http::Status::bad_request) << c.body;
    EXPECT_EQ(e.param, c.param) << c.body;
    EXPECT_NE(e.message.find(c.message_part), std::string::npos) << c.body << " -> " << e.message;
  }
}

TEST(ParseGeneration, ReadsTheSeedRequest) {
  const char* body = R"({"model": "qwen", "messages": [{"role": "user", "content": "Hello"}],
    "max_tokens": 512, "temperature": 0.7, "top_p": 0.9, "seed": 10,
    "stop": ["<|endoftext|>", "<|im_end|>", "<|im_start|>"]})";
  auto r = parseGeneration(Endpoint::kChat, body);
  ASSERT_TRUE(std::holds_alternative<GenParams>(r));
  const auto& p = std::get<GenParams>(r);
  EXPECT_EQ(p.model, "qwen");
  EXPECT_EQ(p.max_tokens, 512);
  EXPECT_EQ(p.seed, 10u);
  EXPECT_EQ(p.stop.size(), 3u);
  EXPECT_FALSE(p.stream);
  // One message of one token, plus the template's role markers and reply priming.
  EXPECT_EQ(p.prompt_ids.size(), 1u + kTokensPerMessage + kReplyPrimingTokens);
  EXPECT_EQ(p.echo_source, "Hello");
}

TEST(ParseGeneration, CompletionPromptForms) {
  auto s =
      parseGeneration(Endpoint::kCompletion,
                      R"({"model":"m","prompt":"Write as if you were a critic: San Francisco"})");
  ASSERT_TRUE(std::holds_alternative<GenParams>(s));
  EXPECT_EQ(std::get<GenParams>(s).prompt_ids.size(),
            tokenizer::count("Write as if you were a critic: San Francisco"));
  auto ids = parseGeneration(
      Endpoint::kCompletion,
      R"({"model":"m","prompt":[1,2,3],"stream":true,"stream_options":{"include_usage":true}})");
  ASSERT_TRUE(std::holds_alternative<GenParams>(ids));
  EXPECT_EQ(std::get<GenParams>(ids).prompt_ids, (std::vector<std::uint32_t>{1, 2, 3}));
  EXPECT_TRUE(std::get<GenParams>(ids).include_usage);
}

TEST(ResponseWriter, ChatChunksAreValidJsonWithVllmShape) {
  ResponseWriter w(Endpoint::kChat, "chatcmpl-1", 1700000000, "tweet-summary-1", true);
  auto strip = [](std::string s) {
    EXPECT_TRUE(s.starts_with("data: "));
    EXPECT_TRUE(s.ends_with("\n\n"));
    return bj::parse(s.substr(6, s.size() - 8)).as_object();
  };
  auto role = strip(w.roleChunk());
  EXPECT_EQ(role.at("object"), "chat.completion.chunk");
  EXPECT_EQ(role.at("model"), "tweet-summary-1");
  EXPECT_EQ(role.at("choices").as_array()[0].at("delta").at("role"), "assistant");
  EXPECT_TRUE(role.at("usage").is_null());
  std::string c;
  w.appendContentChunk(c, "say \"hi\"\n", "length", "");
  auto last = strip(c);
  const auto& choice = last.at("choices").as_array()[0].as_object();
  EXPECT_EQ(choice.at("delta").at("content"), "say \"hi\"\n");
  EXPECT_EQ(choice.at("finish_reason"), "length");
  auto usage = strip(w.usageChunk(7, 3));
  EXPECT_TRUE(usage.at("choices").as_array().empty());
  EXPECT_EQ(usage.at("usage").at("total_tokens"), 10);
}

TEST(ResponseWriter, CompletionBodyHasTextAndUsage) {
  ResponseWriter w(Endpoint::kCompletion, "cmpl-1", 1, "m", false);
  auto body = bj::parse(w.fullBody("abc", "stop", "END", 4, 2)).as_object();
  EXPECT_EQ(body.at("object"), "text_completion");
  const auto& choice = body.at("choices").as_array()[0].as_object();
  EXPECT_EQ(choice.at("text"), "abc");
  EXPECT_EQ(choice.at("stop_reason"), "END");
  EXPECT_EQ(body.at("usage").at("prompt_tokens"), 4);
  EXPECT_EQ(body.at("usage").at("completion_tokens"), 2);
  std::string c;
  w.appendContentChunk(c, "x", "", "");
  EXPECT_EQ(c.find("\"usage\""), std::string::npos);  // no usage fields unless asked
  EXPECT_TRUE(w.roleChunk().empty());
}

TEST(ParseEmbeddings, AcceptsOpenAiInputForms) {
  auto one = parseEmbeddings(R"({"model":"m","input":"hello world"})");
  ASSERT_TRUE(std::holds_alternative<EmbeddingParams>(one));
  EXPECT_EQ(std::get<EmbeddingParams>(one).tokens, std::vector<std::size_t>{2});
  auto many = parseEmbeddings(R"({"model":"m","input":[[1,2,3],[4]]})");
  ASSERT_TRUE(std::holds_alternative<EmbeddingParams>(many));
  EXPECT_EQ(std::get<EmbeddingParams>(many).tokens, (std::vector<std::size_t>{3, 1}));
  EXPECT_TRUE(std::holds_alternative<ApiError>(parseEmbeddings(R"({"model":"m"})")));
  EXPECT_TRUE(std::holds_alternative<ApiError>(parseEmbeddings(R"({"model":"m","input":[true]})")));
}

}  // namespace
}  // namespace tidegate::engine
