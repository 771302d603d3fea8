#pragma once
// Per-request records of `tidegate bench` and what is computed from them: exact percentiles
// (every sample is kept; linear interpolation between closest ranks, NumPy's default), the
// summary table, the JSON summary, the per-request CSV, and SLO verdicts. Pure: no I/O but the
// writers' streams.

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "bench/spec.h"
#include "common/quantile.h"

namespace tidegate::bench {

struct Record {
  std::uint64_t index = 0;
  double scheduled = 0;  // seconds from the start of the run (closed loop: when it was sent)
  double sent = 0;       // when the request was written
  double ttft = -1;      // first token, from `scheduled`; -1 if none
  double e2e = -1;       // last byte, from `scheduled`; -1 if the request failed before it
  unsigned status = 0;   // HTTP status; 0 if no response
  std::string error;     // empty on success; else a type: connect, timeout, http_429, ...
  int prompt_tokens = 0;
  int output_tokens = 0;
  std::string model;  // the `model` the response named
  double itl_mean = -1;
  bool ok() const { return error.empty(); }
};

struct Percentiles {
  std::size_t n = 0;
  double mean = 0, min = 0, p50 = 0, p90 = 0, p95 = 0, p99 = 0, max = 0;
  double get(const std::string& stat) const;
};

// Exact percentiles of `samples` (sorted in place). Empty input gives n == 0 and zeros.
Percentiles percentiles(std::vector<double>& samples);
// The q-quantile (0..1) of sorted samples by linear interpolation (common/quantile.h).
using tidegate::quantile;

class Recorder {
 public:
  void add(Record r, const std::vector<double>& itls);
  const std::vector<Record>& records() const { return records_; }
  std::vector<double>& itls() { return itls_; }
  std::size_t completed() const { return completed_; }
  std::size_t failed() const { return records_.size() - completed_; }

 private:
  std::vector<Record> records_;
  std::vector<double> itls_;
  std::size_t completed_ = 0;
};

struct SloVerdict {
  std::string text;
  double value;
  bool met;
};

struct Summary {
  std::size_t sent = 0, completed = 0, failed = 0;
  double duration_s = 0;
  double requests_per_s = 0, output_tokens_per_s = 0, input_tokens_per_s = 0;
  std::uint64_t prompt_tokens = 0, output_tokens = 0;
  Percentiles ttft, itl, e2e;
  std::map<std::string, std::size_t> errors;  // by type (status codes as http_NNN)
  std::map<std::string, std::size_t> models;  // responses by model
  double client_cpu_s = 0;                    // CPU time of the bench process
  double client_cpu_us_per_request = 0;
  std::vector<SloVerdict> slo;
  bool sloMet() const;
};

// Builds the summary. `duration_s` is the wall time from the first send to the last response.
Summary summarize(Recorder& rec, double duration_s, double client_cpu_s);
void evaluateSlo(Summary& s, const std::vector<SloCheck>& checks);

std::string renderTable(const Summary& s);
boost::json::object toJson(const Summary& s);
void writeCsv(std::ostream& out, const std::vector<Record>& records);

}  // namespace tidegate::bench
