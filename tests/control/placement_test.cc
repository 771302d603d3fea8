#include "control/placement.h"

#include <gtest/gtest.h>

namespace tidegate::control {
namespace {

// The seed's hybrid cluster: one owned V100 (GPU-V100-Edge), an elastic cloud pool
// (GPU-V100-Elastic, 0..3 nodes of 1 GPU, 60 s to provision, $3/node-hour), and the seed's
// ResourcePolicy: owned pool first, elastic on overflow.
Cluster seed(PlacementPolicy::When when = PlacementPolicy::When::kLackResourceOrExceedMax,
             double timeout = 0) {
  Cluster c;
  c.pools = {{.name = "GPU-V100-Edge",
              .labels = {{"alibabacloud.com/nodepool-id", "npxxxxxx"}},
              .min_nodes = 1,
              .max_nodes = 1,
              .gpus_per_node = 1,
              .price_per_node_hour = 0.5},
             {.name = "GPU-V100-Elastic",
              .labels = {{"alibabacloud.com/nodepool-id", "npxxxxxy"}},
              .elastic = true,
              .min_nodes = 0,
              .max_nodes = 3,
              .gpus_per_node = 1,
              .provisioning_delay_s = 60,
              .scale_down_unneeded_s = 600,
              .price_per_node_hour = 3.0}};
  c.policy.units = {{{{"alibabacloud.com/nodepool-id", "npxxxxxx"}}, std::nullopt},
                    {{{"alibabacloud.com/nodepool-id", "npxxxxxy"}}, std::nullopt}};
  c.policy.when = when;
  c.policy.timeout_s = timeout;
  c.bootstrap(0);
  return c;
}

int onPool(const Cluster& c, const std::string& pool) {
  int n = 0;
  for (const auto& r : c.replicas)
    for (const auto& node : c.nodes)
      if (r.node == node.name && node.pool == pool) ++n;
  return n;
}

void step(Cluster& c, int desired, double now) {
  advance(c, now);
  apply(c, plan(c, desired, 1, now), 1, now);
}

TEST(Placement, SeedScenarioOwnedFirstCloudOnOverflowCloudFirstToGo) {
  Cluster c = seed();
  step(c, 1, 0);
  EXPECT_EQ(onPool(c, "GPU-V100-Edge"), 1);
  // The peak: the autoscaler asks for 3. The owned GPU is taken: two replicas are Pending and
  // the elastic pool provisions two nodes.
  Plan p = plan(c, 3, 1, 10);
  EXPECT_EQ(p.create, 2);
  EXPECT_TRUE(p.bind.empty());
  ASSERT_EQ(p.provision.size(), 1u);
  EXPECT_EQ(p.provision[0], (std::pair<std::string, int>{"GPU-V100-Elastic", 2}));
  apply(c, p, 1, 10);
  EXPECT_EQ(c.pending(), 2);
  step(c, 3, 30);  // still provisioning: no more nodes asked for
  EXPECT_EQ(c.nodes.size(), 3u);
  EXPECT_EQ(c.pending(), 2);
  step(c, 3, 70);  // nodes ready: the pending replicas run there
  EXPECT_EQ(c.pending(), 0);
  EXPECT_EQ(onPool(c, "GPU-V100-Edge"), 1);
  EXPECT_EQ(onPool(c, "GPU-V100-Elastic"), 2);
  // After the peak: cloud replicas go first, then the idle cloud nodes after 10 minutes.
  Plan in = plan(c, 1, 1, 200);
  ASSERT_EQ(in.remove.size(), 2u);
  apply(c, in, 1, 200);
  EXPECT_EQ(onPool(c, "GPU-V100-Edge"), 1);
  EXPECT_EQ(onPool(c, "GPU-V100-Elastic"), 0);
  step(c, 1, 700);
  EXPECT_EQ(c.nodes.size(), 3u);  // idle for 500 s only
  step(c, 1, 801);
  EXPECT_EQ(c.nodes.size(), 1u);  // released
  // Cost: two cloud nodes from t=10 to t=801 at $3/h, the owned node at $0.5/h.
  EXPECT_NEAR(c.cost["GPU-V100-Elastic"], 2 * 791 * 3.0 / 3600, 1e-9);
  EXPECT_NEAR(c.cost["GPU-V100-Edge"], 801 * 0.5 / 3600, 1e-9);
}

TEST(Placement, UnitMaxOverflowsEvenWithFreeGpus) {
  Cluster c = seed();
  c.pools[0].gpus_per_node = 4;  // the owned node has room for four...
  c.nodes[0].gpus = 4;
  c.policy.units[0].max = 2;  // ...but the unit holds at most two replicas
  step(c, 3, 0);
  EXPECT_EQ(onPool(c, "GPU-V100-Edge"), 2);
  EXPECT_EQ(c.pending(), 1);
  ASSERT_EQ(c.nodes.size(), 2u);  // one elastic node provisioning for the third
  EXPECT_FALSE(c.nodes[1].ready);
}

TEST(Placement, ExceedMaxWaitsInTheUnitInsteadOfOverflowing) {
  Cluster c = seed(PlacementPolicy::When::kExceedMax);
  step(c, 2, 0);
  EXPECT_EQ(onPool(c, "GPU-V100-Edge"), 1);
  EXPECT_EQ(c.pending(), 1);
  EXPECT_EQ(c.nodes.size(), 1u);  // no cloud node: the replica waits for the owned pool
  step(c, 1, 10);                 // scale-in takes the pending one
  EXPECT_EQ(c.pending(), 0);
  EXPECT_EQ(c.placed(), 1);
}

TEST(Placement, TimeoutOrExceedMaxMovesOnAfterTheTimeout) {
  Cluster c = seed(PlacementPolicy::When::kTimeoutOrExceedMax, 30);
  step(c, 2, 0);
  EXPECT_EQ(c.pending(), 1);
  EXPECT_EQ(c.nodes.size(), 1u);
  step(c, 2, 20);
  EXPECT_EQ(c.nodes.size(), 1u);  // still within the timeout
  step(c, 2, 31);
  EXPECT_EQ(c.nodes.size(), 2u);  // moved on: the elastic pool provisions
  step(c, 2, 91);
  EXPECT_EQ(onPool(c, "GPU-V100-Elastic"), 1);
}

TEST(Placement, ElasticPoolsStopAtTheirMaximum) {
  Cluster c = seed();
  step(c, 6, 0);  // 1 owned + at most 3 cloud
  step(c, 6, 60);
  EXPECT_EQ(c.placed(), 4);
  EXPECT_EQ(c.pending(), 2);
  EXPECT_EQ(c.nodes.size(), 4u);
  EXPECT_TRUE(plan(c, 6, 1, 61).provision.empty());
}

}  // namespace
}  // namespace tidegate::control
