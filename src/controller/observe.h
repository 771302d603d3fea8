#pragma once
// What both controllers (local processes, Kubernetes) observe for the autoscaler, in one place:
// the metric values of a ready replica as the gateway sees them, PromQL totals, and the reason
// label of a scaling event. Runs on the gateway's control thread.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <map>
#include <optional>
#include <string>

#include "api/resources.h"
#include "control/autoscaler.h"

namespace tidegate::gateway {
class Gateway;
struct EndpointMetrics;
}  // namespace tidegate::gateway

namespace tidegate::controller {

// The metric name that means "this gateway's requests in flight at the replica".
inline constexpr const char* kGatewayInflight = api::kGatewayInflight;

// The value of a PromQL query (a scalar, or the sum of an instant vector); nullopt on failure
// (logged).
boost::asio::awaitable<std::optional<double>> queryPrometheus(
    boost::asio::any_io_executor ex, const api::InferenceService::PromQuery& q);

// Every PromQL source of `s`, by metric name; failed queries are left out.
boost::asio::awaitable<std::map<std::string, double>> prometheusTotals(
    boost::asio::any_io_executor ex, const api::InferenceService& s);

// The values the autoscaler scales on for the ready replica at `address`: the gauges of the
// gateway's last scrape (when the endpoint is up), the gateway's own in-flight count for
// tidegate:inflight, and PromQL totals spread evenly over the `ready` replicas (so the HPA
// formula gives ceil(total / target), as KEDA's AverageValue does).
// The same from plain values (the pure part, which `tidegate simulate` calls with its simulated
// scrapes): `m` is the replica's last scrape (null if it never succeeded or the last one
// failed), `inflight` the gateway's requests there.
control::ReplicaObservation observeMetrics(const gateway::EndpointMetrics* m, int inflight,
                                           const control::AutoscalerSpec& spec,
                                           const std::map<std::string, double>& prom_totals,
                                           int ready);
control::ReplicaObservation observeReplica(gateway::Gateway& gw, const api::HostPort& address,
                                           const control::AutoscalerSpec& spec,
                                           const std::map<std::string, double>& prom_totals,
                                           int ready);

// The autoscaler of a service, from its spec.
control::AutoscalerSpec autoscalerSpec(const api::InferenceService& s);

// The `reason` label of tidegate_scaling_events_total: the metric that decided, or the bound
// that limited the count ("minReplicas", "maxReplicas"), or "none".
std::string scalingReason(const control::Decision& d, const control::AutoscalerSpec& spec);

}  // namespace tidegate::controller
