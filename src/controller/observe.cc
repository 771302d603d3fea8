#include "controller/observe.h"

#include <boost/json.hpp>

#include "common/http_client.h"
#include "common/log.h"
#include "common/url.h"
#include "gateway/endpoint.h"
#include "gateway/gateway.h"

namespace tidegate::controller {

namespace asio = boost::asio;
namespace bj = boost::json;

asio::awaitable<std::optional<double>> queryPrometheus(asio::any_io_executor ex,
                                                       const api::InferenceService::PromQuery& q) {
  auto target = parseUrl(q.url);
  if (!target) co_return std::nullopt;
  http::Client client(ex, target->host, target->port);
  http::ClientRequest req{.method = "GET",
                          .target = target->base_path + "/api/v1/query?query=" + urlEncode(q.query),
                          .timeout_s = 1};
  auto r = co_await client.send(req);
  if (!r || r->status != 200) {
    spdlog::warn("controller: prometheus query failed: {}",
                 r ? "HTTP " + std::to_string(r->status) : r.error().message);
    co_return std::nullopt;
  }
  boost::system::error_code ec;
  auto v = bj::parse(r->body, ec);
  if (ec || !v.is_object()) co_return std::nullopt;
  const auto* data = v.get_object().if_contains("data");
  if (!data || !data->is_object()) co_return std::nullopt;
  const auto* result = data->get_object().if_contains("result");
  const auto* type = data->get_object().if_contains("resultType");
  if (!result || !type || !type->is_string()) co_return std::nullopt;
  auto number = [](const bj::value& pair) -> std::optional<double> {
    if (!pair.is_array() || pair.get_array().size() != 2 || !pair.get_array()[1].is_string())
      return std::nullopt;
    try {
      return std::stod(std::string(pair.get_array()[1].get_string()));
    } catch (...) {
      return std::nullopt;
    }
  };
  if (type->get_string() == "scalar") co_return number(*result);
  if (type->get_string() != "vector" || !result->is_array()) co_return std::nullopt;
  double total = 0;
  for (const auto& sample : result->get_array()) {
    const auto* value = sample.is_object() ? sample.get_object().if_contains("value") : nullptr;
    if (!value) continue;
    if (auto x = number(*value)) total += *x;
  }
  co_return total;
}

asio::awaitable<std::map<std::string, double>> prometheusTotals(asio::any_io_executor ex,
                                                                const api::InferenceService& s) {
  std::map<std::string, double> totals;
  for (const auto& [metric, q] : s.prometheus)
    if (auto total = co_await queryPrometheus(ex, q)) totals[metric] = *total;
  co_return totals;
}

control::ReplicaObservation observeMetrics(const gateway::EndpointMetrics* m, int inflight,
                                           const control::AutoscalerSpec& spec,
                                           const std::map<std::string, double>& prom_totals,
                                           int ready) {
  control::ReplicaObservation ro;
  ro.ready = true;
  for (const auto& [metric, target] : spec.targets) {
    if (metric == kGatewayInflight) {
      ro.values[metric] = inflight;  // the gateway's own count, always fresh
    } else if (m) {
      if (auto g = m->gauges.find(metric); g != m->gauges.end()) ro.values[metric] = g->second;
    }
  }
  for (const auto& [metric, total] : prom_totals) ro.values[metric] = total / std::max(1, ready);
  return ro;
}

control::ReplicaObservation observeReplica(gateway::Gateway& gw, const api::HostPort& address,
                                           const control::AutoscalerSpec& spec,
                                           const std::map<std::string, double>& prom_totals,
                                           int ready) {
  auto ep = gw.endpoint(address);
  if (!ep) return observeMetrics(nullptr, 0, spec, prom_totals, ready);
  auto m = ep->metrics();
  return observeMetrics(m->up ? m.get() : nullptr, ep->inflight.load(), spec, prom_totals, ready);
}

control::AutoscalerSpec autoscalerSpec(const api::InferenceService& s) {
  control::AutoscalerSpec a;
  a.min_replicas = s.min_replicas;
  a.max_replicas = s.max_replicas;
  a.targets = s.metric_targets;
  a.behavior = s.behavior;
  a.panic = s.panic;
  return a;
}

std::string scalingReason(const control::Decision& d, const control::AutoscalerSpec& spec) {
  std::string reason = d.metric.empty() ? "none" : d.metric;
  if (d.desired == spec.min_replicas && d.recommendation < d.desired) reason = "minReplicas";
  if (d.desired == spec.max_replicas && d.recommendation > d.desired) reason = "maxReplicas";
  return reason;
}

}  // namespace tidegate::controller
