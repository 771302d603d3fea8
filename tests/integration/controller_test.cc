// Integration test of the controller in `tidegate serve`: real replicas (child `tidegate engine`
// processes) scaled over an owned pool and a simulated elastic pool under real load.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>

#include "common/net.h"
#include "support/configs.h"
#include "support/process.h"

namespace tidegate::testing {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;

const std::string kHybrid = hybridConfig();

struct ReplicaView {
  std::vector<std::string> pools, states;
  std::map<std::string, int> ready_by_pool;
};

ReplicaView replicas(const Serve& s) {
  auto st = bj::parse(s.admin("/admin/state").body).as_object();
  ReplicaView v;
  for (const auto& r : st.at("services").as_array()[0].at("replicas").as_array()) {
    const std::string pool(r.at("pool").as_string()), state(r.at("state").as_string());
    v.pools.push_back(pool);
    v.states.push_back(state);
    if (state == "Ready") ++v.ready_by_pool[pool];
  }
  return v;
}

TEST(Controller, ScalesOutToTheElasticPoolAndBackWithoutFailedRequests) {
  Serve gw(kHybrid);
  ASSERT_TRUE(eventually([&] { return replicas(gw).ready_by_pool["edge"] == 1; }, 20s));
  // The peak: sustained queueing. The owned GPU is full: replicas go to the cloud pool.
  const std::string json = "/tmp/tidegate-ctl-" + std::to_string(::getpid()) + ".json";
  ChildProcess load({binaryPath(), "bench", "--url", "http://127.0.0.1:" + std::to_string(gw.port),
                     "--model", "qwen", "-c", "24", "-z", "6s", "--max-tokens", "30", "--progress",
                     "off", "-q", "--json", json},
                    true);
  ASSERT_TRUE(eventually(
      [&] {
        auto v = replicas(gw);
        return v.ready_by_pool["edge"] == 1 && v.ready_by_pool["cloud"] == 2;
      },
      30s))
      << gw.admin("/admin/state").body;
  auto pools = bj::parse(gw.admin("/admin/state").body).at("node_pools").as_array();
  EXPECT_EQ(pools[1].at("nodes"), 2);
  ASSERT_GE(load.wait(60s), 0);
  // After the peak: cloud replicas drain and go first; the owned one stays; idle nodes go.
  ASSERT_TRUE(eventually(
      [&] {
        auto v = replicas(gw);
        return v.pools.size() == 1 && v.ready_by_pool["edge"] == 1;
      },
      30s))
      << gw.admin("/admin/state").body;
  ASSERT_TRUE(eventually(
      [&] {
        return bj::parse(gw.admin("/admin/state").body)
                   .at("node_pools")
                   .as_array()[1]
                   .at("nodes") == 0;
      },
      20s));
  std::ifstream in(json);
  std::stringstream ss;
  ss << in.rdbuf();
  std::remove(json.c_str());
  auto s = bj::parse(ss.str()).as_object();
  EXPECT_GT(s.at("requests").at("completed").as_int64(), 50);
  EXPECT_EQ(s.at("requests").at("failed"), 0) << ss.str();
  // Metrics: scaling events both ways, cost accrued on both pools.
  EXPECT_GE(gw.metric("tidegate_scaling_events_total", {{"direction", "up"}}), 1);
  EXPECT_GE(gw.metric("tidegate_scaling_events_total", {{"direction", "down"}}), 1);
  EXPECT_GT(gw.metric("tidegate_pool_cost_total", {{"pool", "cloud"}}), 0);
}

TEST(Controller, RequestsPayTheirShareOfTheirPoolsNodes) {
  const std::string db = "/tmp/tidegate-ctl-ledger-" + std::to_string(::getpid()) + ".db";
  std::string yaml = kHybrid;
  const std::string from = "controller: {interval: 200ms}}";
  yaml.replace(yaml.find(from), from.size(),
               "controller: {interval: 200ms}, ledger: {path: \"" + db + "\"}}");
  {
    Serve gw(yaml);
    ASSERT_TRUE(eventually([&] { return replicas(gw).ready_by_pool["edge"] == 1; }, 20s));
    ASSERT_TRUE(eventually([&] { return gw.metric("tidegate_endpoint_up") == 1; }));
    const std::string body =
        R"({"model":"qwen","messages":[{"role":"user","content":"hi"}],"max_tokens":8})";
    for (int i = 0; i < 5; ++i) ASSERT_EQ(gw.post("/v1/chat/completions", body).status, 200u);
    // The controller tells the gateway what the edge node costs; the ledger prices each request
    // by its share of the pool's tokens (no per-model price is configured).
    ASSERT_TRUE(eventually([&] {
      auto u = bj::parse(gw.admin("/admin/usage?group_by=pool").body).as_object();
      const auto& data = u.at("data").as_array();
      return data.size() == 1 && data[0].at("group") == "qwen-pool" &&
             data[0].at("requests").as_int64() == 5 && data[0].at("cost").as_double() > 0;
    }));
    auto u = bj::parse(gw.admin("/admin/usage?group_by=pool").body).as_object();
    const double cost = u.at("total").at("cost").as_double();
    // At most the edge node's $0.9/hour for the minute the requests could have been charged.
    EXPECT_LT(cost, 0.9 / 60);
    EXPECT_GT(u.at("total").at("cost_per_million_tokens").as_double(), 0);
  }
  std::remove(db.c_str());
}

TEST(Controller, StoppingServeLeavesNoReplicaBehind) {
  auto gw = std::make_unique<Serve>(kHybrid);
  ASSERT_TRUE(eventually([&] { return replicas(*gw).ready_by_pool["edge"] == 1; }, 20s));
  const auto addr = bj::parse(gw->admin("/admin/state").body)
                        .at("services")
                        .as_array()[0]
                        .at("replicas")
                        .as_array()[0]
                        .at("address");
  const std::string address(addr.as_string());
  const auto port = static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
  ASSERT_TRUE(http::fetch("127.0.0.1", port, {.method = "GET", .target = "/health"}).ok());
  const int status = gw->proc->stop(SIGTERM, 20s);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // The replica is gone with it.
  EXPECT_FALSE(
      http::fetch("127.0.0.1", port, {.method = "GET", .target = "/health", .timeout_s = 1}).ok());
}

}  // namespace
}  // namespace tidegate::testing

namespace tidegate::testing {
namespace {

TEST(Controller, ACrashedReplicaIsReplaced) {
  Serve gw(kHybrid);
  ASSERT_TRUE(eventually([&] { return replicas(gw).ready_by_pool["edge"] == 1; }, 20s));
  auto st = bj::parse(gw.admin("/admin/state").body);
  const std::string first(
      st.at("services").as_array()[0].at("replicas").as_array()[0].at("id").as_string());
  const std::string address(
      st.at("services").as_array()[0].at("replicas").as_array()[0].at("address").as_string());
  // Kill the replica's process behind the controller's back (find it by its port).
  const std::string port = address.substr(address.rfind(':') + 1);
  auto pids = runCommand({"/usr/bin/pgrep", "-f", "engine --port " + port});
  ASSERT_EQ(pids.exit_code, 0) << pids.output;
  ::kill(std::stoi(pids.output), SIGKILL);
  // A new replica (another id) becomes Ready on the owned pool.
  ASSERT_TRUE(eventually(
      [&] {
        auto s = bj::parse(gw.admin("/admin/state").body);
        const auto& reps = s.at("services").as_array()[0].at("replicas").as_array();
        return reps.size() == 1 && reps[0].at("state") == "Ready" &&
               reps[0].at("id") != first.c_str();
      },
      20s))
      << gw.admin("/admin/state").body;
}

}  // namespace
}  // namespace tidegate::testing

namespace tidegate::testing {
namespace {

TEST(Controller, ScalesOnTheGatewaysOwnInflightCount) {
  std::string yaml = kHybrid;
  const std::string from = R"(metrics: [{metric: "vllm:num_requests_waiting", target: 2}])";
  yaml.replace(yaml.find(from), from.size(),
               R"(metrics: [{metric: "tidegate:inflight", target: 4}])");
  Serve gw(yaml);
  ASSERT_TRUE(eventually([&] { return replicas(gw).ready_by_pool["edge"] == 1; }, 20s));
  ChildProcess load(
      {binaryPath(), "bench", "--url", "http://127.0.0.1:" + std::to_string(gw.port), "--model",
       "qwen", "-c", "16", "-z", "4s", "--max-tokens", "30", "--progress", "off", "-q"},
      true);
  // 16 in flight over a target of 4 per replica: the controller asks for more (max 3).
  EXPECT_TRUE(eventually(
      [&] {
        return gw.metric("tidegate_scaling_events_total",
                         {{"direction", "up"}, {"reason", "maxReplicas"}}) >= 1 ||
               gw.metric("tidegate_scaling_events_total",
                         {{"direction", "up"}, {"reason", "tidegate:inflight"}}) >= 1;
      },
      20s));
  load.wait(30s);
}

}  // namespace
}  // namespace tidegate::testing

namespace tidegate::testing {
namespace {

TEST(Controller, ScalesOnAPromQlQueryToARealPrometheus) {
  const int prom_port = freePort();
  std::string yaml = kHybrid;
  const std::string from = R"(metrics: [{metric: "vllm:num_requests_waiting", target: 2}])";
  yaml.replace(yaml.find(from), from.size(),
               "metrics: [{prometheus: {url: \"http://127.0.0.1:" + std::to_string(prom_port) +
                   "\", query: \"sum(tidegate_endpoint_inflight)\"}, target: 4}]");
  Serve gw(yaml);
  ASSERT_TRUE(eventually([&] { return replicas(gw).ready_by_pool["edge"] == 1; }, 20s));
  // A real Prometheus scraping the gateway's admin endpoint every second.
  const std::string dir = "/tmp/tidegate-prom-" + std::to_string(::getpid());
  runCommand({"/bin/mkdir", "-p", dir + "/data"});
  std::ofstream(dir + "/prometheus.yml")
      << "global: {scrape_interval: 1s, evaluation_interval: 1s}\nscrape_configs:\n"
      << "- job_name: tidegate\n  static_configs: [{targets: ['127.0.0.1:" << gw.admin_port
      << "']}]\n";
  ChildProcess prom({"/usr/bin/prometheus", "--config.file=" + dir + "/prometheus.yml",
                     "--storage.tsdb.path=" + dir + "/data",
                     "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
                    true);
  ASSERT_TRUE(eventually(
      [&] {
        auto r = http::fetch("127.0.0.1", static_cast<std::uint16_t>(prom_port),
                             {.method = "GET", .target = "/-/ready", .timeout_s = 1});
        return r.ok() && r->status == 200;
      },
      30s));
  ChildProcess load(
      {binaryPath(), "bench", "--url", "http://127.0.0.1:" + std::to_string(gw.port), "--model",
       "qwen", "-c", "16", "-z", "8s", "--max-tokens", "40", "--progress", "off", "-q"},
      true);
  // ~16 in flight / 4 per replica: the controller asks for more replicas, as KEDA would.
  EXPECT_TRUE(eventually(
      [&] {
        return gw.metric("tidegate_scaling_events_total", {{"direction", "up"}}) >= 1;
      },
      30s))
      << gw.admin("/admin/state").body;
  load.wait(30s);
  prom.stop(SIGTERM);
  runCommand({"/bin/rm", "-rf", dir});
}

}  // namespace
}  // namespace tidegate::testing

namespace tidegate::testing {
namespace {

// Seed 002's shape: two models on one owned GPU pool, an elastic pool for overflow. The 1B
// service comes first in the file, but the 8B one has the higher priority.
const char* kTwoServices = R"(apiVersion: tidegate.io/v1alpha1
kind: Gateway
metadata: {name: gw}
spec: {listen: "127.0.0.1:0", admin: "127.0.0.1:0", controller: {interval: 200ms}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {name: small-pool}
spec: {targetPortNumber: 8000, selector: {app: llama-1b}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {name: large-pool}
spec: {targetPortNumber: 8000, selector: {app: llama-8b}}
---
apiVersion: tidegate.io/v1alpha1
kind: NodePool
metadata: {name: edge, labels: {pool: edge}}
spec: {kind: fixed, nodes: 1, gpusPerNode: 1, pricePerNodeHour: 0.9}
---
apiVersion: tidegate.io/v1alpha1
kind: NodePool
metadata: {name: cloud, labels: {pool: cloud}}
spec: {kind: elastic, maxNodes: 2, gpusPerNode: 1, provisioningDelay: 1s, pricePerNodeHour: 3.06}
---
apiVersion: tidegate.io/v1alpha1
kind: InferenceService
metadata: {name: llama-1b, labels: {app: llama-1b}}
spec:
  servedModelName: llama-3.2-1b
  command: [tidegate, engine, --port, "{port}", --served-model-name, "{model}", --log-level, warn]
  minReplicas: 1
  metrics: [{metric: "vllm:num_requests_waiting", target: 2}]
---
apiVersion: tidegate.io/v1alpha1
kind: InferenceService
metadata: {name: llama-8b, labels: {app: llama-8b}}
spec:
  servedModelName: llama-3.1-8b
  command: [tidegate, engine, --port, "{port}", --served-model-name, "{model}", --log-level, warn]
  minReplicas: 1
  priority: 100
  metrics: [{metric: "vllm:num_requests_waiting", target: 2}]
)";

// The pools of `service`'s Ready replicas.
std::vector<std::string> readyPools(const bj::value& state, const std::string& service) {
  std::vector<std::string> out;
  for (const auto& s : state.at("services").as_array())
    if (s.at("name") == service.c_str())
      for (const auto& r : s.at("replicas").as_array())
        if (r.at("state") == "Ready") out.emplace_back(r.at("pool").as_string());
  return out;
}

TEST(Controller, TwoServicesShareTheOwnedGpuByPriority) {
  Serve gw(kTwoServices);
  ASSERT_TRUE(eventually(
      [&] {
        auto st = bj::parse(gw.admin("/admin/state").body);
        return readyPools(st, "llama-8b") == std::vector<std::string>{"edge"} &&
               readyPools(st, "llama-1b") == std::vector<std::string>{"cloud"};
      },
      30s))
      << gw.admin("/admin/state").body;
  // One model of the pools for both: the owned GPU is used once, the cloud pool has one node.
  auto pools = bj::parse(gw.admin("/admin/state").body).at("node_pools").as_array();
  ASSERT_EQ(pools.size(), 2u);
  EXPECT_EQ(pools[0].at("gpus_used"), 1);
  EXPECT_EQ(pools[0].at("gpus_free"), 0);
  EXPECT_EQ(pools[1].at("nodes"), 1);
  EXPECT_EQ(pools[1].at("gpus_used"), 1);
  // Both serve.
  const std::string body =
      R"({"model":"llama-3.2-1b","messages":[{"role":"user","content":"hi"}],"max_tokens":4})";
  EXPECT_TRUE(eventually([&] { return gw.post("/v1/chat/completions", body).status == 200u; }));
}

}  // namespace
}  // namespace tidegate::testing
