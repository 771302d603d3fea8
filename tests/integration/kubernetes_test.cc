// Integration tests of `tidegate serve --kubeconfig`: the Kubernetes provider against the
// stand-in API server (tests/support/kube_apiserver.h) and its scheduler, kubelet, Deployment
// controller and node autoscaler (kube_cluster.h), with real `tidegate engine` processes as the
// pods, each on its own loopback address (127.0.0.N) and the InferencePool's target port.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "common/crypto.h"
#include "common/net.h"
#include "support/kube_apiserver.h"
#include "support/kube_cluster.h"
#include "support/process.h"

namespace tidegate::testing {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;
using kube::ApiServer;
using kube::Cluster;

const char* kOwned = "npxxxxxx";
const char* kElastic = "npxxxxxy";

// The seed's ResourcePolicy as written, and its two node pools.
const char* kSeedPolicy = R"(apiVersion: scheduling.alibabacloud.com/v1alpha1
kind: ResourcePolicy
metadata: {name: qwen-chat, namespace: default}
spec:
  selector: {app: isvc.qwen-predictor}
  strategy: prefer
  units:
  - {resource: ecs, nodeSelector: {alibabacloud.com/nodepool-id: npxxxxxx}}
  - {resource: elastic, nodeSelector: {alibabacloud.com/nodepool-id: npxxxxxy}}
)";
const char* kOwnedPool = R"(apiVersion: tidegate.io/v1alpha1
kind: NodePool
metadata: {name: GPU-V100-Edge, labels: {alibabacloud.com/nodepool-id: npxxxxxx}}
spec: {kind: fixed, nodes: 1, gpusPerNode: 1, pricePerNodeHour: 0.9}
)";
const char* kElasticPool = R"(apiVersion: tidegate.io/v1alpha1
kind: NodePool
metadata: {name: GPU-V100-Elastic, labels: {alibabacloud.com/nodepool-id: npxxxxxy}}
spec: {kind: elastic, maxNodes: 2, gpusPerNode: 1, provisioningDelay: 1s, scaleDownUnneededTime: 2s, pricePerNodeHour: 3.06}
)";

// The seed's scenario 1 as tidegate's configuration, with the pods' port `port`.
std::string seedConfig(int port, int min_replicas = 1) {
  return R"(apiVersion: tidegate.io/v1alpha1
kind: Gateway
metadata: {name: gw}
spec: {listen: "127.0.0.1:0", admin: "127.0.0.1:0", controller: {interval: 200ms}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {name: qwen-pool}
spec: {targetPortNumber: )" +
         std::to_string(port) + R"(, selector: {app: isvc.qwen-predictor}}
---
)" + std::string(kSeedPolicy) +
         "---\n" + kOwnedPool + "---\n" + kElasticPool + R"(---
apiVersion: tidegate.io/v1alpha1
kind: InferenceService
metadata: {name: qwen-chat, labels: {app: isvc.qwen-predictor}}
spec:
  servedModelName: qwen
  command: [tidegate, engine, --port, "{port}", --served-model-name, "{model}", --step-ms, "10", --max-num-seqs, "4", --log-level, warn]
  resources: {gpus: 1}
  minReplicas: )" +
         std::to_string(min_replicas) + R"(
  maxReplicas: 3
  metrics: [{metric: "vllm:num_requests_waiting", target: 2}]
  behavior: {scaleDown: {stabilizationWindowSeconds: 2}}
)";
}

// An API server with the seed's cluster: one owned GPU node, an elastic group of up to two
// one-GPU nodes added for Pending pods, and the engine runtime.
struct SeedCluster {
  SeedCluster()
      : api(), cluster(api, [] {
          kube::ClusterOptions o;
          o.runtime = std::make_shared<kube::EngineRuntime>();
          kube::NodeGroup elastic;
          elastic.name = "gpu-v100-elastic";
          elastic.labels = bj::object{{"alibabacloud.com/nodepool-id", kElastic}};
          elastic.gpus = 1;
          elastic.max = 2;
          elastic.provisioning_delay_s = 0.5;
          elastic.scale_down_unneeded_s = 2;
          o.node_groups.push_back(elastic);
          return o;
        }()) {
    auto n = cluster.addNode("edge-1", bj::object{{"alibabacloud.com/nodepool-id", kOwned}}, 1);
    if (!n) throw std::runtime_error(n.error().message);
    static int k = 0;
    kubeconfig =
        "/tmp/tidegate-kubeconfig-" + std::to_string(::getpid()) + "-" + std::to_string(k++);
    std::ofstream(kubeconfig) << "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
                              << "clusters: [{name: c, cluster: {server: \"" << api.url()
                              << "\"}}]\nusers: [{name: u, user: {token: test-token}}]\n"
                              << "contexts: [{name: test, context: {cluster: c, user: u}}]\n";
    // Every pod listens on its own 127.0.0.N at this port, as pods listen on the pool's port.
    port = freePort();
  }
  ~SeedCluster() { std::remove(kubeconfig.c_str()); }

  std::vector<std::string> flags(const std::string& identity) const {
    return {"--kubeconfig",
            kubeconfig,
            "--identity",
            identity,
            "--leader-elect-lease-duration",
            "3",
            "--leader-elect-renew-deadline",
            "2",
            "--leader-elect-retry-period",
            "0.5"};
  }
  int deploymentReplicas(const std::string& name) const {
    auto d = api.get("apps/v1", "deployments", "default", name);
    if (!d) return -1;
    return static_cast<int>(d->at("spec").at("replicas").as_int64());
  }
  // Running, Ready pods of the service per node-pool id of their node.
  std::map<std::string, int> readyPodsByPool() const {
    std::map<std::string, int> out;
    auto pods = api.list("v1", "pods", "default", "tidegate.io/service=qwen-chat");
    if (!pods) return out;
    for (const auto& p : *pods) {
      const auto& spec = p.at("spec").as_object();
      const auto* node_name = spec.if_contains("nodeName");
      if (!node_name || !node_name->is_string()) continue;
      bool ready = false;
      if (const auto* st = p.at("status").as_object().if_contains("conditions"))
        for (const auto& c : st->as_array())
          if (c.at("type") == "Ready" && c.at("status") == "True") ready = true;
      if (!ready || p.at("metadata").as_object().contains("deletionTimestamp")) continue;
      auto node = api.get("v1", "nodes", "", std::string(node_name->as_string()));
      if (!node) continue;
      ++out[std::string(
          node->at("metadata").at("labels").at("alibabacloud.com/nodepool-id").as_string())];
    }
    return out;
  }
  int nodesInPool(const std::string& id) const {
    auto nodes = api.list("v1", "nodes", "", "alibabacloud.com/nodepool-id=" + id);
    return nodes ? static_cast<int>(nodes->size()) : -1;
  }

  ApiServer api;
  Cluster cluster;
  std::string kubeconfig;
  int port = 0;
};

bj::object state(const Serve& s) { return bj::parse(s.admin("/admin/state").body).as_object(); }

TEST(Kubernetes, SeedScenarioOwnedFirstThenTwoCloudNodesThenScaleInElasticFirst) {
  SeedCluster c;
  Serve gw(seedConfig(c.port), c.flags("gw-a"), "info");
  // One Deployment per ResourcePolicy unit, named after its pool; the owned one runs the
  // minimum replica on the owned node.
  ASSERT_TRUE(eventually([&] { return c.readyPodsByPool()[kOwned] == 1; }, 30s)) << state(gw);
  EXPECT_EQ(c.deploymentReplicas("qwen-chat-gpu-v100-edge"), 1);
  EXPECT_EQ(c.deploymentReplicas("qwen-chat-gpu-v100-elastic"), 0);
  ASSERT_TRUE(eventually(
      [&] {
        return gw.post("/v1/completions", R"({"model":"qwen","prompt":"hi","max_tokens":2})")
                   .status == 200;
      },
      10s));

  // The peak: the owned GPU is full, two pods go Pending in the elastic unit, the node
  // autoscaler adds two cloud nodes and they run there.
  const std::string json = "/tmp/tidegate-k8s-" + std::to_string(::getpid()) + ".json";
  ChildProcess load({binaryPath(), "bench", "--url", "http://127.0.0.1:" + std::to_string(gw.port),
                     "--model", "qwen", "-c", "24", "-z", "8s", "--max-tokens", "30", "--progress",
                     "off", "-q", "--json", json},
                    true);
  ASSERT_TRUE(eventually(
      [&] {
        auto ready = c.readyPodsByPool();
        return ready[kOwned] == 1 && ready[kElastic] == 2;
      },
      40s))
      << state(gw);
  EXPECT_EQ(c.nodesInPool(kElastic), 2);
  EXPECT_EQ(c.deploymentReplicas("qwen-chat-gpu-v100-elastic"), 2);
  ASSERT_GE(load.wait(60s), 0);

  // After the peak: the cloud pods drain and go first, the owned one stays, the idle cloud
  // nodes are removed.
  ASSERT_TRUE(eventually(
      [&] {
        auto ready = c.readyPodsByPool();
        return ready[kOwned] == 1 && ready[kElastic] == 0 &&
               c.deploymentReplicas("qwen-chat-gpu-v100-elastic") == 0;
      },
      40s))
      << state(gw);
  EXPECT_TRUE(eventually([&] { return c.nodesInPool(kElastic) == 0; }, 20s));
  EXPECT_EQ(c.deploymentReplicas("qwen-chat-gpu-v100-edge"), 1);

  // No request failed on the way: scale-in drained before deleting.
  std::ifstream in(json);
  std::stringstream ss;
  ss << in.rdbuf();
  std::remove(json.c_str());
  auto s = bj::parse(ss.str()).as_object();
  EXPECT_GT(s.at("requests").at("completed").as_int64(), 50) << ss.str();
  EXPECT_EQ(s.at("requests").at("failed").as_int64(), 0) << ss.str();
  // The state shows the leader, the units and the pools with what they cost.
  auto st = state(gw);
  EXPECT_EQ(st.at("kubernetes").at("leader"), true);
  EXPECT_EQ(st.at("kubernetes").at("lease_holder"), "gw-a");
  EXPECT_GT(gw.metric("tidegate_scaling_events_total", {{"direction", "up"}}), 0);
  EXPECT_GT(gw.metric("tidegate_pool_cost_total", {{"pool", "GPU-V100-Elastic"}}), 0);
}

// Ready, not terminating pods of the service: name -> "IP:port" of their engine.
std::map<std::string, std::string> readyPods(const SeedCluster& c) {
  std::map<std::string, std::string> out;
  auto pods = c.api.list("v1", "pods", "default", "tidegate.io/service=qwen-chat");
  if (!pods) return out;
  for (const auto& p : *pods) {
    const auto& md = p.at("metadata").as_object();
    if (md.contains("deletionTimestamp")) continue;
    const auto& st = p.at("status").as_object();
    bool ready = false;
    if (const auto* cs = st.if_contains("conditions"))
      for (const auto& cond : cs->as_array())
        ready = ready || (cond.at("type") == "Ready" && cond.at("status") == "True");
    const auto* ip = st.if_contains("podIP");
    if (ready && ip && ip->is_string())
      out[std::string(md.at("name").as_string())] =
          std::string(ip->as_string()) + ":" + std::to_string(c.port);
  }
  return out;
}

// The addresses of the endpoints in the gateway's pools (what its picker chooses from).
std::set<std::string> gatewayEndpoints(const Serve& gw) {
  std::set<std::string> out;
  const auto st = state(gw);
  for (const auto& pool : st.at("pools").as_array())
    for (const auto& e : pool.at("endpoints").as_array())
      out.insert(std::string(e.at("address").as_string()));
  return out;
}

bj::object benchReport(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::remove(path.c_str());
  return bj::parse(ss.str()).as_object();
}

// Kubernetes removes a deleted pod's endpoint while it sends SIGTERM
// (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination): requests
// already sent to the pod must still complete. The engine drains as vLLM under uvicorn does.
TEST(Kubernetes, PodDeletionRemovesItsEndpointWithoutFailedRequests) {
  SeedCluster c;
  // Two replicas, not scaled by the load: the Deployment alone replaces the deleted pod (with
  // room to scale, a scale-in could rightly take the Pending replacement instead).
  std::string yaml = seedConfig(c.port, 2);
  const std::string max = "maxReplicas: 3";
  yaml.replace(yaml.find(max), max.size(), "maxReplicas: 2");
  Serve gw(yaml, c.flags("gw-a"), "info");
  ASSERT_TRUE(eventually([&] { return readyPods(c).size() == 2; }, 40s)) << state(gw);
  const auto before = readyPods(c);
  ASSERT_TRUE(eventually([&] { return gatewayEndpoints(gw).size() == 2; }, 10s)) << state(gw);

  // Steady load through the gateway: streams and plain requests.
  const std::string url = "http://127.0.0.1:" + std::to_string(gw.port);
  const std::string base = "/tmp/tidegate-k8s-del-" + std::to_string(::getpid());
  auto bench = [&](const char* mode, const std::string& json) {
    return std::make_unique<ChildProcess>(
        std::vector<std::string>{binaryPath(), "bench", "--url", url, "--model", "qwen", "-c", "4",
                                 "-z", "8s", "--max-tokens", "40", mode, "--progress", "off", "-q",
                                 "--json", json},
        true);
  };
  auto streaming = bench("--stream", base + "-stream.json");
  auto plain = bench("--no-stream", base + "-plain.json");
  std::this_thread::sleep_for(3s);  // mid-load (the bench runs 8 s)

  // Delete the pod of the owned unit through the API server, as `kubectl delete pod` does.
  std::string victim, victim_address;
  for (const auto& [name, address] : before)
    if (name.rfind("qwen-chat-gpu-v100-edge-", 0) == 0) victim = name, victim_address = address;
  ASSERT_FALSE(victim.empty());
  ASSERT_TRUE(c.api.remove("v1", "pods", "default", victim));

  // Its endpoint leaves the gateway's picker...
  EXPECT_TRUE(eventually([&] { return !gatewayEndpoints(gw).contains(victim_address); }, 10s))
      << state(gw);
  // ...and the Deployment brings a replacement to Ready.
  EXPECT_TRUE(eventually(
      [&] {
        const auto now = readyPods(c);
        if (now.contains(victim)) return false;
        for (const auto& [name, address] : now)
          if (!before.contains(name) && name.rfind("qwen-chat-gpu-v100-edge-", 0) == 0) return true;
        return false;
      },
      40s))
      << state(gw);
  // Its process exited and the kubelet confirmed the deletion.
  EXPECT_TRUE(eventually([&] { return !c.api.get("v1", "pods", "default", victim); }, 40s));

  // Not one request failed, streamed or not.
  ASSERT_GE(streaming->wait(60s), 0);
  ASSERT_GE(plain->wait(60s), 0);
  for (const char* mode : {"-stream.json", "-plain.json"}) {
    const auto report = benchReport(base + mode);
    EXPECT_GT(report.at("requests").at("completed").as_int64(), 20) << mode << " " << report;
    EXPECT_EQ(report.at("requests").at("failed").as_int64(), 0) << mode << " " << report;
  }
}

TEST(Kubernetes, TwoGatewaysOneLeaderAndAFailoverWithoutDoubledDecisions) {
  SeedCluster c;
  Serve a(seedConfig(c.port, 2), c.flags("gw-a"), "info");
  Serve b(seedConfig(c.port, 2), c.flags("gw-b"), "info");
  // Both serve traffic (every gateway watches the pods itself); exactly one leads.
  ASSERT_TRUE(eventually(
      [&] {
        auto ready = c.readyPodsByPool();
        return ready[kOwned] + ready[kElastic] == 2;
      },
      40s))
      << state(a);
  for (const Serve* g : {&a, &b})
    ASSERT_TRUE(eventually(
        [&] {
          return g->post("/v1/completions", R"({"model":"qwen","prompt":"x","max_tokens":2})")
                     .status == 200;
        },
        10s));
  auto leaders = [&] {
    int n = 0;
    for (const Serve* g : {&a, &b}) n += g->metric("tidegate_leader_is_leader") == 1;
    return n;
  };
  ASSERT_TRUE(eventually([&] { return leaders() == 1; }, 10s));
  const bool a_leads = a.metric("tidegate_leader_is_leader") == 1;
  Serve& leader = a_leads ? a : b;
  Serve& follower = a_leads ? b : a;
  const std::string follower_id = a_leads ? "gw-b" : "gw-a";
  auto lease = c.api.get("coordination.k8s.io/v1", "leases", "default", "tidegate-leader");
  ASSERT_TRUE(lease);
  EXPECT_EQ(lease->at("spec").at("holderIdentity"), a_leads ? "gw-a" : "gw-b");
  // The leader dies without releasing its Lease: the other takes over once it expires.
  ::kill(leader.proc->pid(), SIGKILL);
  ASSERT_TRUE(eventually([&] { return follower.metric("tidegate_leader_is_leader") == 1; }, 15s));
  lease = c.api.get("coordination.k8s.io/v1", "leases", "default", "tidegate-leader");
  EXPECT_EQ(lease->at("spec").at("holderIdentity").as_string(), follower_id);
  EXPECT_GE(lease->at("spec").at("leaseTransitions").as_int64(), 1);
  // The new leader takes the same decisions: still two replicas, not four.
  std::this_thread::sleep_for(2s);  // let a few reconciles pass (a negative check)
  EXPECT_EQ(c.deploymentReplicas("qwen-chat-gpu-v100-edge") +
                c.deploymentReplicas("qwen-chat-gpu-v100-elastic"),
            2);
  EXPECT_EQ(
      follower.post("/v1/completions", R"({"model":"qwen","prompt":"x","max_tokens":2})").status,
      200);
}

TEST(Kubernetes, WatchesResumeAfterADroppedConnectionAndRelistAfterGone) {
  SeedCluster c;
  Serve gw(seedConfig(c.port), c.flags("gw-a"), "info");
  ASSERT_TRUE(eventually([&] { return c.readyPodsByPool()[kOwned] == 1; }, 30s)) << state(gw);
  auto relists = [&] {
    std::int64_t n = 0;
    const auto st = state(gw);  // (a range-for over a part of a temporary would dangle)
    for (const auto& w : st.at("kubernetes").at("watches").as_array())
      n += w.at("relists_after_410").as_int64();
    return n;
  };
  // A dropped connection: the watches resume from their resourceVersion (no relist)...
  c.api.dropWatches();
  c.api.compact();  // ...and a history compacted meanwhile answers 410: list again.
  c.api.dropWatches();
  EXPECT_TRUE(eventually([&] { return relists() >= 1; }, 15s)) << state(gw);
  // Still in step with the cluster: a new pod (a second replica) becomes an endpoint.
  gw.rewrite(seedConfig(c.port, 2));
  ASSERT_TRUE(gw.reload());
  ASSERT_TRUE(eventually(
      [&] {
        auto ready = c.readyPodsByPool();
        return ready[kOwned] + ready[kElastic] == 2;
      },
      40s));
  EXPECT_TRUE(eventually(
      [&] {
        int ready = 0;
        const auto st = state(gw);
        for (const auto& u : st.at("services").as_array()[0].at("units").as_array())
          for (const auto& p : u.at("pods").as_array()) ready += p.at("state") == "Ready";
        return ready == 2;
      },
      10s))
      << state(gw);
}

TEST(Kubernetes, CheckPrintsWhatTheClusterHolds) {
  SeedCluster c;
  Serve gw(seedConfig(c.port), c.flags("gw-a"));
  ASSERT_TRUE(eventually([&] { return c.readyPodsByPool()[kOwned] == 1; }, 30s)) << state(gw);
  auto r = runCommand({binaryPath(), "check", "-c", gw.path, "--kubeconfig", c.kubeconfig});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* want :
       {"pool GPU-V100-Edge (fixed, alibabacloud.com/nodepool-id=npxxxxxx): 1 nodes, 1 ready, 1 "
        "GPUs",
        "pool GPU-V100-Elastic (elastic, alibabacloud.com/nodepool-id=npxxxxxy): 0 nodes",
        "service default/qwen-chat:", "unit 0 deployment qwen-chat-gpu-v100-edge: 1 replicas",
        "unit 1 deployment qwen-chat-gpu-v100-elastic: 0 replicas", "Ready on edge-1 at 127.0.0.",
        "lease default/tidegate-leader: held by gw-a"})
    EXPECT_NE(r.output.find(want), std::string::npos) << want << "\n" << r.output;
  // A denial is an error naming what is missing.
  c.api.deny("list", "", "nodes");
  auto denied = runCommand({binaryPath(), "check", "-c", gw.path, "--kubeconfig", c.kubeconfig});
  EXPECT_EQ(denied.exit_code, 2) << denied.output;
  EXPECT_NE(denied.output.find("cannot list resource \"nodes\""), std::string::npos)
      << denied.output;
}

TEST(Kubernetes, PendingPastTheUnitsTimeoutMovesOnToTheElasticUnit) {
  SeedCluster c;
  // Another workload holds the owned GPU.
  ASSERT_TRUE(
      c.api.create("v1", "pods", "default",
                   bj::parse(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"training-job"},
        "spec":{"nodeName":"edge-1","containers":[{"name":"train","image":"trainer",
          "command":["train"],"resources":{"limits":{"nvidia.com/gpu":"1"}}}]}})")
                       .as_object()));
  std::string yaml = seedConfig(c.port);
  const std::string strategy = "  strategy: prefer\n";
  yaml.replace(yaml.find(strategy), strategy.size(),
               strategy + "  whenTryNextUnits: {policy: TimeoutOrExceedMax, timeout: 2s}\n");
  Serve gw(yaml, c.flags("gw-a"), "info");
  // The replica waits in the owned unit (Pending: the scheduler finds no free GPU there)...
  ASSERT_TRUE(eventually([&] { return c.deploymentReplicas("qwen-chat-gpu-v100-edge") == 1; }, 15s))
      << state(gw);
  EXPECT_EQ(c.deploymentReplicas("qwen-chat-gpu-v100-elastic"), 0);
  // ...until the timeout: then the owned pool counts as full and it goes to the elastic unit,
  // whose node autoscaler adds a node for it.
  ASSERT_TRUE(eventually([&] { return c.readyPodsByPool()[kElastic] == 1; }, 30s)) << state(gw);
  EXPECT_EQ(c.deploymentReplicas("qwen-chat-gpu-v100-edge"), 0);
  EXPECT_EQ(c.deploymentReplicas("qwen-chat-gpu-v100-elastic"), 1);
  EXPECT_EQ(c.readyPodsByPool()[kOwned], 0);
  // It moved once: no flapping between the units while the new pod was Pending.
  int elastic_scales = 0;
  for (const auto& r : c.api.requests())
    elastic_scales +=
        r.verb == "patch" && r.path.ends_with("/deployments/qwen-chat-gpu-v100-elastic/scale");
  EXPECT_EQ(elastic_scales, 1);
}

// The seed's configuration split: the file keeps the Gateway, the ResourcePolicy and the
// elastic NodePool; the owned NodePool, the InferencePool, the service, the plan and the key are
// cluster objects, and the key's secret is a Kubernetes Secret.
std::string fileHalf() {
  return R"(apiVersion: tidegate.io/v1alpha1
kind: Gateway
metadata: {name: gw}
spec: {listen: "127.0.0.1:0", admin: "127.0.0.1:0", controller: {interval: 200ms}, auth: {apiKeys: required}}
---
)" + std::string(kSeedPolicy) +
         "---\n" + kElasticPool;
}

bj::object secret(const std::string& value) {
  return bj::object{
      {"apiVersion", "v1"},
      {"kind", "Secret"},
      {"metadata",
       bj::object{{"name", "qwen-key"}, {"labels", bj::object{{"tidegate.io/api-key", "true"}}}}},
      {"data", bj::object{{"key", crypto::base64Encode(value)}}}};
}

TEST(Kubernetes, ConfigurationObjectsAndSecretBackedKeysComeFromTheApi) {
  SeedCluster c;
  auto yaml = [](const std::string& json) { return bj::parse(json).as_object(); };
  c.api.registerResource("inference.networking.x-k8s.io", "v1alpha2", "inferencepools",
                         "InferencePool", true);
  c.api.registerResource("tidegate.io", "v1alpha1", "inferenceservices", "InferenceService", true,
                         /*status_subresource=*/true);
  c.api.registerResource("tidegate.io", "v1alpha1", "usageplans", "UsagePlan", true);
  c.api.registerResource("tidegate.io", "v1alpha1", "apikeys", "APIKey", true);
  c.api.registerResource("tidegate.io", "v1alpha1", "nodepools", "NodePool", false,
                         /*status_subresource=*/true);
  ASSERT_TRUE(c.api.create("tidegate.io/v1alpha1", "nodepools", "",
                           yaml(R"({"apiVersion":"tidegate.io/v1alpha1","kind":"NodePool",
      "metadata":{"name":"gpu-v100-edge","labels":{"alibabacloud.com/nodepool-id":"npxxxxxx"}},
      "spec":{"kind":"fixed","nodes":1,"gpusPerNode":1,"pricePerNodeHour":0.9}})")));
  ASSERT_TRUE(c.api.create(
      "inference.networking.x-k8s.io/v1alpha2", "inferencepools", "default",
      yaml(R"({"apiVersion":"inference.networking.x-k8s.io/v1alpha2",
      "kind":"InferencePool","metadata":{"name":"qwen-pool"},
      "spec":{"targetPortNumber":)" +
           std::to_string(c.port) + R"(,"selector":{"app":"isvc.qwen-predictor"}}})")));
  ASSERT_TRUE(c.api.create("tidegate.io/v1alpha1", "inferenceservices", "default",
                           yaml(R"({"apiVersion":"tidegate.io/v1alpha1","kind":"InferenceService",
      "metadata":{"name":"qwen-chat","labels":{"app":"isvc.qwen-predictor"}},
      "spec":{"servedModelName":"qwen","resources":{"gpus":1},"minReplicas":1,"maxReplicas":3,
        "command":["tidegate","engine","--port","{port}","--served-model-name","{model}",
                   "--log-level","warn"]}})")));
  ASSERT_TRUE(c.api.create("tidegate.io/v1alpha1", "usageplans", "default",
                           yaml(R"({"apiVersion":"tidegate.io/v1alpha1","kind":"UsagePlan",
      "metadata":{"name":"free"},"spec":{"requestsPerMinute":1000}})")));
  ASSERT_TRUE(c.api.create("tidegate.io/v1alpha1", "apikeys", "default",
                           yaml(R"({"apiVersion":"tidegate.io/v1alpha1","kind":"APIKey",
      "metadata":{"name":"team"},"spec":{"plan":"free","secretRef":{"name":"qwen-key"}}})")));
  ASSERT_TRUE(c.api.create("v1", "secrets", "default", secret("sk-first")));

  auto flags = c.flags("gw-a");
  flags.insert(flags.end(), {"--watch-namespace", "default"});
  Serve gw(fileHalf(), flags, "info");
  auto ask = [&](const std::string& key) {
    return gw
        .post("/v1/completions", R"({"model":"qwen","prompt":"hi","max_tokens":2})",
              {{"Authorization", "Bearer " + key}})
        .status;
  };
  // The service from the API runs on the owned node; the key from the Secret is accepted.
  ASSERT_TRUE(eventually([&] { return c.readyPodsByPool()[kOwned] == 1; }, 30s)) << state(gw);
  ASSERT_TRUE(eventually([&] { return ask("sk-first") == 200; }, 15s)) << state(gw);
  EXPECT_EQ(ask("sk-wrong"), 401);
  // The InferenceService object gets its status from the leader.
  EXPECT_TRUE(eventually(
      [&] {
        auto isvc = c.api.get("tidegate.io/v1alpha1", "inferenceservices", "default", "qwen-chat");
        if (!isvc || !isvc->contains("status")) return false;
        const auto& st = isvc->at("status").as_object();
        return st.contains("readyReplicas") && st.at("readyReplicas").as_int64() == 1 &&
               st.at("units").as_array()[0].at("deployment") == "qwen-chat-gpu-v100-edge";
      },
      15s));
  // So does the owned NodePool: its node and the GPU the replica holds.
  EXPECT_TRUE(eventually(
      [&] {
        auto np = c.api.get("tidegate.io/v1alpha1", "nodepools", "", "gpu-v100-edge");
        if (!np || !np->contains("status")) return false;
        const auto& st = np->at("status").as_object();
        return st.at("nodes") == 1 && st.at("gpus") == 1 && st.at("gpusUsed") == 1;
      },
      15s));
  // Rotating the Secret rotates the key.
  auto rotated = secret("sk-second");
  ASSERT_TRUE(c.api.update("v1", "secrets", "default", rotated));
  EXPECT_TRUE(eventually([&] { return ask("sk-second") == 200; }, 15s)) << state(gw);
  EXPECT_EQ(ask("sk-first"), 401);
  // A cluster object that does not validate is refused whole, naming it; the running
  // configuration keeps serving.
  ASSERT_TRUE(c.api.create("tidegate.io/v1alpha1", "usageplans", "default",
                           yaml(R"({"apiVersion":"tidegate.io/v1alpha1","kind":"UsagePlan",
      "metadata":{"name":"bad"},"spec":{"requestsPerMinute":"lots"}})")));
  EXPECT_TRUE(eventually(
      [&] {
        const auto st = state(gw);
        const auto& cfg = st.at("configuration").as_object();
        const auto* err = cfg.if_contains("last_reload_error");
        return err && err->is_string() &&
               err->as_string().find("kubernetes UsagePlan default/bad") != std::string::npos;
      },
      15s))
      << state(gw);
  EXPECT_EQ(ask("sk-second"), 200);
}

TEST(Kubernetes, RbacDenialsAreReportedAndTheLastStateKeepsServing) {
  SeedCluster c;
  c.api.deny("list", "", "pods");
  Serve gw(seedConfig(c.port), c.flags("gw-a"), "info");
  // The watch names what is forbidden, and for whom.
  ASSERT_TRUE(eventually(
      [&] {
        // (The state has no kubernetes section until the client has started.)
        const auto st = state(gw);
        const auto* k = st.if_contains("kubernetes");
        if (!k || !k->as_object().if_contains("watches")) return false;
        for (const auto& w : k->at("watches").as_array())
          if (w.at("last_error").as_string().find("forbidden") != std::string::npos) return true;
        return false;
      },
      15s))
      << state(gw);
  const auto st = state(gw);
  std::string errors;
  for (const auto& w : st.at("kubernetes").at("watches").as_array())
    errors += std::string(w.at("last_error").as_string());
  EXPECT_NE(errors.find("cannot list resource \"pods\""), std::string::npos) << errors;
  EXPECT_NE(errors.find("system:serviceaccount:tidegate:tidegate"), std::string::npos) << errors;
  // Without the pods it must not act: no Deployment is scaled on a partial view.
  EXPECT_EQ(c.deploymentReplicas("qwen-chat-gpu-v100-edge"), -1);
  // Granted again: it catches up.
  c.api.allowAll();
  EXPECT_TRUE(eventually([&] { return c.readyPodsByPool()[kOwned] == 1; }, 40s)) << state(gw);
}

}  // namespace
}  // namespace tidegate::testing
