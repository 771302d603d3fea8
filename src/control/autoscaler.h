#pragma once
// The autoscaler's decision, as pure code (ARCHITECTURE.md: deciding apart from doing). The live
// controller and `tidegate simulate` call decide() with an observation and `now`; it returns the
// desired replica count and the reason, and updates the caller-held AutoscalerState (the
// history that stabilization windows and rate policies need). No clock, no I/O.
//
// The algorithm is Kubernetes' HorizontalPodAutoscaler (autoscaling/v2):
//   per metric: desired = ceil(ready replicas with a value × average / target), unchanged while
//     |average / target - 1| <= tolerance (0.1). Missing values count as 100% of the target when
//     scaling down and 0% when scaling up; not-ready replicas count as 0% when scaling up; if
//     that reverses the direction or falls within tolerance, nothing changes;
//   several metrics: the largest proposal wins;
//   behavior: scale-up and scale-down rules, each a stabilization window (the highest
//     recommendation of the window when scaling down, the lowest when scaling up) and rate
//     policies (Pods or Percent per period, combined by selectPolicy Max|Min|Disabled) applied
//     against the replica count at the start of each policy's period; Kubernetes' defaults;
//   then the min/max clamp.
// Plus an optional panic mode for bursts, after Knative's KPA: when the short-window metrics ask
// for at least `threshold` times the current replicas, the autoscaler scales on them at once
// (no stabilization) and does not scale down until `hold` has passed since the last such burst.

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tidegate::control {

struct ScalingPolicy {
  enum class Type { kPods, kPercent } type = Type::kPercent;
  int value = 100;
  double period_s = 15;
};

struct ScalingRules {
  double stabilization_s = 0;
  std::vector<ScalingPolicy> policies;
  enum class Select { kMax, kMin, kDisabled } select = Select::kMax;
};

struct Behavior {
  ScalingRules scale_up;
  ScalingRules scale_down;
  // Kubernetes' defaults: up — no stabilization, max(100% or 4 pods per 15 s);
  // down — 300 s stabilization, 100% per 15 s.
  static Behavior kubernetesDefaults();
};

struct PanicSpec {
  bool enabled = false;    // default off
  double threshold = 2.0;  // default: short-window demand of 2x the current replicas
  double hold_s = 60;      // default: no scale-down for 60 s after the last burst
};

struct AutoscalerSpec {
  int min_replicas = 1;
  int max_replicas = 1;
  std::map<std::string, double> targets;  // metric -> target average value per replica
  double tolerance = 0.1;
  Behavior behavior = Behavior::kubernetesDefaults();
  PanicSpec panic;
};

struct ReplicaObservation {
  bool ready = true;
  std::map<std::string, double> values;        // metric -> value (absent: missing)
  std::map<std::string, double> short_values;  // panic window; absent: not observed
};

struct Observation {
  int current = 0;  // replicas that exist (ready or not)
  std::vector<ReplicaObservation> replicas;
};

struct Decision {
  int desired = 0;
  int recommendation = 0;  // before stabilization, policies and clamps
  std::string metric;      // the metric that decided ("" if none applied)
  double value = 0;        // its average over the replicas it used
  double target = 0;
  bool panic = false;
  std::string reason;  // one line: what the metrics asked for and what limited it
};

// History the behavior needs; owned by the caller, one per scaled workload.
struct AutoscalerState {
  std::deque<std::pair<double, int>> recommendations;  // (time, recommendation)
  std::deque<std::pair<double, int>> changes;          // (time, replicas added (+) or removed (-))
  double panic_until = -1;
};

// Per-metric proposal (Kubernetes' replica calculator). Exposed for tests.
struct Proposal {
  int replicas;
  double average;  // the metric's average over replicas with a value
};
std::optional<Proposal> proposeForMetric(const std::string& metric, double target, double tolerance,
                                         const Observation& obs, bool use_short_window = false);

Decision decide(const AutoscalerSpec& spec, const Observation& obs, double now,
                AutoscalerState& state);

}  // namespace tidegate::control
