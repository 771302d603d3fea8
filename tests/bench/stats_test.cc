#include "bench/stats.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <sstream>

namespace tidegate::bench {
namespace {

TEST(Stats, PercentilesAreExactOnKnownInputs) {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);  // 1..100, unsorted
  auto p = percentiles(v);
  EXPECT_EQ(p.n, 100u);
  EXPECT_DOUBLE_EQ(p.mean, 50.5);
  EXPECT_DOUBLE_EQ(p.min, 1);
  EXPECT_DOUBLE_EQ(p.max, 100);
  // Linear interpolation between closest ranks (NumPy's default): position q*(n-1).
  EXPECT_DOUBLE_EQ(p.p50, 50.5);
  EXPECT_DOUBLE_EQ(p.p90, 90.1);
  EXPECT_DOUBLE_EQ(p.p95, 95.05);
  EXPECT_DOUBLE_EQ(p.p99, 99.01);
  std::vector<double> one{7};
  auto q = percentiles(one);
  EXPECT_EQ(q.p99, 7);
  std::vector<double> none;
  EXPECT_EQ(percentiles(none).n, 0u);
  std::vector<double> two{1, 2};
  EXPECT_DOUBLE_EQ(quantile(two, 0.25), 1.25);
}

Recorder sampleRecorder() {
  Recorder r;
  for (int i = 0; i < 10; ++i) {
    Record rec;
    rec.index = i;
    rec.ttft = 0.1 * (i + 1);
    rec.e2e = 1.0 * (i + 1);
    rec.status = 200;
    rec.prompt_tokens = 10;
    rec.output_tokens = 5;
    rec.model = i % 2 ? "tweet-summary" : "sql-lora";
    r.add(rec, {0.01, 0.02});
  }
  Record failed;
  failed.index = 10;
  failed.status = 429;
  failed.error = "http_429";
  r.add(failed, {5.0});  // ITLs of failed requests are not counted
  return r;
}

TEST(Stats, SummaryCountsAndThroughput) {
  auto r = sampleRecorder();
  auto s = summarize(r, 10.0, 0.5);
  EXPECT_EQ(s.sent, 11u);
  EXPECT_EQ(s.completed, 10u);
  EXPECT_EQ(s.failed, 1u);
  EXPECT_EQ(s.errors.at("http_429"), 1u);
  EXPECT_DOUBLE_EQ(s.requests_per_s, 1.0);
  EXPECT_DOUBLE_EQ(s.output_tokens_per_s, 5.0);
  EXPECT_EQ(s.itl.n, 20u);
  EXPECT_DOUBLE_EQ(s.itl.max, 0.02);
  EXPECT_EQ(s.models.at("sql-lora"), 5u);
  EXPECT_NEAR(s.client_cpu_us_per_request, 0.5e6 / 11, 1e-6);
  auto j = toJson(s);
  EXPECT_EQ(j.at("requests").at("sent"), 11);
  EXPECT_EQ(j.at("requests").at("completed"), 10);
  for (const char* k : {"ttft_s", "itl_s", "e2e_s"})
    for (const char* stat : {"mean", "p50", "p90", "p95", "p99"})
      EXPECT_TRUE(j.at(k).as_object().contains(stat)) << k << " " << stat;
  EXPECT_TRUE(j.at("throughput").as_object().contains("requests_per_s"));
  EXPECT_TRUE(j.at("throughput").as_object().contains("output_tokens_per_s"));
  EXPECT_NE(renderTable(s).find("http_429=1"), std::string::npos);
}

TEST(Stats, SloVerdicts) {
  auto r = sampleRecorder();
  auto s = summarize(r, 10.0, 0);
  auto checks = parseSlo("ttft_p50<1s,e2e_p99<2s,error_rate<=10%,error_rate<5%");
  ASSERT_TRUE(checks.ok());
  evaluateSlo(s, *checks);
  ASSERT_EQ(s.slo.size(), 4u);
  EXPECT_TRUE(s.slo[0].met);   // p50 TTFT 0.55 s
  EXPECT_FALSE(s.slo[1].met);  // p99 E2E 9.91 s
  EXPECT_TRUE(s.slo[2].met);   // 1/11 = 9.1%
  EXPECT_FALSE(s.slo[3].met);
  EXPECT_FALSE(s.sloMet());
  Recorder empty;
  auto e = summarize(empty, 0, 0);
  evaluateSlo(e, *parseSlo("ttft_p90<1s"));
  EXPECT_FALSE(e.sloMet());  // no samples prove nothing
}

TEST(Stats, CsvHasOneRowPerRequest) {
  auto r = sampleRecorder();
  std::ostringstream out;
  writeCsv(out, r.records());
  const auto text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 12);  // header + 11
  EXPECT_NE(text.find(",429,http_429,\"\""), std::string::npos);
}

}  // namespace
}  // namespace tidegate::bench
