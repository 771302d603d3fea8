#include "control/placement.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace tidegate::control {

namespace {
bool matches(const Labels& selector, const Labels& labels) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return !selector.empty();
}
}  // namespace

void Cluster::bootstrap(double now) {
  for (const auto& p : pools) {
    for (int i = 0; i < p.min_nodes; ++i)
      nodes.push_back(
          {p.name + "-" + std::to_string(i + 1), p.name, p.gpus_per_node, true, now, now, now});
  }
  accrued_until = now;
}

int Cluster::placed() const {
  return static_cast<int>(std::count_if(replicas.begin(), replicas.end(),
                                        [](const Replica& r) { return !r.node.empty(); }));
}

int Cluster::pending() const { return static_cast<int>(replicas.size()) - placed(); }

int Cluster::freeGpus(const Node& n) const {
  int used = 0;
  for (const auto& r : replicas)
    if (r.node == n.name) used += r.gpus;
  return n.gpus - used;
}

const NodePoolSpec* Cluster::pool(const std::string& name) const {
  for (const auto& p : pools)
    if (p.name == name) return &p;
  return nullptr;
}

std::vector<const NodePoolSpec*> Cluster::unitPools(int unit) const {
  std::vector<const NodePoolSpec*> out;
  if (unit < 0 || unit >= static_cast<int>(policy.units.size())) return out;
  for (const auto& p : pools)
    if (matches(policy.units[static_cast<std::size_t>(unit)].node_selector, p.labels))
      out.push_back(&p);
  return out;
}

namespace {
// Whether one of the unit's elastic pools could add a node that fits a replica of `gpus`.
bool canGrow(const Cluster& c, int unit, int gpus) {
  for (const auto* pool : c.unitPools(unit)) {
    const auto nodes = std::count_if(c.nodes.begin(), c.nodes.end(),
                                     [&](const Node& n) { return n.pool == pool->name; });
    if (pool->elastic && pool->gpus_per_node >= gpus && nodes < pool->max_nodes) return true;
  }
  return false;
}
}  // namespace

Plan plan(const Cluster& c, int desired, int gpus, double now) {
  Plan p;
  const int units = static_cast<int>(c.policy.units.size());
  std::vector<Replica> replicas = c.replicas;  // working copy

  // Scale in: Pending replicas first, then the last unit's newest replicas.
  int excess = static_cast<int>(replicas.size()) - desired;
  if (excess > 0) {
    std::vector<std::size_t> order(replicas.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      const auto& x = replicas[a];
      const auto& y = replicas[b];
      if (x.node.empty() != y.node.empty()) return x.node.empty();  // pending first
      if (x.unit != y.unit) return x.unit > y.unit;                 // last unit first
      return x.created > y.created;                                 // newest first
    });
    std::set<std::string> gone;
    for (int i = 0; i < excess; ++i) {
      const auto& r = replicas[order[static_cast<std::size_t>(i)]];
      p.remove.push_back(r.id);
      gone.insert(r.id);
      p.reasons.push_back("scale in: remove " + r.id +
                          (r.node.empty() ? " (pending)" : " from " + r.node));
    }
    std::erase_if(replicas, [&](const Replica& r) { return gone.contains(r.id); });
  }
  // Scale out: new replicas start Pending.
  for (int i = static_cast<int>(replicas.size()); i < desired; ++i) {
    Replica r;
    r.id = "r" + std::to_string(c.next_id + p.create);
    r.gpus = gpus;
    r.created = now;
    r.pending_since = now;
    replicas.push_back(r);
    ++p.create;
  }

  // Place pending replicas, oldest first, units in priority order.
  std::map<std::string, int> free;
  for (const auto& n : c.nodes) free[n.name] = c.freeGpus(n);
  std::vector<int> in_unit(static_cast<std::size_t>(std::max(units, 1)), 0);
  for (const auto& r : replicas)
    if (r.unit >= 0 && r.unit < units && !r.node.empty())
      ++in_unit[static_cast<std::size_t>(r.unit)];
  std::map<std::string, int> waiting_gpus;  // elastic pool -> GPUs pending replicas wait for
  for (auto& r : replicas) {
    if (!r.node.empty()) continue;
    int wait_unit = -1;
    for (int u = 0; u < units; ++u) {
      const auto& unit = c.policy.units[static_cast<std::size_t>(u)];
      if (unit.max && in_unit[static_cast<std::size_t>(u)] >= *unit.max) continue;  // ExceedMax
      const Node* fit = nullptr;
      for (const auto* pool : c.unitPools(u))
        for (const auto& n : c.nodes)
          if (!fit && n.pool == pool->name && n.ready && free[n.name] >= r.gpus) fit = &n;
      if (fit) {
        free[fit->name] -= r.gpus;
        ++in_unit[static_cast<std::size_t>(u)];
        p.bind.emplace_back(r.id, fit->name);
        p.unit_of.emplace_back(r.id, u);
        p.reasons.push_back("place " + r.id + " on " + fit->name + " (unit " + std::to_string(u) +
                            ", pool " + fit->pool + ")");
        wait_unit = -2;
        break;
      }
      // No room in this unit. ExceedMax (and TimeoutOrExceedMax until the timeout) wait here;
      // otherwise move on, remembering the first unit that could grow for it.
      const bool timed_out = now - r.pending_since >= c.policy.timeout_s;
      const bool may_move_on =
          c.policy.when == PlacementPolicy::When::kLackResourceOrExceedMax ||
          (c.policy.when == PlacementPolicy::When::kTimeoutOrExceedMax && timed_out);
      if (!may_move_on) {
        wait_unit = u;
        break;
      }
      if (wait_unit == -1 && canGrow(c, u, r.gpus)) wait_unit = u;
    }
    if (wait_unit >= 0) {
      p.unit_of.emplace_back(r.id, wait_unit);
      for (const auto* pool : c.unitPools(wait_unit))
        if (pool->elastic && pool->gpus_per_node >= r.gpus) {
          waiting_gpus[pool->name] += r.gpus;
          break;
        }
    }
  }

  // Node autoscaling: elastic pools add nodes for the replicas waiting on them, counting the
  // nodes already provisioning; idle elastic nodes past scaleDownUnneededTime are released.
  for (const auto& pool : c.pools) {
    if (!pool.elastic) continue;
    int nodes = 0, soon = 0;
    for (const auto& n : c.nodes) {
      if (n.pool != pool.name) continue;
      ++nodes;
      if (!n.ready) soon += n.gpus;
    }
    const int need = waiting_gpus[pool.name] - soon;
    if (need > 0) {
      const int add =
          std::min((need + pool.gpus_per_node - 1) / pool.gpus_per_node, pool.max_nodes - nodes);
      if (add > 0) {
        p.provision.emplace_back(pool.name, add);
        p.reasons.push_back("provision " + std::to_string(add) + " node(s) in " + pool.name +
                            " for pending replicas (ready in " +
                            std::to_string(static_cast<int>(pool.provisioning_delay_s)) + " s)");
      }
    }
    int removable = nodes - pool.min_nodes;
    for (const auto& n : c.nodes) {
      if (removable <= 0) break;
      if (n.pool != pool.name || !n.ready || waiting_gpus[pool.name] > 0) continue;
      const bool used = std::any_of(replicas.begin(), replicas.end(),
                                    [&](const Replica& r) { return r.node == n.name; }) ||
                        std::any_of(p.bind.begin(), p.bind.end(),
                                    [&](const auto& b) { return b.second == n.name; });
      if (used || n.idle_since < 0 || now - n.idle_since < pool.scale_down_unneeded_s) continue;
      p.release.push_back(n.name);
      p.reasons.push_back("release idle node " + n.name + " (unneeded for " +
                          std::to_string(static_cast<int>(now - n.idle_since)) + " s)");
      --removable;
    }
  }
  return p;
}

void advance(Cluster& c, double now) {
  if (now > c.accrued_until) {
    for (const auto& n : c.nodes) {
      const auto* pool = c.pool(n.pool);
      const double from = std::max(n.created, c.accrued_until);
      if (pool && now > from) c.cost[n.pool] += pool->price_per_node_hour * (now - from) / 3600.0;
    }
    c.accrued_until = now;
  }
  for (auto& n : c.nodes)
    if (!n.ready && n.ready_at <= now) {
      n.ready = true;
      n.idle_since = now;
    }
}

void apply(Cluster& c, const Plan& p, int gpus, double now) {
  advance(c, now);
  std::set<std::string> gone(p.remove.begin(), p.remove.end());
  std::set<std::string> emptied;
  for (const auto& r : c.replicas)
    if (gone.contains(r.id) && !r.node.empty()) emptied.insert(r.node);
  std::erase_if(c.replicas, [&](const Replica& r) { return gone.contains(r.id); });
  for (int i = 0; i < p.create; ++i) {
    Replica r;
    r.id = "r" + std::to_string(c.next_id++);
    r.gpus = gpus;
    r.created = now;
    r.pending_since = now;
    c.replicas.push_back(r);
  }
  for (const auto& [id, unit] : p.unit_of)
    for (auto& r : c.replicas)
      if (r.id == id) r.unit = unit;
  for (const auto& [id, node] : p.bind)
    for (auto& r : c.replicas)
      if (r.id == id) r.node = node;
  for (auto& n : c.nodes) {
    const bool used = std::any_of(c.replicas.begin(), c.replicas.end(),
                                  [&](const Replica& r) { return r.node == n.name; });
    if (used) {
      n.idle_since = -1;
    } else if (n.idle_since < 0 || emptied.contains(n.name)) {
      n.idle_since = now;
    }
  }
  for (const auto& [pool_name, count] : p.provision) {
    const auto* pool = c.pool(pool_name);
    for (int i = 0; i < count; ++i) {
      int k = 1;
      while (std::any_of(c.nodes.begin(), c.nodes.end(), [&](const Node& n) {
        return n.name == pool_name + "-" + std::to_string(k);
      }))
        ++k;
      c.nodes.push_back({pool_name + "-" + std::to_string(k), pool_name, pool->gpus_per_node, false,
                         now + pool->provisioning_delay_s, now, now});
    }
  }
  std::erase_if(c.nodes, [&](const Node& n) {
    return std::find(p.release.begin(), p.release.end(), n.name) != p.release.end();
  });
}

}  // namespace tidegate::control
