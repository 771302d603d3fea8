#pragma once
// The HTML report of `tidegate simulate --report`: one self-contained file (common/report.h)
// with the summary, charts over time of the configured policy (arrival rate, replicas and nodes
// per pool, queue, TTFT p90 per minute, cumulative cost), a table of every compared policy, and
// the sweep's cost-vs-SLO frontier with the cheapest configuration that meets every SLO marked.
// Pure: returns strings.

#include <string>
#include <vector>

#include "sim/output.h"

namespace tidegate::sim {

struct ReportInput {
  std::string title;
  const Variant* configured = nullptr;
  std::vector<const Variant*> compared;
  std::vector<const Variant*> swept;
  int best = -1;  // index into swept: the cheapest meeting every SLO
  std::vector<bench::SloCheck> slo;
};

// The charts of the configured run, each a standalone SVG (also written as files for docs):
// name -> SVG.
std::vector<std::pair<std::string, std::string>> charts(const ReportInput& in);

std::string renderReport(const ReportInput& in);

}  // namespace tidegate::sim
