#include "engine/model/profiles.h"

#include <string>

namespace tidegate::engine {

namespace {

constexpr double kGiB = 1024.0 * 1024 * 1024;
constexpr double kMiB = 1024.0 * 1024;

// --- Memory: how many KV blocks vLLM gets on the GPU -------------------------------------------
// vLLM sizes its KV cache as (total GPU memory × gpu_memory_utilization) − weights − the peak of
// a profiling forward pass (activations at max_num_batched_tokens, plus non-torch memory and the
// CUDA-graph pool), divided into blocks.
constexpr double kGpuMemoryUtilization = 0.9;  // vLLM's default
// Activation peak + non-torch memory + CUDA graphs: an estimate for an 8B model at 8192 batched
// tokens (the MLP's gate/up output alone is 8192 × 28672 × 2 B = 0.47 GB); kept for 1B too.
constexpr double kReservedBytes = 2 * kGiB;
constexpr int kBlockSize = SchedulerConfig{}.block_size;  // 16 tokens, vLLM's default

// Memory as nvidia-smi reports memory.total (what CUDA can allocate, less than the marketing GB).
constexpr double kH100Bytes = 81559 * kMiB;   // H100 80GB HBM3 (SXM)
constexpr double kH200Bytes = 143771 * kMiB;  // H200 141GB

// Weights: parameters × 2 bytes (bf16). Llama-3.1-8B: 8.03 B parameters; Llama-3.2-1B: 1.24 B
// (its embedding is tied to the output layer, stored once).
constexpr double kLlama8bWeights = 8.03e9 * 2;  // 16.1 GB = 14.96 GiB
constexpr double kLlama1bWeights = 1.24e9 * 2;  // 2.47 GB = 2.30 GiB

// KV bytes per token: K and V × layers × KV heads × head dim × 2 bytes (bf16).
constexpr double kLlama8bKvPerToken = 2 * 32 * 8 * 128 * 2;  // 128 KiB
constexpr double kLlama1bKvPerToken = 2 * 16 * 8 * 64 * 2;   // 32 KiB

constexpr int kvBlocks(double gpu_bytes, double weights_bytes, double kv_bytes_per_token) {
  const double kv_bytes = gpu_bytes * kGpuMemoryUtilization - weights_bytes - kReservedBytes;
  return static_cast<int>(kv_bytes / (kv_bytes_per_token * kBlockSize));
}
// H100 + 8B:  81559 MiB × 0.9 = 71.7 GiB − 15.0 GiB weights − 2 GiB = 54.7 GiB = 28,000 blocks
//             of 2 MiB (448,000 tokens).
// H100 + 1B:  71.7 − 2.3 − 2 = 67.4 GiB = 138,000 blocks of 512 KiB (2.2 M tokens).
// H200 + 8B:  143771 MiB × 0.9 = 126.4 GiB − 15.0 − 2 = 109.4 GiB = 56,000 blocks (896,000 tokens).
// H200 + 1B:  126.4 − 2.3 − 2 = 122.1 GiB = 250,000 blocks (4.0 M tokens).

// --- Scheduler sizes ----------------------------------------------------------------------------
// vLLM V1 (EngineArgs' defaults by hardware, online serving): a GPU with >= 70 GiB that is not an
// A100 gets max_num_batched_tokens 8192 and max_num_seqs 1024; others 2048 and 256
// (SchedulerConfig{}'s defaults).
constexpr int kLargeGpuMaxNumSeqs = 1024;
constexpr int kLargeGpuMaxNumBatchedTokens = 8192;

// --- Cold start ---------------------------------------------------------------------------------
// A replica serves after the engine has started (process and CUDA context, memory profiling,
// torch.compile from its cache, CUDA-graph capture: 15–40 s in vLLM V1's startup logs) and has
// read its weights (safetensors from one local NVMe SSD at ~2 GB/s; network volumes are slower).
// Estimates, not measured: pulling the image or downloading the weights is not included.
constexpr double kEngineStartS = 20;
constexpr double kLoadBytesPerS = 2e9;
constexpr double loadSeconds(double weights_bytes) {
  return kEngineStartS + weights_bytes / kLoadBytesPerS;
}

// --- The profiles -------------------------------------------------------------------------------
// The costs of the measured profiles are fitted by scripts/fit_gpu_profile.py to the file named
// as `source` (least squares on relative errors: decode steps first, then prefills; rounded to
// three significant digits). Their worst measured point is in docs/engine.md; the unit test
// (tests/engine/model/profiles_test.cc) holds every point within 10%. Not fitted, kept at the
// defaults: lora_load_s and noise (not measured).
constexpr GpuProfile kProfiles[] = {
    {
        .name = kDefaultProfile,
        .gpu = "NVIDIA A10",
        .model = "Llama-3.1-8B, FP16",
        .description = "derived from the A10's datasheet (docs/engine.md); the default",
        .perf = PerfParams{},
        .kv_blocks = SchedulerConfig{}.kv_blocks,
        .max_num_seqs = SchedulerConfig{}.max_num_seqs,
        .max_num_batched_tokens = SchedulerConfig{}.max_num_batched_tokens,
        .load_s = loadSeconds(kLlama8bWeights),
    },
    {
        .name = "h100-llama-3.1-8b",
        .gpu = "NVIDIA H100 80GB HBM3",
        .model = "Llama-3.1-8B, bf16",
        .description = "fitted to step times measured on an H100 80GB",
        .source = "h100-llama-3.1-8b-bf16.json",
        .perf = {.step_s = 0.00663,
                 .prefill_token_s = 2.41e-05,
                 .prefill_pair_s = 9.09e-10,
                 .weights_overlap = 0.851,
                 .prefill_floor_s = 0.0114,
                 .decode_seq_s = 7.15e-06,
                 .attention_token_s = 4.2e-08},
        .kv_blocks = kvBlocks(kH100Bytes, kLlama8bWeights, kLlama8bKvPerToken),
        .max_num_seqs = kLargeGpuMaxNumSeqs,
        .max_num_batched_tokens = kLargeGpuMaxNumBatchedTokens,
        .load_s = loadSeconds(kLlama8bWeights),
    },
    {
        .name = "h100-llama-3.2-1b",
        .gpu = "NVIDIA H100 80GB HBM3",
        .model = "Llama-3.2-1B, bf16",
        .description = "fitted to step times measured on an H100 80GB",
        .source = "h100-llama-3.2-1b-bf16.json",
        .perf = {.step_s = 0.00145,
                 .prefill_token_s = 3.5e-06,
                 .prefill_pair_s = 3.43e-10,
                 .weights_overlap = 0.364,
                 .prefill_floor_s = 0.00304,
                 .decode_seq_s = 1.83e-06,
                 .attention_token_s = 1.05e-08},
        .kv_blocks = kvBlocks(kH100Bytes, kLlama1bWeights, kLlama1bKvPerToken),
        .max_num_seqs = kLargeGpuMaxNumSeqs,
        .max_num_batched_tokens = kLargeGpuMaxNumBatchedTokens,
        .load_s = loadSeconds(kLlama1bWeights),
    },
    {
        .name = "h200-llama-3.1-8b",
        .gpu = "NVIDIA H200",
        .model = "Llama-3.1-8B, bf16",
        .description = "fitted to step times measured on an H200 141GB",
        .source = "h200-llama-3.1-8b-bf16.json",
        .perf = {.step_s = 0.00499,
                 .prefill_token_s = 2.28e-05,
                 .prefill_pair_s = 1.34e-09,
                 .weights_overlap = 0.643,
                 .prefill_floor_s = 0.00777,
                 .decode_seq_s = 1.02e-05,
                 .attention_token_s = 2.86e-08},
        .kv_blocks = kvBlocks(kH200Bytes, kLlama8bWeights, kLlama8bKvPerToken),
        .max_num_seqs = kLargeGpuMaxNumSeqs,
        .max_num_batched_tokens = kLargeGpuMaxNumBatchedTokens,
        .load_s = loadSeconds(kLlama8bWeights),
    },
    {
        .name = "h200-llama-3.2-1b",
        .gpu = "NVIDIA H200",
        .model = "Llama-3.2-1B, bf16",
        .description = "fitted to step times measured on an H200 141GB",
        .source = "h200-llama-3.2-1b-bf16.json",
        .perf = {.step_s = 0.00121,
                 .prefill_token_s = 3.46e-06,
                 .prefill_pair_s = 3.59e-10,
                 .weights_overlap = 0.329,
                 .prefill_floor_s = 0.00282,
                 .decode_seq_s = 1.78e-06,
                 .attention_token_s = 7.31e-09},
        .kv_blocks = kvBlocks(kH200Bytes, kLlama1bWeights, kLlama1bKvPerToken),
        .max_num_seqs = kLargeGpuMaxNumSeqs,
        .max_num_batched_tokens = kLargeGpuMaxNumBatchedTokens,
        .load_s = loadSeconds(kLlama1bWeights),
    },
};

}  // namespace

std::span<const GpuProfile> profiles() { return kProfiles; }

Result<const GpuProfile*> findProfile(std::string_view name) {
  for (const auto& p : kProfiles) {
    if (p.name == name) return &p;
  }
  std::string known;
  for (const auto& p : kProfiles) {
    if (!known.empty()) known += ", ";
    known += p.name;
  }
  return Error{"unknown GPU profile '" + std::string(name) + "' (known: " + known + ")"};
}

void applyProfile(const GpuProfile& profile, SchedulerConfig& config) {
  config.perf = profile.perf;
  config.kv_blocks = profile.kv_blocks;
  config.max_num_seqs = profile.max_num_seqs;
  config.max_num_batched_tokens = profile.max_num_batched_tokens;
}

}  // namespace tidegate::engine
