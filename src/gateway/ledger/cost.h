#pragma once
// What a request cost, in dollars. Two sources, in this order:
//  1. per-model token prices (Gateway spec.pricing.models: the requested or target model, globs
//     allowed): prompt and completion tokens times their price per 1M;
//  2. otherwise the pool's node-hour cost, allocated to requests by their share of the tokens the
//     pool served (the OpenCost idea): a request's cost is its tokens / the pool's tokens over the
//     last minute × what the pool's nodes cost over that minute. The rate comes from the
//     controller (the nodes its replicas run on) or, for static pools, spec.pricing.pools.
// Idle capacity is thus charged to whoever used the pool around that time, as in a cloud bill.
// Thread-safe.

#include <array>
#include <map>
#include <mutex>
#include <string>

#include "api/resources.h"

namespace tidegate::gateway {

class CostModel {
 public:
  void configure(const api::GatewayConfig& g);
  // The pool's current $/hour as the controller sees it (replaces pricing.pools for that pool).
  void setPoolRate(const std::string& pool, double dollars_per_hour);

  // Counts the request's tokens towards the pool and returns its cost. `mono`: monotonic seconds.
  double charge(const std::string& model, const std::string& target_model, const std::string& pool,
                long prompt_tokens, long completion_tokens, double mono);

 private:
  static constexpr int kWindow = 60;  // seconds
  struct PoolWindow {
    std::array<double, kWindow> tokens{};  // by second
    long second = -1;                      // the newest bucket's second
    double first_seen = -1;
  };
  std::mutex mu_;
  std::vector<api::GatewayConfig::ModelPrice> prices_;
  std::map<std::string, double> configured_rates_, controller_rates_;
  std::map<std::string, PoolWindow> windows_;
};

}  // namespace tidegate::gateway
