#include "control/placement.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace tidegate::control {
namespace {

// The seed's hybrid cluster: one owned V100 (GPU-V100-Edge), an elastic cloud pool
// (GPU-V100-Elastic, 0..3 nodes of 1 GPU, 60 s to provision, $3/node-hour), and the seed's
// ResourcePolicy: owned pool first, elastic on overflow.
Cluster seed() {
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
  c.bootstrap(0);
  return c;
}

PlacementPolicy seedPolicy(
    PlacementPolicy::When when = PlacementPolicy::When::kLackResourceOrExceedMax,
    double timeout = 0) {
  PlacementPolicy policy;
  policy.units = {{{{"alibabacloud.com/nodepool-id", "npxxxxxx"}}, std::nullopt},
                  {{{"alibabacloud.com/nodepool-id", "npxxxxxy"}}, std::nullopt}};
  policy.when = when;
  policy.timeout_s = timeout;
  return policy;
}

// One service, "llm", asking for `desired` replicas of one GPU.
std::vector<Demand> one(int desired, const PlacementPolicy& policy = seedPolicy()) {
  return {{.service = "llm", .desired = desired, .gpus = 1, .policy = policy}};
}

// Replicas on `pool`, terminating ones left out.
int onPool(const Cluster& c, const std::string& pool) {
  int n = 0;
  for (const auto& r : c.replicas)
    for (const auto& node : c.nodes)
      if (r.node == node.name && node.pool == pool && !r.terminating) ++n;
  return n;
}

// Every terminating replica stops at `now`.
void stopAll(Cluster& c, double now) {
  std::vector<std::string> ids;
  for (const auto& r : c.replicas)
    if (r.terminating) ids.push_back(r.id);
  for (const auto& id : ids) finished(c, id, now);
}

// One reconcile in which the replicas it removes stop at once (the tests of terminating replicas
// call plan and apply themselves).
void step(Cluster& c, const std::vector<Demand>& demands, double now) {
  advance(c, now);
  apply(c, plan(c, demands, now), demands, now);
  stopAll(c, now);
}

void step(Cluster& c, int desired, double now, const PlacementPolicy& policy = seedPolicy()) {
  step(c, one(desired, policy), now);
}

TEST(Placement, SeedScenarioOwnedFirstCloudOnOverflowCloudFirstToGo) {
  Cluster c = seed();
  step(c, 1, 0);
  EXPECT_EQ(onPool(c, "GPU-V100-Edge"), 1);
  // The peak: the autoscaler asks for 3. The owned GPU is taken: two replicas are Pending and
  // the elastic pool provisions two nodes.
  Plan p = plan(c, one(3), 10);
  EXPECT_EQ(p.create.size(), 2u);
  EXPECT_TRUE(p.bind.empty());
  ASSERT_EQ(p.provision.size(), 1u);
  EXPECT_EQ(p.provision[0], (std::pair<std::string, int>{"GPU-V100-Elastic", 2}));
  apply(c, p, one(3), 10);
  EXPECT_EQ(c.pending(), 2);
  step(c, 3, 30);  // still provisioning: no more nodes asked for
  EXPECT_EQ(c.nodes.size(), 3u);
  EXPECT_EQ(c.pending(), 2);
  step(c, 3, 70);  // nodes ready: the pending replicas run there
  EXPECT_EQ(c.pending(), 0);
  EXPECT_EQ(onPool(c, "GPU-V100-Edge"), 1);
  EXPECT_EQ(onPool(c, "GPU-V100-Elastic"), 2);
  // After the peak: cloud replicas go first, then the idle cloud nodes after 10 minutes.
  Plan in = plan(c, one(1), 200);
  ASSERT_EQ(in.remove.size(), 2u);
  apply(c, in, one(1), 200);
  EXPECT_EQ(onPool(c, "GPU-V100-Edge"), 1);
  EXPECT_EQ(onPool(c, "GPU-V100-Elastic"), 0);
  EXPECT_EQ(c.terminating(), 2);  // draining: their GPUs are not free yet
  stopAll(c, 200);
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
  auto policy = seedPolicy();
  policy.units[0].max = 2;  // ...but the unit holds at most two replicas
  step(c, 3, 0, policy);
  EXPECT_EQ(onPool(c, "GPU-V100-Edge"), 2);
  EXPECT_EQ(c.pending(), 1);
  ASSERT_EQ(c.nodes.size(), 2u);  // one elastic node provisioning for the third
  EXPECT_FALSE(c.nodes[1].ready);
}

TEST(Placement, ExceedMaxWaitsInTheUnitInsteadOfOverflowing) {
  Cluster c = seed();
  const auto policy = seedPolicy(PlacementPolicy::When::kExceedMax);
  step(c, 2, 0, policy);
  EXPECT_EQ(onPool(c, "GPU-V100-Edge"), 1);
  EXPECT_EQ(c.pending(), 1);
  EXPECT_EQ(c.nodes.size(), 1u);  // no cloud node: the replica waits for the owned pool
  step(c, 1, 10, policy);         // scale-in takes the pending one
  EXPECT_EQ(c.pending(), 0);
  EXPECT_EQ(c.placed(), 1);
}

TEST(Placement, TimeoutOrExceedMaxMovesOnAfterTheTimeout) {
  Cluster c = seed();
  const auto policy = seedPolicy(PlacementPolicy::When::kTimeoutOrExceedMax, 30);
  step(c, 2, 0, policy);
  EXPECT_EQ(c.pending(), 1);
  EXPECT_EQ(c.nodes.size(), 1u);
  step(c, 2, 20, policy);
  EXPECT_EQ(c.nodes.size(), 1u);  // still within the timeout
  step(c, 2, 31, policy);
  EXPECT_EQ(c.nodes.size(), 2u);  // moved on: the elastic pool provisions
  step(c, 2, 91, policy);
  EXPECT_EQ(onPool(c, "GPU-V100-Elastic"), 1);
}

TEST(Placement, ElasticPoolsStopAtTheirMaximum) {
  Cluster c = seed();
  step(c, 6, 0);  // 1 owned + at most 3 cloud
  step(c, 6, 60);
  EXPECT_EQ(c.placed(), 4);
  EXPECT_EQ(c.pending(), 2);
  EXPECT_EQ(c.nodes.size(), 4u);
  EXPECT_TRUE(plan(c, one(6), 61).provision.empty());
}

// Several services on the seed's pools: `service`'s replicas on `pool`.
int onPool(const Cluster& c, const std::string& pool, const std::string& service) {
  int n = 0;
  for (const auto& r : c.replicas)
    for (const auto& node : c.nodes)
      if (r.service == service && r.node == node.name && node.pool == pool && !r.terminating) ++n;
  return n;
}

Demand demand(const std::string& service, int desired, int priority = 0,
              const PlacementPolicy& policy = seedPolicy()) {
  return {
      .service = service, .desired = desired, .gpus = 1, .priority = priority, .policy = policy};
}

bool hasReason(const Plan& p, const std::string& text) {
  return std::any_of(p.reasons.begin(), p.reasons.end(),
                     [&](const std::string& r) { return r.find(text) != std::string::npos; });
}

TEST(Placement, TwoServicesShareTheOwnedPoolTheSecondGoesElastic) {
  Cluster c = seed();
  const std::vector<Demand> both = {demand("llama-8b", 1), demand("llama-1b", 1)};
  Plan p = plan(c, both, 0);
  ASSERT_EQ(p.create.size(), 2u);
  EXPECT_EQ(p.create[0].service, "llama-8b");
  EXPECT_EQ(p.create[1].service, "llama-1b");
  EXPECT_NE(p.create[0].id, p.create[1].id);
  ASSERT_EQ(p.provision.size(), 1u);  // the owned GPU holds one of them only
  EXPECT_EQ(p.provision[0], (std::pair<std::string, int>{"GPU-V100-Elastic", 1}));
  apply(c, p, both, 0);
  EXPECT_EQ(onPool(c, "GPU-V100-Edge", "llama-8b"), 1);  // equal priority: demand order
  EXPECT_EQ(c.pending("llama-1b"), 1);
  step(c, both, 60);
  EXPECT_EQ(onPool(c, "GPU-V100-Elastic", "llama-1b"), 1);
  // Another plan changes nothing: neither believes the owned GPU is free.
  Plan again = plan(c, both, 61);
  EXPECT_TRUE(again.create.empty() && again.bind.empty() && again.remove.empty() &&
              again.provision.empty());
}

TEST(Placement, HigherPriorityIsPlacedFirstWhenBothScaleOut) {
  struct Case {
    int priority_8b, priority_1b;
    std::string owned;  // the service that gets the owned GPU
  };
  for (const auto& tc : std::vector<Case>{
           {0, 0, "llama-8b"}, {0, 10, "llama-1b"}, {10, 0, "llama-8b"}, {-5, -10, "llama-8b"}}) {
    SCOPED_TRACE(tc.owned + " " + std::to_string(tc.priority_8b) + "/" +
                 std::to_string(tc.priority_1b));
    Cluster c = seed();
    const std::vector<Demand> both = {demand("llama-8b", 2, tc.priority_8b),
                                      demand("llama-1b", 2, tc.priority_1b)};
    Plan p = plan(c, both, 0);
    EXPECT_TRUE(p.remove.empty());  // nothing placed yet: nothing to preempt
    ASSERT_EQ(p.provision.size(), 1u);
    EXPECT_EQ(p.provision[0].second, 3);  // the other three, of both services, wait on it
    apply(c, p, both, 0);
    EXPECT_EQ(onPool(c, "GPU-V100-Edge", tc.owned), 1);
    step(c, both, 60);
    EXPECT_EQ(c.placed(), 4);
    EXPECT_EQ(c.placed("llama-8b"), 2);
    EXPECT_EQ(c.placed("llama-1b"), 2);
  }
}

TEST(Placement, HigherPriorityPreemptsALowerOneWhoseReplacementGoesElastic) {
  Cluster c = seed();
  step(c, {demand("batch", 1)}, 0);
  ASSERT_EQ(onPool(c, "GPU-V100-Edge", "batch"), 1);
  const std::string victim = c.replicas[0].id;
  const std::vector<Demand> both = {demand("batch", 1, 0), demand("chat", 1, 100)};
  Plan p = plan(c, both, 10);
  ASSERT_EQ(p.remove, std::vector<std::string>{victim});
  EXPECT_TRUE(hasReason(p, "preempted by chat"));
  // chat's new replica and batch's replacement, which never preempts.
  ASSERT_EQ(p.create.size(), 2u);
  EXPECT_EQ(p.create[0].service, "chat");
  EXPECT_FALSE(p.create[0].replaces_preempted);
  EXPECT_EQ(p.create[1].service, "batch");
  EXPECT_TRUE(p.create[1].replaces_preempted);
  // chat's replica does not take the GPU while the victim drains: it is nominated to the node.
  EXPECT_TRUE(p.bind.empty());
  ASSERT_EQ(p.nominate.size(), 1u);
  EXPECT_EQ(p.nominate[0],
            (std::pair<std::string, std::string>{p.create[0].id, "GPU-V100-Edge-1"}));
  ASSERT_EQ(p.provision.size(), 1u);  // for the replacement, in the same plan
  EXPECT_EQ(p.provision[0], (std::pair<std::string, int>{"GPU-V100-Elastic", 1}));
  apply(c, p, both, 10);
  EXPECT_EQ(c.terminating("batch"), 1);
  EXPECT_EQ(c.freeGpus(c.nodes[0]), 0);  // the victim still holds it
  EXPECT_EQ(c.pending("chat"), 1);
  EXPECT_EQ(c.pending("batch"), 1);
  // While the victim drains nothing else happens: no second preemption, no bind, no provision.
  Plan waiting = plan(c, both, 20);
  EXPECT_TRUE(waiting.remove.empty() && waiting.bind.empty() && waiting.nominate.empty() &&
              waiting.provision.empty() && waiting.create.empty());
  finished(c, victim, 25);
  Plan bound = plan(c, both, 30);
  ASSERT_EQ(bound.bind.size(), 1u);
  EXPECT_EQ(bound.bind[0].second, "GPU-V100-Edge-1");
  apply(c, bound, both, 30);
  EXPECT_EQ(onPool(c, "GPU-V100-Edge", "chat"), 1);
  step(c, both, 70);
  EXPECT_EQ(onPool(c, "GPU-V100-Elastic", "batch"), 1);
  // Settled: no flapping back and forth.
  Plan after = plan(c, both, 71);
  EXPECT_TRUE(after.remove.empty() && after.create.empty() && after.bind.empty());
}

TEST(Placement, EqualPrioritiesNeverPreempt) {
  Cluster c = seed();
  step(c, {demand("batch", 1, 5)}, 0);
  const std::vector<Demand> both = {demand("batch", 1, 5), demand("chat", 1, 5)};
  Plan p = plan(c, both, 10);
  EXPECT_TRUE(p.remove.empty());
  EXPECT_TRUE(p.bind.empty());
  ASSERT_EQ(p.provision.size(), 1u);  // chat waits for the elastic pool instead
  apply(c, p, both, 10);
  step(c, both, 70);
  EXPECT_EQ(onPool(c, "GPU-V100-Edge", "batch"), 1);
  EXPECT_EQ(onPool(c, "GPU-V100-Elastic", "chat"), 1);
}

TEST(Placement, APreemptedServicesReplacementDoesNotPreemptInTurn) {
  // Two owned pools of one node each; "mid" may use both, "low" only the second, "high" only
  // the first: high preempts mid, whose replacement could preempt low on the second — it must not.
  Cluster c = seed();
  c.pools.push_back(c.pools[0]);
  c.pools.back().name = "GPU-V100-Edge2";
  c.pools.back().labels = {{"alibabacloud.com/nodepool-id", "npxxxxxz"}};
  c.nodes.push_back({"GPU-V100-Edge2-1", "GPU-V100-Edge2", 1, true, 0, 0, 0});
  const Unit edge{{{"alibabacloud.com/nodepool-id", "npxxxxxx"}}, std::nullopt};
  const Unit edge2{{{"alibabacloud.com/nodepool-id", "npxxxxxz"}}, std::nullopt};
  const Unit elastic{{{"alibabacloud.com/nodepool-id", "npxxxxxy"}}, std::nullopt};
  PlacementPolicy high_policy, mid_policy, low_policy;
  high_policy.units = {edge, elastic};
  mid_policy.units = {edge, edge2, elastic};
  low_policy.units = {edge2, elastic};
  step(c, {demand("mid", 1, 5, mid_policy), demand("low", 1, 0, low_policy)}, 0);
  ASSERT_EQ(onPool(c, "GPU-V100-Edge", "mid"), 1);
  ASSERT_EQ(onPool(c, "GPU-V100-Edge2", "low"), 1);
  const std::vector<Demand> all = {demand("high", 1, 10, high_policy),
                                   demand("mid", 1, 5, mid_policy),
                                   demand("low", 1, 0, low_policy)};
  for (double t : {10.0, 11.0, 12.0}) {  // neither in the preempting plan nor in later ones
    Plan p = plan(c, all, t);
    for (const auto& id : p.remove)
      for (const auto& r : c.replicas)
        if (r.id == id) {
          EXPECT_EQ(r.service, "mid") << "t=" << t;
        }
    apply(c, p, all, t);
    stopAll(c, t);  // the victim stops at once: high binds at the next plan
  }
  EXPECT_EQ(onPool(c, "GPU-V100-Edge", "high"), 1);
  EXPECT_EQ(onPool(c, "GPU-V100-Edge2", "low"), 1);
  EXPECT_EQ(c.pending("mid"), 1);
  step(c, all, 70);
  EXPECT_EQ(onPool(c, "GPU-V100-Elastic", "mid"), 1);
}

TEST(Placement, PreemptionTakesTheLowestPriorityThenTheNewest) {
  Cluster c = seed();
  c.pools[0].gpus_per_node = 3;
  c.nodes[0].gpus = 3;
  step(c, {demand("a", 1, 1), demand("b", 1, 0)}, 0);  // a: r1, b: r2
  step(c, {demand("a", 2, 1), demand("b", 1, 0)}, 5);  // a: r3 — the node is full
  const std::vector<Demand> more = {demand("a", 2, 1), demand("b", 1, 0), demand("c", 2, 9)};
  Plan p = plan(c, more, 10);
  EXPECT_EQ(p.remove, (std::vector<std::string>{"r2", "r3"}));  // b's, then a's newest
  EXPECT_EQ(p.nominate.size(), 2u);
}

TEST(Placement, ScaleInIsPerServiceAndNodesGoOnlyWhenNoServiceUsesThem) {
  Cluster c = seed();
  c.pools[1].gpus_per_node = 2;  // one elastic node holds a replica of each service
  step(c, {demand("a", 2), demand("b", 1)}, 0);
  ASSERT_EQ(c.nodes.size(), 2u);  // one node of two GPUs for both pending replicas
  step(c, {demand("a", 2), demand("b", 1)}, 60);
  EXPECT_EQ(onPool(c, "GPU-V100-Elastic", "a"), 1);
  EXPECT_EQ(onPool(c, "GPU-V100-Elastic", "b"), 1);
  // b scales in: only b's replica goes; a's elastic one stays, and so does the node.
  Plan in = plan(c, std::vector<Demand>{demand("a", 2), demand("b", 0)}, 100);
  ASSERT_EQ(in.remove.size(), 1u);
  apply(c, in, std::vector<Demand>{demand("a", 2), demand("b", 0)}, 100);
  stopAll(c, 100);
  EXPECT_EQ(c.placed("a"), 2);
  EXPECT_EQ(c.placed("b"), 0);
  step(c, {demand("a", 2), demand("b", 0)}, 800);
  EXPECT_EQ(c.nodes.size(), 2u);  // a still uses it
  step(c, {demand("a", 1), demand("b", 0)}, 801);
  EXPECT_EQ(onPool(c, "GPU-V100-Edge", "a"), 1);  // the elastic replica went first
  step(c, {demand("a", 1), demand("b", 0)}, 1400);
  EXPECT_EQ(c.nodes.size(), 2u);  // idle for 599 s only
  step(c, {demand("a", 1), demand("b", 0)}, 1401);
  EXPECT_EQ(c.nodes.size(), 1u);
}

TEST(Placement, ATerminatingReplicaHoldsItsGpusUntilItHasStopped) {
  // Scale in to 1 and at once back out to 2: the drained cloud replica still holds the only
  // cloud GPU (max 1 node), so the new replica must wait for it rather than double-book it.
  Cluster c = seed();
  c.pools[1].max_nodes = 1;
  step(c, 2, 0);
  step(c, 2, 60);
  ASSERT_EQ(onPool(c, "GPU-V100-Elastic"), 1);
  Plan in = plan(c, one(1), 100);
  ASSERT_EQ(in.remove.size(), 1u);
  apply(c, in, one(1), 100);
  EXPECT_EQ(c.placed(), 1);
  EXPECT_EQ(c.terminating(), 1);
  Plan out = plan(c, one(2), 101);
  EXPECT_TRUE(out.remove.empty());  // a terminating replica is not removed twice
  ASSERT_EQ(out.create.size(), 1u);
  EXPECT_TRUE(out.bind.empty());
  EXPECT_TRUE(out.provision.empty());  // the pool is at its maximum
  apply(c, out, one(2), 101);
  EXPECT_EQ(c.pending(), 1);
  // The node is never released under a terminating replica, however long it drains.
  advance(c, 2000);
  EXPECT_TRUE(plan(c, one(2), 2000).release.empty());
  finished(c, in.remove[0], 2001);
  EXPECT_EQ(c.terminating(), 0);
  step(c, 2, 2002);
  EXPECT_EQ(onPool(c, "GPU-V100-Elastic"), 1);
  EXPECT_EQ(c.pending(), 0);
  // No GPU is ever held twice.
  for (const auto& n : c.nodes) EXPECT_GE(c.freeGpus(n), 0) << n.name;
}

TEST(Placement, ANodeIsIdleFromWhenItsLastTerminatingReplicaStopped) {
  Cluster c = seed();
  step(c, 2, 0);
  step(c, 2, 60);
  Plan in = plan(c, one(1), 100);
  apply(c, in, one(1), 100);
  finished(c, in.remove[0], 400);  // drained for five minutes
  step(c, 1, 999);
  EXPECT_EQ(c.nodes.size(), 2u);  // idle for 599 s
  step(c, 1, 1000);
  EXPECT_EQ(c.nodes.size(), 1u);
}

TEST(Placement, ServicesWithoutADemandAreLeftAlone) {
  Cluster c = seed();
  step(c, {demand("a", 1)}, 0);
  Plan p = plan(c, std::vector<Demand>{demand("b", 1, 100)}, 10);
  EXPECT_TRUE(p.remove.empty());  // a has no priority in this plan: never a victim
  ASSERT_EQ(p.provision.size(), 1u);
}

}  // namespace
}  // namespace tidegate::control
