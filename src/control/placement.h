#pragma once
// Placement of every service's replicas over priority node pools, and the node pools themselves,
// as pure code.
//
// One Cluster holds the node pools, their nodes and the replicas of every service (each Replica
// names its service), so services that share a pool share its GPUs. plan() takes every service's
// Demand at once: how many replicas of how many GPUs it wants, its priority and its placement
// policy.
//
// Per service, a ResourcePolicy (scheduling.alibabacloud.com/v1alpha1, strategy: prefer) lists
// units in priority order; each unit's nodeSelector selects node pools by label and may cap the
// replicas of that service it holds (`max`). New replicas fill units in order: a replica goes to
// the first unit that is under its max and has a node with enough free GPUs. Whether a replica
// that does not fit may try the next unit depends on `whenTryNextUnits`:
//   LackResourceOrExceedMax (default)  next unit if this one is full or lacks free GPUs;
//   ExceedMax                          next unit only when this one is at its max; otherwise the
//                                      replica waits (Pending) for resources in this unit;
//   TimeoutOrExceedMax                 as ExceedMax, but after waiting `timeout` it may move on.
// Pending replicas make elastic pools that their unit selects add nodes (as cluster-autoscaler
// does: only pools whose node shape fits the replica, counting the GPUs of nodes already
// provisioning, for the waiting replicas of every service), which become ready after the pool's
// provisioning delay. Scale-in is per service: its Pending replicas first, then those of its
// last unit, newest first within a unit. An elastic node that no replica of any service used for
// `scaleDownUnneededTime` is released (down to the pool's minimum). Nodes cost their pool's price
// per node-hour from creation to release.
//
// Priority (an integer, as a Kubernetes PriorityClass value; default 0) orders placement: the
// Pending replicas are placed by priority (highest first), then by the order of the demands,
// then oldest first. And it preempts, as Kubernetes' scheduler does: when a Pending replica finds
// no node with free GPUs in a unit (under the unit's max for its service), but evicting replicas
// of services of strictly lower priority from one ready node of that unit would make room, the
// plan removes them (`remove`, reason "preempted by <service>") and binds the replica there,
// before trying the next unit. The victims, as Kubernetes picks them: on each node the lowest
// priority first, newest first, until the replica fits; the node whose most important victim is
// the least important, then the one needing the fewest victims. Equal priorities never preempt.
// The preempted service is short of its desired count: the SAME plan creates a replacement for
// each victim (`create` with `replaces_preempted`) and places it like any Pending replica of its
// service — on its next units, typically elastic, whose pools provision for it in this plan. A
// replacement never preempts, neither in this plan nor in later ones (Replica keeps the mark), so
// preemption does not chain or flap: only a replica that a service's own demand created may
// evict, and only from services below it.
//
// Replicas of a service that has no Demand in a plan are left alone: they keep their nodes and
// GPUs, are neither scaled, placed nor preempted.
//
// A removed replica is not gone at once: it drains its requests and its process stops, and until
// then its GPUs are not free (a new replica there would double-book them). apply() marks a placed
// replica it removes `terminating`; it keeps its node and GPUs, no longer counts towards its
// service's replicas, is never removed or preempted again, and keeps its node from being
// released. The caller reports it gone with finished(). So a preempting replica does not take the
// victims' GPUs at once either: as with Kubernetes' nominatedNodeName, the plan `nominate`s it to
// the node it clears; it stays Pending there, holding the claim (no other replica is placed on
// those GPUs), and a later plan binds it once the victims have finished.
//
// plan() decides; apply() carries a plan out on the model (the simulator and tests use it; the
// live controller carries plans out with a provider). Neither reads a clock.

#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
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
  std::string id;  // unique across services
  std::string service;
  int gpus = 1;
  std::string node;  // empty while Pending
  int unit = -1;     // the unit it is placed in (or waiting for)
  double created = 0;
  double pending_since = 0;
  bool replaces_preempted = false;  // created for a preempted replica: never preempts in turn
  bool terminating = false;         // removed: holds its node's GPUs until finished() (see above)
  std::string nominated;            // Pending: the node its preemption is clearing for it
};

struct Cluster {
  std::vector<NodePoolSpec> pools;
  std::vector<Node> nodes;
  std::vector<Replica> replicas;
  std::map<std::string, double> cost;  // pool -> money spent so far
  double accrued_until = 0;
  int next_id = 1;  // new replicas are "r<next_id>", "r<next_id + 1>", ... whatever their service

  // Creates the fixed pools' nodes and elastic pools' minimum nodes, ready at `now`.
  void bootstrap(double now);
  // Replicas on a node (not terminating) / waiting for one / removed but still holding GPUs: of
  // `service`, or of every service when it is empty.
  int placed(std::string_view service = {}) const;
  int pending(std::string_view service = {}) const;
  int terminating(std::string_view service = {}) const;
  // GPUs of `n` that no replica holds, terminating ones included.
  int freeGpus(const Node& n) const;
  const NodePoolSpec* pool(const std::string& name) const;
  // Pools unit `unit` of `policy` selects, in declaration order.
  std::vector<const NodePoolSpec*> unitPools(const PlacementPolicy& policy, int unit) const;
};

// What one service asks of the placement.
struct Demand {
  std::string service;
  int desired = 0;   // replicas
  int gpus = 1;      // per replica
  int priority = 0;  // higher is placed first and preempts lower (see above)
  PlacementPolicy policy;
};

struct Plan {
  // New Pending replicas, named by the plan ("r<next_id + i>" in order, so unique across
  // services): apply() creates exactly these, and a provider can map each id to its service.
  struct New {
    std::string id, service;
    bool replaces_preempted = false;
  };
  std::vector<New> create;
  std::vector<std::pair<std::string, std::string>> bind;      // replica id -> node
  std::vector<std::pair<std::string, int>> unit_of;           // replica id -> unit it waits for
  std::vector<std::string> remove;                            // replicas to drain and delete
  std::vector<std::pair<std::string, std::string>> nominate;  // replica id -> node it waits on
  std::vector<std::pair<std::string, int>> provision;         // pool -> nodes to add
  std::vector<std::string> release;                           // nodes to release
  std::vector<std::string> reasons;                           // one line per action
};

// Decides how to move `c` towards every service's demand at time `now`.
// REQUIRES: at most one Demand per service.
Plan plan(const Cluster& c, std::span<const Demand> demands, double now);
// Carries a plan out on the model: creates/binds/nominates replicas (new ones take their GPUs from
// their service's Demand), removes them (Pending ones at once, placed ones become terminating),
// adds provisioning nodes, releases nodes; accrues cost up to `now` first. `demands` are those the
// plan was made with.
void apply(Cluster& c, const Plan& p, std::span<const Demand> demands, double now);
// A terminating replica has stopped: its GPUs are free from `now`. Unknown ids are ignored.
void finished(Cluster& c, std::string_view id, double now);
// Marks provisioning nodes ready whose time has come and accrues cost up to `now`.
void advance(Cluster& c, double now);

}  // namespace tidegate::control
