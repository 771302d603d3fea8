// Integration tests of `tidegate bench`: the real binary against real `tidegate engine`
// processes on 127.0.0.1, cross-checked with `hey`.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>
#include <cmath>
#include <fstream>
#include <regex>
#include <sstream>

#include "support/process.h"

namespace tidegate::testing {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;

std::string url(const Engine& e) { return "http://127.0.0.1:" + std::to_string(e.port); }

std::string tempPath(const std::string& suffix) {
  static int n = 0;
  return "/tmp/tidegate-bench-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + suffix;
}

bj::object readJson(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return bj::parse(ss.str()).as_object();
}

CommandResult bench(const Engine& e, std::vector<std::string> args, std::string* json = nullptr) {
  std::vector<std::string> argv{binaryPath(), "bench", "--url",      url(e),
                                "--model",    "m",     "--progress", "off"};
  argv.insert(argv.end(), args.begin(), args.end());
  if (json) {
    *json = tempPath(".json");
    argv.push_back("--json");
    argv.push_back(*json);
  }
  return runCommand(argv);
}

TEST(Bench, AgreesWithHeyOnCountsAndMeanLatency) {
  // Simulated GPU time dominates each request (about 5 steps of 20 ms), so both tools see the
  // same latency whatever the client overhead; no step noise.
  Engine e({"--served-model-name", "m", "--step-ms", "20", "--step-noise", "0"});
  const int n = 120, c = 4;
  std::string json;
  auto r = bench(e,
                 {"-n", std::to_string(n), "-c", std::to_string(c), "--no-stream",
                  "--no-ignore-eos", "--prompt-tokens", "2", "--max-tokens", "4"},
                 &json);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto s = readJson(json);
  const auto completed = s.at("requests").at("completed").as_int64();
  const double bench_mean = s.at("e2e_s").at("mean").as_double();

  auto h =
      runCommand({"/usr/bin/hey", "-n", std::to_string(n), "-c", std::to_string(c), "-m", "POST",
                  "-T", "application/json", "-d",
                  R"({"model":"m","messages":[{"role":"user","content":"a b"}],"max_tokens":4})",
                  url(e) + "/v1/chat/completions"});
  ASSERT_EQ(h.exit_code, 0) << h.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(h.output, m, std::regex(R"(\[200\]\s+(\d+) responses)")))
      << h.output;
  const long hey_ok = std::stol(m[1]);
  ASSERT_TRUE(std::regex_search(h.output, m, std::regex(R"(Average:\s+([0-9.]+) secs)")));
  const double hey_mean = std::stod(m[1]);

  EXPECT_EQ(completed, n);
  EXPECT_EQ(hey_ok, n);
  EXPECT_EQ(s.at("requests").at("failed"), 0);
  EXPECT_LT(std::fabs(bench_mean - hey_mean) / hey_mean, 0.10)
      << "bench mean " << bench_mean << " s, hey mean " << hey_mean << " s";
  std::remove(json.c_str());
}

TEST(Bench, StreamingMeasuresEveryToken) {
  Engine e({"--served-model-name", "m", "--time-scale", "10"});
  std::string json;
  const std::string csv = tempPath(".csv");
  auto r =
      bench(e, {"-c", "4", "-n", "40", "--max-tokens", "20", "--prompt-tokens", "64", "--csv", csv},
            &json);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("TTFT"), std::string::npos);  // the human table
  auto s = readJson(json);
  EXPECT_EQ(s.at("requests").at("completed"), 40);
  EXPECT_EQ(s.at("tokens").at("output"), 800);  // from usage
  EXPECT_EQ(s.at("itl_s").at("n"), 40 * 19);    // a gap between every two tokens
  EXPECT_GT(s.at("ttft_s").at("p50").as_double(), 0);
  EXPECT_LT(s.at("ttft_s").at("p50").as_double(), s.at("e2e_s").at("p50").as_double());
  EXPECT_EQ(s.at("models").at("m"), 40);
  EXPECT_GT(s.at("throughput").at("output_tokens_per_s").as_double(), 0);
  std::ifstream in(csv);
  std::string line;
  int rows = -1;
  while (std::getline(in, line)) ++rows;
  EXPECT_EQ(rows, 40);
  std::remove(json.c_str());
  std::remove(csv.c_str());
}

TEST(Bench, HtmlReportHasTheSummaryAndCharts) {
  Engine e({"--served-model-name", "m", "--time-scale", "10"});
  std::string json;
  const std::string html_path = tempPath(".html");
  auto r = bench(e,
                 {"--profile", "2s@5,2s@15", "--arrival", "constant", "--max-tokens", "10",
                  "--prompt-tokens", "16", "--slo", "ttft_p90<30s", "--report", html_path},
                 &json);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto s = readJson(json);
  const std::string html = readFile(html_path);
  std::remove(json.c_str());
  std::remove(html_path.c_str());
  // One self-contained, well-formed document: no script, nothing fetched from elsewhere.
  boost::property_tree::ptree tree;
  std::istringstream in(html);
  ASSERT_NO_THROW(boost::property_tree::read_xml(in, tree)) << html.substr(0, 2000);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  // The summary says what the JSON says, and names the run.
  const auto sent = std::to_string(s.at("requests").at("sent").as_int64());
  EXPECT_EQ(sent, "40");  // 2 s at 5/s, then 2 s at 15/s
  EXPECT_NE(html.find("requests sent</th><td class=\"num\">" + sent + "</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>ITL</td><td class=\"num\">" +
                      std::to_string(s.at("itl_s").at("n").as_int64()) + "</td>"),
            std::string::npos);
  EXPECT_NE(html.find("wave 2s@5,2s@15"), std::string::npos);
  EXPECT_NE(html.find("SLO ttft_p90&lt;30s</th><td>met"), std::string::npos);
  // Five charts: the TTFT and ITL distributions, throughput and errors, tokens, TTFT over time.
  int svgs = 0;
  for (auto at = html.find("<svg "); at != std::string::npos; at = html.find("<svg ", at + 1))
    ++svgs;
  EXPECT_EQ(svgs, 5);
  for (const char* title : {"TTFT distribution", "Inter-token latency distribution",
                            "Throughput and errors", "Output tokens", "TTFT over the run"})
    EXPECT_NE(html.find(title), std::string::npos) << title;
  // A file that cannot be written is bad input, reported before any load.
  auto bad = bench(e, {"-n", "3", "--report", "/nonexistent/dir/r.html"});
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("cannot write --report /nonexistent/dir/r.html"), std::string::npos)
      << bad.output;
}

TEST(Bench, BadInputExits2BeforeAnyLoad) {
  Engine e({"--served-model-name", "m", "--time-scale", "inf"});
  struct Case {
    std::vector<std::string> args;
    std::string message;
  } cases[] = {
      {{"--trace", "/nonexistent/trace.csv"}, "cannot read trace"},
      {{"--duration", "5x"}, "unknown unit 'x'"},
      {{"--profile", "30s@fast"}, "is not a number"},
      {{"--profile", "30s"}, "expected DURATION@RATE"},
      {{"--rate", "5"}, "say how long"},
      {{"-n", "5", "--prompt-tokens", "0"}, "at least 1"},
      {{"-n", "5", "--slo", "ttft<1s"}, "unknown statistic"},
      {{"-n", "5", "--endpoint", "edits"}, "--endpoint must be"},
      {{"-n", "5", "--header", "NoColon"}, "Name: value"},
      {{"-n", "5", "--rate", "3", "-c", "2"}, "one load shape"},
  };
  for (const auto& c : cases) {
    auto r = bench(e, c.args);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << r.output;
  }
  auto r = runCommand({binaryPath(), "bench", "--url", "http://127.0.0.1:1", "-n", "5"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("cannot connect"), std::string::npos) << r.output;
  // Nothing reached the engine.
  EXPECT_EQ(e.metric("vllm:prompt_tokens_total"), 0);
}

TEST(Bench, TargetDyingMidRunIsCountedNotACrash) {
  auto e = std::make_unique<Engine>(
      std::vector<std::string>{"--served-model-name", "m", "--step-ms", "5"});
  const std::string json = tempPath(".json");
  ChildProcess b({binaryPath(), "bench", "--url", url(*e), "--model", "m", "-c", "8", "-z", "5s",
                  "--max-tokens", "100", "--progress", "off", "--timeout", "3s", "--json", json},
                 true);
  ASSERT_TRUE(eventually([&] { return e->metric("vllm:num_requests_running") > 0; }));
  e->proc.stop(SIGKILL);
  const int st = b.wait(30s);
  ASSERT_GE(st, 0) << "bench hung after its target died";
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0) << b.readAll(1s);
  auto s = readJson(json);
  EXPECT_GT(s.at("requests").at("failed").as_int64(), 0);
  const auto& errors = s.at("errors").as_object();
  EXPECT_TRUE(errors.contains("reset") || errors.contains("connect")) << bj::serialize(errors);
  std::remove(json.c_str());
}

TEST(Bench, TimeoutBoundsEachRequest) {
  Engine e({"--served-model-name", "m", "--step-ms", "1000"});
  std::string json;
  auto r = bench(e, {"-n", "3", "-c", "3", "--max-tokens", "50", "--timeout", "300ms"}, &json);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto s = readJson(json);
  EXPECT_EQ(s.at("requests").at("failed"), 3);
  EXPECT_EQ(s.at("errors").at("timeout"), 3);
  std::remove(json.c_str());
}

TEST(Bench, SloVerdictSetsTheExitCode) {
  Engine e({"--served-model-name", "m", "--time-scale", "inf"});
  auto met = bench(e, {"-n", "10", "--max-tokens", "3", "--slo", "e2e_p99<60s,error_rate<1%"});
  EXPECT_EQ(met.exit_code, 0) << met.output;
  EXPECT_NE(met.output.find("met"), std::string::npos);
  auto missed = bench(e, {"-n", "10", "--max-tokens", "3", "--slo", "ttft_p50<1us"});
  EXPECT_EQ(missed.exit_code, 3) << missed.output;
  EXPECT_NE(missed.output.find("MISSED"), std::string::npos);
}

TEST(Bench, OpenLoopSendsOnSchedule) {
  Engine e({"--served-model-name", "m", "--time-scale", "inf"});
  std::string json;
  auto r = bench(
      e, {"--rate", "50", "--arrival", "constant", "--duration", "2s", "--max-tokens", "2"}, &json);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto s = readJson(json);
  EXPECT_EQ(s.at("requests").at("sent"), 100);  // t = 0, 0.02, ... 1.98
  EXPECT_EQ(s.at("requests").at("completed"), 100);
  EXPECT_GT(s.at("duration_s").as_double(), 1.9);  // the schedule was kept, not rushed
  auto p = bench(e, {"--profile", "1s@20,1s@0,1s@20", "--arrival", "constant", "--max-tokens", "2"},
                 &json);
  ASSERT_EQ(p.exit_code, 0) << p.output;
  EXPECT_EQ(readJson(json).at("requests").at("sent"), 40);
  std::remove(json.c_str());
}

TEST(Bench, TraceReplayKeepsTokenCountsAndPrefixSharing) {
  Engine e({"--served-model-name", "m", "--time-scale", "inf", "--max-model-len", "200000",
            "--kv-blocks", "100000", "--max-num-batched-tokens", "100000"});
  const std::string traces = std::string(TIDEGATE_SOURCE_DIR) + "/data/traces/";
  std::string json;
  auto azure = bench(e,
                     {"--trace", traces + "azure_llm_2023_code.csv", "--limit", "30",
                      "--time-scale", "100", "--endpoint", "completions"},
                     &json);
  ASSERT_EQ(azure.exit_code, 0) << azure.output;
  auto s = readJson(json);
  EXPECT_EQ(s.at("requests").at("completed"), 30);
  EXPECT_EQ(s.at("tokens").at("prompt"), 73839);  // the sum of the first 30 ContextTokens
  const double hits_before = e.metric("vllm:prefix_cache_hits_total");

  auto moon = bench(e,
                    {"--trace", traces + "mooncake_conversation.jsonl", "--limit", "40",
                     "--time-scale", "1000", "--endpoint", "completions"},
                    &json);
  ASSERT_EQ(moon.exit_code, 0) << moon.output;
  s = readJson(json);
  EXPECT_EQ(s.at("requests").at("completed"), 40);
  EXPECT_EQ(s.at("tokens").at("prompt"), 506280);
  // Every Mooncake conversation here starts with hash id 0: its 512-token block is shared.
  // (Requests that land in the same step as the first one miss: a block is cached once
  // computed, as in vLLM; so not all 39 followers need hit.)
  EXPECT_GE(e.metric("vllm:prefix_cache_hits_total") - hits_before, 30 * 512);
  std::remove(json.c_str());
}

}  // namespace
}  // namespace tidegate::testing
