#include "cli/demo_cmd.h"

#include <boost/json.hpp>
#include <cstdio>
#include <iostream>
#include <thread>

#include "bench/runner.h"
#include "bench/stats.h"
#include "bench/workload.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/prometheus.h"
#include "controller/controller.h"
#include "gateway/gateway.h"
#include "sim/simulation.h"
#include "sim/variants.h"

namespace tidegate::cli {

namespace {

namespace bj = boost::json;

// The demo's SLO: the point of scaling out is to keep it through the wave.
constexpr double kTtftP90SloS = 2.0;
const char* verdict(double p90) { return p90 < kTtftP90SloS ? "met" : "MISSED"; }

// The workload of the demo: the wave, and short chat turns.
bench::WorkloadConfig demoWorkload(const std::vector<bench::Segment>& wave) {
  bench::WorkloadConfig wc;
  wc.shape = bench::Shape::kProfile;
  wc.profile = wave;
  wc.model = "qwen";
  wc.prompt_tokens = {256, 64};
  wc.max_tokens = {64, 16};
  wc.seed = 7;
  return wc;
}

// TTFT p90 of the wave simulated on the configuration, or on its owned pools alone (`tidegate
// simulate`'s owned-only baseline); nullopt if it cannot run.
std::optional<double> simulatedTtftP90(const api::Config& config, const bench::WorkloadConfig& wc,
                                       bool owned_only) {
  auto c = owned_only ? sim::baseline(config, "owned-only", {}) : Result<api::Config>(config);
  if (!c) return std::nullopt;
  sim::Options o;
  o.workload = wc;
  return sim::run(*c, o).summary.ttft.p90;
}

// `tidegate demo --simulate`: whether the wave shows the point of the system on this
// configuration (the owned pool alone misses the SLO, scaled out it meets it), in a second,
// before the live run spends its minutes. Exit 0 if it does, 3 if not.
int simulateDemo(const std::string& path, const std::vector<bench::Segment>& wave) {
  auto config = api::loadConfig(path);
  if (!config) {
    std::cerr << "tidegate demo: " << config.error().message << "\n";
    return 2;
  }
  const auto wc = demoWorkload(wave);
  if (auto st = sim::validate(*config, sim::Options{.workload = wc}); !st) {
    std::cerr << "tidegate demo: " << st.message() << "\n";
    return 2;
  }
  const auto scaled = simulatedTtftP90(*config, wc, false);
  const auto alone = simulatedTtftP90(*config, wc, true);
  if (!scaled || !alone) {
    std::cerr << "tidegate demo: the configuration has no owned pool to compare with\n";
    return 2;
  }
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "simulated, SLO ttft_p90<2s:\n  scaled out: TTFT p90 %.2f s, %s\n  the owned "
                "pool alone: TTFT p90 %.2f s, %s\n",
                *scaled, verdict(*scaled), *alone, verdict(*alone));
  std::cout << buf;
  return *scaled < kTtftP90SloS && *alone >= kTtftP90SloS ? 0 : 3;
}

// One line of the timeline, read through the admin API like any operator would; raises
// `peak_nodes` (pool -> the most nodes it had at once) to what the pools hold now.
std::string timelineLine(double t, std::uint16_t admin, std::vector<double>& last_ttft_buckets,
                         std::map<std::string, std::int64_t>& peak_nodes) {
  auto st = http::fetch("127.0.0.1", admin, {.method = "GET", .target = "/admin/state"});
  auto me = http::fetch("127.0.0.1", admin, {.method = "GET", .target = "/metrics"});
  if (!st || !me) return "(admin API unavailable)";
  auto state = bj::parse(st->body).as_object();
  std::map<std::string, std::map<std::string, int>> by_pool;  // pool -> state -> n
  int desired = 0;
  for (const auto& svc : state.at("services").as_array()) {
    desired = static_cast<int>(svc.at("desired").as_int64());
    for (const auto& r : svc.at("replicas").as_array())
      ++by_pool[std::string(r.at("pool").as_string())][std::string(r.at("state").as_string())];
  }
  std::string pools;
  double cost = 0;
  for (const auto& p : state.at("node_pools").as_array()) {
    const std::string name(p.at("name").as_string());
    cost += p.at("cost").to_number<double>();
    peak_nodes[name] = std::max(peak_nodes[name], p.at("nodes").as_int64());
    int ready = by_pool[name]["Ready"], other = 0;
    for (const auto& [k, v] : by_pool[name])
      if (k != "Ready") other += v;
    char buf[96];
    std::snprintf(
        buf, sizeof buf, " %s %d ready%s", name.c_str(), ready,
        other ? (" +" + std::to_string(other) + " starting/pending/draining").c_str() : "");
    pools += buf;
  }
  const int waiting_pending = by_pool[""]["Pending"] + by_pool[""]["Provisioning"];
  auto scrape = prom::parse(me->body);
  double queue = 0, p50 = 0;
  if (scrape) {
    queue = scrape->sum("tidegate_endpoint_queue");
    // TTFT p50 over the last interval, from the histogram's bucket deltas.
    std::vector<std::pair<double, double>> buckets;
    for (const auto& s : scrape->samples)
      if (s.name == "tidegate_time_to_first_token_seconds_bucket") {
        const auto le = s.label("le");
        buckets.emplace_back(le == "+Inf" ? 1e9 : std::stod(std::string(le)), s.value);
      }
    std::sort(buckets.begin(), buckets.end());
    last_ttft_buckets.resize(buckets.size(), 0);
    const double total = buckets.empty() ? 0 : buckets.back().second - last_ttft_buckets.back();
    for (std::size_t i = 0; i < buckets.size(); ++i) {
      if (total > 0 && buckets[i].second - last_ttft_buckets[i] >= total / 2) {
        p50 = buckets[i].first;
        break;
      }
    }
    for (std::size_t i = 0; i < buckets.size(); ++i) last_ttft_buckets[i] = buckets[i].second;
  }
  char line[512];
  std::snprintf(
      line, sizeof line, "%5.0fs  desired %d |%s%s | queue %4.0f | TTFT p50 <= %s | cost $%.4f", t,
      desired, pools.c_str(),
      waiting_pending ? (" | " + std::to_string(waiting_pending) + " pending").c_str() : "", queue,
      p50 > 0 ? (p50 >= 1e9 ? "inf" : (std::to_string(static_cast<int>(p50 * 1000)) + "ms").c_str())
              : "-",
      cost);
  return line;
}

int runDemo(const std::string& config, const std::string& profile, bool simulate) {
  log::init("demo", "warn");
  auto segments = bench::parseProfile(profile);
  if (!segments) {
    std::cerr << "tidegate demo: " << segments.error().message << "\n";
    return 2;
  }
  if (simulate) return simulateDemo(config, *segments);
  gateway::Gateway gw({.config_path = config});
  if (auto st = gw.start(); !st) {
    std::cerr << "tidegate demo: " << st.message() << "\n";
    return 2;
  }
  controller::Controller ctl(gw);
  const auto started = std::chrono::steady_clock::now();  // when the pools' cost starts
  ctl.start();
  std::cout
      << "tidegate demo: gateway on http://127.0.0.1:" << gw.port()
      << ", admin on http://127.0.0.1:" << gw.adminPort()
      << "\n  live console: http://127.0.0.1:" << gw.adminPort() << "/ui\n  configuration "
      << config
      << ": an owned GPU pool, an elastic cloud pool, the seed's ResourcePolicy, qwen-chat 1..3\n"
      << "  wave " << profile << " (requests/s per segment)\n\n";
  // Wait for the first replica.
  for (int i = 0; i < 100; ++i) {
    auto r = http::fetch("127.0.0.1", gw.adminPort(), {.method = "GET", .target = "/readyz"});
    if (r && r->status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  double total_s = 0;
  for (const auto& s : *segments) total_s += s.duration_s;
  const auto wc = demoWorkload(*segments);
  bench::Workload workload(wc);
  bench::Recorder recorder;
  bench::RunnerConfig rc;
  rc.target = {"127.0.0.1", gw.port(), ""};
  rc.headers = {{"Content-Type", "application/json"}};
  bench::Runner runner(rc, workload, recorder);
  double wall = 0;
  std::thread load([&] { wall = runner.run(); });
  const auto start = std::chrono::steady_clock::now();
  std::vector<double> buckets;
  std::map<std::string, std::int64_t> peak_nodes;  // pool -> the most nodes it had at once
  const double tail_s = 45;                        // after the wave: watch the scale-in
  for (double t = 0;; t += 5) {
    std::this_thread::sleep_until(start + std::chrono::seconds(static_cast<long>(t)));
    std::cout << timelineLine(t, gw.adminPort(), buckets, peak_nodes) << std::endl;
    if (t >= total_s + tail_s) break;
  }
  load.join();
  auto summary = bench::summarize(recorder, wall, 0);
  auto state =
      http::fetch("127.0.0.1", gw.adminPort(), {.method = "GET", .target = "/admin/state"});
  std::cout << "\nsummary\n"
            << "  requests: " << summary.sent << " sent, " << summary.completed << " completed, "
            << summary.failed << " failed\n";
  char buf[256];
  std::snprintf(buf, sizeof buf, "  TTFT p50 %.0f ms, p90 %.0f ms, p99 %.0f ms; E2E p50 %.2f s\n",
                summary.ttft.p50 * 1e3, summary.ttft.p90 * 1e3, summary.ttft.p99 * 1e3,
                summary.e2e.p50);
  std::cout << buf;
  const auto config_now = gw.config();
  const double run_h =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() / 3600;
  double cost = 0, static_cost = 0;
  if (state) {
    const auto parsed = bj::parse(state->body);  // (a range-for over a temporary would dangle)
    for (const auto& p : parsed.at("node_pools").as_array()) {
      const std::string name(p.at("name").as_string());
      cost += p.at("cost").to_number<double>();
      std::snprintf(buf, sizeof buf, "  pool %-18s cost $%.4f, nodes now %lld, at most %lld\n",
                    name.c_str(), p.at("cost").to_number<double>(),
                    static_cast<long long>(p.at("nodes").as_int64()),
                    static_cast<long long>(peak_nodes[name]));
      std::cout << buf;
    }
  }
  // Static peak provisioning: the peak's nodes on the same pools, held for the whole run.
  for (const auto& pool : api::nodePoolSpecs(*config_now))
    static_cost += pool.price_per_node_hour * static_cast<double>(peak_nodes[pool.name]) * run_h;
  std::cout << "\nthe point of it (SLO ttft_p90<2s):\n";
  std::snprintf(buf, sizeof buf,
                "  scaled out into the cloud pool (this run): TTFT p90 %.2f s, %s\n",
                summary.ttft.p90, verdict(summary.ttft.p90));
  std::cout << buf;
  if (const auto alone = simulatedTtftP90(*config_now, wc, true)) {
    std::snprintf(buf, sizeof buf,
                  "  the owned replica alone (tidegate simulate, same wave and seed): TTFT p90 "
                  "%.2f s, %s\n",
                  *alone, verdict(*alone));
    std::cout << buf;
  }
  std::snprintf(buf, sizeof buf,
                "  cost $%.4f; static peak provisioning (the peak's nodes held for all %.0f s) "
                "$%.4f: %.0f%% saved\n",
                cost, run_h * 3600, static_cost,
                static_cost > 0 ? 100 * (1 - cost / static_cost) : 0.0);
  std::cout << buf;
  ctl.stop();
  gw.stop();
  return summary.failed == 0 ? 0 : 1;
}

}  // namespace

void addDemoCommand(CLI::App& app) {
  auto config = std::make_shared<std::string>("examples/quickstart.yaml");
  // The peak, sized with `tidegate simulate`: more than the owned replica can serve within
  // ttft_p90<2s (alone, its TTFT p90 is about 11 s), within what three replicas serve.
  auto profile = std::make_shared<std::string>("20s@2,60s@9,30s@2");
  auto* cmd = app.add_subcommand(
      "demo", "Serve examples/quickstart.yaml, drive a wave of load and show the scaling live");
  cmd->add_option("-c,--config", *config, "Configuration to serve")->capture_default_str();
  cmd->add_option("--profile", *profile, "The wave: DURATION@RATE,...")->capture_default_str();
  auto simulate = std::make_shared<bool>(false);
  cmd->add_flag("--simulate", *simulate,
                "Only simulate the wave, scaled out and on the owned pool alone (exit 0 if the "
                "first meets ttft_p90<2s and the second misses it, else 3)");
  cmd->callback([config, profile, simulate] {
    int rc = runDemo(*config, *profile, *simulate);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace tidegate::cli
