#include "sim/output.h"

#include <cstdio>

namespace tidegate::sim {

namespace bj = boost::json;

namespace {

std::string fmt(const char* format, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof buf, format, args...);
  return buf;
}

double hours(double seconds) { return seconds / 3600; }

}  // namespace

bool sloMet(const RunResult& r) {
  if (!r.summary.sloMet()) return false;
  for (const auto& s : r.services)
    if (s.summary.completed + s.summary.failed > 0 && !s.summary.sloMet()) return false;
  return true;
}

int cheapestMeetingSlo(const std::vector<Variant>& variants) {
  int best = -1;
  for (std::size_t i = 0; i < variants.size(); ++i)
    if (variants[i].slo_met &&
        (best < 0 ||
         variants[i].result.cost < variants[static_cast<std::size_t>(best)].result.cost))
      best = static_cast<int>(i);
  return best;
}

std::string renderSummary(const RunResult& r) {
  std::string out = bench::renderTable(r.summary);
  out += fmt("\nsimulated %.0f s (%.2f h), %llu engine steps\n", r.end_s, hours(r.end_s),
             static_cast<unsigned long long>(r.steps));
  out += "\nnode pool            kind      replica-h   node-h  peak nodes       cost\n";
  for (const auto& p : r.pools)
    out += fmt("%-20s %-8s %10.2f %8.2f %11d %10.2f\n", p.name.c_str(),
               p.elastic ? "elastic" : "fixed", hours(p.replica_seconds), p.node_hours,
               p.peak_nodes, p.cost);
  out += fmt("total cost %.2f, %.3f per million tokens; %zu scale events\n", r.cost,
             r.cost_per_million_tokens, r.events.size());
  if (r.services.size() > 1) {
    out += "\nservice              requests  failed  TTFT p50  TTFT p90   E2E p50  peak  SLO\n";
    for (const auto& s : r.services)
      out += fmt("%-20s %8zu %7zu %8.3fs %8.3fs %8.3fs %5d  %s\n", s.name.c_str(),
                 s.summary.completed + s.summary.failed, s.summary.failed, s.summary.ttft.p50,
                 s.summary.ttft.p90, s.summary.e2e.p50, s.peak_replicas,
                 s.summary.slo.empty() ? "-" : (s.summary.sloMet() ? "met" : "MISSED"));
  }
  return out;
}

std::string renderVariants(const std::vector<Variant>& variants, int best) {
  std::string out =
      "\npolicy                              cost  per Mtok  TTFT p50  TTFT p90   E2E p50  failed"
      "  scale  replica-h  SLO\n";
  for (std::size_t i = 0; i < variants.size(); ++i) {
    const auto& v = variants[i];
    const auto& r = v.result;
    double replica_s = 0;
    for (const auto& p : r.pools) replica_s += p.replica_seconds;
    out += fmt("%-30s %10.2f %9.3f %8.3fs %8.3fs %8.3fs %7zu %6zu %10.2f  %s%s\n",
               v.name.substr(0, 30).c_str(), r.cost, r.cost_per_million_tokens, r.summary.ttft.p50,
               r.summary.ttft.p90, r.summary.e2e.p50, r.summary.failed, r.events.size(),
               hours(replica_s), r.summary.slo.empty() ? "-" : (v.slo_met ? "met" : "MISSED"),
               static_cast<int>(i) == best ? "  <- cheapest meeting every SLO" : "");
  }
  return out;
}

bj::object toJson(const RunResult& r) {
  bj::object o;
  o["summary"] = bench::toJson(r.summary);
  o["summary"].as_object().erase("client");
  o["simulated_s"] = r.end_s;
  o["engine_steps"] = r.steps;
  bj::array pools;
  for (const auto& p : r.pools)
    pools.push_back({{"name", p.name},
                     {"elastic", p.elastic},
                     {"replica_seconds", p.replica_seconds},
                     {"node_hours", p.node_hours},
                     {"peak_nodes", p.peak_nodes},
                     {"cost", p.cost}});
  o["pools"] = std::move(pools);
  o["cost"] = r.cost;
  o["cost_per_million_tokens"] = r.cost_per_million_tokens;
  o["slo_met"] = sloMet(r);
  bj::array services;
  for (const auto& s : r.services) {
    bj::object rs;
    for (const auto& [pool, secs] : s.replica_seconds) rs[pool] = secs;
    auto summary = bench::toJson(s.summary);
    summary.erase("client");
    services.push_back({{"name", s.name},
                        {"summary", std::move(summary)},
                        {"replica_seconds", std::move(rs)},
                        {"peak_replicas", s.peak_replicas},
                        {"scale_events", s.scale_events}});
  }
  o["services"] = std::move(services);
  bj::array events;
  for (const auto& e : r.events)
    events.push_back(
        {{"t", e.t}, {"service", e.service}, {"from", e.from}, {"to", e.to}, {"reason", e.reason}});
  o["scale_events"] = std::move(events);
  return o;
}

bj::object toJson(const Variant& v) {
  bj::object o = toJson(v.result);
  o["name"] = v.name;
  if (!v.params.empty()) {
    bj::object params;
    for (const auto& [k, x] : v.params) params[k] = x;
    o["params"] = std::move(params);
  }
  return o;
}

}  // namespace tidegate::sim
