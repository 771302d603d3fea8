#pragma once
// Pure translations between Kubernetes objects (as JSON) and tidegate's model: what a Pod or a
// Node says (readiness, address, GPUs, why it is Pending), which pods are endpoints of which
// InferencePool, the Deployment that realises one ResourcePolicy unit of an InferenceService,
// and the placement model (control::Cluster) of what the cluster holds now, so the Kubernetes
// provider runs the same control::plan as the local provider and the simulator.
// No I/O, no clock: `now` is passed in (unix seconds, the clock of creationTimestamps).

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <vector>

#include "api/resources.h"
#include "control/placement.h"

namespace tidegate::kube {

namespace bj = boost::json;

// Labels and annotations tidegate puts on what it creates.
inline constexpr const char* kManagedBy = "app.kubernetes.io/managed-by";  // = "tidegate"
inline constexpr const char* kServiceLabel = "tidegate.io/service";        // InferenceService
inline constexpr const char* kUnitLabel = "tidegate.io/unit";              // unit index
// On a pod being drained: every gateway stops picking it; the value is when draining began.
inline constexpr const char* kDrainingAnnotation = "tidegate.io/draining";
// The ReplicaSet controller deletes pods with a lower cost first (Kubernetes 1.22+).
inline constexpr const char* kDeletionCost = "controller.kubernetes.io/pod-deletion-cost";

struct PodInfo {
  std::string name, ns, node, ip;
  api::Labels labels, annotations;
  std::string phase;            // Pending, Running, Succeeded, Failed, Unknown
  bool ready = false;           // the Ready condition is True
  bool terminating = false;     // metadata.deletionTimestamp is set
  bool draining = false;        // kDrainingAnnotation is set
  bool unschedulable = false;   // PodScheduled=False, reason Unschedulable
  std::string pending_message;  // the scheduler's words when unschedulable
  double created = 0;           // creationTimestamp, unix seconds
  int gpus = 0;                 // nvidia.com/gpu requested by its containers
  int unit = -1;                // kUnitLabel, when tidegate made it
};
PodInfo podInfo(const bj::object& pod);

struct NodeInfo {
  std::string name;
  api::Labels labels;
  bool ready = false;          // the Ready condition is True and not cordoned
  bool unschedulable = false;  // spec.unschedulable (cordoned)
  int gpus = 0;                // status.allocatable["nvidia.com/gpu"]
  std::string cpu, memory;     // status.allocatable, as written
  double created = 0;
};
NodeInfo nodeInfo(const bj::object& node);

// The NodePool a node belongs to: the first whose labels are all on the node; nullptr if none.
const api::NodePool* poolOf(const api::Config& c, const NodeInfo& node);

// A pod's state as /admin/state and `check` say it: Terminating, Draining, Ready, Starting
// (on a node, not ready yet), or Pending — Provisioning in an elastic unit, where the cluster
// autoscaler is adding a node for it.
std::string podState(const PodInfo& p, bool elastic_unit = false);

// A NodePool's nodes now: how many, how many Ready, their allocatable GPUs, and the GPUs that
// pods (not terminating or finished) hold on them.
struct PoolUsage {
  int nodes = 0, ready = 0, gpus = 0, gpus_used = 0;
};
PoolUsage poolUsage(const api::Config& c, const api::NodePool& pool,
                    const std::vector<NodeInfo>& nodes, const std::vector<PodInfo>& pods);

// The endpoints the pods give the gateway: every Ready pod with an IP, not terminating and not
// draining, in the namespace of an InferencePool that selects it (the pool's target port).
std::vector<api::Endpoints> podEndpoints(const api::Config& c, const std::vector<PodInfo>& pods);

// "<service>-<pool>" as a DNS-1123 label: lowercase, [a-z0-9-], at most 63 characters (the
// pool is the unit's first NodePool; "unit<i>" when it selects none).
std::string unitDeploymentName(const api::Config& c, const api::InferenceService& s, int unit);

// The port the service's pods listen on: spec.port, else the target port of a pool that selects
// it, else 8000.
int servicePort(const api::Config& c, const api::InferenceService& s);

// The Deployment of unit `unit` (replicas 0: the provider scales it through /scale).
bj::object deploymentFor(const api::Config& c, const api::InferenceService& s, int unit);

// The placement model of one service now: the NodePools, the Ready nodes
// of the pools with the GPUs that pods of other workloads leave free, and the service's pods
// (not terminating) as replicas in the unit of their Deployment. `pods` are every pod the
// provider sees (the service's and others on the same nodes).
// `unit_replicas` is each unit Deployment's spec.replicas (-1: no Deployment yet). The model
// follows the Deployments' intent, not only the pods seen so far: a unit with fewer pods than
// its replicas gets Pending replicas for the pods its ReplicaSet is about to create, and one with
// more loses the pods about to be deleted (Pending ones first, as the ReplicaSet ranks them) —
// so a decision is not taken twice while the cluster catches up. Pending replicas of a later
// unit count as having waited out the earlier ones (the policy moved them there).
control::Cluster clusterModel(const api::Config& c, const api::InferenceService& s,
                              const std::vector<NodeInfo>& nodes, const std::vector<PodInfo>& pods,
                              const std::vector<int>& unit_replicas, double now);

// How many replicas each unit's Deployment should have after `plan` on `c` for `d`'s service:
// the replicas the plan keeps, in the unit each is (re)assigned to, plus the new ones in the
// units the plan chose (new replicas no unit can take go to the first unit under its max — they
// wait there, Pending, for the cluster to change).
std::vector<int> unitTargets(const control::Cluster& c, const control::Demand& d,
                             const control::Plan& plan);

// A label selector as text: "k1=v1,k2=v2".
std::string selectorString(const api::Labels& labels);

}  // namespace tidegate::kube
