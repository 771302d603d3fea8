#pragma once
// Workload: what `tidegate bench` sends and when. Pure and seeded: the same configuration gives
// the same requests at the same scheduled times. Requests are produced lazily (next()), so a
// long run never holds every body in memory.
//
// Shapes: closed loop (no schedule: a worker sends when its previous request ends), open loop at
// a constant rate (Poisson or evenly spaced arrivals), a piecewise profile of rates, or a trace
// replayed at its own timestamps (divided by a time scale).
//
// Prompts: N words from a fixed vocabulary, each word one token under common/tokenizer.h, drawn
// from the seeded RNG so prompts differ (no accidental prefix sharing). For traces with hash_ids
// (Mooncake), the prompt is built block by block: a block's text depends only on its id, so equal
// ids give equal text and a prefix cache sees the sharing of the original trace.

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bench/spec.h"
#include "common/trace.h"

namespace tidegate::bench {

enum class Shape { kClosed, kRate, kProfile, kTrace };

struct WorkloadConfig {
  Shape shape = Shape::kClosed;
  double rate = 1;               // kRate: requests per second
  bool poisson = true;           // kRate/kProfile: Poisson arrivals, else evenly spaced
  std::vector<Segment> profile;  // kProfile
  const Trace* trace = nullptr;  // kTrace (not owned)
  double time_scale = 1;         // kTrace: replay this many times faster
  double start_s = 0;            // kTrace: skip the trace before this offset
  std::optional<std::uint64_t> max_requests;  // stop after this many (--requests, --limit)
  double duration_s = 0;                      // stop scheduling after this (0: no limit)
  Dist prompt_tokens{128, 0};
  Dist max_tokens{128, 0};
  std::uint64_t seed = 0;
  bool chat = true;  // /v1/chat/completions body, else /v1/completions
  std::string model = "default";
  bool stream = true;      // with stream_options.include_usage
  bool ignore_eos = true;  // vLLM extension: generate exactly max_tokens
  // Multiplies the arrival rate ("what if traffic doubles"): open-loop rates and profiles are
  // multiplied; a trace keeps each row floor(x) times plus once more with probability frac(x),
  // the extra copies spread evenly at random up to the next row's arrival. 1: unchanged.
  double rate_scale = 1;
  // What each request carries: the HTTP body (`tidegate bench`) or the prompt's token ids
  // (`tidegate simulate`, which sends nothing). Both come from the same words.
  enum class Output { kBody, kTokens } output = Output::kBody;
};

struct Planned {
  std::uint64_t index = 0;
  double at = -1;  // scheduled offset from the start of the run, seconds; -1 in closed loop
  int prompt_tokens = 0;
  int max_tokens = 0;
  std::string body;                   // Output::kBody
  std::vector<std::uint32_t> tokens;  // Output::kTokens: the prompt's token ids
};

class Workload {
 public:
  explicit Workload(WorkloadConfig config);
  // The next request, or nullopt when the workload is exhausted.
  std::optional<Planned> next();
  const WorkloadConfig& config() const { return c_; }
  // Appends `tokens` words of prompt text drawn from `seed` (each word one token).
  static void appendWords(std::string& out, int tokens, std::uint64_t seed);
  // Appends the token ids of the same words (their index in the vocabulary).
  static void appendTokens(std::vector<std::uint32_t>& out, int tokens, std::uint64_t seed);

 private:
  std::optional<double> nextArrival();
  int draw(const Dist& d);
  std::string body(const Planned& p, const TraceRow* row);
  // Calls add(tokens, seed) for each run of prompt words: block by block for hash_ids.
  template <class Add>
  void promptRuns(const Planned& p, const TraceRow* row, Add add);

  WorkloadConfig c_;
  std::mt19937_64 rng_;
  std::uint64_t count_ = 0;
  double t_ = 0;             // last arrival (open loop)
  std::size_t segment_ = 0;  // kProfile
  double segment_start_ = 0;
  std::uint64_t in_segment_ = 0;  // arrivals so far in the current segment
  std::size_t row_ = 0;           // kTrace
  std::vector<double> copies_;    // kTrace with rate_scale: arrivals left of the current row
};

}  // namespace tidegate::bench
