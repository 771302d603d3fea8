#include "api/loader.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/crypto.h"

namespace tidegate::api {
namespace {

TEST(Loader, SeedLoraExampleLoadsAsWritten) {
  auto c = loadConfig(std::string(TIDEGATE_SOURCE_DIR) + "/examples/lora-traffic-split.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FALSE(c->has_gateway);
  EXPECT_EQ(c->gateway.listen.str(), "127.0.0.1:8080");
  ASSERT_EQ(c->pools.size(), 1u);
  EXPECT_EQ(c->pools[0].selector.at("app"), "vllm-llama2-7b-pool");
  EXPECT_EQ(c->pools[0].target_ports, std::vector<std::uint16_t>{8000});
  ASSERT_EQ(c->models.size(), 1u);
  EXPECT_EQ(c->models[0].model_name, "lora-request");
  EXPECT_EQ(c->models[0].targets.size(), 10u);
  EXPECT_EQ(c->models[0].criticality, Criticality::kStandard);
  ASSERT_EQ(c->routes.size(), 1u);
  EXPECT_EQ(c->routes[0].kind, "LLMRoute");
  EXPECT_EQ(c->routes[0].hostnames, std::vector<std::string>{"test.com"});
  ASSERT_EQ(c->routes[0].rules.size(), 1u);
  EXPECT_TRUE(c->routes[0].rules[0].matches.empty());  // every request for the host
  ASSERT_EQ(c->routes[0].rules[0].backends.size(), 1u);
  EXPECT_EQ(c->routes[0].rules[0].backends[0].pool, "vllm-llama2-7b-pool");
  ASSERT_EQ(c->endpoints.size(), 1u);
  EXPECT_TRUE(selectorMatches(c->pools[0].selector, c->endpoints[0].meta.labels));
  EXPECT_EQ(c->endpoints[0].addresses[1].port, 8002);
}

TEST(Loader, AOneStringCommandIsSplitIntoWordsAsAShellWould) {
  auto service = [](const std::string& command) {
    return parseConfig(R"(
apiVersion: tidegate.io/v1alpha1
kind: InferenceService
metadata: {name: s}
spec:
  command: )" + command + "\n",
                       "cmd.yaml");
  };
  auto c = service(R"('tidegate engine --port {port}  --model "/mnt/my models/q" --x a\ b')");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->services[0].command,
            (std::vector<std::string>{"tidegate", "engine", "--port", "{port}", "--model",
                                      "/mnt/my models/q", "--x", "a b"}));
  for (const char* bad : {"'vllm serve \"model'", "'  '"}) {
    auto e = service(bad);
    ASSERT_FALSE(e.ok()) << bad;
    EXPECT_NE(e.error().message.find("line 6"), std::string::npos) << e.error().message;
    EXPECT_NE(e.error().message.find("spec.command"), std::string::npos) << e.error().message;
  }
}

TEST(Loader, ReadsV1PoolsAndTheGatewayKind) {
  auto c = parseConfig(R"(
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: p}
spec:
  targetPorts: [{number: 9000}]
  selector: {matchLabels: {app: x}}
  endpointPickerRef: {name: epp, port: {number: 9002}, failureMode: FailClose}
---
apiVersion: tidegate.io/v1alpha1
kind: Gateway
metadata: {name: gw}
spec:
  listen: 0.0.0.0:9090
  workers: 4
  timeouts: {connect: 500ms, idle: 1m}
  scrape: {interval: 100ms}
  picker: {weights: {queue: 3, prefix: 0}}
)",
                       "mem.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->pools[0].target_ports, std::vector<std::uint16_t>{9000});
  EXPECT_EQ(c->pools[0].selector.at("app"), "x");
  EXPECT_TRUE(c->has_gateway);
  EXPECT_EQ(c->gateway.listen.str(), "0.0.0.0:9090");
  EXPECT_EQ(c->gateway.workers, 4);
  EXPECT_DOUBLE_EQ(c->gateway.connect_timeout_s, 0.5);
  EXPECT_DOUBLE_EQ(c->gateway.idle_timeout_s, 60);
  EXPECT_DOUBLE_EQ(c->gateway.scrape_interval_s, 0.1);
  EXPECT_EQ(c->gateway.weights.queue, 3);
  EXPECT_EQ(c->gateway.weights.prefix, 0);
  EXPECT_EQ(c->gateway.weights.lora, PickerWeights{}.lora);  // untouched: default
}

TEST(Loader, ErrorsNameFileDocumentLineAndField) {
  const std::string pool =
      "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n"
      "metadata: {name: p}\nspec:\n  targetPortNumber: 8000\n  selector: {app: x}\n";
  struct Case {
    std::string yaml;
    std::string error;
  } cases[] = {
      {"kind: Widget\napiVersion: x/v1\nmetadata: {name: w}\n",
       "f.yaml: document 1 (Widget w), line 1: unknown kind Widget of apiVersion x/v1"},
      {pool + "  colour: red\n",
       "f.yaml: document 1 (InferencePool p), line 7: spec.colour: unknown field"},
      {"apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n"
       "metadata: {name: p}\nspec:\n  targetPortNumber: eighty\n  selector: {app: x}\n",
       "document 1 (InferencePool p), line 5: spec.targetPortNumber: expected an integer, got "
       "\"eighty\""},
      {"apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n"
       "metadata: {name: p}\nspec:\n  selector: {app: x}\n",
       "spec.targetPortNumber: required field is missing"},
      {pool + "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\n"
              "metadata: {name: m}\nspec:\n  modelName: a\n  poolRef: {name: p}\n"
              "  targetModels:\n  - name: x\n    weight: ten\n",
       "f.yaml: document 2 (InferenceModel m), line 16: spec.targetModels[0].weight: expected an "
       "integer, got \"ten\""},
      {pool + "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\n"
              "metadata: {name: m}\nspec:\n  modelName: a\n  criticality: Urgent\n"
              "  poolRef: {name: p}\n",
       "spec.criticality: expected Critical, Standard or Sheddable, got \"Urgent\""},
      {pool + "---\napiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\n"
              "metadata: {name: m}\nspec:\n  modelName: a\n  poolRef: {name: nope}\n",
       "document 2 (InferenceModel m), line 8: spec.poolRef.name: no InferencePool named \"nope\""},
      {"apiVersion: tidegate.io/v1alpha1\nkind: Endpoints\nmetadata: {name: e}\n"
       "spec:\n  addresses: [\"127.0.0.1\"]\n",
       "spec.addresses[0]: expected HOST:PORT, got \"127.0.0.1\""},
      {"apiVersion: tidegate.io/v1alpha1\nkind: Gateway\nmetadata: {name: g}\n"
       "spec:\n  timeouts: {connect: soon}\n",
       "spec.timeouts.connect: bad duration 'soon'"},
      {"apiVersion: tidegate.io/v1alpha1\nkind: Gateway\nmetadata: {name: g}\nspec: {}\n---\n"
       "apiVersion: tidegate.io/v1alpha1\nkind: Gateway\nmetadata: {name: h}\nspec: {}\n",
       "document 2 (Gateway h), line 6: only one Gateway"},
      {"a: [1, 2\n", "f.yaml: line 2: YAML syntax error"},
      {"apiVersion: tidegate.io/v1alpha1\nkind: Gateway\nspec: {}\n",
       "metadata: required field is missing"},
  };
  for (const auto& c : cases) {
    auto r = parseConfig(c.yaml, "f.yaml");
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_NE(r.error().message.find(c.error), std::string::npos)
        << "want: " << c.error << "\ngot:  " << r.error().message;
  }
}

TEST(Loader, AFileWithoutResourcesIsAnError) {
  // An empty file, or one of comments and separators, would remove every route and key.
  for (const std::string text : {"", "\n\n", "# nothing yet\n", "---\n---\n# end\n"}) {
    auto c = parseConfig(text, "empty.yaml");
    ASSERT_FALSE(c.ok()) << "'" << text << "'";
    EXPECT_EQ(c.error().message, "empty.yaml: no resources (the file is empty)");
  }
}

// Paths that are not a readable configuration file: an error naming the file and why (serve,
// check and reloads all load through here).
TEST(Loader, PathsThatAreNotFilesAreErrorsNamingThePath) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("tidegate-loader-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto empty = (dir / "empty.yaml").string();
  std::ofstream(empty).close();
  const auto dangling = (dir / "dangling.yaml").string();
  std::filesystem::create_symlink(dir / "missing.yaml", dangling);
  const auto fifo = (dir / "fifo.yaml").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);  // reading it would block: refused unread
  struct Case {
    std::string path, error;
  } cases[] = {
      {"/nonexistent.yaml",
       "/nonexistent.yaml: cannot read the configuration: No such file or directory"},
      {dir.string(), dir.string() + ": cannot read the configuration: it is a directory"},
      {empty, empty + ": no resources (the file is empty)"},
      {dangling, dangling + ": cannot read the configuration: No such file or directory"},
      {fifo, fifo + ": cannot read the configuration: not a regular file"},
      {empty + "/x.yaml", empty + "/x.yaml: cannot read the configuration: Not a directory"},
  };
  for (const auto& c : cases) {
    auto r = loadConfig(c.path);
    ASSERT_FALSE(r.ok()) << c.path;
    EXPECT_TRUE(r.error().message.starts_with(c.error))
        << "want: " << c.error << "\ngot:  " << r.error().message;
  }
  std::filesystem::remove_all(dir);
}

TEST(Loader, TheAuthModeIsExplicitOrImpliedByKeysAndPlans) {
  const std::string gateway =
      "apiVersion: tidegate.io/v1alpha1\nkind: Gateway\nmetadata: {name: g}\nspec:\n";
  const std::string plan =
      "---\napiVersion: tidegate.io/v1alpha1\nkind: UsagePlan\nmetadata: {name: free}\nspec: {}\n";
  using M = GatewayConfig::AuthMode;
  struct Case {
    std::string yaml;
    M mode;
    bool explicit_mode, allow_removal;
  } cases[] = {
      {gateway + "  workers: 1\n", M::kDisabled, false, false},
      {gateway + "  workers: 1\n" + plan, M::kRequired, false, false},
      {gateway + "  auth: {apiKeys: required}\n", M::kRequired, true, false},
      {gateway + "  auth: {apiKeys: disabled, allowKeyRemoval: true}\n" + plan, M::kDisabled, true,
       true},
  };
  for (const auto& c : cases) {
    auto r = parseConfig(c.yaml, "f.yaml");
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->gateway.auth_mode, c.mode) << c.yaml;
    EXPECT_EQ(r->gateway.auth_mode_explicit, c.explicit_mode) << c.yaml;
    EXPECT_EQ(r->gateway.allow_key_removal, c.allow_removal) << c.yaml;
    EXPECT_EQ(r->digest, crypto::sha256Hex(c.yaml));
  }
  auto bad = parseConfig(gateway + "  auth:\n    apiKeys: optional\n", "f.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message,
            "f.yaml: document 1 (Gateway g), line 6: spec.auth.apiKeys: expected required or "
            "disabled, got \"optional\"");
  auto flag = parseConfig(gateway + "  auth: {allowKeyRemoval: maybe}\n", "f.yaml");
  ASSERT_FALSE(flag.ok());
  EXPECT_NE(flag.error().message.find("spec.auth.allowKeyRemoval: expected true or false"),
            std::string::npos)
      << flag.error().message;
}

// Found by fuzz/config_fuzz.cc: yaml-cpp 0.7 loops forever, allocating, on these (a `,` where a
// node should start); they are syntax errors naming the line, and return at once.
TEST(Loader, StreamsYamlCppWouldLoopOnAreSyntaxErrors) {
  struct Case {
    const char* yaml;
    const char* error;
  } cases[] = {
      {",)", "f.yaml: line 1: YAML syntax error"},
      {",", "f.yaml: line 1: YAML syntax error"},
      {"a: 1\n---\n,\n", "f.yaml: line 3: YAML syntax error"},
      {"- a\n,\n", "f.yaml: line 2: YAML syntax error"},
  };
  for (const auto& c : cases) {
    auto r = parseConfig(c.yaml, "f.yaml");
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_NE(r.error().message.find(c.error), std::string::npos) << r.error().message;
  }
}

}  // namespace
}  // namespace tidegate::api

namespace tidegate::api {
namespace {

TEST(Loader, SeedHybridCloudExampleLoadsAsWritten) {
  auto c = loadConfig(std::string(TIDEGATE_SOURCE_DIR) + "/examples/hybrid-cloud.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c->resource_policies.size(), 1u);
  const auto& rp = c->resource_policies[0];
  EXPECT_EQ(rp.selector.at("app"), "isvc.qwen-predictor");
  ASSERT_EQ(rp.units.size(), 2u);
  EXPECT_EQ(rp.units[0].resource, "ecs");
  EXPECT_EQ(rp.units[1].node_selector.at("alibabacloud.com/nodepool-id"), "npxxxxxy");
  EXPECT_FALSE(rp.units[0].max);
  EXPECT_EQ(rp.when, "LackResourceOrExceedMax");
  ASSERT_EQ(c->node_pools.size(), 2u);
  EXPECT_FALSE(c->node_pools[0].elastic);
  EXPECT_EQ(c->node_pools[0].min_nodes, 1);
  EXPECT_TRUE(c->node_pools[1].elastic);
  EXPECT_EQ(c->node_pools[1].max_nodes, 2);
  EXPECT_DOUBLE_EQ(c->node_pools[1].provisioning_delay_s, 60);
  EXPECT_DOUBLE_EQ(c->node_pools[1].scale_down_unneeded_s, 600);
  ASSERT_EQ(c->services.size(), 1u);
  const auto& s = c->services[0];
  EXPECT_EQ(s.served_model_name, "qwen");
  EXPECT_EQ(s.max_replicas, 3);
  EXPECT_EQ(s.metric_targets.at("DCGM_CUSTOM_PROCESS_SM_UTIL"), 50);
  EXPECT_EQ(s.command[3], "{port}");
  EXPECT_DOUBLE_EQ(s.behavior.scale_down.stabilization_s, 300);  // Kubernetes' default
}

TEST(Loader, ServicePriorityIsAPriorityClassValueDefaultingToZero) {
  struct Case {
    std::string field;
    int priority;
  } cases[] = {{"", 0},
               {"  priority: 1000\n", 1000},
               {"  priority: -5\n", -5},
               {"  priority: 1000000000\n", 1000000000}};
  for (const auto& tc : cases) {
    auto c = parseConfig(
        "apiVersion: tidegate.io/v1alpha1\nkind: InferenceService\nmetadata: {name: s}\nspec:\n"
        "  minReplicas: 1\n" +
            tc.field,
        "f.yaml");
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c->services[0].priority, tc.priority) << tc.field;
    EXPECT_EQ(placementDemand(*c, c->services[0], 2).priority, tc.priority) << tc.field;
  }
}

TEST(Loader, ControlKindsRejectBadFieldsPrecisely) {
  struct Case {
    std::string yaml, error;
  } cases[] = {
      {"apiVersion: scheduling.alibabacloud.com/v1alpha1\nkind: ResourcePolicy\nmetadata: {name: "
       "r}\n"
       "spec:\n  selector: {app: x}\n  units: [{nodeSelector: {a: b}}]\n  whenTryNextUnits: "
       "{policy: Never}\n",
       "spec.whenTryNextUnits.policy: expected LackResourceOrExceedMax, ExceedMax or "
       "TimeoutOrExceedMax"},
      {"apiVersion: scheduling.alibabacloud.com/v1alpha1\nkind: ResourcePolicy\nmetadata: {name: "
       "r}\n"
       "spec:\n  selector: {app: x}\n  strategy: spread\n  units: []\n",
       "spec.strategy: only \"prefer\" is supported"},
      {"apiVersion: tidegate.io/v1alpha1\nkind: NodePool\nmetadata: {name: n}\nspec: {kind: "
       "spot}\n",
       "spec.kind: expected fixed or elastic"},
      {"apiVersion: tidegate.io/v1alpha1\nkind: NodePool\nmetadata: {name: n}\nspec: {kind: "
       "elastic}\n",
       "spec.maxNodes: required field is missing"},
      {"apiVersion: tidegate.io/v1alpha1\nkind: InferenceService\nmetadata: {name: s}\nspec:\n"
       "  behavior: {scaleUp: {policies: [{type: Replicas, value: 1, periodSeconds: 15}]}}\n",
       "spec.behavior.scaleUp.policies[0].type: expected Pods or Percent"},
      {"apiVersion: tidegate.io/v1alpha1\nkind: InferenceService\nmetadata: {name: s}\nspec:\n"
       "  minReplicas: 3\n  maxReplicas: 2\n",
       "spec.maxReplicas: must be at least minReplicas"},
      {"apiVersion: tidegate.io/v1alpha1\nkind: InferenceService\nmetadata: {name: s}\nspec:\n"
       "  priority: 2000000000\n",
       "spec.priority: must be between -2147483648 and 1000000000"},
      {"apiVersion: tidegate.io/v1alpha1\nkind: InferenceService\nmetadata: {name: s}\nspec:\n"
       "  priority: high\n",
       "spec.priority: expected an integer"},
      {"apiVersion: tidegate.io/v1alpha1\nkind: InferenceService\nmetadata: {name: s}\nspec:\n"
       "  metrics: [{prometheus: {url: \"ftp://x\", query: up}, target: 1}]\n",
       "spec.metrics[0].prometheus.url: URL 'ftp://x': expected http://"},
      {"apiVersion: tidegate.io/v1alpha1\nkind: InferenceService\nmetadata: {name: s}\nspec:\n"
       "  metrics: [{target: 1}]\n",
       "spec.metrics[0].metric: required (or prometheus: {url, query})"},
  };
  for (const auto& c : cases) {
    auto r = parseConfig(c.yaml, "f.yaml");
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_NE(r.error().message.find(c.error), std::string::npos)
        << "want: " << c.error << "\ngot:  " << r.error().message;
  }
}

TEST(Loader, ReadsPlansKeysAndAccessSettings) {
  setenv("TIDEGATE_TEST_KEY", "sk-from-env", 1);
  auto c = parseConfig(R"(
apiVersion: tidegate.io/v1alpha1
kind: Gateway
metadata: {name: gw}
spec:
  auth: {adminToken: admin-demo}
  rateLimit: {backend: redis, redis: {address: "127.0.0.1:6390", timeout: 20ms, failurePolicy: closed}}
  ledger: {path: /tmp/x.db, flushInterval: 200ms}
  pricing:
    models: [{model: "llama-*", promptPerMillion: 0.2, completionPerMillion: 0.6}]
    pools: [{pool: edge, pricePerHour: 2.5}]
---
apiVersion: tidegate.io/v1alpha1
kind: UsagePlan
metadata: {name: free}
spec: {requestsPerMinute: 10, tokensPerDay: 100000, maxConcurrentRequests: 2, models: ["llama-*"], priority: low}
---
apiVersion: tidegate.io/v1alpha1
kind: APIKey
metadata: {name: alice}
spec: {plan: free, sha256: 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824, expiresAt: "2030-01-01T00:00:00Z"}
---
apiVersion: tidegate.io/v1alpha1
kind: APIKey
metadata: {name: bob}
spec: {plan: free, secretRef: {env: TIDEGATE_TEST_KEY}}
)",
                       "a.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  const auto& g = c->gateway;
  EXPECT_EQ(g.admin_token, "admin-demo");
  EXPECT_TRUE(g.rate_limit.redis);
  EXPECT_EQ(g.rate_limit.redis_address.port, 6390);
  EXPECT_DOUBLE_EQ(g.rate_limit.redis_timeout_s, 0.02);
  EXPECT_FALSE(g.rate_limit.fail_open);
  EXPECT_EQ(g.ledger.path, "/tmp/x.db");
  EXPECT_DOUBLE_EQ(g.ledger.flush_interval_s, 0.2);
  ASSERT_EQ(g.model_prices.size(), 1u);
  EXPECT_DOUBLE_EQ(g.model_prices[0].completion_per_million, 0.6);
  EXPECT_DOUBLE_EQ(g.pool_price_per_hour.at("edge"), 2.5);
  ASSERT_EQ(c->plans.size(), 1u);
  EXPECT_EQ(c->plans[0].requests_per_minute, 10);
  EXPECT_EQ(c->plans[0].max_concurrent, 2);
  EXPECT_EQ(c->plans[0].priority, Criticality::kSheddable);
  ASSERT_EQ(c->keys.size(), 2u);
  EXPECT_EQ(crypto::toHex(c->keys[0].sha256), crypto::sha256Hex("hello"));
  EXPECT_DOUBLE_EQ(*c->keys[0].expires, 1893456000);
  EXPECT_EQ(c->keys[1].sha256, crypto::sha256("sk-from-env"));
}

TEST(Loader, ApiObjectsLoadWithTheFileAndKeysComeFromKubernetesSecrets) {
  const std::string file = R"(apiVersion: tidegate.io/v1alpha1
kind: UsagePlan
metadata: {name: free}
spec: {requestsPerMinute: 10}
)";
  const std::string key = R"({"apiVersion":"tidegate.io/v1alpha1","kind":"APIKey",
    "metadata":{"name":"carol","namespace":"team-a"},
    "spec":{"plan":"free","secretRef":{"name":"carol-key"}}})";
  // Without Kubernetes, a Secret reference is an error that says what it needs.
  auto no_k8s = parseConfig(file + "---\n" + key, "f.yaml");
  ASSERT_FALSE(no_k8s);
  EXPECT_NE(no_k8s.error().message.find("needs serve --kubernetes"), std::string::npos)
      << no_k8s.error().message;
  LoadOptions o;
  o.extra.push_back({"kubernetes APIKey team-a/carol", key});
  std::vector<std::string> asked;
  o.secret = [&](const std::string& ns, const std::string& name,
                 const std::string& k) -> std::optional<std::string> {
    asked.push_back(ns + "/" + name + "#" + k);
    if (ns == "team-a" && name == "carol-key" && k == "key") return std::string("sk-carol");
    return std::nullopt;
  };
  auto c = parseConfig(file, "f.yaml", o);
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->keys.size(), 1u);
  EXPECT_EQ(c->keys[0].sha256, crypto::sha256("sk-carol"));  // only the digest is kept
  EXPECT_EQ(c->keys[0].source.file, "kubernetes APIKey team-a/carol");
  EXPECT_EQ(asked, std::vector<std::string>{"team-a/carol-key#key"});
  // A missing Secret (or key), and a bad object, are errors naming the object they come from.
  o.extra[0].text = R"({"apiVersion":"tidegate.io/v1alpha1","kind":"APIKey",
    "metadata":{"name":"dave","namespace":"team-a"},
    "spec":{"plan":"free","secretRef":{"name":"dave-key","key":"token"}}})";
  o.extra[0].source = "kubernetes APIKey team-a/dave";
  auto missing = parseConfig(file, "f.yaml", o);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("kubernetes APIKey team-a/dave"), std::string::npos);
  EXPECT_NE(missing.error().message.find("Secret team-a/dave-key has no key \"token\""),
            std::string::npos)
      << missing.error().message;
  o.extra[0].text = R"({"apiVersion":"tidegate.io/v1alpha1","kind":"UsagePlan",
    "metadata":{"name":"gold"},"spec":{"requestsPerMinute":"many"}})";
  o.extra[0].source = "kubernetes UsagePlan default/gold";
  auto bad = parseConfig(file, "f.yaml", o);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("kubernetes UsagePlan default/gold"), std::string::npos)
      << bad.error().message;
  EXPECT_NE(bad.error().message.find("spec.requestsPerMinute"), std::string::npos);
}

TEST(Loader, AccessExampleLoadsWithItsDemoKeys) {
  auto c = loadConfig(std::string(TIDEGATE_SOURCE_DIR) + "/examples/access.yaml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->gateway.admin_token, "admin-demo");
  EXPECT_EQ(c->endpoints[0].addresses[0].str(), "127.0.0.1:8001");
  ASSERT_NE(c->plan("free"), nullptr);
  EXPECT_EQ(c->plan("free")->requests_per_minute, 10);
  ASSERT_NE(c->plan("pro"), nullptr);
  ASSERT_EQ(c->keys.size(), 2u);
  EXPECT_EQ(c->keys[0].sha256, crypto::sha256("sk-demo-free"));
  EXPECT_EQ(c->keys[1].sha256, crypto::sha256("sk-demo-pro"));
  EXPECT_TRUE(c->gateway.ledger.path.starts_with("/tmp/"));
}

TEST(Loader, AccessKindsRejectBadFieldsPrecisely) {
  const std::string plan =
      "apiVersion: tidegate.io/v1alpha1\nkind: UsagePlan\nmetadata: {name: free}\nspec: "
      "{requestsPerMinute: 1}\n---\n";
  struct Case {
    std::string yaml, error;
  } cases[] = {
      {"apiVersion: tidegate.io/v1alpha1\nkind: UsagePlan\nmetadata: {name: p}\nspec: "
       "{requestsPerMinute: -1}\n",
       "spec.requestsPerMinute: must be between"},
      {"apiVersion: tidegate.io/v1alpha1\nkind: UsagePlan\nmetadata: {name: p}\nspec: "
       "{priority: urgent}\n",
       "spec.priority: expected high, normal or low"},
      {"apiVersion: tidegate.io/v1alpha1\nkind: UsagePlan\nmetadata: {name: p}\nspec: "
       "{rpm: 3}\n",
       "spec.rpm: unknown field"},
      {plan + "apiVersion: tidegate.io/v1alpha1\nkind: APIKey\nmetadata: {name: k}\nspec: "
              "{plan: free, sha256: abc}\n",
       "spec.sha256: expected 64 hex digits"},
      {plan + "apiVersion: tidegate.io/v1alpha1\nkind: APIKey\nmetadata: {name: k}\nspec: "
              "{plan: free}\n",
       "give exactly one of sha256"},
      {plan + "apiVersion: tidegate.io/v1alpha1\nkind: APIKey\nmetadata: {name: k}\nspec: "
              "{plan: gold, secretRef: {env: HOME}}\n",
       "spec.plan: no UsagePlan named \"gold\""},
      {plan + "apiVersion: tidegate.io/v1alpha1\nkind: APIKey\nmetadata: {name: k}\nspec: "
              "{plan: free, secretRef: {env: TIDEGATE_SURELY_UNSET}}\n",
       "spec.secretRef.env: environment variable TIDEGATE_SURELY_UNSET is not set"},
      {plan + "apiVersion: tidegate.io/v1alpha1\nkind: APIKey\nmetadata: {name: k}\nspec: "
              "{plan: free, secretRef: {env: HOME}, expiresAt: soon}\n",
       "spec.expiresAt: bad timestamp 'soon'"},
      {"apiVersion: tidegate.io/v1alpha1\nkind: Gateway\nmetadata: {name: g}\nspec: "
       "{rateLimit: {backend: memcached}}\n",
       "spec.rateLimit.backend: expected local or redis"},
      {"apiVersion: tidegate.io/v1alpha1\nkind: Gateway\nmetadata: {name: g}\nspec: "
       "{ledger: {path: /tmp/x, flushInterval: 5s}}\n",
       "spec.ledger.flushInterval: must be > 0 and at most 1s"},
  };
  for (const auto& c : cases) {
    auto r = parseConfig(c.yaml, "f.yaml");
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_NE(r.error().message.find(c.error), std::string::npos)
        << "want: " << c.error << "\ngot:  " << r.error().message;
  }
}

TEST(Resources, GlobsMatchShellStyle) {
  EXPECT_TRUE(globMatches("llama-*", "llama-3-8b"));
  EXPECT_TRUE(globMatches("*", ""));
  EXPECT_TRUE(globMatches("tweet-summary-?", "tweet-summary-1"));
  EXPECT_FALSE(globMatches("tweet-summary-?", "tweet-summary-10"));
  EXPECT_TRUE(globMatches("*-lora-*", "base-lora-7"));
  EXPECT_FALSE(globMatches("llama", "llama-3"));
}

}  // namespace
}  // namespace tidegate::api
