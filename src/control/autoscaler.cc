#include "control/autoscaler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tidegate::control {

Behavior Behavior::kubernetesDefaults() {
  Behavior b;
  b.scale_up.stabilization_s = 0;
  b.scale_up.policies = {{ScalingPolicy::Type::kPercent, 100, 15},
                         {ScalingPolicy::Type::kPods, 4, 15}};
  b.scale_up.select = ScalingRules::Select::kMax;
  b.scale_down.stabilization_s = 300;
  b.scale_down.policies = {{ScalingPolicy::Type::kPercent, 100, 15}};
  b.scale_down.select = ScalingRules::Select::kMax;
  return b;
}

std::optional<Proposal> proposeForMetric(const std::string& metric, double target, double tolerance,
                                         const Observation& obs, bool use_short_window) {
  if (target <= 0) return std::nullopt;
  double sum = 0;
  int with_value = 0, missing = 0, unready = 0;
  for (const auto& r : obs.replicas) {
    const auto& values = use_short_window ? r.short_values : r.values;
    auto it = values.find(metric);
    if (!r.ready) {
      ++unready;  // Kubernetes ignores not-ready pods' values (they may be warming up)
    } else if (it == values.end()) {
      ++missing;
    } else {
      sum += it->second;
      ++with_value;
    }
  }
  if (with_value == 0) return std::nullopt;  // no data: no proposal from this metric
  const double average = sum / with_value;
  const double ratio = average / target;
  if (missing == 0 && unready == 0) {
    if (std::fabs(ratio - 1) <= tolerance) return Proposal{obs.current, average};
    return Proposal{static_cast<int>(std::ceil(ratio * with_value)), average};
  }
  // Fill the gaps conservatively, then check the direction still holds.
  double filled = sum;
  int count = with_value;
  if (ratio < 1) {
    filled += missing * target;  // missing replicas might be busy: assume 100% when scaling down
    count += missing;
  } else {
    count += missing + unready;  // missing and not-ready replicas count as idle when scaling up
  }
  const double new_ratio = filled / count / target;
  if (std::fabs(new_ratio - 1) <= tolerance || (new_ratio > 1) != (ratio > 1))
    return Proposal{obs.current, average};
  return Proposal{static_cast<int>(std::ceil(new_ratio * count)), average};
}

namespace {

// The most the rules allow the count to move from `current`, given past changes.
int limitByPolicies(const ScalingRules& rules, int current, int desired, double now,
                    const std::deque<std::pair<double, int>>& changes, bool up) {
  if (rules.select == ScalingRules::Select::kDisabled) return current;
  if (rules.policies.empty()) return desired;
  std::optional<int> bound;
  for (const auto& p : rules.policies) {
    // Replicas at the start of the policy's period: undo the changes made within it.
    int changed = 0;
    for (const auto& [t, delta] : changes)
      if (t > now - p.period_s && ((up && delta > 0) || (!up && delta < 0))) changed += delta;
    const int start = current - changed;
    int limit;
    if (up) {
      const int room = p.type == ScalingPolicy::Type::kPods
                           ? p.value
                           : static_cast<int>(std::ceil(start * p.value / 100.0));
      limit = start + room;
    } else {
      const int room = p.type == ScalingPolicy::Type::kPods
                           ? p.value
                           : static_cast<int>(std::floor(start * p.value / 100.0));
      limit = start - room;
    }
    // Max selects the policy allowing the largest change; Min the smallest.
    const bool most = rules.select == ScalingRules::Select::kMax;
    if (!bound) {
      bound = limit;
    } else if (up) {
      bound = most ? std::max(*bound, limit) : std::min(*bound, limit);
    } else {
      bound = most ? std::min(*bound, limit) : std::max(*bound, limit);
    }
  }
  return up ? std::min(desired, *bound) : std::max(desired, *bound);
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

}  // namespace

Decision decide(const AutoscalerSpec& spec, const Observation& obs, double now,
                AutoscalerState& state) {
  Decision d;
  const int current = obs.current;
  // 1. Per-metric proposals; the largest wins.
  std::optional<int> best;
  for (const auto& [metric, target] : spec.targets) {
    auto p = proposeForMetric(metric, target, spec.tolerance, obs);
    if (!p) continue;
    if (!best || p->replicas > *best) {
      best = p->replicas;
      d.metric = metric;
      d.value = p->average;
      d.target = target;
    }
  }
  d.recommendation = best.value_or(current);

  // 2. Panic: a burst in the short window scales up at once and holds scale-down.
  int panic_rec = 0;
  if (spec.panic.enabled && current > 0) {
    for (const auto& [metric, target] : spec.targets) {
      auto p = proposeForMetric(metric, target, spec.tolerance, obs, /*short=*/true);
      if (p && p->replicas >= spec.panic.threshold * current) {
        panic_rec = std::max(panic_rec, p->replicas);
        state.panic_until = now + spec.panic.hold_s;
        if (p->replicas > d.recommendation) {
          d.metric = metric;
          d.value = p->average;
          d.target = target;
        }
      }
    }
  }
  d.panic = state.panic_until >= now;

  // 3. Stabilization over the recommendation history.
  state.recommendations.emplace_back(now, d.recommendation);
  const double keep =
      std::max(spec.behavior.scale_up.stabilization_s, spec.behavior.scale_down.stabilization_s);
  while (!state.recommendations.empty() && state.recommendations.front().first < now - keep)
    state.recommendations.pop_front();
  int up_floor = d.recommendation, down_ceiling = d.recommendation;
  for (const auto& [t, r] : state.recommendations) {
    if (t >= now - spec.behavior.scale_up.stabilization_s) up_floor = std::min(up_floor, r);
    if (t >= now - spec.behavior.scale_down.stabilization_s)
      down_ceiling = std::max(down_ceiling, r);
  }
  int desired = current;
  std::string limited;
  if (d.recommendation > current) {
    desired = std::max(up_floor, current);
    if (desired < d.recommendation) limited = "scale-up stabilization";
  } else if (d.recommendation < current) {
    desired = std::min(down_ceiling, current);
    if (desired > d.recommendation) limited = "scale-down stabilization";
  }
  if (panic_rec > desired) {
    desired = panic_rec;
    limited.clear();
  }
  if (d.panic && desired < current) {
    desired = current;
    limited = "panic mode holds scale-down";
  }

  // 4. Rate policies against the start of their periods.
  while (!state.changes.empty() && state.changes.front().first < now - 3600)
    state.changes.pop_front();
  if (desired > current) {
    const int allowed =
        limitByPolicies(spec.behavior.scale_up, current, desired, now, state.changes, true);
    if (allowed < desired) limited = "scale-up policy";
    desired = allowed;
  } else if (desired < current) {
    const int allowed =
        limitByPolicies(spec.behavior.scale_down, current, desired, now, state.changes, false);
    if (allowed > desired) limited = "scale-down policy";
    desired = allowed;
  }

  // 5. Bounds.
  if (desired > spec.max_replicas) {
    desired = spec.max_replicas;
    limited = "maxReplicas";
  }
  if (desired < spec.min_replicas) {
    desired = spec.min_replicas;
    limited = "minReplicas";
  }
  d.desired = desired;
  if (desired != current) state.changes.emplace_back(now, desired - current);

  if (d.metric.empty()) {
    d.reason = "no metric values; keeping " + std::to_string(desired);
  } else {
    d.reason = d.metric + " average " + fmt(d.value) + " vs target " + fmt(d.target) + ": " +
               std::to_string(current) + " -> recommend " + std::to_string(d.recommendation);
    if (d.panic) d.reason += " (panic)";
  }
  if (desired != d.recommendation)
    d.reason +=
        ", desired " + std::to_string(desired) + (limited.empty() ? "" : " (" + limited + ")");
  return d;
}

}  // namespace tidegate::control
