#pragma once
// TrafficHistory: the gateway's request rate, error rate and TTFT over the last minutes, for the
// console (/ui) and /admin/state's "traffic" section.
//
// Each second the control thread reads the gateway's own cumulative metrics
// (tidegate_requests_total and the TTFT histogram, summed over their labels: GatewayStats::
// trafficTotals) and keeps the difference from the previous reading. The request path is not
// touched: it updates only the counters and histograms it updates anyway, without a lock.
// TTFT percentiles of a second are interpolated inside the histogram's buckets, as PromQL's
// histogram_quantile does, so they are as coarse as the buckets (0.25, 0.5, 1, 2.5 s, ...).
//
// Threads: not thread-safe; the gateway's control thread samples it and serves the admin API.

#include <boost/json/value.hpp>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace tidegate::gateway {

// The gateway's cumulative request metrics at one moment.
struct TrafficTotals {
  double requests = 0;                         // responses sent, any status
  double errors = 0;                           // of them, with a status of 400 or more
  std::vector<double> ttft_bounds;             // the TTFT histogram's bounds
  std::vector<std::uint64_t> ttft_cumulative;  // summed over models: per bound, then +Inf
};

// One interval between two readings.
struct TrafficPoint {
  double at = 0;  // the end of the interval (the caller's clock, seconds)
  double requests_per_s = 0;
  double errors_per_s = 0;
  std::uint64_t ttfts = 0;  // first tokens (or responses) measured in the interval
  double ttft_p50 = 0;      // seconds; NaN when ttfts == 0
  double ttft_p90 = 0;
};

class TrafficHistory {
 public:
  // Keeps the last `capacity` intervals of the caller's sampling every `interval_s` (5 minutes
  // of one-second samples by default).
  explicit TrafficHistory(std::size_t capacity = 300, double interval_s = 1)
      : capacity_(capacity), interval_s_(interval_s) {}
  // How often the caller samples.
  double intervalSeconds() const { return interval_s_; }

  // Appends the interval since the previous call; the first call only takes the baseline. A
  // total that went down (a counter cannot; a histogram whose bounds changed can) starts a new
  // baseline instead of a negative rate. REQUIRES: `now` after the previous call's.
  void sample(double now, const TrafficTotals& totals);

  const std::deque<TrafficPoint>& points() const { return points_; }

  // {"interval_s": ..., "points": [{"age_s", "requests_per_s", "errors_per_s", "ttfts",
  // "ttft_p50_s", "ttft_p90_s"}, ...]} oldest first; a percentile without samples is null.
  boost::json::value toJson(double now) const;

  // The console's charts, standalone SVGs (common/report.h) over the last minutes with now at
  // x = 0: "requests" (requests and errors per second) and "ttft" (p50 and p90). "" for any
  // other name.
  std::string chart(std::string_view name, double now) const;

 private:
  std::size_t capacity_;
  double interval_s_;
  bool has_base_ = false;
  double base_at_ = 0;
  TrafficTotals base_;
  std::deque<TrafficPoint> points_;
};

}  // namespace tidegate::gateway
