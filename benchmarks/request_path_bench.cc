// Micro-benchmarks of the gateway's per-request JSON work on the bodies that
// benchmarks/gateway_overhead.sh sends and that `tidegate engine` answers: the request-body scan
// (model, stream, prompt text for prefix affinity), the response scan for usage, a stream event's
// scan, and writing a response head. Run: build/micro_benchmarks (see docs/benchmarks.md).

#include <benchmark/benchmark.h>

#include <string>

#include "common/http_wire.h"
#include "gateway/body.h"
#include "gateway/relay/usage_scanner.h"

namespace {

using namespace tidegate;

constexpr std::string_view kRequest =
    R"({"model":"m","messages":[{"role":"user","content":"Hello there"}],"max_tokens":16})";

constexpr std::string_view kChatRequest =
    R"({"model":"m","messages":[{"role":"system","content":"You are a helpful assistant. )"
    R"(Answer briefly and cite sources."},{"role":"user","content":"What is the capital of )"
    R"(France, and why is it called \"the city of light\"?"}],"max_tokens":128,"stream":true,)"
    R"("temperature":0.7,"top_p":0.95,"stream_options":{"include_usage":true}})";

constexpr std::string_view kResponse =
    R"({"id":"chatcmpl-dccf2d310b937e43","object":"chat.completion","created":1795470438,)"
    R"("model":"m","choices":[{"index":0,"logprobs":null,"finish_reason":"length",)"
    R"("stop_reason":null,"message":{"role":"assistant","content":"you from so they this up )"
    R"(on more has in for. can are has so","tool_calls":[]}}],"usage":{"prompt_tokens":9,)"
    R"("total_tokens":25,"completion_tokens":16}})";

constexpr std::string_view kEvent =
    R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1795470438,"model":"m",)"
    R"("choices":[{"index":0,"delta":{"content":" they"},"logprobs":null,"finish_reason":null}],)"
    R"("usage":{"prompt_tokens":9,"total_tokens":12,"completion_tokens":3}})";

void scanRequestBody(benchmark::State& state, std::string_view body) {
  for (auto _ : state) {
    gateway::RequestFields f;
    auto err = gateway::scanRequest(body, f);
    benchmark::DoNotOptimize(err);
    benchmark::DoNotOptimize(f);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK_CAPTURE(scanRequestBody, small, kRequest);
BENCHMARK_CAPTURE(scanRequestBody, chat, kChatRequest);

void scanResponse(benchmark::State& state, std::string_view body) {
  for (auto _ : state) benchmark::DoNotOptimize(gateway::relay::scanObject(body));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK_CAPTURE(scanResponse, body, kResponse);
BENCHMARK_CAPTURE(scanResponse, event, kEvent);

void responseHead(benchmark::State& state) {
  const http::WireHeaders extra = {{"x-ratelimit-remaining-requests", "59"},
                                   {"x-request-id", "0b1c2d3e-4f50-6172-8394"}};
  std::string out;
  for (auto _ : state) {
    out.clear();
    http::appendResponseHead(out, boost::beast::http::status::ok, 11, "tidegate",
                             "application/json", extra, true, 366, false);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(responseHead);

}  // namespace
