#pragma once
// BusyWindow: the share of the last second the simulated GPU spent in forward passes — what
// `tidegate engine` exposes as DCGM_CUSTOM_PROCESS_SM_UTIL (the seed's autoscaling metric) and
// what `tidegate simulate`'s scrapes read, computed by the same code. Pure: callers pass times.

#include <algorithm>
#include <deque>
#include <utility>

namespace tidegate::engine {

class BusyWindow {
 public:
  static constexpr double kWindowS = 1.0;

  // Records a step that ran over [t0, t1]. Steps arrive in time order; a step that starts where
  // the previous one ended extends it (so back-to-back steps stay one interval).
  void add(double t0, double t1) {
    if (!busy_.empty() && t0 - busy_.back().second < 1e-4) {
      busy_.back().second = std::max(busy_.back().second, t1);
    } else {
      busy_.emplace_back(t0, t1);
    }
    while (!busy_.empty() && busy_.front().second < t1 - 2 * kWindowS) busy_.pop_front();
  }

  // Share of (t - 1 s, t] that was busy, 0..1. Steps recorded beyond `t` count up to `t` only.
  double share(double t) const {
    double busy = 0;
    for (const auto& [s, e] : busy_) {
      const double lo = std::max(s, t - kWindowS);
      const double hi = std::min(e, t);
      if (hi > lo) busy += hi - lo;
    }
    return std::min(1.0, busy / kWindowS);
  }

 private:
  std::deque<std::pair<double, double>> busy_;  // recent busy intervals, oldest first
};

}  // namespace tidegate::engine
