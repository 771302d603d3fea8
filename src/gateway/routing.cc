#include "gateway/routing.h"

#include <algorithm>
#include <sstream>
#include <variant>

namespace tidegate::gateway {

RoutingTable::RoutingTable(std::shared_ptr<const api::Config> config,
                           const std::vector<api::Endpoints>& extra)
    : config_(std::move(config)) {
  for (const auto& p : config_->pools) {
    PoolEntry e;
    e.name = p.meta.name;
    auto add = [&](const api::Endpoints& eps) {
      if (!api::selectorMatches(p.selector, eps.meta.labels)) return;
      for (const auto& a : eps.addresses) {
        // The address's own port wins over the pool's targetPortNumber.
        e.endpoints.push_back(a.port ? a : api::HostPort{a.host, p.target_port});
        e.endpoint_labels.push_back(eps.meta.labels);
      }
    };
    for (const auto& eps : config_->endpoints) add(eps);
    for (const auto& eps : extra) add(eps);
    pools_.push_back(std::move(e));
  }
  auto poolIndex = [&](const std::string& name) {
    for (std::size_t i = 0; i < pools_.size(); ++i)
      if (pools_[i].name == name) return i;
    return pools_.size();  // validated at load: never reached
  };
  for (const auto& m : config_->models) {
    ModelEntry e;
    e.model_name = m.model_name;
    e.inference_model = m.meta.name;
    e.criticality = m.criticality;
    e.pool = poolIndex(m.pool);
    for (const auto& t : m.targets) {
      if (t.weight <= 0) continue;
      e.targets.push_back(t);
      e.cumulative.push_back((e.cumulative.empty() ? 0 : e.cumulative.back()) + t.weight);
    }
    models_.push_back(std::move(e));
  }
  for (const auto& r : config_->routes) {
    std::vector<std::size_t> idx;
    for (const auto& p : r.pools) idx.push_back(poolIndex(p));
    hosts_.emplace_back(r.host, std::move(idx));
  }
}

std::variant<Route, RouteError> RoutingTable::route(std::string_view host, const std::string& model,
                                                    std::uint64_t draw,
                                                    const ServesFn& serves) const {
  if (auto colon = host.rfind(':'); colon != std::string_view::npos && host.find(']') == host.npos)
    host = host.substr(0, colon);
  const std::vector<std::size_t>* candidates = nullptr;
  for (const auto& [h, pools] : hosts_)
    if (h == host) candidates = &pools;

  for (const auto& m : models_) {
    if (m.model_name != model) continue;
    if (candidates &&
        std::find(candidates->begin(), candidates->end(), m.pool) == candidates->end())
      return RouteError{404,
                        "The model `" + model + "` is not served for host " + std::string(host)};
    Route r;
    r.pool = m.pool;
    r.model = &m;
    r.criticality = m.criticality;
    r.target_model = model;
    if (!m.targets.empty()) {
      const long pick = static_cast<long>(draw % static_cast<std::uint64_t>(m.cumulative.back()));
      const auto it = std::upper_bound(m.cumulative.begin(), m.cumulative.end(), pick);
      r.target = static_cast<std::size_t>(it - m.cumulative.begin());
      r.target_model = m.targets[r.target].name;
    }
    return r;
  }
  auto tryPool = [&](std::size_t p) -> std::optional<Route> {
    if (!serves(p, model)) return std::nullopt;
    Route r;
    r.pool = p;
    r.target_model = model;
    return r;
  };
  if (candidates) {
    for (auto p : *candidates)
      if (auto r = tryPool(p)) return *r;
  } else {
    for (std::size_t p = 0; p < pools_.size(); ++p)
      if (auto r = tryPool(p)) return *r;
  }
  return RouteError{404, "The model `" + model + "` does not exist."};
}

std::string RoutingTable::describe() const {
  std::ostringstream o;
  o << "configuration " << config_->file << "\n";
  const auto& g = config_->gateway;
  o << "gateway " << g.name << (config_->has_gateway ? "" : " (defaults)") << ": listen "
    << g.listen.str() << ", admin " << g.admin.str() << ", " << g.workers << " workers\n";
  o << "pools:\n";
  for (const auto& p : pools_) {
    o << "  " << p.name << ": " << p.endpoints.size() << " endpoint(s)";
    for (const auto& e : p.endpoints) o << " " << e.str();
    o << "\n";
  }
  o << "hosts:\n";
  if (hosts_.empty()) o << "  (none: routing by model name only)\n";
  for (const auto& [h, pools] : hosts_) {
    o << "  " << h << " ->";
    for (auto p : pools) o << " " << pools_[p].name;
    o << "\n";
  }
  o << "models:\n";
  if (models_.empty()) o << "  (none: names listed by endpoints' /v1/models route as is)\n";
  for (const auto& m : models_) {
    o << "  " << m.model_name << " (" << api::criticalityName(m.criticality) << ") -> pool "
      << pools_[m.pool].name;
    if (m.targets.empty()) {
      o << ", model unchanged\n";
      continue;
    }
    const double total = static_cast<double>(m.cumulative.back());
    o << ", split:";
    for (const auto& t : m.targets) {
      char buf[64];
      std::snprintf(buf, sizeof buf, " %s %.1f%%", t.name.c_str(), 100.0 * t.weight / total);
      o << buf;
    }
    o << "\n";
  }
  return o.str();
}

}  // namespace tidegate::gateway
