#include "bench/report.h"

#include <algorithm>

#include "common/report.h"

namespace tidegate::bench {

namespace rp = tidegate::report;

namespace {

std::string num(double v, const char* format = "%.2f") { return rp::formatNumber(v, format); }
std::string count(std::size_t n) { return std::to_string(n); }
std::string ms(double seconds) { return num(seconds * 1e3, "%.1f"); }

// The limit of the SLO check `<metric>_p90` (its reference line), or -1.
double p90Limit(const std::vector<SloCheck>& slo, const std::string& metric) {
  for (const auto& c : slo)
    if (c.metric == metric && c.stat == "p90") return c.limit;
  return -1;
}

void addLimit(rp::LineChart& c, double limit, const std::string& metric) {
  if (limit > 0) c.references.push_back({limit, "SLO " + metric + " p90 " + ms(limit) + " ms"});
}

rp::LineChart overTime(std::string title, std::string y_title, rp::Format y_format) {
  return rp::LineChart{.title = std::move(title),
                       .x = {.title = "time since the start", .format = rp::Format::kTime},
                       .y = {.title = std::move(y_title), .format = y_format}};
}

}  // namespace

std::vector<std::pair<std::string, std::string>> charts(const ReportInput& in) {
  const auto& records = *in.records;
  std::vector<std::pair<std::string, std::string>> out;

  std::vector<double> ttfts, e2es;
  for (const auto& r : records) {
    if (!r.ok()) continue;
    if (r.ttft >= 0) ttfts.push_back(r.ttft);
    if (r.e2e >= 0) e2es.push_back(r.e2e);
  }
  auto ttft = rp::cdfChart("TTFT distribution", "time to first token",
                           {rp::cdfSeries("TTFT", ttfts), rp::cdfSeries("end to end", e2es)});
  out.emplace_back("ttft", rp::renderLineChart(ttft));

  const std::vector<double> none;
  auto itl = rp::cdfChart("Inter-token latency distribution", "gap between tokens",
                          {rp::cdfSeries("ITL", in.itls ? *in.itls : none)});
  out.emplace_back("itl", rp::renderLineChart(itl));

  // Over time: a completion counts when its last byte arrived, a failure when it was scheduled
  // (a failed request may have no end), TTFT at the request's scheduled time.
  std::vector<rp::Point> done, failed, tokens, ttft_at;
  double end = 0;
  for (const auto& r : records) {
    end = std::max(end, r.scheduled);
    if (!r.ok()) {
      failed.push_back({r.scheduled, 1});
      continue;
    }
    const double at = r.scheduled + std::max(r.e2e, 0.0);
    end = std::max(end, at);
    done.push_back({at, 1});
    tokens.push_back({at, static_cast<double>(r.output_tokens)});
    if (r.ttft >= 0) ttft_at.push_back({r.scheduled, r.ttft});
  }
  const double bucket = rp::bucketWidth(end);
  const std::string per = rp::formatTime(bucket, bucket) + " buckets";
  auto throughput =
      overTime("Throughput and errors (" + per + ")", "requests/s", rp::Format::kNumber);
  throughput.series.push_back(rp::rateSeries("completed", done, bucket, end));
  throughput.series.push_back(rp::rateSeries("failed", failed, bucket, end));
  throughput.series.back().color = std::string(rp::kPalette[3]);
  out.emplace_back("throughput", rp::renderLineChart(throughput));

  auto tok = overTime("Output tokens (" + per + ")", "tokens/s", rp::Format::kNumber);
  tok.series.push_back(rp::rateSeries("output tokens", tokens, bucket, end));
  out.emplace_back("tokens", rp::renderLineChart(tok));

  auto ttft_time =
      overTime("TTFT over the run (" + per + " of scheduled time)", "TTFT", rp::Format::kLatency);
  ttft_time.series.push_back(rp::quantileSeries("p50", ttft_at, bucket, 0.5));
  ttft_time.series.push_back(rp::quantileSeries("p90", ttft_at, bucket, 0.9));
  addLimit(ttft_time, p90Limit(in.slo, "ttft"), "TTFT");
  out.emplace_back("ttft_over_time", rp::renderLineChart(ttft_time));
  return out;
}

std::string renderReport(const ReportInput& in) {
  const Summary& s = *in.summary;
  rp::Document doc(in.title);
  for (const auto& line : in.about) doc.paragraph(line);

  doc.heading("Summary");
  rp::Summary rows = {
      {"requests sent", count(s.sent)},
      {"completed / failed", count(s.completed) + " / " + count(s.failed)},
      {"duration", num(s.duration_s) + " s"},
      {"requests/s", num(s.requests_per_s, "%.1f")},
      {"output tokens/s", num(s.output_tokens_per_s, "%.1f")},
      {"input tokens/s", num(s.input_tokens_per_s, "%.1f")},
      {"prompt / output tokens",
       std::to_string(s.prompt_tokens) + " / " + std::to_string(s.output_tokens)},
  };
  for (const auto& [kind, n] : s.errors) rows.push_back({"errors: " + kind, count(n)});
  for (const auto& [model, n] : s.models) rows.push_back({"responses from " + model, count(n)});
  if (s.client_cpu_s > 0)
    rows.push_back({"client CPU per request", num(s.client_cpu_us_per_request, "%.1f") + " µs"});
  for (const auto& v : s.slo) rows.push_back({"SLO " + v.text, v.met ? "met" : "missed"});
  doc.summary(rows);

  rp::Table latency;
  latency.header = {"latency (ms)", "n", "mean", "p50", "p90", "p95", "p99", "max"};
  const std::pair<const char*, const Percentiles*> kinds[] = {
      {"TTFT", &s.ttft}, {"ITL", &s.itl}, {"E2E", &s.e2e}};
  for (const auto& [name, p] : kinds)
    latency.rows.push_back({name, count(p->n), ms(p->mean), ms(p->p50), ms(p->p90), ms(p->p95),
                            ms(p->p99), ms(p->max)});
  doc.table(latency);

  const auto all = charts(in);
  doc.heading("Distributions");
  for (const auto& [name, svg] : all)
    if (name == "ttft" || name == "itl") doc.chart(svg);
  doc.heading("Over the run");
  for (const auto& [name, svg] : all)
    if (name != "ttft" && name != "itl") doc.chart(svg);
  return doc.html();
}

}  // namespace tidegate::bench
