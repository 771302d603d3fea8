// `tidegate check` as a user runs it: every example passes, and what it prints of the kinds other
// systems write (a KServe InferenceService and its HPA, an InferencePool's endpointPickerRef).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "support/process.h"

namespace tidegate::testing {
namespace {

std::string example(const std::string& name) {
  return std::string(TIDEGATE_SOURCE_DIR) + "/examples/" + name;
}

TEST(Check, EveryExamplePasses) {
  int checked = 0;
  for (const auto& e : std::filesystem::directory_iterator(example(""))) {
    if (e.path().extension() != ".yaml") continue;
    auto r = runCommand({binaryPath(), "check", "-c", e.path().string()});
    EXPECT_EQ(r.exit_code, 0) << e.path() << "\n" << r.output;
    EXPECT_NE(r.output.find("configuration is valid"), std::string::npos) << r.output;
    ++checked;
  }
  EXPECT_GE(checked, 9);
}

TEST(Check, PrintsHowAKServeServiceAndItsHpaMapAndWhatIsIgnored) {
  auto r = runCommand({binaryPath(), "check", "-c", example("hybrid-cloud-kserve.yaml")});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto file = example("hybrid-cloud-kserve.yaml");
  for (const std::string& line : std::vector<std::string>{
           "service qwen-chat (qwen): 1..3 replicas of 1 GPU, priority 0, scaling on "
           "DCGM_CUSTOM_PROCESS_SM_UTIL=50, placed by resource policy qwen-chat\n",
           "  read from KServe InferenceService default/qwen-chat (serving.kserve.io/v1beta1) and "
           "HorizontalPodAutoscaler default/qwen-chat-hpa (autoscaling/v2):\n",
           "    spec.predictor.containers[0].image -> image vllm/vllm-openai:v0.6.3\n",
           "    spec.predictor.containers[0].command, args -> command sh -c python3 -m "
           "vllm.entrypoints.openai.api_server --port 8080",
           "    served model name qwen (from the command's --served-model-name or --model)\n",
           "    spec.predictor.containers[0] (no ports: KServe's default) -> port 8080\n",
           "    spec.predictor.containers[0].resources -> 1 GPU (nvidia.com/gpu), cpu 4, memory "
           "12Gi\n",
           "    spec.predictor.containers[0].volumeMounts[0] -> modelVolume: "
           "PersistentVolumeClaim llm-model at /mnt/models/Qwen\n",
           "app=isvc.qwen-chat-predictor, arena.kubeflow.org/uid=3399d840e8b371ed7ca45dda29debeb1, "
           "chart=kserve-0.1.0, component=predictor",
           "    HorizontalPodAutoscaler qwen-chat-hpa spec.minReplicas, maxReplicas -> 1..3 "
           "replicas\n",
           "    HorizontalPodAutoscaler qwen-chat-hpa spec.metrics[0] Pods "
           "DCGM_CUSTOM_PROCESS_SM_UTIL averageValue 50 -> metric DCGM_CUSTOM_PROCESS_SM_UTIL=50\n",
           // What it ignores, each with its file, document, line and field.
           "accepted and not acted on:\n",
           file + ": document 1 (InferenceService qwen-chat), line 36: "
                  "spec.predictor.containers[0].command: the command sets its own port (8080)",
       })
    EXPECT_NE(r.output.find(line), std::string::npos) << "missing: " << line << "\n" << r.output;
  // KServe's own annotation and the chart's ignored fields are named; arena's are not KServe's.
  EXPECT_EQ(r.output.find("arena.kubeflow.org/username"), std::string::npos) << r.output;
}

TEST(Check, NamesWhatKServeFieldsItIgnores) {
  const auto path = "/tmp/tidegate-check-" + std::to_string(::getpid()) + ".yaml";
  std::ofstream(path) << R"(apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: chat
  annotations: {serving.kserve.io/deploymentMode: RawDeployment}
spec:
  predictor:
    minReplicas: 1
    maxReplicas: 4
    scaleMetric: concurrency
    scaleTarget: 4
    timeout: 60
    canaryTrafficPercent: 10
    tolerations: [{key: gpu, operator: Exists}]
    containers:
    - name: kserve-container
      command: [tidegate, engine, --port, "{port}", --served-model-name, chat]
      env: [{name: A, value: b}]
      resources: {limits: {nvidia.com/gpu: 1, aliyun.com/gpu-core.percentage: 50}}
      volumeMounts: [{name: dshm, mountPath: /dev/shm}]
    volumes: [{name: dshm, emptyDir: {medium: Memory}}]
)";
  auto r = runCommand({binaryPath(), "check", "-c", path});
  std::remove(path.c_str());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* line : {
           "service chat (chat): 1..4 replicas of 1 GPU, priority 0, scaling on "
           "tidegate:inflight=4\n",
           "spec.predictor.scaleMetric concurrency, scaleTarget 4 -> metric tidegate:inflight=4 "
           "(requests in flight per replica)",
           "line 5: metadata.annotations.serving.kserve.io/deploymentMode: ignored: tidegate runs "
           "the replicas itself",
           "line 12: spec.predictor.timeout: ignored",
           "line 13: spec.predictor.canaryTrafficPercent: ignored: a canary is an HTTPRoute rule",
           "line 14: spec.predictor.tolerations: ignored: replicas are placed on NodePools",
           "line 18: spec.predictor.containers[0].env: ignored",
           "spec.predictor.containers[0].resources.limits.aliyun.com/gpu-core.percentage: ignored",
           "line 20: spec.predictor.containers[0].volumeMounts[0]: ignored: dshm at /dev/shm is "
           "not a persistentVolumeClaim volume",
           "spec.predictor.volumes[0].emptyDir: ignored",
       })
    EXPECT_NE(r.output.find(line), std::string::npos) << "missing: " << line << "\n" << r.output;
  EXPECT_EQ(r.output.find("sets its own port"), std::string::npos) << r.output;
}

TEST(Check, SaysTheEndpointPickerIsNotCalled) {
  const auto file = example("lora-traffic-split-v1.yaml");
  auto r = runCommand({binaryPath(), "check", "-c", file});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const std::string& line : std::vector<std::string>{
           "  vllm-llama2-7b-pool: 2 endpoint(s) 127.0.0.1:8001 127.0.0.1:8002; endpoint picker "
           "Service vllm-llama2-7b-pool-epp:9002, FailClose not called (tidegate picks)\n",
           file + ": document 1 (InferencePool vllm-llama2-7b-pool), line 26: "
                  "spec.endpointPickerRef: Service vllm-llama2-7b-pool-epp:9002, FailClose: "
                  "accepted and not called: tidegate is the endpoint picker of this pool",
           "  test.com /v1* -> vllm-llama2-7b-pool (HTTPRoute test-llm-route, timeout 300 s)\n",
           "  critic-reviews: priority 10 (Critical) on pool vllm-llama2-7b-pool\n",
           "  batch-summaries: priority -1 (Sheddable) on pool vllm-llama2-7b-pool\n",
       })
    EXPECT_NE(r.output.find(line), std::string::npos) << "missing: " << line << "\n" << r.output;
}

TEST(Check, ABadRouteIsAPreciseErrorAndExitTwo) {
  const auto path = "/tmp/tidegate-check-bad-" + std::to_string(::getpid()) + ".yaml";
  std::ofstream(path) << R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  hostnames: [llm.example.com]
  rules:
  - backendRefs:
    - {group: inference.networking.k8s.io, kind: InferencePool, name: missing}
)";
  auto r = runCommand({binaryPath(), "check", "-c", path});
  std::remove(path.c_str());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(path + ": document 1 (HTTPRoute r), line 1: "
                                 "spec.rules[0].backendRefs[0].name: no InferencePool named "
                                 "\"missing\""),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace tidegate::testing
