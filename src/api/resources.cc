#include "api/resources.h"

namespace tidegate::api {

namespace {
std::string replaceAll(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size())
    s.replace(p, from.size(), to);
  return s;
}
}  // namespace

std::vector<std::string> expandCommand(const std::vector<std::string>& command, int port,
                                       const std::string& model, const std::string& gpu_ids) {
  std::vector<std::string> argv;
  for (const auto& a : command)
    argv.push_back(
        replaceAll(replaceAll(replaceAll(a, "{port}", std::to_string(port)), "{model}", model),
                   "{gpu_ids}", gpu_ids));
  return argv;
}

bool selectorMatches(const Labels& selector, const Labels& labels) {
  if (selector.empty()) return false;
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

bool globMatches(std::string_view p, std::string_view t) {
  // Iterative matcher with one backtrack point (the last `*`): linear in practice, no recursion.
  std::size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == t[ti])) {
      ++pi;
      ++ti;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

const char* criticalityName(Criticality c) {
  switch (c) {
    case Criticality::kCritical:
      return "Critical";
    case Criticality::kStandard:
      return "Standard";
    case Criticality::kSheddable:
      return "Sheddable";
  }
  return "Standard";
}

Criticality criticalityOf(int priority) {
  return priority < 0   ? Criticality::kSheddable
         : priority > 0 ? Criticality::kCritical
                        : Criticality::kStandard;
}

const char* authModeName(GatewayConfig::AuthMode m) {
  return m == GatewayConfig::AuthMode::kRequired ? "required" : "disabled";
}

const InferencePool* Config::pool(const std::string& name) const {
  for (const auto& p : pools)
    if (p.meta.name == name) return &p;
  return nullptr;
}

const UsagePlan* Config::plan(const std::string& name) const {
  for (const auto& p : plans)
    if (p.meta.name == name) return &p;
  return nullptr;
}

std::vector<control::NodePoolSpec> nodePoolSpecs(const Config& c) {
  std::vector<control::NodePoolSpec> out;
  for (const auto& p : c.node_pools)
    out.push_back({.name = p.meta.name,
                   .labels = p.meta.labels,
                   .elastic = p.elastic,
                   .min_nodes = p.min_nodes,
                   .max_nodes = p.max_nodes,
                   .gpus_per_node = p.gpus_per_node,
                   .provisioning_delay_s = p.provisioning_delay_s,
                   .scale_down_unneeded_s = p.scale_down_unneeded_s,
                   .price_per_node_hour = p.price_per_node_hour});
  return out;
}

control::PlacementPolicy placementPolicy(const Config& c, const InferenceService& s,
                                         const ResourcePolicy** policy) {
  const ResourcePolicy* rp = nullptr;
  for (const auto& r : c.resource_policies)
    if (r.meta.ns == s.meta.ns && selectorMatches(r.selector, s.meta.labels)) rp = &r;
  if (policy) *policy = rp;
  control::PlacementPolicy out;
  if (!rp) {
    for (const auto& p : c.node_pools) out.units.push_back({p.meta.labels, std::nullopt});
    return out;
  }
  for (const auto& u : rp->units) out.units.push_back({u.node_selector, u.max});
  using When = control::PlacementPolicy::When;
  out.when = rp->when == "ExceedMax"            ? When::kExceedMax
             : rp->when == "TimeoutOrExceedMax" ? When::kTimeoutOrExceedMax
                                                : When::kLackResourceOrExceedMax;
  out.timeout_s = rp->timeout_s;
  return out;
}

control::Demand placementDemand(const Config& c, const InferenceService& s, int desired) {
  return {.service = s.meta.name,
          .desired = desired,
          .gpus = s.gpus,
          .priority = s.priority,
          .policy = placementPolicy(c, s)};
}

}  // namespace tidegate::api
