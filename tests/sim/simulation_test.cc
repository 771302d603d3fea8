#include "sim/simulation.h"

#include <gtest/gtest.h>

#include "api/loader.h"
#include "engine/model/perf_model.h"

namespace tidegate::sim {
namespace {

// Seed scenario 1 on modelled nodes: one owned GPU, an elastic pool of two, a service that
// scales 1..3 on queue length. `extra` is appended to the service's engine command.
std::string hybridConfig(const std::string& engine_flags = "--step-noise 0",
                         const std::string& service_extra = "") {
  return R"(
apiVersion: tidegate.io/v1alpha1
kind: Gateway
metadata: {name: gw}
spec: {controller: {interval: 1s}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {name: pool}
spec: {targetPortNumber: 8000, selector: {app: qwen}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: qwen}
spec: {modelName: qwen, criticality: Critical, poolRef: {name: pool}}
---
apiVersion: tidegate.io/v1alpha1
kind: NodePool
metadata: {name: owned, labels: {tier: owned}}
spec: {kind: fixed, nodes: 1, gpusPerNode: 1, pricePerNodeHour: 1}
---
apiVersion: tidegate.io/v1alpha1
kind: NodePool
metadata: {name: cloud, labels: {tier: cloud}}
spec: {kind: elastic, maxNodes: 2, gpusPerNode: 1, provisioningDelay: 10s,
       scaleDownUnneededTime: 20s, pricePerNodeHour: 3}
---
apiVersion: tidegate.io/v1alpha1
kind: InferenceService
metadata: {name: qwen-chat, labels: {app: qwen}}
spec:
  servedModelName: qwen
  command: "tidegate engine --port {port} --served-model-name {model} --max-num-seqs 8 )" +
         engine_flags + R"("
  resources: {gpus: 1}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - {metric: "vllm:num_requests_waiting", target: 4}
  behavior:
    scaleDown: {stabilizationWindowSeconds: 15}
)" + service_extra;
}

api::Config load(const std::string& text) {
  auto c = api::parseConfig(text, "sim.yaml");
  EXPECT_TRUE(c) << (c ? "" : c.error().message);
  return c ? std::move(c).value() : api::Config{};
}

Options waveOptions(std::uint64_t seed = 7) {
  Options o;
  o.workload.shape = bench::Shape::kProfile;
  o.workload.profile = {{30, 1}, {60, 10}, {180, 0.5}};
  o.workload.prompt_tokens = {256, 64};
  o.workload.max_tokens = {128, 32};
  o.workload.seed = seed;
  return o;
}

const PoolUsage& pool(const RunResult& r, const std::string& name) {
  for (const auto& p : r.pools)
    if (p.name == name) return p;
  static PoolUsage none;
  ADD_FAILURE() << "no pool " << name;
  return none;
}

TEST(Simulation, EveryArrivalIsAccountedForAndTokensAreExact) {
  const auto c = load(hybridConfig());
  auto o = waveOptions();
  ASSERT_TRUE(validate(c, o));
  const auto r = run(c, o);
  EXPECT_GT(r.summary.sent, 600u);
  EXPECT_EQ(r.summary.sent, r.records.size());
  EXPECT_EQ(r.summary.completed + r.summary.failed, r.summary.sent);
  std::uint64_t out_tokens = 0;
  for (const auto& rec : r.records) {
    if (!rec.ok()) continue;
    EXPECT_GT(rec.ttft, 0);
    EXPECT_GE(rec.e2e, rec.ttft);
    out_tokens += static_cast<std::uint64_t>(rec.output_tokens);
  }
  EXPECT_EQ(out_tokens, r.summary.output_tokens);
  EXPECT_GT(r.steps, 0u);
}

TEST(Simulation, AFixedSeedReplaysExactlyAndAnotherSeedDiffers) {
  const auto c = load(hybridConfig("--step-noise 0.05"));
  const auto a = run(c, waveOptions(3)), b = run(c, waveOptions(3)), d = run(c, waveOptions(4));
  ASSERT_EQ(a.records.size(), b.records.size());
  for (std::size_t i = 0; i < a.records.size(); ++i) {
    EXPECT_EQ(a.records[i].ttft, b.records[i].ttft);
    EXPECT_EQ(a.records[i].e2e, b.records[i].e2e);
  }
  EXPECT_EQ(a.cost, b.cost);
  EXPECT_EQ(a.events.size(), b.events.size());
  EXPECT_EQ(a.steps, b.steps);
  EXPECT_NE(a.summary.ttft.p50, d.summary.ttft.p50);
}

TEST(Simulation, AnIdleReplicaAnswersInOnePrefillStep) {
  // One request at a time on a warm replica: TTFT is the prefill step of the performance model
  // (no noise), E2E adds one decode step per further token.
  const auto c = load(hybridConfig("--step-noise 0 --time-scale 2"));
  Options o;
  o.workload.shape = bench::Shape::kRate;
  o.workload.poisson = false;
  o.workload.rate = 0.2;
  o.workload.max_requests = 5;
  o.workload.prompt_tokens = {300, 0};
  o.workload.max_tokens = {10, 0};
  const auto r = run(c, o);
  ASSERT_EQ(r.summary.completed, 5u);
  const auto perf = engine::PerfParams{}.scaled(2);
  const double prefill = engine::stepDuration(perf, {.prefill_tokens = 300});
  for (const auto& rec : r.records) {
    EXPECT_NEAR(rec.ttft, prefill, 1e-9);
    double e2e = prefill;
    for (int i = 1; i < 10; ++i)
      e2e += engine::stepDuration(perf, {.decode_seqs = 1, .context_tokens = 300 + i - 1});
    EXPECT_NEAR(rec.e2e, e2e, 1e-9);
  }
  // No load: no scaling, the owned node only; its cost is its price over the run.
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(pool(r, "cloud").replica_seconds, 0);
  EXPECT_NEAR(pool(r, "owned").cost, r.end_s / 3600 * 1, 1e-9);
}

TEST(Simulation, AWaveScalesIntoTheElasticPoolAndBackOut) {
  const auto c = load(hybridConfig());
  const auto r = run(c, waveOptions());
  EXPECT_GT(pool(r, "cloud").replica_seconds, 0);
  EXPECT_GT(pool(r, "cloud").cost, 0);
  EXPECT_EQ(pool(r, "cloud").peak_nodes, 2);
  ASSERT_FALSE(r.events.empty());
  EXPECT_GT(r.events.front().to, r.events.front().from);  // the wave scales out first
  EXPECT_EQ(r.services.at(0).peak_replicas, 3);
  // After the wave the elastic nodes are released (scale-down-unneeded 20 s) and only the
  // owned replica remains.
  const auto& nodes = r.series.nodes.at("cloud");
  ASSERT_FALSE(nodes.empty());
  EXPECT_EQ(nodes.back(), 0);
  EXPECT_EQ(r.series.replicas.at("owned").back(), 1);
  // Replicas become Ready only after their node's provisioning delay: never more Ready than
  // placed, and the first cloud replica is Ready >= 10 s after the first scale-out.
  const auto& ready = r.series.ready_replicas.at("cloud");
  double first_ready = -1;
  for (std::size_t i = 0; i < ready.size(); ++i) {
    EXPECT_LE(ready[i], r.series.replicas.at("cloud")[i]);
    if (first_ready < 0 && ready[i] > 0) first_ready = r.series.t[i];
  }
  EXPECT_GE(first_ready - r.events.front().t, 10);
}

TEST(Simulation, ADrainingReplicaKeepsItsGpuUntilItsRequestsFinish) {
  // Waves that come back while the last one's replicas still drain long requests: the scale-out
  // must wait for the drained GPUs instead of placing a second replica on them.
  const auto c = load(hybridConfig("--step-noise 0 --max-model-len 8192"));
  Options o = waveOptions();
  o.workload.profile = {{15, 3}, {40, 0.1}, {15, 3}, {40, 0.1}, {15, 3}, {60, 0.1}};
  o.workload.max_tokens = {400, 50};
  const auto r = run(c, o);
  std::string events;
  for (const auto& e : r.events)
    events += std::to_string(e.t) + ": " + std::to_string(e.from) + "->" + std::to_string(e.to) +
              " (" + e.reason + ")\n";
  ASSERT_GE(r.events.size(), 4u) << events;  // it scaled in and out again
  for (const auto& [pool, placed] : r.series.replicas) {
    const auto& nodes = r.series.nodes.at(pool);
    for (std::size_t i = 0; i < placed.size(); ++i)
      EXPECT_LE(placed[i], nodes[i]) << pool << " at t=" << r.series.t[i];  // 1 GPU per node
  }
}

TEST(Simulation, ColdStartDelaysReadiness) {
  const auto fast = run(load(hybridConfig()), waveOptions());
  const auto slow = run(load(hybridConfig("--step-noise 0 --startup-ms 30000")), waveOptions());
  auto firstCloudReady = [](const RunResult& r) {
    const auto& ready = r.series.ready_replicas.at("cloud");
    for (std::size_t i = 0; i < ready.size(); ++i)
      if (ready[i] > 0) return r.series.t[i];
    return -1.0;
  };
  ASSERT_GT(firstCloudReady(fast), 0);
  ASSERT_GT(firstCloudReady(slow), 0);
  EXPECT_GE(firstCloudReady(slow) - firstCloudReady(fast), 25);
  EXPECT_GT(slow.summary.ttft.p90, fast.summary.ttft.p90);
}

TEST(Simulation, TwoServicesShareTheOwnedGpuByPriority) {
  // Two models on one owned GPU and an elastic pool (seed 002): the higher-priority service
  // holds the owned node, the other runs in the cloud.
  std::string text = hybridConfig("--step-noise 0", "  priority: 10\n");
  text += R"(---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {name: small-pool}
spec: {targetPortNumber: 8000, selector: {app: small}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: small}
spec: {modelName: small, poolRef: {name: small-pool}}
---
apiVersion: tidegate.io/v1alpha1
kind: InferenceService
metadata: {name: small-chat, labels: {app: small}}
spec:
  servedModelName: small
  command: "tidegate engine --port {port} --served-model-name {model} --step-noise 0"
  resources: {gpus: 1}
  minReplicas: 1
  maxReplicas: 1
  metrics:
  - {metric: "vllm:num_requests_waiting", target: 4}
)";
  const auto c = load(text);
  Options o;
  o.workload.shape = bench::Shape::kRate;
  o.workload.rate = 1;
  o.workload.duration_s = 60;
  o.models = {{"qwen", 1}, {"small", 1}};
  ASSERT_TRUE(validate(c, o));
  const auto r = run(c, o);
  ASSERT_EQ(r.services.size(), 2u);
  EXPECT_EQ(r.services[0].name, "qwen-chat");
  EXPECT_GT(r.services[0].replica_seconds.count("owned"), 0u);
  EXPECT_EQ(r.services[0].replica_seconds.count("cloud"), 0u);
  EXPECT_EQ(r.services[1].replica_seconds.count("owned"), 0u);
  EXPECT_GT(r.services[1].replica_seconds.at("cloud"), 0);
  // Both served their own requests.
  EXPECT_GT(r.services[0].summary.completed, 20u);
  EXPECT_GT(r.services[1].summary.completed, 20u);
  EXPECT_EQ(r.summary.failed, 0u);
}

TEST(Simulation, BadInputIsRefusedBeforeAnythingRuns) {
  const auto c = load(hybridConfig());
  Options o = waveOptions();
  o.models = {{"nope", 1}};
  auto st = validate(c, o);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("nope"), std::string::npos) << st.message();

  st = validate(load(hybridConfig("--max-num-seqs zero")), waveOptions());
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("qwen-chat"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("max-num-seqs"), std::string::npos) << st.message();

  auto text = hybridConfig();
  text.replace(text.find("vllm:num_requests_waiting"), 25, "my_custom_gauge");
  st = validate(load(text), waveOptions());
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("my_custom_gauge"), std::string::npos) << st.message();

  api::Config empty;
  empty.file = "empty.yaml";
  st = validate(empty, waveOptions());
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("InferenceService"), std::string::npos) << st.message();
}

TEST(Simulation, AGpuProfileModelsTheReplicasAndTheirColdStart) {
  const auto svc = load(hybridConfig()).services.at(0);
  auto a10 = engineSpec(svc, "");
  auto h100 = engineSpec(svc, "h100-llama-3.1-8b");
  ASSERT_TRUE(a10 && h100);
  EXPECT_EQ(a10->startup_s, 0);    // tidegate engine without --startup-ms starts at once
  EXPECT_GT(h100->startup_s, 10);  // the profile's load time
  EXPECT_EQ(h100->scheduler.max_num_seqs, 8);  // the command's flag overrides the profile
  EXPECT_GT(h100->scheduler.kv_blocks, a10->scheduler.kv_blocks);
  const engine::StepShape prefill{.prefill_tokens = 2048, .prefill_pairs = 2048L * 2049 / 2};
  EXPECT_LT(engine::stepDuration(h100->scheduler.perf, prefill),
            engine::stepDuration(a10->scheduler.perf, prefill) / 3);
  auto bad = engineSpec(svc, "tpu-v9");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("h100-llama-3.1-8b"), std::string::npos);
}

TEST(Simulation, RequestsTooLongForTheModelFailAsTheEngineWould) {
  const auto c = load(hybridConfig("--step-noise 0 --max-model-len 512"));
  Options o;
  o.workload.shape = bench::Shape::kRate;
  o.workload.rate = 1;
  o.workload.max_requests = 10;
  o.workload.prompt_tokens = {600, 0};
  o.workload.max_tokens = {10, 0};
  const auto r = run(c, o);
  EXPECT_EQ(r.summary.failed, 10u);
  EXPECT_EQ(r.summary.errors.at("http_400"), 10u);
}

}  // namespace
}  // namespace tidegate::sim
