#include "gateway/ledger/cost.h"

#include <cmath>
#include <numeric>

namespace tidegate::gateway {

void CostModel::configure(const api::GatewayConfig& g) {
  std::lock_guard lock(mu_);
  prices_ = g.model_prices;
  configured_rates_ = g.pool_price_per_hour;
}

void CostModel::setPoolRate(const std::string& pool, double dollars_per_hour) {
  std::lock_guard lock(mu_);
  controller_rates_[pool] = dollars_per_hour;
}

double CostModel::charge(const std::string& model, const std::string& target_model,
                         const std::string& pool, long prompt_tokens, long completion_tokens,
                         double mono) {
  std::lock_guard lock(mu_);
  for (const auto& p : prices_)
    if (api::globMatches(p.model, model) || api::globMatches(p.model, target_model))
      return (static_cast<double>(prompt_tokens) * p.prompt_per_million +
              static_cast<double>(completion_tokens) * p.completion_per_million) /
             1e6;
  const double tokens = static_cast<double>(prompt_tokens + completion_tokens);
  if (pool.empty() || tokens <= 0) return 0;
  auto& w = windows_[pool];
  const long sec = static_cast<long>(std::floor(mono));
  if (w.first_seen < 0) w.first_seen = mono;
  if (w.second >= 0 && sec - w.second >= kWindow) {
    w.tokens.fill(0);
  } else {
    for (long s = w.second + 1; w.second >= 0 && s <= sec; ++s) w.tokens[s % kWindow] = 0;
  }
  w.second = sec;
  w.tokens[sec % kWindow] += tokens;
  double rate = 0;
  if (auto it = controller_rates_.find(pool); it != controller_rates_.end()) {
    rate = it->second;
  } else if (auto c = configured_rates_.find(pool); c != configured_rates_.end()) {
    rate = c->second;
  }
  if (rate <= 0) return 0;
  const double served = std::accumulate(w.tokens.begin(), w.tokens.end(), 0.0);
  // The window covers at most a minute, less while the pool is new.
  const double covered = std::clamp(mono - w.first_seen, 1.0, double(kWindow));
  return tokens / served * rate * covered / 3600.0;
}

}  // namespace tidegate::gateway
