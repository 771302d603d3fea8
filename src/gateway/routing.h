#pragma once
// RoutingTable: the configuration compiled for the request path. Immutable once built; the
// gateway swaps in a new one on reload (shared_ptr<const RoutingTable>).
//
// route(host, model):
//   1. If the Host header (port stripped) matches an LLMRoute, the candidate pools are the route's.
//   2. If an InferenceModel claims the model name, its pool serves the request (it must be among
//      the candidates of step 1, if any) and a target model is drawn by weight; the request's
//      `model` is rewritten to it.
//   3. Otherwise the model goes unchanged to the first candidate pool (all pools without a host
//      match) whose endpoints list it in /v1/models.
// Pure: the weighted draw takes its random number as an argument.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "api/resources.h"

namespace tidegate::gateway {

struct PoolEntry {
  std::string name;
  std::vector<api::HostPort> endpoints;  // selected Endpoints addresses
  std::vector<api::Labels> endpoint_labels;
};

struct ModelEntry {
  std::string model_name;
  std::string inference_model;  // the InferenceModel's metadata.name
  api::Criticality criticality = api::Criticality::kStandard;
  std::size_t pool = 0;  // index into pools
  std::vector<api::TargetModel> targets;
  std::vector<long> cumulative;  // running sums of weights, for the draw
};

struct Route {
  std::size_t pool = 0;
  std::string target_model;           // what the engine is asked for
  const ModelEntry* model = nullptr;  // null if no InferenceModel claims the name
  std::size_t target = 0;             // index of the drawn target in model->targets
  api::Criticality criticality = api::Criticality::kStandard;
};

struct RouteError {
  unsigned status;  // 404
  std::string message;
};

class RoutingTable {
 public:
  // Compiles `config`; `extra` are endpoints discovered at run time (e.g. controller replicas).
  RoutingTable(std::shared_ptr<const api::Config> config, const std::vector<api::Endpoints>& extra);

  // `serves(pool index, model)` tells whether a pool's endpoints list the model (scraped).
  using ServesFn = std::function<bool(std::size_t, const std::string&)>;
  std::variant<Route, RouteError> route(std::string_view host, const std::string& model,
                                        std::uint64_t draw, const ServesFn& serves) const;

  const std::vector<PoolEntry>& pools() const { return pools_; }
  const std::vector<ModelEntry>& models() const { return models_; }
  const api::Config& config() const { return *config_; }
  // The routing table as text, for `tidegate check`.
  std::string describe() const;

 private:
  std::shared_ptr<const api::Config> config_;
  std::vector<PoolEntry> pools_;
  std::vector<ModelEntry> models_;
  std::vector<std::pair<std::string, std::vector<std::size_t>>> hosts_;  // host -> pools
};

}  // namespace tidegate::gateway
