#include "sim/report.h"

#include <gtest/gtest.h>

#include "api/loader.h"
#include "sim/variants.h"

namespace tidegate::sim {
namespace {

TEST(SimReport, ChartsAndTablesOfEveryVariant) {
  auto c = api::parseConfig(R"(
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {name: p}
spec: {targetPortNumber: 8000, selector: {app: m}}
---
apiVersion: tidegate.io/v1alpha1
kind: NodePool
metadata: {name: owned, labels: {t: o}}
spec: {kind: fixed, nodes: 1, pricePerNodeHour: 1}
---
apiVersion: tidegate.io/v1alpha1
kind: NodePool
metadata: {name: cloud, labels: {t: c}}
spec: {kind: elastic, maxNodes: 2, pricePerNodeHour: 3, provisioningDelay: 5s}
---
apiVersion: tidegate.io/v1alpha1
kind: InferenceService
metadata: {name: svc, labels: {app: m}}
spec:
  servedModelName: m
  command: [tidegate, engine, --max-num-seqs, "4", --step-noise, "0"]
  minReplicas: 1
  maxReplicas: 3
  metrics: [{metric: "vllm:num_requests_waiting", target: 2}]
)",
                            "r.yaml");
  ASSERT_TRUE(c) << c.error().message;
  Options o;
  o.workload.shape = bench::Shape::kProfile;
  o.workload.profile = {{20, 1}, {40, 8}, {60, 0.5}};
  o.slo = bench::parseSlo("ttft_p90<2s").value();
  auto st = validate(*c, o);
  ASSERT_TRUE(st) << st.message();
  Variant configured{"configured", {}, run(*c, o), false};
  configured.slo_met = sloMet(configured.result);
  Variant owned{"owned-only", {}, run(baseline(*c, "owned-only", {}).value(), o), false};
  std::vector<Variant> swept;
  for (double target : {1.0, 4.0}) {
    auto cc = *c;
    ASSERT_TRUE(applyParam(cc, "target", target));
    swept.push_back({"target=" + std::to_string(target), {{"target", target}}, run(cc, o), false});
    swept.back().slo_met = sloMet(swept.back().result);
  }
  ReportInput in;
  in.title = "t <&>";
  in.configured = &configured;
  in.compared = {&owned};
  for (const auto& v : swept) in.swept.push_back(&v);
  in.best = cheapestMeetingSlo(swept);
  in.slo = o.slo;

  const auto cs = charts(in);
  std::vector<std::string> names;
  for (const auto& [name, svg] : cs) {
    names.push_back(name);
    EXPECT_EQ(svg.rfind("<svg", 0), 0u) << name;
    EXPECT_EQ(svg.find("nan"), std::string::npos) << name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"arrivals", "replicas", "nodes", "queue", "ttft",
                                             "cost", "sweep"}));
  // The replica chart names both pools; the TTFT chart draws the SLO.
  EXPECT_NE(cs[1].second.find("cloud"), std::string::npos);
  EXPECT_NE(cs[1].second.find("owned"), std::string::npos);
  EXPECT_NE(cs[4].second.find("SLO 2 s"), std::string::npos);

  const auto html = renderReport(in);
  EXPECT_NE(html.find("t &lt;&amp;&gt;"), std::string::npos);
  EXPECT_NE(html.find("owned-only"), std::string::npos);
  EXPECT_NE(html.find("target=4"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // no outside links
  if (in.best >= 0) {
    EXPECT_NE(html.find("The cheapest configuration that meets every SLO: " +
                        swept[static_cast<std::size_t>(in.best)].name),
              std::string::npos);
  } else {
    EXPECT_NE(html.find("No configuration of the sweep meets every SLO"), std::string::npos);
  }
}

}  // namespace
}  // namespace tidegate::sim
