#include "engine/model/perf_model.h"

#include <cmath>

namespace tidegate::engine {

PerfParams PerfParams::scaled(double factor) const {
  PerfParams p = *this;
  const double k = std::isinf(factor) ? 0.0 : 1.0 / factor;
  p.step_s *= k;
  p.prefill_token_s *= k;
  p.decode_seq_s *= k;
  p.attention_token_s *= k;
  p.lora_load_s *= k;
  return p;
}

double stepDuration(const PerfParams& p, const StepShape& s) {
  if (s.prefill_tokens == 0 && s.decode_seqs == 0) return 0;
  return p.step_s + p.prefill_token_s * static_cast<double>(s.prefill_tokens) +
         p.decode_seq_s * static_cast<double>(s.decode_seqs) +
         p.attention_token_s * static_cast<double>(s.context_tokens) +
         p.lora_load_s * static_cast<double>(s.loras_loaded);
}

}  // namespace tidegate::engine
