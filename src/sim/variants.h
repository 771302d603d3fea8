#pragma once
// The configurations a simulation compares: the baselines of `--compare` and the points of
// `--sweep`, each a transformation of the configuration as loaded. Pure.
//
// Baselines (every one on the same trace and seed as the configured policy):
//   static-peak  enough owned replicas for the configured run's peak, always on: every service
//                at min = max = its peak replicas, its fixed pools grown to hold them, no
//                elastic pool
//   owned-only   the configured autoscaling without elastic pools
//   queue-hpa    scale on vllm:num_requests_waiting > 5 per replica with Kubernetes' default
//                behaviour — the rule production stacks ship
//   gpu-util     the seed's rule: DCGM_CUSTOM_PROCESS_SM_UTIL target 50 (percent), default
//                behaviour
// Sweep parameters (`name=LO..HI[:STEP]` or `name=A|B|C`, comma-separated, crossed):
//   owned.nodes        every fixed NodePool's nodes      POOL.nodes   one pool's
//   elastic.max        every elastic NodePool's maxNodes POOL.max     one pool's
//   target             every service's metric targets    SERVICE.target
//   min, max           every service's min/maxReplicas   SERVICE.min, SERVICE.max

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "api/resources.h"
#include "common/result.h"

namespace tidegate::sim {

inline const std::vector<std::string>& baselineNames() {
  static const std::vector<std::string> names = {"static-peak", "owned-only", "queue-hpa",
                                                 "gpu-util"};
  return names;
}

// The baseline `name` of `c`. `peak` is each service's peak replicas in the configured run
// (static-peak sizes by it). Error for an unknown name, listing the known ones.
Result<api::Config> baseline(const api::Config& c, const std::string& name,
                             const std::map<std::string, int>& peak);

struct SweepAxis {
  std::string param;
  std::vector<double> values;
};
Result<std::vector<SweepAxis>> parseSweep(std::string_view text);

// Every point of the sweep (the cross product), as param -> value, first axis slowest.
std::vector<std::map<std::string, double>> sweepPoints(const std::vector<SweepAxis>& axes);

// Sets `param` to `value` in `c`. The error names a parameter or pool/service that does not
// exist, or a value out of range (negative nodes, min > max, ...).
Status applyParam(api::Config& c, const std::string& param, double value);

}  // namespace tidegate::sim
