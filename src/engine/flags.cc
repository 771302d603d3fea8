#include "engine/flags.h"

namespace tidegate::engine {

void addEngineFlags(CLI::App& cmd, EngineFlags& f) {
  auto& o = f.opts;
  auto& s = o.scheduler;
  f.cmd = &cmd;
  std::string gpu_help =
      "GPU profile: the performance model, --kv-blocks, --max-num-seqs and "
      "--max-num-batched-tokens of one model on one GPU; flags given override it (defaults "
      "shown are the default profile's). One of:";
  for (const auto& p : profiles()) gpu_help += " " + std::string(p.name) + ",";
  gpu_help.back() = '.';
  cmd.add_option("--gpu", f.gpu, gpu_help)->capture_default_str();
  cmd.add_option("--host", o.host, "Address to listen on")->capture_default_str();
  cmd.add_option("--port", o.port, "Port to listen on (0: any free port)")->capture_default_str();
  cmd.add_option("--model", o.model, "Model name or path (what vLLM's --model takes)")
      ->capture_default_str();
  cmd.add_option("--served-model-name", o.served_model_name,
                 "Name clients use for the base model (default: the --model value)");
  cmd.add_option("--lora-modules", f.lora_modules,
                 "LoRA adapters registered at start, as name=path (repeatable)");
  cmd.add_option("--max-loras", s.max_loras, "LoRA adapters resident in GPU slots at once")
      ->capture_default_str();
  cmd.add_option("--lora-load-ms", f.lora_load_ms,
                 "Time to load an adapter into a slot, in the step that needs it")
      ->capture_default_str();
  cmd.add_option("--max-num-seqs", s.max_num_seqs, "Most sequences running in one batch")
      ->capture_default_str();
  cmd.add_option("--max-num-batched-tokens", s.max_num_batched_tokens,
                 "Token budget of one step (chunked prefill)")
      ->capture_default_str();
  cmd.add_option("--max-waiting", s.max_waiting, "Most queued requests; beyond it requests get 429")
      ->capture_default_str();
  cmd.add_option("--max-model-len", s.max_model_len, "Most tokens of prompt plus output")
      ->capture_default_str();
  cmd.add_option("--kv-blocks", s.kv_blocks, "KV-cache blocks on the simulated GPU")
      ->capture_default_str();
  cmd.add_option("--block-size", s.block_size, "Tokens per KV-cache block")->capture_default_str();
  cmd.add_flag("--no-enable-prefix-caching", f.no_prefix_caching,
               "Disable automatic prefix caching");
  cmd.add_option("--step-ms", f.step_ms, "Fixed cost of one step (weights read)")
      ->capture_default_str();
  cmd.add_option("--prefill-us-per-token", f.prefill_us, "Cost of one prompt token in a step")
      ->capture_default_str();
  cmd.add_option("--prefill-ns-per-pair", f.prefill_pair_ns,
                 "Cost of one (query, key) pair of a prompt's causal attention")
      ->capture_default_str();
  cmd.add_option("--weights-overlap", s.perf.weights_overlap,
                 "Share (0-1) of the shorter of weights read and prompt compute hidden under "
                 "the longer")
      ->capture_default_str();
  cmd.add_option("--prefill-floor-ms", f.prefill_floor_ms,
                 "Least duration of a step with prompt tokens (eager kernel launches)")
      ->capture_default_str();
  cmd.add_option("--decode-us-per-seq", f.decode_us, "Cost of one decoding sequence in a step")
      ->capture_default_str();
  cmd.add_option("--attention-ns-per-token", f.attention_ns,
                 "Cost of one context token attended by a decoding sequence")
      ->capture_default_str();
  cmd.add_option("--step-noise", s.perf.noise, "Relative std-dev of step durations (seeded)")
      ->capture_default_str();
  cmd.add_option("--time-scale", f.time_scale,
                 "Divide every simulated duration by this (inf: zero latency)")
      ->capture_default_str();
  cmd.add_option("--startup-ms", o.startup_ms, "/health answers 503 until this has passed")
      ->capture_default_str();
  cmd.add_option("--seed", o.seed, "Seed of output text and timing noise")->capture_default_str();
  cmd.add_option("--mode", f.mode, "Output text: random words or echo of the prompt")
      ->check(CLI::IsMember({"random", "echo"}))
      ->capture_default_str();
  cmd.add_option("--eos-mean", o.eos_mean,
                 "Random mode: mean output length before an EOS token (0: run to max_tokens)")
      ->capture_default_str();
  cmd.add_option("--embedding-dim", o.embedding_dim, "Length of /v1/embeddings vectors")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  cmd.add_option("--max-body-bytes", o.max_body_bytes, "Largest request body; beyond it 413")
      ->capture_default_str();
  cmd.add_option("--keep-alive-timeout", o.keep_alive_timeout_s,
                 "Seconds an idle connection is kept open for the next request")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 86400.0));
  cmd.add_option("--shutdown-timeout", o.shutdown_timeout_s,
                 "On SIGTERM/SIGINT, seconds to let requests in flight finish before cutting "
                 "them (0: at once; a second signal cuts at once)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  cmd.add_flag("--no-keep-alive", f.no_keep_alive,
               "Answer every response with Connection: close (as some proxies and HTTP/1.0 "
               "servers do)");
  cmd.add_option("--ssl-certfile", o.ssl_certfile, "Serve HTTPS with this certificate (PEM)");
  cmd.add_option("--ssl-keyfile", o.ssl_keyfile, "The certificate's private key (PEM)");
  cmd.add_option("--log-level", f.log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str();
}

Status finishEngineFlags(EngineFlags& f) {
  auto& o = f.opts;
  for (const auto& m : f.lora_modules) {
    auto eq = m.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == m.size())
      return Error{"--lora-modules expects name=path, got '" + m + "'"};
    o.lora_modules.push_back({m.substr(0, eq), m.substr(eq + 1)});
  }
  o.mode = f.mode == "echo" ? TextMode::kEcho : TextMode::kRandom;
  try {
    o.time_scale = std::stod(f.time_scale);
  } catch (...) {
    o.time_scale = -1;
  }
  if (!(o.time_scale > 0))
    return Error{"--time-scale must be a positive number or inf, got '" + f.time_scale + "'"};
  o.scheduler.prefix_caching = !f.no_prefix_caching;
  o.keep_alive = !f.no_keep_alive;
  auto& perf = o.scheduler.perf;
  perf.step_s = f.step_ms / 1e3;
  perf.prefill_token_s = f.prefill_us / 1e6;
  perf.prefill_pair_s = f.prefill_pair_ns / 1e9;
  perf.prefill_floor_s = f.prefill_floor_ms / 1e3;
  perf.decode_seq_s = f.decode_us / 1e6;
  perf.attention_token_s = f.attention_ns / 1e9;
  perf.lora_load_s = f.lora_load_ms / 1e3;
  // --gpu sets the performance model and the GPU-bound sizes; each of their flags that the
  // command line gives overrides the profile, wherever it stands relative to --gpu.
  auto profile = findProfile(f.gpu);
  if (!profile) return Error{"--gpu: " + profile.error().message};
  SchedulerConfig profiled = o.scheduler;
  applyProfile(**profile, profiled);
  auto given = [&](const char* flag) { return f.cmd && f.cmd->count(flag) > 0; };
  auto fromProfile = [&](const char* flag, auto SchedulerConfig::*field) {
    if (!given(flag)) o.scheduler.*field = profiled.*field;
  };
  auto perfFromProfile = [&](const char* flag, double PerfParams::*field) {
    if (!given(flag)) perf.*field = profiled.perf.*field;
  };
  fromProfile("--kv-blocks", &SchedulerConfig::kv_blocks);
  fromProfile("--max-num-seqs", &SchedulerConfig::max_num_seqs);
  fromProfile("--max-num-batched-tokens", &SchedulerConfig::max_num_batched_tokens);
  perfFromProfile("--step-ms", &PerfParams::step_s);
  perfFromProfile("--prefill-us-per-token", &PerfParams::prefill_token_s);
  perfFromProfile("--prefill-ns-per-pair", &PerfParams::prefill_pair_s);
  perfFromProfile("--weights-overlap", &PerfParams::weights_overlap);
  perfFromProfile("--prefill-floor-ms", &PerfParams::prefill_floor_s);
  perfFromProfile("--decode-us-per-seq", &PerfParams::decode_seq_s);
  perfFromProfile("--attention-ns-per-token", &PerfParams::attention_token_s);
  perfFromProfile("--lora-load-ms", &PerfParams::lora_load_s);
  perfFromProfile("--step-noise", &PerfParams::noise);
  if (perf.step_s < 0 || perf.prefill_token_s < 0 || perf.prefill_pair_s < 0 ||
      perf.prefill_floor_s < 0 || perf.decode_seq_s < 0 || perf.attention_token_s < 0 ||
      perf.noise < 0 || perf.lora_load_s < 0 || o.startup_ms < 0)
    return Error{"costs, --step-noise, --lora-load-ms and --startup-ms must be >= 0"};
  if (!(perf.weights_overlap >= 0 && perf.weights_overlap <= 1))
    return Error{"--weights-overlap must be between 0 and 1"};
  if (o.scheduler.kv_blocks < 1 || o.scheduler.block_size < 1 || o.scheduler.max_num_seqs < 1 ||
      o.scheduler.max_num_batched_tokens < 1 || o.scheduler.max_model_len < 1 ||
      o.scheduler.max_waiting < 0 || o.scheduler.max_loras < 0)
    return Error{
        "sizes must be positive (--kv-blocks, --block-size, --max-num-seqs, "
        "--max-num-batched-tokens, --max-model-len) and --max-waiting, --max-loras >= 0"};
  if (!o.lora_modules.empty() && o.scheduler.max_loras == 0)
    return Error{"--lora-modules given with --max-loras 0"};
  if (o.ssl_certfile.empty() != o.ssl_keyfile.empty())
    return Error{"--ssl-certfile and --ssl-keyfile go together"};
  return Status::Ok();
}

Result<EngineOptions> parseEngineArgs(const std::vector<std::string>& args) {
  EngineFlags f;
  CLI::App app{"tidegate engine"};
  addEngineFlags(app, f);
  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 parses from the back
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return Error{e.what()};
  }
  if (auto st = finishEngineFlags(f); !st) return Error{st.message()};
  return f.opts;
}

}  // namespace tidegate::engine
