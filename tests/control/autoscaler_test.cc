#include "control/autoscaler.h"

#include <gtest/gtest.h>

namespace tidegate::control {
namespace {

// `n` ready replicas reporting `values` (missing past the end).
Observation obs(int current, std::vector<double> values, int unready = 0,
                const std::string& metric = "vllm:num_requests_waiting") {
  Observation o;
  o.current = current;
  for (int i = 0; i < current - unready; ++i) {
    ReplicaObservation r;
    if (i < static_cast<int>(values.size())) r.values[metric] = values[static_cast<std::size_t>(i)];
    o.replicas.push_back(r);
  }
  for (int i = 0; i < unready; ++i) o.replicas.push_back({.ready = false});
  return o;
}

// No stabilization, no rate limits: the bare replica calculation.
AutoscalerSpec bare(int min = 1, int max = 100) {
  AutoscalerSpec s;
  s.min_replicas = min;
  s.max_replicas = max;
  s.targets = {{"vllm:num_requests_waiting", 100}};
  s.behavior.scale_up = {0, {}, ScalingRules::Select::kMax};
  s.behavior.scale_down = {0, {}, ScalingRules::Select::kMax};
  return s;
}

TEST(Autoscaler, KubernetesReplicaCalculation) {
  struct Case {
    const char* name;
    Observation o;
    int want;
  } cases[] = {
      {"200 vs target 100 doubles", obs(1, {200}), 2},
      {"50 vs target 100 halves", obs(4, {50, 50, 50, 50}), 2},
      {"within the 0.1 tolerance: no change", obs(3, {105, 108, 102}), 3},
      {"just past tolerance scales", obs(3, {115, 115, 115}), 4},
      {"missing values count 100% when scaling down", obs(3, {50, 50}), 2},
      {"not-ready replicas count 0% when scaling up", obs(3, {200, 200}, 1), 4},
      {"filling the gaps reverses the direction: no change", obs(3, {120}), 3},
      {"no values at all: no change", obs(2, {}), 2},
  };
  for (const auto& c : cases) {
    AutoscalerState st;
    EXPECT_EQ(decide(bare(), c.o, 0, st).desired, c.want) << c.name;
  }
  // The seed's qwen-chat: DCGM_CUSTOM_PROCESS_SM_UTIL target 50, one replica at 90%.
  auto seed = bare(1, 3);
  seed.targets = {{"DCGM_CUSTOM_PROCESS_SM_UTIL", 50}};
  AutoscalerState st;
  EXPECT_EQ(decide(seed, obs(1, {90}, 0, "DCGM_CUSTOM_PROCESS_SM_UTIL"), 0, st).desired, 2);
  EXPECT_EQ(decide(seed, obs(2, {100, 100}, 0, "DCGM_CUSTOM_PROCESS_SM_UTIL"), 1, st).desired, 3);
}

TEST(Autoscaler, LargestMetricWinsAndBoundsClamp) {
  auto s = bare(1, 3);
  s.targets["DCGM_CUSTOM_PROCESS_SM_UTIL"] = 50;
  Observation o = obs(1, {150});
  o.replicas[0].values["DCGM_CUSTOM_PROCESS_SM_UTIL"] = 100;  // asks for 2; queue asks for 2
  AutoscalerState st;
  auto d = decide(s, o, 0, st);
  EXPECT_EQ(d.recommendation, 2);
  o.replicas[0].values["vllm:num_requests_waiting"] = 900;  // asks for 9: clamped to 3
  d = decide(s, o, 1, st);
  EXPECT_EQ(d.recommendation, 9);
  EXPECT_EQ(d.desired, 3);
  EXPECT_EQ(d.metric, "vllm:num_requests_waiting");
  EXPECT_NE(d.reason.find("maxReplicas"), std::string::npos) << d.reason;
  auto low = bare(2, 5);
  AutoscalerState fresh;
  EXPECT_EQ(decide(low, obs(3, {0, 0, 0}), 0, fresh).desired, 2);  // minReplicas
}

TEST(Autoscaler, ScaleDownStabilizationUsesTheHighestRecentRecommendation) {
  auto s = bare();
  s.behavior.scale_down.stabilization_s = 300;
  AutoscalerState st;
  EXPECT_EQ(decide(s, obs(4, {100, 100, 100, 100}), 0, st).desired, 4);
  auto d = decide(s, obs(4, {25, 25, 25, 25}), 60, st);  // asks for 1
  EXPECT_EQ(d.recommendation, 1);
  EXPECT_EQ(d.desired, 4);  // 4 was recommended within the last 300 s
  EXPECT_NE(d.reason.find("scale-down stabilization"), std::string::npos);
  EXPECT_EQ(decide(s, obs(4, {25, 25, 25, 25}), 299, st).desired, 4);
  EXPECT_EQ(decide(s, obs(4, {25, 25, 25, 25}), 301, st).desired, 1);
}

TEST(Autoscaler, ScaleUpStabilizationUsesTheLowestRecentRecommendation) {
  auto s = bare();
  s.behavior.scale_up.stabilization_s = 30;
  AutoscalerState st;
  EXPECT_EQ(decide(s, obs(1, {100}), 0, st).desired, 1);
  EXPECT_EQ(decide(s, obs(1, {400}), 10, st).desired, 1);  // a brief spike is ignored
  EXPECT_EQ(decide(s, obs(1, {400}), 31, st).desired, 4);  // sustained: scale
}

TEST(Autoscaler, DefaultScaleUpPolicyAllowsDoublingOrFourPods) {
  AutoscalerSpec s;
  s.min_replicas = 1;
  s.max_replicas = 100;
  s.targets = {{"q", 1}};
  AutoscalerState st;
  // Demand for 20 from 1 replica: max(100% -> 2, +4 pods -> 5) = 5 per 15 s.
  EXPECT_EQ(decide(s, obs(1, {20}, 0, "q"), 0, st).desired, 5);
  EXPECT_EQ(decide(s, obs(5, {4, 4, 4, 4, 4}, 0, "q"), 5, st).desired, 5);    // same period
  EXPECT_EQ(decide(s, obs(5, {4, 4, 4, 4, 4}, 0, "q"), 16, st).desired, 10);  // next: +100%
  s.behavior.scale_up.select = ScalingRules::Select::kMin;
  AutoscalerState st2;
  EXPECT_EQ(decide(s, obs(1, {20}, 0, "q"), 0, st2).desired, 2);
  s.behavior.scale_up.select = ScalingRules::Select::kDisabled;
  AutoscalerState st3;
  EXPECT_EQ(decide(s, obs(1, {20}, 0, "q"), 0, st3).desired, 1);
}

TEST(Autoscaler, ScaleDownPolicyLimitsPodsPerPeriod) {
  auto s = bare();
  s.behavior.scale_down.policies = {{ScalingPolicy::Type::kPods, 1, 60}};
  AutoscalerState st;
  EXPECT_EQ(decide(s, obs(4, {0, 0, 0, 0}), 0, st).desired, 3);
  EXPECT_EQ(decide(s, obs(3, {0, 0, 0}), 30, st).desired, 3);  // one pod per minute
  auto d = decide(s, obs(3, {0, 0, 0}), 61, st);
  EXPECT_EQ(d.desired, 2);
}

TEST(Autoscaler, PanicModeScalesOnBurstsAndHoldsScaleDown) {
  auto s = bare();
  s.behavior.scale_down.stabilization_s = 0;
  s.panic = {.enabled = true, .threshold = 2.0, .hold_s = 60};
  AutoscalerState st;
  // The stable window has not caught up (asks for 2), the short window sees a burst (asks 10).
  Observation o = obs(2, {100, 100});
  for (auto& r : o.replicas) r.short_values["vllm:num_requests_waiting"] = 500;
  auto d = decide(s, o, 0, st);
  EXPECT_TRUE(d.panic);
  EXPECT_EQ(d.desired, 10);
  EXPECT_NE(d.reason.find("panic"), std::string::npos);
  // Calm again: no scale-down until the hold has passed.
  Observation calm = obs(10, std::vector<double>(10, 10));
  EXPECT_EQ(decide(s, calm, 30, st).desired, 10);
  auto later = decide(s, calm, 61, st);
  EXPECT_FALSE(later.panic);
  EXPECT_EQ(later.desired, 1);
  // Off by default.
  AutoscalerState quiet;
  EXPECT_EQ(decide(bare(), o, 0, quiet).desired, 2);
}

}  // namespace
}  // namespace tidegate::control
