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

int Cluster::placed(std::string_view service) const {
  return static_cast<int>(std::count_if(replicas.begin(), replicas.end(), [&](const Replica& r) {
    return !r.node.empty() && !r.terminating && (service.empty() || r.service == service);
  }));
}

int Cluster::pending(std::string_view service) const {
  return static_cast<int>(std::count_if(replicas.begin(), replicas.end(), [&](const Replica& r) {
    return r.node.empty() && (service.empty() || r.service == service);
  }));
}

int Cluster::terminating(std::string_view service) const {
  return static_cast<int>(std::count_if(replicas.begin(), replicas.end(), [&](const Replica& r) {
    return r.terminating && (service.empty() || r.service == service);
  }));
}

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

std::vector<const NodePoolSpec*> Cluster::unitPools(const PlacementPolicy& policy, int unit) const {
  std::vector<const NodePoolSpec*> out;
  if (unit < 0 || unit >= static_cast<int>(policy.units.size())) return out;
  for (const auto& p : pools)
    if (matches(policy.units[static_cast<std::size_t>(unit)].node_selector, p.labels))
      out.push_back(&p);
  return out;
}

namespace {
// Whether one of the unit's elastic pools could add a node that fits a replica of `gpus`.
bool canGrow(const Cluster& c, const PlacementPolicy& policy, int unit, int gpus) {
  for (const auto* pool : c.unitPools(policy, unit)) {
    const auto nodes = std::count_if(c.nodes.begin(), c.nodes.end(),
                                     [&](const Node& n) { return n.pool == pool->name; });
    if (pool->elastic && pool->gpus_per_node >= gpus && nodes < pool->max_nodes) return true;
  }
  return false;
}
}  // namespace

Plan plan(const Cluster& c, std::span<const Demand> demands, double now) {
  Plan p;
  std::map<std::string, std::size_t> demand_of;  // service -> index in `demands`
  for (std::size_t i = 0; i < demands.size(); ++i) demand_of[demands[i].service] = i;
  const auto demandOf = [&](const Replica& r) -> const Demand* {
    auto it = demand_of.find(r.service);
    return it == demand_of.end() ? nullptr : &demands[it->second];
  };
  std::vector<Replica> replicas = c.replicas;  // working copy
  const auto create = [&](const Demand& d, bool replaces_preempted) {
    Replica r;
    r.id = "r" + std::to_string(c.next_id + static_cast<int>(p.create.size()));
    r.service = d.service;
    r.gpus = d.gpus;
    r.created = now;
    r.pending_since = now;
    r.replaces_preempted = replaces_preempted;
    p.create.push_back({r.id, r.service, replaces_preempted});
    replicas.push_back(std::move(r));
  };

  for (const auto& d : demands) {
    std::vector<std::size_t> mine;
    for (std::size_t i = 0; i < replicas.size(); ++i)
      if (replicas[i].service == d.service && !replicas[i].terminating) mine.push_back(i);
    // Scale in: Pending replicas first, then the last unit's newest replicas.
    const int excess = static_cast<int>(mine.size()) - d.desired;
    if (excess > 0) {
      std::stable_sort(mine.begin(), mine.end(), [&](std::size_t a, std::size_t b) {
        const auto& x = replicas[a];
        const auto& y = replicas[b];
        if (x.node.empty() != y.node.empty()) return x.node.empty();  // pending first
        if (x.unit != y.unit) return x.unit > y.unit;                 // last unit first
        return x.created > y.created;                                 // newest first
      });
      std::set<std::string> gone;  // Pending ones; placed ones keep their GPUs, terminating
      for (int i = 0; i < excess; ++i) {
        auto& r = replicas[mine[static_cast<std::size_t>(i)]];
        p.remove.push_back(r.id);
        p.reasons.push_back("scale in: remove " + r.id +
                            (r.node.empty() ? " (pending)" : " from " + r.node));
        if (r.node.empty()) {
          gone.insert(r.id);
        } else {
          r.terminating = true;
        }
      }
      std::erase_if(replicas, [&](const Replica& r) { return gone.contains(r.id); });
    }
    // Scale out: new replicas start Pending.
    for (int i = static_cast<int>(mine.size()); i < d.desired; ++i) create(d, false);
  }

  // Place pending replicas: by priority, then the order of the demands, then oldest first;
  // each tries its service's units in priority order.
  // Free GPUs per node: terminating replicas still hold theirs, and a nominated replica's claim
  // counts as held.
  std::map<std::string, int> free;
  for (const auto& n : c.nodes) free[n.name] = c.freeGpus(n);
  for (const auto& r : replicas)
    if (r.node.empty() && free.contains(r.nominated)) free[r.nominated] -= r.gpus;
  std::map<std::pair<std::string, int>, int> in_unit;  // (service, unit) -> placed replicas
  for (const auto& r : replicas)
    if (r.unit >= 0 && (!r.node.empty() || free.contains(r.nominated)) && !r.terminating)
      ++in_unit[{r.service, r.unit}];
  // Queue order: a smaller key goes first.
  const auto key = [&](std::size_t i) {
    const auto idx = demand_of.at(replicas[i].service);
    return std::pair{-static_cast<long>(demands[idx].priority), idx};
  };
  std::vector<std::size_t> queue;
  for (std::size_t i = 0; i < replicas.size(); ++i)
    if (replicas[i].node.empty() && demandOf(replicas[i])) queue.push_back(i);
  std::stable_sort(queue.begin(), queue.end(),
                   [&](std::size_t a, std::size_t b) { return key(a) < key(b); });
  std::map<std::string, int> waiting_gpus;  // elastic pool -> GPUs pending replicas wait for
  const auto nodeNamed = [&](const std::string& name) -> const Node* {
    for (const auto& n : c.nodes)
      if (n.name == name) return &n;
    return nullptr;
  };
  const auto bind = [&](std::size_t i, const Node& n, int u) {
    auto& r = replicas[i];
    free[n.name] -= r.gpus;
    ++in_unit[{r.service, u}];
    r.node = n.name;
    r.unit = u;
    p.bind.emplace_back(r.id, n.name);
    p.unit_of.emplace_back(r.id, u);
    p.reasons.push_back("place " + r.id + " on " + n.name + " (unit " + std::to_string(u) +
                        ", pool " + n.pool + ")");
  };
  // Replicas of lower priority to evict from one ready node of unit `u` so that replica `i` fits
  // there, as Kubernetes' scheduler picks them: on each node the lowest priority first, newest
  // first, until it fits; the node whose most important victim is the least important, then the
  // one needing the fewest, then the first. No node: {nullptr, {}}.
  const auto victims = [&](std::size_t i, const PlacementPolicy& policy, int u) {
    const auto& r = replicas[i];
    const auto priorityOf = [&](std::size_t j) { return demandOf(replicas[j])->priority; };
    std::pair<const Node*, std::vector<std::size_t>> best;
    for (const auto* pool : c.unitPools(policy, u))
      for (const auto& n : c.nodes) {
        if (n.pool != pool->name || !n.ready) continue;
        std::vector<std::size_t> lower;
        for (std::size_t j = 0; j < replicas.size(); ++j)
          if (replicas[j].node == n.name && !replicas[j].terminating && demandOf(replicas[j]) &&
              priorityOf(j) < demandOf(r)->priority)
            lower.push_back(j);
        std::stable_sort(lower.begin(), lower.end(), [&](std::size_t a, std::size_t b) {
          if (priorityOf(a) != priorityOf(b)) return priorityOf(a) < priorityOf(b);
          return replicas[a].created > replicas[b].created;
        });
        // Room: the free GPUs and those that replicas already terminating there (this plan's
        // victims too) will free.
        int room = free[n.name];
        for (const auto& x : replicas)
          if (x.node == n.name && x.terminating) room += x.gpus;
        std::vector<std::size_t> chosen;
        for (auto j : lower) {
          if (room >= r.gpus) break;
          chosen.push_back(j);
          room += replicas[j].gpus;
        }
        if (room < r.gpus || chosen.empty()) continue;
        const auto rank = [&](const std::vector<std::size_t>& v) {
          return std::pair{priorityOf(v.back()), v.size()};
        };
        if (!best.first || rank(chosen) < rank(best.second)) best = {&n, std::move(chosen)};
      }
    return best;
  };
  for (std::size_t q = 0; q < queue.size(); ++q) {
    const std::size_t i = queue[q];
    const Demand& d = *demandOf(replicas[i]);
    // Nominated: it waits for the node its preemption is clearing, and binds there once the
    // victims have finished.
    if (const Node* n = nodeNamed(replicas[i].nominated)) {
      free[n->name] += replicas[i].gpus;  // its own claim
      if (free[n->name] >= replicas[i].gpus) {
        bind(i, *n, replicas[i].unit);
      } else {
        free[n->name] -= replicas[i].gpus;
      }
      continue;
    }
    const int units = static_cast<int>(d.policy.units.size());
    int wait_unit = -1;
    for (int u = 0; u < units; ++u) {
      const auto& unit = d.policy.units[static_cast<std::size_t>(u)];
      if (unit.max && in_unit[{d.service, u}] >= *unit.max) continue;  // ExceedMax
      const Node* fit = nullptr;
      for (const auto* pool : c.unitPools(d.policy, u))
        for (const auto& n : c.nodes)
          if (!fit && n.pool == pool->name && n.ready && free[n.name] >= replicas[i].gpus) fit = &n;
      if (!fit && !replicas[i].replaces_preempted) {
        // Preemption: evict lower-priority replicas from a node of this unit (they terminate,
        // holding their GPUs until finished) and nominate this replica to the node; each
        // victim's service gets a replacement, queued by its priority (after this replica's).
        auto [node, evict] = victims(i, d.policy, u);
        if (node) {
          for (auto j : evict) {
            // `create` may reallocate `replicas`: no reference outlives it.
            replicas[j].terminating = true;
            --in_unit[{replicas[j].service, replicas[j].unit}];
            p.remove.push_back(replicas[j].id);
            p.reasons.push_back("remove " + replicas[j].id + " from " + replicas[j].node +
                                ": preempted by " + d.service + " (" + replicas[i].id + ")");
            create(*demandOf(replicas[j]), true);
            const std::size_t k = replicas.size() - 1;
            queue.insert(
                std::upper_bound(queue.begin() + static_cast<long>(q) + 1, queue.end(), k,
                                 [&](std::size_t a, std::size_t b) { return key(a) < key(b); }),
                k);
          }
          auto& r = replicas[i];
          r.nominated = node->name;
          r.unit = u;
          free[node->name] -= r.gpus;
          ++in_unit[{r.service, u}];
          p.nominate.emplace_back(r.id, node->name);
          p.unit_of.emplace_back(r.id, u);
          p.reasons.push_back("nominate " + r.id + " to " + node->name + " (unit " +
                              std::to_string(u) + ", pool " + node->pool +
                              "): it binds there once the preempted replicas have stopped");
          wait_unit = -2;
          break;
        }
      }
      if (fit) {
        bind(i, *fit, u);
        wait_unit = -2;
        break;
      }
      // No room in this unit. ExceedMax (and TimeoutOrExceedMax until the timeout) wait here;
      // otherwise move on, remembering the first unit that could grow for it.
      const bool timed_out = now - replicas[i].pending_since >= d.policy.timeout_s;
      const bool may_move_on =
          d.policy.when == PlacementPolicy::When::kLackResourceOrExceedMax ||
          (d.policy.when == PlacementPolicy::When::kTimeoutOrExceedMax && timed_out);
      if (!may_move_on) {
        wait_unit = u;
        break;
      }
      if (wait_unit == -1 && canGrow(c, d.policy, u, replicas[i].gpus)) wait_unit = u;
    }
    if (wait_unit >= 0) {
      p.unit_of.emplace_back(replicas[i].id, wait_unit);
      for (const auto* pool : c.unitPools(d.policy, wait_unit))
        if (pool->elastic && pool->gpus_per_node >= replicas[i].gpus) {
          waiting_gpus[pool->name] += replicas[i].gpus;
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
      const bool used = std::any_of(replicas.begin(), replicas.end(), [&](const Replica& r) {
        return r.node == n.name || r.nominated == n.name;
      });
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

namespace {
// Nodes that hold or are claimed by a replica are in use; one that just stopped being so is idle
// from `now`.
void markIdle(Cluster& c, double now) {
  for (auto& n : c.nodes) {
    const bool used = std::any_of(c.replicas.begin(), c.replicas.end(), [&](const Replica& r) {
      return r.node == n.name || r.nominated == n.name;
    });
    if (used) {
      n.idle_since = -1;
    } else if (n.idle_since < 0) {
      n.idle_since = now;
    }
  }
}
}  // namespace

void finished(Cluster& c, std::string_view id, double now) {
  std::erase_if(c.replicas, [&](const Replica& r) { return r.id == id; });
  markIdle(c, now);
}

void apply(Cluster& c, const Plan& p, std::span<const Demand> demands, double now) {
  advance(c, now);
  const std::set<std::string> gone(p.remove.begin(), p.remove.end());
  for (auto& r : c.replicas)
    if (gone.contains(r.id)) r.terminating = true;
  std::erase_if(c.replicas, [&](const Replica& r) { return r.terminating && r.node.empty(); });
  for (const auto& n : p.create) {
    Replica r;
    r.id = n.id;
    r.service = n.service;
    for (const auto& d : demands)
      if (d.service == n.service) r.gpus = d.gpus;
    r.created = now;
    r.pending_since = now;
    r.replaces_preempted = n.replaces_preempted;
    c.replicas.push_back(std::move(r));
  }
  c.next_id += static_cast<int>(p.create.size());
  for (const auto& [id, unit] : p.unit_of)
    for (auto& r : c.replicas)
      if (r.id == id) r.unit = unit;
  for (const auto& [id, node] : p.nominate)
    for (auto& r : c.replicas)
      if (r.id == id) r.nominated = node;
  for (const auto& [id, node] : p.bind)
    for (auto& r : c.replicas)
      if (r.id == id) {
        r.node = node;
        r.nominated.clear();
      }
  markIdle(c, now);
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
