#pragma once
// What `tidegate simulate` prints and writes: the summary on stdout, the JSON document, and the
// tables comparing policies and sweep points. Pure: strings and JSON values; the command writes
// them.

#include <boost/json/object.hpp>
#include <map>
#include <string>
#include <vector>

#include "sim/simulation.h"

namespace tidegate::sim {

// One simulated configuration and its result: the configured policy, a baseline, a sweep point.
struct Variant {
  std::string name;                      // "configured", a baseline's name, or "owned.nodes=2 ..."
  std::map<std::string, double> params;  // sweep point (empty otherwise)
  RunResult result;
  bool slo_met = false;  // every --slo check of every service met
};

// The summary: requests and latency (the bench table), SLO verdicts, node pools (replica-hours,
// node-hours, cost), cost per million tokens, scale events, each service's line.
std::string renderSummary(const RunResult& r);
// One row per variant: cost, cost per million tokens, TTFT p50/p90, E2E p50, failures, SLO,
// replica-hours per pool, scale events. The row marked `best` is flagged.
std::string renderVariants(const std::vector<Variant>& variants, int best);

boost::json::object toJson(const RunResult& r);
boost::json::object toJson(const Variant& v);

// Whether every SLO check of the whole run and of every service was met.
bool sloMet(const RunResult& r);
// The cheapest variant that meets every SLO (-1: none).
int cheapestMeetingSlo(const std::vector<Variant>& variants);

}  // namespace tidegate::sim
