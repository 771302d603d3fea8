#pragma once
// GPU profiles: named settings of the performance model and of the GPU-bound scheduler sizes for
// one model on one GPU, so `tidegate engine --gpu NAME` and `tidegate simulate --gpu NAME` model
// the same hardware. The A10 profile is the derived default (PerfParams{}, SchedulerConfig{});
// the others are fitted to step times measured on real GPUs (data/profiles/, whose files the
// unit test checks every profile against; nothing reads them at run time).
//
// The registry is a constant table: every pointer and view it hands out lives for the whole
// program. Pure: no I/O; callable from any thread.

#include <span>
#include <string_view>

#include "common/result.h"
#include "engine/model/perf_model.h"
#include "engine/model/scheduler.h"

namespace tidegate::engine {

struct GpuProfile {
  std::string_view name;         // what --gpu takes, "<gpu>-<model>", e.g. "h100-llama-3.1-8b"
  std::string_view gpu;          // the GPU as nvidia-smi names it
  std::string_view model;        // the model and its precision
  std::string_view description;  // where the numbers come from, one line
  std::string_view source;       // file of data/profiles/ the costs were fitted to; "" if derived
  PerfParams perf;
  int kv_blocks = 0;               // KV-cache blocks of SchedulerConfig::block_size (16) tokens
  int max_num_seqs = 0;            // vLLM's default for the GPU
  int max_num_batched_tokens = 0;  // vLLM's default for the GPU (online serving)
  double load_s = 0;  // cold start: engine start and weights load until the replica serves
};

// The profile `tidegate engine` uses without --gpu: the A10 defaults.
inline constexpr std::string_view kDefaultProfile = "a10-llama-3.1-8b";

// Every profile, the default first.
std::span<const GpuProfile> profiles();

// The profile called `name`; an unknown name is an error that lists the known ones.
Result<const GpuProfile*> findProfile(std::string_view name);

// Sets what the profile names in `config` (perf, kv_blocks, max_num_seqs,
// max_num_batched_tokens); everything else is left as it is.
void applyProfile(const GpuProfile& profile, SchedulerConfig& config);

}  // namespace tidegate::engine
