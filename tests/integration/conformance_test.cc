// Conformance with real engines' connection behaviour, with real processes on 127.0.0.1:
// - llama.cpp's llama-server (TIDEGATE_LLAMA_SERVER; skipped with a message when absent), which
//   answers `Keep-Alive: timeout=5` but closes the connection after every streamed response and
//   closes idle connections after 5 s;
// - `tidegate engine` answering `Connection: close`, and closing idle connections early.
// Each runs behind the gateway and under `tidegate bench`, and must lose no request.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/sse.h"
#include "support/process.h"
#include "support/scripted_server.h"

namespace tidegate::testing {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;

std::string gatewayFor(std::uint16_t engine_port) {
  return "apiVersion: tidegate.io/v1alpha1\nkind: Gateway\nmetadata: {name: gw}\n"
         "spec: {listen: 127.0.0.1:0, admin: 127.0.0.1:0, scrape: {interval: 50ms}}\n"
         "---\napiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\n"
         "metadata: {name: p}\nspec: {targetPorts: [{number: 8000}], selector: {matchLabels: "
         "{app: x}}}\n"
         "---\napiVersion: tidegate.io/v1alpha1\nkind: Endpoints\nmetadata: {name: e, labels: "
         "{app: x}}\nspec: {addresses: [\"127.0.0.1:" +
         std::to_string(engine_port) + "\"]}\n";
}

bool waitReady(const Serve& gw) {
  return eventually([&] { return gw.metric("tidegate_endpoint_up") == 1; }, 30s);
}

// One `tidegate bench` run in the background, its JSON summary read when it ends.
class BenchRun {
 public:
  BenchRun(std::uint16_t port, std::vector<std::string> args) {
    static int n = 0;
    json_ =
        "/tmp/tidegate-conf-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ".json";
    std::vector<std::string> argv{
        binaryPath(), "bench",     "--url",      "http://127.0.0.1:" + std::to_string(port),
        "--model",    "tiny",      "--progress", "off",
        "-q",         "--timeout", "60s",        "--json",
        json_};
    argv.insert(argv.end(), args.begin(), args.end());
    proc_ = std::make_unique<ChildProcess>(argv, true);
  }
  // Waits for the run; returns its summary (an empty object if it did not finish).
  bj::object result() {
    output_ = proc_->readAll(180s);
    proc_->wait(10s);
    std::ifstream in(json_);
    std::stringstream ss;
    ss << in.rdbuf();
    std::remove(json_.c_str());
    boost::system::error_code ec;
    auto v = bj::parse(ss.str(), ec);
    return !ec && v.is_object() ? v.get_object() : bj::object{};
  }
  const std::string& output() const { return output_; }

 private:
  std::string json_, output_;
  std::unique_ptr<ChildProcess> proc_;
};

struct Totals {
  std::int64_t completed = 0, failed = 0;
  std::string detail;
};

// 1,000 requests at concurrency 8: chat and completions, streamed and not, 250 of each at once.
Totals mixedThousand(std::uint16_t port) {
  const std::vector<std::vector<std::string>> shapes = {
      {"--endpoint", "chat"},
      {"--endpoint", "chat", "--no-stream"},
      {"--endpoint", "completions"},
      {"--endpoint", "completions", "--no-stream"}};
  std::vector<std::unique_ptr<BenchRun>> runs;
  for (auto shape : shapes) {
    shape.insert(shape.end(),
                 {"-c", "2", "-n", "250", "--max-tokens", "8", "--prompt-tokens", "24"});
    runs.push_back(std::make_unique<BenchRun>(port, shape));
  }
  Totals t;
  for (auto& r : runs) {
    auto s = r->result();
    if (s.empty()) {
      t.failed += 250;
      t.detail += "bench did not finish: " + r->output() + "\n";
      continue;
    }
    t.completed += s.at("requests").at("completed").as_int64();
    t.failed += s.at("requests").at("failed").as_int64();
    t.detail += bj::serialize(s.at("errors")) + " ";
  }
  return t;
}

// Requests answered with 200 by the gateway, and its failed upstream attempts.
double served(const Serve& gw) {
  auto s = prom::parse(gw.admin("/metrics").body);
  double n = 0;
  for (const auto& x : s->samples)
    if (x.name == "tidegate_requests_total" && x.label("status") == "200") n += x.value;
  return n;
}
double upstreamErrors(const Serve& gw) {
  return prom::parse(gw.admin("/metrics").body)->sum("tidegate_upstream_errors_total");
}

TEST(LlamaCpp, ThousandMixedRequestsThroughTheGatewayWithZeroFailures) {
  if (LlamaServer::path().empty()) GTEST_SKIP() << LlamaServer::kSkipMessage;
  LlamaServer engine;
  Serve gw(gatewayFor(engine.port));
  ASSERT_TRUE(waitReady(gw));
  const auto t = mixedThousand(gw.port);
  EXPECT_EQ(t.completed, 1000) << t.detail;
  EXPECT_EQ(t.failed, 0) << t.detail;
  EXPECT_TRUE(eventually([&] { return served(gw) == 1000; })) << served(gw);
  // A dead pooled connection is replaced, not retried and not counted as an upstream error.
  EXPECT_EQ(upstreamErrors(gw), 0);
  EXPECT_LE(gw.metric("tidegate_upstream_retries_total"), 0);
}

TEST(LlamaCpp, ThousandMixedRequestsFromBenchDirectWithZeroFailures) {
  if (LlamaServer::path().empty()) GTEST_SKIP() << LlamaServer::kSkipMessage;
  LlamaServer engine;
  const auto t = mixedThousand(engine.port);
  EXPECT_EQ(t.completed, 1000) << t.detail;
  EXPECT_EQ(t.failed, 0) << t.detail;
}

TEST(LlamaCpp, RequestsAfterTheEngineIdledPastItsKeepAliveTimeout) {
  if (LlamaServer::path().empty()) GTEST_SKIP() << LlamaServer::kSkipMessage;
  LlamaServer engine;
  Serve gw(gatewayFor(engine.port));
  ASSERT_TRUE(waitReady(gw));
  // Non-streamed responses leave the gateway's upstream connections open and pooled...
  auto first =
      BenchRun(gw.port, {"-c", "4", "-n", "40", "--no-stream", "--max-tokens", "4"}).result();
  ASSERT_EQ(first.at("requests").at("failed"), 0);
  // ...until llama-server closes them after its 5 s keep-alive timeout (its own clock: real
  // time is what is being tested here).
  std::this_thread::sleep_for(6s);
  auto after =
      BenchRun(gw.port, {"-c", "4", "-n", "40", "--no-stream", "--max-tokens", "4"}).result();
  EXPECT_EQ(after.at("requests").at("completed"), 40);
  EXPECT_EQ(after.at("requests").at("failed"), 0) << bj::serialize(after.at("errors"));
  EXPECT_EQ(upstreamErrors(gw), 0);
}

TEST(LlamaCpp, EngineRestartedOnTheSamePortLosesNoRequest) {
  if (LlamaServer::path().empty()) GTEST_SKIP() << LlamaServer::kSkipMessage;
  LlamaServer engine;
  Serve gw(gatewayFor(engine.port));
  ASSERT_TRUE(waitReady(gw));
  auto before =
      BenchRun(gw.port, {"-c", "4", "-n", "40", "--no-stream", "--max-tokens", "4"}).result();
  ASSERT_EQ(before.at("requests").at("failed"), 0);
  engine.restart();  // every pooled connection now leads to a dead process
  ASSERT_TRUE(waitReady(gw));
  auto after =
      BenchRun(gw.port, {"-c", "4", "-n", "80", "--max-tokens", "4"}).result();  // streamed
  EXPECT_EQ(after.at("requests").at("completed"), 80);
  EXPECT_EQ(after.at("requests").at("failed"), 0) << bj::serialize(after.at("errors"));
}

TEST(LlamaCpp, ItsMetricsAndModelsReachThePicker) {
  if (LlamaServer::path().empty()) GTEST_SKIP() << LlamaServer::kSkipMessage;
  LlamaServer engine;
  Serve gw(gatewayFor(engine.port));
  ASSERT_TRUE(waitReady(gw));
  auto endpoint = [&] {
    auto state = bj::parse(gw.admin("/admin/state").body);
    return state.at("pools").at(0).at("endpoints").at(0).as_object();
  };
  ASSERT_TRUE(eventually([&] { return !endpoint().at("models").as_array().empty(); }));
  auto e = endpoint();
  EXPECT_EQ(e.at("engine"), "llamacpp");
  EXPECT_EQ(e.at("models").at(0), "tiny");
  // Under load, llamacpp:requests_processing shows as the endpoint's running requests.
  BenchRun load(gw.port, {"-c", "4", "-n", "24", "--max-tokens", "300"});
  EXPECT_TRUE(eventually(
      [&] { return endpoint().at("metrics").at("running").to_number<double>() >= 1; }, 30s));
  EXPECT_EQ(load.result().at("requests").at("failed"), 0);
}

TEST(LlamaCpp, UsageIsCapturedFromItsStreams) {
  if (LlamaServer::path().empty()) GTEST_SKIP() << LlamaServer::kSkipMessage;
  LlamaServer engine;
  Serve gw(gatewayFor(engine.port));
  ASSERT_TRUE(waitReady(gw));
  const double predicted_before = engine.metric("llamacpp:tokens_predicted_total");
  auto run = BenchRun(gw.port, {"-c", "4", "-n", "40", "--max-tokens", "8"}).result();
  ASSERT_EQ(run.at("requests").at("failed"), 0);
  const double predicted = engine.metric("llamacpp:tokens_predicted_total") - predicted_before;
  EXPECT_EQ(predicted, 320);
  // The gateway counted exactly what the engine generated, from the usage in its streams.
  EXPECT_TRUE(eventually([&] {
    return gw.metric("tidegate_completion_tokens_total", {{"model", "tiny"}}) == 320;
  })) << gw.metric("tidegate_completion_tokens_total", {{"model", "tiny"}});
  EXPECT_GT(gw.metric("tidegate_prompt_tokens_total", {{"model", "tiny"}}), 0);
  // A client that did not ask for usage does not get the usage chunk the gateway asked for.
  std::vector<std::string> events;
  SseParser parser;
  auto r = http::fetch(
      "127.0.0.1", gw.port,
      {.method = "POST",
       .target = "/v1/chat/completions",
       .body = R"({"model":"tiny","messages":[{"role":"user","content":"a b"}],"max_tokens":4,)"
               R"("stream":true})",
       .headers = {{"Content-Type", "application/json"}}},
      [&](std::string_view d) { return parser.feed(d, events); });
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  for (const auto& ev : events) {
    if (ev == "[DONE]") continue;
    auto o = bj::parse(ev).as_object();
    EXPECT_FALSE(o.contains("usage") && !o.at("usage").is_null()) << ev;
  }
}

// tidegate engine's own variants of the same behaviour, run without llama.cpp.
TEST(Conformance, ConnectionCloseEngineLosesNoRequest) {
  Engine engine({"--served-model-name", "tiny", "--time-scale", "inf", "--no-keep-alive"});
  Serve gw(gatewayFor(engine.port));
  ASSERT_TRUE(waitReady(gw));
  const auto t = mixedThousand(gw.port);
  EXPECT_EQ(t.completed, 1000) << t.detail;
  EXPECT_EQ(t.failed, 0) << t.detail;
  EXPECT_EQ(upstreamErrors(gw), 0);
}

TEST(Conformance, EngineThatClosesIdleConnectionsEarlyLosesNoRequest) {
  // The engine drops connections idle for 200 ms without saying so in a header (as uvicorn,
  // vLLM's server, does after 5 s).
  Engine engine(
      {"--served-model-name", "tiny", "--time-scale", "inf", "--keep-alive-timeout", "0.2"});
  Serve gw(gatewayFor(engine.port));
  ASSERT_TRUE(waitReady(gw));
  for (int round = 0; round < 3; ++round) {
    auto r =
        BenchRun(gw.port, {"-c", "4", "-n", "40", "--no-stream", "--max-tokens", "4"}).result();
    EXPECT_EQ(r.at("requests").at("failed"), 0) << bj::serialize(r.at("errors"));
    std::this_thread::sleep_for(300ms);  // past the engine's idle timeout
  }
  EXPECT_EQ(upstreamErrors(gw), 0);
  EXPECT_LE(gw.metric("tidegate_upstream_retries_total"), 0);
}

}  // namespace
}  // namespace tidegate::testing

namespace tidegate::testing {
namespace {

TEST(Conformance, ABodyThatIsNotJsonIsA502NeverRelayed) {
  // An "engine" that scrapes fine but answers completions with an HTML error page and 200.
  ScriptedServer engine([](int, int) { return ScriptedServer::Action::kKeepAlive; },
                        [](const std::string& target) -> std::string {
                          if (target == "/metrics") return "vllm:num_requests_waiting 0\n";
                          if (target == "/v1/models") return R"({"data":[{"id":"tiny"}]})";
                          return "<html><body>upstream proxy error</body></html>";
                        });
  Serve gw(gatewayFor(engine.port()));
  ASSERT_TRUE(waitReady(gw));
  auto r = gw.post("/v1/completions", R"({"model":"tiny","prompt":"x","max_tokens":2})");
  EXPECT_EQ(r.status, 502u) << r.body;
  EXPECT_EQ(r.body.find("<html>"), std::string::npos) << r.body;
  auto err = bj::parse(r.body).at("error").as_object();
  EXPECT_EQ(err.at("type"), "server_error");
  EXPECT_EQ(err.at("code"), "upstream_error");
  EXPECT_EQ(gw.metric("tidegate_upstream_errors_total", {{"kind", "bad_response"}}), 1);
}

}  // namespace
}  // namespace tidegate::testing
