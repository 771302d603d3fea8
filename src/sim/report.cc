#include "sim/report.h"

#include <algorithm>
#include <cmath>

#include "common/report.h"

namespace tidegate::sim {

namespace rp = tidegate::report;

namespace {

std::string num(double v, const char* format = "%.2f") { return rp::formatNumber(v, format); }

rp::Series series(const std::string& name, const std::vector<double>& t,
                  const std::vector<double>& y) {
  rp::Series s;
  s.name = name;
  for (std::size_t i = 0; i < t.size() && i < y.size(); ++i) s.points.push_back({t[i], y[i]});
  return s;
}

rp::LineChart overTime(std::string title, std::string y_title, rp::Format y_format) {
  rp::LineChart c;
  c.title = std::move(title);
  c.x = {.title = "simulated time", .format = rp::Format::kTime};
  c.y = {.title = std::move(y_title), .format = y_format};
  return c;
}

// TTFT p90 of the requests that arrived in each minute.
rp::Series ttftP90PerMinute(const RunResult& r) {
  std::vector<rp::Point> ttfts;
  for (const auto& rec : r.records)
    if (rec.ttft >= 0) ttfts.push_back({rec.scheduled, rec.ttft});
  return rp::quantileSeries("TTFT p90", ttfts, 60, 0.9);
}

double sloLimit(const std::vector<bench::SloCheck>& slo, const std::string& metric) {
  for (const auto& c : slo)
    if (c.metric == metric && c.stat == "p90") return c.limit;
  return -1;
}

std::vector<std::string> variantRow(const Variant& v) {
  const auto& r = v.result;
  double owned = 0, elastic = 0;
  for (const auto& p : r.pools) (p.elastic ? elastic : owned) += p.replica_seconds / 3600;
  return {v.name,
          num(r.cost),
          num(r.cost_per_million_tokens, "%.3f"),
          num(r.summary.ttft.p50, "%.3f"),
          num(r.summary.ttft.p90, "%.3f"),
          num(r.summary.e2e.p50, "%.3f"),
          std::to_string(r.summary.failed),
          num(owned),
          num(elastic),
          std::to_string(r.events.size()),
          r.summary.slo.empty() ? "-" : (v.slo_met ? "met" : "missed")};
}

rp::Table variantTable(const std::vector<const Variant*>& vs, int best) {
  rp::Table t;
  t.header = {"policy",      "cost",   "per M tokens",    "TTFT p50 (s)",      "TTFT p90 (s)",
              "E2E p50 (s)", "failed", "owned replica-h", "elastic replica-h", "scale events",
              "SLO"};
  for (const auto* v : vs) t.rows.push_back(variantRow(*v));
  if (best >= 0) t.highlighted_row = static_cast<std::size_t>(best);
  return t;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> charts(const ReportInput& in) {
  const auto& r = in.configured->result;
  const auto& s = r.series;
  std::vector<std::pair<std::string, std::string>> out;

  auto arrivals = overTime("Arrival rate", "requests/s", rp::Format::kNumber);
  arrivals.series.push_back(series("arrivals", s.t, s.arrivals_per_s));
  out.emplace_back("arrivals", rp::renderLineChart(arrivals));

  auto replicas =
      overTime("Replicas per node pool (placed on a node)", "replicas", rp::Format::kNumber);
  replicas.step = true;
  replicas.stacked = true;
  for (const auto& [pool, v] : s.replicas) replicas.series.push_back(series(pool, s.t, v));
  out.emplace_back("replicas", rp::renderLineChart(replicas));

  auto nodes = overTime("Nodes per pool (provisioning included)", "nodes", rp::Format::kNumber);
  nodes.step = true;
  nodes.stacked = true;
  for (const auto& [pool, v] : s.nodes) nodes.series.push_back(series(pool, s.t, v));
  out.emplace_back("nodes", rp::renderLineChart(nodes));

  auto queue = overTime("Requests in the engines", "requests", rp::Format::kNumber);
  queue.series.push_back(series("waiting", s.t, s.waiting));
  queue.series.push_back(series("running", s.t, s.running));
  out.emplace_back("queue", rp::renderLineChart(queue));

  auto ttft = overTime("TTFT p90 per minute of arrival", "TTFT", rp::Format::kLatency);
  ttft.series.push_back(ttftP90PerMinute(r));
  if (double limit = sloLimit(in.slo, "ttft"); limit > 0)
    ttft.references.push_back({limit, "SLO " + num(limit, "%g") + " s"});
  out.emplace_back("ttft", rp::renderLineChart(ttft));

  auto cost = overTime("Cumulative cost", "cost", rp::Format::kNumber);
  cost.series.push_back(series("every pool", s.t, s.cost));
  out.emplace_back("cost", rp::renderLineChart(cost));

  if (!in.swept.empty()) {
    rp::ScatterChart f;
    f.title = "Sweep: cost against TTFT p90";
    f.x = {.title = "cost", .format = rp::Format::kNumber};
    f.y = {.title = "TTFT p90", .format = rp::Format::kLatency};
    for (std::size_t i = 0; i < in.swept.size(); ++i) {
      const auto& v = *in.swept[i];
      f.points.push_back({v.result.cost, v.result.summary.ttft.p90, v.name,
                          static_cast<int>(i) == in.best, v.slo_met});
    }
    f.frontier = rp::paretoFrontier(f.points, false);
    if (double limit = sloLimit(in.slo, "ttft"); limit > 0)
      f.references.push_back({limit, "SLO " + num(limit, "%g") + " s"});
    out.emplace_back("sweep", rp::renderScatterChart(f));
  }
  return out;
}

std::string renderReport(const ReportInput& in) {
  const auto& r = in.configured->result;
  rp::Document doc(in.title);
  rp::Summary summary = {
      {"requests", std::to_string(r.summary.sent)},
      {"completed / failed",
       std::to_string(r.summary.completed) + " / " + std::to_string(r.summary.failed)},
      {"simulated", num(r.end_s / 3600, "%.2f") + " h"},
      {"TTFT p50 / p90 / p99 (s)", num(r.summary.ttft.p50, "%.3f") + " / " +
                                       num(r.summary.ttft.p90, "%.3f") + " / " +
                                       num(r.summary.ttft.p99, "%.3f")},
      {"ITL p50 / p90 (ms)",
       num(r.summary.itl.p50 * 1e3, "%.1f") + " / " + num(r.summary.itl.p90 * 1e3, "%.1f")},
      {"E2E p50 / p90 (s)",
       num(r.summary.e2e.p50, "%.3f") + " / " + num(r.summary.e2e.p90, "%.3f")},
      {"cost", num(r.cost)},
      {"cost per million tokens", num(r.cost_per_million_tokens, "%.3f")},
      {"scale events", std::to_string(r.events.size())},
  };
  for (const auto& v : r.summary.slo)
    summary.push_back({"SLO " + v.text, v.met ? "met" : "missed"});
  doc.heading("The configured policy");
  doc.summary(summary);

  rp::Table pools;
  pools.header = {"node pool", "kind", "replica-hours", "node-hours", "peak nodes", "cost"};
  for (const auto& p : r.pools)
    pools.rows.push_back({p.name, p.elastic ? "elastic" : "fixed", num(p.replica_seconds / 3600),
                          num(p.node_hours), std::to_string(p.peak_nodes), num(p.cost)});
  doc.table(pools);
  if (r.services.size() > 1) {
    rp::Table services;
    services.header = {"service",      "requests",      "failed", "TTFT p50 (s)",
                       "TTFT p90 (s)", "peak replicas", "SLO"};
    for (const auto& s : r.services)
      services.rows.push_back(
          {s.name, std::to_string(s.summary.sent), std::to_string(s.summary.failed),
           num(s.summary.ttft.p50, "%.3f"), num(s.summary.ttft.p90, "%.3f"),
           std::to_string(s.peak_replicas),
           s.summary.slo.empty() ? "-" : (s.summary.sloMet() ? "met" : "missed")});
    doc.table(services);
  }
  const auto all_charts = charts(in);
  for (const auto& [name, svg] : all_charts)
    if (name != "sweep") doc.chart(svg);
  if (!in.compared.empty()) {
    doc.heading("Policies on the same trace and seed");
    std::vector<const Variant*> all{in.configured};
    all.insert(all.end(), in.compared.begin(), in.compared.end());
    doc.table(variantTable(all, -1));
  }
  if (!in.swept.empty()) {
    doc.heading("Sweep");
    doc.paragraph(in.best >= 0 ? "The cheapest configuration that meets every SLO: " +
                                     in.swept[static_cast<std::size_t>(in.best)]->name + "."
                               : "No configuration of the sweep meets every SLO.");
    for (const auto& [name, svg] : all_charts)
      if (name == "sweep") doc.chart(svg);
    doc.table(variantTable(in.swept, in.best));
  }
  return doc.html();
}

}  // namespace tidegate::sim
