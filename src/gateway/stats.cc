#include "gateway/stats.h"

#include <cstdlib>

namespace tidegate::gateway {

namespace {
const std::vector<double> kLatency = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                      2.5,   5,    10,    20,   40,  80,   160, 600};
const std::vector<double> kItl = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075,
                                  0.1,   0.15,   0.2,   0.3,  0.5,   1,    2.5};

std::string_view winnerName(std::size_t i) {
  if (i < kScorerNames.size()) return kScorerNames[i];
  return i == kScorerNames.size() ? "single" : "tie";
}
}  // namespace

std::size_t winnerIndex(std::string_view winner) {
  for (std::size_t i = 0; i < kWinners; ++i)
    if (winnerName(i) == winner) return i;
  return kWinners - 1;
}

RouteStats::RouteStats(prom::Family<prom::Counter>& requests, std::string model, std::string target,
                       std::string pool, prom::Histogram& duration, prom::Histogram& ttft,
                       prom::Histogram& itl, prom::Counter& prompt, prom::Counter& completion)
    : duration(duration),
      ttft(ttft),
      itl(itl),
      prompt_tokens(prompt),
      completion_tokens(completion),
      requests_(requests, {std::move(model), std::move(target), std::move(pool)}) {}

GatewayStats::GatewayStats(prom::Registry& r)
    : requests_(r.counter("tidegate_requests_total",
                          "Requests by requested model, target model, pool and HTTP status.",
                          {"model", "target_model", "pool", "status"})),
      duration_(r.histogram("tidegate_request_duration_seconds",
                            "Time from request to the end of the response.", {"model"}, kLatency)),
      ttft_(r.histogram("tidegate_time_to_first_token_seconds",
                        "Time from request to the first token (streams) or the response.",
                        {"model"}, kLatency)),
      itl_(r.histogram("tidegate_inter_token_latency_seconds",
                       "Gaps between streamed token events.", {"model"}, kItl)),
      prompt_(r.counter("tidegate_prompt_tokens_total", "Prompt tokens, from upstream usage.",
                        {"model"})),
      completion_(r.counter("tidegate_completion_tokens_total",
                            "Completion tokens, from upstream usage.", {"model"})),
      upstream_errors_(r.counter("tidegate_upstream_errors_total",
                                 "Failed upstream attempts by pool and kind.", {"pool", "kind"})),
      retries_(r.counter("tidegate_upstream_retries_total", "Requests retried on another endpoint.",
                         {"pool"})),
      resends_(r.counter("tidegate_upstream_resends_total",
                         "Requests sent again on a fresh connection because the pooled one had "
                         "been closed by the engine before it answered (not retries).",
                         {"pool"})),
      picks_(r.counter("tidegate_picker_decisions_total",
                       "Endpoint picks by the scorer that decided them.", {"pool", "winner"})) {}

std::unique_ptr<RouteStats> GatewayStats::route(const std::string& model, const std::string& target,
                                                const std::string& pool) {
  return std::make_unique<RouteStats>(requests_, model, target, pool, duration_.with({model}),
                                      ttft_.with({model}), itl_.with({model}),
                                      prompt_.with({model}), completion_.with({model}));
}

TrafficTotals GatewayStats::trafficTotals() const {
  TrafficTotals t;
  requests_.forEach([&](const prom::Labels& labels, const prom::Counter& c) {
    t.requests += c.value();
    // The status is the family's last label; a number of 400 or more is an error.
    if (std::atoi(labels.back().second.c_str()) >= 400) t.errors += c.value();
  });
  t.ttft_bounds = kLatency;
  t.ttft_cumulative.assign(kLatency.size() + 1, 0);
  ttft_.forEach([&](const prom::Labels&, const prom::Histogram& h) {
    const auto c = h.cumulative();
    for (std::size_t i = 0; i < c.size() && i < t.ttft_cumulative.size(); ++i)
      t.ttft_cumulative[i] += c[i];
  });
  return t;
}

std::unique_ptr<PoolStats> GatewayStats::pool(const std::string& name) {
  auto p = std::make_unique<PoolStats>();
  for (std::size_t i = 0; i < kWinners; ++i)
    p->picks[i] = &picks_.with({name, std::string(winnerName(i))});
  for (std::size_t i = 0; i < p->upstream_errors.size(); ++i) {
    const auto o = static_cast<relay::Outcome>(i);
    // Only failures of an attempt are upstream errors.
    if (o == relay::Outcome::kServed || o == relay::Outcome::kNoEndpoint ||
        o == relay::Outcome::kClientGone)
      continue;
    p->upstream_errors[i] = &upstream_errors_.with({name, std::string(relay::outcomeKind(o))});
  }
  p->retries = &retries_.with({name});
  p->resends = &resends_.with({name});
  return p;
}

}  // namespace tidegate::gateway
