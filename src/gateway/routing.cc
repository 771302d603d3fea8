#include "gateway/routing.h"

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <sstream>
#include <tuple>
#include <variant>

namespace tidegate::gateway {

namespace beast = boost::beast;

namespace {

// A second, independent draw from one random number (splitmix64's finaliser): the pool of a
// weighted route and the target model of a split are drawn from the same request's number.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The Gateway API's PathPrefix matches whole path elements: /v1 matches /v1 and /v1/chat, not
// /v10; a trailing slash of the prefix does not count.
bool pathMatches(const api::HTTPRouteMatch& m, std::string_view path) {
  if (m.path_type == api::HTTPRouteMatch::Path::kExact) return path == m.path;
  std::string_view prefix = m.path;
  while (prefix.size() > 1 && prefix.back() == '/') prefix.remove_suffix(1);
  if (prefix == "/") return true;
  return path.starts_with(prefix) && (path.size() == prefix.size() || path[prefix.size()] == '/');
}

// The raw value of query parameter `name` ("" when absent).
std::string_view queryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) return eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return {};
}

bool requestMatches(const api::HTTPRouteMatch& m, const RequestInfo& r) {
  if (!pathMatches(m, r.path)) return false;
  if (!m.method.empty() && m.method != r.method) return false;
  for (const auto& [name, value] : m.headers)
    if (!r.header || r.header(name) != value) return false;
  for (const auto& [name, value] : m.query)
    if (queryParam(r.query, name) != value) return false;
  return true;
}

// The Gateway API's precedence of matches, highest first: an Exact path, the longest prefix, a
// method, the most headers, the most query parameters. No match is "PathPrefix /".
auto precedence(const api::HTTPRouteMatch* m) {
  if (!m) return std::make_tuple(false, std::size_t{1}, false, std::size_t{0}, std::size_t{0});
  return std::make_tuple(m->path_type == api::HTTPRouteMatch::Path::kExact, m->path.size(),
                         !m->method.empty(), m->headers.size(), m->query.size());
}

std::string percent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100.0 * share);
  return buf;
}

}  // namespace

RoutingTable::RoutingTable(std::shared_ptr<const api::Config> config,
                           const std::vector<api::Endpoints>& extra)
    : config_(std::move(config)) {
  for (const auto& p : config_->pools) {
    PoolEntry e;
    e.name = p.meta.name;
    auto add = [&](const api::Endpoints& eps) {
      if (!api::selectorMatches(p.selector, eps.meta.labels)) return;
      for (const auto& a : eps.addresses) {
        // The address's own port wins; an address without one (a pod) is an endpoint on each
        // of the pool's target ports.
        if (a.port) {
          e.endpoints.push_back(a);
          e.endpoint_labels.push_back(eps.meta.labels);
          continue;
        }
        for (auto port : p.target_ports) {
          e.endpoints.push_back(api::HostPort{a.host, port, a.tls});
          e.endpoint_labels.push_back(eps.meta.labels);
        }
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
  fallback_.resize(pools_.size());
  for (const auto& m : config_->models) {
    ModelEntry e;
    e.model_name = m.model_name;
    e.inference_model = m.meta.name;
    e.kind = m.kind;
    e.fallback = m.fallback;
    e.criticality = m.criticality;
    e.pool = poolIndex(m.pool);
    for (const auto& t : m.targets) {
      if (t.weight <= 0) continue;
      e.targets.push_back(t);
      e.cumulative.push_back((e.cumulative.empty() ? 0 : e.cumulative.back()) + t.weight);
    }
    if (e.fallback) {
      fallback_[e.pool] = models_.size();
    } else {
      named_[e.model_name].emplace_back(e.pool, models_.size());
    }
    models_.push_back(std::move(e));
  }
  for (std::size_t i = 0; i < config_->objectives.size(); ++i)
    objectives_.emplace(config_->objectives[i].meta.name, i);

  // Each route's matches go to the table of each of its hostnames, then each table is put in
  // precedence order; a stable sort keeps file order, then rule order, among equals.
  auto tableFor = [&](const std::string& host) -> Matches& {
    if (host.starts_with("*.")) {
      const auto suffix = host.substr(1);
      for (auto& [s, m] : wildcards_)
        if (s == suffix) return m;
      return wildcards_.emplace_back(suffix, Matches{}).second;
    }
    for (auto& [h, m] : exact_hosts_)
      if (h == host) return m;
    return exact_hosts_.emplace_back(host, Matches{}).second;
  };
  for (const auto& r : config_->routes) {
    for (const auto& h : r.hostnames) tableFor(h);  // first: later ones may move the tables
    for (std::size_t i = 0; i < r.rules.size(); ++i) {
      Rule rule{&r, i, {}};
      for (const auto& b : r.rules[i].backends)
        rule.backends.emplace_back(poolIndex(b.pool), b.weight);
      rules_.push_back(std::move(rule));
      std::vector<Matches*> tables;
      if (r.hostnames.empty()) {
        if (!any_host_) any_host_.emplace();
        tables.push_back(&*any_host_);
      }
      for (const auto& h : r.hostnames) tables.push_back(&tableFor(h));
      for (auto* t : tables) {
        if (r.rules[i].matches.empty()) t->push_back({nullptr, rules_.size() - 1});
        for (const auto& m : r.rules[i].matches) t->push_back({&m, rules_.size() - 1});
      }
    }
  }
  auto order = [](Matches& ms) {
    std::stable_sort(ms.begin(), ms.end(), [](const Match& a, const Match& b) {
      return precedence(a.match) > precedence(b.match);
    });
  };
  for (auto& [h, ms] : exact_hosts_) order(ms);
  for (auto& [s, ms] : wildcards_) order(ms);
  if (any_host_) order(*any_host_);
  std::stable_sort(wildcards_.begin(), wildcards_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

// Host names are case-blind (RFC 9110 §4.2.3), hence iequals.
const RoutingTable::Matches* RoutingTable::matchesFor(std::string_view host) const {
  for (const auto& [h, ms] : exact_hosts_)
    if (beast::iequals(host, h)) return &ms;
  for (const auto& [suffix, ms] : wildcards_)
    if (host.size() > suffix.size() &&
        beast::iequals(host.substr(host.size() - suffix.size()), suffix))
      return &ms;
  return any_host_ ? &*any_host_ : nullptr;
}

std::variant<Route, RouteError> RoutingTable::route(std::string_view host, const std::string& model,
                                                    std::uint64_t draw,
                                                    const ServesFn& serves) const {
  return route(RequestInfo{host, "/v1/completions", {}, "POST", nullptr}, model, draw, serves);
}

std::variant<Route, RouteError> RoutingTable::route(const RequestInfo& request,
                                                    const std::string& model, std::uint64_t draw,
                                                    const ServesFn& serves) const {
  std::string_view host = request.host;
  if (auto colon = host.rfind(':'); colon != std::string_view::npos && host.find(']') == host.npos)
    host = host.substr(0, colon);

  // 1. The route rule, if a route names the host.
  const Rule* rule = nullptr;
  if (const auto* matches = matchesFor(host)) {
    for (const auto& m : *matches)
      if (!m.match || requestMatches(*m.match, request)) {
        rule = &rules_[m.rule];
        break;
      }
    if (!rule)
      return RouteError{404, "No route rule for host " + std::string(host) + " matches " +
                                 std::string(request.method) + " " + std::string(request.path)};
  }

  // 2. The pool.
  const auto named = named_.find(model);
  auto namedIn = [&](std::size_t pool) -> const ModelEntry* {
    if (named == named_.end()) return nullptr;
    for (const auto& [p, i] : named->second)
      if (p == pool) return &models_[i];
    return nullptr;
  };
  std::optional<std::size_t> pool;
  if (rule) {
    long total = 0;
    std::vector<std::pair<std::size_t, long>> eligible;  // pool, running sum of weights
    for (const auto& [p, weight] : rule->backends) {
      if (weight <= 0 || !(namedIn(p) || fallback_[p] || serves(p, model))) continue;
      total += weight;
      eligible.emplace_back(p, total);
    }
    if (total > 0) {
      const long pick = static_cast<long>(mix(draw) % static_cast<std::uint64_t>(total));
      for (const auto& [p, upto] : eligible)
        if (pick < upto) {
          pool = p;
          break;
        }
    }
    if (!pool)
      return RouteError{404,
                        "The model `" + model + "` is not served for host " + std::string(host)};
  } else {
    for (std::size_t p = 0; p < pools_.size() && !pool; ++p)
      if (namedIn(p)) pool = p;
    for (std::size_t p = 0; p < pools_.size() && !pool; ++p)
      if (serves(p, model)) pool = p;
    for (std::size_t p = 0; p < pools_.size() && !pool; ++p)
      if (fallback_[p]) pool = p;
    if (!pool) return RouteError{404, "The model `" + model + "` does not exist."};
  }

  // 3. The target model.
  Route r;
  r.pool = *pool;
  r.target_model = model;
  r.model = namedIn(*pool);
  if (!r.model && fallback_[*pool]) r.model = &models_[*fallback_[*pool]];
  if (r.model) {
    r.criticality = r.model->criticality;
    if (!r.model->targets.empty()) {
      const auto& m = *r.model;
      const long pick = static_cast<long>(draw % static_cast<std::uint64_t>(m.cumulative.back()));
      const auto it = std::upper_bound(m.cumulative.begin(), m.cumulative.end(), pick);
      r.target = static_cast<std::size_t>(it - m.cumulative.begin());
      r.target_model = m.targets[r.target].name;
    }
  }
  if (rule) r.timeout_s = rule->route->rules[rule->index].timeout_s;

  // 4. The objective the request names, if it is one of this pool's.
  if (request.header) {
    for (auto name : kObjectiveHeaders) {
      const auto value = request.header(name);
      if (value.empty()) continue;
      if (auto it = objectives_.find(std::string(value)); it != objectives_.end()) {
        const auto& o = config_->objectives[it->second];
        if (o.pool == pools_[*pool].name) {
          r.objective = &o;
          r.criticality = api::criticalityOf(o.priority);
        }
      }
      break;
    }
  }
  return r;
}

std::string RoutingTable::describe() const {
  std::ostringstream o;
  o << "configuration " << config_->file << "\n";
  const auto& g = config_->gateway;
  o << "gateway " << g.name << (config_->has_gateway ? "" : " (defaults)") << ": listen "
    << g.listen.str() << ", admin " << g.admin.str() << ", " << g.workers << " workers\n";
  o << "pools:\n";
  for (std::size_t i = 0; i < pools_.size(); ++i) {
    const auto& p = pools_[i];
    const auto& spec = config_->pools[i];
    o << "  " << p.name << ": " << p.endpoints.size() << " endpoint(s)";
    for (const auto& e : p.endpoints) o << " " << e.str();
    if (spec.target_ports.size() > 1) {
      o << "; target ports";
      for (auto port : spec.target_ports) o << " " << port;
    }
    if (!spec.endpoint_picker.empty())
      o << "; endpoint picker " << spec.endpoint_picker << " not called (tidegate picks)";
    o << "\n";
  }
  o << "hosts:\n";
  if (config_->routes.empty()) o << "  (none: routing by model name only)\n";
  auto describeHost = [&](const std::string& host, const Matches& ms) {
    for (const auto& m : ms) {
      const auto& rule = rules_[m.rule];
      o << "  " << host;
      if (m.match) {
        const auto& mt = *m.match;
        const bool everything = mt.path_type == api::HTTPRouteMatch::Path::kPrefix &&
                                mt.path == "/" && mt.method.empty() && mt.headers.empty() &&
                                mt.query.empty();
        if (!everything) {
          // "=/v1/completions" an Exact path, "/v1*" a PathPrefix (omitted when "/").
          if (mt.path_type == api::HTTPRouteMatch::Path::kExact) {
            o << " =" << mt.path;
          } else if (mt.path != "/") {
            o << " " << mt.path << "*";
          }
          if (!mt.method.empty()) o << " " << mt.method;
          for (const auto& [k, v] : mt.headers) o << " [" << k << ": " << v << "]";
          for (const auto& [k, v] : mt.query) o << " [?" << k << "=" << v << "]";
        }
      }
      o << " ->";
      long total = 0;
      for (const auto& [p, w] : rule.backends) total += w;
      if (rule.backends.empty()) o << " (no pool)";
      for (const auto& [p, w] : rule.backends) {
        o << " " << pools_[p].name;
        if (rule.backends.size() > 1) o << " " << percent(total ? double(w) / double(total) : 0);
      }
      const auto& r = *rule.route;
      o << " (" << r.kind << " " << r.meta.name
        << (r.rules.size() > 1 ? " rules[" + std::to_string(rule.index) + "]" : "");
      if (const double t = r.rules[rule.index].timeout_s; t > 0) o << ", timeout " << t << " s";
      o << ")\n";
    }
  };
  for (const auto& [h, ms] : exact_hosts_) describeHost(h, ms);
  for (const auto& [suffix, ms] : wildcards_) describeHost("*" + suffix, ms);
  if (any_host_) describeHost("(any host)", *any_host_);
  if (!config_->routes.empty() && !any_host_) o << "  other hosts: routing by model name only\n";
  o << "models:\n";
  if (models_.empty()) o << "  (none: names listed by endpoints' /v1/models route as is)\n";
  for (const auto& m : models_) {
    o << "  " << (m.fallback ? "* (any other model)" : m.model_name) << " ("
      << api::criticalityName(m.criticality) << ") -> pool " << pools_[m.pool].name;
    if (m.targets.empty()) {
      o << ", model unchanged";
    } else {
      const double total = static_cast<double>(m.cumulative.back());
      o << ", split:";
      for (const auto& t : m.targets) o << " " << t.name << " " << percent(t.weight / total);
    }
    if (m.kind != "InferenceModel") o << " (" << m.kind << " " << m.inference_model << ")";
    o << "\n";
  }
  if (!config_->objectives.empty()) {
    o << "objectives (header x-gateway-inference-objective):\n";
    for (const auto& ob : config_->objectives)
      o << "  " << ob.meta.name << ": priority " << ob.priority << " ("
        << api::criticalityName(api::criticalityOf(ob.priority)) << ") on pool " << ob.pool << "\n";
  }
  return o.str();
}

}  // namespace tidegate::gateway
