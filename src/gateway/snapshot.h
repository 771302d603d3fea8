#pragma once
// The live snapshot and its one writer.
//
// Snapshot: everything the request path reads from configuration and discovery, immutable once
// published — the configuration, the routing table, each pool's endpoints (shared Endpoint
// objects, which carry their live scraped metrics and in-flight counts) and the picker's
// configuration. A request takes it with one atomic load and keeps it to the end, so a reload
// never changes a request midway.
//
// SnapshotBuilder: the only writer. Every source — the configuration file (start, SIGHUP), the
// controller's replicas, later Kubernetes discovery — hands the builder its latest input; each
// change rebuilds from the latest input of every source and publishes one new snapshot, under one
// mutex. A reload and an endpoint update can therefore never undo each other (before, each built
// from the other's last published result, and the later store won).
// Thread-safe: sources call from any thread; current() is lock-free. Subscribers run after each
// publish, on the publishing thread, in subscription order.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "api/resources.h"
#include "gateway/endpoint.h"
#include "gateway/picker/picker.h"
#include "gateway/routing.h"
#include "gateway/stats.h"

namespace tidegate::gateway {

struct Snapshot {
  std::uint64_t generation = 0;  // 1 for the first published snapshot, +1 for each after
  std::shared_ptr<const api::Config> config;
  std::unique_ptr<const RoutingTable> table;
  std::vector<std::vector<std::shared_ptr<Endpoint>>> pool_endpoints;  // by pool index
  PickConfig pick;
  // Metrics resolved for this snapshot (see stats.h): one PoolStats per pool; one RouteStats per
  // InferenceModel target (by model index, then target index) and per model name an endpoint
  // listed when the snapshot was built (by name, then pool index).
  std::vector<std::unique_ptr<PoolStats>> pool_stats;
  std::vector<std::vector<std::unique_ptr<RouteStats>>> model_stats;
  std::unordered_map<std::string, std::vector<std::unique_ptr<RouteStats>>> listed_stats;

  // The stats of a route; null for a name endpoints started to list after this snapshot was
  // built (the next one, published at that scrape, has it), and for a known name a rewrite rule
  // without matches took (its target is not the name's own): the caller resolves those.
  RouteStats* stats(const Route& r, const std::string& model) const;
  // `name` when the configuration or an endpoint's model list (when the snapshot was built)
  // knows it, else GatewayStats::kOther: the bounded value of the `model` label.
  const std::string& modelLabel(const std::string& name) const;

  // Every endpoint any pool selects.
  std::unordered_set<const Endpoint*> endpoints() const;
  // The endpoint at `address` if some pool selects it, else null.
  std::shared_ptr<Endpoint> endpoint(const api::HostPort& address) const;
};

class SnapshotBuilder {
 public:
  using Subscriber = std::function<void(const std::shared_ptr<const Snapshot>&)>;

  // `registry` keeps Endpoint objects (and their scraped state) across snapshots; `stats`
  // resolves each snapshot's metrics.
  SnapshotBuilder(EndpointRegistry& registry, GatewayStats& stats);

  // The live snapshot; null before the first setConfig().
  std::shared_ptr<const Snapshot> current() const { return current_.load(); }

  // Source: the configuration (validated by the loader). Publishes and returns the snapshot.
  std::shared_ptr<const Snapshot> setConfig(std::shared_ptr<const api::Config> config);
  // Source: endpoints discovered at run time, named by their source ("controller", ...); the
  // set replaces that source's previous one. Publishes once a configuration is set.
  void setEndpoints(const std::string& source, std::vector<api::Endpoints> endpoints);
  // Source: the model lists the endpoints' scrapes read changed (names become known labels).
  void modelListsChanged();
  void subscribe(Subscriber fn);

 private:
  // REQUIRES: mu_ held and config_ set.
  std::shared_ptr<const Snapshot> publishLocked();

  EndpointRegistry& registry_;
  GatewayStats& stats_;
  std::mutex mu_;  // serialises builds; readers never take it
  std::shared_ptr<const api::Config> config_;
  std::map<std::string, std::vector<api::Endpoints>> discovered_;
  std::uint64_t generation_ = 0;
  std::vector<Subscriber> subscribers_;
  std::atomic<std::shared_ptr<const Snapshot>> current_;
};

}  // namespace tidegate::gateway
