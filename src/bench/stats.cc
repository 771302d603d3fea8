#include "bench/stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include <boost/json.hpp>

namespace tidegate::bench {

double Percentiles::get(const std::string& stat) const {
  if (stat == "mean") return mean;
  if (stat == "p50") return p50;
  if (stat == "p90") return p90;
  if (stat == "p95") return p95;
  if (stat == "p99") return p99;
  if (stat == "max") return max;
  return min;
}

Percentiles percentiles(std::vector<double>& samples) {
  Percentiles p;
  p.n = samples.size();
  if (samples.empty()) return p;
  std::sort(samples.begin(), samples.end());
  p.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(p.n);
  p.min = samples.front();
  p.max = samples.back();
  p.p50 = quantile(samples, 0.50);
  p.p90 = quantile(samples, 0.90);
  p.p95 = quantile(samples, 0.95);
  p.p99 = quantile(samples, 0.99);
  return p;
}

void Recorder::add(Record r, const std::vector<double>& itls) {
  if (r.ok()) {
    ++completed_;
    itls_.insert(itls_.end(), itls.begin(), itls.end());
  }
  records_.push_back(std::move(r));
}

bool Summary::sloMet() const {
  return std::all_of(slo.begin(), slo.end(), [](const SloVerdict& v) { return v.met; });
}

Summary summarize(Recorder& rec, double duration_s, double client_cpu_s) {
  Summary s;
  s.sent = rec.records().size();
  s.completed = rec.completed();
  s.failed = rec.failed();
  s.duration_s = duration_s;
  std::vector<double> ttft, e2e;
  for (const auto& r : rec.records()) {
    if (!r.ok()) {
      ++s.errors[r.error];
      continue;
    }
    if (r.ttft >= 0) ttft.push_back(r.ttft);
    e2e.push_back(r.e2e);
    s.prompt_tokens += static_cast<std::uint64_t>(r.prompt_tokens);
    s.output_tokens += static_cast<std::uint64_t>(r.output_tokens);
    if (!r.model.empty()) ++s.models[r.model];
  }
  s.ttft = percentiles(ttft);
  s.e2e = percentiles(e2e);
  s.itl = percentiles(rec.itls());
  if (duration_s > 0) {
    s.requests_per_s = static_cast<double>(s.completed) / duration_s;
    s.output_tokens_per_s = static_cast<double>(s.output_tokens) / duration_s;
    s.input_tokens_per_s = static_cast<double>(s.prompt_tokens) / duration_s;
  }
  s.client_cpu_s = client_cpu_s;
  if (s.sent > 0) s.client_cpu_us_per_request = client_cpu_s * 1e6 / static_cast<double>(s.sent);
  return s;
}

void evaluateSlo(Summary& s, const std::vector<SloCheck>& checks) {
  for (const auto& c : checks) {
    double v;
    if (c.metric == "error_rate") {
      v = s.sent == 0 ? 0 : static_cast<double>(s.failed) / static_cast<double>(s.sent);
    } else {
      const Percentiles& p = c.metric == "ttft" ? s.ttft : c.metric == "itl" ? s.itl : s.e2e;
      // No samples cannot prove an SLO met.
      v = p.n == 0 ? HUGE_VAL : p.get(c.stat);
    }
    s.slo.push_back({c.text, v, c.inclusive ? v <= c.limit : v < c.limit});
  }
}

namespace {

std::string ms(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", seconds * 1e3);
  return buf;
}

boost::json::object pctJson(const Percentiles& p) {
  return {{"n", p.n},     {"mean", p.mean}, {"min", p.min}, {"p50", p.p50},
          {"p90", p.p90}, {"p95", p.p95},   {"p99", p.p99}, {"max", p.max}};
}

}  // namespace

std::string renderTable(const Summary& s) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line,
                "requests: %zu sent, %zu completed, %zu failed in %.2f s\n"
                "throughput: %.1f requests/s, %.1f output tokens/s, %.1f input tokens/s\n",
                s.sent, s.completed, s.failed, s.duration_s, s.requests_per_s,
                s.output_tokens_per_s, s.input_tokens_per_s);
  out += line;
  out += "\nlatency (ms)      mean      p50      p90      p95      p99      max\n";
  auto row = [&](const char* name, const Percentiles& p) {
    std::snprintf(line, sizeof line, "%-12s %9s %8s %8s %8s %8s %8s   (n=%zu)\n", name,
                  ms(p.mean).c_str(), ms(p.p50).c_str(), ms(p.p90).c_str(), ms(p.p95).c_str(),
                  ms(p.p99).c_str(), ms(p.max).c_str(), p.n);
    out += line;
  };
  row("TTFT", s.ttft);
  row("ITL", s.itl);
  row("E2E", s.e2e);
  std::snprintf(line, sizeof line, "\ntokens: %llu prompt, %llu output\n",
                static_cast<unsigned long long>(s.prompt_tokens),
                static_cast<unsigned long long>(s.output_tokens));
  out += line;
  if (!s.errors.empty()) {
    out += "errors:";
    for (const auto& [k, v] : s.errors) out += " " + k + "=" + std::to_string(v);
    out += '\n';
  }
  if (!s.models.empty()) {
    out += "responses by model:";
    for (const auto& [k, v] : s.models) out += " " + k + "=" + std::to_string(v);
    out += '\n';
  }
  if (s.client_cpu_s > 0) {  // not measured by a simulation
    std::snprintf(line, sizeof line, "client: %.2f CPU-s, %.1f us CPU per request\n",
                  s.client_cpu_s, s.client_cpu_us_per_request);
    out += line;
  }
  for (const auto& v : s.slo) {
    std::snprintf(line, sizeof line, "SLO %-24s %s (measured %s)\n", v.text.c_str(),
                  v.met ? "met" : "MISSED",
                  v.text.starts_with("error_rate") ? std::to_string(v.value).c_str()
                                                   : (ms(v.value) + " ms").c_str());
    out += line;
  }
  return out;
}

boost::json::object toJson(const Summary& s) {
  boost::json::object errors, models;
  for (const auto& [k, v] : s.errors) errors[k] = v;
  for (const auto& [k, v] : s.models) models[k] = v;
  boost::json::object o{
      {"requests", {{"sent", s.sent}, {"completed", s.completed}, {"failed", s.failed}}},
      {"duration_s", s.duration_s},
      {"throughput",
       {{"requests_per_s", s.requests_per_s},
        {"output_tokens_per_s", s.output_tokens_per_s},
        {"input_tokens_per_s", s.input_tokens_per_s}}},
      {"tokens", {{"prompt", s.prompt_tokens}, {"output", s.output_tokens}}},
      {"ttft_s", pctJson(s.ttft)},
      {"itl_s", pctJson(s.itl)},
      {"e2e_s", pctJson(s.e2e)},
      {"errors", std::move(errors)},
      {"models", std::move(models)},
      {"client", {{"cpu_s", s.client_cpu_s}, {"cpu_us_per_request", s.client_cpu_us_per_request}}}};
  if (!s.slo.empty()) {
    boost::json::array checks;
    for (const auto& v : s.slo)
      checks.push_back({{"check", v.text}, {"value", v.value}, {"met", v.met}});
    o["slo"] = {{"met", s.sloMet()}, {"checks", std::move(checks)}};
  }
  return o;
}

void writeCsv(std::ostream& out, const std::vector<Record>& records) {
  out << "index,scheduled_s,sent_s,ttft_s,e2e_s,itl_mean_s,prompt_tokens,output_tokens,status,"
         "error,model\n";
  char buf[256];
  for (const auto& r : records) {
    std::snprintf(buf, sizeof buf, "%llu,%.6f,%.6f,%.6f,%.6f,%.6f,%d,%d,%u,",
                  static_cast<unsigned long long>(r.index), r.scheduled, r.sent, r.ttft, r.e2e,
                  r.itl_mean, r.prompt_tokens, r.output_tokens, r.status);
    out << buf << r.error << ',';
    // Model names are identifiers; quote them anyway in case one holds a comma.
    out << '"';
    for (char c : r.model) out << (c == '"' ? "\"\"" : std::string(1, c));
    out << "\"\n";
  }
}

}  // namespace tidegate::bench
