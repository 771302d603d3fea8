#pragma once
// The flags of `tidegate engine`, in one place: the command line adds them (cli/engine_cmd.cc)
// and `tidegate simulate` parses an InferenceService's `tidegate engine` command with them, so
// a simulated replica is configured exactly as the live one. Flags map onto EngineOptions one to
// one; docs/engine.md documents each.

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "common/result.h"
#include "engine/model/profiles.h"
#include "engine/options.h"

namespace tidegate::engine {

struct EngineFlags {
  const CLI::App* cmd = nullptr;  // to ask which flags the command line gave
  EngineOptions opts;
  std::string gpu{kDefaultProfile};
  std::vector<std::string> lora_modules;
  std::string mode = "random";
  std::string time_scale = "1";
  std::string log_level = "info";
  bool no_prefix_caching = false;
  bool no_keep_alive = false;
  // Performance-model costs in the units the flags use; defaults from PerfParams.
  double step_ms = PerfParams{}.step_s * 1e3;
  double prefill_us = PerfParams{}.prefill_token_s * 1e6;
  double prefill_pair_ns = PerfParams{}.prefill_pair_s * 1e9;
  double prefill_floor_ms = PerfParams{}.prefill_floor_s * 1e3;
  double decode_us = PerfParams{}.decode_seq_s * 1e6;
  double attention_ns = PerfParams{}.attention_token_s * 1e9;
  double lora_load_ms = PerfParams{}.lora_load_s * 1e3;
};

// Adds every engine flag to `cmd`, bound to `f`.
void addEngineFlags(CLI::App& cmd, EngineFlags& f);
// Checks the parsed flags and completes f.opts from them (adapters, text mode, time scale,
// performance model; --gpu's profile under the flags the command line gave, wherever they stand
// relative to --gpu). The error says which flag is wrong.
Status finishEngineFlags(EngineFlags& f);
// Parses a `tidegate engine` argument list (the arguments after `engine`) into options.
Result<EngineOptions> parseEngineArgs(const std::vector<std::string>& args);

}  // namespace tidegate::engine
