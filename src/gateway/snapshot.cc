#include "gateway/snapshot.h"

namespace tidegate::gateway {

std::unordered_set<const Endpoint*> Snapshot::endpoints() const {
  std::unordered_set<const Endpoint*> out;
  for (const auto& eps : pool_endpoints)
    for (const auto& e : eps) out.insert(e.get());
  return out;
}

std::shared_ptr<Endpoint> Snapshot::endpoint(const api::HostPort& address) const {
  for (const auto& eps : pool_endpoints)
    for (const auto& e : eps)
      if (e->address().host == address.host && e->address().port == address.port) return e;
  return nullptr;
}

RouteStats* Snapshot::stats(const Route& r, const std::string& model) const {
  if (r.model) {
    // A fallback's requests count under `other` (resolved here), or under the name asked for
    // when it is a known one (resolved by the caller, for this request).
    if (r.model->fallback && modelLabel(model) == model) return nullptr;
    const auto m = static_cast<std::size_t>(r.model - table->models().data());
    return model_stats[m][r.model->targets.empty() ? 0 : r.target].get();
  }
  auto it = listed_stats.find(model);
  return it == listed_stats.end() ? nullptr : it->second[r.pool].get();
}

const std::string& Snapshot::modelLabel(const std::string& name) const {
  static const std::string other = GatewayStats::kOther;
  if (listed_stats.contains(name)) return name;
  for (const auto& m : table->models()) {
    if (!m.fallback && m.model_name == name) return name;
    for (const auto& t : m.targets)
      if (t.name == name) return name;
  }
  return other;
}

SnapshotBuilder::SnapshotBuilder(EndpointRegistry& registry, GatewayStats& stats)
    : registry_(registry), stats_(stats) {}

void SnapshotBuilder::modelListsChanged() {
  std::lock_guard lock(mu_);
  if (config_) publishLocked();
}

std::shared_ptr<const Snapshot> SnapshotBuilder::setConfig(
    std::shared_ptr<const api::Config> config) {
  std::lock_guard lock(mu_);
  config_ = std::move(config);
  return publishLocked();
}

void SnapshotBuilder::setEndpoints(const std::string& source,
                                   std::vector<api::Endpoints> endpoints) {
  std::lock_guard lock(mu_);
  discovered_[source] = std::move(endpoints);
  if (config_) publishLocked();
}

void SnapshotBuilder::subscribe(Subscriber fn) {
  std::lock_guard lock(mu_);
  subscribers_.push_back(std::move(fn));
}

std::shared_ptr<const Snapshot> SnapshotBuilder::publishLocked() {
  auto snap = std::make_shared<Snapshot>();
  snap->generation = ++generation_;
  snap->config = config_;
  std::vector<api::Endpoints> extra;
  for (const auto& [source, eps] : discovered_) extra.insert(extra.end(), eps.begin(), eps.end());
  snap->table = std::make_unique<const RoutingTable>(config_, extra);
  std::vector<api::HostPort> all;
  for (const auto& p : snap->table->pools()) {
    std::vector<std::shared_ptr<Endpoint>> eps;
    for (const auto& a : p.endpoints) {
      eps.push_back(registry_.get(a));
      all.push_back(a);
    }
    snap->pool_endpoints.push_back(std::move(eps));
  }
  registry_.retain(all);
  const auto& g = config_->gateway;
  snap->pick = PickConfig{g.weights, g.queue_threshold, g.kv_threshold, g.stale_after_s};
  const auto& pools = snap->table->pools();
  for (const auto& p : pools) snap->pool_stats.push_back(stats_.pool(p.name));
  for (const auto& m : snap->table->models()) {
    auto& targets = snap->model_stats.emplace_back();
    const auto& pool = pools[m.pool].name;
    // A fallback takes any name a client sends: its requests count under `other`.
    const std::string model = m.fallback ? GatewayStats::kOther : m.model_name;
    if (m.targets.empty()) targets.push_back(stats_.route(model, model, pool));
    for (const auto& t : m.targets) targets.push_back(stats_.route(model, t.name, pool));
  }
  // Names the endpoints list now route by name to their pools: resolve those routes too.
  for (std::size_t p = 0; p < pools.size(); ++p) {
    for (const auto& e : snap->pool_endpoints[p]) {
      const auto m = e->metrics();
      for (const auto* names : {&m->models, &m->adapters}) {
        for (const auto& name : *names) {
          auto& by_pool = snap->listed_stats[name];
          if (by_pool.empty()) by_pool.resize(pools.size());
          if (!by_pool[p]) by_pool[p] = stats_.route(name, name, pools[p].name);
        }
      }
    }
  }
  std::shared_ptr<const Snapshot> published = std::move(snap);
  current_.store(published);
  for (const auto& fn : subscribers_) fn(published);
  return published;
}

}  // namespace tidegate::gateway
