#include "cli/bench_cmd.h"

#include <sys/resource.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>

#include "bench/report.h"
#include "bench/runner.h"
#include "bench/spec.h"
#include "bench/stats.h"
#include "bench/workload.h"
#include "cli/workload_flags.h"
#include "common/duration.h"
#include "common/report.h"
#include "common/trace.h"

namespace tidegate::cli {

namespace {

struct BenchFlags {
  std::string url = "http://127.0.0.1:8080";
  std::string endpoint = "chat";
  std::string model = "default";
  std::vector<std::string> headers;
  std::string api_key;
  bool stream = true;
  int concurrency = 0;
  WorkloadFlags workload;
  bool ignore_eos = true;
  std::string timeout = "120s";
  std::string json_path;
  std::string csv_path;
  std::string report_path;
  std::string progress = "auto";
  bool quiet = false;
};

double cpuSeconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Exit code 2 with a message: bad input, reported before any load is sent.
[[noreturn]] void usageError(const std::string& message) {
  std::cerr << "tidegate bench: " << message << "\n";
  throw CLI::RuntimeError(2);
}

template <class T>
T orUsageError(Result<T> r) {
  if (!r) usageError(r.error().message);
  return std::move(r).value();
}

// What the report says was run: the target and the load, as the flags gave them.
std::vector<std::string> describeRun(const BenchFlags& f, const bench::WorkloadConfig& w,
                                     const bench::RunnerConfig& rc) {
  std::string load;
  const auto& wf = f.workload;
  switch (w.shape) {
    case bench::Shape::kClosed:
      load = "closed loop, " + std::to_string(rc.concurrency) + " in flight";
      break;
    case bench::Shape::kRate:
      load =
          "open loop, " + report::formatNumber(wf.rate, "%g") + " requests/s (" + wf.arrival + ")";
      break;
    case bench::Shape::kProfile:
      load = "wave " + wf.profile + " (" + wf.arrival + ")";
      break;
    case bench::Shape::kTrace:
      load = "trace " + wf.trace + " at " + report::formatNumber(wf.time_scale, "%g") + "x";
      break;
  }
  if (!wf.duration.empty()) load += ", for " + wf.duration;
  if (wf.requests > 0) load += ", at most " + std::to_string(wf.requests) + " requests";
  load += "; prompt tokens " + wf.prompt_tokens + ", max tokens " + wf.max_tokens;
  char when[64] = "";
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  if (::gmtime_r(&now, &utc)) std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &utc);
  return {"Target: " + f.url + " (" + f.endpoint + ", model " + f.model +
              (f.stream ? ", streaming" : ", not streaming") + ")",
          "Load: " + load + ".", std::string("Finished: ") + when + "."};
}

int runBench(BenchFlags& f, const CLI::App& cmd) {
  f.workload.closed_loop = f.concurrency > 0;
  auto setup = orUsageError(buildWorkload(f.workload, cmd));
  bench::WorkloadConfig& w = setup.config;
  bench::RunnerConfig rc;
  rc.target = orUsageError(bench::parseUrl(f.url));
  if (f.endpoint != "chat" && f.endpoint != "completions")
    usageError("--endpoint must be chat or completions, got '" + f.endpoint + "'");
  w.chat = f.endpoint == "chat";
  rc.path = rc.target.base_path + (w.chat ? "/v1/chat/completions" : "/v1/completions");
  w.model = f.model;
  w.stream = rc.stream = f.stream;
  w.ignore_eos = f.ignore_eos;
  rc.timeout_s = orUsageError(parseDuration(f.timeout));
  if (rc.timeout_s <= 0) usageError("--timeout must be positive");

  rc.headers.emplace_back("Content-Type", "application/json");
  if (!f.api_key.empty()) rc.headers.emplace_back("Authorization", "Bearer " + f.api_key);
  for (const auto& h : f.headers) {
    auto colon = h.find(':');
    if (colon == std::string::npos || colon == 0)
      usageError("--header expects 'Name: value', got '" + h + "'");
    std::string value = h.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    rc.headers.emplace_back(h.substr(0, colon), value);
  }

  if (w.shape == bench::Shape::kClosed) {
    rc.concurrency = f.concurrency > 0 ? f.concurrency : 1;
    rc.duration_s = setup.closed_duration_s;
  }
  const auto& slo = setup.slo;
  std::unique_ptr<std::ofstream> json_out, csv_out;
  if (!f.json_path.empty()) {
    json_out = std::make_unique<std::ofstream>(f.json_path);
    if (!*json_out) usageError("cannot write --json " + f.json_path);
  }
  if (!f.csv_path.empty()) {
    csv_out = std::make_unique<std::ofstream>(f.csv_path);
    if (!*csv_out) usageError("cannot write --csv " + f.csv_path);
  }
  std::unique_ptr<std::ofstream> report_out;
  if (!f.report_path.empty()) {
    report_out = std::make_unique<std::ofstream>(f.report_path);
    if (!*report_out) usageError("cannot write --report " + f.report_path);
  }
  if (auto st = bench::probe(rc.target); !st) usageError(st.message());
  rc.progress = f.progress == "on" || (f.progress == "auto" && ::isatty(STDERR_FILENO));

  bench::Workload workload(w);
  bench::Recorder recorder;
  bench::Runner runner(rc, workload, recorder);
  const double cpu0 = cpuSeconds();
  const double wall = runner.run();
  auto summary = bench::summarize(recorder, wall, cpuSeconds() - cpu0);
  bench::evaluateSlo(summary, slo);
  if (!f.quiet) std::cout << bench::renderTable(summary) << std::flush;
  if (json_out) *json_out << boost::json::serialize(bench::toJson(summary)) << "\n";
  if (csv_out) bench::writeCsv(*csv_out, recorder.records());
  if (report_out) {
    bench::ReportInput in{.title = "tidegate bench",
                          .about = describeRun(f, w, rc),
                          .summary = &summary,
                          .records = &recorder.records(),
                          .itls = &recorder.itls(),
                          .slo = slo};
    *report_out << bench::renderReport(in);
  }
  if (!slo.empty() && !summary.sloMet()) return 3;
  return 0;
}

}  // namespace

void addBenchCommand(CLI::App& app) {
  auto f = std::make_shared<BenchFlags>();
  auto* cmd = app.add_subcommand(
      "bench", "Load-test an OpenAI-compatible endpoint: TTFT, inter-token latency, throughput");
  cmd->add_option("--url", f->url, "Target base URL (http://HOST:PORT[/PREFIX])")
      ->capture_default_str();
  cmd->add_option("--endpoint", f->endpoint, "chat (/v1/chat/completions) or completions")
      ->capture_default_str();
  cmd->add_option("--model", f->model, "The model every request names")->capture_default_str();
  cmd->add_option("--header", f->headers, "Extra header 'Name: value' (repeatable), e.g. Host");
  cmd->add_option("--api-key", f->api_key, "Sends Authorization: Bearer KEY");
  cmd->add_flag("--stream,!--no-stream", f->stream,
                "Stream responses (with stream_options.include_usage) and time every token "
                "(default: on)");
  cmd->add_option("--concurrency,-c", f->concurrency,
                  "Closed loop: this many requests in flight, each sent when one ends (default 1)");
  addWorkloadFlags(*cmd, f->workload);
  cmd->add_flag("--ignore-eos,!--no-ignore-eos", f->ignore_eos,
                "Send vLLM's ignore_eos so outputs are exactly max_tokens long (default: on)");
  cmd->add_option("--timeout", f->timeout, "Deadline of each request")->capture_default_str();
  cmd->add_option("--json", f->json_path, "Write the summary as JSON to this file");
  cmd->add_option("--csv", f->csv_path, "Write one row per request to this file");
  cmd->add_option("--report", f->report_path,
                  "Write a self-contained HTML report (summary, latency distributions, "
                  "throughput and errors over time) to this file");
  cmd->add_option("--progress", f->progress, "Live line on stderr: auto (if a terminal), on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  cmd->add_flag("--quiet,-q", f->quiet, "Do not print the summary table");
  cmd->callback([cmd, f] {
    int rc = runBench(*f, *cmd);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace tidegate::cli
