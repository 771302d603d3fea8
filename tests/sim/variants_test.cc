#include "sim/variants.h"

#include <gtest/gtest.h>

#include "api/loader.h"

namespace tidegate::sim {
namespace {

api::Config config() {
  auto c = api::parseConfig(R"(
apiVersion: tidegate.io/v1alpha1
kind: NodePool
metadata: {name: owned}
spec: {kind: fixed, nodes: 1, gpusPerNode: 2, pricePerNodeHour: 1}
---
apiVersion: tidegate.io/v1alpha1
kind: NodePool
metadata: {name: cloud}
spec: {kind: elastic, maxNodes: 2, pricePerNodeHour: 3}
---
apiVersion: tidegate.io/v1alpha1
kind: InferenceService
metadata: {name: a, labels: {app: a}}
spec:
  servedModelName: a
  minReplicas: 1
  maxReplicas: 4
  metrics: [{metric: "vllm:num_requests_waiting", target: 4}]
  behavior: {scaleDown: {stabilizationWindowSeconds: 15}}
  panic: {enabled: true}
)",
                            "v.yaml");
  EXPECT_TRUE(c) << (c ? "" : c.error().message);
  return std::move(c).value();
}

TEST(SimVariants, ParseSweepRangesAndLists) {
  struct Case {
    const char* text;
    std::vector<std::pair<std::string, std::vector<double>>> want;
  };
  const Case cases[] = {
      {"owned.nodes=1..4", {{"owned.nodes", {1, 2, 3, 4}}}},
      {"target=2..8:3,min=1|2", {{"target", {2, 5, 8}}, {"min", {1, 2}}}},
      {"target=0.5..1:0.25", {{"target", {0.5, 0.75, 1}}}},
      {"a.max=3", {{"a.max", {3}}}},
  };
  for (const auto& c : cases) {
    auto axes = parseSweep(c.text);
    ASSERT_TRUE(axes) << c.text << ": " << axes.error().message;
    ASSERT_EQ(axes->size(), c.want.size()) << c.text;
    for (std::size_t i = 0; i < c.want.size(); ++i) {
      EXPECT_EQ((*axes)[i].param, c.want[i].first);
      EXPECT_EQ((*axes)[i].values, c.want[i].second) << c.text;
    }
  }
  for (const char* bad : {"", "target", "=3", "target=", "target=4..2", "target=1..2:0", "target=x",
                          "target=1|y", "t=1,t=2", "t=1..1e9"}) {
    EXPECT_FALSE(parseSweep(bad)) << bad;
  }
}

TEST(SimVariants, SweepPointsAreTheCrossProduct) {
  auto points = sweepPoints({{"x", {1, 2}}, {"y", {5, 6, 7}}});
  ASSERT_EQ(points.size(), 6u);
  EXPECT_EQ(points[0], (std::map<std::string, double>{{"x", 1}, {"y", 5}}));
  EXPECT_EQ(points[5], (std::map<std::string, double>{{"x", 2}, {"y", 7}}));
  EXPECT_EQ(sweepPoints({}).size(), 1u);  // no sweep: the configuration itself
}

TEST(SimVariants, ParametersChangeWhatTheyName) {
  auto c = config();
  ASSERT_TRUE(applyParam(c, "owned.nodes", 3));
  EXPECT_EQ(c.node_pools[0].min_nodes, 3);
  ASSERT_TRUE(applyParam(c, "elastic.max", 5));
  EXPECT_EQ(c.node_pools[1].max_nodes, 5);
  ASSERT_TRUE(applyParam(c, "cloud.max", 1));
  EXPECT_EQ(c.node_pools[1].max_nodes, 1);
  ASSERT_TRUE(applyParam(c, "target", 2.5));
  EXPECT_EQ(c.services[0].metric_targets.at("vllm:num_requests_waiting"), 2.5);
  ASSERT_TRUE(applyParam(c, "a.max", 6));
  EXPECT_EQ(c.services[0].max_replicas, 6);
  ASSERT_TRUE(applyParam(c, "min", 2));
  EXPECT_EQ(c.services[0].min_replicas, 2);

  for (auto [param, value] : std::vector<std::pair<const char*, double>>{{"owned.nodes", 1.5},
                                                                         {"owned.nodes", -1},
                                                                         {"target", 0},
                                                                         {"min", 9},
                                                                         {"nosuch.target", 1},
                                                                         {"owned.max", 2},
                                                                         {"bogus", 1},
                                                                         {"a.min", 0}}) {
    auto copy = config();
    auto st = applyParam(copy, param, value);
    EXPECT_FALSE(st) << param << "=" << value;
    EXPECT_NE(st.message().find(param), std::string::npos) << st.message();
  }
}

TEST(SimVariants, BaselinesTransformTheConfiguration) {
  const auto c = config();
  auto peak = baseline(c, "static-peak", {{"a", 3}});
  ASSERT_TRUE(peak);
  ASSERT_EQ(peak->node_pools.size(), 1u);  // no elastic pool
  EXPECT_EQ(peak->services[0].min_replicas, 3);
  EXPECT_EQ(peak->services[0].max_replicas, 3);
  EXPECT_EQ(peak->node_pools[0].min_nodes, 2);  // 3 GPUs on nodes of 2

  auto owned = baseline(c, "owned-only", {});
  ASSERT_TRUE(owned);
  ASSERT_EQ(owned->node_pools.size(), 1u);
  EXPECT_EQ(owned->services[0].max_replicas, 4);

  auto queue = baseline(c, "queue-hpa", {});
  ASSERT_TRUE(queue);
  EXPECT_EQ(queue->services[0].metric_targets,
            (std::map<std::string, double>{{"vllm:num_requests_waiting", 5}}));
  EXPECT_FALSE(queue->services[0].panic.enabled);
  EXPECT_EQ(queue->services[0].behavior.scale_down.stabilization_s, 300);

  auto gpu = baseline(c, "gpu-util", {});
  ASSERT_TRUE(gpu);
  EXPECT_EQ(gpu->services[0].metric_targets,
            (std::map<std::string, double>{{"DCGM_CUSTOM_PROCESS_SM_UTIL", 50}}));

  auto bad = baseline(c, "cheapest", {});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("static-peak"), std::string::npos);
}

}  // namespace
}  // namespace tidegate::sim
