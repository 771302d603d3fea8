#include "gateway/stats.h"

namespace tidegate::gateway {

namespace {
const std::vector<double> kLatency = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                      2.5,   5,    10,    20,   40,  80,   160, 600};
const std::vector<double> kItl = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075,
                                  0.1,   0.15,   0.2,   0.3,  0.5,   1,    2.5};
}  // namespace

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

}  // namespace tidegate::gateway
