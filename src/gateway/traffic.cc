#include "gateway/traffic.h"

#include <boost/json.hpp>
#include <cmath>

#include "common/prometheus.h"
#include "common/report.h"

namespace tidegate::gateway {

namespace bj = boost::json;
namespace rp = tidegate::report;

void TrafficHistory::sample(double now, const TrafficTotals& totals) {
  const bool comparable = has_base_ && now > base_at_ && totals.ttft_bounds == base_.ttft_bounds &&
                          totals.ttft_cumulative.size() == base_.ttft_cumulative.size() &&
                          totals.requests >= base_.requests && totals.errors >= base_.errors;
  std::vector<std::uint64_t> delta(totals.ttft_cumulative.size());
  bool ttft_ok = comparable;
  for (std::size_t i = 0; ttft_ok && i < delta.size(); ++i) {
    ttft_ok = totals.ttft_cumulative[i] >= base_.ttft_cumulative[i];
    if (ttft_ok) delta[i] = totals.ttft_cumulative[i] - base_.ttft_cumulative[i];
  }
  if (ttft_ok) {
    const double dt = now - base_at_;
    TrafficPoint p{.at = now,
                   .requests_per_s = (totals.requests - base_.requests) / dt,
                   .errors_per_s = (totals.errors - base_.errors) / dt,
                   .ttfts = delta.empty() ? 0 : delta.back(),
                   .ttft_p50 = prom::histogramQuantile(0.5, totals.ttft_bounds, delta),
                   .ttft_p90 = prom::histogramQuantile(0.9, totals.ttft_bounds, delta)};
    points_.push_back(p);
    while (points_.size() > capacity_) points_.pop_front();
  }
  has_base_ = true;
  base_at_ = now;
  base_ = totals;
}

namespace {
bj::value orNull(double v) { return std::isfinite(v) ? bj::value(v) : bj::value(nullptr); }
}  // namespace

bj::value TrafficHistory::toJson(double now) const {
  bj::array points;
  for (const auto& p : points_)
    points.push_back(bj::object{{"age_s", now - p.at},
                                {"requests_per_s", p.requests_per_s},
                                {"errors_per_s", p.errors_per_s},
                                {"ttfts", p.ttfts},
                                {"ttft_p50_s", orNull(p.ttft_p50)},
                                {"ttft_p90_s", orNull(p.ttft_p90)}});
  return bj::object{{"interval_s", interval_s_}, {"points", std::move(points)}};
}

std::string TrafficHistory::chart(std::string_view name, double now) const {
  // Small enough for a dashboard tile; the same look as the bench and simulate reports.
  // Both charts span the whole history (up to the window), now always at the right edge,
  // however long a quiet spell left one of them without points.
  rp::LineChart c{.x = {.title = "time (0 is now)",
                        .format = rp::Format::kTime,
                        .min = points_.empty() ? 0 : points_.front().at - now,
                        .max = 0},
                  .width = 560,
                  .height = 240};
  const auto series = [&](std::string label, auto value) {
    rp::Series s{.name = std::move(label)};
    for (const auto& p : points_) s.points.push_back({p.at - now, value(p)});
    return s;
  };
  if (name == "requests") {
    c.title = "Requests per second";
    c.y = {.title = "requests/s"};
    c.series.push_back(series("responses", [](const TrafficPoint& p) { return p.requests_per_s; }));
    c.series.push_back(
        series("errors (4xx, 5xx)", [](const TrafficPoint& p) { return p.errors_per_s; }));
    c.series.back().color = std::string(rp::kPalette[3]);
  } else if (name == "ttft") {
    c.title = "Time to first token";
    c.y = {.title = "TTFT", .format = rp::Format::kLatency};
    // Seconds without a first token have no point (NaN): a gap, not a zero.
    c.series.push_back(series("p50", [](const TrafficPoint& p) { return p.ttft_p50; }));
    c.series.push_back(series("p90", [](const TrafficPoint& p) { return p.ttft_p90; }));
  } else {
    return "";
  }
  return rp::renderLineChart(c);
}

}  // namespace tidegate::gateway
