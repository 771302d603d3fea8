#include "gateway/routing.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "api/loader.h"

namespace tidegate::gateway {
namespace {

std::shared_ptr<const api::Config> config(const std::string& yaml) {
  auto c = api::parseConfig(yaml, "t.yaml");
  EXPECT_TRUE(c.ok()) << c.error().message;
  return std::make_shared<const api::Config>(std::move(c).value());
}

const char* kTwoPools = R"(
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {name: gpu}
spec: {targetPortNumber: 8000, selector: {app: gpu}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {name: cpu}
spec: {targetPortNumber: 8000, selector: {app: cpu}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: split}
spec:
  modelName: lora-request
  criticality: Sheddable
  poolRef: {name: gpu}
  targetModels: [{name: a, weight: 30}, {name: b, weight: 10}, {name: off, weight: 0}]
---
apiVersion: istio.alibabacloud.com/v1
kind: LLMRoute
metadata: {name: r}
spec:
  host: cpu.example.com
  rules: [{backendRefs: [{backendRef: {name: cpu}}]}]
---
apiVersion: tidegate.io/v1alpha1
kind: Endpoints
metadata: {name: e1, labels: {app: gpu, zone: a}}
spec: {addresses: ["127.0.0.1:9001", "127.0.0.1:9002"]}
---
apiVersion: tidegate.io/v1alpha1
kind: Endpoints
metadata: {name: e2, labels: {app: cpu}}
spec: {addresses: ["127.0.0.1:9003"]}
)";

TEST(Routing, SelectsEndpointsByLabels) {
  RoutingTable t(config(kTwoPools), {});
  ASSERT_EQ(t.pools().size(), 2u);
  EXPECT_EQ(t.pools()[0].endpoints.size(), 2u);
  EXPECT_EQ(t.pools()[1].endpoints[0].port, 9003);
  // Run-time endpoints (e.g. the controller's replicas) join by labels too.
  api::Endpoints extra;
  extra.meta.labels = {{"app", "cpu"}};
  extra.addresses = {{"127.0.0.1", 9010}};
  RoutingTable t2(config(kTwoPools), {extra});
  EXPECT_EQ(t2.pools()[1].endpoints.size(), 2u);
}

TEST(Routing, WeightedSplitFollowsWeights) {
  RoutingTable t(config(kTwoPools), {});
  auto none = [](std::size_t, const std::string&) { return false; };
  std::map<std::string, int> got;
  for (std::uint64_t draw = 0; draw < 400; ++draw) {
    auto r = t.route("anything", "lora-request", draw, none);
    ASSERT_TRUE(std::holds_alternative<Route>(r));
    const auto& route = std::get<Route>(r);
    EXPECT_EQ(route.pool, 0u);
    EXPECT_EQ(route.criticality, api::Criticality::kSheddable);
    ++got[route.target_model];
  }
  EXPECT_EQ(got["a"], 300);  // draws are uniform over the 40 units of weight
  EXPECT_EQ(got["b"], 100);
  EXPECT_EQ(got.count("off"), 0u);
}

TEST(Routing, HostRoutesAndUnclaimedModels) {
  RoutingTable t(config(kTwoPools), {});
  auto serves = [](std::size_t pool, const std::string& m) { return pool == 1 && m == "llama"; };
  auto r = t.route("cpu.example.com:8080", "llama", 0, serves);
  ASSERT_TRUE(std::holds_alternative<Route>(r));
  EXPECT_EQ(std::get<Route>(r).pool, 1u);
  EXPECT_EQ(std::get<Route>(r).target_model, "llama");
  EXPECT_EQ(std::get<Route>(r).model, nullptr);
  // By model name with no host match: the pool whose endpoints list it.
  EXPECT_EQ(std::get<Route>(t.route("other", "llama", 0, serves)).pool, 1u);
  // The host's pools do not include the InferenceModel's pool.
  auto wrong = t.route("cpu.example.com", "lora-request", 0, serves);
  ASSERT_TRUE(std::holds_alternative<RouteError>(wrong));
  EXPECT_EQ(std::get<RouteError>(wrong).status, 404u);
  auto unknown = t.route("other", "nope", 0, serves);
  ASSERT_TRUE(std::holds_alternative<RouteError>(unknown));
  EXPECT_NE(std::get<RouteError>(unknown).message.find("does not exist"), std::string::npos);
}

TEST(Routing, DescribesWhatItUnderstood) {
  RoutingTable t(config(kTwoPools), {});
  const auto d = t.describe();
  EXPECT_NE(d.find("gpu: 2 endpoint(s) 127.0.0.1:9001 127.0.0.1:9002"), std::string::npos) << d;
  EXPECT_NE(d.find("cpu.example.com -> cpu"), std::string::npos) << d;
  EXPECT_NE(d.find("lora-request (Sheddable) -> pool gpu, split: a 75.0% b 25.0%"),
            std::string::npos)
      << d;
}

std::string readExample(const std::string& name) {
  std::ifstream in(std::string(TIDEGATE_SOURCE_DIR) + "/examples/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The seed's ten-adapter split written both ways — its InferenceModel (and LLMRoute), and the
// InferenceModelRewrite (and HTTPRoute) of examples/lora-traffic-split-v1.yaml — routes every
// request to the same adapter, so the traffic shares are the same, and they are the seed's.
TEST(Routing, TheSeedSplitAsAnInferenceModelRewriteGivesTheSameShares) {
  RoutingTable seed(config(readExample("lora-traffic-split.yaml")), {});
  RoutingTable rewrite(config(readExample("lora-traffic-split-v1.yaml")), {});
  auto none = [](std::size_t, const std::string&) { return false; };
  std::mt19937_64 rng(20261123);
  std::map<std::string, int> seed_counts, rewrite_counts;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const auto draw = rng();
    const RequestInfo request{"test.com:8080", "/v1/completions", {}, "POST", nullptr};
    auto a = seed.route(request, "lora-request", draw, none);
    auto b = rewrite.route(request, "lora-request", draw, none);
    ASSERT_TRUE(std::holds_alternative<Route>(a));
    ASSERT_TRUE(std::holds_alternative<Route>(b)) << std::get<RouteError>(b).message;
    const auto& ra = std::get<Route>(a);
    const auto& rb = std::get<Route>(b);
    EXPECT_EQ(ra.target_model, rb.target_model) << "draw " << draw;
    ++seed_counts[ra.target_model];
    ++rewrite_counts[rb.target_model];
  }
  EXPECT_EQ(seed_counts, rewrite_counts);
  ASSERT_EQ(rewrite_counts.size(), 10u);
  int tweet = 0;
  for (const auto& [adapter, count] : rewrite_counts) {
    EXPECT_NEAR(count, n / 10, n / 100) << adapter;  // each adapter 10% +- 1%
    if (adapter.starts_with("tweet-summary")) tweet += count;
  }
  EXPECT_NEAR(double(tweet) / n, 0.5, 0.01);  // 50% tweet-summary*, 50% sql-lora*
  // And the same table either way, for `tidegate check`.
  EXPECT_NE(rewrite.describe().find("lora-request (Standard) -> pool vllm-llama2-7b-pool, split: "
                                    "tweet-summary 10.0%"),
            std::string::npos)
      << rewrite.describe();
}

const char* kCanary = R"(
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: stable}
spec: {selector: {matchLabels: {app: stable}}, targetPorts: [{number: 8000}]}
---
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: canary}
spec: {selector: {matchLabels: {app: canary}}, targetPorts: [{number: 8000}, {number: 8001}]}
---
apiVersion: llm-d.ai/v1alpha2
kind: InferenceModelRewrite
metadata: {name: canary-names}
spec:
  poolRef: {name: canary}
  rules:
  - matches: [{model: {value: llama}}]
    targets: [{modelRewrite: llama-v2}]
---
apiVersion: llm-d.ai/v1alpha2
kind: InferenceModelRewrite
metadata: {name: stable-fallback}
spec:
  poolRef: {name: stable}
  rules:
  - targets: [{modelRewrite: llama, weight: 3}, {modelRewrite: llama-small, weight: 1}]
---
apiVersion: llm-d.ai/v1alpha2
kind: InferenceObjective
metadata: {name: batch}
spec: {priority: -1, poolRef: {name: stable}}
---
apiVersion: llm-d.ai/v1alpha2
kind: InferenceObjective
metadata: {name: urgent}
spec: {priority: 100, poolRef: {name: stable}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: main}
spec:
  hostnames: [llm.example.com]
  rules:
  - matches: [{path: {value: /v1}}]
    backendRefs:
    - {kind: InferencePool, name: stable, weight: 3}
    - {kind: InferencePool, name: canary, weight: 1}
    timeouts: {request: 90s}
  - matches:
    - headers: [{name: x-canary, value: always}]
    - path: {type: Exact, value: /v1/embeddings}
    - queryParams: [{name: pool, value: canary}]
    backendRefs: [{kind: InferencePool, name: canary}]
  - matches: [{path: {value: /v1/chat}, method: POST}]
    backendRefs: [{kind: InferencePool, name: stable}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: batch}
spec:
  hostnames: ["*.batch.example.com"]
  rules:
  - matches: [{path: {type: Exact, value: /v1/completions}}]
    backendRefs: [{kind: InferencePool, name: stable}]
---
apiVersion: tidegate.io/v1alpha1
kind: Endpoints
metadata: {name: c, labels: {app: canary}}
spec: {addresses: ["127.0.0.1:9100"]}
)";

RequestInfo request(std::string_view host, std::string_view path,
                    std::map<std::string, std::string> headers = {}, std::string_view query = {}) {
  return {host, path, query, "POST", [headers = std::move(headers)](std::string_view name) {
            auto it = headers.find(std::string(name));
            return it == headers.end() ? std::string_view() : std::string_view(it->second);
          }};
}

TEST(Routing, HTTPRouteMatchesFollowTheGatewayApisPrecedence) {
  RoutingTable t(config(kCanary), {});
  auto none = [](std::size_t, const std::string&) { return false; };
  auto pool = [&](const RequestInfo& r, std::uint64_t draw = 0) -> std::string {
    auto routed = t.route(r, "llama", draw, none);
    if (auto* e = std::get_if<RouteError>(&routed)) return "404: " + e->message;
    return t.pools()[std::get<Route>(routed).pool].name;
  };
  struct Case {
    RequestInfo request;
    std::string pool;
  } cases[] = {
      // The longest prefix wins: /v1/chat (stable only) over /v1 (the weighted canary).
      {request("llm.example.com", "/v1/chat/completions"), "stable"},
      // An Exact path outranks every prefix.
      {request("llm.example.com", "/v1/embeddings"), "canary"},
      // A header counts only among equal paths: the header rule's match is "PathPrefix /" with
      // one header, below /v1/chat's longer prefix...
      {request("llm.example.com:443", "/v1/chat/completions", {{"x-canary", "always"}}), "stable"},
      // ... and decides where no longer prefix matches.
      {request("llm.example.com", "/other", {{"x-canary", "always"}}), "canary"},
      {request("llm.example.com", "/other", {}, "a=1&pool=canary"), "canary"},
      // A host a route names, a request none of its rules matches: 404.
      {request("llm.example.com", "/other"), "404: No route rule for host llm.example.com"},
      // Wildcard hosts: any subdomain, not the domain itself.
      {request("a.batch.example.com", "/v1/completions"), "stable"},
      {request("x.y.batch.example.com", "/v1/completions"), "stable"},
      {request("a.batch.example.com", "/v1/chat/completions"), "404: No route rule"},
      // Hosts no route names: by model name, first to a pool that names it (canary's rewrite).
      {request("batch.example.com", "/v1/completions"), "canary"},
      {request("LLM.Example.com", "/v1/embeddings"), "canary"},  // host names are case-blind
  };
  for (const auto& c : cases)
    EXPECT_TRUE(pool(c.request).starts_with(c.pool))
        << c.request.host << " " << c.request.path << ": " << pool(c.request);
}

TEST(Routing, AWeightedRouteIsACanaryAndEachPoolRewritesItsOwnNames) {
  RoutingTable t(config(kCanary), {});
  auto none = [](std::size_t, const std::string&) { return false; };
  std::map<std::string, int> got;
  std::mt19937_64 rng(7);
  const int n = 40000;
  for (int i = 0; i < n; ++i) {
    auto r = t.route(request("llm.example.com", "/v1/completions"), "llama", rng(), none);
    ASSERT_TRUE(std::holds_alternative<Route>(r));
    const auto& route = std::get<Route>(r);
    EXPECT_DOUBLE_EQ(route.timeout_s, 90);
    ++got[t.pools()[route.pool].name + "/" + route.target_model];
  }
  // 3:1 between the pools; in stable the fallback splits 3:1 again, in canary the name is
  // rewritten to the canary's.
  EXPECT_NEAR(got["stable/llama"], n * 0.75 * 0.75, n * 0.01);
  EXPECT_NEAR(got["stable/llama-small"], n * 0.75 * 0.25, n * 0.01);
  EXPECT_NEAR(got["canary/llama-v2"], n * 0.25, n * 0.01);
  EXPECT_EQ(got.size(), 3u);
  // A model only the stable pool can take (its fallback) goes there whatever the weights say.
  for (std::uint64_t d = 0; d < 200; ++d) {
    auto r = t.route(request("llm.example.com", "/v1/completions"), "mystery", d, none);
    ASSERT_TRUE(std::holds_alternative<Route>(r));
    EXPECT_EQ(std::get<Route>(r).pool, 0u);
  }
  // Each pool endpoint is one per target port for addresses without a port (pods): the static
  // address has its own.
  EXPECT_EQ(t.pools()[1].endpoints.size(), 1u);
  api::Endpoints pod;
  pod.meta.labels = {{"app", "canary"}};
  pod.addresses = {{"10.0.0.7", 0}};
  RoutingTable with_pod(config(kCanary), {pod});
  ASSERT_EQ(with_pod.pools()[1].endpoints.size(), 3u);
  EXPECT_EQ(with_pod.pools()[1].endpoints[1].str(), "10.0.0.7:8000");
  EXPECT_EQ(with_pod.pools()[1].endpoints[2].str(), "10.0.0.7:8001");
}

TEST(Routing, TheObjectiveHeaderSetsThePriorityInItsPoolOnly) {
  RoutingTable t(config(kCanary), {});
  auto none = [](std::size_t, const std::string&) { return false; };
  using C = api::Criticality;
  struct Case {
    std::map<std::string, std::string> headers;
    std::string path;
    C criticality;
    const char* objective;
  } cases[] = {
      {{}, "/v1/chat/completions", C::kStandard, nullptr},
      {{{"x-gateway-inference-objective", "batch"}},
       "/v1/chat/completions",
       C::kSheddable,
       "batch"},
      {{{"x-gateway-inference-objective", "urgent"}},
       "/v1/chat/completions",
       C::kCritical,
       "urgent"},
      {{{"x-llm-d-inference-objective", "batch"}}, "/v1/chat/completions", C::kSheddable, "batch"},
      // llm-d's header is read first.
      {{{"x-llm-d-inference-objective", "urgent"}, {"x-gateway-inference-objective", "batch"}},
       "/v1/chat/completions",
       C::kCritical,
       "urgent"},
      // An objective nobody declared: priority 0, as the Extension's picker does.
      {{{"x-gateway-inference-objective", "nope"}}, "/v1/chat/completions", C::kStandard, nullptr},
      // An objective of another pool does not apply to this one (/v1/embeddings: canary).
      {{{"x-gateway-inference-objective", "batch"}}, "/v1/embeddings", C::kStandard, nullptr},
  };
  for (const auto& c : cases) {
    auto r = t.route(request("llm.example.com", c.path, c.headers), "llama", 0, none);
    ASSERT_TRUE(std::holds_alternative<Route>(r));
    const auto& route = std::get<Route>(r);
    EXPECT_EQ(route.criticality, c.criticality) << c.path;
    EXPECT_STREQ(route.objective ? route.objective->meta.name.c_str() : nullptr, c.objective);
  }
}

TEST(Routing, DescribesRoutesRewritesAndObjectives) {
  RoutingTable t(config(kCanary), {});
  const auto d = t.describe();
  for (const char* line : {
           "  canary: 1 endpoint(s) 127.0.0.1:9100; target ports 8000 8001\n",
           "  llm.example.com =/v1/embeddings -> canary (HTTPRoute main rules[1])\n",
           "  llm.example.com /v1/chat* POST -> stable (HTTPRoute main rules[2])\n",
           "  llm.example.com /v1* -> stable 75.0% canary 25.0% (HTTPRoute main rules[0], "
           "timeout 90 s)\n",
           "  llm.example.com [x-canary: always] -> canary (HTTPRoute main rules[1])\n",
           "  *.batch.example.com =/v1/completions -> stable (HTTPRoute batch)\n",
           "  other hosts: routing by model name only\n",
           "  llama (Standard) -> pool canary, split: llama-v2 100.0% (InferenceModelRewrite "
           "canary-names)\n",
           "  * (any other model) (Standard) -> pool stable, split: llama 75.0% llama-small 25.0% "
           "(InferenceModelRewrite stable-fallback)\n",
           "  batch: priority -1 (Sheddable) on pool stable\n",
       })
    EXPECT_NE(d.find(line), std::string::npos) << line << "\n" << d;
}

}  // namespace
}  // namespace tidegate::gateway
