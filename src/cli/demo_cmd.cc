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

namespace tidegate::cli {

namespace {

namespace bj = boost::json;

// One line of the timeline, read through the admin API like any operator would.
std::string timelineLine(double t, std::uint16_t admin, std::vector<double>& last_ttft_buckets) {
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

int runDemo(const std::string& config, const std::string& profile) {
  log::init("demo", "warn");
  gateway::Gateway gw({.config_path = config});
  if (auto st = gw.start(); !st) {
    std::cerr << "tidegate demo: " << st.message() << "\n";
    return 2;
  }
  controller::Controller ctl(gw);
  ctl.start();
  std::cout
      << "tidegate demo: gateway on http://127.0.0.1:" << gw.port()
      << ", admin on http://127.0.0.1:" << gw.adminPort() << "\n  configuration " << config
      << ": an owned GPU pool, an elastic cloud pool, the seed's ResourcePolicy, qwen-chat 1..3\n"
      << "  wave " << profile << " (requests/s per segment)\n\n";
  // Wait for the first replica.
  for (int i = 0; i < 100; ++i) {
    auto r = http::fetch("127.0.0.1", gw.adminPort(), {.method = "GET", .target = "/readyz"});
    if (r && r->status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto segments = bench::parseProfile(profile);
  if (!segments) {
    std::cerr << "tidegate demo: " << segments.error().message << "\n";
    return 2;
  }
  double total_s = 0;
  for (const auto& s : *segments) total_s += s.duration_s;
  bench::WorkloadConfig wc;
  wc.shape = bench::Shape::kProfile;
  wc.profile = *segments;
  wc.model = "qwen";
  wc.prompt_tokens = {256, 64};
  wc.max_tokens = {64, 16};
  wc.seed = 7;
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
  const double tail_s = 45;  // after the wave: watch the scale-in
  for (double t = 0;; t += 5) {
    std::this_thread::sleep_until(start + std::chrono::seconds(static_cast<long>(t)));
    std::cout << timelineLine(t, gw.adminPort(), buckets) << std::endl;
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
  std::snprintf(buf, sizeof buf, "  TTFT p50 %.0f ms, p99 %.0f ms; E2E p50 %.2f s\n",
                summary.ttft.p50 * 1e3, summary.ttft.p99 * 1e3, summary.e2e.p50);
  std::cout << buf;
  if (state) {
    const auto parsed = bj::parse(state->body);  // (a range-for over a temporary would dangle)
    for (const auto& p : parsed.at("node_pools").as_array()) {
      std::snprintf(buf, sizeof buf, "  pool %-18s cost so far $%.4f, nodes now %lld\n",
                    std::string(p.at("name").as_string()).c_str(), p.at("cost").to_number<double>(),
                    static_cast<long long>(p.at("nodes").as_int64()));
      std::cout << buf;
    }
  }
  std::cout << "  the owned pool served throughout; the cloud pool was rented only for the peak\n";
  ctl.stop();
  gw.stop();
  return summary.failed == 0 ? 0 : 1;
}

}  // namespace

void addDemoCommand(CLI::App& app) {
  auto config = std::make_shared<std::string>("examples/quickstart.yaml");
  // One replica serves about 9 requests/s of this mix; three about 27.
  auto profile = std::make_shared<std::string>("20s@2,50s@20,30s@2");
  auto* cmd = app.add_subcommand(
      "demo", "Serve examples/quickstart.yaml, drive a wave of load and show the scaling live");
  cmd->add_option("-c,--config", *config, "Configuration to serve")->capture_default_str();
  cmd->add_option("--profile", *profile, "The wave: DURATION@RATE,...")->capture_default_str();
  cmd->callback([config, profile] {
    int rc = runDemo(*config, *profile);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace tidegate::cli
