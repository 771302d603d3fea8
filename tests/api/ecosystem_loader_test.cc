// The loader on the configuration the ecosystem writes today: InferencePool v1 in full,
// InferenceObjective, InferenceModelRewrite, the Gateway API's HTTPRoute, and KServe's
// InferenceService with the HorizontalPodAutoscaler `arena serve kserve` writes beside it.
#include <gtest/gtest.h>

#include <algorithm>

#include "api/loader.h"

namespace tidegate::api {
namespace {

std::string source(const std::string& path) {
  return std::string(TIDEGATE_SOURCE_DIR) + "/" + path;
}

bool hasNote(const Config& c, const std::string& text) {
  return std::any_of(c.notes.begin(), c.notes.end(),
                     [&](const std::string& n) { return n.find(text) != std::string::npos; });
}

std::string notes(const Config& c) {
  std::string out;
  for (const auto& n : c.notes) out += n + "\n";
  return out;
}

const std::string kPoolV1 = R"(apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: p}
spec:
  selector: {matchLabels: {app: x}}
  targetPorts: [{number: 8000}]
)";

TEST(LoaderEcosystem, InferencePoolV1InFull) {
  auto c = parseConfig(R"(apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: p}
spec:
  selector:
    matchLabels: {app: x, tier: gpu}
  targetPorts: [{number: 8000}, {number: 8001}, {number: 8002}]
  appProtocol: http
  endpointPickerRef:
    group: ""
    kind: Service
    name: p-epp
    port: {number: 9002}
    failureMode: FailOpen
)",
                       "pool.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  const auto& p = c->pools[0];
  EXPECT_EQ(p.selector, (Labels{{"app", "x"}, {"tier", "gpu"}}));
  EXPECT_EQ(p.target_ports, (std::vector<std::uint16_t>{8000, 8001, 8002}));
  EXPECT_EQ(p.endpoint_picker, "Service p-epp:9002, FailOpen");
  // `check` says the picker is not called.
  EXPECT_TRUE(hasNote(*c,
                      "pool.yaml: document 1 (InferencePool p), line 10: "
                      "spec.endpointPickerRef: Service p-epp:9002, FailOpen: accepted and "
                      "not called: tidegate is the endpoint picker"))
      << notes(*c);
}

TEST(LoaderEcosystem, ObjectivesFromEitherGroup) {
  auto c = parseConfig(kPoolV1 + R"(---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceObjective
metadata: {name: batch}
spec: {priority: -5, poolRef: {group: inference.networking.k8s.io, kind: InferencePool, name: p}}
---
apiVersion: llm-d.ai/v1alpha2
kind: InferenceObjective
metadata: {name: default-priority}
spec: {poolRef: {name: p}}
)",
                       "o.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c->objectives.size(), 2u);
  EXPECT_EQ(c->objectives[0].priority, -5);
  EXPECT_EQ(c->objectives[0].pool, "p");
  EXPECT_EQ(c->objectives[1].priority, 0);  // unset: 0, as the picker treats it
  EXPECT_EQ(criticalityOf(-5), Criticality::kSheddable);
  EXPECT_EQ(criticalityOf(0), Criticality::kStandard);
  EXPECT_EQ(criticalityOf(3), Criticality::kCritical);
}

TEST(LoaderEcosystem, RewriteRulesBecomeOneModelPerMatchAndAFallback) {
  auto c = parseConfig(kPoolV1 + R"(---
apiVersion: llm-d.ai/v1alpha2
kind: InferenceModelRewrite
metadata: {name: rw}
spec:
  poolRef: {name: p}
  rules:
  - matches:
    - model: {type: Exact, value: chat}
    - model: {value: chat-latest}
    targets:
    - {modelRewrite: llama-v1, weight: 90}
    - {modelRewrite: llama-v2, weight: 10}
  - targets: [{modelRewrite: llama-v1}, {modelRewrite: llama-v2}]
)",
                       "rw.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c->models.size(), 3u);
  for (const auto& m : c->models) {
    EXPECT_EQ(m.kind, "InferenceModelRewrite");
    EXPECT_EQ(m.meta.name, "rw");
    EXPECT_EQ(m.pool, "p");
  }
  EXPECT_EQ(c->models[0].model_name, "chat");
  EXPECT_EQ(c->models[1].model_name, "chat-latest");
  EXPECT_EQ(c->models[0].rule, 0);
  ASSERT_EQ(c->models[0].targets.size(), 2u);
  EXPECT_EQ(c->models[0].targets[1].name, "llama-v2");
  EXPECT_EQ(c->models[0].targets[1].weight, 10);
  // No matches: the pool's fallback; no weights: an even split.
  EXPECT_TRUE(c->models[2].fallback);
  EXPECT_EQ(c->models[2].rule, 1);
  EXPECT_EQ(c->models[2].targets[0].weight, c->models[2].targets[1].weight);
}

TEST(LoaderEcosystem, HTTPRouteHostsMatchesAndWeightedPools) {
  auto c = parseConfig(kPoolV1 + R"(---
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: q}
spec: {selector: {matchLabels: {app: y}}, targetPorts: [{number: 8000}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw, sectionName: http}]
  hostnames: [llm.example.com, "*.batch.example.com"]
  rules:
  - name: canary
    matches:
    - headers: [{name: X-Canary, value: "yes"}]
      queryParams: [{type: Exact, name: v, value: "2"}]
      method: POST
    - path: {type: Exact, value: /v1/completions}
    backendRefs:
    - {group: inference.networking.k8s.io, kind: InferencePool, name: q}
  - backendRefs:
    - {group: inference.networking.k8s.io, kind: InferencePool, name: p, weight: 90, port: 8000}
    - {group: inference.networking.k8s.io, kind: InferencePool, name: q, weight: 10}
    timeouts: {request: 300s, backendRequest: 60s}
)",
                       "route.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c->routes.size(), 1u);
  const auto& r = c->routes[0];
  EXPECT_EQ(r.kind, "HTTPRoute");
  EXPECT_EQ(r.hostnames, (std::vector<std::string>{"llm.example.com", "*.batch.example.com"}));
  EXPECT_EQ(r.parents, std::vector<std::string>{"gw"});
  ASSERT_EQ(r.rules.size(), 2u);
  const auto& m = r.rules[0].matches;
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].path_type, HTTPRouteMatch::Path::kPrefix);  // the default: PathPrefix /
  EXPECT_EQ(m[0].path, "/");
  EXPECT_EQ(m[0].headers, (std::vector<std::pair<std::string, std::string>>{{"x-canary", "yes"}}));
  EXPECT_EQ(m[0].query, (std::vector<std::pair<std::string, std::string>>{{"v", "2"}}));
  EXPECT_EQ(m[0].method, "POST");
  EXPECT_EQ(m[1].path_type, HTTPRouteMatch::Path::kExact);
  EXPECT_EQ(m[1].path, "/v1/completions");
  EXPECT_TRUE(r.rules[1].matches.empty());
  ASSERT_EQ(r.rules[1].backends.size(), 2u);
  EXPECT_EQ(r.rules[1].backends[0].pool, "p");
  EXPECT_EQ(r.rules[1].backends[0].weight, 90);
  EXPECT_EQ(r.rules[0].backends[0].weight, 1);  // the default
  EXPECT_DOUBLE_EQ(r.rules[1].timeout_s, 300);
  EXPECT_TRUE(hasNote(*c, "spec.rules[1].timeouts.backendRequest: ignored")) << notes(*c);
  EXPECT_TRUE(hasNote(*c, "spec.rules[1].backendRefs[0].port: ignored")) << notes(*c);
}

TEST(LoaderEcosystem, TheSeedsKServeServiceAndItsHpaAreOneInferenceService) {
  auto c = loadConfig(source("examples/hybrid-cloud-kserve.yaml"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c->services.size(), 1u);
  const auto& s = c->services[0];
  EXPECT_EQ(s.meta.name, "qwen-chat");
  EXPECT_EQ(s.served_model_name, "qwen");  // the command's --served-model-name
  ASSERT_EQ(s.command.size(), 3u);
  EXPECT_EQ(s.command[0], "sh");
  EXPECT_EQ(s.command[1], "-c");
  EXPECT_TRUE(
      s.command[2].starts_with("python3 -m vllm.entrypoints.openai.api_server --port 8080"));
  EXPECT_EQ(s.image, "vllm/vllm-openai:v0.6.3");
  EXPECT_EQ(s.port, 8080);  // arena wrote no port: KServe's default
  EXPECT_EQ(s.gpus, 1);
  EXPECT_EQ(s.cpu, "4");
  EXPECT_EQ(s.memory, "12Gi");
  EXPECT_EQ(s.model_volume.claim_name, "llm-model");
  EXPECT_EQ(s.model_volume.mount_path, "/mnt/models/Qwen");
  // The HPA's bounds and metric.
  EXPECT_EQ(s.min_replicas, 1);
  EXPECT_EQ(s.max_replicas, 3);
  EXPECT_EQ(s.metric_targets, (std::map<std::string, double>{{"DCGM_CUSTOM_PROCESS_SM_UTIL", 50}}));
  // The labels KServe puts on the predictor's pods (its app label wins over the chart's).
  EXPECT_EQ(s.meta.labels.at("app"), "isvc.qwen-chat-predictor");
  EXPECT_EQ(s.meta.labels.at("component"), "predictor");
  EXPECT_EQ(s.meta.labels.at("serving.kserve.io/inferenceservice"), "qwen-chat");
  EXPECT_EQ(s.meta.labels.at("servingName"), "qwen-chat");
  // So the seed's ResourcePolicy and the pool select the replicas.
  const ResourcePolicy* policy = nullptr;
  placementPolicy(*c, s, &policy);
  ASSERT_NE(policy, nullptr);
  EXPECT_EQ(policy->meta.name, "qwen-chat");
  EXPECT_TRUE(selectorMatches(c->pools[0].selector, s.meta.labels));
  EXPECT_EQ(s.origin,
            "KServe InferenceService default/qwen-chat (serving.kserve.io/v1beta1) and "
            "HorizontalPodAutoscaler default/qwen-chat-hpa (autoscaling/v2)");
  EXPECT_TRUE(hasNote(*c, "the command sets its own port (8080)")) << notes(*c);
}

TEST(LoaderEcosystem, KServeScalingInThePredictor) {
  auto c = parseConfig(R"(apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: chat, namespace: ml, labels: {team: a}}
spec:
  predictor:
    minReplicas: 2
    maxReplicas: 6
    scaleMetric: concurrency
    scaleTarget: 8
    containerConcurrency: 16
    labels: {tier: gpu}
    nodeSelector: {pool: a}
    model:
      modelFormat: {name: huggingface}
      runtime: kserve-huggingfaceserver
      image: vllm/vllm-openai:v0.6.3
      args: ["--port", "{port}", "--served-model-name=chat-model"]
      command: [python3, -m, vllm.entrypoints.openai.api_server]
      ports: [{containerPort: 8000, protocol: TCP}]
      resources: {limits: {nvidia.com/gpu: "2", aliyun.com/gpu-mem: 8}}
      env: [{name: HF_HOME, value: /tmp}]
)",
                       "k.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  const auto& s = c->services[0];
  EXPECT_EQ(s.meta.ns, "ml");
  EXPECT_EQ(s.command,
            (std::vector<std::string>{"python3", "-m", "vllm.entrypoints.openai.api_server",
                                      "--port", "{port}", "--served-model-name=chat-model"}));
  EXPECT_EQ(s.served_model_name, "chat-model");
  EXPECT_EQ(s.port, 8000);
  EXPECT_EQ(s.gpus, 2);
  EXPECT_EQ(s.min_replicas, 2);
  EXPECT_EQ(s.max_replicas, 6);
  // concurrency: this gateway's requests in flight per replica.
  EXPECT_EQ(s.metric_targets, (std::map<std::string, double>{{kGatewayInflight, 8}}));
  EXPECT_EQ(s.meta.labels.at("team"), "a");
  EXPECT_EQ(s.meta.labels.at("tier"), "gpu");
  EXPECT_EQ(s.meta.labels.at("app"), "isvc.chat-predictor");
  // What has no meaning here is named, field by field.
  for (const char* field :
       {"spec.predictor.containerConcurrency: ignored", "spec.predictor.nodeSelector: ignored",
        "spec.predictor.model.modelFormat: ignored", "spec.predictor.model.runtime: ignored",
        "spec.predictor.model.env: ignored",
        "spec.predictor.model.resources.limits.aliyun.com/gpu-mem: ignored"})
    EXPECT_TRUE(hasNote(*c, field)) << field << "\n" << notes(*c);
  EXPECT_FALSE(hasNote(*c, "sets its own port")) << notes(*c);  // {port} is used
}

// Bad input of every new kind: a precise error naming the file, the document, the line and the
// field.
TEST(LoaderEcosystem, BadInputIsAPreciseError) {
  const std::string pool = kPoolV1 + "---\n";
  const std::string rewrite =
      pool +
      "apiVersion: llm-d.ai/v1alpha2\nkind: InferenceModelRewrite\nmetadata: {name: rw}\n"
      "spec:\n  poolRef: {name: p}\n  rules:\n";
  const std::string route =
      pool +
      "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n"
      "spec:\n  hostnames: [a.example.com]\n  rules:\n";
  const std::string isvc =
      "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: s}\n"
      "spec:\n  predictor:\n";
  const std::string container = "    containers: [{name: c, command: [vllm, serve]}]\n";
  const std::string hpa =
      "---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\n"
      "spec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: s-predictor}\n"
      "  maxReplicas: 3\n  metrics:\n";
  struct Case {
    std::string yaml, error;
  } cases[] = {
      // InferencePool v1
      {"apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata: {name: p}\n"
       "spec:\n  selector: {matchLabels: {app: x}}\n  targetPorts: [{number: 1}, {number: 2}, "
       "{number: 3}, {number: 4}, {number: 5}, {number: 6}, {number: 7}, {number: 8}, {number: "
       "9}]\n",
       "f.yaml: document 1 (InferencePool p), line 6: spec.targetPorts: at most 8 ports, got 9"},
      {"apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata: {name: p}\n"
       "spec:\n  selector: {matchLabels: {app: x}}\n  targetPorts:\n  - number: 8000\n"
       "  - number: 8000\n",
       "line 8: spec.targetPorts[1].number: port 8000 is given twice"},
      {kPoolV1 + "  appProtocol: kubernetes.io/h2c\n",
       "line 7: spec.appProtocol: only http is supported, got \"kubernetes.io/h2c\""},
      {kPoolV1 + "  endpointPickerRef: {name: epp}\n",
       "line 7: spec.endpointPickerRef.port: required when kind is Service"},
      {kPoolV1 + "  targetPortNumber: 8000\n", "line 7: spec.targetPortNumber: unknown field"},
      {kPoolV1 + "  endpointPickerRef: {name: epp, port: {number: 1}, failureMode: Maybe}\n",
       "spec.endpointPickerRef.failureMode: expected FailOpen or FailClose, got \"Maybe\""},
      // InferenceObjective
      {pool + "apiVersion: llm-d.ai/v1alpha2\nkind: InferenceObjective\nmetadata: {name: o}\n"
              "spec: {priority: high, poolRef: {name: p}}\n",
       "document 2 (InferenceObjective o), line 11: spec.priority: expected an integer, got "
       "\"high\""},
      {pool + "apiVersion: llm-d.ai/v1alpha2\nkind: InferenceObjective\nmetadata: {name: o}\n"
              "spec: {poolRef: {name: nope}}\n",
       "document 2 (InferenceObjective o), line 8: spec.poolRef.name: no InferencePool named "
       "\"nope\""},
      {pool + "apiVersion: llm-d.ai/v1alpha2\nkind: InferenceObjective\nmetadata: {name: o}\n"
              "spec: {poolRef: {name: p}, criticality: Critical}\n",
       "spec.criticality: unknown field"},
      {pool + "apiVersion: inference.networking.k8s.io/v1\nkind: InferenceObjective\n"
              "metadata: {name: o}\nspec: {poolRef: {name: p}}\n",
       "unknown kind InferenceObjective of apiVersion inference.networking.k8s.io/v1"},
      // InferenceModelRewrite
      {rewrite + "  - targets: [{modelRewrite: a, weight: 0}]\n",
       "document 2 (InferenceModelRewrite rw), line 14: spec.rules[0].targets[0].weight: must be "
       "between 1 and 1000000, got 0"},
      {rewrite + "  - targets: [{modelRewrite: a, weight: 2}, {modelRewrite: b}]\n",
       "spec.rules[0].targets: give a weight to every target or to none (1 of 2 have one)"},
      {rewrite + "  - matches: [{model: {type: RegularExpression, value: 'a.*'}}]\n"
                 "    targets: [{modelRewrite: a}]\n",
       "spec.rules[0].matches[0].model.type: only Exact is supported, got \"RegularExpression\""},
      {rewrite + "  - matches: [{model: {value: a}}]\n    targets: [{modelRewrite: b}]\n"
                 "    split: true\n",
       "line 16: spec.rules[0].split: unknown field"},
      {rewrite + "  - targets: [{modelRewrite: a}]\n  - targets: [{modelRewrite: b}]\n",
       "spec.rules[1]: pool p already has a rule without matches (InferenceModelRewrite rw "
       "(spec.rules[0]))"},
      {rewrite + "  - matches: [{model: {value: a}}]\n    targets: [{modelRewrite: b}]\n"
                 "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\n"
                 "kind: InferenceModel\nmetadata: {name: m}\nspec: {modelName: a, poolRef: "
                 "{name: p}}\n",
       "document 3 (InferenceModel m), line 17: spec.modelName: \"a\" on pool p is already "
       "matched by InferenceModelRewrite rw (spec.rules[0])"},
      // HTTPRoute
      {route + "  - backendRefs: [{group: inference.networking.k8s.io, kind: InferencePool, "
               "name: gone}]\n",
       "document 2 (HTTPRoute r), line 8: spec.rules[0].backendRefs[0].name: no InferencePool "
       "named \"gone\""},
      {route + "  - backendRefs: [{name: p}]\n",
       "line 14: spec.rules[0].backendRefs[0].kind: only InferencePool is supported, got Service "
       "(the default)"},
      {route + "  - backendRefs: [{kind: InferencePool, name: p, weight: 1000001}]\n",
       "spec.rules[0].backendRefs[0].weight: must be between 0 and 1000000, got 1000001"},
      {route + "  - backendRefs: [{kind: InferencePool, name: p, weight: half}]\n",
       "spec.rules[0].backendRefs[0].weight: expected an integer, got \"half\""},
      {route + "  - matches: [{path: {type: RegularExpression, value: '/v1/.*'}}]\n"
               "    backendRefs: [{kind: InferencePool, name: p}]\n",
       "line 14: spec.rules[0].matches[0].path.type: expected PathPrefix or Exact, got "
       "\"RegularExpression\""},
      {route + "  - matches: [{path: {value: v1}}]\n"
               "    backendRefs: [{kind: InferencePool, name: p}]\n",
       "spec.rules[0].matches[0].path.value: must start with \"/\""},
      {route + "  - filters: [{type: RequestHeaderModifier}]\n"
               "    backendRefs: [{kind: InferencePool, name: p}]\n",
       "line 14: spec.rules[0].filters: filters are not supported"},
      {route + "  - matches: [{headers: [{name: x, value: y}], cookies: [a]}]\n"
               "    backendRefs: [{kind: InferencePool, name: p}]\n",
       "spec.rules[0].matches[0].cookies: unknown field"},
      {route + "  - matches: [{path: /v1}]\n    backendRefs: [{kind: InferencePool, name: p}]\n",
       "spec.rules[0].matches[0].path: expected a map, got \"/v1\""},
      {route + "  - matches: []\n", "spec.rules[0].backendRefs: required field is missing"},
      {pool + "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n"
              "spec:\n  hostnames: [A.example.com]\n  rules: [{backendRefs: [{kind: "
              "InferencePool, name: p}]}]\n",
       "line 12: spec.hostnames[0]: \"A.example.com\" is not a host name"},
      // KServe InferenceService and the HPA beside it
      {isvc + container + "    scaleMetric: cpu\n    scaleTarget: 80\n",
       "document 1 (InferenceService s), line 7: spec.predictor.scaleMetric: cpu is not "
       "measured by tidegate"},
      {isvc + container + "    minReplicas: two\n",
       "spec.predictor.minReplicas: expected an integer, got \"two\""},
      {isvc + "    containers: [{name: c, command: [a]}, {name: d, command: [b]}]\n",
       "spec.predictor.containers: one container (the engine) is supported, got 2"},
      {isvc + "    containers: [{name: c, image: vllm}]\n",
       "spec.predictor.containers[0].command: required"},
      {isvc + "    containers: [{name: c, command: [a], tty: true}]\n",
       "line 6: spec.predictor.containers[0].tty: unknown field"},
      {isvc + container + "  transformer: {containers: []}\n",
       "spec.transformer: not supported: tidegate serves the predictor only"},
      {"apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: s\n"
       "  annotations: {serving.kserve.io/autoscalerClass: external}\nspec:\n  predictor:\n" +
           container,
       "document 1 (InferenceService s), line 1: metadata.annotations.serving.kserve.io/"
       "autoscalerClass: external, but no HorizontalPodAutoscaler (autoscaling/v2) scales "
       "Deployment s-predictor"},
      {isvc + container + hpa + "  - type: Resource\n    resource: {name: cpu}\n",
       "document 2 (HorizontalPodAutoscaler h), line 15: spec.metrics[0].type: only Pods is "
       "supported"},
      {isvc + container + hpa +
           "  - type: Pods\n    pods: {metric: {name: m}, target: {type: AverageValue, "
           "averageValue: lots}}\n",
       "spec.metrics[0].pods.target.averageValue: expected a positive quantity, got \"lots\""},
      {isvc + container +
           "---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\n"
           "spec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: other}\n"
           "  maxReplicas: 3\n",
       "document 2 (HorizontalPodAutoscaler h), line 8: spec.scaleTargetRef.name: no KServe "
       "InferenceService in namespace default has the predictor Deployment \"other\""},
      {isvc + container + hpa +
           "  - type: Pods\n    pods: {metric: {name: m}, target: "
           "{averageValue: 2}}\n  maxReplicaz: 4\n",
       "spec.maxReplicaz: unknown field"},
  };
  for (const auto& c : cases) {
    auto r = parseConfig(c.yaml, "f.yaml");
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_NE(r.error().message.find(c.error), std::string::npos)
        << "want: " << c.error << "\ngot:  " << r.error().message;
  }
}

TEST(LoaderEcosystem, EveryNewExampleLoads) {
  for (const char* f : {"examples/lora-traffic-split-v1.yaml", "examples/gateway-api.yaml",
                        "examples/hybrid-cloud-kserve.yaml"}) {
    auto c = loadConfig(source(f));
    EXPECT_TRUE(c.ok()) << f << ": " << c.error().message;
  }
}

}  // namespace
}  // namespace tidegate::api
