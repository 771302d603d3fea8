#include "cli/engine_cmd.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "common/log.h"
#include "engine/model/profiles.h"
#include "engine/server.h"

namespace tidegate::cli {

namespace {

struct EngineFlags {
  const CLI::App* cmd = nullptr;  // to ask which flags the command line gave
  engine::EngineOptions opts;
  std::string gpu{engine::kDefaultProfile};
  std::vector<std::string> lora_modules;
  std::string mode = "random";
  std::string time_scale = "1";
  std::string log_level = "info";
  bool no_prefix_caching = false;
  bool no_keep_alive = false;
  // Performance-model costs in the units the flags use; defaults from engine::PerfParams.
  double step_ms = engine::PerfParams{}.step_s * 1e3;
  double prefill_us = engine::PerfParams{}.prefill_token_s * 1e6;
  double prefill_pair_ns = engine::PerfParams{}.prefill_pair_s * 1e9;
  double prefill_floor_ms = engine::PerfParams{}.prefill_floor_s * 1e3;
  double decode_us = engine::PerfParams{}.decode_seq_s * 1e6;
  double attention_ns = engine::PerfParams{}.attention_token_s * 1e9;
  double lora_load_ms = engine::PerfParams{}.lora_load_s * 1e3;
};

int runEngine(EngineFlags& f) {
  log::init("engine", f.log_level);
  auto& o = f.opts;
  for (const auto& m : f.lora_modules) {
    auto eq = m.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == m.size()) {
      std::cerr << "error: --lora-modules expects name=path, got '" << m << "'\n";
      return 2;
    }
    o.lora_modules.push_back({m.substr(0, eq), m.substr(eq + 1)});
  }
  o.mode = f.mode == "echo" ? engine::TextMode::kEcho : engine::TextMode::kRandom;
  try {
    o.time_scale = std::stod(f.time_scale);
  } catch (...) {
    o.time_scale = -1;
  }
  if (!(o.time_scale > 0)) {
    std::cerr << "error: --time-scale must be a positive number or inf, got '" << f.time_scale
              << "'\n";
    return 2;
  }
  o.scheduler.prefix_caching = !f.no_prefix_caching;
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
  auto profile = engine::findProfile(f.gpu);
  if (!profile) {
    std::cerr << "error: --gpu: " << profile.error().message << "\n";
    return 2;
  }
  engine::SchedulerConfig profiled = o.scheduler;
  engine::applyProfile(**profile, profiled);
  auto fromProfile = [&](const char* flag, auto engine::SchedulerConfig::*field) {
    if (f.cmd->count(flag) == 0) o.scheduler.*field = profiled.*field;
  };
  auto perfFromProfile = [&](const char* flag, double engine::PerfParams::*field) {
    if (f.cmd->count(flag) == 0) perf.*field = profiled.perf.*field;
  };
  fromProfile("--kv-blocks", &engine::SchedulerConfig::kv_blocks);
  fromProfile("--max-num-seqs", &engine::SchedulerConfig::max_num_seqs);
  fromProfile("--max-num-batched-tokens", &engine::SchedulerConfig::max_num_batched_tokens);
  perfFromProfile("--step-ms", &engine::PerfParams::step_s);
  perfFromProfile("--prefill-us-per-token", &engine::PerfParams::prefill_token_s);
  perfFromProfile("--prefill-ns-per-pair", &engine::PerfParams::prefill_pair_s);
  perfFromProfile("--weights-overlap", &engine::PerfParams::weights_overlap);
  perfFromProfile("--prefill-floor-ms", &engine::PerfParams::prefill_floor_s);
  perfFromProfile("--decode-us-per-seq", &engine::PerfParams::decode_seq_s);
  perfFromProfile("--attention-ns-per-token", &engine::PerfParams::attention_token_s);
  perfFromProfile("--lora-load-ms", &engine::PerfParams::lora_load_s);
  perfFromProfile("--step-noise", &engine::PerfParams::noise);
  if (perf.step_s < 0 || perf.prefill_token_s < 0 || perf.prefill_pair_s < 0 ||
      perf.prefill_floor_s < 0 || perf.decode_seq_s < 0 || perf.attention_token_s < 0 ||
      perf.noise < 0 || perf.lora_load_s < 0 || o.startup_ms < 0) {
    std::cerr << "error: costs, --step-noise, --lora-load-ms and --startup-ms must be >= 0\n";
    return 2;
  }
  if (!(perf.weights_overlap >= 0 && perf.weights_overlap <= 1)) {
    std::cerr << "error: --weights-overlap must be between 0 and 1\n";
    return 2;
  }
  if (o.scheduler.kv_blocks < 1 || o.scheduler.block_size < 1 || o.scheduler.max_num_seqs < 1 ||
      o.scheduler.max_num_batched_tokens < 1 || o.scheduler.max_model_len < 1 ||
      o.scheduler.max_waiting < 0 || o.scheduler.max_loras < 0) {
    std::cerr << "error: sizes must be positive (--kv-blocks, --block-size, --max-num-seqs, "
                 "--max-num-batched-tokens, --max-model-len) and --max-waiting, --max-loras >= 0\n";
    return 2;
  }
  if (static_cast<int>(o.lora_modules.size()) > 0 && o.scheduler.max_loras == 0) {
    std::cerr << "error: --lora-modules given with --max-loras 0\n";
    return 2;
  }

  boost::asio::io_context ioc(1);
  engine::EngineServer server(ioc, o);
  auto ep = server.start();
  if (!ep) {
    std::cerr << "error: " << ep.error().message << "\n";
    return 1;
  }
  // Tests and scripts read the bound port from this line (with --port 0).
  std::cout << "tidegate engine listening on " << (o.ssl_certfile.empty() ? "http" : "https")
            << "://" << ep->address().to_string() << ":" << ep->port() << std::endl;
  spdlog::info("serving {} ({} LoRA adapters) on {}:{}, time scale {}", o.servedName(),
               o.lora_modules.size(), ep->address().to_string(), ep->port(), f.time_scale);
  // Shutdown as vLLM's OpenAI server does under uvicorn (uvicorn's Server.shutdown, with
  // --timeout-graceful-shutdown, https://www.uvicorn.org/settings/#timeouts; vLLM's
  // --shutdown-timeout, https://github.com/vllm-project/vllm/pull/34730): the first SIGTERM or
  // SIGINT stops accepting, closes idle connections and lets requests in flight (streams
  // included) finish, the scheduler still stepping; the process exits 0 once no connection
  // remains. After --shutdown-timeout (0: at once) or on a second signal (uvicorn's force exit)
  // the remaining connections are cut and the exit status is 1.
  int exit_code = 0;
  bool cut = false;
  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  boost::asio::steady_timer deadline(ioc);
  // Closes everything and lets every coroutine finish (closed sockets fail their I/O at once),
  // so nothing is left suspended when the server is destroyed. If something still runs 5 s
  // later, exits without unwinding rather than hang.
  auto cutNow = [&](const std::string& why) {
    if (cut) return;
    cut = true;
    if (server.requestsInFlight() > 0 || server.connections() > 0) exit_code = 1;
    spdlog::warn("{}: cutting {} request(s) in flight on {} connection(s)", why,
                 server.requestsInFlight(), server.connections());
    signals.cancel();
    deadline.cancel();
    server.stop();
    std::thread([] {
      std::this_thread::sleep_for(std::chrono::seconds(5));
      spdlog::warn("still busy 5 s after stop; exiting");
      std::_Exit(1);
    }).detach();
  };
  std::function<void(const boost::system::error_code&, int)> onSignal;
  onSignal = [&](const boost::system::error_code& ec, int sig) {
    if (ec || cut) return;
    if (server.draining()) {
      cutNow("signal " + std::to_string(sig) + " again");
      return;
    }
    signals.async_wait(onSignal);  // a second signal exits at once
    if (o.shutdown_timeout_s <= 0) {
      cutNow("signal " + std::to_string(sig) + " with --shutdown-timeout 0");
      return;
    }
    spdlog::info(
        "signal {}: shutting down; waiting up to {} s for {} request(s) in flight on {} "
        "connection(s) (signal again to exit now)",
        sig, o.shutdown_timeout_s, server.requestsInFlight(), server.connections());
    server.drain([&] {
      if (cut) return;
      spdlog::info("drained: every request finished; exiting");
      signals.cancel();
      deadline.cancel();
      server.stop();
    });
    deadline.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(o.shutdown_timeout_s)));
    deadline.async_wait([&](const boost::system::error_code& tec) {
      if (!tec) cutNow(fmt::format("--shutdown-timeout {} s passed", o.shutdown_timeout_s));
    });
  };
  signals.async_wait(onSignal);
  ioc.run();
  return exit_code;
}

}  // namespace

void addEngineCommand(CLI::App& app) {
  auto f = std::make_shared<EngineFlags>();
  auto& o = f->opts;
  auto& s = o.scheduler;
  auto* cmd = app.add_subcommand(
      "engine", "Run an OpenAI-compatible engine simulator that behaves like vLLM");
  f->cmd = cmd;
  std::string gpu_help =
      "GPU profile: the performance model, --kv-blocks, --max-num-seqs and "
      "--max-num-batched-tokens of one model on one GPU; flags given override it (defaults "
      "shown are the default profile's). One of:";
  for (const auto& p : engine::profiles()) gpu_help += fmt::format(" {},", p.name);
  gpu_help.back() = '.';
  cmd->add_option("--gpu", f->gpu, gpu_help)->capture_default_str();
  cmd->add_option("--host", o.host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o.port, "Port to listen on (0: any free port)")->capture_default_str();
  cmd->add_option("--model", o.model, "Model name or path (what vLLM's --model takes)")
      ->capture_default_str();
  cmd->add_option("--served-model-name", o.served_model_name,
                  "Name clients use for the base model (default: the --model value)");
  cmd->add_option("--lora-modules", f->lora_modules,
                  "LoRA adapters registered at start, as name=path (repeatable)");
  cmd->add_option("--max-loras", s.max_loras, "LoRA adapters resident in GPU slots at once")
      ->capture_default_str();
  cmd->add_option("--lora-load-ms", f->lora_load_ms,
                  "Time to load an adapter into a slot, in the step that needs it")
      ->capture_default_str();
  cmd->add_option("--max-num-seqs", s.max_num_seqs, "Most sequences running in one batch")
      ->capture_default_str();
  cmd->add_option("--max-num-batched-tokens", s.max_num_batched_tokens,
                  "Token budget of one step (chunked prefill)")
      ->capture_default_str();
  cmd->add_option("--max-waiting", s.max_waiting,
                  "Most queued requests; beyond it requests get 429")
      ->capture_default_str();
  cmd->add_option("--max-model-len", s.max_model_len, "Most tokens of prompt plus output")
      ->capture_default_str();
  cmd->add_option("--kv-blocks", s.kv_blocks, "KV-cache blocks on the simulated GPU")
      ->capture_default_str();
  cmd->add_option("--block-size", s.block_size, "Tokens per KV-cache block")->capture_default_str();
  cmd->add_flag("--no-enable-prefix-caching", f->no_prefix_caching,
                "Disable automatic prefix caching");
  cmd->add_option("--step-ms", f->step_ms, "Fixed cost of one step (weights read)")
      ->capture_default_str();
  cmd->add_option("--prefill-us-per-token", f->prefill_us, "Cost of one prompt token in a step")
      ->capture_default_str();
  cmd->add_option("--prefill-ns-per-pair", f->prefill_pair_ns,
                  "Cost of one (query, key) pair of a prompt's causal attention")
      ->capture_default_str();
  cmd->add_option("--weights-overlap", s.perf.weights_overlap,
                  "Share (0-1) of the shorter of weights read and prompt compute hidden under "
                  "the longer")
      ->capture_default_str();
  cmd->add_option("--prefill-floor-ms", f->prefill_floor_ms,
                  "Least duration of a step with prompt tokens (eager kernel launches)")
      ->capture_default_str();
  cmd->add_option("--decode-us-per-seq", f->decode_us, "Cost of one decoding sequence in a step")
      ->capture_default_str();
  cmd->add_option("--attention-ns-per-token", f->attention_ns,
                  "Cost of one context token attended by a decoding sequence")
      ->capture_default_str();
  cmd->add_option("--step-noise", s.perf.noise, "Relative std-dev of step durations (seeded)")
      ->capture_default_str();
  cmd->add_option("--time-scale", f->time_scale,
                  "Divide every simulated duration by this (inf: zero latency)")
      ->capture_default_str();
  cmd->add_option("--startup-ms", o.startup_ms, "/health answers 503 until this has passed")
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "Seed of output text and timing noise")->capture_default_str();
  cmd->add_option("--mode", f->mode, "Output text: random words or echo of the prompt")
      ->check(CLI::IsMember({"random", "echo"}))
      ->capture_default_str();
  cmd->add_option("--eos-mean", o.eos_mean,
                  "Random mode: mean output length before an EOS token (0: run to max_tokens)")
      ->capture_default_str();
  cmd->add_option("--embedding-dim", o.embedding_dim, "Length of /v1/embeddings vectors")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  cmd->add_option("--max-body-bytes", o.max_body_bytes, "Largest request body; beyond it 413")
      ->capture_default_str();
  cmd->add_option("--keep-alive-timeout", o.keep_alive_timeout_s,
                  "Seconds an idle connection is kept open for the next request")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 86400.0));
  cmd->add_option("--shutdown-timeout", o.shutdown_timeout_s,
                  "On SIGTERM/SIGINT, seconds to let requests in flight finish before cutting "
                  "them (0: at once; a second signal cuts at once)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  cmd->add_flag("--no-keep-alive", f->no_keep_alive,
                "Answer every response with Connection: close (as some proxies and HTTP/1.0 "
                "servers do)");
  cmd->add_option("--ssl-certfile", o.ssl_certfile, "Serve HTTPS with this certificate (PEM)");
  cmd->add_option("--ssl-keyfile", o.ssl_keyfile, "The certificate's private key (PEM)");
  cmd->add_option("--log-level", f->log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str();
  cmd->callback([f] {
    f->opts.keep_alive = !f->no_keep_alive;
    if (f->opts.ssl_certfile.empty() != f->opts.ssl_keyfile.empty())
      throw CLI::ValidationError("--ssl-certfile and --ssl-keyfile go together");
    int rc = runEngine(*f);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace tidegate::cli
