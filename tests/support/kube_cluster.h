#pragma once
// Stand-ins for the controllers of a Kubernetes cluster, acting on a kube::ApiServer
// (kube_apiserver.h) so that every change they make is a watch event a client sees: a deployment
// controller, a scheduler, a kubelet that runs pods as local processes on their own loopback
// addresses (127.0.0.N), and a node autoscaler (cluster-autoscaler).
//
// Ownership and threads: a Cluster owns its controllers; each runs on a background thread of its
// own, once per tick (default 100 ms), reading and writing through the ApiServer's C++ interface
// (thread-safe). Public methods of Cluster are thread-safe. The destructor stops the threads,
// then every pod process; destroy the Cluster before the ApiServer it acts on. Controllers never
// throw: a failed write is retried on a later tick, as a level-triggered controller does.
//
// Semantics followed, and where they come from:
// - ReplicaSet scale-down order (pkg/controller/controller_utils.go ActivePodsWithRanks.Less, and
//   https://kubernetes.io/docs/concepts/workloads/controllers/replicaset/#pod-deletion-cost):
//   unassigned before assigned; Pending < Unknown < Running; not ready before ready; lower
//   `controller.kubernetes.io/pod-deletion-cost` first; more pods of the same owner on the same
//   node first; ready for less time first; more container restarts first; newer first. (The real
//   controller compares ready and creation times in log2 buckets, LogarithmicScaleDown; here
//   they are compared exactly, at the API's one-second resolution; ties go by name.) Terminating
//   and terminated pods are not counted as replicas (FilterActivePods).
// - Pods of a Deployment carry the template's labels plus `pod-template-hash`, an
//   ownerReference to the Deployment (controller: true), and names `<deployment>-<hash>-<5>`.
//   Simplified: no ReplicaSet objects (the ownerReference names the Deployment); a template
//   change creates the new pods at once and removes the old ones once enough new ones are ready.
//   Status: replicas, updatedReplicas, readyReplicas, availableReplicas (minReadySeconds is 0),
//   unavailableReplicas, observedGeneration. Pods whose owning Deployment is gone are deleted
//   (the garbage collector).
// - Scheduler (https://kubernetes.io/docs/concepts/scheduling-eviction/): a node fits a pod when
//   it is Ready and schedulable, its labels satisfy spec.nodeSelector, the pod tolerates its
//   NoSchedule and NoExecute taints
//   (https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/), and it has the
//   pod's `nvidia.com/gpu` (the containers' limits, else requests) left after the pods bound there.
//   cpu and memory are not checked, nor affinity. Among fitting nodes the one with the most free
//   GPUs wins (least allocated), then the name. An unschedulable pod gets PodScheduled=False,
//   reason Unschedulable, message "0/3 nodes are available: 1 Insufficient nvidia.com/gpu, 2
//   node(s) didn't match Pod's node affinity/selector." (the real FitError wording, reasons
//   sorted). Binding sets spec.nodeName and PodScheduled=True.
// - Kubelet (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/): one for every
//   node. A bound pod gets a pod IP 127.0.0.N (N from 2, unique while a pod holds it), hostIP,
//   its containers started by the PodRuntime, phase Running, containerStatuses, and conditions
//   Initialized, PodScheduled, ContainersReady, Ready. Readiness comes from the first
//   container's readinessProbe.httpGet (path and port, by number or name, on the pod IP, over
//   real HTTP) every probe period, with its failureThreshold (default 3) and successThreshold
//   (default 1); no probe means ready once running. A pod whose process exits goes not-ready,
//   restartCount goes up and, with restartPolicy Always (the default), it is started again. A
//   pod with a deletionTimestamp is stopped (SIGTERM, then SIGKILL after its grace period,
//   deletionGracePeriodSeconds) beside the kubelet's loop, which goes on syncing the other pods,
//   and once its process has exited it is removed with a grace period of 0, as the kubelet
//   confirms a deletion (#pod-termination). Not modelled: preStop hooks, and the terminal phase
//   (Succeeded/Failed) the kubelet writes before the removal.
// - Node autoscaler
// (https://github.com/kubernetes/autoscaler/blob/master/cluster-autoscaler/FAQ.md):
//   scale-up for pods marked PodScheduled=False/Unschedulable that a group's node template
//   would fit (the scheduler's checks), counting nodes still coming up; the first group in the
//   list that fits is chosen (the `priority` expander with list order as priority); up to the
//   group's max. A new node appears at once NotReady with the taint
//   node.kubernetes.io/not-ready:NoSchedule and becomes Ready (taint removed) after the group's
//   provisioning delay. (On a real cloud the Node object appears only when the new machine's
//   kubelet registers, NotReady at first, then Ready; the difference is only when the NotReady
//   object becomes visible.) Scale-down: a node of a group that has had no pods for the group's
//   unneeded time is tainted ToBeDeletedByClusterAutoscaler:NoSchedule and deleted, down to the
//   group's min. The group starts with `min` nodes.

#include <boost/json.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "support/kube_apiserver.h"

namespace tidegate::testing {
class ChildProcess;
}

namespace tidegate::testing::kube {

// What runs a pod's containers for the kubelet stand-in. Called from the kubelet's thread, and
// stop() from a thread of its own for a terminating pod: implementations are thread-safe.
class PodRuntime {
 public:
  virtual ~PodRuntime() = default;
  // Starts the pod's containers listening on `ip`. An error is reported on the pod (the first
  // container Waiting, reason RunContainerError, with the message) and not retried.
  virtual Status start(const bj::object& pod, const std::string& ip) = 0;
  // Stops the pod's containers: SIGTERM, then SIGKILL after `grace_s`. Unknown uids are ignored.
  virtual void stop(const std::string& uid, double grace_s) = 0;
  // Whether the pod's containers still run.
  virtual bool running(const std::string& uid) = 0;
};

// Runs a pod's first container's command + args as a child process. A first word "tidegate" is
// the tidegate binary under test (TIDEGATE_BINARY), and `--host <pod ip>` is appended so that
// each pod listens on its own loopback address at the port its args say, as the pods of a pool
// all listen on its target port. Other commands are refused (the error shows on the pod).
class EngineRuntime : public PodRuntime {
 public:
  EngineRuntime();
  ~EngineRuntime() override;  // stops every process
  Status start(const bj::object& pod, const std::string& ip) override;
  void stop(const std::string& uid, double grace_s) override;
  bool running(const std::string& uid) override;
  // The command lines started so far (for assertions).
  std::vector<std::vector<std::string>> started() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<ChildProcess>> procs_;  // by pod uid
  std::vector<std::vector<std::string>> started_;
};

// A group of identical nodes the node autoscaler adds and removes.
struct NodeGroup {
  std::string name;                   // nodes are named `<name>-<5 random>`
  bj::object labels;                  // node labels, e.g. {"alibabacloud.com/nodepool-id": "np-1"}
  bj::array taints;                   // [{key, value, effect}]
  std::int64_t gpus = 0;              // allocatable nvidia.com/gpu
  std::string cpu = "8";              // allocatable cpu (reported, not checked)
  std::string memory = "32Gi";        // allocatable memory (reported, not checked)
  int min = 0;                        // default 0
  int max = 1;                        // default 1
  double provisioning_delay_s = 0.5;  // default 0.5 s from NotReady to Ready
  double scale_down_unneeded_s = 2;   // default 2 s without pods before removal
};

struct ClusterOptions {
  double tick_s = 0.1;                // default 100 ms between two passes of each controller
  bool deployment_controller = true;  // default on
  bool scheduler = true;              // default on
  bool kubelet = true;                // default on
  double probe_period_s = 0.2;  // default 200 ms between readiness probes (overrides the pod's)
  // Default: an EngineRuntime.
  std::shared_ptr<PodRuntime> runtime;
  // The node autoscaler runs when there is at least one group (default none).
  std::vector<NodeGroup> node_groups;
};

class Cluster {
 public:
  // Starts the controllers (and the node groups' min nodes) on `api`.
  explicit Cluster(ApiServer& api, ClusterOptions options = {});
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Adds a static node, Ready at once, with allocatable `gpus` nvidia.com/gpu, `labels` and
  // `taints` ([{key, value, effect}]). Returns the Node as stored.
  ApiResult<bj::object> addNode(const std::string& name, bj::object labels = {},
                                std::int64_t gpus = 0, bj::array taints = {});
  // Forces the readiness of a pod (true/false) whatever its probe says; nullopt goes back to
  // the probe.
  void setProbeOverride(const std::string& ns, const std::string& pod, std::optional<bool> ready);
  // The IP the kubelet gave a pod ("" if none yet).
  std::string podIp(const std::string& ns, const std::string& pod) const;
  PodRuntime& runtime() { return *runtime_; }

  class Loop;  // a controller's thread (kube_cluster.cc)

 private:
  void deploymentPass();
  void schedulerPass();
  void kubeletPass();
  void autoscalerPass();

  ApiServer& api_;
  ClusterOptions options_;
  std::shared_ptr<PodRuntime> runtime_;

  // Kubelet state (kubelet thread; guarded by mu_ where other threads read it).
  struct PodState {
    std::string ns, name, ip;
    bool started = false, failed = false, ready = false;
    int restarts = 0, probe_failures = 0, probe_successes = 0;
    double next_probe = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, PodState> pods_;   // guarded: by uid
  std::map<std::string, bool> overrides_;  // guarded: "ns/name" -> ready
  std::set<int> ips_in_use_;               // guarded: N of 127.0.0.N
  // guarded: pods being stopped (by uid), each by a PodRuntime::stop on a thread of its own
  std::map<std::string, std::future<void>> terminations_;
  // Autoscaler state (its thread only).
  std::map<std::string, double> node_ready_at_;     // node -> when it becomes Ready
  std::map<std::string, double> node_empty_since_;  // node -> since when it has had no pods

  std::vector<std::unique_ptr<Loop>> loops_;
};

}  // namespace tidegate::testing::kube
