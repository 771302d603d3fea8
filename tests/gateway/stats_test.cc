#include "gateway/stats.h"

#include <gtest/gtest.h>

namespace tidegate::gateway {
namespace {

double sample(const prom::Registry& r, const std::string& name, const prom::Labels& match) {
  auto s = prom::parse(r.render());
  EXPECT_TRUE(s.ok());
  const auto* x = s->find(name, match);
  return x ? x->value : -1;
}

TEST(GatewayStats, ResolvedChildrenAreTheFamiliesOwn) {
  prom::Registry reg;
  GatewayStats stats(reg);
  auto route = stats.route("chat", "base", "gpu");
  auto& ok = route->requests(200);
  EXPECT_EQ(&ok, &route->requests(200));  // resolved once
  ok.inc();
  route->requests(200).inc();
  route->requests(503).inc();
  route->requests(42).inc();  // no such status: counted as 500
  route->ttft.observe(0.2);
  EXPECT_EQ(
      sample(reg, "tidegate_requests_total",
             {{"model", "chat"}, {"target_model", "base"}, {"pool", "gpu"}, {"status", "200"}}),
      2);
  EXPECT_EQ(sample(reg, "tidegate_requests_total", {{"status", "503"}}), 1);
  EXPECT_EQ(sample(reg, "tidegate_requests_total", {{"status", "500"}}), 1);
  EXPECT_EQ(sample(reg, "tidegate_time_to_first_token_seconds_count", {{"model", "chat"}}), 1);
  // A second resolution of the same route shares the children (a new snapshot after a reload).
  stats.route("chat", "base", "gpu")->requests(200).inc();
  EXPECT_EQ(sample(reg, "tidegate_requests_total", {{"status", "200"}}), 3);

  auto pool = stats.pool("gpu");
  pool->picks[winnerIndex("queue")]->inc();
  pool->picks[winnerIndex("nonsense")]->inc();  // "tie"
  pool->upstreamError(relay::Outcome::kReset).inc();
  pool->retries->inc();
  EXPECT_EQ(sample(reg, "tidegate_picker_decisions_total", {{"winner", "queue"}}), 1);
  EXPECT_EQ(sample(reg, "tidegate_picker_decisions_total", {{"winner", "tie"}}), 1);
  EXPECT_EQ(sample(reg, "tidegate_upstream_errors_total", {{"kind", "reset"}}), 1);
  EXPECT_EQ(sample(reg, "tidegate_upstream_errors_total", {{"kind", "served"}}), -1);
  EXPECT_EQ(sample(reg, "tidegate_upstream_retries_total", {{"pool", "gpu"}}), 1);
}

}  // namespace
}  // namespace tidegate::gateway
