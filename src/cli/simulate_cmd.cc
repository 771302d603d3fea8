#include "cli/simulate_cmd.h"

#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>

#include "api/loader.h"
#include "cli/workload_flags.h"
#include "sim/output.h"
#include "sim/report.h"
#include "sim/simulation.h"
#include "sim/variants.h"

namespace tidegate::cli {

namespace {

struct SimulateFlags {
  std::string config;
  WorkloadFlags workload;
  std::string models;
  std::string gpu;
  std::string compare;
  std::string sweep;
  std::string json_path, csv_path, report_path, svg_dir;
  std::string progress = "auto";
  bool quiet = false;
};

[[noreturn]] void usageError(const std::string& message) {
  std::cerr << "tidegate simulate: " << message << "\n";
  throw CLI::RuntimeError(2);
}

template <class T>
T orUsageError(Result<T> r) {
  if (!r) usageError(r.error().message);
  return std::move(r).value();
}

void orUsageError(const Status& st) {
  if (!st) usageError(st.message());
}

std::vector<std::string> splitList(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    if (end > pos) out.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

// "a=0.7,b=0.3" or "a".
std::vector<sim::ModelShare> parseModels(const std::string& text) {
  std::vector<sim::ModelShare> out;
  for (const auto& item : splitList(text)) {
    sim::ModelShare m;
    const auto eq = item.find('=');
    m.model = item.substr(0, eq);
    if (eq != std::string::npos) {
      try {
        std::size_t used = 0;
        m.weight = std::stod(item.substr(eq + 1), &used);
        if (used != item.size() - eq - 1) throw std::invalid_argument("");
      } catch (...) {
        usageError("--model expects NAME[=WEIGHT],..., got '" + item + "'");
      }
    }
    if (m.model.empty()) usageError("--model expects NAME[=WEIGHT],..., got '" + item + "'");
    out.push_back(std::move(m));
  }
  return out;
}

std::unique_ptr<std::ofstream> openOutput(const std::string& path, const char* flag) {
  if (path.empty()) return nullptr;
  auto out = std::make_unique<std::ofstream>(path);
  if (!*out) usageError(std::string("cannot write ") + flag + " " + path);
  return out;
}

std::string pointName(const std::map<std::string, double>& params) {
  std::string name;
  for (const auto& [k, v] : params) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", v);
    name += (name.empty() ? "" : " ") + k + "=" + buf;
  }
  return name;
}

int runSimulate(SimulateFlags& f, const CLI::App& cmd) {
  const auto config = orUsageError(api::loadConfig(f.config));
  if (f.workload.trace.empty() && f.workload.profile.empty() && !(f.workload.rate > 0))
    usageError("say what arrives: --trace FILE, --rate R with --duration, or --profile");
  auto setup = orUsageError(buildWorkload(f.workload, cmd));
  sim::Options opts;
  opts.workload = setup.config;
  opts.slo = setup.slo;
  opts.gpu = f.gpu;
  opts.models = parseModels(f.models);
  orUsageError(sim::validate(config, opts));

  // Every variant is checked before anything runs.
  const auto compare = splitList(f.compare);
  for (const auto& name : compare) {
    auto b = orUsageError(sim::baseline(config, name, {}));
    orUsageError(sim::validate(b, opts));
  }
  std::vector<std::pair<std::map<std::string, double>, api::Config>> points;
  if (!f.sweep.empty()) {
    const auto axes = orUsageError(sim::parseSweep(f.sweep));
    for (const auto& point : sim::sweepPoints(axes)) {
      api::Config c = config;
      for (const auto& [param, value] : point) orUsageError(sim::applyParam(c, param, value));
      if (auto st = sim::validate(c, opts); !st)
        usageError("sweep point " + pointName(point) + ": " + st.message());
      points.emplace_back(point, std::move(c));
    }
  }
  auto json_out = openOutput(f.json_path, "--json");
  auto csv_out = openOutput(f.csv_path, "--csv");
  auto report_out = openOutput(f.report_path, "--report");

  const bool progress = f.progress == "on" || (f.progress == "auto" && ::isatty(STDERR_FILENO));
  auto run = [&](const std::string& name, const api::Config& c) {
    sim::Options o = opts;
    o.keep_records = true;
    auto last = std::chrono::steady_clock::now();
    if (progress)
      o.progress = [&, name](double t, double) {
        auto now = std::chrono::steady_clock::now();
        if (now - last < std::chrono::milliseconds(500)) return;
        last = now;
        std::fprintf(stderr, "\rsimulate %s: %.0f s simulated   ", name.c_str(), t);
      };
    sim::Variant v;
    v.name = name;
    v.result = sim::run(c, o);
    v.slo_met = sim::sloMet(v.result);
    if (progress) std::fprintf(stderr, "\r%60s\r", "");
    return v;
  };

  std::vector<sim::Variant> variants;
  variants.push_back(run("configured", config));
  std::map<std::string, int> peak;
  for (const auto& s : variants.front().result.services) peak[s.name] = s.peak_replicas;
  for (const auto& name : compare)
    variants.push_back(run(name, orUsageError(sim::baseline(config, name, peak))));
  const std::size_t first_point = variants.size();
  for (auto& [params, c] : points) {
    variants.push_back(run(pointName(params), c));
    variants.back().params = params;
  }
  const auto& configured = variants.front();
  std::vector<sim::Variant> swept(std::make_move_iterator(variants.begin() + first_point),
                                  std::make_move_iterator(variants.end()));
  variants.resize(first_point);
  const int best = sim::cheapestMeetingSlo(swept);

  if (!f.quiet) {
    std::cout << sim::renderSummary(configured.result);
    if (variants.size() > 1) std::cout << sim::renderVariants(variants, -1);
    if (!swept.empty()) {
      std::cout << sim::renderVariants(swept, best);
      if (best < 0 && !opts.slo.empty()) std::cout << "no sweep point meets every SLO\n";
    }
    std::cout << std::flush;
  }
  if (json_out) {
    boost::json::object doc = sim::toJson(configured.result);
    boost::json::array cmp, sw;
    for (std::size_t i = 1; i < variants.size(); ++i) cmp.push_back(sim::toJson(variants[i]));
    for (const auto& v : swept) sw.push_back(sim::toJson(v));
    if (!cmp.empty()) doc["compare"] = std::move(cmp);
    if (!sw.empty()) {
      doc["sweep"] = std::move(sw);
      doc["sweep_cheapest_meeting_slo"] =
          best < 0 ? boost::json::value(nullptr)
                   : boost::json::value(swept[static_cast<std::size_t>(best)].name);
    }
    *json_out << boost::json::serialize(doc) << "\n";
  }
  if (csv_out) bench::writeCsv(*csv_out, configured.result.records);
  sim::ReportInput report;
  report.title = "tidegate simulate: " + f.config;
  report.configured = &configured;
  for (std::size_t i = 1; i < variants.size(); ++i) report.compared.push_back(&variants[i]);
  for (const auto& v : swept) report.swept.push_back(&v);
  report.best = best;
  report.slo = opts.slo;
  if (report_out) *report_out << sim::renderReport(report);
  if (!f.svg_dir.empty())
    for (const auto& [name, svg] : sim::charts(report)) {
      std::ofstream out(f.svg_dir + "/" + name + ".svg");
      out << svg;
      if (!out) usageError("cannot write " + f.svg_dir + "/" + name + ".svg");
    }
  if (!opts.slo.empty() && !configured.slo_met) return 3;
  return 0;
}

}  // namespace

void addSimulateCommand(CLI::App& app) {
  auto f = std::make_shared<SimulateFlags>();
  auto* cmd = app.add_subcommand(
      "simulate",
      "Simulate a configuration over a trace: the live picker, autoscaler and placement on "
      "simulated engines and node pools; cost and SLO per policy");
  cmd->add_option("-c,--config", f->config, "The configuration `tidegate serve` reads")->required();
  addWorkloadFlags(*cmd, f->workload);
  cmd->add_option("--model", f->models,
                  "Models requests name, NAME[=WEIGHT],... (default: the first InferenceModel's)");
  cmd->add_option("--gpu", f->gpu,
                  "A GPU profile for every service's engines (see docs/engine.md)");
  cmd->add_option(
      "--compare", f->compare,
      "Also run baselines on the same trace: static-peak,owned-only,queue-hpa,gpu-util");
  cmd->add_option("--sweep", f->sweep,
                  "Run every point of e.g. 'owned.nodes=1..4,target=2|4|8' and mark the cheapest "
                  "that meets every --slo");
  cmd->add_option("--json", f->json_path, "Write the results as JSON to this file");
  cmd->add_option("--csv", f->csv_path, "Write one row per request (configured policy)");
  cmd->add_option("--report", f->report_path, "Write a self-contained HTML report");
  cmd->add_option("--svg-dir", f->svg_dir,
                  "Also write each chart of the report as DIR/NAME.svg (for documents)")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--progress", f->progress, "Progress on stderr: auto (if a terminal), on, off")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  cmd->add_flag("--quiet,-q", f->quiet, "Do not print the summary");
  cmd->callback([cmd, f] {
    int rc = runSimulate(*f, *cmd);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace tidegate::cli
