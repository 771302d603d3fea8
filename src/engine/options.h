#pragma once
// Everything `tidegate engine` can be told, with its default. The CLI (src/cli/engine_cmd.cc)
// maps flags onto this struct one to one; docs/engine.md documents each.

#include <cstdint>
#include <string>
#include <vector>

#include "engine/model/scheduler.h"
#include "engine/text_gen.h"

namespace tidegate::engine {

struct LoraModule {
  std::string name;
  std::string path;
};

struct EngineOptions {
  std::string host = "127.0.0.1";  // default 127.0.0.1
  std::uint16_t port = 8000;       // default 8000 (vLLM's); 0 picks a free port
  std::string model = "meta-llama/Llama-3.1-8B-Instruct";  // default model path/name
  std::string served_model_name;                           // default: the --model value
  std::vector<LoraModule> lora_modules;                    // default none; `name=path` at start
  double startup_ms = 0;                 // default 0: /health is 503 until this has passed
  double time_scale = 1;                 // default 1; every duration is divided by it; inf = 0
  std::uint64_t seed = 0;                // default 0
  TextMode mode = TextMode::kRandom;     // default random
  double eos_mean = 0;                   // default 0: no early EOS in random mode
  int embedding_dim = 768;               // default 768
  std::size_t max_body_bytes = 8 << 20;  // default 8 MiB
  double keep_alive_timeout_s = 60;      // default 60 s: idle connections are closed after it
  bool keep_alive = true;  // default true; false answers every response with Connection: close
  // Default 30 s: on SIGTERM/SIGINT the engine drains (stops accepting, lets requests in
  // flight finish) for at most this long, then cuts what remains; 0 cuts at once.
  double shutdown_timeout_s = 30;
  // HTTPS, as vLLM's --ssl-certfile/--ssl-keyfile: both or neither; default plain HTTP.
  std::string ssl_certfile, ssl_keyfile;
  SchedulerConfig scheduler;  // batching, KV cache, LoRA slots, performance model

  std::string servedName() const { return served_model_name.empty() ? model : served_model_name; }
};

}  // namespace tidegate::engine
