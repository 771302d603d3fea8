#include "sim/variants.h"

#include <algorithm>
#include <cmath>

namespace tidegate::sim {

Result<api::Config> baseline(const api::Config& c, const std::string& name,
                             const std::map<std::string, int>& peak) {
  api::Config out = c;
  if (name == "static-peak") {
    int gpus = 0;
    for (auto& s : out.services) {
      auto it = peak.find(s.meta.name);
      const int n = std::max(1, it == peak.end() ? s.max_replicas : it->second);
      s.min_replicas = s.max_replicas = n;
      gpus += n * s.gpus;
    }
    // The owned pools hold every replica: the GPUs needed, spread over the fixed pools in
    // order (the first grows when they do not suffice).
    std::erase_if(out.node_pools, [](const api::NodePool& p) { return p.elastic; });
    if (out.node_pools.empty()) return Error{"static-peak: no fixed NodePool to size"};
    int have = 0;
    for (const auto& p : out.node_pools) have += p.min_nodes * p.gpus_per_node;
    if (have < gpus) {
      auto& first = out.node_pools.front();
      first.min_nodes += (gpus - have + first.gpus_per_node - 1) / first.gpus_per_node;
    }
    return out;
  }
  if (name == "owned-only") {
    std::erase_if(out.node_pools, [](const api::NodePool& p) { return p.elastic; });
    if (out.node_pools.empty()) return Error{"owned-only: no fixed NodePool"};
    return out;
  }
  if (name == "queue-hpa" || name == "gpu-util") {
    for (auto& s : out.services) {
      s.metric_targets.clear();
      s.prometheus.clear();
      if (name == "queue-hpa") {
        s.metric_targets["vllm:num_requests_waiting"] = 5;
      } else {
        s.metric_targets["DCGM_CUSTOM_PROCESS_SM_UTIL"] = 50;
      }
      s.behavior = control::Behavior::kubernetesDefaults();
      s.panic = control::PanicSpec{};
    }
    return out;
  }
  std::string known;
  for (const auto& n : baselineNames()) known += (known.empty() ? "" : ", ") + n;
  return Error{"unknown baseline '" + name + "' (known: " + known + ")"};
}

Result<std::vector<SweepAxis>> parseSweep(std::string_view text) {
  std::vector<SweepAxis> axes;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto end = text.find(',', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string item(text.substr(pos, end - pos));
    pos = end + 1;
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      return Error{"--sweep: expected NAME=LO..HI[:STEP] or NAME=A|B|C, got '" + item + "'"};
    SweepAxis axis;
    axis.param = item.substr(0, eq);
    const std::string spec = item.substr(eq + 1);
    auto number = [&](const std::string& s) -> std::optional<double> {
      try {
        std::size_t used = 0;
        const double v = std::stod(s, &used);
        if (used != s.size() || !std::isfinite(v)) return std::nullopt;
        return v;
      } catch (...) {
        return std::nullopt;
      }
    };
    if (auto dots = spec.find(".."); dots != std::string::npos) {
      std::string hi_text = spec.substr(dots + 2), step_text = "1";
      if (auto colon = hi_text.find(':'); colon != std::string::npos) {
        step_text = hi_text.substr(colon + 1);
        hi_text.resize(colon);
      }
      auto lo = number(spec.substr(0, dots)), hi = number(hi_text), step = number(step_text);
      if (!lo || !hi || !step || *step <= 0 || *hi < *lo)
        return Error{"--sweep " + axis.param +
                     ": expected LO..HI[:STEP] with LO <= HI, STEP > 0, got '" + spec + "'"};
      for (int i = 0;; ++i) {
        const double v = *lo + i * *step;
        if (v > *hi + 1e-9) break;
        axis.values.push_back(v);
        if (axis.values.size() > 1000) return Error{"--sweep " + axis.param + ": over 1000 values"};
      }
    } else {
      std::size_t p = 0;
      while (p <= spec.size()) {
        auto bar = spec.find('|', p);
        if (bar == std::string::npos) bar = spec.size();
        auto v = number(spec.substr(p, bar - p));
        if (!v) return Error{"--sweep " + axis.param + ": '" + spec + "' is not a number list"};
        axis.values.push_back(*v);
        p = bar + 1;
      }
    }
    for (const auto& a : axes)
      if (a.param == axis.param) return Error{"--sweep: " + axis.param + " given twice"};
    axes.push_back(std::move(axis));
  }
  return axes;
}

std::vector<std::map<std::string, double>> sweepPoints(const std::vector<SweepAxis>& axes) {
  std::vector<std::map<std::string, double>> out{{}};
  for (const auto& axis : axes) {
    std::vector<std::map<std::string, double>> next;
    for (const auto& point : out)
      for (double v : axis.values) {
        auto p = point;
        p[axis.param] = v;
        next.push_back(std::move(p));
      }
    out = std::move(next);
  }
  return out;
}

Status applyParam(api::Config& c, const std::string& param, double value) {
  const auto dot = param.rfind('.');
  const std::string scope = dot == std::string::npos ? "" : param.substr(0, dot);
  const std::string field = dot == std::string::npos ? param : param.substr(dot + 1);
  const int count = static_cast<int>(std::lround(value));
  const bool whole = value >= 0 && std::abs(value - count) < 1e-9;
  auto bad = [&](const std::string& why) -> Status {
    return Error{"--sweep " + param + ": " + why};
  };

  // Node pools: owned.nodes, elastic.max, POOL.nodes, POOL.max.
  std::vector<api::NodePool*> pools;
  for (auto& p : c.node_pools)
    if ((scope == "owned" && !p.elastic) || (scope == "elastic" && p.elastic) ||
        p.meta.name == scope)
      pools.push_back(&p);
  if (!pools.empty() && (field == "nodes" || field == "max")) {
    if (!whole) return bad("node counts are whole numbers >= 0");
    for (auto* p : pools) {
      if (!p->elastic && field == "nodes") {
        p->min_nodes = count;
      } else if (p->elastic) {
        p->max_nodes = std::max(count, p->min_nodes);
      } else {
        return bad(p->meta.name + " is a fixed pool: sweep its nodes");
      }
    }
    return Status::Ok();
  }
  // Services: target, min, max, SERVICE.target, SERVICE.min, SERVICE.max.
  if (field == "target" || field == "min" || field == "max") {
    int n = 0;
    for (auto& s : c.services) {
      if (!scope.empty() && s.meta.name != scope) continue;
      ++n;
      if (field == "target") {
        if (!(value > 0)) return bad("a target must be positive");
        for (auto& [metric, target] : s.metric_targets) target = value;
        continue;
      }
      if (!whole || count < 1) return bad("replica counts are whole numbers >= 1");
      (field == "min" ? s.min_replicas : s.max_replicas) = count;
      if (s.min_replicas > s.max_replicas)
        return bad("minReplicas " + std::to_string(s.min_replicas) + " > maxReplicas " +
                   std::to_string(s.max_replicas) + " for " + s.meta.name);
    }
    if (n == 0) return bad("no InferenceService or NodePool named " + scope);
    return Status::Ok();
  }
  return Error{"--sweep: unknown parameter '" + param +
               "' (owned.nodes, elastic.max, POOL.nodes, POOL.max, target, min, max, "
               "SERVICE.target, SERVICE.min, SERVICE.max)"};
}

}  // namespace tidegate::sim
