#include "bench/workload.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "common/tokenizer.h"

namespace tidegate::bench {
namespace {

std::string content(const Planned& p) {
  auto v = boost::json::parse(p.body);
  if (v.as_object().contains("messages"))
    return std::string(v.at("messages").as_array()[0].at("content").as_string());
  return std::string(v.at("prompt").as_string());
}

TEST(Workload, PromptsHaveTheAskedTokenCountAndDiffer) {
  WorkloadConfig c;
  c.max_requests = 3;
  c.prompt_tokens = {200, 0};
  c.max_tokens = {17, 0};
  c.model = "m";
  Workload w(c);
  auto a = w.next(), b = w.next(), d = w.next();
  ASSERT_TRUE(a && b && d);
  EXPECT_FALSE(w.next());
  EXPECT_EQ(tokenizer::count(content(*a)), 200u);
  EXPECT_NE(content(*a), content(*b));
  auto body = boost::json::parse(a->body);
  EXPECT_EQ(body.at("max_tokens"), 17);
  EXPECT_EQ(body.at("model"), "m");
  EXPECT_EQ(body.at("stream"), true);
  EXPECT_EQ(body.at("stream_options").at("include_usage"), true);
  EXPECT_EQ(body.at("ignore_eos"), true);
  EXPECT_EQ(a->at, -1);  // closed loop: no schedule
}

TEST(Workload, SameSeedSameRequests) {
  WorkloadConfig c;
  c.shape = Shape::kRate;
  c.rate = 50;
  c.max_requests = 20;
  c.prompt_tokens = {50, 20};
  c.seed = 9;
  Workload x(c), y(c);
  for (int i = 0; i < 20; ++i) {
    auto a = x.next(), b = y.next();
    EXPECT_EQ(a->body, b->body);
    EXPECT_EQ(a->at, b->at);
  }
}

TEST(Workload, PoissonArrivalsHaveTheRequestedRate) {
  WorkloadConfig c;
  c.shape = Shape::kRate;
  c.rate = 100;
  c.duration_s = 100;
  c.prompt_tokens = {1, 0};
  Workload w(c);
  int n = 0;
  double last = 0;
  while (auto p = w.next()) {
    EXPECT_GE(p->at, last);
    last = p->at;
    ++n;
  }
  EXPECT_NEAR(n, 10000, 400);  // 4 standard deviations of a Poisson count
  EXPECT_LT(last, 100);
}

TEST(Workload, ProfileFollowsItsSegments) {
  WorkloadConfig c;
  c.shape = Shape::kProfile;
  c.poisson = false;
  c.profile = {{10, 2}, {10, 20}, {5, 0}, {10, 2}};
  c.prompt_tokens = {1, 0};
  Workload w(c);
  int per[4] = {0, 0, 0, 0};
  while (auto p = w.next()) {
    const int seg = p->at < 10 ? 0 : p->at < 20 ? 1 : p->at < 25 ? 2 : 3;
    ++per[seg];
  }
  EXPECT_EQ(per[0], 20);
  EXPECT_EQ(per[1], 200);
  EXPECT_EQ(per[2], 0);
  EXPECT_EQ(per[3], 20);
}

TEST(Workload, TraceReplayUsesTimesTokensAndSharedBlocks) {
  Trace t;
  t.format = "mooncake-jsonl";
  t.block_tokens = 512;
  t.rows = {{0.0, 700, 5, {1, 2}}, {1.0, 600, 7, {1, 3}}, {2.0, 300, 9, {4}}, {3.0, 40, 2, {}}};
  WorkloadConfig c;
  c.shape = Shape::kTrace;
  c.trace = &t;
  c.time_scale = 2;
  c.start_s = 1;
  c.chat = false;
  Workload w(c);
  auto a = w.next(), b = w.next();
  ASSERT_TRUE(a && b);
  EXPECT_DOUBLE_EQ(a->at, 0);    // rows before --start are skipped; times are rebased
  EXPECT_DOUBLE_EQ(b->at, 0.5);  // and divided by the time scale
  EXPECT_EQ(a->max_tokens, 7);
  EXPECT_EQ(tokenizer::count(content(*a)), 600u);
  EXPECT_EQ(tokenizer::count(content(*b)), 300u);

  WorkloadConfig all = c;
  all.start_s = 0;
  Workload v(all);
  auto r0 = v.next(), r1 = v.next();
  // Equal first hash id -> equal first 512-token block of text.
  std::vector<tokenizer::Piece> p0, p1;
  const auto c0 = content(*r0), c1 = content(*r1);
  tokenizer::split(c0, p0);
  tokenizer::split(c1, p1);
  EXPECT_EQ(c0.substr(0, p0[512].offset), c1.substr(0, p1[512].offset));
  EXPECT_NE(c0.substr(p0[512].offset, 40), c1.substr(p1[512].offset, 40));
}

TEST(Workload, TokenOutputIsTheTokenizationOfTheSameWords) {
  Trace t;
  t.format = "mooncake-jsonl";
  t.block_tokens = 512;
  t.rows = {{0.0, 700, 5, {1, 2}}, {1.0, 600, 7, {1, 3}}};
  WorkloadConfig c;
  c.shape = Shape::kTrace;
  c.trace = &t;
  c.chat = false;
  WorkloadConfig tc = c;
  tc.output = WorkloadConfig::Output::kTokens;
  Workload text(c), tokens(tc);
  for (int i = 0; i < 2; ++i) {
    auto a = text.next(), b = tokens.next();
    ASSERT_TRUE(a && b);
    EXPECT_TRUE(b->body.empty());
    ASSERT_EQ(b->tokens.size(), static_cast<std::size_t>(b->prompt_tokens));
    std::vector<std::uint32_t> ids;
    tokenizer::encode(content(*a), ids);
    ASSERT_EQ(ids.size(), b->tokens.size());
    // The same words: equal token ids (under the tokenizer) where the word ids are equal.
    for (std::size_t k = 1; k < ids.size(); ++k)
      EXPECT_EQ(ids[k] == ids[k - 1], b->tokens[k] == b->tokens[k - 1]) << k;
  }
  Workload again(tc);
  auto r0 = again.next(), r1 = again.next();
  // Shared hash id 1: the first block's ids are equal, the second's differ.
  EXPECT_TRUE(std::equal(r0->tokens.begin(), r0->tokens.begin() + 512, r1->tokens.begin()));
  EXPECT_FALSE(
      std::equal(r0->tokens.begin() + 512, r0->tokens.begin() + 600, r1->tokens.begin() + 512));
}

TEST(Workload, RateScaleMultipliesRatesAndTraceRows) {
  WorkloadConfig c;
  c.shape = Shape::kRate;
  c.rate = 10;
  c.duration_s = 100;
  c.rate_scale = 2.5;
  Workload w(c);
  int n = 0;
  while (w.next()) ++n;
  EXPECT_NEAR(n, 2500, 150);  // Poisson at 25/s for 100 s

  Trace t;
  t.format = "azure-csv";
  for (int i = 0; i < 1000; ++i) t.rows.push_back({i * 1.0, 10, 2, {}});
  for (double scale : {0.5, 1.0, 2.0, 3.3}) {
    WorkloadConfig tc;
    tc.shape = Shape::kTrace;
    tc.trace = &t;
    tc.rate_scale = scale;
    tc.output = WorkloadConfig::Output::kTokens;
    Workload tw(tc);
    int rows = 0;
    double last = -1;
    while (auto p = tw.next()) {
      ++rows;
      EXPECT_GE(p->at, last);  // arrivals stay in order
      EXPECT_LE(p->at, 999.0);
      last = p->at;
    }
    EXPECT_NEAR(rows, 1000 * scale, 1000 * scale * 0.06 + 1) << scale;
  }
}

}  // namespace
}  // namespace tidegate::bench
