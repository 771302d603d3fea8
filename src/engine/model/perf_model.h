#pragma once
// The engine's performance model: how long one continuous-batching step takes on the simulated
// GPU. Pure: no clock, no I/O; the live engine and `tidegate simulate` call the same function.
//
// A step runs one forward pass over every scheduled sequence: decoding sequences contribute one
// token each, prefilling sequences a chunk of their prompt. Its duration is
//   step_s                                     weights read once per pass (memory-bound floor)
// + prefill_token_s   × prompt tokens computed  (compute-bound GEMMs)
// + decode_seq_s      × decoding sequences      (per-sequence compute and sampling)
// + attention_token_s × context tokens attended (KV-cache reads of decoding sequences)
// + lora_load_s       × adapters loaded into a GPU slot in this step
// times a seeded noise factor. Defaults are calibrated to an 8B model (Llama-3.1-8B, FP16, GQA)
// on one A10-class GPU; docs/engine.md derives each number.

namespace tidegate::engine {

struct PerfParams {
  double step_s = 0.024;              // default 24 ms: 16 GB of weights at ~600 GB/s
  double prefill_token_s = 0.00018;   // default 0.18 ms: 16 GFLOP/token at ~87 TFLOP/s
  double decode_seq_s = 0.00022;      // default 0.22 ms per decoding sequence
  double attention_token_s = 2.1e-7;  // default 0.21 µs: 128 KiB of KV per token at 600 GB/s
  double lora_load_s = 0.030;         // default 30 ms to load an adapter into a GPU slot
  double noise = 0.03;                // default 3%: relative std-dev of step durations

  // Divides every duration by `factor` (the engine's --time-scale). factor may be +inf.
  PerfParams scaled(double factor) const;
};

struct StepShape {
  long prefill_tokens = 0;
  long decode_seqs = 0;
  long context_tokens = 0;  // tokens already in the KV cache of the decoding sequences
  long loras_loaded = 0;
};

// Duration of a step of this shape without noise, in seconds.
double stepDuration(const PerfParams& p, const StepShape& s);

}  // namespace tidegate::engine
