#pragma once
// Configurations several integration tests start `tidegate serve` with.

#include <string>
#include <string_view>

namespace tidegate::testing {

// The seeds' hybrid deployment on one machine: qwen-chat's `tidegate engine` replicas (1 to 3,
// scaled on vllm:num_requests_waiting, target 2) placed by a ResourcePolicy on an owned pool
// `edge` (1 node) first and an elastic pool `cloud` (up to 2 nodes, 1 s to provision) on
// overflow. `gateway_extra` goes inside the Gateway's spec, e.g. ", auth: {adminToken: t}".
inline std::string hybridConfig(std::string_view gateway_extra = {}) {
  return R"(apiVersion: tidegate.io/v1alpha1
kind: Gateway
metadata: {name: gw}
spec: {listen: "127.0.0.1:0", admin: "127.0.0.1:0", controller: {interval: 200ms})" +
         std::string(gateway_extra) + R"(}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {name: qwen-pool}
spec: {targetPortNumber: 8000, selector: {app: isvc.qwen-predictor}}
---
apiVersion: scheduling.alibabacloud.com/v1alpha1
kind: ResourcePolicy
metadata: {name: qwen-chat}
spec:
  selector: {app: isvc.qwen-predictor}
  strategy: prefer
  units:
  - {resource: ecs, nodeSelector: {alibabacloud.com/nodepool-id: npxxxxxx}}
  - {resource: elastic, nodeSelector: {alibabacloud.com/nodepool-id: npxxxxxy}}
---
apiVersion: tidegate.io/v1alpha1
kind: NodePool
metadata: {name: edge, labels: {alibabacloud.com/nodepool-id: npxxxxxx}}
spec: {kind: fixed, nodes: 1, gpusPerNode: 1, pricePerNodeHour: 0.9}
---
apiVersion: tidegate.io/v1alpha1
kind: NodePool
metadata: {name: cloud, labels: {alibabacloud.com/nodepool-id: npxxxxxy}}
spec: {kind: elastic, maxNodes: 2, gpusPerNode: 1, provisioningDelay: 1s, scaleDownUnneededTime: 2s, pricePerNodeHour: 3.06}
---
apiVersion: tidegate.io/v1alpha1
kind: InferenceService
metadata: {name: qwen-chat, labels: {app: isvc.qwen-predictor}}
spec:
  servedModelName: qwen
  command: [tidegate, engine, --port, "{port}", --served-model-name, "{model}", --step-ms, "10", --max-num-seqs, "4", --log-level, warn]
  minReplicas: 1
  maxReplicas: 3
  metrics: [{metric: "vllm:num_requests_waiting", target: 2}]
  behavior: {scaleDown: {stabilizationWindowSeconds: 2}}
)";
}

}  // namespace tidegate::testing
