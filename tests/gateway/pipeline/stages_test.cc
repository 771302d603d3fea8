#include "gateway/pipeline/stages.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/loader.h"
#include "gateway/stats.h"

namespace tidegate::gateway::pipeline {
namespace {

namespace bj = boost::json;
using V = boost::beast::http::verb;

std::string errorType(const Denial& d) {
  return std::string(bj::parse(d.body).at("error").at("type").as_string());
}

TEST(Stages, EndpointAcceptsTheOpenAiPathsWithTheirMethods) {
  struct Case {
    std::string path;
    V method;
    unsigned status;  // 0: accepted
    std::string allow;
  } cases[] = {
      {"/v1/chat/completions", V::post, 0, ""},
      {"/v1/completions", V::post, 0, ""},
      {"/v1/embeddings", V::post, 0, ""},
      {"/v1/models", V::get, 0, ""},
      {"/v1/chat/completions", V::get, 405, "POST"},
      {"/v1/models", V::post, 405, "GET"},
      {"/v1/nope", V::post, 404, ""},
      {"/", V::get, 404, ""},
  };
  for (const auto& c : cases) {
    auto r = endpoint(c.path, c.method);
    if (c.status == 0) {
      EXPECT_TRUE(std::holds_alternative<Api>(r)) << c.path;
      continue;
    }
    ASSERT_TRUE(std::holds_alternative<Denial>(r)) << c.path;
    const auto& d = std::get<Denial>(r);
    EXPECT_EQ(static_cast<unsigned>(d.status), c.status) << c.path;
    EXPECT_EQ(errorType(d), c.status == 404 ? "not_found_error" : "invalid_request_error");
    if (!c.allow.empty()) {
      ASSERT_EQ(d.headers.size(), 1u);
      EXPECT_EQ(d.headers[0].second, c.allow);
    }
  }
}

TEST(Stages, ParseRefusesWhatIsNotAJsonRequest) {
  struct Case {
    std::string content_type, body;
    unsigned status;  // 0: accepted
    std::string param;
  } cases[] = {
      {"application/json", R"({"model":"m","prompt":"x"})", 0, ""},
      {"", R"({"model":"m"})", 0, ""},  // no Content-Type: JSON assumed, as OpenAI's API does
      {"application/json; charset=utf-8", R"({"model":"m"})", 0, ""},
      {"text/plain", R"({"model":"m"})", 415, ""},
      {"application/json", "{bad", 400, ""},
      {"application/json", R"({"prompt":"x"})", 400, "model"},
      {"application/json", R"({"model":7})", 400, "model"},
      {"application/json", R"({"model":"m","stream":"yes"})", 400, "stream"},
      {"application/json", R"({"model":"m","max_tokens":"ten"})", 400, "max_tokens"},
  };
  for (const auto& c : cases) {
    RequestFields f;
    auto d = parse(c.content_type, c.body, f);
    if (c.status == 0) {
      EXPECT_FALSE(d) << c.body;
      EXPECT_EQ(f.model, "m");
      continue;
    }
    ASSERT_TRUE(d) << c.body;
    EXPECT_EQ(static_cast<unsigned>(d->status), c.status) << c.body;
    EXPECT_EQ(errorType(*d), "invalid_request_error");
    auto param = bj::parse(d->body).at("error").at("param");
    EXPECT_EQ(param.is_null() ? "" : std::string(param.as_string()), c.param) << c.body;
  }
}

const char* kConfig = R"(
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {name: gpu}
spec: {targetPortNumber: 8000, selector: {app: gpu}}
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: chat}
spec: {modelName: chat, criticality: Critical, poolRef: {name: gpu}, targetModels: [{name: base}]}
---
apiVersion: istio.alibabacloud.com/v1
kind: LLMRoute
metadata: {name: r}
spec:
  host: other.com
  rules: []
---
apiVersion: tidegate.io/v1alpha1
kind: Endpoints
metadata: {name: e, labels: {app: gpu}}
spec: {addresses: ["127.0.0.1:9000"]}
---
apiVersion: tidegate.io/v1alpha1
kind: UsagePlan
metadata: {name: batch}
spec: {priority: low}
)";

struct Fixture {
  explicit Fixture(const char* yaml = kConfig) : stats(metrics), builder(registry, stats) {
    auto c = api::parseConfig(yaml, "t.yaml");
    EXPECT_TRUE(c.ok()) << c.error().message;
    snap = builder.setConfig(std::make_shared<const api::Config>(std::move(c).value()));
    // The endpoint's scraped model list: the base model and an adapter.
    auto m = std::make_shared<EndpointMetrics>();
    m->up = true;
    m->models = {"base"};
    m->adapters = {"sql-lora"};
    snap->pool_endpoints[0][0]->publish(m);
    builder.modelListsChanged();  // as the scraper does when a model list changes
    snap = builder.current();
  }
  prom::Registry metrics;
  GatewayStats stats;
  EndpointRegistry registry;
  SnapshotBuilder builder;
  std::shared_ptr<const Snapshot> snap;
};

TEST(Stages, RouteFindsThePoolAndTheCriticalityOfModelAndPlan) {
  Fixture f;
  Principal low;
  low.plan = f.snap->config->plan("batch");
  struct Case {
    std::string host, model;
    const Principal* who;
    bool found;
    std::string target;
    api::Criticality criticality;
  } cases[] = {
      {"", "chat", nullptr, true, "base", api::Criticality::kCritical},
      {"", "chat", &low, true, "base", api::Criticality::kSheddable},  // the less critical
      {"", "sql-lora", nullptr, true, "sql-lora", api::Criticality::kStandard},  // listed
      {"", "nope", nullptr, false, "", {}},
      {"other.com", "chat", nullptr, false, "", {}},  // the host's route has no pool for it
  };
  for (const auto& c : cases) {
    RequestFields fields;
    fields.model = c.model;
    std::optional<Route> r;
    const Principal anyone;
    const RequestInfo request{c.host, "/v1/completions", {}, "POST", nullptr};
    auto d = route(*f.snap, request, c.who ? *c.who : anyone, fields, 0, r);
    ASSERT_EQ(!d, c.found) << c.host << " " << c.model;
    if (!c.found) {
      EXPECT_EQ(static_cast<unsigned>(d->status), 404u);
      EXPECT_EQ(std::string(bj::parse(d->body).at("error").at("code").as_string()),
                "model_not_found");
      continue;
    }
    EXPECT_EQ(r->target_model, c.target);
    EXPECT_EQ(r->criticality, c.criticality) << c.model;
  }
}

TEST(Stages, ModelLabelIsBounded) {
  Fixture f;
  for (const char* known : {"chat", "base", "sql-lora"})
    EXPECT_EQ(f.snap->modelLabel(known), known);
  for (const char* unknown : {"nope", "", "bad\xff"})
    EXPECT_EQ(f.snap->modelLabel(unknown), GatewayStats::kOther);
}

// A rewrite rule without matches takes any name: the names it takes stay out of the bounded
// `model` label (unless the configuration or an engine knows them), and it names no model.
TEST(Stages, AFallbackTakesNamesWithoutMakingThemKnown) {
  Fixture f(R"(
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: gpu}
spec: {selector: {matchLabels: {app: gpu}}, targetPorts: [{number: 8000}]}
---
apiVersion: llm-d.ai/v1alpha2
kind: InferenceModelRewrite
metadata: {name: any}
spec: {poolRef: {name: gpu}, rules: [{targets: [{modelRewrite: base}]}]}
---
apiVersion: tidegate.io/v1alpha1
kind: Endpoints
metadata: {name: e, labels: {app: gpu}}
spec: {addresses: ["127.0.0.1:9000"]}
)");
  for (const char* unknown : {"gpt-4o", ""})
    EXPECT_EQ(f.snap->modelLabel(unknown), GatewayStats::kOther) << unknown;
  RequestFields fields;
  fields.model = "gpt-4o";
  std::optional<Route> r;
  const RequestInfo request{"", "/v1/chat/completions", {}, "POST", nullptr};
  ASSERT_FALSE(route(*f.snap, request, Principal{}, fields, 0, r));
  EXPECT_EQ(r->target_model, "base");
  ASSERT_TRUE(r->model && r->model->fallback);
  EXPECT_NE(f.snap->stats(*r, "gpt-4o"), nullptr);  // resolved, under `other`
  // A name an engine lists is resolved per request, under its own name.
  fields.model = "sql-lora";
  ASSERT_FALSE(route(*f.snap, request, Principal{}, fields, 0, r));
  EXPECT_EQ(r->target_model, "base");
  EXPECT_EQ(f.snap->stats(*r, "sql-lora"), nullptr);
}

TEST(Stages, AdmissionReservesPromptAndMaxTokensOnlyUnderAPlan) {
  Fixture f;
  Principal none, planned;
  planned.plan = f.snap->config->plan("batch");
  RequestFields fields;
  fields.prompt_text = "one two three four";
  fields.max_tokens = 100;
  EXPECT_EQ(tokensToReserve(none, fields), 0);
  const double with_max = tokensToReserve(planned, fields);
  EXPECT_GT(with_max, 100);
  fields.max_tokens = -1;  // not set: 256
  EXPECT_EQ(tokensToReserve(planned, fields), with_max - 100 + 256);
}

}  // namespace
}  // namespace tidegate::gateway::pipeline
