#include "gateway/routing.h"

#include <gtest/gtest.h>

#include <map>

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

}  // namespace
}  // namespace tidegate::gateway
