#pragma once
// The workload flags `tidegate bench` and `tidegate simulate` share (what to send and when), and
// their checks, in one place: the same trace, rates, profile and SLOs mean the same to both.

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench/spec.h"
#include "bench/workload.h"
#include "common/result.h"
#include "common/trace.h"

namespace tidegate::cli {

struct WorkloadFlags {
  std::string duration;
  std::uint64_t requests = 0;
  double rate = 0;
  std::string arrival = "poisson";
  std::string profile;
  std::string trace;
  double time_scale = 1;
  std::string start = "0s";
  std::uint64_t limit = 0;
  double rate_scale = 1;
  std::string prompt_tokens = "128";
  std::string max_tokens = "128";
  std::string slo;
  std::uint64_t seed = 0;
  bool closed_loop = false;  // set by the caller when a closed loop was asked for (bench -c)
};

// Adds the flags to `cmd`.
void addWorkloadFlags(CLI::App& cmd, WorkloadFlags& f);

struct WorkloadSetup {
  bench::WorkloadConfig config;  // config.trace points into `trace`
  std::unique_ptr<Trace> trace;
  double closed_duration_s = 0;  // closed loop: how long to run (--duration)
  std::vector<bench::SloCheck> slo;
};

// Checks the flags (one load shape, durations, distributions, the trace file) and builds the
// workload; the error is the message for the user. `cmd` tells which flags were given.
Result<WorkloadSetup> buildWorkload(const WorkloadFlags& f, const CLI::App& cmd);

}  // namespace tidegate::cli
