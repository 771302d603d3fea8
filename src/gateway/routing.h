#pragma once
// RoutingTable: the configuration compiled for the request path. Immutable once built; the
// gateway swaps in a new one on reload (shared_ptr<const RoutingTable>).
//
// route(request, model):
//   1. Routes (HTTPRoute, and LLMRoute as a one-rule HTTPRoute) by the Host header, port
//      stripped: the routes whose hostnames match it best — the exact name, else the longest
//      matching "*." suffix, else routes without hostnames — and of their rules the first whose
//      match the request meets, in the Gateway API's precedence (an Exact path; the longest
//      PathPrefix; a method; the most headers; the most query parameters; then file order, then
//      rule order). The rule's backends, with their weights, are the candidate pools. A host no
//      route names (and no route without hostnames): every pool is a candidate. A host a route
//      names whose rules match nothing: 404.
//   2. Of the candidates, the pools that can answer the model: an InferenceModel (or an
//      InferenceModelRewrite rule) names it there, or the pool's endpoints list it, or the pool
//      has a rewrite rule without matches (a fallback). A route rule's are drawn from by weight
//      (a canary between two pools); without a route, the first pool, in file order, that names
//      the model, else that lists it, else that has a fallback.
//   3. In that pool, the InferenceModel naming the model, else the pool's fallback, draws a
//      target model by weight (the request's `model` is rewritten to it); with neither the model
//      goes unchanged.
//   4. Criticality: the InferenceModel's (Standard without one); an InferenceObjective for that
//      pool named by the request's x-gateway-inference-objective header (or llm-d's
//      x-llm-d-inference-objective) replaces it by its priority (api::criticalityOf).
// Pure: the weighted draws take their random number as an argument.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "api/resources.h"

namespace tidegate::gateway {

// The request headers naming an InferenceObjective: llm-d's current name, then the Inference
// Extension's (which llm-d still reads).
inline constexpr std::string_view kObjectiveHeaders[] = {"x-llm-d-inference-objective",
                                                         "x-gateway-inference-objective"};

struct PoolEntry {
  std::string name;
  std::vector<api::HostPort> endpoints;  // selected Endpoints addresses
  std::vector<api::Labels> endpoint_labels;
};

struct ModelEntry {
  std::string model_name;       // empty for a fallback
  std::string inference_model;  // the InferenceModel's (or InferenceModelRewrite's) metadata.name
  std::string kind;             // InferenceModel | InferenceModelRewrite
  bool fallback = false;        // a rewrite rule without matches: any model the pool gets
  api::Criticality criticality = api::Criticality::kStandard;
  std::size_t pool = 0;  // index into pools
  std::vector<api::TargetModel> targets;
  std::vector<long> cumulative;  // running sums of weights, for the draw
};

struct Route {
  std::size_t pool = 0;
  std::string target_model;           // what the engine is asked for
  const ModelEntry* model = nullptr;  // null if nothing in the pool names the model
  std::size_t target = 0;             // index of the drawn target in model->targets
  api::Criticality criticality = api::Criticality::kStandard;
  const api::InferenceObjective* objective = nullptr;  // the one applied, if any
  double timeout_s = 0;  // the route rule's timeouts.request; 0: the Gateway's total timeout
};

struct RouteError {
  unsigned status;  // 404
  std::string message;
};

// What routing reads of a request besides its model.
struct RequestInfo {
  std::string_view host;    // the Host header, as sent
  std::string_view path;    // the target's path, without the query
  std::string_view query;   // after '?', raw; empty when none
  std::string_view method;  // "POST"
  // A request header's value by name (case-insensitive), "" when absent; null: no headers.
  std::function<std::string_view(std::string_view)> header;
};

class RoutingTable {
 public:
  // Compiles `config`; `extra` are endpoints discovered at run time (e.g. controller replicas).
  RoutingTable(std::shared_ptr<const api::Config> config, const std::vector<api::Endpoints>& extra);

  // `serves(pool index, model)` tells whether a pool's endpoints list the model (scraped).
  using ServesFn = std::function<bool(std::size_t, const std::string&)>;
  std::variant<Route, RouteError> route(const RequestInfo& request, const std::string& model,
                                        std::uint64_t draw, const ServesFn& serves) const;
  // The same for a POST to /v1/completions with only a Host header (tests, the simulator).
  std::variant<Route, RouteError> route(std::string_view host, const std::string& model,
                                        std::uint64_t draw, const ServesFn& serves) const;

  const std::vector<PoolEntry>& pools() const { return pools_; }
  const std::vector<ModelEntry>& models() const { return models_; }
  const api::Config& config() const { return *config_; }
  // The routing table as text, for `tidegate check`.
  std::string describe() const;

 private:
  // One route rule's backends, with their weights.
  struct Rule {
    const api::HTTPRoute* route = nullptr;
    std::size_t index = 0;                              // in route->rules
    std::vector<std::pair<std::size_t, int>> backends;  // pool index, weight
  };
  // One match of a rule (null: the rule has none and takes every request), in precedence order.
  struct Match {
    const api::HTTPRouteMatch* match = nullptr;
    std::size_t rule = 0;  // index into rules_
  };
  using Matches = std::vector<Match>;

  // The matches of the routes for `host` (port stripped, any case); null if no route names it.
  const Matches* matchesFor(std::string_view host) const;

  std::shared_ptr<const api::Config> config_;
  std::vector<PoolEntry> pools_;
  std::vector<ModelEntry> models_;
  // model name -> (pool, index into models_) of the entries naming it
  std::unordered_map<std::string, std::vector<std::pair<std::size_t, std::size_t>>> named_;
  std::vector<std::optional<std::size_t>> fallback_;  // by pool: its fallback's index in models_
  std::unordered_map<std::string, std::size_t> objectives_;  // name -> index in config objectives
  std::vector<Rule> rules_;
  std::vector<std::pair<std::string, Matches>> exact_hosts_;  // host -> matches, file order
  std::vector<std::pair<std::string, Matches>> wildcards_;    // ".suffix" -> matches, longest first
  std::optional<Matches> any_host_;                           // routes without hostnames
};

}  // namespace tidegate::gateway
