// Integration tests of the gateway (`tidegate serve`) with real `tidegate engine` processes.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <cmath>
#include <fstream>
#include <future>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "common/sse.h"
#include "support/certs.h"
#include "support/process.h"

namespace tidegate::testing {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;

const char* kAdapters[] = {
    "sql-lora",      "sql-lora-1",      "sql-lora-2",      "sql-lora-3",      "sql-lora-4",
    "tweet-summary", "tweet-summary-1", "tweet-summary-2", "tweet-summary-3", "tweet-summary-4"};

std::vector<std::string> loraEngine(std::vector<std::string> extra = {}) {
  std::vector<std::string> f{"--served-model-name", "base", "--max-loras", "10", "--lora-modules"};
  for (const char* a : kAdapters) f.push_back(std::string(a) + "=/l/" + a);
  f.insert(f.end(), extra.begin(), extra.end());
  return f;
}

std::string gatewayDoc(const std::string& extra_spec = "") {
  return "apiVersion: tidegate.io/v1alpha1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n"
         "  listen: 127.0.0.1:0\n  admin: 127.0.0.1:0\n" +
         extra_spec + "---\n";
}

std::string endpointsDoc(const std::string& name, const std::string& app,
                         const std::vector<const Engine*>& engines) {
  std::string s =
      "---\napiVersion: tidegate.io/v1alpha1\nkind: Endpoints\nmetadata: {name: " + name +
      ", labels: {app: " + app + "}}\nspec:\n  addresses:\n";
  for (const auto* e : engines) s += "  - 127.0.0.1:" + std::to_string(e->port) + "\n";
  return s;
}

std::string seedExample() {
  std::ifstream in(std::string(TIDEGATE_SOURCE_DIR) + "/examples/lora-traffic-split.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.substr(0, s.find("---\napiVersion: tidegate.io/v1alpha1"));  // the seed's 3 documents
}

bool waitReady(const Serve& s, int endpoints = 1) {
  return eventually([&] {
    return s.metric("tidegate_endpoint_up") >= 0 &&
           prom::parse(s.admin("/metrics").body)->sum("tidegate_endpoint_up") >= endpoints;
  });
}

bj::object benchJson(const std::vector<std::string>& args) {
  const std::string json = "/tmp/tidegate-gw-bench-" + std::to_string(::getpid()) + ".json";
  std::vector<std::string> argv{binaryPath(), "bench", "--progress", "off", "--json", json};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = runCommand(argv);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(json);
  std::stringstream ss;
  ss << in.rdbuf();
  std::remove(json.c_str());
  return bj::parse(ss.str()).as_object();
}

TEST(Gateway, SeedLoraSplitIsEvenWithinThreePercent) {
  Engine a(loraEngine({"--time-scale", "inf"})), b(loraEngine({"--time-scale", "inf"}));
  Serve gw(gatewayDoc("  workers: 1\n  seed: 42\n") + seedExample() +
           endpointsDoc("engines", "vllm-llama2-7b-pool", {&a, &b}));
  ASSERT_TRUE(waitReady(gw, 2));
  // The seed's check, as written.
  auto r = gw.post(
      "/v1/completions",
      R"({"model": "lora-request", "prompt": "Write as if you were a critic: San Francisco", "max_tokens": 100, "temperature": 0})",
      {{"Host", "test.com"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  const std::string answered(bj::parse(r.body).at("model").as_string());
  EXPECT_TRUE(answered.starts_with("tweet-summary") || answered.starts_with("sql-lora"))
      << answered;

  auto s = benchJson({"--url", "http://127.0.0.1:" + std::to_string(gw.port), "--header",
                      "Host: test.com", "--endpoint", "completions", "--model", "lora-request",
                      "-n", "2000", "-c", "16", "--max-tokens", "2", "--no-stream"});
  ASSERT_EQ(s.at("requests").at("completed"), 2000);
  double tweet = 0, sql = 0;
  for (const auto& [model, n] : s.at("models").as_object()) {
    (std::string(model).starts_with("tweet-summary") ? tweet : sql) += n.as_int64();
    EXPECT_NEAR(n.as_int64(), 200, 60) << model;  // each adapter ~10%
  }
  EXPECT_NEAR(tweet / 2000, 0.5, 0.03) << "tweet " << tweet << " sql " << sql;
  // Gateway-side accounting per target model.
  EXPECT_TRUE(eventually([&] {
    return gw.metric("tidegate_requests_total",
                     {{"model", "lora-request"}, {"target_model", "sql-lora"}, {"status", "200"}}) >
           100;
  }));
}

TEST(Gateway, AdapterMissingOnOneEndpointGoesToTheOneThatHasIt) {
  Engine with(
      {"--served-model-name", "base", "--time-scale", "inf", "--lora-modules", "sql-lora=/l/sql"});
  Engine without({"--served-model-name", "base", "--time-scale", "inf"});
  Serve gw(gatewayDoc() +
           "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n"
           "metadata: {name: p}\nspec: {targetPortNumber: 8000, selector: {app: x}}\n" +
           endpointsDoc("e", "x", {&with, &without}));
  ASSERT_TRUE(waitReady(gw, 2));
  ASSERT_TRUE(eventually([&] {
    return gw.post("/v1/completions", R"({"model":"sql-lora","prompt":"x","max_tokens":1})")
               .status == 200;
  }));
  for (int i = 0; i < 40; ++i) {
    auto r = gw.post("/v1/completions", R"({"model":"sql-lora","prompt":"select","max_tokens":2})");
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.header("x-tidegate-endpoint"), "127.0.0.1:" + std::to_string(with.port));
  }
  EXPECT_EQ(without.metric("vllm:prompt_tokens_total"), 0);
  // Base-model requests still use both.
  for (int i = 0; i < 40; ++i)
    ASSERT_EQ(gw.post("/v1/completions", R"({"model":"base","prompt":"x","max_tokens":2})").status,
              200u);
  EXPECT_GT(without.metric("vllm:prompt_tokens_total"), 0);
}

// Sends `n` requests from `c` closed-loop threads; `send(i)` sends request i. Meanwhile samples
// both engines' queues and returns the mean absolute difference of (running + waiting).
template <class Send>
double imbalance(const Engine& a, const Engine& b, int n, int c, Send send) {
  std::atomic<int> next{0};
  std::atomic<bool> done{false};
  std::vector<double> diffs;
  std::thread sampler([&] {
    while (!done) {
      const double qa =
          a.metric("vllm:num_requests_running") + a.metric("vllm:num_requests_waiting");
      const double qb =
          b.metric("vllm:num_requests_running") + b.metric("vllm:num_requests_waiting");
      diffs.push_back(std::fabs(qa - qb));
      std::this_thread::sleep_for(10ms);
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < c; ++t)
    workers.emplace_back([&] {
      for (int i; (i = next++) < n;) EXPECT_EQ(send(i), 200u);
    });
  for (auto& w : workers) w.join();
  done = true;
  sampler.join();
  double sum = 0;
  for (double d : diffs) sum += d;
  return diffs.empty() ? 0 : sum / static_cast<double>(diffs.size());
}

TEST(Gateway, PickerBalancesSkewedLoadBetterThanRoundRobin) {
  // Skew: one replica is five times slower (e.g. an older GPU). Round robin gives both the same
  // share, so the slow one's queue grows; the picker follows queue and in-flight counts.
  const std::vector<std::string> common = {"--served-model-name", "m", "--step-noise", "0",
                                           "--max-num-seqs",      "4"};
  auto fast_flags = common, slow_flags = common;
  fast_flags.insert(fast_flags.end(), {"--step-ms", "2"});
  slow_flags.insert(slow_flags.end(), {"--step-ms", "10"});
  Engine fast(fast_flags), slow(slow_flags);
  Serve gw(gatewayDoc("  scrape: {interval: 20ms}\n") +
           "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n"
           "metadata: {name: p}\nspec: {targetPortNumber: 8000, selector: {app: x}}\n" +
           endpointsDoc("e", "x", {&fast, &slow}));
  ASSERT_TRUE(waitReady(gw, 2));
  const std::string body = R"({"model":"m","prompt":"x","max_tokens":10})";
  const int n = 160, c = 12;
  const double rr = imbalance(fast, slow, n, c, [&](int i) {
    const Engine& e = i % 2 ? slow : fast;
    return e.post("/v1/completions", body).status;
  });
  const double picked =
      imbalance(fast, slow, n, c, [&](int) { return gw.post("/v1/completions", body).status; });
  RecordProperty("round_robin_imbalance", std::to_string(rr));
  RecordProperty("picker_imbalance", std::to_string(picked));
  EXPECT_LT(picked, 0.6 * rr) << "round robin " << rr << ", picker " << picked;
}

TEST(Gateway, KillingAnEngineMidRunLosesNoRequestThatHadNotStartedStreaming) {
  auto a = std::make_unique<Engine>(
      std::vector<std::string>{"--served-model-name", "m", "--step-ms", "3"});
  Engine b({"--served-model-name", "m", "--step-ms", "3"});
  Serve gw(gatewayDoc("  scrape: {interval: 20ms}\n") +
           "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n"
           "metadata: {name: p}\nspec: {targetPortNumber: 8000, selector: {app: x}}\n" +
           endpointsDoc("e", "x", {a.get(), &b}));
  ASSERT_TRUE(waitReady(gw, 2));
  const std::string json = "/tmp/tidegate-kill-" + std::to_string(::getpid()) + ".json";
  ChildProcess bench({binaryPath(), "bench", "--url", "http://127.0.0.1:" + std::to_string(gw.port),
                      "--model", "m", "-c", "16", "-z", "3s", "--no-stream", "--max-tokens", "20",
                      "--progress", "off", "--json", json},
                     true);
  ASSERT_TRUE(eventually([&] { return a->metric("vllm:num_requests_running") > 0; }));
  std::this_thread::sleep_for(300ms);
  a->proc.stop(SIGKILL);
  ASSERT_GE(bench.wait(60s), 0);
  std::ifstream in(json);
  std::stringstream ss;
  ss << in.rdbuf();
  std::remove(json.c_str());
  auto s = bj::parse(ss.str()).as_object();
  EXPECT_GT(s.at("requests").at("completed").as_int64(), 10);  // work continued past the kill
  EXPECT_EQ(s.at("requests").at("failed"), 0) << ss.str();
  EXPECT_GT(gw.metric("tidegate_upstream_retries_total"), 0);  // in-flight ones were retried
}

std::string streamText(std::uint16_t port, const std::string& body) {
  auto r = http::fetch(
      "127.0.0.1", port,
      {.method = "POST",
       .target = "/v1/chat/completions",
       .body = body,
       .headers = {{"Content-Type", "application/json"}, {"x-request-id", "fixed-id"}}});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200u);
  return std::regex_replace(r->body, std::regex(R"("created":\d+)"), R"("created":0)");
}

TEST(Gateway, StreamIsByteForByteWhatTheEngineSendsTheClient) {
  Engine e({"--served-model-name", "m", "--time-scale", "100"});
  Serve gw(gatewayDoc() +
           "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n"
           "metadata: {name: p}\nspec: {targetPortNumber: 8000, selector: {app: x}}\n" +
           endpointsDoc("e", "x", {&e}));
  ASSERT_TRUE(waitReady(gw));
  const std::string req =
      R"({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":12,"seed":7,"stream":true)";
  // The gateway asks the engine for usage in every chunk (to account streams a client drops);
  // a client that asked for none gets exactly the stream the engine sends such a client.
  const auto plain = streamText(e.port, req + "}");
  const auto via = streamText(gw.port, req + "}");
  EXPECT_EQ(via, plain);
  const auto direct = streamText(e.port, req + R"(,"stream_options":{"include_usage":true}})");
  // A client that asks for usage gets the engine's stream unchanged.
  EXPECT_EQ(streamText(gw.port, req + R"(,"stream_options":{"include_usage":true}})"), direct);
  // Accounting happens once the stream has ended, just after the last byte went out.
  EXPECT_TRUE(eventually([&] {
    return gw.metric("tidegate_completion_tokens_total", {{"model", "m"}}) == 24;
  }));
}

TEST(Gateway, BadRequestsGetOpenAiErrorsAndMetricsPassPromtool) {
  Engine e({"--served-model-name", "m", "--time-scale", "inf"});
  Serve gw(gatewayDoc("  limits: {maxBodyBytes: 65536}\n") +
           "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n"
           "metadata: {name: p}\nspec: {targetPortNumber: 8000, selector: {app: x}}\n" +
           endpointsDoc("e", "x", {&e}));
  ASSERT_TRUE(waitReady(gw));
  struct Case {
    std::string method, target, body, content_type;
    unsigned status;
    std::string type;
  } cases[] = {
      {"POST", "/v1/chat/completions", "{bad", "application/json", 400, "invalid_request_error"},
      {"POST", "/v1/chat/completions", R"({"messages":[]})", "application/json", 400,
       "invalid_request_error"},
      {"POST", "/v1/chat/completions", R"({"model":"nope","messages":[]})", "application/json", 404,
       "not_found_error"},
      {"GET", "/v1/chat/completions", "", "", 405, "invalid_request_error"},
      {"POST", "/v1/completions", R"({"model":"m","prompt":"x"})", "text/plain", 415,
       "invalid_request_error"},
      {"POST", "/v1/completions", R"({"model":"m","prompt":")" + std::string(70000, 'x') + "\"}",
       "application/json", 413, "invalid_request_error"},
      {"GET", "/nope", "", "", 404, "not_found_error"},
  };
  for (const auto& c : cases) {
    http::Headers h;
    if (!c.content_type.empty()) h.emplace_back("Content-Type", c.content_type);
    auto r = http::fetch("127.0.0.1", gw.port,
                         {.method = c.method, .target = c.target, .body = c.body, .headers = h});
    ASSERT_TRUE(r.ok()) << c.target;
    EXPECT_EQ(r->status, c.status) << c.method << " " << c.target << " " << c.body.substr(0, 60);
    auto err = bj::parse(r->body).at("error").as_object();
    EXPECT_EQ(std::string(err.at("type").as_string()), c.type) << r->body;
  }
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(
        gw.post(
              "/v1/chat/completions",
              R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":3,"stream":true})")
            .status,
        200u);
  auto models = bj::parse(gw.post("/v1/models", "").body);  // POST: 405 body, still JSON
  EXPECT_TRUE(models.is_object());
  auto list = http::fetch("127.0.0.1", gw.port, {.method = "GET", .target = "/v1/models"});
  EXPECT_NE(list->body.find("\"id\":\"m\""), std::string::npos);
  EXPECT_EQ(gw.admin("/healthz").status, 200u);
  EXPECT_EQ(gw.admin("/readyz").status, 200u);
  auto state = bj::parse(gw.admin("/admin/state").body).as_object();
  EXPECT_EQ(state.at("pools").as_array()[0].at("endpoints").as_array()[0].at("ready"), true);
  EXPECT_FALSE(state.at("recent_picks").as_array().empty());

  const auto text = gw.admin("/metrics").body;
  for (const char* name :
       {"tidegate_requests_total", "tidegate_request_duration_seconds_bucket",
        "tidegate_time_to_first_token_seconds_bucket",
        "tidegate_inter_token_latency_seconds_bucket", "tidegate_completion_tokens_total",
        "tidegate_pool_ready_endpoints", "tidegate_pool_saturated", "tidegate_endpoint_queue",
        "tidegate_picker_decisions_total"})
    EXPECT_NE(text.find(name), std::string::npos) << name;
  const std::string path = "/tmp/tidegate-gw-metrics-" + std::to_string(::getpid());
  std::ofstream(path) << text;
  auto check = runCommand({"/bin/sh", "-c", "promtool check metrics < " + path});
  std::remove(path.c_str());
  EXPECT_EQ(check.exit_code, 0) << check.output;
}

TEST(Gateway, NoReadyEndpointIs503AndSighupReloads) {
  Engine e({"--served-model-name", "m", "--time-scale", "inf"});
  const std::string pool =
      "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n"
      "metadata: {name: p}\nspec: {targetPortNumber: 8000, selector: {app: x}}\n"
      "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\n"
      "metadata: {name: chat}\nspec: {modelName: chat, poolRef: {name: p}, targetModels: [{name: "
      "m}]}\n";
  // The endpoint address points at nothing: no ready endpoint.
  Serve gw(gatewayDoc() + pool +
           "---\napiVersion: tidegate.io/v1alpha1\nkind: Endpoints\nmetadata: {name: e, labels: "
           "{app: x}}\n"
           "spec: {addresses: [\"127.0.0.1:1\"]}\n");
  auto r = gw.post("/v1/completions", R"({"model":"chat","prompt":"x","max_tokens":2})");
  EXPECT_EQ(r.status, 503u) << r.body;
  EXPECT_EQ(gw.admin("/readyz").status, 503u);
  // Fix the configuration and reload with SIGHUP.
  gw.rewrite(gatewayDoc() + pool + endpointsDoc("e", "x", {&e}));
  ::kill(gw.proc->pid(), SIGHUP);
  ASSERT_TRUE(eventually([&] {
    return gw.post("/v1/completions", R"({"model":"chat","prompt":"x","max_tokens":2})").status ==
           200;
  }));
  // A broken configuration is rejected; the running one stays.
  gw.rewrite("kind: Nonsense\n");
  ::kill(gw.proc->pid(), SIGHUP);
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(gw.proc->running());
  EXPECT_EQ(gw.post("/v1/completions", R"({"model":"chat","prompt":"x","max_tokens":2})").status,
            200u);
}

}  // namespace
}  // namespace tidegate::testing

namespace tidegate::testing {
namespace {

TEST(Gateway, OfficialOpenAiNodeClientStreamsThroughIt) {
  const std::string dir = std::string(TIDEGATE_SOURCE_DIR) + "/tests/node";
  Engine a(loraEngine({"--time-scale", "100"}));
  Serve gw(gatewayDoc() + seedExample() + endpointsDoc("engines", "vllm-llama2-7b-pool", {&a}));
  ASSERT_TRUE(waitReady(gw));
  // No Host header match here: routing by model name (the InferenceModel claims lora-request).
  auto r = runCommand({"/usr/bin/env", "TIDEGATE_URL=http://127.0.0.1:" + std::to_string(gw.port),
                       "node", "--test", dir + "/openai_stream.test.mjs"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("# pass 2"), std::string::npos) << r.output;
}

// The same client over HTTPS, trusting the test CA the way Node users do (NODE_EXTRA_CA_CERTS)
// and reaching the gateway by the DNS name in its certificate.
TEST(Gateway, OfficialOpenAiNodeClientStreamsThroughItOverHttps) {
  const std::string dir = std::string(TIDEGATE_SOURCE_DIR) + "/tests/node";
  TestCerts certs;
  Engine a(loraEngine({"--time-scale", "100"}));
  Serve gw(gatewayDoc("  tls: {certificateFile: " + certs.crt("server") +
                      ", keyFile: " + certs.key("server") + "}\n") +
           seedExample() + endpointsDoc("engines", "vllm-llama2-7b-pool", {&a}));
  ASSERT_TRUE(waitReady(gw));
  auto r = runCommand({"/usr/bin/env", "TIDEGATE_URL=https://localhost:" + std::to_string(gw.port),
                       "NODE_EXTRA_CA_CERTS=" + certs.crt("ca"), "node", "--test",
                       dir + "/openai_stream.test.mjs"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("# pass 2"), std::string::npos) << r.output;
  EXPECT_GE(gw.metric("tidegate_tls_handshakes_total"), 1);
}

}  // namespace
}  // namespace tidegate::testing

namespace tidegate::testing {
namespace {

const std::string kPoolDoc =
    "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n"
    "metadata: {name: p}\nspec: {targetPortNumber: 8000, selector: {app: x}}\n";

TEST(Gateway, SaturatedPoolShedsSheddableRequestsOnly) {
  // One running sequence at a time: a few long requests fill the queue past the threshold.
  Engine e({"--served-model-name", "m", "--max-num-seqs", "1", "--step-ms", "20"});
  Serve gw(gatewayDoc("  scrape: {interval: 20ms}\n  saturation: {queueThreshold: 1}\n") +
           kPoolDoc +
           "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\n"
           "metadata: {name: batch}\nspec: {modelName: batch, criticality: Sheddable, poolRef: "
           "{name: p}, targetModels: [{name: m}]}\n"
           "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\n"
           "metadata: {name: chat}\nspec: {modelName: chat, criticality: Critical, poolRef: {name: "
           "p}, targetModels: [{name: m}]}\n" +
           endpointsDoc("e", "x", {&e}));
  ASSERT_TRUE(waitReady(gw));
  std::vector<std::future<http::Response>> longs;
  for (int i = 0; i < 4; ++i)
    longs.push_back(std::async(std::launch::async, [&] {
      return gw.post("/v1/completions", R"({"model":"chat","prompt":"x","max_tokens":60})");
    }));
  ASSERT_TRUE(eventually([&] { return gw.metric("tidegate_pool_saturated") == 1; }));
  auto shed = gw.post("/v1/completions", R"({"model":"batch","prompt":"x","max_tokens":2})");
  EXPECT_EQ(shed.status, 429u) << shed.body;
  EXPECT_EQ(shed.header("x-tidegate-dropped-reason"), "saturated");
  EXPECT_EQ(std::string(bj::parse(shed.body).at("error").at("type").as_string()),
            "rate_limit_error");
  // Critical traffic is still admitted (and queues).
  auto critical = std::async(std::launch::async, [&] {
    return gw.post("/v1/completions", R"({"model":"chat","prompt":"x","max_tokens":2})");
  });
  EXPECT_EQ(critical.get().status, 200u);
  for (auto& f : longs) EXPECT_EQ(f.get().status, 200u);
}

TEST(Gateway, UpstreamFailingMidStreamEndsTheStreamWithAnErrorEvent) {
  auto e = std::make_unique<Engine>(
      std::vector<std::string>{"--served-model-name", "m", "--step-ms", "20"});
  Serve gw(gatewayDoc() + kPoolDoc + endpointsDoc("e", "x", {e.get()}));
  ASSERT_TRUE(waitReady(gw));
  std::vector<std::string> events;
  SseParser parser;
  bool killed = false;
  auto r = http::fetch("127.0.0.1", gw.port,
                       {.method = "POST",
                        .target = "/v1/completions",
                        .body = R"({"model":"m","prompt":"x","max_tokens":500,"stream":true})",
                        .headers = {{"Content-Type", "application/json"}},
                        .timeout_s = 30},
                       [&](std::string_view d) {
                         EXPECT_TRUE(parser.feed(d, events));
                         if (!killed && events.size() >= 3) {
                           killed = true;
                           e->proc.stop(SIGKILL);
                         }
                         return true;
                       });
  ASSERT_TRUE(r.ok()) << r.error().message;  // the chunked body ended properly
  EXPECT_EQ(r->status, 200u);
  ASSERT_GE(events.size(), 4u);
  auto last = bj::parse(events.back()).as_object();
  EXPECT_EQ(std::string(last.at("error").at("code").as_string()), "upstream_error")
      << events.back();
  EXPECT_NE(events.back(), "[DONE]");
}

}  // namespace
}  // namespace tidegate::testing

namespace tidegate::testing {
namespace {

TEST(Gateway, MetricLabelsStayBoundedAndValidWhateverClientsSend) {
  Engine e({"--served-model-name", "m", "--time-scale", "inf"});
  Serve gw(gatewayDoc() + kPoolDoc + endpointsDoc("e", "x", {&e}));
  ASSERT_TRUE(waitReady(gw));
  ASSERT_EQ(gw.post("/v1/completions", R"({"model":"m","prompt":"x","max_tokens":1})").status,
            200u);
  // 500 made-up model names, one with a byte that is not UTF-8.
  for (int i = 0; i < 500; ++i) {
    const std::string model = i == 0 ? "bad\xff\xfe" : "made-up-" + std::to_string(i);
    auto r = gw.post("/v1/completions", R"({"model":")" + model + R"(","prompt":"x"})");
    EXPECT_EQ(r.status, 404u) << model;
  }
  const auto text = gw.admin("/metrics").body;
  auto scrape = prom::parse(text);
  ASSERT_TRUE(scrape.ok()) << scrape.error().message;
  std::set<std::string> models;
  for (const auto& s : scrape->samples)
    if (s.name == "tidegate_requests_total" || s.name == "tidegate_key_requests_total")
      models.insert(std::string(s.label("model")));
  EXPECT_EQ(models, (std::set<std::string>{"m", "other"}));
  EXPECT_EQ(gw.metric("tidegate_requests_total", {{"model", "other"}, {"status", "404"}}), 500);
  const std::string path = "/tmp/tidegate-gw-labels-" + std::to_string(::getpid());
  std::ofstream(path) << text;
  auto check = runCommand({"/bin/sh", "-c", "promtool check metrics < " + path});
  std::remove(path.c_str());
  EXPECT_EQ(check.exit_code, 0) << check.output;
}

}  // namespace
}  // namespace tidegate::testing

namespace tidegate::testing {
namespace {

// A client that connects with a tiny receive buffer, sends `request` and never reads.
int stalledClient(std::uint16_t port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int small = 4096;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  return fd;
}

TEST(Gateway, AClientThatStopsReadingAStreamLosesItAndFreesTheEngine) {
  Engine e({"--served-model-name", "m", "--time-scale", "inf", "--max-model-len", "200000",
            "--kv-blocks", "20000"});
  const std::string db = "/tmp/tidegate-stall-" + std::to_string(::getpid()) + ".db";
  Serve gw(gatewayDoc("  timeouts: {idle: 1s}\n  ledger: {path: " + db + "}\n") + kPoolDoc +
           endpointsDoc("e", "x", {&e}));
  ASSERT_TRUE(waitReady(gw));
  const std::string body = R"({"model":"m","prompt":"x","max_tokens":150000,"stream":true})";
  const int fd = stalledClient(gw.port,
                               "POST /v1/completions HTTP/1.1\r\nHost: gw\r\n"
                               "Content-Type: application/json\r\nContent-Length: " +
                                   std::to_string(body.size()) + "\r\n\r\n" + body);
  ASSERT_TRUE(eventually([&] { return e.metric("vllm:num_requests_running") == 1; }));
  // The client is still connected but reads nothing: after the idle timeout the gateway gives
  // up on it, cancels the engine's request and frees its in-flight slot.
  EXPECT_TRUE(eventually([&] { return e.metric("vllm:num_requests_running") == 0; }, 20s));
  EXPECT_TRUE(eventually([&] { return gw.metric("tidegate_endpoint_inflight") == 0; }));
  EXPECT_TRUE(eventually([&] {
    return gw.metric("tidegate_requests_total", {{"model", "m"}, {"status", "499"}}) == 1;
  }));
  // The ledger has the request, with the tokens the engine produced before it was cancelled.
  EXPECT_TRUE(eventually([&] {
    auto u = bj::parse(gw.admin("/admin/usage").body).as_object();
    return u.at("total").at("requests").as_int64() == 1 &&
           u.at("total").at("completion_tokens").as_int64() > 0;
  }));
  ::close(fd);
  std::remove(db.c_str());
}

// ---- Configuration as the ecosystem writes it: HTTPRoute, InferenceObjective, rewrites ----

// An example's documents before its Endpoints (which name local ports), as shipped.
std::string exampleWithoutEndpoints(const std::string& name) {
  const auto s = readFile(std::string(TIDEGATE_SOURCE_DIR) + "/examples/" + name);
  return s.substr(0, s.find("---\napiVersion: tidegate.io/v1alpha1\nkind: Endpoints"));
}

std::string chatBody(const std::string& model) {
  return R"({"model":")" + model +
         R"(","messages":[{"role":"user","content":"Hello"}],"max_tokens":2})";
}

// examples/gateway-api.yaml as shipped, in front of real engines: HTTPRoute host, path and header
// matches choose the pool, a weighted rule is a canary, each pool rewrites model names its own
// way, and a host no route names routes by model name.
TEST(Gateway, HTTPRouteHostPathAndHeaderMatchesChooseThePool) {
  Engine s1({"--served-model-name", "llama-3.1-8b", "--time-scale", "inf"});
  Engine s2({"--served-model-name", "llama-3.1-8b", "--time-scale", "inf"});
  Engine c1({"--served-model-name", "llama-3.1-8b-v2", "--time-scale", "inf"});
  Serve gw(gatewayDoc("  workers: 1\n  seed: 7\n") + exampleWithoutEndpoints("gateway-api.yaml") +
           endpointsDoc("stable-engines", "llama-stable", {&s1, &s2}) +
           endpointsDoc("canary-engines", "llama-canary", {&c1}));
  ASSERT_TRUE(waitReady(gw, 3));
  auto post = [&](const std::string& host, const std::string& path, const std::string& body,
                  http::Headers headers = {}) {
    headers.emplace_back("Host", host);
    return gw.post(path, body, headers);
  };
  auto answered = [](const http::Response& r) {
    return std::string(bj::parse(r.body).at("model").as_string());
  };
  // A header and the same prefix outrank the prefix alone: the canary, its name rewritten.
  for (int i = 0; i < 20; ++i) {
    auto r = post("llm.example.com", "/v1/chat/completions", chatBody("llama-3.1-8b"),
                  {{"x-canary", "always"}});
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.header("x-tidegate-pool"), "llama-canary");
    EXPECT_EQ(answered(r), "llama-3.1-8b-v2");
  }
  // Without it, the weighted rule: 90% stable, 10% canary.
  int canary = 0;
  const int n = 300;
  for (int i = 0; i < n; ++i) {
    auto r = post("llm.example.com:8080", "/v1/chat/completions", chatBody("llama-3.1-8b"));
    ASSERT_EQ(r.status, 200u) << r.body;
    const bool to_canary = r.header("x-tidegate-pool") == "llama-canary";
    canary += to_canary;
    EXPECT_EQ(answered(r), to_canary ? "llama-3.1-8b-v2" : "llama-3.1-8b");
  }
  EXPECT_NEAR(double(canary) / n, 0.10, 0.05) << canary << " of " << n;
  // A wildcard host: its route's one rule takes completions only.
  for (const char* host : {"a.batch.example.com", "x.y.batch.example.com"}) {
    auto r =
        post(host, "/v1/completions", R"({"model":"llama-3.1-8b","prompt":"x","max_tokens":2})");
    ASSERT_EQ(r.status, 200u) << host << ": " << r.body;
    EXPECT_EQ(r.header("x-tidegate-pool"), "llama-stable");
  }
  auto unmatched = post("a.batch.example.com", "/v1/chat/completions", chatBody("llama-3.1-8b"));
  EXPECT_EQ(unmatched.status, 404u) << unmatched.body;
  EXPECT_NE(unmatched.body.find("No route rule for host a.batch.example.com"), std::string::npos)
      << unmatched.body;
  // A host no route names: by model name. A name no engine serves goes to the stable pool's
  // fallback rewrite.
  auto other = post("elsewhere.example.com", "/v1/chat/completions", chatBody("gpt-4o"));
  ASSERT_EQ(other.status, 200u) << other.body;
  EXPECT_EQ(other.header("x-tidegate-pool"), "llama-stable");
  EXPECT_EQ(answered(other), "llama-3.1-8b");
  // What a fallback took counts under the name asked for when it is a known one, else under
  // the bounded `other`.
  EXPECT_TRUE(eventually([&] {
    return gw.metric("tidegate_requests_total",
                     {{"model", "other"}, {"target_model", "llama-3.1-8b"}, {"status", "200"}}) ==
           1;
  }));
  EXPECT_GT(gw.metric("tidegate_requests_total", {{"model", "llama-3.1-8b"},
                                                  {"target_model", "llama-3.1-8b"},
                                                  {"pool", "llama-stable"},
                                                  {"status", "200"}}),
            200);
  EXPECT_GT(gw.metric("tidegate_requests_total", {{"model", "llama-3.1-8b"},
                                                  {"target_model", "llama-3.1-8b-v2"},
                                                  {"pool", "llama-canary"},
                                                  {"status", "200"}}),
            20);
}

// InferenceObjective: a request names one in the x-gateway-inference-objective header; under
// saturation a negative priority is shed (429), the others are admitted, as criticality did.
TEST(Gateway, ObjectiveHeaderShedsNegativePrioritiesUnderSaturation) {
  Engine e({"--served-model-name", "m", "--max-num-seqs", "1", "--step-ms", "20"});
  Serve gw(gatewayDoc("  scrape: {interval: 20ms}\n  saturation: {queueThreshold: 1}\n") +
           R"(apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: p}
spec: {selector: {matchLabels: {app: x}}, targetPorts: [{number: 8000}]}
---
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: q}
spec: {selector: {matchLabels: {app: nobody}}, targetPorts: [{number: 8000}]}
---
apiVersion: llm-d.ai/v1alpha2
kind: InferenceObjective
metadata: {name: batch}
spec: {priority: -1, poolRef: {name: p}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceObjective
metadata: {name: interactive}
spec: {priority: 10, poolRef: {name: p}}
---
apiVersion: llm-d.ai/v1alpha2
kind: InferenceObjective
metadata: {name: elsewhere}
spec: {priority: -1, poolRef: {name: q}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  hostnames: [llm.example.com]
  rules: [{backendRefs: [{group: inference.networking.k8s.io, kind: InferencePool, name: p}]}]
)" + endpointsDoc("e", "x", {&e}));
  ASSERT_TRUE(waitReady(gw));
  const std::string small = R"({"model":"m","prompt":"x","max_tokens":2})";
  auto post = [&](const std::string& objective, const std::string& body,
                  const std::string& header = "x-gateway-inference-objective") {
    http::Headers h{{"Host", "llm.example.com"}};
    if (!objective.empty()) h.emplace_back(header, objective);
    return gw.post("/v1/completions", body, h);
  };
  // Not saturated: every priority is served.
  ASSERT_EQ(post("batch", small).status, 200u);
  std::vector<std::future<http::Response>> longs;
  for (int i = 0; i < 4; ++i)
    longs.push_back(std::async(std::launch::async, [&] {
      return post("interactive", R"({"model":"m","prompt":"x","max_tokens":60})");
    }));
  ASSERT_TRUE(eventually([&] {
    return gw.metric("tidegate_pool_saturated", {{"pool", "p"}}) == 1;
  }));
  for (const char* header : {"x-gateway-inference-objective", "x-llm-d-inference-objective"}) {
    auto shed = post("batch", small, header);
    EXPECT_EQ(shed.status, 429u) << header << ": " << shed.body;
    EXPECT_EQ(shed.header("x-tidegate-dropped-reason"), "saturated");
  }
  // Positive, default and unknown priorities, and another pool's objective, are admitted (and
  // queue).
  std::vector<std::future<http::Response>> admitted;
  for (const char* objective : {"interactive", "", "no-such-objective", "elsewhere"})
    admitted.push_back(
        std::async(std::launch::async, [&, objective] { return post(objective, small); }));
  for (auto& f : admitted) EXPECT_EQ(f.get().status, 200u);
  for (auto& f : longs) EXPECT_EQ(f.get().status, 200u);
}

}  // namespace
}  // namespace tidegate::testing
