#include "gateway/traffic.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cmath>

#include "gateway/stats.h"

namespace tidegate::gateway {
namespace {

namespace bj = boost::json;

TrafficTotals totals(double requests, double errors, std::vector<std::uint64_t> ttft) {
  return {requests, errors, {0.1, 0.5, 1}, std::move(ttft)};
}

TEST(TrafficHistory, KeepsEachIntervalsRatesAndTtftPercentiles) {
  TrafficHistory h(3);
  h.sample(100, totals(10, 1, {0, 5, 5, 5}));  // the baseline only
  EXPECT_TRUE(h.points().empty());
  h.sample(102, totals(30, 5, {0, 5, 15, 15}));  // 20 requests in 2 s; 10 TTFTs in (0.5, 1]
  ASSERT_EQ(h.points().size(), 1u);
  const TrafficPoint& p = h.points().back();
  EXPECT_DOUBLE_EQ(p.at, 102);
  EXPECT_DOUBLE_EQ(p.requests_per_s, 10);
  EXPECT_DOUBLE_EQ(p.errors_per_s, 2);
  EXPECT_EQ(p.ttfts, 10u);
  EXPECT_DOUBLE_EQ(p.ttft_p50, 0.75);
  EXPECT_DOUBLE_EQ(p.ttft_p90, 0.95);
  // A quiet second: zero rates, no TTFT (NaN, null in JSON), not zero latency.
  h.sample(103, totals(30, 5, {0, 5, 15, 15}));
  EXPECT_DOUBLE_EQ(h.points().back().requests_per_s, 0);
  EXPECT_TRUE(std::isnan(h.points().back().ttft_p90));
  const auto j = h.toJson(104).as_object();
  const auto& pts = j.at("points").as_array();
  ASSERT_EQ(pts.size(), 2u);
  EXPECT_DOUBLE_EQ(pts[0].at("age_s").as_double(), 2);
  EXPECT_DOUBLE_EQ(pts[0].at("requests_per_s").as_double(), 10);
  EXPECT_TRUE(pts[1].at("ttft_p90_s").is_null());
  // Bounded: the oldest intervals go.
  for (int i = 0; i < 5; ++i) h.sample(104 + i, totals(30 + i, 5, {0, 5, 15, 15}));
  EXPECT_EQ(h.points().size(), 3u);
  EXPECT_DOUBLE_EQ(h.points().front().at, 106);
}

TEST(TrafficHistory, ATotalThatWentDownStartsANewBaseline) {
  TrafficHistory h;
  h.sample(1, totals(10, 0, {1, 1, 1, 1}));
  h.sample(2, totals(5, 0, {1, 1, 1, 1}));  // never a negative rate
  EXPECT_TRUE(h.points().empty());
  h.sample(3, totals(6, 0, {0, 0, 0, 0}));  // a histogram that went down: also a new baseline
  EXPECT_TRUE(h.points().empty());
  h.sample(4, totals(8, 0, {0, 0, 0, 0}));
  ASSERT_EQ(h.points().size(), 1u);
  EXPECT_DOUBLE_EQ(h.points().back().requests_per_s, 2);
  h.sample(4, totals(9, 0, {0, 0, 0, 0}));  // no time passed: no interval
  EXPECT_EQ(h.points().size(), 1u);
}

TEST(TrafficHistory, ChartsAreStandaloneSvgs) {
  TrafficHistory h;
  for (int i = 0; i <= 30; ++i)
    h.sample(i, totals(i * 4.0, i, {0, std::uint64_t(i), 2u * i, 2u * i}));
  const std::string requests = h.chart("requests", 30);
  EXPECT_EQ(requests.rfind("<svg", 0), 0u);
  for (const char* text :
       {"Requests per second", "responses", "errors (4xx, 5xx)", "time (0 is now)"})
    EXPECT_NE(requests.find(text), std::string::npos) << text;
  const std::string ttft = h.chart("ttft", 30);
  EXPECT_NE(ttft.find("Time to first token"), std::string::npos);
  EXPECT_NE(ttft.find("p90"), std::string::npos);
  EXPECT_EQ(ttft.find("nan"), std::string::npos);
  EXPECT_EQ(h.chart("other", 30), "");
  // The TTFT chart spans the whole history and ends now, though the last ten seconds had no
  // first token.
  for (int i = 31; i <= 40; ++i) h.sample(i, totals(120, 30, {0, 30, 60, 60}));
  const std::string late = h.chart("ttft", 40);
  EXPECT_NE(late.find(">-40s<"), std::string::npos) << late;
  EXPECT_NE(late.find(">0<"), std::string::npos) << late;
  // Nothing sampled yet still draws.
  EXPECT_NE(TrafficHistory().chart("ttft", 0).find("no data"), std::string::npos);
}

TEST(TrafficHistory, TotalsSumTheGatewaysOwnMetrics) {
  prom::Registry reg;
  GatewayStats stats(reg);
  auto a = stats.route("chat", "base", "gpu");
  auto b = stats.route("other-model", "base", "gpu");
  a->requests(200).inc(3);
  b->requests(200).inc();
  a->requests(503).inc();
  stats.refused("other", 429).inc();
  a->ttft.observe(0.2);
  b->ttft.observe(3);
  const TrafficTotals t = stats.trafficTotals();
  EXPECT_DOUBLE_EQ(t.requests, 6);
  EXPECT_DOUBLE_EQ(t.errors, 2);
  ASSERT_EQ(t.ttft_cumulative.size(), t.ttft_bounds.size() + 1);
  EXPECT_EQ(t.ttft_cumulative.back(), 2u);
}

}  // namespace
}  // namespace tidegate::gateway
