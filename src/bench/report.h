#pragma once
// The HTML report of `tidegate bench --report FILE`: one self-contained file (common/report.h,
// the same chart and document code as `tidegate simulate --report`) with the run's summary
// table, the TTFT and ITL distributions, and throughput, errors and TTFT over the run.
// Pure: returns strings.

#include <string>
#include <utility>
#include <vector>

#include "bench/spec.h"
#include "bench/stats.h"

namespace tidegate::bench {

struct ReportInput {
  std::string title = "tidegate bench";
  // What was run, one line each ("target: http://...", "load: 16 in flight for 1m").
  std::vector<std::string> about;
  const Summary* summary = nullptr;              // REQUIRES: set
  const std::vector<Record>* records = nullptr;  // REQUIRES: set
  const std::vector<double>* itls = nullptr;  // every gap of every successful stream; may be null
  std::vector<SloCheck> slo;  // drawn as reference lines where a chart shows the metric's p90
};

// The charts, each a standalone SVG: name -> SVG ("ttft", "itl", "throughput", "tokens",
// "ttft_over_time").
std::vector<std::pair<std::string, std::string>> charts(const ReportInput& in);

std::string renderReport(const ReportInput& in);

}  // namespace tidegate::bench
