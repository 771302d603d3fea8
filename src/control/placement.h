#pragma once
// Placement of replicas over priority node pools, and the node pools themselves, as pure code.
//
// A ResourcePolicy (scheduling.alibabacloud.com/v1alpha1, strategy: prefer) lists units in
// priority order; each unit's nodeSelector selects node pools by label and may cap the replicas
// it holds (`max`). New replicas fill units in order: a replica goes to the first unit that is
// under its max and has a node with enough free GPUs. Whether a replica that does not fit may try
// the next unit depends on `whenTryNextUnits`:
//   LackResourceOrExceedMax (default)  next unit if this one is full or lacks free GPUs;
//   ExceedMax                          next unit only when this one is at its max; otherwise the
//                                      replica waits (Pending) for resources in this unit;
//   TimeoutOrExceedMax                 as ExceedMax, but after waiting `timeout` it may move on.
// Pending replicas make elastic pools that their unit selects add nodes (as cluster-autoscaler
// does: only pools whose node shape fits the replica), which become ready after the pool's
// provisioning delay. Scale-in removes replicas from the last unit first, newest first within a
// unit; an elastic node with no replica for `scaleDownUnneededTime` is released (down to the
// pool's minimum). Nodes cost their pool's price per node-hour from creation to release.
//
// plan() decides; apply() carries a plan out on the model (the simulator and tests use it; the
// live controller carries plans out with a provider). Neither reads a clock.

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tidegate::control {

using Labels = std::map<std::string, std::string>;

struct NodePoolSpec {
  std::string name;
  Labels labels;
  bool elastic = false;  // fixed (owned) or elastic (cloud)
  int min_nodes = 0;     // fixed: the pool's nodes; elastic: never fewer
  int max_nodes = 0;     // elastic: never more
  int gpus_per_node = 1;
  double provisioning_delay_s = 0;
  double scale_down_unneeded_s = 600;  // default 10 m, as cluster-autoscaler
  double price_per_node_hour = 0;
};

struct Unit {
  Labels node_selector;
  std::optional<int> max;  // replicas this unit may hold
};

struct PlacementPolicy {
  std::vector<Unit> units;
  enum class When {
    kLackResourceOrExceedMax,
    kExceedMax,
    kTimeoutOrExceedMax
  } when = When::kLackResourceOrExceedMax;
  double timeout_s = 0;  // TimeoutOrExceedMax
};

struct Node {
  std::string name;
  std::string pool;
  int gpus = 1;
  bool ready = true;    // false while provisioning
  double ready_at = 0;  // when a provisioning node becomes ready
  double created = 0;
  double idle_since = 0;  // time the node last became empty (-1 while it holds replicas)
};

struct Replica {
  std::string id;
  int gpus = 1;
  std::string node;  // empty while Pending
  int unit = -1;     // the unit it is placed in (or waiting for)
  double created = 0;
  double pending_since = 0;
};

struct Cluster {
  std::vector<NodePoolSpec> pools;
  PlacementPolicy policy;
  std::vector<Node> nodes;
  std::vector<Replica> replicas;
  std::map<std::string, double> cost;  // pool -> money spent so far
  double accrued_until = 0;
  int next_id = 1;

  // Creates the fixed pools' nodes and elastic pools' minimum nodes, ready at `now`.
  void bootstrap(double now);
  int placed() const;
  int pending() const;
  int freeGpus(const Node& n) const;
  const NodePoolSpec* pool(const std::string& name) const;
  // Pools a unit selects, in declaration order.
  std::vector<const NodePoolSpec*> unitPools(int unit) const;
};

struct Plan {
  int create = 0;                                         // new Pending replicas
  std::vector<std::pair<std::string, std::string>> bind;  // replica id -> node
  std::vector<std::pair<std::string, int>> unit_of;       // replica id -> unit it waits for
  std::vector<std::string> remove;                        // replicas to drain and delete
  std::vector<std::pair<std::string, int>> provision;     // pool -> nodes to add
  std::vector<std::string> release;                       // nodes to release
  std::vector<std::string> reasons;                       // one line per action
};

// Decides how to move `c` towards `desired` replicas of `gpus` GPUs each at time `now`.
Plan plan(const Cluster& c, int desired, int gpus, double now);
// Carries a plan out on the model: creates/binds/removes replicas, adds provisioning nodes,
// releases nodes; accrues cost up to `now` first.
void apply(Cluster& c, const Plan& p, int gpus, double now);
// Marks provisioning nodes ready whose time has come and accrues cost up to `now`.
void advance(Cluster& c, double now);

}  // namespace tidegate::control
