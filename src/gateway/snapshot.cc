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

SnapshotBuilder::SnapshotBuilder(EndpointRegistry& registry) : registry_(registry) {}

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
  std::shared_ptr<const Snapshot> published = std::move(snap);
  current_.store(published);
  for (const auto& fn : subscribers_) fn(published);
  return published;
}

}  // namespace tidegate::gateway
