#pragma once
// The Kubernetes provider: `tidegate serve --kubernetes` (or --kubeconfig). The same decisions
// as the local controller (control::decide, control::plan), carried out on a real cluster.
//
// Every gateway replica:
//   watches Pods (the namespaces of the configuration's InferencePools and InferenceServices)
//   and publishes every Ready pod an InferencePool selects as an endpoint on the pool's target
//   port; a pod that goes not-ready, is being deleted or is being drained leaves the picker at
//   once, and requests in flight to it finish. The data plane never waits on the API server:
//   when it is unreachable, the last known endpoints keep serving.
// The leader only (a coordination.k8s.io/v1 Lease, kube/leader.h), every controller interval:
//   for each InferenceService, one Deployment per ResourcePolicy unit ("<service>-<pool>", with
//   the unit's nodeSelector and the service's pod template; kube/objects.h), created when
//   missing; observe the Ready pods' metrics (as the local controller does); decide the replica
//   count; build the placement model from the Nodes of the NodePools (allocatable GPUs less what
//   other pods hold) and the service's pods; plan; scale each unit's Deployment through /scale.
//   Scale-in drains first: the pods the plan removes are annotated tidegate.io/draining (every
//   gateway stops picking them), and once this gateway has no request in flight there (after at
//   least 3 s, so the other gateways saw the annotation; at most 30 s) they get the lowest
//   controller.kubernetes.io/pod-deletion-cost and their Deployment is scaled down, so the
//   ReplicaSet deletes exactly them. Pending pods in an elastic unit are "provisioning" (the
//   cluster autoscaler adds nodes); the plan moves Pending pods of an owned unit on as the
//   ResourcePolicy's whenTryNextUnits says.
//   Node-hours are priced per NodePool (nodes carrying the pool's labels) for cost allocation.
// Configuration objects (KubernetesOptions::watch_namespaces) are watched by every gateway;
// the leader writes the status of tidegate.io InferenceServices (desired and per-unit replicas,
// conditions) and NodePools (nodes, GPUs, cost) found among them.
// Stopping a gateway never scales anything down: the workloads belong to the cluster; the
// leader releases its Lease so another gateway takes over at once.
// State: /admin/state sections "kubernetes", "services" and "node_pools"; metrics
// tidegate_leader_is_leader, tidegate_leader_transitions_total, tidegate_replicas,
// tidegate_desired_replicas, tidegate_nodes, tidegate_pool_cost_total,
// tidegate_scaling_events_total, tidegate_kubernetes_requests_total.
// Runs on the gateway's control thread.

#include <memory>
#include <string>
#include <vector>

#include "kube/config.h"
#include "kube/leader.h"

namespace tidegate::gateway {
class Gateway;
}

namespace tidegate::controller {

struct KubernetesOptions {
  kube::ClusterConfig cluster;
  // Namespaces whose configuration objects are watched (InferencePool, InferenceModel, LLMRoute,
  // ResourcePolicy and tidegate.io's kinds; NodePools cluster-wide) and whose Secrets labelled
  // tidegate.io/api-key back APIKeys' secretRef.name. They are loaded with the file, as if in
  // it, and every change reloads (a reload that does not validate is refused and the running
  // configuration kept, as for the file). Empty: the file alone.
  std::vector<std::string> watch_namespaces;
  kube::LeaderConfig leader;  // name, namespace, identity and timings of the Lease
  double drain_min_s = 3;     // default 3 s: other gateways see the draining annotation
  double drain_grace_s = 30;  // default 30 s: the longest wait for requests in flight
};

class KubernetesController {
 public:
  KubernetesController(gateway::Gateway& gw, KubernetesOptions options);
  ~KubernetesController();
  // Starts the watches, the election and the loop. REQUIRES: the gateway was started.
  void start();
  // Releases the Lease (if held) and stops. Touches no workload. Blocks until done (at most
  // about 5 s).
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tidegate::controller
