#pragma once
// The gateway's own metrics, declared in one place, and their children resolved ahead of the
// request path: a snapshot resolves one RouteStats per (model, target model, pool) and one
// PoolStats per pool when it is built, so a request updates counters and histograms through
// plain pointers — no label vectors, no map lookups, no locks (prom metrics are relaxed atomics).
// The HTTP status of a request is the one label value not known in advance: each RouteStats
// resolves a status's counter on first use and keeps it in an atomic slot.
//
// Label values stay bounded: `model` carries only names the configuration or an engine's model
// list knows (kOther for anything else) and `kind`/`winner` come from fixed sets.
// Thread-safe.

#include <array>
#include <atomic>
#include <memory>
#include <string>

#include "common/prometheus.h"
#include "gateway/picker/picker.h"
#include "gateway/relay/retry_policy.h"
#include "gateway/traffic.h"

namespace tidegate::gateway {

// One (model, target model, pool): what its requests update.
class RouteStats {
 public:
  RouteStats(prom::Family<prom::Counter>& requests, std::string model, std::string target,
             std::string pool, prom::Histogram& duration, prom::Histogram& ttft,
             prom::Histogram& itl, prom::Counter& prompt, prom::Counter& completion);
  // The request counter for an HTTP status (resolved once per status, then lock-free).
  prom::Counter& requests(int status) { return requests_.at(status); }

  prom::Histogram& duration;
  prom::Histogram& ttft;
  prom::Histogram& itl;
  prom::Counter& prompt_tokens;
  prom::Counter& completion_tokens;

 private:
  prom::CountersByStatus requests_;
};

// The picker winners a pick can name: the scorers, "single" and "tie".
inline constexpr std::size_t kWinners = kScorerNames.size() + 2;
std::size_t winnerIndex(std::string_view winner);

// One pool: its picker decisions and upstream failures.
struct PoolStats {
  std::array<prom::Counter*, kWinners> picks{};
  std::array<prom::Counter*, static_cast<std::size_t>(relay::Outcome::kMidStream) + 1>
      upstream_errors{};
  prom::Counter* retries = nullptr;
  prom::Counter* resends = nullptr;

  prom::Counter& upstreamError(relay::Outcome o) {
    return *upstream_errors[static_cast<std::size_t>(o)];
  }
};

class GatewayStats {
 public:
  // The `model` label of a name neither the configuration nor any engine knows: label values
  // stay bounded whatever clients send (every distinct value is a new series in Prometheus).
  static constexpr const char* kOther = "other";

  explicit GatewayStats(prom::Registry& r);

  std::unique_ptr<RouteStats> route(const std::string& model, const std::string& target,
                                    const std::string& pool);
  std::unique_ptr<PoolStats> pool(const std::string& name);
  // The cumulative request count, error count and TTFT histogram over every label, read for
  // the console's traffic history (takes each family's mutex: control thread, not per request).
  TrafficTotals trafficTotals() const;
  // Requests refused before routing (no pool, no target): by model label and status.
  prom::Counter& refused(const std::string& model_label, int status) {
    return requests_.with({model_label, "", "", std::to_string(status)});
  }

 private:
  prom::Family<prom::Counter>& requests_;
  prom::Family<prom::Histogram>& duration_;
  prom::Family<prom::Histogram>& ttft_;
  prom::Family<prom::Histogram>& itl_;
  prom::Family<prom::Counter>& prompt_;
  prom::Family<prom::Counter>& completion_;
  prom::Family<prom::Counter>& upstream_errors_;
  prom::Family<prom::Counter>& retries_;
  prom::Family<prom::Counter>& resends_;
  prom::Family<prom::Counter>& picks_;
};

}  // namespace tidegate::gateway
