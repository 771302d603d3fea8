#include "engine/model/perf_model.h"

#include <algorithm>
#include <cmath>

namespace tidegate::engine {

PerfParams PerfParams::scaled(double factor) const {
  PerfParams p = *this;
  const double k = std::isinf(factor) ? 0.0 : 1.0 / factor;
  p.step_s *= k;
  p.prefill_token_s *= k;
  p.prefill_pair_s *= k;
  p.prefill_floor_s *= k;
  p.decode_seq_s *= k;
  p.attention_token_s *= k;
  p.lora_load_s *= k;
  return p;
}

double stepDuration(const PerfParams& p, const StepShape& s) {
  if (s.prefill_tokens == 0 && s.decode_seqs == 0) return 0;
  const double weights = p.step_s;
  const double prompt = p.prefill_token_s * static_cast<double>(s.prefill_tokens) +
                        p.prefill_pair_s * static_cast<double>(s.prefill_pairs);
  const double pass = weights + prompt - p.weights_overlap * std::min(weights, prompt);
  const double compute = pass + p.decode_seq_s * static_cast<double>(s.decode_seqs) +
                         p.attention_token_s * static_cast<double>(s.context_tokens);
  const double floor = s.prefill_tokens > 0 ? p.prefill_floor_s : 0.0;
  return std::max(compute, floor) + p.lora_load_s * static_cast<double>(s.loras_loaded);
}

}  // namespace tidegate::engine
