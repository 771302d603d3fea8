#include "kube/objects.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/loader.h"

namespace tidegate::kube {
namespace {

api::Config seed() {
  auto c = api::parseConfig(R"(apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {name: qwen-pool}
spec: {targetPortNumber: 8080, selector: {app: qwen}}
---
apiVersion: scheduling.alibabacloud.com/v1alpha1
kind: ResourcePolicy
metadata: {name: qwen}
spec:
  selector: {app: qwen}
  units:
  - {resource: ecs, nodeSelector: {pool: owned}, max: 2}
  - {resource: elastic, nodeSelector: {pool: cloud}}
---
apiVersion: tidegate.io/v1alpha1
kind: NodePool
metadata: {name: GPU-V100-Edge, labels: {pool: owned}}
spec: {kind: fixed, nodes: 1, gpusPerNode: 2}
---
apiVersion: tidegate.io/v1alpha1
kind: NodePool
metadata: {name: GPU-V100-Elastic, labels: {pool: cloud}}
spec: {kind: elastic, maxNodes: 4, gpusPerNode: 1}
---
apiVersion: tidegate.io/v1alpha1
kind: InferenceService
metadata: {name: qwen-chat, labels: {app: qwen}}
spec:
  servedModelName: qwen
  image: vllm/vllm-openai:v0.6.3
  command: [vllm, serve, /models/qwen, --port, "{port}", --served-model-name, "{model}"]
  resources: {gpus: 1, cpu: "4", memory: 12Gi}
  modelVolume: {claimName: llm-model, mountPath: /models}
)",
                            "seed.yaml");
  if (!c) throw std::runtime_error(c.error().message);
  return *c;
}

bj::object pod(const std::string& name, const std::string& node, int unit, bool ready,
               const std::string& extra_meta = "") {
  return bj::parse(
             R"({"metadata":{"name":")" + name +
             R"(","namespace":"default","creationTimestamp":"2026-11-23T00:00:00Z",
    "labels":{"app":"qwen","tidegate.io/service":"qwen-chat","tidegate.io/unit":")" +
             std::to_string(unit) + "\"}" + extra_meta + R"(},
    "spec":{"nodeName":")" +
             node +
             R"(","containers":[{"name":"engine","resources":{"limits":{"nvidia.com/gpu":"1"}}}]},
    "status":{"phase":"Running","podIP":"10.0.0.)" +
             std::to_string(name.size()) + R"(","conditions":[{"type":"Ready","status":")" +
             (ready ? "True" : "False") + R"("}]}})")
      .as_object();
}

bj::object node(const std::string& name, const std::string& pool, int gpus) {
  return bj::parse(R"({"metadata":{"name":")" + name + R"(","labels":{"pool":")" + pool +
                   R"("}},"status":{"allocatable":{"nvidia.com/gpu":")" + std::to_string(gpus) +
                   R"(","cpu":"8"},"conditions":[{"type":"Ready","status":"True"}]}})")
      .as_object();
}

TEST(KubeObjects, PodsAndNodesSayWhatPlacementNeeds) {
  auto p = podInfo(pod("a", "n1", 1, true));
  EXPECT_TRUE(p.ready);
  EXPECT_EQ(p.gpus, 1);
  EXPECT_EQ(p.unit, 1);
  EXPECT_EQ(p.node, "n1");
  EXPECT_DOUBLE_EQ(p.created, 1795392000);
  auto pending = bj::parse(R"({"metadata":{"name":"p","namespace":"default"},"spec":{},
    "status":{"phase":"Pending","conditions":[{"type":"PodScheduled","status":"False",
    "reason":"Unschedulable","message":"0/1 nodes are available: 1 Insufficient nvidia.com/gpu."}]}})");
  auto pi = podInfo(pending.as_object());
  EXPECT_TRUE(pi.unschedulable);
  EXPECT_NE(pi.pending_message.find("Insufficient"), std::string::npos);
  EXPECT_EQ(pi.unit, -1);
  auto n = nodeInfo(node("n1", "owned", 2));
  EXPECT_TRUE(n.ready);
  EXPECT_EQ(n.gpus, 2);
  auto cordoned = node("n2", "owned", 2);
  cordoned["spec"] = bj::object{{"unschedulable", true}};
  EXPECT_FALSE(nodeInfo(cordoned).ready);
  const auto c = seed();
  EXPECT_EQ(poolOf(c, n)->meta.name, "GPU-V100-Edge");
  EXPECT_EQ(poolOf(c, nodeInfo(node("x", "other", 1))), nullptr);
}

TEST(KubeObjects, OnlyReadyPodsThatAPoolSelectsAreEndpoints) {
  const auto c = seed();
  std::vector<PodInfo> pods = {
      podInfo(pod("ready", "n1", 0, true)),
      podInfo(pod("notready", "n1", 0, false)),
      podInfo(pod("draining", "n1", 0, true,
                  R"(,"annotations":{"tidegate.io/draining":"2026-11-23T00:00:00Z"})")),
      podInfo(pod("going", "n1", 0, true, R"(,"deletionTimestamp":"2026-11-23T00:00:00Z")")),
  };
  auto other_ns = podInfo(pod("elsewhere", "n1", 0, true));
  other_ns.ns = "other";  // no pool in that namespace
  pods.push_back(other_ns);
  auto eps = podEndpoints(c, pods);
  ASSERT_EQ(eps.size(), 1u);
  EXPECT_EQ(eps[0].meta.name, "ready");
  EXPECT_EQ(eps[0].addresses[0].port, 0);  // each pool's own target port
}

TEST(KubeObjects, TheUnitDeploymentCarriesTheServiceAndTheUnit) {
  const auto c = seed();
  const auto& s = c.services[0];
  EXPECT_EQ(unitDeploymentName(c, s, 0), "qwen-chat-gpu-v100-edge");
  EXPECT_EQ(unitDeploymentName(c, s, 1), "qwen-chat-gpu-v100-elastic");
  EXPECT_EQ(servicePort(c, s), 8080);  // the pool's target port
  auto d = deploymentFor(c, s, 1);
  EXPECT_EQ(d.at("spec").at("replicas"), 0);
  const auto& tmpl = d.at("spec").at("template").as_object();
  EXPECT_EQ(tmpl.at("metadata").at("labels").at("app"), "qwen");
  EXPECT_EQ(tmpl.at("metadata").at("labels").at("tidegate.io/unit"), "1");
  EXPECT_EQ(tmpl.at("spec").at("nodeSelector").at("pool"), "cloud");
  const auto& ctr = tmpl.at("spec").at("containers").as_array()[0].as_object();
  EXPECT_EQ(ctr.at("image"), "vllm/vllm-openai:v0.6.3");
  EXPECT_EQ(ctr.at("command").as_array()[0], "vllm");
  EXPECT_EQ(ctr.at("args").as_array()[3], "8080");  // {port}
  EXPECT_EQ(ctr.at("args").as_array()[5], "qwen");  // {model}
  EXPECT_EQ(ctr.at("resources").at("limits").at("nvidia.com/gpu"), "1");
  EXPECT_EQ(ctr.at("readinessProbe").at("httpGet").at("path"), "/health");
  EXPECT_EQ(ctr.at("volumeMounts").as_array()[0].at("mountPath"), "/models");
  EXPECT_EQ(tmpl.at("spec").at("volumes").as_array()[0].at("persistentVolumeClaim").at("claimName"),
            "llm-model");
  // The selector is the service and the unit only (immutable, and never shared by two units).
  EXPECT_EQ(d.at("spec").at("selector").at("matchLabels").as_object().size(), 2u);
}

TEST(KubeObjects, TheModelFollowsTheDeploymentsAndOtherWorkloadsGpus) {
  const auto c = seed();
  const auto& s = c.services[0];
  std::vector<NodeInfo> nodes = {nodeInfo(node("edge-1", "owned", 2))};
  auto foreign = podInfo(pod("trainer", "edge-1", 0, true));
  foreign.labels = {{"app", "trainer"}};
  std::vector<PodInfo> pods = {podInfo(pod("a", "edge-1", 0, true)), foreign};
  // Unit 1's Deployment says 2, no pod yet: two Pending replicas to come there.
  auto m = clusterModel(c, s, nodes, pods, {1, 2}, 1795392100);
  ASSERT_EQ(m.replicas.size(), 3u);
  ASSERT_EQ(m.nodes.size(), 1u);
  EXPECT_EQ(m.nodes[0].gpus, 1);  // 2 allocatable, 1 held by the trainer
  EXPECT_EQ(m.freeGpus(m.nodes[0]), 0);
  int pending_in_1 = 0;
  for (const auto& r : m.replicas) pending_in_1 += r.unit == 1 && r.node.empty();
  EXPECT_EQ(pending_in_1, 2);
  // Unit 0's Deployment says 0 while its pod still exists: it is going, not counted.
  auto shrinking = clusterModel(c, s, nodes, pods, {0, 0}, 1795392100);
  EXPECT_TRUE(shrinking.replicas.empty());
}

TEST(KubeObjects, UnitTargetsCountWhatThePlanKeepsMovesAndAdds) {
  const auto c = seed();
  const auto& s = c.services[0];
  std::vector<NodeInfo> nodes = {nodeInfo(node("edge-1", "owned", 2)),
                                 nodeInfo(node("cloud-1", "cloud", 1))};
  std::vector<PodInfo> pods = {podInfo(pod("a", "edge-1", 0, true))};
  auto m = clusterModel(c, s, nodes, pods, {1, 0}, 1795392100);
  // 4 replicas: the owned unit fits one more (max 2), the rest go to the elastic unit.
  const auto four = api::placementDemand(c, s, 4);
  auto p = control::plan(m, std::span(&four, 1), 1795392100);
  EXPECT_EQ(unitTargets(m, four, p), (std::vector<int>{2, 2}));
  // Back to 1: the elastic ones go first.
  std::vector<PodInfo> more = {podInfo(pod("a", "edge-1", 0, true)),
                               podInfo(pod("b", "edge-1", 0, true)),
                               podInfo(pod("c", "cloud-1", 1, true))};
  auto m2 = clusterModel(c, s, nodes, more, {2, 1}, 1795392100);
  const auto one = api::placementDemand(c, s, 1);
  auto down = control::plan(m2, std::span(&one, 1), 1795392100);
  EXPECT_EQ(unitTargets(m2, one, down), (std::vector<int>{1, 0}));
  ASSERT_EQ(down.remove.size(), 2u);
  EXPECT_EQ(down.remove[0], "c");
}

}  // namespace
}  // namespace tidegate::kube
