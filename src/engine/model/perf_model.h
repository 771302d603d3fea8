#pragma once
// The engine's performance model: how long one continuous-batching step takes on the simulated
// GPU. Pure: no clock, no I/O; the live engine and `tidegate simulate` call the same function.
//
// A step runs one forward pass over every scheduled sequence: decoding sequences contribute one
// token each, prefilling sequences a chunk of their prompt. Each term is a physical cost:
//   weights   = step_s                                  weights read once per pass
//   prompt    = prefill_token_s × prompt tokens         compute-bound GEMMs of the prompt
//             + prefill_pair_s  × prefill pairs         causal attention of the prompt: each
//                                                       token attends to itself and all before
//   pass      = weights + prompt
//             − weights_overlap × min(weights, prompt)  the share of the shorter of the two
//                                                       that hides under the longer
//   compute   = pass
//             + decode_seq_s      × decoding sequences  per-sequence compute and sampling
//             + attention_token_s × context tokens      KV-cache reads of decoding sequences
//   duration  = max(compute, prefill_floor_s if the step has prompt tokens)
//             + lora_load_s × adapters loaded into a GPU slot in this step
// times a seeded noise factor.
//
// Why the overlap and the floor: a decode step is memory-bound and runs as one captured CUDA
// graph, so it costs the weights read plus what each sequence adds. A prompt's GEMMs are
// compute-bound and read the weights while they compute: measured on H100/H200, a prefill of n
// tokens costs about n × prefill_token_s, the weights read mostly hidden (weights_overlap 1 is
// the roofline's max(weights, prompt); 0 adds them up). A step with prompt tokens runs in eager
// mode, not as a graph, and the CPU launching its kernels takes prefill_floor_s however little
// the GPU has to do (the launches overlap the GPU's work, so the step takes the larger).
//
// A chunked prefill mixed with decodes in one step (not measured) is one pass over both: the
// weights are read once for the whole batch, the prompt's compute overlaps that read as in a
// prefill alone, each decoding sequence adds its decode costs on top as in a decode step, and the
// eager floor applies. It is never cheaper than either part alone.
//
// Defaults are calibrated to an 8B model (Llama-3.1-8B, FP16, GQA) on one A10-class GPU;
// docs/engine.md derives each number. The terms those defaults predate (prefill_pair_s,
// weights_overlap, prefill_floor_s) default to 0, leaving the sum of the other terms. Profiles
// fitted to measurements on other GPUs are in engine/model/profiles.h.

namespace tidegate::engine {

struct PerfParams {
  double step_s = 0.024;              // default 24 ms: 16 GB of weights at ~600 GB/s
  double prefill_token_s = 0.00018;   // default 0.18 ms: 16 GFLOP/token at ~87 TFLOP/s
  double prefill_pair_s = 0;          // default 0: no cost per (query, key) pair of a prompt
  double weights_overlap = 0;         // default 0: the weights read and prompt GEMMs add up; 0..1
  double prefill_floor_s = 0;         // default 0: no floor under a step with prompt tokens
  double decode_seq_s = 0.00022;      // default 0.22 ms per decoding sequence
  double attention_token_s = 2.1e-7;  // default 0.21 µs: 128 KiB of KV per token at 600 GB/s
  double lora_load_s = 0.030;         // default 30 ms to load an adapter into a GPU slot
  double noise = 0.03;                // default 3%: relative std-dev of step durations

  // Divides every duration by `factor` (the engine's --time-scale). factor may be +inf.
  PerfParams scaled(double factor) const;
};

struct StepShape {
  long prefill_tokens = 0;
  // Σ over the step's prompt chunks of the (query, key) pairs causal attention computes: a chunk
  // of k tokens after c tokens already in the KV cache attends to k·c + k(k+1)/2 pairs.
  long prefill_pairs = 0;
  long decode_seqs = 0;
  long context_tokens = 0;  // tokens already in the KV cache of the decoding sequences
  long loras_loaded = 0;
};

// The (query, key) pairs of a prompt chunk of `chunk` tokens after `cached` computed tokens.
inline long prefillPairs(long cached, long chunk) {
  return chunk * cached + chunk * (chunk + 1) / 2;
}

// Duration of a step of this shape without noise, in seconds.
double stepDuration(const PerfParams& p, const StepShape& s);

}  // namespace tidegate::engine
