#include "cli/workload_flags.h"

#include "common/duration.h"

namespace tidegate::cli {

void addWorkloadFlags(CLI::App& cmd, WorkloadFlags& f) {
  cmd.add_option("--duration,-z", f.duration,
                 "How long to send (e.g. 30s, 2m); cuts a profile or trace short");
  cmd.add_option("--requests,-n", f.requests, "Send this many requests in all (default: no limit)");
  cmd.add_option("--rate", f.rate, "Open loop: requests per second");
  cmd.add_option("--arrival", f.arrival, "Open-loop arrivals: poisson or constant")
      ->capture_default_str();
  cmd.add_option("--profile", f.profile,
                 "Open loop, piecewise rates: DURATION@RATE,... e.g. 30s@2,60s@20,30s@2");
  cmd.add_option("--trace", f.trace,
                 "Replay a trace: Azure CSV or Mooncake JSONL (format detected)");
  cmd.add_option("--time-scale", f.time_scale, "Replay the trace this many times faster")
      ->capture_default_str();
  cmd.add_option("--start", f.start, "Skip the trace before this offset")->capture_default_str();
  cmd.add_option("--limit", f.limit, "Replay at most this many trace requests (0: all)")
      ->capture_default_str();
  cmd.add_option("--rate-scale", f.rate_scale,
                 "Multiply the arrival rate: rates and profiles scale; a trace row is kept "
                 "floor(x) times plus once more with probability frac(x)")
      ->capture_default_str();
  cmd.add_option("--prompt-tokens", f.prompt_tokens,
                 "Prompt length MEAN[:STDDEV] in tokens (not with --trace)")
      ->capture_default_str();
  cmd.add_option("--max-tokens", f.max_tokens,
                 "Output length MEAN[:STDDEV] in tokens (not with --trace)")
      ->capture_default_str();
  cmd.add_option("--slo", f.slo,
                 "Check e.g. 'ttft_p90<2s,itl_p90<100ms,error_rate<1%'; exit 3 if missed");
  cmd.add_option("--seed", f.seed, "Seed of prompts and arrivals")->capture_default_str();
}

namespace {
template <class T>
T orThrow(Result<T> r) {
  if (!r) throw std::runtime_error(r.error().message);
  return std::move(r).value();
}
}  // namespace

Result<WorkloadSetup> buildWorkload(const WorkloadFlags& f, const CLI::App& cmd) {
  try {
    WorkloadSetup out;
    auto& w = out.config;
    w.seed = f.seed;
    if (cmd.count("--prompt-tokens") + cmd.count("--max-tokens") > 0 && !f.trace.empty())
      return Error{"--prompt-tokens and --max-tokens come from the trace with --trace"};
    w.prompt_tokens = orThrow(bench::parseDist(f.prompt_tokens, "--prompt-tokens"));
    w.max_tokens = orThrow(bench::parseDist(f.max_tokens, "--max-tokens"));
    double duration = 0;
    if (!f.duration.empty()) {
      duration = orThrow(parseDuration(f.duration));
      if (duration <= 0) return Error{"--duration must be positive"};
    }
    const int shapes = f.closed_loop + (f.rate > 0) + !f.profile.empty() + !f.trace.empty();
    if (shapes > 1)
      return Error{"choose one load shape: --concurrency, --rate, --profile or --trace"};
    if (!(f.rate_scale > 0)) return Error{"--rate-scale must be positive"};
    w.rate_scale = f.rate_scale;
    if (!f.trace.empty()) {
      out.trace = std::make_unique<Trace>(orThrow(loadTrace(f.trace)));
      w.shape = bench::Shape::kTrace;
      w.trace = out.trace.get();
      if (!(f.time_scale > 0)) return Error{"--time-scale must be positive"};
      w.time_scale = f.time_scale;
      w.start_s = orThrow(parseDuration(f.start));
      if (f.limit > 0) w.max_requests = f.limit;
    } else if (!f.profile.empty()) {
      w.shape = bench::Shape::kProfile;
      w.profile = orThrow(bench::parseProfile(f.profile));
    } else if (f.rate > 0) {
      w.shape = bench::Shape::kRate;
      w.rate = f.rate;
    } else {
      w.shape = bench::Shape::kClosed;
      if (f.rate_scale != 1) return Error{"--rate-scale needs an open-loop shape or a trace"};
    }
    if (f.arrival != "poisson" && f.arrival != "constant")
      return Error{"--arrival must be poisson or constant, got '" + f.arrival + "'"};
    w.poisson = f.arrival == "poisson";
    if (f.requests > 0) w.max_requests = f.requests;
    if (w.shape == bench::Shape::kClosed || w.shape == bench::Shape::kRate) {
      if (f.requests == 0 && duration == 0)
        return Error{"say how long: --duration (e.g. 2m) or --requests N"};
      if (w.shape == bench::Shape::kClosed) {
        out.closed_duration_s = duration;
      } else {
        w.duration_s = duration;
      }
    } else if (duration > 0) {
      w.duration_s = duration;  // cuts a profile or trace short
    }
    if (!f.slo.empty()) out.slo = orThrow(bench::parseSlo(f.slo));
    return out;
  } catch (const std::runtime_error& e) {
    return Error{e.what()};
  }
}

}  // namespace tidegate::cli
