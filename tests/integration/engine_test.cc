// Integration tests of `tidegate engine`: a real child process on 127.0.0.1, port 0, spoken to
// over real sockets.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <future>

#include <thread>

#include "common/sse.h"
#include "common/tokenizer.h"
#include "support/process.h"

namespace tidegate::testing {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;

// Zero simulated latency: tests are about protocol and accounting, not speed.
const std::vector<std::string> kFast = {"--time-scale", "inf", "--served-model-name", "m"};

std::string chatBody(const std::string& model, const std::string& content, int max_tokens,
                     const std::string& extra = "") {
  return R"({"model":")" + model + R"(","messages":[{"role":"user","content":")" + content +
         R"("}],"max_tokens":)" + std::to_string(max_tokens) + extra + "}";
}

// `n` words, each one token.
std::string words(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += " w";
  return s;
}

struct Streamed {
  http::Response response;
  std::vector<std::string> events;
};

Streamed stream(const Engine& e, const std::string& path, const std::string& body) {
  Streamed s;
  SseParser parser;
  s.response = e.postStream(path, body, [&](std::string_view d) {
    EXPECT_TRUE(parser.feed(d, s.events));
    return true;
  });
  return s;
}

TEST(Engine, ListsModelsAndAdapters) {
  Engine e({"--time-scale", "inf", "--model", "/mnt/models/Qwen", "--served-model-name", "qwen",
            "--lora-modules", "sql-lora=/loras/sql", "--lora-modules", "tweet-summary=/loras/tw"});
  auto r = e.get("/v1/models");
  ASSERT_EQ(r.status, 200u);
  auto data = bj::parse(r.body).at("data").as_array();
  ASSERT_EQ(data.size(), 3u);
  EXPECT_EQ(data[0].at("id"), "qwen");
  EXPECT_EQ(data[0].at("root"), "/mnt/models/Qwen");
  EXPECT_TRUE(data[0].at("parent").is_null());
  EXPECT_EQ(data[1].at("id"), "sql-lora");
  EXPECT_EQ(data[1].at("parent"), "qwen");
  EXPECT_EQ(data[1].at("root"), "/loras/sql");
  for (const auto& card : data) {
    for (const char* f : {"id", "object", "created", "owned_by", "root", "parent", "max_model_len"})
      EXPECT_TRUE(card.as_object().contains(f)) << f;
  }
}

TEST(Engine, NonStreamingChatReportsUsage) {
  Engine e(kFast);
  auto r = e.post("/v1/chat/completions", chatBody("m", "Hello there", 12));
  ASSERT_EQ(r.status, 200u) << r.body;
  auto o = bj::parse(r.body).as_object();
  EXPECT_EQ(o.at("object"), "chat.completion");
  EXPECT_EQ(o.at("model"), "m");
  const auto& choice = o.at("choices").as_array()[0];
  EXPECT_EQ(choice.at("finish_reason"), "length");
  EXPECT_EQ(choice.at("message").at("role"), "assistant");
  const auto& usage = o.at("usage");
  EXPECT_EQ(usage.at("completion_tokens"), 12);
  EXPECT_EQ(usage.at("prompt_tokens"), 2 + 4 + 3);  // "Hello there" + template tokens
  EXPECT_EQ(usage.at("total_tokens"), 21);
  std::string content(choice.at("message").at("content").as_string());
  EXPECT_EQ(tokenizer::count(content), 12u);
}

TEST(Engine, StreamingChatFormatEventByEvent) {
  Engine e(kFast);
  auto s =
      stream(e, "/v1/chat/completions",
             chatBody("m", "Hi", 5, R"(,"stream":true,"stream_options":{"include_usage":true})"));
  ASSERT_EQ(s.response.status, 200u);
  EXPECT_EQ(s.response.header("content-type"), "text/event-stream; charset=utf-8");
  EXPECT_EQ(s.response.header("transfer-encoding"), "chunked");
  // role chunk, 5 content chunks, usage chunk, [DONE]
  ASSERT_EQ(s.events.size(), 8u);
  auto first = bj::parse(s.events[0]).as_object();
  EXPECT_EQ(first.at("object"), "chat.completion.chunk");
  EXPECT_EQ(first.at("choices").as_array()[0].at("delta").at("role"), "assistant");
  const std::string id(first.at("id").as_string());
  EXPECT_TRUE(id.starts_with("chatcmpl-"));
  for (int i = 1; i <= 5; ++i) {
    auto c = bj::parse(s.events[i]).as_object();
    EXPECT_EQ(std::string(c.at("id").as_string()), id);
    EXPECT_TRUE(c.at("usage").is_null());
    const auto& choice = c.at("choices").as_array()[0];
    EXPECT_TRUE(choice.at("delta").as_object().contains("content"));
    if (i < 5) {
      EXPECT_TRUE(choice.at("finish_reason").is_null()) << i;
    } else {
      EXPECT_EQ(choice.at("finish_reason"), "length");
    }
  }
  auto usage = bj::parse(s.events[6]).as_object();
  EXPECT_TRUE(usage.at("choices").as_array().empty());
  EXPECT_EQ(usage.at("usage").at("completion_tokens"), 5);
  EXPECT_EQ(usage.at("usage").at("prompt_tokens"), 1 + 4 + 3);
  EXPECT_EQ(s.events[7], "[DONE]");
}

TEST(Engine, StreamingWithoutIncludeUsageHasNoUsageChunk) {
  Engine e(kFast);
  auto s = stream(e, "/v1/chat/completions", chatBody("m", "Hi", 3, R"(,"stream":true)"));
  ASSERT_EQ(s.events.size(), 5u);  // role + 3 + [DONE]
  for (std::size_t i = 0; i + 1 < s.events.size(); ++i)
    EXPECT_FALSE(bj::parse(s.events[i]).as_object().contains("usage"));
  EXPECT_EQ(s.events.back(), "[DONE]");
}

TEST(Engine, StreamingCompletionsAndStopStrings) {
  Engine e({"--time-scale", "inf", "--served-model-name", "m", "--mode", "echo"});
  auto s = stream(e, "/v1/completions",
                  R"({"model":"m","prompt":"alpha beta END gamma","max_tokens":50,"stop":"END",)"
                  R"("stream":true,"stream_options":{"include_usage":true}})");
  ASSERT_GE(s.events.size(), 3u);
  std::string text;
  std::string finish;
  for (std::size_t i = 0; i + 2 < s.events.size(); ++i) {
    auto c = bj::parse(s.events[i]).as_object();
    EXPECT_EQ(c.at("object"), "text_completion");
    const auto& choice = c.at("choices").as_array()[0];
    text += choice.at("text").as_string();
    if (!choice.at("finish_reason").is_null()) {
      finish = choice.at("finish_reason").as_string();
      EXPECT_EQ(choice.at("stop_reason"), "END");
    }
  }
  EXPECT_EQ(text, "alpha beta ");
  EXPECT_EQ(finish, "stop");
  auto usage = bj::parse(s.events[s.events.size() - 2]).at("usage");
  EXPECT_EQ(usage.at("completion_tokens"), 3);
  EXPECT_EQ(usage.at("prompt_tokens"), 4);
}

TEST(Engine, SeedMakesOutputReproducible) {
  Engine e(kFast);
  const auto body = chatBody("m", "Hello", 20, R"(,"seed":10)");
  auto a = bj::parse(e.post("/v1/chat/completions", body).body);
  auto b = bj::parse(e.post("/v1/chat/completions", body).body);
  EXPECT_EQ(a.at("choices").as_array()[0].at("message").at("content"),
            b.at("choices").as_array()[0].at("message").at("content"));
}

TEST(Engine, BadInputGetsOpenAiErrors) {
  Engine e({"--time-scale", "inf", "--served-model-name", "m", "--max-model-len", "64"});
  struct Case {
    std::string method, path, body;
    unsigned status;
    std::string type;
  } cases[] = {
      {"POST", "/v1/chat/completions", "{oops", 400, "invalid_request_error"},
      {"POST", "/v1/chat/completions", R"({"model":"m"})", 400, "invalid_request_error"},
      {"POST", "/v1/chat/completions", R"({"model":"m","messages":5})", 400,
       "invalid_request_error"},
      {"POST", "/v1/completions", R"({"model":"m"})", 400, "invalid_request_error"},
      {"POST", "/v1/chat/completions", chatBody("nope", "hi", 5), 404, "not_found_error"},
      {"POST", "/v1/chat/completions", chatBody("m", "hi", 5, R"(,"n":3)"), 400,
       "invalid_request_error"},
      {"POST", "/v1/chat/completions", chatBody("m", "hi", 100), 400, "invalid_request_error"},
      {"POST", "/v1/completions", R"({"model":"m","prompt":")" + words(100) + R"("})", 400,
       "invalid_request_error"},
      {"GET", "/v1/chat/completions", "", 405, "invalid_request_error"},
      {"POST", "/v1/models", "{}", 405, "invalid_request_error"},
      {"GET", "/v2/whatever", "", 404, "not_found_error"},
  };
  for (const auto& c : cases) {
    auto r = http::fetch("127.0.0.1", e.port,
                         {.method = c.method,
                          .target = c.path,
                          .body = c.body,
                          .headers = {{"Content-Type", "application/json"}}});
    ASSERT_TRUE(r.ok()) << c.body;
    EXPECT_EQ(r->status, c.status) << c.method << " " << c.path << " " << c.body;
    auto err = bj::parse(r->body).at("error").as_object();
    EXPECT_EQ(std::string(err.at("type").as_string()), c.type) << r->body;
    EXPECT_FALSE(err.at("message").as_string().empty());
    EXPECT_TRUE(err.contains("param") && err.contains("code"));
  }
  // The context-length error says what was asked for, as vLLM does.
  auto r = e.post("/v1/chat/completions", chatBody("m", "hi", 100));
  EXPECT_NE(r.body.find("maximum context length is 64 tokens"), std::string::npos) << r.body;
}

TEST(Engine, OversizedBodyIs413) {
  Engine e(kFast);
  const std::string big = R"({"model":"m","prompt":")" + std::string(9 << 20, 'a') + R"("})";
  auto r = http::fetch("127.0.0.1", e.port,
                       {.method = "POST",
                        .target = "/v1/completions",
                        .body = big,
                        .headers = {{"Content-Type", "application/json"}}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 413u);
  EXPECT_EQ(bj::parse(r->body).at("error").at("type"), "invalid_request_error");
  // The engine is still serving.
  EXPECT_EQ(e.get("/health").status, 200u);
}

TEST(Engine, FullQueueGets429) {
  // One running sequence at a time, one waiting slot, real (slow) step times.
  Engine e(
      {"--served-model-name", "m", "--max-num-seqs", "1", "--max-waiting", "1", "--step-ms", "20"});
  auto longReq = [&] { return e.post("/v1/chat/completions", chatBody("m", "x", 150)); };
  auto first = std::async(std::launch::async, longReq);
  ASSERT_TRUE(eventually([&] { return e.metric("vllm:num_requests_running") == 1; }));
  auto second = std::async(std::launch::async, longReq);
  ASSERT_TRUE(eventually([&] { return e.metric("vllm:num_requests_waiting") == 1; }));
  auto third = e.post("/v1/chat/completions", chatBody("m", "x", 5));
  EXPECT_EQ(third.status, 429u);
  auto err = bj::parse(third.body).at("error");
  EXPECT_EQ(err.at("type"), "rate_limit_error");
  EXPECT_EQ(err.at("code"), "queue_full");
  EXPECT_EQ(first.get().status, 200u);
  EXPECT_EQ(second.get().status, 200u);
}

TEST(Engine, LoadAndUnloadLoraAdapters) {
  Engine e({"--time-scale", "inf", "--served-model-name", "base", "--max-loras", "2"});
  auto load = e.post("/v1/load_lora_adapter", R"({"lora_name":"sql-lora","lora_path":"/l/sql"})");
  EXPECT_EQ(load.status, 200u);
  EXPECT_EQ(load.body, "Success: LoRA adapter 'sql-lora' added successfully.");
  EXPECT_EQ(
      e.post("/v1/load_lora_adapter", R"({"lora_name":"sql-lora","lora_path":"/l/sql"})").status,
      400u);
  EXPECT_EQ(e.post("/v1/load_lora_adapter", R"({"lora_name":"x"})").status, 400u);
  EXPECT_NE(e.get("/v1/models").body.find("\"sql-lora\""), std::string::npos);
  auto r = e.post("/v1/completions", R"({"model":"sql-lora","prompt":"select","max_tokens":3})");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(bj::parse(r.body).at("model"), "sql-lora");
  EXPECT_EQ(e.post("/v1/unload_lora_adapter", R"({"lora_name":"sql-lora"})").status, 200u);
  EXPECT_EQ(e.post("/v1/unload_lora_adapter", R"({"lora_name":"sql-lora"})").status, 404u);
  EXPECT_EQ(e.post("/v1/completions", R"({"model":"sql-lora","prompt":"x","max_tokens":3})").status,
            404u);
  EXPECT_EQ(e.get("/v1/models").body.find("\"sql-lora\""), std::string::npos);
}

TEST(Engine, NonResidentAdapterWaitsForASlot) {
  // One slot: while a long tweet-summary request runs, a sql-lora request waits, and the
  // metrics show it the way vLLM does.
  Engine e({"--served-model-name", "base", "--max-loras", "1", "--step-ms", "10", "--lora-modules",
            "tweet-summary=/l/t", "--lora-modules", "sql-lora=/l/s"});
  auto tweet = std::async(std::launch::async, [&] {
    return e.post("/v1/completions", R"({"model":"tweet-summary","prompt":"x","max_tokens":80})");
  });
  ASSERT_TRUE(eventually([&] { return e.metric("vllm:num_requests_running") == 1; }));
  auto sql = std::async(std::launch::async, [&] {
    return e.post("/v1/completions", R"({"model":"sql-lora","prompt":"y","max_tokens":2})");
  });
  ASSERT_TRUE(eventually([&] { return e.metric("vllm:num_requests_waiting") == 1; }));
  auto text = e.get("/metrics").body;
  auto scrape = prom::parse(text);
  ASSERT_TRUE(scrape.ok());
  const auto* info = scrape->find("vllm:lora_requests_info");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->label("running_lora_adapters"), "tweet-summary");
  EXPECT_EQ(info->label("waiting_lora_adapters"), "sql-lora");
  EXPECT_EQ(info->label("max_lora"), "1");
  EXPECT_EQ(sql.get().status, 200u);
  EXPECT_EQ(tweet.get().status, 200u);
}

TEST(Engine, GpuProfileSizesTheCacheAndGivenFlagsOverrideIt) {
  auto blocks = [](const Engine& e) {
    auto scrape = prom::parse(e.get("/metrics").body);
    EXPECT_TRUE(scrape.ok());
    const auto* info = scrape.ok() ? scrape->find("vllm:cache_config_info") : nullptr;
    return info ? std::string(info->label("num_gpu_blocks")) : std::string();
  };
  Engine a10(kFast);
  EXPECT_EQ(blocks(a10), "2048");
  // An H100 holds many more 8B blocks (profiles.cc derives 28,019).
  std::vector<std::string> h100 = kFast;
  h100.insert(h100.end(), {"--gpu", "h100-llama-3.1-8b"});
  EXPECT_EQ(blocks(Engine(h100)), "28019");
  // A flag given wins over the profile, before or after --gpu.
  std::vector<std::string> given = {"--kv-blocks", "100"};
  given.insert(given.end(), h100.begin(), h100.end());
  EXPECT_EQ(blocks(Engine(given)), "100");

  auto bad = runCommand({TIDEGATE_BINARY, "engine", "--port", "0", "--gpu", "h100"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("unknown GPU profile 'h100' (known: a10-llama-3.1-8b, "),
            std::string::npos)
      << bad.output;
}

TEST(Engine, ClientDisconnectMidStreamFreesItsSequence) {
  Engine e({"--served-model-name", "m", "--step-ms", "10"});
  int events = 0;
  SseParser parser;
  std::vector<std::string> got;
  auto r = e.postStream("/v1/chat/completions",
                        chatBody("m", "tell me a story", 2000, R"(,"stream":true)"),
                        [&](std::string_view d) {
                          EXPECT_TRUE(parser.feed(d, got));
                          events = static_cast<int>(got.size());
                          return events < 5;  // hang up after a few tokens
                        });
  EXPECT_EQ(r.status, 200u);
  ASSERT_TRUE(eventually([&] {
    return e.metric("vllm:num_requests_running") == 0 && e.metric("vllm:kv_cache_usage_perc") == 0;
  }));
  EXPECT_EQ(e.metric("vllm:request_success_total", {{"finished_reason", "abort"}}), 1);
  // Far fewer than 2000 tokens were generated.
  EXPECT_LT(e.metric("vllm:generation_tokens_total"), 200);
}

TEST(Engine, HealthIs503UntilStartupHasPassed) {
  Engine e({"--served-model-name", "m", "--startup-ms", "400"});
  EXPECT_EQ(e.get("/health").status, 503u);
  EXPECT_EQ(e.post("/v1/chat/completions", chatBody("m", "hi", 2)).status, 503u);
  EXPECT_TRUE(eventually([&] { return e.get("/health").status == 200; }, 5s));
  EXPECT_EQ(e.post("/v1/chat/completions", chatBody("m", "hi", 2)).status, 200u);
}

TEST(Engine, EmbeddingsAreDeterministicUnitVectors) {
  Engine e({"--time-scale", "inf", "--served-model-name", "m", "--embedding-dim", "16"});
  auto r = e.post("/v1/embeddings", R"({"model":"m","input":["hello world","other"]})");
  ASSERT_EQ(r.status, 200u) << r.body;
  auto o = bj::parse(r.body).as_object();
  const auto& data = o.at("data").as_array();
  ASSERT_EQ(data.size(), 2u);
  double norm = 0;
  for (const auto& x : data[0].at("embedding").as_array()) norm += x.as_double() * x.as_double();
  EXPECT_NEAR(norm, 1.0, 1e-9);
  EXPECT_EQ(data[0].at("embedding").as_array().size(), 16u);
  EXPECT_EQ(o.at("usage").at("prompt_tokens"), 3);
  auto again = bj::parse(e.post("/v1/embeddings", R"({"model":"m","input":"hello world"})").body);
  EXPECT_EQ(again.at("data").as_array()[0].at("embedding"), data[0].at("embedding"));
}

TEST(Engine, RepeatedPrefixHitsThePrefixCache) {
  Engine e(kFast);
  std::string prompt;
  for (int i = 0; i < 100; ++i) prompt += " word" + std::to_string(i);
  const auto body = R"({"model":"m","prompt":")" + prompt + R"(","max_tokens":2})";
  ASSERT_EQ(e.post("/v1/completions", body).status, 200u);
  EXPECT_EQ(e.metric("vllm:prefix_cache_hits_total"), 0);
  ASSERT_EQ(e.post("/v1/completions", body).status, 200u);
  EXPECT_GT(e.metric("vllm:prefix_cache_hits_total"), 100);
  EXPECT_GT(e.metric("vllm:prefix_cache_queries_total"), e.metric("vllm:prefix_cache_hits_total"));
}

TEST(Engine, MetricsPassPromtool) {
  Engine e({"--time-scale", "100", "--served-model-name", "m", "--lora-modules", "a=/a"});
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(e.post("/v1/chat/completions", chatBody("m", "hi", 4)).status, 200u);
  ASSERT_EQ(e.post("/v1/completions", R"({"model":"a","prompt":"x","max_tokens":2})").status, 200u);
  const auto text = e.get("/metrics").body;
  for (const char* name :
       {"vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
        "vllm:gpu_cache_usage_perc", "vllm:lora_requests_info", "vllm:cache_config_info",
        "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:request_success_total",
        "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total",
        "vllm:num_preemptions_total", "vllm:time_to_first_token_seconds_bucket",
        "vllm:inter_token_latency_seconds_bucket", "vllm:e2e_request_latency_seconds_bucket",
        "vllm:request_queue_time_seconds_bucket", "DCGM_CUSTOM_PROCESS_SM_UTIL"}) {
    EXPECT_NE(text.find(std::string("\n") + name), std::string::npos) << name;
  }
  EXPECT_EQ(e.metric("vllm:generation_tokens_total", {{"model_name", "m"}}), 14);
  EXPECT_EQ(e.metric("vllm:request_success_total", {{"finished_reason", "length"}}), 4);
  char path[] = "/tmp/tidegate-metrics-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << text;
  const std::string cmd = std::string("promtool check metrics < ") + path + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::vector<std::string> problems;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) {
    std::string line(buf);
    // vLLM's names contain ':' (Prometheus reserves it for recording rules); promtool lints that,
    // but the names are what every vLLM scraper expects, so that one lint is accepted.
    if (line.find("metric names should not contain ':'") == std::string::npos && line != "\n")
      problems.push_back(line);
  }
  const int rc = WEXITSTATUS(::pclose(p));
  std::remove(path);
  // 0: clean; 3: lint findings only (1 would be a parse error).
  EXPECT_TRUE(rc == 0 || rc == 3) << "promtool exit " << rc;
  EXPECT_TRUE(problems.empty()) << problems.front();
}

TEST(Engine, GpuUtilisationFollowsLoad) {
  Engine e({"--served-model-name", "m", "--step-ms", "5"});
  EXPECT_EQ(e.metric("DCGM_CUSTOM_PROCESS_SM_UTIL"), 0);
  auto busy = std::async(std::launch::async,
                         [&] { return e.post("/v1/chat/completions", chatBody("m", "x", 300)); });
  EXPECT_TRUE(eventually([&] { return e.metric("DCGM_CUSTOM_PROCESS_SM_UTIL") > 50; }));
  EXPECT_EQ(busy.get().status, 200u);
}

}  // namespace
}  // namespace tidegate::testing

namespace tidegate::testing {
namespace {

// A stream in flight on its own thread; `events` counts the SSE events seen so far.
struct BackgroundStream {
  BackgroundStream(const Engine& e, int max_tokens)
      : result(std::async(std::launch::async, [this, port = e.port, max_tokens] {
          SseParser parser;
          std::vector<std::string> got;
          auto r = http::fetch("127.0.0.1", port,
                               {.method = "POST",
                                .target = "/v1/chat/completions",
                                .body = chatBody("m", "x", max_tokens, R"(,"stream":true)"),
                                .headers = {{"Content-Type", "application/json"}},
                                .timeout_s = 120},
                               [&](std::string_view d) {
                                 parser.feed(d, got);
                                 events = static_cast<int>(got.size());
                                 return true;
                               });
          return std::make_pair(r.ok(), got);
        })) {}
  std::atomic<int> events{0};
  // Whether the exchange completed, and its events.
  std::future<std::pair<bool, std::vector<std::string>>> result;
};

// A plain TCP connection to the engine (for what an HTTP client would hide: refusals, closes).
struct RawConn {
  explicit RawConn(std::uint16_t port) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connect_errno = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 ? 0 : errno;
  }
  ~RawConn() { ::close(fd); }
  bool send(const std::string& s) const {
    return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
  }
  // Reads until `needle` is in what was read, the peer closes or `timeout` passes.
  std::string readUntil(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (in.find(needle) == std::string::npos && !closed) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fd, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        closed = true;
        break;
      }
      in.append(buf, static_cast<std::size_t>(n));
    }
    return in;
  }
  int fd = -1;
  int connect_errno = 0;
  std::string in;
  bool closed = false;  // the peer closed (or reset) the connection
};

bool refusesConnections(std::uint16_t port) { return RawConn(port).connect_errno == ECONNREFUSED; }

// As uvicorn under vLLM: SIGTERM stops accepting and closes idle connections, while requests in
// flight finish (the scheduler keeps stepping); then the process exits 0.
TEST(Engine, SigtermDrainsRequestsInFlightThenExitsZero) {
  Engine e({"--served-model-name", "m", "--step-ms", "10"});
  BackgroundStream s(e, 150);  // about 1.5 s of tokens
  // An idle keep-alive connection (one answered request) and a non-streamed request in flight.
  RawConn idle(e.port);
  ASSERT_TRUE(idle.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_NE(idle.readUntil("\r\n\r\n", 5s).find("200 OK"), std::string::npos) << idle.in;
  ASSERT_FALSE(idle.closed);
  auto whole = std::async(std::launch::async, [&] {
    return http::fetch("127.0.0.1", e.port,
                       {.method = "POST",
                        .target = "/v1/chat/completions",
                        .body = chatBody("m", "x", 100),
                        .headers = {{"Content-Type", "application/json"}},
                        .timeout_s = 60});
  });
  ASSERT_TRUE(eventually([&] { return s.events.load() > 3; }));
  ASSERT_TRUE(eventually([&] { return e.metric("vllm:num_requests_running") == 2; }));

  ::kill(e.proc.pid(), SIGTERM);
  // New connections are refused, and the idle one is closed without an answer.
  EXPECT_TRUE(eventually([&] { return refusesConnections(e.port); }, 5s));
  idle.in.clear();
  idle.readUntil("never", 5s);
  EXPECT_TRUE(idle.closed);
  EXPECT_EQ(idle.in, "");

  // The stream still gets every token and [DONE]; the other answer says Connection: close.
  auto [completed, events] = s.result.get();
  EXPECT_TRUE(completed);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_EQ(events.size(), 1u + 150u + 1u);  // the role chunk, one per token, [DONE]
  auto r = whole.get();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200u);
  EXPECT_FALSE(r->keep_alive);
  EXPECT_EQ(bj::parse(r->body).at("usage").at("completion_tokens"), 100);

  const int status = e.proc.wait(20s);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(Engine, ShutdownTimeoutCutsALongStream) {
  Engine e({"--served-model-name", "m", "--step-ms", "10", "--shutdown-timeout", "1"});
  BackgroundStream s(e, 5000);  // about 50 s of tokens
  ASSERT_TRUE(eventually([&] { return s.events.load() > 3; }));
  ::kill(e.proc.pid(), SIGTERM);
  // Generous bound: the drain waits 1 s, then the cut takes milliseconds.
  const int status = e.proc.wait(15s);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 1);  // requests were cut
  auto [completed, events] = s.result.get();
  EXPECT_FALSE(completed);
  EXPECT_LT(events.size(), 5000u);
  EXPECT_TRUE(events.empty() || events.back() != "[DONE]");
}

TEST(Engine, SecondSigtermExitsAtOnce) {
  Engine e({"--served-model-name", "m", "--step-ms", "10"});  // --shutdown-timeout 30
  BackgroundStream s(e, 5000);
  ASSERT_TRUE(eventually([&] { return s.events.load() > 3; }));
  ::kill(e.proc.pid(), SIGTERM);
  // The first signal was handled (two sent at once could arrive as one).
  ASSERT_TRUE(eventually([&] { return refusesConnections(e.port); }, 5s));
  EXPECT_EQ(e.proc.wait(300ms), -1);  // still draining
  ::kill(e.proc.pid(), SIGTERM);
  const int status = e.proc.wait(10s);  // far less than the 30 s drain
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 1);
  auto [completed, events] = s.result.get();
  EXPECT_FALSE(completed);
  EXPECT_LT(events.size(), 5000u);
}

}  // namespace
}  // namespace tidegate::testing
